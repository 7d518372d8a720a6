/* The `issue-fifo` correlator: a client pool with a FIFO wait queue per
 * destination (Node's http.Agent, most connection pools with a cap).
 *
 * The mechanism (correlate/ASYNC.md, "Node.js agents"): a handler *issues* a
 * call when it runs (a request's handler, or the handler of a reply that
 * continues the request); the pool writes it at once if a connection to
 * that destination is idle, else it waits in the destination's queue and
 * is written, oldest issue first, from the handler of whichever reply
 * frees a connection to that destination: the handler of *another*
 * request's reply.  So every call is one of three kinds, told apart by
 * the writing thread's reads:
 *
 *  - direct: the last read was a request, or a reply from another
 *    destination (or from this one while nothing waits): the call
 *    continues that read's request (the request itself, or the parent of
 *    the call the reply answers);
 *  - fifo: the last read was a reply from this very destination and
 *    issues wait: the call is the head of the destination's FIFO (of the
 *    freed connection's pool: handler kinds seen only on other
 *    connections of that address wait for theirs);
 *  - connect: the first call of a new connection went out when the
 *    connect completed: the handler that ran at the connect issued it.
 *
 * Which handlers issue which calls is learned per process from the log,
 * never from labels: a handler's *kind* is what it read (a request on a
 * port, or a reply from destination e) and what its request had issued
 * so far (a count per destination); a handler that wrote to destination
 * d directly says "this kind issues d", one that wrote nothing to d while
 * a connection to d stayed idle says "it does not", and one that found
 * every connection to d busy says nothing (censored).  A censored handler
 * whose kind issues d in most of its uncensored observations queued a
 * call: its request joins d's FIFO, at its handler's read time.  One
 * whose kind has no evidence yet (the first requests, a destination
 * whose first connection is still opening) is held until it has.  Heads
 * whose request already
 * answered are dropped (they cannot be parents), so a wrong guess heals
 * when that request ends.
 *
 * Streaming: every call is decided when it arrives (the replay delivers
 * a node's messages by first byte, each after its reply began).  Memory:
 * requests in flight, connections, threads and FIFOs; requests and
 * threads silent for `expire` seconds of their node's time are
 * forgotten, connections when a reply ends by close or idles out. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "../lib/u64map.h"
#include "../lib/util.h"

#define ALGO "issue-fifo"
#define MAXD 16     /* destinations modelled per process; more: direct only */
#define MAXK 256    /* handler kinds learned per process */
#define MAXS 64     /* connections tracked per destination */
#define HIST 8      /* reads remembered per thread */
#define UNSURE 64   /* undecided issues held per destination */
#define HLOG 64     /* handlers remembered per process */
#define SWEEP 4096  /* messages between sweeps of silent threads */
#define SIGCAP 3    /* issued counts per destination saturate here */

enum sig { SIG_NONE, SIG_DIRECT, SIG_FIFO, SIG_CONNECT, SIG_N };
static const char *const sig_name[SIG_N] = { "none", "direct", "fifo", "connect" };

struct req {
	struct tj_msgkey key;
	uint64_t ts;
	int done;                 /* its response was written */
	uint8_t issued[MAXD];     /* calls issued per destination, capped */
};

struct pend { struct tj_msgkey key; uint64_t ts; int kind; };

struct dest {
	uint8_t raddr[16];
	uint16_t rport;
	uint64_t sock[MAXS];      /* connections to it (0 = free slot) */
	/* which handler kinds wrote on which connection themselves: a pool
	 * per call site (several agents to one address) shows as kinds
	 * that never share a connection */
	uint8_t kseen[MAXS][MAXK / 8];
	uint8_t kany[MAXK / 8];
	struct pend *q;           /* FIFO in issue order: q[head..n) */
	/* censored handlers of kinds not yet seen to issue or not to issue
	 * d (the first requests, while every connection is busy or still
	 * connecting): they join q, in issue order, once their kind is */
	struct pend unsure[UNSURE];
	unsigned nunsure;
	size_t head, n, cap;
	uint64_t count[SIG_N];    /* calls decided by each signal */
};

struct kind {
	uint64_t hash;
	int reply_from;           /* destination index, -1: a request */
	uint16_t lport;           /* request's port */
	uint8_t issued[MAXD];
	uint32_t pos[MAXD], neg[MAXD];
};

