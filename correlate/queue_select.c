/* The `queue-select` correlator, the default: run several correlators over
 * the same stream and, per (process, destination) queue, emit the answers
 * of the one whose answers explain that queue's log in the fewest nats
 * (consistency.h: delays to the call, nesting of the call in its parent,
 * calls per request).  No labels: the choice is unsupervised, made per
 * queue because the regime (a FIFO-saturated connection, a chain, a
 * fan-out on an M:N runtime) is a property of the queue, not the capture.
 * Where the kernel's completion links are backed by a method that does
 * not decide by them (corroborated()), they first rule out the methods
 * they contradict (a sign test); elsewhere only methods whose answers
 * another method's back are candidates (candidates()).
 *
 * Streaming: a call waits until every method has answered it (the slowest
 * sets the lag: regression's learning buffer), then in its queue's hold
 * until the queue has seen `warm` answered calls; from then on it goes out
 * at once with the queue's current choice (recomputed every 256 calls).
 * Memory: the methods' own, the calls they have not all answered, at most
 * `warm` held calls per queue, and a fixed ring of recent requests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host.h"
#include "consistency.h"
#include "settle.h"
#include "lookahead.h"
#include "classifier.h"
#include "../models/call_units.h"
#include "../lib/u64map.h"
#include "../lib/util.h"
#include "../lib/event.h"

#define QS_MAX_METHODS TJ_CONS_METHODS
#define QS_REQ_RING (1u << 17) /* requests remembered for their times and counts */
#define QS_REQ_QUEUES 4        /* queues whose call counts a request keeps */
#define QS_MIN_OWN 200         /* fewer answered calls: the sum over queues decides */
#define QS_RECHOOSE 256        /* answered calls between two choices of a queue */
#define QS_NIL UINT32_MAX
#define QS_SEEN (1u << 17)     /* answered calls remembered for late evidence */
#define QS_MIN_ANCHORS 30      /* fewer: the description length alone decides */
#define QS_COVER 0             /* links decide where they cover this share of calls */
#define QS_CORROBORATE 0.5     /* links decide where a method that does not decide by
				  them agrees with this share of them (a majority) */
#define QS_BACKED 0.5          /* else: the candidates are the methods another backs
				  at half the rate the best-backed one is (consistency.h) */
#define QS_SETTLE 4            /* re-choices a pick must hold before its queue settles */
#define QS_AUDIT 64            /* a settled queue's re-choice periods between two audits */

static const char *const default_methods =
	"lookahead,order-align,classifier,regression,metadata,issue-fifo,nest,unit-fifo";

/* Methods that decide by the same evidence as the completion links (what a
 * thread wrote after it read a reply: lookahead's links, nest's
 * continuations): their agreement with the links is by construction, so it
 * cannot show that a queue's links are causal (corroborated()).  One line
 * each. */
static const struct {
	const char *name;
	int pipeline_guard; /* it stops using them itself where a queue pipelines */
	int unmarked;       /* judge=soft: it marks no call as decided by them, so
			       its agreement with a link is never evidence for it */
	int builds;         /* judge=soft: its answers fit the description length's
			       end and count parts by construction (it nests each
			       call in its parent, fixes the calls per request):
			       it loses near-ties (tj_cons_margin) */
} link_methods[] = {
	{ "lookahead", 1, 0, 0 }, /* lookahead.c pipelining(): the same 5 % share;
				     its link-decided calls are marked (on_derived) */
	{ "nest", 0, 1, 1 },      /* nest.c pipelining(): only above 50 % */
	{ "nest-em", 0, 1, 1 },   /* nest's groups, continuations and counts */
};

/* A method that is another method's answers corrected by lookahead's
 * links (lookahead.h, with the `lookahead` correlator's defaults): where
 * both are in the list, the base runs once and its answers feed the
 * links too, instead of a second copy of the base inside the method.  One
 * line per such pair. */
static const struct { const char *method, *base; } derived_methods[] = {
	{ "lookahead", "order-align" }, /* lookahead's default base */
};

/* Methods whose feature pass (models/features.h) can be shared: one line
 * each. */
static const char *const feature_methods[] = { "classifier", "order-logit", "order-align" };

struct qs_req {
	struct tj_msgkey key;
	uint64_t ts_first, ts_reply;
	uint32_t nq;
	uint32_t q[QS_REQ_QUEUES];
	uint16_t cnt[QS_REQ_QUEUES][QS_MAX_METHODS]; /* calls per queue per method */
};

struct qs_call {
	struct tj_msgkey key, parent[QS_MAX_METHODS];
	uint64_t ts_first, ts_reply;
	double score[QS_MAX_METHODS];
	uint32_t queue;
	uint32_t next;          /* hold list, or free list */
	uint8_t has_parent[QS_MAX_METHODS];
	uint8_t answered;       /* bit per method */
	uint8_t by_link;        /* bit per method: its answer came from its own links */
	uint8_t has_anchor;
	uint8_t need;           /* bit per method given the call: it waits for these */
	int8_t pick;            /* need is a settled queue's: the method it was given for */
	struct tj_msgkey anchor; /* the parent a completion link names */
};

/* An answered call, remembered (direct-mapped by its key) for a
 * completion link that comes after it went out. */
struct qs_seen {
	struct tj_msgkey key;
	uint32_t queue;
	uint8_t used, by_link, has_parent[QS_MAX_METHODS];
	int8_t settled;          /* -1: every method answered; else the settled pick, alone */
	uint64_t parent[QS_MAX_METHODS]; /* tj_msgkey_hash of each answer */
};

struct qs_queue {
	uint32_t node, pid;
	uint8_t family;
	uint16_t rport;
	uint8_t raddr[16];
	uint64_t proc;           /* key of its process in procs */
	uint64_t nreq_base;      /* the process's requests before the queue began, and
				    while it was settled (its calls then are not judged) */
	uint64_t nreq_settled;   /* the process's requests when it last settled */
	struct tj_cons cons[QS_MAX_METHODS];
	uint64_t answered;       /* calls every method answered */
	uint64_t anchored;       /* of them with a completion link */
	uint64_t agree[QS_MAX_METHODS]; /* anchored calls each method answered as the link */
	uint64_t judged[QS_MAX_METHODS]; /* anchored calls a method did not decide by the link */
	uint64_t judged_agree[QS_MAX_METHODS]; /* of them, answered as the link */
	uint64_t same[QS_MAX_METHODS][QS_MAX_METHODS]; /* calls two methods gave one parent */
	uint32_t beats[QS_MAX_METHODS][QS_MAX_METHODS]; /* [a][b]: a agreed, b did not */
	uint64_t sent[QS_MAX_METHODS]; /* calls emitted with each method's answer */
	uint64_t msgs, merged;   /* call messages; those holding several calls */
	uint32_t hold_head, hold_tail, nhold;
	int pick;                /* the current choice; -1 before warm-up */
	/* Settling (settle_check): once the pick has held `settle` re-choices,
	 * only the methods in run get the queue's calls; the judge's scores
	 * above stay as they were (frozen alike for every method, so they
	 * compare again once all run).  While settled, the pick is checked
	 * against the completion links on its own. */
	uint8_t run;             /* methods the queue needs: all, or its pick (and base) */
	uint8_t give;            /* methods given its calls: run over the process's queues */
	uint8_t settled;
	uint32_t stable;         /* re-choices in a row that kept the pick */
	uint64_t picked_at;      /* judged calls when the pick was first picked */
	double lead_at;          /* its lead then (nats per call) */
	uint64_t since;          /* calls sent since the queue settled */
	uint64_t post_judged, post_agree; /* links since then judging the pick; agreeing */
	double base_agree;       /* the pick's agreement with its judging links when it settled */
	/* Blocks of QS_RECHOOSE judged links: each method's share of
	 * agreement per block, summed (and squared), for the spread a settled
	 * pick's block is measured against; while settled, the pick's own
	 * blocks join them. */
	uint32_t blk_judged[QS_MAX_METHODS], blk_agree[QS_MAX_METHODS];
	struct tj_blocks blocks[QS_MAX_METHODS];
	uint64_t first_settled;  /* answered calls when it first settled; 0: never */
	uint64_t settled_calls;  /* calls given only to run */
	uint32_t nsettle, unsettle_links, audits; /* times settled; un-settled by links, audits */
};

