/* The start-up scan of open TCP sockets (see sockscan.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include "sockscan.h"
#include "../lib/util.h"

/* include/net/tcp_states.h */
#define ST_LISTEN    10
#define ST_TIME_WAIT 6
#define ST_NEW_SYN_RECV 12

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static struct tj_sockscan_ns *ns_get(struct tj_sockscan *s, uint32_t netns)
{
	for (size_t i = 0; i < s->nns; i++)
		if (s->ns[i].netns == netns)
			return &s->ns[i];
	if (tj_grow((void **)&s->ns, &s->capns, s->nns + 1, sizeof(*s->ns)) < 0)
		return NULL;
	struct tj_sockscan_ns *n = &s->ns[s->nns++];
	memset(n, 0, sizeof(*n));
	n->netns = netns;
	return n;
}

const struct tj_sockscan_ns *tj_sockscan_ns_find(const struct tj_sockscan *s,
						 uint32_t netns)
{
	for (size_t i = 0; i < s->nns; i++)
		if (s->ns[i].netns == netns)
			return &s->ns[i];
	return NULL;
}

static int add_listener(struct tj_sockscan *s, uint32_t netns,
			const struct inet_diag_msg *m)
{
	if (tj_grow((void **)&s->listeners, &s->caplisteners, s->nlisteners + 1,
		    sizeof(*s->listeners)) < 0)
		return -1;
	struct tj_sockscan_listener *l = &s->listeners[s->nlisteners++];
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(l, 0, sizeof(*l));
	l->netns = netns;
	l->family = m->idiag_family;
	l->port = ntohs(m->id.idiag_sport);
	l->inode = m->idiag_inode;
	if (m->idiag_family == AF_INET) {
		memcpy(l->addr, m->id.idiag_src, 4);
	} else {
		memcpy(l->addr, m->id.idiag_src, 16);
		/* Recorded as IPv4, as capture records such sockets' events. */
		if (memcmp(l->addr, v4mapped, 12) == 0) {
			uint8_t a[4];
			memcpy(a, l->addr + 12, 4);
			memset(l->addr, 0, 16);
			memcpy(l->addr, a, 4);
			l->family = AF_INET;
		}
	}
	return 0;
}

/* One sock_diag dump of one family over an open NETLINK_SOCK_DIAG
 * socket: listeners kept, the rest counted. */
static int dump_family(struct tj_sockscan *s, int nl, uint32_t netns, int family,
		       struct tj_err *err)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} q = {
		.nlh = { .nlmsg_len = sizeof(q), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.req = { .sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP,
			 /* TIME_WAIT and NEW_SYN_RECV entries are no sockets */
			 .idiag_states = ~((1u << ST_TIME_WAIT) | (1u << ST_NEW_SYN_RECV)) },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct tj_sockscan_ns *n = ns_get(s, netns);
	static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));

	if (!n)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	if (sendto(nl, &q, sizeof(q), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return tj_errf(err, TJ_E_IO, "capture: start-up scan: sock_diag request: %s",
			       strerror(errno));
	for (;;) {
		ssize_t len = recv(nl, buf, sizeof(buf), 0);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			return tj_errf(err, TJ_E_IO, "capture: start-up scan: sock_diag: %s",
				       strerror(errno));
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				/* No IPv6 in this kernel or namespace: nothing to list. */
				if (family == AF_INET6 && (e->error == -ENOENT ||
							   e->error == -EAFNOSUPPORT))
					return 0;
				return tj_errf(err, TJ_E_IO, "capture: start-up scan: sock_diag: %s",
					       strerror(-e->error));
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			if (m->idiag_state == ST_LISTEN) {
				if (add_listener(s, netns, m) < 0)
					return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
				n->listening++;
			} else {
				n->open++;
				s->open++;
			}
		}
	}
}

static int scan_ns(struct tj_sockscan *s, int nl, uint32_t netns, struct tj_err *err)
{
	int rc = dump_family(s, nl, netns, AF_INET, err);
	if (!rc)
		rc = dump_family(s, nl, netns, AF_INET6, err);
	return rc;
}

static int open_diag(void)
{
	return socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

/* Namespace files to visit: /proc/PID/ns/net of every process and the
 * names in /run/netns, each namespace once (by inode). */
struct nslist {
	uint64_t *ino;
	size_t n, cap;
};

static int seen_ino(const struct nslist *l, uint64_t ino)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ino[i] == ino)
			return 1;
	return 0;
}

/* Enter the namespace at path (unless it is seen; ours needs no
 * entering), scan it. */
static int visit(struct tj_sockscan *s, struct nslist *l, const char *path,
		 int self_fd, uint64_t self_ino, struct tj_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0 || seen_ino(l, st.st_ino))
		return 0; /* the process ended meanwhile, or done already */
	if (tj_grow((void **)&l->ino, &l->cap, l->n + 1, sizeof(*l->ino)) < 0)
		return tj_errf(err, TJ_E_NOMEM, "capture: out of memory");
	l->ino[l->n++] = st.st_ino;
	int nl = -1;
	if (st.st_ino == self_ino) {
		nl = open_diag();
	} else {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			s->ns_failed++;
			return 0;
		}
		/* A netlink socket stays in the namespace it was made in:
		 * enter, make it, come back at once. */
		if (setns(fd, CLONE_NEWNET) == 0) {
			nl = open_diag();
			if (setns(self_fd, CLONE_NEWNET) < 0) {
				close(fd);
				if (nl >= 0)
					close(nl);
				return tj_errf(err, TJ_E_IO, "capture: start-up scan: cannot return "
					       "to capture's network namespace: %s", strerror(errno));
			}
		}
		close(fd);
	}
	if (nl < 0) {
		s->ns_failed++;
		return 0;
	}
	int rc = scan_ns(s, nl, (uint32_t)st.st_ino, err);
	close(nl);
	return rc;
}

int tj_sockscan_run(struct tj_sockscan *s, const uint32_t *pids, size_t npids,
		    struct tj_err *err)
{
	struct nslist l = { 0 };
	struct stat self;
	int rc = 0, self_fd = -1;
	char path[300];

	memset(s, 0, sizeof(*s));
	s->ts_ns = mono_ns();
	self_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self_fd < 0 || fstat(self_fd, &self) < 0) {
		rc = tj_errf(err, TJ_E_IO, "capture: start-up scan: /proc/self/ns/net: %s",
			     strerror(errno));
		goto done;
	}
	if (npids) {
		for (size_t i = 0; i < npids && !rc; i++) {
			snprintf(path, sizeof(path), "/proc/%u/ns/net", pids[i]);
			rc = visit(s, &l, path, self_fd, self.st_ino, err);
		}
		goto done;
	}
	rc = visit(s, &l, "/proc/self/ns/net", self_fd, self.st_ino, err);
	const char *dirs[2] = { "/run/netns", "/proc" };
	for (int d = 0; d < 2 && !rc; d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *de;
		if (!dir)
			continue; /* no /run/netns: no named namespaces */
		while (!rc && (de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			if (d == 0)
				snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
			else if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
				snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
			else
				continue;
			rc = visit(s, &l, path, self_fd, self.st_ino, err);
		}
		closedir(dir);
	}
done:
	if (self_fd >= 0)
		close(self_fd);
	free(l.ino);
	s->dur_ns = mono_ns() - s->ts_ns;
	return rc;
}

void tj_sockscan_free(struct tj_sockscan *s)
{
	free(s->listeners);
	free(s->ns);
	memset(s, 0, sizeof(*s));
}
