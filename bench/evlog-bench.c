/* evlog-bench: write and read a log of realistic socket events and report
 * throughput and size.  Usage: evlog-bench [EVENTS] [PATH]
 * (default 10000000 events, a temporary file that is removed after).
 *
 * The traffic: a busy node with 32 services, each a process with 8 worker
 * threads, serving 4096 keepalive connections and calling out on 4096
 * more; 64 requests in flight at once, interleaved event by event; each
 * request reads its request, makes 0-3 calls (send, receive), and sends
 * its reply.  Now and then a connection closes and a new one opens.
 * Events are generated in batches outside the timed region.  Times are
 * the process's CPU time (user + system: compression, decoding and the
 * write/read system calls), so that other load on the machine does not
 * skew the figures; the program is single-threaded: "on one core". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "lib/evlog.h"

#define NSERVER 4096
#define NCLIENT 4096
#define NSVC 32
#define INFLIGHT 64
#define BATCH (1u << 20)

struct sock {
	uint64_t id;
	uint64_t off[2];
	uint32_t pid;
	int32_t fd;
	uint16_t lport, rport;
	uint8_t raddr[4];
	unsigned req_base, resp_base;
};

struct request {
	unsigned server;        /* index into servers */
	unsigned calls[3];      /* indexes into clients */
	unsigned ncalls, step;  /* step: 0 recv, 1..2n calls, 2n+1 send */
	uint32_t tid;
};

struct gen {
	uint64_t rng;
	uint64_t ts;
	uint64_t next_id;
	struct sock servers[NSERVER], clients[NCLIENT];
	struct request inflight[INFLIGHT];
	int pending_open;       /* -1, or server index to announce (accept) */
};

