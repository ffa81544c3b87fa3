/* The tasks' pre-commit hooks (commit_hook_int.h).
 * @locality stream thread */
#include <stdlib.h>

#include "commit_hook_int.h"
#include "task_priv.h"

struct ks_commit_hooks_s {
        struct {
                ks_commit_hook_fn *fn;
                void *state;
        } * hooks;
        int cnt;
};

ks_err_t ks__ctx_add_commit_hook(ks_ctx_t *ctx,
                                 ks_commit_hook_fn *fn,
                                 void *state) {
        ks_task_t *task = ctx->task;
        if (!task->commit_hooks) {
                task->commit_hooks = calloc(1, sizeof(*task->commit_hooks));
                if (!task->commit_hooks)
                        return KS_ERR_NOMEM;
        }
        struct ks_commit_hooks_s *h = task->commit_hooks;
        void *nh = realloc(h->hooks, (size_t)(h->cnt + 1) * sizeof(*h->hooks));
        if (!nh)
                return KS_ERR_NOMEM;
        h->hooks               = nh;
        h->hooks[h->cnt].fn    = fn;
        h->hooks[h->cnt].state = state;
        h->cnt++;
        return KS_OK;
}

ks_error_t *ks__task_run_commit_hooks(ks_task_t *task) {
        struct ks_commit_hooks_s *h = task->commit_hooks;
        for (int i = 0; h && i < h->cnt; i++) {
                ks_error_t *err = h->hooks[i].fn(h->hooks[i].state);
                if (err)
                        return err;
        }
        return NULL;
}

void ks__task_free_commit_hooks(ks_task_t *task) {
        if (!task->commit_hooks)
                return;
        free(task->commit_hooks->hooks);
        free(task->commit_hooks);
        task->commit_hooks = NULL;
}

const ks_conf_t *ks__ctx_conf(const ks_ctx_t *ctx) {
        return ctx->task->conf;
}

const ks_collector_t *ks__ctx_collector(const ks_ctx_t *ctx) {
        return ctx->task->collector;
}
