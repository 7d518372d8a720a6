/* The regression correlator's delay fit recovers known parameters from
 * unlabeled synthetic streams with overlapping requests (~3.5 requests in
 * flight when a call starts).  Tolerances, one callee: median delay within
 * 5% (|mu - mu0| <= 0.05 in ln ns), sd of ln delay within 0.06, calls per
 * request within 0.06, share of requests with exactly one call >= 0.8,
 * background rate within 35% (it is measured on ~15 calls made while
 * nothing was in flight).  Two callees (~4 in flight): median within 12%,
 * calls per request within 0.06. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <cmocka.h>
#include "test_regression_synth.h"

static struct synth_spec base_spec(void)
{
	struct synth_spec sp = {
		.rate = 500, .requests = 4000,
		.a_mu = log(3e6), .a_sd = 0.4,
		.b_prob = 0, .b_mu = log(5e5), .b_sd = 0.3,
		.call_ms = 1.0, .bg_rate = 20, .seed = 1,
	};
	return sp;
}

static void check_fit(const char *density)
{
	struct synth_spec sp = base_spec();
	struct synth s;
	synth_build(&s, &sp);
	struct tj_params p = { 2, { "learn", "density" }, { "1000000", density } };
	struct edge_keep k;
	struct rg_state *st = synth_run(&s, &p, &k);
	assert_non_null(st);
	assert_int_equal(k.n, s.ncalls); /* one edge per call */
	const struct rg_edge *a = find_edge(st, 9000);
	assert_non_null(a);
	print_message("density=%s: mu %.3f (want %.3f) sd %.3f (want %.3f) n %.3f pk1 %.3f bg %.1f/s accuracy %.3f\n",
		      density, a->start.mu, sp.a_mu, a->start.sd, sp.a_sd, a->n, a->pk[1],
		      st->model.origin[0].mu * 1e9, synth_accuracy(&s, &k));
	assert_true(fabs(a->start.mu - sp.a_mu) <= 0.05);
	assert_true(fabs(a->start.sd - sp.a_sd) <= 0.06);
	assert_true(fabs(a->n - 1.0) <= 0.06);
	assert_true(a->pk[1] >= 0.8); /* one call per request */
	double bg = st->model.origin[0].mu * 1e9;
	assert_true(bg > 20 * 0.65 && bg < 20 * 1.35);
	/* ~2.5 requests in flight per call: timing still finds most parents */
	assert_true(synth_accuracy(&s, &k) > 0.85);
	tj_correlator_regression.close(st);
	free(k.e);
	synth_free(&s);
}

static void fit_hist(void **state) { (void)state; check_fit("hist"); }
static void fit_lognormal(void **state) { (void)state; check_fit("lognormal"); }

/* Two callees, the second optional (p = 0.5) and sequential after the
 * first's reply: calls per request for each edge are recovered. */
static void fit_two_callees(void **state)
{
	(void)state;
	struct synth_spec sp = base_spec();
	sp.b_prob = 0.5;
	sp.bg_rate = 0;
	sp.seed = 2;
	struct synth s;
	synth_build(&s, &sp);
	struct tj_params p = { 1, { "learn" }, { "1000000" } };
	struct edge_keep k;
	struct rg_state *st = synth_run(&s, &p, &k);
	assert_non_null(st);
	const struct rg_edge *a = find_edge(st, 9000), *b = find_edge(st, 9001);
	assert_non_null(a);
	assert_non_null(b);
	print_message("A: n %.3f mu %.3f; B: n %.3f P(N=0) %.3f; accuracy %.3f\n",
		      a->n, a->start.mu, b->n, b->pk[0], synth_accuracy(&s, &k));
	assert_true(fabs(a->n - 1.0) <= 0.06);
	assert_true(fabs(a->start.mu - sp.a_mu) <= 0.12);
	assert_true(fabs(b->n - 0.5) <= 0.06);
	assert_true(fabs(b->pk[0] - 0.5) <= 0.06);
	/* B follows A's response after ~0.5 ms: the chain gap is learned and
	 * peaks there, not a decade either side */
	assert_true(b->has_chain);
	double at = b->chain.logf[rg_bin_of((int64_t)exp(sp.b_mu))];
	assert_true(at > b->chain.logf[rg_bin_of((int64_t)(exp(sp.b_mu) * 10))] + 2);
	assert_true(at > b->chain.logf[rg_bin_of((int64_t)(exp(sp.b_mu) / 10))] + 2);
	assert_true(synth_accuracy(&s, &k) > 0.85);
	tj_correlator_regression.close(st);
	free(k.e);
	synth_free(&s);
}

/* One EM step: is it small (a gain below 1e-4 per call)?  Fed twice, so
 * only the step's own verdict counts. */
static int small_step(double prev, double ll, size_t n)
{
	int small = 1; /* as if the step before was small */
	return rg_em_converged(prev, ll, n, &small);
}

