/* Connections: connect/accept, the per-downstream policies (a connection
 * per call, a keepalive pool of k, one shared connection), and the byte
 * streams in both directions with realistic syscall splitting.
 *
 * A message goes out in one or more writes (headers and body apart
 * sometimes, large bodies in write-chunk pieces); each write reaches the
 * peer after the message's network delay plus its time on the wire, in
 * order.  The reader's reads return what has arrived, at most its read
 * buffer, so a message is read in one or several reads depending on
 * timing, as on a real socket.
 *
 * One request at a time per connection: the next request on a pooled or
 * shared connection is written only after the previous response was read,
 * so a shared connection is a pool of one whose callers queue for it.
 * The exception is `shared pipelined` (HTTP/1.1 pipelining): a call is
 * written at once behind those outstanding, the server takes them in
 * order, and replies come back in order.  Requests written with no reply
 * read between them are one run of bytes, one message (DESIGN.md): emit()
 * sees that from the socket's direction, so only the first is labeled,
 * as `tracejoin label` does on a real capture. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "gen_sim.h"
#include "../../lib/event.h"
#include "../../lib/msgkey.h"

static void read_ev(struct sim *s, void *obj, uint64_t arg);
static void send_ev(struct sim *s, void *obj, uint64_t arg);

struct pool *pool_new(struct sim *s, uint8_t policy, int k, uint64_t idle_ns)
{
	struct pool *p = sim_alloc(s, sizeof(*p));
	if (!p)
		return NULL;
	p->policy = policy;
	p->k = policy == GP_SHARED ? 1 : k;
	p->idle_ns = idle_ns;
	p->next = s->pools;
	s->pools = p;
	return p;
}

static struct end *peer(struct end *e)
{
	return e->is_client ? &e->c->sv : &e->c->cl;
}

static uint64_t one_way(struct sim *s, const struct end *a, const struct end *b)
{
	const struct gen_dist *d = a->node && a->node == b->node ? &s->spec->lat_local
								 : &s->spec->lat_remote;
	return (uint64_t)gen_dist_sample(d, s->rng) + 1000;
}

static void ext_addr(const struct sim *s, uint32_t client, uint8_t *family,
		     uint8_t addr[16])
{
	memset(addr, 0, 16);
	*family = s->spec->nodes[0].family;
	if (*family == 10) { /* 2001:db8::c:N, documentation prefix */
		addr[0] = 0x20; addr[1] = 0x01; addr[2] = 0x0d; addr[3] = 0xb8;
		addr[13] = 0x0c;
		addr[14] = (uint8_t)(client >> 8);
		addr[15] = (uint8_t)(client + 1);
	} else { /* 198.51.100.N, TEST-NET-2 */
		addr[0] = 198; addr[1] = 51; addr[2] = 100;
		addr[3] = (uint8_t)(client + 1);
	}
}

static uint16_t next_port(uint32_t *p)
{
	if (*p < 32768 || *p > 60999)
		*p = 32768;
	return (uint16_t)(*p)++;
}

static struct conn *conn_new(struct sim *s, struct call *c)
{
	struct conn *k = sim_obj_new(s, sizeof(*k));
	if (!k)
		return NULL;
	struct svcrun *to = c->to;
	struct end *cl = &k->cl, *sv = &k->sv;
	k->callee = to;
	k->pool = c->pool;
	k->cl_io = c->ex;
	cl->c = sv->c = k;
	cl->is_client = 1;
	sv->node = to->node;
	sv->proc = to->proc;
	sv->family = to->node->spec->family;
	memcpy(sv->laddr, to->node->spec->addr, 16);
	sv->lport = to->spec->port;
	sv->rbuf = to->spec->read_buf;
	sv->fd = TJ_FD_UNKNOWN;
	if (c->node) {
		cl->node = c->node;
		cl->proc = c->proc;
		cl->family = c->node->spec->family;
		memcpy(cl->laddr, c->node->spec->addr, 16);
		cl->lport = next_port(&c->node->next_port);
		cl->sock = c->node->next_sock++;
		cl->fd = proc_fd_alloc(s, c->proc);
		cl->rbuf = c->from ? c->from->spec->read_buf : 16384;
	} else {
		ext_addr(s, c->ext_client, &cl->family, cl->laddr);
		cl->lport = next_port(&s->ext_port[c->ext_client & 255]);
		cl->fd = TJ_FD_UNKNOWN;
		cl->rbuf = 65536;
	}
	memcpy(sv->raddr, cl->laddr, 16);
	sv->rport = cl->lport;
	memcpy(cl->raddr, sv->laddr, 16);
	cl->rport = sv->lport;
	if (c->pool) {
		k->all_next = c->pool->all;
		c->pool->all = k;
	}
	return k;
}

