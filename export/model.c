/* The span model (model.h): replay, join, edges, traces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "model.h"
#include "../lib/evlog.h"
#include "../lib/u64map.h"
#include "../lib/util.h"
#include "../replay/join.h"

struct build {
	struct tj_xmodel *m;
	size_t cap;
	struct tj_join *join;
	struct tj_xnode *nodes;
	size_t nnodes;
};

const struct tj_xnode *tj_xnode_of(const struct tj_xnode *nodes, size_t n, uint32_t node)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].node == node)
			return &nodes[i];
	return NULL;
}

uint64_t tj_xnode_wall(const struct tj_xnode *c, uint64_t ts)
{
	return c ? ts - c->mono + c->real : ts;
}

void tj_xspan_of_message(struct tj_xspan *s, const struct tj_message *m,
			 const struct tj_xnode *c)
{
	memset(s, 0, sizeof(*s));
	s->key = m->key;
	s->start = tj_xnode_wall(c, m->ts_first);
	s->end = tj_xnode_wall(c, m->ts_reply ? m->ts_reply : m->ts_last);
	if (s->end < s->start)
		s->end = s->start;
	s->bytes = m->bytes;
	s->score = 1.0;
	s->pid = m->pid;
	s->tid = m->tid_first;
	s->service = c ? c->service : 0;
	s->parent = s->true_parent = TJ_XSPAN_NONE;
	s->lport = m->lport;
	s->rport = m->rport;
	s->family = m->family;
	s->kind = m->role == TJ_ROLE_CLIENT ? TJ_XSPAN_CLIENT : TJ_XSPAN_SERVER;
	memcpy(s->raddr, m->raddr, sizeof(s->raddr));
}

static int collect(void *ctx, const struct tj_message *m)
{
	struct build *b = ctx;
	if (tj_join_add(b->join, m) < 0)
		return -TJ_E_NOMEM;
	if (!m->is_request || m->role == TJ_ROLE_UNKNOWN)
		return 0;
	if (tj_grow((void **)&b->m->spans, &b->cap, b->m->n + 1, sizeof(struct tj_xspan)) < 0)
		return -TJ_E_NOMEM;
	tj_xspan_of_message(&b->m->spans[b->m->n++], m,
			    tj_xnode_of(b->nodes, b->nnodes, m->key.node));
	return 0;
}

/* The names a dataset's manifest gives its nodes (labeled captures:
 * parameters.nodes, {"front": {"node": N}, ...}); a name never read stays
 * "".  A folder without a manifest, or one without names, gives none. */
static void manifest_names(struct tj_xnode *nodes, size_t nnodes, char *const *inputs,
			   size_t ninputs)
{
	for (size_t i = 0; i < ninputs; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/manifest.json", inputs[i]);
		json_t *man = json_load_file(path, 0, NULL);
		json_t *named = json_object_get(json_object_get(man, "parameters"), "nodes");
		const char *name;
		json_t *v;
		json_object_foreach(named, name, v) {
			json_t *id = json_object_get(v, "node");
			for (size_t k = 0; k < nnodes && json_is_integer(id); k++)
				if ((json_int_t)nodes[k].node == json_integer_value(id))
					snprintf(nodes[k].name, sizeof(nodes[k].name), "%s", name);
		}
		json_decref(man);
	}
}

/* Every log's header: its node's clock pair and host name.  A service is
 * named by the manifest where it names the node, else by the host name
 * when no other node has it, else "node-N". */
