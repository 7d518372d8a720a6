/* The regression correlator's delay model and its EM fit.
 *
 * Every in-flight request of a service is a source of calls: a request of
 * service s makes calls to callee X at delays d after its last byte with
 * intensity n_sX * f_sX(d); calls with no parent come at a background rate
 * mu per (node, process, callee).  A call's parent is latent: one of the
 * requests in flight when it started, or none.  EM (the branching-structure
 * EM of self-exciting processes, which is also what Project 5's convolution
 * approximates) alternates posteriors over each call's candidates with
 * weighted refits of n, f and mu.  f is a weighted histogram on signed
 * log-spaced delay bins (multi-modal delays, such as the second of two
 * sequential calls, stay visible), with a weighted lognormal summary for
 * --explain and density=lognormal.  The end side (request reply minus call
 * reply) enters as a likelihood ratio against the same quantity for
 * non-parents.  See REGRESSION.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_histogram.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_statistics_double.h>
#include "regression.h"
#include "../lib/event.h"
#include "../lib/util.h"

#define EPS_MIX 0.001    /* share of the all-pairs density mixed into a fit */
#define LOG_FLOOR (-80.0)
#define MU_FLOOR 1e-12   /* background calls per ns: 1 per 1000 s */
#define SLOT_FLOOR 1e-4  /* continuation chance beyond what was seen */
#define INIT_R0 0.01     /* starting share of background per call */
#define INIT_LEAN 0.6    /* starting share of the favoured candidate */
#define RG_STARTS 4
#define COUNT_MIX 0.1   /* share of counted calls-per-request in the slot law */
#define CHAIN_MIN 10.0  /* calls after a sibling needed to fit the gap */
#define SCREEN_ITERS 8  /* EM iterations to rank the starting points */
#define EM_TOL_PER_CALL 1e-4 /* converged: log-likelihood gain per call below */
#define IDLE_MIN_SHARE 0.01 /* idle time that suffices to measure background */
#define IDLE_MIN_NS 5e7

static double bin_lo(int b)
{
	if (b == RG_SIDE)
		return -1e3;
	if (b > RG_SIDE)
		return 1e3 * pow(10.0, (double)(b - RG_SIDE - 1) / RG_BINS_PER_DECADE);
	return -1e3 * pow(10.0, (double)(RG_SIDE - b) / RG_BINS_PER_DECADE);
}

/* Magnitude bin j >= 1 starts at |d| = bin_start[j - 1] ns: the least
 * whole ns where floor(log10(|d| / 1 us) * RG_BINS_PER_DECADE) reaches j,
 * found once from that formula (a test checks the two agree).  A search in
 * this table costs a few compares where log10 was a tenth of the stream's
 * time (two bins per candidate). */
static const uint64_t bin_start[RG_SIDE - 1] = {
	1468, 2155, 3163, 4642, 6813, 10000,
	14678, 21545, 31623, 46416, 68130, 100000,
	146780, 215444, 316228, 464159, 681293, 1000000,
	1467800, 2154435, 3162278, 4641589, 6812921, 10000000,
	14677993, 21544347, 31622777, 46415889, 68129207, 100000000,
	146779927, 215443470, 316227767, 464158884, 681292070, 1000000000,
	1467799268, 2154434691, 3162277661, 4641588834, 6812920691, 10000000000,
	14677992677, 21544346901, 31622776602, 46415888337, 68129206906,
};
/* How many starts lie below 2^k: a bin is over half an octave wide, so
 * at most two more starts lie in [2^k, 2^(k+1)). */
static const uint8_t starts_below_pow2[64] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 5, 7, 9, 10, 12, 14, 16, 18,
	19, 21, 23, 25, 27, 28, 30, 32, 34, 36, 37, 39, 41, 43, 45, 47, 47,
	47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
	47, 47, 47, 47, 47, 47, 47, 47, 47,
};
_Static_assert(RG_BINS_PER_DECADE == 6 && RG_DECADES == 8,
	       "bin_start is computed for 6 bins per decade over 8 decades");

int rg_bin_of(int64_t d)
{
	uint64_t a = d < 0 ? -(uint64_t)d : (uint64_t)d;
	if (a < 1000)
		return RG_SIDE;
	int j = starts_below_pow2[63 - __builtin_clzll(a)]; /* starts <= a */
	while (j < RG_SIDE - 1 && bin_start[j] <= a)
		j++;
	return d > 0 ? RG_SIDE + 1 + j : RG_SIDE - 1 - j;
}

/* The shared bin ranges as a GSL histogram (edges from bin_lo). */
static gsl_histogram *hist_new(void)
{
	double r[RG_NBINS + 1];
	for (int b = 0; b < RG_NBINS; b++)
		r[b] = bin_lo(b);
	r[RG_NBINS] = 1e3 * pow(10.0, RG_DECADES);
	gsl_histogram *h = gsl_histogram_alloc(RG_NBINS);
	if (h)
		gsl_histogram_set_ranges(h, r, RG_NBINS + 1);
	return h;
}

/* Add weight w to bin b (rg_bin_of, computed once per candidate: the
 * search of gsl_histogram_accumulate dominated the fit).  Values beyond
 * the range sit in the end bins. */
static void hist_add(gsl_histogram *h, int b, double w)
{
	h->bin[b] += w;
}

/* Log density per ns from a weighted histogram: smoothed over neighbour
 * bins, mixed with a little of the all-pairs density (where candidates
 * actually fall) so no delay is impossible. */
