/* What several unit tests share: a socket event builder, a temporary
 * folder, and where the build put a plugin.  Header only (each test is
 * one .c file); include it after <cmocka.h>. */
#ifndef TJ_TEST_UTIL_H
#define TJ_TEST_UTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/event.h"

/* An IPv4 event: the fields tests vary, the rest 0 but the ports (8080
 * local, 40000 remote; a test that needs others sets them). */
static inline struct tj_event test_event(uint32_t node, uint64_t ts, unsigned type,
					 uint64_t sock, uint64_t off, int64_t bytes,
					 uint32_t pid, uint32_t tid)
{
	struct tj_event e;
	memset(&e, 0, sizeof(e));
	e.node = node;
	e.ts_ns = ts;
	e.type = (uint8_t)type;
	e.sock = sock;
	e.offset = off;
	e.bytes = bytes;
	e.pid = pid;
	e.tid = tid;
	e.family = 2; /* AF_INET */
	e.lport = 8080;
	e.rport = 40000;
	return e;
}

/* A fresh folder /tmp/NAME.XXXXXX in dir (at least 64 bytes); 0 or -1. */
static inline int test_dir_make(char *dir, size_t size, const char *name)
{
	if (snprintf(dir, size, "/tmp/%s.XXXXXX", name) >= (int)size)
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

static inline int test_dir_remove_one(const char *path, const struct stat *st, int flag,
				      struct FTW *ftw)
{
	return remove(path);
}

/* The folder and everything in it; 0 or -1. */
static inline int test_dir_remove(const char *dir)
{
	return nftw(dir, test_dir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole file, NUL-terminated (free() it); its length in *len if len
 * is not NULL.  Fails the test if it cannot be read. */
static inline char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: cannot open", path);
	size_t cap = 4096, n = 0, got;
	char *b = malloc(cap);
	assert_non_null(b);
	while ((got = fread(b + n, 1, cap - 1 - n, f)) > 0) {
		n += got;
		if (n == cap - 1) {
			cap *= 2;
			b = realloc(b, cap);
			assert_non_null(b);
		}
	}
	assert_false(ferror(f));
	fclose(f);
	b[n] = 0;
	if (len)
		*len = n;
	return b;
}

/* $TJ_BUILD/plugins/NAME (build/ by default), failing the test if make
 * has not built it.  The result lives until the next call. */
static inline const char *test_plugin_path(const char *name)
{
	static char p[256];
	const char *b = getenv("TJ_BUILD");
	snprintf(p, sizeof(p), "%s/plugins/%s", b && *b ? b : "build", name);
	if (access(p, R_OK) != 0)
		fail_msg("%s not built (make builds it; TJ_BUILD names the build folder)", p);
	return p;
}

#endif