struct qsel;
struct qs_sink {
	struct tj_edge_sink sink;
	struct qsel *s;
	unsigned m;
};

struct qsel {
	unsigned nm;
	const struct tj_correlator *mc[QS_MAX_METHODS];
	void *mst[QS_MAX_METHODS];
	struct qs_sink msink[QS_MAX_METHODS];
	/* derived methods (derived_methods): their links, their base's index */
	struct tj_la *dla[QS_MAX_METHODS];
	int base_of[QS_MAX_METHODS];     /* -1: a method run on its own */
	uint8_t feeds[QS_MAX_METHODS];   /* a base: bit per derived method it feeds */
	struct qs_sink bsink[QS_MAX_METHODS]; /* a base's edges, into buf */
	struct tj_edge *buf;             /* a base's edges from one call of it */
	size_t nbuf, buf_cap;
	struct tj_feat_memo *memo;       /* one feature pass for feature_methods */
	uint8_t all;             /* answered mask when every method answered */
	int explain;
	int links;               /* links=1: completion links decide where there are enough */
	int judge_own;           /* 1: a method is judged on links it decided by, too */
	uint8_t by_links;        /* bit per method in link_methods */
	uint8_t pipe_blind;      /* of them, those that go on using them on a pipelined
				    queue, where they name the wrong call: no candidates there */
	uint8_t unmarked, builds; /* judge=soft: link_methods' columns, bit per method */
	int soft;                /* judge=soft (1) or sign (0) */
	unsigned related[QS_MAX_METHODS]; /* bit per method m derives from (derived_methods) */
	double backed;           /* where links do not decide: tj_cons_backed's share */
	double corroborate;      /* links decide where an independent method agrees with
				    this share of them (0: wherever there are enough) */
	double cover;            /* links decide where they cover this share of calls */
	double z;                /* the sign test's threshold */
	uint64_t warm;
	uint32_t settle;         /* re-choices a pick holds before its queue settles; 0: never */
	uint32_t audit;          /* re-choice periods a queue stays settled; 0: for good */
	uint8_t need_of[QS_MAX_METHODS]; /* a method and the base it runs on (derived_methods) */
	uint8_t cur_need;        /* the methods the message being fed goes to (a call's) */
	uint64_t given[QS_MAX_METHODS]; /* calls each method was given */
	struct tj_edge_sink *out; /* where chosen edges go (set per call) */
	struct tj_err *err;
	struct tj_err fault;      /* an error met inside a method's emit */

	struct qs_call *calls;
	size_t ncalls_cap;
	uint32_t free_head;
	struct tj_u64map call_ix;  /* call key hash -> index in calls */

	struct qs_req *reqs;       /* ring */
	uint64_t req_next;
	struct tj_u64map req_ix;   /* request key hash -> ring slot */
	struct tj_u64map procs;    /* hash(node, pid) -> requests seen */
	struct tj_call_units units; /* calls per call message (models/call_units.h) */

	struct qs_queue *queues;
	size_t nqueues, queues_cap;
	struct tj_la *la;          /* completion links (lookahead.h), every handler */
	struct tj_la *fix;         /* correct=1: lookahead's links over the chosen answers */
	struct qs_seen *seen;
	struct tj_u64map queue_ix; /* hash(node, pid, dest) -> index */
};

static void qs_close(void *st);

static const char *const known_params[] = { "methods", "warm", "links", "z", "correct",
					    "judge_own", "cover", "corroborate", "backed", "share",
					    "handoff", "judge", "settle", "audit", "explain", NULL };

/* methods=a,b,c: built-ins only, no repeats, not ourselves. */
static int parse_methods(struct qsel *s, const char *list, struct tj_err *err)
{
	char buf[256];
	if (strlen(list) >= sizeof(buf))
		return tj_errf(err, TJ_E_ARG, "queue-select: param methods=%s: too long", list);
	strcpy(buf, list);
	char *save = NULL;
	for (char *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		/* by their own names: "default" may one day be this very one */
		const struct tj_correlator *c =
			strcmp(name, "default") ? tj_correlator_builtin(name) : NULL;
		if (!c || !strcmp(c->name, "queue-select"))
			return tj_errf(err, TJ_E_ARG,
				       "queue-select: param methods: '%s' is not a built-in "
				       "correlator it can run (see correlate --list)", name);
		for (unsigned i = 0; i < s->nm; i++)
			if (s->mc[i] == c)
				return tj_errf(err, TJ_E_ARG,
					       "queue-select: param methods: '%s' twice", name);
		if (s->nm == QS_MAX_METHODS)
			return tj_errf(err, TJ_E_ARG,
				       "queue-select: param methods: more than %d", QS_MAX_METHODS);
		for (size_t l = 0; l < sizeof(link_methods) / sizeof(link_methods[0]); l++) {
			if (strcmp(c->name, link_methods[l].name))
				continue;
			s->by_links |= (uint8_t)(1u << s->nm);
			if (!link_methods[l].pipeline_guard)
				s->pipe_blind |= (uint8_t)(1u << s->nm);
			if (link_methods[l].unmarked)
				s->unmarked |= (uint8_t)(1u << s->nm);
			if (link_methods[l].builds)
				s->builds |= (uint8_t)(1u << s->nm);
		}
		s->mc[s->nm++] = c;
	}
	if (s->nm == 0)
		return tj_errf(err, TJ_E_ARG, "queue-select: param methods=%s: no method", list);
	return 0;
}

static int method_answer(struct qsel *s, unsigned m, const struct tj_edge *e, int by_link);
static int method_emit(struct tj_edge_sink *sink, const struct tj_edge *e);
static struct qs_call *call_find(struct qsel *s, const struct tj_msgkey *k);

/* A derived method's decided edge: its answer, marked when its own links
 * decided it (those links cannot judge it: score_anchor). */
static int on_derived(void *ctx, const struct tj_edge *e, const struct tj_edge *base,
		      enum tj_la_why why)
{
	(void)base;
	struct qs_sink *ms = ctx;
	return method_answer(ms->s, ms->m, e,
			     why == TJ_LA_COMPLETION || why == TJ_LA_CONTINUATION);
}

/* A base's edge: kept until the base returns, then handed to its derived
 * methods' links first and to its own answers after (the order in which
 * a separate lookahead listed before it would have answered). */
static int base_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct qs_sink *bs = (struct qs_sink *)sink;
	struct qsel *s = bs->s;
	if (tj_grow((void **)&s->buf, &s->buf_cap, s->nbuf + 1, sizeof(*s->buf)) < 0) {
		tj_errf(&s->fault, TJ_E_NOMEM, "queue-select: out of memory");
		return -TJ_E_NOMEM;
	}
	s->buf[s->nbuf++] = *e;
	return 0;
}

/* Method j's buffered edges to its derived methods' links (finished too
 * at the end of input), then to its own answers. */
static int deliver_base(struct qsel *s, unsigned j, int at_end)
{
	int rc = 0;
	for (unsigned i = 0; rc == 0 && i < s->nm; i++) {
		if (!(s->feeds[j] & (1u << i)))
			continue;
		for (size_t k = 0; rc == 0 && k < s->nbuf; k++) {
			/* a settled queue's call the derived method was not given */
			const struct qs_call *c = call_find(s, &s->buf[k].child);
			if (!c || (c->need >> i) & 1)
				rc = tj_la_base(s->dla[i], &s->buf[k], s->err);
		}
		if (rc == 0 && at_end)
			rc = tj_la_finish(s->dla[i], s->err);
	}
	for (size_t k = 0; rc == 0 && k < s->nbuf; k++)
		rc = method_emit(&s->msink[j].sink, &s->buf[k]);
	s->nbuf = 0;
	return rc;
}

