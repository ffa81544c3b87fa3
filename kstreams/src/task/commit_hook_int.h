/* The one interface between external sinks (the PostgreSQL sink) and the
 * commit protocol. A node's per-task state registers a hook in its init();
 * the commit protocol (ks__commit(), which the runtime and the test driver
 * both run) runs the task's hooks after flushing its record caches and
 * before committing any offset, so what a hook commits elsewhere is never
 * behind the Kafka offsets. Everything else a sink needs of its
 * task goes through the accessors below, so a restructured task only has
 * to keep these few functions (task_hooks.c). */
#ifndef KS_COMMIT_HOOK_INT_H
#define KS_COMMIT_HOOK_INT_H

#include "kstreams/conf.h"
#include "kstreams/error.h"
#include "kstreams/processor.h"
#include "task_int.h"

/**
 * Finishes @p state's work for the commit under way.
 * @returns NULL on success. A retriable error (ks_error_is_retriable())
 *          postpones the commit: no offset is committed, the hook runs
 *          again at the next commit. Any other error fails the task.
 * @locality stream thread
 */
typedef ks_error_t *(ks_commit_hook_fn)(void *state);

/** Registers @p fn(@p state) on the task that runs @p ctx's node; call it
 *  from the node's init(). @p state stays the node's: it must outlive the
 *  task's last commit (a node's close() runs after it). */
ks_err_t ks__ctx_add_commit_hook(ks_ctx_t *ctx,
                                 ks_commit_hook_fn *fn,
                                 void *state);
/** Runs the task's hooks in registration order; stops at the first
 *  error and returns it. NULL when there are none. */
ks_error_t *ks__task_run_commit_hooks(ks_task_t *task);
/** Forgets the hooks (task destroy). */
void ks__task_free_commit_hooks(ks_task_t *task);

/** The task's configuration (borrowed, valid while the task lives). */
const ks_conf_t *ks__ctx_conf(const ks_ctx_t *ctx);
/** The task's collector, for dead-letter records a hook writes. */
const ks_collector_t *ks__ctx_collector(const ks_ctx_t *ctx);

#endif
