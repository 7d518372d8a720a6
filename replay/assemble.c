/* Syscall events -> messages (see assemble.h and replay/README.md). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "assemble.h"
#include "../lib/u64map.h"
#include "../lib/listeners.h"
#include "../lib/util.h"

#define DEFAULT_IDLE_NS    2000000000ull
#define DEFAULT_REORDER_NS 1000000ull
#define DEFAULT_EXPIRE_NS  600000000000ull

/* TCP states as in the kernel's include/net/tcp_states.h. */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT    2
#define TCP_SYN_RECV    3

struct asock;

struct amsg {
	struct tj_message m;
	struct amsg *prev, *next;   /* node's start-ordered list: open + held */
	struct amsg *lprev, *lnext; /* node's idle LRU: open only */
	struct asock *sock;         /* while open */
	uint64_t serial;            /* its socket's (tj_replay_sock_serial) */
	uint64_t end;               /* stream offset after the last byte */
	uint64_t lru_ts;            /* ts_last when put at the LRU's tail */
	int done;
	uint8_t pbuf[];             /* payload copy (keep_payload only) */
};
_Static_assert(offsetof(struct amsg, m) == 0, "tj_replay_sock_serial casts a message to its amsg");

struct asock {
	uint64_t id;
	uint64_t serial;             /* numbers the replay's sockets from 1, never reused */
	struct asock *lprev, *lnext; /* node's socket LRU, by last event */
	struct amsg *open;           /* the message now growing, or NULL */
	uint64_t last_ts;
	uint64_t lru_ts;             /* last_ts when put at the LRU's tail */
	uint64_t ts_open;
	uint64_t next_off[2];        /* per direction: offset after the last byte */
	uint8_t seen[2];             /* a byte went this way already */
	uint8_t idle_ended[2];       /* the last message this way ended by idle */
	uint8_t role;
	uint8_t role_guessed;
	uint8_t midstream;
	uint8_t seqoff;              /* offsets are TCP sequence numbers */
	uint8_t have_addr;
	uint32_t seq;
	uint32_t pid;
	uint8_t family;
	uint16_t lport, rport;
	uint8_t laddr[16], raddr[16];
	uint8_t has_origin;          /* capture --tag: the client end, from a TAG */
	uint32_t origin_node;
	uint64_t origin_sock;
};

/* A TAG waiting for the socket accepted on its addresses (the kernel
 * reads the tag at the handshake, before accept() makes the socket). */
struct ptag {
	uint8_t family;
	uint16_t lport, rport;
	uint8_t laddr[16], raddr[16];
	uint32_t origin_node;
	uint64_t origin_sock;
};

struct anode {
	uint32_t id;
	int ended;
	/* drain() looks at the head (often cold in cache) only when it may
	 * deliver: the head completed, or its reorder wait is over */
	int kick;
	uint64_t wait_until;         /* UINT64_MAX: not waiting */
	uint64_t clock;              /* latest timestamp seen on this node */
	struct tj_u64map socks;      /* socket id -> struct asock * */
	struct amsg *head, *tail;    /* by ts_first */
	/* The LRUs are lazy: a message that grows, a socket that moves bytes,
	 * only updates its time; when it reaches the head and proves fresher
	 * than its place, it goes back to the tail.  So an event touches no
	 * neighbour, and the head is looked at only when due. */
	struct amsg *lhead, *ltail;  /* by time put at the tail */
	struct asock *shead, *stail;
	uint64_t idle_ns, expire_ns;
	uint64_t lru_due, slru_due;  /* when the heads need a look */
	uint8_t listening[65536 / 8];/* local ports this node accepted on */
	/* Capture's start-up scan (LISTEN, SCAN events): the sockets that
	 * listened when capture began, and whether the list is complete. */
	struct tj_listeners listeners;
	int scanned;
	/* TAGs not yet claimed, by hash of their addresses -> index in ptags.
	 * A 4-tuple names one connection at a time on a node, so a newer TAG
	 * of the same addresses replaces an unclaimed older one. */
	struct tj_u64map tags;
	struct ptag *ptags;
	size_t nptags, capptags;
	uint32_t *free_ptags;        /* indices of claimed slots, for reuse */
	size_t nfree_ptags, capfree_ptags;
};

