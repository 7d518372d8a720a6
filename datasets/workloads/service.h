/* tj-service internals: the service's configuration and counters, the
 * blocking downstream client (thread and pool models), the two runtimes. */
#ifndef TJW_SERVICE_H
#define TJW_SERVICE_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "http.h"

#define SVC_MAX_DS    8    /* downstream calls per request (< TJ_TP_MAX_CALLS) */
#define SVC_MAX_POOL  64   /* keepalive connections per downstream */
#define SVC_MAX_CONNS 4096 /* inbound connections at once */

/* MODEL_MN: the epoll model's state machine run by a small pool of OS
 * threads (svc_epoll.c), so a request's steps land on any of them. */
enum model { MODEL_THREAD, MODEL_POOL, MODEL_EPOLL, MODEL_MN };
/* CONN_PIPELINED: one connection per downstream carrying several requests
 * at once, replies in order (HTTP/1.1 pipelining; epoll and mn models). */
enum policy { CONN_NEW, CONN_POOL, CONN_SHARED, CONN_PIPELINED };

struct downstream {
	char name[32];
	char host[64];          /* "ADDR:PORT", the Host header */
	struct sockaddr_in sa;
	pthread_mutex_t mu;     /* thread models: the idle pool */
	pthread_cond_t cv;
	int idle[SVC_MAX_POOL];
	int nidle, open;
};

struct svc {
	char role[32];
	struct sockaddr_in listen;
	struct downstream ds[SVC_MAX_DS];
	int nds;
	int model, policy, pool_k, parallel, workers;
	int idle_cap;           /* pool: K caps idle connections only (nginx keepalive K) */
	uint64_t work_ns, req_bytes, resp_bytes, seed;
	int lfd, stopfd;
	atomic_int stop;
	atomic_ullong served, no_tp, calls, call_errors, bad_requests;
	/* pipelined calls whose first byte went out in the same run of
	 * writes as the call before it: one message on the wire (DESIGN.md),
	 * so one label for the two */
	atomic_ullong joined;
	void *rt; /* the runtime's state */
};

void svc_init(struct svc *s);
void svc_free(struct svc *s);

/* The trace context of one inbound request: its trace and server span
 * (label.h's rule), or fresh ones when the request carried none. */
struct req_ctx {
	uint64_t trace_hi, trace_lo, span;
};
void svc_req_ctx(struct svc *s, const struct http_head *h, uint64_t *rng,
		 struct req_ctx *rc);
/* The traceparent of call i of a request. */
void svc_call_tp(const struct req_ctx *rc, unsigned i, struct tj_traceparent *tp);

/* Blocking: make every downstream call of a request (in turn or at once),
 * count them.  Returns 0 if all succeeded. */
int svc_do_calls(struct svc *s, const struct req_ctx *rc);
/* Blocking: handle one parsed request read from fd (service time, calls,
 * response).  Returns 0, or -1 if the response could not be written. */
int svc_handle(struct svc *s, const struct http_head *h, int fd, uint64_t *rng);

int svc_threads_start(struct svc *s);
void svc_threads_stop(struct svc *s);
int svc_epoll_start(struct svc *s);
void svc_epoll_stop(struct svc *s);

#endif
