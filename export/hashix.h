/* Indices by a 32-bit hash, for the streamed export's tables of things
 * in flight (stream.c: connections by node:sock, connection names):
 * open addressing with 8-byte entries, the hash and the index into the
 * caller's array of records.  A keymap entry is 32 bytes (a whole message
 * key), a u64map's 24; with one insert and one delete per connection and
 * tens of thousands in flight, a table's size is its cost (cache misses),
 * so only the hash is kept and the caller confirms each candidate against
 * its own record (several records may share a hash).  Linear probing,
 * deletion by backward shift (no tombstones: connections come and go all
 * the time). */
#ifndef TJ_HASHIX_H
#define TJ_HASHIX_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/u64map.h"

#define TJ_HASHIX_NONE UINT32_MAX

struct tj_hashix_ent {
	uint32_t h;    /* the record's hash (e.g. tj_hashix_sock) */
	uint32_t idx;  /* the caller's index; TJ_HASHIX_NONE: empty */
};

struct tj_hashix {
	struct tj_hashix_ent *ent;
	size_t cap;    /* power of two, 0 before the first insert */
	size_t len;
};

/* The hash of a socket, node:sock.  Socket ids come from a counter
 * (capture: inode numbers; gen: its own), so connections opened together
 * have neighbouring ids: eight neighbours share a home block of eight
 * slots (one cache line) placed by the hash of node and id / 8; a run of
 * new connections then touches one line per eight.  The low three bits
 * are the id's own, the rest the hash's. */
static inline uint32_t tj_hashix_sock(uint32_t node, uint64_t sock)
{
	return (uint32_t)tj_hash64_block(sock, tj_hash64(node), 3);
}

void tj_hashix_init(struct tj_hashix *t);
void tj_hashix_free(struct tj_hashix *t);
/* Room for n entries without growing; 0, or -1 if out of memory. */
int tj_hashix_reserve(struct tj_hashix *t, size_t n);
/* Add idx under hash h (the caller knows it is not there); 0 or -1. */
int tj_hashix_add(struct tj_hashix *t, uint32_t h, uint32_t idx);
/* Remove idx, added under h; 1 if it was there. */
int tj_hashix_del(struct tj_hashix *t, uint32_t h, uint32_t idx);

/* The indices added under hash h, one per call, TJ_HASHIX_NONE after
 * the last; *pos starts at 0.  Several sockets may share a hash: the
 * caller checks each candidate's node:sock.
 *   for (size_t pos = 0; (i = tj_hashix_next(t, h, &pos)) != NONE;) */
static inline uint32_t tj_hashix_next(const struct tj_hashix *t, uint32_t h, size_t *pos)
{
	if (!t->cap)
		return TJ_HASHIX_NONE;
	size_t mask = t->cap - 1;
	/* *pos counts the slots already looked at from h's home */
	for (size_t i = (h + *pos) & mask; *pos <= mask; i = (i + 1) & mask) {
		const struct tj_hashix_ent *e = &t->ent[i];
		++*pos;
		if (e->idx == TJ_HASHIX_NONE)
			break;
		if (e->h == h)
			return e->idx;
	}
	*pos = t->cap + 1; /* the run ended: stay ended */
	return TJ_HASHIX_NONE;
}

#endif
