/* Event CSV import: rows -> events, bad rows refused with file:line:column,
 * and CSV -> evlog -> events round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "../../datasets/import/import.h"
#include "../../lib/evlog.h"
#include "../../replay/join.h"

#define HEADER "ts_ns,node,pid,tid,fd,sock,type,family,laddr,lport,raddr,rport,bytes,offset,payload_hex,flags,arg,stack_id,tcp_seq\n"

struct got {
	struct tj_event ev[8];
	uint8_t payload[8][TJ_PAYLOAD_MAX];
	size_t n;
};

static int collect(void *ctx, const struct tj_event *ev, struct tj_err *err)
{
	struct got *g = ctx;
	(void)err;
	assert_true(g->n < 8);
	g->ev[g->n] = *ev;
	if (ev->payload_len) {
		memcpy(g->payload[g->n], ev->payload, ev->payload_len);
		g->ev[g->n].payload = g->payload[g->n];
	}
	g->n++;
	return 0;
}

static int parse(const char *text, struct got *g, struct tj_err *err)
{
	memset(g, 0, sizeof(*g));
	memset(err, 0, sizeof(*err));
	return tj_event_csv_parse("ev.csv", text, strlen(text), collect, g, err);
}

static void test_good_rows(void **state)
{
	(void)state;
	const char *text = HEADER
		"1000,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,474554,0,0,0,0\n"
		"2000,3,41,0,-1,901,recv,ipv6,fe80::1,8080,::1,51000,-104,18446744073709551615,,0x6,5,9,4294967295\n"
		"3000,3,0,0,-1,902,lost,,,0,,0,12,0,,0,0,0,0\n"
		"4000,3,0,0,-1,902,77,,,0,,0,0,0,,0,0,0,0"; /* a newer type; no final newline */
	struct got g;
	struct tj_err err;
	assert_int_equal(parse(text, &g, &err), 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.ev[3].type, 77);
	const struct tj_event *e = &g.ev[0];
	assert_int_equal(e->ts_ns, 1000);
	assert_int_equal(e->node, 3);
	assert_int_equal(e->pid, 41);
	assert_int_equal(e->tid, 42);
	assert_int_equal(e->fd, 7);
	assert_int_equal(e->sock, 900);
	assert_int_equal(e->type, TJ_EV_SEND);
	assert_int_equal(e->family, AF_INET);
	assert_int_equal(e->laddr[0], 10);
	assert_int_equal(e->laddr[3], 1);
	assert_int_equal(e->lport, 40000);
	assert_int_equal(e->raddr[3], 2);
	assert_int_equal(e->rport, 80);
	assert_int_equal(e->bytes, 120);
	assert_int_equal(e->payload_len, 3);
	assert_memory_equal(e->payload, "GET", 3);
	e = &g.ev[1];
	assert_int_equal(e->family, AF_INET6);
	assert_int_equal(e->laddr[0], 0xfe);
	assert_int_equal(e->raddr[15], 1);
	assert_int_equal(e->fd, -1);
	assert_int_equal(e->bytes, -104);
	assert_true(e->offset == UINT64_MAX);
	assert_int_equal(e->payload_len, 0);
	assert_int_equal(e->flags, 6);
	assert_int_equal(e->arg, 5);
	assert_int_equal(e->stack_id, 9);
	assert_int_equal(e->tcp_seq, UINT32_MAX);
	e = &g.ev[2];
	assert_int_equal(e->type, TJ_EV_LOST);
	assert_int_equal(e->family, 0);
}

/* Columns are found by name; the last four may be left out. */
static void test_column_order(void **state)
{
	(void)state;
	const char *text =
		"node,ts_ns,type,pid,tid,fd,sock,family,laddr,lport,raddr,rport,bytes,offset,payload_hex,flags\r\n"
		"5,77,accept,1,2,3,4,ipv4,1.2.3.4,80,5.6.7.8,9999,0,0,,1\r\n"
		"\n"; /* CRLF ends and a blank line are fine */
	struct got g;
	struct tj_err err;
	assert_int_equal(parse(text, &g, &err), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ev[0].node, 5);
	assert_int_equal(g.ev[0].ts_ns, 77);
	assert_int_equal(g.ev[0].type, TJ_EV_ACCEPT);
	assert_int_equal(g.ev[0].flags, 1);
	assert_int_equal(g.ev[0].stack_id, 0);
}

