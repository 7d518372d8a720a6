/* capture's user side without BPF: ring records in, evlogs out.  Records
 * arriving out of time order come out sorted (ties in arrival order),
 * IPv4-mapped IPv6 connections become IPv4, payloads survive, LOST
 * markers and drop counts reach every log, --netns splits by namespace
 * with the namespace inode as node id, and existing logs are refused
 * without --force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "../../capture/recorder.h"
#include "../../lib/evlog.h"

struct rec_buf {
	struct tjc_event ev;
	uint8_t payload[TJC_PAYLOAD_MAX];
};

static void make(struct rec_buf *r, uint64_t ts, uint64_t sock, uint8_t type,
		 uint32_t netns)
{
	memset(r, 0, sizeof(*r));
	r->ev.ts_ns = ts;
	r->ev.sock = sock;
	r->ev.type = type;
	r->ev.netns = netns;
	r->ev.pid = 10;
	r->ev.tid = 11;
	r->ev.fd = 3;
	r->ev.family = 2;
	r->ev.lport = 1000;
	r->ev.rport = 80;
	r->ev.laddr[0] = 127;
	r->ev.laddr[3] = 1;
	r->ev.raddr[0] = 127;
	r->ev.raddr[3] = 2;
}

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/tj-test-recorder.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct tj_recorder *open_rec(const char *out, int per_netns, int force)
{
	struct tj_recorder_opts o = { .out = out, .per_netns = per_netns, .force = force };
	struct tj_recorder *r = NULL;
	struct tj_err err = { 0 };
	o.header.node = 7;
	strcpy(o.header.hostname, "test");
	assert_int_equal(tj_recorder_open(&r, &o, &err), 0);
	return r;
}

static void test_sorted_and_mapped(void **state)
{
	char path[128];
	struct tj_err err = { 0 };
	struct rec_buf b;
	snprintf(path, sizeof(path), "%s/a.evlog", dir);
	struct tj_recorder *r = open_rec(path, 0, 0);

	/* ts 300, 100, 200, then 200 again (a tie: arrival order). */
	make(&b, 300, 1, TJ_EV_SEND, 0);
	assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
	make(&b, 100, 2, TJ_EV_RECV, 0);
	b.ev.payload_len = 3;
	memcpy(b.payload, "GET", 3);
	assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b), &err), 0);
	make(&b, 200, 3, TJ_EV_ACCEPT, 0);
	assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
	make(&b, 200, 4, TJ_EV_CONNECT, 0);
	/* ::ffff:10.0.0.1 -> ::ffff:10.0.0.2 */
	b.ev.family = 10;
	memset(b.ev.laddr, 0, 16);
	memset(b.ev.raddr, 0, 16);
	b.ev.laddr[10] = b.ev.laddr[11] = 0xff;
	b.ev.raddr[10] = b.ev.raddr[11] = 0xff;
	b.ev.laddr[12] = 10; b.ev.laddr[15] = 1;
	b.ev.raddr[12] = 10; b.ev.raddr[15] = 2;
	assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
	/* Only what is older than 250 goes out now. */
	assert_int_equal(tj_recorder_write_until(r, 250, 1, &err), 0);
	assert_int_equal(tj_recorder_events(r), 3);
	assert_int_equal(tj_recorder_lost(r, 260, TJ_DROP_RINGBUF, 5, &err), 0);
	assert_int_equal(tj_recorder_close(r, &err), 0);

	struct tj_evlog_reader *rd;
	const struct tj_event *ev;
	assert_int_equal(tj_evlog_open(&rd, path, &err), 0);
	assert_int_equal(tj_evlog_header(rd)->node, 7);
	uint64_t want_sock[] = { 2, 3, 4, 0, 1 };
	unsigned want_type[] = { TJ_EV_RECV, TJ_EV_ACCEPT, TJ_EV_CONNECT, TJ_EV_LOST, TJ_EV_SEND };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(tj_evlog_next(rd, &ev, &err), 1);
		assert_int_equal(ev->sock, want_sock[i]);
		assert_int_equal(ev->type, want_type[i]);
		assert_int_equal(ev->node, 7);
		if (ev->type == TJ_EV_RECV) {
			assert_int_equal(ev->payload_len, 3);
			assert_memory_equal(ev->payload, "GET", 3);
		}
		if (ev->type == TJ_EV_CONNECT) {
			uint8_t l[16] = { 10, 0, 0, 1 }, rr[16] = { 10, 0, 0, 2 };
			assert_int_equal(ev->family, 2);
			assert_memory_equal(ev->laddr, l, 16);
			assert_memory_equal(ev->raddr, rr, 16);
		}
		if (ev->type == TJ_EV_LOST) {
			assert_int_equal(ev->bytes, 5);
			assert_int_equal(ev->arg, TJ_DROP_RINGBUF);
		}
	}
	assert_int_equal(tj_evlog_next(rd, &ev, &err), 0);
	const struct tj_evlog_footer *f = tj_evlog_footer(rd);
	assert_non_null(f);
	assert_int_equal(f->drops[TJ_DROP_RINGBUF], 5);
	tj_evlog_close_reader(rd);

	/* The same path again: refused without force. */
	struct tj_recorder_opts o = { .out = path };
	struct tj_recorder *r2 = NULL;
	assert_int_not_equal(tj_recorder_open(&r2, &o, &err), 0);
	assert_non_null(strstr(err.msg, "a.evlog"));
}

