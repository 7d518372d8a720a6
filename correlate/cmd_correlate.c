/* tracejoin correlate: run a correlator over node logs, write its edges. */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host.h"
#include "traces.h"
#include "../lib/util.h"
#include "../cli/commands.h"

static const char usage_text[] =
	"usage: tracejoin correlate [--algo NAME|PLUGIN.so] [options] DATASET_DIR | LOG...\n"
	"       tracejoin correlate --list\n"
	"\n"
	"Replay node logs (a dataset folder's node-*.evlog, or evlog files) through\n"
	"a correlator and write, for every client-side request (call), the inbound\n"
	"request on its node that caused it, as edges.csv (child,parent,score).\n"
	"Labels and manifests beside the logs are never read.\n"
	"\n"
	"options:\n"
	"  -a, --algo NAME|PATH  a built-in correlator (see --list) or a plugin .so;\n"
	"                        without it, or with 'default', the default one\n"
	"                        (marked in --list; chosen by the benchmark tables)\n"
	"                        (refused if a user other than root or you could\n"
	"                        have written it or its folders)\n"
	"      --trust-plugin    load the plugin whoever could write it\n"
	"  -p, --param K=V       a correlator parameter (repeatable)\n"
	"  -l, --list            list the built-in correlators and their params\n"
	"  -o, --output FILE     write edges here (default: stdout); it appears\n"
	"                        only when the run succeeds\n"
	"  -f, --force           replace an existing FILE\n"
	"  -t, --traces          print the reconstructed call trees (indented text),\n"
	"                        then '# unjoined KEY: reason' for every call not\n"
	"                        joined with a request on another node\n"
	"                        instead of edges, or besides them with -o\n"
	"      --idle S          the replay's idle rule, seconds (default 2)\n"
	"      --payload         pass payload prefixes on (trace headers masked)\n"
	"      --train DIR       train the correlator on a labeled dataset first\n"
	"      --explain         print what the correlator learned (its fitted\n"
	"                        model) on stderr; = --param explain=1\n"
	"  -h, --help            this help\n"
	"\n"
	"On stderr at the end: 'correlate: algo A, E events, M Mev/s, P MB peak'\n"
	"(M from CPU time).  Exit 0 ok, 1 failure, 2 usage, 3 a log was damaged\n"
	"(edges written from what could be read).\n";

void cmd_correlate_help(void)
{
	fputs(usage_text, stdout);
}

static void list_builtins(FILE *f)
{
	const struct tj_correlator *all[16];
	size_t n = tj_correlator_builtins(all, 16);
	for (size_t i = 0; i < n && i < 16; i++) {
		int dflt = strcmp(all[i]->name, TJ_CORRELATOR_DEFAULT) == 0;
		fprintf(f, "%-12s %s%s\n", all[i]->name, dflt ? "(default) " : "",
			all[i]->description ? all[i]->description : "");
		const char *h = all[i]->params_help;
		while (h && *h) { /* one param per line, indented */
			const char *nl = strchr(h, '\n');
			int len = nl ? (int)(nl - h) : (int)strlen(h);
			fprintf(f, "%-12s   --param %.*s\n", "", len, h);
			h = nl ? nl + 1 : NULL;
		}
	}
	fprintf(f, "\nA plugin is any shared object exporting '%s' (correlate/README.md).\n",
		TJ_CORRELATOR_SYMBOL);
}

struct correlate_opts {
	const char *algo, *output, *train;
	int list, traces, explain, force, trust;
	struct tj_params params;
	struct tj_replay_opts ro;
	char **inputs;     /* the operands: dataset folders or evlogs */
	size_t ninputs;
};

static const char *const cmd = "correlate";

