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
	       "  --features LIST    fit on these features only (default all): comma-separated\n"
	       "                     feature names (tracejoin features' header) and counts N\n"
	       "                     (the first N: the list as it was before later ones were\n"
	       "                     appended), e.g. 27,queue_head (models/README.md)\n"
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
	m->nfeat = set->nfeat; /* the set's columns of this build's list */
	for (size_t k = 0; k < set->nfeat; k++)
		snprintf(m->names[k], TJ_MODEL_NAMELEN, "%s", tj_feat_names[set->col[k]]);
	m->max_cand = fo->max_cand;
	m->window_ns = fo->window_ns;
	if (tj_fit(set, &o, m, &err) < 0) {
		fprintf(stderr, "tracejoin train: %s\n", err.msg);
		return -1;
	}
	return 0;
}

struct train_opts {
	const char *algo, *out, *fitname;
	double lambda;
	struct tj_feat_opts fo;
	char **tests;      /* --test DATASETs (ntests of argc slots) */
	size_t ntests;
	int verbose, quiet, force, allow_damaged, self_fed;
	size_t nfeat;      /* --features: how many */
	size_t col[TJ_FEAT_N]; /* and which, in the build's order */
	char **datasets;   /* the operands */
	int ndatasets;
};

/* --features LIST: names and counts (the first N), into o->col/nfeat. */
static int parse_features(const char *arg, struct train_opts *o)
{
	uint8_t want[TJ_FEAT_N] = { 0 };
	char buf[1024];
	if (strlen(arg) >= sizeof(buf) || !*arg)
		return tj_usage("train", "--features wants names or counts 1..%d, not '%s'",
				TJ_FEAT_N, arg);
	strcpy(buf, arg);
	char *save = NULL;
	int any = 0;
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		double d;
		size_t k = 0;
		if (*w >= '0' && *w <= '9') {
			if (parse_double(w, &d) < 0 || d < 1 || d > TJ_FEAT_N || d != (int)d)
				return tj_usage("train", "--features wants a count 1..%d or "
						"feature names, not '%s'", TJ_FEAT_N, w);
			for (k = 0; k < (size_t)d; k++)
				want[k] = 1;
		} else {
			while (k < TJ_FEAT_N && strcmp(tj_feat_names[k], w) != 0)
				k++;
			if (k == TJ_FEAT_N)
				return tj_usage("train", "--features: no feature '%s' (the names: "
						"'tracejoin features' CSV header)", w);
			if (want[k])
				return tj_usage("train", "--features: '%s' given twice", w);
			want[k] = 1;
		}
		any = 1;
	}
	if (!any)
		return tj_usage("train", "--features wants names or counts 1..%d, not '%s'",
				TJ_FEAT_N, arg);
	o->nfeat = 0;
	for (size_t k = 0; k < TJ_FEAT_N; k++)
		if (want[k])
			o->col[o->nfeat++] = k;
	return 0;
}

/* Options into *o; 0, or the exit status of a usage error.  o->tests
 * is allocated on success only. */
static int parse_opts(int argc, char **argv, struct train_opts *o)
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
	double d;
	int c, rc = 0;

	*o = (struct train_opts){
		.fitname = "clogit", .lambda = 1.0, .nfeat = TJ_FEAT_N,
		.fo = { TJ_FEAT_DEFAULT_MAX_CAND, TJ_FEAT_DEFAULT_WINDOW_NS },
	};
	for (size_t k = 0; k < TJ_FEAT_N; k++)
		o->col[k] = k;
	if (!(o->tests = calloc((size_t)argc, sizeof(char *))))
		return TJ_EXIT_FAIL;
	optind = 0;
	opterr = 0;
	while (!rc && (c = getopt_long(argc, argv, ":o:vq", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': o->algo = optarg; break;
		case 'o': o->out = optarg; break;
		case 'f': o->fitname = optarg; break;
		case 'l':
			if (parse_double(optarg, &o->lambda) < 0 || !(o->lambda >= 0))
				rc = tj_usage("train", "--lambda wants a number >= 0, not '%s'", optarg);
			break;
		case 'c':
			if (parse_double(optarg, &d) < 0 || d < 1 || d > TJ_FEAT_MAX_CAND ||
			    d != (unsigned)d)
				rc = tj_usage("train", "--max-cand wants a count 1..%d, not '%s'",
					      TJ_FEAT_MAX_CAND, optarg);
			else
				o->fo.max_cand = (unsigned)d;
			break;
		case 'w':
			if (parse_double(optarg, &d) < 0 || !(d > 0) || d > 3600) {
				rc = tj_usage("train", "--window wants seconds in (0, 3600], not '%s'",
					      optarg);
				break;
			}
			o->fo.window_ns = (uint64_t)(d * 1e9);
			if (o->fo.window_ns == 0)
				o->fo.window_ns = 1;
			break;
		case 't': o->tests[o->ntests++] = optarg; break;
		case 'F':
			rc = parse_features(optarg, o);
			break;
		case 's':
			if (parse_double(optarg, &d) < 0 || d < 0 || d > 5 || d != (int)d)
				rc = tj_usage("train", "--self-fed wants a count 0..5, not '%s'",
					      optarg);
			else
				o->self_fed = (int)d;
			break;
		case 'v': o->verbose = 1; break;
		case 'O': o->force = 1; break;
		case 'D': o->allow_damaged = 1; break;
		case 'q': o->quiet = 1; break;
		case ':': rc = tj_usage("train", "%s needs a value", argv[optind - 1]); break;
		default: rc = tj_usage("train", "unknown option %s", argv[optind - 1]); break;
		}
	}
	o->ndatasets = argc - optind;
	o->datasets = argv + optind;
	const char *usage_err = NULL;
	if (rc)
		;
	else if (!o->algo)
		usage_err = "--algo is required (--algo classifier)";
	else if (strcmp(o->algo, "classifier") != 0)
		usage_err = "only --algo classifier trains here (other correlators "
			    "learn unlabeled, inside 'tracejoin correlate')";
	else if (!o->out)
		usage_err = "-o FILE is required";
	else if (o->ndatasets < 1)
		usage_err = "no dataset given";
	else if (strcmp(o->fitname, "clogit") && strcmp(o->fitname, "logit") &&
		 strcmp(o->fitname, "both"))
		usage_err = "--fit wants clogit, logit or both";
	else if (strcmp(o->fitname, "both") == 0 && o->ntests == 0)
		usage_err = "--fit both chooses on held-out data: give --test DATASET";
	if (usage_err)
		rc = tj_usage("train", "%s", usage_err);
	if (rc) {
		free(o->tests);
		o->tests = NULL;
	}
	return rc;
}

