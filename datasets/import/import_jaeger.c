/* Jaeger JSON -> calls.  Reads trace files with jansson, checks each
 * trace (ids, parents, cycles, times), and turns its spans into calls
 * (import_calls.h): one per server span and one per client span that no
 * server span answers.  A trace that fails a check is skipped whole, so
 * the labels never describe half a trace. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "import_calls.h"

enum { SK_OTHER = 0, SK_SERVER, SK_CLIENT };

struct span {
	const char *id;
	const char *parent_id; /* NULL: a root */
	const char *peer;      /* peer.service tag, NULL if none */
	uint64_t start, end;   /* ns */
	uint32_t ep;
	uint8_t kind;
	uint8_t tagged;        /* it has a span.kind tag (any value) */
	uint8_t state;         /* cycle check: 0 new, 1 on the path, 2 done */
	long parent;           /* index in the trace's spans, -1 */
	long paired;           /* client: the server span it is joined with, -1 */
	long call;             /* its call (trace-local index), -1 */
};

/* Microseconds the ns clock can hold in an int64: until the year 2262. */
#define MAX_US ((uint64_t)INT64_MAX / 1000u)

static void warnf(struct tj_jaeger *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warnf(struct tj_jaeger *j, const char *fmt, ...)
{
	j->st.warnings++;
	if (!j->opts.warn)
		return;
	char buf[TJ_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	j->opts.warn(j->opts.warn_ctx, buf);
}

int tj_jaeger_new(struct tj_jaeger **jp, const struct tj_jaeger_opts *opts,
		  struct tj_err *err)
{
	struct tj_jaeger *j = calloc(1, sizeof(*j));
	if (!j)
		return tj_errf(err, TJ_E_NOMEM, "import: out of memory");
	if (opts)
		j->opts = *opts;
	tj_u64map_init(&j->ep_index);
	*jp = j;
	return 0;
}

void tj_jaeger_free(struct tj_jaeger *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->neps; i++)
		free(j->eps[i].name);
	free(j->eps);
	free(j->calls);
	tj_u64map_free(&j->ep_index);
	free(j);
}

const struct tj_jaeger_stats *tj_jaeger_stats(const struct tj_jaeger *j)
{
	return &j->st;
}

static uint64_t hash_name(unsigned kind, const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then mixed */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return tj_hash64(h ^ kind);
}

int64_t tj_jaeger_endpoint(struct tj_jaeger *j, unsigned kind, const char *name)
{
	uint64_t h = hash_name(kind, name);
	uint64_t *v = tj_u64map_get(&j->ep_index, h);
	if (v) {
		if (j->eps[*v].kind == kind && strcmp(j->eps[*v].name, name) == 0)
			return (int64_t)*v;
		for (size_t i = 0; i < j->neps; i++) /* a true 64-bit collision */
			if (j->eps[i].kind == kind && strcmp(j->eps[i].name, name) == 0)
				return (int64_t)i;
	}
	if (j->neps == j->capeps) {
		size_t cap = j->capeps ? 2 * j->capeps : 16;
		struct tj_ep *n = realloc(j->eps, cap * sizeof(*n));
		if (!n)
			return -1;
		j->eps = n;
		j->capeps = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -1;
	if (!v && tj_u64map_put(&j->ep_index, h, j->neps) < 0) {
		free(copy);
		return -1;
	}
	j->eps[j->neps] = (struct tj_ep){ .name = copy, .kind = (uint8_t)kind };
	return (int64_t)j->neps++;
}

/* ---- reading one span ---- */

/* Why a trace is skipped, written by the checks. */
struct why {
	char text[300];
};

static int fail(struct why *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(struct why *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->text, sizeof(w->text), fmt, ap);
	va_end(ap);
	return 1;
}

/* An unsigned integer field: 0, or 1 with the reason in w. */
static int get_us(json_t *o, const char *key, const char *sid, uint64_t *out,
		  struct why *w)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return fail(w, "span %.40s: no %s", sid, key);
	if (!json_is_integer(v))
		return fail(w, "span %.40s: %s is not an integer", sid, key);
	json_int_t x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > MAX_US)
		return fail(w, "span %.40s: %s %lld out of range", sid, key,
			    (long long)x);
	*out = (uint64_t)x;
	return 0;
}

