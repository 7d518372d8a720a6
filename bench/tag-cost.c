/* bench/tag-cost: what `tracejoin capture --tag` costs per connection.
 * One process opens N loopback connections one after another (connect,
 * one byte each way, close with a reset so that no TIME_WAIT piles up;
 * a server thread accepts), in rounds under
 * three setups, rotated so that a drift of the machine's speed hits all:
 *   none     no capture;
 *   capture  tracejoin capture --port P (the sock hooks see the events);
 *   tag      tracejoin capture --port P --tag (also the sock_ops program:
 *            the option written on each SYN, read back from the saved SYN,
 *            a TAG record per accepted connection).
 * Each round's listener is made after its capture started, so that --tag
 * keeps its SYNs.  Prints per round the wall time and this process's CPU
 * time (user + system, both ends of the loopback connection and the
 * softirq work done in its context) per connection, then
 *
 *   tag: +W us wall, +C us CPU per connection over capture alone (median of R rounds)
 *
 * and capture's own tag counters of the last --tag round (every SYN must
 * be tagged, every accepted connection read).  The sock_ops program's
 * own run time is read from the kernel's BPF statistics (enabled by this
 * program for its run, BPF_ENABLE_STATS): ns per connection and per
 * call, a figure that the machine's other load hardly moves, unlike the
 * differences of whole-connection times.  capture's own CPU time is
 * not in these figures.  Needs root; exits 77 (skipped) where capture
 * --tag cannot run.
 *
 * usage: tag-cost [-n CONNS] [-r ROUNDS] [-p PORT] [-t TRACEJOIN] */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "capture_run.h"

enum { NONE, CAPTURE, TAG, NSETUPS };
static const char *const setup_name[NSETUPS] = { "none", "capture", "tag" };

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

struct server {
	int lfd;
	int n;
	int failed;
};

/* Close with a reset: no TIME_WAIT left behind, which would slow the
 * port search of later rounds (and of whichever setup runs later). */
static void close_now(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void *serve(void *p)
{
	struct server *s = p;
	for (int i = 0; i < s->n; i++) {
		int c = accept(s->lfd, NULL, NULL);
		char b;
		if (c < 0 || read(c, &b, 1) != 1 || write(c, &b, 1) != 1)
			s->failed = 1;
		if (c >= 0)
			close_now(c);
	}
	return NULL;
}

/* n connections to port; wall and CPU seconds; -1 on a failure. */
static int connections(int port, int n, double *wall, double *cpu)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct server s = { .n = n };
	int one = 1;
	s.lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (s.lfd < 0 || setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s.lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s.lfd, 1024)) {
		fprintf(stderr, "tag-cost: port %d: %s\n", port, strerror(errno));
		return -1;
	}
	pthread_t th;
	pthread_create(&th, NULL, serve, &s);
	double w0 = now_s(), c0 = cpu_s();
	int bad = 0;
	for (int i = 0; i < n && !bad; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char b = 'x';
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1)
			bad = 1;
		if (fd >= 0)
			close_now(fd);
	}
	pthread_join(th, NULL);
	*wall = now_s() - w0;
	*cpu = cpu_s() - c0;
	close(s.lfd);
	if (bad || s.failed) {
		fprintf(stderr, "tag-cost: a connection failed: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int capture_start(const char *tj, struct tj_capture_run *c, const char *log,
			 int port, int tag)
{
	char portarg[16];
	snprintf(portarg, sizeof(portarg), "%d", port);
	char *args[] = { "--force", "--port", portarg, "-o", (char *)log,
			 tag ? "--tag" : NULL, NULL };
	return tj_capture_run_start(c, tj, args, "tag-cost");
}

#define median tj_bench_median

/* The newest loaded program named tag_sockops: its run time and count. */
static int tag_prog_stats(unsigned long long *ns, unsigned long long *cnt)
{
	__u32 id = 0, best = 0;
	struct bpf_prog_info best_info = { 0 };
	while (bpf_prog_get_next_id(id, &id) == 0) {
		int fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			continue;
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    strcmp(info.name, "tag_sockops") == 0 && id > best) {
			best = id;
			best_info = info;
		}
		close(fd);
	}
	*ns = best_info.run_time_ns;
	*cnt = best_info.run_cnt;
	return best ? 0 : -1;
}

