/* What every format shares: walking the selected traces, span names and
 * peer addresses (export.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "export.h"
#include "../lib/event.h"

int tj_export_each_trace(const struct tj_xmodel *m, struct tj_export_sel *sel,
			 tj_trace_fn fn, void *ctx, struct tj_err *err)
{
	uint32_t *spans = malloc((m->n ? m->n : 1) * sizeof(*spans));
	uint32_t *stack = malloc((m->n ? m->n : 1) * sizeof(*stack));
	int rc = 0;
	if (!spans || !stack) {
		rc = tj_errf(err, TJ_E_NOMEM, "export: out of memory");
		goto out;
	}
	size_t done = 0;
	for (size_t i = 0; i < m->nroots && !rc; i++) {
		uint32_t r = m->roots[i];
		if (sel->root != TJ_XSPAN_NONE && r != sel->root)
			continue;
		if (sel->max_traces && done == sel->max_traces)
			break;
		size_t n = tj_xmodel_trace_spans(m, r, spans, stack);
		rc = fn(ctx, m, r, spans, n);
		done++;
		sel->traces_out++;
		sel->spans_out += n;
	}
out:
	free(spans);
	free(stack);
	return rc;
}

int tj_xwriter_open(struct tj_xwriter *x, int format, struct jw *w,
		    char *const *services, size_t nservices, struct tj_err *err)
{
	memset(x, 0, sizeof(*x));
	x->format = format;
	x->w = w;
	x->services = services;
	x->nservices = nservices;
	if (format == TJ_EXPORT_JAEGER && !(x->used = calloc(nservices ? nservices : 1, 1)))
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	if (format == TJ_EXPORT_OTLP)
		tj_otlp_head(x);
	else if (format == TJ_EXPORT_JAEGER)
		tj_jaeger_head(x);
	else
		tj_perfetto_head(x);
	return 0;
}

int tj_xwriter_trace(void *ctx, const struct tj_xmodel *m, uint32_t root,
		     const uint32_t *spans, size_t n)
{
	struct tj_xwriter *x = ctx;
	if (x->format == TJ_EXPORT_OTLP)
		return tj_otlp_trace(x, m, root, spans, n);
	if (x->format == TJ_EXPORT_JAEGER)
		return tj_jaeger_trace(x, m, root, spans, n);
	return tj_perfetto_trace(x, m, root, spans, n);
}

void tj_xwriter_close(struct tj_xwriter *x)
{
	if (x->format == TJ_EXPORT_OTLP)
		tj_otlp_tail(x);
	else if (x->format == TJ_EXPORT_JAEGER)
		tj_jaeger_tail(x);
	else
		tj_perfetto_tail(x);
	free(x->order);
	free(x->used);
	x->order = NULL;
	x->used = NULL;
}

int tj_export_model(const struct tj_xmodel *m, int format, struct tj_export_sel *sel,
		    struct jw *w, struct tj_err *err)
{
	struct tj_xwriter x;
	int rc = tj_xwriter_open(&x, format, w, m->services, m->nservices, err);
	if (rc)
		return rc;
	rc = tj_export_each_trace(m, sel, tj_xwriter_trace, &x, err);
	tj_xwriter_close(&x);
	if (rc == -TJ_E_NOMEM)
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	return rc < 0 ? rc : 0;
}

/* Appending to a name of TJ_XNAME_MAX bytes, cut as snprintf would cut
 * it: names are made once per span, so without printf. */
struct namebuf {
	char *p;
	size_t len;
};

