/* Labeled datasets, pair by pair (trainset.h). */
#include <glob.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "trainset.h"
#include <jansson.h>
#include "../lib/edges.h"
#include "../lib/manifest.h"
#include "../replay/replay.h"

struct walk {
	struct tj_feat *feat;
	struct tj_feat_call call; /* large: on the heap with the walk */
	struct tj_edge_set labels;
	struct tj_keymap bychild;
	tj_pair_fn fn;
	void *ctx;
	struct tj_walk_stats *st;
	struct tj_err *err;
};

static int on_message(void *ctx, const struct tj_message *m)
{
	struct walk *w = ctx;
	int rc = tj_feat_message(w->feat, m, &w->call, w->err);
	if (rc <= 0)
		return rc;
	const struct tj_feat_call *c = &w->call;
	int truth = TJ_TRUTH_UNLABELED;
	w->st->calls++;
	w->st->pairs += c->n;
	size_t *ix = tj_keymap_get(&w->bychild, &c->call);
	if (ix) {
		const struct tj_edge *e = &w->labels.edges[*ix];
		w->st->labeled++;
		truth = TJ_TRUTH_NONE;
		if (e->has_parent) {
			w->st->with_parent++;
			truth = TJ_TRUTH_UNREACHABLE;
			for (size_t j = 0; j < c->n; j++)
				if (tj_msgkey_eq(&c->cand[j], &e->parent)) {
					truth = (int)j;
					break;
				}
			if (truth == TJ_TRUTH_UNREACHABLE)
				w->st->unreachable++;
		}
	}
	int assign = truth >= 0 ? truth : -1;
	rc = w->fn(w->ctx, c, truth, &assign, w->err);
	tj_feat_assign(w->feat, c, assign);
	return rc;
}

static char *join(const char *dir, const char *file)
{
	size_t n = strlen(dir) + strlen(file) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", dir,
			 *dir && dir[strlen(dir) - 1] == '/' ? "" : "/", file);
	return p;
}

int tj_walk_dataset(const char *dir, const struct tj_feat_opts *fo,
		    tj_pair_fn fn, void *ctx, struct tj_walk_stats *st,
		    struct tj_err *err)
{
	struct stat sb;
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return tj_errf(err, TJ_E_ARG,
			       "%s: not a dataset folder (node-*.evlog and labels.csv)", dir);
	struct walk *w = calloc(1, sizeof(*w));
	char *labels = join(dir, "labels.csv");
	char **paths = NULL;
	size_t npaths = 0;
	struct tj_replay *rp = NULL;
	int rc;
	if (!w || !labels) {
		free(w);
		free(labels);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", dir);
	}
	tj_keymap_init(&w->bychild);
	w->fn = fn;
	w->ctx = ctx;
	w->st = st;
	w->err = err;
	if (access(labels, R_OK) != 0) {
		/* missing is "not labeled"; unreadable is said as it is */
		if (errno == ENOENT)
			rc = tj_errf(err, TJ_E_ARG, "%s: no labels.csv: training needs a "
				     "labeled dataset", dir);
		else
			rc = tj_errf(err, TJ_E_IO, "%s: %s", labels, strerror(errno));
		goto out;
	}
	if ((rc = tj_edges_read(&w->labels, labels, err)) < 0)
		goto out;
	size_t d1, d2;
	if ((rc = tj_edges_index(&w->bychild, &w->labels, &d1, &d2)) < 0) {
		rc = tj_errf(err, TJ_E_FORMAT, "%s: child listed twice (lines %lu and %lu)",
			     labels, w->labels.lines ? w->labels.lines[d1] : 0ul,
			     w->labels.lines ? w->labels.lines[d2] : 0ul);
		goto out;
	}
	if ((rc = tj_feat_new(&w->feat, fo, err)) < 0)
		goto out;
	char *args[1] = { (char *)dir };
	if ((rc = tj_replay_expand_inputs(args, 1, &paths, &npaths, err)) < 0)
		goto out;
	struct tj_replay_opts ro = { 0 };
	if ((rc = tj_replay_open(&rp, paths, npaths, &ro, err)) < 0)
		goto out;
	rc = tj_replay_run(rp, on_message, w, err);
	if (rc > 0) /* a callback's own negative code comes back as is */
		rc = tj_errf(err, TJ_E_ARG, "%s: stopped", dir);
	const struct tj_replay_stats *rs = tj_replay_stats(rp);
	st->events += rs->events;
	st->damaged_logs += rs->damaged_logs;
out:
	tj_replay_close(rp);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	tj_feat_free(w->feat);
	tj_keymap_free(&w->bychild);
	tj_edges_free(&w->labels);
	free(labels);
	free(w);
	return rc;
}

/* ---- collecting a fit set ---- */

struct collect {
	struct tj_fit_set *set;
};

static int collect_pair(void *ctx, const struct tj_feat_call *c, int truth,
			int *assign, struct tj_err *err)
{
	struct collect *k = ctx;
	(void)assign;
	if (truth == TJ_TRUTH_UNLABELED || c->n == 0)
		return 0; /* nothing to learn from */
	return tj_fit_set_add(k->set, &c->x[0][0], c->n, TJ_FEAT_N, truth, err);
}

