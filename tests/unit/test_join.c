/* The cross-node join on hand-made messages: keepalive offsets, port
 * reuse (n-th with n-th), any interleaving of nodes, and the cases it
 * must refuse to join rather than join wrongly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "replay/join.h"

#define AF_INET_ 2

static struct tj_message msg(uint32_t node, uint64_t sock, int role, int dir,
			     uint64_t off, uint8_t la, uint16_t lp, uint8_t ra,
			     uint16_t rp)
{
	struct tj_message m;
	memset(&m, 0, sizeof(m));
	m.key.node = node;
	m.key.sock = sock;
	m.key.dir = (uint8_t)dir;
	m.key.offset = off;
	m.role = (uint8_t)role;
	m.is_request = (role == TJ_ROLE_CLIENT && dir == TJ_DIR_OUT) ||
		       (role == TJ_ROLE_SERVER && dir == TJ_DIR_IN);
	m.pid = 1000 + node;
	m.family = AF_INET_;
	m.laddr[0] = 10;
	m.laddr[3] = la;
	m.raddr[0] = 10;
	m.raddr[3] = ra;
	m.lport = lp;
	m.rport = rp;
	return m;
}

/* Client on node 1 (10.0.0.1:port) calling node 2 (10.0.0.2:80). */
static struct tj_message cli(uint64_t sock, int dir, uint64_t off,
			     uint16_t port)
{
	return msg(1, sock, TJ_ROLE_CLIENT, dir, off, 1, port, 2, 80);
}

static struct tj_message srv(uint64_t sock, int dir, uint64_t off,
			     uint16_t port)
{
	return msg(2, sock, TJ_ROLE_SERVER, dir, off, 2, 80, 1, port);
}

static void expect_pair(struct tj_join *j, uint32_t cn, uint64_t cs,
			uint64_t co, uint32_t sn, uint64_t ss)
{
	struct tj_msgkey call = { .node = cn, .sock = cs, .dir = TJ_DIR_OUT,
				  .offset = co };
	struct tj_msgkey req, back;
	assert_int_equal(tj_join_request_of(j, &call, &req), 1);
	assert_int_equal(req.node, sn);
	assert_int_equal(req.sock, ss);
	assert_int_equal(req.dir, TJ_DIR_IN);
	assert_int_equal(req.offset, co);
	assert_int_equal(tj_join_call_of(j, &req, &back), 1);
	assert_true(tj_msgkey_eq(&back, &call));
}

static void expect_none(struct tj_join *j, uint32_t cn, uint64_t cs,
			uint64_t co)
{
	struct tj_msgkey call = { .node = cn, .sock = cs, .dir = TJ_DIR_OUT,
				  .offset = co };
	struct tj_msgkey req;
	assert_int_equal(tj_join_request_of(j, &call, &req), 0);
}

/* Keepalive: three requests on one connection, and port reuse: the same
 * four-tuple again later, on new sockets at both ends. */
static void feed_keepalive_and_reuse(struct tj_join *j, int server_first)
{
	struct tj_message c[] = {
		cli(10, TJ_DIR_OUT, 0, 40000), cli(10, TJ_DIR_IN, 0, 40000),
		cli(10, TJ_DIR_OUT, 120, 40000), cli(10, TJ_DIR_IN, 300, 40000),
		cli(10, TJ_DIR_OUT, 250, 40000),
		cli(11, TJ_DIR_OUT, 0, 40000), cli(11, TJ_DIR_IN, 0, 40000),
		cli(12, TJ_DIR_OUT, 0, 40000),
	};
	struct tj_message s[] = {
		srv(20, TJ_DIR_IN, 0, 40000), srv(20, TJ_DIR_OUT, 0, 40000),
		srv(20, TJ_DIR_IN, 120, 40000), srv(20, TJ_DIR_OUT, 300, 40000),
		srv(20, TJ_DIR_IN, 250, 40000),
		srv(21, TJ_DIR_IN, 0, 40000), srv(21, TJ_DIR_OUT, 0, 40000),
		srv(22, TJ_DIR_IN, 0, 40000),
	};
	size_t n = sizeof(c) / sizeof(c[0]);
	if (server_first) {
		for (size_t i = 0; i < n; i++)
			assert_int_equal(tj_join_add(j, &s[i]), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(tj_join_add(j, &c[i]), 0);
	} else {
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(tj_join_add(j, &c[i]), 0);
			assert_int_equal(tj_join_add(j, &s[i]), 0);
		}
	}
}

