/* The plan of a benchmark run (plan.h): made from a spec, written, read
 * back.  One plan for `make bench` and for grids, so both run the same
 * jobs through the same executors. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "plan.h"
#include "../lib/outfile.h"
#include "../lib/util.h"

const char *const plan_kind_names[K_N] = { "gen", "correlate", "score", "train" };

#define PLAN_FIELDS 14

static struct grid_job *plan_add(struct grid_plan *p)
{
	if (tj_grow((void **)&p->jobs, &p->cap, p->n + 1, sizeof(*p->jobs)) < 0)
		return NULL;
	struct grid_job *j = &p->jobs[p->n++];
	memset(j, 0, sizeof(*j));
	return j;
}

void plan_free(struct grid_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct grid_job *j = &p->jobs[i];
		free(j->id); free(j->out); free(j->deps); free(j->dataset);
		free(j->data); free(j->group); free(j->scenario); free(j->load);
		free(j->algo);
		bench_argv_free(j->argv);
	}
	free(p->jobs);
	memset(p, 0, sizeof(*p));
}

void plan_safe_name(char *s)
{
	for (; *s; s++)
		if (*s == '/' || *s == '\t' || *s == ' ' || *s == '\n')
			*s = '_';
}

struct grid_job *plan_find(struct grid_plan *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->jobs[i].id, id) == 0)
			return &p->jobs[i];
	return NULL;
}

int plan_write(const struct grid_plan *p, const char *path, unsigned flags,
	       struct tj_err *err)
{
	struct tj_outfile o;
	if (tj_outfile_open(&o, path, flags, 0666, NULL, 0, err) < 0)
		return -1;
	FILE *f = tj_outfile_stream(&o, err);
	if (!f) {
		tj_outfile_abort(&o);
		return -1;
	}
	fputs(PLAN_VERSION_LINE "\n# id\tkind\tdeps\toutput\tdataset\tdata\tgroup\tscenario\t"
	      "load\tseed\tcorrelator\tmem_mb\tcpus\tcommand\n", f);
	for (size_t i = 0; i < p->n; i++) {
		const struct grid_job *j = &p->jobs[i];
		fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%" PRIu64 "\t%s\t%u\t%u\t", j->id,
			plan_kind_names[j->kind], j->deps[0] ? j->deps : "-", j->out, j->dataset,
			j->data, j->group, j->scenario, j->load[0] ? j->load : "-", j->seed,
			j->algo ? j->algo : "-", j->mem_mb, j->cpus);
		bench_argv_print(f, j->argv);
	}
	return tj_outfile_commit(&o, err);
}

char **plan_split_words(const char *s)
{
	size_t cap = 16, n = 0;
	char **v = calloc(cap, sizeof(*v));
	char *w = malloc(strlen(s) + 1);
	if (!v || !w)
		goto oom;
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s || *s == '\n')
			break;
		size_t k = 0;
		while (*s && *s != ' ' && *s != '\n') {
			if (*s == '\'') {
				for (s++; *s && *s != '\''; s++)
					w[k++] = *s;
				if (*s)
					s++;
			} else if (*s == '\\' && s[1]) {
				w[k++] = s[1];
				s += 2;
			} else {
				w[k++] = *s++;
			}
		}
		w[k] = '\0';
		if (n + 2 > cap) {
			char **nv = realloc(v, 2 * cap * sizeof(*v));
			if (!nv)
				goto oom;
			v = nv;
			cap *= 2;
		}
		if (!(v[n++] = strdup(w)))
			goto oom;
		v[n] = NULL;
	}
	free(w);
	if (n == 0) {
		free(v);
		return NULL;
	}
	return v;
oom:
	free(w);
	bench_argv_free(v);
	return NULL;
}

/* One line's fields into j; 0, or -1 (malformed or out of memory). */
static int parse_job(struct grid_job *j, char **field)
{
	int kind = -1;
	for (int k = 0; k < K_N; k++)
		if (strcmp(field[1], plan_kind_names[k]) == 0)
			kind = k;
	char *end, *end_mem, *end_cpus;
	errno = 0;
	j->seed = strtoull(field[9], &end, 10);
	unsigned long mem = strtoul(field[11], &end_mem, 10);
	unsigned long cpus = strtoul(field[12], &end_cpus, 10);
	j->id = strdup(field[0]);
	j->deps = strdup(strcmp(field[2], "-") ? field[2] : "");
	j->out = strdup(field[3]);
	j->dataset = strdup(field[4]);
	j->data = strdup(field[5]);
	j->group = strdup(field[6]);
	j->scenario = strdup(field[7]);
	j->load = strdup(strcmp(field[8], "-") ? field[8] : "");
	j->algo = strcmp(field[10], "-") ? strdup(field[10]) : NULL;
	j->argv = plan_split_words(field[13]);
	j->kind = (enum grid_kind)(kind < 0 ? 0 : kind);
	j->mem_mb = (unsigned)mem;
	j->cpus = (unsigned)cpus;
	return kind < 0 || *end || *end_mem || *end_cpus || errno || !field[9][0] ||
	       mem > 1u << 30 || cpus > 4096 || !j->id || !j->deps || !j->out || !j->dataset ||
	       !j->data || !j->group || !j->scenario || !j->load || !j->argv ||
	       (kind == K_COR) != (j->algo != NULL) || strcmp(j->argv[0], "tracejoin") != 0
	       ? -1 : 0;
}

