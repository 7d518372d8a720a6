/* The message assembler on hand-built event streams with known answers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "replay/assemble.h"
#include "test_util.h"

#define MS 1000000ull
#define S 1000000000ull
#define HOUR (3600ull * S)

struct got {
	struct tj_message m[64];
	uint8_t payload[64][TJ_PAYLOAD_MAX];
	uint64_t serial[64]; /* tj_replay_sock_serial, read in the callback */
	size_t n;
};

static int collect(void *ctx, const struct tj_message *m)
{
	struct got *g = ctx;
	assert_true(g->n < 64);
	g->m[g->n] = *m;
	g->serial[g->n] = tj_replay_sock_serial(m);
	if (m->payload) {
		memcpy(g->payload[g->n], m->payload, m->payload_len);
		g->m[g->n].payload = g->payload[g->n];
	}
	g->n++;
	return 0;
}

static struct tj_event ev(uint32_t node, uint64_t ts, unsigned type,
			  uint64_t sock, uint64_t off, int64_t bytes, uint32_t tid)
{
	struct tj_event e = test_event(node, ts, type, sock, off, bytes, 100, tid);
	e.fd = 3;
	return e;
}

static void feed_all(struct tj_assembler *a, const struct tj_event *evs, size_t n)
{
	struct tj_err err = { 0 };
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tj_assembler_feed(a, &evs[i], &err), 0);
}

static struct tj_assembler *mk(struct got *g, const struct tj_replay_opts *o)
{
	struct tj_assembler *a;
	struct tj_err err = { 0 };
	memset(g, 0, sizeof(*g));
	assert_int_equal(tj_assembler_new(&a, o, collect, g, &err), 0);
	return a;
}

static void finish(struct tj_assembler *a)
{
	struct tj_err err = { 0 };
	assert_int_equal(tj_assembler_end(a, &err), 0);
	assert_int_equal(tj_assembler_held(a), 0);
}

static void check_key(const struct tj_message *m, uint32_t node, uint64_t sock,
		      unsigned dir, uint64_t off)
{
	char buf[TJ_MSGKEY_STRLEN], want[TJ_MSGKEY_STRLEN];
	struct tj_msgkey k = { .node = node, .sock = sock, .dir = (uint8_t)dir, .offset = off };
	tj_msgkey_format(&m->key, buf);
	tj_msgkey_format(&k, want);
	assert_string_equal(buf, want);
}

/* Three requests on one kept-alive server socket. */
static void test_keepalive_three_requests(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	const struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11),
		ev(1, 2 * MS, TJ_EV_RECV, 7, 0, 100, 11),
		ev(1, 5 * MS, TJ_EV_SEND, 7, 0, 40, 11),
		ev(1, 10 * MS, TJ_EV_RECV, 7, 100, 120, 12),
		ev(1, 15 * MS, TJ_EV_SEND, 7, 40, 60, 12),
		ev(1, 20 * MS, TJ_EV_RECV, 7, 220, 80, 13),
		ev(1, 25 * MS, TJ_EV_SEND, 7, 100, 10, 13),
		ev(1, 30 * MS, TJ_EV_CLOSE, 7, 0, 0, 13),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 6);
	const uint64_t in_off[3] = { 0, 100, 220 }, out_off[3] = { 0, 40, 100 };
	const uint64_t in_bytes[3] = { 100, 120, 80 };
	for (int i = 0; i < 3; i++) {
		const struct tj_message *req = &g.m[2 * i], *resp = &g.m[2 * i + 1];
		check_key(req, 1, 7, TJ_DIR_IN, in_off[i]);
		check_key(resp, 1, 7, TJ_DIR_OUT, out_off[i]);
		assert_int_equal(req->role, TJ_ROLE_SERVER);
		assert_int_equal(req->is_request, 1);
		assert_int_equal(resp->is_request, 0);
		assert_int_equal(req->bytes, in_bytes[i]);
		assert_int_equal(req->seq, 2 * i);
		assert_int_equal(req->ts_reply, resp->ts_first);
		assert_int_equal(req->tid_reply, 11 + i);
		assert_int_equal(req->ts_sock_open, 1 * MS);
		assert_int_equal(req->flags, 0);
	}
	/* one socket, one serial, numbered from 1 */
	for (int i = 0; i < 6; i++)
		assert_int_equal(g.serial[i], 1);
	/* the last response ended by the close */
	assert_int_equal(g.m[5].flags, TJ_MSG_NO_REPLY);
	assert_int_equal(g.m[5].ts_reply, 0);
	const struct tj_replay_stats *st = tj_assembler_stats(a);
	assert_int_equal(st->events, 8);
	assert_int_equal(st->messages, 6);
	assert_int_equal(st->requests, 3);
	tj_assembler_free(a);
}

