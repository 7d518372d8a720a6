/* The scenario spec parser.  Line oriented: one statement a line, "#"
 * starts a comment, names are declared before use (as in C), and every
 * refusal names FILE:LINE and the reason.  The grammar is documented in
 * datasets/gen/scenarios/README.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "gen.h"
#include "../../lib/event.h"

#define MAX_TOKENS 40

struct parser {
	struct gen_spec *s;
	const char *file;
	int line;
	struct tj_err *err;
	char buf[GEN_MAX_LINE + 1];
	char *tok[MAX_TOKENS];
	int ntok;
	int cur_ep;      /* endpoint being defined, -1 outside */
	int in_parallel; /* index of the open parallel step, -1 if none */
	int ep_line, par_line;
	int seen_entry, seen_scenario;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct parser *p, const char *fmt, ...)
{
	char why[TJ_ERRMSG_MAX - 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return tj_errf(p->err, TJ_E_FORMAT, "%s:%d: %s", p->file, p->line, why);
}

const char *gen_model_name(unsigned m)
{
	static const char *const names[] = { "thread", "pool", "async", "coroutine", "node",
					      "goroutine" };
	return m < GM__COUNT ? names[m] : "?";
}

const char *gen_load_name(unsigned l)
{
	static const char *const names[] = { "low", "medium", "high" };
	return l < GEN_LOAD__COUNT ? names[l] : "?";
}

/* Split the line into tokens; a "(...)" group stays in its token even if
 * it holds spaces, so "uniform(1ms, 3ms)" is one token. */
static int tokenize(struct parser *p)
{
	char *s = p->buf;
	p->ntok = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s || *s == '#')
			break;
		if (p->ntok == MAX_TOKENS)
			return fail(p, "too many words on one line (at most %d)", MAX_TOKENS);
		p->tok[p->ntok++] = s;
		int depth = 0;
		while (*s && (depth > 0 || (*s != ' ' && *s != '\t' && *s != '\r' && *s != '#'))) {
			if (*s == '(')
				depth++;
			else if (*s == ')' && --depth < 0)
				return fail(p, "unbalanced ')'");
			s++;
		}
		if (depth > 0)
			return fail(p, "unbalanced '('");
		if (*s == '#') {
			*s = '\0';
			break;
		}
		if (*s)
			*s++ = '\0';
	}
	return 0;
}

static int parse_name(struct parser *p, const char *t, char *out)
{
	size_t n = strlen(t);
	if (n == 0 || n >= GEN_NAME_MAX)
		return fail(p, "name '%.60s' must have 1 to %d characters", t, GEN_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return fail(p, "name '%.60s' may hold only letters, digits, '-', '_' and '.'", t);
	}
	memcpy(out, t, n + 1);
	return 0;
}

static int parse_num(struct parser *p, const char *what, const char *t,
		     enum gen_unit unit, double lo, double hi, double *out)
{
	int neg = 0;
	if (*t == '-' && lo < 0) {
		neg = 1;
		t++;
	}
	const char *why = gen_quantity_parse(t, unit, out);
	if (why)
		return fail(p, "%s '%s%.60s': %s", what, neg ? "-" : "", t, why);
	if (neg)
		*out = -*out;
	if (*out < lo || *out > hi)
		return fail(p, "%s %s%.60s is out of range [%g, %g]", what,
			    neg ? "-" : "", t, lo, hi);
	return 0;
}

static int parse_int(struct parser *p, const char *what, const char *t,
		     long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(t, &end, 10);
	if (end == t || *end || errno || *t == '+' || *t == ' ')
		return fail(p, "%s '%.60s' is not a whole number", what, t);
	if (v < lo || v > hi)
		return fail(p, "%s %ld is out of range [%ld, %ld]", what, v, lo, hi);
	*out = (int)v;
	return 0;
}

static int parse_dist(struct parser *p, const char *what, const char *t,
		      enum gen_unit unit, struct gen_dist *d)
{
	const char *why = gen_dist_parse(t, unit, d);
	if (why)
		return fail(p, "%s '%.80s': %s", what, t, why);
	return 0;
}

static int parse_prob(struct parser *p, const char *what, const char *t,
		      double lo, double hi, double *out)
{
	return parse_num(p, what, t, GEN_UNIT_NUMBER, lo, hi, out);
}

/* A node's extra wake-up latency: a duration distribution whose mean is
 * at most 100 ms (a larger one is a typo, not a scheduler). */
static int parse_wake(struct parser *p, const char *what, const char *t,
		      struct gen_dist *d)
{
	if (parse_dist(p, what, t, GEN_UNIT_TIME, d))
		return -TJ_E_FORMAT;
	if (gen_dist_mean(d) > 100e6)
		return fail(p, "%s '%.80s': mean above 100ms", what, t);
	return 0;
}

static int find_node(const struct gen_spec *s, uint32_t id)
{
	for (int i = 0; i < s->nnodes; i++)
		if (s->nodes[i].id == id)
			return i;
	return -1;
}

static int find_service(const struct gen_spec *s, const char *name)
{
	for (int i = 0; i < s->nservices; i++)
		if (strcmp(s->services[i].name, name) == 0)
			return i;
	return -1;
}

