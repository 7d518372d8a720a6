/* Jaeger import: spans -> events and labels, on hand-written traces whose
 * labels are known, and bad inputs refused with counted warnings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "../../datasets/import/import.h"

/* ---- building trace JSON ---- */

struct buf {
	char s[16384];
	size_t n;
	int spans; /* spans in the current trace */
	int traces;
};

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(b->s) - b->n);
	b->n += (size_t)n;
}

static void begin(struct buf *b)
{
	b->n = 0;
	b->traces = 0;
	put(b, "{\"data\":[");
}

static void trace_begin(struct buf *b, const char *id)
{
	put(b, "%s{\"traceID\":\"%s\",\"spans\":[", b->traces++ ? "," : "", id);
	b->spans = 0;
}

/* kind: "server", "client" or NULL; parent NULL for a root; process
 * p1..p9 name services s1..s9 ("p0" is missing). */
static void span(struct buf *b, const char *id, const char *parent,
		 const char *proc, const char *kind, long start, long dur)
{
	put(b, "%s{\"spanID\":\"%s\",\"operationName\":\"op\",\"references\":[",
	    b->spans++ ? "," : "", id);
	if (parent)
		put(b, "{\"refType\":\"CHILD_OF\",\"spanID\":\"%s\"}", parent);
	put(b, "],\"startTime\":%ld,\"duration\":%ld,\"tags\":[", start, dur);
	if (kind)
		put(b, "{\"key\":\"span.kind\",\"type\":\"string\",\"value\":\"%s\"}", kind);
	put(b, "],\"processID\":\"%s\"}", proc);
}

static void trace_end(struct buf *b)
{
	put(b, "],\"processes\":{");
	for (int i = 1; i <= 9; i++)
		put(b, "%s\"p%d\":{\"serviceName\":\"s%d\",\"tags\":[]}", i > 1 ? "," : "", i, i);
	put(b, "}}");
}

static void end(struct buf *b)
{
	put(b, "]}");
}

/* ---- running the importer ---- */

struct run {
	struct tj_jaeger *j;
	struct tj_import_result r;
	const struct tj_jaeger_stats *st;
	char last_warning[TJ_ERRMSG_MAX];
	int built;
};

static void keep_warning(void *ctx, const char *msg)
{
	struct run *r = ctx;
	snprintf(r->last_warning, sizeof(r->last_warning), "%s", msg);
}

static void start_kinds(struct run *run, unsigned keepalive, unsigned kinds)
{
	memset(run, 0, sizeof(*run));
	struct tj_jaeger_opts o = { .keepalive = keepalive, .kinds = kinds,
				    .warn = keep_warning, .warn_ctx = run };
	struct tj_err err;
	assert_int_equal(tj_jaeger_new(&run->j, &o, &err), 0);
	run->st = tj_jaeger_stats(run->j);
}

static void add(struct run *run, const char *name, const char *text)
{
	struct tj_err err;
	assert_int_equal(tj_jaeger_add_buffer(run->j, name, text, strlen(text), &err), 0);
}

static int build(struct run *run)
{
	struct tj_err err;
	int rc = tj_jaeger_build(run->j, &run->r, &err);
	run->built = rc == 0;
	return rc;
}

static void finish(struct run *run)
{
	if (run->built)
		tj_import_result_free(&run->r);
	tj_jaeger_free(run->j);
}

static const char *label(struct run *run, size_t i, char *out)
{
	char a[TJ_MSGKEY_STRLEN], p[TJ_MSGKEY_STRLEN];
	const struct tj_edge *e = &run->r.labels.edges[i];
	sprintf(out, "%s,%s", tj_msgkey_format(&e->child, a),
		e->has_parent ? tj_msgkey_format(&e->parent, p) : "");
	return out;
}

static const struct tj_import_node *node(struct run *run, const char *name)
{
	for (size_t k = 0; k < run->r.nnodes; k++)
		if (strcmp(run->r.nodes[k].name, name) == 0)
			return &run->r.nodes[k];
	fail_msg("no node %s", name);
	return NULL;
}

