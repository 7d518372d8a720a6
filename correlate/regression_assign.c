/* The regression correlator's decisions: calls of one window and their
 * candidate parents as a min-cost bipartite assignment.  A parent is
 * expanded into slots per callee, slot k costing -log P(N > k | N >= k)
 * from the learned calls-per-request pattern, on top of the delay cost
 * -log f(d); every call also has its own "no parent" column at the
 * background cost -log mu.  Solved per group of calls sharing candidates
 * as a min-cost flow with one arc per candidate (rg_flow_assign); the
 * Hungarian algorithm on the expanded matrix (rg_assign) is the reference
 * the tests hold it to. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "regression.h"

size_t rg_assign_ws_size(size_t n, size_t m)
{
	return (n + 1 + 2 * (m + 1)) * sizeof(double) +
	       2 * (m + 1) * sizeof(size_t) + (m + 1);
}

int rg_assign(const double *cost, size_t n, size_t m, int *row_col)
{
	void *ws = malloc(rg_assign_ws_size(n, m));
	if (!ws)
		return -1;
	int rc = rg_assign_ws(cost, n, m, row_col, ws);
	free(ws);
	return rc;
}

int rg_assign_ws(const double *cost, size_t n, size_t m, int *row_col,
		 void *ws)
{
	if (n == 0)
		return 0;
	if (n > m)
		return -1;
	/* 1-based: row 0 / column 0 are the virtual start */
	double *u = ws, *v = u + n + 1, *minv = v + m + 1;
	size_t *p = (size_t *)(minv + m + 1), *way = p + m + 1;
	char *used = (char *)(way + m + 1);
	int rc = -1;
	memset(u, 0, (n + 1) * sizeof(*u));
	memset(v, 0, (m + 1) * sizeof(*v));
	memset(p, 0, (m + 1) * sizeof(*p));
	memset(way, 0, (m + 1) * sizeof(*way));
	for (size_t i = 1; i <= n; i++) {
		p[0] = i;
		size_t j0 = 0;
		for (size_t j = 0; j <= m; j++) {
			minv[j] = INFINITY;
			used[j] = 0;
		}
		do {
			used[j0] = 1;
			size_t i0 = p[j0], j1 = 0;
			double delta = INFINITY;
			for (size_t j = 1; j <= m; j++) {
				if (used[j])
					continue;
				double cur = cost[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
				if (cur < minv[j]) {
					minv[j] = cur;
					way[j] = j0;
				}
				if (minv[j] < delta) {
					delta = minv[j];
					j1 = j;
				}
			}
			if (j1 == 0)
				goto out; /* cannot happen with n <= m */
			for (size_t j = 0; j <= m; j++) {
				if (used[j]) {
					u[p[j]] += delta;
					v[j] -= delta;
				} else {
					minv[j] -= delta;
				}
			}
			j0 = j1;
		} while (p[j0] != 0);
		do {
			size_t j1 = way[j0];
			p[j0] = p[j1];
			j0 = j1;
		} while (j0);
	}
	rc = 0;
	for (size_t j = 1; j <= m; j++)
		if (p[j])
			row_col[p[j] - 1] = (int)(j - 1);
	for (size_t i = 0; i < n; i++)
		if (cost[i * m + (size_t)row_col[i]] >= RG_FORBID)
			rc = -1;
out:
	return rc;
}

/* Take row r off the list of the pair it holds, if it holds one. */
static void unlink_row(uint32_t *head, uint32_t *nxt, const uint32_t *apair,
		       const int *row_arc, uint32_t r)
{
	if (row_arc[r] < 0)
		return;
	uint32_t *l = &head[apair[row_arc[r]]];
	while (*l != r)
		l = &nxt[*l];
	*l = nxt[r];
}

size_t rg_flow_ws_size(size_t n, size_t np)
{
	size_t nv = n + np + 1;
	return 2 * nv * sizeof(double) +
	       (4 * nv + 2 * np + n) * sizeof(uint32_t) + nv;
}

