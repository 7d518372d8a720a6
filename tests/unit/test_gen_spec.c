/* The scenario spec parser: what it accepts, and that each bad spec is
 * refused with FILE:LINE and the reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "datasets/gen/gen.h"
#include "test_gen_util.h"

#define HEAD "node 1\nservice a node 1 port 80\n"
#define OK_TAIL "endpoint a e\n  work 1ms\nend\nentry a\n"

static void test_minimal(void **state)
{
	(void)state;
	struct gen_spec *s = parse_ok(HEAD OK_TAIL);
	assert_string_equal(s->name, "t");
	assert_int_equal(s->nnodes, 1);
	assert_int_equal(s->nservices, 1);
	assert_int_equal(s->services[0].model, GM_THREAD);
	assert_int_equal(s->neps, 1);
	assert_int_equal(s->eps[0].n, 1);
	assert_int_equal(s->entry_svc, 0);
	assert_int_equal(s->entry_ep, -1);
	free(s);
}

static void test_full(void **state)
{
	(void)state;
	struct gen_spec *s = parse_ok(
		"# a comment\n"
		"scenario full   # trailing comment\n"
		"describe two words\n"
		"requests 10\n"
		"load low 1\nload medium 2\nload high 3.5\n"
		"arrival closed think uniform(1ms, 3ms)\n"
		"network latency lognormal(100us,0.5)\n"
		"network local const(5us)\n"
		"network bandwidth 25Gbit\n"
		"node 1 name n-1 addr 10.1.1.1 clock-offset -1.5s drift -20ppm loss 0.01 burst 8\n"
		"node 2 addr 10.9.9.9\n"
		"service a node 1 port 80 model pool threads 4 io-threads 2 executor 3 read-buffer 4K write-chunk 1K write-split 0.5\n"
		"service b node 2 port 81 model async threads 2\n"
		"service c node 2 port 82 model coroutine\n"
		"conn a b pool 3 idle 1.5s\nconn b c shared\n"
		"endpoint c x weight 2 request 100 response pareto(1K,2.5)\n  work exp(1ms)\nend\n"
		"endpoint c y\nend\n"
		"endpoint b x\n  call c/x prob 0.5\nend\n"
		"endpoint a x\n  work normal(1ms,100us)\n  parallel\n    call b\n    call c\n  end\n  call c\nend\n"
		"entry a/x conn keepalive 4 clients 3\n"
		"background bg1 on a target c every 10ms conn pool 1\n"
		"background bg2 on node 2 target b every exp(1s)\n"
		"background bg3 on external target c/y every 100ms\n");
	assert_string_equal(s->name, "full");
	assert_string_equal(s->describe, "two words");
	assert_int_equal(s->requests, 10);
	assert_true(s->load[2] == 3.5);
	assert_int_equal(s->arrival, GA_CLOSED);
	assert_true(s->bandwidth == 25.0 / 8);
	assert_true(s->nodes[0].clock_offset_ns == -1.5e9);
	assert_true(s->nodes[0].drift_ppm == -20);
	assert_int_equal(s->nodes[1].addr[1], 9);
	assert_int_equal(s->services[0].model, GM_POOL);
	assert_int_equal(s->services[0].read_buf, 4096);
	assert_int_equal(s->services[2].threads, 4); /* coroutine default */
	assert_int_equal(s->npolicies, 2);
	assert_int_equal(s->policies[1].policy, GP_SHARED);
	assert_true(s->policies[0].idle_ns == 1.5e9);
	assert_int_equal(s->eps[0].resp.kind, GD_PARETO);
	/* a's endpoint: work, parallel(2 calls), call = 5 steps in all */
	assert_int_equal(s->eps[3].n, 5);
	assert_int_equal(s->steps[s->eps[3].first + 1].kind, GS_PARALLEL);
	assert_int_equal(s->steps[s->eps[3].first + 1].n, 2);
	assert_int_equal(s->entry_policy, GP_POOL);
	assert_int_equal(s->entry_k, 4);
	assert_int_equal(s->nbg, 3);
	assert_int_equal(s->bg[2].where, GB_EXTERNAL);
	free(s);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("bogus 1\n", "t.scn:1: ", "unknown statement 'bogus'");
	refused("node 1\nnode 1\n", "t.scn:2: ", "node 1 declared twice");
	refused("node 0\n", "t.scn:1: ", "out of range");
	refused("node 1 addr 300.1.1.1\n", "t.scn:1: ", "not an IPv4 or IPv6 address");
	refused("node 1\nnode 2 addr 10.0.0.1\n", "t.scn:2: ", "same address as node 1");
	refused("node 1\nnode 2 addr ::2\n", "t.scn:2: ", "one address family per scenario");
	refused("node 1 drift 5\n", "t.scn:1: ", "ppm");
	refused("node 1 loss 0.9\n", "t.scn:1: ", "out of range");
	refused("node 1 captured maybe\n", "t.scn:1: ", "captured 'maybe': yes or no");
	refused("node 1 captured no\nservice a node 1 port 80\n" OK_TAIL, "t.scn:6: ",
		"entry service 'a' is on node 1, which is not captured");
	refused("node 1\nservice a node 2 port 80\n", "t.scn:2: ", "unknown node 2");
	refused("node 1\nservice a node 1\n", "t.scn:2: ", "needs 'port P'");
	refused(HEAD "service b node 1 port 80\n", "t.scn:3: ", "port 80 on node 1 is taken by service 'a'");
	refused(HEAD "service a node 1 port 81\n", "t.scn:3: ", "declared twice");
	refused("node 1\nservice a node 1 port 80 model fibers\n", "t.scn:2: ", "unknown model 'fibers'");
	refused("node 1\nservice a node 1 port 80 threads 4\n", "t.scn:2: ", "does not apply to model thread");
	refused("node 1\nservice a node 1 port 80 model pool threads 0\n", "t.scn:2: ", "out of range");
	refused("node 1\nservice a! node 1 port 80\n", "t.scn:2: ", "may hold only");
	refused(HEAD "endpoint a e\n  work 5\nend\n", "t.scn:4: ", "duration needs a unit");
	refused(HEAD "endpoint a e\n  work exp(-1ms)\nend\n", "t.scn:4: ", "not negative");
	refused(HEAD "endpoint a e\n  work uniform(3ms,1ms)\nend\n", "t.scn:4: ", "a <= b");
	refused(HEAD "endpoint a e\n  work gamma(1ms)\nend\n", "t.scn:4: ", "unknown distribution");
	refused(HEAD "endpoint a e\n  work exp(1ms\nend\n", "t.scn:4: ", "unbalanced '('");
	refused(HEAD "endpoint a e\n  call nope\nend\n", "t.scn:4: ", "unknown service 'nope'");
	refused(HEAD "endpoint a e\n  call a/zz\nend\n", "t.scn:4: ", "no endpoint 'zz'");
	refused(HEAD "endpoint a e\n  call a prob 1.5\nend\n", "t.scn:4: ", "out of range");
	refused(HEAD "endpoint a e\n  work 1ms\n", "t.scn:3: ", "never closed");
	refused(HEAD "endpoint a e\n  parallel\n  work 1ms\n  end\nend\n", "t.scn:5: ",
		"only 'call' may stand inside 'parallel'");
	refused(HEAD "endpoint a e\n  parallel\n  end\nend\n", "t.scn:5: ", "holds no call");
	refused(HEAD "endpoint a e\n  parallel\n    call a\n", "t.scn:4: ", "never closed");
	refused(HEAD "work 1ms\n", "t.scn:3: ", "outside an endpoint");
	refused(HEAD "endpoint a e\n  node 2\nend\n", "t.scn:4: ", "close it with 'end' first");
	refused(HEAD "endpoint a e\nend\nendpoint a e\nend\n", "t.scn:5: ", "already has an endpoint 'e'");
	refused(HEAD "endpoint a e\n  call a\nend\nentry a\n", "t.scn:4: ", "makes a cycle");
	refused("node 1\nservice a node 1 port 80\nservice b node 1 port 81\n"
		"endpoint b e\nend\nendpoint a e\n  call b\nend\n"
		"endpoint b f\n  call a\nend\nentry a\n", "t.scn:10: ", "makes a cycle");
	refused(HEAD "service b node 1 port 81\nendpoint a e\n  call b\nend\nentry a\n",
		"t.scn:5: ", "'b' is called but has no endpoint");
	refused(HEAD "endpoint a e\nend\n", "t.scn:1: ", "no 'entry SERVICE' line");
	refused(HEAD OK_TAIL "entry a\n", "t.scn:7: ", "'entry' given twice");
	refused(HEAD "entry a conn pool 3\n", "t.scn:3: ", "new or keepalive K");
	refused(HEAD "service b node 1 port 81\nconn a b pool\n", "t.scn:4: ", "needs a size");
	refused(HEAD "service b node 1 port 81\nconn a b pool 2\nconn a b new\n", "t.scn:5: ",
		"already set (line 4)");
	refused(HEAD "service b node 1 port 81\nconn a b sometimes\n", "t.scn:4: ",
		"connection policy 'sometimes' unknown");
	refused(HEAD "service b node 1 port 81\nconn a b pool 2 idle 5\n", "t.scn:4: ",
		"duration needs a unit");
	refused(HEAD "background x on a every 1s\n", "t.scn:3: ", "needs 'target");
	refused(HEAD "background x target a every 1s\n", "t.scn:3: ", "needs 'on SERVICE'");
	refused(HEAD "background x on a target a\n", "t.scn:3: ", "needs 'every DIST'");
	refused(HEAD "background x on a target a every 1us\n", "t.scn:3: ", "at least 100us");
	refused(HEAD "background x on external target a every 1s conn shared\n", "t.scn:3: ",
		"external background clients");
	refused(HEAD "load high 1\nload low 5\n" OK_TAIL, "t.scn:1: ", "load medium");
	refused(HEAD "load extreme 5\n", "t.scn:3: ", "unknown load level");
	refused(HEAD "arrival bursty\n", "t.scn:3: ", "poisson, uniform or closed");
	refused(HEAD "network bandwidth 10Mbit\n", "t.scn:3: ", "in Gbit");
	refused(HEAD "scenario a b\n", "t.scn:3: ", "takes one name");
	refused("", "t.scn:1: ", "no 'node' declared");
	refused("node 1\n", "t.scn:1: ", "no 'service' declared");
	/* a NUL inside the text (strlen would stop at it) */
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	static const char nul[] = "node 1\n\n\nnode 2 \0x\n";
	assert_int_equal(gen_spec_parse(s, "t.scn", nul, sizeof(nul) - 1, &err), -TJ_E_FORMAT);
	assert_string_equal(err.msg, "t.scn:4: NUL byte in the spec");
	free(s);
}

