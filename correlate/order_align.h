/* Ordered joint assignment along one queue (correlate/ASYNC.md).
 *
 * A queue is the calls of one process to one destination, in send order.
 * Each call comes with its best few candidate parents: their arrival time
 * and the model's log-probability.  Calls queued on a connection, pool or
 * loop go out in the order their requests arrived, so along the queue the
 * parents' arrival order should not go back.  The alignment is a Viterbi
 * path over (candidate, run length) states:
 *
 *     score = sum_i lp[i][pick_i] + sum_i log T(move_i | run_{i-1})
 *
 * where move is STAY (same request as the previous call, run + 1),
 * ADVANCE (a later request) or BACK (an earlier one), and T is fitted per
 * queue from the queue's own decided moves (hard EM, Laplace-smoothed
 * counts).  So the order constraint is as strong as the queue shows it to
 * be: a FIFO queue learns BACK is rare and the path keeps the order; a
 * queue of racing workers learns BACK is common and the path falls back
 * to the free choice.  The run-length condition is the learned number of
 * calls a request makes to that destination.
 *
 * Streaming: a queue holds at most 2 * TJ_ALIGN_LAG calls; when full, the
 * path over all of them fixes the first TJ_ALIGN_LAG (the rest are the
 * look-ahead), whose edges go out.  Memory: per queue, bounded. */
#ifndef TJ_ORDER_ALIGN_H
#define TJ_ORDER_ALIGN_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/msgkey.h"

#define TJ_ALIGN_TOP 8    /* candidates per call kept for the path */
#define TJ_ALIGN_LAG 16   /* calls fixed per step; as many kept as look-ahead */
#define TJ_ALIGN_RUNMAX 4 /* runs of 4 or more calls per request share a row */

enum tj_align_move { TJ_ALIGN_STAY, TJ_ALIGN_ADVANCE, TJ_ALIGN_BACK, TJ_ALIGN_NMOVE };

struct tj_align_call {
	struct tj_msgkey call;
	size_t n;                          /* candidates, best first */
	struct tj_msgkey cand[TJ_ALIGN_TOP];
	uint64_t ts[TJ_ALIGN_TOP];         /* arrival of each candidate */
	double lp[TJ_ALIGN_TOP];           /* log-probability of each */
	int pick;                          /* filled when decided */
};

/* The fitted move model of one queue: counts of moves, by run length. */
struct tj_align_moves {
	double count[TJ_ALIGN_RUNMAX][TJ_ALIGN_NMOVE];
};

/* Where the decided part of a queue ended. */
struct tj_align_state {
	int has_prev;
	struct tj_msgkey prev;
	uint64_t prev_ts;
	unsigned run; /* 1..TJ_ALIGN_RUNMAX */
};

/* The move from (prev, prev_ts) to (key, ts). */
enum tj_align_move tj_align_move_of(const struct tj_msgkey *prev, uint64_t prev_ts,
				    const struct tj_msgkey *key, uint64_t ts);

/* log T(move | run): Laplace-smoothed, so an unseen move is possible. */
double tj_align_logp(const struct tj_align_moves *mv, unsigned run,
		     enum tj_align_move move);

/* Best path for calls[0..n) from *start; sets calls[i].pick (every call
 * must have n >= 1).  Returns 0, or -1 if out of memory. */
int tj_align_path(const struct tj_align_moves *mv, const struct tj_align_state *start,
		  struct tj_align_call *calls, size_t n);

/* Advance *st over the decided calls[0..n) and count their moves in *mv. */
void tj_align_commit(struct tj_align_moves *mv, struct tj_align_state *st,
		     const struct tj_align_call *calls, size_t n);

#endif
