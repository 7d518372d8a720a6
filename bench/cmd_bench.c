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
#include "score.h"
#include "../cli/commands.h"
#include "../correlate/host.h"
#include "../datasets/gen/gen.h"
#include "../lib/edges.h"
#include "../export/model.h"
#include "../lib/manifest.h"
#include "../lib/util.h"
#include "../lib/version.h"
#include "../replay/join.h"

static const char usage_text[] =
	"usage: tracejoin bench [--quick] [options]\n"
	"       tracejoin bench --compare DIR_A DIR_B [--threshold X]\n"
	"       tracejoin bench --plan DIR [--seeds 1-20] [--scenarios L] [--loads L]\n"
	"                       [--algo NAME|SO]... [--param ALGO:K=V1,V2]...\n"
	"                       [--requests N] [--quick] [--force]\n"
	"       tracejoin bench --run DIR [--executor local|parallel|slurm] [-j N]\n"
	"                       [--sshloginfile FILE] [--slurm-args \"ARGS\"]\n"
	"       tracejoin bench --collect DIR [--no-plots]\n"
	"       tracejoin bench --job DIR ID\n"
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
	"                     prints the planning time\n"
	"  --run DIR          run the plan's jobs not yet done, stage by stage:\n"
	"                     --executor local (default; -j at once) or parallel\n"
	"                     (GNU parallel; --sshloginfile FILE for several hosts\n"
	"                     that see DIR and the binary at the same paths) or\n"
	"                     slurm (a job array per stage, chained with\n"
	"                     afterany; --slurm-args passed to every sbatch)\n"
	"  --collect DIR      merge the scores into DIR/results/ (results.csv/json,\n"
	"                     cells.csv, report.md, report.html, plots): per cell the\n"
	"                     mean and 95 % CI across seeds, and the paired difference\n"
	"                     to the cell's best correlator (n.s. within its CI);\n"
	"                     lists every missing or failed job; prints its time\n"
	"  --job DIR ID       run one job unless done (what every engine runs)\n"
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
	FILE *commands;              /* commands.txt, a stream of commands_out */
	struct tj_outfile commands_out;
	int tty;
	double t0;
	size_t failures;
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

static void progress(const struct bench_job *j, size_t started, size_t total,
		     void *ctx)
{
	struct bench *b = ctx;
	if (!b->tty)
		return;
	double el = bench_now() - b->t0;
	char eta[32] = "?";
	if (started > 0) {
		double left = el / (double)started * (double)(total - started);
		snprintf(eta, sizeof(eta), "%dm%02ds", (int)left / 60, (int)left % 60);
	}
	const char *what = j->argv[1];
	const char *tail = j->argv[0];
	for (size_t i = 0; j->argv[i]; i++)
		tail = j->argv[i];
	const char *base = strrchr(tail, '/');
	fprintf(stderr, "\r\033[K[%zu/%zu] %s %s%s%s  ETA %s", started + 1, total, what,
		base ? base + 1 : tail, j->user ? " " : "",
		j->user ? (const char *)j->user : "", eta);
}

static void job_done(struct bench_job *j, void *ctx)
{
	(void)j;
	(void)ctx;
}

