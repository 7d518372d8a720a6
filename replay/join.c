/* The cross-node join: see join.h for the rules.  Everything here is
 * keyed by exact values (addresses, ports, socket ids, offsets), never by
 * time, so the result does not depend on clock skew or on how the replay
 * interleaves nodes. */
#include <stdlib.h>
#include <string.h>
#include "join.h"
#include "../lib/edges.h"
#include "../lib/u64map.h"

/* A connection's name: family, client addr:port, server addr:port. */
#define NAME_LEN (1 + 16 + 2 + 16 + 2)

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

struct sock_rec {
	uint32_t node;
	uint64_t sock;
	size_t conn; /* NONE: not joinable */
};

struct conn_rec {
	size_t client, server; /* sock_rec indices, NONE if not seen */
	int ambiguous;
};

struct call_rec {
	struct tj_msgkey key;
	size_t sock;
};

struct tj_join {
	struct tj_keymap sockmap;  /* node:sock -> sock_rec index */
	struct sock_rec *socks;
	size_t nsocks, capsocks;

	struct bytetab counters;   /* node, role, name -> counter index */
	uint32_t *counts;          /* sockets numbered so far per counter */
	struct bytetab conntab;    /* name, ordinal -> conn_rec index */
	struct conn_rec *conns;

	struct call_rec *calls;    /* calls awaiting tj_join_finish */
	size_t ncalls, capcalls;

	struct tj_keymap reqmap;   /* server request -> index in reqs */
	struct tj_msgkey *reqs;
	size_t nreqs, capreqs;

	struct tj_msgkey (*pairs)[2]; /* [call, request] */
	size_t npairs, cappairs;
	struct tj_keymap by_call;  /* call -> pair index */
	struct tj_keymap by_req;   /* request -> pair index */
	struct tj_keymap pids;     /* request or call -> pid */
	struct tj_join_stats stats;
};

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *a = realloc(*arr, c * size);
	if (!a)
		return -1;
	*arr = a;
	*cap = c;
	return 0;
}

int tj_join_new(struct tj_join **jp, struct tj_err *err)
{
	struct tj_join *j = calloc(1, sizeof(*j));
	if (!j)
		return tj_errf(err, TJ_E_NOMEM, "join: out of memory");
	j->counters.ksize = 4 + 1 + NAME_LEN;
	j->conntab.ksize = NAME_LEN + 4;
	*jp = j;
	return 0;
}

void tj_join_free(struct tj_join *j)
{
	if (!j)
		return;
	tj_keymap_free(&j->sockmap);
	free(j->socks);
	bytetab_free(&j->counters);
	free(j->counts);
	bytetab_free(&j->conntab);
	free(j->conns);
	free(j->calls);
	tj_keymap_free(&j->reqmap);
	free(j->reqs);
	free(j->pairs);
	tj_keymap_free(&j->by_call);
	tj_keymap_free(&j->by_req);
	tj_keymap_free(&j->pids);
	free(j);
}

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void conn_name(const struct tj_message *m, unsigned char *name)
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

