/* The event record: one socket syscall (or kernel socket state change) on
 * one node.  Every part of tracejoin speaks this struct: capture writes it,
 * gen and import synthesise it, the evlog stores it, replay consumes it.
 *
 * The in-memory struct is not the on-disk form (see evlog.h); it may grow
 * fields in a minor version.  Readers of an evlog fill fields the file does
 * not have with their "unknown" value. */
#ifndef TJ_EVENT_H
#define TJ_EVENT_H

#include <stdint.h>
#include <stddef.h>

/* Version of the event record and of the evlog format.  A reader refuses a
 * major version it does not know; a newer minor version only adds fields or
 * block types, which an older reader ignores. */
#define TJ_EVENT_VERSION_MAJOR 1
#define TJ_EVENT_VERSION_MINOR 3

enum tj_event_type {
	TJ_EV_NONE = 0,
	TJ_EV_ACCEPT,   /* a server socket was accepted (sock = the new socket) */
	TJ_EV_CONNECT,  /* connect() on a client socket (bytes = return value) */
	TJ_EV_SEND,     /* bytes went out: write, send*, writev, sendmsg, ... */
	TJ_EV_RECV,     /* bytes came in: read, recv*, readv, recvmsg, ... */
	TJ_EV_CLOSE,    /* the last close() of the fd seen by this process */
	TJ_EV_SHUTDOWN, /* shutdown(); arg = how (SHUT_RD/WR/RDWR) */
	TJ_EV_STATE,    /* TCP state change; arg = old << 8 | new (TCP_* values) */
	TJ_EV_LOST,     /* marker: bytes = number of events lost here (ring full...) */
	TJ_EV_SOCKET,   /* a socket that was already open when capture began */
	/* Added in 1.2: capture's start-up scan of the node's sockets. */
	TJ_EV_LISTEN,   /* a socket listening at capture start: family, laddr, lport */
	TJ_EV_SCAN,     /* the LISTEN events before it are every listener of the
			   node at capture start; bytes = sockets open then,
			   arg = the scan's duration in microseconds */
	TJ_EV_TAG,      /* (1.2) capture --tag: a connection's origin, read from its SYN:
			   arg = the client's node, offset = its socket id; sock 0,
			   addresses as this (server) side sees them */
	TJ_EV__COUNT
};

/* tid and pid value meaning "not known" (imports from span data have no
 * threads).  0 is never a user thread on Linux, so it is free. */
#define TJ_TID_UNKNOWN 0u
#define TJ_PID_UNKNOWN 0u
#define TJ_FD_UNKNOWN (-1)

/* Event flags. */
#define TJ_EVF_OFFSET_FROM_START 0x1u /* socket predates capture: offsets count from capture start */
#define TJ_EVF_ERROR             0x2u /* the syscall failed: bytes holds -errno */
#define TJ_EVF_PARTIAL           0x4u /* send/recv moved fewer bytes than asked */
#define TJ_EVF_UDP               0x8u /* datagram socket */
#define TJ_EVF_INFERRED          0x10u /* time and thread are the socket's first use (capture --hooks sock: ACCEPT) */
#define TJ_EVF_SEQ_OFFSET        0x20u /* socket predates capture: offset = the TCP sequence number
					  of the byte (32 bits at first sight, counted on in 64) */

/* The largest payload prefix an event may carry. */
#define TJ_PAYLOAD_MAX 256

/* Address family values are Linux's AF_INET (2) and AF_INET6 (10); 0 when
 * unknown.  An IPv4 address sits in the first 4 bytes of the 16. */
struct tj_event {
	uint64_t ts_ns;       /* node-local CLOCK_MONOTONIC, ns */
	uint64_t sock;        /* socket id: unique per node and log (inode) */
	int64_t  bytes;       /* bytes moved; negative = -errno with TJ_EVF_ERROR */
	uint64_t offset;      /* bytes already moved on this socket in this direction */
	uint32_t node;        /* node id */
	uint32_t pid;         /* process (tgid), TJ_PID_UNKNOWN if not known */
	uint32_t tid;         /* thread, TJ_TID_UNKNOWN if not known */
	int32_t  fd;          /* file descriptor, TJ_FD_UNKNOWN if not known */
	uint8_t  type;        /* enum tj_event_type */
	uint8_t  family;      /* AF_INET, AF_INET6 or 0 */
	uint16_t lport;       /* local port, host order */
	uint16_t rport;       /* remote port, host order */
	uint16_t payload_len; /* bytes in payload (0 = none captured) */
	uint32_t flags;       /* TJ_EVF_* */
	uint32_t arg;         /* type-specific: STATE old<<8|new, SHUTDOWN how */
	uint32_t stack_id;    /* 0 = none */
	uint32_t tcp_seq;     /* 0 = not captured */
	uint8_t  laddr[16];
	uint8_t  raddr[16];
	/* Payload prefix of a SEND/RECV.  Points into storage owned by whoever
	 * produced the event (the evlog reader's block buffer, capture's ring
	 * record); valid until the producer's next call. */
	const uint8_t *payload;
};

/* A 32-bit TCP sequence number as a 64-bit stream position: the one
 * nearest to ref (the socket's last position in that direction) that
 * has seq as its low 32 bits, so positions go on counting past a wrap of
 * the sequence.  Never below 0: a seq just "before" a small ref is taken
 * as after the next wrap. */
static inline uint64_t tj_seq_unwrap(uint64_t ref, uint32_t seq)
{
	int32_t d = (int32_t)(seq - (uint32_t)ref);
	if (d < 0 && (uint64_t)-(int64_t)d > ref)
		return ref + (uint32_t)d;
	return ref + (uint64_t)(int64_t)d;
}

/* "accept", "send", ... (lower case, as in dump --csv); "?" if unknown. */
const char *tj_event_type_name(unsigned type);
/* Parse a name back; returns TJ_EV_NONE if unknown. */
unsigned tj_event_type_parse(const char *name);

/* Address text in its usual form ("10.0.0.1", "fe80::1"); "" if family 0.
 * buf must hold TJ_ADDR_STRLEN bytes.  Returns buf. */
#define TJ_ADDR_STRLEN 46
char *tj_addr_format(unsigned family, const uint8_t addr[16], char *buf);
/* Parse "10.0.0.1" or "::1" (or "" = unknown).  Sets *family; 0 on
 * success, -1 if the text is not an address. */
int tj_addr_parse(const char *text, unsigned *family, uint8_t addr[16]);

#endif
