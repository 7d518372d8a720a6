/* tj_stackrec_caller: which word of the user stack is the return address
 * into the function that called the syscall's function (a libc wrapper
 * without a frame).  Tested on this process's own memory: a noinline
 * function stands for the wrapper, __builtin_return_address gives the
 * real return address into its caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>
#include "../../capture/stackrec.h"

static uint64_t ret_wrapper, ret_other;

__attribute__((noinline)) static void fake_wrapper(void)
{
	ret_wrapper = (uint64_t)(uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void other_function(void)
{
	ret_other = (uint64_t)(uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void caller(void)
{
	other_function();
	__asm__ volatile("" ::: "memory");
	fake_wrapper();
	__asm__ volatile("" ::: "memory");
}

static uint64_t wrapper_ip(unsigned off)
{
	return (uint64_t)(uintptr_t)&fake_wrapper + off;
}

static void finds_the_wrappers_caller(void **state)
{
	static int data;
	struct tjc_caller c = { .ip = wrapper_ip(8) };
	(void)state;

	caller();
	assert_true(ret_wrapper != 0 && ret_other != 0);
	/* Data, a zero, a return address whose call goes elsewhere (another
	 * function, below or above the wrapper), then the one that goes to
	 * the wrapper: that one, the call to the nearest start below ip. */
	c.word[0] = (uint64_t)(uintptr_t)&data;
	c.word[1] = 0;
	c.word[2] = ret_other;
	c.word[3] = ret_wrapper;
	c.word[4] = ret_other;
	assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), &c), ret_wrapper);
	/* First in the window too. */
	c.word[0] = ret_wrapper;
	assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), &c), ret_wrapper);
}

static void refuses_what_does_not_lead_there(void **state)
{
	static int data;
	uint64_t w = wrapper_ip(0), o = (uint64_t)(uintptr_t)&other_function;
	struct tjc_caller c = { 0 };
	(void)state;

	caller();
	/* Data, small numbers, an unmapped address: no call before them. */
	c.ip = wrapper_ip(8);
	c.word[0] = (uint64_t)(uintptr_t)&data;
	c.word[1] = 1;
	c.word[2] = UINT64_MAX - 3;
	c.word[3] = 4096;
	assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), &c), 0);
	/* A call to a function that starts after ip is not the wrapper's. */
	c.word[4] = ret_other;
	c.ip = (o > w ? w : o) + 8;
	if (o > w)
		assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), &c), 0);
	/* ip below both functions, or far past them. */
	c.word[5] = ret_wrapper;
	c.ip = (o < w ? o : w) - 1;
	assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), &c), 0);
	c.ip = (o > w ? o : w) + (1 << 20);
	assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), &c), 0);
	/* Not taken (ip 0), none given, a process that does not exist. */
	c.ip = 0;
	assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), &c), 0);
	assert_int_equal(tj_stackrec_caller((uint32_t)getpid(), NULL), 0);
	c.ip = wrapper_ip(8);
	assert_int_equal(tj_stackrec_caller(0x7ffffffe, &c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(finds_the_wrappers_caller),
		cmocka_unit_test(refuses_what_does_not_lead_there),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
