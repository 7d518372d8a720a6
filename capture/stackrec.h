/* capture --stack, user side: turns the kernel's stack ids into the log's
 * stack ids, reads each traced process's memory map while it lives, and
 * at the end collects the frames for the log's stacks block. */
#ifndef TJ_CAPTURE_STACKREC_H
#define TJ_CAPTURE_STACKREC_H

#include <stdint.h>
#include "../lib/stacks.h"
#include "loader.h"
#include "capture_common.h"

struct tj_stackrec;

struct tj_stackrec *tj_stackrec_new(void);
void tj_stackrec_free(struct tj_stackrec *sr);

/* (Only for the events that take stacks: send, recv, connect, accept.)
 * The log's stack id for an event of pid with kernel ids ustack/kstack
 * (negative = none): 0 when there is neither.  The first time pid is
 * seen its maps are read.  c (or NULL): the top of the user stack at the
 * call; the return address in it whose call leads to the function that
 * made the syscall (a libc wrapper without a frame) becomes the user
 * stack's second frame, so that the stack names the wrapper's caller. */
uint32_t tj_stackrec_note(struct tj_stackrec *sr, uint32_t pid, int32_t ustack,
			  int32_t kstack, const struct tjc_caller *c);

/* The return address among c's words whose call instruction (read from
 * pid's memory) leads to the function holding c->ip: directly, through
 * a PLT stub or through a GOT slot.  0 when none does (the function had
 * a frame of its own, the process is gone, or c->ip is 0).  Exposed for
 * the unit test. */
uint64_t tj_stackrec_caller(uint32_t pid, const struct tjc_caller *c);

/* Events noted without any stack: the kernel side refused it (a full
 * user stack table: -ENOMEM; for kernel stacks, a hash collision or a
 * full stack map: bpf_get_stackid's -EEXIST, -ENOMEM) or
 * found none (-EFAULT). */
uint64_t tj_stackrec_missing(const struct tj_stackrec *sr);

/* Re-read the maps of every process seen that still lives (libraries
 * loaded later); a process that is gone is dropped from the list. */
void tj_stackrec_refresh(struct tj_stackrec *sr);

/* Read every stack's frames from the kernel (and the kernel frames'
 * names from /proc/kallsyms); returns the stacks for the log. */
int tj_stackrec_finish(struct tj_stackrec *sr, struct tj_capture *cap,
		       const struct tj_stacks **out, struct tj_err *err);

#endif
