/* `tracejoin train`: fit the classifier's model on labeled datasets,
 * optionally judge it on held-out ones, and write the model file. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "trainset.h"
#include "../cli/commands.h"
#include "../lib/error.h"
#include "../lib/outfile.h"

void cmd_train_help(void)
{
	printf("usage: tracejoin train --algo classifier [OPTIONS] DATASET... -o FILE\n\n"
	       "Fit the classifier correlator's model on labeled datasets (folders with\n"
	       "node-*.evlog and labels.csv) and write it as a versioned text model file\n"
	       "(models/README.md).  Use it with 'tracejoin correlate --algo classifier\n"
	       "--param model=FILE'.  The same datasets in the same order give the same file.\n\n"
	       "options:\n"
	       "  --algo NAME        the correlator to train; only 'classifier' trains here\n"
	       "  -o, --output FILE  the model file to write (required); it appears only\n"
	       "                     when training succeeds\n"
	       "  --force            replace an existing FILE\n"
	       "  --allow-damaged    fit even when a log is damaged (calls lost); the\n"
	       "                     model records it (train_damaged_logs)\n"
	       "  --fit KIND         clogit (conditional logit over a call's candidates and\n"
	       "                     'no parent', BFGS; default), logit (per-pair logistic\n"
	       "                     regression, IRLS), or both: fit both and keep the one\n"
	       "                     more accurate on the --test datasets\n"
	       "  --lambda L         L2 penalty on standardised coefficients (default 1)\n"
	       "  --max-cand N       candidates per call, 1..%d (default %d)\n"
	       "  --window SECONDS   a parent started at most this long before its call\n"
	       "                     (default %g)\n"
	       "  --features N       fit on the first N features only (1..all; default all):\n"
	       "                     a model for the list as it was before later ones were\n"
	       "                     appended (models/README.md)\n"
	       "  --self-fed N       after the fit, N rounds of: walk the datasets again with\n"
	       "                     the history features fed by the model's own decisions,\n"
	       "                     add those pairs (labeled with the truth), refit\n"
	       "                     (0..5, default 0; models/README.md)\n"
	       "  --test DATASET     a held-out labeled dataset to report accuracy on\n"
	       "                     (repeatable); the model runs on it as the correlator does\n"
	       "  -v, --verbose      fitting progress on stderr\n"
	       "  -q, --quiet        no summary\n"
	       "  -h, --help         this text\n\n"
	       "Accuracy is the share of labeled calls whose predicted parent (or 'none') is\n"
	       "the true one.  Exit status: 0 ok, 1 failure, 2 usage, 3 a log was damaged\n"
	       "(no model written unless --allow-damaged).\n",
	       TJ_FEAT_MAX_CAND, TJ_FEAT_DEFAULT_MAX_CAND,
	       (double)TJ_FEAT_DEFAULT_WINDOW_NS / 1e9);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double share(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	return end == s || *end || errno ? -1 : 0;
}

/* Evaluate m on every test dataset; total accuracy in *acc. */
static int evaluate_all(const struct tj_model *m, const char *label,
			char **tests, size_t ntests, int quiet, double *acc)
{
	struct tj_eval all = { 0 };
	struct tj_err err = { 0 };
	for (size_t i = 0; i < ntests; i++) {
		struct tj_eval ev = { 0 };
		if (tj_evaluate(m, tests[i], &ev, &err) < 0) {
			fprintf(stderr, "tracejoin train: %s\n", err.msg);
			return -1;
		}
		if (!quiet)
			fprintf(stderr, "test %s %s: accuracy %.4f of %" PRIu64 " calls "
			       "(with parent %.4f of %" PRIu64 ", none %.4f of %" PRIu64 ")\n",
			       label, tests[i], share(ev.right, ev.calls), ev.calls,
			       share(ev.right_parent, ev.with_parent), ev.with_parent,
			       share(ev.right_none, ev.no_parent), ev.no_parent);
		all.calls += ev.calls;
		all.right += ev.right;
		all.with_parent += ev.with_parent;
		all.right_parent += ev.right_parent;
		all.no_parent += ev.no_parent;
		all.right_none += ev.right_none;
	}
	*acc = share(all.right, all.calls);
	if (!quiet && ntests > 1)
		fprintf(stderr, "test %s all: accuracy %.4f of %" PRIu64 " calls "
		       "(with parent %.4f, none %.4f)\n", label, *acc, all.calls,
		       share(all.right_parent, all.with_parent),
		       share(all.right_none, all.no_parent));
	return 0;
}

static int fit_kind(const struct tj_fit_set *set, int kind, double lambda,
		    int verbose, const struct tj_feat_opts *fo,
		    const struct tj_model *start, struct tj_model *m)
{
	struct tj_fit_opts o = { kind, lambda, 200, verbose, start };
	struct tj_err err = { 0 };
	m->nfeat = set->nfeat; /* the first nfeat of this build's list */
	for (size_t k = 0; k < set->nfeat; k++)
		snprintf(m->names[k], TJ_MODEL_NAMELEN, "%s", tj_feat_names[k]);
	m->max_cand = fo->max_cand;
	m->window_ns = fo->window_ns;
	if (tj_fit(set, &o, m, &err) < 0) {
		fprintf(stderr, "tracejoin train: %s\n", err.msg);
		return -1;
	}
	return 0;
}

