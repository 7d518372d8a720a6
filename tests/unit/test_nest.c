/* The nest correlator (correlate/nest.c) on hand-made cases.  Two rigs:
 * events replayed through the assembler (one event-loop thread whose calls
 * and responses come from timers, so no thread link says anything), and
 * messages fed as the replay delivers them (by first byte, each complete)
 * for the thread signals of M:N runtimes.  Cases: where only nesting
 * decides, calls per destination, calls nesting in no request or only in
 * an unanswered one, where only the response order keeps every request
 * matched, where only continuation decides and where it must stay out,
 * continuation groups the matching must take whole, a cycle of
 * continuations (a thread pool reading one reply and writing the next
 * request's call), a chain of calls to one destination, parallel calls,
 * a pipelining process (no answer), bad params, and --explain. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "test_util.h"
#include "test_correlator_rig.h"
#include "correlate/correlator.h"
#include "correlate/host.h"

extern const struct tj_correlator tj_correlator_nest;
extern const struct tj_correlator tj_correlator_nest_em;

#define NODE 1
#define PID 7
#define US 1000ull
#define MS 1000000ull


/* sock < 100: a server socket (a request); else a call to port `port`.
 * Every event on thread 11: one event loop. */
static struct tj_event ev(uint64_t ts, unsigned type, uint64_t sock, uint64_t off,
			  int64_t bytes, uint16_t port)
{
	struct tj_event e = test_event(1, ts, type, sock, off, bytes, 100, 11);
	e.lport = sock < 100 ? 8080 : 40000 + (uint16_t)sock;
	e.rport = sock < 100 ? 50000 : port;
	return e;
}

static void run_events(struct test_rig *r, const struct tj_event *evs, size_t n,
		const struct tj_params *p)
{
	test_rig_run(r, &tj_correlator_nest, evs, n, p);
}

#define expect test_expect_parent

/* A arrives, then B; call X nests in both, call Y only in A (written after
 * B was answered).  B, answered first, takes the oldest call nesting in it
 * (X); A takes Y.  The thread last read B before both calls, and X's reply
 * before Y: neither thread signal names A for Y. */
#define NESTED_EVS { \
	ev(1 * MS, TJ_EV_ACCEPT, 1, 0, 0, 0), \
	ev(1 * MS, TJ_EV_ACCEPT, 2, 0, 0, 0), \
	ev(2 * MS, TJ_EV_RECV, 1, 0, 100, 0),       /* A */ \
	ev(3 * MS, TJ_EV_RECV, 2, 0, 100, 0),       /* B */ \
	ev(4 * MS, TJ_EV_CONNECT, 101, 0, 0, 9001), \
	ev(4 * MS + 1, TJ_EV_SEND, 101, 0, 50, 9001), /* X: B's */ \
	ev(5 * MS, TJ_EV_RECV, 101, 0, 20, 9001), \
	ev(6 * MS, TJ_EV_SEND, 2, 0, 300, 0),       /* B answered (a timer) */ \
	ev(7 * MS, TJ_EV_SEND, 101, 50, 50, 9001),  /* Y: A's */ \
	ev(8 * MS, TJ_EV_RECV, 101, 20, 20, 9001), \
	ev(9 * MS, TJ_EV_SEND, 1, 0, 300, 0),       /* A answered */ \
}

static void test_nesting_decides_events(void **state)
{
	const struct tj_event nested[] = NESTED_EVS;
	struct test_rig r;
	run_events(&r, nested, sizeof(nested) / sizeof(*nested), NULL);
	assert_int_equal(r.set.n, 2);
	expect(&r.set, "1:101:out:0", "1:2:in:0");
	expect(&r.set, "1:101:out:50", "1:1:in:0");
	tj_edges_free(&r.set);
}

/* Parallel calls to two destinations, one each per request: the request
 * answered first takes one call of each (the oldest nesting in it), not
 * both calls to one destination. */
