/* The `nest-edf` correlator: nesting plus earliest-deadline matching, for
 * runtimes where no thread keeps a request (M:N schedulers, event loops
 * run by a pool of threads: correlate/ASYNC.md, "M:N runtimes").
 *
 * What is left when thread identity is gone:
 *
 * - Nesting.  A request arrives before its calls and answers after their
 *   replies.  The replay delivers a node's messages by first byte, each
 *   complete, so when a call comes every request that began before it is
 *   known with the start of its response: a request that answered before
 *   the call's reply began is no parent of it.
 * - Earliest deadline first.  Calls of one process to one destination are
 *   matched in send order, each to the possible request that answers
 *   first (and has not made its share of calls there yet).  Matching
 *   intervals by earliest deadline never strands a request whose answer
 *   is near, which is what makes a greedy FIFO state collapse (a wrong
 *   early choice leaves the true request "still waiting" at the head of
 *   every later decision); on a FIFO queue the request that waited
 *   longest is also the one that answers first.  With exponential
 *   service times every matching that respects nesting is equally
 *   likely, so nothing better than feasibility is there to use.
 * - Continuation, where the process shows it.  A call written by the
 *   thread whose last read was the reply of an earlier call continues that
 *   call's request, but only in a queue whose calls follow a reply from
 *   one other destination in at least `gate_share` of them (Laplace
 *   smoothed), learned from the log: an M:N loop that writes the next call
 *   from the reply's handler shows it on every call, a runtime whose
 *   reader thread goes on to write another request's call (Go's readLoop)
 *   does not.  The calls so joined are one group, matched together: the
 *   group's last reply is the deadline the request must outlive.
 *
 * The number of calls a request makes to a destination (k) is the ratio
 * of calls there to requests, rounded, at least 1.
 *
 * Streaming: a call waits until its node's clock is `horizon_ms` past its
 * group's last reply (its continuation would have come by then), then is
 * decided with its group; at most RING calls per process wait.  Memory:
 * per process RING calls and WIN requests, per thread TR reads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "../lib/event.h"
#include "../lib/u64map.h"
#include "../lib/util.h"

#define ALGO "nest-edf"
#define RING 512      /* calls per process waiting or recently decided */
#define WIN 1024      /* recent requests per process: the candidates (more than
                       * arrive while a call waits its horizon) */
#define NDEST 8       /* destinations a request's call counts track */
#define NQ 32         /* destinations per process with statistics */
#define NSRC 4        /* sources counted per queue for the gate */
#define TR 16         /* reads remembered per thread */
#define MAX_THREADS 65536

struct call {
	struct tj_msgkey key;
	uint64_t ts, end;       /* first byte; the group's last reply (head) */
	uint64_t dest;
	uint64_t head;          /* seq of the group's head (itself if head) */
	uint64_t next;          /* next member's seq, 0 = none (seqs start at 1) */
	struct tj_msgkey parent;
	uint16_t k;             /* head: calls a request makes to dest, as of now */
	uint8_t has_parent, decided, used_src, continued;
};

struct req {
	struct tj_msgkey key;
	uint64_t ts, resp;      /* arrival, response start (0: none seen) */
	uint64_t dest[NDEST];
	uint16_t ncall[NDEST];
};

struct queue {
	uint64_t dest;
	char name[72];     /* address:port, for --explain */
	uint64_t groups, calls, heads, continued, no_candidate, abstained;
	uint64_t src[NSRC], nsrc[NSRC], total;  /* src 0: not a reply */
};

struct proc {
	uint64_t id;            /* node << 32 | pid */
	uint64_t clock;         /* its node's time, as far as delivered */
	uint64_t next_seq, front; /* calls [front, next_seq) wait */
	struct call calls[RING];
	struct req reqs[WIN];
	uint64_t nreq;
	uint64_t ncalls, merged; /* call messages; of several write syscalls */
	struct queue q[NQ];
	unsigned nq;
};

