/* Synthetic message streams with known delay parameters for the
 * regression correlator's tests: one node, one service process receiving
 * requests (Poisson arrivals) and calling callees A (port 9000) and B
 * (port 9001) at lognormal delays, plus background calls; delivered in
 * ts_first order as the replay promises.  The truth is kept beside. */
#ifndef TEST_REGRESSION_SYNTH_H
#define TEST_REGRESSION_SYNTH_H

#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include "../../correlate/regression.h"

struct synth_spec {
	double rate;            /* requests per second */
	size_t requests;
	double a_mu, a_sd;      /* ln ns of the delay request last byte -> call A */
	double b_prob;          /* chance of a call B after A's reply */
	double b_mu, b_sd;      /* ln ns of the delay A reply -> call B */
	double call_ms;         /* call duration (uniform in [call_ms, 2 call_ms]) */
	double bg_rate;         /* background calls to A per second */
	uint32_t tid_override;  /* if nonzero, every tid field is this */
	unsigned long seed;
};

struct synth {
	struct tj_message *msg;
	size_t n, cap;
	/* truth per socket id: parent socket id + 1 for calls, 0 = none */
	uint64_t *parent_of;
	size_t nsock;
	size_t ncalls;
};

static inline struct tj_message *synth_add(struct synth *s)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->msg = realloc(s->msg, s->cap * sizeof(*s->msg));
	}
	struct tj_message *m = &s->msg[s->n++];
	memset(m, 0, sizeof(*m));
	m->key.node = 1;
	m->key.sock = ++s->nsock;
	m->is_request = 1;
	m->pid = 100;
	m->family = 2;
	m->laddr[0] = 10; m->laddr[3] = 1;
	m->nsyscalls = 1;
	m->bytes = 100;
	return m;
}

static inline void synth_call(struct synth *s, uint64_t t, uint16_t port,
			      double dur_ns, uint32_t tid)
{
	struct tj_message *c = synth_add(s);
	c->key.dir = TJ_DIR_OUT;
	c->role = TJ_ROLE_CLIENT;
	c->ts_first = t;
	c->ts_last = t + 5000;
	c->ts_reply = t + (uint64_t)dur_ns;
	c->rport = port;
	c->lport = (uint16_t)(40000 + s->nsock % 20000);
	c->raddr[0] = 10; c->raddr[3] = 2;
	c->tid_first = c->tid_last = c->tid_reply = tid;
	s->ncalls++;
}

static int synth_cmp(const void *a, const void *b)
{
	const struct tj_message *x = a, *y = b;
	if (x->ts_first != y->ts_first)
		return x->ts_first < y->ts_first ? -1 : 1;
	return x->key.sock < y->key.sock ? -1 : x->key.sock > y->key.sock;
}

static inline void synth_build(struct synth *s, const struct synth_spec *sp)
{
	memset(s, 0, sizeof(*s));
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(r, sp->seed);
	size_t cap_sock = sp->requests * 4 + 1024;
	s->parent_of = calloc(cap_sock, sizeof(*s->parent_of));
	double t = 1e9;
	for (size_t i = 0; i < sp->requests; i++) {
		t += gsl_ran_exponential(r, 1e9 / sp->rate);
		uint32_t tid = sp->tid_override ? sp->tid_override : (uint32_t)(1000 + i % 64);
		struct tj_message *q = synth_add(s);
		uint64_t qsock = q->key.sock;
		q->key.dir = TJ_DIR_IN;
		q->role = TJ_ROLE_SERVER;
		q->lport = 8080;
		q->rport = (uint16_t)(30000 + i % 30000);
		q->ts_first = (uint64_t)t;
		q->ts_last = (uint64_t)t + 50000;
		q->tid_first = q->tid_last = tid;
		double ta = (double)q->ts_last + gsl_ran_lognormal(r, sp->a_mu, sp->a_sd);
		double da = 1e6 * sp->call_ms * (1 + gsl_rng_uniform(r));
		synth_call(s, (uint64_t)ta, 9000, da, tid);
		s->parent_of[s->msg[s->n - 1].key.sock] = qsock + 1;
		double end = ta + da;
		if (gsl_rng_uniform(r) < sp->b_prob) {
			double tb = end + gsl_ran_lognormal(r, sp->b_mu, sp->b_sd);
			double db = 1e6 * sp->call_ms * (1 + gsl_rng_uniform(r));
			synth_call(s, (uint64_t)tb, 9001, db, tid);
			s->parent_of[s->msg[s->n - 1].key.sock] = qsock + 1;
			end = tb + db;
		}
		/* s->msg may have moved: find the request again by index */
		for (size_t k = s->n; k-- > 0;)
			if (s->msg[k].key.sock == qsock) {
				s->msg[k].ts_reply = (uint64_t)(end + gsl_ran_lognormal(r, log(2e5), 0.3));
				s->msg[k].tid_reply = tid;
				break;
			}
	}
	/* background calls to A over the same span */
	double tb = 1e9;
	while (sp->bg_rate > 0) {
		tb += gsl_ran_exponential(r, 1e9 / sp->bg_rate);
		if (tb >= t)
			break;
		synth_call(s, (uint64_t)tb, 9000, 1e6 * sp->call_ms,
			   sp->tid_override ? sp->tid_override : 7);
	}
	qsort(s->msg, s->n, sizeof(*s->msg), synth_cmp);
	gsl_rng_free(r);
}

static inline void synth_free(struct synth *s)
{
	free(s->msg);
	free(s->parent_of);
	memset(s, 0, sizeof(*s));
}

/* An edge sink that keeps every edge. */
struct edge_keep {
	struct tj_edge *e;
	size_t n, cap;
	int dup; /* a child emitted twice */
};

static inline int edge_keep_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct edge_keep *k = sink->ctx;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 1024;
		k->e = realloc(k->e, k->cap * sizeof(*k->e));
	}
	k->e[k->n++] = *e;
	return 0;
}

/* Run the correlator over s with params; returns the instance (closed by
 * the caller) or NULL on an error. */
static inline void *synth_run(const struct synth *s, const struct tj_params *p,
			      struct edge_keep *keep)
{
	const struct tj_correlator *c = &tj_correlator_regression;
	void *st = NULL;
	struct tj_err err = {0};
	struct tj_edge_sink sink = { edge_keep_emit, keep };
	memset(keep, 0, sizeof(*keep));
	if (c->open(&st, p, &err))
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (c->message(st, &s->msg[i], &sink, &err)) {
			c->close(st);
			return NULL;
		}
	if (c->finish(st, &sink, &err)) {
		c->close(st);
		return NULL;
	}
	return st;
}

/* Share of calls whose edge names the true parent (or none). */
static inline double synth_accuracy(const struct synth *s, const struct edge_keep *k)
{
	size_t right = 0;
	for (size_t i = 0; i < k->n; i++) {
		const struct tj_edge *e = &k->e[i];
		uint64_t truth = s->parent_of[e->child.sock];
		uint64_t got = e->has_parent ? e->parent.sock + 1 : 0;
		right += truth == got;
	}
	return s->ncalls ? (double)right / (double)s->ncalls : 0;
}

static inline const struct rg_edge *find_edge(const struct rg_state *st,
					      uint16_t port)
{
	for (size_t e = 0; e < st->model.nedge; e++)
		if (st->model.callee[st->model.edge[e].callee].port == port)
			return &st->model.edge[e];
	return NULL;
}

#endif
