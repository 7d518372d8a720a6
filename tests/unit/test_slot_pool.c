/* capture/slot_pool.c: slots numbered from 0 in chunks that never move,
 * whatever the pool grows to; sizes rounded to a power of two; every
 * slot of a new chunk writable at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../../capture/slot_pool.h"

static void slots_never_move_as_the_pool_grows(void **state)
{
	struct tj_slot_pool p;
	void *first, *last_of_first;
	size_t per;

	(void)state;
	tj_slot_pool_init(&p, 128);
	assert_int_equal(tj_slot_pool_cap(&p), 0);
	per = tj_slot_pool_grow(&p);
	assert_int_equal(per, TJ_SLOT_CHUNK_BYTES / 128);
	assert_int_equal(tj_slot_pool_cap(&p), per);
	first = tj_slot_pool_at(&p, 0);
	last_of_first = tj_slot_pool_at(&p, (uint32_t)per - 1);
	assert_ptr_equal((uint8_t *)last_of_first, (uint8_t *)first + (per - 1) * 128);
	memset(first, 0xab, 128);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tj_slot_pool_grow(&p), per);
	assert_int_equal(tj_slot_pool_cap(&p), 6 * per);
	/* Earlier slots stay where they were, with what they held. */
	assert_ptr_equal(tj_slot_pool_at(&p, 0), first);
	assert_int_equal(((uint8_t *)first)[127], 0xab);
	/* Each slot its own bytes: write every slot's first and last byte. */
	for (uint32_t i = 0; i < 6 * per; i++) {
		uint8_t *s = tj_slot_pool_at(&p, i);
		s[0] = (uint8_t)i;
		s[127] = (uint8_t)(i >> 8);
	}
	for (uint32_t i = 0; i < 6 * per; i++) {
		uint8_t *s = tj_slot_pool_at(&p, i);
		assert_int_equal(s[0], (uint8_t)i);
		assert_int_equal(s[127], (uint8_t)(i >> 8));
	}
	tj_slot_pool_free(&p);
	assert_int_equal(tj_slot_pool_cap(&p), 0);
	tj_slot_pool_free(&p); /* twice: nothing left to free */
}

static void sizes_are_rounded_up_to_a_power_of_two(void **state)
{
	struct tj_slot_pool p;

	(void)state;
	tj_slot_pool_init(&p, 100);
	assert_int_equal(p.size, 128);
	assert_int_equal(tj_slot_pool_grow(&p), TJ_SLOT_CHUNK_BYTES / 128);
	assert_ptr_equal(tj_slot_pool_at(&p, 1), (uint8_t *)tj_slot_pool_at(&p, 0) + 128);
	tj_slot_pool_free(&p);
	tj_slot_pool_init(&p, 1);
	assert_int_equal(p.size, 1);
	assert_int_equal(tj_slot_pool_grow(&p), TJ_SLOT_CHUNK_BYTES);
	tj_slot_pool_free(&p);
	/* A slot as large as a chunk: one per chunk. */
	tj_slot_pool_init(&p, TJ_SLOT_CHUNK_BYTES);
	assert_int_equal(tj_slot_pool_grow(&p), 1);
	assert_int_equal(tj_slot_pool_grow(&p), 1);
	assert_ptr_not_equal(tj_slot_pool_at(&p, 0), tj_slot_pool_at(&p, 1));
	tj_slot_pool_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(slots_never_move_as_the_pool_grows),
		cmocka_unit_test(sizes_are_rounded_up_to_a_power_of_two),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