/* "svc" or "svc/endpoint", both declared earlier. */
static int parse_target(struct parser *p, const char *t, int *svc, int *ep)
{
	char name[GEN_NAME_MAX * 2 + 2];
	if (strlen(t) >= sizeof(name))
		return fail(p, "target '%.60s' is too long", t);
	strcpy(name, t);
	char *slash = strchr(name, '/');
	if (slash)
		*slash++ = '\0';
	*svc = find_service(p->s, name);
	if (*svc < 0)
		return fail(p, "unknown service '%s' (declare it with 'service' first)", name);
	*ep = -1;
	if (slash) {
		const struct gen_service *sv = &p->s->services[*svc];
		for (int i = 0; i < sv->neps; i++)
			if (strcmp(p->s->eps[sv->eps[i]].name, slash) == 0)
				*ep = sv->eps[i];
		if (*ep < 0)
			return fail(p, "service '%s' has no endpoint '%s' declared above", name, slash);
	}
	return 0;
}

static int parse_policy(struct parser *p, int *i, uint8_t *policy, int *k,
			double *idle_ns, uint8_t *idle_cap, uint8_t *chained,
			uint8_t *pipelined, int external)
{
	if (pipelined)
		*pipelined = 0;
	if (idle_ns)
		*idle_ns = 0;
	if (idle_cap)
		*idle_cap = 0;
	if (chained)
		*chained = 0;
	const char *t = p->tok[*i];
	*k = 1;
	if (strcmp(t, "new") == 0) {
		*policy = GP_NEW;
	} else if (strcmp(t, "shared") == 0 && !external) {
		*policy = GP_SHARED;
		if (chained && *i + 1 < p->ntok && strcmp(p->tok[*i + 1], "chained") == 0) {
			*chained = 1;
			*i += 1;
		} else if (pipelined && *i + 1 < p->ntok &&
			   strcmp(p->tok[*i + 1], "pipelined") == 0) {
			*pipelined = 1;
			*i += 1;
		}
	} else if (strcmp(t, external ? "keepalive" : "pool") == 0) {
		*policy = GP_POOL;
		if (*i + 1 >= p->ntok)
			return fail(p, "'%s' needs a size", t);
		if (parse_int(p, "pool size", p->tok[++*i], 1, 100000, k))
			return -TJ_E_FORMAT;
		for (;;) {
			if (idle_ns && *i + 2 < p->ntok && strcmp(p->tok[*i + 1], "idle") == 0) {
				if (parse_num(p, "idle", p->tok[*i + 2], GEN_UNIT_TIME, 1e6, 1e13, idle_ns))
					return -TJ_E_FORMAT;
				*i += 2;
			} else if (idle_cap && *i + 1 < p->ntok &&
				   strcmp(p->tok[*i + 1], "idle-cap") == 0) {
				if (*idle_cap)
					return fail(p, "'idle-cap' given twice");
				*idle_cap = 1;
				*i += 1;
			} else if (chained && *i + 1 < p->ntok &&
				   strcmp(p->tok[*i + 1], "chained") == 0) {
				if (*chained)
					return fail(p, "'chained' given twice");
				*chained = 1;
				*i += 1;
			} else {
				break;
			}
		}
	} else {
		return fail(p, external ? "connection policy '%s' unknown (new or keepalive K)"
					: "connection policy '%s' unknown (new, pool K or shared)", t);
	}
	(*i)++;
	return 0;
}

/* ---- statements ---- */

