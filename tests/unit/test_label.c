/* tracejoin label: the traceparent parser and span-id rule, labeling a
 * small hand-made capture (parent through a service, through a proxy,
 * roots, a call without a visible header), payloads removed, refusals;
 * and the replay's raw_payload option and port fix the labeler needs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "datasets/label/label.h"
#include "lib/edges.h"
#include "lib/evlog.h"
#include "replay/assemble.h"
#include "test_util.h"

static char dir[64];

static int setup(void **state)
{
	return test_dir_make(dir, sizeof(dir), "test_label");
}

static int teardown(void **state)
{
	return test_dir_remove(dir);
}

/* ---- parser and rule ---- */

static void test_parse_format(void **state)
{
	struct tj_traceparent tp = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x1122334455667788ULL, 1 }, back;
	char buf[TJ_TP_STRLEN];
	tj_tp_format(&tp, buf);
	assert_string_equal(buf, "00-0123456789abcdeffedcba9876543210-1122334455667788-01");
	assert_int_equal(tj_tp_parse_value(buf, strlen(buf), &back), 0);
	assert_memory_equal(&tp, &back, sizeof(tp) - 7); /* the three ids */
	assert_int_equal(back.flags, 1);
	/* upper case hex is read too */
	assert_int_equal(tj_tp_parse_value("00-0123456789ABCDEFFEDCBA9876543210-1122334455667788-01", 55, &back), 0);
	assert_int_equal(back.trace_hi, 0x0123456789abcdefULL);

	static const char *const bad[] = {
		"00-0123456789abcdeffedcba9876543210-1122334455667788-0",   /* short */
		"ff-0123456789abcdeffedcba9876543210-1122334455667788-01",  /* version */
		"00-00000000000000000000000000000000-1122334455667788-01",  /* zero trace */
		"00-0123456789abcdeffedcba9876543210-0000000000000000-01",  /* zero span */
		"00-0123456789abcdeffedcba987654321g-1122334455667788-01",  /* hex */
		"00_0123456789abcdeffedcba9876543210-1122334455667788-01",  /* separator */
		"00-0123456789abcdeffedcba9876543210-1122334455667788-01x", /* trailing */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tj_tp_parse_value(bad[i], strlen(bad[i]), &back), -1);
}

static void test_find(void **state)
{
	struct tj_traceparent tp;
	const char *ok = "GET /x HTTP/1.1\r\nHost: a\r\nTraceParent:  00-0123456789abcdeffedcba9876543210-1122334455667788-01\r\n\r\n";
	assert_int_equal(tj_tp_find((const uint8_t *)ok, strlen(ok), &tp), 1);
	assert_int_equal(tp.span, 0x1122334455667788ULL);
	/* cut inside the value by the prefix size: not visible, not malformed */
	assert_int_equal(tj_tp_find((const uint8_t *)ok, 60, &tp), 0);
	const char *none = "GET /x HTTP/1.1\r\nHost: a\r\n\r\ntraceparent: 00-0123456789abcdeffedcba9876543210-1122334455667788-01\r\n";
	assert_int_equal(tj_tp_find((const uint8_t *)none, strlen(none), &tp), 0); /* in the body */
	const char *startline = "traceparent: 00-0123456789abcdeffedcba9876543210-1122334455667788-01\r\n";
	assert_int_equal(tj_tp_find((const uint8_t *)startline, strlen(startline), &tp), 0);
	const char *bad = "GET / HTTP/1.1\r\ntraceparent: 00-0123456789abcdeffedcba9876543210-112233445566778z-01\r\n\r\n";
	assert_int_equal(tj_tp_find((const uint8_t *)bad, strlen(bad), &tp), -1);
	assert_int_equal(tj_tp_find((const uint8_t *)"", 0, &tp), 0);
}

