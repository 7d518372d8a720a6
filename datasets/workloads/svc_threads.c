/* tj-service runtimes with blocking calls: thread (a thread per inbound
 * connection) and pool (an epoll I/O thread reads, workers call and
 * answer: the hand-off of the thread-pool scenario). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "service.h"

struct pconn {
	struct http_conn c;
	struct pconn *qnext;              /* work queue */
	struct pconn *aprev, *anext;      /* every open connection */
};

struct rt {
	struct svc *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* thread model: the connections' fds, so stop can shut them down */
	int fds[SVC_MAX_CONNS];
	int nfds, active;
	pthread_t acceptor;
	/* pool model */
	int epfd;
	pthread_t io;
	pthread_t workers[256];
	int nworkers;
	struct pconn *qhead, *qtail, *all;
	uint64_t conns_made;
};

/* ---- thread per connection ---- */

struct conn_arg {
	struct rt *rt;
	int fd;
	uint64_t rng;
};

static void unregister_fd(struct rt *rt, int fd)
{
	pthread_mutex_lock(&rt->mu);
	for (int i = 0; i < rt->nfds; i++)
		if (rt->fds[i] == fd) {
			rt->fds[i] = rt->fds[--rt->nfds];
			break;
		}
	close(fd);
	rt->active--;
	pthread_cond_broadcast(&rt->cv);
	pthread_mutex_unlock(&rt->mu);
}

static void *conn_main(void *arg)
{
	struct conn_arg *a = arg;
	struct rt *rt = a->rt;
	struct svc *s = rt->s;
	struct http_conn *c = malloc(sizeof(*c));
	if (c) {
		c->fd = a->fd;
		c->len = 0;
		for (;;) {
			struct http_head h;
			int rc = http_read(c, 0, &h);
			if (rc != 1) {
				if (rc < 0 && !atomic_load(&s->stop))
					atomic_fetch_add(&s->bad_requests, 1);
				break;
			}
			if (svc_handle(s, &h, c->fd, &a->rng) < 0 || h.close)
				break;
		}
		free(c);
	}
	unregister_fd(rt, a->fd);
	free(a);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct rt *rt = arg;
	struct svc *s = rt->s;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!atomic_load(&s->stop)) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
				sleep_ns(10000000);
				continue;
			}
			break; /* EINVAL: the listening socket was shut down */
		}
		struct conn_arg *a = malloc(sizeof(*a));
		pthread_mutex_lock(&rt->mu);
		int ok = a && rt->nfds < SVC_MAX_CONNS && !atomic_load(&s->stop);
		if (ok) {
			rt->fds[rt->nfds++] = fd;
			rt->active++;
		}
		pthread_mutex_unlock(&rt->mu);
		if (!ok) {
			free(a);
			close(fd);
			continue;
		}
		a->rt = rt;
		a->fd = fd;
		a->rng = s->seed ^ tj_tp_mix(++rt->conns_made);
		pthread_t t;
		if (pthread_create(&t, &attr, conn_main, a) != 0) {
			free(a);
			unregister_fd(rt, fd);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* ---- I/O thread + workers ---- */

static void pconn_close(struct rt *rt, struct pconn *p)
{
	epoll_ctl(rt->epfd, EPOLL_CTL_DEL, p->c.fd, NULL);
	close(p->c.fd);
	pthread_mutex_lock(&rt->mu);
	if (p->aprev)
		p->aprev->anext = p->anext;
	else
		rt->all = p->anext;
	if (p->anext)
		p->anext->aprev = p->aprev;
	pthread_mutex_unlock(&rt->mu);
	free(p);
}

/* 1: a whole request is buffered; 0: need more; -1: bad or too large. */
static int have_request(struct pconn *p, struct http_head *h)
{
	int rc = http_parse(p->c.buf, p->c.len, 0, h);
	if (rc <= 0)
		return rc;
	if (h->head_len + h->body_len > HTTP_BUF)
		return -1;
	return p->c.len >= h->head_len + h->body_len;
}

static void rearm(struct rt *rt, struct pconn *p)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = p };
	epoll_ctl(rt->epfd, EPOLL_CTL_MOD, p->c.fd, &ev);
}

static void enqueue(struct rt *rt, struct pconn *p)
{
	pthread_mutex_lock(&rt->mu);
	p->qnext = NULL;
	if (rt->qtail)
		rt->qtail->qnext = p;
	else
		rt->qhead = p;
	rt->qtail = p;
	pthread_cond_signal(&rt->cv);
	pthread_mutex_unlock(&rt->mu);
}

static void io_accept(struct rt *rt)
{
	struct svc *s = rt->s;
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN (non-blocking listener) or a passing error */
		struct pconn *p = calloc(1, sizeof(*p));
		if (!p) {
			close(fd);
			continue;
		}
		p->c.fd = fd;
		pthread_mutex_lock(&rt->mu);
		p->anext = rt->all;
		if (rt->all)
			rt->all->aprev = p;
		rt->all = p;
		pthread_mutex_unlock(&rt->mu);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = p };
		if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			pconn_close(rt, p);
	}
}