/* Events of every node in time order, offsets growing per socket. */
static void check_order(struct run *run)
{
	for (size_t k = 0; k < run->r.nnodes; k++) {
		const struct tj_import_node *n = &run->r.nodes[k];
		for (size_t i = 1; i < n->nevents; i++)
			assert_true(n->events[i - 1].ts_ns <= n->events[i].ts_ns);
		for (size_t i = 0; i < n->nevents; i++) {
			assert_int_equal(n->events[i].node, n->id);
			assert_int_equal(n->events[i].tid, TJ_TID_UNKNOWN);
			assert_int_equal(n->events[i].pid, TJ_IMPORT_PID_BASE + n->id);
		}
	}
}

static const struct tj_event *find_event(const struct tj_import_node *n,
					 unsigned type, uint64_t sock,
					 uint64_t offset)
{
	for (size_t i = 0; i < n->nevents; i++)
		if (n->events[i].type == type && n->events[i].sock == sock &&
		    n->events[i].offset == offset)
			return &n->events[i];
	return NULL;
}

static void start(struct run *run, unsigned keepalive)
{
	start_kinds(run, keepalive, TJ_IMPORT_KINDS_AUTO);
}

/* ---- known traces ---- */

/* s1 (front) serves a root request, calls s2 with a client span; s2
 * serves it and calls s3 twice.  Times in microseconds. */
static void test_chain_with_client_spans(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "t1");
	span(&b, "a", NULL, "p1", "server", 1000, 100);
	span(&b, "b", "a", "p1", "client", 1010, 80);
	span(&b, "c", "b", "p2", "server", 1012, 70);
	span(&b, "d", "c", "p2", "client", 1020, 10);
	span(&b, "e", "d", "p3", "server", 1021, 8);
	span(&b, "f", "c", "p2", "client", 1040, 10);
	span(&b, "g", "f", "p3", "server", 1041, 8);
	trace_end(&b);
	end(&b);
	struct run run;
	start(&run, 0);
	add(&run, "chain.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->traces, 1);
	assert_int_equal(run.st->spans, 7);
	assert_int_equal(run.st->warnings, 0);
	assert_int_equal(run.r.nnodes, 3);
	assert_string_equal(run.r.nodes[0].name, "s1");
	/* s1: accept+recv+send+close for the root, connect+send+recv+close
	 * for the call; s2: 4 + 2*4; s3: 2*4. */
	assert_int_equal(node(&run, "s1")->nevents, 8);
	assert_int_equal(node(&run, "s2")->nevents, 12);
	assert_int_equal(node(&run, "s3")->nevents, 8);
	assert_int_equal(run.st->labels, 3);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:2:out:0,1:1:in:0");
	assert_string_equal(label(&run, 1, l), "2:2:out:0,2:1:in:0");
	assert_string_equal(label(&run, 2, l), "2:3:out:0,2:1:in:0");
	check_order(&run);

	/* The two ends of s1 -> s2 are one connection: same addresses,
	 * ports and offsets; times from each side's own span. */
	const struct tj_event *cs = find_event(node(&run, "s1"), TJ_EV_SEND, 2, 0);
	const struct tj_event *sr = find_event(node(&run, "s2"), TJ_EV_RECV, 1, 0);
	assert_non_null(cs);
	assert_non_null(sr);
	assert_int_equal(cs->family, AF_INET);
	assert_memory_equal(cs->laddr, sr->raddr, 16);
	assert_memory_equal(cs->raddr, sr->laddr, 16);
	assert_int_equal(cs->lport, sr->rport);
	assert_int_equal(cs->rport, sr->lport);
	assert_int_equal(cs->rport, TJ_IMPORT_SERVER_PORT);
	assert_true(cs->lport >= TJ_IMPORT_EPHEMERAL_LO);
	assert_int_equal(cs->ts_ns, 1010000);
	assert_int_equal(sr->ts_ns, 1012000);
	assert_int_equal(cs->bytes, TJ_IMPORT_MSG_BYTES);
	const struct tj_event *rr = find_event(node(&run, "s1"), TJ_EV_RECV, 2, 0);
	assert_non_null(rr);
	assert_int_equal(rr->ts_ns, 1090000); /* the client span's end */
	/* The two calls from s2 to s3 use different client ports. */
	const struct tj_event *c1 = find_event(node(&run, "s2"), TJ_EV_SEND, 2, 0);
	const struct tj_event *c2 = find_event(node(&run, "s2"), TJ_EV_SEND, 3, 0);
	assert_non_null(c1);
	assert_non_null(c2);
	assert_int_not_equal(c1->lport, c2->lport);
	finish(&run);
}

