/* The evlog writer and reader: file header, self-checking blocks, footer,
 * and the reader's salvage of damaged logs.  The byte layout is in
 * lib/EVLOG.md; the events block body codec is lib/evlog_codec.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libdeflate.h>
#include "evlog.h"
#include "outfile.h"
#include "evlog_format.h"
#include "util.h"

#define DEFAULT_BLOCK_EVENTS 131072u
#define BLOCK_RAW_TARGET (4u << 20)   /* flush a block before its body passes this */
#define READ_BATCH 32                /* events decoded at a time */
#define COMPRESSION_LEVEL 1 /* libdeflate's fastest; level 6 saves only ~1-2% */
/* An events block whose raw body is at most this many bytes per event is
 * stored, not compressed: deflate and inflate cost about 330 and 150
 * instructions per event, more than the column codec itself, to save
 * 2-3 bytes per event that the 12-byte budget does not need.  Bodies
 * above it (payload prefixes, churning sockets) are compressed. */
#define STORE_MAX_BYTES_PER_EVENT 11u

static uint32_t crc32_of(const void *p, size_t n)
{
	return libdeflate_crc32(0, p, n);
}

/* ================= writing ================= */

struct index_entry {
	uint64_t offset, first_ts, last_ts;
	uint32_t count;
};

struct tj_evlog_writer {
	char *path;
	int fd;
	struct tj_outfile dest;       /* fd is dest.fd */
	int keep_on_error;            /* TJ_EVLOG_CAPTURE */
	struct evlog_encoder enc;
	struct libdeflate_compressor *cmp;
	uint8_t *raw, *out;
	size_t raw_cap, out_cap;
	uint32_t block_events;
	uint64_t off;                 /* bytes written so far */
	uint32_t seq;                 /* next block number */
	uint64_t blk_first, blk_last; /* time span of the open block */
	struct tj_evlog_footer foot;
	uint64_t drops_stored[TJ_DROP__COUNT]; /* as of the last STATS block */
	struct index_entry *index;
	size_t nindex, index_cap;
	int failed;                   /* a write failed: refuse more */
	struct tj_err fail;
};

static int write_all(struct tj_evlog_writer *w, const void *buf, size_t n,
		     struct tj_err *err)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : ENOSPC;
			w->failed = 1;
			tj_errf(&w->fail, TJ_E_IO, "%s: write failed at offset %llu: %s",
				w->path, (unsigned long long)w->off, strerror(e));
			if (err)
				*err = w->fail;
			return -TJ_E_IO;
		}
		p += k;
		n -= (size_t)k;
		w->off += (uint64_t)k;
	}
	return 0;
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	if (*cap >= need)
		return 0;
	uint8_t *q = realloc(*p, need);
	if (!q)
		return -1;
	*p = q;
	*cap = need;
	return 0;
}

static int write_block(struct tj_evlog_writer *w, unsigned type, unsigned flags,
		       const uint8_t *body, size_t body_len, size_t raw_len,
		       uint32_t count, struct tj_err *err)
{
	uint8_t h[EVLOG_BLOCK_HDR_LEN];
	put_le32(h, EVLOG_BLOCK_MAGIC);
	put_le16(h + 4, (uint16_t)type);
	put_le16(h + 6, (uint16_t)flags);
	put_le32(h + 8, w->seq);
	put_le32(h + 12, (uint32_t)body_len);
	put_le32(h + 16, (uint32_t)raw_len);
	put_le32(h + 20, count);
	put_le32(h + 24, crc32_of(body, body_len));
	put_le32(h + 28, crc32_of(h, 28));
	int rc = write_all(w, h, sizeof(h), err);
	if (rc == 0)
		rc = write_all(w, body, body_len, err);
	if (rc == 0)
		w->seq++;
	return rc;
}

static void put_header_string(uint8_t **p, const char *s, size_t max)
{
	size_t n = strnlen(s, max - 1);
	put_le16(*p, (uint16_t)n);
	memcpy(*p + 2, s, n);
	*p += 2 + n;
}

