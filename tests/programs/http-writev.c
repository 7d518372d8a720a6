/* An HTTP exchange over loopback whose headers are split over many
 * iovecs, as servers that write with writev/sendmsg do (Apache httpd's
 * proxy sends the request line as its own iovec), for the
 * `capture --payload` tests: a payload prefix must cover the message, not
 * its first buffer.
 *
 * The client sends each request in 8 pieces, the traceparent header cut
 * across three of them, with writev (even requests) or sendmsg (odd
 * ones), and reads each response with recvmsg into 4-byte pieces.  The
 * server reads each request with readv into 16-byte pieces and answers
 * with writev in 3 pieces.  Request i carries
 *   traceparent: 00-<32 hex: trace i>-<16 hex: span i>-01
 * with trace id 4a...4a0i and span id 5b...5b0i (i < 10).
 *
 * usage: http-writev [-n REQUESTS]   (1..9, default 5)
 * Prints "ok N" after N exchanges. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "loopback.h"

static int requests = 5;

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/* Reads one header block (up to the blank line) with readv into 16-byte
 * pieces, 8 at a time: a whole request in one call, in 7 pieces. */
static ssize_t read_request(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got + 128 <= cap) {
		struct iovec v[8];
		ssize_t r;
		for (int i = 0; i < 8; i++) {
			v[i].iov_base = buf + got + 16 * i;
			v[i].iov_len = 16;
		}
		r = readv(fd, v, 8);
		if (r <= 0)
			return -1;
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return (ssize_t)got;
	}
	return -1;
}

static void *serve(void *arg)
{
	int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
	char buf[1024];

	if (fd < 0)
		return NULL;
	for (int i = 0; i < requests; i++) {
		struct iovec v[3] = {
			{ (void *)reply, 17 },      /* status line */
			{ (void *)(reply + 17), 19 }, /* Content-Length */
			{ (void *)(reply + 36), 2 },  /* blank line */
		};
		if (read_request(fd, buf, sizeof(buf) - 1) < 0)
			break;
		if (writev(fd, v, 3) != (ssize_t)strlen(reply))
			break;
	}
	close(fd);
	return NULL;
}

/* One request in 8 pieces; the traceparent value is cut twice. */
static int send_request(int fd, int i)
{
	char trace[33], span[17];
	struct iovec v[8];
	struct msghdr m = { .msg_iov = v, .msg_iovlen = 8 };
	size_t total = 0;
	ssize_t r;

	for (int k = 0; k < 32; k += 2)
		memcpy(trace + k, "4a", 2);
	trace[30] = '0';
	trace[31] = (char)('0' + i);
	trace[32] = '\0';
	for (int k = 0; k < 16; k += 2)
		memcpy(span + k, "5b", 2);
	span[14] = '0';
	span[15] = (char)('0' + i);
	span[16] = '\0';
	v[0] = (struct iovec){ "GET /r HTTP/1.1\r\n", 17 };
	v[1] = (struct iovec){ "Host: localhost\r\n", 17 };
	v[2] = (struct iovec){ "traceparent: 00-", 16 };
	v[3] = (struct iovec){ trace, 20 };
	v[4] = (struct iovec){ trace + 20, 12 };
	v[5] = (struct iovec){ "-", 1 };
	v[6] = (struct iovec){ span, 16 };
	v[7] = (struct iovec){ "-01\r\n\r\n", 7 };
	for (int k = 0; k < 8; k++)
		total += v[k].iov_len;
	r = i % 2 ? sendmsg(fd, &m, 0) : writev(fd, v, 8);
	return r == (ssize_t)total ? 0 : -1;
}

/* The response, read with recvmsg into 4-byte pieces. */
static int read_reply(int fd)
{
	char buf[sizeof(reply) + 8];
	size_t got = 0, want = strlen(reply);

	while (got < want) {
		struct iovec v[4];
		struct msghdr m = { .msg_iov = v, .msg_iovlen = 4 };
		ssize_t r;
		for (int i = 0; i < 4; i++) {
			v[i].iov_base = buf + got + 4 * i;
			v[i].iov_len = 4;
		}
		if (want - got < 16) /* never read into the next response */
			for (int i = 0; i < 4; i++) {
				size_t at = 4 * (size_t)i, left = want - got;
				v[i].iov_len = at >= left ? 0 : (left - at < 4 ? left - at : 4);
			}
		r = recvmsg(fd, &m, 0);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return memcmp(buf, reply, want) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	pthread_t t;
	int lfd, fd, done = 0;

	if (argc == 3 && strcmp(argv[1], "-n") == 0)
		requests = atoi(argv[2]);
	if (requests < 1 || requests > 9) {
		fprintf(stderr, "usage: http-writev [-n REQUESTS (1..9)]\n");
		return 2;
	}
	lfd = listen_loopback(&a, "http-writev");
	if (lfd < 0)
		return 1;
	pthread_create(&t, NULL, serve, &lfd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("http-writev: connect");
		return 1;
	}
	for (int i = 1; i <= requests; i++) {
		if (send_request(fd, i) || read_reply(fd))
			break;
		done++;
	}
	close(fd);
	pthread_join(t, NULL);
	close(lfd);
	printf("ok %d\n", done);
	return done == requests ? 0 : 1;
}
