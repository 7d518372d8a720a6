/* tracejoin bench --plan / --run / --collect / --job: benchmark grids
 * (scenarios x loads x seeds x correlators x params) handed to an engine.
 *
 * We do not schedule: --plan writes DIR/plan/jobs.tsv, one job a line with
 * its dependencies, output and command; every job is run by the same
 * idempotent command `tracejoin bench --job DIR ID`, which does nothing
 * when DIR/status/ID.done exists (written last, after the output is
 * whole), so any engine may run, rerun or race the jobs.  --run hands the
 * plan to an engine stage by stage (generate, correlate, score); --collect
 * merges the scores into DIR/results/ with per-cell means and 95 %
 * confidence intervals across seeds. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include "bench.h"
#include "../cli/commands.h"
#include "../correlate/host.h"
#include "../datasets/gen/gen.h"
#include "../lib/manifest.h"
#include "../lib/outfile.h"
#include "../lib/util.h"

enum grid_kind { K_GEN, K_COR, K_SCORE, K_N };
static const char *const kind_names[K_N] = { "gen", "correlate", "score" };

struct grid_job {
	char *id, *out, *cmd;        /* cmd: shell text, argv[0] = "tracejoin" */
	char **argv;                 /* the same as words (argv[0] "tracejoin") */
	char *deps;                  /* comma separated ids, "" for none */
	char *stdout_to;             /* score: stdout is the output */
	enum grid_kind kind;
	/* for collect: which cell */
	char *dataset, *scenario, *load, *algo;
	uint64_t seed;
};

struct grid_plan {
	struct grid_job *jobs;
	size_t n, cap;
	char dir[PATH_MAX];
};

/* ---- the plan file: id, kind, deps, output, stdout, dataset, scenario,
 * load, seed, correlator, command (shell words), tab-separated ---- */

static struct grid_job *plan_add(struct grid_plan *p)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 256;
		struct grid_job *j = realloc(p->jobs, cap * sizeof(*j));
		if (!j)
			return NULL;
		p->jobs = j;
		p->cap = cap;
	}
	struct grid_job *j = &p->jobs[p->n++];
	memset(j, 0, sizeof(*j));
	return j;
}

static void plan_free(struct grid_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct grid_job *j = &p->jobs[i];
		free(j->id); free(j->out); free(j->cmd); free(j->deps);
		free(j->stdout_to); free(j->dataset); free(j->scenario);
		free(j->load); free(j->algo);
		bench_argv_free(j->argv);
	}
	free(p->jobs);
	memset(p, 0, sizeof(*p));
}

/* Job ids and file names: no '/', no tab, no space. */
static void safe_name(char *s)
{
	for (; *s; s++)
		if (*s == '/' || *s == '\t' || *s == ' ' || *s == '\n')
			*s = '_';
}

static int write_plan(const struct grid_plan *p, const char *path, unsigned flags,
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
	fputs("# id\tkind\tdeps\toutput\tstdout\tdataset\tscenario\tload\tseed\tcorrelator\tcommand\n", f);
	for (size_t i = 0; i < p->n; i++) {
		const struct grid_job *j = &p->jobs[i];
		fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%" PRIu64 "\t%s\t", j->id,
			kind_names[j->kind], j->deps[0] ? j->deps : "-", j->out,
			j->stdout_to ? j->stdout_to : "-", j->dataset, j->scenario,
			j->load, j->seed, j->algo ? j->algo : "-");
		bench_argv_print(f, j->argv);
	}
	return tj_outfile_commit(&o, err);
}

/* Split the shell text bench_argv_print() wrote back into words. */
static char **split_cmd(const char *s)
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

static int read_plan(struct grid_plan *p, const char *dir, struct tj_err *err)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0;
	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/plan/jobs.tsv", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s (make it with --plan)", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char *field[11];
		char *s = line;
		int nf = 0;
		for (; nf < 11; nf++) {
			field[nf] = s;
			char *t = nf < 10 ? strchr(s, '\t') : NULL;
			if (nf < 10 && !t)
				break;
			if (t) {
				*t = '\0';
				s = t + 1;
			}
		}
		struct grid_job *j = nf == 11 ? plan_add(p) : NULL;
		if (!j) {
			fclose(f);
			free(line);
			plan_free(p);
			return tj_errf(err, TJ_E_FORMAT, "%s:%d: %s", path, lineno,
				       nf == 11 ? "out of memory" : "not 11 tab-separated fields");
		}
		int kind = -1;
		for (int k = 0; k < K_N; k++)
			if (strcmp(field[1], kind_names[k]) == 0)
				kind = k;
		char *end;
		j->seed = strtoull(field[8], &end, 10);
		j->id = strdup(field[0]);
		j->deps = strdup(strcmp(field[2], "-") ? field[2] : "");
		j->out = strdup(field[3]);
		j->stdout_to = strcmp(field[4], "-") ? strdup(field[4]) : NULL;
		j->dataset = strdup(field[5]);
		j->scenario = strdup(field[6]);
		j->load = strdup(field[7]);
		j->algo = strcmp(field[9], "-") ? strdup(field[9]) : NULL;
		j->argv = split_cmd(field[10]);
		if (kind < 0 || *end || !j->id || !j->deps || !j->out || !j->argv ||
		    !j->dataset || !j->scenario || !j->load ||
		    strcmp(j->argv[0], "tracejoin") != 0) {
			fclose(f);
			free(line);
			plan_free(p);
			return tj_errf(err, TJ_E_FORMAT, "%s:%d: a malformed job", path, lineno);
		}
		j->kind = (enum grid_kind)kind;
	}
	fclose(f);
	free(line);
	if (p->n == 0)
		return tj_errf(err, TJ_E_FORMAT, "%s: no jobs", path);
	return 0;
}

