/* A request/response workload with a known shape, for the capture tests:
 * threaded server (a thread per connection) and client threads, several
 * requests per keepalive connection, reads deliberately smaller than the
 * messages (partial reads), and a mix of syscalls (write, send, sendmsg,
 * writev, sendmmsg; read, recv, recvmsg, readv, recvmmsg).  At the end each process prints
 * every socket syscall it made, so a test can compare the capture with
 * the program's own account, line for line:
 *
 *   connect TID LPORT RPORT          accept TID LPORT RPORT
 *   send|recv TID LPORT RPORT BYTES OFFSET     close TID LPORT RPORT
 *
 * usage: tcp-pingpong [both|server|client] [-a ADDR] [-p PORT]
 *                     [-c CONNECTIONS] [-r REQUESTS] [-w FILE] [-m]
 * -m: a sendmmsg is told as one send line per message (what capture
 * --hooks sock sees: the socket layer handles each message on its own)
 * instead of one for the call (what the syscall sees).
 * -w: after each client's first request, say "paused" on stderr and wait
 * until FILE exists (so a capture can start on open connections).
 * "both" (the default) runs server and client in one process on
 * 127.0.0.1 (-a ::1 for IPv6); "server" prints "port N" first, then serves -c connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_LINES 4096
#define SERVER_CHUNK 300 /* server reads at most this much at a time */
#define CLIENT_CHUNK 512

struct conn_log {
	pid_t tid;
	int fd;
	uint16_t lport, rport;
	uint64_t off_out, off_in;
	char *lines[MAX_LINES];
	int nlines;
};