struct proc {
	uint32_t node, pid;
	struct dest d[MAXD];
	unsigned nd;
	struct kind *k;           /* MAXK, allocated on first use */
	unsigned nk;
	struct req **reqs;        /* in arrival order: reqs[rhead..nreq) */
	size_t rhead, nreq, rcap;
	uint64_t clock;
	uint64_t other_dest;      /* calls to destinations past MAXD */
	/* the last HLOG handlers that ended: a destination first seen now
	 * (its first connection) was censored for those after its connect */
	struct pend hlog[HLOG];
	unsigned nhlog;
};

/* What a thread last read, and what its handler has written since. */
struct thr {
	int has_read;
	struct proc *p;
	int reply_from;           /* -1: a request */
	uint16_t lport;
	uint64_t ts;              /* of the read: the issue time of what it queued */
	int has_ctx;              /* the read's request is known */
	struct tj_msgkey ctx;
	int kind;                 /* index in p->k, -1: none */
	uint8_t idle[MAXD];       /* idle connections per destination at the read */
	uint8_t wrote[MAXD], direct[MAXD], fifo[MAXD];
	/* its last HIST reads, for a call written when its connection
	 * opened: the handler that issued it ran before the connect */
	struct { uint64_t ts; int has_ctx, kind; struct tj_msgkey ctx; } hist[HIST];
	unsigned nhist;
};

/* A client connection: its destination and its last call. */
struct csock {
	struct proc *p;
	int dest;                 /* -1: past MAXD */
	uint64_t ts_reply;        /* of its last call, 0: none yet or none seen */
	int busy;                 /* a call was written and its reply not seen */
	int has_parent;
	struct tj_msgkey parent;  /* of its last call */
};

struct ifo {
	uint64_t expire_ns;
	int explain;
	struct tj_u64map procs;   /* node << 32 | pid -> struct proc * */
	struct tj_u64map thrs;    /* node << 32 | tid -> struct thr * */
	struct tj_u64map socks;   /* hash(node, sock) -> struct csock * */
	struct tj_u64map ssock;   /* hash(node, sock) of a server socket -> its open request's struct req * */
	struct tj_u64map reqs;    /* hash(request key) -> struct req * */
	uint64_t count[SIG_N];
	uint64_t nmsg;            /* messages seen: threads are swept every SWEEP */
	uint64_t *gone;           /* the sweep's list of threads to forget */
	size_t ngone, capgone;
};

static const char *const known_params[] = { "expire", "explain", NULL };

static int ifo_open(void **stp, const struct tj_params *p, struct tj_err *err)
{
	double expire;
	int ex = 0;
	int rc = tj_params_check(p, known_params, ALGO, err);
	if (rc)
		return rc;
	if ((rc = tj_param_double(p, "expire", 60.0, &expire, err))) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		return tj_errf(err, TJ_E_ARG, ALGO ": %s", msg);
	}
	if (!(expire > 0 && expire < 1e9))
		return tj_errf(err, TJ_E_ARG, ALGO ": param expire=%s: seconds > 0 expected",
			       tj_param_str(p, "expire", ""));
	if ((rc = tj_param_flag(p, "explain", 0, ALGO, &ex, err)))
		return rc;
	struct ifo *s = calloc(1, sizeof(*s));
	if (!s)
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	s->expire_ns = (uint64_t)(expire * 1e9);
	s->explain = ex == 1;
	tj_u64map_init(&s->procs);
	tj_u64map_init(&s->thrs);
	tj_u64map_init(&s->socks);
	tj_u64map_init(&s->ssock);
	tj_u64map_init(&s->reqs);
	*stp = s;
	return 0;
}

/* The struct keyed by id in map, made zeroed when absent. */
static void *get_or_new(struct tj_u64map *map, uint64_t id, size_t size)
{
	int added;
	uint64_t *slot = tj_u64map_upsert(map, id, &added);
	if (!slot)
		return NULL;
	if (added) {
		void *v = calloc(1, size);
		if (!v) {
			tj_u64map_del(map, id);
			return NULL;
		}
		*slot = (uint64_t)(uintptr_t)v;
	}
	return (void *)(uintptr_t)*slot;
}

static void *lookup(const struct tj_u64map *map, uint64_t id)
{
	uint64_t *slot = tj_u64map_get(map, id);
	return slot ? (void *)(uintptr_t)*slot : NULL;
}

