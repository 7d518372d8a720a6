/* The `nest` correlator: calls matched to requests by nesting and calls
 * per request, over continuation groups, for runtimes where no thread
 * keeps a request: event loops that call and answer from timers, M:N
 * schedulers, loops run by a pool of threads (correlate/ASYNC.md,
 * "Nesting: timer-driven loops and M:N runtimes").
 *
 * What the kernel still shows when thread identity says nothing:
 *
 *  - Nesting.  A call is written after its request arrived and its reply
 *    read before the response was written.
 *  - Counts.  A process makes about the same number of calls to each
 *    destination per request.
 *  - Continuation, where the process shows it.  A call written by the
 *    thread whose last read was the reply of an earlier call continues
 *    that call's request, but only in a queue (process, destination)
 *    whose calls follow a reply from one other destination in at least
 *    `gate_share` of them (Laplace smoothed), learned from the log: an
 *    M:N loop writing the next call from the reply's handler shows it on
 *    every call; Go's readLoop, whose reader goes on to write another
 *    request's call, does not.  Calls so joined form one group, matched
 *    as one: the group nests in a request if its head was written after
 *    the request arrived and its last reply came before the response.
 *
 * The matching: a process's requests are decided in the order of their
 * responses; each takes, for each destination, up to cap groups that
 * nest in it and no earlier-answered request took, oldest head first;
 * cap = the process's groups to that destination per request so far,
 * rounded, at least 1.  If some assignment gives every request its
 * groups, this one does too (exchange argument in ASYNC.md).  Groups no
 * request took get no parent.  Where the process pipelines (call
 * messages of several write syscalls: one message may stand for several
 * requests' calls), nesting says nothing and no parent is answered.
 *
 * Streaming: a node's messages come in order of their first byte
 * (replay/README.md, "Delivery order"), so a request whose response began
 * before the node's newest first byte has seen every call that can nest
 * in it, and every continuation of those (each is written before the
 * response): it is decided then.  A group waits until the last request it
 * could nest in is decided.  Memory follows the requests and calls in
 * flight, plus RING call outcomes per process and TR reads per thread. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "../lib/event.h"
#include "../lib/u64map.h"
#include "../lib/util.h"
#include "../models/call_units.h"
#include "regression.h"

#define RING 4096      /* call outcomes per process a continuation can find */
#define NSRC 4         /* sources counted per queue for the gate */
#define TR 16          /* reads remembered per thread */
#define MAX_THREADS 65536

enum why { BY_NESTING, BY_CONTINUATION, NO_NESTING, PIPELINING, BY_DELAY };
static const char *const why_name[] = { "nesting", "continuation", "no-nesting-request",
					"pipelining", "delay" };

/* nest-em: requests decided in windows of at most WINDOW (a Hungarian
 * assignment is cubic in the groups), each bin of the delay histograms
 * starting at PRIOR pseudo-counts (the model before any group was seen:
 * flat over the log bins), and a group with no later request to wait for
 * charged LATE_NONE to stay out of the window (finite: the assignment
 * stays solvable when more groups must go than there are slots). */
#define WINDOW 16
#define MAXG 64      /* groups one assignment weighs, the oldest */
#define PRIOR 0.1
#define LATE_NONE 1e9
#define NCAND 16     /* a sampled group's candidate requests kept */
#define NSAMPLE 512  /* groups per queue the model is fitted on (the latest) */
#define REFIT 128    /* new samples between two fits */
#define EM_ITERS 8   /* EM iterations per fit (each warm-started) */
/* The assignment's order of concerns, as costs far apart: as many slots
 * filled as the groups allow (FILL), then as many groups as possible in
 * the request the delays make more likely than not (CONFIDENT, then their
 * -log posterior), then the oldest groups (ORDER per place in write
 * order: nest's rule, which keeps every request matched where that can
 * be done). */
#define FILL 1e6
#define CONFIDENT 1e3
#define ORDER 1e-6

#define NDEST 8 /* destinations a request's call counts track */

struct nm_req {
	struct tj_msgkey key;
	uint64_t a, r; /* arrival, response began */
	uint32_t dix[NDEST];   /* destination index + 1 (0: unused) */
	uint16_t ncall[NDEST]; /* groups given to it there */
};

struct member {
	struct tj_msgkey key;
	uint64_t seq;
};

struct nm_call { /* a group's head, waiting in its destination's queue */
	struct tj_msgkey key;
	uint64_t seq;
	uint64_t w, rep;    /* written, the group's last reply began (w if none) */
	uint64_t last_r;    /* the latest response among the requests it nests in */
	struct member *mem; /* the calls continuing it, in write order */
	size_t nmem, capmem;
	int taken;
};

struct outcome { /* a call, as a later continuation finds it */
	uint64_t seq;     /* 0: slot empty */
	uint64_t head;    /* the seq of its group's head */
	size_t dest;      /* the head's queue */
	struct tj_msgkey parent;
	uint8_t decided, has_parent, used_src;
};

struct delay_sample { /* a decided group's candidate requests, as delay bins */
	uint8_t n, pre[NCAND], post[NCAND];
};

struct nm_dest { /* the calls of one process to one destination */
	uint8_t addr[16];
	uint16_t port;
	unsigned family;
	uint64_t hash;
	uint64_t ncalls;   /* group heads */
	uint64_t nconts, nmatched, nnone, nabstained;
	uint64_t nburst;   /* calls written right after another to d by the same thread, no read between */
	uint64_t src[NSRC], nsrc[NSRC], total; /* the gate; src 0: not after a reply */
	/* nest-em's delay model, per ns on regression's log bins: a group's
	 * write after its request's arrival (pre), its request's response
	 * after the group's last reply (post); fitted by EM on the candidate
	 * delays of the latest NSAMPLE decided groups (a ring) */
	double lpre[RG_NBINS], lpost[RG_NBINS];
	struct delay_sample *smp;
	size_t nsmp, nextsmp, newsmp;
	uint64_t nfits; /* 0: no model yet, nest's rule alone */
	uint64_t ndelay; /* groups decided by the delay model */
	struct nm_call *q; /* undecided heads, in write order */
	size_t nq, capq;
};

