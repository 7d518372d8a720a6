/* tracejoin gen's runtime models of real services
 * (datasets/gen/scenarios/README.md, "Services"): `node` (the handler
 * issues its calls itself at once; an agent's waiting calls are written by
 * the handler of the reply that frees a socket; `callback-cost`), the loop
 * `stall`, and `goroutine` (a call written by a task of its own, a reply's
 * request resumed as a task of its own, threads drawn at random).  Each is
 * parsed, refused when malformed (the message names the line), shown on a
 * tiny hand-checked spec to order the events as it promises, and
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
#include "lib/evlog.h"
#include "lib/event.h"
#include "test_gen_check.h"
#include "test_gen_util.h"

#define SVC_AB(model_a) "node 1\nnode 2\nnode 3\nservice a node 1 port 80 model " model_a "\n" \
	"service b node 2 port 81 model async\nservice c node 3 port 82 model async\n"

static void test_parse(void **state)
{
	(void)state;
	struct gen_spec *s = parse_ok(SVC_AB("node callback-cost lognormal(80us,0.6) "
					     "stall pareto(20ms,1.5) stall-every exp(1s)")
		"conn a b pool 2 chained\n"
		"endpoint b x\n  wait 1ms\nend\nendpoint c x\n  wait 1ms\nend\n"
		"endpoint a x\n  parallel\n    call b\n    call c\n  end\nend\nentry a\n");
	const struct gen_service *a = &s->services[0];
	assert_int_equal(a->model, GM_NODE);
	assert_int_equal(a->threads, 1);
	assert_true(a->has_cb_cost);
	assert_true(a->has_stall);
	assert_int_equal(a->stall.kind, GD_PARETO);
	assert_int_equal(a->stall_every.kind, GD_EXP);
	assert_string_equal(gen_model_name(GM_NODE), "node");
	assert_string_equal(gen_model_name(GM_GOROUTINE), "goroutine");
	free(s);
	s = parse_ok(SVC_AB("goroutine") "endpoint b x\nend\nendpoint a x\n  call b\nend\nentry a\n");
	assert_int_equal(s->services[0].model, GM_GOROUTINE);
	assert_int_equal(s->services[0].threads, 4);
	free(s);
}

static void test_refused(void **state)
{
	(void)state;
	refused("node 1\nservice a node 1 port 80 model nodejs\n", "t.scn:2: ",
		"node or goroutine");
	refused("node 1\nservice a node 1 port 80 model async callback-cost 80us\n",
		"t.scn:2: ", "'callback-cost' applies to model node");
	refused("node 1\nservice a node 1 port 80 model node callback-cost fast\n",
		"t.scn:2: ", "callback-cost 'fast'");
	refused("node 1\nservice a node 1 port 80 model thread stall 1ms stall-every 1s\n",
		"t.scn:2: ", "'stall' applies to an event loop");
	refused("node 1\nservice a node 1 port 80 model goroutine stall 1ms stall-every 1s\n",
		"t.scn:2: ", "'stall' applies to an event loop");
	refused("node 1\nservice a node 1 port 80 model node stall 1ms\n",
		"t.scn:2: ", "'stall' and 'stall-every' go together");
	refused("node 1\nservice a node 1 port 80 model node stall-every 1s\n",
		"t.scn:2: ", "'stall' and 'stall-every' go together");
	refused("node 1\nservice a node 1 port 80 model node stall 1ms stall-every 0\n",
		"t.scn:2: ", "stall-every");
	refused("node 1\nservice a node 1 port 80 model node stall exp(-1ms) stall-every 1s\n",
		"t.scn:2: ", "stall 'exp(-1ms)'");
	refused("node 1\nservice a node 1 port 80 model node stall\n", "t.scn:2: ",
		"'stall' needs a value");
	refused(SVC_AB("node") "conn a b shared pipelined\n", "t.scn:7: ",
		"'pipelined' does not apply to a node caller");
}

/* Service a's log (node 1) as letters, one per data syscall: Q a request
 * read, P a response written, b/c a call written to b/c, B/C a reply read;
 * *tids the number of distinct threads writing calls. */
static void trace_of(const char *dir, char *out, size_t n, int *tids)
{
	struct tj_evlog_reader *r = open_node_log(dir, 1);
	struct tj_err err = { 0 };
	const struct tj_event *ev;
	size_t k = 0;
	uint64_t last_sock = 0;
	uint32_t seen[64];
	int nseen = 0;
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if ((ev->type != TJ_EV_SEND && ev->type != TJ_EV_RECV) || ev->bytes <= 0)
			continue;
		int send = ev->type == TJ_EV_SEND;
		char ch;
		if (ev->lport == 80)
			ch = send ? 'P' : 'Q';
		else
			ch = (char)((send ? 'b' : 'B') + (ev->rport - 81));
		/* a message in several syscalls is one letter */
		if (k && out[k - 1] == ch && ev->sock == last_sock)
			continue;
		last_sock = ev->sock;
		if (k + 1 < n)
			out[k++] = ch;
		if (send && ev->lport != 80) {
			int j = 0;
			while (j < nseen && seen[j] != ev->tid)
				j++;
			if (j == nseen && nseen < 64)
				seen[nseen++] = ev->tid;
		}
	}
	out[k] = 0;
	tj_evlog_close_reader(r);
	if (tids)
		*tids = nseen;
}

