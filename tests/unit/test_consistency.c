/* The description length queue-select compares (correlate/consistency.h)
 * on hand-made answers: regular answers cost less than mixed ones, "no
 * parent" is no way to look regular, broken nesting is counted, and the
 * calls-per-request histogram moves a request from bin to bin. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "correlate/consistency.h"

#define US 1000ull
#define MS 1000000ull

/* n requests, one call each, sent 100 us after the request arrived and
 * answered 50 us before the request's response: one service's code. */
static void regular(struct tj_cons *c, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t t = (uint64_t)i * 10 * MS;
		tj_cons_add_call(c, 1, 1, t + 100 * US, t + 900 * US, t, t + 950 * US);
		tj_cons_count_step(c, 0);
	}
}

static void test_regular_is_cheaper(void **state)
{
	(void)state;
	struct tj_cons good = { 0 }, mixed = { 0 };
	regular(&good, 200);
	/* The same calls given to the wrong requests: the delays spread over
	 * many bins, half the requests get two calls and half none. */
	for (unsigned i = 0; i < 200; i++) {
		uint64_t t = (uint64_t)i * 10 * MS, back = (uint64_t)(i % 7) * 3 * MS;
		tj_cons_add_call(&mixed, 1, 1, t + 100 * US, t + 900 * US, t - back,
				 t + 950 * US + back);
		tj_cons_count_step(&mixed, i % 2);
	}
	assert_true(tj_cons_cost(&good, 200) < tj_cons_cost(&mixed, 200));
	double part[TJ_CONS_PARTS];
	tj_cons_parts(&good, 200, part);
	assert_true(part[2] < 10);  /* every request one call: almost nothing to say */
	tj_cons_parts(&mixed, 200, part);
	assert_true(part[2] > 100); /* 0 or 2 at random: about a nat per request */
}

static void test_none_is_not_free(void **state)
{
	(void)state;
	struct tj_cons good = { 0 }, none = { 0 };
	regular(&good, 200);
	for (unsigned i = 0; i < 200; i++)
		tj_cons_add_call(&none, 0, 0, (uint64_t)i * 10 * MS, 0, 0, 0);
	assert_int_equal(none.ncalls, 0);
	assert_int_equal(none.unexplained, 200);
	assert_true(tj_cons_cost(&good, 200) < tj_cons_cost(&none, 200));
	/* the parent no longer held costs the same flat code */
	struct tj_cons gone = { 0 };
	for (unsigned i = 0; i < 200; i++)
		tj_cons_add_call(&gone, 1, 0, (uint64_t)i * 10 * MS, 0, 0, 0);
	assert_true(tj_cons_cost(&gone, 200) == tj_cons_cost(&none, 200));
}

static void test_violations(void **state)
{
	(void)state;
	struct tj_cons c = { 0 };
	tj_cons_add_call(&c, 1, 1, 10 * MS, 12 * MS, 9 * MS, 13 * MS);  /* nested */
	tj_cons_add_call(&c, 1, 1, 10 * MS, 12 * MS, 9 * MS, 11 * MS);  /* parent answered first */
	tj_cons_add_call(&c, 1, 1, 10 * MS, 12 * MS, 11 * MS, 13 * MS); /* parent arrived after */
	tj_cons_add_call(&c, 1, 1, 10 * MS, 0, 9 * MS, 13 * MS);        /* no reply: no evidence */
	tj_cons_add_call(&c, 0, 0, 10 * MS, 12 * MS, 0, 0);             /* no parent */
	assert_int_equal(c.end[TJ_CONS_BAD], 1);
	assert_int_equal(c.delay[TJ_CONS_BAD], 1);
	assert_int_equal(c.end[TJ_CONS_NOREPLY], 1);
	assert_int_equal(c.unexplained, 1);
	assert_int_equal(c.ncalls, 4);
}

static void test_count_steps(void **state)
{
	(void)state;
	struct tj_cons c = { 0 };
	for (uint64_t k = 0; k < 10; k++) /* one request, ten calls */
		tj_cons_count_step(&c, k);
	for (unsigned i = 0; i < TJ_CONS_COUNTS - 1; i++)
		assert_int_equal(c.count[i], 0);
	assert_int_equal(c.count[TJ_CONS_COUNTS - 1], 1);
	tj_cons_count_step(&c, 0); /* another, one call */
	tj_cons_count_step(&c, 1); /* ... two */
	assert_int_equal(c.count[1], 0);
	assert_int_equal(c.count[2], 1);
	/* 3 requests of the process, 2 of them with calls: one zero, coded */
	double part[TJ_CONS_PARTS];
	tj_cons_parts(&c, 3, part);
	assert_true(part[2] > 0);
}