static void conn_free_if_done(struct conn *k)
{
	if (!k->cl.closed || !k->sv.closed || k->timers)
		return;
	if (k->pool) { /* unlink from the pool's list of open connections */
		struct conn **pp = &k->pool->all;
		while (*pp && *pp != k)
			pp = &(*pp)->all_next;
		if (*pp)
			*pp = k->all_next;
	}
	sim_obj_free(k);
}

/* ---- reading ---- */

static void schedule_read(struct sim *s, struct end *e)
{
	if (e->rx_sched || !e->rx_wait || e->closed)
		return;
	if (!e->rx_avail && !(e->eof && !e->rx_left))
		return;
	e->rx_sched = 1;
	if (!e->node)
		sim_at(s, s->now, read_ev, e, 0);
	else if (e->rd_thr)
		sim_at(s, s->now + sim_wake_ns(s, e->node), read_ev, e, thr_arg(e->rd_thr));
	else
		exec_submit(s, e->rd_ex, read_ev, e);
}

void end_wait(struct sim *s, struct end *e)
{
	e->rx_wait = 1;
	schedule_read(s, e);
}

static void release_ev(struct sim *s, void *obj, uint64_t arg)
{
	(void)obj;
	exec_release(s, arg_thr(arg));
}

static void msg_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct end *e = obj;
	e->on_msg(s, e, arg_thr(arg));
}

static void server_close(struct sim *s, struct end *e, struct thr *t)
{
	struct conn *k = e->c;
	emit(s, e, t, TJ_EV_CLOSE, 0, 0, 0, NULL);
	proc_fd_free(e->proc, e->fd);
	e->closed = 1;
	if (k->own) { /* thread-per-connection: the thread ends with it */
		exec_free(k->own);
		k->own = NULL;
	} else {
		sim_at(s, s->now + sim_syscall_ns(s, 0), release_ev, NULL, thr_arg(t));
	}
	conn_free_if_done(k);
}

static void close_ev(struct sim *s, void *obj, uint64_t arg)
{
	server_close(s, obj, arg_thr(arg));
}

/* Pipelined: the peer of e will send a message of size bytes, after
 * those e is still expecting. */
void end_expect(struct end *e, uint64_t size)
{
	if (!e->rx_left && !e->rxq_n) {
		e->rx_left = size;
		e->rx_fresh = 1;
	} else if (e->rxq_n < GEN_PIPE_MAX) {
		e->rxq[(e->rxq_h + e->rxq_n++) % GEN_PIPE_MAX] = (uint32_t)size;
	}
}

