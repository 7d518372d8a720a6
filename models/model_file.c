/* The versioned text form of a model (model.h): written so that the same
 * fit gives the same bytes, read so that every line is checked and a
 * refusal names the file and line. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "../lib/outfile.h"

static const char *fit_name(int fit)
{
	return fit == TJ_FIT_LOGIT ? "logit" : "clogit";
}

static int has_space(const char *s)
{
	for (; *s; s++)
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			return 1;
	return 0;
}

int tj_model_print(const struct tj_model *m, FILE *f, const char *path,
		   struct tj_err *err)
{
	for (size_t i = 0; i < m->nhashes; i++)
		if (has_space(m->hashes[i].dataset) || has_space(m->hashes[i].file) ||
		    !*m->hashes[i].dataset || !*m->hashes[i].file)
			return tj_errf(err, TJ_E_ARG,
				       "%s: dataset name '%s' or file '%s' is empty or has blanks",
				       path, m->hashes[i].dataset, m->hashes[i].file);
	for (size_t k = 0; k < m->nfeat; k++)
		if (has_space(m->names[k]) || !m->names[k][0])
			return tj_errf(err, TJ_E_ARG, "%s: feature %zu has no name or blanks",
				       path, k + 1);
	/* the features written: the used ones; a selection when an unused
	 * one comes before a used one (else the first N, as files always were) */
	size_t nused = 0;
	int selection = 0;
	for (size_t k = 0; k < m->nfeat; k++) {
		if (m->unused[k])
			continue;
		selection |= nused != k;
		nused++;
	}
	if (nused == 0)
		return tj_errf(err, TJ_E_ARG, "%s: a model needs at least one feature", path);
	fprintf(f, "tracejoin-model %d\n", TJ_MODEL_VERSION);
	fprintf(f, "# A tracejoin classifier model (models/README.md).  "
		   "score = bias + sum coef*(x-mean)/scale\n");
	fprintf(f, "algo classifier\n");
	fprintf(f, "fit %s\n", fit_name(m->fit));
	fprintf(f, "lambda %.17g\n", m->lambda);
	fprintf(f, "threshold %.17g\n", m->threshold);
	fprintf(f, "max_cand %u\n", m->max_cand);
	fprintf(f, "window_ns %" PRIu64 "\n", m->window_ns);
	fprintf(f, "train_calls %" PRIu64 "\n", m->train_calls);
	fprintf(f, "train_pairs %" PRIu64 "\n", m->train_pairs);
	fprintf(f, "train_accuracy %.17g\n", m->train_accuracy);
	if (m->train_damaged_logs)
		fprintf(f, "# fitted on partial data: damaged logs lost some labeled calls\n"
			   "train_damaged_logs %" PRIu64 "\n", m->train_damaged_logs);
	fprintf(f, "bias %.17g\n", m->bias);
	if (selection)
		fprintf(f, "# the features below are a selection of the build's, in its order\n"
			   "selection 1\n");
	fprintf(f, "features %zu\n", nused);
	fprintf(f, "# feature NAME MEAN SCALE COEF\n");
	for (size_t k = 0; k < m->nfeat; k++)
		if (!m->unused[k])
			fprintf(f, "feature %s %.17g %.17g %.17g\n", m->names[k],
			m->mean[k], m->scale[k], m->coef[k]);
	fprintf(f, "# dataset NAME FILE SHA256: what it was trained on\n");
	for (size_t i = 0; i < m->nhashes; i++)
		fprintf(f, "dataset %s %s %s\n", m->hashes[i].dataset,
			m->hashes[i].file, m->hashes[i].sha256);
	fprintf(f, "end\n");
	return 0;
}

int tj_model_write(const struct tj_model *m, const char *path, unsigned flags,
		   struct tj_err *err)
{
	struct tj_outfile o;
	int rc = tj_outfile_open(&o, path, flags, 0666, NULL, 0, err);
	if (rc < 0)
		return rc;
	FILE *f = tj_outfile_stream(&o, err);
	if (!f || (rc = tj_model_print(m, f, o.path, err)) < 0) {
		tj_outfile_abort(&o);
		return rc < 0 ? rc : -TJ_E_NOMEM;
	}
	return tj_outfile_commit(&o, err);
}

/* ---- reading ---- */

#define MAXTOK 8

struct rd {
	const char *name;
	unsigned long line;
	struct tj_err *err;
};

static int bad(struct rd *r, const char *fmt, const char *a)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, a);
	return tj_errf(r->err, TJ_E_FORMAT, "%s: line %lu: %s", r->name,
		       r->line, msg);
}

