/* Model fitting with GSL (fit.h): IRLS logistic regression and a
 * conditional logit by BFGS, both on standardised features, then the
 * no-parent threshold. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_vector.h>
#include "fit.h"

void tj_fit_set_init(struct tj_fit_set *s, size_t nfeat)
{
	memset(s, 0, sizeof(*s));
	s->nfeat = nfeat;
	for (size_t k = 0; k < TJ_MODEL_MAXFEAT; k++)
		s->col[k] = k;
}

void tj_fit_set_select(struct tj_fit_set *s, const size_t *col, size_t n)
{
	s->nfeat = n;
	for (size_t k = 0; k < n; k++)
		s->col[k] = col[k];
}

void tj_fit_set_free(struct tj_fit_set *s)
{
	free(s->x);
	free(s->y);
	free(s->gend);
	free(s->truth);
	size_t col[TJ_MODEL_MAXFEAT], n = s->nfeat;
	memcpy(col, s->col, sizeof(col));
	tj_fit_set_init(s, n);
	tj_fit_set_select(s, col, n);
}

int tj_fit_set_add(struct tj_fit_set *s, const double *x, size_t n,
		   size_t stride, int truth, struct tj_err *err)
{
	if (truth >= 0 && (size_t)truth >= n)
		return tj_errf(err, TJ_E_ARG, "fit: truth %d outside %zu candidates",
			       truth, n);
	if (s->nrows + n > s->rcap) {
		size_t cap = s->rcap ? s->rcap : 1024;
		while (cap < s->nrows + n)
			cap *= 2;
		double *nx = realloc(s->x, cap * s->nfeat * sizeof(*nx));
		if (!nx)
			return tj_errf(err, TJ_E_NOMEM, "fit: out of memory (%zu rows)", cap);
		s->x = nx;
		uint8_t *ny = realloc(s->y, cap);
		if (!ny)
			return tj_errf(err, TJ_E_NOMEM, "fit: out of memory (%zu rows)", cap);
		s->y = ny;
		s->rcap = cap;
	}
	if (s->ngroups == s->gcap) {
		size_t cap = s->gcap ? 2 * s->gcap : 1024;
		size_t *ng = realloc(s->gend, cap * sizeof(*ng));
		if (!ng)
			return tj_errf(err, TJ_E_NOMEM, "fit: out of memory");
		s->gend = ng;
		int32_t *nt = realloc(s->truth, cap * sizeof(*nt));
		if (!nt)
			return tj_errf(err, TJ_E_NOMEM, "fit: out of memory");
		s->truth = nt;
		s->gcap = cap;
	}
	for (size_t j = 0; j < n; j++) {
		double *row = s->x + (s->nrows + j) * s->nfeat;
		for (size_t k = 0; k < s->nfeat; k++)
			row[k] = x[j * stride + s->col[k]];
		s->y[s->nrows + j] = (int)j == truth;
	}
	s->nrows += n;
	s->gend[s->ngroups] = s->nrows;
	s->truth[s->ngroups] = truth;
	s->ngroups++;
	return 0;
}

static size_t gbegin(const struct tj_fit_set *s, size_t g)
{
	return g ? s->gend[g - 1] : 0;
}

/* Mean and scale of every feature over all rows. */
static void standardise(const struct tj_fit_set *s, struct tj_model *m)
{
	size_t K = s->nfeat;
	for (size_t k = 0; k < K; k++) {
		double mean = 0, m2 = 0;
		for (size_t i = 0; i < s->nrows; i++) { /* Welford */
			double v = s->x[i * K + k], d = v - mean;
			mean += d / (double)(i + 1);
			m2 += d * (v - mean);
		}
		double sd = s->nrows > 1 ? sqrt(m2 / (double)(s->nrows - 1)) : 0;
		m->mean[k] = mean;
		m->scale[k] = sd > 1e-9 ? sd : 1.0;
	}
}

