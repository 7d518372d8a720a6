/* The event log (.evlog): one node's events, compressed in self-checking
 * blocks so that a log cut short or damaged is read up to its last whole
 * block.  The byte layout is documented in lib/EVLOG.md. */
#ifndef TJ_EVLOG_H
#define TJ_EVLOG_H

#include <stdint.h>
#include <stdio.h>
#include "event.h"
#include "error.h"

#define TJ_HOSTNAME_MAX 64
#define TJ_KERNEL_MAX 64
#define TJ_OPTIONS_MAX 256

/* Capture options recorded in the header. */
#define TJ_CAP_PAYLOAD        0x1u /* events carry payload prefixes */
#define TJ_CAP_STACKS         0x2u /* events carry stack ids */
#define TJ_CAP_PREEXISTING    0x4u /* sockets open before capture are included */
#define TJ_CAP_SYNTHETIC      0x8u /* made by gen or import, not by capture */

struct tj_evlog_header {
	uint16_t version_major;     /* filled by the writer / read from file */
	uint16_t version_minor;
	uint32_t node;
	char hostname[TJ_HOSTNAME_MAX];
	char kernel[TJ_KERNEL_MAX];  /* uname -r */
	/* One instant read on both clocks: maps node-local monotonic time to
	 * wall-clock time (never trusted across nodes, only a hint). */
	uint64_t clock_mono_ns;
	uint64_t clock_real_ns;
	uint32_t capture_flags;      /* TJ_CAP_* */
	uint32_t payload_max;        /* payload prefix size asked for, 0 = none */
	char options[TJ_OPTIONS_MAX]; /* free text: the command line, generator spec */
};

/* Why events were lost, kept in the footer.  Capture counts them; the
 * generator's "lossy" scenarios count the events they dropped. */
enum tj_drop_reason {
	TJ_DROP_RINGBUF = 0, /* ring buffer full: reserve failed */
	TJ_DROP_MAP,         /* a BPF map was full (socket or syscall state) */
	TJ_DROP_FILTER,      /* reserved: nothing counts it yet (always 0) */
	TJ_DROP_OTHER,       /* reserved: nothing counts it yet (always 0) */
	TJ_DROP__COUNT
};

/* Their names in `info` and manifests: "ringbuf", "map", "filter", "other". */
extern const char *const tj_drop_names[TJ_DROP__COUNT];

struct tj_evlog_footer {
	uint64_t events;             /* events written */
	uint64_t blocks;
	uint64_t first_ts, last_ts;  /* time span (0,0 if empty) */
	uint64_t drops[TJ_DROP__COUNT];
};

/* ---- writing ---- */

struct tj_evlog_writer;

#define TJ_EVLOG_FORCE 0x1u /* overwrite an existing file */
/* Capture: write PATH.partial under an exclusive lock (lib/outfile.h,
 * TJ_OUT_LOCK), and keep what was written when a write fails. */
#define TJ_EVLOG_CAPTURE 0x2u

/* Create path with mode 0600 (payloads may be secret) through
 * lib/outfile.h: the log is written beside path and appears there only at
 * tj_evlog_close().  Refuses an existing file unless TJ_EVLOG_FORCE.
 * path "-" writes to stdout. */
int tj_evlog_create(struct tj_evlog_writer **w, const char *path,
		    const struct tj_evlog_header *h, unsigned flags,
		    struct tj_err *err);
/* Append one event (the payload is copied).  Events should come in time
 * order; small inversions are stored as they are. */
int tj_evlog_write(struct tj_evlog_writer *w, const struct tj_event *ev,
		   struct tj_err *err);
/* Events per block (default 65536, at most 262144); smaller blocks lose
 * less on a crash and suit tests.  Returns 0 or -TJ_E_ARG. */
int tj_evlog_set_block_events(struct tj_evlog_writer *w, unsigned n);
/* Add to the drop counters stored in the footer (and, at each flush
 * that follows a change, in a stats block, so a log cut short keeps them). */
void tj_evlog_add_drops(struct tj_evlog_writer *w, enum tj_drop_reason why,
			uint64_t n);
/* Write the current block now (capture calls it on a timer so that a kill
 * loses little). */
