/* The sock hooks (hooks == TJC_HOOKS_SOCK): no syscall tracepoint at all.
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
#ifndef TJ_CAPTURE_SOCK_HOOKS_BPF_H
#define TJ_CAPTURE_SOCK_HOOKS_BPF_H

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
 * reused struct sock or one never seen (SOCKET, sequence offsets). */
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
	__u64 id, ts, ino, offset, nr, asked = 0;
	struct psrc pl = {};
	struct pt_regs *regs;
	struct sockinfo si;
	struct sockst *st;
	struct socket *so;
	__u32 flags = 0;
	int sight, fd, known, compact = 0;

	if (!capture_armed() || nothing_moved(ret) || (!out && (mflags & MSG_PEEK)))
		return 0;
	if (!is_tcp(sk))
		return 0;
	so = sk->sk_socket;
	if (!so)
		return 0;
	id = bpf_get_current_pid_tgid();
	st = st_get(sk);
	/* A socket's storage goes with it (a reused struct sock starts
	 * without), so a named state is this socket's: its inode, a cold
	 * line of another object, is read once, when the socket is named. */
	ino = st ? st->ino : 0;
	known = ino != 0;
	if (!known)
		ino = sock_ino(so);
	/* The thread that used this socket last passed the filters then. */
	if (!(known && st->who == id) && !proc_wanted(id)) {
		/* Accepted by a process capture does not trace: make room. */
		if (st && st->ino == 0)
			st_del(sk);
		return 0;
	}
	ts = bpf_ktime_get_ns();
	/* A connected socket's ports and addresses do not change: once its
	 * --port filter was decided and this CPU's ring has carried them,
	 * they are not read again and the record leaves them out. */
	if (known && st->port != PORT_UNKNOWN && told_here(st)) {
		if (st->port != PORT_WANTED)
			return 0;
		compact = 1;
		/* Never read for a compact record; set so that clang does not
		 * carry an unset register the verifier refuses to spill. */
		si.netns = 0;
		si.family = 0;
		si.lport = si.rport = 0;
	} else {
		int wanted;
		read_sockinfo(sk, &si);
		wanted = port_wanted(&si);
		/* A failed call may come before the connection (ENOTCONN):
		 * its ports are not the connection's yet. */
		if (known && ret >= 0)
			st->port = wanted ? PORT_WANTED : PORT_UNWANTED;
		if (!wanted)
			return 0;
	}
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
			pl.addr = PT_REGS_PARM2_SYSCALL(regs);
			pl.len = asked;
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
			payload_source(&c, ret, &pl, &ignored);
	}

	if (st->flags & SOCKF_PREEXISTING)
		flags |= TJC_EVF_SEQ_OFFSET;
	if (sight == ANNOUNCE_SOCKET) {
		sock_seq_rewind(st, out, ret);
		EMIT(.type = TJC_EV_SOCKET, .ts = ts, .pid_tgid = id, .fd = fd,
		     .ino = ino, .si = &si, .flags = flags);
	}
	if (sight == ANNOUNCE_ACCEPT) {
		take_stacks(ctx, &s);
		EMIT(.type = TJC_EV_ACCEPT, .ts = ts, .pid_tgid = id, .fd = fd,
		     .ino = ino, .si = &si, .flags = TJC_EVF_INFERRED, .stacks = &s);
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
	EMIT(.type = out ? TJC_EV_SEND : TJC_EV_RECV, .ts = ts, .pid_tgid = id,
	     .fd = fd, .ino = ino, .si = &si, .bytes = ret, .offset = offset,
	     .flags = flags, .pl = pl, .stacks = &s, .st = st, .compact = compact);
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
		EMIT(.type = TJC_EV_ACCEPT, .ts = ts, .pid_tgid = o->id, .fd = fd,
		     .ino = st->ino, .si = si, .flags = TJC_EVF_INFERRED);
	}
	st->flags |= SOCKF_RELEASED;
	evflags = (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_SEQ_OFFSET : 0;
	EMIT(.type = TJC_EV_CLOSE, .ts = ts, .pid_tgid = o->id, .fd = fd,
	     .ino = st->ino, .si = si, .flags = evflags);
	st->cpus_told = 0; /* anything after it tells the addresses again */
}

static __always_inline int sock_set_state(void *ctx, struct sock *sk, int oldstate,
					  int newstate)
{
	__u64 ts = bpf_ktime_get_ns();
	struct sockst *st = st_get(sk);
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
		st = st_set(sk, &init);
		if (!st)
			return 0;
	} else if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		struct sockst init = { .fd = -1, .flags = SOCKF_PASSIVE, .ustack = -1, .kstack = -1 };
		if (!port_wanted(&si))
			return 0;
		/* Named (ino) at its first use, by the thread that accepted it. */
		st_set(sk, &init);
		return 0;
	}
	if (!st || !port_wanted(&si))
		return 0;
	/* The last close() comes before the state change it makes. */
	sock_released(sk, st, &o, &si, ts);
	if (st->ino == 0)
		return 0; /* accepted, not yet named: nothing can say which socket */
	evflags = (st->flags & SOCKF_PREEXISTING) ? TJC_EVF_SEQ_OFFSET : 0;
	EMIT(.type = TJC_EV_STATE, .ts = ts, .pid_tgid = 0, .fd = -1, .ino = st->ino,
	     .si = &si, .flags = evflags, .arg = (__u32)oldstate << 8 | (__u32)newstate);
	if (o.regs && o.nr == nr_shutdown && oldstate != newstate && proc_wanted(o.id))
		EMIT(.type = TJC_EV_SHUTDOWN, .ts = ts, .pid_tgid = o.id,
		     .fd = fd_if_names(PT_REGS_PARM1_SYSCALL(o.regs), so),
		     .ino = st->ino, .si = &si, .flags = evflags,
		     .arg = (__u32)PT_REGS_PARM2_SYSCALL(o.regs));
	if ((st->flags & SOCKF_CONNECTING) && oldstate == TCP_SYN_SENT) {
		__s64 res = 0;
		__u32 f = evflags;
		st->flags &= ~SOCKF_CONNECTING;
		if (newstate != TCP_ESTABLISHED) {
			res = -(__s64)(sk->sk_err ? sk->sk_err : 103 /* ECONNABORTED */);
			f |= TJC_EVF_ERROR;
		}
		s.u = st->ustack;
		s.here = 0; /* taken at SYN_SENT: these registers are not connect()'s */
		s.k = st->kstack;
		EMIT(.type = TJC_EV_CONNECT, .ts = ts, .pid_tgid = st->who,
		     .fd = st->fd, .ino = st->ino, .si = &si, .bytes = res, .flags = f,
		     .stacks = &s);
	}
	return 0;
}

/* Every TCP socket ends here, once: its entry goes (with the sock hooks
 * this is the only place that forgets sockets), and a close() of a socket
 * that was already reset, which changes no state, is told. */


/* tcp_destroy_sock of a socket whose last close() was not seen: a
 * close() of a socket already reset, which changes no state. */
static __always_inline void sock_destroyed(struct sock *sk, struct sockst *st)
{
	struct sockinfo si;
	struct owner o;

	read_sockinfo(sk, &si);
	owner_of(sk, &o);
	if (port_wanted(&si))
		sock_released(sk, st, &o, &si, bpf_ktime_get_ns());
}

#endif
