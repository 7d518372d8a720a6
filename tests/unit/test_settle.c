/* queue-select's settling (correlate/settle.h and its plumbing in
 * correlate/queue_select.c): the rules on hand-made numbers (a pick that
 * holds settles, one that changes does not; a block of links below the
 * spread of the earlier blocks un-settles, one within it does not; the
 * binomial stands in with fewer than two blocks; audits), then
 * queue-select itself on a hand-built stream: a settled queue's calls stop
 * reaching the method it ruled out, settle=0 gives every method every
 * call, an audit gives them back, the edges stay the same, bad params
 * are refused by name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "correlate/settle.h"
#include "test_util.h"
#include "test_correlator_rig.h"

extern const struct tj_correlator tj_correlator_queue_select;
/* the built-ins run inside it are weak references (correlate/registry.c):
 * named here so this binary links them */
extern const struct tj_correlator tj_correlator_metadata, tj_correlator_unit_fifo;

#define US 1000ull
#define MS 1000000ull

static void test_settles_when_pick_holds(void **state)
{
	(void)state;
	uint32_t stable = 0;
	uint64_t at = 0;
	double lead = 0;
	assert_false(tj_settle_now(&stable, &at, &lead, -1, 2, 1000, 0.1, 3, 1)); /* the first choice */
	assert_int_equal(at, 1000);
	assert_false(tj_settle_now(&stable, &at, &lead, 2, 2, 1024, 0.1, 3, 1));
	assert_false(tj_settle_now(&stable, &at, &lead, 2, 2, 1280, 0.1, 3, 1));
	/* held 3 re-choices, but over 536 calls of a choice made on 1000 */
	assert_false(tj_settle_now(&stable, &at, &lead, 2, 2, 1536, 0.1, 3, 1));
	assert_false(tj_settle_now(&stable, &at, &lead, 2, 2, 1792, 0.1, 3, 1));
	assert_true(tj_settle_now(&stable, &at, &lead, 2, 2, 2048, 0.1, 3, 1)); /* and 1048 */
	/* a change starts both counts again */
	assert_false(tj_settle_now(&stable, &at, &lead, 2, 1, 2304, 0.1, 3, 1));
	assert_int_equal(stable, 0);
	assert_int_equal(at, 2304);
	for (uint64_t n = 2560; n < 4608; n += 256)
		assert_false(tj_settle_now(&stable, &at, &lead, 1, 1, n, 0.1, 3, 1));
	assert_true(tj_settle_now(&stable, &at, &lead, 1, 1, 4608, 0.1, 3, 1));
	/* held long enough, but the runner-up gained on it (a lead of 0.1
	 * nats per call when picked, 0.05 now): not yet; once the lead is
	 * back, settled */
	assert_false(tj_settle_now(&stable, &at, &lead, 1, 1, 5000, 0.05, 3, 1));
	assert_true(tj_settle_now(&stable, &at, &lead, 1, 1, 5256, 0.1, 3, 1));
	/* held, but on too few calls of its own; settle=0: never */
	assert_false(tj_settle_now(&stable, &at, &lead, 1, 1, 10000, 0.1, 3, 0));
	assert_false(tj_settle_now(&stable, &at, &lead, 1, 1, 10000, 0.1, 0, 1));
}

static void test_turned_against_spread(void **state)
{
	(void)state;
	/* blocks at 0.80, 0.60, 1.00: mean 0.8, spread 0.163 */
	struct tj_blocks b = { 0 };
	tj_blocks_add(&b, 0.8);
	tj_blocks_add(&b, 0.6);
	tj_blocks_add(&b, 1.0);
	assert_int_equal(b.n, 3);
	/* 0.55 is within two spreads of 0.8 (0.474): not turned, though the
	 * binomial on 256 links (sd 0.025) would call it a collapse */
	assert_false(tj_settle_turned(&b, 0.8, 141, 256, 2));
	/* 0.40 is not */
	assert_true(tj_settle_turned(&b, 0.8, 102, 256, 2));
	/* a block as good as the mean, or better, never un-settles */
	assert_false(tj_settle_turned(&b, 0.8, 256, 256, 2));
	/* z = 0: any block below the mean does */
	assert_true(tj_settle_turned(&b, 0.8, 200, 256, 0));
	/* no links judged: nothing to say */
	assert_false(tj_settle_turned(&b, 0.8, 0, 0, 2));
}