static uint64_t sock_id(uint32_t node, uint64_t sock)
{
	return tj_hash64(((uint64_t)node << 40) ^ tj_hash64(sock));
}

static void hold_unsure(struct dest *d, const struct tj_msgkey *key, uint64_t ts, int k);

/* The destination index of a call's remote end; -1 past MAXD. */
static int dest_of(struct proc *p, const struct tj_message *m)
{
	for (unsigned i = 0; i < p->nd; i++)
		if (p->d[i].rport == m->rport && !memcmp(p->d[i].raddr, m->raddr, 16))
			return (int)i;
	if (p->nd == MAXD) {
		p->other_dest++;
		return -1;
	}
	struct dest *d = &p->d[p->nd];
	memcpy(d->raddr, m->raddr, 16);
	d->rport = m->rport;
	/* handlers that ended after its first connect opened found no
	 * connection to it: whether they issued a call to it is open */
	uint64_t opened = m->ts_sock_open ? m->ts_sock_open : m->ts_first;
	for (unsigned i = 0; i < HLOG && i < p->nhlog; i++) {
		const struct pend *h = &p->hlog[(p->nhlog - 1 - i) % HLOG];
		if (h->ts > opened && h->kind >= 0)
			hold_unsure(d, &h->key, h->ts, h->kind);
	}
	return (int)p->nd++;
}

static int track_sock(struct dest *d, uint64_t sock)
{
	for (unsigned i = 0; i < MAXS; i++)
		if (d->sock[i] == sock)
			return 0;
	for (unsigned i = 0; i < MAXS; i++)
		if (!d->sock[i]) {
			d->sock[i] = sock;
			return 0;
		}
	return 0; /* past MAXS connections: the others count as busy */
}

static void untrack_sock(struct dest *d, uint64_t sock)
{
	for (unsigned i = 0; i < MAXS; i++)
		if (d->sock[i] == sock) {
			d->sock[i] = 0;
			memset(d->kseen[i], 0, sizeof(d->kseen[i]));
		}
}

static int slot_of(const struct dest *d, uint64_t sock)
{
	for (unsigned i = 0; i < MAXS; i++)
		if (d->sock[i] == sock)
			return (int)i;
	return -1;
}

#define BIT(set, k) ((set)[(unsigned)(k) / 8] & (1u << ((unsigned)(k) % 8)))

/* Kind k wrote a call on connection slot j itself. */
static void saw_kind(struct dest *d, int j, int k)
{
	if (j < 0 || k < 0)
		return;
	d->kseen[j][k / 8] |= (uint8_t)(1u << (k % 8));
	d->kany[k / 8] |= (uint8_t)(1u << (k % 8));
}

/* May an issue of kind k go out on connection slot j?  Unless k was seen
 * on other connections only and j carried only other kinds: then they
 * are two pools. */
static int same_pool(const struct dest *d, int j, int k)
{
	if (j < 0 || k < 0 || !BIT(d->kany, k) || BIT(d->kseen[j], k))
		return 1;
	for (unsigned b = 0; b < MAXK / 8; b++)
		if (d->kseen[j][b])
			return 0;
	return 1;
}

/* Idle connections to each destination when a thread read at time ts. */
static void snapshot_idle(struct ifo *s, struct proc *p, uint64_t ts, int kind, uint8_t *idle)
{
	for (unsigned i = 0; i < p->nd; i++) {
		unsigned n = 0;
		for (unsigned j = 0; j < MAXS; j++) {
			if (!p->d[i].sock[j] || !same_pool(&p->d[i], (int)j, kind))
				continue;
			struct csock *c = lookup(&s->socks, sock_id(p->node, p->d[i].sock[j]));
			if (c && (!c->busy || (c->ts_reply && c->ts_reply <= ts)))
				n++;
		}
		idle[i] = n > 255 ? 255 : (uint8_t)n;
	}
}

