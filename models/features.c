/* Streaming computation of (candidate parent, call) features; the rules
 * are in features.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "features.h"
#include "../lib/u64map.h"
#include "call_units.h"

const char *const tj_feat_names[TJ_FEAT_N] = {
	[TJ_F_DT_START] = "dt_start",
	[TJ_F_DT_PARENT_READ] = "dt_parent_read",
	[TJ_F_DT_THREAD_READ] = "dt_thread_read",
	[TJ_F_THREAD_READ_UNKNOWN] = "thread_read_unknown",
	[TJ_F_SAME_TID] = "same_tid",
	[TJ_F_SAME_TID_REPLY] = "same_tid_reply",
	[TJ_F_TID_UNKNOWN] = "tid_unknown",
	[TJ_F_SAME_PID] = "same_pid",
	[TJ_F_PID_UNKNOWN] = "pid_unknown",
	[TJ_F_THREAD_LAST_REQ] = "thread_last_req",
	[TJ_F_THREAD_PREV_PARENT] = "thread_prev_parent",
	[TJ_F_PARENT_CALLS] = "parent_calls",
	[TJ_F_PARENT_OPEN_CALLS] = "parent_open_calls",
	[TJ_F_DT_PARENT_LAST_CALL] = "dt_parent_last_call",
	[TJ_F_PARENT_NO_CALL] = "parent_no_call",
	[TJ_F_NODE_INFLIGHT] = "node_inflight",
	[TJ_F_RANK] = "rank",
	[TJ_F_CALL_BYTES] = "call_bytes",
	[TJ_F_PARENT_BYTES] = "parent_bytes",
	[TJ_F_KEEPALIVE] = "keepalive",
	[TJ_F_DT_REPLY] = "dt_reply",
	[TJ_F_REPLY_UNKNOWN] = "reply_unknown",
	[TJ_F_THREAD_CONTEXT] = "thread_context",
	[TJ_F_REPLY_BEFORE_RESPONSE] = "reply_before_response",
	[TJ_F_DT_PARENT_LAST_START] = "dt_parent_last_start",
	[TJ_F_PARENT_CALLED_DEST] = "parent_called_dest",
	[TJ_F_THREAD_NO_CONTEXT] = "thread_no_context",
	[TJ_F_FIFO_FIRST] = "fifo_first",
	[TJ_F_FIFO_OLDER] = "fifo_older",
	[TJ_F_DEST_CALLS] = "dest_calls",
	[TJ_F_REPLY_PARENT] = "reply_parent",
	[TJ_F_REPLY_PARENT_SAME_SOCK] = "reply_parent_same_sock",
	[TJ_F_FIFO_AFTER_SAME_SOCK] = "fifo_after_same_sock",
	[TJ_F_QUEUE_HEAD] = "queue_head",
	[TJ_F_QUEUE_RANK] = "queue_rank",
	[TJ_F_QUEUE_PASSED] = "queue_passed",
};

/* Counts below this take their log1p from a table. */
#define LOG_LUT 256
/* Responses of a parent's calls remembered for "open calls". */
#define OPEN_RING 8
/* Requests held per node; beyond it the oldest is dropped (counted). */
#define NODE_HOLD_MAX 16384

struct req {
	struct tj_msgkey key;
	uint64_t ts_first, ts_last, ts_reply, bytes;
	uint32_t pid, tid_last, tid_reply;
	uint32_t ncalls;
	uint64_t last_call_reply;          /* response start of the last call, 0 none */
	uint64_t call_reply[OPEN_RING];    /* response starts of recent calls (0 = none yet) */
	uint64_t call_dest[OPEN_RING];     /* destinations of recent calls */
	uint64_t last_call_start;          /* start of the last call */
	double log_bytes;
};

/* What a call's features share across its candidates. */
struct call_consts {
	double log_bytes, dt_thread_read, thread_read_unknown;
	uint64_t dest;
	int reply_same_sock; /* the thread last read a response on the call's socket */
};

struct node {
	uint32_t id;
	struct req *reqs; /* in order of ts_first (delivery order) */
	size_t n, cap;
	size_t compact_at; /* compact when n reaches this */
};