/* Damaged prefixes: never a crash, never a value read past the prefix. */
static void test_find_storm(void **state)
{
	const char *ok = "GET /x HTTP/1.1\r\ntraceparent: 00-0123456789abcdeffedcba9876543210-1122334455667788-01\r\nHost: a\r\n\r\n";
	size_t n = strlen(ok);
	uint64_t rng = 7;
	int found = 0;
	for (int round = 0; round < 20000; round++) {
		uint8_t *buf = malloc(n); /* exact size: ASan sees any overread */
		assert_non_null(buf);
		memcpy(buf, ok, n);
		for (int f = 0; f < 3; f++) {
			rng = tj_tp_mix(rng);
			buf[rng % n] = (uint8_t)"\r\n:- 0f9xT"[(rng >> 32) % 11];
		}
		rng = tj_tp_mix(rng);
		size_t len = rng % 4 ? n : (size_t)(rng >> 40) % (n + 1);
		struct tj_traceparent tp;
		int rc = tj_tp_find(buf, len, &tp);
		assert_true(rc >= -1 && rc <= 1);
		found += rc == 1;
		free(buf);
	}
	assert_true(found > 0);
}

static void test_span_rule(void **state)
{
	uint64_t s1 = tj_tp_server_span(1, 2, 3), s2 = tj_tp_server_span(1, 2, 4);
	assert_true(s1 != 0 && s2 != 0 && s1 != s2);
	assert_int_equal(s1, tj_tp_server_span(1, 2, 3)); /* deterministic */
	assert_true(tj_tp_server_span(1, 3, 3) != s1);
	assert_true(tj_tp_call_span(s1, 0) != tj_tp_call_span(s1, 1));
	assert_true(tj_tp_call_span(s1, 0) != s1);
	assert_true(tj_tp_call_span(s2, 0) != tj_tp_call_span(s1, 0));
}

/* ---- a hand-made capture ----
 * node 1: the load generator, calls node 2 (two requests on one socket,
 *         and one on a second socket with no header visible)
 * node 2: a service; for the first request it calls node 3 with the
 *         rule's span, and forwards the second request unchanged (as a
 *         proxy would)
 * node 3: a leaf */

#define T_HI 0xaaaabbbbccccddddULL
#define T_LO 0x1111222233334444ULL

static struct tj_event mk(uint32_t node, uint64_t ts, unsigned type, uint64_t sock,
			  uint16_t lport, uint16_t rport, uint64_t off, int64_t bytes)
{
	struct tj_event e = test_event(node, ts, type, sock, off, bytes, 100 + node, 100 + node);
	e.fd = 5;
	e.laddr[0] = 10;
	e.laddr[3] = (uint8_t)node;
	e.raddr[0] = 10;
	e.lport = lport;
	e.rport = rport;
	return e;
}

static char reqbuf[16][256];
static int nreq;

static const char *req_with(uint64_t span)
{
	struct tj_traceparent tp = { T_HI, T_LO, span, 1 };
	char t[TJ_TP_STRLEN];
	char *b = reqbuf[nreq++ % 16];
	snprintf(b, 256, "GET /a HTTP/1.1\r\ntraceparent: %s\r\nHost: x\r\n\r\n", tj_tp_format(&tp, t));
	return b;
}

static void put(struct tj_evlog_writer *w, struct tj_event e, const char *payload)
{
	struct tj_err err = { 0 };
	if (payload) {
		e.payload = (const uint8_t *)payload;
		e.payload_len = (uint16_t)strlen(payload);
		e.bytes = (int64_t)strlen(payload);
	}
	assert_int_equal(tj_evlog_write(w, &e, &err), 0);
}

static struct tj_evlog_writer *open_log(const char *d, uint32_t node, uint32_t flags, uint32_t pmax)
{
	char path[256];
	struct tj_evlog_header h;
	memset(&h, 0, sizeof(h));
	h.node = node;
	h.capture_flags = flags;
	h.payload_max = pmax;
	snprintf(h.hostname, sizeof(h.hostname), "test");
	snprintf(path, sizeof(path), "%s/node-%u.evlog", d, node);
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_create(&w, path, &h, TJ_EVLOG_FORCE, &err), 0);
	return w;
}

static void close_log(struct tj_evlog_writer *w)
{
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_close(w, &err), 0);
}

