/* How well one correlator's answers on one (process, destination) queue
 * explain the log, without labels: the description length, in nats, of
 * three things the answers fix, each coded with its own empirical
 * distribution (a two-part code: data cost N*H plus half a log N per
 * symbol used, the model cost):
 *
 *   - the call's send time after its parent's arrival (log2 bins of
 *     microseconds; "before the parent" is a symbol of its own; a call
 *     with no parent is not explained, and its times cost a flat code,
 *     so answering "none" is no way to look regular);
 *   - the parent's response start after the call's reply (the same bins;
 *     "the parent answered before the call's reply came" is a symbol of
 *     its own: a nesting violation, which the right answer rarely pays);
 *   - how many calls of this queue each request of the process made
 *     (0, 1, 2, ... 7+).
 *
 * The right parents make these distributions narrow: a service's delay
 * to its call, and its number of calls to a destination, are properties
 * of its code.  Wrong parents mix requests and spread them.  Comparing the
 * totals of several correlators on the same calls picks the one whose
 * answers are the most regular (correlate/ASYNC.md, "The default"). */
#ifndef TJ_CONSISTENCY_H
#define TJ_CONSISTENCY_H

#include <stdint.h>

#define TJ_CONS_BINS 46     /* time bins: TJ_CONS_TBINS log2 bins + 2 special */
#define TJ_CONS_TBINS 44    /* half-octaves of microseconds, from < 1 us */
#define TJ_CONS_BAD 44      /* impossible order: before the parent / after its response */
#define TJ_CONS_NOREPLY 45  /* no reply time on one side */
#define TJ_CONS_COUNTS 8    /* calls per request: 0..6, 7 and more */

struct tj_cons {
	uint64_t delay[TJ_CONS_BINS]; /* call send - parent arrival */
	uint64_t end[TJ_CONS_BINS];   /* parent response - call reply */
	uint64_t count[TJ_CONS_COUNTS]; /* requests by their calls to this queue,
					   zeros excluded (see tj_cons_cost) */
	uint64_t ncalls;      /* calls in delay and end */
	uint64_t unexplained; /* calls with no parent, or one no longer held:
				 their times cost a flat code, log TJ_CONS_TBINS each */
};

/* The time bin of a gap in nanoseconds (>= 0). */
unsigned tj_cons_tbin(uint64_t gap_ns);

/* One call's answer: has_parent; known = the parent's times are known;
 * times in node-local ns (0 = none for the reply times). */
void tj_cons_add_call(struct tj_cons *c, int has_parent, int known,
		      uint64_t call_ts, uint64_t call_reply,
		      uint64_t parent_ts, uint64_t parent_reply);

/* A request's count of calls to this queue went from k to k + 1. */
void tj_cons_count_step(struct tj_cons *c, uint64_t k);

/* The description length (nats) of the answers so far; nreq = how many
 * requests of the process there were (those with no call count as 0). */
double tj_cons_cost(const struct tj_cons *c, uint64_t nreq);
/* The same, and its three parts: delay, end, counts. */
#define TJ_CONS_PARTS 3
double tj_cons_parts(const struct tj_cons *c, uint64_t nreq, double part[TJ_CONS_PARTS]);

/* Choosing between n correlators' answers on one queue (n at most
 * TJ_CONS_METHODS).  beats[a][b]: the completion links where a's answer
 * was the linked parent and b's was not (NULL: no links to go by).  A
 * method another beats beyond chance (a sign test: wins - losses >
 * z * sqrt(wins + losses)) is out; of the rest, the least cost; ties go
 * to the earlier method. */
#define TJ_CONS_METHODS 8
int tj_cons_pick(unsigned n, const double *cost,
		 const uint32_t (*beats)[TJ_CONS_METHODS], double z);

/* Are completion links evidence on a queue?  judged[m]: the links method m
 * did not decide by; agreed[m]: of them, those m answered as the link
 * names.  A method in `dependent` (a bit per method) decides by the same
 * reads-then-writes evidence as the links, so its agreement shows nothing.
 * Returns the largest share of its judged links an independent method
 * agrees with, among those judged on at least min_links; -1 if none is.
 * Links that a timer's or a queue-draining loop's writes make name parents
 * no independent method agrees with (correlate/ASYNC.md, "The judge's
 * evidence"); causal links agree with one on most calls. */
