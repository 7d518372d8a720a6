/* tracejoin label: a capture with payload prefixes -> a labeled dataset
 * whose logs carry no payload (label.h has the span-id rule). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "label.h"
#include "../../lib/edges.h"
#include "../../lib/outfile.h"
#include "../../lib/manifest.h"
#include "../../lib/msgkey.h"
#include "../../lib/u64map.h"
#include "../../replay/replay.h"
#include "../../lib/util.h"

/* ---- trace context ---- */

uint64_t tj_tp_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	return tj_hash64(x);
}

uint64_t tj_tp_server_span(uint64_t trace_hi, uint64_t trace_lo, uint64_t parent)
{
	uint64_t s = tj_tp_mix(tj_tp_mix(trace_hi ^ 0x5352565253504e31ULL) ^
			       tj_tp_mix(trace_lo) ^ parent);
	return s ? s : 1;
}

uint64_t tj_tp_call_span(uint64_t server_span, unsigned i)
{
	uint64_t c = tj_tp_mix(server_span ^ tj_tp_mix(0x43414c4c00000000ULL + i));
	return c ? c : 1;
}

char *tj_tp_format(const struct tj_traceparent *tp, char buf[TJ_TP_STRLEN])
{
	snprintf(buf, TJ_TP_STRLEN, "00-%016" PRIx64 "%016" PRIx64 "-%016" PRIx64 "-%02x",
		 tp->trace_hi, tp->trace_lo, tp->span, tp->flags);
	return buf;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int parse_hex64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		int h = hexval((unsigned char)s[i]);
		if (h < 0)
			return -1;
		x = x << 4 | (uint64_t)h;
	}
	*v = x;
	return 0;
}

int tj_tp_parse_value(const char *t, size_t len, struct tj_traceparent *tp)
{
	uint64_t ver, fl;
	if (len < 55 || t[2] != '-' || t[35] != '-' || t[52] != '-')
		return -1;
	if (parse_hex64(t, 2, &ver) || ver != 0 || parse_hex64(t + 3, 16, &tp->trace_hi) ||
	    parse_hex64(t + 19, 16, &tp->trace_lo) || parse_hex64(t + 36, 16, &tp->span) ||
	    parse_hex64(t + 53, 2, &fl))
		return -1;
	if (len > 55 && t[55] != '\r' && t[55] != '\n' && t[55] != ' ' && t[55] != '\t')
		return -1;
	if ((tp->trace_hi | tp->trace_lo) == 0 || tp->span == 0)
		return -1;
	tp->flags = (uint8_t)fl;
	return 0;
}

int tj_tp_find(const uint8_t *buf, size_t len, struct tj_traceparent *tp)
{
	static const char name[] = "traceparent:";
	const size_t nl = sizeof(name) - 1;
	size_t i = 0;
	/* skip the start line: headers begin after the first LF */
	while (i < len && buf[i] != '\n')
		i++;
	while (++i < len) {
		if (buf[i] == '\r' || buf[i] == '\n')
			return 0; /* blank line: end of headers */
		if (len - i >= nl && strncasecmp((const char *)buf + i, name, nl) == 0) {
			size_t v = i + nl;
			while (v < len && (buf[v] == ' ' || buf[v] == '\t'))
				v++;
			if (len - v < 55)
				return 0; /* cut short by the prefix: not visible */
			return tj_tp_parse_value((const char *)buf + v, len - v, tp) ? -1 : 1;
		}
		while (i < len && buf[i] != '\n')
			i++;
	}
	return 0;
}

/* ---- labeling ---- */

struct conn { /* a message's connection, to tell a call from its own far end */
	uint8_t family;
	uint16_t lport, rport;
	uint8_t laddr[16], raddr[16];
};

struct sreq { /* a server-side request */
	struct tj_msgkey key;
	struct tj_traceparent tp;
	struct conn conn;
	uint64_t ts_first;
	uint8_t cut; /* TJ_MSG_CUT: not a request, but its calls' parent */
};

enum call_state { CALL_OK = 0, CALL_NO_HEADER, CALL_BAD_HEADER, CALL_AMBIGUOUS,
		  CALL_PARENT_CUT };

struct call {
	struct tj_msgkey key;
	struct tj_traceparent tp;
	struct conn conn;
	uint64_t ts_first;
	uint8_t state;
};

static void conn_of(const struct tj_message *m, struct conn *c)
{
	c->family = m->family;
	c->lport = m->lport;
	c->rport = m->rport;
	memcpy(c->laddr, m->laddr, 16);
	memcpy(c->raddr, m->raddr, 16);
}

