/* The `nest-match` correlator: calls matched to requests by nesting and
 * per-request call counts, for event loops that write calls and answer
 * from timers (correlate/ASYNC.md, "Timer-driven loops").
 *
 * There no thread, handler or order link is causal: the only things the
 * kernel shows that tie a call to its request are that the call was
 * written after the request arrived and its reply read before the
 * response was written (nesting), and that a service makes the same
 * number of calls to each destination per request (counts).  So:
 *
 *  - a process's requests are decided in the order of their responses;
 *  - a request takes, for each destination its process calls, up to cap
 *    calls that nest in it and no earlier-answered request took, oldest
 *    write first; cap = the process's calls to that destination per
 *    request so far, rounded (at least 1).
 *
 * Oldest-first is exact for the matching problem: if some assignment
 * gives every request its calls, this one does too (exchange argument in
 * ASYNC.md); where several do, it is the FIFO one.  Calls no request took
 * get no parent.
 *
 * Streaming: a node's messages come in order of their first byte
 * (replay/README.md, "Delivery order"), so a request whose response began
 * before the node's newest first byte has seen every call that can nest in
 * it: it is decided then.  A call waits until the last request it could
 * nest in is decided.  Memory follows the requests and calls in flight. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "../lib/util.h"

#define ALGO "nest-match"

struct nm_req {
	struct tj_msgkey key;
	uint64_t a, r; /* arrival, response began */
};

struct nm_call {
	struct tj_msgkey key;
	uint64_t w, rep;    /* written, reply began (w if none) */
	uint64_t last_r;    /* the latest response among the requests it nests in */
	int taken;
};

struct nm_dest { /* the calls of one process to one destination */
	uint8_t addr[16];
	uint16_t port;
	uint64_t ncalls;
	struct nm_call *q; /* undecided, in write order */
	size_t nq, capq;
};

struct nm_proc {
	uint32_t node, pid;
	uint64_t nreq;
	struct nm_req *heap; /* undecided requests, min-heap on r */
	size_t nh, caph;
	struct nm_dest *dest;
	size_t nd, capd;
};

struct nm_node {
	uint32_t node;
	uint64_t clock; /* newest first byte delivered */
};

struct nest_match {
	struct nm_proc *proc;
	size_t np, capp;
	struct nm_node *nodes;
	size_t nn, capn;
	int explain;
	uint64_t matched, unmatched, requests, unanswered;
};

static const char *const known_params[] = { "explain", NULL };

static void nm_close(void *st)
{
	struct nest_match *s = st;
	if (!s)
		return;
	for (size_t i = 0; i < s->np; i++) {
		for (size_t j = 0; j < s->proc[i].nd; j++)
			free(s->proc[i].dest[j].q);
		free(s->proc[i].dest);
		free(s->proc[i].heap);
	}
	free(s->proc);
	free(s->nodes);
	free(s);
}

static int nm_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	int rc = tj_params_check(p, known_params, ALGO, err);
	if (rc < 0)
		return rc;
	int ex = 0;
	if ((rc = tj_param_flag(p, "explain", 0, ALGO, &ex, err)) < 0)
		return rc;
	struct nest_match *s = calloc(1, sizeof(*s));
	if (!s)
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	s->explain = ex == 1;
	*st = s;
	return 0;
}

static struct nm_proc *proc_of(struct nest_match *s, uint32_t node, uint32_t pid)
{
	for (size_t i = 0; i < s->np; i++)
		if (s->proc[i].node == node && s->proc[i].pid == pid)
			return &s->proc[i];
	if (tj_grow((void **)&s->proc, &s->capp, s->np + 1, sizeof(*s->proc)) < 0)
		return NULL;
	struct nm_proc *p = &s->proc[s->np++];
	memset(p, 0, sizeof(*p));
	p->node = node;
	p->pid = pid;
	return p;
}

static struct nm_node *node_of(struct nest_match *s, uint32_t node)
{
	for (size_t i = 0; i < s->nn; i++)
		if (s->nodes[i].node == node)
			return &s->nodes[i];
	if (tj_grow((void **)&s->nodes, &s->capn, s->nn + 1, sizeof(*s->nodes)) < 0)
		return NULL;
	s->nodes[s->nn] = (struct nm_node){ node, 0 };
	return &s->nodes[s->nn++];
}

