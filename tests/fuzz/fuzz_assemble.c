/* libFuzzer target for the message assembler and the payload masker:
 * the input is a stream of compact event records (12 bytes each: node,
 * socket, type, flags, time step, offset, byte count) and a payload for
 * some of them.  Whatever the stream, the assembler must not crash, must
 * deliver each message it started exactly once by the end, with sane
 * fields (an origin from a tag only on a server socket), and each
 * node's messages in order of ts_first as long as the
 * stream's time does not run backwards; masking must be idempotent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "replay/assemble.h"

struct check {
	uint64_t delivered;
	uint64_t last_first[4];
	int monotone;
};

static int on_msg(void *ctx, const struct tj_message *m)
{
	struct check *c = ctx;
	c->delivered++;
	if (m->nsyscalls == 0 || m->bytes == 0 || m->ts_last < m->ts_first ||
	    m->key.node >= 4 || m->key.dir > 1 || m->role > TJ_ROLE_SERVER)
		abort();
	if ((m->flags & TJ_MSG_NO_REPLY) && m->ts_reply)
		abort();
	/* a tag's origin goes only to a server socket (capture --tag) */
	if (m->has_origin && m->role != TJ_ROLE_SERVER)
		abort();
	if (m->payload_len > TJ_PAYLOAD_MAX || (m->payload_len && !m->payload))
		abort();
	if (m->payload) { /* delivered payloads are masked already */
		uint8_t copy[TJ_PAYLOAD_MAX];
		memcpy(copy, m->payload, m->payload_len);
		if (tj_payload_mask(copy, m->payload_len) &&
		    memcmp(copy, m->payload, m->payload_len))
			abort();
	}
	if (c->monotone && m->ts_first < c->last_first[m->key.node])
		abort();
	c->last_first[m->key.node] = m->ts_first;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t types[] = { TJ_EV_RECV, TJ_EV_SEND, TJ_EV_RECV, TJ_EV_SEND,
					 TJ_EV_ACCEPT, TJ_EV_CONNECT, TJ_EV_CLOSE,
					 TJ_EV_SHUTDOWN, TJ_EV_STATE, TJ_EV_LOST,
					 TJ_EV_SOCKET, TJ_EV_LISTEN, TJ_EV_SCAN,
					 TJ_EV_NONE, 200, TJ_EV_TAG };
	struct check c = { .monotone = 1 };
	struct tj_replay_opts o = { .idle_ns = 1000, .keep_payload = 1,
				    .reorder_ns = 1, .sock_expire_ns = 5000 };
	struct tj_assembler *a;
	struct tj_err err = { 0 };
	if (tj_assembler_new(&a, &o, on_msg, &c, &err))
		abort();
	uint64_t ts[4] = { 0, 0, 0, 0 };
	for (size_t i = 0; i + 12 <= size; i += 12) {
		const uint8_t *r = data + i;
		struct tj_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.node = r[0] & 3;
		ev.sock = r[1] & 7;
		ev.type = types[r[2] % sizeof(types)];
		ev.flags = (r[3] & 0x7) | (r[3] & 0x8 ? TJ_EVF_SEQ_OFFSET : 0);
		int64_t step = (int8_t)r[4];  /* may run backwards a little */
		if (step < 0)
			c.monotone = 0;
		ts[ev.node] = (uint64_t)((int64_t)ts[ev.node] + step * 10 + 1000000);
		ev.ts_ns = ts[ev.node];
		ev.offset = (uint64_t)(r[5] | r[6] << 8);
		ev.bytes = (int8_t)r[7];
		ev.arg = r[8];
		ev.tid = r[9] & 3;
		ev.pid = 1;
		ev.family = r[10] & 1 ? 2 : 0;
		ev.lport = (uint16_t)(8000 + (r[10] >> 4));
		ev.rport = 9000;
		if (r[11] && i + 12 + r[11] <= size) { /* a payload: the bytes after */
			ev.payload = data + i + 12;
			ev.payload_len = r[11];
		}
		int rc = tj_assembler_feed(a, &ev, &err);
		if (rc)
			abort(); /* the callback never stops it; no allocation fails here */
	}
	if (tj_assembler_end(a, &err))
		abort();
	const struct tj_replay_stats *st = tj_assembler_stats(a);
	if (st->messages != c.delivered || st->events != size / 12 || tj_assembler_held(a))
		abort();
	tj_assembler_free(a);

	/* masking: a second pass finds nothing left to mask */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	unsigned n1 = tj_payload_mask(buf, size);
	uint8_t *again = malloc(size ? size : 1);
	memcpy(again, buf, size);
	unsigned n2 = tj_payload_mask(again, size);
	if (memcmp(again, buf, size) || (n1 == 0 && memcmp(buf, data, size)))
		abort();
	(void)n2;
	free(buf);
	free(again);
	return 0;
}
