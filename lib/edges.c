/* labels.csv / edges.csv reader and writer (DESIGN.md, lib/edges.h).
 *
 * What the reader accepts, beyond RFC 4180 as libcsv parses it in strict
 * mode:
 *  - LF or CRLF line ends, the last line with or without its newline;
 *    a carriage return anywhere else is refused (no legal field holds one).
 *  - A UTF-8 byte order mark at the very start is skipped: spreadsheets
 *    write one when saving "CSV UTF-8", and it can carry no meaning here.
 *  - Blank lines are skipped (libcsv's behaviour), so are spaces around
 *    unquoted fields; fields may be quoted.
 *  - The first row must be the header child,parent,score exactly.  A file
 *    with nothing but the header holds zero edges; an empty file is
 *    refused (it is not an edges file at all).
 *  - Every row: child an `out` key, parent empty or an `in` key on the
 *    child's node that is not the child, score a finite decimal number in
 *    [0,1]; no child twice.  Correlators answer only intra-node edges
 *    (DECISIONS.md), labels likewise.
 * Errors read "FILE:LINE:COLUMN: what", COLUMN counting bytes from 1 (the
 * start of the offending field), like a compiler's, so editors jump there.
 *
 * libcsv does not count lines, so the reader hands it one physical line
 * at a time: a row then never spans lines (a quoted newline is refused,
 * no legal field holds one) and the line of every row is known. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <csv.h>
#include "edges.h"
#include "u64map.h"

#define FIELD_MAX 128       /* longer than any key or number we accept */
#define LINE_MAX_BYTES 4096 /* a row is < 200 bytes; this stops runaway input */

static const char *const field_names[3] = { "child", "parent", "score" };

/* ---- key map ---------------------------------------------------------- */

void tj_keymap_init(struct tj_keymap *m)
{
	m->ent = NULL;
	m->cap = m->len = 0;
}

void tj_keymap_free(struct tj_keymap *m)
{
	free(m->ent);
	tj_keymap_init(m);
}

/* tj_msgkey_eq inlined: the probe loops below are the tables' hot path */
static inline int same_key(const struct tj_keymap_ent *e, const struct tj_msgkey *k)
{
	return e->offset == k->offset && e->sock == k->sock && e->node == k->node &&
	       e->dir == k->dir;
}

static inline size_t home_of(const struct tj_keymap_ent *e, size_t mask)
{
	struct tj_msgkey k = { .node = e->node, .sock = e->sock, .offset = e->offset,
			       .dir = e->dir };
	return tj_msgkey_hash(&k) & mask;
}

size_t *tj_keymap_get(const struct tj_keymap *m, const struct tj_msgkey *k)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = tj_msgkey_hash(k) & (m->cap - 1);;
	     i = (i + 1) & (m->cap - 1)) {
		struct tj_keymap_ent *e = &m->ent[i];
		if (!e->used)
			return NULL;
		if (same_key(e, k))
			return &e->val;
	}
}

static int keymap_grow(struct tj_keymap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64, mask = cap - 1;
	struct tj_keymap_ent *b = calloc(cap, sizeof(*b));
	if (!b)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->ent[i].used)
			continue;
		size_t j = home_of(&m->ent[i], mask);
		while (b[j].used)
			j = (j + 1) & mask;
		b[j] = m->ent[i];
	}
	free(m->ent);
	m->ent = b;
	m->cap = cap;
	return 0;
}

int tj_keymap_reserve(struct tj_keymap *m, size_t n)
{
	while (m->cap < 2 * n)
		if (keymap_grow(m) < 0)
			return -1;
	return 0;
}

size_t *tj_keymap_upsert(struct tj_keymap *m, const struct tj_msgkey *k,
			 int *added)
{
	if ((m->len + 1) * 4 > m->cap * 3 && keymap_grow(m) < 0)
		return NULL;
	size_t i = tj_msgkey_hash(k) & (m->cap - 1);
	for (; m->ent[i].used; i = (i + 1) & (m->cap - 1)) {
		if (same_key(&m->ent[i], k)) {
			if (added)
				*added = 0;
			return &m->ent[i].val;
		}
	}
	struct tj_keymap_ent *e = &m->ent[i];
	e->sock = k->sock;
	e->offset = k->offset;
	e->node = k->node;
	e->dir = k->dir;
	e->used = 1;
	e->val = 0;
	m->len++;
	if (added)
		*added = 1;
	return &e->val;
}