/* Pair each derived method with its base where both run. */
static int derive(struct qsel *s, struct tj_err *err)
{
	for (unsigned i = 0; i < s->nm; i++) {
		s->base_of[i] = -1;
		for (size_t d = 0; d < sizeof(derived_methods) / sizeof(derived_methods[0]); d++) {
			if (strcmp(s->mc[i]->name, derived_methods[d].method))
				continue;
			for (unsigned j = 0; j < s->nm; j++)
				if (!strcmp(s->mc[j]->name, derived_methods[d].base))
					s->base_of[i] = (int)j;
		}
		if (s->base_of[i] < 0)
			continue;
		struct tj_la_opts o = { .horizon_ns = TJ_LA_DEFAULT_HORIZON_MS * 1000000ull,
					.links_from = TJ_LA_SYNC,
					.sync_share = TJ_LA_DEFAULT_SYNC_SHARE };
		int rc = tj_la_new(&s->dla[i], &o, on_derived, &s->msink[i], err);
		if (rc < 0)
			return rc;
		s->feeds[s->base_of[i]] |= (uint8_t)(1u << i);
	}
	return 0;
}
static int on_link(void *ctx, const struct tj_edge *e, const struct tj_edge *base,
		   enum tj_la_why why);

/* correct=1: a corrected edge goes to the host. */
static int on_fixed(void *ctx, const struct tj_edge *e, const struct tj_edge *base,
		    enum tj_la_why why)
{
	struct qsel *s = ctx;
	(void)base;
	(void)why;
	if (s->out->emit(s->out, e) < 0)
		return tj_errf(s->err, TJ_E_IO, "queue-select: writing an edge failed");
	return 0;
}

/* A param that is a share, in [0, 1]. */
static int param_share(const struct tj_params *p, const char *key, double def, double *out,
		       struct tj_err *err)
{
	int rc = tj_param_double(p, key, def, out, err);
	if (rc == 0 && !(*out >= 0 && *out <= 1))
		rc = tj_errf(err, TJ_E_ARG, "queue-select: param %s=%g: in [0, 1]", key, *out);
	return rc;
}

/* A param that is a whole number in [lo, hi]. */
static int param_whole(const struct tj_params *p, const char *key, double def, double lo,
		       double hi, double *out, struct tj_err *err)
{
	int rc = tj_param_double(p, key, def, out, err);
	if (rc == 0 && !(*out >= lo && *out <= hi && *out == floor(*out)))
		rc = tj_errf(err, TJ_E_ARG, "queue-select: param %s=%g: a whole number in [%.0f, %.0f]",
			     key, *out, lo, hi);
	return rc;
}

static int qs_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	int rc = tj_params_check(p, known_params, "queue-select", err);
	if (rc < 0)
		return rc;
	struct qsel *s = calloc(1, sizeof(*s));
	if (!s)
		return tj_errf(err, TJ_E_NOMEM, "queue-select: out of memory");
	s->free_head = QS_NIL;
	tj_u64map_init(&s->call_ix);
	tj_u64map_init(&s->req_ix);
	tj_u64map_init(&s->procs);
	tj_call_units_init(&s->units);
	tj_u64map_init(&s->queue_ix);
	double warm = 0, settle = 0, audit = 0;
	int ex = 0;
	rc = tj_param_flag(p, "explain", 0, "queue-select", &ex, err);
	if (rc == 0)
		rc = param_whole(p, "warm", 1000, 1, 100000, &warm, err);
	if (rc == 0)
		rc = param_whole(p, "settle", QS_SETTLE, 0, 1000, &settle, err);
	if (rc == 0)
		rc = param_whole(p, "audit", QS_AUDIT, 0, 1000000, &audit, err);
	if (rc == 0)
		rc = tj_param_double(p, "z", 2, &s->z, err);
	if (rc == 0 && !(s->z >= 0 && s->z <= 10))
		rc = tj_errf(err, TJ_E_ARG, "queue-select: param z=%g: in [0, 10]", s->z);
	int links = 1, correct = 0, judge_own = 0, share = 1, handoff = 1;
	if (rc == 0)
		rc = tj_param_flag(p, "correct", 0, "queue-select", &correct, err);
	if (rc == 0)
		rc = tj_param_flag(p, "links", 1, "queue-select", &links, err);
	if (rc == 0)
		rc = tj_param_flag(p, "judge_own", 0, "queue-select", &judge_own, err);
	if (rc == 0)
		rc = tj_param_flag(p, "share", 1, "queue-select", &share, err);
	if (rc == 0)
		rc = tj_param_flag(p, "handoff", 1, "queue-select", &handoff, err);
	if (rc == 0)
		rc = param_share(p, "cover", QS_COVER, &s->cover, err);
	if (rc == 0)
		rc = param_share(p, "corroborate", QS_CORROBORATE, &s->corroborate, err);
	if (rc == 0)
		rc = param_share(p, "backed", QS_BACKED, &s->backed, err);
	/* sign: the soft judge won on the real captures held out but lost
	 * up to 3.5 points on synthetic seed 1 at high load (ASYNC.md, "A
	 * judge that weighs its evidence"): not the default */
	const char *judge = tj_param_str(p, "judge", "sign");
	if (rc == 0 && strcmp(judge, "soft") && strcmp(judge, "sign"))
		rc = tj_errf(err, TJ_E_ARG, "queue-select: param judge=%s: soft or sign", judge);
	if (rc == 0) {
		s->soft = !strcmp(judge, "soft");
		s->links = links == 1;
		s->judge_own = judge_own == 1;
		s->explain = ex == 1;
		s->warm = (uint64_t)warm;
		s->settle = (uint32_t)settle;
		s->audit = (uint32_t)audit;
		rc = parse_methods(s, tj_param_str(p, "methods", default_methods), err);
	}
	for (unsigned i = 0; rc == 0 && i < s->nm; i++)
		for (size_t d = 0; d < sizeof(derived_methods) / sizeof(derived_methods[0]); d++)
			for (unsigned j = 0; j < s->nm; j++)
				if (!strcmp(s->mc[i]->name, derived_methods[d].method) &&
				    !strcmp(s->mc[j]->name, derived_methods[d].base))
					s->related[i] |= 1u << j;
	if (rc == 0 && (!(s->reqs = calloc(QS_REQ_RING, sizeof(*s->reqs))) ||
			!(s->seen = calloc(QS_SEEN, sizeof(*s->seen)))))
		rc = tj_errf(err, TJ_E_NOMEM, "queue-select: out of memory");
	if (rc == 0) {
		/* handoff=1: the FIFO hand-off's continuations judge nothing (lookahead.h) */
		struct tj_la_opts lo = { .horizon_ns = 50 * 1000000ull, .links_from = TJ_LA_ALL,
					 .no_handoff = handoff == 1 };
		rc = tj_la_new(&s->la, &lo, on_link, s, err);
	}
	if (rc == 0 && correct == 1) { /* lookahead's own defaults */
		struct tj_la_opts fo = { .horizon_ns = TJ_LA_DEFAULT_HORIZON_MS * 1000000ull,
					 .links_from = TJ_LA_SYNC,
					 .sync_share = TJ_LA_DEFAULT_SYNC_SHARE };
		rc = tj_la_new(&s->fix, &fo, on_fixed, s, err);
	}
	if (rc == 0 && share == 1)
		rc = derive(s, err);
	for (unsigned i = 0; i < s->nm && share != 1; i++)
		s->base_of[i] = -1;
	for (unsigned i = 0; i < s->nm; i++)
		s->need_of[i] = (uint8_t)(1u << i | (s->base_of[i] >= 0 ? 1u << s->base_of[i] : 0));
	for (unsigned i = 0; rc == 0 && i < s->nm; i++) {
		struct tj_params none = { 0 };
		s->msink[i] = (struct qs_sink){ { method_emit, NULL }, s, i };
		s->bsink[i] = (struct qs_sink){ { base_emit, NULL }, s, i };
		s->all |= (uint8_t)(1u << i);
		if (s->base_of[i] < 0)
			rc = s->mc[i]->open(&s->mst[i], &none, err);
		for (size_t f = 0; rc == 0 && s->mst[i] && share == 1 &&
				   f < sizeof(feature_methods) / sizeof(feature_methods[0]); f++) {
			if (strcmp(s->mc[i]->name, feature_methods[f]))
				continue;
			if (!s->memo)
				rc = tj_feat_memo_new(&s->memo, err);
			if (rc == 0)
				tj_classifier_share_features(s->mst[i], s->memo);
		}
	}
	if (rc < 0) {
		qs_close(s);
		return rc;
	}
	*st = s;
	return 0;
}

