/* Request handling under each concurrency model.  What differs between
 * models is which thread does each syscall, which is what correlators
 * that lean on thread identity must cope with:
 *
 *  thread     the main thread accepts; each connection gets a new thread
 *             that reads, calls downstream (blocking) and writes the
 *             reply; parallel calls run on an executor pool.
 *  pool       an acceptor, I/O threads that read requests, and a worker
 *             pool they hand requests to: the worker calls downstream
 *             (blocking) and writes the reply.  Reader != caller.
 *  async      N event loops; a connection belongs to one loop, which does
 *             everything for it, interleaving many requests; replies on a
 *             downstream connection are read by the loop that opened it.
 *  coroutine  a small thread pool runs coroutines; after every wait a
 *             coroutine resumes on whichever thread is free.
 *  node       async with one loop whose handler issues every call itself,
 *             at once, one after another (Node.js http.request through an
 *             agent): a parallel step's calls are not loop tasks.
 *  goroutine  coroutine on M threads as Go's net/http runs it: a task
 *             that finds threads free runs on one at random, a call is
 *             written by a task of its own (the connection's writeLoop)
 *             and a reply's request resumes as a task of its own (woken
 *             by the readLoop that read it), so the thread that writes a
 *             call is seldom the one that read its request. */
#include <stdlib.h>
#include "gen_sim.h"

static void job_next(struct sim *s, struct job *j);
static void release_ev(struct sim *s, void *obj, uint64_t arg);

uint64_t svc_cb_cost(struct sim *s, const struct svcrun *r)
{
	if (!r || !r->spec->has_cb_cost)
		return 0;
	double d = gen_dist_sample(&r->spec->cb_cost, s->rng);
	return (uint64_t)(d < GEN_MAX_WAKE_NS ? d : GEN_MAX_WAKE_NS);
}

static int model_is_loop(unsigned m)
{
	return m == GM_ASYNC || m == GM_NODE;
}

static int model_is_coroutine(unsigned m)
{
	return m == GM_COROUTINE || m == GM_GOROUTINE;
}

const struct gen_endpoint *svc_pick_endpoint(struct sim *s, struct svcrun *to, int ep)
{
	const struct gen_spec *sp = s->spec;
	if (ep >= 0)
		return &sp->eps[ep];
	const struct gen_service *sv = to->spec;
	double u = gsl_rng_uniform(s->rng) * sv->ep_weight;
	for (int i = 0; i < sv->neps; i++) {
		u -= sp->eps[sv->eps[i]].weight;
		if (u < 0)
			return &sp->eps[sv->eps[i]];
	}
	return &sp->eps[sv->eps[sv->neps - 1]];
}

static struct pool *svc_pool(struct sim *s, struct svcrun *from, struct svcrun *to)
{
	if (from->pools[to->idx])
		return from->pools[to->idx];
	const struct gen_policy_spec *ps = gen_spec_policy(s->spec, from->idx, to->idx);
	if (!ps || ps->policy == GP_NEW)
		return NULL;
	struct pool *p = pool_new(s, ps->policy, ps->k, (uint64_t)ps->idle_ns);
	if (p) {
		p->closer = &from->acceptor->thr[0];
		p->idle_cap = ps->idle_cap;
		p->chained = ps->chained;
		p->pipelined = ps->pipelined;
	}
	from->pools[to->idx] = p;
	return p;
}

/* A loop stall: the thread is held for a `stall` sample, then free. */
static void stall_run_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct svcrun *r = obj;
	uint64_t d = (uint64_t)gen_dist_sample(&r->spec->stall, s->rng);
	if (d > GEN_MAX_WAKE_NS)
		d = (uint64_t)GEN_MAX_WAKE_NS;
	sim_at(s, s->now + d, release_ev, NULL, arg);
}

/* Every loop of the service stalls, as soon as it is done with the task
 * it runs (a GC or a descheduling comes between callbacks); the next
 * stall is due `stall-every` after this one.  None once arrivals end. */
static void stall_due_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct svcrun *r = obj;
	(void)arg;
	if (s->stopping)
		return;
	for (int i = 0; i < r->nloops; i++) {
		if (r->loops[i]->nfree) /* idle: it stalls now */
			exec_submit(s, r->loops[i], stall_run_ev, r);
		else /* busy: next, ahead of the callbacks waiting */
			exec_push_front(s, r->loops[i], stall_run_ev, r);
	}
	sim_at(s, s->now + 1 + (uint64_t)gen_dist_sample(&r->spec->stall_every, s->rng),
	       stall_due_ev, r, 0);
}