struct tj_assembler {
	uint64_t idle_ns, reorder_ns, expire_ns;
	int keep_payload;
	int raw_payload;             /* keep_payload unmasked (label only) */
	tj_message_fn fn;
	void *ctx;
	struct tj_u64map node_ix;    /* node id -> index in nodes */
	struct anode **nodes;
	size_t nnodes, capnodes;
	struct anode *last;          /* cache: consecutive events share a node */
	struct amsg *free_msgs;
	struct asock *free_socks;
	uint64_t held, nsocks;
	uint64_t serials;            /* sockets made so far */
	struct tj_replay_stats st;
};

/* ---- allocation: freelists, so a steady state allocates nothing ---- */

static struct amsg *msg_alloc(struct tj_assembler *a)
{
	struct amsg *m = a->free_msgs;
	if (m) {
		a->free_msgs = m->next;
	} else {
		m = malloc(sizeof(*m) + (a->keep_payload ? TJ_PAYLOAD_MAX : 0));
		if (!m)
			return NULL;
	}
	/* no memset: start_message sets every field (a rep stos of the
	 * whole struct was a tenth of the replay's time) */
	return m;
}

static void msg_release(struct tj_assembler *a, struct amsg *m)
{
	m->next = a->free_msgs;
	a->free_msgs = m;
}

static struct asock *sock_alloc(struct tj_assembler *a)
{
	struct asock *s = a->free_socks;
	if (s)
		a->free_socks = s->lnext;
	else if (!(s = malloc(sizeof(*s))))
		return NULL;
	memset(s, 0, sizeof(*s));
	return s;
}

/* ---- intrusive lists ---- */

static void lru_unlink(struct anode *n, struct amsg *m)
{
	if (m->lprev) {
		m->lprev->lnext = m->lnext;
	} else {
		n->lhead = m->lnext;
		n->lru_due = m->lnext ? m->lnext->lru_ts + n->idle_ns : UINT64_MAX;
	}
	if (m->lnext)
		m->lnext->lprev = m->lprev;
	else
		n->ltail = m->lprev;
	m->lprev = m->lnext = NULL;
}

static void lru_push(struct anode *n, struct amsg *m)
{
	m->lru_ts = m->m.ts_last;
	m->lnext = NULL;
	m->lprev = n->ltail;
	if (n->ltail) {
		n->ltail->lnext = m;
	} else {
		n->lhead = m;
		n->lru_due = m->lru_ts + n->idle_ns;
	}
	n->ltail = m;
}

static void slru_unlink(struct anode *n, struct asock *s)
{
	if (s->lprev) {
		s->lprev->lnext = s->lnext;
	} else {
		n->shead = s->lnext;
		n->slru_due = s->lnext ? s->lnext->lru_ts + n->expire_ns : UINT64_MAX;
	}
	if (s->lnext)
		s->lnext->lprev = s->lprev;
	else
		n->stail = s->lprev;
	s->lprev = s->lnext = NULL;
}

static void slru_push(struct anode *n, struct asock *s)
{
	s->lru_ts = s->last_ts;
	s->lnext = NULL;
	s->lprev = n->stail;
	if (n->stail) {
		n->stail->lnext = s;
	} else {
		n->shead = s;
		n->slru_due = s->lru_ts + n->expire_ns;
	}
	n->stail = s;
}

/* Insert by ts_first.  Events come nearly in time order, so the walk back
 * from the tail is short (usually zero steps). */
static void start_insert(struct anode *n, struct amsg *m)
{
	struct amsg *after = n->tail;
	while (after && after->m.ts_first > m->m.ts_first)
		after = after->prev;
	m->prev = after;
	m->next = after ? after->next : n->head;
	if (m->next)
		m->next->prev = m;
	else
		n->tail = m;
	if (after)
		after->next = m;
	else
		n->head = m;
}

static void start_unlink(struct anode *n, struct amsg *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		n->head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		n->tail = m->prev;
}

/* ---- nodes and sockets ---- */