static int st_node(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (p->ntok < 2)
		return fail(p, "'node' needs an id");
	if (s->nnodes == GEN_MAX_NODES)
		return fail(p, "too many nodes (at most %d)", GEN_MAX_NODES);
	struct gen_node_spec *n = &s->nodes[s->nnodes];
	memset(n, 0, sizeof(*n));
	int id;
	if (parse_int(p, "node id", p->tok[1], 1, 65535, &id))
		return -TJ_E_FORMAT;
	if (find_node(s, (uint32_t)id) >= 0)
		return fail(p, "node %d declared twice", id);
	n->id = (uint32_t)id;
	n->line = p->line;
	snprintf(n->name, sizeof(n->name), "node-%d", id);
	n->family = 2; /* AF_INET: 10.0.X.Y */
	n->addr[0] = 10;
	n->addr[2] = (uint8_t)(id >> 8);
	n->addr[3] = (uint8_t)id;
	n->burst = 64;
	int tail = 0, share = 0;
	for (int i = 2; i < p->ntok; i += 2) {
		const char *k = p->tok[i];
		if (i + 1 >= p->ntok)
			return fail(p, "'%s' needs a value", k);
		const char *v = p->tok[i + 1];
		if (strcmp(k, "name") == 0) {
			if (parse_name(p, v, n->name))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "addr") == 0) {
			unsigned fam;
			if (tj_addr_parse(v, &fam, n->addr) || fam == 0)
				return fail(p, "'%.60s' is not an IPv4 or IPv6 address", v);
			n->family = (uint8_t)fam;
		} else if (strcmp(k, "clock-offset") == 0) {
			if (parse_num(p, "clock-offset", v, GEN_UNIT_TIME, -1e13, 1e13, &n->clock_offset_ns))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "drift") == 0) {
			size_t l = strlen(v);
			char num[64];
			if (l < 4 || l >= sizeof(num) || strcmp(v + l - 3, "ppm") != 0)
				return fail(p, "drift '%.60s' must be given in ppm, like 20ppm", v);
			memcpy(num, v, l - 3);
			num[l - 3] = '\0';
			if (parse_num(p, "drift", num, GEN_UNIT_NUMBER, -1000, 1000, &n->drift_ppm))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "loss") == 0) {
			if (parse_prob(p, "loss", v, 0, 0.5, &n->loss))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "burst") == 0) {
			if (parse_num(p, "burst", v, GEN_UNIT_NUMBER, 1, 1e6, &n->burst))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "wake") == 0) {
			if (parse_wake(p, k, v, &n->wake))
				return -TJ_E_FORMAT;
			n->has_wake = 1;
		} else if (strcmp(k, "wake-tail") == 0) {
			if (parse_wake(p, k, v, &n->wake_tail))
				return -TJ_E_FORMAT;
			n->has_wake = 1;
			tail = 1;
		} else if (strcmp(k, "captured") == 0) {
			if (strcmp(v, "yes") && strcmp(v, "no"))
				return fail(p, "captured '%.60s': yes or no", v);
			n->uncaptured = strcmp(v, "no") == 0;
		} else if (strcmp(k, "wake-tail-share") == 0) {
			if (parse_prob(p, "wake-tail-share", v, 0, 1, &n->wake_tail_p))
				return -TJ_E_FORMAT;
			share = 1;
		} else {
			return fail(p, "unknown node setting '%s' (name, addr, clock-offset, drift, loss, burst, "
				    "wake, wake-tail, wake-tail-share, captured)", k);
		}
	}
	if (share && !tail)
		return fail(p, "'wake-tail-share' without 'wake-tail': a share of what?");
	if (tail && !share)
		n->wake_tail_p = 0.02;
	if (s->nnodes && s->nodes[0].family != n->family)
		return fail(p, "node %d is %s but node %u is %s: one address family per scenario",
			    id, n->family == 10 ? "IPv6" : "IPv4", s->nodes[0].id,
			    s->nodes[0].family == 10 ? "IPv6" : "IPv4");
	for (int i = 0; i < s->nnodes; i++)
		if (s->nodes[i].family == n->family && !memcmp(s->nodes[i].addr, n->addr, 16))
			return fail(p, "node %d has the same address as node %u (line %d)",
				    id, s->nodes[i].id, s->nodes[i].line);
	s->nnodes++;
	return 0;
}

static int st_service(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (p->ntok < 2)
		return fail(p, "'service' needs a name");
	if (s->nservices == GEN_MAX_SERVICES)
		return fail(p, "too many services (at most %d)", GEN_MAX_SERVICES);
	struct gen_service *sv = &s->services[s->nservices];
	memset(sv, 0, sizeof(*sv));
	if (parse_name(p, p->tok[1], sv->name))
		return -TJ_E_FORMAT;
	if (find_service(s, sv->name) >= 0)
		return fail(p, "service '%s' declared twice", sv->name);
	sv->line = p->line;
	sv->node = -1;
	sv->model = GM_THREAD;
	sv->threads = -1;
	sv->io_threads = 1;
	sv->executor = 8;
	sv->read_buf = 8192;
	sv->write_chunk = 16384;
	sv->write_split = 0.3;
	int port = 0;
	for (int i = 2; i < p->ntok; i += 2) {
		const char *k = p->tok[i];
		if (i + 1 >= p->ntok)
			return fail(p, "'%s' needs a value", k);
		const char *v = p->tok[i + 1];
		double d;
		if (strcmp(k, "node") == 0) {
			int id;
			if (parse_int(p, "node id", v, 1, 65535, &id))
				return -TJ_E_FORMAT;
			sv->node = find_node(s, (uint32_t)id);
			if (sv->node < 0)
				return fail(p, "unknown node %d (declare it with 'node' first)", id);
		} else if (strcmp(k, "port") == 0) {
			if (parse_int(p, "port", v, 1, 65535, &port))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "model") == 0) {
			int m = -1;
			for (int j = 0; j < GM__COUNT; j++)
				if (strcmp(v, gen_model_name((unsigned)j)) == 0)
					m = j;
			if (m < 0)
				return fail(p, "unknown model '%.60s' (thread, pool, async, coroutine, node or goroutine)", v);
			sv->model = (uint8_t)m;
		} else if (strcmp(k, "threads") == 0) {
			if (parse_int(p, "threads", v, 1, GEN_MAX_THREADS, &sv->threads))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "io-threads") == 0) {
			if (parse_int(p, "io-threads", v, 1, 64, &sv->io_threads))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "executor") == 0) {
			if (parse_int(p, "executor", v, 1, GEN_MAX_THREADS, &sv->executor))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "read-buffer") == 0) {
			if (parse_num(p, "read-buffer", v, GEN_UNIT_SIZE, 64, 1 << 24, &d))
				return -TJ_E_FORMAT;
			sv->read_buf = (uint32_t)d;
		} else if (strcmp(k, "write-chunk") == 0) {
			if (parse_num(p, "write-chunk", v, GEN_UNIT_SIZE, 64, 1 << 24, &d))
				return -TJ_E_FORMAT;
			sv->write_chunk = (uint32_t)d;
		} else if (strcmp(k, "write-split") == 0) {
			if (parse_prob(p, "write-split", v, 0, 1, &sv->write_split))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "callback-cost") == 0) {
			const char *why = gen_dist_parse(v, GEN_UNIT_TIME, &sv->cb_cost);
			if (why)
				return fail(p, "callback-cost '%.60s': %s", v, why);
			sv->has_cb_cost = 1;
		} else if (strcmp(k, "stall") == 0 || strcmp(k, "stall-every") == 0) {
			struct gen_dist *dist = k[5] ? &sv->stall_every : &sv->stall;
			const char *why = gen_dist_parse(v, GEN_UNIT_TIME, dist);
			if (why)
				return fail(p, "%s '%.60s': %s", k, v, why);
			sv->has_stall |= k[5] ? 2 : 1;
		} else {
			return fail(p, "unknown service setting '%s' (node, port, model, threads, io-threads, executor, read-buffer, write-chunk, write-split, stall, stall-every, callback-cost)", k);
		}
	}
	if (sv->node < 0)
		return fail(p, "service '%s' needs 'node ID'", sv->name);
	if (port == 0)
		return fail(p, "service '%s' needs 'port P'", sv->name);
	sv->port = (uint16_t)port;
	if (sv->has_stall && sv->has_stall != 3)
		return fail(p, "'stall' and 'stall-every' go together");
	if (sv->has_stall && sv->model != GM_ASYNC && sv->model != GM_NODE)
		return fail(p, "'stall' applies to an event loop (model async or node)");
	if (sv->has_stall && gen_dist_mean(&sv->stall_every) < 1e3)
		return fail(p, "'stall-every' must average at least 1us");
	sv->has_stall = sv->has_stall != 0;
	if (sv->has_cb_cost && sv->model != GM_NODE)
		return fail(p, "'callback-cost' applies to model node");
	if (sv->threads < 0)
		sv->threads = sv->model == GM_POOL ? 8 :
			      sv->model == GM_ASYNC || sv->model == GM_NODE ? 1 : 4;
	else if (sv->model == GM_THREAD)
		return fail(p, "'threads' does not apply to model thread (one thread per connection)");
	for (int i = 0; i < s->nservices; i++)
		if (s->services[i].node == sv->node && s->services[i].port == sv->port)
			return fail(p, "port %d on node %u is taken by service '%s' (line %d)",
				    port, s->nodes[sv->node].id, s->services[i].name, s->services[i].line);
	s->nservices++;
	return 0;
}

