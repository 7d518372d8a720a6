/* Buffered JSON writing for the exporters (jsonw.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "jsonw.h"

int jw_open(struct jw *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->cap = JW_BUF;
	w->buf = malloc(w->cap);
	return w->buf ? 0 : -TJ_E_NOMEM;
}

void jw_flush(struct jw *w)
{
	if (w->len && !w->failed && fwrite(w->buf, 1, w->len, w->f) != w->len)
		w->failed = errno ? errno : EIO;
	w->len = 0;
}

int jw_close(struct jw *w, const char *path, struct tj_err *err)
{
	int rc = 0;
	if (w->buf) {
		jw_flush(w);
		if (!w->failed && fflush(w->f) != 0)
			w->failed = errno ? errno : EIO;
		if (w->failed)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(w->failed));
	}
	free(w->buf);
	w->buf = NULL;
	return rc;
}

void jw_mem_long(struct jw *w, const char *s, size_t n)
{
	while (n) {
		size_t k = n < JW_BUF ? n : JW_BUF;
		memcpy(jw_room(w, k), s, k);
		w->len += k;
		s += k;
		n -= k;
	}
}

/* Bytes a JSON string cannot hold as they are: '"', '\\', controls. */
static const uint8_t needs_escape[256] = {
	[0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

/* The bytes [p, end) escaped at o (room for 6 per byte). */
static char *escape(char *o, const unsigned char *p, const unsigned char *end)
{
	static const char hex[] = "0123456789abcdef";
	for (;;) {
		/* copy the run that needs no escape at once; bytes >= 0x80
		 * pass as they are (names come from UTF-8 host names and
		 * manifests) */
		const unsigned char *q = p;
		while (q < end && !needs_escape[*q])
			q++;
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		if (q == end)
			return o;
		if (*q == '"' || *q == '\\') {
			o[0] = '\\';
			o[1] = (char)*q;
			o += 2;
		} else {
			memcpy(o, "\\u00", 4);
			o[4] = hex[*q >> 4];
			o[5] = hex[*q & 15];
			o += 6;
		}
		p = q + 1;
	}
}

char *jc_str(char *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	*o++ = '"';
	o = escape(o, p, p + strlen(s));
	*o++ = '"';
	return o;
}

void jw_str(struct jw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	/* in pieces that fit the buffer escaped (one piece but for huge texts) */
	const size_t piece = (JW_BUF - 2) / 6;
	jw_char(w, '"');
	while (p < end) {
		size_t k = (size_t)(end - p) < piece ? (size_t)(end - p) : piece;
		jw_commit(w, escape(jw_reserve(w, 6 * k), p, p + k));
		p += k;
	}
	jw_char(w, '"');
}

void jw_i64(struct jw *w, int64_t v)
{
	jw_commit(w, jc_i64(jw_reserve(w, 21), v));
}

void jw_qu64(struct jw *w, uint64_t v)
{
	jw_commit(w, jc_qu64(jw_reserve(w, 22), v));
}

/* Each byte's two hex digits. */
static const char hex2[513] =
#define H16(x) #x "0" #x "1" #x "2" #x "3" #x "4" #x "5" #x "6" #x "7" \
	       #x "8" #x "9" #x "a" #x "b" #x "c" #x "d" #x "e" #x "f"
	H16(0) H16(1) H16(2) H16(3) H16(4) H16(5) H16(6) H16(7)
	H16(8) H16(9) H16(a) H16(b) H16(c) H16(d) H16(e) H16(f);
#undef H16

void jw_fmt_hex(char *o, const uint8_t *p, size_t n)
{
	*o++ = '"';
	for (size_t i = 0; i < n; i++, o += 2)
		memcpy(o, hex2 + 2 * p[i], 2);
	*o = '"';
}

void jw_hex(struct jw *w, const uint8_t *p, size_t n)
{
	jw_fmt_hex(jw_room(w, 2 * n + 2), p, n);
	w->len += 2 * n + 2;
}

char *jc_double(char *o, double v)
{
	if (!isfinite(v)) /* JSON has no NaN; scores are checked in [0,1] */
		return jc_raw(o, "0");
	if (v == (double)(int64_t)v && fabs(v) < 1e15)
		return jc_i64(o, (int64_t)v);
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%.6g", v);
	return jc_mem(o, tmp, (size_t)n);
}

void jw_double(struct jw *w, double v)
{
	jw_commit(w, jc_double(jw_reserve(w, 32), v));
}

char *jc_us3(char *o, uint64_t ns)
{
	o = jc_u64(o, ns / 1000);
	uint64_t frac = ns % 1000;
	o[0] = '.';
	o[1] = (char)('0' + frac / 100);
	o[2] = (char)('0' + frac / 10 % 10);
	o[3] = (char)('0' + frac % 10);
	return o + 4;
}

void jw_us3(struct jw *w, uint64_t ns)
{
	jw_commit(w, jc_us3(jw_reserve(w, 24), ns));
}
