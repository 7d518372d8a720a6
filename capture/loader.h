/* The BPF side of capture as seen from user space: check that this
 * machine can run it, load and attach capture.bpf.c, drain its ring
 * buffer, read its drop counters. */
#ifndef TJ_CAPTURE_LOADER_H
#define TJ_CAPTURE_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/error.h"
#include "capture_common.h"

struct tj_capture_config {
	uint32_t self_tgid;    /* never traced (capture itself) */
	unsigned pid_mode;     /* TJC_PIDS_* */
	uint64_t cgroup_id;    /* 0 = any */
	uint16_t port;         /* 0 = any */
	uint32_t payload_max;  /* 0..TJC_PAYLOAD_MAX */
	size_t ring_bytes;     /* power of two, >= page size */
	int verbose;           /* pass libbpf's warnings through */
	unsigned stack_mode;   /* TJC_STACK_* bits, 0 = no stacks */
	uint32_t stack_entries; /* stack map size, 0 = default (16384) */
	unsigned hooks;        /* TJC_HOOKS_*: where the data path hooks in */
};

struct tj_capture;

/* Make the machine ready to capture, or say why it cannot: checks the
 * capabilities and BTF, and mounts tracefs at /sys/kernel/tracing if it
 * is not (libbpf finds tracepoint ids there).  TJ_OK, or err filled with
 * a one-line reason. */
int tj_capture_env_prepare(struct tj_err *err);

/* Everything but loading our programs: tj_capture_env_prepare, then
 * whether the kernel lets us load a BPF tracepoint program and has a ring
 * buffer.  Fast; `capture --check` uses it.  *env_problem as below. */
int tj_capture_probe(int *env_problem, struct tj_err *err);

/* Whether this kernel has the socket-layer tracepoints TJC_HOOKS_SOCK
 * needs (sock_send_length and sock_recv_length, Linux 6.4 and later). */
int tj_capture_sock_hooks_available(void);

/* Load and attach.  Returns 0, or a negative tj_errcode; *env_problem is
 * set when the cause is the machine (no rights, no BTF, no tracefs, BPF
 * refused with EPERM) rather than the program. */
int tj_capture_open(struct tj_capture **cp, const struct tj_capture_config *cfg,
		    int *env_problem, struct tj_err *err);

/* Add a tgid to the traced set (pid_mode != TJC_PIDS_ALL). */
int tj_capture_add_pid(struct tj_capture *c, uint32_t tgid, struct tj_err *err);

/* Called for every record; a non-zero return stops the drain and is
 * returned by tj_capture_drain. */
typedef int (*tj_capture_cb)(void *ctx, const struct tjc_event *ev, size_t size);

/* Wait up to timeout_ms for the kernel side to ask for a drain (it only
 * does when the ring fills), then flush every CPU's partial batch into
 * its ring and take every record there is.  Returns
 * the number of records, or a negative value (the callback's, or
 * -TJ_E_IO with err filled). */
int tj_capture_drain(struct tj_capture *c, int timeout_ms, tj_capture_cb cb,
		     void *ctx, struct tj_err *err);

/* Drain another ring buffer (map fd) of tjc_event records with the
 * capture's own (capture --tag's TAG records). */
int tj_capture_add_ring(struct tj_capture *c, int map_fd, struct tj_err *err);

/* Records the ring decoder could not make whole (capture/ring_record.h:
 * of no known layout, or sends/receives of a socket whose addresses never
 * came): 0 unless the kernel side and user space disagree. */
uint64_t tj_capture_undecoded(const struct tj_capture *c);

/* Events lost so far, summed over CPUs, indexed by TJC_DROP_*. */
int tj_capture_drops(struct tj_capture *c, uint64_t drops[TJC_DROP__COUNT],
		     struct tj_err *err);

/* The frames of stack id (an event's ustack, user = 1, or kstack, user =
 * 0), innermost first: returns their number (0 = the id is unknown), or a
 * negative tj_errcode. */
int tj_capture_stack(struct tj_capture *c, int user, int32_t id,
		     uint64_t ips[TJC_STACK_DEPTH], struct tj_err *err);

void tj_capture_close(struct tj_capture *c);

#endif