struct read {
	uint64_t ts;
	uint64_t proc;          /* proc id */
	uint64_t seq;           /* call seq whose reply this was; 0: a request */
	uint64_t dest;
};

struct thr {
	struct read r[TR];
	unsigned next;
};

struct nedf {
	uint64_t horizon_ns;
	double gate_share;
	int explain;
	struct tj_u64map procs;   /* id -> struct proc * */
	struct tj_u64map threads; /* node << 32 | tid -> struct thr * */
	struct proc **plist;
	size_t np, pcap;
};

static const char *const known_params[] = { "horizon_ms", "gate_share", "explain", NULL };

static uint64_t dest_of(const struct tj_message *m)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 16; i++)
		h = (h ^ m->raddr[i]) * 1099511628211ull;
	h = (h ^ m->rport) * 1099511628211ull;
	return h | 1; /* never 0: 0 means "no destination" */
}

static int nedf_open(void **stp, const struct tj_params *p, struct tj_err *err)
{
	double hz, share, ex;
	int rc = tj_params_check(p, known_params, ALGO, err);
	if (rc)
		return rc;
	if ((rc = tj_param_double(p, "horizon_ms", 5, &hz, err)) ||
	    (rc = tj_param_double(p, "gate_share", 0.95, &share, err)) ||
	    (rc = tj_param_double(p, "explain", 0, &ex, err))) {
		char msg[sizeof(err->msg)];
		if (!err)
			return rc;
		snprintf(msg, sizeof(msg), "%s", err->msg);
		return tj_errf(err, -rc, ALGO ": %s", msg);
	}
	if (!(hz >= 0 && hz <= 60000))
		return tj_errf(err, TJ_E_ARG, ALGO ": param horizon_ms=%s: 0 to 60000 expected",
			       tj_param_str(p, "horizon_ms", ""));
	if (!(share > 0.5 && share <= 1))
		return tj_errf(err, TJ_E_ARG, ALGO ": param gate_share=%s: a share in (0.5, 1] expected",
			       tj_param_str(p, "gate_share", ""));
	if (ex != 0 && ex != 1)
		return tj_errf(err, TJ_E_ARG, ALGO ": param explain=%g: 0 or 1", ex);
	struct nedf *s = calloc(1, sizeof(*s));
	if (!s)
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	s->horizon_ns = (uint64_t)(hz * 1e6);
	s->gate_share = share;
	s->explain = ex == 1;
	tj_u64map_init(&s->procs);
	tj_u64map_init(&s->threads);
	*stp = s;
	return 0;
}

static struct proc *proc_of(struct nedf *s, uint32_t node, uint32_t pid)
{
	uint64_t id = (uint64_t)node << 32 | pid;
	uint64_t *v = tj_u64map_get(&s->procs, id);
	if (v)
		return (struct proc *)(uintptr_t)*v;
	struct proc *p = calloc(1, sizeof(*p));
	if (!p || tj_grow((void **)&s->plist, &s->pcap, s->np + 1, sizeof(*s->plist)) ||
	    tj_u64map_put(&s->procs, id, (uint64_t)(uintptr_t)p)) {
		free(p);
		return NULL;
	}
	p->id = id;
	p->next_seq = p->front = 1;
	s->plist[s->np++] = p;
	return p;
}

static struct queue *queue_of(struct proc *p, uint64_t dest, const struct tj_message *m)
{
	for (unsigned i = 0; i < p->nq; i++)
		if (p->q[i].dest == dest)
			return &p->q[i];
	if (p->nq == NQ)
		return NULL; /* more destinations than tracked: no statistics */
	struct queue *q = &p->q[p->nq++];
	memset(q, 0, sizeof(*q));
	q->dest = dest;
	if (m) {
		char a[64];
		tj_addr_format(m->family, m->raddr, a);
		snprintf(q->name, sizeof(q->name), "%s:%u", a, (unsigned)m->rport);
	}
	return q;
}