/* Is s the request this call became (the same connection seen from its
 * other end, on a node that talks to itself over loopback)? */
static int same_connection(const struct conn *call, const struct conn *s)
{
	return call->family == s->family && call->lport == s->rport && call->rport == s->lport &&
	       memcmp(call->laddr, s->raddr, 16) == 0 && memcmp(call->raddr, s->laddr, 16) == 0;
}

struct label_ctx {
	struct sreq *sv;
	size_t nsv, capsv;
	struct call *calls;
	size_t ncalls, capcalls;
	struct tj_label_result *res;
	int nomem;
};

static int on_message(void *vctx, const struct tj_message *m)
{
	struct label_ctx *c = vctx;
	/* A server request cut by capture start is no request, but the
	 * calls made for it must not be taken for roots: it is kept, marked,
	 * as their parent, and they are left out (CALL_PARENT_CUT). */
	int cut_request = !m->is_request && (m->flags & TJ_MSG_CUT) &&
			  m->role == TJ_ROLE_SERVER && m->key.dir == TJ_DIR_IN;
	if (!m->is_request) {
		if (m->role == TJ_ROLE_UNKNOWN && m->key.dir == TJ_DIR_OUT)
			c->res->unknown_role++;
		if (m->flags & TJ_MSG_CUT)
			c->res->cut++;
		if (!cut_request)
			return 0;
	}
	struct tj_traceparent tp;
	memset(&tp, 0, sizeof(tp));
	int found = m->payload_len ? tj_tp_find(m->payload, m->payload_len, &tp) : 0;
	if (m->role == TJ_ROLE_SERVER) {
		if (!cut_request)
			c->res->server_requests++;
		if (found != 1)
			return 0;
		if (!cut_request)
			c->res->server_with_tp++;
		if (tj_grow((void **)&c->sv, &c->capsv, c->nsv + 1, sizeof(*c->sv)))
			goto nomem;
		c->sv[c->nsv].key = m->key;
		c->sv[c->nsv].tp = tp;
		c->sv[c->nsv].ts_first = m->ts_first;
		c->sv[c->nsv].cut = (uint8_t)cut_request;
		conn_of(m, &c->sv[c->nsv].conn);
		c->nsv++;
		return 0;
	}
	c->res->calls++;
	if (tj_grow((void **)&c->calls, &c->capcalls, c->ncalls + 1, sizeof(*c->calls)))
		goto nomem;
	struct call *k = &c->calls[c->ncalls++];
	k->key = m->key;
	k->tp = tp;
	k->ts_first = m->ts_first;
	conn_of(m, &k->conn);
	k->state = found == 1 ? CALL_OK : found == 0 ? CALL_NO_HEADER : CALL_BAD_HEADER;
	return 0;
nomem:
	c->nomem = 1;
	return 1;
}

static uint64_t tuple_hash(uint32_t node, uint64_t hi, uint64_t lo, uint64_t span)
{
	return tj_hash64(node ^ tj_hash64(hi ^ tj_hash64(lo ^ tj_hash64(span))));
}

#define AMBIGUOUS UINT64_MAX

/* value = index + 1 (0 unused), AMBIGUOUS when two requests claim it.
 * 64-bit hashes of distinct tuples are taken as distinct: a collision
 * would need ~2^32 requests. */
static int index_put(struct tj_u64map *m, uint64_t h, size_t ix)
{
	int added;
	uint64_t *v = tj_u64map_upsert(m, h, &added);
	if (!v)
		return -1;
	*v = added ? ix + 1 : (*v == ix + 1 ? *v : AMBIGUOUS);
	return 0;
}

static int is_evlog_name(const char *name)
{
	size_t n = strlen(name);
	return strncmp(name, "node-", 5) == 0 && n > 11 && strcmp(name + n - 6, ".evlog") == 0;
}

/* Refuse inputs that are not a payload capture, before writing anything. */
static int check_logs(char **paths, size_t n, struct tj_err *err)
{
	for (size_t i = 0; i < n; i++) {
		struct tj_evlog_reader *r;
		int rc = tj_evlog_open(&r, paths[i], err);
		if (rc)
			return rc;
		const struct tj_evlog_header *h = tj_evlog_header(r);
		uint32_t flags = h->capture_flags, pmax = h->payload_max;
		tj_evlog_close_reader(r);
		if (flags & TJ_CAP_SYNTHETIC)
			return tj_errf(err, TJ_E_FORMAT,
				       "%s: not a capture (made by gen or import): its labels come with it",
				       paths[i]);
		if (!(flags & TJ_CAP_PAYLOAD) || pmax == 0)
			return tj_errf(err, TJ_E_FORMAT,
				       "%s: captured without payload prefixes: no trace headers to label from "
				       "(capture with --payload 256)", paths[i]);
		const char *base = strrchr(paths[i], '/');
		if (!is_evlog_name(base ? base + 1 : paths[i]))
			return tj_errf(err, TJ_E_FORMAT, "%s: not named node-ID.evlog", paths[i]);
	}
	return 0;
}

