/* Calls -> socket events and labels (datasets/import/README.md, "Jaeger
 * mapping").  Each call is put on a connection between its caller and its
 * callee (a new one per call, or one of a keepalive pool), the two ends
 * of every connection get the same addresses, ports and stream offsets so
 * that replay/join.c pairs them, and each node's events are sorted into
 * time order. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "import_calls.h"

struct conn {
	uint64_t csock, ssock;     /* node-local socket ids before renumbering, 0 = no side */
	uint64_t out_off, in_off;  /* bytes sent by the client, by the server */
	uint64_t last_c_end, last_s_end;
	uint64_t first_call, last_call;
	uint64_t last_use;         /* order of last use: the pool reuses the longest idle */
	uint16_t lport;            /* the client's ephemeral port */
};

/* An event and its place in generation order, so that events with one
 * timestamp keep the order they were made in (per socket: causal). */
struct item {
	struct tj_event ev;
	uint64_t seq;
};

struct node_buf {
	struct item *items;
	size_t n, cap;
	uint64_t nsock;    /* sockets made on this node */
	uint64_t *remap;   /* old socket id -> id in order of first event */
};

struct mapper {
	struct tj_jaeger *j;
	struct conn *conns;
	size_t nconns, capconns;
	struct node_buf *nodes; /* by node id - 1 */
	size_t nnodes;
	uint32_t *port_next;    /* by endpoint: next ephemeral port */
	uint64_t seq;
};

static int cmp_names(const void *a, const void *b, void *eps)
{
	const struct tj_ep *e = eps;
	const uint32_t *x = a, *y = b;
	return strcmp(e[*x].name, e[*y].name);
}

/* Node ids 1..n in order of name; peers ranked by name as well.  Only
 * endpoints of imported calls count (a skipped trace may have named
 * others). */
static int number_endpoints(struct tj_jaeger *j, size_t *nnodes,
			    struct tj_err *err)
{
	uint32_t *idx = malloc((j->neps ? j->neps : 1) * sizeof(*idx));
	uint8_t *used = calloc(j->neps ? j->neps : 1, 1);
	if (!idx || !used) {
		free(idx);
		free(used);
		return tj_errf(err, TJ_E_NOMEM, "import: out of memory");
	}
	for (size_t i = 0; i < j->neps; i++)
		j->eps[i].id = 0;
	for (size_t i = 0; i < j->ncalls; i++)
		used[j->calls[i].caller] = used[j->calls[i].callee] = 1;
	for (unsigned kind = TJ_EP_NODE; kind <= TJ_EP_PEER; kind++) {
		size_t n = 0;
		for (size_t i = 0; i < j->neps; i++)
			if (j->eps[i].kind == kind && used[i])
				idx[n++] = (uint32_t)i;
		qsort_r(idx, n, sizeof(*idx), cmp_names, j->eps);
		for (size_t k = 0; k < n; k++)
			j->eps[idx[k]].id = (uint32_t)(kind == TJ_EP_NODE ? k + 1 : k);
		if (kind == TJ_EP_NODE)
			*nnodes = n;
		if (n > TJ_IMPORT_MAX_NODES) {
			free(idx);
			free(used);
			return tj_errf(err, TJ_E_LIMIT, "import: %zu %s, at most %u",
				       n, kind == TJ_EP_NODE ? "services" : "unseen peers",
				       TJ_IMPORT_MAX_NODES);
		}
	}
	free(idx);
	free(used);
	return 0;
}

static void ep_addr(const struct tj_ep *e, uint8_t a[16])
{
	memset(a, 0, 16);
	a[0] = 10;
	switch (e->kind) {
	case TJ_EP_NODE: /* 10.x.y.1, x.y = node id */
		a[1] = (uint8_t)(e->id >> 8);
		a[2] = (uint8_t)e->id;
		a[3] = 1;
		break;
	case TJ_EP_OUTSIDE:
		a[1] = 255, a[2] = 255, a[3] = 1;
		break;
	default: /* 10.254.x.y, x.y = rank + 1 */
		a[1] = 254;
		a[2] = (uint8_t)((e->id + 1) >> 8);
		a[3] = (uint8_t)(e->id + 1);
		break;
	}
}

/* Sort key of an endpoint: nodes by id, then outside, then peers. */
static uint64_t ep_key(const struct tj_ep *e)
{
	return ((uint64_t)e->kind << 32) | e->id;
}

