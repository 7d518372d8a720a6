/* The `classifier` correlator: for each call, score its candidate parents
 * (models/features.h) with a model fitted by `tracejoin train`
 * (models/model.h) and take the best one, or none below the model's
 * threshold.  Decisions are made as each call arrives, so edges stream out
 * and memory stays bounded by in-flight requests. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "../models/features.h"
#include "../models/call_units.h"
#include "../models/model.h"
#include "../models/model_path.h"
#include "../models/trainset.h"
#include "../lib/u64map.h"
#include "order_align.h"
#include "classifier.h"

/* order-align: one queue (process, destination) of calls waiting for the
 * ordered joint decision (order_align.h). */
struct align_queue {
	struct tj_align_moves moves;
	struct tj_align_state state;
	size_t n;
	struct tj_align_call calls[2 * TJ_ALIGN_LAG];
	uint64_t ncalls, changed; /* for explain: calls, of them not the free choice */
	int free_pick[2 * TJ_ALIGN_LAG];
};

struct classifier {
	struct tj_model model;
	struct tj_feat *feat;
	struct tj_feat_call call; /* large: kept here, not on the stack */
	double threshold;         /* from params; negative: the model's */
	int explain;              /* print the model at the end */
	char source[PATH_MAX];    /* where the model came from */
	char missing[TJ_ERRMSG_MAX]; /* why there is no model yet */
	int align;                /* order-align: decide along queues */
	double sc[TJ_FEAT_MAX_CAND]; /* the call's candidates' scores */
	struct tj_u64map queue_ix; /* hash(node, pid, dest) -> index in queues */
	struct align_queue **queues;
	size_t nqueues;
	struct tj_feat_memo *memo; /* tj_classifier_share_features, or NULL */
};

static void cl_close(void *st);

static const char *const known_params[] = { "model", "threshold", "explain", NULL };

/* The feature state follows the model's candidate rules. */
static int start_features(struct classifier *c, struct tj_err *err)
{
	struct tj_feat_opts fo = { c->model.max_cand, c->model.window_ns };
	tj_feat_free(c->feat);
	c->feat = NULL;
	int rc = tj_feat_new(&c->feat, &fo, err);
	if (rc == 0 && c->memo)
		tj_feat_share(c->feat, c->memo);
	return rc;
}

void tj_classifier_share_features(void *st, struct tj_feat_memo *memo)
{
	struct classifier *c = st;
	c->memo = memo;
	if (c->feat)
		tj_feat_share(c->feat, memo);
}

/* A classifier instance whose model, without model=FILE, is models/NAME. */
static int open_with(void **st, const struct tj_params *p, const char *algo,
		     const char *model_name, struct tj_err *err)
{
	int rc = tj_params_check(p, known_params, algo, err);
	if (rc < 0)
		return rc;
	struct classifier *c = calloc(1, sizeof(*c));
	if (!c)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", algo);
	tj_model_init(&c->model);
	tj_u64map_init(&c->queue_ix);
	c->align = strcmp(algo, "order-align") == 0;
	double thr;
	int has_thr = tj_param_str(p, "threshold", NULL) != NULL;
	rc = tj_param_double(p, "threshold", -1, &thr, err);
	if (rc == 0 && has_thr && !(thr >= 0 && thr <= 1))
		rc = tj_errf(err, TJ_E_ARG, "%s: param threshold=%g not in [0,1]", algo, thr);
	c->threshold = has_thr ? thr : -1;
	int ex = 0;
	if (rc == 0)
		rc = tj_param_flag(p, "explain", 0, algo, &ex, err);
	c->explain = rc == 0 && ex;
	char found[PATH_MAX];
	const char *path = tj_param_str(p, "model", NULL);
	if (rc == 0 && !path) {
		if (tj_model_find(model_name, found, sizeof(found)) == 0)
			path = found;
		else /* fine if train() comes; else message() says so */
			snprintf(c->missing, sizeof(c->missing),
				 "%s: no default model found (looked for %s "
				 "beside the binary and in %s); give --param model=FILE",
				 algo, model_name, tj_models_dir());
	}
	if (rc == 0 && path) {
		snprintf(c->source, sizeof(c->source), "%s", path);
		rc = tj_model_read(&c->model, path, tj_feat_names, TJ_FEAT_N, err);
		if (rc == 0 && has_thr)
			c->model.threshold = thr;
		if (rc == 0)
			rc = start_features(c, err);
	}
	if (rc < 0) {
		cl_close(c);
		return rc;
	}
	*st = c;
	return 0;
}

