/* Outputs: how every command writes a file, so that no command ever loses
 * a user's file (DECISIONS.md, "Outputs").
 *
 * A file output is written to a temporary file beside it and renamed into
 * place only by tj_outfile_commit(): a failure leaves the old file as it
 * was, or nothing.  tj_outfile_open() refuses, before any input is read:
 * an existing output without TJ_OUT_FORCE, an output that is one of the
 * inputs (same st_dev/st_ino, whatever the spelling), a folder, a dangling
 * symlink.  A symlink is followed: its target is replaced, the link stays.
 * An existing device or FIFO (/dev/null, a pipe) is written in place.
 * "-" is stdout: written as it goes, flushed and checked at commit.
 *
 * A folder output (a dataset: gen, import, label) is built in a temporary
 * folder and moved into place by tj_outdir_commit(). */
#ifndef TJ_OUTFILE_H
#define TJ_OUTFILE_H

#include <stdio.h>
#include <sys/types.h>
#include "error.h"

#define TJ_OUT_FORCE 1u /* replace an existing output */
/* Capture: the temporary file is FILE.partial, locked for the whole run,
 * so a second writer of the same output is refused at once; a run that
 * dies (kill -9) leaves its events in FILE.partial. */
#define TJ_OUT_LOCK 2u

struct tj_outfile {
	const char *path; /* as the user wrote it ("<stdout>" for -), for messages */
	char *dest;       /* where the file lands: path, or a symlink's target */
	char *tmp;        /* the temporary file; NULL when written in place */
	int fd;
	FILE *f;          /* stdio over fd, made by tj_outfile_stream() */
	mode_t mode;      /* the finished file's mode (before umask) */
	unsigned flags;
	int in_place;     /* stdout, a device or a FIFO */
	int is_stdout;
};

/* Refuse an output that is one of the inputs, before anything is read:
 * the same file (st_dev, st_ino) as an input; a dataset file (labels.csv,
 * manifest.json, node-*.evlog) inside an input folder; or, for a folder
 * output (is_dir), the folder of an input.  Inputs that do not exist are
 * skipped (their reader reports them).  0 or -TJ_E_ARG naming both. */
int tj_out_check_inputs(const char *out, int is_dir, char *const *inputs,
			size_t ninputs, struct tj_err *err);

/* Open an output (flags TJ_OUT_*; mode e.g. 0666 or 0600 for logs, umask
 * applied).  Runs tj_out_check_inputs() first.  On failure nothing was
 * created and *o needs no abort. */
int tj_outfile_open(struct tj_outfile *o, const char *path, unsigned flags,
		    mode_t mode, char *const *inputs, size_t ninputs,
		    struct tj_err *err);

/* The output as a stdio stream (made once; NULL and err set when out of
 * memory).  Writes through it are checked at commit (ferror, fflush). */
FILE *tj_outfile_stream(struct tj_outfile *o, struct tj_err *err);

/* Write len bytes to the fd, all of them or an error naming the output. */
int tj_outfile_write(struct tj_outfile *o, const void *buf, size_t len,
		     struct tj_err *err);

/* Finish: flush and check every write, fsync, set the mode and rename the
 * temporary file into place (never over a file that appeared meanwhile
 * unless TJ_OUT_FORCE).  On failure the temporary file is removed and the
 * old output stays.  Either way *o is released. */
int tj_outfile_commit(struct tj_outfile *o, struct tj_err *err);

/* Give up: close and remove the temporary file; the old output stays.
 * Safe on a zeroed or already finished struct. */
void tj_outfile_abort(struct tj_outfile *o);

/* The last word on stdout, for main(): flush and close it, and say why it
 * failed (a full disk, a closed pipe).  0 or -TJ_E_IO. */
int tj_stdout_close(struct tj_err *err);

/* A dataset folder output. */
struct tj_outdir {
	char *path;    /* the folder the user named */
	char *tmp;     /* the folder being built; write the dataset here */
	int existed;   /* path was a folder already: its other files stay */
	unsigned flags;
};

/* Refuse a path that is not a folder, a folder holding a dataset (labels.csv,
 * manifest.json or node-*.evlog) without TJ_OUT_FORCE, and a folder that is
 * or holds one of the inputs; then make the temporary folder (inside path if
 * it exists, else beside it, making the parents). */
int tj_outdir_open(struct tj_outdir *d, const char *path, unsigned flags,
		   char *const *inputs, size_t ninputs, struct tj_err *err);

/* Move the built dataset into place: a new folder is renamed into place at
 * once; into an existing one, the old dataset's files are removed and the
 * new ones moved in, manifest.json last.  Releases *d. */
int tj_outdir_commit(struct tj_outdir *d, struct tj_err *err);

/* Remove the temporary folder and what was built in it.  Releases *d. */
void tj_outdir_abort(struct tj_outdir *d);

/* labels.csv, manifest.json, node-*.evlog (and label's unlabeled.csv):
 * the files a dataset is. */
int tj_is_dataset_file(const char *name);

#endif
