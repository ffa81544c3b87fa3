/* A task's record caches: one per store that emits changes (aggregations
 * and materialized tables), flushed at every commit and, when the budget
 * is exceeded, one oldest entry at a time while processing. Flushing an
 * entry logs it to the store's changelog and forwards it downstream in the
 * context of the record that last changed it. @locality stream thread */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "changelog_int.h"

void ks__task_drop_caches(ks_task_t *task) {
        for (int i = 0; task->caches && i < task->topology->node_cnt; i++) {
                ks__cache_destroy(task->caches[i]);
                task->caches[i] = NULL;
        }
}

void ks__task_set_cache_budget(ks_task_t *task, ks_cache_budget_t *budget) {
        task->budget = budget ? budget : &task->own_budget;
}

/* Deserializes stored bytes, copied into the arena first since the entry
 * is freed once flushed. */
static ks_err_t read_back(ks_ctx_t *ctx,
                          ks_serde_t *serde,
                          const void *data,
                          size_t len,
                          const void **obj) {
        char errstr[256] = "";
        const void *copy = ks_arena_memdup(ks_ctx_arena(ctx), data, len);
        if (!copy && len)
                return KS_ERR_NOMEM;
        ks_err_t err = ks_serde_deserialize(serde, ks_ctx_arena(ctx), copy, len,
                                            obj, errstr, sizeof(errstr));
        if (err)
                return ks_ctx_fail(ctx, "reading back a cached record: %s: %s",
                                   ks_serde_name(serde), errstr);
        return KS_OK;
}

/* Logs and forwards one entry of node @p node's cache, with the context
 * pointed at it (the caller saves and restores the context). *log_failed
 * tells a changelog failure (the store is then ahead of its changelog)
 * from a downstream one. */
static ks_err_t emit_entry(ks_task_t *task,
                           int node,
                           ks_arena_t *arena,
                           const ks_cache_entry_t *e,
                           bool *log_failed) {
        const ks_cache_origin_t *o = &e->origin;
        ks_ctx_t *ctx              = &task->ctx;
        *log_failed                = false;
        if (e->deleted && e->created)
                return KS_OK; /* never seen outside this interval */
        ks__task_ctx_enter(task, node, arena, o->topic, o->partition, o->offset,
                           o->timestamp, o->headers, o->header_cnt);
        ks_bytes_t key = {e->key, e->key_len};
        ks_err_t err   = ks__ctx_log_change_for(ctx, node, key, e->value);
        if (err) {
                *log_failed = true;
                return err;
        }
        const void *kobj = NULL, *vobj = NULL;
        if ((err = read_back(ctx, task->cache_key_serdes[node], e->key,
                             e->key_len, &kobj)))
                return err;
        if (!e->deleted &&
            (err = read_back(ctx, task->cache_value_serdes[node], e->value.data,
                             e->value.len, &vobj)))
                return err;
        return ks_ctx_forward(ctx, kobj, vobj);
}

/* Makes room while a record is processed: the node's oldest entries go
 * out within the current record's processing, as Kafka Streams' eviction
 * does; a failure is the current record's. */
static ks_err_t evict(ks_ctx_t *ctx, int node) {
        ks_task_t *task      = ctx->task;
        ks_record_cache_t *c = task->caches[node];
        ks_err_t err         = KS_OK;
        ks_cache_entry_t *e;
        while (!err && ks__cache_over_budget(c) && (e = ks__cache_pop(c))) {
                ks_ctx_t saved = *ctx;
                bool log_failed;
                err = emit_entry(task, node, saved.arena, e, &log_failed);
                ks__cache_entry_free(e);
                ks_ctx_t failed = *ctx;
                *ctx            = saved;
                if (err && ctx->failed_node < 0) {
                        ctx->failed_node  = failed.failed_node;
                        ctx->fail_code    = failed.fail_code;
                        ctx->fail_in_sink = failed.fail_in_sink;
                        memcpy(ctx->fail_msg, failed.fail_msg,
                               sizeof(ctx->fail_msg));
                }
        }
        return err;
}

