/* labels.csv and edges.csv: one form, "child,parent,score" with a header
 * (DESIGN.md).  An empty parent means "no parent" (root or background
 * call).  Read and written with libcsv; a malformed row is an error that
 * names file, line and column. */
#ifndef TJ_EDGES_H
#define TJ_EDGES_H

#include <stdio.h>
#include "msgkey.h"
#include "error.h"
#include "outfile.h"

struct tj_edge {
	struct tj_msgkey child;
	struct tj_msgkey parent; /* meaningful only if has_parent */
	int has_parent;
	double score;            /* confidence in [0,1]; labels: 1.0 */
	/* Valid for correlator abi 1 and up: everything above.  Plugins emit
	 * this struct: new fields go here only, each marked with the
	 * TJ_CORRELATOR_ABI that added it (correlate/correlator.h). */
};

/* A whole edges file in memory, in file order (labels of a dataset are a
 * few per request, so this is small next to the logs). */
struct tj_edge_set {
	struct tj_edge *edges;
	size_t n, cap;
	unsigned long *lines; /* line number of each edge in its file */
};

/* Read path ("-" = stdin).  LF or CRLF, a UTF-8 BOM, quoted fields and
 * blank lines are accepted; a header-only file holds zero edges, an empty
 * file is refused (lib/edges.c has the details).  Refuses: a missing or wrong header, a row of
 * the wrong number of fields, a malformed key, a score that is not a
 * number in [0,1], and a duplicate child (naming both lines). */
int tj_edges_read(struct tj_edge_set *set, const char *path,
		  struct tj_err *err);
/* Parse from memory (for tests and the fuzzer); name is used in messages. */
int tj_edges_parse(struct tj_edge_set *set, const char *name,
		   const char *data, size_t len, struct tj_err *err);
int tj_edges_add(struct tj_edge_set *set, const struct tj_edge *e);
void tj_edges_free(struct tj_edge_set *set);

/* Streaming writer through lib/outfile.h: the file appears only when
 * tj_edges_writer_close() succeeds.  The header is written with the first
 * row or at close, so a run that fails before any edge prints nothing,
 * not even a header on stdout. */
struct tj_edges_writer {
	FILE *f;
	int own;            /* f belongs to out (opened by tj_edges_writer_open) */
	int header_pending; /* the header is still to be written */
	const char *path;
	struct tj_outfile out;
};
/* path "-" is stdout; flags TJ_OUT_*; an output that is one of inputs is
 * refused (tj_outfile_open). */
int tj_edges_writer_open(struct tj_edges_writer *w, const char *path,
			 unsigned flags, char *const *inputs, size_t ninputs,
			 struct tj_err *err);
int tj_edges_writer_put(struct tj_edges_writer *w, const struct tj_edge *e,
			struct tj_err *err);
/* Write what is held, check every write, move the file into place. */
int tj_edges_writer_close(struct tj_edges_writer *w, struct tj_err *err);

/* Abandon a writer after an error: the temporary file goes, an earlier
 * file of that name stays as it was. */
void tj_edges_writer_abort(struct tj_edges_writer *w);

/* The compact text of a score as the writer prints it ("1", "0.25"):
 * buf must hold TJ_SCORE_STRLEN bytes.  Returns buf. */
#define TJ_SCORE_STRLEN 32
char *tj_edges_format_score(double score, char *buf);

/* A map from message keys to a size_t (an index into the caller's array):
 * open addressing, linear probing, deletion by backward shift.  Used to find an edge by
 * its child, and by the scorer and the join for their own indices.  An
 * entry holds its key, value and use in 32 bytes: a probe reads one cache
 * line, not one line in each of three arrays (the streamed export does
 * millions of lookups on tables bigger than the caches). */
struct tj_keymap_ent {
	uint64_t sock, offset;
	uint32_t node;
	uint8_t dir, used;
	size_t val;
};
struct tj_keymap {
	struct tj_keymap_ent *ent;
	size_t cap, len;
};
/* Iterate: for (size_t i = 0; i < m->cap; i++) if (tj_keymap_at(m, i, &k)) ...
 * (1 and the key of slot i if it is used). */
static inline int tj_keymap_at(const struct tj_keymap *m, size_t i, struct tj_msgkey *k)
{
	const struct tj_keymap_ent *e = &m->ent[i];
	if (!e->used)
		return 0;
	k->node = e->node;
	k->sock = e->sock;
	k->offset = e->offset;
	k->dir = e->dir;
	return 1;
}
void tj_keymap_init(struct tj_keymap *m);
void tj_keymap_free(struct tj_keymap *m);
size_t *tj_keymap_get(const struct tj_keymap *m, const struct tj_msgkey *k);
/* Pointer to k's value, inserting it with value 0 if absent (*added says
 * which, may be NULL); NULL if out of memory. */
size_t *tj_keymap_upsert(struct tj_keymap *m, const struct tj_msgkey *k,
			 int *added);

/* Room for n keys at most half full (short probe runs for a map whose
 * keys come and go).  0, or -1 if out of memory. */
int tj_keymap_reserve(struct tj_keymap *m, size_t n);
/* Remove k; returns 1 if it was there.  Entries move: a pointer from
 * get or upsert is stale after a deletion. */
int tj_keymap_del(struct tj_keymap *m, const struct tj_msgkey *k);

/* Index a set by child: m maps each child to its position in set.  On a
 * duplicate child, *dup_first and *dup_second get the positions of the
 * two edges and -TJ_E_FORMAT is returned (no message: the caller knows
 * the file names); -TJ_E_NOMEM if out of memory. */
int tj_edges_index(struct tj_keymap *m, const struct tj_edge_set *set,
		   size_t *dup_first, size_t *dup_second);

#endif
