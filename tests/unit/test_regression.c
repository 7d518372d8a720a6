/* The regression correlator's table: params refused by name, thread ids
 * never read, and streams with nothing to decide. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <cmocka.h>
#include "test_regression_synth.h"

static void expect_refused(const char *key, const char *val, const char *needle)
{
	struct tj_params p = { 1, { key }, { val } };
	struct tj_err err = {0};
	void *st = NULL;
	int rc = tj_correlator_regression.open(&st, &p, &err);
	if (rc == 0) {
		tj_correlator_regression.close(st);
		fail_msg("param %s=%s was accepted", key, val);
	}
	assert_true(rc < 0);
	assert_null(st);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not name '%s'", err.msg, needle);
}

static void params_refused(void **state)
{
	(void)state;
	expect_refused("bogus", "1", "bogus");
	expect_refused("learn", "abc", "learn");
	expect_refused("learn", "0", "learn");
	expect_refused("learn", "2.5", "learn");
	expect_refused("window", "-1", "window");
	expect_refused("window", "0", "window");
	expect_refused("horizon", "nan", "horizon");
	expect_refused("batch", "100000", "batch");
	expect_refused("max_candidates", "0", "max_candidates");
	expect_refused("iters", "", "iters");
	expect_refused("screen", "-5", "screen");
	expect_refused("screen", "0.5", "screen");
	expect_refused("density", "gamma", "density");
	expect_refused("explain", "2", "explain");
	expect_refused("joint", "yes", "joint");
	/* every documented param is accepted */
	struct tj_params p = { 13,
		{ "learn", "window", "batch", "max_candidates", "horizon", "iters",
		  "density", "ends", "same_pid", "slots", "joint", "explain",
		  "screen" },
		{ "10", "5.5", "8", "4", "200", "3", "lognormal", "0", "0", "0",
		  "0", "0", "0" } };
	struct tj_err err = {0};
	void *st = NULL;
	assert_int_equal(tj_correlator_regression.open(&st, &p, &err), 0);
	tj_correlator_regression.close(st);
	/* and every param is documented */
	const char *help = tj_correlator_regression.params_help;
	for (size_t i = 0; i < p.n; i++) {
		char k[32];
		snprintf(k, sizeof(k), "%s=", p.key[i]);
		assert_non_null(strstr(help, k));
	}
}

/* Delay bins come from a table of bin starts: they agree with the
 * defining formula, floor(log10(|d| / 1 us) * 6) clamped to the side,
 * on both sides of every start, across each decade, at the extremes. */
static int bin_formula(int64_t d)
{
	double a = d < 0 ? -(double)d : (double)d;
	if (a < 1e3)
		return RG_SIDE;
	int j = (int)floor(log10(a / 1e3) * RG_BINS_PER_DECADE);
	j = j < 0 ? 0 : j >= RG_SIDE ? RG_SIDE - 1 : j;
	return d > 0 ? RG_SIDE + 1 + j : RG_SIDE - 1 - j;
}

static void bins_match_formula(void **state)
{
	(void)state;
	int64_t probe[] = { 0, 1, 999, 1000, 1001, INT64_MAX, INT64_MIN + 1,
			    (int64_t)1e11, (int64_t)1e12, (int64_t)1e15 };
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		assert_int_equal(rg_bin_of(probe[i]), bin_formula(probe[i]));
		assert_int_equal(rg_bin_of(-probe[i]), bin_formula(-probe[i]));
	}
	assert_int_equal(rg_bin_of(INT64_MIN), 0);
	/* around every place the formula changes bin, and in between */
	for (double x = 1e3; x < 2e11; x *= 1.0007) {
		int64_t d = (int64_t)x;
		for (int64_t e = -3; e <= 3; e++) {
			assert_int_equal(rg_bin_of(d + e), bin_formula(d + e));
			assert_int_equal(rg_bin_of(-(d + e)), bin_formula(-(d + e)));
		}
	}
	for (int b = 1; b < RG_SIDE; b++) { /* exact starts, found by bisection */
		int64_t lo = 1000, hi = (int64_t)2e11;
		while (lo < hi) {
			int64_t mid = lo + (hi - lo) / 2;
			if (bin_formula(mid) >= RG_SIDE + 1 + b)
				hi = mid;
			else
				lo = mid + 1;
		}
		assert_int_equal(rg_bin_of(lo), RG_SIDE + 1 + b);
		assert_int_equal(rg_bin_of(lo - 1), RG_SIDE + b);
		assert_int_equal(rg_bin_of(-lo), RG_SIDE - 1 - b);
	}
}

/* The same stream with honest thread ids, and with every thread id the
 * same misleading value: the edges are identical. */
