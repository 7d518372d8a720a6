/* libFuzzer target for the Jaeger importer: any input is read (traces
 * skipped with warnings, files refused) without a crash, and whatever is
 * built keeps the dataset's rules: each node's events in time order, one
 * label per call a node makes, parents on the child's node. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "datasets/import/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tj_jaeger_opts o = { .keepalive = size % 3, .nodes = (size / 3) % 2 };
	struct tj_jaeger *j;
	struct tj_err err = { 0 };
	if (tj_jaeger_new(&j, &o, &err) < 0)
		abort();
	if (tj_jaeger_add_buffer(j, "fuzz.json", (const char *)data, size, &err) < 0)
		abort(); /* only out of memory may fail here */
	const struct tj_jaeger_stats *st = tj_jaeger_stats(j);
	if (st->warnings != st->files_refused + st->traces_skipped)
		abort();
	struct tj_import_result r;
	if (tj_jaeger_build(j, &r, &err) < 0) {
		if (st->calls != 0 || err.msg[0] == '\0')
			abort();
		tj_jaeger_free(j);
		return 0;
	}
	uint64_t events = 0;
	for (size_t k = 0; k < r.nnodes; k++) {
		const struct tj_import_node *n = &r.nodes[k];
		if (n->id != k + 1 || n->nevents == 0)
			abort();
		for (size_t i = 0; i < n->nevents; i++) {
			if (n->events[i].node != n->id)
				abort();
			if (i && n->events[i].ts_ns < n->events[i - 1].ts_ns)
				abort();
		}
		events += n->nevents;
	}
	if (events != st->events || r.labels.n != st->labels)
		abort();
	for (size_t i = 0; i < r.labels.n; i++) {
		const struct tj_edge *e = &r.labels.edges[i];
		if (e->child.node < 1 || e->child.node > r.nnodes ||
		    e->child.dir != TJ_DIR_OUT)
			abort();
		if (e->has_parent && (e->parent.node != e->child.node ||
				      e->parent.dir != TJ_DIR_IN))
			abort();
		if (i && tj_msgkey_cmp(&r.labels.edges[i - 1].child, &e->child) >= 0)
			abort(); /* sorted, no child twice */
	}
	tj_import_result_free(&r);
	tj_jaeger_free(j);
	return 0;
}
