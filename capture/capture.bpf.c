// SPDX-License-Identifier: GPL-2.0
/* Kernel side of `tracejoin capture`: one event per socket syscall on a
 * TCP socket (IPv4/IPv6), built on syscall tracepoints and tp_btf only
 * (no kprobes, no fentry).
 *
 * The data calls (read, write, send*, recv*, and their vector forms),
 * accept and shutdown are handled at sys_exit alone: the arguments are
 * still in the task's saved user registers, and the fd is resolved
 * through the task's file table there.  Anything but a TCP socket (files,
 * pipes, unix sockets, UDP) is dropped at once and never reaches user
 * space.  connect also has an enter program (its offsets must exist
 * before the handshake completes), close only one (the socket may be gone
 * after it).  Stream offsets live in the socks map, keyed by struct sock
 * pointer, so they stay right when user space loses events.  A socket
 * first seen in the middle of its life (open before capture) gets a
 * SOCKET event and offsets counted from then (TJC_EVF_OFFSET_FROM_START). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "capture_common.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EAGAIN 11
#define MMSG_MAX 1024 /* UIO_MAXIOV: the kernel caps vlen there */
#define MSG_PEEK 2

/* Set by the loader before load. */
const volatile __u32 self_tgid = 0;
const volatile __u32 pid_mode = TJC_PIDS_ALL;
const volatile __u64 cgroup_id = 0;    /* 0 = any cgroup */
const volatile __u16 port_filter = 0;  /* 0 = any port */
const volatile __u32 payload_max = 0;  /* 0 = no payload */
const volatile __u64 wakeup_bytes = 0; /* force a wakeup past this fill */
const volatile __u32 stack_mode = 0;   /* TJC_STACK_USER | TJC_STACK_KERNEL */
const volatile __u32 hooks = TJC_HOOKS_SYSCALLS; /* which programs the loader attached */
/* This architecture's syscall numbers (from the loader's <sys/syscall.h>):
 * the sock hooks read the task's current call to name its fd and buffer. */
const volatile __s64 nr_read = -1, nr_write = -1, nr_recvfrom = -1, nr_sendto = -1;
const volatile __s64 nr_readv = -1, nr_writev = -1, nr_recvmsg = -1, nr_sendmsg = -1;
const volatile __s64 nr_connect = -1, nr_close = -1, nr_shutdown = -1;
const volatile __s64 nr_exit = -1, nr_exit_group = -1;

/* One ring per CPU: a shared ring's reservation lock and producer
 * position bounce between the CPUs that trace, and that was the largest
 * single cost of an event.  The loader makes the rings (it sizes the
 * template and the array) and user space merges them by time. */
struct ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct ring);
} rings SEC(".maps");

/* The ring buffer has no lost counter: failed reserves and full maps are
 * counted here, per CPU, indexed by TJC_DROP_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TJC_DROP__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Call stacks of sends, receives, connects and accepts (--stack): the
 * kernel dedupes them by hash and hands out ids; user space reads the
 * frames once, at the end.  One entry unless the loader sizes it. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, TJC_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

/* tgids to trace when pid_mode != TJC_PIDS_ALL. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

enum call_kind {
	K_BUF = 1, /* read, write, sendto, recvfrom: buf, count */
	K_IOV,     /* readv, writev: iov, iovcnt */
	K_MSG,     /* sendmsg, recvmsg: msghdr */
	K_MMSG,    /* sendmmsg, recvmmsg: mmsghdr vector, vlen */
	K_CONNECT,
	K_CLOSE,
};

/* A socket syscall's arguments; kept per thread from enter to exit for
 * connect and close. */
struct call {
	__u64 sk;    /* struct sock * */
	__u64 ino;   /* socket inode */
	__u64 buf;   /* user pointer: buffer, iovec, msghdr or mmsghdr */
	__u64 len;   /* count, iovcnt or vlen */
	__s32 fd;
	__u8 kind;   /* enum call_kind */
	__u8 out;    /* 1 = sends */
	__u8 last_ref; /* close: the fd held the file's last reference */
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call);
} calls SEC(".maps");

#define SOCKF_PREEXISTING 0x1u /* first seen mid-life: offsets from start */
#define SOCKF_CLOSED      0x2u /* reached TCP_CLOSE while still owned */
/* sock hooks only: */
#define SOCKF_PASSIVE     0x4u /* accepted; ACCEPT not emitted yet (ino 0 until then) */
#define SOCKF_CONNECTING  0x8u /* SYN sent; CONNECT emitted at the handshake's end */
#define SOCKF_RELEASED    0x10u /* its last close() was seen (CLOSE emitted) */

/* Per socket: its inode (to catch a reused struct sock) and the bytes
 * that went out ([0]) and in ([1]) since capture saw it.  The sock hooks
 * also keep who connected it, and the fd it was last seen under. */
struct sockst {
	__u64 ino;
	__u64 off[2];
	__u64 who;    /* pid_tgid of the connecting (or last naming) thread */
	__s32 fd;     /* its fd in who's process, -1 = not known */
	__u32 flags;
	__s32 ustack, kstack; /* --stack: connect()'s, for the CONNECT to come */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64); /* struct sock * */
	__type(value, struct sockst);
} socks SEC(".maps");

