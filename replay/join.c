/* The cross-node join: see join.h for the rules.  Everything here is
 * keyed by exact values (addresses, ports, socket ids, offsets), never by
 * time, so the result does not depend on clock skew or on how the replay
 * interleaves nodes. */
#include <stdlib.h>
#include <string.h>
#include "join.h"
#include "../lib/edges.h"
#include "../lib/u64map.h"
#include "../lib/util.h"

#define NAME_LEN TJ_JOIN_NAME_LEN

/* A table of fixed-size byte keys -> dense indices 0,1,2,...  Hash
 * collisions are chained through next[], so equal hashes never merge two
 * different keys. */
struct bytetab {
	size_t ksize;
	struct tj_u64map head; /* hash -> index of the newest entry + 1 */
	unsigned char *keys;
	size_t *next;          /* index + 1 of the older entry, 0 = end */
	size_t n, cap;
};

static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
	for (size_t i = 0; i < n; i++)
		h = tj_hash64(h ^ p[i]) + i;
	return h;
}

/* Index of key, adding it if absent (*added); -1 if out of memory. */
static long long bytetab_upsert(struct bytetab *t, const unsigned char *key,
				int *added)
{
	uint64_t h = hash_bytes(key, t->ksize);
	uint64_t *first = tj_u64map_get(&t->head, h);
	for (size_t i = first ? (size_t)*first : 0; i; i = t->next[i - 1]) {
		if (memcmp(t->keys + (i - 1) * t->ksize, key, t->ksize) == 0) {
			*added = 0;
			return (long long)(i - 1);
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		unsigned char *k = realloc(t->keys, cap * t->ksize);
		if (!k)
			return -1;
		t->keys = k;
		size_t *nx = realloc(t->next, cap * sizeof(*nx));
		if (!nx)
			return -1;
		t->next = nx;
		t->cap = cap;
	}
	size_t i = t->n;
	memcpy(t->keys + i * t->ksize, key, t->ksize);
	t->next[i] = first ? (size_t)*first : 0;
	if (tj_u64map_put(&t->head, h, i + 1) < 0)
		return -1;
	t->n++;
	*added = 1;
	return (long long)i;
}

static void bytetab_free(struct bytetab *t)
{
	tj_u64map_free(&t->head);
	free(t->keys);
	free(t->next);
}

#define NONE ((size_t)-1)
#define NO_NAME UINT32_MAX

/* One connection name: which node holds each end (client 0, server 1)
 * and how many sockets of that name each has numbered. */
struct name_rec {
	uint32_t node[2];
	uint32_t count[2];
	uint8_t seen[2];
	uint8_t ambiguous; /* a second node claimed one of the ends */
};

struct sock_rec {
	uint64_t sock;
	uint32_t node;
	uint32_t name;     /* NO_NAME: not joinable (role unknown, mid-stream) */
	uint32_t ordinal;  /* n-th socket of this name on this node */
	uint8_t end;       /* 0 client, 1 server */
	uint8_t seq;       /* offsets are TCP sequence numbers (TJ_MSG_SEQ_OFFSET) */
	uint8_t tagged;    /* server end with a capture --tag origin: joined by it */
	uint32_t origin_node;
	uint64_t origin_sock;
};

struct tj_join {
	struct tj_keymap sockmap;  /* node:sock -> sock_rec index */
	struct sock_rec *socks;
	size_t nsocks, capsocks;

	struct bytetab names;      /* connection name -> name_rec index */
	struct name_rec *namerecs;
	size_t capnames;
	/* (name, ordinal) -> sock_rec index of the client / server end */
	struct tj_u64map ends[2];
	/* capture --tag: client node:sock -> sock_rec index of its server end */
	struct tj_keymap by_origin;
	/* The DNAT fallback (tj_join_finish): sock_rec index of a client /
	 * server end -> the other end's, paired by the client's address. */
	struct tj_u64map by_client_addr[2];

	/* Every request seen (calls and server requests) -> its pid. */
	struct tj_keymap msgs;
	struct tj_keymap pids;     /* pids stated with tj_join_put_pid */

	/* Pairs stated with tj_join_put: [call, request]. */
	struct tj_msgkey (*pairs)[2];
	size_t npairs, cappairs;
	struct tj_keymap by_call, by_req;
	struct tj_join_stats stats;
};

int tj_join_new(struct tj_join **jp, struct tj_err *err)
{
	struct tj_join *j = calloc(1, sizeof(*j));
	if (!j)
		return tj_errf(err, TJ_E_NOMEM, "join: out of memory");
	j->names.ksize = NAME_LEN;
	*jp = j;
	return 0;
}

void tj_join_free(struct tj_join *j)
{
	if (!j)
		return;
	tj_keymap_free(&j->sockmap);
	free(j->socks);
	bytetab_free(&j->names);
	free(j->namerecs);
	tj_u64map_free(&j->ends[0]);
	tj_u64map_free(&j->ends[1]);
	tj_keymap_free(&j->by_origin);
	tj_u64map_free(&j->by_client_addr[0]);
	tj_u64map_free(&j->by_client_addr[1]);
	tj_keymap_free(&j->msgs);
	tj_keymap_free(&j->pids);
	free(j->pairs);
	tj_keymap_free(&j->by_call);
	tj_keymap_free(&j->by_req);
	free(j);
}

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

void tj_join_conn_name(const struct tj_message *m, unsigned char *name)
{
	const uint8_t *caddr = m->laddr, *saddr = m->raddr;
	uint16_t cport = m->lport, sport = m->rport;
	if (m->role == TJ_ROLE_SERVER) {
		caddr = m->raddr;
		saddr = m->laddr;
		cport = m->rport;
		sport = m->lport;
	}
	name[0] = m->family;
	memcpy(name + 1, caddr, 16);
	put_u16(name + 17, cport);
	memcpy(name + 19, saddr, 16);
	put_u16(name + 35, sport);
}

static uint64_t end_key(uint32_t name, uint32_t ordinal)
{
	return (uint64_t)name << 32 | ordinal;
}

/* Number a socket the first time its node shows it: the n-th socket of
 * its name on its node.  Returns the sock_rec index, NONE if out of
 * memory. */
static size_t number_socket(struct tj_join *j, const struct tj_message *m)
{
	struct tj_msgkey sk = { .node = m->key.node, .sock = m->key.sock };
	int added;
	size_t *slot = tj_keymap_upsert(&j->sockmap, &sk, &added);
	if (!slot)
		return NONE;
	if (!added)
		return *slot;
	if (tj_grow((void **)&j->socks, &j->capsocks, j->nsocks + 1,
		 sizeof(*j->socks)) < 0)
		return NONE;
	size_t si = j->nsocks++;
	*slot = si;
	struct sock_rec *s = &j->socks[si];
	s->node = m->key.node;
	s->sock = m->key.sock;
	s->name = NO_NAME;
	s->seq = (m->flags & TJ_MSG_SEQ_OFFSET) != 0;
	s->tagged = 0;
	/* A mid-stream socket joins only when its offsets are sequence
	 * numbers, which both ends share; capture-start offsets are not. */
	if (m->role == TJ_ROLE_UNKNOWN ||
	    ((m->flags & TJ_MSG_MIDSTREAM) && !(m->flags & TJ_MSG_SEQ_OFFSET)))
		return si;
	j->stats.sockets++;
	if (m->role == TJ_ROLE_SERVER && m->has_origin) {
		/* Its client end is named by the tag, whatever the addresses
		 * say: they may have been rewritten on the way. */
		struct tj_msgkey ok = { .node = m->origin_node, .sock = m->origin_sock };
		size_t *v = tj_keymap_upsert(&j->by_origin, &ok, NULL);
		if (!v)
			return NONE;
		*v = si;
		s->tagged = 1;
		s->end = 1;
		s->origin_node = m->origin_node;
		s->origin_sock = m->origin_sock;
		return si;
	}

	unsigned char name[NAME_LEN];
	tj_join_conn_name(m, name);
	long long ni = bytetab_upsert(&j->names, name, &added);
	if (ni < 0 || ni >= NO_NAME)
		return NONE;
	if (tj_grow((void **)&j->namerecs, &j->capnames, (size_t)ni + 1,
		 sizeof(*j->namerecs)) < 0)
		return NONE;
	struct name_rec *n = &j->namerecs[ni];
	if (added)
		memset(n, 0, sizeof(*n));
	unsigned end = m->role == TJ_ROLE_SERVER;
	if (!n->seen[end]) {
		n->seen[end] = 1;
		n->node[end] = m->key.node;
	} else if (n->node[end] != m->key.node) {
		n->ambiguous = 1;
	}
	s->name = (uint32_t)ni;
	s->end = (uint8_t)end;
	s->ordinal = n->count[end]++;
	if (!n->ambiguous &&
	    tj_u64map_put(&j->ends[end], end_key(s->name, s->ordinal), si) < 0)
		return NONE;
	return si;
}

int tj_join_put_pid(struct tj_join *j, const struct tj_msgkey *k,
		    uint32_t pid)
{
	size_t *v = tj_keymap_upsert(&j->pids, k, NULL);
	if (!v)
		return -TJ_E_NOMEM;
	*v = pid;
	return 0;
}

int tj_join_add(struct tj_join *j, const struct tj_message *m)
{
	size_t si = number_socket(j, m);
	if (si == NONE)
		return -TJ_E_NOMEM;
	if (!m->is_request || m->role == TJ_ROLE_UNKNOWN)
		return 0;
	size_t *pid = tj_keymap_upsert(&j->msgs, &m->key, NULL);
	if (!pid)
		return -TJ_E_NOMEM;
	*pid = m->pid;
	if (m->role == TJ_ROLE_SERVER)
		j->stats.server_requests++;
	else
		j->stats.calls++;
	return 0;
}

/* The request at the other end of the connection that k (a request seen
 * by tj_join_add) travelled on.  0 joined, else why not (a stats slot). */
enum { JOINED = TJ_JOIN_OK, SKIPPED = TJ_JOIN_SKIPPED,
       AMBIGUOUS = TJ_JOIN_AMBIGUOUS, NO_PEER = TJ_JOIN_NO_PEER,
       OFFSET_MISS = TJ_JOIN_OFFSET_MISS, NOT_SEEN = TJ_JOIN_NOT_SEEN };

static int derive_via(const struct tj_join *j, const struct tj_msgkey *k,
		      unsigned want_end, struct tj_msgkey *other, unsigned *via)
{
	*via = TJ_JOIN_BY_ADDRESSES;
	if (!tj_keymap_get(&j->msgs, k))
		return NOT_SEEN;
	struct tj_msgkey sk = { .node = k->node, .sock = k->sock };
	const size_t *si = tj_keymap_get(&j->sockmap, &sk);
	if (!si)
		return NOT_SEEN;
	const struct sock_rec *s = &j->socks[*si];
	const size_t *ti = NULL;
	const uint64_t *oi = NULL;
	if (s->tagged) {
		if (want_end == 1)
			return NOT_SEEN;
		struct tj_msgkey ok = { .node = s->origin_node, .sock = s->origin_sock };
		*via = TJ_JOIN_BY_TAG;
		if (!(ti = tj_keymap_get(&j->sockmap, &ok)))
			return NO_PEER; /* the client's node was not captured */
	} else {
		if (s->name == NO_NAME)
			return SKIPPED;
		if (s->end == want_end)
			return NOT_SEEN; /* k is not the kind of request asked about */
		if (want_end == 1 && (ti = tj_keymap_get(&j->by_origin, &sk)))
			*via = TJ_JOIN_BY_TAG;
		else if (j->namerecs[s->name].ambiguous)
			return AMBIGUOUS;
		else if (!(oi = tj_u64map_get(&j->ends[want_end],
					      end_key(s->name, s->ordinal)))) {
			oi = tj_u64map_get(&j->by_client_addr[s->end], *si);
			if (!oi)
				return NO_PEER;
			*via = TJ_JOIN_BY_CLIENT_ADDR;
		}
	}
	const struct sock_rec *o = &j->socks[ti ? *ti : (size_t)*oi];
	other->node = o->node;
	other->sock = o->sock;
	other->offset = k->offset;
	other->dir = want_end ? TJ_DIR_IN : TJ_DIR_OUT;
	if (tj_keymap_get(&j->msgs, other))
		return JOINED;
	/* Sequence offsets start from each end's first sight, in 32 bits:
	 * when the sequence wrapped between the two first sights, the two
	 * ends count the same byte 2^32 apart. */
	if (s->seq && o->seq) {
		other->offset = k->offset + (1ull << 32);
		if (tj_keymap_get(&j->msgs, other))
			return JOINED;
		other->offset = k->offset - (1ull << 32);
		if (k->offset >= (1ull << 32) && tj_keymap_get(&j->msgs, other))
			return JOINED;
		other->offset = k->offset;
	}
	return OFFSET_MISS;
}

static int derive(const struct tj_join *j, const struct tj_msgkey *k,
		  unsigned want_end, struct tj_msgkey *other)
{
	unsigned via;
	return derive_via(j, k, want_end, other, &via);
}

/* ---- the DNAT fallback ----
 * A destination NAT (a Kubernetes ClusterIP, an L4 load balancer) leaves
 * the client's address and port as they were: the client's socket names
 * (client, virtual address), the server's (client, real address).  Two
 * ends left without a peer by the full name are paired by the client
 * half alone when that half is on one node at each end and both ends
 * have as many sockets of it (the n-th pairs with the n-th); anything
 * else stays unjoined rather than joined wrongly. */
#define HALF_LEN 19 /* family, client addr, client port */

struct half_cand {
	const unsigned char *half;
	size_t si;
	uint8_t end;
};

static int cmp_half(const void *a, const void *b)
{
	const struct half_cand *x = a, *y = b;
	int c = memcmp(x->half, y->half, HALF_LEN);
	if (c)
		return c;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->si < y->si ? -1 : x->si > y->si;
}

static int pair_by_client_addr(struct tj_join *j)
{
	struct half_cand *c = malloc((j->nsocks ? j->nsocks : 1) * sizeof(*c));
	if (!c)
		return -TJ_E_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < j->nsocks; i++) {
		const struct sock_rec *s = &j->socks[i];
		if (s->tagged || s->name == NO_NAME)
			continue;
		const struct name_rec *nr = &j->namerecs[s->name];
		if (nr->ambiguous || nr->seen[!s->end])
			continue; /* joined by the full name, or never */
		struct tj_msgkey sk = { .node = s->node, .sock = s->sock };
		if (s->end == 0 && tj_keymap_get(&j->by_origin, &sk))
			continue; /* joined by its tag */
		c[n++] = (struct half_cand){ j->names.keys + (size_t)s->name * NAME_LEN,
					     i, s->end };
	}
	qsort(c, n, sizeof(*c), cmp_half);
	int rc = 0;
	for (size_t g = 0; g < n && rc == 0;) {
		size_t e = g, mid;
		while (e < n && memcmp(c[e].half, c[g].half, HALF_LEN) == 0)
			e++;
		for (mid = g; mid < e && c[mid].end == 0; mid++)
			;
		size_t nc = mid - g, ns = e - mid;
		int one_node = 1;
		for (size_t k = g + 1; k < e; k++)
			if (k != mid && j->socks[c[k].si].node != j->socks[c[k - 1].si].node)
				one_node = 0;
		if (nc && nc == ns && one_node)
			for (size_t k = 0; k < nc && rc == 0; k++)
				if (tj_u64map_put(&j->by_client_addr[0], c[g + k].si, c[mid + k].si) < 0 ||
				    tj_u64map_put(&j->by_client_addr[1], c[mid + k].si, c[g + k].si) < 0)
					rc = -TJ_E_NOMEM;
		g = e;
	}
	free(c);
	return rc;
}

