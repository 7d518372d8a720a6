/* `tracejoin bench --compare A B`: what changed between two results
 * folders, row by row (dataset x correlator), with regressions marked. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <csv.h>
#include "bench.h"

enum { C_DATASET, C_ALGO, C_F1, C_TRACE, C_MEVS, C_PEAK, C__N };
static const char *const wanted[C__N] = { "dataset", "correlator", "f1",
	"trace_accuracy", "mev_s", "peak_mb" };

struct crow {
	char dataset[BENCH_NAME_MAX], algo[BENCH_NAME_MAX];
	double v[4]; /* f1, trace, mev_s, peak_mb */
};

struct cparse {
	int col[C__N];       /* csv column of each wanted field */
	size_t field;        /* current column */
	unsigned long line;
	struct crow cur;
	struct crow *rows;
	size_t n, cap;
	int bad;
};

static void on_field(void *s, size_t len, void *data)
{
	struct cparse *p = data;
	char buf[BENCH_NAME_MAX];
	snprintf(buf, sizeof(buf), "%.*s", (int)len, (const char *)s);
	if (p->line == 0) {
		for (int k = 0; k < C__N; k++)
			if (strcmp(buf, wanted[k]) == 0)
				p->col[k] = (int)p->field;
	} else {
		for (int k = 0; k < C__N; k++) {
			if (p->col[k] != (int)p->field)
				continue;
			if (k == C_DATASET)
				snprintf(p->cur.dataset, sizeof(p->cur.dataset), "%s", buf);
			else if (k == C_ALGO)
				snprintf(p->cur.algo, sizeof(p->cur.algo), "%s", buf);
			else
				p->cur.v[k - C_F1] = len ? strtod(buf, NULL) : NAN;
		}
	}
	p->field++;
}

static void on_row(int c, void *data)
{
	struct cparse *p = data;
	(void)c;
	if (p->line == 0) {
		for (int k = 0; k < C__N; k++)
			if (p->col[k] < 0)
				p->bad = 1;
	} else if (!p->bad) {
		if (p->n == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 64;
			struct crow *r = realloc(p->rows, cap * sizeof(*r));
			if (!r) {
				p->bad = 1;
				return;
			}
			p->rows = r;
			p->cap = cap;
		}
		p->rows[p->n++] = p->cur;
	}
	memset(&p->cur, 0, sizeof(p->cur));
	p->field = 0;
	p->line++;
}

static int load(const char *dir, struct cparse *p)
{
	char path[PATH_MAX], buf[65536];
	struct csv_parser csv;
	memset(p, 0, sizeof(*p));
	for (int k = 0; k < C__N; k++)
		p->col[k] = -1;
	snprintf(path, sizeof(path), "%s/results.csv", dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		tj_warn("bench --compare: %s: %s", path, strerror(errno));
		return -1;
	}
	csv_init(&csv, CSV_STRICT | CSV_APPEND_NULL);
	size_t got;
	int rc = 0;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		if (csv_parse(&csv, buf, got, on_field, on_row, p) != got) {
			rc = -1;
			break;
		}
	if (rc == 0 && csv_fini(&csv, on_field, on_row, p) != 0)
		rc = -1;
	csv_free(&csv);
	fclose(f);
	if (rc < 0 || p->bad || p->line == 0) {
		tj_warn("bench --compare: %s: not a results.csv of tracejoin bench%s", path,
			rc < 0 ? " (malformed CSV)" : " (columns missing)");
		free(p->rows);
		return -1;
	}
	return 0;
}

static const struct crow *find(const struct cparse *p, const struct crow *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->rows[i].dataset, key->dataset) &&
		    !strcmp(p->rows[i].algo, key->algo))
			return &p->rows[i];
	return NULL;
}

int bench_compare(const char *dir_a, const char *dir_b, double threshold,
		  double speed_threshold, int fail_on_regression)
{
	struct cparse a, b;
	if (load(dir_a, &a) < 0)
		return TJ_EXIT_FAIL;
	if (load(dir_b, &b) < 0) {
		free(a.rows);
		return TJ_EXIT_FAIL;
	}
	size_t regressions = 0, only_a = 0, only_b = 0;
	printf("%-24s %-12s %16s %16s %18s %14s\n", "dataset", "correlator",
	       "F1 % A->B", "trace % A->B", "Mev/s A->B", "peak MB A->B");
	for (size_t i = 0; i < b.n; i++) {
		const struct crow *y = &b.rows[i], *x = find(&a, y);
		if (!x) {
			only_b++;
			continue;
		}
		int reg_acc = 0, reg_speed = 0;
		for (int k = 0; k < 2; k++)
			if (!isnan(x->v[k]) && (isnan(y->v[k]) || y->v[k] < x->v[k] - threshold))
				reg_acc = 1;
		if (!isnan(x->v[2]) && x->v[2] > 0 && y->v[2] < x->v[2] * (1 - speed_threshold))
			reg_speed = 1;
		if (!isnan(x->v[3]) && x->v[3] > 0 && y->v[3] > x->v[3] * (1 + speed_threshold))
			reg_speed = 1;
		int same = 1;
		for (int k = 0; k < 4; k++)
			if (!(x->v[k] == y->v[k] || (isnan(x->v[k]) && isnan(y->v[k]))))
				same = 0;
		printf("%-24s %-12s %7.1f->%-7.1f %7.1f->%-7.1f %8.2f->%-8.2f %6.0f->%-6.0f%s%s%s\n",
		       y->dataset, y->algo, 100 * x->v[0], 100 * y->v[0], 100 * x->v[1],
		       100 * y->v[1], x->v[2], y->v[2], x->v[3], y->v[3],
		       reg_acc ? "  REGRESSION(accuracy)" : "",
		       reg_speed ? "  REGRESSION(speed/memory)" : "",
		       same ? "  =" : "");
		regressions += reg_acc + reg_speed;
	}
	for (size_t i = 0; i < a.n; i++)
		only_a += find(&b, &a.rows[i]) == NULL;
	printf("\n%zu regressions (accuracy beyond %.3g absolute, speed or memory beyond %.0f%%); "
	       "%zu rows only in A, %zu only in B\n", regressions, threshold,
	       100 * speed_threshold, only_a, only_b);
	free(a.rows);
	free(b.rows);
	return fail_on_regression && regressions ? TJ_EXIT_FAIL : TJ_EXIT_OK;
}
