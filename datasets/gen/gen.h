/* tracejoin gen: the scenario generator's internal interface.
 *
 * A scenario spec (datasets/gen/scenarios/README.md) is parsed into a struct
 * gen_spec; gen_run() simulates it as a discrete-event system and streams
 * what `tracejoin capture` would have recorded on each node into
 * node-N.evlog files, with the ground truth in labels.csv.
 *
 * Files, one job each:
 *   gen_dist.c     distributions and quantities (durations, sizes)
 *   gen_spec.c     the spec parser and its checks (file:line: reason)
 *   gen_builtin.c  the built-in scenarios (embedded .scn files) and loads
 *   gen_sim.c      event queue, clocks, processes, threads, executors
 *   gen_conn.c     connections: pools, syscall splitting, byte streams
 *   gen_service.c  request handling under each concurrency model
 *   gen_emit.c     event records, capture loss, observed messages, labels
 *   gen_run.c      arrivals, background noise, the run from start to end
 */
#ifndef TJ_GEN_H
#define TJ_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>
#include "../../lib/error.h"

/* ---- distributions (gen_dist.c) ---- */

enum gen_unit { GEN_UNIT_TIME, GEN_UNIT_SIZE, GEN_UNIT_NUMBER };

enum gen_dist_kind {
	GD_CONST, GD_EXP, GD_UNIFORM, GD_NORMAL, GD_LOGNORMAL, GD_PARETO,
};

/* Values in ns (time) or bytes (size). */
struct gen_dist {
	uint8_t kind;
	double a, b; /* const: a; exp: mean a; uniform: [a,b]; normal: mean a,
		      * sd b; lognormal: median a, sigma b; pareto: scale a,
		      * shape b */
};

/* Parse "exp(2ms)", "uniform(100,2000)", "5ms"; NULL on success, else
 * the reason. */
const char *gen_dist_parse(const char *text, enum gen_unit unit,
			   struct gen_dist *d);
/* A sample, never negative. */
double gen_dist_sample(const struct gen_dist *d, gsl_rng *r);
/* The distribution's mean (for sanity checks and --list). */
double gen_dist_mean(const struct gen_dist *d);
/* "1.5ms" -> 1500000 (ns), "16K" -> 16384, "0.25" -> 0.25.  NULL on
 * success, else the reason. */
const char *gen_quantity_parse(const char *text, enum gen_unit unit,
			       double *out);

/* ---- the spec (gen_spec.c) ---- */

#define GEN_NAME_MAX 48
#define GEN_MAX_NODES 32
#define GEN_MAX_SERVICES 64
#define GEN_MAX_ENDPOINTS 256
#define GEN_REQUESTS_MAX 1000000000 /* root requests, spec or --requests */
#define GEN_MAX_STEPS 2048
#define GEN_MAX_POLICIES 256
#define GEN_MAX_BACKGROUND 64
#define GEN_MAX_DEPTH 16      /* longest call chain */
#define GEN_MAX_THREADS 1024  /* per executor */
#define GEN_MAX_LINE 1024

/* node: an async loop whose handler issues its calls itself, at once
 * (Node.js); goroutine: coroutine threads picked at random, with a call's
 * write and its reply's handler as tasks of their own (Go's net/http). */
enum gen_model { GM_THREAD, GM_POOL, GM_ASYNC, GM_COROUTINE, GM_NODE, GM_GOROUTINE,
		 GM__COUNT };
enum gen_policy { GP_NEW, GP_POOL, GP_SHARED };
enum gen_arrival { GA_POISSON, GA_UNIFORM, GA_CLOSED };
enum gen_step_kind { GS_WORK, GS_CALL, GS_PARALLEL, GS_WAIT };
enum gen_bg_where { GB_SERVICE, GB_NODE, GB_EXTERNAL };
enum gen_load { GEN_LOAD_LOW, GEN_LOAD_MEDIUM, GEN_LOAD_HIGH, GEN_LOAD__COUNT };