int tj_join_finish(struct tj_join *j, struct tj_err *err)
{
	struct tj_join_stats *st = &j->stats;
	st->joined = st->no_peer = st->ambiguous = st->offset_misses =
		st->skipped = st->joined_by_tag = st->joined_by_client_addr = 0;
	tj_u64map_free(&j->by_client_addr[0]);
	tj_u64map_free(&j->by_client_addr[1]);
	tj_u64map_init(&j->by_client_addr[0]);
	tj_u64map_init(&j->by_client_addr[1]);
	if (pair_by_client_addr(j) < 0)
		return tj_errf(err, TJ_E_NOMEM, "join: out of memory");
	for (size_t i = 0; i < j->msgs.cap; i++) {
		struct tj_msgkey key;
		if (!tj_keymap_at(&j->msgs, i, &key))
			continue;
		const struct tj_msgkey *k = &key;
		struct tj_msgkey other;
		unsigned via;
		switch (derive_via(j, k, k->dir == TJ_DIR_OUT, &other, &via)) {
		case JOINED:
			st->joined++;
			st->joined_by_tag += via == TJ_JOIN_BY_TAG;
			st->joined_by_client_addr += via == TJ_JOIN_BY_CLIENT_ADDR;
			break;
		case SKIPPED:
			st->skipped++;
			break;
		case AMBIGUOUS:
			st->ambiguous += k->dir == TJ_DIR_OUT;
			break;
		case NO_PEER:
			st->no_peer += k->dir == TJ_DIR_OUT;
			break;
		case OFFSET_MISS:
			st->offset_misses += k->dir == TJ_DIR_OUT;
			break;
		}
	}
	/* joined counted both ends of every pair. */
	st->joined /= 2;
	st->joined_by_tag /= 2;
	st->joined_by_client_addr /= 2;
	return 0;
}

