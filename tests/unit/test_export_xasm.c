/* The streamed export's trace assembler (export/xasm.h): when a trace is
 * written (its flush rule), in which order, that a span whose parent
 * comes later still ends up in its parent's trace, and that cycles and
 * second parents are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "export/xasm.h"

#define W 1000 /* the window, ns */

struct seen {
	int traces;
	struct tj_msgkey root[8];  /* each written trace's root */
	size_t n[8];               /* and its size */
	uint32_t model_root_sock;  /* the last trace's root by tj_xasm_model */
	size_t model_children;     /* children of that root */
};

static int on_trace(void *ctx, struct tj_xasm *a, const uint32_t *slots, size_t n)
{
	struct seen *s = ctx;
	if (s->traces < 8) {
		s->root[s->traces] = tj_xasm_span(a, slots[0])->x.key;
		s->n[s->traces] = n;
	}
	s->traces++;
	struct tj_xmodel m = { 0 };
	struct tj_err err = { 0 };
	uint32_t root;
	assert_int_equal(tj_xasm_model(a, slots, n, &m, &root, &err), 0);
	assert_int_equal(m.nroots, 1);
	assert_int_equal(m.roots[0], root);
	assert_int_equal(m.spans[root].parent, TJ_XSPAN_NONE);
	s->model_root_sock = (uint32_t)m.spans[root].key.sock;
	s->model_children = m.first_child[root + 1] - m.first_child[root];
	return 0; /* the model's arrays are the assembler's (xasm.h) */
}

/* A span of node index `node` on socket sock: a request (server) or a
 * call (client), from start to end. */
static uint32_t add(struct tj_xasm *a, uint32_t node, uint64_t sock, int call,
		    uint64_t start, uint64_t end)
{
	struct tj_xspan x = { 0 };
	x.key.node = node + 1;
	x.key.sock = sock;
	x.key.dir = call ? TJ_DIR_OUT : TJ_DIR_IN;
	x.start = start;
	x.end = end;
	x.kind = call ? TJ_XSPAN_CLIENT : TJ_XSPAN_SERVER;
	uint32_t slot = tj_xasm_add(a, &x, node);
	assert_int_not_equal(slot, TJ_XSPAN_NONE);
	return slot;
}

/* A trace is written once every node's watermark is a window past its
 * last end, not before; the last end counts, not the root's. */
static void test_flush_waits_for_every_node(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct tj_xasm *a = tj_xasm_new(2, W, on_trace, &s);
	uint32_t r = add(a, 0, 1, 0, 100, 200);
	uint32_t c = add(a, 0, 2, 1, 110, 900); /* a call ending after its request */
	assert_int_equal(tj_xasm_link(a, c, r), TJ_XASM_OK);
	assert_int_equal(tj_xasm_settle(a, r), 0);
	assert_int_equal(tj_xasm_settle(a, c), 0);
	tj_xasm_advance(a, 0, 100000);
	assert_int_equal(tj_xasm_flush(a, 0), 0);
	assert_int_equal(s.traces, 0); /* node 1 has delivered nothing yet */
	tj_xasm_advance(a, 1, 900 + W - 1);
	assert_int_equal(tj_xasm_flush(a, 0), 0);
	assert_int_equal(s.traces, 0); /* a window past the request, not the call */
	tj_xasm_advance(a, 1, 900 + W);
	assert_int_equal(tj_xasm_flush(a, 0), 0);
	assert_int_equal(s.traces, 1);
	assert_int_equal(s.n[0], 2);
	assert_int_equal(s.root[0].sock, 1);
	assert_int_equal(s.model_children, 1);
	/* written: its spans are no longer live, so a late child cannot
	 * find its parent (the caller detects that and says so) */
	struct tj_msgkey k = { .node = 1, .sock = 1, .dir = TJ_DIR_IN };
	assert_int_equal(tj_xasm_find(a, &k), TJ_XSPAN_NONE);
	assert_int_equal(tj_xasm_stats(a)->live, 0);
	assert_int_equal(tj_xasm_stats(a)->peak_live, 2);
	tj_xasm_free(a);
}

