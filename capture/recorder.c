/* Ring records -> time-ordered events in one evlog per node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include "recorder.h"
#include "slot_pool.h"
#include "../lib/util.h"

/* An event waiting for its place in time, in a slot of the pool. */
struct held {
	struct tj_event ev;
	uint32_t netns;
	uint8_t *payload;  /* owned copy, or NULL */
};

/* What orders a held event: merging these small keys, not the events,
 * keeps capture's own CPU time down (it was mostly copies). */
struct held_key {
	uint64_t ts;
	uint32_t slot;     /* where the event waits in the pool */
};

/* Records reach us as runs already in time order: each CPU's ring is
 * drained in the order its events were stamped.  A run is keys[start,
 * end); a new one begins where a record is older than the one before it.
 * Runs are kept as they arrive and merged only when their events are
 * written, where sorting the newcomers cost ~400 instructions each. */
struct run {
	size_t start, end;
	size_t take;   /* merge_out: its keys written this time (a prefix) */
};

/* A stretch of keys in time order, being merged. */
struct seg {
	const struct held_key *k;
	size_t n;
};

struct node_log {
	uint32_t netns;
	uint32_t node;
	char *path;
	struct tj_evlog_writer *w;
	uint64_t events;
};

struct tj_recorder {
	struct tj_recorder_opts o;
	struct tj_slot_pool pool; /* events waiting (struct held), never moved */
	uint32_t *free_slots;    /* nfree slot numbers of the pool not in use */
	size_t cappool, nfree, capfree;
	struct held_key *keys;   /* one per waiting event, runs one after the other */
	size_t nkeys, capkeys;   /* keys[0, nkeys) used, dead ones included */
	struct run *runs;        /* in arrival order; the last one grows */
	size_t nruns, capruns, capsegs;
	struct seg *segs;        /* merge_out's stretches */
	struct held_key *mbuf[2]; /* merge_out's passes, capm keys each */
	size_t capm[2];
	struct node_log *logs;
	size_t nlogs;
	size_t last;          /* index of the last log used */
	int broken;           /* a write failed: stop writing */
	int made_dir;         /* --netns: we made the folder (removed if it gets no log) */
};

static inline void held_free(struct held *h)
{
	/* Most events have no payload: no call to free(NULL) for them. */
	if (h->payload) {
		free(h->payload);
		h->payload = NULL;
	}
}

static int write_scan(struct tj_recorder *r, struct node_log *l, struct tj_err *err);

static int open_log(struct tj_recorder *r, uint32_t netns, struct node_log **out,
		    struct tj_err *err)
{
	struct node_log *logs, *l;
	struct tj_evlog_header h = r->o.header;
	int rc;

	logs = realloc(r->logs, (r->nlogs + 1) * sizeof(*logs));
	if (!logs)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	r->logs = logs;
	l = &logs[r->nlogs];
	memset(l, 0, sizeof(*l));
	l->netns = netns;
	if (r->o.per_netns) {
		/* A namespace's node id is its inode number: stable for the
		 * namespace's life and what /proc/PID/ns/net shows. */
		h.node = netns;
		size_t used = strlen(h.options);
		snprintf(h.options + used, sizeof(h.options) - used, " [netns %u]", netns);
		if (asprintf(&l->path, "%s/node-%u.evlog", r->o.out, netns) < 0)
			return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	} else {
		l->path = strdup(r->o.out);
		if (!l->path)
			return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	}
	l->node = h.node;
	rc = tj_evlog_create(&l->w, l->path, &h,
			     TJ_EVLOG_CAPTURE | (r->o.force ? TJ_EVLOG_FORCE : 0), err);
	if (rc) {
		free(l->path);
		return rc;
	}
	if (r->o.block_events && (rc = tj_evlog_set_block_events(l->w, r->o.block_events))) {
		tj_evlog_abort(l->w);
		free(l->path);
		return tj_errf(err, TJ_E_ARG, "%s: block size %u refused", l->path,
			       r->o.block_events);
	}
	r->nlogs++;
	*out = l;
	return write_scan(r, l, err);
}

/* The scan's records for one log: its namespace's listeners (every
 * namespace's in single-log mode), then SCAN.  They come first, so the
 * replay knows the listeners before any socket's first message. */
