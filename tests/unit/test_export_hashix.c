/* The streamed export's node:sock table (export/hashix.h): what is added
 * is found (every candidate of a shared hash), what is deleted is gone
 * and the rest still found after backward shifts, across growth, with
 * neighbouring ids sharing a home block. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "export/hashix.h"

/* Is idx among the candidates of h? */
static int has(const struct tj_hashix *t, uint32_t h, uint32_t idx)
{
	uint32_t i;
	for (size_t pos = 0; (i = tj_hashix_next(t, h, &pos)) != TJ_HASHIX_NONE;)
		if (i == idx)
			return 1;
	return 0;
}

static void test_empty(void **state)
{
	(void)state;
	struct tj_hashix t;
	tj_hashix_init(&t);
	size_t pos = 0;
	assert_int_equal(tj_hashix_next(&t, 5, &pos), TJ_HASHIX_NONE);
	assert_int_equal(tj_hashix_del(&t, 5, 1), 0);
	tj_hashix_free(&t);
}

/* Neighbouring ids share a home block; ids 8 apart do not (as a rule). */
static void test_hash_blocks(void **state)
{
	(void)state;
	uint32_t h0 = tj_hashix_sock(1, 800), h7 = tj_hashix_sock(1, 807);
	assert_int_equal(h0 & ~7u, h7 & ~7u);
	assert_int_equal(h0 & 7u, 0);
	assert_int_equal(h7 & 7u, 7);
	assert_int_not_equal(tj_hashix_sock(1, 800), tj_hashix_sock(2, 800));
}

/* Many sockets, several per hash, grown from empty; delete every third
 * and check each index is found exactly while it is held. */
static void test_add_del_grow(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct tj_hashix t;
	tj_hashix_init(&t);
	for (uint32_t i = 0; i < N; i++) /* i / 3: three sockets share a hash */
		assert_int_equal(tj_hashix_add(&t, tj_hashix_sock(1, i / 3), i), 0);
	assert_int_equal(t.len, N);
	assert_true(t.cap >= 2 * N);
	for (uint32_t i = 0; i < N; i++)
		assert_true(has(&t, tj_hashix_sock(1, i / 3), i));
	for (uint32_t i = 0; i < N; i += 3)
		assert_int_equal(tj_hashix_del(&t, tj_hashix_sock(1, i / 3), i), 1);
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(has(&t, tj_hashix_sock(1, i / 3), i), i % 3 != 0);
	/* deleting again, or under another hash, finds nothing */
	assert_int_equal(tj_hashix_del(&t, tj_hashix_sock(1, 0), 0), 0);
	assert_int_equal(tj_hashix_del(&t, tj_hashix_sock(2, 0), 1), 0);
	assert_int_equal(t.len, N - (N + 2) / 3);
	tj_hashix_free(&t);
}

/* Every entry under one hash: one long run, deleted from the middle. */
static void test_one_run(void **state)
{
	(void)state;
	struct tj_hashix t;
	tj_hashix_init(&t);
	assert_int_equal(tj_hashix_reserve(&t, 16), 0);
	uint32_t h = (uint32_t)t.cap - 2; /* the run wraps past the end */
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(tj_hashix_add(&t, h, i), 0);
	assert_int_equal(tj_hashix_del(&t, h, 4), 1);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(has(&t, h, i), i != 4);
	size_t pos = 0, n = 0;
	while (tj_hashix_next(&t, h, &pos) != TJ_HASHIX_NONE)
		n++;
	assert_int_equal(n, 9);
	/* after the run ended, next stays ended */
	assert_int_equal(tj_hashix_next(&t, h, &pos), TJ_HASHIX_NONE);
	tj_hashix_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_hash_blocks),
		cmocka_unit_test(test_add_del_grow),
		cmocka_unit_test(test_one_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
