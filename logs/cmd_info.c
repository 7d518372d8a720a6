/* tracejoin info: what an event log holds (header, time span, counts,
 * drops, size) and whether it is whole.  --json for scripts. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <jansson.h>
#include "../cli/commands.h"
#include "../lib/evlog.h"
#include "../lib/util.h"
#include "../lib/u64map.h"
#include "../lib/listeners.h"

static const char info_usage[] =
	"usage: tracejoin info [--json] FILE...\n"
	"\n"
	"Summarise event logs (- reads stdin): format version, node, host,\n"
	"kernel, capture options, time span, events by type, sockets,\n"
	"processes and threads, drop counters, file size and bytes per event,\n"
	"capture's start-up scan (listening and open sockets) and the sockets\n"
	"open before capture by side (server, client, or unknown),\n"
	"and integrity: \"ok\", or where the damage starts and how many events\n"
	"were lost.\n"
	"\n"
	"  --json      one JSON array, an object per file, for scripts\n"
	"  -h, --help  this help\n"
	"\n"
	"Exit status: 0 every log whole, 1 a file cannot be read, 2 bad usage,\n"
	"3 a log is damaged (and none failed to open).\n";

void cmd_info_help(void)
{
	fputs(info_usage, stdout);
}

static const char *const cap_names[] = { "payload", "stacks", "preexisting",
					 "synthetic" };

struct summary {
	uint64_t events, by_type[256];
	uint64_t first_ts, last_ts;
	uint64_t payload_events;
	struct tj_u64map socks, pids, tids;
	uint64_t file_bytes;
	int file_size_known;
	/* Sockets open before capture: the start-up scan (LISTEN, SCAN) and
	 * the side each SOCKET's socket gets by it, as the replay gives it
	 * (replay/README.md "Roles"; the replay may still learn a server
	 * port from later accepts). */
	struct tj_listeners listeners;
	int scanned;
	uint64_t scan_open, scan_us;
	uint64_t pre_server, pre_client, pre_unknown;
};

static int summarise(struct tj_evlog_reader *r, struct summary *s,
		     struct tj_err *err)
{
	const struct tj_event *ev;
	int rc;
	while ((rc = tj_evlog_next(r, &ev, err)) == 1) {
		if (s->events == 0 || ev->ts_ns < s->first_ts)
			s->first_ts = ev->ts_ns;
		if (s->events == 0 || ev->ts_ns > s->last_ts)
			s->last_ts = ev->ts_ns;
		s->events++;
		s->by_type[ev->type]++;
		if (ev->payload_len)
			s->payload_events++;
		if (ev->type == TJ_EV_LISTEN && tj_listeners_add(&s->listeners, ev) < 0)
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", tj_evlog_path(r));
		if (ev->type == TJ_EV_SCAN) {
			s->scanned = 1;
			s->scan_open = ev->bytes > 0 ? (uint64_t)ev->bytes : 0;
			s->scan_us = ev->arg;
		}
		/* (a listening socket shut down is announced too: no peer) */
		if (ev->type == TJ_EV_SOCKET && ev->rport != 0) {
			if (tj_listeners_match(&s->listeners, ev->family, ev->laddr, ev->lport))
				s->pre_server++;
			else if (s->scanned)
				s->pre_client++;
			else
				s->pre_unknown++;
		}
		if (!tj_u64map_upsert(&s->socks, ev->sock, NULL) ||
		    (ev->pid != TJ_PID_UNKNOWN &&
		     !tj_u64map_upsert(&s->pids, ev->pid, NULL)) ||
		    (ev->tid != TJ_TID_UNKNOWN &&
		     !tj_u64map_upsert(&s->tids, (uint64_t)ev->pid << 32 | ev->tid,
				       NULL)))
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory",
				       tj_evlog_path(r));
	}
	return rc;
}

static void format_realtime(uint64_t ns, char *buf, size_t n)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, n, "?");
		return;
	}
	size_t k = strlen(buf);
	snprintf(buf + k, n - k, ".%09" PRIu64 "Z", ns % 1000000000u);
}

/* Wall-clock time of a monotonic timestamp, from the header's clock pair
 * (a hint only: never compared across nodes). */
static uint64_t to_realtime(const struct tj_evlog_header *h, uint64_t ts)
{
	return h->clock_real_ns + (ts - h->clock_mono_ns);
}