/* Successive shortest paths: rows are added one at a time, each sending
 * its unit along the cheapest path in the residual graph
 *     row -> pair (cost of the arc), pair -> row (a row that holds the
 *     pair gives it up: minus its arc's cost), row -> T ("none"), pair ->
 *     T (the pair's next slot: slots are taken cheapest first, so only
 *     the next one is an arc),
 * found by Dijkstra on reduced costs c + pi(u) - pi(v) >= 0.  A new row
 * has no arcs in, so its potential is set to make its arcs out
 * non-negative; after a search every node settled before T moves by its
 * distance minus T's, the others stay (the usual update, shifted by T's
 * distance, which all reduced costs cancel). */
int rg_flow_assign(size_t n, size_t np, const size_t *rowptr,
		   const uint32_t *apair, const double *acost,
		   const double *none, const size_t *sptr, const double *slot,
		   int *row_arc, void *ws)
{
	size_t nv = n + np + 1;
	uint32_t T = (uint32_t)(n + np);
	double *pi = ws, *dist = pi + nv;
	uint32_t *pv = (uint32_t *)(dist + nv); /* predecessor on the path */
	uint32_t *pa = pv + nv;                 /* row -> pair arc taken */
	uint32_t *front = pa + nv, *done = front + nv;
	uint32_t *fill = done + nv, *head = fill + np, *nxt = head + np;
	unsigned char *state = (unsigned char *)(nxt + n); /* 0, 1 front, 2 done */
	memset(state, 0, nv);
	pi[T] = 0;
	for (size_t q = 0; q < np; q++) {
		fill[q] = 0;
		head[q] = RG_NONE;
		pi[n + q] = 0;
		if (sptr[q + 1] > sptr[q] && slot[sptr[q]] < pi[T])
			pi[T] = slot[sptr[q]];
	}
	/* Every row at its own best option (cheapest arc plus that pair's
	 * first slot, or none) bounds the total from below; when no two
	 * rows' best options share a pair it is the optimum, no search. */
	int clash = 0;
	for (size_t i = 0; i < n && !clash; i++) {
		double best = none[i];
		row_arc[i] = -1;
		for (size_t e = rowptr[i]; e < rowptr[i + 1]; e++)
			if (acost[e] + slot[sptr[apair[e]]] < best) {
				best = acost[e] + slot[sptr[apair[e]]];
				row_arc[i] = (int)e;
			}
		if (row_arc[i] >= 0)
			clash = fill[apair[row_arc[i]]]++ > 0;
	}
	if (!clash)
		return 0;
	for (size_t q = 0; q < np; q++)
		fill[q] = 0;
	for (size_t i = 0; i < n; i++)
		row_arc[i] = -2; /* not added yet */
	for (size_t i = 0; i < n; i++) {
		double mx = pi[T] - none[i];
		for (size_t e = rowptr[i]; e < rowptr[i + 1]; e++)
			if (pi[n + apair[e]] - acost[e] > mx)
				mx = pi[n + apair[e]] - acost[e];
		pi[i] = mx;
		size_t nfront = 0, ndone = 0;
		dist[i] = 0;
		state[i] = 1;
		front[nfront++] = (uint32_t)i;
		pv[i] = RG_NONE;
		while (nfront) {
			size_t bi = 0;
			for (size_t k = 1; k < nfront; k++)
				if (dist[front[k]] < dist[front[bi]])
					bi = k;
			uint32_t v = front[bi];
			front[bi] = front[--nfront];
			state[v] = 2;
			done[ndone++] = v;
			if (v == T)
				break;
			/* relax u -> x at distance d through arc a */
#define RELAX(x, d, u, a) do {                                           \
		uint32_t x_ = (x);                                        \
		double d_ = (d);                                          \
		if (state[x_] == 0) {                                     \
			state[x_] = 1;                                    \
			front[nfront++] = x_;                             \
		} else if (state[x_] == 2 || d_ >= dist[x_]) {            \
			break;                                            \
		}                                                         \
		dist[x_] = d_;                                            \
		pv[x_] = (u);                                             \
		pa[x_] = (a);                                             \
	} while (0)
			if (v < n) {
				for (size_t e = rowptr[v]; e < rowptr[v + 1]; e++) {
					if (row_arc[v] == (int)e)
						continue;
					uint32_t q = (uint32_t)n + apair[e];
					RELAX(q, dist[v] + acost[e] + pi[v] - pi[q], v,
					      (uint32_t)e);
				}
				if (row_arc[v] != -1)
					RELAX(T, dist[v] + none[v] + pi[v] - pi[T], v,
					      RG_NONE);
			} else {
				size_t q = v - n;
				if (sptr[q] + fill[q] < sptr[q + 1])
					RELAX(T, dist[v] + slot[sptr[q] + fill[q]] +
						 pi[v] - pi[T], v, RG_NONE);
				for (uint32_t r = head[q]; r != RG_NONE; r = nxt[r])
					RELAX(r, dist[v] - acost[row_arc[r]] + pi[v] -
						 pi[r], v, RG_NONE);
			}
#undef RELAX
		}
		if (state[T] != 2)
			return -1; /* cannot happen: "none" is always open */
		double D = dist[T];
		/* flip the path, from T back to row i */
		uint32_t x = pv[T];
		if (x >= n) {
			fill[x - n]++;
		} else {
			unlink_row(head, nxt, apair, row_arc, x);
			row_arc[x] = -1;
		}
		while (x != i) {
			if (x >= n) { /* pair x gains the row it was reached from */
				uint32_t r = pv[x];
				unlink_row(head, nxt, apair, row_arc, r);
				row_arc[r] = (int)pa[x];
				nxt[r] = head[x - n];
				head[x - n] = r;
				x = r;
			} else { /* row x left the pair it was reached from */
				x = pv[x];
			}
		}
		for (size_t k = 0; k < ndone; k++) {
			pi[done[k]] += dist[done[k]] - D;
			state[done[k]] = 0;
		}
		for (size_t k = 0; k < nfront; k++)
			state[front[k]] = 0;
	}
	return 0;
}

