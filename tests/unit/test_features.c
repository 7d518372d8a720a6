/* Features of hand-made (candidate parent, call) pairs: which requests are
 * candidates, in which order, and what each feature says. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../models/features.h"

#define US 1000ull /* ns per microsecond */

static struct tj_message srv(uint32_t node, uint64_t sock, uint64_t off,
			     uint32_t pid, uint32_t tid, uint64_t t0_us,
			     uint64_t t1_us, uint64_t reply_us, uint32_t tid_reply)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key = (struct tj_msgkey){ node, sock, off, TJ_DIR_IN };
	m.role = TJ_ROLE_SERVER;
	m.is_request = 1;
	m.pid = pid;
	m.tid_first = m.tid_last = tid;
	m.ts_first = t0_us * US;
	m.ts_last = t1_us * US;
	m.ts_reply = reply_us * US;
	m.tid_reply = tid_reply;
	m.bytes = 100;
	return m;
}

static struct tj_message call(uint32_t node, uint64_t sock, uint64_t off,
			      uint32_t pid, uint32_t tid, uint64_t t0_us,
			      uint64_t reply_us, uint32_t seq)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key = (struct tj_msgkey){ node, sock, off, TJ_DIR_OUT };
	m.role = TJ_ROLE_CLIENT;
	m.is_request = 1;
	m.pid = pid;
	m.tid_first = m.tid_last = tid;
	m.ts_first = m.ts_last = t0_us * US;
	m.ts_reply = reply_us * US;
	m.bytes = 50;
	m.seq = seq;
	return m;
}

/* A call to the remote port rport (its destination). */
static struct tj_message call_to(uint32_t node, uint64_t sock, uint64_t off,
				 uint32_t tid, uint64_t t0_us, uint64_t reply_us,
				 uint32_t seq, uint16_t rport)
{
	struct tj_message m = call(node, sock, off, 5, tid, t0_us, reply_us, seq);
	m.rport = rport;
	return m;
}

/* The response to a call, read on its socket by thread tid at t_us. */
static struct tj_message response(uint32_t node, uint64_t sock, uint32_t tid,
				  uint64_t t_us)
{
	struct tj_message m = call(node, sock, 0, 5, tid, t_us, 0, 0);
	m.key.dir = TJ_DIR_IN;
	return m;
}

struct fx {
	struct tj_feat *f;
	struct tj_feat_call c;
};

static struct fx *fx_new(unsigned max_cand, uint64_t window_ns)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct tj_feat_opts o = { max_cand, window_ns };
	struct tj_err err = { 0 };
	assert_non_null(x);
	assert_int_equal(tj_feat_new(&x->f, &o, &err), 0);
	return x;
}

static void fx_free(struct fx *x)
{
	tj_feat_free(x->f);
	free(x);
}

static int feed(struct fx *x, struct tj_message m)
{
	struct tj_err err = { 0 };
	int rc = tj_feat_message(x->f, &m, &x->c, &err);
	assert_true(rc >= 0);
	return rc;
}

static int find(const struct tj_feat_call *c, uint64_t sock)
{
	for (size_t j = 0; j < c->n; j++)
		if (c->cand[j].sock == sock)
			return (int)j;
	return -1;
}

/* Requests A, B, C (sockets 10, 11, 12) of process 5, read by one
 * thread at 1000, 1100 and 1200 us, answered at 9000: a queue of three. */
static void three_waiting(struct fx *x)
{
	feed(x, srv(1, 10, 0, 5, 100, 1000, 1000, 9000, 100));
	feed(x, srv(1, 11, 0, 5, 100, 1100, 1100, 9000, 100));
	feed(x, srv(1, 12, 0, 5, 100, 1200, 1200, 9000, 100));
}

