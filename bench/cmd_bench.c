/* tracejoin bench: every correlator on every dataset of the suite, scored,
 * timed and written down so the run can be redone. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../lib/outfile.h"
#include "bench.h"
#include "plan.h"
#include "../cli/commands.h"
#include "../correlate/host.h"
#include "../datasets/gen/gen.h"
#include "../lib/util.h"
#include "../lib/version.h"

static const char usage_text[] =
	"usage: tracejoin bench [--quick] [options]\n"
	"       tracejoin bench --compare DIR_A DIR_B [--threshold X]\n"
	"       tracejoin bench --plan DIR [--seeds 1-20] [--scenarios L] [--loads L]\n"
	"                       [--algo NAME|SO]... [--param ALGO:K=V1,V2]...\n"
	"                       [--requests N] [--quick] [--force] [--trust-plugin]\n"
	"                       [--mem KIND[:ALGO]=MB]... [--cpus KIND[:ALGO]=N]...\n"
	"                       [--train NAME=TRAIN-OPTIONS [--train-on NAME=LIST]]...\n"
	"       tracejoin bench --run DIR [--executor local|parallel|slurm] [-j N]\n"
	"                       [--sshloginfile FILE] [--slurm-args \"ARGS\"]\n"
	"                       [--slurm-pack dataset|job] [--slurm-tasks N]\n"
	"       tracejoin bench --collect DIR [--no-plots]\n"
	"       tracejoin bench --job DIR ID...\n"
	"       tracejoin bench --score-set DATASET --name NAME -o DIR [--drilldown D]\n"
	"                       NAME--ALGO.csv...\n"
	"\n"
	"Generate the built-in dataset suite (every scenario of 'tracejoin gen\n"
	"--list' at low, medium and high load), run every built-in correlator\n"
	"(and the plugins given with --algo) on every dataset, score each against\n"
	"the labels and print scenario x load x correlator: edge F1, trace\n"
	"accuracy, service accuracy (TraceWeaver's per-service metric), throughput\n"
	"(events per CPU second) and peak memory.  Imported datasets found in\n"
	"build/datasets/traceweaver/ and labeled real captures in datasets/real/\n"
	"are benchmarked too, in tables of their own.\n"
	"\n"
	"The run is a plan (as --plan makes) run here and collected: while it\n"
	"runs, the results folder holds plan/, status/, logs/ and scores/, removed\n"
	"once every job is scored; when one failed they stay, and 'bench --run\n"
	"FOLDER' then 'bench --collect FOLDER' redo only what failed.\n"
	"\n"
	"Writes RESULTS_ROOT/<UTC date>-<git sha>/: results.csv, results.json,\n"
	"report.md, report.html (self-contained: sortable tables, per dataset a\n"
	"few wrongly reconstructed traces drawn beside their true shape, from\n"
	"drilldown/), plots/<scenario>.{svg,png} (gnuplot) and commands.txt, the\n"
	"commands that redo every figure.\n"
	"\n"
	"options:\n"
	"      --quick            a small suite for CI: every scenario at medium\n"
	"                         load, 300 root requests (about a minute)\n"
	"  -a, --algo NAME|SO     also run this correlator or plugin (repeatable)\n"
	"      --trust-plugin     load --algo plugins whoever could write them (as\n"
	"                         correlate --trust-plugin)\n"
	"      --only LIST        run only these correlators (comma separated)\n"
	"      --scenarios LIST   only these scenarios (comma separated)\n"
	"      --loads LIST       only these loads (default low,medium,high)\n"
	"      --seed N           generator seed (default 1; models train on others)\n"
	"      --requests N       root requests per dataset (default 20000)\n"
	"  -d, --dataset DIR      also benchmark this labeled dataset (repeatable)\n"
	"      --no-found         ignore datasets found in build/ and datasets/real/\n"
	"  -j, --jobs N           processes at once (default: the number of cores)\n"
	"  -o, --output DIR       results folder (default RESULTS_ROOT/<date>-<sha>)\n"
	"      --results-root DIR default bench/results\n"
	"      --work DIR         where datasets are generated (default build/bench-datasets)\n"
	"      --keep-edges       keep each correlator's edges.csv in the results\n"
	"      --no-plots         skip gnuplot\n"
	"      --compare A B      compare two results folders\n"
	"      --threshold X      with --compare: an accuracy drop beyond X (absolute,\n"
	"                         default 0.01) is a regression; speed/memory beyond\n"
	"                         --speed-threshold (default 0.25 relative)\n"
	"      --fail-on-regression  with --compare: exit 1 if any regression\n"
	"  -h, --help             this help\n"
	"\n"
	"Grids (README, \"Running a grid on a cluster\"):\n"
	"  --plan DIR         write DIR/plan/jobs.tsv: one job a line (gen, correlate,\n"
	"                     score) with its dependencies, output and command, over\n"
	"                     seeds x scenarios x loads x correlators x --param values\n"
	"                     (correlators: every built-in unless --algo names some);\n"
	"                     prints the planning time.  Every job asks an engine for\n"
	"                     memory (half again over the peak measured at 20 000\n"
	"                     requests, scaled to --requests, at least 256 MB) and\n"
	"                     one CPU: --mem KIND=MB, --mem correlate:NAME=MB, --cpus\n"
	"                     KIND=N override (KIND gen, correlate, score, train)\n"
	"  --train NAME=OPTS  a training plan: gen jobs over seeds x --scenarios\n"
	"                     (built-ins or .scn files, in the order given) x loads,\n"
	"                     then 'tracejoin train OPTS DATASETS -o DIR/models/NAME'\n"
	"                     on their union (by scenario, load, seed), or with\n"
	"                     --train-on NAME=LIST on those scenarios' (repeatable;\n"
	"                     no correlators; collect names each model or failure)\n"
	"  --run DIR          run the plan's jobs not yet done, stage by stage:\n"
	"                     --executor local (default; -j at once) or parallel\n"
	"                     (GNU parallel; --sshloginfile FILE for several hosts\n"
	"                     that see DIR and the binary at the same paths) or\n"
	"                     slurm (a job array per stage, chained with\n"
	"                     afterany; --slurm-args passed to every sbatch, after\n"
	"                     the plan's --mem and --cpus-per-task); --slurm-pack\n"
	"                     dataset (default: a task runs a dataset's gen, its\n"
	"                     correlates and its score in turn, no dependencies) or\n"
	"                     job (a task a job, arrays chained stage by stage);\n"
	"                     --slurm-tasks N: at most N tasks, consecutive datasets\n"
	"                     sharing one (fewer task starts on a small grid)\n"
	"  --collect DIR      merge the scores into DIR/results/ (results.csv/json,\n"
	"                     cells.csv, report.md, report.html, plots): per cell the\n"
	"                     mean and 95 % CI across seeds, and the paired difference\n"
	"                     to the cell's best correlator (n.s. within its CI);\n"
	"                     lists every missing or failed job; prints its time\n"
	"  --job DIR ID...    run these jobs in turn unless done (what every engine\n"
	"                     runs)\n"
	"  --score-set DATASET  a plan's score job: score every NAME--ALGO.csv against\n"
	"                     DATASET's labels (labels and join read once), write\n"
	"                     DIR/NAME--ALGO.json as 'tracejoin score --json' prints\n"
	"                     it, and with --drilldown D the report's drill-downs\n"
	"\n"
	"Exit: 0 every run scored, 1 a run failed or a file could not be written,\n"
	"2 usage.\n";

void cmd_bench_help(void)
{
	fputs(usage_text, stdout);
}

#define MAX_ALGOS 16
#define MAX_DATASETS 512

struct bench {
	const char *self;            /* our own binary, to run subcommands */
	int quick, jobs, plots, keep_edges, use_found;
	int trust_plugin;        /* --trust-plugin, passed on to correlate */
	uint64_t seed, requests;
	const char *algos[MAX_ALGOS];
	size_t nalgos;
	char *scenarios, *loads;
	char results[PATH_MAX], work[PATH_MAX];
	struct bench_dataset ds[MAX_DATASETS];
	size_t nds;
	const char *extra[MAX_DATASETS];
	size_t nextra;
	int tty;
	double t0;
};