/* A request read in five partial reads is one message. */
static void test_five_partial_reads(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_CONNECT, 9, 0, 0, 20),
		ev(1, 2 * MS, TJ_EV_SEND, 9, 0, 30, 20),
		ev(1, 3 * MS, TJ_EV_RECV, 9, 0, 10, 21),
		ev(1, 4 * MS, TJ_EV_RECV, 9, 10, 10, 21),
		ev(1, 5 * MS, TJ_EV_RECV, 9, 20, 5, 21),
		ev(1, 6 * MS, TJ_EV_RECV, 9, 25, 100, 21),
		ev(1, 7 * MS, TJ_EV_RECV, 9, 125, 1, 22),
		ev(1, 8 * MS, TJ_EV_SEND, 9, 30, 30, 20),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 3);
	check_key(&g.m[0], 1, 9, TJ_DIR_OUT, 0);
	assert_int_equal(g.m[0].is_request, 1);
	assert_int_equal(g.m[0].role, TJ_ROLE_CLIENT);
	check_key(&g.m[1], 1, 9, TJ_DIR_IN, 0);
	assert_int_equal(g.m[1].nsyscalls, 5);
	assert_int_equal(g.m[1].bytes, 126);
	assert_int_equal(g.m[1].ts_first, 3 * MS);
	assert_int_equal(g.m[1].ts_last, 7 * MS);
	assert_int_equal(g.m[1].tid_first, 21);
	assert_int_equal(g.m[1].tid_last, 22);
	assert_int_equal(g.m[1].ts_reply, 8 * MS);
	assert_int_equal(g.m[1].is_request, 0);
	check_key(&g.m[2], 1, 9, TJ_DIR_OUT, 30);
	assert_int_equal(g.m[2].seq, 2);
	tj_assembler_free(a);
}

/* Two nodes hours apart: each node's idle rule runs on its own clock, and
 * each node's messages come in its own order. */
static void test_skewed_clocks(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	const uint64_t far = 5 * HOUR;
	const struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11),
		ev(2, far + 1 * MS, TJ_EV_CONNECT, 3, 0, 0, 30),
		ev(1, 2 * MS, TJ_EV_RECV, 7, 0, 100, 11),
		ev(2, far + 2 * MS, TJ_EV_SEND, 3, 0, 50, 30),
		/* node 2 runs on: its clock is hours past node 1's request,
		 * which must not count as idle for that */
		ev(2, far + 3 * S, TJ_EV_RECV, 3, 0, 20, 30),
		ev(1, 3 * MS, TJ_EV_SEND, 7, 0, 40, 11),
		ev(2, far + 4 * S, TJ_EV_SEND, 3, 50, 50, 30),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 5);
	size_t n1 = 0, n2 = 0;
	uint64_t last1 = 0, last2 = 0;
	for (size_t i = 0; i < g.n; i++) {
		const struct tj_message *m = &g.m[i];
		if (m->key.node == 1) {
			assert_true(m->ts_first >= last1);
			last1 = m->ts_first;
			n1++;
		} else {
			assert_true(m->ts_first >= last2);
			last2 = m->ts_first;
			n2++;
		}
		if (m->key.node == 1 && m->key.dir == TJ_DIR_IN) {
			assert_int_equal(m->ts_reply, 3 * MS);
			assert_int_equal(m->flags, 0);
		}
		if (m->key.node == 2 && m->key.dir == TJ_DIR_OUT && m->key.offset == 0) {
			/* the reply took 3 s: over the idle rule, so the request
			 * was ended by it, and its reply is not known */
			assert_int_equal(m->flags, TJ_MSG_NO_REPLY);
		}
	}
	assert_int_equal(n1, 2);
	assert_int_equal(n2, 3);
	tj_assembler_free(a);
}

/* Sockets first seen mid-stream: a port this node accepted on makes it a
 * server (guessed); any other stays unknown. */