static int cmp_lw_desc(const void *a, const void *b)
{
	double x = ((const struct rg_cand *)a)->lw, y = ((const struct rg_cand *)b)->lw;
	return x < y ? 1 : x > y ? -1 : 0;
}

size_t rg_keep_heaviest(struct rg_cand *c, size_t n, size_t k)
{
	size_t m = 0; /* c[0..m): the heaviest so far, in order */
	for (size_t i = 0; i < n; i++) {
		if (isnan(c[i].lw)) { /* no order: the sort, as before */
			qsort(c, n, sizeof(*c), cmp_lw_desc);
			return n < k ? n : k;
		}
		if (m == k && !(c[i].lw > c[m - 1].lw))
			continue; /* a later equal weight sorts after the kept ones */
		struct rg_cand x = c[i];
		size_t p = m < k ? m : k - 1; /* its place: after every weight >= its */
		for (; p > 0 && c[p - 1].lw < x.lw; p--)
			c[p] = c[p - 1];
		c[p] = x;
		if (m < k)
			m++;
	}
	return m;
}

static uint32_t used_get(const struct rg_parent *p, uint32_t callee)
{
	for (uint32_t i = 0; i < p->nused; i++)
		if (p->used[i].callee == callee)
			return p->used[i].n;
	return 0;
}

static int used_inc(struct rg_parent *p, uint32_t callee)
{
	for (uint32_t i = 0; i < p->nused; i++)
		if (p->used[i].callee == callee) {
			p->used[i].n++;
			return 0;
		}
	if (p->nused == p->capused) {
		uint32_t nc = p->capused ? p->capused * 2 : 4;
		struct rg_used *q = realloc(p->used, nc * sizeof(*q));
		if (!q)
			return -1;
		p->used = q;
		p->capused = nc;
	}
	p->used[p->nused].callee = callee;
	p->used[p->nused++].n = 1;
	return 0;
}

static size_t uf_find(size_t *up, size_t x)
{
	while (up[x] != x) {
		up[x] = up[up[x]];
		x = up[x];
	}
	return x;
}

/* The sets of the union-find up[0..n) as lists: head[root] is a set's
 * first member (SIZE_MAX for a non-root), next[] chains the rest, each in
 * increasing order. */
static void uf_lists(size_t *up, size_t n, size_t *head, size_t *next)
{
	for (size_t i = 0; i < n; i++)
		head[i] = SIZE_MAX;
	for (size_t i = n; i-- > 0;) {
		size_t root = uf_find(up, i);
		next[i] = head[root];
		head[root] = i;
	}
}

static double log_n(const struct rg_edge *e)
{
	return e->logn;
}