static void density_set(struct rg_density *dn, const gsl_histogram *h,
			const struct rg_density *all)
{
	double s[RG_NBINS], tot = gsl_histogram_sum(h);
	for (int b = 0; b < RG_NBINS; b++) {
		double l = gsl_histogram_get(h, b > 0 ? b - 1 : b);
		double r = gsl_histogram_get(h, b + 1 < RG_NBINS ? b + 1 : b);
		s[b] = 0.25 * l + 0.5 * gsl_histogram_get(h, b) + 0.25 * r;
	}
	dn->mass = tot;
	for (int b = 0; b < RG_NBINS; b++) {
		double lo, hi;
		gsl_histogram_get_range(h, b, &lo, &hi);
		double f = tot > 0 ? s[b] / tot / (hi - lo) : 0;
		double fa = all ? exp(all->logf[b]) : 0;
		double v = all ? (1 - EPS_MIX) * f + EPS_MIX * fa : f;
		dn->logf[b] = v > 0 ? log(v) : LOG_FLOOR;
	}
}

/* All-pairs density: the histogram with a uniform-in-log floor. */
static void density_all(struct rg_density *dn, const gsl_histogram *h)
{
	double tot = gsl_histogram_sum(h);
	for (int b = 0; b < RG_NBINS; b++) {
		double lo, hi;
		gsl_histogram_get_range(h, b, &lo, &hi);
		double p = (gsl_histogram_get(h, b) + 1e-3 * (tot + 1) / RG_NBINS) /
			   (tot + 1e-3 * (tot + 1));
		dn->logf[b] = log(p / (hi - lo));
	}
	dn->mass = tot;
}

void rg_model_init(struct rg_model *m, const struct rg_params *par)
{
	memset(m, 0, sizeof(*m));
	tj_u64map_init(&m->svc_map);
	tj_u64map_init(&m->callee_map);
	tj_u64map_init(&m->edge_map);
	tj_u64map_init(&m->origin_map);
	m->par = par;
	m->mu_default = MU_FLOOR;
	m->logmu_default = log(MU_FLOOR);
	m->pooled.svc = m->pooled.callee = RG_NONE;
}

void rg_model_free(struct rg_model *m)
{
	free(m->wstart);
	free(m->wend);
	free(m->svc);
	free(m->callee);
	free(m->edge);
	free(m->origin);
	tj_u64map_free(&m->svc_map);
	tj_u64map_free(&m->callee_map);
	tj_u64map_free(&m->edge_map);
	tj_u64map_free(&m->origin_map);
	memset(m, 0, sizeof(*m));
}

/* Intern helper: key -> index, appending a zeroed element when new. */
static uint32_t intern(struct tj_u64map *map, uint64_t key, void **arr,
		       size_t *n, size_t *cap, size_t size, int create,
		       int *added)
{
	uint64_t *v = tj_u64map_get(map, key);
	*added = 0;
	if (v)
		return (uint32_t)*v;
	if (!create || tj_grow(arr, cap, *n + 1, size) ||
	    tj_u64map_put(map, key, *n))
		return RG_NONE;
	memset((char *)*arr + *n * size, 0, size);
	*added = 1;
	return (uint32_t)(*n)++;
}

uint32_t rg_service_intern(struct rg_model *m, uint32_t node, uint32_t pid,
			   uint16_t lport)
{
	int added;
	uint64_t key = tj_hash64(((uint64_t)node << 32 | pid) ^
				 tj_hash64(lport));
	uint32_t i = intern(&m->svc_map, key, (void **)&m->svc, &m->nsvc,
			    &m->capsvc, sizeof(*m->svc), !m->fitted, &added);
	if (added) {
		m->svc[i].node = node;
		m->svc[i].pid = pid;
		m->svc[i].lport = lport;
	}
	return i;
}

uint32_t rg_callee_intern(struct rg_model *m, const struct tj_message *c)
{
	int added;
	uint64_t a, b;
	memcpy(&a, c->raddr, 8);
	memcpy(&b, c->raddr + 8, 8);
	uint64_t key = tj_hash64(a ^ tj_hash64(b ^ tj_hash64(
		(uint64_t)c->family << 16 | c->rport)));
	uint32_t i = intern(&m->callee_map, key, (void **)&m->callee,
			    &m->ncallee, &m->capcallee, sizeof(*m->callee),
			    !m->fitted,
			    &added);
	if (added) {
		m->callee[i].family = c->family;
		m->callee[i].port = c->rport;
		memcpy(m->callee[i].addr, c->raddr, 16);
	}
	return i;
}

uint32_t rg_origin_intern(struct rg_model *m, uint32_t node, uint32_t pid,
			  uint32_t callee)
{
	int added;
	uint64_t key = tj_hash64(((uint64_t)node << 32 | pid) ^
				 tj_hash64(callee));
	uint32_t i = intern(&m->origin_map, key, (void **)&m->origin,
			    &m->norigin, &m->caporigin, sizeof(*m->origin),
			    !m->fitted, &added);
	if (added) {
		m->origin[i].node = node;
		m->origin[i].pid = pid;
		m->origin[i].callee = callee;
	}
	return i;
}

uint32_t rg_edge_find(struct rg_model *m, uint32_t svc, uint32_t callee,
		      int create)
{
	int added;
	uint32_t i = intern(&m->edge_map, (uint64_t)svc << 32 | callee,
			    (void **)&m->edge, &m->nedge, &m->capedge,
			    sizeof(*m->edge), create, &added);
	if (added) {
		m->edge[i].svc = svc;
		m->edge[i].callee = callee;
	}
	return i;
}

const struct rg_edge *rg_edge_get(const struct rg_model *m, uint32_t e)
{
	return e == RG_NONE || e >= m->nedge ? &m->pooled : &m->edge[e];
}

double rg_origin_mu(const struct rg_model *m, uint32_t o)
{
	return o < m->norigin ? m->origin[o].mu : m->mu_default;
}