int tj_xnodes_read(struct tj_xmodel *m, struct tj_xnode **nodesp, size_t *nnodesp,
		   char *const *paths, size_t npaths, char *const *inputs, size_t ninputs,
		   struct tj_err *err)
{
	struct tj_xnode *nodes = *nodesp = calloc(npaths ? npaths : 1, sizeof(*nodes));
	size_t nnodes = *nnodesp = 0;
	if (!nodes)
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	for (size_t i = 0; i < npaths; i++) {
		struct tj_evlog_reader *r;
		int rc = tj_evlog_open(&r, paths[i], err);
		if (rc)
			return rc;
		const struct tj_evlog_header *h = tj_evlog_header(r);
		struct tj_xnode *c = &nodes[nnodes];
		*nnodesp = ++nnodes;
		c->node = h->node;
		c->mono = h->clock_mono_ns;
		c->real = h->clock_real_ns;
		/* As the replay does: an untrusted header's node is its first
		 * event's, and its clocks count only if not after that event. */
		const struct tj_event *ev;
		if (tj_evlog_damage(r)->header_untrusted &&
		    (rc = tj_evlog_next(r, &ev, err)) != 0) {
			if (rc < 0) {
				tj_evlog_close_reader(r);
				return rc;
			}
			c->node = ev->node;
			if (c->mono > ev->ts_ns)
				c->mono = c->real = 0;
		}
		snprintf(c->host, sizeof(c->host), "%s", h->hostname);
		tj_evlog_close_reader(r);
	}
	manifest_names(nodes, nnodes, inputs, ninputs);
	m->services = calloc(nnodes ? nnodes : 1, sizeof(char *));
	if (!m->services)
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	for (size_t i = 0; i < nnodes; i++) {
		struct tj_xnode *c = &nodes[i];
		int unique = c->host[0] != '\0';
		for (size_t k = 0; k < nnodes && unique; k++)
			unique = k == i || strcmp(nodes[k].host, c->host) != 0;
		char name[96];
		if (c->name[0])
			snprintf(name, sizeof(name), "%s", c->name);
		else if (unique)
			snprintf(name, sizeof(name), "%s", c->host);
		else
			snprintf(name, sizeof(name), "node-%u", c->node);
		if (!(m->services[i] = strdup(name)))
			return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
		c->service = (uint32_t)i;
		m->nservices++;
	}
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	return tj_msgkey_cmp(&((const struct tj_xspan *)a)->key,
			     &((const struct tj_xspan *)b)->key);
}

uint32_t tj_xmodel_find(const struct tj_xmodel *m, const struct tj_msgkey *k)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = tj_msgkey_cmp(&m->spans[mid].key, k);
		if (c == 0)
			return (uint32_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return TJ_XSPAN_NONE;
}

static unsigned long line_of(const struct tj_edge_set *s, size_t i)
{
	return s->lines ? s->lines[i] : (unsigned long)i + 2;
}

/* Parent links of calls from an edge set.  strict (the edges): every
 * child a call of the dataset, every parent a request of its node, every
 * call answered.  Not strict (the labels): calls the replay did not see
 * (lost events) are skipped, links are compared where both exist. */
static int link_calls(struct tj_xmodel *m, const struct tj_edge_set *set,
		      const char *name, int truth, struct tj_err *err)
{
	char k[TJ_MSGKEY_STRLEN];
	uint8_t *seen = calloc(m->n ? m->n : 1, 1);
	if (!seen)
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	int rc = 0;
	for (size_t i = 0; i < set->n && !rc; i++) {
		const struct tj_edge *e = &set->edges[i];
		uint32_t c = tj_xmodel_find(m, &e->child);
		if (c == TJ_XSPAN_NONE || m->spans[c].kind != TJ_XSPAN_CLIENT) {
			if (truth)
				continue;
			rc = tj_errf(err, TJ_E_FORMAT, "%s: line %lu: %s is not a call of this "
				     "dataset (edges of another dataset?)", name, line_of(set, i),
				     tj_msgkey_format(&e->child, k));
			break;
		}
		if (seen[c]) {
			rc = tj_errf(err, TJ_E_FORMAT, "%s: line %lu: a second edge for call %s",
				     name, line_of(set, i), tj_msgkey_format(&e->child, k));
			break;
		}
		seen[c] = 1;
		uint32_t p = TJ_XSPAN_NONE;
		if (e->has_parent) {
			p = tj_xmodel_find(m, &e->parent);
			if (p == TJ_XSPAN_NONE || m->spans[p].kind != TJ_XSPAN_SERVER ||
			    e->parent.node != e->child.node) {
				if (truth)
					continue;
				rc = tj_errf(err, TJ_E_FORMAT, "%s: line %lu: parent %s is not an "
					     "inbound request of node %u of this dataset", name,
					     line_of(set, i), tj_msgkey_format(&e->parent, k),
					     e->child.node);
				break;
			}
		}
		if (truth) {
			if (m->spans[c].kind == TJ_XSPAN_CLIENT)
				m->spans[c].true_parent = p;
		} else {
			m->spans[c].parent = p;
			m->spans[c].score = e->score;
		}
	}
	if (!rc && !truth) {
		size_t missing = 0, first = 0;
		for (size_t i = 0; i < m->n; i++)
			if (m->spans[i].kind == TJ_XSPAN_CLIENT && !seen[i] && !missing++)
				first = i;
		if (missing)
			rc = tj_errf(err, TJ_E_FORMAT, "%s: %zu calls of the dataset have no edge, "
				     "%s first (a truncated file, or another dataset's edges?)",
				     name, missing, tj_msgkey_format(&m->spans[first].key, k));
	}
	if (truth)
		for (size_t i = 0; i < m->n; i++)
			m->spans[i].truth_known = seen[i];
	free(seen);
	return rc;
}

