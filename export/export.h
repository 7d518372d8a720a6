/* tracejoin export: the span model (model.h) written for trace viewers.
 *
 *   otlp.c      OTLP/JSON, an ExportTraceServiceRequest
 *   jaeger.c    Jaeger query API JSON ({"data":[trace...]}), what the
 *               Jaeger UI's "upload JSON" opens and `import --format
 *               jaeger` reads back
 *   perfetto.c  Chrome trace events: ui.perfetto.dev, chrome://tracing
 *   waterfall.c the bench report's drill-down: wrong traces beside their
 *               true shape
 *
 * Attribute names follow the OpenTelemetry semantic conventions where
 * one exists (service.name, network.peer.address, network.peer.port,
 * process.pid, thread.id); ours are tracejoin.*. */
#ifndef TJ_EXPORT_H
#define TJ_EXPORT_H

#include "model.h"
#include "jsonw.h"

enum tj_export_format { TJ_EXPORT_OTLP, TJ_EXPORT_JAEGER, TJ_EXPORT_PERFETTO };

/* Which traces: all, the first max_traces (in order of their roots'
 * starts), or the one whose root is `root`. */
struct tj_export_sel {
	size_t max_traces;  /* 0 = no limit */
	uint32_t root;      /* TJ_XSPAN_NONE = any */
	/* filled by the walk: what was written */
	size_t traces_out, spans_out;
};

/* Calls fn for each selected trace with its spans (parents first);
 * stops at fn's first non-zero return and returns it. */
typedef int (*tj_trace_fn)(void *ctx, const struct tj_xmodel *m, uint32_t root,
			   const uint32_t *spans, size_t n);
int tj_export_each_trace(const struct tj_xmodel *m, struct tj_export_sel *sel,
			 tj_trace_fn fn, void *ctx, struct tj_err *err);

/* Span names and peers, shared by the formats. */
#define TJ_XNAME_MAX 160
/* "serve :8080" or "call search-1:8080" (the callee's service when the
 * join found it, else its address) */
void tj_xspan_name(const struct tj_xmodel *m, uint32_t i, char *buf);

/* A span's attributes, for each format to write in its own syntax. */
enum tj_xattr_type { TJ_XATTR_STR, TJ_XATTR_INT, TJ_XATTR_DOUBLE, TJ_XATTR_BOOL };
struct tj_xattr {
	const char *key;
	int type;            /* enum tj_xattr_type */
	const char *s;
	int64_t i;
	double d;
};
#define TJ_XATTR_MAX 10
/* Fills a (room for TJ_XATTR_MAX), using buf (TJ_XATTR_BUF bytes) for
 * texts; returns how many. */
#define TJ_XATTR_BUF 128
size_t tj_xspan_attrs(const struct tj_xmodel *m, uint32_t i, struct tj_xattr *a,
		      char *buf);
/* An attribute's value as plain JSON ("text", 12, 0.5, true). */
void tj_xattr_put_value(struct jw *w, const struct tj_xattr *a);

int tj_export_otlp(const struct tj_xmodel *m, struct tj_export_sel *sel,
		   struct jw *w, struct tj_err *err);
int tj_export_jaeger(const struct tj_xmodel *m, struct tj_export_sel *sel,
		     struct jw *w, struct tj_err *err);
int tj_export_perfetto(const struct tj_xmodel *m, struct tj_export_sel *sel,
		       struct jw *w, struct tj_err *err);

/* The drill-down of the bench report: up to max traces with a wrong
 * parent link (needs truth), each as {"got":[...],"truth":[...]} rows
 * of a waterfall.  Writes one JSON object. */
int tj_export_waterfalls(const struct tj_xmodel *m, size_t max, struct jw *w,
			 struct tj_err *err);

#endif
