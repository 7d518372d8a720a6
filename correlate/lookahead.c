/* Look-ahead links and the groups they decide; the model is in
 * lookahead.h.
 *
 * Three kinds of state wait on the node's clock (the first-byte time of
 * the messages delivered, which the replay keeps in order per node): a
 * call waiting for its reply to be read, a request waiting for its
 * response, a handler waiting for its thread's next read.  Each has a
 * deadline in a per-node heap, checked on every message of the node, so
 * nothing waits for a message that will not come (a reply lost by the
 * capture, a thread that never reads again). */
#include <stdlib.h>
#include <string.h>
#include "lookahead.h"
#include "../lib/u64map.h"
#include "../lib/util.h"

const char *const tj_la_why_names[TJ_LA_NWHY] = {
	"base", "completion", "continuation", "conflict",
};

#define NONE UINT32_MAX
#define HANDLER_CALLS 8 /* calls of one handler that may be linked */
#define CONFIDENT 0.9   /* score of a call decided by a link */

struct la_call {
	uint32_t gen;
	uint8_t live, has_base, completed;
	uint32_t pid, tid;       /* its writer */
	struct tj_msgkey key;
	uint64_t ts;
	struct tj_edge base;
	uint32_t up, next; /* union-find parent, circular list of the group */
	/* the group's, valid at the root: */
	uint32_t holds;
	uint8_t has_anchor, conflict;
	struct tj_msgkey anchor;
	uint64_t anchor_ts;
};

struct la_handler {
	uint32_t gen;
	uint8_t live;
	uint32_t node, tid;
	uint32_t call, call_gen; /* the call whose reply was read */
	uint8_t sync;            /* that call was synchronous */
	uint32_t proc;           /* its process, in procs */
	uint64_t start;          /* when the reply's last byte was read */
	unsigned nresp;
	uint8_t has_resp;
	struct tj_msgkey resp;   /* the first response's request */
	uint64_t resp_ts;
	uint64_t resp_at;        /* when the response was written */
	unsigned nwrites, resp_widx;
	uint64_t reply_sock;     /* the socket the reply came on */
	size_t ncalls;
	uint32_t calls[HANDLER_CALLS], gens[HANDLER_CALLS];
	unsigned widx[HANDLER_CALLS]; /* each call's place among the handler's writes */
	uint64_t cgap[HANDLER_CALLS]; /* how long after the reply it was written */
	uint8_t csame[HANDLER_CALLS]; /* written on the reply's socket */
};

struct la_req {
	uint32_t gen;
	uint8_t live;
	struct tj_msgkey key;
	uint64_t ts, map_key;
};

enum dl_kind { DL_REPLY, DL_REQ, DL_HANDLER };

struct deadline {
	uint64_t at;
	uint64_t map_key; /* DL_REPLY, DL_REQ: the map entry to drop */
	uint32_t idx, gen;
	uint8_t kind;
};

/* A process's calls whose reply was read: how many were synchronous.  A
 * process whose threads block on their calls (thread per request, worker
 * pools) has nearly all of them so; an event loop only those it made
 * while idle, and there "read nothing else" proves nothing. */
struct la_proc {
	uint64_t sync, async;
	/* its reply handlers that wrote one response: first thing, or later */
	uint64_t resp_first, resp_later;
	/* its calls, and those written in several syscalls with no read
	 * between: requests merged on a pipelined connection */
	uint64_t calls, merged;
};

struct la_node {
	uint32_t id;
	struct deadline *heap;
	size_t n, cap;
};

/* ---- pools: arrays with free lists; an index stays valid until put
 * back, and gen tells a reused slot from the one a reference was taken
 * to.  The free list is as long as the pool, so putting never fails. */

struct pool {
	char *items;
	size_t size, n, cap;
	uint32_t *free;
	size_t nfree;
};

static uint32_t pool_take(struct pool *p)
{
	if (p->nfree)
		return p->free[--p->nfree];
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 64;
		char *it = realloc(p->items, nc * p->size);
		if (!it)
			return NONE;
		p->items = it;
		memset(it + p->cap * p->size, 0, (nc - p->cap) * p->size);
		uint32_t *fr = realloc(p->free, nc * sizeof(*fr));
		if (!fr)
			return NONE;
		p->free = fr;
		p->cap = nc;
	}
	return (uint32_t)p->n++;
}

