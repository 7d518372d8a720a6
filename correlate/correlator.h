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
 * built against this header alone: everything here a plugin may call is
 * inline, so it loads into any host, not only one that exports
 * tracejoin's symbols.
 *
 * Versions (SQLite's iVersion rule).  `abi` is the version of this
 * interface the plugin was built against.  A version only ever appends:
 * a new field (function or data) of struct tj_correlator, or of a struct
 * the host hands over (tj_message, tj_params, tj_dataset, tj_edge_sink),
 * or that the plugin hands back (tj_edge), goes at the end, marked with
 * the version that added it, and nothing above it moves or changes
 * meaning.  The host accepts a plugin of any version from
 * TJ_CORRELATOR_ABI_MIN to its own TJ_CORRELATOR_ABI, and reads a field of
 * the plugin's table (or of an edge it emits) only when the plugin's abi
 * is at least that field's version, so an old plugin keeps working.  It
 * refuses a newer plugin: that one may read fields this host does not
 * fill.  A plugin built for version N reads only fields of versions <= N.
 */
#ifndef TJ_CORRELATOR_H
#define TJ_CORRELATOR_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../lib/edges.h"
#include "../lib/error.h"
#include "../replay/replay.h"

/* Version 1: every field of every struct of the interface as of
 * tracejoin 0.x, tj_message's callsite included.
 * Version 2: tj_message's has_origin, origin_node, origin_sock (capture
 * --tag). */
#define TJ_CORRELATOR_ABI 2
#define TJ_CORRELATOR_ABI_MIN 1 /* the oldest version this host still loads */
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
	/* Valid for version 1 and up: everything above.  New fields go
	 * here, each marked with the version that added it. */
};

/* Fill err (if not NULL) and return -code, as tj_errf (lib/error.h) does,
 * without calling into the host: a plugin may run in a host that does
 * not export tracejoin's symbols. */
static inline int tj_plugin_errf(struct tj_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int tj_plugin_errf(struct tj_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

/* Param helpers, inline and calling nothing of the host's, so plugins
 * need no host symbols (tests/unit/test_plugin_abi.c proves it).  They return
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
		return tj_plugin_errf(err, TJ_E_ARG, "param %s=%s: not a number", key, s);
	return 0;
}

/* A 0-or-1 param (explain=1 and the like): def when absent; refused with
 * a message naming algo and the value given when it is anything else. */
static inline int tj_param_flag(const struct tj_params *p, const char *key, int def,
				const char *algo, int *out, struct tj_err *err)
{
	const char *s = tj_param_str(p, key, NULL);
	char *end;
	if (!s) {
		*out = def;
		return 0;
	}
	double v = strtod(s, &end);
	if (end == s || *end)
		return tj_plugin_errf(err, TJ_E_ARG, "%s: param %s=%s: not a number",
				      algo, key, s);
	if (v != 0 && v != 1)
		return tj_plugin_errf(err, TJ_E_ARG, "%s: param %s=%s: 0 or 1", algo, key, s);
	*out = v == 1;
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
			return tj_plugin_errf(err, TJ_E_ARG, "%s: unknown param '%s'",
				       algo, p->key[i]);
	}
	return 0;
}

#endif