/* The kind of a handler: what it read and what its request had issued. */
static int kind_of(struct proc *p, int reply_from, uint16_t lport, const struct req *r)
{
	uint64_t h = tj_hash64((uint64_t)(reply_from + 2) << 16 | (reply_from < 0 ? lport : 0));
	for (unsigned i = 0; i < MAXD; i++)
		h = tj_hash64(h ^ ((uint64_t)r->issued[i] << 8 | i));
	for (unsigned i = 0; i < p->nk; i++)
		if (p->k[i].hash == h)
			return (int)i;
	if (!p->k && !(p->k = calloc(MAXK, sizeof(*p->k))))
		return -1;
	if (p->nk == MAXK)
		return -1;
	struct kind *k = &p->k[p->nk];
	k->hash = h;
	k->reply_from = reply_from;
	k->lport = reply_from < 0 ? lport : 0;
	memcpy(k->issued, r->issued, MAXD);
	return (int)p->nk++;
}

/* Queue an issue at its place in issue order (the handler's read time). */
static int push_pending(struct dest *d, const struct tj_msgkey *key, uint64_t ts, int kind)
{
	if (d->head && d->head == d->n) {
		d->head = d->n = 0;
	} else if (d->n == d->cap && d->head > d->cap / 2) {
		memmove(d->q, d->q + d->head, (d->n - d->head) * sizeof(*d->q));
		d->n -= d->head;
		d->head = 0;
	}
	if (tj_grow((void **)&d->q, &d->cap, d->n + 1, sizeof(*d->q)))
		return -TJ_E_NOMEM;
	size_t i = d->n++;
	while (i > d->head && d->q[i - 1].ts > ts) {
		d->q[i] = d->q[i - 1];
		i--;
	}
	d->q[i].key = *key;
	d->q[i].ts = ts;
	d->q[i].kind = kind;
	return 0;
}

/* Kind k's evidence on destination di changed: its undecided issues
 * join the queue (it issues di) or are forgotten (it does not). */
static int settle_unsure(struct ifo *s, struct proc *p, int k, unsigned di)
{
	struct dest *d = &p->d[di];
	const struct kind *kk = &p->k[k];
	if (kk->pos[di] == kk->neg[di])
		return 0;
	unsigned keep = 0;
	for (unsigned i = 0; i < d->nunsure; i++) {
		struct pend *u = &d->unsure[i];
		if (u->kind != k) {
			d->unsure[keep++] = *u;
			continue;
		}
		struct req *r = lookup(&s->reqs, tj_msgkey_hash(&u->key));
		if (kk->pos[di] > kk->neg[di] && r && tj_msgkey_eq(&r->key, &u->key) && !r->done) {
			int rc = push_pending(d, &u->key, u->ts, u->kind);
			if (rc)
				return rc;
			if (r->issued[di] < SIGCAP)
				r->issued[di]++;
		}
	}
	d->nunsure = keep;
	return 0;
}

static void hold_unsure(struct dest *d, const struct tj_msgkey *key, uint64_t ts, int k)
{
	for (unsigned i = 0; i < d->nunsure; i++)
		if (d->unsure[i].ts == ts && tj_msgkey_eq(&d->unsure[i].key, key))
			return; /* that handler is held already */
	if (d->nunsure == UNSURE) { /* the oldest gives way */
		memmove(d->unsure, d->unsure + 1, (UNSURE - 1) * sizeof(*d->unsure));
		d->nunsure--;
	}
	d->unsure[d->nunsure].key = *key;
	d->unsure[d->nunsure].ts = ts;
	d->unsure[d->nunsure++].kind = k;
}

/* A thread's handler ended (its next read, or the end): what it tells
 * about its kind, and the calls it must have queued. */
static int end_handler(struct ifo *s, struct thr *t)
{
	if (!t->has_read || !t->has_ctx || t->kind < 0)
		return 0;
	struct proc *p = t->p;
	struct req *r = lookup(&s->reqs, tj_msgkey_hash(&t->ctx));
	if (!r || !tj_msgkey_eq(&r->key, &t->ctx))
		return 0;
	struct kind *k = &p->k[t->kind];
	struct pend *h = &p->hlog[p->nhlog++ % HLOG];
	h->key = r->key;
	h->ts = t->ts;
	h->kind = t->kind;
	for (unsigned d = 0; d < p->nd; d++) {
		unsigned wrote = t->wrote[d];
		int rc = 0;
		if (t->direct[d]) {
			k->pos[d]++;
			rc = settle_unsure(s, p, t->kind, d);
		} else if (t->idle[d] > wrote) {
			k->neg[d]++; /* a connection stayed idle: nothing was issued */
			rc = settle_unsure(s, p, t->kind, d);
		} else if (r->done) {
			continue;
		} else if (k->pos[d] > k->neg[d]) {
			rc = push_pending(&p->d[d], &r->key, t->ts, t->kind);
			if (r->issued[d] < SIGCAP)
				r->issued[d]++;
		} else if (k->pos[d] == k->neg[d]) {
			hold_unsure(&p->d[d], &r->key, t->ts, t->kind);
		}
		if (rc)
			return rc;
		if (t->direct[d] && r->issued[d] < SIGCAP)
			r->issued[d]++;
	}
	return 0;
}

