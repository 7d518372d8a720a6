/* tracejoin gen's behaviours for real asynchronous servers
 * (datasets/gen/scenarios/README.md): `wait` steps (a timer that leaves an
 * event loop or coroutine thread free), `shared pipelined` connections
 * (several requests outstanding, replies in order, requests written with
 * no reply between them one message and one label), sequential calls
 * written by the loop that read the previous reply, and coroutines that
 * hop between threads (M:N).  Each is parsed, refused when malformed, and
 * shown to change the logs as it promises; specs with them are
 * deterministic. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <cmocka.h>
#include "datasets/gen/gen.h"
#include "test_gen_check.h"
#include "test_gen_util.h"

#define TWO_ASYNC "node 1\nnode 2\nservice a node 1 port 80 model async\n" \
	"service b node 2 port 81 model async\n"

static void test_parse(void **state)
{
	(void)state;
	struct gen_spec *s = parse_ok(TWO_ASYNC
		"conn a b shared pipelined\n"
		"endpoint b x\n  wait exp(100us)\nend\n"
		"endpoint a x\n  wait 50us\n  call b\n  work 10us\n  call b\nend\nentry a\n");
	assert_true(gen_spec_policy(s, 0, 1)->pipelined);
	assert_int_equal(gen_spec_policy(s, 0, 1)->policy, GP_SHARED);
	const struct gen_endpoint *a = &s->eps[1];
	assert_int_equal(a->n, 4);
	assert_int_equal(s->steps[a->first].kind, GS_WAIT);
	assert_int_equal(s->steps[a->first + 2].kind, GS_WORK);
	free(s);
}

static void test_refused(void **state)
{
	(void)state;
	refused("node 1\nnode 2\nservice a node 1 port 80\nservice b node 2 port 81\n"
		"conn a b shared pipelined\n", "t.scn:5: ", "async or coroutine caller");
	refused("node 1\nnode 2\nservice a node 1 port 80 model pool\nservice b node 2 port 81\n"
		"conn a b shared pipelined\n", "t.scn:5: ", "async or coroutine caller");
	refused(TWO_ASYNC "conn a b pool 2 pipelined\n", "t.scn:5: ", "pipelined");
	refused(TWO_ASYNC "conn a b new pipelined\n", "t.scn:5: ", "pipelined");
	refused(TWO_ASYNC "conn a b shared pipelined pipelined\n", "t.scn:5: ", "pipelined");
	refused(TWO_ASYNC "conn a b shared pipelined chained\n", "t.scn:5: ", "chained");
	refused(TWO_ASYNC "endpoint b x\n  wait\nend\n", "t.scn:6: ", "one distribution");
	refused(TWO_ASYNC "endpoint b x\n  wait 5\nend\n", "t.scn:6: ", "wait");
	refused(TWO_ASYNC "endpoint b x\n  wait -1ms\nend\n", "t.scn:6: ", "wait");
	refused(TWO_ASYNC "wait 1ms\n", "t.scn:5: ", "outside an endpoint");
	refused(TWO_ASYNC "endpoint b x\nend\nendpoint a x\n  parallel\n    wait 1ms\n  end\nend\n",
		"t.scn:9: ", "only 'call'");
}

/* One async loop, 1 ms of service time a request, 400 requests at 4000/s:
 * as `work` the loop is busy throughout and the run takes 400 ms at least;
 * as `wait` requests overlap and it ends soon after the last arrival. */
static void test_wait_frees_the_loop(void **state)
{
	(void)state;
	uint64_t ns[2];
	const char *step[2] = { "work", "wait" };
	for (int i = 0; i < 2; i++) {
		char text[512];
		snprintf(text, sizeof(text),
			 "node 1\nservice a node 1 port 80 model async\n"
			 "endpoint a x\n  %s const(1ms)\nend\nentry a conn keepalive 8\n", step[i]);
		struct gen_spec *s = parse_ok(text);
		char *dir = tmpdir();
		struct gen_stats st;
		gen_generate(s, 4000, 400, 5, dir, &st);
		ns[i] = st.sim_ns;
		rmdataset(dir);
		free(s);
	}
	if (ns[0] < 400000000ull || ns[1] > 200000000ull)
		fail_msg("400 requests of 1 ms on one loop: work %.0f ms, wait %.0f ms",
			 ns[0] / 1e6, ns[1] / 1e6);
}

