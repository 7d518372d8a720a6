/* lib/util.h's allocation helpers: tj_alloc_big's alignment (64 bytes
 * below 2 MiB, 2 MiB from there: what huge pages need) and that all of
 * it can be written; sizes that cannot be met are refused, not wrapped;
 * tj_malloc_keep_freed leaves malloc working. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib/util.h"

static void test_alignment_and_use(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 100, 4096, (2u << 20) - 1, 2u << 20, (3u << 20) + 5 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = tj_alloc_big(sizes[i]);
		assert_non_null(p);
		uintptr_t align = sizes[i] >= (2u << 20) ? (2u << 20) : 64;
		assert_int_equal((uintptr_t)p % align, 0);
		memset(p, 0xa5, sizes[i]);
		assert_int_equal(p[sizes[i] - 1], 0xa5);
		free(p);
	}
}

static void test_impossible_size_refused(void **state)
{
	(void)state;
	assert_null(tj_alloc_big(SIZE_MAX));
	assert_null(tj_alloc_big(SIZE_MAX - (1u << 20)));
}

static void test_keep_freed_still_allocates(void **state)
{
	(void)state;
	tj_malloc_keep_freed();
	for (int round = 0; round < 4; round++) {
		char *p = malloc(1u << 20), *q = malloc(40u << 20);
		assert_non_null(p);
		assert_non_null(q);
		memset(p, round, 1u << 20);
		q[(40u << 20) - 1] = (char)round;
		free(p);
		free(q);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignment_and_use),
		cmocka_unit_test(test_impossible_size_refused),
		cmocka_unit_test(test_keep_freed_still_allocates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
