/* Loading capture.bpf.c through its bpftool skeleton, and draining it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "loader.h"
#include "lane.h"
#include "ring_record.h"
#include "../lib/event.h"
#include "../lib/evlog.h"
#include "capture/capture.skel.h"

/* The kernel side repeats these values; keep them in step. */
_Static_assert(TJC_EV_ACCEPT == TJ_EV_ACCEPT && TJC_EV_CONNECT == TJ_EV_CONNECT &&
	       TJC_EV_SEND == TJ_EV_SEND && TJC_EV_RECV == TJ_EV_RECV &&
	       TJC_EV_CLOSE == TJ_EV_CLOSE && TJC_EV_SHUTDOWN == TJ_EV_SHUTDOWN &&
	       TJC_EV_STATE == TJ_EV_STATE && TJC_EV_SOCKET == TJ_EV_SOCKET,
	       "event types of capture_common.h and event.h differ");
_Static_assert(TJC_EVF_OFFSET_FROM_START == TJ_EVF_OFFSET_FROM_START &&
	       TJC_EVF_ERROR == TJ_EVF_ERROR && TJC_EVF_PARTIAL == TJ_EVF_PARTIAL &&
	       TJC_EVF_INFERRED == TJ_EVF_INFERRED && TJC_EVF_SEQ_OFFSET == TJ_EVF_SEQ_OFFSET,
	       "event flags of capture_common.h and event.h differ");
_Static_assert(TJC_DROP_RINGBUF == TJ_DROP_RINGBUF && TJC_DROP_MAP == TJ_DROP_MAP &&
	       TJC_DROP__COUNT == TJ_DROP__COUNT, "drop reasons differ");
_Static_assert(TJC_PAYLOAD_MAX == TJ_PAYLOAD_MAX, "payload limits differ");

#define TRACEFS "/sys/kernel/tracing"
#define BTF_PATH "/sys/kernel/btf/vmlinux"
#define MAX_LINKS 64

struct tj_capture {
	struct capture_bpf *skel;
	struct bpf_link *links[MAX_LINKS];
	int nlinks;
	struct ring_buffer *rb;
	int ncpus;
	int *ring_fds; /* one ring per possible CPU */
	/* The drain's current callback (ring_buffer__new fixes one ctx). */
	tj_capture_cb cb;
	void *cb_ctx;
	int cb_status;
	int count;
	struct tj_ring_decoder *dec; /* compact records -> whole ones */
	int flush_fd;                /* flush_batch: a CPU's partial batch out */
	struct tjc_lane *lanes;      /* mapped, one per possible CPU; NULL: none */
	size_t lanes_bytes;
	uint64_t *lane_upto;         /* each lane's head, read before the rings */
	uint32_t lane_slots;         /* slots used per lane, 0 = no lanes */
	uint64_t bad;                /* records of no layout we know (skipped) */
};

/* libbpf's messages: silent unless asked for (they include the whole
 * verifier log on a load failure). */
static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static int libbpf_verbose(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Effective capabilities from /proc/self/status (no libcap needed). */
static int have_caps(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long eff = 0;

	if (!f)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	const unsigned long long sys_admin = 1ull << 21, perfmon = 1ull << 38,
				 bpf = 1ull << 39;
	return (eff & sys_admin) || ((eff & bpf) && (eff & perfmon));
}

static int tracefs_ready(void)
{
	struct stat st;
	return stat(TRACEFS "/events/syscalls/sys_enter_read", &st) == 0;
}

int tj_capture_env_prepare(struct tj_err *err)
{
	if (!have_caps())
		return tj_errf(err, TJ_E_ARG, "loading BPF needs root (CAP_BPF and "
			       "CAP_PERFMON, or CAP_SYS_ADMIN)");
	if (access(BTF_PATH, R_OK) != 0)
		return tj_errf(err, TJ_E_ARG, "%s: %s: the kernel has no BTF "
			       "(CONFIG_DEBUG_INFO_BTF), which CO-RE needs",
			       BTF_PATH, strerror(errno));
	if (!tracefs_ready()) {
		/* libbpf finds tracepoint ids in tracefs: mount it if we may. */
		if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) != 0 && errno != EBUSY)
			return tj_errf(err, TJ_E_ARG, "tracefs is not mounted at %s and "
				       "mounting it failed: %s", TRACEFS, strerror(errno));
		if (!tracefs_ready())
			return tj_errf(err, TJ_E_ARG, "%s/events/syscalls missing: the "
				       "kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)",
				       TRACEFS);
	}
	return TJ_OK;
}