static int write_header(struct tj_evlog_writer *w,
			const struct tj_evlog_header *h, struct tj_err *err)
{
	uint8_t buf[EVLOG_PREAMBLE_LEN + EVLOG_HEADER_MIN + TJ_HOSTNAME_MAX +
		    TJ_KERNEL_MAX + TJ_OPTIONS_MAX + 4];
	uint8_t *p = buf + EVLOG_PREAMBLE_LEN;
	put_le32(p, h->node);
	put_le64(p + 4, h->clock_mono_ns);
	put_le64(p + 12, h->clock_real_ns);
	put_le32(p + 20, h->capture_flags);
	put_le32(p + 24, h->payload_max);
	p += 28;
	put_header_string(&p, h->hostname, TJ_HOSTNAME_MAX);
	put_header_string(&p, h->kernel, TJ_KERNEL_MAX);
	put_header_string(&p, h->options, TJ_OPTIONS_MAX);
	size_t hlen = (size_t)(p - buf) - EVLOG_PREAMBLE_LEN;
	memcpy(buf, EVLOG_MAGIC, EVLOG_MAGIC_LEN);
	put_le16(buf + 8, TJ_EVENT_VERSION_MAJOR);
	put_le16(buf + 10, TJ_EVENT_VERSION_MINOR);
	put_le32(buf + 12, (uint32_t)hlen);
	put_le32(p, crc32_of(buf, (size_t)(p - buf)));
	return write_all(w, buf, (size_t)(p - buf) + 4, err);
}

static void writer_free(struct tj_evlog_writer *w)
{
	evlog_encoder_free(&w->enc);
	libdeflate_free_compressor(w->cmp);
	free(w->raw);
	free(w->out);
	free(w->index);
	free(w->path);
	free(w);
}

int tj_evlog_create(struct tj_evlog_writer **wp, const char *path,
		    const struct tj_evlog_header *h, unsigned flags,
		    struct tj_err *err)
{
	*wp = NULL;
	if (!path || !h)
		return tj_errf(err, TJ_E_ARG, "tj_evlog_create: no path or header");
	if (flags & ~(TJ_EVLOG_FORCE | TJ_EVLOG_CAPTURE))
		return tj_errf(err, TJ_E_ARG, "%s: unknown evlog flags 0x%x",
			       path, flags);
	struct tj_evlog_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	w->path = strdup(strcmp(path, "-") == 0 ? "<stdout>" : path);
	w->cmp = libdeflate_alloc_compressor(COMPRESSION_LEVEL);
	w->block_events = DEFAULT_BLOCK_EVENTS;
	w->keep_on_error = (flags & TJ_EVLOG_CAPTURE) != 0;
	evlog_encoder_init(&w->enc);
	if (!w->path || !w->cmp) {
		writer_free(w);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	}
	unsigned of = (flags & TJ_EVLOG_FORCE ? TJ_OUT_FORCE : 0) |
		      (flags & TJ_EVLOG_CAPTURE ? TJ_OUT_LOCK : 0);
	int rc = tj_outfile_open(&w->dest, path, of, 0600, NULL, 0, err);
	if (rc < 0) {
		writer_free(w);
		return rc;
	}
	w->fd = w->dest.fd;
	rc = write_header(w, h, err);
	if (rc < 0) {
		tj_outfile_abort(&w->dest);
		writer_free(w);
		return rc;
	}
	*wp = w;
	return 0;
}

int tj_evlog_set_block_events(struct tj_evlog_writer *w, unsigned n)
{
	if (n == 0 || n > EVLOG_COUNT_MAX)
		return -TJ_E_ARG;
	w->block_events = n;
	return 0;
}

static int write_stats(struct tj_evlog_writer *w, struct tj_err *err)
{
	uint8_t body[4 + 8 * TJ_DROP__COUNT];
	put_le32(body, TJ_DROP__COUNT);
	for (int i = 0; i < TJ_DROP__COUNT; i++)
		put_le64(body + 4 + 8 * i, w->foot.drops[i]);
	int rc = write_block(w, EVLOG_BLOCK_STATS, 0, body, sizeof(body),
			     sizeof(body), 0, err);
	if (rc == 0)
		memcpy(w->drops_stored, w->foot.drops, sizeof(w->drops_stored));
	return rc;
}

