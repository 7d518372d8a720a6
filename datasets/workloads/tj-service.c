/* tj-service: one HTTP/1.1 service of a workload call graph, for labeled
 * captures (datasets/real/README.md).  Options choose its role, where it
 * listens, its downstream services, how it is built (concurrency model)
 * and how it connects downstream (connection policy).  It propagates W3C
 * traceparent by the span-id rule of datasets/label/label.h, so `tracejoin
 * label` can read the ground truth back from a capture.
 *
 * Models:
 *   thread  a thread per inbound connection reads each request, makes the
 *           calls and answers (keepalive connections keep their thread)
 *   pool    one I/O thread reads requests (epoll), a pool of workers
 *           makes the calls and answers: the reader never calls out
 *   epoll   one thread, non-blocking everything: requests, downstream
 *           connects, calls and service times interleave in one loop
 * Downstream connection policies: new (a connection per call, closed
 * after), pool (keepalive pool of at most K per downstream), shared (one
 * connection per downstream shared by all requests, one call at a time).
 *
 * SIGTERM or SIGINT: stop, print the counts, free everything, exit 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "http.h"
#include "service.h"
#include "../../lib/util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tj-service --role NAME --listen ADDR:PORT [OPTIONS]\n\n"
		"One service of a workload: answers HTTP/1.1 requests, calling its\n"
		"downstreams for each, propagating traceparent (datasets/label/label.h).\n\n"
		"options:\n"
		"  --role NAME           service name (path of its calls, messages)\n"
		"  --listen ADDR:PORT    IPv4 address and port to listen on\n"
		"  --call NAME=ADDR:PORT a downstream, called once per request in the\n"
		"                        order given (repeatable, at most %d)\n"
		"  --model M             thread (default), pool or epoll\n"
		"  --workers N           pool: worker threads (default 4)\n"
		"  --conn P              new (default), pool or shared\n"
		"  --pool-size K         --conn pool: connections per downstream (default 4)\n"
		"  --parallel            make the calls of a request at once, not in turn\n"
		"  --work-us US          mean service time (exponential), half before the\n"
		"                        calls, half after (default 200)\n"
		"  --req-bytes N         body of each call (default 64, at most 4096)\n"
		"  --resp-bytes N        body of each response (default 256, at most 65536)\n"
		"  --seed S              service-time generator seed (default 1)\n"
		"  -h, --help            this text\n",
		SVC_MAX_DS);
}

static int parse_args(struct svc *s, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "listen", required_argument, NULL, 'l' },
		{ "call", required_argument, NULL, 'c' },
		{ "model", required_argument, NULL, 'm' },
		{ "workers", required_argument, NULL, 'w' },
		{ "conn", required_argument, NULL, 'p' },
		{ "pool-size", required_argument, NULL, 'k' },
		{ "parallel", no_argument, NULL, 'P' },
		{ "work-us", required_argument, NULL, 'W' },
		{ "req-bytes", required_argument, NULL, 'q' },
		{ "resp-bytes", required_argument, NULL, 'R' },
		{ "seed", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, have_listen = 0;
	uint64_t v;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		const char *a = optarg;
		switch (opt) {
		case 'r':
			if (!*a || strlen(a) >= sizeof(s->role) || strpbrk(a, " \r\n/"))
				goto bad;
			snprintf(s->role, sizeof(s->role), "%s", a);
			break;
		case 'l':
			if (parse_hostport(a, &s->listen))
				goto bad;
			have_listen = 1;
			break;
		case 'c': {
			const char *eq = strchr(a, '=');
			if (s->nds >= SVC_MAX_DS || !eq || eq == a ||
			    (size_t)(eq - a) >= sizeof(s->ds[0].name) || strpbrk(a, " \r\n/"))
				goto bad;
			struct downstream *d = &s->ds[s->nds];
			memcpy(d->name, a, (size_t)(eq - a));
			d->name[eq - a] = 0;
			if (parse_hostport(eq + 1, &d->sa))
				goto bad;
			snprintf(d->host, sizeof(d->host), "%s", eq + 1);
			s->nds++;
			break;
		}
		case 'm':
			if (strcmp(a, "thread") == 0) s->model = MODEL_THREAD;
			else if (strcmp(a, "pool") == 0) s->model = MODEL_POOL;
			else if (strcmp(a, "epoll") == 0) s->model = MODEL_EPOLL;
			else goto bad;
			break;
		case 'w':
			if (tj_parse_u64(a, 1, 256, &v)) goto bad;
			s->workers = (int)v;
			break;
		case 'p':
			if (strcmp(a, "new") == 0) s->policy = CONN_NEW;
			else if (strcmp(a, "pool") == 0) s->policy = CONN_POOL;
			else if (strcmp(a, "shared") == 0) s->policy = CONN_SHARED;
			else goto bad;
			break;
		case 'k':
			if (tj_parse_u64(a, 1, SVC_MAX_POOL, &v)) goto bad;
			s->pool_k = (int)v;
			break;
		case 'P': s->parallel = 1; break;
		case 'W':
			if (tj_parse_u64(a, 0, 10000000, &v)) goto bad;
			s->work_ns = v * 1000;
			break;
		case 'q':
			if (tj_parse_u64(a, 0, 4096, &v)) goto bad;
			s->req_bytes = v;
			break;
		case 'R':
			if (tj_parse_u64(a, 0, 65536, &v)) goto bad;
			s->resp_bytes = v;
			break;
		case 's':
			if (tj_parse_u64(a, 0, UINT64_MAX, &v)) goto bad;
			s->seed = v;
			break;
		case 'h': usage(stdout); exit(0);
		case ':':
			fprintf(stderr, "tj-service: %s needs a value\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "tj-service: unknown option %s (try --help)\n", argv[optind - 1]);
			return -1;
		bad:
			fprintf(stderr, "tj-service: bad value for %s: '%s' (try --help)\n",
				argv[optind - 1], a);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tj-service: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!s->role[0] || !have_listen) {
		fprintf(stderr, "tj-service: --role and --listen are required (try --help)\n");
		return -1;
	}
	if (s->policy == CONN_SHARED)
		s->pool_k = 1; /* one connection, one call at a time */
	return 0;
}