int cmd_train(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "algo", required_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ "fit", required_argument, NULL, 'f' },
		{ "lambda", required_argument, NULL, 'l' },
		{ "max-cand", required_argument, NULL, 'c' },
		{ "window", required_argument, NULL, 'w' },
		{ "test", required_argument, NULL, 't' },
		{ "self-fed", required_argument, NULL, 's' },
		{ "features", required_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "force", no_argument, NULL, 'O' },
		{ "allow-damaged", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	const char *algo = NULL, *out = NULL, *fitname = "clogit";
	double lambda = 1.0, d;
	struct tj_feat_opts fo = { TJ_FEAT_DEFAULT_MAX_CAND, TJ_FEAT_DEFAULT_WINDOW_NS };
	char **tests = calloc((size_t)argc, sizeof(char *));
	size_t ntests = 0;
	int verbose = 0, quiet = 0, force = 0, allow_damaged = 0, c, rc = TJ_EXIT_FAIL, self_fed = 0;
	size_t nfeat = TJ_FEAT_N;
	if (!tests)
		return TJ_EXIT_FAIL;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:vq", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': algo = optarg; break;
		case 'o': out = optarg; break;
		case 'f': fitname = optarg; break;
		case 'l':
			if (parse_double(optarg, &lambda) < 0 || !(lambda >= 0)) {
				free(tests);
				return tj_usage("train", "--lambda wants a number >= 0, not '%s'", optarg);
			}
			break;
		case 'c':
			if (parse_double(optarg, &d) < 0 || d < 1 || d > TJ_FEAT_MAX_CAND ||
			    d != (unsigned)d) {
				free(tests);
				return tj_usage("train", "--max-cand wants a count 1..%d, not '%s'",
						TJ_FEAT_MAX_CAND, optarg);
			}
			fo.max_cand = (unsigned)d;
			break;
		case 'w':
			if (parse_double(optarg, &d) < 0 || !(d > 0) || d > 3600) {
				free(tests);
				return tj_usage("train", "--window wants seconds in (0, 3600], not '%s'",
						optarg);
			}
			fo.window_ns = (uint64_t)(d * 1e9);
			if (fo.window_ns == 0)
				fo.window_ns = 1;
			break;
		case 't': tests[ntests++] = optarg; break;
		case 'F':
			if (parse_double(optarg, &d) < 0 || d < 1 || d > TJ_FEAT_N || d != (int)d) {
				free(tests);
				return tj_usage("train", "--features wants a count 1..%d, not '%s'",
						TJ_FEAT_N, optarg);
			}
			nfeat = (size_t)d;
			break;
		case 's':
			if (parse_double(optarg, &d) < 0 || d < 0 || d > 5 || d != (int)d) {
				free(tests);
				return tj_usage("train", "--self-fed wants a count 0..5, not '%s'",
						optarg);
			}
			self_fed = (int)d;
			break;
		case 'v': verbose = 1; break;
		case 'O': force = 1; break;
		case 'D': allow_damaged = 1; break;
		case 'q': quiet = 1; break;
		case ':':
			free(tests);
			return tj_usage("train", "%s needs a value", argv[optind - 1]);
		default:
			free(tests);
			return tj_usage("train", "unknown option %s", argv[optind - 1]);
		}
	}
	int ndatasets = argc - optind;
	char **datasets = argv + optind;
	const char *usage_err = NULL;
	if (!algo)
		usage_err = "--algo is required (--algo classifier)";
	else if (strcmp(algo, "classifier") != 0)
		usage_err = "only --algo classifier trains here (other correlators "
			    "learn unlabeled, inside 'tracejoin correlate')";
	else if (!out)
		usage_err = "-o FILE is required";
	else if (ndatasets < 1)
		usage_err = "no dataset given";
	else if (strcmp(fitname, "clogit") && strcmp(fitname, "logit") &&
		 strcmp(fitname, "both"))
		usage_err = "--fit wants clogit, logit or both";
	else if (strcmp(fitname, "both") == 0 && ntests == 0)
		usage_err = "--fit both chooses on held-out data: give --test DATASET";
	if (usage_err) {
		free(tests);
		return tj_usage("train", "%s", usage_err);
	}

	/* Open the output now, not after a long fit: an existing model
	 * without --force, an input as output, a folder we cannot write in
	 * are refused before any work. */
	struct tj_err err = { 0 };
	struct tj_outfile of;
	size_t nin = (size_t)ndatasets + ntests;
	char **inputs = calloc(nin, sizeof(*inputs));
	if (!inputs) {
		free(tests);
		return TJ_EXIT_FAIL;
	}
	for (int i = 0; i < ndatasets; i++)
		inputs[i] = datasets[i];
	for (size_t i = 0; i < ntests; i++)
		inputs[(size_t)ndatasets + i] = tests[i];
	int orc = tj_outfile_open(&of, out, force ? TJ_OUT_FORCE : 0, 0666, inputs,
				  nin, &err);
	free(inputs);
	if (orc < 0) {
		fprintf(stderr, "tracejoin train: %s\n", err.msg);
		free(tests);
		return TJ_EXIT_FAIL;
	}
	struct tj_fit_set set;
	struct tj_walk_stats st = { 0 };
	struct tj_model models[2];
	int nmodels = 0;
	tj_fit_set_init(&set, nfeat);
	double t0 = now_s();
	for (int i = 0; i < ndatasets; i++)
		if (tj_trainset_add(&set, datasets[i], &fo, &st, &err) < 0) {
			fprintf(stderr, "tracejoin train: %s\n", err.msg);
			goto done;
		}
	if (!quiet)
		fprintf(stderr, "train: %d dataset%s, %" PRIu64 " events, %" PRIu64 " calls "
		       "(%" PRIu64 " labeled, %" PRIu64 " with a parent, %" PRIu64
		       " whose parent is not a candidate), %" PRIu64 " pairs, %.1f s\n",
		       ndatasets, ndatasets == 1 ? "" : "s", st.events, st.calls,
		       st.labeled, st.with_parent, st.unreachable, st.pairs,
		       now_s() - t0);
	if (st.damaged_logs && !allow_damaged) {
		fprintf(stderr, "tracejoin train: %" PRIu64 " damaged log%s: the calls they "
				"lost would bias the model; no model written "
				"(--allow-damaged fits on what was read)\n",
			st.damaged_logs, st.damaged_logs == 1 ? "" : "s");
		rc = TJ_EXIT_DAMAGED;
		goto done;
	}
	if (st.calls && st.labeled == 0) {
		fprintf(stderr, "tracejoin train: no call of the logs appears in labels.csv: "
				"labels and logs do not match\n");
		goto done;
	}
	int kinds[2], nk = 0;
	if (strcmp(fitname, "both") == 0) {
		kinds[nk++] = TJ_FIT_CLOGIT;
		kinds[nk++] = TJ_FIT_LOGIT;
	} else {
		kinds[nk++] = strcmp(fitname, "logit") == 0 ? TJ_FIT_LOGIT : TJ_FIT_CLOGIT;
	}
	double acc[2] = { 0, 0 };
	for (int k = 0; k < nk; k++) {
		tj_model_init(&models[k]);
		nmodels++;
		double t1 = now_s();
		if (fit_kind(&set, kinds[k], lambda, verbose, &fo, NULL, &models[k]) < 0)
			goto done;
		for (int round = 0; round < self_fed; round++) {
			struct tj_walk_stats st2 = { 0 };
			for (int i = 0; i < ndatasets; i++)
				if (tj_trainset_add_self_fed(&set, datasets[i], &fo, &models[k],
							     &st2, &err) < 0) {
					fprintf(stderr, "tracejoin train: %s\n", err.msg);
					goto done;
				}
			struct tj_model prev = models[k];
			tj_model_init(&models[k]);
			int frc = fit_kind(&set, kinds[k], lambda, verbose, &fo, &prev, &models[k]);
			tj_model_free(&prev);
			if (frc < 0)
				goto done;
			if (!quiet)
				fprintf(stderr, "self-fed round %d: %" PRIu64 " pairs added, "
					"training accuracy %.4f\n", round + 1, st2.pairs,
					models[k].train_accuracy);
		}
		const char *name = kinds[k] == TJ_FIT_LOGIT ? "logit" : "clogit";
		if (!quiet)
			fprintf(stderr, "fit %s: training accuracy %.4f, threshold %.4f, %.1f s\n",
			       name, models[k].train_accuracy, models[k].threshold,
			       now_s() - t1);
		if (ntests && evaluate_all(&models[k], name, tests, ntests, quiet,
					   &acc[k]) < 0)
			goto done;
	}
	/* ties go to the first (clogit) */
	int best = nk == 2 && acc[1] > acc[0] ? 1 : 0;
	if (nk == 2 && !quiet)
		fprintf(stderr, "chose %s (held-out accuracy %.4f vs %.4f)\n",
		       kinds[best] == TJ_FIT_LOGIT ? "logit" : "clogit", acc[best],
		       acc[1 - best]);
	for (int i = 0; i < ndatasets; i++)
		if (tj_trainset_hash(&models[best], datasets[i], &err) < 0) {
			fprintf(stderr, "tracejoin train: %s\n", err.msg);
			goto done;
		}
	models[best].train_damaged_logs = st.damaged_logs;
	FILE *f = tj_outfile_stream(&of, &err);
	if (!f || tj_model_print(&models[best], f, of.path, &err) < 0 ||
	    tj_outfile_commit(&of, &err) < 0) {
		fprintf(stderr, "tracejoin train: %s\n", err.msg);
		goto done;
	}
	if (!quiet && strcmp(out, "-") != 0)
		fprintf(stderr, "wrote %s\n", out);
	rc = TJ_EXIT_OK;
done:
	tj_outfile_abort(&of); /* nothing once committed */
	for (int k = 0; k < nmodels; k++)
		tj_model_free(&models[k]);
	tj_fit_set_free(&set);
	free(tests);
	return rc;
}