int svc_setup(struct sim *s, struct svcrun *r, int idx)
{
	const struct gen_service *sv = &s->spec->services[idx];
	r->spec = sv;
	r->idx = idx;
	r->node = &s->nodes[sv->node];
	r->proc = proc_new(s, r->node);
	r->pools = sim_alloc(s, GEN_MAX_SERVICES * sizeof(*r->pools));
	if (!r->proc || !r->pools)
		return -1;
	r->blocking = sv->model == GM_THREAD || sv->model == GM_POOL;
	switch (sv->model) {
	case GM_THREAD:
		r->acceptor = exec_new(s, r->proc, 1, 1);
		r->executor = exec_new(s, r->proc, sv->executor, 0);
		break;
	case GM_POOL:
		r->acceptor = exec_new(s, r->proc, 1, 1);
		r->nloops = sv->io_threads;
		break;
	case GM_ASYNC:
	case GM_NODE:
		r->nloops = sv->threads;
		break;
	case GM_COROUTINE:
	case GM_GOROUTINE:
		r->workers = exec_new(s, r->proc, sv->threads, 1);
		if (r->workers)
			r->workers->pick_random = sv->model == GM_GOROUTINE;
		r->acceptor = r->workers;
		break;
	}
	if (r->nloops) {
		r->loops = sim_alloc(s, (size_t)r->nloops * sizeof(*r->loops));
		if (!r->loops)
			return -1;
		for (int i = 0; i < r->nloops; i++)
			if (!(r->loops[i] = exec_new(s, r->proc, 1, model_is_loop(sv->model) && i == 0)))
				return -1;
		if (model_is_loop(sv->model))
			r->acceptor = r->loops[0];
	}
	if (sv->model == GM_POOL) {
		r->workers = exec_new(s, r->proc, sv->threads, 0);
		r->executor = exec_new(s, r->proc, sv->executor, 0);
	}
	if (!r->acceptor || (!model_is_loop(sv->model) && !r->executor &&
			     !model_is_coroutine(sv->model)))
		return -1;
	if (sv->has_stall)
		sim_at(s, 1 + (uint64_t)gen_dist_sample(&sv->stall_every, s->rng), stall_due_ev, r, 0);
	return 0;
}

static void server_msg(struct sim *s, struct end *e, struct thr *t)
{
	svc_request(s, e->c, t);
}

void svc_reader(struct sim *s, struct conn *k)
{
	k->sv.on_msg = server_msg;
	end_wait(s, &k->sv);
}

static void release_ev(struct sim *s, void *obj, uint64_t arg)
{
	(void)obj;
	exec_release(s, arg_thr(arg));
}

void svc_accepted(struct sim *s, struct conn *k, struct thr *t)
{
	struct svcrun *r = k->callee;
	struct end *e = &k->sv;
	switch (r->spec->model) {
	case GM_THREAD: /* spawn the connection's thread; it blocks in read */
		k->own = exec_new(s, r->proc, 1, 0);
		if (!k->own)
			return;
		e->rd_thr = k->own->free[--k->own->nfree];
		break;
	case GM_POOL:
	case GM_ASYNC:
	case GM_NODE:
		e->rd_ex = r->loops[r->next_loop++ % r->nloops];
		break;
	case GM_COROUTINE:
	case GM_GOROUTINE:
		e->rd_ex = r->workers;
		break;
	}
	sim_at(s, s->now + sim_syscall_ns(s, 0), release_ev, NULL, thr_arg(t));
	svc_reader(s, k);
}

static void job_resume_ev(struct sim *s, void *obj, uint64_t arg)
{
	(void)arg;
	job_next(s, obj);
}

static void job_take_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct job *j = obj;
	j->thr = arg_thr(arg);
	job_next(s, j);
}

void svc_request(struct sim *s, struct conn *k, struct thr *t)
{
	struct svcrun *r = k->callee;
	struct job *j = sim_obj_new(s, sizeof(*j));
	if (!j)
		return;
	j->svc = r;
	if (k->pool && k->pool->pipelined) { /* requests are served in order */
		j->ep = k->pq_server->ep;
		k->pq_server = k->pq_server->next;
	} else {
		j->ep = k->call->ep;
	}
	j->conn = k;
	j->step = j->ep->first;
	j->end_step = j->ep->first + j->ep->n;
	j->req_kept = k->sv.req_kept;
	j->req_obs_off = k->sv.req_obs_off;
	k->job = j;
	switch (r->spec->model) {
	case GM_THREAD:
		j->thr = t;
		break;
	case GM_POOL: /* the I/O thread hands the request to a worker */
		sim_at(s, s->now + sim_syscall_ns(s, 0), release_ev, NULL, thr_arg(t));
		exec_submit(s, r->workers, job_take_ev, j);
		return;
	case GM_ASYNC:
	case GM_NODE:
		j->thr = t;
		j->ex = t->ex;
		break;
	case GM_COROUTINE:
	case GM_GOROUTINE:
		j->thr = t;
		j->ex = r->workers;
		break;
	}
	sim_at(s, s->now + (uint64_t)sim_uniform(s, 2000, 20000) + svc_cb_cost(s, r),
	       job_resume_ev, j, 0);
}