static void print_text(const struct tj_evlog_reader *r, const struct summary *s)
{
	const struct tj_evlog_header *h = tj_evlog_header(r);
	const struct tj_evlog_footer *f = tj_evlog_footer(r);
	const struct tj_evlog_damage *d = tj_evlog_damage(r);
	/* the header's text is the log's, maybe crafted: escaped */
	char safe[4 * sizeof(h->options) + 1];
	printf("%s:\n", tj_escape(safe, sizeof(safe), tj_evlog_path(r)));
	printf("  format      evlog %u.%u\n", h->version_major, h->version_minor);
	printf("  node        %" PRIu32 "\n", h->node);
	printf("  hostname    %s\n", h->hostname[0] ? tj_escape(safe, sizeof(safe), h->hostname) : "-");
	printf("  kernel      %s\n", h->kernel[0] ? tj_escape(safe, sizeof(safe), h->kernel) : "-");
	printf("  capture     ");
	const char *sep = "";
	for (unsigned b = 0; b < 32; b++) {
		if (!(h->capture_flags & (1u << b)))
			continue;
		if (b < sizeof(cap_names) / sizeof(cap_names[0]))
			printf("%s%s", sep, cap_names[b]);
		else
			printf("%s0x%x", sep, 1u << b);
		sep = ",";
	}
	printf("%s", *sep ? "" : "-");
	if (h->payload_max)
		printf(" (payload prefix %" PRIu32 " bytes)", h->payload_max);
	printf("\n");
	if (h->options[0])
		printf("  options     %s\n", tj_escape(safe, sizeof(safe), h->options));
	char when[64];
	format_realtime(h->clock_real_ns, when, sizeof(when));
	if (h->clock_real_ns)
		printf("  clocks      monotonic %" PRIu64 " ns = realtime %s\n",
		       h->clock_mono_ns, when);
	else
		printf("  clocks      not recorded\n");
	if (s->events) {
		double span = (double)(s->last_ts - s->first_ts) / 1e9;
		printf("  time span   %" PRIu64 ".%09" PRIu64 " .. %" PRIu64 ".%09"
		       PRIu64 " (%.3f s)\n", s->first_ts / 1000000000u,
		       s->first_ts % 1000000000u, s->last_ts / 1000000000u,
		       s->last_ts % 1000000000u, span);
		if (h->clock_real_ns) {
			char a[64], b[64];
			format_realtime(to_realtime(h, s->first_ts), a, sizeof(a));
			format_realtime(to_realtime(h, s->last_ts), b, sizeof(b));
			printf("  wall clock  %s .. %s\n", a, b);
		}
	} else {
		printf("  time span   - (no events)\n");
	}
	printf("  events      %" PRIu64, s->events);
	if (f && f->events != s->events)
		printf(" (footer counts %" PRIu64 ")", f->events);
	printf("\n");
	for (unsigned t = 0; t < 256; t++)
		if (s->by_type[t]) {
			if (t > TJ_EV_NONE && t < TJ_EV__COUNT)
				printf("    %-10s %" PRIu64 "\n", tj_event_type_name(t),
				       s->by_type[t]);
			else
				printf("    type %-5u %" PRIu64 "\n", t, s->by_type[t]);
		}
	if (s->payload_events)
		printf("  payloads    %" PRIu64 " events carry a prefix\n",
		       s->payload_events);
	printf("  sockets     %zu\n", s->socks.len);
	if (s->scanned)
		printf("  start-up    %zu listening, %" PRIu64 " open TCP sockets (scan %.1f ms)\n",
		       s->listeners.n, s->scan_open, s->scan_us / 1e3);
	if (s->pre_server + s->pre_client + s->pre_unknown)
		printf("  mid-stream  %" PRIu64 " sockets open before capture: %" PRIu64
		       " server side, %" PRIu64 " client side, %" PRIu64 " side unknown\n",
		       s->pre_server + s->pre_client + s->pre_unknown, s->pre_server,
		       s->pre_client, s->pre_unknown);
	printf("  processes   %zu\n", s->pids.len);
	printf("  threads     %zu\n", s->tids.len);
	uint64_t drops[TJ_DROP__COUNT];
	if (tj_evlog_drops(r, drops)) {
		printf("  drops      ");
		for (int i = 0; i < TJ_DROP__COUNT; i++)
			printf(" %s %" PRIu64, tj_drop_names[i], drops[i]);
		printf("%s\n", f ? "" : " (from the last stats block: no footer)");
	} else {
		printf("  drops       unknown (no footer)\n");
	}
	printf("  blocks      %" PRIu64 " read whole", tj_evlog_blocks_read(r));
	if (d->blocks_skipped)
		printf(", %" PRIu64 " lost", d->blocks_skipped);
	printf("\n");
	if (s->file_size_known) {
		printf("  file size   %" PRIu64 " bytes", s->file_bytes);
		if (s->events)
			printf(", %.2f bytes/event", (double)s->file_bytes /
						     (double)s->events);
		printf("\n");
	}
	if (!d->damaged)
		printf("  integrity   ok\n");
	else
	{
		char what[4 * sizeof(d->what)], lost[64];
		printf("  integrity   DAMAGED from offset %" PRIu64 ": %s%s\n", d->offset,
		       tj_escape(what, sizeof(what), d->what), tj_evlog_damage_lost(d, lost));
	}
}

