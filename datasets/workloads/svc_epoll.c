/* tj-service's epoll model: one thread, every socket non-blocking.  A
 * request goes through phases (service time, calls, service time, reply)
 * driven by socket readiness and timers, so one thread interleaves many
 * requests and a call is made by whatever event moved its request on: the
 * thread-identity rule of a black-box correlator is useless here.
 *
 * The mn model runs this same loop on --workers OS threads at once, as an
 * M:N runtime (Go's scheduler) does: every thread waits in epoll_wait on
 * the one epoll set, takes one ready event or due timer, and runs its
 * handler under the runtime's lock.  So each step of a request (its read,
 * each call, the reply) is made by whichever thread was free.  The lock
 * serializes handlers (a handler is a few syscalls; service times are
 * timers, never held on a thread), which keeps one state machine for both
 * models. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "svc_epoll.h"

enum phase { PH_WORK1, PH_CALLS, PH_WORK2 };

#define ID_LISTEN UINT64_MAX
#define ID_STOP   (UINT64_MAX - 1)

static int ev_ctl(struct ert *rt, int op, struct ehdr *h)
{
	struct epoll_event e = {
		.events = h->ev | rt->oneshot,
		.data.u64 = (uint64_t)h->slot | (uint64_t)rt->slot_gen[h->slot] << 32,
	};
	return epoll_ctl(rt->epfd, op, h->fd, &e);
}

void ev_set(struct ert *rt, struct ehdr *h, uint32_t ev)
{
	h->ev = ev;
	ev_ctl(rt, EPOLL_CTL_MOD, h);
}

/* Register h (its fd) in a slot and in the epoll set.  0 or -1. */
static int ev_add(struct ert *rt, struct ehdr *h, uint32_t ev)
{
	if (rt->nfree == 0)
		return -1;
	h->slot = rt->free_slots[--rt->nfree];
	h->ev = ev;
	rt->slot_ptr[h->slot] = h;
	if (ev_ctl(rt, EPOLL_CTL_ADD, h) == 0)
		return 0;
	rt->slot_ptr[h->slot] = NULL;
	rt->free_slots[rt->nfree++] = h->slot;
	return -1;
}