struct thr {
	uint64_t key;          /* node << 32 | tid */
	uint64_t last_read;    /* ts_last of the latest message it read, 0 none */
	uint64_t last_seen;    /* for eviction */
	struct tj_msgkey last_req;    /* last server request it read */
	struct tj_msgkey prev_parent; /* parent of its previous call */
	struct tj_msgkey context;     /* the request it last worked for */
	struct tj_msgkey reply_parent; /* parent of the call whose response it
					* read last, when its last read was one */
	uint64_t reply_sock;          /* socket of that response (last read a
					 response: has_reply_read) */
	uint8_t has_last_req, has_prev_parent, has_context;
	uint8_t has_reply_read, has_reply_parent;
};

/* A call waiting for its response to be read: whoever reads the response
 * (node, sock, first byte at ts) goes back to working for the call's
 * parent. */
struct pending {
	uint64_t id;              /* hash of node, sock, ts of the response */
	uint64_t ts;              /* for eviction */
	struct tj_msgkey parent;
	uint8_t has_parent;
};

/* A decided column's slog_us(now - then), kept for the next state fed the
 * same call: the methods mostly agree, so its candidates' last calls are
 * mostly the same, and log1p was 6 % of the default's time. */
struct since_memo {
	uint64_t then[2]; /* last_call_reply, last_call_start */
	double v[2];
	uint8_t ok[2];
};

/* The last call's candidates and their decision-free columns
 * (tj_feat_share). */
struct tj_feat_memo {
	int valid;
	struct tj_feat_opts o;
	struct tj_msgkey call;
	uint64_t ts, inflight;
	size_t n;
	struct tj_msgkey cand[TJ_FEAT_MAX_CAND];
	double x[TJ_FEAT_MAX_CAND][TJ_FEAT_N];
	struct since_memo since[TJ_FEAT_MAX_CAND]; /* valid for ts */
};

struct tj_feat {
	struct tj_feat_opts o;
	struct tj_feat_memo *memo; /* shared with the states fed the same stream */
	struct node *nodes;
	size_t nnodes;
	struct tj_u64map thr_ix; /* node<<32|tid -> index in thrs */
	struct thr *thrs;
	size_t nthr, thrcap, evict_at;
	struct tj_u64map pend_ix; /* pending.id -> index in pend */
	struct pending *pend;
	size_t npend, pendcap, pend_evict_at;
	uint64_t dropped;
	int last_was_call;
	struct tj_call_units units; /* calls per call message, per queue */
	/* queue hash -> ts_first of the request its calls are counted up to */
	struct tj_u64map queue_upto;
	double lut[LOG_LUT];
};

static double slog_us(double ns)
{
	double us = ns / 1000.0;
	return us >= 0 ? log1p(us) : -log1p(-us);
}

/* log1p of small counts (ranks, calls, requests in flight), without libm:
 * they are most of the features of a call with many candidates. */
static double log1p_count(const double *lut, uint64_t n)
{
	return n < LOG_LUT ? lut[n] : log1p((double)n);
}

static double dt(uint64_t later, uint64_t earlier)
{
	return later >= earlier ? (double)(later - earlier)
				: -(double)(earlier - later);
}

int tj_feat_new(struct tj_feat **fp, const struct tj_feat_opts *opts,
		struct tj_err *err)
{
	struct tj_feat *f = calloc(1, sizeof(*f));
	if (!f)
		return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
	f->o.max_cand = opts && opts->max_cand ? opts->max_cand
					       : TJ_FEAT_DEFAULT_MAX_CAND;
	f->o.window_ns = opts && opts->window_ns ? opts->window_ns
						 : TJ_FEAT_DEFAULT_WINDOW_NS;
	if (f->o.max_cand > TJ_FEAT_MAX_CAND) {
		free(f);
		return tj_errf(err, TJ_E_ARG, "features: max_cand %u above the limit %u",
			       opts->max_cand, TJ_FEAT_MAX_CAND);
	}
	for (unsigned i = 0; i < LOG_LUT; i++)
		f->lut[i] = log1p((double)i);
	tj_u64map_init(&f->thr_ix);
	tj_u64map_init(&f->pend_ix);
	tj_call_units_init(&f->units);
	tj_u64map_init(&f->queue_upto);
	f->evict_at = 1024;
	f->pend_evict_at = 1024;
	*fp = f;
	return 0;
}