/* z = [1, standardised row i] */
static void zrow(const struct tj_fit_set *s, const struct tj_model *m,
		 size_t i, double *z)
{
	z[0] = 1;
	for (size_t k = 0; k < s->nfeat; k++)
		z[k + 1] = (s->x[i * s->nfeat + k] - m->mean[k]) / m->scale[k];
}

static double dotp(const double *a, const double *b, size_t n)
{
	double d = 0;
	for (size_t i = 0; i < n; i++)
		d += a[i] * b[i];
	return d;
}

/* log(1 + exp(s)) without overflow */
static double log1pexp(double s)
{
	return s > 0 ? s + log1p(exp(-s)) : log1p(exp(s));
}

/* ---- logistic regression by IRLS ---- */

static double logit_objective(const struct tj_fit_set *s,
			      const struct tj_model *m, const double *beta,
			      double lambda, double *z)
{
	size_t P = s->nfeat + 1;
	double J = 0;
	for (size_t i = 0; i < s->nrows; i++) {
		zrow(s, m, i, z);
		double e = dotp(beta, z, P);
		J += log1pexp(e) - (s->y[i] ? e : 0);
	}
	for (size_t k = 1; k < P; k++)
		J += 0.5 * lambda * beta[k] * beta[k];
	return J;
}

static int fit_logit(const struct tj_fit_set *s, const struct tj_fit_opts *o,
		     struct tj_model *m, struct tj_err *err)
{
	size_t P = s->nfeat + 1;
	gsl_matrix *H = gsl_matrix_alloc(P, P);
	gsl_vector *g = gsl_vector_alloc(P), *step = gsl_vector_alloc(P);
	double *beta = calloc(P, sizeof(double)), *z = malloc(P * sizeof(double));
	double *trial = malloc(P * sizeof(double));
	int rc = 0;
	if (!H || !g || !step || !beta || !z || !trial) {
		rc = tj_errf(err, TJ_E_NOMEM, "fit: out of memory");
		goto out;
	}
	double J = logit_objective(s, m, beta, o->lambda, z);
	for (int it = 0; it < o->max_iter; it++) {
		gsl_matrix_set_zero(H);
		gsl_vector_set_zero(g);
		for (size_t i = 0; i < s->nrows; i++) {
			zrow(s, m, i, z);
			double e = dotp(beta, z, P);
			double p = e >= 0 ? 1 / (1 + exp(-e)) : exp(e) / (1 + exp(e));
			double w = p * (1 - p), r = (double)s->y[i] - p;
			for (size_t a = 0; a < P; a++) {
				*gsl_vector_ptr(g, a) += r * z[a];
				double wa = w * z[a];
				double *row = gsl_matrix_ptr(H, a, 0);
				for (size_t b = 0; b <= a; b++)
					row[b] += wa * z[b];
			}
		}
		for (size_t a = 0; a < P; a++) {
			for (size_t b = 0; b < a; b++)
				gsl_matrix_set(H, b, a, gsl_matrix_get(H, a, b));
			if (a > 0) {
				*gsl_matrix_ptr(H, a, a) += o->lambda;
				*gsl_vector_ptr(g, a) -= o->lambda * beta[a];
			} else {
				*gsl_matrix_ptr(H, a, a) += 1e-9; /* keep it definite */
			}
		}
		if (gsl_linalg_cholesky_decomp1(H) != GSL_SUCCESS ||
		    gsl_linalg_cholesky_solve(H, g, step) != GSL_SUCCESS) {
			rc = tj_errf(err, TJ_E_ARG, "fit: IRLS: Hessian not positive definite");
			goto out;
		}
		/* Newton step, halved until the objective does not rise. */
		double t = 1, Jn = J, maxd = 0;
		for (int h = 0; h < 30; h++, t /= 2) {
			for (size_t a = 0; a < P; a++)
				trial[a] = beta[a] + t * gsl_vector_get(step, a);
			Jn = logit_objective(s, m, trial, o->lambda, z);
			if (Jn <= J + 1e-12 * fabs(J))
				break;
		}
		for (size_t a = 0; a < P; a++) {
			double d = fabs(trial[a] - beta[a]);
			if (d > maxd)
				maxd = d;
			beta[a] = trial[a];
		}
		if (o->verbose)
			fprintf(stderr, "fit logit: iteration %d objective %.6f step %.3g\n",
				it + 1, Jn, maxd);
		int done = fabs(J - Jn) <= 1e-10 * (fabs(J) + 1) || maxd < 1e-8;
		J = Jn;
		if (done)
			break;
	}
	m->bias = beta[0];
	for (size_t k = 0; k < s->nfeat; k++)
		m->coef[k] = beta[k + 1];
out:
	gsl_matrix_free(H);
	gsl_vector_free(g);
	gsl_vector_free(step);
	free(beta);
	free(z);
	free(trial);
	return rc;
}

