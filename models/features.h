/* Features of (candidate parent, call) pairs: the one definition shared by
 * `tracejoin features` (CSV export), `tracejoin train` and the classifier
 * correlator's inference, so what is trained is what is scored.
 *
 * A call is a client-side request (role CLIENT, dir OUT).  Its candidate
 * parents are the server-side requests (role SERVER, dir IN) of the same
 * node that are in flight when the call starts:
 *     p.ts_first <= call.ts_first,
 *     p.ts_reply == 0 (no reply seen) or p.ts_reply >= call.ts_first,
 *     call.ts_first - p.ts_first <= window_ns,
 * at most max_cand of them, the most recently started first.  The replay's
 * delivery contract (replay/replay.h: per node in order of ts_first, each
 * message complete) guarantees every such request is known when the call
 * arrives, so a call is decided as soon as it is seen.
 *
 * Some features depend on earlier decisions ("calls the parent made so
 * far", "parent of this thread's previous call"): the caller reports each
 * decision with tj_feat_assign() before the next message.  Training and the
 * CSV export assign from the labels (teacher forcing); inference assigns
 * the model's own choices.
 *
 * Times are in microseconds and log-transformed: slog(x) = sign(x) *
 * log1p(|x|).  A thread or process id of 0 (unknown: imports from span
 * data) never counts as "same": the *_unknown features say so instead.
 *
 * Memory is bounded by in-flight requests (per node, those in the window)
 * and live threads; nothing grows with log length. */
#ifndef TJ_FEATURES_H
#define TJ_FEATURES_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/error.h"
#include "../replay/replay.h"

/* Bump when a feature's meaning changes: models record the list by name. */
enum tj_feature {
	TJ_F_DT_START,           /* slog(call start - parent start) */
	TJ_F_DT_PARENT_READ,     /* slog(call start - parent's last byte read) */
	TJ_F_DT_THREAD_READ,     /* slog(call start - calling thread's last read, any socket) */
	TJ_F_THREAD_READ_UNKNOWN,/* calling thread unknown or never seen reading */
	TJ_F_SAME_TID,           /* call.tid_first == parent.tid_last, both known */
	TJ_F_SAME_TID_REPLY,     /* call.tid_first == thread that started the parent's reply */
	TJ_F_TID_UNKNOWN,        /* call's or parent's tid is unknown */
	TJ_F_SAME_PID,           /* same process, both known */
	TJ_F_PID_UNKNOWN,        /* call's or parent's pid is unknown */
	TJ_F_THREAD_LAST_REQ,    /* parent is the last request the calling thread read */
	TJ_F_THREAD_PREV_PARENT, /* parent is the parent of the thread's previous call */
	TJ_F_PARENT_CALLS,       /* log1p(calls assigned to the parent so far) */
	TJ_F_PARENT_OPEN_CALLS,  /* log1p(of those, still waiting for their response) */
	TJ_F_DT_PARENT_LAST_CALL,/* slog(call start - response start of parent's last call) */
	TJ_F_PARENT_NO_CALL,     /* parent has no call assigned yet */
	TJ_F_NODE_INFLIGHT,      /* log1p(requests in flight on the node) */
	TJ_F_RANK,               /* log1p(candidate's rank, most recently started = 0) */
	TJ_F_CALL_BYTES,         /* log1p(call bytes) */
	TJ_F_PARENT_BYTES,       /* log1p(parent bytes) */
	TJ_F_KEEPALIVE,          /* call reuses a connection (seq > 0) */
	TJ_F_DT_REPLY,           /* slog(parent's reply start - call's response start) */
	TJ_F_REPLY_UNKNOWN,      /* parent or call has no reply */
	TJ_F_THREAD_CONTEXT,     /* parent is what the calling thread last worked
				  * for: the request it last read, or the parent
				  * of the call whose response it last read */
	TJ_F_REPLY_BEFORE_RESPONSE, /* parent's reply began before the call's response */
	TJ_F_DT_PARENT_LAST_START,  /* slog(call start - start of parent's last call) */
	TJ_F_PARENT_CALLED_DEST,    /* one of the parent's recent calls went to the
				     * same remote address and port */
	TJ_F_THREAD_NO_CONTEXT,     /* the calling thread is known but has read no
				     * request, nor a response to a call with one */
	/* Order and continuation (issue #15, correlate/ASYNC.md): */
	TJ_F_FIFO_FIRST,            /* the candidate is the oldest candidate of the
				     * call's process with no call to this call's
				     * destination yet: FIFO queues on a connection,
				     * pool or loop serve requests in arrival order */
	TJ_F_FIFO_OLDER,            /* log1p(older candidates of the process with no
				     * call to this destination yet); 0 if the
				     * candidate has called it */
	TJ_F_DEST_CALLS,            /* log1p(the candidate's recent calls to this
				     * destination) */
	TJ_F_REPLY_PARENT,          /* the calling thread last read a response, and
				     * the candidate is that response's call's parent
				     * (a sequential dependent call continues it) */
	TJ_F_REPLY_PARENT_SAME_SOCK,/* REPLY_PARENT, and that response came on the
				     * socket this call is written to */
	TJ_F_FIFO_AFTER_SAME_SOCK,  /* FIFO_FIRST, and the thread last read a
				     * response on this call's own socket: a queue
				     * on a saturated connection writes the next
				     * waiting request when the reply frees it */
	/* Order by the events alone (no decision feeds them): per queue
	 * (node, process, destination) the request its call messages have
	 * been counted up to, in arrival order, each message counting the
	 * calls it holds (models/call_units.h, where the queue pipelines).
	 * The FIFO_* features above follow the model's own answers, so one
	 * wrong answer shifts them; these do not. */
	TJ_F_QUEUE_HEAD,            /* the candidate is the oldest of the process
				     * that arrived after the request the queue's
				     * calls were counted up to: the next in line */
	TJ_F_QUEUE_RANK,            /* log1p(such waiting candidates older than
				     * it); 0 for one not waiting */
	TJ_F_QUEUE_PASSED,          /* of the process, arrived no later than that
				     * request: its turn for this queue is past */
	TJ_FEAT_N
};

