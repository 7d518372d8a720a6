/* Call trees for `correlate --traces` (traces.h).
 *
 * A tree is rooted at a server request no captured call became (an entry
 * from outside), or at a call with no parent (a root or background call).
 * Under a request come the calls the edges give it; under a call, the
 * request it became on the other node (replay/join.h).  Times are each
 * node's own clock: starts compare within a node only. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "traces.h"
#include "../lib/symbolize.h"
#include "../replay/join.h"

#define STACK_FRAMES_SHOWN 4

struct span {
	struct tj_msgkey key;
	uint32_t pid, tid;
	uint64_t start, end; /* end: reply start, else last byte */
	int is_call;
	int has_parent;      /* request: a call became it; call: an edge parent */
	uint32_t stack_id;   /* of the first syscall, 0 = none */
	uint64_t callsite;   /* its call-site id, 0 = none */
};

/* The stacks block of one node's log (capture --stack). */
struct node_stacks {
	uint32_t node;
	struct tj_stacks st;
};

struct trees {
	struct span *s;
	size_t n, cap;
	struct tj_join *join;
	const struct tj_edge *by_parent; /* edges with a parent, by parent key */
	size_t nby;
	int failed;
	struct node_stacks *ns; /* logs that have stacks */
	size_t nns;
	struct tj_symbolizer *sym;
};

static int collect(void *ctx, const struct tj_message *m)
{
	struct trees *t = ctx;
	if (tj_join_add(t->join, m) < 0)
		return -TJ_E_NOMEM;
	if (!m->is_request)
		return 0;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1024;
		struct span *ns = realloc(t->s, cap * sizeof(*ns));
		if (!ns)
			return -TJ_E_NOMEM;
		t->s = ns;
		t->cap = cap;
	}
	struct span *sp = &t->s[t->n++];
	memset(sp, 0, sizeof(*sp));
	sp->key = m->key;
	sp->pid = m->pid;
	sp->tid = m->tid_first;
	sp->start = m->ts_first;
	sp->end = m->ts_reply ? m->ts_reply : m->ts_last;
	sp->is_call = m->role == TJ_ROLE_CLIENT;
	sp->stack_id = m->stack_id;
	sp->callsite = m->callsite;
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	return tj_msgkey_cmp(&((const struct span *)a)->key,
			     &((const struct span *)b)->key);
}

static int cmp_parent(const void *a, const void *b)
{
	const struct tj_edge *x = a, *y = b;
	int c = tj_msgkey_cmp(&x->parent, &y->parent);
	return c ? c : tj_msgkey_cmp(&x->child, &y->child);
}

static struct span *find(struct trees *t, const struct tj_msgkey *k)
{
	struct span key = { .key = *k };
	return bsearch(&key, t->s, t->n, sizeof(*t->s), cmp_span);
}

static void print_span(FILE *f, const struct span *s, int depth, const char *note)
{
	char k[TJ_MSGKEY_STRLEN];
	fprintf(f, "%*s%s %s  node %" PRIu32 " pid %" PRIu32 " tid %" PRIu32
		   " start %" PRIu64 ".%09" PRIu64 " dur %.3f ms%s\n",
		depth * 2, "", s->is_call ? "call" : "request",
		tj_msgkey_format(&s->key, k), s->key.node, s->pid, s->tid,
		s->start / 1000000000u, s->start % 1000000000u,
		(s->end - s->start) / 1e6, note);
}

/* Under a span whose log has its stack: where in the program it was
 * made, innermost frames first. */
static void print_stack(FILE *f, const struct trees *t, const struct span *s, int depth)
{
	const struct tj_stack *k = NULL;
	const struct node_stacks *n = NULL;
	char buf[512];

	if (!s->stack_id)
		return;
	for (size_t i = 0; i < t->nns && !k; i++)
		if (t->ns[i].node == s->key.node) {
			n = &t->ns[i];
			k = tj_stacks_find(&n->st, s->stack_id);
		}
	if (!k)
		return;
	fprintf(f, "%*s  site %016" PRIx64 " at", depth * 2, "", s->callsite);
	for (unsigned i = 0; i < k->nuser && i < STACK_FRAMES_SHOWN; i++)
		fprintf(f, "%s%s", i ? " < " : " ",
			tj_symbolize_frame(t->sym, &n->st, s->pid, k, i, buf, sizeof(buf)));
	if (k->nuser > STACK_FRAMES_SHOWN)
		fprintf(f, " < ...");
	fputc('\n', f);
}

/* The stacks blocks of the inputs; a log without one adds nothing. */
static int load_stacks(struct trees *t, char *const *paths, size_t npaths,
		       struct tj_err *err)
{
	for (size_t i = 0; i < npaths; i++) {
		struct tj_evlog_reader *r;
		struct tj_stacks st;
		uint32_t node;
		int rc;

		tj_stacks_init(&st);
		if ((rc = tj_evlog_open(&r, paths[i], err)))
			return rc;
		node = tj_evlog_header(r)->node;
		tj_evlog_close_reader(r);
		if ((rc = tj_stacks_read(paths[i], &st, err)) < 0)
			return rc;
		if (rc == 0)
			continue;
		struct node_stacks *ns = realloc(t->ns, (t->nns + 1) * sizeof(*ns));
		if (!ns) {
			tj_stacks_free(&st);
			return tj_errf(err, TJ_E_NOMEM, "traces: out of memory");
		}
		t->ns = ns;
		ns[t->nns].node = node;
		ns[t->nns++].st = st;
	}
	if (t->nns && !(t->sym = tj_symbolizer_new()))
		return tj_errf(err, TJ_E_NOMEM, "traces: out of memory");
	return 0;
}

