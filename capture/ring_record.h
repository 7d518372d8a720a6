/* Ring records as the kernel side writes them -> whole tjc_event records.
 *
 * The kernel leaves out of a send or receive what its ring already
 * carried: after one whole SEND or RECV of a socket (struct tjc_event,
 * with family, ports, addresses, namespace), the same CPU writes that
 * socket's next sends and receives as struct tjc_data (capture_common.h).
 * The decoder remembers each socket's addresses from its whole records
 * and puts them back, so that everything after it (recorder, log) sees
 * the records it always saw.  One decoder per capture, fed every ring's
 * records as they come (rings may be drained in any order: a compact
 * record always follows a whole one of its socket in its own ring).  A
 * socket is forgotten two seconds (record time) after its CLOSE; the
 * kernel side makes the next record of a socket after a CLOSE whole
 * again (with the syscall hooks a CLOSE is per fd: a dup goes on). */
#ifndef TJ_CAPTURE_RING_RECORD_H
#define TJ_CAPTURE_RING_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "capture_common.h"

struct tj_ring_decoder;

/* payload_max and stack_mode as the kernel side was loaded with: they
 * fix where a record's tails are.  NULL if out of memory. */
struct tj_ring_decoder *tj_ring_decoder_new(uint32_t payload_max, unsigned stack_mode);
void tj_ring_decoder_free(struct tj_ring_decoder *d);

enum tj_ring_status {
	TJ_RING_OK = 0,
	TJ_RING_UNKNOWN_SOCK = 1, /* compact, socket never told: expanded without addresses */
	TJ_RING_BAD = -1,         /* too short or unknown layout: nothing to hand on */
};

/* Expand one record of size bytes.  *out is the record itself (a whole
 * one) or the decoder's buffer (a compact one), valid until the next
 * call; *out_size its size, laid out as the kernel writes whole records
 * with these settings (payload room, then the caller tail).  Returns a
 * tj_ring_status. */
int tj_ring_decode(struct tj_ring_decoder *d, const void *rec, size_t size,
		   const struct tjc_event **out, size_t *out_size);

/* A ring record holds one whole record, or one or more compact records
 * back to back (a batch, capture_common.h TJC_BATCH_*).  Expands the
 * first record of the *left bytes at *rec and moves both past it; call
 * until *left is 0.  Returns as tj_ring_decode; TJ_RING_BAD consumes
 * everything left (a batch whose tail is no whole record keeps the
 * records before it). */
int tj_ring_decode_next(struct tj_ring_decoder *d, const void **rec, size_t *left,
			const struct tjc_event **out, size_t *out_size);

/* Compact records whose socket was never told (each expanded with no
 * addresses): 0 unless the kernel side and this file disagree. */
uint64_t tj_ring_decoder_unknown(const struct tj_ring_decoder *d);

/* Sockets whose addresses are held (for tests and benches). */
size_t tj_ring_decoder_sockets(const struct tj_ring_decoder *d);

#endif