static int write_scan(struct tj_recorder *r, struct node_log *l, struct tj_err *err)
{
	const struct tj_sockscan *sc = r->o.scan;
	struct tj_event ev;
	uint64_t open = 0;
	int rc;

	if (!sc)
		return TJ_OK;
	for (size_t i = 0; i < sc->nlisteners; i++) {
		const struct tj_sockscan_listener *x = &sc->listeners[i];
		if (r->o.per_netns && x->netns != l->netns)
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.ts_ns = sc->ts_ns;
		ev.node = l->node;
		ev.type = TJ_EV_LISTEN;
		ev.sock = x->inode;
		ev.fd = TJ_FD_UNKNOWN;
		ev.family = x->family;
		ev.lport = x->port;
		memcpy(ev.laddr, x->addr, 16);
		if ((rc = tj_evlog_write(l->w, &ev, err)))
			return rc;
		l->events++;
	}
	if (r->o.per_netns) {
		const struct tj_sockscan_ns *n = tj_sockscan_ns_find(sc, l->netns);
		open = n ? n->open : 0;
	} else {
		open = sc->open;
	}
	memset(&ev, 0, sizeof(ev));
	ev.ts_ns = sc->ts_ns;
	ev.node = l->node;
	ev.type = TJ_EV_SCAN;
	ev.fd = TJ_FD_UNKNOWN;
	ev.bytes = (int64_t)open;
	ev.arg = sc->dur_ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(sc->dur_ns / 1000);
	if ((rc = tj_evlog_write(l->w, &ev, err)))
		return rc;
	l->events++;
	return TJ_OK;
}

/* The log an event goes to, made on first sight of its namespace. */
static int log_for(struct tj_recorder *r, uint32_t netns, struct node_log **out,
		   struct tj_err *err)
{
	if (!r->o.per_netns) {
		*out = &r->logs[0];
		return TJ_OK;
	}
	if (r->last < r->nlogs && r->logs[r->last].netns == netns) {
		*out = &r->logs[r->last];
		return TJ_OK;
	}
	for (size_t i = 0; i < r->nlogs; i++)
		if (r->logs[i].netns == netns) {
			r->last = i;
			*out = &r->logs[i];
			return TJ_OK;
		}
	int rc = open_log(r, netns, out, err);
	if (rc == 0)
		r->last = r->nlogs - 1;
	return rc;
}

/* Refuse a folder that already holds logs, before anything is traced:
 * finding out at the first event of a namespace would be too late. */
static int check_folder(const char *dir, int force, int *made, struct tj_err *err)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (mkdir(dir, 0700) == 0) {
		*made = 1;
		return TJ_OK;
	}
	if (errno != EEXIST)
		return tj_errf(err, TJ_E_IO, "%s: cannot create folder: %s", dir, strerror(errno));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return tj_errf(err, TJ_E_ARG, "%s: exists and is not a folder (--netns "
			       "writes one log per namespace into a folder)", dir);
	if (force)
		return TJ_OK;
	if (!(d = opendir(dir)))
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, "node-", 5) == 0 && n > 6 &&
		    strcmp(de->d_name + n - 6, ".evlog") == 0) {
			/* de lives in d: the message first, then closedir. */
			int rc = tj_errf(err, TJ_E_ARG, "%s/%s: exists (--force overwrites)",
					 dir, de->d_name);
			closedir(d);
			return rc;
		}
	}
	closedir(d);
	return TJ_OK;
}

int tj_recorder_open(struct tj_recorder **rp, const struct tj_recorder_opts *o,
		     struct tj_err *err)
{
	struct tj_recorder *r = calloc(1, sizeof(*r));
	struct node_log *l;
	int rc;

	*rp = NULL;
	if (!r)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	r->o = *o;
	tj_slot_pool_init(&r->pool, sizeof(struct held));
	if (o->per_netns)
		rc = check_folder(o->out, o->force, &r->made_dir, err);
	else
		rc = open_log(r, 0, &l, err);
	if (rc) {
		free(r->logs);
		free(r);
		return rc;
	}
	*rp = r;
	return TJ_OK;
}

static inline struct held *held_at(const struct tj_recorder *r, uint32_t slot)
{
	return tj_slot_pool_at(&r->pool, slot);
}

/* A free slot of the pool for a new event, the pool grown if need be: a
 * chunk at a time, its pages present before any event goes in (a reader
 * catching up on a burst took a page fault per 32 events, slot_pool.h). */