static void die(const char *what)
{
	fprintf(stderr, "tcp-pingpong: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void note(struct conn_log *c, const char *fmt, ...)
{
	va_list ap;
	char buf[160];

	if (c->nlines == MAX_LINES) {
		fprintf(stderr, "tcp-pingpong: too many lines\n");
		exit(1);
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c->lines[c->nlines++] = strdup(buf);
}

static void ports(struct conn_log *c)
{
	struct sockaddr_storage a;
	socklen_t n = sizeof(a);

	c->tid = (pid_t)syscall(SYS_gettid);
	if (getsockname(c->fd, (struct sockaddr *)&a, &n))
		die("getsockname");
	c->lport = ntohs(((struct sockaddr_in *)&a)->sin_port);
	n = sizeof(a);
	if (getpeername(c->fd, (struct sockaddr *)&a, &n))
		die("getpeername");
	c->rport = ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static int per_message; /* -m */

/* One send syscall of a kind chosen by k; logs what it moved. */
static ssize_t do_send(struct conn_log *c, const char *buf, size_t len, int k)
{
	ssize_t n;

	c->tid = (pid_t)syscall(SYS_gettid);
	switch (k % 5) {
	case 0: n = write(c->fd, buf, len); break;
	case 1: n = send(c->fd, buf, len, 0); break;
	case 2: {
		struct iovec iov[2] = { { (void *)buf, len / 2 },
					{ (void *)(buf + len / 2), len - len / 2 } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		n = sendmsg(c->fd, &m, 0);
		break;
	}
	case 3: {
		struct iovec iov[2] = { { (void *)buf, 4 }, { (void *)(buf + 4), len - 4 } };
		n = writev(c->fd, iov, 2);
		break;
	}
	default: {
		/* Two messages in one call; on TCP they are one stream. */
		struct iovec iov[2] = { { (void *)buf, len / 2 },
					{ (void *)(buf + len / 2), len - len / 2 } };
		struct mmsghdr mm[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
					 { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };
		int m = sendmmsg(c->fd, mm, 2, 0);
		n = m < 0 ? -1 : (ssize_t)mm[0].msg_len + (m > 1 ? mm[1].msg_len : 0);
		if (per_message && m > 1) {
			note(c, "send %d %u %u %u %llu", c->tid, c->lport, c->rport,
			     mm[0].msg_len, (unsigned long long)c->off_out);
			note(c, "send %d %u %u %u %llu", c->tid, c->lport, c->rport,
			     mm[1].msg_len, (unsigned long long)c->off_out + mm[0].msg_len);
			c->off_out += n;
			return n;
		}
		break;
	}
	}
	if (n < 0)
		die("send");
	note(c, "send %d %u %u %zd %llu", c->tid, c->lport, c->rport, n,
	     (unsigned long long)c->off_out);
	c->off_out += n;
	return n;
}

static void send_all(struct conn_log *c, const char *buf, size_t len, int k)
{
	size_t done = 0;
	while (done < len)
		done += do_send(c, buf + done, len - done, k);
}

static ssize_t do_recv(struct conn_log *c, char *buf, size_t len, int k)
{
	ssize_t n;

	c->tid = (pid_t)syscall(SYS_gettid);
	switch (k % 5) {
	case 0: n = read(c->fd, buf, len); break;
	case 1: n = recv(c->fd, buf, len, 0); break;
	case 2: {
		struct iovec iov = { buf, len };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		n = recvmsg(c->fd, &m, 0);
		break;
	}
	case 3: {
		struct iovec iov = { buf, len };
		n = readv(c->fd, &iov, 1);
		break;
	}
	default: {
		struct iovec iov = { buf, len };
		struct mmsghdr mm = { .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } };
		n = recvmmsg(c->fd, &mm, 1, 0, NULL) < 0 ? -1 : (ssize_t)mm.msg_len;
		break;
	}
	}
	if (n < 0)
		die("recv");
	note(c, "recv %d %u %u %zd %llu", c->tid, c->lport, c->rport, n,
	     (unsigned long long)c->off_in);
	c->off_in += n;
	return n;
}

/* Read exactly len bytes in reads of at most chunk; 0 on a clean EOF
 * before the first byte. */
static int recv_exact(struct conn_log *c, char *buf, size_t len, size_t chunk, int k)
{
	size_t done = 0;
	while (done < len) {
		size_t want = len - done < chunk ? len - done : chunk;
		ssize_t n = do_recv(c, buf + done, want, k);
		if (n == 0) {
			if (done == 0)
				return 0;
			fprintf(stderr, "tcp-pingpong: cut short\n");
			exit(1);
		}
		done += n;
	}
	return 1;
}

static const char *addr = "127.0.0.1";
static const char *wait_file;
static pthread_mutex_t pause_lock = PTHREAD_MUTEX_INITIALIZER;
static int paused;
static int connections = 3, requests = 5;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static void print_log(struct conn_log *c)
{
	pthread_mutex_lock(&print_lock);
	for (int i = 0; i < c->nlines; i++) {
		printf("%s\n", c->lines[i]);
		free(c->lines[i]);
	}
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
}

/* addr:port as IPv4 or IPv6 (an address with a colon). */
static socklen_t make_addr(struct sockaddr_storage *ss, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &a->sin6_addr) != 1)
			die(addr);
		return sizeof(*a);
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	if (inet_pton(AF_INET, addr, &a->sin_addr) != 1)
		die(addr);
	return sizeof(*a);
}

static void *serve(void *arg)
{
	struct conn_log *c = arg;
	char *buf = malloc(1 << 16);
	int k = 0;

	for (;;) {
		uint32_t len;
		if (!recv_exact(c, (char *)&len, 4, 4, k))
			break;
		len = ntohl(len);
		if (len > (1 << 16) - 4)
			exit(1);
		recv_exact(c, buf, len, SERVER_CHUNK, k + 1);
		/* Reply: a header and a body larger than the client's reads. */
		uint32_t rlen = 1500 + len;
		uint32_t be = htonl(rlen);
		memcpy(buf, &be, 4);
		memset(buf + 4, 'r', rlen);
		send_all(c, buf, 4 + rlen, k);
		k++;
	}
	note(c, "close %d %u %u", c->tid, c->lport, c->rport);
	close(c->fd);
	free(buf);
	print_log(c);
	free(c);
	return NULL;
}

static void *client(void *arg)
{
	int port = *(int *)arg;
	struct conn_log *c = calloc(1, sizeof(*c));
	struct sockaddr_storage sa;
	socklen_t salen = make_addr(&sa, port);
	char *buf = malloc(1 << 16);

	c->fd = socket(sa.ss_family, SOCK_STREAM, 0);
	if (c->fd < 0)
		die("socket");
	if (connect(c->fd, (struct sockaddr *)&sa, salen))
		die("connect");
	ports(c);
	note(c, "connect %d %u %u", c->tid, c->lport, c->rport);
	for (int i = 0; i < requests; i++) {
		uint32_t len = 100 + 137 * i, be = htonl(len);
		memcpy(buf, &be, 4);
		memset(buf + 4, 'q', len);
		send_all(c, buf, 4 + len, i);
		if (!recv_exact(c, (char *)&be, 4, 4, i))
			exit(1);
		recv_exact(c, buf, ntohl(be), CLIENT_CHUNK, i + 1);
		if (i == 0 && wait_file) {
			pthread_mutex_lock(&pause_lock);
			if (++paused == connections) {
				fprintf(stderr, "paused\n");
				fflush(stderr);
			}
			pthread_mutex_unlock(&pause_lock);
			while (access(wait_file, F_OK) != 0)
				usleep(10000);
		}
	}
	note(c, "close %d %u %u", c->tid, c->lport, c->rport);
	close(c->fd);
	free(buf);
	print_log(c);
	free(c);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = "both";
	int port = 0, opt, lfd = -1;

	if (argc > 1 && argv[1][0] != '-') {
		mode = argv[1];
		argv++;
		argc--;
	}
	while ((opt = getopt(argc, argv, "a:p:c:r:w:m")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'c': connections = atoi(optarg); break;
		case 'r': requests = atoi(optarg); break;
		case 'w': wait_file = optarg; break;
		case 'm': per_message = 1; break;
		default:
			fprintf(stderr, "usage: tcp-pingpong [both|server|client] [-a ADDR] "
				"[-p PORT] [-c CONNECTIONS] [-r REQUESTS] [-w FILE] [-m]\n");
			return 2;
		}
	}
	int serving = strcmp(mode, "client") != 0, calling = strcmp(mode, "server") != 0;
	pthread_t st[64], ct[64];
	if (connections < 1 || connections > 64)
		return 2;
	if (serving) {
		struct sockaddr_storage sa;
		socklen_t salen = make_addr(&sa, port), n = sizeof(sa);
		int one = 1;
		lfd = socket(sa.ss_family, SOCK_STREAM, 0);
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, salen) || listen(lfd, 64))
			die("listen");
		getsockname(lfd, (struct sockaddr *)&sa, &n);
		port = ntohs(((struct sockaddr_in *)&sa)->sin_port); /* same place in v6 */
		if (!calling) {
			printf("port %d\n", port);
			fflush(stdout);
		}
	}
	if (calling)
		for (int i = 0; i < connections; i++)
			pthread_create(&ct[i], NULL, client, &port);
	if (serving)
		for (int i = 0; i < connections; i++) {
			struct conn_log *c = calloc(1, sizeof(*c));
			c->fd = accept(lfd, NULL, NULL);
			if (c->fd < 0)
				die("accept");
			ports(c); /* the accepting thread */
			note(c, "accept %d %u %u", c->tid, c->lport, c->rport);
			pthread_create(&st[i], NULL, serve, c);
		}
	for (int i = 0; i < connections; i++) {
		if (calling)
			pthread_join(ct[i], NULL);
		if (serving)
			pthread_join(st[i], NULL);
	}
	if (lfd >= 0)
		close(lfd);
	return 0;
}
