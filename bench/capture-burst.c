/* bench/capture-burst: can capture take a burst of events without losing
 * any, and does it count exactly what it loses?  T threads (2 by
 * default, one per core) each drive one loopback TCP connection: 8-byte
 * messages sent 32 at a time by sendmmsg on the client end (corked, so
 * that a message costs little more than its event; with the sock hooks
 * each message is an event), and after every second call one nonblocking
 * read of everything waiting on the server end, paced to R events per second in
 * all (1,000,000 by default) for S seconds (2), under `tracejoin capture
 * --pid <this process> --port <its listener>`.  Every write and every
 * read that moved bytes is an event, and so is the SOCKET event that
 * announces each of the 2T sockets (open before capture) at its first
 * use; the bench counts them, then reads the log (`tracejoin info
 * --json`): sends, receives and SOCKET events recorded, and the drop
 * counters.  Prints
 *
 *   capture-burst: R events/s asked, A made (E events in S s); recorded N, lost L (footer), missing M: ok|LOST|MISCOUNTED
 *
 * ok: nothing lost; LOST: events lost and exactly counted (made =
 * recorded + lost); MISCOUNTED: made != recorded + lost (exit 1).  A
 * machine too slow for R says so in A.  Then, where the kernel keeps BPF
 * run-time statistics (turned on for the bench's life):
 *
 *   data programs (run_time_ns / run_cnt): X ns per run (N runs)
 *
 * the capture data programs' CPU time per run over the burst.  --ring-kb N passes the ring size
 * to capture (the default is capture's); --no-capture runs the load alone
 * (what this machine can make).  Needs root; exits 77 where
 * capture cannot run.
 *
 * usage: capture-burst [-r EVENTS_PER_S] [-s SECONDS] [-T THREADS] [-t TRACEJOIN] [--ring-kb N]
 *                      [--no-capture] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "capture_run.h"

#define MAX_THREADS 16

struct driver {
	int c, s;             /* client and server ends */
	double rate;          /* events per second for this thread */
	double seconds;
	uint64_t events;      /* calls that moved bytes: what capture must record */
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Messages per sendmmsg: with the sock hooks each message is an event
 * of its own, so one call makes BATCH events (a syscall costs ~1 us on
 * our VM: one write per event could not reach 1M events/s). */
#define BATCH 32

static void *drive(void *p)
{
	struct driver *d = p;
	char small[8] = "burst!!", big[65536];
	struct iovec iov = { small, sizeof(small) };
	struct mmsghdr mm[BATCH];
	double start = now_s(), end = start + d->seconds;
	uint64_t n = 0, writes = 0;

	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < BATCH; i++) {
		mm[i].msg_hdr.msg_iov = &iov;
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	for (;;) {
		/* Paced: ahead of the rate, wait; checked every 256 events. */
		if ((writes & 7) == 0) {
			double t = now_s();
			if (t >= end)
				break;
			double due = start + n / d->rate;
			if (due > t) {
				struct timespec w = { 0, (long)((due - t) * 1e9) };
				nanosleep(&w, NULL);
			}
		}
		int sent = sendmmsg(d->c, mm, BATCH, 0);
		if (sent > 0)
			n += (uint64_t)sent;
		if ((++writes & 1) == 0) {
			ssize_t r = recv(d->s, big, sizeof(big), MSG_DONTWAIT);
			if (r > 0)
				n++;
		}
	}
	/* Drain what is left, so the last writes are not blocked. */
	while (recv(d->s, big, sizeof(big), MSG_DONTWAIT) > 0)
		n++;
	d->events = n;
	return NULL;
}

/* Sends, receives and SOCKET events recorded, and the drop counters'
 * sum, from
 * `tracejoin info --json LOG`.  0, or -1 with a message. */
static int read_log(const char *tj, const char *log, uint64_t *recorded, uint64_t *lost)
{
	char cmd[2 * PATH_MAX + 32];
	json_error_t je;

	snprintf(cmd, sizeof(cmd), "'%s' info --json '%s'", tj, log);
	FILE *f = popen(cmd, "r");
	if (!f) {
		perror("capture-burst: popen");
		return -1;
	}
	json_t *all = json_loadf(f, 0, &je);
	int st = pclose(f);
	json_t *o = json_array_get(all, 0);
	json_t *types = json_object_get(o, "events_by_type");
	if (!o || !types || st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "capture-burst: %s: `tracejoin info --json` failed%s%s\n", log,
			all ? "" : ": ", all ? "" : je.text);
		json_decref(all);
		return -1;
	}
	/* sendmmsg makes an event per message only with the sock hooks. */
	const char *options = json_string_value(json_object_get(o, "options"));
	if (!options || !strstr(options, "[hooks sock]")) {
		fprintf(stderr, "capture-burst: %s: not captured with the sock hooks (%s): the "
			"count of events made does not hold\n", log, options ? options : "no options");
		json_decref(all);
		return -1;
	}
	*recorded = json_integer_value(json_object_get(types, "send")) +
		    json_integer_value(json_object_get(types, "recv")) +
		    json_integer_value(json_object_get(types, "socket"));
	*lost = 0;
	json_t *drops = json_object_get(o, "drops"), *v;
	const char *k;
	json_object_foreach(drops, k, v)
		*lost += json_integer_value(v);
	json_decref(all);
	return 0;
}