static struct qs_call *call_find(struct qsel *s, const struct tj_msgkey *k)
{
	uint64_t *ix = tj_u64map_get(&s->call_ix, tj_msgkey_hash(k));
	if (!ix || !tj_msgkey_eq(&s->calls[*ix].key, k))
		return NULL;
	return &s->calls[*ix];
}

static struct qs_req *req_find(struct qsel *s, const struct tj_msgkey *k)
{
	uint64_t *ix = tj_u64map_get(&s->req_ix, tj_msgkey_hash(k));
	if (!ix || !tj_msgkey_eq(&s->reqs[*ix].key, k))
		return NULL;
	return &s->reqs[*ix];
}

static uint64_t proc_key(uint32_t node, uint32_t pid)
{
	return tj_hash64(((uint64_t)node << 32) | pid);
}

/* An inbound request: remembered in the ring (the oldest forgotten). */
static int add_request(struct qsel *s, const struct tj_message *m)
{
	uint32_t slot = (uint32_t)(s->req_next++ % QS_REQ_RING);
	struct qs_req *r = &s->reqs[slot];
	if (s->req_next > QS_REQ_RING) {
		uint64_t h = tj_msgkey_hash(&r->key);
		uint64_t *ix = tj_u64map_get(&s->req_ix, h);
		if (ix && *ix == slot)
			tj_u64map_del(&s->req_ix, h);
	}
	memset(r, 0, sizeof(*r));
	r->key = m->key;
	r->ts_first = m->ts_first;
	r->ts_reply = m->ts_reply;
	int added;
	uint64_t *n = tj_u64map_upsert(&s->procs, proc_key(m->key.node, m->pid), &added);
	if (!n || tj_u64map_put(&s->req_ix, tj_msgkey_hash(&m->key), slot))
		return tj_errf(s->err, TJ_E_NOMEM, "queue-select: out of memory");
	++*n;
	return 0;
}

/* What a process's calls are given to: every method some queue of it
 * still needs.  Per process, not per queue: a method reasons over all of
 * a process's calls (nest's nesting, the features' "what the thread last
 * did", order along a thread), so one that answers a queue must see the
 * calls to the process's other queues too. */
static void process_gives(struct qsel *s, uint64_t proc)
{
	uint8_t give = 0;
	for (size_t i = 0; i < s->nqueues; i++)
		if (s->queues[i].proc == proc)
			give |= s->queues[i].run;
	for (size_t i = 0; i < s->nqueues; i++)
		if (s->queues[i].proc == proc)
			s->queues[i].give = give;
}

static int queue_of(struct qsel *s, const struct tj_message *m, uint32_t *out)
{
	uint64_t h = tj_hash64(((uint64_t)m->key.node << 32) | m->pid);
	h = tj_hash64(h ^ m->family ^ ((uint64_t)m->rport << 8));
	uint64_t a, b;
	memcpy(&a, m->raddr, 8);
	memcpy(&b, m->raddr + 8, 8);
	h = tj_hash64(h ^ tj_hash64(a) ^ tj_hash64(b + 1));
	int added;
	uint64_t *ix = tj_u64map_upsert(&s->queue_ix, h, &added);
	if (!ix)
		return tj_errf(s->err, TJ_E_NOMEM, "queue-select: out of memory");
	if (added) {
		if (tj_grow((void **)&s->queues, &s->queues_cap, s->nqueues + 1,
			    sizeof(*s->queues)) < 0) {
			tj_u64map_del(&s->queue_ix, h);
			return tj_errf(s->err, TJ_E_NOMEM, "queue-select: out of memory");
		}
		struct qs_queue *q = &s->queues[s->nqueues];
		memset(q, 0, sizeof(*q));
		q->node = m->key.node;
		q->pid = m->pid;
		q->family = m->family;
		q->rport = m->rport;
		memcpy(q->raddr, m->raddr, sizeof(q->raddr));
		q->proc = proc_key(m->key.node, m->pid);
		uint64_t *n = tj_u64map_get(&s->procs, q->proc);
		q->nreq_base = n ? *n : 0;
		q->hold_head = q->hold_tail = QS_NIL;
		q->pick = -1;
		q->run = s->all;
		*ix = s->nqueues++;
		process_gives(s, q->proc);
	}
	*out = (uint32_t)*ix;
	return 0;
}

/* A call shown: a pending record, before any method sees it (a method
 * may answer at once). */
static int add_call(struct qsel *s, const struct tj_message *m)
{
	uint32_t q = 0;
	int rc = queue_of(s, m, &q);
	if (rc)
		return rc;
	uint64_t units = tj_call_units_add(&s->units, m, tj_call_dest(m));
	if (!units)
		return tj_errf(s->err, TJ_E_NOMEM, "queue-select: out of memory");
	s->queues[q].msgs++;
	s->queues[q].merged += units > 1;
	uint32_t i = s->free_head;
	if (i != QS_NIL) {
		s->free_head = s->calls[i].next;
	} else {
		if (s->ncalls_cap >= QS_NIL - 1)
			return tj_errf(s->err, TJ_E_NOMEM, "queue-select: too many calls pending");
		size_t cap = s->ncalls_cap ? 2 * s->ncalls_cap : 1024;
		struct qs_call *c = realloc(s->calls, cap * sizeof(*c));
		if (!c)
			return tj_errf(s->err, TJ_E_NOMEM, "queue-select: out of memory");
		s->calls = c;
		for (size_t j = cap; j-- > s->ncalls_cap + 1;) { /* the rest, free */
			s->calls[j].next = s->free_head;
			s->free_head = (uint32_t)j;
		}
		i = (uint32_t)s->ncalls_cap;
		s->ncalls_cap = cap;
	}
	struct qs_call *c = &s->calls[i];
	memset(c, 0, sizeof(*c));
	c->key = m->key;
	c->ts_first = m->ts_first;
	c->ts_reply = m->ts_reply;
	c->queue = q;
	c->next = QS_NIL;
	c->need = s->queues[q].give;
	for (unsigned k = 0; k < s->nm; k++)
		s->given[k] += (c->need >> k) & 1;
	c->pick = (int8_t)(s->queues[q].settled ? s->queues[q].pick : -1);
	s->queues[q].settled_calls += s->queues[q].settled;
	s->cur_need = c->need;
	if (tj_u64map_put(&s->call_ix, tj_msgkey_hash(&m->key), i))
		return tj_errf(s->err, TJ_E_NOMEM, "queue-select: out of memory");
	return 0;
}

static int corroborated(const struct qsel *s, const struct qs_queue *q);
static int pipelined(const struct qs_queue *q);

/* Do the queue's completion links rule methods out (else the description
 * length alone decides)? */
static int links_decide(const struct qsel *s, const struct qs_queue *q)
{
	return s->links && q->anchored >= QS_MIN_ANCHORS && !pipelined(q) &&
	       (double)q->anchored >= s->cover * (double)q->answered && corroborated(s, q);
}

/* The process's requests while the queue's calls were judged (the count
 * part's requests without a call): not those while it was settled. */
static uint64_t judged_requests(const struct qsel *s, const struct qs_queue *q)
{
	const uint64_t *n = tj_u64map_get(&s->procs, q->proc);
	return (q->settled ? q->nreq_settled : n ? *n : 0) - q->nreq_base;
}

static double queue_cost(const struct qsel *s, const struct qs_queue *q, unsigned m)
{
	return tj_cons_cost(&q->cons[m], judged_requests(s, q));
}

/* Does the queue pipeline (several calls outstanding on a connection)?
 * Then the reply read after a call is an older call's as often as not,
 * and a completion link names the wrong call: links judge nothing there
 * (the lookahead correlator's own rule, lookahead.c, with the same share:
 * more than 5% of its call messages hold several calls, call_units.h). */
static int pipelined(const struct qs_queue *q)
{
	return tj_calls_pipelined(q->merged, q->msgs);
}

/* The largest share of a queue's completion links that a method deciding
 * by other evidence (not in link_methods) agrees with, on the links it did
 * not decide by; -1 if none has QS_MIN_ANCHORS such links. */
static double independent_agreement(const struct qsel *s, const struct qs_queue *q)
{
	return tj_cons_link_support(s->nm, q->judged, q->judged_agree, s->by_links,
				    QS_MIN_ANCHORS);
}