static const char *tag_string(json_t *tags, const char *key)
{
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t) {
		const char *k = json_string_value(json_object_get(t, "key"));
		if (k && strcmp(k, key) == 0)
			return json_string_value(json_object_get(t, "value"));
	}
	return NULL;
}

/* The span's node: "service" or "service@hostname". */
static int span_node(struct tj_jaeger *j, json_t *trace, json_t *s,
		     const char *sid, uint32_t *ep, struct why *w)
{
	json_t *proc = json_object_get(s, "process"); /* older exports inline it */
	if (!json_is_object(proc)) {
		const char *pid = json_string_value(json_object_get(s, "processID"));
		if (!pid)
			return fail(w, "span %.40s: no processID", sid);
		proc = json_object_get(json_object_get(trace, "processes"), pid);
		if (!json_is_object(proc))
			return fail(w, "span %.40s: process %.40s is not in processes",
				    sid, pid);
	}
	const char *svc = json_string_value(json_object_get(proc, "serviceName"));
	if (!svc || !*svc)
		return fail(w, "span %.40s: its process has no serviceName", sid);
	const char *host = NULL;
	json_t *ptags = json_object_get(proc, "tags");
	if (j->opts.nodes == TJ_IMPORT_NODE_INSTANCE && json_is_array(ptags))
		host = tag_string(ptags, "hostname");
	char name[256];
	int n = host && *host ? snprintf(name, sizeof(name), "%s@%s", svc, host)
			      : snprintf(name, sizeof(name), "%s", svc);
	if (n < 0 || (size_t)n >= sizeof(name))
		return fail(w, "span %.40s: service name too long", sid);
	int64_t e = tj_jaeger_endpoint(j, TJ_EP_NODE, name);
	if (e < 0)
		return -1;
	*ep = (uint32_t)e;
	return 0;
}

/* 0 = read, 1 = the trace must be skipped (w says why), -1 = no memory. */
static int read_span(struct tj_jaeger *j, json_t *trace, json_t *s, size_t si,
		     struct span *sp, struct why *w)
{
	if (!json_is_object(s))
		return fail(w, "span #%zu is not an object", si);
	const char *sid = json_string_value(json_object_get(s, "spanID"));
	if (!sid || !*sid)
		return fail(w, "span #%zu has no spanID", si);
	*sp = (struct span){ .id = sid, .parent = -1, .paired = -1, .call = -1 };

	uint64_t start, dur;
	if (get_us(s, "startTime", sid, &start, w) ||
	    get_us(s, "duration", sid, &dur, w))
		return 1;
	if (dur > MAX_US - start)
		return fail(w, "span %.40s: ends beyond the year 2262", sid);
	sp->start = start * 1000u;
	sp->end = (start + dur) * 1000u;

	json_t *tags = json_object_get(s, "tags");
	if (tags && !json_is_array(tags) && !json_is_null(tags))
		return fail(w, "span %.40s: tags is not an array", sid);
	const char *kind = tags ? tag_string(tags, "span.kind") : NULL;
	sp->tagged = kind != NULL;
	if (kind && strcmp(kind, "server") == 0)
		sp->kind = SK_SERVER;
	else if (kind && strcmp(kind, "client") == 0)
		sp->kind = SK_CLIENT;
	if (tags)
		sp->peer = tag_string(tags, "peer.service");

	/* The parent: the first CHILD_OF, else the first FOLLOWS_FROM, else
	 * the old span-level parentSpanID. */
	json_t *refs = json_object_get(s, "references");
	if (refs && !json_is_array(refs) && !json_is_null(refs))
		return fail(w, "span %.40s: references is not an array", sid);
	const char *child_of = NULL, *follows = NULL;
	size_t ri;
	json_t *r;
	json_array_foreach(refs, ri, r) {
		const char *type = json_string_value(json_object_get(r, "refType"));
		const char *rid = json_string_value(json_object_get(r, "spanID"));
		if (!type || !rid)
			return fail(w, "span %.40s: reference #%zu lacks refType or spanID",
				    sid, ri);
		if (!child_of && strcmp(type, "CHILD_OF") == 0)
			child_of = rid;
		else if (!follows && strcmp(type, "FOLLOWS_FROM") == 0)
			follows = rid;
	}
	sp->parent_id = child_of ? child_of : follows;
	if (!sp->parent_id) {
		const char *p = json_string_value(json_object_get(s, "parentSpanID"));
		if (p && p[strspn(p, "0")] != '\0')
			sp->parent_id = p;
	}
	return span_node(j, trace, s, sid, &sp->ep, w);
}

