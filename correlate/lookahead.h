/* Look-ahead links: what the kernel shows *after* a call was written
 * (correlate/ASYNC.md, "Look-ahead signals").
 *
 * A thread that read the reply of call X then runs a *handler*: the
 * writes it makes until its next read.
 *
 *  - Completion: the handler writes the response of request P (P is known
 *    without ambiguity: the request on the same server socket whose reply
 *    began with that write).  The handler finished P with X's reply: X's
 *    parent is P.
 *  - Continuation: the handler writes call Y and no response: Y continues
 *    X's request, parent(Y) = parent(X).  If the handler also wrote a
 *    response, X's request is done and Y belongs to some other, queued
 *    request: no link (the base decision stands).
 *
 * Calls linked by continuation form a group that shares one parent; a
 * completion anywhere in the group anchors all of it (chains solved from
 * the back: response <- last call <- previous call).  A group is decided
 * once every member has its base decision (from another correlator) and
 * every handler that could still link it has ended: the thread's next
 * read, or `horizon_ns` of the node's time after the reply was read.
 * Anchored members take the anchor when it is a possible parent (same
 * node, arrived before the call); the others keep the base decision.
 *
 * Streaming: a call waits at most until its reply was read plus the
 * horizon, and until its group is closed; memory follows the calls in
 * flight, not the log.  tj_la_finish() releases everything. */
#ifndef TJ_LOOKAHEAD_H
#define TJ_LOOKAHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../lib/edges.h"
#include "../lib/error.h"
#include "../replay/replay.h"

/* Which signal decided a call. */
enum tj_la_why {
	TJ_LA_BASE,         /* no look-ahead link: the base decision */
	TJ_LA_COMPLETION,   /* its reply's handler wrote its parent's response */
	TJ_LA_CONTINUATION, /* linked by continuation to a call anchored by completion */
	TJ_LA_CONFLICT,     /* its group's anchors disagreed: the base decision */
	TJ_LA_NWHY
};

extern const char *const tj_la_why_names[TJ_LA_NWHY];

/* Which handlers make links.  A call is synchronous when the thread that
 * wrote it read nothing else before its reply (thread-per-request, worker
 * pools); an event loop's or a runtime's calls are not. */
enum tj_la_links {
	TJ_LA_SYNC, /* synchronous calls' handlers: completion, first-write continuation */
	TJ_LA_ALL,  /* every handler, every write (to measure the links, not to decide) */
};

/* The `lookahead` correlator's defaults (queue-select runs the same links
 * over its own order-align answers: queue_select.c). */
#define TJ_LA_DEFAULT_HORIZON_MS 50
#define TJ_LA_DEFAULT_SYNC_SHARE 0.95

struct tj_la_opts {
	uint64_t horizon_ns; /* a handler ends this long after its reply was read */
	enum tj_la_links links_from;
	double sync_share;   /* links only from processes with at least this share
				of synchronous calls (so far in the log) */
	FILE *links;         /* if set: every link made, one line each (explain) */
};

/* A decided call: the final edge, the base edge, and why. */
typedef int (*tj_la_emit_fn)(void *ctx, const struct tj_edge *e,
			     const struct tj_edge *base, enum tj_la_why why);

/* What the links saw (explain=1). */
struct tj_la_stats {
	uint64_t calls, handlers, sync_handlers, completions, continuations, multi_response;
	uint64_t decided[TJ_LA_NWHY];
	uint64_t changed[TJ_LA_NWHY]; /* of decided: parent differs from the base */
	uint64_t invalid_anchor;      /* anchor arrived after a member call */
	uint64_t peak_pending;
};

struct tj_la;

int tj_la_new(struct tj_la **la, const struct tj_la_opts *o, tj_la_emit_fn emit,
	      void *ctx, struct tj_err *err);
void tj_la_free(struct tj_la *la);

/* One message in replay order (every message, not only calls).  May emit
 * decided calls.  Returns 0 or a negative TJ_E_* (err filled). */
int tj_la_message(struct tj_la *la, const struct tj_message *m, struct tj_err *err);

/* The base decision for a call.  A call the links never saw is emitted at
 * once, as the base decided it. */
int tj_la_base(struct tj_la *la, const struct tj_edge *base, struct tj_err *err);

/* End of input: end every handler, emit every call (those without a base
 * decision get none: no parent, score 0). */
int tj_la_finish(struct tj_la *la, struct tj_err *err);

const struct tj_la_stats *tj_la_stats(const struct tj_la *la);

#endif