static void test_time_bins(void **state)
{
	(void)state;
	assert_int_equal(tj_cons_tbin(0), 0);
	assert_int_equal(tj_cons_tbin(999), 0);
	assert_int_equal(tj_cons_tbin(1000), 1);
	assert_true(tj_cons_tbin(2 * US) > tj_cons_tbin(1 * US));
	assert_true(tj_cons_tbin(1500 * US) > tj_cons_tbin(1000 * US)); /* half-octaves */
	assert_int_equal(tj_cons_tbin(UINT64_MAX), TJ_CONS_TBINS - 1);
}

/* The choice between methods: links where they say something, cost
 * where they do not. */
static void test_pick(void **state)
{
	(void)state;
	double cost[3] = { 500, 400, 450 }; /* B is the most regular */
	uint32_t beats[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	/* no links: the cheapest */
	assert_int_equal(tj_cons_pick(3, cost, NULL, 2), 1);
	/* A right on 80 links where B is wrong, B right on 20 where A is not:
	 * 60 > 2 sqrt(100), B is out, and C too (A beats it as much) */
	beats[0][1] = 80;
	beats[1][0] = 20;
	beats[0][2] = 80;
	beats[2][0] = 20;
	assert_int_equal(tj_cons_pick(3, cost, beats, 2), 0);
	/* 12 against 8: within chance, so the cost decides among all three */
	beats[0][1] = 12;
	beats[1][0] = 8;
	beats[0][2] = 12;
	beats[2][0] = 8;
	assert_int_equal(tj_cons_pick(3, cost, beats, 2), 1);
	/* z = 0: any surplus counts */
	assert_int_equal(tj_cons_pick(3, cost, beats, 0), 0);
	/* B beaten by C only: of A and C, C is cheaper */
	memset(beats, 0, sizeof(beats));
	beats[2][1] = 50;
	assert_int_equal(tj_cons_pick(3, cost, beats, 2), 2);
	/* equal costs: the earlier method */
	double same[2] = { 7, 7 };
	assert_int_equal(tj_cons_pick(2, same, NULL, 2), 0);
	/* a cycle beats everyone: the first */
	memset(beats, 0, sizeof(beats));
	beats[0][1] = beats[1][2] = beats[2][0] = 50;
	assert_int_equal(tj_cons_pick(3, cost, beats, 2), 0);
}

/* The judge's choice as queue-select makes it: links rule methods out
 * only where an independent method backs them (tj_cons_link_support of
 * at least one half), else the cost alone decides. */
static int judge(unsigned n, const double *cost, const uint32_t (*beats)[TJ_CONS_METHODS],
		 const uint64_t *judged, const uint64_t *agreed, unsigned dependent)
{
	double support = tj_cons_link_support(n, judged, agreed, dependent, 30);
	return tj_cons_pick(n, cost, support >= 0.5 ? beats : NULL, 2);
}

/* Methods: 0 order (links decide it where they are: lookahead), 1 nesting
 * (nest: its continuations are the links' own evidence), 2 newest request
 * (the classifier), 3 timing (regression). */
static void test_link_support(void **state)
{
	(void)state;
	unsigned dependent = 1u << 0 | 1u << 1;
	uint32_t beats[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	uint64_t judged[4] = { 300, 300, 300, 300 }, agreed[4] = { 0 };
	/* Timer writes: the links name the request the timer answered, which
	 * only the order method's own guess matches (by the queue's FIFO, as
	 * on epoll-shared's catalog); nesting and timing agree with almost
	 * none.  The order method beats nest on them beyond chance, but the
	 * links are no evidence: the cost decides, and nest is the cheapest. */
	double cost[4] = { 6.0, 3.4, 3.5, 4.7 };
	agreed[0] = 110; /* 37 % */
	agreed[1] = 0;
	agreed[2] = 1;
	agreed[3] = 0;
	beats[0][1] = beats[0][2] = beats[0][3] = 110;
	assert_true(tj_cons_link_support(4, judged, agreed, dependent, 30) < 0.01);
	assert_int_equal(tj_cons_pick(4, cost, beats, 2), 0); /* the old judge: order */
	assert_int_equal(judge(4, cost, beats, judged, agreed, dependent), 1);
	/* ... whatever a dependent method agrees with: nest agreeing with
	 * every link makes them no more causal */
	agreed[1] = 300;
	assert_int_equal(judge(4, cost, beats, judged, agreed, dependent), 1);
	/* Causal links (a worker writes the response after reading the
	 * reply): the timing method agrees with 280 of 300, the newest-request
	 * method with 20.  The links rule the cheaper newest-request method
	 * out, and timing is picked over it. */
	double cost2[4] = { 5.0, 4.8, 3.0, 3.6 };
	memset(beats, 0, sizeof(beats));
	agreed[0] = 150;
	agreed[1] = 140;
	agreed[2] = 20;
	agreed[3] = 280;
	beats[3][2] = 260;
	beats[3][0] = beats[3][1] = 130;
	assert_true(tj_cons_link_support(4, judged, agreed, dependent, 30) > 0.9);
	assert_int_equal(judge(4, cost2, beats, judged, agreed, dependent), 3);
	/* Too few judged links for any independent method: no support (-1),
	 * the cost decides */
	uint64_t few[4] = { 300, 300, 29, 12 };
	assert_true(tj_cons_link_support(4, few, agreed, dependent, 30) < 0);
	assert_int_equal(judge(4, cost2, beats, few, agreed, dependent), 2);
	/* No dependent method: the best share over all of them */
	assert_true(tj_cons_link_support(4, judged, agreed, 0, 30) > 0.93 - 1e-9 &&
		    tj_cons_link_support(4, judged, agreed, 0, 30) < 0.94);
}

/* Where no links judge: a consistent permutation (the newest request on
 * a saturated connection) agrees with no other method and is left out,
 * however regular its delays; a method's agreement with its own base
 * shows nothing; calls both answered "none" are not counted (same[][]
 * holds named parents only). */
static void test_backed(void **state)
{
	(void)state;
	/* 0 lookahead, 1 order-align (its base), 2 classifier, 3 regression,
	 * 4 nest; 1000 calls */
	uint64_t same[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	unsigned related[TJ_CONS_METHODS] = { 1u << 1, 0, 0, 0, 0 };
#define SAME(a, b, v) (same[a][b] = same[b][a] = (v))
	SAME(0, 1, 1000); /* lookahead is order-align but for its links */
	SAME(0, 2, 60);
	SAME(1, 2, 60);
	SAME(0, 3, 300);
	SAME(1, 3, 300);
	SAME(0, 4, 350);
	SAME(1, 4, 350);
	SAME(2, 3, 140);  /* the classifier's permutation: backed by none */
	SAME(2, 4, 90);
	SAME(3, 4, 890);  /* regression and nest agree on most calls */
	unsigned b = tj_cons_backed(5, same, related, 0.5);
	assert_int_equal(b, 1u << 3 | 1u << 4); /* best 890: 350 < 445 */
	/* the description length alone picked the classifier (cheapest);
	 * among the backed, nest */
	double cost[5] = { 6.0, 6.0, 3.4, 4.7, 3.41 };
	for (unsigned m = 0; m < 5; m++)
		if (!((b >> m) & 1))
			cost[m] = 1e300;
	assert_int_equal(tj_cons_pick(5, cost, NULL, 2), 4);
	/* without the relation, lookahead and order-align back each other
	 * fully and everything else is left out */
	unsigned none[TJ_CONS_METHODS] = { 0 };
	assert_int_equal(tj_cons_backed(5, same, none, 0.5), 1u << 0 | 1u << 1 | 1u << 3 | 1u << 4);
	/* share 0: every method */
	assert_int_equal(tj_cons_backed(5, same, related, 0), 0x1f);
	/* nobody agrees with anybody: every method (the best has 0) */
	uint64_t zero[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	assert_int_equal(tj_cons_backed(3, zero, related, 0.5), 0x7);
#undef SAME
}

/* What a discordant link is worth: the log-odds of the links' reliability
 * (one pseudo-count each way), per call of the queue. */
static void test_link_nats(void **state)
{
	(void)state;
	/* 288 of 300: rho = 289/302, log(289/13) = 3.10 nats per link, x 2 for
	 * 600 calls of which 300 have a link */
	double w = tj_cons_link_nats(288, 300, 300, 600);
	assert_true(w > 2 * 3.09 && w < 2 * 3.11);
	/* a share of at most one half: no evidence at all */
	assert_true(tj_cons_link_nats(150, 300, 300, 600) == 0);
	assert_true(tj_cons_link_nats(20, 300, 300, 600) == 0);
	/* 30 of 30 is not certainty: finite */
	assert_true(tj_cons_link_nats(30, 30, 30, 30) < log(32.0));
	/* more reliable, more weight */
	assert_true(tj_cons_link_nats(290, 300, 300, 300) > tj_cons_link_nats(250, 300, 300, 300));
	/* no links, or nonsense counts: nothing */
	assert_true(tj_cons_link_nats(0, 0, 0, 600) == 0);
	assert_true(tj_cons_link_nats(301, 300, 300, 600) == 0);
	/* the near-tie margin: half a log of the calls */
	assert_true(fabs(tj_cons_tie(1000) - 0.5 * log(1000.0)) < 1e-12);
	assert_true(tj_cons_tie(1) == 0 && tj_cons_tie(0) == 0);
}

/* Methods of the soft judge's cases: 0 lookahead (decides by the links,
 * its own links marked), 1 issue-fifo, 2 regression, 3 nest (unmarked,
 * builds its fit). */
#define NEST (1u << 3)

/* Reliable links decide: a cheaper method the links contradict loses. */
static void test_soft_reliable_links(void **state)
{
	(void)state;
	uint32_t beats[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	/* 1000 calls, 500 links, 480 agree with issue-fifo: 3.13 nats per
	 * link per call x 2.  Regression is 60 nats cheaper but the links name
	 * issue-fifo's parent and not regression's on 40 calls, the reverse on
	 * 5: 35 x 6.3 = 220 nats for issue-fifo. */
	double cost[3] = { 5100, 5000, 4940 };
	beats[1][2] = 40;
	beats[2][1] = 5;
	beats[0][2] = 40;
	beats[2][0] = 5;
	struct tj_cons_evidence e = { .n = 3, .cost = cost, .beats = beats,
				      .link_nats = tj_cons_link_nats(480, 500, 500, 1000),
				      .tie = tj_cons_tie(1000) };
	int next = -1;
	assert_int_equal(tj_cons_pick_soft(&e, &next), 1);
	assert_int_equal(next, 0); /* lookahead: as right on the links, dearer */
	double dc, dl;
	double d = tj_cons_margin(&e, 1, 2, &dc, &dl);
	assert_true(dc < 0 && dl > -dc && fabs(d - (dc + dl)) < 1e-9);
	/* the same counts with links at chance (250 of 500): the cost decides */
	e.link_nats = tj_cons_link_nats(250, 500, 500, 1000);
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 2);
	/* no links at all: the same */
	e.beats = NULL;
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 2);
}

/* Links a timer made: written after the read but not caused by it, they
 * agree with an independent method on about half of the calls.  However
 * many of them favour one method, they weigh nothing. */
static void test_soft_timer_links(void **state)
{
	(void)state;
	uint32_t beats[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	double cost[3] = { 5100, 5000, 4900 };
	beats[0][2] = 200; /* the order method's guess matches the timer's pick */
	beats[1][2] = 150;
	uint64_t judged[3] = { 400, 400, 400 }, agreed[3] = { 300, 200, 20 };
	int b = tj_cons_link_best(3, judged, agreed, 1u << 0, 30);
	assert_int_equal(b, 1); /* lookahead depends on the links: not a witness */
	struct tj_cons_evidence e = { .n = 3, .cost = cost, .beats = beats,
				      .link_nats = tj_cons_link_nats(agreed[b], judged[b], 400, 1000),
				      .tie = tj_cons_tie(1000) };
	assert_true(e.link_nats == 0);
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 2);
	/* the sign test, for comparison, rules regression out on them */
	assert_int_equal(tj_cons_pick(3, cost, beats, 2), 1);
}

/* Nest fits the end and count parts by construction: a lead smaller than
 * the code's precision (half a log of the calls) is no lead. */
static void test_soft_nest_near_tie(void **state)
{
	(void)state;
	double cost[4] = { 5200, 5044, 5300, 5041 }; /* nest 3 nats cheaper */
	struct tj_cons_evidence e = { .n = 4, .cost = cost, .builds = NEST,
				      .no_link_wins = NEST, .tie = tj_cons_tie(1000) };
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 1);
	assert_true(tj_cons_margin(&e, 3, 1, NULL, NULL) < 0);
	assert_true(tj_cons_margin(&e, 1, 3, NULL, NULL) > 0);
	/* 10 nats cheaper is beyond the tie: nest */
	cost[3] = 5034;
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 3);
	/* between two methods that build nothing, 3 nats decide */
	cost[3] = 5041;
	e.builds = 0;
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 3);
}