static __attribute__((noinline)) int grow_pool(struct tj_recorder *r, struct tj_err *err)
{
	size_t cap = r->cappool;

	if (tj_grow((void **)&r->free_slots, &r->capfree,
		    cap + ((size_t)1 << r->pool.shift), sizeof(*r->free_slots)) < 0 ||
	    tj_slot_pool_grow(&r->pool) == 0)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory (%zu events waiting)",
			       r->cappool - r->nfree);
	r->cappool = tj_slot_pool_cap(&r->pool);
	/* Lowest numbers on top: the chunk is used from its start. */
	for (size_t i = r->cappool; i > cap; i--)
		r->free_slots[r->nfree++] = (uint32_t)(i - 1);
	return TJ_OK;
}

/* Inlined into the per-event path (a call's register saves were a
 * tenth of it); the growth above is the rare way. */
static inline int take_slot(struct tj_recorder *r, uint32_t *slot, struct tj_err *err)
{
	int rc;

	if (r->nfree == 0 && (rc = grow_pool(r, err)))
		return rc;
	*slot = r->free_slots[--r->nfree];
	return TJ_OK;
}

static inline void give_slot(struct tj_recorder *r, uint32_t slot)
{
	held_free(held_at(r, slot));
	r->free_slots[r->nfree++] = slot;
}

/* Move what is left of each run down to the front of keys[], in run
 * order.  Done only when keys[] is full, so that a key is moved about
 * once in its life, not at every drain. */
static void compact_keys(struct tj_recorder *r)
{
	size_t to = 0;

	for (size_t k = 0; k < r->nruns; k++) {
		struct run *u = &r->runs[k];
		size_t len = u->end - u->start;
		if (u->start != to)
			memmove(r->keys + to, r->keys + u->start, len * sizeof(*r->keys));
		u->start = to;
		u->end = to + len;
		to += len;
	}
	r->nkeys = to;
}

/* hold()'s rare way: keys[] full, or the event starts a new run. */
static __attribute__((noinline)) int hold_slow(struct tj_recorder *r, uint32_t slot,
					       uint64_t ts, struct tj_err *err)
{
	if (r->nkeys == r->capkeys) {
		/* Full: make room by compacting, and grow too when the live
		 * keys fill half of it (else compactions would come often). */
		compact_keys(r);
		if (r->nkeys >= r->capkeys / 2 &&
		    tj_grow((void **)&r->keys, &r->capkeys, r->capkeys + 1, sizeof(*r->keys)) < 0)
			goto nomem;
	}
	if (r->nruns == 0 || r->runs[r->nruns - 1].end != r->nkeys ||
	    ts < r->keys[r->nkeys - 1].ts) {
		if (tj_grow((void **)&r->runs, &r->capruns, r->nruns + 1, sizeof(*r->runs)) < 0 ||
		    tj_grow((void **)&r->segs, &r->capsegs, r->nruns + 1, sizeof(*r->segs)) < 0)
			goto nomem;
		r->runs[r->nruns].start = r->runs[r->nruns].end = r->nkeys;
		r->runs[r->nruns].take = 0;
		r->nruns++;
	}
	r->keys[r->nkeys].ts = ts;
	r->keys[r->nkeys].slot = slot;
	r->nkeys++;
	r->runs[r->nruns - 1].end = r->nkeys;
	return TJ_OK;
nomem:
	give_slot(r, slot);
	return tj_errf(err, TJ_E_NOMEM, "capture: out of memory (%zu events waiting)",
		       r->cappool - r->nfree);
}

/* The event in slot, stamped ts, joins the queue: at the end of the
 * last run, or as a new run when it is older than that run's last event.
 * Inlined, as take_slot(). */
static inline int hold(struct tj_recorder *r, uint32_t slot, uint64_t ts, struct tj_err *err)
{
	if (r->nkeys == r->capkeys || r->nruns == 0 ||
	    r->runs[r->nruns - 1].end != r->nkeys || ts < r->keys[r->nkeys - 1].ts)
		return hold_slow(r, slot, ts, err);
	r->keys[r->nkeys].ts = ts;
	r->keys[r->nkeys].slot = slot;
	r->nkeys++;
	r->runs[r->nruns - 1].end = r->nkeys;
	return TJ_OK;
}

static int is_v4_mapped(const uint8_t a[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, prefix, 12) == 0;
}

static int is_zero(const uint8_t a[16])
{
	static const uint8_t zero[16];
	return memcmp(a, zero, 16) == 0;
}

int tj_recorder_add(struct tj_recorder *r, const struct tjc_event *e, size_t size,
		    struct tj_err *err)
{
	uint32_t slot;
	int rc = take_slot(r, &slot, err);
	if (rc)
		return rc;
	struct held *h = held_at(r, slot);
	struct tj_event *ev = &h->ev;