static int generate(struct bench *b)
{
	struct bench_job jobs[MAX_DATASETS];
	size_t n = 0;
	char req[32], seed[32], logs[PATH_MAX];
	snprintf(logs, sizeof(logs), "%s/logs", b->results);
	if (bench_mkdirs(logs) < 0) {
		tj_warn("bench: %s: %s", logs, strerror(errno));
		return -1;
	}
	snprintf(req, sizeof(req), "%" PRIu64, b->requests);
	snprintf(seed, sizeof(seed), "%" PRIu64, b->seed);
	for (size_t i = 0; i < b->nds; i++) {
		struct bench_dataset *d = &b->ds[i];
		if (!d->generate)
			continue;
		if (bench_mkdirs(d->dir) < 0) {
			tj_warn("bench: %s: %s", d->dir, strerror(errno));
			return -1;
		}
		struct bench_job *j = &jobs[n++];
		memset(j, 0, sizeof(*j));
		j->argv = bench_argv(b->self, "gen", "--scenario", d->scenario, "--load",
				     d->load, "--seed", seed, "--requests", req, "-o",
				     d->dir, "--force", NULL);
		snprintf(j->log, sizeof(j->log), "%s/logs/gen--%s.log", b->results, d->name);
		j->user = d;
		fprintf(b->commands, "tracejoin ");
		bench_argv_print(b->commands, j->argv + 1);
	}
	struct tj_err err = { 0 };
	int rc = bench_jobs_run(jobs, n, b->jobs, job_done, NULL, b, &err);
	for (size_t i = 0; i < n; i++) {
		struct bench_dataset *d = jobs[i].user;
		if (rc == 0 && jobs[i].status != 0) {
			char why[256];
			bench_log_tail(jobs[i].log, why, sizeof(why));
			tj_warn("bench: generating %s failed (exit %d): %s; see %s", d->name,
				jobs[i].status, why, jobs[i].log);
			rc = -1;
		} else if (jobs[i].status == 0) {
			unlink(jobs[i].log);
		}
		bench_argv_free(jobs[i].argv);
	}
	if (rc < 0 && err.code)
		tj_warn("bench: %s", err.msg);
	return rc;
}

static void score_one(struct bench_result *r, const struct tj_edge_set *labels,
		      const struct tj_join *join, const char *edges_path)
{
	struct tj_edge_set edges = { 0 };
	struct tj_err err = { 0 };
	struct tj_score s;
	struct tj_score_opts so = { .strict = 0, .labels_name = "labels.csv",
				    .edges_name = edges_path };
	if (tj_edges_read(&edges, edges_path, &err) < 0 ||
	    tj_score_compute(&s, labels, &edges, join, &so, &err) < 0) {
		snprintf(r->error, sizeof(r->error), "scoring: %s", err.msg);
		tj_edges_free(&edges);
		return;
	}
	r->ok = 1;
	r->calls = s.decisions;
	r->precision = s.precision;
	r->recall = s.recall;
	r->f1 = s.f1;
	r->accuracy = s.accuracy;
	r->service_accuracy = s.service_accuracy;
	r->trace_accuracy = s.have_join ? s.trace_accuracy : NAN;
	tj_score_free(&s);
	tj_edges_free(&edges);
}

