/* The look-ahead links (correlate/lookahead.h) on hand-made message
 * sequences: where only completion decides, where only backward
 * continuation decides, where a handler that also wrote a response gives
 * its next call back to the base (FIFO), where an anchor that arrived after
 * the call is ruled out, where an event loop's calls make no link, the
 * bounded deferral, a FIFO hand-off's continuation that must not count and
 * a same-connection one that must, and the correlator's refusal of bad
 * params. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "correlate/lookahead.h"
#include "correlate/correlator.h"
#include "test_correlator_rig.h"

#define NODE 1
#define PID 7
#define US 1000ull

struct got {
	size_t n;
	struct tj_edge e[64];
	enum tj_la_why why[64];
};

static int collect(void *ctx, const struct tj_edge *e, const struct tj_edge *base,
		   enum tj_la_why why)
{
	struct got *g = ctx;
	(void)base;
	if (g->n < 64) {
		g->e[g->n] = *e;
		g->why[g->n++] = why;
	}
	return 0;
}

static struct tj_msgkey key(uint64_t sock, int dir)
{
	struct tj_msgkey k = { .node = NODE, .sock = sock, .offset = 0, .dir = (uint8_t)dir };
	return k;
}

/* One message: on sock, dir, by thread tid, from t0 to t1, its reply at
 * reply (0: none). */
static struct tj_message msg(uint64_t sock, int role, int dir, uint32_t tid, uint64_t t0,
			     uint64_t t1, uint64_t reply)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key = key(sock, dir);
	m.role = (uint8_t)role;
	m.is_request = (role == TJ_ROLE_CLIENT) == (dir == TJ_DIR_OUT);
	m.pid = PID;
	m.tid_first = m.tid_last = tid;
	m.ts_first = t0;
	m.ts_last = t1;
	m.ts_reply = reply;
	m.tid_reply = tid;
	return m;
}

static struct tj_message request(uint64_t sock, uint32_t tid, uint64_t t, uint64_t resp)
{
	return msg(sock, TJ_ROLE_SERVER, TJ_DIR_IN, tid, t, t, resp);
}

static struct tj_message response(uint64_t sock, uint32_t tid, uint64_t t)
{
	return msg(sock, TJ_ROLE_SERVER, TJ_DIR_OUT, tid, t, t, 0);
}

static struct tj_message call(uint64_t sock, uint32_t tid, uint64_t t, uint64_t reply)
{
	return msg(sock, TJ_ROLE_CLIENT, TJ_DIR_OUT, tid, t, t, reply);
}

static struct tj_message reply(uint64_t sock, uint32_t tid, uint64_t t)
{
	return msg(sock, TJ_ROLE_CLIENT, TJ_DIR_IN, tid, t, t, 0);
}

struct run {
	struct tj_la *la;
	struct got got;
	struct tj_err err;
};

static void start(struct run *r, double share)
{
	memset(r, 0, sizeof(*r));
	struct tj_la_opts o = { 50000 * US, TJ_LA_SYNC, share, NULL, 0 };
	assert_int_equal(tj_la_new(&r->la, &o, collect, &r->got, &r->err), 0);
}

static void feed(struct run *r, struct tj_message m)
{
	assert_int_equal(tj_la_message(r->la, &m, &r->err), 0);
}

/* The base's decision for the call on sock: parent the request on psock. */
static void base(struct run *r, uint64_t sock, uint64_t psock)
{
	struct tj_edge e = { .child = key(sock, TJ_DIR_OUT), .has_parent = 1,
			     .parent = key(psock, TJ_DIR_IN), .score = 0.6 };
	assert_int_equal(tj_la_base(r->la, &e, &r->err), 0);
}

/* The decided parent's socket of the call on sock (0: none; -1: not yet). */
static int64_t parent_of(const struct run *r, uint64_t sock, enum tj_la_why *why)
{
	for (size_t i = 0; i < r->got.n; i++)
		if (r->got.e[i].child.sock == sock) {
			if (why)
				*why = r->got.why[i];
			return r->got.e[i].has_parent ? (int64_t)r->got.e[i].parent.sock : 0;
		}
	return -1;
}