static void test_candidates_and_basic_features(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	/* A: read by thread 100, replied by it later; B: thread 200. */
	assert_int_equal(feed(x, srv(1, 10, 0, 5, 100, 1000, 1010, 5000, 100)), 0);
	assert_int_equal(feed(x, srv(1, 11, 0, 5, 200, 2000, 2005, 6000, 200)), 0);
	/* D: replied before the call: not in flight.  Other node: never. */
	assert_int_equal(feed(x, srv(1, 12, 0, 5, 300, 2100, 2101, 2200, 300)), 0);
	assert_int_equal(feed(x, srv(2, 10, 0, 5, 100, 2500, 2501, 9000, 100)), 0);
	assert_int_equal(feed(x, call(1, 20, 0, 5, 100, 3000, 3500, 0)), 1);
	const struct tj_feat_call *c = &x->c;
	assert_int_equal(c->n, 2);
	assert_int_equal(c->inflight, 2);
	assert_int_equal(c->call.sock, 20);
	/* most recently started first */
	assert_int_equal(c->cand[0].sock, 11);
	assert_int_equal(c->cand[1].sock, 10);
	const double *a = c->x[1], *b = c->x[0];
	assert_float_equal(a[TJ_F_DT_START], log1p(2000), 1e-9);
	assert_float_equal(a[TJ_F_DT_PARENT_READ], log1p(1990), 1e-9);
	assert_float_equal(b[TJ_F_DT_START], log1p(1000), 1e-9);
	/* thread 100's last read is A (1010 us) */
	assert_float_equal(a[TJ_F_DT_THREAD_READ], log1p(1990), 1e-9);
	assert_float_equal(a[TJ_F_THREAD_READ_UNKNOWN], 0, 0);
	assert_float_equal(a[TJ_F_SAME_TID], 1, 0);
	assert_float_equal(b[TJ_F_SAME_TID], 0, 0);
	assert_float_equal(a[TJ_F_SAME_TID_REPLY], 1, 0);
	assert_float_equal(b[TJ_F_SAME_TID_REPLY], 0, 0);
	assert_float_equal(a[TJ_F_TID_UNKNOWN], 0, 0);
	assert_float_equal(a[TJ_F_SAME_PID], 1, 0);
	assert_float_equal(a[TJ_F_THREAD_LAST_REQ], 1, 0);
	assert_float_equal(b[TJ_F_THREAD_LAST_REQ], 0, 0);
	assert_float_equal(a[TJ_F_RANK], log1p(1), 1e-12);
	assert_float_equal(b[TJ_F_RANK], 0, 0);
	assert_float_equal(a[TJ_F_NODE_INFLIGHT], log1p(2), 1e-12);
	assert_float_equal(a[TJ_F_PARENT_NO_CALL], 1, 0);
	assert_float_equal(a[TJ_F_KEEPALIVE], 0, 0);
	assert_float_equal(a[TJ_F_CALL_BYTES], log1p(50), 1e-12);
	assert_float_equal(a[TJ_F_PARENT_BYTES], log1p(100), 1e-12);
	/* parent A replies at 5000 us, the call's response starts at 3500 */
	assert_float_equal(a[TJ_F_DT_REPLY], log1p(1500), 1e-9);
	assert_float_equal(a[TJ_F_REPLY_UNKNOWN], 0, 0);
	fx_free(x);
}

static void test_assign_feeds_history(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	feed(x, srv(1, 10, 0, 5, 100, 1000, 1000, 9000, 100));
	feed(x, srv(1, 11, 0, 5, 200, 1500, 1500, 9000, 200));
	assert_int_equal(feed(x, call(1, 20, 0, 5, 100, 2000, 2600, 0)), 1);
	int a = find(&x->c, 10);
	assert_true(a >= 0);
	tj_feat_assign(x->f, &x->c, a);
	/* the same thread calls again on the same (keepalive) socket */
	assert_int_equal(feed(x, call(1, 20, 40, 5, 100, 3000, 3100, 1)), 1);
	a = find(&x->c, 10);
	int b = find(&x->c, 11);
	assert_true(a >= 0 && b >= 0);
	assert_float_equal(x->c.x[a][TJ_F_PARENT_CALLS], log1p(1), 1e-12);
	assert_float_equal(x->c.x[b][TJ_F_PARENT_CALLS], 0, 0);
	assert_float_equal(x->c.x[a][TJ_F_PARENT_NO_CALL], 0, 0);
	assert_float_equal(x->c.x[a][TJ_F_THREAD_PREV_PARENT], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_THREAD_PREV_PARENT], 0, 0);
	/* first call's response began at 2600 us: 400 us before */
	assert_float_equal(x->c.x[a][TJ_F_DT_PARENT_LAST_CALL], log1p(400), 1e-9);
	/* its response (2600) came before this call (3000): not open */
	assert_float_equal(x->c.x[a][TJ_F_PARENT_OPEN_CALLS], 0, 0);
	assert_float_equal(x->c.x[a][TJ_F_KEEPALIVE], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	/* "none" clears the thread's previous parent */
	assert_int_equal(feed(x, call(1, 20, 80, 5, 100, 3200, 3300, 2)), 1);
	a = find(&x->c, 10);
	assert_float_equal(x->c.x[a][TJ_F_THREAD_PREV_PARENT], 0, 0);
	fx_free(x);
}