static int st_endpoint(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (p->ntok < 3)
		return fail(p, "'endpoint' needs a service and a name");
	if (s->neps == GEN_MAX_ENDPOINTS)
		return fail(p, "too many endpoints (at most %d)", GEN_MAX_ENDPOINTS);
	int svc = find_service(s, p->tok[1]);
	if (svc < 0)
		return fail(p, "unknown service '%.60s' (declare it with 'service' first)", p->tok[1]);
	struct gen_service *sv = &s->services[svc];
	if (sv->neps == (int)(sizeof(sv->eps) / sizeof(sv->eps[0])))
		return fail(p, "service '%s' has too many endpoints", sv->name);
	struct gen_endpoint *e = &s->eps[s->neps];
	memset(e, 0, sizeof(*e));
	if (parse_name(p, p->tok[2], e->name))
		return -TJ_E_FORMAT;
	for (int i = 0; i < sv->neps; i++)
		if (strcmp(s->eps[sv->eps[i]].name, e->name) == 0)
			return fail(p, "service '%s' already has an endpoint '%s' (line %d)",
				    sv->name, e->name, s->eps[sv->eps[i]].line);
	e->svc = svc;
	e->weight = 1;
	e->line = p->line;
	e->req = (struct gen_dist){ GD_LOGNORMAL, 400, 0.4 };
	e->resp = (struct gen_dist){ GD_LOGNORMAL, 2048, 0.8 };
	for (int i = 3; i < p->ntok; i += 2) {
		const char *k = p->tok[i];
		if (i + 1 >= p->ntok)
			return fail(p, "'%s' needs a value", k);
		const char *v = p->tok[i + 1];
		if (strcmp(k, "weight") == 0) {
			if (parse_num(p, "weight", v, GEN_UNIT_NUMBER, 1e-6, 1e6, &e->weight))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "request") == 0) {
			if (parse_dist(p, "request size", v, GEN_UNIT_SIZE, &e->req))
				return -TJ_E_FORMAT;
		} else if (strcmp(k, "response") == 0) {
			if (parse_dist(p, "response size", v, GEN_UNIT_SIZE, &e->resp))
				return -TJ_E_FORMAT;
		} else {
			return fail(p, "unknown endpoint setting '%s' (weight, request, response)", k);
		}
	}
	e->first = s->nsteps;
	p->cur_ep = s->neps;
	p->ep_line = p->line;
	sv->eps[sv->neps++] = s->neps;
	sv->ep_weight += e->weight;
	s->neps++;
	return 0;
}

