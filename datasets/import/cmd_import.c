/* tracejoin import: Jaeger JSON traces -> a labeled dataset, or event CSV
 * -> an evlog (datasets/import/README.md). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "import.h"
#include "../../cli/commands.h"
#include "../../lib/outfile.h"
#include "../../lib/util.h"

#define WARN_SHOWN 100 /* warnings printed; the rest are only counted */

void cmd_import_help(void)
{
	printf("usage: tracejoin import --format jaeger [OPTIONS] DIR_OR_FILE... -o DATASET_DIR\n"
	       "       tracejoin import --format csv [OPTIONS] EVENTS.csv -o LOG.evlog\n\n"
	       "Bring outside traces in.  jaeger: Jaeger JSON trace files (a folder\n"
	       "stands for its *.json files) become a labeled dataset, socket events\n"
	       "synthesised from the spans (the mapping is in datasets/import/README.md).\n"
	       "csv: the columns of 'tracejoin dump --csv' become one evlog; rows must\n"
	       "be in time order (ts_ns never decreasing), a row out of order is refused.\n\n"
	       "options:\n"
	       "  -f, --format FMT   jaeger or csv\n"
	       "  -o, --output PATH  the dataset folder (jaeger) or the evlog (csv)\n"
	       "      --keepalive K  jaeger: keep a pool of K connections per (caller,\n"
	       "                     callee) pair; 0, the default, opens one per call\n"
	       "      --nodes MODE   jaeger: 'instance' (default): a node per service and\n"
	       "                     hostname tag; 'service': a node per service name\n"
	       "      --kinds MODE   jaeger: where server and client spans come from:\n"
	       "                     'tags' (span.kind only), 'infer' (a span whose parent\n"
	       "                     is in another process is a server span), 'auto'\n"
	       "                     (default: span.kind where a span has it, else infer)\n"
	       "      --node N       csv: the log's node id (default: the rows', which must\n"
	       "                     all agree; needed for a file with no rows)\n"
	       "      --force        replace an existing output\n"
	       "  -q, --quiet        do not print per-trace warnings (still counted)\n"
	       "  -h, --help         this text\n\n"
	       "Traces that fail a check (missing parent, cycle, duplicate span id,\n"
	       "a call starting before its parent request, non-numeric times) are\n"
	       "skipped with a warning naming file and trace; files that are empty or\n"
	       "not JSON are refused.  Exit status 3 when anything was skipped.\n");
}

struct warn_state {
	int quiet;
	unsigned long shown;
};

static void print_warning(void *ctx, const char *msg)
{
	struct warn_state *ws = ctx;
	if (ws->quiet || ws->shown >= WARN_SHOWN)
		return;
	ws->shown++;
	fprintf(stderr, "tracejoin import: %s\n", msg);
}

static int json_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name); /* not the locale's order */
}

/* A folder is read as its *.json files in name order. */
static int add_input(struct tj_jaeger *j, const char *arg, struct tj_err *err)
{
	struct stat st;
	if (strcmp(arg, "-") != 0 && stat(arg, &st) < 0)
		return tj_errf(err, TJ_E_IO, "%s: %s", arg, strerror(errno));
	if (strcmp(arg, "-") == 0 || !S_ISDIR(st.st_mode))
		return tj_jaeger_add_file(j, arg, err);
	struct dirent **names;
	int n = scandir(arg, &names, json_name, by_name);
	if (n < 0)
		return tj_errf(err, TJ_E_IO, "%s: %s", arg, strerror(errno));
	int rc = 0;
	if (n == 0)
		rc = tj_errf(err, TJ_E_ARG, "%s: no *.json files in this folder", arg);
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (rc == 0 && snprintf(path, sizeof(path), "%s/%s", arg,
					 names[i]->d_name) >= (int)sizeof(path))
			rc = tj_errf(err, TJ_E_ARG, "%s/%s: path too long", arg,
				     names[i]->d_name);
		if (rc == 0)
			rc = tj_jaeger_add_file(j, path, err);
		free(names[i]);
	}
	free(names);
	return rc;
}

