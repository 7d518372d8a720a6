/* report.html: the bench results folder as one self-contained page (no
 * fetch, no external file: CSS, SVG and the small sorting script are
 * inline), so it opens from the file system, offline, in any browser.
 *
 * Everything comes from the folder itself: results.json (the table) and
 * drilldown/<dataset>--<correlator>.json (wrong traces beside their true
 * shape, written by bench with export's waterfall writer).  So `bench`
 * and anything that collects a results folder can call it. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "bench.h"
#include "../lib/outfile.h"

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* NAN when absent or null */
static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}"
	"h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}"
	"table{border-collapse:collapse;font-variant-numeric:tabular-nums}"
	"th,td{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}"
	"th{cursor:pointer;background:#f4f4f4;user-select:none}th:hover{background:#e6e6e6}"
	"td.t,th.t{text-align:left}tr.failed td{color:#a00}"
	"th.asc::after{content:' \\25B2'}th.desc::after{content:' \\25BC'}"
	".pair{display:flex;gap:16px;flex-wrap:wrap;margin:.5em 0 1em}"
	"figure{margin:0}figcaption{font-weight:600;margin-bottom:2px}"
	"svg text{font:11px monospace;fill:#222}"
	".ok{fill:#4a7fc1}.bad{fill:#d33}.f1{fill:#4a7fc1}.tr{fill:#9bc07a}"
	"details{margin:.4em 0}summary{cursor:pointer;font-weight:600}"
	".note{color:#666}";

/* Sort a table by a clicked column: numbers by data-v, else text. */
static const char script[] =
	"document.querySelectorAll('table.sortable').forEach(function(t){"
	"t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){"
	"var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),"
	"up=!th.classList.contains('asc');"
	"t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc')});"
	"th.classList.add(up?'asc':'desc');"
	"rows.sort(function(x,y){var a=x.cells[i],c=y.cells[i],"
	"p=a.getAttribute('data-v'),q=c.getAttribute('data-v'),r;"
	"if(p!==null&&q!==null)r=parseFloat(p)-parseFloat(q);"
	"else r=a.textContent.localeCompare(c.textContent);return up?r:-r});"
	"rows.forEach(function(r){b.appendChild(r)})})})});";

static void cell_pct(FILE *f, double v)
{
	if (isnan(v))
		fputs("<td>-</td>", f);
	else
		fprintf(f, "<td data-v=\"%.6f\">%.1f</td>", v, 100 * v);
}

static void cell_num(FILE *f, double v, const char *fmt)
{
	if (isnan(v)) {
		fputs("<td>-</td>", f);
		return;
	}
	fprintf(f, "<td data-v=\"%.6f\">", v);
	fprintf(f, fmt, v);
	fputs("</td>", f);
}

