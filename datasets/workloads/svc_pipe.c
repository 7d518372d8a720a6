/* tj-service's pipelined downstream policy (epoll and mn models): one
 * connection per downstream; a call's request is written at once, behind
 * any still outstanding (HTTP/1.1 pipelining), and the replies, which come
 * back in order, finish the calls oldest first.
 *
 * On the wire two requests written with no reply read between them are
 * one run of bytes: one message (DESIGN.md), named by its first byte, and
 * `tracejoin label` reads the traceparent of its first request only.  So
 * the client counts, from its own syscalls, every call whose first byte
 * went out in the same run of writes as the call before it (`joined`):
 * run-real.sh expects one label per call not joined. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "svc_epoll.h"

static struct pend *pend_at(struct outconn *oc, int i)
{
	return &oc->q[(oc->qh + i) % PIPE_MAX];
}

/* Write what is buffered.  Errors are left for pipe_event to find (the
 * next write fails the same way), so no caller sees oc freed. */
static void pipe_flush(struct ert *rt, struct outconn *oc)
{
	while (oc->sb_len) {
		ssize_t n = write(oc->h.fd, oc->sb, oc->sb_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* calls whose first byte is in this write: the first of them
		 * opens a message only if it starts the write and the socket's
		 * last transfer was a read */
		uint64_t end = oc->sent + (uint64_t)n;
		for (; oc->qstarted < oc->qn && pend_at(oc, oc->qstarted)->start < end; oc->qstarted++)
			if (pend_at(oc, oc->qstarted)->start != oc->sent || oc->last_out)
				atomic_fetch_add(&rt->s->joined, 1);
		oc->last_out = 1;
		oc->sent = end;
		oc->sb_len -= (size_t)n;
		memmove(oc->sb, oc->sb + n, oc->sb_len);
	}
	ev_set(rt, &oc->h, oc->connecting ? EPOLLOUT : EPOLLIN | (oc->sb_len ? EPOLLOUT : 0));
}

/* Queue call (r, di) on oc (which has room) and send it if it can go. */
static int pipe_append(struct ert *rt, struct outconn *oc, struct ereq *r, int di)
{
	struct svc *s = rt->s;
	char req[HTTP_BUF];
	struct tj_traceparent tp;
	svc_call_tp(&r->ctx, (unsigned)di, &tp);
	size_t len = http_format_request(req, sizeof(req), s->ds[di].name, s->ds[di].host, &tp,
					 s->req_bytes, 0);
	if (!len)
		return -1;
	if (oc->sb_len + len > oc->sb_cap) {
		size_t cap = oc->sb_cap ? oc->sb_cap : 4096;
		while (cap < oc->sb_len + len)
			cap *= 2;
		char *nb = realloc(oc->sb, cap);
		if (!nb)
			return -1;
		oc->sb = nb;
		oc->sb_cap = cap;
	}
	*pend_at(oc, oc->qn) = (struct pend){ .req = r, .di = di, .start = oc->sent + oc->sb_len };
	oc->qn++;
	memcpy(oc->sb + oc->sb_len, req, len);
	oc->sb_len += len;
	if (!oc->connecting)
		pipe_flush(rt, oc);
	return 0;
}

void pipe_call(struct ert *rt, struct ereq *r, int di)
{
	struct dstate *d = &rt->ds[di];
	r->pending++;
	struct outconn *oc = d->pipe;
	if (!oc) {
		oc = d->pipe = out_open(rt, di);
		if (!oc) {
			atomic_fetch_add(&rt->s->calls, 1);
			call_finished(rt, r, 0);
			return;
		}
	}
	if (oc->qn == PIPE_MAX) { /* counted when it is sent */
		struct waiter *w0 = d->wtail;
		waiter_push(d, r, di);
		if (d->wtail != w0)
			return;
	} else if (pipe_append(rt, oc, r, di) == 0) {
		atomic_fetch_add(&rt->s->calls, 1);
		return;
	}
	atomic_fetch_add(&rt->s->calls, 1);
	call_finished(rt, r, 0);
}

/* The connection failed: every call on it fails, and the waiters start
 * over on a new one. */
static void pipe_fail(struct ert *rt, struct outconn *oc)
{
	struct dstate *d = &rt->ds[oc->di];
	struct pend failed[PIPE_MAX];
	int n = oc->qn;
	for (int i = 0; i < n; i++)
		failed[i] = *pend_at(oc, i);
	out_close(rt, oc);
	for (int i = 0; i < n; i++)
		call_finished(rt, failed[i].req, 0);
	struct waiter *w = d->wq;
	d->wq = d->wtail = NULL;
	while (w) {
		struct waiter *nx = w->next;
		w->req->pending--; /* pipe_call counts it again */
		pipe_call(rt, w->req, w->di);
		free(w);
		w = nx;
	}
}

void pipe_event(struct ert *rt, struct outconn *oc, uint32_t ev)
{
	struct dstate *d = &rt->ds[oc->di];
	if (oc->connecting) {
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (out_connected(oc) < 0)
			goto fail;
		pipe_flush(rt, oc);
		return;
	}
	if (ev & EPOLLOUT)
		pipe_flush(rt, oc); /* a failed write shows as EPOLLERR: the read below */
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	ssize_t n = read(oc->h.fd, oc->buf + oc->len, sizeof(oc->buf) - oc->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		goto fail; /* closed (idle or not) or broken */
	oc->last_out = 0;
	oc->len += (size_t)n;
	/* finish every reply that is complete, oldest call first */
	size_t used = 0;
	while (used < oc->len) {
		if (oc->qn == 0)
			goto fail; /* bytes nobody asked for */
		if (!oc->head_done) {
			int pr = http_parse(oc->buf + used, oc->len - used, 1, &oc->hd);
			if (pr < 0)
				goto fail;
			if (pr == 0)
				break;
			used += oc->hd.head_len;
			oc->body_left = oc->hd.body_len;
			oc->head_done = 1;
		}
		size_t take = oc->len - used < oc->body_left ? oc->len - used : oc->body_left;
		used += take;
		oc->body_left -= take;
		if (oc->body_left)
			break;
		oc->head_done = 0;
		struct pend p = *pend_at(oc, 0);
		oc->qh = (oc->qh + 1) % PIPE_MAX;
		oc->qn--;
		oc->qstarted--;
		int ok = oc->hd.status == 200, closing = oc->hd.close;
		struct waiter *w = waiter_pop(d);
		if (w) {
			atomic_fetch_add(&rt->s->calls, 1);
			if (pipe_append(rt, oc, w->req, w->di) < 0)
				call_finished(rt, w->req, 0);
			free(w);
		}
		/* may make the request's next call, on this connection too:
		 * appended behind, never closing oc */
		call_finished(rt, p.req, ok);
		if (closing)
			goto fail;
	}
	memmove(oc->buf, oc->buf + used, oc->len - used);
	oc->len -= used;
	if (oc->len == sizeof(oc->buf))
		goto fail; /* a head longer than the buffer */
	return;
fail:
	pipe_fail(rt, oc);
}