struct nm_proc {
	uint32_t node, pid;
	uint64_t id;
	uint64_t nreq;
	uint64_t nreq_seen; /* requests begun before its latest call: the
			     * calls per request divide by it, not by requests
			     * too new to have made theirs */
	uint64_t ncalls, merged; /* call messages; of several write syscalls */
	uint64_t next_seq;
	struct outcome ring[RING];
	uint64_t due;        /* requests answered before it are decided now */
	struct nm_req *heap; /* undecided requests, min-heap on r */
	size_t nh, caph;
	struct nm_dest *dest;
	size_t nd, capd;
};

struct nm_node {
	uint32_t node;
	uint64_t clock; /* newest first byte delivered */
};

struct read {
	uint64_t ts;
	uint64_t proc;  /* the process's id */
	uint64_t seq;   /* the call whose reply this was; 0: a request */
	uint64_t dest;  /* that call's destination hash */
};

struct thr {
	struct read r[TR];
	unsigned next;
	uint64_t wts, wdest; /* its last call written: when, where to */
};

struct nest {
	struct nm_proc **proc;
	size_t np, capp;
	struct nm_node *nodes;
	size_t nn, capn;
	struct tj_u64map threads; /* node << 32 | tid -> struct thr * */
	double gate_share;
	int explain;
	int em; /* nest-em: each window an assignment weighed by the fitted delays */
	const char *algo;
	double logwidth[RG_NBINS]; /* log of each delay bin's width, ns */
	/* decide_by_delay's scratch: groups, costs, columns, requests each nests in */
	size_t *gix, capgix;
	double *cost;
	size_t capcost;
	int *rowcol;
	size_t caprowcol;
	unsigned char *bydelay; /* the delays make q its more likely request, not its oldest */
	size_t capbydelay;
	struct cand { /* a request a group nests in: log density, in the window */
		double lf;
		int inwin;
	} *cand;
	size_t capcand;
	uint64_t matched, continued, unmatched, abstained, requests, unanswered;
};

static const char *const known_params[] = { "gate_share", "explain", NULL };

static void self_shares(const struct nm_dest *d, double *req, double *self);

static void forget_threads(struct nest *s)
{
	for (size_t i = 0; i < s->threads.cap; i++)
		if (s->threads.ent[i].used)
			free((void *)(uintptr_t)s->threads.ent[i].val);
	tj_u64map_free(&s->threads);
	tj_u64map_init(&s->threads);
}

static void nest_close(void *st)
{
	struct nest *s = st;
	if (!s)
		return;
	for (size_t i = 0; i < s->np; i++) {
		struct nm_proc *p = s->proc[i];
		for (size_t j = 0; j < p->nd; j++) {
			for (size_t k = 0; k < p->dest[j].nq; k++)
				free(p->dest[j].q[k].mem);
			free(p->dest[j].q);
			free(p->dest[j].smp);
		}
		free(p->dest);
		free(p->heap);
		free(p);
	}
	free(s->proc);
	free(s->nodes);
	free(s->gix);
	free(s->cost);
	free(s->rowcol);
	free(s->bydelay);
	free(s->cand);
	forget_threads(s);
	tj_u64map_free(&s->threads);
	free(s);
}

static int open_as(void **st, const struct tj_params *p, const char *algo, int em,
		   struct tj_err *err)
{
	int rc = tj_params_check(p, known_params, algo, err);
	if (rc < 0)
		return rc;
	double share;
	int explain = 0;
	if ((rc = tj_param_double(p, "gate_share", 0.95, &share, err)) < 0) {
		char msg[sizeof(err->msg)];
		if (!err)
			return rc;
		snprintf(msg, sizeof(msg), "%s", err->msg);
		return tj_errf(err, -rc, "%s: %s", algo, msg);
	}
	if (!(share > 0.5 && share <= 1))
		return tj_errf(err, TJ_E_ARG, "%s: param gate_share=%s: a share in (0.5, 1] expected",
			       algo, tj_param_str(p, "gate_share", ""));
	if ((rc = tj_param_flag(p, "explain", 0, algo, &explain, err)) < 0)
		return rc;
	struct nest *s = calloc(1, sizeof(*s));
	if (!s)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", algo);
	s->gate_share = share;
	s->explain = explain;
	s->em = em;
	s->algo = algo;
	/* rg_bin_of's bins: below 1 us, then RG_BINS_PER_DECADE per decade */
	double step = pow(10.0, 1.0 / RG_BINS_PER_DECADE) - 1;
	for (int b = 0; b < RG_NBINS; b++)
		s->logwidth[b] = b <= RG_SIDE ? log(1e3)
					      : log(1e3 * step) + (b - RG_SIDE - 1) * log(10.0) /
								    RG_BINS_PER_DECADE;
	tj_u64map_init(&s->threads);
	*st = s;
	return 0;
}

static int nest_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	return open_as(st, p, "nest", 0, err);
}

static int nest_em_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	return open_as(st, p, "nest-em", 1, err);
}

static struct nm_proc *proc_of(struct nest *s, uint32_t node, uint32_t pid)
{
	for (size_t i = 0; i < s->np; i++)
		if (s->proc[i]->node == node && s->proc[i]->pid == pid)
			return s->proc[i];
	struct nm_proc *p = calloc(1, sizeof(*p));
	if (!p || tj_grow((void **)&s->proc, &s->capp, s->np + 1, sizeof(*s->proc)) < 0) {
		free(p);
		return NULL;
	}
	p->node = node;
	p->pid = pid;
	p->id = (uint64_t)node << 32 | pid;
	p->next_seq = 1;
	s->proc[s->np++] = p;
	return p;
}

