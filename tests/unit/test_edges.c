/* labels/edges CSV: what the reader accepts, what it refuses (with the
 * right line and column), and that writer output reads back the same. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/edges.h"

static int parse(struct tj_edge_set *s, const char *text, struct tj_err *err)
{
	return tj_edges_parse(s, "t.csv", text, strlen(text), err);
}

/* Parse must fail with a message that starts with want. */
static void refused(const char *text, const char *want)
{
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	int rc = parse(&s, text, &err);
	if (rc != -TJ_E_FORMAT || strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("input %s\n  rc %d, message '%s'\n  wanted '%s...'",
			 text, rc, err.msg, want);
	assert_int_equal(s.n, 0);
	assert_null(s.edges);
}

static void test_good_file(void **state)
{
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	const char *t = "child,parent,score\n"
			"2:17:out:0,2:9:in:0,1.0\n"
			"2:17:out:311,,1\n"
			"3:5:out:7,3:1:in:100,0.25\n";
	assert_int_equal(parse(&s, t, &err), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.edges[0].child.node, 2);
	assert_int_equal(s.edges[0].child.sock, 17);
	assert_int_equal(s.edges[0].child.dir, TJ_DIR_OUT);
	assert_int_equal(s.edges[0].has_parent, 1);
	assert_int_equal(s.edges[0].parent.sock, 9);
	assert_int_equal(s.edges[0].parent.dir, TJ_DIR_IN);
	assert_int_equal(s.edges[1].has_parent, 0);
	assert_int_equal(s.edges[1].child.offset, 311);
	assert_true(s.edges[2].score == 0.25);
	assert_int_equal(s.lines[0], 2);
	assert_int_equal(s.lines[2], 4);
	tj_edges_free(&s);
}

static void test_header_only_and_empty(void **state)
{
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	assert_int_equal(parse(&s, "child,parent,score\n", &err), 0);
	assert_int_equal(s.n, 0);
	tj_edges_free(&s);
	assert_int_equal(parse(&s, "child,parent,score", &err), 0);
	assert_int_equal(s.n, 0);
	tj_edges_free(&s);
	refused("", "t.csv: empty file");
	refused("\n\n  \n", "t.csv: empty file");
	refused("\xef\xbb\xbf", "t.csv: empty file");
}

static void test_line_ends_quotes_bom(void **state)
{
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	/* CRLF, quoted fields, no final newline, blank line, BOM. */
	const char *t = "\xef\xbb\xbf" "child,\"parent\",score\r\n"
			"\"1:2:out:3\",\"1:1:in:0\",\"0.5\"\r\n"
			"\r\n"
			"1:2:out:9,,1e-1";
	assert_int_equal(parse(&s, t, &err), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.edges[0].child.offset, 3);
	assert_true(s.edges[0].score == 0.5);
	assert_true(s.edges[1].score == 0.1);
	assert_int_equal(s.lines[1], 4);
	tj_edges_free(&s);
}

static void test_refusals_name_line_and_column(void **state)
{
	const char *h = "child,parent,score\n";
	char buf[512];
#define ROW(rows) (snprintf(buf, sizeof(buf), "%s%s", h, rows), buf)
	refused("child,parent\n1:2:out:0,,1\n", "t.csv:1: header must be");
	refused("kid,parent,score\n", "t.csv:1: header must be");
	refused(ROW("1:2:out:0,,1\n1:2:out:1,,1,extra\n"),
		"t.csv:3:14: 4 fields, expected 3");
	refused(ROW("1:2:out:0,1\n"), "t.csv:2: 2 fields, expected 3");
	refused(ROW("1:2:out:0,,1\n1:x:out:1,,1\n"), "t.csv:3:1: child:");
	refused(ROW("1:2:out:0,1:2:in,1\n"), "t.csv:2:11: parent:");
	refused(ROW("1:2:out:0,,1.5\n"), "t.csv:2:12: score:");
	refused(ROW("1:2:out:0,,-0.1\n"), "t.csv:2:12: score:");
	refused(ROW("1:2:out:0,,nan\n"), "t.csv:2:12: score:");
	refused(ROW("1:2:out:0,,inf\n"), "t.csv:2:12: score:");
	refused(ROW("1:2:out:0,,0x1p-1\n"), "t.csv:2:12: score:");
	refused(ROW("1:2:out:0,,\n"), "t.csv:2:12: score:");
	refused(ROW("1:2:out:0,,1\n\n1:2:out:0,1:1:in:0,1\n"),
		"t.csv:4:1: child '1:2:out:0' appears twice (lines 2 and 4)");
	refused(ROW("1:2:in:0,,1\n"), "t.csv:2:1: child: a child is a client");
	refused(ROW("1:2:out:0,1:3:out:0,1\n"), "t.csv:2:11: parent: a parent");
	refused(ROW("1:2:out:0,2:3:in:0,1\n"), "t.csv:2:11: parent: parent and child on different nodes");
	refused(ROW("1:2:out:0,,1\n\"1:2:out:1,,1\n"),
		"t.csv:3: quoted field not closed at the end of the line");
	refused(ROW("1:2:out:0,,1\n\"1:2:out:1,,1"),
		"t.csv:3: quoted field not closed at the end of the file");
	refused(ROW("1:2:o\"ut:0,,1\n"), "t.csv:2:6: malformed quoting");
	refused(ROW("\"1:2:out:0\"x,,1\n"), "t.csv:2:12: malformed quoting");
	refused(ROW("1:2:out:0,,1\r1:2:out:1,,1\n"),
		"t.csv:2:13: carriage return inside a line");
	refused("child,parent,score\n1:2:out:0\0,,1\n", "t.csv:2: 1 field");
#undef ROW
	/* A NUL inside a field (strlen would stop early, so pass the length). */
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	const char nul[] = "child,parent,score\n1:2:out:0\0x,,1\n";
	assert_int_equal(tj_edges_parse(&s, "t.csv", nul, sizeof(nul) - 1, &err),
			 -TJ_E_FORMAT);
	assert_string_equal(err.msg, "t.csv:2:1: child: NUL byte in field");
	/* An overlong line. */
	size_t n = 10000;
	char *big = malloc(n + 32);
	strcpy(big, "child,parent,score\n");
	memset(big + 19, '1', n);
	big[19 + n] = '\0';
	assert_int_equal(parse(&s, big, &err), -TJ_E_FORMAT);
	assert_string_equal(err.msg, "t.csv:2: line longer than 4096 bytes");
	free(big);
}

/* Plain lines are split by hand, lines with quotes or spaces by libcsv:
 * the same rows give the same edges, line numbers and refusals, mixed in
 * any order (a plain line after a libcsv one, the last without '\n'). */
static void test_plain_and_csv_lines_agree(void **state)
{
	const char *plain = "child,parent,score\n"
			    "1:2:out:0,1:1:in:0,0.5\n"
			    "1:2:out:9,,1\n"
			    "1:3:out:4,1:1:in:7,1e-1\n"
			    "\n"
			    "1:3:out:8,,0\n"
			    "2:3:out:8,2:1:in:0,0.25";
	const char *mixed = "child,\"parent\",score\n"
			    "1:2:out:0,1:1:in:0,0.5\n"
			    " 1:2:out:9 ,,1\n"
			    "\"1:3:out:4\",1:1:in:7,\"1e-1\"\r\n"
			    "  \n"
			    "1:3:out:8,,0\n"
			    "2:3:out:8,\t2:1:in:0,0.25";
	struct tj_edge_set a, b;
	struct tj_err err = { 0 };
	assert_int_equal(parse(&a, plain, &err), 0);
	assert_int_equal(parse(&b, mixed, &err), 0);
	assert_int_equal(a.n, 5);
	assert_int_equal(b.n, a.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_true(tj_msgkey_eq(&a.edges[i].child, &b.edges[i].child));
		assert_int_equal(a.edges[i].has_parent, b.edges[i].has_parent);
		if (a.edges[i].has_parent)
			assert_true(tj_msgkey_eq(&a.edges[i].parent, &b.edges[i].parent));
		assert_true(a.edges[i].score == b.edges[i].score);
		assert_int_equal(a.lines[i], b.lines[i]);
	}
	assert_int_equal(a.lines[3], 6);
	tj_edges_free(&a);
	tj_edges_free(&b);
	/* refusals on plain lines name the same column as on quoted ones */
	refused("child,parent,score\n1:2:out:0,,1\n1:2:out:1,,1,x\n", "t.csv:3:14: 4 fields");
	refused("child,parent,score\n\"1:2:out:0\",,1\n1:2:out:1,,1,x\n", "t.csv:3:14: 4 fields");
	refused("child,parent,score\n1:2:out:0,,1\n1:2:out:1,,\n", "t.csv:3:12: score:");
	refused("child,parent,score\n1:2:out:0,,\"1\"\n1:2:out:0,,1\n",
		"t.csv:3:1: child '1:2:out:0' appears twice (lines 2 and 3)");
}

static void test_error_line_after_many_rows(void **state)
{
	/* The line number stays right deep into a file and across the
	 * reader's 64 KiB blocks (tj_edges_read). */
	char path[] = "/tmp/tj-edges-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("child,parent,score\r\n", f);
	for (int i = 0; i < 5000; i++)
		fprintf(f, "1:%d:out:%d,1:7:in:%d,0.5\r\n", i, i * 10, i);
	fputs("1:9:out:0,1:7:in:0,2\r\n", f);
	fclose(f);
	struct tj_edge_set s;
	struct tj_err err = { 0 };
	assert_int_equal(tj_edges_read(&s, path, &err), -TJ_E_FORMAT);
	char want[128];
	snprintf(want, sizeof(want), "%s:5002:20: score:", path);
	assert_memory_equal(err.msg, want, strlen(want));
	unlink(path);
	assert_int_equal(tj_edges_read(&s, path, &err), -TJ_E_IO);
	assert_non_null(strstr(err.msg, path));
}

static void test_round_trip(void **state)
{
	char path[] = "/tmp/tj-edges-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct tj_edge_set in = { 0 }, out;
	struct tj_err err = { 0 };
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 300; i++) {
		struct tj_edge e = { 0 };
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		e.child.node = (uint32_t)(x >> 40);
		e.child.sock = i == 0 ? UINT64_MAX : x;
		e.child.dir = TJ_DIR_OUT;
		e.child.offset = (uint64_t)i * 977;
		e.has_parent = i % 3 != 0;
		e.parent.node = e.child.node;
		e.parent.sock = x >> 3;
		e.parent.dir = TJ_DIR_IN;
		e.parent.offset = i == 1 ? UINT64_MAX : (uint64_t)i;
		e.score = i == 2 ? 0.0 : (double)(i % 11) / 10.0;
		if (e.score > 1.0)
			e.score = 1.0;
		assert_int_equal(tj_edges_add(&in, &e), 0);
	}
	struct tj_edges_writer w;
	assert_int_equal(tj_edges_writer_open(&w, path, TJ_OUT_FORCE, NULL, 0, &err), 0);
	for (size_t i = 0; i < in.n; i++)
		assert_int_equal(tj_edges_writer_put(&w, &in.edges[i], &err), 0);
	assert_int_equal(tj_edges_writer_close(&w, &err), 0);
	assert_int_equal(tj_edges_read(&out, path, &err), 0);
	assert_int_equal(out.n, in.n);
	for (size_t i = 0; i < in.n; i++) {
		assert_true(tj_msgkey_eq(&in.edges[i].child, &out.edges[i].child));
		assert_int_equal(in.edges[i].has_parent, out.edges[i].has_parent);
		if (in.edges[i].has_parent)
			assert_true(tj_msgkey_eq(&in.edges[i].parent,
						 &out.edges[i].parent));
		assert_true(in.edges[i].score - out.edges[i].score < 1e-6 &&
			    out.edges[i].score - in.edges[i].score < 1e-6);
		assert_int_equal(out.lines[i], i + 2);
	}
	/* Compact scores. */
	FILE *f = fopen(path, "r");
	char line[256];
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "child,parent,score\n");
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, ",0\n"));
	fclose(f);
	/* The writer refuses what the reader would refuse, and abort
	 * leaves the earlier file as it was. */
	FILE *before = fopen(path, "r");
	char first_row[256];
	assert_non_null(before);
	assert_non_null(fgets(first_row, sizeof(first_row), before));
	assert_non_null(fgets(first_row, sizeof(first_row), before));
	fclose(before);
	assert_int_equal(tj_edges_writer_open(&w, path, 0, NULL, 0, &err), -TJ_E_ARG);
	assert_int_equal(tj_edges_writer_open(&w, path, TJ_OUT_FORCE, NULL, 0, &err), 0);
	struct tj_edge bad = in.edges[1];
	bad.score = 1.5;
	assert_int_equal(tj_edges_writer_put(&w, &bad, &err), -TJ_E_ARG);
	assert_non_null(strstr(err.msg, "score"));
	bad = in.edges[1];
	bad.parent = bad.child;
	bad.parent.dir = TJ_DIR_IN;
	bad.parent.node++;
	assert_int_equal(tj_edges_writer_put(&w, &bad, &err), -TJ_E_ARG);
	tj_edges_writer_abort(&w);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "child,parent,score\n");
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, first_row);
	fclose(f);
	unlink(path);
	tj_edges_free(&in);
	tj_edges_free(&out);
}