struct gen_node_spec {
	uint32_t id;
	char name[GEN_NAME_MAX];
	uint8_t family;
	uint8_t addr[16];
	double clock_offset_ns; /* wall clock error of this node */
	double drift_ppm;       /* clock rate error */
	double loss;            /* fraction of events lost */
	double burst;           /* mean events per loss burst */
	/* scheduler latency added to every wake-up of a thread on this node
	 * (a read completed, a hand-off, a timer): wake, or with chance
	 * wake_tail_p the heavy tail wake_tail.  has_wake = 0: none (and no
	 * random draws, so older specs give the same bytes). */
	uint8_t has_wake;
	struct gen_dist wake, wake_tail;
	double wake_tail_p;
	/* captured no: the node runs and answers, but writes no log (a
	 * service outside the captured set: an external API, a database on
	 * another host); calls to it have only their client side. */
	uint8_t uncaptured;
	int line;
};

struct gen_step {
	uint8_t kind;          /* enum gen_step_kind */
	struct gen_dist work;  /* GS_WORK, GS_WAIT */
	int svc, ep;           /* GS_CALL: target service, endpoint (-1 = by weight) */
	double prob;           /* GS_CALL: probability the call is made */
	int first, n;          /* GS_PARALLEL: its calls are steps [first, first+n) */
	uint8_t inline_first;  /* GS_PARALLEL: the request's thread makes the first call */
	int line;
};

struct gen_endpoint {
	char name[GEN_NAME_MAX];
	int svc;
	double weight;
	struct gen_dist req, resp; /* message sizes */
	int first, n;              /* top-level steps [first, first+n) */
	int line;
};

struct gen_service {
	char name[GEN_NAME_MAX];
	int node;                 /* index into nodes[] */
	uint16_t port;
	uint8_t model;            /* enum gen_model */
	int threads;              /* pool workers, event loops, coroutine threads */
	int io_threads;           /* pool: reader threads */
	int executor;             /* thread/pool: threads running parallel calls */
	uint32_t read_buf;        /* bytes one read asks for */
	uint32_t write_chunk;     /* largest single write */
	double write_split;       /* chance headers and body go in two writes */
	/* async/node: the loop stops for `stall` every `stall-every` (a
	 * garbage collection, the process descheduled): requests pile up
	 * and drain as a backlog.  has_stall = 0: no draws. */
	uint8_t has_stall;
	struct gen_dist stall, stall_every;
	/* node: loop time of each JavaScript callback (a request's handler,
	 * a call issued, a reply's handler), before its syscalls.
	 * has_cb_cost = 0: none, no draws. */
	uint8_t has_cb_cost;
	struct gen_dist cb_cost;
	double ep_weight;         /* sum of its endpoints' weights */
	int eps[GEN_MAX_ENDPOINTS / 4];
	int neps;
	int line;
};

struct gen_policy_spec {
	int from, to;      /* services; from = -1: external clients (entry) */
	uint8_t policy;    /* enum gen_policy */
	int k;             /* pool size */
	double idle_ns;    /* pool: close a connection idle this long (0 = never) */
	uint8_t idle_cap;  /* pool: K caps idle connections only (nginx keepalive) */
	uint8_t chained;   /* pool/shared: an event loop reading a reply writes
			    * the next queued request at once */
	uint8_t pipelined; /* shared: calls written at once, several outstanding,
			    * replies in order (HTTP/1.1 pipelining) */
	int line;
};

struct gen_background {
	char name[GEN_NAME_MAX];
	uint8_t where;          /* enum gen_bg_where */
	int owner;              /* GB_SERVICE: service; GB_NODE: node index */
	int svc, ep;            /* target */
	struct gen_dist every;  /* delay between the end of one call and the next */
	uint8_t policy;
	int k;
	int line;
};