static void name_put(struct namebuf *b, const char *s, size_t n)
{
	if (n > TJ_XNAME_MAX - 1 - b->len)
		n = TJ_XNAME_MAX - 1 - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void name_port(struct namebuf *b, uint16_t port)
{
	char d[20];
	name_put(b, d, tj_fmt_u64(d, port));
}

void tj_xspan_name(const struct tj_xmodel *m, uint32_t i, char *buf)
{
	const struct tj_xspan *s = &m->spans[i];
	struct namebuf b = { buf, 0 };
	if (s->kind == TJ_XSPAN_SERVER) {
		name_put(&b, "serve :", 7);
		name_port(&b, s->lport);
		buf[b.len] = '\0';
		return;
	}
	/* a call's children: the request the join made it (if any) */
	const char *callee = NULL;
	char peer[TJ_ADDR_STRLEN];
	for (uint32_t c = m->first_child[i]; c < m->first_child[i + 1] && !callee; c++) {
		const struct tj_xspan *r = &m->spans[m->children[c]];
		if (r->kind == TJ_XSPAN_SERVER)
			callee = m->services[r->service];
	}
	name_put(&b, "call ", 5);
	if (callee) {
		name_put(&b, callee, strlen(callee));
	} else {
		tj_addr_format(s->family, s->raddr, peer);
		if (s->family == AF_INET6)
			name_put(&b, "[", 1);
		name_put(&b, peer, strlen(peer));
		if (s->family == AF_INET6)
			name_put(&b, "]", 1);
	}
	name_put(&b, ":", 1);
	name_port(&b, s->rport);
	buf[b.len] = '\0';
}

/* An attribute's name and its length, counted by the compiler */
#define XKEY(k) .key = k, .keylen = sizeof(k) - 1

size_t tj_xspan_attrs(const struct tj_xmodel *m, uint32_t i, struct tj_xattr *a,
		      char *buf)
{
	const struct tj_xspan *s = &m->spans[i];
	size_t n = 0;
	char *key = buf, *peer = buf + TJ_MSGKEY_STRLEN;
	a[n++] = (struct tj_xattr){ XKEY("tracejoin.key"), .type = TJ_XATTR_STR,
				    .plain = 1, .s = tj_msgkey_format(&s->key, key) };
	if (s->pid)
		a[n++] = (struct tj_xattr){ XKEY("process.pid"), .type = TJ_XATTR_INT, .i = s->pid };
	if (s->tid)
		a[n++] = (struct tj_xattr){ XKEY("thread.id"), .type = TJ_XATTR_INT, .i = s->tid };
	if (s->family) {
		a[n++] = (struct tj_xattr){ XKEY("network.peer.address"), .type = TJ_XATTR_STR,
					    .plain = 1, .s = tj_addr_format(s->family, s->raddr, peer) };
		a[n++] = (struct tj_xattr){ XKEY("network.peer.port"), .type = TJ_XATTR_INT,
					    .i = s->rport };
	}
	a[n++] = (struct tj_xattr){ XKEY("tracejoin.bytes"), .type = TJ_XATTR_INT,
				    .i = (int64_t)s->bytes };
	if (s->kind == TJ_XSPAN_CLIENT)
		a[n++] = (struct tj_xattr){ XKEY("tracejoin.score"), .type = TJ_XATTR_DOUBLE,
					    .d = s->score };
	if (s->external) /* its server is outside the captured set: a leaf */
		a[n++] = (struct tj_xattr){ XKEY("tracejoin.external"), .type = TJ_XATTR_BOOL,
					    .i = 1 };
	if (s->correct != TJ_XCORRECT_UNKNOWN)
		a[n++] = (struct tj_xattr){ XKEY("tracejoin.correct"), .type = TJ_XATTR_BOOL,
					    .i = s->correct == TJ_XCORRECT_YES };
	return n;
}

char *tj_xattr_put(char *o, const struct tj_xattr *a)
{
	switch (a->type) {
	case TJ_XATTR_STR:
		return a->plain ? jc_plain(o, a->s) : jc_str(o, a->s);
	case TJ_XATTR_INT:
		return jc_i64(o, a->i);
	case TJ_XATTR_DOUBLE:
		return jc_double(o, a->d);
	default:
		return a->i ? jc_raw(o, "true") : jc_raw(o, "false");
	}
}
