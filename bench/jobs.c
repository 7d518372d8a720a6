/* Child processes for the benchmark: at most `parallel` at once, each
 * measured by wait4() so CPU time and peak memory are the child's own. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include "../lib/outfile.h"

const char *bench_self(void)
{
	static char self[PATH_MAX];
	if (!self[0]) {
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0) {
			self[0] = '\0';
			return NULL;
		}
		self[n] = '\0';
	}
	return self;
}

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_in_list(const char *list, const char *word)
{
	if (!list)
		return 1;
	size_t n = strlen(word);
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, word, n) == 0)
			return 1;
		p += len + (c != NULL);
	}
	return 0;
}

int bench_mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

void bench_log_tail(const char *path, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen(path, "r");
	snprintf(out, len, "no output");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", line);
		}
	fclose(f);
}

uint64_t bench_events_from_log(const char *path)
{
	char line[512];
	uint64_t ev = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "correlate: algo ");
		const char *c = p ? strchr(p, ',') : NULL;
		if (c)
			ev = strtoull(c + 1, NULL, 10);
	}
	fclose(f);
	return ev;
}

const char *const bench_load_names[3] = { "low", "medium", "high" };

int bench_check_loads(const char *loads)
{
	for (const char *q = loads ? loads : ""; *q;) {
		size_t len = strcspn(q, ",");
		int ok = 0;
		for (int l = 0; l < 3; l++)
			ok |= strlen(bench_load_names[l]) == len && !strncmp(q, bench_load_names[l], len);
		if (!ok)
			return tj_usage("bench", "--loads: '%.*s' is not low, medium or high",
					(int)len, q);
		q += len + (q[len] == ',');
	}
	return 0;
}

char **bench_argv(const char *first, ...)
{
	va_list ap;
	size_t n = 1;
	va_start(ap, first);
	while (va_arg(ap, const char *))
		n++;
	va_end(ap);
	char **argv = calloc(n + 1, sizeof(*argv));
	if (!argv)
		return NULL;
	argv[0] = strdup(first);
	va_start(ap, first);
	for (size_t i = 1; i < n; i++)
		argv[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
	for (size_t i = 0; i < n; i++)
		if (!argv[i]) {
			bench_argv_free(argv);
			return NULL;
		}
	return argv;
}

void bench_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

void bench_word_print(FILE *f, const char *a)
{
	int plain = a[0] != '\0' && strspn(a, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+") == strlen(a);
	if (plain) {
		fputs(a, f);
		return;
	}
	fputc('\'', f);
	for (; *a; a++)
		*a == '\'' ? fputs("'\\''", f) : fputc(*a, f);
	fputc('\'', f);
}

void bench_argv_print(FILE *f, char *const *argv)
{
	for (size_t i = 0; argv[i]; i++) {
		fputs(i ? " " : "", f);
		bench_word_print(f, argv[i]);
	}
	fputc('\n', f);
}

static pid_t start(struct bench_job *j, struct tj_err *err)
{
	int fd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return tj_errf(err, TJ_E_IO, "%s: %s", j->log, strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		return tj_errf(err, TJ_E_IO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(j->argv[0], j->argv);
		fprintf(stderr, "exec %s: %s\n", j->argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	j->pid = pid;
	j->started = bench_now();
	return pid;
}

int bench_jobs_run(struct bench_job *jobs, size_t n, int parallel,
		   void (*done)(struct bench_job *j, void *ctx),
		   int (*before)(struct bench_job *j, size_t started, size_t total, void *ctx),
		   void *ctx, struct tj_err *err)
{
	size_t next = 0, running = 0;
	int rc = 0;
	if (parallel < 1)
		parallel = 1;
	while (next < n || running > 0) {
		while (rc == 0 && next < n && running < (size_t)parallel) {
			if (before && before(&jobs[next], next, n, ctx) != 0) {
				next++; /* not to run: its status is the caller's */
				continue;
			}
			if (start(&jobs[next], err) < 0) {
				rc = -TJ_E_IO;
				break;
			}
			next++;
			running++;
		}
		if (running == 0)
			break;
		int status;
		struct rusage ru;
		pid_t pid = wait4(-1, &status, 0, &ru);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			return tj_errf(err, TJ_E_IO, "wait4: %s", strerror(errno));
		}
		for (size_t i = 0; i < next; i++) {
			struct bench_job *j = &jobs[i];
			if (j->pid != pid)
				continue;
			j->pid = 0;
			j->wall_s = bench_now() - j->started;
			j->cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
				   (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
			j->peak_mb = (double)ru.ru_maxrss / 1024.0;
			j->status = WIFEXITED(status) ? WEXITSTATUS(status)
						      : 128 + WTERMSIG(status);
			running--;
			if (done)
				done(j, ctx);
			break;
		}
		if (rc < 0 && running == 0)
			break;
	}
	return rc;
}

int bench_write_json_file(const char *path, json_t *o, size_t dump_flags, unsigned out_flags,
			  struct tj_err *err)
{
	char *text = json_dumps(o, dump_flags);
	struct tj_outfile of;
	int rc = -1;
	if (!text)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	if (tj_outfile_open(&of, path, out_flags, 0666, NULL, 0, err) == 0) {
		if (tj_outfile_write(&of, text, strlen(text), err) == 0 &&
		    tj_outfile_write(&of, "\n", 1, err) == 0)
			rc = tj_outfile_commit(&of, err);
		else
			tj_outfile_abort(&of);
	}
	free(text);
	return rc;
}
