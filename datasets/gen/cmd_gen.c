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

struct gen_cli {
	const char *scenario, *load, *dir;
	uint64_t seed, requests;
	double duration;
	int force, stacks;
	int list;                          /* --list: only that */
	const struct gen_builtin *print;   /* --print NAME: only that */
};

/* Options into *o; 0, or the exit status of a usage error.  --list and
 * --print end the parsing where they stand: what follows is ignored. */
static int parse_opts(int argc, char **argv, struct gen_cli *o)
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
	char *end;
	int opt;

	*o = (struct gen_cli){ .load = "medium", .seed = 1 };
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":s:l:n:d:o:f", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o->scenario = optarg; break;
		case 'l': o->load = optarg; break;
		case 'K': o->stacks = 1; break;
		case 'S':
			if (tj_parse_u64(optarg, 0, UINT64_MAX, &o->seed))
				return tj_usage("gen", "--seed '%s': not a whole number", optarg);
			break;
		case 'n':
			/* the spec file's cap: a typo must not fill the disk */
			if (tj_parse_u64(optarg, 1, GEN_REQUESTS_MAX, &o->requests))
				return tj_usage("gen", "--requests '%s': not a whole number in [1, %d]",
						optarg, GEN_REQUESTS_MAX);
			break;
		case 'd':
			o->duration = strtod(optarg, &end);
			if (end == optarg || *end || !isfinite(o->duration) || o->duration <= 0 ||
			    o->duration > 1e6)
				return tj_usage("gen", "--duration '%s': not a number of seconds in (0, 1e6]", optarg);
			break;
		case 'o': o->dir = optarg; break;
		case 'f': o->force = 1; break;
		case 'L':
			o->list = 1;
			return 0;
		case 'P':
			if (!(o->print = gen_builtin_find(optarg)))
				return tj_usage("gen", "no built-in scenario '%s' (see --list)", optarg);
			return 0;
		case ':': return tj_usage("gen", "%s needs a value", argv[optind - 1]);
		default: return tj_usage("gen", "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return tj_usage("gen", "unexpected argument '%s'", argv[optind]);
	if (!o->scenario)
		return tj_usage("gen", "--scenario is required");
	if (!o->dir)
		return tj_usage("gen", "-o DIR is required");
	if (o->requests && o->duration > 0)
		return tj_usage("gen", "--requests and --duration exclude each other");
	return 0;
}

/* The scenario a spec file names (one with a '/' or .scn), or else a
 * built-in; its text in *text (owned by *owned for a file). */