double rg_cand_weight(const struct rg_model *m, const struct rg_cand *c)
{
	if (!m->wstart)
		return exp(rg_cand_logweight(m, c) + rg_edge_get(m, c->edge)->logn);
	size_t o = (c->edge == RG_NONE || c->edge >= m->nedge ? m->nedge : c->edge) *
		   RG_NBINS;
	double w = m->wstart[o + c->b1];
	return c->has_d2 ? w * m->wend[o + c->b2] : w;
}

double rg_origin_logmu(const struct rg_model *m, uint32_t o)
{
	return o < m->norigin ? m->origin[o].logmu : m->logmu_default;
}

static double start_log(const struct rg_model *m, const struct rg_edge *e,
			int64_t d1, int b1)
{
	if (m->par->density == RG_DENSITY_LOGNORMAL && e->start.sd > 0) {
		/* the all-pairs mix lives in the histogram's floor */
		double f = d1 > 0 ? gsl_ran_lognormal_pdf((double)d1, e->start.mu,
							  e->start.sd) : 0;
		double fl = exp(e->start.logf[b1]);
		double v = (1 - EPS_MIX) * f + EPS_MIX * fl;
		return v > 0 ? log(v) : LOG_FLOOR;
	}
	return e->start.logf[b1];
}

double rg_cand_logweight_ctx(const struct rg_model *m, const struct rg_cand *c,
			     uint64_t call_ts, uint64_t prev_reply)
{
	const struct rg_edge *e = rg_edge_get(m, c->edge);
	uint64_t p_last = call_ts - (uint64_t)c->d1;
	if (!m->par->chain || !e->has_chain || !prev_reply ||
	    prev_reply <= p_last || prev_reply > call_ts)
		return c->lw;
	double lw = e->chain.logf[rg_bin_of((int64_t)(call_ts - prev_reply))];
	if (m->use_ends && c->has_d2)
		lw += e->end.logf[c->b2] - m->bg_end.logf[c->b2];
	return lw;
}

double rg_cand_logweight(const struct rg_model *m, const struct rg_cand *c)
{
	const struct rg_edge *e = rg_edge_get(m, c->edge);
	double lw = start_log(m, e, c->d1, c->b1);
	if (m->use_ends && c->has_d2)
		lw += e->end.logf[c->b2] - m->bg_end.logf[c->b2];
	return lw;
}

/* Weighted lognormal summary of the positive delays of one edge. */
static void lognormal_fit(struct rg_density *dn, const double *x,
			  const double *w, size_t n)
{
	double sw = 0;
	for (size_t i = 0; i < n; i++)
		sw += w[i];
	if (n < 2 || sw <= 0) {
		dn->mu = dn->sd = 0;
		return;
	}
	dn->mu = gsl_stats_wmean(w, 1, x, 1, n);
	dn->sd = gsl_stats_wsd_m(w, 1, x, 1, n, dn->mu);
	if (!(dn->sd > 1e-3))
		dn->sd = 1e-3;
}

struct fit_ws {
	gsl_histogram **hs, **he;   /* per edge: start, end */
	gsl_histogram *ps, *pe, *bge, *alls, *alle;
	gsl_histogram *cnte;        /* end-delay counts of the buffer fitted */
	size_t *eoff, *eidx;        /* candidates grouped by edge */
	double *x, *w;
	double *fs, *lr;            /* per edge and bin: n f_start, LR_end */
	double scale;               /* share of the window's calls fitted on */
	struct rg_density all_start, all_end;
};

static void ws_free(struct fit_ws *ws, size_t nedge)
{
	for (size_t e = 0; ws->hs && e < nedge; e++) {
		if (ws->hs[e])
			gsl_histogram_free(ws->hs[e]);
		if (ws->he[e])
			gsl_histogram_free(ws->he[e]);
	}
	free(ws->hs);
	free(ws->he);
	gsl_histogram *h[] = { ws->ps, ws->pe, ws->bge, ws->alls, ws->alle,
			       ws->cnte };
	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		if (h[i])
			gsl_histogram_free(h[i]);
	free(ws->eoff);
	free(ws->eidx);
	free(ws->x);
	free(ws->w);
	free(ws->fs);
	free(ws->lr);
}

static int ws_alloc(struct fit_ws *ws, size_t nedge, size_t ncand)
{
	memset(ws, 0, sizeof(*ws));
	ws->hs = calloc(nedge + 1, sizeof(*ws->hs));
	ws->he = calloc(nedge + 1, sizeof(*ws->he));
	ws->eoff = calloc(nedge + 2, sizeof(*ws->eoff));
	ws->eidx = malloc((ncand + 1) * sizeof(*ws->eidx));
	ws->x = malloc((ncand + 1) * sizeof(*ws->x));
	ws->w = malloc((ncand + 1) * sizeof(*ws->w));
	ws->fs = malloc((nedge + 1) * RG_NBINS * sizeof(*ws->fs));
	ws->lr = malloc((nedge + 1) * RG_NBINS * sizeof(*ws->lr));
	ws->scale = 1;
	if (!ws->hs || !ws->he || !ws->eoff || !ws->eidx || !ws->x || !ws->w ||
	    !ws->fs || !ws->lr)
		return -1;
	for (size_t e = 0; e < nedge; e++)
		if (!(ws->hs[e] = hist_new()) || !(ws->he[e] = hist_new()))
			return -1;
	if (!(ws->ps = hist_new()) || !(ws->pe = hist_new()) ||
	    !(ws->bge = hist_new()) || !(ws->alls = hist_new()) ||
	    !(ws->alle = hist_new()) || !(ws->cnte = hist_new()))
		return -1;
	return 0;
}

