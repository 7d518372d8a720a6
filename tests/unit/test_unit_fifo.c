/* unit-fifo and the call count it rests on (models/call_units.h), on
 * hand-built event streams: a pipelined message of two calls hides the
 * second, and only counting the writes keeps the next call's FIFO head
 * right; a client that writes every call in two pieces must not be taken
 * for one that pipelines; the thread's open request beats the FIFO head. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "models/call_units.h"
#include "test_util.h"
#include "test_correlator_rig.h"

extern const struct tj_correlator tj_correlator_unit_fifo;

#define MS 1000000ull

/* Sockets below 100 are the gateway's server side (port 8080), the others
 * its client side towards one upstream (port 9090). */
static struct tj_event ev(uint64_t ts, unsigned type, uint64_t sock,
			  uint64_t off, int64_t bytes, uint32_t tid)
{
	return test_gateway_event(ts, type, sock, off, bytes, tid, 9090);
}

/* units: the units= param (NULL: the default). */
static void run(struct test_rig *r, const struct tj_event *evs, size_t n, const char *units)
{
	struct tj_params p = { .n = 0 };
	if (units) {
		p.key[0] = "units";
		p.val[0] = units;
		p.n = 1;
	}
	test_rig_run(r, &tj_correlator_unit_fifo, evs, n, &p);
}

#define expect test_expect_parent

/* Four requests read by the loop thread (t11); a thread that read none of
 * them (t21, as a timer or a hand-off would) writes their calls on one
 * pipelined connection: one call, then two calls back to back (one
 * message of two writes, no reply read between), then one more.  The
 * last call is request 4's: with the writes counted, request 3 made the
 * hidden call; counting messages, request 3 still looks like the FIFO
 * head. */
static size_t pipelined_events(struct tj_event *e)
{
	size_t n = 0;
	for (uint64_t i = 1; i <= 4; i++) {
		e[n++] = ev(i * MS, TJ_EV_ACCEPT, i, 0, 0, 11);
		e[n++] = ev(i * MS + 1, TJ_EV_RECV, i, 0, 100, 11);
	}
	e[n++] = ev(5 * MS, TJ_EV_CONNECT, 200, 0, 0, 21);
	e[n++] = ev(6 * MS, TJ_EV_SEND, 200, 0, 50, 21);    /* R1 */
	e[n++] = ev(7 * MS, TJ_EV_RECV, 200, 0, 20, 21);    /* R1's reply */
	e[n++] = ev(8 * MS, TJ_EV_SEND, 200, 50, 50, 21);   /* R2 ... */
	e[n++] = ev(9 * MS, TJ_EV_SEND, 200, 100, 50, 21);  /* ... and R3: one message */
	e[n++] = ev(10 * MS, TJ_EV_RECV, 200, 20, 20, 21);
	e[n++] = ev(11 * MS, TJ_EV_SEND, 200, 150, 50, 21); /* R4 */
	e[n++] = ev(12 * MS, TJ_EV_RECV, 200, 40, 40, 21);
	for (uint64_t i = 1; i <= 4; i++)
		e[n++] = ev((20 + i) * MS, TJ_EV_SEND, i, 0, 10, 11);
	return n;
}

static void test_hidden_call_counted(void **state)
{
	struct tj_event evs[32];
	size_t n = pipelined_events(evs);
	struct test_rig r;
	run(&r, evs, n, NULL);
	assert_int_equal(r.set.n, 3);
	expect(&r.set, "1:200:out:0", "1:1:in:0");
	expect(&r.set, "1:200:out:50", "1:2:in:0"); /* named by its first call */
	expect(&r.set, "1:200:out:150", "1:4:in:0");
	tj_edges_free(&r.set);
	/* counting messages, the hidden call's request looks still waiting */
	run(&r, evs, n, "messages");
	expect(&r.set, "1:200:out:150", "1:3:in:0");
	tj_edges_free(&r.set);
}

/* A client that writes every call in two pieces (header, then body),
 * five requests waiting: once its messages have shown two writes to be
 * its usual, a message of two writes is one call, and the FIFO head moves
 * by one request per message.  Its first message is taken for two calls
 * (the prior, one write per call, ties with the one message seen, and a
 * tie goes to the fewer writes per call): one request is skipped there,
 * the price of the prior (ASYNC.md). */
static void test_two_piece_calls_stay_one(void **state)
{
	struct tj_event e[48];
	size_t n = 0;
	for (uint64_t i = 1; i <= 5; i++) {
		e[n++] = ev(i * MS, TJ_EV_ACCEPT, i, 0, 0, 11);
		e[n++] = ev(i * MS + 1, TJ_EV_RECV, i, 0, 100, 11);
	}
	e[n++] = ev(6 * MS, TJ_EV_CONNECT, 200, 0, 0, 21);
	for (uint64_t k = 0; k < 4; k++) { /* one after the other */
		e[n++] = ev((7 + 3 * k) * MS, TJ_EV_SEND, 200, 100 * k, 30, 21);
		e[n++] = ev((7 + 3 * k) * MS + 10, TJ_EV_SEND, 200, 100 * k + 30, 70, 21);
		e[n++] = ev((8 + 3 * k) * MS, TJ_EV_RECV, 200, 20 * k, 20, 21);
	}
	for (uint64_t i = 1; i <= 5; i++)
		e[n++] = ev((30 + i) * MS, TJ_EV_SEND, i, 0, 10, 11);
	struct test_rig r;
	run(&r, e, n, NULL);
	assert_int_equal(r.set.n, 4);
	expect(&r.set, "1:200:out:0", "1:1:in:0");
	expect(&r.set, "1:200:out:100", "1:3:in:0"); /* truth R2: the prior's price */
	expect(&r.set, "1:200:out:200", "1:4:in:0"); /* one call per two writes now */
	expect(&r.set, "1:200:out:300", "1:5:in:0");
	tj_edges_free(&r.set);
	/* every write a call: two requests per message, and none left */
	run(&r, e, n, "writes");
	expect(&r.set, "1:200:out:100", "1:3:in:0");
	expect(&r.set, "1:200:out:200", "1:5:in:0");
	expect(&r.set, "1:200:out:300", NULL);
	tj_edges_free(&r.set);
}