int plan_read(struct grid_plan *p, const char *dir, struct tj_err *err)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	int lineno = 0, rc = 0;
	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/plan/jobs.tsv", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s (make it with --plan)", path, strerror(errno));
	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		if (++lineno == 1) {
			if (strcmp(line, PLAN_VERSION_LINE "\n") != 0)
				rc = tj_errf(err, TJ_E_FORMAT, "%s:1: not a plan of this tracejoin "
					     "(want the line '%s'); plan it again with --plan",
					     path, PLAN_VERSION_LINE);
			continue;
		}
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char *field[PLAN_FIELDS], *s = line;
		int nf = 0;
		for (; nf < PLAN_FIELDS; nf++) {
			field[nf] = s;
			char *t = nf < PLAN_FIELDS - 1 ? strchr(s, '\t') : NULL;
			if (nf < PLAN_FIELDS - 1 && !t)
				break;
			if (t) {
				*t = '\0';
				s = t + 1;
			}
		}
		struct grid_job *j = nf == PLAN_FIELDS ? plan_add(p) : NULL;
		if (!j)
			rc = tj_errf(err, TJ_E_FORMAT, "%s:%d: %s", path, lineno,
				     nf == PLAN_FIELDS ? "out of memory"
						       : "not 14 tab-separated fields");
		else if (parse_job(j, field) < 0)
			rc = tj_errf(err, TJ_E_FORMAT, "%s:%d: a malformed job", path, lineno);
	}
	fclose(f);
	free(line);
	if (rc == 0 && p->n == 0)
		rc = tj_errf(err, TJ_E_FORMAT, "%s: no jobs", path);
	if (rc < 0)
		plan_free(p);
	return rc;
}

int bench_plan_check(const char *dir, size_t *njobs, struct tj_err *err)
{
	struct grid_plan p;
	if (plan_read(&p, dir, err) < 0)
		return -1;
	/* what the runners rely on: every dependency is a job of the plan */
	int rc = 0;
	*njobs = p.n;
	for (size_t i = 0; i < p.n && rc == 0; i++)
		for (const char *d = p.jobs[i].deps; *d && rc == 0;) {
			size_t len = strcspn(d, ",");
			int found = 0;
			for (size_t k = 0; k < p.n && !found; k++)
				found = strlen(p.jobs[k].id) == len && !strncmp(p.jobs[k].id, d, len);
			if (!found)
				rc = tj_errf(err, TJ_E_FORMAT, "%s/plan/jobs.tsv: job %s needs %.*s, "
					     "which is not in the plan", dir, p.jobs[i].id, (int)len, d);
			d += len + (d[len] == ',');
		}
	plan_free(&p);
	return rc;
}

void plan_status_path(const struct grid_plan *p, const char *id, const char *ext,
			char *buf, size_t size)
{
	snprintf(buf, size, "%s/status/%s.%s", p->dir, id, ext);
}

