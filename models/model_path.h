/* Where the classifier finds its default model when no model=FILE is
 * given.  In order:
 *   1. DIR/../models/default.model, DIR/../../models/default.model and
 *      DIR/../../../models/default.model, DIR being the folder of the
 *      running binary (/proc/self/exe): a build tree such as build/,
 *      build-x/ or build/asan/ inside the source tree;
 *   2. DIR/../share/tracejoin/default.model (an installed binary);
 *   3. the source tree's models/ folder, compiled in at build time
 *      (tj_models_dir(), set by models/build.mk). */
#ifndef TJ_MODEL_PATH_H
#define TJ_MODEL_PATH_H

#include <stddef.h>

#define TJ_MODEL_DEFAULT_NAME "default.model"

/* The compiled-in models folder. */
const char *tj_models_dir(void);
/* Write the first models/NAME that exists, looked for in the order above,
 * into buf; -1 if none. */
int tj_model_find(const char *name, char *buf, size_t len);
/* Write the first default model that exists into buf; -1 if none. */
int tj_model_default_path(char *buf, size_t len);

#endif
