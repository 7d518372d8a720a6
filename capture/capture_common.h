/* What capture.bpf.c and the user-side loader share: the ring-buffer
 * record, the configuration the loader writes into .rodata, and the
 * indices of the drop counters.  Included by both sides, so it uses only
 * fixed-width types that vmlinux.h and <stdint.h> both provide under the
 * kernel's names (__u8 ... __u64). */
#ifndef TJ_CAPTURE_COMMON_H
#define TJ_CAPTURE_COMMON_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Same values as enum tj_event_type (lib/event.h); the BPF side cannot
 * include user-space headers, so the loader checks they agree. */
#define TJC_EV_ACCEPT   1
#define TJC_EV_CONNECT  2
#define TJC_EV_SEND     3
#define TJC_EV_RECV     4
#define TJC_EV_CLOSE    5
#define TJC_EV_SHUTDOWN 6
#define TJC_EV_STATE    7
#define TJC_EV_SOCKET   9

/* Same values as TJ_EVF_* (lib/event.h). */
#define TJC_EVF_OFFSET_FROM_START 0x1u
#define TJC_EVF_ERROR             0x2u
#define TJC_EVF_PARTIAL           0x4u
#define TJC_EVF_INFERRED          0x10u
#define TJC_EVF_SEQ_OFFSET        0x20u

#define TJC_PAYLOAD_MAX 256

/* Which programs carry the data path (rodata hooks). */
#define TJC_HOOKS_SYSCALLS 0 /* tracepoint/syscalls/sys_{enter,exit}_* */
#define TJC_HOOKS_SOCK     1 /* tp_btf sock_{send,recv}_length + inet_sock_set_state */

/* Indices of the per-CPU drop counter array (same order as enum
 * tj_drop_reason in lib/evlog.h; slots 2 and 3 are reserved there and
 * nothing here counts them). */
#define TJC_DROP_RINGBUF 0
#define TJC_DROP_MAP     1
#define TJC_DROP__COUNT  4

/* One event as the kernel side hands it over.  payload_len bytes of
 * payload follow the fixed part when the record was reserved with room
 * for them (--payload). */
struct tjc_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 sock;       /* socket inode number */
	__s64 bytes;      /* syscall return value (or arg for non-I/O) */
	__u64 offset;     /* stream offset in this event's direction */
	__u32 pid;        /* tgid, 0 for events not in process context */
	__u32 tid;
	__s32 fd;
	__u32 netns;      /* inode of the socket's network namespace */
	__u8 type;        /* TJC_EV_* */
	__u8 family;      /* AF_INET / AF_INET6 */
	__u16 lport;      /* host order */
	__u16 rport;
	__u16 payload_len;
	__u32 flags;      /* TJC_EVF_* */
	__u32 arg;        /* STATE: old << 8 | new; SHUTDOWN: how */
	__s32 ustack;     /* user stack id in the stacks map, < 0 = none */
	__s32 kstack;     /* kernel stack id, < 0 = none */
	__u8 laddr[16];
	__u8 raddr[16];
	__u8 payload[];
};

/* A send or receive of a socket whose family, ports, addresses and
 * namespace this CPU's ring already carried, in a whole tjc_event SEND or
 * RECV of the same socket: those never change while a connection lives,
 * and leaving them out halves the record (64 bytes with the ring's
 * header: one cache line, against 128).  Its type is TJC_EV_SEND or
 * TJC_EV_RECV | TJC_REC_COMPACT, at the same offset as tjc_event's type;
 * the fields before it are tjc_event's.  Then, when the loader asked for
 * them: payload room (TJC_PAYLOAD_MAX bytes with --payload, payload_len
 * used) and, with --stack, struct tjc_stack_tail.  capture/ring_record.c
 * makes whole tjc_event records of them again. */
#define TJC_REC_COMPACT 0x80u
struct tjc_data {
	__u64 ts_ns;
	__u64 sock;
	__s64 bytes;
	__u64 offset;
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u32 flags;      /* TJC_EVF_* (where tjc_event has netns) */
	__u8 type;        /* TJC_EV_SEND or TJC_EV_RECV, | TJC_REC_COMPACT */
	__u8 pad;
	__u16 payload_len;
	__u32 pad2;
	__u8 payload[];
};

