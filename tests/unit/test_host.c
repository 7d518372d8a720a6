/* The correlator host: the registry, the plugin loader and its refusals,
 * the run loop's checks on what a correlator answers, and the masking of
 * trace headers proven by a plugin that tries to read them. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "correlate/host.h"
#include "lib/evlog.h"
#include "test_util.h"

#define MS 1000000ull

static char dir[64];
static char logpath[128];

#define plugin test_plugin_path

/* Node 1, process 100: sockets below 100 are served on 8080, the others
 * call out to 9090. */
static struct tj_event ev(uint64_t ts, unsigned type, uint64_t sock,
			  uint64_t off, int64_t bytes, uint32_t tid)
{
	struct tj_event e = test_event(1, ts, type, sock, off, bytes, 100, tid);
	e.lport = sock < 100 ? 8080 : 40000;
	e.rport = sock < 100 ? 40000 : 9090;
	return e;
}

static const char req_text[] =
	"GET /api HTTP/1.1\r\nHost: svc\r\n"
	"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
	"X-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7\r\n\r\n";
static const char call_text[] =
	"POST /db HTTP/1.1\r\nuber-trace-id: 5f2c:1a:0:1\r\nX-Request-ID: 7c1d-aa\r\n\r\n";

/* Node 1: two requests on one kept-alive connection, each making one
 * call on a kept-alive client socket (thread per request). */
static int setup(void **state)
{
	assert_int_equal(test_dir_make(dir, sizeof(dir), "test_host"), 0);
	snprintf(logpath, sizeof(logpath), "%s/node-1.evlog", dir);
	struct tj_evlog_header h;
	memset(&h, 0, sizeof(h));
	h.node = 1;
	h.capture_flags = TJ_CAP_SYNTHETIC | TJ_CAP_PAYLOAD;
	h.payload_max = TJ_PAYLOAD_MAX;
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	assert_int_equal(tj_evlog_create(&w, logpath, &h, TJ_EVLOG_FORCE, &err), 0);
	struct tj_event evs[] = {
		ev(1 * MS, TJ_EV_ACCEPT, 1, 0, 0, 11),
		ev(2 * MS, TJ_EV_RECV, 1, 0, sizeof(req_text) - 1, 11),
		ev(3 * MS, TJ_EV_CONNECT, 101, 0, 0, 11),
		ev(4 * MS, TJ_EV_SEND, 101, 0, sizeof(call_text) - 1, 11),
		ev(5 * MS, TJ_EV_RECV, 101, 0, 20, 11),
		ev(6 * MS, TJ_EV_SEND, 1, 0, 30, 11),
		ev(7 * MS, TJ_EV_RECV, 1, sizeof(req_text) - 1, sizeof(req_text) - 1, 11),
		ev(8 * MS, TJ_EV_SEND, 101, sizeof(call_text) - 1, sizeof(call_text) - 1, 11),
		ev(9 * MS, TJ_EV_RECV, 101, 20, 20, 11),
		ev(10 * MS, TJ_EV_SEND, 1, 30, 30, 11),
	};
	for (size_t i = 0; i < sizeof(evs) / sizeof(*evs); i++) {
		if (evs[i].type == TJ_EV_RECV && evs[i].sock == 1) {
			evs[i].payload = (const uint8_t *)req_text;
			evs[i].payload_len = sizeof(req_text) - 1;
		} else if (evs[i].type == TJ_EV_SEND && evs[i].sock == 101) {
			evs[i].payload = (const uint8_t *)call_text;
			evs[i].payload_len = sizeof(call_text) - 1;
		}
		assert_int_equal(tj_evlog_write(w, &evs[i], &err), 0);
	}
	assert_int_equal(tj_evlog_close(w, &err), 0);
	return 0;
}

static int teardown(void **state)
{
	return test_dir_remove(dir);
}

/* ---- registry and loader ---- */

static void test_builtins(void **state)
{
	const struct tj_correlator *all[8];
	size_t n = tj_correlator_builtins(all, 8);
	assert_true(n >= 1);
	int found = 0;
	for (size_t i = 0; i < n && i < 8; i++)
		found |= strcmp(all[i]->name, "metadata") == 0;
	assert_true(found);
	assert_non_null(tj_correlator_builtin("metadata"));
	assert_null(tj_correlator_builtin("nosuch"));

	const struct tj_correlator *c;
	void *dl;
	struct tj_err err = { 0 };
	assert_int_equal(tj_correlator_load("metadata", 0, &c, &dl, &err), 0);
	assert_ptr_equal(c, tj_correlator_builtin("metadata"));
	assert_null(dl);
	assert_true(tj_correlator_load("nosuch", 0, &c, &dl, &err) < 0);
	assert_non_null(strstr(err.msg, "'nosuch'"));
	assert_non_null(strstr(err.msg, "metadata"));
}

