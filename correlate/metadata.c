/* The `metadata` correlator: the deterministic join of the seed article
 * and of vPath.  The thread that read an inbound request, and wrote a
 * call while that request was still open (its reply had not started at
 * the call's first byte), made the call; if it had read several, the most
 * recent one still open did, with the score split among them.
 *
 * Streaming: the replay delivers a node's messages by first byte, so when
 * a call arrives every request that began before it is known, with the
 * start of its reply; the answer is emitted at once.  Memory: per thread,
 * the last RING requests it read; a thread silent for `expire` seconds of
 * its node's time is forgotten.  Assumptions and failures: README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlator.h"
#include "../lib/u64map.h"

#define RING 16

/* A thread's last RING requests, times apart from keys: a call scans
 * the times of all of them and reads one key. */
struct thr {
	uint64_t id;               /* node << 32 | tid */
	struct thr *prev, *next;   /* its node's LRU, least recent first */
	uint64_t last;             /* node time of its latest request */
	unsigned n, next_slot;
	uint64_t ts_first[RING];
	uint64_t ts_reply[RING];   /* 0: no reply seen */
	struct tj_msgkey key[RING];
};

struct mnode {
	uint64_t clock;
	uint64_t due;              /* when the LRU head may have expired */
	struct thr *head, *tail;
};

struct meta {
	uint64_t expire_ns;
	struct tj_u64map threads;  /* id -> struct thr * */
	struct tj_u64map node_ix;  /* node -> index in nodes */
	struct mnode *nodes;
	size_t nnodes, cap;
	struct thr *spare;         /* freelist */
	uint32_t last_node;        /* cache: messages of one node come in runs */
	size_t last_ix;
	uint32_t node_id[8];       /* ids of the first nodes, scanned */
};

static const char *const known_params[] = { "expire", NULL };

static int meta_open(void **stp, const struct tj_params *p, struct tj_err *err)
{
	double expire;
	int rc = tj_params_check(p, known_params, "metadata", err);
	if (rc)
		return rc;
	if ((rc = tj_param_double(p, "expire", 60.0, &expire, err)))
		return rc;
	if (!(expire > 0 && expire < 1e9))
		return tj_errf(err, TJ_E_ARG, "metadata: param expire=%s: seconds > 0 expected",
			       tj_param_str(p, "expire", ""));
	struct meta *m = calloc(1, sizeof(*m));
	if (!m)
		return tj_errf(err, TJ_E_NOMEM, "metadata: out of memory");
	m->expire_ns = (uint64_t)(expire * 1e9);
	tj_u64map_init(&m->threads);
	tj_u64map_init(&m->node_ix);
	*stp = m;
	return 0;
}

static struct mnode *node_of(struct meta *m, uint32_t node)
{
	if (m->nnodes && m->last_node == node)
		return &m->nodes[m->last_ix];
	for (size_t i = 0; i < m->nnodes && i < 8; i++)
		if (m->node_id[i] == node) {
			m->last_node = node;
			m->last_ix = i;
			return &m->nodes[i];
		}
	int added;
	uint64_t *ix = tj_u64map_upsert(&m->node_ix, node, &added);
	if (!ix)
		return NULL;
	if (added) {
		if (m->nnodes == m->cap) {
			size_t cap = m->cap ? 2 * m->cap : 4;
			struct mnode *nn = realloc(m->nodes, cap * sizeof(*nn));
			if (!nn) {
				tj_u64map_del(&m->node_ix, node);
				return NULL;
			}
			m->nodes = nn;
			m->cap = cap;
		}
		if (m->nnodes < 8)
			m->node_id[m->nnodes] = node;
		memset(&m->nodes[m->nnodes], 0, sizeof(*m->nodes));
		m->nodes[m->nnodes].due = UINT64_MAX;
		*ix = m->nnodes++;
	}
	m->last_node = node;
	m->last_ix = *ix;
	return &m->nodes[*ix];
}

static void lru_unlink(struct meta *m, struct mnode *n, struct thr *t)
{
	if (t->prev) {
		t->prev->next = t->next;
	} else {
		n->head = t->next;
		n->due = t->next ? t->next->last + m->expire_ns : UINT64_MAX;
	}
	if (t->next)
		t->next->prev = t->prev;
	else
		n->tail = t->prev;
	t->prev = t->next = NULL;
}

static void lru_push(struct meta *m, struct mnode *n, struct thr *t)
{
	t->prev = n->tail;
	t->next = NULL;
	if (n->tail) {
		n->tail->next = t;
	} else {
		n->head = t;
		n->due = t->last + m->expire_ns;
	}
	n->tail = t;
}

/* Forget threads silent for expire_ns: their requests ended long ago. */
static void expire(struct meta *m, struct mnode *n)
{
	while (n->due < n->clock) {
		struct thr *t = n->head;
		lru_unlink(m, n, t);
		tj_u64map_del(&m->threads, t->id);
		t->next = m->spare;
		m->spare = t;
	}
}

