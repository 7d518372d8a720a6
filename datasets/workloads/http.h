/* The little HTTP/1.1 the workload programs speak: a request line or status
 * line, headers (traceparent first, so it sits in a capture's payload
 * prefix), Content-Length bodies, keepalive unless "Connection: close".
 * Bounded buffers; anything else is a parse error, never a crash. */
#ifndef TJW_HTTP_H
#define TJW_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include "../label/label.h"

#define HTTP_BUF      8192      /* a connection's read buffer; a request must fit */
#define HTTP_BODY_MAX (1u << 20)
#define HTTP_MSG_MAX  (HTTP_BUF + 65536) /* what we write: head + body */

struct http_head {
	size_t head_len;  /* bytes up to and including the blank line */
	size_t body_len;  /* Content-Length (0 if absent) */
	int status;       /* responses: the status code */
	int close;        /* "Connection: close" */
	int has_tp;       /* a valid traceparent was found */
	struct tj_traceparent tp;
};

/* Parse a head at buf[0..len).  1: complete (h filled); 0: need more
 * bytes; -1: malformed (or longer than HTTP_BUF). */
int http_parse(const char *buf, size_t len, int response, struct http_head *h);

/* A blocking reader with a buffer for bytes read ahead. */
struct http_conn {
	int fd;
	size_t len;
	char buf[HTTP_BUF];
};
/* Read one whole message (the body is read and thrown away).  1: done;
 * 0: the peer closed before the first byte; -1: error or malformed. */
int http_read(struct http_conn *c, int response, struct http_head *h);
/* Write everything (retrying short writes and EINTR).  0 or -1. */
int write_all(int fd, const void *buf, size_t len);

/* Format a request or response head plus a body of `body` bytes into buf
 * (cap bytes).  Returns the length, or 0 if it does not fit. */
size_t http_format_request(char *buf, size_t cap, const char *path, const char *host,
			   const struct tj_traceparent *tp, size_t body, int close);
size_t http_format_response(char *buf, size_t cap, int status, size_t body, int close);

/* "HOST:PORT" (IPv4) -> address.  0 or -1. */
int parse_hostport(const char *text, struct sockaddr_in *sa);
/* Monotonic time in ns. */
uint64_t now_ns(void);
/* Sleep for ns (0: not at all). */
void sleep_ns(uint64_t ns);
/* xorshift-style generator state from a seed. */
uint64_t rng_next(uint64_t *s);
/* An exponential variate of the given mean (0 -> 0). */
uint64_t rng_exp(uint64_t *s, uint64_t mean);

#endif