/* What an event says about its socket. */
struct sockinfo {
	__u32 netns;
	__u16 lport, rport;
	__u8 family;
	__u8 laddr[16];
	__u8 raddr[16];
};

static __always_inline void count_drop(__u32 why)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &why);
	if (n)
		*n += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline int proc_wanted(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;

	if (tgid == self_tgid)
		return 0;
	if (pid_mode != TJC_PIDS_ALL && !bpf_map_lookup_elem(&pids, &tgid))
		return 0;
	if (cgroup_id && bpf_get_current_cgroup_id() != cgroup_id)
		return 0;
	return 1;
}

/* A kernel address read as a number, made readable again: plain loads
 * from it then cost an instruction each instead of a helper call
 * (bpf_probe_read_kernel), which matters on every read and write. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define AS_SOCK(p) ((struct sock *)bpf_rdonly_cast((void *)(p), bpf_core_type_id_kernel(struct sock)))

/* fd of the current task -> struct sock of a TCP socket, or NULL.  The
 * inode mode check drops files and pipes before anything else is read. */
static __always_inline struct sock *fd_to_sock(int fd, __u64 *ino)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *file = NULL;
	struct socket *so;
	struct inode *inode;
	struct sock *sk;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]) || !file)
		return NULL;
	file = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
	inode = file->f_inode;
	if ((inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	so = bpf_rdonly_cast(file->private_data, bpf_core_type_id_kernel(struct socket));
	sk = so->sk;
	if (!sk)
		return NULL;
	/* TCP over IPv4/IPv6: the only sockets capture records. */
	if (sk->__sk_common.skc_family != AF_INET && sk->__sk_common.skc_family != AF_INET6)
		return NULL;
	if (sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
		return NULL;
	*ino = inode->i_ino;
	return sk;
}

/* Kernel before 6.13: file->f_count; since: file->f_ref, where 0 means
 * one reference (FILE_REF_ONEREF). */
struct file___old {
	atomic_long_t f_count;
};

static __always_inline int fd_last_ref(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	struct file *file = NULL;

	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	if (bpf_core_field_exists(file->f_ref))
		return BPF_CORE_READ(file, f_ref.refcnt.counter) == 0;
	return BPF_CORE_READ((struct file___old *)file, f_count.counter) == 1;
}

static __always_inline void read_sockinfo(struct sock *sk, struct sockinfo *si)
{
	si->family = sk->__sk_common.skc_family;
	si->lport = sk->__sk_common.skc_num;
	si->rport = __builtin_bswap16(sk->__sk_common.skc_dport);
	si->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (si->family == AF_INET) {
		__u32 l = sk->__sk_common.skc_rcv_saddr;
		__u32 r = sk->__sk_common.skc_daddr;
		__builtin_memset(si->laddr, 0, 16);
		__builtin_memset(si->raddr, 0, 16);
		__builtin_memcpy(si->laddr, &l, 4);
		__builtin_memcpy(si->raddr, &r, 4);
	} else {
		__builtin_memcpy(si->laddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
		__builtin_memcpy(si->raddr, &sk->__sk_common.skc_v6_daddr, 16);
	}
}

static __always_inline int port_wanted(const struct sockinfo *si)
{
	return !port_filter || si->lport == port_filter || si->rport == port_filter;
}

/* Stack ids of one call; negative = none (not asked, or no stack). */
struct stk {
	__s32 u, k;
};

/* The stacks --stack asks for, taken in the syscall's exit tracepoint:
 * the user registers are the task's saved ones, so the user stack is
 * the one that made the call.  Unwinding follows frame pointers. */
static __always_inline void take_stacks(void *ctx, struct stk *s)
{
	s->u = -1;
	s->k = -1;
	if (stack_mode & TJC_STACK_USER)
		s->u = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	if (stack_mode & TJC_STACK_KERNEL)
		s->k = bpf_get_stackid(ctx, &stacks, 0);
}

/* Reserve, fill and submit one event.  With --payload, a send or receive
 * that moved bytes carries the first bytes of its first user buffer. */
#define emit(...) emit_stk(__VA_ARGS__, (const struct stk *)0)
static __always_inline void emit_stk(__u8 type, __u64 ts, __u64 pid_tgid, __s32 fd,
				     __u64 ino, const struct sockinfo *si,
				     __s64 bytes, __u64 offset, __u32 flags, __u32 arg,
				     __u64 ubuf, __u64 ulen, const struct stk *s)
{
	struct tjc_event *e;
	__u64 wake = BPF_RB_NO_WAKEUP;
	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);

	/* Conditioned on the read-only payload_max alone, so the verifier
	 * sees one size and walks one path. */
	if (!ring) {
		count_drop(TJC_DROP_RINGBUF);
		return;
	}
	if (payload_max)
		e = bpf_ringbuf_reserve(ring, sizeof(*e) + TJC_PAYLOAD_MAX, 0);
	else
		e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		count_drop(TJC_DROP_RINGBUF);
		return;
	}
	e->ts_ns = ts;
	e->sock = ino;
	e->bytes = bytes;
	e->offset = offset;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->fd = fd;
	e->netns = si->netns;
	e->type = type;
	e->family = si->family;
	e->lport = si->lport;
	e->rport = si->rport;
	e->flags = flags;
	e->arg = arg;
	e->ustack = s ? s->u : -1;
	e->kstack = s ? s->k : -1;
	__builtin_memcpy(e->laddr, si->laddr, 16);
	__builtin_memcpy(e->raddr, si->raddr, 16);
	e->payload_len = 0;
	if (payload_max && ubuf && bytes > 0 && ulen > 0) {
		__u64 n = payload_max;
		if (n > (__u64)bytes)
			n = bytes;
		if (n > ulen)
			n = ulen;
		if (n > TJC_PAYLOAD_MAX)
			n = TJC_PAYLOAD_MAX;
		if (bpf_probe_read_user(e->payload, n, (const void *)ubuf) == 0)
			e->payload_len = n;
	}
	/* Wake the reader only when the ring fills up; otherwise it drains
	 * on its timer, which spares the traced CPU an irq_work per event. */
	if (wakeup_bytes && bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) > wakeup_bytes)
		wake = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, wake);
}

