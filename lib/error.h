/* Errors: every failure is a message that names the file, record or
 * argument at fault.  Library functions fill a struct tj_err and return a
 * negative code; commands print it and exit non-zero.  No global state. */
#ifndef TJ_ERROR_H
#define TJ_ERROR_H

#include <stdarg.h>

/* Exit codes of the tracejoin commands (documented in README.md). */
enum tj_exit {
	TJ_EXIT_OK = 0,
	TJ_EXIT_FAIL = 1,     /* the command failed (I/O, bad input file, ...) */
	TJ_EXIT_USAGE = 2,    /* unknown command or option, bad argument */
	TJ_EXIT_DAMAGED = 3,  /* input read as far as possible but damaged: data lost */
	TJ_EXIT_SKIPPED = 77, /* a test could not run here (automake convention) */
};

/* Error codes returned (negated) by library functions. */
enum tj_errcode {
	TJ_OK = 0,
	TJ_E_IO = 1,       /* system call failed; errno text in msg */
	TJ_E_FORMAT = 2,   /* input is not what it claims to be */
	TJ_E_VERSION = 3,  /* input has a version we do not know */
	TJ_E_DAMAGED = 4,  /* input damaged (bad CRC, cut short) */
	TJ_E_NOMEM = 5,
	TJ_E_ARG = 6,      /* caller passed a bad value */
	TJ_E_LIMIT = 7,    /* a size limit was hit */
};

#define TJ_ERRMSG_MAX 512

struct tj_err {
	int code;                 /* enum tj_errcode, 0 when no error */
	char msg[TJ_ERRMSG_MAX];  /* "FILE: line 3, column 2: reason" */
};

/* Set err (if not NULL) and return -code, so callers can write
 * `return tj_errf(err, TJ_E_FORMAT, "%s: bad magic", path);` */
int tj_errf(struct tj_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int tj_verrf(struct tj_err *err, int code, const char *fmt, va_list ap);

/* Print "tracejoin CMD: MSG" on stderr (CMD as set by main with
 * tj_set_command, so a warning from deep in the library still says which
 * command speaks; "tracejoin: MSG" before that). */
void tj_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The running command's name, for tj_warn: the one process-wide setting,
 * written once by main before the command runs. */
void tj_set_command(const char *name);

/* Print "tracejoin CMD: MSG" and a hint to try --help on stderr, and
 * return TJ_EXIT_USAGE, for `return tj_usage(cmd, "unknown option %s", o);`. */
int tj_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