static struct nm_node *node_of(struct nest *s, uint32_t node)
{
	for (size_t i = 0; i < s->nn; i++)
		if (s->nodes[i].node == node)
			return &s->nodes[i];
	if (tj_grow((void **)&s->nodes, &s->capn, s->nn + 1, sizeof(*s->nodes)) < 0)
		return NULL;
	s->nodes[s->nn] = (struct nm_node){ node, 0 };
	return &s->nodes[s->nn++];
}

/* Never 0: 0 means "not after a reply". */
static uint64_t dest_hash(const struct tj_message *m)
{
	return tj_call_dest(m) | 1;
}

static struct nm_dest *dest_of(const struct nest *s, struct nm_proc *p, const struct tj_message *m)
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
	d->family = m->family;
	d->hash = dest_hash(m);
	for (int b = 0; b < RG_NBINS; b++) /* before any fit: flat over the bins */
		d->lpre[b] = d->lpost[b] = -log((double)RG_NBINS) - s->logwidth[b];
	return d;
}

static struct outcome *outcome_of(struct nm_proc *p, uint64_t seq)
{
	struct outcome *o = seq ? &p->ring[seq % RING] : NULL;
	return o && o->seq == seq ? o : NULL;
}

static int remember_read(struct nest *s, uint32_t node, uint32_t tid, const struct read *r)
{
	if (tid == TJ_TID_UNKNOWN)
		return 0;
	uint64_t id = (uint64_t)node << 32 | tid;
	uint64_t *v = tj_u64map_get(&s->threads, id);
	struct thr *t;
	if (v) {
		t = (struct thr *)(uintptr_t)*v;
	} else {
		if (s->threads.len >= MAX_THREADS) /* bound: forget every thread */
			forget_threads(s);
		if (!(t = calloc(1, sizeof(*t))))
			return -1;
		if (tj_u64map_put(&s->threads, id, (uint64_t)(uintptr_t)t)) {
			free(t);
			return -1;
		}
	}
	t->r[t->next] = *r;
	t->next = (t->next + 1) % TR;
	return 0;
}

static struct thr *thread_of(struct nest *s, uint32_t node, uint32_t tid)
{
	if (tid == TJ_TID_UNKNOWN)
		return NULL;
	uint64_t *v = tj_u64map_get(&s->threads, (uint64_t)node << 32 | tid);
	return v ? (struct thr *)(uintptr_t)*v : NULL;
}

/* The thread's last read before ts, or NULL. */
static const struct read *last_read(struct nest *s, uint32_t node, uint32_t tid, uint64_t ts)
{
	if (tid == TJ_TID_UNKNOWN)
		return NULL;
	uint64_t *v = tj_u64map_get(&s->threads, (uint64_t)node << 32 | tid);
	if (!v)
		return NULL;
	const struct thr *t = (const struct thr *)(uintptr_t)*v;
	const struct read *best = NULL;
	for (unsigned i = 0; i < TR; i++)
		if (t->r[i].ts && t->r[i].ts < ts && (!best || t->r[i].ts > best->ts))
			best = &t->r[i];
	return best;
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

/* One call's edge; its outcome recorded for the continuations to come. */
static int emit_one(struct nest *s, struct nm_proc *p, const struct tj_msgkey *child,
		    uint64_t seq, const struct tj_msgkey *parent, enum why why,
		    struct tj_edge_sink *out)
{
	struct tj_edge e = { .child = *child, .has_parent = parent != NULL,
			     .score = parent ? 1.0 : 0.0 };
	if (parent)
		e.parent = *parent;
	struct outcome *o = outcome_of(p, seq);
	if (o) {
		o->decided = 1;
		o->has_parent = parent != NULL;
		if (parent)
			o->parent = *parent;
	}
	if (s->explain) {
		char a[TJ_MSGKEY_STRLEN], b[TJ_MSGKEY_STRLEN];
		fprintf(stderr, "%s: %s <- %s by %s\n", s->algo, tj_msgkey_format(child, a),
			parent ? tj_msgkey_format(parent, b) : "none", why_name[why]);
	}
	if (why == BY_CONTINUATION)
		s->continued += parent != NULL;
	else if (parent)
		s->matched++;
	else if (why == PIPELINING)
		s->abstained++;
	else
		s->unmatched++;
	return out->emit(out, &e);
}

/* A group's edges: its head's, then each continuation's, one parent. */
static int emit_group(struct nest *s, struct nm_proc *p, struct nm_call *c,
		      const struct nm_req *parent, enum why why, struct tj_edge_sink *out)
{
	const struct tj_msgkey *pk = parent ? &parent->key : NULL;
	int rc = emit_one(s, p, &c->key, c->seq, pk, why, out);
	for (size_t i = 0; i < c->nmem && rc == 0; i++)
		rc = emit_one(s, p, &c->mem[i].key, c->mem[i].seq, pk,
			      parent ? BY_CONTINUATION : why, out);
	free(c->mem);
	c->mem = NULL;
	c->nmem = c->capmem = 0;
	return rc;
}

/* Does the process pipeline its calls (several outstanding on one
 * connection)?  Requests written back to back merge into one call message
 * of several write syscalls (lookahead.c's fingerprint).  Only where most
 * call messages are merged does one stand for several calls more often
 * than for one; below that a guess by nesting still scores (nest-edf's
 * 5 % cut left proxy-chain's entry, 4.9 % merged, half unanswered, and
 * synthetic pipelined, 47 %, at 0 against nest-match's 38.2). */
static int pipelining(const struct nm_proc *p)
{
	return p->merged / (p->ncalls + 1.0) > 0.5;
}

/* Drop taken heads and emit the front ones no request can take any more
 * (every request they nest in is decided: those are decided in order of
 * r, and `done` is the last decided r). */
static int sweep(struct nest *s, struct nm_proc *p, struct nm_dest *d, uint64_t done,
		 int all, struct tj_edge_sink *out)
{
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < d->nq; i++) {
		struct nm_call *c = &d->q[i];
		if (c->taken)
			continue;
		if (rc == 0 && (all || c->last_r <= done)) {
			d->nnone++;
			rc = emit_group(s, p, c, NULL, pipelining(p) ? PIPELINING : NO_NESTING, out);
			continue;
		}
		d->q[k++] = *c;
	}
	d->nq = k;
	return rc;
}