/* EM stops after two steps running that gain less than 1e-4 per call. */
static void em_convergence_test(void **state)
{
	(void)state;
	assert_true(small_step(-270000.0, -269999.5, 20000));  /* 2.5e-5/call */
	assert_true(small_step(-270000.0, -269998.0, 20000));  /* at the bound */
	assert_false(small_step(-270000.0, -269997.9, 20000));
	assert_false(small_step(-270000.0, -269999.5, 1000));  /* 5e-4/call */
	assert_true(small_step(-270000.0, -270001.0, 20000));  /* a small dip */
	assert_false(small_step(-270000.0, -270010.0, 20000));
	assert_false(small_step(-INFINITY, -269999.5, 20000)); /* first step */
	assert_false(small_step(-270000.0, NAN, 20000));
	assert_true(small_step(-3.0, -3.00005, 0));            /* no calls: 1 */
	/* a run seen on async/high: a small first step after the warm start,
	 * then EM speeds up; it must not stop until two small steps in a row */
	double ll[] = { -267781.8, -267780.4, -267775.0, -267764.8, -267753.6,
			-267727.9, -267712.0, -267709.5, -267708.4, -267707.0 };
	int small = 0, stop = -1;
	for (int i = 1; i < 10 && stop < 0; i++)
		if (rg_em_converged(ll[i - 1], ll[i], 20000, &small))
			stop = i;
	assert_int_equal(stop, 9); /* steps 1.1 and 1.4 nats, not the 1.4 at 1 */
}

/* The EM starts ranked on a stride sample of the window (the default,
 * screen=2000 of ~8000 calls) pick the start and reach the model that
 * ranking them on the whole window (screen=0) does. */
static void screen_sample_matches_whole(void **state)
{
	(void)state;
	struct synth_spec sp = base_spec();
	sp.requests = 8000;
	sp.b_prob = 0.5;
	sp.seed = 4;
	struct synth s;
	synth_build(&s, &sp);
	struct tj_params ps = { 1, { "learn" }, { "1000000" } };
	struct tj_params pw = { 2, { "learn", "screen" }, { "1000000", "0" } };
	struct edge_keep ks, kw;
	struct rg_state *ss = synth_run(&s, &ps, &ks), *sw = synth_run(&s, &pw, &kw);
	assert_non_null(ss);
	assert_non_null(sw);
	size_t n = sw->model.screened;
	print_message("screened on %zu of %zu calls: start %d vs %d, %d vs %d iterations, accuracy %.4f vs %.4f\n",
		      ss->model.screened, n, ss->model.start_used, sw->model.start_used,
		      ss->model.iters_run, sw->model.iters_run,
		      synth_accuracy(&s, &ks), synth_accuracy(&s, &kw));
	assert_true(n > 6000);
	assert_true(ss->model.screened >= 2000 && ss->model.screened < n / 3);
	assert_int_equal(ss->model.start_used, sw->model.start_used);
	for (uint16_t port = 9000; port <= 9001; port++) {
		const struct rg_edge *a = find_edge(ss, port), *b = find_edge(sw, port);
		assert_non_null(a);
		assert_non_null(b);
		assert_true(fabs(a->n - b->n) <= 0.01);
		assert_true(fabs(a->start.mu - b->start.mu) <= 0.02);
	}
	assert_true(fabs(ss->model.loglik - sw->model.loglik) <=
		    1e-3 * (double)n);
	assert_true(fabs(synth_accuracy(&s, &ks) - synth_accuracy(&s, &kw)) <= 0.005);
	assert_true(synth_accuracy(&s, &ks) > 0.8); /* B overlaps A's calls */
	tj_correlator_regression.close(ss);
	tj_correlator_regression.close(sw);
	free(ks.e);
	free(kw.e);
	synth_free(&s);
}

/* A learning window shorter than the stream: the model is frozen after
 * it and later calls are still decided, each exactly once. */
static void learn_window_then_stream(void **state)
{
	(void)state;
	struct synth_spec sp = base_spec();
	sp.seed = 3;
	struct synth s;
	synth_build(&s, &sp);
	struct tj_params p = { 1, { "learn" }, { "1500" } };
	struct edge_keep k;
	struct rg_state *st = synth_run(&s, &p, &k);
	assert_non_null(st);
	assert_int_equal(k.n, s.ncalls);
	const struct rg_edge *a = find_edge(st, 9000);
	assert_non_null(a);
	assert_true(fabs(a->start.mu - sp.a_mu) <= 0.08);
	assert_true(synth_accuracy(&s, &k) > 0.85);
	/* every call once */
	for (size_t i = 1; i < k.n; i++)
		for (size_t j = i < 50 ? 0 : i - 50; j < i; j++)
			assert_false(tj_msgkey_eq(&k.e[i].child, &k.e[j].child));
	/* no references leak: every parent went back to the free list */
	size_t freecount = 0;
	for (uint32_t f = st->free_head; f != RG_NONE; f = st->pool[f].next_free)
		freecount++;
	size_t active = 0;
	for (size_t i = 0; i < st->nnode; i++)
		active += st->node[i].nactive;
	assert_int_equal(freecount + active, st->npool);
	tj_correlator_regression.close(st);
	free(k.e);
	synth_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fit_hist),
		cmocka_unit_test(fit_lognormal),
		cmocka_unit_test(fit_two_callees),
		cmocka_unit_test(learn_window_then_stream),
		cmocka_unit_test(em_convergence_test),
		cmocka_unit_test(screen_sample_matches_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
