/* report.html from a results folder: refused, naming the file, when
 * results.json is missing or not what bench writes (and then no page and
 * no temporary file is left); otherwise one row per result, names
 * escaped, failed runs shown as such, drill-downs drawn as waterfalls. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "bench/bench.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/tj-report-html.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *page(void)
{
	static char buf[1 << 16];
	char p[256];
	snprintf(p, sizeof(p), "%s/report.html", dir);
	FILE *f = fopen(p, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Only the files named are in dir. */
static int files_in_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void refused(const char *json, const char *want)
{
	struct tj_err err = { 0 };
	if (json)
		put("results.json", json);
	assert_true(bench_write_html(dir, &err) < 0);
	if (!strstr(err.msg, want) || !strstr(err.msg, "results.json"))
		fail_msg("message '%s', wanted '%s' and the file's name", err.msg, want);
	assert_null(page());
	assert_int_equal(files_in_dir(), json ? 1 : 0);
}

static void test_bad_results_refused(void **state)
{
	refused(NULL, "results.json");
	refused("", "line");
	refused("{\"results\": [", "line 1");
	refused("[]", "no results or datasets array");
	refused("{\"results\": {}, \"datasets\": []}", "no results or datasets array");
}

static const char results[] =
	"{\"tool\": {\"version\": \"0.1.0+t\", \"date_utc\": \"2026-12-07\", \"cpu\": \"c\"},"
	" \"datasets\": [{\"name\": \"a<b\", \"group\": \"synthetic\", \"load\": \"low\"},"
	"                {\"name\": \"d2\", \"group\": \"real\", \"load\": \"\"}],"
	" \"results\": ["
	"  {\"dataset\": \"a<b\", \"correlator\": \"m\", \"ok\": true, \"f1\": 0.5,"
	"   \"trace_accuracy\": 0.25, \"service_accuracy\": null, \"calls\": 10},"
	"  {\"dataset\": \"a<b\", \"correlator\": \"x\", \"ok\": false, \"error\": \"boom & <bad>\"},"
	"  {\"dataset\": \"d2\", \"correlator\": \"m\", \"ok\": true, \"f1\": 1}]}";

static const char drill[] =
	"{\"traces\":[{\"root\":\"1:1:in:0\",\"wrong\":1,"
	"\"got\":[{\"d\":0,\"t\":0,\"l\":10,\"svc\":\"front\",\"name\":\"serve :80\",\"key\":\"1:1:in:0\",\"wrong\":false},"
	"{\"d\":1,\"t\":2,\"l\":3,\"svc\":\"front\",\"name\":\"call b:81\",\"key\":\"1:2:out:0\",\"wrong\":true}],"
	"\"truth\":[{\"d\":0,\"t\":0,\"l\":10,\"svc\":\"front\",\"name\":\"serve :80\",\"key\":\"1:1:in:0\",\"wrong\":false}]}]}";

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_page(void **state)
{
	struct tj_err err = { 0 };
	char p[128];
	put("results.json", results);
	snprintf(p, sizeof(p), "%s/drilldown", dir);
	mkdir(p, 0755);
	put("drilldown/a<b--m.json", drill);
	assert_int_equal(bench_write_html(dir, &err), 0);
	const char *h = page();
	assert_non_null(h);
	assert_int_equal(count(h, "<tr class=\"result"), 3);
	assert_int_equal(count(h, "<tr class=\"result failed\">"), 1);
	assert_non_null(strstr(h, "failed: boom &amp; &lt;bad&gt;"));
	assert_non_null(strstr(h, "id=\"ds-a&lt;b\""));
	assert_null(strstr(h, "a<b"));
	assert_int_equal(count(h, "<svg class=\"waterfall\""), 2);
	assert_int_equal(count(h, "<rect class=\"bad\""), 1);
	assert_non_null(strstr(h, "<details class=\"drill\" open>"));
	assert_non_null(strstr(h, "No wrong trace to show")); /* d2 has none */
	assert_non_null(strstr(h, "<td data-v=\"0.500000\">50.0</td>"));
	assert_null(strstr(h, "http"));
	/* results.json, drilldown/, report.html: nothing else */
	assert_int_equal(files_in_dir(), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_results_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
