/* The `lookahead` correlator: a base correlator's decisions (order-align
 * by default: order-logit's scores decided along each queue), corrected by
 * the links the kernel shows after a call was written (lookahead.h):
 * completion (the handler that read the call's reply wrote its parent's
 * response) and continuation (it wrote another call of the same request).
 * Each call is decided once its reply was read and that handler ended, so
 * edges go out with a bounded delay; finish flushes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "lookahead.h"

extern const struct tj_correlator tj_correlator_classifier;
extern const struct tj_correlator tj_correlator_order_logit;
extern const struct tj_correlator tj_correlator_order_align;

#define ALGO "lookahead"

struct lookahead {
	const struct tj_correlator *base;
	void *base_st;
	struct tj_la *la;
	struct tj_edge_sink *out; /* the host's, for the call in progress */
	struct tj_edge_sink to_la; /* the base's edges go to the links */
	struct tj_err *err;
	int explain;
	int failed;
};

static const char *const known_params[] = {
	"base", "horizon_ms", "links", "sync_share", "explain", "model", "threshold", NULL
};

static int to_host(void *ctx, const struct tj_edge *e, const struct tj_edge *base,
		   enum tj_la_why why)
{
	struct lookahead *l = ctx;
	if (l->explain) {
		char c[TJ_MSGKEY_STRLEN], p[TJ_MSGKEY_STRLEN], b[TJ_MSGKEY_STRLEN];
		fprintf(stderr, "lookahead: %s <- %s by %s (base %s)\n",
			tj_msgkey_format(&e->child, c),
			e->has_parent ? tj_msgkey_format(&e->parent, p) : "none",
			tj_la_why_names[why],
			base->has_parent ? tj_msgkey_format(&base->parent, b) : "none");
	}
	return l->out->emit(l->out, e);
}

static int base_edge(struct tj_edge_sink *s, const struct tj_edge *e)
{
	struct lookahead *l = s->ctx;
	return tj_la_base(l->la, e, l->err);
}

static void la_close(void *st)
{
	struct lookahead *l = st;
	if (!l)
		return;
	if (l->base_st)
		l->base->close(l->base_st);
	tj_la_free(l->la);
	free(l);
}

static int la_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	int rc = tj_params_check(p, known_params, ALGO, err);
	if (rc < 0)
		return rc;
	const char *bn = tj_param_str(p, "base", "order-align");
	const struct tj_correlator *base =
		!strcmp(bn, "order-align") ? &tj_correlator_order_align :
		!strcmp(bn, "order-logit") ? &tj_correlator_order_logit :
		!strcmp(bn, "classifier") ? &tj_correlator_classifier : NULL;
	if (!base)
		return tj_errf(err, TJ_E_ARG, ALGO ": param base=%s: one of order-align, "
			       "order-logit, classifier", bn);
	const char *links = tj_param_str(p, "links", "sync");
	enum tj_la_links lf = !strcmp(links, "sync") ? TJ_LA_SYNC : TJ_LA_ALL;
	if (lf == TJ_LA_ALL && strcmp(links, "all"))
		return tj_errf(err, TJ_E_ARG, ALGO ": param links=%s: sync or all", links);
	double hz, share;
	int ex = 0;
	if ((rc = tj_param_double(p, "horizon_ms", TJ_LA_DEFAULT_HORIZON_MS, &hz, err)) < 0 ||
	    (rc = tj_param_double(p, "sync_share", TJ_LA_DEFAULT_SYNC_SHARE,
					  &share, err)) < 0) {
		char why[TJ_ERRMSG_MAX];
		snprintf(why, sizeof(why), "%s", err ? err->msg : "not a number");
		return tj_errf(err, TJ_E_ARG, ALGO ": %s", why);
	}
	if (!(hz > 0 && hz <= 60000))
		return tj_errf(err, TJ_E_ARG, ALGO ": param horizon_ms=%g not in (0, 60000]", hz);
	if (!(share >= 0 && share <= 1))
		return tj_errf(err, TJ_E_ARG, ALGO ": param sync_share=%g not in [0, 1]", share);
	if ((rc = tj_param_flag(p, "explain", 0, ALGO, &ex, err)) < 0)
		return rc;
	struct lookahead *l = calloc(1, sizeof(*l));
	if (!l)
		return tj_errf(err, TJ_E_NOMEM, ALGO ": out of memory");
	l->base = base;
	l->explain = ex;
	l->to_la.emit = base_edge;
	l->to_la.ctx = l;
	/* the base gets the model params (and explain) as given */
	struct tj_params bp = { 0 };
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->key[i], "base") && strcmp(p->key[i], "horizon_ms") &&
		    strcmp(p->key[i], "links") && strcmp(p->key[i], "sync_share")) {
			bp.key[bp.n] = p->key[i];
			bp.val[bp.n++] = p->val[i];
		}
	struct tj_la_opts o = { (uint64_t)(hz * 1e6), lf, share,
				l->explain ? stderr : NULL, 0 };
	if ((rc = base->open(&l->base_st, &bp, err)) < 0 ||
	    (rc = tj_la_new(&l->la, &o, to_host, l, err)) < 0) {
		la_close(l);
		return rc;
	}
	*st = l;
	return 0;
}