static int cl_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	return open_with(st, p, "classifier", TJ_MODEL_DEFAULT_NAME, err);
}

/* order-logit: the same conditional logit with models/order.model, fitted
 * with the order and continuation features (FIFO head per destination,
 * the last-read reply's parent, their same-socket interactions) on the
 * built-in suite plus the training-only specs, self-fed (models/README.md,
 * correlate/ASYNC.md). */
static int ol_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	return open_with(st, p, "order-logit", "order.model", err);
}

/* order-align: order-logit's model and features, decided jointly along
 * each (process, destination) queue (order_align.h). */
static int oa_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	return open_with(st, p, "order-align", "order.model", err);
}

/* `correlate --train DIR`: fit a conditional logit on that dataset (with
 * the loaded model's candidate rules, or the defaults) and use it. */
static int cl_train(void *st, const struct tj_dataset *d, struct tj_err *err)
{
	struct classifier *c = st;
	struct tj_feat_opts fo = {
		c->feat ? c->model.max_cand : TJ_FEAT_DEFAULT_MAX_CAND,
		c->feat ? c->model.window_ns : TJ_FEAT_DEFAULT_WINDOW_NS,
	};
	struct tj_fit_set set;
	struct tj_walk_stats ws = { 0 };
	struct tj_model m;
	tj_fit_set_init(&set, TJ_FEAT_N);
	tj_model_init(&m);
	int rc = tj_trainset_add(&set, d->dir, &fo, &ws, err);
	if (rc == 0) {
		struct tj_fit_opts o = { TJ_FIT_CLOGIT, 1.0, 200, 0, NULL };
		m.nfeat = TJ_FEAT_N;
		for (size_t k = 0; k < TJ_FEAT_N; k++)
			snprintf(m.names[k], TJ_MODEL_NAMELEN, "%s", tj_feat_names[k]);
		m.max_cand = fo.max_cand;
		m.window_ns = fo.window_ns;
		rc = tj_fit(&set, &o, &m, err);
	}
	tj_fit_set_free(&set);
	if (rc < 0) {
		tj_model_free(&m);
		return rc;
	}
	tj_model_free(&c->model);
	c->model = m;
	snprintf(c->source, sizeof(c->source), "fitted on %s", d->dir);
	if (c->threshold >= 0)
		c->model.threshold = c->threshold;
	return start_features(c, err);
}

static struct align_queue *queue_get(struct classifier *c, const struct tj_message *m)
{
	uint64_t key = tj_call_queue(m, c->call.dest); /* the same hash as call_units' */
	int added;
	uint64_t *ix = tj_u64map_upsert(&c->queue_ix, key, &added);
	if (!ix)
		return NULL;
	if (added) {
		struct align_queue **q = realloc(c->queues, (c->nqueues + 1) * sizeof(*q));
		struct align_queue *nq = calloc(1, sizeof(*nq));
		if (!q || !nq) {
			free(nq);
			if (q)
				c->queues = q;
			tj_u64map_del(&c->queue_ix, key);
			return NULL;
		}
		c->queues = q;
		c->queues[c->nqueues] = nq;
		*ix = c->nqueues++;
	}
	return c->queues[*ix];
}

