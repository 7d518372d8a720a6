/* The regression correlator's table: params, in-flight requests per node,
 * the learning buffer and the stream of decisions.  It reads timing,
 * process ids and addresses only, never thread ids (REGRESSION.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "regression.h"
#include "../lib/util.h"

#define ACTIVE_MAX 4096 /* in-flight requests kept per node */

static const char *const known_params[] = {
	"learn", "window", "batch", "max_candidates", "horizon", "iters", "screen",
	"density", "ends", "same_pid", "slots", "joint", "chain", "explain",
	NULL
};

static int param_uint(const struct tj_params *p, const char *key, size_t def,
		      size_t lo, size_t hi, size_t *out, struct tj_err *err)
{
	double v;
	int rc = tj_param_double(p, key, (double)def, &v, err);
	if (rc)
		return rc;
	if (!(v >= (double)lo && v <= (double)hi) || v != floor(v))
		return tj_errf(err, TJ_E_ARG,
			       "regression: param %s=%s: want a whole number in [%zu, %zu]",
			       key, tj_param_str(p, key, ""), lo, hi);
	*out = (size_t)v;
	return 0;
}

static int param_ms(const struct tj_params *p, const char *key, double def,
		    double *ns, struct tj_err *err)
{
	double v;
	int rc = tj_param_double(p, key, def, &v, err);
	if (rc)
		return rc;
	if (!(v > 0 && v <= 3.6e6))
		return tj_errf(err, TJ_E_ARG,
			       "regression: param %s=%s: want milliseconds in (0, 3600000]",
			       key, tj_param_str(p, key, ""));
	*ns = v * 1e6;
	return 0;
}

static int param_bool(const struct tj_params *p, const char *key, int def,
		      int *out, struct tj_err *err)
{
	size_t v;
	int rc = param_uint(p, key, (size_t)def, 0, 1, &v, err);
	*out = (int)v;
	return rc;
}

static int parse_params(struct rg_params *r, const struct tj_params *p,
			struct tj_err *err)
{
	int rc;
	size_t iters;
	if ((rc = tj_params_check(p, known_params, "regression", err)) ||
	    (rc = param_uint(p, "learn", 20000, 1, 10000000, &r->learn, err)) ||
	    (rc = param_ms(p, "window", 20, &r->window_ns, err)) ||
	    (rc = param_uint(p, "batch", 32, 1, 512, &r->batch, err)) ||
	    (rc = param_uint(p, "max_candidates", 16, 1, 256, &r->max_cand, err)) ||
	    (rc = param_ms(p, "horizon", 1000, &r->horizon_ns, err)) ||
	    (rc = param_uint(p, "iters", 50, 1, 10000, &iters, err)) ||
	    (rc = param_uint(p, "screen", 2000, 0, 10000000, &r->screen, err)) ||
	    (rc = param_bool(p, "ends", 1, &r->ends, err)) ||
	    (rc = param_bool(p, "same_pid", 1, &r->same_pid, err)) ||
	    (rc = param_bool(p, "slots", 1, &r->slots, err)) ||
	    (rc = param_bool(p, "joint", 1, &r->joint, err)) ||
	    (rc = param_bool(p, "chain", 1, &r->chain, err)) ||
	    (rc = param_bool(p, "explain", 0, &r->explain, err)))
		return rc;
	r->iters = (int)iters;
	const char *d = tj_param_str(p, "density", "hist");
	if (strcmp(d, "hist") == 0)
		r->density = RG_DENSITY_HIST;
	else if (strcmp(d, "lognormal") == 0)
		r->density = RG_DENSITY_LOGNORMAL;
	else
		return tj_errf(err, TJ_E_ARG,
			       "regression: param density=%s: want hist or lognormal", d);
	return 0;
}

static void callbuf_free(struct rg_callbuf *b)
{
	free(b->call);
	free(b->cand);
	memset(b, 0, sizeof(*b));
}

static int rg_open(void **stp, const struct tj_params *p, struct tj_err *err)
{
	struct rg_state *st = calloc(1, sizeof(*st));
	if (!st)
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
	int rc = parse_params(&st->par, p, err);
	if (rc) {
		free(st);
		return rc;
	}
	rg_model_init(&st->model, &st->par);
	tj_u64map_init(&st->node_map);
	st->free_head = RG_NONE;
	st->learning = 1;
	*stp = st;
	return 0;
}

static void rg_close(void *vst)
{
	struct rg_state *st = vst;
	if (!st)
		return;
	for (size_t i = 0; i < st->npool; i++)
		free(st->pool[i].used);
	free(st->pool);
	for (size_t i = 0; i < st->nnode; i++) {
		free(st->node[i].active);
		callbuf_free(&st->node[i].pend);
	}
	free(st->node);
	callbuf_free(&st->learnbuf);
	free(st->scratch);
	for (int i = 0; i < RG_SCR__N; i++)
		free(st->scr[i]);
	tj_u64map_free(&st->node_map);
	rg_model_free(&st->model);
	free(st);
}

