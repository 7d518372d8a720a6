/* tracejoin gen under simulated capture loss: what was dropped is counted
 * in the footers and marked by TJ_EV_LOST events, and the labels name the
 * messages as the surviving events show them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <cmocka.h>
#include "datasets/gen/gen.h"
#include "test_gen_check.h"
#include "test_util.h"

static void run_lossy(double loss, double burst, int lossy_nodes)
{
	const struct gen_builtin *b = gen_builtin_find("lossy");
	assert_non_null(b);
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	assert_int_equal(gen_spec_parse(s, b->name, b->text, b->len, &err), 0);
	for (int i = 0; i < s->nnodes; i++) {
		s->nodes[i].loss = i < lossy_nodes ? loss : 0;
		s->nodes[i].burst = burst;
	}
	char dir[64];
	assert_int_equal(test_dir_make(dir, sizeof(dir), "tj-test-gen-lossy"), 0);
	struct gen_opts o = { .seed = 9, .rate = s->load[GEN_LOAD_HIGH], .requests = 1500,
			      .dir = dir, .force = 1 };
	struct gen_stats st;
	if (gen_run(s, &o, &st, &err) < 0)
		fail_msg("%s", err.msg);

	struct gdata d = { 0 };
	char pat[256];
	glob_t g;
	snprintf(pat, sizeof(pat), "%s/node-*.evlog", dir);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++)
		assert_int_equal(gdata_add_log(&d, g.gl_pathv[i], 1), 0);
	globfree(&g);
	gdata_sort(&d);
	struct tj_edge_set labels;
	snprintf(pat, sizeof(pat), "%s/labels.csv", dir);
	if (tj_edges_read(&labels, pat, &err) < 0)
		fail_msg("%s", err.msg);

	assert_true(st.lost > 0);
	assert_int_equal(d.footer_drops, st.lost);
	assert_int_equal(d.lost_marked, st.lost);
	assert_int_equal(d.order_errors, 0);
	/* the lost share is near the asked one (bursts make it noisy) */
	double share = (double)st.lost / (double)(st.lost + st.events);
	double want = loss * lossy_nodes / s->nnodes;
	if (share < want / 3 || share > want * 3)
		fail_msg("lost %.4f of events, asked for about %.4f", share, want);

	size_t labeled_client = 0;
	for (size_t i = 0; i < labels.n; i++) {
		const struct tj_edge *e = &labels.edges[i];
		char k[TJ_MSGKEY_STRLEN];
		const struct gmsg *c = gdata_find(&d, &e->child);
		/* requests of a socket whose connect was lost are not calls */
		if (!c || c->key.dir != TJ_DIR_OUT || c->role != 1)
			fail_msg("label child %s is not a request in the logs",
				 tj_msgkey_format(&e->child, k));
		labeled_client += c->role == 1;
		if (e->has_parent) {
			const struct gmsg *p = gdata_find(&d, &e->parent);
			if (!p || p->key.dir != TJ_DIR_IN || p->role == 1 ||
			    p->key.node != c->key.node)
				fail_msg("label parent %s is not a request on node %u",
					 tj_msgkey_format(&e->parent, k), c->key.node);
		}
	}
	size_t client_reqs = 0;
	for (size_t i = 0; i < d.nmsgs; i++)
		client_reqs += d.msgs[i].role == 1 && d.msgs[i].key.dir == TJ_DIR_OUT;
	assert_int_equal(labeled_client, client_reqs);
	/* most calls survive; with gaps one call may read as two messages.
	 * A lost connect hides every call of its socket, and a keepalive
	 * pool has few sockets, so the surviving share swings with which
	 * connects a burst hits: at 10% loss it runs from about 3/4 to all. */
	assert_int_equal(labeled_client, labels.n);
	assert_true(labels.n > st.calls * 6 / 10);
	assert_true(labels.n < st.calls * 12 / 10);
	tj_edges_free(&labels);
	gdata_free(&d);
	assert_int_equal(test_dir_remove(dir), 0);
	free(s);
}

static void test_builtin_loss(void **state)
{
	(void)state;
	run_lossy(0.02, 40, 2);
}

static void test_heavy_short_bursts(void **state)
{
	(void)state;
	run_lossy(0.1, 3, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_loss),
		cmocka_unit_test(test_heavy_short_bursts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