int tj_trainset_add(struct tj_fit_set *set, const char *dir,
		    const struct tj_feat_opts *fo, struct tj_walk_stats *st,
		    struct tj_err *err)
{
	struct collect k = { set };
	return tj_walk_dataset(dir, fo, collect_pair, &k, st, err);
}

struct collect_self {
	struct tj_fit_set *set;
	const struct tj_model *m;
};

/* The pairs as the correlator will see them: the history features follow
 * the model's own earlier decisions, the target is still the label. */
static int collect_self_pair(void *ctx, const struct tj_feat_call *c, int truth,
			     int *assign, struct tj_err *err)
{
	struct collect_self *k = ctx;
	double p;
	*assign = tj_model_decide(k->m, &c->x[0][0], c->n, TJ_FEAT_N, &p);
	if (truth == TJ_TRUTH_UNLABELED || c->n == 0)
		return 0;
	return tj_fit_set_add(k->set, &c->x[0][0], c->n, TJ_FEAT_N, truth, err);
}

int tj_trainset_add_self_fed(struct tj_fit_set *set, const char *dir,
			     const struct tj_feat_opts *fo,
			     const struct tj_model *m, struct tj_walk_stats *st,
			     struct tj_err *err)
{
	struct collect_self k = { set, m };
	return tj_walk_dataset(dir, fo, collect_self_pair, &k, st, err);
}

/* ---- hashes ---- */

/* The folder's own name, for the model file ("runs/threaded-s101/" ->
 * "threaded-s101"), blanks replaced so the line stays parseable. */
static void dataset_name(const char *dir, char *out, size_t len)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && dir[b - 1] != '/')
		b--;
	snprintf(out, len, "%.*s", (int)(n - b), dir + b);
	for (char *p = out; *p; p++)
		if (*p == ' ' || *p == '\t')
			*p = '_';
	if (!*out)
		snprintf(out, len, "%s", "/");
}

/* The SHA-256 the dataset's manifest.json records for file, if it has a
 * well-formed one (gen, import and label write them). */
static int manifest_sha(json_t *manifest, const char *file, char hex[65])
{
	json_t *f = json_object_get(json_object_get(manifest, "files"), file);
	const char *s = json_string_value(json_object_get(f, "sha256"));
	if (!s || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
		return -1;
	memcpy(hex, s, 65);
	return 0;
}

static int hash_one(struct tj_model *m, json_t *manifest, const char *name,
		    const char *path, const char *file, struct tj_err *err)
{
	char hex[65];
	if (manifest && manifest_sha(manifest, file, hex) == 0) {
		if (tj_model_add_hash(m, name, file, hex) < 0)
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
		return 0;
	}
	int rc = tj_sha256_file(path, hex, err);
	if (rc < 0)
		return rc;
	if (tj_model_add_hash(m, name, file, hex) < 0)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	return 0;
}

int tj_trainset_hash(struct tj_model *m, const char *dir, struct tj_err *err)
{
	char name[256];
	dataset_name(dir, name, sizeof(name));
	char *labels = join(dir, "labels.csv"), *mpath = join(dir, "manifest.json");
	if (!labels || !mpath) {
		free(labels);
		free(mpath);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", dir);
	}
	/* A missing or unreadable manifest only means hashing the files. */
	json_t *manifest = json_load_file(mpath, 0, NULL);
	free(mpath);
	int rc = hash_one(m, manifest, name, labels, "labels.csv", err);
	free(labels);
	if (rc < 0) {
		json_decref(manifest);
		return rc;
	}
	char **paths = NULL;
	size_t npaths = 0;
	char *args[1] = { (char *)dir };
	if ((rc = tj_replay_expand_inputs(args, 1, &paths, &npaths, err)) < 0) {
		json_decref(manifest);
		return rc;
	}
	for (size_t i = 0; i < npaths && rc == 0; i++) {
		const char *base = strrchr(paths[i], '/');
		rc = hash_one(m, manifest, name, paths[i], base ? base + 1 : paths[i], err);
	}
	json_decref(manifest);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	return rc;
}

/* ---- evaluation ---- */

struct evalctx {
	const struct tj_model *m;
	struct tj_eval *ev;
};

static int eval_pair(void *ctx, const struct tj_feat_call *c, int truth,
		     int *assign, struct tj_err *err)
{
	struct evalctx *e = ctx;
	(void)err;
	double p;
	int d = tj_model_decide(e->m, &c->x[0][0], c->n, TJ_FEAT_N, &p);
	*assign = d;
	if (truth == TJ_TRUTH_UNLABELED)
		return 0;
	e->ev->calls++;
	if (truth == TJ_TRUTH_NONE) {
		e->ev->no_parent++;
		e->ev->right_none += d < 0;
		e->ev->right += d < 0;
	} else {
		e->ev->with_parent++;
		e->ev->right_parent += d >= 0 && d == truth;
		e->ev->right += d >= 0 && d == truth;
	}
	return 0;
}

int tj_evaluate(const struct tj_model *m, const char *dir, struct tj_eval *ev,
		struct tj_err *err)
{
	struct evalctx e = { m, ev };
	struct tj_feat_opts fo = { m->max_cand, m->window_ns };
	struct tj_walk_stats st = { 0 };
	return tj_walk_dataset(dir, &fo, eval_pair, &e, &st, err);
}
