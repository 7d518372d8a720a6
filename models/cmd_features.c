/* `tracejoin features`: the classifier's (candidate parent, call) pairs of
 * labeled datasets as CSV, for training models in other tools. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <csv.h>
#include "trainset.h"
#include "../cli/commands.h"
#include "../lib/error.h"
#include "../lib/outfile.h"

void cmd_features_help(void)
{
	printf("usage: tracejoin features [OPTIONS] DATASET... [-o FILE]\n\n"
	       "Write one CSV row per (candidate parent, call) pair of labeled datasets\n"
	       "(folders with node-*.evlog and labels.csv): the pairs and features the\n"
	       "classifier correlator scores (models/features.h, models/README.md),\n"
	       "for scikit-learn, R and friends.\n\n"
	       "columns: dataset, call (key), candidate (key), label (1 if the\n"
	       "candidate is the call's true parent, else 0), call_truth (parent: the\n"
	       "true parent is among the candidates; none: the call has no parent;\n"
	       "unreachable: it has one that is not a candidate), then the features.\n"
	       "Rows of one call are consecutive, most recently started candidate first.\n"
	       "History features assume the labels' answers for earlier calls.\n\n"
	       "options:\n"
	       "  -o, --output FILE  write here (default: stdout); it appears only\n"
	       "                     when every dataset was read\n"
	       "  -f, --force        replace an existing FILE\n"
	       "  --max-cand N       candidates per call, 1..%d (default %d)\n"
	       "  --window SECONDS   a parent started at most this long before (default %g)\n"
	       "  -h, --help         this text\n\n"
	       "Exit status: 0 ok, 1 failure, 2 usage, 3 a log was damaged (rows\n"
	       "written from what could be read).\n",
	       TJ_FEAT_MAX_CAND, TJ_FEAT_DEFAULT_MAX_CAND,
	       (double)TJ_FEAT_DEFAULT_WINDOW_NS / 1e9);
}

struct out {
	FILE *f;
	const char *dataset;
	uint64_t rows;
	int header_done; /* written with the first row: a run that fails
			    first prints nothing, not even on stdout */
};

static void header(struct out *o)
{
	o->header_done = 1;
	fputs("dataset,call,candidate,label,call_truth", o->f);
	for (size_t k = 0; k < TJ_FEAT_N; k++)
		fprintf(o->f, ",%s", tj_feat_names[k]);
	fputc('\n', o->f);
}

static void field(FILE *f, const char *s)
{
	csv_fwrite(f, s, strlen(s));
}

static int write_pair(void *ctx, const struct tj_feat_call *c, int truth,
		      int *assign, struct tj_err *err)
{
	struct out *o = ctx;
	(void)assign;
	(void)err;
	if (truth == TJ_TRUTH_UNLABELED)
		return 0;
	const char *kind = truth >= 0 ? "parent"
			 : truth == TJ_TRUTH_NONE ? "none" : "unreachable";
	char ck[TJ_MSGKEY_STRLEN], pk[TJ_MSGKEY_STRLEN];
	tj_msgkey_format(&c->call, ck);
	if (!o->header_done)
		header(o);
	for (size_t j = 0; j < c->n; j++) {
		tj_msgkey_format(&c->cand[j], pk);
		field(o->f, o->dataset);
		fputc(',', o->f);
		field(o->f, ck);
		fputc(',', o->f);
		field(o->f, pk);
		fprintf(o->f, ",%d,%s", (int)j == truth, kind);
		for (size_t k = 0; k < TJ_FEAT_N; k++)
			fprintf(o->f, ",%.10g", c->x[j][k]);
		fputc('\n', o->f);
		o->rows++;
	}
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	return end == s || *end || errno ? -1 : 0;
}

int cmd_features(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "max-cand", required_argument, NULL, 'c' },
		{ "window", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = "-";
	struct tj_feat_opts fo = { TJ_FEAT_DEFAULT_MAX_CAND, TJ_FEAT_DEFAULT_WINDOW_NS };
	double d;
	int c, force = 0;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:f", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': path = optarg; break;
		case 'f': force = 1; break;
		case 'c':
			if (parse_double(optarg, &d) < 0 || d < 1 || d > TJ_FEAT_MAX_CAND ||
			    d != (unsigned)d)
				return tj_usage("features", "--max-cand wants a count 1..%d, not '%s'",
						TJ_FEAT_MAX_CAND, optarg);
			fo.max_cand = (unsigned)d;
			break;
		case 'w':
			if (parse_double(optarg, &d) < 0 || !(d > 0) || d > 3600)
				return tj_usage("features", "--window wants seconds in (0, 3600], not '%s'",
						optarg);
			fo.window_ns = (uint64_t)(d * 1e9) ? (uint64_t)(d * 1e9) : 1;
			break;
		case ':': return tj_usage("features", "%s needs a value", argv[optind - 1]);
		default: return tj_usage("features", "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return tj_usage("features", "no dataset given");
	struct tj_err err = { 0 };
	struct tj_outfile out;
	if (tj_outfile_open(&out, path, force ? TJ_OUT_FORCE : 0, 0666,
			    argv + optind, (size_t)(argc - optind), &err) < 0) {
		fprintf(stderr, "tracejoin features: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	struct out o = { tj_outfile_stream(&out, &err), NULL, 0, 0 };
	if (!o.f) {
		fprintf(stderr, "tracejoin features: %s\n", err.msg);
		tj_outfile_abort(&out);
		return TJ_EXIT_FAIL;
	}
	int rc = TJ_EXIT_OK;
	for (int i = optind; i < argc; i++) {
		struct tj_walk_stats st = { 0 };
		o.dataset = argv[i];
		if (tj_walk_dataset(argv[i], &fo, write_pair, &o, &st, &err) < 0) {
			fprintf(stderr, "tracejoin features: %s\n", err.msg);
			rc = TJ_EXIT_FAIL;
			break;
		}
		if (st.damaged_logs)
			rc = TJ_EXIT_DAMAGED;
	}
	if (rc == TJ_EXIT_FAIL) {
		tj_outfile_abort(&out); /* an earlier file stays as it was */
		return rc;
	}
	if (!o.header_done)
		header(&o);
	if (tj_outfile_commit(&out, &err) < 0) {
		fprintf(stderr, "tracejoin features: %s\n", err.msg);
		rc = TJ_EXIT_FAIL;
	}
	return rc;
}
