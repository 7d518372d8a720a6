/* tracejoin label: a capture made with --payload -> a labeled dataset
 * (label.h, datasets/real/README.md). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "label.h"
#include "../../cli/commands.h"

void cmd_label_help(void)
{
	printf("usage: tracejoin label CAPTURE_DIR -o DATASET_DIR [OPTIONS]\n\n"
	       "Make a labeled dataset from a capture of services that propagate W3C\n"
	       "traceparent headers (datasets/workloads/, or nginx in front of them),\n"
	       "recorded with 'tracejoin capture --payload 256' (one node-*.evlog per\n"
	       "node, e.g. --netns).  The parent of a call is read from the headers by\n"
	       "the span-id rule of datasets/real/README.md.  The dataset gets the logs\n"
	       "with every payload removed (no correlator ever sees a trace header),\n"
	       "labels.csv and manifest.json.  Calls whose header is not visible in\n"
	       "the captured prefix are not guessed: they are left out of labels.csv,\n"
	       "counted, and listed in unlabeled.csv.\n\n"
	       "options:\n"
	       "  -o, --output DIR     the dataset folder (created if missing)\n"
	       "      --force          replace the logs and labels of an existing dataset\n"
	       "      --workload TEXT  describe the workload in the manifest\n"
	       "      --params JSON    a JSON object recorded as the manifest's parameters\n"
	       "      --strict         exit 1 when any call was left out\n"
	       "  -q, --quiet          print nothing on success\n"
	       "  -h, --help           this text\n\n"
	       "Exit status: 0 done, 1 failure (or --strict and calls left out),\n"
	       "2 usage, 3 a log was damaged (labeled as far as it could be read).\n");
}

int cmd_label(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "workload", required_argument, NULL, 'w' },
		{ "params", required_argument, NULL, 'p' },
		{ "strict", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct tj_label_opts o = { 0 };
	const char *out = NULL;
	int strict = 0, quiet = 0, opt;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":o:q", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o': out = optarg; break;
		case 'f': o.force = 1; break;
		case 'w': o.workload = optarg; break;
		case 'p': o.params_json = optarg; break;
		case 's': strict = 1; break;
		case 'q': quiet = 1; break;
		case ':': return tj_usage(argv[0], "%s needs a value", argv[optind - 1]);
		default: return tj_usage(argv[0], "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return tj_usage(argv[0], "no capture folder given");
	if (argc - optind > 1)
		return tj_usage(argv[0], "one capture folder, not %d", argc - optind);
	if (!out)
		return tj_usage(argv[0], "no output folder (-o DATASET_DIR)");

	struct tj_label_result r;
	struct tj_err err = { 0 };
	int rc = tj_label_capture(argv[optind], out, &o, &r, &err);
	if (rc) {
		fprintf(stderr, "tracejoin label: %s\n", err.msg);
		return rc == -TJ_E_ARG ? TJ_EXIT_USAGE : TJ_EXIT_FAIL;
	}
	uint64_t left = r.no_header + r.bad_header + r.ambiguous;
	if (!quiet || left)
		fprintf(stderr,
			"tracejoin label: %s: %" PRIu64 " logs, %" PRIu64 " events (payload removed from %"
			PRIu64 "); %" PRIu64 " calls: %" PRIu64 " labeled (%" PRIu64 " with a parent, %"
			PRIu64 " of them through a proxy; %" PRIu64 " roots), %" PRIu64
			" left out (%" PRIu64 " no header, %" PRIu64 " malformed, %" PRIu64
			" ambiguous); capture drops %" PRIu64 "\n",
			out, r.logs, r.events, r.payload_events, r.calls, r.labeled, r.with_parent,
			r.via_proxy, r.roots, left, r.no_header, r.bad_header, r.ambiguous,
			r.drops[0] + r.drops[1] + r.drops[2] + r.drops[3]);
	if (r.cut || r.unknown_role || r.parent_cut)
		fprintf(stderr, "tracejoin label: sockets open before capture: %" PRIu64
			" first messages cut by capture start, %" PRIu64 " calls made for a cut "
			"request, %" PRIu64 " requests on sockets of unknown side (none labeled)\n",
			r.cut, r.parent_cut, r.unknown_role);
	if (r.damaged)
		return TJ_EXIT_DAMAGED;
	if (strict && left) {
		fprintf(stderr, "tracejoin label: --strict: %" PRIu64 " calls left out (see %s/unlabeled.csv)\n",
			left, out);
		return TJ_EXIT_FAIL;
	}
	return TJ_EXIT_OK;
}
