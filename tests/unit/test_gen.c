/* tracejoin gen: labels agree with the logs for every built-in scenario,
 * an oracle that knows the thread model solves `threaded` exactly (and
 * fails on hand-off, so it is no tautology), runs are deterministic, and
 * the spec parser refuses bad specs with file, line and reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <unistd.h>
#include <cmocka.h>
#include "datasets/gen/gen.h"
#include "replay/replay.h"
#include "test_gen_check.h"
#include "test_gen_util.h"

static struct gen_spec *builtin(const char *name)
{
	const struct gen_builtin *b = gen_builtin_find(name);
	assert_non_null(b);
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	if (gen_spec_parse(s, b->name, b->text, b->len, &err) < 0)
		fail_msg("built-in %s: %s", name, err.msg);
	return s;
}

static void generate(const struct gen_spec *s, double rate, uint64_t roots,
		     uint64_t seed, const char *dir, struct gen_stats *st)
{
	struct gen_opts o = { .seed = seed, .rate = rate, .requests = roots,
			      .dir = dir, .force = 1, .options = "test" };
	struct tj_err err = { 0 };
	if (gen_run(s, &o, st, &err) < 0)
		fail_msg("gen %s: %s", s->name, err.msg);
}

static void load_dataset(const char *dir, struct gdata *d, struct tj_edge_set *labels,
			 int lossy)
{
	char pat[512];
	glob_t g;
	memset(d, 0, sizeof(*d));
	snprintf(pat, sizeof(pat), "%s/node-*.evlog", dir);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++)
		assert_int_equal(gdata_add_log(d, g.gl_pathv[i], lossy), 0);
	globfree(&g);
	gdata_sort(d);
	snprintf(pat, sizeof(pat), "%s/labels.csv", dir);
	struct tj_err err = { 0 };
	if (tj_edges_read(labels, pat, &err) < 0)
		fail_msg("%s", err.msg);
}

/* client address and port, server address and port */
static uint64_t tuple_hash(const uint8_t *ca, uint16_t cp, const uint8_t *sa, uint16_t sp)
{
	uint64_t h = (uint64_t)cp << 16 | sp;
	for (int i = 0; i < 16; i += 8) {
		uint64_t a, b;
		memcpy(&a, ca + i, 8);
		memcpy(&b, sa + i, 8);
		h = tj_hash64(h ^ tj_hash64(a ^ tj_hash64(b)));
	}
	return h;
}

/* The dataset promises of DESIGN.md, checked from the logs. */
/* A client socket to a node outside the captured set ('captured no') has
 * no server side in any log. */
static int to_uncaptured(const struct gen_spec *spec, const uint8_t *raddr)
{
	for (int i = 0; spec && i < spec->nnodes; i++)
		if (spec->nodes[i].uncaptured && !memcmp(spec->nodes[i].addr, raddr, 16))
			return 1;
	return 0;
}

static void check_dataset(const char *name, const char *dir, const struct gen_stats *st,
			  const struct gen_spec *spec)
{
	struct gdata d;
	struct tj_edge_set labels;
	load_dataset(dir, &d, &labels, 0);
	if (d.order_errors || d.offset_errors || d.unknown_sock)
		fail_msg("%s: %llu time inversions, %llu offset breaks, %llu unknown sockets", name,
			 (unsigned long long)d.order_errors, (unsigned long long)d.offset_errors,
			 (unsigned long long)d.unknown_sock);
	assert_int_equal(d.events, st->events);
	assert_int_equal(d.lost_marked, 0);
	/* every label names a client request, its parent a server request
	 * on the same node */
	for (size_t i = 0; i < labels.n; i++) {
		const struct tj_edge *e = &labels.edges[i];
		const struct gmsg *c = gdata_find(&d, &e->child);
		char k[TJ_MSGKEY_STRLEN];
		if (!c || c->role != 1 || c->key.dir != TJ_DIR_OUT)
			fail_msg("%s: label child %s is no client request in the logs", name,
				 tj_msgkey_format(&e->child, k));
		if (e->has_parent) {
			const struct gmsg *p = gdata_find(&d, &e->parent);
			if (!p || p->role != 2 || p->key.dir != TJ_DIR_IN ||
			    p->key.node != c->key.node || p->ts > c->ts)
				fail_msg("%s: label parent %s is no earlier server request on node %u",
					 name, tj_msgkey_format(&e->parent, k), c->key.node);
		}
	}
	/* every client request is labeled (the reader refuses duplicates) */
	size_t client_reqs = 0;
	for (size_t i = 0; i < d.nmsgs; i++)
		if (d.msgs[i].role == 1 && d.msgs[i].key.dir == TJ_DIR_OUT)
			client_reqs++;
	assert_int_equal(client_reqs, labels.n);
	assert_int_equal(labels.n, st->calls);
	assert_int_equal(st->labels, st->calls);
	/* the cross-node join: each client socket has its server socket with
	 * the mirrored 4-tuple, and the bytes agree both ways */
	struct tj_u64map tuples;
	tj_u64map_init(&tuples);
	for (size_t i = 0; i < d.nsocks; i++) {
		const struct gsock *s = &d.socks[i];
		if (s->role != 2)
			continue;
		uint64_t h = tuple_hash(s->raddr, s->rport, s->laddr, s->lport);
		/* a 4-tuple may come back after the ports wrap: count them */
		int added;
		uint64_t *v = tj_u64map_upsert(&tuples, h, &added);
		(*v)++;
		(void)i;
	}
	for (size_t i = 0; i < d.nsocks; i++) {
		const struct gsock *s = &d.socks[i];
		if (s->role != 1 || to_uncaptured(spec, s->raddr))
			continue;
		uint64_t h = tuple_hash(s->laddr, s->lport, s->raddr, s->rport);
		uint64_t *v = tj_u64map_get(&tuples, h);
		if (!v || *v == 0)
			fail_msg("%s: client socket on node %u port %u has no server side", name,
				 s->node, s->lport);
	}
	tj_u64map_free(&tuples);
	tj_edges_free(&labels);
	gdata_free(&d);
}