double tj_cons_link_support(unsigned n, const uint64_t *judged, const uint64_t *agreed,
			    unsigned dependent, uint64_t min_links);

/* Which methods' answers another method backs, where no links judge: the
 * description length is blind to a consistent permutation (the newest
 * request instead of the oldest on a saturated connection answers every
 * request once, with tight delays) and to a method that fixes the counts
 * it is coded on (nest), and such answers agree with no other method's.
 * same[a][b] (a != b): calls on which a and b named the same parent (both
 * named one); related[m]: a bit per method m's answers derive from (its
 * base), whose agreement shows nothing.  A method is backed when its best
 * agreement with an unrelated method is at least `share` of the best any
 * method has.  Returns a bit per backed method (never none: the best is). */
unsigned tj_cons_backed(unsigned n, const uint64_t (*same)[TJ_CONS_METHODS],
			const unsigned *related, double share);

/* The soft judge (queue-select judge=soft): every pair of candidates
 * compared by a log-likelihood ratio in nats, the description length's
 * difference plus the completion links' evidence weighed by how reliable
 * the links are (correlate/ASYNC.md, "A judge that weighs its evidence").
 *
 *   - A link where a agreed and b did not is worth `link_nats` to a: the
 *     log-odds that a link is right (tj_cons_link_nats).  Links a method
 *     agrees with by construction (no_link_wins: nest reads the same
 *     reads-then-writes evidence and marks no call as decided by it) are
 *     no evidence for it; its disagreements still count against it.
 *   - A method that fits parts of the description length by construction
 *     (builds: nest nests every call in its parent and fixes the calls per
 *     request) loses a pair whose margin is below `tie` nats.
 *
 * The winner is the candidate that wins the most pairs (then the least
 * cost, then the earlier method). */
struct tj_cons_evidence {
	unsigned n;
	const double *cost;   /* description length per method, nats */
	const uint32_t (*beats)[TJ_CONS_METHODS]; /* NULL: the links weigh nothing */
	double link_nats;     /* nats a discordant link is worth */
	unsigned no_link_wins; /* bit per method */
	unsigned builds;      /* bit per method */
	double tie;           /* nats */
	unsigned cand;        /* bit per candidate (none: every method) */
};

/* By how many nats a is preferred to b (< 0: b is), and its two parts:
 * the description length's difference and the links' (either may be NULL).
 * A near-tie the builder would win is returned as -tie (a builds) or +tie. */
double tj_cons_margin(const struct tj_cons_evidence *e, unsigned a, unsigned b,
		      double *by_cost, double *by_links);
/* The methods the sign test (tj_cons_pick) leaves in: bit per method not
 * beaten beyond chance by another.  A method in `exempt` is neither ruled
 * out nor rules another out: its agreement with the links is no evidence
 * either way (nest: its agreements are by construction, its disagreements
 * are where it chose nesting over a link, which on an M:N runtime's
 * partly wrong links is where it is right).  Never none: every method. */
unsigned tj_cons_survivors(unsigned n, const uint32_t (*beats)[TJ_CONS_METHODS], double z,
			   unsigned exempt);

/* The soft judge's choice; *runner_up (may be NULL): the next best, or -1. */
int tj_cons_pick_soft(const struct tj_cons_evidence *e, int *runner_up);

/* What one discordant link is worth, in nats per call: the links'
 * reliability rho estimated by the best independent method's agreement
 * (agreed of judged, with one pseudo-count each way: a share of 30 of 30
 * is not certainty), as log-odds log(rho / (1 - rho)), 0 where rho <= 1/2
 * (a link is then no likelier right than wrong); scaled by calls / links,
 * because the links are a sample of the queue's calls and the description
 * length it is added to is a sum over all of them. */
double tj_cons_link_nats(uint64_t agreed, uint64_t judged, uint64_t links, uint64_t calls);

/* The method tj_cons_link_support's share comes from, or -1. */
int tj_cons_link_best(unsigned n, const uint64_t *judged, const uint64_t *agreed,
		      unsigned dependent, uint64_t min_links);

/* The near-tie margin over `calls` calls: half a log of the calls, what the
 * two-part code charges for one more parameter (code_length's model cost):
 * a lead smaller than that is within the code's own precision. */
double tj_cons_tie(uint64_t calls);

#endif