static void test_keepalive_and_port_reuse(void **state)
{
	for (int order = 0; order < 2; order++) {
		struct tj_join *j;
		assert_int_equal(tj_join_new(&j, NULL), 0);
		feed_keepalive_and_reuse(j, order);
		assert_int_equal(tj_join_finish(j, NULL), 0);
		expect_pair(j, 1, 10, 0, 2, 20);
		expect_pair(j, 1, 10, 120, 2, 20);
		expect_pair(j, 1, 10, 250, 2, 20);
		expect_pair(j, 1, 11, 0, 2, 21);
		expect_pair(j, 1, 12, 0, 2, 22);
		const struct tj_join_stats *st = tj_join_stats(j);
		assert_int_equal(st->calls, 5);
		assert_int_equal(st->server_requests, 5);
		assert_int_equal(st->joined, 5);
		assert_int_equal(st->no_peer + st->ambiguous +
				 st->offset_misses + st->skipped, 0);
		struct tj_msgkey k = { .node = 2, .sock = 20, .dir = TJ_DIR_IN,
				       .offset = 120 };
		assert_int_equal(tj_join_pid_of(j, &k), 1002);
		k.sock = 99;
		assert_int_equal(tj_join_pid_of(j, &k), TJ_PID_UNKNOWN);
		/* Responses are not requests. */
		struct tj_msgkey resp = { .node = 1, .sock = 10,
					  .dir = TJ_DIR_IN, .offset = 0 };
		struct tj_msgkey out;
		assert_int_equal(tj_join_request_of(j, &resp, &out), 0);
		tj_join_free(j);
	}
}

static void test_unjoinable(void **state)
{
	struct tj_join *j;
	assert_int_equal(tj_join_new(&j, NULL), 0);
	/* A call to the outside world: no server end captured. */
	struct tj_message out = msg(1, 30, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1,
				    41000, 9, 443);
	/* A server end whose only request starts elsewhere (bytes lost). */
	struct tj_message c = cli(31, TJ_DIR_OUT, 50, 42000);
	struct tj_message s = srv(41, TJ_DIR_IN, 0, 42000);
	/* Two nodes claim the same client name at ordinal 0 (NAT). */
	struct tj_message a1 = cli(32, TJ_DIR_OUT, 0, 43000);
	struct tj_message a3 = msg(3, 32, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1,
				   43000, 2, 80);
	struct tj_message as = srv(42, TJ_DIR_IN, 0, 43000);
	/* Unknown role and mid-stream sockets are not numbered. */
	struct tj_message u = cli(33, TJ_DIR_OUT, 0, 44000);
	u.role = TJ_ROLE_UNKNOWN;
	u.is_request = 0; /* requests are client+out or server+in */
	struct tj_message mc = cli(34, TJ_DIR_OUT, 0, 45000);
	mc.flags = TJ_MSG_MIDSTREAM;
	struct tj_message ms = srv(44, TJ_DIR_IN, 0, 45000);
	ms.flags = TJ_MSG_MIDSTREAM;
	struct tj_message *all[] = { &out, &c, &s, &a1, &a3, &as, &u, &mc, &ms };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		assert_int_equal(tj_join_add(j, all[i]), 0);
	assert_int_equal(tj_join_finish(j, NULL), 0);
	expect_none(j, 1, 30, 0);
	expect_none(j, 1, 31, 50);
	expect_none(j, 1, 32, 0);
	expect_none(j, 3, 32, 0);
	expect_none(j, 1, 34, 0);
	const struct tj_join_stats *st = tj_join_stats(j);
	assert_int_equal(st->joined, 0);
	assert_int_equal(st->no_peer, 1);
	assert_int_equal(st->offset_misses, 1);
	assert_int_equal(st->ambiguous, 2);
	assert_int_equal(st->skipped, 2); /* mc and ms; u has no role */
	tj_join_free(j);
}