static int remember(struct meta *m, struct mnode *n, uint32_t node,
		    uint32_t tid, const struct tj_message *msg)
{
	uint64_t id = (uint64_t)node << 32 | tid;
	int added;
	uint64_t *slot = tj_u64map_upsert(&m->threads, id, &added);
	if (!slot)
		return -TJ_E_NOMEM;
	struct thr *t;
	if (added) {
		if ((t = m->spare))
			m->spare = t->next;
		else if (!(t = malloc(sizeof(*t)))) {
			tj_u64map_del(&m->threads, id);
			return -TJ_E_NOMEM;
		}
		memset(t, 0, sizeof(*t));
		t->id = id;
		*slot = (uint64_t)(uintptr_t)t;
	} else {
		t = (struct thr *)(uintptr_t)*slot;
		if (n->tail != t) /* most often it is: one busy thread */
			lru_unlink(m, n, t);
	}
	unsigned i = t->next_slot;
	t->next_slot = (i + 1) % RING;
	if (t->n < RING)
		t->n++;
	t->key[i] = msg->key;
	t->ts_first[i] = msg->ts_first;
	t->ts_reply[i] = msg->ts_reply;
	uint64_t last = msg->ts_reply > msg->ts_last ? msg->ts_reply : msg->ts_last;
	if (n->tail == t) {
		t->last = last > t->last ? last : t->last;
		if (n->head == t)
			n->due = t->last + m->expire_ns;
	} else {
		t->last = last;
		lru_push(m, n, t);
	}
	return 0;
}

static int decide(struct meta *m, const struct tj_message *call,
		  struct tj_edge_sink *out)
{
	struct tj_edge e = { .child = call->key, .score = 1.0 };
	if (call->tid_first == TJ_TID_UNKNOWN) {
		e.score = 0.0; /* no thread, no answer: say so */
		return out->emit(out, &e);
	}
	uint64_t id = (uint64_t)call->key.node << 32 | call->tid_first;
	uint64_t *slot = tj_u64map_get(&m->threads, id);
	unsigned open = 0, best = 0;
	const struct thr *t = slot ? (const struct thr *)(uintptr_t)*slot : NULL;
	uint64_t cf = call->ts_first, best_ts = 0;
	for (unsigned i = 0; t && i < t->n; i++) {
		/* read before the call, reply not started at its first byte;
		 * a request whose reply was never seen stays open until its
		 * thread expires */
		uint64_t rf = t->ts_first[i], rr = t->ts_reply[i];
		if (rf >= cf || (rr && rr <= cf))
			continue;
		if (!open++ || rf > best_ts) {
			best = i;
			best_ts = rf;
		}
	}
	if (open) {
		e.has_parent = 1;
		e.parent = t->key[best];
		e.score = 1.0 / open;
	}
	return out->emit(out, &e);
}

static int meta_message(void *st, const struct tj_message *msg,
			struct tj_edge_sink *out, struct tj_err *err)
{
	struct meta *m = st;
	struct mnode *n = node_of(m, msg->key.node);
	if (!n)
		return tj_errf(err, TJ_E_NOMEM, "metadata: out of memory");
	if (msg->ts_first > n->clock)
		n->clock = msg->ts_first;
	expire(m, n);
	if (!msg->is_request)
		return 0;
	if (msg->role == TJ_ROLE_SERVER) {
		int rc = 0;
		if (msg->tid_last != TJ_TID_UNKNOWN)
			rc = remember(m, n, msg->key.node, msg->tid_last, msg);
		if (rc == 0 && msg->tid_first != msg->tid_last &&
		    msg->tid_first != TJ_TID_UNKNOWN)
			rc = remember(m, n, msg->key.node, msg->tid_first, msg);
		if (rc)
			return tj_errf(err, TJ_E_NOMEM, "metadata: out of memory");
		return 0;
	}
	int rc = decide(m, msg, out);
	if (rc < 0)
		return tj_errf(err, -rc, "metadata: the edge sink failed");
	return 0;
}

static int meta_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	return 0; /* every call was answered when it came */
}

static void meta_close(void *st)
{
	struct meta *m = st;
	if (!m)
		return;
	for (size_t i = 0; i < m->threads.cap; i++)
		if (m->threads.ent[i].used)
			free((void *)(uintptr_t)m->threads.ent[i].val);
	for (struct thr *t = m->spare, *nx; t; t = nx) {
		nx = t->next;
		free(t);
	}
	tj_u64map_free(&m->threads);
	tj_u64map_free(&m->node_ix);
	free(m->nodes);
	free(m);
}

const struct tj_correlator tj_correlator_metadata = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "metadata",
	.description = "deterministic join (vPath): the thread that read an open request made the call",
	.params_help = "expire=60  seconds of a node's time after which a silent thread's requests are forgotten",
	.open = meta_open,
	.train = NULL,
	.message = meta_message,
	.finish = meta_finish,
	.close = meta_close,
};
