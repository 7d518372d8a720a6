/* The benchmark's outputs: the table (terminal and report.md),
 * results.csv, and accuracy-against-load plots drawn by gnuplot. */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <csv.h>
#include "../lib/outfile.h"
#include "bench.h"
#include "../lib/manifest.h"
#include "../correlate/host.h"

static void fig(char *buf, size_t len, double v, int pct)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (pct)
		snprintf(buf, len, "%.1f", 100.0 * v);
	else
		snprintf(buf, len, "%.2f", v);
}

void bench_print_table(FILE *f, const struct bench_result *r, size_t n,
		       const char *group, int markdown)
{
	static const char *const head[] = { "dataset", "load", "correlator", "F1 %",
		"trace %", "service %", "Mev/s", "peak MB" };
	const char *sep = markdown ? " | " : "  ";
	size_t shown = 0;
	for (size_t i = 0; i < n; i++)
		shown += strcmp(r[i].ds->group, group) == 0;
	if (!shown)
		return;
	if (markdown) {
		fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", head[0], head[1],
			head[2], head[3], head[4], head[5], head[6], head[7]);
		fprintf(f, "|---|---|---|---:|---:|---:|---:|---:|\n");
	} else {
		fprintf(f, "%-18s%s%-6s%s%-14s%s%6s%s%7s%s%9s%s%6s%s%7s\n", head[0], sep,
			head[1], sep, head[2], sep, head[3], sep, head[4], sep, head[5],
			sep, head[6], sep, head[7]);
	}
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *x = &r[i];
		if (strcmp(x->ds->group, group) != 0)
			continue;
		char f1[16], tr[16], sv[16], sp[16], mb[16];
		if (!x->ok) {
			if (markdown)
				fprintf(f, "| %s | %s | %s | failed: %s |||||\n", x->ds->scenario,
					x->ds->load, x->algo, x->error);
			else
				fprintf(f, "%-18s%s%-6s%s%-14s%sFAILED: %s\n", x->ds->scenario, sep,
					x->ds->load, sep, x->algo, sep, x->error);
			continue;
		}
		char name[BENCH_NAME_MAX + 16];
		snprintf(name, sizeof(name), "%s%s", x->algo,
			 strcmp(x->algo, TJ_CORRELATOR_DEFAULT) ? "" : " (default)");
		fig(f1, sizeof(f1), x->f1, 1);
		fig(tr, sizeof(tr), x->trace_accuracy, 1);
		fig(sv, sizeof(sv), x->service_accuracy, 1);
		fig(sp, sizeof(sp), x->mev_s, 0);
		snprintf(mb, sizeof(mb), "%.0f", x->peak_mb);
		if (markdown)
			fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
				x->ds->scenario, x->ds->load, name, f1, tr, sv, sp, mb);
		else
			fprintf(f, "%-18s%s%-6s%s%-14s%s%6s%s%7s%s%9s%s%6s%s%7s\n",
				x->ds->scenario, sep, x->ds->load, sep, name, sep, f1,
				sep, tr, sep, sv, sep, sp, sep, mb);
	}
}

/* Whether the default correlator (correlate/host.h) is within 0.5 point
 * F1 of the best on each dataset it ran on: DESIGN.md's bar for it. */
void bench_print_default(FILE *f, const struct bench_result *r, size_t n, int markdown)
{
	size_t ran = 0, within = 0, shown = 0;
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *d = &r[i];
		if (!d->ok || strcmp(d->algo, TJ_CORRELATOR_DEFAULT) || isnan(d->f1))
			continue;
		const struct bench_result *best = d;
		for (size_t j = 0; j < n; j++)
			if (r[j].ok && r[j].ds == d->ds && !isnan(r[j].f1) && r[j].f1 > best->f1)
				best = &r[j];
		ran++;
		if (d->f1 >= best->f1 - 0.005) {
			within++;
			continue;
		}
		fprintf(f, "%s%s %s: default %.1f, best %.1f (%s)\n", shown++ ? "" : "\n",
			markdown ? "-" : " ", d->ds->name, 100 * d->f1, 100 * best->f1, best->algo);
	}
	if (ran)
		fprintf(f, "%sdefault correlator %s: within 0.5 point F1 of the best on %zu of "
			"%zu datasets%s\n", shown ? "\n" : "\n", TJ_CORRELATOR_DEFAULT, within,
			ran, shown ? " (the others above)" : "");
}

static void put_field(FILE *f, const char *s, int last)
{
	csv_fwrite(f, s, strlen(s));
	fputc(last ? '\n' : ',', f);
}

static void put_num(FILE *f, double v, int last)
{
	if (isnan(v))
		fputs(last ? "\n" : ",", f);
	else
		fprintf(f, "%.6g%s", v, last ? "\n" : ",");
}