/* Forget answered requests at the head, and any silent for expire_ns. */
static void expire_reqs(struct ifo *s, struct proc *p)
{
	while (p->rhead < p->nreq) {
		struct req *r = p->reqs[p->rhead];
		if (!r->done && r->ts + s->expire_ns > p->clock)
			break;
		uint64_t h = tj_msgkey_hash(&r->key), sk = sock_id(r->key.node, r->key.sock);
		if (lookup(&s->reqs, h) == r)
			tj_u64map_del(&s->reqs, h);
		if (lookup(&s->ssock, sk) == r)
			tj_u64map_del(&s->ssock, sk);
		free(r);
		p->rhead++;
	}
	if (p->rhead == p->nreq)
		p->rhead = p->nreq = 0;
	else if (p->rhead > 1024 && p->rhead > p->nreq / 2) {
		memmove(p->reqs, p->reqs + p->rhead, (p->nreq - p->rhead) * sizeof(*p->reqs));
		p->nreq -= p->rhead;
		p->rhead = 0;
	}
}

static int on_request(struct ifo *s, struct proc *p, const struct tj_message *m)
{
	struct req *r = calloc(1, sizeof(*r));
	if (!r || tj_grow((void **)&p->reqs, &p->rcap, p->nreq + 1, sizeof(*p->reqs))) {
		free(r);
		return -TJ_E_NOMEM;
	}
	r->key = m->key;
	r->ts = m->ts_first;
	if (tj_u64map_put(&s->reqs, tj_msgkey_hash(&m->key), (uint64_t)(uintptr_t)r)) {
		free(r);
		return -TJ_E_NOMEM;
	}
	p->reqs[p->nreq++] = r;
	if (tj_u64map_put(&s->ssock, sock_id(m->key.node, m->key.sock), (uint64_t)(uintptr_t)r))
		return -TJ_E_NOMEM;
	return 0;
}

/* A read by thread tid: the request it belongs to, and its kind. */
static int on_read(struct ifo *s, struct proc *p, const struct tj_message *m,
		   uint32_t tid, int reply_from, const struct tj_msgkey *ctx, int has_ctx)
{
	struct thr *t = get_or_new(&s->thrs, (uint64_t)m->key.node << 32 | tid, sizeof(*t));
	if (!t)
		return -TJ_E_NOMEM;
	int rc = end_handler(s, t);
	if (rc)
		return rc;
	unsigned nh = t->nhist;
	memset(t, 0, offsetof(struct thr, hist));
	t->nhist = nh + 1;
	t->hist[nh % HIST].ts = m->ts_first;
	t->hist[nh % HIST].has_ctx = has_ctx;
	if (has_ctx)
		t->hist[nh % HIST].ctx = *ctx;
	t->has_read = 1;
	t->p = p;
	t->reply_from = reply_from;
	t->lport = m->lport;
	t->ts = m->ts_first;
	t->kind = -1;
	if ((t->has_ctx = has_ctx)) {
		t->ctx = *ctx;
		struct req *r = lookup(&s->reqs, tj_msgkey_hash(ctx));
		if (r && tj_msgkey_eq(&r->key, ctx))
			t->kind = kind_of(p, reply_from, m->lport, r);
	}
	t->hist[nh % HIST].kind = t->kind;
	snapshot_idle(s, p, m->ts_first, t->kind, t->idle);
	return 0;
}

/* The request of the thread's latest read at or before ts (a connect),
 * if the thread read since: else the current handler wrote it. */
static int opened_by(const struct thr *t, uint64_t ts)
{
	unsigned last = (t->nhist - 1) % HIST;
	if (t->hist[last].ts <= ts)
		return -1;
	for (unsigned i = 1; i < HIST && i < t->nhist; i++) {
		unsigned j = (t->nhist - 1 - i) % HIST;
		if (t->hist[j].ts <= ts)
			return t->hist[j].has_ctx ? (int)j : -1;
	}
	return -1;
}

