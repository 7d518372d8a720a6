/* lib/outfile: an output lands whole or not at all, never replaces an
 * input or (without force) an existing file, and a failed write fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/outfile.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/tj-outfile.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *at(const char *name)
{
	static char p[8][256];
	static int i;
	char *s = p[i++ % 8];
	snprintf(s, 256, "%s/%s", dir, name);
	return s;
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void expect(const char *path, const char *text)
{
	char buf[256] = { 0 };
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

/* Nothing but the listed names in dir (no temporary file left). */
static int count_files(const char *d)
{
	DIR *dd = opendir(d);
	int n = 0;
	struct dirent *de;
	assert_non_null(dd);
	while ((de = readdir(dd)))
		n += de->d_name[0] != '.';
	closedir(dd);
	return n;
}

static void test_new_file_commit(void **state)
{
	struct tj_outfile o;
	struct tj_err err = { 0 };
	assert_int_equal(tj_outfile_open(&o, at("a.csv"), 0, 0644, NULL, 0, &err), 0);
	assert_int_equal(access(at("a.csv"), F_OK), -1); /* not before commit */
	FILE *f = tj_outfile_stream(&o, &err);
	assert_non_null(f);
	fputs("hello\n", f);
	assert_int_equal(tj_outfile_commit(&o, &err), 0);
	expect(at("a.csv"), "hello\n");
	struct stat st;
	assert_int_equal(stat(at("a.csv"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644 & ~022 & 0644);
	assert_int_equal(count_files(dir), 1);
}

static void test_abort_keeps_old(void **state)
{
	struct tj_outfile o;
	struct tj_err err = { 0 };
	put(at("b.csv"), "precious\n");
	assert_int_equal(tj_outfile_open(&o, at("b.csv"), 0, 0644, NULL, 0, &err),
			 -TJ_E_ARG);
	assert_non_null(strstr(err.msg, "--force"));
	assert_int_equal(tj_outfile_open(&o, at("b.csv"), TJ_OUT_FORCE, 0644,
					 NULL, 0, &err), 0);
	assert_int_equal(tj_outfile_write(&o, "new\n", 4, &err), 0);
	tj_outfile_abort(&o);
	expect(at("b.csv"), "precious\n");
	assert_int_equal(count_files(dir), 1);
	tj_outfile_abort(&o); /* twice is harmless */
}

static void test_input_refused(void **state)
{
	struct tj_outfile o;
	struct tj_err err = { 0 };
	put(at("in.evlog"), "capture\n");
	char spelled[300];
	snprintf(spelled, sizeof(spelled), "%s/./in.evlog", dir);
	char *inputs[] = { at("other"), spelled };
	assert_int_equal(tj_outfile_open(&o, at("in.evlog"), TJ_OUT_FORCE, 0644,
					 inputs, 2, &err), -TJ_E_ARG);
	assert_non_null(strstr(err.msg, "is also an input"));
	/* a hard link is the same file too */
	assert_int_equal(link(at("in.evlog"), at("hard")), 0);
	char *in2[] = { at("hard") };
	assert_int_equal(tj_outfile_open(&o, at("in.evlog"), TJ_OUT_FORCE, 0644,
					 in2, 1, &err), -TJ_E_ARG);
	/* a dataset folder protects its files */
	mkdir(at("ds"), 0755);
	put(at("ds/labels.csv"), "l\n");
	char *in3[] = { at("ds") };
	assert_int_equal(tj_outfile_open(&o, at("ds/labels.csv"), TJ_OUT_FORCE,
					 0644, in3, 1, &err), -TJ_E_ARG);
	expect(at("ds/labels.csv"), "l\n");
	expect(at("in.evlog"), "capture\n");
}

static void test_symlink(void **state)
{
	struct tj_outfile o;
	struct tj_err err = { 0 };
	put(at("target"), "old\n");
	assert_int_equal(symlink(at("target"), at("link")), 0);
	assert_int_equal(tj_outfile_open(&o, at("link"), 0, 0644, NULL, 0, &err),
			 -TJ_E_ARG);
	assert_int_equal(tj_outfile_open(&o, at("link"), TJ_OUT_FORCE, 0644,
					 NULL, 0, &err), 0);
	assert_int_equal(tj_outfile_write(&o, "new\n", 4, &err), 0);
	assert_int_equal(tj_outfile_commit(&o, &err), 0);
	struct stat st;
	assert_int_equal(lstat(at("link"), &st), 0);
	assert_true(S_ISLNK(st.st_mode)); /* the link stays a link */
	expect(at("target"), "new\n");
	assert_int_equal(symlink(at("nowhere"), at("dangling")), 0);
	assert_int_equal(tj_outfile_open(&o, at("dangling"), TJ_OUT_FORCE, 0644,
					 NULL, 0, &err), -TJ_E_ARG);
	assert_non_null(strstr(err.msg, "symlink to nothing"));
	assert_int_equal(access(at("nowhere"), F_OK), -1);
}

static void test_device_and_full(void **state)
{
	struct tj_outfile o;
	struct tj_err err = { 0 };
	assert_int_equal(tj_outfile_open(&o, "/dev/null", 0, 0644, NULL, 0, &err), 0);
	assert_int_equal(tj_outfile_write(&o, "x", 1, &err), 0);
	assert_int_equal(tj_outfile_commit(&o, &err), 0);
	assert_int_equal(tj_outfile_open(&o, "/dev/full", 0, 0644, NULL, 0, &err), 0);
	FILE *f = tj_outfile_stream(&o, &err);
	fputs("lost\n", f);
	assert_int_equal(tj_outfile_commit(&o, &err), -TJ_E_IO);
	assert_non_null(strstr(err.msg, "/dev/full"));
	assert_int_equal(tj_outfile_open(&o, dir, TJ_OUT_FORCE, 0644, NULL, 0, &err),
			 -TJ_E_ARG);
	assert_non_null(strstr(err.msg, "is a folder"));
}

static void test_lock(void **state)
{
	struct tj_outfile a, b;
	struct tj_err err = { 0 };
	assert_int_equal(tj_outfile_open(&a, at("c.evlog"), TJ_OUT_LOCK, 0600,
					 NULL, 0, &err), 0);
	assert_int_equal(access(at("c.evlog.partial"), F_OK), 0);
	assert_int_equal(tj_outfile_open(&b, at("c.evlog"), TJ_OUT_LOCK | TJ_OUT_FORCE,
					 0600, NULL, 0, &err), -TJ_E_ARG);
	assert_non_null(strstr(err.msg, "another process"));
	assert_int_equal(tj_outfile_write(&a, "log\n", 4, &err), 0);
	assert_int_equal(tj_outfile_commit(&a, &err), 0);
	expect(at("c.evlog"), "log\n");
	assert_int_equal(access(at("c.evlog.partial"), F_OK), -1);
	/* a dead run's partial log is kept unless forced */
	put(at("d.evlog.partial"), "salvage me\n");
	assert_int_equal(tj_outfile_open(&b, at("d.evlog"), TJ_OUT_LOCK, 0600,
					 NULL, 0, &err), -TJ_E_ARG);
	expect(at("d.evlog.partial"), "salvage me\n");
	assert_int_equal(tj_outfile_open(&b, at("d.evlog"), TJ_OUT_LOCK | TJ_OUT_FORCE,
					 0600, NULL, 0, &err), 0);
	tj_outfile_abort(&b);
	assert_int_equal(access(at("d.evlog.partial"), F_OK), -1);
}

static void test_outdir(void **state)
{
	struct tj_outdir d;
	struct tj_err err = { 0 };
	char p[300];
	/* new folder, parents made, appears only at commit */
	assert_int_equal(tj_outdir_open(&d, at("x/y/ds"), 0, NULL, 0, &err), 0);
	assert_int_equal(access(at("x/y/ds"), F_OK), -1);
	snprintf(p, sizeof(p), "%s/labels.csv", d.tmp);
	put(p, "new\n");
	assert_int_equal(tj_outdir_commit(&d, &err), 0);
	expect(at("x/y/ds/labels.csv"), "new\n");
	assert_int_equal(count_files(at("x/y")), 1);
	/* an existing dataset: refused without force; with force its
	 * dataset files are replaced, other files stay */
	put(at("x/y/ds/node-9.evlog"), "stale\n");
	put(at("x/y/ds/README"), "mine\n");
	assert_int_equal(tj_outdir_open(&d, at("x/y/ds"), 0, NULL, 0, &err), -TJ_E_ARG);
	assert_int_equal(tj_outdir_open(&d, at("x/y/ds"), TJ_OUT_FORCE, NULL, 0, &err), 0);
	snprintf(p, sizeof(p), "%s/labels.csv", d.tmp);
	put(p, "newer\n");
	snprintf(p, sizeof(p), "%s/manifest.json", d.tmp);
	put(p, "{}\n");
	assert_int_equal(tj_outdir_commit(&d, &err), 0);
	expect(at("x/y/ds/labels.csv"), "newer\n");
	expect(at("x/y/ds/README"), "mine\n");
	assert_int_equal(access(at("x/y/ds/node-9.evlog"), F_OK), -1);
	assert_int_equal(count_files(at("x/y/ds")), 3);
	/* abort leaves the old dataset whole */
	assert_int_equal(tj_outdir_open(&d, at("x/y/ds"), TJ_OUT_FORCE, NULL, 0, &err), 0);
	snprintf(p, sizeof(p), "%s/labels.csv", d.tmp);
	put(p, "half\n");
	tj_outdir_abort(&d);
	expect(at("x/y/ds/labels.csv"), "newer\n");
	assert_int_equal(count_files(at("x/y/ds")), 3);
	/* an input inside the output folder, or the folder itself */
	char *in[] = { at("x/y/ds/README") };
	assert_int_equal(tj_outdir_open(&d, at("x/y/ds"), TJ_OUT_FORCE, in, 1, &err),
			 -TJ_E_ARG);
	char *in2[] = { at("x/y/ds") };
	assert_int_equal(tj_outdir_open(&d, at("x/y/ds"), TJ_OUT_FORCE, in2, 1, &err),
			 -TJ_E_ARG);
	put(at("plain"), "file\n");
	assert_int_equal(tj_outdir_open(&d, at("plain"), TJ_OUT_FORCE, NULL, 0, &err),
			 -TJ_E_ARG);
}

int main(void)
{
	umask(022);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_file_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_keeps_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_and_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outdir, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
