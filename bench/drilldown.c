/* drilldown/<dataset>--<correlator>.json: a few traces the correlator
 * reconstructed wrong, beside their true shape, for report.html.  Made
 * with export's span model from the dataset, the correlator's edges and
 * the labels (export/export.h). */
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
			  const char *ds_dir, const char *edges_path,
			  const struct tj_edge_set *labels, struct tj_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct tj_edge_set edges = { 0 };
	struct tj_xmodel m;
	struct jw w;
	char *in = (char *)ds_dir;
	int rc;
	snprintf(dir, sizeof(dir), "%s/drilldown", results);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	if ((rc = tj_edges_read(&edges, edges_path, err)))
		return rc;
	struct tj_xmodel_opts o = { .edges = &edges, .edges_name = edges_path,
				    .truth = labels, .truth_name = "labels.csv" };
	if ((rc = tj_xmodel_build(&m, &in, 1, &o, err))) {
		tj_edges_free(&edges);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/%s--%s.json", dir, ds_name, algo);
	struct tj_outfile out;
	FILE *f;
	if ((rc = tj_outfile_open(&out, path, TJ_OUT_FORCE, 0666, NULL, 0, err)) == 0) {
		if (!(f = tj_outfile_stream(&out, err)) || jw_open(&w, f)) {
			rc = tj_errf(err, TJ_E_NOMEM, "bench: out of memory");
			tj_outfile_abort(&out);
		} else {
			rc = tj_export_waterfalls(&m, DRILL_TRACES, &w, err);
			int rc2 = jw_close(&w, path, err);
			if (rc || rc2)
				tj_outfile_abort(&out);
			else
				rc = tj_outfile_commit(&out, err);
			rc = rc ? rc : rc2;
		}
	}
	tj_xmodel_free(&m);
	tj_edges_free(&edges);
	return rc;
}
