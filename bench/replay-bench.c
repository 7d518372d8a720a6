/* replay-bench: throughput and memory of the replay alone and of replay +
 * the metadata correlator, on synthetic two-node logs of growing size.
 *
 *   replay-bench [-k DIR] [EVENTS...]      (default: 1000000 10000000)
 *
 * The traffic: node 1 is a thread-per-connection front end with 64
 * kept-alive client connections; every request (one read, or two partial
 * reads now and then) makes two calls to node 2 over the worker's own
 * kept-alive connection, then replies.  About 20 requests are in flight at
 * once, so events of different requests interleave.  Node 2's clock runs
 * three hours ahead of node 1's.  A connection is closed and reopened
 * every 500 requests, so sockets come and go.
 *
 * Each measurement runs in a child process, so its peak RSS (getrusage
 * ru_maxrss) is its own: flat peaks across sizes mean memory does not grow
 * with the log.  Times are CPU seconds (user + system) of the child: "on
 * one core", whatever else the machine does.  The logs are written
 * outside the measurement; -k keeps them in DIR. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "correlate/host.h"
#include "lib/evlog.h"

#define CONNS 64
#define US 1000ull
#define SKEW (3ull * 3600 * 1000000000ull)

extern const struct tj_correlator tj_correlator_metadata;

/* ---- the generator: requests make events into a small time-ordered
 * heap, drained up to the next request's start ---- */

struct pend {
	struct tj_event ev;
};

struct gen {
	struct tj_evlog_writer *w[2];
	struct pend *heap;
	size_t n, cap;
	uint64_t written;
	uint64_t rng;
	uint64_t sock_base[CONNS]; /* current socket ids of connection c */
	uint64_t off[CONNS][4];    /* front in/out, client out/in offsets */
	uint64_t boff[CONNS][2];   /* backend in/out */
	unsigned uses[CONNS];
};

static uint64_t rnd(struct gen *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return g->rng;
}

static int before(const struct tj_event *a, const struct tj_event *b)
{
	/* node 2 runs SKEW ahead: order by node 1's time */
	uint64_t ta = a->node == 2 ? a->ts_ns - SKEW : a->ts_ns;
	uint64_t tb = b->node == 2 ? b->ts_ns - SKEW : b->ts_ns;
	return ta < tb;
}

static void push(struct gen *g, const struct tj_event *ev)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 1024;
		g->heap = realloc(g->heap, g->cap * sizeof(*g->heap));
		if (!g->heap) {
			perror("replay-bench");
			exit(1);
		}
	}
	size_t i = g->n++;
	g->heap[i].ev = *ev;
	while (i && before(&g->heap[i].ev, &g->heap[(i - 1) / 2].ev)) {
		struct pend t = g->heap[i];
		g->heap[i] = g->heap[(i - 1) / 2];
		g->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void pop_write(struct gen *g)
{
	struct tj_err err = { 0 };
	struct tj_event ev = g->heap[0].ev;
	g->heap[0] = g->heap[--g->n];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < g->n && before(&g->heap[l].ev, &g->heap[m].ev))
			m = l;
		if (r < g->n && before(&g->heap[r].ev, &g->heap[m].ev))
			m = r;
		if (m == i)
			break;
		struct pend t = g->heap[i];
		g->heap[i] = g->heap[m];
		g->heap[m] = t;
		i = m;
	}
	if (tj_evlog_write(g->w[ev.node - 1], &ev, &err)) {
		fprintf(stderr, "replay-bench: %s\n", err.msg);
		exit(1);
	}
	g->written++;
}

static struct tj_event mk(unsigned node, uint64_t ts, unsigned type, uint64_t sock,
			  uint64_t off, int64_t bytes, uint32_t tid, uint16_t lport,
			  uint16_t rport)
{
	struct tj_event e;
	memset(&e, 0, sizeof(e));
	e.node = node;
	e.ts_ns = node == 2 ? ts + SKEW : ts;
	e.type = (uint8_t)type;
	e.sock = sock;
	e.offset = off;
	e.bytes = bytes;
	e.pid = node == 1 ? 1000 : 2000;
	e.tid = tid;
	e.fd = 10;
	e.family = 2;
	e.lport = lport;
	e.rport = rport;
	e.laddr[0] = 10;
	e.laddr[3] = (uint8_t)node;
	e.raddr[0] = 10;
	e.raddr[3] = (uint8_t)(node == 1 ? 2 : 1);
	return e;
}

/* (Re)open connection c: the front end accepts a client, the worker
 * connects to the backend, which accepts. */
