/* The settling rules of queue-select (settle.h). */
#include <math.h>
#include "settle.h"

void tj_blocks_add(struct tj_blocks *b, double share)
{
	b->n++;
	b->sum += share;
	b->sq += share * share;
}

int tj_settle_now(uint32_t *stable, uint64_t *picked_at, double *lead_at, int was, int pick,
		  uint64_t judged, double lead, uint32_t settle, int enough)
{
	if (was >= 0 && pick == was) {
		++*stable;
	} else {
		*stable = 0;
		*picked_at = judged;
		*lead_at = lead;
	}
	return settle > 0 && *stable >= settle && judged >= 2 * *picked_at && lead >= *lead_at &&
	       enough;
}

int tj_settle_turned(const struct tj_blocks *b, double base, uint64_t agree,
		     uint64_t judged, double z)
{
	if (!judged)
		return 0;
	double n = (double)judged, share = (double)agree / n;
	double mean = base, sd = sqrt(base * (1 - base) / n);
	if (b->n >= 2) {
		mean = b->sum / b->n;
		double var = b->sq / b->n - mean * mean;
		sd = sqrt(var > 0 ? var : 0);
	}
	return mean - share > z * sd;
}

int tj_settle_audit_due(uint64_t since, uint64_t judged, uint32_t audit, uint32_t period)
{
	uint64_t every = (uint64_t)audit * period;
	return audit > 0 && since >= (judged < every ? judged : every);
}
