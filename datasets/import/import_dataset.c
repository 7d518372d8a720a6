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

static int mkdir_p(const char *dir, struct tj_err *err)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return tj_errf(err, TJ_E_ARG, "%s: path too long", dir);
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
		*p = c;
		if (!c)
			break;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return tj_errf(err, TJ_E_IO, "%s: not a folder", dir);
	return 0;
}

static int is_dataset_file(const char *name)
{
	return strcmp(name, "labels.csv") == 0 ||
	       strcmp(name, "manifest.json") == 0 ||
	       fnmatch("node-*.evlog", name, 0) == 0;
}

/* Refuse a folder holding a dataset, or (force) empty it of one. */
static int clear_dir(const char *dir, unsigned flags, struct tj_err *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (!is_dataset_file(de->d_name))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!(flags & TJ_IMPORT_FORCE))
			rc = tj_errf(err, TJ_E_ARG,
				     "%s: already holds a dataset (%s); --force replaces it",
				     dir, de->d_name);
		else if (unlink(path) < 0)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	}
	closedir(d);
	return rc;
}

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
	struct tj_err cerr;
	int crc = tj_evlog_close(w, rc < 0 ? &cerr : err);
	return rc < 0 ? rc : crc;
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
	struct tj_err cerr;
	int crc = tj_edges_writer_close(&w, rc < 0 ? &cerr : err);
	return rc < 0 ? rc : crc;
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
	int rc = mkdir_p(dir, err);
	if (rc == 0)
		rc = clear_dir(dir, flags, err);
	if (rc < 0)
		return rc;
	char path[4096];
	for (size_t k = 0; k < r->nnodes && rc == 0; k++) {
		snprintf(path, sizeof(path), "%s/node-%u.evlog", dir, r->nodes[k].id);
		rc = write_log(&r->nodes[k], path, err);
	}
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/labels.csv", dir);
		rc = write_labels(&r->labels, path, err);
	}
	if (rc == 0)
		rc = write_manifest(r, dir, fields, params, err);
	if (rc < 0) {
		struct tj_err ignore;
		clear_dir(dir, TJ_IMPORT_FORCE, &ignore); /* leave no half dataset */
	}
	return rc;
}