static void responded_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct job *j = obj;
	struct conn *k = j->conn;
	struct thr *t = arg_thr(arg);
	k->job = NULL;
	if (j->svc->spec->model != GM_THREAD)
		exec_release(s, t); /* the connection's own thread keeps reading */
	sim_obj_free(j);
	svc_reader(s, k);
}

static void respond(struct sim *s, struct job *j)
{
	struct conn *k = j->conn;
	uint64_t size = (uint64_t)gen_dist_sample(&j->ep->resp, s->rng);
	if (size < 16)
		size = 16;
	if (size > GEN_MAX_MESSAGE)
		size = GEN_MAX_MESSAGE;
	if (k->pool && k->pool->pipelined)
		end_expect(&k->cl, size); /* after the replies still unread */
	else
		k->cl.rx_left = size;
	end_send(s, &k->sv, j->thr, size, j->svc->spec->write_chunk,
		 j->svc->spec->write_split, responded_ev, j);
}

static struct call *new_call(struct sim *s, struct job *j, const struct gen_step *st)
{
	struct call *c = sim_obj_new(s, sizeof(*c));
	if (!c)
		return NULL;
	struct svcrun *to = &s->svcs[st->svc];
	c->parent = j;
	c->job = j;
	c->from = j->svc;
	c->proc = j->svc->proc;
	c->node = j->svc->node;
	c->to = to;
	c->ep = svc_pick_endpoint(s, to, st->ep);
	c->pool = svc_pool(s, j->svc, to);
	c->blocking = j->svc->blocking;
	c->ex = j->ex;
	c->kind = CALL_SERVICE;
	c->step = (int)(st - s->spec->steps);
	s->st->calls++;
	return c;
}

/* A single call's reply was read on thread t. */
static void call_done(struct sim *s, struct call *c, struct thr *t)
{
	struct job *j = c->job;
	sim_obj_free(c);
	if (!j->svc->blocking) {
		/* read on another loop: hop back; goroutine: the readLoop
		 * wakes the request's goroutine, which runs as a task */
		if (t->ex != j->ex || j->svc->spec->model == GM_GOROUTINE) {
			exec_release(s, t);
			exec_submit(s, j->ex, job_take_ev, j);
			return;
		}
		j->thr = t;
	}
	sim_at(s, s->now + (uint64_t)sim_uniform(s, 2000, 20000) + svc_cb_cost(s, j->svc),
	       job_resume_ev, j, 0);
}

/* Parallel calls of a blocking service run on its executor threads while
 * the request's thread waits to join them. */
static void par_blocking_done(struct sim *s, struct call *c, struct thr *t)
{
	struct job *j = c->job;
	sim_obj_free(c);
	exec_release(s, t);
	if (--j->pending == 0)
		sim_at(s, s->now + sim_wake_ns(s, j->svc->node), job_resume_ev, j, 0);
}

/* inline-first: the request's own thread made this call, and waits on
 * (or, being the last, goes on) once it is done. */
static void par_inline_done(struct sim *s, struct call *c, struct thr *t)
{
	struct job *j = c->job;
	(void)t;
	sim_obj_free(c);
	if (--j->pending == 0)
		sim_at(s, s->now + (uint64_t)sim_uniform(s, 2000, 20000), job_resume_ev, j, 0);
}

static void par_nonblocking_done(struct sim *s, struct call *c, struct thr *t)
{
	struct job *j = c->job;
	if (--j->pending == 0) {
		call_done(s, c, t);
		return;
	}
	sim_obj_free(c);
	exec_release(s, t);
}

static void par_start_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct call *c = obj;
	call_start(s, c, arg_thr(arg));
}

/* The request's thread t issues call c: a goroutine hands it to the
 * connection's writer (a task of its own, on whichever thread) and lets
 * t go; every other model writes it on t. */
