/* A generator run from start to end: open one evlog per node and the
 * labels, set up services, start root arrivals (open or closed loop) and
 * background noise, run the event queue dry, close idle connections, and
 * finish the files. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "gen_sim.h"

/* True time 0 is 2026-01-01T00:00:00Z on a correct wall clock. */
#define GEN_EPOCH_NS 1767225600000000000ull

struct bgrun {
	struct sim *s;
	const struct gen_background *b;
	int idx;
	struct proc *proc;   /* GB_NODE: the agent's own process */
	struct exec *ex;     /* its one thread (NULL: external) */
	struct svcrun *owner;
	struct pool *pool;
	struct noderun *node;
};

static void root_arrive_ev(struct sim *s, void *obj, uint64_t arg);

static int open_node(struct sim *s, int i)
{
	const struct gen_node_spec *ns = &s->spec->nodes[i];
	struct noderun *n = &s->nodes[i];
	n->spec = ns;
	n->id = ns->id;
	n->rate = 1 + ns->drift_ppm * 1e-6;
	/* monotonic clocks count from boot: each node booted at its own time */
	n->mono_base = floor(sim_uniform(s, 3600, 30 * 86400)) * 1e9 +
		       floor(sim_uniform(s, 0, 1e9));
	n->next_sock = 20000 + (uint64_t)sim_uniform(s, 0, 80000);
	n->next_pid = 400 + (uint32_t)sim_uniform(s, 0, 3000);
	n->next_port = 32768 + (uint32_t)sim_uniform(s, 0, 28000);
	if (ns->loss > 0) /* bursts start so that the lost share is ns->loss */
		n->loss_start = ns->loss / (ns->burst * (1 - ns->loss));
	struct tj_evlog_header h;
	memset(&h, 0, sizeof(h));
	h.node = ns->id;
	snprintf(h.hostname, sizeof(h.hostname), "%s", ns->name);
	snprintf(h.kernel, sizeof(h.kernel), "synthetic");
	h.clock_mono_ns = (uint64_t)n->mono_base;
	h.clock_real_ns = (uint64_t)((double)GEN_EPOCH_NS + ns->clock_offset_ns);
	h.capture_flags = TJ_CAP_SYNTHETIC | (s->opts->stacks ? TJ_CAP_STACKS : 0);
	tj_stacks_init(&n->stacks);
	tj_u64map_init(&n->site_ids);
	tj_u64map_init(&n->site_maps);
	snprintf(h.options, sizeof(h.options), "%s", s->opts->options ? s->opts->options : "");
	if (ns->uncaptured)
		return 0; /* it runs, but no log: n->w stays NULL */
	char path[4096];
	snprintf(path, sizeof(path), "%s/node-%u.evlog", s->opts->dir, ns->id);
	if (tj_evlog_create(&n->w, path, &h, s->opts->force ? TJ_EVLOG_FORCE : 0, s->err) < 0) {
		n->w = NULL;
		return -1;
	}
	return 0;
}

/* ---- roots ---- */

static void root_done(struct sim *s, struct call *c, struct thr *t)
{
	(void)t;
	s->roots_open--;
	if (s->spec->arrival == GA_CLOSED && !s->stopping)
		sim_at(s, s->now + (uint64_t)gen_dist_sample(&s->spec->think, s->rng),
		       root_arrive_ev, NULL, 1);
	sim_obj_free(c);
}

static void issue_root(struct sim *s)
{
	struct call *c = sim_obj_new(s, sizeof(*c));
	if (!c)
		return;
	c->to = &s->svcs[s->spec->entry_svc];
	c->ep = svc_pick_endpoint(s, c->to, s->spec->entry_ep);
	c->pool = s->entry_pool;
	c->blocking = 1;
	c->kind = CALL_ROOT;
	c->ext_client = (uint32_t)gsl_rng_uniform_int(s->rng, (unsigned long)s->spec->entry_clients);
	c->done = root_done;
	s->st->roots++;
	s->roots_open++;
	if (s->roots_target && s->st->roots >= s->roots_target)
		s->stopping = 1;
	call_start(s, c, NULL);
}

/* arg 0: open loop (schedules the next arrival); 1: a closed-loop client */
static void root_arrive_ev(struct sim *s, void *obj, uint64_t arg)
{
	(void)obj;
	if (s->stopping)
		return;
	if (s->stop_ns && s->now >= s->stop_ns) {
		s->stopping = 1;
		return;
	}
	issue_root(s);
	if (arg == 0 && !s->stopping) {
		double gap = 1e9 / s->opts->rate;
		if (s->spec->arrival == GA_POISSON)
			gap = gsl_ran_exponential(s->rng, gap);
		sim_at(s, s->now + (uint64_t)gap + 1, root_arrive_ev, NULL, 0);
	}
}