/* ---- checking and mapping one trace ---- */

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct span *)a)->id, ((const struct span *)b)->id);
}

static long find_span(const struct span *sp, size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sp[mid].id, id);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Parents resolved, duplicates and cycles refused. */
static int link_spans(struct span *sp, size_t n, struct why *w)
{
	qsort(sp, n, sizeof(*sp), by_id);
	for (size_t i = 1; i < n; i++)
		if (strcmp(sp[i - 1].id, sp[i].id) == 0)
			return fail(w, "duplicate span id %.40s", sp[i].id);
	for (size_t i = 0; i < n; i++) {
		if (!sp[i].parent_id)
			continue;
		sp[i].parent = find_span(sp, n, sp[i].parent_id);
		if (sp[i].parent < 0)
			return fail(w, "span %.40s: parent %.40s is not in the trace",
				    sp[i].id, sp[i].parent_id);
	}
	for (size_t i = 0; i < n; i++) {
		long x = (long)i;
		while (x >= 0 && sp[x].state == 0) {
			sp[x].state = 1;
			x = sp[x].parent;
		}
		if (x >= 0 && sp[x].state == 1)
			return fail(w, "span %.40s: its parents form a cycle", sp[x].id);
		for (x = (long)i; x >= 0 && sp[x].state == 1; x = sp[x].parent)
			sp[x].state = 2;
	}
	return 0;
}

/* The request a call made by span x answers to: the nearest server span
 * at or above x on x's node; none if the chain leaves the node first.
 * Memoised in up[] (-2 = not known yet) so that deep chains stay linear. */
static long parent_call(struct span *sp, long *up, long x)
{
	long y = x, res;
	for (;;) { /* find the answer at the top of the unknown stretch */
		if (up[y] != -2) {
			res = up[y];
			break;
		}
		if (sp[y].kind == SK_SERVER) {
			res = sp[y].call;
			break;
		}
		long p = sp[y].parent;
		if (p < 0 || sp[p].ep != sp[y].ep) {
			res = -1;
			break;
		}
		y = p;
	}
	for (long z = x; z != y; z = sp[z].parent) /* fill in the stretch */
		up[z] = res;
	up[y] = res;
	return res;
}

struct trace_out {
	struct tj_call *calls;
	long *made_by; /* span that made each call (for messages) */
	long *up;      /* parent_call()'s memo */
	size_t n;
	uint64_t roots, synth, unseen, nested, skewed, late, inferred;
};

/* Kinds for spans that do not say (older C++ and Go tracers write no
 * span.kind).  A span whose parent lies in another process is how that
 * process received the call: its server span (the caller's client side is
 * then synthesised, as for any server span without a client parent).  A
 * root is a server span too when the trace tags no span at all (with
 * tags elsewhere in the trace, an untagged root is background work, as
 * under --kinds tags).  Any other span is in-process work. */
static void infer_kinds(const struct tj_jaeger *j, struct span *sp, size_t n,
			struct trace_out *o)
{
	unsigned mode = j->opts.kinds;
	if (mode == TJ_IMPORT_KINDS_TAGS)
		return;
	int trace_tagged = 0;
	for (size_t i = 0; i < n && mode == TJ_IMPORT_KINDS_AUTO; i++)
		trace_tagged |= sp[i].tagged;
	for (size_t i = 0; i < n; i++) {
		if (mode == TJ_IMPORT_KINDS_AUTO && sp[i].tagged)
			continue;
		long p = sp[i].parent;
		int server = p >= 0 ? sp[p].ep != sp[i].ep
				    : mode == TJ_IMPORT_KINDS_INFER || !trace_tagged;
		sp[i].kind = server ? SK_SERVER : SK_OTHER;
		o->inferred += server;
	}
}