static void read_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct end *e = obj;
	struct thr *t = arg_thr(arg);
	e->rx_sched = 0;
	if (e->rx_fresh) { /* pipelined: a new request starts here */
		e->rx_fresh = 0;
		e->req_kept = 0;
	}
	if (!e->rx_left && e->eof) {
		/* read() returns 0 at the peer's FIN; then the server closes */
		emit(s, e, t, TJ_EV_RECV, 0, TJ_DIR_IN, 0, NULL);
		uint64_t cost = e->node ? sim_syscall_ns(s, 0) : 0;
		sim_at(s, s->now + cost, close_ev, e, arg);
		return;
	}
	uint64_t n = e->rx_avail < e->rx_left ? e->rx_avail : e->rx_left;
	if (e->node && n > e->rbuf)
		n = e->rbuf;
	uint64_t cost = 0;
	if (e->node) {
		int new_msg;
		int kept = emit(s, e, t, TJ_EV_RECV, (int64_t)n, TJ_DIR_IN,
				n < e->rbuf ? TJ_EVF_PARTIAL : 0, &new_msg);
		if (kept && !e->is_client && !e->req_kept && e->role_seen) {
			e->req_kept = 1;
			e->req_obs_off = e->obs_off[TJ_DIR_IN];
		}
		cost = sim_syscall_ns(s, n);
	}
	e->off[TJ_DIR_IN] += n;
	e->rx_avail -= n;
	e->rx_left -= n;
	if (!e->rx_left) {
		if (e->rxq_n) { /* pipelined: the next message follows */
			e->rx_left = e->rxq[e->rxq_h];
			e->rxq_h = (uint8_t)((e->rxq_h + 1) % GEN_PIPE_MAX);
			e->rxq_n--;
			e->rx_fresh = 1;
		}
		e->rx_wait = 0;
		sim_at(s, s->now + cost, msg_ev, e, arg);
	} else if (e->rx_avail) {
		e->rx_sched = 1;
		sim_at(s, s->now + cost, read_ev, e, arg);
	} else if (e->node && !e->rd_thr) {
		/* non-blocking: back to the loop until more arrives */
		sim_at(s, s->now + cost, release_ev, NULL, arg);
	}
}

static void arrive_ev(struct sim *s, void *obj, uint64_t n)
{
	struct end *e = obj;
	e->rx_avail += n;
	schedule_read(s, e);
}

static void fin_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct end *e = obj;
	(void)arg;
	e->eof = 1;
	schedule_read(s, e);
}

/* ---- sending ---- */

static void tx_ev(struct sim *s, void *obj, uint64_t arg);

static void tx_step(struct sim *s, struct end *e, struct thr *t)
{
	uint64_t n = e->tx_first ? e->tx_first : e->tx_chunk;
	e->tx_first = 0;
	if (n > e->tx_left)
		n = e->tx_left;
	uint64_t cost = 1000;
	if (e->node) {
		int new_msg;
		int kept = emit(s, e, t, TJ_EV_SEND, (int64_t)n, TJ_DIR_OUT, 0, &new_msg);
		if (kept && new_msg && e->is_client && e->role_seen && e->c->call)
			emit_label(s, e->c->call);
		if (e->is_client && e->c->pq_first) { /* pipelined */
			e->c->pq_first = 0;
			s->st->joined += kept && !new_msg;
		}
		cost = sim_syscall_ns(s, n);
	}
	e->off[TJ_DIR_OUT] += n;
	e->tx_left -= n;
	uint64_t arr = s->now + (uint64_t)e->tx_lat + (uint64_t)((double)n / s->spec->bandwidth);
	if (arr < e->arrive_last)
		arr = e->arrive_last;
	e->arrive_last = arr;
	sim_at(s, arr, arrive_ev, peer(e), n);
	if (e->tx_left)
		sim_at(s, s->now + cost, tx_ev, e, thr_arg(t));
	else
		sim_at(s, s->now + cost, e->tx_done, e->tx_obj, thr_arg(t));
}

static void tx_ev(struct sim *s, void *obj, uint64_t arg)
{
	tx_step(s, obj, arg_thr(arg));
}

/* Write a message of size bytes from e on thread t; done(obj, t) after
 * the last write returned.  The peer must know to expect it (rx_left). */
void end_send(struct sim *s, struct end *e, struct thr *t, uint64_t size,
	      uint32_t chunk, double split, sim_fn done, void *obj)
{
	e->tx_left = size;
	e->tx_done = done;
	e->tx_obj = obj;
	e->tx_chunk = chunk;
	e->tx_first = 0;
	if (size > 600 && gsl_rng_uniform(s->rng) < split)
		e->tx_first = (uint32_t)sim_uniform(s, 120, 400); /* headers alone */
	e->tx_lat = (double)one_way(s, e, peer(e));
	tx_step(s, e, t);
}

/* ---- calls ---- */

