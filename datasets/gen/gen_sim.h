/* The generator's simulation state, shared by gen_sim.c, gen_emit.c,
 * gen_conn.c, gen_service.c and gen_run.c (nothing outside datasets/).
 *
 * Time is one true clock in ns (sim->now); each node maps it to its own
 * monotonic clock when an event is written.  Everything a real capture
 * records is a syscall made by a thread at sim->now, so each node's
 * events come out in time order with nothing buffered but in-flight
 * work. */
#ifndef TJ_GEN_SIM_H
#define TJ_GEN_SIM_H

#include <stdint.h>
#include <gsl/gsl_rng.h>
#include "gen.h"
#include "../../lib/evlog.h"
#include "../../lib/edges.h"
#include "../../lib/stacks.h"
#include "../../lib/u64map.h"

/* Calls outstanding on one pipelined connection; more wait for a slot. */
#define GEN_PIPE_MAX 64

struct sim;
/* A timed callback.  For tasks run by an executor, arg is the thread. */
typedef void (*sim_fn)(struct sim *s, void *obj, uint64_t arg);

struct sim_ev {
	uint64_t t, seq;
	sim_fn fn;
	void *obj;
	uint64_t arg;
};

struct noderun {
	const struct gen_node_spec *spec;
	uint32_t id;
	struct tj_evlog_writer *w;
	double mono_base;    /* local monotonic ns at true time 0 */
	double rate;         /* 1 + drift */
	uint64_t next_sock;  /* socket ids: a counter, like inode numbers */
	uint32_t next_pid;   /* pids and tids share one counter, as on Linux */
	uint32_t next_port;  /* ephemeral ports, 32768..60999 */
	/* capture loss: bursts of dropped events */
	double loss_start;   /* chance a burst starts at an event */
	uint64_t burst_left;
	uint64_t lost_pending; /* dropped since the last written event */
	uint64_t events, lost;
	/* ports this node's log shows accepting: replay takes a socket on one
	 * as a server even when its accept was lost */
	uint8_t listening[65536 / 8];
	/* gen --stacks: a synthetic stack per call site (gen_emit.c) */
	struct tj_stacks stacks;
	struct tj_u64map site_ids;  /* hash of a site's name -> stack id */
	struct tj_u64map site_maps; /* pid << 32 | stack id: mapped in pid */
};

struct proc {
	struct noderun *node;
	uint32_t pid;
	uint64_t *fdbits;    /* open fds, for lowest-free allocation */
	uint32_t fdwords;
};

struct exec;
struct thr {
	uint32_t tid;
	struct exec *ex;
};

struct task {
	sim_fn fn;
	void *obj;
	struct task *next;
};

/* An executor: threads and a FIFO of tasks waiting for a free one.  An
 * event loop is an executor with one thread; a worker pool has several;
 * a thread-per-connection server gives each connection its own. */
struct exec {
	struct proc *proc;
	struct thr *thr;
	struct thr **free;
	int n, nfree;
	struct task *head, *tail;
	/* a task finding several threads free runs on one drawn at random
	 * (goroutine: Go's scheduler does not keep a goroutine on the thread
	 * that readied it); else on the one freed last */
	uint8_t pick_random;
};

struct conn;
struct call;
struct job;

/* One end of a TCP connection.  node == NULL: an end outside the capture
 * (an external client), which moves bytes but records nothing. */
struct end {
	struct conn *c;
	struct noderun *node;
	struct proc *proc;
	uint64_t sock;
	int32_t fd;
	uint8_t family;
	uint8_t is_client;
	uint16_t lport, rport;
	uint8_t laddr[16], raddr[16];
	uint64_t off[2];        /* bytes moved by syscalls, by enum tj_dir */
	/* sending one message */
	uint64_t tx_left;
	uint32_t tx_first;      /* size of the first write (headers) */
	uint32_t tx_chunk;
	struct thr *tx_thr;
	sim_fn tx_done;
	void *tx_obj;
	double tx_lat;          /* this message's one-way delay */
	uint64_t arrive_last;   /* when the last byte we sent reaches the peer */
	/* receiving */
	uint64_t rx_avail;      /* arrived, not yet read */
	uint64_t rx_left;       /* bytes of the expected message not yet read */
	/* pipelined connections: sizes of the messages expected after it,
	 * and that the next read starts a message */
	uint32_t rxq[GEN_PIPE_MAX];
	uint8_t rxq_h, rxq_n, rx_fresh;
	uint8_t rx_wait;        /* the owner is waiting to read */
	uint8_t rx_sched;       /* a read is scheduled or queued */
	uint8_t eof;            /* the peer's FIN arrived */
	uint8_t closed;
	uint32_t rbuf;
	struct thr *rd_thr;     /* blocking reader: its held thread */
	struct exec *rd_ex;     /* non-blocking reader: the executor to run on */
	void (*on_msg)(struct sim *s, struct end *e, struct thr *t);
	/* messages as the capture shows them (after loss) */
	uint8_t obs_dir;        /* 0 none yet, else 1 + dir of the last kept data */
	uint64_t obs_off[2];    /* offset of the current observed message */
	uint64_t obs_next[2];   /* offset just past the last kept byte */
	uint64_t obs_last;      /* true time of the last kept data event */
	uint8_t role_seen;      /* the log shows which side this end is */
	uint8_t req_kept;       /* server: a byte of the current request was kept */
	uint64_t req_obs_off;   /* ... and the observed message holding it */
};