/* Posterior of the chosen option among the call's candidates and none. */
static double posterior(const struct rg_state *st, const struct rg_callbuf *b,
			const struct rg_call *c, int chosen)
{
	double mu = rg_origin_mu(&st->model, c->origin), z = mu;
	double sel = chosen < 0 ? mu : 0;
	for (uint32_t j = 0; j < c->ncand; j++) {
		double w = rg_cand_weight(&st->model, &b->cand[c->cand + j]);
		z += w;
		if ((int)j == chosen)
			sel = w;
	}
	return sel / z;
}

struct pair {
	uint32_t parent, callee, edge, count, col, k0;
	uint32_t next; /* the parent's next pair in this component */
	size_t soff;   /* its sorted slot chances in slotv */
	double maxslot;
};

/* A candidate of the component in the current pass. */
struct cand_pass {
	double logw;        /* its log weight in context (earlier siblings' replies) */
	double prev_logw;   /* the previous pass's */
	uint32_t pair;      /* its (parent, callee) pair: index into pairs[] */
	uint8_t live;       /* it can win at all (beats "no parent" at its best slot) */
	uint8_t prev_live;  /* the previous pass's */
	uint8_t sib_moved;  /* a sibling's reply moved its weight off the default */
};

#define CHAIN_PASSES 3

static double slot_logp(const struct rg_state *st, const struct rg_edge *e,
			uint32_t k)
{
	if (!st->par.slots)
		return log_n(e);
	return e->logh[k > RG_KMAX ? RG_KMAX : k];
}

/* All pq->count slot log-chances of a pair into v, best first; slots
 * past RG_KMAX share the last value.  Sorted once per component: every
 * group and pass then takes a prefix. */
static void sort_slots(const struct rg_state *st, const struct pair *pq,
		       double *v)
{
	const struct rg_edge *e = rg_edge_get(&st->model, pq->edge);
	double val[RG_KMAX + 1];
	uint32_t mult[RG_KMAX + 1], nv = 0;
	for (uint32_t s = 0; s < pq->count && s <= RG_KMAX; s++) {
		double x = slot_logp(st, e, pq->k0 + s);
		uint32_t m = 1;
		if (s + 1 == pq->count || s == RG_KMAX)
			m = pq->count - s; /* the last value repeats */
		uint32_t i = nv++;
		for (; i > 0 && val[i - 1] < x; i--) { /* stable insertion */
			val[i] = val[i - 1];
			mult[i] = mult[i - 1];
		}
		val[i] = x;
		mult[i] = m;
	}
	for (uint32_t i = 0, t = 0; i < nv; i++)
		for (uint32_t k = 0; k < mult[i]; k++)
			v[t++] = val[i];
}

/* Min-cost assignment of one group of rows that share no live candidate
 * with any other group; choice[] gets each row's candidate index or -1.
 * A slot's cost does not depend on the call, so the rows that take a
 * (request, callee) pair take its cheapest slots whichever row gets which:
 * a pair offers as many slots as it has live rows here, cheapest first,
 * and rg_flow_assign needs one arc per live candidate, not one per
 * candidate and slot. */