static void test_midstream(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	struct tj_event e_unknown = ev(1, 1 * MS, TJ_EV_RECV, 50, 1000, 10, 1);
	e_unknown.lport = 5555;
	e_unknown.flags = TJ_EVF_OFFSET_FROM_START;
	struct tj_event e_unknown2 = ev(1, 2 * MS, TJ_EV_SEND, 50, 300, 10, 1);
	e_unknown2.lport = 5555;
	const struct tj_event evs[] = {
		e_unknown, e_unknown2,
		ev(1, 3 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11), /* teaches: 8080 listens */
		ev(1, 4 * MS, TJ_EV_RECV, 60, 4096, 10, 12), /* mid-stream, port 8080 */
		ev(1, 5 * MS, TJ_EV_SEND, 60, 777, 10, 12),
		ev(1, 6 * MS, TJ_EV_RECV, 60, 4106, 10, 12),
		ev(1, 7 * MS, TJ_EV_SEND, 60, 787, 10, 12),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 6);
	check_key(&g.m[0], 1, 50, TJ_DIR_IN, 1000);
	assert_int_equal(g.m[0].role, TJ_ROLE_UNKNOWN);
	assert_int_equal(g.m[0].is_request, 0);
	assert_true(g.m[0].flags & TJ_MSG_MIDSTREAM);
	assert_false(g.m[0].flags & (TJ_MSG_GAP | TJ_MSG_ROLE_GUESS));
	check_key(&g.m[2], 1, 60, TJ_DIR_IN, 4096);
	assert_int_equal(g.m[2].role, TJ_ROLE_SERVER);
	/* the first message of a mid-stream socket may have begun before the
	 * log: cut, never a request */
	assert_int_equal(g.m[2].is_request, 0);
	assert_int_equal(g.m[2].flags, TJ_MSG_MIDSTREAM | TJ_MSG_ROLE_GUESS | TJ_MSG_CUT);
	assert_int_equal(g.m[2].ts_sock_open, 0);
	assert_int_equal(g.m[2].ts_reply, 5 * MS);
	check_key(&g.m[4], 1, 60, TJ_DIR_IN, 4106);
	assert_int_equal(g.m[4].is_request, 1);
	assert_int_equal(g.m[4].flags, TJ_MSG_MIDSTREAM | TJ_MSG_ROLE_GUESS);
	const struct tj_replay_stats *st = tj_assembler_stats(a);
	assert_int_equal(st->cut, 2);
	assert_int_equal(st->unknown_role, 2);
	tj_assembler_free(a);
}

/* Capture's start-up scan: the listeners of a node (LISTEN) and the end
 * of the list (SCAN) make every mid-stream socket server or client;
 * the first message of each is cut, the rest are requests and responses
 * as usual; sequence offsets are marked for the join.  A node with no
 * SCAN keeps what it cannot know unknown. */
