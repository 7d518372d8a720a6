/* libFuzzer target for the grid plan reader (bench --run/--collect/--job
 * read DIR/plan/jobs.tsv, which users and engines may edit): any bytes are
 * read as a plan or refused with a message, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bench/bench.h"

static char dir[64];

static void cleanup(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/plan/jobs.tsv", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/plan", dir);
	rmdir(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	if (!dir[0]) {
		atexit(cleanup);
		snprintf(dir, sizeof(dir), "/tmp/fuzz_plan.%ld", (long)getpid());
		mkdir(dir, 0700);
		snprintf(path, sizeof(path), "%s/plan", dir);
		mkdir(path, 0700);
	}
	snprintf(path, sizeof(path), "%s/plan/jobs.tsv", dir);
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	struct tj_err err = { 0 };
	size_t n = 0;
	if (bench_plan_check(dir, &n, &err) < 0 && !err.msg[0])
		abort(); /* a refusal always says why */
	return 0;
}