/* Nest agrees with the links it decides by: on a timer loop's queue with
 * reliable links (96 %), its agreements are no evidence for it, while the
 * links it broke count against it. */
static void test_soft_nest_own_links(void **state)
{
	(void)state;
	uint32_t beats[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	double cost[4] = { 6500, 5174, 6300, 5188 }; /* issue-fifo, nest near */
	beats[3][1] = 90; /* nest follows the links where they are wrong */
	beats[1][3] = 40;
	struct tj_cons_evidence e = { .n = 4, .cost = cost, .beats = beats,
				      .link_nats = tj_cons_link_nats(960, 1000, 1000, 1200),
				      .no_link_wins = NEST, .builds = NEST,
				      .tie = tj_cons_tie(1200) };
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 1);
	/* counted as evidence, nest's agreements would win it the queue */
	e.no_link_wins = 0;
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 3);
}

/* An M:N runtime: the thread that read a reply runs another goroutine
 * next, so the links are only partly right (64 %) and the methods that
 * follow "the latest request on the thread" agree with their wrong ones.
 * The sign test rules nest out; weighed by their reliability, the links
 * cost nest less than its description length gains, and nest is kept. */
static void test_soft_mn_nest(void **state)
{
	(void)state;
	uint32_t beats[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	/* 2000 calls, 262 links; lookahead agrees with 58 %, the classifier
	 * (index 2 here) with 64 %, nest with 53 % */
	double cost[4] = { 9682, 12000, 10722, 9502 }; /* issue-fifo: far off */
	beats[0][3] = 40;
	beats[3][0] = 28;
	beats[2][3] = 60;
	beats[3][2] = 32;
	beats[2][0] = 30;
	beats[0][2] = 15;
	assert_true(tj_cons_pick(4, cost, beats, 2) != 3); /* the old judge */
	unsigned alive = tj_cons_survivors(4, beats, 2, NEST);
	assert_true(alive & NEST); /* nest is weighed, not tested */
	assert_false(alive & (1u << 0)); /* the classifier beats lookahead */
	struct tj_cons_evidence e = { .n = 4, .cost = cost, .beats = beats,
				      .link_nats = tj_cons_link_nats(167, 262, 262, 2000),
				      .no_link_wins = NEST, .builds = NEST,
				      .tie = tj_cons_tie(2000), .cand = alive };
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 3);
	/* the same queue with causal links (96 %): the links outweigh it */
	e.link_nats = tj_cons_link_nats(252, 262, 262, 2000);
	assert_int_equal(tj_cons_pick_soft(&e, NULL), 2);
}

