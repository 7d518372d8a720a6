/* Viterbi alignment of a queue's calls to their requests; the model is in
 * order_align.h. */
#include <math.h>
#include <stdlib.h>
#include "order_align.h"

enum tj_align_move tj_align_move_of(const struct tj_msgkey *prev, uint64_t prev_ts,
				    const struct tj_msgkey *key, uint64_t ts)
{
	if (tj_msgkey_eq(prev, key))
		return TJ_ALIGN_STAY;
	if (ts != prev_ts) /* requests that arrived at once: order by key */
		return ts > prev_ts ? TJ_ALIGN_ADVANCE : TJ_ALIGN_BACK;
	return tj_msgkey_cmp(key, prev) > 0 ? TJ_ALIGN_ADVANCE : TJ_ALIGN_BACK;
}

double tj_align_logp(const struct tj_align_moves *mv, unsigned run,
		     enum tj_align_move move)
{
	const double *c = mv->count[run - 1];
	double tot = c[0] + c[1] + c[2] + TJ_ALIGN_NMOVE;
	return log((c[move] + 1.0) / tot);
}

/* The run after a move from run r. */
static unsigned next_run(unsigned r, enum tj_align_move move)
{
	if (move != TJ_ALIGN_STAY)
		return 1;
	return r < TJ_ALIGN_RUNMAX ? r + 1 : TJ_ALIGN_RUNMAX;
}

#define ST(i, j, r) (((i) * TJ_ALIGN_TOP + (j)) * TJ_ALIGN_RUNMAX + (r) - 1)

int tj_align_path(const struct tj_align_moves *mv, const struct tj_align_state *start,
		  struct tj_align_call *calls, size_t n)
{
	if (n == 0)
		return 0;
	/* A queue's usual path (at most 2 * TJ_ALIGN_LAG calls) on the stack:
	 * this runs once per TJ_ALIGN_LAG calls of every queue. */
	enum { NS_STACK = 2 * TJ_ALIGN_LAG * TJ_ALIGN_TOP * TJ_ALIGN_RUNMAX };
	double best_s[NS_STACK];
	int from_s[NS_STACK];
	size_t ns = n * TJ_ALIGN_TOP * TJ_ALIGN_RUNMAX;
	double *best = ns <= NS_STACK ? best_s : malloc(ns * sizeof(*best));
	int *from = ns <= NS_STACK ? from_s : malloc(ns * sizeof(*from));
	if (!best || !from) {
		if (best != best_s)
			free(best);
		if (from != from_s)
			free(from);
		return -1;
	}
	for (size_t s = 0; s < ns; s++) {
		best[s] = -INFINITY;
		from[s] = -1;
	}
	double lt[TJ_ALIGN_RUNMAX + 1][TJ_ALIGN_NMOVE]; /* log T, once per path */
	for (unsigned r = 1; r <= TJ_ALIGN_RUNMAX; r++)
		for (int m = 0; m < TJ_ALIGN_NMOVE; m++)
			lt[r][m] = tj_align_logp(mv, r, (enum tj_align_move)m);
	const struct tj_align_call *c0 = &calls[0];
	for (size_t j = 0; j < c0->n; j++) {
		if (!start->has_prev) {
			best[ST(0, j, 1)] = c0->lp[j];
			continue;
		}
		enum tj_align_move mo = tj_align_move_of(&start->prev, start->prev_ts,
							 &c0->cand[j], c0->ts[j]);
		unsigned r = next_run(start->run, mo);
		double s = c0->lp[j] + lt[start->run][mo];
		if (s > best[ST(0, j, r)])
			best[ST(0, j, r)] = s;
	}
	for (size_t i = 1; i < n; i++) {
		const struct tj_align_call *p = &calls[i - 1], *c = &calls[i];
		for (size_t a = 0; a < p->n; a++) {
			enum tj_align_move mab[TJ_ALIGN_TOP]; /* the same for every run */
			for (size_t b = 0; b < c->n; b++)
				mab[b] = tj_align_move_of(&p->cand[a], p->ts[a], &c->cand[b],
							  c->ts[b]);
			for (unsigned ra = 1; ra <= TJ_ALIGN_RUNMAX; ra++) {
				double sa = best[ST(i - 1, a, ra)];
				if (sa == -INFINITY)
					continue;
				for (size_t b = 0; b < c->n; b++) {
					enum tj_align_move mo = mab[b];
					unsigned rb = next_run(ra, mo);
					double s = sa + c->lp[b] + lt[ra][mo];
					size_t k = ST(i, b, rb);
					if (s > best[k]) {
						best[k] = s;
						from[k] = (int)ST(i - 1, a, ra);
					}
				}
			}
		}
	}
	/* Best end state, then back along the pointers. */
	size_t at = ST(n - 1, 0, 1);
	for (size_t j = 0; j < calls[n - 1].n; j++)
		for (unsigned r = 1; r <= TJ_ALIGN_RUNMAX; r++)
			if (best[ST(n - 1, j, r)] > best[at])
				at = ST(n - 1, j, r);
	for (size_t i = n; i-- > 0;) {
		calls[i].pick = (int)((at / TJ_ALIGN_RUNMAX) % TJ_ALIGN_TOP);
		if (i > 0)
			at = (size_t)from[at];
	}
	if (best != best_s)
		free(best);
	if (from != from_s)
		free(from);
	return 0;
}

void tj_align_commit(struct tj_align_moves *mv, struct tj_align_state *st,
		     const struct tj_align_call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct tj_align_call *c = &calls[i];
		const struct tj_msgkey *k = &c->cand[c->pick];
		if (st->has_prev) {
			enum tj_align_move mo = tj_align_move_of(&st->prev, st->prev_ts,
								 k, c->ts[c->pick]);
			mv->count[st->run - 1][mo] += 1;
			st->run = next_run(st->run, mo);
		} else {
			st->run = 1;
		}
		st->has_prev = 1;
		st->prev = *k;
		st->prev_ts = c->ts[c->pick];
	}
}
