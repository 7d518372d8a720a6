/* Calls per call message, by write syscalls (call_units.h). */
#include <stdlib.h>
#include <string.h>
#include "call_units.h"
#include "../lib/util.h"

void tj_call_units_init(struct tj_call_units *u)
{
	memset(u, 0, sizeof(*u));
	tj_u64map_init(&u->ix);
}

void tj_call_units_free(struct tj_call_units *u)
{
	tj_u64map_free(&u->ix);
	free(u->q);
	memset(u, 0, sizeof(*u));
}

uint64_t tj_call_dest(const struct tj_message *m)
{
	uint64_t a, b;
	memcpy(&a, m->raddr, 8);
	memcpy(&b, m->raddr + 8, 8);
	return tj_hash64(tj_hash64(((uint64_t)m->family << 16) | m->rport) ^
			 tj_hash64(a ^ tj_hash64(b)));
}

uint64_t tj_call_units_of(const struct tj_call_queue *q, uint32_t writes, uint64_t bytes)
{
	const uint64_t *hist = q->hist;
	if (writes <= 1)
		return 1;
	unsigned mode = 1;
	uint64_t best = hist[1] + 1; /* the prior: one write per call */
	for (unsigned k = 2; k <= TJ_CALL_UNITS_HIST; k++)
		if (hist[k] > best) {
			best = hist[k];
			mode = k;
		}
	uint64_t c = writes / mode;
	if (hist[1]) { /* the bytes of so many calls? */
		double per_call = (double)q->one_write_bytes / (double)hist[1];
		double by_bytes = per_call > 0 ? (double)bytes / per_call + 0.5 : 1;
		if (by_bytes < (double)c)
			c = (uint64_t)by_bytes;
	}
	return c ? c : 1;
}

uint64_t tj_call_queue(const struct tj_message *m, uint64_t dest)
{
	return tj_hash64(dest ^ tj_hash64((uint64_t)m->key.node << 32 | m->pid));
}

int tj_call_queue_pipelined(const struct tj_call_queue *q)
{
	uint64_t msgs = 0;
	for (unsigned k = 1; k <= TJ_CALL_UNITS_HIST; k++)
		msgs += q->hist[k];
	return tj_calls_pipelined(q->merged, msgs);
}

int tj_call_units_pipelined(const struct tj_call_units *u, const struct tj_message *m,
			    uint64_t dest)
{
	const uint64_t *v = tj_u64map_get(&u->ix, tj_call_queue(m, dest));
	return v && tj_call_queue_pipelined(&u->q[*v]);
}

uint64_t tj_call_units_add(struct tj_call_units *u, const struct tj_message *m, uint64_t dest)
{
	uint64_t h = tj_call_queue(m, dest);
	int added;
	uint64_t *v = tj_u64map_upsert(&u->ix, h, &added);
	if (!v)
		return 0;
	if (added) {
		if (tj_grow((void **)&u->q, &u->cap, u->n + 1, sizeof(*u->q))) {
			tj_u64map_del(&u->ix, h);
			return 0;
		}
		memset(&u->q[u->n], 0, sizeof(*u->q));
		*v = u->n++;
	}
	struct tj_call_queue *q = &u->q[*v];
	uint32_t w = m->nsyscalls ? m->nsyscalls : 1;
	q->hist[w < TJ_CALL_UNITS_HIST ? w : TJ_CALL_UNITS_HIST]++;
	if (w == 1)
		q->one_write_bytes += m->bytes;
	uint64_t c = tj_call_units_of(q, w, m->bytes);
	q->merged += c > 1;
	return c;
}
