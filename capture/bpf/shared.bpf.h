/* What both hook sets of capture.bpf.c share: the loader's settings,
 * the maps, the per-socket state, and the code that reads a socket,
 * takes stacks and emits an event.  Included once, by capture.bpf.c. */
#ifndef TJ_CAPTURE_SHARED_BPF_H
#define TJ_CAPTURE_SHARED_BPF_H

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

/* 0 until the loader has attached every program, then 1 (set by user
 * space through the skeleton's .bss).  Programs attach one at a time, a
 * few milliseconds apart on a busy machine: a send hook attached before
 * its receive hook made a pre-existing socket's state (its receive offset
 * read from copied_seq) and the receives that followed went unseen, so
 * every later receive of that socket carried the offset of the message
 * before it.  Nothing is recorded, and no socket state is made, until all
 * hooks are in: capture starts at one instant for every hook. */
__u32 armed = 0;

static __always_inline int capture_armed(void)
{
	return *(volatile __u32 *)&armed;
}

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


#define SOCKF_PREEXISTING 0x1u /* first seen mid-life: offsets are sequence numbers */
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
	/* CPUs (bit n = CPU n < 64) whose ring carried a whole SEND or RECV
	 * of this socket: their next ones are compact (tjc_data). */
	__u64 cpus_told;
	/* --port decided once the socket carried data (its ports are fixed
	 * then): a byte of its own, stored without touching flags. */
	__u8 port;    /* PORT_UNKNOWN, PORT_WANTED or PORT_UNWANTED */
};

enum { PORT_UNKNOWN = 0, PORT_WANTED, PORT_UNWANTED };

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

static __always_inline void count_drops(__u32 why, __u64 events)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &why);
	if (n)
		*n += events; /* per-CPU slot: no atomics needed */
}

static __always_inline void count_drop(__u32 why)
{
	count_drops(why, 1);
}

/* The sock hooks keep the same state in the socket's own storage: found
 * from the socket in a few loads, where the hash costs a hash and a bucket
 * walk on every event (a fifth of the data program's time in `perf`), and
 * gone with the socket, so a reused struct sock never finds a stale entry.
 * The syscall hooks reach sockets by plain loads (untrusted pointers),
 * which the storage helpers refuse: they keep the hash.  The read-only
 * `hooks` decides, so the verifier walks one of the two. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sockst);
} sk_states SEC(".maps");

static __always_inline struct sockst *st_get(struct sock *sk)
{
	__u64 key = (__u64)sk;

	if (hooks == TJC_HOOKS_SOCK)
		return bpf_sk_storage_get(&sk_states, sk, 0, 0);
	return bpf_map_lookup_elem(&socks, &key);
}

/* sk's state made *init (created, or replaced): NULL and counted when
 * there is no room. */
static __always_inline struct sockst *st_set(struct sock *sk, struct sockst *init)
{
	__u64 key = (__u64)sk;
	struct sockst *st;

	if (hooks == TJC_HOOKS_SOCK) {
		st = bpf_sk_storage_get(&sk_states, sk, init, BPF_SK_STORAGE_GET_F_CREATE);
		if (st)
			*st = *init; /* it may have been there: replaced */
	} else {
		st = bpf_map_update_elem(&socks, &key, init, BPF_ANY) ? NULL
			: bpf_map_lookup_elem(&socks, &key);
	}
	if (!st)
		count_drop(TJC_DROP_MAP);
	return st;
}

static __always_inline void st_del(struct sock *sk)
{
	__u64 key = (__u64)sk;

	if (hooks == TJC_HOOKS_SOCK)
		bpf_sk_storage_delete(&sk_states, sk);
	else
		bpf_map_delete_elem(&socks, &key);
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
	__u8 here; /* taken now, in the calling task: its caller can be found */
};