static struct anode *node_get(struct tj_assembler *a, uint32_t id)
{
	if (a->last && a->last->id == id)
		return a->last;
	/* The merge interleaves nodes event by event: a short scan beats
	 * hashing for the few nodes of a dataset. */
	for (size_t i = 0; i < a->nnodes && i < 8; i++)
		if (a->nodes[i]->id == id)
			return a->last = a->nodes[i];
	int added;
	uint64_t *ix = tj_u64map_upsert(&a->node_ix, id, &added);
	if (!ix)
		return NULL;
	if (added) {
		if (a->nnodes == a->capnodes) {
			size_t cap = a->capnodes ? a->capnodes * 2 : 4;
			struct anode **nn = realloc(a->nodes, cap * sizeof(*nn));
			if (!nn) {
				tj_u64map_del(&a->node_ix, id);
				return NULL;
			}
			a->nodes = nn;
			a->capnodes = cap;
		}
		struct anode *n = calloc(1, sizeof(*n));
		if (!n) {
			tj_u64map_del(&a->node_ix, id);
			return NULL;
		}
		n->id = id;
		n->idle_ns = a->idle_ns;
		n->expire_ns = a->expire_ns;
		n->lru_due = n->slru_due = UINT64_MAX;
		n->wait_until = UINT64_MAX;
		tj_u64map_init_blocks(&n->socks); /* socket ids count up */
		tj_u64map_init(&n->tags);
		*ix = a->nnodes;
		a->nodes[a->nnodes++] = n;
	}
	a->last = a->nodes[*ix];
	return a->last;
}

static struct asock *sock_find(struct anode *n, uint64_t id)
{
	uint64_t *p = tj_u64map_get(&n->socks, id);
	return p ? (struct asock *)(uintptr_t)*p : NULL;
}

static void sock_take_addr(struct asock *s, const struct tj_event *ev)
{
	/* A connecting socket's first STATE (-> SYN_SENT) comes before the
	 * kernel picked its local port: take the ports of a later event. */
	if (ev->family == 0 || (s->have_addr && (s->lport != 0 || ev->lport == 0)))
		return;
	s->have_addr = 1;
	s->family = ev->family;
	s->lport = ev->lport;
	s->rport = ev->rport;
	memcpy(s->laddr, ev->laddr, 16);
	memcpy(s->raddr, ev->raddr, 16);
}

static uint64_t tag_hash(unsigned family, const uint8_t *laddr, uint16_t lport,
			 const uint8_t *raddr, uint16_t rport)
{
	uint64_t h = tj_hash64(family ^ (uint64_t)lport << 8 ^ (uint64_t)rport << 24);
	for (int i = 0; i < 16; i += 8) {
		uint64_t l, r;
		memcpy(&l, laddr + i, 8);
		memcpy(&r, raddr + i, 8);
		h = tj_hash64(tj_hash64(h ^ l) ^ r);
	}
	return h;
}

/* A TAG event: keep it until the socket accepted on its addresses shows. */
static int tag_keep(struct anode *n, const struct tj_event *ev)
{
	uint64_t h = tag_hash(ev->family, ev->laddr, ev->lport, ev->raddr, ev->rport);
	uint64_t *ix = tj_u64map_get(&n->tags, h);
	size_t i;
	if (ix) {
		i = (size_t)*ix;
	} else if (n->nfree_ptags) {
		i = n->free_ptags[--n->nfree_ptags];
	} else {
		if (tj_grow((void **)&n->ptags, &n->capptags, n->nptags + 1,
			    sizeof(*n->ptags)) < 0)
			return -TJ_E_NOMEM;
		i = n->nptags++;
	}
	if (!ix && tj_u64map_put(&n->tags, h, i) < 0)
		return -TJ_E_NOMEM;
	struct ptag *t = &n->ptags[i];
	t->family = ev->family;
	t->lport = ev->lport;
	t->rport = ev->rport;
	memcpy(t->laddr, ev->laddr, 16);
	memcpy(t->raddr, ev->raddr, 16);
	t->origin_node = ev->arg;
	t->origin_sock = ev->offset;
	return 0;
}

