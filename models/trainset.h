/* Walking a labeled dataset pair by pair: replay its logs
 * (replay/replay.h), compute every call's candidate features
 * (features.h), and look up the call's true parent in labels.csv.  Used by
 * `tracejoin train` (fitting and held-out evaluation) and `tracejoin
 * features` (CSV export), so all of them see the same pairs. */
#ifndef TJ_TRAINSET_H
#define TJ_TRAINSET_H

#include <stdint.h>
#include "features.h"
#include "fit.h"
#include "model.h"

#define TJ_TRUTH_UNLABELED (-3) /* labels.csv does not know this call */

/* Called for every call, in replay order.  truth: the index of the true
 * parent among c's candidates, or TJ_TRUTH_NONE / _UNREACHABLE /
 * _UNLABELED.  Set *assign to the decision the feature state should
 * remember (preset: the truth, -1 if there is none among the candidates).
 * Return 0, or negative to stop (with err set). */
typedef int (*tj_pair_fn)(void *ctx, const struct tj_feat_call *c, int truth,
			  int *assign, struct tj_err *err);

struct tj_walk_stats {
	uint64_t events, calls, labeled, with_parent, unreachable, pairs;
	uint64_t damaged_logs;
};

/* Walk one dataset folder (node-*.evlog + labels.csv). */
int tj_walk_dataset(const char *dir, const struct tj_feat_opts *fo,
		    tj_pair_fn fn, void *ctx, struct tj_walk_stats *st,
		    struct tj_err *err);

/* Collect a dataset's groups into a fit set (teacher forcing). */
int tj_trainset_add(struct tj_fit_set *set, const char *dir,
		    const struct tj_feat_opts *fo, struct tj_walk_stats *st,
		    struct tj_err *err);

/* Collect a dataset's groups with the history features fed by model m's
 * own decisions (as at inference), each still labeled with its truth:
 * `train --self-fed`, so the fit learns how far those features can be
 * trusted once its own mistakes feed them (DAgger, Ross et al. 2011). */
int tj_trainset_add_self_fed(struct tj_fit_set *set, const char *dir,
			     const struct tj_feat_opts *fo,
			     const struct tj_model *m, struct tj_walk_stats *st,
			     struct tj_err *err);

/* Record the SHA-256 of dir's labels.csv and node-*.evlog in m. */
int tj_trainset_hash(struct tj_model *m, const char *dir, struct tj_err *err);

/* Run model m over a dataset as the correlator does (its own decisions
 * feed the history features) and count right answers among labeled
 * calls. */
struct tj_eval {
	uint64_t calls, right;                 /* labeled calls, right ones */
	uint64_t with_parent, right_parent;    /* of which with a true parent */
	uint64_t no_parent, right_none;        /* of which with none */
};
int tj_evaluate(const struct tj_model *m, const char *dir, struct tj_eval *ev,
		struct tj_err *err);

#endif