ks_err_t ks__ctx_emit_change(ks_ctx_t *ctx,
                             const ks_change_t *change,
                             ks_serde_t *key_serde,
                             ks_serde_t *value_serde) {
        ks_task_t *task = ctx->task;
        int node        = ctx->node;
        if (!task->budget->max) {
                ks_err_t err =
                        ks__ctx_log_change(ctx, change->key, change->value);
                return err ? err
                           : ks_ctx_forward_ts(ctx, NULL, change->key_obj,
                                               change->value_obj,
                                               change->timestamp);
        }
        if (!task->caches[node]) {
                task->caches[node] = ks__cache_new(task->budget);
                if (!task->caches[node])
                        return KS_ERR_NOMEM;
                task->cache_key_serdes[node]   = key_serde;
                task->cache_value_serdes[node] = value_serde;
        }
        ks_cache_origin_t origin = {ctx->topic,   ctx->partition,
                                    ctx->offset,  change->timestamp,
                                    ctx->headers, ctx->header_cnt};
        ks_err_t err = ks__cache_put(task->caches[node], change->key,
                                     change->value, &origin, change->created);
        if (err)
                return ks_ctx_fail(ctx, "record cache: out of memory");
        task->metrics.cache_puts++;
        return evict(ctx, node);
}

/* A flushed entry that failed downstream: the handler of its kind
 * decides, as for a record (production for a sink, else processing). No
 * input record stands behind a cached change, so a dead-letter handler
 * logs and skips it. @returns NULL to go on, or the error. */
static ks_error_t *flush_failed(ks_task_t *task, int node, ks_err_t err) {
        const ks_ctx_t *ctx = &task->ctx;
        bool prod           = ctx->fail_in_sink;
        const char *name    = task->topology->nodes[node]->name;
        if ((prod ? task->prod_handler : task->proc_handler) == KS_HANDLER_FAIL)
                return ks_error_new(err,
                                    "task %s: flushing the record cache of "
                                    "%s: %s%s%s",
                                    task->id, name, ks_err2str(err),
                                    ctx->fail_msg[0] ? ": " : "",
                                    ctx->fail_msg);
        if (prod)
                task->metrics.dropped_production++;
        else
                task->metrics.dropped_processing++;
        ks__log_limited(prod ? &task->rl_prod : &task->rl_proc,
                        task->log_interval, KS_LOG_WARNING,
                        "task %s: flushing the record cache of %s: %s%s%s; "
                        "record skipped",
                        task->id, name, ks_err2str(err),
                        ctx->fail_msg[0] ? ": " : "", ctx->fail_msg);
        return NULL;
}

/* Flushes node @p node's whole cache. A changelog failure always fails
 * the task, since the store already holds the change. */
static ks_error_t *flush_node(ks_task_t *task, int node) {
        ks_record_cache_t *c = task->caches[node];
        ks_cache_entry_t *e;
        while ((e = ks__cache_pop(c))) {
                bool log_failed;
                ks_err_t err = emit_entry(task, node, task->punct_arena, e,
                                          &log_failed);
                ks__cache_entry_free(e);
                ks_arena_reset(task->punct_arena);
                ks_error_t *fatal = NULL;
                if (!err)
                        task->metrics.cache_flushed++;
                else if (log_failed)
                        fatal = ks_error_new(
                                err,
                                "task %s: flushing the record cache of %s: "
                                "%s",
                                task->id, task->topology->nodes[node]->name,
                                task->ctx.fail_msg);
                else
                        fatal = flush_failed(task, node, err);
                if (fatal)
                        return fatal;
        }
        return NULL;
}

ks_error_t *ks__task_flush_cache(ks_task_t *task) {
        /* Flushing one store can feed another downstream in the same
         * sub-topology (a table source into an aggregation): go again
         * until every cache is empty. Children have larger node ids, so
         * one pass in id order usually does it. */
        bool again = true;
        while (again) {
                again = false;
                for (int i = 0; i < task->topology->node_cnt; i++) {
                        if (!task->caches[i] ||
                            !ks__cache_count(task->caches[i]))
                                continue;
                        ks_error_t *err = flush_node(task, i);
                        if (err)
                                return err;
                        again = true;
                }
        }
        return NULL;
}