/* Are the queue's completion links evidence?  A link says "the handler
 * that read this call's reply wrote that request's response"; where the
 * response is written by a timer or by a loop draining its own queue (real
 * epoll-shared's catalog, the M:N runtimes), the write follows the read
 * without being caused by it, and the links name wrong parents that agree
 * with no method reasoning from other evidence (ASYNC.md, "The judge's
 * evidence").  Causal links agree with at least one such method on most
 * calls: a majority, not a fitted share. */
static int corroborated(const struct qsel *s, const struct qs_queue *q)
{
	return s->corroborate <= 0 || independent_agreement(s, q) >= s->corroborate;
}

/* Where the links do not decide, the methods the description length
 * chooses among: those another method backs (tj_cons_backed), and on a
 * pipelined queue none that decides by the reads-then-writes evidence
 * there (pipe_blind); if that leaves none, every method. */
static unsigned candidates(const struct qsel *s, const struct qs_queue *q)
{
	unsigned all = (1u << s->nm) - 1, cand = all;
	if (s->backed > 0)
		cand = tj_cons_backed(s->nm, (const uint64_t (*)[TJ_CONS_METHODS])q->same,
				      s->related, s->backed);
	if (pipelined(q))
		cand &= ~(unsigned)s->pipe_blind;
	return cand ? cand : all;
}

/* The method a queue's calls go out with (tj_cons_pick): where it has
 * enough completion links and they are corroborated, those rule methods out; its own description
 * lengths once it has QS_MIN_OWN answered calls, else the sums over every
 * queue (a small queue's histograms are too thin to choose on). */
/* The soft judge's evidence on a queue (judge=soft), costs over `calls`
 * calls.  Where the links decide (links_decide), the sign test still rules
 * out the methods whose agreement with the links is evidence (a gross
 * contradiction: real epoll-chain's unit-fifo, go-mn's issue-fifo), but
 * not an unmarked method (nest), and nest rules none out; the survivors
 * are then weighed pairwise, the links by their reliability
 * (tj_cons_link_nats).  Elsewhere the candidates are the backed methods
 * (candidates()) and the description length weighs alone.  Both: a method
 * that builds its fit loses near-ties (tj_cons_margin). */
static struct tj_cons_evidence soft_evidence(const struct qsel *s, const struct qs_queue *q,
					     const double *cost, uint64_t calls)
{
	struct tj_cons_evidence e = { .n = s->nm, .cost = cost,
				      .no_link_wins = s->unmarked, .builds = s->builds,
				      .tie = tj_cons_tie(calls) };
	if (!links_decide(s, q)) {
		e.cand = candidates(s, q);
	} else {
		e.cand = tj_cons_survivors(s->nm, (const uint32_t (*)[TJ_CONS_METHODS])q->beats,
					   s->z, s->unmarked);
		int b = tj_cons_link_best(s->nm, q->judged, q->judged_agree, s->by_links,
					  QS_MIN_ANCHORS);
		e.beats = (const uint32_t (*)[TJ_CONS_METHODS])q->beats;
		e.link_nats = b < 0 ? 0 : tj_cons_link_nats(q->judged_agree[b], q->judged[b],
							    q->anchored, calls);
	}
	return e;
}

/* A queue's description lengths: its own once it has QS_MIN_OWN answered
 * calls, else the sums over every queue; returns the calls they cover. */
static uint64_t queue_costs(const struct qsel *s, const struct qs_queue *q, double *cost)
{
	uint64_t calls = 0;
	for (unsigned m = 0; m < s->nm; m++)
		cost[m] = 0;
	if (q->answered >= QS_MIN_OWN) {
		for (unsigned m = 0; m < s->nm; m++)
			cost[m] = queue_cost(s, q, m);
		return q->answered;
	}
	for (size_t i = 0; i < s->nqueues; i++) {
		calls += s->queues[i].answered;
		for (unsigned m = 0; m < s->nm; m++)
			cost[m] += queue_cost(s, &s->queues[i], m);
	}
	return calls;
}

static int pick_lead(const struct qsel *s, const struct qs_queue *q, const double *cost,
		     int pick, double *lead);

static int choose(const struct qsel *s, const struct qs_queue *q, double *lead)
{
	double cost[QS_MAX_METHODS];
	uint64_t calls = queue_costs(s, q, cost);
	if (s->soft) {
		struct tj_cons_evidence e = soft_evidence(s, q, cost, calls);
		int pick = tj_cons_pick_soft(&e, NULL);
		double in[QS_MAX_METHODS]; /* the lead is over the candidates */
		for (unsigned m = 0; m < s->nm; m++)
			in[m] = (e.cand >> m) & 1 ? cost[m] : HUGE_VAL;
		return pick_lead(s, q, in, pick, lead);
	}
	if (links_decide(s, q))
		return pick_lead(s, q, cost,
				 tj_cons_pick(s->nm, cost,
					      (const uint32_t (*)[TJ_CONS_METHODS])q->beats, s->z),
				 lead);
	unsigned cand = candidates(s, q);
	for (unsigned m = 0; m < s->nm; m++)
		if (!((cand >> m) & 1))
			cost[m] = HUGE_VAL;
	return pick_lead(s, q, cost, tj_cons_pick(s->nm, cost, NULL, s->z), lead);
}

/* The pick's lead, in nats per call, over the closest other method still
 * in the running (settle.h: a lead that narrows is no settled choice). */
static int pick_lead(const struct qsel *s, const struct qs_queue *q, const double *cost,
		     int pick, double *lead)
{
	double best = HUGE_VAL;
	for (unsigned m = 0; m < s->nm; m++)
		if ((int)m != pick && isfinite(cost[m]) && cost[m] - cost[pick] < best)
			best = cost[m] - cost[pick];
	if (lead)
		*lead = best / (double)(q->answered ? q->answered : 1);
	return pick;
}

static int send_call(struct qsel *s, struct qs_queue *q, uint32_t i)
{
	struct qs_call *c = &s->calls[i];
	/* a call given only to a settled queue's pick: that pick's answer,
	 * even if the queue un-settled and chose again since */
	int m = c->pick >= 0 ? c->pick : q->pick;
	struct tj_edge e = { .child = c->key, .has_parent = c->has_parent[m],
			     .parent = c->parent[m], .score = c->score[m] };
	q->sent[m]++;
	tj_u64map_del(&s->call_ix, tj_msgkey_hash(&c->key));
	c->next = s->free_head;
	s->free_head = i;
	if (s->fix) /* the chosen answer is the base the synchronous links correct */
		return tj_la_base(s->fix, &e, s->err);
	if (s->out->emit(s->out, &e) < 0)
		return tj_errf(s->err, TJ_E_IO, "queue-select: writing an edge failed");
	return 0;
}

static int flush_hold(struct qsel *s, struct qs_queue *q)
{
	while (q->hold_head != QS_NIL) {
		uint32_t i = q->hold_head;
		q->hold_head = s->calls[i].next;
		q->nhold--;
		int rc = send_call(s, q, i);
		if (rc)
			return rc;
	}
	q->hold_tail = QS_NIL;
	return 0;
}

/* Every method gets the queue's calls again (the pick stays until the
 * next re-choice, which the judge makes over all of them). */
static void unsettle(struct qsel *s, struct qs_queue *q)
{
	const uint64_t *n = tj_u64map_get(&s->procs, q->proc);
	q->nreq_base += (n ? *n : 0) - q->nreq_settled;
	q->settled = 0;
	q->run = s->all;
	process_gives(s, q->proc);
	q->stable = 0;
}

/* After a re-choice (was: the pick before it): a pick that has held
 * `settle` re-choices in a row, on the queue's own calls, settles it:
 * from the next call on only the pick (and the base it runs on) get the
 * queue's calls; the rest of the stream still reaches every method. */
