/* The nest-match correlator on hand-built event streams: one event-loop
 * thread whose calls and responses come from timers, so no thread link
 * says anything; nesting and calls per request decide (ASYNC.md,
 * "Timer-driven loops"). */
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

extern const struct tj_correlator tj_correlator_nest_match;

#define MS 1000000ull

/* sock < 100: a server socket (a request); else a call to port `port`.
 * Every event on thread 11: one event loop. */
static struct tj_event ev(uint64_t ts, unsigned type, uint64_t sock, uint64_t off,
			  int64_t bytes, uint16_t port)
{
	return test_gateway_event(ts, type, sock, off, bytes, 11, port);
}

static void run(struct test_rig *r, const struct tj_event *evs, size_t n,
		const struct tj_params *p)
{
	test_rig_run(r, &tj_correlator_nest_match, evs, n, p);
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

static void test_nesting_decides(void **state)
{
	const struct tj_event nested[] = NESTED_EVS;
	struct test_rig r;
	run(&r, nested, sizeof(nested) / sizeof(*nested), NULL);
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
	run(&r, evs, sizeof(evs) / sizeof(*evs), NULL);
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
	run(&r, evs, sizeof(evs) / sizeof(*evs), NULL);
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
	run(&r, evs, sizeof(evs) / sizeof(*evs), NULL);
	assert_int_equal(r.set.n, 2);
	expect(&r.set, "1:101:out:0", NULL);
	expect(&r.set, "1:101:out:50", "1:2:in:0");
	tj_edges_free(&r.set);
}

static void test_bad_params(void **state)
{
	const struct tj_correlator *c = &tj_correlator_nest_match;
	test_expect_refused(c, "explain", "2", "nest-match: param explain=2");
	test_expect_refused(c, "explain", "yes", "nest-match: param explain=yes");
	test_expect_refused(c, "cap", "1", "nest-match: unknown param 'cap'");
}

/* --explain names the signal that decided each call. */
static void test_explain_names_signal(void **state)
{
	const struct tj_event nested[] = NESTED_EVS;
	struct test_rig r;
	char *buf = test_rig_run_explained(&r, &tj_correlator_nest_match, nested,
					   sizeof(nested) / sizeof(*nested));
	assert_non_null(strstr(buf, "1:101:out:50 <- 1:1:in:0 by nesting"));
	assert_non_null(strstr(buf, "2 calls matched by nesting"));
	free(buf);
	tj_edges_free(&r.set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nesting_decides),
		cmocka_unit_test(test_calls_per_destination),
		cmocka_unit_test(test_no_nesting_no_parent),
		cmocka_unit_test(test_unanswered_request),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_explain_names_signal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
