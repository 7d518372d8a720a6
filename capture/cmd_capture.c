/* tracejoin capture: record this machine's TCP socket events with eBPF. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include "../cli/commands.h"
#include "../lib/error.h"
#include "../lib/util.h"
#include "../lib/evlog.h"
#include <bpf/libbpf.h>
#include "loader.h"
#include "recorder.h"
#include "sockscan.h"
#include "tag.h"

#define CMD "capture"
#define MAX_PIDS 64
#define DRAIN_MS 10            /* the ring is drained this often */
#define REORDER_NS 20000000ull /* events are held this long to sort them */
#define FLUSH_NS 1000000000ull /* blocks reach the disk at least this often */
#define RING_BYTES (16u << 20)
#define CGROUP2_MAGIC 0x63677270

void cmd_capture_help(void)
{
	printf(
"usage: tracejoin capture -o FILE [options] [-- COMMAND [ARGS...]]\n"
"\n"
"Record every TCP socket syscall of this machine (accept, connect, send,\n"
"recv, close, shutdown, TCP state changes) into an evlog, with eBPF.\n"
"Needs root (CAP_BPF and CAP_PERFMON) and a kernel with BTF.  Stops on\n"
"SIGINT/SIGTERM, after --duration, or when COMMAND exits, and always\n"
"leaves a complete log.\n"
"\n"
"options:\n"
"  -o, --output FILE  the evlog to write (mode 0600); with --netns a folder.\n"
"                     It is FILE.partial, locked, until capture ends\n"
"      --node ID      node id recorded in the log (default: from the host\n"
"                     name: its trailing number, e.g. node-3 -> 3, or else a\n"
"                     hash of the name in 0..999999)\n"
"      --pid P        only process P (may be given up to %d times)\n"
"      --cgroup PATH  only processes in this cgroup v2 folder\n"
"      --port N       only sockets with local or remote port N\n"
"      --duration S   stop after S seconds (decimals allowed)\n"
"      --payload N    keep the first N <= %d bytes of each send/recv (across\n"
"                     its iovecs: the message, not its first buffer)\n"
"      --netns        one log per network namespace, FOLDER/node-ID.evlog,\n"
"                     ID the namespace's inode number (ls -L -i /proc/PID/ns/net)\n"
"      --force        overwrite existing logs\n"
"      --hooks HOW    where capture hooks in: sock (socket-layer tp_btf\n"
"                     tracepoints and no syscall tracepoint: cheaper; an\n"
"                     accept is seen at the socket's first use), syscalls\n"
"                     (syscall tracepoints: accept when accept returns, every\n"
"                     close of a dup'ed fd, shutdowns that send no FIN), or\n"
"                     auto (the default: sock where the kernel has it)\n"
"      --stack[=WHAT] record the call stack of each send, recv, connect and\n"
"                     accept: WHAT is user (the default), kernel or both;\n"
"                     the stacks and the processes' memory maps go in the\n"
"                     log (tracejoin dump --stacks shows them symbolised)\n"
"      --ring-kb N    each CPU's ring buffer in KiB: a power of two >= 4\n"
"                     (default: %u KiB shared out among the CPUs, at least\n"
"                     1024 each); larger rides out longer bursts.  Each\n"
"                     CPU's lane (sends and receives read in place) holds\n"
"                     a quarter of it, at most 4096 records\n"
"      --tag          carry each connection's origin (this node, the socket)\n"
"                     in a TCP option on its SYN, and record the origin of\n"
"                     every connection accepted here, so that calls join\n"
"                     across NAT (a virtual IP, a load balancer); needs a\n"
"                     cgroup v2 mount and Linux 5.10+ (capture/README.md)\n"
"      --check        only check that capture can run here (with --hooks:\n"
"                     those hooks; with --tag: tagging too): exit 0, or 77\n"
"                     with the reason when this machine cannot\n"
"  -v, --verbose      show libbpf's messages (the verifier log on failure)\n"
"  -- COMMAND ARGS    run COMMAND and trace it and its children until it exits\n"
"\n"
"Sockets open before capture starts are recorded from their first event,\n"
"with offsets that are TCP sequence numbers (flag seq_offset), so that\n"
"both ends of a connection name its messages alike.  At start capture\n"
"lists the listening TCP sockets of every network namespace, or with\n"
"--pid of those processes' namespaces, by netlink sock_diag, into each\n"
"log ('listen' and 'scan' events; none with -- COMMAND): the replay tells\n"
"by them which end of an already open connection is the server.  Lost\n"
"events are counted in the log's footer and marked by 'lost' events.\n",
		MAX_PIDS, TJ_PAYLOAD_MAX, RING_BYTES >> 10);
}