static void open_conn(struct gen *g, unsigned c, uint64_t t)
{
	/* ids unique per node: connection c's k-th opening uses
	 * c * 2^32 + 2k (front socket) and + 1 (client socket) */
	g->sock_base[c] = g->sock_base[c] ? g->sock_base[c] + 2 : ((uint64_t)c + 1) << 32;
	memset(g->off[c], 0, sizeof(g->off[c]));
	memset(g->boff[c], 0, sizeof(g->boff[c]));
	uint64_t s = g->sock_base[c];
	uint32_t tid = 100 + c, btid = 500 + c;
	struct tj_event e = mk(1, t, TJ_EV_ACCEPT, s, 0, 0, tid, 8080, (uint16_t)(30000 + c));
	push(g, &e);
	e = mk(1, t + 1 * US, TJ_EV_CONNECT, s + 1, 0, 0, tid, (uint16_t)(40000 + c), 5432);
	push(g, &e);
	e = mk(2, t + 2 * US, TJ_EV_ACCEPT, s + 1, 0, 0, btid, 5432, (uint16_t)(40000 + c));
	push(g, &e);
}

static void close_conn(struct gen *g, unsigned c, uint64_t t)
{
	uint64_t s = g->sock_base[c];
	struct tj_event e = mk(1, t, TJ_EV_CLOSE, s, 0, 0, 100 + c, 8080, (uint16_t)(30000 + c));
	push(g, &e);
	e = mk(1, t, TJ_EV_CLOSE, s + 1, 0, 0, 100 + c, (uint16_t)(40000 + c), 5432);
	push(g, &e);
	e = mk(2, t + 1 * US, TJ_EV_CLOSE, s + 1, 0, 0, 500 + c, 5432, (uint16_t)(40000 + c));
	push(g, &e);
}

static void request(struct gen *g, unsigned c, uint64_t t)
{
	uint64_t s = g->sock_base[c], *o = g->off[c], *b = g->boff[c];
	uint32_t tid = 100 + c, btid = 500 + c;
	uint16_t cport = (uint16_t)(30000 + c), bport = (uint16_t)(40000 + c);
	struct tj_event e;
	if (rnd(g) % 4 == 0) { /* a request read in two parts */
		e = mk(1, t, TJ_EV_RECV, s, o[0], 120, tid, 8080, cport);
		push(g, &e);
		e = mk(1, t + 5 * US, TJ_EV_RECV, s, o[0] + 120, 80, tid, 8080, cport);
		push(g, &e);
	} else {
		e = mk(1, t, TJ_EV_RECV, s, o[0], 200, tid, 8080, cport);
		push(g, &e);
	}
	o[0] += 200;
	uint64_t at = t + 20 * US;
	for (int k = 0; k < 2; k++) {
		e = mk(1, at, TJ_EV_SEND, s + 1, o[2], 100, tid, bport, 5432);
		push(g, &e);
		e = mk(2, at + 20 * US, TJ_EV_RECV, s + 1, b[0], 100, btid, 5432, bport);
		push(g, &e);
		e = mk(2, at + 60 * US, TJ_EV_SEND, s + 1, b[1], 50, btid, 5432, bport);
		push(g, &e);
		e = mk(1, at + 80 * US, TJ_EV_RECV, s + 1, o[3], 50, tid, bport, 5432);
		push(g, &e);
		o[2] += 100;
		b[0] += 100;
		b[1] += 50;
		o[3] += 50;
		at += 100 * US;
	}
	e = mk(1, at, TJ_EV_SEND, s, o[1], 300, tid, 8080, cport);
	push(g, &e);
	o[1] += 300;
}

static void generate(const char *dir, uint64_t events)
{
	struct gen g;
	memset(&g, 0, sizeof(g));
	g.rng = 0x9e3779b97f4a7c15ull;
	struct tj_err err = { 0 };
	for (unsigned n = 0; n < 2; n++) {
		struct tj_evlog_header h;
		memset(&h, 0, sizeof(h));
		h.node = n + 1;
		snprintf(h.hostname, sizeof(h.hostname), "bench-%u", n + 1);
		h.capture_flags = TJ_CAP_SYNTHETIC;
		snprintf(h.options, sizeof(h.options), "replay-bench %" PRIu64, events);
		char path[4200];
		snprintf(path, sizeof(path), "%s/node-%u.evlog", dir, n + 1);
		if (tj_evlog_create(&g.w[n], path, &h, TJ_EVLOG_FORCE, &err)) {
			fprintf(stderr, "replay-bench: %s\n", err.msg);
			exit(1);
		}
	}
	uint64_t t = 1000 * US;
	for (unsigned c = 0; c < CONNS; c++)
		open_conn(&g, c, t + c * US);
	t += 100 * US;
	for (uint64_t i = 0; g.written + g.n < events; i++) {
		unsigned c = (unsigned)(i % CONNS);
		if (++g.uses[c] % 500 == 0) {
			close_conn(&g, c, t);
			open_conn(&g, c, t + 2 * US);
			t += 5 * US;
		}
		request(&g, c, t);
		/* everything before the next start is final: write it */
		t += 5 * US + rnd(&g) % (10 * US);
		while (g.n && !before(&(struct tj_event){ .node = 1, .ts_ns = t }, &g.heap[0].ev))
			pop_write(&g);
	}
	while (g.n)
		pop_write(&g);
	for (unsigned n = 0; n < 2; n++)
		if (tj_evlog_close(g.w[n], &err)) {
			fprintf(stderr, "replay-bench: %s\n", err.msg);
			exit(1);
		}
	free(g.heap);
}

