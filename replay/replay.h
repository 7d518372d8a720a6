/* Replay: node logs in, messages out.
 *
 * The replay reads N node logs, assembles each node's syscall events into
 * messages (DESIGN.md: a maximal run of bytes one socket moves in one
 * direction), and hands them to a callback.
 *
 * Delivery contract (what correlators may rely on):
 *  - A message is delivered once, complete: after its direction flipped,
 *    its socket was closed or shut down, its log ended, or it stayed idle
 *    (no byte in its direction) for opts.idle_ns of its node's time.
 *  - The messages of one node are delivered in order of ts_first.  So when
 *    a call is delivered, every request that started before it on that
 *    node has been delivered already, with its ts_last and ts_reply.
 *  - Nodes are interleaved by a merge on their own clocks, which are never
 *    compared for meaning: only order within a node is promised.
 *  - Memory is bounded by open sockets and messages held for ordering,
 *    never by log size.
 */
#ifndef TJ_REPLAY_H
#define TJ_REPLAY_H

#include <stdint.h>
#include <stddef.h>
#include "../lib/event.h"
#include "../lib/msgkey.h"
#include "../lib/error.h"

enum tj_role {
	TJ_ROLE_UNKNOWN = 0, /* socket first seen mid-stream, side not inferable */
	TJ_ROLE_CLIENT = 1,  /* this node connect()ed: out = request, in = response */
	TJ_ROLE_SERVER = 2,  /* this node accept()ed: in = request, out = response */
};

/* Message flags. */
#define TJ_MSG_GAP        0x1u /* bytes before this message were lost (offset jump) */
#define TJ_MSG_MIDSTREAM  0x2u /* socket first seen mid-stream (predates the log) */
#define TJ_MSG_AFTER_IDLE 0x4u /* same direction as the previous message, split by the idle rule */
#define TJ_MSG_NO_REPLY   0x8u /* ended by close, shutdown or end of log, not by a reply */
#define TJ_MSG_ROLE_GUESS 0x10u /* role inferred (listening port), not seen at accept/connect */
#define TJ_MSG_CUT        0x20u /* the first message of a socket first seen mid-stream: it may have
				   begun before capture, so it is never a request (README "Roles") */
#define TJ_MSG_SEQ_OFFSET 0x40u /* mid-stream socket whose offsets are TCP sequence numbers
				   (TJ_EVF_SEQ_OFFSET): they join with the peer's */

struct tj_message {
	struct tj_msgkey key;  /* node:sock:dir:offset */
	uint8_t role;          /* enum tj_role of the socket */
	uint8_t is_request;    /* client+out or server+in */
	uint32_t flags;        /* TJ_MSG_* */
	uint32_t pid;          /* process that moved the first byte */
	uint32_t tid_first;    /* thread of the first syscall (TJ_TID_UNKNOWN if unknown) */
	uint32_t tid_last;     /* thread of the last syscall */
	uint64_t ts_first;     /* node-local ns: first syscall of the message */
	uint64_t ts_last;      /* node-local ns: last syscall of the message */
	uint64_t ts_reply;     /* first syscall of the reply on this socket, 0 if none */
	uint32_t tid_reply;    /* thread that started the reply */
	uint64_t bytes;        /* bytes in the message */
	uint32_t nsyscalls;    /* syscalls it took */
	uint32_t seq;          /* index of this message on its socket, 0,1,2,... (keepalive reuse) */
	uint64_t ts_sock_open; /* when the socket was accepted/connected (0 if unknown) */
	uint8_t family;
	uint16_t lport, rport;
	uint8_t laddr[16], raddr[16];
	uint32_t stack_id;     /* of the first syscall, 0 = none */
	uint16_t payload_len;  /* the message's first bytes, trace headers masked: its
				  first syscall's prefix, continued by the next
				  syscalls' while each earlier one was captured whole */
	const uint8_t *payload;
	/* Where in the program the message was made: a hash of the top user
	 * frames of stack_id (function names, else file + offset), stable
	 * across runs and processes of the same binaries; 0 = the log has no
	 * stacks. */
	uint64_t callsite;
	/* Valid for correlator abi 1 and up: everything above.  Plugins see
	 * this struct: new fields go here only, each marked with the
	 * TJ_CORRELATOR_ABI that added it (correlate/correlator.h). */
	/* abi 2 (capture --tag): where the connection came from, as its SYN
	 * said (server-side sockets only): the client's node and socket id.
	 * The cross-node join prefers it to the addresses, which NAT may have
	 * rewritten. */
	uint8_t has_origin;
	uint32_t origin_node;
	uint64_t origin_sock;
};

