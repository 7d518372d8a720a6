/* Listening sockets of the start-up scan (see listeners.h). */
#include <stdlib.h>
#include <string.h>
#include "listeners.h"
#include "util.h"

int tj_listeners_add(struct tj_listeners *l, const struct tj_event *ev)
{
	if (tj_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
		return -1;
	struct tj_listener *x = &l->v[l->n++];
	x->family = ev->family;
	x->port = ev->lport;
	memcpy(x->addr, ev->laddr, 16);
	l->ports[ev->lport >> 3] |= (uint8_t)(1u << (ev->lport & 7));
	return 0;
}

static int is_zero(const uint8_t a[16])
{
	static const uint8_t zero[16];
	return memcmp(a, zero, 16) == 0;
}

int tj_listeners_match(const struct tj_listeners *l, unsigned family,
		       const uint8_t addr[16], uint16_t port)
{
	if (!(l->ports[port >> 3] & (1u << (port & 7))))
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct tj_listener *x = &l->v[i];
		if (x->port == port && (is_zero(x->addr) ||
		    (x->family == family && memcmp(x->addr, addr, 16) == 0)))
			return 1;
	}
	return 0;
}

void tj_listeners_free(struct tj_listeners *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}