static int cmp_calls(const void *a, const void *b, void *jp)
{
	const struct tj_jaeger *j = jp;
	const struct tj_call *x = &j->calls[*(const uint64_t *)a];
	const struct tj_call *y = &j->calls[*(const uint64_t *)b];
	uint64_t kx = ep_key(&j->eps[x->caller]), ky = ep_key(&j->eps[y->caller]);
	if (kx != ky)
		return kx < ky ? -1 : 1;
	kx = ep_key(&j->eps[x->callee]), ky = ep_key(&j->eps[y->callee]);
	if (kx != ky)
		return kx < ky ? -1 : 1;
	/* Within a pair, by the start of whichever side lies in the dataset. */
	kx = tj_ep_is_node(j, x->caller) ? x->c_start : x->s_start;
	ky = tj_ep_is_node(j, y->caller) ? y->c_start : y->s_start;
	if (kx != ky)
		return kx < ky ? -1 : 1;
	uint64_t ia = *(const uint64_t *)a, ib = *(const uint64_t *)b;
	return ia < ib ? -1 : ia > ib;
}

static int64_t new_conn(struct mapper *m, const struct tj_call *c)
{
	if (m->nconns == m->capconns) {
		size_t cap = m->capconns ? 2 * m->capconns : 1024;
		struct conn *n = realloc(m->conns, cap * sizeof(*n));
		if (!n)
			return -1;
		m->conns = n;
		m->capconns = cap;
	}
	struct tj_jaeger *j = m->j;
	struct conn *k = &m->conns[m->nconns];
	memset(k, 0, sizeof(*k));
	uint32_t *port = &m->port_next[c->caller];
	if (*port < TJ_IMPORT_EPHEMERAL_LO || *port > TJ_IMPORT_EPHEMERAL_HI)
		*port = TJ_IMPORT_EPHEMERAL_LO; /* wraps: joins pair n-th with n-th */
	k->lport = (uint16_t)(*port)++;
	if (tj_ep_is_node(j, c->caller))
		k->csock = ++m->nodes[j->eps[c->caller].id - 1].nsock;
	if (tj_ep_is_node(j, c->callee))
		k->ssock = ++m->nodes[j->eps[c->callee].id - 1].nsock;
	m->j->st.connections++;
	return (int64_t)m->nconns++;
}

/* Put every call on a connection; calls come grouped by (caller, callee)
 * and in time order within a group. */
static int assign_conns(struct mapper *m, const uint64_t *order, size_t n)
{
	struct tj_jaeger *j = m->j;
	unsigned K = j->opts.keepalive;
	int64_t *pool = calloc(K ? K : 1, sizeof(*pool));
	if (!pool)
		return -1;
	size_t npool = 0;
	uint64_t use = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t ci = order[i];
		struct tj_call *c = &j->calls[ci];
		if (i > 0) {
			const struct tj_call *prev = &j->calls[order[i - 1]];
			if (prev->caller != c->caller || prev->callee != c->callee)
				npool = 0; /* a new pair, a new pool */
		}
		int has_c = tj_ep_is_node(j, c->caller);
		int has_s = tj_ep_is_node(j, c->callee);
		int64_t k = -1;
		for (size_t p = 0; p < npool; p++) {
			const struct conn *q = &m->conns[pool[p]];
			if ((has_c && q->last_c_end > c->c_start) ||
			    (has_s && q->last_s_end > c->s_start))
				continue; /* busy: one exchange at a time per connection */
			if (k < 0 || q->last_use < m->conns[k].last_use)
				k = pool[p];
		}
		if (k < 0) {
			if ((k = new_conn(m, c)) < 0) {
				free(pool);
				return -1;
			}
			m->conns[k].first_call = ci;
			if (npool < K)
				pool[npool++] = k;
			else if (K > 0)
				j->st.overflow_conns++; /* pool busy: used once, closed */
		}
		struct conn *q = &m->conns[k];
		c->conn = (uint64_t)k;
		c->req_off = q->out_off;
		c->resp_off = q->in_off;
		q->out_off += TJ_IMPORT_MSG_BYTES;
		q->in_off += TJ_IMPORT_MSG_BYTES;
		q->last_c_end = c->c_end;
		q->last_s_end = c->s_end;
		q->last_call = ci;
		q->last_use = ++use;
	}
	free(pool);
	return 0;
}