int rg_emit(struct tj_edge_sink *out, const struct tj_msgkey *child,
	    const struct tj_msgkey *parent, double score, struct tj_err *err)
{
	struct tj_edge e;
	memset(&e, 0, sizeof(e));
	e.child = *child;
	if (parent) {
		e.parent = *parent;
		e.has_parent = 1;
	}
	e.score = score < 0 ? 0 : score > 1 ? 1 : score;
	int rc = out->emit(out, &e);
	if (rc < 0) {
		char k[TJ_MSGKEY_STRLEN];
		return tj_errf(err, TJ_E_IO, "regression: emitting the edge of %s failed",
			       tj_msgkey_format(child, k));
	}
	return 0;
}

void *rg_scratch(struct rg_state *st, int i, size_t bytes)
{
	if (bytes > st->capscr[i]) {
		size_t nc = st->capscr[i] ? st->capscr[i] : 256;
		while (nc < bytes)
			nc *= 2;
		void *q = realloc(st->scr[i], nc);
		if (!q)
			return NULL;
		st->scr[i] = q;
		st->capscr[i] = nc;
	}
	return st->scr[i];
}

void rg_parent_release(struct rg_state *st, uint32_t p)
{
	struct rg_parent *pa = &st->pool[p];
	if (--pa->refs)
		return;
	pa->nused = 0;
	pa->next_free = st->free_head;
	st->free_head = p;
}

static struct rg_node *node_get(struct rg_state *st, uint32_t id,
				struct tj_err *err)
{
	uint64_t *v = tj_u64map_get(&st->node_map, id);
	if (v)
		return &st->node[*v];
	if (tj_grow((void **)&st->node, &st->capnode, st->nnode + 1,
		 sizeof(*st->node)) ||
	    tj_u64map_put(&st->node_map, id, st->nnode)) {
		tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
		return NULL;
	}
	struct rg_node *n = &st->node[st->nnode++];
	memset(n, 0, sizeof(*n));
	n->id = id;
	return n;
}

static void node_time(void *ctx, uint32_t id, double *span, double *idle)
{
	struct rg_state *st = ctx;
	uint64_t *v = tj_u64map_get(&st->node_map, id);
	*span = *idle = 0;
	if (!v)
		return;
	const struct rg_node *n = &st->node[*v];
	*span = (double)(n->last_ts - n->first_ts);
	*idle = n->idle_ns;
}

/* End of a request's time in flight: its reply, or the horizon. */
static uint64_t parent_end(const struct rg_state *st, const struct rg_parent *p)
{
	return p->ts_reply ? p->ts_reply : p->ts_last + (uint64_t)st->par.horizon_ns;
}

static void expire(struct rg_state *st, struct rg_node *n, uint64_t now)
{
	size_t k = 0;
	for (size_t i = 0; i < n->nactive; i++) {
		uint32_t p = n->active[i];
		if (parent_end(st, &st->pool[p]) <= now)
			rg_parent_release(st, p);
		else
			n->active[k++] = p;
	}
	n->nactive = k;
}

static int add_parent(struct rg_state *st, struct rg_node *n,
		      const struct tj_message *m, struct tj_err *err)
{
	uint32_t svc = rg_service_intern(&st->model, m->key.node, m->pid, m->lport);
	if (svc == RG_NONE && st->learning)
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
	if (st->learning)
		st->model.svc[svc].requests++;
	uint32_t p;
	if (st->free_head != RG_NONE) {
		p = st->free_head;
		st->free_head = st->pool[p].next_free;
	} else {
		if (tj_grow((void **)&st->pool, &st->cappool, st->npool + 1,
			 sizeof(*st->pool)))
			return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
		p = (uint32_t)st->npool++;
		memset(&st->pool[p], 0, sizeof(st->pool[p]));
	}
	struct rg_parent *pa = &st->pool[p];
	pa->key = m->key;
	pa->ts_first = m->ts_first;
	pa->ts_last = m->ts_last;
	pa->ts_reply = m->ts_reply;
	pa->svc = svc;
	pa->pid = m->pid;
	pa->refs = 1;
	pa->nused = 0;
	pa->last_reply = 0;
	/* calls prune the list; a node that only serves (makes no calls)
	 * would fill it, so prune on arrivals too, amortised */
	if (n->nactive >= n->expire_at) {
		expire(st, n, m->ts_first);
		n->expire_at = n->nactive * 2 > 64 ? n->nactive * 2 : 64;
	}
	if (n->nactive == ACTIVE_MAX) { /* bounded: forget the oldest */
		rg_parent_release(st, n->active[0]);
		memmove(n->active, n->active + 1,
			(n->nactive - 1) * sizeof(*n->active));
		n->nactive--;
		st->stats.dropped++;
	}
	if (tj_grow((void **)&n->active, &n->capactive, n->nactive + 1,
		 sizeof(*n->active)))
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
	n->active[n->nactive++] = p;
	return 0;
}