/* What the client side of a's connections to b (port 81) shows. */
struct wire {
	int connects;
	int runs;        /* runs of writes (messages) */
	int writes_after_write; /* a request's first write with no read since the last write */
	int max_outstanding;    /* requests written, replies not yet fully read, at most */
};

static void wire_of(const char *dir, struct wire *w)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/node-1.evlog", dir);
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_open(&r, path, &err), 0);
	const struct tj_event *ev;
	memset(w, 0, sizeof(*w));
	int last = -1;
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if (ev->rport != 81)
			continue;
		if (ev->type == TJ_EV_CONNECT)
			w->connects++;
		if (ev->type == TJ_EV_SEND) {
			if (last != TJ_EV_SEND)
				w->runs++;
			else
				w->writes_after_write++;
			last = TJ_EV_SEND;
		} else if (ev->type == TJ_EV_RECV && ev->bytes > 0) {
			last = TJ_EV_RECV;
		}
	}
	tj_evlog_close_reader(r);
}

/* a's two sequential calls to b; b takes a fixed 300 us. */
static char *pipe_spec(const char *policy, char *buf, size_t n)
{
	snprintf(buf, n, TWO_ASYNC "conn a b %s\n"
		 "endpoint b x request const(200) response const(300)\n  wait const(300us)\nend\n"
		 "endpoint a x\n  wait exp(100us)\n  call b\n  call b\n  wait exp(100us)\nend\n"
		 "entry a conn keepalive 8\n", policy);
	return buf;
}

/* Pipelined: one connection, requests written while others are
 * outstanding, so runs of writes hold several requests; labels name one
 * call per run of writes (the message), every one of them a message the
 * logs show starting there; the server answers them all in order. */
static void test_pipelined(void **state)
{
	(void)state;
	char text[1024];
	struct gen_spec *s = parse_ok(pipe_spec("shared pipelined", text, sizeof(text)));
	char *dir = tmpdir();
	struct gen_stats st;
	gen_generate(s, 3000, 400, 7, dir, &st);
	struct wire w;
	wire_of(dir, &w);
	assert_int_equal(w.connects, 1);
	assert_int_equal(st.calls, 800);
	if (w.writes_after_write < 50)
		fail_msg("only %d requests written behind another with no read between",
			 w.writes_after_write);
	/* each request is one write here (200 bytes), so a run of writes
	 * holding k requests is k writes: one label per run */
	assert_int_equal(w.runs + w.writes_after_write, 800);
	assert_int_equal(st.joined, (uint64_t)w.writes_after_write);
	struct gdata d;
	struct tj_edge_set labels;
	gdata_load_dir(dir, &d, &labels, 0);
	assert_int_equal(labels.n, (size_t)w.runs);
	assert_int_equal(st.labels, (uint64_t)w.runs);
	for (size_t i = 0; i < labels.n; i++) {
		const struct tj_edge *e = &labels.edges[i];
		assert_true(e->has_parent);
		const struct gmsg *c = gdata_find(&d, &e->child), *p = gdata_find(&d, &e->parent);
		assert_non_null(c); /* a message starts exactly there */
		assert_non_null(p);
		assert_int_equal(c->role, 1);
		assert_int_equal(p->role, 2);
	}
	/* the server side: b read every request and wrote every reply */
	uint64_t in = 0, out = 0;
	for (size_t i = 0; i < d.nsocks; i++)
		if (d.socks[i].role == 2 && d.socks[i].lport == 81) {
			in += d.socks[i].bytes[TJ_DIR_IN];
			out += d.socks[i].bytes[TJ_DIR_OUT];
		}
	assert_int_equal(in, 800 * 200);
	assert_int_equal(out, 800 * 300);
	assert_int_equal(d.order_errors + d.offset_errors + d.unknown_sock, 0);
	tj_edges_free(&labels);
	gdata_free(&d);
	rmdataset(dir);
	free(s);

	/* the same load on a plain shared connection: one request at a time */
	s = parse_ok(pipe_spec("shared", text, sizeof(text)));
	dir = tmpdir();
	gen_generate(s, 3000, 400, 7, dir, &st);
	wire_of(dir, &w);
	assert_int_equal(w.writes_after_write, 0);
	assert_int_equal(w.runs, 800);
	assert_int_equal(st.labels, 800);
	rmdataset(dir);
	free(s);
}

