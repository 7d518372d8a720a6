/* The model file: a round trip is bit-exact, and every kind of bad file
 * is refused with a message that names what is wrong and where. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "../../models/model.h"
#include "../../models/features.h"
#include "test_util.h"

static void sample(struct tj_model *m)
{
	tj_model_init(m);
	m->fit = TJ_FIT_CLOGIT;
	m->lambda = 1.0;
	m->threshold = 0.123456789012345678;
	m->max_cand = 64;
	m->window_ns = 10000000000ull;
	m->nfeat = TJ_FEAT_N;
	for (size_t k = 0; k < m->nfeat; k++) {
		strcpy(m->names[k], tj_feat_names[k]);
		m->mean[k] = 0.1 * (double)k + 1.0 / 3.0;
		m->scale[k] = 1.0 + 1.0 / (double)(k + 7);
		m->coef[k] = k % 2 ? -2.0 / 3.0 * (double)k : 1e-300;
	}
	m->bias = -0.7071067811865476;
	m->train_calls = 1234;
	m->train_pairs = 56789;
	m->train_accuracy = 0.95;
	const char *h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	assert_int_equal(tj_model_add_hash(m, "threaded-s101", "labels.csv", h), 0);
	assert_int_equal(tj_model_add_hash(m, "threaded-s101", "node-1.evlog", h), 0);
	tj_model_prepare(m);
}

static char *tmpfile_path(void)
{
	char *p = strdup("/tmp/tj-model-test.XXXXXX");
	int fd = mkstemp(p);
	assert_true(fd >= 0);
	close(fd);
	return p;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct tj_model a, b;
	struct tj_err err = { 0 };
	sample(&a);
	char *p = tmpfile_path();
	assert_int_equal(tj_model_write(&a, p, TJ_OUT_FORCE, &err), 0);
	if (tj_model_read(&b, p, tj_feat_names, TJ_FEAT_N, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(b.fit, a.fit);
	assert_int_equal(b.nfeat, a.nfeat);
	assert_int_equal(b.max_cand, a.max_cand);
	assert_true(b.window_ns == a.window_ns);
	assert_memory_equal(b.mean, a.mean, a.nfeat * sizeof(double));
	assert_memory_equal(b.scale, a.scale, a.nfeat * sizeof(double));
	assert_memory_equal(b.coef, a.coef, a.nfeat * sizeof(double));
	assert_memory_equal(&b.bias, &a.bias, sizeof(double));
	assert_memory_equal(&b.threshold, &a.threshold, sizeof(double));
	assert_memory_equal(b.w_raw, a.w_raw, a.nfeat * sizeof(double));
	assert_int_equal(b.nhashes, 2);
	assert_string_equal(b.hashes[1].file, "node-1.evlog");
	assert_int_equal(b.train_calls, 1234);
	/* writing it again gives the same bytes */
	char *q = tmpfile_path();
	assert_int_equal(tj_model_write(&b, q, TJ_OUT_FORCE, &err), 0);
	size_t la, lb;
	char *ta = test_read_file(p, &la), *tb = test_read_file(q, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ta, tb, la);
	free(ta);
	free(tb);
	unlink(p);
	unlink(q);
	free(p);
	free(q);
	tj_model_free(&a);
	tj_model_free(&b);
}

/* Write the sample, apply a textual edit, parse, expect an error holding
 * every given fragment. */
