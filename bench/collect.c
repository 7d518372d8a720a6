/* tracejoin bench --collect, and the last step of `tracejoin bench`:
 * every score job's documents merged into one results folder, with the
 * cost of each correlate job (its status file); for a grid also per cell
 * (scenario x load x correlator) the mean and 95 % confidence interval
 * across seeds.  Missing and failed jobs are named, never dropped. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include "bench.h"
#include "plan.h"
#include "../cli/commands.h"
#include "../lib/manifest.h"
#include "../lib/outfile.h"
#include "../lib/util.h"

static double jnum(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(json_object_get(o, a), b);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *load_status(const struct grid_plan *p, const struct grid_job *j,
			   const char *ext)
{
	char path[PATH_MAX];
	plan_status_path(p, j->id, ext, path, sizeof(path));
	return access(path, F_OK) == 0 ? json_load_file(path, 0, NULL) : NULL;
}

/* Mean and the half-width of its 95 % confidence interval (Student t over
 * the seeds; NaN below two values). */
static void mean_ci(const double *x, size_t n, double *mean, double *hw)
{
	*mean = n ? gsl_stats_mean(x, 1, n) : NAN;
	*hw = n >= 2 ? gsl_cdf_tdist_Pinv(0.975, (double)(n - 1)) *
		       gsl_stats_sd(x, 1, n) / sqrt((double)n) : NAN;
}

struct cell {
	const char *scenario, *load, *algo;
	size_t first;          /* results index of its first row */
};

static void fmt_ci(char *buf, size_t size, double m, double hw)
{
	if (isnan(m))
		snprintf(buf, size, "-");
	else if (isnan(hw))
		snprintf(buf, size, "%.3f", m);
	else
		snprintf(buf, size, "%.3f ± %.3f", m, hw);
}

/* What --collect gathers from the plan's status files: one result per
 * score job, the datasets they point into, and each result's cell. */
struct collection {
	struct bench_dataset *ds;
	struct bench_result *res;
	struct cell *cells;
	size_t *cell_of;       /* res[i] is in cells[cell_of[i]] */
	double *x, *y;         /* scratch for the statistics, one slot a result */
	size_t nr, nd, ncells, failed, missing;
};

/* Planned by `tracejoin bench` (results in the plan's folder, its
 * report), not by --plan (results in DIR/results, cells). */
static int is_bench_layout(json_t *meta)
{
	const char *l = json_string_value(json_object_get(meta, "layout"));
	return l && !strcmp(l, "bench");
}

static void collection_free(struct collection *col)
{
	free(col->ds); free(col->res); free(col->cells); free(col->cell_of);
	free(col->x); free(col->y);
}

static int collection_alloc(struct collection *col, const struct grid_plan *p)
{
	size_t nr = 0, nds = 0;
	for (size_t i = 0; i < p->n; i++) { /* datasets: as gather() groups them */
		nr += p->jobs[i].kind == K_COR;
		nds += i == 0 || p->jobs[i - 1].kind == K_SCORE ||
		       strcmp(p->jobs[i - 1].dataset, p->jobs[i].dataset) != 0;
	}
	memset(col, 0, sizeof(*col));
	col->ds = calloc(nds ? nds : 1, sizeof(*col->ds));
	col->res = calloc(nr ? nr : 1, sizeof(*col->res));
	col->cells = calloc(nr ? nr : 1, sizeof(*col->cells));
	col->cell_of = calloc(nr ? nr : 1, sizeof(*col->cell_of));
	col->x = calloc(nr ? nr : 1, sizeof(*col->x));
	col->y = calloc(nr ? nr : 1, sizeof(*col->y));
	if (!col->ds || !col->res || !col->cells || !col->cell_of || !col->x || !col->y) {
		collection_free(col);
		tj_warn("bench: out of memory");
		return -1;
	}
	return 0;
}

/* The dataset of a score job (each dataset has one). */
static void add_dataset(struct collection *col, const struct grid_job *g)
{
	struct bench_dataset *d = &col->ds[col->nd++];
	snprintf(d->name, sizeof(d->name), "%s", g->dataset);
	snprintf(d->group, sizeof(d->group), "%s", g->group);
	snprintf(d->scenario, sizeof(d->scenario), "%s", g->scenario);
	snprintf(d->load, sizeof(d->load), "%s", g->load);
	d->load_rank = -1;
	for (int l = 0; l < 3; l++)
		if (strcmp(g->load, bench_load_names[l]) == 0)
			d->load_rank = l;
	d->seed = g->seed;
	snprintf(d->dir, sizeof(d->dir), "%s", g->data);
}

