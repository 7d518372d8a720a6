/* manifest.json: jansson with sorted keys, SHA-256 from nettle, event
 * counts from each log's footer.  Nothing in it reads a clock or names
 * the output folder, so equal datasets have equal manifests. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nettle/sha2.h>
#include "manifest.h"
#include "evlog.h"
#include "version.h"

struct tj_manifest {
	json_t *root;
	json_t *params;
};

struct tj_manifest *tj_manifest_new(const char *generator)
{
	struct tj_manifest *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->root = json_object();
	m->params = json_object();
	if (!m->root || !m->params ||
	    json_object_set_new(m->root, "generator", json_string(generator)) ||
	    json_object_set(m->root, "parameters", m->params)) {
		tj_manifest_free(m);
		return NULL;
	}
	return m;
}

int tj_manifest_set(struct tj_manifest *m, const char *key, json_t *value)
{
	return json_object_set_new(m->root, key, value) ? -TJ_E_NOMEM : 0;
}

json_t *tj_manifest_params(struct tj_manifest *m)
{
	return m->params;
}

void tj_manifest_free(struct tj_manifest *m)
{
	if (!m)
		return;
	json_decref(m->params);
	json_decref(m->root);
	free(m);
}

int tj_sha256_file(const char *path, char hex[65], struct tj_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	static const size_t bufsz = 1 << 16;
	uint8_t *buf = malloc(bufsz);
	if (!buf) {
		fclose(f);
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", path);
	}
	size_t n;
	while ((n = fread(buf, 1, bufsz, f)) > 0)
		sha256_update(&ctx, n, buf);
	int bad = ferror(f);
	fclose(f);
	free(buf);
	if (bad)
		return tj_errf(err, TJ_E_IO, "%s: read error", path);
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_digest(&ctx, sizeof(d), d);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	return 0;
}

/* Events and drops of one log, from its footer (read to the end: the
 * footer is where the reader meets it). */
static int log_counts(const char *path, json_t *entry, struct tj_err *err)
{
	struct tj_evlog_reader *r;
	int rc = tj_evlog_open(&r, path, err);
	if (rc < 0)
		return rc;
	const struct tj_event *ev;
	uint64_t seen = 0;
	while ((rc = tj_evlog_next(r, &ev, err)) > 0)
		seen++;
	if (rc < 0) {
		tj_evlog_close_reader(r);
		return rc;
	}
	const struct tj_evlog_footer *f = tj_evlog_footer(r);
	if (!f || tj_evlog_damage(r)->damaged) {
		rc = tj_errf(err, TJ_E_DAMAGED, "%s: %s", path,
			     tj_evlog_damage(r)->damaged ? tj_evlog_damage(r)->what
							 : "no footer");
		tj_evlog_close_reader(r);
		return rc;
	}
	if (seen != f->events) {
		rc = tj_errf(err, TJ_E_DAMAGED, "%s: footer counts %llu events, the log holds %llu",
			     path, (unsigned long long)f->events, (unsigned long long)seen);
		tj_evlog_close_reader(r);
		return rc;
	}
	uint64_t drops = 0;
	for (int i = 0; i < TJ_DROP__COUNT; i++)
		drops += f->drops[i];
	json_object_set_new(entry, "events", json_integer((json_int_t)f->events));
	json_object_set_new(entry, "dropped", json_integer((json_int_t)drops));
	json_object_set_new(entry, "node", json_integer(tj_evlog_header(r)->node));
	tj_evlog_close_reader(r);
	return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int wanted(const struct dirent *d)
{
	return fnmatch("node-*.evlog", d->d_name, 0) == 0 ||
	       strcmp(d->d_name, "labels.csv") == 0;
}

int tj_manifest_write(struct tj_manifest *m, const char *dir,
		      struct tj_err *err)
{
	struct dirent **names;
	int n = scandir(dir, &names, wanted, name_cmp);
	if (n < 0)
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(errno));
	json_t *files = json_object();
	uint64_t total = 0;
	int rc = files ? 0 : tj_errf(err, TJ_E_NOMEM, "manifest: out of memory");
	char path[4096];
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (rc < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		struct stat sb;
		char hex[65];
		if (stat(path, &sb) < 0) {
			rc = tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
			continue;
		}
		if ((rc = tj_sha256_file(path, hex, err)) < 0)
			continue;
		json_t *entry = json_object();
		json_object_set_new(entry, "sha256", json_string(hex));
		json_object_set_new(entry, "bytes", json_integer((json_int_t)sb.st_size));
		if (strcmp(name, "labels.csv") != 0) {
			if ((rc = log_counts(path, entry, err)) < 0) {
				json_decref(entry);
				continue;
			}
			total += (uint64_t)json_integer_value(json_object_get(entry, "events"));
		}
		json_object_set_new(files, name, entry);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc < 0) {
		json_decref(files);
		return rc;
	}
	json_object_set_new(m->root, "files", files);
	json_object_set_new(m->root, "events", json_integer((json_int_t)total));
	json_object_set_new(m->root, "tool_version", json_string(tj_version));
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(m->root, tmp, JSON_SORT_KEYS | JSON_INDENT(2)) < 0) {
		unlink(tmp);
		return tj_errf(err, TJ_E_IO, "%s: cannot write", tmp);
	}
	/* json_dump_file leaves the file without a final newline */
	FILE *f = fopen(tmp, "a");
	if (!f || fputc('\n', f) == EOF || fclose(f) == EOF) {
		unlink(tmp);
		return tj_errf(err, TJ_E_IO, "%s: %s", tmp, strerror(errno));
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return tj_errf(err, TJ_E_IO, "%s: %s", path, strerror(errno));
	}
	return 0;
}