static int is_dataset(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/labels.csv", dir);
	return access(p, R_OK) == 0;
}

static int name_taken(const struct bench *b, const struct bench_dataset *d)
{
	for (const struct bench_dataset *o = b->ds; o < d; o++)
		if (strcmp(o->name, d->name) == 0)
			return 1;
	return 0;
}

static struct bench_dataset *add_dataset(struct bench *b, const char *group,
					 const char *name, const char *dir)
{
	if (b->nds == MAX_DATASETS) {
		tj_warn("bench: more than %d datasets; %s left out", MAX_DATASETS, dir);
		return NULL;
	}
	struct bench_dataset *d = &b->ds[b->nds++];
	memset(d, 0, sizeof(*d));
	snprintf(d->group, sizeof(d->group), "%s", group);
	snprintf(d->name, sizeof(d->name), "%s", name);
	/* Names key the edge files and result rows: two folders with the same
	 * base name (real/x, other/x) must not overwrite each other. */
	for (int k = 2; name_taken(b, d); k++)
		snprintf(d->name, sizeof(d->name), "%s.%d", name, k);
	snprintf(d->scenario, sizeof(d->scenario), "%s", name);
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	d->load_rank = -1;
	return d;
}

/* Every labeled dataset directly under root, sorted by name. */
static void add_found(struct bench *b, const char *group, const char *root)
{
	struct dirent **names;
	int n = scandir(root, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX];
		if (names[i]->d_name[0] != '.') {
			snprintf(dir, sizeof(dir), "%s/%s", root, names[i]->d_name);
			if (is_dataset(dir))
				add_dataset(b, group, names[i]->d_name, dir);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}


static int plan_datasets(struct bench *b)
{
	for (size_t s = 0; s < gen_nbuiltins; s++) {
		const char *scn = gen_builtins[s].name;
		if (!bench_in_list(b->scenarios, scn))
			continue;
		for (int l = 0; l < 3; l++) {
			if (!bench_in_list(b->loads, bench_load_names[l]))
				continue;
			char name[BENCH_NAME_MAX], dir[PATH_MAX];
			snprintf(name, sizeof(name), "%s-%s-s%" PRIu64, scn, bench_load_names[l], b->seed);
			snprintf(dir, sizeof(dir), "%s/%s-r%" PRIu64, b->work, name, b->requests);
			struct bench_dataset *d = add_dataset(b, "synthetic", name, dir);
			if (!d)
				return -1;
			snprintf(d->scenario, sizeof(d->scenario), "%s", scn);
			snprintf(d->load, sizeof(d->load), "%s", bench_load_names[l]);
			d->load_rank = l;
			d->seed = b->seed;
			d->generate = 1;
		}
	}
	if (b->scenarios && b->nds == 0) {
		tj_warn("bench: --scenarios %s names no built-in scenario (see 'tracejoin gen --list')",
			b->scenarios);
		return -1;
	}
	for (size_t i = 0; i < b->nextra; i++) {
		if (!is_dataset(b->extra[i])) {
			tj_warn("bench: %s: not a labeled dataset (no labels.csv)", b->extra[i]);
			return -1;
		}
		const char *base = strrchr(b->extra[i], '/');
		add_dataset(b, "extra", base && base[1] ? base + 1 : b->extra[i], b->extra[i]);
	}
	if (b->use_found) {
		add_found(b, "traceweaver", "build/datasets/traceweaver");
		add_found(b, "real", "datasets/real");
	}
	return 0;
}

static int results_dir(struct bench *b, const char *root)
{
	char date[16], base[PATH_MAX];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	const char *plus = strchr(tj_version, '+');
	snprintf(base, sizeof(base), "%s/%s-%s", root, date, plus ? plus + 1 : "nogit");
	snprintf(b->results, sizeof(b->results), "%s", base);
	/* Same day, same commit: number the later runs instead of mixing them. */
	for (int k = 2; access(b->results, F_OK) == 0; k++)
		snprintf(b->results, sizeof(b->results), "%s.%d", base, k);
	return 0;
}

/* What the command line asks beyond the suite itself (which parse_opts
 * writes into struct bench). */
struct bench_opts {
	const char *output, *root, *only;
	int compare, fail_reg, requests_set;
	double threshold, speed_threshold;
	char **operands;    /* --compare's two folders */
};

/* Options into *b and *o; 0, or the exit status of a usage error.  A
 * --compare run is checked for its operands only: it reads no suite. */
static int parse_opts(int argc, char **argv, struct bench *b, struct bench_opts *o)
{
	enum { O_QUICK = 256, O_ONLY, O_SCN, O_LOADS, O_SEED, O_REQ, O_NOFOUND,
	       O_ROOT, O_WORK, O_KEEP, O_NOPLOTS, O_COMPARE, O_THRESH, O_SPEED,
	       O_FAILREG, O_TRUST };
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, O_QUICK },
		{ "algo", required_argument, NULL, 'a' },
		{ "only", required_argument, NULL, O_ONLY },
		{ "scenarios", required_argument, NULL, O_SCN },
		{ "loads", required_argument, NULL, O_LOADS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "requests", required_argument, NULL, O_REQ },
		{ "dataset", required_argument, NULL, 'd' },
		{ "no-found", no_argument, NULL, O_NOFOUND },
		{ "jobs", required_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "results-root", required_argument, NULL, O_ROOT },
		{ "work", required_argument, NULL, O_WORK },
		{ "keep-edges", no_argument, NULL, O_KEEP },
		{ "no-plots", no_argument, NULL, O_NOPLOTS },
		{ "compare", no_argument, NULL, O_COMPARE },
		{ "threshold", required_argument, NULL, O_THRESH },
		{ "speed-threshold", required_argument, NULL, O_SPEED },
		{ "fail-on-regression", no_argument, NULL, O_FAILREG },
		{ "trust-plugin", no_argument, NULL, O_TRUST },
		{ NULL, 0, NULL, 0 },
	};
	memset(b, 0, sizeof(*b));
	b->jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	b->plots = 1;
	b->use_found = 1;
	b->seed = 1;
	b->requests = 0;
	snprintf(b->work, sizeof(b->work), "build/bench-datasets");
	*o = (struct bench_opts){ .root = "bench/results", .threshold = 0.01,
				  .speed_threshold = 0.25 };

	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":a:d:j:o:", longopts, NULL)) != -1) {
		char *end;
		uint64_t v;
		switch (c) {
		case O_QUICK: b->quick = 1; break;
		case 'a':
			if (b->nalgos == MAX_ALGOS)
				return tj_usage("bench", "at most %d correlators", MAX_ALGOS);
			b->algos[b->nalgos++] = optarg;
			break;
		case O_ONLY: o->only = optarg; break;
		case O_SCN: b->scenarios = optarg; break;
		case O_LOADS: b->loads = optarg; break;
		case O_SEED:
			if (tj_parse_u64(optarg, 0, UINT64_MAX, &b->seed) < 0)
				return tj_usage("bench", "--seed %s: not a number", optarg);
			break;
		case O_REQ:
			if (tj_parse_u64(optarg, 1, UINT64_MAX, &b->requests) < 0)
				return tj_usage("bench", "--requests %s: not a positive number", optarg);
			o->requests_set = 1;
			break;
		case 'd':
			if (b->nextra == MAX_DATASETS)
				return tj_usage("bench", "too many --dataset");
			b->extra[b->nextra++] = optarg;
			break;
		case O_NOFOUND: b->use_found = 0; break;
		case 'j':
			if (tj_parse_u64(optarg, 1, 64, &v) < 0)
				return tj_usage("bench", "--jobs %s: want 1 to 64", optarg);
			b->jobs = (int)v;
			break;
		case 'o': o->output = optarg; break;
		case O_ROOT: o->root = optarg; break;
		case O_WORK: snprintf(b->work, sizeof(b->work), "%s", optarg); break;
		case O_KEEP: b->keep_edges = 1; break;
		case O_TRUST: b->trust_plugin = 1; break;
		case O_NOPLOTS: b->plots = 0; break;
		case O_COMPARE: o->compare = 1; break;
		case O_THRESH:
		case O_SPEED:
			errno = 0;
			double t = strtod(optarg, &end);
			if (end == optarg || *end || errno || !(t >= 0) || t > 1)
				return tj_usage("bench", "%s %s: want a number in [0,1]",
						c == O_THRESH ? "--threshold" : "--speed-threshold", optarg);
			*(c == O_THRESH ? &o->threshold : &o->speed_threshold) = t;
			break;
		case O_FAILREG: o->fail_reg = 1; break;
		case ':': return tj_usage("bench", "option %s needs a value", argv[optind - 1]);
		default: return tj_usage("bench", "unknown option %s", argv[optind - 1]);
		}
	}
	if (o->compare) {
		if (argc - optind != 2)
			return tj_usage("bench", "--compare takes two results folders");
		o->operands = argv + optind;
		return 0;
	}
	if (optind < argc)
		return tj_usage("bench", "unexpected argument '%s'", argv[optind]);
	if (bench_check_loads(b->loads) != 0)
		return TJ_EXIT_USAGE;
	if (b->quick) {
		if (!b->loads)
			b->loads = "medium";
		if (!o->requests_set)
			b->requests = 300;
		b->use_found = 0;
	}
	if (!b->requests)
		b->requests = 20000;
	return 0;
}