static void test_long_line(void **state)
{
	(void)state;
	char *t = malloc(GEN_MAX_LINE + 64);
	strcpy(t, "node 1\ndescribe ");
	size_t n = strlen(t);
	memset(t + n, 'x', GEN_MAX_LINE + 10);
	t[n + GEN_MAX_LINE + 10] = '\0';
	refused(t, "t.scn:2: ", "longer than");
	free(t);
}

static void test_quantities(void **state)
{
	(void)state;
	double v;
	assert_null(gen_quantity_parse("1.5ms", GEN_UNIT_TIME, &v));
	assert_true(v == 1.5e6);
	assert_null(gen_quantity_parse("16K", GEN_UNIT_SIZE, &v));
	assert_true(v == 16384);
	assert_null(gen_quantity_parse("300", GEN_UNIT_SIZE, &v));
	assert_non_null(gen_quantity_parse("3 ms", GEN_UNIT_TIME, &v));
	assert_non_null(gen_quantity_parse("nan", GEN_UNIT_NUMBER, &v));
	assert_non_null(gen_quantity_parse("inf", GEN_UNIT_NUMBER, &v));
	assert_non_null(gen_quantity_parse("1e300s", GEN_UNIT_TIME, &v));
	struct gen_dist d;
	assert_null(gen_dist_parse("lognormal(800,1.0)", GEN_UNIT_SIZE, &d));
	assert_int_equal(d.kind, GD_LOGNORMAL);
	assert_non_null(gen_dist_parse("exp(1ms,2ms)", GEN_UNIT_TIME, &d));
	assert_non_null(gen_dist_parse("uniform(1ms)", GEN_UNIT_TIME, &d));
	assert_non_null(gen_dist_parse("pareto(1ms,1)", GEN_UNIT_TIME, &d));
	/* samples are never negative, and the mean is about right */
	gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
	assert_null(gen_dist_parse("normal(1ms,2ms)", GEN_UNIT_TIME, &d));
	for (int i = 0; i < 1000; i++)
		assert_true(gen_dist_sample(&d, r) >= 0);
	assert_null(gen_dist_parse("exp(2ms)", GEN_UNIT_TIME, &d));
	double sum = 0;
	for (int i = 0; i < 20000; i++)
		sum += gen_dist_sample(&d, r);
	assert_true(sum / 20000 > 1.9e6 && sum / 20000 < 2.1e6);
	gsl_rng_free(r);
}

static void test_builtins_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < gen_nbuiltins; i++) {
		struct gen_spec *s = malloc(sizeof(*s));
		struct tj_err err = { 0 };
		if (gen_spec_parse(s, gen_builtins[i].name, gen_builtins[i].text,
				   gen_builtins[i].len, &err) < 0)
			fail_msg("%s", err.msg);
		assert_string_equal(s->name, gen_builtins[i].name);
		free(s);
	}
	assert_null(gen_builtin_find("no-such-scenario"));
	assert_non_null(gen_builtin_find("async-keepalive"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_builtins_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