int tj_keymap_del(struct tj_keymap *m, const struct tj_msgkey *k)
{
	if (!m->cap)
		return 0;
	size_t mask = m->cap - 1, i = tj_msgkey_hash(k) & mask;
	for (; m->ent[i].used; i = (i + 1) & mask)
		if (same_key(&m->ent[i], k))
			break;
	if (!m->ent[i].used)
		return 0;
	/* backward shift: move up every later entry of the run that may
	 * sit at i, so no tombstone is left */
	for (size_t j = (i + 1) & mask; m->ent[j].used; j = (j + 1) & mask) {
		size_t home = home_of(&m->ent[j], mask);
		/* j's entry may move to i if i lies cyclically in [home, j) */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->ent[i] = m->ent[j];
			i = j;
		}
	}
	m->ent[i].used = 0;
	m->len--;
	return 1;
}

int tj_edges_index(struct tj_keymap *m, const struct tj_edge_set *set,
		   size_t *dup_first, size_t *dup_second)
{
	for (size_t i = 0; i < set->n; i++) {
		int added;
		size_t *v = tj_keymap_upsert(m, &set->edges[i].child, &added);
		if (!v)
			return -TJ_E_NOMEM;
		if (!added) {
			if (dup_first)
				*dup_first = *v;
			if (dup_second)
				*dup_second = i;
			return -TJ_E_FORMAT;
		}
		*v = i;
	}
	return 0;
}

/* ---- edge set ---------------------------------------------------------- */

static int set_push(struct tj_edge_set *set, const struct tj_edge *e,
		    unsigned long line)
{
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		struct tj_edge *ne = realloc(set->edges, cap * sizeof(*ne));
		if (!ne)
			return -TJ_E_NOMEM;
		set->edges = ne;
		unsigned long *nl = realloc(set->lines, cap * sizeof(*nl));
		if (!nl)
			return -TJ_E_NOMEM;
		set->lines = nl;
		set->cap = cap;
	}
	set->edges[set->n] = *e;
	set->lines[set->n] = line;
	set->n++;
	return 0;
}

int tj_edges_add(struct tj_edge_set *set, const struct tj_edge *e)
{
	return set_push(set, e, 0);
}

void tj_edges_free(struct tj_edge_set *set)
{
	free(set->edges);
	free(set->lines);
	set->edges = NULL;
	set->lines = NULL;
	set->n = set->cap = 0;
}

/* The rules one edge must keep, shared by reader and writer so the writer
 * never produces a file the reader refuses.  Returns the index of the
 * field at fault (0 child, 1 parent, 2 score) and a reason, or -1. */
static int edge_fault(const struct tj_edge *e, const char **why)
{
	if (e->child.dir != TJ_DIR_OUT) {
		*why = "a child is a client-side request, an 'out' message";
		return 0;
	}
	if (e->has_parent) {
		if (e->parent.dir != TJ_DIR_IN) {
			*why = "a parent is a server-side request, an 'in' message";
			return 1;
		}
		if (e->parent.node != e->child.node) {
			*why = "parent and child on different nodes (edges are "
			       "within one node; the join links nodes)";
			return 1;
		}
		if (tj_msgkey_eq(&e->parent, &e->child)) {
			*why = "parent equals child";
			return 1;
		}
	}
	if (!(e->score >= 0.0 && e->score <= 1.0)) {
		*why = "score is not a number in [0,1]";
		return 2;
	}
	return -1;
}

/* ---- reader ------------------------------------------------------------ */

struct reader {
	struct tj_edge_set *set;
	const char *name;
	struct tj_err *err;
	int failed;

	unsigned long line;     /* physical line being parsed, from 1 */
	const char *lp;         /* its bytes, for column numbers */
	size_t llen;
	unsigned rows_in_line;

	int header_seen;
	size_t nfields;         /* fields of the current row so far */
	size_t flen[3];
	char field[3][FIELD_MAX + 1];
	int too_long;           /* index+1 of a field over FIELD_MAX */
	int has_nul;            /* index+1 of a field holding a NUL */

	struct tj_keymap index; /* child -> position, for duplicates */

	char carry[LINE_MAX_BYTES]; /* a line split across input blocks */
	size_t ncarry;
	int carry_overflow;
	int at_start;           /* nothing fed yet: a BOM may come */
	struct csv_parser csv;
};

/* 1-based byte column where field idx of the current line starts, found
 * by counting commas outside quotes (libcsv already checked the quoting). */
static size_t field_column(const struct reader *r, size_t idx)
{
	size_t f = 0, i = 0;
	int quoted = 0;
	for (; i < r->llen && f < idx; i++) {
		if (r->lp[i] == '"')
			quoted = !quoted;
		else if (r->lp[i] == ',' && !quoted)
			f++;
	}
	while (i < r->llen && (r->lp[i] == ' ' || r->lp[i] == '\t'))
		i++;
	return i + 1;
}

