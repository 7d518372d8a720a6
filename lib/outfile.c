/* Outputs written beside their place and renamed in on success (outfile.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "outfile.h"

int tj_is_dataset_file(const char *name)
{
	return strcmp(name, "labels.csv") == 0 ||
	       strcmp(name, "unlabeled.csv") == 0 || /* label's */
	       strcmp(name, "manifest.json") == 0 ||
	       fnmatch("node-*.evlog", name, 0) == 0;
}

/* dirname/basename of a path, as new strings (NULL when out of memory). */
static char *dir_of(const char *path)
{
	char *c = strdup(path), *d;
	if (!c)
		return NULL;
	d = strdup(dirname(c));
	free(c);
	return d;
}

static char *base_of(const char *path)
{
	char *c = strdup(path), *b;
	if (!c)
		return NULL;
	b = strdup(basename(c));
	free(c);
	return b;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* stat() of the folder holding path; -1 when it cannot be seen. */
static int stat_parent(const char *path, struct stat *st)
{
	char *d = dir_of(path);
	int rc = d ? stat(d, st) : -1;
	free(d);
	return rc;
}

int tj_out_check_inputs(const char *out, int is_dir, char *const *inputs,
			size_t ninputs, struct tj_err *err)
{
	struct stat os, is, ps;
	if (strcmp(out, "-") == 0 || stat(out, &os) < 0)
		return 0; /* stdout, or a new file: no input can be it */
	char *name = base_of(out);
	int have_parent = stat_parent(out, &ps) == 0;
	int rc = 0;
	for (size_t i = 0; i < ninputs && rc == 0; i++) {
		const char *in = inputs[i];
		if (!in || strcmp(in, "-") == 0 || stat(in, &is) < 0)
			continue;
		struct stat ips;
		if (same_file(&os, &is))
			rc = tj_errf(err, TJ_E_ARG, "%s: is also an input (%s): "
				     "an output never replaces what it reads",
				     out, in);
		else if (!is_dir && S_ISDIR(is.st_mode) && have_parent &&
			 same_file(&ps, &is) && name && tj_is_dataset_file(name))
			rc = tj_errf(err, TJ_E_ARG, "%s: is part of the input dataset %s: "
				     "an output never replaces what it reads",
				     out, in);
		else if (is_dir && stat_parent(in, &ips) == 0 && same_file(&ips, &os))
			rc = tj_errf(err, TJ_E_ARG, "%s: holds the input %s: "
				     "an output never replaces what it reads",
				     out, in);
	}
	free(name);
	return rc;
}

static mode_t current_umask(void)
{
	mode_t m = umask(022);
	umask(m);
	return m;
}

/* Where a file output lands: the path itself, or a symlink's target (the
 * link stays a link).  A dangling link is refused: following it would
 * create a file wherever the link points, a classic trap in shared
 * folders. */
static int resolve_dest(const char *path, char **dest, struct tj_err *err)
{
	struct stat ls;
	*dest = NULL;
	if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
		char *r = realpath(path, NULL);
		if (!r)
			return tj_errf(err, TJ_E_ARG, "%s: a symlink to nothing (%s); "
				       "not following it", path, strerror(errno));
		*dest = r;
		return 0;
	}
	if (!(*dest = strdup(path)))
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	return 0;
}

static void release(struct tj_outfile *o)
{
	free(o->dest);
	free(o->tmp);
	o->dest = o->tmp = NULL;
	o->f = NULL;
	o->fd = -1;
}

/* FILE.partial, locked: a second writer of the same output sees the lock
 * and is refused; one left by a dead run is kept unless forced. */
