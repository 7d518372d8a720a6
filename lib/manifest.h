/* manifest.json of a dataset (DESIGN.md): who made it, from what, with
 * which parameters and seed, event counts and the SHA-256 of every file.
 * Written with sorted keys and no clock readings, so the same inputs give
 * a byte-identical manifest. */
#ifndef TJ_MANIFEST_H
#define TJ_MANIFEST_H

#include <jansson.h>
#include "error.h"

struct tj_manifest;

/* generator: "gen", "import", "label", ... */
struct tj_manifest *tj_manifest_new(const char *generator);
/* Top-level fields ("scenario", "seed", "source", ...).  The manifest
 * takes ownership of value (jansson's _new semantics). */
int tj_manifest_set(struct tj_manifest *m, const char *key, json_t *value);
/* The "parameters" object, to fill with json_object_set_new(). */
json_t *tj_manifest_params(struct tj_manifest *m);
/* Hash every node-*.evlog and labels.csv in dir, record per-log event
 * counts (from the footers), the tool version, and write
 * dir/manifest.json.  Frees nothing: call tj_manifest_free after. */
int tj_manifest_write(struct tj_manifest *m, const char *dir,
		      struct tj_err *err);
void tj_manifest_free(struct tj_manifest *m);

/* SHA-256 of a file as 64 lower-case hex digits (+NUL) in hex[65]. */
int tj_sha256_file(const char *path, char hex[65], struct tj_err *err);

#endif
