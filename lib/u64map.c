#include <stdlib.h>
#include "u64map.h"

void tj_u64map_init(struct tj_u64map *m)
{
	m->keys = m->vals = NULL;
	m->used = NULL;
	m->cap = m->len = 0;
}

void tj_u64map_free(struct tj_u64map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	tj_u64map_init(m);
}

static size_t slot_of(const struct tj_u64map *m, uint64_t key)
{
	return (size_t)tj_hash64(key) & (m->cap - 1);
}

uint64_t *tj_u64map_get(const struct tj_u64map *m, uint64_t key)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (!m->used[i])
			return NULL;
		if (m->keys[i] == key)
			return &m->vals[i];
	}
}

static int grow(struct tj_u64map *m)
{
	struct tj_u64map bigger;
	size_t cap = m->cap ? m->cap * 2 : 16;
	bigger.keys = malloc(cap * sizeof(uint64_t));
	bigger.vals = malloc(cap * sizeof(uint64_t));
	bigger.used = calloc(cap, 1);
	bigger.cap = cap;
	bigger.len = 0;
	if (!bigger.keys || !bigger.vals || !bigger.used) {
		tj_u64map_free(&bigger);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->used[i])
			continue;
		size_t j = slot_of(&bigger, m->keys[i]);
		while (bigger.used[j])
			j = (j + 1) & (cap - 1);
		bigger.used[j] = 1;
		bigger.keys[j] = m->keys[i];
		bigger.vals[j] = m->vals[i];
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
	size_t i = slot_of(m, key);
	while (m->used[i]) {
		if (m->keys[i] == key) {
			if (added)
				*added = 0;
			return &m->vals[i];
		}
		i = (i + 1) & (m->cap - 1);
	}
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = 0;
	m->len++;
	if (added)
		*added = 1;
	return &m->vals[i];
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
	size_t mask = m->cap - 1, i = slot_of(m, key);
	while (m->used[i] && m->keys[i] != key)
		i = (i + 1) & mask;
	if (!m->used[i])
		return 0;
	/* Backward shift: pull later members of the probe run into the hole
	 * when the hole lies between their home slot and where they sit. */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
		size_t home = slot_of(m, m->keys[j]);
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			m->keys[hole] = m->keys[j];
			m->vals[hole] = m->vals[j];
			hole = j;
		}
	}
	m->used[hole] = 0;
	m->len--;
	return 1;
}