/* Roots of every span along parent links (field at offset poff, result
 * at roff), cutting a link that closes a cycle.  mark: scratch, n. */
static uint64_t find_roots(struct tj_xmodel *m, size_t poff, size_t roff,
			   uint32_t *mark, uint32_t *path)
{
#define LINK(i) (*(uint32_t *)((char *)&m->spans[i] + poff))
#define ROOT(i) (*(uint32_t *)((char *)&m->spans[i] + roff))
	uint64_t cut = 0;
	for (size_t i = 0; i < m->n; i++)
		ROOT(i) = TJ_XSPAN_NONE;
	for (size_t i = 0; i < m->n; i++) {
		size_t len = 0;
		uint32_t x = (uint32_t)i, root;
		for (;;) {
			if (ROOT(x) != TJ_XSPAN_NONE) {
				root = ROOT(x);
				break;
			}
			if (mark[x] == i + 1) { /* back on this walk's path: a cycle */
				uint32_t from = path[len - 1];
				LINK(from) = TJ_XSPAN_NONE;
				cut++;
				root = from;
				break;
			}
			mark[x] = (uint32_t)i + 1;
			path[len++] = x;
			if (LINK(x) == TJ_XSPAN_NONE) {
				root = x;
				break;
			}
			x = LINK(x);
		}
		for (size_t k = 0; k < len; k++)
			ROOT(path[k]) = root;
	}
	return cut;
#undef LINK
#undef ROOT
}

static const struct tj_xmodel *sort_model; /* qsort has no context argument */

static int cmp_by_parent_start(const void *a, const void *b)
{
	const struct tj_xspan *x = &sort_model->spans[*(const uint32_t *)a];
	const struct tj_xspan *y = &sort_model->spans[*(const uint32_t *)b];
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return tj_msgkey_cmp(&x->key, &y->key);
}

/* order[0..n) sorted by (parent, start, key), roots (parent NONE) last:
 * insertion sort for a trace's handful of spans, qsort for a dataset. */
static void sort_by_parent_start(const struct tj_xmodel *m, uint32_t *order, size_t n)
{
	if (n > 16) {
		sort_model = m;
		qsort(order, n, sizeof(*order), cmp_by_parent_start);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		uint32_t x = order[i];
		size_t j = i;
		for (; j > 0; j--) {
			const struct tj_xspan *a = &m->spans[order[j - 1]], *b = &m->spans[x];
			if (a->parent != b->parent ? a->parent < b->parent
			    : a->start != b->start ? a->start < b->start
			    : tj_msgkey_cmp(&a->key, &b->key) < 0)
				break;
			order[j] = order[j - 1];
		}
		order[j] = x;
	}
}

/* Children lists and roots into arrays with room for m->n (order is
 * scratch of the same size). */
