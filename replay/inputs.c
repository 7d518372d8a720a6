/* Command-line inputs -> evlog paths.  A dataset folder gives its
 * node-*.evlog files and nothing else: labels.csv and manifest.json sit
 * beside them and must never reach a correlator. */
#include <errno.h>
#include <dirent.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "replay.h"

static int push(char ***paths, size_t *n, size_t *cap, const char *p)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		char **np = realloc(*paths, c * sizeof(*np));
		if (!np)
			return -1;
		*paths = np;
		*cap = c;
	}
	if (!((*paths)[*n] = strdup(p)))
		return -1;
	(*n)++;
	return 0;
}

static int dir_logs(const char *dir, char ***paths, size_t *n, size_t *cap,
		    struct tj_err *err)
{
	size_t dl = strlen(dir);
	char *pat = malloc(dl + sizeof("/node-*.evlog"));
	if (!pat)
		return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", dir);
	memcpy(pat, dir, dl);
	/* glob() treats metacharacters in the folder name as patterns; a
	 * dataset folder named with them is unusual enough to refuse. */
	if (strpbrk(dir, "*?[")) {
		free(pat);
		return tj_errf(err, TJ_E_ARG, "%s: folder names with *?[ are not supported", dir);
	}
	strcpy(pat + dl, (dl && dir[dl - 1] == '/') ? "node-*.evlog" : "/node-*.evlog");
	/* glob() reads an unreadable folder as empty: say what is wrong */
	DIR *dd = opendir(dir);
	if (!dd) {
		int e = errno;
		free(pat);
		return tj_errf(err, TJ_E_IO, "%s: %s", dir, strerror(e));
	}
	closedir(dd);
	glob_t g;
	int rc = glob(pat, GLOB_ERR, NULL, &g); /* sorted by glob */
	free(pat);
	if (rc == GLOB_NOMATCH)
		/* a bad input, not bad usage: exit 1 in correlate as in label */
		return tj_errf(err, TJ_E_FORMAT, "%s: a folder with no node-*.evlog in it", dir);
	if (rc)
		return tj_errf(err, TJ_E_IO, "%s: cannot list the folder", dir);
	for (size_t i = 0; i < g.gl_pathc; i++)
		if (push(paths, n, cap, g.gl_pathv[i]) < 0) {
			globfree(&g);
			return tj_errf(err, TJ_E_NOMEM, "%s: out of memory", dir);
		}
	globfree(&g);
	return 0;
}

int tj_replay_expand_inputs(char *const *args, size_t nargs, char ***paths,
			    size_t *npaths, struct tj_err *err)
{
	char **out = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (nargs == 0)
		return tj_errf(err, TJ_E_ARG, "no input: give a dataset folder or evlog files");
	for (size_t i = 0; i < nargs && rc == 0; i++) {
		struct stat st;
		if (strcmp(args[i], "-") != 0 && stat(args[i], &st) < 0)
			rc = tj_errf(err, TJ_E_IO, "%s: %s", args[i], strerror(errno));
		else if (strcmp(args[i], "-") != 0 && S_ISDIR(st.st_mode))
			rc = dir_logs(args[i], &out, &n, &cap, err);
		else if (push(&out, &n, &cap, args[i]) < 0)
			rc = tj_errf(err, TJ_E_NOMEM, "%s: out of memory", args[i]);
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(out[i]);
		free(out);
		return rc;
	}
	*paths = out;
	*npaths = n;
	return 0;
}