/* The issue a connect-call served, if it had been queued: 1 if it was. */
static int drop_pending(struct dest *d, const struct tj_msgkey *key)
{
	for (size_t i = d->head; i < d->n; i++)
		if (tj_msgkey_eq(&d->q[i].key, key)) {
			memmove(d->q + i, d->q + i + 1, (d->n - i - 1) * sizeof(*d->q));
			d->n--;
			return 1;
		}
	for (unsigned i = 0; i < d->nunsure; i++)
		if (tj_msgkey_eq(&d->unsure[i].key, key)) {
			memmove(d->unsure + i, d->unsure + i + 1, (d->nunsure - i - 1) * sizeof(*d->unsure));
			d->nunsure--;
			return 0;
		}
	return 0;
}

static int on_call(struct ifo *s, struct proc *p, const struct tj_message *m,
		   struct tj_edge_sink *out)
{
	struct tj_edge e = { .child = m->key, .score = 0.0 };
	enum sig how = SIG_NONE;
	int d = dest_of(p, m);
	struct csock *c = get_or_new(&s->socks, sock_id(m->key.node, m->key.sock), sizeof(*c));
	if (!c)
		return -TJ_E_NOMEM;
	c->p = p;
	c->dest = d;
	if (d >= 0)
		track_sock(&p->d[d], m->key.sock);
	struct thr *t = m->tid_first == TJ_TID_UNKNOWN ? NULL
		: lookup(&s->thrs, (uint64_t)m->key.node << 32 | m->tid_first);
	int opener = -1;
	if (t && t->has_read && t->p == p && m->seq == 0 && m->ts_sock_open &&
	    m->ts_sock_open < m->ts_first)
		opener = opened_by(t, m->ts_sock_open);
	if (opener >= 0) {
		/* the first call of a new connection: written when the connect
		 * completed, issued by the handler that ran the connect (its
		 * kind issues d: the connect is the proof) */
		e.has_parent = 1;
		e.parent = t->hist[opener].ctx;
		how = SIG_CONNECT;
		int k = t->hist[opener].kind;
		if (d >= 0) {
			int queued = drop_pending(&p->d[d], &e.parent);
			if (k >= 0) {
				p->k[k].pos[d]++;
				saw_kind(&p->d[d], slot_of(&p->d[d], m->key.sock), k);
				int rc = settle_unsure(s, p, k, (unsigned)d);
				if (rc)
					return rc;
			}
			struct req *r = lookup(&s->reqs, tj_msgkey_hash(&e.parent));
			if (!queued && r && tj_msgkey_eq(&r->key, &e.parent) && r->issued[d] < SIGCAP)
				r->issued[d]++;
		}
	} else if (t && t->has_read && t->p == p) {
		struct dest *dd = d >= 0 ? &p->d[d] : NULL;
		if (dd && t->reply_from == d && !t->fifo[d]) {
			/* a reply from d freed a connection: the oldest waiting
			 * issue whose request has not answered goes out on it */
			int j = slot_of(dd, m->key.sock);
			size_t i = dd->head;
			while (i < dd->n) {
				struct req *r = lookup(&s->reqs, tj_msgkey_hash(&dd->q[i].key));
				if (!r || !tj_msgkey_eq(&r->key, &dd->q[i].key) || r->done) {
					if (i == dd->head)
						dd->head++; /* answered: cannot be a parent */
					i++;
					continue;
				}
				if (same_pool(dd, j, dd->q[i].kind))
					break;
				i++; /* waits for a connection of its own pool */
			}
			if (i < dd->n) {
				e.has_parent = 1;
				e.parent = dd->q[i].key;
				memmove(dd->q + i, dd->q + i + 1, (dd->n - i - 1) * sizeof(*dd->q));
				dd->n--;
				how = SIG_FIFO;
				t->fifo[d] = 1;
			}
		}
		if (how == SIG_NONE && t->has_ctx) {
			e.has_parent = 1;
			e.parent = t->ctx;
			how = SIG_DIRECT;
			/* the first write to d after a reply from d with nothing
			 * queued may be a queued issue we missed: no evidence
			 * that this handler's kind issues d */
			if (d >= 0 && t->direct[d] < 255 && (t->reply_from != d || t->wrote[d])) {
				t->direct[d]++;
				saw_kind(&p->d[d], slot_of(&p->d[d], m->key.sock), t->kind);
			}
		}
		if (d >= 0 && t->wrote[d] < 255)
			t->wrote[d]++;
	}
	if (how != SIG_NONE)
		e.score = 1.0;
	s->count[how]++;
	if (s->explain) {
		char ck[TJ_MSGKEY_STRLEN], pk[TJ_MSGKEY_STRLEN];
		fprintf(stderr, ALGO ": call %s: %s%s%s\n", tj_msgkey_format(&m->key, ck), sig_name[how],
			e.has_parent ? " " : "", e.has_parent ? tj_msgkey_format(&e.parent, pk) : "");
	}
	if (d >= 0)
		p->d[d].count[how]++;
	c->busy = 1;
	c->ts_reply = m->ts_reply;
	c->has_parent = e.has_parent;
	c->parent = e.parent;
	return out->emit(out, &e) < 0 ? -TJ_E_IO : 0;
}