void tj_feat_free(struct tj_feat *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nnodes; i++)
		free(f->nodes[i].reqs);
	free(f->nodes);
	free(f->thrs);
	tj_u64map_free(&f->thr_ix);
	tj_call_units_free(&f->units);
	tj_u64map_free(&f->queue_upto);
	free(f->pend);
	tj_u64map_free(&f->pend_ix);
	free(f);
}

int tj_feat_memo_new(struct tj_feat_memo **mo, struct tj_err *err)
{
	if (!(*mo = calloc(1, sizeof(**mo))))
		return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
	return 0;
}

void tj_feat_memo_free(struct tj_feat_memo *mo)
{
	free(mo);
}

void tj_feat_share(struct tj_feat *f, struct tj_feat_memo *mo)
{
	f->memo = mo;
}

uint64_t tj_feat_dropped(const struct tj_feat *f)
{
	return f->dropped;
}

static struct node *node_get(struct tj_feat *f, uint32_t id)
{
	for (size_t i = 0; i < f->nnodes; i++)
		if (f->nodes[i].id == id)
			return &f->nodes[i];
	struct node *n = realloc(f->nodes, (f->nnodes + 1) * sizeof(*n));
	if (!n)
		return NULL;
	f->nodes = n;
	n = &f->nodes[f->nnodes++];
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->compact_at = 64;
	return n;
}

static int req_done(const struct req *r, uint64_t now, uint64_t window)
{
	return (r->ts_reply && r->ts_reply < now) ||
	       (now > r->ts_first && now - r->ts_first > window);
}

/* Drop requests no later call can have as candidate (time only moves
 * forward on a node, so "done" stays done). */
static void node_compact(struct node *n, uint64_t now, uint64_t window)
{
	size_t w = 0;
	for (size_t i = 0; i < n->n; i++)
		if (!req_done(&n->reqs[i], now, window))
			n->reqs[w++] = n->reqs[i];
	n->n = w;
	n->compact_at = 2 * w + 64;
}

static int node_add(struct tj_feat *f, struct node *n, const struct tj_message *m)
{
	if (n->n >= n->compact_at)
		node_compact(n, m->ts_first, f->o.window_ns);
	if (n->n >= NODE_HOLD_MAX) {
		memmove(n->reqs, n->reqs + 1, (n->n - 1) * sizeof(*n->reqs));
		n->n--;
		f->dropped++;
	}
	if (n->n == n->cap) {
		size_t cap = n->cap ? 2 * n->cap : 64;
		struct req *r = realloc(n->reqs, cap * sizeof(*r));
		if (!r)
			return -1;
		n->reqs = r;
		n->cap = cap;
	}
	struct req *r = &n->reqs[n->n++];
	memset(r, 0, sizeof(*r));
	r->key = m->key;
	r->ts_first = m->ts_first;
	r->ts_last = m->ts_last;
	r->ts_reply = m->ts_reply;
	r->bytes = m->bytes;
	r->pid = m->pid;
	r->tid_last = m->tid_last;
	r->tid_reply = m->ts_reply ? m->tid_reply : TJ_TID_UNKNOWN;
	r->log_bytes = log1p((double)m->bytes);
	return 0;
}

/* Forget threads idle for longer than the window, when the table has
 * doubled since the last sweep: thread-per-request servers make many. */
static void thr_evict(struct tj_feat *f, uint64_t now)
{
	size_t w = 0;
	tj_u64map_free(&f->thr_ix);
	tj_u64map_init(&f->thr_ix);
	for (size_t i = 0; i < f->nthr; i++) {
		struct thr *t = &f->thrs[i];
		if (now > t->last_seen && now - t->last_seen > f->o.window_ns)
			continue;
		f->thrs[w] = *t;
		tj_u64map_put(&f->thr_ix, t->key, w); /* cannot fail: shrinking */
		w++;
	}
	f->nthr = w;
	f->evict_at = 2 * w + 1024;
}