/* ---- conditional logit by BFGS ---- */

struct clogit_ctx {
	const struct tj_fit_set *s;
	const struct tj_model *m;
	double lambda, norm; /* objective is divided by norm (calls used) */
	double *z, *ez;      /* scratch: rows of a group, exp of scores */
	size_t zcap;
};

static int grow_scratch(struct clogit_ctx *c, size_t n)
{
	if (n <= c->zcap)
		return 0;
	size_t P = c->s->nfeat + 1;
	double *z = realloc(c->z, n * P * sizeof(double));
	if (!z)
		return -1;
	c->z = z;
	double *ez = realloc(c->ez, n * sizeof(double));
	if (!ez)
		return -1;
	c->ez = ez;
	c->zcap = n;
	return 0;
}

static void clogit_fdf(const gsl_vector *theta, void *params, double *f,
		       gsl_vector *grad)
{
	struct clogit_ctx *c = params;
	const struct tj_fit_set *s = c->s;
	size_t P = s->nfeat + 1;
	const double *th = gsl_vector_const_ptr(theta, 0);
	double J = 0;
	if (grad)
		gsl_vector_set_zero(grad);
	for (size_t g = 0; g < s->ngroups; g++) {
		size_t b = gbegin(s, g), n = s->gend[g] - b;
		int t = s->truth[g];
		if (n == 0 || t == TJ_TRUTH_UNREACHABLE)
			continue;
		/* scratch was sized for the largest group before minimising */
		double mx = 0; /* the none option's score */
		for (size_t j = 0; j < n; j++) {
			zrow(s, c->m, b + j, c->z + j * P);
			c->ez[j] = dotp(th, c->z + j * P, P);
			if (c->ez[j] > mx)
				mx = c->ez[j];
		}
		double st = t >= 0 ? c->ez[t] : 0;
		double Z = exp(-mx);
		for (size_t j = 0; j < n; j++) {
			c->ez[j] = exp(c->ez[j] - mx);
			Z += c->ez[j];
		}
		J += mx + log(Z) - st; /* -log P(truth) */
		if (grad) {
			double *gp = gsl_vector_ptr(grad, 0);
			for (size_t j = 0; j < n; j++) {
				double pj = c->ez[j] / Z;
				const double *zj = c->z + j * P;
				for (size_t a = 0; a < P; a++)
					gp[a] += pj * zj[a];
			}
			if (t >= 0)
				for (size_t a = 0; a < P; a++)
					gp[a] -= c->z[t * P + a];
		}
	}
	for (size_t a = 1; a < P; a++) {
		J += 0.5 * c->lambda * th[a] * th[a];
		if (grad)
			*gsl_vector_ptr(grad, a) += c->lambda * th[a];
	}
	if (f)
		*f = J / c->norm;
	if (grad)
		gsl_vector_scale(grad, 1.0 / c->norm);
}

static double clogit_f(const gsl_vector *th, void *params)
{
	double f;
	clogit_fdf(th, params, &f, NULL);
	return f;
}

static void clogit_df(const gsl_vector *th, void *params, gsl_vector *g)
{
	clogit_fdf(th, params, NULL, g);
}