static void test_builtins_agree(void **state)
{
	(void)state;
	assert_true(gen_nbuiltins >= 10);
	for (size_t i = 0; i < gen_nbuiltins; i++) {
		if (!strcmp(gen_builtins[i].name, "lossy"))
			continue; /* test_gen_lossy.c */
		struct gen_spec *s = builtin(gen_builtins[i].name);
		assert_true(s->describe[0] != '\0');
		for (int l = 0; l < GEN_LOAD__COUNT; l += 2) {
			char *dir = tmpdir();
			struct gen_stats st;
			generate(s, s->load[l], 300, 7, dir, &st);
			assert_int_equal(st.roots, 300);
			assert_true(st.calls > 0);
			check_dataset(s->name, dir, &st, s);
			rmdataset(dir);
		}
		free(s);
	}
}

static int by_order(const void *a, const void *b)
{
	const struct gmsg *x = a, *y = b;
	if (x->key.node != y->key.node)
		return x->key.node < y->key.node ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The same-thread rule: a call's parent is the last request read by the
 * calling thread.  Returns the share of labels it gets right. */
static double same_thread_oracle(const char *name, double rate, uint64_t roots)
{
	struct gen_spec *s = builtin(name);
	char *dir = tmpdir();
	struct gen_stats st;
	generate(s, rate, roots, 3, dir, &st);
	struct gdata d;
	struct tj_edge_set labels;
	load_dataset(dir, &d, &labels, 0);
	/* walk messages in log order per node */
	struct gmsg *byorder = malloc(d.nmsgs * sizeof(*byorder));
	memcpy(byorder, d.msgs, d.nmsgs * sizeof(*byorder));
	qsort(byorder, d.nmsgs, sizeof(*byorder), by_order);
	struct tj_u64map last; /* node,tid -> index of its last request */
	tj_u64map_init(&last);
	struct tj_edge_set guess = { 0 };
	for (size_t i = 0; i < d.nmsgs; i++) {
		const struct gmsg *m = &byorder[i];
		uint64_t key = (uint64_t)m->key.node << 32 | m->tid;
		if (m->role == 2 && m->key.dir == TJ_DIR_IN) {
			tj_u64map_put(&last, key, i);
		} else if (m->role == 1 && m->key.dir == TJ_DIR_OUT) {
			struct tj_edge e = { .child = m->key, .score = 1 };
			uint64_t *p = tj_u64map_get(&last, key);
			if (p) {
				e.has_parent = 1;
				e.parent = byorder[*p].key;
			}
			tj_edges_add(&guess, &e);
		}
	}
	assert_int_equal(guess.n, labels.n);
	/* compare, labels indexed by child */
	size_t right = 0;
	for (size_t i = 0; i < guess.n; i++) {
		for (size_t j = 0; j < labels.n; j++) {
			if (!tj_msgkey_eq(&labels.edges[j].child, &guess.edges[i].child))
				continue;
			const struct tj_edge *l = &labels.edges[j], *g = &guess.edges[i];
			if (l->has_parent == g->has_parent &&
			    (!l->has_parent || tj_msgkey_eq(&l->parent, &g->parent)))
				right++;
			break;
		}
	}
	double share = guess.n ? (double)right / (double)guess.n : 0;
	tj_u64map_free(&last);
	tj_edges_free(&guess);
	tj_edges_free(&labels);
	free(byorder);
	gdata_free(&d);
	rmdataset(dir);
	free(s);
	return share;
}

static void test_oracle_threaded(void **state)
{
	(void)state;
	struct gen_spec *s = builtin("threaded");
	double low = s->load[GEN_LOAD_LOW];
	free(s);
	double share = same_thread_oracle("threaded", low, 600);
	if (share != 1.0)
		fail_msg("same-thread oracle on threaded/low: %.4f right, want 1", share);
	/* hand-off breaks the rule: the test can tell right from wrong */
	s = builtin("threadpool");
	double rate = s->load[GEN_LOAD_LOW];
	free(s);
	share = same_thread_oracle("threadpool", rate, 300);
	if (share > 0.2)
		fail_msg("same-thread oracle on threadpool: %.4f right, expected to fail", share);
}

static void test_deterministic(void **state)
{
	(void)state;
	struct gen_spec *s = builtin("noisy");
	char *a = tmpdir(), *b = tmpdir(), *c = tmpdir();
	struct gen_stats sa, sb, sc;
	generate(s, s->load[GEN_LOAD_HIGH], 200, 11, a, &sa);
	generate(s, s->load[GEN_LOAD_HIGH], 200, 11, b, &sb);
	generate(s, s->load[GEN_LOAD_HIGH], 200, 12, c, &sc);
	assert_true(same_file(a, b, "labels.csv"));
	assert_true(same_file(a, b, "node-1.evlog"));
	assert_true(same_file(a, b, "node-2.evlog"));
	assert_false(same_file(a, c, "labels.csv"));
	rmdataset(a);
	rmdataset(b);
	rmdataset(c);
	free(s);
}

/* 'captured no': the built-in 'external' with its two uncaptured nodes
 * gives the same labels as the same spec with every node captured (the
 * simulation is the same; calls to the outside keep their parents), and
 * no log for those nodes; the captured nodes' events are the same too. */
static void test_uncaptured_nodes(void **state)
{
	(void)state;
	struct gen_spec *s = builtin("external");
	int outside = 0;
	for (int i = 0; i < s->nnodes; i++)
		outside += s->nodes[i].uncaptured;
	assert_int_equal(outside, 2);
	char *a = tmpdir(), *b = tmpdir();
	struct gen_stats sa, sb;
	generate(s, s->load[GEN_LOAD_MEDIUM], 300, 3, a, &sa);
	for (int i = 0; i < s->nnodes; i++)
		s->nodes[i].uncaptured = 0;
	generate(s, s->load[GEN_LOAD_MEDIUM], 300, 3, b, &sb);
	assert_true(same_file(a, b, "labels.csv"));
	assert_true(same_file(a, b, "node-1.evlog"));
	assert_true(same_file(a, b, "node-2.evlog"));
	char p[600];
	snprintf(p, sizeof(p), "%s/node-3.evlog", a);
	assert_int_not_equal(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/node-3.evlog", b);
	assert_int_equal(access(p, F_OK), 0);
	assert_true(sa.labels == sb.labels && sa.labels > 300);
	rmdataset(a);
	rmdataset(b);
	free(s);
}

/* --duration: arrivals stop at the given simulated time. */
static void test_duration(void **state)
{
	(void)state;
	struct gen_spec *s = builtin("async");
	char *dir = tmpdir();
	struct gen_opts o = { .seed = 5, .rate = 200, .duration_s = 5, .dir = dir, .force = 1 };
	struct gen_stats st;
	struct tj_err err = { 0 };
	assert_int_equal(gen_run(s, &o, &st, &err), 0);
	/* Poisson, 1000 expected: far outside 800..1200 means a bug */
	assert_true(st.roots > 800 && st.roots < 1200);
	assert_true(st.sim_ns >= 5000000000ull);
	rmdataset(dir);
	free(s);
}

/* A closed loop of N clients never has more than N root requests open:
 * count the entry service's requests between their first byte read and
 * their reply's first byte written, along its log. */
static void test_closed_loop(void **state)
{
	(void)state;
	struct gen_spec *s = builtin("threaded");
	s->arrival = GA_CLOSED;
	s->think = (struct gen_dist){ GD_EXP, 2e6, 0 };
	char *dir = tmpdir();
	struct gen_stats st;
	generate(s, 6, 400, 2, dir, &st);
	check_dataset("threaded/closed", dir, &st, NULL);
	char path[512];
	snprintf(path, sizeof(path), "%s/node-1.evlog", dir);
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_open(&r, path, &err), 0);
	const struct tj_event *ev;
	int open = 0, most = 0;
	struct tj_u64map phase; /* sock -> 1 request read, 2 reply begun */
	tj_u64map_init(&phase);
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if (ev->lport != 8080 || (ev->type != TJ_EV_RECV && ev->type != TJ_EV_SEND))
			continue;
		int added;
		uint64_t *v = tj_u64map_upsert(&phase, ev->sock, &added);
		if (ev->type == TJ_EV_RECV && ev->bytes > 0 && *v == 0) {
			*v = 1;
			if (++open > most)
				most = open;
		} else if (ev->type == TJ_EV_SEND && *v == 1) {
			*v = 2;
			open--;
		}
	}
	tj_u64map_free(&phase);
	tj_evlog_close_reader(r);
	/* 6 clients with 2ms think time keep several requests open at once */
	if (most > 6 || most < 3)
		fail_msg("closed loop of 6 clients had %d requests open at most", most);
	rmdataset(dir);
	free(s);
}

