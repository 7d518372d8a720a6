/* The streamed export (stream.h): the replay's messages become spans in
 * the assembler (xasm.h); the cross-node join is made as messages come,
 * on the connections in flight; calls get their edges as they come. */
#include <stdlib.h>
#include <string.h>
#include "stream.h"
#include "hashix.h"
#include "xasm.h"
#include "../lib/u64map.h"
#include "../lib/util.h"
#include "../replay/join.h"

#define NO_NAME UINT32_MAX
#define NAME_LEN TJ_JOIN_NAME_LEN      /* family, client addr:port, server addr:port */
#define HALF_LEN 19                    /* family, client addr:port */
/* Sockets found by the replay's serial number: a direct-mapped cache in
 * front of the node:sock map, bigger than the connections in flight */
#define SERIAL_SLOTS 65536
struct serial_slot {
	uint32_t serial_lo;  /* the serial's low bits: a socket new to the
				stream misses here, without reading the record
				of the socket that had the slot */
	uint32_t sock;       /* socket index, UINT32_MAX: none */
};

/* A connection name (replay/join.h).  count[end] numbers the sockets of
 * the name on each end, as the join does.  A name is forgotten with its
 * last connection when both ends counted as many sockets (the next ones
 * pair first with first again, as the join would pair them); the join's
 * other use of names, refusing a name two nodes claim, is kept by the
 * address owners (struct stream). */
struct sname {
	unsigned char name[NAME_LEN];
	uint8_t used;
	uint32_t node[2], count[2];
	uint8_t seen[2];
	uint32_t ext_min;  /* least client ordinal written as external */
	uint32_t socks;    /* connections of this name held */
	uint32_t held[2];  /* by end: those connections, a list through ssock.name_next */
	uint32_t hash;     /* name_hash */
	uint32_t next_free;
};

/* A connection in flight. */
struct ssock {
	uint64_t sock;
	uint64_t serial;          /* the replay's number of the socket (tj_replay_sock_serial) */
	uint32_t node;
	uint32_t name, ordinal;
	uint32_t name_next;       /* the name's next connection held on this end */
	uint8_t end, seq, closed, used;
	uint64_t last;            /* wall-clock start of its latest message */
	uint32_t nlive;           /* its spans held by the assembler */
	uint32_t live_head, live_tail; /* those spans in the order they came */
	uint64_t last_off[2];     /* by dir: the latest span's offset */
	uint8_t unordered[2];     /* by dir: a span came with an offset not past the last */
	uint64_t written_to[2];   /* by dir: past the last written request's offset */
	uint32_t next_free;
};

/* Where calls' edges (or --truth labels) come from: a set in memory
 * (--algo, stdin), or a file read ahead only as far as the calls need.
 * An edges file is in about the order calls happen (a correlator emits
 * an edge when it decides, the labels follow the traces), so what is read
 * ahead and not yet used stays small.  The file is parsed by
 * tj_edges_parse a block of whole lines at a time, each after the file's
 * header line; anything it refuses (or a block that cuts a quoted field)
 * gives up, and the in-memory model reads the file whole and says what
 * is wrong with it, naming the line.
 *
 * Read-ahead edges wait in file order in a queue; a call whose edge is
 * among the queue's first EDGE_WINDOW takes it with key comparisons in
 * one stretch of memory.  Only edges passed over on the way to a later
 * call's (the file's order is not quite the calls' order) go into a hash
 * index: in the order the replay delivers calls, most edges are never
 * hashed.  A second edge for a call is found when
 * both sit in the index, or else stays unused to the end: the stream
 * gives up either way, as it did when every edge was indexed. */
struct edge_src {
	const struct tj_edge_set *set;
	const char *path;
	FILE *f;
	char *head;                 /* the header line, with its newline */
	size_t headlen;
	char *buf;                  /* a block: head, then whole lines */
	size_t len, cap;
	int eof;
	int bad;                    /* a block tj_edges_parse refused */
	struct tj_edge *q;          /* read ahead, in file order: q[qh..qn) */
	size_t qh, qn, capq;
	struct tj_keymap index;     /* child -> index in set, or slot in pool */
	struct tj_edge *pool;       /* passed over, not used yet */
	size_t npool, cappool;
	uint32_t free_head;
	uint64_t used;
};

#define EDGE_BLOCK (256 * 1024)

static int edge_src_open(struct edge_src *e, const struct tj_edge_set *set, const char *path)
{
	memset(e, 0, sizeof(*e));
	tj_keymap_init(&e->index);
	e->free_head = UINT32_MAX;
	e->set = set;
	e->path = path;
	if (set)
		return tj_edges_index(&e->index, set, NULL, NULL) == -TJ_E_NOMEM ? -TJ_E_NOMEM : 0;
	if (!(e->f = fopen(path, "rb")))
		return TJ_XSTREAM_GAVE_UP; /* the in-memory model says why */
	return 0;
}

static void edge_src_close(struct edge_src *e)
{
	if (e->f)
		fclose(e->f);
	free(e->head);
	free(e->buf);
	free(e->pool);
	free(e->q);
	tj_keymap_free(&e->index);
}

