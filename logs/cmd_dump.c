/* tracejoin dump: the events of a log, one per line in the manner of
 * `perf script`, or as CSV (columns documented in lib/EVLOG.md, read back
 * by `tracejoin import --format csv`). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <csv.h>
#include "../cli/commands.h"
#include "../lib/evlog.h"
#include "../lib/symbolize.h"
#include "../lib/util.h"

static const char dump_usage[] =
	"usage: tracejoin dump [OPTIONS] FILE\n"
	"\n"
	"Print the events of an event log (FILE, or - for stdin), one per line.\n"
	"\n"
	"  --type T[,T...]  only events of these types (accept, connect, send,\n"
	"                   recv, close, shutdown, state, lost, socket)\n"
	"  --pid P          only events of process P\n"
	"  --node N         only events of node N\n"
	"  --sock S         only events of socket S\n"
	"  --limit N        stop after N events\n"
	"  --csv            CSV with a header line; the columns are\n"
	"                   ts_ns,node,pid,tid,fd,sock,type,family,laddr,lport,\n"
	"                   raddr,rport,bytes,offset,payload_hex,flags,arg,\n"
	"                   stack_id,tcp_seq (see lib/EVLOG.md)\n"
	"  --stacks         after each event with a call stack (capture --stack),\n"
	"                   its frames, symbolised from the ELF files the log's\n"
	"                   memory maps name (file+offset where no symbol is)\n"
	"  -h, --help       this help\n"
	"\n"
	"Text lines read: seconds.nanoseconds (node monotonic clock), node,\n"
	"pid/tid, fd, socket, type, local -> remote address, bytes, stream\n"
	"offset, then flags, arg, stack, seq and payload when set.\n"
	"\n"
	"Exit status: 0 ok, 1 the file cannot be read, 2 bad usage, 3 the log\n"
	"is damaged (every readable event is still printed, the damage is\n"
	"reported on stderr).\n";

void cmd_dump_help(void)
{
	fputs(dump_usage, stdout);
}

#define CSV_HEADER "ts_ns,node,pid,tid,fd,sock,type,family,laddr,lport," \
	"raddr,rport,bytes,offset,payload_hex,flags,arg,stack_id,tcp_seq"

struct filter {
	uint32_t types;   /* bit per type; 0 = all */
	int has_pid, has_node, has_sock;
	uint32_t pid, node;
	uint64_t sock;
	uint64_t limit;   /* 0 = none */
};

static int parse_types(const char *list, uint32_t *mask)
{
	char buf[256];
	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned ty = tj_event_type_parse(t);
		if (ty == TJ_EV_NONE)
			return -1;
		*mask |= 1u << ty;
	}
	return *mask ? 0 : -1;
}

static int wanted(const struct filter *f, const struct tj_event *ev)
{
	if (f->types && (ev->type >= 32 || !(f->types & (1u << ev->type))))
		return 0;
	if (f->has_pid && ev->pid != f->pid)
		return 0;
	if (f->has_node && ev->node != f->node)
		return 0;
	if (f->has_sock && ev->sock != f->sock)
		return 0;
	return 1;
}

static void put_type(FILE *out, unsigned type)
{
	if (type > TJ_EV_NONE && type < TJ_EV__COUNT)
		fputs(tj_event_type_name(type), out);
	else
		fprintf(out, "%u", type); /* a type newer than this build */
}

static const char *family_name(unsigned family)
{
	return family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : "";
}

/* A CSV field: our fields never hold a comma, quote or newline, but a
 * field that did would be quoted by libcsv. */
static void csv_field(FILE *out, const char *s)
{
	if (strpbrk(s, ",\"\r\n"))
		csv_fwrite(out, s, strlen(s));
	else
		fputs(s, out);
}