/* The figures of a scored correlate job: its score document and its cost. */
static void read_scored(struct bench_result *r, json_t *score, json_t *cor)
{
	r->ok = 1;
	r->precision = jnum(score, "edges", "precision");
	r->recall = jnum(score, "edges", "recall");
	r->f1 = jnum(score, "edges", "f1");
	r->accuracy = jnum(score, "edges", "accuracy");
	r->calls = (uint64_t)jnum(score, "edges", "decisions");
	r->service_accuracy = jnum(score, "per_service", "accuracy");
	r->trace_accuracy = jnum(score, "end_to_end", "accuracy");
	json_t *c = json_object_get(cor, "cpu_s");
	r->cpu_s = json_is_number(c) ? json_number_value(c) : NAN;
	c = json_object_get(cor, "peak_mb");
	r->peak_mb = json_is_number(c) ? json_number_value(c) : NAN;
	r->events = (uint64_t)json_integer_value(json_object_get(cor, "events"));
	r->mev_s = r->cpu_s > 0 ? (double)r->events / r->cpu_s / 1e6 : NAN;
}

/* Why result r has no figures: the first of its chain gen -> correlate ->
 * score that failed, else the first not done.  Counts it in col->failed
 * or col->missing and says so on stderr. */
static void explain_unscored(struct collection *col, const struct grid_plan *p,
			     struct grid_job *const chain[3], int done_exists,
			     struct bench_result *r)
{
	const char *what = "missing";
	for (int k = 2; k >= 0; k--) {
		json_t *f = chain[k] ? load_status(p, chain[k], "failed") : NULL;
		if (f) {
			snprintf(r->error, sizeof(r->error), "job %s failed: %s", chain[k]->id,
				 json_string_value(json_object_get(f, "why")));
			what = "failed";
			json_decref(f);
			break;
		}
	}
	if (!strcmp(what, "missing")) {
		const struct grid_job *first = chain[0];
		for (int k = 2; k >= 0; k--)
			if (chain[k] && !plan_job_done(p, chain[k])) {
				first = chain[k];
				break;
			}
		snprintf(r->error, sizeof(r->error), "job %s not run%s", first->id,
			 done_exists ? " (its output is unreadable)" : "");
		col->missing++;
	} else {
		col->failed++;
	}
	fprintf(stderr, "bench: %s %s on %s: %s\n", what, r->algo, r->ds->name, r->error);
}

/* Result col->nr-1 into its cell: scenario x load x correlator, across seeds. */
static void assign_cell(struct collection *col, const struct grid_job *g)
{
	size_t c = 0;
	while (c < col->ncells && !(strcmp(col->cells[c].scenario, g->scenario) == 0 &&
				    strcmp(col->cells[c].load, g->load) == 0 &&
				    strcmp(col->cells[c].algo, g->algo) == 0))
		c++;
	if (c == col->ncells)
		col->cells[col->ncells++] =
			(struct cell){ g->scenario, g->load, g->algo, col->nr - 1 };
	col->cell_of[col->nr - 1] = c;
}

/* The result of correlate job c of dataset col->ds[col->nd-1]: scored by
 * sc (score job), generated by gen (or NULL). */
static void add_result(struct collection *col, struct grid_plan *p, struct grid_job *c,
		       struct grid_job *sc, struct grid_job *gen)
{
	struct bench_result *r = &col->res[col->nr++];
	r->ds = &col->ds[col->nd - 1];
	snprintf(r->algo, sizeof(r->algo), "%s", c->algo);
	struct grid_job *chain[3] = { sc, c, gen };
	/* the score document: OUT/<edges name>.json */
	char path[PATH_MAX];
	const char *base = strrchr(c->out, '/');
	base = base ? base + 1 : c->out;
	size_t bl = strlen(base);
	snprintf(path, sizeof(path), "%s/%.*s.json", sc ? sc->out : p->dir,
		 (int)(bl > 4 ? bl - 4 : bl), base);
	json_t *cor = load_status(p, c, "done");
	json_t *score = cor && access(path, F_OK) == 0 ? json_load_file(path, 0, NULL) : NULL;
	if (score)
		read_scored(r, score, cor);
	else
		explain_unscored(col, p, chain, cor && sc && plan_job_done(p, sc), r);
	json_decref(score);
	json_decref(cor);
	assign_cell(col, c);
}