/* The socket's offsets, creating them if needed.  fresh: a new connection
 * (accept, connect) whose offsets start at 0 now.  Otherwise a socket not
 * yet known predates capture (or its start was filtered out): it gets
 * SOCKF_PREEXISTING and *announce is set so the caller emits SOCKET. */
static __always_inline struct sockst *sock_state(struct sock *sk, __u64 ino,
						 int fresh, int *announce)
{
	__u64 key = (__u64)sk;
	struct sockst *st = bpf_map_lookup_elem(&socks, &key);
	struct sockst init = { .ino = ino, .fd = -1, .ustack = -1, .kstack = -1 };

	if (st && st->ino == ino && !fresh)
		return st;
	if (!fresh)
		init.flags = SOCKF_PREEXISTING;
	/* A stale entry (the struct sock was freed and reused) is replaced. */
	if (bpf_map_update_elem(&socks, &key, &init, st || fresh ? BPF_ANY : BPF_NOEXIST)) {
		st = bpf_map_lookup_elem(&socks, &key); /* another CPU won the race */
		if (!st || st->ino != ino) {
			count_drop(TJC_DROP_MAP);
			return NULL;
		}
		return st;
	}
	if (!fresh && announce)
		*announce = 1;
	return bpf_map_lookup_elem(&socks, &key);
}

static __always_inline void remember(__u64 pid_tgid, struct call *c)
{
	if (bpf_map_update_elem(&calls, &pid_tgid, c, BPF_ANY))
		count_drop(TJC_DROP_MAP);
}

/* ---- enter: only where the exit cannot do the work alone ---- */

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call c = { .kind = K_CONNECT, .fd = (int)ctx->args[0] };
	struct sock *sk;

	if (!proc_wanted(id))
		return 0;
	sk = fd_to_sock(c.fd, &c.ino);
	if (!sk)
		return 0;
	c.sk = (__u64)sk;
	/* Offsets exist before the handshake, so the state changes that
	 * complete it (often before connect returns) are seen.  A connect
	 * on a connected socket (EISCONN, EALREADY) keeps its offsets. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_CLOSE)
		sock_state(sk, c.ino, 1, NULL);
	remember(id, &c);
	return 0;
}

/* CLOSE is emitted at enter: after the last close the struct sock may be
 * gone, and close() of a socket does not fail in a way worth recording. */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call c = { .kind = K_CLOSE, .fd = (int)ctx->args[0] };
	struct sockinfo si;
	struct sockst *st;
	struct sock *sk;
	__u64 key;

	if (!proc_wanted(id))
		return 0;
	sk = fd_to_sock(c.fd, &c.ino);
	if (!sk)
		return 0;
	key = (__u64)sk;
	st = bpf_map_lookup_elem(&socks, &key);
	if (!st || st->ino != c.ino)
		return 0; /* never saw it: nothing to close */
	read_sockinfo(sk, &si);
	if (!port_wanted(&si))
		return 0;
	emit(TJC_EV_CLOSE, bpf_ktime_get_ns(), id, c.fd, c.ino, &si, 0, 0,
	     (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_OFFSET_FROM_START : 0, 0, 0, 0);
	if (fd_last_ref(c.fd)) {
		c.sk = key;
		c.last_ref = 1;
		remember(id, &c);
	}
	return 0;
}

/* After the last close: forget a socket that reached TCP_CLOSE while it
 * still had an owner (the state change could not forget it then). */
SEC("tracepoint/syscalls/sys_exit_close")
int exit_close(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *cp = bpf_map_lookup_elem(&calls, &id);
	struct sockst *st;
	__u64 key;

	if (!cp)
		return 0;
	key = cp->sk;
	bpf_map_delete_elem(&calls, &id);
	st = bpf_map_lookup_elem(&socks, &key);
	if (ctx->ret == 0 && st && (st->flags & SOCKF_CLOSED))
		bpf_map_delete_elem(&socks, &key);
	return 0;
}

/* ---- exit: the return value makes the event ---- */

struct mmsg_sum {
	struct mmsghdr *v;
	__s64 sum;
};

static long add_msg_len(__u32 i, void *ctx)
{
	struct mmsg_sum *ms = ctx;
	struct mmsghdr *m = ms->v + i; /* outside the CO-RE macro: local type */

	ms->sum += BPF_CORE_READ_USER(m, msg_len);
	return 0;
}