int bench_write_csv(const char *path, const struct bench_result *r, size_t n,
		    struct tj_err *err)
{
	/* the run's own folder: replaced if there, whole or not at all */
	struct tj_outfile out;
	int rc = tj_outfile_open(&out, path, TJ_OUT_FORCE, 0666, NULL, 0, err);
	if (rc < 0)
		return rc;
	FILE *f = tj_outfile_stream(&out, err);
	if (!f) {
		tj_outfile_abort(&out);
		return -TJ_E_NOMEM;
	}
	fputs("group,dataset,scenario,load,seed,correlator,events,calls,precision,"
	      "recall,f1,accuracy,service_accuracy,trace_accuracy,cpu_s,mev_s,"
	      "peak_mb,error\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *x = &r[i];
		char num[32];
		put_field(f, x->ds->group, 0);
		put_field(f, x->ds->name, 0);
		put_field(f, x->ds->scenario, 0);
		put_field(f, x->ds->load, 0);
		snprintf(num, sizeof(num), "%" PRIu64, x->ds->seed);
		put_field(f, num, 0);
		put_field(f, x->algo, 0);
		snprintf(num, sizeof(num), "%" PRIu64 ",%" PRIu64, x->events, x->calls);
		fprintf(f, "%s,", num);
		double v[] = { x->precision, x->recall, x->f1, x->accuracy,
			       x->service_accuracy, x->trace_accuracy, x->cpu_s,
			       x->mev_s, x->peak_mb };
		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			put_num(f, x->ok ? v[k] : NAN, 0);
		put_field(f, x->ok ? "" : x->error, 1);
	}
	return tj_outfile_commit(&out, err);
}

/* One plot per synthetic scenario: edge F1 and trace accuracy against
 * load, a line per correlator. */
static int plot_scenario(const char *dir, const char *scn,
			 const struct bench_result *r, size_t n,
			 struct tj_err *err)
{
	char gp[PATH_MAX];
	snprintf(gp, sizeof(gp), "%s/%s.gp", dir, scn);
	struct tj_outfile out;
	if (tj_outfile_open(&out, gp, TJ_OUT_FORCE, 0666, NULL, 0, err) < 0)
		return -1;
	FILE *f = tj_outfile_stream(&out, err);
	if (!f) {
		tj_outfile_abort(&out);
		return -1;
	}
	/* Correlators of this scenario, in first-seen order. */
	const char *algos[32];
	size_t na = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(r[i].ds->group, "synthetic") || strcmp(r[i].ds->scenario, scn))
			continue;
		size_t k = 0;
		while (k < na && strcmp(algos[k], r[i].algo))
			k++;
		if (k == na && na < 32)
			algos[na++] = r[i].algo;
	}
	fprintf(f, "set title \"%s: accuracy against load\"\n"
		   "set xlabel \"load\"\nset ylabel \"%%\"\nset yrange [0:105]\n"
		   "set xrange [-0.3:2.3]\nset xtics (\"low\" 0, \"medium\" 1, \"high\" 2)\n"
		   "set key outside right\nset grid\n", scn);
	for (int term = 0; term < 2; term++) {
		fprintf(f, "set terminal %s size 800,450\nset output \"%s.%s\"\nplot ",
			term ? "pngcairo" : "svg", scn, term ? "png" : "svg");
		for (size_t k = 0; k < na; k++)
			fprintf(f, "%s'-' with linespoints lc %zu pt 7 title \"%s F1\", "
				   "'-' with linespoints lc %zu pt 6 dashtype 2 title \"%s trace\"",
				k ? ", " : "", k + 1, algos[k], k + 1, algos[k]);
		fputc('\n', f);
		for (size_t k = 0; k < na; k++) {
			for (int metric = 0; metric < 2; metric++) {
				for (size_t i = 0; i < n; i++) {
					const struct bench_result *x = &r[i];
					if (!x->ok || strcmp(x->ds->group, "synthetic") ||
					    strcmp(x->ds->scenario, scn) || strcmp(x->algo, algos[k]) ||
					    x->ds->load_rank < 0)
						continue;
					double v = metric ? x->trace_accuracy : x->f1;
					if (!isnan(v))
						fprintf(f, "%d %.3f\n", x->ds->load_rank, 100 * v);
				}
				fputs("e\n", f);
			}
		}
	}
	/* Every write is checked here: gnuplot never reads a cut script. */
	if (tj_outfile_commit(&out, err) < 0)
		return -1;
	char cmd[PATH_MAX * 2 + 64];
	snprintf(cmd, sizeof(cmd), "cd '%s' && gnuplot '%s.gp' 2>/dev/null", dir, scn);
	int st = system(cmd);
	if (st != 0)
		return tj_errf(err, TJ_E_IO, "gnuplot failed on %s (is gnuplot installed? make deps)", gp);
	return 0;
}

