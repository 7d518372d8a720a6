/* Looking up the built-in scenarios embedded at build time (the table
 * itself is generated from datasets/gen/scenarios/ by datasets/gen/build.mk). */
#include <string.h>
#include "gen.h"

const struct gen_builtin *gen_builtin_find(const char *name)
{
	for (size_t i = 0; i < gen_nbuiltins; i++)
		if (strcmp(gen_builtins[i].name, name) == 0)
			return &gen_builtins[i];
	return NULL;
}