static struct call *call_at(struct proc *p, uint64_t seq)
{
	if (!seq || seq >= p->next_seq || p->next_seq - seq > RING)
		return NULL;
	return &p->calls[seq % RING];
}

static void forget_threads(struct nedf *s)
{
	for (size_t i = 0; i < s->threads.cap; i++)
		if (s->threads.ent[i].used)
			free((void *)(uintptr_t)s->threads.ent[i].val);
	tj_u64map_free(&s->threads);
	tj_u64map_init(&s->threads);
}

static int remember_read(struct nedf *s, uint32_t node, uint32_t tid, const struct read *r)
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

/* The thread's last read before ts, or NULL. */
static const struct read *last_read(struct nedf *s, uint32_t node, uint32_t tid, uint64_t ts)
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

/* Call c takes the decision of from (its group's head, or the call it
 * continues) and its edge goes out. */
static int emit_as(struct call *c, const struct call *from, struct tj_edge_sink *out)
{
	struct tj_edge e = { .child = c->key, .score = 1.0,
			     .has_parent = from->has_parent, .parent = from->parent };
	c->decided = 1;
	c->has_parent = from->has_parent;
	c->parent = from->parent;
	return out->emit(out, &e);
}

static int emit_group(struct proc *p, struct call *h, struct tj_edge_sink *out)
{
	for (struct call *c = h; c; c = call_at(p, c->next)) {
		int rc = emit_as(c, h, out);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Does the process pipeline its calls (several outstanding on one
 * connection)?  Requests written back to back merge into one call message
 * of several write syscalls (lookahead.c's fingerprint, the same share):
 * one message then stands for several requests' calls, and neither the
 * count per request nor the nesting of a reply in one request holds, so
 * nest-edf answers no parent there rather than a guess. */
static int pipelining(const struct nedf *s, const struct proc *p)
{
	return p->merged / (p->ncalls + 1.0) > 1 - s->gate_share;
}

/* Calls r made to dest so far (as decided here). */
static unsigned req_calls(const struct req *r, uint64_t dest)
{
	for (int i = 0; i < NDEST && r->dest[i]; i++)
		if (r->dest[i] == dest)
			return r->ncall[i];
	return 0;
}

static void req_add(struct req *r, uint64_t dest)
{
	for (int i = 0; i < NDEST; i++) {
		if (r->dest[i] == dest || !r->dest[i]) {
			r->dest[i] = dest;
			r->ncall[i]++;
			return;
		}
	}
	/* more destinations than tracked: not counted */
}

/* The group headed by h: earliest deadline among the requests that began
 * before it, outlive its last reply and have made fewer than k calls to
 * its destination. */
static int decide(struct nedf *s, struct proc *p, struct call *h, struct tj_edge_sink *out)
{
	struct queue *q = queue_of(p, h->dest, NULL);
	if (pipelining(s, p)) {
		if (q)
			q->abstained++;
		return emit_group(p, h, out); /* no parent: nesting says nothing */
	}
	unsigned k = h->k ? h->k : 1;
	int best = -1;
	unsigned best_n = 0;
	uint64_t best_resp = 0, best_ts = 0;
	unsigned nw = p->nreq < WIN ? (unsigned)p->nreq : WIN;
	for (unsigned i = 0; i < nw; i++) {
		struct req *r = &p->reqs[i];
		uint64_t resp = r->resp ? r->resp : UINT64_MAX;
		if (r->ts >= h->ts || resp <= h->end)
			continue;
		unsigned n = req_calls(r, h->dest);
		if (n >= k)
			continue;
		if (best < 0 || n < best_n || (n == best_n && (resp < best_resp ||
		    (resp == best_resp && r->ts < best_ts)))) {
			best = (int)i;
			best_n = n;
			best_resp = resp;
			best_ts = r->ts;
		}
	}
	if (q)
		q->groups++;
	if (best >= 0) {
		req_add(&p->reqs[best], h->dest);
		h->has_parent = 1;
		h->parent = p->reqs[best].key;
	} else if (q) {
		q->no_candidate++;
	}
	return emit_group(p, h, out);
}

/* Decide the waiting groups whose continuations would have come by now
 * (all of them with force). */
static int release(struct nedf *s, struct proc *p, struct tj_edge_sink *out, int force)
{
	while (p->front < p->next_seq) {
		struct call *c = &p->calls[p->front % RING];
		if (c->decided || c->head != p->front) { /* a member: goes with its head */
			p->front++;
			continue;
		}
		uint64_t last = c->end > c->ts ? c->end : c->ts;
		if (!force && p->next_seq - p->front < RING && p->clock <= last + s->horizon_ns)
			break;
		int rc = decide(s, p, c, out);
		if (rc < 0)
			return rc;
		p->front++;
	}
	return 0;
}

static int on_call(struct nedf *s, struct proc *p, const struct tj_message *m,
		   struct tj_edge_sink *out)
{
	if (p->next_seq - p->front >= RING) { /* full: decide the oldest */
		int rc = release(s, p, out, 0);
		if (rc < 0)
			return rc;
	}
	uint64_t seq = p->next_seq++;
	struct call *c = &p->calls[seq % RING];
	p->ncalls++;
	p->merged += m->nsyscalls > 1;
	memset(c, 0, sizeof(*c));
	c->key = m->key;
	c->ts = m->ts_first;
	c->end = m->ts_reply ? m->ts_reply : m->ts_first;
	c->dest = dest_of(m);
	c->head = seq;
	struct queue *q = queue_of(p, c->dest, m);
	const struct read *r = last_read(s, m->key.node, m->tid_first, m->ts_first);
	uint64_t src = r && r->seq && r->proc == p->id ? r->dest : 0;
	struct call *x = r && src ? call_at(p, r->seq) : NULL;
	if (q) {
		q->calls++;
		/* the gate: the queue's most common source, and its share */
		unsigned top = 0;
		int found = 0;
		for (unsigned i = 0; i < NSRC; i++) {
			if (q->nsrc[i] && q->src[i] == src) {
				q->nsrc[i]++;
				found = 1;
			}
		}
		if (!found)
			for (unsigned i = 0; i < NSRC; i++)
				if (!q->nsrc[i]) {
					q->src[i] = src;
					q->nsrc[i] = 1;
					break;
				}
		q->total++;
		for (unsigned i = 1; i < NSRC; i++)
			if (q->nsrc[i] > q->nsrc[top])
				top = i;
		int gated = q->src[top] && q->src[top] != c->dest &&
			    (q->nsrc[top] + 1.0) / (q->total + 2.0) >= s->gate_share;
		if (gated && x && src == q->src[top] && !x->used_src) {
			x->used_src = 1;
			struct call *h = call_at(p, x->head);
			q->continued++;
			c->continued = 1;
			if (h && !h->decided) { /* join the waiting group */
				struct call *t = h;
				while (call_at(p, t->next))
					t = call_at(p, t->next);
				t->next = seq;
				c->head = x->head;
				if (c->end > h->end)
					h->end = c->end;
			} else { /* its head was decided: follow it now */
				int rc = emit_as(c, x, out);
				if (rc < 0)
					return rc;
			}
		}
	}
	if (q && !c->continued) {
		/* calls per request: group heads to this destination over the
		 * requests that began before this call, rounded, at least 1 */
		double ratio = (double)++q->heads / (double)(p->nreq ? p->nreq : 1);
		c->k = ratio > 1.5 ? (uint16_t)(ratio < 1000 ? lround(ratio) : 1000) : 1;
	}
	if (m->ts_reply) {
		struct read rd = { .ts = m->ts_reply, .proc = p->id, .seq = seq, .dest = c->dest };
		if (remember_read(s, m->key.node, m->tid_reply, &rd))
			return -TJ_E_NOMEM;
	}
	return 0;
}

static int nedf_message(void *st, const struct tj_message *m,
			struct tj_edge_sink *out, struct tj_err *err)
{
	struct nedf *s = st;
	if (!m->is_request)
		return 0;
	struct proc *p = proc_of(s, m->key.node, m->pid);
	if (!p)
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	if (m->ts_first > p->clock)
		p->clock = m->ts_first;
	int rc;
	if (m->role == TJ_ROLE_SERVER) {
		struct req *r = &p->reqs[p->nreq % WIN];
		memset(r, 0, sizeof(*r));
		r->key = m->key;
		r->ts = m->ts_first;
		r->resp = m->ts_reply;
		p->nreq++;
		struct read rd = { .ts = m->ts_last, .proc = p->id };
		if (remember_read(s, m->key.node, m->tid_last, &rd))
			return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
		rc = release(s, p, out, 0);
	} else {
		rc = on_call(s, p, m, out);
		if (rc == 0)
			rc = release(s, p, out, 0);
	}
	if (rc == -TJ_E_NOMEM)
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	if (rc < 0)
		return tj_errf(err, -rc, ALGO ": the edge sink failed");
	return 0;
}

static int nedf_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	struct nedf *s = st;
	for (size_t i = 0; i < s->np; i++) {
		int rc = release(s, s->plist[i], out, 1);
		if (rc < 0)
			return tj_errf(err, -rc, ALGO ": the edge sink failed");
	}
	if (!s->explain)
		return 0;
	fprintf(stderr, ALGO ": per queue (node, pid, destination): groups matched by earliest deadline,"
		" calls joined to a group by continuation, the gate's source share, calls per request k\n");
	for (size_t i = 0; i < s->np; i++) {
		const struct proc *p = s->plist[i];
		for (unsigned j = 0; j < p->nq; j++) {
			const struct queue *q = &p->q[j];
			unsigned top = 0;
			for (unsigned t = 1; t < NSRC; t++)
				if (q->nsrc[t] > q->nsrc[top])
					top = t;
			double share = q->total ? (q->nsrc[top] + 1.0) / (q->total + 2.0) : 0;
			double ratio = p->nreq ? (double)q->heads / (double)p->nreq : 0;
			fprintf(stderr, ALGO ":   node %u pid %u -> %s: %llu calls, %llu groups"
				" (%llu with no possible request, %llu left without a parent: the process pipelines),"
				" %llu continued; gate %s (%s %.3f); k %u\n",
				(unsigned)(p->id >> 32), (unsigned)p->id, q->name,
				(unsigned long long)q->calls, (unsigned long long)q->groups,
				(unsigned long long)q->no_candidate, (unsigned long long)q->abstained,
				(unsigned long long)q->continued,
				q->src[top] && q->src[top] != q->dest && share >= s->gate_share ? "on" : "off",
				q->src[top] ? "replies from one destination" : "not after a reply", share,
				ratio > 1.5 ? (unsigned)lround(ratio) : 1);
		}
	}
	return 0;
}

static void nedf_close(void *st)
{
	struct nedf *s = st;
	if (!s)
		return;
	forget_threads(s);
	tj_u64map_free(&s->threads);
	for (size_t i = 0; i < s->np; i++)
		free(s->plist[i]);
	free(s->plist);
	tj_u64map_free(&s->procs);
	free(s);
}

const struct tj_correlator tj_correlator_nest_edf = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "nest-edf",
	.description = "M:N runtimes: calls matched by earliest deadline among the requests they nest in,"
		       " joined by continuation where the queue shows it",
	.params_help = "horizon_ms=5  a call waits this long (node time) past its group's last reply for a continuation\n"
		       "gate_share=0.95  share of a queue's calls that must follow a reply from one other destination"
		       " for continuation to join them\n"
		       "explain=0  1: print each queue's groups, continuations, gate and k on stderr",
	.open = nedf_open,
	.train = NULL,
	.message = nedf_message,
	.finish = nedf_finish,
	.close = nedf_close,
};