int main(int argc, char **argv)
{
	int conns = 5000, rounds = 5, port = 7791, opt;
	char tj[PATH_MAX] = "";
	while ((opt = getopt(argc, argv, "n:r:p:t:h")) != -1) {
		switch (opt) {
		case 'n': conns = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 't': snprintf(tj, sizeof(tj), "%s", optarg); break;
		default:
			fprintf(stderr, "usage: tag-cost [-n CONNS] [-r ROUNDS] [-p PORT] [-t TRACEJOIN]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (conns < 1 || conns > 1000000 || rounds < 1 || rounds > 100 ||
	    port < 1024 || port > 65535 || optind != argc) {
		fprintf(stderr, "tag-cost: bad arguments (see the source's head)\n");
		return 2;
	}
	int rc = tj_bench_capture_ready(tj, sizeof(tj), "--tag");
	if (rc)
		return rc;
	char dir[] = "/tmp/tag-cost.XXXXXX", log[sizeof(dir) + 16];
	if (!mkdtemp(dir))
		return 1;
	snprintf(log, sizeof(log), "%s/cap.evlog", dir);

	double wall[NSETUPS][100], cpu[NSETUPS][100], prog_ns[100], prog_calls[100];
	int nprog = 0;
	char tag_line[512] = "";
	int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	int status = 0;
	printf("tag-cost: %d loopback connections per round, %d rounds\n", conns, rounds);
	for (int r = 0; r < rounds && !status; r++) {
		for (int k = 0; k < NSETUPS && !status; k++) {
			int s = (r + k) % NSETUPS; /* rotate the order */
			struct tj_capture_run c;
			if (s != NONE && capture_start(tj, &c, log, port, s == TAG)) {
				status = 1;
				break;
			}
			if (connections(port, conns, &wall[s][r], &cpu[s][r]))
				status = 1;
			unsigned long long ns, cnt;
			if (s == TAG && !status && stats_fd >= 0 && tag_prog_stats(&ns, &cnt) == 0) {
				prog_ns[nprog] = (double)ns / conns;
				prog_calls[nprog++] = (double)cnt / conns;
			}
			if (s != NONE && tj_capture_run_stop(&c, "tag-cost"))
				status = 1;
			if (s == TAG && !status) {
				const char *t = strstr(c.text, "--tag: ");
				const char *e = t ? strchr(t, '\n') : NULL;
				snprintf(tag_line, sizeof(tag_line), "%.*s",
					 t ? (int)(e ? e - t : (long)strlen(t)) : 0, t ? t : "");
			}
			if (!status)
				printf("round %d %-8s %.2f us wall, %.2f us CPU per connection\n", r + 1,
				       setup_name[s], wall[s][r] / conns * 1e6, cpu[s][r] / conns * 1e6);
		}
	}
	unlink(log);
	rmdir(dir);
	if (status)
		return 1;
	double dw[100], dc[100], cw[100], cc[100];
	for (int r = 0; r < rounds; r++) {
		dw[r] = (wall[TAG][r] - wall[CAPTURE][r]) / conns * 1e6;
		dc[r] = (cpu[TAG][r] - cpu[CAPTURE][r]) / conns * 1e6;
		cw[r] = (wall[CAPTURE][r] - wall[NONE][r]) / conns * 1e6;
		cc[r] = (cpu[CAPTURE][r] - cpu[NONE][r]) / conns * 1e6;
	}
	printf("capture: +%.2f us wall, +%.2f us CPU per connection over none (median of %d rounds)\n",
	       median(cw, rounds), median(cc, rounds), rounds);
	printf("tag: +%.2f us wall, +%.2f us CPU per connection over capture alone (median of %d rounds)\n",
	       median(dw, rounds), median(dc, rounds), rounds);
	if (nprog) {
		double per_call[100];
		for (int i = 0; i < nprog; i++)
			per_call[i] = prog_ns[i] / prog_calls[i];
		printf("tag program: %.0f ns per connection in %.1f calls, %.0f ns per call "
		       "(kernel BPF stats, median of %d rounds)\n", median(prog_ns, nprog),
		       median(prog_calls, nprog), median(per_call, nprog), nprog);
	} else {
		printf("tag program: no run-time statistics (BPF_ENABLE_STATS: %s)\n",
		       stats_fd < 0 ? strerror(errno) : "program not found");
	}
	printf("last tag round: %s\n", tag_line);
	if (stats_fd >= 0)
		close(stats_fd);
	return 0;
}