/* Forget threads that read nothing for expire_ns of their node's time (a
 * thread per connection comes and goes): memory follows live threads. */
static int sweep_threads(struct ifo *s)
{
	s->ngone = 0;
	for (size_t i = 0; i < s->thrs.cap; i++) {
		if (!s->thrs.ent[i].used)
			continue;
		const struct thr *t = (const struct thr *)(uintptr_t)s->thrs.ent[i].val;
		uint64_t last = t->nhist ? t->hist[(t->nhist - 1) % HIST].ts : 0;
		if (!t->p || last + s->expire_ns >= t->p->clock)
			continue;
		if (tj_grow((void **)&s->gone, &s->capgone, s->ngone + 1, sizeof(*s->gone)))
			return -TJ_E_NOMEM;
		s->gone[s->ngone++] = s->thrs.ent[i].key;
	}
	for (size_t i = 0; i < s->ngone; i++) {
		free(lookup(&s->thrs, s->gone[i]));
		tj_u64map_del(&s->thrs, s->gone[i]);
	}
	return 0;
}

static int ifo_message(void *st, const struct tj_message *m,
		       struct tj_edge_sink *out, struct tj_err *err)
{
	struct ifo *s = st;
	if (++s->nmsg % SWEEP == 0 && sweep_threads(s))
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	struct proc *p = get_or_new(&s->procs, (uint64_t)m->key.node << 32 | m->pid, sizeof(*p));
	if (!p)
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	p->node = m->key.node;
	p->pid = m->pid;
	if (m->ts_first > p->clock)
		p->clock = m->ts_first;
	int rc = 0;
	uint32_t tid = m->tid_first;
	if (m->role == TJ_ROLE_SERVER && m->is_request) {
		rc = on_request(s, p, m);
		if (!rc && tid != TJ_TID_UNKNOWN)
			rc = on_read(s, p, m, tid, -1, &m->key, 1);
	} else if (m->role == TJ_ROLE_SERVER) {
		struct req *r = lookup(&s->ssock, sock_id(m->key.node, m->key.sock));
		if (r) /* the response: that request can no longer be a parent */
			r->done = 1;
		tj_u64map_del(&s->ssock, sock_id(m->key.node, m->key.sock));
		expire_reqs(s, p);
	} else if (m->role == TJ_ROLE_CLIENT && m->is_request) {
		rc = on_call(s, p, m, out);
		if (rc == -TJ_E_IO)
			return tj_errf(err, TJ_E_IO, ALGO ": the edge sink failed");
	} else if (m->role == TJ_ROLE_CLIENT) {
		struct csock *c = lookup(&s->socks, sock_id(m->key.node, m->key.sock));
		if (c && c->p == p) {
			c->busy = 0;
			if (tid != TJ_TID_UNKNOWN)
				rc = on_read(s, p, m, tid, c->dest, &c->parent, c->has_parent);
			if (m->flags & TJ_MSG_NO_REPLY) {
				/* the connection closed after this reply */
				if (c->dest >= 0)
					untrack_sock(&p->d[c->dest], m->key.sock);
				tj_u64map_del(&s->socks, sock_id(m->key.node, m->key.sock));
				free(c);
			}
		}
	}
	if (rc)
		return tj_errf(err, -rc, ALGO ": out of memory");
	return 0;
}

