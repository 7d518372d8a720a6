/* Fixed-size slots in 2 MiB chunks whose pages are present from the
 * start (see slot_pool.h for why). */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "slot_pool.h"
#include "../lib/util.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL */
#endif

void tj_slot_pool_init(struct tj_slot_pool *p, size_t size)
{
	size_t s = 1;
	unsigned shift = 0;

	while (s < size && s < TJ_SLOT_CHUNK_BYTES)
		s <<= 1;
	while ((s << shift) < TJ_SLOT_CHUNK_BYTES)
		shift++;
	p->chunks = NULL;
	p->nchunks = p->capchunks = 0;
	p->size = s;
	p->shift = shift;
	p->mask = (1u << shift) - 1;
}

/* A chunk aligned to its size, so that the kernel can back it with one
 * huge page: twice the size mapped, the unaligned ends given back. */
static uint8_t *map_chunk(void)
{
	size_t len = TJ_SLOT_CHUNK_BYTES;
	uint8_t *m = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t at;

	if (m == MAP_FAILED)
		return NULL;
	at = ((uintptr_t)m + len - 1) & ~(uintptr_t)(len - 1);
	if (at > (uintptr_t)m)
		munmap(m, at - (uintptr_t)m);
	if ((uintptr_t)m + 2 * len > at + len)
		munmap((uint8_t *)at + len, (uintptr_t)m + 2 * len - (at + len));
	m = (uint8_t *)at;
	/* Advice only: without THP (or with it off) the pages are 4 KiB. */
	(void)madvise(m, len, MADV_HUGEPAGE);
	if (madvise(m, len, MADV_POPULATE_WRITE) != 0) {
		/* An older kernel: touch each page now, in one go, rather
		 * than one at a time in the middle of a drain. */
		long page = sysconf(_SC_PAGESIZE);
		for (size_t i = 0; i < len; i += page > 0 ? (size_t)page : 4096)
			((volatile uint8_t *)m)[i] = 0;
	}
	return m;
}

size_t tj_slot_pool_grow(struct tj_slot_pool *p)
{
	uint8_t *c;

	if (tj_grow((void **)&p->chunks, &p->capchunks, p->nchunks + 1, sizeof(*p->chunks)) < 0)
		return 0;
	/* Slot numbers are 32-bit. */
	if ((p->nchunks + 1) << p->shift > UINT32_MAX)
		return 0;
	if (!(c = map_chunk()))
		return 0;
	p->chunks[p->nchunks++] = c;
	return (size_t)1 << p->shift;
}

void tj_slot_pool_free(struct tj_slot_pool *p)
{
	for (size_t i = 0; i < p->nchunks; i++)
		munmap(p->chunks[i], TJ_SLOT_CHUNK_BYTES);
	free(p->chunks);
	p->chunks = NULL;
	p->nchunks = p->capchunks = 0;
}