static int open_locked(struct tj_outfile *o, struct tj_err *err)
{
	for (int tries = 0; tries < 8; tries++) {
		int fd = open(o->tmp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return tj_errf(err, TJ_E_IO, "%s: cannot create: %s",
				       o->tmp, strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				return tj_errf(err, TJ_E_ARG, "%s: another process is "
					       "writing it (%s is locked)", o->path, o->tmp);
			return tj_errf(err, TJ_E_IO, "%s: cannot lock: %s",
				       o->tmp, strerror(e));
		}
		/* the holder may have renamed or removed it between our open
		 * and our lock: then we locked a file no one will see */
		struct stat a, b;
		if (fstat(fd, &a) < 0 || stat(o->tmp, &b) < 0 || !same_file(&a, &b)) {
			close(fd);
			continue;
		}
		if (a.st_size > 0 && !(o->flags & TJ_OUT_FORCE)) {
			close(fd);
			return tj_errf(err, TJ_E_ARG, "%s: left by a run that did not "
				       "finish (tracejoin info reads it); remove it or "
				       "use --force", o->tmp);
		}
		if (ftruncate(fd, 0) < 0) {
			int e = errno;
			close(fd);
			return tj_errf(err, TJ_E_IO, "%s: %s", o->tmp, strerror(e));
		}
		o->fd = fd;
		return 0;
	}
	return tj_errf(err, TJ_E_IO, "%s: cannot lock (it keeps changing)", o->tmp);
}

static int open_temp(struct tj_outfile *o, struct tj_err *err)
{
	size_t n = strlen(o->dest) + sizeof(".tmp-XXXXXX");
	if (!(o->tmp = malloc(n)))
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", o->path);
	snprintf(o->tmp, n, "%s.tmp-XXXXXX", o->dest);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int e = errno;
		char *d = dir_of(o->dest);
		int rc = tj_errf(err, TJ_E_IO, "%s: cannot write in %s: %s", o->path,
				 d ? d : "its folder", strerror(e));
		free(d);
		return rc;
	}
	return 0;
}

int tj_outfile_open(struct tj_outfile *o, const char *path, unsigned flags,
		    mode_t mode, char *const *inputs, size_t ninputs,
		    struct tj_err *err)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	o->flags = flags;
	o->mode = mode & ~current_umask();
	if (strcmp(path, "-") == 0) {
		o->path = "<stdout>";
		o->fd = STDOUT_FILENO;
		o->in_place = o->is_stdout = 1;
		return 0;
	}
	o->path = path;
	int rc = tj_out_check_inputs(path, 0, inputs, ninputs, err);
	if (rc == 0)
		rc = resolve_dest(path, &o->dest, err);
	if (rc < 0) {
		release(o);
		return rc;
	}
	struct stat st;
	if (stat(o->dest, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			rc = tj_errf(err, TJ_E_ARG, "%s: is a folder", path);
		else if (!S_ISREG(st.st_mode)) {
			/* a device or pipe holds nothing to lose: write to it */
			o->fd = open(o->dest, O_WRONLY | O_CLOEXEC);
			o->in_place = 1;
			if (o->fd < 0)
				rc = tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
		} else if (!(flags & TJ_OUT_FORCE))
			rc = tj_errf(err, TJ_E_ARG, "%s: exists (--force replaces it)", path);
	} else if (errno != ENOENT) {
		rc = tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	}
	if (rc == 0 && !o->in_place) {
		if (flags & TJ_OUT_LOCK) {
			size_t n = strlen(o->dest) + sizeof(".partial");
			if (!(o->tmp = malloc(n)))
				rc = tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
			else {
				snprintf(o->tmp, n, "%s.partial", o->dest);
				rc = open_locked(o, err);
			}
		} else {
			rc = open_temp(o, err);
		}
		if (rc < 0) {
			free(o->tmp);
			o->tmp = NULL; /* nothing of ours to remove */
		}
	}
	if (rc < 0)
		release(o);
	return rc;
}

FILE *tj_outfile_stream(struct tj_outfile *o, struct tj_err *err)
{
	if (o->f)
		return o->f;
	if (o->is_stdout)
		return o->f = stdout;
	if (!(o->f = fdopen(o->fd, "w")))
		tj_errf(err, TJ_E_NOMEM, "%s: %s", o->path, strerror(errno));
	return o->f;
}

int tj_outfile_write(struct tj_outfile *o, const void *buf, size_t len,
		     struct tj_err *err)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(o->fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return tj_errf(err, TJ_E_IO, "%s: %s", o->path,
				       w < 0 ? strerror(errno) : "write wrote nothing");
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Make a rename in dir last through a crash (best effort: not every file
 * system can fsync a folder). */
static void sync_dir_of(const char *path)
{
	char *d = dir_of(path);
	int fd = d ? open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(d);
}

/* rename() that never replaces a file unless asked: a file that appeared
 * at dest since open is someone else's. */
static int move_into_place(const char *from, const char *to, int replace)
{
	if (replace)
		return rename(from, to);
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) < 0) /* a file system without RENAME_NOREPLACE */
		return -1;
	return unlink(from);
}