/* User stacks are walked here rather than by bpf_get_stackid: its walk
 * follows the frame pointer wherever it points, and code built without
 * frame pointers leaves data there (0 at the end of every chain, from
 * _start): reading it faults, and a fault taken inside the kernel cost
 * about 5 us per event on our VM (`perf`: __get_user_handle_exception,
 * 28% of all CPU with --stack).  This walk reads a frame only where one
 * can be: 8-byte aligned, above the previous one, within USTACK_SPAN of
 * the stack pointer.  Stacks are deduplicated by a 64-bit hash of their
 * frames: ustack_ids maps it to an id, ustacks holds the frames by id
 * (zero after the last), both sized by the loader (ustack_max). */
#define USTACK_SPAN (8ull << 20)

const volatile __u32 ustack_max = 1;
__u64 ustack_next = 0; /* ids handed out so far */

struct ustack_buf {
	__u64 ip[TJC_STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ustack_buf);
} ustack_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);  /* hash of the frames */
	__type(value, __u32); /* id */
} ustack_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ustack_buf);
} ustacks SEC(".maps");

struct ustack_walk {
	__u64 fp, lo, hi; /* the next frame, and where frames can be */
	__u64 h;          /* hash of the frames so far */
	__u32 n;          /* frames so far */
};

static __always_inline __u64 ustack_mix(__u64 h, __u64 ip)
{
	h ^= ip;
	h *= 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

static long ustack_step(__u32 i, void *ctx)
{
	struct ustack_walk *w = ctx;
	__u32 zero = 0;
	struct ustack_buf *b = bpf_map_lookup_elem(&ustack_scratch, &zero);
	__u64 fr[2]; /* saved frame pointer, return address */

	if (!b || w->n >= TJC_STACK_DEPTH || w->fp < w->lo || w->fp >= w->hi || (w->fp & 7))
		return 1;
	if (bpf_probe_read_user(fr, sizeof(fr), (void *)w->fp) || !fr[1])
		return 1;
	b->ip[w->n & (TJC_STACK_DEPTH - 1)] = fr[1];
	w->n++;
	w->h = ustack_mix(w->h, fr[1]);
	w->lo = w->fp + 16; /* callers' frames are above */
	w->fp = fr[0];
	return 0;
}

/* Zeroes the frames after the walk's last (i counts from 0). */
static long ustack_clear(__u32 i, void *ctx)
{
	struct ustack_walk *w = ctx;
	__u32 zero = 0;
	struct ustack_buf *b = bpf_map_lookup_elem(&ustack_scratch, &zero);

	if (b)
		b->ip[(w->n + i) & (TJC_STACK_DEPTH - 1)] = 0;
	return 0;
}

/* The id of the user stack at ip (sp, frame pointer fp): >= 0, or
 * -EFAULT (no user context), -ENOMEM (ustacks full). */
__noinline __s32 user_stack_id(__u64 ip, __u64 sp, __u64 fp)
{
	struct ustack_walk w = { .fp = fp, .lo = sp, .hi = sp + USTACK_SPAN, .n = 1 };
	__u32 zero = 0, id, *known;
	struct ustack_buf *b = bpf_map_lookup_elem(&ustack_scratch, &zero);

	if (!b || !ip)
		return -14;
	b->ip[0] = ip;
	w.h = ustack_mix(0, ip);
	bpf_loop(TJC_STACK_DEPTH - 1, ustack_step, &w, 0);
	w.h = ustack_mix(w.h, w.n);
	known = bpf_map_lookup_elem(&ustack_ids, &w.h);
	if (known)
		return *known;
	/* A new stack: its frames are stored before its id is published. */
	if (w.n < TJC_STACK_DEPTH)
		bpf_loop(TJC_STACK_DEPTH - w.n, ustack_clear, &w, 0);
	id = (__u32)__sync_fetch_and_add(&ustack_next, 1);
	if (id >= ustack_max)
		return -12;
	if (bpf_map_update_elem(&ustacks, &id, b, BPF_ANY))
		return -12;
	if (bpf_map_update_elem(&ustack_ids, &w.h, &id, BPF_NOEXIST)) {
		known = bpf_map_lookup_elem(&ustack_ids, &w.h); /* another CPU was first */
		return known ? *known : -12;
	}
	return id;
}

/* The stacks --stack asks for, taken in the calling task: its saved user
 * registers are the ones that made the call. */
static __always_inline void take_stacks(void *ctx, struct stk *s)
{
	s->u = -1;
	s->k = -1;
	s->here = 1;
	if (stack_mode & TJC_STACK_USER) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		s->u = user_stack_id(PT_REGS_IP(regs), PT_REGS_SP(regs), PT_REGS_FP(regs));
	}
	if (stack_mode & TJC_STACK_KERNEL)
		s->k = bpf_get_stackid(ctx, &stacks, 0);
}

