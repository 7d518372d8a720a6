/* tracejoin export: reconstructed traces for OTLP, Jaeger and Perfetto. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "export.h"
#include "stream.h"
#include "../cli/commands.h"
#include "../correlate/host.h"
#include "../lib/outfile.h"
#include "../lib/util.h"

static const char usage_text[] =
	"usage: tracejoin export --format otlp|jaeger|perfetto DATASET\n"
	"                        (--edges EDGES.csv | --algo NAME [--param K=V]...)\n"
	"                        [--truth LABELS.csv] [--traces N | --root KEY]\n"
	"                        -o FILE [--force]\n"
	"\n"
	"Write the traces a correlator reconstructed for a trace viewer: one server\n"
	"span per inbound request, one client span per call, parent links from the\n"
	"edges (a call's) and from the cross-node join (a request's), times from\n"
	"the events (wall clock from each log's clock pair), services from the\n"
	"dataset's manifest or the logs' host names (else node-N).\n"
	"\n"
	"formats:\n"
	"  otlp       OTLP/JSON ExportTraceServiceRequests, one per line of whole\n"
	"             traces (a Collector's otlpjsonfile receiver; or POST each line\n"
	"             to /v1/traces); ids derived from the message keys\n"
	"  jaeger     Jaeger query API JSON, what the Jaeger UI's \"upload JSON\"\n"
	"             opens and `tracejoin import --format jaeger` reads\n"
	"  perfetto   Chrome trace events for ui.perfetto.dev / chrome://tracing\n"
	"\n"
	"options:\n"
	"  -f, --format F        otlp, jaeger or perfetto (required)\n"
	"  -e, --edges FILE      a correlator's edges.csv for DATASET\n"
	"  -a, --algo NAME|PATH  run this correlator instead (built-in or plugin .so)\n"
	"  -p, --param K=V       a correlator parameter (repeatable, with --algo)\n"
	"      --trust-plugin    load the --algo plugin whoever could write it\n"
	"      --truth FILE      labels.csv: every call says whether its parent link\n"
	"                        agrees (tracejoin.correct; red/green in perfetto)\n"
	"  -n, --traces N        only the first N traces (by start)\n"
	"  -r, --root KEY        only the trace that holds message KEY\n"
	"  -o, --output FILE     where to write ('-' = stdout); required\n"
	"      --force           replace FILE if it exists\n"
	"      --idle S          the replay's idle rule, seconds (default 2): the\n"
	"                        one the edges were made with\n"
	"      --window S        how long (seconds, default: the idle rule) the\n"
	"                        streamed export waits after a trace's last span\n"
	"                        for late links before writing it; clocks skewed\n"
	"                        by more than that need more (stderr says so)\n"
	"  -h, --help            this help\n"
	"\n"
	"Traces are streamed: each is written once nothing more can join it, so\n"
	"memory is bounded by what is in flight.  What the stream cannot be sure\n"
	"of (a link to a trace already written, NAT, capture --tag, bad edges)\n"
	"is done by an in-memory model instead (same output; stderr says why).\n"
	"FILE is written beside itself under a temporary name and renamed when\n"
	"complete.  On stderr at the end: 'export: F, S spans, T traces, W wrong,\n"
	"X spans/s, P MB peak'.  Exit 0 ok, 1 failure (bad edges, I/O), 2 usage,\n"
	"3 a log was damaged (traces written from what could be read).\n";

void cmd_export_help(void)
{
	fputs(usage_text, stdout);
}

static int parse_format(const char *s, int *f)
{
	static const char *const names[] = { "otlp", "jaeger", "perfetto" };
	for (int i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*f = i;
			return 0;
		}
	return -1;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Open the output (a temporary file beside it, or stdout): an exit code,
 * TJ_EXIT_OK with *of its stream. */
static int open_output(struct tj_outfile *out, const char *output, int force,
		       char *const *inputs, size_t ninputs, FILE **of)
{
	struct tj_err err = { 0 };
	if (tj_outfile_open(out, output, force ? TJ_OUT_FORCE : 0, 0666, inputs, ninputs,
			    &err)) {
		fprintf(stderr, "tracejoin export: %s\n", err.msg);
		return err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
	}
	if (!(*of = tj_outfile_stream(out, &err))) {
		fprintf(stderr, "tracejoin export: %s\n", err.msg);
		tj_outfile_abort(out);
		return TJ_EXIT_FAIL;
	}
	return TJ_EXIT_OK;
}

static int read_truth(struct tj_edge_set *truth, const char *path)
{
	struct tj_err err = { 0 };
	if (!tj_edges_read(truth, path, &err))
		return 0;
	fprintf(stderr, "tracejoin export: --truth %s\n", err.msg);
	return -1;
}