int tj_evlog_flush(struct tj_evlog_writer *w, struct tj_err *err)
{
	if (w->failed) {
		if (err)
			*err = w->fail;
		return -w->fail.code;
	}
	struct evlog_encoder *e = &w->enc;
	if (e->count > 0) {
		size_t need = evlog_encoded_size(e);
		if (grow(&w->raw, &w->raw_cap, need) < 0)
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", w->path);
		size_t raw_len = evlog_encoder_finish(e, w->raw);
		const uint8_t *body = w->raw;
		size_t body_len = raw_len;
		unsigned bflags = 0;
		if (raw_len > (size_t)e->count * STORE_MAX_BYTES_PER_EVENT) {
			size_t bound = libdeflate_zlib_compress_bound(w->cmp, raw_len);
			if (grow(&w->out, &w->out_cap, bound) < 0)
				return tj_errf(err, TJ_E_NOMEM, "%s: out of memory",
					       w->path);
			body_len = libdeflate_zlib_compress(w->cmp, w->raw, raw_len,
							    w->out, w->out_cap);
			if (body_len == 0)
				return tj_errf(err, TJ_E_IO, "%s: compression failed",
					       w->path);
			body = w->out;
			bflags = EVLOG_BF_ZLIB;
		}
		if (w->nindex == w->index_cap) {
			size_t cap = w->index_cap ? w->index_cap * 2 : 64;
			struct index_entry *ix = realloc(w->index, cap * sizeof(*ix));
			if (!ix)
				return tj_errf(err, TJ_E_NOMEM, "%s: out of memory",
					       w->path);
			w->index = ix;
			w->index_cap = cap;
		}
		struct index_entry *ie = &w->index[w->nindex];
		ie->offset = w->off;
		ie->first_ts = w->blk_first;
		ie->last_ts = w->blk_last;
		ie->count = e->count;
		int rc = write_block(w, EVLOG_BLOCK_EVENTS2, bflags, body,
				     body_len, raw_len, e->count, err);
		if (rc < 0)
			return rc;
		w->nindex++;
		w->foot.blocks++;
		evlog_encoder_reset(e);
	}
	if (memcmp(w->drops_stored, w->foot.drops, sizeof(w->drops_stored)) != 0) {
		int rc = write_stats(w, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int tj_evlog_write_block(struct tj_evlog_writer *w, unsigned type, int zlib,
			 const void *body, size_t len, size_t raw_len,
			 struct tj_err *err)
{
	if (type <= EVLOG_BLOCK_STATS || type == EVLOG_BLOCK_EVENTS2 || type > 0xffff ||
	    len > UINT32_MAX || raw_len > UINT32_MAX)
		return tj_errf(err, TJ_E_ARG, "%s: block type %u refused", w->path, type);
	int rc = tj_evlog_flush(w, err);
	if (rc == 0)
		rc = write_block(w, type, zlib ? EVLOG_BF_ZLIB : 0, body, len,
				 zlib ? raw_len : len, 0, err);
	return rc;
}

int tj_evlog_write(struct tj_evlog_writer *w, const struct tj_event *ev,
		   struct tj_err *err)
{
	if (w->failed) {
		if (err)
			*err = w->fail;
		return -w->fail.code;
	}
	if (ev->payload_len > TJ_PAYLOAD_MAX || (ev->payload_len && !ev->payload))
		return tj_errf(err, TJ_E_ARG,
			       "%s: event at ts %llu: bad payload (%u bytes, max %d)",
			       w->path, (unsigned long long)ev->ts_ns,
			       ev->payload_len, TJ_PAYLOAD_MAX);
	struct evlog_encoder *e = &w->enc;
	if (e->count == 0) {
		w->blk_first = w->blk_last = ev->ts_ns;
	} else {
		if (ev->ts_ns < w->blk_first)
			w->blk_first = ev->ts_ns;
		if (ev->ts_ns > w->blk_last)
			w->blk_last = ev->ts_ns;
	}
	if (evlog_encode(e, ev) < 0)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", w->path);
	if (w->foot.events == 0) {
		w->foot.first_ts = w->foot.last_ts = ev->ts_ns;
	} else {
		if (ev->ts_ns < w->foot.first_ts)
			w->foot.first_ts = ev->ts_ns;
		if (ev->ts_ns > w->foot.last_ts)
			w->foot.last_ts = ev->ts_ns;
	}
	w->foot.events++;
	/* The size check is not free: every 64 events overshoots little. */
	if (e->count >= w->block_events ||
	    ((e->count & 63) == 0 && evlog_encoded_size(e) >= BLOCK_RAW_TARGET))
		return tj_evlog_flush(w, err);
	return 0;
}

void tj_evlog_add_drops(struct tj_evlog_writer *w, enum tj_drop_reason why,
			uint64_t n)
{
	if ((unsigned)why < TJ_DROP__COUNT)
		w->foot.drops[why] += n;
}

static int write_footer(struct tj_evlog_writer *w, struct tj_err *err)
{
	size_t nindex = w->nindex <= EVLOG_INDEX_MAX ? w->nindex : 0;
	size_t len = 32 + 4 + 8 * TJ_DROP__COUNT + 4 +
		     nindex * EVLOG_INDEX_ENTRY_LEN;
	uint8_t *b = malloc(len);
	if (!b)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", w->path);
	put_le64(b, w->foot.events);
	put_le64(b + 8, w->foot.blocks);
	put_le64(b + 16, w->foot.first_ts);
	put_le64(b + 24, w->foot.last_ts);
	uint8_t *p = b + 32;
	put_le32(p, TJ_DROP__COUNT);
	p += 4;
	for (int i = 0; i < TJ_DROP__COUNT; i++, p += 8)
		put_le64(p, w->foot.drops[i]);
	put_le32(p, (uint32_t)nindex);
	p += 4;
	for (size_t i = 0; i < nindex; i++, p += EVLOG_INDEX_ENTRY_LEN) {
		put_le64(p, w->index[i].offset);
		put_le64(p + 8, w->index[i].first_ts);
		put_le64(p + 16, w->index[i].last_ts);
		put_le32(p + 24, w->index[i].count);
	}
	int rc = write_block(w, EVLOG_BLOCK_FOOTER, 0, b, len, len, 0, err);
	free(b);
	return rc;
}

int tj_evlog_close(struct tj_evlog_writer *w, struct tj_err *err)
{
	if (!w)
		return 0;
	int rc = tj_evlog_flush(w, err);
	if (rc == 0)
		rc = write_footer(w, err);
	if (rc == 0)
		rc = tj_outfile_commit(&w->dest, err);
	else if (w->keep_on_error && w->off > 0)
		/* a capture's events exist nowhere else: keep them (the
		 * reader salvages every whole block) */
		(void)tj_outfile_commit(&w->dest, NULL);
	else
		tj_outfile_abort(&w->dest);
	writer_free(w);
	return rc;
}

void tj_evlog_abort(struct tj_evlog_writer *w)
{
	if (!w)
		return;
	tj_outfile_abort(&w->dest);
	writer_free(w);
}

/* ================= reading ================= */

struct tj_evlog_reader {
	char *path;
	FILE *f;
	int own_f;
	uint64_t pos;                 /* file offset of the next byte */
	struct tj_evlog_header hdr;
	struct tj_evlog_footer foot;
	int have_footer;
	uint64_t drops[TJ_DROP__COUNT]; /* latest STATS block or footer */
	int have_drops;
	struct tj_evlog_damage dmg;
	unsigned problems;            /* damaged places found */
	struct libdeflate_decompressor *dec;
	uint8_t *body, *raw;
	size_t body_cap, raw_cap;
	struct evlog_decoder d;
	struct tj_event batch[READ_BATCH]; /* decoded, not yet handed out */
	unsigned bi, bn;
	int in_block;                 /* decoding an events block */
	uint32_t blk_seq;
	uint64_t blk_off;
	uint32_t next_seq;
	uint64_t delivered;           /* events handed out */
	uint64_t blocks_read;         /* events blocks read whole */
	int ended;
};

static void damage(struct tj_evlog_reader *r, uint64_t off, uint64_t lost,
		   int exact, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void damage(struct tj_evlog_reader *r, uint64_t off, uint64_t lost,
		   int exact, const char *fmt, ...)
{
	struct tj_evlog_damage *d = &r->dmg;
	if (!d->damaged) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->what, sizeof(d->what), fmt, ap);
		va_end(ap);
		d->damaged = 1;
		d->offset = off;
	}
	r->problems++;
	d->events_lost += lost;
	if (!exact)
		d->lost_known = 0;
}

static size_t read_in(struct tj_evlog_reader *r, void *buf, size_t n)
{
	size_t got = fread(buf, 1, n, r->f);
	r->pos += got;
	return got;
}

/* The end: make the damage record final. */
static int finish(struct tj_evlog_reader *r, struct tj_err *err)
{
	r->ended = 1;
	if (ferror(r->f))
		return tj_errf(err, TJ_E_IO, "%s: read error at offset %llu: %s",
			       r->path, (unsigned long long)r->pos,
			       strerror(errno ? errno : EIO));
	if (r->problems > 1) {
		size_t n = strlen(r->dmg.what);
		snprintf(r->dmg.what + n, sizeof(r->dmg.what) - n,
			 " (and %u more damaged places)", r->problems - 1);
	}
	return 0;
}

static int header_ok(const uint8_t *h)
{
	return get_le32(h) == EVLOG_BLOCK_MAGIC &&
	       crc32_of(h, 28) == get_le32(h + 28) &&
	       get_le32(h + 12) <= EVLOG_BODY_MAX &&
	       get_le32(h + 16) <= EVLOG_RAW_MAX &&
	       get_le32(h + 20) <= EVLOG_COUNT_MAX;
}

/* After a bad block header at pos - 32: slide forward a byte at a time
 * until a valid block header is in h.  Returns 1 found, 0 at EOF. */
static int resync(struct tj_evlog_reader *r, uint8_t h[EVLOG_BLOCK_HDR_LEN])
{
	for (;;) {
		int c = getc(r->f);
		if (c == EOF)
			return 0;
		r->pos++;
		memmove(h, h + 1, EVLOG_BLOCK_HDR_LEN - 1);
		h[EVLOG_BLOCK_HDR_LEN - 1] = (uint8_t)c;
		if (h[0] == 'T' && header_ok(h))
			return 1;
	}
}

static int parse_footer(struct tj_evlog_reader *r, const uint8_t *b, size_t n)
{
	if (n < 36)
		return -1;
	struct tj_evlog_footer *f = &r->foot;
	memset(f, 0, sizeof(*f));
	f->events = get_le64(b);
	f->blocks = get_le64(b + 8);
	f->first_ts = get_le64(b + 16);
	f->last_ts = get_le64(b + 24);
	uint32_t ndrops = get_le32(b + 32);
	if (ndrops > 1024 || n - 36 < (size_t)ndrops * 8 + 4)
		return -1;
	for (uint32_t i = 0; i < ndrops; i++)
		if (i < TJ_DROP__COUNT)
			f->drops[i] = get_le64(b + 36 + 8 * i);
	uint32_t nindex = get_le32(b + 36 + 8 * ndrops);
	if ((n - 40 - 8 * (size_t)ndrops) / EVLOG_INDEX_ENTRY_LEN < nindex)
		return -1;
	return 0;
}

/* One block as read_block hands it over. */
struct block {
	unsigned type;       /* EVLOG_BLOCK_* */
	uint32_t seq, count; /* its sequence number, the events it says it holds */
	uint64_t off;        /* file offset of its header */
	const uint8_t *raw;  /* its body, inflated, EVLOG_SLACK zero bytes after */
	uint32_t raw_len;
};

enum { BLOCK_READ, BLOCK_SKIPPED, BLOCK_END };

/* The next block: its header (resynchronising past garbage), its body,
 * CRC and inflation.  BLOCK_READ with *b filled; BLOCK_SKIPPED: a damaged
 * block was counted and passed over; BLOCK_END: the file ends here, or
 * cannot be read further (the damage is recorded; the caller finishes);
 * negative: out of memory, err filled. */
static int read_block(struct tj_evlog_reader *r, struct block *b, struct tj_err *err)
{
	uint8_t h[EVLOG_BLOCK_HDR_LEN];
	uint64_t off = r->pos;
	size_t got = read_in(r, h, sizeof(h));
	if (got == 0) {
		if (!ferror(r->f) && !r->have_footer)
			damage(r, off, 0, 0,
			       "cut short at offset %llu: no footer "
			       "(events after it, if any, are lost)",
			       (unsigned long long)off);
		return BLOCK_END;
	}
	if (got < sizeof(h)) {
		if (ferror(r->f))
			return BLOCK_END;
		damage(r, off, 0, 0,
		       "cut short at offset %llu, inside a block header",
		       (unsigned long long)off);
		return BLOCK_END;
	}
	if (!header_ok(h)) {
		uint64_t bad = off;
		if (!resync(r, h)) {
			damage(r, bad, 0, 0,
			       "offset %llu: garbage to the end (%llu bytes), "
			       "no block header found",
			       (unsigned long long)bad,
			       (unsigned long long)(r->pos - bad));
			return BLOCK_END;
		}
		off = r->pos - EVLOG_BLOCK_HDR_LEN;
		damage(r, bad, 0, 0,
		       "offset %llu: %llu bytes damaged, resynchronised at "
		       "offset %llu", (unsigned long long)bad,
		       (unsigned long long)(off - bad),
		       (unsigned long long)off);
	}
	unsigned type = get_le16(h + 4), flags = get_le16(h + 6);
	uint32_t seq = get_le32(h + 8), body_len = get_le32(h + 12);
	uint32_t raw_len = get_le32(h + 16), count = get_le32(h + 20);
	if (seq > r->next_seq)
		r->dmg.blocks_skipped += seq - r->next_seq;
	r->next_seq = seq + 1;

	if (grow(&r->body, &r->body_cap, (size_t)body_len + EVLOG_SLACK) < 0)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", r->path);
	got = read_in(r, r->body, body_len);
	if (got < body_len) {
		if (ferror(r->f))
			return BLOCK_END;
		damage(r, off, count, 0,
		       "cut short at offset %llu, inside block %u",
		       (unsigned long long)r->pos, seq);
		r->dmg.blocks_skipped++;
		return BLOCK_END;
	}
	memset(r->body + body_len, 0, EVLOG_SLACK);
	if (crc32_of(r->body, body_len) != get_le32(h + 24)) {
		damage(r, off, count, 1,
		       "block %u at offset %llu: bad CRC",
		       seq, (unsigned long long)off);
		r->dmg.blocks_skipped++;
		return BLOCK_SKIPPED;
	}
	const uint8_t *raw = r->body;
	if (flags & EVLOG_BF_ZLIB) {
		if (grow(&r->raw, &r->raw_cap, (size_t)raw_len + EVLOG_SLACK) < 0)
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory",
				       r->path);
		size_t out = 0;
		if (libdeflate_zlib_decompress(r->dec, r->body, body_len,
					       r->raw, raw_len, &out) !=
			    LIBDEFLATE_SUCCESS ||
		    out != raw_len) {
			damage(r, off, count, 1,
			       "block %u at offset %llu: body does not inflate",
			       seq, (unsigned long long)off);
			r->dmg.blocks_skipped++;
			return BLOCK_SKIPPED;
		}
		memset(r->raw + raw_len, 0, EVLOG_SLACK);
		raw = r->raw;
	} else if (raw_len != body_len) {
		damage(r, off, count, 1,
		       "block %u at offset %llu: stored body of %u bytes "
		       "claims %u", seq, (unsigned long long)off, body_len,
		       raw_len);
		r->dmg.blocks_skipped++;
		return BLOCK_SKIPPED;
	}
	*b = (struct block){ .type = type, .seq = seq, .count = count, .off = off,
			     .raw = raw, .raw_len = raw_len };
	return BLOCK_READ;
}

/* A stats block: the drop counters so far. */
static void take_stats(struct tj_evlog_reader *r, const struct block *b)
{
	if (b->raw_len < 4)
		return;
	uint32_t n = get_le32(b->raw);
	for (uint32_t i = 0; i < n && i < TJ_DROP__COUNT &&
			     4 + 8 * (size_t)(i + 1) <= b->raw_len;
	     i++)
		r->drops[i] = get_le64(b->raw + 4 + 8 * i);
	r->have_drops = 1;
}

/* The footer: the drop totals, and the event total that makes the loss
 * count exact.  Nothing may follow it.  Ends the log. */
static int take_footer(struct tj_evlog_reader *r, const struct block *b,
		       struct tj_err *err)
{
	uint64_t off = b->off;

	if (parse_footer(r, b->raw, b->raw_len) < 0) {
		damage(r, off, 0, 0, "footer at offset %llu: malformed",
		       (unsigned long long)off);
		return finish(r, err);
	}
	r->have_footer = 1;
	memcpy(r->drops, r->foot.drops, sizeof(r->drops));
	r->have_drops = 1;
	if (r->foot.events < r->delivered) {
		damage(r, off, 0, 0,
		       "footer at offset %llu counts %llu events, "
		       "blocks hold %llu",
		       (unsigned long long)off,
		       (unsigned long long)r->foot.events,
		       (unsigned long long)r->delivered);
	} else {
		uint64_t lost = r->foot.events - r->delivered;
		if (r->dmg.damaged) {
			r->dmg.events_lost = lost;
			r->dmg.lost_known = 1;
		} else if (lost) {
			damage(r, off, lost, 1,
			       "footer at offset %llu counts %llu "
			       "events, blocks hold %llu",
			       (unsigned long long)off,
			       (unsigned long long)r->foot.events,
			       (unsigned long long)r->delivered);
		}
	}
	/* `cat a.evlog b.evlog`: b's events are not read, and how many they
	 * are is not known here; say so instead of "0 events lost" */
	char tail[EVLOG_MAGIC_LEN];
	size_t nt = fread(tail, 1, sizeof(tail), r->f);
	if (nt == sizeof(tail) && memcmp(tail, EVLOG_MAGIC, EVLOG_MAGIC_LEN) == 0)
		damage(r, r->pos, 0, 0,
		       "another log follows the footer at offset %llu (logs "
		       "concatenated?): its events are not read",
		       (unsigned long long)r->pos);
	else if (nt > 0)
		damage(r, r->pos, 0, 0,
		       "data after the footer at offset %llu: not read",
		       (unsigned long long)r->pos);
	return finish(r, err);
}

/* Everything but handing out an already decoded event: the rest of the
 * current batch, the next batch of the current block, or the next block. */
static int __attribute__((noinline)) next_slow(struct tj_evlog_reader *r,
					      const struct tj_event **ev,
					      struct tj_err *err)
{
	for (;;) {
		if (r->bi < r->bn) {
			*ev = &r->batch[r->bi++];
			r->delivered++;
			return 1;
		}
		if (r->in_block) {
			int rc = evlog_decode_batch(&r->d, r->batch, READ_BATCH);
			if (rc > 0) {
				r->bi = 0;
				r->bn = (unsigned)rc;
				continue;
			}
			r->in_block = 0;
			if (rc < 0) {
				damage(r, r->blk_off, evlog_decoder_left(&r->d), 1,
				       "block %u at offset %llu: %s", r->blk_seq,
				       (unsigned long long)r->blk_off, r->d.why);
				r->dmg.blocks_skipped++;
			} else {
				r->blocks_read++;
			}
		}
		if (r->ended)
			return 0;

		struct block b = { 0 };
		int rc = read_block(r, &b, err);
		if (rc < 0)
			return rc;
		if (rc == BLOCK_END)
			return finish(r, err);
		if (rc == BLOCK_SKIPPED)
			continue;
		if (b.type == EVLOG_BLOCK_EVENTS || b.type == EVLOG_BLOCK_EVENTS2) {
			if (evlog_decoder_start(&r->d, b.raw, b.raw_len, b.count,
						b.type == EVLOG_BLOCK_EVENTS ? 1 : 2) < 0) {
				damage(r, b.off, b.count, 1,
				       "block %u at offset %llu: %s",
				       b.seq, (unsigned long long)b.off, r->d.why);
				r->dmg.blocks_skipped++;
				continue;
			}
			r->in_block = 1;
			r->blk_seq = b.seq;
			r->blk_off = b.off;
		} else if (b.type == EVLOG_BLOCK_STATS) {
			take_stats(r, &b);
		} else if (b.type == EVLOG_BLOCK_FOOTER) {
			return take_footer(r, &b, err);
		}
		/* Any other block type comes from a newer minor version. */
	}
}

int tj_evlog_next(struct tj_evlog_reader *r, const struct tj_event **ev,
		  struct tj_err *err)
{
	if (__builtin_expect(r->bi < r->bn, 1)) {
		*ev = &r->batch[r->bi++];
		r->delivered++;
		return 1;
	}
	return next_slow(r, ev, err);
}

static int read_header(struct tj_evlog_reader *r, struct tj_err *err)
{
	uint8_t pre[EVLOG_PREAMBLE_LEN];
	size_t got = read_in(r, pre, sizeof(pre));
	if (ferror(r->f))
		return tj_errf(err, TJ_E_IO, "%s: cannot read: %s", r->path,
			       strerror(errno));
	if (got == 0)
		return tj_errf(err, TJ_E_FORMAT, "%s: empty file, not an evlog",
			       r->path);
	if (memcmp(pre, EVLOG_MAGIC, got < EVLOG_MAGIC_LEN ? got : EVLOG_MAGIC_LEN))
		return tj_errf(err, TJ_E_FORMAT, "%s: not an evlog (bad magic)",
			       r->path);
	if (got < sizeof(pre))
		return tj_errf(err, TJ_E_DAMAGED,
			       "%s: cut short at offset %zu, inside the file header",
			       r->path, got);
	unsigned major = get_le16(pre + 8), minor = get_le16(pre + 10);
	if (major > TJ_EVENT_VERSION_MAJOR)
		return tj_errf(err, TJ_E_VERSION,
			       "%s: evlog format version %u.%u is newer than this "
			       "tracejoin (%d.x)", r->path, major, minor,
			       TJ_EVENT_VERSION_MAJOR);
	if (major < 1)
		return tj_errf(err, TJ_E_VERSION,
			       "%s: evlog format version %u.%u is unknown",
			       r->path, major, minor);
	r->hdr.version_major = (uint16_t)major;
	r->hdr.version_minor = (uint16_t)minor;
	uint32_t hlen = get_le32(pre + 12);
	if (hlen < EVLOG_HEADER_MIN || hlen > EVLOG_HEADER_MAX) {
		/* Nothing to trust in the header; the blocks may be fine. */
		damage(r, 12, 0, 0, "file header: bad length %u", hlen);
		r->dmg.header_untrusted = 1;
		return 0;
	}
	uint8_t *b = malloc(EVLOG_PREAMBLE_LEN + hlen + 4);
	if (!b)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", r->path);
	memcpy(b, pre, sizeof(pre));
	got = read_in(r, b + EVLOG_PREAMBLE_LEN, hlen + 4);
	if (got < hlen + 4) {
		free(b);
		if (ferror(r->f))
			return tj_errf(err, TJ_E_IO, "%s: cannot read: %s",
				       r->path, strerror(errno));
		return tj_errf(err, TJ_E_DAMAGED,
			       "%s: cut short at offset %llu, inside the file header",
			       r->path, (unsigned long long)r->pos);
	}
	int crc_ok = crc32_of(b, EVLOG_PREAMBLE_LEN + hlen) ==
		     get_le32(b + EVLOG_PREAMBLE_LEN + hlen);
	const uint8_t *p = b + EVLOG_PREAMBLE_LEN, *end = p + hlen;
	struct tj_evlog_header *h = &r->hdr;
	h->node = get_le32(p);
	h->clock_mono_ns = get_le64(p + 4);
	h->clock_real_ns = get_le64(p + 12);
	h->capture_flags = get_le32(p + 20);
	h->payload_max = get_le32(p + 24);
	p += 28;
	char *strs[3] = { h->hostname, h->kernel, h->options };
	size_t maxs[3] = { TJ_HOSTNAME_MAX, TJ_KERNEL_MAX, TJ_OPTIONS_MAX };
	int strings_ok = 1;
	for (int i = 0; i < 3; i++) {
		if (end - p < 2) {
			strings_ok = 0;
			break;
		}
		size_t n = get_le16(p);
		p += 2;
		if ((size_t)(end - p) < n) {
			strings_ok = 0;
			break;
		}
		/* A newer writer may allow longer text: keep what fits. */
		size_t k = n < maxs[i] - 1 ? n : maxs[i] - 1;
		memcpy(strs[i], p, k);
		strs[i][k] = '\0';
		p += n;
	}
	free(b);
	if (!crc_ok || !strings_ok) {
		memset(h->hostname, 0, sizeof(h->hostname));
		memset(h->kernel, 0, sizeof(h->kernel));
		memset(h->options, 0, sizeof(h->options));
		damage(r, 0, 0, 1, "file header: %s (its fields are not trusted)",
		       crc_ok ? "malformed" : "bad CRC");
		r->dmg.header_untrusted = 1;
	}
	return 0;
}

int tj_evlog_open_file(struct tj_evlog_reader **rp, FILE *f, const char *name,
		       struct tj_err *err)
{
	*rp = NULL;
	struct tj_evlog_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
	r->path = strdup(name);
	r->dec = libdeflate_alloc_decompressor();
	r->f = f;
	r->dmg.lost_known = 1;
	evlog_decoder_init(&r->d);
	if (!r->path || !r->dec) {
		tj_evlog_close_reader(r);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
	}
	int rc = read_header(r, err);
	if (rc < 0) {
		tj_evlog_close_reader(r);
		return rc;
	}
	*rp = r;
	return 0;
}

int tj_evlog_open(struct tj_evlog_reader **rp, const char *path,
		  struct tj_err *err)
{
	*rp = NULL;
	if (strcmp(path, "-") == 0)
		return tj_evlog_open_file(rp, stdin, "<stdin>", err);
	FILE *f = fopen(path, "rbe");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: cannot open: %s", path,
			       strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return tj_errf(err, TJ_E_IO, "%s: is a directory, not an evlog",
			       path);
	}
	int rc = tj_evlog_open_file(rp, f, path, err);
	if (rc < 0) {
		fclose(f);
		return rc;
	}
	(*rp)->own_f = 1;
	return 0;
}