struct opts {
	const char *out;
	int node_set;
	uint32_t node;
	uint32_t pids[MAX_PIDS];
	int npids;
	const char *cgroup;
	uint16_t port;
	double duration;
	unsigned payload;
	int per_netns;
	int force;
	int check;
	int verbose;
	unsigned ring_kb;  /* 0 = RING_BYTES */
	unsigned stack;    /* TJC_STACK_* bits, 0 = no stacks */
	int hooks;         /* TJC_HOOKS_*, -1 = auto */
	int tag;           /* --tag */
	char **command;   /* NULL = none */
};

/* RING_BYTES in all, a power of two per CPU, at least 1 MiB each. */
static size_t default_ring_bytes(void)
{
	int ncpus = libbpf_num_possible_cpus();
	size_t per = RING_BYTES;

	while (ncpus > 1 && per > (1u << 20) && per * (size_t)ncpus > RING_BYTES)
		per /= 2;
	return per;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_NODE = 256, O_PID, O_CGROUP, O_PORT, O_DURATION, O_PAYLOAD,
	       O_NETNS, O_FORCE, O_CHECK, O_RING, O_STACK, O_HOOKS, O_TAG };
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "node", required_argument, NULL, O_NODE },
		{ "pid", required_argument, NULL, O_PID },
		{ "cgroup", required_argument, NULL, O_CGROUP },
		{ "port", required_argument, NULL, O_PORT },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "payload", required_argument, NULL, O_PAYLOAD },
		{ "netns", no_argument, NULL, O_NETNS },
		{ "force", no_argument, NULL, O_FORCE },
		{ "check", no_argument, NULL, O_CHECK },
		{ "ring-kb", required_argument, NULL, O_RING },
		{ "stack", optional_argument, NULL, O_STACK },
		{ "hooks", required_argument, NULL, O_HOOKS },
		{ "tag", no_argument, NULL, O_TAG },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	char *end;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:o:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->out = optarg; break;
		case O_NODE:
			if (tj_parse_u64(optarg, 0, UINT32_MAX, &v))
				return tj_usage(CMD, "--node %s: not a node id (0..%u)", optarg, UINT32_MAX);
			o->node = v;
			o->node_set = 1;
			break;
		case O_PID:
			if (tj_parse_u64(optarg, 1, INT_MAX, &v))
				return tj_usage(CMD, "--pid %s: not a process id", optarg);
			if (o->npids == MAX_PIDS)
				return tj_usage(CMD, "--pid: at most %d processes", MAX_PIDS);
			o->pids[o->npids++] = v;
			break;
		case O_CGROUP: o->cgroup = optarg; break;
		case O_PORT:
			if (tj_parse_u64(optarg, 1, 65535, &v))
				return tj_usage(CMD, "--port %s: not a port (1..65535)", optarg);
			o->port = v;
			break;
		case O_DURATION:
			errno = 0;
			o->duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->duration > 0) || o->duration > 1e9)
				return tj_usage(CMD, "--duration %s: not a positive number of seconds", optarg);
			break;
		case O_PAYLOAD:
			if (tj_parse_u64(optarg, 0, TJ_PAYLOAD_MAX, &v))
				return tj_usage(CMD, "--payload %s: not a byte count (0..%d)", optarg, TJ_PAYLOAD_MAX);
			o->payload = v;
			break;
		case O_NETNS: o->per_netns = 1; break;
		case O_FORCE: o->force = 1; break;
		case O_CHECK: o->check = 1; break;
		case O_TAG: o->tag = 1; break;
		case O_RING:
			if (tj_parse_u64(optarg, 0, 1u << 22, &v) || v < 4 || (v & (v - 1)))
				return tj_usage(CMD, "--ring-kb %s: not a power of two from 4 to %u",
						optarg, 1u << 22);
			o->ring_kb = v;
			break;
		case O_STACK:
			if (!optarg || strcmp(optarg, "user") == 0)
				o->stack = TJC_STACK_USER;
			else if (strcmp(optarg, "kernel") == 0)
				o->stack = TJC_STACK_KERNEL;
			else if (strcmp(optarg, "both") == 0)
				o->stack = TJC_STACK_USER | TJC_STACK_KERNEL;
			else
				return tj_usage(CMD, "--stack=%s: not user, kernel or both", optarg);
			break;
		case O_HOOKS:
			if (strcmp(optarg, "sock") == 0)
				o->hooks = TJC_HOOKS_SOCK;
			else if (strcmp(optarg, "syscalls") == 0)
				o->hooks = TJC_HOOKS_SYSCALLS;
			else if (strcmp(optarg, "auto") == 0)
				o->hooks = -1;
			else
				return tj_usage(CMD, "--hooks %s: not sock, syscalls or auto", optarg);
			break;
		case 'v': o->verbose = 1; break;
		case ':': return tj_usage(CMD, "option %s needs a value", argv[optind - 1]);
		default: return tj_usage(CMD, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (strcmp(argv[optind - 1], "--") != 0)
			return tj_usage(CMD, "unexpected argument '%s' (a command to trace goes after --)",
					argv[optind]);
		o->command = argv + optind;
	} else if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
		return tj_usage(CMD, "no command after --");
	}
	if (o->check)
		return 0;
	if (!o->out)
		return tj_usage(CMD, "-o FILE is required");
	if (o->per_netns && o->node_set)
		return tj_usage(CMD, "--node and --netns exclude each other (each namespace is a node)");
	if (o->command && o->npids)
		return tj_usage(CMD, "--pid and -- COMMAND exclude each other");
	if (o->command && strcmp(o->out, "-") == 0)
		return tj_usage(CMD, "-o - and -- COMMAND would both write to stdout");
	if (o->per_netns && strcmp(o->out, "-") == 0)
		return tj_usage(CMD, "--netns needs a folder for -o, not stdout");
	return 0;
}

