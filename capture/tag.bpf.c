// SPDX-License-Identifier: GPL-2.0
/* Kernel side of `tracejoin capture --tag`: a sock_ops program, attached
 * to the cgroup v2 root, that carries a connection's origin across
 * address translation (capture/README.md, "Tagging").
 *
 *  - client side: when connect() sends its SYN, a TCP option (kind 254,
 *    tag_common.h) holding this node's id and the socket's id (the inode
 *    number capture records) is written into it;
 *  - server side: every listener made while capture runs keeps its SYNs
 *    (TCP_SAVE_SYN), and when a connection is established the option is
 *    read back from its SYN and handed to user space as a TAG record with
 *    the connection's addresses as the server sees them.  The accepted
 *    socket has no inode yet at that moment (accept() has not run), so the
 *    replay pairs the TAG with the socket accepted on those addresses.
 *
 * Nothing here runs per data packet: the header callbacks are enabled on a
 * connecting socket until its handshake ends, and not at all elsewhere. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "capture_common.h"
#include "tag_common.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOL_TCP 6
#define TCP_SAVE_SYN 27
#define TCPHDR_SYN 0x02
#define TCPHDR_ACK 0x10
#define ENOMSG 42
#define ENOENT 2

/* Set by the loader: the node id tags carry, or each socket's network
 * namespace inode (capture --netns, where a namespace is a node). */
const volatile __u32 tag_node = 0;
const volatile __u8 tag_per_netns = 0;
/* capture --port: only connections with this local or remote port. */
const volatile __u16 tag_port = 0;

static __always_inline int port_wanted(struct bpf_sock_ops *skops)
{
	if (!tag_port)
		return 1;
	return skops->local_port == tag_port ||
	       bpf_ntohs((__u16)(skops->remote_port >> 16)) == tag_port;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} tag_ring SEC(".maps");

/* Wake the reader when the ring is half full; otherwise it drains on its
 * timer (as capture's own rings do), sparing an irq_work per record. */
#define TAG_RING_WAKE (1 << 19)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TJT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} tag_stats SEC(".maps");

struct tag_opt {
	__u8 kind;
	__u8 len;
	__be16 exid;
	__be32 node;
	__be32 sock;
} __attribute__((packed));

static __always_inline void count(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&tag_stats, &i);
	if (v)
		(*v)++;
}

static __always_inline __u32 netns_of(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* The socket id capture records: the inode of sk->sk_socket. */
static __always_inline __u64 ino_of(struct sock *sk)
{
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	if (!so)
		return 0;
	struct socket_alloc *sa = container_of(so, struct socket_alloc, socket);
	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

static __always_inline int pure_syn(struct bpf_sock_ops *skops)
{
	return (skops->skb_tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) == TCPHDR_SYN;
}

static __always_inline void write_tag(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;
	if (!bsk)
		return;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return;
	struct sock *sk = (struct sock *)tp;
	__u32 node = tag_per_netns ? netns_of(sk) : tag_node;
	struct tag_opt opt = {
		.kind = TJT_OPT_KIND, .len = TJT_OPT_LEN,
		.exid = bpf_htons(TJT_OPT_EXID),
		.node = bpf_htonl(node), .sock = bpf_htonl((__u32)ino_of(sk)),
	};
	if (bpf_store_hdr_opt(skops, &opt, sizeof(opt), 0))
		count(TJT_SYN_NO_ROOM);
	else
		count(TJT_SYN_TAGGED);
}

static __always_inline void read_tag(struct bpf_sock_ops *skops)
{
	struct tag_opt opt = {
		.kind = TJT_OPT_KIND, .len = 4, /* search by kind + experiment id */
		.exid = bpf_htons(TJT_OPT_EXID),
	};
	long n = bpf_load_hdr_opt(skops, &opt, sizeof(opt), BPF_LOAD_HDR_OPT_TCP_SYN);
	if (n == -ENOENT) {
		count(TJT_ACCEPT_NO_SYN);
		return;
	}
	if (n != TJT_OPT_LEN) {
		count(TJT_ACCEPT_NO_OPT);
		return;
	}
	count(TJT_ACCEPT_TAGGED);
	struct tjc_event *e = bpf_ringbuf_reserve(&tag_ring, sizeof(*e), 0);
	if (!e) {
		count(TJT_RING_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->type = TJC_EV_TAG;
	e->fd = -1;
	e->ustack = e->kstack = -1;
	e->arg = bpf_ntohl(opt.node);
	e->offset = bpf_ntohl(opt.sock);
	e->family = skops->family;
	e->lport = (__u16)skops->local_port;
	e->rport = bpf_ntohs((__u16)(skops->remote_port >> 16));
	if (skops->family == AF_INET) {
		__builtin_memcpy(e->laddr, &skops->local_ip4, 4);
		__builtin_memcpy(e->raddr, &skops->remote_ip4, 4);
	} else {
		__u32 l[4] = { skops->local_ip6[0], skops->local_ip6[1],
			       skops->local_ip6[2], skops->local_ip6[3] };
		__u32 r[4] = { skops->remote_ip6[0], skops->remote_ip6[1],
			       skops->remote_ip6[2], skops->remote_ip6[3] };
		__builtin_memcpy(e->laddr, l, 16);
		__builtin_memcpy(e->raddr, r, 16);
	}
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp = bsk ? bpf_skc_to_tcp_sock(bsk) : NULL;
	if (tp)
		e->netns = netns_of((struct sock *)tp);
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&tag_ring, BPF_RB_AVAIL_DATA) > TAG_RING_WAKE
			   ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

SEC("sockops")
int tag_sockops(struct bpf_sock_ops *skops)
{
	int one = 1;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/* Before the SYN: ask for the header callbacks until the
		 * handshake ends (a retransmitted SYN is tagged too). */
		if (port_wanted(skops))
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
					  BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
					  ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		if (pure_syn(skops) && bpf_reserve_hdr_opt(skops, TJT_OPT_LEN, 0))
			count(TJT_SYN_NO_ROOM);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		if (pure_syn(skops))
			write_tag(skops);
		break;
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		/* Keep each SYN with its connection, so that the option can
		 * be read back once the connection is established. */
		bpf_setsockopt(skops, SOL_TCP, TCP_SAVE_SYN, &one, sizeof(one));
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		if (port_wanted(skops))
			read_tag(skops);
		break;
	}
	return 1;
}