static int sequential(const struct nest *s, const struct nm_dest *d, uint64_t cap)
{
	double req, self;
	if (cap < 2)
		return 0;
	self_shares(d, &req, &self);
	return self >= s->gate_share;
}

/* Groups given to r in destination i so far. */
static unsigned req_calls(const struct nm_req *r, size_t i)
{
	for (int j = 0; j < NDEST && r->dix[j]; j++)
		if (r->dix[j] == i + 1)
			return r->ncall[j];
	return 0;
}

static void req_add(struct nm_req *r, size_t i)
{
	for (int j = 0; j < NDEST; j++)
		if (r->dix[j] == i + 1 || !r->dix[j]) {
			r->dix[j] = (uint32_t)(i + 1);
			r->ncall[j]++;
			return;
		}
	/* more destinations than tracked: not counted */
}

/* A queue whose requests make several calls one after another (no call
 * written by a thread right after another to d, no read between): a
 * request's later calls are written after other requests' first ones. */
static int chained(const struct nest *s, const struct nm_proc *p, const struct nm_dest *d,
		   uint64_t cap)
{
	if (cap < 2 || !d->total)
		return 0;
	double ratio = (double)d->ncalls / (double)p->nreq_seen;
	if (ratio < (double)cap - 0.25 || ratio > (double)cap + 0.25)
		return 1;
	return (double)d->nburst / (double)d->total <= 1 - s->gate_share;
}

/* In a chained queue, the groups nesting in q (answered first of the
 * process's undecided requests), in write order, each to the request it
 * nests in with the fewest groups there so far, then the earliest
 * response: a request waiting for its first call is served before one's
 * second call is taken. */
static int decide_chained(struct nest *s, struct nm_proc *p, size_t i, struct nm_req *q,
			  uint64_t cap, struct tj_edge_sink *out)
{
	struct nm_dest *d = &p->dest[i];
	int rc = 0;
	size_t last = 0; /* past the last group nesting in q: those before it go first */
	for (size_t j = 0; j < d->nq; j++)
		if (!d->q[j].taken && d->q[j].w >= q->a && d->q[j].rep <= q->r)
			last = j + 1;
	for (size_t j = 0; j < last && rc == 0; j++) {
		struct nm_call *c = &d->q[j];
		if (c->taken)
			continue;
		struct nm_req *best = NULL;
		unsigned best_n = 0;
		unsigned n = req_calls(q, i);
		if (n < cap && c->w >= q->a && c->rep <= q->r) {
			best = q;
			best_n = n;
		}
		for (size_t h = 0; h < p->nh; h++) {
			struct nm_req *o = &p->heap[h];
			if (o->a > c->w || o->r < c->rep || (n = req_calls(o, i)) >= cap)
				continue;
			if (!best || n < best_n || (n == best_n && o->r < best->r)) {
				best = o;
				best_n = n;
			}
		}
		if (!best)
			continue;
		req_add(best, i);
		c->taken = 1;
		d->nmatched++;
		rc = emit_group(s, p, c, best, BY_NESTING, out);
	}
	return rc;
}

/* nest-em's delay model of queue d: log density per ns of a group written
 * `pre` ns after its request arrived and answered `post` ns before its
 * request's response. */
static double pair_logf(const struct nm_dest *d, const struct nm_call *c, const struct nm_req *r)
{
	return d->lpre[rg_bin_of((int64_t)(c->w - r->a))] +
	       d->lpost[rg_bin_of((int64_t)(r->r - c->rep))];
}

/* The median of a fitted delay density (explain): the lower edge of the
 * bin where its mass passes one half. */
static double median_ms(const struct nest *s, const double *lf)
{
	double mass = 0;
	int b = RG_SIDE;
	while (b < RG_NBINS - 1 && (mass += exp(lf[b] + s->logwidth[b])) < 0.5)
		b++;
	return b <= RG_SIDE ? 0 : exp(s->logwidth[b]) / (pow(10.0, 1.0 / RG_BINS_PER_DECADE) - 1) / 1e6;
}

static int nests(const struct nm_call *c, const struct nm_req *r)
{
	return c->w >= r->a && c->rep <= r->r;
}

/* Fit d's delay model by EM on its samples: each sampled group came from
 * one of its candidate requests, unknown; E: its posterior over them
 * under the model, M: the two histograms of the posterior-weighted delays
 * (plus PRIOR per bin).  Warm-started from the model in use. */