/* Copy one log without payloads; drop counters and damage carried over. */
static int strip_log(const char *in, const char *out, int force,
		     struct tj_label_result *res, struct tj_err *err)
{
	struct tj_evlog_reader *r;
	struct tj_evlog_writer *w = NULL;
	int rc = tj_evlog_open(&r, in, err);
	if (rc)
		return rc;
	struct tj_evlog_header h = *tj_evlog_header(r);
	h.capture_flags &= ~TJ_CAP_PAYLOAD;
	h.payload_max = 0;
	size_t ol = strlen(h.options);
	snprintf(h.options + ol, sizeof(h.options) - ol, "%s[payloads removed by tracejoin label]",
		 ol ? " " : "");
	rc = tj_evlog_create(&w, out, &h, force ? TJ_EVLOG_FORCE : 0, err);
	if (rc)
		goto out;
	const struct tj_event *ev;
	while ((rc = tj_evlog_next(r, &ev, err)) == 1) {
		struct tj_event e = *ev;
		if (e.payload_len)
			res->payload_events++;
		e.payload_len = 0;
		e.payload = NULL;
		res->events++;
		if ((rc = tj_evlog_write(w, &e, err)) < 0)
			goto out;
	}
	if (rc < 0)
		goto out;
	uint64_t drops[TJ_DROP__COUNT];
	if (tj_evlog_drops(r, drops))
		for (int d = 0; d < TJ_DROP__COUNT; d++) {
			if (drops[d])
				tj_evlog_add_drops(w, (enum tj_drop_reason)d, drops[d]);
			res->drops[d] += drops[d];
		}
	if (tj_evlog_damage(r)->damaged) {
		res->damaged = 1;
		tj_evlog_report_damage("label", r);
	}
	rc = tj_evlog_close(w, err);
	w = NULL;
	if (rc == 0)
		res->logs++;
out:
	tj_evlog_abort(w); /* a failed copy leaves nothing */
	tj_evlog_close_reader(r);
	return rc < 0 ? rc : 0;
}

static const char *reason_name(int s)
{
	return s == CALL_NO_HEADER ? "no traceparent in the captured prefix"
	     : s == CALL_BAD_HEADER ? "malformed traceparent"
	     : s == CALL_PARENT_CUT ? "its parent request began before capture (cut)"
				    : "two requests of its node explain it";
}