static void settle_check(struct qsel *s, struct qs_queue *q, int was, double lead)
{
	if (!tj_settle_now(&q->stable, &q->picked_at, &q->lead_at, was, q->pick, q->answered, lead,
			   s->settle, q->answered >= QS_MIN_OWN))
		return;
	unsigned m = (unsigned)q->pick;
	q->settled = 1;
	q->run = s->need_of[m];
	process_gives(s, q->proc);
	q->since = 0;
	q->post_judged = q->post_agree = 0;
	/* the rule of succession: a pick that agreed with every link still
	 * has a finite rate a later miss is measured against */
	q->base_agree = ((double)q->judged_agree[m] + 1) / ((double)q->judged[m] + 2);
	const uint64_t *n = tj_u64map_get(&s->procs, q->proc);
	q->nreq_settled = n ? *n : 0;
	q->nsettle++;
	if (!q->first_settled)
		q->first_settled = q->answered;
}

/* Has the settled pick's agreement with the links judging it turned
 * (settle.h; each block of QS_RECHOOSE links tested once: a test at every
 * link would find a chance dip sooner or later)?  Never where links judge
 * nothing (links=0, a pipelined queue). */
static int links_turned(const struct qsel *s, const struct qs_queue *q, unsigned m)
{
	return s->links && !pipelined(q) &&
	       tj_settle_turned(&q->blocks[m], q->base_agree, q->post_agree, q->post_judged, s->z);
}

/* A block of QS_RECHOOSE judged links ended: each method's share in it. */
static void close_block(struct qsel *s, struct qs_queue *q)
{
	for (unsigned m = 0; m < s->nm; m++) {
		if (q->blk_judged[m])
			tj_blocks_add(&q->blocks[m], (double)q->blk_agree[m] / q->blk_judged[m]);
		q->blk_judged[m] = q->blk_agree[m] = 0;
	}
}

/* A completion link names the call's parent from the kernel's own
 * evidence (the thread that read the call's reply wrote that request's
 * response next): each method's answer is checked against it. */
static void score_anchor(struct qsel *s, const struct qs_seen *sn,
			 const struct tj_msgkey *anchor)
{
	struct qs_queue *q = &s->queues[sn->queue];
	uint64_t h = tj_msgkey_hash(anchor);
	uint8_t ok[QS_MAX_METHODS];
	/* a method the link decided agrees by construction: not judged on it */
	unsigned own = s->judge_own ? 0 : sn->by_link;
	if (sn->settled >= 0) { /* only the settled pick answered: is it still right? */
		unsigned m = (unsigned)sn->settled;
		if (!q->settled || q->pick != sn->settled || ((own >> m) & 1))
			return;
		q->post_judged++;
		q->post_agree += sn->has_parent[m] && sn->parent[m] == h;
		if (q->post_judged < QS_RECHOOSE)
			return;
		int turned = links_turned(s, q, m);
		tj_blocks_add(&q->blocks[m], (double)q->post_agree / (double)q->post_judged);
		if (turned) {
			q->unsettle_links++;
			unsettle(s, q);
		}
		q->post_judged = q->post_agree = 0; /* the next block tests anew */
		return;
	}
	q->anchored++;
	for (unsigned m = 0; m < s->nm; m++) {
		ok[m] = sn->has_parent[m] && sn->parent[m] == h;
		q->agree[m] += ok[m];
		q->judged[m] += !((own >> m) & 1);
		q->judged_agree[m] += ok[m] && !((own >> m) & 1);
		q->blk_judged[m] += !((own >> m) & 1);
		q->blk_agree[m] += ok[m] && !((own >> m) & 1);
	}
	if (q->anchored % QS_RECHOOSE == 0)
		close_block(s, q);
	for (unsigned a = 0; a < s->nm; a++)
		for (unsigned b = 0; b < s->nm; b++)
			q->beats[a][b] += ok[a] && !ok[b] && !((own >> a) & 1) && !((own >> b) & 1);
}

static int on_link(void *ctx, const struct tj_edge *e, const struct tj_edge *base,
		   enum tj_la_why why)
{
	struct qsel *s = ctx;
	(void)base;
	if (why != TJ_LA_COMPLETION && why != TJ_LA_CONTINUATION)
		return 0;
	struct qs_call *c = call_find(s, &e->child);
	if (c && c->answered != c->need) { /* scored when every method answered */
		c->has_anchor = 1;
		c->anchor = e->parent;
		return 0;
	}
	const struct qs_seen *sn = &s->seen[tj_msgkey_hash(&e->child) % QS_SEEN];
	if (sn->used && tj_msgkey_eq(&sn->key, &e->child))
		score_anchor(s, sn, &e->parent);
	return 0;
}

/* The hold's tail. */
static void hold(struct qsel *s, struct qs_queue *q, uint32_t i)
{
	s->calls[i].next = QS_NIL;
	if (q->hold_tail == QS_NIL)
		q->hold_head = i;
	else
		s->calls[q->hold_tail].next = i;
	q->hold_tail = i;
	q->nhold++;
}

/* An answered call remembered (direct-mapped by its key) for a completion
 * link that comes after it went out; the caller fills in the answers
 * (every method's, or a settled pick's alone: c->pick). */
static struct qs_seen *remember(struct qsel *s, const struct qs_call *c)
{
	struct qs_seen *sn = &s->seen[tj_msgkey_hash(&c->key) % QS_SEEN];
	sn->key = c->key;
	sn->queue = c->queue;
	sn->used = 1;
	sn->by_link = c->by_link;
	sn->settled = c->pick;
	return sn;
}

/* A call given only to its settled queue's pick answered: no costs, no
 * counts; remembered (the pick's answer alone) for a late completion link
 * to check the pick against; out at once (after any call held before it).
 * A queue settled for `audit` re-choice periods un-settles: every method
 * gets its calls again and the judge chooses anew. */
static int answered_settled(struct qsel *s, uint32_t i)
{
	struct qs_call *c = &s->calls[i];
	struct qs_queue *q = &s->queues[c->queue];
	unsigned m = (unsigned)c->pick;
	struct qs_seen *sn = remember(s, c);
	sn->has_parent[m] = c->has_parent[m];
	sn->parent[m] = c->has_parent[m] ? tj_msgkey_hash(&c->parent[m]) : 0;
	if (c->has_anchor)
		score_anchor(s, sn, &c->anchor);
	hold(s, q, i);
	if (q->settled && tj_settle_audit_due(++q->since, q->answered, s->audit, QS_RECHOOSE)) {
		q->audits++;
		unsettle(s, q);
	}
	return flush_hold(s, q);
}

/* Every method answered call i: its answers join its queue's costs, then
 * it waits in the hold or goes out. */
static int answered(struct qsel *s, uint32_t i)
{
	struct qs_call *c = &s->calls[i];
	struct qs_queue *q = &s->queues[c->queue];
	if (c->pick >= 0)
		return answered_settled(s, i);
	struct qs_req *rq[QS_MAX_METHODS];
	/* same[m]: the first method with m's parent (m itself if none before);
	 * methods mostly agree: each parent is compared, looked up and hashed
	 * once */
	unsigned same[QS_MAX_METHODS];
	uint64_t hash[QS_MAX_METHODS];
	for (unsigned m = 0; m < s->nm; m++) {
		struct qs_req *r = NULL;
		same[m] = m;
		hash[m] = 0;
		if (c->has_parent[m]) {
			unsigned k = 0;
			while (k < m && !(c->has_parent[k] && same[k] == k &&
					  tj_msgkey_eq(&c->parent[k], &c->parent[m])))
				k++;
			if (k < m) {
				same[m] = k;
				r = rq[k];
				hash[m] = hash[k];
			} else {
				r = req_find(s, &c->parent[m]);
				hash[m] = tj_msgkey_hash(&c->parent[m]);
			}
		}
		rq[m] = r;
		tj_cons_add_call(&q->cons[m], c->has_parent[m], r != NULL, c->ts_first,
				 c->ts_reply, r ? r->ts_first : 0, r ? r->ts_reply : 0);
		if (!r)
			continue;
		uint32_t j = 0;
		while (j < r->nq && r->q[j] != c->queue)
			j++;
		if (j == r->nq) {
			if (r->nq == QS_REQ_QUEUES)
				continue; /* a request calling many queues: counts kept for 4 */
			r->q[r->nq++] = c->queue;
		}
		if (r->cnt[j][m] < UINT16_MAX)
			tj_cons_count_step(&q->cons[m], r->cnt[j][m]++);
	}
	for (unsigned a = 0; a < s->nm; a++)
		for (unsigned b = a + 1; b < s->nm; b++)
			if (c->has_parent[a] && c->has_parent[b] && same[a] == same[b]) {
				q->same[a][b]++;
				q->same[b][a]++;
			}
	q->answered++;
	struct qs_seen *sn = remember(s, c);
	for (unsigned m = 0; m < s->nm; m++) {
		sn->has_parent[m] = c->has_parent[m];
		sn->parent[m] = hash[m];
	}
	if (c->has_anchor)
		score_anchor(s, sn, &c->anchor);
	hold(s, q, i);
	if (q->pick < 0 && q->answered < s->warm)
		return 0;
	/* a settled queue keeps its pick (a call every method was given
	 * before it settled may still come in) */
	if (q->pick < 0 || (!q->settled && q->answered % QS_RECHOOSE == 0)) {
		int was = q->pick;
		double lead = 0;
		q->pick = choose(s, q, &lead);
		settle_check(s, q, was, lead);
	}
	return flush_hold(s, q);
}

