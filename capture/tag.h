/* capture --tag: load tag.bpf.c, attach it to the cgroup v2 root, feed
 * its TAG records into capture's drain, read its counters. */
#ifndef TJ_CAPTURE_TAG_H
#define TJ_CAPTURE_TAG_H

#include <stdint.h>
#include "../lib/error.h"
#include "loader.h"
#include "tag_common.h"

struct tj_tag;

/* Whether tagging can run here: a cgroup v2 mount, and a kernel that
 * loads and attaches the sock_ops program with its header-option helpers
 * (5.10+).  0, or non-zero with err saying why; *env_problem as in
 * tj_capture_probe.  On success where names the cgroup v2 mount. */
int tj_tag_probe(int *env_problem, char *where, size_t wherelen,
		 struct tj_err *err);

/* Load, attach, and add the TAG ring to cap's drain.  node is the id the
 * tags carry, unless per_netns (each namespace's inode then); port, if
 * not 0, limits tagging to connections with that local or remote port. */
int tj_tag_open(struct tj_tag **tp, struct tj_capture *cap, uint32_t node,
		int per_netns, uint16_t port, struct tj_err *err);

/* The counters (TJT_*), summed over CPUs. */
int tj_tag_stats(struct tj_tag *t, uint64_t out[TJT__COUNT], struct tj_err *err);

/* Detach; connections made afterwards are not tagged. */
void tj_tag_close(struct tj_tag *t);

#endif
