/* The trace assembler (xasm.h): a pool of live spans, union-find groups,
 * group leaders in order of start (a sorted run and a heap), per-node
 * watermarks. */
#include <stdlib.h>
#include <string.h>
#include "xasm.h"
#include "../lib/util.h"

struct heap_ent {
	uint64_t start;
	struct tj_msgkey key;
	uint32_t slot, gen;
};

struct tj_xasm {
	struct tj_xasm_span *s;
	size_t n, cap;          /* slots used (ever), allocated */
	/* A group's spans (and the free slots) are a list through next[],
	 * beside the records: writing a trace walks 4 bytes a span in one
	 * small array, then reads the records it found all at once (their
	 * cache misses overlap) instead of one miss after another down a
	 * chain through the records. */
	uint32_t *next;
	size_t capnext;
	uint32_t free_head;     /* freed slots, chained through next */
	struct tj_keymap live;  /* key -> slot (unless unindexed) */
	int unindexed;
	/* Root candidates in (start, key) order.  They come nearly in that
	 * order (the replay delivers each node's messages by start), so
	 * most join a sorted run at its back after a few comparisons, and
	 * leave from its front: no sifting.  One that would go further
	 * back than RUN_REACH (a node's clock far behind the others') goes
	 * into a binary heap beside the run; the flush takes the least of
	 * the two fronts. */
	struct heap_ent *run;
	size_t rh, rn, caprun;  /* the run is run[rh..rn) */
	struct heap_ent *heap;
	size_t nheap, capheap;
	uint64_t window;
	uint64_t *wm;
	size_t nnodes;
	tj_xasm_fn fn;
	void *ctx;
	uint32_t *out;          /* a ready group's slots */
	size_t capout;
	/* tj_xasm_model's arrays */
	struct tj_xspan *mspans;
	size_t capm;
	struct tj_xindex_room room;
	uint64_t tried_wm;      /* the watermark of the last flush */
	struct tj_xasm_stats st;
};

struct tj_xasm *tj_xasm_new(size_t nnodes, uint64_t window_ns, tj_xasm_fn fn, void *ctx)
{
	struct tj_xasm *a = calloc(1, sizeof(*a));
	if (!a || !(a->wm = calloc(nnodes ? nnodes : 1, sizeof(*a->wm)))) {
		free(a);
		return NULL;
	}
	a->nnodes = nnodes;
	a->window = window_ns;
	a->fn = fn;
	a->ctx = ctx;
	a->free_head = TJ_XSPAN_NONE;
	tj_keymap_init(&a->live); /* made on the first add, unless unindexed */
	return a;
}

void tj_xasm_unindexed(struct tj_xasm *a)
{
	a->unindexed = 1;
	tj_keymap_free(&a->live);
}

void tj_xasm_free(struct tj_xasm *a)
{
	if (!a)
		return;
	tj_keymap_free(&a->live);
	free(a->s);
	free(a->next);
	free(a->run);
	free(a->heap);
	free(a->wm);
	free(a->out);
	free(a->mspans);
	tj_xindex_room_free(&a->room);
	free(a);
}

static int heap_less(const struct heap_ent *x, const struct heap_ent *y)
{
	if (x->start != y->start)
		return x->start < y->start;
	return tj_msgkey_cmp(&x->key, &y->key) < 0;
}

static int heap_push(struct tj_xasm *a, const struct heap_ent *e)
{
	if (tj_grow((void **)&a->heap, &a->capheap, a->nheap + 1, sizeof(*a->heap)) < 0)
		return -1;
	size_t i = a->nheap++;
	while (i && heap_less(e, &a->heap[(i - 1) / 2])) {
		a->heap[i] = a->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	a->heap[i] = *e;
	return 0;
}

static void heap_pop(struct tj_xasm *a)
{
	struct heap_ent last = a->heap[--a->nheap];
	size_t i = 0, n = a->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_less(&a->heap[c + 1], &a->heap[c]))
			c++;
		if (!heap_less(&a->heap[c], &last))
			break;
		a->heap[i] = a->heap[c];
		i = c;
	}
	if (n)
		a->heap[i] = last;
}

/* How far back from the run's end a candidate is placed by moving the
 * later ones up; one that belongs further back goes to the heap. */
#define RUN_REACH 32

static int root_push(struct tj_xasm *a, const struct heap_ent *e)
{
	size_t at = a->rn;
	while (at > a->rh && a->rn - at < RUN_REACH && heap_less(e, &a->run[at - 1]))
		at--;
	if (at > a->rh && heap_less(e, &a->run[at - 1]))
		return heap_push(a, e);
	if (a->rn == a->caprun && a->rh > a->caprun / 2) { /* the used front: move the run down */
		memmove(a->run, a->run + a->rh, (a->rn - a->rh) * sizeof(*a->run));
		at -= a->rh;
		a->rn -= a->rh;
		a->rh = 0;
	}
	if (tj_grow((void **)&a->run, &a->caprun, a->rn + 1, sizeof(*a->run)) < 0)
		return -1;
	memmove(a->run + at + 1, a->run + at, (a->rn - at) * sizeof(*a->run));
	a->run[at] = *e;
	a->rn++;
	return 0;
}

