/* Helpers shared by the generator's unit tests: parse a spec that must
 * be accepted or refused, and make or remove a scratch dataset folder.
 * static inline, so a test that uses only some of them builds clean. */
#ifndef TEST_GEN_UTIL_H
#define TEST_GEN_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "datasets/gen/gen.h"
#include "test_util.h"

static inline struct gen_spec *parse_ok(const char *text)
{
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	if (gen_spec_parse(s, "t.scn", text, strlen(text), &err) < 0)
		fail_msg("refused: %s\n--\n%s", err.msg, text);
	return s;
}

/* The spec must be refused with a message that starts with want_prefix
 * ("t.scn:3: ") and holds want_reason. */
static inline void refused(const char *text, const char *want_prefix,
			   const char *want_reason)
{
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	int rc = gen_spec_parse(s, "t.scn", text, strlen(text), &err);
	free(s);
	if (rc != -TJ_E_FORMAT || strncmp(err.msg, want_prefix, strlen(want_prefix)) != 0 ||
	    !strstr(err.msg, want_reason))
		fail_msg("spec:\n%s\n  rc %d, message '%s'\n  wanted '%s...%s'", text, rc,
			 err.msg, want_prefix, want_reason);
}

static inline char *tmpdir(void)
{
	char *t = malloc(64);
	assert_non_null(t);
	assert_int_equal(test_dir_make(t, 64, "tj-test-gen"), 0);
	return t;
}

static inline void rmdataset(char *dir)
{
	assert_int_equal(test_dir_remove(dir), 0);
	free(dir);
}

/* Whether file NAME holds the same bytes in folders a and b. */
static inline int same_file(const char *a, const char *b, const char *name)
{
	char pa[600], pb[600];
	snprintf(pa, sizeof(pa), "%s/%s", a, name);
	snprintf(pb, sizeof(pb), "%s/%s", b, name);
	FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
	assert_non_null(fa);
	assert_non_null(fb);
	int same = 1, ca, cb;
	do {
		ca = fgetc(fa);
		cb = fgetc(fb);
		same = ca == cb;
	} while (same && ca != EOF);
	fclose(fa);
	fclose(fb);
	return same;
}

#endif
