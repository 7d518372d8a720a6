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
#include <dirent.h>
#include <bpf/bpf.h>
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

int tj_bench_capture_ready(char *tj, size_t len, const char *check_args)
{
	char cmd[PATH_MAX + 128];
	if (!tj[0] && tj_bench_tracejoin_path(tj, len) < 0)
		return 1;
	snprintf(cmd, sizeof(cmd), "'%s' capture --check %s", tj, check_args ? check_args : "");
	int rc = system(cmd);
	if (rc != -1 && WIFEXITED(rc) && (WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 77))
		return WEXITSTATUS(rc);
	fprintf(stderr, "%s capture --check failed\n", tj);
	return 1;
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

const char *const tj_bench_data_progs[] = {
	"on_send_length", "on_recv_length", "exit_read", "exit_write", "exit_recvfrom",
	"exit_sendto", "exit_readv", "exit_writev", "exit_recvmsg", "exit_sendmsg",
	"exit_recvmmsg", "exit_sendmmsg", NULL,
};

int tj_bench_bpf_stats_on(void)
{
	return bpf_enable_stats(BPF_STATS_RUN_TIME);
}

/* The id of the BPF program behind fd entry `fd` of pid, or 0: its
 * fdinfo has a prog_id line. */
static unsigned prog_id_of(pid_t pid, const char *fd)
{
	char path[64], line[128];
	unsigned id = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, fd);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "prog_id: %u", &id) == 1)
			break;
	fclose(f);
	return id;
}

int tj_bench_bpf_prog_stats(pid_t pid, const char *const names[], unsigned long long *run_ns,
			    unsigned long long *run_cnt)
{
	char path[64];
	struct dirent *d;
	DIR *dir;

	*run_ns = *run_cnt = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(dir = opendir(path)))
		return -1;
	/* A program can sit behind several fds (its own, a link's): each id
	 * is counted once. */
	unsigned seen[64];
	int nseen = 0;
	while ((d = readdir(dir))) {
		unsigned id = d->d_name[0] != '.' ? prog_id_of(pid, d->d_name) : 0;
		int dup = 0;
		for (int i = 0; i < nseen; i++)
			dup |= seen[i] == id;
		if (!id || dup || nseen == 64)
			continue;
		seen[nseen++] = id;
		int fd = bpf_prog_get_fd_by_id(id);
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			for (int i = 0; names[i]; i++)
				if (strcmp(info.name, names[i]) == 0) {
					*run_ns += info.run_time_ns;
					*run_cnt += info.run_cnt;
				}
		close(fd);
	}
	closedir(dir);
	return 0;
}