static int emit(struct mapper *m, uint32_t node_id, uint64_t ts, unsigned type,
		uint64_t sock, uint64_t offset, int64_t bytes,
		const uint8_t laddr[16], uint16_t lport,
		const uint8_t raddr[16], uint16_t rport)
{
	struct node_buf *nb = &m->nodes[node_id - 1];
	if (nb->n == nb->cap) {
		size_t cap = nb->cap ? 2 * nb->cap : 256;
		struct item *it = realloc(nb->items, cap * sizeof(*it));
		if (!it)
			return -1;
		nb->items = it;
		nb->cap = cap;
	}
	struct item *it = &nb->items[nb->n++];
	memset(it, 0, sizeof(*it));
	it->seq = m->seq++;
	struct tj_event *e = &it->ev;
	e->ts_ns = ts;
	e->sock = sock;
	e->bytes = bytes;
	e->offset = offset;
	e->node = node_id;
	e->pid = TJ_IMPORT_PID_BASE + node_id;
	e->tid = TJ_TID_UNKNOWN;
	e->fd = TJ_FD_UNKNOWN;
	e->type = (uint8_t)type;
	e->family = AF_INET;
	e->lport = lport;
	e->rport = rport;
	memcpy(e->laddr, laddr, 16);
	memcpy(e->raddr, raddr, 16);
	return 0;
}

static int emit_call(struct mapper *m, uint64_t ci)
{
	struct tj_jaeger *j = m->j;
	const struct tj_call *c = &j->calls[ci];
	const struct conn *q = &m->conns[c->conn];
	const struct tj_ep *ce = &j->eps[c->caller], *se = &j->eps[c->callee];
	uint8_t ca[16], sa[16];
	ep_addr(ce, ca);
	ep_addr(se, sa);
	const int64_t B = TJ_IMPORT_MSG_BYTES;
	const uint16_t sp = TJ_IMPORT_SERVER_PORT;
	int rc = 0;
	if (ce->kind == TJ_EP_NODE) {
		uint32_t n = ce->id;
		if (q->first_call == ci)
			rc |= emit(m, n, c->c_start, TJ_EV_CONNECT, q->csock, 0, 0, ca, q->lport, sa, sp);
		rc |= emit(m, n, c->c_start, TJ_EV_SEND, q->csock, c->req_off, B, ca, q->lport, sa, sp);
		rc |= emit(m, n, c->c_end, TJ_EV_RECV, q->csock, c->resp_off, B, ca, q->lport, sa, sp);
		if (q->last_call == ci)
			rc |= emit(m, n, c->c_end, TJ_EV_CLOSE, q->csock, 0, 0, ca, q->lport, sa, sp);
	}
	if (se->kind == TJ_EP_NODE) {
		uint32_t n = se->id;
		if (q->first_call == ci)
			rc |= emit(m, n, c->s_start, TJ_EV_ACCEPT, q->ssock, 0, 0, sa, sp, ca, q->lport);
		rc |= emit(m, n, c->s_start, TJ_EV_RECV, q->ssock, c->req_off, B, sa, sp, ca, q->lport);
		rc |= emit(m, n, c->s_end, TJ_EV_SEND, q->ssock, c->resp_off, B, sa, sp, ca, q->lport);
		if (q->last_call == ci)
			rc |= emit(m, n, c->s_end, TJ_EV_CLOSE, q->ssock, 0, 0, sa, sp, ca, q->lport);
	}
	return rc ? -1 : 0;
}

static int cmp_items(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->ev.ts_ns != y->ev.ts_ns)
		return x->ev.ts_ns < y->ev.ts_ns ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort a node's events into time order; number its sockets in order of
 * first event, as a capture's would look. */
static int finish_node(struct node_buf *nb, struct tj_import_node *out)
{
	if (nb->n)
		qsort(nb->items, nb->n, sizeof(*nb->items), cmp_items);
	nb->remap = calloc(nb->nsock + 1, sizeof(*nb->remap));
	out->events = malloc((nb->n ? nb->n : 1) * sizeof(*out->events));
	if (!nb->remap || !out->events)
		return -1;
	uint64_t next = 0;
	for (size_t i = 0; i < nb->n; i++) {
		struct tj_event *e = &nb->items[i].ev;
		if (!nb->remap[e->sock])
			nb->remap[e->sock] = ++next;
		e->sock = nb->remap[e->sock];
		out->events[i] = *e;
	}
	out->nevents = nb->n;
	free(nb->items);
	nb->items = NULL;
	return 0;
}

static int cmp_edges(const void *a, const void *b)
{
	return tj_msgkey_cmp(&((const struct tj_edge *)a)->child,
			     &((const struct tj_edge *)b)->child);
}

