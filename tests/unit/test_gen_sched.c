/* tracejoin gen's realism options (datasets/gen/scenarios/README.md): a
 * node's scheduling latency (`wake`, `wake-tail`, `wake-tail-share`),
 * nginx-style pools that cap idle connections only (`pool K idle-cap`),
 * parallel calls whose first one the request's own thread makes
 * (`parallel inline-first`), and event loops that write a waiting call
 * from the handler that read the previous reply (`chained`).  Each is parsed, refused when malformed, and
 * shown to change what the logs hold in the way it promises; specs with
 * them are still deterministic. */
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
#include "test_gen_util.h"

static void generate(const struct gen_spec *s, double rate, uint64_t roots,
		     uint64_t seed, const char *dir)
{
	struct gen_opts o = { .seed = seed, .rate = rate, .requests = roots,
			      .dir = dir, .force = 1, .options = "test" };
	struct gen_stats st;
	struct tj_err err = { 0 };
	if (gen_run(s, &o, &st, &err) < 0)
		fail_msg("gen %s: %s", s->name, err.msg);
}

static void load(const char *dir, struct gdata *d, struct tj_edge_set *labels)
{
	char pat[512];
	glob_t g;
	memset(d, 0, sizeof(*d));
	snprintf(pat, sizeof(pat), "%s/node-*.evlog", dir);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++)
		assert_int_equal(gdata_add_log(d, g.gl_pathv[i], 0), 0);
	globfree(&g);
	gdata_sort(d);
	snprintf(pat, sizeof(pat), "%s/labels.csv", dir);
	struct tj_err err = { 0 };
	if (tj_edges_read(labels, pat, &err) < 0)
		fail_msg("%s", err.msg);
}

/* ---- parsing ---- */

#define TWO "node 1\nnode 2\nservice a node 1 port 80\nservice b node 2 port 81\n"
#define EPS "endpoint b x\n  work 100us\nend\nendpoint a x\n  call b\nend\nentry a\n"

static void test_parse(void **state)
{
	(void)state;
	struct gen_spec *s = parse_ok(
		"node 1 wake exp(50us) wake-tail pareto(1ms,1.5) wake-tail-share 0.05\n"
		"node 2 wake-tail uniform(1ms,2ms)\n"
		"node 3\n"
		"service a node 1 port 80\nservice b node 2 port 81\nservice c node 3 port 82\n"
		"conn a b pool 4 idle-cap idle 2s\n"
		"conn a c pool 2 idle 1s idle-cap chained\n"
		"conn b c shared chained\n"
		"endpoint b x\nend\nendpoint c x\nend\n"
		"endpoint a x\n  parallel inline-first\n    call b\n    call c\n  end\n"
		"  parallel\n    call b\n    call c\n  end\nend\nentry a\n");
	assert_true(s->nodes[0].has_wake);
	assert_int_equal(s->nodes[0].wake.kind, GD_EXP);
	assert_true(s->nodes[0].wake.a == 50e3);
	assert_int_equal(s->nodes[0].wake_tail.kind, GD_PARETO);
	assert_true(s->nodes[0].wake_tail_p == 0.05);
	assert_true(s->nodes[1].has_wake);
	assert_true(s->nodes[1].wake_tail_p == 0.02); /* the default share */
	assert_int_equal(s->nodes[1].wake.kind, GD_CONST);
	assert_true(s->nodes[1].wake.a == 0);
	assert_false(s->nodes[2].has_wake);
	const struct gen_policy_spec *ab = gen_spec_policy(s, 0, 1), *ac = gen_spec_policy(s, 0, 2);
	assert_int_equal(ab->policy, GP_POOL);
	assert_int_equal(ab->k, 4);
	assert_true(ab->idle_cap);
	assert_true(ab->idle_ns == 2e9);
	assert_true(ac->idle_cap);
	assert_true(ac->idle_ns == 1e9);
	assert_false(ab->chained);
	assert_true(ac->chained);
	assert_true(gen_spec_policy(s, 1, 2)->chained);
	assert_int_equal(gen_spec_policy(s, 1, 2)->policy, GP_SHARED);
	int npar = 0;
	for (int i = 0; i < s->nsteps; i++) {
		if (s->steps[i].kind != GS_PARALLEL)
			continue;
		assert_int_equal(s->steps[i].inline_first, npar == 0);
		npar++;
	}
	assert_int_equal(npar, 2);
	free(s);
}