static void test_attach_roles(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	struct tj_event lis = ev(1, 0, TJ_EV_LISTEN, 900, 0, 0, 0);
	lis.lport = 8080;
	lis.rport = 0; /* 0.0.0.0:8080 */
	struct tj_event lis6 = lis;
	lis6.family = 10;
	lis6.lport = 9090;
	lis6.laddr[15] = 1; /* [::1]:9090 only */
	struct tj_event scan = ev(1, 0, TJ_EV_SCAN, 0, 0, 3, 0);
	struct tj_event x[12];
	size_t k = 0;
	/* sock 60: accepted on 8080 before capture (local 10.0.0.2:8080) */
	x[k++] = ev(1, 1 * MS, TJ_EV_SOCKET, 60, 0, 0, 5);
	x[k++] = ev(1, 1 * MS, TJ_EV_RECV, 60, 0xfffffff0u, 20, 5);
	x[k++] = ev(1, 2 * MS, TJ_EV_SEND, 60, 123456, 50, 5);
	x[k++] = ev(1, 3 * MS, TJ_EV_RECV, 60, 0x100000004ull, 20, 5);
	x[k++] = ev(1, 4 * MS, TJ_EV_SEND, 60, 123506, 50, 5);
	/* sock 70: connected to 10.0.0.9:8080 from port 40001 */
	x[k++] = ev(1, 5 * MS, TJ_EV_RECV, 70, 500, 30, 6);
	x[k++] = ev(1, 6 * MS, TJ_EV_SEND, 70, 9000, 10, 6);
	x[k++] = ev(1, 7 * MS, TJ_EV_RECV, 70, 530, 30, 6);
	/* sock 80: local port 9090, but on 10.0.0.2, not [::1]: a client */
	x[k++] = ev(1, 8 * MS, TJ_EV_SEND, 80, 1, 10, 7);
	x[k++] = ev(1, 9 * MS, TJ_EV_RECV, 80, 1, 10, 7);
	for (size_t i = 0; i < k; i++) {
		x[i].flags = TJ_EVF_SEQ_OFFSET;
		x[i].laddr[0] = 10, x[i].laddr[3] = 2;
		x[i].raddr[0] = 10, x[i].raddr[3] = 9;
		if (x[i].sock == 70)
			x[i].lport = 40001, x[i].rport = 8080;
		if (x[i].sock == 80)
			x[i].lport = 9090, x[i].rport = 443;
	}
	/* node 2: no scan, a mid-stream socket that stays unknown */
	struct tj_event u1 = ev(2, 1 * MS, TJ_EV_SEND, 5, 77, 10, 1);
	struct tj_event u2 = ev(2, 2 * MS, TJ_EV_RECV, 5, 66, 10, 1);
	u1.flags = u2.flags = TJ_EVF_SEQ_OFFSET;
	struct tj_err err = { 0 };
	assert_int_equal(tj_assembler_feed(a, &lis, &err), 0);
	assert_int_equal(tj_assembler_feed(a, &lis6, &err), 0);
	assert_int_equal(tj_assembler_feed(a, &scan, &err), 0);
	feed_all(a, x, k);
	assert_int_equal(tj_assembler_feed(a, &u1, &err), 0);
	assert_int_equal(tj_assembler_feed(a, &u2, &err), 0);
	finish(a);
	assert_int_equal(g.n, 11);
	const uint32_t mid = TJ_MSG_MIDSTREAM | TJ_MSG_ROLE_GUESS | TJ_MSG_SEQ_OFFSET;
	size_t seen = 0;
	for (size_t i = 0; i < g.n; i++) {
		const struct tj_message *m = &g.m[i];
		if (m->key.node == 2) {
			assert_int_equal(m->role, TJ_ROLE_UNKNOWN);
			assert_int_equal(m->is_request, 0);
			continue;
		}
		seen++;
		assert_int_equal(m->role, m->key.sock == 60 ? TJ_ROLE_SERVER : TJ_ROLE_CLIENT);
		int first = (m->key.sock == 60 && m->key.offset == 0xfffffff0u) ||
			    (m->key.sock == 70 && m->key.offset == 500) ||
			    (m->key.sock == 80 && m->key.dir == TJ_DIR_OUT);
		assert_int_equal(m->flags & ~TJ_MSG_NO_REPLY, mid | (first ? TJ_MSG_CUT : 0));
		int req = !first && ((m->key.sock == 60 && m->key.dir == TJ_DIR_IN) ||
				     (m->key.sock != 60 && m->key.dir == TJ_DIR_OUT));
		assert_int_equal(m->is_request, req);
	}
	assert_int_equal(seen, 9);
	/* the whole request after the wrap of the sequence */
	const struct tj_message *r = NULL;
	for (size_t i = 0; i < g.n; i++)
		if (g.m[i].key.sock == 60 && g.m[i].key.offset == 0x100000004ull)
			r = &g.m[i];
	assert_non_null(r);
	assert_int_equal(r->is_request, 1);
	assert_int_equal(r->bytes, 20);
	const struct tj_replay_stats *st = tj_assembler_stats(a);
	assert_int_equal(st->listeners, 2);
	assert_int_equal(st->cut, 4);
	assert_int_equal(st->unknown_role, 2);
	assert_int_equal(st->requests, 2);
	tj_assembler_free(a);
}

/* Sequence numbers as 64-bit positions: the nearest to the reference,
 * across the wrap in both directions, never below zero. */
static void test_seq_unwrap(void **state)
{
	assert_int_equal(tj_seq_unwrap(0, 5), 5);
	assert_int_equal(tj_seq_unwrap(0xfffffff0u, 0x10), 0x100000010ull);
	assert_int_equal(tj_seq_unwrap(0x100000010ull, 0xfffffff0u), 0xfffffff0u);
	assert_int_equal(tj_seq_unwrap(0x500000000ull + 7, 3), 0x500000003ull);
	/* "just before" a small position: taken after the next wrap */
	assert_int_equal(tj_seq_unwrap(0x10, 0xfffffff0u), 0xfffffff0u);
	assert_int_equal(tj_seq_unwrap(0x90000000u, 0x10), 0x100000010ull);
}

