/* libFuzzer target for the labels/edges CSV reader: any input is either
 * refused with a message or read into edges that keep every rule, and
 * what it read survives the writer and reads back the same.  And the
 * reader's two ways agree: lines without quotes or spaces are split by
 * hand, the rest by libcsv; the same input with a space before each
 * line (libcsv drops it, and takes every line) reads the same edges or
 * is refused the same way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/edges.h"

/* The input read through libcsv only: a space before each line's first
 * field, where a plain line has none.  -1 when the input does not suit
 * (quotes, spaces or CRs already, a BOM), else the parse's return. */
static int parse_by_libcsv(const uint8_t *data, size_t size, struct tj_edge_set *t)
{
	if ((size >= 1 && data[0] == 0xef) || memchr(data, '"', size) || memchr(data, ' ', size) ||
	    memchr(data, '\t', size) || memchr(data, '\r', size))
		return -1;
	char *b = malloc(2 * size + 1);
	if (!b)
		abort();
	size_t n = 0;
	for (size_t i = 0; i < size; i++) {
		if ((i == 0 || data[i - 1] == '\n') && data[i] != '\n')
			b[n++] = ' ';
		b[n++] = (char)data[i];
	}
	struct tj_err err = { 0 };
	int rc = tj_edges_parse(t, "fuzz.csv", b, n, &err);
	free(b);
	return rc < 0 ? -2 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	int rc = tj_edges_parse(&s, "fuzz.csv", (const char *)data, size, &err);
	struct tj_edge_set c;
	int rc2 = parse_by_libcsv(data, size, &c);
	if (rc2 != -1) {
		if ((rc < 0) != (rc2 < 0))
			abort();
		if (rc2 == 0) {
			if (c.n != s.n)
				abort();
			for (size_t i = 0; i < s.n; i++)
				if (!tj_msgkey_eq(&s.edges[i].child, &c.edges[i].child) ||
				    s.edges[i].has_parent != c.edges[i].has_parent ||
				    (s.edges[i].has_parent &&
				     !tj_msgkey_eq(&s.edges[i].parent, &c.edges[i].parent)) ||
				    s.edges[i].score != c.edges[i].score ||
				    s.lines[i] != c.lines[i])
					abort();
			tj_edges_free(&c);
		}
	}
	if (rc < 0) {
		if (err.msg[0] == '\0' || s.n != 0)
			abort();
		return 0;
	}
	/* Write what was read to memory and read it again. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	struct tj_edges_writer w = { .f = f, .own = 0, .path = "mem" };
	fputs("child,parent,score\n", f);
	for (size_t i = 0; i < s.n; i++) {
		const struct tj_edge *e = &s.edges[i];
		if (e->child.dir != TJ_DIR_OUT || !(e->score >= 0 && e->score <= 1))
			abort();
		if (tj_edges_writer_put(&w, e, &err) < 0)
			abort();
	}
	fclose(f);
	struct tj_edge_set t;
	if (tj_edges_parse(&t, "again.csv", buf, len, &err) < 0 || t.n != s.n)
		abort();
	for (size_t i = 0; i < s.n; i++)
		if (!tj_msgkey_eq(&s.edges[i].child, &t.edges[i].child) ||
		    s.edges[i].has_parent != t.edges[i].has_parent)
			abort();
	tj_edges_free(&t);
	tj_edges_free(&s);
	free(buf);
	return 0;
}