static void fit_delays(const struct nest *s, struct nm_dest *d)
{
	double pre[RG_NBINS], post[RG_NBINS];
	for (int it = 0; it < EM_ITERS; it++) {
		for (int b = 0; b < RG_NBINS; b++)
			pre[b] = post[b] = PRIOR;
		for (size_t k = 0; k < d->nsmp; k++) {
			const struct delay_sample *x = &d->smp[k];
			double lf[NCAND], top = -INFINITY, z = 0;
			for (unsigned j = 0; j < x->n; j++) {
				lf[j] = d->lpre[x->pre[j]] + d->lpost[x->post[j]];
				top = lf[j] > top ? lf[j] : top;
			}
			for (unsigned j = 0; j < x->n; j++)
				z += (lf[j] = exp(lf[j] - top));
			for (unsigned j = 0; j < x->n; j++) {
				pre[x->pre[j]] += lf[j] / z;
				post[x->post[j]] += lf[j] / z;
			}
		}
		double tot = PRIOR * RG_NBINS + (double)d->nsmp;
		for (int b = 0; b < RG_NBINS; b++) {
			d->lpre[b] = log(pre[b] / tot) - s->logwidth[b];
			d->lpost[b] = log(post[b] / tot) - s->logwidth[b];
		}
	}
}

/* Keep group c's candidate delays (q, which took it, and the undecided
 * requests it nests in, up to NCAND) as a sample; refit every REFIT. */
static int sample(const struct nest *s, const struct nm_proc *p, struct nm_dest *d,
		  const struct nm_call *c, const struct nm_req *q)
{
	if (!d->smp && !(d->smp = calloc(NSAMPLE, sizeof(*d->smp))))
		return -1;
	struct delay_sample *x = &d->smp[d->nextsmp];
	d->nextsmp = (d->nextsmp + 1) % NSAMPLE;
	d->nsmp += d->nsmp < NSAMPLE;
	x->n = 0;
	for (size_t h = 0; h <= p->nh && x->n < NCAND; h++) {
		const struct nm_req *r = h ? &p->heap[h - 1] : q;
		if (!nests(c, r))
			continue;
		x->pre[x->n] = (uint8_t)rg_bin_of((int64_t)(c->w - r->a));
		x->post[x->n++] = (uint8_t)rg_bin_of((int64_t)(r->r - c->rep));
	}
	if (++d->newsmp >= REFIT) {
		d->newsmp = 0;
		fit_delays(s, d);
		d->nfits++;
	}
	return 0;
}

/* nest-em: q (answered first of the process's undecided requests) takes
 * its groups in d by a min-cost assignment over a window: q and the
 * other requests already answered (up to WINDOW, earliest responses),
 * each with cap slots (nest's), against the groups nesting in any of
 * them; a group may instead wait for a later request it nests in.  The
 * costs order three concerns (FILL, CONFIDENT, ORDER): fill every slot
 * the groups allow (nest's counts); then put groups where the fitted
 * delay model says P(r | g) > 1/2, its posterior among every undecided
 * request g nests in (unless r's oldest group is such a one: then order
 * decides r); then the oldest groups first (nest's rule).  Only q's
 * slots are kept: the others are solved again when their turn comes. */
static int decide_by_delay(struct nest *s, struct nm_proc *p, size_t i, struct nm_req *q,
			   uint64_t cap, struct tj_edge_sink *out)
{
	struct nm_dest *d = &p->dest[i];
	/* the window: q, then the answered requests, earliest response first */
	const struct nm_req *win[WINDOW];
	size_t nw = 1;
	win[0] = q;
	for (size_t h = 0; h < p->nh; h++) {
		const struct nm_req *r = &p->heap[h];
		if (r->r >= p->due || (nw == WINDOW && r->r >= win[nw - 1]->r))
			continue;
		size_t k = nw < WINDOW ? nw++ : nw - 1;
		while (k > 1 && win[k - 1]->r > r->r) {
			win[k] = win[k - 1];
			k--;
		}
		win[k] = r;
	}
	/* the slots: cap per request (nest's), less what it has */
	size_t nslot = 0, slot0[WINDOW + 1];
	for (size_t k = 0; k < nw; k++) {
		unsigned have = req_calls(win[k], i);
		slot0[k] = nslot;
		nslot += cap > have ? cap - have : 0;
	}
	slot0[nw] = nslot;
	/* the groups nesting in the window, the oldest MAXG (a bound on the
	 * cubic assignment where a long request nests thousands) */
	size_t ng = 0;
	for (size_t j = 0; j < d->nq && ng < MAXG; j++) {
		const struct nm_call *c = &d->q[j];
		int in = 0;
		for (size_t k = 0; k < nw && !in && !c->taken; k++)
			in = nests(c, win[k]);
		if (in) {
			if (tj_grow((void **)&s->gix, &s->capgix, ng + 1, sizeof(*s->gix)) < 0)
				return -TJ_E_NOMEM;
			s->gix[ng++] = j;
		}
	}
	if (!ng || !slot0[1])
		return 0;
	size_t ncol = nslot + ng;
	if (tj_grow((void **)&s->cost, &s->capcost, ng * ncol, sizeof(*s->cost)) < 0 ||
	    tj_grow((void **)&s->rowcol, &s->caprowcol, ng, sizeof(*s->rowcol)) < 0 ||
	    tj_grow((void **)&s->bydelay, &s->capbydelay, ng, sizeof(*s->bydelay)) < 0)
		return -TJ_E_NOMEM;
	unsigned seen[WINDOW] = { 0 };
	int oldest_conf[WINDOW] = { 0 };
	for (size_t g = 0; g < ng; g++) {
		const struct nm_call *c = &d->q[s->gix[g]];
		double *row = s->cost + g * ncol;
		/* Z: c's density summed over every undecided request it nests
		 * in (the posterior's normaliser, scaled by exp(-top)); later:
		 * the part outside the window */
		double top = -INFINITY, z = 0, later = 0;
		size_t nf = 0;
		for (size_t h = 0; h <= p->nh; h++) {
			const struct nm_req *r = h < p->nh ? &p->heap[h] : q;
			if (!nests(c, r))
				continue;
			if (tj_grow((void **)&s->cand, &s->capcand, nf + 1, sizeof(*s->cand)) < 0)
				return -TJ_E_NOMEM;
			int inwin = 0;
			for (size_t k = 0; k < nw && !inwin && r->r < p->due; k++)
				inwin = win[k] == r;
			s->cand[nf] = (struct cand){ pair_logf(d, c, r), inwin };
			top = s->cand[nf].lf > top ? s->cand[nf].lf : top;
			nf++;
		}
		for (size_t j = 0; j < nf; j++) {
			double f = exp(s->cand[j].lf - top);
			z += f;
			later += s->cand[j].inwin ? 0 : f;
		}
		s->bydelay[g] = 0;
		for (size_t col = 0; col < ncol; col++)
			row[col] = RG_FORBID;
		for (size_t k = 0; k < nw; k++) {
			if (!nests(c, win[k]))
				continue;
			double nlp = top + log(z) - pair_logf(d, c, win[k]); /* -log P(r | g) */
			/* the delays override the order only where the model
			 * is fitted, makes r more likely than every other
			 * request together, and does not say the same of r's
			 * oldest group */
			int conf = d->nfits && nlp < M_LN2;
			if (!seen[k]++)
				oldest_conf[k] = conf;
			else if (oldest_conf[k])
				conf = 0;
			else if (k == 0)
				s->bydelay[g] = (unsigned char)conf;
			double cell = conf ? nlp - CONFIDENT : ORDER * (double)g;
			for (size_t sl = slot0[k]; sl < slot0[k + 1]; sl++)
				row[sl] = cell - FILL;
		}
		row[nslot + g] = later > 0 ? 0 : LATE_NONE;
	}
	if (rg_assign(s->cost, ng, ncol, s->rowcol) < 0)
		return -TJ_E_NOMEM;
	int rc = 0;
	for (size_t g = 0; g < ng && rc == 0; g++) {
		struct nm_call *c = &d->q[s->gix[g]];
		if ((size_t)s->rowcol[g] >= slot0[1])
			continue;
		if (sample(s, p, d, c, q) < 0)
			return -TJ_E_NOMEM;
		req_add(q, i);
		c->taken = 1;
		d->nmatched++;
		d->ndelay += s->bydelay[g];
		rc = emit_group(s, p, c, q, s->bydelay[g] ? BY_DELAY : BY_NESTING, out);
	}
	return rc;
}

