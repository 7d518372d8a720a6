/* Reading a CPU's lane (capture_common.h struct tjc_lane) in place: the
 * compact records the kernel side wrote there, without --payload and
 * --stack, handed on one by one and then given back to it. */
#ifndef TJ_CAPTURE_LANE_H
#define TJ_CAPTURE_LANE_H

#include <stddef.h>
#include <stdint.h>
#include "capture_common.h"

/* The records written so far (acquire: the slots below it are whole). */
uint64_t tj_lane_head(const struct tjc_lane *l);

/* Called for each record, oldest first; a non-zero return stops. */
typedef int (*tj_lane_fn)(void *ctx, const void *rec, size_t size);

/* The slots a lane uses beside rings of ring_bytes: a quarter of a
 * ring's worth of records (the ring's wakeup mark), a power of two,
 * from 16 to TJC_LANE_SLOTS. */
uint32_t tj_lane_slots(size_t ring_bytes);

/* Hand the records from the lane's tail up to `upto` (a head read
 * earlier) to fn, then give their slots back (tail, release); slots:
 * the lane's (tj_lane_slots).  Returns 0, fn's non-zero return (the
 * records up to and including the one it refused count as read), or -1
 * when upto is not a head the lane can have (before its tail, or more
 * than slots past it) or slots not a lane's: nothing is read then. */
int tj_lane_take(struct tjc_lane *l, uint32_t slots, uint64_t upto, tj_lane_fn fn, void *ctx);

#endif