struct gen_spec {
	char name[GEN_NAME_MAX];
	char describe[160];
	char file[256];             /* where it was read from, for messages */
	uint64_t requests;          /* default root requests */
	double load[GEN_LOAD__COUNT]; /* requests/s (or clients if closed) */
	uint8_t arrival;            /* enum gen_arrival */
	struct gen_dist think;      /* closed loop: think time */
	struct gen_dist lat_remote, lat_local; /* one-way network delay */
	double bandwidth;           /* bytes per ns */
	int entry_svc, entry_ep;
	uint8_t entry_policy;       /* external clients: new or keepalive pool */
	int entry_k;
	double entry_idle_ns;       /* keepalive: idle timeout (0 = never) */
	int entry_clients;          /* distinct external client addresses */
	int nnodes, nservices, neps, nsteps, npolicies, nbg;
	struct gen_node_spec nodes[GEN_MAX_NODES];
	struct gen_service services[GEN_MAX_SERVICES];
	struct gen_endpoint eps[GEN_MAX_ENDPOINTS];
	struct gen_step steps[GEN_MAX_STEPS];
	struct gen_policy_spec policies[GEN_MAX_POLICIES];
	struct gen_background bg[GEN_MAX_BACKGROUND];
};

/* Parse a spec from memory.  name is the file name used in messages
 * ("FILE:LINE: reason").  Returns 0 or a negative tj_errcode. */
int gen_spec_parse(struct gen_spec *s, const char *name, const char *text,
		   size_t len, struct tj_err *err);
/* Read and parse a file (at most 16 MiB; a read error is an error).  With
 * text non-NULL, *text and *len hand the file's bytes to the caller (to
 * hash them; free() it), else they are freed here. */
int gen_spec_load(struct gen_spec *s, const char *path, char **text, size_t *len,
		  struct tj_err *err);
/* The policy from service `from` (-1 external) to `to`. */
const struct gen_policy_spec *gen_spec_policy(const struct gen_spec *s,
					      int from, int to);
const char *gen_model_name(unsigned m);
const char *gen_load_name(unsigned l);

/* ---- built-in scenarios (gen_builtin.c, generated from scenarios/) ---- */

struct gen_builtin {
	const char *name;  /* "threaded" */
	const char *text;  /* the .scn file */
	size_t len;
};
extern const struct gen_builtin gen_builtins[];
extern const size_t gen_nbuiltins;
const struct gen_builtin *gen_builtin_find(const char *name);

/* ---- running (gen_run.c) ---- */

struct gen_opts {
	uint64_t seed;
	double rate;         /* requests/s, or clients for a closed loop */
	uint64_t requests;   /* roots to issue (0 = use duration) */
	double duration_s;   /* seconds of arrivals (0 = use requests) */
	const char *dir;     /* output folder (exists) */
	int force;           /* overwrite files */
	const char *options; /* text for the evlog headers' options field */
	uint64_t max_events; /* stop with an error beyond this many (0 = no limit) */
	int stacks;          /* give events call-site stacks (gen --stacks) */
	int progress;        /* a progress line on stderr once a run is long */
};

/* The largest message the generator makes: a size sample above it is cut
 * to it, so a heavy-tailed size distribution cannot stall a run. */
#define GEN_MAX_MESSAGE (64u << 20)

struct gen_stats {
	uint64_t events;     /* events written, all nodes */
	uint64_t lost;       /* events dropped by simulated capture loss */
	uint64_t roots;      /* root requests issued */
	uint64_t calls;      /* client-side requests made */
	uint64_t labels;     /* rows in labels.csv */
	uint64_t joined;     /* pipelined calls written in the message of the call
			      * before them: part of its message, not labeled */
	uint64_t background; /* calls without a parent */
	uint64_t sim_ns;     /* simulated time */
	uint64_t peak_inflight; /* most timed events queued at once */
};

int gen_run(const struct gen_spec *s, const struct gen_opts *o,
	    struct gen_stats *st, struct tj_err *err);

#endif
