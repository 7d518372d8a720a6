/* Whether a plugin file may be loaded: dlopen() runs its constructors
 * with our privileges (often root), so a file someone else could have
 * written is refused before it is opened as a library (DECISIONS.md,
 * "Plugins"). */
#ifndef TJ_PLUGIN_TRUST_H
#define TJ_PLUGIN_TRUST_H

#include "../lib/error.h"

/* Open path for loading (O_RDONLY, O_CLOEXEC) and check it: a regular
 * file owned by root or by us, writable by no one else (no group or
 * world write bit), in folders (up to /) owned by root or us and writable
 * by no one else unless sticky (others cannot then replace our file).
 * Returns the fd, to dlopen as /proc/self/fd/N so what is loaded is what
 * was checked; or -TJ_E_ARG naming the file or folder and the reason.
 * trust skips the ownership and permission rules, not the opening. */
int tj_plugin_open_checked(const char *path, int trust, struct tj_err *err);

#endif