static void test_calls_per_destination(void **state)
{
	const struct tj_event evs[] = {
		ev(1 * MS, TJ_EV_ACCEPT, 1, 0, 0, 0),
		ev(1 * MS, TJ_EV_ACCEPT, 2, 0, 0, 0),
		ev(2 * MS, TJ_EV_RECV, 1, 0, 100, 0),         /* A */
		ev(3 * MS, TJ_EV_RECV, 2, 0, 100, 0),         /* B */
		ev(4 * MS, TJ_EV_CONNECT, 101, 0, 0, 9001),
		ev(4 * MS + 1, TJ_EV_SEND, 101, 0, 50, 9001), /* auth: B */
		ev(4 * MS + 2, TJ_EV_CONNECT, 102, 0, 0, 9002),
		ev(4 * MS + 3, TJ_EV_SEND, 102, 0, 50, 9002), /* catalog: B */
		ev(5 * MS, TJ_EV_RECV, 101, 0, 20, 9001),
		ev(5 * MS + 1, TJ_EV_CONNECT, 103, 0, 0, 9001),
		ev(5 * MS + 2, TJ_EV_SEND, 103, 0, 50, 9001), /* auth: A */
		ev(6 * MS, TJ_EV_RECV, 103, 0, 20, 9001),
		ev(7 * MS, TJ_EV_RECV, 102, 0, 20, 9002),
		ev(8 * MS, TJ_EV_SEND, 2, 0, 300, 0),         /* B answered */
		ev(9 * MS, TJ_EV_SEND, 102, 50, 50, 9002),    /* catalog: A */
		ev(10 * MS, TJ_EV_RECV, 102, 20, 20, 9002),
		ev(11 * MS, TJ_EV_SEND, 1, 0, 300, 0),        /* A answered */
	};
	struct test_rig r;
	run_events(&r, evs, sizeof(evs) / sizeof(*evs), NULL);
	assert_int_equal(r.set.n, 4);
	expect(&r.set, "1:101:out:0", "1:2:in:0");
	expect(&r.set, "1:102:out:0", "1:2:in:0");
	expect(&r.set, "1:103:out:0", "1:1:in:0");
	expect(&r.set, "1:102:out:50", "1:1:in:0");
	tj_edges_free(&r.set);
}

/* Calls that nest in no request get no parent: one written before any
 * request arrived, one whose reply came after the only response. */
static void test_no_nesting_no_parent(void **state)
{
	const struct tj_event evs[] = {
		ev(1 * MS, TJ_EV_CONNECT, 101, 0, 0, 9001),
		ev(1 * MS + 1, TJ_EV_SEND, 101, 0, 50, 9001), /* before any request */
		ev(2 * MS, TJ_EV_RECV, 101, 0, 20, 9001),
		ev(3 * MS, TJ_EV_ACCEPT, 1, 0, 0, 0),
		ev(4 * MS, TJ_EV_RECV, 1, 0, 100, 0),
		ev(5 * MS, TJ_EV_SEND, 101, 50, 50, 9001),    /* outlives the request */
		ev(6 * MS, TJ_EV_SEND, 1, 0, 300, 0),
		ev(7 * MS, TJ_EV_RECV, 101, 20, 20, 9001),
	};
	struct test_rig r;
	run_events(&r, evs, sizeof(evs) / sizeof(*evs), NULL);
	assert_int_equal(r.set.n, 2);
	expect(&r.set, "1:101:out:0", NULL);
	expect(&r.set, "1:101:out:50", NULL);
	tj_edges_free(&r.set);
}

/* A request whose response was never seen (lost, or open at the end) is
 * no candidate: a call nesting only in it gets no parent; a later call
 * still gets the answered request it nests in. */
static void test_unanswered_request(void **state)
{
	const struct tj_event evs[] = {
		ev(1 * MS, TJ_EV_ACCEPT, 1, 0, 0, 0),
		ev(1 * MS, TJ_EV_ACCEPT, 2, 0, 0, 0),
		ev(2 * MS, TJ_EV_RECV, 1, 0, 100, 0),         /* U: never answered */
		ev(3 * MS, TJ_EV_CONNECT, 101, 0, 0, 9001),
		ev(3 * MS + 1, TJ_EV_SEND, 101, 0, 50, 9001), /* only U could be its */
		ev(4 * MS, TJ_EV_RECV, 101, 0, 20, 9001),
		ev(5 * MS, TJ_EV_RECV, 2, 0, 100, 0),         /* B */
		ev(6 * MS, TJ_EV_SEND, 101, 50, 50, 9001),    /* B's */
		ev(7 * MS, TJ_EV_RECV, 101, 20, 20, 9001),
		ev(8 * MS, TJ_EV_SEND, 2, 0, 300, 0),         /* B answered */
		ev(9 * MS, TJ_EV_ACCEPT, 3, 0, 0, 0),
		ev(10 * MS, TJ_EV_RECV, 3, 0, 100, 0),
		ev(11 * MS, TJ_EV_SEND, 3, 0, 300, 0),
	};
	struct test_rig r;
	run_events(&r, evs, sizeof(evs) / sizeof(*evs), NULL);
	assert_int_equal(r.set.n, 2);
	expect(&r.set, "1:101:out:0", NULL);
	expect(&r.set, "1:101:out:50", "1:2:in:0");
	tj_edges_free(&r.set);
}

