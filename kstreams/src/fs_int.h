/* Directories: what the runtime's state directory, the test driver's
 * temporary one and the benchmarks' need. */
#ifndef KS_FS_INT_H
#define KS_FS_INT_H

#include "kstreams/common.h"

/** Creates @p path and its parents (mode 0755). */
ks_err_t ks__mkdirs(const char *path);
/** Deletes @p path and everything under it. @returns 0, or -1 (errno). */
int ks__rmtree(const char *path);

#endif
