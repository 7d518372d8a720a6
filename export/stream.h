/* The streamed export: one replay, and each trace written as soon as
 * nothing more can join it (export/xasm.h), so memory is bounded by what
 * is in flight (open connections, traces within the window), not by the
 * dataset.  It gives the bytes of the in-memory model (model.h) or, where
 * it cannot be sure to, says so and leaves the export to that model:
 *
 *  - a late link: a span whose parent or join partner may be in a trace
 *    already written (clock skew beyond the window, an edge to a
 *    long-finished request, a connection forgotten and seen again);
 *  - what the join decides only from the whole logs: a connection name
 *    claimed by two nodes (ambiguous), ends that the DNAT fallback could
 *    pair by the client's address, capture --tag origins;
 *  - anything the in-memory model refuses or cuts (edges that do not
 *    fit, a cycle): it says what is wrong, naming file and line.
 *
 * The calls' edges are looked up by child as calls come; --truth the same.
 * A file is read ahead only as far as the calls need (stream.c, "edge_src"). */
#ifndef TJ_EXPORT_STREAM_H
#define TJ_EXPORT_STREAM_H

#include "export.h"

struct tj_xstream_opts {
	int format;                       /* enum tj_export_format */
	/* one edge per call: a set in memory, else a file read as calls
	 * need it (not stdin: giving up must be able to read it again) */
	const struct tj_edge_set *edges;
	const char *edges_path;
	const struct tj_edge_set *truth;  /* --truth: the same, both NULL: none */
	const char *truth_path;
	const struct tj_replay_opts *replay;
	uint64_t window_ns;               /* 0: the replay's idle rule */
	size_t max_traces;                /* 0: all */
};

struct tj_xstream_stats {
	uint64_t spans, traces, wrong;
	uint64_t peak_spans;      /* spans held at once */
	uint64_t peak_sockets;    /* connections held at once */
	uint64_t names;           /* connection names held at once */
	const char *gave_up;      /* why the in-memory model must do it, NULL */
	int damaged;              /* a log was read only in part */
};

/* The streamed export of inputs into w.  0: written (w holds the whole
 * document); TJ_XSTREAM_GAVE_UP: st->gave_up says why, w holds a part
 * to throw away; < 0: an error (err). */
#define TJ_XSTREAM_GAVE_UP 1
int tj_xstream_export(char *const *inputs, size_t ninputs, const struct tj_xstream_opts *o,
		      struct jw *w, struct tj_xstream_stats *st, struct tj_err *err);

#endif
