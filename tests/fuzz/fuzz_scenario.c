/* libFuzzer target for the scenario spec parser: any input is refused
 * with a "FILE:LINE: reason" message or parsed into a spec that keeps the
 * parser's promises; small accepted specs are also simulated for a few
 * root requests, so the generator meets odd topologies too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "datasets/gen/gen.h"

static char dir[64];

static void cleanup(void)
{
	static const char *const names[] = { "labels.csv", "manifest.json" };
	char path[128];
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	for (int n = 1; n <= 65535; n++) { /* node ids the spec may use */
		snprintf(path, sizeof(path), "%s/node-%d.evlog", dir, n);
		unlink(path);
	}
	rmdir(dir);
}

static void check_spec(const struct gen_spec *s)
{
	if (s->nnodes < 1 || s->nservices < 1 || s->entry_svc < 0 ||
	    s->entry_svc >= s->nservices || s->services[s->entry_svc].neps < 1)
		abort();
	for (int i = 0; i < s->neps; i++)
		if (s->eps[i].first < 0 || s->eps[i].first + s->eps[i].n > s->nsteps)
			abort();
	for (int i = 0; i < s->nsteps; i++) {
		const struct gen_step *st = &s->steps[i];
		if (st->kind == GS_CALL && (st->svc < 0 || st->svc >= s->nservices))
			abort();
		if (st->kind == GS_PARALLEL && st->first + st->n > s->nsteps)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gen_spec *s = malloc(sizeof(*s));
	struct tj_err err = { 0 };
	if (!s)
		return 0;
	int rc = gen_spec_parse(s, "fuzz.scn", (const char *)data, size, &err);
	if (rc < 0) {
		if (strncmp(err.msg, "fuzz.scn:", 9) != 0)
			abort();
		free(s);
		return 0;
	}
	check_spec(s);
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/tj-fuzz-scenario.%d", (int)getpid());
		mkdir(dir, 0700);
		atexit(cleanup);
	}
	/* a few roots, at a rate that keeps the simulated span short */
	struct gen_opts o = { .seed = 1, .rate = 1000, .requests = 3, .dir = dir,
			      .force = 1, .max_events = 20000 };
	struct gen_stats st;
	struct tj_err e2 = { 0 };
	/* lossless: one label per call, less the pipelined calls written in
	 * the message of the call before them (none without pipelining) */
	int pipelined = 0;
	for (int i = 0; i < s->npolicies; i++)
		pipelined |= s->policies[i].pipelined;
	if (gen_run(s, &o, &st, &e2) == 0 && s->nodes[0].loss == 0 &&
	    (st.labels != st.calls - st.joined || (!pipelined && st.joined)))
		abort();
	free(s);
	return 0;
}
