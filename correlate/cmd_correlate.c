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
	"usage: tracejoin correlate --algo NAME|PLUGIN.so [options] DATASET_DIR | LOG...\n"
	"       tracejoin correlate --list\n"
	"\n"
	"Replay node logs (a dataset folder's node-*.evlog, or evlog files) through\n"
	"a correlator and write, for every client-side request (call), the inbound\n"
	"request on its node that caused it, as edges.csv (child,parent,score).\n"
	"Labels and manifests beside the logs are never read.\n"
	"\n"
	"options:\n"
	"  -a, --algo NAME|PATH  a built-in correlator (see --list) or a plugin .so\n"
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
		fprintf(f, "%-12s %s\n", all[i]->name,
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

int cmd_correlate(int argc, char **argv)
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
	const char *cmd = "correlate", *algo = NULL, *output = NULL, *train = NULL;
	int list = 0, traces = 0, explain = 0, force = 0, trust = 0;
	struct tj_params params = { 0 };
	struct tj_replay_opts ro = { 0 };

	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, ":a:p:lo:ft", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			algo = optarg;
			break;
		case 'p': {
			const char *why;
			if (tj_params_add_arg(&params, optarg, &why))
				return tj_usage(cmd, "--param %s: %s", optarg, why);
			break;
		}
		case 'l':
			list = 1;
			break;
		case 'o':
			output = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 't':
			traces = 1;
			break;
		case OPT_IDLE:
			if (tj_parse_seconds(optarg, &ro.idle_ns))
				return tj_usage(cmd, "--idle %s: seconds > 0 expected", optarg);
			break;
		case OPT_PAYLOAD:
			ro.keep_payload = 1;
			break;
		case OPT_TRAIN:
			train = optarg;
			break;
		case OPT_EXPLAIN:
			explain = 1;
			break;
		case OPT_TRUST:
			trust = 1;
			break;
		case ':':
			return tj_usage(cmd, "%s needs a value", argv[optind - 1]);
		default:
			return tj_usage(cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (list) {
		list_builtins(stdout);
		return TJ_EXIT_OK;
	}
	if (!algo)
		return tj_usage(cmd, "--algo NAME|PLUGIN.so is required");
	if (optind >= argc)
		return tj_usage(cmd, "no input: give a dataset folder or evlog files");

	struct tj_err err = { 0 };
	const struct tj_correlator *c;
	void *dl = NULL;
	if (tj_correlator_load(algo, trust ? TJ_LOAD_TRUST : 0, &c, &dl, &err)) {
		fprintf(stderr, "tracejoin correlate: %s\n", err.msg);
		return err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
	}

	/* --explain is the correlator's own "explain" param, where it has one. */
	if (explain) {
		const char *h = c->params_help;
		int has = h && (strncmp(h, "explain=", 8) == 0 || strstr(h, "\nexplain="));
		if (!has) {
			tj_correlator_unload(dl);
			return tj_usage(cmd, "--explain: correlator '%s' has nothing to explain", algo);
		}
		if (!tj_param_str(&params, "explain", NULL)) {
			if (params.n == TJ_PARAMS_MAX)
				return tj_usage(cmd, "more than %d --param", TJ_PARAMS_MAX);
			params.key[params.n] = "explain";
			params.val[params.n++] = "1";
		}
	}
	/* Refuse bad params before any output is opened, so a refused run
	 * leaves no half-written edges (not even a header on stdout). */
	void *probe = NULL;
	if (c->open(&probe, &params, &err)) {
		fprintf(stderr, "tracejoin correlate: %s\n", err.msg);
		tj_correlator_unload(dl);
		return err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
	}
	c->close(probe);

	struct tj_dataset ds = { 0 };
	char *train_arg[1];
	if (train && !c->train) {
		tj_correlator_unload(dl);
		return tj_usage(cmd, "--train: correlator '%s' does not train", algo);
	}
	if (train) {
		train_arg[0] = (char *)train;
		ds.dir = train;
		if (tj_replay_expand_inputs(train_arg, 1, &ds.logs, &ds.nlogs, &err)) {
			fprintf(stderr, "tracejoin correlate: --train %s\n", err.msg);
			tj_correlator_unload(dl);
			return TJ_EXIT_USAGE;
		}
		static const char lab[] = "/labels.csv";
		char *lp = malloc(strlen(train) + sizeof(lab));
		if (lp) {
			strcpy(lp, train);
			strcat(lp, lab);
		}
		ds.labels = lp;
	}

	/* Edges go to the file (or stdout); with --traces, into memory for
	 * the trees, and to the file only if -o named one. */
	struct tj_edge_writer_sink ws;
	struct tj_edge_set set = { 0 };
	struct tj_edge_set_sink ss;
	struct tj_edge_tee_sink tee;
	struct tj_edge_sink *out;
	int writing = !traces || output;
	int rc = TJ_EXIT_OK;
	/* every input, the training set too, is safe from the output */
	size_t nin = (size_t)(argc - optind);
	char **inputs = calloc(nin + 1, sizeof(*inputs));
	if (!inputs) {
		fprintf(stderr, "tracejoin correlate: out of memory\n");
		rc = TJ_EXIT_FAIL;
		goto done;
	}
	for (size_t i = 0; i < nin; i++)
		inputs[i] = argv[optind + (int)i];
	inputs[nin] = (char *)train;
	int wrc = writing ? tj_edge_writer_sink_open(&ws, output ? output : "-",
						      force ? TJ_OUT_FORCE : 0, inputs,
						      nin + (train != NULL), &err) : 0;
	free(inputs);
	if (wrc) {
		fprintf(stderr, "tracejoin correlate: %s\n", err.msg);
		rc = TJ_EXIT_FAIL; /* an output refused: exit 1, as every command (DECISIONS.md) */
		goto done;
	}
	tj_edge_set_sink_init(&ss, &set);
	if (traces && writing) {
		tj_edge_tee_sink_init(&tee, &ws.sink, &ss.sink);
		out = &tee.sink;
	} else {
		out = traces ? &ss.sink : &ws.sink;
	}

	struct tj_correlate_stats st;
	int r = tj_correlate_run(c, &params, train ? &ds : NULL, argv + optind,
				 (size_t)(argc - optind), &ro, out, &st, &err);
	if (r) {
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
	if (traces && tj_traces_print(stdout, argv + optind, (size_t)(argc - optind),
				      &ro, &set, &err)) {
		fprintf(stderr, "tracejoin correlate: --traces: %s\n", err.msg);
		rc = TJ_EXIT_FAIL;
		goto done;
	}
	if (st.replay.lost_events || st.replay.gaps || st.unanswered)
		fprintf(stderr, "correlate: %" PRIu64 " messages, %" PRIu64 " calls, %" PRIu64
			" gaps, %" PRIu64 " events lost in capture, %" PRIu64
			" calls unanswered by the correlator\n",
			st.messages, st.calls, st.replay.gaps, st.replay.lost_events,
			st.unanswered);
	if (st.replay.cut || st.replay.unknown_role)
		fprintf(stderr, "correlate: sockets open before capture: %" PRIu64
			" messages cut by capture start (never requests), %" PRIu64
			" messages on sockets of unknown side (neither requests nor calls)\n",
			st.replay.cut, st.replay.unknown_role);
	/* the last line, in a fixed form scripts may parse; M from CPU time */
	double mevs = st.cpu_seconds > 0 ? st.events / st.cpu_seconds / 1e6 : 0.0;
	fprintf(stderr, "correlate: algo %s, %" PRIu64 " events, %.2f Mev/s, %.0f MB peak\n",
		c->name, st.events, mevs, st.peak_rss_mb);
	if (st.replay.damaged_logs)
		rc = TJ_EXIT_DAMAGED;
done:
	tj_edges_free(&set);
	for (size_t i = 0; i < ds.nlogs; i++)
		free(ds.logs[i]);
	free(ds.logs);
	free((char *)ds.labels);
	tj_correlator_unload(dl);
	return rc;
}
