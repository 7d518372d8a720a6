/* tracejoin: one binary, subcommands in the manner of git and perf. */
#include <stdio.h>
#include <string.h>
#include "commands.h"
#include "../lib/error.h"
#include "../lib/outfile.h"
#include "../lib/version.h"

/* git's command table: the dispatcher, not each command, answers
 * `tracejoin help COMMAND` and `tracejoin COMMAND -h|--help`. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	void (*help)(void);
	const char *summary;
};

static const struct command commands[] = {
	{ "capture", cmd_capture, cmd_capture_help,
	  "record socket events of this machine with eBPF into an evlog" },
	{ "info", cmd_info, cmd_info_help,
	  "summarise event logs: header, time span, counts, integrity" },
	{ "dump", cmd_dump, cmd_dump_help,
	  "print the events of a log, one per line or as CSV" },
	{ "gen", cmd_gen, cmd_gen_help,
	  "generate a labeled synthetic dataset from a scenario" },
	{ "import", cmd_import, cmd_import_help,
	  "turn outside traces (Jaeger JSON, event CSV) into datasets or logs" },
	{ "label", cmd_label, cmd_label_help,
	  "label a capture made with --payload from its traceparent headers" },
	{ "correlate", cmd_correlate, cmd_correlate_help,
	  "run a correlator over logs and write its edges" },
	{ "score", cmd_score, cmd_score_help,
	  "score edges against labels" },
	{ "train", cmd_train, cmd_train_help,
	  "train a correlator's model on labeled datasets" },
	{ "features", cmd_features, cmd_features_help,
	  "export (candidate parent, call) features as CSV" },
	{ "export", cmd_export, cmd_export_help,
	  "write reconstructed traces as OTLP, Jaeger or Perfetto JSON" },
	{ "bench", cmd_bench, cmd_bench_help,
	  "run every correlator on the dataset suite and report" },
	{ NULL, NULL, NULL, NULL },
};

/* True if argv holds -h or --help before any "--" (what follows "--" is
 * capture's COMMAND and its own arguments). */
static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: tracejoin [--version] [help] COMMAND [ARGS]\n\n"
		   "Black-box distributed tracing: capture socket events, infer\n"
		   "which request caused which call, and score how well.\n\n"
		   "commands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\n'tracejoin help COMMAND' or 'tracejoin COMMAND --help' "
		   "tells more.\n");
}

static const struct command *find(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int dispatch(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return TJ_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("tracejoin %s\n", tj_version);
		return TJ_EXIT_OK;
	}
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
		usage(stdout);
		return TJ_EXIT_OK;
	}
	if (strcmp(name, "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return TJ_EXIT_OK;
		}
		const struct command *c = find(argv[2]);
		if (!c) {
			fprintf(stderr, "tracejoin: no such command '%s' (try 'tracejoin help')\n", argv[2]);
			return TJ_EXIT_USAGE;
		}
		c->help();
		return TJ_EXIT_OK;
	}
	const struct command *c = find(name);
	if (!c) {
		fprintf(stderr, "tracejoin: no such command '%s' (try 'tracejoin help')\n", name);
		return TJ_EXIT_USAGE;
	}
	if (wants_help(argc - 1, argv + 1)) {
		c->help();
		return TJ_EXIT_OK;
	}
	return c->run(argc - 1, argv + 1);
}

/* Whatever the command printed on stdout must have reached it: a full
 * disk or a closed pipe under `> out` is a failure (exit 1), not a quiet
 * success. */
int main(int argc, char **argv)
{
	if (argc > 1)
		tj_set_command(argv[1]);
	int rc = dispatch(argc, argv);
	struct tj_err err = { 0 };
	/* a command that failed has said why already */
	if (tj_stdout_close(&err) < 0 && (rc == TJ_EXIT_OK || rc == TJ_EXIT_DAMAGED)) {
		fprintf(stderr, "tracejoin%s%s: %s\n", argc > 1 ? " " : "",
			argc > 1 ? argv[1] : "", err.msg);
		rc = TJ_EXIT_FAIL;
	}
	return rc;
}
