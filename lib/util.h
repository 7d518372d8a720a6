/* Small helpers every component wanted a copy of. */
#ifndef TJ_UTIL_H
#define TJ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Make room for `need` elements of `size` bytes in *p (capacity *cap),
 * doubling.  0, or -1 if out of memory or the size would overflow; *p is
 * untouched then. */
int tj_grow(void **p, size_t *cap, size_t need, size_t size);

/* An array of `bytes` that is rewritten often and only partly used
 * (free() it): from 2 MiB on, aligned to 2 MiB and advised to be backed
 * by huge pages, so touching it costs a page fault per 2 MiB instead of
 * one per 4 KiB (a fault costs microseconds, ~10 in a VM); pages never
 * touched still take no memory.  Smaller: 64-byte aligned.  Its
 * contents are undefined; NULL if out of memory. */
void *tj_alloc_big(size_t bytes);

/* Keep what free() returns for reuse in this process instead of giving
 * it back to the system (mallopt: no trimming of the heap's top below
 * 256 MiB free, no mmap below 32 MiB).  For a command that allocates
 * and frees the same buffers over and over (the streamed export: a
 * block of edges parsed into fresh arrays each time): given back, each
 * round faults them in again, a page fault per 4 KiB.  Peak memory is
 * what is in use at once, as before. */
void tj_malloc_keep_freed(void);

/* The decimal digits of v at o (room for 20, no NUL); returns how many.
 * By hand, eight digits at a time in 32-bit arithmetic: exporters and
 * the edges writer format millions of numbers. */
size_t tj_fmt_u64(char *o, uint64_t v);

/* A command-line number: decimal digits only (no sign, space, hex or
 * trailing text), within [min, max].  0 or -1. */
int tj_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Text from a file made safe for a terminal: control bytes (below 0x20,
 * 0x7f: an escape sequence starts with 0x1b) become \xNN, a backslash
 * \\.  Writes at most cap bytes with the NUL (cut short, never mid
 * escape) and returns dst.  Bytes from 0x80 pass (UTF-8 names). */
char *tj_escape(char *dst, size_t cap, const char *src);

/* A command-line duration in seconds ("2", "0.5"), > 0 and at most 1e6,
 * into nanoseconds.  0 or -1. */
int tj_parse_seconds(const char *s, uint64_t *ns);

#endif