static void test_turned_binomial_with_few_blocks(void **state)
{
	(void)state;
	struct tj_blocks b = { 0 };
	tj_blocks_add(&b, 0.9); /* one block: no spread yet */
	/* base 0.9 on 256 links: sd 0.01875, two of them 0.0375 */
	assert_false(tj_settle_turned(&b, 0.9, 222, 256, 2)); /* 0.867 */
	assert_true(tj_settle_turned(&b, 0.9, 215, 256, 2));  /* 0.840 */
	/* a perfect record is no zero spread: the rule of succession's base
	 * (1 - 1/(n+2)) lets one miss in 256 pass */
	struct tj_blocks none = { 0 };
	assert_false(tj_settle_turned(&none, 1.0 - 1.0 / 1002, 255, 256, 2));
	assert_true(tj_settle_turned(&none, 1.0 - 1.0 / 1002, 240, 256, 2));
}

static void test_audit_due(void **state)
{
	(void)state;
	/* settled on 2000 judged calls: looked at again after 2000 more */
	assert_false(tj_settle_audit_due(1999, 2000, 64, 256));
	assert_true(tj_settle_audit_due(2000, 2000, 64, 256));
	/* on many: at least every audit periods */
	assert_false(tj_settle_audit_due(255, 100000, 1, 256));
	assert_true(tj_settle_audit_due(256, 100000, 1, 256));
	assert_false(tj_settle_audit_due(64 * 256 - 1, 100000, 64, 256));
	assert_true(tj_settle_audit_due(64 * 256, 100000, 64, 256));
	assert_false(tj_settle_audit_due(UINT64_MAX, 2000, 0, 256)); /* audit=0: never */
}

/* A one-thread gateway (node 1, pid 100): NREQ requests one after the
 * other on 50 keep-alive server sockets, each making one call on one
 * keep-alive connection to port 9090 and answered after its reply.  Every
 * method gets every call right: which one is chosen changes no edge. */
#define NREQ 2000
#define NSRV 50

static size_t chain_events(struct tj_event *e)
{
	size_t n = 0;
	const uint32_t tid = 11;
	e[n++] = test_gateway_event(1, TJ_EV_CONNECT, 200, 0, 0, tid, 9090);
	for (uint64_t k = 0; k < NREQ; k++) {
		uint64_t t = (k + 1) * MS, sock = 1 + k % NSRV, j = k / NSRV;
		if (j == 0)
			e[n++] = test_gateway_event(t, TJ_EV_ACCEPT, sock, 0, 0, tid, 9090);
		e[n++] = test_gateway_event(t + 10 * US, TJ_EV_RECV, sock, j * 100, 100, tid, 9090);
		e[n++] = test_gateway_event(t + 100 * US, TJ_EV_SEND, 200, k * 50, 50, tid, 9090);
		e[n++] = test_gateway_event(t + 300 * US, TJ_EV_RECV, 200, k * 20, 20, tid, 9090);
		e[n++] = test_gateway_event(t + 500 * US, TJ_EV_SEND, sock, j * 10, 10, tid, 9090);
	}
	return n;
}

/* The number after "NAME " in the explain line that starts with head. */
static unsigned long long given_to(const char *text, const char *head, const char *name)
{
	const char *line = strstr(text, head);
	assert_non_null(line);
	char key[64];
	snprintf(key, sizeof(key), " %s ", name);
	const char *at = strstr(line, key);
	assert_non_null(at);
	return strtoull(at + strlen(key), NULL, 10);
}

/* Runs queue-select over metadata and unit-fifo with the extra params
 * (key=value strings, NULL-ended); returns its explain text. */
static char *run_qs(struct test_rig *r, const struct tj_event *evs, size_t n, ...)
{
	struct tj_params p = { .n = 0 };
	static char kv[8][64];
	p.key[p.n] = "methods";
	p.val[p.n++] = "metadata,unit-fifo";
	p.key[p.n] = "warm";
	p.val[p.n++] = "1";
	va_list ap;
	va_start(ap, n);
	for (const char *a; (a = va_arg(ap, const char *)) && p.n < 8;) {
		snprintf(kv[p.n], sizeof(kv[p.n]), "%s", a);
		char *eq = strchr(kv[p.n], '=');
		assert_non_null(eq);
		*eq = 0;
		p.key[p.n] = kv[p.n];
		p.val[p.n] = eq + 1;
		p.n++;
	}
	va_end(ap);
	return test_rig_run_explained_with(r, &tj_correlator_queue_select, evs, n, &p);
}

