/* The correlator interface: a table of functions, the same for built-in
 * correlators and for plugins loaded with dlopen().
 *
 * A correlator reads messages (replay/replay.h), in the order the replay
 * promises, and answers, for every client-side request ("call"), which
 * server-side request on the same node caused it, or none.  It emits that
 * answer as edges (lib/edges.h): child = the call's key, parent = the
 * request's key.  Joining a call on node A to the request it becomes on
 * node B is not the correlator's job: it is deterministic (addresses and
 * offsets) and done by replay/join.h.
 *
 * Rules: no global state (several instances may run at once); memory
 * bounded by in-flight state, not by log size (emit edges as soon as they
 * are decided); never read labels, manifests or anything outside the
 * messages given.
 *
 * A plugin is a shared object exporting
 *     const struct tj_correlator tracejoin_correlator = { TJ_CORRELATOR_ABI, ... };
 * The host refuses one whose symbol is missing or whose abi differs.
 */
#ifndef TJ_CORRELATOR_H
#define TJ_CORRELATOR_H

#include <stdlib.h>
#include <string.h>
#include "../lib/edges.h"
#include "../lib/error.h"
#include "../replay/replay.h"

#define TJ_CORRELATOR_ABI 1
#define TJ_CORRELATOR_SYMBOL "tracejoin_correlator"

/* --param k=v pairs, in command-line order. */
#define TJ_PARAMS_MAX 32
struct tj_params {
	size_t n;
	const char *key[TJ_PARAMS_MAX];
	const char *val[TJ_PARAMS_MAX];
};

/* Where edges go.  emit() returns 0 or a negative error. */
struct tj_edge_sink {
	int (*emit)(struct tj_edge_sink *sink, const struct tj_edge *e);
	void *ctx;
};

/* A labeled dataset, for correlators that train. */
struct tj_dataset {
	const char *dir;
	char **logs;      /* node-*.evlog paths */
	size_t nlogs;
	const char *labels; /* labels.csv path */
};

struct tj_correlator {
	unsigned abi;             /* TJ_CORRELATOR_ABI */
	const char *name;         /* "metadata", ... */
	const char *description;  /* one line, for `correlate --list` */
	const char *params_help;  /* "name=default  meaning" lines, or NULL */

	/* Make a new instance.  Unknown or malformed params are refused with
	 * a message in err naming the param.  Returns 0 or negative. */
	int (*open)(void **st, const struct tj_params *p, struct tj_err *err);
	/* Learn from a labeled dataset before any message; NULL if the
	 * correlator does not train. */
	int (*train)(void *st, const struct tj_dataset *labeled, struct tj_err *err);
	/* One message, in replay order.  May emit edges for calls it has
	 * decided. */
	int (*message)(void *st, const struct tj_message *m,
		       struct tj_edge_sink *out, struct tj_err *err);
	/* End of input: emit every edge not emitted yet. */
	int (*finish)(void *st, struct tj_edge_sink *out, struct tj_err *err);
	void (*close)(void *st);
};

/* Param helpers, inline so plugins need no host symbols.  They return
 * def when the key is absent, and -1 from the _ok variants' status when
 * the value does not parse. */
static inline const char *tj_param_str(const struct tj_params *p,
				       const char *key, const char *def)
{
	for (size_t i = 0; p && i < p->n; i++)
		if (strcmp(p->key[i], key) == 0)
			return p->val[i];
	return def;
}

static inline int tj_param_double(const struct tj_params *p, const char *key,
				  double def, double *out, struct tj_err *err)
{
	const char *s = tj_param_str(p, key, NULL);
	char *end;
	if (!s) {
		*out = def;
		return 0;
	}
	*out = strtod(s, &end);
	if (end == s || *end)
		return tj_errf(err, TJ_E_ARG, "param %s=%s: not a number", key, s);
	return 0;
}

/* Refuse any param whose key is not in the NULL-terminated list known. */
static inline int tj_params_check(const struct tj_params *p,
				  const char *const *known, const char *algo,
				  struct tj_err *err)
{
	for (size_t i = 0; p && i < p->n; i++) {
		size_t j = 0;
		while (known && known[j] && strcmp(known[j], p->key[i]))
			j++;
		if (!known || !known[j])
			return tj_errf(err, TJ_E_ARG, "%s: unknown param '%s'",
				       algo, p->key[i]);
	}
	return 0;
}

#endif
