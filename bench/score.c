/* The scorer: see score.h for every definition.  All indices are built
 * once over the labels; a score costs a few hash lookups per labeled call
 * and stays linear in the labels' size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "score.h"
#include "../lib/u64map.h"
#include "../replay/join.h"

/* Where an edge came from, for messages: "FILE:LINE" or "FILE: row N". */
static const char *where(char *buf, size_t n, const char *name,
			 const struct tj_edge_set *set, size_t i)
{
	if (set->lines && set->lines[i])
		snprintf(buf, n, "%s:%lu", name, set->lines[i]);
	else
		snprintf(buf, n, "%s: edge #%zu", name, i + 1);
	return buf;
}

static int index_set(struct tj_keymap *m, const struct tj_edge_set *set,
		     const char *name, struct tj_err *err)
{
	size_t a, b;
	int rc = tj_edges_index(m, set, &a, &b);
	if (rc == -TJ_E_NOMEM)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
	if (rc < 0) {
		char w[300], k[TJ_MSGKEY_STRLEN];
		where(w, sizeof(w), name, set, b);
		if (set->lines && set->lines[a])
			return tj_errf(err, TJ_E_FORMAT,
				       "%s: child %s appears twice (lines %lu and %lu)",
				       w, tj_msgkey_format(&set->edges[b].child, k),
				       set->lines[a], set->lines[b]);
		return tj_errf(err, TJ_E_FORMAT,
			       "%s: child %s appears twice (edges #%zu and #%zu)",
			       w, tj_msgkey_format(&set->edges[b].child, k),
			       a + 1, b + 1);
	}
	return 0;
}

static double ratio(uint64_t num, uint64_t den)
{
	return den ? (double)num / (double)den : NAN;
}

/* Per-service rows, keyed by node << 32 | pid. */
struct services {
	struct tj_u64map map;
	struct tj_score_service *v;
	size_t n, cap;
};

static struct tj_score_service *service(struct services *sv, uint32_t node,
					uint32_t pid)
{
	int added;
	uint64_t *slot = tj_u64map_upsert(&sv->map,
					  (uint64_t)node << 32 | pid, &added);
	if (!slot)
		return NULL;
	if (!added)
		return &sv->v[*slot];
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		struct tj_score_service *nv = realloc(sv->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		sv->v = nv;
		sv->cap = cap;
	}
	*slot = sv->n;
	struct tj_score_service *s = &sv->v[sv->n++];
	memset(s, 0, sizeof(*s));
	s->node = node;
	s->pid = pid;
	return s;
}