int plan_job_done(const struct grid_plan *p, const struct grid_job *j)
{
	char path[PATH_MAX];
	plan_status_path(p, j->id, "done", path, sizeof(path));
	return access(path, F_OK) == 0;
}

/* ---- resources ---- */

/* Peak resident memory in MB at 20 000 root requests, the largest over
 * the built-in suite: correlators from make bench's results.csv (peak_mb,
 * 2026-12-07), gen and score (a dataset's score job with drill-downs)
 * by /usr/bin/time on the largest datasets (fanout, deep-chain at high
 * load); DECISIONS.md "Grid resources".  Other correlators (plugins) get
 * the largest. */
/* train: the larger peak of `make models`' two fits (order.model's
 * self-fed fit on 96 datasets of 1 000 requests: 491 MB; default.model
 * 137 MB), not scaled with --requests: it grows with the union of the
 * datasets, so a larger training plan gives --mem train=MB */
#define TRAIN_PEAK_MB 492
static const struct {
	const char *what;
	unsigned peak_mb;
} measured_peaks[] = {
	{ "gen", 32 },
	{ "score", 200 },
	{ "correlate:metadata", 79 },
	{ "correlate:regression", 37 },
	{ "correlate:classifier", 30 },
	{ "correlate:order-logit", 30 },
	{ "correlate:order-align", 30 },
	{ "correlate", 79 },
	{ "train", TRAIN_PEAK_MB },
};

/* The override of "KIND[:ALGO]=N" for kind (and algo) in list, else 0. */
static unsigned override(const char *const *list, size_t n, const char *kind,
			 const char *algo)
{
	unsigned v = 0;
	size_t kl = strlen(kind);
	for (size_t i = 0; i < n; i++) {
		const char *s = list[i], *eq = strchr(s, '=');
		if (strncmp(s, kind, kl) != 0)
			continue;
		if (s + kl == eq)       /* the kind's: unless one for the algo follows */
			v = v ? v : (unsigned)strtoul(eq + 1, NULL, 10);
		else if (algo && s[kl] == ':' && (size_t)(eq - s - kl - 1) == strlen(algo) &&
			 !strncmp(s + kl + 1, algo, strlen(algo)))
			return (unsigned)strtoul(eq + 1, NULL, 10);
	}
	return v;
}

int plan_check_resource(const char *spec, struct tj_err *err)
{
	const char *eq = strchr(spec, '=');
	char *end;
	int kind = -1;
	for (int k = 0; eq && k < K_N; k++) {
		size_t l = strlen(plan_kind_names[k]);
		if (!strncmp(spec, plan_kind_names[k], l) &&
		    (spec + l == eq || (k == K_COR && spec[l] == ':' && spec + l + 1 < eq)))
			kind = k;
	}
	errno = 0;
	unsigned long v = eq ? strtoul(eq + 1, &end, 10) : 0;
	if (kind < 0 || !eq[1] || *end || errno || v == 0 || v > 1u << 20 || strchr(spec, '\t'))
		return tj_errf(err, TJ_E_ARG, "%s: want KIND=N or correlate:NAME=N (KIND gen, "
			       "correlate, score or train; N a positive number)", spec);
	return 0;
}

static void job_resources(struct grid_job *j, const struct plan_spec *s, const char *algo)
{
	const char *kind = plan_kind_names[j->kind];
	char key[160];
	unsigned peak = 0;
	snprintf(key, sizeof(key), "%s%s%s", kind, algo ? ":" : "", algo ? algo : "");
	for (size_t i = 0; i < sizeof(measured_peaks) / sizeof(measured_peaks[0]) && !peak; i++)
		if (!strcmp(measured_peaks[i].what, key))
			peak = measured_peaks[i].peak_mb;
	for (size_t i = 0; i < sizeof(measured_peaks) / sizeof(measured_peaks[0]) && !peak; i++)
		if (!strcmp(measured_peaks[i].what, kind))
			peak = measured_peaks[i].peak_mb;
	/* half again over the peak, scaled to the plan's requests; at least
	 * 256 MB (the binary and its libraries, and Slurm's own accounting) */
	double mb = 1.5 * peak * (j->kind == K_TRAIN ? 1.0 : (double)s->requests / 20000.0);
	unsigned mem = mb < 256 ? 256 : ((unsigned)mb + 63) / 64 * 64;
	unsigned o = override(s->res.mem, s->res.nmem, kind, algo);
	j->mem_mb = o ? o : mem;
	o = override(s->res.cpus, s->res.ncpus, kind, algo);
	j->cpus = o ? o : 1;
}