static void test_refused(void **state)
{
	(void)state;
	refused("node 1 wake-tail-share 0.1\n", "t.scn:1: ", "without 'wake-tail'");
	refused("node 1 wake 200ms\n", "t.scn:1: ", "mean above 100ms");
	refused("node 1 wake exp(5)\n", "t.scn:1: ", "wake");
	refused("node 1 wake-tail pareto(1ms,0.5)\n", "t.scn:1: ", "wake-tail");
	refused("node 1 wake-tail 1ms wake-tail-share 1.5\n", "t.scn:1: ", "wake-tail-share");
	refused("node 1 wake\n", "t.scn:1: ", "needs a value");
	refused(TWO "conn a b pool 2 idle-cap idle-cap\n", "t.scn:5: ", "given twice");
	refused(TWO "conn a b new idle-cap\n", "t.scn:5: ", "idle-cap");
	refused(TWO "conn a b new chained\n", "t.scn:5: ", "chained");
	refused(TWO "conn a b pool 2 chained chained\n", "t.scn:5: ", "given twice");
	refused(TWO "conn a b shared chained chained\n", "t.scn:5: ", "chained");
	refused(TWO "conn a b shared idle-cap\n", "t.scn:5: ", "idle-cap");
	refused(TWO "endpoint b x\nend\nentry b conn keepalive 2 idle-cap\n", "t.scn:7: ", "idle-cap");
	refused(TWO "endpoint b x\nend\nendpoint a x\n  parallel first\n    call b\n  end\nend\n",
		"t.scn:8: ", "inline-first");
	refused(TWO "endpoint b x\nend\nendpoint a x\n  parallel inline-first x\n    call b\n  end\nend\n",
		"t.scn:8: ", "inline-first");
}

/* ---- effects ---- */

/* Gaps (ns) from each call's parent request's first byte to the call's
 * first byte, sorted. */
static size_t call_gaps(const char *dir, uint64_t **out)
{
	struct gdata d;
	struct tj_edge_set labels;
	load(dir, &d, &labels);
	uint64_t *g = malloc((labels.n + 1) * sizeof(*g));
	size_t n = 0;
	for (size_t i = 0; i < labels.n; i++) {
		const struct tj_edge *e = &labels.edges[i];
		if (!e->has_parent)
			continue;
		const struct gmsg *c = gdata_find(&d, &e->child), *p = gdata_find(&d, &e->parent);
		assert_non_null(c);
		assert_non_null(p);
		assert_true(c->ts >= p->ts);
		g[n++] = c->ts - p->ts;
	}
	for (size_t i = 1; i < n; i++) /* insertion sort: a few hundred */
		for (size_t j = i; j > 0 && g[j - 1] > g[j]; j--) {
			uint64_t t = g[j];
			g[j] = g[j - 1];
			g[j - 1] = t;
		}
	tj_edges_free(&labels);
	gdata_free(&d);
	*out = g;
	return n;
}

static const char wake_spec[] =
	"node 1 %s\nnode 2\n"
	"service a node 1 port 80\nservice b node 2 port 81\n"
	"endpoint b x\n  work 100us\nend\n"
	"endpoint a x\n  work 200us\n  call b\nend\nentry a\n";

/* The wake-up latency moves the gap's body by about its mean and puts a
 * tail of the tail distribution's size at the share given. */
static void test_wake_effect(void **state)
{
	(void)state;
	uint64_t q[2][3]; /* without, with: p10, p50, p99 */
	for (int with = 0; with < 2; with++) {
		char text[1024];
		snprintf(text, sizeof(text), wake_spec,
			 with ? "wake const(300us) wake-tail uniform(5ms,6ms) wake-tail-share 0.1" : "");
		struct gen_spec *s = parse_ok(text);
		char *dir = tmpdir();
		generate(s, 50, 400, 4, dir);
		uint64_t *g;
		size_t n = call_gaps(dir, &g);
		assert_int_equal(n, 400);
		q[with][0] = g[n / 10];
		q[with][1] = g[n / 2];
		q[with][2] = g[n * 99 / 100];
		free(g);
		rmdataset(dir);
		free(s);
	}
	if (getenv("TJ_TEST_VERBOSE"))
		fprintf(stderr, "gaps p10/p50/p99 without %llu/%llu/%llu with %llu/%llu/%llu ns\n",
			(unsigned long long)q[0][0], (unsigned long long)q[0][1], (unsigned long long)q[0][2],
			(unsigned long long)q[1][0], (unsigned long long)q[1][1], (unsigned long long)q[1][2]);
	/* without: work 200us, a wake-up or two of tens of us, a connect; no tail */
	if (q[0][2] > 1500000)
		fail_msg("without wake, p99 gap %llu ns", (unsigned long long)q[0][2]);
	/* with: the work's end pays 300us (the request's read was woken
	 * before its first byte shows), or 5-6ms one time in ten */
	if (q[1][0] < q[0][0] + 250000)
		fail_msg("with wake, p10 gap %llu ns vs %llu without", (unsigned long long)q[1][0],
			 (unsigned long long)q[0][0]);
	if (q[1][2] < 5000000)
		fail_msg("with wake-tail, p99 gap %llu ns: no tail", (unsigned long long)q[1][2]);
	if (q[1][1] > 2000000)
		fail_msg("with wake, median gap %llu ns: the tail is not a tail",
			 (unsigned long long)q[1][1]);
}