struct tj_replay_opts {
	uint64_t idle_ns;  /* idle rule, default 2 s (0 = default) */
	int keep_payload;  /* pass masked payload prefixes on (default: drop) */
	uint64_t reorder_ns;     /* a complete message waits this long (node time) for
				    events slightly out of order, default 1 ms (0 = default) */
	uint64_t sock_expire_ns; /* forget a socket silent this long (its close was
				    lost), default 600 s (0 = default) */
	int raw_payload;   /* with keep_payload: do NOT mask trace headers.  Only
			      for `tracejoin label`, which reads them to make the
			      ground truth; never for a correlator. */
};

struct tj_replay_stats {
	uint64_t events;       /* events read */
	uint64_t messages;     /* messages delivered */
	uint64_t requests;     /* of which requests */
	uint64_t gaps;         /* messages flagged TJ_MSG_GAP */
	uint64_t lost_events;  /* TJ_EV_LOST totals and footer drop counters */
	uint64_t damaged_logs; /* logs read only partly */
	uint64_t peak_held;    /* most messages open or held at once */
	uint64_t peak_sockets; /* most sockets tracked at once */
	uint64_t masked;       /* payload headers masked */
	uint64_t late_events;  /* bytes behind what a socket already moved: dropped */
	uint64_t expired_sockets; /* sockets forgotten after sock_expire_ns of silence */
	/* Added for sockets that predate capture: */
	uint64_t cut;          /* messages flagged TJ_MSG_CUT (not requests) */
	uint64_t unknown_role; /* messages on sockets whose side stayed unknown */
	uint64_t listeners;    /* LISTEN events read (capture's start-up scan) */
};

struct tj_replay;

/* Expand command-line inputs: a dataset folder becomes its node-*.evlog
 * files (sorted), a file stays itself.  *paths is malloc'd (free it and
 * each string).  Errors name the argument at fault. */
int tj_replay_expand_inputs(char *const *args, size_t nargs, char ***paths,
			    size_t *npaths, struct tj_err *err);

int tj_replay_open(struct tj_replay **rp, char *const *paths, size_t npaths,
		   const struct tj_replay_opts *opts, struct tj_err *err);

typedef int (*tj_message_fn)(void *ctx, const struct tj_message *m);

/* Read every log to its end, delivering messages.  A callback that returns
 * non-zero stops the replay and that value is returned.  A damaged log is
 * read as far as possible, counted in stats and warned about on stderr;
 * it is not an error here (the caller decides the exit code). */
int tj_replay_run(struct tj_replay *rp, tj_message_fn fn, void *ctx,
		  struct tj_err *err);
const struct tj_replay_stats *tj_replay_stats(const struct tj_replay *rp);

/* A side channel for the project's own consumers, not the plugin ABI
 * (tj_message is that, correlate/correlator.h): the replay's number for
 * the socket of a message it delivered (valid in the callback only).
 * Sockets are numbered from 1 as the replay first sees them, never
 * reused: a socket id the replay forgot (closed, expired) and sees again
 * gets a new number.  Lets a consumer find its own state of a socket
 * without hashing node:sock on every message. */
uint64_t tj_replay_sock_serial(const struct tj_message *m);
void tj_replay_close(struct tj_replay *rp);

/* Mask trace-context headers (traceparent, tracestate, X-Request-ID,
 * X-B3-*, uber-trace-id, ...) in a payload prefix in place: their values
 * are overwritten with '*'.  Returns how many were masked. */
unsigned tj_payload_mask(uint8_t *buf, size_t len);

#endif
