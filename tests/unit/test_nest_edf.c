/* The nest-edf correlator (correlate/nest_edf.c) on hand-made message
 * sequences, fed as the replay delivers them (by first byte, each
 * complete): where only nesting decides, where only earliest deadline
 * keeps every request matched (a FIFO by arrival would strand one), where
 * only continuation decides, where continuation must stay out (the queue
 * does not show the pattern), parallel calls to one destination, a
 * pipelining process (no answer), and the refusal of bad params. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "correlate/correlator.h"
#include "correlate/host.h"

extern const struct tj_correlator tj_correlator_nest_edf;

#define NODE 1
#define PID 7
#define US 1000ull
#define MS 1000000ull

struct rig {
	void *st;
	struct tj_edge_set set;
	struct tj_edge_set_sink sink;
	struct tj_err err;
};

static struct tj_msgkey key(uint64_t sock, int dir)
{
	struct tj_msgkey k = { .node = NODE, .sock = sock, .offset = 0, .dir = (uint8_t)dir };
	return k;
}

/* A request on sock read by tid at t, its response at resp (0: none). */
static struct tj_message request(uint64_t sock, uint32_t tid, uint64_t t, uint64_t resp)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key = key(sock, TJ_DIR_IN);
	m.role = TJ_ROLE_SERVER;
	m.is_request = 1;
	m.pid = PID;
	m.tid_first = m.tid_last = tid;
	m.ts_first = m.ts_last = t;
	m.ts_reply = resp;
	m.tid_reply = tid;
	m.family = 2;
	return m;
}

/* A call on sock to destination port dport, written by tid at t, its reply
 * read by rtid at reply. */
static struct tj_message call(uint64_t sock, uint16_t dport, uint32_t tid, uint64_t t,
			      uint32_t rtid, uint64_t reply)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key = key(sock, TJ_DIR_OUT);
	m.role = TJ_ROLE_CLIENT;
	m.is_request = 1;
	m.pid = PID;
	m.tid_first = m.tid_last = tid;
	m.ts_first = m.ts_last = t;
	m.ts_reply = reply;
	m.tid_reply = rtid;
	m.family = 2;
	m.raddr[0] = 10;
	m.raddr[3] = 2;
	m.rport = dport;
	return m;
}

static void open_rig(struct rig *r, const struct tj_params *p)
{
	memset(r, 0, sizeof(*r));
	tj_edge_set_sink_init(&r->sink, &r->set);
	assert_int_equal(tj_correlator_nest_edf.open(&r->st, p, &r->err), 0);
}

static void feed(struct rig *r, struct tj_message m)
{
	assert_int_equal(tj_correlator_nest_edf.message(r->st, &m, &r->sink.sink, &r->err), 0);
}

static void finish(struct rig *r)
{
	assert_int_equal(tj_correlator_nest_edf.finish(r->st, &r->sink.sink, &r->err), 0);
	tj_correlator_nest_edf.close(r->st);
	r->st = NULL;
}

/* The parent's socket of the call on sock (0: none); fails if no edge. */
static uint64_t parent_of(const struct rig *r, uint64_t sock)
{
	for (size_t i = 0; i < r->set.n; i++)
		if (r->set.edges[i].child.sock == sock && r->set.edges[i].child.dir == TJ_DIR_OUT)
			return r->set.edges[i].has_parent ? r->set.edges[i].parent.sock : 0;
	fail_msg("no edge for the call on socket %llu", (unsigned long long)sock);
	return 0;
}

/* Request A arrives first and answers last; B arrives after A, answers
 * at 3 ms.  A call at 0.5 ms whose reply begins at 5 ms: B had answered
 * by then, so only A can have made it, though B is the newer request
 * and the earlier deadline. */