static struct gen_step *new_step(struct parser *p, uint8_t kind)
{
	struct gen_spec *s = p->s;
	if (s->nsteps == GEN_MAX_STEPS) {
		fail(p, "too many steps (at most %d)", GEN_MAX_STEPS);
		return NULL;
	}
	struct gen_step *st = &s->steps[s->nsteps++];
	memset(st, 0, sizeof(*st));
	st->kind = kind;
	st->line = p->line;
	st->svc = st->ep = -1;
	st->prob = 1;
	if (p->in_parallel >= 0)
		s->steps[p->in_parallel].n++;
	else
		s->eps[p->cur_ep].n++;
	return st;
}

static int st_step(struct parser *p)
{
	const char *w = p->tok[0];
	if (p->cur_ep < 0)
		return fail(p, "'%s' outside an endpoint", w);
	if (strcmp(w, "work") == 0 || strcmp(w, "wait") == 0) {
		if (p->in_parallel >= 0)
			return fail(p, "only 'call' may stand inside 'parallel'");
		if (p->ntok != 2)
			return fail(p, "'%s' takes one distribution", w);
		struct gen_step *st = new_step(p, w[1] == 'o' ? GS_WORK : GS_WAIT);
		if (!st)
			return -TJ_E_FORMAT;
		return parse_dist(p, w, p->tok[1], GEN_UNIT_TIME, &st->work);
	}
	if (strcmp(w, "call") == 0) {
		if (p->ntok != 2 && p->ntok != 4)
			return fail(p, "'call' takes a target and optionally 'prob P'");
		int svc, ep;
		if (parse_target(p, p->tok[1], &svc, &ep))
			return -TJ_E_FORMAT;
		struct gen_step *st = new_step(p, GS_CALL);
		if (!st)
			return -TJ_E_FORMAT;
		st->svc = svc;
		st->ep = ep;
		if (p->ntok == 4) {
			if (strcmp(p->tok[2], "prob") != 0)
				return fail(p, "unknown call setting '%s' (prob)", p->tok[2]);
			if (parse_prob(p, "prob", p->tok[3], 1e-9, 1, &st->prob))
				return -TJ_E_FORMAT;
		}
		return 0;
	}
	if (strcmp(w, "parallel") == 0) {
		if (p->in_parallel >= 0)
			return fail(p, "'parallel' cannot nest (open since line %d)", p->par_line);
		if (p->ntok > 2 || (p->ntok == 2 && strcmp(p->tok[1], "inline-first") != 0))
			return fail(p, "'parallel' takes nothing on its line but 'inline-first'");
		struct gen_step *st = new_step(p, GS_PARALLEL);
		if (!st)
			return -TJ_E_FORMAT;
		st->inline_first = p->ntok == 2;
		st->first = p->s->nsteps;
		st->n = 0;
		p->in_parallel = (int)(st - p->s->steps);
		p->par_line = p->line;
		return 0;
	}
	/* "end" */
	if (p->ntok != 1)
		return fail(p, "'end' takes nothing on its line");
	if (p->in_parallel >= 0) {
		if (p->s->steps[p->in_parallel].n == 0)
			return fail(p, "'parallel' (line %d) holds no call", p->par_line);
		p->in_parallel = -1;
	} else {
		p->cur_ep = -1;
	}
	return 0;
}

static int st_entry(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (p->seen_entry)
		return fail(p, "'entry' given twice");
	if (p->ntok < 2)
		return fail(p, "'entry' needs a service");
	if (parse_target(p, p->tok[1], &s->entry_svc, &s->entry_ep))
		return -TJ_E_FORMAT;
	for (int i = 2; i < p->ntok;) {
		if (strcmp(p->tok[i], "conn") == 0 && i + 1 < p->ntok) {
			i++;
			if (parse_policy(p, &i, &s->entry_policy, &s->entry_k, &s->entry_idle_ns, NULL, NULL, NULL, 1))
				return -TJ_E_FORMAT;
		} else if (strcmp(p->tok[i], "clients") == 0 && i + 1 < p->ntok) {
			if (parse_int(p, "clients", p->tok[i + 1], 1, 65536, &s->entry_clients))
				return -TJ_E_FORMAT;
			i += 2;
		} else {
			return fail(p, "unknown entry setting '%s' (conn new|keepalive K, clients N)", p->tok[i]);
		}
	}
	p->seen_entry = p->line;
	return 0;
}

static int st_conn(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (p->ntok < 4)
		return fail(p, "'conn' needs FROM TO and a policy (new, pool K, shared)");
	if (s->npolicies == GEN_MAX_POLICIES)
		return fail(p, "too many conn lines (at most %d)", GEN_MAX_POLICIES);
	struct gen_policy_spec *c = &s->policies[s->npolicies];
	c->from = find_service(s, p->tok[1]);
	c->to = find_service(s, p->tok[2]);
	if (c->from < 0)
		return fail(p, "unknown service '%.60s'", p->tok[1]);
	if (c->to < 0)
		return fail(p, "unknown service '%.60s'", p->tok[2]);
	for (int i = 0; i < s->npolicies; i++)
		if (s->policies[i].from == c->from && s->policies[i].to == c->to)
			return fail(p, "conn %s %s already set (line %d)", p->tok[1],
				    p->tok[2], s->policies[i].line);
	int i = 3;
	if (parse_policy(p, &i, &c->policy, &c->k, &c->idle_ns, &c->idle_cap, &c->chained,
			 &c->pipelined, 0))
		return -TJ_E_FORMAT;
	if (i != p->ntok)
		return fail(p, "unexpected '%s' after the policy", p->tok[i]);
	int m = s->services[c->from].model;
	if (c->pipelined && (m == GM_THREAD || m == GM_POOL))
		return fail(p, "'pipelined' needs an async or coroutine caller (or goroutine; '%s' blocks "
			       "on each reply, so it never has two calls outstanding)", p->tok[1]);
	if (c->pipelined && m == GM_NODE)
		return fail(p, "'pipelined' does not apply to a node caller ('%s': Node's "
			       "http.Agent writes one request per socket at a time)", p->tok[1]);
	c->line = p->line;
	s->npolicies++;
	return 0;
}

