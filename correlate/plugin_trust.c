/* Plugin files are checked as ld.so and sudo check what they load
 * (plugin_trust.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "plugin_trust.h"

/* Who may have written st: NULL if only root or we could, else why not. */
static const char *untrusted(const struct stat *st, int is_dir)
{
	uid_t me = geteuid();
	if (st->st_uid != 0 && st->st_uid != me)
		return "owned by another user";
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		/* a sticky folder (/tmp) lets others add names, not replace ours */
		if (is_dir && (st->st_mode & S_ISVTX))
			return NULL;
		return st->st_mode & S_IWOTH ? "writable by everyone"
					     : "writable by its group";
	}
	return NULL;
}

int tj_plugin_open_checked(const char *path, int trust, struct tj_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tj_errf(err, TJ_E_ARG, "%s: cannot load the plugin: %s", path,
			       strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return tj_errf(err, TJ_E_ARG, "%s: cannot load the plugin: not a regular file",
			       path);
	}
	if (trust)
		return fd;
	const char *why = untrusted(&st, 0);
	if (why) {
		close(fd);
		return tj_errf(err, TJ_E_ARG, "%s: refusing to load a plugin %s "
			       "(it runs with our rights; fix its owner or mode, or "
			       "give --trust-plugin)", path, why);
	}
	/* every folder up to / : a writable one lets others swap the file */
	char *real = realpath(path, NULL);
	if (!real) {
		int e = errno;
		close(fd);
		return tj_errf(err, TJ_E_ARG, "%s: %s", path, strerror(e));
	}
	char *dir = dirname(real);
	for (;;) {
		if (stat(dir, &st) < 0) {
			why = strerror(errno);
			break;
		}
		if ((why = untrusted(&st, 1)))
			break;
		if (strcmp(dir, "/") == 0)
			break;
		dir = dirname(dir);
	}
	if (why) {
		int rc = tj_errf(err, TJ_E_ARG, "%s: refusing to load a plugin from %s: "
				 "the folder is %s (give --trust-plugin to load it anyway)",
				 path, dir, why);
		free(real);
		close(fd);
		return rc;
	}
	free(real);
	return fd;
}
