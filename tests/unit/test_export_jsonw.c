/* The exporters' JSON writer: strings escaped so that any byte of a host
 * name stays valid JSON, numbers and ids written exactly, a failed write
 * reported with the file's name; and span/trace ids are deterministic,
 * never zero, and differ between keys. */
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
		cmocka_unit_test(test_longer_than_buffer),
		cmocka_unit_test(test_failed_write_named),
		cmocka_unit_test(test_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
