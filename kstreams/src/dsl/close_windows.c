/* ks__task_close_windows(): what "the end of input" means for windowed
 * results. A suppression emits a window once stream time passes its close;
 * at the end of a replay no later record will move stream time, so the
 * test driver asks each task to emit what its suppressions still hold. */
#include "close_windows_int.h"
#include "task_priv.h"

ks_error_t *ks__task_close_windows(ks_task_t *task, size_t *emitted) {
        const ks_topology_t *t = task->topology;
        size_t n               = 0;
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *node = t->nodes[i];
                if (node->subtopology != task->subtopology ||
                    node->kind != KS_NODE_PROCESSOR || !ks__suppress_is(node) ||
                    !task->states[i])
                        continue;
                ks__task_ctx_enter(task, i, task->punct_arena, NULL, -1, -1,
                                   task->stream_time, NULL, 0);
                ks_err_t err =
                        ks__suppress_emit_all(&task->ctx, task->states[i], &n);
                ks_arena_reset(task->punct_arena);
                if (err)
                        return ks_error_new(err,
                                            "task %s: closing the windows "
                                            "of %s failed: %s%s%s",
                                            task->id, node->name,
                                            ks_err2str(err),
                                            task->ctx.fail_msg[0] ? ": " : "",
                                            task->ctx.fail_msg);
        }
        if (emitted)
                *emitted = n;
        return NULL;
}