/* Two requests in flight, a worker (thread 5) blocks on call X, reads its
 * reply and answers request 11: X is 11's, whatever the base (FIFO: 10)
 * said.  Nothing else tells them apart. */
static void test_completion_decides(void **state)
{
	(void)state;
	struct run r;
	enum tj_la_why why;
	start(&r, 0.5);
	feed(&r, request(10, 2, 1 * US, 50 * US));
	feed(&r, request(11, 2, 2 * US, 20 * US));
	feed(&r, call(20, 5, 3 * US, 10 * US));
	base(&r, 20, 10);
	assert_int_equal(parent_of(&r, 20, NULL), -1); /* deferred: reply not read yet */
	feed(&r, reply(20, 5, 10 * US));
	feed(&r, response(11, 5, 20 * US));
	assert_int_equal(parent_of(&r, 20, NULL), -1); /* the handler has not ended */
	feed(&r, response(10, 6, 50 * US));
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(parent_of(&r, 20, &why), 11);
	assert_int_equal(why, TJ_LA_COMPLETION);
	tj_la_free(r.la);
}

/* A worker makes two sequential calls, X1 then X2 (written by the
 * handler of X1's reply), then answers request 11: X2 by completion, X1
 * by continuation, solved from the back; the base said 10 for both. */
static void test_backward_continuation(void **state)
{
	(void)state;
	struct run r;
	enum tj_la_why why;
	start(&r, 0.5);
	feed(&r, request(10, 2, 1 * US, 90 * US));
	feed(&r, request(11, 2, 2 * US, 40 * US));
	feed(&r, call(20, 5, 3 * US, 10 * US));
	base(&r, 20, 10);
	feed(&r, reply(20, 5, 10 * US));
	feed(&r, call(21, 5, 12 * US, 30 * US));
	base(&r, 21, 10);
	feed(&r, reply(21, 5, 30 * US));
	feed(&r, response(11, 5, 40 * US));
	feed(&r, request(12, 5, 60 * US, 0)); /* the worker's next read ends the handler */
	assert_int_equal(parent_of(&r, 21, &why), 11);
	assert_int_equal(why, TJ_LA_COMPLETION);
	assert_int_equal(parent_of(&r, 20, &why), 11);
	assert_int_equal(why, TJ_LA_CONTINUATION);
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	tj_la_free(r.la);
}

/* The handler of X's reply answers request 11 and then writes call Y:
 * 11 is done, so Y is some queued request's (the base, FIFO, says 10) and
 * no continuation joins it to X. */
static void test_response_ends_the_request(void **state)
{
	(void)state;
	struct run r;
	enum tj_la_why why;
	start(&r, 0.5);
	feed(&r, request(10, 2, 1 * US, 90 * US));
	feed(&r, request(11, 2, 2 * US, 20 * US));
	feed(&r, call(20, 5, 3 * US, 10 * US));
	base(&r, 20, 11);
	feed(&r, reply(20, 5, 10 * US));
	feed(&r, response(11, 5, 20 * US));
	feed(&r, call(21, 5, 25 * US, 40 * US));
	base(&r, 21, 10);
	feed(&r, reply(21, 5, 40 * US));
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(parent_of(&r, 20, &why), 11);
	assert_int_equal(why, TJ_LA_COMPLETION);
	assert_int_equal(parent_of(&r, 21, &why), 10);
	assert_int_equal(why, TJ_LA_BASE);
	tj_la_free(r.la);
}

/* The response written after X's reply is of a request that arrived
 * after X was written: it cannot be X's parent, so the base stands. */
static void test_later_request_ruled_out(void **state)
{
	(void)state;
	struct run r;
	enum tj_la_why why;
	start(&r, 0.5);
	feed(&r, request(10, 2, 1 * US, 90 * US));
	feed(&r, call(20, 5, 3 * US, 10 * US));
	base(&r, 20, 10);
	feed(&r, request(11, 2, 5 * US, 20 * US));
	feed(&r, reply(20, 5, 10 * US));
	feed(&r, response(11, 5, 20 * US));
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(parent_of(&r, 20, &why), 10);
	assert_int_equal(why, TJ_LA_BASE);
	assert_int_equal(tj_la_stats(r.la)->invalid_anchor, 1);
	tj_la_free(r.la);
}