/* --payload: where a send's or receive's bytes are in user memory.  A
 * flat buffer is read straight into the record; an iovec array (readv,
 * writev, sendmsg, recvmsg, the first message of the mmsg calls) is
 * gathered, so the prefix covers the message and not its first piece:
 * servers write headers in several iovecs (Apache's proxy sends the
 * request line alone). */
struct psrc {
	__u64 addr; /* buffer, or struct iovec array; 0 = none */
	__u64 len;  /* buffer size, or iovec count */
	__u64 cap;  /* iovec: the bytes the message holds at most (mmsg: its msg_len) */
	__u8 iov;   /* 1 = addr is an iovec array */
};

/* iovecs looked at for a prefix: a prefix (<= TJC_PAYLOAD_MAX bytes)
 * split further than this is cut there. */
#define PAYLOAD_IOV_MAX 32

/* Gathered prefixes are built here: twice the largest prefix, so each
 * piece's copy has a bound the verifier can check (offset < MAX and
 * length <= MAX) without relating the two. */
struct gather_buf {
	__u8 b[2 * TJC_PAYLOAD_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gather_buf);
} gather SEC(".maps");

struct gather_ctx {
	__u64 iov;  /* user struct iovec * */
	__u64 want; /* bytes still wanted */
	__u64 got;  /* bytes gathered so far (< TJC_PAYLOAD_MAX while going) */
};

static long gather_one(__u32 i, void *ctx)
{
	struct gather_ctx *g = ctx;
	struct iovec v;
	__u32 zero = 0;
	struct gather_buf *gb = bpf_map_lookup_elem(&gather, &zero);
	__u64 n, at;

	if (!gb || g->want == 0 || g->got >= TJC_PAYLOAD_MAX)
		return 1;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(g->iov + (__u64)i * sizeof(v))))
		return 1;
	n = v.iov_len < g->want ? v.iov_len : g->want;
	if (n > TJC_PAYLOAD_MAX)
		n = TJC_PAYLOAD_MAX;
	at = g->got & (TJC_PAYLOAD_MAX - 1);
	if (n && bpf_probe_read_user(gb->b + at, n, v.iov_base))
		return 1; /* unreadable piece: keep what came before it */
	g->got += n;
	g->want -= n;
	return 0;
}

/* The first want bytes (<= TJC_PAYLOAD_MAX) of the message held by the
 * cnt iovecs at iov, into the per-CPU gather buffer; returns how many
 * were read.  A global function is verified once, on its own. */
__noinline __u32 gather_iov(__u64 iov, __u64 cnt, __u64 want)
{
	struct gather_ctx g = { .iov = iov, .want = want };

	if (!iov || cnt == 0 || want == 0)
		return 0;
	if (g.want > TJC_PAYLOAD_MAX)
		g.want = TJC_PAYLOAD_MAX;
	bpf_loop(cnt < PAYLOAD_IOV_MAX ? cnt : PAYLOAD_IOV_MAX, gather_one, &g, 0);
	return g.got < TJC_PAYLOAD_MAX ? g.got : TJC_PAYLOAD_MAX;
}

/* One event's fields, named where it is emitted: what a call leaves out
 * is 0 (and stacks NULL: none). */