/* b->algos: the built-ins (or --only), then the ones added with --algo,
 * each loaded once here so a bad plugin is a usage error before any work. */
static int choose_correlators(struct bench *b, const char *only)
{
	const struct tj_correlator *builtin[MAX_ALGOS];
	size_t nb = tj_correlator_builtins(builtin, MAX_ALGOS);
	const char *added[MAX_ALGOS];
	size_t nadded = b->nalgos;
	memcpy(added, b->algos, sizeof(added));
	b->nalgos = 0;
	for (size_t i = 0; i < nb && i < MAX_ALGOS; i++)
		if (bench_in_list(only, builtin[i]->name))
			b->algos[b->nalgos++] = builtin[i]->name;
	for (size_t i = 0; i < nadded && b->nalgos < MAX_ALGOS; i++) {
		struct tj_err err = { 0 };
		const struct tj_correlator *cor;
		void *h;
		if (tj_correlator_load(added[i], b->trust_plugin ? TJ_LOAD_TRUST : 0,
				       &cor, &h, &err) < 0)
			return tj_usage("bench", "--algo %s: %s", added[i], err.msg);
		tj_correlator_unload(h);
		b->algos[b->nalgos++] = added[i];
	}
	if (b->nalgos == 0)
		return tj_usage("bench", "--only %s names no built-in correlator", only);
	return 0;
}