static void test_unknown_ids_are_not_same(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	feed(x, srv(1, 10, 0, 0, 0, 1000, 1000, 9000, 0));
	assert_int_equal(feed(x, call(1, 20, 0, 0, 0, 2000, 2100, 0)), 1);
	assert_int_equal(x->c.n, 1);
	const double *a = x->c.x[0];
	assert_float_equal(a[TJ_F_SAME_TID], 0, 0);
	assert_float_equal(a[TJ_F_SAME_TID_REPLY], 0, 0);
	assert_float_equal(a[TJ_F_TID_UNKNOWN], 1, 0);
	assert_float_equal(a[TJ_F_SAME_PID], 0, 0);
	assert_float_equal(a[TJ_F_PID_UNKNOWN], 1, 0);
	assert_float_equal(a[TJ_F_THREAD_READ_UNKNOWN], 1, 0);
	assert_float_equal(a[TJ_F_THREAD_LAST_REQ], 0, 0);
	fx_free(x);
}

static void test_window_and_cap(void **state)
{
	(void)state;
	/* window 1 ms, at most 2 candidates */
	struct fx *x = fx_new(2, 1000 * US);
	feed(x, srv(1, 9, 0, 5, 99, 100, 100, 0, 0));  /* too old by then */
	feed(x, srv(1, 10, 0, 5, 100, 2000, 2000, 0, 0));
	feed(x, srv(1, 11, 0, 5, 101, 2100, 2100, 0, 0));
	feed(x, srv(1, 12, 0, 5, 102, 2200, 2200, 0, 0));
	assert_int_equal(feed(x, call(1, 20, 0, 5, 100, 2500, 2600, 0)), 1);
	assert_int_equal(x->c.inflight, 3);
	assert_int_equal(x->c.n, 2);
	assert_int_equal(x->c.cand[0].sock, 12);
	assert_int_equal(x->c.cand[1].sock, 11);
	/* no reply seen: unknown, not a made-up gap */
	assert_float_equal(x->c.x[0][TJ_F_REPLY_UNKNOWN], 1, 0);
	assert_float_equal(x->c.x[0][TJ_F_DT_REPLY], 0, 0);
	tj_feat_assign(x->f, &x->c, 0);
	/* server responses and client responses are not calls */
	struct tj_message r = call(1, 20, 0, 5, 100, 2600, 0, 0);
	r.key.dir = TJ_DIR_IN;
	assert_int_equal(feed(x, r), 0);
	fx_free(x);
}

static void test_many_requests_stay_bounded(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 1000 * US);
	/* 100k short requests, each replied before the next: the held list
	 * must be compacted, and every call sees only the one in flight. */
	for (uint64_t i = 0; i < 100000; i++) {
		uint64_t t = 10 + i * 10;
		feed(x, srv(1, 1000 + i, 0, 5, (uint32_t)(1 + i % 7), t, t, t + 5, 1));
		if (i % 10 == 0) {
			assert_int_equal(feed(x, call(1, 5, i, 5, 1, t + 1, t + 2, 0)), 1);
			assert_int_equal(x->c.n, 1);
			assert_int_equal(x->c.cand[0].sock, 1000 + i);
			tj_feat_assign(x->f, &x->c, 0);
		}
	}
	assert_int_equal(tj_feat_dropped(x->f), 0);
	fx_free(x);
}

/* An executor thread calls for B; another thread reads the response and
 * calls again: it works for B now.  Destinations and call starts are
 * remembered per parent. */