/* Append call m with its candidates (already in st->scratch) to buf. */
static int buf_push(struct rg_state *st, struct rg_callbuf *buf,
		    const struct rg_call *c, const struct rg_cand *cand,
		    struct tj_err *err)
{
	if (tj_grow((void **)&buf->call, &buf->cap, buf->n + 1, sizeof(*buf->call)) ||
	    tj_grow((void **)&buf->cand, &buf->capcand, buf->ncand + c->ncand,
		    sizeof(*buf->cand)))
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
	struct rg_call *d = &buf->call[buf->n++];
	*d = *c;
	d->cand = buf->ncand;
	memcpy(buf->cand + buf->ncand, cand, c->ncand * sizeof(*cand));
	buf->ncand += c->ncand;
	for (uint32_t j = 0; j < c->ncand; j++)
		st->pool[cand[j].parent].refs++;
	return 0;
}

/* A call joins its node's pending window; decide what the window lets go. */
static int pend_call(struct rg_state *st, struct rg_node *n,
		     const struct rg_call *c, const struct rg_cand *cand,
		     struct tj_edge_sink *out, struct tj_err *err)
{
	int rc = buf_push(st, &n->pend, c, cand, err);
	if (rc)
		return rc;
	struct rg_callbuf *pb = &n->pend;
	/* Once the window is full (it spans `window`, or holds `batch`
	 * calls) it is matched, and the calls with at least half a window of
	 * later calls seen are decided (at least half of them): so every call
	 * is matched with half a window of lookahead, about twice. */
	double w = st->par.window_ns;
	if ((double)pb->call[0].ts + w > (double)c->ts && pb->n < st->par.batch)
		return 0;
	size_t k = 0;
	while (k < pb->n && (double)pb->call[k].ts + w / 2 <= (double)c->ts)
		k++;
	if (pb->n >= st->par.batch && k < pb->n / 2)
		k = pb->n / 2 ? pb->n / 2 : 1;
	return k ? rg_decide(st, pb, k, out, err) : 0;
}

/* The learning window is over: fit, then decide the buffered calls. */
static int end_learning(struct rg_state *st, struct tj_edge_sink *out,
			struct tj_err *err)
{
	st->learning = 0;
	int rc = rg_model_fit(&st->model, &st->learnbuf, node_time, st, err);
	if (rc)
		return rc;
	if (st->par.explain)
		rg_model_explain(&st->model, stderr);
	struct rg_callbuf *lb = &st->learnbuf;
	for (size_t i = 0; i < lb->n && !rc; i++) {
		struct rg_call *c = &lb->call[i];
		struct rg_cand *cand = lb->cand + c->cand;
		for (uint32_t j = 0; j < c->ncand; j++)
			cand[j].lw = rg_cand_logweight(&st->model, &cand[j]);
		rc = pend_call(st, &st->node[c->node], c, cand, out, err);
		/* pend_call took its own references */
		for (uint32_t j = 0; j < c->ncand; j++)
			rg_parent_release(st, cand[j].parent);
	}
	callbuf_free(lb);
	return rc;
}

