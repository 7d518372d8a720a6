/* Masking trace-context headers in payload prefixes, so that no correlator
 * can read the answer off the wire.  HTTP/1 header lines only: a line that
 * starts with a known name (case-insensitive), optional blanks and ':' has
 * its value overwritten with '*' up to the end of the line (or of the
 * prefix, which may stop mid-line).  The start of the buffer counts as a
 * line start, since a prefix may begin anywhere. */
#include <string.h>
#include <strings.h>
#include "replay.h"

struct header_name {
	const char *name;
	size_t len;
	int prefix; /* matches any name that starts with it */
};

#define H(s) { s, sizeof(s) - 1, 0 }
#define P(s) { s, sizeof(s) - 1, 1 }
static const struct header_name trace_headers[] = {
	H("traceparent"), H("tracestate"), H("baggage"),      /* W3C */
	H("x-request-id"), H("x-correlation-id"),
	P("x-b3-"), H("b3"),                                  /* Zipkin */
	H("uber-trace-id"), P("uberctx-"),                    /* Jaeger */
	P("ot-tracer-"),                                      /* OpenTracing */
	H("x-amzn-trace-id"), H("x-cloud-trace-context"),
	H("grpc-trace-bin"), H("sw8"), P("x-datadog-"),
};
#undef H
#undef P

/* Length of the header name at p if it is a trace header, else 0. */
static size_t trace_name_at(const uint8_t *p, size_t left)
{
	for (size_t i = 0; i < sizeof(trace_headers) / sizeof(*trace_headers); i++) {
		const struct header_name *h = &trace_headers[i];
		if (left < h->len || strncasecmp((const char *)p, h->name, h->len))
			continue;
		size_t n = h->len;
		if (h->prefix) /* the rest of the token */
			while (n < left && p[n] != ':' && p[n] != ' ' &&
			       p[n] != '\t' && p[n] != '\r' && p[n] != '\n')
				n++;
		return n;
	}
	return 0;
}

unsigned tj_payload_mask(uint8_t *buf, size_t len)
{
	unsigned masked = 0;
	size_t i = 0;
	while (i < len) {
		size_t n = trace_name_at(buf + i, len - i);
		size_t j = i + n;
		if (n) {
			while (j < len && (buf[j] == ' ' || buf[j] == '\t'))
				j++;
			if (j < len && buf[j] == ':') {
				for (j++; j < len && buf[j] != '\r' && buf[j] != '\n'; j++)
					if (buf[j] != ' ' && buf[j] != '\t')
						buf[j] = '*';
				masked++;
			}
		}
		/* on to the next line */
		const uint8_t *nl = memchr(buf + j, '\n', len - j);
		if (!nl)
			break;
		i = (size_t)(nl - buf) + 1;
	}
	return masked;
}
