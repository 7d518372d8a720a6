/* Labels from live traffic: W3C trace context in payload prefixes.
 *
 * A capture made with --payload holds the first bytes of every send and
 * receive.  Our workload services (datasets/workloads/) propagate a
 * `traceparent: 00-TRACE-SPAN-01` header, and choose their span ids by a
 * documented rule so that the ground truth can be read back from the
 * headers alone:
 *
 *  - a service that receives a request carrying (T, P) handles it in the
 *    server span  S = tj_tp_server_span(T, P);
 *  - its i-th downstream call (i = 0, 1, ... in the order the calls are
 *    made, i < TJ_TP_MAX_CALLS) carries (T, tj_tp_call_span(S, i));
 *  - a pass-through proxy (nginx) forwards (T, P) unchanged.
 *
 * So the parent of a call on node N carrying (T, C) is the server request
 * on N carrying (T, P) with C = call_span(server_span(T, P), i) for some
 * i, or, for a proxy, the server request on N carrying (T, C) itself.  A
 * call no server request of its node explains is a root (the load
 * generator's requests).  A call whose header is not in its first
 * syscall's prefix is not guessed: it is left out of labels.csv and
 * counted.
 *
 * tracejoin label writes the dataset: the logs with every payload
 * removed, labels.csv, manifest.json. */
#ifndef TJ_LABEL_H
#define TJ_LABEL_H

#include <stdint.h>
#include <stddef.h>
#include "../../lib/error.h"
#include "../../lib/evlog.h"

/* The most calls one request makes that the labeler can attribute. */
#define TJ_TP_MAX_CALLS 32

struct tj_traceparent {
	uint64_t trace_hi, trace_lo; /* 128-bit trace id */
	uint64_t span;               /* parent-id field */
	uint8_t flags;
};

/* "00-<32 hex>-<16 hex>-<2 hex>" (55 characters + NUL). */
#define TJ_TP_STRLEN 56
char *tj_tp_format(const struct tj_traceparent *tp, char buf[TJ_TP_STRLEN]);
/* Parse a header value (exactly 55 characters at text, version 00, lower
 * or upper case hex, trace and span not all zero).  0 or -1. */
int tj_tp_parse_value(const char *text, size_t len, struct tj_traceparent *tp);
/* Find the traceparent header in the prefix of an HTTP/1.x message (a
 * line "traceparent:" in any case, optional blanks, the value).  Returns
 * 1 and *tp, 0 if the prefix holds no such line (or is cut inside it),
 * -1 if the line is there but its value is malformed. */
int tj_tp_find(const uint8_t *buf, size_t len, struct tj_traceparent *tp);

/* The span-id rule above (never 0). */
uint64_t tj_tp_server_span(uint64_t trace_hi, uint64_t trace_lo, uint64_t parent);
uint64_t tj_tp_call_span(uint64_t server_span, unsigned i);
/* A 64-bit mixer (splitmix64's finaliser), for seeds and ids. */
uint64_t tj_tp_mix(uint64_t x);

/* ---- labeling a capture ---- */

struct tj_label_opts {
	int force;           /* replace an existing output folder's files */
	int keep_going;      /* accept damaged logs (exit 3 later) */
	const char *workload;  /* free text recorded in the manifest, may be NULL */
	const char *params_json; /* a JSON object merged into "parameters", may be NULL */
};

struct tj_label_result {
	uint64_t logs, events;
	uint64_t server_requests, server_with_tp;
	uint64_t calls;          /* client-side requests in the capture */
	uint64_t labeled;        /* written to labels.csv */
	uint64_t with_parent;    /* of which with a parent */
	uint64_t via_proxy;      /* parent found through a pass-through proxy */
	uint64_t roots;          /* labeled with no parent */
	uint64_t no_header;      /* calls left out: no traceparent visible */
	uint64_t bad_header;     /* calls left out: malformed traceparent */
	uint64_t ambiguous;      /* calls left out: two requests explain them */
	uint64_t unknown_role;   /* requests on sockets of unknown role (not labeled) */
	uint64_t cut;            /* first messages of sockets open before capture, which
				    may have begun before it: calls and requests cut by
				    capture start (not labeled) */
	uint64_t parent_cut;     /* calls left out: made for a request cut by capture
				    start, so their parent is no request (not labeled;
				    not in the 'left out' total) */
	uint64_t payload_events; /* events whose payload was removed */
	uint64_t drops[TJ_DROP__COUNT];
	int damaged;             /* a log was read only in part */
};

/* Label the capture in capture_dir (its node-*.evlog files, made with
 * --payload) into out_dir.  Refuses: a missing folder, a folder with no
 * node-*.evlog, a file that is not an evlog, a synthetic log, a log made
 * without payload prefixes.  The unlabeled calls' keys go to
 * out_dir/unlabeled.csv (key,reason) when there are any. */
int tj_label_capture(const char *capture_dir, const char *out_dir,
		     const struct tj_label_opts *opts,
		     struct tj_label_result *res, struct tj_err *err);

#endif
