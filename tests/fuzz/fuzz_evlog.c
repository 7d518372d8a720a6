/* libFuzzer target for the evlog reader.  Each input is read twice: as
 * it is (exercising the framing, CRC checks and resync), and with every
 * CRC recomputed after walking the blocks by their lengths, so that
 * mutations reach the header parser, the footer parser and the column
 * decoder instead of stopping at a CRC mismatch (stored, uncompressed
 * events blocks in the seed corpus give the fuzzer bodies to mutate). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "lib/evlog.h"

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void read_all(const uint8_t *data, size_t size)
{
	if (size == 0)
		return;
	FILE *f = fmemopen((void *)data, size, "rb");
	if (!f)
		return;
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	if (tj_evlog_open_file(&r, f, "fuzz.evlog", &err) == 0) {
		const struct tj_event *ev;
		uint64_t n = 0, sum = 0;
		int rc;
		while ((rc = tj_evlog_next(r, &ev, &err)) == 1) {
			n++;
			/* Touch every field and the payload, as a consumer would. */
			sum += ev->ts_ns ^ ev->sock ^ (uint64_t)ev->bytes ^ ev->offset ^
			       ev->pid ^ ev->tid ^ (uint64_t)ev->fd ^ ev->type ^
			       ev->laddr[15] ^ ev->raddr[15];
			if (ev->payload_len > TJ_PAYLOAD_MAX)
				abort();
			for (unsigned i = 0; i < ev->payload_len; i++)
				sum += ev->payload[i];
		}
		const struct tj_evlog_damage *d = tj_evlog_damage(r);
		const struct tj_evlog_footer *foot = tj_evlog_footer(r);
		/* A clean read with a footer delivered exactly its events. */
		if (rc == 0 && !d->damaged && foot && foot->events != n)
			abort();
		/* Damage always says what it was. */
		if (d->damaged && d->what[0] == '\0')
			abort();
		uint64_t drops[TJ_DROP__COUNT];
		tj_evlog_drops(r, drops);
		(void)sum;
		tj_evlog_close_reader(r);
	} else if (err.msg[0] == '\0') {
		abort(); /* a refusal must say why */
	}
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_all(data, size);

	/* The CRC-repaired copy. */
	if (size < 20 || size > (1u << 20))
		return 0;
	uint8_t *b = malloc(size);
	if (!b)
		return 0;
	memcpy(b, data, size);
	size_t hlen = get32(b + 12);
	size_t off = 16 + hlen;
	if (hlen <= 65536 && off + 4 <= size) {
		put32(b + off, (uint32_t)crc32(0, b, (uInt)off));
		off += 4;
		while (off + 32 <= size) {
			uint8_t *h = b + off;
			size_t body = get32(h + 12);
			if (body > size - off - 32) {
				body = size - off - 32;
				put32(h + 12, (uint32_t)body);
			}
			put32(h, 0x4b424a54u);
			put32(h + 24, (uint32_t)crc32(0, h + 32, (uInt)body));
			put32(h + 28, (uint32_t)crc32(0, h, 28));
			off += 32 + body;
		}
		read_all(b, size);
	}
	free(b);
	return 0;
}