struct bad {
	const char *text;
	const char *msg; /* expected start of the message */
};

#define ROW "1000,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n"

static const struct bad bads[] = {
	{ "", "ev.csv: empty file" },
	{ "ts_ns,node\n", "ev.csv:1: header lacks the column 'pid'" },
	{ "ts_ns,node,pid,tid,fd,sock,type,family,laddr,lport,raddr,rport,bytes,offset\n",
	  "ev.csv:1: header lacks the column 'payload_hex'" },
	{ "ts_ns,node,pid,tid,fd,sock,type,family,laddr,lport,raddr,rport,bytes,offset,payload_hex,comm\n",
	  "ev.csv:1:89: unknown column 'comm'" },
	{ HEADER "1000,3,41\n", "ev.csv:2: 3 fields, the header has 19" },
	{ HEADER ROW "1000,3,4x1,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:3:8: pid '4x1' is not a number" },
	{ HEADER "1000,3,41,42,7,900,sned,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:20: unknown event type 'sned'" },
	{ HEADER "1000,3,41,42,7,900,none,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:20: unknown event type 'none'" },
	{ HEADER "1000,3,41,42,7,900,0,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:20: unknown event type '0'" },
	{ HEADER "1000,3,41,42,7,900,256,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:20: type '256' is not a number 0..255" },
	{ HEADER "1000,3,41,42,7,900,send,ipx,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:25: family 'ipx'" },
	{ HEADER "1000,3,41,42,7,900,send,ipv6,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:30: laddr '10.0.0.1' is not of family 'ipv6'" },
	{ HEADER "1000,3,41,42,7,900,send,ipv4,10.0.0.300,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:30: laddr '10.0.0.300' is not an address" },
	{ HEADER "1000,3,41,42,7,900,send,ipv4,10.0.0.1,70000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:39: lport '70000' is not a number 0..65535" },
	{ HEADER "1000,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,abc,0,0,0,0\n",
	  "ev.csv:2:63: payload_hex has 3 digits" },
	{ HEADER "1000,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,zz,0,0,0,0\n",
	  "ev.csv:2:63: payload_hex: 'zz'" },
	{ HEADER "-5,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0\n",
	  "ev.csv:2:1: ts_ns '-5' is not a number" },
	{ HEADER "1000,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,,0,,0,0,0,0\n",
	  "ev.csv:2:57: bytes '' is not a number" },
	{ HEADER "1000,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,,0,0,0,0x100000000\n",
	  "ev.csv:2:70: tcp_seq '0x100000000' is not a number 0..4294967295" },
	{ HEADER "1000,3,41,42,7,900,\"send,ipv4,10.0.0.1\n", "ev.csv:2: quoted field not closed" },
	{ HEADER "1000,3\r,41\n", "ev.csv:2: carriage return inside a line" },
	{ "ts_ns,ts_ns\n", "ev.csv:1:7: column 'ts_ns' twice" },
};

static void test_bad_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct got g;
		struct tj_err err;
		int rc = parse(bads[i].text, &g, &err);
		if (rc >= 0 || strncmp(err.msg, bads[i].msg, strlen(bads[i].msg)) != 0)
			fail_msg("case %zu: rc %d, message '%s', wanted '%s...'", i, rc,
				 err.msg, bads[i].msg);
	}
}

