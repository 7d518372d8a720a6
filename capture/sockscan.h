/* Capture's start-up scan: the TCP sockets of every network namespace
 * at the moment capture begins, read from the kernel with netlink
 * sock_diag (what `ss -tl` reads).  The listening ones go into each log
 * as LISTEN events (lib/EVLOG.md), followed by one SCAN event, so that
 * the replay can tell the server end from the client end of the
 * connections that were already open (replay/README.md, "Roles"). */
#ifndef TJ_CAPTURE_SOCKSCAN_H
#define TJ_CAPTURE_SOCKSCAN_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/error.h"

struct tj_sockscan_listener {
	uint32_t netns;   /* inode of its network namespace */
	uint8_t family;   /* AF_INET or AF_INET6 (v4-mapped addresses as AF_INET) */
	uint16_t port;    /* local port, host order */
	uint8_t addr[16]; /* local address; all zero = any */
	uint64_t inode;   /* the listening socket's inode */
};

struct tj_sockscan_ns {
	uint32_t netns;   /* namespace inode */
	uint64_t open;    /* TCP sockets neither listening nor in TIME_WAIT */
	uint64_t listening;
};

struct tj_sockscan {
	struct tj_sockscan_listener *listeners;
	size_t nlisteners, caplisteners;
	struct tj_sockscan_ns *ns;
	size_t nns, capns;
	uint64_t ts_ns;   /* CLOCK_MONOTONIC when the scan began */
	uint64_t dur_ns;  /* how long it took */
	uint64_t open;    /* open sockets over all namespaces */
	unsigned ns_failed; /* namespaces that could not be entered (gone meanwhile) */
};

/* Scan the network namespaces of the npids processes pids, or, when
 * npids is 0, every one that a process or /run/netns names.  Needs
 * CAP_SYS_ADMIN to enter other namespaces (one it cannot enter is counted
 * in ns_failed).  0, or an error naming what failed. */
int tj_sockscan_run(struct tj_sockscan *s, const uint32_t *pids, size_t npids,
		    struct tj_err *err);
/* The namespace's counters, or NULL if the scan did not see it. */
const struct tj_sockscan_ns *tj_sockscan_ns_find(const struct tj_sockscan *s,
						 uint32_t netns);
void tj_sockscan_free(struct tj_sockscan *s);

#endif