static void call_reply(struct sim *s, struct end *e, struct thr *t);
static void call_send(struct sim *s, struct call *c, struct thr *t);

/* A non-blocking caller's thread is done with c for now (written, queued
 * or connecting): a `node` handler goes on and issues its next call on
 * it, at once, as Node's http.request() returns once the agent wrote or
 * queued the request; otherwise the thread is free. */
static void issue_ev(struct sim *s, void *obj, uint64_t arg)
{
	call_start(s, obj, arg_thr(arg));
}

static struct call *take_issue_next(struct call *c)
{
	struct call *n = c->inline_issue ? c->issue_next : NULL;
	c->inline_issue = 0;
	c->issue_next = NULL;
	return n;
}

static void caller_free(struct sim *s, struct call *c, struct thr *t)
{
	struct call *n = take_issue_next(c);
	if (n && n->from && n->from->spec->has_cb_cost)
		sim_at(s, s->now + svc_cb_cost(s, n->from), issue_ev, n, thr_arg(t));
	else if (n)
		call_start(s, n, t);
	else
		exec_release(s, t);
}


static void call_sent(struct sim *s, void *obj, uint64_t arg)
{
	struct call *c = obj;
	struct thr *t = arg_thr(arg);
	struct end *e = &c->conn->cl;
	e->on_msg = call_reply;
	if (c->pool && c->pool->pipelined) {
		/* the writer goes on with the calls queued behind this one */
		struct conn *k = c->conn;
		e->rd_thr = NULL;
		e->rd_ex = k->cl_io ? k->cl_io : c->ex;
		if (k->pq_unsent) {
			call_send(s, k->pq_unsent, t);
		} else {
			k->pq_busy = 0;
			exec_release(s, t);
		}
		end_wait(s, e);
		return;
	}
	if (c->blocking || !e->node) {
		e->rd_thr = t;
		e->rd_ex = NULL;
	} else {
		e->rd_thr = NULL;
		e->rd_ex = c->conn->cl_io ? c->conn->cl_io : c->ex;
		caller_free(s, c, t);
	}
	end_wait(s, e);
}

static void call_send(struct sim *s, struct call *c, struct thr *t)
{
	struct conn *k = c->conn;
	k->call = c;
	uint64_t size = (uint64_t)gen_dist_sample(&c->ep->req, s->rng);
	if (size < 16)
		size = 16;
	if (size > GEN_MAX_MESSAGE)
		size = GEN_MAX_MESSAGE;
	if (c->pool && c->pool->pipelined) {
		k->pq_unsent = c->next;
		k->pq_first = 1;
		end_expect(&k->sv, size);
	} else {
		k->sv.rx_left = size;
		k->sv.req_kept = 0;
	}
	const struct gen_service *from = c->from ? c->from->spec : NULL;
	end_send(s, &k->cl, t, size, from ? from->write_chunk : 16384,
		 from ? from->write_split : 0.3, call_sent, c);
}

static void send_ev(struct sim *s, void *obj, uint64_t arg)
{
	call_send(s, obj, arg_thr(arg));
}

static void accept_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct conn *k = obj;
	struct thr *t = arg_thr(arg);
	struct end *e = &k->sv;
	e->sock = e->node->next_sock++;
	e->fd = proc_fd_alloc(s, e->proc);
	emit(s, e, t, TJ_EV_ACCEPT, 0, 0, 0, NULL);
	svc_accepted(s, k, t);
}

static void accept_ready_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct conn *k = obj;
	(void)arg;
	exec_submit(s, k->callee->acceptor, accept_ev, k);
}

static void connected_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct call *c = obj;
	if (c->blocking || !c->node)
		call_send(s, c, arg_thr(arg));
	else
		exec_submit(s, c->conn->cl_io ? c->conn->cl_io : c->ex, send_ev, c);
}