static int service_cmp(const void *a, const void *b)
{
	const struct tj_score_service *x = a, *y = b;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* One scored inbound request. */
struct req {
	struct tj_msgkey key;
	uint32_t true_calls, pred_calls, right_calls;
	int is_target;     /* some labeled call became this request */
	int visited;
	size_t first;      /* its true calls: kids[first .. first+true_calls) */
};

struct work {
	const struct tj_edge_set *labels, *edges;
	const struct tj_join *join;
	struct tj_keymap lab_ix, edge_ix, req_ix;
	struct req *reqs;
	size_t nreqs, capreqs;
	const struct tj_edge **pred;  /* per label: its edge, NULL = missing */
	size_t *target;               /* per label: req index it became, or NONE */
	size_t *kids;                 /* label indices grouped by true parent */
	size_t *stack;
	struct services sv;
};

#define NONE ((size_t)-1)

static size_t add_req(struct work *w, const struct tj_msgkey *k)
{
	int added;
	size_t *slot = tj_keymap_upsert(&w->req_ix, k, &added);
	if (!slot)
		return NONE;
	if (!added)
		return *slot;
	if (w->nreqs == w->capreqs) {
		size_t cap = w->capreqs ? w->capreqs * 2 : 64;
		struct req *nr = realloc(w->reqs, cap * sizeof(*nr));
		if (!nr)
			return NONE;
		w->reqs = nr;
		w->capreqs = cap;
	}
	*slot = w->nreqs;
	memset(&w->reqs[w->nreqs], 0, sizeof(*w->reqs));
	w->reqs[w->nreqs].key = *k;
	return w->nreqs++;
}

static uint32_t pid_of(const struct work *w, const struct tj_msgkey *k)
{
	return w->join ? tj_join_pid_of(w->join, k) : TJ_PID_UNKNOWN;
}

static void work_free(struct work *w)
{
	tj_keymap_free(&w->lab_ix);
	tj_keymap_free(&w->edge_ix);
	tj_keymap_free(&w->req_ix);
	free(w->reqs);
	free(w->pred);
	free(w->target);
	free(w->kids);
	free(w->stack);
	tj_u64map_free(&w->sv.map);
	free(w->sv.v);
}

/* Decisions, and the scored requests with their call counts. */
static int decide(struct tj_score *s, struct work *w)
{
	const struct tj_edge_set *L = w->labels;
	for (size_t i = 0; i < L->n; i++) {
		const struct tj_edge *t = &L->edges[i];
		const size_t *e = tj_keymap_get(&w->edge_ix, &t->child);
		const struct tj_edge *p = e ? &w->edges->edges[*e] : NULL;
		w->pred[i] = p;
		int pred_has = p && p->has_parent;
		int right = pred_has == t->has_parent &&
			    (!pred_has || tj_msgkey_eq(&p->parent, &t->parent));
		s->decisions++;
		s->right += right;
		s->missing += !p;
		s->true_parent += t->has_parent;
		s->pred_parent += pred_has;
		s->right_parent += right && pred_has;
		struct tj_score_service *sv = service(&w->sv, t->child.node,
						      pid_of(w, &t->child));
		if (!sv)
			return -TJ_E_NOMEM;
		sv->calls++;
		sv->calls_right += right;
		if (t->has_parent && add_req(w, &t->parent) == NONE)
			return -TJ_E_NOMEM;
		w->target[i] = NONE;
		struct tj_msgkey r;
		if (w->join && tj_join_request_of(w->join, &t->child, &r)) {
			size_t ri = add_req(w, &r);
			if (ri == NONE)
				return -TJ_E_NOMEM;
			w->target[i] = ri;
			w->reqs[ri].is_target = 1;
			s->calls_joined++;
		} else if (w->join && tj_join_explain(w->join, &t->child, NULL) ==
			   TJ_JOIN_NO_PEER) {
			s->external++;
			s->external_right += right;
		}
	}
	/* Count true, predicted and right calls per scored request (after
	 * the loop above, so a request first met as a predicted parent
	 * of an earlier call is not missed). */
	for (size_t i = 0; i < L->n; i++) {
		const struct tj_edge *t = &L->edges[i];
		const struct tj_edge *p = w->pred[i];
		if (t->has_parent)
			w->reqs[*tj_keymap_get(&w->req_ix, &t->parent)].true_calls++;
		if (p && p->has_parent) {
			const size_t *ri = tj_keymap_get(&w->req_ix, &p->parent);
			if (ri) {
				w->reqs[*ri].pred_calls++;
				if (t->has_parent &&
				    tj_msgkey_eq(&p->parent, &t->parent))
					w->reqs[*ri].right_calls++;
			}
		}
	}
	return 0;
}

static int req_right(const struct req *r)
{
	return r->pred_calls == r->true_calls && r->right_calls == r->true_calls;
}

/* Per-service request accuracy. */
static int score_requests(struct tj_score *s, struct work *w)
{
	for (size_t i = 0; i < w->nreqs; i++) {
		const struct req *r = &w->reqs[i];
		struct tj_score_service *sv = service(&w->sv, r->key.node,
						      pid_of(w, &r->key));
		if (!sv)
			return -TJ_E_NOMEM;
		sv->requests++;
		sv->requests_right += req_right(r);
	}
	for (size_t i = 0; i < w->sv.n; i++) {
		if (!w->sv.v[i].calls)
			continue;
		s->requests += w->sv.v[i].requests;
		s->requests_right += w->sv.v[i].requests_right;
	}
	return 0;
}

/* Walk one tree from a request; returns 1 if every request in it is
 * right.  Iterative: real traces can be deep. */
static int tree_right(struct work *w, size_t root, uint64_t *reached)
{
	size_t top = 0;
	int ok = 1;
	w->stack[top++] = root;
	while (top) {
		struct req *r = &w->reqs[w->stack[--top]];
		if (r->visited)
			continue;
		r->visited = 1;
		ok &= req_right(r);
		for (size_t k = 0; k < r->true_calls; k++) {
			size_t li = w->kids[r->first + k];
			(*reached)++;
			if (w->target[li] != NONE)
				w->stack[top++] = w->target[li];
		}
	}
	return ok;
}

static int score_traces(struct tj_score *s, struct work *w)
{
	const struct tj_edge_set *L = w->labels;
	/* Group labeled calls by true parent (counting sort). */
	size_t at = 0;
	for (size_t i = 0; i < w->nreqs; i++) {
		w->reqs[i].first = at;
		at += w->reqs[i].true_calls;
	}
	size_t *fill = calloc(w->nreqs ? w->nreqs : 1, sizeof(*fill));
	w->kids = malloc((at ? at : 1) * sizeof(*w->kids));
	w->stack = malloc((w->nreqs ? w->nreqs : 1) * sizeof(*w->stack));
	if (!fill || !w->kids || !w->stack) {
		free(fill);
		return -TJ_E_NOMEM;
	}
	for (size_t i = 0; i < L->n; i++) {
		if (!L->edges[i].has_parent)
			continue;
		size_t ri = *tj_keymap_get(&w->req_ix, &L->edges[i].parent);
		w->kids[w->reqs[ri].first + fill[ri]++] = i;
	}
	free(fill);

	uint64_t reached = 0;
	for (size_t i = 0; i < w->nreqs; i++) {
		if (w->reqs[i].is_target)
			continue;
		s->entry_roots++;
		s->roots_right += tree_right(w, i, &reached);
	}
	for (size_t i = 0; i < L->n; i++) {
		if (L->edges[i].has_parent)
			continue;
		s->background_roots++;
		reached++;
		const struct tj_edge *p = w->pred[i];
		int ok = !(p && p->has_parent);
		if (w->target[i] != NONE)
			ok &= tree_right(w, w->target[i], &reached);
		s->roots_right += ok;
	}
	s->roots = s->entry_roots + s->background_roots;
	s->unreached = L->n - reached;
	return 0;
}

int tj_score_compute(struct tj_score *s, const struct tj_edge_set *labels,
		     const struct tj_edge_set *edges,
		     const struct tj_join *join,
		     const struct tj_score_opts *opts, struct tj_err *err)
{
	const char *lname = opts && opts->labels_name ? opts->labels_name : "labels";
	const char *ename = opts && opts->edges_name ? opts->edges_name : "edges";
	struct work w;
	int rc;
	memset(s, 0, sizeof(*s));
	memset(&w, 0, sizeof(w));
	w.labels = labels;
	w.edges = edges;
	w.join = join;
	tj_u64map_init(&w.sv.map);
	if ((rc = index_set(&w.lab_ix, labels, lname, err)) < 0 ||
	    (rc = index_set(&w.edge_ix, edges, ename, err)) < 0)
		goto out;

	/* Children the labels do not know. */
	size_t first_unknown = NONE;
	for (size_t i = 0; i < edges->n; i++) {
		if (tj_keymap_get(&w.lab_ix, &edges->edges[i].child))
			continue;
		if (first_unknown == NONE)
			first_unknown = i;
		s->unknown++;
	}
	if (opts && opts->strict && s->unknown) {
		char wh[300], k[TJ_MSGKEY_STRLEN];
		rc = tj_errf(err, TJ_E_FORMAT,
			     "%s: child %s is not in %s (%llu such edge%s; "
			     "--strict refuses them)",
			     where(wh, sizeof(wh), ename, edges, first_unknown),
			     tj_msgkey_format(&edges->edges[first_unknown].child, k),
			     lname, (unsigned long long)s->unknown,
			     s->unknown == 1 ? "" : "s");
		goto out;
	}

	tj_keymap_free(&w.lab_ix); /* not needed past here: less at peak */
	w.pred = malloc((labels->n ? labels->n : 1) * sizeof(*w.pred));
	w.target = malloc((labels->n ? labels->n : 1) * sizeof(*w.target));
	if (!w.pred || !w.target) {
		rc = -TJ_E_NOMEM;
		goto nomem;
	}
	if ((rc = decide(s, &w)) < 0 || (rc = score_requests(s, &w)) < 0)
		goto nomem;
	s->have_join = join != NULL;
	if (join && (rc = score_traces(s, &w)) < 0)
		goto nomem;

	s->accuracy = ratio(s->right, s->decisions);
	s->external_accuracy = ratio(s->external_right, s->external);
	s->precision = ratio(s->right_parent, s->pred_parent);
	s->recall = ratio(s->right_parent, s->true_parent);
	s->f1 = ratio(2 * s->right_parent, s->pred_parent + s->true_parent);
	s->service_accuracy = ratio(s->requests_right, s->requests);
	s->trace_accuracy = join ? ratio(s->roots_right, s->roots) : NAN;
	if (w.sv.n)
		qsort(w.sv.v, w.sv.n, sizeof(*w.sv.v), service_cmp);
	s->services = w.sv.v;
	s->nservices = w.sv.n;
	w.sv.v = NULL;
	rc = 0;
	goto out;
nomem:
	rc = tj_errf(err, TJ_E_NOMEM, "score: out of memory");
out:
	work_free(&w);
	return rc;
}

void tj_score_free(struct tj_score *s)
{
	free(s->services);
	s->services = NULL;
	s->nservices = 0;
}

/* ---- output ------------------------------------------------------------ */

static const char *fig(char *buf, double v)
{
	if (isnan(v))
		snprintf(buf, 16, "-");
	else
		snprintf(buf, 16, "%.3f", v);
	return buf;
}

void tj_score_print(FILE *f, const struct tj_score *s)
{
	char a[16], b[16], c[16], d[16];
	fprintf(f, "edge      precision %s  recall %s  F1 %s  accuracy %s "
		   "(%llu/%llu calls)\n",
		fig(a, s->precision), fig(b, s->recall), fig(c, s->f1),
		fig(d, s->accuracy), (unsigned long long)s->right,
		(unsigned long long)s->decisions);
	fprintf(f, "          %llu with a true parent, %llu predicted with one, "
		   "%llu right; %llu missing from edges (counted as no parent)\n",
		(unsigned long long)s->true_parent,
		(unsigned long long)s->pred_parent,
		(unsigned long long)s->right_parent,
		(unsigned long long)s->missing);
	if (s->unknown)
		fprintf(f, "          %llu edge%s with a child the labels do not "
			   "know (not scored)\n",
			(unsigned long long)s->unknown, s->unknown == 1 ? "" : "s");
	fprintf(f, "service   accuracy %s (%llu/%llu inbound requests of "
		   "services that make calls)\n",
		fig(a, s->service_accuracy),
		(unsigned long long)s->requests_right,
		(unsigned long long)s->requests);
	if (s->have_join) {
		fprintf(f, "trace     end-to-end accuracy %s (%llu/%llu roots: "
			   "%llu entry, %llu background); %llu of %llu calls "
			   "joined across nodes\n",
			fig(a, s->trace_accuracy),
			(unsigned long long)s->roots_right,
			(unsigned long long)s->roots,
			(unsigned long long)s->entry_roots,
			(unsigned long long)s->background_roots,
			(unsigned long long)s->calls_joined,
			(unsigned long long)s->decisions);
		if (s->unreached)
			fprintf(f, "          %llu labeled calls in no tree "
				   "(the labels hold a cycle)\n",
				(unsigned long long)s->unreached);
		fprintf(f, "external  accuracy %s (%llu/%llu calls to services outside "
			   "the captured set: leaves of their traces)\n",
			fig(a, s->external_accuracy),
			(unsigned long long)s->external_right,
			(unsigned long long)s->external);
	} else {
		fprintf(f, "trace     - (no logs to join the nodes: give "
			   "--dataset DIR)\n");
	}
	if (!s->nservices)
		return;
	fprintf(f, "\n%-22s %8s %9s %9s %9s\n", "service", "calls",
		"edge-acc", "requests", "svc-acc");
	for (size_t i = 0; i < s->nservices; i++) {
		const struct tj_score_service *v = &s->services[i];
		char name[40];
		if (v->pid)
			snprintf(name, sizeof(name), "node %u pid %u", v->node,
				 v->pid);
		else
			snprintf(name, sizeof(name), "node %u", v->node);
		fprintf(f, "%-22s %8llu %9s %9llu %9s\n", name,
			(unsigned long long)v->calls,
			fig(a, ratio(v->calls_right, v->calls)),
			(unsigned long long)v->requests,
			fig(b, ratio(v->requests_right, v->requests)));
	}
}

static json_t *jfig(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

#define JU(v) json_integer((json_int_t)(v))

json_t *tj_score_json(const struct tj_score *s)
{
	json_t *svcs = json_array();
	for (size_t i = 0; i < s->nservices; i++) {
		const struct tj_score_service *v = &s->services[i];
		json_array_append_new(svcs, json_pack(
			"{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
			"node", JU(v->node), "pid", JU(v->pid),
			"calls", JU(v->calls), "calls_right", JU(v->calls_right),
			"edge_accuracy", jfig(ratio(v->calls_right, v->calls)),
			"requests", JU(v->requests),
			"requests_right", JU(v->requests_right),
			"accuracy", jfig(ratio(v->requests_right, v->requests))));
	}
	json_t *edges = json_pack(
		"{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
		"decisions", JU(s->decisions), "right", JU(s->right),
		"true_parent", JU(s->true_parent),
		"pred_parent", JU(s->pred_parent),
		"right_parent", JU(s->right_parent),
		"missing", JU(s->missing), "unknown", JU(s->unknown),
		"precision", jfig(s->precision), "recall", jfig(s->recall),
		"f1", jfig(s->f1), "accuracy", jfig(s->accuracy));
	json_t *svc = json_pack("{s:o,s:o,s:o}",
		"requests", JU(s->requests),
		"requests_right", JU(s->requests_right),
		"accuracy", jfig(s->service_accuracy));
	json_t *traces = s->have_join ? json_pack(
		"{s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
		"roots", JU(s->roots), "roots_right", JU(s->roots_right),
		"entry_roots", JU(s->entry_roots),
		"background_roots", JU(s->background_roots),
		"calls_joined", JU(s->calls_joined),
		"unreached", JU(s->unreached),
		"accuracy", jfig(s->trace_accuracy)) : json_null();
	json_t *external = s->have_join ? json_pack("{s:o,s:o,s:o}",
		"calls", JU(s->external), "right", JU(s->external_right),
		"accuracy", jfig(s->external_accuracy)) : json_null();
	return json_pack("{s:o,s:o,s:o,s:o,s:o}", "edges", edges,
			 "per_service", svc, "end_to_end", traces,
			 "external", external, "services", svcs);
}
