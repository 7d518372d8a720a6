/* A lane read in place: see lane.h. */
#include "lane.h"

uint64_t tj_lane_head(const struct tjc_lane *l)
{
	return __atomic_load_n(&l->head, __ATOMIC_ACQUIRE);
}

uint32_t tj_lane_slots(size_t ring_bytes)
{
	size_t want = ring_bytes / 4 / sizeof(struct tjc_data);
	uint32_t n = 16;

	while (n < TJC_LANE_SLOTS && (size_t)n * 2 <= want)
		n *= 2;
	return n;
}

int tj_lane_take(struct tjc_lane *l, uint32_t slots, uint64_t upto, tj_lane_fn fn, void *ctx)
{
	uint64_t tail = __atomic_load_n(&l->tail, __ATOMIC_RELAXED), at;
	int rc = 0;

	if (slots == 0 || slots > TJC_LANE_SLOTS || (slots & (slots - 1)) || upto - tail > slots)
		return -1; /* also upto < tail: the difference wraps */
	for (at = tail; at < upto && !rc; at++)
		rc = fn(ctx, &l->slot[at & (slots - 1)], sizeof(struct tjc_data));
	/* The slots are the kernel side's again once tail passes them. */
	__atomic_store_n(&l->tail, at, __ATOMIC_RELEASE);
	return rc;
}