/* ---- background noise ---- */

static void bg_tick_ev(struct sim *s, void *obj, uint64_t arg);

static void bg_done(struct sim *s, struct call *c, struct thr *t)
{
	struct bgrun *b = c->ctx;
	(void)t;
	sim_obj_free(c);
	if (!s->stopping)
		sim_at(s, s->now + (uint64_t)gen_dist_sample(&b->b->every, s->rng) + 1,
		       bg_tick_ev, b, 0);
}

static void bg_tick_ev(struct sim *s, void *obj, uint64_t arg)
{
	struct bgrun *b = obj;
	(void)arg;
	if (s->stopping)
		return;
	struct call *c = sim_obj_new(s, sizeof(*c));
	if (!c)
		return;
	c->to = &s->svcs[b->b->svc];
	c->ep = svc_pick_endpoint(s, c->to, b->b->ep);
	c->pool = b->pool;
	c->blocking = 1;
	c->kind = CALL_BACKGROUND;
	c->done = bg_done;
	c->ctx = b;
	c->from = b->owner;
	c->proc = b->proc;
	c->node = b->node;
	c->ext_client = 200 + (uint32_t)b->idx;
	if (c->node) {
		s->st->calls++;
		s->st->background++;
	}
	call_start(s, c, b->ex ? &b->ex->thr[0] : NULL);
}

static int setup_background(struct sim *s, struct bgrun *runs)
{
	const struct gen_spec *sp = s->spec;
	for (int i = 0; i < sp->nbg; i++) {
		const struct gen_background *g = &sp->bg[i];
		struct bgrun *b = &runs[i];
		b->s = s;
		b->b = g;
		b->idx = i;
		switch (g->where) {
		case GB_SERVICE: /* a timer thread inside the service's process */
			b->owner = &s->svcs[g->owner];
			b->node = b->owner->node;
			b->proc = b->owner->proc;
			break;
		case GB_NODE: /* an agent process of its own */
			b->node = &s->nodes[g->owner];
			b->proc = proc_new(s, b->node);
			if (!b->proc)
				return -1;
			break;
		default:
			break;
		}
		if (b->proc) {
			b->ex = exec_new(s, b->proc, 1, g->where == GB_NODE);
			if (!b->ex)
				return -1;
			b->ex->nfree = 0; /* the thread is the timer's, always */
		}
		if (g->policy != GP_NEW) {
			b->pool = pool_new(s, g->policy, g->k, 0);
			if (!b->pool)
				return -1;
			b->pool->closer = b->ex ? &b->ex->thr[0] : NULL;
		}
		sim_at(s, (uint64_t)sim_uniform(s, 0, gen_dist_mean(&g->every)),
		       bg_tick_ev, b, 0);
	}
	return 0;
}

