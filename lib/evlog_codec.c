/* The body of an evlog events block: events stored column by column, each
 * field a delta against the previous event of the same socket, so that a
 * keepalive conversation costs a few bytes per event before zlib.  The
 * layout is in lib/EVLOG.md ("Events block body"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evlog_format.h"

/* Worst case bytes one event adds to each column. */
static const size_t col_max[COL__COUNT] = {
	[COL_TS] = 10, [COL_TYPE] = 1, [COL_SOCK] = 11, [COL_MASK] = 3,
	[COL_FIELDS] = 128, [COL_BYTES] = 10, [COL_OFFSET] = 10,
	[COL_PAYLOAD] = 3 + TJ_PAYLOAD_MAX,
};

static inline uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* a - b without signed overflow. */
static inline int64_t sdiff(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b);
}

static inline int dir_of(unsigned type)
{
	return type == TJ_EV_SEND ? 0 : type == TJ_EV_RECV ? 1 : 2;
}

/* Length of addr without its trailing zero bytes (IPv4 stores 4). */
static inline unsigned addr_len(const uint8_t a[16])
{
	unsigned n = 16;
	while (n > 0 && a[n - 1] == 0)
		n--;
	return n;
}

/* ---- encoding ---- */

static int buf_reserve(struct evlog_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline void put_uv(struct evlog_buf *b, uint64_t v)
{
	uint8_t *p = b->p + b->len;
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	b->len = (size_t)(p - b->p);
}

static inline void put_byte(struct evlog_buf *b, uint8_t v)
{
	b->p[b->len++] = v;
}

static inline void put_bytes(struct evlog_buf *b, const void *src, size_t n)
{
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static inline void put_addr(struct evlog_buf *b, const uint8_t a[16])
{
	unsigned n = addr_len(a);
	put_byte(b, (uint8_t)n);
	put_bytes(b, a, n);
}

int evlog_encoder_init(struct evlog_encoder *e)
{
	memset(e, 0, sizeof(*e));
	tj_u64map_init(&e->map);
	return 0;
}

void evlog_encoder_free(struct evlog_encoder *e)
{
	for (int c = 0; c < COL__COUNT; c++)
		free(e->col[c].p);
	free(e->socks);
	tj_u64map_free(&e->map);
	memset(e, 0, sizeof(*e));
}

void evlog_encoder_reset(struct evlog_encoder *e)
{
	for (int c = 0; c < COL__COUNT; c++)
		e->col[c].len = 0;
	/* Clear the map but keep its table: blocks are alike in size. */
	if (e->map.cap)
		memset(e->map.used, 0, e->map.cap);
	e->map.len = 0;
	e->nsocks = 0;
	e->prev_ts = e->prev_new_sock = 0;
	e->count = 0;
}

static struct evlog_sockstate *new_sock(struct evlog_sockstate **socks,
					size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct evlog_sockstate *s = realloc(*socks, c * sizeof(*s));
		if (!s)
			return NULL;
		*socks = s;
		*cap = c;
	}
	struct evlog_sockstate *st = &(*socks)[(*n)++];
	memset(st, 0, sizeof(*st));
	return st;
}

int evlog_encode(struct evlog_encoder *e, const struct tj_event *ev)
{
	for (int c = 0; c < COL__COUNT; c++)
		if (buf_reserve(&e->col[c], col_max[c]) < 0)
			return -1;

	int added;
	uint64_t *slot = tj_u64map_upsert(&e->map, ev->sock, &added);
	if (!slot)
		return -1;
	struct evlog_sockstate *st;
	if (added) {
		st = new_sock(&e->socks, &e->nsocks, &e->socks_cap);
		if (!st) {
			tj_u64map_del(&e->map, ev->sock);
			return -1;
		}
		*slot = e->nsocks - 1;
		put_uv(&e->col[COL_SOCK], 0);
		put_uv(&e->col[COL_SOCK], zigzag(sdiff(ev->sock, e->prev_new_sock)));
		e->prev_new_sock = ev->sock;
	} else {
		st = &e->socks[*slot];
		put_uv(&e->col[COL_SOCK], *slot + 1);
	}

	put_uv(&e->col[COL_TS], zigzag(sdiff(ev->ts_ns, e->prev_ts)));
	e->prev_ts = ev->ts_ns;
	put_byte(&e->col[COL_TYPE], ev->type);

	int dir = dir_of(ev->type);
	uint64_t predicted = dir < 2 ? st->next_off[dir] : 0;
	struct tj_event *p = &st->ev;
	unsigned m = 0;
	if (ev->offset != predicted)
		m |= FM_OFFSET;
	if (ev->payload_len)
		m |= FM_PAYLOAD;
	if (ev->tcp_seq != p->tcp_seq)
		m |= FM_SEQ;
	if (ev->flags != p->flags)
		m |= FM_FLAGS;
	if (ev->tid != p->tid)
		m |= FM_TID;
	if (ev->pid != p->pid)
		m |= FM_PID;
	if (ev->fd != p->fd)
		m |= FM_FD;
	if (ev->arg != p->arg)
		m |= FM_ARG;
	if (ev->stack_id != p->stack_id)
		m |= FM_STACK;
	if (ev->node != p->node)
		m |= FM_NODE;
	if (ev->family != p->family)
		m |= FM_FAMILY;
	if (memcmp(ev->laddr, p->laddr, 16) != 0)
		m |= FM_LADDR;
	if (ev->lport != p->lport)
		m |= FM_LPORT;
	if (memcmp(ev->raddr, p->raddr, 16) != 0)
		m |= FM_RADDR;
	if (ev->rport != p->rport)
		m |= FM_RPORT;
	put_uv(&e->col[COL_MASK], m);

	if (m & ~(FM_OFFSET | FM_PAYLOAD)) {
		/* Field order (not bit order): pid before tid, which is
		 * stored as a difference from it. */
		struct evlog_buf *f = &e->col[COL_FIELDS];
		if (m & FM_SEQ)
			put_uv(f, zigzag((int32_t)(ev->tcp_seq - p->tcp_seq)));
		if (m & FM_FLAGS)
			put_uv(f, ev->flags);
		if (m & FM_PID)
			put_uv(f, ev->pid);
		if (m & FM_TID)
			put_uv(f, zigzag((int64_t)ev->tid - (int64_t)ev->pid));
		if (m & FM_FD)
			put_uv(f, zigzag(ev->fd));
		if (m & FM_ARG)
			put_uv(f, ev->arg);
		if (m & FM_STACK)
			put_uv(f, ev->stack_id);
		if (m & FM_NODE)
			put_uv(f, ev->node);
		if (m & FM_FAMILY)
			put_byte(f, ev->family);
		if (m & FM_LADDR)
			put_addr(f, ev->laddr);
		if (m & FM_LPORT)
			put_uv(f, ev->lport);
		if (m & FM_RADDR)
			put_addr(f, ev->raddr);
		if (m & FM_RPORT)
			put_uv(f, ev->rport);
	}
	if (m & FM_OFFSET)
		put_uv(&e->col[COL_OFFSET], zigzag(sdiff(ev->offset, predicted)));
	if (m & FM_PAYLOAD) {
		put_uv(&e->col[COL_PAYLOAD], ev->payload_len);
		put_bytes(&e->col[COL_PAYLOAD], ev->payload, ev->payload_len);
	}
	put_uv(&e->col[COL_BYTES],
	       zigzag(sdiff((uint64_t)ev->bytes, (uint64_t)st->prev_bytes[dir])));

	/* Remember this event as the socket's previous one. */
	p->tcp_seq = ev->tcp_seq;
	p->flags = ev->flags;
	p->pid = ev->pid;
	p->tid = ev->tid;
	p->fd = ev->fd;
	p->arg = ev->arg;
	p->stack_id = ev->stack_id;
	p->node = ev->node;
	p->family = ev->family;
	p->lport = ev->lport;
	p->rport = ev->rport;
	if (m & FM_LADDR)
		memcpy(p->laddr, ev->laddr, 16);
	if (m & FM_RADDR)
		memcpy(p->raddr, ev->raddr, 16);
	st->prev_bytes[dir] = ev->bytes;
	if (dir < 2)
		st->next_off[dir] = ev->offset + (ev->bytes > 0 ? (uint64_t)ev->bytes : 0);
	e->count++;
	return 0;
}

size_t evlog_encoded_size(const struct evlog_encoder *e)
{
	size_t n = 1 + 10 * COL__COUNT;
	for (int c = 0; c < COL__COUNT; c++)
		n += e->col[c].len;
	return n;
}

size_t evlog_encoder_finish(struct evlog_encoder *e, uint8_t *out)
{
	struct evlog_buf dir = { out, 0, (size_t)-1 };
	put_uv(&dir, COL__COUNT);
	for (int c = 0; c < COL__COUNT; c++)
		put_uv(&dir, e->col[c].len);
	size_t n = dir.len;
	for (int c = 0; c < COL__COUNT; c++) {
		if (e->col[c].len)
			memcpy(out + n, e->col[c].p, e->col[c].len);
		n += e->col[c].len;
	}
	return n;
}

/* ---- decoding ---- */

/* Varint reader: on running off the end (or an over-long varint) it sets
 * *bad and returns 0, so callers check once per event. */
static inline uint64_t get_uv(struct evlog_cursor *c, int *bad)
{
	if (__builtin_expect(c->p < c->end && *c->p < 0x80, 1))
		return *c->p++;
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (c->p >= c->end)
			break;
		uint8_t b = *c->p++;
		if (shift == 63 && b > 1)
			break;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	*bad = 1;
	return 0;
}

static inline uint8_t get_byte(struct evlog_cursor *c, int *bad)
{
	if (c->p < c->end)
		return *c->p++;
	*bad = 1;
	return 0;
}

static inline void get_addr(struct evlog_cursor *c, uint8_t a[16], int *bad)
{
	unsigned n = get_byte(c, bad);
	if (n > 16 || (size_t)(c->end - c->p) < n) {
		*bad = 1;
		return;
	}
	memcpy(a, c->p, n);
	memset(a + n, 0, 16 - n);
	c->p += n;
}

void evlog_decoder_init(struct evlog_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

void evlog_decoder_free(struct evlog_decoder *d)
{
	free(d->socks);
	memset(d, 0, sizeof(*d));
}

static const char *const col_names[COL__COUNT] = {
	"ts", "type", "sock", "mask", "fields", "bytes", "offset", "payload",
};

int evlog_decoder_start(struct evlog_decoder *d, const uint8_t *raw,
			size_t len, uint32_t count)
{
	struct evlog_cursor c = { raw, raw + len };
	int bad = 0;
	uint64_t ncols = get_uv(&c, &bad);
	d->left = 0;
	d->nsocks = 0;
	d->prev_ts = d->prev_new_sock = 0;
	if (bad || ncols < COL__COUNT || ncols > 64) {
		snprintf(d->why, sizeof(d->why), "bad column count");
		return -1;
	}
	uint64_t lens[64], total = 0;
	for (uint64_t i = 0; i < ncols; i++) {
		lens[i] = get_uv(&c, &bad);
		total += lens[i];
		if (bad || lens[i] > len || total > len) {
			snprintf(d->why, sizeof(d->why), "bad column directory");
			return -1;
		}
	}
	if (total != (uint64_t)(c.end - c.p)) {
		snprintf(d->why, sizeof(d->why),
			 "columns hold %llu bytes but the body has %llu",
			 (unsigned long long)total,
			 (unsigned long long)(c.end - c.p));
		return -1;
	}
	/* Columns past ours come from a newer minor version: ignored. */
	const uint8_t *p = c.p;
	for (int i = 0; i < COL__COUNT; i++) {
		d->col[i].p = p;
		d->col[i].end = p + lens[i];
		p += lens[i];
	}
	d->left = count;
	return 0;
}

int evlog_decode(struct evlog_decoder *d, const struct tj_event **out)
{
	if (d->left == 0) {
		for (int i = 0; i < COL__COUNT; i++)
			if (d->col[i].p != d->col[i].end) {
				snprintf(d->why, sizeof(d->why),
					 "%zu bytes left over in column %s",
					 (size_t)(d->col[i].end - d->col[i].p),
					 col_names[i]);
				return -1;
			}
		return 0;
	}
	int bad = 0;
	struct evlog_sockstate *st;
	uint64_t ref = get_uv(&d->col[COL_SOCK], &bad);
	if (ref == 0) {
		uint64_t delta = get_uv(&d->col[COL_SOCK], &bad);
		if (bad)
			goto malformed;
		st = new_sock(&d->socks, &d->nsocks, &d->socks_cap);
		if (!st) {
			snprintf(d->why, sizeof(d->why), "out of memory");
			return -1;
		}
		d->prev_new_sock += (uint64_t)unzigzag(delta);
		st->ev.sock = d->prev_new_sock;
	} else {
		if (ref > d->nsocks)
			goto malformed;
		st = &d->socks[ref - 1];
	}
	struct tj_event *ev = &st->ev;
	d->prev_ts += (uint64_t)unzigzag(get_uv(&d->col[COL_TS], &bad));
	ev->ts_ns = d->prev_ts;
	ev->type = get_byte(&d->col[COL_TYPE], &bad);
	uint64_t m = get_uv(&d->col[COL_MASK], &bad);
	if (m & ~(uint64_t)FM__ALL)
		goto malformed;
	int dir = dir_of(ev->type);

	if (m & ~(uint64_t)(FM_OFFSET | FM_PAYLOAD)) {
		struct evlog_cursor *f = &d->col[COL_FIELDS];
		if (m & FM_SEQ)
			ev->tcp_seq += (uint32_t)unzigzag(get_uv(f, &bad));
		if (m & FM_FLAGS)
			ev->flags = (uint32_t)get_uv(f, &bad);
		if (m & FM_PID)
			ev->pid = (uint32_t)get_uv(f, &bad);
		if (m & FM_TID)
			ev->tid = (uint32_t)((int64_t)ev->pid + unzigzag(get_uv(f, &bad)));
		if (m & FM_FD)
			ev->fd = (int32_t)unzigzag(get_uv(f, &bad));
		if (m & FM_ARG)
			ev->arg = (uint32_t)get_uv(f, &bad);
		if (m & FM_STACK)
			ev->stack_id = (uint32_t)get_uv(f, &bad);
		if (m & FM_NODE)
			ev->node = (uint32_t)get_uv(f, &bad);
		if (m & FM_FAMILY)
			ev->family = get_byte(f, &bad);
		if (m & FM_LADDR)
			get_addr(f, ev->laddr, &bad);
		if (m & FM_LPORT)
			ev->lport = (uint16_t)get_uv(f, &bad);
		if (m & FM_RADDR)
			get_addr(f, ev->raddr, &bad);
		if (m & FM_RPORT)
			ev->rport = (uint16_t)get_uv(f, &bad);
	}
	uint64_t predicted = dir < 2 ? st->next_off[dir] : 0;
	ev->offset = predicted;
	if (m & FM_OFFSET)
		ev->offset += (uint64_t)unzigzag(get_uv(&d->col[COL_OFFSET], &bad));
	ev->payload = NULL;
	ev->payload_len = 0;
	if (m & FM_PAYLOAD) {
		struct evlog_cursor *pc = &d->col[COL_PAYLOAD];
		uint64_t n = get_uv(pc, &bad);
		if (bad || n == 0 || n > TJ_PAYLOAD_MAX ||
		    (uint64_t)(pc->end - pc->p) < n)
			goto malformed;
		ev->payload = pc->p;
		ev->payload_len = (uint16_t)n;
		pc->p += n;
	}
	ev->bytes = (int64_t)((uint64_t)st->prev_bytes[dir] +
			      (uint64_t)unzigzag(get_uv(&d->col[COL_BYTES], &bad)));
	if (bad)
		goto malformed;
	st->prev_bytes[dir] = ev->bytes;
	if (dir < 2)
		st->next_off[dir] = ev->offset + (ev->bytes > 0 ? (uint64_t)ev->bytes : 0);
	d->left--;
	*out = ev;
	return 1;

malformed:
	snprintf(d->why, sizeof(d->why), "malformed event (%u left in block)",
		 d->left);
	return -1;
}