/* Drains as capture makes them with one ring per CPU: each drain brings
 * one sorted run per CPU, one after the other, overlapping in time with
 * each other and with what the last drain left held.  Everything must
 * come out in time order, ties in arrival order, nothing lost. */
static void test_merge_across_drains(void **state)
{
	char path[128];
	struct tj_err err = { 0 };
	struct rec_buf b;
	uint64_t n = 0;
	snprintf(path, sizeof(path), "%s/m.evlog", dir);
	struct tj_recorder *r = open_rec(path, 0, 0);

	for (int drain = 0; drain < 6; drain++) {
		for (int cpu = 0; cpu < 2; cpu++)
			for (int k = 0; k < 50; k++) {
				/* CPU 0 on even, CPU 1 on odd microseconds; sock
				 * numbers the arrival order. */
				uint64_t ts = 1000 * (uint64_t)(drain * 50 + k) * 2 + cpu;
				if (k == 10)
					ts = 1000 * (uint64_t)(drain * 50) * 2 + 5; /* a tie of both CPUs */
				make(&b, ts, ++n, TJ_EV_SEND, 0);
				assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
			}
		/* Hold the newest half as capture holds its reorder window. */
		assert_int_equal(tj_recorder_write_until(r, 1000 * (uint64_t)(drain * 50 + 25) * 2,
							 0, &err), 0);
	}
	assert_int_equal(tj_recorder_close(r, &err), 0);

	struct tj_evlog_reader *rd;
	const struct tj_event *ev;
	uint64_t last_ts = 0, last_sock = 0, count = 0;
	assert_int_equal(tj_evlog_open(&rd, path, &err), 0);
	while (tj_evlog_next(rd, &ev, &err) == 1) {
		assert_true(ev->ts_ns >= last_ts);
		if (ev->ts_ns == last_ts)
			assert_true(ev->sock > last_sock); /* ties: arrival order */
		last_ts = ev->ts_ns;
		last_sock = ev->sock;
		count++;
	}
	assert_int_equal(count, n);
	tj_evlog_close_reader(rd);
}

/* Many drains of many CPUs' runs, some records out of order inside a
 * run and many equal times, the window holding a random share: enough
 * events that the recorder's key array fills and is compacted several
 * times under runs still waiting.  Every event comes out once, in time
 * order, ties in arrival order. */
static void test_merge_many_runs(void **state)
{
	char path[128];
	struct tj_err err = { 0 };
	struct rec_buf b;
	uint64_t n = 0, now = 1000000, seed = 7;
	snprintf(path, sizeof(path), "%s/many.evlog", dir);
	struct tj_recorder *r = open_rec(path, 0, 0);

	for (int drain = 0; drain < 400; drain++) {
		int cpus = 1 + drain % 7;
		for (int cpu = 0; cpu < cpus; cpu++) {
			uint64_t ts = now - 5000 + (uint64_t)cpu;
			int len = (int)((seed = seed * 6364136223846793005ull + 1) >> 58);
			for (int k = 0; k < len; k++) {
				uint64_t x = (seed = seed * 6364136223846793005ull + 1) >> 33;
				if (x % 13 == 0 && ts > now - 8000 + 3000)
					ts -= x % 3000;   /* a record older than the one before */
				else if (x % 3)
					ts += x % 200;    /* else the same time again */
				make(&b, ts, ++n, TJ_EV_SEND, 0);
				assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
			}
		}
		now += 1000;
		/* Never write past what a later drain can still bring (its
		 * records are at most 8000 older than its now), as capture's
		 * window does. */
		uint64_t hold = 9000 + ((seed = seed * 6364136223846793005ull + 1) >> 40) % 20000;
		assert_int_equal(tj_recorder_write_until(r, now - hold, drain % 50 == 0, &err), 0);
	}
	assert_int_equal(tj_recorder_close(r, &err), 0);

	struct tj_evlog_reader *rd;
	const struct tj_event *ev;
	uint64_t last_ts = 0, last_sock = 0, count = 0;
	uint8_t *seen = calloc(n + 1, 1);
	assert_non_null(seen);
	assert_int_equal(tj_evlog_open(&rd, path, &err), 0);
	while (tj_evlog_next(rd, &ev, &err) == 1) {
		assert_true(ev->ts_ns >= last_ts || count == 0);
		if (ev->ts_ns == last_ts && count > 0)
			assert_true(ev->sock > last_sock); /* ties: arrival order */
		assert_true(ev->sock >= 1 && ev->sock <= n);
		assert_int_equal(seen[ev->sock], 0);
		seen[ev->sock] = 1;
		last_ts = ev->ts_ns;
		last_sock = ev->sock;
		count++;
	}
	assert_int_equal(count, n);
	assert_true(n > 20000);
	free(seen);
	tj_evlog_close_reader(rd);
}