static int listen_on(struct svc *s)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&s->listen, sizeof(s->listen)) < 0 || listen(fd, 256) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static struct svc s; /* large: keep it off the stack */
	svc_init(&s);
	if (parse_args(&s, argc, argv))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit: only sigwait sees them */
	if ((s.lfd = listen_on(&s)) < 0) {
		char a[64];
		inet_ntop(AF_INET, &s.listen.sin_addr, a, sizeof(a));
		fprintf(stderr, "tj-service %s: cannot listen on %s:%u: %s\n", s.role, a,
			ntohs(s.listen.sin_port), strerror(errno));
		svc_free(&s);
		return 1;
	}
	if ((s.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		perror("tj-service: eventfd");
		svc_free(&s);
		return 1;
	}
	int rc = s.model == MODEL_EPOLL ? svc_epoll_start(&s) : svc_threads_start(&s);
	if (rc) {
		fprintf(stderr, "tj-service %s: cannot start: %s\n", s.role, strerror(errno));
		svc_free(&s);
		return 1;
	}
	char a[64];
	inet_ntop(AF_INET, &s.listen.sin_addr, a, sizeof(a));
	printf("tj-service %s: listening on %s:%u\n", s.role, a, ntohs(s.listen.sin_port));
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	atomic_store(&s.stop, 1);
	uint64_t one = 1;
	if (write(s.stopfd, &one, sizeof(one)) < 0) { /* wakes the loops */ }
	if (s.model == MODEL_EPOLL)
		svc_epoll_stop(&s);
	else
		svc_threads_stop(&s);
	printf("tj-service %s: served %llu requests (%llu without traceparent), made %llu calls "
	       "(%llu failed), %llu bad requests\n",
	       s.role, (unsigned long long)s.served, (unsigned long long)s.no_tp,
	       (unsigned long long)s.calls, (unsigned long long)s.call_errors,
	       (unsigned long long)s.bad_requests);
	fflush(stdout);
	svc_free(&s);
	return 0;
}
