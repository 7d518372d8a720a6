/* The `unit-fifo` correlator: calls counted by their write syscalls, for
 * pipelined connections (correlate/ASYNC.md, "Pipelined shared
 * connections").
 *
 * On a connection where a client writes each call at once, behind those
 * still outstanding, two calls written with no reply read between them
 * are one message (DESIGN.md): the message is named by its first byte,
 * and its parent is the parent of the call that byte starts (the label
 * reads that call's trace header).  The other calls of the message are
 * hidden, and every method that keeps "which requests already made this
 * call" per *message* keeps their requests waiting for a call they made:
 * a FIFO head then stays on those stale requests and every later answer
 * is shifted (the classifier and order-align answer 4-7 requests too
 * old on the real pipelined capture).
 *
 * The kernel shows how many write syscalls a message took.  A client
 * that writes each call with one syscall makes a message of n writes out
 * of n calls; one that writes a call in k pieces (header, then body)
 * makes k writes per call every time.  So the writes per call of a queue
 * (process, destination) are its most common writes per message, and a
 * message of n writes holds n / that many calls, at most as many as its
 * bytes make (models/call_units.h).
 *
 * The decision, per call message, in replay order (streaming):
 *  - thread: the calling thread's last read was a request still open, of
 *    the same process: that request made the call (metadata's rule);
 *  - fifo:   else the oldest open request of the process with no call to
 *    this destination yet (calls queued on a connection go out in their
 *    requests' order);
 *  - none:   else no parent.
 * Then the message's hidden calls (its calls beyond the first) are given,
 * in order, to the next FIFO heads, so the bookkeeping stays one call per
 * call.  A wrong guess there leaves a stale request only until it is
 * answered (open requests only), so an error does not last.
 *
 * Memory: the open requests of each node (compacted as they are answered
 * or pass `window`), the threads seen within `window`, one small
 * histogram per queue.  Assumptions and what it does not do: ASYNC.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "../lib/u64map.h"
#include "../lib/util.h"
#include "../models/call_units.h"
#include "../lib/event.h"

#define UF_DESTS 8      /* destinations remembered per request */

enum uf_why { UF_THREAD, UF_FIFO, UF_NONE, UF_NWHY };
static const char *const why_name[UF_NWHY] = { "thread", "fifo", "none" };

enum uf_units { UF_UNITS_AUTO, UF_UNITS_WRITES, UF_UNITS_MESSAGES };

struct uf_req {
	struct tj_msgkey key;
	uint64_t ts_first, ts_reply; /* ts_reply 0: its response never seen */
	uint32_t pid;
	uint8_t ndest;
	uint64_t dest[UF_DESTS];     /* destinations it called */
};

struct uf_node {
	uint32_t id;
	struct uf_req *reqs;         /* in arrival (delivery) order */
	size_t n, cap, compact_at;
};

struct uf_thr {
	uint64_t id;                 /* node << 32 | tid */
	uint64_t last_seen;
	uint8_t has_req;             /* its last read was a request */
	struct tj_msgkey req;
	uint64_t req_ts, req_reply;
	uint32_t req_pid;
};

struct uf_queue {                /* one (node, process, destination) */
	uint32_t node, pid;
	uint8_t family;
	uint16_t rport;
	uint8_t raddr[16];
	uint64_t msgs, calls, by[UF_NWHY];
};

struct uf {
	uint64_t window_ns;
	enum uf_units units;
	FILE *explain;
	struct uf_node *nodes;
	size_t nnodes, capnodes;
	struct tj_u64map thr_ix;     /* thread id -> index in thrs */
	struct uf_thr *thrs;
	size_t nthr, capthr, evict_at;
	struct tj_u64map q_ix;       /* queue hash -> index in qs */
	struct uf_queue *qs;
	size_t nq, capq;
	struct tj_call_units units_of; /* calls per message, per queue */
};

static const char *const known_params[] = { "window", "units", "explain", NULL };

