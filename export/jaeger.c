/* Jaeger JSON: what Jaeger's query API returns for GET /api/traces and
 * its UI's "upload JSON" opens, the shape of the TraceWeaver traces:
 * {"data":[{"traceID","spans":[...],"processes":{...}}]}.  Times in
 * microseconds; a trace's processes are the services its spans ran on,
 * named "p<service index + 1>".  `tracejoin import --format jaeger`
 * reads it back (span.kind tags tell server from client). */
#include <stdlib.h>
#include <string.h>
#include "export.h"

static char *put_pid(char *o, uint32_t service)
{
	o = jc_u64(jc_raw(o, "\"p"), (uint64_t)service + 1);
	*o++ = '"';
	return o;
}

static char *put_tag(char *o, const struct tj_xattr *a)
{
#define TYPE(t) { ",\"type\":\"" t "\",\"value\":", sizeof(",\"type\":\"" t "\",\"value\":") - 1 }
	static const struct { const char *s; size_t n; } types[] = {
		TYPE("string"), TYPE("int64"), TYPE("float64"), TYPE("bool")
	};
#undef TYPE
	o = jc_plain_n(jc_raw(o, ",{\"key\":"), a->key, a->keylen);
	o = tj_xattr_put(jc_mem(o, types[a->type].s, types[a->type].n), a);
	*o++ = '}';
	return o;
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

	o = first ? jc_raw(o, "{\"traceID\":") : jc_raw(o, ",\n{\"traceID\":");
	o = jc_mem(o, trace_id, 34);
	tj_xspan_id(&s->key, id);
	o = jc_hex(jc_raw(o, ",\"spanID\":"), id, 8);
	tj_xspan_name(m, i, name);
	o = jc_str(jc_raw(o, ",\"flags\":1,\"operationName\":"), name);
	o = jc_raw(o, ",\"references\":[");
	if (s->parent != TJ_XSPAN_NONE) {
		o = jc_mem(jc_raw(o, "{\"refType\":\"CHILD_OF\",\"traceID\":"), trace_id, 34);
		tj_xspan_id(&m->spans[s->parent].key, id);
		o = jc_hex(jc_raw(o, ",\"spanID\":"), id, 8);
		*o++ = '}';
	}
	o = jc_u64(jc_raw(o, "],\"startTime\":"), s->start / 1000);
	o = jc_u64(jc_raw(o, ",\"duration\":"), s->end / 1000 - s->start / 1000);
	o = jc_raw(o, ",\"tags\":[{\"key\":\"span.kind\",\"type\":\"string\",\"value\":");
	o = jc_raw(o, s->kind == TJ_XSPAN_SERVER ? "\"server\"}" : "\"client\"}");
	size_t na = tj_xspan_attrs(m, i, a, buf);
	for (size_t k = 0; k < na; k++)
		o = put_tag(o, &a[k]);
	o = put_pid(jc_raw(o, "],\"logs\":[],\"processID\":"), s->service);
	jw_commit(w, jc_raw(o, ",\"warnings\":null}"));
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
		jw_commit(w, put_pid(jw_reserve(w, 16), svc));
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