const char *const tj_drop_names[TJ_DROP__COUNT] = {
	[TJ_DROP_RINGBUF] = "ringbuf", [TJ_DROP_MAP] = "map",
	[TJ_DROP_FILTER] = "filter", [TJ_DROP_OTHER] = "other",
};

const struct tj_evlog_header *tj_evlog_header(const struct tj_evlog_reader *r)
{
	return &r->hdr;
}

const struct tj_evlog_footer *tj_evlog_footer(const struct tj_evlog_reader *r)
{
	return r->have_footer ? &r->foot : NULL;
}

const struct tj_evlog_damage *tj_evlog_damage(const struct tj_evlog_reader *r)
{
	return &r->dmg;
}

const char *tj_evlog_path(const struct tj_evlog_reader *r)
{
	return r->path;
}

int tj_evlog_drops(const struct tj_evlog_reader *r,
		   uint64_t drops[TJ_DROP__COUNT])
{
	memcpy(drops, r->drops, sizeof(r->drops));
	return r->have_drops;
}

uint64_t tj_evlog_blocks_read(const struct tj_evlog_reader *r)
{
	return r->blocks_read;
}

uint64_t tj_evlog_bytes_read(const struct tj_evlog_reader *r)
{
	return r->pos;
}

void tj_evlog_close_reader(struct tj_evlog_reader *r)
{
	if (!r)
		return;
	if (r->own_f)
		fclose(r->f);
	libdeflate_free_decompressor(r->dec);
	evlog_decoder_free(&r->d);
	free(r->body);
	free(r->raw);
	free(r->path);
	free(r);
}

void tj_evlog_report_damage(const char *cmd, const struct tj_evlog_reader *r)
{
	const struct tj_evlog_damage *d = &r->dmg;
	char what[4 * sizeof(d->what)], path[4 * 256], lost[64];
	tj_escape(what, sizeof(what), d->what);
	tj_escape(path, sizeof(path), r->path);
	fprintf(stderr, "tracejoin %s: %s: damaged from offset %llu: %s%s\n", cmd,
		path, (unsigned long long)d->offset, what, tj_evlog_damage_lost(d, lost));
}

char *tj_evlog_damage_lost(const struct tj_evlog_damage *d, char *buf)
{
	if (d->lost_known)
		snprintf(buf, 64, "; %llu events lost", (unsigned long long)d->events_lost);
	else if (d->events_lost)
		snprintf(buf, 64, "; at least %llu events lost",
			 (unsigned long long)d->events_lost);
	else
		snprintf(buf, 64, "; an unknown number of events lost");
	return buf;
}