static void pool_put(struct pool *p, uint32_t i)
{
	p->free[p->nfree++] = i;
}

struct la {
	struct tj_la_opts o;
	tj_la_emit_fn emit;
	void *ctx;
	struct pool callp, hp, reqp; /* of struct la_call, la_handler, la_req */
	struct tj_u64map by_key;   /* call key -> call, until its base arrives */
	struct tj_u64map by_reply; /* (node, sock, reply time) -> call */
	struct tj_u64map by_resp;  /* (node, sock, response time) -> request */
	struct tj_u64map by_thread;/* (node, tid) -> open handler */
	struct tj_u64map node_ix;
	struct tj_u64map by_sync;  /* (node, tid) -> the thread's last call, until it reads */
	struct tj_u64map proc_ix;  /* (node, pid) -> procs */
	struct la_proc *procs;
	size_t nprocs;
	struct la_node *nodes;
	size_t nnodes;
	size_t live_calls;
	struct tj_la_stats st;
};

static struct la_call *C(const struct la *la, uint32_t i)
{
	return (struct la_call *)la->callp.items + i;
}

static struct la_handler *H(const struct la *la, uint32_t i)
{
	return (struct la_handler *)la->hp.items + i;
}

static struct la_req *Q(const struct la *la, uint32_t i)
{
	return (struct la_req *)la->reqp.items + i;
}

static uint64_t h2(uint64_t a, uint64_t b)
{
	return tj_hash64(a ^ tj_hash64(b));
}

static uint64_t sock_time_key(uint32_t node, uint64_t sock, uint64_t ts)
{
	return h2(h2(node, sock), ts);
}

/* ---- per-node deadlines */

/* The element of a growable array that key names in ix, added zeroed the
 * first time: nodes by id, processes by (node, pid). */
static void *keyed_slot(struct tj_u64map *ix, uint64_t key, void **arr, size_t *n,
			size_t size)
{
	int added;
	uint64_t *v = tj_u64map_upsert(ix, key, &added);
	if (!v)
		return NULL;
	if (added) {
		char *p = realloc(*arr, (*n + 1) * size);
		if (!p) {
			tj_u64map_del(ix, key);
			return NULL;
		}
		*arr = p;
		memset(p + *n * size, 0, size);
		*v = (*n)++;
	}
	return (char *)*arr + *v * size;
}

static struct la_node *node_get(struct la *la, uint32_t id)
{
	struct la_node *n = keyed_slot(&la->node_ix, id, (void **)&la->nodes, &la->nnodes,
				       sizeof(*la->nodes));
	if (n)
		n->id = id;
	return n;
}

static int dl_push(struct la_node *n, const struct deadline *d)
{
	if (tj_grow((void **)&n->heap, &n->cap, n->n + 1, sizeof(*n->heap)) < 0)
		return -1;
	size_t i = n->n++;
	while (i > 0 && n->heap[(i - 1) / 2].at > d->at) {
		n->heap[i] = n->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	n->heap[i] = *d;
	return 0;
}

static struct deadline dl_pop(struct la_node *n)
{
	struct deadline top = n->heap[0], last = n->heap[--n->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n->n)
			break;
		if (c + 1 < n->n && n->heap[c + 1].at < n->heap[c].at)
			c++;
		if (n->heap[c].at >= last.at)
			break;
		n->heap[i] = n->heap[c];
		i = c;
	}
	if (n->n)
		n->heap[i] = last;
	return top;
}

/* ---- groups */

static uint32_t find(struct la *la, uint32_t i)
{
	while (C(la, i)->up != i) {
		C(la, i)->up = C(la, C(la, i)->up)->up;
		i = C(la, i)->up;
	}
	return i;
}

static void set_anchor(struct la_call *r, const struct tj_msgkey *k, uint64_t ts)
{
	if (r->has_anchor) {
		if (!tj_msgkey_eq(&r->anchor, k))
			r->conflict = 1;
		return;
	}
	r->has_anchor = 1;
	r->anchor = *k;
	r->anchor_ts = ts;
}