/* Sockets that predate capture: mid-stream messages join when their
 * offsets are sequence numbers (TJ_MSG_SEQ_OFFSET), also when the 32-bit
 * sequence wrapped between the two ends' first sights (the client first
 * saw 0xffffff00, the server only after the wrap); capture-start offsets
 * never join. */
static void test_seq_offsets(void **state)
{
	struct tj_join *j;
	struct tj_err err = { 0 };
	const uint64_t W = 1ull << 32;
	assert_int_equal(tj_join_new(&j, &err), 0);
	struct tj_message m[] = {
		/* connection 1: both ends seq offsets, client before the wrap */
		cli(10, TJ_DIR_OUT, 0xffffff00u, 40000), cli(10, TJ_DIR_IN, 7000, 40000),
		cli(10, TJ_DIR_OUT, W + 0x100, 40000), cli(10, TJ_DIR_IN, 7100, 40000),
		srv(20, TJ_DIR_IN, 0x100, 40000), srv(20, TJ_DIR_OUT, 7100, 40000),
		srv(20, TJ_DIR_IN, 0x300, 40000),
		/* connection 2: offsets from capture start: not joinable */
		cli(11, TJ_DIR_OUT, 50, 40001), srv(21, TJ_DIR_IN, 50, 40001),
	};
	size_t n = sizeof(m) / sizeof(*m);
	for (size_t i = 0; i < n; i++) {
		m[i].flags = TJ_MSG_MIDSTREAM | TJ_MSG_ROLE_GUESS;
		if (m[i].key.sock == 10 || m[i].key.sock == 20)
			m[i].flags |= TJ_MSG_SEQ_OFFSET;
		assert_int_equal(tj_join_add(j, &m[i]), 0);
	}
	assert_int_equal(tj_join_finish(j, &err), 0);
	struct tj_msgkey call = { .node = 1, .sock = 10, .dir = TJ_DIR_OUT,
				  .offset = W + 0x100 }, req, back;
	assert_int_equal(tj_join_request_of(j, &call, &req), 1);
	assert_int_equal(req.node, 2);
	assert_int_equal(req.sock, 20);
	assert_int_equal(req.offset, 0x100);
	assert_int_equal(tj_join_call_of(j, &req, &back), 1);
	assert_true(tj_msgkey_eq(&back, &call));
	/* the first call's request was not seen (cut on the server side) */
	expect_none(j, 1, 10, 0xffffff00u);
	expect_none(j, 1, 11, 50);
	const struct tj_join_stats *st = tj_join_stats(j);
	assert_int_equal(st->joined, 1);
	assert_int_equal(st->offset_misses, 1);
	assert_int_equal(st->skipped, 2);
	tj_join_free(j);
}

static void test_put(void **state)
{
	struct tj_join *j;
	assert_int_equal(tj_join_new(&j, NULL), 0);
	struct tj_msgkey c1 = { 1, 5, 0, TJ_DIR_OUT }, c2 = { 1, 6, 0, TJ_DIR_OUT };
	struct tj_msgkey r1 = { 2, 7, 0, TJ_DIR_IN }, r2 = { 2, 8, 0, TJ_DIR_IN };
	assert_int_equal(tj_join_put(j, &c1, &r1), 0);
	assert_int_equal(tj_join_put(j, &c1, &r1), 0);  /* same pair again */
	assert_int_equal(tj_join_put(j, &c1, &r2), -TJ_E_ARG);
	assert_int_equal(tj_join_put(j, &c2, &r1), -TJ_E_ARG);
	assert_int_equal(tj_join_put(j, &c2, &r2), 0);
	expect_pair(j, 1, 6, 0, 2, 8);
	assert_int_equal(tj_join_put_pid(j, &r2, 77), 0);
	assert_int_equal(tj_join_pid_of(j, &r2), 77);
	tj_join_free(j);
}

