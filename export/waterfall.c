/* The bench report's drill-down (export.h): traces with a wrong parent
 * link, each beside the true trace of the same root request, as rows a
 * waterfall is drawn from. */
#include <stdlib.h>
#include <string.h>
#include "export.h"

/* One row: depth, start offset and length (µs from the trace's first
 * start), service, name, and whether the link into it is wrong. */
static void put_row(struct jw *w, const struct tj_xmodel *m, uint32_t i,
		    unsigned depth, uint64_t t0, int first)
{
	const struct tj_xspan *s = &m->spans[i];
	char name[TJ_XNAME_MAX], key[TJ_MSGKEY_STRLEN];
	tj_xspan_name(m, i, name);
	jw_raw(w, first ? "{\"d\":" : ",{\"d\":");
	jw_u64(w, depth);
	jw_raw(w, ",\"t\":");
	jw_us3(w, s->start > t0 ? s->start - t0 : 0);
	jw_raw(w, ",\"l\":");
	jw_us3(w, s->end - s->start);
	jw_raw(w, ",\"svc\":");
	jw_str(w, m->services[s->service]);
	jw_raw(w, ",\"name\":");
	jw_str(w, name);
	jw_raw(w, ",\"key\":");
	jw_str(w, tj_msgkey_format(&s->key, key));
	jw_raw(w, s->correct == TJ_XCORRECT_NO ? ",\"wrong\":true}" : ",\"wrong\":false}");
}

static unsigned depth_of(const struct tj_xmodel *m, uint32_t i, int truth)
{
	unsigned d = 0;
	for (uint32_t p = truth ? m->spans[i].true_parent : m->spans[i].parent;
	     p != TJ_XSPAN_NONE && d < 1000;
	     p = truth ? m->spans[p].true_parent : m->spans[p].parent)
		d++;
	return d;
}

/* The true trace holding span `from`: its spans in depth-first order of
 * the true links (children by start). */
static size_t true_trace(const struct tj_xmodel *m, uint32_t from, uint32_t *out,
			 uint32_t *stack)
{
	uint32_t root = m->spans[from].true_trace;
	size_t n = 0, top = 0;
	stack[top++] = root;
	while (top) {
		uint32_t s = stack[--top];
		out[n++] = s;
		/* children by start, pushed latest first: a scan per span is
		 * fine for the few small traces drawn */
		size_t mark = top;
		for (size_t k = 0; k < m->n; k++)
			if (m->spans[k].true_parent == s && m->spans[k].true_trace == root)
				stack[top++] = (uint32_t)k;
		for (size_t a = mark; a < top; a++) /* sort latest first */
			for (size_t b = a + 1; b < top; b++)
				if (m->spans[stack[b]].start > m->spans[stack[a]].start) {
					uint32_t t = stack[a];
					stack[a] = stack[b];
					stack[b] = t;
				}
	}
	return n;
}

static void put_rows(struct jw *w, const struct tj_xmodel *m, const uint32_t *s,
		     size_t n, int truth)
{
	uint64_t t0 = UINT64_MAX;
	for (size_t i = 0; i < n; i++)
		if (m->spans[s[i]].start < t0)
			t0 = m->spans[s[i]].start;
	jw_raw(w, "[");
	for (size_t i = 0; i < n; i++)
		put_row(w, m, s[i], depth_of(m, s[i], truth), t0, i == 0);
	jw_raw(w, "]");
}

#define MAX_ROWS 60 /* a drawn trace is cut here: a waterfall is for eyes */

int tj_export_waterfalls(const struct tj_xmodel *m, size_t max, struct jw *w,
			 struct tj_err *err)
{
	uint32_t *spans = malloc((m->n ? m->n : 1) * sizeof(*spans));
	uint32_t *stack = malloc((m->n ? m->n : 1) * sizeof(*stack));
	uint32_t *tspans = malloc((m->n ? m->n : 1) * sizeof(*tspans));
	if (!spans || !stack || !tspans) {
		free(spans);
		free(stack);
		free(tspans);
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	}
	size_t shown = 0;
	jw_raw(w, "{\"traces\":[");
	for (size_t r = 0; r < m->nroots && shown < max && m->has_truth; r++) {
		size_t n = tj_xmodel_trace_spans(m, m->roots[r], spans, stack);
		size_t wrong = 0;
		for (size_t i = 0; i < n; i++)
			wrong += m->spans[spans[i]].correct == TJ_XCORRECT_NO;
		if (!wrong || n > MAX_ROWS)
			continue;
		/* the true trace of the same root: a root request is a root in
		 * both (the join, not the correlator, gives a request its
		 * parent); a call wrongly left without a parent shows the true
		 * trace it belongs to */
		size_t tn = true_trace(m, spans[0], tspans, stack);
		if (tn > MAX_ROWS)
			continue;
		char key[TJ_MSGKEY_STRLEN];
		jw_raw(w, shown ? ",\n{\"root\":" : "\n{\"root\":");
		jw_str(w, tj_msgkey_format(&m->spans[m->roots[r]].key, key));
		jw_raw(w, ",\"wrong\":");
		jw_u64(w, wrong);
		jw_raw(w, ",\"got\":");
		put_rows(w, m, spans, n, 0);
		jw_raw(w, ",\"truth\":");
		put_rows(w, m, tspans, tn, 1);
		jw_raw(w, "}");
		shown++;
	}
	jw_raw(w, "]}\n");
	free(spans);
	free(stack);
	free(tspans);
	return 0;
}