static void *io_main(void *arg)
{
	struct rt *rt = arg;
	struct svc *s = rt->s;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(rt->epfd, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;
			if (ptr == &s->stopfd)
				return NULL;
			if (ptr == &s->lfd) {
				io_accept(rt);
				continue;
			}
			struct pconn *p = ptr;
			ssize_t r = read(p->c.fd, p->c.buf + p->c.len, sizeof(p->c.buf) - p->c.len);
			if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
				rearm(rt, p);
				continue;
			}
			if (r <= 0) {
				if (r < 0 || p->c.len)
					atomic_fetch_add(&s->bad_requests, 1);
				pconn_close(rt, p);
				continue;
			}
			p->c.len += (size_t)r;
			struct http_head h;
			int rc = have_request(p, &h);
			if (rc < 0) {
				atomic_fetch_add(&s->bad_requests, 1);
				pconn_close(rt, p);
			} else if (rc > 0) {
				enqueue(rt, p); /* stays disarmed until the worker answers */
			} else {
				rearm(rt, p);
			}
		}
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct rt *rt = arg;
	struct svc *s = rt->s;
	uint64_t rng;
	pthread_mutex_lock(&rt->mu);
	rng = s->seed ^ tj_tp_mix(0x776f726bULL + (uint64_t)rt->nworkers);
	pthread_mutex_unlock(&rt->mu);
	for (;;) {
		pthread_mutex_lock(&rt->mu);
		while (!rt->qhead && !atomic_load(&s->stop))
			pthread_cond_wait(&rt->cv, &rt->mu);
		struct pconn *p = rt->qhead;
		if (!p) {
			pthread_mutex_unlock(&rt->mu);
			return NULL;
		}
		rt->qhead = p->qnext;
		if (!rt->qhead)
			rt->qtail = NULL;
		pthread_mutex_unlock(&rt->mu);
		struct http_head h;
		int rc;
		while ((rc = have_request(p, &h)) > 0) {
			size_t used = h.head_len + h.body_len;
			memmove(p->c.buf, p->c.buf + used, p->c.len - used);
			p->c.len -= used;
			if (svc_handle(s, &h, p->c.fd, &rng) < 0 || h.close) {
				rc = -2;
				break;
			}
		}
		if (rc == -1)
			atomic_fetch_add(&s->bad_requests, 1);
		if (rc < 0)
			pconn_close(rt, p);
		else
			rearm(rt, p);
	}
}

int svc_threads_start(struct svc *s)
{
	struct rt *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -1;
	rt->s = s;
	rt->epfd = -1;
	pthread_mutex_init(&rt->mu, NULL);
	pthread_cond_init(&rt->cv, NULL);
	s->rt = rt;
	if (s->model == MODEL_THREAD)
		return pthread_create(&rt->acceptor, NULL, acceptor_main, rt) ? -1 : 0;

	int fl = fcntl(s->lfd, F_GETFL);
	if ((rt->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || fl < 0 ||
	    fcntl(s->lfd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->lfd };
	struct epoll_event es = { .events = EPOLLIN, .data.ptr = &s->stopfd };
	if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0 ||
	    epoll_ctl(rt->epfd, EPOLL_CTL_ADD, s->stopfd, &es) < 0)
		return -1;
	for (int i = 0; i < s->workers; i++) {
		if (pthread_create(&rt->workers[i], NULL, worker_main, rt) != 0)
			return -1;
		pthread_mutex_lock(&rt->mu);
		rt->nworkers++;
		pthread_mutex_unlock(&rt->mu);
	}
	return pthread_create(&rt->io, NULL, io_main, rt) ? -1 : 0;
}

void svc_threads_stop(struct svc *s)
{
	struct rt *rt = s->rt;
	if (!rt)
		return;
	if (s->model == MODEL_THREAD) {
		shutdown(s->lfd, SHUT_RDWR); /* wakes accept() with EINVAL */
		pthread_join(rt->acceptor, NULL);
		pthread_mutex_lock(&rt->mu);
		for (int i = 0; i < rt->nfds; i++)
			shutdown(rt->fds[i], SHUT_RDWR); /* wakes the readers */
		while (rt->active > 0)
			pthread_cond_wait(&rt->cv, &rt->mu);
		pthread_mutex_unlock(&rt->mu);
	} else {
		pthread_join(rt->io, NULL); /* it returns on stopfd */
		pthread_mutex_lock(&rt->mu);
		pthread_cond_broadcast(&rt->cv);
		pthread_mutex_unlock(&rt->mu);
		for (int i = 0; i < rt->nworkers; i++)
			pthread_join(rt->workers[i], NULL);
		while (rt->all)
			pconn_close(rt, rt->all);
		if (rt->epfd >= 0)
			close(rt->epfd);
	}
	pthread_mutex_destroy(&rt->mu);
	pthread_cond_destroy(&rt->cv);
	free(rt);
	s->rt = NULL;
}
