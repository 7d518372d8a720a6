#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "util.h"

#define HUGE_PAGE (2u << 20)

void tj_malloc_keep_freed(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
	(void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void *tj_alloc_big(size_t bytes)
{
	if (bytes < HUGE_PAGE)
		return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	if (bytes > SIZE_MAX - HUGE_PAGE)
		return NULL;
	bytes = (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
	void *p = aligned_alloc(HUGE_PAGE, bytes);
	if (p)
		(void)madvise(p, bytes, MADV_HUGEPAGE); /* advice: 4 KiB pages else */
	return p;
}

int tj_grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return -1;
		c *= 2;
	}
	if (size && c > SIZE_MAX / size)
		return -1;
	void *q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

int tj_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*s || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

char *tj_escape(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (cap == 0)
		return dst;
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		unsigned c = *p;
		int ctl = c < 0x20 || c == 0x7f;
		size_t need = ctl ? 4 : c == '\\' ? 2 : 1;
		if (n + need >= cap)
			break;
		if (ctl) {
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 15];
		} else {
			if (c == '\\')
				dst[n++] = '\\';
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return dst;
}

int tj_parse_seconds(const char *s, uint64_t *ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !(v > 0) || v > 1e6)
		return -1;
	*ns = (uint64_t)(v * 1e9);
	return *ns ? 0 : -1;
}

/* Two digits at a time: 00..99 */
static const char digits2[201] =
	"0001020304050607080910111213141516171819"
	"2021222324252627282930313233343536373839"
	"4041424344454647484950515253545556575859"
	"6061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* The 8 digits of v < 10^8 at o, in 32-bit arithmetic. */
static void put8(char *o, uint32_t v)
{
	uint32_t hi = v / 10000, lo = v % 10000;
	memcpy(o, digits2 + 2 * (hi / 100), 2);
	memcpy(o + 2, digits2 + 2 * (hi % 100), 2);
	memcpy(o + 4, digits2 + 2 * (lo / 100), 2);
	memcpy(o + 6, digits2 + 2 * (lo % 100), 2);
}

/* The digits of v < 10^8 without leading zeros; returns how many.
 * Counted first, then written from the end: no copy of a variable
 * length (a call to memcpy). */
static size_t put_small(char *o, uint32_t v)
{
	size_t n = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 :
		   v < 100000 ? 5 : v < 1000000 ? 6 : v < 10000000 ? 7 : 8;
	char *e = o + n;
	while (v >= 100) {
		e -= 2;
		memcpy(e, digits2 + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10)
		memcpy(e - 2, digits2 + 2 * v, 2);
	else
		e[-1] = (char)('0' + v);
	return n;
}

size_t tj_fmt_u64(char *o, uint64_t v)
{
	/* nanosecond times have 19 digits: 8 at a time in 32 bits */
	if (v < 100000000)
		return put_small(o, (uint32_t)v);
	if (v < 10000000000000000ull) {
		size_t n = put_small(o, (uint32_t)(v / 100000000));
		put8(o + n, (uint32_t)(v % 100000000));
		return n + 8;
	}
	uint64_t top = v / 10000000000000000ull, rest = v % 10000000000000000ull;
	size_t n = put_small(o, (uint32_t)top);
	put8(o + n, (uint32_t)(rest / 100000000));
	put8(o + n + 8, (uint32_t)(rest % 100000000));
	return n + 16;
}
