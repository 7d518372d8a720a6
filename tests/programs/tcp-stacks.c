/* A loopback exchange whose sends and receives happen inside functions
 * with known names, for the `capture --stack` tests: the client sends
 * from tj_test_send_marker, the server receives in tj_test_recv_marker.
 * Built with frame pointers (capture/build.mk) so the kernel's unwinder
 * can walk it.  The calls go through syscall(2), whose libc code leaves
 * the frame pointer alone: the send(2) and recv(2) wrappers of a libc
 * built without frame pointers use that register for data, and the
 * unwinder stops in them (capture/README.md, "Call stacks").
 *
 * usage: tcp-stacks [-n MESSAGES]
 * Prints "ok N" after N round trips, and lingers 300 ms before it exits so
 * that capture reads its memory map while it lives. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "loopback.h"

#define NOINLINE __attribute__((noinline))

static int messages = 5;

NOINLINE static ssize_t do_send(int fd, const char *buf, size_t n)
{
	ssize_t r = syscall(SYS_sendto, fd, buf, n, 0, NULL, 0);
	__asm__ volatile("" ::: "memory"); /* no tail call: keep this frame */
	return r;
}

NOINLINE static ssize_t do_recv(int fd, char *buf, size_t n)
{
	ssize_t r = syscall(SYS_recvfrom, fd, buf, n, MSG_WAITALL, NULL, NULL);
	__asm__ volatile("" ::: "memory");
	return r;
}

NOINLINE ssize_t tj_test_send_marker(int fd, const char *buf, size_t n)
{
	ssize_t r = do_send(fd, buf, n);
	__asm__ volatile("" ::: "memory");
	return r;
}

NOINLINE ssize_t tj_test_recv_marker(int fd, char *buf, size_t n)
{
	ssize_t r = do_recv(fd, buf, n);
	__asm__ volatile("" ::: "memory");
	return r;
}

static void *serve(void *arg)
{
	int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
	char buf[16];

	if (fd < 0)
		return NULL;
	for (int i = 0; i < messages; i++) {
		if (tj_test_recv_marker(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	char msg[16] = "hello, stacks!!", back[16];
	pthread_t t;
	int lfd, fd, done = 0;

	if (argc == 3 && strcmp(argv[1], "-n") == 0)
		messages = atoi(argv[2]);
	lfd = listen_loopback(&a, "tcp-stacks");
	if (lfd < 0)
		return 1;
	pthread_create(&t, NULL, serve, &lfd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("tcp-stacks: connect");
		return 1;
	}
	for (int i = 0; i < messages; i++) {
		if (tj_test_send_marker(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
		    read(fd, back, sizeof(back)) != (ssize_t)sizeof(back))
			break;
		done++;
	}
	close(fd);
	pthread_join(t, NULL);
	close(lfd);
	printf("ok %d\n", done);
	usleep(300000);
	return done == messages ? 0 : 1;
}
