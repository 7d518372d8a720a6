/* The scorer on a small hand-drawn system with figures worked out by
 * hand (see the picture below): perfect, empty, all wrong and partly
 * right edge sets, a wrongly attached background call, no logs, pids,
 * cycles, and the inputs it must refuse. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "bench/score.h"
#include "replay/join.h"

/*  node 1 (front)          node 2 (back)           node 3 (db)
 *  A  = 1:100:in:0
 *    a1 = 1:10:out:0  ---> B1 = 2:200:in:0
 *                            b1 = 2:20:out:0  ---> C2 = 3:301:in:0
 *    a2 = 1:11:out:0  ---------------------------> C1 = 3:300:in:0
 *  A' = 1:101:in:0
 *    a3 = 1:12:out:0  ---> B2 = 2:201:in:0 (makes no call)
 *                          g  = 2:21:out:0 (background) -> C3 = 3:302:in:0
 *
 * 5 decisions, 4 with a parent.  Scored requests: A, A', B1, B2 (services
 * that call) and C1, C2, C3 (leaf).  Roots: A, A' (entry), g (background). */
static struct tj_msgkey K(uint32_t node, uint64_t sock, int dir)
{
	struct tj_msgkey k = { .node = node, .sock = sock, .offset = 0,
			       .dir = (uint8_t)dir };
	return k;
}
#define IN TJ_DIR_IN
#define OUT TJ_DIR_OUT
#define A K(1, 100, IN)
#define A2 K(1, 101, IN)
#define B1 K(2, 200, IN)
#define B2 K(2, 201, IN)
#define C1 K(3, 300, IN)
#define C2 K(3, 301, IN)
#define C3 K(3, 302, IN)
#define a1 K(1, 10, OUT)
#define a2 K(1, 11, OUT)
#define a3 K(1, 12, OUT)
#define b1 K(2, 20, OUT)
#define g K(2, 21, OUT)
static const struct tj_msgkey NOPARENT = { 0, 0, 0, 0 };
#define NP NOPARENT

static void add(struct tj_edge_set *s, struct tj_msgkey child,
		struct tj_msgkey parent)
{
	struct tj_edge e = { .child = child, .parent = parent, .score = 1.0 };
	e.has_parent = !(parent.node == 0 && parent.sock == 0);
	assert_int_equal(tj_edges_add(s, &e), 0);
}

static struct tj_edge_set truth(void)
{
	struct tj_edge_set s = { 0 };
	add(&s, a1, A);
	add(&s, a2, A);
	add(&s, b1, B1);
	add(&s, a3, A2);
	add(&s, g, NP);
	return s;
}

static struct tj_join *joins(void)
{
	struct tj_join *j;
	assert_int_equal(tj_join_new(&j, NULL), 0);
	struct tj_msgkey c[] = { a1, a2, b1, a3, g };
	struct tj_msgkey r[] = { B1, C1, C2, B2, C3 };
	for (int i = 0; i < 5; i++)
		assert_int_equal(tj_join_put(j, &c[i], &r[i]), 0);
	return j;
}

#define near(x, y) assert_true(fabs((x) - (y)) < 1e-9)

static const struct tj_score_service *svc(const struct tj_score *s,
					  uint32_t node, uint32_t pid)
{
	for (size_t i = 0; i < s->nservices; i++)
		if (s->services[i].node == node && s->services[i].pid == pid)
			return &s->services[i];
	fail_msg("no service node %u pid %u", node, pid);
	return NULL;
}

static void run(struct tj_score *s, struct tj_edge_set *edges, int with_join)
{
	struct tj_edge_set L = truth();
	struct tj_join *j = with_join ? joins() : NULL;
	struct tj_err err = { 0 };
	int rc = tj_score_compute(s, &L, edges, j, NULL, &err);
	if (rc)
		fail_msg("score: %s", err.msg);
	tj_join_free(j);
	tj_edges_free(&L);
	/* Whatever the edges, every call lies in one tree here. */
	if (with_join)
		assert_int_equal(s->unreached, 0);
}

static void test_perfect(void **state)
{
	struct tj_edge_set E = truth();
	struct tj_score s;
	run(&s, &E, 1);
	assert_int_equal(s.decisions, 5);
	assert_int_equal(s.right, 5);
	assert_int_equal(s.true_parent, 4);
	assert_int_equal(s.pred_parent, 4);
	near(s.precision, 1);
	near(s.recall, 1);
	near(s.f1, 1);
	near(s.accuracy, 1);
	assert_int_equal(s.requests, 4);
	near(s.service_accuracy, 1);
	assert_int_equal(s.entry_roots, 2);
	assert_int_equal(s.background_roots, 1);
	near(s.trace_accuracy, 1);
	assert_int_equal(s.calls_joined, 5);
	assert_int_equal(s.nservices, 3);
	assert_int_equal(svc(&s, 3, 0)->requests, 3);
	assert_int_equal(svc(&s, 3, 0)->calls, 0);
	tj_score_free(&s);
	tj_edges_free(&E);
}

