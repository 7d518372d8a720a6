/* The regression correlator's assignment step: the Hungarian solver
 * against brute force, and hand-made cases where deciding each call alone
 * (or greedy nearest) is wrong but the joint matching is right, and where
 * a call must get no parent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <cmocka.h>
#include "test_regression_synth.h"

/* Smallest total cost over injective row -> column maps, by recursion. */
static double brute(const double *c, size_t n, size_t m, size_t row,
		    unsigned taken)
{
	if (row == n)
		return 0;
	double best = INFINITY;
	for (size_t j = 0; j < m; j++) {
		if (taken & (1u << j) || c[row * m + j] >= RG_FORBID)
			continue;
		double v = c[row * m + j] + brute(c, n, m, row + 1, taken | 1u << j);
		if (v < best)
			best = v;
	}
	return best;
}

static void hungarian_matches_brute_force(void **state)
{
	(void)state;
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, 42);
	for (int trial = 0; trial < 500; trial++) {
		size_t n = 1 + gsl_rng_uniform_int(r, 5);
		size_t m = n + gsl_rng_uniform_int(r, 4);
		double c[8 * 8];
		int rc[8];
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < m; j++)
				c[i * m + j] = gsl_rng_uniform(r) < 0.3 ? RG_FORBID :
					       gsl_ran_gaussian(r, 10.0);
		for (size_t i = 0; i < n; i++) /* keep it feasible */
			if (c[i * m + i] >= RG_FORBID)
				c[i * m + i] = 50.0;
		assert_int_equal(rg_assign(c, n, m, rc), 0);
		double got = 0;
		unsigned seen = 0;
		for (size_t i = 0; i < n; i++) {
			assert_true(rc[i] >= 0 && (size_t)rc[i] < m);
			assert_false(seen & (1u << rc[i])); /* one row per column */
			seen |= 1u << rc[i];
			assert_true(c[i * m + (size_t)rc[i]] < RG_FORBID);
			got += c[i * m + (size_t)rc[i]];
		}
		assert_true(fabs(got - brute(c, n, m, 0, 0)) < 1e-9);
	}
	/* infeasible: one column, two rows that both need it */
	double c2[2] = { 1, 2 };
	int rc2[2];
	assert_int_equal(rg_assign(c2, 2, 1, rc2), -1);
	gsl_rng_free(r);
}

/* The slotted solver against the Hungarian solver on the expanded matrix
 * (a column per slot, plus one "none" column per row): the same optimal
 * cost, on random groups with shared pairs, convex slot costs, equal
 * costs, and rows with no arc at all. */
static void flow_matches_expanded_hungarian(void **state)
{
	(void)state;
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, 43);
	enum { N = 9, P = 6, A = N * P, S = N * P };
	size_t rowptr[N + 1], sptr[P + 1];
	uint32_t apair[A];
	double acost[A], none[N], slot[S], cost[N * (S + N)];
	int ra[N], rc[N];
	unsigned char arc[N][P];
	void *ws = malloc(rg_flow_ws_size(N, P));
	assert_non_null(ws);
	for (int trial = 0; trial < 3000; trial++) {
		size_t n = 1 + gsl_rng_uniform_int(r, N);
		size_t np = 1 + gsl_rng_uniform_int(r, P);
		double dens = gsl_rng_uniform(r);
		size_t e = 0, users[P] = { 0 };
		rowptr[0] = 0;
		for (size_t i = 0; i < n; i++) {
			none[i] = gsl_rng_uniform(r) < 0.2 ? 3.0 :
				  10 + gsl_ran_gaussian(r, 5.0);
			for (size_t q = 0; q < np; q++) {
				arc[i][q] = gsl_rng_uniform(r) < dens;
				if (!arc[i][q])
					continue;
				apair[e] = (uint32_t)q;
				acost[e++] = gsl_rng_uniform(r) < 0.2 ?
					     (double)gsl_rng_uniform_int(r, 3) :
					     gsl_ran_gaussian(r, 5.0);
				users[q]++;
			}
			rowptr[i + 1] = e;
		}
		sptr[0] = 0;
		for (size_t q = 0; q < np; q++) { /* nondecreasing slot costs */
			double v = gsl_ran_gaussian(r, 3.0);
			sptr[q + 1] = sptr[q] + users[q];
			for (size_t k = sptr[q]; k < sptr[q + 1]; k++) {
				slot[k] = v;
				if (gsl_rng_uniform(r) < 0.6)
					v += gsl_rng_uniform(r) * 6;
			}
		}
		size_t m = sptr[np] + n;
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < m; j++)
				cost[i * m + j] = RG_FORBID;
			cost[i * m + sptr[np] + i] = none[i];
			for (size_t x = rowptr[i]; x < rowptr[i + 1]; x++)
				for (size_t k = sptr[apair[x]]; k < sptr[apair[x] + 1]; k++)
					cost[i * m + k] = acost[x] + slot[k];
		}
		assert_int_equal(rg_assign(cost, n, m, rc), 0);
		double want = 0;
		for (size_t i = 0; i < n; i++)
			want += cost[i * m + (size_t)rc[i]];
		assert_int_equal(rg_flow_assign(n, np, rowptr, apair, acost, none,
						 sptr, slot, ra, ws), 0);
		/* each row its own arc or none; pairs pay their cheapest slots */
		double got = 0;
		size_t taken[P] = { 0 };
		for (size_t i = 0; i < n; i++) {
			if (ra[i] < 0) {
				assert_int_equal(ra[i], -1);
				got += none[i];
				continue;
			}
			assert_true((size_t)ra[i] >= rowptr[i] &&
				    (size_t)ra[i] < rowptr[i + 1]);
			got += acost[ra[i]];
			taken[apair[ra[i]]]++;
		}
		for (size_t q = 0; q < np; q++)
			for (size_t k = 0; k < taken[q]; k++)
				got += slot[sptr[q] + k];
		assert_true(fabs(got - want) < 1e-9 * (1 + fabs(want)));
	}
	free(ws);
	gsl_rng_free(r);
}

