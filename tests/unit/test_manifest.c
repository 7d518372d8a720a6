/* manifest.json: SHA-256 of every dataset file, event counts from the
 * logs' footers, sorted keys, the same bytes for the same inputs, and
 * refusals of what cannot be described (a missing folder, a cut log). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/manifest.h"
#include "lib/evlog.h"
#include "lib/version.h"
#include "test_util.h"

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void write_log(const char *dir, uint32_t node, int nevents, uint64_t drops)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/node-%u.evlog", dir, node);
	struct tj_evlog_header h = { .node = node, .capture_flags = TJ_CAP_SYNTHETIC };
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_create(&w, path, &h, TJ_EVLOG_FORCE, &err), 0);
	for (int i = 0; i < nevents; i++) {
		struct tj_event ev = { .ts_ns = 1000 + (uint64_t)i, .node = node, .sock = 5,
				       .type = TJ_EV_SEND, .bytes = 10, .offset = 10 * (uint64_t)i,
				       .fd = 3, .pid = 1, .tid = 1 };
		assert_int_equal(tj_evlog_write(w, &ev, &err), 0);
	}
	tj_evlog_add_drops(w, TJ_DROP_RINGBUF, drops);
	assert_int_equal(tj_evlog_close(w, &err), 0);
}

static char *make_dataset(void)
{
	char *dir = strdup("/tmp/tj-test-manifest.XXXXXX");
	assert_non_null(mkdtemp(dir));
	write_log(dir, 1, 100, 0);
	write_log(dir, 2, 7, 3);
	write_file(dir, "labels.csv", "abc");
	write_file(dir, "notes.txt", "not part of the dataset");
	return dir;
}

static void rm_dataset(char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

static json_t *write_and_load(const char *dir, char **text)
{
	struct tj_manifest *m = tj_manifest_new("gen");
	assert_non_null(m);
	assert_int_equal(tj_manifest_set(m, "seed", json_integer(42)), 0);
	assert_int_equal(tj_manifest_set(m, "scenario", json_string("x")), 0);
	json_object_set_new(tj_manifest_params(m), "rate", json_real(2.5));
	struct tj_err err = { 0 };
	if (tj_manifest_write(m, dir, &err) < 0)
		fail_msg("%s", err.msg);
	tj_manifest_free(m);
	char path[512];
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	*text = test_read_file(path, NULL);
	json_error_t je;
	json_t *j = json_loads(*text, 0, &je);
	assert_non_null(j);
	return j;
}

static void test_contents(void **state)
{
	(void)state;
	char *dir = make_dataset();
	char *text;
	json_t *j = write_and_load(dir, &text);
	assert_string_equal(json_string_value(json_object_get(j, "generator")), "gen");
	assert_string_equal(json_string_value(json_object_get(j, "tool_version")), tj_version);
	assert_int_equal(json_integer_value(json_object_get(j, "seed")), 42);
	assert_true(json_real_value(json_object_get(json_object_get(j, "parameters"), "rate")) == 2.5);
	assert_int_equal(json_integer_value(json_object_get(j, "events")), 107);
	json_t *files = json_object_get(j, "files");
	assert_int_equal(json_object_size(files), 3); /* notes.txt is not hashed */
	json_t *l = json_object_get(files, "labels.csv");
	/* SHA-256("abc"), FIPS 180-2's example */
	assert_string_equal(json_string_value(json_object_get(l, "sha256")),
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(json_integer_value(json_object_get(l, "bytes")), 3);
	json_t *n2 = json_object_get(files, "node-2.evlog");
	assert_int_equal(json_integer_value(json_object_get(n2, "events")), 7);
	assert_int_equal(json_integer_value(json_object_get(n2, "dropped")), 3);
	assert_int_equal(json_integer_value(json_object_get(n2, "node")), 2);
	/* sorted keys: "events" before "files" before "generator" */
	char *e = strstr(text, "\"events\""), *f = strstr(text, "\"files\""),
	     *g = strstr(text, "\"generator\"");
	assert_true(e && f && g && e < f && f < g);
	assert_true(text[strlen(text) - 1] == '\n');
	json_decref(j);
	free(text);
	rm_dataset(dir);
}

static void test_same_bytes(void **state)
{
	(void)state;
	char *a = make_dataset();
	char *ta, *tb;
	json_t *ja = write_and_load(a, &ta);
	sleep(1); /* no clock in it: a second later, the same bytes */
	json_t *jb = write_and_load(a, &tb);
	assert_string_equal(ta, tb);
	json_decref(ja);
	json_decref(jb);
	free(ta);
	free(tb);
	rm_dataset(a);
}

static void test_refusals(void **state)
{
	(void)state;
	struct tj_err err = { 0 };
	struct tj_manifest *m = tj_manifest_new("gen");
	assert_true(tj_manifest_write(m, "/nonexistent/tj-dir", &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/tj-dir"));
	/* a log cut short cannot be counted: refused, by name */
	char *dir = make_dataset();
	char path[512];
	snprintf(path, sizeof(path), "%s/node-1.evlog", dir);
	assert_int_equal(truncate(path, 100), 0);
	memset(&err, 0, sizeof(err));
	assert_true(tj_manifest_write(m, dir, &err) < 0);
	assert_non_null(strstr(err.msg, "node-1.evlog"));
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	assert_int_equal(access(path, F_OK), -1);
	tj_manifest_free(m);
	rm_dataset(dir);
	char hex[65];
	assert_true(tj_sha256_file("/nonexistent/file", hex, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contents),
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