static void unite(struct la *la, uint32_t a, uint32_t b)
{
	uint32_t ra = find(la, a), rb = find(la, b);
	if (ra == rb)
		return;
	struct la_call *A = C(la, ra), *B = C(la, rb);
	B->up = ra;
	A->holds += B->holds;
	if (B->has_anchor)
		set_anchor(A, &B->anchor, B->anchor_ts);
	A->conflict |= B->conflict;
	uint32_t t = A->next; /* splice the two circular lists */
	A->next = B->next;
	B->next = t;
}

static int emit_one(struct la *la, struct la_call *c, const struct la_call *r)
{
	struct tj_edge e = c->base;
	enum tj_la_why why = TJ_LA_BASE;
	if (!c->has_base) { /* the base never answered it */
		memset(&e, 0, sizeof(e));
		e.child = c->key;
	}
	if (r->conflict) {
		why = TJ_LA_CONFLICT;
	} else if (r->has_anchor) {
		/* a possible parent only: same node, arrived before the call */
		if (r->anchor.node == c->key.node && r->anchor_ts < c->ts) {
			why = c->completed ? TJ_LA_COMPLETION : TJ_LA_CONTINUATION;
			int same = e.has_parent && tj_msgkey_eq(&e.parent, &r->anchor);
			e.parent = r->anchor;
			e.has_parent = 1;
			e.score = same && c->base.score > CONFIDENT ? c->base.score : CONFIDENT;
		} else {
			la->st.invalid_anchor++;
		}
	}
	la->st.decided[why]++;
	if (c->has_base ? (e.has_parent != c->base.has_parent ||
			   (e.has_parent && !tj_msgkey_eq(&e.parent, &c->base.parent)))
			: e.has_parent)
		la->st.changed[why]++;
	if (!c->has_base && !e.has_parent)
		return 0; /* the host answers it as unanswered */
	return la->emit(la->ctx, &e, &c->base, why);
}

/* Every member of the group rooted at r: its edge out, its slot freed. */
static int decide(struct la *la, uint32_t r)
{
	struct la_call root = *C(la, r);
	uint32_t i = r;
	int rc = 0;
	do {
		struct la_call *c = C(la, i);
		uint32_t next = c->next;
		if (rc == 0 && emit_one(la, c, &root) < 0)
			rc = -1;
		if (c->has_base == 0) {
			uint64_t *v = tj_u64map_get(&la->by_key, tj_msgkey_hash(&c->key));
			if (v && *v == i)
				tj_u64map_del(&la->by_key, tj_msgkey_hash(&c->key));
		}
		c->live = 0;
		c->gen++;
		la->live_calls--;
		pool_put(&la->callp, i);
		i = next;
	} while (i != r);
	return rc;
}

static int release(struct la *la, uint32_t i)
{
	uint32_t r = find(la, i);
	if (--C(la, r)->holds == 0)
		return decide(la, r);
	return 0;
}

static int fail(int rc, struct tj_err *err)
{
	if (rc == -2)
		return tj_errf(err, TJ_E_NOMEM, "lookahead: out of memory");
	return tj_errf(err, TJ_E_IO, "lookahead: writing an edge failed");
}

/* ---- handlers */

static uint64_t thread_key(uint32_t node, uint32_t tid)
{
	return h2(node, tid);
}

static struct la_proc *proc_get(struct la *la, uint32_t node, uint32_t pid)
{
	return keyed_slot(&la->proc_ix, h2(node, pid), (void **)&la->procs, &la->nprocs,
			  sizeof(*la->procs));
}

/* Does the process pipeline its calls (several outstanding on one
 * connection)?  Then the message after a call on its connection is an
 * older call's reply as often as not, and no link is causal.  Merged
 * requests are the fingerprint: a call message of several write
 * syscalls, by the share of its calls seen so far beyond 1 - sync_share. */
static int pipelining(const struct la *la, const struct la_proc *p)
{
	return p->merged / (p->calls + 1.0) > 1 - la->o.sync_share;
}

/* Are the process's calls synchronous, by the share seen so far? */
static int blocking(const struct la *la, const struct la_handler *h)
{
	const struct la_proc *p = &la->procs[h->proc];
	return !pipelining(la, p) &&
	       (p->sync + 1.0) / (p->sync + p->async + 2.0) >= la->o.sync_share;
}

/* Does the process answer from the handler that read the last reply (an
 * event loop such as nginx's), rather than later, from a timer or another
 * event (then the write after a reply is whatever came next)?  Seen as
 * responses written first thing in a reply's handler, by the share so far. */
