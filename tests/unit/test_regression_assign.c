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

/* The sparse solver (allowed cells only) returns the dense solver's
 * assignment: the same optimum and, ties included, the same columns, on
 * random matrices with many forbidden cells and deliberate equal costs. */
static void sparse_matches_dense(void **state)
{
	(void)state;
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, 43);
	enum { N = 12, M = 30 };
	static double c[N * M], cs[N * M];
	size_t rowptr[N + 1];
	uint32_t col[N * M];
	int rd[N], rs[N];
	void *wd = malloc(rg_assign_ws_size(N, M));
	void *wsp = malloc(rg_assign_sparse_ws_size(N, M));
	assert_non_null(wd);
	assert_non_null(wsp);
	for (int trial = 0; trial < 2000; trial++) {
		size_t n = 1 + gsl_rng_uniform_int(r, N);
		size_t m = n + gsl_rng_uniform_int(r, M - n + 1);
		double pf = gsl_rng_uniform(r);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < m; j++) {
				double v = gsl_rng_uniform(r) < 0.3 ?
					   (double)gsl_rng_uniform_int(r, 4) : /* ties */
					   gsl_ran_gaussian(r, 10.0);
				c[i * m + j] = gsl_rng_uniform(r) < pf ? RG_FORBID : v;
			}
		for (size_t i = 0; i < n && trial % 7; i++) /* mostly feasible */
			if (c[i * m + i] >= RG_FORBID)
				c[i * m + i] = 50.0;
		size_t e = 0;
		rowptr[0] = 0;
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < m; j++) {
				/* cells in a scrambled order: the result must not
				 * depend on it */
				size_t jj = i % 2 ? m - 1 - j : (j + i) % m;
				if (c[i * m + jj] < RG_FORBID) {
					col[e] = (uint32_t)jj;
					cs[e++] = c[i * m + jj];
				}
			}
			rowptr[i + 1] = e;
		}
		int a = rg_assign_ws(c, n, m, rd, wd);
		int b = rg_assign_sparse_ws(n, m, rowptr, col, cs, rs, wsp);
		assert_int_equal(a, b);
		for (size_t i = 0; i < n && a == 0; i++)
			assert_int_equal(rd[i], rs[i]);
	}
	/* more rows than columns, and a row with no allowed cell */
	assert_int_equal(rg_assign_sparse_ws(2, 1, rowptr, col, cs, rs, wsp), -1);
	size_t rp0[3] = { 0, 1, 1 };
	uint32_t c0[1] = { 0 };
	double v0[1] = { 1.0 };
	assert_int_equal(rg_assign_sparse_ws(2, 2, rp0, c0, v0, rs, wsp), -1);
	free(wd);
	free(wsp);
	gsl_rng_free(r);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hungarian_matches_brute_force),
		cmocka_unit_test(sparse_matches_dense),
		cmocka_unit_test(joint_beats_alone),
		cmocka_unit_test(used_slots_carry_across_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