static void test_context_follows_responses(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	feed(x, srv(1, 10, 0, 5, 100, 1000, 1000, 9000, 100));
	feed(x, srv(1, 11, 0, 5, 200, 1100, 1100, 9000, 200));
	struct tj_message c1 = call(1, 20, 0, 5, 300, 1200, 1300, 0);
	c1.rport = 8080;
	assert_int_equal(feed(x, c1), 1);
	int b = find(&x->c, 11);
	assert_true(b >= 0);
	/* thread 300 read nothing: known but without context */
	assert_float_equal(x->c.x[b][TJ_F_THREAD_NO_CONTEXT], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_THREAD_CONTEXT], 0, 0);
	tj_feat_assign(x->f, &x->c, b);
	/* thread 400 reads c1's response (first byte at 1300 us) */
	struct tj_message r = call(1, 20, 0, 5, 400, 1300, 0, 0);
	r.key.dir = TJ_DIR_IN;
	assert_int_equal(feed(x, r), 0);
	struct tj_message c2 = call(1, 21, 0, 5, 400, 1400, 1500, 0);
	c2.rport = 8080;
	assert_int_equal(feed(x, c2), 1);
	int a = find(&x->c, 10);
	b = find(&x->c, 11);
	assert_true(a >= 0 && b >= 0);
	assert_float_equal(x->c.x[b][TJ_F_THREAD_CONTEXT], 1, 0);
	assert_float_equal(x->c.x[a][TJ_F_THREAD_CONTEXT], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_THREAD_NO_CONTEXT], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_PARENT_CALLED_DEST], 1, 0);
	assert_float_equal(x->c.x[a][TJ_F_PARENT_CALLED_DEST], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_DT_PARENT_LAST_START], log1p(200), 1e-9);
	assert_float_equal(x->c.x[a][TJ_F_DT_PARENT_LAST_START], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_REPLY_BEFORE_RESPONSE], 0, 0);
	tj_feat_assign(x->f, &x->c, -1);
	/* a response to a call with no parent leaves its reader without one */
	r = call(1, 21, 0, 5, 400, 1500, 0, 0);
	r.key.dir = TJ_DIR_IN;
	feed(x, r);
	assert_int_equal(feed(x, call(1, 22, 0, 5, 400, 1600, 1700, 0)), 1);
	b = find(&x->c, 11);
	assert_float_equal(x->c.x[b][TJ_F_THREAD_CONTEXT], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_THREAD_NO_CONTEXT], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_PARENT_CALLED_DEST], 0, 0);
	tj_feat_assign(x->f, &x->c, -1);
	fx_free(x);
}

static void test_reply_before_response(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	/* A replies at 1350 us, before the call's response (1500): a
	 * synchronous parent cannot have waited for it */
	feed(x, srv(1, 10, 0, 5, 100, 1000, 1000, 1350, 100));
	feed(x, srv(1, 11, 0, 5, 100, 1100, 1100, 1600, 100));
	assert_int_equal(feed(x, call(1, 20, 0, 5, 100, 1200, 1500, 0)), 1);
	int a = find(&x->c, 10), b = find(&x->c, 11);
	assert_float_equal(x->c.x[a][TJ_F_REPLY_BEFORE_RESPONSE], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_REPLY_BEFORE_RESPONSE], 0, 0);
	assert_float_equal(x->c.x[a][TJ_F_DT_REPLY], -log1p(150), 1e-9);
	fx_free(x);
}

/* Only order decides: an event loop (one thread) holds three requests and
 * writes their calls to one upstream in arrival order; nothing about
 * threads tells them apart.  The head of the FIFO is the oldest request
 * with no call to that destination yet, and moves as calls are assigned. */
static void test_fifo_only_order_decides(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	three_waiting(x);
	struct tj_message c = call_to(1, 30, 0, 100, 1300, 1400, 0, 6379);
	assert_int_equal(feed(x, c), 1);
	int a = find(&x->c, 10), b = find(&x->c, 11), d = find(&x->c, 12);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_FIRST], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_FIRST], 0, 0);
	assert_float_equal(x->c.x[d][TJ_F_FIFO_FIRST], 0, 0);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_OLDER], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_OLDER], log1p(1), 1e-12);
	assert_float_equal(x->c.x[d][TJ_F_FIFO_OLDER], log1p(2), 1e-12);
	/* the thread last read a request: no response signal */
	assert_float_equal(x->c.x[a][TJ_F_FIFO_AFTER_SAME_SOCK], 0, 0);
	tj_feat_assign(x->f, &x->c, a);
	/* the next call to the same upstream: B is the head now */
	c = call_to(1, 30, 100, 100, 1500, 1600, 1, 6379);
	assert_int_equal(feed(x, c), 1);
	a = find(&x->c, 10), b = find(&x->c, 11);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_FIRST], 0, 0);
	assert_float_equal(x->c.x[a][TJ_F_DEST_CALLS], log1p(1), 1e-12);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_FIRST], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_DEST_CALLS], 0, 0);
	tj_feat_assign(x->f, &x->c, b);
	/* a call to another upstream starts its own queue: A again */
	c = call_to(1, 31, 0, 100, 1700, 1800, 0, 9000);
	assert_int_equal(feed(x, c), 1);
	a = find(&x->c, 10);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_FIRST], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	fx_free(x);
}

