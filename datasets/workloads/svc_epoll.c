/* tj-service's epoll model: one thread, every socket non-blocking.  A
 * request goes through phases (service time, calls, service time, reply)
 * driven by socket readiness and timers, so one thread interleaves many
 * requests and a call is made by whatever event moved its request on: the
 * thread-identity rule of a black-box correlator is useless here. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "service.h"

enum tag { TAG_IN = 1, TAG_OUT = 2 };
enum phase { PH_WORK1, PH_CALLS, PH_WORK2 };

struct ereq;

struct inconn {
	int tag, fd;
	struct ereq *req;          /* the request being handled, or NULL */
	char *out;                 /* reply being written */
	size_t out_len, out_off;
	int close_after;
	struct inconn *prev, *next;
	size_t len;
	char buf[HTTP_BUF];
};

struct outconn {
	int tag, fd, di;
	int connecting;
	struct ereq *owner;        /* the request whose call it carries, or NULL (idle) */
	char req[HTTP_BUF];
	size_t req_len, req_off;
	int head_done;
	struct http_head h;
	size_t body_left;
	struct outconn *prev, *next; /* every open outconn */
	struct outconn *inext;       /* idle list of its downstream */
	size_t len;
	char buf[HTTP_BUF];
};

struct waiter { /* a call waiting for a pooled connection */
	struct ereq *req;
	int di;
	struct waiter *next;
};

struct ereq {
	struct inconn *ic;
	struct req_ctx ctx;
	int phase, next_call, pending, failed, close;
	uint64_t due;
	struct ereq *tprev, *tnext;  /* timer list */
};

struct dstate {
	struct outconn *idle;
	int open;
	struct waiter *wq, *wtail;
};

struct ert {
	struct svc *s;
	int epfd;
	uint64_t rng;
	struct inconn *ins;
	struct outconn *outs;
	struct ereq *timers;
	struct dstate ds[SVC_MAX_DS];
	pthread_t th;
};

static void set_events(struct ert *rt, int fd, void *ptr, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = ptr };
	epoll_ctl(rt->epfd, EPOLL_CTL_MOD, fd, &e);
}

static void timer_add(struct ert *rt, struct ereq *r, uint64_t delay)
{
	r->due = now_ns() + delay;
	r->tprev = NULL;
	r->tnext = rt->timers;
	if (rt->timers)
		rt->timers->tprev = r;
	rt->timers = r;
}

static void timer_del(struct ert *rt, struct ereq *r)
{
	if (r->tprev)
		r->tprev->tnext = r->tnext;
	else if (rt->timers == r)
		rt->timers = r->tnext;
	if (r->tnext)
		r->tnext->tprev = r->tprev;
	r->tprev = r->tnext = NULL;
}

static void in_close(struct ert *rt, struct inconn *ic)
{
	epoll_ctl(rt->epfd, EPOLL_CTL_DEL, ic->fd, NULL);
	close(ic->fd);
	if (ic->prev)
		ic->prev->next = ic->next;
	else
		rt->ins = ic->next;
	if (ic->next)
		ic->next->prev = ic->prev;
	free(ic->out);
	free(ic);
}

static void out_close(struct ert *rt, struct outconn *oc)
{
	epoll_ctl(rt->epfd, EPOLL_CTL_DEL, oc->fd, NULL);
	close(oc->fd);
	rt->ds[oc->di].open--;
	for (struct outconn **pp = &rt->ds[oc->di].idle; *pp; pp = &(*pp)->inext)
		if (*pp == oc) {
			*pp = oc->inext;
			break;
		}
	if (oc->prev)
		oc->prev->next = oc->next;
	else
		rt->outs = oc->next;
	if (oc->next)
		oc->next->prev = oc->prev;
	free(oc);
}

static void request_done_calls(struct ert *rt, struct ereq *r);
static void start_call(struct ert *rt, struct ereq *r, int di);
static void try_next_request(struct ert *rt, struct inconn *ic);

/* ---- downstream calls ---- */