/* Copy what scratch holds to out (stdout): 0, or errno. */
static int copy_out(FILE *scratch, FILE *out)
{
	char buf[1 << 16];
	size_t n;
	rewind(scratch);
	while ((n = fread(buf, 1, sizeof(buf), scratch)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			return errno ? errno : EIO;
	return ferror(scratch) ? EIO : 0;
}

/* The streamed export into of (the output's temporary file) or, when
 * the output is written in place (stdout), into a scratch file copied
 * out at the end.  An exit code, or TJ_XSTREAM_GAVE_UP with of empty
 * again and xs->gave_up saying why. */
static int export_streamed(struct tj_outfile *out, FILE *of, const char *output,
			   const struct tj_xstream_opts *so, char *const *inputs, size_t ninputs,
			   struct tj_xstream_stats *xs, struct jw *w, double cpu0, int *opened)
{
	static const char *const names[] = { "otlp", "jaeger", "perfetto" };
	struct tj_err err = { 0 }, ignore;
	FILE *sf = out->in_place ? tmpfile() : of;
	if (!sf || jw_open(w, sf)) {
		fprintf(stderr, "tracejoin export: %s\n", sf ? "out of memory" : strerror(errno));
		if (sf && sf != of)
			fclose(sf);
		return TJ_EXIT_FAIL;
	}
	int r = tj_xstream_export(inputs, ninputs, so, w, xs, &err);
	if (r == TJ_XSTREAM_GAVE_UP) {
		jw_close(w, output, &ignore);
		if (sf != of)
			fclose(sf);
		else if (fflush(of) || ftruncate(fileno(of), 0) || fseek(of, 0, SEEK_SET)) {
			fprintf(stderr, "tracejoin export: %s: %s\n", output, strerror(errno));
			return TJ_EXIT_FAIL;
		}
		return TJ_XSTREAM_GAVE_UP;
	}
	int e = 0;
	if (r || jw_close(w, output, &err) || (sf != of && (e = copy_out(sf, of)) != 0) ||
	    (*opened = 0, tj_outfile_commit(out, &err))) {
		if (w->buf)
			jw_close(w, output, &ignore);
		if (!err.code)
			tj_errf(&err, TJ_E_IO, "%s: %s", output, strerror(e ? e : EIO));
		fprintf(stderr, "tracejoin export: %s\n", err.msg);
		if (sf != of)
			fclose(sf);
		return TJ_EXIT_FAIL;
	}
	if (sf != of)
		fclose(sf);
	double cpu1 = cpu_now();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "export: %s, %" PRIu64 " spans, %" PRIu64 " traces, %" PRIu64 " wrong, "
			"%.0f spans/s, %.0f MB peak (streamed: at most %" PRIu64 " spans and %" PRIu64
			" connections held)\n",
		names[so->format], xs->spans, xs->traces, xs->wrong,
		cpu1 > cpu0 ? xs->spans / (cpu1 - cpu0) : 0.0, ru.ru_maxrss / 1024.0,
		xs->peak_spans, xs->peak_sockets);
	return xs->damaged ? TJ_EXIT_DAMAGED : TJ_EXIT_OK;
}

int cmd_export(int argc, char **argv)
{
	enum { OPT_TRUTH = 256, OPT_FORCE, OPT_IDLE, OPT_TRUST, OPT_WINDOW };
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "edges", required_argument, NULL, 'e' },
		{ "algo", required_argument, NULL, 'a' },
		{ "param", required_argument, NULL, 'p' },
		{ "truth", required_argument, NULL, OPT_TRUTH },
		{ "traces", required_argument, NULL, 'n' },
		{ "root", required_argument, NULL, 'r' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "idle", required_argument, NULL, OPT_IDLE },
		{ "trust-plugin", no_argument, NULL, OPT_TRUST },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "export", *edges_path = NULL, *algo = NULL, *truth_path = NULL;
	const char *output = NULL, *root_text = NULL;
	int format = -1, force = 0, trust = 0;
	uint64_t max_traces = 0, window_ns = 0;
	struct tj_params params = { 0 };
	struct tj_replay_opts ro = { 0 };

	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, ":f:e:a:p:n:r:o:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (parse_format(optarg, &format))
				return tj_usage(cmd, "--format %s: otlp, jaeger or perfetto expected", optarg);
			break;
		case 'e':
			edges_path = optarg;
			break;
		case 'a':
			algo = optarg;
			break;
		case 'p': {
			const char *why;
			if (tj_params_add_arg(&params, optarg, &why))
				return tj_usage(cmd, "--param %s: %s", optarg, why);
			break;
		}
		case OPT_TRUTH:
			truth_path = optarg;
			break;
		case 'n':
			if (tj_parse_u64(optarg, 1, UINT32_MAX, &max_traces))
				return tj_usage(cmd, "--traces %s: a count >= 1 expected", optarg);
			break;
		case 'r':
			root_text = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_FORCE:
			force = 1;
			break;
		case OPT_TRUST:
			trust = 1;
			break;
		case OPT_IDLE: /* as correlate's: the same idle rule gives the same keys */
			if (tj_parse_seconds(optarg, &ro.idle_ns))
				return tj_usage(cmd, "--idle %s: seconds > 0 expected", optarg);
			break;
		case OPT_WINDOW:
			if (tj_parse_seconds(optarg, &window_ns))
				return tj_usage(cmd, "--window %s: seconds > 0 expected", optarg);
			break;
		case ':':
			return tj_usage(cmd, "%s needs a value", argv[optind - 1]);
		default:
			return tj_usage(cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (format < 0)
		return tj_usage(cmd, "--format otlp|jaeger|perfetto is required");
	if (!edges_path == !algo)
		return tj_usage(cmd, "give exactly one of --edges FILE and --algo NAME");
	if (params.n && !algo)
		return tj_usage(cmd, "--param goes with --algo");
	if (trust && !algo)
		return tj_usage(cmd, "--trust-plugin goes with --algo");
	if (max_traces && root_text)
		return tj_usage(cmd, "--traces and --root exclude each other");
	struct tj_msgkey root_key;
	if (root_text && tj_msgkey_parse(root_text, &root_key))
		return tj_usage(cmd, "--root %s: a message key node:sock:dir:offset expected",
				root_text);
	if (!output)
		return tj_usage(cmd, "-o FILE is required ('-' for stdout)");
	if (optind >= argc)
		return tj_usage(cmd, "no input: give a dataset folder or evlog files");
	char *const *inputs = argv + optind;
	size_t ninputs = (size_t)(argc - optind);
	/* what the output must not be: the logs or dataset, edges, labels */
	char *all_inputs[ninputs + 2];
	size_t nall = 0;
	for (size_t i = 0; i < ninputs; i++)
		all_inputs[nall++] = inputs[i];
	if (edges_path)
		all_inputs[nall++] = (char *)edges_path;
	if (truth_path)
		all_inputs[nall++] = (char *)truth_path;

	struct tj_err err = { 0 };
	if (tj_out_check_inputs(output, 0, all_inputs, nall, &err))
		return tj_usage(cmd, "-o %s", err.msg);
	struct tj_edge_set edges = { 0 }, truth = { 0 };
	struct tj_xmodel m = { 0 };
	struct tj_outfile out = { 0 };
	struct jw w = { 0 };
	int rc = TJ_EXIT_OK, opened = 0;
	double cpu0 = cpu_now();

	/* A refused run leaves nothing behind: the output is a temporary
	 * file until it is whole.  An edges file is read whole only by the
	 * in-memory model: the stream reads it as the calls need it, and
	 * gives what it cannot read to the model, which says what is wrong. */
	int stream_files = !root_text;
	if (edges_path) {
		if ((!stream_files || strcmp(edges_path, "-") == 0) &&
		    tj_edges_read(&edges, edges_path, &err)) {
			fprintf(stderr, "tracejoin export: %s\n", err.msg);
			rc = TJ_EXIT_FAIL;
			goto done;
		}
	} else {
		const struct tj_correlator *c;
		void *dl = NULL;
		struct tj_edge_set_sink ss;
		struct tj_correlate_stats cs;
		if (tj_correlator_load(algo, trust ? TJ_LOAD_TRUST : 0, &c, &dl, &err)) {
			fprintf(stderr, "tracejoin export: %s\n", err.msg);
			return err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
		}
		tj_edge_set_sink_init(&ss, &edges);
		int r = tj_correlate_run(c, &params, NULL, inputs, ninputs, &ro, &ss.sink,
					 &cs, &err);
		tj_correlator_unload(dl);
		if (r) {
			fprintf(stderr, "tracejoin export: %s\n", err.msg);
			rc = err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
			goto done;
		}
		edges_path = algo;
	}
	if (truth_path && (!stream_files || strcmp(truth_path, "-") == 0) &&
	    read_truth(&truth, truth_path))
		goto done_fail;
	const char *gave_up = NULL;
	FILE *of = NULL;
	if (!root_text) {
		/* Streamed: memory bounded by what is in flight (stream.h).  Into
		 * the output's temporary file, or for stdout a scratch file
		 * copied out at the end: when streaming gives up (stderr says
		 * why), the in-memory model writes the output instead. */
		if ((rc = open_output(&out, output, force, all_inputs, nall, &of)))
			goto done;
		opened = 1;
		tj_malloc_keep_freed(); /* per-block buffers, reused not refaulted */
		struct tj_xstream_opts so = { .format = format, .replay = &ro,
					      .max_traces = max_traces, .window_ns = window_ns };
		if (algo || strcmp(edges_path, "-") == 0)
			so.edges = &edges;
		else
			so.edges_path = edges_path;
		if (truth_path && strcmp(truth_path, "-") == 0)
			so.truth = &truth;
		else
			so.truth_path = truth_path;
		struct tj_xstream_stats xs;
		rc = export_streamed(&out, of, output, &so, inputs, ninputs, &xs, &w, cpu0,
				     &opened);
		if (rc != TJ_XSTREAM_GAVE_UP)
			goto done;
		rc = TJ_EXIT_OK;
		gave_up = xs.gave_up;
		if (so.edges_path && tj_edges_read(&edges, edges_path, &err)) {
			fprintf(stderr, "tracejoin export: %s\n", err.msg);
			rc = TJ_EXIT_FAIL;
			goto done;
		}
		if (so.truth_path && read_truth(&truth, truth_path))
			goto done_fail;
	}
	struct tj_xmodel_opts mo = { .edges = &edges, .edges_name = edges_path,
				     .truth = truth_path ? &truth : NULL,
				     .truth_name = truth_path, .replay = &ro };
	if (tj_xmodel_build(&m, inputs, ninputs, &mo, &err)) {
		fprintf(stderr, "tracejoin export: %s\n", err.msg);
		rc = err.code == TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
		goto done;
	}
	struct tj_export_sel sel = { .max_traces = max_traces, .root = TJ_XSPAN_NONE };
	if (root_text) {
		uint32_t s = tj_xmodel_find(&m, &root_key);
		if (s == TJ_XSPAN_NONE) {
			fprintf(stderr, "tracejoin export: --root %s: no such request or call "
					"in the dataset\n", root_text);
			rc = TJ_EXIT_USAGE;
			goto done;
		}
		sel.root = m.spans[s].trace;
	}
	if (!opened) {
		if ((rc = open_output(&out, output, force, all_inputs, nall, &of)))
			goto done;
		opened = 1;
	}
	if (!of || jw_open(&w, of)) {
		fprintf(stderr, "tracejoin export: out of memory\n");
		rc = TJ_EXIT_FAIL;
		goto done;
	}
	double wcpu0 = cpu_now();
	int r = tj_export_model(&m, format, &sel, &w, &err);
	if (r || jw_close(&w, output, &err) || (opened = 0, tj_outfile_commit(&out, &err))) {
		if (!err.code)
			tj_errf(&err, TJ_E_IO, "%s: %s", output, strerror(w.failed ? w.failed : EIO));
		fprintf(stderr, "tracejoin export: %s\n", err.msg);
		rc = TJ_EXIT_FAIL;
		goto done;
	}
	opened = 0;
	double cpu1 = cpu_now();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	size_t nspans = sel.spans_out, ntraces = sel.traces_out;
	if (m.cycles_cut)
		fprintf(stderr, "export: %" PRIu64 " parent links dropped: they made a cycle\n",
			m.cycles_cut);
	fprintf(stderr, "export: %s, %zu spans, %zu traces, %" PRIu64 " wrong, "
			"%.0f spans/s written, %.0f spans/s overall, %.0f MB peak\n",
		(const char *[]){ "otlp", "jaeger", "perfetto" }[format], nspans, ntraces,
		m.wrong, cpu1 > wcpu0 ? nspans / (cpu1 - wcpu0) : 0.0,
		cpu1 > cpu0 ? nspans / (cpu1 - cpu0) : 0.0, ru.ru_maxrss / 1024.0);
	if (gave_up)
		fprintf(stderr, "export: not streamed (%s): the in-memory model wrote it\n", gave_up);
	if (m.damaged)
		rc = TJ_EXIT_DAMAGED;
	goto done;
done_fail:
	rc = TJ_EXIT_FAIL;
done:
	if (w.buf) {
		struct tj_err ignore;
		jw_close(&w, output, &ignore);
	}
	if (opened)
		tj_outfile_abort(&out);
	tj_xmodel_free(&m);
	tj_edges_free(&edges);
	tj_edges_free(&truth);
	return rc;
}
