/* What the test programs share: a TCP listener on 127.0.0.1, port chosen
 * by the kernel.  Header-only: each program is built from its one file. */
#ifndef TJ_TEST_PROGRAMS_LOOPBACK_H
#define TJ_TEST_PROGRAMS_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

/* Listens on 127.0.0.1 (backlog 1); *a gets the address to connect to.
 * Returns the socket, or -1 after a message naming who. */
static inline int listen_loopback(struct sockaddr_in *a, const char *who)
{
	socklen_t alen = sizeof(*a);
	int lfd;

	*a = (struct sockaddr_in){ .sin_family = AF_INET };
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)a, sizeof(*a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)a, &alen)) {
		fprintf(stderr, "%s: listen: ", who);
		perror(NULL);
		return -1;
	}
	return lfd;
}

#endif