static int fit_clogit(const struct tj_fit_set *s, const struct tj_fit_opts *o,
		      struct tj_model *m, struct tj_err *err)
{
	size_t P = s->nfeat + 1, maxn = 1, used = 0;
	for (size_t g = 0; g < s->ngroups; g++) {
		size_t n = s->gend[g] - gbegin(s, g);
		if (n > maxn)
			maxn = n;
		if (n && s->truth[g] != TJ_TRUTH_UNREACHABLE)
			used++;
	}
	if (used == 0)
		return tj_errf(err, TJ_E_ARG,
			       "fit: no call with candidates and a reachable truth to learn from");
	struct clogit_ctx c = { s, m, o->lambda, (double)used, NULL, NULL, 0 };
	gsl_vector *th = gsl_vector_calloc(P);
	gsl_multimin_fdfminimizer *mm =
		gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, P);
	int rc = 0;
	if (!th || !mm || grow_scratch(&c, maxn) < 0) {
		rc = tj_errf(err, TJ_E_NOMEM, "fit: out of memory");
		goto out;
	}
	if (o->start && o->start->nfeat == s->nfeat) {
		/* the same scores in this set's units: raw coefficient
		 * coef/scale, and the bias absorbing the means */
		const struct tj_model *a = o->start;
		double b = a->bias;
		for (size_t k = 0; k < s->nfeat; k++) {
			double raw = a->coef[k] / a->scale[k];
			double ck = raw * m->scale[k];
			b += ck * m->mean[k] / m->scale[k] - raw * a->mean[k];
			gsl_vector_set(th, k + 1, ck);
		}
		gsl_vector_set(th, 0, b);
	}
	gsl_multimin_function_fdf fn = { clogit_f, clogit_df, clogit_fdf, P, &c };
	gsl_multimin_fdfminimizer_set(mm, &fn, th, 0.1, 0.1);
	for (int it = 0; it < o->max_iter; it++) {
		int st = gsl_multimin_fdfminimizer_iterate(mm);
		if (o->verbose)
			fprintf(stderr, "fit clogit: iteration %d objective %.8f\n",
				it + 1, mm->f);
		if (st == GSL_ENOPROG)
			break; /* at the minimum to machine precision */
		if (st != GSL_SUCCESS) {
			rc = tj_errf(err, TJ_E_ARG, "fit: BFGS failed: %s", gsl_strerror(st));
			goto out;
		}
		if (gsl_multimin_test_gradient(mm->gradient, 1e-5) == GSL_SUCCESS)
			break;
	}
	const gsl_vector *x = gsl_multimin_fdfminimizer_x(mm);
	m->bias = gsl_vector_get(x, 0);
	for (size_t k = 0; k < s->nfeat; k++)
		m->coef[k] = gsl_vector_get(x, k + 1);
out:
	gsl_multimin_fdfminimizer_free(mm);
	gsl_vector_free(th);
	free(c.z);
	free(c.ez);
	return rc;
}

/* ---- threshold ---- */

struct outcome {
	double p;          /* probability of the best candidate (-1: no candidate) */
	uint8_t pick_ok;   /* right if we take the best candidate */
	uint8_t none_ok;   /* right if we say none */
	size_t g;
};

static int outcome_cmp(const void *a, const void *b)
{
	const struct outcome *x = a, *y = b;
	if (x->p != y->p)
		return x->p < y->p ? -1 : 1;
	return x->g < y->g ? -1 : x->g > y->g;
}

/* Best candidate's probability under m, as tj_model_decide sees it. */
static double best_prob(const struct tj_model *m, const double *x, size_t n,
			size_t stride, size_t *best)
{
	struct tj_model t = *m;
	t.threshold = 0;
	double p;
	int b = tj_model_decide(&t, x, n, stride, &p);
	*best = b < 0 ? 0 : (size_t)b;
	return p;
}