static int uf_open(void **stp, const struct tj_params *p, struct tj_err *err)
{
	double window;
	int explain = 0;
	int rc = tj_params_check(p, known_params, "unit-fifo", err);
	if (rc)
		return rc;
	if ((rc = tj_param_double(p, "window", 10.0, &window, err)) ||
	    (rc = tj_param_flag(p, "explain", 0, "unit-fifo", &explain, err)))
		return rc;
	if (!(window > 0 && window <= 1e6))
		return tj_errf(err, TJ_E_ARG, "unit-fifo: param window=%s: seconds in (0, 1e6] expected",
			       tj_param_str(p, "window", ""));
	const char *u = tj_param_str(p, "units", "auto");
	enum uf_units units;
	if (strcmp(u, "auto") == 0)
		units = UF_UNITS_AUTO;
	else if (strcmp(u, "writes") == 0)
		units = UF_UNITS_WRITES;
	else if (strcmp(u, "messages") == 0)
		units = UF_UNITS_MESSAGES;
	else
		return tj_errf(err, TJ_E_ARG,
			       "unit-fifo: param units=%s: auto, writes or messages expected", u);
	struct uf *s = calloc(1, sizeof(*s));
	if (!s)
		return tj_errf(err, TJ_E_NOMEM, "unit-fifo: out of memory");
	s->window_ns = (uint64_t)(window * 1e9);
	s->units = units;
	s->explain = explain ? stderr : NULL;
	s->evict_at = 1024;
	tj_u64map_init(&s->thr_ix);
	tj_u64map_init(&s->q_ix);
	tj_call_units_init(&s->units_of);
	*stp = s;
	return 0;
}

static struct uf_node *node_get(struct uf *s, uint32_t id)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].id == id)
			return &s->nodes[i];
	if (tj_grow((void **)&s->nodes, &s->capnodes, s->nnodes + 1, sizeof(*s->nodes)))
		return NULL;
	struct uf_node *n = &s->nodes[s->nnodes++];
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->compact_at = 64;
	return n;
}

static int req_open(const struct uf_req *r, uint64_t now)
{
	return r->ts_first < now && (!r->ts_reply || r->ts_reply > now);
}

/* Drop requests no later call can have: answered, or older than the
 * window (a node's time only moves forward). */
static void node_compact(struct uf *s, struct uf_node *n, uint64_t now)
{
	size_t w = 0;
	for (size_t i = 0; i < n->n; i++) {
		const struct uf_req *r = &n->reqs[i];
		int done = (r->ts_reply && r->ts_reply < now) ||
			   (now > r->ts_first && now - r->ts_first > s->window_ns);
		if (!done)
			n->reqs[w++] = *r;
	}
	n->n = w;
	n->compact_at = 2 * w + 64;
}

static struct uf_thr *thr_get(struct uf *s, uint32_t node, uint32_t tid, uint64_t now,
			      int create, int *oom)
{
	if (tid == TJ_TID_UNKNOWN)
		return NULL;
	uint64_t id = (uint64_t)node << 32 | tid;
	uint64_t *v = tj_u64map_get(&s->thr_ix, id);
	if (v) {
		s->thrs[*v].last_seen = now;
		return &s->thrs[*v];
	}
	if (!create)
		return NULL;
	if (s->nthr >= s->evict_at) { /* thread-per-request servers make many */
		size_t w = 0;
		tj_u64map_free(&s->thr_ix);
		tj_u64map_init(&s->thr_ix);
		for (size_t i = 0; i < s->nthr; i++) {
			if (now > s->thrs[i].last_seen && now - s->thrs[i].last_seen > s->window_ns)
				continue;
			s->thrs[w] = s->thrs[i];
			if (tj_u64map_put(&s->thr_ix, s->thrs[w].id, w) < 0)
				goto nomem;
			w++;
		}
		s->nthr = w;
		s->evict_at = 2 * w + 1024;
	}
	if (tj_grow((void **)&s->thrs, &s->capthr, s->nthr + 1, sizeof(*s->thrs)) ||
	    tj_u64map_put(&s->thr_ix, id, s->nthr) < 0)
		goto nomem;
	struct uf_thr *t = &s->thrs[s->nthr++];
	memset(t, 0, sizeof(*t));
	t->id = id;
	t->last_seen = now;
	return t;
nomem:
	*oom = 1;
	return NULL;
}

