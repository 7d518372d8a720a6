/* A pool of fixed-size slots, numbered from 0, in chunks that never move
 * and whose pages are made present when the chunk is made (not one page
 * fault at a time as the slots are first written).
 *
 * Why: capture's recorder holds every drained event in a slot until its
 * time is written.  When the reader falls behind a burst it drains whole
 * rings at once and the pool grows by hundreds of thousands of slots; a
 * pool grown by realloc took a page fault per 4 KiB of new slots (32
 * events), and on our VM a fault (a paravirtual exception) was most of
 * the reader's time under a saturating burst.  Chunks are 2 MiB, asked
 * for as transparent huge pages where the kernel offers them (one fault
 * per chunk) and populated in one call otherwise.  Slots are recycled
 * (the caller keeps the free list); chunks are freed only with the pool. */
#ifndef TJ_CAPTURE_SLOT_POOL_H
#define TJ_CAPTURE_SLOT_POOL_H

#include <stddef.h>
#include <stdint.h>

#define TJ_SLOT_CHUNK_BYTES (2u << 20)

struct tj_slot_pool {
	uint8_t **chunks;     /* nchunks chunks of per_chunk slots each */
	size_t nchunks, capchunks;
	size_t size;          /* bytes per slot */
	unsigned shift;       /* per_chunk = 1 << shift */
	uint32_t mask;        /* per_chunk - 1 */
};

/* size: bytes per slot, 1 .. TJ_SLOT_CHUNK_BYTES (rounded up to a power
 * of two for the slot arithmetic).  Makes no chunk yet. */
void tj_slot_pool_init(struct tj_slot_pool *p, size_t size);

/* Slots in the pool so far (a multiple of the chunk's). */
static inline size_t tj_slot_pool_cap(const struct tj_slot_pool *p)
{
	return p->nchunks << p->shift;
}

/* One more chunk: slots [cap, cap + per_chunk) exist after, their pages
 * present.  Returns how many slots it added, 0 when out of memory. */
size_t tj_slot_pool_grow(struct tj_slot_pool *p);

/* Slot i (< tj_slot_pool_cap). */
static inline void *tj_slot_pool_at(const struct tj_slot_pool *p, uint32_t i)
{
	return p->chunks[i >> p->shift] + (size_t)(i & p->mask) * p->size;
}

void tj_slot_pool_free(struct tj_slot_pool *p);

#endif