/* Decide the request answered first: per destination, the oldest groups
 * that nest in it, up to the process's groups per request there. */
static int decide_one(struct nest *s, struct nm_proc *p, struct tj_edge_sink *out)
{
	struct nm_req q = heap_pop(p);
	s->requests++;
	int rc = 0, pipe = pipelining(p);
	for (size_t i = 0; i < p->nd && rc == 0; i++) {
		struct nm_dest *d = &p->dest[i];
		uint64_t n = p->nreq_seen, cap = n ? (d->ncalls + n / 2) / n : 1;
		if (cap < 1)
			cap = 1;
		/* sequential queue: a request's next call is written after its
		 * previous call's reply */
		uint64_t after = 0, seq_q = sequential(s, d, cap);
		if (!pipe && !seq_q && chained(s, p, d, cap)) {
			rc = decide_chained(s, p, i, &q, cap, out);
			cap = 0;
		} else if (!pipe && !seq_q && s->em) {
			rc = decide_by_delay(s, p, i, &q, cap, out);
			cap = 0;
		}
		while (cap && rc == 0 && !pipe) {
			struct nm_call *pick = NULL, *first = NULL;
			for (size_t j = 0; j < d->nq && !pick; j++) {
				struct nm_call *c = &d->q[j];
				if (c->taken || c->w < q.a || c->rep > q.r)
					continue;
				if (!first)
					first = c;
				if (!seq_q || c->w >= after)
					pick = c;
			}
			if (!pick)
				pick = first;
			if (!pick)
				break;
			pick->taken = 1;
			after = pick->rep;
			cap--;
			d->nmatched++;
			rc = emit_group(s, p, pick, &q, BY_NESTING, out);
		}
		if (rc == 0)
			rc = sweep(s, p, d, q.r, 0, out);
	}
	return rc;
}

static int decide_due(struct nest *s, uint32_t node, uint64_t clock, int all,
		      struct tj_edge_sink *out)
{
	int rc = 0;
	for (size_t i = 0; i < s->np && rc == 0; i++) {
		struct nm_proc *p = s->proc[i];
		if (p->node != node && !all)
			continue;
		p->due = all ? UINT64_MAX : clock;
		while (rc == 0 && p->nh && (all || p->heap[0].r < clock))
			rc = decide_one(s, p, out);
		for (size_t j = 0; all && rc == 0 && j < p->nd; j++)
			rc = sweep(s, p, &p->dest[j], UINT64_MAX, 1, out);
	}
	return rc;
}

/* Source shares of d's calls: after a request, after d's own reply. */
static void self_shares(const struct nm_dest *d, double *req, double *self)
{
	uint64_t nr = 0, ns = 0;
	for (unsigned i = 0; i < NSRC; i++) {
		if (!d->nsrc[i])
			continue;
		if (!d->src[i])
			nr += d->nsrc[i];
		else if (d->src[i] == d->hash)
			ns += d->nsrc[i];
	}
	*req = d->total ? (double)nr / (double)d->total : 0;
	*self = d->total ? (double)ns / (double)d->total : 0;
}

/* A chain to one destination: each request's first call to d follows
 * the request, each of its k - 1 others follows d's own reply (a loop
 * writing the next call from the previous call's reply handler).  The
 * shares say so exactly: 1/k after a request, the rest after d's reply. */