int tj_outfile_commit(struct tj_outfile *o, struct tj_err *err)
{
	int rc = 0;
	if (o->f && (fflush(o->f) == EOF || ferror(o->f)))
		rc = tj_errf(err, TJ_E_IO, "%s: write error: %s", o->path,
			     strerror(errno ? errno : EIO));
	if (o->is_stdout) {
		release(o);
		return rc;
	}
	if (rc == 0 && !o->in_place) {
		if (fchmod(o->fd, o->mode) < 0 || fsync(o->fd) < 0)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", o->path, strerror(errno));
	}
	if (rc == 0 && !o->in_place &&
	    move_into_place(o->tmp, o->dest, (o->flags & TJ_OUT_FORCE) != 0) < 0)
		rc = tj_errf(err, TJ_E_IO, "%s: %s", o->path,
			     errno == EEXIST ? "appeared while being written (not replacing it)"
					     : strerror(errno));
	if (rc < 0 && !o->in_place)
		unlink(o->tmp);
	int cr = o->f ? fclose(o->f) : close(o->fd);
	if (cr < 0 && rc == 0)
		rc = tj_errf(err, TJ_E_IO, "%s: %s", o->path, strerror(errno));
	if (rc == 0 && !o->in_place)
		sync_dir_of(o->dest);
	release(o);
	return rc;
}

void tj_outfile_abort(struct tj_outfile *o)
{
	if (!o->path)
		return;
	if (o->tmp)
		unlink(o->tmp); /* before the close: the lock keeps others off */
	if (o->f && !o->is_stdout)
		fclose(o->f);
	else if (o->f)
		fflush(o->f);
	else if (o->fd >= 0 && !o->is_stdout)
		close(o->fd);
	release(o);
	o->path = NULL;
}

int tj_stdout_close(struct tj_err *err)
{
	errno = 0;
	int bad = fflush(stdout) == EOF || ferror(stdout);
	int e = errno;
	if (fclose(stdout) == EOF && !bad) {
		bad = 1;
		e = errno;
	}
	if (bad)
		return tj_errf(err, TJ_E_IO, "<stdout>: write error: %s",
			       strerror(e ? e : EIO));
	return 0;
}

/* ---- dataset folders ---------------------------------------------------- */

static int mkdir_parents(const char *dir, struct tj_err *err)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return tj_errf(err, TJ_E_ARG, "%s: path too long", dir);
	for (char *p = buf + 1; ; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return tj_errf(err, TJ_E_IO, "%s: %s", buf, strerror(errno));
		if (!c)
			return 0;
		*p = c;
	}
}

/* Does dir hold a dataset file?  1, 0, or -1 with err set. */
static int holds_dataset(const char *dir, char *first, size_t cap,
			 struct tj_err *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno)), -1;
	struct dirent *de;
	int found = 0;
	while (!found && (de = readdir(d)))
		if (tj_is_dataset_file(de->d_name)) {
			snprintf(first, cap, "%s", de->d_name);
			found = 1;
		}
	closedir(d);
	return found;
}

int tj_outdir_open(struct tj_outdir *d, const char *path, unsigned flags,
		   char *const *inputs, size_t ninputs, struct tj_err *err)
{
	memset(d, 0, sizeof(*d));
	d->flags = flags;
	int rc = tj_out_check_inputs(path, 1, inputs, ninputs, err);
	if (rc < 0)
		return rc;
	struct stat st;
	char *parent = NULL;
	if (stat(path, &st) == 0) {
		char first[256];
		int h;
		if (!S_ISDIR(st.st_mode))
			return tj_errf(err, TJ_E_ARG, "%s: exists and is not a folder", path);
		if ((h = holds_dataset(path, first, sizeof(first), err)) < 0)
			return -TJ_E_IO;
		if (h && !(flags & TJ_OUT_FORCE))
			return tj_errf(err, TJ_E_ARG, "%s: already holds a dataset (%s exists); "
				       "--force replaces it", path, first);
		d->existed = 1;
	} else if (errno != ENOENT) {
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	} else if (!(parent = dir_of(path)) || (rc = mkdir_parents(parent, err)) < 0) {
		free(parent);
		return rc < 0 ? rc : tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	}
	free(parent);
	/* inside an existing folder (the same file system, and its owner's
	 * permissions), else beside the new one */
	size_t n = strlen(path) + 32;
	d->path = strdup(path);
	d->tmp = malloc(n);
	if (!d->path || !d->tmp) {
		tj_outdir_abort(d);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	}
	snprintf(d->tmp, n, d->existed ? "%s/.tracejoin-new-XXXXXX" : "%s.tmp-XXXXXX",
		 path);
	if (!mkdtemp(d->tmp)) {
		rc = tj_errf(err, TJ_E_IO, "%s: cannot make a folder to build in: %s",
			     path, strerror(errno));
		free(d->tmp);
		d->tmp = NULL;
		tj_outdir_abort(d);
		return rc;
	}
	if (chmod(d->tmp, 0755 & ~current_umask()) < 0) {
		rc = tj_errf(err, TJ_E_IO, "%s: %s", d->tmp, strerror(errno));
		tj_outdir_abort(d);
		return rc;
	}
	return 0;
}