static int map_trace(struct tj_jaeger *j, struct span *sp, size_t n,
		     struct trace_out *o, struct why *w)
{
	infer_kinds(j, sp, n, o);
	/* A server span under a same-node span that is not a client is an
	 * in-process layer (middleware), not a network request. */
	for (size_t i = 0; i < n; i++) {
		long p = sp[i].parent;
		if (sp[i].kind == SK_SERVER && p >= 0 && sp[p].ep == sp[i].ep &&
		    sp[p].kind != SK_CLIENT) {
			sp[i].kind = SK_OTHER;
			o->nested++;
		}
	}
	/* A client span is joined with its earliest server child. */
	for (size_t i = 0; i < n; i++) {
		long p = sp[i].parent;
		if (sp[i].kind == SK_SERVER && p >= 0 && sp[p].kind == SK_CLIENT &&
		    (sp[p].paired < 0 || sp[i].start < sp[sp[p].paired].start))
			sp[p].paired = (long)i;
	}
	size_t nc = 0;
	for (size_t i = 0; i < n; i++)
		if (sp[i].kind == SK_SERVER ||
		    (sp[i].kind == SK_CLIENT && sp[i].paired < 0))
			sp[i].call = (long)nc++;
	o->calls = calloc(nc ? nc : 1, sizeof(*o->calls));
	o->made_by = calloc(nc ? nc : 1, sizeof(*o->made_by));
	long *up = o->up = malloc(n * sizeof(*up));
	if (!o->calls || !o->made_by || !up)
		return -1;
	for (size_t i = 0; i < n; i++)
		up[i] = -2;
	o->n = nc;
	int64_t outside = -1;
	for (size_t i = 0; i < n; i++) {
		struct span *s = &sp[i];
		if (s->call < 0)
			continue;
		struct tj_call *c = &o->calls[s->call];
		long p = s->parent, from;
		if (s->kind == SK_SERVER) {
			c->callee = s->ep;
			c->s_start = s->start;
			c->s_end = s->end;
			if (p < 0) { /* a root request: its caller is outside */
				if (outside < 0 &&
				    (outside = tj_jaeger_endpoint(j, TJ_EP_OUTSIDE, "outside")) < 0)
					return -1;
				c->caller = (uint32_t)outside;
				c->c_start = s->start;
				c->c_end = s->end;
				c->parent = -1;
				o->made_by[s->call] = (long)i;
				o->roots++;
				continue;
			}
			c->caller = sp[p].ep;
			if (sp[p].kind == SK_CLIENT && sp[p].paired == (long)i) {
				c->c_start = sp[p].start;
				c->c_end = sp[p].end;
				o->made_by[s->call] = p;
				if (s->start < c->c_start || s->end > c->c_end)
					o->skewed++;
			} else { /* no client span: the caller's side is made up */
				c->c_start = s->start;
				c->c_end = s->end;
				o->made_by[s->call] = (long)i;
				o->synth++;
			}
			from = p;
		} else { /* a client span nobody answered: a peer outside */
			char name[300];
			snprintf(name, sizeof(name), "%.290s", s->peer ? s->peer : "?");
			int64_t e = tj_jaeger_endpoint(j, TJ_EP_PEER, name);
			if (e < 0)
				return -1;
			c->caller = s->ep;
			c->callee = (uint32_t)e;
			c->c_start = c->s_start = s->start;
			c->c_end = c->s_end = s->end;
			from = (long)i;
			o->made_by[s->call] = (long)i;
			o->unseen++;
		}
		/* The caller is the node of the span that made the call. */
		c->parent = parent_call(sp, up, from);
	}
	/* On one node all times are one clock: a call cannot start before
	 * the request that caused it. */
	for (size_t k = 0; k < nc; k++) {
		struct tj_call *c = &o->calls[k];
		if (c->parent < 0)
			continue;
		const struct tj_call *pc = &o->calls[c->parent];
		if (c->c_start < pc->s_start) {
			long ps = o->made_by[c->parent];
			for (size_t i = 0; i < n; i++) /* the parent's server span */
				if (sp[i].call == c->parent)
					ps = (long)i;
			return fail(w, "span %.40s starts before its parent request (span %.40s) on %s",
				    sp[o->made_by[k]].id, sp[ps].id,
				    j->eps[c->caller].name);
		}
		if (c->c_end > pc->s_end)
			o->late++;
	}
	return 0;
}

