#ifndef TJ_VERSION_H
#define TJ_VERSION_H
/* The tool version ("0.1.0+abc1234"), recorded in manifests, models and
 * bench results.  Only lib/version.c sees the git sha, so a new commit
 * rebuilds one file. */
#define TJ_VERSION_BASE "0.1.0"
extern const char tj_version[];
#endif
