/* The stacks block of an evlog (type 4): the call stacks and memory maps
 * of `capture --stack`, in memory (struct tj_stacks) and on disk.  The
 * body layout is in lib/EVLOG.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include "stacks.h"
#include "evlog_format.h"

#define STACKS_BLOCK_TYPE 4u
#define STACKS_FORMAT 1u
#define PATH_MAX_STORED 4096

void tj_stacks_init(struct tj_stacks *s)
{
	memset(s, 0, sizeof(*s));
	tj_u64map_init(&s->line_ix);
	tj_u64map_init(&s->path_ix);
}

static uint64_t str_hash(const char *p)
{
	uint64_t h = 14695981039346656037ull;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

static uint64_t line_hash(const struct tj_map *m)
{
	return tj_hash64(m->pid ^ tj_hash64(m->start ^ tj_hash64(m->end ^
			 tj_hash64(m->offset ^ str_hash(m->path)))));
}

const struct tj_map *tj_stacks_map_of_path(const struct tj_stacks *s, const char *path)
{
	const uint64_t *v = tj_u64map_get(&s->path_ix, str_hash(path));
	if (v && *v <= s->nmaps && strcmp(s->maps[*v - 1].path, path) == 0)
		return &s->maps[*v - 1];
	return NULL;
}

void tj_stacks_free(struct tj_stacks *s)
{
	for (size_t i = 0; i < s->nmaps; i++)
		free(s->maps[i].path);
	for (size_t i = 0; i < s->nstacks; i++) {
		struct tj_stack *k = &s->stacks[i];
		if (k->ksyms)
			for (unsigned j = 0; j < k->nkernel; j++)
				free(k->ksyms[j]);
		free(k->ksyms);
		free(k->ips);
	}
	free(s->maps);
	free(s->stacks);
	tj_u64map_free(&s->line_ix);
	tj_u64map_free(&s->path_ix);
	tj_stacks_init(s);
}

static int same_map(const struct tj_map *a, const struct tj_map *b)
{
	return a->pid == b->pid && a->start == b->start && a->end == b->end &&
	       a->offset == b->offset && strcmp(a->path, b->path) == 0;
}

int tj_stacks_add_map(struct tj_stacks *s, const struct tj_map *m)
{
	/* Re-reads of a process's maps find mostly the same lines. */
	uint64_t lh = line_hash(m);
	const uint64_t *v = tj_u64map_get(&s->line_ix, lh);
	if (v && *v <= s->nmaps && same_map(&s->maps[*v - 1], m))
		return 0;
	if (s->nmaps == s->capmaps) {
		size_t cap = s->capmaps ? 2 * s->capmaps : 64;
		struct tj_map *n = realloc(s->maps, cap * sizeof(*n));
		if (!n)
			return -TJ_E_NOMEM;
		s->maps = n;
		s->capmaps = cap;
	}
	struct tj_map *d = &s->maps[s->nmaps];
	*d = *m;
	d->path = strdup(m->path);
	if (!d->path)
		return -TJ_E_NOMEM;
	s->nmaps++;
	/* (A hash shared by two lines only costs a duplicate, dropped by
	 * sort.) */
	if (tj_u64map_put(&s->line_ix, lh, s->nmaps) < 0 ||
	    tj_u64map_put(&s->path_ix, str_hash(d->path), s->nmaps) < 0)
		return -TJ_E_NOMEM;
	return 0;
}

int tj_stacks_add(struct tj_stacks *s, uint32_t id, const uint64_t *user,
		  unsigned nuser, const uint64_t *kernel, const char *const *ksyms,
		  unsigned nkernel)
{
	if (nuser + nkernel > TJ_STACK_FRAMES_MAX)
		return -TJ_E_LIMIT;
	if (s->nstacks == s->capstacks) {
		size_t cap = s->capstacks ? 2 * s->capstacks : 64;
		struct tj_stack *n = realloc(s->stacks, cap * sizeof(*n));
		if (!n)
			return -TJ_E_NOMEM;
		s->stacks = n;
		s->capstacks = cap;
	}
	struct tj_stack *k = &s->stacks[s->nstacks];
	memset(k, 0, sizeof(*k));
	k->id = id;
	k->ips = malloc((nuser + nkernel + 1) * sizeof(*k->ips));
	if (!k->ips)
		return -TJ_E_NOMEM;
	if (nuser)
		memcpy(k->ips, user, nuser * sizeof(*user));
	if (nkernel)
		memcpy(k->ips + nuser, kernel, nkernel * sizeof(*kernel));
	k->nuser = nuser;
	if (ksyms && nkernel) {
		k->ksyms = calloc(nkernel, sizeof(*k->ksyms));
		if (!k->ksyms) {
			free(k->ips);
			return -TJ_E_NOMEM;
		}
		for (unsigned j = 0; j < nkernel; j++)
			if (!(k->ksyms[j] = strdup(ksyms[j] ? ksyms[j] : ""))) {
				k->nkernel = j;
				s->nstacks++;
				return -TJ_E_NOMEM;
			}
	}
	k->nkernel = nkernel;
	s->nstacks++;
	return 0;
}