static void test_index_and_keymap(void **state)
{
	struct tj_edge_set s = { 0 };
	struct tj_keymap m;
	tj_keymap_init(&m);
	for (int i = 0; i < 1000; i++) {
		struct tj_edge e = { 0 };
		e.child.node = 1;
		e.child.sock = (uint64_t)(i % 17);
		e.child.offset = (uint64_t)i;
		e.child.dir = TJ_DIR_OUT;
		tj_edges_add(&s, &e);
	}
	size_t a = 0, b = 0;
	assert_int_equal(tj_edges_index(&m, &s, &a, &b), 0);
	assert_int_equal(m.len, 1000);
	struct tj_msgkey k = { .node = 1, .sock = 500 % 17, .offset = 500,
			       .dir = TJ_DIR_OUT };
	assert_int_equal(*tj_keymap_get(&m, &k), 500);
	k.dir = TJ_DIR_IN;
	assert_null(tj_keymap_get(&m, &k));
	assert_int_equal(tj_keymap_del(&m, &k), 0);
	/* deletion (backward shift): every other key goes, the rest are
	 * still found with their values, the gone ones are not */
	for (size_t i = 0; i < 1000; i += 2)
		assert_int_equal(tj_keymap_del(&m, &s.edges[i].child), 1);
	assert_int_equal(m.len, 500);
	for (size_t i = 0; i < 1000; i++) {
		size_t *v = tj_keymap_get(&m, &s.edges[i].child);
		if (i % 2)
			assert_true(v && *v == i);
		else
			assert_null(v);
	}
	assert_int_equal(tj_keymap_del(&m, &s.edges[0].child), 0);
	/* reserve: room at most half full, the keys still there */
	assert_int_equal(tj_keymap_reserve(&m, 4000), 0);
	assert_true(m.cap >= 8000);
	assert_int_equal(m.len, 500);
	assert_true(*tj_keymap_get(&m, &s.edges[999].child) == 999);
	tj_keymap_free(&m);
	s.edges[700].child = s.edges[3].child;
	assert_int_equal(tj_edges_index(&m, &s, &a, &b), -TJ_E_FORMAT);
	assert_int_equal(a, 3);
	assert_int_equal(b, 700);
	tj_keymap_free(&m);
	tj_edges_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_header_only_and_empty),
		cmocka_unit_test(test_line_ends_quotes_bom),
		cmocka_unit_test(test_refusals_name_line_and_column),
		cmocka_unit_test(test_plain_and_csv_lines_agree),
		cmocka_unit_test(test_error_line_after_many_rows),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_index_and_keymap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