/* Writes the capture into d; returns the root request's span P0. */
static void make_capture(const char *d, uint32_t flags, uint32_t pmax)
{
	const uint64_t p0 = 0x0101010101010101ULL, p1 = 0x0202020202020202ULL;
	uint64_t s0 = tj_tp_server_span(T_HI, T_LO, p0);
	const char *r0 = req_with(p0), *r1 = req_with(p1), *c0 = req_with(tj_tp_call_span(s0, 0));
	const char *nohdr = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	uint64_t ms = 1000000;
	size_t l0 = strlen(r0), l1 = strlen(r1), lr = strlen(resp);

	struct tj_evlog_writer *w = open_log(d, 1, flags, pmax);
	put(w, mk(1, 1 * ms, TJ_EV_CONNECT, 11, 5001, 80, 0, 0), NULL);
	put(w, mk(1, 2 * ms, TJ_EV_SEND, 11, 5001, 80, 0, 0), r0);
	put(w, mk(1, 9 * ms, TJ_EV_RECV, 11, 5001, 80, 0, 0), resp);
	put(w, mk(1, 10 * ms, TJ_EV_SEND, 11, 5001, 80, l0, 0), r1);
	put(w, mk(1, 19 * ms, TJ_EV_RECV, 11, 5001, 80, lr, 0), resp);
	put(w, mk(1, 20 * ms, TJ_EV_CONNECT, 12, 5002, 80, 0, 0), NULL);
	put(w, mk(1, 21 * ms, TJ_EV_SEND, 12, 5002, 80, 0, 0), nohdr);
	put(w, mk(1, 29 * ms, TJ_EV_RECV, 12, 5002, 80, 0, 0), resp);
	close_log(w);

	w = open_log(d, 2, flags, pmax);
	put(w, mk(2, 1 * ms, TJ_EV_ACCEPT, 21, 80, 5001, 0, 0), NULL);
	put(w, mk(2, 3 * ms, TJ_EV_RECV, 21, 80, 5001, 0, 0), r0);
	put(w, mk(2, 4 * ms, TJ_EV_CONNECT, 22, 6001, 90, 0, 0), NULL);
	put(w, mk(2, 5 * ms, TJ_EV_SEND, 22, 6001, 90, 0, 0), c0);
	put(w, mk(2, 7 * ms, TJ_EV_RECV, 22, 6001, 90, 0, 0), resp);
	put(w, mk(2, 8 * ms, TJ_EV_SEND, 21, 80, 5001, 0, 0), resp);
	put(w, mk(2, 11 * ms, TJ_EV_RECV, 21, 80, 5001, l0, 0), r1);
	put(w, mk(2, 12 * ms, TJ_EV_SEND, 22, 6001, 90, strlen(c0), 0), r1); /* proxied */
	put(w, mk(2, 15 * ms, TJ_EV_RECV, 22, 6001, 90, lr, 0), resp);
	put(w, mk(2, 18 * ms, TJ_EV_SEND, 21, 80, 5001, lr, 0), resp);
	put(w, mk(2, 20 * ms, TJ_EV_ACCEPT, 23, 80, 5002, 0, 0), NULL);
	put(w, mk(2, 22 * ms, TJ_EV_RECV, 23, 80, 5002, 0, 0), nohdr);
	put(w, mk(2, 28 * ms, TJ_EV_SEND, 23, 80, 5002, 0, 0), resp);
	close_log(w);
	(void)l1;
}

static void read_labels(const char *d, struct tj_edge_set *set)
{
	char path[256];
	struct tj_err err = { 0 };
	snprintf(path, sizeof(path), "%s/labels.csv", d);
	memset(set, 0, sizeof(*set));
	assert_int_equal(tj_edges_read(set, path, &err), 0);
}

static const struct tj_edge *edge_of(const struct tj_edge_set *set, uint32_t node,
				     uint64_t sock, uint64_t off)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->edges[i].child.node == node && set->edges[i].child.sock == sock &&
		    set->edges[i].child.offset == off)
			return &set->edges[i];
	return NULL;
}