static int write_labels(struct label_ctx *c, const char *out_dir,
			struct tj_label_result *res, struct tj_err *err)
{
	struct tj_u64map by_call, by_inbound;
	tj_u64map_init(&by_call);
	tj_u64map_init(&by_inbound);
	char path[PATH_MAX], upath[PATH_MAX];
	FILE *uf = NULL;
	struct tj_edges_writer w = { 0 };
	int rc = 0, wopen = 0;
	/* by_inbound: (node, trace, inbound span) -> the latest such request;
	 * inb_next chains the earlier ones (a proxy's inbound request and,
	 * over loopback, the request its own forwarded call became) */
	size_t *inb_next = malloc((c->nsv ? c->nsv : 1) * sizeof(*inb_next));
	if (!inb_next)
		goto nomem;
	for (size_t i = 0; i < c->nsv; i++) {
		const struct sreq *s = &c->sv[i];
		uint64_t span = tj_tp_server_span(s->tp.trace_hi, s->tp.trace_lo, s->tp.span);
		for (unsigned k = 0; k < TJ_TP_MAX_CALLS; k++)
			if (index_put(&by_call, tuple_hash(s->key.node, s->tp.trace_hi, s->tp.trace_lo,
							   tj_tp_call_span(span, k)), i))
				goto nomem;
		int added;
		uint64_t *v = tj_u64map_upsert(&by_inbound, tuple_hash(s->key.node, s->tp.trace_hi,
								       s->tp.trace_lo, s->tp.span), &added);
		if (!v)
			goto nomem;
		inb_next[i] = added ? SIZE_MAX : (size_t)(*v - 1);
		*v = i + 1;
	}
	snprintf(path, sizeof(path), "%s/labels.csv", out_dir);
	snprintf(upath, sizeof(upath), "%s/unlabeled.csv", out_dir);
	unlink(upath);
	if ((rc = tj_edges_writer_open(&w, path, 0, NULL, 0, err)))
		goto out;
	wopen = 1;
	for (size_t i = 0; i < c->ncalls; i++) {
		struct call *k = &c->calls[i];
		struct tj_edge e = { .child = k->key, .score = 1.0 };
		int state = k->state;
		if (state == CALL_OK) {
			uint64_t h = tuple_hash(k->key.node, k->tp.trace_hi, k->tp.trace_lo, k->tp.span);
			uint64_t *v = tj_u64map_get(&by_call, h);
			size_t parent = SIZE_MAX;
			int proxy = 0;
			if (v && *v == AMBIGUOUS) {
				state = CALL_AMBIGUOUS;
			} else if (v) {
				parent = (size_t)(*v - 1);
			} else if ((v = tj_u64map_get(&by_inbound, h))) {
				/* a pass-through proxy: the request with the same
				 * context that came in before the call, not the
				 * call's own far end */
				for (size_t x = (size_t)(*v - 1); x != SIZE_MAX; x = inb_next[x]) {
					const struct sreq *s = &c->sv[x];
					if (s->ts_first > k->ts_first || same_connection(&k->conn, &s->conn))
						continue;
					if (parent != SIZE_MAX) {
						state = CALL_AMBIGUOUS;
						break;
					}
					parent = x;
				}
				proxy = state == CALL_OK && parent != SIZE_MAX;
			}
			if (state == CALL_OK && parent != SIZE_MAX && c->sv[parent].cut)
				state = CALL_PARENT_CUT;
			if (state == CALL_OK && parent != SIZE_MAX) {
				e.has_parent = 1;
				e.parent = c->sv[parent].key;
				res->with_parent++;
				res->via_proxy += (uint64_t)proxy;
			} else if (state == CALL_OK) {
				res->roots++;
			}
		}
		if (state != CALL_OK) {
			res->no_header += state == CALL_NO_HEADER;
			res->bad_header += state == CALL_BAD_HEADER;
			res->ambiguous += state == CALL_AMBIGUOUS;
			res->parent_cut += state == CALL_PARENT_CUT;
			if (!uf && !(uf = fopen(upath, "w"))) {
				rc = tj_errf(err, TJ_E_IO, "%s: %s", upath, strerror(errno));
				goto out;
			}
			char kb[TJ_MSGKEY_STRLEN];
			fprintf(uf, "%s%s,%s\n", ftell(uf) == 0 ? "key,reason\n" : "",
				tj_msgkey_format(&k->key, kb), reason_name(state));
			continue;
		}
		if ((rc = tj_edges_writer_put(&w, &e, err)))
			goto out;
		res->labeled++;
	}
	wopen = 0;
	if ((rc = tj_edges_writer_close(&w, err)))
		goto out;
	if (uf && fclose(uf) != 0) {
		uf = NULL;
		rc = tj_errf(err, TJ_E_IO, "%s: %s", upath, strerror(errno));
		goto out;
	}
	uf = NULL;
	goto out;
nomem:
	rc = tj_errf(err, TJ_E_NOMEM, "label: out of memory indexing %zu requests", c->nsv);
out:
	if (wopen)
		tj_edges_writer_abort(&w);
	if (uf)
		fclose(uf);
	tj_u64map_free(&by_call);
	tj_u64map_free(&by_inbound);
	free(inb_next);
	return rc;
}

static int write_manifest(const char *capture_dir, const char *out_dir,
			  const struct tj_label_opts *o, json_t *params,
			  const struct tj_label_result *r, struct tj_err *err)
{
	struct tj_manifest *m = tj_manifest_new("label");
	if (!m)
		return tj_errf(err, TJ_E_NOMEM, "label: out of memory");
	int rc = 0;
	const char *base = strrchr(capture_dir, '/');
	base = base && base[1] ? base + 1 : capture_dir;
	tj_manifest_set(m, "source", json_string(base));
	tj_manifest_set(m, "workload", o->workload ? json_string(o->workload) : json_null());
	if (params)
		json_object_update(tj_manifest_params(m), params);
	json_t *drops = json_object();
	for (int d = 0; d < TJ_DROP__COUNT; d++)
		json_object_set_new(drops, tj_drop_names[d], json_integer((json_int_t)r->drops[d]));
	tj_manifest_set(m, "capture_drops", drops);
	json_t *l = json_object();
	json_object_set_new(l, "calls", json_integer((json_int_t)r->calls));
	json_object_set_new(l, "labeled", json_integer((json_int_t)r->labeled));
	json_object_set_new(l, "with_parent", json_integer((json_int_t)r->with_parent));
	json_object_set_new(l, "via_proxy", json_integer((json_int_t)r->via_proxy));
	json_object_set_new(l, "roots", json_integer((json_int_t)r->roots));
	json_object_set_new(l, "no_header", json_integer((json_int_t)r->no_header));
	json_object_set_new(l, "bad_header", json_integer((json_int_t)r->bad_header));
	json_object_set_new(l, "ambiguous", json_integer((json_int_t)r->ambiguous));
	json_object_set_new(l, "unknown_role", json_integer((json_int_t)r->unknown_role));
	json_object_set_new(l, "cut_by_capture_start", json_integer((json_int_t)r->cut));
	json_object_set_new(l, "parent_cut", json_integer((json_int_t)r->parent_cut));
	json_object_set_new(l, "server_requests", json_integer((json_int_t)r->server_requests));
	json_object_set_new(l, "server_with_traceparent", json_integer((json_int_t)r->server_with_tp));
	json_object_set_new(l, "damaged", json_boolean(r->damaged));
	tj_manifest_set(m, "labels", l);
	rc = tj_manifest_write(m, out_dir, err);
	tj_manifest_free(m);
	return rc;
}