static void test_bad_params_named(void **state)
{
	struct tj_params p = { .n = 1 };
	struct tj_err err = { 0 };
	void *st;
	p.key[0] = "explain";
	p.val[0] = "2";
	assert_true(tj_correlator_nest.open(&st, &p, &err) < 0);
	assert_non_null(strstr(err.msg, "explain=2"));
	p.val[0] = "yes";
	assert_true(tj_correlator_nest.open(&st, &p, &err) < 0);
	assert_non_null(strstr(err.msg, "explain=yes"));
	p.key[0] = "cap";
	p.val[0] = "1";
	assert_true(tj_correlator_nest.open(&st, &p, &err) < 0);
	assert_non_null(strstr(err.msg, "'cap'"));
}

/* stderr into a temporary file until stderr_end, which reads it into buf
 * (n bytes, NUL-terminated) and removes it. */
struct captured {
	char path[64];
	int fd, saved;
};

static void stderr_begin(struct captured *c)
{
	snprintf(c->path, sizeof(c->path), "/tmp/tj-nest-explain.XXXXXX");
	c->fd = mkstemp(c->path);
	assert_true(c->fd >= 0);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	fflush(stderr);
	assert_true(dup2(c->fd, 2) >= 0);
}

static void stderr_end(struct captured *c, char *buf, size_t n)
{
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	ssize_t got = pread(c->fd, buf, n - 1, 0);
	close(c->fd);
	unlink(c->path);
	assert_true(got > 0);
	buf[got] = 0;
}

/* --explain names the signal that decided each call. */
static void test_explain_names_signal(void **state)
{
	struct captured cap;
	stderr_begin(&cap);
	struct tj_params p = { .n = 1 };
	p.key[0] = "explain";
	p.val[0] = "1";
	const struct tj_event nested[] = NESTED_EVS;
	struct test_rig r;
	run_events(&r, nested, sizeof(nested) / sizeof(*nested), &p);
	char buf[4096];
	stderr_end(&cap, buf, sizeof(buf));
	assert_non_null(strstr(buf, "1:101:out:50 <- 1:1:in:0 by nesting"));
	assert_non_null(strstr(buf, "2 calls matched by nesting"));
	tj_edges_free(&r.set);
}


/* ---- messages, as the replay delivers them ---- */


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

/* The correlator the message rig runs: nest, or nest-em for its cases. */
static const struct tj_correlator *rig_algo = &tj_correlator_nest;

static void open_rig(struct rig *r, const struct tj_params *p)
{
	memset(r, 0, sizeof(*r));
	tj_edge_set_sink_init(&r->sink, &r->set);
	assert_int_equal(rig_algo->open(&r->st, p, &r->err), 0);
}

static void feed(struct rig *r, struct tj_message m)
{
	assert_int_equal(rig_algo->message(r->st, &m, &r->sink.sink, &r->err), 0);
}