/* Connections a's node opens to b, and the most open at once. */
static void pool_connects(const char *policy, int *connects, int *most_open)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "node 1\nnode 2\n"
		 "service a node 1 port 80 model async\nservice b node 2 port 81\n"
		 "conn a b %s\n"
		 "endpoint b x\n  work 2ms\nend\n"
		 "endpoint a x\n  call b\nend\nentry a\n", policy);
	struct gen_spec *s = parse_ok(text);
	char *dir = tmpdir();
	generate(s, 1500, 400, 6, dir);
	char path[600];
	snprintf(path, sizeof(path), "%s/node-1.evlog", dir);
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_open(&r, path, &err), 0);
	const struct tj_event *ev;
	int open = 0;
	*connects = *most_open = 0;
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if (ev->rport != 81)
			continue;
		if (ev->type == TJ_EV_CONNECT) {
			++*connects;
			if (++open > *most_open)
				*most_open = open;
		} else if (ev->type == TJ_EV_CLOSE) {
			open--;
		}
	}
	tj_evlog_close_reader(r);
	assert_int_equal(open, 0); /* every connection closed by the end */
	/* connections come and go: every label still names messages the
	 * logs hold, a client's call under a server's request */
	struct gdata d;
	struct tj_edge_set labels;
	load(dir, &d, &labels);
	assert_int_equal(labels.n, 400); /* a->b calls; the roots come from outside */
	for (size_t i = 0; i < labels.n; i++) {
		const struct tj_edge *e = &labels.edges[i];
		const struct gmsg *cm = gdata_find(&d, &e->child);
		assert_non_null(cm);
		assert_int_equal(cm->role, 1);
		if (e->has_parent) {
			const struct gmsg *pm = gdata_find(&d, &e->parent);
			assert_non_null(pm);
			assert_int_equal(pm->role, 2);
		}
	}
	tj_edges_free(&labels);
	gdata_free(&d);
	rmdataset(dir);
	free(s);
}

/* pool 2 makes callers wait for one of 2 connections; pool 2 idle-cap
 * never waits (at 1500/s and 2ms a call, ~3 are busy at once) and closes
 * what it cannot keep idle, so it opens more than it keeps. */
static void test_idle_cap_effect(void **state)
{
	(void)state;
	int c, most;
	pool_connects("pool 2", &c, &most);
	assert_int_equal(c, 2);
	assert_int_equal(most, 2);
	pool_connects("pool 2 idle-cap", &c, &most);
	if (most <= 2 || c <= most)
		fail_msg("pool 2 idle-cap: %d connects, %d open at most", c, most);
}

/* Share of calls made by the thread that read their parent request. */
static double same_thread_share(const char *par)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "node 1\nnode 2\nnode 3\n"
		 "service a node 1 port 80 model thread\n"
		 "service b node 2 port 81\nservice c node 3 port 82\n"
		 "endpoint b x\n  work 100us\nend\nendpoint c x\n  work 100us\nend\n"
		 "endpoint a x\n  work 50us\n  %s\n    call b\n    call c\n  end\nend\nentry a\n",
		 par);
	struct gen_spec *s = parse_ok(text);
	char *dir = tmpdir();
	generate(s, 100, 300, 8, dir);
	struct gdata d;
	struct tj_edge_set labels;
	load(dir, &d, &labels);
	size_t same = 0, n = 0;
	for (size_t i = 0; i < labels.n; i++) {
		const struct tj_edge *e = &labels.edges[i];
		if (!e->has_parent)
			continue;
		const struct gmsg *c = gdata_find(&d, &e->child), *p = gdata_find(&d, &e->parent);
		assert_non_null(c);
		assert_non_null(p);
		n++;
		same += c->tid == p->tid;
	}
	assert_int_equal(n, 600);
	tj_edges_free(&labels);
	gdata_free(&d);
	rmdataset(dir);
	free(s);
	return (double)same / (double)n;
}