/* Lognormal summaries per edge (and pooled) from the current weights.
 * Candidates below LN_MIN_R are left out: one log per candidate was a
 * tenth of the fit, and weights that small move the summary by less
 * than the printed digits. */
#define LN_MIN_R 1e-4
static void fit_lognormals(struct rg_model *m, struct rg_callbuf *buf,
			   struct fit_ws *ws)
{
	for (size_t e = 0; e <= m->nedge; e++) {
		size_t k = 0;
		for (size_t j = ws->eoff[e]; j < ws->eoff[e + 1]; j++) {
			const struct rg_cand *c = &buf->cand[ws->eidx[j]];
			if (c->d1 > 0 && c->r > LN_MIN_R) {
				ws->x[k] = log((double)c->d1);
				ws->w[k++] = c->r;
			}
		}
		if (e < m->nedge)
			lognormal_fit(&m->edge[e].start, ws->x, ws->w, k);
	}
	size_t k = 0;
	for (size_t j = 0; j < buf->ncand; j++) {
		const struct rg_cand *c = &buf->cand[j];
		if (c->d1 > 0 && c->r > LN_MIN_R) {
			ws->x[k] = log((double)c->d1);
			ws->w[k++] = c->r;
		}
	}
	lognormal_fit(&m->pooled.start, ws->x, ws->w, k);
}

/* M step: refit n, densities and background rates from responsibilities. */
static void m_clear(struct rg_model *m, struct fit_ws *ws)
{
	for (size_t e = 0; e < m->nedge; e++) {
		gsl_histogram_reset(ws->hs[e]);
		gsl_histogram_reset(ws->he[e]);
		m->edge[e].acc_n = 0;
	}
	for (size_t o = 0; o < m->norigin; o++)
		m->origin[o].acc = 0;
}

/* Add one call's responsibilities to the M step's sums. */
static inline void m_add(struct rg_model *m, struct fit_ws *ws,
			 const struct rg_call *c, const struct rg_cand *k)
{
	m->origin[c->origin].acc += c->r0;
	for (uint32_t j = 0; j < c->ncand; j++) {
		m->edge[k[j].edge].acc_n += k[j].r;
		hist_add(ws->hs[k[j].edge], k[j].b1, k[j].r);
		if (k[j].has_d2)
			hist_add(ws->he[k[j].edge], k[j].b2, k[j].r);
	}
}

/* summed: the E step just added every call (m_add), in buffer order as
 * this loop would. */
static void m_step(struct rg_model *m, struct rg_callbuf *buf,
		   struct fit_ws *ws, int summed,
		   rg_node_time_fn node_time, void *ctx)
{
	if (!summed) {
		m_clear(m, ws);
		for (size_t i = 0; i < buf->n; i++)
			m_add(m, ws, &buf->call[i], buf->cand + buf->call[i].cand);
	}
	/* pooled histograms as sums over the edges; the non-parent end side
	 * is every candidate's end delay (the all-pairs counts of this
	 * buffer) minus the parent share */
	double sum_r = 0;
	gsl_histogram_reset(ws->ps);
	gsl_histogram_reset(ws->pe);
	for (size_t e = 0; e < m->nedge; e++) {
		sum_r += m->edge[e].acc_n;
		gsl_histogram_add(ws->ps, ws->hs[e]);
		gsl_histogram_add(ws->pe, ws->he[e]);
	}
	gsl_histogram_memcpy(ws->bge, ws->cnte);
	gsl_histogram_sub(ws->bge, ws->pe);
	double nreq = 0;
	for (size_t s = 0; s < m->nsvc; s++)
		nreq += (double)m->svc[s].requests;
	for (size_t e = 0; e < m->nedge; e++) {
		struct rg_edge *ed = &m->edge[e];
		uint64_t r = m->svc[ed->svc].requests;
		ed->n = ed->acc_n / ((double)(r ? r : 1) * ws->scale);
		density_set(&ed->start, ws->hs[e], &ws->all_start);
		density_set(&ed->end, ws->he[e], &ws->all_end);
	}
	m->pooled.n = sum_r / ((nreq > 0 ? nreq : 1) * ws->scale);
	density_set(&m->pooled.start, ws->ps, &ws->all_start);
	density_set(&m->pooled.end, ws->pe, &ws->all_end);
	density_set(&m->bg_end, ws->bge, &ws->all_end);
	double musum = 0, spansum = 0;
	for (size_t o = 0; o < m->norigin; o++) {
		struct rg_origin *og = &m->origin[o];
		double span, idle;
		node_time(ctx, og->node, &span, &idle);
		double v = og->acc / ws->scale; /* summed r0 */
		if (idle >= IDLE_MIN_SHARE * span && idle >= IDLE_MIN_NS)
			/* calls while nothing was in flight are background for
			 * sure: their rate does not drift into the EM's broad
			 * optimum where background explains busy periods too */
			og->mu = (og->idle_calls + 0.5) / idle;
		else
			og->mu = span > 0 ? v / span : MU_FLOOR;
		if (og->mu < MU_FLOOR)
			og->mu = MU_FLOOR;
		og->logmu = log(og->mu);
		musum += v;
		spansum += span;
	}
	m->mu_default = spansum > 0 && musum > 0 ? musum / spansum : MU_FLOOR;
	if (m->mu_default < MU_FLOOR)
		m->mu_default = MU_FLOOR;
	m->logmu_default = log(m->mu_default);
	if (m->par->density == RG_DENSITY_LOGNORMAL)
		fit_lognormals(m, buf, ws);
}