static int self_chain(const struct nest *s, const struct nm_proc *p, const struct nm_dest *d)
{
	double req, self, k = p->nreq_seen ? (double)d->total / (double)p->nreq_seen : 0;
	if (k < 1.5)
		return 0;
	k = (double)(uint64_t)(k + 0.5);
	self_shares(d, &req, &self);
	double tol = 1 - s->gate_share;
	return req + self >= s->gate_share && req - 1 / k <= tol && 1 / k - req <= tol &&
	       (double)d->nburst / (double)d->total <= 1 - s->gate_share;
}

/* The most common source of d's calls (0: not after a reply), its
 * smoothed share. */
static uint64_t top_source(const struct nm_dest *d, double *share)
{
	unsigned top = 0;
	for (unsigned i = 1; i < NSRC; i++)
		if (d->nsrc[i] > d->nsrc[top])
			top = i;
	*share = d->total ? (d->nsrc[top] + 1.0) / (d->total + 2.0) : 0;
	return d->src[top];
}

/* Is d's gate open: its calls follow, in at least the share, a reply
 * from one other destination, and that destination's calls do not in
 * turn follow d's replies?  Such a cycle (A after B's reply, B after A's)
 * says the threads never show the request between them, so following it
 * would chain one request's calls onto the next request's. */
static int gate_open(const struct nest *s, const struct nm_proc *p, const struct nm_dest *d)
{
	double share, back;
	uint64_t src = top_source(d, &share);
	if (!src || src == d->hash || share < s->gate_share)
		return 0;
	for (size_t i = 0; i < p->nd; i++)
		if (p->dest[i].hash == src)
			return top_source(&p->dest[i], &back) != d->hash || back < s->gate_share;
	return 1;
}

/* Count this call's source in d's gate; is the gate open for it? */
static int gate_count(const struct nest *s, const struct nm_proc *p, struct nm_dest *d,
		      uint64_t src)
{
	int found = 0;
	for (unsigned i = 0; i < NSRC && !found; i++)
		if (d->nsrc[i] && d->src[i] == src) {
			d->nsrc[i]++;
			found = 1;
		}
	for (unsigned i = 0; i < NSRC && !found; i++)
		if (!d->nsrc[i]) {
			d->src[i] = src;
			d->nsrc[i] = 1;
			found = 1;
		}
	d->total++;
	double share;
	if (src && src == d->hash)
		return self_chain(s, p, d);
	return src && top_source(d, &share) == src && gate_open(s, p, d);
}

/* Join call c (seq) to the group of x, the call whose reply its thread
 * last read: to the waiting head's members, or, the head decided, to its
 * parent now.  1: joined (or emitted), 0: x's group is out of reach. */
static int join(struct nest *s, struct nm_proc *p, struct outcome *x, const struct nm_call *c,
		struct outcome *self, struct tj_edge_sink *out, int *rc)
{
	struct outcome *h = outcome_of(p, x->head);
	if (h && !h->decided) {
		struct nm_dest *hd = &p->dest[h->dest];
		for (size_t i = 0; i < hd->nq; i++) {
			struct nm_call *g = &hd->q[i];
			if (g->seq != x->head || g->taken)
				continue;
			if (tj_grow((void **)&g->mem, &g->capmem, g->nmem + 1, sizeof(*g->mem)) < 0) {
				*rc = -TJ_E_NOMEM;
				return 1;
			}
			g->mem[g->nmem++] = (struct member){ c->key, c->seq };
			if (c->rep > g->rep)
				g->rep = c->rep;
			self->head = x->head;
			self->dest = h->dest;
			return 1;
		}
		return 0;
	}
	if (!x->decided)
		return 0;
	*rc = emit_one(s, p, &c->key, c->seq, x->has_parent ? &x->parent : NULL,
		       BY_CONTINUATION, out);
	return 1;
}

static int on_call(struct nest *s, struct nm_proc *p, const struct tj_message *m,
		   struct tj_edge_sink *out)
{
	struct nm_dest *d = dest_of(s, p, m);
	if (!d)
		return -TJ_E_NOMEM;
	p->ncalls++;
	p->merged += m->nsyscalls > 1;
	p->nreq_seen = p->nreq;
	struct nm_call c = { .key = m->key, .seq = p->next_seq++, .w = m->ts_first,
			     .rep = m->ts_reply ? m->ts_reply : m->ts_first };
	struct outcome *self = &p->ring[c.seq % RING];
	*self = (struct outcome){ .seq = c.seq, .head = c.seq, .dest = (size_t)(d - p->dest) };
	const struct read *r = last_read(s, m->key.node, m->tid_first, m->ts_first);
	uint64_t src = r && r->seq && r->proc == p->id ? r->dest : 0;
	struct thr *wt = thread_of(s, m->key.node, m->tid_first);
	if (wt && wt->wdest == d->hash && wt->wts <= m->ts_first && (!r || wt->wts > r->ts))
		d->nburst++;
	if (wt) {
		wt->wts = m->ts_first;
		wt->wdest = d->hash;
	}
	struct outcome *x = src ? outcome_of(p, r->seq) : NULL;
	int rc = 0;
	if (gate_count(s, p, d, src) && x && !x->used_src) {
		x->used_src = 1;
		if (join(s, p, x, &c, self, out, &rc)) {
			d->nconts++;
			goto read;
		}
	}
	/* a head: the requests it can nest in are all delivered (they began
	 * first) */
	for (size_t i = 0; i < p->nh; i++)
		if (p->heap[i].a <= c.w && p->heap[i].r >= c.rep && p->heap[i].r > c.last_r)
			c.last_r = p->heap[i].r;
	d->ncalls++;
	if (!c.last_r) {
		d->nnone++;
		rc = emit_one(s, p, &c.key, c.seq, NULL, NO_NESTING, out);
	} else {
		if (tj_grow((void **)&d->q, &d->capq, d->nq + 1, sizeof(*d->q)) < 0)
			return -TJ_E_NOMEM;
		d->q[d->nq++] = c;
	}
read:
	if (rc == 0 && m->ts_reply) {
		struct read rd = { .ts = m->ts_reply, .proc = p->id, .seq = c.seq, .dest = d->hash };
		if (remember_read(s, m->key.node, m->tid_reply, &rd))
			return -TJ_E_NOMEM;
	}
	return rc;
}