/* An existing dataset is not overwritten without force. */
static void test_refuses_overwrite(void **state)
{
	(void)state;
	struct gen_spec *s = builtin("threaded");
	char *dir = tmpdir();
	struct gen_stats st;
	generate(s, 50, 20, 1, dir, &st);
	struct gen_opts o = { .seed = 1, .rate = 50, .requests = 20, .dir = dir };
	struct tj_err err = { 0 };
	assert_true(gen_run(s, &o, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "node-1.evlog"));
	rmdataset(dir);
	free(s);
}

/* The replay (replay/replay.h) sees the same requests the labels name:
 * every call it delivers is a label child, every label child is a call
 * it delivered, every labeled parent a request it delivered. */
struct replay_seen {
	struct tj_msgkey *calls, *reqs;
	size_t ncalls, nreqs, cap_calls, cap_reqs;
};

static int on_message(void *ctx, const struct tj_message *m)
{
	struct replay_seen *r = ctx;
	if (!m->is_request)
		return 0;
	struct tj_msgkey **arr = m->role == TJ_ROLE_CLIENT ? &r->calls : &r->reqs;
	size_t *n = m->role == TJ_ROLE_CLIENT ? &r->ncalls : &r->nreqs;
	size_t *cap = m->role == TJ_ROLE_CLIENT ? &r->cap_calls : &r->cap_reqs;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		*arr = realloc(*arr, *cap * sizeof(**arr));
	}
	(*arr)[(*n)++] = m->key;
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	return tj_msgkey_cmp(a, b);
}

