/* The issue-fifo correlator (correlate/issue_fifo.c) on hand-made message
 * sequences of one event-loop thread: where only the destination's FIFO
 * decides (the freeing reply is another request's, the last request read
 * is a third's), where the FIFO must stay out (a continuation to another
 * destination from the same handler, a connection opened by an earlier
 * handler), where a queued request that already answered is passed over,
 * and the refusal of bad params. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "correlate/correlator.h"
#include "test_correlator_rig.h"

extern const struct tj_correlator tj_correlator_issue_fifo;

#define NODE 1
#define PID 7
#define TID 3
#define US 1000ull
#define PORT_A 9001
#define PORT_B 9002

struct rig {
	void *st;
	size_t n;
	struct tj_edge e[64];
	struct tj_err err;
	uint64_t off[512]; /* next offset per socket, per direction */
};

static int collect(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct rig *r = sink->ctx;
	if (r->n < 64)
		r->e[r->n++] = *e;
	return 0;
}

static void start(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(tj_correlator_issue_fifo.open(&r->st, NULL, &r->err), 0);
}

/* One message on sock (< 256), its offset the socket's running count in
 * that direction; rport says the destination of a client socket. */
static void feed(struct rig *r, uint64_t sock, int role, int dir, uint64_t t, uint64_t reply,
		 uint16_t rport, uint64_t opened)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key.node = NODE;
	m.key.sock = sock;
	m.key.dir = (uint8_t)dir;
	m.key.offset = r->off[sock * 2 + (unsigned)dir]++;
	m.seq = (uint32_t)m.key.offset;
	m.role = (uint8_t)role;
	m.is_request = (role == TJ_ROLE_CLIENT) == (dir == TJ_DIR_OUT);
	m.pid = PID;
	m.tid_first = m.tid_last = m.tid_reply = TID;
	m.ts_first = m.ts_last = t;
	m.ts_reply = reply;
	m.ts_sock_open = opened;
	m.rport = rport;
	m.lport = 8080;
	m.raddr[0] = 10;
	struct tj_edge_sink sink = { collect, r };
	assert_int_equal(tj_correlator_issue_fifo.message(r->st, &m, &sink, &r->err), 0);
}

static void request(struct rig *r, uint64_t sock, uint64_t t)
{
	feed(r, sock, TJ_ROLE_SERVER, TJ_DIR_IN, t, 0, 50000, 0);
}

static void response(struct rig *r, uint64_t sock, uint64_t t)
{
	feed(r, sock, TJ_ROLE_SERVER, TJ_DIR_OUT, t, 0, 50000, 0);
}

static void call(struct rig *r, uint64_t sock, uint16_t port, uint64_t t, uint64_t reply)
{
	feed(r, sock, TJ_ROLE_CLIENT, TJ_DIR_OUT, t, reply, port, 0);
}

static void reply(struct rig *r, uint64_t sock, uint16_t port, uint64_t t)
{
	feed(r, sock, TJ_ROLE_CLIENT, TJ_DIR_IN, t, 0, port, 0);
}

static void finish(struct rig *r)
{
	struct tj_edge_sink sink = { collect, r };
	assert_int_equal(tj_correlator_issue_fifo.finish(r->st, &sink, &r->err), 0);
	tj_correlator_issue_fifo.close(r->st);
}

/* The parent socket of the n-th call (0-based) on sock: 0 = no parent. */
static uint64_t parent_of(const struct rig *r, uint64_t sock, uint64_t nth)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].child.sock == sock && r->e[i].child.offset == nth)
			return r->e[i].has_parent ? r->e[i].parent.sock : 0;
	fail_msg("no edge for call %llu on socket %llu", (unsigned long long)nth,
		 (unsigned long long)sock);
	return 0;
}

/* Request 1 served alone on an idle connection to A: the handler of a
 * request issues a call to A (the one observation the queue needs). */
static void warm_up(struct rig *r)
{
	request(r, 1, 1 * US);
	call(r, 101, PORT_A, 2 * US, 3 * US);
	reply(r, 101, PORT_A, 3 * US);
	response(r, 1, 4 * US);
}

/* After the warm-up, request 2's call takes A's one connection until
 * 20 us; requests 3 and 4 are read meanwhile and must wait. */