static int solve_group(struct rg_state *st, struct rg_callbuf *b,
		       const size_t *rows, const size_t *g, size_t ng,
		       const struct cand_pass *ci, const size_t *cbase,
		       struct pair *pairs, const double *slotv, uint32_t *scol,
		       int *choice)
{
	const struct rg_model *md = &st->model;
	size_t ntot = 0;
	for (size_t gi = 0; gi < ng; gi++)
		ntot += b->call[rows[g[gi]]].ncand;
	size_t *rowptr = rg_scratch(st, RG_SCR_RPTR, (ng + 1) * sizeof(*rowptr));
	size_t *sptr = rg_scratch(st, RG_SCR_SPTR, (ntot + 1) * sizeof(*sptr));
	uint32_t *apair = rg_scratch(st, RG_SCR_ADJ, (ntot + 1) * sizeof(*apair));
	uint32_t *acand = rg_scratch(st, RG_SCR_ACAND, (ntot + 1) * sizeof(*acand));
	uint32_t *lpq = rg_scratch(st, RG_SCR_LPQ, (ntot + 1) * sizeof(*lpq));
	double *acost = rg_scratch(st, RG_SCR_COST, (ntot + 1) * sizeof(*acost));
	double *none = rg_scratch(st, RG_SCR_NONEC, ng * sizeof(*none));
	double *slot = rg_scratch(st, RG_SCR_SLOTC, (ntot + 1) * sizeof(*slot));
	int *row_arc = rg_scratch(st, RG_SCR_ROWCOL, ng * sizeof(*row_arc));
	if (!rowptr || !sptr || !apair || !acand || !lpq || !acost || !none ||
	    !slot || !row_arc)
		return -1;
	/* the group's pairs, numbered here (scol holds the number), with
	 * their live rows counted in col */
	size_t np = 0, e = 0;
	rowptr[0] = 0;
	for (size_t gi = 0; gi < ng; gi++) {
		const struct rg_call *c = &b->call[rows[g[gi]]];
		none[gi] = -rg_origin_logmu(md, c->origin);
		for (uint32_t j = 0; j < c->ncand; j++) {
			const struct cand_pass *x = &ci[cbase[g[gi]] + j];
			if (!x->live)
				continue;
			if (scol[x->pair] == RG_NONE) {
				scol[x->pair] = (uint32_t)np;
				lpq[np++] = x->pair;
				pairs[x->pair].col = 0;
			}
			pairs[x->pair].col++;
			apair[e] = scol[x->pair];
			acand[e] = j;
			acost[e++] = -x->logw;
		}
		rowptr[gi + 1] = e;
	}
	sptr[0] = 0;
	for (size_t l = 0; l < np; l++) {
		struct pair *pq = &pairs[lpq[l]];
		sptr[l + 1] = sptr[l] + pq->col;
		const double *sv = slotv + pq->soff; /* best chance first */
		for (size_t k = sptr[l]; k < sptr[l + 1]; k++)
			slot[k] = -*sv++;
	}
	int rc = -1;
	void *ws = rg_scratch(st, RG_SCR_HUNG, rg_flow_ws_size(ng, np));
	if (ws && !rg_flow_assign(ng, np, rowptr, apair, acost, none, sptr, slot,
				  row_arc, ws)) {
		for (size_t gi = 0; gi < ng; gi++)
			choice[g[gi]] = row_arc[gi] < 0 ? -1 : (int)acand[row_arc[gi]];
		rc = 0;
	}
	for (size_t l = 0; l < np; l++)
		scol[lpq[l]] = RG_NONE;
	return rc;
}

/* One component's rows and working arrays (scratch of st), shared by its
 * passes. */
struct component {
	struct rg_state *st;
	struct rg_callbuf *b;
	const size_t *rows;    /* call indices in b */
	size_t nr, npair;
	struct pair *pairs;    /* its (parent, callee) pairs */
	struct cand_pass *ci;  /* its candidates, row by row (row r's from cbase[r]) */
	double *slotv;         /* each pair's slot log-chances, best first */
	size_t *up, *head, *next; /* union-find of the rows into groups, and the lists */
	size_t *cbase;         /* row r's first candidate in ci */
	size_t *snext;         /* rows of the same chosen parent */
	size_t *g;             /* one group's rows */
	uint32_t *cpar;        /* each row's chosen parent in the previous pass */
	uint32_t *scol;        /* per pair: first live row, then first column in a group */
	uint64_t sep;          /* a parent's sibling list is valid when smark == sep */
};

/* The (parent, callee) pairs of the component's candidates, listed per
 * parent (a parent's fields are valid for this component when its mark
 * is the epoch taken here). */
static void list_pairs(struct component *k)
{
	struct rg_state *st = k->st;
	const struct rg_callbuf *b = k->b;
	uint64_t ep = ++st->epoch;

	k->npair = 0;
	for (size_t r = 0, n = 0; r < k->nr; r++) {
		const struct rg_call *c = &b->call[k->rows[r]];
		for (uint32_t j = 0; j < c->ncand; j++, n++) {
			const struct rg_cand *kd = &b->cand[c->cand + j];
			struct rg_parent *pa = &st->pool[kd->parent];
			if (pa->cmark != ep) {
				pa->cmark = ep;
				pa->cpair = RG_NONE;
			}
			uint32_t q = pa->cpair;
			while (q != RG_NONE && k->pairs[q].callee != c->callee)
				q = k->pairs[q].next;
			if (q == RG_NONE) {
				q = (uint32_t)k->npair++;
				k->pairs[q] = (struct pair){
					kd->parent, c->callee, kd->edge, 0, 0,
					used_get(pa, c->callee), pa->cpair, 0, 0 };
				pa->cpair = q;
			}
			k->pairs[q].count++;
			k->ci[n].pair = q;
		}
	}
}

