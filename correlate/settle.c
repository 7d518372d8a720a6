/* The settling rules of queue-select (settle.h). */
#include <math.h>
#include "settle.h"

void tj_blocks_add(struct tj_blocks *b, double share)
{
	b->n++;
	b->sum += share;
	b->sq += share * share;
}

int tj_settle_now(uint32_t *stable, int was, int pick, uint32_t settle, int enough)
{
	*stable = was >= 0 && pick == was ? *stable + 1 : 0;
	return settle > 0 && *stable >= settle && enough;
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

int tj_settle_audit_due(uint64_t since, uint32_t audit, uint32_t period)
{
	return audit > 0 && since >= (uint64_t)audit * period;
}