/* Options into *o; 0, or the exit status of a usage error. */
static int parse_opts(int argc, char **argv, struct correlate_opts *o)
{
	enum { OPT_IDLE = 256, OPT_PAYLOAD, OPT_TRAIN, OPT_EXPLAIN, OPT_TRUST };
	static const struct option longopts[] = {
		{ "algo", required_argument, NULL, 'a' },
		{ "param", required_argument, NULL, 'p' },
		{ "list", no_argument, NULL, 'l' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "traces", no_argument, NULL, 't' },
		{ "idle", required_argument, NULL, OPT_IDLE },
		{ "payload", no_argument, NULL, OPT_PAYLOAD },
		{ "train", required_argument, NULL, OPT_TRAIN },
		{ "explain", no_argument, NULL, OPT_EXPLAIN },
		{ "trust-plugin", no_argument, NULL, OPT_TRUST },
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":a:p:lo:ft", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a': o->algo = optarg; break;
		case 'p':
			if (tj_params_add_arg(&o->params, optarg, &why))
				return tj_usage(cmd, "--param %s: %s", optarg, why);
			break;
		case 'l': o->list = 1; break;
		case 'o': o->output = optarg; break;
		case 'f': o->force = 1; break;
		case 't': o->traces = 1; break;
		case OPT_IDLE:
			if (tj_parse_seconds(optarg, &o->ro.idle_ns))
				return tj_usage(cmd, "--idle %s: seconds > 0 expected", optarg);
			break;
		case OPT_PAYLOAD: o->ro.keep_payload = 1; break;
		case OPT_TRAIN: o->train = optarg; break;
		case OPT_EXPLAIN: o->explain = 1; break;
		case OPT_TRUST: o->trust = 1; break;
		case ':':
			return tj_usage(cmd, "%s needs a value", argv[optind - 1]);
		default:
			return tj_usage(cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	o->inputs = argv + optind;
	o->ninputs = (size_t)(argc - optind);
	if (o->list)
		return 0;
	if (!o->algo)
		o->algo = "default";
	if (o->ninputs == 0)
		return tj_usage(cmd, "no input: give a dataset folder or evlog files");
	return 0;
}

/* Load the correlator and check its params (with --explain's) before
 * any output is opened, so a refused run leaves no half-written edges
 * (not even a header on stdout).  On failure nothing stays loaded. */
static int load_correlator(struct correlate_opts *o, const struct tj_correlator **c,
			   void **dl)
{
	struct tj_err err = { 0 };

	if (tj_correlator_load(o->algo, o->trust ? TJ_LOAD_TRUST : 0, c, dl, &err)) {
		fprintf(stderr, "tracejoin correlate: %s\n", err.msg);
		return err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
	}
	/* --explain is the correlator's own "explain" param, where it has one. */
	if (o->explain) {
		const char *h = (*c)->params_help;
		int has = h && (strncmp(h, "explain=", 8) == 0 || strstr(h, "\nexplain="));
		if (!has) {
			tj_correlator_unload(*dl);
			return tj_usage(cmd, "--explain: correlator '%s' has nothing to explain",
					o->algo);
		}
		if (!tj_param_str(&o->params, "explain", NULL)) {
			if (o->params.n == TJ_PARAMS_MAX) {
				tj_correlator_unload(*dl);
				return tj_usage(cmd, "more than %d --param", TJ_PARAMS_MAX);
			}
			o->params.key[o->params.n] = "explain";
			o->params.val[o->params.n++] = "1";
		}
	}
	void *probe = NULL;
	if ((*c)->open(&probe, &o->params, &err)) {
		fprintf(stderr, "tracejoin correlate: %s\n", err.msg);
		tj_correlator_unload(*dl);
		return err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
	}
	(*c)->close(probe);
	return TJ_EXIT_OK;
}

/* --train FOLDER: its logs and labels.csv into *ds (freed by
 * free_training_set on any outcome). */
static int load_training_set(const struct correlate_opts *o,
			     const struct tj_correlator *c, struct tj_dataset *ds)
{
	struct tj_err err = { 0 };
	char *train_arg[1] = { (char *)o->train };

	if (!c->train)
		return tj_usage(cmd, "--train: correlator '%s' does not train", o->algo);
	ds->dir = o->train;
	if (tj_replay_expand_inputs(train_arg, 1, &ds->logs, &ds->nlogs, &err)) {
		fprintf(stderr, "tracejoin correlate: --train %s\n", err.msg);
		return TJ_EXIT_USAGE;
	}
	static const char lab[] = "/labels.csv";
	char *lp = malloc(strlen(o->train) + sizeof(lab));
	if (lp) {
		strcpy(lp, o->train);
		strcat(lp, lab);
	}
	ds->labels = lp;
	return TJ_EXIT_OK;
}

static void free_training_set(struct tj_dataset *ds)
{
	for (size_t i = 0; i < ds->nlogs; i++)
		free(ds->logs[i]);
	free(ds->logs);
	free((char *)ds->labels);
}

/* Open the edges output; every input, the training set too, is safe
 * from it. */
static int open_output(const struct correlate_opts *o, struct tj_edge_writer_sink *ws)
{
	struct tj_err err = { 0 };
	char **inputs = calloc(o->ninputs + 1, sizeof(*inputs));

	if (!inputs) {
		fprintf(stderr, "tracejoin correlate: out of memory\n");
		return TJ_EXIT_FAIL;
	}
	for (size_t i = 0; i < o->ninputs; i++)
		inputs[i] = o->inputs[i];
	inputs[o->ninputs] = (char *)o->train;
	int wrc = tj_edge_writer_sink_open(ws, o->output ? o->output : "-",
					   o->force ? TJ_OUT_FORCE : 0, inputs,
					   o->ninputs + (o->train != NULL), &err);
	free(inputs);
	if (wrc) {
		fprintf(stderr, "tracejoin correlate: %s\n", err.msg);
		return TJ_EXIT_FAIL; /* an output refused: exit 1, as every command (DECISIONS.md) */
	}
	return TJ_EXIT_OK;
}

/* What the replay met and the run cost, on stderr. */
static void print_stats(const struct tj_correlate_stats *st, const char *name)
{
	if (st->replay.lost_events || st->replay.gaps || st->unanswered)
		fprintf(stderr, "correlate: %" PRIu64 " messages, %" PRIu64 " calls, %" PRIu64
			" gaps, %" PRIu64 " events lost in capture, %" PRIu64
			" calls unanswered by the correlator\n",
			st->messages, st->calls, st->replay.gaps, st->replay.lost_events,
			st->unanswered);
	if (st->replay.cut || st->replay.unknown_role)
		fprintf(stderr, "correlate: sockets open before capture: %" PRIu64
			" messages cut by capture start (never requests), %" PRIu64
			" messages on sockets of unknown side (neither requests nor calls)\n",
			st->replay.cut, st->replay.unknown_role);
	/* the last line, in a fixed form scripts may parse; M from CPU time */
	double mevs = st->cpu_seconds > 0 ? st->events / st->cpu_seconds / 1e6 : 0.0;
	fprintf(stderr, "correlate: algo %s, %" PRIu64 " events, %.2f Mev/s, %.0f MB peak\n",
		name, st->events, mevs, st->peak_rss_mb);
}

/* Run the loaded correlator over the inputs.  Edges go to the file (or
 * stdout); with --traces, into memory for the trees, and to the file
 * only if -o named one. */
static int correlate(const struct correlate_opts *o, const struct tj_correlator *c,
		     const struct tj_dataset *ds)
{
	struct tj_err err = { 0 };
	struct tj_edge_writer_sink ws;
	struct tj_edge_set set = { 0 };
	struct tj_edge_set_sink ss;
	struct tj_edge_tee_sink tee;
	struct tj_edge_sink *out;
	struct tj_correlate_stats st;
	int writing = !o->traces || o->output;
	int rc = TJ_EXIT_OK;

	if (writing && (rc = open_output(o, &ws)) != TJ_EXIT_OK)
		return rc;
	tj_edge_set_sink_init(&ss, &set);
	if (o->traces && writing) {
		tj_edge_tee_sink_init(&tee, &ws.sink, &ss.sink);
		out = &tee.sink;
	} else {
		out = o->traces ? &ss.sink : &ws.sink;
	}
	if (tj_correlate_run(c, &o->params, o->train ? ds : NULL, o->inputs, o->ninputs,
			     &o->ro, out, &st, &err)) {
		fprintf(stderr, "tracejoin correlate: %s\n",
			writing && ws.err.code ? ws.err.msg : err.msg);
		if (writing)
			tj_edge_writer_sink_abort(&ws);
		rc = err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
		/* a correlator that broke the rules is a failure, not usage */
		if (strncmp(err.msg, "correlator '", 12) == 0)
			rc = TJ_EXIT_FAIL;
		/* a log cut inside its header is damaged input, as info says */
		if (err.code == TJ_E_DAMAGED)
			rc = TJ_EXIT_DAMAGED;
		goto done;
	}
	if (writing && tj_edge_writer_sink_close(&ws, &err)) {
		fprintf(stderr, "tracejoin correlate: %s\n", err.msg);
		rc = TJ_EXIT_FAIL;
		goto done;
	}
	if (o->traces && tj_traces_print(stdout, o->inputs, o->ninputs, &o->ro, &set, &err)) {
		fprintf(stderr, "tracejoin correlate: --traces: %s\n", err.msg);
		rc = TJ_EXIT_FAIL;
		goto done;
	}
	print_stats(&st, c->name);
	if (st.replay.damaged_logs)
		rc = TJ_EXIT_DAMAGED;
done:
	tj_edges_free(&set);
	return rc;
}

int cmd_correlate(int argc, char **argv)
{
	struct correlate_opts o = { 0 };
	struct tj_dataset ds = { 0 };
	const struct tj_correlator *c;
	void *dl = NULL;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc;
	if (o.list) {
		list_builtins(stdout);
		return TJ_EXIT_OK;
	}
	if ((rc = load_correlator(&o, &c, &dl)) != TJ_EXIT_OK)
		return rc;
	if (!o.train || (rc = load_training_set(&o, c, &ds)) == TJ_EXIT_OK)
		rc = correlate(&o, c, &ds);
	free_training_set(&ds);
	tj_correlator_unload(dl);
	return rc;
}
