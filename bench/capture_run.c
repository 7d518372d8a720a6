/* bench/capture_run.h: the capture benchmarks' common parts. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "capture_run.h"

int tj_capture_run_start(struct tj_capture_run *c, const char *tj,
			 char *const args[], const char *who)
{
	int p[2];
	size_t used = 0, nargs = 0;
	while (args[nargs])
		nargs++;
	char **argv = calloc(nargs + 3, sizeof(*argv));
	if (!argv || pipe(p)) {
		free(argv);
		return -1;
	}
	argv[0] = (char *)tj;
	argv[1] = "capture";
	memcpy(argv + 2, args, nargs * sizeof(*argv));
	c->pid = fork();
	if (c->pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(tj, argv);
		fprintf(stderr, "cannot run %s: %s\n", tj, strerror(errno));
		_exit(127);
	}
	free(argv);
	close(p[1]);
	c->err_fd = p[0];
	c->text[0] = '\0';
	while (!strstr(c->text, "recording")) {
		ssize_t n = read(c->err_fd, c->text + used, sizeof(c->text) - 1 - used);
		if (n <= 0) {
			fprintf(stderr, "%s: capture did not start: %s\n", who, c->text);
			return -1;
		}
		used += (size_t)n;
		c->text[used] = '\0';
	}
	return 0;
}

int tj_capture_run_stop(struct tj_capture_run *c, const char *who)
{
	size_t used = strlen(c->text);
	int status;
	kill(c->pid, SIGINT);
	for (;;) {
		ssize_t n = read(c->err_fd, c->text + used, sizeof(c->text) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		c->text[used] = '\0';
	}
	close(c->err_fd);
	if (waitpid(c->pid, &status, 0) != c->pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: capture failed:\n%s", who, c->text);
		return -1;
	}
	return 0;
}

int tj_bench_tracejoin_path(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	snprintf(out, len, "%s/../tracejoin", dirname(self));
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double tj_bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