/* The thread's state, created if absent; NULL for an unknown tid. */
static struct thr *thr_get(struct tj_feat *f, uint32_t node, uint32_t tid,
			   uint64_t now, int *oom)
{
	if (tid == TJ_TID_UNKNOWN)
		return NULL;
	uint64_t key = (uint64_t)node << 32 | tid;
	uint64_t *ix = tj_u64map_get(&f->thr_ix, key);
	if (ix) {
		f->thrs[*ix].last_seen = now;
		return &f->thrs[*ix];
	}
	if (f->nthr >= f->evict_at)
		thr_evict(f, now);
	if (f->nthr == f->thrcap) {
		size_t cap = f->thrcap ? 2 * f->thrcap : 256;
		struct thr *t = realloc(f->thrs, cap * sizeof(*t));
		if (!t) {
			*oom = 1;
			return NULL;
		}
		f->thrs = t;
		f->thrcap = cap;
	}
	if (tj_u64map_put(&f->thr_ix, key, f->nthr) < 0) {
		*oom = 1;
		return NULL;
	}
	struct thr *t = &f->thrs[f->nthr++];
	memset(t, 0, sizeof(*t));
	t->key = key;
	t->last_seen = now;
	return t;
}

static uint64_t pending_id(uint32_t node, uint64_t sock, uint64_t ts)
{
	return tj_hash64(ts ^ tj_hash64(sock ^ tj_hash64(node)));
}

/* Drop entries whose response never came (lost, or the log ended). */
static void pend_evict(struct tj_feat *f, uint64_t now)
{
	size_t w = 0;
	tj_u64map_free(&f->pend_ix);
	tj_u64map_init(&f->pend_ix);
	for (size_t i = 0; i < f->npend; i++) {
		struct pending *p = &f->pend[i];
		if (now > p->ts && now - p->ts > f->o.window_ns)
			continue;
		f->pend[w] = *p;
		tj_u64map_put(&f->pend_ix, p->id, w); /* cannot fail: shrinking */
		w++;
	}
	f->npend = w;
	f->pend_evict_at = 2 * w + 1024;
}

static void pend_add(struct tj_feat *f, uint64_t id, uint64_t ts,
		     const struct tj_msgkey *parent)
{
	if (f->npend >= f->pend_evict_at)
		pend_evict(f, ts);
	if (f->npend == f->pendcap) {
		size_t cap = f->pendcap ? 2 * f->pendcap : 256;
		struct pending *p = realloc(f->pend, cap * sizeof(*p));
		if (!p)
			return; /* a lost hint, not an error */
		f->pend = p;
		f->pendcap = cap;
	}
	if (tj_u64map_put(&f->pend_ix, id, f->npend) < 0)
		return;
	struct pending *p = &f->pend[f->npend++];
	p->id = id;
	p->ts = ts;
	p->has_parent = parent != NULL;
	if (parent)
		p->parent = *parent;
}

/* Remove and return the entry for a response, if any. */
static int pend_take(struct tj_feat *f, uint64_t id, struct pending *out)
{
	uint64_t *ix = tj_u64map_get(&f->pend_ix, id);
	if (!ix)
		return 0;
	size_t i = (size_t)*ix;
	*out = f->pend[i];
	tj_u64map_del(&f->pend_ix, id);
	if (i != f->npend - 1) { /* move the last entry into the hole */
		f->pend[i] = f->pend[f->npend - 1];
		tj_u64map_put(&f->pend_ix, f->pend[i].id, i);
	}
	f->npend--;
	return 1;
}

/* The columns no decision changes: the messages' own times, threads,
 * sizes, and the candidate list (shared through a memo). */