/* Read the next block of lines into the pool.  0, GAVE_UP, -TJ_E_NOMEM. */
static int edge_src_more(struct edge_src *e)
{
	if (e->eof)
		return TJ_XSTREAM_GAVE_UP;
	size_t start = e->len; /* the tail of the last block, or the head */
	if (tj_grow((void **)&e->buf, &e->cap, start + EDGE_BLOCK + 1, 1) < 0)
		return -TJ_E_NOMEM;
	size_t got = fread(e->buf + start, 1, EDGE_BLOCK, e->f);
	if (ferror(e->f))
		return e->bad = 1, TJ_XSTREAM_GAVE_UP;
	e->len += got;
	if (got < EDGE_BLOCK)
		e->eof = 1;
	size_t cut = e->len;
	if (!e->eof) {
		while (cut > e->headlen && e->buf[cut - 1] != '\n')
			cut--;
		if (cut <= e->headlen)
			return e->bad = 1, TJ_XSTREAM_GAVE_UP; /* a line longer than a block */
	}
	if (!e->head) { /* the first block: remember its header line */
		char *nl = memchr(e->buf, '\n', cut);
		if (!nl)
			return e->bad = 1, TJ_XSTREAM_GAVE_UP;
		e->headlen = (size_t)(nl - e->buf) + 1;
		if (!(e->head = malloc(e->headlen)))
			return -TJ_E_NOMEM;
		memcpy(e->head, e->buf, e->headlen);
	}
	struct tj_edge_set b;
	struct tj_err ignore;
	int rc = tj_edges_parse(&b, e->path, e->buf, cut, &ignore);
	if (rc) {
		e->bad = 1;
		return rc == -TJ_E_NOMEM ? rc : TJ_XSTREAM_GAVE_UP;
	}
	if (e->qh && e->qh == e->qn)
		e->qh = e->qn = 0;
	else if (e->qh > e->capq / 2) { /* the used front: move the rest down */
		memmove(e->q, e->q + e->qh, (e->qn - e->qh) * sizeof(*e->q));
		e->qn -= e->qh;
		e->qh = 0;
	}
	if (b.n && tj_grow((void **)&e->q, &e->capq, e->qn + b.n, sizeof(*e->q)) < 0)
		rc = -TJ_E_NOMEM;
	else if (b.n) {
		memcpy(e->q + e->qn, b.edges, b.n * sizeof(*e->q));
		e->qn += b.n;
	}
	tj_edges_free(&b);
	/* keep the cut line's rest after the header for the next block */
	memmove(e->buf + e->headlen, e->buf + cut, e->len - cut);
	memcpy(e->buf, e->head, e->headlen);
	e->len = e->headlen + (e->len - cut);
	return rc;
}

/* An edge passed over in the queue goes into the index.  0,
 * TJ_XSTREAM_GAVE_UP (a second edge for a call), -TJ_E_NOMEM. */
static int edge_src_park(struct edge_src *e, const struct tj_edge *edge)
{
	int added;
	size_t *v = tj_keymap_upsert(&e->index, &edge->child, &added);
	if (!v)
		return -TJ_E_NOMEM;
	if (!added)
		return e->bad = 1, TJ_XSTREAM_GAVE_UP;
	uint32_t slot = e->free_head;
	if (slot != UINT32_MAX) {
		e->free_head = (uint32_t)e->pool[slot].child.offset;
	} else if (tj_grow((void **)&e->pool, &e->cappool, e->npool + 1, sizeof(*e->pool)) < 0) {
		tj_keymap_del(&e->index, &edge->child);
		return -TJ_E_NOMEM;
	} else {
		slot = (uint32_t)e->npool++;
	}
	e->pool[slot] = *edge;
	*v = slot;
	return 0;
}

/* Edges looked at in the queue before the first is passed over (into
 * the index): the calls' order and the file's differ a little, from
 * node to node and between traces in flight at once. */
#define EDGE_WINDOW 32
#define EDGE_TAKEN 0xff /* child.dir of an edge taken from the window */

/* The queue's front is an edge not taken yet (or the queue is empty). */
static void edge_src_skip_taken(struct edge_src *e)
{
	while (e->qh < e->qn && e->q[e->qh].child.dir == EDGE_TAKEN)
		e->qh++;
}

/* The edge of child into *out: 1 found, 0 none (GAVE_UP from a file),
 * -TJ_E_NOMEM. */