/* Batches (capture.bpf.c batch_add): a CPU's compact records are staged
 * and go to its ring together, as one ring record of up to
 * TJC_BATCH_MAX tjc_data records back to back (each its full size with
 * these settings' tails), at most TJC_BATCH_BYTES; a batch goes out
 * when full, when its first record is TJC_BATCH_AGE_NS old at the next
 * record, or when user space flushes it (every drain). */
#define TJC_BATCH_BYTES  16384
#define TJC_BATCH_MAX    64
#define TJC_BATCH_AGE_NS 2000000ull
#define TJC_BATCH_CPUS   256 /* CPUs whose batch user space sees filled */

/* Per CPU, in the kernel side's .bss (batch_pending): the time of its
 * batch's first record, 0 while the batch is empty.  A cache line each. */
struct tjc_batch_mark {
	__u64 first_ts;
	__u64 pad[7];
};

/* Lanes (capture.bpf.c lane_add): without --payload and --stack, a CPU's
 * compact records are written straight into its lane, one element per
 * CPU of the BPF_F_MMAPABLE array `lanes`, which user space maps and
 * reads in place: no copy into the ring, no flush.  A ring of
 * TJC_LANE_SLOTS tjc_data slots of which the first lane_slots are used
 * (a power of two the loader sizes from --ring-kb); head (records
 * written, kernel side) and tail (records read, user space) count
 * records and never wrap; a record's slot is head % lane_slots.  Each
 * side's words on their own cache line: the kernel side reads tail only
 * when its cached copy says the lane is full, and then only every
 * TJC_LANE_RELOOK-th record (the others go the batch's way).  A full or
 * busy lane sends the record the batch's way (into the ring). */
#define TJC_LANE_RELOOK 64u  /* a power of two */
#define TJC_LANE_SLOTS 4096u /* a power of two; 224 KiB of records */
struct tjc_lane {
	__u64 head;       /* written by the kernel side (release) */
	__u64 busy;       /* 1 while a program fills a slot */
	__u64 tail_seen;  /* the kernel side's last look at tail */
	__u64 spilled;    /* records sent the batch's way while full */
	__u64 pad0[4];
	__u64 tail;       /* written by user space after reading (release) */
	__u64 pad1[7];
	struct tjc_data slot[TJC_LANE_SLOTS];
};

/* --stack: which stacks (rodata stack_mode bits), and the frames kept
 * per stack (the deepest callers of a deeper stack are cut). */
#define TJC_STACK_USER   0x1u
#define TJC_STACK_KERNEL 0x2u
#define TJC_STACK_DEPTH  64

/* --stack with user stacks: every record carries this tail, after the
 * payload room (sizeof(struct tjc_event) + (payload_max ? TJC_PAYLOAD_MAX
 * : 0)).  A libc wrapper (write, read, send...) keeps no frame, so the
 * frame-pointer unwinder skips the function that called it; the return
 * address that function left is on the user stack just above the
 * wrapper's sp.  The kernel side copies the top words of the user stack
 * and the syscall's ip; user space finds among the words the return
 * address whose call leads to the function holding ip (stackrec.c).
 * ip 0: not taken (not in the calling task, or no user stack). */
#define TJC_CALLER_WORDS 8
struct tjc_caller {
	__u64 ip;                     /* user ip at the syscall */
	__u64 word[TJC_CALLER_WORDS]; /* user stack from sp up */
};

/* The stack tail of a tjc_data record (--stack): its stack ids, and the
 * caller words with user stacks (ip 0 otherwise). */
struct tjc_stack_tail {
	__s32 ustack;
	__s32 kstack;
	struct tjc_caller caller;
};

/* Filter modes of the pid filter (rodata filter_pid_mode). */
#define TJC_PIDS_ALL    0 /* every process but capture itself */
#define TJC_PIDS_LISTED 1 /* only tgids in the pids map */
#define TJC_PIDS_FOLLOW 2 /* listed, and children forked by listed ones join */

#endif