int tj_capture_probe(int *env_problem, struct tj_err *err)
{
	int rc;

	*env_problem = 1;
	if ((rc = tj_capture_env_prepare(err)) != 0)
		return rc;
	libbpf_set_print(libbpf_quiet);
	/* Loads a trivial tracepoint program: cheap next to the verifier's
	 * work on the real ones, and refused where BPF is not allowed. */
	rc = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, NULL);
	if (rc < 0)
		return tj_errf(err, TJ_E_IO, "the kernel refuses BPF programs: %s", strerror(-rc));
	if (rc == 0)
		return tj_errf(err, TJ_E_IO, "the kernel has no BPF tracepoint programs");
	if (!libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL))
		return tj_errf(err, TJ_E_IO, "the kernel has no BPF ring buffer (5.8 or later needed)");
	*env_problem = 0;
	return TJ_OK;
}

int tj_capture_sock_hooks_available(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int ok;

	if (!vmlinux)
		return 0;
	ok = btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) > 0 &&
	     btf__find_by_name_kind(vmlinux, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) > 0 &&
	     btf__find_by_name_kind(vmlinux, "btf_trace_tcp_destroy_sock", BTF_KIND_TYPEDEF) > 0;
	btf__free(vmlinux);
	return ok;
}

/* The hook set a program belongs to: the syscall tracepoints, the
 * socket-layer tracepoints, or both (state changes, socket destruction,
 * forks). */
enum prog_set { SET_SYSCALLS = TJC_HOOKS_SYSCALLS, SET_SOCK = TJC_HOOKS_SOCK, SET_BOTH };

/* Load only the chosen set and the programs both sets use, every
 * program named by its skeleton handle.
 * tcp_destroy_sock is the sock hooks' own; the syscall hooks only use it
 * to forget sockets sooner, so they do without on a kernel that lacks it
 * (the sock hooks were only chosen where the kernel has it).  A program
 * of the object that the table does not name is refused: it would
 * otherwise be attached with either set. */
static int choose_programs(struct capture_bpf *skel, unsigned hooks, struct tj_err *err)
{
	const struct {
		struct bpf_program *prog;
		enum prog_set set;
	} table[] = {
		{ skel->progs.enter_connect, SET_SYSCALLS },
		{ skel->progs.enter_close, SET_SYSCALLS },
		{ skel->progs.exit_close, SET_SYSCALLS },
		{ skel->progs.exit_read, SET_SYSCALLS },
		{ skel->progs.exit_write, SET_SYSCALLS },
		{ skel->progs.exit_recvfrom, SET_SYSCALLS },
		{ skel->progs.exit_sendto, SET_SYSCALLS },
		{ skel->progs.exit_readv, SET_SYSCALLS },
		{ skel->progs.exit_writev, SET_SYSCALLS },
		{ skel->progs.exit_recvmsg, SET_SYSCALLS },
		{ skel->progs.exit_sendmsg, SET_SYSCALLS },
		{ skel->progs.exit_recvmmsg, SET_SYSCALLS },
		{ skel->progs.exit_sendmmsg, SET_SYSCALLS },
		{ skel->progs.exit_accept_, SET_SYSCALLS },
		{ skel->progs.exit_accept4, SET_SYSCALLS },
		{ skel->progs.exit_connect, SET_SYSCALLS },
		{ skel->progs.exit_shutdown, SET_SYSCALLS },
		{ skel->progs.on_send_length, SET_SOCK },
		{ skel->progs.on_recv_length, SET_SOCK },
		{ skel->progs.on_set_state, SET_BOTH },
		{ skel->progs.on_destroy, SET_BOTH },
		{ skel->progs.on_fork, SET_BOTH },
		{ skel->progs.on_proc_exit, SET_BOTH },
		{ skel->progs.flush_batch, SET_BOTH }, /* run, never attached */
	};
	const size_t n = sizeof(table) / sizeof(table[0]);
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj) {
		size_t i = 0;
		while (i < n && table[i].prog != prog)
			i++;
		if (i == n)
			return tj_errf(err, TJ_E_ARG, "BPF program %s is in no hook set "
				       "(capture/loader.c programs_by_set)", bpf_program__name(prog));
		if (table[i].set != SET_BOTH && table[i].set != (enum prog_set)hooks)
			bpf_program__set_autoload(prog, false);
	}
	if (hooks != TJC_HOOKS_SOCK && !tj_capture_sock_hooks_available())
		bpf_program__set_autoload(skel->progs.on_destroy, false);
	return TJ_OK;
}