int tj_join_explain(const struct tj_join *j, const struct tj_msgkey *call,
		    unsigned *via)
{
	struct tj_msgkey other;
	unsigned v;
	int r = derive_via(j, call, 1, &other, &v);
	if (via)
		*via = v;
	return r;
}

const char *tj_join_result_text(int result)
{
	switch (result) {
	case TJ_JOIN_OK:
		return "joined";
	case TJ_JOIN_SKIPPED:
		return "its socket's side is unknown or it began before the log";
	case TJ_JOIN_AMBIGUOUS:
		return "two nodes claim its connection's addresses (NAT, or the same "
		       "private addresses on two hosts)";
	case TJ_JOIN_NO_PEER:
		return "no captured server end has its connection's addresses or tag "
		       "(a service outside the captured set, or addresses rewritten "
		       "by NAT: capture --tag joins those)";
	case TJ_JOIN_OFFSET_MISS:
		return "its server end has no request at its offset (bytes lost)";
	default:
		return "not a call of these logs";
	}
}

int tj_join_request_of(const struct tj_join *j, const struct tj_msgkey *call,
		       struct tj_msgkey *request)
{
	const size_t *i = tj_keymap_get(&j->by_call, call);
	if (i) {
		*request = j->pairs[*i][1];
		return 1;
	}
	return call->dir == TJ_DIR_OUT && derive(j, call, 1, request) == JOINED;
}