static int st_background(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (s->nbg == GEN_MAX_BACKGROUND)
		return fail(p, "too many background lines (at most %d)", GEN_MAX_BACKGROUND);
	if (p->ntok < 2)
		return fail(p, "'background' needs a name");
	struct gen_background *b = &s->bg[s->nbg];
	memset(b, 0, sizeof(*b));
	if (parse_name(p, p->tok[1], b->name))
		return -TJ_E_FORMAT;
	b->line = p->line;
	b->svc = -1;
	b->where = 255;
	b->k = 1;
	int have_every = 0;
	for (int i = 2; i < p->ntok;) {
		const char *k = p->tok[i];
		if (i + 1 >= p->ntok && strcmp(k, "external") != 0)
			return fail(p, "'%s' needs a value", k);
		if (strcmp(k, "on") == 0) {
			const char *v = p->tok[i + 1];
			if (strcmp(v, "external") == 0) {
				b->where = GB_EXTERNAL;
				i += 2;
			} else if (strcmp(v, "node") == 0) {
				int id;
				if (i + 2 >= p->ntok)
					return fail(p, "'on node' needs an id");
				if (parse_int(p, "node id", p->tok[i + 2], 1, 65535, &id))
					return -TJ_E_FORMAT;
				b->owner = find_node(s, (uint32_t)id);
				if (b->owner < 0)
					return fail(p, "unknown node %d", id);
				b->where = GB_NODE;
				i += 3;
			} else {
				b->owner = find_service(s, v);
				if (b->owner < 0)
					return fail(p, "unknown service '%.60s' after 'on' (a service, 'node ID' or 'external')", v);
				b->where = GB_SERVICE;
				i += 2;
			}
		} else if (strcmp(k, "target") == 0) {
			if (parse_target(p, p->tok[i + 1], &b->svc, &b->ep))
				return -TJ_E_FORMAT;
			i += 2;
		} else if (strcmp(k, "every") == 0) {
			if (parse_dist(p, "every", p->tok[i + 1], GEN_UNIT_TIME, &b->every))
				return -TJ_E_FORMAT;
			if (gen_dist_mean(&b->every) < 1e5)
				return fail(p, "'every' must average at least 100us");
			have_every = 1;
			i += 2;
		} else if (strcmp(k, "conn") == 0) {
			i++;
			if (parse_policy(p, &i, &b->policy, &b->k, NULL, NULL, NULL, NULL, 0))
				return -TJ_E_FORMAT;
		} else {
			return fail(p, "unknown background setting '%s' (on, target, every, conn)", k);
		}
	}
	if (b->where == 255)
		return fail(p, "background '%s' needs 'on SERVICE', 'on node ID' or 'on external'", b->name);
	if (b->svc < 0)
		return fail(p, "background '%s' needs 'target SERVICE[/ENDPOINT]'", b->name);
	if (!have_every)
		return fail(p, "background '%s' needs 'every DIST'", b->name);
	if (b->where == GB_EXTERNAL && b->policy == GP_SHARED)
		return fail(p, "external background clients use 'new' or 'pool K'");
	s->nbg++;
	return 0;
}

static int st_network(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (p->ntok != 3)
		return fail(p, "'network' takes a setting and a value (latency, local, bandwidth)");
	const char *k = p->tok[1], *v = p->tok[2];
	if (strcmp(k, "latency") == 0)
		return parse_dist(p, "latency", v, GEN_UNIT_TIME, &s->lat_remote);
	if (strcmp(k, "local") == 0)
		return parse_dist(p, "local latency", v, GEN_UNIT_TIME, &s->lat_local);
	if (strcmp(k, "bandwidth") == 0) {
		size_t l = strlen(v);
		char num[64];
		if (l < 5 || l >= sizeof(num) || strcmp(v + l - 4, "Gbit") != 0)
			return fail(p, "bandwidth '%.60s' must be given in Gbit, like 10Gbit", v);
		memcpy(num, v, l - 4);
		num[l - 4] = '\0';
		double g;
		if (parse_num(p, "bandwidth", num, GEN_UNIT_NUMBER, 0.001, 1000, &g))
			return -TJ_E_FORMAT;
		s->bandwidth = g / 8; /* Gbit/s = bits per ns; 8 bits a byte */
		return 0;
	}
	return fail(p, "unknown network setting '%s' (latency, local, bandwidth)", k);
}