/* The kernel side reads the task's current call number; it has no
 * header with this architecture's numbers, so they are handed over. */
static void set_syscall_numbers(struct capture_bpf *skel)
{
	struct capture_bpf__rodata *ro = skel->rodata;

	ro->nr_read = SYS_read;
	ro->nr_write = SYS_write;
	ro->nr_recvfrom = SYS_recvfrom;
	ro->nr_sendto = SYS_sendto;
	ro->nr_readv = SYS_readv;
	ro->nr_writev = SYS_writev;
	ro->nr_recvmsg = SYS_recvmsg;
	ro->nr_sendmsg = SYS_sendmsg;
	ro->nr_connect = SYS_connect;
	ro->nr_close = SYS_close;
	ro->nr_shutdown = SYS_shutdown;
	ro->nr_exit = SYS_exit;
	ro->nr_exit_group = SYS_exit_group;
}

/* One ring record: a whole record, or a batch of compact ones. */
static int on_record(void *ctx, void *data, size_t size)
{
	struct tj_capture *c = ctx;
	const struct tjc_event *ev;
	const void *at = data;
	size_t evsize, left = size;

	while (left) {
		if (tj_ring_decode_next(c->dec, &at, &left, &ev, &evsize) == TJ_RING_BAD) {
			c->bad++; /* cannot happen with this kernel side */
			continue;
		}
		c->count++;
		int rc = c->cb(c->cb_ctx, ev, evsize);
		if (rc) {
			c->cb_status = rc;
			return rc;
		}
	}
	return 0;
}

/* Records per batch: as many as TJC_BATCH_BYTES hold with these
 * settings, at most TJC_BATCH_MAX, and a batch at most a quarter of a
 * ring (a small --ring-kb still takes several). */
static uint32_t batch_records(const struct tj_capture_config *cfg)
{
	size_t one = sizeof(struct tjc_data) + (cfg->payload_max ? TJC_PAYLOAD_MAX : 0) +
		     (cfg->stack_mode ? sizeof(struct tjc_stack_tail) : 0);
	size_t n = TJC_BATCH_BYTES / one;

	if (n > TJC_BATCH_MAX)
		n = TJC_BATCH_MAX;
	if (n > cfg->ring_bytes / 4 / (one + 8))
		n = cfg->ring_bytes / 4 / (one + 8);
	return n ? (uint32_t)n : 1;
}

/* Every CPU's partial batch into its ring: flush_batch run on each CPU
 * whose batch holds records (an IPI; the kernel side marks them in
 * batch_pending).  A batch taken at that instant (a program filling it)
 * is tried again a few times; one still taken goes out with its next
 * record or at the next drain. */
static int flush_batches(struct tj_capture *c, struct tj_err *err)
{
	for (int cpu = 0; cpu < c->ncpus; cpu++) {
		if (cpu < TJC_BATCH_CPUS &&
		    !__atomic_load_n(&c->skel->bss->batch_pending[cpu].first_ts, __ATOMIC_ACQUIRE))
			continue;
		LIBBPF_OPTS(bpf_test_run_opts, o, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu);
		for (int tries = 0; tries < 4; tries++) {
			if (bpf_prog_test_run_opts(c->flush_fd, &o)) {
				if (errno == ENXIO)
					break; /* a possible CPU that is not online */
				return tj_errf(err, TJ_E_IO, "flushing the batch of CPU %d: %s",
					       cpu, strerror(errno));
			}
			if (o.retval == 0)
				break;
		}
	}
	return TJ_OK;
}

/* The lanes (capture_common.h), mapped to be read in place. */
static int map_lanes(struct tj_capture *c, struct tj_err *err)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t bytes = (size_t)c->ncpus * sizeof(struct tjc_lane);
	void *m;

	_Static_assert(sizeof(struct tjc_lane) % 8 == 0, "array elements are 8-byte aligned");
	bytes = (bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
	m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(c->skel->maps.lanes), 0);
	if (m == MAP_FAILED)
		return tj_errf(err, TJ_E_IO, "cannot map the lanes: %s", strerror(errno));
	c->lanes = m;
	c->lanes_bytes = bytes;
	c->lane_upto = calloc((size_t)c->ncpus, sizeof(*c->lane_upto));
	if (!c->lane_upto)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	return TJ_OK;
}

