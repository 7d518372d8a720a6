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
#include "bench.h"
#include "plan.h"
#include "../cli/commands.h"
#include "../correlate/host.h"
#include "../datasets/gen/gen.h"
#include "../lib/manifest.h"
#include "../lib/outfile.h"
#include "../lib/util.h"

/* ---- --plan ---- */

struct grid_opts {
	const char *scenarios, *loads, *seeds;
	const char *algos[32];
	size_t nalgos;
	const char *params[32];          /* "ALGO:k=v1,v2" */
	size_t nparams;
	uint64_t requests;
	int quick, trust_plugin;
	struct plan_resources res;        /* --mem, --cpus */
	struct plan_train train[8];       /* --train NAME=ARGS, --train-on NAME=LIST */
	size_t ntrain;
};

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

/* ---- --job: run one job, idempotently ---- */

static const char *self_path; /* bench_self(), set by bench_grid() */

static int write_status(const struct grid_plan *p, const struct grid_job *j,
			const char *ext, json_t *o, struct tj_err *err)
{
	char path[PATH_MAX];
	plan_status_path(p, j->id, ext, path, sizeof(path));
	int rc = bench_write_json_file(path, o, JSON_SORT_KEYS, TJ_OUT_FORCE, err);
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

/* The first dependency of j not done (into dep), or 0 when all are.  A
 * score job runs without them: the words naming their outputs are dropped
 * from *argv (a copy), so the other correlators of its dataset are scored;
 * it is marked failed afterwards all the same. */
static int deps_missing(struct grid_plan *p, struct grid_job *j, char *dep, size_t size,
			char ***argv)
{
	size_t n = 0;
	while (j->argv[n])
		n++;
	*argv = calloc(n + 1, sizeof(char *));
	if (!*argv)
		return -1;
	memcpy(*argv, j->argv, n * sizeof(char *));
	int missing = 0;
	for (const char *d = j->deps; *d;) {
		size_t len = strcspn(d, ",");
		char id[512];
		snprintf(id, sizeof(id), "%.*s", (int)len, d);
		struct grid_job *dj = plan_find(p, id);
		if (!dj || !plan_job_done(p, dj)) {
			if (!missing++)
				snprintf(dep, size, "%s", id);
			for (size_t k = 1; dj && j->kind == K_SCORE && (*argv)[k]; k++)
				if (!strcmp((*argv)[k], dj->out)) {
					memmove(&(*argv)[k], &(*argv)[k + 1], (n - k) * sizeof(char *));
					break;
				}
		}
		d += len + (d[len] == ',');
	}
	return missing;
}

/* The folders a job writes in: status/, logs/, and its output's (a score
 * job's output is its own folder). */
static int job_dirs(const struct grid_plan *p, const struct grid_job *j)
{
	char dirs[3][PATH_MAX];
	snprintf(dirs[0], PATH_MAX, "%s/status", p->dir);
	snprintf(dirs[1], PATH_MAX, "%s/logs", p->dir);
	snprintf(dirs[2], PATH_MAX, "%s", j->out);
	if (j->kind != K_SCORE)
		*(strrchr(dirs[2], '/') ? strrchr(dirs[2], '/') : dirs[2]) = '\0';
	for (int i = 0; i < 3; i++)
		if (dirs[i][0] && bench_mkdirs(dirs[i]) < 0) {
			tj_warn("bench: %s: %s", dirs[i], strerror(errno));
			return -1;
		}
	return 0;
}

/* A job between job_before and job_after: its lock, and what its
 * dependencies lacked. */
struct job_run {
	struct grid_job *job;
	int lockfd, missing;
	char why[700];
	struct bench_job *run;       /* its command, log and figures */
};

static void job_unlock(struct job_run *r)
{
	if (r->lockfd >= 0)
		close(r->lockfd);
	r->lockfd = -1;
	free(r->run->argv);           /* the words are the plan's */
	r->run->argv = NULL;
}

/* Before job r->job's command: its folders, its lock (held until
 * job_after: runners racing on one plan take turns per job, and the
 * second then finds it done), done again, its dependencies.  0: run
 * r->run (argv[0] our binary); 1: nothing to do; else the exit status of
 * a failure, recorded. */
static int job_before(struct grid_plan *p, struct job_run *r)
{
	struct grid_job *j = r->job;
	char lockpath[PATH_MAX], dep[512] = "";
	r->lockfd = -1;
	r->run->argv = NULL;
	if (plan_job_done(p, j))
		return 1;
	if (job_dirs(p, j) < 0)
		return TJ_EXIT_FAIL;
	plan_status_path(p, j->id, "lock", lockpath, sizeof(lockpath));
	r->lockfd = open(lockpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (r->lockfd < 0 || flock(r->lockfd, LOCK_EX) < 0) {
		tj_warn("bench: %s: %s", lockpath, strerror(errno));
		job_unlock(r);
		return TJ_EXIT_FAIL;
	}
	if (plan_job_done(p, j)) {
		job_unlock(r);
		return 1;
	}
	r->missing = deps_missing(p, j, dep, sizeof(dep), &r->run->argv);
	if (r->missing < 0) {
		job_unlock(r);
		return fail_job(p, j, -1, "out of memory");
	}
	snprintf(r->why, sizeof(r->why), "needs %s, which is not done", dep);
	int ndeps = j->deps[0] != '\0';
	for (const char *c = j->deps; *c; c++)
		ndeps += *c == ',';
	if (r->missing && (j->kind != K_SCORE || r->missing == ndeps)) {
		job_unlock(r);
		return fail_job(p, j, -1, r->why);
	}
	/* not done: what is there of its output is a killed run's, not ours
	 * to keep (correlate refuses an existing output) */
	if (j->kind == K_COR)
		unlink(j->out);
	snprintf(r->run->log, sizeof(r->run->log), "%s/logs/%s.log", p->dir, j->id);
	r->run->argv[0] = (char *)self_path;
	return 0;
}

/* After the command of r: its status file (done with its figures, or
 * failed with why), the lock released.  The exit status. */
static int job_after(struct grid_plan *p, struct job_run *r)
{
	struct grid_job *j = r->job;
	const char *log = r->run->log;
	int status = r->run->status, rc = TJ_EXIT_OK;
	struct tj_err err = { 0 };
	/* a damaged log still gives figures: as `make bench` counts it */
	if (status != 0 && !(j->kind != K_GEN && status == TJ_EXIT_DAMAGED)) {
		char tail[300];
		bench_log_tail(log, tail, sizeof(tail));
		snprintf(r->why, sizeof(r->why), "exit %d: %s (log %s)", status, tail, log);
		rc = fail_job(p, j, status, r->why);
	} else if (r->missing) { /* the others are scored; this one is not done */
		rc = fail_job(p, j, -1, r->why);
	} else if (write_status(p, j, "done", json_pack("{s:i, s:f, s:f, s:f, s:I}", "status",
			status, "cpu_s", r->run->cpu_s, "wall_s", r->run->wall_s, "peak_mb",
			r->run->peak_mb, "events", (json_int_t)(j->kind == K_COR ?
			bench_events_from_log(log) : 0)), &err) < 0) {
		tj_warn("bench: %s", err.msg);
		rc = TJ_EXIT_FAIL;
	} else {
		char failed[PATH_MAX];
		plan_status_path(p, j->id, "failed", failed, sizeof(failed));
		unlink(failed);
		unlink(log);
	}
	job_unlock(r);
	return rc;
}

/* --job DIR ID: one job, unless done. */
static int run_job(struct grid_plan *p, const char *id)
{
	struct bench_job run = { 0 };
	struct job_run r = { .job = plan_find(p, id), .run = &run };
	if (!r.job)
		return tj_usage("bench", "--job %s: no such job in %s/plan/jobs.tsv", id, p->dir);
	int rc = job_before(p, &r);
	if (rc)
		return rc == 1 ? TJ_EXIT_OK : rc;
	struct tj_err err = { 0 };
	if (bench_jobs_run(&run, 1, 1, NULL, NULL, NULL, &err) < 0) {
		job_unlock(&r);
		return fail_job(p, r.job, -1, err.msg);
	}
	return job_after(p, &r);
}

/* ---- --run ---- */

/* The local executor's jobs, run from this process (no `bench --job` in
 * between: a process less per job), and its progress line on a terminal:
 * [started/total] job  ETA. */
struct local_ctx {
	struct grid_plan *p;
	int tty;
	double t0;
	size_t before, all;      /* jobs of earlier stages, of every stage */
};

static int local_before(struct bench_job *b, size_t started, size_t total, void *ctx)
{
	struct local_ctx *lc = ctx;
	struct job_run *r = b->user;
	(void)total;
	int rc = job_before(lc->p, r);
	if (rc) {                /* done already (1) or failed before it ran */
		b->status = rc == 1 ? 0 : rc;
		return 1;
	}
	size_t at = lc->before + started;
	double el = bench_now() - lc->t0;
	char eta[32] = "?";
	if (at > 0) {
		double left = el / (double)at * (double)(lc->all - at);
		snprintf(eta, sizeof(eta), "%dm%02ds", (int)left / 60, (int)left % 60);
	}
	if (lc->tty)
		fprintf(stderr, "\r\033[K[%zu/%zu] %s  ETA %s", at + 1, lc->all, r->job->id, eta);
	return 0;
}

static void local_done(struct bench_job *b, void *ctx)
{
	struct local_ctx *lc = ctx;
	b->status = job_after(lc->p, b->user);
}

int grid_run_local(struct grid_plan *p, const char *self, int parallel, int tty)
{
	self_path = self;
	struct local_ctx lc = { .p = p, .tty = tty, .t0 = bench_now() };
	for (size_t i = 0; i < p->n; i++)
		lc.all += !plan_job_done(p, &p->jobs[i]);
	struct bench_job *jobs = calloc(p->n ? p->n : 1, sizeof(*jobs));
	struct job_run *runs = calloc(p->n ? p->n : 1, sizeof(*runs));
	struct tj_err err = { 0 };
	size_t failed = 0;
	if (!jobs || !runs) {
		free(jobs);
		free(runs);
		tj_warn("bench: out of memory");
		return TJ_EXIT_FAIL;
	}
	/* stage by stage: every job's dependencies are of a stage before */
	for (int k = 0; k < K_N; k++) {
		size_t n = 0;
		for (size_t i = 0; i < p->n; i++) {
			struct grid_job *g = &p->jobs[i];
			if (g->kind != (enum grid_kind)k || plan_job_done(p, g))
				continue;
			memset(&jobs[n], 0, sizeof(jobs[n]));
			runs[n] = (struct job_run){ .job = g, .lockfd = -1, .run = &jobs[n] };
			jobs[n].user = &runs[n];
			n++;
		}
		int rc = bench_jobs_run(jobs, n, parallel, local_done, local_before, &lc, &err);
		lc.before += n;
		for (size_t i = 0; i < n; i++) {
			failed += jobs[i].status != 0;
			job_unlock(&runs[i]); /* one that never started (a failed start) */
		}
		if (rc < 0) {
			tj_warn("bench: %s", err.msg);
			free(jobs);
			free(runs);
			return TJ_EXIT_FAIL;
		}
	}
	free(jobs);
	free(runs);
	if (tty && lc.all)
		fprintf(stderr, "\r\033[K");
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
	snprintf(path, size, "%s/plan/%s-%s.txt", p->dir, engine, plan_kind_names[k]);
	*n = 0;
	if (tj_outfile_open(&o, path, TJ_OUT_FORCE, 0666, NULL, 0, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	FILE *f = tj_outfile_stream(&o, &err);
	for (size_t i = 0; f && i < p->n; i++) {
		struct grid_job *g = &p->jobs[i];
		if (g->kind != (enum grid_kind)k || plan_job_done(p, g))
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
		snprintf(bj.log, sizeof(bj.log), "%s/logs/parallel-%s.log", p->dir, plan_kind_names[k]);
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

/* What one Slurm array task runs: a job (--slurm-pack job: stage by
 * stage, arrays chained) or a dataset's chain of jobs not yet done, in
 * the plan's order (--slurm-pack dataset, the default: no dependencies
 * for the scheduler to release, a task start per dataset instead of per
 * job).  Its request: the most any of its jobs asks. */
struct slurm_unit {
	size_t first, n;         /* jobs[first..first+n) */
	int stage, submitted;
	unsigned mem_mb, cpus;
};

static struct slurm_unit *slurm_units(struct grid_plan *p, int pack_dataset, size_t max_tasks,
				       size_t *nu)
{
	struct slurm_unit *u = calloc(p->n ? p->n : 1, sizeof(*u));
	*nu = 0;
	for (size_t i = 0; u && i < p->n;) {
		size_t end = i + 1;
		if (pack_dataset) /* a dataset's jobs are consecutive, score last */
			while (end < p->n && p->jobs[end - 1].kind != K_SCORE &&
			       p->jobs[end].kind != K_TRAIN &&
			       !strcmp(p->jobs[end].dataset, p->jobs[i].dataset))
				end++;
		/* a train job waits for every dataset: a stage of its own */
		int stage = pack_dataset ? p->jobs[i].kind == K_TRAIN : (int)p->jobs[i].kind;
		struct slurm_unit x = { i, end - i, stage, 0, 0, 0 };
		int todo = 0;
		for (size_t k = i; k < end; k++) {
			if (plan_job_done(p, &p->jobs[k]))
				continue;
			todo = 1;
			x.mem_mb = p->jobs[k].mem_mb > x.mem_mb ? p->jobs[k].mem_mb : x.mem_mb;
			x.cpus = p->jobs[k].cpus > x.cpus ? p->jobs[k].cpus : x.cpus;
		}
		if (todo)
			u[(*nu)++] = x;
		i = end;
	}
	if (!u)
		tj_warn("bench: out of memory");
	/* --slurm-tasks N: consecutive datasets share a task, N tasks at most
	 * (the train jobs, last in the plan, stay tasks of their own) */
	size_t n0 = 0;
	while (u && n0 < *nu && u[n0].stage == 0)
		n0++;
	if (u && pack_dataset && max_tasks && n0 > max_tasks) {
		for (size_t g = 0; g < max_tasks; g++) {
			size_t a = g * n0 / max_tasks, b = (g + 1) * n0 / max_tasks;
			struct slurm_unit m = u[a];  /* a >= g: not yet overwritten */
			for (size_t k = a + 1; k < b; k++) {
				m.n = u[k].first + u[k].n - m.first;
				m.mem_mb = u[k].mem_mb > m.mem_mb ? u[k].mem_mb : m.mem_mb;
				m.cpus = u[k].cpus > m.cpus ? u[k].cpus : m.cpus;
			}
			u[g] = m;
		}
		memmove(&u[max_tasks], &u[n0], (*nu - n0) * sizeof(*u));
		*nu = max_tasks + (*nu - n0);
	}
	return u;
}

struct slurm_ctx {
	const char *sbatch, *script, *logs, *name;
	char **extra;
	size_t nextra, submitted;
	char prev[4096], cur[4096], all[12288];   /* ":id..." of the stage before, this one; ",id..." */
};

/* The units of u[first]'s stage and resources into
 * DIR/plan/slurm-STAGE-MEMM-CPUSc.txt (a line a unit: `tracejoin bench
 * --job DIR ID...`), submitted as arrays of at most SLURM_ARRAY tasks. */
#define SLURM_ARRAY 1000
static int submit_group(struct grid_plan *p, struct slurm_ctx *sc, struct slurm_unit *u,
			size_t nu, size_t first, int pack_dataset)
{
	const char *stage = !pack_dataset ? plan_kind_names[u[first].stage] :
			    u[first].stage ? "train" : "dataset";
	char path[PATH_MAX];
	struct tj_err err = { 0 };
	struct tj_outfile o;
	snprintf(path, sizeof(path), "%s/plan/slurm-%s-%uM-%uc.txt", p->dir, stage,
		 u[first].mem_mb, u[first].cpus);
	if (tj_outfile_open(&o, path, TJ_OUT_FORCE, 0666, NULL, 0, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	FILE *f = tj_outfile_stream(&o, &err);
	size_t n = 0;
	for (size_t i = first; f && i < nu; i++) {
		if (u[i].stage != u[first].stage || u[i].mem_mb != u[first].mem_mb ||
		    u[i].cpus != u[first].cpus)
			continue;
		u[i].submitted = 1;
		n++;
		bench_word_print(f, self_path);
		fputs(" bench --job ", f);
		bench_word_print(f, p->dir);
		for (size_t k = u[i].first; k < u[i].first + u[i].n; k++)
			if (!plan_job_done(p, &p->jobs[k])) {
				fputc(' ', f);
				bench_word_print(f, p->jobs[k].id);
			}
		fputc('\n', f);
	}
	if (!f || tj_outfile_commit(&o, &err) < 0) {
		if (!f)
			tj_outfile_abort(&o);
		tj_warn("bench: %s", err.msg);
		return -1;
	}
	for (size_t off = 0; off < n; off += SLURM_ARRAY) {
		size_t cnt = n - off < SLURM_ARRAY ? n - off : SLURM_ARRAY;
		char array[64], jname[128], output[PATH_MAX + 32], dep[4200], offs[32], id[256],
		     mem[32], cpus[32];
		snprintf(array, sizeof(array), "--array=1-%zu", cnt);
		snprintf(jname, sizeof(jname), "--job-name=tj-%s-%s", stage, sc->name);
		snprintf(output, sizeof(output), "--output=%s/slurm-%s-%%A-%%a.log", sc->logs, stage);
		snprintf(dep, sizeof(dep), "--dependency=afterany%s", sc->prev);
		snprintf(offs, sizeof(offs), "%zu", off);
		snprintf(mem, sizeof(mem), "--mem=%uM", u[first].mem_mb);
		snprintf(cpus, sizeof(cpus), "--cpus-per-task=%u", u[first].cpus);
		/* ours first: --slurm-args, later, overrides them */
		char *argv[72] = { (char *)sc->sbatch, "--parsable", array, jname, output, mem, cpus };
		size_t na = 7;
		if (sc->prev[0])
			argv[na++] = dep;
		for (size_t e = 0; e < sc->nextra && na < 66; e++)
			argv[na++] = sc->extra[e];
		argv[na++] = (char *)sc->script;
		argv[na++] = path;
		argv[na++] = offs;
		argv[na] = NULL;
		int rc = run_capture(argv, id, sizeof(id));
		if (rc != 0 || !id[0]) {
			tj_warn("bench: sbatch of the %s stage failed (exit %d)", stage, rc);
			return -1;
		}
		id[strcspn(id, ";")] = '\0'; /* "ID;cluster" */
		size_t l = strlen(sc->cur);
		snprintf(sc->cur + l, sizeof(sc->cur) - l, ":%s", id);
		l = strlen(sc->all);
		snprintf(sc->all + l, sizeof(sc->all) - l, ",%s", id);
		sc->submitted += cnt;
	}
	return 0;
}

/* Slurm: the units (slurm_units) as job arrays, one per stage and
 * resource request, of at most SLURM_ARRAY tasks (Slurm's default
 * MaxArraySize is 1001); with a task a job, each stage's arrays after
 * every array of the stage before (afterany: a job whose dependency
 * failed says so itself, and collect names it).  --run returns when they
 * have all left the queue. */
static int run_slurm(struct grid_plan *p, const char *slurm_args, int pack_dataset,
		     size_t max_tasks)
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
	plan_safe_name(name);
	char **extra = slurm_args ? plan_split_words(slurm_args) : NULL;
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
	struct slurm_ctx sc = { .sbatch = sbatch, .script = script, .logs = logs, .name = name,
				.extra = extra, .nextra = nextra };
	size_t nu;
	struct slurm_unit *u = slurm_units(p, pack_dataset, max_tasks, &nu);
	if (!u)
		goto fail;
	/* stage by stage (one stage when a task runs a dataset's chain); in a
	 * stage an array per resource request, each after the stage before */
	int nstages = pack_dataset ? 2 : K_N;
	for (int st = 0; st < nstages; st++) {
		sc.cur[0] = '\0';
		for (size_t i = 0; i < nu; i++) {
			if (u[i].stage != st || u[i].submitted)
				continue;
			if (submit_group(p, &sc, u, nu, i, pack_dataset) < 0) {
				free(u);
				goto fail;
			}
		}
		if (sc.cur[0])
			snprintf(sc.prev, sizeof(sc.prev), "%s", sc.cur);
	}
	free(u);
	size_t submitted = sc.submitted;
	char *all = sc.all;
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
		failed += !plan_job_done(p, &p->jobs[i]);
	if (failed)
		tj_warn("bench: %zu jobs not done (their names: bench --collect %s)", failed, p->dir);
	return failed ? TJ_EXIT_FAIL : TJ_EXIT_OK;
fail:
	bench_argv_free(extra);
	return TJ_EXIT_FAIL;
}

/* ---- the entry ---- */

/* The command line of a grid run: which of the four, and its options
 * (those of --plan in .plan). */
struct grid_cmd {
	const char *plan, *run, *coll, *job, *exec, *ssh, *slurm_args, *pack;
	char **job_ids;          /* --job DIR ID...: argc - optind of them */
	int njob_ids;
	int jobs, force, plots, slurm_tasks;
	struct grid_opts po;
	int argc;                /* the command line, for plan/suite.json */
	char **argv;
};

/* A spec file given as a scenario (`tracejoin gen --scenario FILE`). */
static int is_spec_file(const char *word, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%.*s", (int)len, word);
	return len > 4 && !strcmp(path + len - 4, ".scn") && access(path, R_OK) == 0;
}

/* Every name of a comma-separated --scenarios list is a built-in scenario
 * (or, for a training plan, a readable spec file). */
static int check_scenarios(const char *list, int specs)
{
	for (const char *q = list; *q;) {
		size_t len = strcspn(q, ",");
		int ok = specs && is_spec_file(q, len);
		for (size_t s = 0; s < gen_nbuiltins; s++)
			ok |= strlen(gen_builtins[s].name) == len &&
			      !strncmp(q, gen_builtins[s].name, len);
		if (!ok)
			return tj_usage("bench", "--scenarios: '%.*s' is not a built-in "
					"scenario (tracejoin gen --list)%s", (int)len, q,
					specs ? " nor a readable .scn file" : "");
		q += len + (q[len] == ',');
	}
	return 0;
}

/* --train NAME=ARGS or --train-on NAME=LIST into o->train; 0, or the
 * exit status of a usage error. */
static int train_opt(struct grid_opts *o, int is_train, const char *arg)
{
	const char *opt = is_train ? "--train" : "--train-on", *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1] || memchr(arg, '/', (size_t)(eq - arg)) ||
	    strpbrk(arg, "\t\n") || (size_t)(eq - arg) > 100)
		return tj_usage("bench", "%s %s: want NAME=%s (NAME a file name)", opt, arg,
				is_train ? "TRAIN-OPTIONS" : "SCENARIO,...");
	size_t i = 0;
	while (i < o->ntrain && (strlen(o->train[i].name) != (size_t)(eq - arg) ||
				 strncmp(o->train[i].name, arg, (size_t)(eq - arg))))
		i++;
	if (i == o->ntrain) {
		if (o->ntrain == 8)
			return tj_usage("bench", "at most 8 --train");
		char *name = strndup(arg, (size_t)(eq - arg));
		if (!name)
			return tj_usage("bench", "out of memory");
		o->train[o->ntrain++] = (struct plan_train){ name, NULL, NULL };
	}
	if (*(is_train ? &o->train[i].args : &o->train[i].on))
		return tj_usage("bench", "%s %s: given twice", opt, o->train[i].name);
	*(is_train ? &o->train[i].args : &o->train[i].on) = eq + 1;
	return 0;
}

/* Options into *g; 0, or the exit status of a usage error. */
static int parse_grid_opts(int argc, char **argv, struct grid_cmd *g)
{
	enum { O_PLAN = 256, O_RUN, O_COLLECT, O_JOB, O_EXEC, O_SEEDS, O_SCN, O_LOADS,
	       O_PARAM, O_REQ, O_QUICK, O_SSH, O_FORCE, O_NOPLOTS, O_SLURM, O_MEM, O_CPUS,
	       O_TRUST, O_PACK, O_TRAIN, O_TRAIN_ON, O_TASKS };
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
		{ "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "trust-plugin", no_argument, NULL, O_TRUST },
		{ "slurm-pack", required_argument, NULL, O_PACK },
		{ "slurm-tasks", required_argument, NULL, O_TASKS },
		{ "train", required_argument, NULL, O_TRAIN },
		{ "train-on", required_argument, NULL, O_TRAIN_ON },
		{ NULL, 0, NULL, 0 },
	};
	struct grid_opts *o = &g->po;
	*g = (struct grid_cmd){ .exec = "local", .plots = 1, .argc = argc, .argv = argv,
				.jobs = (int)sysconf(_SC_NPROCESSORS_ONLN) };
	struct tj_err err = { 0 };
	int c, rc;
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
		case O_TRUST: o->trust_plugin = 1; break;
		case O_PACK: g->pack = optarg; break;
		case O_TASKS:
			if (tj_parse_u64(optarg, 1, 1000000, &v) < 0)
				return tj_usage("bench", "--slurm-tasks %s: want 1 to 1000000", optarg);
			g->slurm_tasks = (int)v;
			break;
		case O_TRAIN:
		case O_TRAIN_ON:
			if ((rc = train_opt(o, c == O_TRAIN, optarg)) != 0)
				return rc;
			break;
		case O_MEM:
		case O_CPUS:
			if (plan_check_resource(optarg, &err) < 0)
				return tj_usage("bench", "%s %s", c == O_MEM ? "--mem" : "--cpus", err.msg);
			if ((c == O_MEM ? o->res.nmem : o->res.ncpus) == 32)
				return tj_usage("bench", "at most 32 --mem and 32 --cpus");
			if (c == O_MEM)
				o->res.mem[o->res.nmem++] = optarg;
			else
				o->res.cpus[o->res.ncpus++] = optarg;
			break;
		case ':': return tj_usage("bench", "option %s needs a value", argv[optind - 1]);
		default: return tj_usage("bench", "unknown option %s", argv[optind - 1]);
		}
	}
	if ((g->plan != NULL) + (g->run != NULL) + (g->coll != NULL) + (g->job != NULL) != 1)
		return tj_usage("bench", "give one of --plan, --run, --collect, --job");
	if (g->job ? optind == argc : optind != argc)
		return tj_usage("bench", g->job ? "--job DIR ID...: give the jobs' ids"
						: "unexpected argument '%s'", argv[optind]);
	g->job_ids = argv + optind;
	g->njob_ids = g->job ? argc - optind : 0;
	if (g->pack && (strcmp(g->exec, "slurm") || !g->run))
		return tj_usage("bench", "--slurm-pack: only with --run DIR --executor slurm");
	if (g->slurm_tasks && (strcmp(g->exec, "slurm") || !g->run || (g->pack &&
			       strcmp(g->pack, "dataset"))))
		return tj_usage("bench", "--slurm-tasks: only with --run DIR --executor slurm "
				"(a task a dataset)");
	if (g->pack && strcmp(g->pack, "dataset") && strcmp(g->pack, "job"))
		return tj_usage("bench", "--slurm-pack %s: want dataset or job", g->pack);
	if (strcmp(g->exec, "local") && strcmp(g->exec, "parallel") && strcmp(g->exec, "slurm"))
		return tj_usage("bench", "--executor %s: want local, parallel or slurm", g->exec);
	if (g->slurm_args && (strcmp(g->exec, "slurm") || !g->run))
		return tj_usage("bench", "--slurm-args: only with --run DIR --executor slurm");
	if (g->ssh && (strcmp(g->exec, "parallel") || !g->run))
		return tj_usage("bench", "--sshloginfile: only with --run DIR --executor parallel");
	if ((o->res.nmem || o->res.ncpus || o->trust_plugin || o->seeds || o->nalgos ||
	     o->nparams || o->requests || o->ntrain) && !g->plan)
		return tj_usage("bench", "--seeds, --algo, --param, --requests, --mem, --cpus, "
				"--trust-plugin and --train are options of --plan");
	if (bench_check_loads(o->loads) != 0)
		return TJ_EXIT_USAGE;
	if (o->ntrain && (o->nalgos || o->nparams))
		return tj_usage("bench", "--train: a training plan has no correlators (no --algo, "
				"--param)");
	for (size_t i = 0; i < o->ntrain; i++)
		if (!o->train[i].args)
			return tj_usage("bench", "--train-on %s=...: no --train %s=ARGS",
					o->train[i].name, o->train[i].name);
	return o->scenarios ? check_scenarios(o->scenarios, o->ntrain > 0) : 0;
}

static void grid_datasets_free(struct plan_dataset *ds, size_t n)
{
	for (size_t i = 0; ds && i < n; i++) {
		free((char *)ds[i].name);
		free((char *)ds[i].dir);
		if (!strcmp(ds[i].group, "train")) /* its own copy of the word */
			free((char *)ds[i].scenario);
	}
	free(ds);
}

/* The datasets of a grid: seeds x scenarios x loads, in DIR/data/; NULL
 * when out of memory. */
static struct plan_dataset *grid_datasets(const char *dir, const struct grid_opts *o,
					  const uint64_t *seeds, int nseeds, size_t *nds)
{
	size_t cap = (size_t)nseeds * gen_nbuiltins * 3, n = 0;
	struct plan_dataset *ds = calloc(cap ? cap : 1, sizeof(*ds));
	for (int si = 0; ds && si < nseeds; si++)
		for (size_t s = 0; s < gen_nbuiltins; s++) {
			if (!bench_in_list(o->scenarios, gen_builtins[s].name))
				continue;
			for (int l = 0; l < 3; l++) {
				if (!bench_in_list(o->loads, bench_load_names[l]))
					continue;
				char *name = NULL, *data = NULL;
				if (asprintf(&name, "%s-%s-s%" PRIu64, gen_builtins[s].name,
					     bench_load_names[l], seeds[si]) < 0 ||
				    asprintf(&data, "%s/data/%s", dir, name) < 0) {
					free(name);
					grid_datasets_free(ds, n);
					return NULL;
				}
				ds[n++] = (struct plan_dataset){ name, "synthetic", gen_builtins[s].name,
					bench_load_names[l], data, seeds[si], 1 };
			}
		}
	*nds = n;
	return ds;
}

/* The datasets of a training plan: by scenario in the order of
 * --scenarios (built-ins or spec files, as models/train-default.sh lists
 * them), load, seed; NULL when out of memory or no --scenarios. */
static struct plan_dataset *train_datasets(const char *dir, const struct grid_opts *o,
					   const uint64_t *seeds, int nseeds, size_t *nds)
{
	size_t words = 1, n = 0;
	for (const char *q = o->scenarios; q && *q; q++)
		words += *q == ',';
	struct plan_dataset *ds = calloc(words * 3 * (size_t)nseeds, sizeof(*ds));
	for (const char *q = o->scenarios; ds && q && *q;) {
		size_t len = strcspn(q, ",");
		const char *base = memrchr(q, '/', len);
		base = base ? base + 1 : q;
		size_t bl = len - (size_t)(base - q);
		if (bl > 4 && !strncmp(base + bl - 4, ".scn", 4))
			bl -= 4;
		for (int l = 0; l < 3; l++) {
			if (!bench_in_list(o->loads, bench_load_names[l]))
				continue;
			for (int si = 0; si < nseeds; si++) {
				char *name = NULL, *data = NULL, *scn = strndup(q, len);
				if (!scn || asprintf(&name, "%.*s-%s-s%" PRIu64, (int)bl, base,
						     bench_load_names[l], seeds[si]) < 0 ||
				    asprintf(&data, "%s/data/%s", dir, name) < 0) {
					free(scn);
					free(name);
					grid_datasets_free(ds, n);
					return NULL;
				}
				ds[n++] = (struct plan_dataset){ name, "train", scn,
					bench_load_names[l], data, seeds[si], 1 };
			}
		}
		q += len + (q[len] == ',');
	}
	*nds = n;
	return ds;
}

/* --plan: the correlators from the registry (the built-ins, or those
 * named), then DIR/plan/jobs.tsv and suite.json. */
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
	if (o.ntrain && !o.scenarios)
		return tj_usage("bench", "--train: give the scenarios to train on (--scenarios)");
	if (o.nalgos == 0 && !o.ntrain) {
		const struct tj_correlator *b[32];
		size_t nb = tj_correlator_builtins(b, 32);
		for (size_t i = 0; i < nb; i++)
			algos[nalgos++] = b[i]->name;
	}
	for (size_t i = 0; i < o.nalgos; i++) {
		const struct tj_correlator *cor;
		void *h;
		if (tj_correlator_load(o.algos[i], o.trust_plugin ? TJ_LOAD_TRUST : 0, &cor, &h,
				       &err) < 0)
			return tj_usage("bench", "--algo %s: %s", o.algos[i], err.msg);
		tj_correlator_unload(h);
		if (strpbrk(o.algos[i], "\t \n"))
			return tj_usage("bench", "--algo %s: no spaces or tabs", o.algos[i]);
		algos[nalgos++] = o.algos[i];
	}
	double t0 = bench_now();
	static uint64_t seeds[10000];
	int nseeds = parse_seeds(o.seeds ? o.seeds : "1", seeds, 10000);
	if (nseeds <= 0)
		return tj_usage("bench", "--seeds %s: want N, N-M or a comma list (at most 10000)",
				o.seeds);
	if (strpbrk(g->plan, "\t\n"))
		return tj_usage("bench", "--plan %s: no tabs or newlines in the folder", g->plan);
	size_t nds = 0;
	struct plan_dataset *ds = o.ntrain ? train_datasets(g->plan, &o, seeds, nseeds, &nds)
					   : grid_datasets(g->plan, &o, seeds, nseeds, &nds);
	if (!ds) {
		tj_warn("bench: out of memory");
		return TJ_EXIT_FAIL;
	}
	struct plan_spec spec = { .ds = ds, .nds = nds, .algos = algos, .nalgos = nalgos,
				  .params = o.params, .nparams = o.nparams,
				  .requests = o.requests, .trust_plugin = o.trust_plugin,
				  .res = o.res, .train = o.train, .ntrain = o.ntrain };
	char path[PATH_MAX];
	int rc = plan_make(&p, g->plan, &spec, &err);
	grid_datasets_free(ds, nds);
	if (rc < 0) {
		plan_free(&p);
		return err.code == TJ_E_ARG ? tj_usage("bench", "%s", err.msg)
					    : (tj_warn("bench: %s", err.msg), TJ_EXIT_FAIL);
	}
	snprintf(path, sizeof(path), "%s/plan", g->plan);
	if (bench_mkdirs(path) < 0) {
		tj_warn("bench: %s: %s", path, strerror(errno));
		plan_free(&p);
		return TJ_EXIT_FAIL;
	}
	json_t *cmd = json_array(), *algo_list = json_array();
	for (int i = 0; i < g->argc; i++)
		json_array_append_new(cmd, json_string(g->argv[i]));
	for (size_t i = 0; i < nalgos; i++)
		json_array_append_new(algo_list, json_string(algos[i]));
	json_t *suite = json_pack("{s:s, s:I, s:s?, s:s?, s:I, s:b, s:o}", "seeds",
				  o.seeds ? o.seeds : "1", "nseeds", (json_int_t)nseeds,
				  "scenarios", o.scenarios, "loads", o.loads, "requests",
				  (json_int_t)o.requests, "quick", o.quick, "correlators", algo_list);
	snprintf(path, sizeof(path), "%s/plan/jobs.tsv", g->plan);
	unsigned flags = g->force ? TJ_OUT_FORCE : 0;
	if (!g->force && access(path, F_OK) == 0) {
		json_decref(cmd);
		json_decref(suite);
		plan_free(&p);
		tj_warn("bench: %s exists (--force replaces it)", path);
		return TJ_EXIT_FAIL;
	}
	/* jobs.tsv last: a plan is there once it is whole */
	rc = plan_write_suite(g->plan, "grid", cmd, suite, flags, &err) < 0 ||
	     plan_write(&p, path, flags, &err) < 0;
	size_t n = p.n;
	plan_free(&p);
	if (rc) {
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
	if (plan_read(&p, dir, &err) < 0) {
		tj_warn("bench: %s", err.msg);
		return TJ_EXIT_FAIL;
	}
	int rc = TJ_EXIT_OK;
	if (g->job)
		for (int i = 0; i < g->njob_ids; i++) { /* in order: a dataset's chain */
			int r = run_job(&p, g->job_ids[i]);
			rc = r > rc ? r : rc;
		}
	else if (g->coll)
		rc = grid_collect(&p, g->plots, NULL);
	else if (!strcmp(g->exec, "slurm"))
		rc = run_slurm(&p, g->slurm_args, !g->pack || !strcmp(g->pack, "dataset"),
			       (size_t)g->slurm_tasks);
	else if (!strcmp(g->exec, "parallel"))
		rc = run_parallel(&p, g->jobs, g->ssh);
	else
		rc = grid_run_local(&p, self_path, g->jobs, isatty(2));
	plan_free(&p);
	return rc;
}

int bench_grid(int argc, char **argv)
{
	struct grid_cmd g;
	int rc = parse_grid_opts(argc, argv, &g);
	if (rc == 0 && !(self_path = bench_self())) {
		tj_warn("bench: cannot find my own binary: %s", strerror(errno));
		rc = TJ_EXIT_FAIL;
	}
	if (rc == 0)
		rc = g.plan ? plan_grid(&g) : use_plan(&g);
	for (size_t i = 0; i < g.po.ntrain; i++)
		free((char *)g.po.train[i].name);
	return rc;
}