struct emit_args {
	__u8 type;                /* TJC_EV_* */
	__u64 ts;
	__u64 pid_tgid;           /* 0: not in a task's context */
	__s32 fd;
	__u64 ino;
	const struct sockinfo *si; /* not read for a compact record */
	__s64 bytes;
	__u64 offset;
	__u32 flags;              /* TJC_EVF_* */
	__u32 arg;
	struct psrc pl;           /* --payload: where the call's bytes are */
	const struct stk *stacks; /* --stack */
	/* SEND/RECV: the socket's state.  A whole record marks this CPU in
	 * its cpus_told; compact (told_here said so): a tjc_data record. */
	struct sockst *st;
	__u8 compact;
};

#define EMIT(...) emit(&(struct emit_args){ __VA_ARGS__ })

/* Whether this CPU's ring has carried the socket's addresses (in a whole
 * SEND or RECV record): its next sends and receives can be compact.  The
 * programs run with migration disabled, so the CPU stays the same from
 * here to the reserve. */
static __always_inline int told_here(const struct sockst *st)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return cpu < 64 && (st->cpus_told & (1ull << cpu));
}

/* --payload: the first bytes of what a send or receive moved (flat: read
 * straight in; iovecs: gathered), into dst; returns how many. */
static __always_inline __u16 fill_payload(__u8 *dst, const struct emit_args *a)
{
	__u64 n = payload_max;

	if (!a->pl.addr || a->bytes <= 0 || a->pl.len == 0)
		return 0;
	if (n > (__u64)a->bytes)
		n = a->bytes;
	if (a->pl.iov && a->pl.cap && n > a->pl.cap)
		n = a->pl.cap;
	if (!a->pl.iov && n > a->pl.len)
		n = a->pl.len;
	if (n > TJC_PAYLOAD_MAX)
		n = TJC_PAYLOAD_MAX;
	if (!a->pl.iov)
		return bpf_probe_read_user(dst, n, (const void *)a->pl.addr) == 0 ? n : 0;
	__u32 zero = 0;
	struct gather_buf *gb = bpf_map_lookup_elem(&gather, &zero);
	n = gather_iov(a->pl.addr, a->pl.len, n);
	if (n > TJC_PAYLOAD_MAX)
		n = TJC_PAYLOAD_MAX;
	return gb && n && bpf_probe_read_kernel(dst, n, gb->b) == 0 ? n : 0;
}

/* --stack with user stacks: the syscall's ip and the top of the user
 * stack, where the libc wrapper's caller left its return address. */
static __always_inline void fill_caller(struct tjc_caller *c, const struct emit_args *a)
{
	c->ip = 0;
	if (a->stacks && a->stacks->here && a->stacks->u >= 0) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		if (bpf_probe_read_user(c->word, sizeof(c->word), (void *)PT_REGS_SP(regs)) == 0)
			c->ip = PT_REGS_IP(regs);
	}
}

/* Wake the reader only when the ring fills up; otherwise it drains on
 * its timer, which spares the traced CPU an irq_work per event.  Only
 * the record that takes the ring past wakeup_bytes waiting wakes it:
 * the reader then takes everything there is, and while it is behind a
 * wakeup per record (an irq_work, a paravirtual APIC write on a VM:
 * `perf` put it at a quarter of the data program under a saturating
 * burst) would only slow the CPUs it is behind.  size: the record's
 * bytes with the ring's 8-byte header; in_ring: already reserved (the
 * ring's count includes it). */
