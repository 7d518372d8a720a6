/* The epoll runtime's internals (models epoll and mn), shared by the loop
 * (svc_epoll.c) and its pipelined downstream client (svc_pipe.c).  Every
 * function here runs with the runtime's lock held in the mn model. */
#ifndef TJW_SVC_EPOLL_H
#define TJW_SVC_EPOLL_H

#include "service.h"

#define EV_SLOTS  16384 /* sockets registered at once (inbound + downstream) */
#define PIPE_MAX  64    /* calls outstanding on one pipelined connection */

enum tag { TAG_IN = 1, TAG_OUT = 2 };

/* What epoll reports an event for.  The event carries the slot and its
 * generation, not a pointer: in the mn model a thread may hold an event
 * for a socket that another thread closed meanwhile; the generation says
 * so and the event is dropped. */
struct ehdr {
	int tag, fd;
	uint32_t ev, slot; /* events wanted; slot in the runtime's table */
};

struct ereq;

struct inconn {
	struct ehdr h;
	struct ereq *req;          /* the request being handled, or NULL */
	char *out;                 /* reply being written */
	size_t out_len, out_off;
	int close_after;
	struct inconn *prev, *next;
	size_t len;
	char buf[HTTP_BUF];
};

struct pend { /* a call outstanding on a pipelined connection */
	struct ereq *req;
	int di;
	uint64_t start; /* stream offset of its first byte */
};

struct outconn {
	struct ehdr h;
	int di;
	int connecting;
	struct ereq *owner;        /* the request whose call it carries, or NULL (idle) */
	char req[HTTP_BUF];
	size_t req_len, req_off;
	int head_done;
	struct http_head hd;
	size_t body_left;
	struct outconn *prev, *next; /* every open outconn */
	struct outconn *inext;       /* idle list of its downstream */
	/* pipelined: the calls outstanding, oldest first (q[qh..qh+qn)), how
	 * many of them have their first byte sent, the bytes not yet sent
	 * (stream offset `sent` onwards), and whether the last syscall that
	 * moved bytes on the socket was a write (then the next call's bytes
	 * join the same message) */
	struct pend q[PIPE_MAX];
	int qh, qn, qstarted;
	char *sb;
	size_t sb_len, sb_cap;
	uint64_t sent;
	int last_out;
	size_t len;
	char buf[HTTP_BUF];
};

struct waiter { /* a call waiting for a connection */
	struct ereq *req;
	int di;
	struct waiter *next;
};

struct ereq {
	struct inconn *ic;
	struct req_ctx ctx;
	int phase, next_call, pending, failed, close;
	uint64_t due;
	struct ereq *tprev, *tnext;  /* timer list */
};

struct dstate {
	struct outconn *idle;
	int open;
	struct waiter *wq, *wtail;
	struct outconn *pipe;        /* pipelined: the one connection */
};

struct ert {
	struct svc *s;
	int epfd;
	uint64_t rng;
	struct inconn *ins;
	struct outconn *outs;
	struct ereq *timers;
	struct dstate ds[SVC_MAX_DS];
	/* mn: every handler runs under mu; epoll delivers each event once
	 * (EPOLLONESHOT) and the handling thread re-arms it */
	pthread_mutex_t mu;
	uint32_t oneshot;
	int nthreads, stopping;
	pthread_t th[256];
	void *slot_ptr[EV_SLOTS];
	uint32_t slot_gen[EV_SLOTS];
	uint32_t free_slots[EV_SLOTS];
	int nfree;
};

/* Watch h's fd for ev (0: nothing for now). */
void ev_set(struct ert *rt, struct ehdr *h, uint32_t ev);
struct outconn *out_open(struct ert *rt, int di);
void out_close(struct ert *rt, struct outconn *oc);
/* oc's non-blocking connect finished: 0 (connected) or -1 (failed). */
int out_connected(struct outconn *oc);
void waiter_push(struct dstate *d, struct ereq *r, int di);
struct waiter *waiter_pop(struct dstate *d);
/* One call of r is over (ok or not): the request moves on. */
void call_finished(struct ert *rt, struct ereq *r, int ok);

/* svc_pipe.c: the pipelined policy */
void pipe_call(struct ert *rt, struct ereq *r, int di);
void pipe_event(struct ert *rt, struct outconn *oc, uint32_t ev);

#endif
