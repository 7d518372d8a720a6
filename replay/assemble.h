/* The message assembler: the core of the replay, fed one event at a time
 * from any source (the merged node logs, a test's hand-built array), and
 * delivering messages under the contract of replay.h.
 *
 * Per node it keeps a table of sockets, one list of open and held
 * messages in order of their first byte (delivery walks its head), and an
 * LRU of open messages for the idle rule.  Everything is O(1) per event
 * (amortised), and memory follows open sockets and held messages only. */
#ifndef TJ_ASSEMBLE_H
#define TJ_ASSEMBLE_H

#include "replay.h"

struct tj_assembler;

/* fn receives every message; a non-zero return stops and is returned by
 * the call that delivered it. */
int tj_assembler_new(struct tj_assembler **a, const struct tj_replay_opts *opts,
		     tj_message_fn fn, void *ctx, struct tj_err *err);
/* One event.  Returns 0, the callback's non-zero value, or a negative
 * error (out of memory). */
int tj_assembler_feed(struct tj_assembler *a, const struct tj_event *ev,
		      struct tj_err *err);
/* A node's log ended: its open messages end (TJ_MSG_NO_REPLY) and
 * everything held is delivered. */
int tj_assembler_end_node(struct tj_assembler *a, uint32_t node, struct tj_err *err);
/* Every node ended. */
int tj_assembler_end(struct tj_assembler *a, struct tj_err *err);
/* Counters so far (events, messages, requests, gaps, late_events,
 * peak_held, peak_sockets, masked); the file-level ones stay 0. */
const struct tj_replay_stats *tj_assembler_stats(const struct tj_assembler *a);
/* Messages open or held now (0 after tj_assembler_end: all delivered). */
uint64_t tj_assembler_held(const struct tj_assembler *a);
void tj_assembler_free(struct tj_assembler *a);

#endif
