/* tracejoin import: outside traces in.
 *
 *  - Jaeger JSON -> a labeled dataset (node-N.evlog, labels.csv,
 *    manifest.json).  Spans carry no sockets, threads or bytes, so the
 *    socket events are synthesised from span times; datasets/import/README.md
 *    documents the mapping rule by rule.
 *  - Event CSV (the columns of `tracejoin dump --csv`) -> one evlog.
 *
 * Bad input never stops an import early: a trace that fails a check is
 * skipped, a file that is not JSON is refused, each with a warning that
 * names the file and trace, and counted in the stats. */
#ifndef TJ_IMPORT_H
#define TJ_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "../../lib/event.h"
#include "../../lib/edges.h"
#include "../../lib/error.h"

/* Bytes of every synthesised request and of every response: spans say
 * nothing about sizes, so all messages are alike and carry no signal. */
#define TJ_IMPORT_MSG_BYTES 100u
/* Port every synthesised service listens on, and the ephemeral range
 * client ports are drawn from (Linux's default). */
#define TJ_IMPORT_SERVER_PORT 8080u
#define TJ_IMPORT_EPHEMERAL_LO 32768u
#define TJ_IMPORT_EPHEMERAL_HI 60999u
/* pid of every event of node N: one process per service. */
#define TJ_IMPORT_PID_BASE 1000u
/* Most nodes one dataset may have (addresses are 10.x.y.1). */
#define TJ_IMPORT_MAX_NODES 60000u

/* A warning: "FILE: trace ID: reason".  NULL = count only. */
typedef void (*tj_import_warn_fn)(void *ctx, const char *msg);

enum tj_import_nodes {
	TJ_IMPORT_NODE_INSTANCE = 0, /* one node per (service, hostname tag) */
	TJ_IMPORT_NODE_SERVICE = 1,  /* one node per service name */
};

/* Where span kinds come from (datasets/README.md, "Kinds"). */
enum tj_import_kinds {
	TJ_IMPORT_KINDS_AUTO = 0, /* span.kind where a span has it, inferred where not */
	TJ_IMPORT_KINDS_TAGS,     /* span.kind only: an untagged span is in-process */
	TJ_IMPORT_KINDS_INFER,    /* ignore span.kind: a span under another process serves it */
};

struct tj_jaeger_opts {
	unsigned keepalive;       /* 0: one connection per call; K: pool of K per (caller, callee) */
	unsigned nodes;           /* enum tj_import_nodes */
	unsigned kinds;           /* enum tj_import_kinds */
	tj_import_warn_fn warn;
	void *warn_ctx;
};

struct tj_jaeger_stats {
	uint64_t files;            /* files read */
	uint64_t files_refused;    /* empty, not JSON, not Jaeger */
	uint64_t traces;           /* traces imported */
	uint64_t traces_skipped;   /* traces that failed a check */
	uint64_t spans;            /* spans of the imported traces */
	uint64_t warnings;         /* warnings issued (= refused files + skipped traces) */
	uint64_t calls;            /* calls made of them (one per connection use) */
	uint64_t root_requests;    /* server spans with no parent: caller outside */
	uint64_t synth_callers;    /* server spans whose caller side was synthesised */
	uint64_t unseen_callees;   /* client spans with no server span under them */
	uint64_t inferred_servers; /* spans without span.kind taken as server spans */
	uint64_t nested_servers;   /* server spans under a same-node non-client: in-process */
	uint64_t skewed;           /* server spans not inside their client span (other clock) */
	uint64_t late_calls;       /* calls that end after their parent request's response */
	uint64_t connections;
	uint64_t overflow_conns;   /* --keepalive: pool busy, one-shot connection used */
	uint64_t events;           /* filled by tj_jaeger_build */
	uint64_t labels;
};

/* One synthesised node: its events in time order, ready to be written. */
struct tj_import_node {
	uint32_t id;          /* node id, 1..n, in order of name */
	char *name;           /* "service" or "service@hostname" */
	uint8_t addr[4];      /* IPv4 address, 10.x.y.1 */
	struct tj_event *events;
	size_t nevents;
};

struct tj_import_result {
	struct tj_import_node *nodes;
	size_t nnodes;
	struct tj_edge_set labels; /* sorted by child key */
};

struct tj_jaeger;

int tj_jaeger_new(struct tj_jaeger **jp, const struct tj_jaeger_opts *opts,
		  struct tj_err *err);
/* Read one file's contents (name is used in warnings).  Returns 0 even
 * when the file or some of its traces are refused (warned and counted);
 * negative only when out of memory. */
int tj_jaeger_add_buffer(struct tj_jaeger *j, const char *name,
			 const char *data, size_t len, struct tj_err *err);
/* Read a file ("-" = stdin).  Negative if it cannot be read at all. */
int tj_jaeger_add_file(struct tj_jaeger *j, const char *path,
		       struct tj_err *err);
/* Turn the calls read so far into per-node events and labels. */
int tj_jaeger_build(struct tj_jaeger *j, struct tj_import_result *out,
		    struct tj_err *err);
const struct tj_jaeger_stats *tj_jaeger_stats(const struct tj_jaeger *j);
void tj_jaeger_free(struct tj_jaeger *j);
void tj_import_result_free(struct tj_import_result *r);

#define TJ_IMPORT_FORCE 0x1u /* replace what is in the way */

/* Write dir/node-N.evlog, dir/labels.csv and dir/manifest.json.  The
 * members of fields become top-level manifest fields ("source",
 * "scenario"), those of params its "parameters"; the node names are added
 * as "nodes" ({"1": "frontend", ...}).  Both are borrowed, may be NULL.
 * Refuses a folder that already holds a dataset unless TJ_IMPORT_FORCE,
 * which also removes stale node-*.evlog files.  On failure removes what
 * it wrote. */
int tj_import_write_dataset(const struct tj_import_result *r, const char *dir,
			    json_t *fields, json_t *params, unsigned flags,
			    struct tj_err *err);

/* ---- event CSV ---- */

/* Called once per row; ev->payload valid during the call only.  A
 * non-zero return stops the parse; err's message is then reported as
 * "NAME:LINE: message". */
typedef int (*tj_csv_event_fn)(void *ctx, const struct tj_event *ev,
			       struct tj_err *err);

/* Parse event CSV (header row naming the columns, then one event a row)
 * from memory.  name is used in messages: "NAME: line L, column C (col):
 * reason".  Returns 0 or negative with err set. */
int tj_event_csv_parse(const char *name, const char *data, size_t len,
		       tj_csv_event_fn fn, void *ctx, struct tj_err *err);

struct tj_csv_import_stats {
	uint64_t rows;
	uint32_t node;
};

/* Read path ("-" = stdin) and write the evlog out.  node < 0: take the
 * node id from the rows (all must agree; an empty file is then refused);
 * node >= 0: every row must carry that node.  No partial file is left on
 * failure. */
int tj_import_csv(const char *path, const char *out, int64_t node,
		  unsigned flags, struct tj_csv_import_stats *st,
		  struct tj_err *err);

#endif