/* Trailing number of the host name (node-3 -> 3), or else its FNV-1a
 * hash in 0..999999: stable per host, short in message keys. */
static uint32_t node_from_hostname(const char *h)
{
	size_t n = strlen(h), i = n;
	uint32_t hash = 2166136261u;

	while (i > 0 && h[i - 1] >= '0' && h[i - 1] <= '9')
		i--;
	if (i < n && n - i <= 9)
		return (uint32_t)strtoul(h + i, NULL, 10);
	for (i = 0; i < n; i++)
		hash = (hash ^ (uint8_t)h[i]) * 16777619u;
	return hash % 1000000u;
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Copy, cutting what does not fit. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void fill_header(struct tj_evlog_header *h, const struct opts *o,
			int argc, char **argv)
{
	struct utsname u;
	char host[256] = "";
	size_t used = 0;

	memset(h, 0, sizeof(*h));
	gethostname(host, sizeof(host) - 1);
	copy_str(h->hostname, sizeof(h->hostname), host);
	if (uname(&u) == 0)
		copy_str(h->kernel, sizeof(h->kernel), u.release);
	h->node = o->node_set ? o->node : node_from_hostname(host);
	/* The two clocks read as close together as we can: the monotonic
	 * reading is the middle of two around the realtime one. */
	uint64_t m1 = now_ns(CLOCK_MONOTONIC), r = now_ns(CLOCK_REALTIME),
		 m2 = now_ns(CLOCK_MONOTONIC);
	h->clock_mono_ns = m1 + (m2 - m1) / 2;
	h->clock_real_ns = r;
	h->capture_flags = TJ_CAP_PREEXISTING | (o->payload ? TJ_CAP_PAYLOAD : 0) |
			   (o->stack ? TJ_CAP_STACKS : 0);
	h->payload_max = o->payload;
	for (int i = 0; i < argc && used + 1 < sizeof(h->options); i++) {
		int n = snprintf(h->options + used, sizeof(h->options) - used, "%s%s",
				 i ? " " : "tracejoin ", argv[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (used + 1 < sizeof(h->options))
		snprintf(h->options + used, sizeof(h->options) - used, " [hooks %s]",
			 o->hooks == TJC_HOOKS_SOCK ? "sock" : "syscalls");
	/* (--tag shows in the command line above.) */
	h->options[sizeof(h->options) - 1] = '\0';
}

/* A filter that names nothing is an error now, not an empty log later. */
static int check_filters(const struct opts *o, uint64_t *cgroup_id)
{
	char path[64];
	struct stat st;
	struct statfs sfs;

	for (int i = 0; i < o->npids; i++) {
		snprintf(path, sizeof(path), "/proc/%u", o->pids[i]);
		if (stat(path, &st) != 0) {
			fprintf(stderr, "tracejoin capture: --pid %u: no such process\n", o->pids[i]);
			return -1;
		}
	}
	*cgroup_id = 0;
	if (o->cgroup) {
		if (stat(o->cgroup, &st) != 0) {
			fprintf(stderr, "tracejoin capture: --cgroup %s: %s\n", o->cgroup, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode) || statfs(o->cgroup, &sfs) != 0 ||
		    (unsigned long)sfs.f_type != CGROUP2_MAGIC) {
			fprintf(stderr, "tracejoin capture: --cgroup %s: not a cgroup v2 folder "
				"(e.g. /sys/fs/cgroup/system.slice/foo.service)\n", o->cgroup);
			return -1;
		}
		*cgroup_id = st.st_ino; /* cgroup v2 id = its folder's inode */
	}
	return 0;
}

/* Run COMMAND held at a gate until its pid is in the filter.  *report
 * is read after the gate opens: EOF when exec succeeded, else errno. */
static pid_t start_command(char **command, const sigset_t *oldmask, int *gate,
			   int *report)
{
	int p[2], q[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(q, O_CLOEXEC) != 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		close(q[0]);
		close(q[1]);
		return -1;
	}
	if (pid == 0) {
		char go;
		int e;
		close(p[1]);
		close(q[0]);
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		if (read(p[0], &go, 1) != 1)
			_exit(127); /* capture gave up */
		execvp(command[0], command);
		e = errno;
		if (write(q[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(p[0]);
	close(q[1]);
	*gate = p[1];
	*report = q[0];
	return pid;
}

struct drain_ctx {
	struct tj_recorder *rec;
	struct tj_err *err;
};

static int on_record(void *ctx, const struct tjc_event *ev, size_t size)
{
	struct drain_ctx *d = ctx;
	return tj_recorder_add(d->rec, ev, size, d->err);
}

/* New losses since the last look become LOST markers and footer counts. */
static int note_drops(struct tj_capture *cap, struct tj_recorder *rec,
		      uint64_t seen[TJC_DROP__COUNT], struct tj_err *err)
{
	uint64_t now[TJC_DROP__COUNT];
	int rc = tj_capture_drops(cap, now, err);

	if (rc)
		return rc;
	for (int i = 0; i < TJC_DROP__COUNT; i++)
		if (now[i] > seen[i]) {
			rc = tj_recorder_lost(rec, now_ns(CLOCK_MONOTONIC), i, now[i] - seen[i], err);
			if (rc)
				return rc;
			seen[i] = now[i];
		}
	return TJ_OK;
}

/* Everything one capture holds open, so that each step below can fail
 * and leave cmd_capture's single clean-up to close what was opened. */
struct session {
	struct opts o;
	struct tj_err err;
	struct tj_capture *cap;
	struct tj_recorder *rec;
	struct tj_tag *tag;
	uint64_t tag_counts[TJT__COUNT];
	struct tj_capture_config cfg;
	struct tj_recorder_opts ro;
	struct tj_sockscan scan;
	sigset_t oldmask;
	int sfd, gate;
	int child_status, exec_errno, recording;
	pid_t child;
	uint64_t seen[TJC_DROP__COUNT];
	uint64_t undecoded; /* tj_capture_undecoded, kept at its close */
};

/* --check: report whether capture (and --hooks, --tag) can run here. */
static int run_check(const struct opts *o)
{
	struct tj_err err = { 0 };
	int env_problem = 0;

	if (tj_capture_probe(&env_problem, &err)) {
		if (env_problem) {
			printf("SKIPPED: capture cannot run here: %s\n", err.msg);
			return TJ_EXIT_SKIPPED;
		}
		fprintf(stderr, "tracejoin capture: %s\n", err.msg);
		return TJ_EXIT_FAIL;
	}
	int sock_ok = o->hooks != TJC_HOOKS_SYSCALLS && tj_capture_sock_hooks_available();
	if (o->hooks == TJC_HOOKS_SOCK && !sock_ok) {
		printf("SKIPPED: --hooks sock cannot run here: the kernel has no "
		       "sock_send_length/sock_recv_length tracepoints (Linux 6.4+)\n");
		return TJ_EXIT_SKIPPED;
	}
	if (o->tag) {
		char where[512] = "";
		if (tj_tag_probe(&env_problem, where, sizeof(where), &err)) {
			if (env_problem) {
				printf("SKIPPED: capture --tag cannot run here: %s\n", err.msg);
				return TJ_EXIT_SKIPPED;
			}
			fprintf(stderr, "tracejoin capture: %s\n", err.msg);
			return TJ_EXIT_FAIL;
		}
		printf("capture can run here (hooks: %s); --tag too (sock_ops TCP header "
		       "options, cgroup v2 at %s)\n", sock_ok ? "sock" : "syscalls", where);
		return TJ_EXIT_OK;
	}
	printf("capture can run here (hooks: %s)\n", sock_ok ? "sock" : "syscalls");
	return TJ_EXIT_OK;
}

/* The BPF side's and the recorder's settings from the options. */
static int configure(struct session *s, int argc, char **argv)
{
	struct opts *o = &s->o;

	if (check_filters(o, &s->cfg.cgroup_id))
		return TJ_EXIT_USAGE;
	if (o->hooks < 0)
		o->hooks = tj_capture_sock_hooks_available() ? TJC_HOOKS_SOCK : TJC_HOOKS_SYSCALLS;
	else if (o->hooks == TJC_HOOKS_SOCK && !tj_capture_sock_hooks_available()) {
		fprintf(stderr, "tracejoin capture: --hooks sock: this kernel has no "
			"sock_send_length/sock_recv_length tracepoints (Linux 6.4+); "
			"use --hooks syscalls\n");
		return TJ_EXIT_FAIL;
	}
	s->cfg.hooks = o->hooks;
	s->cfg.self_tgid = getpid();
	s->cfg.pid_mode = o->command ? TJC_PIDS_FOLLOW : o->npids ? TJC_PIDS_LISTED : TJC_PIDS_ALL;
	s->cfg.port = o->port;
	s->cfg.payload_max = o->payload;
	s->cfg.ring_bytes = o->ring_kb ? (size_t)o->ring_kb << 10 : default_ring_bytes();
	s->cfg.verbose = o->verbose;
	s->cfg.stack_mode = o->stack;
	if (o->stack && !(s->ro.stacks = tj_stackrec_new())) {
		fprintf(stderr, "tracejoin capture: out of memory\n");
		return TJ_EXIT_FAIL;
	}
	s->ro.out = o->out;
	s->ro.per_netns = o->per_netns;
	s->ro.force = o->force;
	fill_header(&s->ro.header, o, argc, argv);
	return TJ_EXIT_OK;
}

/* Before the programs attach: a connection accepted between the scan
 * and the attach is still seen (its ACCEPT), while one the scan missed
 * would have no role.  A COMMAND started by capture owns no socket from
 * before: no scan then; with --pid, only the namespaces of those
 * processes.  A failed scan is only a warning. */
static void scan_sockets(struct session *s)
{
	if (s->o.command)
		return; /* nothing to learn */
	if (tj_sockscan_run(&s->scan, s->o.pids, (size_t)s->o.npids, &s->err)) {
		fprintf(stderr, "tracejoin capture: warning: %s; connections open before "
			"capture will have no role unless their port is seen accepting\n",
			s->err.msg);
		tj_sockscan_free(&s->scan);
		return;
	}
	s->ro.scan = &s->scan;
	fprintf(stderr, "tracejoin capture: start-up scan: %zu listening and %llu "
		"open TCP sockets in %zu network namespaces, %.1f ms\n",
		s->scan.nlisteners, (unsigned long long)s->scan.open, s->scan.nns,
		s->scan.dur_ns / 1e6);
}

/* Cheap checks, then the log (refusing to overwrite must not wait for
 * the verifier), then BPF, tagging and the --pid list.  A log made for
 * a capture that could not start is removed again. */
static int open_capture(struct session *s)
{
	int env_problem = 0;

	if (tj_capture_env_prepare(&s->err)) {
		fprintf(stderr, "tracejoin capture: %s\n", s->err.msg);
		return TJ_EXIT_FAIL;
	}
	scan_sockets(s);
	if (tj_recorder_open(&s->rec, &s->ro, &s->err)) {
		fprintf(stderr, "tracejoin capture: %s\n", s->err.msg);
		return TJ_EXIT_FAIL;
	}
	if (tj_capture_open(&s->cap, &s->cfg, &env_problem, &s->err)) {
		fprintf(stderr, "tracejoin capture: %s\n", s->err.msg);
		tj_recorder_abort(s->rec); /* an earlier log stays as it was */
		s->rec = NULL;
		return TJ_EXIT_FAIL;
	}
	if (s->o.tag && tj_tag_open(&s->tag, s->cap, s->ro.header.node, s->o.per_netns,
				    s->o.port, &s->err)) {
		fprintf(stderr, "tracejoin capture: %s\n", s->err.msg);
		return TJ_EXIT_FAIL;
	}
	for (int i = 0; i < s->o.npids; i++)
		if (tj_capture_add_pid(s->cap, s->o.pids[i], &s->err)) {
			fprintf(stderr, "tracejoin capture: %s\n", s->err.msg);
			return TJ_EXIT_FAIL;
		}
	return TJ_EXIT_OK;
}

/* Stop signals arrive through a signalfd, read between drains. */
static int block_signals(struct session *s)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &s->oldmask);
	s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sfd < 0) {
		fprintf(stderr, "tracejoin capture: signalfd: %s\n", strerror(errno));
		return TJ_EXIT_FAIL;
	}
	return TJ_EXIT_OK;
}

/* -- COMMAND: start it held at its gate, trace it, then let it go. */
static int run_command(struct session *s)
{
	const char *name = s->o.command[0];
	int report = -1;

	s->child = start_command(s->o.command, &s->oldmask, &s->gate, &report);
	if (s->child < 0) {
		fprintf(stderr, "tracejoin capture: cannot start %s: %s\n", name, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	if (tj_capture_add_pid(s->cap, s->child, &s->err)) {
		fprintf(stderr, "tracejoin capture: %s\n", s->err.msg);
		return TJ_EXIT_FAIL;
	}
	/* Traced from its first instruction on: let it go. */
	if (write(s->gate, "g", 1) != 1) {
		fprintf(stderr, "tracejoin capture: cannot start %s: %s\n", name, strerror(errno));
		return TJ_EXIT_FAIL;
	}
	close(s->gate);
	s->gate = -1;
	if (read(report, &s->exec_errno, sizeof(s->exec_errno)) == (ssize_t)sizeof(s->exec_errno)) {
		fprintf(stderr, "tracejoin capture: cannot run %s: %s\n", name,
			strerror(s->exec_errno));
		close(report);
		return TJ_EXIT_FAIL;
	}
	close(report);
	return TJ_EXIT_OK;
}

/* Drain, sort and write until a signal, the command's end or
 * --duration; negative on a failure (s->err says it). */
static int record_until_stopped(struct session *s)
{
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	uint64_t deadline = s->o.duration > 0 ? start + (uint64_t)(s->o.duration * 1e9) : UINT64_MAX;
	uint64_t last_flush = start;
	struct drain_ctx dctx = { s->rec, &s->err };
	int stop = 0, rc = 0;

	while (!stop) {
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);
		struct signalfd_siginfo si;

		rc = tj_capture_drain(s->cap, DRAIN_MS, on_record, &dctx, &s->err);
		if (rc < 0)
			break;
		if ((rc = note_drops(s->cap, s->rec, s->seen, &s->err)))
			break;
		int flush = t0 - last_flush >= FLUSH_NS;
		if (flush) {
			last_flush = t0;
			/* Libraries loaded since: read while the processes live. */
			if (s->ro.stacks)
				tj_stackrec_refresh(s->ro.stacks);
		}
		/* Anything stamped before the drain began, minus a margin for
		 * records still being written on other CPUs, is complete. */
		rc = tj_recorder_write_until(s->rec, t0 > REORDER_NS ? t0 - REORDER_NS : 0,
					     flush, &s->err);
		if (rc)
			break;
		while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo != SIGCHLD)
				stop = 1;
			else if (s->child > 0 &&
				 waitpid(s->child, &s->child_status, WNOHANG) == s->child)
				stop = 1;
		}
		if (now_ns(CLOCK_MONOTONIC) >= deadline)
			stop = 1;
	}
	return rc;
}

/* What the kernel side wrote before we stopped is complete: drain it,
 * then the last counts, blocks and stacks. */
static int finish_recording(struct session *s)
{
	struct drain_ctx dctx = { s->rec, &s->err };
	int rc;

	while ((rc = tj_capture_drain(s->cap, 0, on_record, &dctx, &s->err)) > 0)
		;
	if (rc == 0)
		rc = note_drops(s->cap, s->rec, s->seen, &s->err);
	if (rc == 0 && s->tag)
		rc = tj_tag_stats(s->tag, s->tag_counts, &s->err);
	if (rc == 0)
		rc = tj_recorder_write_until(s->rec, UINT64_MAX, 1, &s->err);
	if (rc == 0 && s->ro.stacks) {
		const struct tj_stacks *st;
		rc = tj_stackrec_finish(s->ro.stacks, s->cap, &st, &s->err);
		if (rc == 0)
			rc = tj_recorder_write_stacks(s->rec, st, &s->err);
	}
	return rc;
}

/* Record until stopped; the exit status of the recording itself. */
static int record(struct session *s)
{
	int rc, status = TJ_EXIT_OK;

	rc = record_until_stopped(s);
	if (rc >= 0)
		rc = finish_recording(s);
	if (rc < 0) {
		fprintf(stderr, "tracejoin capture: %s; the log keeps every block written "
			"before (tracejoin info tells how much)\n", s->err.msg);
		status = TJ_EXIT_FAIL;
	}
	if (s->child > 0 && s->child_status == -1 &&
	    waitpid(s->child, &s->child_status, WNOHANG) != s->child) {
		s->child_status = -1;
		if (status == TJ_EXIT_OK) {
			/* Stopped (signal, --duration) before the command ended:
			 * end it too. */
			kill(s->child, SIGTERM);
		} else {
			/* Capture failed: the command is the user's, not ours
			 * to kill; it goes on untraced. */
			fprintf(stderr, "tracejoin capture: %s (pid %d) goes on untraced\n",
				s->o.command[0], (int)s->child);
			s->child = 0;
		}
	}
	return status;
}

/* The closing counts of a capture that went well. */
static void print_summary(const struct session *s)
{
	uint64_t events = tj_recorder_events(s->rec), lost = 0;
	const uint64_t *tc = s->tag_counts;

	for (int i = 0; i < TJC_DROP__COUNT; i++)
		lost += s->seen[i];
	fprintf(stderr, "tracejoin capture: %llu events, %llu lost "
		"(ring buffer full %llu, map full %llu)\n",
		(unsigned long long)events, (unsigned long long)lost,
		(unsigned long long)s->seen[TJC_DROP_RINGBUF],
		(unsigned long long)s->seen[TJC_DROP_MAP]);
	if (s->undecoded)
		fprintf(stderr, "tracejoin capture: warning: %llu ring records could not be "
			"made whole (no known layout, or a socket whose addresses never "
			"came): a bug of capture's, please report it\n",
			(unsigned long long)s->undecoded);
	if (s->o.tag)
		fprintf(stderr, "tracejoin capture: --tag: %llu SYNs tagged (%llu "
			"without room for the option); %llu connections accepted "
			"with a tag, %llu without (SYN untagged), %llu unread (no "
			"saved SYN: a listener older than capture, or a syncookie), "
			"%llu tags lost (ring full)\n",
			(unsigned long long)tc[TJT_SYN_TAGGED],
			(unsigned long long)tc[TJT_SYN_NO_ROOM],
			(unsigned long long)tc[TJT_ACCEPT_TAGGED],
			(unsigned long long)tc[TJT_ACCEPT_NO_OPT],
			(unsigned long long)tc[TJT_ACCEPT_NO_SYN],
			(unsigned long long)tc[TJT_RING_FULL]);
	if (s->ro.stacks)
		fprintf(stderr, "tracejoin capture: %llu events without a stack "
			"(stack map full or a hash collision)\n",
			(unsigned long long)tj_stackrec_missing(s->ro.stacks));
	tj_recorder_report(s->rec, stderr);
	if (events == 0 && (s->o.npids || s->o.cgroup || s->o.port))
		fprintf(stderr, "tracejoin capture: warning: no event matched the filters\n");
}

/* Close the log (kept only if recording began); a failure to close
 * turns a good status into exit 1. */
static int close_log(struct session *s, int status)
{
	struct tj_err e2 = { 0 };

	if (status == TJ_EXIT_OK)
		print_summary(s);
	if (!s->recording) /* never started: no log, an earlier one kept */
		tj_recorder_abort(s->rec);
	else if (tj_recorder_close(s->rec, &e2) && status == TJ_EXIT_OK) {
		fprintf(stderr, "tracejoin capture: %s\n", e2.msg);
		status = TJ_EXIT_FAIL; /* (a failure before was said already) */
	}
	s->rec = NULL;
	return status;
}

/* Wait for the traced command and say how it ended, if badly. */
static void reap_command(struct session *s)
{
	const char *name = s->o.command[0];

	if (s->child_status == -1)
		waitpid(s->child, &s->child_status, 0);
	if (s->exec_errno)
		; /* said above */
	else if (WIFEXITED(s->child_status) && WEXITSTATUS(s->child_status) != 0)
		fprintf(stderr, "tracejoin capture: %s exited with status %d\n",
			name, WEXITSTATUS(s->child_status));
	else if (WIFSIGNALED(s->child_status))
		fprintf(stderr, "tracejoin capture: %s killed by signal %d\n",
			name, WTERMSIG(s->child_status));
}

int cmd_capture(int argc, char **argv)
{
	struct session s = { .o = { .hooks = -1 }, .sfd = -1, .gate = -1, .child_status = -1 };
	int status;

	if ((status = parse_opts(argc, argv, &s.o)) != 0)
		return status;
	if (s.o.check)
		return run_check(&s.o);
	if ((status = configure(&s, argc, argv)) == TJ_EXIT_OK &&
	    (status = open_capture(&s)) == TJ_EXIT_OK &&
	    (status = block_signals(&s)) == TJ_EXIT_OK &&
	    (!s.o.command || (status = run_command(&s)) == TJ_EXIT_OK)) {
		s.recording = 1;
		fprintf(stderr, "tracejoin capture: recording%s%s (Ctrl-C stops)\n",
			s.o.command ? " " : "", s.o.command ? s.o.command[0] : "");
		status = record(&s);
	}
	if (s.cap)
		s.undecoded = tj_capture_undecoded(s.cap);
	tj_capture_close(s.cap);
	s.cap = NULL;
	tj_tag_close(s.tag);
	if (s.rec)
		status = close_log(&s, status);
	if (s.gate >= 0)
		close(s.gate); /* the command never started: its gate closes */
	if (s.child > 0)
		reap_command(&s);
	if (s.sfd >= 0)
		close(s.sfd);
	tj_stackrec_free(s.ro.stacks);
	tj_sockscan_free(&s.scan);
	return status;
}
