/* Offline symbolisation of captured stacks with libelf: a frame address
 * of a process -> its mapping (stored in the log) -> file offset -> the
 * function whose ELF symbol (.symtab, else .dynsym) covers it.  A file
 * that is gone, changed (other build id) or stripped of the symbol is
 * shown as file+offset, never an error. */
#ifndef TJ_SYMBOLIZE_H
#define TJ_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "stacks.h"

/* The GNU build id (NT_GNU_BUILD_ID note) of the ELF file at path: its
 * length (at most max bytes are copied), or 0 if it has none or cannot be
 * read. */
size_t tj_elf_build_id(const char *path, uint8_t *out, size_t max);

struct tj_symbolizer;

/* NULL if out of memory.  Opens each file once and keeps its symbols. */
struct tj_symbolizer *tj_symbolizer_new(void);
void tj_symbolizer_free(struct tj_symbolizer *z);

/* One frame of stack k (index i, user frames first) of process pid as
 * text into buf: "func+0x1c (/usr/bin/prog)", "/usr/bin/prog+0x11c9" when
 * no symbol covers it, "0x7f..." when no mapping does, and kernel frames
 * as "func [kernel]".  Returns buf. */
const char *tj_symbolize_frame(struct tj_symbolizer *z, const struct tj_stacks *s,
			       uint32_t pid, const struct tj_stack *k, unsigned i,
			       char *buf, size_t n);

/* A call-site id for stack k of process pid: a hash of its top user
 * frames (at most TJ_CALLSITE_FRAMES), each by function name, else by file
 * name and offset, so that it does not move with ASLR.  Never 0. */
#define TJ_CALLSITE_FRAMES 4
uint64_t tj_callsite_id(struct tj_symbolizer *z, const struct tj_stacks *s,
			uint32_t pid, const struct tj_stack *k);

/* The frames of stack id of process pid, one per line, each line
 * starting with indent then "#N ".  Prints "(stack N not in the log)"
 * for an id the stacks block lacks. */
void tj_print_stack(FILE *out, struct tj_symbolizer *z, const struct tj_stacks *s,
		    uint32_t pid, uint32_t id, const char *indent);

#endif