int bench_write_plots(const char *dir, const struct bench_result *r, size_t n,
		      struct tj_err *err)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(r[i].ds->group, "synthetic") != 0)
			continue;
		size_t j = 0;
		while (j < i && (strcmp(r[j].ds->group, "synthetic") ||
				 strcmp(r[j].ds->scenario, r[i].ds->scenario)))
			j++;
		if (j < i)
			continue; /* plotted already */
		int rc = plot_scenario(dir, r[i].ds->scenario, r, n, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int bench_write_json(const char *path, json_t *command, json_t *suite,
		     const struct bench_dataset *ds, size_t nds,
		     const struct bench_result *res, size_t n)
{
	json_t *root = json_object(), *dss = json_array(), *rows = json_array();
	json_object_set_new(root, "tool", bench_envinfo());
	json_object_set_new(root, "command", command);
	json_object_set_new(root, "suite", suite);
	for (size_t i = 0; i < nds; i++) {
		const struct bench_dataset *d = &ds[i];
		char mp[PATH_MAX], msha[65] = "";
		snprintf(mp, sizeof(mp), "%s/manifest.json", d->dir);
		tj_sha256_file(mp, msha, NULL);
		json_array_append_new(dss, json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}",
			"name", d->name, "group", d->group, "scenario", d->scenario,
			"load", d->load, "seed", (json_int_t)d->seed, "dir", d->dir,
			"labels_sha256", d->labels_sha, "manifest_sha256", msha));
	}
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *r = &res[i];
		json_t *o = json_pack("{s:s, s:s, s:b}", "dataset", r->ds->name,
				      "correlator", r->algo, "ok", r->ok);
		if (r->ok) {
			const char *k[] = { "precision", "recall", "f1", "accuracy",
					    "service_accuracy", "trace_accuracy", "cpu_s",
					    "mev_s", "peak_mb" };
			double v[] = { r->precision, r->recall, r->f1, r->accuracy,
				       r->service_accuracy, r->trace_accuracy, r->cpu_s,
				       r->mev_s, r->peak_mb };
			for (size_t x = 0; x < sizeof(v) / sizeof(v[0]); x++)
				json_object_set_new(o, k[x], isnan(v[x]) ? json_null() : json_real(v[x]));
			json_object_set_new(o, "events", json_integer((json_int_t)r->events));
			json_object_set_new(o, "calls", json_integer((json_int_t)r->calls));
		} else {
			json_object_set_new(o, "error", json_string(r->error));
		}
		json_array_append_new(rows, o);
	}
	json_object_set_new(root, "datasets", dss);
	json_object_set_new(root, "results", rows);
	int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	return rc;
}

static const char *const group_titles[][2] = {
	{ "synthetic", "Synthetic scenarios" },
	{ "traceweaver", "TraceWeaver traces (imported Jaeger JSON)" },
	{ "real", "Labeled real captures" },
	{ "extra", "Other datasets" },
};

void bench_print_groups(FILE *f, const struct bench_result *res, size_t n, int markdown,
			int plots)
{
	for (size_t g = 0; g < sizeof(group_titles) / sizeof(group_titles[0]); g++) {
		size_t any = 0;
		for (size_t i = 0; i < n; i++)
			any += strcmp(res[i].ds->group, group_titles[g][0]) == 0;
		if (!any)
			continue;
		if (!markdown) {
			fprintf(f, "\n%s\n", group_titles[g][0]);
			bench_print_table(f, res, n, group_titles[g][0], 0);
			continue;
		}
		fprintf(f, "## %s\n\n", group_titles[g][1]);
		bench_print_table(f, res, n, group_titles[g][0], 1);
		fputc('\n', f);
		if (g == 0 && plots)
			fprintf(f, "Plots of accuracy against load: plots/<scenario>.svg.\n\n");
	}
	bench_print_default(f, res, n, markdown);
}

int bench_write_report(const char *path, json_t *suite, int plots,
		       const struct bench_result *res, size_t n, struct tj_err *err)
{
	struct tj_outfile out;
	FILE *f = NULL;
	if (tj_outfile_open(&out, path, TJ_OUT_FORCE, 0666, NULL, 0, err) < 0)
		return -1;
	if (!(f = tj_outfile_stream(&out, err))) {
		tj_outfile_abort(&out);
		return -1;
	}
	json_t *env = bench_envinfo();
	fprintf(f, "# tracejoin bench%s\n\n",
		json_is_true(json_object_get(suite, "quick")) ? " --quick" : "");
	fprintf(f, "tracejoin %s, %s; %s, %lld cores; kernel %s; %s.\n"
		   "Seed %" PRIu64 ", %" PRIu64 " root requests per synthetic dataset. "
		   "Commands that redo every figure: commands.txt.\n\n",
		json_string_value(json_object_get(env, "version")),
		json_string_value(json_object_get(env, "compiler")),
		json_string_value(json_object_get(env, "cpu")),
		(long long)json_integer_value(json_object_get(env, "cores")),
		json_string_value(json_object_get(env, "kernel")),
		json_string_value(json_object_get(env, "date_utc")),
		(uint64_t)json_integer_value(json_object_get(suite, "seed")),
		(uint64_t)json_integer_value(json_object_get(suite, "requests")));
	json_decref(env);
	fprintf(f, "F1: edge F1 over calls with a parent; trace: share of root requests\n"
		   "whose whole tree is right (TraceWeaver's end-to-end accuracy); service:\n"
		   "share of inbound requests whose calls are all assigned right\n"
		   "(TraceWeaver's per-service accuracy); Mev/s: events per CPU second of\n"
		   "`tracejoin correlate`; peak MB: its maximum resident set.\n\n");
	bench_print_groups(f, res, n, 1, plots);
	return tj_outfile_commit(&out, err);
}