static int load_spec(const struct gen_cli *o, int is_file, struct gen_spec *spec,
		     const char **text, size_t *tlen, char **owned)
{
	struct tj_err err = { 0 };

	if (is_file) {
		if (gen_spec_load(spec, o->scenario, owned, tlen, &err) < 0) {
			fprintf(stderr, "tracejoin gen: %s\n", err.msg);
			return TJ_EXIT_FAIL;
		}
		*text = *owned;
		return TJ_EXIT_OK;
	}
	const struct gen_builtin *b = gen_builtin_find(o->scenario);
	if (!b)
		return tj_usage("gen", "no built-in scenario '%s' (see --list; a spec file needs a '/' or .scn)", o->scenario);
	*text = b->text;
	*tlen = b->len;
	if (gen_spec_parse(spec, o->scenario, *text, *tlen, &err) < 0) {
		fprintf(stderr, "tracejoin gen: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	return TJ_EXIT_OK;
}

/* --load: one of the spec's named loads, or a rate of its own. */
static int resolve_load(const char *load, const struct gen_spec *spec, double *rate,
			const char **load_name)
{
	char *end;

	*rate = 0;
	*load_name = "custom";
	for (int l = 0; l < GEN_LOAD__COUNT; l++)
		if (!strcmp(load, gen_load_name((unsigned)l))) {
			*rate = spec->load[l];
			*load_name = gen_load_name((unsigned)l);
		}
	if (*rate == 0) {
		*rate = strtod(load, &end);
		if (end == load || *end || !isfinite(*rate) || *rate <= 0 || *rate > 1e7)
			return tj_usage("gen", "--load '%s': low, medium, high or a rate in (0, 1e7]", load);
	}
	return TJ_EXIT_OK;
}

/* What a generated dataset's manifest says beyond the common fields. */
struct gen_run_info {
	const struct gen_spec *spec;
	const char *text;          /* the spec's text, hashed */
	size_t tlen;
	int is_file;
	const char *load_name;
	double rate;
	const struct gen_stats *st;
};

/* The manifest into the dataset folder being built. */
static int write_manifest(const struct gen_cli *o, const struct gen_run_info *r,
			  const char *dir)
{
	struct tj_err err = { 0 };
	struct tj_manifest *m = tj_manifest_new("gen");
	char hex[65];
	int rc = TJ_EXIT_FAIL;

	sha256_hex(r->text, r->tlen, hex);
	json_t *p = m ? tj_manifest_params(m) : NULL;
	if (!m || !p) {
		fprintf(stderr, "tracejoin gen: out of memory\n");
		goto out;
	}
	tj_manifest_set(m, "scenario", json_string(r->spec->name));
	if (r->spec->describe[0])
		tj_manifest_set(m, "description", json_string(r->spec->describe));
	tj_manifest_set(m, "seed", json_integer((json_int_t)o->seed));
	tj_manifest_set(m, "builtin", json_boolean(!r->is_file));
	json_object_set_new(p, "load", json_string(r->load_name));
	json_object_set_new(p, "rate", json_real(r->rate));
	json_object_set_new(p, "arrival", json_string(r->spec->arrival == GA_CLOSED ? "closed" :
						      r->spec->arrival == GA_UNIFORM ? "uniform" : "poisson"));
	if (o->requests)
		json_object_set_new(p, "requests", json_integer((json_int_t)o->requests));
	else
		json_object_set_new(p, "duration_s", json_real(o->duration));
	json_object_set_new(p, "spec_sha256", json_string(hex));
	json_t *counts = json_object();
	json_object_set_new(counts, "roots", json_integer((json_int_t)r->st->roots));
	json_object_set_new(counts, "client_requests", json_integer((json_int_t)r->st->calls));
	json_object_set_new(counts, "background_requests", json_integer((json_int_t)r->st->background));
	json_object_set_new(counts, "labels", json_integer((json_int_t)r->st->labels));
	json_object_set_new(counts, "events_lost", json_integer((json_int_t)r->st->lost));
	json_object_set_new(counts, "simulated_ns", json_integer((json_int_t)r->st->sim_ns));
	tj_manifest_set(m, "counts", counts);
	if (tj_manifest_write(m, dir, &err) < 0) {
		fprintf(stderr, "tracejoin gen: %s\n", err.msg);
		goto out;
	}
	rc = TJ_EXIT_OK;
out:
	tj_manifest_free(m);
	return rc;
}

/* Generate into a folder built beside (or inside) DIR and moved into
 * place when whole: a failure leaves the old dataset, or nothing
 * (lib/outfile.h). */
static int generate(const struct gen_cli *o, struct gen_run_info *r)
{
	struct tj_err err = { 0 };
	struct tj_outdir od = { 0 };
	struct gen_stats st;
	int rc = TJ_EXIT_FAIL;

	char *inputs[] = { r->is_file ? (char *)o->scenario : NULL };
	if (tj_outdir_open(&od, o->dir, o->force ? TJ_OUT_FORCE : 0, inputs, 1, &err) < 0) {
		fprintf(stderr, "tracejoin gen: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	char options[TJ_OPTIONS_MAX];
	snprintf(options, sizeof(options), "tracejoin gen scenario=%s load=%s rate=%g seed=%llu %s=%.17g%s",
		 r->spec->name, r->load_name, r->rate, (unsigned long long)o->seed,
		 o->requests ? "requests" : "duration",
		 o->requests ? (double)o->requests : o->duration, o->stacks ? " stacks" : "");
	struct gen_opts go = { .seed = o->seed, .rate = r->rate, .requests = o->requests,
			       .duration_s = o->duration, .dir = od.tmp, .force = 0,
			       .options = options, .stacks = o->stacks,
			       .progress = isatty(STDERR_FILENO) };
	/* CPU time, as the other commands report speed: the figure does not
	 * depend on what else the machine runs */
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	if (gen_run(r->spec, &go, &st, &err) < 0) {
		fprintf(stderr, "tracejoin gen: %s\n", err.msg);
		goto out;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	r->st = &st;
	if (write_manifest(o, r, od.tmp) != TJ_EXIT_OK)
		goto out;
	if (tj_outdir_commit(&od, &err) < 0) {
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
	return rc;
}

int cmd_gen(int argc, char **argv)
{
	struct gen_cli o;
	struct gen_run_info r = { 0 };
	char *owned = NULL;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc;
	if (o.list)
		return list_builtins();
	if (o.print) {
		fwrite(o.print->text, 1, o.print->len, stdout);
		return TJ_EXIT_OK;
	}
	/* the spec: a file if it looks like a path, else a built-in */
	size_t len = strlen(o.scenario);
	struct gen_spec *spec = malloc(sizeof(*spec));
	if (!spec)
		return TJ_EXIT_FAIL;
	r.spec = spec;
	r.is_file = strchr(o.scenario, '/') || (len > 4 && !strcmp(o.scenario + len - 4, ".scn"));
	if ((rc = load_spec(&o, r.is_file, spec, &r.text, &r.tlen, &owned)) == TJ_EXIT_OK &&
	    (rc = resolve_load(o.load, spec, &r.rate, &r.load_name)) == TJ_EXIT_OK) {
		if (!o.requests && o.duration == 0)
			o.requests = spec->requests;
		rc = generate(&o, &r);
	}
	free(spec);
	free(owned);
	return rc;
}