/* Names, in enum order: the model file's feature list and CSV header. */
extern const char *const tj_feat_names[TJ_FEAT_N];

#define TJ_FEAT_MAX_CAND 256 /* hard cap on max_cand */

struct tj_feat_opts {
	unsigned max_cand;  /* candidates per call, default 64 */
	uint64_t window_ns; /* parent started at most this long before, default 10 s */
};
#define TJ_FEAT_DEFAULT_MAX_CAND 64
#define TJ_FEAT_DEFAULT_WINDOW_NS 10000000000ull

/* One call and its candidates, filled by tj_feat_message(). */
struct tj_feat_call {
	struct tj_msgkey call;
	size_t n;                      /* candidates */
	uint64_t inflight;             /* requests in flight on the node (uncapped) */
	struct tj_msgkey cand[TJ_FEAT_MAX_CAND];
	uint64_t cand_ts[TJ_FEAT_MAX_CAND]; /* each candidate's ts_first (arrival) */
	uint64_t dest;                 /* hash of the call's remote address and port */
	double x[TJ_FEAT_MAX_CAND][TJ_FEAT_N];
	/* private: which requests to update on tj_feat_assign() */
	size_t ref_[TJ_FEAT_MAX_CAND];
	void *node_;
	void *thr_;
	uint64_t ts_;
	uint64_t reply_ts_;
	uint64_t sock_;
	uint64_t dest_;
	uint64_t units_; /* calls the message holds (models/call_units.h) */
	uint64_t queue_;  /* hash of node, process, destination */
	uint32_t pid_;
};

struct tj_feat;

int tj_feat_new(struct tj_feat **f, const struct tj_feat_opts *opts,
		struct tj_err *err);
/* Feed one message in replay order.  Returns 1 and fills *out if m is a
 * call (then call tj_feat_assign before the next message), 0 otherwise,
 * negative on error (out of memory). */
int tj_feat_message(struct tj_feat *f, const struct tj_message *m,
		    struct tj_feat_call *out, struct tj_err *err);
/* The decision for the call last returned: candidate index, or -1 none. */
void tj_feat_assign(struct tj_feat *f, const struct tj_feat_call *c, int idx);
/* Requests that fell out of the per-node hold limit (so were never
 * candidates): 0 unless a node had more than 16384 requests in flight. */
uint64_t tj_feat_dropped(const struct tj_feat *f);
void tj_feat_free(struct tj_feat *f);

/* One feature pass for several states fed the same messages (queue-select
 * runs classifier and order-align side by side): the columns no decision
 * changes (times, threads, sizes, rank) are computed by the first state
 * that sees a call and copied by the others, when the call, its time and
 * its candidate list match (else computed again: sharing never changes a
 * value).  The memo must outlive the states it is given to. */
struct tj_feat_memo;
int tj_feat_memo_new(struct tj_feat_memo **mo, struct tj_err *err);
void tj_feat_memo_free(struct tj_feat_memo *mo);
void tj_feat_share(struct tj_feat *f, struct tj_feat_memo *mo);

#endif