/* E step with a per-candidate log density (density=lognormal). */
static double e_step_log(struct rg_model *m, struct rg_callbuf *buf)
{
	double ll = 0;
	for (size_t i = 0; i < buf->n; i++) {
		struct rg_call *c = &buf->call[i];
		double lmu = rg_origin_logmu(m, c->origin), mx = lmu;
		for (uint32_t j = 0; j < c->ncand; j++) {
			struct rg_cand *k = &buf->cand[c->cand + j];
			k->lw = rg_cand_logweight(m, k);
			k->r = k->lw + rg_edge_get(m, k->edge)->logn;
			if (k->r > mx)
				mx = k->r;
		}
		double z0 = exp(lmu - mx), z = z0;
		for (uint32_t j = 0; j < c->ncand; j++) {
			struct rg_cand *k = &buf->cand[c->cand + j];
			k->r = exp(k->r - mx);
			z += k->r;
		}
		c->r0 = z0 / z;
		for (uint32_t j = 0; j < c->ncand; j++)
			buf->cand[c->cand + j].r /= z;
		ll += mx + log(z);
	}
	return ll;
}

/* E step: posteriors over each call's candidates; returns log-likelihood.
 * With histogram densities a candidate's weight n_e f_e(d1) LR_e(d2)
 * depends only on its edge and two bins, so it is read from tables of
 * linear weights built once per step: no exp or log per candidate.  The
 * log densities are floored at LOG_FLOOR and the ratio is bounded by it
 * too, so the products stay far inside double range. */
static double e_step(struct rg_model *m, struct rg_callbuf *buf,
		     struct fit_ws *ws, int *summed)
{
	*summed = 0;
	for (size_t e = 0; e < m->nedge; e++)
		m->edge[e].logn = log(m->edge[e].n > 1e-9 ? m->edge[e].n : 1e-9);
	m->pooled.logn = log(m->pooled.n > 1e-9 ? m->pooled.n : 1e-9);
	if (m->par->density == RG_DENSITY_LOGNORMAL)
		return e_step_log(m, buf);
	for (size_t e = 0; e < m->nedge; e++) {
		const struct rg_edge *ed = &m->edge[e];
		double *fs = ws->fs + e * RG_NBINS, *lr = ws->lr + e * RG_NBINS;
		for (int b = 0; b < RG_NBINS; b++) {
			fs[b] = exp(ed->start.logf[b] + ed->logn);
			lr[b] = m->use_ends ?
				exp(ed->end.logf[b] - m->bg_end.logf[b]) : 1.0;
		}
	}
	/* the log-likelihood as one log of a product, kept in range by
	 * moving binary exponents out (frexp) every call */
	double prod = 1.0;
	long expo = 0;
	m_clear(m, ws); /* the next M step's sums, while the call is at hand */
	*summed = 1;
	for (size_t i = 0; i < buf->n; i++) {
		struct rg_call *c = &buf->call[i];
		struct rg_cand *k = buf->cand + c->cand;
		double mu = rg_origin_mu(m, c->origin);
		double z = mu;
		for (uint32_t j = 0; j < c->ncand; j++) {
			size_t eo = (size_t)k[j].edge * RG_NBINS;
			double w = ws->fs[eo + k[j].b1];
			if (k[j].has_d2)
				w *= ws->lr[eo + k[j].b2];
			k[j].r = w;
			z += w;
		}
		double inv = 1.0 / z;
		c->r0 = mu * inv;
		for (uint32_t j = 0; j < c->ncand; j++)
			k[j].r *= inv;
		m_add(m, ws, c, k);
		int ex;
		prod = frexp(prod * z, &ex);
		expo += ex;
	}
	return log(prod) + (double)expo * M_LN2;
}

/* The candidate with the largest responsibility of call c, or NULL when
 * "no parent" (r0) is at least as likely as every candidate (the first of
 * equals wins). */
static const struct rg_cand *most_likely_parent(const struct rg_callbuf *buf,
						 const struct rg_call *c)
{
	double best = c->r0;
	const struct rg_cand *bk = NULL;

	for (uint32_t j = 0; j < c->ncand; j++)
		if (buf->cand[c->cand + j].r > best) {
			bk = &buf->cand[c->cand + j];
			best = bk->r;
		}
	return bk;
}

/* Calls per request: count each parent's calls under the most likely
 * parent of every call, per edge. */