/* Method m's answer for a pending call. */
static int method_answer(struct qsel *s, unsigned m, const struct tj_edge *e, int by_link)
{
	struct qs_call *c = call_find(s, &e->child);
	char k[TJ_MSGKEY_STRLEN];
	if (!c || (c->answered & (1u << m))) {
		tj_errf(&s->fault, TJ_E_ARG, "queue-select: method '%s' answered %s %s",
			s->mc[m]->name, tj_msgkey_format(&e->child, k),
			c ? "twice" : "which is no pending call");
		return -TJ_E_ARG;
	}
	if (!((c->need >> m) & 1)) {
		tj_errf(&s->fault, TJ_E_ARG, "queue-select: method '%s' answered %s, "
			"a call it was not given", s->mc[m]->name, tj_msgkey_format(&e->child, k));
		return -TJ_E_ARG;
	}
	c->answered |= (uint8_t)(1u << m);
	c->by_link |= (uint8_t)(!!by_link << m);
	c->has_parent[m] = (uint8_t)e->has_parent;
	c->parent[m] = e->parent;
	c->score[m] = e->score;
	if (c->answered != c->need)
		return 0;
	int rc = answered(s, (uint32_t)(c - s->calls));
	if (rc)
		s->fault = *s->err;
	return rc;
}

static int method_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct qs_sink *ms = (struct qs_sink *)sink;
	return method_answer(ms->s, ms->m, e, 0);
}

static int qs_message(void *st, const struct tj_message *m, struct tj_edge_sink *out,
		      struct tj_err *err)
{
	struct qsel *s = st;
	int rc = 0;
	s->out = out;
	s->err = err;
	s->cur_need = s->all; /* add_call narrows it for a settled queue's call */
	if (m->is_request && m->role == TJ_ROLE_SERVER)
		rc = add_request(s, m);
	else if (m->is_request && m->role == TJ_ROLE_CLIENT)
		rc = add_call(s, m);
	if (rc == 0)
		rc = tj_la_message(s->la, m, err);
	if (rc == 0 && s->fix)
		rc = tj_la_message(s->fix, m, err);
	if (rc == 0 && m->is_request && m->role == TJ_ROLE_CLIENT) {
		/* no base decision of its own: only the links matter here */
		struct tj_edge none = { .child = m->key };
		rc = tj_la_base(s->la, &none, err);
	}
	/* derived methods' links see the call first, so its base finds it */
	for (unsigned i = 0; rc == 0 && i < s->nm; i++)
		if (s->dla[i] && (s->cur_need >> i) & 1)
			rc = tj_la_message(s->dla[i], m, err);
	for (unsigned i = 0; rc == 0 && i < s->nm; i++) {
		if (s->dla[i] || !((s->cur_need >> i) & 1))
			continue;
		if (s->feeds[i]) {
			rc = s->mc[i]->message(s->mst[i], m, &s->bsink[i].sink, err);
			if (rc == 0 && !s->fault.code)
				rc = deliver_base(s, i, 0);
		} else {
			rc = s->mc[i]->message(s->mst[i], m, &s->msink[i].sink, err);
		}
		if (s->fault.code) {
			*err = s->fault;
			return -s->fault.code;
		}
	}
	return rc;
}

static void print_dest(FILE *f, const struct qs_queue *q)
{
	char a[TJ_ADDR_STRLEN];
	fprintf(f, "%s:%u", tj_addr_format(q->family, q->raddr, a), q->rport);
}

/* explain=1: when the queue settled, which methods kept running, and
 * what un-settled it. */
static void explain_settling(const struct qsel *s, const struct qs_queue *q)
{
	if (!s->settle) {
		fprintf(stderr, "    settled: never (settle=0: every method got every call)\n");
		return;
	}
	if (!q->nsettle) {
		fprintf(stderr, "    settled: never (every method got every call)\n");
		return;
	}
	fprintf(stderr, "    settled: first after %llu judged calls, %u time%s (un-settled by "
		"the links %u, by audits %u), %s now; kept running while settled:",
		(unsigned long long)q->first_settled, q->nsettle, q->nsettle > 1 ? "s" : "",
		q->unsettle_links, q->audits, q->settled ? "settled" : "not settled");
	for (unsigned m = 0; m < s->nm; m++)
		if ((s->need_of[q->pick] >> m) & 1)
			fprintf(stderr, " %s", s->mc[m]->name);
	fprintf(stderr, "; its calls while settled %llu\n",
		(unsigned long long)q->settled_calls);
}

/* judge=soft: which evidence decided the queue's choice, against the
 * runner-up (its final state; the choice went out every QS_RECHOOSE calls). */
static void explain_soft(const struct qsel *s, const struct qs_queue *q)
{
	double cost[QS_MAX_METHODS], dc = 0, dl = 0;
	uint64_t calls = queue_costs(s, q, cost);
	struct tj_cons_evidence e = soft_evidence(s, q, cost, calls);
	int next = -1, pick = tj_cons_pick_soft(&e, &next);
	fprintf(stderr, "    soft judge: candidates");
	for (unsigned m = 0; m < s->nm; m++)
		if ((e.cand >> m) & 1)
			fprintf(stderr, " %s", s->mc[m]->name);
	fprintf(stderr, "%s; a discordant link worth %.2f nats\n",
		links_decide(s, q) ? " (the sign test's survivors; nest is weighed, not tested)" :
		" (backed by another method's answers)", e.beats ? e.link_nats : 0.0);
	if (next < 0) {
		fprintf(stderr, "    decided: %s, the only candidate\n", s->mc[pick]->name);
		return;
	}
	double d = tj_cons_margin(&e, (unsigned)pick, (unsigned)next, &dc, &dl);
	int near = d != dc + dl;
	fprintf(stderr, "    decided: %s over %s by %.1f nats (description length %+.1f, links %+.1f)%s\n",
		s->mc[pick]->name, s->mc[next]->name, d, dc, dl,
		near ? "; a near-tie a method's fit by construction (nest) does not win" :
		fabs(dl) > fabs(dc) ? "; the links decided" : "; the description length decided");
}