/* A reader catching up drains far more than one pool chunk (16384 held
 * events) before writing any: every event held comes out once, in time
 * order, with its payload, and the slots are reused by the next burst. */
static void test_burst_spans_pool_chunks(void **state)
{
	char path[128];
	struct tj_err err = { 0 };
	struct rec_buf b;
	const uint64_t per_burst = 40000;
	uint64_t n = 0;
	snprintf(path, sizeof(path), "%s/burst.evlog", dir);
	struct tj_recorder *r = open_rec(path, 0, 0);

	for (int burst = 0; burst < 2; burst++) {
		/* Two CPUs' runs, interleaved in time. */
		for (int cpu = 0; cpu < 2; cpu++)
			for (uint64_t k = 0; k < per_burst / 2; k++) {
				uint64_t ts = 1000000 * (uint64_t)(burst + 1) + 2 * k + (uint64_t)cpu;
				make(&b, ts, ts, TJ_EV_SEND, 0);
				b.ev.payload_len = 8;
				memcpy(b.ev.payload, &ts, 8);
				assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev) + 8, &err), 0);
				n++;
			}
		assert_int_equal(tj_recorder_write_until(r, UINT64_MAX, 1, &err), 0);
	}
	assert_int_equal(tj_recorder_close(r, &err), 0);

	struct tj_evlog_reader *rd;
	const struct tj_event *ev;
	uint64_t last = 0, count = 0, pl;
	assert_int_equal(tj_evlog_open(&rd, path, &err), 0);
	while (tj_evlog_next(rd, &ev, &err) == 1) {
		assert_true(ev->ts_ns > last);
		assert_int_equal(ev->sock, ev->ts_ns);
		assert_int_equal(ev->payload_len, 8);
		memcpy(&pl, ev->payload, 8);
		assert_int_equal(pl, ev->ts_ns);
		last = ev->ts_ns;
		count++;
	}
	assert_int_equal(count, n);
	tj_evlog_close_reader(rd);
}

static void test_per_netns(void **state)
{
	char out[128], path[192];
	struct tj_err err = { 0 };
	struct rec_buf b;
	snprintf(out, sizeof(out), "%s/logs", dir);
	struct tj_recorder *r = open_rec(out, 1, 0);

	make(&b, 10, 1, TJ_EV_CONNECT, 4026532001u);
	assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
	make(&b, 20, 2, TJ_EV_ACCEPT, 4026532002u);
	assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
	make(&b, 30, 1, TJ_EV_SEND, 4026532001u);
	assert_int_equal(tj_recorder_add(r, &b.ev, sizeof(b.ev), &err), 0);
	assert_int_equal(tj_recorder_close(r, &err), 0);

	uint32_t ns[2] = { 4026532001u, 4026532002u };
	int count[2] = { 2, 1 };
	for (int i = 0; i < 2; i++) {
		struct tj_evlog_reader *rd;
		const struct tj_event *ev;
		struct stat st;
		int n = 0;
		snprintf(path, sizeof(path), "%s/node-%u.evlog", out, ns[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(tj_evlog_open(&rd, path, &err), 0);
		assert_int_equal(tj_evlog_header(rd)->node, ns[i]);
		assert_non_null(strstr(tj_evlog_header(rd)->options, "netns"));
		while (tj_evlog_next(rd, &ev, &err) == 1) {
			assert_int_equal(ev->node, ns[i]);
			n++;
		}
		assert_int_equal(n, count[i]);
		tj_evlog_close_reader(rd);
	}
	/* A folder that holds logs is refused without force, at open. */
	struct tj_recorder_opts o = { .out = out, .per_netns = 1 };
	struct tj_recorder *r2 = NULL;
	assert_int_not_equal(tj_recorder_open(&r2, &o, &err), 0);
	assert_non_null(strstr(err.msg, "--force"));
	o.force = 1;
	assert_int_equal(tj_recorder_open(&r2, &o, &err), 0);
	assert_int_equal(tj_recorder_close(r2, &err), 0);
	/* -o naming a file is not a folder. */
	snprintf(path, sizeof(path), "%s/node-%u.evlog", out, ns[0]);
	o.out = path;
	assert_int_not_equal(tj_recorder_open(&r2, &o, &err), 0);
	assert_non_null(strstr(err.msg, "not a folder"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sorted_and_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_across_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_many_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_spans_pool_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_netns, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