static int fit_slots(struct rg_model *m, struct rg_callbuf *buf)
{
	struct tj_u64map cnt;
	tj_u64map_init(&cnt);
	double (*hist)[RG_KMAX + 1] = calloc(m->nedge + 1, sizeof(*hist));
	if (!hist)
		return -1;
	for (size_t i = 0; i < buf->n; i++) {
		const struct rg_call *c = &buf->call[i];
		const struct rg_cand *bk = most_likely_parent(buf, c);
		if (!bk)
			continue;
		int added;
		uint64_t *v = tj_u64map_upsert(&cnt, (uint64_t)bk->parent << 32 |
					       bk->edge, &added);
		if (!v) {
			free(hist);
			tj_u64map_free(&cnt);
			return -1;
		}
		++*v;
	}
	for (size_t s = 0; s < cnt.cap; s++) {
		if (!cnt.ent[s].used)
			continue;
		uint32_t e = (uint32_t)cnt.ent[s].key;
		uint64_t k = cnt.ent[s].val;
		hist[e][k > RG_KMAX ? RG_KMAX : k] += 1;
	}
	for (size_t e = 0; e < m->nedge; e++) {
		struct rg_edge *ed = &m->edge[e];
		double nreq = (double)m->svc[ed->svc].requests, with = 0;
		ed->kmax = 0;
		for (int k = 1; k <= RG_KMAX; k++) {
			with += hist[e][k];
			if (hist[e][k] > 0)
				ed->kmax = k;
		}
		if (nreq < with)
			nreq = with;
		if (nreq <= 0)
			nreq = 1;
		/* Counts under the most likely parents spread out wherever
		 * parents are confused (P(N=2) > 0 for a call made once per
		 * request), and a loose pattern lets more confusion through.
		 * EM's mean n is sharper: take mostly the least-spread count
		 * law with that mean (N is floor(n) or ceil(n)), a little of
		 * the counted one. */
		double fl = floor(ed->n), fr = ed->n - fl;
		for (int k = 0; k <= RG_KMAX; k++) {
			double cnt_k = k ? hist[e][k] / nreq : (nreq - with) / nreq;
			double mv = (k == (int)fl ? 1 - fr : 0) + (k == (int)fl + 1 ? fr : 0);
			if (fl >= RG_KMAX)
				mv = k == RG_KMAX;
			ed->pk[k] = (1 - COUNT_MIX) * mv + COUNT_MIX * cnt_k;
		}
		if (ed->kmax < (int)fl + 1 && fr > 0)
			ed->kmax = (int)fl + 1 > RG_KMAX ? RG_KMAX : (int)fl + 1;
		/* P(N >= k), with half a request of pseudo-count per level */
		double ge = 1.0;
		for (int k = 0; k <= RG_KMAX; k++) {
			double next = ge - ed->pk[k];
			if (next < 0)
				next = 0;
			double h = (next * nreq + 0.5) / (ge * nreq + 1.0);
			if (h < SLOT_FLOOR)
				h = SLOT_FLOOR;
			ed->logh[k] = log(h);
			ge = next;
		}
	}
	/* pooled: a Poisson-like continuation from its mean */
	double n = m->pooled.n > 1e-6 ? m->pooled.n : 1e-6;
	for (int k = 0; k <= RG_KMAX; k++)
		m->pooled.logh[k] = log(n / (n + k + 1) > SLOT_FLOOR ?
					n / (n + k + 1) : SLOT_FLOOR);
	m->pooled.kmax = RG_KMAX;
	free(hist);
	tj_u64map_free(&cnt);
	return 0;
}

/* Order within a request: under the most likely parents, the gap between
 * a call and the response to its parent's previous call (sequential
 * calls: read the response, a little work, the next call), per edge. */
static int fit_chain(struct rg_model *m, struct rg_callbuf *buf,
		     struct fit_ws *ws)
{
	struct tj_u64map last;
	tj_u64map_init(&last);
	for (size_t e = 0; e < m->nedge; e++)
		gsl_histogram_reset(ws->hs[e]);
	for (size_t i = 0; i < buf->n; i++) {
		const struct rg_call *c = &buf->call[i];
		const struct rg_cand *bk = most_likely_parent(buf, c);
		if (!bk)
			continue;
		uint64_t p_last = c->ts - (uint64_t)bk->d1;
		uint64_t *prev = tj_u64map_get(&last, bk->parent);
		if (prev && *prev > p_last && *prev <= c->ts)
			hist_add(ws->hs[bk->edge], rg_bin_of((int64_t)(c->ts - *prev)),
				 bk->r);
		if (c->ts_reply && (!prev || c->ts_reply > *prev) &&
		    tj_u64map_put(&last, bk->parent, c->ts_reply)) {
			tj_u64map_free(&last);
			return -1;
		}
	}
	for (size_t e = 0; e < m->nedge; e++) {
		struct rg_edge *ed = &m->edge[e];
		density_set(&ed->chain, ws->hs[e], &ws->all_start);
		ed->has_chain = ed->chain.mass >= CHAIN_MIN;
	}
	tj_u64map_free(&last);
	return 0;
}

/* Starting responsibilities: uniform over the candidates, or leaning on
 * the newest, the oldest, or the one whose reply follows the call's reply
 * most closely (nesting); always a little background. */
static void init_resp(struct rg_callbuf *buf, int start)
{
	for (size_t i = 0; i < buf->n; i++) {
		struct rg_call *c = &buf->call[i];
		struct rg_cand *k = buf->cand + c->cand;
		int pick = -1;
		if (start == 1)
			pick = 0; /* candidates are kept newest first */
		else if (start == 2)
			pick = (int)c->ncand - 1;
		else if (start == 3)
			for (uint32_t j = 0; j < c->ncand; j++)
				if (k[j].has_d2 && k[j].d2 >= 0 &&
				    (pick < 0 || k[j].d2 < k[pick].d2))
					pick = (int)j;
		c->r0 = INIT_R0;
		double rest = 1 - INIT_R0;
		if (pick >= 0 && c->ncand > 1) {
			for (uint32_t j = 0; j < c->ncand; j++)
				k[j].r = (rest - INIT_LEAN) / (c->ncand - 1);
			k[pick].r = INIT_LEAN;
		} else {
			for (uint32_t j = 0; j < c->ncand; j++)
				k[j].r = rest / c->ncand;
		}
	}
}

int rg_em_converged(double prev, double ll, size_t ncalls, int *small)
{
	if (isfinite(prev) && isfinite(ll) &&
	    fabs(ll - prev) <= EM_TOL_PER_CALL * (double)(ncalls ? ncalls : 1))
		++*small;
	else
		*small = 0;
	return *small >= 2;
}

/* Where an EM run stands: the next iteration, the last two
 * log-likelihoods and whether it has converged. */
struct em_pos { int it; double prev, ll; int done, small; };

/* EM iterations it..maxit-1 from the responsibilities in buf (pos->it 0:
 * a fresh start).  Deterministic, so a run stopped at SCREEN_ITERS and
 * resumed from its saved responsibilities ends where a run from scratch
 * would. */
