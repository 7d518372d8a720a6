/* How long capture's start-up scan (capture/sockscan.c) takes with N TCP
 * sockets open: N/2 loopback connections (both ends in this process) and
 * one listener, then the scan of every network namespace, as capture
 * runs it, R times; prints the median and the fastest.  Root is needed
 * to enter other namespaces (without it only this one is scanned).
 *
 *   sockscan-bench [N] [R]      (default 10000 sockets, 7 runs) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../capture/sockscan.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
	long runs = argc > 2 ? strtol(argv[2], NULL, 10) : 7;
	if (n < 2 || n > 1000000 || runs < 1 || runs > 1000) {
		fprintf(stderr, "usage: sockscan-bench [SOCKETS 2..1000000] [RUNS 1..1000]\n");
		return 2;
	}
	struct rlimit rl = { (rlim_t)n + 64, (rlim_t)n + 64 };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "sockscan-bench: cannot allow %ld open files: %s\n", n + 64,
			strerror(errno));
		return 1;
	}
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
		fprintf(stderr, "sockscan-bench: listener: %s\n", strerror(errno));
		return 1;
	}
	long pairs = n / 2;
	for (long i = 0; i < pairs; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    accept(lfd, NULL, NULL) < 0) {
			fprintf(stderr, "sockscan-bench: connection %ld: %s\n", i, strerror(errno));
			return 1;
		}
	}
	uint64_t *t = calloc((size_t)runs, sizeof(*t));
	struct tj_sockscan s;
	struct tj_err err = { 0 };
	size_t nns = 0, nl = 0;
	uint64_t open = 0;
	if (!t)
		return 1;
	for (long r = 0; r < runs; r++) {
		if (tj_sockscan_run(&s, NULL, 0, &err)) {
			fprintf(stderr, "sockscan-bench: %s\n", err.msg);
			return 1;
		}
		t[r] = s.dur_ns;
		nns = s.nns;
		nl = s.nlisteners;
		open = s.open;
		tj_sockscan_free(&s);
	}
	qsort(t, (size_t)runs, sizeof(*t), cmp_u64);
	printf("start-up scan: %llu open TCP sockets (%ld of them this program's), %zu listening, "
	       "%zu network namespaces: median %.1f ms, fastest %.1f ms (%ld runs); "
	       "%.2f us per open socket\n",
	       (unsigned long long)open, 2 * pairs, nl, nns, t[runs / 2] / 1e6, t[0] / 1e6, runs,
	       open ? t[runs / 2] / 1e3 / (double)open : 0.0);
	free(t);
	return 0;
}