static json_t *to_json(const struct tj_evlog_reader *r, const struct summary *s)
{
	const struct tj_evlog_header *h = tj_evlog_header(r);
	const struct tj_evlog_footer *f = tj_evlog_footer(r);
	const struct tj_evlog_damage *d = tj_evlog_damage(r);
	char ver[16];
	snprintf(ver, sizeof(ver), "%u.%u", h->version_major, h->version_minor);
	json_t *o = json_object();
	json_object_set_new(o, "path", json_string(tj_evlog_path(r)));
	json_object_set_new(o, "version", json_string(ver));
	json_object_set_new(o, "node", json_integer(h->node));
	json_object_set_new(o, "hostname", json_string(h->hostname));
	json_object_set_new(o, "kernel", json_string(h->kernel));
	json_t *caps = json_array();
	for (unsigned b = 0; b < sizeof(cap_names) / sizeof(cap_names[0]); b++)
		if (h->capture_flags & (1u << b))
			json_array_append_new(caps, json_string(cap_names[b]));
	json_object_set_new(o, "capture", caps);
	json_object_set_new(o, "capture_flags", json_integer(h->capture_flags));
	json_object_set_new(o, "payload_max", json_integer(h->payload_max));
	json_object_set_new(o, "options", json_string(h->options));
	/* Nanosecond counts fit json_int_t (int64) until the year 2262. */
	json_object_set_new(o, "clock_mono_ns", json_integer((json_int_t)h->clock_mono_ns));
	json_object_set_new(o, "clock_real_ns", json_integer((json_int_t)h->clock_real_ns));
	json_object_set_new(o, "events", json_integer((json_int_t)s->events));
	if (s->events) {
		json_object_set_new(o, "first_ts", json_integer((json_int_t)s->first_ts));
		json_object_set_new(o, "last_ts", json_integer((json_int_t)s->last_ts));
		json_object_set_new(o, "duration_ns",
				    json_integer((json_int_t)(s->last_ts - s->first_ts)));
	} else {
		json_object_set_new(o, "first_ts", json_null());
		json_object_set_new(o, "last_ts", json_null());
		json_object_set_new(o, "duration_ns", json_null());
	}
	json_t *bt = json_object();
	for (unsigned t = 0; t < 256; t++)
		if (s->by_type[t]) {
			char name[16];
			if (t > TJ_EV_NONE && t < TJ_EV__COUNT)
				snprintf(name, sizeof(name), "%s", tj_event_type_name(t));
			else
				snprintf(name, sizeof(name), "type%u", t);
			json_object_set_new(bt, name, json_integer((json_int_t)s->by_type[t]));
		}
	json_object_set_new(o, "events_by_type", bt);
	json_object_set_new(o, "payload_events", json_integer((json_int_t)s->payload_events));
	json_object_set_new(o, "sockets", json_integer((json_int_t)s->socks.len));
	if (s->scanned) {
		json_t *sc = json_object();
		json_object_set_new(sc, "listening", json_integer((json_int_t)s->listeners.n));
		json_object_set_new(sc, "open", json_integer((json_int_t)s->scan_open));
		json_object_set_new(sc, "us", json_integer((json_int_t)s->scan_us));
		json_object_set_new(o, "startup_scan", sc);
	}
	json_t *pre = json_object();
	json_object_set_new(pre, "server", json_integer((json_int_t)s->pre_server));
	json_object_set_new(pre, "client", json_integer((json_int_t)s->pre_client));
	json_object_set_new(pre, "unknown", json_integer((json_int_t)s->pre_unknown));
	json_object_set_new(o, "midstream_sockets", pre);
	json_object_set_new(o, "processes", json_integer((json_int_t)s->pids.len));
	json_object_set_new(o, "threads", json_integer((json_int_t)s->tids.len));
	uint64_t drops[TJ_DROP__COUNT];
	if (tj_evlog_drops(r, drops)) {
		json_t *dr = json_object();
		for (int i = 0; i < TJ_DROP__COUNT; i++)
			json_object_set_new(dr, tj_drop_names[i], json_integer((json_int_t)drops[i]));
		json_object_set_new(o, "drops", dr);
	} else {
		json_object_set_new(o, "drops", json_null());
	}
	json_object_set_new(o, "footer", json_boolean(f != NULL));
	json_object_set_new(o, "blocks", json_integer((json_int_t)tj_evlog_blocks_read(r)));
	if (s->file_size_known) {
		json_object_set_new(o, "file_bytes", json_integer((json_int_t)s->file_bytes));
		json_object_set_new(o, "bytes_per_event",
				    s->events ? json_real((double)s->file_bytes / (double)s->events)
					      : json_null());
	}
	json_object_set_new(o, "integrity", json_string(d->damaged ? "damaged" : "ok"));
	if (d->damaged) {
		json_t *dm = json_object();
		json_object_set_new(dm, "offset", json_integer((json_int_t)d->offset));
		json_object_set_new(dm, "what", json_string(d->what));
		json_object_set_new(dm, "events_lost", json_integer((json_int_t)d->events_lost));
		json_object_set_new(dm, "lost_exact", json_boolean(d->lost_known));
		json_object_set_new(dm, "blocks_lost", json_integer((json_int_t)d->blocks_skipped));
		json_object_set_new(o, "damage", dm);
	}
	return o;
}