/* Bytes moved by an mmsg call that handled n messages.  A global
 * function is verified once, on its own: the loop's states do not
 * multiply those of its callers. */
__noinline __s64 mmsg_total(__u64 vec, __s64 n)
{
	struct mmsg_sum ms = { .v = (struct mmsghdr *)vec };

	if (n <= 0)
		return 0;
	bpf_loop(n < MMSG_MAX ? n : MMSG_MAX, add_msg_len, &ms, 0);
	return ms.sum;
}

/* First user buffer of a call (for the payload prefix) and, for the
 * mmsg calls, the bytes the call moved in all its messages. */
static __always_inline void first_buffer(const struct call *c, long ret,
					 __u64 *ubuf, __u64 *ulen, __s64 *bytes)
{
	struct iovec iov = {};
	struct iovec *iovp = NULL;

	*ubuf = 0;
	*ulen = 0;
	switch (c->kind) {
	case K_BUF:
		*ubuf = c->buf;
		*ulen = c->len;
		return;
	case K_IOV:
		if (c->len > 0)
			iovp = (struct iovec *)c->buf;
		break;
	case K_MSG: {
		struct user_msghdr *m = (struct user_msghdr *)c->buf;
		if (BPF_CORE_READ_USER(m, msg_iovlen) > 0)
			iovp = BPF_CORE_READ_USER(m, msg_iov);
		break;
	}
	case K_MMSG: {
		struct mmsghdr *v = (struct mmsghdr *)c->buf;
		*bytes = mmsg_total(c->buf, ret);
		if (ret > 0 && BPF_CORE_READ_USER(v, msg_hdr.msg_iovlen) > 0)
			iovp = BPF_CORE_READ_USER(v, msg_hdr.msg_iov);
		break;
	}
	}
	if (payload_max && iovp && bpf_probe_read_user(&iov, sizeof(iov), iovp) == 0) {
		*ubuf = (__u64)iov.iov_base;
		*ulen = iov.iov_len;
	}
}

/* Return values that say nothing happened: EAGAIN, and the restart codes
 * of an interrupted call (ERESTARTSYS..ERESTART_RESTARTBLOCK), which the
 * caller never sees and which are followed by the restarted call. */
static __always_inline int nothing_moved(long ret)
{
	return ret == -EAGAIN || (ret <= -512 && ret >= -516);
}

/* The data calls need no enter program: at exit the arguments are still
 * in the task's saved user registers and the fd still names the socket.
 * One program per call instead of two, and no per-thread map traffic. */
static __always_inline int exit_io(void *ctx, long ret, __u8 kind, __u8 out, int flags_arg)
{
	struct stk s;
	__u64 id, ts, ubuf = 0, ulen = 0, offset = 0;
	struct call c = { .kind = kind, .out = out };
	struct pt_regs *regs;
	struct sockinfo si;
	struct sockst *st;
	struct sock *sk;
	__s64 bytes = ret;
	__u32 flags = 0;
	int announce = 0;

	if (nothing_moved(ret))
		return 0;
	id = bpf_get_current_pid_tgid();
	if (!proc_wanted(id))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	/* A peek moves nothing: the same bytes are read again later. */
	if ((flags_arg == 3 && (PT_REGS_PARM3_SYSCALL(regs) & MSG_PEEK)) ||
	    (flags_arg == 4 && (PT_REGS_PARM4_SYSCALL(regs) & MSG_PEEK)))
		return 0;
	c.fd = (int)PT_REGS_PARM1_SYSCALL(regs);
	sk = fd_to_sock(c.fd, &c.ino);
	if (!sk)
		return 0;
	ts = bpf_ktime_get_ns();
	read_sockinfo(sk, &si);
	if (!port_wanted(&si))
		return 0;
	c.sk = (__u64)sk;
	c.buf = PT_REGS_PARM2_SYSCALL(regs);
	c.len = PT_REGS_PARM3_SYSCALL(regs);
	if (ret >= 0 && (payload_max || kind == K_MMSG))
		first_buffer(&c, ret, &ubuf, &ulen, &bytes);
	st = sock_state(sk, c.ino, 0, &announce);
	if (!st)
		return 0;
	if (st->flags & SOCKF_PREEXISTING)
		flags |= TJC_EVF_OFFSET_FROM_START;
	if (announce)
		emit(TJC_EV_SOCKET, ts, id, c.fd, c.ino, &si, 0, 0, flags, 0, 0, 0);
	if (ret < 0) {
		flags |= TJC_EVF_ERROR;
		offset = st->off[out ? 0 : 1];
	} else {
		offset = __sync_fetch_and_add(&st->off[out ? 0 : 1], bytes);
		if (kind == K_BUF && (__u64)ret < c.len)
			flags |= TJC_EVF_PARTIAL;
	}
	take_stacks(ctx, &s);
	emit_stk(out ? TJC_EV_SEND : TJC_EV_RECV, ts, id, c.fd, c.ino, &si,
		 bytes, offset, flags, 0, ubuf, ulen, &s);
	return 0;
}