static void finish(struct rig *r)
{
	assert_int_equal(rig_algo->finish(r->st, &r->sink.sink, &r->err), 0);
	rig_algo->close(r->st);
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
static void test_nesting_decides_messages(void **state)
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
 * gives the first to A and strands B; deciding requests in response order
 * (the earliest deadline first) gives it to B. */
static void test_answered_first_matches_all(void **state)
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
 * for several requests' calls, so nest leaves them without a parent
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

/* Continuation groups and the matching must agree.  Gate on (warm-up);
 * a answers at 10 ms, b at 50 ms.  a's call to 9090 (100) is written
 * first, but its continuation (102) is read back at 20 ms, after a
 * answered: the group {100, 102} nests in b only.  The matching takes
 * the group whole: a, answered first, takes the other group {101, 103}
 * (not the oldest call, 100, as a matching of single calls would), and
 * each continuation goes with its head. */
static void test_group_taken_whole(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = warm(&r, 4, 40);
	feed(&r, request(1, 30, t, t + 10 * MS));             /* a */
	feed(&r, request(2, 30, t + 1 * US, t + 50 * MS));    /* b */
	feed(&r, call(100, 9090, 31, t + 2 * US, 40, t + 3 * MS));
	feed(&r, call(101, 9090, 31, t + 4 * US, 41, t + 4 * MS));
	feed(&r, call(102, 9091, 40, t + 5 * MS, 32, t + 20 * MS));
	feed(&r, call(103, 9091, 41, t + 6 * MS, 32, t + 8 * MS));
	finish(&r);
	assert_int_equal(parent_of(&r, 100), 2);
	assert_int_equal(parent_of(&r, 102), 2);
	assert_int_equal(parent_of(&r, 101), 1);
	assert_int_equal(parent_of(&r, 103), 1);
	tj_edges_free(&r.set);
}

/* A pool thread reads each reply and writes the next call, whichever
 * request it is for: calls to 9090 follow a 9091 reply (the previous
 * request's) and calls to 9091 a 9090 reply.  Both queues pass the share,
 * but the cycle says the threads never show a request between them:
 * continuation stays out, and every call goes to its own request by
 * nesting (following it would give each 9090 call the previous request). */
static void test_continuation_cycle_stays_out(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = 0;
	for (int i = 0; i < 60; i++, t += 10 * MS) {
		feed(&r, request(1000 + (uint64_t)i * 3, 30, t, t + 5 * MS));
		feed(&r, call(1001 + (uint64_t)i * 3, 9090, 50, t + 1 * MS, 50, t + 2 * MS));
		feed(&r, call(1002 + (uint64_t)i * 3, 9091, 50, t + 2100 * US, 50, t + 3 * MS));
	}
	finish(&r);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(parent_of(&r, 1001 + (uint64_t)i * 3), 1000 + (uint64_t)i * 3);
		assert_int_equal(parent_of(&r, 1002 + (uint64_t)i * 3), 1000 + (uint64_t)i * 3);
	}
	tj_edges_free(&r.set);
}

/* Two calls to one destination in a chain: the first after the request,
 * the second written by the thread that read the first's reply (half the
 * queue's calls each, no two written back to back: the shares say so
 * exactly).  Then two overlapping requests: oldest-first alone would give
 * a, answered first, both first calls; the chain gives each its own. */
static void test_chain_to_one_destination(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = 0;
	for (int i = 0; i < 40; i++, t += 10 * MS) {
		feed(&r, request(1000 + (uint64_t)i * 3, 30, t, t + 5 * MS));
		feed(&r, call(1001 + (uint64_t)i * 3, 9090, 30, t + 1 * MS, 30, t + 2 * MS));
		feed(&r, call(1002 + (uint64_t)i * 3, 9090, 30, t + 2100 * US, 30, t + 3 * MS));
	}
	feed(&r, request(1, 30, t, t + 50 * MS));              /* a */
	feed(&r, request(2, 31, t + 1 * US, t + 100 * MS));    /* b */
	feed(&r, call(100, 9090, 30, t + 2 * US, 40, t + 3 * MS));   /* a1 */
	feed(&r, call(101, 9090, 31, t + 4 * US, 41, t + 4 * MS));   /* b1 */
	feed(&r, call(102, 9090, 41, t + 6 * MS, 42, t + 7 * MS));   /* b2 */
	feed(&r, call(103, 9090, 40, t + 8 * MS, 43, t + 9 * MS));   /* a2 */
	finish(&r);
	assert_int_equal(parent_of(&r, 100), 1);
	assert_int_equal(parent_of(&r, 101), 2);
	assert_int_equal(parent_of(&r, 102), 2);
	assert_int_equal(parent_of(&r, 103), 1);
	assert_int_equal(parent_of(&r, 1002 + 39 * 3), 1000 + 39 * 3);
	tj_edges_free(&r.set);
}

/* A chain through another destination (Node's auth, catalog from auth's
 * reply, auth again from catalog's): two calls per request to 9090, none
 * written right after another, so a request's second call comes after
 * other requests' first ones.  Oldest-first would give a, answered
 * first, both first calls; fewest groups first serves b's first call to
 * b, then a's second to a. */
static void chain_via(struct rig *r, uint64_t sock, uint32_t rtid, uint32_t base, uint64_t t)
{
	feed(r, call(sock, 9090, rtid, t + 2 * US, base, t + 1 * MS));
	feed(r, call(sock + 1, 9092, base, t + 1100 * US, base + 1, t + 2 * MS));
	feed(r, call(sock + 2, 9090, base + 1, t + 3 * MS, base + 2, t + 3500 * US));
}