/* Traces leave in the order of their roots' starts: a short trace that
 * is ready waits for an earlier one still open. */
static void test_flush_keeps_root_order(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct tj_xasm *a = tj_xasm_new(1, W, on_trace, &s);
	uint32_t x = add(a, 0, 1, 0, 100, 5000);
	uint32_t y = add(a, 0, 2, 0, 200, 300);
	tj_xasm_settle(a, x);
	tj_xasm_settle(a, y);
	tj_xasm_advance(a, 0, 300 + W);
	assert_int_equal(tj_xasm_flush(a, 0), 0);
	assert_int_equal(s.traces, 0);
	tj_xasm_advance(a, 0, 5000 + W);
	assert_int_equal(tj_xasm_flush(a, 0), 0);
	assert_int_equal(s.traces, 2);
	assert_int_equal(s.root[0].sock, 1);
	assert_int_equal(s.root[1].sock, 2);
	tj_xasm_free(a);
}

/* A request that arrives before the call it came from (another node's
 * clock behind) is a root only until the call comes: then its trace is
 * the call's, written whole, rooted at the call's parent. */
static void test_parent_arriving_later(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct tj_xasm *a = tj_xasm_new(2, W, on_trace, &s);
	uint32_t req = add(a, 1, 7, 0, 150, 180);      /* node 2's request */
	tj_xasm_settle(a, req);
	tj_xasm_advance(a, 1, 150);
	uint32_t root = add(a, 0, 1, 0, 100, 400);     /* node 1: the root */
	tj_xasm_settle(a, root);
	uint32_t call = add(a, 0, 2, 1, 120, 200);     /* its call, joined late */
	assert_int_equal(tj_xasm_link(a, call, root), TJ_XASM_OK);
	assert_int_equal(tj_xasm_link(a, req, call), TJ_XASM_OK);
	tj_xasm_settle(a, call);
	assert_int_equal(tj_xasm_flush(a, 1), 0);
	assert_int_equal(s.traces, 1);
	assert_int_equal(s.n[0], 3);
	assert_int_equal(s.root[0].sock, 1);
	assert_int_equal(s.model_root_sock, 1);
	tj_xasm_free(a);
}

static void test_refuses_cycles_and_second_parents(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct tj_xasm *a = tj_xasm_new(1, W, on_trace, &s);
	uint32_t p = add(a, 0, 1, 0, 100, 200);
	uint32_t c = add(a, 0, 2, 1, 110, 150);
	uint32_t q = add(a, 0, 3, 0, 120, 130);
	assert_int_equal(tj_xasm_link(a, c, p), TJ_XASM_OK);
	assert_int_equal(tj_xasm_link(a, c, q), TJ_XASM_HAS_PARENT);
	assert_int_equal(tj_xasm_link(a, q, c), TJ_XASM_OK);
	assert_int_equal(tj_xasm_link(a, p, q), TJ_XASM_CYCLE);
	/* a key already live is refused */
	struct tj_xspan dup = tj_xasm_span(a, p)->x;
	assert_int_equal(tj_xasm_add(a, &dup, 0), TJ_XSPAN_NONE);
	tj_xasm_settle(a, p);
	assert_int_equal(tj_xasm_flush(a, 1), 0);
	assert_int_equal(s.traces, 1);
	assert_int_equal(s.n[0], 3);
	tj_xasm_free(a);
}

/* Unindexed (the stream finds spans by socket): no key lookups, no
 * refusal of a key already live, the same traces and order. */
