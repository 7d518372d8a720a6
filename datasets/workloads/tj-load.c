/* tj-load: the load generator of the workloads.  Sends a fixed number of
 * HTTP/1.1 requests to one service, each the root of a new trace (a fresh
 * traceparent derived from the seed and the request's number), in a
 * closed loop (N clients, each waiting for its answer) or an open loop
 * (Poisson arrivals at a rate, sent by a pool of senders), bounded in
 * time.  Prints how many requests completed; exits 0 only if all did. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "http.h"

#define MAX_CLIENTS 256

struct load {
	struct sockaddr_in sa;
	char host[64], path[32];
	uint64_t requests, seed, req_bytes, max_ns, t0;
	double rate;        /* 0: closed loop */
	int clients, keepalive;
	uint64_t *arrival;  /* open loop: offset of request i from t0 */
	atomic_ullong next, completed, errors, unsent;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tj-load --target ADDR:PORT [OPTIONS]\n\n"
		"Send a fixed number of requests, each a new trace, and print how many\n"
		"completed.\n\n"
		"options:\n"
		"  --target ADDR:PORT  the service to load (IPv4)\n"
		"  --requests N        requests to send (default 100)\n"
		"  --clients N         closed loop: concurrent clients (default 4);\n"
		"                      open loop: senders (default 32), at most %d\n"
		"  --rate R            open loop: Poisson arrivals at R requests/s\n"
		"  --conn new|keepalive  a connection per request, or one per client (default)\n"
		"  --req-bytes N       request body (default 32, at most 4096)\n"
		"  --path NAME         request path (default 'api')\n"
		"  --seed S            trace ids and arrivals (default 1)\n"
		"  --max-seconds T     give up sending after T seconds (default 60)\n"
		"  -h, --help          this text\n",
		MAX_CLIENTS);
}

static int parse_num(const char *s, double max, double *v)
{
	char *e;
	errno = 0;
	double x = strtod(s, &e);
	if (!*s || *e || errno || !(x >= 0) || x > max)
		return -1;
	*v = x;
	return 0;
}

static int dial(const struct load *l)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	struct timeval tv = { 10, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (connect(fd, (const struct sockaddr *)&l->sa, sizeof(l->sa)) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return -1;
	}
	return fd;
}

static void trace_of(const struct load *l, uint64_t i, struct tj_traceparent *tp)
{
	tp->trace_hi = tj_tp_mix(l->seed ^ tj_tp_mix(i));
	tp->trace_lo = tj_tp_mix(tp->trace_hi ^ i) | 1;
	tp->span = tj_tp_mix(tp->trace_lo ^ 0x6c6f6164ULL) | 1;
	tp->flags = 1;
}