static int edge_src_take(struct edge_src *e, const struct tj_msgkey *child, struct tj_edge *out)
{
	if (e->set) {
		const size_t *v = tj_keymap_get(&e->index, child);
		if (!v)
			return 0;
		e->used++;
		*out = e->set->edges[*v];
		return 1;
	}
	if (e->index.len) {
		const size_t *v = tj_keymap_get(&e->index, child);
		if (v) {
			uint32_t slot = (uint32_t)*v;
			*out = e->pool[slot];
			tj_keymap_del(&e->index, child);
			e->pool[slot].child.offset = e->free_head; /* the free list */
			e->free_head = slot;
			e->used++;
			return 1;
		}
	}
	size_t j = e->qh;
	for (;;) {
		for (; j < e->qn; j++) {
			if (tj_msgkey_eq(&e->q[j].child, child)) {
				*out = e->q[j];
				e->q[j].child.dir = EDGE_TAKEN;
				edge_src_skip_taken(e);
				e->used++;
				return 1;
			}
			for (; j + 1 - e->qh > EDGE_WINDOW; e->qh++) { /* pass the first over */
				if (e->q[e->qh].child.dir == EDGE_TAKEN)
					continue;
				int rc = edge_src_park(e, &e->q[e->qh]);
				if (rc)
					return rc < 0 ? rc : 0;
			}
			while (e->qh <= j && e->q[e->qh].child.dir == EDGE_TAKEN)
				e->qh++; /* not past j: the scan goes on from j */
		}
		size_t rel = j - e->qh; /* edge_src_more moves the queue down */
		int rc = edge_src_more(e);
		if (rc)
			return rc < 0 ? rc : 0;
		j = e->qh + rel;
	}
}

/* Every edge used, none left unread. */
static int edge_src_all_used(struct edge_src *e)
{
	if (e->set)
		return e->used == e->set->n;
	edge_src_skip_taken(e);
	if (e->index.len || e->qh < e->qn)
		return 0;
	while (!e->eof) {
		int rc = edge_src_more(e);
		if (rc || e->qh < e->qn)
			return 0;
	}
	return 1;
}

struct stream {
	const struct tj_xstream_opts *o;
	struct tj_xstream_stats *st;
	struct tj_err *err;
	struct tj_xmodel m;         /* services, and the written trace's model */
	struct tj_xnode *nodes;
	size_t nnodes;
	struct tj_xasm *a;
	struct tj_xwriter wr;
	struct tj_export_sel sel;
	struct edge_src edges, truth;
	/* names */
	struct sname *names;
	size_t nnames, capnames, live_names;
	uint32_t free_name;
	struct tj_hashix name_of;        /* the name's hash -> index (name_hash) */
	/* Which node holds a client address, and a server address and port:
	 * the join refuses a connection name two nodes claim; any name that
	 * could be claimed twice has an address claimed twice, which stays
	 * known after its names are forgotten (hash -> node + 1). */
	struct tj_u64map client_owner, server_owner;
	/* Client addresses no captured node holds whose server-only names
	 * (requests from outside, such as a load generator's) were forgotten:
	 * if a node claims one later, its sockets would have paired with
	 * them (the stream gives up). */
	struct tj_u64map orphan_clients;
	/* sockets */
	struct ssock *socks;
	size_t nsocks, capsocks, live_socks;
	uint32_t free_sock;
	struct tj_hashix sockmap;       /* node:sock -> socket index */
	struct serial_slot *by_serial;   /* by replay serial % SERIAL_SLOTS */
	size_t sweep_at;                 /* sweep when this many connections are held */
	uint32_t *order, *stack;         /* a trace's spans, depth first */
	size_t capord;
	const char *gave_up;
	int done;                        /* --traces N written: write no more */
};



static uint64_t hash_name(const unsigned char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		h = tj_hash64(h ^ v);
	}
	if (i < n) { /* the last bytes in one word, not a mix each (n is in h) */
		uint64_t v = 0;
		for (size_t k = 0; i + k < n; k++)
			v |= (uint64_t)p[i + k] << (8 * k);
		h = tj_hash64(h ^ v);
	}
	return h;
}

/* The index of name into *out, added if new.  0; 1 if its 64-bit hash
 * is another name's (then the stream gives up); -1 if out of memory. */
/* A name's hash in the name table: client ports count up like socket
 * ids (tj_hashix_sock), so eight neighbouring ports of one client and
 * server share a home block; the rest of the name is hashed. */
static uint32_t name_hash(const unsigned char *name)
{
	unsigned char block[NAME_LEN];
	memcpy(block, name, NAME_LEN);
	block[18] &= ~7u; /* the client port's low bits (big-endian) */
	return ((uint32_t)hash_name(block, NAME_LEN) & ~7u) | (name[18] & 7u);
}

/* The index of a connection name, made if new.  0, or -1: no memory. */
static int name_index(struct stream *s, const unsigned char *name, uint32_t *out)
{
	uint32_t h = name_hash(name), i;
	for (size_t pos = 0; (i = tj_hashix_next(&s->name_of, h, &pos)) != TJ_HASHIX_NONE;)
		if (!memcmp(s->names[i].name, name, NAME_LEN)) {
			*out = i;
			return 0;
		}
	i = s->free_name;
	if (i != NO_NAME) {
		s->free_name = s->names[i].next_free;
	} else if (s->nnames >= NO_NAME - 1 ||
		   tj_grow((void **)&s->names, &s->capnames, s->nnames + 1, sizeof(*s->names)) < 0) {
		return -1;
	} else {
		i = (uint32_t)s->nnames++;
	}
	if (tj_hashix_add(&s->name_of, h, i) < 0) {
		s->names[i].used = 0;
		s->names[i].next_free = s->free_name;
		s->free_name = i;
		return -1;
	}
	struct sname *n = &s->names[i];
	memset(n, 0, sizeof(*n));
	memcpy(n->name, name, NAME_LEN);
	n->used = 1;
	n->hash = h;
	n->ext_min = UINT32_MAX;
	n->held[0] = n->held[1] = UINT32_MAX;
	if (++s->live_names > s->st->names)
		s->st->names = s->live_names;
	*out = i;
	return 0;
}