static void test_unindexed(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct tj_xasm *a = tj_xasm_new(1, W, on_trace, &s);
	tj_xasm_unindexed(a);
	uint32_t r = add(a, 0, 1, 0, 100, 200);
	uint32_t c = add(a, 0, 2, 1, 110, 150);
	uint32_t r2 = add(a, 0, 3, 0, 50, 60);
	struct tj_msgkey k = { .node = 1, .sock = 1, .dir = TJ_DIR_IN };
	assert_int_equal(tj_xasm_find(a, &k), TJ_XSPAN_NONE);
	struct tj_xspan dup = tj_xasm_span(a, r)->x; /* the caller refuses it */
	uint32_t d = tj_xasm_add(a, &dup, 0);
	assert_int_not_equal(d, TJ_XSPAN_NONE);
	assert_int_equal(tj_xasm_link(a, c, r), TJ_XASM_OK);
	assert_int_equal(tj_xasm_link(a, d, c), TJ_XASM_OK);
	assert_int_equal(tj_xasm_settle(a, r), 0);
	assert_int_equal(tj_xasm_settle(a, r2), 0);
	tj_xasm_advance(a, 0, 200 + W);
	assert_int_equal(tj_xasm_flush(a, 0), 0);
	assert_int_equal(s.traces, 2);
	assert_int_equal(s.root[0].sock, 3); /* the earlier root first */
	assert_int_equal(s.n[1], 3);
	assert_int_equal(tj_xasm_stats(a)->live, 0);
	tj_xasm_free(a);
}

/* Roots written in order of (start, key) whatever order they were
 * settled in: most near the back of the order (the sorted run), some far
 * behind it (the heap beside the run), ties of start told apart by key,
 * and roots that later got a parent (their entries stale). */
struct order_seen {
	uint64_t start[512];
	uint64_t sock[512];
	size_t n;
};

static int on_trace_order(void *ctx, struct tj_xasm *a, const uint32_t *slots, size_t n)
{
	struct order_seen *o = ctx;
	(void)n;
	assert_true(o->n < 512);
	o->start[o->n] = tj_xasm_span(a, slots[0])->x.start;
	o->sock[o->n++] = tj_xasm_span(a, slots[0])->x.key.sock;
	return 0;
}

static void test_root_order_any_arrival(void **state)
{
	(void)state;
	struct order_seen o = { 0 };
	struct tj_xasm *a = tj_xasm_new(1, W, on_trace_order, &o);
	tj_xasm_unindexed(a);
	uint32_t prev = TJ_XSPAN_NONE;
	size_t roots = 0;
	for (uint64_t i = 0; i < 400; i++) {
		uint64_t start = 10000 + 10 * i;
		if (i % 7 == 3)
			start -= 3000;  /* far behind the run's back: the heap */
		else if (i % 5 == 1)
			start -= 25;    /* a few places back */
		if (i % 9 == 4)
			start = 10000 + 10 * (i - 1); /* a tie with the one before */
		/* socks count down, so a tie's key order is not arrival order */
		uint32_t r = add(a, 0, 1000 - i, 0, start, start + 5);
		assert_int_equal(tj_xasm_settle(a, r), 0);
		roots++;
		if (i % 11 == 6 && prev != TJ_XSPAN_NONE) {
			/* it was a root; now a child of the one before */
			assert_int_equal(tj_xasm_link(a, r, prev), TJ_XASM_OK);
			roots--;
		}
		prev = r;
		if (i == 200) { /* part of them written on the way */
			tj_xasm_advance(a, 0, 10000 + 10 * 150);
			assert_int_equal(tj_xasm_flush(a, 0), 0);
			assert_true(o.n > 0);
		}
	}
	assert_int_equal(tj_xasm_flush(a, 1), 0);
	assert_int_equal(o.n, roots);
	for (size_t i = 1; i < o.n; i++)
		assert_true(o.start[i - 1] < o.start[i] ||
			    (o.start[i - 1] == o.start[i] && o.sock[i - 1] < o.sock[i]));
	assert_int_equal(tj_xasm_stats(a)->live, 0);
	tj_xasm_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_waits_for_every_node),
		cmocka_unit_test(test_flush_keeps_root_order),
		cmocka_unit_test(test_parent_arriving_later),
		cmocka_unit_test(test_refuses_cycles_and_second_parents),
		cmocka_unit_test(test_unindexed),
		cmocka_unit_test(test_root_order_any_arrival),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
