/* The classifier correlator through its table: a hand-made model that
 * trusts thread identity, fed hand-made messages, must answer as that
 * model says; bad models and params are refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "../../correlate/correlator.h"
#include "../../models/features.h"
#include "../../models/model.h"

extern const struct tj_correlator tj_correlator_classifier;

#define US 1000ull

static char model_path[64];

/* score = 6*same_tid - 3 (clogit): same thread wins, else "none". */
static void write_model(const char *path, const char *rename_feature)
{
	struct tj_model m;
	struct tj_err err = { 0 };
	tj_model_init(&m);
	m.fit = TJ_FIT_CLOGIT;
	m.lambda = 1;
	m.threshold = 0.5;
	m.max_cand = 64;
	m.window_ns = 10000000000ull;
	m.nfeat = TJ_FEAT_N;
	for (int k = 0; k < TJ_FEAT_N; k++) {
		strcpy(m.names[k], tj_feat_names[k]);
		m.scale[k] = 1;
	}
	if (rename_feature)
		strcpy(m.names[TJ_F_RANK], rename_feature);
	m.coef[TJ_F_SAME_TID] = 6;
	m.bias = -3;
	assert_int_equal(tj_model_write(&m, path, TJ_OUT_FORCE, &err), 0);
	tj_model_free(&m);
}

static int setup(void **state)
{
	(void)state;
	strcpy(model_path, "/tmp/tj-classifier-test.XXXXXX");
	int fd = mkstemp(model_path);
	if (fd < 0)
		return -1;
	close(fd);
	write_model(model_path, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(model_path);
	return 0;
}

struct sink {
	struct tj_edge_sink s;
	struct tj_edge e[16];
	int n;
};

static int emit(struct tj_edge_sink *s, const struct tj_edge *e)
{
	struct sink *k = (struct sink *)s;
	if (k->n == 16)
		return -1;
	k->e[k->n++] = *e;
	return 0;
}

static struct tj_message msg(uint64_t sock, int server, uint32_t tid,
			     uint64_t t_us, uint64_t reply_us)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key = (struct tj_msgkey){ 1, sock, 0, server ? TJ_DIR_IN : TJ_DIR_OUT };
	m.role = server ? TJ_ROLE_SERVER : TJ_ROLE_CLIENT;
	m.is_request = 1;
	m.pid = 7;
	m.tid_first = m.tid_last = tid;
	m.ts_first = m.ts_last = t_us * US;
	m.ts_reply = reply_us * US;
	m.tid_reply = tid;
	m.bytes = 10;
	return m;
}

static void *open_with(const char *k1, const char *v1, struct tj_err *err,
		       int *rc)
{
	struct tj_params p = { 0 };
	if (k1) {
		p.n = 1;
		p.key[0] = k1;
		p.val[0] = v1;
	}
	void *st = NULL;
	*rc = tj_correlator_classifier.open(&st, &p, err);
	return st;
}

/* Feed every message, then finish(); each must succeed. */
static void run_all(void *st, const struct tj_message *in, size_t n, struct sink *k)
{
	struct tj_err err = { 0 };
	memset(k, 0, sizeof(*k));
	k->s.emit = emit;
	for (size_t i = 0; i < n; i++)
		if (tj_correlator_classifier.message(st, &in[i], &k->s, &err) != 0)
			fail_msg("message %zu: %s", i, err.msg);
	if (tj_correlator_classifier.finish(st, &k->s, &err) != 0)
		fail_msg("finish: %s", err.msg);
}