/* Hand-made groups: two rows whose best options differ are each given
 * theirs at once; when both want the same pair and its second slot is
 * dear, the row that loses less by moving moves (to its other pair, or
 * to none). */
static void flow_hand_cases(void **state)
{
	(void)state;
	void *ws = malloc(rg_flow_ws_size(2, 2));
	assert_non_null(ws);
	int ra[2];
	/* row 0: pair 0 at 1, pair 1 at 4; row 1: pair 0 at 2, pair 1 at 3 */
	size_t rowptr[3] = { 0, 2, 4 };
	uint32_t apair[4] = { 0, 1, 0, 1 };
	double none[2] = { 20, 20 };
	size_t sptr[3] = { 0, 2, 4 };
	/* no clash: row 1 prefers pair 1 once pair 0's first slot costs 2 */
	double ac1[4] = { 1, 4, 2, 0 };
	double sl1[4] = { 0, 10, 0, 10 };
	assert_int_equal(rg_flow_assign(2, 2, rowptr, apair, ac1, none, sptr, sl1,
					 ra, ws), 0);
	assert_int_equal(ra[0], 0);
	assert_int_equal(ra[1], 3);
	/* clash on pair 0 (1 and 2); the second slot costs 10: row 0 would
	 * lose 3 by moving to pair 1, row 1 loses 1, so row 1 moves */
	double ac2[4] = { 1, 4, 2, 3 };
	assert_int_equal(rg_flow_assign(2, 2, rowptr, apair, ac2, none, sptr, sl1,
					 ra, ws), 0);
	assert_int_equal(ra[0], 0);
	assert_int_equal(ra[1], 3);
	/* the same with row 1's other option dearer than none: it takes none */
	double ac3[4] = { 1, 4, 2, 30 };
	double none3[2] = { 20, 4 }; /* 1 + 4 beats 4 + 2 */
	assert_int_equal(rg_flow_assign(2, 2, rowptr, apair, ac3, none3, sptr, sl1,
					 ra, ws), 0);
	assert_int_equal(ra[0], 0);
	assert_int_equal(ra[1], -1);
	/* a cheap second slot: both share pair 0 */
	double sl4[4] = { 0, 0.5, 0, 10 };
	assert_int_equal(rg_flow_assign(2, 2, rowptr, apair, ac2, none, sptr, sl4,
					 ra, ws), 0);
	assert_int_equal(ra[0], 0);
	assert_int_equal(ra[1], 2);
	free(ws);
}

/* A clean learning prefix: requests 50 ms apart, each calling port 9000
 * once, ~1 ms after its last byte (lognormal, sd 0.1 in ln), plus a few
 * background calls while nothing is in flight. */