/* fsync every file of dir; remove them too when unlink_them. */
static int sweep_dir(const char *dir, int sync, int unlink_them,
		     struct tj_err *err)
{
	DIR *dd = opendir(dir);
	if (!dd)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	struct dirent *de;
	char p[PATH_MAX];
	int rc = 0;
	while ((de = readdir(dd))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (sync) {
			int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0 || fsync(fd) < 0)
				rc = rc ? rc : tj_errf(err, TJ_E_IO, "%s: %s", p, strerror(errno));
			if (fd >= 0)
				close(fd);
		}
		if (unlink_them)
			unlink(p);
	}
	closedir(dd);
	return rc;
}

/* Move the dataset files of from into to; manifest.json last, so a crash
 * midway leaves a folder that does not claim to be whole. */
static int move_dataset(const char *from, const char *to, struct tj_err *err)
{
	DIR *dd = opendir(from);
	if (!dd)
		return tj_errf(err, TJ_E_IO, "%s: %s", from, strerror(errno));
	struct dirent *de;
	char a[PATH_MAX], b[PATH_MAX];
	int rc = 0, manifest = 0;
	while (rc == 0 && (de = readdir(dd))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(de->d_name, "manifest.json") == 0) {
			manifest = 1;
			continue;
		}
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		if (rename(a, b) < 0)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", b, strerror(errno));
	}
	closedir(dd);
	if (rc == 0 && manifest) {
		snprintf(a, sizeof(a), "%s/manifest.json", from);
		snprintf(b, sizeof(b), "%s/manifest.json", to);
		if (rename(a, b) < 0)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", b, strerror(errno));
	}
	return rc;
}

/* Remove the old dataset's files from dir (the new set may lack a node). */
static int clear_dataset(const char *dir, struct tj_err *err)
{
	DIR *dd = opendir(dir);
	if (!dd)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	struct dirent *de;
	char p[PATH_MAX];
	int rc = 0;
	/* the manifest first: a half-cleared folder must not claim to be whole */
	snprintf(p, sizeof(p), "%s/manifest.json", dir);
	if (unlink(p) < 0 && errno != ENOENT)
		rc = tj_errf(err, TJ_E_IO, "%s: %s", p, strerror(errno));
	while (rc == 0 && (de = readdir(dd))) {
		if (!tj_is_dataset_file(de->d_name))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (unlink(p) < 0 && errno != ENOENT)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", p, strerror(errno));
	}
	closedir(dd);
	return rc;
}

int tj_outdir_commit(struct tj_outdir *d, struct tj_err *err)
{
	int rc = sweep_dir(d->tmp, 1, 0, err);
	if (rc == 0 && !d->existed) {
		if (move_into_place(d->tmp, d->path, 0) < 0)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", d->path,
				     errno == EEXIST || errno == ENOTEMPTY
				     ? "appeared while being written (not replacing it)"
				     : strerror(errno));
		else {
			sync_dir_of(d->path);
			free(d->tmp);
			d->tmp = NULL;
		}
	} else if (rc == 0) {
		char first[256];
		int h = holds_dataset(d->path, first, sizeof(first), err);
		if (h < 0)
			rc = -TJ_E_IO;
		else if (h && !(d->flags & TJ_OUT_FORCE))
			rc = tj_errf(err, TJ_E_ARG, "%s: a dataset appeared in it "
				     "while being written (%s); not replacing it",
				     d->path, first);
		else if ((rc = clear_dataset(d->path, err)) == 0 &&
			 (rc = move_dataset(d->tmp, d->path, err)) == 0) {
			rmdir(d->tmp);
			free(d->tmp);
			d->tmp = NULL;
		}
	}
	tj_outdir_abort(d);
	return rc;
}

void tj_outdir_abort(struct tj_outdir *d)
{
	if (d->tmp) {
		sweep_dir(d->tmp, 0, 1, NULL);
		rmdir(d->tmp);
	}
	free(d->tmp);
	free(d->path);
	d->tmp = d->path = NULL;
}