/* Many connections through one server port from many client ports, with
 * heavy port reuse: every call finds its own request. */
static void test_many(void **state)
{
	struct tj_join *j;
	assert_int_equal(tj_join_new(&j, NULL), 0);
	for (int round = 0; round < 20; round++)
		for (int p = 0; p < 50; p++) {
			uint64_t cs = 1000 + (uint64_t)round * 50 + (uint64_t)p;
			struct tj_message c = cli(cs, TJ_DIR_OUT, 0, (uint16_t)(30000 + p));
			struct tj_message s = srv(cs + 100000, TJ_DIR_IN, 0,
						  (uint16_t)(30000 + p));
			assert_int_equal(tj_join_add(j, &s), 0);
			assert_int_equal(tj_join_add(j, &c), 0);
		}
	assert_int_equal(tj_join_finish(j, NULL), 0);
	assert_int_equal(tj_join_stats(j)->joined, 1000);
	for (uint64_t cs = 1000; cs < 2000; cs++)
		expect_pair(j, 1, cs, 0, 2, cs + 100000);
	tj_join_free(j);
}

/* Through NAT.  The client (node 1, 10.0.0.1) dials a virtual address
 * 10.0.0.99:80; the server (node 2) sees its own 10.0.0.2:80, and under
 * SNAT a client address 10.0.0.50 too. */
static void test_nat(void **state)
{
	struct tj_join *j;
	assert_int_equal(tj_join_new(&j, NULL), 0);
	/* DNAT alone: the client's address and port survive. */
	struct tj_message d_c = msg(1, 10, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 40000, 99, 80);
	struct tj_message d_s = msg(2, 20, TJ_ROLE_SERVER, TJ_DIR_IN, 0, 2, 80, 1, 40000);
	/* DNAT+SNAT with a tag: only the tag links the two. */
	struct tj_message t_c = msg(1, 11, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 40001, 99, 80);
	struct tj_message t_s = msg(2, 21, TJ_ROLE_SERVER, TJ_DIR_IN, 0, 2, 80, 50, 5000);
	t_s.has_origin = 1;
	t_s.origin_node = 1;
	t_s.origin_sock = 11;
	/* DNAT+SNAT without a tag: nothing links them. */
	struct tj_message n_c = msg(1, 12, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 40002, 99, 80);
	struct tj_message n_s = msg(2, 22, TJ_ROLE_SERVER, TJ_DIR_IN, 0, 2, 80, 50, 5001);
	/* A client half two nodes claim (the same private address on two
	 * hosts): the fallback must not pick one. */
	struct tj_message a_c1 = msg(1, 13, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 40003, 99, 80);
	struct tj_message a_c3 = msg(3, 13, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 40003, 98, 80);
	struct tj_message a_s = msg(2, 23, TJ_ROLE_SERVER, TJ_DIR_IN, 0, 2, 80, 1, 40003);
	/* A tag naming a client node that was not captured. */
	struct tj_message o_s = msg(2, 24, TJ_ROLE_SERVER, TJ_DIR_IN, 0, 2, 80, 50, 5002);
	o_s.has_origin = 1;
	o_s.origin_node = 9;
	o_s.origin_sock = 99;
	struct tj_message *all[] = { &d_c, &d_s, &t_c, &t_s, &n_c, &n_s,
				     &a_c1, &a_c3, &a_s, &o_s };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		assert_int_equal(tj_join_add(j, all[i]), 0);
	/* The tag holds at once; the address fallback after finish. */
	expect_pair(j, 1, 11, 0, 2, 21);
	expect_none(j, 1, 10, 0);
	assert_int_equal(tj_join_finish(j, NULL), 0);
	expect_pair(j, 1, 10, 0, 2, 20);
	expect_pair(j, 1, 11, 0, 2, 21);
	expect_none(j, 1, 12, 0);
	expect_none(j, 1, 13, 0);
	expect_none(j, 3, 13, 0);
	struct tj_msgkey call = { .node = 1, .sock = 10, .dir = TJ_DIR_OUT };
	unsigned via = 99;
	assert_int_equal(tj_join_explain(j, &call, &via), TJ_JOIN_OK);
	assert_int_equal(via, TJ_JOIN_BY_CLIENT_ADDR);
	call.sock = 11;
	assert_int_equal(tj_join_explain(j, &call, &via), TJ_JOIN_OK);
	assert_int_equal(via, TJ_JOIN_BY_TAG);
	call.sock = 12;
	int r = tj_join_explain(j, &call, &via);
	assert_int_equal(r, TJ_JOIN_NO_PEER);
	assert_non_null(strstr(tj_join_result_text(r), "--tag"));
	struct tj_msgkey req = { .node = 2, .sock = 24, .dir = TJ_DIR_IN }, back;
	assert_int_equal(tj_join_call_of(j, &req, &back), 0);
	const struct tj_join_stats *st = tj_join_stats(j);
	assert_int_equal(st->calls, 5);
	assert_int_equal(st->joined, 2);
	assert_int_equal(st->joined_by_tag, 1);
	assert_int_equal(st->joined_by_client_addr, 1);
	assert_int_equal(st->no_peer, 3); /* n_c, a_c1, a_c3 */
	tj_join_free(j);
}

