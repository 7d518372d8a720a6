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

static void put_ids(struct jw *w, const struct tj_xspan *s)
{
	jw_raw(w, ",\"pid\":");
	jw_u64(w, (uint64_t)s->service + 1);
	jw_raw(w, ",\"tid\":");
	jw_u64(w, s->tid);
}

static void put_slice(struct jw *w, const struct tj_xmodel *m, uint32_t i)
{
	const struct tj_xspan *s = &m->spans[i];
	char name[TJ_XNAME_MAX], buf[TJ_XATTR_BUF];
	struct tj_xattr a[TJ_XATTR_MAX];
	static const char *const cat[2][3] = {
		{ "request", "request", "request" },
		{ "call", "call.correct", "call.wrong" },
	};

	tj_xspan_name(m, i, name);
	jw_raw(w, ",\n{\"ph\":\"X\",\"name\":");
	jw_str(w, name);
	jw_raw(w, ",\"cat\":\"");
	jw_raw(w, cat[s->kind == TJ_XSPAN_CLIENT][s->correct]);
	jw_raw(w, "\"");
	put_ids(w, s);
	jw_raw(w, ",\"ts\":");
	jw_us3(w, s->start);
	jw_raw(w, ",\"dur\":");
	jw_us3(w, s->end - s->start);
	if (s->correct == TJ_XCORRECT_YES)
		jw_raw(w, ",\"cname\":\"good\"");
	else if (s->correct == TJ_XCORRECT_NO)
		jw_raw(w, ",\"cname\":\"terrible\"");
	jw_raw(w, ",\"args\":{");
	size_t na = tj_xspan_attrs(m, i, a, buf);
	for (size_t k = 0; k < na; k++) {
		if (k)
			jw_raw(w, ",");
		jw_plain(w, a[k].key);
		jw_raw(w, ":");
		tj_xattr_put_value(w, &a[k]);
	}
	jw_raw(w, "}}");
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
	jw_raw(w, ",\n{\"ph\":\"s\",\"name\":\"caused\",\"cat\":\"link\",\"id\":");
	jw_u64(w, id);
	put_ids(w, p);
	jw_raw(w, ",\"ts\":");
	jw_us3(w, ts);
	jw_raw(w, "},\n{\"ph\":\"f\",\"bp\":\"e\",\"name\":\"caused\",\"cat\":\"link\",\"id\":");
	jw_u64(w, id);
	put_ids(w, s);
	jw_raw(w, ",\"ts\":");
	jw_us3(w, s->start);
	jw_raw(w, "}");
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