	h->netns = e->netns;
	h->payload = NULL;

	ev->ts_ns = e->ts_ns;
	ev->node = 0;
	ev->stack_id = 0;
	ev->tcp_seq = 0;
	ev->payload_len = 0;
	ev->payload = NULL;
	ev->sock = e->sock;
	ev->bytes = e->bytes;
	ev->offset = e->offset;
	ev->pid = e->pid;
	ev->tid = e->tid;
	ev->fd = e->fd;
	ev->type = e->type;
	ev->family = e->family;
	ev->lport = e->lport;
	ev->rport = e->rport;
	ev->flags = e->flags;
	ev->arg = e->arg;
	if (r->o.stacks && (e->type == TJC_EV_SEND || e->type == TJC_EV_RECV ||
			    e->type == TJC_EV_CONNECT || e->type == TJC_EV_ACCEPT))
	{
		size_t at = sizeof(*e) + (r->o.header.payload_max ? TJC_PAYLOAD_MAX : 0);
		const struct tjc_caller *c = NULL;
		if (size >= at + sizeof(*c))
			c = (const struct tjc_caller *)((const uint8_t *)e + at);
		ev->stack_id = tj_stackrec_note(r->o.stacks, e->pid, e->ustack, e->kstack, c);
	}
	memcpy(ev->laddr, e->laddr, 16);
	memcpy(ev->raddr, e->raddr, 16);
	/* An IPv6 socket speaking IPv4 (::ffff:a.b.c.d) is recorded as IPv4,
	 * so that it joins with its peer's IPv4 socket by address. */
	if (ev->family == 10 && is_v4_mapped(ev->raddr) &&
	    (is_v4_mapped(ev->laddr) || is_zero(ev->laddr))) {
		uint8_t l[4], rr[4];
		memcpy(l, ev->laddr + 12, 4);
		memcpy(rr, ev->raddr + 12, 4);
		memset(ev->laddr, 0, 16);
		memset(ev->raddr, 0, 16);
		memcpy(ev->laddr, l, 4);
		memcpy(ev->raddr, rr, 4);
		ev->family = 2;
	}
	size_t room = size - sizeof(*e);
	size_t n = e->payload_len < room ? e->payload_len : room;
	if (n > TJ_PAYLOAD_MAX)
		n = TJ_PAYLOAD_MAX;
	if (n) {
		h->payload = malloc(n);
		if (!h->payload) {
			give_slot(r, slot);
			return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
		}
		memcpy(h->payload, e->payload, n);
		ev->payload_len = n;
	}
	return hold(r, slot, e->ts_ns, err);
}

int tj_recorder_lost(struct tj_recorder *r, uint64_t ts, enum tj_drop_reason why,
		     uint64_t n, struct tj_err *err)
{
	uint32_t slot;
	int rc = take_slot(r, &slot, err);
	if (rc)
		return rc;
	struct held *h = held_at(r, slot);

	memset(h, 0, sizeof(*h));
	h->ev.ts_ns = ts;
	h->ev.type = TJ_EV_LOST;
	h->ev.bytes = (int64_t)n;
	h->ev.arg = why;
	h->ev.fd = TJ_FD_UNKNOWN;
	for (size_t i = 0; i < r->nlogs; i++)
		tj_evlog_add_drops(r->logs[i].w, why, n);
	/* netns 0 marks "every log" for the writer below. */
	return hold(r, slot, ts, err);
}

static int write_one(struct tj_recorder *r, struct held *h, struct tj_err *err)
{
	struct node_log *l;
	int rc;

	h->ev.payload = h->payload;
	if (h->ev.type == TJ_EV_LOST) {
		for (size_t i = 0; i < r->nlogs; i++) {
			h->ev.node = r->logs[i].node;
			if ((rc = tj_evlog_write(r->logs[i].w, &h->ev, err)))
				return rc;
			r->logs[i].events++;
		}
		return TJ_OK;
	}
	if ((rc = log_for(r, h->netns, &l, err)))
		return rc;
	h->ev.node = l->node;
	if ((rc = tj_evlog_write(l->w, &h->ev, err)))
		return rc;
	l->events++;
	return TJ_OK;
}

/* Write one event and give its slot back; a failed write breaks the
 * recorder (every later call refuses). */
static int write_slot(struct tj_recorder *r, uint32_t slot, struct tj_err *err)
{
	struct held *h = held_at(r, slot);
	int rc = write_one(r, h, err);

	held_free(h);
	r->free_slots[r->nfree++] = slot;
	if (rc)
		r->broken = 1;
	return rc;
}

