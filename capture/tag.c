/* capture --tag, user side (tag.h; the kernel side is tag.bpf.c). */
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "tag.h"
#include "../lib/event.h"
#include "capture/tag.skel.h"

_Static_assert(TJC_EV_TAG == TJ_EV_TAG, "TAG event types of tag_common.h and event.h differ");

struct tj_tag {
	struct tag_bpf *skel;
	struct bpf_link *link;
	int cgroup_fd;
};

/* The cgroup v2 mount: sock_ops programs attach to a cgroup, and its
 * root covers every process's sockets. */
static int cgroup2_mount(char *path, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return -1;
	struct mntent *m;
	int found = -1;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			snprintf(path, len, "%s", m->mnt_dir);
			found = 0;
			break;
		}
	}
	endmntent(f);
	return found;
}

static void close_parts(struct tj_tag *t)
{
	bpf_link__destroy(t->link);
	tag_bpf__destroy(t->skel);
	if (t->cgroup_fd >= 0)
		close(t->cgroup_fd);
}

/* Load and attach; the rest of tj_tag_open and tj_tag_probe share it. */
static int load_attach(struct tj_tag *t, uint32_t node, int per_netns, uint16_t port,
		       int *env_problem, char *where, size_t wherelen,
		       struct tj_err *err)
{
	char mnt[4096];
	t->cgroup_fd = -1;
	if (cgroup2_mount(mnt, sizeof(mnt)) < 0) {
		*env_problem = 1;
		return tj_errf(err, TJ_E_IO, "--tag: no cgroup v2 mount in /proc/self/mounts "
			       "(mount -t cgroup2 none /sys/fs/cgroup/unified)");
	}
	if (where)
		snprintf(where, wherelen, "%s", mnt);
	t->cgroup_fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->cgroup_fd < 0) {
		*env_problem = 1;
		return tj_errf(err, TJ_E_IO, "--tag: %s: %s", mnt, strerror(errno));
	}
	if (!(t->skel = tag_bpf__open())) {
		*env_problem = 1;
		return tj_errf(err, TJ_E_IO, "--tag: cannot open the sock_ops program: %s",
			       strerror(errno));
	}
	t->skel->rodata->tag_node = node;
	t->skel->rodata->tag_per_netns = (uint8_t)(per_netns != 0);
	t->skel->rodata->tag_port = port;
	if (tag_bpf__load(t->skel)) {
		*env_problem = 1;
		return tj_errf(err, TJ_E_IO, "--tag: the kernel refused the sock_ops program "
			       "(TCP header options need Linux 5.10+): %s", strerror(errno));
	}
	t->link = bpf_program__attach_cgroup(t->skel->progs.tag_sockops, t->cgroup_fd);
	if (!t->link) {
		*env_problem = errno == EPERM || errno == EACCES || errno == EINVAL;
		return tj_errf(err, TJ_E_IO, "--tag: cannot attach the sock_ops program to %s: %s",
			       mnt, strerror(errno));
	}
	return 0;
}

int tj_tag_probe(int *env_problem, char *where, size_t wherelen,
		 struct tj_err *err)
{
	struct tj_tag t = { .cgroup_fd = -1 };
	*env_problem = 0;
	int rc = load_attach(&t, 0, 0, 0, env_problem, where, wherelen, err);
	close_parts(&t);
	return rc;
}

int tj_tag_open(struct tj_tag **tp, struct tj_capture *cap, uint32_t node,
		int per_netns, uint16_t port, struct tj_err *err)
{
	int env_problem = 0;
	struct tj_tag *t = calloc(1, sizeof(*t));
	*tp = NULL;
	if (!t)
		return tj_errf(err, TJ_E_NOMEM, "--tag: out of memory");
	int rc = load_attach(t, node, per_netns, port, &env_problem, NULL, 0, err);
	if (rc == 0)
		rc = tj_capture_add_ring(cap, bpf_map__fd(t->skel->maps.tag_ring), err);
	if (rc) {
		close_parts(t);
		free(t);
		return rc;
	}
	*tp = t;
	return 0;
}

int tj_tag_stats(struct tj_tag *t, uint64_t out[TJT__COUNT], struct tj_err *err)
{
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return tj_errf(err, TJ_E_IO, "--tag: cannot count CPUs");
	uint64_t *v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return tj_errf(err, TJ_E_NOMEM, "--tag: out of memory");
	int fd = bpf_map__fd(t->skel->maps.tag_stats);
	for (uint32_t i = 0; i < TJT__COUNT; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, v)) {
			free(v);
			return tj_errf(err, TJ_E_IO, "--tag: cannot read the counters: %s",
				       strerror(errno));
		}
		for (int c = 0; c < ncpus; c++)
			out[i] += v[c];
	}
	free(v);
	return 0;
}

void tj_tag_close(struct tj_tag *t)
{
	if (!t)
		return;
	close_parts(t);
	free(t);
}
