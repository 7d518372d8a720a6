/* The syscall hooks (hooks == TJC_HOOKS_SYSCALLS): syscall tracepoints.
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
 * SOCKET event and offsets that are TCP sequence numbers (TJC_EVF_SEQ_OFFSET). */
#ifndef TJ_CAPTURE_SYSCALL_HOOKS_BPF_H
#define TJ_CAPTURE_SYSCALL_HOOKS_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call);
} calls SEC(".maps");

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

	if (!capture_armed() || !proc_wanted(id))
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

	if (!capture_armed() || !proc_wanted(id))
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
	EMIT(.type = TJC_EV_CLOSE, .ts = bpf_ktime_get_ns(), .pid_tgid = id, .fd = c.fd,
	     .ino = c.ino, .si = &si,
	     .flags = (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_SEQ_OFFSET : 0);
	/* User space forgets a socket after its CLOSE; another fd (a dup,
	 * a forked child's) may go on using it: tell its addresses again. */
	st->cpus_told = 0;
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

/* The data calls need no enter program: at exit the arguments are still
 * in the task's saved user registers and the fd still names the socket.
 * One program per call instead of two, and no per-thread map traffic. */
static __always_inline int exit_io(void *ctx, long ret, __u8 kind, __u8 out, int flags_arg)
{
	struct stk s;
	__u64 id, ts, offset = 0;
	struct psrc pl = {};
	struct call c = { .kind = kind, .out = out };
	struct pt_regs *regs;
	struct sockinfo si;
	struct sockst *st;
	struct sock *sk;
	__s64 bytes = ret;
	__u32 flags = 0;
	int announce = 0;

	if (!capture_armed() || nothing_moved(ret))
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
		payload_source(&c, ret, &pl, &bytes);
	st = sock_state(sk, c.ino, 0, &announce);
	if (!st)
		return 0;
	if (st->flags & SOCKF_PREEXISTING)
		flags |= TJC_EVF_SEQ_OFFSET;
	if (announce) {
		if (ret >= 0)
			sock_seq_rewind(st, out, bytes);
		EMIT(.type = TJC_EV_SOCKET, .ts = ts, .pid_tgid = id, .fd = c.fd,
		     .ino = c.ino, .si = &si, .flags = flags);
	}
	if (ret < 0) {
		flags |= TJC_EVF_ERROR;
		offset = st->off[out ? 0 : 1];
	} else {
		offset = __sync_fetch_and_add(&st->off[out ? 0 : 1], bytes);
		if (kind == K_BUF && (__u64)ret < c.len)
			flags |= TJC_EVF_PARTIAL;
	}
	take_stacks(ctx, &s);
	EMIT(.type = out ? TJC_EV_SEND : TJC_EV_RECV, .ts = ts, .pid_tgid = id,
	     .fd = c.fd, .ino = c.ino, .si = &si, .bytes = bytes, .offset = offset,
	     .flags = flags, .pl = pl, .stacks = &s, .st = st, .compact = told_here(st));
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
	if (!capture_armed() || ret < 0 || !proc_wanted(id))
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
	EMIT(.type = TJC_EV_ACCEPT, .ts = ts, .pid_tgid = id, .fd = (int)ret,
	     .ino = ino, .si = &si, .stacks = &s);
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
		flags |= TJC_EVF_SEQ_OFFSET;
	if (announce)
		EMIT(.type = TJC_EV_SOCKET, .ts = ts, .pid_tgid = id, .fd = c.fd,
		     .ino = c.ino, .si = &si, .flags = flags);
	if (ret < 0)
		flags |= TJC_EVF_ERROR;
	take_stacks(ctx, &s);
	EMIT(.type = TJC_EV_CONNECT, .ts = ts, .pid_tgid = id, .fd = c.fd, .ino = c.ino,
	     .si = &si, .bytes = ret, .flags = flags, .stacks = &s);
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

	if (!capture_armed() || nothing_moved(ret) || !proc_wanted(id))
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
		flags |= TJC_EVF_SEQ_OFFSET;
	if (announce)
		EMIT(.type = TJC_EV_SOCKET, .ts = ts, .pid_tgid = id, .fd = fd,
		     .ino = ino, .si = &si, .flags = flags);
	if (ret < 0)
		flags |= TJC_EVF_ERROR;
	EMIT(.type = TJC_EV_SHUTDOWN, .ts = ts, .pid_tgid = id, .fd = fd, .ino = ino,
	     .si = &si, .bytes = ret, .flags = flags, .arg = how);
	return 0;
}



/* A TCP state change of a socket capture knows (it saw it in a traced
 * process), in whatever context the change happens (often softirq), so
 * pid and tid are 0.  A socket that reaches TCP_CLOSE with no owner left
 * is forgotten; one still owned is forgotten at its last close(). */
static __always_inline int syscall_set_state(struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	struct sockst *st = bpf_map_lookup_elem(&socks, &key);
	struct sockinfo si;

	if (!st)
		return 0;
	read_sockinfo(sk, &si);
	/* connect makes offsets before the port is known: filter here. */
	if (port_wanted(&si))
		EMIT(.type = TJC_EV_STATE, .ts = bpf_ktime_get_ns(), .pid_tgid = 0,
		     .fd = -1, .ino = st->ino, .si = &si,
		     .flags = (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_SEQ_OFFSET : 0,
		     .arg = (__u32)oldstate << 8 | (__u32)newstate);
	if (newstate == TCP_CLOSE) {
		if (!BPF_CORE_READ(sk, sk_socket))
			bpf_map_delete_elem(&socks, &key);
		else
			st->flags |= SOCKF_CLOSED;
	}
	return 0;
}

#endif