/* ---- making a plan ---- */

/* The variants of one correlator: its label and its --param words. */
struct variant {
	char label[BENCH_NAME_MAX];
	char params[4][128];
	int nparams;
};

#define MAX_VARIANTS 64

static int expand_params(const struct plan_spec *s, const char *algo,
			 struct variant *out, int max)
{
	const char *base = strrchr(algo, '/');
	base = base ? base + 1 : algo;
	int n = 1;
	memset(&out[0], 0, sizeof(out[0]));
	snprintf(out[0].label, sizeof(out[0].label), "%s", base);
	for (size_t i = 0; i < s->nparams; i++) {
		const char *colon = strchr(s->params[i], ':');
		const char *eq = colon ? strchr(colon, '=') : NULL;
		if (!colon || !eq || (size_t)(colon - s->params[i]) != strlen(base) ||
		    strncmp(s->params[i], base, strlen(base)) != 0)
			continue;
		char key[64];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - colon - 1), colon + 1);
		struct variant prev[MAX_VARIANTS];
		int np = n;
		memcpy(prev, out, (size_t)n * sizeof(*out));
		n = 0;
		for (const char *v = eq + 1; *v;) {
			size_t len = strcspn(v, ",");
			for (int k = 0; k < np; k++) {
				if (n == max)
					return -1;
				out[n] = prev[k];
				if (out[n].nparams == 4)
					return -1;
				snprintf(out[n].params[out[n].nparams++], 128, "%s=%.*s", key,
					 (int)len, v);
				size_t l = strlen(out[n].label);
				snprintf(out[n].label + l, sizeof(out[n].label) - l, "@%s=%.*s",
					 key, (int)len, v);
				plan_safe_name(out[n].label);
				n++;
			}
			v += len + (v[len] == ',');
		}
	}
	return n;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* A job of dataset d with its cell fields; NULL when out of memory. */
static struct grid_job *add_job(struct grid_plan *p, enum grid_kind kind,
				const struct plan_dataset *d)
{
	struct grid_job *j = plan_add(p);
	if (!j)
		return NULL;
	j->kind = kind;
	j->dataset = strdup(d->name);
	j->data = strdup(d->dir);
	j->group = strdup(d->group);
	j->scenario = strdup(d->scenario);
	j->load = strdup(d->load);
	j->seed = d->seed;
	return j->dataset && j->data && j->group && j->scenario && j->load ? j : NULL;
}

/* The correlate jobs of dataset d (after its gen job, gen_id or NULL),
 * each variant of each correlator; their ids appended to *deps. */
static int add_correlates(struct grid_plan *p, const char *dir, const struct plan_spec *s,
			  const struct plan_dataset *d, const char *gen_id, char **deps,
			  struct tj_err *err)
{
	struct variant var[MAX_VARIANTS];
	for (size_t a = 0; a < s->nalgos; a++) {
		int nv = expand_params(s, s->algos[a], var, MAX_VARIANTS);
		if (nv < 0)
			return tj_errf(err, TJ_E_ARG, "--param: too many values for %s", s->algos[a]);
		for (int v = 0; v < nv; v++) {
			struct grid_job *c = add_job(p, K_COR, d);
			if (!c)
				return tj_errf(err, TJ_E_NOMEM, "out of memory");
			c->out = xasprintf("%s/edges/%s--%s.csv", dir, d->name, var[v].label);
			c->id = xasprintf("cor--%s--%s", d->name, var[v].label);
			c->deps = strdup(gen_id ? gen_id : "");
			c->algo = strdup(var[v].label);
			char *words[20] = { "tracejoin", "correlate", "--algo", (char *)s->algos[a] };
			int nw = 4;
			if (s->trust_plugin)
				words[nw++] = "--trust-plugin";
			for (int k = 0; k < var[v].nparams; k++) {
				words[nw++] = "--param";
				words[nw++] = var[v].params[k];
			}
			words[nw++] = "-o";
			words[nw++] = c->out;
			words[nw++] = (char *)d->dir;
			words[nw] = NULL;
			c->argv = calloc((size_t)nw + 1, sizeof(char *));
			for (int k = 0; c->argv && k < nw; k++)
				if (!(c->argv[k] = strdup(words[k] ? words[k] : "")))
					return tj_errf(err, TJ_E_NOMEM, "out of memory");
			char *nd = xasprintf("%s%s%s", *deps, **deps ? "," : "", c->id ? c->id : "");
			if (!c->id || !c->out || !c->deps || !c->argv || !c->algo || !nd)
				return tj_errf(err, TJ_E_NOMEM, "out of memory");
			free(*deps);
			*deps = nd;
			const char *base = strrchr(s->algos[a], '/');
			job_resources(c, s, base ? base + 1 : s->algos[a]);
		}
	}
	return 0;
}