/* flags_arg: which argument holds the MSG_* flags (0 = none). */
#define EXIT_IO(name, kind, out, flags_arg)                         \
	SEC("tracepoint/syscalls/sys_exit_" #name)                  \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)       \
	{                                                           \
		return exit_io(ctx, ctx->ret, kind, out, flags_arg);     \
	}

EXIT_IO(read, K_BUF, 0, 0)
EXIT_IO(write, K_BUF, 1, 0)
EXIT_IO(recvfrom, K_BUF, 0, 4)
EXIT_IO(sendto, K_BUF, 1, 0)
EXIT_IO(readv, K_IOV, 0, 0)
EXIT_IO(writev, K_IOV, 1, 0)
EXIT_IO(recvmsg, K_MSG, 0, 3)
EXIT_IO(sendmsg, K_MSG, 1, 0)
EXIT_IO(recvmmsg, K_MMSG, 0, 4)
EXIT_IO(sendmmsg, K_MMSG, 1, 0)

static __always_inline int exit_accept(void *ctx, long ret)
{
	struct stk s;
	__u64 id = bpf_get_current_pid_tgid();
	struct sockinfo si;
	struct sock *sk;
	__u64 ino, ts;

	/* A failed accept has no connection to name: nothing to record. */
	if (ret < 0 || !proc_wanted(id))
		return 0;
	sk = fd_to_sock((int)ret, &ino);
	if (!sk)
		return 0;
	ts = bpf_ktime_get_ns();
	read_sockinfo(sk, &si);
	if (!port_wanted(&si))
		return 0;
	if (!sock_state(sk, ino, 1, NULL))
		return 0;
	take_stacks(ctx, &s);
	emit_stk(TJC_EV_ACCEPT, ts, id, (int)ret, ino, &si, 0, 0, 0, 0, 0, 0, &s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept_(struct trace_event_raw_sys_exit *ctx) { return exit_accept(ctx, ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) { return exit_accept(ctx, ctx->ret); }

/* A failed connect leaves no peer in the socket: the address asked for
 * is still in the caller's sockaddr (connect's second argument). */
static __always_inline void peer_from_user(struct sockinfo *si)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct sockaddr_in6 a = {};

	if (bpf_probe_read_user(&a, sizeof(a), (void *)PT_REGS_PARM2_SYSCALL(regs)))
		return;
	if (a.sin6_family == AF_INET) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
		__builtin_memset(si->raddr, 0, 16);
		__builtin_memcpy(si->raddr, &a4->sin_addr, 4);
	} else if (a.sin6_family == AF_INET6) {
		__builtin_memcpy(si->raddr, &a.sin6_addr, 16);
	} else {
		return;
	}
	si->family = a.sin6_family;
	si->rport = __builtin_bswap16(a.sin6_port);
}

/* connect: the socket was resolved (and its offsets made) at enter. */
SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ts = bpf_ktime_get_ns();
	struct call *cp = bpf_map_lookup_elem(&calls, &id);
	long ret = ctx->ret;
	struct stk s;
	struct call c;
	struct sockinfo si;
	struct sockst *st;
	__u32 flags = 0;
	int announce = 0;

	if (!cp)
		return 0;
	c = *cp;
	bpf_map_delete_elem(&calls, &id);
	if (nothing_moved(ret))
		return 0;
	st = sock_state((struct sock *)c.sk, c.ino, 0, &announce);
	if (!st)
		return 0;
	read_sockinfo(AS_SOCK(c.sk), &si);
	if (ret < 0 && si.rport == 0)
		peer_from_user(&si);
	if (!port_wanted(&si))
		return 0;
	if (st->flags & SOCKF_PREEXISTING)
		flags |= TJC_EVF_OFFSET_FROM_START;
	if (announce)
		emit(TJC_EV_SOCKET, ts, id, c.fd, c.ino, &si, 0, 0, flags, 0, 0, 0);
	if (ret < 0)
		flags |= TJC_EVF_ERROR;
	take_stacks(ctx, &s);
	emit_stk(TJC_EV_CONNECT, ts, id, c.fd, c.ino, &si, ret, 0, flags, 0, 0, 0, &s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_shutdown")
int exit_shutdown(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	long ret = ctx->ret;
	struct pt_regs *regs;
	struct sockinfo si;
	struct sockst *st;
	struct sock *sk;
	__u32 flags = 0, how;
	__u64 ino, ts;
	int announce = 0, fd;

	if (nothing_moved(ret) || !proc_wanted(id))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	fd = (int)PT_REGS_PARM1_SYSCALL(regs);
	how = (__u32)PT_REGS_PARM2_SYSCALL(regs);
	sk = fd_to_sock(fd, &ino);
	if (!sk)
		return 0;
	ts = bpf_ktime_get_ns();
	read_sockinfo(sk, &si);
	if (!port_wanted(&si))
		return 0;
	st = sock_state(sk, ino, 0, &announce);
	if (!st)
		return 0;
	if (st->flags & SOCKF_PREEXISTING)
		flags |= TJC_EVF_OFFSET_FROM_START;
	if (announce)
		emit(TJC_EV_SOCKET, ts, id, fd, ino, &si, 0, 0, flags, 0, 0, 0);
	if (ret < 0)
		flags |= TJC_EVF_ERROR;
	emit(TJC_EV_SHUTDOWN, ts, id, fd, ino, &si, ret, 0, flags, how, 0, 0);
	return 0;
}

/* ---- kernel socket state ---- */

/* TCP state changes of sockets capture knows (it saw them in a traced
 * process).  They run in whatever context the change happens (often
 * softirq), so pid and tid are 0.  A socket that reaches TCP_CLOSE with no
 * owner left is forgotten; one still owned is forgotten at its last
 * close(). */
static __always_inline int sock_set_state(void *ctx, struct sock *sk, int oldstate,
					  int newstate);

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	struct sockst *st;
	struct sockinfo si;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (hooks == TJC_HOOKS_SOCK)
		return sock_set_state(ctx, sk, oldstate, newstate);
	st = bpf_map_lookup_elem(&socks, &key);
	if (!st)
		return 0;
	read_sockinfo(sk, &si);
	/* connect makes offsets before the port is known: filter here. */
	if (port_wanted(&si))
		emit(TJC_EV_STATE, bpf_ktime_get_ns(), 0, -1, st->ino, &si, 0, 0,
		     (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_OFFSET_FROM_START : 0,
		     (__u32)oldstate << 8 | (__u32)newstate, 0, 0);
	if (newstate == TCP_CLOSE) {
		if (!BPF_CORE_READ(sk, sk_socket))
			bpf_map_delete_elem(&socks, &key);
		else
			st->flags |= SOCKF_CLOSED;
	}
	return 0;
}

/* ---- sock hooks: no syscall tracepoint at all ----
 *
 * Attaching any syscall tracepoint sends every syscall of every task on
 * the machine through the slow entry path, whether we look at it or not:
 * about 0.4 us a call on our VM, half of what capture added to a traced
 * call and all it added to every other one.  These hooks sit on
 * the socket layer instead: tp_btf sock_send_length / sock_recv_length
 * fire once per sendmsg / recvmsg of a socket (in the caller's context,
 * after the call, with its return value), and inet_sock_set_state tells
 * connects, accepts and closes.  What the syscall is, its fd and its
 * buffer come from the task's saved user registers, as at sys_exit. */

/* The number of the call the task is in (its saved user registers). */
#if defined(__TARGET_ARCH_x86)
#define PT_REGS_SYSCALL_NR(r) ((__s64)(r)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define PT_REGS_SYSCALL_NR(r) ((__s64)(r)->syscallno)
#else
/* Unknown here: no CLOSE, SHUTDOWN, payload or partial flag from the
 * sock hooks (the syscall hooks do not need it). */
#define PT_REGS_SYSCALL_NR(r) ((__s64)-1)
#endif

static __always_inline int is_tcp(struct sock *sk)
{
	return (sk->__sk_common.skc_family == AF_INET || sk->__sk_common.skc_family == AF_INET6) &&
	       sk->sk_protocol == IPPROTO_TCP && sk->sk_type == SOCK_STREAM;
}

/* The inode number of the socket's file system node: the socket id. */
static __always_inline __u64 sock_ino(struct socket *so)
{
	struct socket_alloc *sa;

	/* The socket is the allocation's first member: a plain load then. */
	if (bpf_core_field_offset(struct socket_alloc, socket) == 0) {
		sa = bpf_rdonly_cast(so, bpf_core_type_id_kernel(struct socket_alloc));
		return sa->vfs_inode.i_ino;
	}
	sa = container_of(so, struct socket_alloc, socket);
	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

/* fd (the task's current call's first argument) if it names socket so in
 * the task's file table, else -1: a kernel socket, io_uring, or a call
 * whose first argument is not the socket. */
static __always_inline int fd_if_names(long fd, struct socket *so)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *file = NULL;

	if (fd < 0 || fd >= fdt->max_fds)
		return -1;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]) || !file)
		return -1;
	file = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
	return file->private_data == (void *)so ? (int)fd : -1;
}

