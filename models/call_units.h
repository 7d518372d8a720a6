/* How many calls a call message holds (correlate/ASYNC.md, "Pipelined
 * shared connections").
 *
 * A message is every byte a socket sends before the direction flips
 * (DESIGN.md), so on a pipelined connection two calls written with no
 * reply read between them are one message.  The kernel shows how many
 * write syscalls it took.  A client that writes each call with one
 * syscall makes n writes of n calls; one that writes every call in k
 * pieces (header, then body) makes k writes per call, every time.  So a
 * queue's writes per call are its most common writes per message (a tie
 * goes to the fewer; one write per call is the prior), and a message of
 * n writes holds n / that many calls, at least one.
 *
 * Writes alone would also count a call written in two pieces now and
 * then (a partial write continued, a large body) as two.  Bytes tell
 * them apart without a protocol: a message that holds k calls carries
 * about k calls' bytes, a call in pieces about one.  So the count is
 * also capped by the message's bytes over the queue's mean bytes of a
 * one-write message, rounded (at least one).
 *
 * Per queue (node, process, destination) a histogram of 16 counts and
 * the bytes of its one-write messages.
 *
 * The count can still be wrong now and then where call sizes vary: a
 * large call sent as headers then body (two writes, twice a small call's
 * bytes) counts as two.  A queue that pipelines merges calls whenever
 * two wait on a connection, so at load a large share of its messages
 * hold several; one that never pipelines shows only those odd splits.
 * tj_call_units_pipelined() tells them apart by that share (the same
 * fingerprint correlate/lookahead.c uses for a process), so a consumer
 * that acts on hidden calls does so only where the queue pipelines. */
#ifndef TJ_CALL_UNITS_H
#define TJ_CALL_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/u64map.h"
#include "../replay/replay.h"

#define TJ_CALL_UNITS_HIST 16 /* writes per message: 1..15, 16 and more */

struct tj_call_queue {
	uint64_t hist[TJ_CALL_UNITS_HIST + 1]; /* messages by their writes */
	uint64_t one_write_bytes;              /* bytes of its one-write messages */
	uint64_t merged;                       /* messages counted as several calls */
};

/* A queue pipelines when more than this share of its call messages
 * (Laplace smoothed) held several calls: lookahead's 1 - sync_share. */
#define TJ_CALL_UNITS_PIPELINED 0.05

/* The share test itself, for a queue counted elsewhere too (queue-select
 * keeps its own counts per queue): merged of msgs call messages. */
static inline int tj_calls_pipelined(uint64_t merged, uint64_t msgs)
{
	return (double)merged / ((double)msgs + 1.0) > TJ_CALL_UNITS_PIPELINED;
}

struct tj_call_units {
	struct tj_u64map ix; /* queue hash -> index in q */
	struct tj_call_queue *q;
	size_t n, cap;
};

void tj_call_units_init(struct tj_call_units *u);
void tj_call_units_free(struct tj_call_units *u);

/* The destination of a call: a hash of its remote address and port. */
uint64_t tj_call_dest(const struct tj_message *m);

/* The queue of a call: its node, process and destination (dest, from
 * tj_call_dest), as one hash; every per-queue table keys by it. */
uint64_t tj_call_queue(const struct tj_message *m, uint64_t dest);

/* Count call message m (of destination dest) on its queue; return the
 * calls it holds (>= 1), or 0 if out of memory. */
uint64_t tj_call_units_add(struct tj_call_units *u, const struct tj_message *m, uint64_t dest);

/* Whether the queue of call message m (already counted by
 * tj_call_units_add) pipelines: its share of messages holding several
 * calls so far is above TJ_CALL_UNITS_PIPELINED. */
int tj_call_units_pipelined(const struct tj_call_units *u, const struct tj_message *m,
			    uint64_t dest);
int tj_call_queue_pipelined(const struct tj_call_queue *q);

/* The calls a message of `writes` syscalls and `bytes` bytes holds,
 * given its queue's counts so far (exposed for the unit tests). */
uint64_t tj_call_units_of(const struct tj_call_queue *q, uint32_t writes, uint64_t bytes);

#endif