static int num(struct rd *r, const char *key, const char *tok, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(tok, &end);
	if (end == tok || *end || errno == ERANGE || !isfinite(*out))
		return tj_errf(r->err, TJ_E_FORMAT,
			       "%s: line %lu: %s: '%s' is not a finite number",
			       r->name, r->line, key, tok);
	return 0;
}

static int unum(struct rd *r, const char *key, const char *tok, uint64_t max,
		uint64_t *out)
{
	char *end;
	unsigned long long v = 0;
	errno = 0;
	if (*tok >= '0' && *tok <= '9')
		v = strtoull(tok, &end, 10);
	if (*tok < '0' || *tok > '9' || *end || errno == ERANGE || v > max)
		return tj_errf(r->err, TJ_E_FORMAT,
			       "%s: line %lu: %s: '%s' is not a whole number up to %" PRIu64,
			       r->name, r->line, key, tok, max);
	*out = v;
	return 0;
}

static int is_sha256(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

enum { K_ALGO, K_FIT, K_LAMBDA, K_THRESHOLD, K_MAXCAND, K_WINDOW, K_CALLS,
       K_PAIRS, K_ACC, K_BIAS, K_FEATURES, K__REQUIRED,
       K_DAMAGED = K__REQUIRED, K_SELECTION, K__N };
static const char *const keys[K__N] = {
	"algo", "fit", "lambda", "threshold", "max_cand", "window_ns",
	"train_calls", "train_pairs", "train_accuracy", "bias", "features",
	"train_damaged_logs", "selection", /* optional */
};

static int parse_line(struct rd *r, struct tj_model *m, char **tok, int nt,
		      int *seen, size_t *nfeat_decl, int *ended)
{
	double d;
	uint64_t u;
	int rc;
	if (*ended)
		return bad(r, "'%s' after 'end'", tok[0]);
	if (strcmp(tok[0], "end") == 0) {
		if (nt != 1)
			return bad(r, "'end' takes no value%s", "");
		*ended = 1;
		return 0;
	}
	if (strcmp(tok[0], "feature") == 0) {
		if (!seen[K_FEATURES])
			return bad(r, "'feature' before 'features N'%s", "");
		if (nt != 5)
			return bad(r, "'feature' wants NAME MEAN SCALE COEF%s", "");
		if (m->nfeat >= *nfeat_decl)
			return bad(r, "more 'feature' lines than 'features' said%s", "");
		size_t k = m->nfeat;
		if (strlen(tok[1]) >= TJ_MODEL_NAMELEN)
			return bad(r, "feature name '%s' too long", tok[1]);
		strcpy(m->names[k], tok[1]);
		if ((rc = num(r, tok[1], tok[2], &m->mean[k])) < 0 ||
		    (rc = num(r, tok[1], tok[3], &m->scale[k])) < 0 ||
		    (rc = num(r, tok[1], tok[4], &m->coef[k])) < 0)
			return rc;
		if (!(m->scale[k] > 0))
			return bad(r, "feature '%s': scale must be positive", tok[1]);
		m->nfeat++;
		return 0;
	}
	if (strcmp(tok[0], "dataset") == 0) {
		if (nt != 4)
			return bad(r, "'dataset' wants NAME FILE SHA256%s", "");
		if (!is_sha256(tok[3]))
			return bad(r, "'%s' is not a SHA-256 in lower-case hex", tok[3]);
		if (tj_model_add_hash(m, tok[1], tok[2], tok[3]) < 0)
			return tj_errf(r->err, TJ_E_NOMEM, "%s: out of memory", r->name);
		return 0;
	}
	int k = 0;
	while (k < K__N && strcmp(keys[k], tok[0]) != 0)
		k++;
	if (k == K__N)
		return bad(r, "unknown key '%s'", tok[0]);
	if (seen[k])
		return bad(r, "'%s' given twice", tok[0]);
	seen[k] = 1;
	if (nt != 2)
		return bad(r, "'%s' wants exactly one value", tok[0]);
	const char *v = tok[1];
	switch (k) {
	case K_ALGO:
		if (strcmp(v, "classifier") != 0)
			return bad(r, "model is for algo '%s', not 'classifier'", v);
		return 0;
	case K_FIT:
		if (strcmp(v, "logit") == 0)
			m->fit = TJ_FIT_LOGIT;
		else if (strcmp(v, "clogit") == 0)
			m->fit = TJ_FIT_CLOGIT;
		else
			return bad(r, "unknown fit '%s' (logit, clogit)", v);
		return 0;
	case K_LAMBDA:
		if ((rc = num(r, tok[0], v, &d)) < 0)
			return rc;
		if (d < 0)
			return bad(r, "lambda %s is negative", v);
		m->lambda = d;
		return 0;
	case K_THRESHOLD:
		if ((rc = num(r, tok[0], v, &d)) < 0)
			return rc;
		if (d < 0 || d > 1)
			return bad(r, "threshold %s is not in [0,1]", v);
		m->threshold = d;
		return 0;
	case K_MAXCAND:
		if ((rc = unum(r, tok[0], v, 256, &u)) < 0)
			return rc;
		if (u == 0)
			return bad(r, "max_cand must be at least 1%s", "");
		m->max_cand = (unsigned)u;
		return 0;
	case K_WINDOW:
		if ((rc = unum(r, tok[0], v, UINT64_MAX, &u)) < 0)
			return rc;
		if (u == 0)
			return bad(r, "window_ns must be positive%s", "");
		m->window_ns = u;
		return 0;
	case K_CALLS:
		return unum(r, tok[0], v, UINT64_MAX, &m->train_calls);
	case K_PAIRS:
		return unum(r, tok[0], v, UINT64_MAX, &m->train_pairs);
	case K_ACC:
		return num(r, tok[0], v, &m->train_accuracy);
	case K_BIAS:
		return num(r, tok[0], v, &m->bias);
	case K_DAMAGED:
		return unum(r, tok[0], v, UINT64_MAX, &m->train_damaged_logs);
	case K_SELECTION:
		/* the feature lines are a selection of the build's list (model.h) */
		if (strcmp(v, "1") != 0)
			return bad(r, "selection '%s': only 1 is known", v);
		return 0;
	case K_FEATURES:
		if ((rc = unum(r, tok[0], v, TJ_MODEL_MAXFEAT, &u)) < 0)
			return rc;
		if (u == 0)
			return bad(r, "a model needs at least one feature%s", "");
		*nfeat_decl = (size_t)u;
		return 0;
	}
	return 0;
}

/* A `selection 1` model: its features must be some of the build's list,
 * in its order, each once; spread over the whole list. */
static int match_selection(struct tj_model *m, const char *name,
			   const char *const *expect, size_t nexpect, struct tj_err *err)
{
	size_t col[TJ_MODEL_MAXFEAT], c = 0;
	if (nexpect > TJ_MODEL_MAXFEAT)
		return tj_errf(err, TJ_E_ARG, "%s: this build has %zu features, above %d",
			       name, nexpect, TJ_MODEL_MAXFEAT);
	for (size_t k = 0; k < m->nfeat; k++) {
		while (c < nexpect && strcmp(m->names[k], expect[c]) != 0)
			c++;
		if (c == nexpect)
			return tj_errf(err, TJ_E_VERSION,
				       "%s: feature %zu '%s' is not in this build's list%s%s%s: "
				       "the model was made for another feature list; retrain it",
				       name, k + 1, m->names[k], k ? " after '" : "",
				       k ? m->names[k - 1] : "", k ? "'" : "");
		col[k] = c++;
	}
	return tj_model_spread(m, col, expect, nexpect) < 0
		       ? tj_errf(err, TJ_E_VERSION, "%s: feature list does not fit this build's", name)
		       : 0;
}

int tj_model_parse(struct tj_model *m, const char *name, const char *text,
		   size_t len, const char *const *expect, size_t nexpect,
		   struct tj_err *err)
{
	struct rd r = { name, 0, err };
	int seen[K__N] = { 0 }, ended = 0, rc = 0, header = 0;
	size_t nfeat_decl = 0;
	tj_model_init(m);
	const char *p = text, *endp = text + len;
	char buf[1024];
	while (p < endp) {
		const char *nl = memchr(p, '\n', (size_t)(endp - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(endp - p);
		r.line++;
		if (n >= sizeof(buf)) {
			rc = bad(&r, "line too long%s", "");
			goto fail;
		}
		memcpy(buf, p, n);
		buf[n] = 0;
		p += n + (nl ? 1 : 0);
		if (n && buf[n - 1] == '\r')
			buf[--n] = 0;
		if (memchr(buf, 0, n)) {
			rc = bad(&r, "NUL byte in line%s", "");
			goto fail;
		}
		const char *first = buf + strspn(buf, " \t");
		if (header && (*first == '#' || *first == 0))
			continue; /* comment or blank line */
		char *tok[MAXTOK + 1], *save = NULL;
		int nt = 0;
		for (char *s = strtok_r(buf, " \t", &save); s;
		     s = strtok_r(NULL, " \t", &save)) {
			if (nt == MAXTOK) {
				rc = header ? bad(&r, "too many fields%s", "")
					    : tj_errf(err, TJ_E_FORMAT,
						      "%s: line 1: not a tracejoin model file",
						      name);
				goto fail;
			}
			tok[nt++] = s;
		}
		if (!header) {
			if (nt != 2 || strcmp(tok[0], "tracejoin-model") != 0) {
				rc = tj_errf(err, TJ_E_FORMAT,
					     "%s: line 1: not a tracejoin model file (no 'tracejoin-model N' line)",
					     name);
				goto fail;
			}
			uint64_t v;
			if ((rc = unum(&r, "version", tok[1], UINT32_MAX, &v)) < 0)
				goto fail;
			if (v != TJ_MODEL_VERSION) {
				rc = tj_errf(err, TJ_E_VERSION,
					     "%s: line 1: model version %" PRIu64
					     ", this build reads version %d: retrain it with 'tracejoin train'",
					     name, v, TJ_MODEL_VERSION);
				goto fail;
			}
			header = 1;
			continue;
		}
		if ((rc = parse_line(&r, m, tok, nt, seen, &nfeat_decl, &ended)) < 0)
			goto fail;
	}
	if (!header) {
		rc = tj_errf(err, TJ_E_FORMAT, "%s: empty, not a tracejoin model file", name);
		goto fail;
	}
	if (!ended) {
		rc = tj_errf(err, TJ_E_FORMAT, "%s: cut short: no 'end' line", name);
		goto fail;
	}
	for (int k = 0; k < K__REQUIRED; k++)
		if (!seen[k]) {
			rc = tj_errf(err, TJ_E_FORMAT, "%s: key '%s' missing", name, keys[k]);
			goto fail;
		}
	if (m->nfeat != nfeat_decl) {
		rc = tj_errf(err, TJ_E_FORMAT, "%s: 'features %zu' but %zu feature lines",
			     name, nfeat_decl, m->nfeat);
		goto fail;
	}
	if (expect && seen[K_SELECTION]) {
		if ((rc = match_selection(m, name, expect, nexpect, err)) < 0)
			goto fail;
	} else if (expect) {
		for (size_t k = 0; k < m->nfeat && k < nexpect; k++)
			if (strcmp(m->names[k], expect[k]) != 0) {
				rc = tj_errf(err, TJ_E_VERSION,
					     "%s: feature %zu is '%s' where this build has '%s': "
					     "the model was made for another feature list; retrain it",
					     name, k + 1, m->names[k], expect[k]);
				goto fail;
			}
		if (m->nfeat < nexpect && m->nfeat <= TJ_MODEL_MAXFEAT &&
		    nexpect <= TJ_MODEL_MAXFEAT) {
			/* Features are only ever appended (features.h): a model
			 * made before some were added names a prefix of this
			 * build's list and scores exactly as it did, the newer
			 * features weighing nothing. */
			size_t col[TJ_MODEL_MAXFEAT];
			for (size_t k = 0; k < m->nfeat; k++)
				col[k] = k;
			tj_model_spread(m, col, expect, nexpect); /* cannot fail: a prefix */
		}
		if (m->nfeat != nexpect) {
			rc = tj_errf(err, TJ_E_VERSION,
				     "%s: %zu features where this build has %zu ('%s' %s): "
				     "the model was made for another feature list; retrain it",
				     name, m->nfeat, nexpect,
				     m->nfeat < nexpect ? expect[m->nfeat] : m->names[nexpect],
				     m->nfeat < nexpect ? "missing" : "unknown");
			goto fail;
		}
	}
	tj_model_prepare(m);
	/* finite numbers can still overflow once divided by a tiny scale */
	int finite = isfinite(m->b_raw);
	for (size_t k = 0; k < m->nfeat; k++)
		finite = finite && isfinite(m->w_raw[k]);
	if (!finite) {
		rc = tj_errf(err, TJ_E_FORMAT,
			     "%s: coefficients overflow once divided by their scales", name);
		goto fail;
	}
	return 0;
fail:
	tj_model_free(m);
	return rc;
}

int tj_model_read(struct tj_model *m, const char *path,
		  const char *const *expect, size_t nexpect, struct tj_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return tj_errf(err, TJ_E_IO, "model %s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			size_t nc = cap ? 2 * cap : 8192;
			if (nc > (64u << 20)) {
				free(buf);
				fclose(f);
				return tj_errf(err, TJ_E_LIMIT, "model %s: larger than 64 MB", path);
			}
			char *nb = realloc(buf, nc);
			if (!nb) {
				free(buf);
				fclose(f);
				return tj_errf(err, TJ_E_NOMEM, "model %s: out of memory", path);
			}
			buf = nb;
			cap = nc;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	int ioerr = ferror(f);
	fclose(f);
	if (ioerr) {
		free(buf);
		return tj_errf(err, TJ_E_IO, "model %s: read error", path);
	}
	int rc = tj_model_parse(m, path, buf, len, expect, nexpect, err);
	free(buf);
	return rc;
}
