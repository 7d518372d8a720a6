/* The workloads' HTTP/1.1 subset (http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "http.h"

static const char *find_blank_line(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return buf + i + 1;
	return NULL;
}

int http_parse(const char *buf, size_t len, int response, struct http_head *h)
{
	const char *end = find_blank_line(buf, len);
	if (!end)
		return len >= HTTP_BUF ? -1 : 0;
	memset(h, 0, sizeof(*h));
	h->head_len = (size_t)(end - buf);
	const char *line = buf, *stop = end - 2;
	const char *eol = memchr(line, '\r', (size_t)(stop - line));
	if (!eol)
		return -1;
	if (response) {
		if ((size_t)(eol - line) < 12 || strncmp(line, "HTTP/1.", 7) != 0)
			return -1;
		char code[4] = { line[9], line[10], line[11], 0 };
		char *e;
		long st = strtol(code, &e, 10);
		if (*e || st < 100 || st > 599)
			return -1;
		h->status = (int)st;
	} else {
		const char *sp = memchr(line, ' ', (size_t)(eol - line));
		if (!sp || sp == line || (size_t)(eol - sp) < 10 ||
		    strncmp(eol - 9, " HTTP/1.", 8) != 0)
			return -1;
	}
	for (line = eol + 2; line < stop; line = eol + 2) {
		eol = memchr(line, '\r', (size_t)(stop - line) + 1);
		if (!eol || eol[1] != '\n')
			return -1;
		size_t n = (size_t)(eol - line);
		const char *colon = memchr(line, ':', n);
		if (!colon)
			return -1;
		size_t nl = (size_t)(colon - line);
		const char *v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		size_t vl = (size_t)(eol - v);
		if (nl == 14 && strncasecmp(line, "content-length", 14) == 0) {
			char num[24];
			if (vl == 0 || vl >= sizeof(num))
				return -1;
			memcpy(num, v, vl);
			num[vl] = 0;
			char *e;
			errno = 0;
			unsigned long long b = strtoull(num, &e, 10);
			if (*e || errno || num[0] == '-' || b > HTTP_BODY_MAX)
				return -1;
			h->body_len = (size_t)b;
		} else if (nl == 10 && strncasecmp(line, "connection", 10) == 0) {
			h->close = vl == 5 && strncasecmp(v, "close", 5) == 0;
		} else if (nl == 11 && strncasecmp(line, "traceparent", 11) == 0) {
			h->has_tp = tj_tp_parse_value(v, vl, &h->tp) == 0;
		}
	}
	return 1;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int http_read(struct http_conn *c, int response, struct http_head *h)
{
	int rc;
	while ((rc = http_parse(c->buf, c->len, response, h)) == 0) {
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return c->len == 0 ? 0 : -1;
		c->len += (size_t)n;
	}
	if (rc < 0)
		return -1;
	size_t have = c->len - h->head_len;
	if (have >= h->body_len) {
		size_t used = h->head_len + h->body_len;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		return 1;
	}
	size_t left = h->body_len - have;
	c->len = 0;
	while (left) {
		ssize_t n = read(c->fd, c->buf, left < sizeof(c->buf) ? left : sizeof(c->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		left -= (size_t)n;
	}
	return 1;
}

static size_t add_body(char *buf, size_t cap, int n, size_t body)
{
	if (n < 0 || (size_t)n >= cap || body > cap - (size_t)n)
		return 0;
	memset(buf + n, 'x', body);
	return (size_t)n + body;
}

size_t http_format_request(char *buf, size_t cap, const char *path, const char *host,
			   const struct tj_traceparent *tp, size_t body, int close)
{
	char t[TJ_TP_STRLEN];
	int n = snprintf(buf, cap,
			 "GET /%s HTTP/1.1\r\ntraceparent: %s\r\nHost: %s\r\n%sContent-Length: %zu\r\n\r\n",
			 path, tj_tp_format(tp, t), host, close ? "Connection: close\r\n" : "", body);
	return add_body(buf, cap, n, body);
}

size_t http_format_response(char *buf, size_t cap, int status, size_t body, int close)
{
	int n = snprintf(buf, cap, "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\n\r\n", status,
			 status == 200 ? "OK" : "Bad Gateway", close ? "Connection: close\r\n" : "",
			 body);
	return add_body(buf, cap, n, body);
}

int parse_hostport(const char *text, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	if (!colon || (size_t)(colon - text) >= sizeof(host) || colon == text)
		return -1;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = 0;
	char *e;
	long port = strtol(colon + 1, &e, 10);
	if (*e || colon[1] == 0 || port <= 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ns(uint64_t ns)
{
	if (!ns)
		return;
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return tj_tp_mix(*s);
}

uint64_t rng_exp(uint64_t *s, uint64_t mean)
{
	if (!mean)
		return 0;
	double u = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
	return (uint64_t)(-log(u) * (double)mean);
}
