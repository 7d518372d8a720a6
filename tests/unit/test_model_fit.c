/* Fitting: on synthetic grouped data whose answer we know, both fits must
 * order the coefficients as the data were made, be deterministic, and fit
 * a no-parent threshold that helps. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "../../models/fit.h"

#define K 3 /* strong signal, weak signal, noise */
#define NC 5

/* n calls of NC candidates.  The parent's x0 ~ N(sep0,1), x1 ~ N(sep1,1),
 * others N(0,1); x2 is noise for all.  A share none_frac of calls have no
 * parent: then every candidate is drawn as a non-parent. */
static void make(struct tj_fit_set *s, size_t n, double sep0, double sep1,
		 double none_frac, unsigned long seed)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, seed);
	tj_fit_set_init(s, K);
	double x[NC][K];
	struct tj_err err = { 0 };
	for (size_t g = 0; g < n; g++) {
		int none = gsl_rng_uniform(r) < none_frac;
		int t = none ? TJ_TRUTH_NONE : (int)gsl_rng_uniform_int(r, NC);
		for (int j = 0; j < NC; j++) {
			x[j][0] = gsl_ran_gaussian(r, 1) + (j == t ? sep0 : 0);
			x[j][1] = gsl_ran_gaussian(r, 1) + (j == t ? sep1 : 0);
			x[j][2] = gsl_ran_gaussian(r, 1);
		}
		assert_int_equal(tj_fit_set_add(s, &x[0][0], NC, K, t, &err), 0);
	}
	gsl_rng_free(r);
}

static void fit_one(const struct tj_fit_set *s, int kind, struct tj_model *m)
{
	struct tj_fit_opts o = { kind, 1.0, 200, 0, NULL };
	struct tj_err err = { 0 };
	tj_model_init(m);
	int rc = tj_fit(s, &o, m, &err);
	if (rc < 0)
		fail_msg("%s", err.msg);
}

static void check_ordering(int kind)
{
	struct tj_fit_set s;
	struct tj_model m;
	make(&s, 2000, 2.0, 0.7, 0.0, 42);
	fit_one(&s, kind, &m);
	/* on standardised features: strong > weak > |noise| */
	assert_true(m.coef[0] > m.coef[1]);
	assert_true(m.coef[1] > fabs(m.coef[2]));
	assert_true(fabs(m.coef[2]) < 0.2 * m.coef[1]);
	/* and it must predict well on fresh data from the same law */
	struct tj_fit_set t;
	make(&t, 2000, 2.0, 0.7, 0.0, 43);
	double acc = tj_fit_accuracy(&t, &m);
	assert_true(acc > 0.7);
	tj_fit_set_free(&s);
	tj_fit_set_free(&t);
	tj_model_free(&m);
}

static void test_logit_orders_coefficients(void **state)
{
	(void)state;
	check_ordering(TJ_FIT_LOGIT);
}

static void test_clogit_orders_coefficients(void **state)
{
	(void)state;
	check_ordering(TJ_FIT_CLOGIT);
}

/* Perfectly separable: x0 is 1 for the parent, 0 otherwise.  The penalty
 * must keep coefficients finite and the answer exact. */
static void check_separable(int kind)
{
	struct tj_fit_set s;
	struct tj_err err = { 0 };
	tj_fit_set_init(&s, K);
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, 7);
	for (int g = 0; g < 500; g++) {
		double x[NC][K];
		int t = (int)gsl_rng_uniform_int(r, NC);
		for (int j = 0; j < NC; j++) {
			x[j][0] = j == t;
			x[j][1] = gsl_rng_uniform(r);
			x[j][2] = 0.5 * (j == t) + gsl_rng_uniform(r);
		}
		assert_int_equal(tj_fit_set_add(&s, &x[0][0], NC, K, t, &err), 0);
	}
	gsl_rng_free(r);
	struct tj_model m;
	fit_one(&s, kind, &m);
	assert_true(isfinite(m.coef[0]) && isfinite(m.bias));
	assert_true(m.coef[0] > m.coef[2]);
	assert_true(m.coef[2] > fabs(m.coef[1]));
	assert_float_equal(tj_fit_accuracy(&s, &m), 1.0, 0);
	tj_fit_set_free(&s);
	tj_model_free(&m);
}

static void test_logit_separable(void **state)
{
	(void)state;
	check_separable(TJ_FIT_LOGIT);
}

static void test_clogit_separable(void **state)
{
	(void)state;
	check_separable(TJ_FIT_CLOGIT);
}

/* With calls that have no parent, the threshold must be above 0 and
 * beat both "always pick" and "always none". */
