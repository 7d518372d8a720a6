/* tracejoin gen: make a labeled synthetic dataset from a scenario. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <nettle/sha2.h>
#include "gen.h"
#include "../../cli/commands.h"
#include "../../lib/evlog.h"
#include "../../lib/manifest.h"
#include "../../lib/outfile.h"
#include "../../lib/util.h"

void cmd_gen_help(void)
{
	printf(
		"usage: tracejoin gen --scenario NAME|FILE [--load low|medium|high|X]\n"
		"                     [--seed N] [--requests N | --duration S] [--stacks]\n"
		"                     -o DIR [--force]\n"
		"       tracejoin gen --list\n"
		"       tracejoin gen --print NAME\n\n"
		"Simulate a microservice deployment and write what capture would record on\n"
		"each node (DIR/node-N.evlog), the true parent of every client request\n"
		"(DIR/labels.csv) and DIR/manifest.json.  Same spec and seed, same bytes.\n"
		"At the end it prints events, root requests, CPU seconds and Mev/s.\n\n"
		"  -s, --scenario NAME|FILE  a built-in scenario (see --list), or a spec file\n"
		"                            (a name holding '/' or ending in .scn)\n"
		"  -l, --load L       low, medium or high (the spec's rates), or requests/s\n"
		"                     (clients, for a closed-loop spec); default medium\n"
		"      --seed N       random seed (default 1)\n"
		"  -n, --requests N   root requests to issue (default: the spec's)\n"
		"  -d, --duration S   issue root requests for S seconds of simulated time\n"
		"  -o, --output DIR   dataset folder (made if missing)\n"
		"  -f, --force        replace a dataset already in DIR\n"
		"      --stacks       give each event a call-site stack, as capture --stack\n"
		"                     does: one synthetic frame per service accept,\n"
		"                     endpoint handler and endpoint call step\n"
		"      --list         list the built-in scenarios\n"
		"      --print NAME   print a built-in scenario's spec (to copy and edit)\n\n"
		"The spec format: datasets/gen/scenarios/README.md.\n");
}

static int list_builtins(void)
{
	for (size_t i = 0; i < gen_nbuiltins; i++) {
		const struct gen_builtin *b = &gen_builtins[i];
		struct gen_spec *s = malloc(sizeof(*s));
		struct tj_err err = { 0 };
		if (!s)
			return TJ_EXIT_FAIL;
		if (gen_spec_parse(s, b->name, b->text, b->len, &err) < 0) {
			fprintf(stderr, "tracejoin gen: built-in %s\n", err.msg);
			free(s);
			return TJ_EXIT_FAIL;
		}
		printf("%-16s %s (%s %g/%g/%g)\n", b->name, s->describe,
		       s->arrival == GA_CLOSED ? "clients" : "req/s",
		       s->load[0], s->load[1], s->load[2]);
		free(s);
	}
	return TJ_EXIT_OK;
}

static void sha256_hex(const char *data, size_t len, char hex[65])
{
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_init(&ctx);
	sha256_update(&ctx, len, (const uint8_t *)data);
	sha256_digest(&ctx, sizeof(d), d);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

int cmd_gen(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "scenario", required_argument, NULL, 's' },
		{ "load", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 'S' },
		{ "requests", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "list", no_argument, NULL, 'L' },
		{ "print", required_argument, NULL, 'P' },
		{ "stacks", no_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	const char *scenario = NULL, *load = "medium", *dir = NULL;
	uint64_t seed = 1, requests = 0;
	double duration = 0;
	int force = 0, stacks = 0, opt;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":s:l:n:d:o:f", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': scenario = optarg; break;
		case 'l': load = optarg; break;
		case 'K': stacks = 1; break;
		case 'S':
			if (tj_parse_u64(optarg, 0, UINT64_MAX, &seed))
				return tj_usage("gen", "--seed '%s': not a whole number", optarg);
			break;
		case 'n':
			/* the spec file's cap: a typo must not fill the disk */
			if (tj_parse_u64(optarg, 1, GEN_REQUESTS_MAX, &requests))
				return tj_usage("gen", "--requests '%s': not a whole number in [1, %d]",
						optarg, GEN_REQUESTS_MAX);
			break;
		case 'd': {
			char *end;
			duration = strtod(optarg, &end);
			if (end == optarg || *end || !isfinite(duration) || duration <= 0 || duration > 1e6)
				return tj_usage("gen", "--duration '%s': not a number of seconds in (0, 1e6]", optarg);
			break;
		}
		case 'o': dir = optarg; break;
		case 'f': force = 1; break;
		case 'L': return list_builtins();
		case 'P': {
			const struct gen_builtin *b = gen_builtin_find(optarg);
			if (!b)
				return tj_usage("gen", "no built-in scenario '%s' (see --list)", optarg);
			fwrite(b->text, 1, b->len, stdout);
			return TJ_EXIT_OK;
		}
		case ':': return tj_usage("gen", "%s needs a value", argv[optind - 1]);
		default: return tj_usage("gen", "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return tj_usage("gen", "unexpected argument '%s'", argv[optind]);
	if (!scenario)
		return tj_usage("gen", "--scenario is required");
	if (!dir)
		return tj_usage("gen", "-o DIR is required");
	if (requests && duration > 0)
		return tj_usage("gen", "--requests and --duration exclude each other");

	/* the spec: a file if it looks like a path, else a built-in */
	size_t len = strlen(scenario);
	int is_file = strchr(scenario, '/') || (len > 4 && !strcmp(scenario + len - 4, ".scn"));
	const char *text;
	char *owned = NULL;
	size_t tlen;
	struct gen_spec *spec = malloc(sizeof(*spec));
	struct tj_err err = { 0 };
	int rc = TJ_EXIT_FAIL;
	struct tj_manifest *m = NULL;
	struct tj_outdir od = { 0 };
	if (!spec)
		return TJ_EXIT_FAIL;
	if (is_file) {
		if (gen_spec_load(spec, scenario, &owned, &tlen, &err) < 0) {
			fprintf(stderr, "tracejoin gen: %s\n", err.msg);
			goto out;
		}
		text = owned;
	} else {
		const struct gen_builtin *b = gen_builtin_find(scenario);
		if (!b) {
			rc = tj_usage("gen", "no built-in scenario '%s' (see --list; a spec file needs a '/' or .scn)", scenario);
			goto out;
		}
		text = b->text;
		tlen = b->len;
		if (gen_spec_parse(spec, scenario, text, tlen, &err) < 0) {
			fprintf(stderr, "tracejoin gen: %s\n", err.msg);
			goto out;
		}
	}
	double rate = 0;
	const char *load_name = "custom";
	for (int l = 0; l < GEN_LOAD__COUNT; l++)
		if (!strcmp(load, gen_load_name((unsigned)l))) {
			rate = spec->load[l];
			load_name = gen_load_name((unsigned)l);
		}
	if (rate == 0) {
		char *end;
		rate = strtod(load, &end);
		if (end == load || *end || !isfinite(rate) || rate <= 0 || rate > 1e7) {
			rc = tj_usage("gen", "--load '%s': low, medium, high or a rate in (0, 1e7]", load);
			goto out;
		}
	}
	if (!requests && duration == 0)
		requests = spec->requests;
	/* built beside (or inside) DIR and moved into place when whole:
	 * a failure leaves the old dataset, or nothing (lib/outfile.h) */
	char *inputs[] = { is_file ? (char *)scenario : NULL };
	if (tj_outdir_open(&od, dir, force ? TJ_OUT_FORCE : 0, inputs, 1, &err) < 0) {
		fprintf(stderr, "tracejoin gen: %s\n", err.msg);
		rc = TJ_EXIT_FAIL;
		goto out;
	}

	char options[TJ_OPTIONS_MAX];
	snprintf(options, sizeof(options), "tracejoin gen scenario=%s load=%s rate=%g seed=%llu %s=%.17g%s",
		 spec->name, load_name, rate, (unsigned long long)seed,
		 requests ? "requests" : "duration", requests ? (double)requests : duration, stacks ? " stacks" : "");
	struct gen_opts o = { .seed = seed, .rate = rate, .requests = requests,
			      .duration_s = duration, .dir = od.tmp, .force = 0,
			      .options = options, .stacks = stacks,
			      .progress = isatty(STDERR_FILENO) };
	struct gen_stats st;
	/* CPU time, as the other commands report speed: the figure does not
	 * depend on what else the machine runs */
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	if (gen_run(spec, &o, &st, &err) < 0) {
		fprintf(stderr, "tracejoin gen: %s\n", err.msg);
		goto out;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);

	m = tj_manifest_new("gen");
	char hex[65];
	sha256_hex(text, tlen, hex);
	json_t *p = m ? tj_manifest_params(m) : NULL;
	if (!m || !p) {
		fprintf(stderr, "tracejoin gen: out of memory\n");
		goto out;
	}
	tj_manifest_set(m, "scenario", json_string(spec->name));
	if (spec->describe[0])
		tj_manifest_set(m, "description", json_string(spec->describe));
	tj_manifest_set(m, "seed", json_integer((json_int_t)seed));
	tj_manifest_set(m, "builtin", json_boolean(!is_file));
	json_object_set_new(p, "load", json_string(load_name));
	json_object_set_new(p, "rate", json_real(rate));
	json_object_set_new(p, "arrival", json_string(spec->arrival == GA_CLOSED ? "closed" :
						      spec->arrival == GA_UNIFORM ? "uniform" : "poisson"));
	if (requests)
		json_object_set_new(p, "requests", json_integer((json_int_t)requests));
	else
		json_object_set_new(p, "duration_s", json_real(duration));
	json_object_set_new(p, "spec_sha256", json_string(hex));
	json_t *counts = json_object();
	json_object_set_new(counts, "roots", json_integer((json_int_t)st.roots));
	json_object_set_new(counts, "client_requests", json_integer((json_int_t)st.calls));
	json_object_set_new(counts, "background_requests", json_integer((json_int_t)st.background));
	json_object_set_new(counts, "labels", json_integer((json_int_t)st.labels));
	json_object_set_new(counts, "events_lost", json_integer((json_int_t)st.lost));
	json_object_set_new(counts, "simulated_ns", json_integer((json_int_t)st.sim_ns));
	tj_manifest_set(m, "counts", counts);
	if (tj_manifest_write(m, od.tmp, &err) < 0 || tj_outdir_commit(&od, &err) < 0) {
		fprintf(stderr, "tracejoin gen: %s\n", err.msg);
		goto out;
	}
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("gen: %llu events, %llu roots, %.2f s, %.2f Mev/s\n",
	       (unsigned long long)st.events, (unsigned long long)st.roots, secs,
	       secs > 0 ? (double)st.events / secs / 1e6 : 0.0);
	rc = TJ_EXIT_OK;
out:
	tj_outdir_abort(&od);
	tj_manifest_free(m);
	free(spec);
	free(owned);
	return rc;
}
