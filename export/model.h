/* The span model `tracejoin export` and the bench report draw from: one
 * server span per inbound request, one client span per call, their parent
 * links (a call's from the edges, a request's from the cross-node join),
 * and the traces those links make.
 *
 * Built from one replay of a dataset: every request and call is kept as
 * a compact record (about 120 bytes), so memory grows with the dataset.
 * `tracejoin export` streams instead (stream.h) and comes here only where
 * the stream cannot be sure (a late link, NAT, bad edges), and for
 * --root; the bench report's drill-downs use this model.
 *
 * Times are wall clock (ns since the epoch): each node's monotonic time
 * shifted by the clock pair in its log's header.  Skewed nodes stay
 * skewed, as the captured clocks were. */
#ifndef TJ_EXPORT_MODEL_H
#define TJ_EXPORT_MODEL_H

#include <stdint.h>
#include <stddef.h>
#include "../lib/edges.h"
#include "../lib/error.h"
#include "../replay/replay.h"

#define TJ_XSPAN_NONE UINT32_MAX

enum tj_xkind { TJ_XSPAN_SERVER = 1, TJ_XSPAN_CLIENT = 2 };
/* What --truth says of a span's parent link. */
enum tj_xcorrect { TJ_XCORRECT_UNKNOWN = 0, TJ_XCORRECT_YES = 1, TJ_XCORRECT_NO = 2 };

struct tj_xspan {
	struct tj_msgkey key;
	uint64_t start, end;   /* wall-clock ns; end: reply start, else last byte */
	uint64_t bytes;
	double score;          /* the edge's score (calls); 1 for requests */
	uint32_t pid, tid;
	uint32_t service;      /* index into model->services */
	uint32_t parent;       /* span index, TJ_XSPAN_NONE: a root */
	uint32_t true_parent;  /* the same from the labels (--truth) */
	uint32_t trace;        /* index of the root span of its trace */
	uint32_t true_trace;   /* root of its true trace (--truth) */
	uint16_t lport, rport;
	uint8_t family;
	uint8_t kind;          /* enum tj_xkind */
	uint8_t correct;       /* enum tj_xcorrect */
	uint8_t truth_known;   /* the labels have this call */
	uint8_t raddr[16];     /* the peer's address (network.peer.address) */
	uint8_t external;      /* a call whose server end no log has: a service
				  outside the captured set, a leaf of its trace */
};

struct tj_xmodel {
	struct tj_xspan *spans; /* sorted by key */
	size_t n;
	char **services;        /* service names: the manifest's node names, else
				   unique log host names, else node-N */
	size_t nservices;
	uint32_t *roots;        /* root spans in order of start (the trace order) */
	size_t nroots;
	/* Children: child_of[first_child[i] .. first_child[i+1]) are the
	 * children of span i, by start time (first_child has n+1 slots). */
	uint32_t *children;
	uint32_t *first_child;
	int has_truth;
	uint64_t wrong;         /* calls whose parent disagrees with the labels */
	uint64_t cycles_cut;    /* parent links dropped to break a cycle */
	int damaged;            /* a log was read only in part */
};

struct tj_xmodel_opts {
	const struct tj_edge_set *edges;  /* one edge per call; NULL: none yet
					     (tj_xmodel_link gives them) */
	const char *edges_name;           /* for messages */
	const struct tj_edge_set *truth;  /* NULL: no --truth */
	const char *truth_name;
	const struct tj_replay_opts *replay;
};

/* Replay inputs (a dataset folder or node logs) into *m.  Refuses (with
 * TJ_E_FORMAT, naming the file and line) edges that do not fit the
 * dataset: a child that is not a call of it, a parent that is not a
 * request of the child's node, or a call with no edge (a truncated file). */
int tj_xmodel_build(struct tj_xmodel *m, char *const *inputs, size_t ninputs,
		    const struct tj_xmodel_opts *o, struct tj_err *err);
void tj_xmodel_free(struct tj_xmodel *m);

/* Give the calls another edge set (the same checks as the build), keeping
 * the replay, the join and the truth: bench draws every correlator's
 * mistakes on a dataset from one replay.  On failure the model's calls
 * have no parent. */
int tj_xmodel_link(struct tj_xmodel *m, const struct tj_edge_set *edges,
		   const char *name, struct tj_err *err);

/* A log's node: one instant on its two clocks, its names and service. */
struct tj_xnode {
	uint32_t node;
	uint64_t mono, real;  /* one instant on both clocks */
	char host[64];
	char name[64];        /* from the dataset's manifest, "" if none */
	uint32_t service;
};
/* Every log's header into *nodes (malloc'd) and m->services (the names
 * above).  Shared by the in-memory model and the streamed one. */
int tj_xnodes_read(struct tj_xmodel *m, struct tj_xnode **nodes, size_t *nnodes,
		   char *const *paths, size_t npaths, char *const *inputs, size_t ninputs,
		   struct tj_err *err);
const struct tj_xnode *tj_xnode_of(const struct tj_xnode *nodes, size_t n, uint32_t node);
/* A node-local time on the wall clock (c NULL: as is). */
uint64_t tj_xnode_wall(const struct tj_xnode *c, uint64_t ts);
/* The span of a request or call, without links. */
void tj_xspan_of_message(struct tj_xspan *s, const struct tj_message *m,
			 const struct tj_xnode *c);
/* Children lists and roots from the parent links (parents set, no cycle). */
int tj_xmodel_index(struct tj_xmodel *m, struct tj_err *err);
/* The same into arrays kept from one call to the next (the streamed
 * export indexes a small model per trace): m's index arrays then belong
 * to r, which tj_xindex_room_free frees. */
struct tj_xindex_room {
	uint32_t *order, *first_child, *children, *roots;
	size_t cap;
};
int tj_xmodel_index_reuse(struct tj_xmodel *m, struct tj_xindex_room *r, struct tj_err *err);
void tj_xindex_room_free(struct tj_xindex_room *r);

/* The span of a key, or TJ_XSPAN_NONE. */
uint32_t tj_xmodel_find(const struct tj_xmodel *m, const struct tj_msgkey *k);

/* Deterministic ids from keys: a trace's id is its root's. */
void tj_xspan_id(const struct tj_msgkey *k, uint8_t out[8]);
void tj_xtrace_id(const struct tj_msgkey *root, uint8_t out[16]);

/* Spans of the trace rooted at root, parents before children (depth
 * first, children by start), into out; stack is scratch.  Both need room
 * for m->n.  Returns how many. */
size_t tj_xmodel_trace_spans(const struct tj_xmodel *m, uint32_t root,
			     uint32_t *out, uint32_t *stack);

#endif