/* An event loop: between writing X and reading its reply the thread read
 * another request, so X was not synchronous; with every call of the
 * process like that, its handlers make no link and the base stands. */
static void test_event_loop_makes_no_link(void **state)
{
	(void)state;
	struct run r;
	enum tj_la_why why;
	start(&r, 0.95);
	feed(&r, request(10, 5, 1 * US, 50 * US));
	feed(&r, call(20, 5, 3 * US, 10 * US));
	base(&r, 20, 10);
	feed(&r, request(11, 5, 5 * US, 20 * US));
	feed(&r, reply(20, 5, 10 * US));
	feed(&r, response(11, 5, 20 * US));
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(parent_of(&r, 20, &why), 10);
	assert_int_equal(why, TJ_LA_BASE);
	assert_int_equal(tj_la_stats(r.la)->completions, 0);
	tj_la_free(r.la);
}

/* An event loop (thread 5 reads another request between each call and its
 * reply) that answers first thing in the handler of the last reply, as
 * nginx does: once that share is learned, the response after a reply is a
 * completion, though the base took the newest request.  A loop that
 * writes something else first (a timer's call) learns the opposite and
 * keeps the base. */
static void loop(int answers_first, uint64_t *completed, uint64_t *right)
{
	struct run r;
	start(&r, 0.95);
	uint64_t t = 1 * US;
	for (uint64_t i = 0; i < 40; i++, t += 10 * US) {
		uint64_t a = 100 + i, b = 200 + i, c = 300 + i, d = 400 + i;
		feed(&r, request(a, 5, t, t + 5 * US));
		feed(&r, call(c, 5, t + 1 * US, t + 3 * US));
		base(&r, c, b);
		feed(&r, request(b, 5, t + 2 * US, 0));
		feed(&r, reply(c, 5, t + 3 * US));
		if (!answers_first)
			feed(&r, call(d, 5, t + 4 * US, 0));
		feed(&r, response(a, 5, t + 5 * US));
	}
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	*completed = tj_la_stats(r.la)->decided[TJ_LA_COMPLETION];
	*right = 0;
	for (uint64_t i = 0; i < 40; i++)
		*right += parent_of(&r, 300 + i, NULL) == (int64_t)(100 + i);
	tj_la_free(r.la);
}

/* A worker whose calls go out merged with others (several write syscalls
 * in one message: requests pipelined on one connection) makes no link,
 * though each looks synchronous: the next read on a pipelined connection
 * is an older call's reply. */
static void test_pipelined_makes_no_link(void **state)
{
	(void)state;
	struct run r;
	enum tj_la_why why;
	start(&r, 0.95);
	uint64_t t = 1 * US;
	for (uint64_t i = 0; i < 40; i++, t += 10 * US) {
		uint64_t a = 100 + i, b = 200 + i, c = 300 + i;
		feed(&r, request(a, 2, t, t + 8 * US));
		feed(&r, request(b, 2, t + 1 * US, t + 5 * US));
		struct tj_message m = call(c, 5, t + 2 * US, t + 3 * US);
		m.nsyscalls = 2;
		feed(&r, m);
		base(&r, c, a);
		feed(&r, reply(c, 5, t + 3 * US));
		feed(&r, response(b, 5, t + 5 * US));
		feed(&r, response(a, 6, t + 8 * US));
	}
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(tj_la_stats(r.la)->completions, 0);
	assert_int_equal(parent_of(&r, 339, &why), 139);
	assert_int_equal(why, TJ_LA_BASE);
	tj_la_free(r.la);
}

static void test_loop_answering_first(void **state)
{
	(void)state;
	uint64_t completed, right;
	loop(1, &completed, &right);
	assert_true(completed >= 20); /* after the share passed 0.95 */
	assert_int_equal(right, completed);
	loop(0, &completed, &right);
	assert_int_equal(completed, 0);
	assert_int_equal(right, 0);
}

