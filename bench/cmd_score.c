/* tracejoin score: a correlator's edges against the labels (bench/score.h
 * holds the definitions; this file reads the inputs and prints). */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "score.h"
#include "../replay/join.h"
#include "../cli/commands.h"

static const char usage_text[] =
	"usage: tracejoin score --labels LABELS.csv EDGES.csv [options]\n"
	"\n"
	"Score a correlator's edges (EDGES.csv, '-' for stdin) against the true\n"
	"edges of a dataset (LABELS.csv).\n"
	"\n"
	"options:\n"
	"  -l, --labels FILE   the labels (required)\n"
	"  -d, --dataset DIR   the node-*.evlog to join calls across nodes with\n"
	"                      (default: the labels' folder, if it holds logs)\n"
	"  -j, --json          JSON on stdout instead of the table\n"
	"  -s, --strict        edges whose child the labels do not know are an\n"
	"                      error (by default they are counted and left out)\n"
	"  -h, --help          this help\n"
	"\n"
	"Figures.  Every labeled call is a decision; its predicted parent is its\n"
	"edge's parent, or none when EDGES has no row for it.  It is right when\n"
	"the predicted parent is the true one, or both are none.\n"
	"  accuracy   right decisions / labeled calls\n"
	"  precision  right parents / calls predicted with a parent\n"
	"  recall     right parents / calls truly with a parent\n"
	"  F1         2 * right parents / (predicted with + truly with a parent)\n"
	"  service accuracy (TraceWeaver per-service): an inbound request counts\n"
	"             right when the calls predicted for it are exactly its true\n"
	"             calls; over the requests the labels reach, on services\n"
	"             that make calls.\n"
	"  end-to-end accuracy (TraceWeaver; trace accuracy): the share of roots\n"
	"             whose whole tree (edges within nodes plus the join across\n"
	"             nodes) is exactly right, i.e. every request in it counts\n"
	"             right.  A root is a request no labeled call became (an\n"
	"             entry from outside, or the highest request partial labels\n"
	"             reach) or a labeled call with no true parent (background).\n"
	"             Needs the logs; '-' without them.\n"
	"  A service is a node and the pid the logs show for it.  A figure with a\n"
	"  zero denominator is '-' (null in JSON).  bench/score.h says more.\n"
	"\n"
	"Exit 0 ok, 1 failure (unreadable or malformed input, a duplicate child,\n"
	"unknown children under --strict), 2 usage, 3 a log was damaged (figures\n"
	"from what could be read).\n";

void cmd_score_help(void)
{
	fputs(usage_text, stdout);
}

static int fail(const char *msg)
{
	fprintf(stderr, "tracejoin score: %s\n", msg);
	return TJ_EXIT_FAIL;
}

/* The labels' folder if it holds node logs, else NULL (malloc'd). */
static char *labels_dataset(const char *labels)
{
	char *copy = strdup(labels);
	if (!copy)
		return NULL;
	char *dir = strdup(dirname(copy));
	free(copy);
	if (!dir)
		return NULL;
	size_t n = strlen(dir) + sizeof("/node-*.evlog");
	char *pat = malloc(n);
	glob_t g;
	int found = 0;
	if (pat) {
		snprintf(pat, n, "%s/node-*.evlog", dir);
		found = glob(pat, 0, NULL, &g) == 0;
		if (found)
			globfree(&g);
		free(pat);
	}
	if (!found) {
		free(dir);
		return NULL;
	}
	return dir;
}

static json_t *join_json(const struct tj_join_stats *j)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "calls", (json_int_t)j->calls,
			 "server_requests", (json_int_t)j->server_requests,
			 "joined", (json_int_t)j->joined,
			 "no_peer", (json_int_t)j->no_peer,
			 "ambiguous", (json_int_t)j->ambiguous,
			 "offset_misses", (json_int_t)j->offset_misses,
			 "skipped", (json_int_t)j->skipped);
}