static void em_run(struct rg_model *m, struct rg_callbuf *buf,
		   struct fit_ws *ws, int maxit, rg_node_time_fn node_time,
		   void *ctx, struct em_pos *pos)
{
	/* the first E step weighs the start side only: the end-side ratio
	 * of a first guess is noise */
	m->use_ends = pos->it >= 1 ? m->par->ends : 0;
	m_step(m, buf, ws, 0, node_time, ctx);
	int it;
	for (it = pos->it; it < maxit && !pos->done; it++) {
		if (it == 1)
			m->use_ends = m->par->ends;
		int summed;
		pos->ll = e_step(m, buf, ws, &summed);
		m_step(m, buf, ws, summed, node_time, ctx);
		if (rg_em_converged(pos->prev, pos->ll, buf->n, &pos->small)) {
			pos->done = 1;
			break;
		}
		pos->prev = pos->ll;
	}
	pos->it = it;
	m->use_ends = m->par->ends;
	m->loglik = pos->ll;
}

/* Linear candidate weights per edge and bin for the fitted model (the
 * posterior of every decided call reads them: no exp per candidate). */
static int weight_tables(struct rg_model *m)
{
	m->wstart = malloc((m->nedge + 1) * RG_NBINS * sizeof(*m->wstart));
	m->wend = malloc((m->nedge + 1) * RG_NBINS * sizeof(*m->wend));
	if (!m->wstart || !m->wend)
		return -1;
	for (size_t e = 0; e <= m->nedge; e++) {
		const struct rg_edge *ed = e < m->nedge ? &m->edge[e] : &m->pooled;
		for (int b = 0; b < RG_NBINS; b++) {
			m->wstart[e * RG_NBINS + b] = exp(ed->start.logf[b] + ed->logn);
			m->wend[e * RG_NBINS + b] = m->use_ends ?
				exp(ed->end.logf[b] - m->bg_end.logf[b]) : 1.0;
		}
	}
	return 0;
}

/* Every stride-th call of buf with its candidates, into out. */
static int sample_calls(const struct rg_callbuf *buf, size_t stride,
			struct rg_callbuf *out)
{
	size_t n = (buf->n + stride - 1) / stride, nc = 0;
	for (size_t i = 0; i < buf->n; i += stride)
		nc += buf->call[i].ncand;
	out->call = malloc((n + 1) * sizeof(*out->call));
	out->cand = malloc((nc + 1) * sizeof(*out->cand));
	if (!out->call || !out->cand)
		return -1;
	out->cap = n + 1;
	out->capcand = nc + 1;
	for (size_t i = 0; i < buf->n; i += stride) {
		struct rg_call *c = &out->call[out->n++];
		*c = buf->call[i];
		c->cand = out->ncand;
		memcpy(out->cand + out->ncand, buf->cand + buf->call[i].cand,
		       c->ncand * sizeof(*out->cand));
		out->ncand += c->ncand;
	}
	return 0;
}

/* Prepare to fit on buf: its candidates grouped by edge (counting sort)
 * for the lognormal fits, and its end-delay counts. */
static int group_by_edge(struct fit_ws *ws, const struct rg_model *m,
			 const struct rg_callbuf *buf)
{
	size_t *pos = calloc(m->nedge + 1, sizeof(*pos));
	if (!pos)
		return -1;
	memset(ws->eoff, 0, (m->nedge + 2) * sizeof(*ws->eoff));
	for (size_t j = 0; j < buf->ncand; j++)
		ws->eoff[buf->cand[j].edge + 1]++;
	for (size_t e = 0; e < m->nedge; e++)
		ws->eoff[e + 1] += ws->eoff[e];
	ws->eoff[m->nedge + 1] = ws->eoff[m->nedge];
	for (size_t j = 0; j < buf->ncand; j++) {
		uint32_t e = buf->cand[j].edge;
		ws->eidx[ws->eoff[e] + pos[e]++] = j;
	}
	free(pos);
	gsl_histogram_reset(ws->cnte);
	for (size_t j = 0; j < buf->ncand; j++)
		if (buf->cand[j].has_d2)
			hist_add(ws->cnte, buf->cand[j].b2, 1);
	return 0;
}

static void resp_save(const struct rg_callbuf *buf, double *r)
{
	for (size_t i = 0; i < buf->n; i++)
		r[i] = buf->call[i].r0;
	for (size_t j = 0; j < buf->ncand; j++)
		r[buf->n + j] = buf->cand[j].r;
}

static void resp_load(struct rg_callbuf *buf, const double *r)
{
	for (size_t i = 0; i < buf->n; i++)
		buf->call[i].r0 = r[i];
	for (size_t j = 0; j < buf->ncand; j++)
		buf->cand[j].r = r[buf->n + j];
}

