/* The built-in correlators.  Each is a table defined in its own file; the
 * ones referenced weakly may be absent from a build (or from a test binary
 * that does not pull their object), and are then simply not listed. */
#include <string.h>
#include "host.h"

extern const struct tj_correlator tj_correlator_metadata;
extern const struct tj_correlator tj_correlator_regression __attribute__((weak));
extern const struct tj_correlator tj_correlator_classifier __attribute__((weak));
extern const struct tj_correlator tj_correlator_order_logit __attribute__((weak));
extern const struct tj_correlator tj_correlator_order_align __attribute__((weak));
extern const struct tj_correlator tj_correlator_lookahead __attribute__((weak));
extern const struct tj_correlator tj_correlator_queue_select __attribute__((weak));
extern const struct tj_correlator tj_correlator_issue_fifo __attribute__((weak));
extern const struct tj_correlator tj_correlator_unit_fifo __attribute__((weak));
extern const struct tj_correlator tj_correlator_nest __attribute__((weak));
extern const struct tj_correlator tj_correlator_nest_em __attribute__((weak));

static const struct tj_correlator *const builtins[] = {
	&tj_correlator_metadata,
	&tj_correlator_regression,
	&tj_correlator_classifier,
	&tj_correlator_order_logit,
	&tj_correlator_order_align,
	&tj_correlator_lookahead,
	&tj_correlator_issue_fifo,
	&tj_correlator_queue_select,
	&tj_correlator_unit_fifo,
	&tj_correlator_nest,
	&tj_correlator_nest_em,
};

size_t tj_correlator_builtins(const struct tj_correlator **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(builtins) / sizeof(*builtins); i++) {
		if (!builtins[i])
			continue;
		if (n < max)
			out[n] = builtins[i];
		n++;
	}
	return n;
}

const struct tj_correlator *tj_correlator_builtin(const char *name)
{
	if (strcmp(name, "default") == 0) /* the benchmark's choice (host.h) */
		name = TJ_CORRELATOR_DEFAULT;
	for (size_t i = 0; i < sizeof(builtins) / sizeof(*builtins); i++)
		if (builtins[i] && strcmp(builtins[i]->name, name) == 0)
			return builtins[i];
	return NULL;
}