/* Our own binary (every step runs as a subcommand), the terminal and the
 * clock the progress line uses. */
static int find_self(struct bench *b)
{
	b->self = bench_self();
	if (!b->self) {
		tj_warn("bench: cannot find my own binary: %s", strerror(errno));
		return TJ_EXIT_FAIL;
	}
	b->tty = isatty(2);
	b->t0 = bench_now();
	return 0;
}

/* The results folder and the datasets to run. */
static int prepare_results(struct bench *b, const struct bench_opts *o)
{
	if (o->output)
		snprintf(b->results, sizeof(b->results), "%s", o->output);
	else
		results_dir(b, o->root);
	if (strpbrk(b->results, "\t\n") || strpbrk(b->work, "\t\n"))
		return tj_usage("bench", "%s: no tabs or newlines in the results or work folder",
				b->results);
	if (plan_datasets(b) < 0)
		return TJ_EXIT_USAGE;
	if (bench_mkdirs(b->results) < 0 || bench_mkdirs(b->work) < 0) {
		tj_warn("bench: %s: %s", b->results, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	return 0;
}

/* Remove what running the plan left in the results folder: status/,
 * scores/, plan/, logs/ when empty, edges/ unless kept. */
static void remove_run_files(const struct grid_plan *p, int keep_edges)
{
	char path[PATH_MAX];
	static const char *const ext[] = { "done", "failed", "lock" };
	for (size_t i = 0; i < p->n; i++) {
		const struct grid_job *j = &p->jobs[i];
		for (size_t e = 0; e < 3; e++) {
			plan_status_path(p, j->id, ext[e], path, sizeof(path));
			unlink(path);
		}
		if (j->kind == K_COR && !keep_edges)
			unlink(j->out);
		if (j->kind == K_SCORE) {
			for (size_t k = i; k > 0 && p->jobs[k - 1].kind == K_COR; k--) {
				const char *base = strrchr(p->jobs[k - 1].out, '/');
				base = base ? base + 1 : p->jobs[k - 1].out;
				snprintf(path, sizeof(path), "%s/%.*s.json", j->out,
					 (int)strlen(base) - 4, base);
				unlink(path);
			}
			rmdir(j->out);
		}
	}
	static const char *const files[] = { "plan/jobs.tsv", "plan/suite.json" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", p->dir, files[i]);
		unlink(path);
	}
	static const char *const dirs[] = { "status", "scores", "plan", "logs", "edges" };
	for (size_t i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s", p->dir, dirs[i]);
		rmdir(path);
	}
}

/* commands.txt: the command line of this run, then every job's command
 * in the plan's order. */
static int write_commands(const struct bench *b, const struct grid_plan *p, char **argv)
{
	char path[PATH_MAX];
	struct tj_err err = { 0 };
	struct tj_outfile out;
	FILE *f = NULL;
	snprintf(path, sizeof(path), "%s/commands.txt", b->results);
	if (tj_outfile_open(&out, path, TJ_OUT_FORCE, 0666, NULL, 0, &err) == 0 &&
	    !(f = tj_outfile_stream(&out, &err)))
		tj_outfile_abort(&out);
	if (!f) {
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	fprintf(f, "# tracejoin %s: every command of this run, in order\n# ", tj_version);
	bench_argv_print(f, argv);
	for (size_t i = 0; i < p->n; i++)
		bench_argv_print(f, p->jobs[i].argv);
	if (tj_outfile_commit(&out, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	return 0;
}

/* The run as a plan in the results folder (plan/jobs.tsv, suite.json,
 * commands.txt): the same jobs `bench --plan` makes, run and collected
 * by the same code. */
static int plan_suite(struct bench *b, struct grid_plan *p, int argc, char **argv)
{
	struct plan_dataset *ds = calloc(b->nds ? b->nds : 1, sizeof(*ds));
	struct tj_err err = { 0 };
	char path[PATH_MAX];
	if (!ds) {
		tj_warn("bench: out of memory");
		return TJ_EXIT_FAIL;
	}
	for (size_t i = 0; i < b->nds; i++)
		ds[i] = (struct plan_dataset){ b->ds[i].name, b->ds[i].group, b->ds[i].scenario,
					       b->ds[i].load, b->ds[i].dir, b->ds[i].seed,
					       b->ds[i].generate };
	struct plan_spec spec = { .ds = ds, .nds = b->nds, .algos = b->algos,
				  .nalgos = b->nalgos, .requests = b->requests,
				  .trust_plugin = b->trust_plugin, .drilldown = b->results };
	int rc = plan_make(p, b->results, &spec, &err);
	free(ds);
	if (rc < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	remove_run_files(p, 0); /* a results folder run before: its jobs are not this run's */
	json_t *cmd = json_array();
	for (int i = 0; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	json_t *suite = json_pack("{s:b, s:I, s:I, s:s?, s:s?}",
		"quick", b->quick, "seed", (json_int_t)b->seed, "requests",
		(json_int_t)b->requests, "scenarios", b->scenarios, "loads", b->loads);
	snprintf(path, sizeof(path), "%s/plan", b->results);
	if (bench_mkdirs(path) < 0) {
		json_decref(cmd);
		json_decref(suite);
		tj_warn("bench: %s: %s", path, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	snprintf(path, sizeof(path), "%s/plan/jobs.tsv", b->results);
	if (plan_write_suite(b->results, "bench", cmd, suite, TJ_OUT_FORCE, &err) < 0 ||
	    plan_write(p, path, TJ_OUT_FORCE, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	return write_commands(b, p, argv) < 0 ? TJ_EXIT_FAIL : 0;
}

int cmd_bench(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--plan") || !strcmp(argv[i], "--run") ||
		    !strcmp(argv[i], "--collect") || !strcmp(argv[i], "--job"))
			return bench_grid(argc, argv);
		if (!strcmp(argv[i], "--score-set"))
			return bench_score_set(argc, argv);
	}
	static struct bench b; /* large (dataset table); one per process */
	struct bench_opts o;
	struct grid_plan p;
	struct collect_summary sum = { 0 };
	int rc;

	if ((rc = parse_opts(argc, argv, &b, &o)) != 0)
		return rc;
	if (o.compare)
		return bench_compare(o.operands[0], o.operands[1], o.threshold,
				     o.speed_threshold, o.fail_reg);
	if ((rc = choose_correlators(&b, o.only)) != 0 ||
	    (rc = find_self(&b)) != 0 ||
	    (rc = prepare_results(&b, &o)) != 0)
		return rc;
	if ((rc = plan_suite(&b, &p, argc, argv)) != 0) {
		plan_free(&p);
		return rc;
	}
	if (b.tty)
		fprintf(stderr, "bench: %zu datasets x %zu correlators: %zu jobs\n", b.nds,
			b.nalgos, p.n);
	int run_rc = grid_run_local(&p, b.self, b.jobs, b.tty);
	rc = grid_collect(&p, b.plots, &sum);
	if (rc == TJ_EXIT_OK && run_rc == TJ_EXIT_OK)
		remove_run_files(&p, b.keep_edges);
	else
		fprintf(stderr, "bench: the plan, status and logs are kept in %s: rerun what "
			"failed with 'tracejoin bench --run %s', then --collect it\n", b.results,
			b.results);
	plan_free(&p);
	printf("\nbench: %zu datasets x %zu correlators in %.0f s, %zu failed; results in %s\n",
	       b.nds, b.nalgos, bench_now() - b.t0, sum.failed + sum.missing, b.results);
	return rc != TJ_EXIT_OK ? rc : run_rc;
}