int tj_join_call_of(const struct tj_join *j, const struct tj_msgkey *request,
		    struct tj_msgkey *call)
{
	const size_t *i = tj_keymap_get(&j->by_req, request);
	if (i) {
		*call = j->pairs[*i][0];
		return 1;
	}
	return request->dir == TJ_DIR_IN && derive(j, request, 0, call) == JOINED;
}

int tj_join_put(struct tj_join *j, const struct tj_msgkey *call,
		const struct tj_msgkey *request)
{
	struct tj_msgkey other;
	if (tj_join_request_of(j, call, &other))
		return tj_msgkey_eq(&other, request) ? 0 : -TJ_E_ARG;
	if (tj_join_call_of(j, request, &other))
		return -TJ_E_ARG;
	if (tj_grow((void **)&j->pairs, &j->cappairs, j->npairs + 1,
		 sizeof(*j->pairs)) < 0)
		return -TJ_E_NOMEM;
	size_t *c = tj_keymap_upsert(&j->by_call, call, NULL);
	if (!c)
		return -TJ_E_NOMEM;
	*c = j->npairs;
	size_t *r = tj_keymap_upsert(&j->by_req, request, NULL);
	if (!r)
		return -TJ_E_NOMEM;
	*r = j->npairs;
	j->pairs[j->npairs][0] = *call;
	j->pairs[j->npairs][1] = *request;
	j->npairs++;
	return 0;
}

