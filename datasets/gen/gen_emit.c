/* Event records as the capture writes them, simulated capture loss, and
 * the labels.
 *
 * Loss drops runs of consecutive events of one node, as a full ring
 * buffer does, counts them in the footer and writes a TJ_EV_LOST marker
 * before the next event that gets through.  Labels name messages as the
 * capture shows them: a message starts at the first kept byte after the
 * direction flipped, so when loss hides a whole reply two requests on a
 * keepalive socket read as one message and are labeled once (by the
 * first).  A request whose parent lost every byte is labeled with an
 * empty parent: no answer in the logs could name it.  Without loss the
 * observed messages are the true ones.  A request whose middle was lost
 * reads as two messages (replay splits at an offset gap): both are
 * labeled, with the request's parent.  A socket whose connect was lost
 * shows no side, so replay makes no call of its requests: they are not
 * labeled (a server socket is still known by its listening port). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "gen_sim.h"

/* replay's default idle rule (DECISIONS.md) */
#define GEN_IDLE_NS 2000000000ull

static int write_ev(struct sim *s, struct noderun *n, const struct tj_event *ev)
{
	if (tj_evlog_write(n->w, ev, s->err) < 0) {
		s->failed = 1;
		return -1;
	}
	n->events++;
	s->st->events++;
	if (s->opts->max_events && s->st->events >= s->opts->max_events) {
		tj_errf(s->err, TJ_E_LIMIT, "gen: stopped at the limit of %llu events",
			(unsigned long long)s->opts->max_events);
		s->failed = 1;
		return -1;
	}
	return 0;
}

/* Whether the ring buffer had room for this event. */
static int dropped(struct sim *s, struct noderun *n)
{
	if (n->burst_left) {
		n->burst_left--;
		return 1;
	}
	if (n->loss_start > 0 && gsl_rng_uniform(s->rng) < n->loss_start) {
		/* geometric burst length with the spec's mean */
		double mean = n->spec->burst;
		n->burst_left = mean <= 1 ? 0 : gsl_ran_geometric(s->rng, 1.0 / mean) - 1;
		return 1;
	}
	return 0;
}

/* gen --stacks.  Each call site of a simulated service is a one-frame
 * stack in a mapping of its own, named after the site; nothing is at
 * that path, so the replay hashes the name and offset into the same
 * call-site id in every run, node and process.  Sites: a service's
 * accept, its handler of an endpoint (request read, reply written), and
 * each call step of an endpoint (connect, request written, reply read). */
#define SITE_BASE 0x10000000ull
#define SITE_SPAN 0x10000ull
#define SITE_IP_OFF 0x100ull

static void site_name(const struct sim *s, const struct end *e, uint8_t type,
		      char *buf, size_t n)
{
	const struct conn *k = e->c;
	const struct call *c = k->call;
	if (e == &k->sv) {
		const char *svc = k->callee->spec->name;
		const struct gen_endpoint *ep = k->job ? k->job->ep : c ? c->ep : NULL;
		if (type == TJ_EV_ACCEPT)
			snprintf(buf, n, "[gen:svc_%s_accept]", svc);
		else if (!ep) /* end of file between requests */
			snprintf(buf, n, "[gen:svc_%s_serve]", svc);
		else
			snprintf(buf, n, "[gen:svc_%s_ep_%s_handle]", svc, ep->name);
	} else if (!c) {
		snprintf(buf, n, "[gen:client_pool]");
	} else if (c->kind == CALL_SERVICE && c->parent) {
		snprintf(buf, n, "[gen:svc_%s_ep_%s_call%d_%s]", c->from->spec->name,
			 c->parent->ep->name, c->step - c->parent->ep->first,
			 c->to->spec->name);
	} else if (c->from) {
		snprintf(buf, n, "[gen:svc_%s_background_call_%s]", c->from->spec->name,
			 c->to->spec->name);
	} else {
		snprintf(buf, n, "[gen:agent_call_%s]", c->to->spec->name);
	}
	(void)s;
}