/* A server socket with addresses: claim the TAG waiting for them. */
static int tag_claim(struct anode *n, struct asock *s)
{
	if (s->has_origin || !s->have_addr || !n->nptags)
		return 0;
	uint64_t h = tag_hash(s->family, s->laddr, s->lport, s->raddr, s->rport);
	uint64_t *ix = tj_u64map_get(&n->tags, h);
	if (!ix)
		return 0;
	size_t i = (size_t)*ix;
	const struct ptag *t = &n->ptags[i];
	if (t->family != s->family || t->lport != s->lport || t->rport != s->rport ||
	    memcmp(t->laddr, s->laddr, 16) || memcmp(t->raddr, s->raddr, 16))
		return 0; /* another connection's hash */
	s->has_origin = 1;
	s->origin_node = t->origin_node;
	s->origin_sock = t->origin_sock;
	tj_u64map_del(&n->tags, h);
	if (tj_grow((void **)&n->free_ptags, &n->capfree_ptags, n->nfree_ptags + 1,
		    sizeof(*n->free_ptags)) < 0)
		return 0; /* the slot is only not reused */
	n->free_ptags[n->nfree_ptags++] = (uint32_t)i;
	return 0;
}

static struct asock *sock_new(struct tj_assembler *a, struct anode *n,
			      const struct tj_event *ev)
{
	struct asock *s = sock_alloc(a);
	if (!s)
		return NULL;
	if (tj_u64map_put(&n->socks, ev->sock, (uint64_t)(uintptr_t)s) < 0) {
		s->lnext = a->free_socks;
		a->free_socks = s;
		return NULL;
	}
	s->id = ev->sock;
	s->serial = ++a->serials;
	s->pid = ev->pid;
	s->last_ts = ev->ts_ns;
	sock_take_addr(s, ev);
	slru_push(n, s);
	if (++a->nsocks > a->st.peak_sockets)
		a->st.peak_sockets = a->nsocks;
	return s;
}

/* ---- completion and delivery ---- */

static void complete(struct anode *n, struct amsg *m, uint32_t flags)
{
	if (m->done)
		return;
	m->done = 1;
	m->m.flags |= flags;
	if (!m->prev)
		n->kick = 1; /* the head: drain may deliver */
	lru_unlink(n, m);
	if (m->sock && m->sock->open == m)
		m->sock->open = NULL;
	m->sock = NULL;
}

/* Deliver complete messages from the head of the start order.  One that
 * completed may still wait reorder_ns for an event slightly out of order
 * that would start a message before it (not once the node ended). */
static int drain(struct tj_assembler *a, struct anode *n)
{
	struct amsg *m;
	if (!n->kick && n->clock < n->wait_until && !n->ended)
		return 0;
	n->kick = 0;
	n->wait_until = UINT64_MAX;
	while ((m = n->head) && m->done) {
		if (!n->ended && m->m.ts_first + a->reorder_ns > n->clock) {
			n->wait_until = m->m.ts_first + a->reorder_ns;
			break;
		}
		start_unlink(n, m);
		a->held--;
		a->st.messages++;
		if (m->m.is_request)
			a->st.requests++;
		if (m->m.flags & TJ_MSG_GAP)
			a->st.gaps++;
		if (m->m.flags & TJ_MSG_CUT)
			a->st.cut++;
		if (m->m.role == TJ_ROLE_UNKNOWN)
			a->st.unknown_role++;
		int rc = a->fn(a->ctx, &m->m);
		msg_release(a, m);
		if (rc) {
			n->kick = 1; /* the rest is still deliverable */
			return rc;
		}
	}
	return 0;
}

uint64_t tj_replay_sock_serial(const struct tj_message *m)
{
	/* m is the first member of the amsg the replay delivers */
	return ((const struct amsg *)(const void *)m)->serial;
}

static void sock_forget(struct tj_assembler *a, struct anode *n,
			struct asock *s)
{
	if (s->open)
		complete(n, s->open, TJ_MSG_NO_REPLY);
	slru_unlink(n, s);
	tj_u64map_del(&n->socks, s->id);
	s->lnext = a->free_socks;
	a->free_socks = s;
	a->nsocks--;
}