/* Lost events: an offset jump is flagged, not hidden; the late duplicate is
 * dropped and counted. */
static void test_lost_events_gap(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	const struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11),
		ev(1, 2 * MS, TJ_EV_RECV, 7, 0, 100, 11),
		ev(1, 3 * MS, TJ_EV_SEND, 7, 0, 40, 11),
		/* lost: request 100..199, reply 40..79; seen again here */
		ev(1, 10 * MS, TJ_EV_RECV, 7, 200, 50, 11),
		ev(1, 11 * MS, TJ_EV_RECV, 7, 300, 50, 11), /* 250..299 lost too */
		ev(1, 12 * MS, TJ_EV_SEND, 7, 80, 40, 11),
		ev(1, 13 * MS, TJ_EV_SEND, 7, 20, 10, 11),  /* late: behind */
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 5);
	check_key(&g.m[2], 1, 7, TJ_DIR_IN, 200);
	assert_int_equal(g.m[2].flags, TJ_MSG_GAP | TJ_MSG_NO_REPLY);
	assert_int_equal(g.m[2].ts_reply, 0);
	check_key(&g.m[3], 1, 7, TJ_DIR_IN, 300);
	assert_int_equal(g.m[3].flags, TJ_MSG_GAP);
	assert_int_equal(g.m[3].ts_reply, 12 * MS);
	check_key(&g.m[4], 1, 7, TJ_DIR_OUT, 80);
	assert_int_equal(g.m[4].flags & TJ_MSG_GAP, TJ_MSG_GAP);
	const struct tj_replay_stats *st = tj_assembler_stats(a);
	assert_int_equal(st->gaps, 3);
	assert_int_equal(st->late_events, 1);
	tj_assembler_free(a);
}

/* A message that started first holds back one that completed before it;
 * the idle rule bounds the wait. */
static void test_held_by_idle_rule(void **state)
{
	struct got g;
	struct tj_replay_opts o = { .idle_ns = 1 * S };
	struct tj_assembler *a = mk(&g, &o);
	const struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11),
		ev(1, 2 * MS, TJ_EV_RECV, 7, 0, 100, 11),   /* A: never answered */
		ev(1, 3 * MS, TJ_EV_ACCEPT, 8, 0, 0, 12),
		ev(1, 4 * MS, TJ_EV_RECV, 8, 0, 100, 12),   /* B */
		ev(1, 5 * MS, TJ_EV_SEND, 8, 0, 10, 12),    /* B complete, held */
		ev(1, 6 * MS, TJ_EV_RECV, 8, 100, 10, 12),
		ev(1, 500 * MS, TJ_EV_SEND, 8, 10, 10, 12),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	assert_int_equal(g.n, 0); /* everything waits for A */
	assert_int_equal(tj_assembler_held(a), 5);
	struct tj_event late = ev(1, 1100 * MS, TJ_EV_SEND, 8, 20, 5, 12);
	feed_all(a, &late, 1);
	/* A idled out at 1.002 s; A then B's request, reply, next request */
	assert_int_equal(g.n, 4);
	check_key(&g.m[0], 1, 7, TJ_DIR_IN, 0);
	assert_int_equal(g.m[0].flags, TJ_MSG_NO_REPLY);
	check_key(&g.m[1], 1, 8, TJ_DIR_IN, 0);
	assert_int_equal(g.m[1].ts_reply, 5 * MS);
	check_key(&g.m[2], 1, 8, TJ_DIR_OUT, 0);
	check_key(&g.m[3], 1, 8, TJ_DIR_IN, 100);
	assert_true(tj_assembler_stats(a)->peak_held >= 4);
	/* more bytes on A after idle: a new message, flagged */
	struct tj_event more = ev(1, 1200 * MS, TJ_EV_RECV, 7, 100, 5, 11);
	feed_all(a, &more, 1);
	finish(a);
	assert_int_equal(g.n, 6);
	check_key(&g.m[4], 1, 8, TJ_DIR_OUT, 10);
	assert_int_equal(g.m[4].bytes, 15);
	check_key(&g.m[5], 1, 7, TJ_DIR_IN, 100);
	assert_int_equal(g.m[5].flags, TJ_MSG_AFTER_IDLE | TJ_MSG_NO_REPLY);
	tj_assembler_free(a);
}