/* The Node.js shape: no client spans but the root's; each server span's
 * parent is the server span of its caller. */
static void test_missing_client_spans(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "t2");
	span(&b, "r", NULL, "p1", "client", 1000, 50);
	span(&b, "a", "r", "p2", "server", 1001, 40);
	span(&b, "b", "a", "p3", "server", 1005, 10);
	span(&b, "c", "a", "p4", "server", 1020, 10);
	trace_end(&b);
	end(&b);
	struct run run;
	start(&run, 0);
	add(&run, "node.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->synth_callers, 2);
	assert_int_equal(run.st->labels, 3);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:1:out:0,");  /* the root call */
	assert_string_equal(label(&run, 1, l), "2:2:out:0,2:1:in:0");
	assert_string_equal(label(&run, 2, l), "2:3:out:0,2:1:in:0");
	/* The made-up calls on s2 run at the child server spans' times. */
	const struct tj_event *c = find_event(node(&run, "s2"), TJ_EV_SEND, 3, 0);
	assert_non_null(c);
	assert_int_equal(c->ts_ns, 1020000);
	check_order(&run);
	finish(&run);
}

/* Internal spans between a server span and a client span are walked
 * through; a server span nested in a server span of the same service is
 * an in-process layer; a client span nobody answered calls a peer. */
static void test_internal_nested_and_unseen(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "t3");
	span(&b, "a", NULL, "p1", "server", 1000, 100);
	span(&b, "m", "a", "p1", "server", 1001, 98);     /* middleware */
	span(&b, "i", "m", "p1", NULL, 1002, 90);         /* internal */
	span(&b, "c", "i", "p1", "client", 1003, 20);     /* unanswered */
	trace_end(&b);
	end(&b);
	struct run run;
	start(&run, 0);
	add(&run, "t3.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->nested_servers, 1);
	assert_int_equal(run.st->unseen_callees, 1);
	assert_int_equal(run.r.nnodes, 1);
	assert_int_equal(run.st->labels, 1);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:2:out:0,1:1:in:0");
	/* One root request and one call: 4 events each. */
	assert_int_equal(run.r.nodes[0].nevents, 8);
	finish(&run);
}

/* Two sequential calls s1 -> s2 and one overlapping the second. */
static void keepalive_input(struct buf *b)
{
	begin(b);
	long t[3] = { 1000, 2000, 2005 };
	const char *ids[3][2] = { { "a1", "b1" }, { "a2", "b2" }, { "a3", "b3" } };
	for (int i = 0; i < 3; i++) {
		char tid[8];
		snprintf(tid, sizeof(tid), "k%d", i);
		trace_begin(b, tid);
		span(b, ids[i][0], NULL, "p1", "client", t[i], 50);
		span(b, ids[i][1], ids[i][0], "p2", "server", t[i] + 1, 48);
		trace_end(b);
	}
	end(b);
}