static void fail_at(struct reader *r, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_at(struct reader *r, size_t col, const char *fmt, ...)
{
	char what[TJ_ERRMSG_MAX];
	va_list ap;
	if (r->failed)
		return;
	r->failed = 1;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (col)
		tj_errf(r->err, TJ_E_FORMAT, "%s:%lu:%zu: %s", r->name,
			r->line, col, what);
	else
		tj_errf(r->err, TJ_E_FORMAT, "%s:%lu: %s", r->name, r->line,
			what);
}

static void on_field(void *s, size_t len, void *data)
{
	struct reader *r = data;
	size_t i = r->nfields++;
	if (r->failed || i >= 3)
		return;
	if (len > FIELD_MAX) {
		if (!r->too_long)
			r->too_long = (int)i + 1;
		len = 0;
	}
	if (s && memchr(s, '\0', len) && !r->has_nul)
		r->has_nul = (int)i + 1;
	if (len)
		memcpy(r->field[i], s, len);
	r->field[i][len] = '\0';
	r->flen[i] = len;
}

/* A decimal number only: strtod would also take "nan", "inf", hex floats
 * and leading spaces, none of which belong in a score column. */
static int parse_score(const char *s, double *out)
{
	if (!*s)
		return -1;
	if ((s[0] == '0' || s[0] == '1') && !s[1]) { /* labels' scores: no strtod */
		*out = s[0] - '0';
		return 0;
	}
	for (const char *p = s; *p; p++)
		if (!strchr("0123456789.eE+-", *p))
			return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (*end || errno == ERANGE || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static void check_header(struct reader *r)
{
	r->header_seen = 1;
	if (r->nfields == 3 && strcmp(r->field[0], "child") == 0 &&
	    strcmp(r->field[1], "parent") == 0 &&
	    strcmp(r->field[2], "score") == 0)
		return;
	fail_at(r, 0, "header must be 'child,parent,score'%s",
		r->nfields != 3 ? " (three fields)" : "");
}

static void check_row(struct reader *r)
{
	struct tj_edge e;
	memset(&e, 0, sizeof(e));
	if (r->nfields != 3) {
		fail_at(r, r->nfields > 3 ? field_column(r, 3) : 0,
			"%zu field%s, expected 3 (child,parent,score)",
			r->nfields, r->nfields == 1 ? "" : "s");
		return;
	}
	if (r->too_long) {
		size_t f = (size_t)r->too_long - 1;
		fail_at(r, field_column(r, f), "%s: field longer than %d bytes",
			field_names[f], FIELD_MAX);
		return;
	}
	if (r->has_nul) {
		size_t f = (size_t)r->has_nul - 1;
		fail_at(r, field_column(r, f), "%s: NUL byte in field",
			field_names[f]);
		return;
	}
	if (tj_msgkey_parse(r->field[0], &e.child) < 0) {
		fail_at(r, field_column(r, 0),
			"child: '%s' is not a message key (node:sock:in|out:offset)",
			r->field[0]);
		return;
	}
	if (r->flen[1]) {
		if (tj_msgkey_parse(r->field[1], &e.parent) < 0) {
			fail_at(r, field_column(r, 1),
				"parent: '%s' is not a message key "
				"(node:sock:in|out:offset) or empty", r->field[1]);
			return;
		}
		e.has_parent = 1;
	}
	if (parse_score(r->field[2], &e.score) < 0) {
		fail_at(r, field_column(r, 2),
			"score: '%s' is not a number in [0,1]", r->field[2]);
		return;
	}
	const char *why;
	int f = edge_fault(&e, &why);
	if (f >= 0) {
		fail_at(r, field_column(r, (size_t)f), "%s: %s", field_names[f],
			why);
		return;
	}
	int added;
	size_t *pos = tj_keymap_upsert(&r->index, &e.child, &added);
	if (!pos) {
		r->failed = 1;
		tj_errf(r->err, TJ_E_NOMEM, "%s: out of memory", r->name);
		return;
	}
	if (!added) {
		fail_at(r, field_column(r, 0),
			"child '%s' appears twice (lines %lu and %lu)",
			r->field[0], r->set->lines[*pos], r->line);
		return;
	}
	*pos = r->set->n;
	if (set_push(r->set, &e, r->line) < 0) {
		r->failed = 1;
		tj_errf(r->err, TJ_E_NOMEM, "%s: out of memory", r->name);
	}
}

static void on_row(int c, void *data)
{
	struct reader *r = data;
	(void)c;
	if (!r->failed) {
		r->rows_in_line++;
		if (!r->header_seen)
			check_header(r);
		else
			check_row(r);
	}
	r->nfields = 0;
	r->too_long = r->has_nul = 0;
}

static int is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

/* One physical line, with its '\n' unless it is the last. */
static void feed_line(struct reader *r, const char *p, size_t n)
{
	r->line++;
	r->lp = p;
	r->llen = n;
	r->rows_in_line = 0;
	size_t body = n;
	if (body && p[body - 1] == '\n')
		body--;
	if (body && p[body - 1] == '\r')
		body--;
	const char *cr = memchr(p, '\r', body);
	if (cr) {
		fail_at(r, (size_t)(cr - p) + 1,
			"carriage return inside a line");
		return;
	}
	/* The common line (unquoted, no spaces, whole): split at the commas
	 * here; libcsv would give the same fields, at a fifth of the speed
	 * (labels files hold millions of rows).  Its state stays at a row's
	 * start, where the last whole line left it. */
	if (body && p[n - 1] == '\n' && !memchr(p, '"', body) && !memchr(p, ' ', body) &&
	    !memchr(p, '\t', body)) {
		const char *f = p, *end = p + body, *c;
		while ((c = memchr(f, ',', (size_t)(end - f)))) {
			on_field((void *)f, (size_t)(c - f), r);
			f = c + 1;
		}
		on_field((void *)f, (size_t)(end - f), r);
		on_row('\n', r);
		return;
	}
	size_t done = csv_parse(&r->csv, p, n, on_field, on_row, r);
	if (r->failed)
		return;
	if (done < n) {
		fail_at(r, done + 1, "malformed quoting (%s)",
			csv_strerror(csv_error(&r->csv)));
		return;
	}
	/* A row begun on this line must end on it: no field holds a newline. */
	if (n && p[n - 1] == '\n' && r->rows_in_line == 0 && !is_blank(p, n))
		fail_at(r, 0, "quoted field not closed at the end of the line");
}

static void feed(struct reader *r, const char *p, size_t n)
{
	if (r->at_start && n) {
		/* The BOM may itself be split across reads; keep it simple and
		 * accept it only whole in the first block (always the case for
		 * files and memory; stdin delivers at least 3 bytes unless the
		 * input is shorter). */
		if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
			p += 3;
			n -= 3;
		}
		r->at_start = 0;
	}
	while (n && !r->failed) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) + 1 : n;
		if (r->ncarry == 0 && nl) {
			feed_line(r, p, take);
		} else if (r->ncarry + take > sizeof(r->carry)) {
			r->line++;
			fail_at(r, 0, "line longer than %d bytes",
				LINE_MAX_BYTES);
			return;
		} else {
			memcpy(r->carry + r->ncarry, p, take);
			r->ncarry += take;
			if (nl) {
				feed_line(r, r->carry, r->ncarry);
				r->ncarry = 0;
			}
		}
		p += take;
		n -= take;
	}
}