static void test_answers_as_the_model_says(void **state)
{
	(void)state;
	struct tj_err err = { 0 };
	int rc;
	void *st = open_with("model", model_path, &err, &rc);
	if (rc < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(tj_correlator_classifier.name, "classifier");
	const struct tj_message in[] = {
		msg(10, 1, 100, 1000, 9000), /* request read by thread 100 */
		msg(11, 1, 200, 1100, 9000), /* and one by thread 200 */
		msg(20, 0, 100, 1200, 1300), /* call by 100 -> 10 */
		msg(21, 0, 200, 1400, 1500), /* call by 200 -> 11 */
		msg(22, 0, 300, 1600, 1700), /* call by 300 -> none */
	};
	const size_t n = sizeof(in) / sizeof(in[0]);
	struct sink k;
	run_all(st, in, n, &k);
	tj_correlator_classifier.close(st);
	assert_int_equal(k.n, 3);
	assert_int_equal(k.e[0].child.sock, 20);
	assert_true(k.e[0].has_parent);
	assert_int_equal(k.e[0].parent.sock, 10);
	assert_true(k.e[0].score > 0.5 && k.e[0].score <= 1);
	assert_int_equal(k.e[1].child.sock, 21);
	assert_true(k.e[1].has_parent);
	assert_int_equal(k.e[1].parent.sock, 11);
	assert_int_equal(k.e[2].child.sock, 22);
	assert_false(k.e[2].has_parent);
	assert_true(k.e[2].score >= 0.5);

	/* explain=1 only adds a report on stderr: the same answers, edge
	 * for edge, scores included */
	struct tj_params pe = { 2, { "model", "explain" }, { model_path, "1" } };
	rc = tj_correlator_classifier.open(&st, &pe, &err);
	if (rc < 0)
		fail_msg("%s", err.msg);
	struct sink ke;
	run_all(st, in, n, &ke);
	tj_correlator_classifier.close(st);
	assert_int_equal(ke.n, k.n);
	for (int i = 0; i < k.n; i++) {
		assert_true(tj_msgkey_eq(&ke.e[i].child, &k.e[i].child));
		assert_int_equal(ke.e[i].has_parent, k.e[i].has_parent);
		if (k.e[i].has_parent)
			assert_true(tj_msgkey_eq(&ke.e[i].parent, &k.e[i].parent));
		assert_true(ke.e[i].score == k.e[i].score);
	}
}

static void test_threshold_param(void **state)
{
	(void)state;
	struct tj_err err = { 0 };
	int rc;
	/* threshold 0: always the best candidate, even for thread 300 */
	char p[128];
	snprintf(p, sizeof(p), "%s", model_path);
	struct tj_params ps = { 2, { "model", "threshold" }, { p, "0" } };
	void *st = NULL;
	rc = tj_correlator_classifier.open(&st, &ps, &err);
	if (rc < 0)
		fail_msg("%s", err.msg);
	struct sink k;
	const struct tj_message in[] = { msg(10, 1, 100, 1000, 9000), msg(22, 0, 300, 1600, 1700) };
	run_all(st, in, 2, &k);
	tj_correlator_classifier.close(st);
	assert_int_equal(k.n, 1);
	assert_int_equal(k.e[0].child.sock, 22);
	assert_true(k.e[0].has_parent);
	assert_int_equal(k.e[0].parent.sock, 10);
	ps.val[1] = "1.5";
	assert_true(tj_correlator_classifier.open(&st, &ps, &err) < 0);
	assert_non_null(strstr(err.msg, "threshold"));
	ps.val[1] = "-1";
	assert_true(tj_correlator_classifier.open(&st, &ps, &err) < 0);
	assert_non_null(strstr(err.msg, "threshold"));
	ps.val[1] = "abc";
	assert_true(tj_correlator_classifier.open(&st, &ps, &err) < 0);
	assert_non_null(strstr(err.msg, "threshold"));
}

static void test_refusals(void **state)
{
	(void)state;
	struct tj_err err = { 0 };
	int rc;
	open_with("explain", "2", &err, &rc);
	assert_true(rc < 0);
	assert_non_null(strstr(err.msg, "explain"));
	open_with("colour", "blue", &err, &rc);
	assert_true(rc < 0);
	assert_non_null(strstr(err.msg, "colour"));
	open_with("model", "/nonexistent/m.model", &err, &rc);
	assert_true(rc < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/m.model"));
	/* a model made for another feature list is refused by name */
	char other[64] = "/tmp/tj-classifier-other.XXXXXX";
	int fd = mkstemp(other);
	assert_true(fd >= 0);
	close(fd);
	write_model(other, "rank_v0");
	open_with("model", other, &err, &rc);
	assert_true(rc < 0);
	assert_non_null(strstr(err.msg, "rank_v0"));
	assert_non_null(strstr(err.msg, other));
	/* and one of another version */
	FILE *f = fopen(other, "w");
	fputs("tracejoin-model 9\nalgo classifier\nend\n", f);
	fclose(f);
	open_with("model", other, &err, &rc);
	assert_true(rc < 0);
	assert_non_null(strstr(err.msg, "version 9"));
	unlink(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers_as_the_model_says),
		cmocka_unit_test(test_threshold_param),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
