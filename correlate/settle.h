/* When a queue-select queue settles, and what un-settles it (the rules;
 * queue_select.c does the plumbing: which methods get which calls).
 *
 * A queue settles when its choice held `settle` re-choices in a row, over
 * as many calls as it was made on, with a lead that did not narrow
 * (tj_settle_now): from then on only the chosen method (and the base it
 * runs on) need its calls.  While settled, the completion links still
 * judge the chosen method on its own, in blocks of links: a block whose
 * share of agreeing links falls below the method's mean share per block
 * by more than z times the spread between its blocks un-settles the queue
 * (every method gets its calls again and the judge chooses anew); so does
 * an audit (tj_settle_audit_due).  ASYNC.md, "Third pass (i15v):
 * settling". */
#ifndef TJ_SETTLE_H
#define TJ_SETTLE_H

#include <stdint.h>

/* One method's share of agreeing links per block, summed and squared. */
struct tj_blocks {
	uint32_t n;
	double sum, sq;
};

void tj_blocks_add(struct tj_blocks *b, double share);

/* After a re-choice on `judged` calls that picked `pick` (was: the pick
 * before it, -1 for none): counts the re-choices in a row that kept it in
 * *stable, and in *picked_at the judged calls when it was first picked; 1
 * when the queue settles now, else 0.  It settles when the pick held
 * settle > 0 re-choices in a row, and over as many calls as it was first
 * picked on (a choice made on 1000 calls must still hold at 2000: a
 * re-choice 24 calls after the first is no confirmation), with a lead
 * (nats per call over the closest other method) no narrower than when it
 * was picked (*lead_at: a lead the runner-up is eating into is no clear
 * margin), and enough (the choice was made on the queue's own calls). */
int tj_settle_now(uint32_t *stable, uint64_t *picked_at, double *lead_at, int was, int pick,
		  uint64_t judged, double lead, uint32_t settle, int enough);

/* Did a settled method's block (agree of judged links) turn against it?
 * Measured against its earlier blocks b: below their mean by more than z
 * times their spread.  Links in a block agree or miss together (bursts),
 * so the spread between blocks is wider than the binomial's; with fewer
 * than two blocks the binomial's stands in, around base (its share of all
 * its links before it settled). */
int tj_settle_turned(const struct tj_blocks *b, double base, uint64_t agree,
		     uint64_t judged, double z);

/* Is a queue settled for `since` calls due for an audit?  A choice made
 * on `judged` calls is looked at again after as many settled calls (a
 * choice on thin evidence soon, one on much evidence seldom: audits are
 * logarithmic in the stream, not linear), and at least every `audit`
 * periods of `period` calls; audit 0: never. */
int tj_settle_audit_due(uint64_t since, uint64_t judged, uint32_t audit, uint32_t period);

#endif