static struct outconn *out_open(struct ert *rt, int di)
{
	struct svc *s = rt->s;
	struct outconn *oc = calloc(1, sizeof(*oc));
	if (!oc)
		return NULL;
	oc->tag = TAG_OUT;
	oc->di = di;
	oc->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (oc->fd < 0) {
		free(oc);
		return NULL;
	}
	setsockopt(oc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(oc->fd, (const struct sockaddr *)&s->ds[di].sa, sizeof(s->ds[di].sa));
	if (rc < 0 && errno != EINPROGRESS) {
		close(oc->fd);
		free(oc);
		return NULL;
	}
	oc->connecting = rc < 0;
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = oc };
	if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, oc->fd, &e) < 0) {
		close(oc->fd);
		free(oc);
		return NULL;
	}
	rt->ds[di].open++;
	oc->next = rt->outs;
	if (rt->outs)
		rt->outs->prev = oc;
	rt->outs = oc;
	return oc;
}

/* Give the call (r, di) to oc and start sending. */
static void out_assign(struct ert *rt, struct outconn *oc, struct ereq *r, int di)
{
	struct svc *s = rt->s;
	struct tj_traceparent tp;
	svc_call_tp(&r->ctx, (unsigned)di, &tp);
	oc->owner = r;
	oc->req_len = http_format_request(oc->req, sizeof(oc->req), s->ds[di].name, s->ds[di].host,
					  &tp, s->req_bytes, s->policy == CONN_NEW);
	oc->req_off = 0;
	oc->head_done = 0;
	oc->len = 0;
	set_events(rt, oc->fd, oc, EPOLLOUT);
}

static void call_finished(struct ert *rt, struct ereq *r, int ok)
{
	if (!ok) {
		r->failed = 1;
		atomic_fetch_add(&rt->s->call_errors, 1);
	}
	r->pending--;
	if (!rt->s->parallel && r->next_call < rt->s->nds) {
		start_call(rt, r, r->next_call++);
		return;
	}
	if (r->pending == 0 && r->next_call >= rt->s->nds)
		request_done_calls(rt, r);
}

/* The connection is free again: next waiter, idle list, or closed. */
static void out_release(struct ert *rt, struct outconn *oc, int reusable)
{
	struct dstate *d = &rt->ds[oc->di];
	oc->owner = NULL;
	if (!reusable || rt->s->policy == CONN_NEW) {
		int di = oc->di;
		out_close(rt, oc);
		if (d->wq && rt->s->policy != CONN_NEW) { /* a waiter may open anew */
			struct waiter *w = d->wq;
			d->wq = w->next;
			if (!d->wq)
				d->wtail = NULL;
			struct ereq *r = w->req;
			free(w);
			r->pending--; /* start_call counts it again */
			start_call(rt, r, di);
		}
		return;
	}
	if (d->wq) {
		struct waiter *w = d->wq;
		d->wq = w->next;
		if (!d->wq)
			d->wtail = NULL;
		atomic_fetch_add(&rt->s->calls, 1);
		out_assign(rt, oc, w->req, w->di);
		free(w);
		return;
	}
	oc->inext = d->idle;
	d->idle = oc;
	set_events(rt, oc->fd, oc, EPOLLIN); /* notices the peer closing it */
}

static void start_call(struct ert *rt, struct ereq *r, int di)
{
	struct svc *s = rt->s;
	struct dstate *d = &rt->ds[di];
	atomic_fetch_add(&s->calls, 1);
	r->pending++;
	struct outconn *oc = NULL;
	if (s->policy != CONN_NEW && d->idle) {
		oc = d->idle;
		d->idle = oc->inext;
	} else if (s->policy == CONN_NEW || d->open < s->pool_k) {
		oc = out_open(rt, di);
		if (!oc) {
			call_finished(rt, r, 0);
			return;
		}
	} else {
		struct waiter *w = malloc(sizeof(*w));
		if (!w) {
			call_finished(rt, r, 0);
			return;
		}
		*w = (struct waiter){ .req = r, .di = di };
		if (d->wtail)
			d->wtail->next = w;
		else
			d->wq = w;
		d->wtail = w;
		atomic_fetch_sub(&s->calls, 1); /* counted when it is started */
		return;
	}
	out_assign(rt, oc, r, di);
}

