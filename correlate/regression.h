/* The regression correlator's insides, shared by its three files:
 *   regression_model.c   the delay model (signed log-delay histograms and a
 *                        lognormal summary per service edge) and its EM fit
 *   regression_assign.c  min-cost assignment (slotted min-cost flow; the
 *                        Hungarian algorithm as reference) and the windowed,
 *                        joint decision of calls
 *   regression.c         the correlator table: params, in-flight parents,
 *                        the learning buffer, streaming
 * Method and assumptions: correlate/REGRESSION.md.  Tests include this
 * header to reach the fitted model and the assignment solver. */
#ifndef TJ_REGRESSION_H
#define TJ_REGRESSION_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include "correlator.h"
#include "../lib/u64map.h"

extern const struct tj_correlator tj_correlator_regression;

/* Delay bins: a centre bin (-1us, 1us) and log-spaced magnitudes from 1us
 * to 100s on each side, RG_BINS_PER_DECADE per decade. */
#define RG_BINS_PER_DECADE 6
#define RG_DECADES 8
#define RG_SIDE (RG_BINS_PER_DECADE * RG_DECADES)
#define RG_NBINS (2 * RG_SIDE + 1) /* < 256: bins fit a byte */
#define RG_KMAX 16 /* most calls to one callee per request that we model */

/* A delay density on the shared signed log bins, kept as log densities per
 * ns so likelihoods of different delays compare. */
struct rg_density {
	double logf[RG_NBINS];
	/* lognormal summary of the positive part (explain, density=lognormal) */
	double mu, sd;
	double mass; /* total responsibility it was fitted on */
};

/* One service edge: requests of service svc calling callee. */
struct rg_edge {
	uint32_t svc, callee;
	double n;                 /* expected calls per request */
	double logn;              /* log n, kept by the fit */
	double logh[RG_KMAX + 1]; /* log P(N > k | N >= k): cost of slot k */
	double pk[RG_KMAX + 1];   /* share of requests with N = k (last: >=) */
	int kmax;                 /* slots offered per request */
	struct rg_density start;  /* call start - request last byte */
	struct rg_density end;    /* request reply - call reply */
	struct rg_density chain;  /* call start - reply of the request's previous call */
	int has_chain;            /* enough sequential calls to fit chain */
	/* fitting scratch */
	double acc_n;
};

struct rg_service { uint32_t node, pid; uint16_t lport; uint64_t requests; };
struct rg_callee { uint8_t family; uint16_t port; uint8_t addr[16]; };
struct rg_origin {
	uint32_t node, pid, callee;
	double mu;      /* background calls per ns */
	double logmu;   /* its log, kept by the fit */
	double nocand;  /* calls seen with no request in flight (learning) */
	double idle_calls; /* calls while nothing was in flight on the node */
	double acc;     /* fitting scratch */
};

enum rg_density_kind { RG_DENSITY_HIST = 0, RG_DENSITY_LOGNORMAL = 1 };

struct rg_params {
	size_t learn;       /* calls buffered before the fit */
	double window_ns;   /* span of calls matched together */
	size_t batch;       /* most calls in one matching */
	size_t max_cand;    /* candidate parents kept per call */
	double horizon_ns;  /* a request without reply stays in flight this long */
	int iters;          /* EM iterations at most */
	size_t screen;      /* calls to rank EM starts on (0: the whole window) */
	int density;        /* enum rg_density_kind */
	int ends;           /* use the end-side delay too */
	int same_pid;       /* a parent must be in the caller's process */
	int slots;          /* calls-per-request slots in the matching */
	int joint;          /* 1: min-cost matching, 0: each call its best */
	int chain;          /* weigh a call after a sibling by the gap since its reply */
	int explain;        /* print the fitted model on stderr */
};

/* The fitted model. */
struct rg_model {
	struct rg_service *svc; size_t nsvc, capsvc;
	struct rg_callee *callee; size_t ncallee, capcallee;
	struct rg_edge *edge; size_t nedge, capedge;
	struct rg_origin *origin; size_t norigin, caporigin;
	struct tj_u64map svc_map, callee_map, edge_map, origin_map;
	struct rg_edge pooled;   /* for service edges unseen while learning */
	struct rg_density bg_end; /* end-side delays of non-parents */
	double mu_default;       /* background rate for unseen origins, per ns */
	/* once fitted, with histogram densities: per edge (the pooled one
	 * last) and bin, n f_start and the end-side ratio, linear */
	double *wstart, *wend;
	double logmu_default;
	int fitted;
	int use_ends;            /* end-side ratio in the weights */
	int iters_run;
	int start_used;           /* EM starting point that won */
	size_t screened;          /* calls the starting points were ranked on */
	double loglik;
	const struct rg_params *par;
};