static void index_into(struct tj_xmodel *m, uint32_t *order)
{
	size_t n = m->n;
	m->nroots = 0;
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	/* roots (parent NONE) sort last; their start order is the trace order */
	sort_by_parent_start(m, order, n);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		m->first_child[i] = (uint32_t)k;
		while (k < n && m->spans[order[k]].parent == i)
			m->children[k] = order[k], k++;
	}
	m->first_child[n] = (uint32_t)k;
	for (; k < n; k++)
		m->roots[m->nroots++] = order[k];
}

/* Children lists and the roots in start order. */
int tj_xmodel_index(struct tj_xmodel *m, struct tj_err *err)
{
	size_t n = m->n;
	free(m->first_child);
	free(m->children);
	free(m->roots);
	uint32_t *order = malloc((n ? n : 1) * sizeof(*order));
	m->first_child = calloc(n + 1, sizeof(*m->first_child));
	m->children = malloc((n ? n : 1) * sizeof(*m->children));
	m->roots = malloc((n ? n : 1) * sizeof(*m->roots));
	if (!order || !m->first_child || !m->children || !m->roots) {
		free(order);
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	}
	index_into(m, order);
	free(order);
	return 0;
}

int tj_xmodel_index_reuse(struct tj_xmodel *m, struct tj_xindex_room *r, struct tj_err *err)
{
	size_t n = m->n;
	if (n > r->cap) {
		size_t cap = n > 2 * r->cap ? n : 2 * r->cap;
		uint32_t *p[4];
		for (int i = 0; i < 4; i++) {
			p[i] = malloc((cap + 1) * sizeof(uint32_t));
			if (!p[i]) {
				while (i--)
					free(p[i]);
				return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
			}
		}
		tj_xindex_room_free(r);
		r->order = p[0];
		r->first_child = p[1];
		r->children = p[2];
		r->roots = p[3];
		r->cap = cap;
	}
	m->first_child = r->first_child;
	m->children = r->children;
	m->roots = r->roots;
	index_into(m, r->order);
	return 0;
}

void tj_xindex_room_free(struct tj_xindex_room *r)
{
	free(r->order);
	free(r->first_child);
	free(r->children);
	free(r->roots);
	memset(r, 0, sizeof(*r));
}

int tj_xmodel_build(struct tj_xmodel *m, char *const *inputs, size_t ninputs,
		    const struct tj_xmodel_opts *o, struct tj_err *err)
{
	struct build b = { .m = m };
	char **paths = NULL;
	size_t npaths = 0;
	struct tj_replay *rp = NULL;
	uint32_t *mark = NULL, *path = NULL;
	memset(m, 0, sizeof(*m));
	int rc = tj_join_new(&b.join, err);
	if (rc)
		return rc;
	if ((rc = tj_replay_expand_inputs(inputs, ninputs, &paths, &npaths, err)) ||
	    (rc = tj_xnodes_read(m, &b.nodes, &b.nnodes, paths, npaths, inputs, ninputs, err)) ||
	    (rc = tj_replay_open(&rp, paths, npaths, o->replay, err)))
		goto out;
	if ((rc = tj_replay_run(rp, collect, &b, err))) {
		if (!err->code)
			tj_errf(err, TJ_E_NOMEM, "export: out of memory");
		rc = -err->code;
		goto out;
	}
	m->damaged = tj_replay_stats(rp)->damaged_logs > 0;
	if (m->n >= TJ_XSPAN_NONE) {
		rc = tj_errf(err, TJ_E_LIMIT, "export: more than %u requests", TJ_XSPAN_NONE - 1);
		goto out;
	}
	qsort(m->spans, m->n, sizeof(*m->spans), cmp_span);

	/* the join's pairs by client address (DNAT) exist only once finished */
	if ((rc = tj_join_finish(b.join, err)) < 0)
		goto out;
	/* a request's parent: the call it was (the join) */
	for (size_t i = 0; i < m->n; i++) {
		struct tj_xspan *s = &m->spans[i];
		struct tj_msgkey call;
		if (s->kind == TJ_XSPAN_SERVER && tj_join_call_of(b.join, &s->key, &call))
			s->parent = s->true_parent = tj_xmodel_find(m, &call);
		else if (s->kind == TJ_XSPAN_CLIENT &&
			 tj_join_explain(b.join, &s->key, NULL) == TJ_JOIN_NO_PEER)
			s->external = 1;
	}
	if (o->truth) {
		m->has_truth = 1;
		if ((rc = link_calls(m, o->truth, o->truth_name, 1, err)))
			goto out;
		mark = calloc(m->n ? m->n : 1, sizeof(*mark));
		path = malloc((m->n ? m->n : 1) * sizeof(*path));
		if (!mark || !path) {
			rc = tj_errf(err, TJ_E_NOMEM, "export: out of memory");
			goto out;
		}
		find_roots(m, offsetof(struct tj_xspan, true_parent),
			   offsetof(struct tj_xspan, true_trace), mark, path);
	}
	rc = tj_xmodel_link(m, o->edges, o->edges_name, err);
out:
	free(mark);
	free(path);
	tj_replay_close(rp);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(b.nodes);
	tj_join_free(b.join);
	if (rc)
		tj_xmodel_free(m);
	return rc;
}

