/* Checks of a generated dataset made from its logs alone: the test
 * assembles messages from the events itself (DESIGN.md: a message is a
 * maximal run of bytes in one direction, keyed by the offset of its first
 * byte) and holds labels.csv against them.  Shared by test_gen.c and
 * test_gen_lossy.c. */
#ifndef TEST_GEN_CHECK_H
#define TEST_GEN_CHECK_H

#include <glob.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/evlog.h"
#include "lib/edges.h"
#include "lib/msgkey.h"
#include "lib/u64map.h"

struct gmsg {
	struct tj_msgkey key;
	uint8_t role;      /* 1 client (connected), 2 server (accepted), 0 unknown */
	uint32_t pid, tid; /* of the first syscall */
	uint64_t ts;
	uint64_t order;    /* position in its node's log */
};

struct gsock {
	uint8_t role;
	int last_dir;          /* -1 none */
	uint64_t next_off[2];  /* offset the next syscall should carry */
	uint64_t bytes[2];
	uint8_t family;
	uint16_t lport, rport;
	uint8_t laddr[16], raddr[16];
	uint32_t node;
};

struct gdata {
	struct gmsg *msgs;
	size_t nmsgs, capmsgs;
	struct gsock *socks;
	size_t nsocks, capsocks;
	uint64_t events, lost_marked, footer_drops;
	uint64_t order_errors;   /* timestamps going back within a node */
	uint64_t offset_errors;  /* offsets not continuing the stream */
	uint64_t unknown_sock;   /* data on a socket never accepted/connected */
};

static int gmsg_cmp(const void *a, const void *b)
{
	return tj_msgkey_cmp(&((const struct gmsg *)a)->key, &((const struct gmsg *)b)->key);
}

/* Read one node's log into d; fails the test on a read error. */
static int gdata_add_log(struct gdata *d, const char *path, int lossy)
{
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	if (tj_evlog_open(&r, path, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	struct tj_u64map map; /* sock -> index in d->socks */
	tj_u64map_init(&map);
	const struct tj_event *ev;
	uint64_t last_ts = 0, order = 0;
	int rc;
	while ((rc = tj_evlog_next(r, &ev, &err)) > 0) {
		d->events++;
		order++;
		if (ev->ts_ns < last_ts)
			d->order_errors++;
		last_ts = ev->ts_ns;
		if (ev->type == TJ_EV_LOST) {
			d->lost_marked += (uint64_t)ev->bytes;
			continue;
		}
		int added;
		uint64_t *ix = tj_u64map_upsert(&map, ev->sock, &added);
		if (added) {
			if (d->nsocks == d->capsocks) {
				d->capsocks = d->capsocks ? d->capsocks * 2 : 1024;
				d->socks = realloc(d->socks, d->capsocks * sizeof(*d->socks));
			}
			*ix = d->nsocks;
			struct gsock *ns = &d->socks[d->nsocks++];
			memset(ns, 0, sizeof(*ns));
			ns->last_dir = -1;
			ns->node = ev->node;
			ns->family = ev->family;
			ns->lport = ev->lport;
			ns->rport = ev->rport;
			memcpy(ns->laddr, ev->laddr, 16);
			memcpy(ns->raddr, ev->raddr, 16);
		}
		struct gsock *s = &d->socks[*ix];
		if (ev->type == TJ_EV_CONNECT)
			s->role = 1;
		else if (ev->type == TJ_EV_ACCEPT)
			s->role = 2;
		/* a 0-byte read is EOF: no data, no message */
		if ((ev->type != TJ_EV_SEND && ev->type != TJ_EV_RECV) || ev->bytes <= 0)
			continue;
		int dir = ev->type == TJ_EV_SEND ? TJ_DIR_OUT : TJ_DIR_IN;
		if (s->role == 0)
			d->unknown_sock++;
		if (ev->offset != s->next_off[dir] && !lossy)
			d->offset_errors++;
		int gap = ev->offset != s->next_off[dir];
		/* replay ends a message where bytes are missing too */
		if (s->last_dir != dir || (lossy && gap)) {
			if (d->nmsgs == d->capmsgs) {
				d->capmsgs = d->capmsgs ? d->capmsgs * 2 : 4096;
				d->msgs = realloc(d->msgs, d->capmsgs * sizeof(*d->msgs));
			}
			struct gmsg *m = &d->msgs[d->nmsgs++];
			m->key = (struct tj_msgkey){ .node = ev->node, .sock = ev->sock,
						     .dir = (uint8_t)dir, .offset = ev->offset };
			m->role = s->role;
			m->pid = ev->pid;
			m->tid = ev->tid;
			m->ts = ev->ts_ns;
			m->order = order;
			s->last_dir = dir;
		}
		s->next_off[dir] = ev->offset + (uint64_t)ev->bytes;
		s->bytes[dir] += (uint64_t)ev->bytes;
	}
	const struct tj_evlog_footer *f = tj_evlog_footer(r);
	if (f)
		for (int i = 0; i < TJ_DROP__COUNT; i++)
			d->footer_drops += f->drops[i];
	tj_u64map_free(&map);
	tj_evlog_close_reader(r);
	return rc < 0 || !f ? -1 : 0;
}

static void gdata_sort(struct gdata *d)
{
	qsort(d->msgs, d->nmsgs, sizeof(*d->msgs), gmsg_cmp);
}

static const struct gmsg *gdata_find(const struct gdata *d, const struct tj_msgkey *k)
{
	struct gmsg probe = { .key = *k };
	return bsearch(&probe, d->msgs, d->nmsgs, sizeof(*d->msgs), gmsg_cmp);
}

static void gdata_free(struct gdata *d)
{
	free(d->msgs);
	free(d->socks);
	memset(d, 0, sizeof(*d));
}

/* Every node log of dataset dir, sorted, and its labels. */
static inline void gdata_load_dir(const char *dir, struct gdata *d, struct tj_edge_set *labels,
				  int lossy)
{
	char pat[512];
	glob_t g;
	memset(d, 0, sizeof(*d));
	snprintf(pat, sizeof(pat), "%s/node-*.evlog", dir);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++)
		assert_int_equal(gdata_add_log(d, g.gl_pathv[i], lossy), 0);
	globfree(&g);
	gdata_sort(d);
	snprintf(pat, sizeof(pat), "%s/labels.csv", dir);
	struct tj_err err = { 0 };
	if (tj_edges_read(labels, pat, &err) < 0)
		fail_msg("%s", err.msg);
}

/* Of dataset dir's calls with a parent (*n of them), how many the thread
 * that read the parent request made (first syscalls compared). */
static inline size_t gdata_calls_on_parent_thread(const char *dir, size_t *n)
{
	struct gdata d;
	struct tj_edge_set labels;
	gdata_load_dir(dir, &d, &labels, 0);
	size_t same = 0;
	*n = 0;
	for (size_t i = 0; i < labels.n; i++) {
		const struct tj_edge *e = &labels.edges[i];
		if (!e->has_parent)
			continue;
		const struct gmsg *c = gdata_find(&d, &e->child), *p = gdata_find(&d, &e->parent);
		assert_non_null(c);
		assert_non_null(p);
		(*n)++;
		same += c->tid == p->tid;
	}
	tj_edges_free(&labels);
	gdata_free(&d);
	return same;
}

#endif