static void fill_fixed(const struct tj_feat *f, const struct tj_message *m,
		       const struct thr *t, const struct req *r, size_t rank,
		       uint64_t inflight, const struct call_consts *call, double *x)
{
	uint64_t now = m->ts_first;
	int tid_known = m->tid_first != TJ_TID_UNKNOWN &&
			r->tid_last != TJ_TID_UNKNOWN;
	int pid_known = m->pid != TJ_PID_UNKNOWN && r->pid != TJ_PID_UNKNOWN;
	x[TJ_F_DT_START] = slog_us(dt(now, r->ts_first));
	x[TJ_F_DT_PARENT_READ] = slog_us(dt(now, r->ts_last));
	x[TJ_F_DT_THREAD_READ] = call->dt_thread_read;
	x[TJ_F_THREAD_READ_UNKNOWN] = call->thread_read_unknown;
	x[TJ_F_SAME_TID] = tid_known && m->tid_first == r->tid_last;
	x[TJ_F_SAME_TID_REPLY] = m->tid_first != TJ_TID_UNKNOWN &&
				 r->tid_reply != TJ_TID_UNKNOWN &&
				 m->tid_first == r->tid_reply;
	x[TJ_F_TID_UNKNOWN] = !tid_known;
	x[TJ_F_SAME_PID] = pid_known && m->pid == r->pid;
	x[TJ_F_PID_UNKNOWN] = !pid_known;
	x[TJ_F_THREAD_LAST_REQ] = t && t->has_last_req &&
				  tj_msgkey_eq(&t->last_req, &r->key);
	x[TJ_F_NODE_INFLIGHT] = log1p_count(f->lut, inflight);
	x[TJ_F_RANK] = log1p_count(f->lut, rank);
	x[TJ_F_CALL_BYTES] = call->log_bytes;
	x[TJ_F_PARENT_BYTES] = r->log_bytes;
	x[TJ_F_KEEPALIVE] = m->seq > 0;
	if (r->ts_reply && m->ts_reply) {
		x[TJ_F_DT_REPLY] = slog_us(dt(r->ts_reply, m->ts_reply));
		x[TJ_F_REPLY_UNKNOWN] = 0;
	} else {
		x[TJ_F_DT_REPLY] = 0;
		x[TJ_F_REPLY_UNKNOWN] = 1;
	}
	x[TJ_F_REPLY_BEFORE_RESPONSE] = r->ts_reply && m->ts_reply &&
					r->ts_reply < m->ts_reply;
}

/* slog_us(now - then) for column i, from sm when it holds this then (sm is
 * for this now: the memo's ts), else computed and kept there. */
static double slog_since(uint64_t now, uint64_t then, struct since_memo *sm, int i)
{
	if (sm && sm->ok[i] && sm->then[i] == then)
		return sm->v[i];
	double v = slog_us(dt(now, then));
	if (sm) {
		sm->then[i] = then;
		sm->v[i] = v;
		sm->ok[i] = 1;
	}
	return v;
}

/* The columns earlier decisions (tj_feat_assign) change. */
static void fill_decided(const struct tj_feat *f, const struct tj_message *m,
			 const struct thr *t, const struct req *r,
			 const struct call_consts *call, struct since_memo *sm, double *x)
{
	uint64_t now = m->ts_first;
	x[TJ_F_THREAD_PREV_PARENT] = t && t->has_prev_parent &&
				     tj_msgkey_eq(&t->prev_parent, &r->key);
	unsigned open = 0;
	for (unsigned i = 0; i < OPEN_RING && i < r->ncalls; i++)
		if (r->call_reply[i] == 0 || r->call_reply[i] > now)
			open++;
	x[TJ_F_PARENT_CALLS] = log1p_count(f->lut, r->ncalls);
	x[TJ_F_PARENT_OPEN_CALLS] = log1p_count(f->lut, open);
	if (r->ncalls && r->last_call_reply) {
		x[TJ_F_DT_PARENT_LAST_CALL] = slog_since(now, r->last_call_reply, sm, 0);
	} else {
		x[TJ_F_DT_PARENT_LAST_CALL] = 0;
	}
	x[TJ_F_PARENT_NO_CALL] = r->ncalls == 0;
	x[TJ_F_THREAD_CONTEXT] = t && t->has_context &&
				 tj_msgkey_eq(&t->context, &r->key);
	x[TJ_F_DT_PARENT_LAST_START] = r->ncalls ? slog_since(now, r->last_call_start, sm, 1) : 0;
	uint64_t dest = call->dest;
	x[TJ_F_THREAD_NO_CONTEXT] = t && !t->has_context;
	x[TJ_F_PARENT_CALLED_DEST] = 0;
	unsigned dest_calls = 0;
	for (unsigned i = 0; i < OPEN_RING && i < r->ncalls; i++)
		dest_calls += r->call_dest[i] == dest;
	x[TJ_F_PARENT_CALLED_DEST] = dest_calls > 0;
	x[TJ_F_DEST_CALLS] = log1p_count(f->lut, dest_calls);
	x[TJ_F_REPLY_PARENT] = t && t->has_reply_read && t->has_reply_parent &&
			       tj_msgkey_eq(&t->reply_parent, &r->key);
	x[TJ_F_REPLY_PARENT_SAME_SOCK] = x[TJ_F_REPLY_PARENT] && call->reply_same_sock;
	/* FIFO_FIRST, FIFO_OLDER and FIFO_AFTER_SAME_SOCK need every
	 * candidate: fifo_order() sets them. */
}

