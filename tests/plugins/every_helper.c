/* A plugin that calls every helper of correlate/correlator.h, for
 * tests/unit/test_plugin_abi.c: it must load into a host that exports
 * none of tracejoin's symbols.  open() takes name=TEXT and ratio=NUMBER
 * and puts what it read in err->msg (code 0) so the test can see it. */
#include "correlate/correlator.h"

struct every {
	double ratio;
};

static int every_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	static const char *const known[] = { "name", "ratio", NULL };
	const char *name = tj_param_str(p, "name", "none");
	double ratio;
	int rc;

	if ((rc = tj_params_check(p, known, "every_helper", err)) < 0 ||
	    (rc = tj_param_double(p, "ratio", 0.5, &ratio, err)) < 0)
		return rc;
	if (ratio > 1)
		return tj_plugin_errf(err, TJ_E_ARG, "every_helper: ratio=%g is above 1", ratio);
	struct every *e = malloc(sizeof(*e));
	if (!e)
		return tj_plugin_errf(err, TJ_E_NOMEM, "every_helper: out of memory");
	e->ratio = ratio;
	tj_plugin_errf(err, TJ_OK, "name=%s ratio=%g", name, ratio);
	*st = e;
	return 0;
}

static int every_message(void *st, const struct tj_message *m, struct tj_edge_sink *out,
			 struct tj_err *err)
{
	return 0;
}

static int every_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	return 0;
}

static void every_close(void *st)
{
	free(st);
}

const struct tj_correlator tracejoin_correlator = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "every_helper",
	.description = "test: calls every helper of correlator.h",
	.params_help = "name=none  any text\nratio=0.5  a number, at most 1",
	.open = every_open,
	.message = every_message,
	.finish = every_finish,
	.close = every_close,
};