static void print_csv(FILE *out, const struct tj_event *ev)
{
	char la[TJ_ADDR_STRLEN], ra[TJ_ADDR_STRLEN];
	fprintf(out, "%" PRIu64 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRId32
		",%" PRIu64 ",", ev->ts_ns, ev->node, ev->pid, ev->tid, ev->fd,
		ev->sock);
	put_type(out, ev->type);
	if (ev->family == AF_INET || ev->family == AF_INET6 || ev->family == 0)
		fprintf(out, ",%s,", family_name(ev->family));
	else
		fprintf(out, ",%u,", ev->family);
	csv_field(out, tj_addr_format(ev->family, ev->laddr, la));
	fprintf(out, ",%u,", ev->lport);
	csv_field(out, tj_addr_format(ev->family, ev->raddr, ra));
	fprintf(out, ",%u,%" PRId64 ",%" PRIu64 ",", ev->rport, ev->bytes,
		ev->offset);
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < ev->payload_len; i++) {
		putc(hex[ev->payload[i] >> 4], out);
		putc(hex[ev->payload[i] & 15], out);
	}
	fprintf(out, ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 "\n",
		ev->flags, ev->arg, ev->stack_id, ev->tcp_seq);
}

static void print_endpoint(FILE *out, unsigned family, const uint8_t a[16],
			   unsigned port)
{
	char buf[TJ_ADDR_STRLEN];
	tj_addr_format(family, a, buf);
	if (family == AF_INET6)
		fprintf(out, "[%s]:%u", buf, port);
	else if (buf[0])
		fprintf(out, "%s:%u", buf, port);
	else
		fprintf(out, "-");
}