static void never_reads_tids(void **state)
{
	(void)state;
	struct synth_spec sp = {
		.rate = 800, .requests = 1500, .a_mu = log(2e6), .a_sd = 0.5,
		.b_prob = 0.5, .b_mu = log(3e5), .b_sd = 0.3, .call_ms = 1.0,
		.bg_rate = 30, .seed = 5,
	};
	struct synth a, b;
	synth_build(&a, &sp);
	sp.tid_override = 4242;
	synth_build(&b, &sp);
	assert_int_equal(a.n, b.n);
	struct tj_params p = { 2, { "learn", "explain" }, { "600", "1" } };
	struct edge_keep ka, kb;
	void *sa = synth_run(&a, &p, &ka), *sb = synth_run(&b, &p, &kb);
	assert_non_null(sa);
	assert_non_null(sb);
	assert_int_equal(ka.n, kb.n);
	assert_int_equal(ka.n, a.ncalls);
	for (size_t i = 0; i < ka.n; i++) {
		assert_true(tj_msgkey_eq(&ka.e[i].child, &kb.e[i].child));
		assert_int_equal(ka.e[i].has_parent, kb.e[i].has_parent);
		if (ka.e[i].has_parent)
			assert_true(tj_msgkey_eq(&ka.e[i].parent, &kb.e[i].parent));
		assert_true(ka.e[i].score == kb.e[i].score);
		assert_true(ka.e[i].score >= 0 && ka.e[i].score <= 1);
	}
	tj_correlator_regression.close(sa);
	tj_correlator_regression.close(sb);
	free(ka.e);
	free(kb.e);
	synth_free(&a);
	synth_free(&b);
}

/* Nothing to learn from: no messages; only calls with nothing in flight;
 * responses and unknown-role messages are ignored. */
static void nothing_to_learn(void **state)
{
	(void)state;
	struct edge_keep k;
	struct synth s;
	memset(&s, 0, sizeof(s));
	s.parent_of = calloc(64, sizeof(*s.parent_of));
	struct tj_params p = { 0 };
	struct rg_state *st = synth_run(&s, &p, &k);
	assert_non_null(st);
	assert_int_equal(k.n, 0);
	tj_correlator_regression.close(st);
	free(k.e);

	for (int i = 0; i < 5; i++)
		synth_call(&s, 1000000 + (uint64_t)i * 1000000, 9000, 1e5, 1);
	struct tj_message *resp = synth_add(&s); /* a response: not a call */
	resp->is_request = 0;
	resp->role = TJ_ROLE_CLIENT;
	resp->key.dir = TJ_DIR_IN;
	resp->ts_first = 9000000;
	struct tj_message *unk = synth_add(&s); /* role unknown: skipped */
	unk->role = TJ_ROLE_UNKNOWN;
	unk->key.dir = TJ_DIR_OUT;
	unk->ts_first = 9500000;
	st = synth_run(&s, &p, &k);
	assert_non_null(st);
	assert_int_equal(k.n, 5);
	for (size_t i = 0; i < k.n; i++) {
		assert_false(k.e[i].has_parent);
		assert_true(k.e[i].score == 1.0);
	}
	tj_correlator_regression.close(st);
	free(k.e);
	synth_free(&s);
}

/* A sink that fails: the error comes back naming the call. */
static int failing_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	(void)sink;
	(void)e;
	return -TJ_E_IO;
}

static void sink_failure_reported(void **state)
{
	(void)state;
	struct synth s;
	memset(&s, 0, sizeof(s));
	s.parent_of = calloc(8, sizeof(*s.parent_of));
	synth_call(&s, 1000000, 9000, 1e5, 1);
	void *st = NULL;
	struct tj_err err = {0};
	struct tj_edge_sink sink = { failing_emit, NULL };
	assert_int_equal(tj_correlator_regression.open(&st, NULL, &err), 0);
	assert_true(tj_correlator_regression.message(st, &s.msg[0], &sink, &err) < 0);
	assert_non_null(strstr(err.msg, "1:1:out:0"));
	tj_correlator_regression.close(st);
	synth_free(&s);
}

/* After the learning window, a service and a callee never seen are
 * decided with the pooled model, and no model table grows. */
static void unseen_after_learning(void **state)
{
	(void)state;
	struct synth_spec sp = {
		.rate = 300, .requests = 2000, .a_mu = log(2e6), .a_sd = 0.4,
		.b_prob = 0, .call_ms = 1.0, .bg_rate = 0, .seed = 9,
	};
	struct synth s;
	synth_build(&s, &sp);
	for (size_t i = s.n / 2; i < s.n; i++) {
		if (s.msg[i].role == TJ_ROLE_CLIENT)
			s.msg[i].rport = 9555;
		else
			s.msg[i].lport = 8181;
	}
	struct tj_params p = { 1, { "learn" }, { "500" } };
	struct edge_keep k;
	struct rg_state *st = synth_run(&s, &p, &k);
	assert_non_null(st);
	assert_int_equal(k.n, s.ncalls);
	assert_int_equal(st->model.ncallee, 1);
	assert_int_equal(st->model.nsvc, 1);
	size_t nedge = st->model.nedge, norigin = st->model.norigin;
	assert_true(nedge >= 1 && norigin >= 1);
	print_message("accuracy with the pooled model on the unseen half: %.3f\n",
		      synth_accuracy(&s, &k));
	assert_true(synth_accuracy(&s, &k) > 0.8);
	tj_correlator_regression.close(st);
	free(k.e);
	synth_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(params_refused),
		cmocka_unit_test(bins_match_formula),
		cmocka_unit_test(never_reads_tids),
		cmocka_unit_test(nothing_to_learn),
		cmocka_unit_test(sink_failure_reported),
		cmocka_unit_test(unseen_after_learning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
