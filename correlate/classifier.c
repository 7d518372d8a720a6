/* The `classifier` correlator: for each call, score its candidate parents
 * (models/features.h) with a model fitted by `tracejoin train`
 * (models/model.h) and take the best one, or none below the model's
 * threshold.  Decisions are made as each call arrives, so edges stream out
 * and memory stays bounded by in-flight requests. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "correlator.h"
#include "../models/features.h"
#include "../models/model.h"
#include "../models/model_path.h"

struct classifier {
	struct tj_model model;
	struct tj_feat *feat;
	struct tj_feat_call call; /* large: kept here, not on the stack */
};

static const char *const known_params[] = { "model", "threshold", NULL };

static int cl_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	int rc = tj_params_check(p, known_params, "classifier", err);
	if (rc < 0)
		return rc;
	struct classifier *c = calloc(1, sizeof(*c));
	if (!c)
		return tj_errf(err, TJ_E_NOMEM, "classifier: out of memory");
	char found[PATH_MAX];
	const char *path = tj_param_str(p, "model", NULL);
	if (!path) {
		if (tj_model_default_path(found, sizeof(found)) < 0) {
			free(c);
			return tj_errf(err, TJ_E_IO,
				       "classifier: no default model found (looked for %s "
				       "beside the binary and in %s); give --param model=FILE",
				       TJ_MODEL_DEFAULT_NAME, tj_models_dir());
		}
		path = found;
	}
	rc = tj_model_read(&c->model, path, tj_feat_names, TJ_FEAT_N, err);
	if (rc < 0) {
		free(c);
		return rc;
	}
	double thr;
	rc = tj_param_double(p, "threshold", c->model.threshold, &thr, err);
	if (rc == 0 && (thr < 0 || thr > 1))
		rc = tj_errf(err, TJ_E_ARG, "classifier: param threshold=%g not in [0,1]", thr);
	if (rc == 0) {
		c->model.threshold = thr;
		struct tj_feat_opts fo = { c->model.max_cand, c->model.window_ns };
		rc = tj_feat_new(&c->feat, &fo, err);
	}
	if (rc < 0) {
		tj_model_free(&c->model);
		free(c);
		return rc;
	}
	*st = c;
	return 0;
}

static int cl_message(void *st, const struct tj_message *m,
		      struct tj_edge_sink *out, struct tj_err *err)
{
	struct classifier *c = st;
	int rc = tj_feat_message(c->feat, m, &c->call, err);
	if (rc <= 0)
		return rc;
	double prob;
	int pick = tj_model_decide(&c->model, &c->call.x[0][0], c->call.n,
				   TJ_FEAT_N, &prob);
	tj_feat_assign(c->feat, &c->call, pick);
	struct tj_edge e = { .child = c->call.call, .has_parent = pick >= 0,
			     .score = prob };
	if (pick >= 0)
		e.parent = c->call.cand[pick];
	rc = out->emit(out, &e);
	if (rc < 0)
		return tj_errf(err, TJ_E_IO, "classifier: writing an edge failed");
	return 0;
}

static int cl_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	(void)st;
	(void)out;
	(void)err;
	return 0; /* every call was decided when it arrived */
}

static void cl_close(void *st)
{
	struct classifier *c = st;
	if (!c)
		return;
	tj_feat_free(c->feat);
	tj_model_free(&c->model);
	free(c);
}

const struct tj_correlator tj_correlator_classifier = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "classifier",
	.description = "learned (candidate parent, call) scorer fitted with GSL "
		       "by 'tracejoin train'",
	.params_help = "model=models/default.model  model file from 'tracejoin train'\n"
		       "threshold=(model's)  probability below which a call gets no parent\n",
	.open = cl_open,
	.train = NULL,
	.message = cl_message,
	.finish = cl_finish,
	.close = cl_close,
};
