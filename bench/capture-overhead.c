/* bench/capture-overhead: what `tracejoin capture` costs the traced
 * programs.  A loopback request/response load (client threads doing
 * small ping-pongs on keepalive connections, a server thread per
 * connection) runs in rounds without and with `tracejoin capture --pid
 * <this process>`; the rounds alternate so that a drift of the machine's
 * speed hits both sides.  Prints per round, then the final line
 *
 *   capture: overhead X% throughput, E events/s, D drops, C% cpu, B bytes/event
 *
 * X: throughput lost with capture (median of rounds; the line before also
 * gives the loss in requests per CPU-second, which a busy machine skews
 * much less than wall-clock throughput), E: events written per
 * second of load, D: events lost, C: capture's own CPU time per second of
 * load while it records (100% = one core; loading its programs before and
 * the last flush after are not counted), B: log bytes per event.  Needs root; exits 77
 * (skipped) where capture cannot run.
 *
 * Each round also times one thread doing 64-byte loopback writes and
 * reads that never block (thread CPU time per call, with and without
 * capture): the cost capture adds to a single socket call, which other
 * load on the machine hardly moves; and the same for 64-byte reads of
 * /dev/zero, a call capture does not record (what every other program
 * on the machine pays).
 *
 * With BPF run-time statistics on (for the bench's life, as
 * kernel.bpf_stats_enabled=1 does), each round also prints the data
 * programs' CPU time per run (run_time_ns / run_cnt of on_send_length and
 * on_recv_length, or the syscall hooks' exit_* data programs): the
 * per-event cost of the kernel side, which the rest of the machine's load
 * moves far less than throughput.  Runs of other processes' sockets, which
 * the programs drop early, are counted in too: compare run_cnt with the
 * events.
 *
 * --stack[=user|kernel|both], --hooks sock|syscalls|auto and
 * --ring-kb N pass the same to capture (a cost is the difference between runs with and
 * without).
 *
 * -w US: the server works US microseconds (busy) per request before it
 * answers, like a service that does something; 0 (the default) is the
 * worst case, where every request is nothing but its four syscalls.
 *
 * usage: capture-overhead [-c CONNS] [-s SECONDS] [-r ROUNDS] [-n MAXREQ]
 *                         [-b BYTES] [-w WORK_US] [-t TRACEJOIN] [--stack[=WHAT]]
 *                         [--hooks HOW] [--ring-kb N] */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <limits.h>
#include "capture_run.h"