static void results_table(FILE *f, json_t *rows, json_t *dsmap)
{
	fputs("<table id=\"results\" class=\"sortable\"><thead><tr>"
	      "<th class=\"t\">dataset</th><th class=\"t\">group</th><th class=\"t\">load</th>"
	      "<th class=\"t\">correlator</th><th>F1 %</th><th>trace %</th>"
	      "<th>service %</th><th>precision %</th><th>recall %</th><th>calls</th>"
	      "<th>Mev/s</th><th>peak MB</th></tr></thead><tbody>\n", f);
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		json_t *d = json_object_get(dsmap, str(r, "dataset"));
		int ok = json_is_true(json_object_get(r, "ok"));
		fputs(ok ? "<tr class=\"result\">" : "<tr class=\"result failed\">", f);
		fputs("<td class=\"t\"><a href=\"#ds-", f);
		esc(f, str(r, "dataset"));
		fputs("\">", f);
		esc(f, str(r, "dataset"));
		fputs("</a></td><td class=\"t\">", f);
		esc(f, str(d, "group"));
		fputs("</td><td class=\"t\">", f);
		esc(f, str(d, "load"));
		fputs("</td><td class=\"t\">", f);
		esc(f, str(r, "correlator"));
		fputs("</td>", f);
		if (!ok) {
			fputs("<td class=\"t\" colspan=\"8\">failed: ", f);
			esc(f, str(r, "error"));
			fputs("</td></tr>\n", f);
			continue;
		}
		cell_pct(f, num(r, "f1"));
		cell_pct(f, num(r, "trace_accuracy"));
		cell_pct(f, num(r, "service_accuracy"));
		cell_pct(f, num(r, "precision"));
		cell_pct(f, num(r, "recall"));
		cell_num(f, num(r, "calls"), "%.0f");
		cell_num(f, num(r, "mev_s"), "%.2f");
		cell_num(f, num(r, "peak_mb"), "%.0f");
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

/* F1 and trace accuracy of each correlator on one dataset, as bars. */
static void dataset_bars(FILE *f, json_t *rows, const char *ds)
{
	size_t i, n = 0;
	json_t *r;
	json_array_foreach(rows, i, r)
		n += strcmp(str(r, "dataset"), ds) == 0;
	const int row = 30, left = 130, width = 300;
	fprintf(f, "<svg class=\"bars\" width=\"%d\" height=\"%zu\" role=\"img\">"
		   "<title>F1 (blue) and trace accuracy (green) per correlator</title>\n",
		left + width + 60, n * row + 20);
	size_t k = 0;
	json_array_foreach(rows, i, r) {
		if (strcmp(str(r, "dataset"), ds) != 0)
			continue;
		int y = (int)(k++ * row) + 4;
		fprintf(f, "<text x=\"0\" y=\"%d\">", y + 14);
		esc(f, str(r, "correlator"));
		fputs("</text>", f);
		double v[2] = { num(r, "f1"), num(r, "trace_accuracy") };
		for (int b = 0; b < 2; b++) {
			if (isnan(v[b]))
				continue;
			fprintf(f, "<rect class=\"%s\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"11\"/>"
				   "<text x=\"%.1f\" y=\"%d\">%.1f%%</text>",
				b ? "tr" : "f1", left, y + b * 12, width * v[b], left + width * v[b] + 4,
				y + b * 12 + 10, 100 * v[b]);
		}
		fputc('\n', f);
	}
	fprintf(f, "<text x=\"%d\" y=\"%zu\" class=\"note\">blue: edge F1, green: trace accuracy</text>",
		left, n * row + 14);
	fputs("</svg>\n", f);
}

/* One trace as a waterfall: a row per span, indented by depth, a bar from
 * its start for its length; a wrong parent link in red. */
static void waterfall(FILE *f, json_t *rows, const char *caption)
{
	const int row = 15, label = 200, width = 260;
	double end = 0;
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		double e = num(r, "t") + num(r, "l");
		if (e > end)
			end = e;
	}
	if (!(end > 0))
		end = 1;
	fputs("<figure><figcaption>", f);
	esc(f, caption);
	fprintf(f, "</figcaption><svg class=\"waterfall\" width=\"%d\" height=\"%zu\">\n",
		label + width + 10, json_array_size(rows) * row + 4);
	json_array_foreach(rows, i, r) {
		int y = (int)i * row + 2;
		int depth = (int)num(r, "d");
		int wrong = json_is_true(json_object_get(r, "wrong"));
		fprintf(f, "<text x=\"%d\" y=\"%d\">", depth * 8 > 120 ? 120 : depth * 8, y + 11);
		char text[36];
		snprintf(text, sizeof(text), "%s %s", str(r, "svc"), str(r, "name"));
		esc(f, text);
		fprintf(f, "</text><rect class=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"11\">"
			   "<title>", wrong ? "bad" : "ok", label + width * num(r, "t") / end,
			y + 1, fmax(1.0, width * num(r, "l") / end));
		esc(f, str(r, "key"));
		fprintf(f, ": +%.3f ms, %.3f ms%s</title></rect>\n", num(r, "t") / 1000,
			num(r, "l") / 1000, wrong ? ", parent link wrong" : "");
	}
	fputs("</svg></figure>", f);
}

