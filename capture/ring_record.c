/* Ring records -> whole tjc_event records (ring_record.h). */
#include <stdlib.h>
#include <string.h>
#include "../lib/u64map.h"
#include "ring_record.h"

/* A socket's last whole SEND/RECV: what its compact records leave out
 * (family, ports, addresses, namespace) is copied from it. */
struct told {
	uint64_t closed_ts; /* time of its CLOSE, 0 while open */
	/* The record's fixed part, as bytes: tjc_event ends in a flexible
	 * array, which cannot sit inside another struct. */
	unsigned char whole[sizeof(struct tjc_event)];
};

/* A socket is forgotten this long (record time) after its CLOSE: records
 * of other rings drained later may still name it. */
#define FORGET_AFTER_NS 2000000000ull

struct closing {
	uint64_t sock, ts;
};

struct tj_ring_decoder {
	uint32_t payload_room;  /* TJC_PAYLOAD_MAX with --payload, else 0 */
	unsigned stack_mode;
	struct tj_u64map index; /* sock -> slot in told */
	struct told *told;
	size_t ntold, captold;
	uint32_t *free_slots;
	size_t nfree;
	struct closing *closing; /* FIFO of CLOSEs, in arrival order */
	size_t chead, clen, ccap;
	uint64_t newest_ts;
	uint64_t unknown;
	union {                 /* one expanded record */
		struct tjc_event ev;
		uint8_t bytes[sizeof(struct tjc_event) + TJC_PAYLOAD_MAX + sizeof(struct tjc_caller)];
	} out;
};

struct tj_ring_decoder *tj_ring_decoder_new(uint32_t payload_max, unsigned stack_mode)
{
	struct tj_ring_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->payload_room = payload_max ? TJC_PAYLOAD_MAX : 0;
	d->stack_mode = stack_mode;
	tj_u64map_init(&d->index);
	return d;
}

void tj_ring_decoder_free(struct tj_ring_decoder *d)
{
	if (!d)
		return;
	tj_u64map_free(&d->index);
	free(d->told);
	free(d->free_slots);
	free(d->closing);
	free(d);
}

uint64_t tj_ring_decoder_unknown(const struct tj_ring_decoder *d)
{
	return d->unknown;
}

size_t tj_ring_decoder_sockets(const struct tj_ring_decoder *d)
{
	return d->index.len;
}

static struct told *told_of(struct tj_ring_decoder *d, uint64_t sock)
{
	uint64_t *slot = tj_u64map_get(&d->index, sock);
	return slot ? &d->told[*slot] : NULL;
}

/* Remember (or refresh) a socket's addresses from one of its whole
 * records.  Out of memory: not remembered (its compact records then
 * count as unknown). */
static void tell(struct tj_ring_decoder *d, const struct tjc_event *e)
{
	int added;
	uint64_t *slot = tj_u64map_upsert(&d->index, e->sock, &added);

	if (!slot)
		return;
	if (added) {
		if (d->nfree) {
			*slot = d->free_slots[--d->nfree];
		} else {
			if (d->ntold == d->captold) {
				size_t cap = d->captold ? 2 * d->captold : 64;
				struct told *t = realloc(d->told, cap * sizeof(*t));
				uint32_t *f = realloc(d->free_slots, cap * sizeof(*f));
				if (t)
					d->told = t;
				if (f)
					d->free_slots = f;
				if (!t || !f) {
					tj_u64map_del(&d->index, e->sock);
					return;
				}
				d->captold = cap;
			}
			*slot = d->ntold++;
		}
	}
	struct told *t = &d->told[*slot];
	memcpy(t->whole, e, sizeof(t->whole));
	t->closed_ts = 0;
}

static void forget(struct tj_ring_decoder *d, uint64_t sock, uint64_t closed_ts)
{
	uint64_t *slot = tj_u64map_get(&d->index, sock);

	/* Told again after that CLOSE (a reused inode): keep it. */
	if (!slot || d->told[*slot].closed_ts != closed_ts)
		return;
	d->free_slots[d->nfree++] = (uint32_t)*slot;
	tj_u64map_del(&d->index, sock);
}

/* A CLOSE: the socket is forgotten once records FORGET_AFTER_NS younger
 * than it have come. */
static void note_close(struct tj_ring_decoder *d, const struct tjc_event *e)
{
	struct told *t = told_of(d, e->sock);

	if (!t || e->ts_ns == 0)
		return;
	if (d->clen == d->ccap) {
		size_t cap = d->ccap ? 2 * d->ccap : 64;
		struct closing *c = malloc(cap * sizeof(*c));
		if (!c)
			return; /* kept for the capture's life instead */
		for (size_t i = 0; i < d->clen; i++)
			c[i] = d->closing[(d->chead + i) % d->ccap];
		free(d->closing);
		d->closing = c;
		d->chead = 0;
		d->ccap = cap;
	}
	t->closed_ts = e->ts_ns;
	d->closing[(d->chead + d->clen++) % d->ccap] = (struct closing){ e->sock, e->ts_ns };
}

