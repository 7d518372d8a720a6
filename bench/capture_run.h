/* What the capture speed benchmarks (capture-overhead, tag-cost) share:
 * running `tracejoin capture` as a child until told to stop, finding the
 * tracejoin binary beside the bench's, and the median of the rounds. */
#ifndef TJ_BENCH_CAPTURE_RUN_H
#define TJ_BENCH_CAPTURE_RUN_H

#include <stddef.h>
#include <sys/types.h>

struct tj_capture_run {
	pid_t pid;
	int err_fd;
	char text[8192]; /* capture's stderr so far */
};

/* Run `TJ capture ARGS...` (args NULL-ended, "capture" not included) and
 * wait until it says it records.  0, or -1 with a message naming who. */
int tj_capture_run_start(struct tj_capture_run *c, const char *tj,
			 char *const args[], const char *who);
/* SIGINT it, keep the rest of its stderr in text, reap it.  0 if it
 * exited 0, else -1 with its stderr printed. */
int tj_capture_run_stop(struct tj_capture_run *c, const char *who);

/* tj (size len): the tracejoin to run, found beside the bench if empty;
 * then `tj capture --check [check_args]`: 0 capture can run, 77 it cannot
 * here (the benches' "skipped"), 1 the check failed. */
int tj_bench_capture_ready(char *tj, size_t len, const char *check_args);

/* build/bench/NAME -> build/tracejoin, into out.  0 or -1. */
int tj_bench_tracejoin_path(char *out, size_t len);

/* BPF run-time statistics (kernel.bpf_stats_enabled) for as long as the
 * returned fd is open: -1 if the kernel refuses. */
int tj_bench_bpf_stats_on(void);

/* The capture programs that see every send and receive, under either
 * hook set (NULL-terminated, for tj_bench_bpf_prog_stats). */
extern const char *const tj_bench_data_progs[];

/* Summed run_time_ns and run_cnt of the BPF programs process pid holds
 * whose names are in names (NULL-ended): the cost of those programs since
 * they were loaded.  0, or -1 (no such process, or no rights). */
int tj_bench_bpf_prog_stats(pid_t pid, const char *const names[], unsigned long long *run_ns,
			    unsigned long long *run_cnt);

/* Median of v[0..n-1] (sorts v). */
double tj_bench_median(double *v, int n);

#endif
