#include "version.h"
#ifdef TJ_GIT_SHA
const char tj_version[] = TJ_VERSION_BASE "+" TJ_GIT_SHA;
#else
const char tj_version[] = TJ_VERSION_BASE;
#endif