static int answers_first(const struct la *la, const struct la_handler *h)
{
	const struct la_proc *p = &la->procs[h->proc];
	return !pipelining(la, p) &&
	       (p->resp_first + 1.0) / (p->resp_first + p->resp_later + 2.0) >= la->o.sync_share;
}

/* Does the handler's k-th call continue the request of the call whose
 * reply it read?  Only if that call was synchronous, and only the
 * handler's first write: an event loop's writes after a reply may be a
 * timer's or the next queued request's on the connection the reply freed
 * (ASYNC.md, the link table, measured with links=all). */
static int continues(const struct la *la, const struct la_handler *h, size_t k)
{
	/* A FIFO hand-off: a loop thread that read other things while its call
	 * was out (requests waiting) and reads the reply itself writes, on the
	 * connection the reply frees, the oldest waiting request's call, not
	 * the reply's request's next one (an M:N runtime's goroutine that
	 * continues on another OS thread is not a hand-off)
	 * (links=all: 0 of 4646 such links right on i15k-tune, bench/lookahead-links.sh). */
	if (la->o.links_from == TJ_LA_ALL)
		return !(la->o.no_handoff && h->csame[k] && !h->sync &&
			 C(la, h->call)->tid == h->tid);
	if (h->widx[k] != 0)
		return 0;
	return h->sync && blocking(la, h);
}

/* The thread's handler ends: its links are made, its holds released. */
static int handler_end(struct la *la, uint32_t hi)
{
	struct la_handler *h = H(la, hi);
	if (!h->live)
		return 0;
	uint64_t tk = thread_key(h->node, h->tid);
	uint64_t *v = tj_u64map_get(&la->by_thread, tk);
	if (v && *v == hi)
		tj_u64map_del(&la->by_thread, tk);
	int x_live = C(la, h->call)->live && C(la, h->call)->gen == h->call_gen;
	if (h->nresp == 1) {
		la->procs[h->proc].resp_first += h->resp_widx == 0;
		la->procs[h->proc].resp_later += h->resp_widx != 0;
	}
	if (x_live) {
		if (h->nresp == 1 && h->has_resp &&
		    ((h->sync && blocking(la, h)) || (h->resp_widx == 0 && answers_first(la, h)) ||
		     la->o.links_from == TJ_LA_ALL)) {
			la->st.completions++;
			if (la->o.links) {
				char a[TJ_MSGKEY_STRLEN], b[TJ_MSGKEY_STRLEN];
				fprintf(la->o.links, "lookahead: link completion %s %s "
					"sync=%d idx=%u gap=%llu\n",
					tj_msgkey_format(&C(la, h->call)->key, a),
					tj_msgkey_format(&h->resp, b), h->sync, h->resp_widx,
					(unsigned long long)(h->resp_at - h->start));
			}
			C(la, h->call)->completed = 1;
			set_anchor(C(la, find(la, h->call)), &h->resp, h->resp_ts);
		} else if (h->nresp > 1) {
			la->st.multi_response++;
		}
	}
	int rc = 0;
	for (size_t k = 0; k < h->ncalls; k++) {
		uint32_t y = h->calls[k];
		if (!C(la, y)->live || C(la, y)->gen != h->gens[k])
			continue;
		if (x_live && h->nresp == 0 && continues(la, h, k)) {
			la->st.continuations++;
			if (la->o.links) {
				char a[TJ_MSGKEY_STRLEN], b[TJ_MSGKEY_STRLEN];
				fprintf(la->o.links, "lookahead: link continuation %s %s "
					"sync=%d idx=%u gap=%llu same=%d thread=%d\n",
					tj_msgkey_format(&C(la, h->call)->key, a),
					tj_msgkey_format(&C(la, y)->key, b), h->sync, h->widx[k],
					(unsigned long long)h->cgap[k], h->csame[k],
					C(la, h->call)->tid == h->tid);
			}
			unite(la, h->call, y);
		}
	}
	for (size_t k = 0; k < h->ncalls && rc == 0; k++) {
		uint32_t y = h->calls[k];
		if (C(la, y)->live && C(la, y)->gen == h->gens[k])
			rc = release(la, y);
	}
	if (rc == 0 && x_live)
		rc = release(la, h->call);
	h->live = 0;
	h->gen++;
	pool_put(&la->hp, hi);
	return rc;
}