/* How many of run u's keys are older than upto_ts (a prefix: a run is
 * in time order). */
static size_t older_than(const struct tj_recorder *r, const struct run *u, uint64_t upto_ts)
{
	size_t lo = u->start, hi = u->end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->keys[mid].ts < upto_ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - u->start;
}

/* a and b merged into out, a's key first on a tie (a is the earlier
 * stretch): returns the end of out. */
static struct held_key *merge_two(struct seg a, struct seg b, struct held_key *out)
{
	const struct held_key *ae = a.k + a.n, *be = b.k + b.n;

	while (a.k < ae && b.k < be) {
		int from_b = b.k->ts < a.k->ts;
		*out++ = from_b ? *b.k : *a.k;
		b.k += from_b;
		a.k += !from_b;
	}
	memcpy(out, a.k, (size_t)(ae - a.k) * sizeof(*out));
	out += ae - a.k;
	memcpy(out, b.k, (size_t)(be - b.k) * sizeof(*out));
	return out + (be - b.k);
}

/* How far ahead in a stretch the held event is asked for: it was made
 * 20-30 ms ago and has left the cache, and `perf` put half of
 * write_slot's time on its first load.  The final stretches are in
 * time order, so this is the order of the writes. */
#define PREFETCH_AHEAD 8

static inline void prefetch_held(const struct tj_recorder *r, const struct held_key *k,
				 const struct held_key *end)
{
	if (k + PREFETCH_AHEAD < end) {
		const char *h = (const char *)held_at(r, k[PREFETCH_AHEAD].slot);
		__builtin_prefetch(h);
		__builtin_prefetch(h + 64);
	}
}

/* The events of one stretch written in turn. */
static int write_seg(struct tj_recorder *r, struct seg a, struct tj_err *err)
{
	const struct held_key *ae = a.k + a.n;
	int rc = TJ_OK;

	for (; a.k < ae && rc == TJ_OK; a.k++) {
		prefetch_held(r, a.k, ae);
		rc = write_slot(r, a.k->slot, err);
	}
	return rc;
}

/* The last pass: a and b merged as merge_two, each event written. */
static int write_two(struct tj_recorder *r, struct seg a, struct seg b, struct tj_err *err)
{
	const struct held_key *ae = a.k + a.n, *be = b.k + b.n;
	int rc = TJ_OK;

	while (a.k < ae && b.k < be && rc == TJ_OK) {
		int from_b = b.k->ts < a.k->ts;
		const struct held_key *k = from_b ? b.k : a.k;
		prefetch_held(r, k, from_b ? be : ae);
		rc = write_slot(r, k->slot, err);
		b.k += from_b;
		a.k += !from_b;
	}
	a.n = (size_t)(ae - a.k);
	b.n = (size_t)(be - b.k);
	if (rc == TJ_OK)
		rc = write_seg(r, a, err);
	if (rc == TJ_OK)
		rc = write_seg(r, b, err);
	return rc;
}

/* Write, in time order, the held events older than upto_ts: each run's
 * prefix of them, merged.  The order is (time, run number): stretches
 * are merged two by two, neighbours with neighbours, the earlier one
 * first on a tie, until two are left, whose merge is written.  With k
 * runs that is log2(k) compares per event, each a sequential read of
 * small keys; a heap of run heads (one sift-down per event once more
 * than two runs overlap, 8 CPUs in turn) cost more and mispredicted. */
