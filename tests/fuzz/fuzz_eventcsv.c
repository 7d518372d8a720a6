/* libFuzzer target for the event CSV reader: any input is read or
 * refused with a message naming the file, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "datasets/import/import.h"

static int check(void *ctx, const struct tj_event *ev, struct tj_err *err)
{
	(void)err;
	(*(uint64_t *)ctx)++;
	if (ev->type == TJ_EV_NONE || ev->payload_len > TJ_PAYLOAD_MAX ||
	    (ev->payload_len && !ev->payload))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tj_err err = { 0 };
	uint64_t rows = 0;
	int rc = tj_event_csv_parse("fuzz.csv", (const char *)data, size, check,
				    &rows, &err);
	if (rc < 0 && strncmp(err.msg, "fuzz.csv", 8) != 0)
		abort();
	return 0;
}