static void explain(const struct ifo *s)
{
	fprintf(stderr, ALGO ": %llu calls: %llu direct (the writer's last read), %llu fifo "
		"(head of the destination's queue), %llu connect (the read before the connect), %llu none\n",
		(unsigned long long)(s->count[0] + s->count[1] + s->count[2] + s->count[3]),
		(unsigned long long)s->count[SIG_DIRECT], (unsigned long long)s->count[SIG_FIFO],
		(unsigned long long)s->count[SIG_CONNECT], (unsigned long long)s->count[SIG_NONE]);
	for (size_t i = 0; i < s->procs.cap; i++) {
		if (!s->procs.ent[i].used)
			continue;
		const struct proc *p = (const struct proc *)(uintptr_t)s->procs.ent[i].val;
		for (unsigned d = 0; d < p->nd; d++) {
			const struct dest *dd = &p->d[d];
			if (!(dd->count[0] + dd->count[1] + dd->count[2] + dd->count[3]))
				continue;
			fprintf(stderr, ALGO ": node %u pid %u dest %u (port %u): direct %llu fifo %llu "
				"connect %llu none %llu, %zu still queued\n", p->node, p->pid, d, dd->rport,
				(unsigned long long)dd->count[SIG_DIRECT],
				(unsigned long long)dd->count[SIG_FIFO],
				(unsigned long long)dd->count[SIG_CONNECT],
				(unsigned long long)dd->count[SIG_NONE], dd->n - dd->head);
		}
		/* the learned program: which handler kinds issue which calls */
		for (unsigned k = 0; k < p->nk; k++) {
			const struct kind *kk = &p->k[k];
			char what[256];
			int len = kk->reply_from < 0
				? snprintf(what, sizeof(what), "request on port %u", kk->lport)
				: snprintf(what, sizeof(what), "reply from dest %d", kk->reply_from);
			len += snprintf(what + len, sizeof(what) - (size_t)len, ", issued before:");
			for (unsigned d = 0; d < p->nd && len < (int)sizeof(what) - 16; d++)
				if (kk->issued[d])
					len += snprintf(what + len, sizeof(what) - (size_t)len, " %u x%u", d,
						       kk->issued[d]);
			for (unsigned d = 0; d < p->nd; d++)
				if (kk->pos[d] + kk->neg[d] >= 5)
					fprintf(stderr, ALGO ": node %u pid %u handler (%s) issues dest %u: "
						"%u of %u seen%s\n", p->node, p->pid, what, d, kk->pos[d],
						kk->pos[d] + kk->neg[d],
						kk->pos[d] > kk->neg[d] ? " (queued when busy)" : "");
		}
	}
}

static int ifo_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	(void)out;
	(void)err;
	struct ifo *s = st;
	if (s->explain)
		explain(s);
	return 0; /* every call was answered when it came */
}

static void free_map_vals(struct tj_u64map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->ent[i].used)
			free((void *)(uintptr_t)m->ent[i].val);
	tj_u64map_free(m);
}

static void ifo_close(void *st)
{
	struct ifo *s = st;
	if (!s)
		return;
	for (size_t i = 0; i < s->procs.cap; i++) {
		if (!s->procs.ent[i].used)
			continue;
		struct proc *p = (struct proc *)(uintptr_t)s->procs.ent[i].val;
		for (unsigned d = 0; d < p->nd; d++)
			free(p->d[d].q);
		free(p->k);
		free(p->reqs);
	}
	free_map_vals(&s->procs);
	free_map_vals(&s->thrs);
	free(s->gone);
	free_map_vals(&s->socks);
	tj_u64map_free(&s->ssock); /* its values are owned by reqs */
	free_map_vals(&s->reqs);
	free(s);
}

const struct tj_correlator tj_correlator_issue_fifo = {
	.abi = TJ_CORRELATOR_ABI,
	.name = ALGO,
	.description = "client pools with a FIFO wait queue per destination (Node's http.Agent): "
		       "a call continues its writer's last read, or is the head of the queue a reply freed",
	.params_help = "expire=60  seconds of a node's time after which a request with no response is forgotten\n"
		       "explain=0  1: print the signal counts per destination and the learned handler kinds on stderr\n",
	.open = ifo_open,
	.train = NULL,
	.message = ifo_message,
	.finish = ifo_finish,
	.close = ifo_close,
};
