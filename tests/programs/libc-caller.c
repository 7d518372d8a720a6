/* A loopback exchange whose writes and reads go through libc's write()
 * and read() from functions with known names, for the `capture --stack`
 * test of wrapper callers: libc's wrappers keep no frame, so the
 * frame-pointer unwinder alone skips tj_test_writer and tj_test_reader
 * (it shows write+0x.. then main).  Built with frame pointers
 * (capture/build.mk).  It exchanges once single-threaded (glibc's wrapper
 * makes the call at once), then again after starting a thread (the
 * wrapper's cancellable path, with a frame of 0x28 bytes on the stack).
 *
 * usage: libc-caller [-n MESSAGES]
 * Prints "ok N" after N round trips in each phase, and lingers 300 ms. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "loopback.h"

#define NOINLINE __attribute__((noinline))

NOINLINE ssize_t tj_test_writer(int fd, const char *buf, size_t n)
{
	ssize_t r = write(fd, buf, n);
	__asm__ volatile("" ::: "memory"); /* no tail call: keep this frame */
	return r;
}

NOINLINE ssize_t tj_test_reader(int fd, char *buf, size_t n)
{
	ssize_t r = read(fd, buf, n);
	__asm__ volatile("" ::: "memory");
	return r;
}

static void *idle(void *arg)
{
	return arg;
}

/* n messages from a to b and back, all through the two functions. */
static int exchange(int a, int b, int n)
{
	char msg[16] = "hello, callers!", buf[16];
	int done = 0;

	for (int i = 0; i < n; i++) {
		if (tj_test_writer(a, msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
		    tj_test_reader(b, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    tj_test_writer(b, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    tj_test_reader(a, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
		done++;
	}
	return done;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	int lfd, c, s, n = 3, d1, d2;
	pthread_t t;

	if (argc == 3 && strcmp(argv[1], "-n") == 0)
		n = atoi(argv[2]);
	lfd = listen_loopback(&a, "libc-caller");
	if (lfd < 0)
		return 1;
	/* One thread: connect completes through the backlog, then accept. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) || (s = accept(lfd, NULL, NULL)) < 0) {
		perror("libc-caller: connect");
		return 1;
	}
	d1 = exchange(c, s, n);
	if (pthread_create(&t, NULL, idle, NULL) || pthread_join(t, NULL))
		return 1;
	d2 = exchange(c, s, n);
	close(c);
	close(s);
	close(lfd);
	printf("ok %d %d\n", d1, d2);
	usleep(300000);
	return d1 == n && d2 == n ? 0 : 1;
}