static void prefix(struct synth *s, size_t nreq, uint64_t *t_end)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, 7);
	memset(s, 0, sizeof(*s));
	s->parent_of = calloc(4096, sizeof(*s->parent_of));
	uint64_t t = 1000000000;
	for (size_t i = 0; i < nreq; i++, t += 50000000) {
		struct tj_message *q = synth_add(s);
		uint64_t qs = q->key.sock;
		q->key.dir = TJ_DIR_IN;
		q->role = TJ_ROLE_SERVER;
		q->lport = 8080;
		q->ts_first = t;
		q->ts_last = t + 10000;
		uint64_t tc = t + 10000 + (uint64_t)gsl_ran_lognormal(r, log(1e6), 0.1);
		q->ts_reply = tc + 1000000 + 200000;
		synth_call(s, tc, 9000, 1e6, 1);
		s->parent_of[s->msg[s->n - 1].key.sock] = qs + 1;
		if (i % 20 == 0)
			synth_call(s, t + 25000000, 9000, 1e6, 1);
	}
	*t_end = t;
	gsl_rng_free(r);
}

static struct tj_message *req(struct synth *s, uint64_t t, uint64_t reply)
{
	struct tj_message *q = synth_add(s);
	q->key.dir = TJ_DIR_IN;
	q->role = TJ_ROLE_SERVER;
	q->lport = 8080;
	q->ts_first = t;
	q->ts_last = t + 10000;
	q->ts_reply = reply;
	return q;
}

static const struct tj_edge *edge_of(const struct edge_keep *k, uint64_t sock)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->e[i].child.sock == sock)
			return &k->e[i];
	return NULL;
}

/* P1 starts at T, P2 at T+0.3ms; C1 at T+1.01ms and C2 at T+1.11ms.
 * Learned delay ~1 ms, one call per request.  Alone, both calls prefer P1
 * (delays 1.0/1.1 ms to P1 against 0.7/0.8 ms to P2), and greedy nearest
 * gives C1 to P2; the joint matching gives C1 -> P1, C2 -> P2.  Then P3
 * makes its call C3 and, 20 ms later while P3 is still open, a call C4
 * that fits no pattern: no parent. */
static void joint_beats_alone(void **state)
{
	(void)state;
	struct synth s;
	uint64_t t;
	prefix(&s, 200, &t);
	uint64_t T = t + 50000000;
	uint64_t p1 = req(&s, T, T + 2200000)->key.sock;
	uint64_t p2 = req(&s, T + 300000, T + 2300000)->key.sock;
	synth_call(&s, T + 1010000, 9000, 1000000, 1);
	uint64_t c1 = s.msg[s.n - 1].key.sock;
	synth_call(&s, T + 1110000, 9000, 1000000, 1);
	uint64_t c2 = s.msg[s.n - 1].key.sock;
	uint64_t T3 = T + 100000000;
	uint64_t p3 = req(&s, T3, T3 + 30000000)->key.sock;
	synth_call(&s, T3 + 1010000, 9000, 1000000, 1);
	uint64_t c3 = s.msg[s.n - 1].key.sock;
	synth_call(&s, T3 + 20000000, 9000, 1000000, 1);
	uint64_t c4 = s.msg[s.n - 1].key.sock;
	qsort(s.msg, s.n, sizeof(*s.msg), synth_cmp);

	struct tj_params pj = { 3, { "learn", "density", "ends" },
				   { "200", "lognormal", "0" } };
	struct edge_keep k;
	struct rg_state *st = synth_run(&s, &pj, &k);
	assert_non_null(st);
	const struct tj_edge *e1 = edge_of(&k, c1), *e2 = edge_of(&k, c2);
	const struct tj_edge *e3 = edge_of(&k, c3), *e4 = edge_of(&k, c4);
	assert_non_null(e1);
	assert_non_null(e2);
	assert_non_null(e3);
	assert_non_null(e4);
	assert_true(e1->has_parent && e1->parent.sock == p1);
	assert_true(e2->has_parent && e2->parent.sock == p2);
	assert_true(e3->has_parent && e3->parent.sock == p3);
	assert_false(e4->has_parent);
	assert_true(e4->score > 0.5); /* confident it is background */
	tj_correlator_regression.close(st);
	free(k.e);

	/* the same calls decided alone: both go to P1 */
	struct tj_params pa = { 4, { "learn", "density", "ends", "joint" },
				   { "200", "lognormal", "0", "0" } };
	st = synth_run(&s, &pa, &k);
	assert_non_null(st);
	e1 = edge_of(&k, c1);
	e2 = edge_of(&k, c2);
	assert_true(e1->has_parent && e1->parent.sock == p1);
	assert_true(e2->has_parent && e2->parent.sock == p1);
	tj_correlator_regression.close(st);
	free(k.e);
	synth_free(&s);
}

/* A parent whose pattern is one call has its slot taken by an earlier
 * window's decision: a later call, decided in the next window, goes to
 * the other parent although its delay alone favours the first. */