/* explain=1: per queue, each method's cost per call and the choice. */
static void explain(const struct qsel *s)
{
	uint64_t total[QS_MAX_METHODS] = { 0 };
	fprintf(stderr, "queue-select: %zu queues (node, process, destination); per queue: "
		"calls, each method's description length per call (nats; smaller = its "
		"answers are more regular), the one chosen\n", s->nqueues);
	fprintf(stderr, "  %-40s %8s", "queue", "calls");
	for (unsigned m = 0; m < s->nm; m++)
		fprintf(stderr, " %12s", s->mc[m]->name);
	fprintf(stderr, "  chosen\n");
	for (size_t i = 0; i < s->nqueues; i++) {
		const struct qs_queue *q = &s->queues[i];
		char head[64];
		snprintf(head, sizeof(head), "node %u pid %u ->", q->node, q->pid);
		fprintf(stderr, "  %s ", head);
		print_dest(stderr, q);
		fprintf(stderr, " %8llu", (unsigned long long)q->answered);
		for (unsigned m = 0; m < s->nm; m++)
			fprintf(stderr, " %12.3f", q->answered ?
				queue_cost(s, q, m) / (double)q->answered : 0.0);
		fprintf(stderr, "  %s%s\n", q->pick >= 0 ? s->mc[q->pick]->name : "-",
			q->answered < QS_MIN_OWN ? " (few calls: the sum over queues)" : "");
		fprintf(stderr, "  %-40s %8s", "  of which delay/end/count", "");
		for (unsigned m = 0; m < s->nm && q->answered; m++) {
			double part[TJ_CONS_PARTS];
			tj_cons_parts(&q->cons[m], judged_requests(s, q), part);
			fprintf(stderr, " %4.2f/%4.2f/%4.2f", part[0] / q->answered,
				part[1] / q->answered, part[2] / q->answered);
		}
		fputc('\n', stderr);
		fprintf(stderr, "  %-40s %8llu", pipelined(q) ?
			"  links (pipelined: not used); agreeing %" : "  with a completion link; agreeing %",
			(unsigned long long)q->anchored);
		for (unsigned m = 0; m < s->nm; m++)
			fprintf(stderr, " %12.1f", q->anchored ?
				100.0 * (double)q->agree[m] / (double)q->anchored : 0.0);
		fputc('\n', stderr);
		double ind = independent_agreement(s, q);
		fprintf(stderr, "    decided by: %s", links_decide(s, q) ?
			"completion links (sign test), then description length" :
			"description length");
		if (!s->links)
			fprintf(stderr, " (links=0)\n");
		else if (q->anchored < QS_MIN_ANCHORS)
			fprintf(stderr, " (fewer than %d links)\n", QS_MIN_ANCHORS);
		else if (pipelined(q))
			fprintf(stderr, " (pipelined: links name the wrong call)\n");
		else if (ind < 0)
			fprintf(stderr, " (no independent method judged on %d links)\n",
				QS_MIN_ANCHORS);
		else
			fprintf(stderr, " (links %s: an independent method agrees with %.1f%% of them, "
				"corroborate=%g)\n", corroborated(s, q) ? "corroborated" :
				"not corroborated", 100 * ind, s->corroborate);
		if (s->soft)
			explain_soft(s, q);
		else if (!links_decide(s, q)) {
			unsigned cand = candidates(s, q);
			fprintf(stderr, "    candidates (backed by another method's answers%s):",
				pipelined(q) ? "; pipelined: not nest" : "");
			for (unsigned m = 0; m < s->nm; m++)
				if ((cand >> m) & 1)
					fprintf(stderr, " %s", s->mc[m]->name);
			fputc('\n', stderr);
		}
		explain_settling(s, q);
		for (unsigned m = 0; m < s->nm; m++)
			total[m] += q->sent[m];
	}
	fprintf(stderr, "queue-select: calls answered by");
	for (unsigned m = 0; m < s->nm; m++)
		fprintf(stderr, " %s %llu%s", s->mc[m]->name, (unsigned long long)total[m],
			m + 1 < s->nm ? "," : "\n");
	fprintf(stderr, "queue-select: calls given to");
	for (unsigned m = 0; m < s->nm; m++)
		fprintf(stderr, " %s %llu%s", s->mc[m]->name, (unsigned long long)s->given[m],
			m + 1 < s->nm ? "," : "\n");
}

static int qs_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	struct qsel *s = st;
	int rc = 0;
	s->out = out;
	s->err = err;
	for (unsigned i = 0; rc == 0 && i < s->nm; i++) {
		if (s->dla[i])
			continue; /* finished after its base */
		if (s->feeds[i]) {
			rc = s->mc[i]->finish(s->mst[i], &s->bsink[i].sink, err);
			if (rc == 0 && !s->fault.code)
				rc = deliver_base(s, i, 1);
		} else {
			rc = s->mc[i]->finish(s->mst[i], &s->msink[i].sink, err);
		}
		if (s->fault.code) {
			*err = s->fault;
			return -s->fault.code;
		}
	}
	if (rc == 0)
		rc = tj_la_finish(s->la, err);
	/* A call some method never answered: "no parent" from it (as the
	 * host would say), in pool order, which the input fixes. */
	for (size_t i = 0; rc == 0 && i < s->ncalls_cap; i++) {
		struct qs_call *c = &s->calls[i];
		uint64_t *ix = tj_u64map_get(&s->call_ix, tj_msgkey_hash(&c->key));
		if (!ix || *ix != i || c->answered == c->need)
			continue;
		c->answered = c->need;
		rc = answered(s, (uint32_t)i);
	}
	for (size_t i = 0; rc == 0 && i < s->nqueues; i++) {
		struct qs_queue *q = &s->queues[i];
		if (q->pick < 0 || q->answered < QS_MIN_OWN)
			q->pick = choose(s, q, NULL);
		rc = flush_hold(s, q);
	}
	if (rc == 0 && s->fix)
		rc = tj_la_finish(s->fix, err);
	if (rc == 0 && s->explain)
		explain(s);
	return rc;
}

static void qs_close(void *st)
{
	struct qsel *s = st;
	if (!s)
		return;
	for (unsigned i = 0; i < s->nm; i++) {
		if (s->mst[i])
			s->mc[i]->close(s->mst[i]);
		tj_la_free(s->dla[i]);
	}
	free(s->buf);
	tj_feat_memo_free(s->memo);
	tj_la_free(s->la);
	tj_la_free(s->fix);
	free(s->calls);
	free(s->seen);
	free(s->reqs);
	free(s->queues);
	tj_u64map_free(&s->call_ix);
	tj_u64map_free(&s->req_ix);
	tj_u64map_free(&s->procs);
	tj_call_units_free(&s->units);
	tj_u64map_free(&s->queue_ix);
	free(s);
}

const struct tj_correlator tj_correlator_queue_select = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "queue-select",
	.description = "runs several correlators and keeps, per (process, "
		       "destination) queue, the one the kernel's completion links back "
		       "and whose answers explain the log in the fewest nats (no labels)",
	.params_help = "methods=lookahead,order-align,classifier,regression,metadata,issue-fifo,nest,unit-fifo  the "
		       "correlators run (built-ins; on a tie the earlier wins)\n"
		       "warm=1000  answered calls a queue waits for before its first choice\n"
		       "links=1  1: with 30+ completion links in a queue, drop methods another beats on them; 0: nats only\n"
		       "z=2  the sign test's threshold (wins - losses > z sqrt(wins + losses))\n"
		       "judge_own=0  0: lookahead is judged only on links it did not decide by (needs share=1); 1: on every link (as before the i15d fix)\n"
		       "share=1  0: every method runs on its own (no shared order-align or feature pass; to check they change nothing)\n"
		       "handoff=1  1: a continuation link written on the connection its reply freed, by the thread that wrote the call and read other things while it was out (a FIFO hand-off to a waiting request), judges nothing; 0: it counts (as before i15j)\n"
		       "cover=0  links rule methods out only where they cover this share of the queue's calls\n"
		       "backed=0.5  where links do not decide, the description length chooses among the methods whose answers agree with another (unrelated) method's on at least this share of the calls the best-backed method's do; 0: among all\n"
		       "corroborate=0.5  links rule methods out only where a method that does not decide by them (not lookahead, nest) agrees with this share of them; 0: wherever there are 30 (before i15j's judge)\n"
		       "judge=sign  soft: where links decide, the sign test rules out only methods whose agreement with them is evidence (not nest), and the survivors are weighed pairwise in nats, description length plus each discordant link at the links' log-odds of being right (nest's agreements not counted), a near-tie (half a log of the calls) never going to nest; sign: the sign test, then the description length (i15j's judge)\n"
		       "correct=0  1: lookahead's synchronous links correct the chosen answers\n"
		       "settle=4  a queue whose choice held this many re-choices (of 256 calls) in a row settles: only the chosen method (and the base it runs on) get its calls, until the links turn against it; 0: every method gets every call\n"
		       "audit=64  a queue settled on N judged calls un-settles after N more calls, and at least every this many periods of 256, so every method is judged again; 0: only the links un-settle it\n"
		       "explain=0  1: print each queue's costs and choice on stderr\n",
	.open = qs_open,
	.train = NULL,
	.message = qs_message,
	.finish = qs_finish,
	.close = qs_close,
};