static int finish(struct reader *r)
{
	if (!r->failed && r->ncarry) {
		feed_line(r, r->carry, r->ncarry);
		r->ncarry = 0;
	}
	if (!r->failed && csv_fini(&r->csv, on_field, on_row, r) != 0 &&
	    !r->failed)
		fail_at(r, 0, "quoted field not closed at the end of the file");
	if (!r->failed && !r->header_seen) {
		r->failed = 1;
		tj_errf(r->err, TJ_E_FORMAT,
			"%s: empty file: no 'child,parent,score' header",
			r->name);
	}
	return r->failed ? -(r->err && r->err->code ? r->err->code
						     : TJ_E_FORMAT)
			 : 0;
}

static struct reader *reader_new(struct tj_edge_set *set, const char *name,
				 struct tj_err *err)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r) {
		tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
		return NULL;
	}
	if (csv_init(&r->csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)) {
		free(r);
		tj_errf(err, TJ_E_NOMEM, "%s: out of memory", name);
		return NULL;
	}
	r->set = set;
	r->name = name;
	r->err = err;
	r->at_start = 1;
	tj_keymap_init(&r->index);
	if (err)
		err->code = 0;
	return r;
}

static void reader_free(struct reader *r)
{
	csv_free(&r->csv);
	tj_keymap_free(&r->index);
	free(r);
}

/* On failure the set is left empty, never half-filled. */
static int reader_done(struct reader *r, int rc)
{
	if (rc < 0)
		tj_edges_free(r->set);
	reader_free(r);
	return rc;
}

