#include <stdio.h>
#include <string.h>
#include "error.h"

int tj_verrf(struct tj_err *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return -code;
}

int tj_errf(struct tj_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tj_verrf(err, code, fmt, ap);
	va_end(ap);
	return -code;
}

void tj_warn(const char *fmt, ...)
{
	va_list ap;
	fputs("tracejoin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int tj_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tracejoin %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'tracejoin %s --help')\n", cmd);
	return TJ_EXIT_USAGE;
}