static void test_nesting_decides(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	feed(&r, request(1, 10, 0, 10 * MS));           /* A */
	feed(&r, request(2, 11, 100 * US, 3 * MS));      /* B */
	feed(&r, call(100, 9090, 12, 500 * US, 13, 5 * MS));
	finish(&r);
	assert_int_equal(parent_of(&r, 100), 1);
	tj_edges_free(&r.set);
}

/* A (arrives 0, answers 20 ms) and B (arrives 0.1 ms, answers 5 ms) each
 * make one call to the same destination: the first at 2 ms (reply 3 ms),
 * the second at 4 ms (reply 6 ms).  The second cannot be B's (B answered
 * at 5 ms, before its reply), so the first must be.  FIFO by arrival
 * gives the first to A and strands B; earliest deadline gives it to B. */
static void test_earliest_deadline_matches_all(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	feed(&r, request(1, 10, 0, 20 * MS));
	feed(&r, request(2, 11, 100 * US, 5 * MS));
	feed(&r, call(100, 9090, 12, 2 * MS, 13, 3 * MS));
	feed(&r, call(101, 9090, 12, 4 * MS, 13, 6 * MS));
	finish(&r);
	assert_int_equal(parent_of(&r, 100), 2);
	assert_int_equal(parent_of(&r, 101), 1);
	tj_edges_free(&r.set);
}

/* Warm a process whose calls to port 9091 are written, in `shown` of
 * every 4 requests, by the thread that read the reply of that request's
 * call to port 9090 (an M:N loop writing the next call from the reply's
 * handler), the others by a thread that last read a request.  One
 * request at a time, 1 ms apart; sockets from 1000. */
static uint64_t warm(struct rig *r, int shown, int n)
{
	uint64_t t = 0;
	for (int i = 0; i < n; i++, t += 10 * MS) {
		uint32_t reader = 20 + (uint32_t)(i % 3);
		feed(r, request(1000 + (uint64_t)i * 4, 30, t, t + 5 * MS));
		feed(r, call(1001 + (uint64_t)i * 4, 9090, 31, t + 1 * MS, reader, t + 2 * MS));
		if (i % 4 < shown) {
			feed(r, call(1002 + (uint64_t)i * 4, 9091, reader, t + 2100 * US, 32, t + 3 * MS));
		} else { /* written by a thread whose last read was a request */
			feed(r, request(1003 + (uint64_t)i * 4, 33, t + 2050 * US, t + 2070 * US));
			feed(r, call(1002 + (uint64_t)i * 4, 9091, 33, t + 2100 * US, 32, t + 3 * MS));
		}
	}
	return t;
}

/* Then two overlapping requests: a (answers first) and b.  a's call to
 * 9090 is read back by thread 40, b's by thread 41; thread 41 writes the
 * next 9091 call first, then thread 40.  Earliest deadline alone gives the
 * first 9091 call to a; the continuation gives it to b. */
static void overlap(struct rig *r, uint64_t t)
{
	feed(r, request(1, 30, t, t + 50 * MS));               /* a */
	feed(r, request(2, 30, t + 1 * US, t + 100 * MS));     /* b */
	feed(r, call(100, 9090, 31, t + 2 * US, 40, t + 3 * MS));
	feed(r, call(101, 9090, 31, t + 4 * US, 41, t + 5 * MS));
	feed(r, call(102, 9091, 41, t + 6 * MS, 32, t + 7 * MS));
	feed(r, call(103, 9091, 40, t + 8 * MS, 32, t + 9 * MS));
}

static void test_continuation_decides(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = warm(&r, 4, 40);
	overlap(&r, t);
	finish(&r);
	assert_int_equal(parent_of(&r, 100), 1);
	assert_int_equal(parent_of(&r, 101), 2);
	assert_int_equal(parent_of(&r, 102), 2); /* continues b's call */
	assert_int_equal(parent_of(&r, 103), 1);
	/* the warm-up's continued calls went with their request */
	assert_int_equal(parent_of(&r, 1002), 1000);
	assert_int_equal(parent_of(&r, 1002 + 39 * 4), 1000 + 39 * 4);
	tj_edges_free(&r.set);
}

