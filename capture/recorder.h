/* From ring-buffer records to evlogs: a short reorder window (records of
 * different CPUs reach the ring slightly out of time order), one writer
 * per node (one node, or one per network namespace), LOST markers and
 * drop counters. */
#ifndef TJ_CAPTURE_RECORDER_H
#define TJ_CAPTURE_RECORDER_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/evlog.h"
#include "capture_common.h"
#include "stackrec.h"
#include "sockscan.h"

struct tj_recorder_opts {
	const char *out;          /* file, or folder with per_netns */
	int per_netns;            /* one log per network namespace */
	int force;                /* overwrite existing logs */
	unsigned block_events;    /* 0 = the writer's default */
	struct tj_stackrec *stacks; /* --stack: gives events their stack ids */
	/* The start-up scan (or NULL): each log begins with the LISTEN
	 * events of its namespace (all of them in single-log mode) and a
	 * SCAN event, at the scan's time. */
	const struct tj_sockscan *scan;
	/* Header for every log; node is replaced per namespace. */
	struct tj_evlog_header header;
};

struct tj_recorder;

/* Single-log mode creates the file now; per-namespace mode creates the
 * folder (mode 0700) and makes a log when a namespace is first seen. */
int tj_recorder_open(struct tj_recorder **r, const struct tj_recorder_opts *o,
		     struct tj_err *err);

/* Take one ring record (copied; held until its time is written). */
int tj_recorder_add(struct tj_recorder *r, const struct tjc_event *ev, size_t size,
		    struct tj_err *err);

/* n events were lost for reason why, noticed at time ts: a LOST marker
 * goes into every log, and the count into every footer (a lost event
 * cannot be told apart by namespace). */
int tj_recorder_lost(struct tj_recorder *r, uint64_t ts, enum tj_drop_reason why,
		     uint64_t n, struct tj_err *err);

/* Write, in time order, every held event older than upto_ts; then flush
 * the logs' blocks if flush_blocks.  upto_ts = UINT64_MAX writes all. */
int tj_recorder_write_until(struct tj_recorder *r, uint64_t upto_ts,
			    int flush_blocks, struct tj_err *err);

/* Events written so far, over all logs. */
uint64_t tj_recorder_events(const struct tj_recorder *r);

/* Print one line per log ("PATH: node N, E events") to f. */
void tj_recorder_report(const struct tj_recorder *r, FILE *f);

/* Write everything held, then the stacks block into every log. */
int tj_recorder_write_stacks(struct tj_recorder *r, const struct tj_stacks *st,
			     struct tj_err *err);

/* Write everything held, close every log (footers).  Frees r. */
int tj_recorder_close(struct tj_recorder *r, struct tj_err *err);
/* Discard every log (a capture that never started): an earlier file at
 * the output stays as it was.  Frees r. */
void tj_recorder_abort(struct tj_recorder *r);

#endif
