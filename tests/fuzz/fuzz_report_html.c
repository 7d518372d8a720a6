/* libFuzzer target for report.html: the input is a results folder's
 * results.json, then (after a NUL byte) a drill-down file for dataset
 * "d" and correlator "m".  Whatever they hold, the page is written or
 * refused with a message; a written page has exactly our one script and
 * no markup from the input (every name escaped). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bench/bench.h"

static char dir[64];

static void put(const char *name, const uint8_t *data, size_t size)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

/* the folder goes when the fuzzer exits */
static void cleanup(void)
{
	char p[128];
	static const char *const files[] = { "results.json", "drilldown/d--m.json",
					     "report.html", "drilldown", NULL };
	for (int i = 0; files[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		remove(p);
	}
	rmdir(dir);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		char p[80];
		strcpy(dir, "/tmp/tj-fuzz-report.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		snprintf(p, sizeof(p), "%s/drilldown", dir);
		mkdir(p, 0755);
		atexit(cleanup);
	}
	const uint8_t *nul = memchr(data, 0, size);
	size_t n1 = nul ? (size_t)(nul - data) : size;
	put("results.json", data, n1);
	put("drilldown/d--m.json", nul ? nul + 1 : data, nul ? size - n1 - 1 : 0);

	char p[128];
	snprintf(p, sizeof(p), "%s/report.html", dir);
	unlink(p);
	struct tj_err err = { 0 };
	if (bench_write_html(dir, &err) < 0) {
		if (err.msg[0] == '\0' || access(p, F_OK) == 0)
			abort();
		return 0;
	}
	FILE *f = fopen(p, "r");
	if (!f)
		abort();
	static char page[1 << 22];
	size_t len = fread(page, 1, sizeof(page) - 1, f);
	page[len] = '\0';
	fclose(f);
	if (count(page, "<script") != 1 || count(page, "</script") != 1 ||
	    count(page, "<style") != 1 || strstr(page, "<iframe") || strstr(page, "<img"))
		abort();
	return 0;
}
