/* libFuzzer target for capture/ring_record.c, the decoder of the ring's
 * records: the first byte picks the settings (bit 0: --payload, bits 1-2:
 * stack mode), then records follow, each a 2-byte little-endian length and
 * its bytes (copied to an 8-byte aligned buffer, as the ring hands them
 * over).  Whatever the bytes, the decoder must not read past a record,
 * must refuse what it cannot make whole, and what it hands on must be a
 * whole record of the settings' size with a payload within its room. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "capture/ring_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t rec[(sizeof(struct tjc_event) + TJC_PAYLOAD_MAX +
			     sizeof(struct tjc_stack_tail)) / 8 + 64];
	if (size < 1)
		return 0;
	uint32_t payload_max = (data[0] & 1) ? 100 : 0;
	unsigned stack_mode = (data[0] >> 1) & 3;
	uint32_t room = payload_max ? TJC_PAYLOAD_MAX : 0;
	struct tj_ring_decoder *d = tj_ring_decoder_new(payload_max, stack_mode);
	size_t at = 1;

	if (!d)
		return 0;
	while (at + 2 <= size) {
		size_t n = data[at] | (size_t)data[at + 1] << 8;
		at += 2;
		if (n > size - at)
			n = size - at;
		if (n > sizeof(rec))
			n = sizeof(rec);
		/* Exactly n bytes on the heap: ASan sees any read past them. */
		uint8_t *r = malloc(n ? n : 1);
		if (!r)
			break;
		memcpy(r, data + at, n);
		memcpy(rec, r, n);
		at += n;
		/* A ring record may be a batch: every record in it, in turn. */
		const uint8_t *buf = (n % 8) ? (const uint8_t *)rec : r;
		const void *p = buf;
		size_t left = n;
		while (left) {
			const struct tjc_event *out;
			size_t out_size, before = left;
			int rc = tj_ring_decode_next(d, &p, &left, &out, &out_size);
			if (left >= before || (const uint8_t *)p != buf + (n - left))
				abort(); /* no progress, or lost track of where it is */
			if (rc == TJ_RING_BAD) {
				if (out || out_size || left)
					abort();
				continue;
			}
			if (!out || out_size < sizeof(struct tjc_event) || out_size > sizeof(rec))
				abort();
			/* Touch every byte handed on. */
			uint8_t copy[sizeof(rec)];
			memcpy(copy, out, out_size);
			if ((const uint8_t *)out < buf || (const uint8_t *)out >= buf + n) {
				/* Expanded: a send or receive with the settings' size. */
				if ((out->type != TJC_EV_SEND && out->type != TJC_EV_RECV) ||
				    out->payload_len > room ||
				    out_size != sizeof(struct tjc_event) + room +
						((stack_mode & TJC_STACK_USER) ? sizeof(struct tjc_caller) : 0))
					abort();
			} else if ((const uint8_t *)out + out_size != buf + n) {
				abort(); /* a whole record is the rest of the ring record */
			}
		}
		free(r);
	}
	tj_ring_decoder_free(d);
	return 0;
}