/* The idle rule, and forgetting sockets whose close was lost. */
static void expire(struct tj_assembler *a, struct anode *n)
{
	while (n->lru_due < n->clock) {
		struct amsg *m = n->lhead;
		if (m->m.ts_last + a->idle_ns >= n->clock) {
			lru_unlink(n, m); /* it grew since: not idle */
			lru_push(n, m);
			continue;
		}
		struct asock *s = m->sock;
		if (s)
			s->idle_ended[m->m.key.dir] = 1;
		complete(n, m, TJ_MSG_NO_REPLY);
	}
	while (n->slru_due < n->clock) {
		struct asock *s = n->shead;
		if (s->last_ts + a->expire_ns >= n->clock) {
			slru_unlink(n, s);
			slru_push(n, s);
			continue;
		}
		a->st.expired_sockets++;
		sock_forget(a, n, s);
	}
}

/* ---- events ---- */

/* The side of a socket first seen mid-stream: server if a listener of
 * the start-up scan or a port this node accepted on has it; client if
 * the scan was complete (SCAN) and none does; else unknown for now
 * (re-tried at each message, as ports are learnt). */
static uint8_t guess_role(struct anode *n, struct asock *s, uint32_t *flags)
{
	if (s->role != TJ_ROLE_UNKNOWN) {
		if (s->role_guessed)
			*flags |= TJ_MSG_ROLE_GUESS;
		return s->role;
	}
	if (!s->have_addr)
		return s->role;
	if (tj_listeners_match(&n->listeners, s->family, s->laddr, s->lport) ||
	    (n->listening[s->lport >> 3] & (1u << (s->lport & 7))))
		s->role = TJ_ROLE_SERVER;
	else if (n->scanned)
		s->role = TJ_ROLE_CLIENT;
	else
		return s->role;
	s->role_guessed = 1;
	*flags |= TJ_MSG_ROLE_GUESS;
	return s->role;
}

static int start_message(struct tj_assembler *a, struct anode *n,
			 struct asock *s, const struct tj_event *ev,
			 unsigned dir, uint32_t flags)
{
	struct amsg *x = msg_alloc(a);
	if (!x)
		return -TJ_E_NOMEM;
	struct tj_message *m = &x->m;
	if (s->midstream) {
		flags |= TJ_MSG_MIDSTREAM;
		/* Its first message may have begun before capture: bytes of
		 * it went before the first event, unseen. */
		if (s->seq == 0)
			flags |= TJ_MSG_CUT;
		if (s->seqoff)
			flags |= TJ_MSG_SEQ_OFFSET;
	}
	m->key.node = n->id;
	m->key.sock = s->id;
	m->key.offset = ev->offset;
	m->key.dir = (uint8_t)dir;
	m->role = guess_role(n, s, &flags);
	m->is_request = !(flags & TJ_MSG_CUT) &&
			((m->role == TJ_ROLE_CLIENT && dir == TJ_DIR_OUT) ||
			 (m->role == TJ_ROLE_SERVER && dir == TJ_DIR_IN));
	m->flags = flags;
	m->pid = ev->pid ? ev->pid : s->pid;
	m->tid_first = m->tid_last = ev->tid;
	m->ts_first = m->ts_last = ev->ts_ns;
	m->ts_reply = 0;
	m->tid_reply = 0;
	m->bytes = (uint64_t)ev->bytes;
	m->nsyscalls = 1;
	m->seq = s->seq++;
	m->ts_sock_open = s->ts_open;
	m->family = s->family;
	m->lport = s->lport;
	m->rport = s->rport;
	memcpy(m->laddr, s->laddr, 16);
	memcpy(m->raddr, s->raddr, 16);
	m->stack_id = ev->stack_id;
	m->callsite = 0; /* set by the replay from the stacks block */
	m->has_origin = s->has_origin;
	m->origin_node = s->origin_node;
	m->origin_sock = s->origin_sock;
	m->payload = NULL;
	m->payload_len = 0;
	x->done = 0;
	if (a->keep_payload && ev->payload && ev->payload_len) {
		size_t len = ev->payload_len < TJ_PAYLOAD_MAX ? ev->payload_len
							      : TJ_PAYLOAD_MAX;
		memcpy(x->pbuf, ev->payload, len);
		if (!a->raw_payload)
			a->st.masked += tj_payload_mask(x->pbuf, len);
		m->payload = x->pbuf;
		m->payload_len = (uint16_t)len;
	}
	x->end = ev->offset + (uint64_t)ev->bytes;
	x->sock = s;
	x->serial = s->serial;
	s->open = x;
	s->seen[dir] = 1;
	s->idle_ended[dir] = 0;
	s->next_off[dir] = x->end;
	start_insert(n, x);
	lru_push(n, x);
	if (++a->held > a->st.peak_held)
		a->st.peak_held = a->held;
	return 0;
}