/* The same overlap where only half the queue's calls follow a reply: the
 * gate stays shut and earliest deadline decides. */
static void test_continuation_stays_out(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = warm(&r, 2, 40);
	overlap(&r, t);
	finish(&r);
	assert_int_equal(parent_of(&r, 102), 1);
	assert_int_equal(parent_of(&r, 103), 2);
	tj_edges_free(&r.set);
}

/* Every request makes two calls at once to one destination: k = 2 (learned
 * from the calls per request so far, so from the second request on), and
 * a request's second call is not pushed onto the next request. */
static void test_parallel_calls(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = 0;
	for (int i = 0; i < 40; i++, t += 10 * MS) {
		feed(&r, request(1000 + (uint64_t)i * 3, 30, t, t + 5 * MS));
		feed(&r, call(1001 + (uint64_t)i * 3, 9090, 31, t + 1 * MS, 32, t + 2 * MS));
		feed(&r, call(1002 + (uint64_t)i * 3, 9090, 33, t + 1100 * US, 34, t + 2 * MS));
	}
	finish(&r);
	int right = 0;
	for (int i = 1; i < 40; i++)
		right += parent_of(&r, 1001 + (uint64_t)i * 3) == 1000 + (uint64_t)i * 3 &&
			 parent_of(&r, 1002 + (uint64_t)i * 3) == 1000 + (uint64_t)i * 3;
	assert_int_equal(right, 39);
	tj_edges_free(&r.set);
}

/* A process whose call messages are written in several syscalls (requests
 * merged back to back on a pipelined connection): one message may stand
 * for several requests' calls, so nest-edf leaves them without a parent
 * rather than guess; the same calls in one syscall each are answered. */
static void pipelined(int nsys, uint64_t *answered)
{
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = 0;
	for (int i = 0; i < 40; i++, t += 10 * MS) {
		feed(&r, request(1000 + (uint64_t)i * 2, 30, t, t + 5 * MS));
		struct tj_message c = call(1001 + (uint64_t)i * 2, 9090, 31, t + 1 * MS, 32, t + 2 * MS);
		c.nsyscalls = (uint32_t)nsys;
		feed(&r, c);
	}
	finish(&r);
	*answered = 0;
	for (int i = 0; i < 40; i++)
		*answered += parent_of(&r, 1001 + (uint64_t)i * 2) == 1000 + (uint64_t)i * 2;
	tj_edges_free(&r.set);
}

static void test_pipelining_stays_out(void **state)
{
	(void)state;
	uint64_t answered;
	pipelined(2, &answered);
	assert_true(answered <= 1); /* the first, before the share is known */
	pipelined(1, &answered);
	assert_int_equal(answered, 40);
}

static void refused(const char *k, const char *v, const char *word)
{
	struct tj_params p = { 1, { k }, { v } };
	struct tj_err err = { 0 };
	void *st = NULL;
	assert_true(tj_correlator_nest_edf.open(&st, &p, &err) < 0);
	assert_null(st);
	assert_non_null(strstr(err.msg, word));
	assert_non_null(strstr(err.msg, "nest-edf"));
}

static void test_bad_params(void **state)
{
	(void)state;
	refused("horizon_ms", "-1", "horizon_ms");
	refused("horizon_ms", "abc", "horizon_ms");
	refused("gate_share", "0.3", "gate_share");
	refused("gate_share", "1.5", "gate_share");
	refused("explain", "2", "explain");
	refused("window", "5", "window");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nesting_decides),
		cmocka_unit_test(test_earliest_deadline_matches_all),
		cmocka_unit_test(test_continuation_decides),
		cmocka_unit_test(test_continuation_stays_out),
		cmocka_unit_test(test_parallel_calls),
		cmocka_unit_test(test_pipelining_stays_out),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