static void test_chain_fewest_first(void **state)
{
	(void)state;
	struct rig r;
	open_rig(&r, NULL);
	uint64_t t = 0;
	for (int i = 0; i < 40; i++, t += 10 * MS) {
		feed(&r, request(1000 + (uint64_t)i * 4, 30, t, t + 5 * MS));
		chain_via(&r, 1001 + (uint64_t)i * 4, 30, 40, t);
	}
	feed(&r, request(1, 30, t, t + 50 * MS));              /* a */
	feed(&r, request(2, 31, t + 1 * US, t + 100 * MS));    /* b */
	feed(&r, call(100, 9090, 30, t + 2 * US, 40, t + 1 * MS));        /* a1 */
	feed(&r, call(103, 9090, 31, t + 4 * US, 50, t + 1500 * US));     /* b1 */
	feed(&r, call(101, 9092, 40, t + 1100 * US, 41, t + 2 * MS));     /* a's */
	feed(&r, call(104, 9092, 50, t + 1600 * US, 51, t + 2500 * US));  /* b's */
	feed(&r, call(102, 9090, 41, t + 3 * MS, 42, t + 3500 * US));     /* a2 */
	feed(&r, call(105, 9090, 51, t + 4 * MS, 52, t + 4500 * US));     /* b2 */
	finish(&r);
	assert_int_equal(parent_of(&r, 100), 1);
	assert_int_equal(parent_of(&r, 101), 1);
	assert_int_equal(parent_of(&r, 102), 1);
	assert_int_equal(parent_of(&r, 103), 2);
	assert_int_equal(parent_of(&r, 104), 2);
	assert_int_equal(parent_of(&r, 105), 2);
	tj_edges_free(&r.set);
}

static void refused(const char *k, const char *v, const char *word)
{
	struct tj_params p = { 1, { k }, { v } };
	struct tj_err err = { 0 };
	void *st = NULL;
	assert_true(rig_algo->open(&st, &p, &err) < 0);
	assert_null(st);
	assert_non_null(strstr(err.msg, word));
	assert_non_null(strstr(err.msg, rig_algo->name));
}

static void test_bad_params(void **state)
{
	(void)state;
	refused("horizon_ms", "5", "horizon_ms"); /* nest-edf's: no longer a param */
	refused("gate_share", "abc", "gate_share");
	refused("gate_share", "0.5", "gate_share");
	refused("gate_share", "0.3", "gate_share");
	refused("gate_share", "1.5", "gate_share");
	refused("explain", "2", "explain");
	refused("window", "5", "window");
}

/* ---- nest-em: the delay model fitted from the log ---- */

/* Warm a process with n requests one at a time, 100 ms apart, each making
 * one call to port 9090 written 10-59 ms after it arrived (all alike),
 * answered 10.5 ms after the call's reply (always): what the delay model
 * fits, from groups that nest in one request each.  Sockets from 3000. */
static uint64_t warm_delays(struct rig *r, int n)
{
	uint64_t t = 0;
	for (int i = 0; i < n; i++, t += 100 * MS) {
		uint64_t w = t + (10 + (uint64_t)(i % 50)) * MS;
		feed(r, request(3000 + (uint64_t)i * 2, 30, t, w + MS + 10500 * US));
		feed(r, call(3001 + (uint64_t)i * 2, 9090, 31, w, 32, w + MS));
	}
	return t;
}

/* Then A (arrives t, answers t + 100 ms) and B (t + 5 ms, t + 105 ms),
 * one call each, both calls nesting in both requests: X written at
 * t + 20 ms, its reply at t + 94.5 ms (B's: 10.5 ms before B answers),
 * Y written at t + 50 ms, reply t + 89.5 ms (A's).  Nesting and the
 * counts allow both matchings; the older call to the request answered
 * first (nest) gives X to A.  The write delays (15-50 ms) are all as
 * likely; only the fitted reply-to-response delay (10.5 ms, never 5.5 or
 * 15.5) separates them. */
static void delay_case(struct rig *r, uint64_t t)
{
	feed(r, request(1, 40, t, t + 100 * MS));                          /* A */
	feed(r, request(2, 41, t + 5 * MS, t + 105 * MS));                  /* B */
	feed(r, call(100, 9090, 42, t + 20 * MS, 43, t + 94500 * US));      /* X */
	feed(r, call(101, 9090, 42, t + 50 * MS, 43, t + 89500 * US));      /* Y */
}

/* Run algo on nwarm warm-up requests then delay_case (params p); the
 * rig's edges are the caller's to free. */
