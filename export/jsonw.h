/* A buffered writer for the JSON the exporters stream: strings escaped
 * (RFC 8259), integers and hex ids formatted by hand.  jansson builds
 * whole documents in memory; an export of millions of spans is written
 * as it goes, at more than a million spans a second, so the few shapes
 * it needs are written here.  An I/O error is remembered and reported
 * by jw_close. */
#ifndef TJ_EXPORT_JSONW_H
#define TJ_EXPORT_JSONW_H

#include <stdint.h>
#include <stdio.h>
#include "../lib/error.h"

struct jw {
	FILE *f;
	char *buf;
	size_t len, cap;
	int failed;  /* errno of the first failed write, 0 if none */
};

int jw_open(struct jw *w, FILE *f);
/* Flush and free; 0, or -TJ_E_IO naming path. */
int jw_close(struct jw *w, const char *path, struct tj_err *err);

void jw_raw(struct jw *w, const char *s);          /* as is */
void jw_mem(struct jw *w, const char *s, size_t n);
void jw_str(struct jw *w, const char *s);          /* "escaped" */
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_qu64(struct jw *w, uint64_t v);            /* "123": OTLP's int64 */
void jw_hex(struct jw *w, const uint8_t *p, size_t n); /* "0a1b..." */
void jw_double(struct jw *w, double v);            /* shortest %.17g-safe form */
/* microseconds from ns with three decimals: Chrome trace events' ts */
void jw_us3(struct jw *w, uint64_t ns);

#endif