static char *tmp_path(const char *name)
{
	static char path[256];
	snprintf(path, sizeof(path), "/tmp/tj-test-import-csv-%d-%s", (int)getpid(), name);
	return path;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* CSV -> evlog -> the same events. */
static void test_to_evlog(void **state)
{
	(void)state;
	const char *text = HEADER
		"1000,3,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,0,474554,0,0,0,0\n"
		"2000,3,41,0,-1,901,recv,ipv6,fe80::1,8080,::1,51000,-104,7,,2,5,9,77\n";
	char in[256], out[256];
	snprintf(in, sizeof(in), "%s", tmp_path("in.csv"));
	snprintf(out, sizeof(out), "%s", tmp_path("out.evlog"));
	write_text(in, text);
	unlink(out);
	struct tj_csv_import_stats st;
	struct tj_err err = { 0 };
	assert_int_equal(tj_import_csv(in, out, -1, 0, &st, &err), 0);
	assert_int_equal(st.rows, 2);
	assert_int_equal(st.node, 3);

	struct got want;
	assert_int_equal(parse(text, &want, &err), 0);
	struct tj_evlog_reader *r;
	assert_int_equal(tj_evlog_open(&r, out, &err), 0);
	assert_int_equal(tj_evlog_header(r)->node, 3);
	const struct tj_event *ev;
	size_t n = 0;
	while (tj_evlog_next(r, &ev, &err) == 1) {
		assert_true(n < want.n);
		const struct tj_event *w = &want.ev[n++];
		assert_int_equal(ev->ts_ns, w->ts_ns);
		assert_int_equal(ev->sock, w->sock);
		assert_int_equal(ev->bytes, w->bytes);
		assert_int_equal(ev->offset, w->offset);
		assert_int_equal(ev->pid, w->pid);
		assert_int_equal(ev->tid, w->tid);
		assert_int_equal(ev->fd, w->fd);
		assert_int_equal(ev->type, w->type);
		assert_int_equal(ev->family, w->family);
		assert_int_equal(ev->lport, w->lport);
		assert_int_equal(ev->rport, w->rport);
		assert_memory_equal(ev->laddr, w->laddr, 16);
		assert_memory_equal(ev->raddr, w->raddr, 16);
		assert_int_equal(ev->flags, w->flags);
		assert_int_equal(ev->arg, w->arg);
		assert_int_equal(ev->stack_id, w->stack_id);
		assert_int_equal(ev->tcp_seq, w->tcp_seq);
		assert_int_equal(ev->payload_len, w->payload_len);
		if (w->payload_len)
			assert_memory_equal(ev->payload, w->payload, w->payload_len);
	}
	assert_int_equal(n, 2);
	tj_evlog_close_reader(r);

	/* An existing output is refused without force, replaced with it. */
	assert_true(tj_import_csv(in, out, -1, 0, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "exists"));
	assert_int_equal(tj_import_csv(in, out, -1, TJ_IMPORT_FORCE, &st, &err), 0);
	unlink(out);

	/* Rows of two nodes: refused, no file left behind. */
	write_text(in, HEADER ROW
		   "1001,4,41,42,7,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,120,120,,0,0,0,0\n");
	assert_true(tj_import_csv(in, out, -1, 0, &st, &err) < 0);
	assert_non_null(strstr(err.msg, ":3: node 4, but the log is node 3"));
	assert_int_equal(access(out, F_OK), -1);

	/* A bad row after good ones: no file left behind either. */
	write_text(in, HEADER ROW "x\n");
	assert_true(tj_import_csv(in, out, -1, 0, &st, &err) < 0);
	assert_int_equal(access(out, F_OK), -1);

	/* Header only: the node must be given. */
	write_text(in, HEADER);
	assert_true(tj_import_csv(in, out, -1, 0, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "--node"));
	assert_int_equal(tj_import_csv(in, out, 9, 0, &st, &err), 0);
	assert_int_equal(st.rows, 0);
	assert_int_equal(tj_evlog_open(&r, out, &err), 0);
	assert_int_equal(tj_evlog_header(r)->node, 9);
	assert_int_equal(tj_evlog_next(r, &ev, &err), 0);
	tj_evlog_close_reader(r);
	unlink(out);
	unlink(in);
}

/* A foreign capture that began mid-stream: no connect or accept rows,
 * rows flagged offset_from_start (1) with their TCP sequence numbers,
 * the server node's listening socket as a listen row and the end of its
 * list as a scan row.  Imported, both nodes' sockets get sides, the
 * sequence (which wraps inside the first request) gives offsets that
 * are the same at both ends, and every call but the first (cut by the
 * capture's start) joins its server request. */
static void test_midstream_import(void **state)
{
	(void)state;
	const char *cli = HEADER
		"10,1,5,5,3,900,scan,,,0,,0,0,0,,0,0,0,0\n"
		"1000,1,5,5,3,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,100,0,,1,0,0,4294967200\n"
		"2000,1,5,5,3,900,recv,ipv4,10.0.0.1,40000,10.0.0.2,80,50,0,,1,0,0,5000\n"
		"3000,1,5,5,3,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,100,0,,1,0,0,4\n"
		"4000,1,5,5,3,900,recv,ipv4,10.0.0.1,40000,10.0.0.2,80,50,0,,1,0,0,5050\n"
		"5000,1,5,5,3,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,60,0,,1,0,0,104\n"
		"5001,1,5,5,3,900,send,ipv4,10.0.0.1,40000,10.0.0.2,80,40,0,,1,0,0,164\n"
		"6000,1,5,5,3,900,recv,ipv4,10.0.0.1,40000,10.0.0.2,80,50,0,,1,0,0,5100\n";
	const char *srv = HEADER
		"10,2,0,0,-1,33,listen,ipv4,0.0.0.0,80,0.0.0.0,0,0,0,,0,0,0,0\n"
		"10,2,0,0,-1,0,scan,,,0,,0,1,0,,0,0,0,0\n"
		"1500,2,7,7,4,77,recv,ipv4,10.0.0.2,80,10.0.0.1,40000,100,0,,1,0,0,4294967200\n"
		"1600,2,7,7,4,77,send,ipv4,10.0.0.2,80,10.0.0.1,40000,50,0,,1,0,0,5000\n"
		"3500,2,7,7,4,77,recv,ipv4,10.0.0.2,80,10.0.0.1,40000,100,0,,1,0,0,4\n"
		"3600,2,7,7,4,77,send,ipv4,10.0.0.2,80,10.0.0.1,40000,50,0,,1,0,0,5050\n"
		"5500,2,7,7,4,77,recv,ipv4,10.0.0.2,80,10.0.0.1,40000,100,0,,1,0,0,104\n"
		"5600,2,7,7,4,77,send,ipv4,10.0.0.2,80,10.0.0.1,40000,50,0,,1,0,0,5100\n";
	char in[256], out1[256], out2[256];
	snprintf(in, sizeof(in), "%s", tmp_path("mid.csv"));
	snprintf(out1, sizeof(out1), "%s", tmp_path("node-1.evlog"));
	snprintf(out2, sizeof(out2), "%s", tmp_path("node-2.evlog"));
	unlink(out1);
	unlink(out2);
	struct tj_csv_import_stats st;
	struct tj_err err = { 0 };
	write_text(in, cli);
	assert_int_equal(tj_import_csv(in, out1, -1, 0, &st, &err), 0);
	write_text(in, srv);
	assert_int_equal(tj_import_csv(in, out2, -1, 0, &st, &err), 0);

	/* offsets from the sequence, unwrapped, flagged */
	struct tj_evlog_reader *r;
	const struct tj_event *ev;
	const uint64_t want[] = { 4294967200u, 5000, 0x100000004ull, 5050,
				  0x100000068ull, 0x1000000a4ull, 5100 };
	size_t n = 0;
	assert_int_equal(tj_evlog_open(&r, out1, &err), 0);
	while (tj_evlog_next(r, &ev, &err) == 1) {
		if (ev->type == TJ_EV_SCAN)
			continue;
		assert_true(n < 7);
		assert_int_equal(ev->offset, want[n++]);
		assert_int_equal(ev->flags, TJ_EVF_SEQ_OFFSET);
	}
	assert_int_equal(n, 7);
	tj_evlog_close_reader(r);

	struct tj_join *j;
	char *inputs[2] = { out1, out2 };
	int damaged = 0;
	assert_int_equal(tj_join_from_logs(&j, inputs, 2, &damaged, &err), 0);
	assert_int_equal(damaged, 0);
	const struct tj_join_stats *js = tj_join_stats(j);
	assert_int_equal(js->calls, 2);
	assert_int_equal(js->server_requests, 2);
	assert_int_equal(js->joined, 2);
	assert_int_equal(js->skipped, 0);
	struct tj_msgkey call = { .node = 1, .sock = 900, .dir = TJ_DIR_OUT,
				  .offset = 0x100000068ull }, req;
	assert_int_equal(tj_join_request_of(j, &call, &req), 1);
	assert_int_equal(req.node, 2);
	assert_int_equal(req.sock, 77);
	assert_int_equal(req.offset, 0x100000068ull);
	tj_join_free(j);
	unlink(out1);
	unlink(out2);
	unlink(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_rows),
		cmocka_unit_test(test_column_order),
		cmocka_unit_test(test_bad_rows),
		cmocka_unit_test(test_to_evlog),
		cmocka_unit_test(test_midstream_import),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
