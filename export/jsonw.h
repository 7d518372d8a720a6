/* A buffered writer for the JSON the exporters stream: strings escaped
 * (RFC 8259), integers and hex ids formatted by hand.  jansson builds
 * whole documents in memory; an export of millions of spans is written
 * as it goes, at more than a million spans a second, so the few shapes
 * it needs are written here.  The common case (room in the buffer) is
 * inline: a literal's length is then known at compile time, and a span
 * costs a few hundred stores instead of a few hundred calls.  An I/O
 * error is remembered and reported by jw_close. */
#ifndef TJ_EXPORT_JSONW_H
#define TJ_EXPORT_JSONW_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "../lib/error.h"
#include "../lib/util.h"

struct jw {
	FILE *f;
	char *buf;
	size_t len, cap;
	int failed;  /* errno of the first failed write, 0 if none */
};

#define JW_BUF (1u << 16)

int jw_open(struct jw *w, FILE *f);
/* Flush and free; 0, or -TJ_E_IO naming path. */
int jw_close(struct jw *w, const char *path, struct tj_err *err);

/* Write out what the buffer holds (the slow path of jw_room). */
void jw_flush(struct jw *w);
/* Room for n more bytes (n <= JW_BUF) at the returned pointer; the
 * caller writes them and adds what it wrote to w->len. */
static inline char *jw_room(struct jw *w, size_t n)
{
	if (__builtin_expect(w->len + n > w->cap, 0))
		jw_flush(w);
	return w->buf + w->len;
}

void jw_mem_long(struct jw *w, const char *s, size_t n);
static inline void jw_mem(struct jw *w, const char *s, size_t n)
{
	if (__builtin_expect(n > JW_BUF, 0)) {
		jw_mem_long(w, s, n);
		return;
	}
	memcpy(jw_room(w, n), s, n);
	w->len += n;
}
/* as is (a literal's strlen folds to a constant) */
static inline void jw_raw(struct jw *w, const char *s)
{
	jw_mem(w, s, strlen(s));
}
static inline void jw_char(struct jw *w, char c)
{
	*jw_room(w, 1) = c;
	w->len++;
}

static inline void jw_u64(struct jw *w, uint64_t v)
{
	w->len += tj_fmt_u64(jw_room(w, 20), v);
}

/* A bounded piece (a span) is written at a cursor: jw_reserve gives room
 * for n bytes (n <= JW_BUF), the jc_* put at o and return the end, and
 * jw_commit takes what was written: one check of the buffer per span
 * instead of one per field. */
#define JW_SPAN_ROOM 8192 /* a span's bound: a name of TJ_XNAME_MAX all
			     escaped and TJ_XATTR_MAX attributes stay far
			     below it */
static inline char *jw_reserve(struct jw *w, size_t n)
{
	return jw_room(w, n);
}
static inline void jw_commit(struct jw *w, char *o)
{
	w->len = (size_t)(o - w->buf);
}
static inline char *jc_mem(char *o, const char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}
/* as is (a literal's strlen folds to a constant) */
static inline char *jc_raw(char *o, const char *s)
{
	return jc_mem(o, s, strlen(s));
}
static inline char *jc_u64(char *o, uint64_t v)
{
	return o + tj_fmt_u64(o, v);
}
static inline char *jc_i64(char *o, int64_t v)
{
	if (v < 0) {
		*o++ = '-';
		return jc_u64(o, (uint64_t)0 - (uint64_t)v);
	}
	return jc_u64(o, (uint64_t)v);
}
/* "123": OTLP's int64 */
static inline char *jc_qu64(char *o, uint64_t v)
{
	*o++ = '"';
	o = jc_u64(o, v);
	*o++ = '"';
	return o;
}
/* "s" for a text that needs no escaping (ours: attribute names, message
 * keys, addresses): no scan for quotes and controls. */
/* "s" of n bytes: a text whose length is known */
static inline char *jc_plain_n(char *o, const char *s, size_t n)
{
	*o++ = '"';
	o = jc_mem(o, s, n);
	*o++ = '"';
	return o;
}
static inline char *jc_plain(char *o, const char *s)
{
	*o++ = '"';
	o = jc_raw(o, s);
	*o++ = '"';
	return o;
}
/* "escaped": room for 6 * strlen(s) + 2 */
char *jc_str(char *o, const char *s);
/* room for 32 */
char *jc_double(char *o, double v);
/* microseconds from ns with three decimals (room for 24) */
char *jc_us3(char *o, uint64_t ns);

void jw_str(struct jw *w, const char *s);          /* "escaped" */
/* "s" for a text that needs no escaping (ours: attribute names, message
 * keys, addresses): no scan for quotes and controls. */
static inline void jw_plain(struct jw *w, const char *s)
{
	size_t n = strlen(s);
	if (__builtin_expect(n + 2 > JW_BUF, 0)) {
		jw_str(w, s);
		return;
	}
	char *o = jw_room(w, n + 2);
	o[0] = '"';
	memcpy(o + 1, s, n);
	o[n + 1] = '"';
	w->len += n + 2;
}
void jw_i64(struct jw *w, int64_t v);
void jw_qu64(struct jw *w, uint64_t v);            /* "123": OTLP's int64 */
void jw_hex(struct jw *w, const uint8_t *p, size_t n); /* "0a1b..." */
/* The same into o (2 * n + 2 bytes, no NUL): an id written many times
 * (a trace's id on each of its spans) is formatted once. */
void jw_fmt_hex(char *o, const uint8_t *p, size_t n);
static inline char *jc_hex(char *o, const uint8_t *p, size_t n)
{
	jw_fmt_hex(o, p, n);
	return o + 2 * n + 2;
}
void jw_double(struct jw *w, double v);            /* shortest %.17g-safe form */
/* microseconds from ns with three decimals: Chrome trace events' ts */
void jw_us3(struct jw *w, uint64_t ns);

#endif