/* Deadlines at or before `now` on node n fire. */
static int expire(struct la *la, struct la_node *n, uint64_t now)
{
	while (n->n && n->heap[0].at < now) {
		struct deadline d = dl_pop(n);
		int rc = 0;
		if (d.kind == DL_HANDLER) {
			if (H(la, d.idx)->live && H(la, d.idx)->gen == d.gen)
				rc = handler_end(la, d.idx);
		} else if (d.kind == DL_REPLY) {
			uint64_t *v = tj_u64map_get(&la->by_reply, d.map_key);
			if (v && *v == d.idx && C(la, d.idx)->live &&
			    C(la, d.idx)->gen == d.gen) {
				tj_u64map_del(&la->by_reply, d.map_key);
				rc = release(la, d.idx);
			}
		} else {
			struct la_req *q = Q(la, d.idx);
			if (q->live && q->gen == d.gen) {
				tj_u64map_del(&la->by_resp, q->map_key);
				q->live = 0;
				q->gen++;
				pool_put(&la->reqp, d.idx);
			}
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static struct la_handler *thread_handler(struct la *la, uint32_t node, uint32_t tid,
					 uint32_t *hi)
{
	uint64_t *v = tj_u64map_get(&la->by_thread, thread_key(node, tid));
	if (!v)
		return NULL;
	*hi = (uint32_t)*v;
	return H(la, *hi)->live ? H(la, *hi) : NULL;
}

/* ---- messages */

static int on_request(struct la *la, struct la_node *n, const struct tj_message *m)
{
	if (!m->ts_reply)
		return 0;
	uint32_t qi;
	qi = pool_take(&la->reqp);
	if (qi == NONE)
		return -2;
	struct la_req *q = Q(la, qi);
	q->live = 1;
	q->key = m->key;
	q->ts = m->ts_first;
	q->map_key = sock_time_key(m->key.node, m->key.sock, m->ts_reply);
	if (tj_u64map_put(&la->by_resp, q->map_key, qi) < 0)
		return -2;
	/* the response begins at ts_reply: delivered by the time the clock passes it */
	struct deadline d = { m->ts_reply, q->map_key, qi, q->gen, DL_REQ };
	return dl_push(n, &d) < 0 ? -2 : 0;
}

static int on_call(struct la *la, struct la_node *n, const struct tj_message *m)
{
	uint32_t ci;
	ci = pool_take(&la->callp);
	if (ci == NONE)
		return -2;
	struct la_call *c = C(la, ci);
	uint32_t gen = c->gen;
	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->live = 1;
	c->key = m->key;
	c->pid = m->pid;
	c->tid = m->tid_first;
	struct la_proc *pr = proc_get(la, m->key.node, m->pid);
	if (!pr)
		return -2;
	pr->calls++;
	pr->merged += m->nsyscalls > 1;
	c->ts = m->ts_first;
	c->up = c->next = ci;
	c->holds = 1; /* its base decision */
	la->live_calls++;
	la->st.calls++;
	if (la->live_calls > la->st.peak_pending)
		la->st.peak_pending = la->live_calls;
	if (tj_u64map_put(&la->by_key, tj_msgkey_hash(&m->key), ci) < 0)
		return -2;
	if (m->ts_reply) { /* wait for its reply to be read */
		uint64_t k = sock_time_key(m->key.node, m->key.sock, m->ts_reply);
		c->holds++;
		if (tj_u64map_put(&la->by_reply, k, ci) < 0)
			return -2;
		struct deadline d = { m->ts_reply, k, ci, c->gen, DL_REPLY };
		if (dl_push(n, &d) < 0)
			return -2;
	}
	if (m->tid_first && tj_u64map_put(&la->by_sync, thread_key(m->key.node, m->tid_first),
					  ((uint64_t)c->gen << 32) | ci) < 0)
		return -2;
	uint32_t hi;
	struct la_handler *h = m->tid_first ? thread_handler(la, m->key.node, m->tid_first, &hi)
					    : NULL;
	if (h && h->start <= m->ts_first && h->ncalls < HANDLER_CALLS) {
		h->calls[h->ncalls] = ci;
		h->widx[h->ncalls] = h->nwrites;
		h->cgap[h->ncalls] = m->ts_first - h->start;
		h->csame[h->ncalls] = m->key.sock == h->reply_sock;
		h->gens[h->ncalls++] = c->gen;
		c->holds++;
	}
	return 0;
}

static int on_response(struct la *la, const struct tj_message *m)
{
	uint64_t k = sock_time_key(m->key.node, m->key.sock, m->ts_first);
	uint64_t *v = tj_u64map_get(&la->by_resp, k);
	struct la_req *q = NULL;
	uint32_t qi = 0;
	if (v) {
		qi = (uint32_t)*v;
		q = Q(la, qi);
		tj_u64map_del(&la->by_resp, k);
	}
	uint32_t hi;
	struct la_handler *h = m->tid_first ? thread_handler(la, m->key.node, m->tid_first, &hi)
					    : NULL;
	if (h && h->start <= m->ts_first) {
		if (h->nresp == 0)
			h->resp_widx = h->nwrites;
		if (h->nresp++ == 0 && q) {
			h->has_resp = 1;
			h->resp = q->key;
			h->resp_ts = q->ts;
			h->resp_at = m->ts_first;
		}
	}
	if (q) { /* its deadline finds it dead and frees nothing twice */
		q->live = 0;
		q->gen++;
		pool_put(&la->reqp, qi);
	}
	return 0;
}

/* A read: the reading thread's handler ends; a reply starts a new one. */
static int on_read(struct la *la, struct la_node *n, const struct tj_message *m)
{
	uint32_t hi;
	int rc = 0;
	/* the thread's last call is synchronous if this read is its reply */
	uint64_t last_call = UINT64_MAX, *lc;
	if (m->tid_first &&
	    (lc = tj_u64map_get(&la->by_sync, thread_key(m->key.node, m->tid_first)))) {
		last_call = *lc;
		tj_u64map_del(&la->by_sync, thread_key(m->key.node, m->tid_first));
	}
	struct la_handler *h = m->tid_first ? thread_handler(la, m->key.node, m->tid_first, &hi)
					    : NULL;
	if (h && h->start < m->ts_first && (rc = handler_end(la, hi)) < 0)
		return rc;
	if (m->role == TJ_ROLE_SERVER && m->is_request)
		return on_request(la, n, m);
	if (m->role != TJ_ROLE_CLIENT)
		return 0;
	uint64_t k = sock_time_key(m->key.node, m->key.sock, m->ts_first);
	uint64_t *v = tj_u64map_get(&la->by_reply, k);
	if (!v)
		return 0;
	uint32_t ci = (uint32_t)*v;
	tj_u64map_del(&la->by_reply, k);
	if (!m->tid_last) /* no thread: nothing to link */
		return release(la, ci);
	if ((h = thread_handler(la, m->key.node, m->tid_last, &hi)) &&
	    (rc = handler_end(la, hi)) < 0)
		return rc;
	hi = pool_take(&la->hp);
	if (hi == NONE)
		return -2;
	h = H(la, hi);
	uint32_t gen = h->gen;
	memset(h, 0, sizeof(*h));
	h->gen = gen;
	h->live = 1;
	h->node = m->key.node;
	h->tid = m->tid_last;
	h->call = ci;
	h->call_gen = C(la, ci)->gen;
	h->sync = last_call == (((uint64_t)h->call_gen << 32) | ci);
	la->st.sync_handlers += h->sync;
	struct la_proc *pr = proc_get(la, m->key.node, C(la, ci)->pid);
	if (!pr)
		return -2;
	h->proc = (uint32_t)(pr - la->procs);
	pr->sync += h->sync;
	pr->async += !h->sync;
	h->start = m->ts_last;
	h->reply_sock = m->key.sock;
	la->st.handlers++;
	/* the reply hold becomes the handler's */
	if (tj_u64map_put(&la->by_thread, thread_key(h->node, h->tid), hi) < 0)
		return -2;
	struct deadline d = { m->ts_last + la->o.horizon_ns, 0, hi, h->gen, DL_HANDLER };
	return dl_push(n, &d) < 0 ? -2 : 0;
}

int tj_la_message(struct tj_la *la_, const struct tj_message *m, struct tj_err *err)
{
	struct la *la = (struct la *)la_;
	struct la_node *n = node_get(la, m->key.node);
	if (!n)
		return fail(-2, err);
	int rc = expire(la, n, m->ts_first);
	if (rc == 0) {
		if (m->key.dir == TJ_DIR_IN)
			rc = on_read(la, n, m);
		else if (m->role == TJ_ROLE_CLIENT && m->is_request)
			rc = on_call(la, n, m);
		else if (m->role == TJ_ROLE_SERVER)
			rc = on_response(la, m);
		uint32_t hi;
		struct la_handler *h;
		if (rc == 0 && m->key.dir == TJ_DIR_OUT && m->tid_first &&
		    (h = thread_handler(la, m->key.node, m->tid_first, &hi)) &&
		    h->start <= m->ts_first)
			h->nwrites++;
	}
	return rc < 0 ? fail(rc, err) : 0;
}

int tj_la_base(struct tj_la *la_, const struct tj_edge *base, struct tj_err *err)
{
	struct la *la = (struct la *)la_;
	uint64_t hk = tj_msgkey_hash(&base->child);
	uint64_t *v = tj_u64map_get(&la->by_key, hk);
	if (!v || !tj_msgkey_eq(&C(la, (uint32_t)*v)->key, &base->child)) {
		la->st.decided[TJ_LA_BASE]++;
		return la->emit(la->ctx, base, base, TJ_LA_BASE) < 0 ? fail(-1, err) : 0;
	}
	uint32_t ci = (uint32_t)*v;
	tj_u64map_del(&la->by_key, hk);
	C(la, ci)->base = *base;
	C(la, ci)->has_base = 1;
	int rc = release(la, ci);
	return rc < 0 ? fail(rc, err) : 0;
}

int tj_la_finish(struct tj_la *la_, struct tj_err *err)
{
	struct la *la = (struct la *)la_;
	int rc = 0;
	for (size_t i = 0; i < la->hp.n && rc == 0; i++)
		if (H(la, i)->live)
			rc = handler_end(la, (uint32_t)i);
	/* every hold left (bases never given, replies never read) goes */
	for (size_t i = 0; i < la->callp.n && rc == 0; i++) {
		if (!C(la, i)->live || C(la, i)->up != i)
			continue;
		rc = decide(la, (uint32_t)i);
	}
	return rc < 0 ? fail(rc, err) : 0;
}

#define NMAPS 7
static void maps(struct la *la, struct tj_u64map *m[NMAPS])
{
	m[0] = &la->by_key;
	m[1] = &la->by_reply;
	m[2] = &la->by_resp;
	m[3] = &la->by_thread;
	m[4] = &la->node_ix;
	m[5] = &la->by_sync;
	m[6] = &la->proc_ix;
}

int tj_la_new(struct tj_la **out, const struct tj_la_opts *o, tj_la_emit_fn emit,
	      void *ctx, struct tj_err *err)
{
	struct la *la = calloc(1, sizeof(*la));
	if (!la)
		return tj_errf(err, TJ_E_NOMEM, "lookahead: out of memory");
	la->o = *o;
	la->emit = emit;
	la->ctx = ctx;
	la->callp.size = sizeof(struct la_call);
	la->hp.size = sizeof(struct la_handler);
	la->reqp.size = sizeof(struct la_req);
	struct tj_u64map *m[NMAPS];
	maps(la, m);
	for (size_t i = 0; i < NMAPS; i++)
		tj_u64map_init(m[i]);
	*out = (struct tj_la *)la;
	return 0;
}

void tj_la_free(struct tj_la *la_)
{
	struct la *la = (struct la *)la_;
	if (!la)
		return;
	struct pool *ps[] = { &la->callp, &la->hp, &la->reqp };
	for (size_t i = 0; i < 3; i++) {
		free(ps[i]->items);
		free(ps[i]->free);
	}
	for (size_t i = 0; i < la->nnodes; i++)
		free(la->nodes[i].heap);
	free(la->nodes);
	struct tj_u64map *m[NMAPS];
	maps(la, m);
	for (size_t i = 0; i < NMAPS; i++)
		tj_u64map_free(m[i]);
	free(la->procs);
	free(la);
}

const struct tj_la_stats *tj_la_stats(const struct tj_la *la_)
{
	return &((const struct la *)la_)->st;
}
