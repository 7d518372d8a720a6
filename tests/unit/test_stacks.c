/* The stacks block (lib/evlog_stacks.c) and the symboliser
 * (lib/symbolize.c): a block round-trips beside the events, which
 * ordinary readers still read whole; a log cut at any byte or with a bad
 * byte in the block never crashes the reader and never yields wrong
 * stacks; this test binary's own functions are named from its maps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/evlog.h"
#include "lib/stacks.h"
#include "lib/symbolize.h"

static char dir[] = "/tmp/tj-test-stacks.XXXXXX";

static void fill(struct tj_stacks *s)
{
	struct tj_map m = { .pid = 42, .start = 0x400000, .end = 0x401000, .offset = 0x1000,
			    .path = "/usr/bin/example", .build_id_len = 3,
			    .build_id = { 0xab, 0xcd, 0xef } };
	uint64_t u1[] = { 0x400010, 0x400200 }, k1[] = { 0xffffffff81000010ull };
	const char *names[] = { "tcp_sendmsg" };

	tj_stacks_init(s);
	assert_int_equal(tj_stacks_add_map(s, &m), 0);
	m.pid = 7;
	m.path = "[vdso]";
	m.build_id_len = 0;
	assert_int_equal(tj_stacks_add_map(s, &m), 0);
	assert_int_equal(tj_stacks_add_map(s, &m), 0); /* the same line again: once */
	assert_int_equal(tj_stacks_add(s, 2, u1, 2, k1, names, 1), 0);
	assert_int_equal(tj_stacks_add(s, 1, u1 + 1, 1, NULL, NULL, 0), 0);
	tj_stacks_sort(s);
}

static void write_log(const char *path, int with_stacks)
{
	struct tj_evlog_header h = { .node = 3, .capture_flags = TJ_CAP_STACKS };
	struct tj_evlog_writer *w;
	struct tj_err err = { 0 };
	struct tj_stacks s;

	assert_int_equal(tj_evlog_create(&w, path, &h, TJ_EVLOG_FORCE, &err), 0);
	for (int i = 0; i < 3; i++) {
		struct tj_event ev = { .ts_ns = 100 + (uint64_t)i, .node = 3, .sock = 9,
				       .type = TJ_EV_SEND, .bytes = 5, .offset = 5 * (uint64_t)i,
				       .fd = 4, .pid = 42, .tid = 42, .stack_id = 1 + (i & 1) };
		assert_int_equal(tj_evlog_write(w, &ev, &err), 0);
	}
	if (with_stacks) {
		fill(&s);
		assert_int_equal(tj_stacks_write(w, &s, &err), 0);
		tj_stacks_free(&s);
	}
	assert_int_equal(tj_evlog_close(w, &err), 0);
}

/* Events read by the ordinary reader, and whether it saw damage. */
static int count_events(const char *path, int *damaged)
{
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	const struct tj_event *ev;
	int n = 0;

	*damaged = -1;
	if (tj_evlog_open(&r, path, &err) != 0)
		return -1;
	while (tj_evlog_next(r, &ev, &err) == 1)
		n++;
	*damaged = tj_evlog_damage(r)->damaged;
	tj_evlog_close_reader(r);
	return n;
}

static void test_round_trip(void **state)
{
	char path[256];
	struct tj_stacks s;
	struct tj_err err = { 0 };
	int damaged;

	snprintf(path, sizeof(path), "%s/a.evlog", dir);
	write_log(path, 1);
	assert_int_equal(count_events(path, &damaged), 3);
	assert_int_equal(damaged, 0);
	tj_stacks_init(&s);
	assert_int_equal(tj_stacks_read(path, &s, &err), 1);
	assert_int_equal(s.nmaps, 2);
	assert_int_equal(s.maps[0].pid, 7);
	assert_string_equal(s.maps[1].path, "/usr/bin/example");
	assert_int_equal(s.maps[1].build_id_len, 3);
	assert_int_equal(s.maps[1].build_id[2], 0xef);
	assert_int_equal(s.nstacks, 2);
	const struct tj_stack *k = tj_stacks_find(&s, 2);
	assert_non_null(k);
	assert_int_equal(k->nuser, 2);
	assert_int_equal(k->nkernel, 1);
	assert_true(k->ips[1] == 0x400200);
	assert_string_equal(k->ksyms[0], "tcp_sendmsg");
	assert_null(tj_stacks_find(&s, 3));
	assert_non_null(tj_stacks_map_of(&s, 42, 0x400fff));
	assert_null(tj_stacks_map_of(&s, 42, 0x401000));
	assert_null(tj_stacks_map_of(&s, 43, 0x400010));

	/* Unknown file: file+offset; kernel frame: its name. */
	struct tj_symbolizer *z = tj_symbolizer_new();
	char buf[256];
	assert_string_equal(tj_symbolize_frame(z, &s, 42, k, 0, buf, sizeof(buf)),
			    "/usr/bin/example+0x1010");
	assert_string_equal(tj_symbolize_frame(z, &s, 42, k, 2, buf, sizeof(buf)),
			    "tcp_sendmsg [kernel]");
	assert_string_equal(tj_symbolize_frame(z, &s, 99, k, 0, buf, sizeof(buf)), "0x400010");
	tj_symbolizer_free(z);
	tj_stacks_free(&s);

	snprintf(path, sizeof(path), "%s/b.evlog", dir);
	write_log(path, 0);
	tj_stacks_init(&s);
	assert_int_equal(tj_stacks_read(path, &s, &err), 0);
	assert_int_equal(s.nstacks, 0);
}