static __always_inline __u64 wake_flag(void *ring, __u64 size, int in_ring)
{
	__u64 avail, before;

	if (!wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	before = !in_ring ? avail : avail > size ? avail - size : 0;
	return before <= wakeup_bytes && before + size > wakeup_bytes ? BPF_RB_FORCE_WAKEUP
								       : BPF_RB_NO_WAKEUP;
}

static __always_inline void submit(void *ring, void *e, __u64 size)
{
	bpf_ringbuf_submit(e, wake_flag(ring, size + 8, 1));
}

/* A compact record's size with these settings: fixed part, payload room
 * (--payload), stack tail (--stack).  Read-only settings alone: the
 * verifier sees one constant. */
static __always_inline __u32 compact_size(void)
{
	return sizeof(struct tjc_data) + (payload_max ? TJC_PAYLOAD_MAX : 0) +
	       (stack_mode ? sizeof(struct tjc_stack_tail) : 0);
}

/* A send or receive as a tjc_data record at d (in the ring, or in this
 * CPU's batch). */
static __always_inline void fill_compact(struct tjc_data *d, const struct emit_args *a)
{
	d->ts_ns = a->ts;
	d->sock = a->ino;
	d->bytes = a->bytes;
	d->offset = a->offset;
	d->pid = a->pid_tgid >> 32;
	d->tid = (__u32)a->pid_tgid;
	d->fd = a->fd;
	d->flags = a->flags;
	d->type = a->type | TJC_REC_COMPACT;
	d->pad = 0;
	d->pad2 = 0;
	d->payload_len = 0;
	if (payload_max)
		d->payload_len = fill_payload(d->payload, a);
	if (stack_mode) {
		struct tjc_stack_tail *t = (void *)d->payload + (payload_max ? TJC_PAYLOAD_MAX : 0);
		t->ustack = a->stacks ? a->stacks->u : -1;
		t->kstack = a->stacks ? a->stacks->k : -1;
		if (stack_mode & TJC_STACK_USER)
			fill_caller(&t->caller, a);
		else
			t->caller.ip = 0;
	}
}

/* A compact record reserved in the ring on its own: when batching is off
 * or this CPU's batch is in use (a program interrupted while filling it). */
static __always_inline void emit_compact(void *ring, const struct emit_args *a)
{
	struct tjc_data *d;

	if (payload_max && stack_mode)
		d = bpf_ringbuf_reserve(ring, sizeof(*d) + TJC_PAYLOAD_MAX + sizeof(struct tjc_stack_tail), 0);
	else if (payload_max)
		d = bpf_ringbuf_reserve(ring, sizeof(*d) + TJC_PAYLOAD_MAX, 0);
	else if (stack_mode)
		d = bpf_ringbuf_reserve(ring, sizeof(*d) + sizeof(struct tjc_stack_tail), 0);
	else
		d = bpf_ringbuf_reserve(ring, sizeof(*d), 0);
	if (!d) {
		count_drop(TJC_DROP_RINGBUF);
		return;
	}
	fill_compact(d, a);
	submit(ring, d, compact_size());
}

/* Batches: a CPU's compact records are staged in its own slot of the
 * per-CPU `batches` array and go to its ring together, in one
 * bpf_ringbuf_output of batch_max records: the ring's reserve and commit
 * (an IRQ-saving spin lock each, a paravirtual call on a VM: a quarter of
 * the data program's time) are paid once per batch.  A ring record is
 * then one whole record, or one or more compact records back to back
 * (capture/ring_record.c splits them).  A batch goes out when full, when
 * its first record is older than batch_age_ns (checked at the next
 * record), and whenever user space runs `flush_batch` on its CPU (at
 * every drain and at the end, capture/loader.c): no record waits longer
 * than a drain for lack of company.  batch_max 0: no batching. */
const volatile __u32 batch_max = 0;     /* records per batch; the loader sizes it */
const volatile __u64 batch_age_ns = 0;

struct batch {
	/* 1 while a program fills or sends it.  A program runs to its end
	 * on its CPU, but an interrupt's program (a state change in
	 * softirq, the flush's IPI) or, where syscall tracepoints are
	 * preemptible, another task's may come in between: whoever finds it
	 * taken writes straight to the ring (or, the flush, leaves it). */
	__u64 busy;    /* 64 bits: this clang's BPF target has 64-bit cmpxchg only */
	__u32 n;       /* records in rec */
	__u32 pad;
	__u64 first_ts; /* time of rec's first record */
	__u8 rec[TJC_BATCH_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct batch);
} batches SEC(".maps");

/* What user space sees of each CPU's batch (the skeleton's .bss, mapped):
 * the time of its first record, 0 while it is empty.  The loader flushes
 * only CPUs with one, so an idle CPU gets no IPI; CPUs from
 * TJC_BATCH_CPUS on are always flushed.  A cache line each: only its CPU
 * writes it, twice per batch. */
struct tjc_batch_mark batch_pending[TJC_BATCH_CPUS];

static __always_inline void batch_mark(__u64 ts)
{
	__u32 cpu = bpf_get_smp_processor_id();

	if (cpu < TJC_BATCH_CPUS)
		*(volatile __u64 *)&batch_pending[cpu].first_ts = ts;
}

/* The batch's records as one ring record; the batch is empty after, sent
 * or (ring full) counted lost, every record of it. */
static __always_inline void batch_send(void *ring, struct batch *b)
{
	__u64 n = b->n, size = n * compact_size();

	b->n = 0;
	batch_mark(0);
	if (n == 0 || size > TJC_BATCH_BYTES)
		return;
	if (bpf_ringbuf_output(ring, b->rec, size, wake_flag(ring, size + 8, 0)))
		count_drops(TJC_DROP_RINGBUF, n);
}

/* Stage a compact record in this CPU's batch; 0 when the batch is taken
 * (the caller writes the record to the ring itself). */
static __always_inline int batch_add(void *ring, const struct emit_args *a)
{
	__u32 zero = 0, i;
	struct batch *b = bpf_map_lookup_elem(&batches, &zero);
	__u64 at;

	if (!b || __sync_val_compare_and_swap(&b->busy, 0, 1) != 0)
		return 0;
	i = b->n;
	if (i >= batch_max) { /* cannot happen: a full batch is sent at once */
		batch_send(ring, b);
		i = 0;
	}
	at = (__u64)i * compact_size();
	if (at + compact_size() > TJC_BATCH_BYTES) {
		b->busy = 0;
		return 0;
	}
	fill_compact((struct tjc_data *)(b->rec + at), a);
	if (i == 0) {
		b->first_ts = a->ts;
		batch_mark(a->ts | 1); /* never 0 */
	}
	b->n = i + 1;
	if (i + 1 >= batch_max || a->ts - b->first_ts >= batch_age_ns)
		batch_send(ring, b);
	b->busy = 0;
	return 1;
}

/* Lanes (capture_common.h struct tjc_lane): a CPU's compact records
 * written in place into its lane, which user space maps and reads there.
 * `perf` put the batch's copy into the ring (`__pi_memcpy` in
 * bpf_ringbuf_output, the ring's memory cold) at a quarter of the data
 * program on the ping-pong; a lane is written once, where it is read.
 * Only without --payload and --stack (a record is then one 56-byte
 * slot).  lane_slots: a power of two <= TJC_LANE_SLOTS, 0 = no lanes;
 * the loader sets it. */
const volatile __u32 lane_slots = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* the loader: one per possible CPU */
	__type(key, __u32);
	__type(value, struct tjc_lane);
} lanes SEC(".maps");