static int la_message(void *st, const struct tj_message *m, struct tj_edge_sink *out,
		      struct tj_err *err)
{
	struct lookahead *l = st;
	l->out = out;
	l->err = err;
	/* the links see the call first, so its base decision finds it */
	int rc = tj_la_message(l->la, m, err);
	if (rc == 0)
		rc = l->base->message(l->base_st, m, &l->to_la, err);
	return rc;
}

static void explain(const struct lookahead *l)
{
	const struct tj_la_stats *s = tj_la_stats(l->la);
	fprintf(stderr, ALGO ": %llu calls, %llu reply handlers (%llu synchronous): %llu completions, "
		"%llu continuation links, %llu handlers with several responses (no link), "
		"%llu anchors that arrived after a call; at most %llu calls waiting\n",
		(unsigned long long)s->calls, (unsigned long long)s->handlers,
		(unsigned long long)s->sync_handlers,
		(unsigned long long)s->completions, (unsigned long long)s->continuations,
		(unsigned long long)s->multi_response, (unsigned long long)s->invalid_anchor,
		(unsigned long long)s->peak_pending);
	for (int w = 0; w < TJ_LA_NWHY; w++)
		fprintf(stderr, ALGO ": decided by %-12s %llu calls, %llu of them unlike the base\n",
			tj_la_why_names[w], (unsigned long long)s->decided[w],
			(unsigned long long)s->changed[w]);
}

static int la_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	struct lookahead *l = st;
	l->out = out;
	l->err = err;
	int rc = l->base->finish(l->base_st, &l->to_la, err);
	if (rc == 0)
		rc = tj_la_finish(l->la, err);
	if (rc == 0 && l->explain)
		explain(l);
	return rc;
}

const struct tj_correlator tj_correlator_lookahead = {
	.abi = TJ_CORRELATOR_ABI,
	.name = ALGO,
	.description = "order-align corrected by look-ahead links: the handler that read "
		       "a call's reply wrote its parent's response (completion) or the "
		       "request's next call (continuation)",
	.params_help = "base=order-align  the correlator whose decisions the links correct "
		       "(order-align, order-logit, classifier)\n"
		       "horizon_ms=50  a reply's handler ends at its thread's next read, or "
		       "this long after the reply was read\n"
		       "links=sync  sync: links from synchronous calls only (the writer read "
		       "nothing before the reply); all: every reply's handler, every write "
		       "(to measure the links; worse)\n"
		       "sync_share=0.95  links only from processes whose calls were "
		       "synchronous at least this often (their threads block on calls)\n"
		       "model=(base's)  the base's model file\n"
		       "threshold=(model's)  the base's threshold\n"
		       "explain=0  1: print each call's deciding signal and the counts on stderr\n",
	.open = la_open,
	.train = NULL,
	.message = la_message,
	.finish = la_finish,
	.close = la_close,
};