static int fit_threshold(const struct tj_fit_set *s, struct tj_model *m,
			 struct tj_err *err)
{
	struct outcome *o = malloc((s->ngroups ? s->ngroups : 1) * sizeof(*o));
	if (!o)
		return tj_errf(err, TJ_E_NOMEM, "fit: out of memory");
	size_t K = s->nfeat, n0 = 0, base = 0;
	for (size_t g = 0; g < s->ngroups; g++) {
		size_t b = gbegin(s, g), n = s->gend[g] - b;
		if (n == 0) { /* always none, whatever the threshold */
			base += s->truth[g] == TJ_TRUTH_NONE;
			continue;
		}
		size_t best;
		o[n0].p = best_prob(m, s->x + b * K, n, K, &best);
		o[n0].pick_ok = s->truth[g] >= 0 && (size_t)s->truth[g] == best;
		o[n0].none_ok = s->truth[g] == TJ_TRUTH_NONE;
		o[n0].g = g;
		n0++;
	}
	qsort(o, n0, sizeof(*o), outcome_cmp);
	/* threshold below o[i] (i = 0..n0): the first i say none */
	size_t right = base;
	for (size_t i = 0; i < n0; i++)
		right += o[i].pick_ok;
	size_t best_right = right, best_i = 0;
	for (size_t i = 0; i < n0; i++) {
		right += (size_t)o[i].none_ok - (size_t)o[i].pick_ok;
		/* a cut only between distinct probabilities */
		if (i + 1 < n0 && o[i + 1].p == o[i].p)
			continue;
		if (right > best_right) {
			best_right = right;
			best_i = i + 1;
		}
	}
	if (best_i == 0)
		m->threshold = 0;
	else if (best_i == n0)
		m->threshold = nextafter(o[n0 - 1].p, 2.0) > 1 ? 1 : nextafter(o[n0 - 1].p, 2.0);
	else
		m->threshold = 0.5 * (o[best_i - 1].p + o[best_i].p);
	m->train_accuracy = s->ngroups ? (double)best_right / (double)s->ngroups : 0;
	free(o);
	return 0;
}

int tj_fit(const struct tj_fit_set *s, const struct tj_fit_opts *o,
	   struct tj_model *m, struct tj_err *err)
{
	struct tj_fit_opts d = { TJ_FIT_CLOGIT, 1.0, 200, 0, NULL };
	if (!o)
		o = &d;
	if (s->nfeat == 0 || s->nfeat > TJ_MODEL_MAXFEAT)
		return tj_errf(err, TJ_E_ARG, "fit: %zu features (1..%d)", s->nfeat,
			       TJ_MODEL_MAXFEAT);
	if (s->nrows == 0)
		return tj_errf(err, TJ_E_ARG, "fit: no candidate pairs to learn from");
	if (o->lambda < 0)
		return tj_errf(err, TJ_E_ARG, "fit: lambda %g is negative", o->lambda);
	struct tj_fit_opts oo = *o;
	if (oo.max_iter <= 0)
		oo.max_iter = 200;
	/* GSL's default error handler aborts the process; its errors are
	 * return codes here.  The handler is process-wide in GSL, so it is
	 * restored on the way out (fits are not run concurrently). */
	gsl_error_handler_t *old = gsl_set_error_handler_off();
	m->nfeat = s->nfeat;
	m->fit = oo.fit;
	m->lambda = oo.lambda;
	standardise(s, m);
	int rc = oo.fit == TJ_FIT_LOGIT ? fit_logit(s, &oo, m, err)
				       : fit_clogit(s, &oo, m, err);
	gsl_set_error_handler(old);
	if (rc < 0)
		return rc;
	tj_model_prepare(m);
	m->train_pairs = s->nrows;
	m->train_calls = s->ngroups;
	return fit_threshold(s, m, err);
}

double tj_fit_accuracy(const struct tj_fit_set *s, const struct tj_model *m)
{
	size_t right = 0, K = s->nfeat;
	for (size_t g = 0; g < s->ngroups; g++) {
		size_t b = gbegin(s, g), n = s->gend[g] - b;
		double p;
		int d = tj_model_decide(m, s->x + b * K, n, K, &p);
		right += d >= 0 ? s->truth[g] == d : s->truth[g] == TJ_TRUTH_NONE;
	}
	return s->ngroups ? (double)right / (double)s->ngroups : 0;
}