/* The fallback pairs the n-th with the n-th when a client port is used
 * again through the same DNAT, and leaves a half alone whose counts differ. */
static void test_nat_port_reuse(void **state)
{
	struct tj_join *j;
	assert_int_equal(tj_join_new(&j, NULL), 0);
	for (uint64_t k = 0; k < 3; k++) {
		struct tj_message c = msg(1, 30 + k, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 41000, 99, 80);
		struct tj_message sv = msg(2, 40 + k, TJ_ROLE_SERVER, TJ_DIR_IN, 0, 2, 80, 1, 41000);
		assert_int_equal(tj_join_add(j, &sv), 0);
		assert_int_equal(tj_join_add(j, &c), 0);
	}
	/* Two calls from port 42000, one server end: not paired. */
	struct tj_message u1 = msg(1, 50, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 42000, 99, 80);
	struct tj_message u2 = msg(1, 51, TJ_ROLE_CLIENT, TJ_DIR_OUT, 0, 1, 42000, 99, 80);
	struct tj_message us = msg(2, 52, TJ_ROLE_SERVER, TJ_DIR_IN, 0, 2, 80, 1, 42000);
	assert_int_equal(tj_join_add(j, &u1), 0);
	assert_int_equal(tj_join_add(j, &u2), 0);
	assert_int_equal(tj_join_add(j, &us), 0);
	assert_int_equal(tj_join_finish(j, NULL), 0);
	for (uint64_t k = 0; k < 3; k++)
		expect_pair(j, 1, 30 + k, 0, 2, 40 + k);
	expect_none(j, 1, 50, 0);
	expect_none(j, 1, 51, 0);
	assert_int_equal(tj_join_stats(j)->joined_by_client_addr, 3);
	tj_join_free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive_and_port_reuse),
		cmocka_unit_test(test_seq_offsets),
		cmocka_unit_test(test_unjoinable),
		cmocka_unit_test(test_put),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_nat),
		cmocka_unit_test(test_nat_port_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
