/* `correlate --traces`: the call trees the edges and the cross-node join
 * reconstruct, as indented text.  Unlike the correlator run this keeps
 * every request and call in memory: it is for reading, not for streaming
 * hundreds of millions of events. */
#ifndef TJ_TRACES_H
#define TJ_TRACES_H

#include <stdio.h>
#include "host.h"

/* inputs: dataset folders or evlogs (as tj_replay_expand_inputs takes
 * them); edges: what a correlator answered. */
int tj_traces_print(FILE *f, char *const *inputs, size_t ninputs,
		    const struct tj_replay_opts *o,
		    const struct tj_edge_set *edges, struct tj_err *err);

#endif
