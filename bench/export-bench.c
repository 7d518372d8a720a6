/* export-bench: speed and memory of `tracejoin export`, per format, on
 * datasets of growing size.
 *
 *   export-bench DATASET...      (each a folder with labels.csv; the
 *                                 labels stand in for a correlator's edges)
 *
 *   export-bench --in-memory DATASET...   (the in-memory model instead)
 *
 * For each dataset and format, a child process exports the dataset to
 * /dev/null as `tracejoin export` does: streamed (export/stream.h: the
 * replay, the join on connections in flight, the labels file read as the
 * calls need it, each trace written when nothing more can join it), or
 * with --in-memory through the span model (model.h) that holds every
 * span.  It prints the spans, spans per CPU second of the whole run (and
 * in memory: of building and of writing), and the child's peak RSS
 * (getrusage ru_maxrss, its own since it is a child).  Peaks that grow
 * with the dataset say memory is not flat. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "export/export.h"
#include "export/stream.h"
#include "lib/util.h"

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int streamed(const char *ds, int format)
{
	static const char *const names[] = { "otlp", "jaeger", "perfetto" };
	struct tj_err err = { 0 };
	struct tj_replay_opts ro = { 0 };
	struct tj_xstream_stats st;
	struct jw w;
	char lp[4096], *in = (char *)ds;
	snprintf(lp, sizeof(lp), "%s/labels.csv", ds);
	FILE *f = fopen("/dev/null", "w");
	if (!f || jw_open(&w, f)) {
		fprintf(stderr, "export-bench: /dev/null\n");
		return 1;
	}
	tj_malloc_keep_freed(); /* as tracejoin export does */
	double t0 = cpu_now();
	struct tj_xstream_opts o = { .format = format, .edges_path = lp, .replay = &ro };
	int rc = tj_xstream_export(&in, 1, &o, &w, &st, &err);
	if (rc == TJ_XSTREAM_GAVE_UP)
		fprintf(stderr, "export-bench: %s: not streamed: %s\n", ds, st.gave_up);
	if (rc || jw_close(&w, "/dev/null", &err)) {
		if (rc < 0)
			fprintf(stderr, "export-bench: %s\n", err.msg);
		return 1;
	}
	fclose(f);
	double t1 = cpu_now();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%-9s %10" PRIu64 " spans %8" PRIu64 " traces  streamed %6.2f s  "
	       "%6.2f Mspans/s overall  %7.1f MB peak  (held at most %" PRIu64 " spans, %" PRIu64
	       " connections; %" PRIu64 " names)\n",
	       names[format], st.spans, st.traces, t1 - t0,
	       t1 > t0 ? st.spans / (t1 - t0) / 1e6 : 0.0, ru.ru_maxrss / 1024.0,
	       st.peak_spans, st.peak_sockets, st.names);
	fflush(stdout);
	return 0;
}

static int in_memory(const char *ds, int format)
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
	int mem = argc > 1 && strcmp(argv[1], "--in-memory") == 0;
	if (argc < 2 + mem || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 + mem ? stderr : stdout,
			"usage: export-bench [--in-memory] DATASET...\n"
			"Exports each dataset in every format (labels as the edges) to\n"
			"/dev/null in a child process, streamed or (--in-memory) through\n"
			"the span model; prints spans/s (CPU) and the child's peak RSS.\n");
		return argc < 2 + mem ? 2 : 0;
	}
	int failed = 0;
	for (int i = 1 + mem; i < argc; i++) {
		printf("%s\n", argv[i]);
		for (int format = 0; format < 3; format++) {
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0)
				_exit(mem ? in_memory(argv[i], format) : streamed(argv[i], format));
			int st = 0;
			if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				failed = 1;
		}
	}
	return failed;
}