/* The previous pass's siblings (rows that chose the same parent), listed
 * per parent, latest row first. */
static void list_siblings(struct component *k)
{
	k->sep = ++k->st->epoch;
	for (size_t r = k->nr; r-- > 0;) {
		if (k->cpar[r] == RG_NONE)
			continue;
		struct rg_parent *pa = &k->st->pool[k->cpar[r]];
		k->snext[r] = pa->smark == k->sep ? pa->csib : SIZE_MAX;
		pa->smark = k->sep;
		pa->csib = r;
	}
}

/* Each candidate's weight in the context of its earlier siblings' replies
 * (recomputed only where a sibling can have moved it), whether it is
 * live, and the rows joined into groups by live candidates of a shared
 * pair (in up).  Returns whether no candidate changed liveness since the
 * previous pass (always 0 in the first). */
static int weigh_and_group(struct component *k, int pass)
{
	const struct rg_model *md = &k->st->model;
	const struct rg_callbuf *b = k->b;
	int same_live = pass > 0;

	for (size_t q = 0; q < k->npair; q++)
		k->scol[q] = RG_NONE;
	for (size_t r = 0; r < k->nr; r++) {
		const struct rg_call *c = &b->call[k->rows[r]];
		double none = -rg_origin_logmu(md, c->origin);
		k->up[r] = r;
		for (uint32_t j = 0; j < c->ncand; j++) {
			const struct rg_cand *kd = &b->cand[c->cand + j];
			struct cand_pass *x = &k->ci[k->cbase[r] + j];
			const struct pair *pq = &k->pairs[x->pair];
			const struct rg_parent *pa = &k->st->pool[kd->parent];
			size_t sib = pass > 0 && pa->smark == k->sep ? pa->csib : SIZE_MAX;
			if (pass > 0) {
				x->prev_logw = x->logw;
				x->prev_live = x->live;
			}
			/* a weight changes only through siblings: with none now
			 * and none before it stays */
			if (pass == 0 || sib != SIZE_MAX || x->sib_moved) {
				uint64_t prev = pa->last_reply;
				for (size_t r2 = sib; r2 != SIZE_MAX; r2 = k->snext[r2]) {
					const struct rg_call *c2 = &b->call[k->rows[r2]];
					if (r2 != r &&
					    c2->ts < c->ts && c2->ts_reply > prev &&
					    c2->ts_reply <= c->ts)
						prev = c2->ts_reply;
				}
				x->sib_moved = prev != pa->last_reply;
				x->logw = rg_cand_logweight_ctx(md, kd, c->ts, prev);
				x->live = -(x->logw + pq->maxslot) < none;
			}
			same_live &= x->live == x->prev_live;
			if (!x->live)
				continue;
			/* scol doubles as "first live row of this pair" */
			if (k->scol[x->pair] == RG_NONE)
				k->scol[x->pair] = (uint32_t)r;
			else
				k->up[uf_find(k->up, r)] = uf_find(k->up, k->scol[x->pair]);
		}
	}
	return same_live;
}

/* Solve every group of this pass, but for one whose candidates are the
 * previous pass's and weigh the same (its solution stands); 0 or -1. */
static int solve_groups(struct component *k, int same_live, int *choice)
{
	const struct rg_callbuf *b = k->b;

	for (size_t q = 0; q < k->npair; q++)
		k->scol[q] = RG_NONE;
	uf_lists(k->up, k->nr, k->head, k->next);
	for (size_t r = 0; r < k->nr; r++) {
		if (k->head[r] == SIZE_MAX)
			continue;
		size_t ng = 0;
		int dirty = !same_live;
		for (size_t x = k->head[r]; x != SIZE_MAX; x = k->next[x]) {
			k->g[ng++] = x;
			const struct cand_pass *cx = k->ci + k->cbase[x];
			for (uint32_t j = 0; !dirty && j < b->call[k->rows[x]].ncand; j++)
				dirty = cx[j].live && cx[j].logw != cx[j].prev_logw;
		}
		if (!dirty)
			continue;
		if (solve_group(k->st, k->b, k->rows, k->g, ng, k->ci, k->cbase, k->pairs,
				k->slotv, k->scol, choice))
			return -1;
	}
	return 0;
}