static void do_connect(struct sim *s, struct call *c, struct thr *t)
{
	struct conn *k = c->conn;
	int nb = !c->blocking && c->node;
	emit(s, &k->cl, t, TJ_EV_CONNECT, nb ? -EINPROGRESS : 0, 0,
	     nb ? TJ_EVF_ERROR : 0, NULL);
	uint64_t lat = one_way(s, &k->cl, &k->sv);
	/* SYN, SYN-ACK: connect returns; the ACK completes the server side */
	uint64_t cost = c->node ? sim_syscall_ns(s, 0) : 0;
	sim_at(s, s->now + 3 * lat, accept_ready_ev, k, 0);
	if (nb) {
		struct call *n = take_issue_next(c);
		if (n)
			sim_at(s, s->now + cost, issue_ev, n, thr_arg(t));
		else
			sim_at(s, s->now + cost, release_ev, NULL, thr_arg(t));
		sim_at(s, s->now + 2 * lat, connected_ev, c, 0);
	} else {
		sim_at(s, s->now + 2 * lat + cost, connected_ev, c, thr_arg(t));
	}
}

static void pipe_start(struct sim *s, struct call *c, struct thr *t);

static void pipe_retry_ev(struct sim *s, void *obj, uint64_t arg)
{
	pipe_start(s, obj, arg_thr(arg));
}

/* Pipelined: append c to the connection's calls and write it now, unless
 * a write is under way (then that writer sends it next). */
static void pipe_start(struct sim *s, struct call *c, struct thr *t)
{
	struct pool *p = c->pool;
	struct conn *k = p->pipe;
	if (k && k->pq_n >= GEN_PIPE_MAX) { /* every slot taken: wait for a reply */
		if (p->wait_tail)
			p->wait_tail->next = c;
		else
			p->wait_head = c;
		p->wait_tail = c;
		exec_release(s, t);
		return;
	}
	int fresh = !k;
	if (fresh) {
		p->n++;
		k = p->pipe = conn_new(s, c);
		if (!k)
			return;
	}
	c->conn = k;
	c->next = NULL;
	if (k->pq_tail)
		k->pq_tail->next = c;
	else
		k->pq_head = c;
	k->pq_tail = c;
	k->pq_n++;
	if (!k->pq_unsent)
		k->pq_unsent = c;
	if (!k->pq_server)
		k->pq_server = c;
	if (fresh) {
		k->pq_busy = 1; /* connected_ev sends the first */
		do_connect(s, c, t);
	} else if (k->pq_busy) {
		exec_release(s, t);
	} else {
		k->pq_busy = 1;
		call_send(s, c, t);
	}
}

void call_start(struct sim *s, struct call *c, struct thr *t)
{
	struct pool *p = c->pool;
	if (p && p->pipelined) {
		pipe_start(s, c, t);
		return;
	}
	if (c->blocking)
		c->thr = t;
	if (p && p->idle) {
		struct conn *k = p->idle;
		p->idle = k->next;
		p->nidle--;
		k->next = NULL;
		k->idle = 0;
		c->conn = k;
		call_send(s, c, t);
		return;
	}
	if (!p || p->n < p->k || p->idle_cap) {
		if (p)
			p->n++;
		c->conn = conn_new(s, c);
		if (!c->conn)
			return;
		do_connect(s, c, t);
		return;
	}
	/* every connection busy: queue; a blocking caller's thread waits */
	if (p->wait_tail)
		p->wait_tail->next = c;
	else
		p->wait_head = c;
	p->wait_tail = c;
	if (!c->blocking && t)
		caller_free(s, c, t);
}

static void client_close(struct sim *s, struct end *e, struct thr *t)
{
	struct conn *k = e->c;
	emit(s, e, t, TJ_EV_CLOSE, 0, 0, 0, NULL);
	if (e->node)
		proc_fd_free(e->proc, e->fd);
	e->closed = 1;
	uint64_t fin = s->now + one_way(s, e, &k->sv);
	if (fin < e->arrive_last)
		fin = e->arrive_last;
	sim_at(s, fin, fin_ev, &k->sv, 0);
}

/* A pooled connection idle for the pool's timeout is closed by the
 * client, as client pools and load balancers do; the pool may open a new
 * one later, with a new socket and offsets from 0. */