struct pool;
struct svcrun;

struct conn {
	struct end cl, sv;
	struct svcrun *callee;
	struct pool *pool;      /* NULL: a connection per call */
	struct call *call;      /* the call using it now */
	struct job *job;        /* the request its server side handles now */
	struct exec *own;       /* thread-per-connection: its thread */
	struct exec *cl_io;     /* async caller: the loop its replies are read on */
	struct conn *next;      /* idle list / all list of a pool */
	struct conn *all_next;
	uint64_t idle_epoch;    /* times it went idle; tells stale timeouts */
	uint32_t timers;        /* idle timeouts queued: not freed before they fire */
	uint8_t idle;           /* in its pool's idle list */
	/* pipelined: calls outstanding, oldest first (linked by next), the
	 * first not yet written, the next the server will take, and whether
	 * a write is under way (connecting, or a request going out) */
	struct call *pq_head, *pq_tail, *pq_unsent, *pq_server;
	int pq_n;
	uint8_t pq_busy;
	uint8_t pq_first;       /* the next write is a call's first */
};

struct pool {
	uint8_t policy;
	int k, n;
	struct conn *idle;      /* LIFO, as most client pools reuse the warmest */
	struct call *wait_head, *wait_tail;
	struct conn *all;       /* every open connection (closed at the end) */
	struct thr *closer;     /* closes idle connections (timeout, end) */
	uint64_t idle_ns;       /* idle timeout, 0 = never */
	uint8_t idle_cap;       /* k caps the idle list only: never wait */
	uint8_t chained;        /* a loop reading a reply writes the next queued call */
	uint8_t pipelined;      /* shared: several calls outstanding on one connection */
	struct conn *pipe;      /* pipelined: the connection */
	int nidle;              /* connections in the idle list */
	struct pool *next;
};

struct svcrun {
	const struct gen_service *spec;
	int idx;
	struct noderun *node;
	struct proc *proc;
	uint8_t blocking;       /* thread and pool models block on calls */
	struct exec *acceptor;
	struct exec **loops;    /* pool: I/O threads; async: event loops */
	int nloops, next_loop;
	struct exec *workers;   /* pool workers; coroutine threads */
	struct exec *executor;  /* thread/pool: threads that run parallel calls */
	struct pool **pools;    /* by callee service */
};

/* A request being handled by a service (or a background activity). */
struct job {
	struct svcrun *svc;
	const struct gen_endpoint *ep;
	struct conn *conn;      /* its server-side connection */
	struct thr *thr;        /* the thread running it now */
	struct exec *ex;        /* where it resumes (non-blocking models) */
	int step, end_step;
	int pending;            /* parallel calls outstanding */
	uint8_t req_kept;
	uint64_t req_obs_off;
};

/* One client request and its response. */
struct call {
	struct job *parent;     /* request that caused it; NULL: no parent */
	struct job *job;        /* the job waiting for it (NULL for roots) */
	struct svcrun *from;    /* caller service (NULL: external/agent) */
	struct proc *proc;      /* caller process (NULL: external) */
	struct noderun *node;   /* caller node (NULL: external) */
	uint32_t ext_client;    /* external caller: which client address */
	const struct gen_endpoint *ep;
	struct svcrun *to;
	struct pool *pool;
	struct conn *conn;
	struct thr *thr;        /* blocking caller: its held thread */
	struct exec *ex;        /* non-blocking caller: where it resumes */
	uint8_t blocking;
	uint8_t kind;           /* CALL_* */
	int step;               /* CALL_SERVICE: its step in the spec */
	void (*done)(struct sim *s, struct call *c, struct thr *t);
	/* node: the handler issues its calls one after another itself; once
	 * this call is written, queued or connecting, the handler's thread
	 * issues issue_next (or is released) */
	uint8_t inline_issue;
	struct call *issue_next;
	void *ctx;
	struct call *next;      /* pool wait queue; a pipelined connection's calls */
};

enum { CALL_SERVICE, CALL_ROOT, CALL_BACKGROUND };

struct sim_obj;

struct sim {
	const struct gen_spec *spec;
	const struct gen_opts *opts;
	gsl_rng *rng;
	struct tj_err *err;
	int failed;
	uint64_t now;
	struct sim_ev *heap;
	size_t nheap, capheap;
	uint64_t seq;
	struct noderun nodes[GEN_MAX_NODES];
	struct svcrun svcs[GEN_MAX_SERVICES];
	struct pool *pools;     /* every pool, for closing at the end */
	struct sim_obj *live;   /* calls, jobs, connections not yet freed */
	struct pool *entry_pool;
	uint32_t ext_port[256]; /* external clients' next ephemeral ports */
	struct tj_edges_writer labels;
	struct gen_stats *st;
	/* arrivals */
	uint64_t roots_target;
	uint64_t stop_ns;       /* --duration: no arrival after this */
	int stopping;           /* no new roots or background calls */
	uint64_t roots_open;
};

