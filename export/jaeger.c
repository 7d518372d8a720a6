/* Jaeger JSON: what Jaeger's query API returns for GET /api/traces and
 * its UI's "upload JSON" opens, the shape of the TraceWeaver traces:
 * {"data":[{"traceID","spans":[...],"processes":{...}}]}.  Times in
 * microseconds; a trace's processes are the services its spans ran on,
 * named "p<service index + 1>".  `tracejoin import --format jaeger`
 * reads it back (span.kind tags tell server from client). */
#include <stdlib.h>
#include <string.h>
#include "export.h"

static void put_pid(struct jw *w, uint32_t service)
{
	jw_raw(w, "\"p");
	jw_u64(w, (uint64_t)service + 1);
	jw_raw(w, "\"");
}

static void put_tag(struct jw *w, const struct tj_xattr *a)
{
	static const char *const types[] = { "string", "int64", "float64", "bool" };
	jw_raw(w, ",{\"key\":");
	jw_plain(w, a->key);
	jw_raw(w, ",\"type\":");
	jw_plain(w, types[a->type]);
	jw_raw(w, ",\"value\":");
	tj_xattr_put_value(w, a);
	jw_raw(w, "}");
}

static void put_span(struct jw *w, const struct tj_xmodel *m, uint32_t i,
		     const char trace_id[34], int first)
{
	const struct tj_xspan *s = &m->spans[i];
	uint8_t id[8];
	char name[TJ_XNAME_MAX], buf[TJ_XATTR_BUF];
	struct tj_xattr a[TJ_XATTR_MAX];

	jw_raw(w, first ? "{\"traceID\":" : ",\n{\"traceID\":");
	jw_mem(w, trace_id, 34);
	tj_xspan_id(&s->key, id);
	jw_raw(w, ",\"spanID\":");
	jw_hex(w, id, 8);
	jw_raw(w, ",\"flags\":1,\"operationName\":");
	tj_xspan_name(m, i, name);
	jw_str(w, name);
	jw_raw(w, ",\"references\":[");
	if (s->parent != TJ_XSPAN_NONE) {
		jw_raw(w, "{\"refType\":\"CHILD_OF\",\"traceID\":");
		jw_mem(w, trace_id, 34);
		tj_xspan_id(&m->spans[s->parent].key, id);
		jw_raw(w, ",\"spanID\":");
		jw_hex(w, id, 8);
		jw_raw(w, "}");
	}
	jw_raw(w, "],\"startTime\":");
	jw_u64(w, s->start / 1000);
	jw_raw(w, ",\"duration\":");
	jw_u64(w, s->end / 1000 - s->start / 1000);
	jw_raw(w, ",\"tags\":[{\"key\":\"span.kind\",\"type\":\"string\",\"value\":");
	jw_raw(w, s->kind == TJ_XSPAN_SERVER ? "\"server\"}" : "\"client\"}");
	size_t na = tj_xspan_attrs(m, i, a, buf);
	for (size_t k = 0; k < na; k++)
		put_tag(w, &a[k]);
	jw_raw(w, "],\"logs\":[],\"processID\":");
	put_pid(w, s->service);
	jw_raw(w, ",\"warnings\":null}");
}

int tj_jaeger_trace(struct tj_xwriter *j, const struct tj_xmodel *m, uint32_t root,
		    const uint32_t *spans, size_t n)
{
	struct jw *w = j->w;
	uint8_t tid[16];
	tj_xtrace_id(&m->spans[root].key, tid);
	char tidhex[34]; /* "hex", written on every span */
	jw_fmt_hex(tidhex, tid, 16);
	jw_raw(w, j->first ? "\n{\"traceID\":" : ",\n{\"traceID\":");
	j->first = 0;
	jw_mem(w, tidhex, 34);
	jw_raw(w, ",\"spans\":[\n");
	for (size_t i = 0; i < n; i++) {
		put_span(w, m, spans[i], tidhex, i == 0);
		j->used[m->spans[spans[i]].service] = 1;
	}
	jw_raw(w, "],\"processes\":{");
	int firstp = 1;
	for (size_t i = 0; i < n; i++) {
		uint32_t svc = m->spans[spans[i]].service;
		if (!j->used[svc])
			continue;
		j->used[svc] = 0;
		if (!firstp)
			jw_raw(w, ",");
		firstp = 0;
		put_pid(w, svc);
		jw_raw(w, ":{\"serviceName\":");
		jw_str(w, m->services[svc]);
		jw_raw(w, ",\"tags\":[]}");
	}
	jw_raw(w, "},\"warnings\":null}");
	return w->failed;
}

void tj_jaeger_head(struct tj_xwriter *j)
{
	j->first = 1;
	jw_raw(j->w, "{\"data\":[");
}

void tj_jaeger_tail(struct tj_xwriter *j)
{
	jw_raw(j->w, "\n],\"total\":0,\"limit\":0,\"offset\":0,\"errors\":null}\n");
}
