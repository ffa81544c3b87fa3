/* Closing every window at the end of input (the test driver's
 * ks_test_driver_close_windows()): task_close_windows.c runs it over a
 * task, dsl_suppress.c empties a suppression's buffer. */
#ifndef KS_CLOSE_WINDOWS_INT_H
#define KS_CLOSE_WINDOWS_INT_H

#include "task_int.h"
#include "topology_int.h"

/** True if @p n is a ks_table_suppress() node. */
bool ks__suppress_is(const ks_node_t *n);
/** Emits every entry buffered by a suppress node (its processor state
 *  @p state), as if its stream time had reached the end of time; adds the
 *  number taken from the buffer to @p *emitted. @locality stream thread */
ks_err_t ks__suppress_emit_all(ks_ctx_t *ctx, void *state, size_t *emitted);

/**
 * Empties every suppression buffer of @p task: each window (or session)
 * still waiting to close is emitted downstream now, final-result
 * tombstones excepted. @p emitted (may be NULL) receives the number of
 * buffered entries taken. @locality the task's thread
 * @returns NULL, or a new error naming the node that failed.
 */
KS_EXPORT ks_error_t *ks__task_close_windows(ks_task_t *task, size_t *emitted);

#endif