static int make_labels(struct mapper *m, struct tj_edge_set *set)
{
	struct tj_jaeger *j = m->j;
	size_t n = 0;
	for (size_t i = 0; i < j->ncalls; i++)
		n += tj_ep_is_node(j, j->calls[i].caller);
	set->edges = calloc(n ? n : 1, sizeof(*set->edges));
	if (!set->edges)
		return -1;
	set->cap = n ? n : 1;
	for (size_t i = 0; i < j->ncalls; i++) {
		const struct tj_call *c = &j->calls[i];
		if (!tj_ep_is_node(j, c->caller))
			continue;
		struct tj_edge *e = &set->edges[set->n++];
		uint32_t node = j->eps[c->caller].id;
		e->child = (struct tj_msgkey){
			.node = node,
			.sock = m->nodes[node - 1].remap[m->conns[c->conn].csock],
			.offset = c->req_off, .dir = TJ_DIR_OUT };
		e->score = 1.0;
		if (c->parent >= 0) {
			const struct tj_call *p = &j->calls[c->parent];
			uint32_t pn = j->eps[p->callee].id; /* == node */
			e->parent = (struct tj_msgkey){
				.node = pn,
				.sock = m->nodes[pn - 1].remap[m->conns[p->conn].ssock],
				.offset = p->req_off, .dir = TJ_DIR_IN };
			e->has_parent = 1;
		}
	}
	qsort(set->edges, set->n, sizeof(*set->edges), cmp_edges);
	return 0;
}

int tj_jaeger_build(struct tj_jaeger *j, struct tj_import_result *out,
		    struct tj_err *err)
{
	memset(out, 0, sizeof(*out));
	if (j->st.traces == 0)
		return tj_errf(err, TJ_E_FORMAT, "import: no trace could be imported");
	if (j->ncalls == 0 && j->opts.kinds == TJ_IMPORT_KINDS_TAGS)
		return tj_errf(err, TJ_E_FORMAT,
			       "import: the %llu traces read hold no server or client span: no calls "
			       "(--kinds auto infers kinds where span.kind is missing)",
			       (unsigned long long)j->st.traces);
	if (j->ncalls == 0)
		return tj_errf(err, TJ_E_FORMAT,
			       "import: the %llu traces read hold no server or client span "
			       "and no span whose parent is in another process: no calls",
			       (unsigned long long)j->st.traces);
	size_t nnodes = 0;
	int rc = number_endpoints(j, &nnodes, err);
	if (rc < 0)
		return rc;
	struct mapper m = { .j = j, .nnodes = nnodes };
	uint64_t *order = malloc(j->ncalls * sizeof(*order));
	m.nodes = calloc(nnodes, sizeof(*m.nodes));
	m.port_next = calloc(j->neps, sizeof(*m.port_next));
	out->nodes = calloc(nnodes, sizeof(*out->nodes));
	if (!order || !m.nodes || !m.port_next || !out->nodes)
		goto nomem;
	out->nnodes = nnodes;
	for (size_t i = 0; i < j->neps; i++) {
		const struct tj_ep *e = &j->eps[i];
		if (e->kind != TJ_EP_NODE || e->id == 0)
			continue; /* not a node, or one no imported call touches */
		struct tj_import_node *nd = &out->nodes[e->id - 1];
		nd->id = e->id;
		if (!(nd->name = strdup(e->name)))
			goto nomem;
		uint8_t a[16];
		ep_addr(e, a);
		memcpy(nd->addr, a, 4);
	}
	for (size_t i = 0; i < j->ncalls; i++)
		order[i] = i;
	qsort_r(order, j->ncalls, sizeof(*order), cmp_calls, j);
	j->st.connections = j->st.overflow_conns = 0;
	if (assign_conns(&m, order, j->ncalls) < 0)
		goto nomem;
	for (size_t i = 0; i < j->ncalls; i++)
		if (emit_call(&m, order[i]) < 0)
			goto nomem;
	j->st.events = 0;
	for (size_t k = 0; k < nnodes; k++) {
		if (finish_node(&m.nodes[k], &out->nodes[k]) < 0)
			goto nomem;
		j->st.events += out->nodes[k].nevents;
	}
	if (make_labels(&m, &out->labels) < 0)
		goto nomem;
	j->st.labels = out->labels.n;
	rc = 0;
	goto done;
nomem:
	rc = tj_errf(err, TJ_E_NOMEM, "import: out of memory");
	tj_import_result_free(out);
done:
	for (size_t k = 0; m.nodes && k < nnodes; k++) {
		free(m.nodes[k].items);
		free(m.nodes[k].remap);
	}
	free(m.nodes);
	free(m.conns);
	free(m.port_next);
	free(order);
	return rc;
}

void tj_import_result_free(struct tj_import_result *r)
{
	for (size_t k = 0; r->nodes && k < r->nnodes; k++) {
		free(r->nodes[k].name);
		free(r->nodes[k].events);
	}
	free(r->nodes);
	/* The edge set is ours (plain arrays), freed as tj_edges_free would. */
	free(r->labels.edges);
	free(r->labels.lines);
	memset(r, 0, sizeof(*r));
}
