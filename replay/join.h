/* The cross-node join (DECISIONS.md): a call that node A sends and the
 * request node B receives are the same bytes of one TCP connection, so
 * they are paired by the connection's addresses and the stream offset,
 * never by clocks.
 *
 * How a pair is found:
 *  - Every socket is one connection, named on each side by
 *    (family, client addr:port, server addr:port): on the client side
 *    (role client) that is (local, remote), on the server side (role
 *    server) (remote, local).
 *  - Ports are reused, so the n-th socket of a node with a given name
 *    pairs with the n-th socket of the same name on the other side;
 *    "n-th" is the order in which the node's messages first show the
 *    socket (the replay delivers a node's messages in time order).
 *  - A call (client, out, request) at offset o pairs with the server
 *    request (server, in) at offset o on the paired socket, if the
 *    server side has a request starting at exactly o.
 * What it cannot pair, and counts instead: sockets of unknown role or
 * first seen mid-stream with offsets counted from capture start (those
 * with sequence-number offsets, TJ_MSG_SEQ_OFFSET, do pair: both ends
 * share them, and a wrap of the sequence between the two ends' first
 * sights is allowed for), a connection whose other end was not
 * captured (calls to the outside world), and names claimed by two
 * different nodes (addresses rewritten by NAT, or the same private
 * addresses on two hosts): those are "ambiguous" and are not joined,
 * rather than joined wrongly.
 *
 * Through address translation:
 *  - capture --tag: a server socket whose message carries an origin (the
 *    client's node and socket id, from a TCP option on the SYN) is paired
 *    with that client socket, whatever the addresses say;
 *  - without tags, tj_join_finish pairs ends that the full name left
 *    without a peer by the client's address and port alone, which a
 *    destination NAT leaves unchanged (join.c, "the DNAT fallback").
 *    These pairs exist only after tj_join_finish.
 *
 * Use: tj_join_add() every message of every node (any interleaving of
 * nodes; each node's messages in delivery order), tj_join_finish(), then
 * look up.  Tests and `tracejoin bench` may also state pairs directly
 * with tj_join_put(). */
#ifndef TJ_JOIN_H
#define TJ_JOIN_H

#include <stdint.h>
#include "replay.h"
#include "../lib/msgkey.h"
#include "../lib/error.h"

struct tj_join;

struct tj_join_stats {
	uint64_t calls;           /* client-side requests seen */
	uint64_t server_requests; /* server-side requests seen */
	uint64_t joined;          /* calls paired with a server request
				     (the stats are filled by tj_join_finish) */
	uint64_t no_peer;         /* calls whose connection's server end was
				     not captured (calls to the outside) */
	uint64_t ambiguous;       /* calls on a connection name two nodes
				     claimed at the same ordinal */
	uint64_t offset_misses;   /* server end found, no request at the offset */
	uint64_t skipped;         /* requests on sockets that cannot be joined
				     (role unknown, first seen mid-stream) */
	uint64_t sockets;         /* sockets numbered */
	uint64_t joined_by_tag;   /* of joined: paired by a capture --tag origin */
	uint64_t joined_by_client_addr; /* of joined: by the client address (DNAT) */
};

/* Whether a call joined, and if not, why (tj_join_explain). */
enum tj_join_result {
	TJ_JOIN_OK = 0,
	TJ_JOIN_SKIPPED,      /* role unknown, or the socket predates the log */
	TJ_JOIN_AMBIGUOUS,
	TJ_JOIN_NO_PEER,      /* no captured server end by name, tag or client address */
	TJ_JOIN_OFFSET_MISS,
	TJ_JOIN_NOT_SEEN,     /* not a call of these logs */
};
/* How a joined call was paired. */
enum { TJ_JOIN_BY_ADDRESSES = 0, TJ_JOIN_BY_TAG, TJ_JOIN_BY_CLIENT_ADDR };

int tj_join_new(struct tj_join **jp, struct tj_err *err);
void tj_join_free(struct tj_join *j);

/* Record one message (requests and responses: every message helps to
 * number the sockets).  0, or -TJ_E_NOMEM. */
int tj_join_add(struct tj_join *j, const struct tj_message *m);
/* Count what could and could not be joined (the stats); call after the
 * last tj_join_add().  Lookups work without it. */
int tj_join_finish(struct tj_join *j, struct tj_err *err);

/* State a pair directly (tests, callers that know the answer); usable
 * instead of or after tj_join_finish().  0, or -TJ_E_NOMEM, or -TJ_E_ARG
 * if call or request is already paired with something else. */
int tj_join_put(struct tj_join *j, const struct tj_msgkey *call,
		const struct tj_msgkey *request);
/* State the process of a request or call (tj_join_add does it from the
 * message); for the scorer's per-service breakdown. */
int tj_join_put_pid(struct tj_join *j, const struct tj_msgkey *k,
		    uint32_t pid);

/* The server request a call became: 1 and *request set, or 0. */
int tj_join_request_of(const struct tj_join *j, const struct tj_msgkey *call,
		       struct tj_msgkey *request);
/* The call a server request came from: 1 and *call set, or 0. */
int tj_join_call_of(const struct tj_join *j, const struct tj_msgkey *request,
		    struct tj_msgkey *call);
/* Whether call joined (TJ_JOIN_OK, *via how) or why not (enum
 * tj_join_result); pairs stated with tj_join_put are not consulted. */
int tj_join_explain(const struct tj_join *j, const struct tj_msgkey *call,
		    unsigned *via);
/* One line of text for a tj_join_result. */
const char *tj_join_result_text(int result);

/* The process of a request or call, TJ_PID_UNKNOWN if not known. */
uint32_t tj_join_pid_of(const struct tj_join *j, const struct tj_msgkey *k);
const struct tj_join_stats *tj_join_stats(const struct tj_join *j);

/* A connection's name as the join keys it (TJ_JOIN_NAME_LEN bytes):
 * family, client addr, client port, server addr, server port (ports big
 * endian); from m's side (its role says which end is the client). */
#define TJ_JOIN_NAME_LEN (1 + 16 + 2 + 16 + 2)
void tj_join_conn_name(const struct tj_message *m, unsigned char *name);

/* Convenience: replay the logs (a dataset folder or node-*.evlog files,
 * as tj_replay_expand_inputs takes them) into a finished join table.
 * *damaged is set when a log was read only in part. */
int tj_join_from_logs(struct tj_join **jp, char *const *inputs,
		      size_t ninputs, int *damaged, struct tj_err *err);

#endif
