/* The correlator host (host.h): plugin loading, the run loop with its
 * checks, and the edge sinks. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "host.h"
#include "plugin_trust.h"

/* ---- loading ---- */

static int is_plugin_name(const char *s)
{
	size_t n = strlen(s);
	return strchr(s, '/') || (n > 3 && strcmp(s + n - 3, ".so") == 0);
}

int tj_correlator_load(const char *name, unsigned flags,
		       const struct tj_correlator **cp, void **dlhandle,
		       struct tj_err *err)
{
	*cp = NULL;
	*dlhandle = NULL;
	if (!is_plugin_name(name)) {
		const struct tj_correlator *c = tj_correlator_builtin(name);
		if (c) {
			*cp = c;
			return 0;
		}
		const struct tj_correlator *all[16];
		size_t n = tj_correlator_builtins(all, 16);
		char list[256] = "";
		for (size_t i = 0; i < n && i < 16; i++) {
			strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
			strncat(list, all[i]->name, sizeof(list) - strlen(list) - 1);
		}
		return tj_errf(err, TJ_E_ARG,
			       "no correlator '%s' (built in: %s; a plugin is a path to a .so)",
			       name, list);
	}
	/* dlopen() looks a bare "x.so" up in the library path; a user who
	 * typed it means the file here. */
	char *path = NULL;
	if (!strchr(name, '/')) {
		path = malloc(strlen(name) + 3);
		if (!path)
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
		strcpy(path, "./");
		strcat(path, name);
	}
	/* checked before dlopen() runs a line of it, and loaded through
	 * the checked fd, so the file cannot be swapped in between */
	int fd = tj_plugin_open_checked(path ? path : name, flags & TJ_LOAD_TRUST, err);
	free(path);
	if (fd < 0)
		return fd;
	char fdpath[32];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	void *h = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
	close(fd);
	if (!h)
		return tj_errf(err, TJ_E_ARG, "%s: cannot load the plugin: %s", name, dlerror());
	const struct tj_correlator *c = dlsym(h, TJ_CORRELATOR_SYMBOL);
	const char *why = NULL;
	char buf[160];
	if (!c) {
		why = "not a tracejoin plugin: it exports no symbol '" TJ_CORRELATOR_SYMBOL "'";
	} else if (c->abi < TJ_CORRELATOR_ABI_MIN || c->abi > TJ_CORRELATOR_ABI) {
		/* Older versions load (correlator.h: fields only appended);
		 * a newer one may read fields this host does not fill. */
		snprintf(buf, sizeof(buf),
			 "plugin built for correlator abi %u, this tracejoin speaks abi %u to %u: rebuild it",
			 c->abi, TJ_CORRELATOR_ABI_MIN, TJ_CORRELATOR_ABI);
		why = buf;
	} else if (!c->name || !*c->name) {
		why = "plugin table has no name";
	} else if (!c->open || !c->message || !c->finish || !c->close) {
		snprintf(buf, sizeof(buf), "plugin '%.40s' leaves %s unset", c->name,
			 !c->open ? "open()" : !c->message ? "message()" :
			 !c->finish ? "finish()" : "close()");
		why = buf;
	}
	if (why) {
		int rc = tj_errf(err, TJ_E_ARG, "%s: %s", name, why);
		dlclose(h);
		return rc;
	}
	*cp = c;
	*dlhandle = h;
	return 0;
}

void tj_correlator_unload(void *dlhandle)
{
	if (dlhandle)
		dlclose(dlhandle);
}

/* ---- a set of message keys: calls awaiting an answer ---- */

enum { K_EMPTY = 0, K_PENDING = 1, K_ANSWERED = 2 };

struct keyset {
	struct tj_msgkey *keys;
	uint8_t *state;
	size_t cap, len;
};

static size_t ks_slot(const struct keyset *s, const struct tj_msgkey *k)
{
	return (size_t)tj_msgkey_hash(k) & (s->cap - 1);
}

static size_t ks_find(const struct keyset *s, const struct tj_msgkey *k)
{
	if (!s->cap)
		return SIZE_MAX;
	for (size_t i = ks_slot(s, k);; i = (i + 1) & (s->cap - 1)) {
		if (s->state[i] == K_EMPTY)
			return SIZE_MAX;
		if (tj_msgkey_eq(&s->keys[i], k))
			return i;
	}
}