/* The least candidate (NULL: none) and whether it is the run's. */
static const struct heap_ent *root_front(const struct tj_xasm *a, int *in_run)
{
	const struct heap_ent *r = a->rh < a->rn ? &a->run[a->rh] : NULL;
	const struct heap_ent *h = a->nheap ? &a->heap[0] : NULL;
	*in_run = r && (!h || !heap_less(h, r));
	return *in_run ? r : h;
}

static void root_pop(struct tj_xasm *a, int in_run)
{
	if (!in_run)
		heap_pop(a);
	else if (++a->rh == a->rn)
		a->rh = a->rn = 0;
}

uint32_t tj_xasm_add(struct tj_xasm *a, const struct tj_xspan *x, uint32_t node)
{
	uint32_t i;
	if (a->free_head != TJ_XSPAN_NONE) {
		i = a->free_head;
		a->free_head = a->next[i];
	} else {
		if (a->n >= TJ_XSPAN_NONE - 1 ||
		    tj_grow((void **)&a->s, &a->cap, a->n + 1, sizeof(*a->s)) < 0 ||
		    tj_grow((void **)&a->next, &a->capnext, a->n + 1, sizeof(*a->next)) < 0)
			return TJ_XSPAN_NONE;
		i = (uint32_t)a->n++;
		a->s[i].gen = 0;
	}
	if (!a->unindexed) {
		int added;
		/* spans come and go: a sparse table keeps deletions short
		 * (made here: the stream, unindexed, would fault in 1 MB) */
		size_t *v = a->live.cap || tj_keymap_reserve(&a->live, 32768) == 0
				    ? tj_keymap_upsert(&a->live, &x->key, &added) : NULL;
		if (!v || !added) {
			a->next[i] = a->free_head;
			a->free_head = i;
			return TJ_XSPAN_NONE;
		}
		*v = i;
	}
	struct tj_xasm_span *s = &a->s[i];
	uint32_t gen = s->gen;
	memset(s, 0, sizeof(*s));
	s->gen = gen;
	s->x = *x;
	s->x.parent = TJ_XSPAN_NONE;
	s->uf = s->tail = i;
	a->next[i] = TJ_XSPAN_NONE;
	s->size = 1;
	s->max_end = x->end;
	s->node = node;
	s->live = 1;
	if (++a->st.live > a->st.peak_live)
		a->st.peak_live = a->st.live;
	return i;
}

uint32_t tj_xasm_find(const struct tj_xasm *a, const struct tj_msgkey *k)
{
	const size_t *v = a->unindexed ? NULL : tj_keymap_get(&a->live, k);
	return v ? (uint32_t)*v : TJ_XSPAN_NONE;
}

struct tj_xasm_span *tj_xasm_span(struct tj_xasm *a, uint32_t slot)
{
	return &a->s[slot];
}

static uint32_t leader(struct tj_xasm *a, uint32_t i)
{
	uint32_t r = i;
	while (a->s[r].uf != r)
		r = a->s[r].uf;
	while (a->s[i].uf != r) { /* path compression */
		uint32_t up = a->s[i].uf;
		a->s[i].uf = r;
		i = up;
	}
	return r;
}

int tj_xasm_settle(struct tj_xasm *a, uint32_t slot)
{
	const struct tj_xasm_span *s = &a->s[slot];
	if (s->x.parent != TJ_XSPAN_NONE)
		return 0;
	struct heap_ent e = { .start = s->x.start, .key = s->x.key, .slot = slot, .gen = s->gen };
	return root_push(a, &e) < 0 ? -TJ_E_NOMEM : 0;
}

int tj_xasm_link(struct tj_xasm *a, uint32_t child, uint32_t parent)
{
	struct tj_xasm_span *c = &a->s[child];
	if (c->x.parent != TJ_XSPAN_NONE)
		return TJ_XASM_HAS_PARENT;
	/* without a parent, child leads its group */
	uint32_t l = leader(a, parent);
	if (l == child)
		return TJ_XASM_CYCLE;
	struct tj_xasm_span *g = &a->s[l];
	c->x.parent = parent;
	c->uf = l;
	a->next[g->tail] = child;
	g->tail = c->tail;
	g->size += c->size;
	if (c->max_end > g->max_end)
		g->max_end = c->max_end;
	return TJ_XASM_OK;
}

void tj_xasm_advance(struct tj_xasm *a, uint32_t node, uint64_t ts)
{
	if (node < a->nnodes && ts > a->wm[node])
		a->wm[node] = ts;
}

