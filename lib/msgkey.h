/* Message keys, "node:sock:dir:offset" (DESIGN.md): a message's name that
 * does not depend on how its bytes were split into syscalls. */
#ifndef TJ_MSGKEY_H
#define TJ_MSGKEY_H

#include <stdint.h>
#include "u64map.h" /* tj_hash64 */

enum tj_dir { TJ_DIR_IN = 0, TJ_DIR_OUT = 1 };

struct tj_msgkey {
	uint32_t node;
	uint64_t sock;
	uint64_t offset;
	uint8_t  dir; /* enum tj_dir */
};

/* Longest text form: 10 + 1 + 20 + 1 + 3 + 1 + 20 + NUL. */
#define TJ_MSGKEY_STRLEN 64

/* Write the text form into buf (TJ_MSGKEY_STRLEN bytes); returns buf. */
char *tj_msgkey_format(const struct tj_msgkey *k, char *buf);
/* Parse the text form (the whole string, nothing after it).  0 on
 * success, -1 if malformed. */
int tj_msgkey_parse(const char *text, struct tj_msgkey *k);

/* Inline: every correlator compares and hashes keys several times per
 * message (an out-of-line call each was 4-5 % of the default's time).
 * Plugins call no host symbol (correlator.h), so none is lost. */
static inline int tj_msgkey_cmp(const struct tj_msgkey *a, const struct tj_msgkey *b)
{
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	if (a->sock != b->sock)
		return a->sock < b->sock ? -1 : 1;
	if (a->dir != b->dir)
		return a->dir < b->dir ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}

static inline int tj_msgkey_eq(const struct tj_msgkey *a, const struct tj_msgkey *b)
{
	return a->node == b->node && a->sock == b->sock && a->dir == b->dir &&
	       a->offset == b->offset;
}

static inline uint64_t tj_msgkey_hash(const struct tj_msgkey *k)
{
	uint64_t h = tj_hash64(k->sock ^ ((uint64_t)k->node << 32));
	return tj_hash64(h ^ k->offset ^ ((uint64_t)k->dir << 63));
}

#endif