int tj_evlog_flush(struct tj_evlog_writer *w, struct tj_err *err);
/* Write the current events block, then a block of another type (4 and
 * up, lib/EVLOG.md; e.g. the stacks block of lib/stacks.h).  body is
 * zlib-compressed when zlib is set, raw_len its inflated length. */
int tj_evlog_write_block(struct tj_evlog_writer *w, unsigned type, int zlib,
			 const void *body, size_t len, size_t raw_len,
			 struct tj_err *err);
/* Flush, write the footer, move the log into place.  On a failure the
 * log is discarded (an earlier file at path stays), except with
 * TJ_EVLOG_CAPTURE, where what was written is kept.  Frees w. */
int tj_evlog_close(struct tj_evlog_writer *w, struct tj_err *err);
/* Give up: discard the log (an earlier file at path stays).  Frees w. */
void tj_evlog_abort(struct tj_evlog_writer *w);

/* ---- reading ---- */

struct tj_evlog_reader;

/* What the reader found wrong, filled as it goes; final after next()
 * returned 0 (end) or an error. */
struct tj_evlog_damage {
	int damaged;              /* 0 = clean so far */
	uint64_t offset;          /* file offset where damage starts */
	uint64_t events_lost;     /* events known lost (from the footer or block headers), */
	int lost_known;           /* ... 1 if that count is exact, 0 if unknown */
	uint64_t blocks_skipped;  /* damaged blocks skipped */
	int header_untrusted;     /* header CRC, length or strings bad: its node,
	                           * clocks and flags are unverified (replay takes
	                           * the node from the events, which blocks' CRCs
	                           * check) */
	char what[TJ_ERRMSG_MAX]; /* "block 12 at offset 40960: bad CRC", "cut short at ..." */
};

/* Open and read the header.  Refuses a file that is not an evlog or has
 * a newer major version, by name.  path "-" reads stdin. */
int tj_evlog_open(struct tj_evlog_reader **r, const char *path,
		  struct tj_err *err);
/* The same on an open stream (a pipe, fmemopen); name is used in
 * messages.  The reader does not close f. */
int tj_evlog_open_file(struct tj_evlog_reader **r, FILE *f, const char *name,
		       struct tj_err *err);
const struct tj_evlog_header *tj_evlog_header(const struct tj_evlog_reader *r);
/* Next event: 1 and *ev set, 0 at the end, negative on a hard error
 * (I/O).  Damage (bad CRC, cut short) is not a hard error: the reader
 * skips or stops, records it in damage(), and goes on where it can.
 * *ev and its payload stay valid until the next call. */
int tj_evlog_next(struct tj_evlog_reader *r, const struct tj_event **ev,
		  struct tj_err *err);
/* Footer as read from the file; NULL if the file has none (cut short). */
const struct tj_evlog_footer *tj_evlog_footer(const struct tj_evlog_reader *r);
const struct tj_evlog_damage *tj_evlog_damage(const struct tj_evlog_reader *r);
const char *tj_evlog_path(const struct tj_evlog_reader *r);
/* Drop counters: the footer's, or those of the last stats block of a log
 * cut short.  Returns 1 if the file recorded any, 0 if not known. */
int tj_evlog_drops(const struct tj_evlog_reader *r,
		   uint64_t drops[TJ_DROP__COUNT]);
/* Events blocks read whole so far, and file bytes consumed so far. */
uint64_t tj_evlog_blocks_read(const struct tj_evlog_reader *r);
uint64_t tj_evlog_bytes_read(const struct tj_evlog_reader *r);
void tj_evlog_close_reader(struct tj_evlog_reader *r);
/* The loss of d in words, the one place it is said: "; 12 events lost",
 * "; at least 12 events lost", "; an unknown number of events lost".
 * buf holds 64 bytes; returns buf. */
char *tj_evlog_damage_lost(const struct tj_evlog_damage *d, char *buf);
/* For commands: "tracejoin CMD: PATH: damaged from offset O: WHAT; N
 * events lost" on stderr, after next() returned 0 with damage set.  The
 * command then exits TJ_EXIT_DAMAGED. */
void tj_evlog_report_damage(const char *cmd, const struct tj_evlog_reader *r);

#endif