static struct uf_queue *queue_get(struct uf *s, const struct tj_message *m, uint64_t dest)
{
	uint64_t h = tj_call_queue(m, dest);
	int added;
	uint64_t *v = tj_u64map_upsert(&s->q_ix, h, &added);
	if (!v)
		return NULL;
	if (added) {
		if (tj_grow((void **)&s->qs, &s->capq, s->nq + 1, sizeof(*s->qs))) {
			tj_u64map_del(&s->q_ix, h);
			return NULL;
		}
		struct uf_queue *q = &s->qs[s->nq];
		memset(q, 0, sizeof(*q));
		q->node = m->key.node;
		q->pid = m->pid;
		q->family = m->family;
		q->rport = m->rport;
		memcpy(q->raddr, m->raddr, 16);
		*v = s->nq++;
	}
	return &s->qs[*v];
}

static int called(const struct uf_req *r, uint64_t dest)
{
	for (unsigned i = 0; i < r->ndest && i < UF_DESTS; i++)
		if (r->dest[i] == dest)
			return 1;
	return 0;
}

static void mark_called(struct uf_req *r, uint64_t dest)
{
	if (called(r, dest))
		return;
	r->dest[r->ndest % UF_DESTS] = dest; /* beyond UF_DESTS: the oldest is forgotten */
	if (r->ndest < 255)
		r->ndest++;
}

/* The oldest open request of the process with no call to dest. */
static struct uf_req *fifo_head(struct uf_node *n, uint32_t pid, uint64_t dest, uint64_t now)
{
	for (size_t i = 0; i < n->n; i++) {
		struct uf_req *r = &n->reqs[i];
		if (r->ts_first >= now)
			break; /* in arrival order: none later is older */
		if (!req_open(r, now) || called(r, dest))
			continue;
		if (pid == TJ_PID_UNKNOWN || r->pid == TJ_PID_UNKNOWN || r->pid == pid)
			return r;
	}
	return NULL;
}

/* The request the thread last read, if it is still open, among the node's. */
static struct uf_req *thread_req(struct uf_node *n, const struct uf_thr *t,
				 const struct tj_message *m)
{
	if (!t || !t->has_req)
		return NULL;
	if (!(t->req_ts < m->ts_first && (!t->req_reply || t->req_reply > m->ts_first)))
		return NULL;
	if (m->pid != TJ_PID_UNKNOWN && t->req_pid != TJ_PID_UNKNOWN && m->pid != t->req_pid)
		return NULL;
	for (size_t i = n->n; i-- > 0;) /* it is among the newest */
		if (tj_msgkey_eq(&n->reqs[i].key, &t->req))
			return &n->reqs[i];
	return NULL;
}

static int on_call(struct uf *s, struct uf_node *n, const struct tj_message *m,
		   struct tj_edge_sink *out, struct tj_err *err)
{
	int oom = 0;
	uint64_t dest = tj_call_dest(m);
	struct uf_queue *q = queue_get(s, m, dest);
	struct uf_thr *t = thr_get(s, m->key.node, m->tid_first, m->ts_first, 0, &oom);
	uint64_t ncalls = tj_call_units_add(&s->units_of, m, dest);
	if (!q || !ncalls)
		return tj_errf(err, TJ_E_NOMEM, "unit-fifo: out of memory");
	if (s->units == UF_UNITS_MESSAGES)
		ncalls = 1;
	else if (s->units == UF_UNITS_WRITES)
		ncalls = m->nsyscalls ? m->nsyscalls : 1;
	enum uf_why why = UF_THREAD;
	struct uf_req *p = thread_req(n, t, m);
	if (!p) {
		p = fifo_head(n, m->pid, dest, m->ts_first);
		why = p ? UF_FIFO : UF_NONE;
	}
	struct tj_edge e = { .child = m->key, .score = why == UF_THREAD ? 1.0 : 0.5 };
	if (p) {
		e.has_parent = 1;
		e.parent = p->key;
		mark_called(p, dest);
	} else {
		e.score = 1.0;
	}
	/* the message's hidden calls: the next requests in line */
	for (uint64_t k = 1; k < ncalls; k++) {
		struct uf_req *h = fifo_head(n, m->pid, dest, m->ts_first);
		if (!h)
			break;
		mark_called(h, dest);
	}
	q->msgs++;
	q->calls += ncalls;
	q->by[why]++;
	if (s->explain) {
		char a[TJ_MSGKEY_STRLEN], b[TJ_MSGKEY_STRLEN];
		fprintf(s->explain, "call %s parent %s by %s (%" PRIu32 " writes, %" PRIu64 " calls)\n",
			tj_msgkey_format(&m->key, a), p ? tj_msgkey_format(&p->key, b) : "-",
			why_name[why], m->nsyscalls, ncalls);
	}
	if (out->emit(out, &e) < 0)
		return tj_errf(err, TJ_E_IO, "unit-fifo: the edge sink failed");
	return 0;
}