/* Two requests at once (one keepalive client connection each, arriving
 * within microseconds) to a node service making two parallel calls
 * through agents of one socket per destination, b and c taking 1 ms:
 *
 *   Q        request 1's handler issues both calls: each agent opens its
 *            socket (a non-blocking connect; nothing written yet)
 *   Q        request 2's handler issues both: the agents are at their
 *            one socket, so both calls wait in the agents' queues
 *   b c      the connects complete: request 1's calls are written
 *   B b      b's reply frees its socket: that handler writes request 2's
 *            waiting call to b before anything else
 *   C c      the same for c (B and C may come back in either order)
 *   P        request 1 has both replies: its response
 *   B C P    request 2's replies, its response
 *
 * The `async` model of the same spec issues a parallel step's calls as
 * loop tasks queued behind the second request's read, so request 1's call
 * to c is not written right after its call to b. */
static const char *const NODE_SPEC =
	"node 1\nnode 2\nnode 3\nservice a node 1 port 80 model %s\n"
	"service b node 2 port 81 model async\nservice c node 3 port 82 model async\n"
	"network latency const(20us)\n"
	"conn a b pool 1 chained\nconn a c pool 1 chained\n"
	"endpoint b x\n  wait const(1ms)\nend\nendpoint c x\n  wait const(1ms)\nend\n"
	"endpoint a x\n  parallel\n    call b\n    call c\n  end\nend\n"
	"entry a conn keepalive 2 clients 1\n";

static void node_trace(const char *model, double rate, uint64_t roots, uint64_t seed,
		       char *out, size_t n)
{
	char text[1024];
	snprintf(text, sizeof(text), NODE_SPEC, model);
	char *dir = gen_text(text, rate, roots, seed);
	trace_of(dir, out, n, NULL);
	rmdataset(dir);
}

static void test_node_agent_order(void **state)
{
	(void)state;
	char t[64];
	for (uint64_t seed = 1; seed <= 5; seed++) {
		node_trace("node", 1e7, 2, seed, t, sizeof(t));
		/* B and C may come back in either order; each is followed by
		 * the waiting call it frees */
		if (strcmp(t, "QQbcBbCcPBCP") != 0 && strcmp(t, "QQbcCcBbPBCP") != 0 &&
		    strcmp(t, "QQbcBbCcPCBP") != 0 && strcmp(t, "QQbcCcBbPCBP") != 0)
			fail_msg("node, seed %d: %s", (int)seed, t);
	}
}

/* How often a request's call to b is followed at once by its call to c
 * (the letters "Qbc": read, then both written), of the requests read. */
static double issued_together(const char *model)
{
	static char t[8192];
	char text[1024];
	snprintf(text, sizeof(text),
		 "node 1\nnode 2\nnode 3\nservice a node 1 port 80 model %s\n"
		 "service b node 2 port 81 model async\nservice c node 3 port 82 model async\n"
		 "conn a b pool 8 chained\nconn a c pool 8 chained\n"
		 "endpoint b x\n  wait exp(300us)\nend\nendpoint c x\n  wait exp(300us)\nend\n"
		 "endpoint a x\n  work exp(100us)\n  parallel\n    call b\n    call c\n  end\nend\n"
		 "entry a conn keepalive 8\n", model);
	char *dir = gen_text(text, 4000, 400, 4);
	trace_of(dir, t, sizeof(t), NULL);
	rmdataset(dir);
	int reads = 0, together = 0;
	for (const char *p = t; *p; p++) {
		reads += *p == 'Q';
		together += strncmp(p, "Qbc", 3) == 0;
	}
	return (double)together / reads;
}

/* On a busy loop (100 us of work a request, 4000 requests/s, 8 idle
 * sockets a destination), node's handler writes its parallel calls right
 * after its read; the async model's calls are loop tasks queued behind
 * the reads and replies that came meanwhile (0.98 against 0.38 here). */
static void test_node_issues_at_the_read(void **state)
{
	(void)state;
	double node = issued_together("node"), async = issued_together("async");
	if (node < 0.9 || async > node - 0.3)
		fail_msg("requests whose two calls follow their read at once: node %.3f, "
			 "async %.3f", node, async);
}

/* The gap in a's log between each request read and the next call
 * written, at least (ns), over 50 requests at 200/s. */
static uint64_t min_read_to_call(const char *model)
{
	char text[1024];
	snprintf(text, sizeof(text), NODE_SPEC, model);
	char *dir = gen_text(text, 200, 50, 3);
	struct tj_evlog_reader *r = open_node_log(dir, 1);
	struct tj_err err = { 0 };
	const struct tj_event *ev;
	uint64_t read_ts = 0, min = UINT64_MAX;
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if (ev->bytes <= 0)
			continue;
		if (ev->type == TJ_EV_RECV && ev->lport == 80)
			read_ts = ev->ts_ns;
		else if (ev->type == TJ_EV_SEND && ev->lport != 80 && read_ts) {
			if (ev->ts_ns - read_ts < min)
				min = ev->ts_ns - read_ts;
			read_ts = 0;
		}
	}
	tj_evlog_close_reader(r);
	rmdataset(dir);
	return min;
}