static void test_keepalive(void **state)
{
	(void)state;
	struct buf b;
	keepalive_input(&b);
	char l[200];

	struct run run;
	start(&run, 0); /* a connection per call */
	add(&run, "k.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->connections, 3);
	assert_string_equal(label(&run, 2, l), "1:3:out:0,");
	finish(&run);

	start(&run, 1); /* one pooled connection: the third call overflows */
	add(&run, "k.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->connections, 2);
	assert_int_equal(run.st->overflow_conns, 1);
	assert_string_equal(label(&run, 0, l), "1:1:out:0,");
	assert_string_equal(label(&run, 1, l), "1:1:out:100,");
	assert_string_equal(label(&run, 2, l), "1:2:out:0,");
	/* The reused socket: one connect, one close, the second request at
	 * offset 100 on both ends. */
	const struct tj_import_node *s1 = node(&run, "s1"), *s2 = node(&run, "s2");
	int connects = 0;
	for (size_t i = 0; i < s1->nevents; i++)
		connects += s1->events[i].type == TJ_EV_CONNECT;
	assert_int_equal(connects, 2);
	const struct tj_event *c = find_event(s1, TJ_EV_SEND, 1, 100);
	const struct tj_event *s = find_event(s2, TJ_EV_RECV, 1, 100);
	assert_non_null(c);
	assert_non_null(s);
	assert_int_equal(c->lport, s->rport);
	assert_int_equal(c->ts_ns, 2000000);
	check_order(&run);
	finish(&run);

	start(&run, 2); /* two pooled: no overflow */
	add(&run, "k.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->connections, 2);
	assert_int_equal(run.st->overflow_conns, 0);
	finish(&run);
}

/* The same traces read in another order give the same dataset. */
static void test_deterministic(void **state)
{
	(void)state;
	struct buf x, y;
	begin(&x);
	trace_begin(&x, "x");
	span(&x, "a", NULL, "p1", "server", 1000, 100);
	span(&x, "b", "a", "p1", "client", 1010, 50);
	span(&x, "c", "b", "p2", "server", 1011, 40);
	trace_end(&x);
	end(&x);
	begin(&y);
	trace_begin(&y, "y");
	span(&y, "c", "b", "p2", "server", 1031, 40); /* children first */
	span(&y, "b", "a", "p1", "client", 1030, 50);
	span(&y, "a", NULL, "p1", "server", 1020, 100);
	trace_end(&y);
	end(&y);
	struct run r1, r2;
	start(&r1, 0);
	add(&r1, "x", x.s);
	add(&r1, "y", y.s);
	assert_int_equal(build(&r1), 0);
	start(&r2, 0);
	add(&r2, "y", y.s);
	add(&r2, "x", x.s);
	assert_int_equal(build(&r2), 0);
	assert_int_equal(r1.r.nnodes, r2.r.nnodes);
	for (size_t k = 0; k < r1.r.nnodes; k++) {
		assert_int_equal(r1.r.nodes[k].nevents, r2.r.nodes[k].nevents);
		assert_memory_equal(r1.r.nodes[k].events, r2.r.nodes[k].events,
				    r1.r.nodes[k].nevents * sizeof(struct tj_event));
	}
	assert_int_equal(r1.r.labels.n, 2);
	char l1[200], l2[200];
	for (size_t i = 0; i < r1.r.labels.n; i++)
		assert_string_equal(label(&r1, i, l1), label(&r2, i, l2));
	finish(&r1);
	finish(&r2);
}

/* ---- bad input ---- */

struct bad_case {
	const char *what;
	const char *text;
	const char *warning; /* a piece of the expected warning */
	int file_refused;
};

#define P "\"processes\":{\"p1\":{\"serviceName\":\"s1\"},\"p2\":{\"serviceName\":\"s2\"}}"
#define SP(id, ref, proc, kind, start, dur)                                      \
	"{\"spanID\":\"" id "\",\"references\":[" ref "],\"startTime\":" start     \
	",\"duration\":" dur ",\"tags\":[{\"key\":\"span.kind\",\"value\":\"" kind \
	"\"}],\"processID\":\"" proc "\"}"
#define REF(id) "{\"refType\":\"CHILD_OF\",\"spanID\":\"" id "\"}"

static const struct bad_case bad_cases[] = {
	{ "malformed JSON", "{\"data\":[{\"traceID\":", "not JSON", 1 },
	{ "empty file", "", "empty file", 1 },
	{ "blank file", " \n\t\n", "empty file", 1 },
	{ "not Jaeger", "[1,2,3]", "not Jaeger", 1 },
	{ "no traces", "{\"data\":[]}", "no traces", 1 },
	{ "trace not an object", "{\"data\":[42]}", "not an object", 0 },
	{ "no spans", "{\"data\":[{\"traceID\":\"t\",\"spans\":[]," P "}]}", "no spans", 0 },
	{ "missing parent",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", REF("zz"), "p1", "server", "10", "5")
	  "]," P "}]}", "parent zz is not in the trace", 0 },
	{ "cycle",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", REF("b"), "p1", "server", "10", "5")
	  "," SP("b", REF("a"), "p2", "server", "11", "2") "]," P "}]}", "cycle", 0 },
	{ "self parent",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", REF("a"), "p1", "server", "10", "5")
	  "]," P "}]}", "cycle", 0 },
	{ "duplicate span id",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", "", "p1", "server", "10", "5")
	  "," SP("a", "", "p1", "server", "11", "2") "]," P "}]}", "duplicate span id a", 0 },
	{ "call before its parent request",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", "", "p1", "server", "10", "5")
	  "," SP("b", REF("a"), "p1", "client", "9", "2") "," SP("c", REF("b"), "p2", "server", "10", "1")
	  "]," P "}]}", "starts before its parent request", 0 },
	{ "string startTime",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", "", "p1", "server", "\"10\"", "5")
	  "]," P "}]}", "startTime is not an integer", 0 },
	{ "real duration",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", "", "p1", "server", "10", "5.5")
	  "]," P "}]}", "duration is not an integer", 0 },
	{ "negative duration",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", "", "p1", "server", "10", "-5")
	  "]," P "}]}", "out of range", 0 },
	{ "time beyond 2262",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", "", "p1", "server", "9223372036854775", "5")
	  "]," P "}]}", "2262", 0 },
	{ "unknown process",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[" SP("a", "", "p7", "server", "10", "5")
	  "]," P "}]}", "process p7 is not in processes", 0 },
	{ "references not an array",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[{\"spanID\":\"a\",\"references\":7,"
	  "\"startTime\":1,\"duration\":1,\"processID\":\"p1\"}]," P "}]}", "references is not an array", 0 },
	{ "reference without spanID",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[{\"spanID\":\"a\",\"references\":[{\"refType\":\"CHILD_OF\"}],"
	  "\"startTime\":1,\"duration\":1,\"processID\":\"p1\"}]," P "}]}", "lacks refType or spanID", 0 },
	{ "span without id",
	  "{\"data\":[{\"traceID\":\"t\",\"spans\":[{\"startTime\":1,\"duration\":1,\"processID\":\"p1\"}]," P "}]}",
	  "has no spanID", 0 },
	{ "duplicate JSON key", "{\"data\":[], \"data\":[]}", "not JSON", 1 },
};

#define GOOD "{\"data\":[{\"traceID\":\"ok\",\"spans\":[" SP("a", "", "p1", "server", "10", "5") "]," P "}]}"

static void test_bad_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct run run;
		start(&run, 0);
		add(&run, "bad.json", c->text);
		add(&run, "good.json", GOOD);
		if (run.st->warnings != 1 || !strstr(run.last_warning, c->warning) ||
		    !strstr(run.last_warning, "bad.json"))
			fail_msg("%s: %llu warnings, last '%s'", c->what,
				 (unsigned long long)run.st->warnings, run.last_warning);
		assert_int_equal(run.st->files_refused, c->file_refused);
		assert_int_equal(run.st->traces_skipped, c->file_refused ? 0 : 1);
		/* The good file still comes in. */
		assert_int_equal(run.st->traces, 1);
		assert_int_equal(build(&run), 0);
		assert_int_equal(run.r.nnodes, 1);
		finish(&run);
	}
}

/* A trace warning names the trace; a skipped trace leaves the others of
 * its file alone; nothing at all to import is an error. */
static void test_skip_one_trace_of_many(void **state)
{
	(void)state;
	const char *text = "{\"data\":["
		"{\"traceID\":\"good1\",\"spans\":[" SP("a", "", "p1", "server", "10", "5") "]," P "},"
		"{\"traceID\":\"broken\",\"spans\":[" SP("a", REF("q"), "p1", "server", "10", "5") "]," P "},"
		"{\"traceID\":\"good2\",\"spans\":[" SP("a", "", "p2", "server", "10", "5") "]," P "}]}";
	struct run run;
	start(&run, 0);
	add(&run, "many.json", text);
	assert_int_equal(run.st->traces, 2);
	assert_int_equal(run.st->traces_skipped, 1);
	assert_non_null(strstr(run.last_warning, "trace broken"));
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.r.nnodes, 2);
	finish(&run);

	start(&run, 0);
	add(&run, "bad.json", "{");
	assert_true(build(&run) < 0);
	finish(&run);
}

/* Older exports: the parent as parentSpanID, the process inline; and
 * FOLLOWS_FROM when there is no CHILD_OF. */
static void test_other_shapes(void **state)
{
	(void)state;
	const char *text = "{\"traceID\":\"bare\",\"spans\":["
		"{\"spanID\":\"a\",\"parentSpanID\":\"0\",\"startTime\":10,\"duration\":10,"
		"\"tags\":[{\"key\":\"span.kind\",\"value\":\"server\"}],"
		"\"process\":{\"serviceName\":\"front\"}},"
		"{\"spanID\":\"b\",\"parentSpanID\":\"a\",\"startTime\":11,\"duration\":5,"
		"\"tags\":[{\"key\":\"span.kind\",\"value\":\"client\"},{\"key\":\"peer.service\",\"value\":\"db\"}],"
		"\"process\":{\"serviceName\":\"front\"}},"
		"{\"spanID\":\"c\",\"references\":[{\"refType\":\"FOLLOWS_FROM\",\"spanID\":\"a\"}],"
		"\"startTime\":12,\"duration\":5,"
		"\"tags\":[{\"key\":\"span.kind\",\"value\":\"client\"}],"
		"\"process\":{\"serviceName\":\"front\"}}]}";
	struct run run;
	start(&run, 0);
	add(&run, "bare.json", text);
	assert_int_equal(run.st->warnings, 0);
	assert_int_equal(run.st->traces, 1);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->unseen_callees, 2);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:2:out:0,1:1:in:0");
	assert_string_equal(label(&run, 1, l), "1:3:out:0,1:1:in:0");
	finish(&run);
}

/* One client span answered by two server spans (a retry, a broadcast):
 * the earliest is its own, the other gets a made-up call from the same
 * node under the same parent request. */
static void test_two_server_children(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "t4");
	span(&b, "a", NULL, "p1", "server", 1000, 100);
	span(&b, "c", "a", "p1", "client", 1010, 50);
	span(&b, "s2", "c", "p2", "server", 1030, 10); /* later: made up */
	span(&b, "s1", "c", "p2", "server", 1011, 10); /* earliest: c's own */
	trace_end(&b);
	end(&b);
	struct run run;
	start(&run, 0);
	add(&run, "t4.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->synth_callers, 1);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:2:out:0,1:1:in:0");
	assert_string_equal(label(&run, 1, l), "1:3:out:0,1:1:in:0");
	const struct tj_event *own = find_event(node(&run, "s1"), TJ_EV_SEND, 2, 0);
	const struct tj_event *made = find_event(node(&run, "s1"), TJ_EV_SEND, 3, 0);
	assert_non_null(own);
	assert_non_null(made);
	assert_int_equal(own->ts_ns, 1010000);  /* the client span's start */
	assert_int_equal(made->ts_ns, 1030000); /* the second server span's */
	finish(&run);
}

/* A pooled connection is reused only when free at both ends: here the
 * client has its response but the server (its own clock) has not sent
 * it yet when the next request arrives, so a second connection opens. */
static void test_pool_busy_at_server(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "x1");
	span(&b, "a1", NULL, "p1", "client", 1000, 50);
	span(&b, "b1", "a1", "p2", "server", 1001, 70); /* ends at 1071 */
	trace_end(&b);
	trace_begin(&b, "x2");
	span(&b, "a2", NULL, "p1", "client", 1060, 50);
	span(&b, "b2", "a2", "p2", "server", 1061, 10);
	trace_end(&b);
	end(&b);
	struct run run;
	start(&run, 2);
	add(&run, "x.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->connections, 2);
	assert_int_equal(run.st->skewed, 1);
	char l[200];
	assert_string_equal(label(&run, 1, l), "1:2:out:0,");
	check_order(&run);
	finish(&run);
}

/* ---- traces without span.kind ---- */

/* The chain of test_chain_with_client_spans as an old tracer writes it:
 * no span.kind anywhere, an internal span where the client span was. */
static void no_kinds_chain(struct buf *b)
{
	begin(b);
	trace_begin(b, "k1");
	span(b, "a", NULL, "p1", NULL, 1000, 100);
	span(b, "i", "a", "p1", NULL, 1005, 80);  /* in-process: same service */
	span(b, "b", "i", "p2", NULL, 1010, 60);  /* s2 serves s1's call */
	span(b, "j", "b", "p2", NULL, 1015, 40);
	span(b, "c", "j", "p3", NULL, 1020, 10);
	span(b, "d", "j", "p3", NULL, 1040, 10);
	trace_end(b);
	end(b);
}

static void test_kinds_inferred(void **state)
{
	(void)state;
	struct buf b;
	no_kinds_chain(&b);
	struct run run;
	start(&run, 0); /* auto */
	add(&run, "k1.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->warnings, 0);
	assert_int_equal(run.st->inferred_servers, 4); /* a (root), b, c, d */
	assert_int_equal(run.st->root_requests, 1);
	assert_int_equal(run.st->synth_callers, 3);
	assert_int_equal(run.st->labels, 3);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:2:out:0,1:1:in:0");
	assert_string_equal(label(&run, 1, l), "2:2:out:0,2:1:in:0");
	assert_string_equal(label(&run, 2, l), "2:3:out:0,2:1:in:0");
	/* The caller's side is made up at the callee's span times. */
	const struct tj_event *cs = find_event(node(&run, "s1"), TJ_EV_SEND, 2, 0);
	assert_non_null(cs);
	assert_int_equal(cs->ts_ns, 1010000);
	/* The internal spans made no events: s1 has the root and one call. */
	assert_int_equal(node(&run, "s1")->nevents, 8);
	check_order(&run);
	finish(&run);
}

/* --kinds tags on the same traces: nothing is a network end. */
static void test_kinds_tags_refuses_untagged(void **state)
{
	(void)state;
	struct buf b;
	no_kinds_chain(&b);
	struct run run;
	start_kinds(&run, 0, TJ_IMPORT_KINDS_TAGS);
	add(&run, "k1.json", b.s);
	struct tj_err err = { 0 };
	assert_int_equal(run.st->traces, 1);
	assert_true(tj_jaeger_build(run.j, &run.r, &err) < 0);
	assert_non_null(strstr(err.msg, "no server or client span"));
	assert_non_null(strstr(err.msg, "--kinds auto"));
	assert_int_equal(run.st->inferred_servers, 0);
	finish(&run);
}

/* One service tags its spans, the next does not, the third tags again:
 * auto keeps the tags and infers only the untagged service's entry. */
static void test_kinds_mixed(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "m1");
	span(&b, "a", NULL, "p1", "server", 1000, 100);
	span(&b, "b", "a", "p1", "client", 1010, 80);
	span(&b, "c", "b", "p2", NULL, 1012, 70);     /* inferred server of b */
	span(&b, "j", "c", "p2", NULL, 1015, 50);     /* in-process */
	span(&b, "d", "j", "p3", "server", 1020, 10); /* caller side synthesised */
	span(&b, "e", "d", "p3", NULL, 1022, 5);      /* in-process */
	trace_end(&b);
	end(&b);
	struct run run;
	start(&run, 0);
	add(&run, "m1.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->inferred_servers, 1);
	assert_int_equal(run.st->synth_callers, 1);
	assert_int_equal(run.st->unseen_callees, 0); /* b is answered by c */
	assert_int_equal(run.st->labels, 2);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:2:out:0,1:1:in:0");
	assert_string_equal(label(&run, 1, l), "2:2:out:0,2:1:in:0");
	/* s1's call runs at its client span's times: b was paired with c. */
	const struct tj_event *cs = find_event(node(&run, "s1"), TJ_EV_SEND, 2, 0);
	assert_non_null(cs);
	assert_int_equal(cs->ts_ns, 1010000);
	check_order(&run);
	finish(&run);

	/* In a tagged trace an untagged root is background work, as before:
	 * its call is a root call, not the child of a made-up request. */
	begin(&b);
	trace_begin(&b, "m2");
	span(&b, "r", NULL, "p1", NULL, 1000, 100);
	span(&b, "c", "r", "p1", "client", 1010, 20);
	span(&b, "s", "c", "p2", "server", 1011, 10);
	trace_end(&b);
	end(&b);
	start(&run, 0);
	add(&run, "m2.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->inferred_servers, 0);
	assert_int_equal(run.st->root_requests, 0);
	assert_int_equal(run.st->labels, 1);
	assert_string_equal(label(&run, 0, l), "1:1:out:0,");
	finish(&run);
}

/* --kinds infer ignores the tags: client spans become in-process work
 * and every caller side is synthesised at the server span's times. */
static void test_kinds_infer_ignores_tags(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "t1");
	span(&b, "a", NULL, "p1", "server", 1000, 100);
	span(&b, "b", "a", "p1", "client", 1010, 80);
	span(&b, "c", "b", "p2", "server", 1012, 70);
	span(&b, "d", "c", "p2", "client", 1020, 10);
	span(&b, "e", "d", "p3", "server", 1021, 8);
	trace_end(&b);
	end(&b);
	struct run run;
	start_kinds(&run, 0, TJ_IMPORT_KINDS_INFER);
	add(&run, "t1.json", b.s);
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->inferred_servers, 3);
	assert_int_equal(run.st->synth_callers, 2);
	assert_int_equal(run.st->labels, 2);
	char l[200];
	assert_string_equal(label(&run, 0, l), "1:2:out:0,1:1:in:0");
	assert_string_equal(label(&run, 1, l), "2:2:out:0,2:1:in:0");
	const struct tj_event *cs = find_event(node(&run, "s1"), TJ_EV_SEND, 2, 0);
	assert_non_null(cs);
	assert_int_equal(cs->ts_ns, 1012000);
	finish(&run);

	/* Everything in one process: no call, and the message says why. */
	begin(&b);
	trace_begin(&b, "one");
	span(&b, "a", NULL, "p1", NULL, 1000, 100);
	span(&b, "b", "a", "p1", NULL, 1010, 10);
	trace_end(&b);
	end(&b);
	start_kinds(&run, 0, TJ_IMPORT_KINDS_INFER);
	add(&run, "one.json", b.s);
	assert_int_equal(build(&run), 0); /* the root is a request from outside */
	assert_int_equal(run.st->labels, 0);
	assert_int_equal(run.st->root_requests, 1);
	finish(&run);
}

/* Without kinds the checks still hold: a duplicate id or a cycle skips
 * the trace with a warning naming it, the other traces are imported. */
static void test_kinds_inferred_checks(void **state)
{
	(void)state;
	struct buf b;
	begin(&b);
	trace_begin(&b, "dup");
	span(&b, "a", NULL, "p1", NULL, 1000, 100);
	span(&b, "a", "a", "p2", NULL, 1010, 10);
	trace_end(&b);
	trace_begin(&b, "cyc");
	span(&b, "x", "y", "p1", NULL, 1000, 100);
	span(&b, "y", "x", "p2", NULL, 1010, 10);
	trace_end(&b);
	trace_begin(&b, "ok");
	span(&b, "a", NULL, "p1", NULL, 1000, 100);
	span(&b, "b", "a", "p2", NULL, 1010, 10);
	trace_end(&b);
	end(&b);
	struct run run;
	start(&run, 0);
	add(&run, "bad.json", b.s);
	assert_int_equal(run.st->traces_skipped, 2);
	assert_int_equal(run.st->warnings, 2);
	assert_non_null(strstr(run.last_warning, "bad.json: trace cyc skipped"));
	assert_non_null(strstr(run.last_warning, "cycle"));
	assert_int_equal(build(&run), 0);
	assert_int_equal(run.st->traces, 1);
	assert_int_equal(run.st->inferred_servers, 2); /* the skipped traces count nothing */
	assert_int_equal(run.st->labels, 1);
	finish(&run);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_with_client_spans),
		cmocka_unit_test(test_missing_client_spans),
		cmocka_unit_test(test_internal_nested_and_unseen),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_skip_one_trace_of_many),
		cmocka_unit_test(test_other_shapes),
		cmocka_unit_test(test_two_server_children),
		cmocka_unit_test(test_pool_busy_at_server),
		cmocka_unit_test(test_kinds_inferred),
		cmocka_unit_test(test_kinds_tags_refuses_untagged),
		cmocka_unit_test(test_kinds_mixed),
		cmocka_unit_test(test_kinds_infer_ignores_tags),
		cmocka_unit_test(test_kinds_inferred_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