static void test_threshold_for_no_parent(void **state)
{
	(void)state;
	struct tj_fit_set s;
	make(&s, 3000, 3.0, 1.0, 0.4, 11);
	for (int kind = TJ_FIT_LOGIT; kind <= TJ_FIT_CLOGIT; kind++) {
		struct tj_model m;
		fit_one(&s, kind, &m);
		assert_true(m.threshold > 0 && m.threshold < 1);
		double acc = tj_fit_accuracy(&s, &m);
		assert_float_equal(acc, m.train_accuracy, 1e-12);
		struct tj_model always = m;
		always.threshold = 0;
		assert_true(acc > tj_fit_accuracy(&s, &always) + 0.05);
		assert_true(acc > 0.45); /* "always none" scores 0.4 */
		tj_model_free(&m);
	}
	tj_fit_set_free(&s);
}

static void test_deterministic(void **state)
{
	(void)state;
	struct tj_fit_set s;
	make(&s, 1000, 1.5, 0.5, 0.2, 5);
	for (int kind = TJ_FIT_LOGIT; kind <= TJ_FIT_CLOGIT; kind++) {
		struct tj_model a, b;
		fit_one(&s, kind, &a);
		fit_one(&s, kind, &b);
		assert_memory_equal(a.coef, b.coef, sizeof(a.coef));
		assert_memory_equal(&a.bias, &b.bias, sizeof(a.bias));
		assert_memory_equal(&a.threshold, &b.threshold, sizeof(a.threshold));
	}
	tj_fit_set_free(&s);
}

static void test_refuses_empty_and_bad_truth(void **state)
{
	(void)state;
	struct tj_fit_set s;
	struct tj_model m;
	struct tj_err err = { 0 };
	tj_fit_set_init(&s, K);
	tj_model_init(&m);
	assert_true(tj_fit(&s, NULL, &m, &err) < 0);
	assert_non_null(strstr(err.msg, "no candidate pairs"));
	double x[K] = { 0 };
	assert_true(tj_fit_set_add(&s, x, 1, K, 3, &err) < 0);
	assert_non_null(strstr(err.msg, "truth 3"));
	/* clogit with only unreachable truths has nothing to learn */
	assert_int_equal(tj_fit_set_add(&s, x, 1, K, TJ_TRUTH_UNREACHABLE, &err), 0);
	assert_true(tj_fit(&s, NULL, &m, &err) < 0);
	assert_non_null(strstr(err.msg, "reachable"));
	tj_fit_set_free(&s);
}

/* A warm start (train --self-fed refits a grown set from the last model)
 * is re-expressed on the new set's standardisation and reaches the cold
 * fit's optimum: the same scores on the same data. */
static void test_clogit_warm_start_same_optimum(void **state)
{
	(void)state;
	struct tj_fit_set a, b;
	struct tj_model m0, cold, warm;
	make(&a, 1500, 2.0, 0.7, 0.1, 11);
	fit_one(&a, TJ_FIT_CLOGIT, &m0);
	/* a grown set with other means and spreads */
	make(&b, 1500, 2.5, 0.4, 0.1, 12);
	fit_one(&b, TJ_FIT_CLOGIT, &cold);
	struct tj_fit_opts o = { TJ_FIT_CLOGIT, 1.0, 200, 0, &m0 };
	struct tj_err err = { 0 };
	tj_model_init(&warm);
	assert_int_equal(tj_fit(&b, &o, &warm, &err), 0);
	for (int k = 0; k < K; k++)
		assert_float_equal(warm.coef[k], cold.coef[k], 1e-3);
	assert_float_equal(warm.bias, cold.bias, 1e-3);
	/* with zero iterations allowed the start itself must already score
	 * like m0 does on raw features */
	struct tj_fit_opts o0 = { TJ_FIT_CLOGIT, 1.0, 1, 0, &m0 };
	struct tj_model one;
	tj_model_init(&one);
	assert_int_equal(tj_fit(&b, &o0, &one, &err), 0);
	assert_true(fabs(tj_fit_accuracy(&b, &one) - tj_fit_accuracy(&b, &m0)) < 0.05);
	tj_fit_set_free(&a);
	tj_fit_set_free(&b);
	tj_model_free(&m0);
	tj_model_free(&cold);
	tj_model_free(&warm);
	tj_model_free(&one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logit_orders_coefficients),
		cmocka_unit_test(test_clogit_orders_coefficients),
		cmocka_unit_test(test_logit_separable),
		cmocka_unit_test(test_clogit_separable),
		cmocka_unit_test(test_threshold_for_no_parent),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_clogit_warm_start_same_optimum),
		cmocka_unit_test(test_refuses_empty_and_bad_truth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