static void out_event(struct ert *rt, struct outconn *oc, uint32_t ev)
{
	struct ereq *r = oc->owner;
	if (!r) { /* idle: the peer closed it (or sent junk) */
		out_close(rt, oc);
		return;
	}
	if (oc->connecting) {
		int e = 0;
		socklen_t el = sizeof(e);
		getsockopt(oc->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		if (e)
			goto fail;
		oc->connecting = 0;
	}
	if (oc->req_off < oc->req_len) {
		ssize_t n = write(oc->fd, oc->req + oc->req_off, oc->req_len - oc->req_off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			goto fail;
		oc->req_off += (size_t)n;
		if (oc->req_off == oc->req_len)
			set_events(rt, oc->fd, oc, EPOLLIN);
		return;
	}
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	char *dst = oc->head_done ? oc->buf : oc->buf + oc->len;
	size_t room = oc->head_done ? (oc->body_left < sizeof(oc->buf) ? oc->body_left : sizeof(oc->buf))
				    : sizeof(oc->buf) - oc->len;
	ssize_t n = room ? read(oc->fd, dst, room) : 0;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		goto fail;
	if (!oc->head_done) {
		oc->len += (size_t)n;
		int pr = http_parse(oc->buf, oc->len, 1, &oc->h);
		if (pr < 0)
			goto fail;
		if (pr == 0)
			return;
		oc->head_done = 1;
		size_t have = oc->len - oc->h.head_len;
		if (have > oc->h.body_len)
			goto fail; /* bytes beyond the response: not ours */
		oc->body_left = oc->h.body_len - have;
	} else {
		oc->body_left -= (size_t)n;
	}
	if (oc->body_left)
		return;
	int ok = oc->h.status == 200;
	out_release(rt, oc, !oc->h.close);
	call_finished(rt, r, ok);
	return;
fail:
	out_release(rt, oc, 0);
	call_finished(rt, r, 0);
}

/* ---- inbound requests ---- */

static void reply_progress(struct ert *rt, struct inconn *ic)
{
	while (ic->out_off < ic->out_len) {
		ssize_t n = write(ic->fd, ic->out + ic->out_off, ic->out_len - ic->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_events(rt, ic->fd, ic, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			in_close(rt, ic);
			return;
		}
		ic->out_off += (size_t)n;
	}
	free(ic->out);
	ic->out = NULL;
	atomic_fetch_add(&rt->s->served, 1);
	if (ic->close_after) {
		in_close(rt, ic);
		return;
	}
	set_events(rt, ic->fd, ic, EPOLLIN);
	try_next_request(rt, ic);
}

static void reply(struct ert *rt, struct ereq *r)
{
	struct svc *s = rt->s;
	struct inconn *ic = r->ic;
	size_t cap = HTTP_BUF + s->resp_bytes;
	ic->req = NULL;
	ic->close_after = r->close;
	ic->out = malloc(cap);
	ic->out_len = ic->out ? http_format_response(ic->out, cap, r->failed ? 502 : 200,
						     s->resp_bytes, r->close) : 0;
	ic->out_off = 0;
	int failed = ic->out_len == 0;
	free(r);
	if (failed)
		in_close(rt, ic);
	else
		reply_progress(rt, ic);
}

static void request_done_calls(struct ert *rt, struct ereq *r)
{
	r->phase = PH_WORK2;
	timer_add(rt, r, rng_exp(&rt->rng, rt->s->work_ns / 2));
}

static void timer_fired(struct ert *rt, struct ereq *r)
{
	struct svc *s = rt->s;
	timer_del(rt, r);
	if (r->phase == PH_WORK2) {
		reply(rt, r);
		return;
	}
	r->phase = PH_CALLS;
	if (s->nds == 0) {
		request_done_calls(rt, r);
		return;
	}
	if (s->parallel) {
		r->next_call = s->nds;
		r->pending++; /* hold the request until every call is started */
		for (int i = 0; i < s->nds; i++)
			start_call(rt, r, i);
		r->pending--;
		if (r->pending == 0)
			request_done_calls(rt, r);
	} else {
		start_call(rt, r, r->next_call++);
	}
}

/* Start the request buffered on ic, if a whole one is there. */
static void try_next_request(struct ert *rt, struct inconn *ic)
{
	struct svc *s = rt->s;
	struct http_head h;
	int pr = http_parse(ic->buf, ic->len, 0, &h);
	if (pr == 0)
		return;
	if (pr < 0 || h.head_len + h.body_len > HTTP_BUF) {
		atomic_fetch_add(&s->bad_requests, 1);
		in_close(rt, ic);
		return;
	}
	size_t used = h.head_len + h.body_len;
	if (ic->len < used)
		return;
	memmove(ic->buf, ic->buf + used, ic->len - used);
	ic->len -= used;
	struct ereq *r = calloc(1, sizeof(*r));
	if (!r) {
		in_close(rt, ic);
		return;
	}
	r->ic = ic;
	r->close = h.close;
	svc_req_ctx(s, &h, &rt->rng, &r->ctx);
	ic->req = r;
	set_events(rt, ic->fd, ic, 0); /* read no more until this one is answered */
	r->phase = PH_WORK1;
	timer_add(rt, r, rng_exp(&rt->rng, s->work_ns / 2));
}

static void in_event(struct ert *rt, struct inconn *ic, uint32_t ev)
{
	if (ic->out) {
		reply_progress(rt, ic);
		return;
	}
	if (ic->req) {
		/* HUP and ERR come even with no events asked: stop watching, or
		 * the loop spins until the reply finds the connection gone */
		if (ev & (EPOLLHUP | EPOLLERR))
			epoll_ctl(rt->epfd, EPOLL_CTL_DEL, ic->fd, NULL);
		return;
	}
	ssize_t n = read(ic->fd, ic->buf + ic->len, sizeof(ic->buf) - ic->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0 || ic->len)
			atomic_fetch_add(&rt->s->bad_requests, 1);
		in_close(rt, ic);
		return;
	}
	ic->len += (size_t)n;
	try_next_request(rt, ic);
}

static void accept_all(struct ert *rt)
{
	for (;;) {
		int fd = accept4(rt->s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct inconn *ic = calloc(1, sizeof(*ic));
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = ic };
		if (!ic || epoll_ctl(rt->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
			free(ic);
			close(fd);
			continue;
		}
		ic->tag = TAG_IN;
		ic->fd = fd;
		ic->next = rt->ins;
		if (rt->ins)
			rt->ins->prev = ic;
		rt->ins = ic;
	}
}

static void *loop_main(void *arg)
{
	struct ert *rt = arg;
	struct svc *s = rt->s;
	struct epoll_event evs[64];
	for (;;) {
		uint64_t now = now_ns(), wait = UINT64_MAX;
		for (struct ereq *r = rt->timers, *nx; r; r = nx) {
			nx = r->tnext;
			if (r->due <= now) {
				timer_fired(rt, r);
				nx = rt->timers; /* the list changed: look again */
				now = now_ns();
			} else if (r->due - now < wait) {
				wait = r->due - now;
			}
		}
		struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
		int n = epoll_pwait2(rt->epfd, evs, 64, wait == UINT64_MAX ? NULL : &ts, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &s->stopfd)
				return NULL;
			if (p == &s->lfd)
				accept_all(rt);
			else if (*(int *)p == TAG_IN)
				in_event(rt, p, evs[i].events);
			else
				out_event(rt, p, evs[i].events);
		}
	}
}

int svc_epoll_start(struct svc *s)
{
	struct ert *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -1;
	rt->s = s;
	rt->rng = s->seed ^ 0x65706f6c6cULL;
	s->rt = rt;
	int fl = fcntl(s->lfd, F_GETFL);
	if ((rt->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || fl < 0 ||
	    fcntl(s->lfd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	struct epoll_event el = { .events = EPOLLIN, .data.ptr = &s->lfd };
	struct epoll_event es = { .events = EPOLLIN, .data.ptr = &s->stopfd };
	if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, s->lfd, &el) < 0 ||
	    epoll_ctl(rt->epfd, EPOLL_CTL_ADD, s->stopfd, &es) < 0)
		return -1;
	return pthread_create(&rt->th, NULL, loop_main, rt) ? -1 : 0;
}

void svc_epoll_stop(struct svc *s)
{
	struct ert *rt = s->rt;
	if (!rt)
		return;
	pthread_join(rt->th, NULL);
	/* requests in flight are dropped: free what they hold */
	struct ereq *freed[SVC_MAX_CONNS];
	size_t nf = 0;
	while (rt->ins) {
		if (rt->ins->req && nf < SVC_MAX_CONNS)
			freed[nf++] = rt->ins->req;
		in_close(rt, rt->ins);
	}
	while (rt->outs)
		out_close(rt, rt->outs);
	for (int i = 0; i < SVC_MAX_DS; i++)
		while (rt->ds[i].wq) {
			struct waiter *w = rt->ds[i].wq;
			rt->ds[i].wq = w->next;
			free(w);
		}
	for (size_t i = 0; i < nf; i++)
		free(freed[i]);
	close(rt->epfd);
	free(rt);
	s->rt = NULL;
}
