/* The correlator host: finds a correlator (built in or a plugin), drives
 * it over a replay, checks what it answers, and sends the edges on.
 *
 * What the host guarantees to whoever reads its edges: exactly one edge
 * per call the replay delivered (a call the correlator never answered is
 * emitted by the host as "no parent" with score 0), every edge's child a
 * call that was shown, every parent an inbound request of the child's
 * node.  A correlator that breaks this is stopped with an error naming
 * it. */
#ifndef TJ_HOST_H
#define TJ_HOST_H

#include <stdint.h>
#include "correlator.h"

/* ---- finding correlators ---- */

/* The correlator `correlate` runs without --algo, and that "default"
 * names: chosen by the benchmark tables, never by reading labels
 * (DESIGN.md; bench/RESULTS.md, DECISIONS.md "The default correlator"). */
#define TJ_CORRELATOR_DEFAULT "queue-select"

/* A built-in correlator by name ("default" = TJ_CORRELATOR_DEFAULT), or
 * NULL. */
const struct tj_correlator *tj_correlator_builtin(const char *name);
/* The built-ins present in this binary, in a fixed order; returns how
 * many (at most max are stored). */
size_t tj_correlator_builtins(const struct tj_correlator **out, size_t max);

/* A name with a '/' or ending in ".so" is a plugin: its file checked
 * (plugin_trust.h: owned by root or us, writable by no one else, unless
 * TJ_LOAD_TRUST), then dlopen()ed, its `tracejoin_correlator` table
 * checked (symbol present, abi equal, functions set) and refused by name
 * otherwise; *dlhandle must be passed to tj_correlator_unload after use.
 * Anything else names a built-in (*dlhandle = NULL). */
#define TJ_LOAD_TRUST 1u /* --trust-plugin: skip the owner/mode rules */
int tj_correlator_load(const char *name_or_path, unsigned flags,
		       const struct tj_correlator **c, void **dlhandle,
		       struct tj_err *err);
void tj_correlator_unload(void *dlhandle);

/* A command line's "--param K=V" into p: kv is cut at its '=' (argv is
 * the command's to cut).  0, or -1 with why (for the usage message) when
 * kv has no key or p is full. */
int tj_params_add_arg(struct tj_params *p, char *kv, const char **why);

/* ---- running ---- */

struct tj_correlate_stats {
	uint64_t events;          /* events replayed */
	uint64_t messages;        /* messages shown to the correlator */
	uint64_t calls;           /* of which calls (client-side requests) */
	uint64_t edges;           /* edges sent on, host-filled included */
	uint64_t unanswered;      /* calls the host answered "no parent" for */
	double cpu_seconds;       /* user + system CPU time of the replay and
				     finish, training excluded */
	double wall_seconds;      /* the same, elapsed (monotonic clock) */
	double peak_rss_mb;       /* the process's peak resident set (getrusage) */
	struct tj_replay_stats replay;
};

/* Replay logs (dataset folders or evlog paths, as
 * tj_replay_expand_inputs takes them) through correlator c, after
 * training it on train_on if not NULL (a correlator without train()
 * is then refused).  Edges go to out.  Labels and manifests beside the
 * logs are never read.  A damaged log is not an error here: look at
 * stats->replay.damaged_logs. */
int tj_correlate_run(const struct tj_correlator *c, const struct tj_params *p,
		     const struct tj_dataset *train_on, char *const *logs,
		     size_t nlogs, const struct tj_replay_opts *o,
		     struct tj_edge_sink *out, struct tj_correlate_stats *stats,
		     struct tj_err *err);

/* ---- edge sinks ---- */

/* Writes edges.csv through tj_edges_writer ("-" = stdout). */
struct tj_edge_writer_sink {
	struct tj_edge_sink sink;   /* pass &s.sink */
	struct tj_edges_writer w;
	struct tj_err err;          /* why emit() failed */
};
/* flags and inputs as tj_outfile_open(). */
int tj_edge_writer_sink_open(struct tj_edge_writer_sink *s, const char *path,
			     unsigned flags, char *const *inputs,
			     size_t ninputs, struct tj_err *err);
int tj_edge_writer_sink_close(struct tj_edge_writer_sink *s, struct tj_err *err);
/* After a failed run: the temporary file goes, an earlier file stays. */
void tj_edge_writer_sink_abort(struct tj_edge_writer_sink *s);

/* Appends edges to a struct tj_edge_set (bench, tests). */
struct tj_edge_set_sink {
	struct tj_edge_sink sink;   /* pass &s.sink */
	struct tj_edge_set *set;
};
void tj_edge_set_sink_init(struct tj_edge_set_sink *s, struct tj_edge_set *set);

/* Sends every edge to two sinks (--traces: the file and the tree). */
struct tj_edge_tee_sink {
	struct tj_edge_sink sink;
	struct tj_edge_sink *a, *b;
};
void tj_edge_tee_sink_init(struct tj_edge_tee_sink *s, struct tj_edge_sink *a,
			   struct tj_edge_sink *b);

#endif