/* A call message of two writes on a pipelined connection holds two calls
 * (models/call_units.h): the one it is named by, A's, and a hidden one,
 * made by the next request in line, B.  B must not look as if it still
 * waited for that call: the next call's FIFO head is C. */
static void test_fifo_counts_merged_calls(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	three_waiting(x);
	struct tj_message c = call_to(1, 30, 0, 200, 1300, 1400, 0, 6379);
	c.nsyscalls = 2;
	assert_int_equal(feed(x, c), 1);
	int a = find(&x->c, 10);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_FIRST], 1, 0);
	tj_feat_assign(x->f, &x->c, a);
	c = call_to(1, 30, 100, 200, 1500, 1600, 1, 6379);
	c.nsyscalls = 1;
	assert_int_equal(feed(x, c), 1);
	int b = find(&x->c, 11), d = find(&x->c, 12);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_FIRST], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_DEST_CALLS], log1p(1), 1e-12);
	assert_float_equal(x->c.x[d][TJ_F_FIFO_FIRST], 1, 0);
	tj_feat_assign(x->f, &x->c, d);
	fx_free(x);
}

/* The same two-write, two-calls'-bytes message on a queue that never
 * pipelined (forty one-write calls before it) is one call written in
 * pieces, headers then body (call_units.h): B made no call and is still
 * the FIFO head at the next call. */
static void test_fifo_split_call_not_merged(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	for (uint64_t i = 0; i < 40; i++) {
		uint64_t t = 100 * i;
		feed(x, srv(1, 1000 + i, 0, 5, 100, t, t, t + 90, 100));
		assert_int_equal(feed(x, call_to(1, 30, 50 * i, 200, t + 10, t + 20, (uint32_t)i, 6379)), 1);
		tj_feat_assign(x->f, &x->c, find(&x->c, 1000 + i));
	}
	feed(x, srv(1, 10, 0, 5, 100, 5000, 5000, 9000, 100));
	feed(x, srv(1, 11, 0, 5, 100, 5100, 5100, 9000, 100));
	feed(x, srv(1, 12, 0, 5, 100, 5200, 5200, 9000, 100));
	struct tj_message c = call_to(1, 30, 2000, 200, 5300, 5400, 40, 6379);
	c.nsyscalls = 2;
	c.bytes = 100;
	assert_int_equal(feed(x, c), 1);
	assert_int_equal(x->c.units_, 1);
	tj_feat_assign(x->f, &x->c, find(&x->c, 10));
	assert_int_equal(feed(x, call_to(1, 30, 2100, 200, 5500, 5600, 41, 6379)), 1);
	int b = find(&x->c, 11);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_FIRST], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_DEST_CALLS], 0, 0);
	tj_feat_assign(x->f, &x->c, b);
	fx_free(x);
}

/* The queue's order by the events alone: three requests wait, calls to
 * one upstream come; whatever the decisions say (here: always "none", and
 * once a wrong one), the head moves one request per call, the rank counts
 * the waiting older ones, and a passed request says so. */
