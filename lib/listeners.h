/* The listening sockets of a node at capture start (LISTEN events of
 * capture's start-up scan, lib/EVLOG.md), and the question asked of
 * them: did one of them accept this socket?  Shared by the replay (roles
 * of sockets open before capture) and `info` (their counts). */
#ifndef TJ_LISTENERS_H
#define TJ_LISTENERS_H

#include <stddef.h>
#include <stdint.h>
#include "event.h"

struct tj_listener {
	uint8_t family;
	uint16_t port;
	uint8_t addr[16]; /* all zero: any address */
};

struct tj_listeners {
	struct tj_listener *v;
	size_t n, cap;
	uint8_t ports[65536 / 8]; /* ports some listener has: most lookups end here */
};

/* Add the listener a LISTEN event names.  0, or -1 out of memory. */
int tj_listeners_add(struct tj_listeners *l, const struct tj_event *ev);
/* 1 if a listener has this local port and this address or a wildcard
 * (an IPv6 wildcard listener takes IPv4 too), else 0. */
int tj_listeners_match(const struct tj_listeners *l, unsigned family,
		       const uint8_t addr[16], uint16_t port);
void tj_listeners_free(struct tj_listeners *l);

#endif