/* The gen job of dataset d; NULL (err set) when out of memory.  The
 * scenario is a built-in's name or a spec file (gen --scenario). */
static struct grid_job *add_gen(struct grid_plan *p, const struct plan_spec *s,
				const struct plan_dataset *d, struct tj_err *err)
{
	char req[32], seed[32];
	snprintf(req, sizeof(req), "%" PRIu64, s->requests);
	snprintf(seed, sizeof(seed), "%" PRIu64, d->seed);
	struct grid_job *g = add_job(p, K_GEN, d);
	if (!g) {
		tj_errf(err, TJ_E_NOMEM, "out of memory");
		return NULL;
	}
	g->id = xasprintf("gen--%s", d->name);
	g->deps = strdup("");
	g->out = strdup(d->dir);
	g->argv = bench_argv("tracejoin", "gen", "--scenario", d->scenario, "--load",
			     d->load, "--seed", seed, "--requests", req, "-o", d->dir,
			     "--force", NULL);
	if (!g->id || !g->deps || !g->out || !g->argv) {
		tj_errf(err, TJ_E_NOMEM, "out of memory");
		return NULL;
	}
	job_resources(g, s, NULL);
	return g;
}

/* Dataset d's jobs: gen (when generated), correlates, one score. */
static int add_dataset_jobs(struct grid_plan *p, const char *dir, const struct plan_spec *s,
			    const struct plan_dataset *d, struct tj_err *err)
{
	const char *gen_id = NULL;
	if (d->generate) {
		struct grid_job *g = add_gen(p, s, d, err);
		if (!g)
			return -1;
		gen_id = g->id;
	}
	size_t first = p->n;
	char *deps = strdup("");
	if (!deps || add_correlates(p, dir, s, d, gen_id, &deps, err) < 0) {
		free(deps);
		return err->code ? -1 : tj_errf(err, TJ_E_NOMEM, "out of memory");
	}
	struct grid_job *sc = add_job(p, K_SCORE, d);
	if (!sc) {
		free(deps);
		return tj_errf(err, TJ_E_NOMEM, "out of memory");
	}
	sc->id = xasprintf("score--%s", d->name);
	sc->deps = deps;
	sc->out = xasprintf("%s/scores/%s", dir, d->name);
	/* tracejoin bench --score-set DATA --name DS -o OUT [--drilldown D] EDGES... */
	size_t ncor = p->n - 1 - first, nw = 0;
	sc->argv = calloc(ncor + 11, sizeof(char *));
	if (!sc->id || !sc->out || !sc->argv) {
		return tj_errf(err, TJ_E_NOMEM, "out of memory");
	}
	const char *head[] = { "tracejoin", "bench", "--score-set", d->dir, "--name", d->name,
			       "-o", sc->out, s->drilldown ? "--drilldown" : NULL, s->drilldown };
	for (size_t k = 0; k < 10 && head[k]; k++)
		if (!(sc->argv[nw++] = strdup(head[k])))
			return tj_errf(err, TJ_E_NOMEM, "out of memory");
	for (size_t k = first; k < first + ncor; k++)
		if (!(sc->argv[nw++] = strdup(p->jobs[k].out)))
			return tj_errf(err, TJ_E_NOMEM, "out of memory");
	job_resources(sc, s, NULL);
	return 0;
}