static void forget_name(struct stream *s, uint32_t i)
{
	struct sname *n = &s->names[i];
	tj_hashix_del(&s->name_of, n->hash, i);
	n->used = 0;
	n->next_free = s->free_name;
	s->free_name = i;
	s->live_names--;
}

/* An address (hash h) claimed by node: 0, or 1 if another node holds it.
 * *added: the first claim. */
static int claim(struct tj_u64map *owners, uint64_t h, uint32_t node, int *nomem, int *added)
{
	uint64_t *v = tj_u64map_upsert(owners, h, added);
	if (!v) {
		*nomem = 1;
		return 0;
	}
	if (*added)
		*v = (uint64_t)node + 1;
	return *v != (uint64_t)node + 1;
}

/* A name whose connections are all forgotten: forget it too if the next
 * sockets of the name pair as a fresh name's would. */
static int name_done(struct stream *s, uint32_t i)
{
	struct sname *n = &s->names[i];
	if (n->socks || n->ext_min != UINT32_MAX)
		return 0;
	if (n->count[0] == n->count[1]) {
		forget_name(s, i);
		return 0;
	}
	/* server end only, its client outside the captured nodes */
	uint64_t ch = hash_name(n->name, 17);
	if (n->count[0] == 0 && !tj_u64map_get(&s->client_owner, ch)) {
		if (tj_u64map_put(&s->orphan_clients, ch, 1) < 0)
			return -TJ_E_NOMEM;
		forget_name(s, i);
	}
	return 0;
}

/* The connection of name on end `end` numbered ordinal, if held: a
 * name's connections are a handful (the ports of a 4-tuple reused), so
 * a list beside the name replaces a table keyed by name and ordinal. */
static uint32_t end_of(const struct stream *s, uint32_t name, unsigned end, uint32_t ordinal)
{
	uint32_t i = s->names[name].held[end];
	while (i != UINT32_MAX && s->socks[i].ordinal != ordinal)
		i = s->socks[i].name_next;
	return i;
}

static int give_up(struct stream *s, const char *why)
{
	if (!s->gave_up)
		s->gave_up = why;
	return TJ_XSTREAM_GAVE_UP;
}

/* The live span of socket k with direction dir and offset off, or
 * TJ_XSPAN_NONE.  Found from the newest: the join's partner and a
 * call's parent are mostly recent.  While a direction's offsets came in
 * increasing order, an older span of it with a smaller offset ends the
 * search. */
static uint32_t span_on(struct stream *s, const struct ssock *k, unsigned dir, uint64_t off)
{
	int ordered = !k->unordered[dir];
	for (uint32_t i = k->live_tail; i != TJ_XSPAN_NONE;) {
		const struct tj_xasm_span *x = tj_xasm_span(s->a, i);
		if (x->x.key.dir == dir) {
			if (x->x.key.offset == off)
				return i;
			if (ordered && x->x.key.offset < off)
				return TJ_XSPAN_NONE;
		}
		i = x->sprev;
	}
	return TJ_XSPAN_NONE;
}

/* The held connection of node:sock, or UINT32_MAX. */
static uint32_t sock_find(const struct stream *s, uint32_t node, uint64_t sock, uint32_t h)
{
	uint32_t i;
	for (size_t pos = 0; (i = tj_hashix_next(&s->sockmap, h, &pos)) != TJ_HASHIX_NONE;)
		if (s->socks[i].sock == sock && s->socks[i].node == node)
			return i;
	return UINT32_MAX;
}

/* The live span of a key (the assembler keeps no index of them). */
static uint32_t span_of_key(struct stream *s, const struct tj_msgkey *key)
{
	uint32_t i = sock_find(s, key->node, key->sock, tj_hashix_sock(key->node, key->sock));
	return i != UINT32_MAX ? span_on(s, &s->socks[i], key->dir, key->offset) : TJ_XSPAN_NONE;
}

/* The socket of m, numbered as the join numbers it the first time its
 * node shows it.  *si its index; 0, TJ_XSTREAM_GAVE_UP, or -TJ_E_NOMEM. */
