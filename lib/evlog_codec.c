/* The body of an evlog events block: events stored column by column, each
 * field a delta against the previous event of the same socket, so that a
 * keepalive conversation costs a few bytes per event before zlib.  The
 * layout is in lib/EVLOG.md ("Events block"): the writer stores coding 2
 * (block type 5); the reader takes coding 1 (type 1, logs before 1.3)
 * too.  The two differ only where coding 2 predicts better, so they share
 * this code and branch there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "evlog_format.h"
#include "util.h"

/* Worst case bytes one event adds to each column. */
static const size_t col_max[COL__COUNT] = {
	[COL_TS] = 10, [COL_TYPE] = 4, [COL_SOCK] = 11,
	[COL_FIELDS] = 136, [COL_BYTES] = 10, [COL_OFFSET] = 10,
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

/* Which of a socket's flags states an event of coding 2 is coded
 * against: flags go with the kind of event more than with the socket
 * (receives "partial", a non-blocking connect "error", an end of stream
 * none), so each type below 8 has its own, and a receive of no bytes
 * takes slot 0 (type 0 is never written). */
static inline int flags_slot(unsigned type, int64_t bytes)
{
	if (type == TJ_EV_RECV && bytes <= 0)
		return 0;
	return type < TJ_FLAG_SLOTS ? (int)type : TJ_FLAG_SLOTS - 1;
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
	memset(e->tmpl, 0xff, sizeof(e->tmpl));
	memset(e->new_mask, 0, sizeof(e->new_mask));
	e->gen = 1;
	return 0;
}

void evlog_encoder_free(struct evlog_encoder *e)
{
	for (int c = 0; c < COL__COUNT; c++)
		free(e->col[c].p);
	free(e->socks);
	free(e->slots);
	memset(e, 0, sizeof(*e));
}

void evlog_encoder_reset(struct evlog_encoder *e)
{
	for (int c = 0; c < COL__COUNT; c++)
		e->col[c].len = 0;
	e->room = 0;
	e->nsocks = 0;
	e->last = 0;
	e->prev_ts = e->prev_new_sock = 0;
	e->count = 0;
	memset(e->tmpl, 0xff, sizeof(e->tmpl));
	memset(e->new_mask, 0, sizeof(e->new_mask));
	if (++e->gen == 0) {
		/* After 2^32 blocks: forget the old stamps for real. */
		if (e->slots)
			memset(e->slots, 0, (e->slots_mask + 1) * sizeof(*e->slots));
		e->gen = 1;
	}
}

/* Make room in every column for a run of events, and say how many. */
static int refill_room(struct evlog_encoder *e)
{
	enum { RUN = 64 };
	size_t room = SIZE_MAX;
	for (int c = 0; c < COL__COUNT; c++) {
		if (buf_reserve(&e->col[c], RUN * col_max[c]) < 0)
			return -1;
		size_t r = (e->col[c].cap - e->col[c].len) / col_max[c];
		if (r < room)
			room = r;
	}
	e->room = room;
	return 0;
}

/* The slot of sock: its own, or the empty one where it belongs. */
static inline struct evlog_sockslot *find_slot(const struct evlog_encoder *e,
					       uint64_t sock)
{
	size_t i = (size_t)tj_hash64(sock) & e->slots_mask;
	while (e->slots[i].gen == e->gen && e->slots[i].sock != sock)
		i = (i + 1) & e->slots_mask;
	return &e->slots[i];
}

/* Keep the table at most half full: rebuilt from the socket states. */
static int grow_slots(struct evlog_encoder *e)
{
	size_t cap = e->slots_mask ? 2 * (e->slots_mask + 1) : 1024;
	struct evlog_sockslot *t = calloc(cap, sizeof(*t));
	if (!t)
		return -1;
	free(e->slots);
	e->slots = t;
	e->slots_mask = cap - 1;
	for (size_t k = 0; k < e->nsocks; k++) {
		struct evlog_sockslot *sl = find_slot(e, e->socks[k].sock);
		sl->sock = e->socks[k].sock;
		sl->idx = (uint32_t)k;
		sl->gen = e->gen;
	}
	return 0;
}

/* Room for one more socket state in *socks (cache-line aligned). */
static int socks_reserve(struct evlog_sockstate **socks, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 256;
	while (c < need)
		c *= 2;
	struct evlog_sockstate *s = aligned_alloc(64, c * sizeof(*s));
	if (!s)
		return -1;
	if (*socks)
		memcpy(s, *socks, *cap * sizeof(*s));
	free(*socks);
	*socks = s;
	*cap = c;
	return 0;
}

/* A socket's first event in a block: it starts from the socket at from
 * (the template, or the previous event's socket), or from zero when the
 * block has no socket yet (nprev = 0), with nothing sent or received. */
static void sock_start(struct evlog_sockstate *socks, size_t idx, size_t nprev,
		       size_t from, uint64_t id, int coding2)
{
	struct evlog_sockstate *st = &socks[idx];
	if (nprev > 0)
		*st = socks[from];
	else
		memset(st, 0, sizeof(*st));
	st->sock = id;
	st->next_off[0] = st->next_off[1] = 0;
	if (!coding2)
		st->prev_bytes[0] = st->prev_bytes[1] = st->prev_bytes[2] = 0;
}

static inline int addr_eq(const uint8_t a[16], const uint8_t b[16])
{
	uint64_t x[2], y[2];
	memcpy(x, a, 16);
	memcpy(y, b, 16);
	return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}

/* Roughly the bytes of fields an event would store against state st:
 * what a new socket's template is chosen by. */
static unsigned template_cost(const struct tj_event *ev, const struct evlog_sockstate *st)
{
	unsigned c = 0;
	if (!addr_eq(ev->raddr, st->raddr))
		c += 1 + addr_len(ev->raddr);
	if (!addr_eq(ev->laddr, st->laddr))
		c += 1 + addr_len(ev->laddr);
	c += (ev->rport != st->rport) * 2 + (ev->lport != st->lport) * 2;
	c += (ev->pid != st->pid) * 2 + (ev->fd != st->fd) + (ev->tid != st->tid);
	c += (ev->family != st->family) + (ev->node != st->node) * 2;
	c += (ev->flags != st->flags[flags_slot(ev->type, ev->bytes)]);
	c += ev->stack_id != st->stack_id;
	return c;
}

/* The template of a new socket: the default one (from), unless one of
 * the block's last TEMPLATE_SCAN sockets saves more than the byte that
 * naming it costs (a node calling several backends in turn: its new
 * connection looks like its last one to the same backend).  Only a
 * connection's first event (connect, accept) looks: the sockets a block
 * meets mid-stream (its first event a send or receive) are each other
 * connection, and scanning for each of them cost more than coding. */
#define TEMPLATE_SCAN 16
static size_t pick_template(const struct evlog_encoder *e, const struct tj_event *ev,
			    size_t from)
{
	if (ev->type != TJ_EV_CONNECT && ev->type != TJ_EV_ACCEPT)
		return from;
	unsigned best = template_cost(ev, &e->socks[from]);
	size_t pick = from;
	if (best <= 2)
		return from;
	size_t stop = e->nsocks > TEMPLATE_SCAN ? e->nsocks - TEMPLATE_SCAN : 0;
	for (size_t j = e->nsocks; j-- > stop;) {
		unsigned c = template_cost(ev, &e->socks[j]) + 1;
		if (c < best) {
			best = c;
			pick = j;
			if (c <= 2)
				break;
		}
	}
	return pick;
}

/* Coding 2's 16-bit port as a change from the state's. */
static inline uint64_t port_delta(uint16_t now, uint16_t was)
{
	return zigzag((int16_t)(uint16_t)(now - was));
}

int evlog_encode(struct evlog_encoder *e, const struct tj_event *ev)
{
	if (e->room == 0 && refill_room(e) < 0)
		return -1;
	if ((e->nsocks + 1) * 2 > e->slots_mask + 1 && grow_slots(e) < 0)
		return -1;
	struct evlog_sockslot *sl = find_slot(e, ev->sock);
	size_t idx;
	int fresh = sl->gen != e->gen;
	if (fresh) {
		if (socks_reserve(&e->socks, &e->socks_cap, e->nsocks + 1) < 0)
			return -1;
		idx = e->nsocks;
		size_t from = e->tmpl[ev->type] != TEMPLATE_NONE ? e->tmpl[ev->type] : e->last;
		size_t pick = idx > 0 ? pick_template(e, ev, from) : from;
		sock_start(e->socks, idx, e->nsocks, pick, ev->sock, 1);
		e->tmpl[ev->type] = (uint32_t)idx;
		e->nsocks++;
		sl->sock = ev->sock;
		sl->idx = (uint32_t)idx;
		sl->gen = e->gen;
		if (pick != from) {
			put_uv(&e->col[COL_SOCK], SREF_NEW_FROM);
			put_uv(&e->col[COL_SOCK], zigzag(sdiff(ev->sock, e->prev_new_sock)));
			put_uv(&e->col[COL_SOCK], idx - pick);
		} else if (ev->sock == e->prev_new_sock + 1 && idx > 0) {
			put_uv(&e->col[COL_SOCK], SREF_NEXT);
		} else {
			put_uv(&e->col[COL_SOCK], SREF_NEW);
			put_uv(&e->col[COL_SOCK], zigzag(sdiff(ev->sock, e->prev_new_sock)));
		}
		e->prev_new_sock = ev->sock;
	} else {
		/* Counted back from the newest socket: the busy ones are
		 * mostly recent, so this stays one byte on a churning node. */
		idx = sl->idx;
		put_uv(&e->col[COL_SOCK], SREF_OLD + (e->nsocks - 1 - idx));
	}
	e->room--;
	struct evlog_sockstate *st = &e->socks[idx];
	e->last = idx;

	/* Events come in time order nearly always: no sign bit. */
	put_uv(&e->col[COL_TS], ev->ts_ns - e->prev_ts);
	e->prev_ts = ev->ts_ns;

	int dir = dir_of(ev->type);
	uint64_t predicted = dir < 2 ? st->next_off[dir] : 0;
	unsigned m = 0;
	if (ev->offset != predicted)
		m |= FM_OFFSET;
	if (ev->payload_len)
		m |= FM_PAYLOAD;
	if (ev->tcp_seq != st->tcp_seq)
		m |= FM_SEQ;
	int fslot = flags_slot(ev->type, ev->bytes);
	if (ev->flags != st->flags[fslot])
		m |= FM_FLAGS;
	if (ev->tid != st->tid)
		m |= FM_TID;
	if (ev->pid != st->pid)
		m |= FM_PID;
	if (ev->fd != st->fd)
		m |= FM_FD;
	if (ev->arg != st->arg)
		m |= FM_ARG;
	if (ev->stack_id != st->stack_id)
		m |= FM_STACK;
	if (ev->node != st->node)
		m |= FM_NODE;
	if (ev->family != st->family)
		m |= FM_FAMILY;
	if (memcmp(ev->laddr, st->laddr, 16) != 0)
		m |= FM_LADDR;
	if (ev->lport != st->lport)
		m |= FM_LPORT;
	if (memcmp(ev->raddr, st->raddr, 16) != 0)
		m |= FM_RADDR;
	if (ev->rport != st->rport)
		m |= FM_RPORT;
	/* Type and mask share a varint: one byte when only the thread, the
	 * offset or the payload changed. */
	unsigned t = ev->type < TYPE_ESCAPE ? ev->type : TYPE_ESCAPE;
	unsigned sm = m;
	if (fresh) {
		/* A new socket's changes are those of the last new socket of
		 * its type, mostly (a connect: another fd and local port):
		 * stored as the difference, they leave the mask empty. */
		sm ^= e->new_mask[ev->type];
		e->new_mask[ev->type] = (uint16_t)m;
	}
	put_uv(&e->col[COL_TYPE], t | (uint64_t)sm << TYPE_BITS);

	if (t == TYPE_ESCAPE)
		put_uv(&e->col[COL_FIELDS], ev->type);
	if (m & ~(FM_OFFSET | FM_PAYLOAD)) {
		/* Field order (not bit order): pid before tid, which is
		 * stored as a difference from it. */
		struct evlog_buf *f = &e->col[COL_FIELDS];
		if (m & FM_SEQ)
			put_uv(f, zigzag((int32_t)(ev->tcp_seq - st->tcp_seq)));
		if (m & FM_FLAGS)
			put_uv(f, ev->flags);
		if (m & FM_PID)
			put_uv(f, ev->pid);
		if (m & FM_TID)
			put_uv(f, zigzag((int64_t)ev->tid - (int64_t)ev->pid));
		if (m & FM_FD)
			put_uv(f, zigzag((int64_t)ev->fd - st->fd));
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
			put_uv(f, port_delta(ev->lport, st->lport));
		if (m & FM_RADDR)
			put_addr(f, ev->raddr);
		if (m & FM_RPORT)
			put_uv(f, port_delta(ev->rport, st->rport));
		st->tcp_seq = ev->tcp_seq;
		st->flags[fslot] = ev->flags;
		st->pid = ev->pid;
		st->tid = ev->tid;
		st->fd = ev->fd;
		st->arg = ev->arg;
		st->stack_id = ev->stack_id;
		st->node = ev->node;
		st->family = ev->family;
		st->lport = ev->lport;
		st->rport = ev->rport;
		if (m & FM_LADDR)
			memcpy(st->laddr, ev->laddr, 16);
		if (m & FM_RADDR)
			memcpy(st->raddr, ev->raddr, 16);
	}
	if (m & FM_OFFSET)
		put_uv(&e->col[COL_OFFSET], zigzag(sdiff(ev->offset, predicted)));
	if (m & FM_PAYLOAD) {
		put_uv(&e->col[COL_PAYLOAD], ev->payload_len);
		put_bytes(&e->col[COL_PAYLOAD], ev->payload, ev->payload_len);
	}
	put_uv(&e->col[COL_BYTES],
	       zigzag(sdiff((uint64_t)ev->bytes, (uint64_t)st->prev_bytes[dir])));
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
static uint64_t __attribute__((noinline)) get_uv_slow(struct evlog_cursor *c,
						      int *bad)
{
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

/* Varints of one and two bytes (nearly all) take the short way; the
 * buffer has EVLOG_SLACK readable bytes past its end, so p[1] may be
 * read before knowing it is inside. */
static inline uint64_t get_uv(struct evlog_cursor *c, int *bad)
{
	const uint8_t *p = c->p;
	if (__builtin_expect(p < c->end, 1)) {
		uint64_t b0 = p[0];
		if (b0 < 0x80) {
			c->p = p + 1;
			return b0;
		}
		uint64_t b1 = p[1];
		if (b1 < 0x80 && p + 2 <= c->end) {
			c->p = p + 2;
			return (b0 & 0x7f) | b1 << 7;
		}
	}
	return get_uv_slow(c, bad);
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
	free(d->refs);
	free(d->from);
	memset(d, 0, sizeof(*d));
}

static const char *const col_names[COL__COUNT] = {
	"ts", "sock", "type", "fields", "bytes", "offset", "payload",
};

/* Decode the socket column whole: refs[] and the socket ids. */
static int decode_refs(struct evlog_decoder *d)
{
	struct evlog_cursor *c = &d->col[COL_SOCK];
	uint64_t prev_new = 0;
	size_t n = 0;
	int bad = 0;
	if (d->count > d->refs_cap) {
		uint32_t *r = realloc(d->refs, d->count * sizeof(*r));
		if (r)
			d->refs = r;
		uint32_t *f = r ? realloc(d->from, d->count * sizeof(*f)) : NULL;
		if (!f) {
			snprintf(d->why, sizeof(d->why), "out of memory");
			return -1;
		}
		d->from = f;
		d->refs_cap = d->count;
	}
	/* Room for every socket the block can name (each takes a byte of
	 * the column at least) at once, on huge pages (tj_alloc_big): grown
	 * a socket at a time, the array was copied at each doubling and its
	 * pages faulted in 4 KiB at a time (a third of an export's page
	 * faults).  Only as far as the block's sockets reach is touched. */
	size_t most = (size_t)(c->end - c->p) < d->count ? (size_t)(c->end - c->p) : d->count;
	if (most + 1 > d->socks_cap) { /* states are the block's own: nothing to copy */
		/* at least doubled: blocks' bounds differ a little, and each
		 * new array is faulted in again */
		size_t cap = most + 1 > 2 * d->socks_cap ? most + 1 : 2 * d->socks_cap;
		struct evlog_sockstate *s = tj_alloc_big(cap * sizeof(*s));
		if (!s) {
			snprintf(d->why, sizeof(d->why), "out of memory");
			return -1;
		}
		free(d->socks);
		d->socks = s;
		d->socks_cap = cap;
	}
	for (uint32_t i = 0; i < d->count; i++) {
		uint64_t ref = get_uv(c, &bad);
		if (d->coding == 2 && ref - SREF_OLD < n) {
			/* The common case first: a socket seen before. */
			d->refs[i] = (uint32_t)(n - 1 - (ref - SREF_OLD));
			continue;
		}
		int fresh = ref == SREF_NEW ||
			    (d->coding == 2 && (ref == SREF_NEW_FROM || ref == SREF_NEXT));
		if (fresh) {
			if (ref == SREF_NEXT && n == 0)
				bad = 1; /* the writer names the first socket */
			prev_new += ref == SREF_NEXT ? 1 : (uint64_t)unzigzag(get_uv(c, &bad));
			uint64_t back = ref == SREF_NEW_FROM ? get_uv(c, &bad) : 0;
			if (bad)
				break;
			if (back > n) {
				snprintf(d->why, sizeof(d->why),
					 "event %u's socket starts from socket %llu back of %zu",
					 i, (unsigned long long)back, n);
				return -1;
			}
			if (socks_reserve(&d->socks, &d->socks_cap, n + 1) < 0) {
				snprintf(d->why, sizeof(d->why), "out of memory");
				return -1;
			}
			d->socks[n].sock = prev_new;
			d->from[n] = back ? (uint32_t)(n - back) : TEMPLATE_NONE;
			d->refs[i] = (uint32_t)n++ | REF_NEW;
		} else if (d->coding == 1 && ref <= n) {
			/* Coding 1 counts from the block's first socket. */
			d->refs[i] = (uint32_t)(ref - 1);
		} else {
			snprintf(d->why, sizeof(d->why),
				 "event %u refers to socket %llu of %zu", i,
				 (unsigned long long)ref, n);
			return -1;
		}
	}
	if (bad || c->p != c->end) {
		snprintf(d->why, sizeof(d->why), "malformed socket column");
		return -1;
	}
	d->nsocks = n;
	return 0;
}

int evlog_decoder_start(struct evlog_decoder *d, const uint8_t *raw,
			size_t len, uint32_t count, int coding)
{
	struct evlog_cursor c = { raw, raw + len };
	int bad = 0;
	uint64_t ncols = get_uv(&c, &bad);
	d->coding = coding;
	memset(d->tmpl, 0xff, sizeof(d->tmpl));
	memset(d->new_mask, 0, sizeof(d->new_mask));
	d->count = d->next = 0;
	d->failed = 0;
	d->nsocks = 0;
	d->last = 0;
	d->prev_ts = 0;
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
	d->count = count;
	if (decode_refs(d) < 0) {
		d->count = 0;
		return -1;
	}
	return 0;
}

#define PREFETCH_AHEAD 16

/* Coding 1's mask bits 0..6 (offset, payload, seq, flags, tid, pid, fd)
 * as coding 2 numbers them; bits 7 and up are the same in both. */
static const uint8_t coding1_low[128] = {
#define C1(v) (((v) & 1 ? FM_OFFSET : 0) | ((v) & 2 ? FM_PAYLOAD : 0) | \
	       ((v) & 4 ? FM_SEQ : 0) | ((v) & 8 ? FM_FLAGS : 0) |      \
	       ((v) & 16 ? FM_TID : 0) | ((v) & 32 ? FM_PID : 0) |     \
	       ((v) & 64 ? FM_FD : 0))
#define C4(v) C1(v), C1(v + 1), C1(v + 2), C1(v + 3)
#define C16(v) C4(v), C4(v + 4), C4(v + 8), C4(v + 12)
	C16(0), C16(16), C16(32), C16(48), C16(64), C16(80), C16(96), C16(112),
#undef C16
#undef C4
#undef C1
};

/* A port: coding 2 stores the change from the state's, coding 1 the
 * value. */
static inline uint16_t port_value(struct evlog_cursor *c, uint16_t was,
				  int coding2, int *bad)
{
	uint64_t v = get_uv(c, bad);
	return coding2 ? (uint16_t)(was + (uint64_t)unzigzag(v)) : (uint16_t)v;
}

int evlog_decode_batch(struct evlog_decoder *d, struct tj_event *out,
		       unsigned max)
{
	if (d->failed)
		return -1;
	if (d->next >= d->count) {
		for (int i = 0; i < COL__COUNT; i++)
			if (d->col[i].p != d->col[i].end) {
				snprintf(d->why, sizeof(d->why),
					 "%zu bytes left over in column %s",
					 (size_t)(d->col[i].end - d->col[i].p),
					 col_names[i]);
				d->failed = 1;
				return -1;
			}
		return 0;
	}
	/* Cursors and running values live in locals (registers) for the
	 * whole batch. */
	struct evlog_cursor cts = d->col[COL_TS], cty = d->col[COL_TYPE];
	struct evlog_cursor cfl = d->col[COL_FIELDS], cby = d->col[COL_BYTES];
	struct evlog_cursor cof = d->col[COL_OFFSET], cpl = d->col[COL_PAYLOAD];
	struct evlog_sockstate *socks = d->socks;
	const uint32_t *refs = d->refs;
	const int coding2 = d->coding == 2;
	size_t last = d->last;
	uint64_t prev_ts = d->prev_ts;
	uint32_t i = d->next, end = d->count - i > max ? i + max : d->count;
	uint32_t ahead_end = d->count > PREFETCH_AHEAD ? d->count - PREFETCH_AHEAD : 0;
	int bad = 0;
	struct tj_event *ev = out;
	for (; i < end; i++, ev++) {
		if (i < ahead_end) {
			const struct evlog_sockstate *ahead =
				&socks[refs[i + PREFETCH_AHEAD] & ~REF_NEW];
			__builtin_prefetch(ahead);
			__builtin_prefetch((const char *)ahead + 64);
		}
		uint32_t ref = refs[i];
		size_t idx = ref & ~REF_NEW;
		uint64_t tm = get_uv(&cty, &bad), m;
		unsigned type;
		if (coding2) {
			m = tm >> TYPE_BITS;
			type = tm & ((1u << TYPE_BITS) - 1);
			if (type == TYPE_ESCAPE)
				type = (unsigned)get_uv(&cfl, &bad);
			if (type > 255) {
				bad = 1;
				break;
			}
			if (ref & REF_NEW) {
				m ^= d->new_mask[type];
				d->new_mask[type] = (uint16_t)m;
			}
		} else {
			m = tm >> 8;
			type = (uint8_t)tm;
			/* Coding 1 numbered the first seven mask bits
			 * otherwise. */
			m = (m & ~(uint64_t)0x7f) | coding1_low[m & 0x7f];
		}
		if (m & ~(uint64_t)FM__ALL) {
			bad = 1;
			break;
		}
		if (ref & REF_NEW) {
			uint32_t t = d->from[idx];
			if (t == TEMPLATE_NONE && coding2)
				t = d->tmpl[type];
			sock_start(socks, idx, idx, t != TEMPLATE_NONE ? t : last,
				   socks[idx].sock, coding2);
			if (coding2)
				d->tmpl[type] = (uint32_t)idx;
		}
		struct evlog_sockstate *st = &socks[idx];
		last = idx;

		uint64_t dts = get_uv(&cts, &bad);
		prev_ts += coding2 ? dts : (uint64_t)unzigzag(dts);
		int dir = dir_of(type);
		/* Bytes first: coding 2's flags state depends on them. */
		int64_t bytes = (int64_t)((uint64_t)st->prev_bytes[dir] +
					  (uint64_t)unzigzag(get_uv(&cby, &bad)));
		int fslot = coding2 ? flags_slot(type, bytes) : 0;
		if (m & ~(uint64_t)(FM_OFFSET | FM_PAYLOAD)) {
			if (m & FM_SEQ)
				st->tcp_seq += (uint32_t)unzigzag(get_uv(&cfl, &bad));
			if (m & FM_FLAGS)
				st->flags[fslot] = (uint32_t)get_uv(&cfl, &bad);
			if (m & FM_PID)
				st->pid = (uint32_t)get_uv(&cfl, &bad);
			if (m & FM_TID)
				st->tid = (uint32_t)(st->pid + (uint64_t)
						     unzigzag(get_uv(&cfl, &bad)));
			if (m & FM_FD)
				st->fd = coding2 ? (int32_t)(uint32_t)((uint64_t)st->fd +
					(uint64_t)unzigzag(get_uv(&cfl, &bad)))
					: (int32_t)unzigzag(get_uv(&cfl, &bad));
			if (m & FM_ARG)
				st->arg = (uint32_t)get_uv(&cfl, &bad);
			if (m & FM_STACK)
				st->stack_id = (uint32_t)get_uv(&cfl, &bad);
			if (m & FM_NODE)
				st->node = (uint32_t)get_uv(&cfl, &bad);
			if (m & FM_FAMILY)
				st->family = get_byte(&cfl, &bad);
			if (m & FM_LADDR)
				get_addr(&cfl, st->laddr, &bad);
			if (m & FM_LPORT)
				st->lport = port_value(&cfl, st->lport, coding2, &bad);
			if (m & FM_RADDR)
				get_addr(&cfl, st->raddr, &bad);
			if (m & FM_RPORT)
				st->rport = port_value(&cfl, st->rport, coding2, &bad);
		}
		uint64_t offset = dir < 2 ? st->next_off[dir] : 0;
		if (m & FM_OFFSET)
			offset += (uint64_t)unzigzag(get_uv(&cof, &bad));
		ev->payload = NULL;
		ev->payload_len = 0;
		if (m & FM_PAYLOAD) {
			uint64_t n = get_uv(&cpl, &bad);
			if (bad || n == 0 || n > TJ_PAYLOAD_MAX ||
			    (uint64_t)(cpl.end - cpl.p) < n) {
				bad = 1;
				break;
			}
			ev->payload = cpl.p;
			ev->payload_len = (uint16_t)n;
			cpl.p += n;
		}
		if (bad)
			break;
		st->prev_bytes[dir] = bytes;
		if (dir < 2)
			st->next_off[dir] = offset + (bytes > 0 ? (uint64_t)bytes : 0);

		ev->ts_ns = prev_ts;
		ev->type = (uint8_t)type;
		ev->bytes = bytes;
		ev->offset = offset;
		ev->sock = st->sock;
		ev->node = st->node;
		ev->pid = st->pid;
		ev->tid = st->tid;
		ev->fd = st->fd;
		ev->family = st->family;
		ev->lport = st->lport;
		ev->rport = st->rport;
		ev->flags = st->flags[fslot];
		ev->arg = st->arg;
		ev->stack_id = st->stack_id;
		ev->tcp_seq = st->tcp_seq;
		memcpy(ev->laddr, st->laddr, 16);
		memcpy(ev->raddr, st->raddr, 16);
	}
	d->col[COL_TS] = cts;
	d->col[COL_TYPE] = cty;
	d->col[COL_FIELDS] = cfl;
	d->col[COL_BYTES] = cby;
	d->col[COL_OFFSET] = cof;
	d->col[COL_PAYLOAD] = cpl;
	d->last = last;
	d->prev_ts = prev_ts;
	unsigned n = i - d->next;
	d->next = i;
	if (bad) {
		/* The events before the bad one are good; report the failure
		 * on the next call. */
		snprintf(d->why, sizeof(d->why), "malformed event %u of %u", i,
			 d->count);
		d->failed = 1;
		return n ? (int)n : -1;
	}
	return (int)n;
}

/* Events of the block not yet handed out (lost if the block is cut). */
uint32_t evlog_decoder_left(const struct evlog_decoder *d)
{
	return d->count - d->next;
}
