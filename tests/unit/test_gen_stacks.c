/* gen --stacks: every message of a simulated service carries a call
 * site, the replay computes one id per site name (service accept,
 * endpoint handler, endpoint call step) that is the same in every node,
 * process and seed, distinct names get distinct ids, and without
 * --stacks the logs carry no stacks at all. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "datasets/gen/gen.h"
#include "lib/evlog.h"
#include "lib/stacks.h"
#include "replay/replay.h"
#include "test_util.h"

#define MAXN 8
#define MAXSITES 256

/* site name -> call-site id, over every run of a test */
struct sites {
	char name[MAXSITES][200];
	uint64_t id[MAXSITES];
	int n;
	uint64_t messages, with_site, requests_call, requests_handle;
	struct tj_stacks st[MAXN]; /* by node id (1..) */
	int has_stacks;
};

static void gen_into(const char *scenario, uint64_t seed, int stacks, const char *dir)
{
	const struct gen_builtin *b = gen_builtin_find(scenario);
	assert_non_null(b);
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	assert_int_equal(gen_spec_parse(s, b->name, b->text, b->len, &err), 0);
	struct gen_opts o = { .seed = seed, .rate = s->load[GEN_LOAD_MEDIUM], .requests = 150,
			      .dir = dir, .force = 1, .options = "test", .stacks = stacks };
	struct gen_stats gs;
	if (gen_run(s, &o, &gs, &err) < 0)
		fail_msg("gen %s: %s", scenario, err.msg);
	free(s);
}

static int on_msg(void *ctx, const struct tj_message *m)
{
	struct sites *x = ctx;
	x->messages++;
	if (!x->has_stacks) {
		assert_int_equal(m->callsite, 0);
		assert_int_equal(m->stack_id, 0);
		return 0;
	}
	assert_true(m->key.node < MAXN);
	const struct tj_stack *k = tj_stacks_find(&x->st[m->key.node], m->stack_id);
	assert_non_null(k);
	assert_int_equal(k->nuser, 1);
	const struct tj_map *mp = tj_stacks_map_of(&x->st[m->key.node], m->pid, k->ips[0]);
	assert_non_null(mp);
	assert_non_null(strstr(mp->path, "[gen:svc_"));
	assert_true(m->callsite != 0);
	x->with_site++;
	if (m->is_request && m->role == TJ_ROLE_CLIENT) {
		assert_non_null(strstr(mp->path, "_call"));
		x->requests_call++;
	}
	if (m->is_request && m->role == TJ_ROLE_SERVER && m->bytes > 0) {
		assert_non_null(strstr(mp->path, "_handle]"));
		x->requests_handle++;
	}
	for (int i = 0; i < x->n; i++) {
		if (!strcmp(x->name[i], mp->path)) {
			if (x->id[i] != m->callsite)
				fail_msg("%s: call site %llx, earlier %llx", mp->path,
					 (unsigned long long)m->callsite,
					 (unsigned long long)x->id[i]);
			return 0;
		}
		if (x->id[i] == m->callsite)
			fail_msg("%s and %s share call site %llx", mp->path, x->name[i],
				 (unsigned long long)m->callsite);
	}
	assert_true(x->n < MAXSITES);
	snprintf(x->name[x->n], sizeof(x->name[0]), "%s", mp->path);
	x->id[x->n++] = m->callsite;
	return 0;
}

static void replay_dir(const char *dir, int nnodes, struct sites *x, int stacks)
{
	char *paths[MAXN] = { 0 };
	struct tj_err err = { 0 };
	x->has_stacks = stacks;
	for (int i = 0; i < nnodes; i++) {
		assert_int_equal(asprintf(&paths[i], "%s/node-%d.evlog", dir, i + 1) > 0, 1);
		tj_stacks_init(&x->st[i + 1]);
		int rc = tj_stacks_read(paths[i], &x->st[i + 1], &err);
		if (rc < 0)
			fail_msg("%s: %s", paths[i], err.msg);
		assert_int_equal(rc, stacks ? 1 : 0);
	}
	struct tj_replay *rp;
	assert_int_equal(tj_replay_open(&rp, paths, (size_t)nnodes, NULL, &err), 0);
	if (tj_replay_run(rp, on_msg, x, &err) < 0)
		fail_msg("replay %s: %s", dir, err.msg);
	tj_replay_close(rp);
	for (int i = 0; i < nnodes; i++) {
		tj_stacks_free(&x->st[i + 1]);
		free(paths[i]);
	}
}

static int count_nodes(const char *scenario)
{
	const struct gen_builtin *b = gen_builtin_find(scenario);
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	assert_int_equal(gen_spec_parse(s, b->name, b->text, b->len, &err), 0);
	int n = s->nnodes;
	free(s);
	return n;
}

static int has_site(const struct sites *x, const char *name)
{
	for (int i = 0; i < x->n; i++)
		if (!strcmp(x->name[i], name))
			return 1;
	return 0;
}

static void test_sites_stable(void **state)
{
	(void)state;
	static const char *const scen[] = { "threaded", "fanout" };
	struct sites *x = calloc(1, sizeof(*x));
	char dir[64];
	assert_int_equal(test_dir_make(dir, sizeof(dir), "tj-test-gen-stacks"), 0);
	/* two seeds of each: ids match across runs, nodes and processes */
	for (size_t k = 0; k < 2; k++) {
		int nn = count_nodes(scen[k]);
		assert_true(nn < MAXN);
		for (uint64_t seed = 1; seed <= 2; seed++) {
			gen_into(scen[k], seed, 1, dir);
			replay_dir(dir, nn, x, 1);
		}
	}
	assert_true(x->messages > 1000);
	assert_int_equal(x->with_site, x->messages);
	assert_true(x->requests_call > 100 && x->requests_handle > 100);
	assert_true(has_site(x, "[gen:svc_web_ep_page_call2_db]"));
	assert_true(has_site(x, "[gen:svc_web_ep_page_handle]"));
	/* without --stacks: no stacks block, no stack ids, no call sites */
	struct sites *y = calloc(1, sizeof(*y));
	gen_into("threaded", 1, 0, dir);
	replay_dir(dir, count_nodes("threaded"), y, 0);
	assert_true(y->messages > 100);
	free(y);
	free(x);
	assert_int_equal(test_dir_remove(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sites_stable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