/* A message's payload is its first syscall's prefix, continued by the next
 * syscalls' while every earlier one was captured whole, so the buffer is
 * the message's first bytes.  Runtimes that read a request in pieces need
 * it: Go's net/http reads 1 byte (its background read) before the rest of
 * a keepalive request, so the first syscall alone never holds a header.
 * Masking restarts at the last line start of the old prefix, so a header
 * cut at the seam is masked whole and counted once. */
static void payload_continue(struct tj_assembler *a, struct amsg *x, const struct tj_event *ev)
{
	struct tj_message *m = &x->m;
	if (!a->keep_payload || !m->payload || m->payload_len != m->bytes ||
	    m->payload_len >= TJ_PAYLOAD_MAX || !ev->payload || !ev->payload_len)
		return;
	size_t old = m->payload_len, add = TJ_PAYLOAD_MAX - old;
	if (add > ev->payload_len)
		add = ev->payload_len;
	size_t ls = old;
	while (ls > 0 && x->pbuf[ls - 1] != '\n')
		ls--;
	unsigned before = a->raw_payload ? 0 : tj_payload_mask(x->pbuf + ls, old - ls);
	memcpy(x->pbuf + old, ev->payload, add);
	m->payload_len = (uint16_t)(old + add);
	if (!a->raw_payload)
		a->st.masked += tj_payload_mask(x->pbuf + ls, m->payload_len - ls) - before;
}

/* Bytes moved: grow the open message, or end it and start the next. */
static int on_data(struct tj_assembler *a, struct anode *n, struct asock *s,
		   const struct tj_event *ev)
{
	unsigned dir = ev->type == TJ_EV_SEND ? TJ_DIR_OUT : TJ_DIR_IN;
	uint64_t off = ev->offset, end = off + (uint64_t)ev->bytes;
	struct amsg *x = s->open;

	if (x && x->m.key.dir == dir) {
		if (off == x->end) {
			x->end = end;
			payload_continue(a, x, ev);
		} else if (off > x->end) {
			/* Bytes between were lost: we cannot tell whether they
			 * belonged to this message, so it ends here and the next
			 * starts at the first byte seen again, flagged. */
			complete(n, x, TJ_MSG_NO_REPLY);
			return start_message(a, n, s, ev, dir, TJ_MSG_GAP);
		} else if (off < x->m.key.offset || end > x->end) {
			a->st.late_events++;
			return 0;
		} /* else: a piece of this message that arrived out of order */
		x->m.bytes += (uint64_t)ev->bytes;
		x->m.nsyscalls++;
		x->m.tid_last = ev->tid;
		if (ev->ts_ns > x->m.ts_last)
			x->m.ts_last = ev->ts_ns;
		s->next_off[dir] = x->end;
		return 0;
	}

	uint32_t flags = 0;
	if (s->seen[dir]) {
		if (off < s->next_off[dir]) {
			a->st.late_events++;
			return 0;
		}
		if (off > s->next_off[dir])
			flags |= TJ_MSG_GAP;
		else if (s->idle_ended[dir])
			flags |= TJ_MSG_AFTER_IDLE;
	} else if (!s->midstream && off != 0) {
		flags |= TJ_MSG_GAP; /* seen from its start, yet bytes are missing */
	}
	if (x) { /* the direction flipped: x got its reply */
		x->m.ts_reply = ev->ts_ns;
		x->m.tid_reply = ev->tid;
		complete(n, x, 0);
	}
	return start_message(a, n, s, ev, dir, flags);
}

