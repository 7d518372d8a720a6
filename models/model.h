/* A trained classifier model and its versioned text file.
 *
 * Scoring: a candidate's linear score is s = b + sum_k w_k (x_k - mean_k)
 * / scale_k.  Both fits share it; they differ in what s means:
 *   logit   P(candidate is the parent) = 1 / (1 + exp(-s))
 *   clogit  P(candidate j) = exp(s_j) / (1 + sum_i exp(s_i)) over the
 *           call's candidates plus a "no parent" option of score 0.
 * A call takes its highest-scoring candidate if that probability is at
 * least the threshold, else no parent.
 *
 * The file (models/README.md shows one):
 *     tracejoin-model 1
 *     algo classifier
 *     fit clogit
 *     ... key value lines ...
 *     feature NAME MEAN SCALE COEF      (one per feature, in order)
 *     dataset NAME FILE SHA256          (one per hashed file)
 *     end
 * Every line is checked; an unknown version, a feature list that is not
 * this build's (tj_feat_names) and a malformed line are refused with the
 * file and line named.
 *
 * Which features: the feature lines are the first N of the build's list
 * (features are only ever appended: a model made before newer ones reads
 * with them weighing nothing), or, with the line `selection 1`, any of
 * them in the build's order (a model fitted on a chosen set: `train
 * --features NAME,...`).  Once read against the build's list, a model
 * holds every feature of it; those not in the file are marked unused,
 * weigh nothing and are not written back. */
#ifndef TJ_MODEL_H
#define TJ_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../lib/error.h"
#include "../lib/outfile.h"

#define TJ_MODEL_VERSION 1
#define TJ_MODEL_MAXFEAT 64
#define TJ_MODEL_NAMELEN 48

enum tj_fit_kind { TJ_FIT_LOGIT = 1, TJ_FIT_CLOGIT = 2 };

struct tj_model_file_hash {
	char *dataset; /* folder name as given */
	char *file;    /* file name inside it */
	char sha256[65];
};

struct tj_model {
	int fit;          /* enum tj_fit_kind */
	double lambda;    /* L2 penalty it was fitted with */
	double threshold; /* probability below which a call gets no parent */
	unsigned max_cand;
	uint64_t window_ns;
	size_t nfeat;
	char names[TJ_MODEL_MAXFEAT][TJ_MODEL_NAMELEN];
	double mean[TJ_MODEL_MAXFEAT], scale[TJ_MODEL_MAXFEAT];
	double coef[TJ_MODEL_MAXFEAT]; /* on standardised features */
	/* not fitted: weighs nothing (mean 0, scale 1, coef 0), not written */
	uint8_t unused[TJ_MODEL_MAXFEAT];
	double bias;
	/* training summary, informative only */
	uint64_t train_calls, train_pairs;
	double train_accuracy;
	/* logs that were damaged when it was fitted (train --allow-damaged):
	 * fitted on part of the labels.  Written only when not 0. */
	uint64_t train_damaged_logs;
	struct tj_model_file_hash *hashes;
	size_t nhashes;
	/* derived by tj_model_prepare: weights on raw features */
	double w_raw[TJ_MODEL_MAXFEAT], b_raw;
};

void tj_model_init(struct tj_model *m);
void tj_model_free(struct tj_model *m);
/* Fold the normalisation into w_raw/b_raw (after fitting or reading). */
void tj_model_prepare(struct tj_model *m);
/* Linear score of one candidate's raw feature vector. */
static inline double tj_model_score(const struct tj_model *m, const double *x)
{
	double s = m->b_raw;
	for (size_t k = 0; k < m->nfeat; k++)
		s += m->w_raw[k] * x[k];
	return s;
}
/* The same decision from the candidates' scores (tj_model_score), n <=
 * TJ_MODEL_DECIDE_MAX; *lz is the log of clogit's softmax denominator
 * (candidates and "none"), so candidate j's log-probability is sc[j] - *lz. */
#define TJ_MODEL_DECIDE_MAX 256
int tj_model_decide_scores(const struct tj_model *m, const double *sc, size_t n,
			   double *prob, double *lz);
/* Pick among n candidates (rows of stride nfeat).  Returns the index of
 * the best, or -1 for none (n == 0 or below threshold); *prob gets the
 * chosen option's probability.  n <= TJ_MODEL_DECIDE_MAX
 * (TJ_FEAT_MAX_CAND). */
int tj_model_decide(const struct tj_model *m, const double *x, size_t n,
		    size_t stride, double *prob);

/* Spread a model of nfeat features, feature k being column col[k] of the
 * build's list all[0..nall) (increasing), over that whole list: the
 * others weigh nothing and are marked unused.  -1 if col is not
 * increasing or not below nall <= TJ_MODEL_MAXFEAT. */
int tj_model_spread(struct tj_model *m, const size_t *col, const char *const *all,
		    size_t nall);

int tj_model_add_hash(struct tj_model *m, const char *dataset,
		      const char *file, const char sha256[65]);

/* Print to f (name for messages).  Numbers are printed with %.17g, so a
 * model reads back bit-identical and a deterministic fit gives a
 * byte-identical file.  Write errors show at the stream's flush. */
int tj_model_print(const struct tj_model *m, FILE *f, const char *name,
		   struct tj_err *err);
/* Print to path ("-" = stdout) through lib/outfile.h (flags TJ_OUT_*). */
int tj_model_write(const struct tj_model *m, const char *path,
		   unsigned flags, struct tj_err *err);
/* Read and check a model file.  If expect_names is not NULL (n names),
 * the file's feature list must equal it. */
int tj_model_read(struct tj_model *m, const char *path,
		  const char *const *expect_names, size_t n,
		  struct tj_err *err);
int tj_model_parse(struct tj_model *m, const char *name, const char *text,
		   size_t len, const char *const *expect_names, size_t n,
		   struct tj_err *err);

#endif