static void print_text(FILE *out, const struct tj_event *ev)
{
	fprintf(out, "%6" PRIu64 ".%09" PRIu64 " %3" PRIu32 " %7" PRIu32
		"/%-7" PRIu32 " fd %-4" PRId32 " sock %-9" PRIu64 " ",
		ev->ts_ns / 1000000000u, ev->ts_ns % 1000000000u, ev->node,
		ev->pid, ev->tid, ev->fd, ev->sock);
	char type[16];
	if (ev->type > TJ_EV_NONE && ev->type < TJ_EV__COUNT)
		snprintf(type, sizeof(type), "%s", tj_event_type_name(ev->type));
	else
		snprintf(type, sizeof(type), "type%u", ev->type);
	fprintf(out, "%-8s ", type);
	print_endpoint(out, ev->family, ev->laddr, ev->lport);
	fputs(" -> ", out);
	print_endpoint(out, ev->family, ev->raddr, ev->rport);
	fprintf(out, " bytes %" PRId64 " off %" PRIu64, ev->bytes, ev->offset);
	if (ev->flags) {
		fputs(" flags ", out);
		static const char *const names[] = { "fromstart", "error",
						     "partial", "udp", "inferred",
						     "seqoffset" };
		const char *sep = "";
		for (unsigned b = 0; b < 32; b++) {
			if (!(ev->flags & (1u << b)))
				continue;
			if (b < sizeof(names) / sizeof(names[0]))
				fprintf(out, "%s%s", sep, names[b]);
			else
				fprintf(out, "%s0x%x", sep, 1u << b);
			sep = "|";
		}
	}
	if (ev->arg)
		fprintf(out, " arg 0x%" PRIx32, ev->arg);
	if (ev->stack_id)
		fprintf(out, " stack %" PRIu32, ev->stack_id);
	if (ev->tcp_seq)
		fprintf(out, " seq %" PRIu32, ev->tcp_seq);
	if (ev->payload_len) {
		fputs(" payload \"", out);
		for (unsigned i = 0; i < ev->payload_len; i++) {
			unsigned c = ev->payload[i];
			if (c == '"' || c == '\\')
				fprintf(out, "\\%c", c);
			else if (c >= 0x20 && c < 0x7f)
				putc((int)c, out);
			else if (c == '\n')
				fputs("\\n", out);
			else if (c == '\r')
				fputs("\\r", out);
			else
				fprintf(out, "\\x%02x", c);
		}
		putc('"', out);
	}
	putc('\n', out);
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "pid", required_argument, NULL, 'p' },
		{ "node", required_argument, NULL, 'n' },
		{ "sock", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "csv", no_argument, NULL, 'c' },
		{ "stacks", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct filter f = { 0 };
	int csv = 0, stacks = 0;
	uint64_t v;
	opterr = 0;
	optind = 1;
	for (;;) {
		int c = getopt_long(argc, argv, ":", opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 't':
			if (parse_types(optarg, &f.types) < 0)
				return tj_usage("dump", "--type: unknown event type in '%s'",
						optarg);
			break;
		case 'p':
			if (tj_parse_u64(optarg, 0, UINT32_MAX, &v) < 0)
				return tj_usage("dump", "--pid: '%s' is not a process id",
						optarg);
			f.has_pid = 1;
			f.pid = (uint32_t)v;
			break;
		case 'n':
			if (tj_parse_u64(optarg, 0, UINT32_MAX, &v) < 0)
				return tj_usage("dump", "--node: '%s' is not a node id",
						optarg);
			f.has_node = 1;
			f.node = (uint32_t)v;
			break;
		case 's':
			if (tj_parse_u64(optarg, 0, UINT64_MAX, &f.sock) < 0)
				return tj_usage("dump", "--sock: '%s' is not a socket id",
						optarg);
			f.has_sock = 1;
			break;
		case 'l':
			if (tj_parse_u64(optarg, 1, UINT64_MAX, &f.limit) < 0)
				return tj_usage("dump", "--limit: '%s' is not a positive number",
						optarg);
			break;
		case 'c':
			csv = 1;
			break;
		case 'S':
			stacks = 1;
			break;
		case ':':
			return tj_usage("dump", "%s needs a value", argv[optind - 1]);
		default:
			return tj_usage("dump", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return tj_usage("dump", optind == argc ? "no FILE given"
						       : "one FILE at a time");
	const char *path = argv[optind];
	if (stacks && (csv || strcmp(path, "-") == 0))
		return tj_usage("dump", csv ? "--stacks and --csv exclude each other"
					    : "--stacks needs a file, not stdin");

	struct tj_evlog_reader *r;
	struct tj_err err = { 0 };
	int rc = tj_evlog_open(&r, path, &err);
	if (rc < 0) {
		fprintf(stderr, "tracejoin dump: %s\n", err.msg);
		return rc == -TJ_E_DAMAGED ? TJ_EXIT_DAMAGED : TJ_EXIT_FAIL;
	}
	struct tj_stacks st;
	struct tj_symbolizer *sym = NULL;
	tj_stacks_init(&st);
	if (stacks) {
		int have = tj_stacks_read(path, &st, &err);
		if (have < 0 || !(sym = tj_symbolizer_new())) {
			fprintf(stderr, "tracejoin dump: %s\n", have < 0 ? err.msg : "out of memory");
			tj_evlog_close_reader(r);
			return TJ_EXIT_FAIL;
		}
		if (have == 0)
			fprintf(stderr, "tracejoin dump: %s: no stacks in this log "
				"(captured without --stack, or cut short)\n", path);
	}
	FILE *out = stdout;
	static char obuf[1 << 16];
	setvbuf(out, obuf, _IOFBF, sizeof(obuf));
	if (csv)
		fputs(CSV_HEADER "\n", out);
	const struct tj_event *ev;
	uint64_t shown = 0;
	while ((rc = tj_evlog_next(r, &ev, &err)) == 1) {
		if (!wanted(&f, ev))
			continue;
		if (csv)
			print_csv(out, ev);
		else
			print_text(out, ev);
		if (sym && ev->stack_id)
			tj_print_stack(out, sym, &st, ev->pid, ev->stack_id, "    ");
		if (f.limit && ++shown == f.limit)
			break;
	}
	int status = TJ_EXIT_OK;
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(stderr, "tracejoin dump: writing the output: %s\n",
			strerror(errno));
		status = TJ_EXIT_FAIL;
	} else if (rc < 0) {
		fprintf(stderr, "tracejoin dump: %s\n", err.msg);
		status = TJ_EXIT_FAIL;
	} else if (rc == 0 && tj_evlog_damage(r)->damaged) {
		tj_evlog_report_damage("dump", r);
		status = TJ_EXIT_DAMAGED;
	}
	tj_evlog_close_reader(r);
	tj_symbolizer_free(sym);
	tj_stacks_free(&st);
	return status;
}