static void expect_all_right(const struct tj_edge_set *s)
{
	assert_int_equal(s->n, NREQ);
	char call[64], req[64];
	for (uint64_t k = 0; k < NREQ; k += 97) {
		snprintf(call, sizeof(call), "1:200:out:%llu", (unsigned long long)(k * 50));
		snprintf(req, sizeof(req), "1:%llu:in:%llu", (unsigned long long)(1 + k % NSRV),
			 (unsigned long long)(k / NSRV * 100));
		test_expect_parent(s, call, req);
	}
}

static void test_settled_queue_stops_ruled_out(void **state)
{
	(void)state;
	static struct tj_event evs[5 * NREQ + 64];
	size_t n = chain_events(evs);
	const char *given = "queue-select: calls given to";
	struct test_rig r;
	assert_string_equal(tj_correlator_metadata.name, "metadata");
	assert_string_equal(tj_correlator_unit_fifo.name, "unit-fifo");

	/* settle=4 (the default): the pick (metadata, the earlier of two
	 * equal methods), first made on 1 call (warm=1), held re-choices at
	 * 256, 512, 768 and 1024 answered calls, then unit-fifo got no more
	 * calls of the queue */
	char *text = run_qs(&r, evs, n, "audit=0", NULL);
	expect_all_right(&r.set);
	assert_non_null(strstr(text, "settled: first after 1024 judged calls, 1 time "));
	assert_non_null(strstr(text, "kept running while settled: metadata;"));
	assert_int_equal(given_to(text, given, "metadata"), NREQ);
	unsigned long long settled_uf = given_to(text, given, "unit-fifo");
	assert_true(settled_uf >= 1024 && settled_uf < 1100);
	struct tj_edge_set settled_edges = r.set;
	free(text);

	/* settle=0: every method gets every call, and the edges are the same */
	text = run_qs(&r, evs, n, "settle=0", NULL);
	expect_all_right(&r.set);
	assert_non_null(strstr(text, "settled: never (settle=0"));
	assert_int_equal(given_to(text, given, "unit-fifo"), NREQ);
	assert_int_equal(r.set.n, settled_edges.n);
	for (size_t i = 0; i < r.set.n; i++) { /* field by field: a struct has padding */
		const struct tj_edge *a = &r.set.edges[i], *b = &settled_edges.edges[i];
		assert_true(tj_msgkey_eq(&a->child, &b->child));
		assert_int_equal(a->has_parent, b->has_parent);
		assert_true(tj_msgkey_eq(&a->parent, &b->parent));
	}
	tj_edges_free(&r.set);
	free(text);

	/* audit=1: after 256 settled calls the queue un-settles and unit-fifo
	 * gets its calls back (the 720 left are too few to hold 4 re-choices) */
	text = run_qs(&r, evs, n, "audit=1", NULL);
	expect_all_right(&r.set);
	assert_non_null(strstr(text, "settled: first after 1024 judged calls, 1 time "
				     "(un-settled by the links 0, by audits 1), not settled now"));
	assert_true(given_to(text, given, "unit-fifo") > settled_uf + 512);
	tj_edges_free(&r.set);
	free(text);
	tj_edges_free(&settled_edges);
}

static void test_bad_params(void **state)
{
	(void)state;
	const struct tj_correlator *qs = &tj_correlator_queue_select;
	test_expect_refused(qs, "settle", "-1", "param settle=-1: a whole number in [0, 1000]");
	test_expect_refused(qs, "settle", "1.5", "param settle=1.5: a whole number");
	test_expect_refused(qs, "settle", "1001", "param settle=1001");
	test_expect_refused(qs, "settle", "x", "param settle=x: not a number");
	test_expect_refused(qs, "audit", "-1", "param audit=-1: a whole number in [0, 1000000]");
	test_expect_refused(qs, "audit", "0.5", "param audit=0.5");
	test_expect_refused(qs, "audit", "", "param audit=: not a number");
	test_expect_refused(qs, "warm", "0", "param warm=0: a whole number in [1, 100000]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settles_when_pick_holds),
		cmocka_unit_test(test_turned_against_spread),
		cmocka_unit_test(test_turned_binomial_with_few_blocks),
		cmocka_unit_test(test_audit_due),
		cmocka_unit_test(test_settled_queue_stops_ruled_out),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