/* The socket's state at its first sight in a traced thread: a passive
 * open waiting to be named (the caller emits ACCEPT), a known socket, a
 * reused struct sock or one never seen (SOCKET, offsets from start). */
enum first_sight { SEEN = 0, ANNOUNCE_SOCKET, ANNOUNCE_ACCEPT };

static __always_inline struct sockst *sock_named(struct sock *sk, __u64 ino,
						  struct sockst *st, int *sight)
{
	*sight = SEEN;
	if (st && st->ino == ino)
		return st;
	if (st && st->ino == 0 && (st->flags & SOCKF_PASSIVE)) {
		/* One thread names it, the others see it named. */
		if (__sync_val_compare_and_swap(&st->ino, 0, ino) == 0)
			*sight = ANNOUNCE_ACCEPT;
		return st->ino == ino ? st : NULL;
	}
	return sock_state(sk, ino, 0, sight);
}

static __always_inline int sock_io(void *ctx, struct sock *sk, int ret, int mflags, int out)
{
	struct stk s;
	__u64 id, ts, ino, ubuf = 0, ulen = 0, offset, nr, asked = 0, key = (__u64)sk;
	struct pt_regs *regs;
	struct sockinfo si;
	struct sockst *st;
	struct socket *so;
	__u32 flags = 0;
	int sight, fd;

	if (nothing_moved(ret) || (!out && (mflags & MSG_PEEK)))
		return 0;
	if (!is_tcp(sk))
		return 0;
	so = sk->sk_socket;
	if (!so)
		return 0;
	id = bpf_get_current_pid_tgid();
	ino = sock_ino(so);
	st = bpf_map_lookup_elem(&socks, &key);
	/* The thread that used this socket last passed the filters then. */
	if (!(st && st->ino == ino && st->who == id) && !proc_wanted(id)) {
		/* Accepted by a process capture does not trace: make room. */
		if (st && st->ino == 0)
			bpf_map_delete_elem(&socks, &key);
		return 0;
	}
	ts = bpf_ktime_get_ns();
	read_sockinfo(sk, &si);
	if (!port_wanted(&si))
		return 0;
	st = sock_named(sk, ino, st, &sight);
	if (!st)
		return 0;

	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	nr = PT_REGS_SYSCALL_NR(regs);
	/* The same thread naming the same socket: the fd is the one it had. */
	if (st->who == id && st->fd >= 0 && PT_REGS_PARM1_SYSCALL(regs) == st->fd) {
		fd = st->fd;
	} else {
		fd = fd_if_names(PT_REGS_PARM1_SYSCALL(regs), so);
		st->who = id;
		st->fd = fd;
	}
	if (nr == nr_read || nr == nr_write || nr == nr_recvfrom || nr == nr_sendto) {
		asked = PT_REGS_PARM3_SYSCALL(regs);
		if (payload_max) {
			ubuf = PT_REGS_PARM2_SYSCALL(regs);
			ulen = asked;
		}
	} else if (payload_max && fd >= 0) {
		struct call c = { .buf = PT_REGS_PARM2_SYSCALL(regs), .len = PT_REGS_PARM3_SYSCALL(regs) };
		__s64 ignored;
		if (nr == nr_readv || nr == nr_writev)
			c.kind = K_IOV;
		else if (nr == nr_recvmsg || nr == nr_sendmsg)
			c.kind = K_MSG;
		/* mmsg calls fire once per message, and which one this is
		 * the registers do not say: no payload for them. */
		if (c.kind)
			first_buffer(&c, ret, &ubuf, &ulen, &ignored);
	}

	if (st->flags & SOCKF_PREEXISTING)
		flags |= TJC_EVF_OFFSET_FROM_START;
	if (sight == ANNOUNCE_SOCKET)
		emit(TJC_EV_SOCKET, ts, id, fd, ino, &si, 0, 0, flags, 0, 0, 0);
	if (sight == ANNOUNCE_ACCEPT) {
		take_stacks(ctx, &s);
		emit_stk(TJC_EV_ACCEPT, ts, id, fd, ino, &si, 0, 0, TJC_EVF_INFERRED, 0, 0, 0, &s);
	}
	if (ret < 0) {
		flags |= TJC_EVF_ERROR;
		offset = st->off[out ? 0 : 1];
	} else {
		offset = __sync_fetch_and_add(&st->off[out ? 0 : 1], ret);
		if (asked && (__u64)ret < asked)
			flags |= TJC_EVF_PARTIAL;
	}
	take_stacks(ctx, &s);
	emit_stk(out ? TJC_EV_SEND : TJC_EV_RECV, ts, id, fd, ino, &si,
		 ret, offset, flags, 0, ubuf, ulen, &s);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send_length, struct sock *sk, int ret, int flags)
{
	return sock_io(ctx, sk, ret, flags, 1);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv_length, struct sock *sk, int ret, int flags)
{
	return sock_io(ctx, sk, ret, flags, 0);
}