int bench_plan_check(const char *dir, size_t *njobs, struct tj_err *err)
{
	struct grid_plan p;
	if (read_plan(&p, dir, err) < 0)
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

static struct grid_job *find_job(struct grid_plan *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->jobs[i].id, id) == 0)
			return &p->jobs[i];
	return NULL;
}

static void status_path(const struct grid_plan *p, const char *id, const char *ext,
			char *buf, size_t size)
{
	snprintf(buf, size, "%s/status/%s.%s", p->dir, id, ext);
}

static int job_done(const struct grid_plan *p, const struct grid_job *j)
{
	char path[PATH_MAX];
	status_path(p, j->id, "done", path, sizeof(path));
	return access(path, F_OK) == 0;
}

/* ---- --plan ---- */

struct grid_opts {
	const char *scenarios, *loads, *seeds;
	const char *algos[32];
	size_t nalgos;
	const char *params[32];          /* "ALGO:k=v1,v2" */
	size_t nparams;
	uint64_t requests;
	int quick;
};

#define MAX_VARIANTS_GUARD 64

/* "1-20" or "1,3,5" or "1-3,7" into seeds[]; count or -1. */
static int parse_seeds(const char *s, uint64_t *seeds, int max)
{
	int n = 0;
	while (*s) {
		char *end;
		errno = 0;
		uint64_t a = strtoull(s, &end, 10), b = a;
		if (end == s || errno)
			return -1;
		if (*end == '-') {
			const char *q = end + 1;
			b = strtoull(q, &end, 10);
			if (end == q || errno || b < a)
				return -1;
		}
		if (*end && *end != ',')
			return -1;
		for (uint64_t x = a; x <= b; x++) {
			if (n == max)
				return -1;
			seeds[n++] = x;
		}
		s = *end ? end + 1 : end;
	}
	return n;
}

/* The variants of one correlator: its label and its --param words. */
struct variant {
	char label[BENCH_NAME_MAX];
	char params[4][128];
	int nparams;
};

static int expand_params(const struct grid_opts *o, const char *algo,
			 struct variant *out, int max)
{
	const char *base = strrchr(algo, '/');
	base = base ? base + 1 : algo;
	int n = 1;
	memset(&out[0], 0, sizeof(out[0]));
	snprintf(out[0].label, sizeof(out[0].label), "%s", base);
	for (size_t i = 0; i < o->nparams; i++) {
		const char *colon = strchr(o->params[i], ':');
		const char *eq = colon ? strchr(colon, '=') : NULL;
		if (!colon || !eq || (size_t)(colon - o->params[i]) != strlen(base) ||
		    strncmp(o->params[i], base, strlen(base)) != 0)
			continue;
		char key[64];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - colon - 1), colon + 1);
		struct variant prev[64];
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
				safe_name(out[n].label);
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

static int make_plan(struct grid_plan *p, const char *dir, const struct grid_opts *o,
		     const char *const *algos, size_t nalgos, struct tj_err *err)
{
	uint64_t seeds[10000];
	memset(p, 0, sizeof(*p)); /* first: the caller frees *p on failure */
	int nseeds = parse_seeds(o->seeds ? o->seeds : "1", seeds, 10000);
	if (nseeds <= 0)
		return tj_errf(err, TJ_E_ARG, "--seeds %s: want N, N-M or a comma list (at most 10000)",
			       o->seeds);
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	char req[32];
	snprintf(req, sizeof(req), "%" PRIu64, o->requests);
	struct variant var[MAX_VARIANTS_GUARD];
	for (int si = 0; si < nseeds; si++)
	for (size_t s = 0; s < gen_nbuiltins; s++) {
		const char *scn = gen_builtins[s].name;
		if (!bench_in_list(o->scenarios, scn))
			continue;
		for (int l = 0; l < 3; l++) {
			if (!bench_in_list(o->loads, bench_load_names[l]))
				continue;
			char name[BENCH_NAME_MAX], seed[32];
			snprintf(seed, sizeof(seed), "%" PRIu64, seeds[si]);
			snprintf(name, sizeof(name), "%s-%s-s%s", scn, bench_load_names[l], seed);
			struct grid_job *g = plan_add(p);
			if (!g)
				return tj_errf(err, TJ_E_NOMEM, "out of memory");
			char *data = xasprintf("%s/data/%s", dir, name);
			g->kind = K_GEN;
			g->id = xasprintf("gen--%s", name);
			g->deps = strdup("");
			g->out = data;
			g->argv = bench_argv("tracejoin", "gen", "--scenario", scn, "--load", bench_load_names[l],
					     "--seed", seed, "--requests", req, "-o", data,
					     "--force", NULL);
			g->dataset = strdup(name);
			g->scenario = strdup(scn);
			g->load = strdup(bench_load_names[l]);
			g->seed = seeds[si];
			if (!g->id || !g->deps || !g->argv || !g->dataset || !g->scenario || !g->load)
				return tj_errf(err, TJ_E_NOMEM, "out of memory");
			size_t gi = p->n - 1;
			for (size_t a = 0; a < nalgos; a++) {
				int nv = expand_params(o, algos[a], var, MAX_VARIANTS_GUARD);
				if (nv < 0)
					return tj_errf(err, TJ_E_ARG, "--param: too many values for %s",
						       algos[a]);
				for (int v = 0; v < nv; v++) {
					struct grid_job *c = plan_add(p), *sc;
					if (!c)
						return tj_errf(err, TJ_E_NOMEM, "out of memory");
					char *edges = xasprintf("%s/edges/%s--%s.csv", dir, name, var[v].label);
					c->kind = K_COR;
					c->id = xasprintf("cor--%s--%s", name, var[v].label);
					c->deps = strdup(p->jobs[gi].id);
					c->out = edges;
					char *words[16] = { "tracejoin", "correlate", "--algo",
							    (char *)algos[a] };
					int nw = 4;
					for (int k = 0; k < var[v].nparams; k++) {
						words[nw++] = "--param";
						words[nw++] = var[v].params[k];
					}
					words[nw++] = "-o";
					words[nw++] = edges;
					words[nw++] = p->jobs[gi].out;
					words[nw] = NULL;
					c->argv = calloc((size_t)nw + 1, sizeof(char *));
					for (int k = 0; c->argv && k < nw; k++)
						c->argv[k] = strdup(words[k]);
					c->dataset = strdup(name);
					c->scenario = strdup(scn);
					c->load = strdup(bench_load_names[l]);
					c->algo = strdup(var[v].label);
					c->seed = seeds[si];
					size_t ci = p->n - 1;
					if (!(sc = plan_add(p)))
						return tj_errf(err, TJ_E_NOMEM, "out of memory");
					c = &p->jobs[ci];
					char *labels = xasprintf("%s/labels.csv", p->jobs[gi].out);
					sc->kind = K_SCORE;
					sc->id = xasprintf("score--%s--%s", name, var[v].label);
					sc->deps = strdup(c->id);
					sc->out = xasprintf("%s/scores/%s--%s.json", dir, name, var[v].label);
					sc->stdout_to = strdup(sc->out);
					sc->argv = bench_argv("tracejoin", "score", "--json", "--labels",
							      labels, "--dataset", p->jobs[gi].out,
							      c->out, NULL);
					free(labels);
					sc->dataset = strdup(name);
					sc->scenario = strdup(scn);
					sc->load = strdup(bench_load_names[l]);
					sc->algo = strdup(var[v].label);
					sc->seed = seeds[si];
					if (!c->id || !c->out || !c->argv || !c->algo || !sc->id ||
					    !sc->out || !sc->argv || !sc->stdout_to)
						return tj_errf(err, TJ_E_NOMEM, "out of memory");
				}
			}
		}
	}
	if (p->n == 0)
		return tj_errf(err, TJ_E_ARG, "--scenarios/--loads select no dataset");
	return 0;
}