static uint64_t fnv64(const char *p)
{
	uint64_t h = 14695981039346656037ull;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

/* The stack id of this event's call site in n's log (0 on error). */
static uint32_t site_stack(struct sim *s, struct noderun *n, struct end *e, uint8_t type)
{
	char name[4 * GEN_NAME_MAX + 64];
	int added;
	site_name(s, e, type, name, sizeof(name));
	uint64_t *id = tj_u64map_upsert(&n->site_ids, fnv64(name), &added);
	if (!id)
		goto nomem;
	uint64_t start = SITE_BASE + (added ? n->stacks.nstacks + 1 : *id) * SITE_SPAN;
	if (added) {
		uint64_t ip = start + SITE_IP_OFF;
		*id = n->stacks.nstacks + 1;
		if (tj_stacks_add(&n->stacks, (uint32_t)*id, &ip, 1, NULL, NULL, 0) < 0)
			goto nomem;
	}
	uint64_t *m = tj_u64map_upsert(&n->site_maps, (uint64_t)e->proc->pid << 32 | *id,
				       &added);
	if (!m)
		goto nomem;
	if (added) {
		struct tj_map map = { .pid = e->proc->pid, .start = start,
				      .end = start + SITE_SPAN, .path = name };
		if (tj_stacks_add_map(&n->stacks, &map) < 0)
			goto nomem;
	}
	return (uint32_t)*id;
nomem:
	tj_errf(s->err, TJ_E_NOMEM, "gen: out of memory for call-site stacks");
	s->failed = 1;
	return 0;
}

int emit_stacks(struct sim *s)
{
	for (int i = 0; i < s->spec->nnodes; i++) {
		struct noderun *n = &s->nodes[i];
		if (!n->w)
			continue;
		tj_stacks_sort(&n->stacks);
		if (tj_stacks_write(n->w, &n->stacks, s->err) < 0)
			return -1;
	}
	return 0;
}

int emit(struct sim *s, struct end *e, struct thr *t, uint8_t type,
	 int64_t bytes, int dir, uint32_t flags, int *new_msg)
{
	struct noderun *n = e->node;
	if (new_msg)
		*new_msg = 0;
	if (!n || s->failed || n->spec->uncaptured)
		return 0;
	uint64_t ts = sim_local_ts(n, s->now);
	if (dropped(s, n)) {
		n->lost++;
		n->lost_pending++;
		s->st->lost++;
		return 0;
	}
	if (n->lost_pending) {
		struct tj_event lost = { .ts_ns = ts, .node = n->id, .type = TJ_EV_LOST,
					 .bytes = (int64_t)n->lost_pending, .fd = TJ_FD_UNKNOWN };
		tj_evlog_add_drops(n->w, TJ_DROP_RINGBUF, n->lost_pending);
		n->lost_pending = 0;
		if (write_ev(s, n, &lost))
			return 0;
	}
	struct tj_event ev = {
		.ts_ns = ts, .sock = e->sock, .bytes = bytes, .node = n->id,
		.pid = e->proc->pid, .tid = t ? t->tid : TJ_TID_UNKNOWN, .fd = e->fd,
		.type = type, .family = e->family, .lport = e->lport,
		.rport = e->rport, .flags = flags,
	};
	memcpy(ev.laddr, e->laddr, 16);
	memcpy(ev.raddr, e->raddr, 16);
	if (s->opts->stacks && type != TJ_EV_CLOSE) {
		ev.stack_id = site_stack(s, n, e, type);
		if (s->failed)
			return 0;
	}
	if (type == TJ_EV_CONNECT || type == TJ_EV_ACCEPT) {
		e->role_seen = 1;
		if (type == TJ_EV_ACCEPT)
			n->listening[e->lport / 8] |= (uint8_t)(1u << (e->lport % 8));
	} else if (!e->role_seen && !e->is_client &&
		   (n->listening[e->lport / 8] & (1u << (e->lport % 8)))) {
		e->role_seen = 1; /* replay's guess from the listening port */
	}
	if (type == TJ_EV_SEND || type == TJ_EV_RECV)
		ev.offset = e->off[dir];
	if ((type == TJ_EV_SEND || type == TJ_EV_RECV) && bytes > 0) {
		/* a new message as replay sees one: the direction flipped, bytes
		 * before were lost (an offset gap), or the socket sat idle
		 * longer than replay's idle rule in one direction */
		if (e->obs_dir != 1 + dir || ev.offset != e->obs_next[dir] ||
		    s->now - e->obs_last > GEN_IDLE_NS) {
			e->obs_dir = (uint8_t)(1 + dir);
			e->obs_off[dir] = ev.offset;
			if (new_msg)
				*new_msg = 1;
		}
		e->obs_next[dir] = ev.offset + (uint64_t)bytes;
		e->obs_last = s->now;
	}
	if (write_ev(s, n, &ev))
		return 0;
	return 1;
}

/* c's request just started a message on its client socket. */
void emit_label(struct sim *s, struct call *c)
{
	struct end *e = &c->conn->cl;
	struct tj_edge edge = { .score = 1.0 };
	edge.child = (struct tj_msgkey){ .node = e->node->id, .sock = e->sock,
					 .offset = e->obs_off[TJ_DIR_OUT], .dir = TJ_DIR_OUT };
	struct job *p = c->parent;
	if (p && p->req_kept) {
		edge.has_parent = 1;
		edge.parent = (struct tj_msgkey){ .node = p->conn->sv.node->id,
						  .sock = p->conn->sv.sock,
						  .offset = p->req_obs_off,
						  .dir = TJ_DIR_IN };
	}
	if (tj_edges_writer_put(&s->labels, &edge, s->err) < 0)
		s->failed = 1;
	s->st->labels++;
}

/* Loss at the very end of a log: the marker has no later event to
 * precede, so it goes last (capture writes it when it drains). */
int emit_finish(struct sim *s)
{
	for (int i = 0; i < s->spec->nnodes; i++) {
		struct noderun *n = &s->nodes[i];
		if (!n->w || !n->lost_pending)
			continue;
		struct tj_event lost = { .ts_ns = sim_local_ts(n, s->now), .node = n->id,
					 .type = TJ_EV_LOST, .bytes = (int64_t)n->lost_pending,
					 .fd = TJ_FD_UNKNOWN };
		tj_evlog_add_drops(n->w, TJ_DROP_RINGBUF, n->lost_pending);
		n->lost_pending = 0;
		if (write_ev(s, n, &lost))
			return -1;
	}
	return s->failed ? -1 : 0;
}
