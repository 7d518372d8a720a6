/* The file side of the replay: N node logs merged into one event stream
 * for the assembler.
 *
 * The merge is a binary heap of readers keyed by each one's next event
 * time.  Nodes' clocks are not comparable, and nothing depends on how
 * nodes interleave (only order within a node is promised), so the key is
 * just a hint to keep the nodes roughly abreast and the held state small:
 * the node's wall-clock reference pair when every log has one, else time
 * since the log's first event. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "assemble.h"
#include "../lib/evlog.h"
#include "../lib/symbolize.h"
#include "../lib/u64map.h"

struct source {
	struct tj_evlog_reader *r;
	const struct tj_event *ev; /* next event, NULL at the end */
	uint32_t node;
	int64_t shift;             /* added to ts_ns for the merge key */
	int have_shift;
	int untrusted;             /* header unverified: node from the events */
	uint64_t key;              /* merge key of ev */
	uint64_t n;                /* events read */
	uint64_t lost_marked;      /* TJ_EV_LOST totals */
	struct tj_stacks *stacks;  /* the log's stacks block, or NULL */
	struct tj_u64map sites;    /* pid << 32 | stack_id -> call-site id */
};

struct tj_replay {
	struct source *src;
	size_t nsrc;
	size_t *heap, nheap;
	struct tj_replay_opts opts;
	struct tj_replay_stats st;
	/* With stacks: messages get their call site on the way out. */
	struct tj_symbolizer *sym;
	tj_message_fn fn;
	void *fn_ctx;
	struct source *last;       /* source of the last message with a stack */
};

static uint64_t key_of(const struct source *s)
{
	return (uint64_t)((int64_t)s->ev->ts_ns + s->shift);
}

/* Keys are cached in the source (s->key), set by advance(). */
static int less(const struct tj_replay *rp, size_t a, size_t b)
{
	return rp->src[rp->heap[a]].key < rp->src[rp->heap[b]].key;
}

static void swap(size_t *h, size_t a, size_t b)
{
	size_t t = h[a];
	h[a] = h[b];
	h[b] = t;
}

static void sift_down(struct tj_replay *rp, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < rp->nheap && less(rp, l, m))
			m = l;
		if (r < rp->nheap && less(rp, r, m))
			m = r;
		if (m == i)
			return;
		swap(rp->heap, i, m);
		i = m;
	}
}