static void sweep(struct tj_ring_decoder *d)
{
	while (d->clen) {
		struct closing *c = &d->closing[d->chead];
		if (c->ts + FORGET_AFTER_NS > d->newest_ts)
			break;
		forget(d, c->sock, c->ts);
		d->chead = (d->chead + 1) % d->ccap;
		d->clen--;
	}
}

/* A whole record: handed on as it is, and what it tells remembered. */
static int decode_whole(struct tj_ring_decoder *d, const struct tjc_event *e, size_t size,
			const struct tjc_event **out, size_t *out_size)
{
	if (e->type == TJC_EV_SEND || e->type == TJC_EV_RECV)
		tell(d, e);
	else if (e->type == TJC_EV_CLOSE)
		note_close(d, e);
	*out = e;
	*out_size = size;
	return TJ_RING_OK;
}

static int decode_compact(struct tj_ring_decoder *d, const struct tjc_data *c, size_t size,
			  const struct tjc_event **out, size_t *out_size)
{
	size_t tail_at = sizeof(*c) + d->payload_room;
	size_t need = tail_at + (d->stack_mode ? sizeof(struct tjc_stack_tail) : 0);
	size_t caller_at = sizeof(struct tjc_event) + d->payload_room;
	struct tjc_event *e = &d->out.ev;
	const struct told *t;
	int rc = TJ_RING_OK;

	if (size < need || c->payload_len > d->payload_room)
		return TJ_RING_BAD;
	if ((t = told_of(d, c->sock))) {
		memcpy(e, t->whole, sizeof(t->whole));
	} else {
		memset(e, 0, sizeof(*e)); /* no addresses */
		d->unknown++;
		rc = TJ_RING_UNKNOWN_SOCK;
	}
	/* Everything but the socket's own fields is the compact record's. */
	e->ts_ns = c->ts_ns;
	e->sock = c->sock;
	e->bytes = c->bytes;
	e->offset = c->offset;
	e->pid = c->pid;
	e->tid = c->tid;
	e->fd = c->fd;
	e->flags = c->flags;
	e->type = c->type & ~TJC_REC_COMPACT;
	e->arg = 0;
	e->ustack = -1;
	e->kstack = -1;
	e->payload_len = c->payload_len;
	memcpy(e->payload, c->payload, c->payload_len);
	*out_size = caller_at;
	if (d->stack_mode) {
		const struct tjc_stack_tail *st = (const void *)((const uint8_t *)c + tail_at);
		e->ustack = st->ustack;
		e->kstack = st->kstack;
		/* Whole records carry the caller only with user stacks. */
		if (d->stack_mode & TJC_STACK_USER) {
			memcpy(d->out.bytes + caller_at, &st->caller, sizeof(st->caller));
			*out_size += sizeof(st->caller);
		}
	}
	*out = e;
	return rc;
}

int tj_ring_decode(struct tj_ring_decoder *d, const void *rec, size_t size,
		   const struct tjc_event **out, size_t *out_size)
{
	const struct tjc_data *c = rec;

	*out = NULL;
	*out_size = 0;
	/* Every layout has its type at the same offset. */
	if (size < sizeof(struct tjc_data))
		return TJ_RING_BAD;
	if (c->ts_ns > d->newest_ts) {
		d->newest_ts = c->ts_ns;
		if (d->clen)
			sweep(d);
	}
	if (c->type == (TJC_EV_SEND | TJC_REC_COMPACT) || c->type == (TJC_EV_RECV | TJC_REC_COMPACT))
		return decode_compact(d, c, size, out, out_size);
	if ((c->type & TJC_REC_COMPACT) || size < sizeof(struct tjc_event))
		return TJ_RING_BAD;
	return decode_whole(d, rec, size, out, out_size);
}

int tj_ring_decode_next(struct tj_ring_decoder *d, const void **rec, size_t *left,
			const struct tjc_event **out, size_t *out_size)
{
	const struct tjc_data *c = *rec;
	size_t n = *left;

	/* A compact record is exactly its settings' size: the next one of a
	 * batch follows it. */
	if (n >= sizeof(*c) && (c->type & TJC_REC_COMPACT)) {
		size_t one = sizeof(*c) + d->payload_room +
			     (d->stack_mode ? sizeof(struct tjc_stack_tail) : 0);
		if (n > one)
			n = one;
	}
	int rc = tj_ring_decode(d, c, n, out, out_size);
	if (rc == TJ_RING_BAD)
		n = *left;
	*rec = (const uint8_t *)*rec + n;
	*left -= n;
	return rc;
}

/* The fields before type are tjc_event's, at the same offsets. */
#include <stddef.h>
_Static_assert(offsetof(struct tjc_data, type) == offsetof(struct tjc_event, type) &&
	       offsetof(struct tjc_data, fd) == offsetof(struct tjc_event, fd) &&
	       offsetof(struct tjc_data, tid) == offsetof(struct tjc_event, tid) &&
	       offsetof(struct tjc_data, offset) == offsetof(struct tjc_event, offset),
	       "tjc_data and tjc_event disagree before type");
_Static_assert(sizeof(struct tjc_data) == 56, "tjc_data is 56 bytes: 64 with the ring's header");