/* h is going away: events already delivered for it are dropped. */
static void ev_forget(struct ert *rt, struct ehdr *h)
{
	epoll_ctl(rt->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	rt->slot_ptr[h->slot] = NULL;
	rt->slot_gen[h->slot]++;
	rt->free_slots[rt->nfree++] = h->slot;
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
	ev_forget(rt, &ic->h);
	close(ic->h.fd);
	if (ic->prev)
		ic->prev->next = ic->next;
	else
		rt->ins = ic->next;
	if (ic->next)
		ic->next->prev = ic->prev;
	free(ic->out);
	free(ic);
}

void out_close(struct ert *rt, struct outconn *oc)
{
	ev_forget(rt, &oc->h);
	close(oc->h.fd);
	rt->ds[oc->di].open--;
	if (rt->ds[oc->di].pipe == oc)
		rt->ds[oc->di].pipe = NULL;
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
	free(oc->sb);
	free(oc);
}

static void request_done_calls(struct ert *rt, struct ereq *r);
static void start_call(struct ert *rt, struct ereq *r, int di);
static void out_write(struct ert *rt, struct outconn *oc);
static void try_next_request(struct ert *rt, struct inconn *ic);

/* ---- downstream calls ---- */

struct outconn *out_open(struct ert *rt, int di)
{
	struct svc *s = rt->s;
	struct outconn *oc = calloc(1, sizeof(*oc));
	if (!oc)
		return NULL;
	oc->h.tag = TAG_OUT;
	oc->di = di;
	oc->h.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (oc->h.fd < 0) {
		free(oc);
		return NULL;
	}
	setsockopt(oc->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(oc->h.fd, (const struct sockaddr *)&s->ds[di].sa, sizeof(s->ds[di].sa));
	if (rc < 0 && errno != EINPROGRESS) {
		close(oc->h.fd);
		free(oc);
		return NULL;
	}
	oc->connecting = rc < 0;
	if (ev_add(rt, &oc->h, EPOLLOUT) < 0) {
		close(oc->h.fd);
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

/* Give the call (r, di) to oc and start sending: at once, from the
 * handler that made the call (a reply's handler, for a call that follows
 * another), when the connection is up. */
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
	ev_set(rt, &oc->h, EPOLLOUT);
	if (!oc->connecting)
		out_write(rt, oc);
}

/* Write what is left of oc's request; a failure is found by the next
 * write, from the event loop, which owns the error path. */
static void out_write(struct ert *rt, struct outconn *oc)
{
	while (oc->req_off < oc->req_len) {
		ssize_t n = write(oc->h.fd, oc->req + oc->req_off, oc->req_len - oc->req_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		oc->req_off += (size_t)n;
	}
	ev_set(rt, &oc->h, EPOLLIN);
}

int out_connected(struct outconn *oc)
{
	int e = 0;
	socklen_t el = sizeof(e);
	if (getsockopt(oc->h.fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e)
		return -1;
	oc->connecting = 0;
	return 0;
}

void waiter_push(struct dstate *d, struct ereq *r, int di)
{
	struct waiter *w = malloc(sizeof(*w));
	if (!w)
		return;
	*w = (struct waiter){ .req = r, .di = di };
	if (d->wtail)
		d->wtail->next = w;
	else
		d->wq = w;
	d->wtail = w;
}

struct waiter *waiter_pop(struct dstate *d)
{
	struct waiter *w = d->wq;
	if (w) {
		d->wq = w->next;
		if (!d->wq)
			d->wtail = NULL;
	}
	return w;
}

static int idle_count(const struct dstate *d)
{
	int n = 0;
	for (const struct outconn *o = d->idle; o; o = o->inext)
		n++;
	return n;
}

void call_finished(struct ert *rt, struct ereq *r, int ok)
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
			struct waiter *w = waiter_pop(d);
			struct ereq *r = w->req;
			free(w);
			r->pending--; /* start_call counts it again */
			start_call(rt, r, di);
		}
		return;
	}
	if (d->wq) {
		struct waiter *w = waiter_pop(d);
		atomic_fetch_add(&rt->s->calls, 1);
		out_assign(rt, oc, w->req, w->di);
		free(w);
		return;
	}
	if (rt->s->idle_cap && idle_count(d) >= rt->s->pool_k) {
		out_close(rt, oc); /* nginx: beyond K idle, a freed connection is closed */
		return;
	}
	oc->inext = d->idle;
	d->idle = oc;
	ev_set(rt, &oc->h, EPOLLIN); /* notices the peer closing it */
}

static void start_call(struct ert *rt, struct ereq *r, int di)
{
	struct svc *s = rt->s;
	struct dstate *d = &rt->ds[di];
	if (s->policy == CONN_PIPELINED) {
		pipe_call(rt, r, di);
		return;
	}
	atomic_fetch_add(&s->calls, 1);
	r->pending++;
	struct outconn *oc = NULL;
	if (s->policy != CONN_NEW && d->idle) {
		oc = d->idle;
		d->idle = oc->inext;
	} else if (s->policy == CONN_NEW || d->open < s->pool_k || s->idle_cap) {
		oc = out_open(rt, di);
		if (!oc) {
			call_finished(rt, r, 0);
			return;
		}
	} else {
		struct waiter *w0 = d->wtail;
		waiter_push(d, r, di);
		if (d->wtail == w0) {
			call_finished(rt, r, 0);
			return;
		}
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
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return; /* mn: an event from before, not the connect's */
		if (out_connected(oc) < 0)
			goto fail;
	}
	if (oc->req_off < oc->req_len) {
		ssize_t n = write(oc->h.fd, oc->req + oc->req_off, oc->req_len - oc->req_off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			goto fail;
		oc->req_off += (size_t)n;
		if (oc->req_off == oc->req_len)
			ev_set(rt, &oc->h, EPOLLIN);
		return;
	}
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	char *dst = oc->head_done ? oc->buf : oc->buf + oc->len;
	size_t room = oc->head_done ? (oc->body_left < sizeof(oc->buf) ? oc->body_left : sizeof(oc->buf))
				    : sizeof(oc->buf) - oc->len;
	ssize_t n = room ? read(oc->h.fd, dst, room) : 0;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		goto fail;
	if (!oc->head_done) {
		oc->len += (size_t)n;
		int pr = http_parse(oc->buf, oc->len, 1, &oc->hd);
		if (pr < 0)
			goto fail;
		if (pr == 0)
			return;
		oc->head_done = 1;
		size_t have = oc->len - oc->hd.head_len;
		if (have > oc->hd.body_len)
			goto fail; /* bytes beyond the response: not ours */
		oc->body_left = oc->hd.body_len - have;
	} else {
		oc->body_left -= (size_t)n;
	}
	if (oc->body_left)
		return;
	int ok = oc->hd.status == 200;
	out_release(rt, oc, !oc->hd.close);
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
		ssize_t n = write(ic->h.fd, ic->out + ic->out_off, ic->out_len - ic->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ev_set(rt, &ic->h, EPOLLOUT);
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
	ev_set(rt, &ic->h, EPOLLIN);
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
	ev_set(rt, &ic->h, 0); /* read no more until this one is answered */
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
			epoll_ctl(rt->epfd, EPOLL_CTL_DEL, ic->h.fd, NULL);
		return;
	}
	ssize_t n = read(ic->h.fd, ic->buf + ic->len, sizeof(ic->buf) - ic->len);
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
		if (ic) {
			ic->h.tag = TAG_IN;
			ic->h.fd = fd;
		}
		if (!ic || ev_add(rt, &ic->h, EPOLLIN) < 0) {
			free(ic);
			close(fd);
			continue;
		}
		ic->next = rt->ins;
		if (rt->ins)
			rt->ins->prev = ic;
		rt->ins = ic;
	}
}

/* One event.  Returns 1 when the service is stopping. */
static int dispatch(struct ert *rt, uint64_t id, uint32_t ev)
{
	struct svc *s = rt->s;
	if (id == ID_STOP) {
		rt->stopping = 1;
		return 1;
	}
	if (id == ID_LISTEN) {
		accept_all(rt);
		if (rt->oneshot) {
			struct epoll_event e = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = ID_LISTEN };
			epoll_ctl(rt->epfd, EPOLL_CTL_MOD, s->lfd, &e);
		}
		return 0;
	}
	uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
	if (slot >= EV_SLOTS || rt->slot_gen[slot] != gen || !rt->slot_ptr[slot])
		return 0; /* closed since the event was delivered */
	struct ehdr *h = rt->slot_ptr[slot];
	if (h->tag == TAG_IN)
		in_event(rt, (struct inconn *)h, ev);
	else if (s->policy == CONN_PIPELINED)
		pipe_event(rt, (struct outconn *)h, ev);
	else
		out_event(rt, (struct outconn *)h, ev);
	/* mn: the event disarmed the socket; arm it again if it is still open */
	if (rt->oneshot && rt->slot_gen[slot] == gen && rt->slot_ptr[slot])
		ev_ctl(rt, EPOLL_CTL_MOD, h);
	return 0;
}

/* The loop: one thread (epoll) or each of the mn model's threads.  Timers
 * and handlers run under the lock; the wait does not. */
static void *loop_main(void *arg)
{
	struct ert *rt = arg;
	int mn = rt->oneshot != 0;
	struct epoll_event evs[64];
	for (;;) {
		if (mn)
			pthread_mutex_lock(&rt->mu);
		if (rt->stopping) {
			if (mn)
				pthread_mutex_unlock(&rt->mu);
			return NULL;
		}
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
		if (mn)
			pthread_mutex_unlock(&rt->mu);
		struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
		/* mn: one event per wake-up, so the next ready socket goes to
		 * the next free thread */
		int n = epoll_pwait2(rt->epfd, evs, mn ? 1 : 64, wait == UINT64_MAX ? NULL : &ts, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		if (mn)
			pthread_mutex_lock(&rt->mu);
		int stop = 0;
		for (int i = 0; i < n && !stop; i++)
			stop = dispatch(rt, evs[i].data.u64, evs[i].events);
		if (stop && mn) { /* the stop event was taken: wake the next thread */
			struct epoll_event e = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = ID_STOP };
			epoll_ctl(rt->epfd, EPOLL_CTL_MOD, rt->s->stopfd, &e);
		}
		if (mn)
			pthread_mutex_unlock(&rt->mu);
		if (stop)
			return NULL;
	}
}

int svc_epoll_start(struct svc *s)
{
	struct ert *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -1;
	rt->s = s;
	rt->rng = s->seed ^ 0x65706f6c6cULL;
	rt->epfd = -1;
	s->rt = rt;
	for (int i = EV_SLOTS - 1; i >= 0; i--)
		rt->free_slots[rt->nfree++] = (uint32_t)i;
	rt->nthreads = s->model == MODEL_MN ? s->workers : 1;
	rt->oneshot = s->model == MODEL_MN ? EPOLLONESHOT : 0;
	pthread_mutex_init(&rt->mu, NULL);
	int fl = fcntl(s->lfd, F_GETFL);
	if ((rt->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || fl < 0 ||
	    fcntl(s->lfd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	struct epoll_event el = { .events = EPOLLIN | rt->oneshot, .data.u64 = ID_LISTEN };
	struct epoll_event es = { .events = EPOLLIN | rt->oneshot, .data.u64 = ID_STOP };
	if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, s->lfd, &el) < 0 ||
	    epoll_ctl(rt->epfd, EPOLL_CTL_ADD, s->stopfd, &es) < 0)
		return -1;
	if (s->model == MODEL_MN)
		pthread_mutex_lock(&rt->mu); /* no thread runs before all exist */
	int started = 0;
	while (started < rt->nthreads && pthread_create(&rt->th[started], NULL, loop_main, rt) == 0)
		started++;
	if (started < rt->nthreads) { /* stop those that did start */
		rt->stopping = 1;
		rt->nthreads = started;
	}
	if (s->model == MODEL_MN)
		pthread_mutex_unlock(&rt->mu);
	if (rt->stopping) {
		uint64_t one = 1;
		if (write(s->stopfd, &one, sizeof(one)) < 0) { /* the loops see stopping */ }
		return -1;
	}
	return 0;
}

void svc_epoll_stop(struct svc *s)
{
	struct ert *rt = s->rt;
	if (!rt)
		return;
	for (int i = 0; i < rt->nthreads; i++)
		pthread_join(rt->th[i], NULL);
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
		for (struct waiter *w; (w = waiter_pop(&rt->ds[i]));)
			free(w);
	for (size_t i = 0; i < nf; i++)
		free(freed[i]);
	if (rt->epfd >= 0)
		close(rt->epfd);
	pthread_mutex_destroy(&rt->mu);
	free(rt);
	s->rt = NULL;
}