static void test_callback_cost(void **state)
{
	(void)state;
	uint64_t plain = min_read_to_call("node"),
		 costly = min_read_to_call("node callback-cost const(300us)");
	/* two callbacks (the request's handler, the call) at 300 us each */
	if (plain > 100000 || costly < 600000)
		fail_msg("request read to call written, at least: %.0f us plain, %.0f us "
			 "with callback-cost 300us", plain / 1e3, costly / 1e3);
}

/* The longest time a's loop (node 1) writes nothing while requests wait:
 * a stall of 10 ms every 50 ms at 2000 requests/s leaves gaps of 10 ms;
 * without it, gaps stay far below that. */
static uint64_t longest_gap(const char *model)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "node 1\nnode 2\nservice a node 1 port 80 model %s\n"
		 "service b node 2 port 81 model async\n"
		 "endpoint b x\n  wait const(100us)\nend\n"
		 "endpoint a x\n  call b\nend\nentry a conn keepalive 8\n", model);
	char *dir = gen_text(text, 2000, 400, 7);
	struct tj_evlog_reader *r = open_node_log(dir, 1);
	struct tj_err err = { 0 };
	const struct tj_event *ev;
	uint64_t last = 0, gap = 0;
	while (tj_evlog_next(r, &ev, &err) > 0) {
		if (ev->type != TJ_EV_SEND)
			continue;
		if (last && ev->ts_ns - last > gap)
			gap = ev->ts_ns - last;
		last = ev->ts_ns;
	}
	tj_evlog_close_reader(r);
	rmdataset(dir);
	return gap;
}

static void test_stall(void **state)
{
	(void)state;
	uint64_t plain = longest_gap("node"),
		 stalled = longest_gap("node stall const(10ms) stall-every const(50ms)"),
		 async = longest_gap("async stall const(10ms) stall-every const(50ms)");
	if (plain > 5000000 || stalled < 9500000 || async < 9500000)
		fail_msg("longest write gap: %.1f ms plain, %.1f ms node stalled, %.1f ms "
			 "async stalled", plain / 1e6, stalled / 1e6, async / 1e6);
}

/* goroutine: a call's write and a reply's continuation are tasks of their
 * own on a thread drawn at random, so the thread that writes a call is
 * seldom the one that read its request; coroutine keeps the request's
 * thread when it is free (the freed one is taken first). */
static double same_thread_share(const char *model, int *tids)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "node 1\nnode 2\nservice a node 1 port 80 model %s\n"
		 "service b node 2 port 81 model async\n"
		 "endpoint b x\n  wait exp(200us)\nend\n"
		 "endpoint a x\n  wait exp(100us)\n  call b\n  call b\n  wait exp(100us)\nend\n"
		 "entry a conn keepalive 8\n", model);
	char *dir = gen_text(text, 1000, 300, 11);
	size_t n, same = gdata_calls_on_parent_thread(dir, &n);
	assert_int_equal(n, 600);
	char t[8];
	trace_of(dir, t, sizeof(t), tids);
	rmdataset(dir);
	return (double)same / (double)n;
}

static void test_goroutine_threads(void **state)
{
	(void)state;
	int tg, tc;
	double go = same_thread_share("goroutine threads 4", &tg),
	       co = same_thread_share("coroutine threads 4", &tc);
	/* 4 threads drawn at random: about a quarter on the request's */
	if (go > 0.4 || co < 0.5 || tg != 4)
		fail_msg("calls on their request's reading thread: goroutine %.3f (%d threads "
			 "write calls), coroutine %.3f", go, tg, co);
}

static void test_deterministic(void **state)
{
	(void)state;
	char text[1024];
	snprintf(text, sizeof(text), NODE_SPEC,
		 "node callback-cost exp(50us) stall exp(2ms) stall-every exp(20ms)");
	struct gen_spec *s = parse_ok(text);
	assert_deterministic(s, 2000, 300, 13, 3);
	free(s);
	s = parse_ok(SVC_AB("goroutine threads 3")
		     "conn a b pool 2\nendpoint b x\n  wait exp(200us)\nend\n"
		     "endpoint c x\n  wait exp(200us)\nend\n"
		     "endpoint a x\n  call b\n  parallel\n    call c\n    call b\n  end\nend\n"
		     "entry a conn keepalive 8\n");
	assert_deterministic(s, 2000, 300, 13, 3);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_node_agent_order),
		cmocka_unit_test(test_node_issues_at_the_read),
		cmocka_unit_test(test_callback_cost),
		cmocka_unit_test(test_stall),
		cmocka_unit_test(test_goroutine_threads),
		cmocka_unit_test(test_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