static void refuse(const char *from, const char *to, const char *frag1,
		   const char *frag2)
{
	struct tj_model a, b;
	struct tj_err err = { 0 };
	sample(&a);
	char *p = tmpfile_path();
	assert_int_equal(tj_model_write(&a, p, TJ_OUT_FORCE, &err), 0);
	size_t len;
	char *text = test_read_file(p, &len);
	char edited[1 << 16];
	const char *at = from ? strstr(text, from) : text + len;
	assert_non_null(at);
	size_t pre = (size_t)(at - text);
	snprintf(edited, sizeof(edited), "%.*s%s%s", (int)pre, text, to,
		 from ? at + strlen(from) : "");
	int rc = tj_model_parse(&b, "m.model", edited, strlen(edited),
				tj_feat_names, TJ_FEAT_N, &err);
	if (rc == 0)
		fail_msg("accepted a model edited '%s' -> '%s'", from ? from : "(end)", to);
	if (!strstr(err.msg, frag1) || (frag2 && !strstr(err.msg, frag2)))
		fail_msg("message '%s' lacks '%s' / '%s'", err.msg, frag1, frag2 ? frag2 : "");
	if (!strstr(err.msg, "m.model"))
		fail_msg("message '%s' does not name the file", err.msg);
	free(text);
	unlink(p);
	free(p);
	tj_model_free(&a);
}

static void test_refuses_other_version(void **state)
{
	(void)state;
	refuse("tracejoin-model 1", "tracejoin-model 2", "version 2", "line 1");
	refuse("tracejoin-model 1", "hello world", "not a tracejoin model", NULL);
}

static void test_refuses_other_feature_list(void **state)
{
	(void)state;
	/* a renamed feature is named */
	refuse("feature same_tid ", "feature same_thread ", "same_thread", "same_tid");
	/* one feature fewer: count changed consistently, last line dropped */
	char last[128];
	snprintf(last, sizeof(last), "features %d", TJ_FEAT_N);
	char fewer[128];
	snprintf(fewer, sizeof(fewer), "features %d", TJ_FEAT_N - 1);
	struct tj_model a;
	sample(&a);
	char *p = tmpfile_path();
	struct tj_err err = { 0 };
	assert_int_equal(tj_model_write(&a, p, TJ_OUT_FORCE, &err), 0);
	size_t len;
	char *text = test_read_file(p, &len);
	char *fl = strstr(text, "feature reply_unknown ");
	assert_non_null(fl);
	char *eol = strchr(fl, '\n');
	memmove(fl, eol + 1, strlen(eol + 1) + 1);
	char *fc = strstr(text, last);
	memcpy(fc, fewer, strlen(fewer)); /* same length for 2-digit counts */
	struct tj_model b;
	assert_true(tj_model_parse(&b, "m.model", text, strlen(text), tj_feat_names,
				   TJ_FEAT_N, &err) < 0);
	assert_non_null(strstr(err.msg, "reply_unknown"));
	assert_non_null(strstr(err.msg, "another feature list"));
	free(text);
	unlink(p);
	free(p);
	tj_model_free(&a);
}