static int ks_put(struct keyset *s, const struct tj_msgkey *k, uint8_t state);

static int ks_grow(struct keyset *s)
{
	struct keyset b = { 0 };
	b.cap = s->cap ? 2 * s->cap : 1024;
	b.keys = malloc(b.cap * sizeof(*b.keys));
	b.state = calloc(b.cap, 1);
	if (!b.keys || !b.state) {
		free(b.keys);
		free(b.state);
		return -1;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->state[i])
			ks_put(&b, &s->keys[i], s->state[i]);
	free(s->keys);
	free(s->state);
	*s = b;
	return 0;
}

static int ks_put(struct keyset *s, const struct tj_msgkey *k, uint8_t state)
{
	if ((s->len + 1) * 4 > s->cap * 3 && ks_grow(s) < 0)
		return -1;
	size_t i = ks_slot(s, k);
	while (s->state[i] != K_EMPTY) {
		if (tj_msgkey_eq(&s->keys[i], k)) {
			s->state[i] = state;
			return 0;
		}
		i = (i + 1) & (s->cap - 1);
	}
	s->keys[i] = *k;
	s->state[i] = state;
	s->len++;
	return 0;
}

/* Deletion by backward shift: no tombstones over a long replay. */
static void ks_del_at(struct keyset *s, size_t i)
{
	size_t j = i;
	for (;;) {
		j = (j + 1) & (s->cap - 1);
		if (s->state[j] == K_EMPTY)
			break;
		size_t home = ks_slot(s, &s->keys[j]);
		/* can j's entry move to i?  Only if home is not in (i, j] */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			s->keys[i] = s->keys[j];
			s->state[i] = s->state[j];
			i = j;
		}
	}
	s->state[i] = K_EMPTY;
	s->len--;
}

/* Calls answered lately are remembered (a ring of keys) so a second edge
 * for one is named as such; older ones are forgotten to bound memory. */
#define ANSWERED_RING 65536

struct run {
	const struct tj_correlator *c;
	void *st;
	struct tj_edge_sink check;   /* what the correlator writes to */
	struct tj_edge_sink *out;
	struct keyset calls;         /* calls shown, not answered */
	struct tj_msgkey cur;        /* the call being shown now: most */
	int cur_open;                /* correlators answer it at once */
	struct tj_msgkey *ring;
	size_t ring_next, ring_n;
	struct tj_correlate_stats *stats;
	struct tj_err fault;         /* a broken rule or a failed sink */
	struct tj_err *err;
};

static int forward(struct run *r, const struct tj_edge *e)
{
	int rc = r->out->emit(r->out, e);
	if (rc < 0)
		return tj_errf(&r->fault, -rc, "writing the edges failed");
	r->stats->edges++;
	return 0;
}

static int check_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct run *r = sink->ctx;
	char child[TJ_MSGKEY_STRLEN], parent[TJ_MSGKEY_STRLEN];
	const char *name = r->c->name;
	if (r->fault.code)
		return -r->fault.code;
	int is_cur = r->cur_open && tj_msgkey_eq(&e->child, &r->cur);
	size_t i = is_cur ? 0 : ks_find(&r->calls, &e->child);
	if ((!is_cur && i == SIZE_MAX) || (e->has_parent && (e->parent.node != e->child.node ||
						e->parent.dir != TJ_DIR_IN)) ||
	    !(e->score >= 0.0 && e->score <= 1.0))
		tj_msgkey_format(&e->child, child); /* only to name it in an error */
	if (!is_cur && i == SIZE_MAX) {
		for (size_t k = 0; k < r->ring_n; k++)
			if (tj_msgkey_eq(&r->ring[k], &e->child))
				return tj_errf(&r->fault, TJ_E_ARG,
					       "correlator '%s' emitted a second edge for call %s",
					       name, child);
		return tj_errf(&r->fault, TJ_E_ARG,
			       "correlator '%s' emitted an edge for %s, which is not a call "
			       "it was shown (or one it answered long ago)", name, child);
	}
	if (e->has_parent && (e->parent.node != e->child.node ||
			      e->parent.dir != TJ_DIR_IN))
		return tj_errf(&r->fault, TJ_E_ARG,
			       "correlator '%s' gave call %s the parent %s: a parent must be "
			       "an inbound request on the call's node", name, child,
			       tj_msgkey_format(&e->parent, parent));
	if (!(e->score >= 0.0 && e->score <= 1.0))
		return tj_errf(&r->fault, TJ_E_ARG,
			       "correlator '%s' gave call %s the score %g, not in [0,1]",
			       name, child, e->score);
	if (is_cur)
		r->cur_open = 0;
	else
		ks_del_at(&r->calls, i);
	r->ring[r->ring_next] = e->child;
	r->ring_next = (r->ring_next + 1) % ANSWERED_RING;
	if (r->ring_n < ANSWERED_RING)
		r->ring_n++;
	return forward(r, e);
}