static int socket_of(struct stream *s, const struct tj_message *m, uint32_t *si)
{
	/* The replay says which of its sockets m is on: a socket seen before
	 * is found without hashing its node:sock.  The map stays the truth
	 * (a socket id the replay forgot and sees again is a new serial but
	 * the same connection to the join), so a new serial looks there. */
	uint64_t serial = tj_replay_sock_serial(m);
	struct serial_slot *cached = &s->by_serial[serial % SERIAL_SLOTS];
	if (cached->serial_lo == (uint32_t)serial && cached->sock != UINT32_MAX &&
	    s->socks[cached->sock].serial == serial) {
		*si = cached->sock;
		return 0;
	}
	uint32_t h = tj_hashix_sock(m->key.node, m->key.sock);
	uint32_t held = sock_find(s, m->key.node, m->key.sock, h);
	if (held != UINT32_MAX) {
		*si = held;
		s->socks[*si].serial = serial;
		cached->serial_lo = (uint32_t)serial;
		cached->sock = *si;
		return 0;
	}
	/* A socket forgotten and seen again would be numbered anew: the
	 * first message of a socket is its message 0. */
	if (m->seq > 0)
		return give_up(s, "a connection was seen again after it was forgotten");
	uint32_t i;
	if (s->free_sock != UINT32_MAX) {
		i = s->free_sock;
		s->free_sock = s->socks[i].next_free;
	} else {
		if (tj_grow((void **)&s->socks, &s->capsocks, s->nsocks + 1, sizeof(*s->socks)) < 0)
			return -TJ_E_NOMEM;
		i = (uint32_t)s->nsocks++;
	}
	if (tj_hashix_add(&s->sockmap, h, i) < 0) {
		s->socks[i].used = 0;
		s->socks[i].next_free = s->free_sock;
		s->free_sock = i;
		return -TJ_E_NOMEM;
	}
	*si = i;
	if (++s->live_socks > s->st->peak_sockets)
		s->st->peak_sockets = s->live_socks;
	struct ssock *k = &s->socks[i];
	memset(k, 0, sizeof(*k));
	k->used = 1;
	k->serial = serial;
	cached->serial_lo = (uint32_t)serial;
	cached->sock = i;
	k->live_head = k->live_tail = TJ_XSPAN_NONE;
	k->node = m->key.node;
	k->sock = m->key.sock;
	k->name = NO_NAME;
	k->seq = (m->flags & TJ_MSG_SEQ_OFFSET) != 0;
	if (m->role == TJ_ROLE_UNKNOWN ||
	    ((m->flags & TJ_MSG_MIDSTREAM) && !(m->flags & TJ_MSG_SEQ_OFFSET)))
		return 0;
	if (m->role == TJ_ROLE_SERVER && m->has_origin)
		return give_up(s, "capture --tag origins");
	unsigned char name[NAME_LEN];
	tj_join_conn_name(m, name);
	unsigned end = m->role == TJ_ROLE_SERVER;
	int nomem = 0, first;
	/* the client's address (name[0..17)), or the server's with its port */
	uint64_t ah = end ? hash_name(name + 19, 18) ^ hash_name(name, 1) : hash_name(name, 17);
	if (claim(end ? &s->server_owner : &s->client_owner, ah, m->key.node, &nomem, &first))
		return give_up(s, "an address two nodes claim (NAT, or the same private "
				  "addresses on two hosts)");
	if (nomem)
		return -TJ_E_NOMEM;
	if (!end && first && tj_u64map_get(&s->orphan_clients, ah))
		return give_up(s, "a client came after the server ends of its connections "
				  "were forgotten");
	uint32_t ni2;
	if (name_index(s, name, &ni2) < 0)
		return -TJ_E_NOMEM;
	struct sname *n = &s->names[ni2];
	if (!n->seen[end]) {
		n->seen[end] = 1;
		n->node[end] = m->key.node;
	} else if (n->node[end] != m->key.node) {
		return give_up(s, "a connection name two nodes claim (NAT?)");
	}
	n->socks++;
	k->name = ni2;
	k->end = (uint8_t)end;
	k->ordinal = n->count[end]++;
	k->name_next = n->held[end];
	n->held[end] = i;
	if (end == 1 && k->ordinal >= n->ext_min)
		return give_up(s, "a call written as external found its server late");
	return 0;
}

/* Forget connections closed and silent for a window: what the join
 * needs of them is in the name's counts. */
static int sweep_sockets(struct stream *s, uint64_t wm, uint64_t window)
{
	for (size_t i = 0; i < s->nsocks; i++) {
		struct ssock *k = &s->socks[i];
		if (!k->used || k->nlive || !k->closed || k->last > wm || wm - k->last < window)
			continue;
		tj_hashix_del(&s->sockmap, tj_hashix_sock(k->node, k->sock), (uint32_t)i);
		struct serial_slot *cached = &s->by_serial[k->serial % SERIAL_SLOTS];
		if (cached->sock == i)
			cached->sock = UINT32_MAX;
		if (k->name != NO_NAME) {
			uint32_t *at = &s->names[k->name].held[k->end];
			while (*at != i)
				at = &s->socks[*at].name_next;
			*at = k->name_next;
			s->names[k->name].socks--;
			if (name_done(s, k->name) < 0)
				return -TJ_E_NOMEM;
		}
		k->used = 0;
		k->next_free = s->free_sock;
		s->free_sock = (uint32_t)i;
		s->live_socks--;
	}
	return 0;
}

