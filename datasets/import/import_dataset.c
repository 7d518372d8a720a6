/* Writes an imported dataset folder: node-N.evlog per node (lib/evlog.h),
 * labels.csv (lib/edges.h), manifest.json (lib/manifest.h).  Either the
 * whole dataset is written or nothing of it stays. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "import.h"
#include "../../lib/evlog.h"
#include "../../lib/manifest.h"
#include "../../lib/outfile.h"


static int write_log(const struct tj_import_node *nd, const char *path,
		     struct tj_err *err)
{
	struct tj_evlog_header h;
	memset(&h, 0, sizeof(h));
	h.node = nd->id;
	snprintf(h.hostname, sizeof(h.hostname), "%s", nd->name);
	/* Span times are wall-clock microseconds, used as every node's clock. */
	h.clock_mono_ns = h.clock_real_ns = nd->nevents ? nd->events[0].ts_ns : 0;
	h.capture_flags = TJ_CAP_SYNTHETIC;
	snprintf(h.options, sizeof(h.options),
		 "tracejoin import --format jaeger: node %u = %s", nd->id, nd->name);
	struct tj_evlog_writer *w;
	int rc = tj_evlog_create(&w, path, &h, 0, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nd->nevents && rc == 0; i++)
		rc = tj_evlog_write(w, &nd->events[i], err);
	if (rc < 0) {
		tj_evlog_abort(w);
		return rc;
	}
	return tj_evlog_close(w, err);
}

static int write_labels(const struct tj_edge_set *set, const char *path,
			struct tj_err *err)
{
	struct tj_edges_writer w;
	int rc = tj_edges_writer_open(&w, path, 0, NULL, 0, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < set->n && rc == 0; i++)
		rc = tj_edges_writer_put(&w, &set->edges[i], err);
	if (rc < 0) {
		tj_edges_writer_abort(&w);
		return rc;
	}
	return tj_edges_writer_close(&w, err);
}

static int write_manifest(const struct tj_import_result *r, const char *dir,
			  json_t *fields, json_t *params, struct tj_err *err)
{
	struct tj_manifest *m = tj_manifest_new("import");
	json_t *nodes = json_object();
	if (!m || !nodes) {
		json_decref(nodes);
		tj_manifest_free(m);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", dir);
	}
	int bad = 0;
	for (size_t k = 0; k < r->nnodes; k++) {
		char id[16];
		snprintf(id, sizeof(id), "%u", r->nodes[k].id);
		bad |= json_object_set_new(nodes, id, json_string(r->nodes[k].name));
	}
	const char *key;
	json_t *v;
	if (fields)
		json_object_foreach(fields, key, v)
			bad |= tj_manifest_set(m, key, json_incref(v));
	bad |= tj_manifest_set(m, "nodes", nodes);
	if (params)
		bad |= json_object_update(tj_manifest_params(m), params);
	int rc = bad ? tj_errf(err, TJ_E_NOMEM, "%s: manifest: out of memory", dir)
		     : tj_manifest_write(m, dir, err);
	tj_manifest_free(m);
	return rc;
}

int tj_import_write_dataset(const struct tj_import_result *r, const char *dir,
			    json_t *fields, json_t *params, unsigned flags,
			    struct tj_err *err)
{
	/* built in a folder of its own and moved into place when whole: a
	 * failure leaves the old dataset, or nothing (lib/outfile.h) */
	struct tj_outdir od;
	int rc = tj_outdir_open(&od, dir, flags & TJ_IMPORT_FORCE ? TJ_OUT_FORCE : 0,
				NULL, 0, err);
	if (rc < 0)
		return rc;
	char path[4096];
	for (size_t k = 0; k < r->nnodes && rc == 0; k++) {
		snprintf(path, sizeof(path), "%s/node-%u.evlog", od.tmp, r->nodes[k].id);
		rc = write_log(&r->nodes[k], path, err);
	}
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/labels.csv", od.tmp);
		rc = write_labels(&r->labels, path, err);
	}
	if (rc == 0)
		rc = write_manifest(r, od.tmp, fields, params, err);
	if (rc == 0)
		return tj_outdir_commit(&od, err);
	tj_outdir_abort(&od);
	return rc;
}
