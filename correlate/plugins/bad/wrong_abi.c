/* A broken plugin for the loader's tests: built for an abi this host
 * does not speak, so it must be refused before any of it runs. */
#include "correlate/correlator.h"

static int nop_open(void **st, const struct tj_params *p, struct tj_err *e) { *st = NULL; return 0; }
static int nop_message(void *st, const struct tj_message *m, struct tj_edge_sink *o, struct tj_err *e) { return 0; }
static int nop_finish(void *st, struct tj_edge_sink *o, struct tj_err *e) { return 0; }
static void nop_close(void *st) { }

const struct tj_correlator tracejoin_correlator = {
	42, "wrong_abi", "from a future tracejoin", NULL,
	nop_open, NULL, nop_message, nop_finish, nop_close,
};