/* The join, as replay/join.c's derive: the request at the other end of
 * span x's connection, if it is live.  Links the pair.  A partner that
 * may already be written (a late link) gives up. */
static int join_span(struct stream *s, uint32_t slot, uint32_t si)
{
	struct ssock *k = &s->socks[si];
	if (k->name == NO_NAME)
		return 0;
	struct tj_xasm_span *x = tj_xasm_span(s->a, slot);
	unsigned want = !k->end;
	const struct sname *n = &s->names[k->name];
	uint32_t pi = end_of(s, k->name, want, k->ordinal);
	if (pi == UINT32_MAX) {
		if (n->count[want] > k->ordinal)
			return give_up(s, "the other end of a connection was forgotten");
		return 0; /* not seen yet: its request will find this one */
	}
	const struct ssock *o = &s->socks[pi];
	struct tj_msgkey other = { .node = o->node, .sock = o->sock,
				   .dir = want ? TJ_DIR_IN : TJ_DIR_OUT };
	uint64_t off = x->x.key.offset;
	uint64_t cand[3] = { off, off + (1ull << 32), off - (1ull << 32) };
	size_t ncand = k->seq && o->seq ? (off >= (1ull << 32) ? 3 : 2) : 1;
	for (size_t c = 0; c < ncand; c++) {
		other.offset = cand[c];
		uint32_t p = span_on(s, o, other.dir, cand[c]);
		if (p == TJ_XSPAN_NONE) {
			if (o->written_to[other.dir] > cand[c])
				return give_up(s, "a request's call was written before it came");
			continue;
		}
		uint32_t call = want ? slot : p, req = want ? p : slot;
		if (tj_xasm_link(s->a, req, call) != TJ_XASM_OK)
			return give_up(s, "a parent link would close a cycle");
		tj_xasm_span(s->a, call)->joined = 1;
		return 0;
	}
	return 0;
}

/* A call's edge (and --truth label). */
static int link_call(struct stream *s, uint32_t slot)
{
	struct tj_xasm_span *x = tj_xasm_span(s->a, slot);
	struct tj_edge e, t;
	int rc = edge_src_take(&s->edges, &x->x.key, &e);
	if (rc <= 0)
		return rc < 0 ? rc : give_up(s, "a call without an edge");
	x->x.score = e.score;
	uint32_t p = TJ_XSPAN_NONE;
	if (e.has_parent) {
		p = span_of_key(s, &e.parent);
		if (p == TJ_XSPAN_NONE || tj_xasm_span(s->a, p)->x.kind != TJ_XSPAN_SERVER ||
		    e.parent.node != e.child.node)
			return give_up(s, "an edge's parent is not a request in flight");
		if (tj_xasm_link(s->a, slot, p) != TJ_XASM_OK)
			return give_up(s, "a parent link would close a cycle");
	}
	if (!s->o->truth && !s->o->truth_path)
		return 0;
	if ((rc = edge_src_take(&s->truth, &x->x.key, &t)) <= 0) {
		if (rc < 0)
			return rc;
		/* a call without a label is not compared; but a label file
		 * that cannot be read on is the in-memory model's to judge */
		return s->truth.bad ? give_up(s, "labels the stream cannot read") : 0;
	}
	uint32_t tp = TJ_XSPAN_NONE;
	if (t.has_parent) {
		tp = span_of_key(s, &t.parent);
		if (tp == TJ_XSPAN_NONE)
			return give_up(s, "a label's parent is not a request in flight");
		if (tj_xasm_span(s->a, tp)->x.kind != TJ_XSPAN_SERVER || t.parent.node != t.child.node)
			return 0; /* not a request of its node: not compared */
	}
	x = tj_xasm_span(s->a, slot);
	x->x.truth_known = 1;
	x->x.correct = tp == p ? TJ_XCORRECT_YES : TJ_XCORRECT_NO;
	s->st->wrong += x->x.correct == TJ_XCORRECT_NO;
	return 0;
}