/* A lane's slot: one compact record, made whole like a ring's. */
static int on_lane_record(void *ctx, const void *rec, size_t size)
{
	return on_record(ctx, (void *)rec, size);
}

/* Every lane's records up to the heads read before the rings were: a
 * compact record in a lane follows its socket's whole record, which went
 * into the ring first, so reading the heads first makes every record
 * read here whole.  A lane whose head is out of reach (cannot happen
 * with this kernel side) is an error. */
static int take_lanes(struct tj_capture *c, struct tj_err *err)
{
	for (int cpu = 0; cpu < c->ncpus; cpu++) {
		int rc = tj_lane_take(&c->lanes[cpu], c->lane_slots, c->lane_upto[cpu],
				      on_lane_record, c);
		if (rc < 0)
			return tj_errf(err, TJ_E_IO, "the lane of CPU %d says %llu records, "
				       "out of reach of its tail", cpu,
				       (unsigned long long)c->lane_upto[cpu]);
		if (rc)
			return rc;
	}
	return TJ_OK;
}

/* A ring per possible CPU.  They are made before the programs load: the
 * first one is the template the kernel checks the rings array against. */
static int make_rings(struct tj_capture *c, size_t ring_bytes, struct tj_err *err)
{
	c->ring_fds = malloc(c->ncpus * sizeof(*c->ring_fds));
	if (!c->ring_fds)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	for (int i = 0; i < c->ncpus; i++)
		c->ring_fds[i] = -1;
	for (int i = 0; i < c->ncpus; i++) {
		c->ring_fds[i] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "tj_ring", 0, 0,
						ring_bytes, NULL);
		if (c->ring_fds[i] < 0)
			return tj_errf(err, errno == EPERM ? TJ_E_IO : TJ_E_ARG,
				       "cannot make the ring buffer of CPU %d (%zu KiB): %s",
				       i, ring_bytes >> 10, strerror(errno));
	}
	if (bpf_map__set_max_entries(c->skel->maps.rings, c->ncpus) ||
	    bpf_map__set_inner_map_fd(c->skel->maps.rings, c->ring_fds[0]))
		return tj_errf(err, TJ_E_ARG, "cannot size the rings array: %s", strerror(errno));
	return TJ_OK;
}

/* After load: the rings go in the array the programs read, and all of
 * them in one libbpf ring_buffer, so one poll drains them. */
static int install_rings(struct tj_capture *c, struct tj_err *err)
{
	int outer = bpf_map__fd(c->skel->maps.rings);

	for (int i = 0; i < c->ncpus; i++) {
		uint32_t key = i;
		if (bpf_map_update_elem(outer, &key, &c->ring_fds[i], BPF_ANY))
			return tj_errf(err, TJ_E_IO, "cannot install the ring of CPU %d: %s",
				       i, strerror(errno));
		if (i == 0)
			c->rb = ring_buffer__new(c->ring_fds[i], on_record, c, NULL);
		else if (ring_buffer__add(c->rb, c->ring_fds[i], on_record, c))
			return tj_errf(err, TJ_E_IO, "cannot map the ring of CPU %d: %s",
				       i, strerror(errno));
		if (!c->rb)
			return tj_errf(err, TJ_E_IO, "cannot map the ring buffer: %s", strerror(errno));
	}
	return TJ_OK;
}

int tj_capture_add_ring(struct tj_capture *c, int map_fd, struct tj_err *err)
{
	if (ring_buffer__add(c->rb, map_fd, on_record, c))
		return tj_errf(err, TJ_E_IO, "cannot map a ring buffer: %s", strerror(errno));
	return TJ_OK;
}