static void test_label_capture(void **state)
{
	char cap[128], out[128];
	snprintf(cap, sizeof(cap), "%s/cap", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	mkdir(cap, 0755);
	make_capture(cap, TJ_CAP_PAYLOAD, 256);
	struct tj_label_result r;
	struct tj_err err = { 0 };
	int rc = tj_label_capture(cap, out, NULL, &r, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_int_equal(r.calls, 5);
	assert_int_equal(r.labeled, 4);
	assert_int_equal(r.no_header, 1);
	assert_int_equal(r.with_parent, 2);
	assert_int_equal(r.via_proxy, 1);
	assert_int_equal(r.roots, 2);
	assert_int_equal(r.logs, 2);

	struct tj_edge_set set;
	read_labels(out, &set);
	assert_int_equal(set.n, 4);
	const struct tj_edge *e = edge_of(&set, 2, 22, 0); /* the service's call */
	assert_non_null(e);
	assert_true(e->has_parent);
	assert_int_equal(e->parent.node, 2);
	assert_int_equal(e->parent.sock, 21);
	assert_int_equal(e->parent.offset, 0);
	e = edge_of(&set, 2, 22, strlen(req_with(tj_tp_call_span(tj_tp_server_span(T_HI, T_LO, 0x0101010101010101ULL), 0))));
	assert_non_null(e); /* the proxied call: parent is the second request */
	assert_true(e->has_parent);
	assert_int_equal(e->parent.sock, 21);
	assert_true(e->parent.offset > 0);
	e = edge_of(&set, 1, 11, 0);
	assert_non_null(e);
	assert_false(e->has_parent);
	assert_null(edge_of(&set, 1, 12, 0)); /* not guessed */
	tj_edges_free(&set);

	/* the dataset's logs carry no payload and say so */
	char path[256];
	snprintf(path, sizeof(path), "%s/node-2.evlog", out);
	struct tj_evlog_reader *rd;
	assert_int_equal(tj_evlog_open(&rd, path, &err), 0);
	assert_false(tj_evlog_header(rd)->capture_flags & TJ_CAP_PAYLOAD);
	assert_int_equal(tj_evlog_header(rd)->payload_max, 0);
	const struct tj_event *ev;
	int n = 0;
	while (tj_evlog_next(rd, &ev, &err) == 1) {
		assert_int_equal(ev->payload_len, 0);
		n++;
	}
	assert_int_equal(n, 13);
	tj_evlog_close_reader(rd);
	snprintf(path, sizeof(path), "%s/unlabeled.csv", out);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/manifest.json", out);
	assert_int_equal(access(path, F_OK), 0);

	/* again without --force: refused; with it: the same labels */
	assert_int_not_equal(tj_label_capture(cap, out, NULL, &r, &err), 0);
	assert_non_null(strstr(err.msg, "exists"));
	struct tj_label_opts o = { .force = 1 };
	assert_int_equal(tj_label_capture(cap, out, &o, &r, &err), 0);
	assert_int_equal(r.labeled, 4);
}

static void test_refusals(void **state)
{
	char cap[128], out[128], path[256];
	struct tj_label_result r;
	struct tj_err err = { 0 };
	snprintf(out, sizeof(out), "%s/out", dir);

	snprintf(cap, sizeof(cap), "%s/missing", dir);
	assert_int_not_equal(tj_label_capture(cap, out, NULL, &r, &err), 0);
	assert_non_null(strstr(err.msg, "missing"));

	snprintf(cap, sizeof(cap), "%s/empty", dir);
	mkdir(cap, 0755);
	assert_int_not_equal(tj_label_capture(cap, out, NULL, &r, &err), 0);
	assert_non_null(strstr(err.msg, "node-*.evlog"));

	snprintf(cap, sizeof(cap), "%s/nopayload", dir);
	mkdir(cap, 0755);
	make_capture(cap, 0, 0);
	assert_int_not_equal(tj_label_capture(cap, out, NULL, &r, &err), 0);
	assert_non_null(strstr(err.msg, "without payload"));

	snprintf(cap, sizeof(cap), "%s/synthetic", dir);
	mkdir(cap, 0755);
	make_capture(cap, TJ_CAP_SYNTHETIC | TJ_CAP_PAYLOAD, 256);
	assert_int_not_equal(tj_label_capture(cap, out, NULL, &r, &err), 0);
	assert_non_null(strstr(err.msg, "not a capture"));

	snprintf(cap, sizeof(cap), "%s/junk", dir);
	mkdir(cap, 0755);
	snprintf(path, sizeof(path), "%s/node-1.evlog", cap);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not an evlog at all\n", f);
	fclose(f);
	assert_int_not_equal(tj_label_capture(cap, out, NULL, &r, &err), 0);
	assert_non_null(strstr(err.msg, "node-1.evlog"));

	snprintf(cap, sizeof(cap), "%s/good", dir);
	mkdir(cap, 0755);
	make_capture(cap, TJ_CAP_PAYLOAD, 256);
	assert_int_not_equal(tj_label_capture(cap, cap, NULL, &r, &err), 0); /* onto itself */
	assert_non_null(strstr(err.msg, "is also an input"));
	assert_int_not_equal(tj_label_capture(path, out, NULL, &r, &err), 0); /* a file */
	struct tj_label_opts o = { .params_json = "[1,2]" };
	assert_int_not_equal(tj_label_capture(cap, out, &o, &r, &err), 0);
	assert_non_null(strstr(err.msg, "JSON object"));
}

/* Over loopback a call and the request it becomes are on one node and
 * carry the same traceparent: the call is a root, not its own child. */
static void test_loopback_root(void **state)
{
	char cap[128], out[128];
	snprintf(cap, sizeof(cap), "%s/cap", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	mkdir(cap, 0755);
	const char *r0 = req_with(0x0303030303030303ULL);
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct tj_evlog_writer *w = open_log(cap, 7, TJ_CAP_PAYLOAD, 256);
	struct tj_event c = mk(7, 1000, TJ_EV_CONNECT, 71, 7001, 80, 0, 0);
	struct tj_event a = mk(7, 1100, TJ_EV_ACCEPT, 72, 80, 7001, 0, 0);
	memcpy(c.raddr, c.laddr, 16); /* 10.0.0.7 <-> 10.0.0.7 */
	memcpy(a.raddr, a.laddr, 16);
	put(w, c, NULL);
	put(w, a, NULL);
	c.type = TJ_EV_SEND, c.ts_ns = 2000;
	put(w, c, r0);
	a.type = TJ_EV_RECV, a.ts_ns = 2100;
	put(w, a, r0);
	a.type = TJ_EV_SEND, a.ts_ns = 3000;
	put(w, a, resp);
	c.type = TJ_EV_RECV, c.ts_ns = 3100;
	put(w, c, resp);
	close_log(w);
	struct tj_label_result r;
	struct tj_err err = { 0 };
	if (tj_label_capture(cap, out, NULL, &r, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.roots, 1);
	assert_int_equal(r.with_parent, 0);
}

/* A capture attached to running services: sockets known by the start-up
 * scan (listen, scan), sequence offsets, no accept or connect.  The first
 * message of each socket is cut; a call made for the cut request is left
 * out (its parent is no request), not labeled a root; the next request's
 * call is labeled with its parent. */
static void test_attached_capture(void **state)
{
	char cap[128], out[128];
	snprintf(cap, sizeof(cap), "%s/cap", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	mkdir(cap, 0755);
	const uint64_t p0 = 0x0404040404040404ULL, p1 = 0x0505050505050505ULL;
	const char *r0 = req_with(p0), *r1 = req_with(p1);
	const char *c0 = req_with(tj_tp_call_span(tj_tp_server_span(T_HI, T_LO, p0), 0));
	const char *c1 = req_with(tj_tp_call_span(tj_tp_server_span(T_HI, T_LO, p1), 0));
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	uint64_t l0 = strlen(r0), lc = strlen(c0), lr = strlen(resp), ms = 1000000;
	struct tj_evlog_writer *w = open_log(cap, 2, TJ_CAP_PAYLOAD | TJ_CAP_PREEXISTING, 256);
	struct tj_event lis = mk(2, 0, TJ_EV_LISTEN, 20, 80, 0, 0, 0);
	memset(lis.laddr, 0, 16);
	memset(lis.raddr, 0, 16);
	put(w, lis, NULL);
	put(w, mk(2, 0, TJ_EV_SCAN, 0, 0, 0, 0, 2), NULL);
	struct tj_event x[] = {
		mk(2, 1 * ms, TJ_EV_RECV, 22, 6001, 90, 1000, 0),      /* cut: a response */
		mk(2, 2 * ms, TJ_EV_RECV, 21, 80, 5001, 5000, 0),      /* cut: request r0 */
		mk(2, 3 * ms, TJ_EV_SEND, 22, 6001, 90, 7000, 0),      /* call for r0 */
		mk(2, 4 * ms, TJ_EV_RECV, 22, 6001, 90, 1000 + lr, 0),
		mk(2, 5 * ms, TJ_EV_SEND, 21, 80, 5001, 9000, 0),
		mk(2, 6 * ms, TJ_EV_RECV, 21, 80, 5001, 5000 + l0, 0), /* request r1 */
		mk(2, 7 * ms, TJ_EV_SEND, 22, 6001, 90, 7000 + lc, 0), /* call for r1 */
		mk(2, 8 * ms, TJ_EV_RECV, 22, 6001, 90, 1000 + 2 * lr, 0),
		mk(2, 9 * ms, TJ_EV_SEND, 21, 80, 5001, 9000 + lr, 0),
	};
	const char *pl[] = { resp, r0, c0, resp, resp, r1, c1, resp, resp };
	for (size_t i = 0; i < sizeof(x) / sizeof(*x); i++) {
		x[i].flags = TJ_EVF_SEQ_OFFSET;
		put(w, x[i], pl[i]);
	}
	close_log(w);
	struct tj_label_result r;
	struct tj_err err = { 0 };
	if (tj_label_capture(cap, out, NULL, &r, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.server_requests, 1);
	assert_int_equal(r.cut, 2);
	assert_int_equal(r.parent_cut, 1);
	assert_int_equal(r.labeled, 1);
	assert_int_equal(r.with_parent, 1);
	assert_int_equal(r.roots, 0);
	assert_int_equal(r.unknown_role, 0);
	struct tj_edge_set set;
	read_labels(out, &set);
	assert_int_equal(set.n, 1);
	const struct tj_edge *e = edge_of(&set, 2, 22, 7000 + lc);
	assert_non_null(e);
	assert_true(e->has_parent);
	assert_int_equal(e->parent.sock, 21);
	assert_int_equal(e->parent.offset, 5000 + l0);
	tj_edges_free(&set);
}

/* ---- the replay features the labeler relies on ---- */

struct got {
	struct tj_message m[8];
	uint8_t pl[8][256];
	int n;
};

static int collect(void *ctx, const struct tj_message *m)
{
	struct got *g = ctx;
	if (g->n < 8) {
		g->m[g->n] = *m;
		memcpy(g->pl[g->n], m->payload, m->payload_len);
		g->n++;
	}
	return 0;
}

static void run_asm(int raw, struct got *g)
{
	struct tj_replay_opts o = { .keep_payload = 1, .raw_payload = raw };
	struct tj_assembler *a;
	struct tj_err err = { 0 };
	memset(g, 0, sizeof(*g));
	assert_int_equal(tj_assembler_new(&a, &o, collect, g, &err), 0);
	const char *r0 = req_with(0x77);
	/* STATE -> SYN_SENT before the local port is known, then connect */
	struct tj_event e = mk(1, 1000, TJ_EV_STATE, 5, 0, 80, 0, 0);
	e.arg = 7 << 8 | 2;
	assert_int_equal(tj_assembler_feed(a, &e, &err), 0);
	e = mk(1, 2000, TJ_EV_CONNECT, 5, 4321, 80, 0, 0);
	assert_int_equal(tj_assembler_feed(a, &e, &err), 0);
	e = mk(1, 3000, TJ_EV_SEND, 5, 4321, 80, 0, (int64_t)strlen(r0));
	e.payload = (const uint8_t *)r0;
	e.payload_len = (uint16_t)strlen(r0);
	assert_int_equal(tj_assembler_feed(a, &e, &err), 0);
	assert_int_equal(tj_assembler_end(a, &err), 0);
	tj_assembler_free(a);
	assert_int_equal(g->n, 1);
}

static void test_replay_raw_and_ports(void **state)
{
	struct got g;
	struct tj_traceparent tp;
	run_asm(0, &g);
	assert_int_equal(g.m[0].lport, 4321); /* not the SYN_SENT event's 0 */
	assert_int_equal(tj_tp_find(g.pl[0], g.m[0].payload_len, &tp), -1); /* masked */
	run_asm(1, &g);
	assert_int_equal(tj_tp_find(g.pl[0], g.m[0].payload_len, &tp), 1);
	assert_int_equal(tp.span, 0x77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_find_storm),
		cmocka_unit_test(test_span_rule),
		cmocka_unit_test_setup_teardown(test_label_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attached_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_root, setup, teardown),
		cmocka_unit_test(test_replay_raw_and_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
