/* naive_recent: the baseline every correlator must beat.  A call's parent
 * is the most recent inbound request its process began reading before the
 * call, whatever thread or socket: right on a quiet server, wrong as soon
 * as requests overlap.  Also the example of a plugin: built against
 * correlator.h alone, no host symbols, no global state.
 *
 *   cc -shared -fPIC -I. -o naive_recent.so correlate/plugins/naive_recent.c
 *   tracejoin correlate --algo ./naive_recent.so DATASET_DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "correlate/correlator.h"

/* The latest request per (node, pid), in a small open-addressed table. */
struct last {
	uint64_t id; /* node << 32 | pid, 0 = empty slot (pid 0 is never used) */
	struct tj_msgkey key;
	uint64_t ts_first;
};

struct naive {
	struct last *tab;
	size_t cap, len;
};

static int naive_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	if (p && p->n)
		return tj_plugin_errf(err, TJ_E_ARG, "naive_recent: takes no params");
	struct naive *n = calloc(1, sizeof(*n));
	if (!n || !(n->tab = calloc(n->cap = 64, sizeof(*n->tab)))) {
		free(n);
		return tj_plugin_errf(err, TJ_E_NOMEM, "naive_recent: out of memory");
	}
	*st = n;
	return 0;
}

static struct last *slot(struct last *tab, size_t cap, uint64_t id)
{
	size_t i = (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
	while (tab[i].id && tab[i].id != id)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static int grow(struct naive *n)
{
	size_t cap = n->cap * 2;
	struct last *t = calloc(cap, sizeof(*t));
	if (!t)
		return -1;
	for (size_t i = 0; i < n->cap; i++)
		if (n->tab[i].id)
			*slot(t, cap, n->tab[i].id) = n->tab[i];
	free(n->tab);
	n->tab = t;
	n->cap = cap;
	return 0;
}

static int naive_message(void *st, const struct tj_message *m,
			 struct tj_edge_sink *out, struct tj_err *err)
{
	struct naive *n = st;
	if (!m->is_request || m->pid == 0)
		return 0;
	uint64_t id = (uint64_t)m->key.node << 32 | m->pid;
	if (m->role == TJ_ROLE_SERVER) {
		if ((n->len + 1) * 2 > n->cap && grow(n) < 0)
			return tj_plugin_errf(err, TJ_E_NOMEM, "naive_recent: out of memory");
		struct last *l = slot(n->tab, n->cap, id);
		if (!l->id)
			n->len++;
		l->id = id;
		l->key = m->key;
		l->ts_first = m->ts_first;
		return 0;
	}
	struct tj_edge e = { .child = m->key, .score = 0.5 };
	struct last *l = slot(n->tab, n->cap, id);
	if (l->id && l->ts_first < m->ts_first) {
		e.has_parent = 1;
		e.parent = l->key;
	}
	int rc = out->emit(out, &e);
	return rc < 0 ? tj_plugin_errf(err, -rc, "naive_recent: the edge sink failed") : 0;
}

static int naive_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	return 0;
}

static void naive_close(void *st)
{
	struct naive *n = st;
	if (n)
		free(n->tab);
	free(n);
}

const struct tj_correlator tracejoin_correlator = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "naive_recent",
	.description = "baseline: the most recent inbound request of the call's process",
	.params_help = NULL,
	.open = naive_open,
	.train = NULL,
	.message = naive_message,
	.finish = naive_finish,
	.close = naive_close,
};