/* ---- --job: run one job, idempotently ---- */

static const char *self_path; /* bench_self(), set by bench_grid() */

static int write_status(const struct grid_plan *p, const struct grid_job *j,
			const char *ext, json_t *o, struct tj_err *err)
{
	char path[PATH_MAX];
	status_path(p, j->id, ext, path, sizeof(path));
	struct tj_outfile of;
	char *text = json_dumps(o, JSON_SORT_KEYS);
	int rc = -1;
	if (text && tj_outfile_open(&of, path, TJ_OUT_FORCE, 0666, NULL, 0, err) == 0) {
		if (tj_outfile_write(&of, text, strlen(text), err) == 0 &&
		    tj_outfile_write(&of, "\n", 1, err) == 0)
			rc = tj_outfile_commit(&of, err);
		else
			tj_outfile_abort(&of);
	}
	free(text);
	json_decref(o);
	return rc;
}

static int fail_job(const struct grid_plan *p, const struct grid_job *j, int status,
		    const char *why)
{
	struct tj_err err = { 0 };
	tj_warn("bench: job %s failed: %s", j->id, why);
	if (write_status(p, j, "failed", json_pack("{s:i, s:s}", "status", status, "why", why),
			 &err) < 0)
		tj_warn("bench: %s", err.msg);
	return TJ_EXIT_FAIL;
}

