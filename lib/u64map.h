/* A hash map from uint64_t keys to uint64_t values (often an index into
 * an array the caller owns): open addressing, linear probing, deletion by
 * backward shift, so no tombstones pile up on long captures where sockets
 * come and go.  Key 0 is allowed. */
#ifndef TJ_U64MAP_H
#define TJ_U64MAP_H

#include <stddef.h>
#include <stdint.h>

/* A slot: key, value and "in use" side by side, so a probe touches one
 * cache line, not three arrays. */
struct tj_u64map_ent {
	uint64_t key, val;
	uint8_t used;
};

struct tj_u64map {
	struct tj_u64map_ent *ent;
	size_t cap;   /* power of two, 0 before the first insert */
	size_t len;
	uint8_t by_block; /* tj_u64map_init_blocks */
};

void tj_u64map_init(struct tj_u64map *m);
/* For keys that come from a counter (socket ids: inode numbers, gen's
 * own): four neighbouring keys share a home block of four slots placed
 * by the hash of key / 4, so a run of new keys touches memory in
 * sequence instead of one cache miss each.  Same lookups, another slot
 * order (iterate such a map only where the order does not matter). */
void tj_u64map_init_blocks(struct tj_u64map *m);
void tj_u64map_free(struct tj_u64map *m);
/* Insert or overwrite.  Returns 0, or -1 if out of memory. */
int tj_u64map_put(struct tj_u64map *m, uint64_t key, uint64_t val);
/* Pointer to key's value, inserting it with value 0 if absent (*added
 * tells which); NULL if out of memory. */
uint64_t *tj_u64map_upsert(struct tj_u64map *m, uint64_t key, int *added);
/* Remove key; returns 1 if it was there. */
int tj_u64map_del(struct tj_u64map *m, uint64_t key);
/* Iterate: for (size_t i = 0; i < m->cap; i++) if (m->ent[i].used) ... */

/* Mix a 64-bit value (splitmix64 finaliser); combine fields with
 * tj_hash64(a ^ tj_hash64(b)). */
static inline uint64_t tj_hash64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A hash under which keys that differ only in their low `bits` bits
 * (neighbours from a counter) share a home block of 2^bits slots: the
 * block placed by the hash of key >> bits and salt, the key's low bits
 * its place in the block.  A run of new ids then touches memory in
 * sequence instead of one cache miss each (u64map's blocks, export's
 * hashix). */
static inline uint64_t tj_hash64_block(uint64_t key, uint64_t salt, unsigned bits)
{
	uint64_t low = (1ull << bits) - 1;
	return (tj_hash64((key >> bits) ^ salt) & ~low) | (key & low);
}

/* The home slot of key (cap > 0). */
static inline size_t tj_u64map_home(const struct tj_u64map *m, uint64_t key)
{
	uint64_t h = m->by_block ? tj_hash64_block(key, 0, 2) : tj_hash64(key);
	return (size_t)h & (m->cap - 1);
}

/* Pointer to the value of key, or NULL.  Inline: the correlators look
 * keys up several times per message. */
static inline uint64_t *tj_u64map_get(const struct tj_u64map *m, uint64_t key)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = tj_u64map_home(m, key);; i = (i + 1) & (m->cap - 1)) {
		struct tj_u64map_ent *e = &m->ent[i];
		if (!e->used)
			return NULL;
		if (e->key == key)
			return &e->val;
	}
}

#endif