int tj_xmodel_link(struct tj_xmodel *m, const struct tj_edge_set *edges,
		   const char *name, struct tj_err *err)
{
	/* start again from the join's links: requests keep theirs (kept in
	 * true_parent, which the join alone sets for them), calls have none */
	for (size_t i = 0; i < m->n; i++) {
		struct tj_xspan *s = &m->spans[i];
		s->parent = s->kind == TJ_XSPAN_SERVER ? s->true_parent : TJ_XSPAN_NONE;
		s->score = 1.0;
		s->correct = TJ_XCORRECT_UNKNOWN;
	}
	m->wrong = 0;
	int rc = edges ? link_calls(m, edges, name, 0, err) : 0;
	if (rc)
		return rc;
	for (size_t i = 0; i < m->n && m->has_truth; i++) {
		struct tj_xspan *s = &m->spans[i];
		if (s->kind != TJ_XSPAN_CLIENT || !s->truth_known)
			continue;
		s->correct = s->parent == s->true_parent ? TJ_XCORRECT_YES : TJ_XCORRECT_NO;
		m->wrong += s->correct == TJ_XCORRECT_NO;
	}
	uint32_t *mark = calloc(m->n ? m->n : 1, sizeof(*mark));
	uint32_t *path = malloc((m->n ? m->n : 1) * sizeof(*path));
	if (!mark || !path) {
		free(mark);
		free(path);
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	}
	m->cycles_cut = find_roots(m, offsetof(struct tj_xspan, parent),
				   offsetof(struct tj_xspan, trace), mark, path);
	free(mark);
	free(path);
	return tj_xmodel_index(m, err);
}

void tj_xmodel_free(struct tj_xmodel *m)
{
	for (size_t i = 0; i < m->nservices; i++)
		free(m->services[i]);
	free(m->services);
	free(m->spans);
	free(m->roots);
	free(m->children);
	free(m->first_child);
	memset(m, 0, sizeof(*m));
}

size_t tj_xmodel_trace_spans(const struct tj_xmodel *m, uint32_t root,
			     uint32_t *out, uint32_t *stack)
{
	/* children pushed in reverse, so the earliest comes out first */
	size_t n = 0, top = 0;
	stack[top++] = root;
	while (top) {
		uint32_t s = stack[--top];
		out[n++] = s;
		for (uint32_t c = m->first_child[s + 1]; c > m->first_child[s]; c--)
			stack[top++] = m->children[c - 1];
	}
	return n;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void tj_xspan_id(const struct tj_msgkey *k, uint8_t out[8])
{
	uint64_t h = tj_hash64(tj_msgkey_hash(k) ^ 0x5350414e49440000ULL);
	put_be64(out, h ? h : 1); /* an all-zero id is invalid in OTLP */
}

void tj_xtrace_id(const struct tj_msgkey *root, uint8_t out[16])
{
	uint64_t h = tj_msgkey_hash(root);
	put_be64(out, tj_hash64(h ^ 0x5452414345000001ULL));
	put_be64(out + 8, tj_hash64(h ^ 0x5452414345000002ULL) | 1);
}
