/* Event CSV -> evlog: the inverse of `tracejoin dump --csv` (columns in
 * lib/EVLOG.md), so that another capture tool's output can be brought in
 * by a script.  Read with libcsv one physical line at a time, so every
 * error names its line; columns are found by the header's names. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <csv.h>
#include "import.h"
#include "../../lib/evlog.h"
#include "../../lib/outfile.h"
#include "../../lib/u64map.h"

enum col {
	C_TS, C_NODE, C_PID, C_TID, C_FD, C_SOCK, C_TYPE, C_FAMILY, C_LADDR,
	C_LPORT, C_RADDR, C_RPORT, C_BYTES, C_OFFSET, C_PAYLOAD,
	C_REQUIRED, /* the columns above must all be there */
	C_FLAGS = C_REQUIRED, C_ARG, C_STACK, C_SEQ,
	C__COUNT
};

static const char *const col_names[C__COUNT] = {
	"ts_ns", "node", "pid", "tid", "fd", "sock", "type", "family", "laddr",
	"lport", "raddr", "rport", "bytes", "offset", "payload_hex",
	"flags", "arg", "stack_id", "tcp_seq",
};

#define MAX_FIELDS 32
#define LINE_MAX_BYTES 8192 /* a row is < 1 KiB: 512 hex digits and numbers */

struct parser {
	const char *name;
	struct tj_err *err;
	tj_csv_event_fn fn;
	void *ctx;
	unsigned long line;
	const char *lp;          /* the current line, for columns */
	size_t llen;
	int failed;
	int rows_in_line;
	int header_seen;
	int col_of[C__COUNT];    /* field index of each column, -1 absent */
	size_t ncols;            /* fields in the header */
	char *fields[MAX_FIELDS];
	size_t nfields;
	size_t too_many;
	uint8_t payload[TJ_PAYLOAD_MAX];
	struct csv_parser csv;
};

/* Byte column (1-based) where field idx of the current line starts. */
static size_t field_column(const struct parser *p, size_t idx)
{
	size_t f = 0, i = 0;
	int quoted = 0;
	for (; i < p->llen && f < idx; i++) {
		if (p->lp[i] == '"')
			quoted = !quoted;
		else if (p->lp[i] == ',' && !quoted)
			f++;
	}
	return i + 1;
}