static void run_delay_case(struct rig *r, const struct tj_correlator *algo, int nwarm,
			   const struct tj_params *p)
{
	rig_algo = algo;
	open_rig(r, p);
	delay_case(r, warm_delays(r, nwarm));
	finish(r);
	rig_algo = &tj_correlator_nest;
}

/* X (socket 100) went to request pa, Y (101) to pb; the edges freed. */
static void expect_xy(struct rig *r, uint64_t pa, uint64_t pb)
{
	assert_int_equal(parent_of(r, 100), pa);
	assert_int_equal(parent_of(r, 101), pb);
	tj_edges_free(&r->set);
}

static void test_em_delay_decides(void **state)
{
	(void)state;
	struct rig r;
	run_delay_case(&r, &tj_correlator_nest_em, 300, NULL);
	expect_xy(&r, 2, 1);
	/* nest, without the delays, takes the older call for A */
	run_delay_case(&r, &tj_correlator_nest, 300, NULL);
	expect_xy(&r, 1, 2);
}

/* Before any fit (fewer groups than a fit needs), nest-em is nest: the
 * model is not trusted until the log has shown it. */
static void test_em_unfitted_is_nest(void **state)
{
	(void)state;
	struct rig r;
	run_delay_case(&r, &tj_correlator_nest_em, 20, NULL);
	expect_xy(&r, 1, 2);
}

/* Where the fitted delays make the oldest group more likely the request's
 * than not, order decides (nest's rule), even if a newer group is as
 * likely: here the reply-to-response delay is 10.5 ms for both calls'
 * right requests and for X in A (A answers at t + 105 ms). */
static void test_em_order_where_oldest_fits(void **state)
{
	(void)state;
	struct rig r;
	rig_algo = &tj_correlator_nest_em;
	open_rig(&r, NULL);
	uint64_t t = warm_delays(&r, 300);
	feed(&r, request(1, 40, t, t + 105 * MS));
	feed(&r, request(2, 41, t + 5 * MS, t + 106 * MS));
	feed(&r, call(100, 9090, 42, t + 20 * MS, 43, t + 94500 * US));
	feed(&r, call(101, 9090, 42, t + 50 * MS, 43, t + 95500 * US));
	finish(&r);
	rig_algo = &tj_correlator_nest;
	expect_xy(&r, 1, 2);
}

/* --explain says which calls the delays placed, and the fitted model. */
static void test_em_explain(void **state)
{
	(void)state;
	struct captured cap;
	stderr_begin(&cap);
	struct tj_params p = { 1, { "explain" }, { "1" } };
	struct rig r;
	run_delay_case(&r, &tj_correlator_nest_em, 300, &p);
	static char buf[1 << 16];
	stderr_end(&cap, buf, sizeof(buf));
	assert_non_null(strstr(buf, "nest-em: 1:101:out:0 <- 1:1:in:0 by delay"));
	assert_non_null(strstr(buf, "1 groups placed by delay over an older one"));
	assert_non_null(strstr(buf, "response after the last reply median 10.000 ms"));
	tj_edges_free(&r.set);
}

static void test_em_bad_params(void **state)
{
	(void)state;
	rig_algo = &tj_correlator_nest_em;
	refused("gate_share", "abc", "gate_share");
	refused("gate_share", "0.5", "gate_share");
	refused("explain", "2", "explain");
	refused("window", "5", "window");
	refused("iters", "8", "iters");
	rig_algo = &tj_correlator_nest;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nesting_decides_events),
		cmocka_unit_test(test_calls_per_destination),
		cmocka_unit_test(test_no_nesting_no_parent),
		cmocka_unit_test(test_unanswered_request),
		cmocka_unit_test(test_bad_params_named),
		cmocka_unit_test(test_explain_names_signal),
		cmocka_unit_test(test_nesting_decides_messages),
		cmocka_unit_test(test_answered_first_matches_all),
		cmocka_unit_test(test_continuation_decides),
		cmocka_unit_test(test_continuation_stays_out),
		cmocka_unit_test(test_parallel_calls),
		cmocka_unit_test(test_pipelining_stays_out),
		cmocka_unit_test(test_group_taken_whole),
		cmocka_unit_test(test_continuation_cycle_stays_out),
		cmocka_unit_test(test_chain_to_one_destination),
		cmocka_unit_test(test_chain_fewest_first),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_em_delay_decides),
		cmocka_unit_test(test_em_unfitted_is_nest),
		cmocka_unit_test(test_em_order_where_oldest_fits),
		cmocka_unit_test(test_em_explain),
		cmocka_unit_test(test_em_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