/* Number a socket the first time its node shows it, and attach it to the
 * connection (name, ordinal).  Returns the sock_rec index, NONE if out of
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
	if (grow((void **)&j->socks, &j->capsocks, j->nsocks + 1,
		 sizeof(*j->socks)) < 0)
		return NONE;
	size_t si = j->nsocks++;
	*slot = si;
	struct sock_rec *s = &j->socks[si];
	s->node = m->key.node;
	s->sock = m->key.sock;
	s->conn = NONE;
	if (m->role == TJ_ROLE_UNKNOWN || (m->flags & TJ_MSG_MIDSTREAM))
		return si;
	j->stats.sockets++;

	unsigned char ckey[4 + 1 + NAME_LEN], nkey[NAME_LEN + 4];
	put_u32(ckey, m->key.node);
	ckey[4] = m->role;
	conn_name(m, ckey + 5);
	long long ci = bytetab_upsert(&j->counters, ckey, &added);
	if (ci < 0)
		return NONE;
	if (added) {
		size_t cap = j->counters.cap;
		uint32_t *c = realloc(j->counts, cap * sizeof(*c));
		if (!c)
			return NONE;
		j->counts = c;
		j->counts[ci] = 0;
	}
	uint32_t ordinal = j->counts[ci]++;

	memcpy(nkey, ckey + 5, NAME_LEN);
	put_u32(nkey + NAME_LEN, ordinal);
	long long k = bytetab_upsert(&j->conntab, nkey, &added);
	if (k < 0)
		return NONE;
	if (added) {
		struct conn_rec *c = realloc(j->conns, j->conntab.cap *
							sizeof(*c));
		if (!c)
			return NONE;
		j->conns = c;
		j->conns[k].client = j->conns[k].server = NONE;
		j->conns[k].ambiguous = 0;
	}
	struct conn_rec *c = &j->conns[k];
	size_t *end = m->role == TJ_ROLE_CLIENT ? &c->client : &c->server;
	if (*end != NONE)
		c->ambiguous = 1;
	else
		*end = si;
	j->socks[si].conn = (size_t)k;
	return si;
}

static int add_request(struct tj_join *j, const struct tj_msgkey *k)
{
	int added;
	size_t *slot = tj_keymap_upsert(&j->reqmap, k, &added);
	if (!slot)
		return -TJ_E_NOMEM;
	if (!added)
		return 0;
	if (grow((void **)&j->reqs, &j->capreqs, j->nreqs + 1,
		 sizeof(*j->reqs)) < 0)
		return -TJ_E_NOMEM;
	*slot = j->nreqs;
	j->reqs[j->nreqs++] = *k;
	return 0;
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
	if (!m->is_request)
		return 0;
	if (m->pid != TJ_PID_UNKNOWN && tj_join_put_pid(j, &m->key, m->pid) < 0)
		return -TJ_E_NOMEM;
	if (m->role == TJ_ROLE_SERVER) {
		j->stats.server_requests++;
		if (add_request(j, &m->key) < 0)
			return -TJ_E_NOMEM;
	} else if (m->role == TJ_ROLE_CLIENT) {
		j->stats.calls++;
	}
	if (j->socks[si].conn == NONE) {
		j->stats.skipped++;
		return 0;
	}
	if (m->role != TJ_ROLE_CLIENT)
		return 0;
	if (grow((void **)&j->calls, &j->capcalls, j->ncalls + 1,
		 sizeof(*j->calls)) < 0)
		return -TJ_E_NOMEM;
	j->calls[j->ncalls].key = m->key;
	j->calls[j->ncalls].sock = si;
	j->ncalls++;
	return 0;
}

int tj_join_put(struct tj_join *j, const struct tj_msgkey *call,
		const struct tj_msgkey *request)
{
	struct tj_msgkey other;
	if (tj_join_request_of(j, call, &other))
		return tj_msgkey_eq(&other, request) ? 0 : -TJ_E_ARG;
	if (tj_join_call_of(j, request, &other))
		return -TJ_E_ARG;
	if (add_request(j, request) < 0 ||
	    grow((void **)&j->pairs, &j->cappairs, j->npairs + 1,
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

int tj_join_finish(struct tj_join *j, struct tj_err *err)
{
	for (size_t i = 0; i < j->ncalls; i++) {
		const struct call_rec *c = &j->calls[i];
		const struct conn_rec *conn = &j->conns[j->socks[c->sock].conn];
		if (conn->ambiguous) {
			j->stats.ambiguous++;
			continue;
		}
		if (conn->server == NONE) {
			j->stats.no_peer++;
			continue;
		}
		const struct sock_rec *srv = &j->socks[conn->server];
		struct tj_msgkey req = { .node = srv->node, .sock = srv->sock,
					 .dir = TJ_DIR_IN,
					 .offset = c->key.offset };
		if (!tj_keymap_get(&j->reqmap, &req)) {
			j->stats.offset_misses++;
			continue;
		}
		int rc = tj_join_put(j, &c->key, &req);
		if (rc == -TJ_E_NOMEM)
			return tj_errf(err, TJ_E_NOMEM, "join: out of memory");
		if (rc == 0)
			j->stats.joined++;
	}
	free(j->calls);
	j->calls = NULL;
	j->ncalls = j->capcalls = 0;
	return 0;
}

int tj_join_request_of(const struct tj_join *j, const struct tj_msgkey *call,
		       struct tj_msgkey *request)
{
	const size_t *i = tj_keymap_get(&j->by_call, call);
	if (!i)
		return 0;
	*request = j->pairs[*i][1];
	return 1;
}

int tj_join_call_of(const struct tj_join *j, const struct tj_msgkey *request,
		    struct tj_msgkey *call)
{
	const size_t *i = tj_keymap_get(&j->by_req, request);
	if (!i)
		return 0;
	*call = j->pairs[*i][0];
	return 1;
}

uint32_t tj_join_pid_of(const struct tj_join *j, const struct tj_msgkey *k)
{
	const size_t *v = tj_keymap_get(&j->pids, k);
	return v ? (uint32_t)*v : TJ_PID_UNKNOWN;
}

size_t tj_join_nrequests(const struct tj_join *j)
{
	return j->nreqs;
}

const struct tj_msgkey *tj_join_request(const struct tj_join *j, size_t i)
{
	return i < j->nreqs ? &j->reqs[i] : NULL;
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