/* Events slightly out of time order across sockets still give messages in
 * ts_first order. */
static void test_slightly_out_of_order(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	const struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11),
		ev(1, 1 * MS, TJ_EV_ACCEPT, 8, 0, 0, 11),
		ev(1, 2000 * 1000, TJ_EV_RECV, 7, 0, 10, 11),
		ev(1, 1999 * 1000, TJ_EV_RECV, 8, 0, 10, 12), /* 1 us earlier */
		ev(1, 3 * MS, TJ_EV_SEND, 7, 0, 10, 11),
		ev(1, 3 * MS, TJ_EV_SEND, 8, 0, 10, 12),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 4);
	check_key(&g.m[0], 1, 8, TJ_DIR_IN, 0);
	check_key(&g.m[1], 1, 7, TJ_DIR_IN, 0);
	tj_assembler_free(a);
}

/* Payloads reach the callback only when asked for, and always masked. */
static void test_payload_masked(void **state)
{
	static const char req[] =
		"GET /x HTTP/1.1\r\nHost: a\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
	struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11),
		ev(1, 2 * MS, TJ_EV_RECV, 7, 0, sizeof(req) - 1, 11),
	};
	evs[1].payload = (const uint8_t *)req;
	evs[1].payload_len = sizeof(req) - 1;

	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	feed_all(a, evs, 2);
	finish(a);
	assert_int_equal(g.n, 1);
	assert_null(g.m[0].payload);
	assert_int_equal(g.m[0].payload_len, 0);
	tj_assembler_free(a);

	struct tj_replay_opts o = { .keep_payload = 1 };
	a = mk(&g, &o);
	feed_all(a, evs, 2);
	finish(a);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.m[0].payload_len, sizeof(req) - 1);
	assert_non_null(memmem(g.m[0].payload, g.m[0].payload_len, "Host: a", 7));
	assert_null(memmem(g.m[0].payload, g.m[0].payload_len, "0af7651916cd", 12));
	assert_int_equal(tj_assembler_stats(a)->masked, 1);
	tj_assembler_free(a);
}

/* A request read in pieces (Go's net/http reads 1 byte, then the rest):
 * the payload continues across syscalls captured whole, a header cut at
 * the seam is masked whole and counted once; raw for the labeler. */
static void test_payload_continues(void **state)
{
	static const char req[] =
		"GET /x HTTP/1.1\r\nHost: a\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
	const size_t len = sizeof(req) - 1, cut = 34; /* inside "traceparent" */
	struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_ACCEPT, 7, 0, 0, 11),
		ev(1, 2 * MS, TJ_EV_RECV, 7, 0, 1, 11),
		ev(1, 3 * MS, TJ_EV_RECV, 7, 1, cut - 1, 11),
		ev(1, 4 * MS, TJ_EV_RECV, 7, cut, len - cut, 11),
	};
	evs[1].payload = (const uint8_t *)req;
	evs[1].payload_len = 1;
	evs[2].payload = (const uint8_t *)req + 1;
	evs[2].payload_len = cut - 1;
	evs[3].payload = (const uint8_t *)req + cut;
	evs[3].payload_len = len - cut;

	struct got g;
	struct tj_replay_opts o = { .keep_payload = 1 };
	struct tj_assembler *a = mk(&g, &o);
	feed_all(a, evs, 4);
	finish(a);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.m[0].payload_len, len);
	assert_non_null(memmem(g.m[0].payload, len, "Host: a\r\ntraceparent: ***", 25));
	assert_null(memmem(g.m[0].payload, len, "0af7651916cd", 12));
	assert_int_equal(tj_assembler_stats(a)->masked, 1);
	tj_assembler_free(a);

	struct tj_replay_opts raw = { .keep_payload = 1, .raw_payload = 1 };
	a = mk(&g, &raw);
	feed_all(a, evs, 4);
	finish(a);
	assert_int_equal(g.n, 1);
	assert_memory_equal(g.m[0].payload, req, len);
	tj_assembler_free(a);

	/* the first piece cut by the capture: what follows is not its
	 * continuation, so the payload stays the first piece's prefix */
	evs[2].payload_len = cut - 2;
	a = mk(&g, &raw);
	feed_all(a, evs, 4);
	finish(a);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.m[0].payload_len, cut - 1);
	assert_memory_equal(g.m[0].payload, req, cut - 1);
	tj_assembler_free(a);
}