/* The drill-down of one (dataset, correlator): its wrong traces. */
static int drilldown(FILE *f, const char *dir, const char *ds, const char *algo, int open)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/drilldown/%s--%s.json", dir, ds, algo);
	json_t *d = json_load_file(path, 0, NULL);
	json_t *traces = json_object_get(d, "traces");
	size_t n = json_array_size(traces);
	if (!d || !n) {
		json_decref(d);
		return 0;
	}
	fprintf(f, "<details class=\"drill\"%s><summary>", open ? " open" : "");
	esc(f, algo);
	fprintf(f, ": %zu wrongly reconstructed trace%s (red: a call given the wrong parent)"
		   "</summary>\n", n, n == 1 ? "" : "s");
	size_t i;
	json_t *t;
	json_array_foreach(traces, i, t) {
		fputs("<p class=\"note\">trace of ", f);
		esc(f, str(t, "root"));
		fprintf(f, ", %.0f wrong link%s</p><div class=\"pair\">", num(t, "wrong"),
			num(t, "wrong") == 1 ? "" : "s");
		waterfall(f, json_object_get(t, "got"), "reconstructed");
		waterfall(f, json_object_get(t, "truth"), "true shape");
		fputs("</div>\n", f);
	}
	fputs("</details>\n", f);
	json_decref(d);
	return 1;
}

int bench_write_html(const char *dir, struct tj_err *err)
{
	char path[PATH_MAX];
	json_error_t je;
	snprintf(path, sizeof(path), "%s/results.json", dir);
	json_t *res = json_load_file(path, 0, &je);
	if (!res)
		return tj_errf(err, TJ_E_FORMAT, "%s: line %d: %s", path, je.line, je.text);
	json_t *rows = json_object_get(res, "results"), *dss = json_object_get(res, "datasets");
	if (!json_is_array(rows) || !json_is_array(dss)) {
		json_decref(res);
		return tj_errf(err, TJ_E_FORMAT, "%s: no results or datasets array", path);
	}
	json_t *dsmap = json_object();
	size_t i;
	json_t *d;
	json_array_foreach(dss, i, d)
		json_object_set(dsmap, str(d, "name"), d);

	/* bench owns its results folder: a report there is replaced */
	struct tj_outfile out;
	FILE *f = NULL;
	snprintf(path, sizeof(path), "%s/report.html", dir);
	int opened = tj_outfile_open(&out, path, TJ_OUT_FORCE, 0666, NULL, 0, err) == 0;
	if (!opened || !(f = tj_outfile_stream(&out, err))) {
		if (opened)
			tj_outfile_abort(&out);
		json_decref(dsmap);
		json_decref(res);
		return -err->code;
	}
	json_t *tool = json_object_get(res, "tool");
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<title>tracejoin bench</title><style>%s</style></head><body>\n", style);
	fputs("<h1>tracejoin bench</h1>\n<p>tracejoin ", f);
	esc(f, str(tool, "version"));
	fputs(", ", f);
	esc(f, str(tool, "date_utc"));
	fputs("; ", f);
	esc(f, str(tool, "cpu"));
	fputs(". Redo every figure with commands.txt.</p>\n", f);
	fputs("<p class=\"note\">F1: edge F1 over calls with a parent; trace: share of root "
	      "requests whose whole tree is right; service: share of inbound requests whose "
	      "calls are all right; Mev/s: events per CPU second of the correlator; peak MB: "
	      "its maximum resident set. Click a column to sort.</p>\n<h2>Results</h2>\n", f);
	results_table(f, rows, dsmap);
	fputs("<h2>Datasets</h2>\n<p class=\"note\">Per dataset: each correlator's accuracy, "
	      "and a few traces it reconstructed wrong beside their true shape.</p>\n", f);
	json_array_foreach(dss, i, d) {
		const char *name = str(d, "name");
		fputs("<section class=\"dataset\" id=\"ds-", f);
		esc(f, name);
		fputs("\"><h3>", f);
		esc(f, name);
		fputs("</h3>\n", f);
		dataset_bars(f, rows, name);
		size_t k, shown = 0;
		json_t *r;
		json_array_foreach(rows, k, r)
			if (strcmp(str(r, "dataset"), name) == 0)
				shown += drilldown(f, dir, name, str(r, "correlator"), shown == 0);
		if (!shown)
			fputs("<p class=\"note\">No wrong trace to show (every correlator right, "
			      "or no drill-down recorded).</p>\n", f);
		fputs("</section>\n", f);
	}
	fprintf(f, "<script>%s</script>\n</body></html>\n", script);
	json_decref(dsmap);
	json_decref(res);
	return tj_outfile_commit(&out, err);
}
