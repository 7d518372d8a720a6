/* The workloads' HTTP/1.1 subset (datasets/workloads/http.c): accepted
 * heads, refusals, and a deterministic storm of damaged heads that must
 * neither crash nor claim more bytes than it was given. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "datasets/workloads/http.c"

static void test_accepts(void **state)
{
	struct http_head h;
	char buf[HTTP_BUF];
	struct tj_traceparent tp = { 1, 2, 3, 1 };
	size_t n = http_format_request(buf, sizeof(buf), "auth", "10.0.0.1:80", &tp, 10, 1);
	assert_true(n > 0);
	assert_int_equal(http_parse(buf, n, 0, &h), 1);
	assert_int_equal(h.head_len + h.body_len, n);
	assert_int_equal(h.body_len, 10);
	assert_true(h.close);
	assert_true(h.has_tp);
	assert_int_equal(h.tp.span, 3);
	/* incomplete: need more, at every cut */
	for (size_t cut = 0; cut < h.head_len; cut++)
		assert_int_equal(http_parse(buf, cut, 0, &h), 0);
	n = http_format_response(buf, sizeof(buf), 200, 5, 0);
	assert_int_equal(http_parse(buf, n, 1, &h), 1);
	assert_int_equal(h.status, 200);
	assert_false(h.close);
	assert_false(h.has_tp);
	const char *lower = "GET / HTTP/1.0\r\ncontent-length:7\r\nCONNECTION: Close\r\n\r\n";
	assert_int_equal(http_parse(lower, strlen(lower), 0, &h), 1);
	assert_int_equal(h.body_len, 7);
	assert_true(h.close);
	/* a body too large to format is refused, not cut */
	assert_int_equal(http_format_response(buf, 100, 200, 200, 0), 0);
}

static void test_refusals(void **state)
{
	static const char *const bad_req[] = {
		"HELLO\r\n\r\n",
		"GET\r\n\r\n",
		"GET / FTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -4\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\rY: b\r\n\r\n",
	};
	struct http_head h;
	for (size_t i = 0; i < sizeof(bad_req) / sizeof(bad_req[0]); i++)
		if (http_parse(bad_req[i], strlen(bad_req[i]), 0, &h) != -1)
			fail_msg("accepted: %s", bad_req[i]);
	static const char *const bad_resp[] = {
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 99 Low\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad_resp) / sizeof(bad_resp[0]); i++)
		if (http_parse(bad_resp[i], strlen(bad_resp[i]), 1, &h) != -1)
			fail_msg("accepted: %s", bad_resp[i]);
	/* a head that never ends within the buffer */
	char *big = malloc(HTTP_BUF);
	assert_non_null(big);
	memset(big, 'a', HTTP_BUF);
	assert_int_equal(http_parse(big, HTTP_BUF, 0, &h), -1);
	free(big);
	struct sockaddr_in sa;
	assert_int_equal(parse_hostport("10.0.0.1:80", &sa), 0);
	assert_int_equal(parse_hostport("10.0.0.1", &sa), -1);
	assert_int_equal(parse_hostport("10.0.0.1:0", &sa), -1);
	assert_int_equal(parse_hostport("10.0.0.1:65536", &sa), -1);
	assert_int_equal(parse_hostport("host:80", &sa), -1);
	assert_int_equal(parse_hostport(":80", &sa), -1);
}

static void test_damaged_storm(void **state)
{
	char good[HTTP_BUF], buf[HTTP_BUF];
	struct tj_traceparent tp = { 7, 8, 9, 1 };
	size_t n = http_format_request(good, sizeof(good), "x", "h:1", &tp, 0, 0);
	uint64_t rng = 42;
	int parsed = 0;
	for (int round = 0; round < 20000; round++) {
		memcpy(buf, good, n);
		size_t len = n;
		int flips = 1 + (int)(rng_next(&rng) % 4);
		for (int f = 0; f < flips; f++) {
			uint64_t r = rng_next(&rng);
			size_t at = (size_t)(r % len);
			static const char alphabet[] = "\r\n: -0123456789abcdefGHTP/.x\t";
			buf[at] = alphabet[(r >> 20) % (sizeof(alphabet) - 1)];
		}
		if (rng_next(&rng) % 3 == 0)
			len = (size_t)(rng_next(&rng) % (len + 1));
		struct http_head h;
		int rc = http_parse(buf, len, (int)(round & 1), &h);
		assert_true(rc >= -1 && rc <= 1);
		if (rc == 1) {
			assert_true(h.head_len <= len);
			assert_true(h.body_len <= HTTP_BODY_MAX);
			parsed++;
		}
	}
	assert_true(parsed > 0); /* some damage is harmless (a byte of a value) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_damaged_storm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