/* The scenario name: the first input's last path component. */
static json_t *scenario_of(const char *arg)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", arg);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	const char *base = strrchr(buf, '/');
	base = base ? base + 1 : buf;
	size_t len = strlen(base);
	if (len > 5 && strcmp(base + len - 5, ".json") == 0)
		len -= 5;
	return json_stringn(base, len);
}

static int import_jaeger(char **inputs, int ninputs, const char *out,
			 const struct tj_jaeger_opts *opts, unsigned flags)
{
	struct tj_jaeger *j = NULL;
	struct tj_import_result r = { 0 };
	struct tj_err err = { 0 };
	json_t *fields = NULL, *params = NULL;
	/* an output that is one of the inputs is refused before reading */
	int rc = tj_out_check_inputs(out, 1, inputs, (size_t)ninputs, &err);
	if (rc < 0) {
		fprintf(stderr, "tracejoin import: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	rc = tj_jaeger_new(&j, opts, &err);
	for (int i = 0; i < ninputs && rc == 0; i++)
		rc = add_input(j, inputs[i], &err);
	if (rc == 0)
		rc = tj_jaeger_build(j, &r, &err);
	if (rc == 0) {
		const struct tj_jaeger_stats *s = tj_jaeger_stats(j);
		json_t *src = json_array();
		for (int i = 0; i < ninputs; i++)
			json_array_append_new(src, json_string(inputs[i]));
		fields = json_pack("{s:s, s:o, s:o}", "format", "jaeger",
				   "source", src, "scenario", scenario_of(inputs[0]));
		static const char *const kinds[] = { "auto", "tags", "infer" };
		params = json_pack("{s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
				   "keepalive", (json_int_t)opts->keepalive,
				   "kinds", kinds[opts->kinds],
				   "inferred_servers", (json_int_t)s->inferred_servers,
				   "nodes", opts->nodes == TJ_IMPORT_NODE_SERVICE ? "service" : "instance",
				   "message_bytes", (json_int_t)TJ_IMPORT_MSG_BYTES,
				   "server_port", (json_int_t)TJ_IMPORT_SERVER_PORT,
				   "traces", (json_int_t)s->traces,
				   "traces_skipped", (json_int_t)s->traces_skipped,
				   "files_refused", (json_int_t)s->files_refused,
				   "spans", (json_int_t)s->spans);
		if (!fields || !params)
			rc = tj_errf(&err, TJ_E_NOMEM, "import: out of memory");
	}
	if (rc == 0)
		rc = tj_import_write_dataset(&r, out, fields, params, flags, &err);
	const struct tj_jaeger_stats *s = j ? tj_jaeger_stats(j) : NULL;
	const struct warn_state *ws = opts->warn_ctx;
	if (s && s->warnings > ws->shown && !ws->quiet)
		fprintf(stderr, "tracejoin import: %llu warnings in all, the first %lu shown\n",
			(unsigned long long)s->warnings, ws->shown);
	if (rc < 0) {
		fprintf(stderr, "tracejoin import: %s\n", err.msg);
	} else {
		printf("import: %llu files (%llu refused); %llu calls on %llu connections "
		       "(%llu pool overflows); %llu root requests, %llu caller sides "
		       "synthesised, %llu server spans inferred (no span.kind), "
		       "%llu calls to unseen peers, %llu nested server spans "
		       "taken as in-process, %llu server spans outside their client span "
		       "(clock skew), %llu calls outliving their parent request\n",
		       (unsigned long long)s->files, (unsigned long long)s->files_refused,
		       (unsigned long long)s->calls, (unsigned long long)s->connections,
		       (unsigned long long)s->overflow_conns,
		       (unsigned long long)s->root_requests,
		       (unsigned long long)s->synth_callers,
		       (unsigned long long)s->inferred_servers,
		       (unsigned long long)s->unseen_callees,
		       (unsigned long long)s->nested_servers,
		       (unsigned long long)s->skewed, (unsigned long long)s->late_calls);
		printf("import: %llu traces (%llu skipped), %llu spans, %llu events, %llu labels\n",
		       (unsigned long long)s->traces,
		       (unsigned long long)s->traces_skipped,
		       (unsigned long long)s->spans, (unsigned long long)s->events,
		       (unsigned long long)s->labels);
	}
	int code = rc < 0 ? TJ_EXIT_FAIL : s->warnings ? TJ_EXIT_DAMAGED : TJ_EXIT_OK;
	json_decref(fields);
	json_decref(params);
	tj_import_result_free(&r);
	tj_jaeger_free(j);
	return code;
}

static int import_csv(const char *in, const char *out, int64_t node,
		      unsigned flags)
{
	struct tj_csv_import_stats st = { 0 };
	struct tj_err err = { 0 };
	if (tj_import_csv(in, out, node, flags, &st, &err) < 0) {
		fprintf(stderr, "tracejoin import: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	printf("import: %llu events of node %u written to %s\n",
	       (unsigned long long)st.rows, st.node, out);
	return TJ_EXIT_OK;
}

int cmd_import(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "keepalive", required_argument, NULL, 'k' },
		{ "nodes", required_argument, NULL, 'N' },
		{ "node", required_argument, NULL, 'n' },
		{ "kinds", required_argument, NULL, 'K' },
		{ "force", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = NULL, *out = NULL;
	struct warn_state ws = { 0 };
	struct tj_jaeger_opts jo = { .warn = print_warning, .warn_ctx = &ws };
	int64_t node = -1;
	unsigned flags = 0;
	int jaeger_only = 0, csv_only = 0, c;
	uint64_t v;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'o': out = optarg; break;
		case 'k':
			if (tj_parse_u64(optarg, 0, 4096, &v) < 0)
				return tj_usage("import", "--keepalive wants a count 0..4096, not '%s'",
						optarg);
			jo.keepalive = (unsigned)v;
			jaeger_only = 1;
			break;
		case 'N':
			if (strcmp(optarg, "instance") == 0)
				jo.nodes = TJ_IMPORT_NODE_INSTANCE;
			else if (strcmp(optarg, "service") == 0)
				jo.nodes = TJ_IMPORT_NODE_SERVICE;
			else
				return tj_usage("import", "--nodes wants 'instance' or 'service', not '%s'",
						optarg);
			jaeger_only = 1;
			break;
		case 'K':
			if (strcmp(optarg, "auto") == 0)
				jo.kinds = TJ_IMPORT_KINDS_AUTO;
			else if (strcmp(optarg, "tags") == 0)
				jo.kinds = TJ_IMPORT_KINDS_TAGS;
			else if (strcmp(optarg, "infer") == 0)
				jo.kinds = TJ_IMPORT_KINDS_INFER;
			else
				return tj_usage("import", "--kinds wants 'tags', 'infer' or 'auto', not '%s'",
						optarg);
			jaeger_only = 1;
			break;
		case 'n':
			if (tj_parse_u64(optarg, 0, UINT32_MAX, &v) < 0)
				return tj_usage("import", "--node wants a node id, not '%s'", optarg);
			node = (int64_t)v;
			csv_only = 1;
			break;
		case 'F': flags |= TJ_IMPORT_FORCE; break;
		case 'q': ws.quiet = 1; break;
		case ':':
			return tj_usage("import", "%s needs a value", argv[optind - 1]);
		default:
			return tj_usage("import", "unknown option %s", argv[optind - 1]);
		}
	}
	char **inputs = argv + optind;
	int ninputs = argc - optind;
	if (!format)
		return tj_usage("import", "--format jaeger or --format csv is required");
	if (!out)
		return tj_usage("import", "-o is required");
	if (ninputs < 1)
		return tj_usage("import", "no input given");
	if (strcmp(format, "jaeger") == 0) {
		if (csv_only)
			return tj_usage("import", "--node is for --format csv");
		return import_jaeger(inputs, ninputs, out, &jo, flags);
	}
	if (strcmp(format, "csv") == 0) {
		if (jaeger_only)
			return tj_usage("import", "--keepalive, --nodes and --kinds are for --format jaeger");
		if (ninputs != 1)
			return tj_usage("import", "--format csv takes one input file");
		return import_csv(inputs[0], out, node, flags);
	}
	return tj_usage("import", "unknown format '%s' (jaeger or csv)", format);
}
