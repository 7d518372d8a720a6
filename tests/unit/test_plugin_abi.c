/* The plugin interface is self-contained: plugins built against
 * correlate/correlator.h alone load with dlopen() into a program that
 * exports none of tracejoin's symbols (this one: linked without
 * -rdynamic), and every helper of the header works there. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "correlate/correlator.h"
#include "test_util.h"

/* dlopen the plugin as a foreign host would: every symbol resolved now,
 * none of its symbols offered to others. */
static const struct tj_correlator *load(const char *name, void **dl)
{
	*dl = dlopen(test_plugin_path(name), RTLD_NOW | RTLD_LOCAL);
	if (!*dl)
		fail_msg("dlopen %s: %s", name, dlerror());
	const struct tj_correlator *c = dlsym(*dl, TJ_CORRELATOR_SYMBOL);
	assert_non_null(c);
	assert_true(c->abi >= TJ_CORRELATOR_ABI_MIN && c->abi <= TJ_CORRELATOR_ABI);
	return c;
}

/* Open with the given key=value params; returns open()'s result, err
 * holds its message. */
static int open_with(const struct tj_correlator *c, struct tj_err *err, size_t n, ...)
{
	struct tj_params p = { .n = n };
	va_list ap;
	void *st = NULL;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		p.key[i] = va_arg(ap, const char *);
		p.val[i] = va_arg(ap, const char *);
	}
	va_end(ap);
	memset(err, 0, sizeof(*err));
	int rc = c->open(&st, &p, err);
	if (rc == 0)
		c->close(st);
	else
		assert_null(st);
	return rc;
}

/* Without this the test would prove nothing: a host exporting tj_errf
 * would load a plugin that calls it. */
static void test_host_exports_nothing(void **state)
{
	assert_null(dlsym(RTLD_DEFAULT, "tj_errf"));
	assert_null(dlsym(RTLD_DEFAULT, "tj_correlator_load"));
}

static void test_every_helper(void **state)
{
	void *dl;
	const struct tj_correlator *c = load("test/every_helper.so", &dl);
	struct tj_err err;

	assert_string_equal(c->name, "every_helper");
	assert_int_equal(open_with(c, &err, 0), 0);
	assert_string_equal(err.msg, "name=none ratio=0.5");
	assert_int_equal(open_with(c, &err, 2, "name", "x", "ratio", "0.25"), 0);
	assert_string_equal(err.msg, "name=x ratio=0.25");

	assert_int_equal(open_with(c, &err, 1, "colour", "blue"), -TJ_E_ARG);
	assert_int_equal(err.code, TJ_E_ARG);
	assert_string_equal(err.msg, "every_helper: unknown param 'colour'");
	assert_int_equal(open_with(c, &err, 1, "ratio", "abc"), -TJ_E_ARG);
	assert_string_equal(err.msg, "param ratio=abc: not a number");
	assert_int_equal(open_with(c, &err, 1, "ratio", "0.5x"), -TJ_E_ARG);
	assert_string_equal(err.msg, "param ratio=0.5x: not a number");
	assert_int_equal(open_with(c, &err, 1, "ratio", "2"), -TJ_E_ARG);
	assert_string_equal(err.msg, "every_helper: ratio=2 is above 1");
	dlclose(dl);
}

/* The shipped plugins use the helpers too, no copies of their own. */
static void test_shipped_plugins(void **state)
{
	void *dl;
	const struct tj_correlator *c = load("naive_recent.so", &dl);
	struct tj_err err;

	assert_int_equal(open_with(c, &err, 0), 0);
	assert_int_equal(open_with(c, &err, 1, "k", "v"), -TJ_E_ARG);
	assert_string_equal(err.msg, "naive_recent: takes no params");
	dlclose(dl);

	c = load("peek_headers.so", &dl);
	assert_int_equal(open_with(c, &err, 1, "expect_payloads", "3"), 0);
	assert_int_equal(open_with(c, &err, 1, "expect", "3"), -TJ_E_ARG);
	assert_string_equal(err.msg, "peek_headers: unknown param 'expect'");
	assert_int_equal(open_with(c, &err, 1, "expect_payloads", "many"), -TJ_E_ARG);
	assert_string_equal(err.msg, "param expect_payloads=many: not a number");
	dlclose(dl);
}

/* The header's error helper alone: NULL err, and truncation. */
static void test_plugin_errf(void **state)
{
	struct tj_err err;
	char longer[TJ_ERRMSG_MAX * 2];

	assert_int_equal(tj_plugin_errf(NULL, TJ_E_IO, "x"), -TJ_E_IO);
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	assert_int_equal(tj_plugin_errf(&err, TJ_E_LIMIT, "%s", longer), -TJ_E_LIMIT);
	assert_int_equal(err.code, TJ_E_LIMIT);
	assert_int_equal(strlen(err.msg), TJ_ERRMSG_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_exports_nothing),
		cmocka_unit_test(test_every_helper),
		cmocka_unit_test(test_shipped_plugins),
		cmocka_unit_test(test_plugin_errf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