static int on_message(void *ctx, const struct tj_message *m)
{
	struct run *r = ctx;
	r->stats->messages++;
	int call = m->is_request && m->role == TJ_ROLE_CLIENT;
	if (call) {
		r->stats->calls++;
		r->cur = m->key;
		r->cur_open = 1;
	}
	int rc = r->c->message(r->st, m, &r->check, r->err);
	if (r->cur_open) { /* not answered yet: remember it */
		r->cur_open = 0;
		if (ks_put(&r->calls, &m->key, K_PENDING) < 0)
			return tj_errf(r->err, TJ_E_NOMEM, "correlate: out of memory");
	}
	if (r->fault.code) {
		*r->err = r->fault;
		return -r->fault.code;
	}
	if (rc < 0 && !r->err->code)
		tj_errf(r->err, -rc, "correlator '%s' failed on message %s", r->c->name,
			tj_msgkey_format(&m->key, (char[TJ_MSGKEY_STRLEN]){ 0 }));
	return rc < 0 ? rc : 0;
}

static int cmp_keys(const void *a, const void *b)
{
	return tj_msgkey_cmp(a, b);
}

/* Calls the correlator never answered: "no parent", score 0, in key
 * order so the output does not depend on hashing. */
static int answer_the_rest(struct run *r, struct tj_err *err)
{
	size_t n = 0;
	struct tj_msgkey *left = malloc((r->calls.len ? r->calls.len : 1) * sizeof(*left));
	if (!left)
		return tj_errf(err, TJ_E_NOMEM, "correlate: out of memory");
	for (size_t i = 0; i < r->calls.cap; i++)
		if (r->calls.state[i] == K_PENDING)
			left[n++] = r->calls.keys[i];
	qsort(left, n, sizeof(*left), cmp_keys);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct tj_edge e = { .child = left[i], .score = 0.0 };
		rc = forward(r, &e);
	}
	r->stats->unanswered = n;
	free(left);
	if (rc)
		*err = r->fault;
	return rc;
}

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int tj_correlate_run(const struct tj_correlator *c, const struct tj_params *p,
		     const struct tj_dataset *train_on, char *const *logs,
		     size_t nlogs, const struct tj_replay_opts *o,
		     struct tj_edge_sink *out, struct tj_correlate_stats *stats,
		     struct tj_err *err)
{
	struct tj_correlate_stats dummy;
	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	double cpu0 = cpu_now(), wall0 = wall_now();
	struct run r = { .c = c, .out = out, .stats = stats, .err = err };
	r.check.emit = check_emit;
	r.check.ctx = &r;
	char **paths = NULL;
	size_t npaths = 0;
	struct tj_replay *rp = NULL;
	int opened = 0;

