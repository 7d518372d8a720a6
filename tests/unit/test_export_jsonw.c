/* The exporters' JSON writer: strings escaped so that any byte of a host
 * name stays valid JSON, numbers and ids written exactly, a failed write
 * reported with the file's name; and span/trace ids are deterministic,
 * never zero, and differ between keys. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "export/export.h"
#include "lib/event.h"

/* Run fn on a writer over a memory stream; return what it wrote. */
static char *written(void (*fn)(struct jw *w))
{
	static char buf[1 << 20];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	struct jw w;
	struct tj_err err = { 0 };
	assert_non_null(f);
	assert_int_equal(jw_open(&w, f), 0);
	fn(&w);
	assert_int_equal(jw_close(&w, "mem", &err), 0);
	fclose(f);
	return buf;
}

static void write_strings(struct jw *w)
{
	jw_raw(w, "[");
	jw_str(w, "plain");
	jw_raw(w, ",");
	jw_str(w, "q\"b\\s/\n\t\x01\x1f\x7f");
	jw_raw(w, ",");
	jw_str(w, "caf\xc3\xa9");
	jw_raw(w, ",");
	jw_str(w, "");
	jw_raw(w, "]");
}

static void test_strings_escaped(void **state)
{
	const char *out = written(write_strings);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j)
		fail_msg("not JSON: %s: %s", out, je.text);
	assert_string_equal(json_string_value(json_array_get(j, 0)), "plain");
	assert_string_equal(json_string_value(json_array_get(j, 1)), "q\"b\\s/\n\t\x01\x1f\x7f");
	assert_string_equal(json_string_value(json_array_get(j, 2)), "caf\xc3\xa9");
	assert_string_equal(json_string_value(json_array_get(j, 3)), "");
	json_decref(j);
}

static void write_numbers(struct jw *w)
{
	static const uint8_t id[4] = { 0x00, 0x0a, 0xbc, 0xff };
	jw_u64(w, 0);
	jw_raw(w, " ");
	jw_u64(w, UINT64_MAX);
	jw_raw(w, " ");
	jw_i64(w, INT64_MIN);
	jw_raw(w, " ");
	jw_qu64(w, 1767225600001374123ull);
	jw_raw(w, " ");
	jw_hex(w, id, 4);
	jw_raw(w, " ");
	jw_us3(w, 1234567);
	jw_raw(w, " ");
	jw_us3(w, 5);
	jw_raw(w, " ");
	jw_double(w, 1.0);
	jw_raw(w, " ");
	jw_double(w, 0.25);
	jw_raw(w, " ");
	jw_double(w, 0.0 / 0.0);
}

static void test_numbers_exact(void **state)
{
	assert_string_equal(written(write_numbers),
			    "0 18446744073709551615 -9223372036854775808 "
			    "\"1767225600001374123\" \"000abcff\" 1234.567 0.005 1 0.25 0");
}

/* The hand-written digits against printf's, at every length and both
 * sides of each power of ten, and 20 000 values of every magnitude. */
static void test_u64_as_printf(void **state)
{
	static char buf[1 << 20];
	char want[64];
	uint64_t v[2 * 20 + 20000];
	size_t n = 0;
	uint64_t p = 1;
	for (int d = 0; d < 20; d++, p *= 10) {
		v[n++] = p;
		v[n++] = p - 1;
	}
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		v[n++] = x >> (i % 64);
	}
	for (size_t i = 0; i < n; i++) {
		FILE *f = fmemopen(buf, sizeof(buf), "w");
		struct jw w;
		struct tj_err err = { 0 };
		assert_int_equal(jw_open(&w, f), 0);
		jw_u64(&w, v[i]);
		jw_raw(&w, " ");
		jw_qu64(&w, v[i]);
		assert_int_equal(jw_close(&w, "mem", &err), 0);
		fclose(f);
		snprintf(want, sizeof(want), "%" PRIu64 " \"%" PRIu64 "\"", v[i], v[i]);
		assert_string_equal(buf, want);
	}
}

