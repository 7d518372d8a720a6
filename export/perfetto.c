/* Chrome trace-event JSON (the "JSON Array/Object Format" of the Trace
 * Event Format document), which ui.perfetto.dev and chrome://tracing
 * open: a process per service (pid = service index + 1), a track per
 * thread, a complete event ("X") per span, and a flow arrow ("s" at the
 * parent, "f" at the child, bound to the enclosing slice) per parent
 * link.  With --truth a call's colour says whether its parent link is
 * right: cname "good" (green) or "terrible" (red), category
 * "call.correct" or "call.wrong" to filter on. */
#include <stdlib.h>
#include <string.h>
#include "export.h"

static char *put_ids(char *o, const struct tj_xspan *s)
{
	o = jc_u64(jc_raw(o, ",\"pid\":"), (uint64_t)s->service + 1);
	return jc_u64(jc_raw(o, ",\"tid\":"), s->tid);
}

/* One slice, in room reserved for it (JW_SPAN_ROOM). */
static void put_slice(struct jw *w, const struct tj_xmodel *m, uint32_t i)
{
	const struct tj_xspan *s = &m->spans[i];
	char name[TJ_XNAME_MAX], buf[TJ_XATTR_BUF];
	struct tj_xattr a[TJ_XATTR_MAX];
	static const char *const cat[2][3] = {
		{ ",\"cat\":\"request\"", ",\"cat\":\"request\"", ",\"cat\":\"request\"" },
		{ ",\"cat\":\"call\"", ",\"cat\":\"call.correct\"", ",\"cat\":\"call.wrong\"" },
	};
	char *o = jw_reserve(w, JW_SPAN_ROOM);

	tj_xspan_name(m, i, name);
	o = jc_str(jc_raw(o, ",\n{\"ph\":\"X\",\"name\":"), name);
	o = jc_raw(o, cat[s->kind == TJ_XSPAN_CLIENT][s->correct]);
	o = put_ids(o, s);
	o = jc_us3(jc_raw(o, ",\"ts\":"), s->start);
	o = jc_us3(jc_raw(o, ",\"dur\":"), s->end - s->start);
	if (s->correct == TJ_XCORRECT_YES)
		o = jc_raw(o, ",\"cname\":\"good\"");
	else if (s->correct == TJ_XCORRECT_NO)
		o = jc_raw(o, ",\"cname\":\"terrible\"");
	o = jc_raw(o, ",\"args\":{");
	size_t na = tj_xspan_attrs(m, i, a, buf);
	for (size_t k = 0; k < na; k++) {
		if (k)
			*o++ = ',';
		o = jc_plain_n(o, a[k].key, a[k].keylen);
		*o++ = ':';
		o = tj_xattr_put(o, &a[k]);
	}
	jw_commit(w, jc_raw(o, "}}"));
}

/* The arrow from parent p to child c.  Its start must fall inside the
 * parent's slice, whatever the two nodes' clocks say. */
static void put_flow(struct jw *w, const struct tj_xmodel *m, uint32_t c, uint64_t id)
{
	const struct tj_xspan *s = &m->spans[c], *p = &m->spans[s->parent];
	uint64_t ts = s->start;
	if (ts < p->start)
		ts = p->start;
	if (ts > p->end)
		ts = p->end;
	char *o = jw_reserve(w, 512);
	o = jc_raw(o, ",\n{\"ph\":\"s\",\"name\":\"caused\",\"cat\":\"link\",\"id\":");
	o = put_ids(jc_u64(o, id), p);
	o = jc_us3(jc_raw(o, ",\"ts\":"), ts);
	o = jc_raw(o, "},\n{\"ph\":\"f\",\"bp\":\"e\",\"name\":\"caused\",\"cat\":\"link\",\"id\":");
	o = put_ids(jc_u64(o, id), s);
	o = jc_us3(jc_raw(o, ",\"ts\":"), s->start);
	jw_commit(w, jc_raw(o, "}"));
}

int tj_perfetto_trace(struct tj_xwriter *p, const struct tj_xmodel *m, uint32_t root,
		      const uint32_t *spans, size_t n)
{
	(void)root;
	for (size_t i = 0; i < n; i++) {
		put_slice(p->w, m, spans[i]);
		if (m->spans[spans[i]].parent != TJ_XSPAN_NONE)
			put_flow(p->w, m, spans[i], ++p->flows);
	}
	return p->w->failed;
}

void tj_perfetto_head(struct tj_xwriter *p)
{
	struct jw *w = p->w;
	jw_raw(w, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n"
		  "{\"ph\":\"M\",\"name\":\"tracejoin\",\"pid\":0,\"tid\":0,\"args\":{}}");
	for (size_t i = 0; i < p->nservices; i++) {
		jw_raw(w, ",\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":");
		jw_u64(w, i + 1);
		jw_raw(w, ",\"tid\":0,\"args\":{\"name\":");
		jw_str(w, p->services[i]);
		jw_raw(w, "}}");
	}
}

void tj_perfetto_tail(struct tj_xwriter *p)
{
	jw_raw(p->w, "\n]}\n");
}