static void sift_up(struct tj_replay *rp, size_t i)
{
	while (i > 0 && less(rp, i, (i - 1) / 2)) {
		swap(rp->heap, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

/* Read the next event of s; checks it belongs to the log's node. */
static int advance(struct source *s, struct tj_err *err)
{
	int rc = tj_evlog_next(s->r, &s->ev, err);
	if (rc <= 0) {
		s->ev = NULL;
		return rc;
	}
	s->n++;
	if (s->n == 1 && s->untrusted && s->ev->node != s->node) {
		tj_warn("%s: the damaged header says node %" PRIu32 ", its events are "
			"of node %" PRIu32 ": replayed as node %" PRIu32,
			tj_evlog_path(s->r), s->node, s->ev->node, s->ev->node);
		s->node = s->ev->node;
	}
	if (s->ev->node != s->node)
		return tj_errf(err, TJ_E_FORMAT,
			       "%s: event %" PRIu64 " is of node %" PRIu32
			       " in the log of node %" PRIu32,
			       tj_evlog_path(s->r), s->n, s->ev->node, s->node);
	if (s->ev->type == TJ_EV_LOST && s->ev->bytes > 0)
		s->lost_marked += (uint64_t)s->ev->bytes;
	s->key = key_of(s);
	return 1;
}

void tj_replay_close(struct tj_replay *rp)
{
	if (!rp)
		return;
	for (size_t i = 0; i < rp->nsrc; i++) {
		if (rp->src[i].r)
			tj_evlog_close_reader(rp->src[i].r);
		if (rp->src[i].stacks) {
			tj_stacks_free(rp->src[i].stacks);
			free(rp->src[i].stacks);
			tj_u64map_free(&rp->src[i].sites);
		}
	}
	tj_symbolizer_free(rp->sym);
	free(rp->src);
	free(rp->heap);
	free(rp);
}

/* The stacks block of a capture --stack log, for call-site ids.  Stacks
 * are an addition: a log whose block is missing or bad replays without
 * them, with a warning. */
static void load_stacks(struct tj_replay *rp, struct source *s, const char *path)
{
	struct tj_err e = { 0 };
	struct tj_stacks *st = malloc(sizeof(*st));
	int rc;

	if (!st)
		return;
	tj_stacks_init(st);
	rc = tj_stacks_read(path, st, &e);
	if (rc <= 0 || (!rp->sym && !(rp->sym = tj_symbolizer_new()))) {
		if (rc < 0)
			tj_warn("%s: call sites not known: %s", path, e.msg);
		tj_stacks_free(st);
		free(st);
		return;
	}
	s->stacks = st;
	tj_u64map_init(&s->sites);
}

/* Between the assembler and the caller when some log has stacks. */
static int with_callsite(void *ctx, const struct tj_message *m)
{
	struct tj_replay *rp = ctx;
	struct source *s = rp->last;
	struct tj_message c;
	uint64_t *v;
	int added = 0;

	if (!m->stack_id)
		return rp->fn(rp->fn_ctx, m);
	if (!s || s->node != m->key.node) {
		s = NULL;
		for (size_t i = 0; i < rp->nsrc && !s; i++)
			if (rp->src[i].node == m->key.node)
				s = &rp->src[i];
		rp->last = s;
	}
	if (!s || !s->stacks)
		return rp->fn(rp->fn_ctx, m);
	v = tj_u64map_upsert(&s->sites, (uint64_t)m->pid << 32 | m->stack_id, &added);
	if (!v)
		return -TJ_E_NOMEM;
	if (added) {
		const struct tj_stack *k = tj_stacks_find(s->stacks, m->stack_id);
		*v = k ? tj_callsite_id(rp->sym, s->stacks, m->pid, k) : 0;
	}
	c = *m;
	c.callsite = *v;
	return rp->fn(rp->fn_ctx, &c);
}

int tj_replay_open(struct tj_replay **rpp, char *const *paths, size_t npaths,
		   const struct tj_replay_opts *opts, struct tj_err *err)
{
	if (npaths == 0)
		return tj_errf(err, TJ_E_ARG, "replay: no logs given");
	struct tj_replay *rp = calloc(1, sizeof(*rp));
	if (!rp || !(rp->src = calloc(npaths, sizeof(*rp->src))) ||
	    !(rp->heap = calloc(npaths, sizeof(*rp->heap)))) {
		tj_replay_close(rp);
		return tj_errf(err, TJ_E_NOMEM, "replay: out of memory");
	}
	if (opts)
		rp->opts = *opts;
	int rc = 0, all_clocks = 1;
	for (size_t i = 0; i < npaths && rc == 0; i++) {
		struct source *s = &rp->src[i];
		rc = tj_evlog_open(&s->r, paths[i], err);
		if (rc)
			break;
		rp->nsrc++;
		const struct tj_evlog_header *h = tj_evlog_header(s->r);
		s->node = h->node;
		s->untrusted = tj_evlog_damage(s->r)->header_untrusted;
		if ((h->capture_flags & TJ_CAP_STACKS) && strcmp(paths[i], "-") != 0)
			load_stacks(rp, s, paths[i]);
		/* The first event read (by a CRC-checked block) gives an
		 * untrusted header's node, so it is read before the checks. */
		rc = advance(s, err);
		if (rc < 0)
			break;
		rc = 0;
		for (size_t j = 0; j < i; j++)
			if (rp->src[j].node == s->node)
				rc = tj_errf(err, TJ_E_ARG,
					     "%s and %s are both logs of node %" PRIu32
					     " (one log per node)",
					     tj_evlog_path(rp->src[j].r), paths[i], s->node);
		/* An untrusted header's clock pair is kept only if its monotonic
		 * reading is not after the first event (headers are written
		 * before any event); it only keys the merge (see above). */
		if (h->clock_real_ns && h->clock_mono_ns &&
		    !(s->untrusted && s->ev && h->clock_mono_ns > s->ev->ts_ns)) {
			s->shift = (int64_t)(h->clock_real_ns - h->clock_mono_ns);
			s->have_shift = 1;
		} else {
			all_clocks = 0;
		}
	}
	for (size_t i = 0; i < rp->nsrc && rc == 0; i++) {
		struct source *s = &rp->src[i];
		if (!all_clocks)
			s->shift = s->ev ? -(int64_t)s->ev->ts_ns : 0;
		if (s->ev)
			s->key = key_of(s);
	}
	if (rc) {
		tj_replay_close(rp);
		return rc;
	}
	*rpp = rp;
	return 0;
}

/* A log ended: account for what it lost. */
static void log_ended(struct tj_replay *rp, struct source *s)
{
	const struct tj_evlog_damage *d = tj_evlog_damage(s->r);
	const struct tj_evlog_footer *f = tj_evlog_footer(s->r);
	uint64_t dropped = 0;
	if (f)
		for (int k = 0; k < TJ_DROP__COUNT; k++)
			dropped += f->drops[k];
	/* Capture may both mark losses in the stream and count them in the
	 * footer: take the larger, never the sum. */
	rp->st.lost_events += dropped > s->lost_marked ? dropped : s->lost_marked;
	if (d && d->damaged) {
		rp->st.damaged_logs++;
		rp->st.lost_events += d->events_lost;
		char lost[64];
		tj_warn("%s: damaged, read as far as possible: %s%s", tj_evlog_path(s->r),
			d->what, tj_evlog_damage_lost(d, lost));
	}
}

int tj_replay_run(struct tj_replay *rp, tj_message_fn fn, void *ctx,
		  struct tj_err *err)
{
	struct tj_assembler *a;
	int rc;
	if (rp->sym) {
		rp->fn = fn;
		rp->fn_ctx = ctx;
		rc = tj_assembler_new(&a, &rp->opts, with_callsite, rp, err);
	} else {
		rc = tj_assembler_new(&a, &rp->opts, fn, ctx, err);
	}
	if (rc)
		return rc;
	rp->nheap = 0;
	for (size_t i = 0; i < rp->nsrc; i++) {
		if (rp->src[i].ev) {
			rp->heap[rp->nheap++] = i;
			sift_up(rp, rp->nheap - 1);
		} else {
			log_ended(rp, &rp->src[i]);
		}
	}
	while (rp->nheap && rc == 0) {
		struct source *s = &rp->src[rp->heap[0]];
		if ((rc = tj_assembler_feed(a, s->ev, err)))
			break;
		if ((rc = advance(s, err)) < 0)
			break;
		rc = 0;
		if (s->ev) {
			sift_down(rp, 0);
			continue;
		}
		log_ended(rp, s);
		rp->heap[0] = rp->heap[--rp->nheap];
		sift_down(rp, 0);
		rc = tj_assembler_end_node(a, s->node, err);
	}
	if (rc == 0)
		rc = tj_assembler_end(a, err);
	uint64_t lost = rp->st.lost_events, damaged = rp->st.damaged_logs;
	rp->st = *tj_assembler_stats(a);
	rp->st.lost_events = lost;
	rp->st.damaged_logs = damaged;
	tj_assembler_free(a);
	return rc;
}

const struct tj_replay_stats *tj_replay_stats(const struct tj_replay *rp)
{
	return &rp->st;
}