/* A candidate parent of one call. */
struct rg_cand {
	uint32_t parent;   /* index in the parent pool */
	uint32_t edge;     /* model edge, RG_NONE = pooled */
	int64_t d1;        /* call ts_first - request ts_last */
	int64_t d2;        /* request ts_reply - call ts_reply */
	uint8_t has_d2;
	uint8_t b1, b2;    /* delay bins of d1 and d2 (rg_bin_of) */
	double lw;         /* log f_start(d1) + log LR_end(d2), once fitted */
	double r;          /* responsibility (EM scratch) */
};

struct rg_call {
	struct tj_msgkey key;
	uint64_t ts;
	uint64_t ts_reply; /* its response's first byte, 0 if none */
	uint32_t callee, origin;
	uint32_t ncand;
	size_t cand;       /* offset of its first candidate in its buffer */
	uint32_t node;     /* index in rg_state.node */
	double r0;         /* responsibility of "no parent" (EM scratch) */
};

/* A growing list of calls with their candidates side by side. */
struct rg_callbuf {
	struct rg_call *call; size_t n, cap;
	struct rg_cand *cand; size_t ncand, capcand;
};

#define RG_NONE UINT32_MAX

/* An inbound request that may be a parent. */
struct rg_used { uint32_t callee, n; };
struct rg_parent {
	struct tj_msgkey key;
	uint64_t ts_first, ts_last, ts_reply;
	uint64_t last_reply; /* latest response to a call decided for it */
	uint32_t svc, pid;
	uint32_t refs;      /* in-flight list + calls that name it, undecided */
	uint32_t nused, capused;
	struct rg_used *used; /* calls decided so far, per callee */
	uint32_t next_free;
	/* matching scratch, valid while its mark equals the epoch that set
	 * it (rg_state.epoch): no table to clear between matchings */
	uint64_t dmark, cmark, smark;
	size_t drow;        /* first call of the window that names it */
	size_t csib;        /* its first row in the previous pass's solution */
	uint32_t cpair;     /* its first (parent, callee) pair in the component */
};

/* Per node: requests in flight and calls waiting for a decision. */
struct rg_node {
	uint32_t id;
	uint32_t *active; size_t nactive, capactive; /* parents, by ts_first */
	size_t expire_at;   /* prune the in-flight list when it gets this long */
	struct rg_callbuf pend;
	uint64_t first_ts, last_ts; /* span seen while learning */
	uint64_t busy_until; /* latest end of a request seen (learning) */
	double idle_ns;      /* time with no request in flight (learning) */
	int seen;
};

/* Scratch arrays reused by every decision (grow only). */
enum { RG_SCR_UP, RG_SCR_ROWS, RG_SCR_CHOICE, RG_SCR_CHALL, RG_SCR_PAIRS,
       RG_SCR_COST, RG_SCR_ROWCOL, RG_SCR_CPAR, RG_SCR_HUNG, RG_SCR_CLW,
       RG_SCR_SUP, RG_SCR_SROWS, RG_SCR_SCOL, RG_SCR_HEAD, RG_SCR_SLOTV,
       RG_SCR_ADJ, RG_SCR_RPTR, RG_SCR_SPTR, RG_SCR_LPQ, RG_SCR_ACAND,
       RG_SCR_NONEC, RG_SCR_SLOTC, RG_SCR__N };

struct rg_state {
	struct rg_params par;
	struct rg_model model;
	struct rg_parent *pool; size_t npool, cappool;
	uint32_t free_head;
	struct rg_node *node; size_t nnode, capnode;
	size_t last_node;          /* node of the previous message */
	struct tj_u64map node_map;
	int learning;
	struct rg_callbuf learnbuf;
	struct rg_cand *scratch; size_t capscratch; /* eligible candidates */
	uint64_t epoch;                             /* see rg_parent.dmark */
	void *scr[RG_SCR__N]; size_t capscr[RG_SCR__N];
	struct {
		uint64_t calls, parented, none, nocand, matchings, dropped;
	} stats;
};

/* Decide the first ncommit calls of pend, matching them jointly with the
 * rest of pend (lookahead); emit their edges, record parents' used slots,
 * release references, and drop them from pend. */
int rg_decide(struct rg_state *st, struct rg_callbuf *pend, size_t ncommit,
	      struct tj_edge_sink *out, struct tj_err *err);
/* Scratch slot i with at least bytes, or NULL (regression.c). */
void *rg_scratch(struct rg_state *st, int i, size_t bytes);
/* Give up one reference to a parent (regression.c). */
void rg_parent_release(struct rg_state *st, uint32_t p);
int rg_emit(struct tj_edge_sink *out, const struct tj_msgkey *child,
	    const struct tj_msgkey *parent, double score, struct tj_err *err);

