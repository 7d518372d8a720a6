/* The trace assembler of the streamed export (export/stream.c): spans
 * come in as the replay delivers them, parent links as they are found,
 * and a trace leaves (to a writer) as soon as nothing more can join it.
 *
 * A trace is a group of spans joined by parent links, led by the one
 * span without a parent (its root, or for now the earliest span whose
 * parent is still to come).  The flush rule: a group whose leader has
 * no parent is written once every node's clock (the wall-clock start of
 * the latest message the node delivered, the node's "watermark") has
 * passed the latest end of any of its spans by the window; traces leave
 * in the order of their roots' starts (then keys), the order of the
 * in-memory model.  Why that is safe: a node delivers its messages in
 * order of start, so a message still to come starts after its node's
 * watermark; a span of a trace starts before its parent ends; so once
 * every watermark is a window past the trace's last end, what could
 * still join it would have to be more than a window late (clock skew
 * beyond the window, or an edge to a long-finished request).  The
 * caller (stream.c) detects such a late link and says so: the assembler
 * never drops one. */
#ifndef TJ_EXPORT_XASM_H
#define TJ_EXPORT_XASM_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "../lib/edges.h"

struct tj_xasm_span {
	struct tj_xspan x;   /* x.parent: the parent's slot, TJ_XSPAN_NONE */
	uint32_t uf;         /* union-find link to the group's leader */
	uint32_t tail;       /* leader: the list's last */
	uint32_t size;       /* leader: spans in the group */
	uint64_t max_end;    /* leader: latest end in the group */
	uint32_t gen;        /* bumped when the slot is freed */
	uint32_t node;       /* index of its node's watermark */
	uint32_t owner;      /* the caller's: its socket's record */
	uint32_t sprev, snext; /* the caller's: its socket's live spans */
	uint8_t live;
	uint8_t joined;      /* the caller's: the join found its peer */
};

struct tj_xasm;
/* A trace is ready: slots[0..n) are its spans, slots[0] its root.  The
 * callback may change the spans' fields and build the trace's model
 * (tj_xasm_model); the slots are freed after it returns.  Non-zero
 * stops the flush and is returned. */
typedef int (*tj_xasm_fn)(void *ctx, struct tj_xasm *a, const uint32_t *slots, size_t n);

struct tj_xasm *tj_xasm_new(size_t nnodes, uint64_t window_ns, tj_xasm_fn fn, void *ctx);
/* No index of live spans by key: for a caller that finds spans itself
 * (the stream, by socket), sparing a hash insert and delete per span.
 * Then tj_xasm_find finds nothing and tj_xasm_add does not refuse a key
 * already live (the caller does).  Call before the first tj_xasm_add. */
void tj_xasm_unindexed(struct tj_xasm *a);
void tj_xasm_free(struct tj_xasm *a);

/* Add a span (no parent yet) of node index `node`; its slot, or
 * TJ_XSPAN_NONE if out of memory.  A key already live is refused the
 * same way (the replay delivers each message once). */
uint32_t tj_xasm_add(struct tj_xasm *a, const struct tj_xspan *s, uint32_t node);
/* A span is written only once settled (tj_xasm_settle). */
/* The live span of a key, TJ_XSPAN_NONE if none (never added, or its
 * trace is written). */
uint32_t tj_xasm_find(const struct tj_xasm *a, const struct tj_msgkey *k);
struct tj_xasm_span *tj_xasm_span(struct tj_xasm *a, uint32_t slot);

/* The span's links known at its arrival are made: if it has no parent,
 * it may be a root (the flush considers it).  Call once per span, after
 * tj_xasm_add and its first links.  0, or -TJ_E_NOMEM. */
int tj_xasm_settle(struct tj_xasm *a, uint32_t slot);

enum { TJ_XASM_OK = 0, TJ_XASM_CYCLE = 1, TJ_XASM_HAS_PARENT = 2 };
/* child's parent is parent: child's group joins parent's.  Refuses a
 * child that has a parent, and a link that would close a cycle. */
int tj_xasm_link(struct tj_xasm *a, uint32_t child, uint32_t parent);

/* Node `node` delivered a message starting at wall-clock ns ts. */
void tj_xasm_advance(struct tj_xasm *a, uint32_t node, uint64_t ts);
/* The least watermark over nodes (0 until every node delivered one). */
uint64_t tj_xasm_watermark(const struct tj_xasm *a);
/* Write every ready trace (all: every trace, at the end of the logs). */
int tj_xasm_flush(struct tj_xasm *a, int all);

/* The model of one ready trace: its spans sorted by key, parents as
 * indices, children indexed; m->services is not set.  *root is the
 * root's index.  The model's arrays (spans and index) belong to the
 * assembler (valid until the next call). */
int tj_xasm_model(struct tj_xasm *a, const uint32_t *slots, size_t n,
		  struct tj_xmodel *m, uint32_t *root, struct tj_err *err);

struct tj_xasm_stats {
	uint64_t live, peak_live;   /* spans held */
	uint64_t traces;            /* written */
};
const struct tj_xasm_stats *tj_xasm_stats(const struct tj_xasm *a);

#endif