/* A callback's non-zero answer stops the replay and comes back. */
static int stop_at_first(void *ctx, const struct tj_message *m)
{
	(*(int *)ctx)++;
	return 42;
}

static void test_callback_stops(void **state)
{
	struct tj_assembler *a;
	struct tj_err err = { 0 };
	int calls = 0;
	assert_int_equal(tj_assembler_new(&a, NULL, stop_at_first, &calls, &err), 0);
	const struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_CONNECT, 9, 0, 0, 20),
		ev(1, 2 * MS, TJ_EV_SEND, 9, 0, 30, 20),
		ev(1, 3 * MS, TJ_EV_RECV, 9, 0, 30, 20),
		ev(1, 9 * MS, TJ_EV_SEND, 9, 30, 30, 20),
	};
	int rc = 0;
	for (size_t i = 0; i < 4 && rc == 0; i++)
		rc = tj_assembler_feed(a, &evs[i], &err);
	assert_int_equal(rc, 42);
	assert_int_equal(calls, 1);
	tj_assembler_free(a); /* frees what is still held */
}

/* Socket ids that come back after a close are new sockets. */
static void test_socket_id_reuse(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	const struct tj_event evs[] = {
		ev(1, 1 * MS, TJ_EV_CONNECT, 9, 0, 0, 20),
		ev(1, 2 * MS, TJ_EV_SEND, 9, 0, 30, 20),
		ev(1, 3 * MS, TJ_EV_CLOSE, 9, 0, 0, 20),
		ev(1, 4 * MS, TJ_EV_ACCEPT, 9, 0, 0, 21),
		ev(1, 5 * MS, TJ_EV_RECV, 9, 0, 30, 21),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.m[0].role, TJ_ROLE_CLIENT);
	assert_int_equal(g.m[1].role, TJ_ROLE_SERVER);
	assert_int_equal(g.m[1].seq, 0);
	assert_int_equal(g.m[1].flags, TJ_MSG_NO_REPLY);
	/* the side channel tells the two apart though the key's sock is one */
	assert_int_equal(g.m[0].key.sock, g.m[1].key.sock);
	assert_int_equal(g.serial[0], 1);
	assert_int_equal(g.serial[1], 2);
	tj_assembler_free(a);
}

/* The order live capture writes: a SOCKET record announces every socket
 * before its accept; a connecting socket's state changes come first, the
 * first one before its local port is chosen, with no thread. */
static void test_capture_order(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	struct tj_event syn = ev(1, 1 * MS, TJ_EV_STATE, 20, 0, 0, 0);
	syn.arg = 7u << 8 | 2u; /* CLOSE -> SYN_SENT */
	syn.lport = 0;
	syn.pid = 0;
	struct tj_event est = ev(1, 2 * MS, TJ_EV_STATE, 20, 0, 0, 0);
	est.arg = 2u << 8 | 1u; /* SYN_SENT -> ESTABLISHED */
	est.lport = 41000;
	est.pid = 0;
	struct tj_event send = ev(1, 3 * MS, TJ_EV_SEND, 20, 0, 50, 31);
	send.lport = 41000;
	struct tj_event conn = ev(1, 1 * MS + 5, TJ_EV_CONNECT, 20, 0, -115, 31);
	conn.flags = TJ_EVF_ERROR; /* EINPROGRESS */
	conn.lport = 41000;
	const struct tj_event evs[] = {
		ev(1, 0, TJ_EV_SOCKET, 10, 0, 0, 30),
		ev(1, 0, TJ_EV_ACCEPT, 10, 0, 0, 30),
		ev(1, 1 * MS, TJ_EV_RECV, 10, 0, 80, 30),
		syn,
		conn,
		est,
		send,
		ev(1, 4 * MS, TJ_EV_RECV, 20, 0, 10, 31),
		ev(1, 5 * MS, TJ_EV_SEND, 10, 0, 10, 30),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(*evs));
	finish(a);
	assert_int_equal(g.n, 4);
	check_key(&g.m[0], 1, 10, TJ_DIR_IN, 0);
	assert_int_equal(g.m[0].role, TJ_ROLE_SERVER);
	assert_int_equal(g.m[0].flags, 0);
	check_key(&g.m[1], 1, 20, TJ_DIR_OUT, 0);
	assert_int_equal(g.m[1].role, TJ_ROLE_CLIENT);
	assert_int_equal(g.m[1].is_request, 1);
	assert_int_equal(g.m[1].flags, 0);
	assert_int_equal(g.m[1].lport, 41000);
	assert_int_equal(g.m[1].pid, 100);
	tj_assembler_free(a);
}