static void two_waiting(struct rig *r)
{
	start(r);
	warm_up(r);
	request(r, 2, 10 * US);
	call(r, 101, PORT_A, 11 * US, 20 * US);
	request(r, 3, 12 * US);
	request(r, 4, 13 * US);
}

/* A's one connection, busy with request 2's call until 20 us, then
 * frees twice: each reply's handler writes the waiting call (the queue's
 * to say whose), then the request the reply answered responds. */
static void drain_two(struct rig *r)
{
	reply(r, 101, PORT_A, 20 * US);
	call(r, 101, PORT_A, 21 * US, 30 * US);
	response(r, 2, 22 * US);
	reply(r, 101, PORT_A, 30 * US);
	call(r, 101, PORT_A, 31 * US, 40 * US);
	response(r, 3, 32 * US);
	reply(r, 101, PORT_A, 40 * US);
	response(r, 4, 41 * US);
	finish(r);
}

/* One connection to A.  Requests 2, 3, 4 arrive; 2's call goes out at
 * once, 3's and 4's wait (A's only connection is busy).  Each later call
 * is written from the handler of the previous call's reply, after request
 * 4 was read: the thread's last read is the reply of another request's
 * call and the last request read is 4, yet the calls are 3's then 4's.
 * Only the queue says so. */
static void test_fifo_decides(void **state)
{
	(void)state;
	struct rig r;
	two_waiting(&r);
	drain_two(&r);
	assert_int_equal(parent_of(&r, 101, 0), 1);
	assert_int_equal(parent_of(&r, 101, 1), 2);
	assert_int_equal(parent_of(&r, 101, 2), 3);
	assert_int_equal(parent_of(&r, 101, 3), 4);
}

/* The handler of 2's reply from A writes the queued call of request 3 to
 * A (the FIFO), then 2's own next call to B: that one continues 2 (the
 * reply's request), though 3 waits in A's queue and is the newest
 * request read.  The FIFO is per destination and stays out of B. */
static void test_continuation_stays_direct(void **state)
{
	(void)state;
	struct rig r;
	start(&r);
	warm_up(&r);
	request(&r, 2, 10 * US);
	call(&r, 101, PORT_A, 11 * US, 20 * US);
	request(&r, 3, 12 * US);
	reply(&r, 101, PORT_A, 20 * US);
	call(&r, 101, PORT_A, 21 * US, 30 * US);   /* 3's, from the queue */
	call(&r, 201, PORT_B, 22 * US, 25 * US);   /* 2's continuation */
	reply(&r, 201, PORT_B, 25 * US);
	response(&r, 2, 26 * US);
	reply(&r, 101, PORT_A, 30 * US);
	response(&r, 3, 31 * US);
	finish(&r);
	assert_int_equal(parent_of(&r, 101, 1), 2);
	assert_int_equal(parent_of(&r, 101, 2), 3);
	assert_int_equal(parent_of(&r, 201, 0), 2);
}

/* With nothing queued, a write to A after a reply from A continues the
 * reply's request (a chain of two calls to one destination), not a
 * request that never issued one. */
static void test_empty_queue_continues(void **state)
{
	(void)state;
	struct rig r;
	start(&r);
	request(&r, 2, 10 * US);
	call(&r, 101, PORT_A, 11 * US, 20 * US);
	reply(&r, 101, PORT_A, 20 * US);
	request(&r, 3, 20 * US + 500);             /* read, not yet handled */
	call(&r, 101, PORT_A, 21 * US, 30 * US);
	finish(&r);
	/* the thread's last read is request 3 here: direct, 3's */
	assert_int_equal(parent_of(&r, 101, 1), 3);

	start(&r);
	request(&r, 2, 10 * US);
	call(&r, 101, PORT_A, 11 * US, 20 * US);
	reply(&r, 101, PORT_A, 20 * US);
	call(&r, 101, PORT_A, 21 * US, 30 * US);
	finish(&r);
	assert_int_equal(parent_of(&r, 101, 1), 2);
}

/* A call on a connection opened while request 2's handler ran, written
 * when the connect completed, after request 3 was read: 2's. */
static void test_connect_opened_by(void **state)
{
	(void)state;
	struct rig r;
	start(&r);
	request(&r, 2, 10 * US);
	request(&r, 3, 12 * US);
	feed(&r, 101, TJ_ROLE_CLIENT, TJ_DIR_OUT, 13 * US, 20 * US, PORT_A, 11 * US);
	finish(&r);
	assert_int_equal(parent_of(&r, 101, 0), 2);
}