json_t *bench_score_doc(const char *labels, const char *edges, const char *dataset,
			const struct tj_join *join, const struct tj_score *sc)
{
	json_t *root = json_pack("{s:{s:s,s:s,s:o}}", "inputs", "labels", labels,
				 "edges", edges, "dataset",
				 dataset ? json_string(dataset) : json_null());
	json_t *body = tj_score_json(sc);
	if (!root || !body) {
		json_decref(root);
		json_decref(body);
		return NULL;
	}
	json_object_set_new(root, "join", join ? join_json(tj_join_stats(join)) : json_null());
	json_object_update(root, body);
	json_decref(body);
	return root;
}

int cmd_score(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "labels", required_argument, NULL, 'l' },
		{ "dataset", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "strict", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "score", *labels_path = NULL, *dataset = NULL;
	int json = 0, strict = 0, ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":l:d:js", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			labels_path = optarg;
			break;
		case 'd':
			dataset = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 's':
			strict = 1;
			break;
		case ':':
			return tj_usage(cmd, "%s needs a value", argv[optind - 1]);
		default:
			return tj_usage(cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (!labels_path)
		return tj_usage(cmd, "--labels FILE is required");
	if (optind == argc)
		return tj_usage(cmd, "no edges file (give EDGES.csv or '-')");
	if (argc - optind > 1)
		return tj_usage(cmd, "one edges file expected, got %d",
				argc - optind);
	const char *edges_path = argv[optind];
	if (strcmp(edges_path, "-") == 0 && strcmp(labels_path, "-") == 0)
		return tj_usage(cmd, "labels and edges cannot both be stdin ('-')");
	if (dataset) {
		struct stat st;
		if (stat(dataset, &st) < 0)
			return tj_usage(cmd, "--dataset %s: %s", dataset,
					strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return tj_usage(cmd, "--dataset %s: not a folder", dataset);
	}

	struct tj_edge_set labels = { 0 }, edges = { 0 };
	struct tj_join *join = NULL;
	struct tj_score sc = { 0 };
	struct tj_err err = { 0 };
	char *auto_dir = NULL;
	int rc = TJ_EXIT_FAIL, damaged = 0;

	if (tj_edges_read(&labels, labels_path, &err) < 0 ||
	    tj_edges_read(&edges, edges_path, &err) < 0) {
		fail(err.msg);
		goto out;
	}
	if (!dataset)
		dataset = auto_dir = labels_dataset(labels_path);
	if (dataset) {
		char *in[] = { (char *)dataset };
		if (tj_join_from_logs(&join, in, 1, &damaged, &err) < 0) {
			fail(err.msg);
			goto out;
		}
	}
	struct tj_score_opts so = { .strict = strict,
				    .labels_name = labels_path,
				    .edges_name = strcmp(edges_path, "-") ?
						  edges_path : "<stdin>" };
	if (tj_score_compute(&sc, &labels, &edges, join, &so, &err) < 0) {
		fail(err.msg);
		goto out;
	}

	if (json) {
		json_t *root = bench_score_doc(labels_path, so.edges_name, dataset, join, &sc);
		if (!root) {
			fail("out of memory");
			goto out;
		}
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(root);
	} else {
		printf("labels    %s: %zu calls\n", labels_path, labels.n);
		printf("edges     %s: %zu edges\n", so.edges_name, edges.n);
		if (join) {
			const struct tj_join_stats *js = tj_join_stats(join);
			printf("logs      %s: %llu calls, %llu joined, %llu to "
			       "uncaptured peers, %llu not joinable\n",
			       dataset, (unsigned long long)js->calls,
			       (unsigned long long)js->joined,
			       (unsigned long long)js->no_peer,
			       (unsigned long long)(js->ambiguous +
						    js->offset_misses +
						    js->skipped));
		} else {
			printf("logs      none\n");
		}
		putchar('\n');
		tj_score_print(stdout, &sc);
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "tracejoin score: <stdout>: %s\n",
			strerror(errno));
		goto out;
	}
	rc = damaged ? TJ_EXIT_DAMAGED : TJ_EXIT_OK;
out:
	tj_score_free(&sc);
	tj_join_free(join);
	tj_edges_free(&labels);
	tj_edges_free(&edges);
	free(auto_dir);
	return rc;
}
