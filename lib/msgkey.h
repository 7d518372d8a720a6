/* Message keys, "node:sock:dir:offset" (DESIGN.md): a message's name that
 * does not depend on how its bytes were split into syscalls. */
#ifndef TJ_MSGKEY_H
#define TJ_MSGKEY_H

#include <stdint.h>

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
int tj_msgkey_cmp(const struct tj_msgkey *a, const struct tj_msgkey *b);
int tj_msgkey_eq(const struct tj_msgkey *a, const struct tj_msgkey *b);
uint64_t tj_msgkey_hash(const struct tj_msgkey *k);

#endif
