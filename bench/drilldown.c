/* drilldown/<dataset>--<correlator>.json: a few traces the correlator
 * reconstructed wrong, beside their true shape, for report.html.  Made
 * with export's span model of the dataset and its labels (built once per
 * dataset), linked with each correlator's edges in turn (export/export.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bench.h"
#include "../export/export.h"
#include "../lib/outfile.h"

#define DRILL_TRACES 3

int bench_write_drilldown(const char *results, const char *ds_name, const char *algo,
			  struct tj_xmodel *m, const char *edges_path, struct tj_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct tj_edge_set edges = { 0 };
	struct jw w;
	int rc;
	snprintf(dir, sizeof(dir), "%s/drilldown", results);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	if ((rc = tj_edges_read(&edges, edges_path, err)))
		return rc;
	rc = tj_xmodel_link(m, &edges, edges_path, err);
	tj_edges_free(&edges);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s--%s.json", dir, ds_name, algo);
	struct tj_outfile out;
	FILE *f;
	if ((rc = tj_outfile_open(&out, path, TJ_OUT_FORCE, 0666, NULL, 0, err)))
		return rc;
	if (!(f = tj_outfile_stream(&out, err)) || jw_open(&w, f)) {
		tj_outfile_abort(&out);
		return tj_errf(err, TJ_E_NOMEM, "bench: out of memory");
	}
	rc = tj_export_waterfalls(m, DRILL_TRACES, &w, err);
	int rc2 = jw_close(&w, path, err);
	if (rc || rc2) {
		tj_outfile_abort(&out);
		return rc ? rc : rc2;
	}
	return tj_outfile_commit(&out, err);
}