static int uf_message(void *st, const struct tj_message *m, struct tj_edge_sink *out,
		      struct tj_err *err)
{
	struct uf *s = st;
	struct uf_node *n = node_get(s, m->key.node);
	int oom = 0;
	if (!n)
		return tj_errf(err, TJ_E_NOMEM, "unit-fifo: out of memory");
	if (m->key.dir == TJ_DIR_IN) {
		/* any read tells what its thread last did */
		struct uf_thr *t = thr_get(s, m->key.node, m->tid_last, m->ts_first, 1, &oom);
		if (oom)
			return tj_errf(err, TJ_E_NOMEM, "unit-fifo: out of memory");
		int request = m->is_request && m->role == TJ_ROLE_SERVER;
		if (t) {
			t->has_req = (uint8_t)request;
			if (request) {
				t->req = m->key;
				t->req_ts = m->ts_first;
				t->req_reply = m->ts_reply;
				t->req_pid = m->pid;
			}
		}
		if (!request)
			return 0;
		if (n->n >= n->compact_at)
			node_compact(s, n, m->ts_first);
		if (tj_grow((void **)&n->reqs, &n->cap, n->n + 1, sizeof(*n->reqs)))
			return tj_errf(err, TJ_E_NOMEM, "unit-fifo: out of memory");
		struct uf_req *r = &n->reqs[n->n++];
		memset(r, 0, sizeof(*r));
		r->key = m->key;
		r->ts_first = m->ts_first;
		r->ts_reply = m->ts_reply;
		r->pid = m->pid;
		return 0;
	}
	if (m->role != TJ_ROLE_CLIENT || !m->is_request)
		return 0;
	if (n->n >= n->compact_at)
		node_compact(s, n, m->ts_first);
	return on_call(s, n, m, out, err);
}

static int uf_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	(void)out;
	(void)err;
	struct uf *s = st;
	if (!s->explain)
		return 0; /* every call was answered when it came */
	fprintf(s->explain, "unit-fifo: %zu queues (node, process, destination): call messages, "
		"calls counted (by write syscalls over the queue's usual writes per call), "
		"decided by thread / fifo / none\n", s->nq);
	for (size_t i = 0; i < s->nq; i++) {
		const struct uf_queue *q = &s->qs[i];
		char a[TJ_ADDR_STRLEN];
		tj_addr_format(q->family, q->raddr, a);
		fprintf(s->explain,
			"  node %" PRIu32 " pid %" PRIu32 " -> %s:%u  %" PRIu64 " messages, %" PRIu64
			" calls; thread %" PRIu64 ", fifo %" PRIu64 ", none %" PRIu64 "\n",
			q->node, q->pid, a, q->rport, q->msgs, q->calls, q->by[UF_THREAD],
			q->by[UF_FIFO], q->by[UF_NONE]);
	}
	return 0;
}

static void uf_close(void *st)
{
	struct uf *s = st;
	if (!s)
		return;
	for (size_t i = 0; i < s->nnodes; i++)
		free(s->nodes[i].reqs);
	free(s->nodes);
	free(s->thrs);
	free(s->qs);
	tj_u64map_free(&s->thr_ix);
	tj_u64map_free(&s->q_ix);
	tj_call_units_free(&s->units_of);
	free(s);
}

const struct tj_correlator tj_correlator_unit_fifo = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "unit-fifo",
	.description = "the thread's open request, else FIFO order, counting a message's calls by "
		       "its write syscalls (pipelined connections)",
	.params_help = "window=10     seconds a request without a response stays a candidate\n"
		       "units=auto    calls per message: auto (writes over the queue's usual writes "
		       "per call, at most the bytes of so many calls), writes, messages\n"
		       "explain=0     1: print each call's signal and each queue's counts on stderr",
	.open = uf_open,
	.train = NULL,
	.message = uf_message,
	.finish = uf_finish,
	.close = uf_close,
};