/* Thread model: parallel calls all go to the executor; with inline-first
 * the request's thread makes exactly one of the two. */
static void test_inline_first_effect(void **state)
{
	(void)state;
	double plain = same_thread_share("parallel"), inl = same_thread_share("parallel inline-first");
	if (plain != 0)
		fail_msg("parallel: %.3f of calls on the request's thread, want 0", plain);
	if (inl != 0.5)
		fail_msg("parallel inline-first: %.3f of calls on the request's thread, want 0.5", inl);
}

/* Share of a's calls to b (port 81) written within 100us of the last read
 * of a reply on the same connection: calls that waited for it and were
 * written by the handler that read the reply. */
static double chained_share(const char *policy)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "node 1\nnode 2\n"
		 "service a node 1 port 80 model async\nservice b node 2 port 81 model async\n"
		 "conn a b %s\n"
		 "endpoint b x\n  work const(1ms)\nend\n"
		 "endpoint a x\n  call b\n  work const(300us)\nend\nentry a\n", policy);
	struct gen_spec *s = parse_ok(text);
	char *dir = tmpdir();
	generate(s, 1200, 300, 10, dir); /* more than the one connection carries */
	char path[600];
	snprintf(path, sizeof(path), "%s/node-1.evlog", dir);
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_open(&r, path, &err), 0);
	const struct tj_event *ev;
	uint64_t last_recv = 0;
	int prev_recv = 0, calls = 0, chained = 0;
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if (ev->rport != 81)
			continue;
		if (ev->type == TJ_EV_RECV && ev->bytes > 0) {
			last_recv = ev->ts_ns;
			prev_recv = 1;
		} else if (ev->type == TJ_EV_SEND) {
			if (prev_recv) { /* the first write of a request */
				calls++;
				chained += ev->ts_ns - last_recv < 100000;
			}
			prev_recv = 0;
		}
	}
	tj_evlog_close_reader(r);
	rmdataset(dir);
	free(s);
	assert_true(calls > 250);
	return (double)chained / calls;
}

/* Saturated shared connection from an event loop: plain, a waiting call
 * is a task queued behind the reply's own request (300us of work);
 * chained, the loop writes it as soon as it has read the reply. */
static void test_chained_effect(void **state)
{
	(void)state;
	double plain = chained_share("shared"), ch = chained_share("shared chained");
	double pool = chained_share("pool 1 chained");
	if (plain > 0.05 || ch < 0.9 || pool < 0.9)
		fail_msg("calls written right after a reply: shared %.3f, shared chained %.3f, "
			 "pool 1 chained %.3f", plain, ch, pool);
}

/* Every new option at once: the same spec and seed give the same bytes. */
static void test_deterministic(void **state)
{
	(void)state;
	struct gen_spec *s = parse_ok(
		"node 1 wake lognormal(80us,0.6) wake-tail pareto(1ms,1.5) wake-tail-share 0.05\n"
		"node 2 wake exp(40us)\nnode 3\n"
		"service a node 1 port 80\nservice b node 2 port 81 model async\n"
		"service c node 3 port 82\n"
		"conn a b pool 2 idle-cap\nconn b c pool 1 idle-cap idle 5ms chained\n"
		"endpoint c x\n  work exp(200us)\nend\n"
		"endpoint b x\n  call c\nend\n"
		"endpoint a x\n  parallel inline-first\n    call b\n    call c\n  end\nend\nentry a\n");
	char *a = tmpdir(), *b = tmpdir();
	generate(s, 800, 300, 13, a);
	generate(s, 800, 300, 13, b);
	assert_true(same_file(a, b, "labels.csv"));
	assert_true(same_file(a, b, "node-1.evlog"));
	assert_true(same_file(a, b, "node-2.evlog"));
	assert_true(same_file(a, b, "node-3.evlog"));
	rmdataset(a);
	rmdataset(b);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_wake_effect),
		cmocka_unit_test(test_idle_cap_effect),
		cmocka_unit_test(test_inline_first_effect),
		cmocka_unit_test(test_chained_effect),
		cmocka_unit_test(test_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