static int on_open(struct tj_assembler *a, struct anode *n, struct asock *s,
		   const struct tj_event *ev)
{
	if (s && (s->seq || s->open)) {
		sock_forget(a, n, s); /* the id came back: a new socket */
		s = NULL;
	}
	if (!s && !(s = sock_new(a, n, ev)))
		return -TJ_E_NOMEM;
	sock_take_addr(s, ev);
	s->midstream = 0;
	s->role = ev->type == TJ_EV_ACCEPT ? TJ_ROLE_SERVER : TJ_ROLE_CLIENT;
	s->role_guessed = 0;
	s->ts_open = ev->ts_ns;
	if (ev->type == TJ_EV_ACCEPT && s->have_addr)
		n->listening[s->lport >> 3] |= (uint8_t)(1u << (s->lport & 7));
	s->has_origin = 0; /* a socket id seen again without data: new role */
	if (ev->type == TJ_EV_ACCEPT)
		return tag_claim(n, s);
	return 0;
}

static void on_state(struct anode *n, struct asock *s, const struct tj_event *ev)
{
	unsigned from = (ev->arg >> 8) & 0xff, to = ev->arg & 0xff;
	if (to != TCP_ESTABLISHED || (s->role != TJ_ROLE_UNKNOWN && !s->role_guessed))
		return;
	if (from == TCP_SYN_SENT) {
		s->role = TJ_ROLE_CLIENT;
	} else if (from == TCP_SYN_RECV) {
		s->role = TJ_ROLE_SERVER;
		tag_claim(n, s);
		if (s->have_addr)
			n->listening[s->lport >> 3] |= (uint8_t)(1u << (s->lport & 7));
	} else {
		return;
	}
	s->role_guessed = 0;
	s->midstream = 0;
	if (!s->ts_open)
		s->ts_open = ev->ts_ns;
}

int tj_assembler_feed(struct tj_assembler *a, const struct tj_event *ev,
		      struct tj_err *err)
{
	struct anode *n = node_get(a, ev->node);
	if (!n)
		return tj_errf(err, TJ_E_NOMEM, "replay: out of memory");
	n->ended = 0;
	a->st.events++;
	if (ev->ts_ns > n->clock)
		n->clock = ev->ts_ns;
	/* The idle rule first: whether a message was idle is judged at this
	 * event's time, before this event could count as its reply. */
	expire(a, n);

	int rc = 0;
	if (ev->type == TJ_EV_LOST || ev->type == TJ_EV_NONE ||
	    ev->type >= TJ_EV__COUNT)
		goto out;
	if (ev->type == TJ_EV_LISTEN) {
		a->st.listeners++;
		if (tj_listeners_add(&n->listeners, ev) < 0)
			return tj_errf(err, TJ_E_NOMEM, "replay: out of memory");
		goto out;
	}
	if (ev->type == TJ_EV_SCAN) {
		n->scanned = 1;
		goto out;
	}
	if (ev->type == TJ_EV_TAG) {
		if (tag_keep(n, ev) < 0)
			return tj_errf(err, TJ_E_NOMEM, "replay: out of memory");
		goto out;
	}
	struct asock *s = sock_find(n, ev->sock);
	switch (ev->type) {
	case TJ_EV_ACCEPT:
	case TJ_EV_CONNECT:
		rc = on_open(a, n, s, ev);
		break;
	case TJ_EV_SOCKET:
	case TJ_EV_SEND:
	case TJ_EV_RECV:
	case TJ_EV_STATE:
		if (!s) {
			if (!(s = sock_new(a, n, ev))) {
				rc = -TJ_E_NOMEM;
				break;
			}
			/* Seen without its accept/connect: it predates the log. */
			s->midstream = ev->type != TJ_EV_STATE;
		}
		sock_take_addr(s, ev);
		s->last_ts = ev->ts_ns > s->last_ts ? ev->ts_ns : s->last_ts;
		if (s->midstream && (ev->flags & TJ_EVF_SEQ_OFFSET))
			s->seqoff = 1;
		if (ev->type == TJ_EV_STATE) {
			on_state(n, s, ev);
		} else if (ev->type == TJ_EV_SOCKET) {
			s->midstream = 1;
		} else if (ev->flags & TJ_EVF_ERROR || ev->bytes < 0) {
			/* a failed call moved nothing */
		} else if (ev->bytes == 0) {
			/* read() == 0: the peer will send nothing more */
			if (ev->type == TJ_EV_RECV && s->open &&
			    s->open->m.key.dir == TJ_DIR_IN)
				complete(n, s->open, TJ_MSG_NO_REPLY);
		} else {
			rc = on_data(a, n, s, ev);
		}
		break;
	case TJ_EV_CLOSE:
		if (s)
			sock_forget(a, n, s);
		break;
	case TJ_EV_SHUTDOWN:
		/* how: SHUT_RD 0 ends what comes in, SHUT_WR 1 what goes out */
		if (s && s->open) {
			unsigned d = s->open->m.key.dir;
			if (ev->arg == 2 || (ev->arg == 0 && d == TJ_DIR_IN) ||
			    (ev->arg == 1 && d == TJ_DIR_OUT))
				complete(n, s->open, TJ_MSG_NO_REPLY);
		}
		break;
	}
	if (rc < 0)
		return tj_errf(err, -rc, "replay: out of memory");
out:
	return drain(a, n);
}