/* Whether request r is of call m's process (an unknown pid matches any). */
static int same_process(const struct tj_message *m, const struct req *r)
{
	return m->pid == TJ_PID_UNKNOWN || r->pid == TJ_PID_UNKNOWN || m->pid == r->pid;
}

/* Order along a queue: walk the candidates oldest first; the first of the
 * call's process with no call to its destination is the head of the FIFO
 * of requests still waiting for that call. */
static void fifo_order(const struct tj_feat *f, const struct node *n,
		       const struct tj_message *m, const struct call_consts *call,
		       struct tj_feat_call *out)
{
	uint64_t uncalled = 0;
	for (size_t j = out->n; j-- > 0;) {
		const struct req *r = &n->reqs[out->ref_[j]];
		double *x = out->x[j];
		int mine = same_process(m, r);
		int fresh = mine && x[TJ_F_PARENT_CALLED_DEST] == 0;
		x[TJ_F_FIFO_FIRST] = fresh && uncalled == 0;
		x[TJ_F_FIFO_OLDER] = fresh ? log1p_count(f->lut, uncalled) : 0;
		x[TJ_F_FIFO_AFTER_SAME_SOCK] = x[TJ_F_FIFO_FIRST] && call->reply_same_sock;
		uncalled += fresh;
	}
}

/* Order along the queue by the events alone: the candidates of the
 * process that arrived after the request the queue's calls were counted
 * up to wait, oldest first (queue_advance moves that mark). */
static void queue_order(const struct tj_feat *f, const struct node *n,
			const struct tj_message *m, struct tj_feat_call *out)
{
	const uint64_t *upto = tj_u64map_get(&f->queue_upto, out->queue_);
	uint64_t waiting = 0;
	for (size_t j = out->n; j-- > 0;) {
		const struct req *r = &n->reqs[out->ref_[j]];
		double *x = out->x[j];
		int mine = same_process(m, r);
		int passed = mine && upto && r->ts_first <= *upto;
		int waits = mine && !passed;
		x[TJ_F_QUEUE_HEAD] = waits && waiting == 0;
		x[TJ_F_QUEUE_RANK] = waits ? log1p_count(f->lut, waiting) : 0;
		x[TJ_F_QUEUE_PASSED] = passed;
		waiting += waits;
	}
}

/* The call message holds out->units_ calls: the first that many waiting
 * requests had their turn.  Fewer waiting: the mark goes to the last
 * (a call of an older request moves nothing back).  Returns -1 when out
 * of memory. */
static int queue_advance(struct tj_feat *f, const struct node *n,
			 const struct tj_feat_call *out)
{
	size_t last = SIZE_MAX;
	uint64_t taken = 0;
	for (size_t j = out->n; j-- > 0 && taken < out->units_;) {
		if (out->x[j][TJ_F_QUEUE_HEAD] == 0 && out->x[j][TJ_F_QUEUE_RANK] == 0)
			continue; /* not waiting: passed, or another process's */
		last = j;
		taken++;
	}
	if (last == SIZE_MAX)
		return 0;
	int added;
	uint64_t *upto = tj_u64map_upsert(&f->queue_upto, out->queue_, &added);
	if (!upto)
		return -1;
	*upto = n->reqs[out->ref_[last]].ts_first;
	return 0;
}

