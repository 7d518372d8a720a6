/* tracejoin bench --score-set: a plan's score job.  Scores every
 * correlator's edges of one dataset against its labels, reading the
 * labels and joining the node logs once (what a `tracejoin score` per
 * correlator would redo each time), and writes per edges file the
 * document `tracejoin score --json` prints; with --drilldown, the
 * report's drill-down pages too. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "score.h"
#include "../cli/commands.h"
#include "../export/model.h"
#include "../lib/edges.h"
#include "../lib/outfile.h"
#include "../replay/join.h"

struct score_set {
	const char *data, *name, *out, *drilldown;
	char **edges;
	int nedges;
};

/* Options into *s; 0, or the exit status of a usage error. */
static int parse_score_set(int argc, char **argv, struct score_set *s)
{
	enum { O_SET = 256, O_NAME, O_DRILL };
	static const struct option longopts[] = {
		{ "score-set", required_argument, NULL, O_SET },
		{ "name", required_argument, NULL, O_NAME },
		{ "output", required_argument, NULL, 'o' },
		{ "drilldown", required_argument, NULL, O_DRILL },
		{ NULL, 0, NULL, 0 },
	};
	memset(s, 0, sizeof(*s));
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
		switch (c) {
		case O_SET: s->data = optarg; break;
		case O_NAME: s->name = optarg; break;
		case 'o': s->out = optarg; break;
		case O_DRILL: s->drilldown = optarg; break;
		case ':': return tj_usage("bench", "option %s needs a value", argv[optind - 1]);
		default: return tj_usage("bench", "--score-set: unknown option %s", argv[optind - 1]);
		}
	}
	if (!s->name || !s->out || optind == argc)
		return tj_usage("bench", "--score-set DATASET --name NAME -o DIR EDGES.csv...: "
				"give --name, -o and at least one edges file");
	s->edges = argv + optind;
	s->nedges = argc - optind;
	size_t nl = strlen(s->name);
	for (int i = 0; i < s->nedges; i++) {
		const char *base = strrchr(s->edges[i], '/');
		base = base ? base + 1 : s->edges[i];
		size_t bl = strlen(base);
		if (strncmp(base, s->name, nl) || strncmp(base + nl, "--", 2) || bl < nl + 7 ||
		    strcmp(base + bl - 4, ".csv"))
			return tj_usage("bench", "--score-set: %s: want a file named %s--CORRELATOR.csv",
					s->edges[i], s->name);
	}
	return 0;
}

/* The drill-down of one scored correlator; the dataset's span model built
 * at the first (a replay, once per dataset).  Not a result: a failure is
 * a warning. */
static void drill(const struct score_set *s, const char *algo, const char *edges,
		  const struct tj_edge_set *labels, const char *lp, struct tj_xmodel *model,
		  int *tried, int *ok)
{
	struct tj_err de = { 0 };
	if (!*tried) {
		struct tj_xmodel_opts mo = { .truth = labels, .truth_name = lp };
		char *dir = (char *)s->data;
		*tried = 1;
		*ok = tj_xmodel_build(model, &dir, 1, &mo, &de) == 0;
		if (!*ok)
			tj_warn("bench: drill-down of %s: %s", s->name, de.msg);
	}
	if (*ok && bench_write_drilldown(s->drilldown, s->name, algo, model, edges, &de))
		tj_warn("bench: drill-down of %s on %s: %s", algo, s->name, de.msg);
}

int bench_score_set(int argc, char **argv)
{
	struct score_set s;
	int rc = parse_score_set(argc, argv, &s);
	if (rc)
		return rc;
	if (bench_mkdirs(s.out) < 0) {
		tj_warn("bench: %s: %m", s.out);
		return TJ_EXIT_FAIL;
	}
	struct tj_edge_set labels = { 0 };
	struct tj_join *join = NULL;
	struct tj_err err = { 0 };
	struct tj_xmodel model = { 0 };
	char lp[PATH_MAX], *dir = (char *)s.data;
	int damaged = 0, failed = 0, tried = 0, model_ok = 0;
	snprintf(lp, sizeof(lp), "%s/labels.csv", s.data);
	if (tj_edges_read(&labels, lp, &err) < 0 ||
	    tj_join_from_logs(&join, &dir, 1, &damaged, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		tj_edges_free(&labels);
		return TJ_EXIT_FAIL;
	}
	for (int i = 0; i < s.nedges; i++) {
		const char *base = strrchr(s.edges[i], '/');
		base = base ? base + 1 : s.edges[i];
		char algo[BENCH_NAME_MAX], path[PATH_MAX];
		snprintf(algo, sizeof(algo), "%.*s", (int)(strlen(base) - strlen(s.name) - 6),
			 base + strlen(s.name) + 2);
		snprintf(path, sizeof(path), "%s/%.*s.json", s.out, (int)strlen(base) - 4, base);
		struct tj_edge_set edges = { 0 };
		struct tj_score sc = { 0 };
		struct tj_score_opts so = { .strict = 0, .labels_name = "labels.csv",
					    .edges_name = s.edges[i] };
		json_t *doc = NULL;
		err = (struct tj_err){ 0 };
		if (tj_edges_read(&edges, s.edges[i], &err) < 0 ||
		    tj_score_compute(&sc, &labels, &edges, join, &so, &err) < 0 ||
		    !(doc = bench_score_doc(lp, s.edges[i], s.data, join, &sc)) ||
		    bench_write_json_file(path, doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER,
					  TJ_OUT_FORCE, &err) < 0) {
			tj_warn("bench: scoring %s: %s", s.edges[i], err.code ? err.msg : "out of memory");
			failed++;
		} else if (s.drilldown) {
			drill(&s, algo, s.edges[i], &labels, lp, &model, &tried, &model_ok);
		}
		json_decref(doc);
		tj_score_free(&sc);
		tj_edges_free(&edges);
	}
	tj_xmodel_free(&model);
	tj_join_free(join);
	tj_edges_free(&labels);
	/* a damaged log still gives figures, as every correlate of it */
	return failed ? TJ_EXIT_FAIL : damaged ? TJ_EXIT_DAMAGED : TJ_EXIT_OK;
}