static int nest_message(void *st, const struct tj_message *m, struct tj_edge_sink *out,
			struct tj_err *err)
{
	struct nest *s = st;
	struct nm_node *n = node_of(s, m->key.node);
	struct nm_proc *p = m->is_request ? proc_of(s, m->key.node, m->pid) : NULL;
	if (!n || (m->is_request && !p))
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", s->algo);
	if (m->ts_first > n->clock)
		n->clock = m->ts_first;
	int rc = 0;
	if (m->is_request && m->role == TJ_ROLE_SERVER) {
		struct read rd = { .ts = m->ts_last, .proc = p->id };
		if (remember_read(s, m->key.node, m->tid_last, &rd))
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", s->algo);
		if (!m->ts_reply) {
			/* no response seen (lost, or still open at the end):
			 * nothing can be said to nest in it, and keeping it would
			 * hold every later call of its process until the end */
			s->unanswered++;
		} else {
			if (tj_grow((void **)&p->heap, &p->caph, p->nh + 1, sizeof(*p->heap)) < 0)
				return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", s->algo);
			struct nm_req q = { .key = m->key, .a = m->ts_first, .r = m->ts_reply };
			heap_push(p, &q);
			p->nreq++;
		}
	} else if (m->is_request && m->role == TJ_ROLE_CLIENT) {
		rc = on_call(s, p, m, out);
	}
	if (rc == 0)
		rc = decide_due(s, m->key.node, n->clock, 0, out);
	if (rc == -TJ_E_NOMEM)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", s->algo);
	return rc < 0 ? tj_errf(err, -rc, "%s: writing an edge failed", s->algo) : 0;
}

static int nest_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	struct nest *s = st;
	int rc = decide_due(s, 0, 0, 1, out);
	if (rc < 0)
		return tj_errf(err, -rc, "%s: writing an edge failed", s->algo);
	if (!s->explain)
		return 0;
	fprintf(stderr, "%s: %llu requests decided, %llu calls matched by nesting, "
		"%llu joined to their group's request by continuation, %llu nested in no "
		"request left (no parent), %llu left without a parent (the process "
		"pipelines); %llu requests without a response left out\n", s->algo,
		(unsigned long long)s->requests, (unsigned long long)s->matched,
		(unsigned long long)s->continued, (unsigned long long)s->unmatched,
		(unsigned long long)s->abstained, (unsigned long long)s->unanswered);
	for (size_t i = 0; i < s->np; i++) {
		const struct nm_proc *p = s->proc[i];
		for (size_t j = 0; j < p->nd; j++) {
			const struct nm_dest *d = &p->dest[j];
			char a[64];
			double share;
			uint64_t src = top_source(d, &share);
			int from_reply = src && src != d->hash;
			tj_addr_format(d->family, d->addr, a);
			fprintf(stderr, "%s: process %u/%u -> %s:%u: %llu calls, %llu groups "
				"(%llu matched by nesting, %llu without a parent), %llu continued; "
				"gate %s (%s %.3f); %.2f groups per request\n",
				s->algo, p->node, p->pid, a, d->port,
				(unsigned long long)(d->ncalls + d->nconts),
				(unsigned long long)d->ncalls, (unsigned long long)d->nmatched,
				(unsigned long long)d->nnone, (unsigned long long)d->nconts,
				gate_open(s, p, d) ? "on" : "off",
				!src ? "not after a reply" : from_reply ? "replies from one destination"
								      : "its own replies",
				share, p->nreq ? (double)d->ncalls / (double)p->nreq : 0.0);
			if (s->em && d->nsmp)
				fprintf(stderr, "%s: process %u/%u -> %s:%u: delay model fitted %llu "
					"times on %zu groups: write after the request median %.3f ms, "
					"response after the last reply median %.3f ms; %llu groups "
					"placed by delay over an older one\n",
					s->algo, p->node, p->pid, a, d->port,
					(unsigned long long)d->nfits, d->nsmp,
					median_ms(s, d->lpre), median_ms(s, d->lpost),
					(unsigned long long)d->ndelay);
		}
	}
	return 0;
}

/* The param nest and nest-em share (open_as reads it for both). */
#define GATE_SHARE_HELP                                                                     \
	"gate_share=0.95  share of a queue's calls that must follow a reply from one other" \
	" destination for continuation to join them\n"

const struct tj_correlator tj_correlator_nest = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "nest",
	.description = "calls matched to requests by nesting (written after the request, "
		       "answered before its response) and calls per request, oldest first, "
		       "joined by continuation where the queue shows it: for event loops and "
		       "M:N runtimes",
	.params_help = GATE_SHARE_HELP
		       "explain=0  1: print each call's deciding signal and each queue's counts on stderr\n",
	.open = nest_open,
	.train = NULL,
	.message = nest_message,
	.finish = nest_finish,
	.close = nest_close,
};

const struct tj_correlator tj_correlator_nest_em = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "nest-em",
	.description = "nest with a delay model fitted by online EM per (process, destination): "
		       "a request's groups chosen by a min-cost assignment over a window of "
		       "answered requests, each group weighed by its posterior under the fitted "
		       "write-after-request and reply-to-response delays: for timer-driven loops",
	.params_help = GATE_SHARE_HELP
		       "explain=0  1: print each call's deciding signal, each queue's counts and its"
		       " fitted delays on stderr\n",
	.open = nest_em_open,
	.train = NULL,
	.message = nest_message,
	.finish = nest_finish,
	.close = nest_close,
};