int rg_model_fit(struct rg_model *m, struct rg_callbuf *buf,
		 rg_node_time_fn node_time, void *ctx,
		 struct tj_err *err)
{
	struct fit_ws ws;
	struct rg_callbuf sub = { 0 };
	size_t stride = m->par->screen ? buf->n / m->par->screen : 0;
	if (ws_alloc(&ws, m->nedge, buf->ncand) ||
	    (stride >= 2 && sample_calls(buf, stride, &sub))) {
		ws_free(&ws, m->nedge);
		free(sub.call);
		free(sub.cand);
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory fitting %zu calls",
			       buf->n);
	}
	for (size_t j = 0; j < buf->ncand; j++) {
		const struct rg_cand *k = &buf->cand[j];
		hist_add(ws.alls, k->b1, 1);
		if (k->has_d2)
			hist_add(ws.alle, k->b2, 1);
	}
	density_all(&ws.all_start, ws.alls);
	density_all(&ws.all_end, ws.alle);
	/* EM from several starting points, the best log-likelihood wins: from
	 * uniform responsibilities it can lock onto "every call belongs to the
	 * request after its parent" when requests overlap a lot.  The starts
	 * are ranked on a stride sample of the window when it is large (the
	 * ranking needs the shape of the delays, not all of them); the best
	 * screened run is then resumed, on the whole window, not rerun. */
	struct rg_callbuf *scr = sub.n ? &sub : buf;
	double *saved = malloc((scr->n + scr->ncand + 1) * sizeof(*saved));
	int rc = 0;
	if (!saved || group_by_edge(&ws, m, scr)) {
		rc = -1;
		goto out;
	}
	ws.scale = (double)scr->n / (double)buf->n;
	int best = 0;
	struct em_pos bpos = { 0, -INFINITY, -INFINITY, 0, 0 };
	for (int start = 0; start < RG_STARTS; start++) {
		struct em_pos pos = { 0, -INFINITY, -INFINITY, 0, 0 };
		init_resp(scr, start);
		em_run(m, scr, &ws, SCREEN_ITERS, node_time, ctx, &pos);
		if (pos.ll > bpos.ll || start == 0) {
			bpos = pos;
			best = start;
			resp_save(scr, saved);
		}
	}
	resp_load(scr, saved);
	if (scr != buf) {
		/* the sample's best model gives the whole window its first
		 * responsibilities; EM goes on from there */
		m_step(m, scr, &ws, 0, node_time, ctx);
		ws.scale = 1;
		if (group_by_edge(&ws, m, buf)) {
			rc = -1;
			goto out;
		}
		m->use_ends = m->par->ends;
		int summed;
		(void)e_step(m, buf, &ws, &summed);
		bpos = (struct em_pos){ 1, -INFINITY, -INFINITY, 0, 0 };
	}
	em_run(m, buf, &ws, m->par->iters, node_time, ctx, &bpos);
	m->start_used = best;
	m->screened = scr->n;
	m->use_ends = m->par->ends;
	m->iters_run = bpos.it;
	int summed;
	(void)e_step(m, buf, &ws, &summed);
	fit_lognormals(m, buf, &ws);
	rc = fit_slots(m, buf);
	if (!rc)
		rc = fit_chain(m, buf, &ws);
	if (!rc && m->par->density == RG_DENSITY_HIST)
		rc = weight_tables(m);
out:
	free(saved);
	free(sub.call);
	free(sub.cand);
	ws_free(&ws, m->nedge);
	if (rc)
		return tj_errf(err, TJ_E_NOMEM, "regression: out of memory fitting %zu calls",
			       buf->n);
	m->fitted = 1;
	return 0;
}

static void callee_str(const struct rg_model *m, uint32_t c, char *buf,
		       size_t len)
{
	char a[TJ_ADDR_STRLEN];
	const struct rg_callee *ce = &m->callee[c];
	tj_addr_format(ce->family, ce->addr, a);
	snprintf(buf, len, ce->family == 10 ? "[%s]:%u" : "%s:%u", a, ce->port);
}

static double bin_hi(int b)
{
	return b + 1 < RG_NBINS ? bin_lo(b + 1) : 1e3 * pow(10.0, RG_DECADES);
}

/* Mode of a density: the middle of its heaviest bin, in ms. */
static double density_mode_ms(const struct rg_density *dn)
{
	int best = 0;
	double bm = -INFINITY;
	for (int b = 0; b < RG_NBINS; b++) {
		double lm = dn->logf[b] + log(bin_hi(b) - bin_lo(b));
		if (lm > bm) {
			bm = lm;
			best = b;
		}
	}
	return 0.5 * (bin_lo(best) + bin_hi(best)) / 1e6;
}

void rg_model_explain(const struct rg_model *m, FILE *f)
{
	static const char *const starts[] = { "uniform", "newest", "oldest",
					      "nesting" };
	fprintf(f, "regression: model fitted on %s; EM from the %s start (ranked on %zu calls), %d iterations, log-likelihood %.6g\n",
		m->fitted ? "the learning window" : "nothing (no calls)",
		starts[m->start_used], m->screened, m->iters_run, m->loglik);
	fprintf(f, "regression: %-22s %-21s %6s %9s %6s %8s %8s %4s  %s\n",
		"service(node/pid:port)", "callee", "n/req", "median_ms",
		"sd_ln", "mode_ms", "chain_ms", "kmax", "P(N=0..3)");
	for (size_t e = 0; e < m->nedge; e++) {
		const struct rg_edge *ed = &m->edge[e];
		const struct rg_service *s = &m->svc[ed->svc];
		char sv[64], ce[80];
		snprintf(sv, sizeof(sv), "%u/%u:%u", s->node, s->pid, s->lport);
		callee_str(m, ed->callee, ce, sizeof(ce));
		if (ed->start.mass < 0.5)
			continue; /* pairs that never explained a call */
		char ch[16] = "-";
		if (ed->has_chain)
			snprintf(ch, sizeof(ch), "%.3f", density_mode_ms(&ed->chain));
		fprintf(f, "regression: %-22s %-21s %6.3f %9.3f %6.3f %8.3f %8s %4d  %.2f %.2f %.2f %.2f\n",
			sv, ce, ed->n, exp(ed->start.mu) / 1e6, ed->start.sd,
			density_mode_ms(&ed->start), ch, ed->kmax, ed->pk[0],
			ed->pk[1], ed->pk[2], ed->pk[3]);
	}
	for (size_t o = 0; o < m->norigin; o++) {
		const struct rg_origin *og = &m->origin[o];
		char ce[80];
		callee_str(m, og->callee, ce, sizeof(ce));
		fprintf(f, "regression: background node %u pid %u -> %s: %.3f calls/s\n",
			og->node, og->pid, ce, og->mu * 1e9);
	}
}
