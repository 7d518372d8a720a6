/* OTLP/JSON: ExportTraceServiceRequests (opentelemetry-proto,
 * collector/trace/v1), one per line (JSON Lines): what an OpenTelemetry
 * Collector's file exporter writes and its otlpjsonfile receiver reads
 * (which takes lines up to 1 MiB by default), and what its OTLP/HTTP
 * receiver takes as the body of a POST /v1/traces, line by line.  A line
 * holds whole traces, about OTLP_LINE_SPANS spans; a small export is one
 * line.  The JSON mapping of the protobuf: lowerCamelCase fields, trace
 * and span ids as hex, int64 as strings, enums as numbers.  Each trace's
 * spans are grouped by service, one resourceSpans per (trace, service). */
#include <stdlib.h>
#include <string.h>
#include "export.h"
#include "../lib/util.h"
#include "../lib/version.h"

/* SpanKind of trace.proto */
enum { OTLP_KIND_SERVER = 2, OTLP_KIND_CLIENT = 3 };

/* Spans a line should hold: ~700 bytes each, far below 1 MiB. */
#define OTLP_LINE_SPANS 512

static char *put_attr(char *o, const struct tj_xattr *a, int first)
{
	o = first ? jc_raw(o, "{\"key\":") : jc_raw(o, ",{\"key\":");
	o = jc_plain_n(o, a->key, a->keylen);
#define FIELD(t) { ",\"value\":{\"" t "\":", sizeof(",\"value\":{\"" t "\":") - 1 }
	static const struct { const char *s; size_t n; } field[] = {
		FIELD("stringValue"), FIELD("intValue"), FIELD("doubleValue"), FIELD("boolValue")
	};
#undef FIELD
	o = jc_mem(o, field[a->type].s, field[a->type].n);
	if (a->type == TJ_XATTR_INT) /* int64: a string in protobuf's JSON */
		o = jc_qu64(o, (uint64_t)a->i);
	else
		o = tj_xattr_put(o, a);
	return jc_raw(o, "}}");
}

/* One span, in room reserved for it (JW_SPAN_ROOM). */
static void put_span(struct jw *w, const struct tj_xmodel *m, uint32_t i,
		     const char trace_id[34], int first)
{
	const struct tj_xspan *s = &m->spans[i];
	uint8_t id[8];
	char name[TJ_XNAME_MAX], buf[TJ_XATTR_BUF];
	struct tj_xattr a[TJ_XATTR_MAX];
	char *o = jw_reserve(w, JW_SPAN_ROOM);

	o = first ? jc_raw(o, "{\"traceId\":") : jc_raw(o, ",{\"traceId\":");
	o = jc_mem(o, trace_id, 34);
	tj_xspan_id(&s->key, id);
	o = jc_hex(jc_raw(o, ",\"spanId\":"), id, 8);
	if (s->parent != TJ_XSPAN_NONE) {
		tj_xspan_id(&m->spans[s->parent].key, id);
		o = jc_hex(jc_raw(o, ",\"parentSpanId\":"), id, 8);
	}
	tj_xspan_name(m, i, name);
	o = jc_str(jc_raw(o, ",\"name\":"), name);
	o = jc_raw(o, s->kind == TJ_XSPAN_SERVER ? ",\"kind\":2" : ",\"kind\":3");
	o = jc_qu64(jc_raw(o, ",\"startTimeUnixNano\":"), s->start);
	o = jc_qu64(jc_raw(o, ",\"endTimeUnixNano\":"), s->end);
	o = jc_raw(o, ",\"attributes\":[");
	size_t na = tj_xspan_attrs(m, i, a, buf);
	for (size_t k = 0; k < na; k++)
		o = put_attr(o, &a[k], k == 0);
	jw_commit(w, jc_raw(o, "]}"));
}

/* Order a trace's spans by (service, span index): an insertion sort, as
 * a trace has a handful of spans and qsort's calls cost more. */
static void sort_by_service(const struct tj_xmodel *m, uint32_t *o, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint32_t x = o[i], sx = m->spans[x].service;
		size_t j = i;
		for (; j > 0; j--) {
			uint32_t y = o[j - 1], sy = m->spans[y].service;
			if (sy < sx || (sy == sx && y < x))
				break;
			o[j] = y;
		}
		o[j] = x;
	}
}

int tj_otlp_trace(struct tj_xwriter *o, const struct tj_xmodel *m, uint32_t root,
		  const uint32_t *spans, size_t n)
{
	struct jw *w = o->w;
	uint8_t tid[16];
	if (o->line_spans >= OTLP_LINE_SPANS) { /* the next request */
		jw_raw(w, "]}\n{\"resourceSpans\":[");
		o->first = 1;
		o->line_spans = 0;
	}
	o->line_spans += n;
	tj_xtrace_id(&m->spans[root].key, tid);
	char tidhex[34]; /* "hex", written on every span */
	jw_fmt_hex(tidhex, tid, 16);
	if (tj_grow((void **)&o->order, &o->order_cap, n, sizeof(*o->order)) < 0)
		return -TJ_E_NOMEM;
	memcpy(o->order, spans, n * sizeof(*spans));
	sort_by_service(m, o->order, n); /* within a service: span index order */
	for (size_t i = 0; i < n;) {
		uint32_t svc = m->spans[o->order[i]].service;
		jw_raw(w, o->first ? "{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
				     "\"value\":{\"stringValue\":"
				   : ",{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
				     "\"value\":{\"stringValue\":");
		o->first = 0;
		jw_str(w, m->services[svc]);
		jw_raw(w, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"tracejoin\",\"version\":");
		jw_str(w, tj_version);
		jw_raw(w, "},\"spans\":[");
		size_t from = i;
		for (; i < n && m->spans[o->order[i]].service == svc; i++)
			put_span(w, m, o->order[i], tidhex, i == from);
		jw_raw(w, "]}]}");
	}
	return w->failed;
}

void tj_otlp_head(struct tj_xwriter *o)
{
	o->first = 1;
	jw_raw(o->w, "{\"resourceSpans\":[");
}

void tj_otlp_tail(struct tj_xwriter *o)
{
	jw_raw(o->w, "]}\n");
}