static uint64_t rnd(struct gen *g)
{
	uint64_t z = (g->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void sock_init(struct gen *g, struct sock *s, unsigned svc, int server)
{
	memset(s, 0, sizeof(*s));
	s->id = g->next_id++;
	s->pid = 1000 + svc * 17;
	s->fd = 10 + (int32_t)(rnd(g) % 500);
	s->lport = server ? (uint16_t)(8000 + svc) : (uint16_t)(32768 + rnd(g) % 28000);
	s->rport = server ? (uint16_t)(32768 + rnd(g) % 28000) : (uint16_t)(8000 + rnd(g) % NSVC);
	s->raddr[0] = 10;
	s->raddr[1] = 0;
	s->raddr[2] = (uint8_t)(rnd(g) % 4);
	s->raddr[3] = (uint8_t)(1 + rnd(g) % 250);
	s->req_base = 80 + (unsigned)(rnd(g) % 900);
	s->resp_base = 200 + (unsigned)(rnd(g) % 4000);
}

static void new_request(struct gen *g, struct request *q)
{
	q->server = (unsigned)(rnd(g) % NSERVER);
	unsigned svc = (g->servers[q->server].pid - 1000) / 17;
	q->ncalls = (unsigned)(rnd(g) % 4);
	for (unsigned i = 0; i < q->ncalls; i++)
		/* Calls go out on this service's share of the client pool. */
		q->calls[i] = (svc * (NCLIENT / NSVC) +
			       (unsigned)(rnd(g) % (NCLIENT / NSVC))) % NCLIENT;
	q->step = 0;
	q->tid = g->servers[q->server].pid + 1 + (uint32_t)(rnd(g) % 8);
}

static void gen_init(struct gen *g, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->rng = seed;
	g->ts = 3600ULL * 1000000000ULL;
	g->next_id = 100000;
	for (unsigned i = 0; i < NSERVER; i++)
		sock_init(g, &g->servers[i], i % NSVC, 1);
	for (unsigned i = 0; i < NCLIENT; i++)
		sock_init(g, &g->clients[i], i / (NCLIENT / NSVC), 0);
	for (unsigned i = 0; i < INFLIGHT; i++)
		new_request(g, &g->inflight[i]);
	g->pending_open = -1;
}

static void fill(struct tj_event *e, const struct sock *s, unsigned type,
		 uint32_t tid, int64_t bytes, uint64_t ts)
{
	memset(e, 0, sizeof(*e));
	e->ts_ns = ts;
	e->sock = s->id;
	e->node = 1;
	e->pid = s->pid;
	e->tid = tid;
	e->fd = s->fd;
	e->type = (uint8_t)type;
	e->family = AF_INET;
	e->laddr[0] = 10;
	e->laddr[3] = 7;
	memcpy(e->raddr, s->raddr, 4);
	e->lport = s->lport;
	e->rport = s->rport;
	e->bytes = bytes;
	if (type == TJ_EV_SEND || type == TJ_EV_RECV)
		e->offset = s->off[type == TJ_EV_RECV];
}

static void io(struct tj_event *e, struct sock *s, unsigned type, uint32_t tid,
	       int64_t bytes, uint64_t ts)
{
	fill(e, s, type, tid, bytes, ts);
	s->off[type == TJ_EV_RECV] += (uint64_t)bytes;
}

static void gen_next(struct gen *g, struct tj_event *e)
{
	g->ts += 200 + rnd(g) % 3000;
	if (g->pending_open >= 0) {
		struct sock *s = &g->servers[g->pending_open];
		fill(e, s, TJ_EV_ACCEPT, s->pid + 1, 0, g->ts);
		g->pending_open = -1;
		return;
	}
	struct request *q = &g->inflight[rnd(g) % INFLIGHT];
	struct sock *srv = &g->servers[q->server];
	unsigned last = 2 * q->ncalls + 1;
	if (q->step == 0) {
		io(e, srv, TJ_EV_RECV, q->tid, srv->req_base + rnd(g) % 64, g->ts);
	} else if (q->step < last) {
		struct sock *c = &g->clients[q->calls[(q->step - 1) / 2]];
		if (q->step % 2)
			io(e, c, TJ_EV_SEND, q->tid, c->req_base + rnd(g) % 64, g->ts);
		else
			io(e, c, TJ_EV_RECV, q->tid, c->resp_base + rnd(g) % 1024, g->ts);
	} else {
		io(e, srv, TJ_EV_SEND, q->tid, srv->resp_base + rnd(g) % 1024, g->ts);
		/* One connection in 500 closes after its reply. */
		if (rnd(g) % 500 == 0) {
			unsigned i = q->server;
			new_request(g, q);
			struct sock *old = &g->servers[i];
			sock_init(g, old, (old->pid - 1000) / 17, 1);
			g->pending_open = (int)i;
			return;
		}
		new_request(g, q);
		return;
	}
	q->step++;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t h, const struct tj_event *e)
{
	h ^= e->ts_ns + 0x9e3779b97f4a7c15ULL * (e->sock + 1);
	h ^= (uint64_t)e->bytes * 31 + e->offset * 7 + e->tid + ((uint64_t)e->fd << 32);
	return h * 0x100000001b3ULL;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000ULL;
	char tmpl[] = "/tmp/evlog-bench.XXXXXX";
	const char *path = argc > 2 ? argv[2] : NULL;
	if (n == 0 || (argc > 1 && strcmp(argv[1], "--help") == 0)) {
		fprintf(stderr, "usage: evlog-bench [EVENTS] [PATH]\n");
		return 2;
	}
	int tmp = path == NULL;
	if (tmp) {
		int fd = mkstemp(tmpl);
		if (fd < 0) {
			perror("mkstemp");
			return 1;
		}
		close(fd);
		path = tmpl;
	}
	struct gen *g = malloc(sizeof(*g));
	struct tj_event *batch = malloc(BATCH * sizeof(*batch));
	if (!g || !batch) {
		fprintf(stderr, "evlog-bench: out of memory\n");
		return 1;
	}
	gen_init(g, 42);

	struct tj_evlog_header h;
	memset(&h, 0, sizeof(h));
	h.node = 1;
	strcpy(h.hostname, "bench");
	strcpy(h.kernel, "6.1.0");
	h.capture_flags = TJ_CAP_SYNTHETIC;
	snprintf(h.options, sizeof(h.options), "evlog-bench %llu",
		 (unsigned long long)n);
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	if (tj_evlog_create(&w, path, &h, TJ_EVLOG_FORCE, &err) < 0) {
		fprintf(stderr, "evlog-bench: %s\n", err.msg);
		return 1;
	}
	double wtime = 0;
	uint64_t hw = 0;
	for (uint64_t done = 0; done < n;) {
		size_t k = n - done < BATCH ? (size_t)(n - done) : BATCH;
		for (size_t i = 0; i < k; i++) {
			gen_next(g, &batch[i]);
			hw = mix(hw, &batch[i]);
		}
		double t0 = now();
		for (size_t i = 0; i < k; i++)
			if (tj_evlog_write(w, &batch[i], &err) < 0) {
				fprintf(stderr, "evlog-bench: %s\n", err.msg);
				return 1;
			}
		wtime += now() - t0;
		done += k;
	}
	double t0 = now();
	if (tj_evlog_close(w, &err) < 0) {
		fprintf(stderr, "evlog-bench: %s\n", err.msg);
		return 1;
	}
	wtime += now() - t0;

	struct tj_evlog_reader *r;
	t0 = now();
	if (tj_evlog_open(&r, path, &err) < 0) {
		fprintf(stderr, "evlog-bench: %s\n", err.msg);
		return 1;
	}
	const struct tj_event *ev;
	uint64_t got = 0, hr = 0;
	int rc;
	while ((rc = tj_evlog_next(r, &ev, &err)) == 1) {
		hr = mix(hr, ev);
		got++;
	}
	double rtime = now() - t0;
	if (rc < 0) {
		fprintf(stderr, "evlog-bench: %s\n", err.msg);
		return 1;
	}
	uint64_t size = tj_evlog_bytes_read(r);
	int damaged = tj_evlog_damage(r)->damaged;
	tj_evlog_close_reader(r);
	if (tmp)
		unlink(path);
	free(batch);
	free(g);
	if (got != n || hr != hw || damaged) {
		fprintf(stderr, "evlog-bench: read back %llu of %llu events%s%s\n",
			(unsigned long long)got, (unsigned long long)n,
			hr != hw ? ", contents differ" : "",
			damaged ? ", log damaged" : "");
		return 1;
	}
	printf("evlog: write %.1f Mev/s, read %.1f Mev/s, %.2f bytes/event\n",
	       (double)n / wtime / 1e6, (double)n / rtime / 1e6,
	       (double)size / (double)n);
	return 0;
}
