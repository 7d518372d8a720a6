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
	const char *key;     /* needs no escaping (ours) */
	size_t keylen;       /* strlen(key): known when it is made */
	int type;            /* enum tj_xattr_type */
	int plain;           /* s needs no escaping (digits, ':', '.') */
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
/* An attribute's value as plain JSON ("text", 12, 0.5, true) at o (in a
 * span's reserved room, jsonw.h); returns the end. */
char *tj_xattr_put(char *o, const struct tj_xattr *a);

/* A format's writer, trace by trace: open writes the head, each trace
 * goes through tj_xwriter_trace (a tj_trace_fn: the whole model or a
 * streamed one-trace model, export/stream.h), close the tail.  Perfetto's
 * flow ids count the links in output order, so both give the same bytes. */
struct tj_xwriter {
	int format;             /* enum tj_export_format */
	struct jw *w;
	char *const *services;
	size_t nservices;
	int first;              /* otlp, jaeger: no trace written yet */
	size_t line_spans;      /* otlp: spans on this line */
	uint32_t *order;        /* otlp: scratch, a trace's spans by service */
	size_t order_cap;
	uint8_t *used;          /* jaeger: per service, seen in this trace */
	uint64_t flows;         /* perfetto: flow ids given */
};
int tj_xwriter_open(struct tj_xwriter *x, int format, struct jw *w,
		    char *const *services, size_t nservices, struct tj_err *err);
int tj_xwriter_trace(void *x, const struct tj_xmodel *m, uint32_t root,
		     const uint32_t *spans, size_t n);
/* Writes the tail and frees; errors are the jw's (jw_close says them). */
void tj_xwriter_close(struct tj_xwriter *x);

/* Each format's parts (otlp.c, jaeger.c, perfetto.c), for tj_xwriter. */
void tj_otlp_head(struct tj_xwriter *x);
int tj_otlp_trace(struct tj_xwriter *x, const struct tj_xmodel *m, uint32_t root,
		  const uint32_t *spans, size_t n);
void tj_otlp_tail(struct tj_xwriter *x);
void tj_jaeger_head(struct tj_xwriter *x);
int tj_jaeger_trace(struct tj_xwriter *x, const struct tj_xmodel *m, uint32_t root,
		    const uint32_t *spans, size_t n);
void tj_jaeger_tail(struct tj_xwriter *x);
void tj_perfetto_head(struct tj_xwriter *x);
int tj_perfetto_trace(struct tj_xwriter *x, const struct tj_xmodel *m, uint32_t root,
		      const uint32_t *spans, size_t n);
void tj_perfetto_tail(struct tj_xwriter *x);

/* The whole model in one format (open, every selected trace, close). */
int tj_export_model(const struct tj_xmodel *m, int format, struct tj_export_sel *sel,
		    struct jw *w, struct tj_err *err);

/* The drill-down of the bench report: up to max traces with a wrong
 * parent link (needs truth), each as {"got":[...],"truth":[...]} rows
 * of a waterfall.  Writes one JSON object. */
int tj_export_waterfalls(const struct tj_xmodel *m, size_t max, struct jw *w,
			 struct tj_err *err);

#endif
