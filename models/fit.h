/* Fitting a classifier model with GSL from grouped training pairs.
 *
 * Training data is a list of groups, one per call: its candidates'
 * feature rows and which of them (if any) is the true parent.  Two fits:
 *   logit   L2-regularised logistic regression of "is the parent" on each
 *           pair independently, by IRLS (Newton steps solved with GSL's
 *           Cholesky decomposition), intercept unpenalised;
 *   clogit  conditional logit: a softmax over the call's candidates plus a
 *           "no parent" option of score 0, L2-regularised, minimised with
 *           gsl_multimin's BFGS2.
 * Features are standardised (mean 0, scale 1 on the training rows) first;
 * lambda penalises the standardised coefficients, per training call
 * (the penalty is lambda/2 * |w|^2 * ncalls_or_rows / 1000, see fit.c).
 * Then a probability threshold below which a call gets no parent is chosen
 * to maximise training accuracy.  Everything is deterministic: the same
 * groups in the same order give bit-identical coefficients. */
#ifndef TJ_FIT_H
#define TJ_FIT_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "../lib/error.h"

#define TJ_TRUTH_NONE (-1)        /* the call has no parent */
#define TJ_TRUTH_UNREACHABLE (-2) /* it has one, but not among the candidates */

struct tj_fit_set {
	size_t nfeat;
	/* the feature row column each of the nfeat fitted features is read
	 * from, increasing (tj_fit_set_select); the first nfeat by default */
	size_t col[TJ_MODEL_MAXFEAT];
	double *x;      /* nrows * nfeat */
	uint8_t *y;     /* 1 for the true parent's row */
	size_t nrows, rcap;
	size_t *gend;   /* group g's rows are [g ? gend[g-1] : 0, gend[g]) */
	int32_t *truth; /* index in the group, or TJ_TRUTH_* */
	size_t ngroups, gcap;
};

void tj_fit_set_init(struct tj_fit_set *s, size_t nfeat);
void tj_fit_set_free(struct tj_fit_set *s);
/* Fit on the n columns col[] of each row (increasing, < TJ_MODEL_MAXFEAT)
 * instead of the first nfeat; before the first tj_fit_set_add. */
void tj_fit_set_select(struct tj_fit_set *s, const size_t *col, size_t n);
/* Append one call: n rows (stride given) of which the set keeps its
 * nfeat columns, and its truth. */
int tj_fit_set_add(struct tj_fit_set *s, const double *x, size_t n,
		   size_t stride, int truth, struct tj_err *err);

struct tj_fit_opts {
	int fit;       /* enum tj_fit_kind */
	double lambda; /* default 1.0 */
	int max_iter;  /* default 200 */
	int verbose;   /* progress on stderr */
	/* clogit only: start from this model's scores (re-expressed on this
	 * set's standardisation) instead of all zeros; NULL: zeros.  A refit
	 * on a grown set (train --self-fed) starts near its optimum. */
	const struct tj_model *start;
};

/* Fit m->coef, bias, mean, scale, threshold and the training summary;
 * m->names, nfeat and the window options are the caller's.  */
int tj_fit(const struct tj_fit_set *s, const struct tj_fit_opts *o,
	   struct tj_model *m, struct tj_err *err);

/* Share of the set's calls the model gets right (a call with no parent is
 * right when the model says none; an unreachable one is always wrong),
 * deciding each group independently as tj_model_decide does. */
double tj_fit_accuracy(const struct tj_fit_set *s, const struct tj_model *m);

#endif