static int run_job(struct grid_plan *p, const char *id)
{
	struct grid_job *j = find_job(p, id);
	if (!j)
		return tj_usage("bench", "--job %s: no such job in %s/plan/jobs.tsv", id, p->dir);
	if (job_done(p, j))
		return TJ_EXIT_OK;
	char dirs[3][PATH_MAX], log[PATH_MAX], tmp[PATH_MAX] = "";
	snprintf(dirs[0], PATH_MAX, "%s/status", p->dir);
	snprintf(dirs[1], PATH_MAX, "%s/logs", p->dir);
	snprintf(dirs[2], PATH_MAX, "%s", j->out);
	*(strrchr(dirs[2], '/') ? strrchr(dirs[2], '/') : dirs[2]) = '\0';
	for (int i = 0; i < 3; i++)
		if (dirs[i][0] && bench_mkdirs(dirs[i]) < 0) {
			tj_warn("bench: %s: %s", dirs[i], strerror(errno));
			return TJ_EXIT_FAIL;
		}
	/* Runners racing on one plan take turns per job: a job's command
	 * refuses or replaces an output another run is writing, so the
	 * second waits for the first and then finds it done.  The lock goes
	 * with this process. */
	char lockpath[PATH_MAX];
	status_path(p, j->id, "lock", lockpath, sizeof(lockpath));
	int lockfd = open(lockpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0) {
		tj_warn("bench: %s: %s", lockpath, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	if (job_done(p, j))
		return TJ_EXIT_OK;
	for (const char *d = j->deps; *d;) {
		size_t len = strcspn(d, ",");
		char dep[512];
		snprintf(dep, sizeof(dep), "%.*s", (int)len, d);
		struct grid_job *dj = find_job(p, dep);
		if (!dj || !job_done(p, dj)) {
			char why[700];
			snprintf(why, sizeof(why), "needs %s, which is not done", dep);
			return fail_job(p, j, -1, why);
		}
		d += len + (d[len] == ',');
	}
	/* not done: what is there of its output is a killed run's, not ours
	 * to keep (correlate refuses an existing output) */
	if (j->kind == K_COR)
		unlink(j->out);
	snprintf(log, sizeof(log), "%s/logs/%s.log", p->dir, j->id);
	int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), outfd = -1;
	if (logfd < 0) {
		tj_warn("bench: %s: %s", log, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	if (j->stdout_to) { /* beside the output, renamed on success */
		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", j->stdout_to, (long)getpid());
		outfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (outfd < 0) {
			tj_warn("bench: %s: %s", tmp, strerror(errno));
			close(logfd);
			return TJ_EXIT_FAIL;
		}
	}
	double t0 = bench_now();
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(outfd >= 0 ? outfd : logfd, 1);
		dup2(logfd, 2);
		char **argv = j->argv;
		argv[0] = (char *)self_path;
		execv(self_path, argv);
		fprintf(stderr, "exec %s: %s\n", self_path, strerror(errno));
		_exit(127);
	}
	close(logfd);
	if (outfd >= 0)
		close(outfd);
	int st = 0;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &st, 0, &ru) < 0) {
		unlink(tmp);
		return fail_job(p, j, -1, strerror(errno));
	}
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	/* a damaged log still gives figures: as `make bench` counts it */
	int ok = status == 0 || (j->kind != K_GEN && status == TJ_EXIT_DAMAGED);
	if (!ok) {
		char why[400], tail[300];
		bench_log_tail(log, tail, sizeof(tail));
		snprintf(why, sizeof(why), "exit %d: %s (log %s)", status, tail, log);
		if (tmp[0])
			unlink(tmp);
		return fail_job(p, j, status, why);
	}
	if (tmp[0] && rename(tmp, j->stdout_to) != 0) {
		unlink(tmp);
		return fail_job(p, j, -1, strerror(errno));
	}
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	struct tj_err err = { 0 };
	if (write_status(p, j, "done", json_pack("{s:i, s:f, s:f, s:f, s:I}", "status", status,
			 "cpu_s", cpu, "wall_s", bench_now() - t0,
			 "peak_mb", (double)ru.ru_maxrss / 1024.0, "events",
			 (json_int_t)(j->kind == K_COR ? bench_events_from_log(log) : 0)), &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	char failed[PATH_MAX];
	status_path(p, j->id, "failed", failed, sizeof(failed));
	unlink(failed);
	unlink(log);
	return TJ_EXIT_OK;
}

/* ---- --run ---- */

static int run_local(struct grid_plan *p, int parallel, int tty)
{
	struct bench_job *jobs = calloc(p->n, sizeof(*jobs));
	struct tj_err err = { 0 };
	size_t failed = 0;
	char logs[PATH_MAX];
	snprintf(logs, sizeof(logs), "%s/logs", p->dir);
	if (!jobs || bench_mkdirs(logs) < 0) {
		free(jobs);
		tj_warn("bench: %s: %s", logs, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	/* stage by stage: every job's dependencies are of the stage before */
	for (int k = 0; k < K_N; k++) {
		size_t n = 0;
		for (size_t i = 0; i < p->n; i++) {
			struct grid_job *g = &p->jobs[i];
			if (g->kind != (enum grid_kind)k || job_done(p, g))
				continue;
			struct bench_job *b = &jobs[n++];
			memset(b, 0, sizeof(*b));
			b->argv = bench_argv(self_path, "bench", "--job", p->dir, g->id, NULL);
			snprintf(b->log, sizeof(b->log), "%s/%s.run.log", logs, g->id);
		}
		if (tty)
			fprintf(stderr, "bench: %s: %zu jobs to run\n", kind_names[k], n);
		int rc = bench_jobs_run(jobs, n, parallel, NULL, NULL, NULL, &err);
		for (size_t i = 0; i < n; i++) {
			if (jobs[i].status == 0)
				unlink(jobs[i].log);
			else
				failed++;
			bench_argv_free(jobs[i].argv);
		}
		if (rc < 0) {
			tj_warn("bench: %s", err.msg);
			free(jobs);
			return TJ_EXIT_FAIL;
		}
	}
	free(jobs);
	if (failed)
		tj_warn("bench: %zu jobs failed (their names: bench --collect %s)", failed, p->dir);
	return failed ? TJ_EXIT_FAIL : TJ_EXIT_OK;
}

/* A program on $PATH (bench_jobs_run execs a path): 0 and its path, or -1. */
static int find_program(const char *name, char *buf, size_t size)
{
	const char *path = getenv("PATH");
	for (const char *d = path ? path : "/usr/bin:/bin"; *d;) {
		size_t len = strcspn(d, ":");
		snprintf(buf, size, "%.*s/%s", (int)len, len ? d : ".", name);
		if (access(buf, X_OK) == 0)
			return 0;
		d += len + (d[len] == ':');
	}
	return -1;
}

/* DIR/plan/ENGINE-STAGE.txt: the command of every job of the stage not yet
 * done, one a line; *n of them. */
static int write_stage(struct grid_plan *p, int k, const char *engine, char *path,
		       size_t size, size_t *n)
{
	struct tj_err err = { 0 };
	struct tj_outfile o;
	snprintf(path, size, "%s/plan/%s-%s.txt", p->dir, engine, kind_names[k]);
	*n = 0;
	if (tj_outfile_open(&o, path, TJ_OUT_FORCE, 0666, NULL, 0, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	FILE *f = tj_outfile_stream(&o, &err);
	for (size_t i = 0; f && i < p->n; i++) {
		struct grid_job *g = &p->jobs[i];
		if (g->kind != (enum grid_kind)k || job_done(p, g))
			continue;
		char *argv[] = { (char *)self_path, "bench", "--job", p->dir, g->id, NULL };
		bench_argv_print(f, argv);
		(*n)++;
	}
	if (!f || tj_outfile_commit(&o, &err) < 0) {
		if (!f)
			tj_outfile_abort(&o);
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	return 0;
}

/* GNU parallel, stage by stage: a file of commands per stage.  With
 * --sshloginfile the jobs run on other hosts that see DIR and the binary
 * at the same paths (a shared filesystem). */
static int run_parallel(struct grid_plan *p, int jobs, const char *sshlogins)
{
	size_t failed = 0;
	char logs[PATH_MAX], prog[PATH_MAX];
	if (find_program("parallel", prog, sizeof(prog)) < 0) {
		tj_warn("bench: --executor parallel: GNU parallel is not on $PATH "
			"(apt-get install parallel)");
		return TJ_EXIT_FAIL;
	}
	snprintf(logs, sizeof(logs), "%s/logs", p->dir);
	if (bench_mkdirs(logs) < 0) {
		tj_warn("bench: %s: %s", logs, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	for (int k = 0; k < K_N; k++) {
		char path[PATH_MAX];
		struct tj_err err = { 0 };
		size_t n;
		if (write_stage(p, k, "parallel", path, sizeof(path), &n) < 0)
			return TJ_EXIT_FAIL;
		if (n == 0)
			continue;
		char j[16];
		snprintf(j, sizeof(j), "%d", jobs);
		char **argv = sshlogins
			? bench_argv(prog, "--sshloginfile", sshlogins, "--arg-file", path, NULL)
			: bench_argv(prog, "--jobs", j, "--arg-file", path, NULL);
		struct bench_job bj = { .argv = argv };
		snprintf(bj.log, sizeof(bj.log), "%s/logs/parallel-%s.log", p->dir, kind_names[k]);
		int rc = bench_jobs_run(&bj, 1, 1, NULL, NULL, NULL, &err);
		bench_argv_free(argv);
		if (rc < 0 || bj.status > 100) {
			tj_warn("bench: GNU parallel failed (exit %d): %s", bj.status,
				rc < 0 ? err.msg : bj.log);
			return TJ_EXIT_FAIL;
		}
		/* parallel's exit: the number of jobs that failed (up to 100) */
		failed += (size_t)bj.status;
		if (bj.status == 0)
			unlink(bj.log);
	}
	if (failed)
		tj_warn("bench: %zu jobs failed (their names: bench --collect %s)", failed, p->dir);
	return failed ? TJ_EXIT_FAIL : TJ_EXIT_OK;
}

/* Run argv, its stdout into out (trimmed); the exit status, or -1. */
static int run_capture(char **argv, char *out, size_t size)
{
	int fd[2];
	if (pipe(fd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(fd[0]);
		dup2(fd[1], 1);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	size_t len = 0;
	ssize_t r;
	while (pid > 0 && (r = read(fd[0], out + len, size - 1 - len)) > 0)
		len += (size_t)r;
	close(fd[0]);
	out[len] = '\0';
	out[strcspn(out, "\n")] = '\0';
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Slurm: per stage, job arrays of at most SLURM_ARRAY tasks (Slurm's
 * default MaxArraySize is 1001), each after every array of the stage
 * before (afterany: a job whose dependency failed says so itself, and
 * collect names it); --run returns when they have all left the queue. */
#define SLURM_ARRAY 1000
static int run_slurm(struct grid_plan *p, const char *slurm_args)
{
	char sbatch[PATH_MAX], script[PATH_MAX], logs[PATH_MAX], name[64];
	if (find_program("sbatch", sbatch, sizeof(sbatch)) < 0) {
		tj_warn("bench: --executor slurm: sbatch is not on $PATH (apt-get install slurm-client)");
		return TJ_EXIT_FAIL;
	}
	snprintf(logs, sizeof(logs), "%s/logs", p->dir);
	snprintf(script, sizeof(script), "%s/plan/slurm-task.sh", p->dir);
	const char *base = strrchr(p->dir, '/');
	snprintf(name, sizeof(name), "%s", base && base[1] ? base + 1 : p->dir);
	safe_name(name);
	char **extra = slurm_args ? split_cmd(slurm_args) : NULL;
	size_t nextra = 0;
	while (extra && extra[nextra])
		nextra++;
	/* the task: line (offset + array index) of the stage file, run */
	struct tj_err err = { 0 };
	struct tj_outfile o;
	static const char task[] = "#!/bin/sh\n"
		"# tracejoin bench --executor slurm: run line $2 + SLURM_ARRAY_TASK_ID of $1\n"
		"line=$(sed -n \"$(($2 + SLURM_ARRAY_TASK_ID))p\" \"$1\")\n"
		"[ -n \"$line\" ] || { echo \"no line $(($2 + SLURM_ARRAY_TASK_ID)) in $1\" >&2; exit 1; }\n"
		"eval \"exec $line\"\n";
	if (bench_mkdirs(logs) < 0 ||
	    tj_outfile_open(&o, script, TJ_OUT_FORCE, 0777, NULL, 0, &err) < 0 ||
	    tj_outfile_write(&o, task, sizeof(task) - 1, &err) < 0 ||
	    tj_outfile_commit(&o, &err) < 0) {
		tj_warn("bench: %s", err.code ? err.msg : strerror(errno));
		bench_argv_free(extra);
		return TJ_EXIT_FAIL;
	}
	char prev[4096] = "", cur[4096], all[12288] = "";
	size_t submitted = 0;
	for (int k = 0; k < K_N; k++) {
		char path[PATH_MAX];
		size_t n;
		if (write_stage(p, k, "slurm", path, sizeof(path), &n) < 0)
			goto fail;
		cur[0] = '\0';
		for (size_t off = 0; off < n; off += SLURM_ARRAY) {
			size_t cnt = n - off < SLURM_ARRAY ? n - off : SLURM_ARRAY;
			char array[64], jname[128], output[PATH_MAX + 32], dep[4200], offs[32],
			     id[256];
			snprintf(array, sizeof(array), "--array=1-%zu", cnt);
			snprintf(jname, sizeof(jname), "--job-name=tj-%s-%s", kind_names[k], name);
			snprintf(output, sizeof(output), "--output=%s/slurm-%s-%%A-%%a.log", logs,
				 kind_names[k]);
			snprintf(dep, sizeof(dep), "--dependency=afterany%s", prev);
			snprintf(offs, sizeof(offs), "%zu", off);
			char *argv[64] = { sbatch, "--parsable", array, jname, output };
			size_t na = 5;
			if (prev[0])
				argv[na++] = dep;
			for (size_t e = 0; e < nextra && na < 58; e++)
				argv[na++] = extra[e];
			argv[na++] = script;
			argv[na++] = path;
			argv[na++] = offs;
			argv[na] = NULL;
			int rc = run_capture(argv, id, sizeof(id));
			if (rc != 0 || !id[0]) {
				tj_warn("bench: sbatch of the %s stage failed (exit %d)", kind_names[k], rc);
				goto fail;
			}
			id[strcspn(id, ";")] = '\0'; /* "ID;cluster" */
			size_t l = strlen(cur);
			snprintf(cur + l, sizeof(cur) - l, ":%s", id);
			l = strlen(all);
			snprintf(all + l, sizeof(all) - l, ",%s", id);
			submitted += cnt;
		}
		if (cur[0])
			snprintf(prev, sizeof(prev), "%s", cur);
	}
	/* wait: poll squeue (sbatch --wait backs off to many seconds between
	 * polls, which on a small grid costs more than the grid) */
	char squeue[PATH_MAX];
	if (submitted && find_program("squeue", squeue, sizeof(squeue)) == 0) {
		for (;;) {
			char out[256];
			char *argv[] = { squeue, "-h", "-o", "%i", "-j", all + 1, NULL };
			int rc = run_capture(argv, out, sizeof(out));
			if (rc != 0 || !out[0]) /* gone from the queue (or squeue failed) */
				break;
			struct timespec ts = { 0, 250 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	bench_argv_free(extra);
	size_t failed = 0;
	for (size_t i = 0; i < p->n; i++)
		failed += !job_done(p, &p->jobs[i]);
	if (failed)
		tj_warn("bench: %zu jobs not done (their names: bench --collect %s)", failed, p->dir);
	return failed ? TJ_EXIT_FAIL : TJ_EXIT_OK;
fail:
	bench_argv_free(extra);
	return TJ_EXIT_FAIL;
}

/* ---- --collect ---- */

static double jnum(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(json_object_get(o, a), b);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *load_status(const struct grid_plan *p, const struct grid_job *j,
			   const char *ext)
{
	char path[PATH_MAX];
	status_path(p, j->id, ext, path, sizeof(path));
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

static void collection_free(struct collection *col)
{
	free(col->ds); free(col->res); free(col->cells); free(col->cell_of);
	free(col->x); free(col->y);
}

static int collection_alloc(struct collection *col, const struct grid_plan *p)
{
	size_t ns = 0, nds = 0;
	for (size_t i = 0; i < p->n; i++) {
		ns += p->jobs[i].kind == K_SCORE;
		nds += p->jobs[i].kind == K_GEN;
	}
	memset(col, 0, sizeof(*col));
	col->ds = calloc(nds ? nds : 1, sizeof(*col->ds));
	col->res = calloc(ns ? ns : 1, sizeof(*col->res));
	col->cells = calloc(ns ? ns : 1, sizeof(*col->cells));
	col->cell_of = calloc(ns ? ns : 1, sizeof(*col->cell_of));
	col->x = calloc(ns ? ns : 1, sizeof(*col->x));
	col->y = calloc(ns ? ns : 1, sizeof(*col->y));
	if (!col->ds || !col->res || !col->cells || !col->cell_of || !col->x || !col->y) {
		collection_free(col);
		tj_warn("bench: out of memory");
		return -1;
	}
	return 0;
}

static void add_gen_dataset(struct collection *col, const struct grid_job *g)
{
	struct bench_dataset *d = &col->ds[col->nd++];
	snprintf(d->name, sizeof(d->name), "%s", g->dataset);
	snprintf(d->group, sizeof(d->group), "synthetic");
	snprintf(d->scenario, sizeof(d->scenario), "%s", g->scenario);
	snprintf(d->load, sizeof(d->load), "%s", g->load);
	d->load_rank = -1;
	for (int l = 0; l < 3; l++)
		if (strcmp(g->load, bench_load_names[l]) == 0)
			d->load_rank = l;
	d->seed = g->seed;
	snprintf(d->dir, sizeof(d->dir), "%s", g->out);
}

/* The figures of a done score job, with the cost of its correlate job. */
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

/* Why score job g has no figures: the first of the chain score <-
 * correlate <- gen that failed, else the first not done.  Counts it in
 * col->failed or col->missing and says so on stderr. */
static void explain_unscored(struct collection *col, const struct grid_plan *p,
			     struct grid_job *const chain[3], int done_exists,
			     struct bench_result *r)
{
	const struct grid_job *g = chain[0];
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
		const struct grid_job *first = g;
		for (int k = 2; k >= 0; k--)
			if (chain[k] && !job_done(p, chain[k])) {
				first = chain[k];
				break;
			}
		snprintf(r->error, sizeof(r->error), "job %s not run%s", first->id,
			 done_exists ? " (its output is unreadable)" : "");
		col->missing++;
	} else {
		col->failed++;
	}
	fprintf(stderr, "bench: %s %s: %s\n", what, g->id, r->error);
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

static void add_score_result(struct collection *col, struct grid_plan *p,
			     struct grid_job *g)
{
	struct bench_result *r = &col->res[col->nr++];
	r->ds = &col->ds[col->nd - 1]; /* the plan lists a dataset's jobs after its gen */
	snprintf(r->algo, sizeof(r->algo), "%s", g->algo);
	struct grid_job *chain[3] = { g, find_job(p, g->deps), NULL };
	if (chain[1])
		chain[2] = find_job(p, chain[1]->deps);
	json_t *done = load_status(p, g, "done");
	json_t *score = done ? json_load_file(g->out, 0, NULL) : NULL;
	json_t *cor = chain[1] ? load_status(p, chain[1], "done") : NULL;
	if (score)
		read_scored(r, score, cor);
	else
		explain_unscored(col, p, chain, done != NULL, r);
	json_decref(done);
	json_decref(score);
	json_decref(cor);
	assign_cell(col, g);
}

/* results.csv, results.json and report.html of the merged results;
 * TJ_EXIT_FAIL when one could not be written. */
static int write_merged(const struct grid_plan *p, struct collection *col, const char *dir)
{
	char path[PATH_MAX];
	struct tj_err err = { 0 };
	int rc = TJ_EXIT_OK;
	snprintf(path, sizeof(path), "%s/results.csv", dir);
	if (bench_write_csv(path, col->res, col->nr, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		rc = TJ_EXIT_FAIL;
	}
	json_t *suite = json_pack("{s:s, s:I, s:I}", "plan", p->dir, "datasets",
				  (json_int_t)col->nd, "jobs", (json_int_t)p->n);
	for (size_t i = 0; i < col->nd; i++) {
		char lp[PATH_MAX];
		snprintf(lp, sizeof(lp), "%s/labels.csv", col->ds[i].dir);
		tj_sha256_file(lp, col->ds[i].labels_sha, NULL);
	}
	snprintf(path, sizeof(path), "%s/results.json", dir);
	if (bench_write_json(path, json_pack("[s,s,s,s]", "tracejoin", "bench", "--collect", p->dir),
			     suite, col->ds, col->nd, col->res, col->nr) != 0) {
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

static int collect(struct grid_plan *p, int plots)
{
	struct collection col;
	if (collection_alloc(&col, p) < 0)
		return TJ_EXIT_FAIL;
	double t0 = bench_now();
	for (size_t i = 0; i < p->n; i++) {
		if (p->jobs[i].kind == K_GEN)
			add_gen_dataset(&col, &p->jobs[i]);
		else if (p->jobs[i].kind == K_SCORE)
			add_score_result(&col, p, &p->jobs[i]);
	}

	char dir[PATH_MAX];
	int rc, cells_rc;
	snprintf(dir, sizeof(dir), "%s/results", p->dir);
	if (bench_mkdirs(dir) < 0) {
		tj_warn("bench: %s: %s", dir, strerror(errno));
		collection_free(&col);
		return TJ_EXIT_FAIL;
	}
	rc = write_merged(p, &col, dir);
	if ((cells_rc = write_cells(p, &col, dir)) < 0) {
		collection_free(&col);
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
	printf("\nbench: collected %zu results (%zu cells) in %.3f s: %zu failed, %zu missing; "
	       "results in %s\n", col.nr, col.ncells, bench_now() - t0, col.failed, col.missing,
	       dir);
	rc = col.failed + col.missing ? TJ_EXIT_FAIL : rc;
	collection_free(&col);
	return rc;
}

/* ---- the entry ---- */

/* The command line of a grid run: which of the four, and its options
 * (those of --plan in .plan). */
struct grid_cmd {
	const char *plan, *run, *coll, *job, *job_id, *exec, *ssh, *slurm_args;
	int jobs, force, plots;
	struct grid_opts po;
};

/* Every name of a comma-separated --scenarios list is a built-in scenario. */
static int check_scenarios(const char *list)
{
	for (const char *q = list; *q;) {
		size_t len = strcspn(q, ",");
		int ok = 0;
		for (size_t s = 0; s < gen_nbuiltins; s++)
			ok |= strlen(gen_builtins[s].name) == len &&
			      !strncmp(q, gen_builtins[s].name, len);
		if (!ok)
			return tj_usage("bench", "--scenarios: '%.*s' is not a built-in "
					"scenario (tracejoin gen --list)", (int)len, q);
		q += len + (q[len] == ',');
	}
	return 0;
}

/* Options into *g; 0, or the exit status of a usage error. */
static int parse_grid_opts(int argc, char **argv, struct grid_cmd *g)
{
	enum { O_PLAN = 256, O_RUN, O_COLLECT, O_JOB, O_EXEC, O_SEEDS, O_SCN, O_LOADS,
	       O_PARAM, O_REQ, O_QUICK, O_SSH, O_FORCE, O_NOPLOTS, O_SLURM };
	static const struct option longopts[] = {
		{ "plan", required_argument, NULL, O_PLAN },
		{ "run", required_argument, NULL, O_RUN },
		{ "collect", required_argument, NULL, O_COLLECT },
		{ "job", required_argument, NULL, O_JOB },
		{ "executor", required_argument, NULL, O_EXEC },
		{ "seeds", required_argument, NULL, O_SEEDS },
		{ "scenarios", required_argument, NULL, O_SCN },
		{ "loads", required_argument, NULL, O_LOADS },
		{ "algo", required_argument, NULL, 'a' },
		{ "param", required_argument, NULL, O_PARAM },
		{ "requests", required_argument, NULL, O_REQ },
		{ "quick", no_argument, NULL, O_QUICK },
		{ "jobs", required_argument, NULL, 'j' },
		{ "sshloginfile", required_argument, NULL, O_SSH },
		{ "force", no_argument, NULL, O_FORCE },
		{ "no-plots", no_argument, NULL, O_NOPLOTS },
		{ "slurm-args", required_argument, NULL, O_SLURM },
		{ NULL, 0, NULL, 0 },
	};
	struct grid_opts *o = &g->po;
	*g = (struct grid_cmd){ .exec = "local", .plots = 1,
				.jobs = (int)sysconf(_SC_NPROCESSORS_ONLN) };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":a:j:", longopts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case O_PLAN: g->plan = optarg; break;
		case O_RUN: g->run = optarg; break;
		case O_COLLECT: g->coll = optarg; break;
		case O_JOB: g->job = optarg; break;
		case O_EXEC: g->exec = optarg; break;
		case O_SEEDS: o->seeds = optarg; break;
		case O_SCN: o->scenarios = optarg; break;
		case O_LOADS: o->loads = optarg; break;
		case 'a':
			if (o->nalgos == 32)
				return tj_usage("bench", "at most 32 --algo");
			o->algos[o->nalgos++] = optarg;
			break;
		case O_PARAM:
			if (o->nparams == 32)
				return tj_usage("bench", "at most 32 --param");
			if (!strchr(optarg, ':') || !strchr(strchr(optarg, ':'), '=') ||
			    strchr(optarg, '\t') || strchr(optarg, ' '))
				return tj_usage("bench", "--param %s: want ALGO:KEY=V1,V2", optarg);
			o->params[o->nparams++] = optarg;
			break;
		case O_REQ:
			if (tj_parse_u64(optarg, 1, UINT64_MAX, &o->requests) < 0)
				return tj_usage("bench", "--requests %s: not a positive number", optarg);
			break;
		case O_QUICK: o->quick = 1; break;
		case 'j':
			if (tj_parse_u64(optarg, 1, 64, &v) < 0)
				return tj_usage("bench", "--jobs %s: want 1 to 64", optarg);
			g->jobs = (int)v;
			break;
		case O_SSH: g->ssh = optarg; break;
		case O_FORCE: g->force = 1; break;
		case O_NOPLOTS: g->plots = 0; break;
		case O_SLURM: g->slurm_args = optarg; break;
		case ':': return tj_usage("bench", "option %s needs a value", argv[optind - 1]);
		default: return tj_usage("bench", "unknown option %s", argv[optind - 1]);
		}
	}
	if ((g->plan != NULL) + (g->run != NULL) + (g->coll != NULL) + (g->job != NULL) != 1)
		return tj_usage("bench", "give one of --plan, --run, --collect, --job");
	if (g->job ? optind + 1 != argc : optind != argc)
		return tj_usage("bench", g->job ? "--job DIR ID: give the job's id"
						: "unexpected argument '%s'", argv[optind]);
	g->job_id = g->job ? argv[optind] : NULL;
	if (strcmp(g->exec, "local") && strcmp(g->exec, "parallel") && strcmp(g->exec, "slurm"))
		return tj_usage("bench", "--executor %s: want local, parallel or slurm", g->exec);
	if (g->slurm_args && (strcmp(g->exec, "slurm") || !g->run))
		return tj_usage("bench", "--slurm-args: only with --run DIR --executor slurm");
	if (g->ssh && (strcmp(g->exec, "parallel") || !g->run))
		return tj_usage("bench", "--sshloginfile: only with --run DIR --executor parallel");
	if (bench_check_loads(o->loads) != 0)
		return TJ_EXIT_USAGE;
	return o->scenarios ? check_scenarios(o->scenarios) : 0;
}

/* --plan: the correlators from the registry (the built-ins, or those
 * named), then DIR/plan/jobs.tsv. */
static int plan_grid(const struct grid_cmd *g)
{
	struct grid_opts o = g->po;
	struct grid_plan p;
	struct tj_err err = { 0 };
	if (o.quick && !o.loads)
		o.loads = "medium";
	if (!o.requests)
		o.requests = o.quick ? 300 : 20000;
	const char *algos[32];
	size_t nalgos = 0;
	if (o.nalgos == 0) {
		const struct tj_correlator *b[32];
		size_t nb = tj_correlator_builtins(b, 32);
		for (size_t i = 0; i < nb; i++)
			algos[nalgos++] = b[i]->name;
	}
	for (size_t i = 0; i < o.nalgos; i++) {
		const struct tj_correlator *cor;
		void *h;
		if (tj_correlator_load(o.algos[i], 0, &cor, &h, &err) < 0)
			return tj_usage("bench", "--algo %s: %s", o.algos[i], err.msg);
		tj_correlator_unload(h);
		if (strchr(o.algos[i], '\t') || strchr(o.algos[i], ' '))
			return tj_usage("bench", "--algo %s: no spaces or tabs", o.algos[i]);
		algos[nalgos++] = o.algos[i];
	}
	double t0 = bench_now();
	char path[PATH_MAX];
	if (make_plan(&p, g->plan, &o, algos, nalgos, &err) < 0) {
		plan_free(&p);
		return tj_usage("bench", "%s", err.msg);
	}
	snprintf(path, sizeof(path), "%s/plan", g->plan);
	if (bench_mkdirs(path) < 0) {
		tj_warn("bench: %s: %s", path, strerror(errno));
		plan_free(&p);
		return TJ_EXIT_FAIL;
	}
	snprintf(path, sizeof(path), "%s/plan/jobs.tsv", g->plan);
	int rc = write_plan(&p, path, g->force ? TJ_OUT_FORCE : 0, &err);
	size_t n = p.n;
	plan_free(&p);
	if (rc < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	printf("bench: planned %zu jobs in %.3f s: %s\n", n, bench_now() - t0, path);
	return TJ_EXIT_OK;
}

/* --run, --collect, --job: on the plan already written in DIR. */
static int use_plan(const struct grid_cmd *g)
{
	struct grid_plan p;
	struct tj_err err = { 0 };
	const char *dir = g->run ? g->run : g->coll ? g->coll : g->job;
	if (read_plan(&p, dir, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	int rc;
	if (g->job)
		rc = run_job(&p, g->job_id);
	else if (g->coll)
		rc = collect(&p, g->plots);
	else if (!strcmp(g->exec, "slurm"))
		rc = run_slurm(&p, g->slurm_args);
	else if (!strcmp(g->exec, "parallel"))
		rc = run_parallel(&p, g->jobs, g->ssh);
	else
		rc = run_local(&p, g->jobs, isatty(2));
	plan_free(&p);
	return rc;
}

int bench_grid(int argc, char **argv)
{
	struct grid_cmd g;
	int rc;
	if ((rc = parse_grid_opts(argc, argv, &g)) != 0)
		return rc;
	self_path = bench_self();
	if (!self_path) {
		tj_warn("bench: cannot find my own binary: %s", strerror(errno));
		return TJ_EXIT_FAIL;
	}
	return g.plan ? plan_grid(&g) : use_plan(&g);
}
