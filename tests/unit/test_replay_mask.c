/* tj_payload_mask: trace-context header values become '*', nothing else
 * changes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "replay/replay.h"

static unsigned mask_str(char *s)
{
	return tj_payload_mask((uint8_t *)s, strlen(s));
}

static void test_every_known_header(void **state)
{
	static const char *const names[] = {
		"traceparent", "TraceState", "X-Request-ID", "x-b3-traceid",
		"X-B3-SpanId", "X-B3-Sampled", "b3", "uber-trace-id",
		"X-Amzn-Trace-Id", "X-Cloud-Trace-Context", "grpc-trace-bin",
		"uberctx-user", "baggage", "x-datadog-trace-id",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		char buf[256];
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n%s: secret42\r\nHost: h\r\n\r\n", names[i]);
		assert_int_equal(mask_str(buf), 1);
		assert_null(strstr(buf, "secret42"));
		assert_non_null(strstr(buf, "********"));
		assert_non_null(strstr(buf, "\r\nHost: h\r\n"));
		assert_non_null(strstr(buf, names[i])); /* the name stays */
	}
}

static void test_other_headers_untouched(void **state)
{
	char buf[] = "POST /traceparent HTTP/1.1\r\nX-Request-Idx: keep1\r\n"
		     "Content-Type: traceparent: keep2\r\nb3x: keep3\r\n\r\n"
		     "traceparent is a word in the body";
	char copy[sizeof(buf)];
	memcpy(copy, buf, sizeof(buf));
	assert_int_equal(mask_str(buf), 0);
	assert_memory_equal(buf, copy, sizeof(buf));
}

static void test_case_blanks_and_cut(void **state)
{
	/* blanks before the colon, LF-only lines, a value cut by the prefix */
	char buf[] = "GET / HTTP/1.0\nTRACEPARENT \t: 00-abc-def-01\nx-b3-parentspanid:12ab";
	assert_int_equal(mask_str(buf), 2);
	assert_string_equal(buf, "GET / HTTP/1.0\nTRACEPARENT \t: *************\nx-b3-parentspanid:****");
	/* a prefix that starts mid-stream with a header line */
	char mid[] = "tracestate: congo=t61rcWkgMzE\r\n";
	assert_int_equal(mask_str(mid), 1);
	assert_null(strstr(mid, "congo"));
}

static void test_empty_and_binary(void **state)
{
	assert_int_equal(tj_payload_mask(NULL, 0), 0);
	uint8_t bin[64];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)(i * 37);
	uint8_t copy[64];
	memcpy(copy, bin, sizeof(bin));
	assert_int_equal(tj_payload_mask(bin, sizeof(bin)), 0);
	assert_memory_equal(bin, copy, sizeof(bin));
	char name_only[] = "x\ntraceparent";
	assert_int_equal(mask_str(name_only), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_known_header),
		cmocka_unit_test(test_other_headers_untouched),
		cmocka_unit_test(test_case_blanks_and_cut),
		cmocka_unit_test(test_empty_and_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