uint32_t tj_join_pid_of(const struct tj_join *j, const struct tj_msgkey *k)
{
	const size_t *v = tj_keymap_get(&j->pids, k);
	if (!v)
		v = tj_keymap_get(&j->msgs, k);
	return v ? (uint32_t)*v : TJ_PID_UNKNOWN;
}

const struct tj_join_stats *tj_join_stats(const struct tj_join *j)
{
	return &j->stats;
}

static int join_message(void *ctx, const struct tj_message *m)
{
	return tj_join_add(ctx, m) < 0; /* positive: stops the replay */
}

int tj_join_from_logs(struct tj_join **jp, char *const *inputs,
		      size_t ninputs, int *damaged, struct tj_err *err)
{
	char **paths = NULL;
	size_t npaths = 0;
	struct tj_replay *rp = NULL;
	struct tj_join *j = NULL;
	int rc;
	*jp = NULL;
	if (damaged)
		*damaged = 0;
	if ((rc = tj_replay_expand_inputs(inputs, ninputs, &paths, &npaths,
					  err)) < 0)
		return rc;
	if ((rc = tj_replay_open(&rp, paths, npaths, NULL, err)) < 0 ||
	    (rc = tj_join_new(&j, err)) < 0)
		goto out;
	rc = tj_replay_run(rp, join_message, j, err);
	if (rc > 0) {
		rc = tj_errf(err, TJ_E_NOMEM, "join: out of memory");
		goto out;
	}
	if (rc < 0 || (rc = tj_join_finish(j, err)) < 0)
		goto out;
	if (damaged)
		*damaged = tj_replay_stats(rp)->damaged_logs > 0;
	*jp = j;
	j = NULL;
out:
	tj_join_free(j);
	if (rp)
		tj_replay_close(rp);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	return rc;
}