static void test_queue_order_without_decisions(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	three_waiting(x);
	/* another process's request is never in this queue */
	feed(x, srv(1, 13, 0, 6, 300, 1250, 1250, 9000, 300));
	assert_int_equal(feed(x, call_to(1, 30, 0, 100, 1300, 1400, 0, 6379)), 1);
	int a = find(&x->c, 10), b = find(&x->c, 11), d = find(&x->c, 12);
	int o = find(&x->c, 13);
	assert_true(a >= 0 && b >= 0 && d >= 0 && o >= 0);
	assert_float_equal(x->c.x[a][TJ_F_QUEUE_HEAD], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_QUEUE_HEAD], 0, 0);
	assert_float_equal(x->c.x[a][TJ_F_QUEUE_RANK], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_QUEUE_RANK], log1p(1), 1e-12);
	assert_float_equal(x->c.x[d][TJ_F_QUEUE_RANK], log1p(2), 1e-12);
	assert_float_equal(x->c.x[o][TJ_F_QUEUE_HEAD], 0, 0);
	assert_float_equal(x->c.x[o][TJ_F_QUEUE_RANK], 0, 0);
	assert_float_equal(x->c.x[o][TJ_F_QUEUE_PASSED], 0, 0);
	for (int j = 0; j < 3; j++)
		assert_float_equal(x->c.x[j == 0 ? a : j == 1 ? b : d][TJ_F_QUEUE_PASSED], 0, 0);
	tj_feat_assign(x->f, &x->c, -1); /* no decision moves the queue */
	assert_int_equal(feed(x, call_to(1, 30, 100, 100, 1500, 1600, 1, 6379)), 1);
	a = find(&x->c, 10), b = find(&x->c, 11), d = find(&x->c, 12);
	assert_float_equal(x->c.x[a][TJ_F_QUEUE_PASSED], 1, 0);
	assert_float_equal(x->c.x[a][TJ_F_QUEUE_HEAD], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_QUEUE_HEAD], 1, 0);
	assert_float_equal(x->c.x[d][TJ_F_QUEUE_RANK], log1p(1), 1e-12);
	/* the decision-fed FIFO head stays A, given no call */
	assert_float_equal(x->c.x[a][TJ_F_FIFO_FIRST], 1, 0);
	tj_feat_assign(x->f, &x->c, a); /* wrong: the queue does not care */
	/* another destination has its own queue: A is its head */
	assert_int_equal(feed(x, call_to(1, 31, 0, 100, 1600, 1650, 0, 9000)), 1);
	a = find(&x->c, 10);
	assert_float_equal(x->c.x[a][TJ_F_QUEUE_HEAD], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	assert_int_equal(feed(x, call_to(1, 30, 200, 100, 1700, 1800, 2, 6379)), 1);
	d = find(&x->c, 12), b = find(&x->c, 11);
	assert_float_equal(x->c.x[d][TJ_F_QUEUE_HEAD], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_QUEUE_PASSED], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	/* the queue is empty: nobody waits, the mark stays on C */
	assert_int_equal(feed(x, call_to(1, 30, 300, 100, 1900, 2000, 3, 6379)), 1);
	for (size_t j = 0; j < x->c.n; j++)
		assert_float_equal(x->c.x[j][TJ_F_QUEUE_HEAD], 0, 0);
	d = find(&x->c, 12);
	assert_float_equal(x->c.x[d][TJ_F_QUEUE_PASSED], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	/* a request arriving after the mark waits again, and heads the queue */
	feed(x, srv(1, 14, 0, 5, 100, 2100, 2100, 9000, 100));
	assert_int_equal(feed(x, call_to(1, 30, 400, 100, 2200, 2300, 4, 6379)), 1);
	assert_float_equal(x->c.x[find(&x->c, 14)][TJ_F_QUEUE_HEAD], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	fx_free(x);
}

/* Counted in call units where the queue pipelines (call_units.h): a
 * two-write message of two calls' bytes holds A's call and the next in
 * line's, B's, so the next call's head is C, with no decision given. */
static void test_queue_counts_call_units(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	three_waiting(x);
	feed(x, srv(1, 13, 0, 5, 100, 1250, 1250, 9000, 100));
	struct tj_message c = call_to(1, 30, 0, 200, 1300, 1400, 0, 6379);
	c.nsyscalls = 2;
	assert_int_equal(feed(x, c), 1);
	assert_int_equal(x->c.units_, 2);
	assert_float_equal(x->c.x[find(&x->c, 10)][TJ_F_QUEUE_HEAD], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	c = call_to(1, 30, 100, 200, 1500, 1600, 1, 6379);
	assert_int_equal(feed(x, c), 1);
	int a = find(&x->c, 10), b = find(&x->c, 11), d = find(&x->c, 12);
	assert_float_equal(x->c.x[a][TJ_F_QUEUE_PASSED], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_QUEUE_PASSED], 1, 0);
	assert_float_equal(x->c.x[d][TJ_F_QUEUE_HEAD], 1, 0);
	assert_float_equal(x->c.x[find(&x->c, 13)][TJ_F_QUEUE_RANK], log1p(1), 1e-12);
	tj_feat_assign(x->f, &x->c, -1);
	fx_free(x);
}

/* Only the last-received reply decides: a worker thread that read no
 * request calls once for B, reads the response, and calls again (a
 * sequential dependent call); A and B are otherwise alike. */
static void test_reply_parent_only_reply_decides(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	feed(x, srv(1, 10, 0, 5, 100, 1000, 1000, 9000, 100));
	feed(x, srv(1, 11, 0, 5, 100, 1000, 1000, 9000, 100));
	assert_int_equal(feed(x, call(1, 20, 0, 5, 300, 1200, 1300, 0)), 1);
	int a = find(&x->c, 10), b = find(&x->c, 11);
	assert_float_equal(x->c.x[a][TJ_F_REPLY_PARENT], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_REPLY_PARENT], 0, 0);
	tj_feat_assign(x->f, &x->c, b);
	assert_int_equal(feed(x, response(1, 20, 300, 1300)), 0);
	/* the next call goes out on another socket */
	assert_int_equal(feed(x, call(1, 21, 0, 5, 300, 1400, 1500, 0)), 1);
	a = find(&x->c, 10), b = find(&x->c, 11);
	assert_float_equal(x->c.x[b][TJ_F_REPLY_PARENT], 1, 0);
	assert_float_equal(x->c.x[a][TJ_F_REPLY_PARENT], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_REPLY_PARENT_SAME_SOCK], 0, 0);
	tj_feat_assign(x->f, &x->c, b);
	/* reading a request ends the reply signal */
	feed(x, srv(1, 12, 0, 5, 300, 1600, 1600, 9000, 300));
	assert_int_equal(feed(x, call(1, 22, 0, 5, 300, 1700, 1800, 0)), 1);
	b = find(&x->c, 11);
	assert_float_equal(x->c.x[b][TJ_F_REPLY_PARENT], 0, 0);
	tj_feat_assign(x->f, &x->c, -1);
	fx_free(x);
}