/* dest: the call's destination hash (tj_call_dest), found once by the caller. */
static int candidates(struct tj_feat *f, struct node *n,
		      const struct tj_message *m, struct thr *t, uint64_t dest,
		      struct tj_feat_call *out)
{
	uint64_t now = m->ts_first, inflight = 0;
	size_t k = 0;
	/* Newest first; the list is in start order, so stop at the window. */
	for (size_t i = n->n; i-- > 0;) {
		const struct req *r = &n->reqs[i];
		if (r->ts_first > now)
			continue; /* same-instant ties delivered first: not before */
		if (now - r->ts_first > f->o.window_ns)
			break;
		if (r->ts_reply && r->ts_reply < now)
			continue;
		inflight++;
		if (k < f->o.max_cand) {
			out->cand[k] = r->key;
			out->cand_ts[k] = r->ts_first;
			out->ref_[k] = i;
			k++;
		}
	}
	out->n = k;
	out->inflight = inflight;
	struct call_consts cc = {
		.thread_read_unknown = !(t && t->last_read),
		.dest = dest,
		.reply_same_sock = t && t->has_reply_read && t->reply_sock == m->key.sock,
	};
	struct tj_feat_memo *mo = f->memo;
	int hit = mo && mo->valid && mo->n == k && mo->inflight == inflight &&
		  mo->ts == now && tj_msgkey_eq(&mo->call, &m->key) &&
		  mo->o.max_cand == f->o.max_cand && mo->o.window_ns == f->o.window_ns;
	for (size_t j = 0; hit && j < k; j++)
		hit = tj_msgkey_eq(&mo->cand[j], &out->cand[j]);
	if (hit) {
		memcpy(out->x, mo->x, k * sizeof(out->x[0]));
	} else {
		/* only on a miss: a hit copies the columns they feed */
		cc.log_bytes = log1p((double)m->bytes);
		cc.dt_thread_read = t && t->last_read ? slog_us(dt(now, t->last_read)) : 0;
		for (size_t j = 0; j < k; j++)
			fill_fixed(f, m, t, &n->reqs[out->ref_[j]], j, inflight, &cc, out->x[j]);
		if (mo) {
			mo->valid = 1; /* fields by hand: the struct is large */
			mo->o = f->o;
			mo->call = m->key;
			mo->ts = now;
			mo->inflight = inflight;
			mo->n = k;
			memcpy(mo->cand, out->cand, k * sizeof(out->cand[0]));
			memcpy(mo->x, out->x, k * sizeof(out->x[0]));
			for (size_t j = 0; j < k; j++)
				mo->since[j].ok[0] = mo->since[j].ok[1] = 0;
		}
	}
	for (size_t j = 0; j < k; j++)
		fill_decided(f, m, t, &n->reqs[out->ref_[j]], &cc, mo ? &mo->since[j] : NULL,
			     out->x[j]);
	fifo_order(f, n, m, &cc, out);
	queue_order(f, n, m, out);
	return 0;
}

