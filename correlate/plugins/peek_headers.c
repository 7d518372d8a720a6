/* peek_headers: a test plugin that plays the cheat.  It looks in every
 * payload prefix it is shown for a trace-context header with a readable
 * value, and fails the run naming it if one got through the host's
 * masking.  It answers no call (the host fills in "no parent").
 *
 * param expect_payloads=N: fail at the end if fewer than N messages came
 * with a payload, so a test cannot pass by seeing no payload at all. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "correlate/correlator.h"

static const char *const names[] = {
	"traceparent", "tracestate", "x-request-id", "x-b3-traceid",
	"x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "b3",
	"uber-trace-id", "x-amzn-trace-id", "x-cloud-trace-context",
	"grpc-trace-bin", NULL,
};

struct peek {
	double expect;
	unsigned long with_payload, masked_seen;
};

static int peek_open(void **st, const struct tj_params *p, struct tj_err *err)
{
	static const char *const known[] = { "expect_payloads", NULL };
	double expect;
	int rc;

	if ((rc = tj_params_check(p, known, "peek_headers", err)) < 0 ||
	    (rc = tj_param_double(p, "expect_payloads", 0, &expect, err)) < 0)
		return rc;
	struct peek *k = calloc(1, sizeof(*k));
	if (!k)
		return tj_plugin_errf(err, TJ_E_NOMEM, "peek_headers: out of memory");
	k->expect = expect;
	*st = k;
	return 0;
}

/* A header line "name: value" with any value character that is not the
 * mask's '*' (or a blank) is a leak. */
static const char *leak(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (i && p[i - 1] != '\n')
			continue;
		for (size_t n = 0; names[n]; n++) {
			size_t nl = strlen(names[n]);
			if (len - i < nl + 1 || strncasecmp((const char *)p + i, names[n], nl))
				continue;
			size_t j = i + nl;
			while (j < len && (p[j] == ' ' || p[j] == '\t'))
				j++;
			if (j >= len || p[j] != ':')
				continue;
			for (j++; j < len && p[j] != '\r' && p[j] != '\n'; j++)
				if (!isspace(p[j]) && p[j] != '*')
					return names[n];
		}
	}
	return NULL;
}

static int peek_message(void *st, const struct tj_message *m,
			struct tj_edge_sink *out, struct tj_err *err)
{
	struct peek *k = st;
	if (!m->payload || !m->payload_len)
		return 0;
	k->with_payload++;
	const char *name = leak(m->payload, m->payload_len);
	if (name) {
		char key[64];
		snprintf(key, sizeof(key), "%u:%llu:%s:%llu", m->key.node,
			 (unsigned long long)m->key.sock,
			 m->key.dir == TJ_DIR_OUT ? "out" : "in",
			 (unsigned long long)m->key.offset);
		return tj_plugin_errf(err, TJ_E_FORMAT,
				      "peek_headers: read trace header '%s' in message %s: "
				      "masking failed", name, key);
	}
	return 0;
}

static int peek_finish(void *st, struct tj_edge_sink *out, struct tj_err *err)
{
	struct peek *k = st;
	if ((double)k->with_payload < k->expect)
		return tj_plugin_errf(err, TJ_E_FORMAT, "peek_headers: only %lu messages came "
				      "with a payload (fewer than expect_payloads)",
				      k->with_payload);
	fprintf(stderr, "peek_headers: %lu payloads read, no trace header readable\n",
		k->with_payload);
	return 0;
}

static void peek_close(void *st)
{
	free(st);
}

const struct tj_correlator tracejoin_correlator = {
	.abi = TJ_CORRELATOR_ABI,
	.name = "peek_headers",
	.description = "test: fails if any trace header in a payload is readable",
	.params_help = "expect_payloads=0  fail unless this many payloads were seen",
	.open = peek_open,
	.message = peek_message,
	.finish = peek_finish,
	.close = peek_close,
};
