#include <stdlib.h>
#include "u64map.h"

void tj_u64map_init(struct tj_u64map *m)
{
	m->ent = NULL;
	m->cap = m->len = 0;
	m->by_block = 0;
}

void tj_u64map_init_blocks(struct tj_u64map *m)
{
	tj_u64map_init(m);
	m->by_block = 1;
}

void tj_u64map_free(struct tj_u64map *m)
{
	free(m->ent);
	m->ent = NULL;
	m->cap = m->len = 0; /* by_block stays: the map may be used again */
}

static int grow(struct tj_u64map *m)
{
	struct tj_u64map bigger;
	size_t cap = m->cap ? m->cap * 2 : 16;
	bigger.ent = calloc(cap, sizeof(*bigger.ent));
	bigger.cap = cap;
	bigger.len = 0;
	bigger.by_block = m->by_block;
	if (!bigger.ent)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->ent[i].used)
			continue;
		size_t j = tj_u64map_home(&bigger, m->ent[i].key);
		while (bigger.ent[j].used)
			j = (j + 1) & (cap - 1);
		bigger.ent[j] = m->ent[i];
		bigger.len++;
	}
	tj_u64map_free(m);
	*m = bigger;
	return 0;
}

uint64_t *tj_u64map_upsert(struct tj_u64map *m, uint64_t key, int *added)
{
	/* Keep the load under 3/4 so probes stay short. */
	if ((m->len + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return NULL;
	size_t i = tj_u64map_home(m, key);
	while (m->ent[i].used) {
		if (m->ent[i].key == key) {
			if (added)
				*added = 0;
			return &m->ent[i].val;
		}
		i = (i + 1) & (m->cap - 1);
	}
	m->ent[i] = (struct tj_u64map_ent){ .key = key, .val = 0, .used = 1 };
	m->len++;
	if (added)
		*added = 1;
	return &m->ent[i].val;
}

int tj_u64map_put(struct tj_u64map *m, uint64_t key, uint64_t val)
{
	uint64_t *v = tj_u64map_upsert(m, key, NULL);
	if (!v)
		return -1;
	*v = val;
	return 0;
}

int tj_u64map_del(struct tj_u64map *m, uint64_t key)
{
	if (m->cap == 0)
		return 0;
	size_t mask = m->cap - 1, i = tj_u64map_home(m, key);
	while (m->ent[i].used && m->ent[i].key != key)
		i = (i + 1) & mask;
	if (!m->ent[i].used)
		return 0;
	/* Backward shift: pull later members of the probe run into the hole
	 * when the hole lies between their home slot and where they sit. */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; m->ent[j].used; j = (j + 1) & mask) {
		size_t home = tj_u64map_home(m, m->ent[j].key);
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			m->ent[hole] = m->ent[j];
			hole = j;
		}
	}
	m->ent[hole].used = 0;
	m->len--;
	return 1;
}