/* head published after the slot's stores: x86 keeps stores in order, so
 * a compiler barrier is enough there; elsewhere a fully ordered atomic. */
static __always_inline void lane_publish(struct tjc_lane *l, __u64 head)
{
#ifdef __TARGET_ARCH_x86
	asm volatile("" ::: "memory");
	*(volatile __u64 *)&l->head = head + 1;
#else
	__sync_val_compare_and_swap(&l->head, head, head + 1);
#endif
}

/* Write a compact record into this CPU's lane; 0 when the lane is off,
 * full or taken (a program interrupted while filling it): the caller
 * sends the record the batch's way. */
static __always_inline int lane_add(const struct emit_args *a)
{
	__u32 cpu;
	struct tjc_lane *l;
	__u64 head;

	if (!lane_slots || lane_slots > TJC_LANE_SLOTS || payload_max || stack_mode)
		return 0;
	cpu = bpf_get_smp_processor_id();
	l = bpf_map_lookup_elem(&lanes, &cpu);
	if (!l || __sync_val_compare_and_swap(&l->busy, 0, 1) != 0)
		return 0;
	head = l->head;
	if (head - l->tail_seen >= lane_slots) {
		/* The reader's line (a cache miss), looked at only when the
		 * cached tail says full, and then once per TJC_LANE_RELOOK
		 * records: in a burst the reader is behind for a while, and a
		 * look per record put the data program at 155-170 ns against
		 * 133 with batches alone (capture-burst). */
		if (l->spilled++ & (TJC_LANE_RELOOK - 1)) {
			l->busy = 0;
			return 0;
		}
		l->tail_seen = *(volatile __u64 *)&l->tail;
		if (head - l->tail_seen >= lane_slots) {
			l->busy = 0;
			return 0;
		}
	}
	fill_compact(&l->slot[head & (lane_slots - 1) & (TJC_LANE_SLOTS - 1)], a);
	lane_publish(l, head);
	l->busy = 0;
	return 1;
}

