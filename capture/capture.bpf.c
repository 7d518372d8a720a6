// SPDX-License-Identifier: GPL-2.0
/* Kernel side of `tracejoin capture`: one event per socket call on a TCP
 * socket (IPv4/IPv6), built on tracepoints and tp_btf only (no kprobes,
 * no fentry).  Two hook sets, one skeleton: the loader attaches one set
 * (rodata `hooks` says which) and the programs both need.
 *
 *   bpf/shared.bpf.h         settings, maps, socket state, emit()
 *   bpf/syscall_hooks.bpf.h  syscall tracepoints (TJC_HOOKS_SYSCALLS)
 *   bpf/sock_hooks.bpf.h     socket-layer tp_btf (TJC_HOOKS_SOCK)
 *   this file                the programs both sets attach
 *
 * The loader (loader.c) names every program by its skeleton handle and
 * says which set it belongs to: a program added here must be added there. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "capture_common.h"
#include "bpf/shared.bpf.h"
#include "bpf/syscall_hooks.bpf.h"
#include "bpf/sock_hooks.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- kernel socket state ---- */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, struct sock *sk, int oldstate, int newstate)
{
	if (!capture_armed() || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (hooks == TJC_HOOKS_SOCK)
		return sock_set_state(ctx, sk, oldstate, newstate);
	return syscall_set_state(sk, oldstate, newstate);
}

/* Every TCP socket ends here, once: its entry goes (with the sock hooks
 * this is the only place that forgets sockets), and a close() of a socket
 * that was already reset, which changes no state, is told. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_destroy, struct sock *sk)
{
	struct sockst *st = st_get(sk);

	if (!st)
		return 0;
	if (hooks == TJC_HOOKS_SOCK && !(st->flags & SOCKF_RELEASED))
		sock_destroyed(sk, st);
	st_del(sk);
	return 0;
}

/* ---- batches ---- */

/* Run by user space on each CPU (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_RUN_ON_CPU, an IPI): that CPU's partial batch goes out.
 * Returns 1 when the batch was taken (user space tries again). */
SEC("raw_tp")
int flush_batch(void *ctx)
{
	__u32 zero = 0, cpu = bpf_get_smp_processor_id();
	struct batch *b = bpf_map_lookup_elem(&batches, &zero);
	void *ring = bpf_map_lookup_elem(&rings, &cpu);

	if (!b || !ring)
		return 0;
	if (__sync_val_compare_and_swap(&b->busy, 0, 1) != 0)
		return 1;
	batch_send(ring, b);
	b->busy = 0;
	return 0;
}

/* ---- following a command's processes ---- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	__u8 one = 1;

	if (pid_mode != TJC_PIDS_FOLLOW || ptgid == ctgid)
		return 0;
	if (bpf_map_lookup_elem(&pids, &ptgid) &&
	    bpf_map_update_elem(&pids, &ctgid, &one, BPF_ANY))
		count_drop(TJC_DROP_MAP);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_proc_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	/* The group leader leaving ends the process for our purposes. */
	if (pid_mode == TJC_PIDS_FOLLOW && tgid == (__u32)id)
		bpf_map_delete_elem(&pids, &tgid);
	return 0;
}