int tj_capture_open(struct tj_capture **cp, const struct tj_capture_config *cfg,
		    int *env_problem, struct tj_err *err)
{
	struct tj_capture *c;
	struct bpf_program *prog;
	int rc;

	*cp = NULL;
	*env_problem = 0;
	if ((rc = tj_capture_env_prepare(err)) != 0) {
		*env_problem = 1;
		return rc;
	}
	libbpf_set_print(cfg->verbose ? libbpf_verbose : libbpf_quiet);
	c = calloc(1, sizeof(*c));
	if (!c)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	c->ncpus = libbpf_num_possible_cpus();
	c->dec = tj_ring_decoder_new(cfg->payload_max, cfg->stack_mode);
	if (!c->dec) {
		rc = tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
		goto fail;
	}
	c->skel = capture_bpf__open();
	if (!c->skel) {
		rc = tj_errf(err, TJ_E_IO, "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	c->skel->rodata->self_tgid = cfg->self_tgid;
	c->skel->rodata->pid_mode = cfg->pid_mode;
	c->skel->rodata->cgroup_id = cfg->cgroup_id;
	c->skel->rodata->port_filter = cfg->port;
	c->skel->rodata->payload_max = cfg->payload_max;
	/* Ask for a drain when a quarter of the ring is waiting. */
	c->skel->rodata->wakeup_bytes = cfg->ring_bytes / 4;
	c->skel->rodata->stack_mode = cfg->stack_mode;
	c->skel->rodata->hooks = cfg->hooks;
	c->skel->rodata->batch_max = batch_records(cfg);
	c->skel->rodata->batch_age_ns = TJC_BATCH_AGE_NS;
	/* Lanes hold fixed 56-byte records: not with payload or stacks. */
	if (!cfg->payload_max && !cfg->stack_mode)
		c->lane_slots = tj_lane_slots(cfg->ring_bytes);
	c->skel->rodata->lane_slots = c->lane_slots;
	if (c->lane_slots &&
	    bpf_map__set_max_entries(c->skel->maps.lanes, (uint32_t)c->ncpus)) {
		rc = tj_errf(err, TJ_E_IO, "cannot size the lanes map: %s", strerror(errno));
		goto fail;
	}
	set_syscall_numbers(c->skel);
	if ((rc = choose_programs(c->skel, cfg->hooks, err)) != 0)
		goto fail;
	uint32_t stack_entries = cfg->stack_entries ? cfg->stack_entries : 16384;
	/* Kernel stacks in the kernel's stack map, user stacks in ours
	 * (capture.bpf.c walks them: see user_stack_id). */
	if (((cfg->stack_mode & TJC_STACK_KERNEL) &&
	     bpf_map__set_max_entries(c->skel->maps.stacks, stack_entries)) ||
	    ((cfg->stack_mode & TJC_STACK_USER) &&
	     (bpf_map__set_max_entries(c->skel->maps.ustacks, stack_entries) ||
	      bpf_map__set_max_entries(c->skel->maps.ustack_ids, stack_entries)))) {
		rc = tj_errf(err, TJ_E_ARG, "stack map size %u refused", cfg->stack_entries);
		goto fail;
	}
	if (cfg->stack_mode & TJC_STACK_USER)
		c->skel->rodata->ustack_max = stack_entries;
	if ((rc = make_rings(c, cfg->ring_bytes, err)) != 0) {
		if (errno == EPERM)
			*env_problem = 1;
		goto fail;
	}
	if (capture_bpf__load(c->skel)) {
		int e = errno;
		if (e == EPERM)
			*env_problem = 1;
		rc = tj_errf(err, TJ_E_IO, "the kernel refused the BPF programs: %s%s",
			     strerror(e), cfg->verbose ? "" : " (--verbose shows libbpf's log)");
		goto fail;
	}
	/* The rings before the programs: on a busy machine (capture started
	 * on running services) events come at once, and one that finds no
	 * ring is counted lost. */
	if ((rc = install_rings(c, err)) != 0)
		goto fail;
	if (c->lane_slots && (rc = map_lanes(c, err)) != 0)
		goto fail;
	bpf_object__for_each_program(prog, c->skel->obj) {
		struct bpf_link *l;
		if (!bpf_program__autoload(prog) || prog == c->skel->progs.flush_batch)
			continue;
		if (c->nlinks == MAX_LINKS) {
			rc = tj_errf(err, TJ_E_LIMIT, "more than %d BPF programs", MAX_LINKS);
			goto fail;
		}
		l = bpf_program__attach(prog);
		if (!l) {
			int e = errno;
			if (e == EPERM || e == EACCES)
				*env_problem = 1;
			rc = tj_errf(err, TJ_E_IO, "cannot attach %s (%s): %s",
				     bpf_program__name(prog), bpf_program__section_name(prog),
				     strerror(e));
			goto fail;
		}
		c->links[c->nlinks++] = l;
	}
	c->flush_fd = bpf_program__fd(c->skel->progs.flush_batch);
	{
		/* Every drain runs it: a kernel that cannot is told now, not
		 * at the first drain.  The batches are empty yet. */
		LIBBPF_OPTS(bpf_test_run_opts, o);
		if (bpf_prog_test_run_opts(c->flush_fd, &o)) {
			rc = tj_errf(err, TJ_E_IO, "cannot run the batch flush (BPF_PROG_TEST_RUN "
				     "of a raw_tp program): %s", strerror(errno));
			goto fail;
		}
	}
	/* Every hook in: they start recording together (shared.bpf.h armed). */
	__atomic_store_n(&c->skel->bss->armed, 1, __ATOMIC_RELEASE);
	*cp = c;
	return TJ_OK;
fail:
	tj_capture_close(c);
	return rc;
}

int tj_capture_add_pid(struct tj_capture *c, uint32_t tgid, struct tj_err *err)
{
	uint8_t one = 1;

	if (bpf_map__update_elem(c->skel->maps.pids, &tgid, sizeof(tgid), &one,
				 sizeof(one), BPF_ANY))
		return tj_errf(err, TJ_E_IO, "cannot add pid %u to the filter: %s",
			       tgid, strerror(errno));
	return TJ_OK;
}

int tj_capture_drain(struct tj_capture *c, int timeout_ms, tj_capture_cb cb,
		     void *ctx, struct tj_err *err)
{
	int rc;

	c->cb = cb;
	c->cb_ctx = ctx;
	c->cb_status = 0;
	c->count = 0;
	/* Records are submitted without wakeups: poll only returns early when
	 * the kernel side forced one; consume then takes what is there. */
	rc = ring_buffer__poll(c->rb, timeout_ms);
	if (rc >= 0 || rc == -EINTR) {
		for (int cpu = 0; c->lanes && cpu < c->ncpus; cpu++)
			c->lane_upto[cpu] = tj_lane_head(&c->lanes[cpu]);
		/* Partial batches out first: everything made before now is in
		 * the rings when they are read. */
		int frc = flush_batches(c, err);
		if (frc)
			return frc;
		rc = ring_buffer__consume(c->rb);
	}
	if (c->cb_status)
		return c->cb_status;
	if (rc < 0 && rc != -EINTR)
		return tj_errf(err, TJ_E_IO, "reading the ring buffer: %s", strerror(-rc));
	if (c->lanes) {
		int lrc = take_lanes(c, err);
		if (lrc)
			return lrc;
	}
	return c->count;
}

uint64_t tj_capture_undecoded(const struct tj_capture *c)
{
	return c->bad + tj_ring_decoder_unknown(c->dec);
}

int tj_capture_drops(struct tj_capture *c, uint64_t drops[TJC_DROP__COUNT],
		     struct tj_err *err)
{
	uint64_t *per_cpu = calloc(c->ncpus, sizeof(uint64_t));

	if (!per_cpu)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	for (uint32_t i = 0; i < TJC_DROP__COUNT; i++) {
		drops[i] = 0;
		if (bpf_map__lookup_elem(c->skel->maps.drops, &i, sizeof(i), per_cpu,
					 c->ncpus * sizeof(uint64_t), 0)) {
			free(per_cpu);
			return tj_errf(err, TJ_E_IO, "reading the drop counters: %s",
				       strerror(errno));
		}
		for (int cpu = 0; cpu < c->ncpus; cpu++)
			drops[i] += per_cpu[cpu];
	}
	free(per_cpu);
	return TJ_OK;
}

void tj_capture_close(struct tj_capture *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	if (c->lanes)
		munmap(c->lanes, c->lanes_bytes);
	free(c->lane_upto);
	for (int i = 0; i < c->nlinks; i++)
		bpf_link__destroy(c->links[i]);
	for (int i = 0; c->ring_fds && i < c->ncpus; i++)
		if (c->ring_fds[i] >= 0)
			close(c->ring_fds[i]);
	free(c->ring_fds);
	capture_bpf__destroy(c->skel);
	tj_ring_decoder_free(c->dec);
	free(c);
}

int tj_capture_stack(struct tj_capture *c, int user, int32_t id,
		     uint64_t ips[TJC_STACK_DEPTH], struct tj_err *err)
{
	uint64_t v[TJC_STACK_DEPTH];
	uint32_t key = (uint32_t)id;
	int n = 0;

	if (id < 0)
		return 0;
	if (bpf_map__lookup_elem(user ? c->skel->maps.ustacks : c->skel->maps.stacks, &key,
				 sizeof(key), v, sizeof(v), 0)) {
		if (errno == ENOENT)
			return 0;
		return tj_errf(err, TJ_E_IO, "reading stack %d: %s", (int)id, strerror(errno));
	}
	/* The kernel zero-fills past the last frame. */
	while (n < TJC_STACK_DEPTH && v[n])
		n++;
	memcpy(ips, v, (size_t)n * sizeof(*ips));
	return n;
}