static void idle_timeout_ev(struct sim *s, void *obj, uint64_t epoch)
{
	struct conn *k = obj;
	struct pool *p = k->pool;
	k->timers--;
	if (k->cl.closed) { /* closed since (pool K idle-cap) */
		conn_free_if_done(k);
		return;
	}
	if (!k->idle || k->idle_epoch != epoch)
		return; /* used again since */
	struct conn **pp = &p->idle;
	while (*pp != k)
		pp = &(*pp)->next;
	*pp = k->next;
	p->nidle--;
	k->next = NULL;
	k->idle = 0;
	p->n--;
	client_close(s, &k->cl, p->closer);
}

static void reply_done_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct call *c = obj;
	c->done(s, c, arg_thr(arg));
}

/* Pipelined: the oldest call's reply was read. */
static void pipe_reply(struct sim *s, struct end *e, struct thr *t)
{
	struct conn *k = e->c;
	struct pool *p = k->pool;
	struct call *c = k->pq_head;
	k->pq_head = c->next;
	if (!k->pq_head)
		k->pq_tail = NULL;
	k->pq_n--;
	c->next = NULL;
	if (k->call == c) /* k->call names an outstanding call or none */
		k->call = k->pq_head;
	if (p->wait_head) { /* a slot is free: the first waiter takes it */
		struct call *w = p->wait_head;
		p->wait_head = w->next;
		if (!p->wait_head)
			p->wait_tail = NULL;
		w->next = NULL;
		exec_submit(s, w->ex, pipe_retry_ev, w);
	}
	if (k->pq_n)
		end_wait(s, e);
	c->done(s, c, t);
}

static void call_reply(struct sim *s, struct end *e, struct thr *t)
{
	struct conn *k = e->c;
	struct call *c = k->call;
	struct pool *p = k->pool;
	if (p && p->pipelined) {
		pipe_reply(s, e, t);
		return;
	}
	k->call = NULL;
	if (!p) {
		client_close(s, e, t);
	} else if (p->wait_head) {
		struct call *w = p->wait_head;
		p->wait_head = w->next;
		if (!p->wait_head)
			p->wait_tail = NULL;
		w->next = NULL;
		w->conn = k;
		struct exec *wx = k->cl_io ? k->cl_io : w->ex;
		if (p->chained && !w->blocking && w->node && t && t->ex == wx &&
		    wx->n == 1) {
			/* an event loop with a request queue per connection: the
			 * handler that read the reply writes the next request
			 * first, then goes on with the reply's own request */
			exec_push_front(s, wx, reply_done_ev, c);
			if (w->from && w->from->spec->has_cb_cost) /* node: the reply's parse */
				sim_at(s, s->now + svc_cb_cost(s, w->from), send_ev, w, thr_arg(t));
			else
				call_send(s, w, t);
			return;
		}
		if (w->blocking || !w->node)
			sim_at(s, s->now + sim_wake_ns(s, w->node), send_ev, w, thr_arg(w->thr));
		else
			exec_submit(s, w->ex, send_ev, w);
	} else if (p->idle_cap && p->nidle >= p->k) {
		/* nginx-style keepalive: K idle ones are kept, the rest closed */
		p->n--;
		client_close(s, e, t);
	} else {
		k->next = p->idle;
		p->idle = k;
		p->nidle++;
		k->idle = 1;
		k->idle_epoch++;
		if (p->idle_ns) {
			k->timers++;
			sim_at(s, s->now + p->idle_ns, idle_timeout_ev, k, k->idle_epoch);
		}
	}
	c->done(s, c, t);
}

/* End of the run: clients close their idle pooled connections (by the
 * pool's owner thread), servers see EOF and close theirs. */
void conns_close_idle(struct sim *s)
{
	for (struct pool *p = s->pools; p; p = p->next) {
		if (p->pipe && !p->pipe->pq_n && !p->pipe->cl.closed) {
			client_close(s, &p->pipe->cl, p->closer);
			p->pipe = NULL;
		}
		for (struct conn *k = p->idle; k; k = k->next) {
			k->idle = 0;
			client_close(s, &k->cl, p->closer);
		}
		p->idle = NULL;
		p->nidle = 0;
	}
}
