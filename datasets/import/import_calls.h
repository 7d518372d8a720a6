/* Private to the Jaeger importer: the table of calls that the span
 * reader (import_jaeger.c) fills and the mapper (import_map.c) turns into
 * socket events and labels.  A call is one request/response exchange over
 * one connection use: its client side on the caller, its server side on
 * the callee, either of which may lie outside the dataset. */
#ifndef TJ_IMPORT_CALLS_H
#define TJ_IMPORT_CALLS_H

#include <stdint.h>
#include "import.h"
#include "../../lib/u64map.h"

enum tj_ep_kind {
	TJ_EP_NODE = 0,   /* a service (instance) of the traces: gets a log */
	TJ_EP_OUTSIDE,    /* whoever sent the root requests (load generator) */
	TJ_EP_PEER,       /* a callee no server span shows (unsampled, a database) */
};

struct tj_ep {
	char *name;
	uint8_t kind;     /* enum tj_ep_kind */
	uint32_t id;      /* node id (TJ_EP_NODE) or rank among its kind, set by the mapper */
};

struct tj_call {
	uint64_t c_start, c_end;  /* client side (caller's clock), ns */
	uint64_t s_start, s_end;  /* server side (callee's clock), ns */
	uint32_t caller, callee;  /* endpoint indices */
	int64_t parent;           /* call whose server request caused this one, -1 none */
	/* set by the mapper */
	uint64_t conn;            /* connection index */
	uint64_t req_off, resp_off;
};

struct tj_jaeger {
	struct tj_jaeger_opts opts;
	struct tj_jaeger_stats st;
	struct tj_ep *eps;
	size_t neps, capeps;
	struct tj_u64map ep_index;  /* hash of name -> first endpoint with that hash */
	struct tj_call *calls;
	size_t ncalls, capcalls;
};

/* Index of the endpoint of this kind and name, added if new; -1 if out of memory. */
int64_t tj_jaeger_endpoint(struct tj_jaeger *j, unsigned kind, const char *name);

static inline int tj_ep_is_node(const struct tj_jaeger *j, uint32_t ep)
{
	return j->eps[ep].kind == TJ_EP_NODE;
}

#endif