static void test_load_plugins(void **state)
{
	const struct tj_correlator *c;
	void *dl;
	struct tj_err err = { 0 };
	assert_int_equal(tj_correlator_load(plugin("naive_recent.so"), 0, &c, &dl, &err), 0);
	assert_string_equal(c->name, "naive_recent");
	assert_non_null(dl);
	tj_correlator_unload(dl);

	const char *p = plugin("bad/no_symbol.so");
	assert_true(tj_correlator_load(p, 0, &c, &dl, &err) < 0);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, "no symbol 'tracejoin_correlator'"));
	assert_null(dl);

	p = plugin("bad/wrong_abi.so");
	assert_true(tj_correlator_load(p, 0, &c, &dl, &err) < 0);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, "abi 42"));

	assert_true(tj_correlator_load("/nonexistent/x.so", 0, &c, &dl, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/x.so"));
	/* a bare x.so means ./x.so, not the library path */
	assert_true(tj_correlator_load("libc.so", 0, &c, &dl, &err) < 0);
}

/* ---- runs ---- */

static int run_on_log(const struct tj_correlator *c, const struct tj_params *p,
		      int keep_payload, struct tj_edge_set *set,
		      struct tj_correlate_stats *st, struct tj_err *err)
{
	struct tj_edge_set_sink sink;
	tj_edge_set_sink_init(&sink, set);
	char *in[] = { dir };
	struct tj_replay_opts o = { .keep_payload = keep_payload };
	return tj_correlate_run(c, p, NULL, in, 1, &o, &sink.sink, st, err);
}

static void test_run_metadata_to_file(void **state)
{
	struct tj_edge_writer_sink ws;
	struct tj_err err = { 0 };
	char out[160];
	snprintf(out, sizeof(out), "%s/edges.csv", dir);
	assert_int_equal(tj_edge_writer_sink_open(&ws, out, 0, NULL, 0, &err), 0);
	char *in[] = { logpath };
	struct tj_correlate_stats st;
	assert_int_equal(tj_correlate_run(tj_correlator_builtin("metadata"), NULL, NULL,
					  in, 1, NULL, &ws.sink, &st, &err), 0);
	assert_int_equal(tj_edge_writer_sink_close(&ws, &err), 0);
	assert_int_equal(st.events, 10);
	assert_int_equal(st.messages, 8);
	assert_int_equal(st.calls, 2);
	assert_int_equal(st.edges, 2);
	assert_int_equal(st.unanswered, 0);
	assert_true(st.peak_rss_mb > 0);

	struct tj_edge_set set = { 0 };
	assert_int_equal(tj_edges_read(&set, out, &err), 0);
	assert_int_equal(set.n, 2);
	char c[TJ_MSGKEY_STRLEN], p[TJ_MSGKEY_STRLEN];
	for (size_t i = 0; i < set.n; i++) {
		assert_true(set.edges[i].has_parent);
		tj_msgkey_format(&set.edges[i].child, c);
		tj_msgkey_format(&set.edges[i].parent, p);
		if (strcmp(c, "1:101:out:0") == 0)
			assert_string_equal(p, "1:1:in:0");
		else {
			char want[TJ_MSGKEY_STRLEN];
			snprintf(want, sizeof(want), "1:1:in:%zu", sizeof(req_text) - 1);
			assert_string_equal(p, want);
		}
	}
	tj_edges_free(&set);
}

static void test_run_plugin(void **state)
{
	const struct tj_correlator *c;
	void *dl;
	struct tj_err err = { 0 };
	assert_int_equal(tj_correlator_load(plugin("naive_recent.so"), 0, &c, &dl, &err), 0);
	struct tj_edge_set set = { 0 };
	struct tj_correlate_stats st;
	assert_int_equal(run_on_log(c, NULL, 0, &set, &st, &err), 0);
	assert_int_equal(set.n, 2);
	assert_int_equal(st.unanswered, 0);
	tj_edges_free(&set);
	/* plugins refuse params by name too */
	struct tj_params p = { .n = 1 };
	p.key[0] = "x";
	p.val[0] = "1";
	assert_true(run_on_log(c, &p, 0, &set, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "naive_recent"));
	tj_edges_free(&set);
	tj_correlator_unload(dl);
}

/* ---- correlators that break the rules ---- */

static int mode_open(void **st, const struct tj_params *p, struct tj_err *e)
{
	*st = (void *)tj_param_str(p, "mode", "");
	return 0;
}

static int mode_message(void *st, const struct tj_message *m,
			struct tj_edge_sink *out, struct tj_err *e)
{
	const char *mode = st;
	if (!(m->is_request && m->role == TJ_ROLE_CLIENT))
		return 0;
	struct tj_edge edge = { .child = m->key, .score = 1.0 };
	int rc;
	if (strcmp(mode, "silent") == 0)
		return 0;
	if (strcmp(mode, "twice") == 0) {
		if ((rc = out->emit(out, &edge)) < 0)
			return rc;
		return out->emit(out, &edge);
	}
	if (strcmp(mode, "stranger") == 0)
		edge.child.offset += 1;
	if (strcmp(mode, "crossnode") == 0) {
		edge.has_parent = 1;
		edge.parent = m->key;
		edge.parent.node = 2;
		edge.parent.dir = TJ_DIR_IN;
	}
	if (strcmp(mode, "badscore") == 0)
		edge.score = 1.5;
	return out->emit(out, &edge);
}

static int mode_finish(void *st, struct tj_edge_sink *out, struct tj_err *e)
{
	return 0;
}

static void mode_close(void *st)
{
}

static const struct tj_correlator rulebreaker = {
	TJ_CORRELATOR_ABI, "rulebreaker", "test", NULL,
	mode_open, NULL, mode_message, mode_finish, mode_close,
};

static void expect_refused(const char *mode, const char *words)
{
	struct tj_params p = { .n = 1 };
	p.key[0] = "mode";
	p.val[0] = mode;
	struct tj_edge_set set = { 0 };
	struct tj_correlate_stats st;
	struct tj_err err = { 0 };
	assert_true(run_on_log(&rulebreaker, &p, 0, &set, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "'rulebreaker'"));
	if (!strstr(err.msg, words))
		fail_msg("mode %s: '%s' lacks '%s'", mode, err.msg, words);
	tj_edges_free(&set);
}

static void test_rules_enforced(void **state)
{
	expect_refused("twice", "second edge for call 1:101:out:0");
	expect_refused("stranger", "not a call it was shown");
	expect_refused("crossnode", "inbound request on the call's node");
	expect_refused("badscore", "score 1.5");
}

static void test_unanswered_filled(void **state)
{
	struct tj_params p = { .n = 1 };
	p.key[0] = "mode";
	p.val[0] = "silent";
	struct tj_edge_set set = { 0 };
	struct tj_correlate_stats st;
	struct tj_err err = { 0 };
	assert_int_equal(run_on_log(&rulebreaker, &p, 0, &set, &st, &err), 0);
	assert_int_equal(set.n, 2);
	assert_int_equal(st.unanswered, 2);
	for (size_t i = 0; i < set.n; i++) {
		assert_false(set.edges[i].has_parent);
		assert_true(set.edges[i].score == 0.0);
	}
	tj_edges_free(&set);
}

/* ---- masking, proven by the cheat ---- */

static void test_peek_headers_sees_masked_only(void **state)
{
	const struct tj_correlator *c;
	void *dl;
	struct tj_err err = { 0 };
	assert_int_equal(tj_correlator_load(plugin("peek_headers.so"), 0, &c, &dl, &err), 0);

	/* the cheat works: shown a raw header, it fails */
	void *st;
	assert_int_equal(c->open(&st, NULL, &err), 0);
	struct tj_message m = { .payload = (const uint8_t *)req_text,
				.payload_len = sizeof(req_text) - 1 };
	assert_true(c->message(st, &m, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "traceparent"));
	c->close(st);

	/* through the host it sees four payloads, every header masked */
	struct tj_params p = { .n = 1 };
	p.key[0] = "expect_payloads";
	p.val[0] = "4";
	struct tj_edge_set set = { 0 };
	struct tj_correlate_stats cs;
	memset(&err, 0, sizeof(err));
	int rc = run_on_log(c, &p, 1, &set, &cs, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_int_equal(cs.replay.masked, 8);
	assert_int_equal(set.n, 2); /* host-filled */
	tj_edges_free(&set);

	/* a caller asking for raw payloads does not get them through the host */
	{
		struct tj_edge_set_sink sink;
		tj_edge_set_sink_init(&sink, &set);
		char *in[] = { dir };
		struct tj_replay_opts raw = { .keep_payload = 1, .raw_payload = 1 };
		rc = tj_correlate_run(c, &p, NULL, in, 1, &raw, &sink.sink, &cs, &err);
		if (rc)
			fail_msg("raw_payload reached the correlator: %s", err.msg);
		tj_edges_free(&set);
	}

	/* without --payload it sees none, and says so */
	assert_true(run_on_log(c, &p, 0, &set, &cs, &err) < 0);
	assert_non_null(strstr(err.msg, "only 0 messages"));
	tj_edges_free(&set);
	tj_correlator_unload(dl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtins),
		cmocka_unit_test(test_load_plugins),
		cmocka_unit_test(test_run_metadata_to_file),
		cmocka_unit_test(test_run_plugin),
		cmocka_unit_test(test_rules_enforced),
		cmocka_unit_test(test_unanswered_filled),
		cmocka_unit_test(test_peek_headers_sees_masked_only),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