static struct nm_dest *dest_of(struct nm_proc *p, const struct tj_message *m)
{
	for (size_t i = 0; i < p->nd; i++)
		if (p->dest[i].port == m->rport && !memcmp(p->dest[i].addr, m->raddr, 16))
			return &p->dest[i];
	if (tj_grow((void **)&p->dest, &p->capd, p->nd + 1, sizeof(*p->dest)) < 0)
		return NULL;
	struct nm_dest *d = &p->dest[p->nd++];
	memset(d, 0, sizeof(*d));
	memcpy(d->addr, m->raddr, 16);
	d->port = m->rport;
	return d;
}

static void heap_push(struct nm_proc *p, const struct nm_req *q)
{
	size_t i = p->nh++;
	p->heap[i] = *q;
	while (i && p->heap[(i - 1) / 2].r > p->heap[i].r) {
		struct nm_req t = p->heap[i];
		p->heap[i] = p->heap[(i - 1) / 2];
		p->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct nm_req heap_pop(struct nm_proc *p)
{
	struct nm_req top = p->heap[0];
	p->heap[0] = p->heap[--p->nh];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < p->nh && p->heap[l].r < p->heap[m].r)
			m = l;
		if (l + 1 < p->nh && p->heap[l + 1].r < p->heap[m].r)
			m = l + 1;
		if (m == i)
			break;
		struct nm_req t = p->heap[i];
		p->heap[i] = p->heap[m];
		p->heap[m] = t;
		i = m;
	}
	return top;
}

static int emit(struct nest_match *s, struct tj_edge_sink *out, const struct nm_call *c,
		const struct nm_req *parent)
{
	struct tj_edge e = { .child = c->key, .has_parent = parent != NULL,
			     .score = parent ? 1.0 : 0.0 };
	if (parent)
		e.parent = parent->key;
	if (s->explain) {
		char a[TJ_MSGKEY_STRLEN], b[TJ_MSGKEY_STRLEN];
		fprintf(stderr, ALGO ": %s <- %s by %s\n", tj_msgkey_format(&c->key, a),
			parent ? tj_msgkey_format(&parent->key, b) : "none",
			parent ? "nesting" : "no-nesting-request");
	}
	if (parent)
		s->matched++;
	else
		s->unmatched++;
	return out->emit(out, &e);
}

/* Drop taken calls and emit the front calls no request can take any more
 * (every request they nest in is decided: those are decided in order of
 * r, and `done` is the last decided r). */
static int sweep(struct nest_match *s, struct nm_dest *d, uint64_t done, int all,
		 struct tj_edge_sink *out)
{
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < d->nq; i++) {
		struct nm_call *c = &d->q[i];
		if (c->taken)
			continue;
		if (rc == 0 && (all || c->last_r <= done)) {
			rc = emit(s, out, c, NULL);
			continue;
		}
		d->q[k++] = *c;
	}
	d->nq = k;
	return rc;
}

/* Decide the request answered first: per destination, the oldest calls
 * that nest in it, up to the process's calls per request there. */
static int decide_one(struct nest_match *s, struct nm_proc *p, struct tj_edge_sink *out)
{
	struct nm_req q = heap_pop(p);
	s->requests++;
	int rc = 0;
	for (size_t i = 0; i < p->nd && rc == 0; i++) {
		struct nm_dest *d = &p->dest[i];
		uint64_t cap = p->nreq ? (d->ncalls + p->nreq / 2) / p->nreq : 1;
		if (cap < 1)
			cap = 1;
		for (size_t j = 0; j < d->nq && cap && rc == 0; j++) {
			struct nm_call *c = &d->q[j];
			if (c->taken || c->w < q.a || c->rep > q.r)
				continue;
			c->taken = 1;
			cap--;
			rc = emit(s, out, c, &q);
		}
		if (rc == 0)
			rc = sweep(s, d, q.r, 0, out);
	}
	return rc;
}