/* They conflict: a loop reads the response of A's call on the shared
 * connection and writes the next call on that same connection.  The
 * reply says "continue A", the queue says "B, the next waiting request";
 * both are shown, each on its candidate, with the same-socket flags that
 * let the fitted weights choose. */
static void test_fifo_and_reply_conflict(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	feed(x, srv(1, 10, 0, 5, 100, 1000, 1000, 9000, 100));
	feed(x, srv(1, 11, 0, 5, 100, 1100, 1100, 9000, 100));
	struct tj_message c = call_to(1, 30, 0, 100, 1200, 1300, 0, 6379);
	assert_int_equal(feed(x, c), 1);
	int a = find(&x->c, 10);
	tj_feat_assign(x->f, &x->c, a);
	assert_int_equal(feed(x, response(1, 30, 100, 1300)), 0);
	c = call_to(1, 30, 100, 100, 1310, 1400, 1, 6379);
	assert_int_equal(feed(x, c), 1);
	a = find(&x->c, 10);
	int b = find(&x->c, 11);
	assert_float_equal(x->c.x[a][TJ_F_REPLY_PARENT], 1, 0);
	assert_float_equal(x->c.x[a][TJ_F_REPLY_PARENT_SAME_SOCK], 1, 0);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_FIRST], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_REPLY_PARENT], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_FIRST], 1, 0);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_AFTER_SAME_SOCK], 1, 0);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_AFTER_SAME_SOCK], 0, 0);
	tj_feat_assign(x->f, &x->c, b);
	fx_free(x);
}

/* Another process's requests are never the head of this process's queue. */
static void test_fifo_keeps_to_the_process(void **state)
{
	(void)state;
	struct fx *x = fx_new(0, 0);
	feed(x, srv(1, 10, 0, 7, 700, 1000, 1000, 9000, 700));
	feed(x, srv(1, 11, 0, 5, 100, 1100, 1100, 9000, 100));
	assert_int_equal(feed(x, call(1, 30, 0, 5, 100, 1200, 1300, 0)), 1);
	int a = find(&x->c, 10), b = find(&x->c, 11);
	assert_float_equal(x->c.x[a][TJ_F_FIFO_FIRST], 0, 0);
	assert_float_equal(x->c.x[b][TJ_F_FIFO_FIRST], 1, 0);
	tj_feat_assign(x->f, &x->c, -1);
	fx_free(x);
}

/* A stream of requests, calls and responses on one node: 3 threads, 40
 * requests, calls answered a little later, deterministic. */