/* The sign test's survivors: a gross contradiction still rules a method
 * out (however regular its answers), but only a method whose agreement
 * with the links is evidence rules another out or is ruled out. */
static void test_survivors(void **state)
{
	(void)state;
	uint32_t beats[TJ_CONS_METHODS][TJ_CONS_METHODS] = { { 0 } };
	beats[0][1] = 100; /* lookahead over issue-fifo: 100 to 0 */
	beats[3][2] = 100; /* nest over regression: nest rules none out */
	beats[0][3] = 100; /* ... and is ruled out by none */
	assert_int_equal(tj_cons_survivors(4, beats, 2, NEST), 0xd);
	assert_int_equal(tj_cons_survivors(4, beats, 2, 0), 0x1);
	/* a cycle among all: every method (never none) */
	memset(beats, 0, sizeof(beats));
	beats[0][1] = beats[1][2] = beats[2][0] = 50;
	assert_int_equal(tj_cons_survivors(3, beats, 2, 0), 0x7);
}
#undef NEST

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regular_is_cheaper),
		cmocka_unit_test(test_none_is_not_free),
		cmocka_unit_test(test_violations),
		cmocka_unit_test(test_count_steps),
		cmocka_unit_test(test_time_bins),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_link_support),
		cmocka_unit_test(test_backed),
		cmocka_unit_test(test_link_nats),
		cmocka_unit_test(test_soft_reliable_links),
		cmocka_unit_test(test_soft_timer_links),
		cmocka_unit_test(test_soft_nest_near_tie),
		cmocka_unit_test(test_soft_nest_own_links),
		cmocka_unit_test(test_soft_mn_nest),
		cmocka_unit_test(test_survivors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