static int append_calls(struct tj_jaeger *j, const struct trace_out *o)
{
	if (j->ncalls + o->n > j->capcalls) {
		size_t cap = j->capcalls ? j->capcalls : 1024;
		while (cap < j->ncalls + o->n)
			cap *= 2;
		struct tj_call *c = realloc(j->calls, cap * sizeof(*c));
		if (!c)
			return -1;
		j->calls = c;
		j->capcalls = cap;
	}
	int64_t base = (int64_t)j->ncalls;
	for (size_t k = 0; k < o->n; k++) {
		struct tj_call c = o->calls[k];
		if (c.parent >= 0)
			c.parent += base;
		j->calls[j->ncalls++] = c;
	}
	j->st.calls += o->n;
	j->st.root_requests += o->roots;
	j->st.synth_callers += o->synth;
	j->st.unseen_callees += o->unseen;
	j->st.nested_servers += o->nested;
	j->st.inferred_servers += o->inferred;
	j->st.skewed += o->skewed;
	j->st.late_calls += o->late;
	return 0;
}

/* 0 imported or skipped (warned), -1 out of memory. */
static int read_trace(struct tj_jaeger *j, const char *file, size_t ti,
		      json_t *trace)
{
	char tname[64];
	const char *tid = json_string_value(json_object_get(trace, "traceID"));
	if (tid && *tid)
		snprintf(tname, sizeof(tname), "trace %.40s", tid);
	else
		snprintf(tname, sizeof(tname), "trace #%zu", ti);

	struct why w = { "" };
	struct trace_out o = { 0 };
	struct span *sp = NULL;
	int rc = 0;
	json_t *spans = json_object_get(trace, "spans");
	size_t n = json_array_size(spans);
	if (!json_is_array(spans)) {
		rc = fail(&w, "no spans array");
		goto out;
	}
	if (n == 0) {
		rc = fail(&w, "no spans");
		goto out;
	}
	if (!(sp = calloc(n, sizeof(*sp)))) {
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = read_span(j, trace, json_array_get(spans, i), i, &sp[i], &w);
	if (rc == 0)
		rc = link_spans(sp, n, &w);
	if (rc == 0)
		rc = map_trace(j, sp, n, &o, &w);
	if (rc == 0)
		rc = append_calls(j, &o);
	if (rc == 0) {
		j->st.traces++;
		j->st.spans += n;
	}
out:
	if (rc > 0) {
		j->st.traces_skipped++;
		warnf(j, "%s: %s skipped: %s", file, tname, w.text);
		rc = 0;
	}
	free(sp);
	free(o.calls);
	free(o.made_by);
	free(o.up);
	return rc;
}

int tj_jaeger_add_buffer(struct tj_jaeger *j, const char *name,
			 const char *data, size_t len, struct tj_err *err)
{
	j->st.files++;
	size_t i = 0;
	while (i < len && strchr(" \t\r\n", data[i]) && data[i])
		i++;
	if (i == len) {
		j->st.files_refused++;
		warnf(j, "%s: empty file, refused", name);
		return 0;
	}
	json_error_t je;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		j->st.files_refused++;
		warnf(j, "%s: line %d, column %d: not JSON (%s), refused", name,
		      je.line, je.column, je.text);
		return 0;
	}
	int rc = 0;
	json_t *traces = json_object_get(root, "data");
	if (json_is_array(traces)) {
		if (json_array_size(traces) == 0) {
			j->st.files_refused++;
			warnf(j, "%s: \"data\" holds no traces, refused", name);
		}
		size_t ti;
		json_t *t;
		json_array_foreach(traces, ti, t) {
			if (!json_is_object(t)) {
				j->st.traces_skipped++;
				warnf(j, "%s: trace #%zu skipped: not an object", name, ti);
				continue;
			}
			if ((rc = read_trace(j, name, ti, t)) < 0)
				break;
		}
	} else if (json_is_object(root) && json_object_get(root, "spans")) {
		rc = read_trace(j, name, 0, root); /* a bare trace object */
	} else {
		j->st.files_refused++;
		warnf(j, "%s: not Jaeger JSON (no \"data\" array of traces), refused",
		      name);
	}
	json_decref(root);
	if (rc < 0)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
	return 0;
}

int tj_jaeger_add_file(struct tj_jaeger *j, const char *path,
		       struct tj_err *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 1 << 16;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				rc = tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
				break;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				rc = tj_errf(err, TJ_E_IO, "%s: read error: %s", path,
					     strerror(errno));
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (rc == 0)
		rc = tj_jaeger_add_buffer(j, path, buf ? buf : "", len, err);
	free(buf);
	return rc;
}