/* Is word in the comma-separated list? */
static int in_list(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *q = list; *q;) {
		size_t len = strcspn(q, ",");
		if (len == wl && !strncmp(q, word, len))
			return 1;
		q += len + (q[len] == ',');
	}
	return 0;
}

/* The train job of t: after the gen jobs of its datasets (the plan's
 * first s->nds jobs, in the spec's order). */
static int add_train(struct grid_plan *p, const char *dir, const struct plan_spec *s,
		     const struct plan_train *t, struct tj_err *err)
{
	static const struct plan_dataset none = { "-", "train", "-", "", "-", 0, 0 };
	char **args = plan_split_words(t->args);
	size_t na = 0, nw = 0, ngen = s->nds; /* the gen jobs come first */
	while (args && args[na])
		na++;
	struct grid_job *j = add_job(p, K_TRAIN, &none);
	if (!args || !j) {
		bench_argv_free(args);
		return tj_errf(err, args ? TJ_E_NOMEM : TJ_E_ARG, args ? "out of memory" :
			       "--train %s: no train options", t->name);
	}
	j->id = xasprintf("train--%s", t->name);
	j->out = xasprintf("%s/models/%s", dir, t->name);
	j->argv = calloc(na + ngen + 5, sizeof(char *));
	char *deps = strdup("");
	if (!j->id || !j->out || !j->argv || !deps)
		goto oom;
	j->argv[nw++] = strdup("tracejoin");
	j->argv[nw++] = strdup("train");
	for (size_t k = 0; k < na; k++)
		j->argv[nw++] = strdup(args[k]);
	for (size_t k = 0; k < ngen; k++) {
		if (t->on && !in_list(t->on, p->jobs[k].scenario))
			continue;
		char *nd = xasprintf("%s%s%s", deps, *deps ? "," : "", p->jobs[k].id);
		free(deps);
		if (!(deps = nd) || !(j->argv[nw++] = strdup(p->jobs[k].out)))
			goto oom;
	}
	if (!*deps) {
		free(deps);
		bench_argv_free(args);
		return tj_errf(err, TJ_E_ARG, "--train-on %s=%s: no planned scenario", t->name,
			       t->on);
	}
	j->argv[nw++] = strdup("-o");
	j->argv[nw++] = strdup(j->out);
	for (size_t k = 0; k < nw; k++)
		if (!j->argv[k])
			goto oom;
	j->deps = deps;
	bench_argv_free(args);
	job_resources(j, s, NULL);
	return 0;
oom:
	free(deps);
	bench_argv_free(args);
	return tj_errf(err, TJ_E_NOMEM, "out of memory");
}

int plan_make(struct grid_plan *p, const char *dir, const struct plan_spec *s,
	      struct tj_err *err)
{
	memset(p, 0, sizeof(*p)); /* first: the caller frees *p on failure */
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	if (s->ntrain) { /* gen jobs only, then the train jobs */
		for (size_t i = 0; i < s->nds; i++) {
			struct plan_dataset d = s->ds[i];
			d.generate = 1;
			if (add_gen(p, s, &d, err) == NULL)
				return -1;
		}
		for (size_t i = 0; i < s->ntrain; i++)
			if (add_train(p, dir, s, &s->train[i], err) < 0)
				return -1;
		return 0;
	}
	for (size_t i = 0; i < s->nds; i++)
		if (add_dataset_jobs(p, dir, s, &s->ds[i], err) < 0)
			return -1;
	if (p->n == 0)
		return tj_errf(err, TJ_E_ARG, "no dataset to run");
	return 0;
}

/* ---- suite.json ---- */

int plan_write_suite(const char *dir, const char *layout, json_t *command, json_t *suite,
		     unsigned flags, struct tj_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/plan/suite.json", dir);
	json_t *o = json_pack("{s:s, s:o, s:o}", "layout", layout, "command", command,
			      "suite", suite);
	if (!o)
		return tj_errf(err, TJ_E_NOMEM, "out of memory");
	int rc = bench_write_json_file(path, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER, flags, err);
	json_decref(o);
	return rc;
}

json_t *plan_read_suite(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/plan/suite.json", dir);
	json_t *o = json_load_file(path, 0, NULL);
	if (o && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}