/* Reserve, fill and submit one event: a whole tjc_event, or a tjc_data
 * for a send or receive whose socket this CPU's ring has told. */
static __always_inline void emit(const struct emit_args *a)
{
	struct tjc_event *e;
	__u32 cpu;
	void *ring;

	if (a->compact && lane_add(a))
		return;
	cpu = bpf_get_smp_processor_id();
	ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring) {
		count_drop(TJC_DROP_RINGBUF);
		return;
	}
	if (a->compact) {
		if (!batch_max || !batch_add(ring, a))
			emit_compact(ring, a);
		return;
	}
	/* Conditioned on the read-only payload_max alone, so the verifier
	 * sees one size and walks one path. */
	if (payload_max && (stack_mode & TJC_STACK_USER))
		e = bpf_ringbuf_reserve(ring, sizeof(*e) + TJC_PAYLOAD_MAX + sizeof(struct tjc_caller), 0);
	else if (payload_max)
		e = bpf_ringbuf_reserve(ring, sizeof(*e) + TJC_PAYLOAD_MAX, 0);
	else if (stack_mode & TJC_STACK_USER)
		e = bpf_ringbuf_reserve(ring, sizeof(*e) + sizeof(struct tjc_caller), 0);
	else
		e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		count_drop(TJC_DROP_RINGBUF);
		return;
	}
	e->ts_ns = a->ts;
	e->sock = a->ino;
	e->bytes = a->bytes;
	e->offset = a->offset;
	e->pid = a->pid_tgid >> 32;
	e->tid = (__u32)a->pid_tgid;
	e->fd = a->fd;
	e->netns = a->si->netns;
	e->type = a->type;
	e->family = a->si->family;
	e->lport = a->si->lport;
	e->rport = a->si->rport;
	e->flags = a->flags;
	e->arg = a->arg;
	e->ustack = a->stacks ? a->stacks->u : -1;
	e->kstack = a->stacks ? a->stacks->k : -1;
	__builtin_memcpy(e->laddr, a->si->laddr, 16);
	__builtin_memcpy(e->raddr, a->si->raddr, 16);
	e->payload_len = 0;
	if (payload_max)
		e->payload_len = fill_payload(e->payload, a);
	if (stack_mode & TJC_STACK_USER)
		fill_caller((void *)e->payload + (payload_max ? TJC_PAYLOAD_MAX : 0), a);
	/* This ring now holds the socket's addresses: user space puts them
	 * back into the compact records that follow here. */
	if (a->st && cpu < 64)
		__sync_fetch_and_or(&a->st->cpus_told, 1ull << cpu);
	submit(ring, e, sizeof(*e) + (payload_max ? TJC_PAYLOAD_MAX : 0) +
			((stack_mode & TJC_STACK_USER) ? sizeof(struct tjc_caller) : 0));
}

/* The socket's offsets, creating them if needed.  fresh: a new connection
 * (accept, connect) whose offsets start at 0 now.  Otherwise a socket not
 * yet known predates capture (or its start was filtered out): it gets
 * SOCKF_PREEXISTING and *announce is set so the caller emits SOCKET; its
 * offsets are TCP sequence numbers, which both ends of the connection
 * share (lib/EVLOG.md): the next byte the program writes (write_seq) and
 * reads (copied_seq), read now, once.  The hooks run after the call, so a
 * caller that announces takes the call's own bytes back first
 * (sock_seq_rewind). */
