/* Scoring a correlator's edges against labels: the figures of `tracejoin
 * score`, also called by `tracejoin bench` on edge sets in memory.
 *
 * Definitions (every figure depends on the labels and the join only in
 * its denominator, never on the prediction):
 *
 * Decisions.  Every labeled call (a child in labels.csv) is one decision.
 * Its true parent T(c) is the label's parent or none; its predicted
 * parent P(c) is the edge's parent, or none when edges.csv has no row
 * for c ("missing").  The decision is right when P(c) = T(c), "none =
 * none" included.  Edges whose child the labels do not know ("unknown":
 * labels may cover only part of a capture) take part in no figure.
 *
 *   accuracy  = right decisions / decisions
 *   precision = right parents / calls predicted with a parent
 *   recall    = right parents / calls truly with a parent
 *   F1        = 2 * right parents / (predicted with a parent + truly with
 *               a parent), the harmonic mean of the two
 * where "right parents" counts calls with P(c) = T(c) != none.  A figure
 * whose denominator is zero is undefined (NaN here, null in JSON, "-" in
 * tables): precision of an empty edge set, say.
 *
 * Inbound requests (TraceWeaver's per-service accuracy).  The requests
 * scored are those the labels reach: every true parent, and every server
 * request a labeled call became on its callee (the join).  Request s is
 * right when the labeled calls predicted for it are exactly those truly
 * made for it (the same set, so a request with no true calls is right
 * when none is predicted for it).  Service accuracy = right requests /
 * requests, over the services that make labeled calls (a leaf service,
 * one that calls nothing, cannot be wrong and would only pad the figure;
 * its row still shows).
 *
 * Traces (TraceWeaver's end-to-end accuracy, = trace accuracy).  A root
 * is a request with no parent in the truth:
 *   entry roots:      requests in the scored set that no labeled call
 *                     became, i.e. requests from outside the capture, or,
 *                     with partial labels, the highest request the labels
 *                     reach of a trace whose top is unlabeled;
 *   background roots: labeled calls with no true parent (a timer or a
 *                     worker calling on its own starts a trace there).
 * A root's tree is what it reaches through true parents (request ->
 * its calls) and the join (call -> the request it became).  A trace is
 * right exactly when every request of its tree is right in the sense of
 * service accuracy and, for a background root, the call is predicted
 * with no parent: then the reconstructed tree from that root equals the
 * true one, edge for edge.  The two TraceWeaver figures are computed from
 * the same per-request verdicts, so they cannot disagree: one wrong
 * request makes its whole trace wrong.  Every labeled call lies in
 * exactly one tree unless the labels hold a cycle ("unreached" counts
 * those).
 * Without a join table (no logs) trees cannot cross nodes, so trace
 * accuracy is undefined and only the other figures are given.
 *
 * Services.  A service is a node and, where the logs tell it, the process
 * (pid) that read the request or sent the call; without logs, the node. */
#ifndef TJ_SCORE_H
#define TJ_SCORE_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "../lib/edges.h"
#include "../lib/error.h"

struct tj_join;

struct tj_score_service {
	uint32_t node, pid;       /* pid 0 = not known */
	uint64_t calls;           /* labeled calls it made */
	uint64_t calls_right;     /* of which decided right */
	uint64_t requests;        /* scored inbound requests it served */
	uint64_t requests_right;  /* whose predicted call set was exact */
};

struct tj_score {
	/* decisions over labeled calls */
	uint64_t decisions, right;
	uint64_t true_parent;     /* calls truly with a parent */
	uint64_t pred_parent;     /* calls predicted with a parent */
	uint64_t right_parent;    /* predicted with the true parent */
	uint64_t missing;         /* labeled calls with no row in edges */
	uint64_t unknown;         /* edge rows whose child labels lack */
	double accuracy, precision, recall, f1;

	/* inbound requests, over services that make calls */
	uint64_t requests, requests_right;
	double service_accuracy;

	/* traces */
	int have_join;
	uint64_t calls_joined;    /* labeled calls the join paired */
	uint64_t roots, roots_right;
	uint64_t entry_roots, background_roots;
	uint64_t unreached;       /* labeled calls in no tree (cycles) */
	double trace_accuracy;    /* = end-to-end accuracy */
	/* calls to services outside the captured set: labeled calls the
	 * join found no captured server end for (TJ_JOIN_NO_PEER) */
	uint64_t external, external_right;
	double external_accuracy;

	struct tj_score_service *services; /* by node, then pid */
	size_t nservices;
};

struct tj_score_opts {
	int strict;               /* unknown children are an error */
	const char *labels_name;  /* for messages ("labels") */
	const char *edges_name;   /* for messages ("edges") */
};

/* Score edges against labels.  join may be NULL (no logs: no trace
 * accuracy, services by node).  Refuses (-TJ_E_FORMAT, message naming
 * the file and line, or the position for sets built in memory) a
 * duplicate child in either set, and under strict an edge whose child
 * labels lack.  On success fill *s; free it with tj_score_free. */
int tj_score_compute(struct tj_score *s, const struct tj_edge_set *labels,
		     const struct tj_edge_set *edges,
		     const struct tj_join *join,
		     const struct tj_score_opts *opts, struct tj_err *err);
void tj_score_free(struct tj_score *s);

/* The short aligned table of `tracejoin score`. */
void tj_score_print(FILE *f, const struct tj_score *s);
/* The same as a JSON object (undefined figures are null). */
json_t *tj_score_json(const struct tj_score *s);
/* `tracejoin score --json`'s document: the inputs, the join's figures
 * (null without logs) and tj_score_json's; NULL when out of memory.
 * bench's per-dataset score jobs write the same. */
json_t *bench_score_doc(const char *labels, const char *edges, const char *dataset,
			const struct tj_join *join, const struct tj_score *sc);

#endif
