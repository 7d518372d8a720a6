/* The description length of a correlator's answers (consistency.h). */
#include <math.h>
#include "consistency.h"

unsigned tj_cons_tbin(uint64_t gap_ns)
{
	double us = (double)gap_ns / 1e3;
	if (us < 1)
		return 0;
	/* half-octaves: 1 us -> 1, 1.41 us -> 2, ..., about 4000 s at the top */
	unsigned b = 1 + (unsigned)(2 * log2(us));
	return b < TJ_CONS_TBINS ? b : TJ_CONS_TBINS - 1;
}

void tj_cons_add_call(struct tj_cons *c, int has_parent, int known,
		      uint64_t call_ts, uint64_t call_reply,
		      uint64_t parent_ts, uint64_t parent_reply)
{
	unsigned d, e;
	if (!has_parent || !known) {
		/* nothing to code its times against: they cost a uniform code */
		c->unexplained++;
		return;
	}
	c->ncalls++;
	{
		d = call_ts < parent_ts ? TJ_CONS_BAD : tj_cons_tbin(call_ts - parent_ts);
		if (!call_reply || !parent_reply)
			e = TJ_CONS_NOREPLY;
		else if (parent_reply < call_reply)
			e = TJ_CONS_BAD; /* the parent answered before the call's reply */
		else
			e = tj_cons_tbin(parent_reply - call_reply);
	}
	c->delay[d]++;
	c->end[e]++;
}

void tj_cons_count_step(struct tj_cons *c, uint64_t k)
{
	uint64_t top = TJ_CONS_COUNTS - 1; /* 7 and more share the last bin */
	uint64_t from = k < top ? k : top, to = k + 1 < top ? k + 1 : top;
	if (from == to)
		return;
	if (from >= 1)
		c->count[from]--;
	c->count[to]++;
}

/* N*H(n) + (symbols used)/2 * log N, in nats. */
static double code_length(const uint64_t *n, unsigned k, double total)
{
	if (total <= 0)
		return 0;
	double s = total * log(total);
	unsigned used = 0;
	for (unsigned i = 0; i < k; i++)
		if (n[i]) {
			s -= (double)n[i] * log((double)n[i]);
			used++;
		}
	return s + 0.5 * used * log(total);
}

double tj_cons_parts(const struct tj_cons *c, uint64_t nreq, double part[TJ_CONS_PARTS])
{
	uint64_t counts[TJ_CONS_COUNTS], with = 0;
	for (unsigned i = 1; i < TJ_CONS_COUNTS; i++) {
		counts[i] = c->count[i];
		with += c->count[i];
	}
	/* requests the answers gave no call: the process's others */
	counts[0] = nreq > with ? nreq - with : 0;
	double flat = (double)c->unexplained * log(TJ_CONS_TBINS);
	part[0] = code_length(c->delay, TJ_CONS_BINS, (double)c->ncalls) + flat;
	part[1] = code_length(c->end, TJ_CONS_BINS, (double)c->ncalls) + flat;
	part[2] = code_length(counts, TJ_CONS_COUNTS, (double)(counts[0] + with));
	return part[0] + part[1] + part[2];
}

double tj_cons_cost(const struct tj_cons *c, uint64_t nreq)
{
	double part[TJ_CONS_PARTS];
	return tj_cons_parts(c, nreq, part);
}

static int beaten(unsigned n, const uint32_t (*beats)[TJ_CONS_METHODS], double z,
		  unsigned m)
{
	for (unsigned o = 0; o < n; o++) {
		double w = beats[o][m], l = beats[m][o];
		if (o != m && w > l && w - l > z * sqrt(w + l))
			return 1;
	}
	return 0;
}

int tj_cons_pick(unsigned n, const double *cost,
		 const uint32_t (*beats)[TJ_CONS_METHODS], double z)
{
	int pick = -1;
	for (unsigned m = 0; m < n; m++) {
		if (beats && beaten(n, beats, z, m))
			continue;
		if (pick < 0 || cost[m] < cost[pick])
			pick = (int)m;
	}
	return pick < 0 ? 0 : pick; /* every one beaten (a cycle): the first */
}

double tj_cons_link_support(unsigned n, const uint64_t *judged, const uint64_t *agreed,
			    unsigned dependent, uint64_t min_links)
{
	double best = -1;
	for (unsigned m = 0; m < n; m++) {
		if ((dependent >> m) & 1 || judged[m] < min_links || judged[m] == 0)
			continue;
		double a = (double)agreed[m] / (double)judged[m];
		best = a > best ? a : best;
	}
	return best;
}

unsigned tj_cons_backed(unsigned n, const uint64_t (*same)[TJ_CONS_METHODS],
			const unsigned *related, double share)
{
	uint64_t best[TJ_CONS_METHODS] = { 0 }, top = 0;
	for (unsigned m = 0; m < n; m++) {
		for (unsigned o = 0; o < n; o++)
			if (o != m && !((related[m] >> o) & 1) && !((related[o] >> m) & 1) &&
			    same[m][o] > best[m])
				best[m] = same[m][o];
		top = best[m] > top ? best[m] : top;
	}
	unsigned backed = 0;
	for (unsigned m = 0; m < n; m++)
		if ((double)best[m] >= share * (double)top)
			backed |= 1u << m;
	return backed;
}