static int run_correlators(struct bench *b, struct bench_result *res)
{
	size_t n = b->nds * b->nalgos;
	struct bench_job *jobs = calloc(n, sizeof(*jobs));
	char edges_dir[PATH_MAX];
	struct tj_err err = { 0 };
	if (!jobs)
		return -1;
	snprintf(edges_dir, sizeof(edges_dir), "%s/edges", b->results);
	if (bench_mkdirs(edges_dir) < 0) {
		tj_warn("bench: %s: %s", edges_dir, strerror(errno));
		free(jobs);
		return -1;
	}
	for (size_t i = 0; i < b->nds; i++) {
		for (size_t a = 0; a < b->nalgos; a++) {
			size_t k = i * b->nalgos + a;
			struct bench_result *r = &res[k];
			const char *base = strrchr(b->algos[a], '/');
			memset(r, 0, sizeof(*r));
			r->ds = &b->ds[i];
			snprintf(r->algo, sizeof(r->algo), "%s", base ? base + 1 : b->algos[a]);
			char out[PATH_MAX];
			snprintf(out, sizeof(out), "%s/%s--%s.csv", edges_dir, b->ds[i].name, r->algo);
			/* The plugin rule applies in each correlate as here; a
			 * built-in ignores --trust-plugin. */
			jobs[k].argv = b->trust_plugin ?
				bench_argv(b->self, "correlate", "--trust-plugin",
					   "--algo", b->algos[a], "-o", out, b->ds[i].dir, NULL) :
				bench_argv(b->self, "correlate", "--algo", b->algos[a],
					   "-o", out, b->ds[i].dir, NULL);
			snprintf(jobs[k].log, sizeof(jobs[k].log), "%s/logs/%s--%s.log",
				 b->results, b->ds[i].name, r->algo);
			jobs[k].user = r->algo;
			fprintf(b->commands, "tracejoin ");
			bench_argv_print(b->commands, jobs[k].argv + 1);
		}
	}
	fflush(b->commands);
	int rc = bench_jobs_run(jobs, n, b->jobs, job_done, progress, b, &err);
	if (b->tty)
		fprintf(stderr, "\r\033[K");
	if (rc < 0)
		tj_warn("bench: %s", err.msg);

	/* Score, dataset by dataset: labels and the cross-node join once. */
	for (size_t i = 0; i < b->nds && rc == 0; i++) {
		struct tj_edge_set labels = { 0 };
		struct tj_join *join = NULL;
		char lp[PATH_MAX], *dir = b->ds[i].dir;
		int damaged = 0, model_tried = 0, model_ok = 0;
		struct tj_xmodel model = { 0 };
		snprintf(lp, sizeof(lp), "%s/labels.csv", dir);
		int ok = tj_edges_read(&labels, lp, &err) == 0 &&
			 tj_sha256_file(lp, b->ds[i].labels_sha, &err) == 0 &&
			 tj_join_from_logs(&join, &dir, 1, &damaged, &err) == 0;
		for (size_t a = 0; a < b->nalgos; a++) {
			size_t k = i * b->nalgos + a;
			struct bench_result *r = &res[k];
			struct bench_job *j = &jobs[k];
			r->cpu_s = j->cpu_s;
			r->peak_mb = j->peak_mb;
			r->events = bench_events_from_log(j->log);
			r->mev_s = j->cpu_s > 0 ? (double)r->events / j->cpu_s / 1e6 : NAN;
			char out[PATH_MAX];
			snprintf(out, sizeof(out), "%s/%s--%s.csv", edges_dir, b->ds[i].name, r->algo);
			if (!ok) {
				snprintf(r->error, sizeof(r->error), "%s", err.msg);
			} else if (j->status != 0 && j->status != TJ_EXIT_DAMAGED) {
				char why[200];
				bench_log_tail(j->log, why, sizeof(why));
				snprintf(r->error, sizeof(r->error), "exit %d: %s", j->status, why);
			} else {
				score_one(r, &labels, join, out);
				/* the report's drill-down: not a result, so a failure
				 * here is a warning */
				struct tj_err de = { 0 };
				if (r->ok && !model_tried) { /* one replay per dataset */
					struct tj_xmodel_opts mo = { .truth = &labels,
								     .truth_name = lp };
					model_tried = 1;
					model_ok = tj_xmodel_build(&model, &dir, 1, &mo, &de) == 0;
					if (!model_ok)
						tj_warn("bench: drill-down of %s: %s", b->ds[i].name, de.msg);
				}
				if (r->ok && model_ok &&
				    bench_write_drilldown(b->results, b->ds[i].name, r->algo,
							  &model, out, &de))
					tj_warn("bench: drill-down of %s on %s: %s", r->algo,
						b->ds[i].name, de.msg);
			}
			if (!r->ok)
				b->failures++;
			if (!b->keep_edges) {
				unlink(out);
				if (r->ok)
					unlink(j->log);
			}
		}
		tj_join_free(join);
		tj_xmodel_free(&model);
		tj_edges_free(&labels);
	}
	if (!b->keep_edges)
		rmdir(edges_dir);
	snprintf(edges_dir, sizeof(edges_dir), "%s/logs", b->results);
	rmdir(edges_dir); /* kept only when something failed */
	for (size_t k = 0; k < n; k++)
		bench_argv_free(jobs[k].argv);
	free(jobs);
	return rc;
}