/* Cold start: nothing learned yet.  Request 2's handler opens the first
 * connection to A; requests 3 and 4 are read before it completes, find
 * no connection to A and say nothing yet (their kind was never seen).
 * The connect-call proves that a request's handler issues a call to A:
 * 3 and 4 join A's queue in the order they were read, and the calls the
 * freeing replies write are 3's then 4's. */
static void test_cold_start_held(void **state)
{
	(void)state;
	struct rig r;
	start(&r);
	request(&r, 2, 10 * US);
	request(&r, 3, 12 * US);
	request(&r, 4, 13 * US);
	feed(&r, 101, TJ_ROLE_CLIENT, TJ_DIR_OUT, 14 * US, 20 * US, PORT_A, 11 * US);
	drain_two(&r);
	assert_int_equal(parent_of(&r, 101, 0), 2);
	assert_int_equal(parent_of(&r, 101, 1), 3);
	assert_int_equal(parent_of(&r, 101, 2), 4);
}

/* Two pools to one destination (an agent per call site): each request
 * calls A from its own handler (pool 1, connection 101), then B, then A
 * again from B's reply handler (pool 2, connection 102).  Request 4's
 * first call and request 2's second both wait; 4's was issued first, but
 * when 102 frees, the call written on it is 2's: 4 waits for pool 1. */
static void test_two_pools(void **state)
{
	(void)state;
	struct rig r;
	start(&r);
	request(&r, 1, 1 * US);                       /* its whole program once */
	call(&r, 101, PORT_A, 2 * US, 3 * US);
	reply(&r, 101, PORT_A, 3 * US);
	call(&r, 201, PORT_B, 4 * US, 5 * US);
	reply(&r, 201, PORT_B, 5 * US);
	call(&r, 102, PORT_A, 6 * US, 60 * US);      /* pool 2, slow */
	request(&r, 2, 10 * US);
	call(&r, 101, PORT_A, 11 * US, 30 * US);
	request(&r, 3, 12 * US);                      /* pool 1 busy: waits */
	reply(&r, 101, PORT_A, 30 * US);
	call(&r, 101, PORT_A, 31 * US, 70 * US);     /* 3's, from the queue */
	call(&r, 201, PORT_B, 32 * US, 35 * US);     /* 2's continuation */
	request(&r, 4, 33 * US);                      /* pool 1 busy: waits */
	reply(&r, 201, PORT_B, 35 * US);              /* 2 issues A: pool 2 busy */
	reply(&r, 102, PORT_A, 60 * US);              /* pool 2 frees */
	call(&r, 102, PORT_A, 61 * US, 65 * US);
	response(&r, 1, 62 * US);
	finish(&r);
	assert_int_equal(parent_of(&r, 101, 2), 3);
	assert_int_equal(parent_of(&r, 201, 1), 2);
	assert_int_equal(parent_of(&r, 102, 1), 2);
}

/* Request 3 waits in A's queue but answers before a connection frees (it
 * gave up): the freed connection goes to 4, the next still waiting. */
static void test_answered_head_passed_over(void **state)
{
	(void)state;
	struct rig r;
	two_waiting(&r);
	response(&r, 3, 15 * US);
	reply(&r, 101, PORT_A, 20 * US);
	call(&r, 101, PORT_A, 21 * US, 30 * US);
	finish(&r);
	assert_int_equal(parent_of(&r, 101, 2), 4);
}

static void test_bad_params(void **state)
{
	(void)state;
	const struct tj_correlator *c = &tj_correlator_issue_fifo;
	test_expect_refused(c, "expire", "0", "issue-fifo: param expire=0");
	test_expect_refused(c, "expire", "soon", "issue-fifo: param expire=soon");
	test_expect_refused(c, "expire", "-1", "issue-fifo: param expire=-1");
	test_expect_refused(c, "explain", "2", "issue-fifo: param explain=2");
	test_expect_refused(c, "colour", "red", "issue-fifo: unknown param 'colour'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_decides),
		cmocka_unit_test(test_continuation_stays_direct),
		cmocka_unit_test(test_empty_queue_continues),
		cmocka_unit_test(test_connect_opened_by),
		cmocka_unit_test(test_cold_start_held),
		cmocka_unit_test(test_two_pools),
		cmocka_unit_test(test_answered_head_passed_over),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