static int merge_out(struct tj_recorder *r, uint64_t upto_ts, struct tj_err *err)
{
	struct seg *sg = r->segs;
	size_t nseg = 0, total = 0;
	int rc = TJ_OK, pass = 0;

	for (size_t k = 0; k < r->nruns; k++) {
		struct run *u = &r->runs[k];
		u->take = older_than(r, u, upto_ts);
		if (u->take) {
			sg[nseg].k = r->keys + u->start;
			sg[nseg++].n = u->take;
			total += u->take;
		}
	}
	while (nseg > 2) {
		struct held_key *out;
		size_t m = 0, i;

		if (tj_grow((void **)&r->mbuf[pass], &r->capm[pass], total, sizeof(*out)) < 0)
			return tj_errf(err, TJ_E_NOMEM, "capture: out of memory (merging %zu events)",
				       total);
		out = r->mbuf[pass];
		for (i = 0; i + 1 < nseg; i += 2) {
			struct seg a = sg[i], b = sg[i + 1];
			sg[m].k = out;
			sg[m++].n = a.n + b.n;
			out = merge_two(a, b, out);
		}
		if (i < nseg) {
			struct seg a = sg[i];
			memcpy(out, a.k, a.n * sizeof(*out));
			sg[m].k = out;
			sg[m++].n = a.n;
		}
		nseg = m;
		pass ^= 1;
	}
	if (nseg == 2)
		rc = write_two(r, sg[0], sg[1], err);
	else if (nseg == 1)
		rc = write_seg(r, sg[0], err);
	if (rc != TJ_OK)
		return rc; /* broken: what is left is freed at the end */
	/* Forget the runs written whole; the others keep their place. */
	size_t nruns = 0;
	for (size_t k = 0; k < r->nruns; k++) {
		r->runs[k].start += r->runs[k].take;
		if (r->runs[k].start < r->runs[k].end)
			r->runs[nruns++] = r->runs[k];
	}
	r->nruns = nruns;
	if (nruns == 0)
		r->nkeys = 0;
	return TJ_OK;
}

int tj_recorder_write_until(struct tj_recorder *r, uint64_t upto_ts,
			    int flush_blocks, struct tj_err *err)
{
	int rc;

	if (r->broken)
		return tj_errf(err, TJ_E_IO, "capture: logs no longer writable");
	if (r->nruns > 0 && (rc = merge_out(r, upto_ts, err)))
		return rc;
	if (flush_blocks)
		for (size_t k = 0; k < r->nlogs; k++)
			if ((rc = tj_evlog_flush(r->logs[k].w, err))) {
				r->broken = 1;
				return rc;
			}
	return TJ_OK;
}

uint64_t tj_recorder_events(const struct tj_recorder *r)
{
	uint64_t n = 0;

	for (size_t i = 0; i < r->nlogs; i++)
		n += r->logs[i].events;
	return n;
}

void tj_recorder_report(const struct tj_recorder *r, FILE *f)
{
	for (size_t i = 0; i < r->nlogs; i++)
		fprintf(f, "%s: node %u, %llu events\n", r->logs[i].path, r->logs[i].node,
			(unsigned long long)r->logs[i].events);
}

int tj_recorder_write_stacks(struct tj_recorder *r, const struct tj_stacks *st,
			     struct tj_err *err)
{
	int rc = tj_recorder_write_until(r, UINT64_MAX, 0, err);

	for (size_t i = 0; i < r->nlogs && rc == TJ_OK; i++)
		rc = tj_stacks_write(r->logs[i].w, st, err);
	if (rc)
		r->broken = 1;
	return rc;
}

static int recorder_end(struct tj_recorder *r, int keep, struct tj_err *err)
{
	int rc = TJ_OK;

	if (!r)
		return TJ_OK;
	if (keep && !r->broken)
		rc = tj_recorder_write_until(r, UINT64_MAX, 0, err);
	for (size_t k = 0; k < r->nruns; k++)
		for (size_t i = r->runs[k].start; i < r->runs[k].end; i++)
			held_free(held_at(r, r->keys[i].slot));
	for (size_t i = 0; i < r->nlogs; i++) {
		/* Close every log even after a failure: each gets what it can. */
		struct tj_err e2 = { 0 };
		int rc2 = 0;
		if (keep)
			rc2 = tj_evlog_close(r->logs[i].w, &e2);
		else
			tj_evlog_abort(r->logs[i].w);
		if (rc2 && rc == TJ_OK) {
			rc = rc2;
			if (err)
				*err = e2;
		}
		free(r->logs[i].path);
	}
	/* A folder we made and no namespace's log went into (a capture that
	 * failed or saw nothing) is not left behind; rmdir() removes it only
	 * if empty, so nothing of the user's can go with it. */
	if (r->made_dir && r->nlogs == 0 && rmdir(r->o.out) != 0 && errno != ENOTEMPTY)
		tj_warn("capture: %s: cannot remove the empty folder: %s", r->o.out,
			strerror(errno));
	free(r->logs);
	tj_slot_pool_free(&r->pool);
	free(r->free_slots);
	free(r->keys);
	free(r->runs);
	free(r->segs);
	free(r->mbuf[0]);
	free(r->mbuf[1]);
	free(r);
	return rc;
}

int tj_recorder_close(struct tj_recorder *r, struct tj_err *err)
{
	return recorder_end(r, 1, err);
}

void tj_recorder_abort(struct tj_recorder *r)
{
	recorder_end(r, 0, NULL);
}