static int on_call(struct rg_state *st, struct rg_node *n,
		   const struct tj_message *m, int idle, struct tj_edge_sink *out,
		   struct tj_err *err)
{
	struct rg_model *md = &st->model;
	uint64_t t = m->ts_first;
	st->stats.calls++;
	expire(st, n, t);
	if (tj_grow((void **)&st->scratch, &st->capscratch, n->nactive + 1,
		 sizeof(*st->scratch)))
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
	/* after the fit, a callee never seen is RG_NONE: pooled model, and
	 * no table grows with the stream */
	uint32_t callee = rg_callee_intern(md, m);
	if (callee == RG_NONE && st->learning)
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
	size_t nc = 0;
	/* newest first, so the learning window keeps the most recent ones */
	for (size_t i = n->nactive; i-- > 0;) {
		const struct rg_parent *p = &st->pool[n->active[i]];
		if (p->ts_first >= t)
			continue;
		if (st->par.same_pid && p->pid && m->pid && p->pid != m->pid)
			continue;
		struct rg_cand *k = &st->scratch[nc];
		k->parent = n->active[i];
		k->edge = rg_edge_find(md, p->svc, callee, st->learning);
		k->d1 = (int64_t)(t - p->ts_last);
		k->has_d2 = p->ts_reply && m->ts_reply;
		k->d2 = k->has_d2 ? (int64_t)(p->ts_reply - m->ts_reply) : 0;
		k->b1 = (uint8_t)rg_bin_of(k->d1);
		k->b2 = (uint8_t)rg_bin_of(k->d2);
		k->lw = st->learning ? 0 : rg_cand_logweight(md, k);
		k->r = 0;
		if (++nc == st->par.max_cand && st->learning)
			break;
	}
	if (!st->learning && nc > st->par.max_cand) {
		nc = rg_keep_heaviest(st->scratch, nc, st->par.max_cand);
	}
	uint32_t origin = rg_origin_intern(md, m->key.node, m->pid, callee);
	if (st->learning && idle && origin != RG_NONE)
		md->origin[origin].idle_calls += 1;
	if (nc == 0) {
		st->stats.nocand++;
		st->stats.none++;
		if (st->learning && origin != RG_NONE)
			md->origin[origin].nocand += 1;
		return rg_emit(out, &m->key, NULL, 1.0, err);
	}
	if (st->learning && origin == RG_NONE)
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
	struct rg_call c;
	memset(&c, 0, sizeof(c));
	c.key = m->key;
	c.ts = t;
	c.ts_reply = m->ts_reply;
	c.callee = callee;
	c.origin = origin;
	c.ncand = (uint32_t)nc;
	c.node = (uint32_t)(n - st->node);
	if (!st->learning)
		return pend_call(st, n, &c, st->scratch, out, err);
	int rc = buf_push(st, &st->learnbuf, &c, st->scratch, err);
	if (!rc && st->learnbuf.n >= st->par.learn)
		rc = end_learning(st, out, err);
	return rc;
}

static int rg_message(void *vst, const struct tj_message *m,
		      struct tj_edge_sink *out, struct tj_err *err)
{
	struct rg_state *st = vst;
	if (!m->is_request || m->role == TJ_ROLE_UNKNOWN)
		return 0;
	/* messages come in runs per node: skip the lookup for a repeat */
	struct rg_node *n = st->nnode && st->node[st->last_node].id == m->key.node ?
			    &st->node[st->last_node] : node_get(st, m->key.node, err);
	if (!n)
		return -TJ_E_NOMEM;
	st->last_node = (size_t)(n - st->node);
	int idle = 0;
	if (st->learning) {
		uint64_t t = m->ts_first;
		if (!n->seen) {
			n->first_ts = n->last_ts = t;
			n->busy_until = 0;
		}
		uint64_t lo = n->last_ts > n->busy_until ? n->last_ts : n->busy_until;
		if (n->seen && t > lo)
			n->idle_ns += (double)(t - lo);
		idle = t >= n->busy_until;
		if (t > n->last_ts)
			n->last_ts = t;
		n->seen = 1;
	}
	if (m->role == TJ_ROLE_SERVER) {
		int rc = add_parent(st, n, m, err);
		if (!rc && st->learning) {
			uint64_t end = parent_end(st, &st->pool[n->active[n->nactive - 1]]);
			if (end > n->busy_until)
				n->busy_until = end;
		}
		return rc;
	}
	return on_call(st, n, m, idle, out, err);
}

static int rg_finish(void *vst, struct tj_edge_sink *out, struct tj_err *err)
{
	struct rg_state *st = vst;
	int rc = 0;
	if (st->learning)
		rc = end_learning(st, out, err);
	for (size_t i = 0; i < st->nnode && !rc; i++)
		if (st->node[i].pend.n)
			rc = rg_decide(st, &st->node[i].pend, st->node[i].pend.n,
				       out, err);
	return rc;
}

const struct tj_correlator tj_correlator_regression = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "regression",
	.description = "timing only (Project 5 / WAP5 style): EM-fitted delay model, joint min-cost assignment",
	.params_help =
		"learn=20000        calls buffered to fit the delay model before deciding any\n"
		"window=20          ms of calls matched jointly (half of it is lookahead)\n"
		"batch=32           most calls in one matching\n"
		"max_candidates=16  in-flight requests considered per call\n"
		"horizon=1000       ms a request without a reply stays in flight\n"
		"iters=50           EM iterations at most\n"
		"screen=2000        calls to rank the EM starting points on (0: all)\n"
		"density=hist       delay density: hist (log-binned) or lognormal\n"
		"ends=1             also weigh request reply minus call reply\n"
		"same_pid=1         a parent must be in the caller's process\n"
		"slots=1            learned calls-per-request pattern bounds a parent's calls\n"
		"joint=1            1: min-cost matching per window; 0: each call its best\n"
		"chain=1            sequential calls: weigh the gap since the previous reply\n"
		"explain=0          1: print the fitted model per service edge on stderr\n",
	.open = rg_open,
	.train = NULL,
	.message = rg_message,
	.finish = rg_finish,
	.close = rg_close,
};