/* ---- gen_sim.c ---- */
void sim_at(struct sim *s, uint64_t t, sim_fn fn, void *obj, uint64_t arg);
int sim_pop(struct sim *s, struct sim_ev *ev);
double sim_uniform(struct sim *s, double lo, double hi);
uint64_t sim_syscall_ns(struct sim *s, uint64_t bytes);
/* A thread of node n becomes runnable now: how long until it runs. */
uint64_t sim_wake_ns(struct sim *s, const struct noderun *n);
/* The node's own scheduling latency alone (0 without `wake`): paid by a
 * wake-up, and by a `work` step's end (preempted or sleeping, the thread
 * must be scheduled again). */
uint64_t sim_sched_ns(struct sim *s, const struct noderun *n);
/* One wake-up's extra latency is cut here, so a heavy tail cannot stall
 * a run. */
#define GEN_MAX_WAKE_NS 1e9
uint64_t sim_local_ts(const struct noderun *n, uint64_t now);
struct proc *proc_new(struct sim *s, struct noderun *n);
void proc_free(struct proc *p);
int32_t proc_fd_alloc(struct sim *s, struct proc *p);
void proc_fd_free(struct proc *p, int32_t fd);
uint32_t node_tid(struct noderun *n);
struct exec *exec_new(struct sim *s, struct proc *p, int nthreads, int main_thread);
void exec_free(struct exec *ex);
void exec_submit(struct sim *s, struct exec *ex, sim_fn fn, void *obj);
void exec_release(struct sim *s, struct thr *t);
/* Queue a task to run next on ex, ahead of the others (ex is busy). */
void exec_push_front(struct sim *s, struct exec *ex, sim_fn fn, void *obj);
void *sim_alloc(struct sim *s, size_t n);
/* The objects of a request's life (calls, jobs, connections) carry a
 * link in a list of live ones, so that a run that stops early (an error,
 * the event limit) with them still in flight frees them too. */
void *sim_obj_new(struct sim *s, size_t n);
void sim_obj_free(void *p);
void sim_obj_free_all(struct sim *s);
static inline struct thr *arg_thr(uint64_t arg) { return (struct thr *)(uintptr_t)arg; }
static inline uint64_t thr_arg(struct thr *t) { return (uint64_t)(uintptr_t)t; }

/* ---- gen_emit.c ---- */
/* Record a syscall of thread t at end e now.  Returns 1 if the event was
 * kept (not lost), and for SEND/RECV sets *new_msg when it starts a
 * message as the capture shows it. */
int emit(struct sim *s, struct end *e, struct thr *t, uint8_t type,
	 int64_t bytes, int dir, uint32_t flags, int *new_msg);
void emit_label(struct sim *s, struct call *c);
int emit_finish(struct sim *s);
/* gen --stacks: write each node's stacks block (before its log closes). */
int emit_stacks(struct sim *s);

/* ---- gen_conn.c ---- */
struct pool *pool_new(struct sim *s, uint8_t policy, int k, uint64_t idle_ns);
/* Get a connection for c (may wait) and send its request. */
void call_start(struct sim *s, struct call *c, struct thr *t);
/* Write a message of size bytes from e on thread t, in writes of at most
 * chunk bytes (headers apart with chance split); done(obj, t) runs after
 * the last write returned. */
void end_send(struct sim *s, struct end *e, struct thr *t, uint64_t size,
	      uint32_t chunk, double split, sim_fn done, void *obj);
/* Pipelined connections: the peer of e will send a message of size
 * bytes, after those e is still expecting. */
void end_expect(struct end *e, uint64_t size);
/* The owner of e waits to read (the next message, or EOF). */
void end_wait(struct sim *s, struct end *e);
/* Close every idle pooled connection (end of the run). */
void conns_close_idle(struct sim *s);

/* ---- gen_service.c ---- */
/* Server end of a new connection: choose its reader per model. */
void svc_accepted(struct sim *s, struct conn *c, struct thr *t);
/* A whole request was read on c's server end by thread t. */
void svc_request(struct sim *s, struct conn *c, struct thr *t);
/* The server end of c became idle: read the next request or EOF. */
void svc_reader(struct sim *s, struct conn *c);
/* node: one callback's loop time (0 without callback-cost: no draw). */
uint64_t svc_cb_cost(struct sim *s, const struct svcrun *r);
const struct gen_endpoint *svc_pick_endpoint(struct sim *s, struct svcrun *to, int ep);
int svc_setup(struct sim *s, struct svcrun *r, int idx);

#endif