/* The second of two sequential calls from an async loop is written by the
 * thread that read the first call's reply, within the same handler's
 * reach (well under 100 us later), whatever the pool. */
static void test_sequential_on_reply(void **state)
{
	(void)state;
	char text[1024];
	struct gen_spec *s = parse_ok(pipe_spec("pool 4 idle-cap", text, sizeof(text)));
	char *dir = tmpdir();
	struct gen_stats st;
	gen_generate(s, 500, 300, 9, dir, &st);
	char path[600];
	snprintf(path, sizeof(path), "%s/node-1.evlog", dir);
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_open(&r, path, &err), 0);
	const struct tj_event *ev;
	uint64_t last_reply_ts = 0;
	uint32_t last_reply_tid = 0;
	int after_reply = 0, sends = 0;
	int had_reply = 0;
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if (ev->rport != 81)
			continue;
		if (ev->type == TJ_EV_RECV && ev->bytes > 0) {
			last_reply_ts = ev->ts_ns;
			last_reply_tid = ev->tid;
			had_reply = 1;
		} else if (ev->type == TJ_EV_SEND) {
			sends++;
			if (had_reply && ev->tid == last_reply_tid && ev->ts_ns - last_reply_ts < 100000)
				after_reply++;
			had_reply = 0;
		}
	}
	tj_evlog_close_reader(r);
	assert_int_equal(sends, 600);
	/* every second call follows a reply at once (the first ones follow a
	 * request's wait, so about half) */
	if (after_reply < 280)
		fail_msg("%d of 600 calls written right after a reply by its reader", after_reply);
	rmdataset(dir);
	free(s);
}

/* Coroutines (M:N): the steps of one request run on different threads of
 * the pool; an async loop keeps every step on its one thread. */
static double hop_share(const char *model)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "node 1\nnode 2\nservice a node 1 port 80 model %s\n"
		 "service b node 2 port 81 model async\n"
		 "endpoint b x\n  wait exp(200us)\nend\n"
		 "endpoint a x\n  wait exp(100us)\n  call b\n  wait exp(100us)\nend\n"
		 "entry a conn keepalive 8\n", model);
	struct gen_spec *s = parse_ok(text);
	char *dir = tmpdir();
	struct gen_stats st;
	gen_generate(s, 2000, 300, 11, dir, &st);
	size_t n, same = gdata_calls_on_parent_thread(dir, &n);
	assert_int_equal(n, 300);
	rmdataset(dir);
	free(s);
	return (double)(n - same) / (double)n;
}

static void test_mn_hops(void **state)
{
	(void)state;
	double co = hop_share("coroutine threads 4"), loop = hop_share("async threads 1");
	if (co < 0.3 || loop != 0)
		fail_msg("calls on another thread than their request's read: coroutine %.3f, "
			 "async %.3f", co, loop);
}

static void test_deterministic(void **state)
{
	(void)state;
	char text[1024];
	struct gen_spec *s = parse_ok(pipe_spec("shared pipelined", text, sizeof(text)));
	assert_deterministic(s, 2500, 300, 13, 2);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_wait_frees_the_loop),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_sequential_on_reply),
		cmocka_unit_test(test_mn_hops),
		cmocka_unit_test(test_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