static void test_empty(void **state)
{
	struct tj_edge_set E = { 0 };
	struct tj_score s;
	run(&s, &E, 1);
	assert_int_equal(s.right, 1); /* g: none = none */
	assert_int_equal(s.missing, 5);
	near(s.accuracy, 0.2);
	assert_true(isnan(s.precision));
	near(s.recall, 0);
	near(s.f1, 0);
	/* Right requests: only B2 (no calls, none predicted) of A A' B1 B2. */
	assert_int_equal(s.requests_right, 1);
	near(s.service_accuracy, 0.25);
	/* Only g's trace: predicted parentless, C3 right. */
	assert_int_equal(s.roots_right, 1);
	near(s.trace_accuracy, 1.0 / 3);
	tj_score_free(&s);
}

static void test_all_wrong(void **state)
{
	struct tj_edge_set E = { 0 };
	add(&E, a1, A2);
	add(&E, a2, NP);
	add(&E, b1, NP);
	add(&E, a3, A);
	add(&E, g, B1);
	struct tj_score s;
	run(&s, &E, 1);
	assert_int_equal(s.right, 0);
	assert_int_equal(s.pred_parent, 3);
	assert_int_equal(s.right_parent, 0);
	near(s.accuracy, 0);
	near(s.precision, 0);
	near(s.recall, 0);
	near(s.f1, 0);
	near(s.service_accuracy, 0.25); /* B2 still right */
	near(s.trace_accuracy, 0);
	assert_int_equal(svc(&s, 1, 0)->requests_right, 0);
	assert_int_equal(svc(&s, 2, 0)->requests_right, 1);
	tj_score_free(&s);
	tj_edges_free(&E);
}

static void test_partly_right(void **state)
{
	struct tj_edge_set E = { 0 };
	add(&E, a1, A);
	add(&E, a2, NP);            /* wrong: A misses a2 */
	add(&E, b1, B1);
	add(&E, a3, A2);
	add(&E, g, NP);
	add(&E, K(1, 99, OUT), A);  /* a child the labels do not know */
	struct tj_score s;
	run(&s, &E, 1);
	assert_int_equal(s.unknown, 1);
	assert_int_equal(s.right, 4);
	near(s.accuracy, 0.8);
	near(s.precision, 1.0);
	near(s.recall, 0.75);
	near(s.f1, 6.0 / 7);
	near(s.service_accuracy, 0.75);  /* A wrong; A', B1, B2 right */
	near(s.trace_accuracy, 2.0 / 3); /* A's tree wrong */
	const struct tj_score_service *n1 = svc(&s, 1, 0), *n2 = svc(&s, 2, 0);
	assert_int_equal(n1->calls, 3);
	assert_int_equal(n1->calls_right, 2);
	assert_int_equal(n1->requests, 2);
	assert_int_equal(n1->requests_right, 1);
	assert_int_equal(n2->calls, 2);
	assert_int_equal(n2->calls_right, 2);
	tj_score_free(&s);

	/* --strict refuses the unknown child, naming it. */
	struct tj_edge_set L = truth();
	struct tj_err err = { 0 };
	struct tj_score_opts o = { .strict = 1, .labels_name = "L.csv",
				   .edges_name = "E.csv" };
	assert_int_equal(tj_score_compute(&s, &L, &E, NULL, &o, &err),
			 -TJ_E_FORMAT);
	assert_string_equal(err.msg, "E.csv: edge #6: child 1:99:out:0 is not "
			    "in L.csv (1 such edge; --strict refuses them)");
	tj_edges_free(&L);
	tj_edges_free(&E);
}

/* A background call wrongly given a parent spoils two traces: its own,
 * and the one whose request now has an extra call.  Service and trace
 * figures move together. */
static void test_extra_call_spoils_tree(void **state)
{
	struct tj_edge_set E = truth();
	E.edges[4].has_parent = 1;
	E.edges[4].parent = B1;
	struct tj_score s;
	run(&s, &E, 1);
	near(s.accuracy, 0.8);
	near(s.precision, 0.8);
	near(s.recall, 1);
	near(s.f1, 8.0 / 9);
	near(s.service_accuracy, 0.75);  /* B1 has {b1, g}, truly {b1} */
	near(s.trace_accuracy, 1.0 / 3); /* only A' right */
	tj_score_free(&s);
	tj_edges_free(&E);
}