/* The socket layer has no accept or close tracepoint; the TCP state
 * machine and the socket's destruction stand in.  A change made while a
 * user task holds the socket lock runs in that task (softirq only
 * backlogs packets for an owned socket), so its registers say which call
 * made it:
 *
 *   CLOSE -> SYN_SENT        connect(): offsets start, the connecting
 *                            thread and fd are kept (the local port is
 *                            not bound yet)
 *   SYN_SENT -> ESTABLISHED  CONNECT, with that thread, now that the
 *                            ports are known; SYN_SENT -> CLOSE: a
 *                            failed CONNECT (bytes = -sk_err)
 *   SYN_RECV -> ESTABLISHED  a passive open (softirq): offsets start,
 *                            ACCEPT waits for the first thread to use it
 *   owned, in close()/exit   CLOSE (the socket's last close); a socket
 *                            already reset makes no state change then,
 *                            so tcp_destroy_sock, which follows in the
 *                            same call, says it
 *   owned, in shutdown()     SHUTDOWN (one that sends a FIN)
 */

/* The task owning sk, if a task does: its pid_tgid and registers. */
struct owner {
	__u64 id;
	__s64 nr; /* the call it is in, -1 = not a task's doing */
	struct pt_regs *regs;
};

static __always_inline void owner_of(struct sock *sk, struct owner *o)
{
	o->id = 0;
	o->nr = -1;
	o->regs = NULL;
	if (!sk->sk_lock.owned)
		return;
	o->id = bpf_get_current_pid_tgid();
	o->regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	o->nr = PT_REGS_SYSCALL_NR(o->regs);
}

/* The last close() (or the exit that closes it) of a socket capture
 * knows: CLOSE once, preceded by ACCEPT for an accepted socket nobody
 * used (it is named only now). */
