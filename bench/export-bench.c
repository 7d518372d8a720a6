/* export-bench: speed and memory of `tracejoin export`, per format, on
 * datasets of growing size.
 *
 *   export-bench DATASET...      (each a folder with labels.csv; the
 *                                 labels stand in for a correlator's edges)
 *
 * For each dataset and format, a child process builds the span model
 * (replay, cross-node join, edges) and writes the whole export to
 * /dev/null.  It prints the spans, the CPU time of building and of
 * writing, spans per CPU second of the writing alone and of the whole
 * run, and the child's peak RSS (getrusage ru_maxrss, its own since it
 * is a child).  Peaks that grow with the dataset say memory is not flat. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "export/export.h"

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int one(const char *ds, int format)
{
	static const char *const names[] = { "otlp", "jaeger", "perfetto" };
	struct tj_err err = { 0 };
	struct tj_edge_set labels = { 0 };
	struct tj_xmodel m;
	struct jw w;
	char lp[4096], *in = (char *)ds;
	snprintf(lp, sizeof(lp), "%s/labels.csv", ds);
	double t0 = cpu_now();
	if (tj_edges_read(&labels, lp, &err)) {
		fprintf(stderr, "export-bench: %s\n", err.msg);
		return 1;
	}
	struct tj_xmodel_opts o = { .edges = &labels, .edges_name = lp };
	if (tj_xmodel_build(&m, &in, 1, &o, &err)) {
		fprintf(stderr, "export-bench: %s\n", err.msg);
		return 1;
	}
	double t1 = cpu_now();
	FILE *f = fopen("/dev/null", "w");
	if (!f || jw_open(&w, f)) {
		fprintf(stderr, "export-bench: /dev/null\n");
		return 1;
	}
	struct tj_export_sel sel = { .root = TJ_XSPAN_NONE };
	int rc = tj_export_model(&m, format, &sel, &w, &err);
	if (rc || jw_close(&w, "/dev/null", &err)) {
		fprintf(stderr, "export-bench: %s\n", err.msg);
		return 1;
	}
	fclose(f);
	double t2 = cpu_now();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%-9s %10zu spans %8zu traces  build %6.2f s  write %6.2f s  "
	       "%6.2f Mspans/s written  %6.2f Mspans/s overall  %7.1f MB peak\n",
	       names[format], sel.spans_out, sel.traces_out, t1 - t0, t2 - t1,
	       t2 > t1 ? sel.spans_out / (t2 - t1) / 1e6 : 0.0,
	       t2 > t0 ? sel.spans_out / (t2 - t0) / 1e6 : 0.0, ru.ru_maxrss / 1024.0);
	fflush(stdout);
	tj_xmodel_free(&m);
	tj_edges_free(&labels);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: export-bench DATASET...\n"
			"Builds and writes every export format of each dataset (labels as\n"
			"the edges) to /dev/null in a child process; prints spans/s (CPU)\n"
			"and the child's peak RSS.\n");
		return argc < 2 ? 2 : 0;
	}
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		printf("%s\n", argv[i]);
		for (int format = 0; format < 3; format++) {
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0)
				_exit(one(argv[i], format));
			int st = 0;
			if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				failed = 1;
		}
	}
	return failed;
}
