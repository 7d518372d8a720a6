#include <stdio.h>
#include <string.h>
#include "error.h"
#include "util.h"

/* Messages echo names and fields read from files: whatever they hold,
 * no escape sequence reaches the terminal. */
int tj_verrf(struct tj_err *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		char raw[TJ_ERRMSG_MAX];
		err->code = code;
		vsnprintf(raw, sizeof(raw), fmt, ap);
		tj_escape(err->msg, sizeof(err->msg), raw);
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

static const char *command_name;

void tj_set_command(const char *name)
{
	command_name = name;
}

void tj_warn(const char *fmt, ...)
{
	va_list ap;
	char raw[TJ_ERRMSG_MAX], safe[TJ_ERRMSG_MAX];
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	fprintf(stderr, "tracejoin%s%s: %s\n", command_name ? " " : "",
		command_name ? command_name : "", tj_escape(safe, sizeof(safe), raw));
}

int tj_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	char raw[TJ_ERRMSG_MAX], safe[TJ_ERRMSG_MAX];
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	fprintf(stderr, "tracejoin %s: %s (see 'tracejoin %s --help')\n", cmd,
		tj_escape(safe, sizeof(safe), raw), cmd);
	return TJ_EXIT_USAGE;
}
