/* libFuzzer target for the labels/edges CSV reader: any input is either
 * refused with a message or read into edges that keep every rule, and
 * what it read survives the writer and reads back the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/edges.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	int rc = tj_edges_parse(&s, "fuzz.csv", (const char *)data, size, &err);
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
