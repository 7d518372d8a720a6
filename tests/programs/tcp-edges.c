/* The corners of socket life the capture tests check, one after the
 * other, single-threaded, on loopback:
 *
 *   refused   connect() to a port nobody listens on (ECONNREFUSED)
 *   peek      a receive with MSG_PEEK (moves nothing) before a real one
 *   shutdown  shutdown(SHUT_WR) by the client, then the server's EOF
 *   quiet     UDP and a unix socket pair move bytes: never TCP events
 *   exit      one connection is left open: the process exit closes it
 *
 * It prints its own account, one line per fact the log must show:
 *
 *   refused PORT ERRNO
 *   conn CLIENT_PORT SERVER_PORT          (the connection of the rest)
 *   send LPORT RPORT BYTES OFFSET         recv LPORT RPORT BYTES OFFSET
 *   shutdown LPORT RPORT HOW
 *   close LPORT RPORT
 *   exit LPORT RPORT                      (closed by the exit, not close())
 *
 * usage: tcp-edges */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "tcp-edges: %s: %s\n", what, strerror(errno));
	exit(1);
}

static unsigned port_of(int fd, int peer)
{
	struct sockaddr_in a;
	socklen_t n = sizeof(a);

	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &n))
		die("getsockname");
	return ntohs(a.sin_port);
}

static struct sockaddr_in loopback(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return a;
}

static int listener(void)
{
	struct sockaddr_in a = loopback(0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4))
		die("listen");
	return fd;
}

/* A connected pair: *c the client, *s the server side. */
static void pair(int lfd, int *c, int *s)
{
	struct sockaddr_in a = loopback(port_of(lfd, 0));

	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	*s = accept(lfd, NULL, NULL);
	if (*s < 0)
		die("accept");
}

/* A port with no listener: bound, then closed, so the kernel answers RST. */
static void refused(void)
{
	int lfd = listener();
	unsigned port = port_of(lfd, 0);
	struct sockaddr_in a = loopback(port);
	int fd;

	close(lfd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != ECONNREFUSED)
		die("connect to a closed port did not fail with ECONNREFUSED");
	printf("refused %u %d\n", port, ECONNREFUSED);
	close(fd);
}

static void quiet(void)
{
	struct sockaddr_in a = loopback(0);
	int u = socket(AF_INET, SOCK_DGRAM, 0), sp[2];
	socklen_t n = sizeof(a);
	char b[16] = "udp";

	if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(u, (struct sockaddr *)&a, &n))
		die("udp");
	if (sendto(u, b, 3, 0, (struct sockaddr *)&a, sizeof(a)) != 3 || recv(u, b, sizeof(b), 0) != 3)
		die("udp send/recv");
	close(u);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || write(sp[0], "unix", 4) != 4 ||
	    read(sp[1], b, sizeof(b)) != 4)
		die("unix socket pair");
	close(sp[0]);
	close(sp[1]);
}

int main(void)
{
	char buf[64];
	int lfd, c, s, c2, s2;
	unsigned cp, sp;

	refused();
	lfd = listener();
	pair(lfd, &c, &s);
	cp = port_of(c, 0);
	sp = port_of(c, 1);
	printf("conn %u %u\n", cp, sp);

	if (send(c, "hello", 5, 0) != 5)
		die("send");
	printf("send %u %u 5 0\n", cp, sp);
	/* The peeked bytes are read again: the offsets must not count them. */
	if (recv(s, buf, sizeof(buf), MSG_PEEK) != 5 || recv(s, buf, 2, 0) != 2 ||
	    recv(s, buf, sizeof(buf), 0) != 3)
		die("recv");
	printf("recv %u %u 2 0\nrecv %u %u 3 2\n", sp, cp, sp, cp);

	quiet();

	if (shutdown(c, SHUT_WR))
		die("shutdown");
	printf("shutdown %u %u %d\n", cp, sp, SHUT_WR);
	if (recv(s, buf, sizeof(buf), 0) != 0)
		die("no EOF after the peer's shutdown");
	printf("recv %u %u 0 5\n", sp, cp);
	close(s);
	printf("close %u %u\n", sp, cp);
	close(c);
	printf("close %u %u\n", cp, sp);

	/* Left open: the exit closes both ends. */
	pair(lfd, &c2, &s2);
	printf("exit %u %u\nexit %u %u\n", port_of(c2, 0), port_of(c2, 1), port_of(s2, 0),
	       port_of(s2, 1));
	close(lfd);
	fflush(stdout);
	_exit(0);
}