int main(int argc, char **argv)
{
	double rate = 1e6, seconds = 2;
	int threads = 2, opt, no_capture = 0;
	char tj[PATH_MAX] = "", ring[32] = "";
	static const struct option longopts[] = {
		{ "ring-kb", required_argument, NULL, 'R' },
		{ "no-capture", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "r:s:T:t:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r': rate = atof(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'T': threads = atoi(optarg); break;
		case 't': snprintf(tj, sizeof(tj), "%s", optarg); break;
		case 'R': snprintf(ring, sizeof(ring), "--ring-kb=%s", optarg); break;
		case 'N': no_capture = 1; break;
		default:
			fprintf(stderr, "usage: capture-burst [-r EVENTS_PER_S] [-s SECONDS] "
				"[-T THREADS] [-t TRACEJOIN] [--ring-kb N] [--no-capture]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!(rate >= 1 && rate <= 1e8) || !(seconds > 0 && seconds <= 600) || threads < 1 ||
	    threads > MAX_THREADS || optind != argc) {
		fprintf(stderr, "capture-burst: bad arguments (-r 1..1e8, -s 0..600, -T 1..%d)\n",
			MAX_THREADS);
		return 2;
	}
	int rc = tj_bench_capture_ready(tj, sizeof(tj), NULL);
	if (rc)
		return rc;

	/* The connections, before capture: only the burst is timed. */
	struct driver d[MAX_THREADS];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		perror("capture-burst: listen");
		return 1;
	}
	for (int i = 0; i < threads; i++) {
		d[i] = (struct driver){ .rate = rate / threads, .seconds = seconds };
		d[i].c = socket(AF_INET, SOCK_STREAM, 0);
		if (d[i].c < 0 || connect(d[i].c, (struct sockaddr *)&sa, sizeof(sa)) ||
		    (d[i].s = accept(lfd, NULL, NULL)) < 0) {
			perror("capture-burst: connect");
			return 1;
		}
		/* Corked: a write only queues its bytes (a full segment goes
		 * out), so a write costs little more than the event itself. */
		int one = 1;
		setsockopt(d[i].c, IPPROTO_TCP, TCP_CORK, &one, sizeof(one));
	}

	char dir[] = "/tmp/tj-capture-burst.XXXXXX", log[PATH_MAX], pidarg[32], portarg[32];
	if (!mkdtemp(dir)) {
		perror("capture-burst: mkdtemp");
		return 1;
	}
	snprintf(log, sizeof(log), "%s/burst.evlog", dir);
	snprintf(pidarg, sizeof(pidarg), "%d", (int)getpid());
	snprintf(portarg, sizeof(portarg), "%u", ntohs(sa.sin_port));
	char *args[] = { "--pid", pidarg, "--port", portarg, "-o", log, ring[0] ? ring : NULL, NULL };
	struct tj_capture_run cap;
	if (!no_capture && tj_capture_run_start(&cap, tj, args, "capture-burst"))
		return 1;

	/* The data programs' CPU time per run over the burst (BPF run-time
	 * statistics on while we live; 0 where the kernel keeps none). */
	int stats_fd = no_capture ? -1 : tj_bench_bpf_stats_on();
	unsigned long long ns0 = 0, cnt0 = 0, ns1 = 0, cnt1 = 0;
	if (!no_capture)
		tj_bench_bpf_prog_stats(cap.pid, tj_bench_data_progs, &ns0, &cnt0);
	pthread_t th[MAX_THREADS];
	double t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, drive, &d[i]);
	uint64_t made = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		made += d[i].events;
	}
	double took = now_s() - t0;
	if (no_capture) {
		rmdir(dir);
		printf("capture-burst: no capture: %.0f events/s asked, %.0f made (%llu events in "
		       "%.2f s, %d threads)\n", rate, made / took, (unsigned long long)made, took,
		       threads);
		return 0;
	}
	tj_bench_bpf_prog_stats(cap.pid, tj_bench_data_progs, &ns1, &cnt1);
	if (stats_fd >= 0)
		close(stats_fd);
	/* Let the last records reach the rings' reader before it stops. */
	usleep(100 * 1000);
	if (tj_capture_run_stop(&cap, "capture-burst"))
		return 1;

	uint64_t recorded = 0, lost = 0;
	if (read_log(tj, log, &recorded, &lost))
		return 1;
	unlink(log);
	rmdir(dir);
	/* The connections were open before capture: each of their 2T sockets
	 * is announced by a SOCKET event at its first send or receive. */
	made += 2 * (uint64_t)threads;
	int64_t missing = (int64_t)made - (int64_t)recorded;
	const char *verdict = missing == 0 && lost == 0 ? "ok"
			    : missing == (int64_t)lost ? "LOST" : "MISCOUNTED";
	printf("capture-burst: %.0f events/s asked, %.0f made (%llu events in %.2f s, %d threads); "
	       "recorded %llu, lost %llu (footer), missing %lld: %s\n",
	       rate, made / took, (unsigned long long)made, took, threads,
	       (unsigned long long)recorded, (unsigned long long)lost, (long long)missing, verdict);
	if (cnt1 > cnt0)
		printf("data programs (run_time_ns / run_cnt): %.0f ns per run (%llu runs)\n",
		       (double)(ns1 - ns0) / (double)(cnt1 - cnt0), cnt1 - cnt0);
	return strcmp(verdict, "MISCOUNTED") == 0;
}