static void issue_call(struct sim *s, struct job *j, struct call *c, struct thr *t)
{
	if (j->svc->spec->model == GM_GOROUTINE) {
		exec_release(s, t);
		exec_submit(s, j->ex, par_start_ev, c);
		return;
	}
	if (j->svc->spec->has_cb_cost) { /* node: http.request() runs first */
		sim_at(s, s->now + svc_cb_cost(s, j->svc), par_start_ev, c, thr_arg(t));
		return;
	}
	call_start(s, c, t);
}

/* node: the handler issues the calls itself, in order, on its thread;
 * each is written (or queued by the agent, or connecting) before the
 * next is issued. */
static void start_parallel_inline(struct sim *s, struct job *j, struct call **calls, int n)
{
	for (int i = 0; i < n; i++) {
		calls[i]->done = par_nonblocking_done;
		calls[i]->inline_issue = 1;
		calls[i]->issue_next = i + 1 < n ? calls[i + 1] : NULL;
	}
	struct thr *t = j->thr;
	j->thr = NULL;
	sim_at(s, s->now + svc_cb_cost(s, j->svc), par_start_ev, calls[0], thr_arg(t));
}

static void start_parallel(struct sim *s, struct job *j, const struct gen_step *st)
{
	const struct gen_spec *sp = s->spec;
	struct call *calls[GEN_MAX_STEPS];
	int n = 0;
	for (int i = 0; i < st->n; i++) {
		const struct gen_step *cs = &sp->steps[st->first + i];
		if (cs->prob < 1 && gsl_rng_uniform(s->rng) >= cs->prob)
			continue;
		struct call *c = new_call(s, j, cs);
		if (!c)
			return;
		calls[n++] = c;
	}
	if (n == 0) {
		job_next(s, j);
		return;
	}
	j->pending = n;
	if (j->svc->spec->model == GM_NODE) {
		start_parallel_inline(s, j, calls, n);
		return;
	}
	/* inline-first: the others are handed out first, then the request's
	 * thread makes calls[0] itself, as a caller that spawns helpers for
	 * all but one call does */
	int inl = st->inline_first;
	for (int i = inl; i < n; i++) {
		struct call *c = calls[i];
		if (j->svc->blocking) {
			c->done = par_blocking_done;
			exec_submit(s, j->svc->executor, par_start_ev, c);
		} else {
			/* a loop issues them one after another as queued tasks;
			 * coroutines spread over the free threads */
			c->done = par_nonblocking_done;
			exec_submit(s, j->ex, par_start_ev, c);
		}
	}
	if (inl) {
		struct thr *t = j->thr;
		if (j->svc->blocking) {
			calls[0]->done = par_inline_done;
		} else {
			calls[0]->done = par_nonblocking_done;
			j->thr = NULL; /* call_start releases it once the request is sent */
		}
		issue_call(s, j, calls[0], t);
	} else if (!j->svc->blocking) {
		exec_release(s, j->thr);
		j->thr = NULL;
	}
}

/* A `wait` ended: the request goes back to its executor's queue. */
static void wait_done_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct job *j = obj;
	(void)arg;
	exec_submit(s, j->ex, job_take_ev, j);
}

static void job_next(struct sim *s, struct job *j)
{
	const struct gen_spec *sp = s->spec;
	while (j->step < j->end_step) {
		const struct gen_step *st = &sp->steps[j->step];
		if (st->kind == GS_WORK) {
			j->step++;
			uint64_t d = (uint64_t)gen_dist_sample(&st->work, s->rng);
			d += sim_sched_ns(s, j->svc->node);
			sim_at(s, s->now + d, job_resume_ev, j, 0);
			return;
		}
		if (st->kind == GS_WAIT) {
			/* a timer or an outside event: a blocking thread sleeps
			 * through it (as `work`), a loop or coroutine thread is
			 * free meanwhile and the request is queued when it ends */
			j->step++;
			uint64_t d = (uint64_t)gen_dist_sample(&st->work, s->rng);
			if (j->svc->blocking) {
				d += sim_sched_ns(s, j->svc->node);
				sim_at(s, s->now + d, job_resume_ev, j, 0);
			} else {
				exec_release(s, j->thr);
				j->thr = NULL;
				sim_at(s, s->now + d, wait_done_ev, j, 0);
			}
			return;
		}
		if (st->kind == GS_CALL) {
			j->step++;
			if (st->prob < 1 && gsl_rng_uniform(s->rng) >= st->prob)
				continue;
			struct call *c = new_call(s, j, st);
			if (!c)
				return;
			c->done = call_done;
			struct thr *t = j->thr;
			if (!j->svc->blocking)
				j->thr = NULL; /* released once the request is sent */
			issue_call(s, j, c, t);
			return;
		}
		j->step += 1 + st->n;
		start_parallel(s, j, st);
		return;
	}
	respond(s, j);
}