/* ---- measurements, each in a child ---- */

struct counts {
	uint64_t edges, right;
};

static int count_edge(struct tj_edge_sink *s, const struct tj_edge *e)
{
	struct counts *c = s->ctx;
	c->edges++;
	/* the truth of this traffic: the call on client socket s+1 belongs
	 * to the request of front socket s, read by the same worker */
	if (e->has_parent && e->parent.sock + 1 == e->child.sock)
		c->right++;
	return 0;
}

static int count_msg(void *ctx, const struct tj_message *m)
{
	(*(uint64_t *)ctx)++;
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int measure(const char *dir, int with_metadata)
{
	char *in[] = { (char *)dir };
	struct tj_err err = { 0 };
	if (with_metadata) {
		struct counts c = { 0 };
		struct tj_edge_sink sink = { count_edge, &c };
		struct tj_correlate_stats st;
		if (tj_correlate_run(&tj_correlator_metadata, NULL, NULL, in, 1, NULL,
				     &sink, &st, &err)) {
			fprintf(stderr, "replay-bench: %s\n", err.msg);
			return 1;
		}
		printf("  replay+metadata: %10" PRIu64 " events %6.2f s CPU %6.2f Mev/s %5.0f MB peak"
		       "  (%" PRIu64 " calls, %.4f right, peak %" PRIu64 " held, %" PRIu64 " sockets)\n",
		       st.events, st.cpu_seconds, st.events / st.cpu_seconds / 1e6,
		       st.peak_rss_mb, st.calls, c.edges ? (double)c.right / c.edges : 0.0,
		       st.replay.peak_held, st.replay.peak_sockets);
		return 0;
	}
	char **paths;
	size_t n;
	struct tj_replay *rp;
	uint64_t msgs = 0;
	double t0 = cpu_seconds();
	if (tj_replay_expand_inputs(in, 1, &paths, &n, &err) ||
	    tj_replay_open(&rp, paths, n, NULL, &err) ||
	    tj_replay_run(rp, count_msg, &msgs, &err)) {
		fprintf(stderr, "replay-bench: %s\n", err.msg);
		return 1;
	}
	double s = cpu_seconds() - t0;
	uint64_t ev = tj_replay_stats(rp)->events;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("  replay alone:    %10" PRIu64 " events %6.2f s CPU %6.2f Mev/s %5.0f MB peak"
	       "  (%" PRIu64 " messages)\n", ev, s, ev / s / 1e6, ru.ru_maxrss / 1024.0, msgs);
	tj_replay_close(rp);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return 0;
}

static int in_child(const char *dir, int with_metadata)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("replay-bench: fork");
		return 1;
	}
	if (pid == 0) {
		int rc = measure(dir, with_metadata);
		fflush(stdout);
		_exit(rc);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	const char *keep = NULL;
	int first = 1;
	if (argc > 2 && strcmp(argv[1], "-k") == 0) {
		keep = argv[2];
		first = 3;
	}
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: replay-bench [-k DIR] [EVENTS...]  (default 1000000 10000000)\n");
		return 0;
	}
	static char *defaults[] = { "1000000", "10000000" };
	char **sizes = argc > first ? argv + first : defaults;
	int nsizes = argc > first ? argc - first : 2;
	int rc = 0;
	for (int i = 0; i < nsizes && rc == 0; i++) {
		char *end;
		uint64_t events = strtoull(sizes[i], &end, 10);
		if (*end || events < 1000) {
			fprintf(stderr, "replay-bench: %s: a number of events >= 1000 expected\n", sizes[i]);
			return 2;
		}
		char dir[4096];
		if (keep) {
			snprintf(dir, sizeof(dir), "%s/%" PRIu64, keep, events);
			char cmd[4200];
			snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
			if (system(cmd) != 0)
				return 1;
		} else {
			strcpy(dir, "/tmp/replay-bench.XXXXXX");
			if (!mkdtemp(dir)) {
				perror("replay-bench: mkdtemp");
				return 1;
			}
		}
		char probe[4200];
		snprintf(probe, sizeof(probe), "%s/node-2.evlog", dir);
		if (!keep || access(probe, R_OK) != 0)
			generate(dir, events);
		printf("%" PRIu64 " events (2 nodes, %s):\n", events, dir);
		rc = in_child(dir, 0);
		if (rc == 0)
			rc = in_child(dir, 1);
		if (!keep) {
			char cmd[4200];
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
			if (system(cmd) != 0)
				fprintf(stderr, "replay-bench: could not remove %s\n", dir);
		}
	}
	return rc;
}
