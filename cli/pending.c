/* TEMPORARY, removed once every command has landed: weak stand-ins so
 * the binary links while components are built in parallel. */
#include <stdio.h>
#include "commands.h"
#include "../lib/error.h"

#define PENDING(name)                                                        \
	__attribute__((weak)) int cmd_##name(int argc, char **argv)           \
	{                                                                    \
		(void)argc;                                                  \
		fprintf(stderr, "tracejoin %s: not built yet\n", argv[0]);   \
		return TJ_EXIT_FAIL;                                         \
	}
PENDING(capture) PENDING(info) PENDING(dump) PENDING(gen) PENDING(import)
PENDING(label) PENDING(correlate) PENDING(score) PENDING(train)
PENDING(features) PENDING(bench)