/* model */
void rg_model_init(struct rg_model *m, const struct rg_params *par);
void rg_model_free(struct rg_model *m);
/* Interning creates only before the fit; after it an unknown service,
 * callee or origin is RG_NONE (the pooled model, the default background). */
uint32_t rg_service_intern(struct rg_model *m, uint32_t node, uint32_t pid,
			   uint16_t lport);
uint32_t rg_callee_intern(struct rg_model *m, const struct tj_message *c);
uint32_t rg_origin_intern(struct rg_model *m, uint32_t node, uint32_t pid,
			  uint32_t callee);
/* Edge of (svc, callee); create it if create, else RG_NONE if unknown. */
uint32_t rg_edge_find(struct rg_model *m, uint32_t svc, uint32_t callee,
		      int create);
const struct rg_edge *rg_edge_get(const struct rg_model *m, uint32_t e);
/* Fit by EM on the learning buffer.  node_time(ctx, node, &span, &idle)
 * gives the time (ns) the learning window covers on that node and how
 * much of it had no request in flight, for background rates. */
typedef void (*rg_node_time_fn)(void *ctx, uint32_t node, double *span,
				double *idle);
int rg_model_fit(struct rg_model *m, struct rg_callbuf *buf,
		 rg_node_time_fn node_time, void *ctx, struct tj_err *err);
/* EM has converged when the log-likelihood moved by less than 1e-4 per
 * call fitted in two iterations running (prev and ll finite): one small
 * step is not enough, EM often crawls for a step before it speeds up.
 * *small counts the small steps in a row (start it at 0). */
int rg_em_converged(double prev, double ll, size_t ncalls, int *small);
/* log f_start(d1) + log LR_end(d2) of a candidate under the fitted model. */
double rg_cand_logweight(const struct rg_model *m, const struct rg_cand *c);
/* The same in context: if prev_reply (the latest response to a call of
 * the candidate parent, before this call, 0 if none) is known and the
 * edge has a chain density, the gap since it replaces the start delay. */
double rg_cand_logweight_ctx(const struct rg_model *m, const struct rg_cand *c,
			     uint64_t call_ts, uint64_t prev_reply);
/* The same as a linear weight times the edge's calls per request,
 * n_e f_start(d1) LR_end(d2): a candidate's unnormalised posterior. */
double rg_cand_weight(const struct rg_model *m, const struct rg_cand *c);
/* background intensity of an origin per ns, and its log */
double rg_origin_mu(const struct rg_model *m, uint32_t origin);
/* log background intensity of an origin, per ns. */
double rg_origin_logmu(const struct rg_model *m, uint32_t origin);
void rg_model_explain(const struct rg_model *m, FILE *f);

/* The bin of the signed delay d (ns) on the shared bins. */
int rg_bin_of(int64_t d);

/* Keep the k (>= 1) heaviest (by lw) of c[0..n) in c[0..k), heaviest
 * first, equal weights in their order in c: the first k of a stable sort
 * by descending lw (what glibc's qsort, a merge sort, then a cut gave),
 * without sorting the hundreds of requests in flight at high load for 16
 * of them.  Returns how many were kept, min(n, k). */
size_t rg_keep_heaviest(struct rg_cand *c, size_t n, size_t k);

/* Min-cost assignment of nrows rows to distinct columns (nrows <= ncols),
 * cost row-major nrows x ncols; a cost >= RG_FORBID means not allowed.
 * row_col gets each row's column.  Returns 0, or -1 if out of memory or
 * no assignment avoids a forbidden cell. */
#define RG_FORBID 1e15
int rg_assign(const double *cost, size_t nrows, size_t ncols, int *row_col);
/* The same with caller workspace of rg_assign_ws_size(nrows, ncols). */
size_t rg_assign_ws_size(size_t nrows, size_t ncols);
int rg_assign_ws(const double *cost, size_t nrows, size_t ncols, int *row_col,
		 void *ws);
/* Min-cost assignment where columns come in pairs of slots: row i may
 * take arc e in [rowptr[i], rowptr[i+1]) to pair apair[e] at acost[e], or
 * its own "none" at none[i]; the k-th row to take pair q also pays
 * slot[sptr[q] + k] (nondecreasing in k; a pair has at least as many slots
 * as rows with an arc to it).  The same optimum as rg_assign on the
 * expanded matrix (a column per slot, cost arc + slot), on a graph with an
 * arc per candidate instead of a cell per candidate and slot.  row_arc
 * gets each row's arc or -1 (none).  Returns 0, or -1 if it failed.
 * Workspace: rg_flow_ws_size(nrows, npairs) bytes. */
size_t rg_flow_ws_size(size_t nrows, size_t npairs);
int rg_flow_assign(size_t nrows, size_t npairs, const size_t *rowptr,
		   const uint32_t *apair, const double *acost,
		   const double *none, const size_t *sptr, const double *slot,
		   int *row_arc, void *ws);

#endif