static int write_json(struct bench *b, const struct bench_result *res, size_t n,
		      int argc, char **argv)
{
	char path[PATH_MAX];
	json_t *cmd = json_array();
	for (int i = 0; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	json_t *suite = json_pack("{s:b, s:I, s:I, s:s?, s:s?}",
		"quick", b->quick, "seed", (json_int_t)b->seed, "requests",
		(json_int_t)b->requests, "scenarios", b->scenarios, "loads", b->loads);
	snprintf(path, sizeof(path), "%s/results.json", b->results);
	int rc = bench_write_json(path, cmd, suite, b->ds, b->nds, res, n);
	if (rc != 0)
		tj_warn("bench: %s: could not write", path);
	return rc;
}

static int write_report(struct bench *b, const struct bench_result *res, size_t n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/report.md", b->results);
	struct tj_outfile out;
	struct tj_err err = { 0 };
	FILE *f = NULL;
	if (tj_outfile_open(&out, path, TJ_OUT_FORCE, 0666, NULL, 0, &err) == 0 &&
	    !(f = tj_outfile_stream(&out, &err)))
		tj_outfile_abort(&out);
	if (!f) {
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	json_t *env = bench_envinfo();
	fprintf(f, "# tracejoin bench%s\n\n", b->quick ? " --quick" : "");
	fprintf(f, "tracejoin %s, %s; %s, %lld cores; kernel %s; %s.\n"
		   "Seed %" PRIu64 ", %" PRIu64 " root requests per synthetic dataset. "
		   "Commands that redo every figure: commands.txt.\n\n",
		json_string_value(json_object_get(env, "version")),
		json_string_value(json_object_get(env, "compiler")),
		json_string_value(json_object_get(env, "cpu")),
		(long long)json_integer_value(json_object_get(env, "cores")),
		json_string_value(json_object_get(env, "kernel")),
		json_string_value(json_object_get(env, "date_utc")), b->seed, b->requests);
	json_decref(env);
	fprintf(f, "F1: edge F1 over calls with a parent; trace: share of root requests\n"
		   "whose whole tree is right (TraceWeaver's end-to-end accuracy); service:\n"
		   "share of inbound requests whose calls are all assigned right\n"
		   "(TraceWeaver's per-service accuracy); Mev/s: events per CPU second of\n"
		   "`tracejoin correlate`; peak MB: its maximum resident set.\n\n");
	static const char *const groups[][2] = { { "synthetic", "Synthetic scenarios" },
		{ "traceweaver", "TraceWeaver traces (imported Jaeger JSON)" },
		{ "real", "Labeled real captures" }, { "extra", "Other datasets" } };
	for (size_t g = 0; g < 4; g++) {
		size_t any = 0;
		for (size_t i = 0; i < n; i++)
			any += strcmp(res[i].ds->group, groups[g][0]) == 0;
		if (!any)
			continue;
		fprintf(f, "## %s\n\n", groups[g][1]);
		bench_print_table(f, res, n, groups[g][0], 1);
		fputc('\n', f);
		if (g == 0 && b->plots)
			fprintf(f, "Plots of accuracy against load: plots/<scenario>.svg.\n\n");
	}
	bench_print_default(f, res, n, 1);
	if (tj_outfile_commit(&out, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return -1;
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

/* The results folder, the datasets to run, and commands.txt opened with
 * its header (the command line of this run). */
static int prepare_results(struct bench *b, const struct bench_opts *o, char **argv)
{
	if (o->output)
		snprintf(b->results, sizeof(b->results), "%s", o->output);
	else
		results_dir(b, o->root);
	if (plan_datasets(b) < 0)
		return TJ_EXIT_USAGE;
	if (bench_mkdirs(b->results) < 0 || bench_mkdirs(b->work) < 0) {
		tj_warn("bench: %s: %s", b->results, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/commands.txt", b->results);
	struct tj_err err = { 0 };
	if (tj_outfile_open(&b->commands_out, path, TJ_OUT_FORCE, 0666, NULL, 0, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	if (!(b->commands = tj_outfile_stream(&b->commands_out, &err))) {
		tj_outfile_abort(&b->commands_out);
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	fprintf(b->commands, "# tracejoin %s: every command of this run, in order\n# ", tj_version);
	bench_argv_print(b->commands, argv);
	return 0;
}

/* Generate, correlate and score: *res gets b->nds x b->nalgos results.
 * commands.txt is kept even when a run fails: it is the record of what
 * ran; a write to it that failed is a failure. */
static int run_suite(struct bench *b, struct bench_result **res)
{
	struct tj_err err = { 0 };
	*res = NULL;
	if (b->tty)
		fprintf(stderr, "bench: generating %zu datasets...", b->nds);
	if (generate(b) < 0) {
		if (tj_outfile_commit(&b->commands_out, &err) < 0)
			tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	size_t n = b->nds * b->nalgos;
	*res = calloc(n ? n : 1, sizeof(**res));
	if (!*res || run_correlators(b, *res) < 0) {
		free(*res);
		*res = NULL;
		if (tj_outfile_commit(&b->commands_out, &err) < 0)
			tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	b->commands = NULL;
	if (tj_outfile_commit(&b->commands_out, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		free(*res);
		*res = NULL;
		return TJ_EXIT_FAIL;
	}
	return 0;
}

/* results.csv/json, report.md/html and the plots (a plot that fails is
 * a warning: gnuplot is optional). */
static int write_results(struct bench *b, const struct bench_result *res, size_t n,
			 int argc, char **argv)
{
	int rc = TJ_EXIT_OK;
	char path[PATH_MAX];
	struct tj_err err = { 0 };
	snprintf(path, sizeof(path), "%s/results.csv", b->results);
	if (bench_write_csv(path, res, n, &err) < 0 ||
	    write_json(b, res, n, argc, argv) != 0 || write_report(b, res, n) < 0) {
		tj_warn("bench: %s", err.code ? err.msg : "could not write the results");
		rc = TJ_EXIT_FAIL;
	}
	if (rc == TJ_EXIT_OK && bench_write_html(b->results, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		rc = TJ_EXIT_FAIL;
	}
	if (b->plots) {
		snprintf(path, sizeof(path), "%s/plots", b->results);
		if (bench_write_plots(path, res, n, &err) < 0)
			tj_warn("bench: plots: %s", err.msg);
	}
	return rc;
}

/* The tables on stdout, group by group, and the one-line summary. */
static void print_summary(const struct bench *b, const struct bench_result *res, size_t n)
{
	static const char *const groups[] = { "synthetic", "traceweaver", "real", "extra" };
	for (size_t g = 0; g < 4; g++) {
		size_t any = 0;
		for (size_t i = 0; i < n; i++)
			any += strcmp(res[i].ds->group, groups[g]) == 0;
		if (!any)
			continue;
		printf("\n%s\n", groups[g]);
		bench_print_table(stdout, res, n, groups[g], 0);
	}
	bench_print_default(stdout, res, n, 0);
	printf("\nbench: %zu datasets x %zu correlators in %.0f s, %zu failed; results in %s\n",
	       b->nds, b->nalgos, bench_now() - b->t0, b->failures, b->results);
}

int cmd_bench(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--plan") || !strcmp(argv[i], "--run") ||
		    !strcmp(argv[i], "--collect") || !strcmp(argv[i], "--job"))
			return bench_grid(argc, argv);
	static struct bench b; /* large (dataset table); one per process */
	struct bench_opts o;
	struct bench_result *res;
	int rc;

	if ((rc = parse_opts(argc, argv, &b, &o)) != 0)
		return rc;
	if (o.compare)
		return bench_compare(o.operands[0], o.operands[1], o.threshold,
				     o.speed_threshold, o.fail_reg);
	if ((rc = choose_correlators(&b, o.only)) != 0 ||
	    (rc = find_self(&b)) != 0 ||
	    (rc = prepare_results(&b, &o, argv)) != 0 ||
	    (rc = run_suite(&b, &res)) != 0)
		return rc;
	size_t n = b.nds * b.nalgos;
	rc = write_results(&b, res, n, argc, argv);
	print_summary(&b, res, n);
	free(res);
	return b.failures ? TJ_EXIT_FAIL : rc;
}