int tj_feat_message(struct tj_feat *f, const struct tj_message *m,
		    struct tj_feat_call *out, struct tj_err *err)
{
	int oom = 0;
	struct node *n = node_get(f, m->key.node);
	if (!n)
		return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
	f->last_was_call = 0;
	/* (a message cut by capture start is neither request nor call) */
	if (m->is_request && m->role == TJ_ROLE_SERVER && m->key.dir == TJ_DIR_IN) {
		if (node_add(f, n, m) < 0)
			return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
	}
	if (m->key.dir == TJ_DIR_IN) {
		/* Any read tells what its thread last did. */
		struct thr *t = thr_get(f, m->key.node, m->tid_last, m->ts_first, &oom);
		if (oom)
			return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
		struct pending p;
		int resp = m->role == TJ_ROLE_CLIENT &&
			   pend_take(f, pending_id(m->key.node, m->key.sock, m->ts_first), &p);
		if (t) {
			if (m->ts_last > t->last_read)
				t->last_read = m->ts_last;
			if (m->role == TJ_ROLE_SERVER && m->is_request) {
				t->last_req = m->key;
				t->has_last_req = 1;
				t->context = m->key;
				t->has_context = 1;
				t->has_reply_read = 0;
			} else if (m->role == TJ_ROLE_CLIENT) {
				if (resp) {
					t->context = p.parent;
					t->has_context = p.has_parent;
				}
				t->has_reply_read = 1;
				t->reply_sock = m->key.sock;
				t->reply_parent = p.parent;
				t->has_reply_parent = resp && p.has_parent;
			}
		}
		return 0;
	}
	if (m->role != TJ_ROLE_CLIENT || !m->is_request)
		return 0;
	struct thr *t = thr_get(f, m->key.node, m->tid_first, m->ts_first, &oom);
	if (oom)
		return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
	out->call = m->key;
	uint64_t dest = tj_call_dest(m);
	out->queue_ = tj_call_queue(m, dest);
	candidates(f, n, m, t, dest, out);
	out->node_ = n;
	out->thr_ = t;
	out->ts_ = m->ts_first;
	out->reply_ts_ = m->ts_reply;
	out->sock_ = m->key.sock;
	out->dest_ = dest;
	out->dest = out->dest_;
	out->pid_ = m->pid;
	if (!(out->units_ = tj_call_units_add(&f->units, m, out->dest_)))
		return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
	/* Several calls in one message only where the queue pipelines;
	 * elsewhere it is one call written in pieces (call_units.h). */
	if (out->units_ > 1 && !tj_call_units_pipelined(&f->units, m, out->dest_))
		out->units_ = 1;
	if (queue_advance(f, n, out) < 0)
		return tj_errf(err, TJ_E_NOMEM, "features: out of memory");
	f->last_was_call = 1;
	return 1;
}

static void note_call(struct req *r, const struct tj_feat_call *c)
{
	r->call_reply[r->ncalls % OPEN_RING] = c->reply_ts_;
	r->call_dest[r->ncalls % OPEN_RING] = c->dest_;
	r->last_call_start = c->ts_;
	r->ncalls++;
	r->last_call_reply = c->reply_ts_;
}

/* A message of several calls (merged on a pipelined connection, where
 * the queue pipelines): its calls beyond the first were made by the next requests in line, the
 * oldest open ones of the process with no call to that destination yet.
 * Without this they would stay "waiting" for a call they made, and the
 * FIFO features would point at them for every later call. */
static void hidden_calls(struct node *n, const struct tj_feat_call *c)
{
	for (uint64_t k = 1; k < c->units_; k++) {
		struct req *h = NULL;
		for (size_t i = 0; i < n->n && !h; i++) {
			struct req *r = &n->reqs[i];
			if (r->ts_first >= c->ts_)
				break;
			if ((r->ts_reply && r->ts_reply <= c->ts_) ||
			    (c->pid_ != TJ_PID_UNKNOWN && r->pid != TJ_PID_UNKNOWN && r->pid != c->pid_))
				continue;
			int called = 0;
			for (unsigned j = 0; j < OPEN_RING && j < r->ncalls; j++)
				called |= r->call_dest[j] == c->dest_;
			if (!called)
				h = r;
		}
		if (!h)
			return;
		note_call(h, c);
	}
}

void tj_feat_assign(struct tj_feat *f, const struct tj_feat_call *c, int idx)
{
	if (!f->last_was_call)
		return;
	f->last_was_call = 0;
	struct thr *t = c->thr_;
	struct node *n = c->node_;
	int has = idx >= 0 && (size_t)idx < c->n;
	if (c->reply_ts_)
		pend_add(f, pending_id(n->id, c->sock_, c->reply_ts_), c->reply_ts_,
			 has ? &n->reqs[c->ref_[idx]].key : NULL);
	if (!has) {
		hidden_calls(n, c);
		if (t)
			t->has_prev_parent = 0;
		return;
	}
	struct req *r = &n->reqs[c->ref_[idx]];
	note_call(r, c);
	hidden_calls(n, c);
	if (t) {
		t->prev_parent = r->key;
		t->has_prev_parent = 1;
	}
}