static int failf(struct parser *p, long field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int failf(struct parser *p, long field, const char *fmt, ...)
{
	if (p->failed)
		return -1;
	p->failed = 1;
	char what[TJ_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (field >= 0)
		tj_errf(p->err, TJ_E_FORMAT, "%s:%lu:%zu: %s", p->name, p->line,
			field_column(p, (size_t)field), what);
	else
		tj_errf(p->err, TJ_E_FORMAT, "%s:%lu: %s", p->name, p->line, what);
	return -1;
}

static void on_field(void *s, size_t len, void *data)
{
	struct parser *p = data;
	if (p->failed)
		return;
	if (p->nfields == MAX_FIELDS) {
		p->too_many++;
		return;
	}
	if (memchr(s, '\0', len)) {
		failf(p, (long)p->nfields, "NUL byte in a field");
		return;
	}
	char *copy = strndup(s, len);
	if (!copy) {
		failf(p, -1, "out of memory");
		return;
	}
	p->fields[p->nfields++] = copy;
}

static void clear_fields(struct parser *p)
{
	for (size_t i = 0; i < p->nfields; i++)
		free(p->fields[i]);
	p->nfields = 0;
	p->too_many = 0;
}

static int read_header(struct parser *p)
{
	for (int c = 0; c < C__COUNT; c++)
		p->col_of[c] = -1;
	if (p->too_many)
		return failf(p, -1, "header has more than %d columns", MAX_FIELDS);
	for (size_t i = 0; i < p->nfields; i++) {
		int c = 0;
		while (c < C__COUNT && strcmp(p->fields[i], col_names[c]) != 0)
			c++;
		if (c == C__COUNT)
			return failf(p, (long)i, "unknown column '%.40s'", p->fields[i]);
		if (p->col_of[c] >= 0)
			return failf(p, (long)i, "column '%s' twice", col_names[c]);
		p->col_of[c] = (int)i;
	}
	for (int c = 0; c < C_REQUIRED; c++)
		if (p->col_of[c] < 0)
			return failf(p, -1, "header lacks the column '%s' (needs %s,...,%s)",
				     col_names[c], col_names[0], col_names[C_REQUIRED - 1]);
	p->ncols = p->nfields;
	p->header_seen = 1;
	return 0;
}

/* A number as strto* reads it, but whole: no sign or space it does not
 * allow, nothing after it. */
static int plain_number(const char *s, int sign_ok)
{
	return *s && *s != '+' && *s != ' ' && *s != '\t' && (sign_ok || *s != '-');
}

/* Decimal (or 0x hex when hex_ok) unsigned number no larger than max. */
static int num_u(struct parser *p, int c, uint64_t max, int hex_ok,
		 uint64_t *out)
{
	int f = p->col_of[c];
	const char *s = p->fields[f];
	int base = 10;
	if (hex_ok && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)) {
		s += 2;
		base = 16;
	}
	char *end = NULL;
	unsigned long long v = 0;
	errno = 0;
	if (plain_number(s, 0))
		v = strtoull(s, &end, base);
	if (!end || *end || errno || v > max)
		return failf(p, f, "%s '%.40s' is not a number 0..%llu",
			     col_names[c], p->fields[f], (unsigned long long)max);
	*out = v;
	return 0;
}

static int num_s(struct parser *p, int c, int64_t min, int64_t max,
		 int64_t *out)
{
	int f = p->col_of[c];
	const char *s = p->fields[f];
	char *end = NULL;
	long long v = 0;
	errno = 0;
	if (plain_number(s, 1))
		v = strtoll(s, &end, 10);
	if (!end || *end || errno || v < min || v > max)
		return failf(p, f, "%s '%.40s' is not a number %lld..%lld",
			     col_names[c], s, (long long)min, (long long)max);
	*out = v;
	return 0;
}

static int addr(struct parser *p, int c, unsigned family, uint8_t a[16])
{
	int f = p->col_of[c];
	unsigned fam;
	if (tj_addr_parse(p->fields[f], &fam, a) < 0)
		return failf(p, f, "%s '%.60s' is not an address", col_names[c],
			     p->fields[f]);
	if (fam != family)
		return failf(p, f, "%s '%.60s' is not of family '%s'", col_names[c],
			     p->fields[f], p->fields[p->col_of[C_FAMILY]]);
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int read_row(struct parser *p)
{
	if (p->too_many || p->nfields != p->ncols)
		return failf(p, -1, "%zu fields, the header has %zu",
			     p->nfields + p->too_many, p->ncols);
	struct tj_event ev;
	memset(&ev, 0, sizeof(ev));
	uint64_t u;
	int64_t s;
	const uint64_t U32 = UINT32_MAX, U16 = UINT16_MAX;
	if (num_u(p, C_TS, UINT64_MAX, 0, &ev.ts_ns) ||
	    num_u(p, C_NODE, U32, 0, &u))
		return -1;
	ev.node = (uint32_t)u;
	if (num_u(p, C_PID, U32, 0, &u))
		return -1;
	ev.pid = (uint32_t)u;
	if (num_u(p, C_TID, U32, 0, &u))
		return -1;
	ev.tid = (uint32_t)u;
	if (num_s(p, C_FD, INT32_MIN, INT32_MAX, &s))
		return -1;
	ev.fd = (int32_t)s;
	if (num_u(p, C_SOCK, UINT64_MAX, 0, &ev.sock))
		return -1;
	int f = p->col_of[C_TYPE];
	const char *tn = p->fields[f];
	if (tn[0] >= '0' && tn[0] <= '9') { /* a type newer than this reader */
		if (num_u(p, C_TYPE, UINT8_MAX, 0, &u))
			return -1;
		ev.type = (uint8_t)u;
	} else {
		ev.type = (uint8_t)tj_event_type_parse(tn);
	}
	if (ev.type == TJ_EV_NONE)
		return failf(p, f, "unknown event type '%.40s'", tn);
	f = p->col_of[C_FAMILY];
	if (strcmp(p->fields[f], "ipv4") == 0)
		ev.family = AF_INET;
	else if (strcmp(p->fields[f], "ipv6") == 0)
		ev.family = AF_INET6;
	else if (p->fields[f][0] != '\0')
		return failf(p, f, "family '%.40s' is not ipv4, ipv6 or empty",
			     p->fields[f]);
	if (addr(p, C_LADDR, ev.family, ev.laddr) || num_u(p, C_LPORT, U16, 0, &u))
		return -1;
	ev.lport = (uint16_t)u;
	if (addr(p, C_RADDR, ev.family, ev.raddr) || num_u(p, C_RPORT, U16, 0, &u))
		return -1;
	ev.rport = (uint16_t)u;
	if (num_s(p, C_BYTES, INT64_MIN, INT64_MAX, &ev.bytes) ||
	    num_u(p, C_OFFSET, UINT64_MAX, 0, &ev.offset))
		return -1;
	f = p->col_of[C_PAYLOAD];
	const char *hex = p->fields[f];
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > TJ_PAYLOAD_MAX)
		return failf(p, f, "payload_hex has %zu digits: an even number, at most %d",
			     n, 2 * TJ_PAYLOAD_MAX);
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
		if (hi < 0 || lo < 0)
			return failf(p, f, "payload_hex: '%c%c' at digit %zu is not hex",
				     hex[i], hex[i + 1], i + 1);
		p->payload[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	ev.payload_len = (uint16_t)(n / 2);
	ev.payload = n ? p->payload : NULL;
	uint32_t *opt[4] = { &ev.flags, &ev.arg, &ev.stack_id, &ev.tcp_seq };
	for (int c = C_FLAGS; c < C__COUNT; c++) {
		if (p->col_of[c] < 0)
			continue;
		if (num_u(p, c, U32, 1, &u))
			return -1;
		*opt[c - C_FLAGS] = (uint32_t)u;
	}
	struct tj_err cerr = { 0 };
	int rc = p->fn(p->ctx, &ev, &cerr);
	if (rc)
		return failf(p, -1, "%s", cerr.code ? cerr.msg : "refused");
	return 0;
}

static void on_row(int term, void *data)
{
	struct parser *p = data;
	(void)term;
	p->rows_in_line++;
	if (!p->failed) {
		if (!p->header_seen)
			read_header(p);
		else
			read_row(p);
	}
	clear_fields(p);
}

static int is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

static void feed_line(struct parser *p, const char *s, size_t n)
{
	p->line++;
	p->lp = s;
	p->llen = n;
	p->rows_in_line = 0;
	if (n > LINE_MAX_BYTES) {
		failf(p, -1, "line longer than %d bytes", LINE_MAX_BYTES);
		return;
	}
	size_t body = n;
	if (body && s[body - 1] == '\n')
		body--;
	if (body && s[body - 1] == '\r')
		body--;
	const char *cr = memchr(s, '\r', body);
	if (cr) {
		failf(p, -1, "carriage return inside a line");
		return;
	}
	size_t done = csv_parse(&p->csv, s, n, on_field, on_row, p);
	if (p->failed)
		return;
	if (done < n) {
		failf(p, -1, "malformed quoting at byte %zu (%s)", done + 1,
		      csv_strerror(csv_error(&p->csv)));
		return;
	}
	if (n && s[n - 1] == '\n' && p->rows_in_line == 0 && !is_blank(s, n))
		failf(p, -1, "quoted field not closed at the end of the line");
}

/* Parse a whole stream.  Returns 0 or negative with err set. */
static int parse_stream(const char *name, FILE *f, tj_csv_event_fn fn,
			void *ctx, struct tj_err *err)
{
	struct parser *p = calloc(1, sizeof(*p));
	if (!p)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
	if (csv_init(&p->csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)) {
		free(p);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
	}
	p->name = name;
	p->err = err;
	p->fn = fn;
	p->ctx = ctx;
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	while (!p->failed && (got = getline(&line, &cap, f)) >= 0) {
		const char *s = line;
		size_t n = (size_t)got;
		if (p->line == 0 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
			s += 3, n -= 3; /* a spreadsheet's byte order mark */
		feed_line(p, s, n);
	}
	if (!p->failed && ferror(f))
		tj_errf(err, TJ_E_IO, "%s: read error: %s", name, strerror(errno)),
			p->failed = 1;
	if (!p->failed && csv_fini(&p->csv, on_field, on_row, p) != 0)
		failf(p, -1, "quoted field not closed at the end of the file");
	if (!p->failed && !p->header_seen) {
		tj_errf(err, TJ_E_FORMAT, "%s: empty file: no header row (%s,...)",
			name, col_names[0]);
		p->failed = 1;
	}
	int failed = p->failed;
	int code = err && err->code ? err->code : TJ_E_FORMAT;
	clear_fields(p);
	csv_free(&p->csv);
	free(line);
	free(p);
	return failed ? -code : 0;
}

int tj_event_csv_parse(const char *name, const char *data, size_t len,
		       tj_csv_event_fn fn, void *ctx, struct tj_err *err)
{
	if (err)
		err->code = 0;
	if (len == 0)
		return tj_errf(err, TJ_E_FORMAT, "%s: empty file: no header row", name);
	FILE *f = fmemopen((void *)data, len, "r");
	if (!f)
		return tj_errf(err, TJ_E_NOMEM, "%s: %s", name, strerror(errno));
	int rc = parse_stream(name, f, fn, ctx, err);
	fclose(f);
	return rc;
}

/* ---- into an evlog ---- */

struct to_log {
	const char *in, *out;
	unsigned flags;
	int64_t node;       /* -1 until known */
	struct tj_evlog_writer *w;
	uint64_t rows;
	uint64_t last_ts;   /* of the previous row: a log is in time order */
	unsigned long created_line;
	/* Sockets whose rows give sequence numbers for offsets: socket id ->
	 * 1 + the stream position after its last byte, per direction. */
	struct tj_u64map seqpos[2];
};

/* A foreign capture that started mid-stream may know each packet's TCP
 * sequence number and not the socket's byte count: a data row flagged
 * offset_from_start with a tcp_seq names its first byte by that number,
 * unwrapped to 64 bits along the socket (lib/event.h tj_seq_unwrap), and
 * is written flagged seq_offset, as capture writes such sockets.  Its
 * offset column is then not used.  (A tcp_seq of 0 means "none".) */
static int seq_offset(struct to_log *t, struct tj_event *ev, struct tj_err *err)
{
	if (!(ev->flags & TJ_EVF_OFFSET_FROM_START) || ev->tcp_seq == 0 ||
	    (ev->type != TJ_EV_SEND && ev->type != TJ_EV_RECV))
		return 0;
	int added;
	uint64_t *pos = tj_u64map_upsert(&t->seqpos[ev->type == TJ_EV_RECV], ev->sock, &added);
	if (!pos)
		return tj_errf(err, TJ_E_NOMEM, "out of memory");
	ev->offset = added ? ev->tcp_seq : tj_seq_unwrap(*pos - 1, ev->tcp_seq);
	ev->flags = (ev->flags & ~TJ_EVF_OFFSET_FROM_START) | TJ_EVF_SEQ_OFFSET;
	uint64_t end = ev->offset + (ev->bytes > 0 ? (uint64_t)ev->bytes : 0);
	if (added || end + 1 > *pos)
		*pos = end + 1;
	return 0;
}

static int open_log(struct to_log *t, struct tj_err *err)
{
	struct tj_evlog_header h;
	memset(&h, 0, sizeof(h));
	h.node = (uint32_t)t->node;
	h.capture_flags = TJ_CAP_SYNTHETIC;
	snprintf(h.options, sizeof(h.options), "tracejoin import --format csv %s",
		 t->in);
	return tj_evlog_create(&t->w, t->out, &h,
			       t->flags & TJ_IMPORT_FORCE ? TJ_EVLOG_FORCE : 0, err);
}

static int put_event(void *ctx, const struct tj_event *ev, struct tj_err *err)
{
	struct to_log *t = ctx;
	if (t->node < 0)
		t->node = ev->node;
	else if (ev->node != (uint64_t)t->node)
		return tj_errf(err, TJ_E_FORMAT,
			       "node %u, but the log is node %lld (one node a log)",
			       ev->node, (long long)t->node);
	/* replay and every correlator take a log's order as its node's
	 * time order; sorting here would hide a broken exporter */
	if (t->rows && ev->ts_ns < t->last_ts)
		return tj_errf(err, TJ_E_FORMAT,
			       "ts_ns %llu is before the row above (%llu): rows of a "
			       "node must be in time order (sort -t, -k1,1n)",
			       (unsigned long long)ev->ts_ns,
			       (unsigned long long)t->last_ts);
	t->last_ts = ev->ts_ns;
	struct tj_event e = *ev;
	int rc = seq_offset(t, &e, err);
	if (rc < 0)
		return rc;
	if (!t->w && (rc = open_log(t, err)) < 0)
		return rc;
	if ((rc = tj_evlog_write(t->w, &e, err)) < 0)
		return rc;
	t->rows++;
	return 0;
}

int tj_import_csv(const char *path, const char *out, int64_t node,
		  unsigned flags, struct tj_csv_import_stats *st,
		  struct tj_err *err)
{
	if (err)
		err->code = 0;
	char *inputs[] = { (char *)path };
	int crc = tj_out_check_inputs(out, 0, inputs, 1, err);
	if (crc < 0)
		return crc;
	if (!(flags & TJ_IMPORT_FORCE) && strcmp(out, "-") != 0 &&
	    access(out, F_OK) == 0)
		return tj_errf(err, TJ_E_ARG, "%s: exists; --force replaces it", out);
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	struct to_log t = { .in = path, .out = out, .flags = flags, .node = node };
	int rc = 0;
	tj_u64map_init(&t.seqpos[0]);
	tj_u64map_init(&t.seqpos[1]);
	if (node >= 0)
		rc = open_log(&t, err);
	if (rc == 0)
		rc = parse_stream(path, f, put_event, &t, err);
	if (rc == 0 && !t.w)
		rc = tj_errf(err, TJ_E_FORMAT,
			     "%s: no events, so no node id: give --node N", path);
	if (f != stdin)
		fclose(f);
	if (t.w && rc < 0)
		tj_evlog_abort(t.w); /* no broken log left behind, an old one kept */
	else if (t.w)
		rc = tj_evlog_close(t.w, err);
	tj_u64map_free(&t.seqpos[0]);
	tj_u64map_free(&t.seqpos[1]);
	if (st) {
		st->rows = t.rows;
		st->node = t.node < 0 ? 0 : (uint32_t)t.node;
	}
	return rc;
}