/* The calling thread's open request decides over the FIFO head: the loop
 * thread read R1 and R2 and writes a call: R2's, though R1 is older and
 * has no call yet. */
static void test_thread_request_first(void **state)
{
	const struct tj_event evs[] = {
		ev(1 * MS, TJ_EV_ACCEPT, 1, 0, 0, 11),
		ev(1 * MS + 1, TJ_EV_RECV, 1, 0, 100, 11),
		ev(2 * MS, TJ_EV_ACCEPT, 2, 0, 0, 11),
		ev(2 * MS + 1, TJ_EV_RECV, 2, 0, 100, 11),
		ev(3 * MS, TJ_EV_CONNECT, 200, 0, 0, 11),
		ev(4 * MS, TJ_EV_SEND, 200, 0, 50, 11),
		ev(5 * MS, TJ_EV_RECV, 200, 0, 20, 11),
		ev(6 * MS, TJ_EV_SEND, 1, 0, 10, 11),
		ev(7 * MS, TJ_EV_SEND, 2, 0, 10, 11),
	};
	struct test_rig r;
	run(&r, evs, sizeof(evs) / sizeof(*evs), NULL);
	assert_int_equal(r.set.n, 1);
	expect(&r.set, "1:200:out:0", "1:2:in:0");
	tj_edges_free(&r.set);
}

/* The count itself: writes over the most common writes per message (one
 * write per call the prior, ties to the fewer), capped by the bytes of so
 * many calls. */
static void test_call_units_of(void **state)
{
	struct tj_call_queue q;
	memset(&q, 0, sizeof(q));
	assert_int_equal(tj_call_units_of(&q, 1, 100), 1);
	assert_int_equal(tj_call_units_of(&q, 3, 300), 3);  /* nothing seen: one write per call */
	q.hist[2] = 1;
	assert_int_equal(tj_call_units_of(&q, 2, 200), 2);  /* 1 (prior) against 1: a tie */
	q.hist[2] = 5;
	q.hist[1] = 2;
	q.one_write_bytes = 2 * 100;
	assert_int_equal(tj_call_units_of(&q, 2, 100), 1);  /* two writes per call */
	assert_int_equal(tj_call_units_of(&q, 5, 500), 2);
	q.hist[1] = 9;
	q.one_write_bytes = 9 * 100;
	assert_int_equal(tj_call_units_of(&q, 4, 400), 4);  /* four calls' bytes */
	assert_int_equal(tj_call_units_of(&q, 4, 410), 4);
	/* a call written in pieces: two writes, one call's bytes */
	assert_int_equal(tj_call_units_of(&q, 2, 120), 1);
	assert_int_equal(tj_call_units_of(&q, 4, 260), 3);
	assert_int_equal(tj_call_units_of(&q, 0, 0), 1);
}

/* A queue pipelines when more than 5 % of its messages (smoothed) held
 * several calls; a rare split call does not make it one. */
static void test_call_queue_pipelined(void **state)
{
	(void)state;
	struct tj_call_queue q;
	memset(&q, 0, sizeof(q));
	assert_false(tj_call_queue_pipelined(&q));
	q.hist[2] = 1;
	q.merged = 1;
	assert_true(tj_call_queue_pipelined(&q));  /* 1 of 1: 0.5 smoothed */
	q.hist[1] = 300;
	q.merged = 1;
	assert_false(tj_call_queue_pipelined(&q)); /* an odd split */
	q.hist[2] = 40;
	q.merged = 40;
	assert_true(tj_call_queue_pipelined(&q));  /* 40 of 340 */
}

static void test_bad_params(void **state)
{
	static const char *const bad[][2] = {
		{ "window", "0" }, { "window", "soon" }, { "units", "bytes" },
		{ "explain", "2" }, { "depth", "3" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		test_expect_refused(&tj_correlator_unit_fifo, bad[i][0], bad[i][1], bad[i][0]);
}

/* --explain (explain=1) names the signal that decided each call, and the
 * calls each queue's messages held. */
static void test_explain_names_signal(void **state)
{
	struct tj_event evs[32];
	size_t n = pipelined_events(evs);
	struct test_rig r;
	char *text = test_rig_run_explained(&r, &tj_correlator_unit_fifo, evs, n);
	assert_non_null(strstr(text, "call 1:200:out:50 parent 1:2:in:0 by fifo (2 writes, 2 calls)"));
	assert_non_null(strstr(text, "3 messages, 4 calls; thread 0, fifo 3, none 0"));
	free(text);
	tj_edges_free(&r.set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hidden_call_counted),
		cmocka_unit_test(test_two_piece_calls_stay_one),
		cmocka_unit_test(test_thread_request_first),
		cmocka_unit_test(test_call_units_of),
		cmocka_unit_test(test_call_queue_pipelined),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_explain_names_signal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