/* Take this pass's choice as each row's parent; whether any changed. */
static int adopt_choice(struct component *k, const int *choice)
{
	int changed = 0;

	for (size_t r = 0; r < k->nr; r++) {
		const struct rg_call *c = &k->b->call[k->rows[r]];
		uint32_t np = choice[r] < 0 ? RG_NONE :
			k->b->cand[c->cand + (uint32_t)choice[r]].parent;
		changed |= np != k->cpar[r];
		k->cpar[r] = np;
	}
	return changed;
}

/* Solve one component (rows = call indices in b); choice[i] gets the
 * chosen candidate index of each row's call, -1 for none.  A candidate
 * whose cheapest slot costs no less than the call's own "no parent"
 * column can never be in an optimal matching (moving the call to that
 * private column would not cost more), so such candidates are dropped and
 * the rows split again into groups joined by the remaining ones: the
 * optimum of the whole is the union of the groups' optima, and the
 * solver's cost falls on much smaller groups. */
static int solve_component(struct rg_state *st, struct rg_callbuf *b,
			   const size_t *rows, size_t nr, int *choice)
{
	struct component k = { .st = st, .b = b, .rows = rows, .nr = nr };
	size_t ncand = 0;

	for (size_t r = 0; r < nr; r++)
		ncand += b->call[rows[r]].ncand;
	k.pairs = rg_scratch(st, RG_SCR_PAIRS, ncand * sizeof(*k.pairs));
	k.ci = rg_scratch(st, RG_SCR_CLW, ncand * sizeof(*k.ci));
	if (!k.pairs || !k.ci)
		return -1;
	list_pairs(&k);
	/* each pair's slots, best first; the best bounds what its
	 * candidates can win */
	k.slotv = rg_scratch(st, RG_SCR_SLOTV, ncand * sizeof(*k.slotv));
	if (!k.slotv)
		return -1;
	for (size_t q = 0, off = 0; q < k.npair; q++) {
		k.pairs[q].soff = off;
		sort_slots(st, &k.pairs[q], k.slotv + off);
		k.pairs[q].maxslot = k.slotv[off];
		off += k.pairs[q].count;
	}
	k.up = rg_scratch(st, RG_SCR_SUP, 5 * nr * sizeof(*k.up));
	k.cpar = rg_scratch(st, RG_SCR_CPAR, nr * sizeof(*k.cpar));
	k.scol = rg_scratch(st, RG_SCR_SCOL, k.npair * sizeof(*k.scol));
	k.g = rg_scratch(st, RG_SCR_SROWS, nr * sizeof(*k.g));
	if (!k.up || !k.cpar || !k.scol || !k.g)
		return -1;
	k.head = k.up + nr;
	k.next = k.head + nr;
	k.cbase = k.next + nr;
	k.snext = k.cbase + nr;
	for (size_t r = 0, n = 0; r < nr; r++) {
		k.cbase[r] = n;
		n += b->call[rows[r]].ncand;
		k.cpar[r] = RG_NONE;
	}
	/* With chain weights a call's cost depends on which earlier calls of
	 * the window share its parent: re-solve with the previous solution's
	 * siblings until it settles (iterated conditional modes). */
	int passes = st->par.chain ? CHAIN_PASSES : 1;
	for (int pass = 0; pass < passes; pass++) {
		if (pass > 0)
			list_siblings(&k);
		int same_live = weigh_and_group(&k, pass);
		if (solve_groups(&k, same_live, choice))
			return -1;
		if (!adopt_choice(&k, choice) || nr == 1)
			break;
	}
	return 0;
}

/* Each call alone: its best candidate or none (joint=0, for comparison). */
static int best_alone(const struct rg_state *st, const struct rg_callbuf *b,
		      const struct rg_call *c)
{
	double best = rg_origin_logmu(&st->model, c->origin);
	int ch = -1;
	for (uint32_t j = 0; j < c->ncand; j++) {
		const struct rg_cand *k = &b->cand[c->cand + j];
		double s = rg_cand_logweight_ctx(&st->model, k, c->ts,
						 st->pool[k->parent].last_reply) +
			   log_n(rg_edge_get(&st->model, k->edge));
		if (s > best) {
			best = s;
			ch = (int)j;
		}
	}
	return ch;
}

