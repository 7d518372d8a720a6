/* Model scoring and decisions (model.h); the file form is model_file.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

void tj_model_init(struct tj_model *m)
{
	memset(m, 0, sizeof(*m));
	m->fit = TJ_FIT_CLOGIT;
}

void tj_model_free(struct tj_model *m)
{
	for (size_t i = 0; i < m->nhashes; i++) {
		free(m->hashes[i].dataset);
		free(m->hashes[i].file);
	}
	free(m->hashes);
	m->hashes = NULL;
	m->nhashes = 0;
}

void tj_model_prepare(struct tj_model *m)
{
	m->b_raw = m->bias;
	for (size_t k = 0; k < m->nfeat; k++) {
		m->w_raw[k] = m->coef[k] / m->scale[k];
		m->b_raw -= m->w_raw[k] * m->mean[k];
	}
}

int tj_model_spread(struct tj_model *m, const size_t *col, const char *const *all,
		    size_t nall)
{
	if (nall > TJ_MODEL_MAXFEAT || m->nfeat > nall)
		return -1;
	for (size_t k = 0; k < m->nfeat; k++)
		if (col[k] >= nall || (k && col[k] <= col[k - 1]))
			return -1;
	/* from the back: col[k] >= k, so nothing is overwritten unread */
	for (size_t k = m->nfeat; k-- > 0;) {
		size_t c = col[k];
		if (c == k)
			continue;
		memmove(m->names[c], m->names[k], TJ_MODEL_NAMELEN);
		m->mean[c] = m->mean[k];
		m->scale[c] = m->scale[k];
		m->coef[c] = m->coef[k];
		m->unused[c] = m->unused[k];
		m->unused[k] = 1; /* until filled below or by a lower k */
	}
	size_t k = 0;
	for (size_t c = 0; c < nall; c++) {
		if (k < m->nfeat && col[k] == c) {
			k++;
			continue;
		}
		snprintf(m->names[c], TJ_MODEL_NAMELEN, "%s", all[c]);
		m->mean[c] = 0;
		m->scale[c] = 1;
		m->coef[c] = 0;
		m->unused[c] = 1;
	}
	m->nfeat = nall;
	tj_model_prepare(m);
	return 0;
}

static double sigmoid(double s)
{
	return s >= 0 ? 1.0 / (1.0 + exp(-s)) : exp(s) / (1.0 + exp(s));
}

int tj_model_decide(const struct tj_model *m, const double *x, size_t n,
		    size_t stride, double *prob)
{
	double sc[TJ_MODEL_DECIDE_MAX];
	if (n > TJ_MODEL_DECIDE_MAX)
		n = TJ_MODEL_DECIDE_MAX;
	for (size_t j = 0; j < n; j++)
		sc[j] = tj_model_score(m, x + j * stride);
	double lz;
	return tj_model_decide_scores(m, sc, n, prob, &lz);
}

int tj_model_decide_scores(const struct tj_model *m, const double *sc, size_t n,
			   double *prob, double *lz)
{
	*lz = 0; /* only "none": log(exp(0)) */
	if (n == 0) {
		*prob = 1.0; /* nothing could be the parent */
		return -1;
	}
	/* One pass: the best score, and for clogit the softmax denominator
	 * over candidates plus "none" (score 0), kept relative to the running
	 * maximum mx so exp() never overflows. */
	size_t best = 0;
	double sbest = -INFINITY, mx = 0, z = 1;
	for (size_t j = 0; j < n; j++) {
		double s = sc[j];
		if (s > sbest) {
			sbest = s;
			best = j;
		}
		if (s > mx) {
			z = z * exp(mx - s) + 1;
			mx = s;
		} else {
			z += exp(s - mx);
		}
	}
	*lz = mx + log(z);
	double p = m->fit == TJ_FIT_LOGIT ? sigmoid(sbest)
					  : exp(sbest - mx) / z;
	if (p >= m->threshold) {
		*prob = p;
		return (int)best;
	}
	*prob = 1.0 - p;
	return -1;
}

int tj_model_add_hash(struct tj_model *m, const char *dataset,
		      const char *file, const char sha256[65])
{
	struct tj_model_file_hash *h = realloc(m->hashes,
					       (m->nhashes + 1) * sizeof(*h));
	if (!h)
		return -1;
	m->hashes = h;
	h = &h[m->nhashes];
	h->dataset = strdup(dataset);
	h->file = strdup(file);
	if (!h->dataset || !h->file) {
		free(h->dataset);
		free(h->file);
		return -1;
	}
	memcpy(h->sha256, sha256, 65);
	h->sha256[64] = 0;
	m->nhashes++;
	return 0;
}