static __always_inline void sock_released(struct sock *sk, struct sockst *st,
					  const struct owner *o, const struct sockinfo *si,
					  __u64 ts)
{
	struct socket *so = sk->sk_socket;
	__u32 evflags;
	int fd;

	if (!o->regs || (st->flags & SOCKF_RELEASED))
		return;
	/* An exiting process has left the --pid/-- COMMAND filter by the
	 * time its files close: the process that used the socket is enough. */
	if ((st->who >> 32) != (o->id >> 32) && !proc_wanted(o->id))
		return;
	if (o->nr != nr_close && o->nr != nr_exit && o->nr != nr_exit_group)
		return;
	fd = o->nr == nr_close ? (int)PT_REGS_PARM1_SYSCALL(o->regs) : -1;
	if (st->ino == 0) {
		if (!so)
			return; /* already orphaned: it has no name to give */
		st->ino = sock_ino(so);
		emit(TJC_EV_ACCEPT, ts, o->id, fd, st->ino, si, 0, 0, TJC_EVF_INFERRED, 0, 0, 0);
	}
	st->flags |= SOCKF_RELEASED;
	evflags = (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_OFFSET_FROM_START : 0;
	emit(TJC_EV_CLOSE, ts, o->id, fd, st->ino, si, 0, 0, evflags, 0, 0, 0);
}

static __always_inline int sock_set_state(void *ctx, struct sock *sk, int oldstate,
					  int newstate)
{
	__u64 key = (__u64)sk, ts = bpf_ktime_get_ns();
	struct sockst *st = bpf_map_lookup_elem(&socks, &key);
	struct socket *so = sk->sk_socket;
	struct sockinfo si;
	struct owner o;
	struct stk s;
	__u32 evflags;

	if (!is_tcp(sk))
		return 0;
	read_sockinfo(sk, &si);
	owner_of(sk, &o);

	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		struct sockst init = { .fd = -1, .flags = SOCKF_CONNECTING, .ustack = -1, .kstack = -1 };
		if (!o.regs || !so || !proc_wanted(o.id))
			return 0;
		init.ino = sock_ino(so);
		init.who = o.id;
		take_stacks(ctx, &s);
		init.ustack = s.u;
		init.kstack = s.k;
		if (o.nr == nr_connect)
			init.fd = fd_if_names(PT_REGS_PARM1_SYSCALL(o.regs), so);
		if (bpf_map_update_elem(&socks, &key, &init, BPF_ANY)) {
			count_drop(TJC_DROP_MAP);
			return 0;
		}
		st = bpf_map_lookup_elem(&socks, &key);
	} else if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		struct sockst init = { .fd = -1, .flags = SOCKF_PASSIVE, .ustack = -1, .kstack = -1 };
		if (!port_wanted(&si))
			return 0;
		/* Named (ino) at its first use, by the thread that accepted it. */
		if (bpf_map_update_elem(&socks, &key, &init, BPF_ANY))
			count_drop(TJC_DROP_MAP);
		return 0;
	}
	if (!st || !port_wanted(&si))
		return 0;
	/* The last close() comes before the state change it makes. */
	sock_released(sk, st, &o, &si, ts);
	if (st->ino == 0)
		return 0; /* accepted, not yet named: nothing can say which socket */
	evflags = (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_OFFSET_FROM_START : 0;
	emit(TJC_EV_STATE, ts, 0, -1, st->ino, &si, 0, 0, evflags,
	     (__u32)oldstate << 8 | (__u32)newstate, 0, 0);
	if (o.regs && o.nr == nr_shutdown && oldstate != newstate && proc_wanted(o.id))
		emit(TJC_EV_SHUTDOWN, ts, o.id, fd_if_names(PT_REGS_PARM1_SYSCALL(o.regs), so),
		     st->ino, &si, 0, 0, evflags, (__u32)PT_REGS_PARM2_SYSCALL(o.regs), 0, 0);
	if ((st->flags & SOCKF_CONNECTING) && oldstate == TCP_SYN_SENT) {
		__s64 res = 0;
		__u32 f = evflags;
		st->flags &= ~SOCKF_CONNECTING;
		if (newstate != TCP_ESTABLISHED) {
			res = -(__s64)(sk->sk_err ? sk->sk_err : 103 /* ECONNABORTED */);
			f |= TJC_EVF_ERROR;
		}
		s.u = st->ustack;
		s.k = st->kstack;
		emit_stk(TJC_EV_CONNECT, ts, st->who, st->fd, st->ino, &si, res, 0, f, 0, 0, 0, &s);
	}
	return 0;
}

/* Every TCP socket ends here, once: its entry goes (with the sock hooks
 * this is the only place that forgets sockets), and a close() of a socket
 * that was already reset, which changes no state, is told. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_destroy, struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct sockst *st = bpf_map_lookup_elem(&socks, &key);
	struct sockinfo si;
	struct owner o;

	if (!st)
		return 0;
	if (hooks == TJC_HOOKS_SOCK && !(st->flags & SOCKF_RELEASED)) {
		read_sockinfo(sk, &si);
		owner_of(sk, &o);
		if (port_wanted(&si))
			sock_released(sk, st, &o, &si, bpf_ktime_get_ns());
	}
	bpf_map_delete_elem(&socks, &key);
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
