/* Helpers shared by the generator's unit tests: parse a spec that must
 * be accepted or refused, and make or remove a scratch dataset folder.
 * static inline, so a test that uses only some of them builds clean. */
#ifndef TEST_GEN_UTIL_H
#define TEST_GEN_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "datasets/gen/gen.h"
#include "lib/evlog.h"
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

/* Generate s into dir (seed, rate, roots); st may be NULL. */
static inline void gen_generate(const struct gen_spec *s, double rate, uint64_t roots,
				uint64_t seed, const char *dir, struct gen_stats *st)
{
	struct gen_opts o = { .seed = seed, .rate = rate, .requests = roots,
			      .dir = dir, .force = 1, .options = "test" };
	struct gen_stats local;
	struct tj_err err = { 0 };
	if (gen_run(s, &o, st ? st : &local, &err) < 0)
		fail_msg("gen %s: %s", s->name, err.msg);
}

static inline char *tmpdir(void)
{
	char *t = malloc(64);
	assert_non_null(t);
	assert_int_equal(test_dir_make(t, 64, "tj-test-gen"), 0);
	return t;
}

/* Parse spec text and generate it into a new scratch folder (rmdataset
 * it). */
static inline char *gen_text(const char *text, double rate, uint64_t roots, uint64_t seed)
{
	struct gen_spec *s = parse_ok(text);
	char *dir = tmpdir();
	gen_generate(s, rate, roots, seed, dir, NULL);
	free(s);
	return dir;
}

/* Open dir/node-N.evlog (must exist). */
static inline struct tj_evlog_reader *open_node_log(const char *dir, int node)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/node-%d.evlog", dir, node);
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	if (tj_evlog_open(&r, path, &err) < 0)
		fail_msg("%s", err.msg);
	return r;
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

/* s generated twice with one seed gives the same bytes: labels and the
 * logs of nodes 1..nnodes. */
static inline void assert_deterministic(const struct gen_spec *s, double rate, uint64_t roots,
					uint64_t seed, int nnodes)
{
	char *a = tmpdir(), *b = tmpdir();
	gen_generate(s, rate, roots, seed, a, NULL);
	gen_generate(s, rate, roots, seed, b, NULL);
	assert_true(same_file(a, b, "labels.csv"));
	for (int i = 1; i <= nnodes; i++) {
		char name[32];
		snprintf(name, sizeof(name), "node-%d.evlog", i);
		if (!same_file(a, b, name))
			fail_msg("%s: %s differs between two runs with seed %llu", s->name, name,
				 (unsigned long long)seed);
	}
	rmdataset(a);
	rmdataset(b);
}

#endif