static void test_refuses_malformed_lines(void **state)
{
	(void)state;
	refuse("fit clogit", "fit forest", "line 4", "forest");
	refuse("threshold 0.", "threshold x0.", "line 6", "not a finite number");
	refuse("threshold 0.1", "threshold 1.1", "line 6", "not in [0,1]");
	refuse("algo classifier", "algo regression", "line 3", "regression");
	refuse("lambda 1\n", "lambda 1\nlambda 2\n", "line 6", "twice");
	refuse("max_cand 64", "max_cand 0", "max_cand", NULL);
	refuse("max_cand 64", "max_cand -3", "max_cand", "whole number");
	refuse("\nbias ", "\ncolour blue\nbias ", "unknown key 'colour'", NULL);
	refuse("end\n", "", "no 'end'", NULL);
	refuse(NULL, "extra 1\n", "after 'end'", NULL);
	refuse("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	       "xyz", "SHA-256", NULL);
	refuse("feature dt_start ", "feature dt_start nan", "not a finite number", NULL);
	refuse("train_calls 1234\n", "", "'train_calls' missing", NULL);
	refuse("tracejoin-model 1\n", "", "not a tracejoin model", NULL);
	/* finite, but infinite once divided by a tiny scale */
	refuse("feature dt_start ", "feature dt_start 0 1e-300 1e300\n# ",
	       "overflow", NULL);
}

static void test_refuses_empty_and_missing(void **state)
{
	(void)state;
	struct tj_model m;
	struct tj_err err = { 0 };
	assert_true(tj_model_parse(&m, "e.model", "", 0, NULL, 0, &err) < 0);
	assert_non_null(strstr(err.msg, "e.model"));
	assert_true(tj_model_read(&m, "/nonexistent/x.model", NULL, 0, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/x.model"));
}

static void test_decide(void **state)
{
	(void)state;
	struct tj_model m;
	tj_model_init(&m);
	m.nfeat = 1;
	m.mean[0] = 0;
	m.scale[0] = 1;
	m.coef[0] = 1;
	m.bias = 0;
	m.fit = TJ_FIT_CLOGIT;
	m.threshold = 0.5;
	tj_model_prepare(&m);
	double x[3] = { -1, 3, 0 }, p;
	/* softmax over e^-1, e^3, e^0 and none (e^0) */
	assert_int_equal(tj_model_decide(&m, x, 3, 1, &p), 1);
	double z = exp(-1) + exp(3) + 1 + 1;
	assert_float_equal(p, exp(3) / z, 1e-12);
	double low[2] = { -5, -6 };
	assert_int_equal(tj_model_decide(&m, low, 2, 1, &p), -1);
	assert_int_equal(tj_model_decide(&m, x, 0, 1, &p), -1);
	assert_float_equal(p, 1.0, 0);
	m.fit = TJ_FIT_LOGIT;
	assert_int_equal(tj_model_decide(&m, x, 3, 1, &p), 1);
	assert_float_equal(p, 1 / (1 + exp(-3)), 1e-12);
	/* huge scores must not overflow */
	double big[2] = { 800, 799 };
	m.fit = TJ_FIT_CLOGIT;
	assert_int_equal(tj_model_decide(&m, big, 2, 1, &p), 0);
	assert_float_equal(p, 1 / (1 + exp(-1)), 1e-9);
}

/* A model made before features were appended names a prefix of this
 * build's list: it is read, the newer features weigh nothing, and it
 * scores every candidate exactly as before.  A list that is not a prefix
 * is still refused. */
static void test_prefix_model_reads_and_scores_the_same(void **state)
{
	(void)state;
	struct tj_model a, b;
	struct tj_err err = { 0 };
	sample(&a);
	a.nfeat = TJ_FEAT_N - 3;
	tj_model_prepare(&a);
	char *p = tmpfile_path();
	assert_int_equal(tj_model_write(&a, p, TJ_OUT_FORCE, &err), 0);
	if (tj_model_read(&b, p, tj_feat_names, TJ_FEAT_N, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(b.nfeat, TJ_FEAT_N);
	for (size_t k = a.nfeat; k < TJ_FEAT_N; k++) {
		assert_string_equal(b.names[k], tj_feat_names[k]);
		assert_float_equal(b.coef[k], 0, 0);
	}
	double x[2][TJ_FEAT_N];
	for (size_t k = 0; k < TJ_FEAT_N; k++) {
		x[0][k] = 0.5 * (double)k;
		x[1][k] = k >= a.nfeat ? 99.0 : 0.25 * (double)k; /* only new ones differ wildly */
	}
	double pa, pb;
	a.nfeat = TJ_FEAT_N - 3;
	int da = tj_model_decide(&a, &x[0][0], 2, TJ_FEAT_N, &pa);
	int db = tj_model_decide(&b, &x[0][0], 2, TJ_FEAT_N, &pb);
	assert_int_equal(da, db);
	assert_float_equal(pa, pb, 1e-12);
	tj_model_free(&b);
	/* not a prefix: refused, naming the feature */
	strcpy(a.names[2], "not_a_feature");
	assert_int_equal(tj_model_write(&a, p, TJ_OUT_FORCE, &err), 0);
	assert_true(tj_model_read(&b, p, tj_feat_names, TJ_FEAT_N, &err) < 0);
	assert_non_null(strstr(err.msg, "not_a_feature"));
	unlink(p);
	free(p);
	tj_model_free(&a);
}

/* A model fitted on a selection (features 0, 2 and the last: not the
 * first N) writes `selection 1` and only those lines; read back against
 * the build's list it holds every feature, the others weighing nothing,
 * scores as the selection does and writes the same bytes again. */
static void test_selection_model(void **state)
{
	(void)state;
	struct tj_model a, b;
	struct tj_err err = { 0 };
	sample(&a);
	size_t col[3] = { 0, 2, TJ_FEAT_N - 1 };
	double coef[3] = { 0.5, -1.25, 2.0 };
	a.nfeat = 3;
	for (size_t k = 0; k < 3; k++) {
		strcpy(a.names[k], tj_feat_names[col[k]]);
		a.mean[k] = 0.1 * (double)(k + 1);
		a.scale[k] = 2.0;
		a.coef[k] = coef[k];
	}
	assert_int_equal(tj_model_spread(&a, col, tj_feat_names, TJ_FEAT_N), 0);
	assert_int_equal(a.nfeat, TJ_FEAT_N);
	assert_true(a.unused[1] && !a.unused[2] && !a.unused[TJ_FEAT_N - 1]);
	char *p = tmpfile_path();
	assert_int_equal(tj_model_write(&a, p, TJ_OUT_FORCE, &err), 0);
	size_t len;
	char *text = test_read_file(p, &len);
	assert_non_null(strstr(text, "\nselection 1\n"));
	assert_non_null(strstr(text, "\nfeatures 3\n"));
	assert_null(strstr(text, tj_feat_names[1]));
	if (tj_model_read(&b, p, tj_feat_names, TJ_FEAT_N, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(b.nfeat, TJ_FEAT_N);
	assert_memory_equal(b.w_raw, a.w_raw, TJ_FEAT_N * sizeof(double));
	assert_memory_equal(&b.b_raw, &a.b_raw, sizeof(double));
	/* the score is the selection's, whatever the other columns hold */
	double x[TJ_FEAT_N];
	for (size_t k = 0; k < TJ_FEAT_N; k++)
		x[k] = 1e6 * (double)(k + 1);
	double want = a.bias;
	for (size_t k = 0; k < 3; k++)
		want += coef[k] * (x[col[k]] - 0.1 * (double)(k + 1)) / 2.0;
	assert_float_equal(tj_model_score(&b, x), want, 1e-6 * fabs(want));
	char *q = tmpfile_path();
	assert_int_equal(tj_model_write(&b, q, TJ_OUT_FORCE, &err), 0);
	size_t lb;
	char *tb = test_read_file(q, &lb);
	assert_int_equal(len, lb);
	assert_memory_equal(text, tb, len);
	tj_model_free(&b);
	/* refused: a name the build lacks, one out of the build's order, one
	 * twice, another selection value; each named */
	const struct { const char *from, *to, *frag; } bad[] = {
		{ "feature dt_start ", "feature dt_begin ", "dt_begin" },
		{ "feature dt_start ", "feature same_tid ", "dt_thread_read" },
		{ "feature dt_thread_read ", "feature dt_start ", "dt_start" },
		{ "selection 1", "selection 2", "selection '2'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char edited[1 << 16];
		const char *at = strstr(text, bad[i].from);
		assert_non_null(at);
		snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(at - text), text,
			 bad[i].to, at + strlen(bad[i].from));
		if (tj_model_parse(&b, "sel.model", edited, strlen(edited), tj_feat_names,
				   TJ_FEAT_N, &err) == 0)
			fail_msg("accepted '%s' -> '%s'", bad[i].from, bad[i].to);
		if (!strstr(err.msg, bad[i].frag) || !strstr(err.msg, "sel.model"))
			fail_msg("message '%s' lacks '%s' or the file", err.msg, bad[i].frag);
	}
	free(text);
	free(tb);
	unlink(p);
	unlink(q);
	free(p);
	free(q);
	tj_model_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_model_reads_and_scores_the_same),
		cmocka_unit_test(test_selection_model),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refuses_other_version),
		cmocka_unit_test(test_refuses_other_feature_list),
		cmocka_unit_test(test_refuses_malformed_lines),
		cmocka_unit_test(test_refuses_empty_and_missing),
		cmocka_unit_test(test_decide),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