int rg_decide(struct rg_state *st, struct rg_callbuf *b, size_t ncommit,
	      struct tj_edge_sink *out, struct tj_err *err)
{
	size_t n = b->n;
	if (ncommit > n)
		ncommit = n;
	size_t *up = rg_scratch(st, RG_SCR_UP, n * sizeof(*up));
	size_t *rows = rg_scratch(st, RG_SCR_ROWS, n * sizeof(*rows));
	int *choice = rg_scratch(st, RG_SCR_CHOICE, n * sizeof(*choice));
	int *ch_all = rg_scratch(st, RG_SCR_CHALL, n * sizeof(*ch_all));
	int rc = 0;
	if (!up || !rows || !choice || !ch_all) {
		rc = tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		up[i] = i;
		ch_all[i] = -2; /* undecided */
	}
	if (st->par.joint) {
		/* components: calls sharing a candidate parent (the parent
		 * remembers the first call that named it in this matching) */
		uint64_t ep = ++st->epoch;
		for (size_t i = 0; i < n; i++) {
			const struct rg_call *c = &b->call[i];
			for (uint32_t j = 0; j < c->ncand; j++) {
				struct rg_parent *pa = &st->pool[b->cand[c->cand + j].parent];
				if (pa->dmark != ep) {
					pa->dmark = ep;
					pa->drow = i;
				} else {
					up[uf_find(up, i)] = uf_find(up, pa->drow);
				}
			}
		}
		/* list each component's calls in order (next[] threads them
		 * from the root's head[]), then solve each component that
		 * holds a call to commit */
		size_t *head = rg_scratch(st, RG_SCR_HEAD, 2 * n * sizeof(*head));
		if (!head) {
			rc = tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
			goto out;
		}
		size_t *next = head + n;
		uf_lists(up, n, head, next);
		for (size_t i = 0; i < ncommit; i++) {
			if (ch_all[i] != -2)
				continue;
			size_t nr = 0;
			for (size_t k = head[uf_find(up, i)]; k != SIZE_MAX; k = next[k])
				rows[nr++] = k;
			if (solve_component(st, b, rows, nr, choice)) {
				rc = tj_errf(err, TJ_E_NOMEM, "regression: assignment of %zu calls failed",
					     nr);
				goto out;
			}
			for (size_t r = 0; r < nr; r++)
				ch_all[rows[r]] = choice[r];
			st->stats.matchings++;
		}
	} else {
		for (size_t i = 0; i < ncommit; i++)
			ch_all[i] = best_alone(st, b, &b->call[i]);
	}
	for (size_t i = 0; i < ncommit && !rc; i++) {
		const struct rg_call *c = &b->call[i];
		int j = ch_all[i];
		const struct tj_msgkey *pk = NULL;
		if (j >= 0) {
			struct rg_parent *p = &st->pool[b->cand[c->cand + j].parent];
			if (used_inc(p, c->callee)) {
				rc = tj_errf(err, TJ_E_NOMEM, "regression: out of memory");
				break;
			}
			pk = &p->key;
			if (c->ts_reply > p->last_reply)
				p->last_reply = c->ts_reply;
			st->stats.parented++;
		} else {
			st->stats.none++;
		}
		rc = rg_emit(out, &c->key, pk, posterior(st, b, c, j), err);
	}
	/* drop the committed calls and their references */
	for (size_t i = 0; i < ncommit; i++) {
		const struct rg_call *c = &b->call[i];
		for (uint32_t j = 0; j < c->ncand; j++)
			rg_parent_release(st, b->cand[c->cand + j].parent);
	}
	size_t coff = ncommit < n ? b->call[ncommit].cand : b->ncand;
	memmove(b->call, b->call + ncommit, (n - ncommit) * sizeof(*b->call));
	memmove(b->cand, b->cand + coff, (b->ncand - coff) * sizeof(*b->cand));
	b->n = n - ncommit;
	b->ncand -= coff;
	for (size_t i = 0; i < b->n; i++)
		b->call[i].cand -= coff;
out:
	return rc;
}
