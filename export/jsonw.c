/* Buffered JSON writing for the exporters (jsonw.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "jsonw.h"

#define JW_BUF (1u << 16)

int jw_open(struct jw *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->cap = JW_BUF;
	w->buf = malloc(w->cap);
	return w->buf ? 0 : -TJ_E_NOMEM;
}

static void flush(struct jw *w)
{
	if (w->len && !w->failed && fwrite(w->buf, 1, w->len, w->f) != w->len)
		w->failed = errno ? errno : EIO;
	w->len = 0;
}

/* Room for n more bytes (n <= JW_BUF). */
static inline char *room(struct jw *w, size_t n)
{
	if (w->len + n > w->cap)
		flush(w);
	return w->buf + w->len;
}

int jw_close(struct jw *w, const char *path, struct tj_err *err)
{
	int rc = 0;
	if (w->buf) {
		flush(w);
		if (!w->failed && fflush(w->f) != 0)
			w->failed = errno ? errno : EIO;
		if (w->failed)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(w->failed));
	}
	free(w->buf);
	w->buf = NULL;
	return rc;
}

void jw_mem(struct jw *w, const char *s, size_t n)
{
	while (n) {
		size_t k = n < JW_BUF ? n : JW_BUF;
		memcpy(room(w, k), s, k);
		w->len += k;
		s += k;
		n -= k;
	}
}

void jw_raw(struct jw *w, const char *s)
{
	jw_mem(w, s, strlen(s));
}

void jw_str(struct jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	*room(w, 1) = '"';
	w->len++;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char *o = room(w, 6);
		if (*p == '"' || *p == '\\') {
			o[0] = '\\';
			o[1] = (char)*p;
			w->len += 2;
		} else if (*p < 0x20) {
			memcpy(o, "\\u00", 4);
			o[4] = hex[*p >> 4];
			o[5] = hex[*p & 15];
			w->len += 6;
		} else {
			/* bytes >= 0x80 pass as they are: names come from UTF-8
			 * host names and manifests */
			o[0] = (char)*p;
			w->len++;
		}
	}
	*room(w, 1) = '"';
	w->len++;
}

void jw_u64(struct jw *w, uint64_t v)
{
	char tmp[20];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	char *o = room(w, (size_t)n);
	for (int i = 0; i < n; i++)
		o[i] = tmp[n - 1 - i];
	w->len += (size_t)n;
}

void jw_i64(struct jw *w, int64_t v)
{
	if (v < 0) {
		*room(w, 1) = '-';
		w->len++;
		jw_u64(w, (uint64_t)0 - (uint64_t)v);
	} else {
		jw_u64(w, (uint64_t)v);
	}
}

void jw_qu64(struct jw *w, uint64_t v)
{
	*room(w, 1) = '"';
	w->len++;
	jw_u64(w, v);
	*room(w, 1) = '"';
	w->len++;
}

void jw_hex(struct jw *w, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *o = room(w, 2 * n + 2);
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		*o++ = hex[p[i] >> 4];
		*o++ = hex[p[i] & 15];
	}
	*o = '"';
	w->len += 2 * n + 2;
}

void jw_double(struct jw *w, double v)
{
	if (!isfinite(v)) { /* JSON has no NaN; scores are checked in [0,1] */
		jw_raw(w, "0");
		return;
	}
	if (v == (double)(int64_t)v && fabs(v) < 1e15) {
		jw_i64(w, (int64_t)v);
		return;
	}
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%.6g", v);
	jw_mem(w, tmp, (size_t)n);
}

void jw_us3(struct jw *w, uint64_t ns)
{
	jw_u64(w, ns / 1000);
	uint64_t frac = ns % 1000;
	char *o = room(w, 4);
	o[0] = '.';
	o[1] = (char)('0' + frac / 100);
	o[2] = (char)('0' + frac / 10 % 10);
	o[3] = (char)('0' + frac % 10);
	w->len += 4;
}