/* Decide the queue's buffered calls jointly and emit the first upto. */
static int queue_flush(struct classifier *c, struct align_queue *q, size_t upto,
		       struct tj_edge_sink *out, struct tj_err *err)
{
	if (tj_align_path(&q->moves, &q->state, q->calls, q->n) < 0)
		return tj_errf(err, TJ_E_NOMEM, "order-align: out of memory");
	for (size_t i = 0; i < upto; i++) {
		const struct tj_align_call *a = &q->calls[i];
		struct tj_edge e = { .child = a->call, .has_parent = 1,
				     .parent = a->cand[a->pick], .score = exp(a->lp[a->pick]) };
		q->ncalls++;
		q->changed += a->pick != q->free_pick[i];
		if (out->emit(out, &e) < 0)
			return tj_errf(err, TJ_E_IO, "order-align: writing an edge failed");
	}
	tj_align_commit(&q->moves, &q->state, q->calls, upto);
	q->n -= upto;
	memmove(q->calls, q->calls + upto, q->n * sizeof(q->calls[0]));
	memmove(q->free_pick, q->free_pick + upto, q->n * sizeof(q->free_pick[0]));
	(void)c;
	return 0;
}

/* A call with a parent by the free choice joins its queue with its best
 * candidates and their log-probabilities (softmax over candidates and
 * "none", as tj_model_decide). */
static int align_call(struct classifier *c, const struct tj_message *m, double lz,
		      struct tj_edge_sink *out, struct tj_err *err)
{
	struct align_queue *q = queue_get(c, m);
	if (!q)
		return tj_errf(err, TJ_E_NOMEM, "order-align: out of memory");
	struct tj_align_call *a = &q->calls[q->n];
	const struct tj_feat_call *fc = &c->call;
	a->call = fc->call;
	a->n = 0;
	for (size_t j = 0; j < fc->n; j++) { /* insertion into the top few */
		double sc = c->sc[j];
		double lp = c->model.fit == TJ_FIT_LOGIT ? -log1p(exp(-sc)) : sc - lz;
		size_t at = a->n < TJ_ALIGN_TOP ? a->n++ : TJ_ALIGN_TOP;
		while (at > 0 && a->lp[at - 1] < lp) {
			if (at < TJ_ALIGN_TOP) {
				a->lp[at] = a->lp[at - 1];
				a->cand[at] = a->cand[at - 1];
				a->ts[at] = a->ts[at - 1];
			}
			at--;
		}
		if (at < TJ_ALIGN_TOP) {
			a->lp[at] = lp;
			a->cand[at] = fc->cand[j];
			a->ts[at] = fc->cand_ts[j];
		}
	}
	/* The free choice is the best candidate: index 0 after the sort. */
	q->free_pick[q->n] = 0;
	a->pick = 0;
	q->n++;
	if (q->n == 2 * TJ_ALIGN_LAG)
		return queue_flush(c, q, TJ_ALIGN_LAG, out, err);
	return 0;
}

static int cl_message(void *st, const struct tj_message *m,
		      struct tj_edge_sink *out, struct tj_err *err)
{
	struct classifier *c = st;
	if (!c->feat)
		return tj_errf(err, TJ_E_ARG, "%s", c->missing);
	int rc = tj_feat_message(c->feat, m, &c->call, err);
	if (rc <= 0)
		return rc;
	double prob, lz = 0;
	int pick;
	if (c->align) { /* scored once: the decision and the path's log-probabilities */
		for (size_t j = 0; j < c->call.n; j++)
			c->sc[j] = tj_model_score(&c->model, c->call.x[j]);
		pick = tj_model_decide_scores(&c->model, c->sc, c->call.n, &prob, &lz);
	} else {
		pick = tj_model_decide(&c->model, &c->call.x[0][0], c->call.n,
				       TJ_FEAT_N, &prob);
	}
	tj_feat_assign(c->feat, &c->call, pick);
	if (c->align && pick >= 0)
		return align_call(c, m, lz, out, err);
	struct tj_edge e = { .child = c->call.call, .has_parent = pick >= 0,
			     .score = prob };
	if (pick >= 0)
		e.parent = c->call.cand[pick];
	rc = out->emit(out, &e);
	if (rc < 0)
		return tj_errf(err, TJ_E_IO, "classifier: writing an edge failed");
	return 0;
}

