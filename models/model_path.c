/* The default model's location (model_path.h). */
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "model_path.h"

#ifndef TJ_MODELS_DIR
#define TJ_MODELS_DIR "models"
#endif

const char *tj_models_dir(void)
{
	return TJ_MODELS_DIR;
}

static int exists(const char *p)
{
	return access(p, R_OK) == 0;
}

int tj_model_find(const char *name, char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			static const char *const rel[] = {
				"/../models/", "/../../models/", "/../../../models/",
				"/../share/tracejoin/",
			};
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				int w = snprintf(buf, len, "%s%s%s", exe, rel[i], name);
				if (w > 0 && (size_t)w < len && exists(buf)) {
					char real[PATH_MAX]; /* "build/../models" -> "models" */
					if (realpath(buf, real) && strlen(real) < len)
						strcpy(buf, real);
					return 0;
				}
			}
		}
	}
	int w = snprintf(buf, len, "%s/%s", TJ_MODELS_DIR, name);
	if (w > 0 && (size_t)w < len && exists(buf))
		return 0;
	return -1;
}

int tj_model_default_path(char *buf, size_t len)
{
	return tj_model_find(TJ_MODEL_DEFAULT_NAME, buf, len);
}
