/* The description length of a correlator's answers (consistency.h). */
#include <math.h>
#include <stddef.h>
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
		  unsigned m, unsigned exempt)
{
	if ((exempt >> m) & 1)
		return 0;
	for (unsigned o = 0; o < n; o++) {
		double w = beats[o][m], l = beats[m][o];
		if (o != m && !((exempt >> o) & 1) && w > l && w - l > z * sqrt(w + l))
			return 1;
	}
	return 0;
}

unsigned tj_cons_survivors(unsigned n, const uint32_t (*beats)[TJ_CONS_METHODS], double z,
			   unsigned exempt)
{
	unsigned alive = 0;
	for (unsigned m = 0; m < n; m++)
		if (!beaten(n, beats, z, m, exempt))
			alive |= 1u << m;
	return alive ? alive : (1u << n) - 1;
}

int tj_cons_pick(unsigned n, const double *cost,
		 const uint32_t (*beats)[TJ_CONS_METHODS], double z)
{
	int pick = -1;
	for (unsigned m = 0; m < n; m++) {
		if (beats && beaten(n, beats, z, m, 0))
			continue;
		if (pick < 0 || cost[m] < cost[pick])
			pick = (int)m;
	}
	return pick < 0 ? 0 : pick; /* every one beaten (a cycle): the first */
}

int tj_cons_link_best(unsigned n, const uint64_t *judged, const uint64_t *agreed,
		      unsigned dependent, uint64_t min_links)
{
	int best = -1;
	double share = -1;
	for (unsigned m = 0; m < n; m++) {
		if ((dependent >> m) & 1 || judged[m] < min_links || judged[m] == 0)
			continue;
		double a = (double)agreed[m] / (double)judged[m];
		if (a > share) {
			share = a;
			best = (int)m;
		}
	}
	return best;
}

double tj_cons_link_support(unsigned n, const uint64_t *judged, const uint64_t *agreed,
			    unsigned dependent, uint64_t min_links)
{
	int m = tj_cons_link_best(n, judged, agreed, dependent, min_links);
	return m < 0 ? -1 : (double)agreed[m] / (double)judged[m];
}

double tj_cons_link_nats(uint64_t agreed, uint64_t judged, uint64_t links, uint64_t calls)
{
	if (agreed > judged || links == 0)
		return 0;
	double rho = ((double)agreed + 1) / ((double)judged + 2);
	if (rho <= 0.5)
		return 0;
	return log(rho / (1 - rho)) * (double)calls / (double)links;
}

double tj_cons_tie(uint64_t calls)
{
	return calls > 1 ? 0.5 * log((double)calls) : 0;
}

double tj_cons_margin(const struct tj_cons_evidence *e, unsigned a, unsigned b,
		      double *by_cost, double *by_links)
{
	double dc = e->cost[b] - e->cost[a], dl = 0;
	if (e->beats && e->link_nats > 0) {
		double wa = (e->no_link_wins >> a) & 1 ? 0 : e->beats[a][b];
		double wb = (e->no_link_wins >> b) & 1 ? 0 : e->beats[b][a];
		dl = e->link_nats * (wa - wb);
	}
	if (by_cost)
		*by_cost = dc;
	if (by_links)
		*by_links = dl;
	double d = dc + dl;
	unsigned ba = (e->builds >> a) & 1, bb = (e->builds >> b) & 1;
	if (ba != bb && fabs(d) < e->tie)
		return ba ? -e->tie : e->tie; /* the builder's fit is no lead */
	return d;
}

int tj_cons_pick_soft(const struct tj_cons_evidence *e, int *runner_up)
{
	unsigned cand = e->cand ? e->cand : (1u << e->n) - 1;
	int wins[TJ_CONS_METHODS] = { 0 };
	for (unsigned a = 0; a < e->n; a++)
		for (unsigned b = 0; b < e->n; b++) {
			if (a == b || !((cand >> a) & 1) || !((cand >> b) & 1))
				continue;
			double d = tj_cons_margin(e, a, b, NULL, NULL);
			wins[a] += d > 0 || (d == 0 && a < b);
		}
	int pick = -1, next = -1;
	for (unsigned m = 0; m < e->n; m++) {
		if (!((cand >> m) & 1))
			continue;
		int better = pick < 0 || wins[m] > wins[pick] ||
			     (wins[m] == wins[pick] && e->cost[m] < e->cost[pick]);
		if (better) {
			next = pick;
			pick = (int)m;
		} else if (next < 0 || wins[m] > wins[next] ||
			   (wins[m] == wins[next] && e->cost[m] < e->cost[next])) {
			next = (int)m;
		}
	}
	if (runner_up)
		*runner_up = next;
	return pick < 0 ? 0 : pick;
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