/* explain=1: the model in use, strongest weights first, on stderr. */
static void explain(const struct classifier *c)
{
	const struct tj_model *m = &c->model;
	size_t order[TJ_MODEL_MAXFEAT], n = 0;
	/* the features it was fitted on: those it does not use weigh nothing */
	for (size_t k = 0; k < m->nfeat; k++)
		if (!m->unused[k])
			order[n++] = k;
	fprintf(stderr, "classifier: model %s: %s, %zu features, threshold %.4f, "
		"trained on %llu calls (training accuracy %.4f)\n",
		c->source, m->fit == TJ_FIT_LOGIT ? "logit" : "clogit", n,
		m->threshold, (unsigned long long)m->train_calls, m->train_accuracy);
	fprintf(stderr, "classifier: weights on standardised features, strongest first "
		"(positive: more likely the parent):\n");
	for (size_t i = 1; i < n; i++) /* insertion sort: few features */
		for (size_t j = i; j > 0 && fabs(m->coef[order[j]]) > fabs(m->coef[order[j - 1]]); j--) {
			size_t t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  %-24s %+9.4f\n", m->names[order[i]], m->coef[order[i]]);
	fprintf(stderr, "  %-24s %+9.4f\n", "(bias)", m->bias);
	if (!c->align)
		return;
	/* Which signal decided: the order moves each queue fitted, and how
	 * many of its calls the path moved away from the free choice. */
	fprintf(stderr, "order-align: %zu queues (process, destination); per queue: calls, "
		"changed from the free choice, P(stay|run 1) P(advance|run 1) P(back|run 1)\n",
		c->nqueues);
	for (size_t i = 0; i < c->nqueues; i++) {
		const struct align_queue *q = c->queues[i];
		fprintf(stderr, "  queue %zu: %llu calls, %llu changed, %.3f %.3f %.3f\n", i,
			(unsigned long long)q->ncalls, (unsigned long long)q->changed,
			exp(tj_align_logp(&q->moves, 1, TJ_ALIGN_STAY)),
			exp(tj_align_logp(&q->moves, 1, TJ_ALIGN_ADVANCE)),
			exp(tj_align_logp(&q->moves, 1, TJ_ALIGN_BACK)));
	}
}

static int cl_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	struct classifier *c = st;
	(void)out;
	(void)err;
	for (size_t i = 0; i < c->nqueues; i++) {
		int rc = queue_flush(c, c->queues[i], c->queues[i]->n, out, err);
		if (rc < 0)
			return rc;
	}
	if (c->explain && c->feat)
		explain(c);
	return 0;
}

static void cl_close(void *st)
{
	struct classifier *c = st;
	if (!c)
		return;
	tj_feat_free(c->feat);
	tj_model_free(&c->model);
	for (size_t i = 0; i < c->nqueues; i++)
		free(c->queues[i]);
	free(c->queues);
	tj_u64map_free(&c->queue_ix);
	free(c);
}

const struct tj_correlator tj_correlator_classifier = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "classifier",
	.description = "learned (candidate parent, call) scorer fitted with GSL "
		       "by 'tracejoin train'",
	.params_help = "model=models/default.model  model file from 'tracejoin train'\n"
		       "threshold=(model's)  probability below which a call gets no parent\n"
		       "explain=0  1: print the model's weights on stderr at the end\n",
	.open = cl_open,
	.train = cl_train,
	.message = cl_message,
	.finish = cl_finish,
	.close = cl_close,
};

const struct tj_correlator tj_correlator_order_logit = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "order-logit",
	.description = "conditional logit with FIFO order and last-reply continuation "
		       "signals, self-fed training (models/order.model)",
	.params_help = "model=models/order.model  model file from 'tracejoin train'\n"
		       "threshold=(model's)  probability below which a call gets no parent\n"
		       "explain=0  1: print the model's weights on stderr at the end\n",
	.open = ol_open,
	.train = cl_train,
	.message = cl_message,
	.finish = cl_finish,
	.close = cl_close,
};

const struct tj_correlator tj_correlator_order_align = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "order-align",
	.description = "order-logit's scores decided jointly along each (process, "
		       "destination) queue: Viterbi alignment with fitted order moves",
	.params_help = "model=models/order.model  model file from 'tracejoin train'\n"
		       "threshold=(model's)  probability below which a call gets no parent\n"
		       "explain=0  1: print the model and each queue's fitted moves on stderr\n",
	.open = oa_open,
	.train = cl_train,
	.message = cl_message,
	.finish = cl_finish,
	.close = cl_close,
};