static int on_message(void *ctx, const struct tj_message *msg)
{
	struct stream *s = ctx;
	const struct tj_xnode *c = tj_xnode_of(s->nodes, s->nnodes, msg->key.node);
	uint32_t ni = c ? (uint32_t)(c - s->nodes) : 0;
	uint64_t start = tj_xnode_wall(c, msg->ts_first);
	uint32_t si;
	int rc = socket_of(s, msg, &si);
	if (rc)
		return rc;
	struct ssock *k = &s->socks[si];
	k->last = start;
	if (msg->flags & TJ_MSG_NO_REPLY)
		k->closed = 1;
	if (msg->is_request && msg->role != TJ_ROLE_UNKNOWN) {
		struct tj_xspan x;
		tj_xspan_of_message(&x, msg, c);
		unsigned dir = msg->key.dir;
		/* a key live already: refused, as the assembler's index did */
		if (span_on(s, k, dir, msg->key.offset) != TJ_XSPAN_NONE)
			return -TJ_E_NOMEM;
		uint32_t slot = tj_xasm_add(s->a, &x, ni);
		if (slot == TJ_XSPAN_NONE)
			return -TJ_E_NOMEM;
		struct tj_xasm_span *xs = tj_xasm_span(s->a, slot);
		xs->owner = si;
		xs->snext = TJ_XSPAN_NONE;
		xs->sprev = k->live_tail;
		if (k->live_tail != TJ_XSPAN_NONE)
			tj_xasm_span(s->a, k->live_tail)->snext = slot;
		else
			k->live_head = slot;
		k->live_tail = slot;
		if (k->nlive && msg->key.offset <= k->last_off[dir])
			k->unordered[dir] = 1;
		k->last_off[dir] = msg->key.offset;
		k->nlive++;
		if ((rc = join_span(s, slot, si)) ||
		    (x.kind == TJ_XSPAN_CLIENT && (rc = link_call(s, slot))) ||
		    (rc = tj_xasm_settle(s->a, slot)))
			return rc;
	}
	tj_xasm_advance(s->a, ni, start);
	if ((rc = tj_xasm_flush(s->a, 0)))
		return rc;
	/* forget closed connections when their number doubled since the
	 * last time: the sweeps cost a constant per connection */
	if (s->live_socks >= s->sweep_at) {
		if (sweep_sockets(s, tj_xasm_watermark(s->a), s->o->window_ns) < 0)
			return -TJ_E_NOMEM;
		s->sweep_at = 2 * s->live_socks > 1024 ? 2 * s->live_socks : 1024;
	}
	return 0;
}

/* A trace is ready: mark external calls, write it. */
static int on_trace(void *ctx, struct tj_xasm *a, const uint32_t *slots, size_t n)
{
	struct stream *s = ctx;
	for (size_t i = 0; i < n; i++) {
		struct tj_xasm_span *x = tj_xasm_span(a, slots[i]);
		struct ssock *k = &s->socks[x->owner];
		k->nlive--;
		if (x->sprev != TJ_XSPAN_NONE)
			tj_xasm_span(a, x->sprev)->snext = x->snext;
		else
			k->live_head = x->snext;
		if (x->snext != TJ_XSPAN_NONE)
			tj_xasm_span(a, x->snext)->sprev = x->sprev;
		else
			k->live_tail = x->sprev;
		if (x->x.key.offset + 1 > k->written_to[x->x.key.dir])
			k->written_to[x->x.key.dir] = x->x.key.offset + 1;
		if (x->x.kind != TJ_XSPAN_CLIENT || x->joined || k->name == NO_NAME)
			continue;
		struct sname *nm = &s->names[k->name];
		if (nm->count[1] > k->ordinal)
			continue; /* its server end exists: a request missing, not external */
		/* no captured server end (yet): a call to the outside world,
		 * unless that end turns up later (socket_of gives up then) */
		x->x.external = 1;
		if (k->ordinal < nm->ext_min)
			nm->ext_min = k->ordinal;
	}
	if (s->done)
		return 0;
	if (n > s->capord) {
		size_t was = s->capord;
		if (tj_grow((void **)&s->order, &s->capord, n, sizeof(*s->order)) < 0)
			return -TJ_E_NOMEM;
		uint32_t *st = realloc(s->stack, s->capord * sizeof(*s->stack));
		if (!st) {
			s->capord = was; /* order grew, the stack did not */
			return -TJ_E_NOMEM;
		}
		s->stack = st;
	}
	uint32_t root;
	int rc = tj_xasm_model(a, slots, n, &s->m, &root, s->err);
	if (rc)
		return rc;
	size_t ns = tj_xmodel_trace_spans(&s->m, root, s->order, s->stack);
	if ((rc = tj_xwriter_trace(&s->wr, &s->m, root, s->order, ns)))
		return rc < 0 ? rc : -TJ_E_IO;
	s->st->traces++;
	s->st->spans += ns;
	if (s->o->max_traces && s->st->traces == s->o->max_traces)
		s->done = 1;
	return 0;
}

/* The DNAT fallback of the join pairs ends that no full name paired by
 * the client's address; if any such pair could exist, the streamed
 * join (which has none) may differ. */
static int cmp_half(const void *x, const void *y)
{
	return memcmp(x, y, HALF_LEN + 1);
}

static int dnat_possible(struct stream *s, int *possible)
{
	unsigned char (*h)[HALF_LEN + 1] = malloc((s->nnames ? s->nnames : 1) * sizeof(*h));
	if (!h)
		return -TJ_E_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < s->nnames; i++) {
		const struct sname *nm = &s->names[i];
		if (!nm->used || nm->seen[0] == nm->seen[1])
			continue; /* both ends (paired by name) or none */
		memcpy(h[n], nm->name, HALF_LEN);
		h[n++][HALF_LEN] = nm->seen[1];
	}
	qsort(h, n, sizeof(*h), cmp_half);
	*possible = 0;
	for (size_t i = 1; i < n && !*possible; i++)
		*possible = memcmp(h[i - 1], h[i], HALF_LEN) == 0 && h[i - 1][HALF_LEN] != h[i][HALF_LEN];
	free(h);
	return 0;
}

