/* The file side of the replay: inputs, the merge of node logs, refusals,
 * damaged logs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "replay/replay.h"
#include "lib/evlog.h"
#include "test_util.h"

#define MS 1000000ull
#define HOUR (3600ull * 1000000000ull)

static char dir[64];

static int setup(void **state)
{
	return test_dir_make(dir, sizeof(dir), "test_replay_files");
}

static int teardown(void **state)
{
	return test_dir_remove(dir);
}

static struct tj_event ev(uint32_t node, uint64_t ts, unsigned type,
			  uint64_t sock, uint64_t off, int64_t bytes)
{
	return test_event(node, ts, type, sock, off, bytes, 100 + node, 10 + node);
}

static char *path_of(const char *name)
{
	static char p[4][128];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

/* A log of node `node` with a server exchange per base time given. */
static void write_log(const char *name, uint32_t node, uint32_t hdr_node,
		      uint64_t base, int exchanges, unsigned block_events)
{
	struct tj_evlog_header h;
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	memset(&h, 0, sizeof(h));
	h.node = hdr_node;
	strcpy(h.hostname, "test");
	h.capture_flags = TJ_CAP_SYNTHETIC;
	assert_int_equal(tj_evlog_create(&w, path_of(name), &h, TJ_EVLOG_FORCE, &err), 0);
	if (block_events)
		assert_int_equal(tj_evlog_set_block_events(w, block_events), 0);
	struct tj_event a = ev(node, base, TJ_EV_ACCEPT, 5, 0, 0);
	assert_int_equal(tj_evlog_write(w, &a, &err), 0);
	for (int i = 0; i < exchanges; i++) {
		struct tj_event in = ev(node, base + (2 * i + 1) * MS, TJ_EV_RECV, 5, 100u * i, 100);
		struct tj_event out = ev(node, base + (2 * i + 2) * MS, TJ_EV_SEND, 5, 10u * i, 10);
		assert_int_equal(tj_evlog_write(w, &in, &err), 0);
		assert_int_equal(tj_evlog_write(w, &out, &err), 0);
	}
	assert_int_equal(tj_evlog_close(w, &err), 0);
}

struct got {
	uint32_t node[256];
	uint64_t ts[256];
	size_t n;
};

static int collect(void *ctx, const struct tj_message *m)
{
	struct got *g = ctx;
	if (g->n < 256) {
		g->node[g->n] = m->key.node;
		g->ts[g->n] = m->ts_first;
	}
	g->n++;
	return 0;
}

/* Two nodes hours apart: all messages come, each node's in its order. */
static void test_merge_skewed_nodes(void **state)
{
	write_log("node-1.evlog", 1, 1, 1 * MS, 20, 7);
	write_log("node-2.evlog", 2, 2, 7 * HOUR, 30, 5);
	char *in[] = { dir };
	char **paths;
	size_t n;
	struct tj_err err = { 0 };
	assert_int_equal(tj_replay_expand_inputs(in, 1, &paths, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_non_null(strstr(paths[0], "node-1.evlog"));
	struct tj_replay *rp;
	assert_int_equal(tj_replay_open(&rp, paths, n, NULL, &err), 0);
	struct got g = { 0 };
	assert_int_equal(tj_replay_run(rp, collect, &g, &err), 0);
	assert_int_equal(g.n, 100);
	uint64_t last[3] = { 0, 0, 0 };
	size_t per[3] = { 0, 0, 0 };
	for (size_t i = 0; i < g.n; i++) {
		assert_true(g.node[i] == 1 || g.node[i] == 2);
		assert_true(g.ts[i] >= last[g.node[i]]);
		last[g.node[i]] = g.ts[i];
		per[g.node[i]]++;
	}
	assert_int_equal(per[1], 40);
	assert_int_equal(per[2], 60);
	const struct tj_replay_stats *st = tj_replay_stats(rp);
	assert_int_equal(st->events, 1 + 40 + 1 + 60);
	assert_int_equal(st->requests, 50);
	assert_int_equal(st->damaged_logs, 0);
	tj_replay_close(rp);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* A dataset folder gives its logs only, never labels or manifest. */
static void test_inputs(void **state)
{
	write_log("node-3.evlog", 3, 3, 0, 1, 0);
	FILE *f = fopen(path_of("labels.csv"), "w");
	fputs("child,parent,score\n", f);
	fclose(f);
	f = fopen(path_of("manifest.json"), "w");
	fputs("{}\n", f);
	fclose(f);
	char *in[] = { dir, path_of("node-3.evlog") };
	char **paths;
	size_t n;
	struct tj_err err = { 0 };
	assert_int_equal(tj_replay_expand_inputs(in, 2, &paths, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_null(strstr(paths[i], "labels"));
		assert_null(strstr(paths[i], "manifest"));
		free(paths[i]);
	}
	free(paths);

	char *missing[] = { path_of("nope.evlog") };
	assert_true(tj_replay_expand_inputs(missing, 1, &paths, &n, &err) < 0);
	assert_non_null(strstr(err.msg, "nope.evlog"));
	char empty[96];
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	assert_int_equal(mkdir(empty, 0700), 0);
	char *e[] = { empty };
	assert_true(tj_replay_expand_inputs(e, 1, &paths, &n, &err) < 0);
	assert_non_null(strstr(err.msg, "no node-*.evlog"));
	assert_true(tj_replay_expand_inputs(NULL, 0, &paths, &n, &err) < 0);
}

/* Refusals that name the files at fault. */
static void test_refusals(void **state)
{
	struct tj_err err = { 0 };
	struct tj_replay *rp;
	write_log("a.evlog", 4, 4, 0, 1, 0);
	write_log("b.evlog", 4, 4, 0, 1, 0);
	char *dup[] = { path_of("a.evlog"), path_of("b.evlog") };
	assert_true(tj_replay_open(&rp, dup, 2, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "a.evlog"));
	assert_non_null(strstr(err.msg, "b.evlog"));
	assert_non_null(strstr(err.msg, "node 4"));

	write_log("c.evlog", 5, 6, 0, 1, 0); /* events say 5, header 6 */
	char *mism[] = { path_of("c.evlog") };
	int rc = tj_replay_open(&rp, mism, 1, NULL, &err);
	if (rc == 0) {
		struct got g = { 0 };
		rc = tj_replay_run(rp, collect, &g, &err);
		tj_replay_close(rp);
	}
	assert_true(rc < 0);
	assert_non_null(strstr(err.msg, "c.evlog"));

	FILE *f = fopen(path_of("junk.evlog"), "w");
	fputs("this is not an evlog at all, just text\n", f);
	fclose(f);
	char *junk[] = { path_of("junk.evlog") };
	assert_true(tj_replay_open(&rp, junk, 1, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "junk.evlog"));
}

/* A log cut short is read as far as it goes and counted as damaged. */
static void test_damaged_log(void **state)
{
	write_log("node-7.evlog", 7, 7, 0, 200, 16);
	char *p = path_of("node-7.evlog");
	FILE *f = fopen(p, "r+");
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fclose(f);
	assert_int_equal(truncate(p, size / 2), 0);
	char *in[] = { p };
	struct tj_err err = { 0 };
	struct tj_replay *rp;
	assert_int_equal(tj_replay_open(&rp, in, 1, NULL, &err), 0);
	struct got g = { 0 };
	assert_int_equal(tj_replay_run(rp, collect, &g, &err), 0);
	const struct tj_replay_stats *st = tj_replay_stats(rp);
	assert_int_equal(st->damaged_logs, 1);
	assert_true(g.n > 0 && g.n < 400);
	tj_replay_close(rp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merge_skewed_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_log, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