/* One file: print (or add to arr) its summary; returns its exit code. */
static int info_one(const char *path, json_t *arr)
{
	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	int rc = tj_evlog_open(&r, path, &err);
	if (rc < 0) {
		fprintf(stderr, "tracejoin info: %s\n", err.msg);
		if (arr) {
			json_t *o = json_object();
			json_object_set_new(o, "path", json_string(path));
			json_object_set_new(o, "error", json_string(err.msg));
			json_object_set_new(o, "integrity",
					    json_string(rc == -TJ_E_DAMAGED ? "damaged" : "unreadable"));
			json_array_append_new(arr, o);
		}
		return rc == -TJ_E_DAMAGED ? TJ_EXIT_DAMAGED : TJ_EXIT_FAIL;
	}
	struct summary *s = calloc(1, sizeof(*s));
	if (!s) {
		tj_evlog_close_reader(r);
		fprintf(stderr, "tracejoin info: %s: out of memory\n", path);
		return TJ_EXIT_FAIL;
	}
	tj_u64map_init(&s->socks);
	tj_u64map_init(&s->pids);
	tj_u64map_init(&s->tids);
	rc = summarise(r, s, &err);
	int status = TJ_EXIT_OK;
	if (rc < 0) {
		fprintf(stderr, "tracejoin info: %s\n", err.msg);
		status = TJ_EXIT_FAIL;
	} else {
		struct stat st;
		if (strcmp(path, "-") != 0 && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			s->file_bytes = (uint64_t)st.st_size;
			s->file_size_known = 1;
		} else if (strcmp(path, "-") == 0) {
			s->file_bytes = tj_evlog_bytes_read(r);
			s->file_size_known = 1;
		}
		if (arr)
			json_array_append_new(arr, to_json(r, s));
		else
			print_text(r, s);
		if (tj_evlog_damage(r)->damaged) {
			tj_evlog_report_damage("info", r);
			status = TJ_EXIT_DAMAGED;
		}
	}
	tj_u64map_free(&s->socks);
	tj_listeners_free(&s->listeners);
	tj_u64map_free(&s->pids);
	tj_u64map_free(&s->tids);
	free(s);
	tj_evlog_close_reader(r);
	return status;
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0;
	opterr = 0;
	optind = 1;
	for (;;) {
		int c = getopt_long(argc, argv, ":", opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'j':
			json = 1;
			break;
		case ':':
			return tj_usage("info", "%s takes no value", argv[optind - 1]);
		default:
			return tj_usage("info", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc)
		return tj_usage("info", "no FILE given");
	json_t *arr = json ? json_array() : NULL;
	int failed = 0, damaged = 0;
	for (int i = optind; i < argc; i++) {
		if (!json && i > optind)
			printf("\n");
		int st = info_one(argv[i], arr);
		failed |= st == TJ_EXIT_FAIL;
		damaged |= st == TJ_EXIT_DAMAGED;
	}
	if (arr) {
		json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
		json_decref(arr);
	}
	if (fflush(stdout) != 0) {
		perror("tracejoin info: writing the output");
		return TJ_EXIT_FAIL;
	}
	return failed ? TJ_EXIT_FAIL : damaged ? TJ_EXIT_DAMAGED : TJ_EXIT_OK;
}
