/* tj-service: trace context, the blocking downstream client, one request's
 * handling (thread and pool models). */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "service.h"

void svc_init(struct svc *s)
{
	memset(s, 0, sizeof(*s));
	s->model = MODEL_THREAD;
	s->policy = CONN_NEW;
	s->pool_k = 4;
	s->workers = 4;
	s->work_ns = 200000;
	s->req_bytes = 64;
	s->resp_bytes = 256;
	s->seed = 1;
	s->lfd = s->stopfd = -1;
	for (int i = 0; i < SVC_MAX_DS; i++) {
		pthread_mutex_init(&s->ds[i].mu, NULL);
		pthread_cond_init(&s->ds[i].cv, NULL);
	}
}

void svc_free(struct svc *s)
{
	for (int i = 0; i < SVC_MAX_DS; i++) {
		struct downstream *d = &s->ds[i];
		for (int k = 0; k < d->nidle; k++)
			close(d->idle[k]);
		d->nidle = 0;
		pthread_mutex_destroy(&d->mu);
		pthread_cond_destroy(&d->cv);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->stopfd >= 0)
		close(s->stopfd);
	s->lfd = s->stopfd = -1;
}

void svc_req_ctx(struct svc *s, const struct http_head *h, uint64_t *rng, struct req_ctx *rc)
{
	if (h && h->has_tp) {
		rc->trace_hi = h->tp.trace_hi;
		rc->trace_lo = h->tp.trace_lo;
		rc->span = tj_tp_server_span(h->tp.trace_hi, h->tp.trace_lo, h->tp.span);
	} else {
		atomic_fetch_add(&s->no_tp, 1);
		rc->trace_hi = rng_next(rng);
		rc->trace_lo = rng_next(rng) | 1;
		rc->span = rng_next(rng) | 1;
	}
}

void svc_call_tp(const struct req_ctx *rc, unsigned i, struct tj_traceparent *tp)
{
	tp->trace_hi = rc->trace_hi;
	tp->trace_lo = rc->trace_lo;
	tp->span = tj_tp_call_span(rc->span, i);
	tp->flags = 1;
}

/* ---- blocking downstream connections ---- */

static int dial(const struct downstream *d)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	struct timeval tv = { 10, 0 }; /* a dead downstream must not hang us */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (connect(fd, (const struct sockaddr *)&d->sa, sizeof(d->sa)) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return -1;
	}
	return fd;
}

/* A connection for one call: new, or from the idle pool (waiting for one
 * when K are busy).  *reused says whether it was idle before. */
static int ds_get(struct svc *s, struct downstream *d)
{
	if (s->policy == CONN_NEW)
		return dial(d);
	pthread_mutex_lock(&d->mu);
	while (d->nidle == 0 && d->open >= s->pool_k && !s->idle_cap)
		pthread_cond_wait(&d->cv, &d->mu);
	if (d->nidle) {
		int fd = d->idle[--d->nidle];
		pthread_mutex_unlock(&d->mu);
		return fd;
	}
	d->open++;
	pthread_mutex_unlock(&d->mu);
	int fd = dial(d);
	if (fd < 0) {
		pthread_mutex_lock(&d->mu);
		d->open--;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->mu);
	}
	return fd;
}

static void ds_put(struct svc *s, struct downstream *d, int fd, int reusable)
{
	if (s->policy == CONN_NEW) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&d->mu);
	if (reusable && (!s->idle_cap || d->nidle < s->pool_k)) {
		d->idle[d->nidle++] = fd;
	} else {
		close(fd);
		d->open--;
	}
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static int call_one(struct svc *s, struct downstream *d, const struct tj_traceparent *tp)
{
	char req[HTTP_BUF];
	size_t len = http_format_request(req, sizeof(req), d->name, d->host, tp, s->req_bytes,
					 s->policy == CONN_NEW);
	atomic_fetch_add(&s->calls, 1);
	int fd = len ? ds_get(s, d) : -1;
	if (fd < 0) {
		atomic_fetch_add(&s->call_errors, 1);
		return -1;
	}
	struct http_conn *c = malloc(sizeof(*c));
	struct http_head h;
	int ok = 0;
	if (c) {
		c->fd = fd;
		c->len = 0;
		ok = write_all(fd, req, len) == 0 && http_read(c, 1, &h) == 1 && c->len == 0 &&
		     h.status == 200;
		free(c);
	}
	ds_put(s, d, fd, ok && !h.close);
	if (!ok)
		atomic_fetch_add(&s->call_errors, 1);
	return ok ? 0 : -1;
}

struct par_call {
	struct svc *s;
	struct downstream *d;
	struct tj_traceparent tp;
	int rc;
};

static void *par_call_main(void *arg)
{
	struct par_call *p = arg;
	p->rc = call_one(p->s, p->d, &p->tp);
	return NULL;
}

int svc_do_calls(struct svc *s, const struct req_ctx *rc)
{
	int bad = 0;
	if (!s->parallel || s->nds < 2) {
		for (int i = 0; i < s->nds; i++) {
			struct tj_traceparent tp;
			svc_call_tp(rc, (unsigned)i, &tp);
			bad |= call_one(s, &s->ds[i], &tp) != 0;
		}
		return bad ? -1 : 0;
	}
	struct par_call pc[SVC_MAX_DS];
	pthread_t th[SVC_MAX_DS];
	int started[SVC_MAX_DS] = { 0 };
	for (int i = 0; i < s->nds; i++) {
		pc[i] = (struct par_call){ .s = s, .d = &s->ds[i] };
		svc_call_tp(rc, (unsigned)i, &pc[i].tp);
	}
	/* calls 1.. in their own threads, call 0 in this one */
	for (int i = 1; i < s->nds; i++)
		started[i] = pthread_create(&th[i], NULL, par_call_main, &pc[i]) == 0;
	par_call_main(&pc[0]);
	for (int i = 1; i < s->nds; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			par_call_main(&pc[i]); /* no thread: make it here, in turn */
		bad |= pc[i].rc != 0;
	}
	return bad || pc[0].rc ? -1 : 0;
}

int svc_handle(struct svc *s, const struct http_head *h, int fd, uint64_t *rng)
{
	struct req_ctx rc;
	svc_req_ctx(s, h, rng, &rc);
	sleep_ns(rng_exp(rng, s->work_ns / 2));
	int bad = svc_do_calls(s, &rc);
	sleep_ns(rng_exp(rng, s->work_ns / 2));
	size_t cap = HTTP_BUF + s->resp_bytes;
	char *buf = malloc(cap);
	if (!buf)
		return -1;
	size_t len = http_format_response(buf, cap, bad ? 502 : 200, s->resp_bytes, h->close);
	int rcw = len && write_all(fd, buf, len) == 0 ? 0 : -1;
	free(buf);
	if (rcw == 0)
		atomic_fetch_add(&s->served, 1);
	return rcw;
}
