/* Call stacks of a capture (`capture --stack`): the frames of every
 * stack id the events name, and the memory maps of the traced processes
 * that turn frame addresses into file + offset.  Stored in an evlog's
 * stacks block (type 4, lib/EVLOG.md), written after the last events
 * block; readers that do not know it skip it. */
#ifndef TJ_STACKS_H
#define TJ_STACKS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "evlog.h"
#include "u64map.h"

#define TJ_BUILD_ID_MAX 20
#define TJ_STACK_FRAMES_MAX 128 /* user + kernel frames of one stack */

/* One executable mapping of a process (a line of /proc/PID/maps). */
struct tj_map {
	uint32_t pid;
	uint64_t start, end;   /* addresses [start, end) */
	uint64_t offset;       /* file offset of start */
	char *path;            /* file as the process saw it ("[vdso]", ...) */
	uint8_t build_id_len;  /* 0 = not known */
	uint8_t build_id[TJ_BUILD_ID_MAX];
};

/* One stack: user frames (innermost first), then kernel frames.  Kernel
 * frames carry their symbol, resolved at capture time (kallsyms). */
struct tj_stack {
	uint32_t id;           /* the events' stack_id (never 0) */
	uint16_t nuser, nkernel;
	uint64_t *ips;         /* nuser + nkernel addresses */
	char **ksyms;          /* nkernel names ("" = unknown), or NULL */
};

struct tj_stacks {
	struct tj_map *maps;     /* sorted by pid, start after tj_stacks_sort */
	size_t nmaps, capmaps;
	struct tj_stack *stacks; /* sorted by id after tj_stacks_sort */
	size_t nstacks, capstacks;
	/* Indexes of maps while they are added (cleared by sort): a map's
	 * line -> index + 1, to keep re-read lines once; a path -> index + 1,
	 * so a file's build id is read once. */
	struct tj_u64map line_ix, path_ix;
};

void tj_stacks_init(struct tj_stacks *s);
void tj_stacks_free(struct tj_stacks *s);
/* Add a mapping (path copied); an identical one already there is kept
 * once.  Returns 0 or -TJ_E_NOMEM. */
/* A mapping of the file at path added so far (for its build id), or NULL. */
const struct tj_map *tj_stacks_map_of_path(const struct tj_stacks *s, const char *path);
int tj_stacks_add_map(struct tj_stacks *s, const struct tj_map *m);
/* Add a stack (arrays copied; ksyms may be NULL). */
int tj_stacks_add(struct tj_stacks *s, uint32_t id, const uint64_t *user,
		  unsigned nuser, const uint64_t *kernel, const char *const *ksyms,
		  unsigned nkernel);
/* Sort for the lookups below (duplicates of maps dropped). */
void tj_stacks_sort(struct tj_stacks *s);
const struct tj_stack *tj_stacks_find(const struct tj_stacks *s, uint32_t id);
/* The mapping of pid that holds addr, or NULL. */
const struct tj_map *tj_stacks_map_of(const struct tj_stacks *s, uint32_t pid,
				      uint64_t addr);

/* Write s as the log's stacks block (after every event written so far). */
int tj_stacks_write(struct tj_evlog_writer *w, const struct tj_stacks *s,
		    struct tj_err *err);
/* Read the stacks block of the evlog at path into s (initialised by the
 * caller).  Returns 1 if the log has one, 0 if not (no --stack, or cut
 * short before it), negative on an I/O error or a malformed block. */
int tj_stacks_read(const char *path, struct tj_stacks *s, struct tj_err *err);

/* Decode a stacks block body (inflated) into s; path names it in
 * messages.  Returns 1, or a negative tj_errcode with s emptied. */
int tj_stacks_decode(const char *path, const uint8_t *body, size_t len,
		     struct tj_stacks *s, struct tj_err *err);

/* Read /proc/PID/maps: every executable file mapping of pid, with its
 * build id where the file has one.  Returns the number added, or -1 if
 * the process is gone (nothing added).  Needs no libbpf. */
int tj_stacks_read_proc_maps(struct tj_stacks *s, uint32_t pid);

#endif
