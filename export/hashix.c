/* Indices by a 32-bit hash (hashix.h). */
#include <stdlib.h>
#include <string.h>
#include "hashix.h"

void tj_hashix_init(struct tj_hashix *t)
{
	memset(t, 0, sizeof(*t));
}

void tj_hashix_free(struct tj_hashix *t)
{
	free(t->ent);
	tj_hashix_init(t);
}

static void put(struct tj_hashix_ent *ent, size_t mask, struct tj_hashix_ent e)
{
	size_t i = e.h & mask;
	while (ent[i].idx != TJ_HASHIX_NONE)
		i = (i + 1) & mask;
	ent[i] = e;
}

static int grow_to(struct tj_hashix *t, size_t cap)
{
	/* a home block of eight slots is one cache line (cap >= 64) */
	struct tj_hashix_ent *b = aligned_alloc(64, cap * sizeof(*b));
	if (!b)
		return -1;
	memset(b, 0xff, cap * sizeof(*b)); /* idx TJ_HASHIX_NONE: empty */
	for (size_t i = 0; i < t->cap; i++)
		if (t->ent[i].idx != TJ_HASHIX_NONE)
			put(b, cap - 1, t->ent[i]);
	free(t->ent);
	t->ent = b;
	t->cap = cap;
	return 0;
}

/* At most half full: runs stay short, and the 8-byte entries make the
 * spare room cheap. */
int tj_hashix_reserve(struct tj_hashix *t, size_t n)
{
	size_t cap = t->cap ? t->cap : 64;
	while (cap < 2 * n)
		cap *= 2;
	return cap > t->cap ? grow_to(t, cap) : 0;
}

int tj_hashix_add(struct tj_hashix *t, uint32_t h, uint32_t idx)
{
	if (tj_hashix_reserve(t, t->len + 1) < 0)
		return -1;
	put(t->ent, t->cap - 1, (struct tj_hashix_ent){ .h = h, .idx = idx });
	t->len++;
	return 0;
}

int tj_hashix_del(struct tj_hashix *t, uint32_t h, uint32_t idx)
{
	if (!t->cap)
		return 0;
	size_t mask = t->cap - 1, i = h & mask;
	for (; t->ent[i].idx != TJ_HASHIX_NONE; i = (i + 1) & mask)
		if (t->ent[i].idx == idx && t->ent[i].h == h)
			break;
	if (t->ent[i].idx == TJ_HASHIX_NONE)
		return 0;
	/* backward shift: a later entry of the run moves into the hole when
	 * the hole lies cyclically between its home and where it sits */
	for (size_t j = (i + 1) & mask; t->ent[j].idx != TJ_HASHIX_NONE; j = (j + 1) & mask) {
		size_t home = t->ent[j].h & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->ent[i] = t->ent[j];
			i = j;
		}
	}
	t->ent[i].idx = TJ_HASHIX_NONE;
	t->len--;
	return 1;
}