static int decide_due(struct nest_match *s, uint32_t node, uint64_t clock, int all,
		      struct tj_edge_sink *out)
{
	int rc = 0;
	for (size_t i = 0; i < s->np && rc == 0; i++) {
		struct nm_proc *p = &s->proc[i];
		if (p->node != node && !all)
			continue;
		while (rc == 0 && p->nh && (all || p->heap[0].r < clock))
			rc = decide_one(s, p, out);
		for (size_t j = 0; all && rc == 0 && j < p->nd; j++)
			rc = sweep(s, &p->dest[j], UINT64_MAX, 1, out);
	}
	return rc;
}

static int nm_message(void *st, const struct tj_message *m, struct tj_edge_sink *out,
		      struct tj_err *err)
{
	struct nest_match *s = st;
	struct nm_node *n = node_of(s, m->key.node);
	struct nm_proc *p = m->is_request ? proc_of(s, m->key.node, m->pid) : NULL;
	if (!n || (m->is_request && !p))
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	if (m->ts_first > n->clock)
		n->clock = m->ts_first;
	int rc = 0;
	if (m->is_request && m->role == TJ_ROLE_SERVER && !m->ts_reply) {
		/* no response seen (lost, or still open at the end): nothing can
		 * be said to nest in it, and keeping it would hold every later
		 * call of its process until the end of the log */
		s->unanswered++;
	} else if (m->is_request && m->role == TJ_ROLE_SERVER) {
		if (tj_grow((void **)&p->heap, &p->caph, p->nh + 1, sizeof(*p->heap)) < 0)
			return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
		struct nm_req q = { m->key, m->ts_first, m->ts_reply };
		heap_push(p, &q);
		p->nreq++;
	} else if (m->is_request && m->role == TJ_ROLE_CLIENT) {
		struct nm_call c = { m->key, m->ts_first, m->ts_reply ? m->ts_reply : m->ts_first,
				     0, 0 };
		/* the requests it can nest in are all delivered: they began first */
		for (size_t i = 0; i < p->nh; i++)
			if (p->heap[i].a <= c.w && p->heap[i].r >= c.rep && p->heap[i].r > c.last_r)
				c.last_r = p->heap[i].r;
		if (!c.last_r) {
			rc = emit(s, out, &c, NULL);
		} else {
			struct nm_dest *d = dest_of(p, m);
			if (!d || tj_grow((void **)&d->q, &d->capq, d->nq + 1, sizeof(*d->q)) < 0)
				return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
			d->q[d->nq++] = c;
			d->ncalls++;
		}
	}
	if (rc == 0)
		rc = decide_due(s, m->key.node, n->clock, 0, out);
	return rc < 0 ? tj_errf(err, -rc, ALGO ": writing an edge failed") : 0;
}

static int nm_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	struct nest_match *s = st;
	int rc = decide_due(s, 0, 0, 1, out);
	if (rc < 0)
		return tj_errf(err, -rc, ALGO ": writing an edge failed");
	if (s->explain) {
		fprintf(stderr, ALGO ": %llu requests decided, %llu calls matched by nesting, "
			"%llu nested in no request left (no parent); %llu requests without a "
			"response left out\n",
			(unsigned long long)s->requests, (unsigned long long)s->matched,
			(unsigned long long)s->unmatched, (unsigned long long)s->unanswered);
		for (size_t i = 0; i < s->np; i++)
			for (size_t j = 0; j < s->proc[i].nd; j++) {
				const struct nm_proc *p = &s->proc[i];
				const struct nm_dest *d = &p->dest[j];
				fprintf(stderr, ALGO ": process %u/%u -> port %u: %llu calls, "
					"%llu requests, %.2f per request\n", p->node, p->pid,
					d->port, (unsigned long long)d->ncalls,
					(unsigned long long)p->nreq,
					p->nreq ? (double)d->ncalls / (double)p->nreq : 0.0);
			}
	}
	return 0;
}

const struct tj_correlator tj_correlator_nest_match = {
	.abi = TJ_CORRELATOR_ABI,
	.name = ALGO,
	.description = "calls matched to requests by nesting (written after the request, "
		       "answered before its response) and calls per request, oldest "
		       "first: for loops that call and answer from timers",
	.params_help = "explain=0  1: print each call's deciding signal and the counts on stderr\n",
	.open = nm_open,
	.train = NULL,
	.message = nm_message,
	.finish = nm_finish,
	.close = nm_close,
};