/* IPv4 addresses are formatted by hand, as inet_ntop would. */
static void test_ipv4_as_inet_ntop(void **state)
{
	uint8_t a[16] = { 0 };
	char got[TJ_ADDR_STRLEN], want[TJ_ADDR_STRLEN];
	static const uint8_t edge[] = { 0, 1, 9, 10, 99, 100, 199, 200, 255 };
	for (size_t i = 0; i < sizeof(edge); i++)
		for (size_t j = 0; j < sizeof(edge); j++) {
			a[0] = edge[i], a[1] = edge[j], a[2] = edge[(i + j) % 9], a[3] = edge[(i * j) % 9];
			tj_addr_format(AF_INET, a, got);
			assert_non_null(inet_ntop(AF_INET, a, want, sizeof(want)));
			assert_string_equal(got, want);
		}
	tj_addr_format(0, a, got);
	assert_string_equal(got, "");
}

static void write_plain_and_long_escapes(struct jw *w)
{
	jw_plain(w, "1:2:out:3");
	/* a string longer than the buffer, escapes across its boundaries */
	static char big[3 * JW_BUF];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = i % 7 == 0 ? '"' : i % 11 == 0 ? '\n' : 'a' + (char)(i % 26);
	jw_str(w, big);
}

static void test_plain_and_long_escapes(void **state)
{
	const char *out = written(write_plain_and_long_escapes);
	assert_memory_equal(out, "\"1:2:out:3\"", 11);
	json_error_t je;
	json_t *j = json_loads(out + 11, JSON_DECODE_ANY, &je);
	if (!j)
		fail_msg("not JSON: %s", je.text);
	const char *s = json_string_value(j);
	assert_non_null(s);
	assert_int_equal(strlen(s), 3 * JW_BUF - 1);
	for (size_t i = 0; i < 3 * JW_BUF - 1; i++)
		if (s[i] != (i % 7 == 0 ? '"' : i % 11 == 0 ? '\n' : 'a' + (char)(i % 26)))
			fail_msg("byte %zu", i);
	json_decref(j);
}

static void write_long(struct jw *w)
{
	/* more than the writer's buffer, in pieces of every size */
	for (int i = 0; i < 20000; i++)
		jw_str(w, "0123456789abcdef0123456789");
}

static void test_longer_than_buffer(void **state)
{
	const char *out = written(write_long);
	assert_int_equal(strlen(out), 20000u * 28);
	assert_memory_equal(out + 28 * 19999, "\"0123456789abcdef0123456789\"", 28);
}

static void test_failed_write_named(void **state)
{
	FILE *f = fopen("/dev/full", "w");
	struct jw w;
	struct tj_err err = { 0 };
	if (!f)
		skip();
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(jw_open(&w, f), 0);
	for (int i = 0; i < 10000; i++)
		jw_str(&w, "fill the buffer");
	assert_int_equal(jw_close(&w, "out.json", &err), -TJ_E_IO);
	assert_non_null(strstr(err.msg, "out.json: No space left on device"));
	fclose(f);
}

static void test_ids(void **state)
{
	struct tj_msgkey a = { .node = 1, .sock = 40127, .dir = TJ_DIR_IN, .offset = 0 };
	struct tj_msgkey b = a;
	b.offset = 512;
	uint8_t x[8], y[8], z[8], t1[16], t2[16];
	static const uint8_t zero[16];
	tj_xspan_id(&a, x);
	tj_xspan_id(&a, y);
	tj_xspan_id(&b, z);
	assert_memory_equal(x, y, 8);
	assert_memory_not_equal(x, z, 8);
	assert_memory_not_equal(x, zero, 8);
	tj_xtrace_id(&a, t1);
	tj_xtrace_id(&b, t2);
	assert_memory_not_equal(t1, t2, 16);
	assert_memory_not_equal(t1, zero, 16);
	assert_memory_not_equal(t1, x, 8); /* a root's span id is not its trace id's half */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings_escaped),
		cmocka_unit_test(test_numbers_exact),
		cmocka_unit_test(test_u64_as_printf),
		cmocka_unit_test(test_ipv4_as_inet_ntop),
		cmocka_unit_test(test_plain_and_long_escapes),
		cmocka_unit_test(test_longer_than_buffer),
		cmocka_unit_test(test_failed_write_named),
		cmocka_unit_test(test_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