/* Every dataset's results: its jobs are consecutive, score last. */
static void gather(struct collection *col, struct grid_plan *p)
{
	for (size_t i = 0; i < p->n;) {
		size_t end = i;
		while (end < p->n && !strcmp(p->jobs[end].dataset, p->jobs[i].dataset) &&
		       p->jobs[end].kind != K_SCORE)
			end++;
		struct grid_job *sc = end < p->n && !strcmp(p->jobs[end].dataset,
							    p->jobs[i].dataset) ? &p->jobs[end] : NULL;
		struct grid_job *gen = p->jobs[i].kind == K_GEN ? &p->jobs[i] : NULL;
		add_dataset(col, sc ? sc : &p->jobs[i]);
		for (size_t k = i; k < end; k++)
			if (p->jobs[k].kind == K_COR)
				add_result(col, p, &p->jobs[k], sc, gen);
		i = sc ? end + 1 : end;
	}
}

/* results.csv, results.json and report.html of the merged results;
 * TJ_EXIT_FAIL when one could not be written. */
static int write_merged(const struct grid_plan *p, struct collection *col, const char *dir,
			json_t *meta)
{
	char path[PATH_MAX];
	struct tj_err err = { 0 };
	int rc = TJ_EXIT_OK;
	snprintf(path, sizeof(path), "%s/results.csv", dir);
	if (bench_write_csv(path, col->res, col->nr, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		rc = TJ_EXIT_FAIL;
	}
	/* the run as planned: its command line and suite (plan/suite.json) */
	json_t *cmd = json_deep_copy(json_object_get(meta, "command"));
	json_t *suite = json_deep_copy(json_object_get(meta, "suite"));
	if (!cmd)
		cmd = json_pack("[s,s,s,s]", "tracejoin", "bench", "--collect", p->dir);
	if (!suite)
		suite = json_object();
	if (!is_bench_layout(meta)) {
		json_object_set_new(suite, "plan", json_string(p->dir));
		json_object_set_new(suite, "datasets", json_integer((json_int_t)col->nd));
		json_object_set_new(suite, "jobs", json_integer((json_int_t)p->n));
	}
	for (size_t i = 0; i < col->nd; i++) {
		char lp[PATH_MAX];
		snprintf(lp, sizeof(lp), "%s/labels.csv", col->ds[i].dir);
		tj_sha256_file(lp, col->ds[i].labels_sha, NULL);
	}
	snprintf(path, sizeof(path), "%s/results.json", dir);
	if (bench_write_json(path, cmd, suite, col->ds, col->nd, col->res, col->nr) != 0) {
		tj_warn("bench: %s: could not write", path);
		rc = TJ_EXIT_FAIL;
	} else if (bench_write_html(dir, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		rc = TJ_EXIT_FAIL;
	}
	return rc;
}

/* One cell's figures: mean and CI of F1, trace and service accuracy, and
 * against the best correlator of its scenario x load (by mean F1) the
 * paired difference over the same seeds. */
struct cell_stats {
	double m[3], hw[3];
	size_t k[3];           /* values behind m[f] (k[0]: the seeds scored) */
	size_t best;
	double dm, dhw;
	const char *sig;
};

static void cell_stats(const struct collection *col, size_t c, struct cell_stats *st)
{
	const struct bench_result *res = col->res;
	double *x = col->x, *y = col->y;
	for (int f = 0; f < 3; f++) {
		st->k[f] = 0;
		for (size_t i = 0; i < col->nr; i++) {
			double v = f == 0 ? res[i].f1 : f == 1 ? res[i].trace_accuracy
							       : res[i].service_accuracy;
			if (col->cell_of[i] == c && res[i].ok && !isnan(v))
				x[st->k[f]++] = v;
		}
		mean_ci(x, st->k[f], &st->m[f], &st->hw[f]);
	}
	st->best = c;
	double bm = -1;
	for (size_t o = 0; o < col->ncells; o++) {
		if (strcmp(col->cells[o].scenario, col->cells[c].scenario) ||
		    strcmp(col->cells[o].load, col->cells[c].load))
			continue;
		size_t kk = 0;
		for (size_t i = 0; i < col->nr; i++)
			if (col->cell_of[i] == o && res[i].ok && !isnan(res[i].f1))
				y[kk++] = res[i].f1;
		double mm = kk ? gsl_stats_mean(y, 1, kk) : -1;
		if (mm > bm) {
			bm = mm;
			st->best = o;
		}
	}
	/* pair the seeds: the row of the same dataset in the best cell */
	size_t kd = 0;
	for (size_t i = 0; i < col->nr && st->best != c; i++) {
		if (col->cell_of[i] != c || !res[i].ok || isnan(res[i].f1))
			continue;
		for (size_t q = 0; q < col->nr; q++)
			if (col->cell_of[q] == st->best && res[q].ds == res[i].ds && res[q].ok &&
			    !isnan(res[q].f1))
				x[kd++] = res[i].f1 - res[q].f1;
	}
	mean_ci(x, kd, &st->dm, &st->dhw);
	st->sig = st->best == c ? "best" : isnan(st->dhw) ? "?" :
		  fabs(st->dm) <= st->dhw ? "n.s." : "yes";
}

/* A cell's line in cells.csv, report.md and on stdout. */
static void print_cell(FILE *fc, FILE *fm, const struct cell *cl, size_t c,
		       const struct cell_stats *st)
{
	char s[3][48], vs[64];
	int best = st->best == c;
	for (int f = 0; f < 3; f++)
		fmt_ci(s[f], sizeof(s[f]), st->m[f], st->hw[f]);
	if (best)
		snprintf(vs, sizeof(vs), "best");
	else if (isnan(st->dm))
		snprintf(vs, sizeof(vs), "-");
	else if (isnan(st->dhw))
		snprintf(vs, sizeof(vs), "%+.3f", st->dm);
	else
		snprintf(vs, sizeof(vs), "%+.3f ± %.3f%s", st->dm, st->dhw,
			 strcmp(st->sig, "n.s.") ? "" : " n.s.");
	fprintf(fc, "%s,%s,%s,%zu,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s\n",
		cl->scenario, cl->load, cl->algo, st->k[0], st->m[0], st->hw[0], st->m[1],
		st->hw[1], st->m[2], st->hw[2], best ? 0.0 : st->dm, best ? 0.0 : st->dhw,
		st->sig);
	fprintf(fm, "| %s | %s | %s | %zu | %s | %s | %s | %s |\n", cl->scenario,
		cl->load, cl->algo, st->k[0], s[0], s[1], s[2], vs);
	printf("%-18s %-6s %-22s %5zu %15s %15s %15s  %s\n", cl->scenario,
	       cl->load, cl->algo, st->k[0], s[0], s[1], s[2], vs);
}

/* cells.csv and report.md: mean ± 95 % CI per cell; against the cell's
 * best correlator by F1, the paired difference over the same seeds:
 * "n.s." when its interval holds 0.  -1 when a file could not be opened
 * (nothing more to do), 1 when one could not be committed, else 0. */
static int write_cells(const struct grid_plan *p, const struct collection *col,
		       const char *dir)
{
	char path[PATH_MAX], mdpath[PATH_MAX];
	struct tj_err err = { 0 };
	struct tj_outfile oc, om;
	snprintf(path, sizeof(path), "%s/cells.csv", dir);
	snprintf(mdpath, sizeof(mdpath), "%s/report.md", dir);
	if (tj_outfile_open(&oc, path, TJ_OUT_FORCE, 0666, NULL, 0, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	if (tj_outfile_open(&om, mdpath, TJ_OUT_FORCE, 0666, NULL, 0, &err) < 0) {
		tj_outfile_abort(&oc);
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	FILE *fc = tj_outfile_stream(&oc, &err), *fm = tj_outfile_stream(&om, &err);
	if (!fc || !fm) {
		tj_outfile_abort(&oc);
		tj_outfile_abort(&om);
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	fputs("scenario,load,correlator,seeds,f1_mean,f1_ci95,trace_mean,trace_ci95,"
	      "service_mean,service_ci95,f1_vs_best,f1_vs_best_ci95,significant\n", fc);
	fprintf(fm, "# tracejoin bench grid\n\nPlan: %s/plan/jobs.tsv. Per cell the mean over "
		"the seeds and the half-width of its 95 %% confidence interval (Student t). "
		"\"vs best\": the paired difference to the cell's best correlator by F1 over "
		"the same seeds; n.s. when its interval holds 0.\n\n"
		"| scenario | load | correlator | seeds | F1 | trace | service | vs best |\n"
		"|---|---|---|---:|---:|---:|---:|---|\n", p->dir);
	printf("%-18s %-6s %-22s %5s %15s %15s %15s  %s\n", "scenario", "load", "correlator",
	       "seeds", "F1", "trace", "service", "vs best F1");
	for (size_t c = 0; c < col->ncells; c++) {
		struct cell_stats st;
		cell_stats(col, c, &st);
		print_cell(fc, fm, &col->cells[c], c, &st);
	}
	fputs("\n## Every dataset\n\n", fm);
	bench_print_table(fm, col->res, col->nr, "synthetic", 1);
	if (col->failed + col->missing) {
		fprintf(fm, "\n## Not scored\n\n");
		for (size_t i = 0; i < col->nr; i++)
			if (!col->res[i].ok)
				fprintf(fm, "- %s on %s: %s\n", col->res[i].algo,
					col->res[i].ds->name, col->res[i].error);
	}
	if (tj_outfile_commit(&oc, &err) < 0 || tj_outfile_commit(&om, &err) < 0) {
		tj_outfile_abort(&om);
		tj_warn("bench: %s", err.msg);
		return 1;
	}
	return 0;
}

/* report.md of `tracejoin bench`'s layout, and its tables on stdout;
 * TJ_EXIT_FAIL when it could not be written. */
static int write_bench_report(const struct collection *col, const char *dir, json_t *meta,
			      int plots)
{
	char path[PATH_MAX];
	struct tj_err err = { 0 };
	snprintf(path, sizeof(path), "%s/report.md", dir);
	if (bench_write_report(path, json_object_get(meta, "suite"), plots, col->res, col->nr,
			       &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	bench_print_groups(stdout, col->res, col->nr, 0, 0);
	return TJ_EXIT_OK;
}

/* A training plan's outcome: each model trained, or why not (the train
 * job's failure, else the first of its gen jobs that failed or is not
 * done).  TJ_EXIT_FAIL when a model is missing. */
static int collect_models(struct grid_plan *p, struct collect_summary *sum)
{
	size_t missing = 0, n = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct grid_job *t = &p->jobs[i];
		if (t->kind != K_TRAIN)
			continue;
		n++;
		if (plan_job_done(p, t)) {
			printf("bench: model %s: %s\n", t->id + strlen("train--"), t->out);
			continue;
		}
		missing++;
		json_t *f = load_status(p, t, "failed");
		const char *why = json_string_value(json_object_get(f, "why"));
		fprintf(stderr, "bench: %s %s: %s\n", f ? "failed" : "missing", t->id,
			why ? why : "not run");
		json_decref(f);
		for (const char *d = t->deps; *d;) { /* the datasets it lacks */
			size_t len = strcspn(d, ",");
			char id[512];
			snprintf(id, sizeof(id), "%.*s", (int)len, d);
			struct grid_job *g = plan_find(p, id);
			json_t *gf = g ? load_status(p, g, "failed") : NULL;
			if (gf)
				fprintf(stderr, "bench: failed %s: %s\n", id,
					json_string_value(json_object_get(gf, "why")));
			json_decref(gf);
			d += len + (d[len] == ',');
		}
	}
	if (sum)
		*sum = (struct collect_summary){ .results = n, .missing = missing };
	return missing ? TJ_EXIT_FAIL : TJ_EXIT_OK;
}

int grid_collect(struct grid_plan *p, int plots, struct collect_summary *sum)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->jobs[i].kind == K_TRAIN)
			return collect_models(p, sum);

	struct collection col;
	if (collection_alloc(&col, p) < 0)
		return TJ_EXIT_FAIL;
	double t0 = bench_now();
	json_t *meta = plan_read_suite(p->dir);
	int bench = is_bench_layout(meta);
	gather(&col, p);

	char dir[PATH_MAX];
	int rc, cells_rc = 0;
	snprintf(dir, sizeof(dir), bench ? "%s" : "%s/results", p->dir);
	if (bench_mkdirs(dir) < 0) {
		tj_warn("bench: %s: %s", dir, strerror(errno));
		collection_free(&col);
		json_decref(meta);
		return TJ_EXIT_FAIL;
	}
	rc = write_merged(p, &col, dir, meta);
	if (bench) {
		if (write_bench_report(&col, dir, meta, plots) != TJ_EXIT_OK)
			rc = TJ_EXIT_FAIL;
	} else if ((cells_rc = write_cells(p, &col, dir)) < 0) {
		collection_free(&col);
		json_decref(meta);
		return TJ_EXIT_FAIL;
	}
	if (cells_rc > 0)
		rc = TJ_EXIT_FAIL;
	if (plots) {
		char path[PATH_MAX];
		struct tj_err err = { 0 };
		snprintf(path, sizeof(path), "%s/plots", dir);
		if (bench_write_plots(path, col.res, col.nr, &err) < 0)
			tj_warn("bench: plots: %s", err.msg);
	}
	if (!bench)
		printf("\nbench: collected %zu results (%zu cells) in %.3f s: %zu failed, "
		       "%zu missing; results in %s\n", col.nr, col.ncells, bench_now() - t0,
		       col.failed, col.missing, dir);
	if (sum) {
		*sum = (struct collect_summary){ .results = col.nr, .datasets = col.nd,
						 .failed = col.failed, .missing = col.missing };
		sum->algos = col.nd ? col.nr / col.nd : 0;
	}
	rc = col.failed + col.missing ? TJ_EXIT_FAIL : rc;
	collection_free(&col);
	json_decref(meta);
	return rc;
}