static void test_no_join_and_pids(void **state)
{
	struct tj_edge_set E = truth();
	struct tj_score s;
	run(&s, &E, 0);
	assert_int_equal(s.have_join, 0);
	assert_true(isnan(s.trace_accuracy));
	assert_int_equal(s.requests, 3); /* parents only: A, A', B1 */
	near(s.service_accuracy, 1);
	assert_int_equal(s.nservices, 2);
	tj_score_free(&s);

	/* Pids split node 2 into two services. */
	struct tj_edge_set L = truth();
	struct tj_join *j = joins();
	struct tj_msgkey p11[] = { A, A2, a1, a2, a3 }, p22[] = { B1, b1 },
			 p23[] = { B2, g };
	for (int i = 0; i < 5; i++)
		tj_join_put_pid(j, &p11[i], 11);
	for (int i = 0; i < 2; i++) {
		tj_join_put_pid(j, &p22[i], 22);
		tj_join_put_pid(j, &p23[i], 23);
	}
	struct tj_err err = { 0 };
	assert_int_equal(tj_score_compute(&s, &L, &E, j, NULL, &err), 0);
	assert_int_equal(s.nservices, 4);
	assert_int_equal(svc(&s, 1, 11)->calls, 3);
	assert_int_equal(svc(&s, 2, 22)->calls, 1);
	assert_int_equal(svc(&s, 2, 22)->requests, 1);
	assert_int_equal(svc(&s, 2, 23)->calls, 1);
	assert_int_equal(svc(&s, 2, 23)->requests, 1);
	assert_int_equal(svc(&s, 3, 0)->requests, 3);
	/* Output: table and JSON carry the figures. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	tj_score_print(f, &s);
	fclose(f);
	assert_non_null(strstr(buf, "node 2 pid 23"));
	assert_non_null(strstr(buf, "end-to-end accuracy 1.000 (3/3 roots"));
	free(buf);
	json_t *js = tj_score_json(&s);
	assert_non_null(js);
	assert_int_equal(json_integer_value(json_object_get(
		json_object_get(js, "end_to_end"), "roots")), 3);
	assert_int_equal(json_array_size(json_object_get(js, "services")), 4);
	json_decref(js);
	tj_score_free(&s);
	tj_join_free(j);
	tj_edges_free(&L);
	tj_edges_free(&E);
}

static void test_cycle_and_duplicates(void **state)
{
	/* c1 -> S1 on node 1, c2 -> S2 on node 2, and the join closes the
	 * loop: no root reaches them. */
	struct tj_edge_set L = { 0 }, E = { 0 };
	add(&L, K(1, 1, OUT), K(1, 5, IN));
	add(&L, K(2, 2, OUT), K(2, 6, IN));
	struct tj_join *j;
	tj_join_new(&j, NULL);
	struct tj_msgkey c1 = K(1, 1, OUT), c2 = K(2, 2, OUT), s1 = K(1, 5, IN),
			 s2 = K(2, 6, IN);
	tj_join_put(j, &c1, &s2);
	tj_join_put(j, &c2, &s1);
	struct tj_score s;
	struct tj_err err = { 0 };
	assert_int_equal(tj_score_compute(&s, &L, &E, j, NULL, &err), 0);
	assert_int_equal(s.roots, 0);
	assert_int_equal(s.unreached, 2);
	assert_true(isnan(s.trace_accuracy));
	tj_score_free(&s);
	tj_join_free(j);

	/* Duplicates, in memory and read from a file. */
	add(&E, K(1, 1, OUT), NP);
	add(&E, K(1, 1, OUT), K(1, 5, IN));
	assert_int_equal(tj_score_compute(&s, &L, &E, NULL, NULL, &err),
			 -TJ_E_FORMAT);
	assert_string_equal(err.msg, "edges: edge #2: child 1:1:out:0 appears "
			    "twice (edges #1 and #2)");
	assert_int_equal(tj_score_compute(&s, &E, &L, NULL, NULL, &err),
			 -TJ_E_FORMAT);
	assert_non_null(strstr(err.msg, "labels: edge #2"));
	E.lines[0] = 7;
	E.lines[1] = 9;
	assert_int_equal(tj_score_compute(&s, &L, &E, NULL, NULL, &err),
			 -TJ_E_FORMAT);
	assert_string_equal(err.msg, "edges:9: child 1:1:out:0 appears twice "
			    "(lines 7 and 9)");
	tj_edges_free(&L);
	tj_edges_free(&E);
}

static void test_no_labels(void **state)
{
	struct tj_edge_set L = { 0 }, E = truth();
	struct tj_score s;
	struct tj_err err = { 0 };
	assert_int_equal(tj_score_compute(&s, &L, &E, NULL, NULL, &err), 0);
	assert_int_equal(s.decisions, 0);
	assert_int_equal(s.unknown, 5);
	assert_true(isnan(s.accuracy) && isnan(s.f1) && isnan(s.precision));
	tj_score_free(&s);
	tj_edges_free(&E);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_perfect),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_all_wrong),
		cmocka_unit_test(test_partly_right),
		cmocka_unit_test(test_extra_call_spoils_tree),
		cmocka_unit_test(test_no_join_and_pids),
		cmocka_unit_test(test_cycle_and_duplicates),
		cmocka_unit_test(test_no_labels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