#define MAX_DEPTH 64

static void print_tree(FILE *f, struct trees *t, const struct span *s, int depth)
{
	if (depth >= MAX_DEPTH) {
		fprintf(f, "%*s... deeper than %d levels (a cycle in the edges?)\n",
			depth * 2, "", MAX_DEPTH);
		return;
	}
	if (s->is_call) {
		struct tj_msgkey req;
		struct span *r;
		/* a call whose server is not captured is a leaf client span */
		print_span(f, s, depth, tj_join_explain(t->join, &s->key, NULL) == TJ_JOIN_NO_PEER
			   ? "  (leaf: its server is outside the captured set)" : "");
		print_stack(f, t, s, depth);
		if (tj_join_request_of(t->join, &s->key, &req) && (r = find(t, &req)))
			print_tree(f, t, r, depth + 1);
		return;
	}
	print_span(f, s, depth, "");
	print_stack(f, t, s, depth);
	/* the calls the edges put under this request */
	struct tj_edge probe = { .parent = s->key };
	size_t lo = 0, hi = t->nby;
	while (lo < hi) { /* first edge whose parent >= this key */
		size_t mid = (lo + hi) / 2;
		if (tj_msgkey_cmp(&t->by_parent[mid].parent, &probe.parent) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < t->nby && tj_msgkey_eq(&t->by_parent[i].parent, &s->key); i++) {
		struct span *c = find(t, &t->by_parent[i].child);
		if (c)
			print_tree(f, t, c, depth + 1);
	}
}

static int cmp_start(const void *a, const void *b)
{
	const struct span *x = *(const struct span *const *)a;
	const struct span *y = *(const struct span *const *)b;
	if (x->key.node != y->key.node)
		return x->key.node < y->key.node ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return tj_msgkey_cmp(&x->key, &y->key);
}

int tj_traces_print(FILE *f, char *const *inputs, size_t ninputs,
		    const struct tj_replay_opts *o,
		    const struct tj_edge_set *edges, struct tj_err *err)
{
	struct trees t = { 0 };
	char **paths = NULL;
	size_t npaths = 0;
	struct tj_replay *rp = NULL;
	struct tj_edge *by = NULL;
	const struct span **roots = NULL;
	int rc = tj_join_new(&t.join, err);
	if (rc)
		return rc;
	if ((rc = tj_replay_expand_inputs(inputs, ninputs, &paths, &npaths, err)) ||
	    (rc = tj_replay_open(&rp, paths, npaths, o, err)))
		goto out;
	if ((rc = load_stacks(&t, paths, npaths, err)))
		goto out;
	if ((rc = tj_replay_run(rp, collect, &t, err))) {
		if (!err->code)
			tj_errf(err, TJ_E_NOMEM, "traces: out of memory");
		goto out;
	}
	if ((rc = tj_join_finish(t.join, err)))
		goto out;
	qsort(t.s, t.n, sizeof(*t.s), cmp_span);

	by = malloc((edges->n ? edges->n : 1) * sizeof(*by));
	roots = malloc((t.n ? t.n : 1) * sizeof(*roots));
	if (!by || !roots) {
		rc = tj_errf(err, TJ_E_NOMEM, "traces: out of memory");
		goto out;
	}
	for (size_t i = 0; i < edges->n; i++) {
		struct span *c = find(&t, &edges->edges[i].child);
		if (!edges->edges[i].has_parent)
			continue;
		by[t.nby++] = edges->edges[i];
		if (c)
			c->has_parent = 1;
	}
	qsort(by, t.nby, sizeof(*by), cmp_parent);
	t.by_parent = by;
	size_t nroots = 0;
	for (size_t i = 0; i < t.n; i++) {
		struct span *s = &t.s[i];
		struct tj_msgkey call;
		if (s->is_call ? !s->has_parent : !tj_join_call_of(t.join, &s->key, &call))
			roots[nroots++] = s;
	}
	qsort(roots, nroots, sizeof(*roots), cmp_start);
	for (size_t i = 0; i < nroots; i++) {
		print_tree(f, &t, roots[i], 0);
		fputc('\n', f);
	}
	const struct tj_join_stats *js = tj_join_stats(t.join);
	fprintf(f, "# %zu trees; join: %" PRIu64 " of %" PRIu64 " calls joined across nodes "
		   "(%" PRIu64 " by capture --tag, %" PRIu64 " by client address through DNAT), "
		   "%" PRIu64 " to uncaptured peers, %" PRIu64 " ambiguous\n",
		nroots, js->joined, js->calls, js->joined_by_tag,
		js->joined_by_client_addr, js->no_peer, js->ambiguous);
	/* Every call left unjoined, and why: a call to a service outside the
	 * captured set is a leaf; one that NAT hid says so. */
	for (size_t i = 0; i < t.n; i++) {
		if (!t.s[i].is_call)
			continue;
		int r = tj_join_explain(t.join, &t.s[i].key, NULL);
		if (r == TJ_JOIN_OK || r == TJ_JOIN_NOT_SEEN)
			continue;
		char k[TJ_MSGKEY_STRLEN];
		fprintf(f, "# unjoined %s: %s\n", tj_msgkey_format(&t.s[i].key, k),
			tj_join_result_text(r));
	}
out:
	tj_replay_close(rp);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(by);
	free(roots);
	free(t.s);
	for (size_t i = 0; i < t.nns; i++)
		tj_stacks_free(&t.ns[i].st);
	free(t.ns);
	tj_symbolizer_free(t.sym);
	tj_join_free(t.join);
	return rc;
}