int tj_edges_parse(struct tj_edge_set *set, const char *name,
		   const char *data, size_t len, struct tj_err *err)
{
	memset(set, 0, sizeof(*set));
	struct reader *r = reader_new(set, name, err);
	if (!r)
		return -TJ_E_NOMEM;
	feed(r, data, len);
	return reader_done(r, finish(r));
}

int tj_edges_read(struct tj_edge_set *set, const char *path,
		  struct tj_err *err)
{
	memset(set, 0, sizeof(*set));
	int is_stdin = strcmp(path, "-") == 0;
	const char *name = is_stdin ? "<stdin>" : path;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	struct reader *r = reader_new(set, name, err);
	if (!r) {
		if (!is_stdin)
			fclose(f);
		return -TJ_E_NOMEM;
	}
	char buf[65536];
	size_t n;
	while (!r->failed && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		feed(r, buf, n);
	int rc;
	if (!r->failed && ferror(f)) {
		r->failed = 1;
		rc = tj_errf(err, TJ_E_IO, "%s: read error: %s", name,
			     strerror(errno));
	} else {
		rc = finish(r);
	}
	if (!is_stdin)
		fclose(f);
	return reader_done(r, rc);
}

/* ---- writer ------------------------------------------------------------ */

char *tj_edges_format_score(double score, char *buf)
{
	if (score == 1.0 || score == 0.0) /* labels: all 1; skip printf */
		memcpy(buf, score == 1.0 ? "1" : "0", 2);
	else
		snprintf(buf, TJ_SCORE_STRLEN, "%.6g", score);
	return buf;
}

int tj_edges_writer_open(struct tj_edges_writer *w, const char *path,
			 unsigned flags, char *const *inputs, size_t ninputs,
			 struct tj_err *err)
{
	memset(w, 0, sizeof(*w));
	int rc = tj_outfile_open(&w->out, path, flags, 0666, inputs, ninputs, err);
	if (rc < 0)
		return rc;
	w->path = w->out.path;
	if (!(w->f = tj_outfile_stream(&w->out, err))) {
		tj_outfile_abort(&w->out);
		return -TJ_E_NOMEM;
	}
	w->own = 1;
	w->header_pending = 1;
	return 0;
}

static int write_header(struct tj_edges_writer *w, struct tj_err *err)
{
	w->header_pending = 0;
	if (fputs("child,parent,score\n", w->f) == EOF)
		return tj_errf(err, TJ_E_IO, "%s: %s", w->path, strerror(errno));
	return 0;
}

int tj_edges_writer_put(struct tj_edges_writer *w, const struct tj_edge *e,
			struct tj_err *err)
{
	char c[TJ_MSGKEY_STRLEN];
	const char *why;
	int f = edge_fault(e, &why);
	if (f >= 0)
		return tj_errf(err, TJ_E_ARG, "%s: edge of child %s: %s: %s",
			       w->path, tj_msgkey_format(&e->child, c),
			       field_names[f], why);
	char line[2 * TJ_MSGKEY_STRLEN + TJ_SCORE_STRLEN + 4];
	size_t n = strlen(tj_msgkey_format(&e->child, line));
	line[n++] = ',';
	if (e->has_parent)
		n += strlen(tj_msgkey_format(&e->parent, line + n));
	line[n++] = ',';
	n += strlen(tj_edges_format_score(e->score, line + n));
	line[n++] = '\n';
	if (w->header_pending && write_header(w, err) < 0)
		return -TJ_E_IO;
	if (fwrite(line, 1, n, w->f) != n)
		return tj_errf(err, TJ_E_IO, "%s: %s", w->path,
			       strerror(errno));
	return 0;
}

int tj_edges_writer_close(struct tj_edges_writer *w, struct tj_err *err)
{
	if (!w->f)
		return 0;
	int rc = w->header_pending ? write_header(w, err) : 0;
	if (!w->own) {
		if (rc == 0 && (fflush(w->f) == EOF || ferror(w->f)))
			rc = tj_errf(err, TJ_E_IO, "%s: write error: %s", w->path,
				     strerror(errno));
	} else if (rc == 0) {
		rc = tj_outfile_commit(&w->out, err);
	} else {
		tj_outfile_abort(&w->out);
	}
	w->f = NULL;
	return rc;
}

void tj_edges_writer_abort(struct tj_edges_writer *w)
{
	if (!w->f)
		return;
	if (w->own)
		tj_outfile_abort(&w->out);
	else
		fflush(w->f);
	w->f = NULL;
}