static int statement(struct parser *p)
{
	struct gen_spec *s = p->s;
	const char *w = p->tok[0];
	if (p->cur_ep >= 0 && strcmp(w, "work") && strcmp(w, "wait") && strcmp(w, "call") &&
	    strcmp(w, "parallel") && strcmp(w, "end"))
		return fail(p, "'%s' inside endpoint '%s' (line %d): close it with 'end' first",
			    w, s->eps[p->cur_ep].name, p->ep_line);
	if (!strcmp(w, "work") || !strcmp(w, "wait") || !strcmp(w, "call") ||
	    !strcmp(w, "parallel") || !strcmp(w, "end"))
		return st_step(p);
	if (strcmp(w, "scenario") == 0) {
		if (p->ntok != 2)
			return fail(p, "'scenario' takes one name");
		if (p->seen_scenario)
			return fail(p, "'scenario' given twice");
		p->seen_scenario = 1;
		return parse_name(p, p->tok[1], s->name);
	}
	if (strcmp(w, "describe") == 0) {
		if (p->ntok < 2)
			return fail(p, "'describe' needs text");
		s->describe[0] = '\0';
		for (int i = 1; i < p->ntok; i++) {
			size_t have = strlen(s->describe);
			snprintf(s->describe + have, sizeof(s->describe) - have, "%s%s",
				 i > 1 ? " " : "", p->tok[i]);
		}
		return 0;
	}
	if (strcmp(w, "requests") == 0) {
		int n;
		if (p->ntok != 2)
			return fail(p, "'requests' takes one number");
		if (parse_int(p, "requests", p->tok[1], 1, GEN_REQUESTS_MAX, &n))
			return -TJ_E_FORMAT;
		s->requests = (uint64_t)n;
		return 0;
	}
	if (strcmp(w, "load") == 0) {
		if (p->ntok != 3)
			return fail(p, "'load' takes a level (low, medium, high) and a rate");
		for (int l = 0; l < GEN_LOAD__COUNT; l++)
			if (strcmp(p->tok[1], gen_load_name((unsigned)l)) == 0)
				return parse_num(p, "load", p->tok[2], GEN_UNIT_NUMBER,
						 0.001, 1e7, &s->load[l]);
		return fail(p, "unknown load level '%.60s' (low, medium, high)", p->tok[1]);
	}
	if (strcmp(w, "arrival") == 0) {
		if (p->ntok < 2)
			return fail(p, "'arrival' needs poisson, uniform or closed");
		const char *v = p->tok[1];
		if (strcmp(v, "poisson") == 0 && p->ntok == 2)
			s->arrival = GA_POISSON;
		else if (strcmp(v, "uniform") == 0 && p->ntok == 2)
			s->arrival = GA_UNIFORM;
		else if (strcmp(v, "closed") == 0) {
			s->arrival = GA_CLOSED;
			if (p->ntok == 4 && strcmp(p->tok[2], "think") == 0)
				return parse_dist(p, "think", p->tok[3], GEN_UNIT_TIME, &s->think);
			if (p->ntok != 2)
				return fail(p, "'arrival closed' takes optionally 'think DIST'");
		} else
			return fail(p, "'arrival' is poisson, uniform or closed [think DIST]");
		return 0;
	}
	if (strcmp(w, "network") == 0)
		return st_network(p);
	if (strcmp(w, "node") == 0)
		return st_node(p);
	if (strcmp(w, "service") == 0)
		return st_service(p);
	if (strcmp(w, "endpoint") == 0)
		return st_endpoint(p);
	if (strcmp(w, "entry") == 0)
		return st_entry(p);
	if (strcmp(w, "conn") == 0)
		return st_conn(p);
	if (strcmp(w, "background") == 0)
		return st_background(p);
	return fail(p, "unknown statement '%.60s'", w);
}

/* Calls may not loop back: a request would never end.  Depth-first over
 * services, remembering the line of the call that closes a cycle. */
static int check_calls(struct parser *p, int svc, int depth, int *onstack)
{
	const struct gen_spec *s = p->s;
	const struct gen_service *sv = &s->services[svc];
	onstack[svc] = 1;
	for (int e = 0; e < sv->neps; e++) {
		const struct gen_endpoint *ep = &s->eps[sv->eps[e]];
		for (int i = ep->first; i < ep->first + ep->n; i++) {
			/* steps of parallel blocks follow their parent */
			const struct gen_step *st = &s->steps[i];
			if (st->kind != GS_CALL)
				continue;
			p->line = st->line;
			if (s->services[st->svc].neps == 0)
				return fail(p, "service '%s' is called but has no endpoint",
					    s->services[st->svc].name);
			if (onstack[st->svc])
				return fail(p, "call to '%s' makes a cycle (a request would never end)",
					    s->services[st->svc].name);
			if (depth + 1 >= GEN_MAX_DEPTH)
				return fail(p, "call chain deeper than %d", GEN_MAX_DEPTH);
			if (check_calls(p, st->svc, depth + 1, onstack))
				return -TJ_E_FORMAT;
		}
	}
	onstack[svc] = 0;
	return 0;
}