/* Open the output now, not after a long fit: an existing model without
 * --force, an input as output, a folder we cannot write in are refused
 * before any work. */
static int open_output(const struct train_opts *o, struct tj_outfile *of)
{
	struct tj_err err = { 0 };
	size_t nin = (size_t)o->ndatasets + o->ntests;
	char **inputs = calloc(nin, sizeof(*inputs));

	if (!inputs)
		return TJ_EXIT_FAIL;
	for (int i = 0; i < o->ndatasets; i++)
		inputs[i] = o->datasets[i];
	for (size_t i = 0; i < o->ntests; i++)
		inputs[(size_t)o->ndatasets + i] = o->tests[i];
	int orc = tj_outfile_open(of, o->out, o->force ? TJ_OUT_FORCE : 0, 0666, inputs,
				  nin, &err);
	free(inputs);
	if (orc < 0) {
		fprintf(stderr, "tracejoin train: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	return TJ_EXIT_OK;
}

/* Walk the training datasets into *set; refuse damaged logs (unless
 * --allow-damaged) and labels that match no call. */
static int read_datasets(const struct train_opts *o, struct tj_fit_set *set,
			 struct tj_walk_stats *st)
{
	struct tj_err err = { 0 };
	double t0 = now_s();

	for (int i = 0; i < o->ndatasets; i++)
		if (tj_trainset_add(set, o->datasets[i], &o->fo, st, &err) < 0) {
			fprintf(stderr, "tracejoin train: %s\n", err.msg);
			return TJ_EXIT_FAIL;
		}
	if (!o->quiet)
		fprintf(stderr, "train: %d dataset%s, %" PRIu64 " events, %" PRIu64 " calls "
		       "(%" PRIu64 " labeled, %" PRIu64 " with a parent, %" PRIu64
		       " whose parent is not a candidate), %" PRIu64 " pairs, %.1f s\n",
		       o->ndatasets, o->ndatasets == 1 ? "" : "s", st->events, st->calls,
		       st->labeled, st->with_parent, st->unreachable, st->pairs,
		       now_s() - t0);
	if (st->damaged_logs && !o->allow_damaged) {
		fprintf(stderr, "tracejoin train: %" PRIu64 " damaged log%s: the calls they "
				"lost would bias the model; no model written "
				"(--allow-damaged fits on what was read)\n",
			st->damaged_logs, st->damaged_logs == 1 ? "" : "s");
		return TJ_EXIT_DAMAGED;
	}
	if (st->calls && st->labeled == 0) {
		fprintf(stderr, "tracejoin train: no call of the logs appears in labels.csv: "
				"labels and logs do not match\n");
		return TJ_EXIT_FAIL;
	}
	return TJ_EXIT_OK;
}

/* A copy of the fitted m (on the set's columns) that scores full feature
 * rows: the columns not fitted weigh nothing (model.h). */
static struct tj_model spread(const struct tj_fit_set *set, const struct tj_model *m)
{
	struct tj_model w = *m; /* no hashes yet: nothing shared to free */
	tj_model_spread(&w, set->col, tj_feat_names, TJ_FEAT_N); /* increasing, < N */
	return w;
}

/* Fit one kind into *m (initialised by the caller, freed by it on any
 * outcome), refit it --self-fed times, and judge it on --test.  Fits and
 * their warm starts are on the set's columns; scoring is on full rows. */
static int fit_one(const struct train_opts *o, struct tj_fit_set *set, int kind,
		   struct tj_model *m, double *acc)
{
	struct tj_err err = { 0 };
	double t1 = now_s();

	if (fit_kind(set, kind, o->lambda, o->verbose, &o->fo, NULL, m) < 0)
		return -1;
	for (int round = 0; round < o->self_fed; round++) {
		struct tj_walk_stats st2 = { 0 };
		struct tj_model w = spread(set, m);
		for (int i = 0; i < o->ndatasets; i++)
			if (tj_trainset_add_self_fed(set, o->datasets[i], &o->fo, &w,
						     &st2, &err) < 0) {
				fprintf(stderr, "tracejoin train: %s\n", err.msg);
				return -1;
			}
		struct tj_model prev = *m;
		tj_model_init(m);
		int frc = fit_kind(set, kind, o->lambda, o->verbose, &o->fo, &prev, m);
		tj_model_free(&prev);
		if (frc < 0)
			return -1;
		if (!o->quiet)
			fprintf(stderr, "self-fed round %d: %" PRIu64 " pairs added, "
				"training accuracy %.4f\n", round + 1, st2.pairs,
				m->train_accuracy);
	}
	*m = spread(set, m);
	const char *name = kind == TJ_FIT_LOGIT ? "logit" : "clogit";
	if (!o->quiet)
		fprintf(stderr, "fit %s: training accuracy %.4f, threshold %.4f, %.1f s\n",
		       name, m->train_accuracy, m->threshold, now_s() - t1);
	if (o->ntests && evaluate_all(m, name, o->tests, o->ntests, o->quiet, acc) < 0)
		return -1;
	return 0;
}

/* Stamp the chosen model with its datasets and write it through *of. */
static int write_model(const struct train_opts *o, struct tj_model *m,
		       const struct tj_walk_stats *st, struct tj_outfile *of)
{
	struct tj_err err = { 0 };

	for (int i = 0; i < o->ndatasets; i++)
		if (tj_trainset_hash(m, o->datasets[i], &err) < 0) {
			fprintf(stderr, "tracejoin train: %s\n", err.msg);
			return TJ_EXIT_FAIL;
		}
	m->train_damaged_logs = st->damaged_logs;
	FILE *f = tj_outfile_stream(of, &err);
	if (!f || tj_model_print(m, f, of->path, &err) < 0 ||
	    tj_outfile_commit(of, &err) < 0) {
		fprintf(stderr, "tracejoin train: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	if (!o->quiet && strcmp(o->out, "-") != 0)
		fprintf(stderr, "wrote %s\n", o->out);
	return TJ_EXIT_OK;
}

/* Fit the kinds --fit names (both: choose on --test), then write. */
static int train(const struct train_opts *o, struct tj_fit_set *set,
		 const struct tj_walk_stats *st, struct tj_outfile *of)
{
	struct tj_model models[2];
	double acc[2] = { 0, 0 };
	int kinds[2], nk = 0, nmodels = 0, rc = TJ_EXIT_FAIL;

	if (strcmp(o->fitname, "both") == 0) {
		kinds[nk++] = TJ_FIT_CLOGIT;
		kinds[nk++] = TJ_FIT_LOGIT;
	} else {
		kinds[nk++] = strcmp(o->fitname, "logit") == 0 ? TJ_FIT_LOGIT : TJ_FIT_CLOGIT;
	}
	for (int k = 0; k < nk; k++) {
		tj_model_init(&models[k]);
		nmodels++;
		if (fit_one(o, set, kinds[k], &models[k], &acc[k]) < 0)
			goto done;
	}
	/* ties go to the first (clogit) */
	int best = nk == 2 && acc[1] > acc[0] ? 1 : 0;
	if (nk == 2 && !o->quiet)
		fprintf(stderr, "chose %s (held-out accuracy %.4f vs %.4f)\n",
		       kinds[best] == TJ_FIT_LOGIT ? "logit" : "clogit", acc[best],
		       acc[1 - best]);
	rc = write_model(o, &models[best], st, of);
done:
	for (int k = 0; k < nmodels; k++)
		tj_model_free(&models[k]);
	return rc;
}

int cmd_train(int argc, char **argv)
{
	struct train_opts o;
	struct tj_outfile of;
	struct tj_fit_set set;
	struct tj_walk_stats st = { 0 };
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc;
	if ((rc = open_output(&o, &of)) != TJ_EXIT_OK) {
		free(o.tests);
		return rc;
	}
	tj_fit_set_init(&set, o.nfeat);
	tj_fit_set_select(&set, o.col, o.nfeat);
	if ((rc = read_datasets(&o, &set, &st)) == TJ_EXIT_OK)
		rc = train(&o, &set, &st, &of);
	tj_outfile_abort(&of); /* nothing once committed */
	tj_fit_set_free(&set);
	free(o.tests);
	return rc;
}
