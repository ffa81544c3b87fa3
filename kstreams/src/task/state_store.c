/* The Processor API's state stores (processor.h): a processor's own store
 * is a node store as the DSL operators' are, so everything the task does
 * with stores (open, changelog, checkpoint, restore, undo past the last
 * commit, interactive queries) applies to it unchanged. A handle names the
 * node; writes go through store_write.c, which writes the store, then the
 * changelog. @locality stream thread */
#include <stdlib.h>
#include <string.h>

#include "kstreams/store.h"
#include "task_priv.h"

struct ks_state_store_s {
        ks_task_t *task;
        int node;
};

ks_state_store_t *ks_ctx_state_store(ks_ctx_t *ctx, const char *name) {
        if (!ctx || !name)
                return NULL;
        ks_task_t *task    = ctx->task;
        int node           = ctx->node;
        const ks_node_t *n = task->topology->nodes[node];
        if (!n->store || !task->stores[node] || strcmp(n->store->name, name))
                return NULL;
        if (!task->store_handles) {
                task->store_handles = calloc((size_t)task->topology->node_cnt,
                                             sizeof(*task->store_handles));
                if (!task->store_handles)
                        return NULL;
        }
        ks_state_store_t *st = &task->store_handles[node];
        st->task             = task;
        st->node             = node;
        return st;
}

void ks__task_free_store_handles(ks_task_t *task) {
        free(task->store_handles);
        task->store_handles = NULL;
}

/* The store of @p st if it is of @p kind; else NULL, the reason recorded
 * on the context. */
static void *store_of(ks_state_store_t *st, ks_store_kind_t kind) {
        ks_task_t *task           = st->task;
        const ks_store_spec_t *sp = task->topology->nodes[st->node]->store;
        if (sp->kind != kind) {
                ks_ctx_fail(&task->ctx, "store %s is not a %s store", sp->name,
                            kind == KS_STORE_KV ? "key-value" : "window");
                return NULL;
        }
        return task->stores[st->node];
}

ks_err_t ks_state_kv_get(ks_state_store_t *st,
                         ks_bytes_t key,
                         ks_bytes_t *value,
                         bool *found) {
        *found           = false;
        ks_kv_store_t *s = store_of(st, KS_STORE_KV);
        if (!s)
                return KS_ERR_INVALID_ARG;
        ks_error_t *e = ks_kv_store_get(s, key, value, found);
        return e ? ks__ctx_store_failed(&st->task->ctx, e) : KS_OK;
}

ks_err_t ks_state_kv_put(ks_state_store_t *st,
                         ks_bytes_t key,
                         ks_bytes_t value) {
        if (!store_of(st, KS_STORE_KV))
                return KS_ERR_INVALID_ARG;
        return ks__ctx_kv_put_for(&st->task->ctx, st->node, key, value);
}

ks_err_t ks_state_window_put(ks_state_store_t *st,
                             ks_bytes_t key,
                             int64_t window_start,
                             ks_bytes_t value) {
        if (!store_of(st, KS_STORE_WINDOW))
                return KS_ERR_INVALID_ARG;
        return ks__ctx_window_put_for(&st->task->ctx, st->node, key,
                                      window_start, value);
}

ks_err_t ks_state_window_get(ks_state_store_t *st,
                             ks_bytes_t key,
                             int64_t window_start,
                             ks_bytes_t *value,
                             bool *found) {
        *found               = false;
        ks_window_store_t *s = store_of(st, KS_STORE_WINDOW);
        if (!s)
                return KS_ERR_INVALID_ARG;
        ks_error_t *e = ks_window_store_get(s, key, window_start, value, found);
        return e ? ks__ctx_store_failed(&st->task->ctx, e) : KS_OK;
}

ks_err_t ks_state_window_fetch(ks_state_store_t *st,
                               ks_bytes_t key,
                               int64_t time_from,
                               int64_t time_to,
                               ks_store_iter_t **itp) {
        *itp                 = NULL;
        ks_window_store_t *s = store_of(st, KS_STORE_WINDOW);
        if (!s)
                return KS_ERR_INVALID_ARG;
        ks_error_t *e = ks_window_store_fetch(s, key, time_from, time_to, itp);
        return e ? ks__ctx_store_failed(&st->task->ctx, e) : KS_OK;
}