static void free_all(struct sim *s, struct bgrun *bg)
{
	const struct gen_spec *sp = s->spec;
	for (int i = 0; i < sp->nservices; i++) {
		struct svcrun *r = &s->svcs[i];
		if (!r->spec)
			continue;
		int shared_acceptor = r->acceptor == r->workers ||
				      (r->loops && r->acceptor == r->loops[0]);
		if (!shared_acceptor)
			exec_free(r->acceptor);
		for (int l = 0; r->loops && l < r->nloops; l++)
			exec_free(r->loops[l]);
		free(r->loops);
		exec_free(r->workers);
		exec_free(r->executor);
		free(r->pools);
		proc_free(r->proc);
	}
	for (int i = 0; bg && i < sp->nbg; i++) {
		exec_free(bg[i].ex);
		if (sp->bg[i].where == GB_NODE)
			proc_free(bg[i].proc);
	}
	while (s->pools) {
		struct pool *p = s->pools;
		s->pools = p->next;
		free(p);
	}
	free(s->heap);
	free(bg);
	sim_obj_free_all(s);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A run longer than 2 s says how far it is, once a second (on a terminal:
 * the line is rewritten in place). */
static void progress(struct sim *s, double *next, int *shown)
{
	double now = mono_s();
	if (now < *next)
		return;
	*next = now + 1;
	*shown = 1;
	if (s->roots_target)
		fprintf(stderr, "\rgen: %llu of %llu roots, %llu events ",
			(unsigned long long)s->st->roots,
			(unsigned long long)s->roots_target,
			(unsigned long long)s->st->events);
	else
		fprintf(stderr, "\rgen: %.1f of %.1f s simulated, %llu events ",
			(double)s->now / 1e9, s->opts->duration_s,
			(unsigned long long)s->st->events);
}

static void run_queue(struct sim *s)
{
	struct sim_ev ev;
	double next = s->opts->progress ? mono_s() + 2 : 0;
	int shown = 0;
	for (unsigned long n = 0; !s->failed && sim_pop(s, &ev); n++) {
		ev.fn(s, ev.obj, ev.arg);
		if (next > 0 && (n & 0xffff) == 0)
			progress(s, &next, &shown);
	}
	if (shown)
		fputc('\n', stderr);
}

int gen_run(const struct gen_spec *spec, const struct gen_opts *o,
	    struct gen_stats *st, struct tj_err *err)
{
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return tj_errf(err, TJ_E_NOMEM, "gen: out of memory");
	memset(st, 0, sizeof(*st));
	s->spec = spec;
	s->opts = o;
	s->err = err;
	s->st = st;
	s->rng = gsl_rng_alloc(gsl_rng_taus2);
	int rc = 0;
	struct bgrun *bg = NULL;
	if (!s->rng) {
		free(s);
		return tj_errf(err, TJ_E_NOMEM, "gen: out of memory");
	}
	gsl_rng_set(s->rng, o->seed);
	s->roots_target = o->requests;
	s->stop_ns = o->duration_s > 0 ? (uint64_t)(o->duration_s * 1e9) : 0;
	for (int i = 0; i < 256; i++)
		s->ext_port[i] = 32768 + (uint32_t)sim_uniform(s, 0, 28000);
	for (int i = 0; i < spec->nnodes && !s->failed; i++)
		if (open_node(s, i) < 0)
			s->failed = 1;
	char path[4096];
	snprintf(path, sizeof(path), "%s/labels.csv", o->dir);
	if (!s->failed && tj_edges_writer_open(&s->labels, path,
						 s->opts->force ? TJ_OUT_FORCE : 0, NULL, 0, err) < 0)
		s->failed = 1;
	int labels_open = !s->failed;
	for (int i = 0; i < spec->nservices && !s->failed; i++)
		if (svc_setup(s, &s->svcs[i], i) < 0)
			s->failed = 1;
	if (!s->failed && spec->entry_policy == GP_POOL) {
		s->entry_pool = pool_new(s, GP_POOL, spec->entry_k, (uint64_t)spec->entry_idle_ns);
		if (!s->entry_pool)
			s->failed = 1;
	}
	if (!s->failed && spec->nbg) {
		bg = calloc((size_t)spec->nbg, sizeof(*bg));
		if (!bg || setup_background(s, bg) < 0)
			s->failed = 1;
	}
	if (!s->failed) {
		if (spec->arrival == GA_CLOSED) {
			int clients = (int)(o->rate + 0.5);
			if (clients < 1)
				clients = 1;
			for (int i = 0; i < clients; i++)
				sim_at(s, (uint64_t)sim_uniform(s, 0, gen_dist_mean(&spec->think) + 1e6),
				       root_arrive_ev, NULL, 1);
		} else {
			sim_at(s, (uint64_t)sim_uniform(s, 0, 1e9 / o->rate), root_arrive_ev, NULL, 0);
		}
		run_queue(s);
		s->stopping = 1;
		conns_close_idle(s);
		run_queue(s);
		st->sim_ns = s->now;
	}
	if (!s->failed && emit_finish(s) < 0)
		s->failed = 1;
	if (!s->failed && o->stacks && emit_stacks(s) < 0)
		s->failed = 1;
	if (s->failed && !err->code)
		tj_errf(err, TJ_E_IO, "gen: failed");
	/* close everything, keeping the first error */
	for (int i = 0; i < spec->nnodes; i++) {
		if (!s->nodes[i].w)
			continue;
		if (s->failed) /* a half-made dataset is not kept */
			tj_evlog_abort(s->nodes[i].w);
		else if (tj_evlog_close(s->nodes[i].w, err) < 0)
			s->failed = 1;
	}
	if (labels_open && s->failed)
		tj_edges_writer_abort(&s->labels);
	else if (labels_open && tj_edges_writer_close(&s->labels, err) < 0)
		s->failed = 1;
	rc = s->failed ? -(err->code ? err->code : TJ_E_IO) : 0;
	for (int i = 0; i < spec->nnodes; i++) {
		tj_stacks_free(&s->nodes[i].stacks);
		tj_u64map_free(&s->nodes[i].site_ids);
		tj_u64map_free(&s->nodes[i].site_maps);
	}
	free_all(s, bg);
	gsl_rng_free(s->rng);
	free(s);
	return rc;
}