/* capture --tag: TAG events, read at the handshakes, wait for the socket
 * accepted on their addresses; each of several pending tags goes to its
 * own socket, a tag on other addresses to none, and a client socket
 * never takes one. */
static void test_tags_claimed_by_accepts(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	struct tj_event evs[16];
	size_t n = 0;
	for (unsigned k = 0; k < 3; k++) { /* three handshakes first */
		struct tj_event t = ev(2, 10 * MS + k, TJ_EV_TAG, 0, 500 + k, 0, 0);
		t.rport = (uint16_t)(40000 + k);
		t.arg = 7; /* the client's node */
		evs[n++] = t;
	}
	struct tj_event stray = ev(2, 11 * MS, TJ_EV_TAG, 0, 999, 0, 0);
	stray.rport = 45000;
	evs[n++] = stray;
	for (unsigned k = 0; k < 3; k++) { /* accepted in reverse order */
		unsigned c = 2 - k;
		struct tj_event ac = ev(2, 20 * MS + k, TJ_EV_ACCEPT, 60 + c, 0, 0, 1);
		ac.rport = (uint16_t)(40000 + c);
		struct tj_event rv = ev(2, 20 * MS + k, TJ_EV_RECV, 60 + c, 0, 10, 1);
		rv.rport = ac.rport;
		evs[n++] = ac;
		evs[n++] = rv;
	}
	/* A client socket on the stray tag's addresses: not a server. */
	struct tj_event cc = ev(2, 30 * MS, TJ_EV_CONNECT, 70, 0, 0, 1);
	cc.rport = 45000;
	struct tj_event cs = ev(2, 30 * MS, TJ_EV_SEND, 70, 0, 10, 1);
	cs.rport = 45000;
	evs[n++] = cc;
	evs[n++] = cs;
	feed_all(a, evs, n);
	finish(a);
	assert_int_equal(g.n, 4);
	for (size_t i = 0; i < g.n; i++) {
		const struct tj_message *m = &g.m[i];
		if (m->key.sock == 70) {
			assert_int_equal(m->has_origin, 0);
			continue;
		}
		assert_int_equal(m->has_origin, 1);
		assert_int_equal(m->origin_node, 7);
		assert_int_equal(m->origin_sock, 500 + (m->key.sock - 60));
		assert_int_equal(m->rport, 40000 + (m->key.sock - 60));
	}
	tj_assembler_free(a);
}

/* A socket id that comes back as a client before any byte moved drops
 * the origin its accept claimed. */
static void test_tag_dropped_on_new_role(void **state)
{
	struct got g;
	struct tj_assembler *a = mk(&g, NULL);
	struct tj_event t = ev(2, 1 * MS, TJ_EV_TAG, 0, 500, 0, 0);
	t.arg = 7;
	struct tj_event evs[] = {
		t,
		ev(2, 2 * MS, TJ_EV_ACCEPT, 60, 0, 0, 1),
		ev(2, 3 * MS, TJ_EV_CONNECT, 60, 0, 0, 1),
		ev(2, 4 * MS, TJ_EV_SEND, 60, 0, 10, 1),
	};
	feed_all(a, evs, sizeof(evs) / sizeof(evs[0]));
	finish(a);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.m[0].role, TJ_ROLE_CLIENT);
	assert_int_equal(g.m[0].has_origin, 0);
	tj_assembler_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive_three_requests),
		cmocka_unit_test(test_five_partial_reads),
		cmocka_unit_test(test_skewed_clocks),
		cmocka_unit_test(test_midstream),
		cmocka_unit_test(test_lost_events_gap),
		cmocka_unit_test(test_held_by_idle_rule),
		cmocka_unit_test(test_slightly_out_of_order),
		cmocka_unit_test(test_payload_masked),
		cmocka_unit_test(test_payload_continues),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_socket_id_reuse),
		cmocka_unit_test(test_capture_order),
		cmocka_unit_test(test_attach_roles),
		cmocka_unit_test(test_seq_unwrap),
		cmocka_unit_test(test_tags_claimed_by_accepts),
		cmocka_unit_test(test_tag_dropped_on_new_role),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
