/* The ordered joint assignment (correlate/order_align.h) on hand-made
 * queues: where only order decides, where the fitted moves say the queue
 * is not ordered (the free choice stands), the learned number of calls per
 * request, the decided start, and the fit of the moves. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "correlate/order_align.h"

/* Request i: a server-side request on socket 100 + i that arrived at i. */
static struct tj_msgkey req(unsigned i)
{
	struct tj_msgkey k = { .node = 1, .sock = 100 + i, .offset = 0, .dir = 0 };
	return k;
}

/* A call with candidates (request, probability) pairs, best first. */
static void call(struct tj_align_call *c, size_t n, const unsigned *r, const double *p)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	for (size_t j = 0; j < n; j++) {
		c->cand[j] = req(r[j]);
		c->ts[j] = r[j];
		c->lp[j] = log(p[j]);
	}
}

static unsigned picked(const struct tj_align_call *c)
{
	return (unsigned)c->ts[c->pick];
}

/* A FIFO queue: every decided move so far advanced. */
static void fifo(struct tj_align_moves *mv)
{
	memset(mv, 0, sizeof(*mv));
	for (unsigned r = 0; r < TJ_ALIGN_RUNMAX; r++)
		mv->count[r][TJ_ALIGN_ADVANCE] = 100;
}

/* Free choice A, A, B; only order says A, B, C. */
static void test_order_decides(void **state)
{
	(void)state;
	struct tj_align_moves mv;
	struct tj_align_state st = { 0 };
	struct tj_align_call c[3];
	fifo(&mv);
	call(&c[0], 2, (unsigned[]){ 1, 2 }, (double[]){ 0.7, 0.3 });
	call(&c[1], 2, (unsigned[]){ 1, 2 }, (double[]){ 0.6, 0.4 });
	call(&c[2], 2, (unsigned[]){ 2, 3 }, (double[]){ 0.6, 0.4 });
	assert_int_equal(tj_align_path(&mv, &st, c, 3), 0);
	assert_int_equal(picked(&c[0]), 1);
	assert_int_equal(picked(&c[1]), 2);
	assert_int_equal(picked(&c[2]), 3);
}

/* The same emissions under two fitted move models: a FIFO queue keeps the
 * order (B, C), a queue of racing workers (back as common as advance)
 * keeps the free choice (B, A). */
static void test_fitted_switch(void **state)
{
	(void)state;
	struct tj_align_moves mv;
	struct tj_align_state st = { 0 };
	struct tj_align_call c[2];
	fifo(&mv);
	call(&c[0], 2, (unsigned[]){ 2, 1 }, (double[]){ 0.8, 0.2 });
	call(&c[1], 2, (unsigned[]){ 1, 3 }, (double[]){ 0.8, 0.2 });
	assert_int_equal(tj_align_path(&mv, &st, c, 2), 0);
	assert_int_equal(picked(&c[0]), 2);
	assert_int_equal(picked(&c[1]), 3);

	memset(&mv, 0, sizeof(mv));
	mv.count[0][TJ_ALIGN_ADVANCE] = 50;
	mv.count[0][TJ_ALIGN_BACK] = 50;
	assert_int_equal(tj_align_path(&mv, &st, c, 2), 0);
	assert_int_equal(picked(&c[0]), 2);
	assert_int_equal(picked(&c[1]), 1);
}

/* Requests make two calls to this destination (stay after one call is
 * common, after two never): three calls that all prefer A go A, A, B. */
static void test_calls_per_request(void **state)
{
	(void)state;
	struct tj_align_moves mv;
	struct tj_align_state st = { 0 };
	struct tj_align_call c[3];
	memset(&mv, 0, sizeof(mv));
	mv.count[0][TJ_ALIGN_STAY] = 100;
	mv.count[1][TJ_ALIGN_ADVANCE] = 100;
	for (int i = 0; i < 3; i++)
		call(&c[i], 2, (unsigned[]){ 1, 2 }, (double[]){ 0.55, 0.45 });
	assert_int_equal(tj_align_path(&mv, &st, c, 3), 0);
	assert_int_equal(picked(&c[0]), 1);
	assert_int_equal(picked(&c[1]), 1);
	assert_int_equal(picked(&c[2]), 2);
}

/* The decided part of the queue ended at request 2: the next call goes
 * on from there, not back to 1. */
static void test_start_state(void **state)
{
	(void)state;
	struct tj_align_moves mv;
	struct tj_align_state st = { .has_prev = 1, .prev = req(2), .prev_ts = 2, .run = 1 };
	struct tj_align_call c[1];
	fifo(&mv);
	call(&c[0], 2, (unsigned[]){ 1, 3 }, (double[]){ 0.8, 0.2 });
	assert_int_equal(tj_align_path(&mv, &st, c, 1), 0);
	assert_int_equal(picked(&c[0]), 3);
	/* Nothing decided before: the free choice. */
	struct tj_align_state none = { 0 };
	assert_int_equal(tj_align_path(&mv, &none, c, 1), 0);
	assert_int_equal(picked(&c[0]), 1);
}

/* Committing A, B, B, A counts advance and stay after one call, back
 * after two, and leaves the state at A. */
static void test_commit_fits_moves(void **state)
{
	(void)state;
	struct tj_align_moves mv;
	struct tj_align_state st = { 0 };
	struct tj_align_call c[4];
	memset(&mv, 0, sizeof(mv));
	const unsigned seq[4] = { 1, 2, 2, 1 };
	for (int i = 0; i < 4; i++) {
		call(&c[i], 1, &seq[i], (double[]){ 1.0 });
		c[i].pick = 0;
	}
	tj_align_commit(&mv, &st, c, 4);
	assert_true(mv.count[0][TJ_ALIGN_ADVANCE] == 1);
	assert_true(mv.count[0][TJ_ALIGN_STAY] == 1);
	assert_true(mv.count[1][TJ_ALIGN_BACK] == 1);
	assert_true(st.has_prev && st.prev_ts == 1 && st.run == 1);
	/* Smoothed: a move never seen stays possible, and the three sum to 1. */
	double s = 0;
	for (int m = 0; m < TJ_ALIGN_NMOVE; m++) {
		double p = exp(tj_align_logp(&mv, 3, m));
		assert_true(p > 0);
		s += p;
	}
	assert_true(fabs(s - 1) < 1e-12);
}

/* Requests that arrived at the same instant are ordered by key. */
static void test_move_ties(void **state)
{
	(void)state;
	struct tj_msgkey a = req(1), b = req(2);
	assert_int_equal(tj_align_move_of(&a, 5, &a, 5), TJ_ALIGN_STAY);
	assert_int_equal(tj_align_move_of(&a, 5, &b, 5), TJ_ALIGN_ADVANCE);
	assert_int_equal(tj_align_move_of(&b, 5, &a, 5), TJ_ALIGN_BACK);
	assert_int_equal(tj_align_move_of(&b, 4, &a, 5), TJ_ALIGN_ADVANCE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_decides),
		cmocka_unit_test(test_fitted_switch),
		cmocka_unit_test(test_calls_per_request),
		cmocka_unit_test(test_start_state),
		cmocka_unit_test(test_commit_fits_moves),
		cmocka_unit_test(test_move_ties),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