struct load {
	int conns;
	double seconds;
	long max_requests;   /* per round, over all connections */
	int msg_bytes;
	int port;
	atomic_long done;
	atomic_int stop;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int io_all(int fd, char *buf, int len, int writing)
{
	int done = 0;
	while (done < len) {
		ssize_t n = writing ? write(fd, buf + done, len - done)
				    : read(fd, buf + done, len - done);
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

struct server_arg {
	int fd;
	int msg_bytes;
};

static double work_s; /* -w: the server's work per request, busy */

static void *server(void *p)
{
	struct server_arg *a = p;
	char buf[4096];

	while (io_all(a->fd, buf, a->msg_bytes, 0) == 0) {
		if (work_s > 0)
			for (double t0 = now_s(); now_s() - t0 < work_s;)
				;
		if (io_all(a->fd, buf, a->msg_bytes, 1) != 0)
			break;
	}
	close(a->fd);
	free(a);
	return NULL;
}

static void *acceptor(void *p)
{
	int lfd = *(int *)p;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		struct server_arg *a = malloc(sizeof(*a));
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		a->fd = fd;
		a->msg_bytes = 0;
		/* The first 4 bytes say the message size. */
		if (io_all(fd, (char *)&a->msg_bytes, 4, 0) != 0 || a->msg_bytes <= 0 ||
		    a->msg_bytes > 4096) {
			close(fd);
			free(a);
			continue;
		}
		pthread_t t;
		pthread_create(&t, NULL, server, a);
		pthread_detach(t);
	}
}

static void *client(void *p)
{
	struct load *l = p;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(l->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("capture-overhead: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	io_all(fd, (char *)&l->msg_bytes, 4, 1);
	memset(buf, 'x', sizeof(buf));
	while (!atomic_load(&l->stop)) {
		if (io_all(fd, buf, l->msg_bytes, 1) || io_all(fd, buf, l->msg_bytes, 0))
			break;
		if (atomic_fetch_add(&l->done, 1) + 1 >= l->max_requests)
			atomic_store(&l->stop, 1);
	}
	close(fd);
	return NULL;
}

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* One round of load: requests per second of wall time; *per_cpu gets
 * requests per CPU-second spent by this process (clients and servers,
 * user and kernel, BPF programs included), which a busy machine skews
 * much less than wall time. */
static double run_load(struct load *l, double *elapsed, double *per_cpu)
{
	pthread_t t[64];
	atomic_store(&l->done, 0);
	atomic_store(&l->stop, 0);
	double c0 = cpu_now();
	double t0 = now_s();
	for (int i = 0; i < l->conns; i++)
		pthread_create(&t[i], NULL, client, l);
	while (!atomic_load(&l->stop) && now_s() - t0 < l->seconds)
		usleep(10000);
	atomic_store(&l->stop, 1);
	for (int i = 0; i < l->conns; i++)
		pthread_join(t[i], NULL);
	*elapsed = now_s() - t0;
	*per_cpu = atomic_load(&l->done) / (cpu_now() - c0);
	return atomic_load(&l->done) / *elapsed;
}

/* The CPU cost of one traced socket call, with little else in it: one
 * thread writes 64 bytes on one end of a loopback connection, reads them
 * on the other, and back (four calls, none of which blocks).  Thread CPU
 * time, so other load on the machine does not count; nanoseconds per
 * call. */
#define PAIR_ITERATIONS 50000
static int pair_a = -1, pair_b = -1;

static int make_pair(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	pair_a = socket(AF_INET, SOCK_STREAM, 0);
	if (pair_a < 0 || connect(pair_a, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	pair_b = accept(lfd, NULL, NULL);
	close(lfd);
	setsockopt(pair_a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(pair_b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return pair_b < 0 ? -1 : 0;
}

static double per_call_ns(long iterations)
{
	char buf[64] = { 0 };
	struct timespec t0, t1;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (long i = 0; i < iterations; i++)
		if (io_all(pair_a, buf, 64, 1) || io_all(pair_b, buf, 64, 0) ||
		    io_all(pair_b, buf, 64, 1) || io_all(pair_a, buf, 64, 0))
			return -1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (4.0 * iterations);
}

/* What capture costs a call it does not record: 64-byte reads of
 * /dev/zero, same thread CPU time per call. */
static int zero_fd = -1;

static double untraced_call_ns(long iterations)
{
	char buf[64];
	struct timespec t0, t1;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (long i = 0; i < iterations; i++)
		if (read(zero_fd, buf, sizeof(buf)) != sizeof(buf))
			return -1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iterations;
}

#define median tj_bench_median

struct capture_run {
	struct tj_capture_run r;
	char log[PATH_MAX];
	double cpu_at_start; /* capture's CPU seconds once it records */
};

/* CPU seconds (user + system) a process has used so far, from
 * /proc/PID/stat: capture's cost while it records, without the loading
 * and verifying of its programs before nor the last flush after. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the command name's ')'. */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* Start `tracejoin capture --pid SELF [extra]` and wait until it records. */
static char *extra_args[4]; /* at most one of each option */ /* options passed on to capture, NULL-ended */
static int n_extra;
static char extra_text[128]; /* the same, for the report */

static int capture_start(const char *tj, struct capture_run *c, const char *dir, int round)
{
	char pidarg[32];

	snprintf(c->log, sizeof(c->log), "%s/round-%d.evlog", dir, round);
	snprintf(pidarg, sizeof(pidarg), "%d", (int)getpid());
	char *args[6 + 4 + 1] = { "--pid", pidarg, "-o", c->log };
	for (int i = 0; i < n_extra; i++)
		args[4 + i] = extra_args[i];
	if (tj_capture_run_start(&c->r, tj, args, "capture-overhead"))
		return -1;
	c->cpu_at_start = proc_cpu_s(c->r.pid);
	return 0;
}

/* Stop it; events and lost counts from its summary line, the data
 * programs' statistics (0 when the kernel keeps none). */
static int capture_stop(struct capture_run *c, unsigned long long *events,
			unsigned long long *lost, double *cpu_s, unsigned long long *run_ns,
			unsigned long long *run_cnt)
{
	*cpu_s = proc_cpu_s(c->r.pid) - c->cpu_at_start;
	if (tj_bench_bpf_prog_stats(c->r.pid, tj_bench_data_progs, run_ns, run_cnt))
		*run_ns = *run_cnt = 0;
	if (tj_capture_run_stop(&c->r, "capture-overhead"))
		return -1;
	const char *s = strstr(c->r.text, "capture: ");
	while (s && sscanf(s, "capture: %llu events, %llu lost", events, lost) != 2)
		s = strstr(s + 1, "capture: ");
	if (!s) {
		fprintf(stderr, "capture-overhead: no summary from capture:\n%s", c->r.text);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct load l = { .conns = 4, .seconds = 3, .max_requests = 5000000, .msg_bytes = 64 };
	int rounds = 5, opt;
	char tj[PATH_MAX] = "";

	static const struct option longopts[] = {
		{ "stack", optional_argument, NULL, 'S' },
		{ "hooks", required_argument, NULL, 'H' },
		{ "ring-kb", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char stack_buf[32], hooks_buf[32], ring_buf[32];
	while ((opt = getopt_long(argc, argv, "c:s:r:n:b:t:w:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'S':
			if (optarg && strcmp(optarg, "user") && strcmp(optarg, "kernel") &&
			    strcmp(optarg, "both")) {
				fprintf(stderr, "capture-overhead: --stack=%s: not user, kernel or both\n",
					optarg);
				return 2;
			}
			snprintf(stack_buf, sizeof(stack_buf), "--stack=%s", optarg ? optarg : "user");
			extra_args[n_extra++] = stack_buf;
			break;
		case 'H':
			if (strcmp(optarg, "sock") && strcmp(optarg, "syscalls") && strcmp(optarg, "auto")) {
				fprintf(stderr, "capture-overhead: --hooks %s: not sock, syscalls or auto\n",
					optarg);
				return 2;
			}
			snprintf(hooks_buf, sizeof(hooks_buf), "--hooks=%s", optarg);
			extra_args[n_extra++] = hooks_buf;
			break;
		case 'R': /* capture checks the value */
			snprintf(ring_buf, sizeof(ring_buf), "--ring-kb=%s", optarg);
			extra_args[n_extra++] = ring_buf;
			break;
		case 'c': l.conns = atoi(optarg); break;
		case 's': l.seconds = atof(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'n': l.max_requests = atol(optarg); break;
		case 'b': l.msg_bytes = atoi(optarg); break;
		case 'w': work_s = atof(optarg) / 1e6; break;
		case 't': snprintf(tj, sizeof(tj), "%s", optarg); break;
		default:
			fprintf(stderr, "usage: capture-overhead [-c CONNS] [-s SECONDS] [-r ROUNDS] "
				"[-n MAXREQ] [-b BYTES] [-w WORK_US] [-t TRACEJOIN]\n"
				"                        [--stack[=user|kernel|both]]\n"
				"                        [--hooks sock|syscalls|auto] [--ring-kb N]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (l.conns < 1 || l.conns > 64 || !(l.seconds > 0) || rounds < 1 || rounds > 100 ||
	    l.max_requests < 1 || l.msg_bytes < 1 || l.msg_bytes > 4096 || work_s < 0 ||
	    work_s > 1) {
		fprintf(stderr, "capture-overhead: bad arguments\n");
		return 2;
	}
	int rc = tj_bench_capture_ready(tj, sizeof(tj), NULL);
	if (rc)
		return rc;

	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		perror("capture-overhead: listen");
		return 1;
	}
	l.port = ntohs(sa.sin_port);
	pthread_t at;
	pthread_create(&at, NULL, acceptor, &lfd);
	pthread_detach(at);

	char dir[] = "/tmp/tj-capture-overhead.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("capture-overhead: mkdtemp");
		return 1;
	}
	if (make_pair() || (zero_fd = open("/dev/zero", O_RDONLY)) < 0) {
		perror("capture-overhead: loopback pair or /dev/zero");
		return 1;
	}
	double base_sum = 0, cap_sum = 0, load_s = 0, cpu_sum = 0;
	double pc, wall_loss[100], cpu_loss[100], call_base[100], call_with[100];
	double other_base[100], other_with[100], prog_ns[100];
	int nprog = 0;
	int stats_fd = tj_bench_bpf_stats_on(); /* held open: stats on until we exit */
	unsigned long long ev_sum = 0, lost_sum = 0, bytes_sum = 0;
	double el;

	for (int i = 0; i < n_extra; i++)
		snprintf(extra_text + strlen(extra_text), sizeof(extra_text) - strlen(extra_text),
			 " %s", extra_args[i]);
	printf("capture-overhead: %d connections, %d-byte messages, %.0f us work per request, "
	       "%.1f s rounds, %s%s\n",
	       l.conns, l.msg_bytes, work_s * 1e6, l.seconds, tj, extra_text);
	run_load(&l, &el, &pc); /* warm up: connections, caches, CPU clocks */
	for (int r = 0; r < rounds; r++) {
		double base_cpu, with_cpu;
		double base = run_load(&l, &el, &base_cpu);
		call_base[r] = per_call_ns(PAIR_ITERATIONS);
		other_base[r] = untraced_call_ns(4 * PAIR_ITERATIONS);
		struct capture_run c;
		unsigned long long events = 0, lost = 0, run_ns = 0, run_cnt = 0;
		double cpu = 0, with;
		struct stat st;

		if (capture_start(tj, &c, dir, r))
			return 1;
		with = run_load(&l, &el, &with_cpu);
		call_with[r] = per_call_ns(PAIR_ITERATIONS);
		other_with[r] = untraced_call_ns(4 * PAIR_ITERATIONS);
		if (capture_stop(&c, &events, &lost, &cpu, &run_ns, &run_cnt))
			return 1;
		if (stat(c.log, &st) == 0)
			bytes_sum += st.st_size;
		unlink(c.log);
		printf("round %d: %.0f req/s without, %.0f with capture (%+.1f%%); per cpu-second "
		       "%.0f without, %.0f with (%+.1f%%); %llu events, %llu lost, capture cpu %.2f s; "
		       "one call %.0f ns without, %.0f with\n",
		       r + 1, base, with, (with - base) / base * 100, base_cpu, with_cpu,
		       (with_cpu - base_cpu) / base_cpu * 100, events, lost, cpu,
		       call_base[r], call_with[r]);
		if (run_cnt) {
			prog_ns[nprog++] = (double)run_ns / run_cnt;
			printf("round %d: data programs %.0f ns per run (%llu runs)\n", r + 1,
			       (double)run_ns / run_cnt, run_cnt);
		}
		base_sum += base;
		cap_sum += with;
		wall_loss[r] = (base - with) / base * 100;
		cpu_loss[r] = (base_cpu - with_cpu) / base_cpu * 100;
		load_s += el;
		cpu_sum += cpu;
		ev_sum += events;
		lost_sum += lost;
	}
	rmdir(dir);
	/* Medians of the rounds: one round disturbed by the rest of the
	 * machine does not decide the figure. */
	double overhead = median(wall_loss, rounds);
	double overhead_cpu = median(cpu_loss, rounds);
	double cb = median(call_base, rounds), cw = median(call_with, rounds);
	printf("median of %d rounds: wall-clock throughput %.1f%% lost (noisy on a busy "
	       "machine); requests per cpu-second %.1f%% lost; mean req/s %.0f without, "
	       "%.0f with\n", rounds, overhead, overhead_cpu, base_sum / rounds, cap_sum / rounds);
	printf("one traced call (64-byte loopback read or write, thread CPU time): %.0f ns "
	       "without, %.0f ns with capture (%+.0f ns, %+.1f%%)\n", cb, cw, cw - cb,
	       (cw - cb) / cb * 100);
	if (nprog) {
		/* The programs run preemptible: time another task took the CPU
		 * counts in, so on a busy machine the least round says most. */
		double least = prog_ns[0];
		for (int i = 1; i < nprog; i++)
			least = prog_ns[i] < least ? prog_ns[i] : least;
		printf("data programs (run_time_ns / run_cnt): median %.0f ns per run, least %.0f\n",
		       median(prog_ns, nprog), least);
	}
	else
		printf("data programs: no BPF run-time statistics (%s)\n",
		       stats_fd < 0 ? "the kernel refused BPF_ENABLE_STATS" : "no runs seen");
	double ob = median(other_base, rounds), ow = median(other_with, rounds);
	printf("one call capture does not record (64-byte read of /dev/zero): %.0f ns without, "
	       "%.0f ns with capture (%+.0f ns, %+.1f%%)\n", ob, ow, ow - ob, (ow - ob) / ob * 100);
	printf("capture: overhead %.1f%% throughput, %.0f events/s, %llu drops, %.1f%% cpu, "
	       "%.1f bytes/event\n", overhead, ev_sum / load_s, lost_sum,
	       cpu_sum / load_s * 100, ev_sum ? (double)bytes_sum / ev_sum : 0.0);
	return 0;
}
