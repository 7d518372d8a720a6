/* recorder-bench: capture's user side alone, without BPF: ring records as
 * the kernel side hands them over (one time-ordered run per CPU per
 * drain, the runs overlapping in time) go through the recorder (reorder
 * window, merge, evlog encoding) into a log, drained every 10 ms of event
 * time with a 20 ms window, as `tracejoin capture` does.
 *
 * Prints CPU nanoseconds per event (user + system, so other load on the
 * machine does not skew it): what capture's own process spends per event
 * at the rate of the drain, which on a machine the traced programs keep
 * busy comes off their throughput.
 *
 * usage: recorder-bench [EVENTS] [CPUS] [EVENTS_PER_SECOND] [LOG]
 * (default 5000000 events, 2 CPUs, 300000 events/s).  With LOG the log
 * is written there and kept (refused if it exists), so that two builds
 * of the recorder can be shown to write the same bytes for the same
 * record stream (bench/recorder-same-log.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "capture/recorder.h"
#include "lib/evlog.h"

#define DRAIN_NS 10000000ull
#define REORDER_NS 20000000ull

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long events = argc > 1 ? atol(argv[1]) : 5000000;
	int cpus = argc > 2 ? atoi(argv[2]) : 2;
	double rate = argc > 3 ? atof(argv[3]) : 300000;
	char tmp[] = "/tmp/tj-recorder-bench.XXXXXX";
	const char *keep = argc > 4 ? argv[4] : NULL;
	/* A kept LOG is never written over; the bench's own temporary is. */
	struct tj_recorder_opts o = { .out = keep ? keep : tmp, .force = !keep };
	struct tj_recorder *r;
	struct tj_err err = { 0 };
	struct tjc_event e;
	int fd;

	if (argc > 5 || events < 1 || cpus < 1 || cpus > 256 || !(rate > 0) ||
	    (keep && !*keep)) {
		fprintf(stderr, "usage: recorder-bench [EVENTS] [CPUS 1..256] "
			"[EVENTS_PER_SECOND] [LOG]\n");
		return 2;
	}
	if (!keep) {
		if ((fd = mkstemp(tmp)) < 0) {
			perror("recorder-bench: mkstemp");
			return 1;
		}
		close(fd);
	}
	o.header.node = 1;
	strcpy(o.header.hostname, "bench");
	if (tj_recorder_open(&r, &o, &err)) {
		fprintf(stderr, "recorder-bench: %s\n", err.msg);
		return 1;
	}
	memset(&e, 0, sizeof(e));
	e.family = 2;
	e.laddr[0] = e.raddr[0] = 127;
	e.laddr[3] = 1;
	e.raddr[3] = 2;

	double gap = 1e9 / rate; /* ns between events of the whole machine */
	long per_drain = (long)(DRAIN_NS / gap), done = 0;
	uint64_t now = 1000000000ull;
	uint64_t off[64][2] = { { 0 } };
	unsigned seed = 1;
	double t0 = cpu_seconds();
	if (per_drain < cpus)
		per_drain = cpus;
	while (done < events) {
		/* One drain: each CPU's run in time order, run after run. */
		long n = per_drain < events - done ? per_drain : events - done;
		for (int c = 0; c < cpus; c++)
			for (long k = c; k < n; k += cpus) {
				unsigned conn = (seed = seed * 1103515245u + 12345u) >> 26; /* 0..63 */
				int out = k & 1;
				e.ts_ns = now + (uint64_t)(k * gap);
				e.sock = 1000 + conn;
				e.pid = 100 + conn % 8;
				e.tid = 1000 + conn;
				e.fd = 3 + conn;
				e.lport = 40000 + conn;
				e.rport = 8080;
				e.type = out ? 3 : 4; /* SEND, RECV */
				e.bytes = 64 + conn;
				e.offset = off[conn][out];
				off[conn][out] += e.bytes;
				if (tj_recorder_add(r, &e, sizeof(e), &err)) {
					fprintf(stderr, "recorder-bench: %s\n", err.msg);
					return 1;
				}
			}
		done += n;
		now += DRAIN_NS;
		/* capture holds REORDER_NS measured from the drain. */
		if (now > REORDER_NS && tj_recorder_write_until(r, now - REORDER_NS, 0, &err)) {
			fprintf(stderr, "recorder-bench: %s\n", err.msg);
			return 1;
		}
	}
	if (tj_recorder_close(r, &err)) {
		fprintf(stderr, "recorder-bench: %s\n", err.msg);
		return 1;
	}
	double cpu = cpu_seconds() - t0;
	if (!keep)
		unlink(tmp);
	printf("recorder: %ld events from %d CPUs at %.0f events/s: %.0f ns/event of CPU, "
	       "%.2f Mev/s on one core, %.1f%% of a core at that rate\n",
	       events, cpus, rate, cpu * 1e9 / events, events / cpu / 1e6,
	       100.0 * cpu * rate / events);
	return 0;
}