/* Deferral is bounded: a long run of synchronous requests keeps only the
 * calls in flight waiting, and each is out once its handler ended. */
static void test_bounded_deferral(void **state)
{
	(void)state;
	struct run r;
	start(&r, 0.5);
	uint64_t t = 1 * US;
	for (uint64_t i = 0; i < 20000; i++, t += 10 * US) {
		uint64_t rq = 1000000 + i, cs = 2000000 + i;
		feed(&r, request(rq, 5, t, t + 5 * US));
		feed(&r, call(cs, 5, t + 1 * US, t + 3 * US));
		struct tj_edge e = { .child = key(cs, TJ_DIR_OUT), .has_parent = 0, .score = 0.5 };
		assert_int_equal(tj_la_base(r.la, &e, &r.err), 0);
		feed(&r, reply(cs, 5, t + 3 * US));
		feed(&r, response(rq, 5, t + 5 * US));
	}
	assert_true(tj_la_stats(r.la)->peak_pending <= 2);
	assert_true(tj_la_stats(r.la)->decided[TJ_LA_COMPLETION] >= 19999);
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(tj_la_stats(r.la)->decided[TJ_LA_COMPLETION], 20000);
	tj_la_free(r.la);
}

/* Every link (links=all, as queue-select's judge runs them), with or
 * without the FIFO hand-off rule. */
static void start_all(struct run *r, int no_handoff)
{
	memset(r, 0, sizeof(*r));
	struct tj_la_opts o = { 50000 * US, TJ_LA_ALL, 0.95, NULL, no_handoff };
	assert_int_equal(tj_la_new(&r->la, &o, collect, &r->got, &r->err), 0);
}

/* The call on sock at byte offset off, and its base decision. */
static struct tj_message call_at(uint64_t sock, uint64_t off, uint32_t tid, uint64_t t,
				 uint64_t reply_t)
{
	struct tj_message m = call(sock, tid, t, reply_t);
	m.key.offset = off;
	return m;
}

static void base_at(struct run *r, uint64_t sock, uint64_t off, uint64_t psock)
{
	struct tj_edge e = { .child = key(sock, TJ_DIR_OUT), .has_parent = 1,
			     .parent = key(psock, TJ_DIR_IN), .score = 0.6 };
	e.child.offset = off;
	assert_int_equal(tj_la_base(r->la, &e, &r->err), 0);
}

static int64_t parent_at(const struct run *r, uint64_t sock, uint64_t off,
			 enum tj_la_why *why)
{
	for (size_t i = 0; i < r->got.n; i++)
		if (r->got.e[i].child.sock == sock && r->got.e[i].child.offset == off) {
			*why = r->got.why[i];
			return r->got.e[i].has_parent ? (int64_t)r->got.e[i].parent.sock : 0;
		}
	return -1;
}

/* A FIFO hand-off: an event loop (thread 5) has read requests 10 and 11,
 * writes 10's call X on the pool's one connection (sock 20; 11 waits for
 * it), reads request 12 meanwhile (X is asynchronous), and the handler of
 * X's reply writes the oldest waiting call, 11's Y, on the connection it
 * freed; Y's reply handler answers 11.  The continuation X -> Y would hand X the anchor 11: with the rule
 * it is not made and X keeps the base (10); without it, X takes 11. */
static void handoff(int no_handoff, uint32_t rd, int64_t *x_parent, enum tj_la_why *x_why)
{
	struct run r;
	enum tj_la_why why;
	start_all(&r, no_handoff);
	feed(&r, request(10, 5, 1 * US, 90 * US));
	feed(&r, request(11, 5, 1500, 31 * US));
	feed(&r, call_at(20, 0, 5, 2 * US, 10 * US));
	base_at(&r, 20, 0, 10);
	feed(&r, request(12, 5, 3 * US, 95 * US));
	feed(&r, reply(20, rd, 10 * US));
	feed(&r, call_at(20, 100, rd, 11 * US, 30 * US)); /* the freed connection */
	base_at(&r, 20, 100, 11);
	feed(&r, reply(20, rd, 30 * US)); /* the reply's offset: key() says 0 */
	feed(&r, response(11, rd, 31 * US));
	feed(&r, request(13, rd, 40 * US, 0));
	feed(&r, response(10, 6, 90 * US));
	feed(&r, response(12, 6, 95 * US));
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(parent_at(&r, 20, 100, &why), 11);
	*x_parent = parent_at(&r, 20, 0, x_why);
	tj_la_free(r.la);
}