int tj_xstream_export(char *const *inputs, size_t ninputs, const struct tj_xstream_opts *o,
		      struct jw *w, struct tj_xstream_stats *st, struct tj_err *err)
{
	struct stream s = { .o = o, .st = st, .err = err, .free_sock = UINT32_MAX,
			    .free_name = NO_NAME, .sweep_at = 1024 };
	struct tj_xstream_opts oo = *o;
	char **paths = NULL;
	size_t npaths = 0;
	struct tj_replay *rp = NULL;
	int rc, writer = 0;
	memset(st, 0, sizeof(*st));
	if (!oo.window_ns)
		oo.window_ns = o->replay && o->replay->idle_ns ? o->replay->idle_ns : 2000000000ull;
	s.o = &oo;
	tj_hashix_init(&s.sockmap);
	tj_hashix_init(&s.name_of);
	tj_u64map_init(&s.client_owner);
	tj_u64map_init(&s.server_owner);
	tj_u64map_init(&s.orphan_clients);
	if ((rc = tj_replay_expand_inputs(inputs, ninputs, &paths, &npaths, err)) ||
	    (rc = tj_xnodes_read(&s.m, &s.nodes, &s.nnodes, paths, npaths, inputs, ninputs, err)))
		goto out;
	if ((rc = edge_src_open(&s.edges, o->edges, o->edges_path)) ||
	    ((o->truth || o->truth_path) &&
	     (rc = edge_src_open(&s.truth, o->truth, o->truth_path)))) {
		if (rc > 0)
			give_up(&s, "an edges file that cannot be opened");
		else
			rc = tj_errf(err, TJ_E_NOMEM, "export: out of memory");
		goto out;
	}
	if (!(s.a = tj_xasm_new(s.nnodes, oo.window_ns, on_trace, &s))) {
		rc = tj_errf(err, TJ_E_NOMEM, "export: out of memory");
		goto out;
	}
	tj_xasm_unindexed(s.a); /* spans are found by their socket */
	if (tj_hashix_reserve(&s.sockmap, 32768) < 0 ||
	    !(s.by_serial = malloc(SERIAL_SLOTS * sizeof(*s.by_serial)))) {
		rc = tj_errf(err, TJ_E_NOMEM, "export: out of memory");
		goto out;
	}
	memset(s.by_serial, 0xff, SERIAL_SLOTS * sizeof(*s.by_serial));
	if ((rc = tj_replay_open(&rp, paths, npaths, o->replay, err)) ||
	    (rc = tj_xwriter_open(&s.wr, o->format, w, s.m.services, s.m.nservices, err)))
		goto out;
	writer = 1;
	/* with --traces N the replay goes on after the N-th trace: the rest
	 * of the edges is checked as the in-memory model checks it */
	rc = tj_replay_run(rp, on_message, &s, err);
	if (rc == 0)
		rc = tj_xasm_flush(s.a, 1);
	if (rc < 0 && !err->code)
		rc = tj_errf(err, rc == -TJ_E_NOMEM ? TJ_E_NOMEM : TJ_E_IO, "export: %s",
			     rc == -TJ_E_NOMEM ? "out of memory" : "write failed");
	if (rc)
		goto out;
	st->damaged = tj_replay_stats(rp)->damaged_logs > 0;
	if (!edge_src_all_used(&s.edges) || s.truth.bad) {
		rc = give_up(&s, "edges of calls the logs do not have");
		goto out;
	}
	int dnat;
	if ((rc = dnat_possible(&s, &dnat)) < 0) {
		rc = tj_errf(err, TJ_E_NOMEM, "export: out of memory");
		goto out;
	}
	if (dnat)
		rc = give_up(&s, "ends the join pairs by the client's address (DNAT)");
out:
	if (writer)
		tj_xwriter_close(&s.wr);
	st->gave_up = s.gave_up;
	st->peak_spans = s.a ? tj_xasm_stats(s.a)->peak_live : 0;
	if (rc > 0 && !s.gave_up)
		st->gave_up = "stopped";
	tj_replay_close(rp);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	tj_xasm_free(s.a);
	/* s.m's spans and index arrays are the assembler's */
	for (size_t i = 0; i < s.m.nservices; i++)
		free(s.m.services[i]);
	free(s.m.services);
	free(s.nodes);
	free(s.order);
	free(s.stack);
	free(s.names);
	free(s.socks);
	edge_src_close(&s.edges);
	edge_src_close(&s.truth);
	tj_hashix_free(&s.sockmap);
	free(s.by_serial);
	tj_hashix_free(&s.name_of);
	tj_u64map_free(&s.client_owner);
	tj_u64map_free(&s.server_owner);
	tj_u64map_free(&s.orphan_clients);
	return rc;
}