static void *client_main(void *arg)
{
	struct load *l = arg;
	struct http_conn *c = malloc(sizeof(*c));
	char *req = malloc(HTTP_BUF);
	if (!c || !req) {
		free(c);
		free(req);
		return NULL;
	}
	c->fd = -1;
	for (;;) {
		uint64_t i = atomic_fetch_add(&l->next, 1);
		if (i >= l->requests)
			break;
		if (l->arrival) {
			uint64_t due = l->t0 + l->arrival[i], now = now_ns();
			if (due > now)
				sleep_ns(due - now);
		}
		if (now_ns() - l->t0 > l->max_ns) {
			atomic_fetch_add(&l->unsent, l->requests > i ? 1 : 0);
			continue;
		}
		struct tj_traceparent tp;
		trace_of(l, i, &tp);
		size_t len = http_format_request(req, HTTP_BUF, l->path, l->host, &tp, l->req_bytes,
						 !l->keepalive);
		if (c->fd < 0) {
			c->fd = dial(l);
			c->len = 0;
		}
		struct http_head h;
		int ok = c->fd >= 0 && len && write_all(c->fd, req, len) == 0 &&
			 http_read(c, 1, &h) == 1 && h.status == 200;
		atomic_fetch_add(ok ? &l->completed : &l->errors, 1);
		if (!ok || !l->keepalive || h.close) {
			if (c->fd >= 0)
				close(c->fd);
			c->fd = -1;
		}
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	free(req);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "target", required_argument, NULL, 't' },
		{ "requests", required_argument, NULL, 'n' },
		{ "clients", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "conn", required_argument, NULL, 'C' },
		{ "req-bytes", required_argument, NULL, 'b' },
		{ "path", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 's' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct load l;
	double v;
	int opt, have_target = 0, have_clients = 0;
	l.requests = 100;
	l.clients = 4;
	l.keepalive = 1;
	l.req_bytes = 32;
	l.seed = 1;
	l.max_ns = 60000000000ull;
	snprintf(l.path, sizeof(l.path), "api");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		const char *a = optarg;
		switch (opt) {
		case 't':
			if (parse_hostport(a, &l.sa)) goto bad;
			snprintf(l.host, sizeof(l.host), "%s", a);
			have_target = 1;
			break;
		case 'n':
			if (parse_num(a, 1e8, &v) || v < 1 || v != floor(v)) goto bad;
			l.requests = (uint64_t)v;
			break;
		case 'c':
			if (parse_num(a, MAX_CLIENTS, &v) || v < 1 || v != floor(v)) goto bad;
			l.clients = (int)v;
			have_clients = 1;
			break;
		case 'r':
			if (parse_num(a, 1e6, &v) || v <= 0) goto bad;
			l.rate = v;
			break;
		case 'C':
			if (strcmp(a, "new") == 0) l.keepalive = 0;
			else if (strcmp(a, "keepalive") == 0) l.keepalive = 1;
			else goto bad;
			break;
		case 'b':
			if (parse_num(a, 4096, &v) || v != floor(v)) goto bad;
			l.req_bytes = (uint64_t)v;
			break;
		case 'p':
			if (!*a || strlen(a) >= sizeof(l.path) || strpbrk(a, " \r\n")) goto bad;
			snprintf(l.path, sizeof(l.path), "%s", a);
			break;
		case 's':
			if (parse_num(a, 1e18, &v) || v != floor(v)) goto bad;
			l.seed = (uint64_t)v;
			break;
		case 'm':
			if (parse_num(a, 86400, &v) || v <= 0) goto bad;
			l.max_ns = (uint64_t)(v * 1e9);
			break;
		case 'h': usage(stdout); return 0;
		case ':':
			fprintf(stderr, "tj-load: %s needs a value\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "tj-load: unknown option %s (try --help)\n", argv[optind - 1]);
			return 2;
		bad:
			fprintf(stderr, "tj-load: bad value for %s: '%s' (try --help)\n", argv[optind - 1], a);
			return 2;
		}
	}
	if (optind < argc || !have_target) {
		fprintf(stderr, "tj-load: %s (try --help)\n",
			have_target ? "unexpected argument" : "--target is required");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (l.rate > 0) {
		if (!have_clients)
			l.clients = 32;
		l.arrival = malloc(l.requests * sizeof(*l.arrival));
		if (!l.arrival) {
			fprintf(stderr, "tj-load: out of memory\n");
			return 1;
		}
		uint64_t rng = l.seed ^ 0x61727269ULL, t = 0;
		for (uint64_t i = 0; i < l.requests; i++) {
			t += rng_exp(&rng, (uint64_t)(1e9 / l.rate));
			l.arrival[i] = t;
		}
	}
	pthread_t th[MAX_CLIENTS];
	int started = 0;
	l.t0 = now_ns();
	for (int i = 0; i < l.clients; i++)
		if (pthread_create(&th[started], NULL, client_main, &l) == 0)
			started++;
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	double took = (double)(now_ns() - l.t0) / 1e9;
	free(l.arrival);
	if (!started) {
		fprintf(stderr, "tj-load: cannot start a client thread\n");
		return 1;
	}
	unsigned long long done = l.completed;
	/* the seed is echoed so that a run's caller can check which request
	 * sequence it got (run-real.sh --seed-shift) */
	printf("tj-load: completed %llu of %llu requests (%llu errors, %llu not sent) in %.3f s, seed %llu\n",
	       done, (unsigned long long)l.requests, (unsigned long long)l.errors,
	       (unsigned long long)l.unsent, took, (unsigned long long)l.seed);
	return done == l.requests ? 0 : 1;
}