	int rc = tj_replay_expand_inputs(logs, nlogs, &paths, &npaths, err);
	if (rc)
		goto out;
	if (!(r.ring = malloc(ANSWERED_RING * sizeof(*r.ring)))) {
		rc = tj_errf(err, TJ_E_NOMEM, "correlate: out of memory");
		goto out;
	}
	/* Whatever the caller asks, a correlator never sees unmasked trace
	 * headers (raw_payload exists for the labeler alone). */
	struct tj_replay_opts ro = { 0 };
	if (o)
		ro = *o;
	ro.raw_payload = 0;
	if ((rc = tj_replay_open(&rp, paths, npaths, &ro, err)))
		goto out;
	if ((rc = c->open(&r.st, p, err))) {
		if (!err->code)
			tj_errf(err, TJ_E_ARG, "correlator '%s' failed to open", c->name);
		goto out;
	}
	opened = 1;
	if (train_on) {
		if (!c->train) {
			rc = tj_errf(err, TJ_E_ARG, "correlator '%s' does not train", c->name);
			goto out;
		}
		if ((rc = c->train(r.st, train_on, err))) {
			if (!err->code)
				tj_errf(err, TJ_E_FORMAT, "correlator '%s' failed to train on %s",
					c->name, train_on->dir);
			goto out;
		}
	}
	/* the figures are the replay's: training is not counted */
	cpu0 = cpu_now();
	wall0 = wall_now();
	if ((rc = tj_replay_run(rp, on_message, &r, err)))
		goto out;
	rc = c->finish(r.st, &r.check, err);
	if (r.fault.code) {
		*err = r.fault;
		rc = -r.fault.code;
	} else if (rc < 0 && !err->code) {
		tj_errf(err, -rc, "correlator '%s' failed to finish", c->name);
	}
	if (rc == 0)
		rc = answer_the_rest(&r, err);
out:
	if (rc > 0) /* a positive stop value from a correlator: still a failure */
		rc = -TJ_E_ARG;
	if (opened)
		c->close(r.st);
	if (rp) {
		stats->replay = *tj_replay_stats(rp);
		stats->events = stats->replay.events;
		tj_replay_close(rp);
	}
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(r.calls.keys);
	free(r.calls.state);
	free(r.ring);
	stats->cpu_seconds = cpu_now() - cpu0;
	stats->wall_seconds = wall_now() - wall0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	stats->peak_rss_mb = ru.ru_maxrss / 1024.0;
	return rc;
}

/* ---- sinks ---- */

static int writer_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct tj_edge_writer_sink *s = sink->ctx;
	return tj_edges_writer_put(&s->w, e, &s->err);
}

int tj_edge_writer_sink_open(struct tj_edge_writer_sink *s, const char *path,
			     unsigned flags, char *const *inputs,
			     size_t ninputs, struct tj_err *err)
{
	memset(s, 0, sizeof(*s));
	s->sink.emit = writer_emit;
	s->sink.ctx = s;
	return tj_edges_writer_open(&s->w, path, flags, inputs, ninputs, err);
}

int tj_edge_writer_sink_close(struct tj_edge_writer_sink *s, struct tj_err *err)
{
	return tj_edges_writer_close(&s->w, err);
}

void tj_edge_writer_sink_abort(struct tj_edge_writer_sink *s)
{
	tj_edges_writer_abort(&s->w);
}

static int set_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct tj_edge_set_sink *s = sink->ctx;
	return tj_edges_add(s->set, e) < 0 ? -TJ_E_NOMEM : 0;
}

void tj_edge_set_sink_init(struct tj_edge_set_sink *s, struct tj_edge_set *set)
{
	s->sink.emit = set_emit;
	s->sink.ctx = s;
	s->set = set;
}

static int tee_emit(struct tj_edge_sink *sink, const struct tj_edge *e)
{
	struct tj_edge_tee_sink *s = sink->ctx;
	int rc = s->a->emit(s->a, e);
	return rc < 0 ? rc : s->b->emit(s->b, e);
}

void tj_edge_tee_sink_init(struct tj_edge_tee_sink *s, struct tj_edge_sink *a,
			   struct tj_edge_sink *b)
{
	s->sink.emit = tee_emit;
	s->sink.ctx = s;
	s->a = a;
	s->b = b;
}

int tj_params_add_arg(struct tj_params *p, char *kv, const char **why)
{
	char *eq = strchr(kv, '=');
	if (!eq || eq == kv) {
		*why = "K=V expected";
		return -1;
	}
	if (p->n == TJ_PARAMS_MAX) {
		*why = "too many --param";
		return -1;
	}
	*eq = '\0';
	p->key[p->n] = kv;
	p->val[p->n++] = eq + 1;
	return 0;
}