static void test_handoff_is_no_continuation(void **state)
{
	(void)state;
	int64_t p;
	enum tj_la_why why;
	handoff(1, 5, &p, &why);
	assert_int_equal(p, 10);
	assert_int_equal(why, TJ_LA_BASE);
	handoff(0, 5, &p, &why); /* the link the rule removes is really made without it */
	assert_int_equal(p, 11);
	assert_int_equal(why, TJ_LA_CONTINUATION);
}

/* The same events, but another OS thread (9) reads X's reply and writes
 * Y, as an M:N runtime's goroutine continues where it is scheduled: not a
 * loop's hand-off, so the continuation counts (synthetic mn-pool: such
 * links are right). */
static void test_other_thread_continuation_counts(void **state)
{
	(void)state;
	int64_t p;
	enum tj_la_why why;
	handoff(1, 9, &p, &why);
	assert_int_equal(p, 11);
	assert_int_equal(why, TJ_LA_CONTINUATION);
}

/* A real continuation on the same connection: a synchronous caller
 * (thread 5 reads nothing between X and its reply) writes its request's
 * next call Y on the keep-alive connection X's reply freed, then answers
 * 11.  The rule leaves it: X joins Y's group and takes 11, though the
 * base said 10. */
static void test_sync_continuation_on_same_socket_counts(void **state)
{
	(void)state;
	struct run r;
	enum tj_la_why why;
	start_all(&r, 1);
	feed(&r, request(10, 2, 1 * US, 90 * US));
	feed(&r, request(11, 2, 2 * US, 40 * US));
	feed(&r, call_at(20, 0, 5, 3 * US, 10 * US));
	base_at(&r, 20, 0, 10);
	feed(&r, reply(20, 5, 10 * US));
	feed(&r, call_at(20, 100, 5, 12 * US, 30 * US));
	base_at(&r, 20, 100, 10);
	feed(&r, reply(20, 5, 30 * US));
	feed(&r, response(11, 5, 40 * US));
	feed(&r, request(12, 5, 60 * US, 0));
	assert_int_equal(tj_la_finish(r.la, &r.err), 0);
	assert_int_equal(parent_at(&r, 20, 100, &why), 11);
	assert_int_equal(why, TJ_LA_COMPLETION);
	assert_int_equal(parent_at(&r, 20, 0, &why), 11);
	assert_int_equal(why, TJ_LA_CONTINUATION);
	tj_la_free(r.la);
}

extern const struct tj_correlator tj_correlator_lookahead;

static void refused(const char *k, const char *v, const char *says)
{
	test_expect_refused(&tj_correlator_lookahead, k, v, says);
}

static void test_bad_params(void **state)
{
	(void)state;
	refused("base", "metadata", "param base=metadata");
	refused("horizon_ms", "0", "param horizon_ms=0");
	refused("horizon_ms", "soon", "param horizon_ms=soon");
	refused("links", "some", "param links=some");
	refused("sync_share", "1.5", "param sync_share=1.5");
	refused("explain", "2", "param explain=2");
	refused("colour", "red", "unknown param 'colour'");
	refused("threshold", "2", "threshold=2"); /* the base's own check */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_completion_decides),
		cmocka_unit_test(test_backward_continuation),
		cmocka_unit_test(test_response_ends_the_request),
		cmocka_unit_test(test_later_request_ruled_out),
		cmocka_unit_test(test_event_loop_makes_no_link),
		cmocka_unit_test(test_loop_answering_first),
		cmocka_unit_test(test_pipelined_makes_no_link),
		cmocka_unit_test(test_bounded_deferral),
		cmocka_unit_test(test_handoff_is_no_continuation),
		cmocka_unit_test(test_other_thread_continuation_counts),
		cmocka_unit_test(test_sync_continuation_on_same_socket_counts),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