int tj_assembler_end_node(struct tj_assembler *a, uint32_t node, struct tj_err *err)
{
	uint64_t *ix = tj_u64map_get(&a->node_ix, node);
	if (!ix)
		return 0;
	struct anode *n = a->nodes[*ix];
	while (n->lhead)
		complete(n, n->lhead, TJ_MSG_NO_REPLY);
	n->ended = 1;
	return drain(a, n);
}

int tj_assembler_end(struct tj_assembler *a, struct tj_err *err)
{
	for (size_t i = 0; i < a->nnodes; i++) {
		int rc = tj_assembler_end_node(a, a->nodes[i]->id, err);
		if (rc)
			return rc;
	}
	return 0;
}

int tj_assembler_new(struct tj_assembler **ap, const struct tj_replay_opts *opts,
		     tj_message_fn fn, void *ctx, struct tj_err *err)
{
	struct tj_assembler *a = calloc(1, sizeof(*a));
	if (!a)
		return tj_errf(err, TJ_E_NOMEM, "replay: out of memory");
	a->idle_ns = opts && opts->idle_ns ? opts->idle_ns : DEFAULT_IDLE_NS;
	a->reorder_ns = opts && opts->reorder_ns ? opts->reorder_ns : DEFAULT_REORDER_NS;
	a->expire_ns = opts && opts->sock_expire_ns ? opts->sock_expire_ns : DEFAULT_EXPIRE_NS;
	if (a->expire_ns < a->idle_ns)
		a->expire_ns = a->idle_ns;
	a->keep_payload = opts ? opts->keep_payload : 0;
	a->raw_payload = opts ? opts->raw_payload : 0;
	a->fn = fn;
	a->ctx = ctx;
	tj_u64map_init(&a->node_ix);
	*ap = a;
	return 0;
}

uint64_t tj_assembler_held(const struct tj_assembler *a)
{
	return a->held;
}

const struct tj_replay_stats *tj_assembler_stats(const struct tj_assembler *a)
{
	return &a->st;
}

static void free_chain(struct amsg *m)
{
	while (m) {
		struct amsg *nx = m->next;
		free(m);
		m = nx;
	}
}

void tj_assembler_free(struct tj_assembler *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nnodes; i++) {
		struct anode *n = a->nodes[i];
		free_chain(n->head);
		for (struct asock *s = n->shead, *nx; s; s = nx) {
			nx = s->lnext;
			free(s);
		}
		tj_u64map_free(&n->socks);
		tj_listeners_free(&n->listeners);
		tj_u64map_free(&n->tags);
		free(n->ptags);
		free(n->free_ptags);
		free(n);
	}
	free_chain(a->free_msgs);
	for (struct asock *s = a->free_socks, *nx; s; s = nx) {
		nx = s->lnext;
		free(s);
	}
	free(a->nodes);
	tj_u64map_free(&a->node_ix);
	free(a);
}