uint64_t tj_xasm_watermark(const struct tj_xasm *a)
{
	uint64_t m = UINT64_MAX;
	for (size_t i = 0; i < a->nnodes; i++)
		if (a->wm[i] < m)
			m = a->wm[i];
	return a->nnodes ? m : 0;
}

/* Write the group led by l and free its slots. */
static int flush_group(struct tj_xasm *a, uint32_t l)
{
	size_t n = a->s[l].size, k = 0;
	if (tj_grow((void **)&a->out, &a->capout, n, sizeof(*a->out)) < 0)
		return -TJ_E_NOMEM;
	for (uint32_t i = l; i != TJ_XSPAN_NONE && k < n; i = a->next[i])
		a->out[k++] = i;
	for (size_t i = 0; i < k; i++) /* the records the writer reads next */
		for (size_t b = 0; b < sizeof(*a->s); b += 64)
			__builtin_prefetch((const char *)&a->s[a->out[i]] + b);
	int rc = a->fn(a->ctx, a, a->out, k);
	for (size_t i = 0; i < k; i++) {
		struct tj_xasm_span *s = &a->s[a->out[i]];
		if (!a->unindexed)
			tj_keymap_del(&a->live, &s->x.key);
		s->live = 0;
		s->gen++;
		a->next[a->out[i]] = a->free_head;
		a->free_head = a->out[i];
	}
	a->st.live -= k;
	a->st.traces++;
	return rc;
}

int tj_xasm_flush(struct tj_xasm *a, int all)
{
	uint64_t wm = all ? UINT64_MAX : tj_xasm_watermark(a);
	/* a trace gets ready only as the watermark moves */
	if (!all && wm == a->tried_wm)
		return 0;
	a->tried_wm = wm;
	const struct heap_ent *e;
	int in_run;
	while ((e = root_front(a, &in_run))) {
		struct tj_xasm_span *s = &a->s[e->slot];
		if (!s->live || s->gen != e->gen || s->x.parent != TJ_XSPAN_NONE) {
			root_pop(a, in_run); /* written, or no longer a root */
			continue;
		}
		if (!all && (s->max_end > wm || wm - s->max_end < a->window))
			break;
		uint32_t l = e->slot;
		root_pop(a, in_run);
		/* the next root's record (written ~a window ago, out of cache)
		 * comes in while this trace is written */
		int next_in_run;
		const struct heap_ent *nx = root_front(a, &next_in_run);
		if (nx)
			for (size_t b = 0; b < sizeof(*a->s); b += 64)
				__builtin_prefetch((const char *)&a->s[nx->slot] + b);
		int rc = flush_group(a, l);
		if (rc)
			return rc;
	}
	return 0;
}

static int cmp_xspan_key(const void *x, const void *y)
{
	return tj_msgkey_cmp(&((const struct tj_xspan *)x)->key,
			     &((const struct tj_xspan *)y)->key);
}

int tj_xasm_model(struct tj_xasm *a, const uint32_t *slots, size_t n,
		  struct tj_xmodel *m, uint32_t *root, struct tj_err *err)
{
	if (tj_grow((void **)&a->mspans, &a->capm, n, sizeof(*a->mspans)) < 0)
		return tj_errf(err, TJ_E_NOMEM, "export: out of memory");
	for (size_t i = 0; i < n; i++) {
		a->mspans[i] = a->s[slots[i]].x;
		/* the parent's key, for now, in place of its slot */
		a->mspans[i].true_parent = a->mspans[i].parent;
	}
	if (n > 16) {
		qsort(a->mspans, n, sizeof(*a->mspans), cmp_xspan_key);
	} else { /* a trace's handful: insertion sort, no calls */
		for (size_t i = 1; i < n; i++) {
			struct tj_xspan x = a->mspans[i];
			size_t j = i;
			for (; j > 0 && tj_msgkey_cmp(&a->mspans[j - 1].key, &x.key) > 0; j--)
				a->mspans[j] = a->mspans[j - 1];
			a->mspans[j] = x;
		}
	}
	struct tj_xmodel t = { .spans = a->mspans, .n = n };
	*root = TJ_XSPAN_NONE;
	for (size_t i = 0; i < n; i++) {
		struct tj_xspan *s = &a->mspans[i];
		if (s->true_parent != TJ_XSPAN_NONE)
			s->parent = tj_xmodel_find(&t, &a->s[s->true_parent].x.key);
		else
			*root = (uint32_t)i;
		s->true_parent = TJ_XSPAN_NONE;
	}
	for (size_t i = 0; i < n; i++)
		a->mspans[i].trace = *root;
	m->spans = a->mspans;
	m->n = n;
	return tj_xmodel_index_reuse(m, &a->room, err);
}

const struct tj_xasm_stats *tj_xasm_stats(const struct tj_xasm *a)
{
	return &a->st;
}