static int map_cmp(const void *a, const void *b)
{
	const struct tj_map *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return strcmp(x->path, y->path);
}

static int stack_cmp(const void *a, const void *b)
{
	const struct tj_stack *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

void tj_stacks_sort(struct tj_stacks *s)
{
	size_t j = 0;

	if (s->nmaps)
		qsort(s->maps, s->nmaps, sizeof(*s->maps), map_cmp);
	for (size_t i = 0; i < s->nmaps; i++) {
		if (j && same_map(&s->maps[j - 1], &s->maps[i])) {
			free(s->maps[i].path);
			continue;
		}
		s->maps[j++] = s->maps[i];
	}
	s->nmaps = j;
	/* Indexes point at old places now. */
	tj_u64map_free(&s->line_ix);
	tj_u64map_free(&s->path_ix);
	tj_u64map_init(&s->line_ix);
	tj_u64map_init(&s->path_ix);
	if (s->nstacks)
		qsort(s->stacks, s->nstacks, sizeof(*s->stacks), stack_cmp);
}

const struct tj_stack *tj_stacks_find(const struct tj_stacks *s, uint32_t id)
{
	size_t lo = 0, hi = s->nstacks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->stacks[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nstacks && s->stacks[lo].id == id ? &s->stacks[lo] : NULL;
}

const struct tj_map *tj_stacks_map_of(const struct tj_stacks *s, uint32_t pid,
				      uint64_t addr)
{
	const struct tj_map *best = NULL;
	size_t lo = 0, hi = s->nmaps;

	/* First mapping of pid, then those starting at or below addr; a
	 * later re-read may have left an older overlapping line: the last
	 * one that holds addr wins. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->maps[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < s->nmaps && s->maps[i].pid == pid &&
			    s->maps[i].start <= addr; i++)
		if (addr < s->maps[i].end)
			best = &s->maps[i];
	return best;
}

/* ---- on disk ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
	int oom;
};

static uint8_t *room(struct buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	uint8_t *at = b->p + b->len;
	b->len += n;
	return at;
}

static void put32(struct buf *b, uint32_t v)
{
	uint8_t *p = room(b, 4);
	if (p)
		put_le32(p, v);
}

static void put64(struct buf *b, uint64_t v)
{
	uint8_t *p = room(b, 8);
	if (p)
		put_le64(p, v);
}

static void put_bytes(struct buf *b, const void *src, size_t n)
{
	uint8_t *p = room(b, n);
	if (p && n)
		memcpy(p, src, n);
}

static void put_str(struct buf *b, const char *str)
{
	size_t n = strlen(str);
	if (n > PATH_MAX_STORED)
		n = PATH_MAX_STORED;
	uint8_t *p = room(b, 2);
	if (p)
		put_le16(p, (uint16_t)n);
	put_bytes(b, str, n);
}

int tj_stacks_write(struct tj_evlog_writer *w, const struct tj_stacks *s,
		    struct tj_err *err)
{
	struct buf b = { 0 };
	int rc;

	put32(&b, STACKS_FORMAT);
	put32(&b, (uint32_t)s->nmaps);
	for (size_t i = 0; i < s->nmaps; i++) {
		const struct tj_map *m = &s->maps[i];
		put32(&b, m->pid);
		put64(&b, m->start);
		put64(&b, m->end);
		put64(&b, m->offset);
		uint8_t *p = room(&b, 1);
		if (p)
			*p = m->build_id_len;
		put_bytes(&b, m->build_id, m->build_id_len);
		put_str(&b, m->path);
	}
	put32(&b, (uint32_t)s->nstacks);
	for (size_t i = 0; i < s->nstacks; i++) {
		const struct tj_stack *k = &s->stacks[i];
		put32(&b, k->id);
		uint8_t *p = room(&b, 4);
		if (p) {
			put_le16(p, k->nuser);
			put_le16(p + 2, k->nkernel);
		}
		for (unsigned j = 0; j < k->nuser; j++)
			put64(&b, k->ips[j]);
		for (unsigned j = 0; j < k->nkernel; j++) {
			put64(&b, k->ips[k->nuser + j]);
			put_str(&b, k->ksyms ? k->ksyms[j] : "");
		}
	}
	if (b.oom) {
		free(b.p);
		return tj_errf(err, TJ_E_NOMEM, "stacks block: out of memory");
	}
	if (b.len > EVLOG_RAW_MAX) {
		free(b.p);
		return tj_errf(err, TJ_E_LIMIT, "stacks block: %zu bytes, more than the "
			       "%u a block may hold", b.len, EVLOG_RAW_MAX);
	}
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
	size_t bound = c ? libdeflate_zlib_compress_bound(c, b.len) : 0;
	uint8_t *z = c ? malloc(bound) : NULL;
	size_t zlen = z ? libdeflate_zlib_compress(c, b.p, b.len, z, bound) : 0;
	if (zlen > 0 && zlen < b.len)
		rc = tj_evlog_write_block(w, STACKS_BLOCK_TYPE, 1, z, zlen, b.len, err);
	else
		rc = tj_evlog_write_block(w, STACKS_BLOCK_TYPE, 0, b.p, b.len, b.len, err);
	libdeflate_free_compressor(c);
	free(z);
	free(b.p);
	return rc;
}

struct rd {
	const uint8_t *p, *end;
	int bad;
};

static int need(struct rd *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return 0;
	}
	return 1;
}

static uint32_t get32(struct rd *r)
{
	if (!need(r, 4))
		return 0;
	uint32_t v = get_le32(r->p);
	r->p += 4;
	return v;
}

static uint64_t get64(struct rd *r)
{
	if (!need(r, 8))
		return 0;
	uint64_t v = get_le64(r->p);
	r->p += 8;
	return v;
}

/* A NUL-terminated copy of a stored string, or NULL (bad or no memory). */
static char *get_str(struct rd *r)
{
	if (!need(r, 2))
		return NULL;
	size_t n = get_le16(r->p);
	r->p += 2;
	if (n > PATH_MAX_STORED || !need(r, n)) {
		r->bad = 1;
		return NULL;
	}
	char *s = strndup((const char *)r->p, n);
	r->p += n;
	if (!s)
		r->bad = 1;
	return s;
}

int tj_stacks_decode(const char *path, const uint8_t *body, size_t len,
		     struct tj_stacks *s, struct tj_err *err)
{
	struct rd r = { body, body + len, 0 };
	uint64_t user[TJ_STACK_FRAMES_MAX], kern[TJ_STACK_FRAMES_MAX];
	char *ksyms[TJ_STACK_FRAMES_MAX];
	uint32_t version = get32(&r);

	if (!r.bad && version != STACKS_FORMAT)
		return tj_errf(err, TJ_E_VERSION, "%s: stacks block format %u is not "
			       "known to this tracejoin (1)", path, version);
	uint32_t nmaps = get32(&r);
	for (uint32_t i = 0; i < nmaps && !r.bad; i++) {
		struct tj_map m = { 0 };
		m.pid = get32(&r);
		m.start = get64(&r);
		m.end = get64(&r);
		m.offset = get64(&r);
		if (!need(&r, 1))
			break;
		m.build_id_len = *r.p++;
		if (m.build_id_len > TJ_BUILD_ID_MAX || !need(&r, m.build_id_len)) {
			r.bad = 1;
			break;
		}
		memcpy(m.build_id, r.p, m.build_id_len);
		r.p += m.build_id_len;
		m.path = get_str(&r);
		if (!m.path)
			break;
		if (m.end < m.start)
			r.bad = 1;
		else if (tj_stacks_add_map(s, &m) < 0)
			r.bad = 1;
		free(m.path);
	}
	uint32_t nstacks = get32(&r);
	for (uint32_t i = 0; i < nstacks && !r.bad; i++) {
		uint32_t id = get32(&r);
		if (!need(&r, 4))
			break;
		unsigned nu = get_le16(r.p), nk = get_le16(r.p + 2);
		r.p += 4;
		if (id == 0 || nu + nk > TJ_STACK_FRAMES_MAX) {
			r.bad = 1;
			break;
		}
		for (unsigned j = 0; j < nu; j++)
			user[j] = get64(&r);
		unsigned got = 0;
		for (; got < nk && !r.bad; got++) {
			kern[got] = get64(&r);
			if (!(ksyms[got] = get_str(&r)))
				break;
		}
		if (!r.bad && tj_stacks_add(s, id, user, nu, kern,
					    (const char *const *)ksyms, nk) < 0)
			r.bad = 1;
		for (unsigned j = 0; j < got && j < nk; j++)
			free(ksyms[j]);
	}
	if (r.bad || r.p != r.end) {
		tj_stacks_free(s);
		return tj_errf(err, TJ_E_FORMAT, "%s: stacks block malformed at byte %zu",
			       path, (size_t)(r.p - body));
	}
	tj_stacks_sort(s);
	return 1;
}

int tj_stacks_read(const char *path, struct tj_stacks *s, struct tj_err *err)
{
	uint8_t pre[EVLOG_PREAMBLE_LEN], h[EVLOG_BLOCK_HDR_LEN];
	uint8_t *body = NULL, *raw = NULL;
	int rc = 0;
	FILE *f = fopen(path, "rb");

	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	if (fread(pre, 1, sizeof(pre), f) != sizeof(pre) ||
	    memcmp(pre, EVLOG_MAGIC, EVLOG_MAGIC_LEN) != 0) {
		fclose(f);
		return tj_errf(err, TJ_E_FORMAT, "%s: not an evlog", path);
	}
	if (fseeko(f, (off_t)get_le32(pre + 12) + 4, SEEK_CUR) != 0)
		goto done;
	/* Walk the block headers; the ordinary reader reports any damage,
	 * here a bad header just ends the search. */
	while (fread(h, 1, sizeof(h), f) == sizeof(h)) {
		if (get_le32(h) != EVLOG_BLOCK_MAGIC ||
		    libdeflate_crc32(0, h, 28) != get_le32(h + 28))
			break;
		unsigned type = get_le16(h + 4), flags = get_le16(h + 6);
		uint32_t len = get_le32(h + 12), raw_len = get_le32(h + 16);
		if (type == EVLOG_BLOCK_FOOTER)
			break;
		if (type != STACKS_BLOCK_TYPE) {
			if (fseeko(f, len, SEEK_CUR) != 0)
				break;
			continue;
		}
		if (len > EVLOG_BODY_MAX || raw_len > EVLOG_RAW_MAX) {
			rc = tj_errf(err, TJ_E_FORMAT, "%s: stacks block too large", path);
			break;
		}
		body = malloc(len ? len : 1);
		if (!body) {
			rc = tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
			break;
		}
		if (fread(body, 1, len, f) != len ||
		    libdeflate_crc32(0, body, len) != get_le32(h + 24)) {
			rc = tj_errf(err, TJ_E_DAMAGED, "%s: stacks block damaged", path);
			break;
		}
		const uint8_t *plain = body;
		size_t plain_len = len;
		if (flags & EVLOG_BF_ZLIB) {
			struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
			size_t out = 0;
			raw = malloc(raw_len ? raw_len : 1);
			if (!d || !raw ||
			    libdeflate_zlib_decompress(d, body, len, raw, raw_len, &out) !=
				    LIBDEFLATE_SUCCESS || out != raw_len) {
				libdeflate_free_decompressor(d);
				rc = tj_errf(err, TJ_E_DAMAGED, "%s: stacks block does not inflate",
					     path);
				break;
			}
			libdeflate_free_decompressor(d);
			plain = raw;
			plain_len = raw_len;
		}
		rc = tj_stacks_decode(path, plain, plain_len, s, err);
		break;
	}
done:
	if (rc < 0)
		tj_stacks_free(s);
	free(body);
	free(raw);
	fclose(f);
	return rc;
}
