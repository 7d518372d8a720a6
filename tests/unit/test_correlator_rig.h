/* Run a correlator over hand-built events and check its edges: the rig the
 * correlator unit tests share (include after cmocka.h). */
#ifndef TEST_CORRELATOR_RIG_H
#define TEST_CORRELATOR_RIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "replay/assemble.h"
#include "test_util.h"
#include "correlate/host.h"

/* An event of node 1, pid 100 on a gateway: sockets below 100 are its
 * server side (port 8080), the others its client side towards port rport. */
static inline struct tj_event test_gateway_event(uint64_t ts, unsigned type, uint64_t sock,
						 uint64_t off, int64_t bytes, uint32_t tid,
						 uint16_t rport)
{
	struct tj_event e = test_event(1, ts, type, sock, off, bytes, 100, tid);
	e.lport = sock < 100 ? 8080 : 40000 + (uint16_t)sock;
	e.rport = sock < 100 ? 50000 : rport;
	return e;
}

struct test_rig {
	const struct tj_correlator *c;
	void *st;
	struct tj_edge_set set;
	struct tj_edge_set_sink sink;
	struct tj_err err;
};

static inline int test_rig_message(void *ctx, const struct tj_message *m)
{
	struct test_rig *r = ctx;
	return r->c->message(r->st, m, &r->sink.sink, &r->err);
}

/* Replays evs through the assembler into c (opened with p, may be NULL);
 * its edges end in r->set (tj_edges_free it). */
static inline void test_rig_run(struct test_rig *r, const struct tj_correlator *c,
				const struct tj_event *evs, size_t n,
				const struct tj_params *p)
{
	struct tj_assembler *a;
	memset(r, 0, sizeof(*r));
	r->c = c;
	tj_edge_set_sink_init(&r->sink, &r->set);
	assert_int_equal(c->open(&r->st, p, &r->err), 0);
	assert_int_equal(tj_assembler_new(&a, NULL, test_rig_message, r, &r->err), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tj_assembler_feed(a, &evs[i], &r->err), 0);
	assert_int_equal(tj_assembler_end(a, &r->err), 0);
	assert_int_equal(c->finish(r->st, &r->sink.sink, &r->err), 0);
	c->close(r->st);
	tj_assembler_free(a);
}

/* test_rig_run with the params given (may be NULL) and explain=1, stderr
 * caught: returns what the correlator printed there (free it). */
static inline char *test_rig_run_explained_with(struct test_rig *r,
						const struct tj_correlator *c,
						const struct tj_event *evs, size_t n,
						const struct tj_params *given)
{
	struct tj_params p = { .n = 0 };
	if (given)
		p = *given;
	assert_true(p.n < TJ_PARAMS_MAX);
	p.key[p.n] = "explain";
	p.val[p.n++] = "1";
	FILE *f = tmpfile();
	assert_non_null(f);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0 && dup2(fileno(f), 2) >= 0);
	test_rig_run(r, c, evs, n, &p);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t len = lseek(fileno(f), 0, SEEK_END);
	assert_true(len >= 0);
	char *text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(pread(fileno(f), text, (size_t)len, 0), len);
	fclose(f);
	return text;
}

/* test_rig_run with explain=1 and stderr caught: returns what the
 * correlator printed there (free it). */
static inline char *test_rig_run_explained(struct test_rig *r, const struct tj_correlator *c,
					   const struct tj_event *evs, size_t n)
{
	return test_rig_run_explained_with(r, c, evs, n, NULL);
}

/* The edge of call `child` (fails the test if it has none). */
static inline const struct tj_edge *test_edge_of(const struct tj_edge_set *s,
						 const char *child)
{
	struct tj_msgkey k;
	assert_int_equal(tj_msgkey_parse(child, &k), 0);
	for (size_t i = 0; i < s->n; i++)
		if (tj_msgkey_eq(&s->edges[i].child, &k))
			return &s->edges[i];
	fail_msg("no edge for %s", child);
	return NULL;
}

/* The edge of call `child` names `parent` (NULL: no parent). */
static inline void test_expect_parent(const struct tj_edge_set *s, const char *child,
				      const char *parent)
{
	const struct tj_edge *e = test_edge_of(s, child);
	char buf[TJ_MSGKEY_STRLEN];
	if (!parent && e->has_parent)
		fail_msg("%s: expected no parent, got %s", child,
			 tj_msgkey_format(&e->parent, buf));
	if (parent && !e->has_parent)
		fail_msg("%s: expected %s, got none", child, parent);
	if (parent)
		assert_string_equal(tj_msgkey_format(&e->parent, buf), parent);
}

/* c refuses to open with the one param key=val, makes no state, and says
 * `says` in its message. */
static inline void test_expect_refused(const struct tj_correlator *c, const char *key,
				       const char *val, const char *says)
{
	struct tj_params p = { .n = 1 };
	struct tj_err err = { 0 };
	void *st = NULL;
	p.key[0] = key;
	p.val[0] = val;
	assert_true(c->open(&st, &p, &err) < 0);
	assert_null(st);
	if (!strstr(err.msg, says))
		fail_msg("%s %s=%s: refused with '%s', expected it to say '%s'", c->name, key,
			 val, err.msg, says);
}

#endif