static size_t shared_stream(struct tj_message *out, size_t cap)
{
	size_t n = 0;
	uint64_t t = 1000, seed = 7;
	for (uint64_t i = 0; i < 40 && n + 3 <= cap; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t tid = 10 + (uint32_t)((seed >> 33) % 3);
		out[n++] = srv(1, 100 + i, 0, 5, tid, t, t + 2, t + 400, tid);
		out[n++] = call_to(1, 500 + i % 4, i, tid, t + 5 + (seed >> 40) % 50,
				   t + 90, i >= 4, (uint16_t)(80 + i % 2));
		out[n++] = response(1, 500 + i % 4, tid, t + 90);
		t += 20 + (seed >> 50) % 30;
	}
	return n;
}

/* Sharing a memo never changes a value: states that share it give the
 * features of states that do not, whatever each decides, and a state
 * with other candidate rules recomputes instead of copying.  [3] decides
 * as [0] does, so its decided columns' log1p come from the memo (the
 * candidates' last calls are the same); [1]'s differ and are computed. */
static void test_shared_memo_changes_nothing(void **state)
{
	(void)state;
	struct tj_message ms[128];
	size_t nm = shared_stream(ms, 128);
	struct tj_feat_memo *memo = NULL;
	struct tj_err err = { 0 };
	assert_int_equal(tj_feat_memo_new(&memo, &err), 0);
	/* [0] first, [1] last, [2] first with a 60 us window, [3] first:
	 * shared; [4..7] alone */
	struct fx *x[8];
	for (int i = 0; i < 8; i++)
		x[i] = fx_new(8, (i % 4 == 2 ? 60 : 1000) * US);
	for (int i = 0; i < 4; i++)
		tj_feat_share(x[i]->f, memo);
	size_t calls = 0, compared = 0;
	for (size_t k = 0; k < nm; k++) {
		int rc[8];
		for (int i = 0; i < 8; i++)
			rc[i] = feed(x[i], ms[k]);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(rc[i], rc[i + 4]);
			if (rc[i] != 1)
				continue;
			const struct tj_feat_call *a = &x[i]->c, *b = &x[i + 4]->c;
			assert_int_equal(a->n, b->n);
			for (size_t j = 0; j < a->n; j++)
				for (size_t f = 0; f < TJ_FEAT_N; f++)
					assert_memory_equal(&a->x[j][f], &b->x[j][f], sizeof(double));
			compared += a->n;
		}
		calls += rc[0] == 1;
		for (int i = 0; i < 8; i++) {
			int pick = x[i]->c.n == 0 ? -1 : i % 4 == 1 ? (int)x[i]->c.n - 1 : 0;
			if (rc[i] == 1)
				tj_feat_assign(x[i]->f, &x[i]->c, pick);
		}
	}
	assert_int_equal(calls, 40);
	assert_true(compared > 40); /* calls had several candidates */
	for (int i = 0; i < 8; i++)
		fx_free(x[i]);
	tj_feat_memo_free(memo);
}

static void test_refuses_bad_options(void **state)
{
	(void)state;
	struct tj_feat *f = NULL;
	struct tj_feat_opts o = { TJ_FEAT_MAX_CAND + 1, 0 };
	struct tj_err err = { 0 };
	assert_true(tj_feat_new(&f, &o, &err) < 0);
	assert_non_null(strstr(err.msg, "max_cand"));
}

static void test_names_are_unique(void **state)
{
	(void)state;
	for (int i = 0; i < TJ_FEAT_N; i++) {
		assert_non_null(tj_feat_names[i]);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(tj_feat_names[i], tj_feat_names[j]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_candidates_and_basic_features),
		cmocka_unit_test(test_assign_feeds_history),
		cmocka_unit_test(test_unknown_ids_are_not_same),
		cmocka_unit_test(test_window_and_cap),
		cmocka_unit_test(test_many_requests_stay_bounded),
		cmocka_unit_test(test_context_follows_responses),
		cmocka_unit_test(test_reply_before_response),
		cmocka_unit_test(test_fifo_only_order_decides),
		cmocka_unit_test(test_queue_order_without_decisions),
		cmocka_unit_test(test_queue_counts_call_units),
		cmocka_unit_test(test_fifo_counts_merged_calls),
		cmocka_unit_test(test_fifo_split_call_not_merged),
		cmocka_unit_test(test_reply_parent_only_reply_decides),
		cmocka_unit_test(test_fifo_and_reply_conflict),
		cmocka_unit_test(test_fifo_keeps_to_the_process),
		cmocka_unit_test(test_shared_memo_changes_nothing),
		cmocka_unit_test(test_refuses_bad_options),
		cmocka_unit_test(test_names_are_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