static int finish(struct parser *p)
{
	struct gen_spec *s = p->s;
	if (p->in_parallel >= 0) {
		p->line = p->par_line;
		return fail(p, "'parallel' is never closed with 'end'");
	}
	if (p->cur_ep >= 0) {
		p->line = p->ep_line;
		return fail(p, "endpoint '%s' is never closed with 'end'", s->eps[p->cur_ep].name);
	}
	/* parsing counted an endpoint's top-level steps; the calls of its
	 * parallel blocks follow them inline, so count every step */
	for (int e = 0; e < s->neps; e++) {
		struct gen_endpoint *ep = &s->eps[e];
		int end = ep->first;
		for (int k = 0; k < ep->n; k++) {
			const struct gen_step *st = &s->steps[end];
			end += 1 + (st->kind == GS_PARALLEL ? st->n : 0);
		}
		ep->n = end - ep->first; /* total steps, parallel calls included */
	}
	if (s->nnodes == 0) {
		p->line = 1;
		return fail(p, "no 'node' declared");
	}
	if (s->nservices == 0) {
		p->line = 1;
		return fail(p, "no 'service' declared");
	}
	if (!p->seen_entry) {
		p->line = 1;
		return fail(p, "no 'entry SERVICE' line: where do root requests arrive?");
	}
	p->line = p->seen_entry;
	if (s->services[s->entry_svc].neps == 0)
		return fail(p, "entry service '%s' has no endpoint", s->services[s->entry_svc].name);
	if (s->nodes[s->services[s->entry_svc].node].uncaptured)
		return fail(p, "entry service '%s' is on node %u, which is not captured: root "
			    "requests must arrive where a log sees them",
			    s->services[s->entry_svc].name, s->nodes[s->services[s->entry_svc].node].id);
	for (int b = 0; b < s->nbg; b++) {
		p->line = s->bg[b].line;
		if (s->services[s->bg[b].svc].neps == 0)
			return fail(p, "background target '%s' has no endpoint",
				    s->services[s->bg[b].svc].name);
	}
	int onstack[GEN_MAX_SERVICES] = { 0 };
	for (int i = 0; i < s->nservices; i++)
		if (check_calls(p, i, 0, onstack))
			return -TJ_E_FORMAT;
	for (int l = 1; l < GEN_LOAD__COUNT; l++) {
		if (s->load[l] < s->load[l - 1]) {
			p->line = 1;
			return fail(p, "load %s (%g) is below load %s (%g)", gen_load_name((unsigned)l),
				    s->load[l], gen_load_name((unsigned)l - 1), s->load[l - 1]);
		}
	}
	return 0;
}

int gen_spec_parse(struct gen_spec *s, const char *name, const char *text,
		   size_t len, struct tj_err *err)
{
	struct parser p = { .s = s, .file = name, .err = err, .cur_ep = -1,
			    .in_parallel = -1 };
	memset(s, 0, sizeof(*s));
	snprintf(s->file, sizeof(s->file), "%s", name);
	/* default name: the file's base name without ".scn" */
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	size_t bl = strcspn(base, ".");
	if (bl >= GEN_NAME_MAX)
		bl = GEN_NAME_MAX - 1;
	memcpy(s->name, base, bl);
	s->name[bl] = '\0';
	s->requests = 2000;
	s->load[GEN_LOAD_LOW] = 20;
	s->load[GEN_LOAD_MEDIUM] = 100;
	s->load[GEN_LOAD_HIGH] = 400;
	s->arrival = GA_POISSON;
	s->think = (struct gen_dist){ GD_EXP, 10e6, 0 };
	s->lat_remote = (struct gen_dist){ GD_LOGNORMAL, 150e3, 0.3 };
	s->lat_local = (struct gen_dist){ GD_UNIFORM, 10e3, 30e3 };
	s->bandwidth = 10.0 / 8;
	s->entry_policy = GP_NEW;
	s->entry_k = 1;
	s->entry_clients = 16;
	size_t pos = 0;
	while (pos < len) {
		p.line++;
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		size_t ll = end - pos;
		if (ll > GEN_MAX_LINE)
			return fail(&p, "line longer than %d characters", GEN_MAX_LINE);
		memcpy(p.buf, text + pos, ll);
		p.buf[ll] = '\0';
		if (memchr(p.buf, '\0', ll))
			return fail(&p, "NUL byte in the spec");
		pos = end + 1;
		int rc = tokenize(&p);
		if (rc)
			return rc;
		if (p.ntok == 0)
			continue;
		rc = statement(&p);
		if (rc)
			return rc;
	}
	p.line++;
	return finish(&p);
}

int gen_spec_load(struct gen_spec *s, const char *path, char **text, size_t *text_len,
		  struct tj_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	}
	size_t n;
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			if (cap >= (1u << 24)) {
				free(buf);
				fclose(f);
				return tj_errf(err, TJ_E_LIMIT, "%s: larger than 16 MiB: not a scenario spec", path);
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fclose(f);
				return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
			}
			buf = nb;
			cap *= 2;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return tj_errf(err, TJ_E_IO, "%s: read error", path);
	}
	int rc = gen_spec_parse(s, path, buf, len, err);
	if (rc == 0 && text) {
		*text = buf;
		*text_len = len;
	} else {
		free(buf);
	}
	return rc;
}

const struct gen_policy_spec *gen_spec_policy(const struct gen_spec *s,
					      int from, int to)
{
	for (int i = 0; i < s->npolicies; i++)
		if (s->policies[i].from == from && s->policies[i].to == to)
			return &s->policies[i];
	return NULL;
}