/* Every prefix of the file, and every byte of it flipped: the stacks
 * come back whole or not at all, and the events reader never fails
 * harder than "damaged". */
static void test_damage(void **state)
{
	char path[256], cut[256];
	struct tj_err err = { 0 };
	uint8_t buf[8192];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/c.evlog", dir);
	snprintf(cut, sizeof(cut), "%s/cut.evlog", dir);
	write_log(path, 1);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_true(n > 64 && n < sizeof(buf));
	for (size_t len = 0; len <= n; len++) {
		for (int flip = 0; flip < 2; flip++) {
			if (flip && len == n)
				continue;
			f = fopen(cut, "wb");
			assert_non_null(f);
			if (flip) {
				buf[len] ^= 0x5a;
				fwrite(buf, 1, n, f);
				buf[len] ^= 0x5a;
			} else {
				fwrite(buf, 1, len, f);
			}
			fclose(f);
			struct tj_stacks s;
			tj_stacks_init(&s);
			int rc = tj_stacks_read(cut, &s, &err);
			if (rc == 1) {
				assert_int_equal(s.nstacks, 2);
				assert_int_equal(s.nmaps, 2);
			} else {
				assert_int_equal(s.nstacks, 0);
			}
			tj_stacks_free(&s);
		}
	}
}

/* A function of this binary, named from its own maps. */
__attribute__((noinline)) int tj_unit_marker(int x)
{
	return x * 3 + 1;
}

__attribute__((noinline)) int tj_unit_other(int x)
{
	return x * 5 + 2;
}

static void test_symbolize_self(void **state)
{
	struct tj_stacks s;
	uint32_t pid = (uint32_t)getpid();
	uint64_t ips[2] = { (uint64_t)(uintptr_t)&tj_unit_marker + 1,
			    (uint64_t)(uintptr_t)&tj_unit_other + 1 };
	char buf[512];

	tj_stacks_init(&s);
	assert_true(tj_stacks_read_proc_maps(&s, pid) > 0);
	/* A re-read (capture does one each second) adds no line twice. */
	size_t n1 = s.nmaps;
	assert_true(tj_stacks_read_proc_maps(&s, pid) > 0);
	assert_int_equal(s.nmaps, n1);
	const struct tj_map *self = tj_stacks_map_of(&s, pid, ips[0]);
	assert_non_null(self);
	assert_true(self->build_id_len > 0); /* gcc/ld give every binary one here */
	assert_int_equal(tj_stacks_add(&s, 1, ips, 1, NULL, NULL, 0), 0);
	assert_int_equal(tj_stacks_add(&s, 2, ips + 1, 1, NULL, NULL, 0), 0);
	tj_stacks_sort(&s);
	const struct tj_stack *k1 = tj_stacks_find(&s, 1), *k2 = tj_stacks_find(&s, 2);
	struct tj_symbolizer *z = tj_symbolizer_new();
	tj_symbolize_frame(z, &s, pid, k1, 0, buf, sizeof(buf));
	assert_non_null(strstr(buf, "tj_unit_marker+0x1 ("));
	uint64_t a = tj_callsite_id(z, &s, pid, k1), b = tj_callsite_id(z, &s, pid, k2);
	tj_symbolizer_free(z);
	z = tj_symbolizer_new();
	assert_true(a != 0 && a != b);
	assert_true(tj_callsite_id(z, &s, pid, k1) == a); /* the same from scratch */
	tj_symbolizer_free(z);
	/* The maps of a process that is gone: none. */
	assert_int_equal(tj_stacks_read_proc_maps(&s, 0x7fffffff), -1);
	tj_stacks_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_symbolize_self),
	};
	if (!mkdtemp(dir))
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