int tj_label_capture(const char *capture_dir, const char *out_dir,
		     const struct tj_label_opts *opts, struct tj_label_result *res,
		     struct tj_err *err)
{
	struct tj_label_opts defo = { 0 };
	const struct tj_label_opts *o = opts ? opts : &defo;
	char **paths = NULL;
	size_t npaths = 0;
	struct label_ctx c = { .res = res };
	struct tj_replay *rp = NULL;
	struct stat st;
	struct tj_outdir od = { 0 };
	json_t *params = NULL;
	int rc;
	memset(res, 0, sizeof(*res));
	if (o->params_json) { /* checked before anything is written */
		json_error_t je;
		params = json_loads(o->params_json, 0, &je);
		if (!params || !json_is_object(params)) {
			rc = tj_errf(err, TJ_E_ARG, "--params: not a JSON object: %s",
				     params ? "another JSON value" : je.text);
			json_decref(params);
			return rc;
		}
	}

	if (stat(capture_dir, &st) < 0) {
		rc = tj_errf(err, TJ_E_IO, "%s: %s", capture_dir, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = tj_errf(err, TJ_E_ARG, "%s: not a folder (give the capture's folder of node-*.evlog)",
			     capture_dir);
		goto out;
	}
	char *arg = (char *)capture_dir;
	if ((rc = tj_replay_expand_inputs(&arg, 1, &paths, &npaths, err))) {
		if (rc == -TJ_E_ARG) /* a folder without logs: a bad input, not a usage error */
			rc = -(err ? (err->code = TJ_E_FORMAT) : TJ_E_FORMAT);
		goto out;
	}
	if (npaths == 0) {
		rc = tj_errf(err, TJ_E_FORMAT, "%s: not a capture: no node-*.evlog inside", capture_dir);
		goto out;
	}
	if ((rc = check_logs(paths, npaths, err)))
		goto out;

	/* built in a folder of its own, moved into place when whole
	 * (lib/outfile.h): a failure leaves the old dataset, or none */
	char *inputs[] = { (char *)capture_dir };
	if ((rc = tj_outdir_open(&od, out_dir, o->force ? TJ_OUT_FORCE : 0, inputs, 1, err)))
		goto out;
	out_dir = od.tmp;
	for (size_t i = 0; i < npaths; i++) {
		const char *b = strrchr(paths[i], '/');
		char op[PATH_MAX];
		snprintf(op, sizeof(op), "%s/%s", out_dir, b ? b + 1 : paths[i]);
		if ((rc = strip_log(paths[i], op, o->force, res, err)))
			goto out;
	}

	struct tj_replay_opts ro = { .keep_payload = 1, .raw_payload = 1 };
	if ((rc = tj_replay_open(&rp, paths, npaths, &ro, err)))
		goto out;
	rc = tj_replay_run(rp, on_message, &c, err);
	if (c.nomem) {
		rc = tj_errf(err, TJ_E_NOMEM, "label: out of memory");
		goto out;
	}
	if (rc < 0)
		goto out;
	if ((rc = write_labels(&c, out_dir, res, err)))
		goto out;
	rc = write_manifest(capture_dir, out_dir, o, params, res, err);
	if (rc == 0)
		rc = tj_outdir_commit(&od, err);
out:
	tj_outdir_abort(&od);
	json_decref(params);
	tj_replay_close(rp);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(c.sv);
	free(c.calls);
	return rc;
}