static void test_replay_agrees(void **state)
{
	(void)state;
	for (size_t i = 0; i < gen_nbuiltins; i++) {
		struct gen_spec *s = builtin(gen_builtins[i].name);
		char *dir = tmpdir();
		struct gen_stats st;
		generate(s, s->load[GEN_LOAD_HIGH], 300, 21, dir, &st);
		char *args[] = { dir };
		char **paths;
		size_t npaths;
		struct tj_err err = { 0 };
		struct tj_replay *rp;
		assert_int_equal(tj_replay_expand_inputs(args, 1, &paths, &npaths, &err), 0);
		assert_int_equal(tj_replay_open(&rp, paths, npaths, NULL, &err), 0);
		struct replay_seen r = { 0 };
		if (tj_replay_run(rp, on_message, &r, &err) < 0)
			fail_msg("%s: replay: %s", s->name, err.msg);
		tj_replay_close(rp);
		for (size_t p = 0; p < npaths; p++)
			free(paths[p]);
		free(paths);
		qsort(r.calls, r.ncalls, sizeof(*r.calls), key_cmp);
		qsort(r.reqs, r.nreqs, sizeof(*r.reqs), key_cmp);
		struct tj_edge_set labels;
		char path[512];
		snprintf(path, sizeof(path), "%s/labels.csv", dir);
		assert_int_equal(tj_edges_read(&labels, path, &err), 0);
		if (labels.n != r.ncalls)
			fail_msg("%s: %zu labels, replay delivered %zu calls", s->name, labels.n, r.ncalls);
		for (size_t l = 0; l < labels.n; l++) {
			char k[TJ_MSGKEY_STRLEN];
			const struct tj_edge *e = &labels.edges[l];
			if (!bsearch(&e->child, r.calls, r.ncalls, sizeof(*r.calls), key_cmp))
				fail_msg("%s: label child %s is no call of the replay", s->name,
					 tj_msgkey_format(&e->child, k));
			if (e->has_parent &&
			    !bsearch(&e->parent, r.reqs, r.nreqs, sizeof(*r.reqs), key_cmp))
				fail_msg("%s: label parent %s is no request of the replay", s->name,
					 tj_msgkey_format(&e->parent, k));
		}
		tj_edges_free(&labels);
		free(r.calls);
		free(r.reqs);
		rmdataset(dir);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtins_agree),
		cmocka_unit_test(test_oracle_threaded),
		cmocka_unit_test(test_replay_agrees),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_uncaptured_nodes),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_closed_loop),
		cmocka_unit_test(test_refuses_overwrite),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