static __always_inline struct sockst *sock_state(struct sock *sk, __u64 ino,
						 int fresh, int *announce)
{
	__u64 key = (__u64)sk;
	struct sockst *st = st_get(sk);
	struct sockst init = { .ino = ino, .fd = -1, .ustack = -1, .kstack = -1 };

	if (st && st->ino == ino && !fresh)
		return st;
	if (fresh)
		return st_set(sk, &init);
	struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	init.flags = SOCKF_PREEXISTING;
	init.off[0] = tp->write_seq;
	init.off[1] = tp->copied_seq;
	if (hooks == TJC_HOOKS_SOCK) {
		/* Made nameless, then named by one CPU: of the CPUs that
		 * first see the socket at once, that one announces it. */
		init.ino = 0;
		if (!st)
			st = bpf_sk_storage_get(&sk_states, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
		if (!st) {
			count_drop(TJC_DROP_MAP);
			return NULL;
		}
		if (__sync_val_compare_and_swap(&st->ino, 0, ino) == 0) {
			if (announce)
				*announce = 1;
			return st;
		}
		return st->ino == ino ? st : NULL;
	}
	/* A stale entry (the struct sock was freed and reused) is replaced. */
	if (bpf_map_update_elem(&socks, &key, &init, st ? BPF_ANY : BPF_NOEXIST)) {
		st = bpf_map_lookup_elem(&socks, &key); /* another CPU won the race */
		if (!st || st->ino != ino) {
			count_drop(TJC_DROP_MAP);
			return NULL;
		}
		return st;
	}
	if (announce)
		*announce = 1;
	return bpf_map_lookup_elem(&socks, &key);
}

/* A socket just announced by a send or receive of bytes: its sequence
 * numbers were read after that call, so its start is bytes earlier. */
static __always_inline void sock_seq_rewind(struct sockst *st, int out, __s64 bytes)
{
	if (bytes > 0)
		st->off[out ? 0 : 1] -= bytes;
}


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

/* Where a call's bytes are (for the payload prefix) and, for the mmsg
 * calls, the bytes the call moved in all its messages. */
static __always_inline void payload_source(const struct call *c, long ret,
					   struct psrc *pl, __s64 *bytes)
{
	pl->addr = 0;
	pl->len = 0;
	pl->cap = 0;
	pl->iov = 0;
	switch (c->kind) {
	case K_BUF:
		pl->addr = c->buf;
		pl->len = c->len;
		return;
	case K_IOV:
		pl->iov = 1;
		pl->addr = c->buf;
		pl->len = c->len;
		return;
	case K_MSG: {
		struct user_msghdr *m = (struct user_msghdr *)c->buf;
		if (!payload_max)
			return;
		pl->iov = 1;
		pl->addr = (__u64)BPF_CORE_READ_USER(m, msg_iov);
		pl->len = BPF_CORE_READ_USER(m, msg_iovlen);
		return;
	}
	case K_MMSG: {
		struct mmsghdr *v = (struct mmsghdr *)c->buf;
		*bytes = mmsg_total(c->buf, ret);
		if (!payload_max || ret <= 0)
			return;
		/* The first message's: the record's bytes are all messages'. */
		pl->iov = 1;
		pl->addr = (__u64)BPF_CORE_READ_USER(v, msg_hdr.msg_iov);
		pl->len = BPF_CORE_READ_USER(v, msg_hdr.msg_iovlen);
		pl->cap = BPF_CORE_READ_USER(v, msg_len);
		if (pl->cap == 0)
			pl->addr = 0;
		return;
	}
	}
}

/* Return values that say nothing happened: EAGAIN, and the restart codes
 * of an interrupted call (ERESTARTSYS..ERESTART_RESTARTBLOCK), which the
 * caller never sees and which are followed by the restarted call. */
static __always_inline int nothing_moved(long ret)
{
	return ret == -EAGAIN || (ret <= -512 && ret >= -516);
}


#endif
