#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "msgkey.h"
#include "u64map.h"
#include "util.h"

/* Decimal digits of v at p; returns the end.  Keys are written once per
 * label, edge and exported span, millions of times in a big dataset: no
 * printf here. */
static char *put_u64(char *p, uint64_t v)
{
	return p + tj_fmt_u64(p, v);
}

char *tj_msgkey_format(const struct tj_msgkey *k, char *buf)
{
	char *p = put_u64(buf, k->node);
	*p++ = ':';
	p = put_u64(p, k->sock);
	/* Copy only the literal's own bytes: ":in:" is 5 with its NUL. */
	if (k->dir == TJ_DIR_OUT) {
		memcpy(p, ":out:", 5);
		p += 5;
	} else {
		memcpy(p, ":in:", 4);
		p += 4;
	}
	p = put_u64(p, k->offset);
	*p = '\0';
	return buf;
}

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow. */
static const char *parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	*out = v;
	return s;
}

int tj_msgkey_parse(const char *text, struct tj_msgkey *k)
{
	uint64_t node, sock, off;
	const char *s = parse_u64(text, UINT32_MAX, &node);
	if (!s || *s++ != ':')
		return -1;
	s = parse_u64(s, UINT64_MAX, &sock);
	if (!s || *s++ != ':')
		return -1;
	/* by hand, not strncmp: keys are parsed millions of times (labels) */
	if (s[0] == 'i' && s[1] == 'n' && s[2] == ':') {
		k->dir = TJ_DIR_IN;
		s += 3;
	} else if (s[0] == 'o' && s[1] == 'u' && s[2] == 't' && s[3] == ':') {
		k->dir = TJ_DIR_OUT;
		s += 4;
	} else {
		return -1;
	}
	s = parse_u64(s, UINT64_MAX, &off);
	if (!s || *s)
		return -1;
	k->node = (uint32_t)node;
	k->sock = sock;
	k->offset = off;
	return 0;
}