static void used_slots_carry_across_windows(void **state)
{
	(void)state;
	struct synth s;
	uint64_t t;
	prefix(&s, 200, &t);
	uint64_t T = t + 50000000;
	/* C1: 0.90 ms after P1, 0.74 ms after P2 -> P1.
	 * C2: 1.00 ms after P1, 0.84 ms after P2 -> alone P1, but P1 has made
	 * its one call already. */
	uint64_t p1 = req(&s, T, T + 3000000)->key.sock;
	uint64_t p2 = req(&s, T + 160000, T + 3100000)->key.sock;
	synth_call(&s, T + 910000, 9000, 1000000, 1);
	uint64_t c1 = s.msg[s.n - 1].key.sock;
	synth_call(&s, T + 1010000, 9000, 1000000, 1);
	uint64_t c2 = s.msg[s.n - 1].key.sock;
	qsort(s.msg, s.n, sizeof(*s.msg), synth_cmp);
	/* window 0.1 ms: C1 is decided before C2 is seen */
	struct tj_params p = { 4, { "learn", "window", "density", "ends" },
				  { "200", "0.1", "lognormal", "0" } };
	struct edge_keep k;
	struct rg_state *st = synth_run(&s, &p, &k);
	assert_non_null(st);
	const struct tj_edge *e1 = edge_of(&k, c1), *e2 = edge_of(&k, c2);
	assert_true(e1->has_parent && e1->parent.sock == p1);
	assert_true(e2->has_parent && e2->parent.sock == p2);
	tj_correlator_regression.close(st);
	free(k.e);
	/* without the calls-per-request slots, C2 follows its delay to P1 */
	struct tj_params p0 = { 5, { "learn", "window", "density", "ends", "slots" },
				   { "200", "0.1", "lognormal", "0", "0" } };
	st = synth_run(&s, &p0, &k);
	assert_non_null(st);
	e2 = edge_of(&k, c2);
	assert_true(e2->has_parent && e2->parent.sock == p1);
	tj_correlator_regression.close(st);
	free(k.e);
	synth_free(&s);
}

/* rg_keep_heaviest against a stable sort by descending weight, then a
 * cut: many ties (a few distinct weights), infinities and signed zeros,
 * lists shorter and longer than k. */
static void keep_heaviest_is_a_stable_sorts_prefix(void **state)
{
	(void)state;
	static const double w[] = { -3.5, -1, -0.0, 0.0, 2, 2.25, -INFINITY, INFINITY };
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, 7);
	for (int trial = 0; trial < 3000; trial++) {
		size_t n = 1 + gsl_rng_uniform_int(r, 300);
		size_t k = 1 + gsl_rng_uniform_int(r, 20);
		size_t nw = 1 + gsl_rng_uniform_int(r, sizeof(w) / sizeof(w[0]));
		struct rg_cand c[300], ref[300];
		for (size_t i = 0; i < n; i++) {
			memset(&c[i], 0, sizeof(c[i]));
			c[i].parent = (uint32_t)i;
			c[i].lw = w[gsl_rng_uniform_int(r, nw)];
			ref[i] = c[i];
		}
		/* the reference: insertion sort, stable by construction */
		for (size_t i = 1; i < n; i++) {
			struct rg_cand x = ref[i];
			size_t j = i;
			for (; j > 0 && ref[j - 1].lw < x.lw; j--)
				ref[j] = ref[j - 1];
			ref[j] = x;
		}
		size_t kept = rg_keep_heaviest(c, n, k);
		assert_int_equal(kept, n < k ? n : k);
		for (size_t i = 0; i < kept; i++) {
			if (c[i].parent != ref[i].parent)
				fail_msg("trial %d (n %zu, k %zu): place %zu holds %u, not %u",
					 trial, n, k, i, c[i].parent, ref[i].parent);
		}
	}
	gsl_rng_free(r);
}

/* A NaN weight has no order: the list goes through the sort (what the
 * correlator did before), and k are still kept. */
static void keep_heaviest_with_nan_keeps_k(void **state)
{
	(void)state;
	struct rg_cand c[5];
	memset(c, 0, sizeof(c));
	const double w[5] = { 1, NAN, 3, 2, 0 };
	for (int i = 0; i < 5; i++) {
		c[i].parent = (uint32_t)i;
		c[i].lw = w[i];
	}
	assert_int_equal(rg_keep_heaviest(c, 5, 2), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hungarian_matches_brute_force),
		cmocka_unit_test(flow_matches_expanded_hungarian),
		cmocka_unit_test(flow_hand_cases),
		cmocka_unit_test(joint_beats_alone),
		cmocka_unit_test(used_slots_carry_across_windows),
		cmocka_unit_test(keep_heaviest_is_a_stable_sorts_prefix),
		cmocka_unit_test(keep_heaviest_with_nan_keeps_k),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
