/* The 0-or-1 param helper correlators share (correlate/correlator.h,
 * tj_param_flag): the default when absent, 0/1 taken in any number form,
 * anything else refused with a message naming the correlator, the key and
 * the value given. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "correlate/correlator.h"

static int flag(const char *v, int def, int *out, struct tj_err *err)
{
	struct tj_params p = { .n = 0 };
	if (v) {
		p.key[0] = "explain";
		p.val[0] = v;
		p.n = 1;
	}
	return tj_param_flag(&p, "explain", def, "algo-x", out, err);
}

static void test_taken(void **state)
{
	(void)state;
	struct tj_err err = { 0 };
	int out = -1;
	assert_int_equal(flag(NULL, 1, &out, &err), 0);
	assert_int_equal(out, 1);
	assert_int_equal(flag(NULL, 0, &out, &err), 0);
	assert_int_equal(out, 0);
	assert_int_equal(flag("1", 0, &out, &err), 0);
	assert_int_equal(out, 1);
	assert_int_equal(flag("1.0", 0, &out, &err), 0);
	assert_int_equal(out, 1);
	assert_int_equal(flag("0", 1, &out, &err), 0);
	assert_int_equal(out, 0);
}

static void test_refused(void **state)
{
	(void)state;
	struct tj_err err = { 0 };
	int out = 7;
	assert_int_equal(flag("2", 0, &out, &err), -TJ_E_ARG);
	assert_string_equal(err.msg, "algo-x: param explain=2: 0 or 1");
	assert_int_equal(flag("yes", 0, &out, &err), -TJ_E_ARG);
	assert_string_equal(err.msg, "algo-x: param explain=yes: not a number");
	assert_int_equal(flag("1x", 0, &out, &err), -TJ_E_ARG);
	assert_int_equal(flag("", 0, &out, &err), -TJ_E_ARG);
	assert_int_equal(flag("-1", 0, &out, NULL), -TJ_E_ARG); /* no err: still refused */
	assert_int_equal(out, 7); /* untouched when refused */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_taken),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
