/* The processor context: forwarding, record metadata, headers, punctuator
 * scheduling, and sinks. @locality stream thread */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kstreams/partitioner.h"
#include "changelog_int.h"

static void note_failure(ks_ctx_t *ctx,
                         int id,
                         ks_err_t err,
                         bool in_sink,
                         const char *msg) {
        if (ctx->failed_node >= 0)
                return;
        ctx->failed_node  = id;
        ctx->fail_code    = err;
        ctx->fail_in_sink = in_sink;
        if (msg && !ctx->fail_msg[0])
                snprintf(ctx->fail_msg, sizeof(ctx->fail_msg), "%s", msg);
}

static ks_err_t run_sink(ks_ctx_t *ctx,
                         const ks_node_t *n,
                         const void *key,
                         const void *value) {
        ks_task_t *task  = ctx->task;
        char errstr[256] = "";
        const char *topic;
        if (n->topic_fn)
                topic = n->topic_fn(ctx->arena, key, value, n->topic_opaque);
        else if (n->internal)
                topic = task->sink_topics[n->id];
        else
                topic = n->topics[0];
        if (!topic || !*topic) {
                note_failure(ctx, n->id, KS_ERR_PROCESSING, true,
                             "the topic extractor returned no topic");
                return KS_ERR_PROCESSING;
        }
        ks_buf_clear(&task->key_buf);
        ks_buf_clear(&task->value_buf);
        ks_err_t err = ks_serde_serialize(n->key_serde, key, &task->key_buf,
                                          errstr, sizeof(errstr));
        if (!err)
                err = ks_serde_serialize(n->value_serde, value,
                                         &task->value_buf, errstr,
                                         sizeof(errstr));
        if (err) {
                note_failure(ctx, n->id, err, true, errstr);
                return err;
        }
        ks_bytes_t kb = {key ? task->key_buf.data : NULL,
                         key ? task->key_buf.len : 0};
        ks_bytes_t vb = {value ? task->value_buf.data : NULL,
                         value ? task->value_buf.len : 0};
        /* An empty serialized key still hashes (Java does the same). */
        if (key && !kb.data)
                kb.data = "";
        if (value && !vb.data)
                vb.data = "";
        const ks_collector_t *c = task->collector;
        int32_t cnt             = c->partition_count(c->opaque, topic);
        int32_t partition =
                cnt > 0 ? ks_partition_for_key(kb.data, kb.len, cnt) : -1;
        err = c->send(c->opaque, topic, partition, kb, vb, ctx->timestamp,
                      ctx->headers, ctx->header_cnt, NULL, errstr,
                      sizeof(errstr));
        if (err) {
                note_failure(ctx, n->id, err, true, errstr);
                return err;
        }
        task->metrics.records_produced++;
        return KS_OK;
}

ks_err_t ks__task_run_node(ks_ctx_t *ctx,
                           int id,
                           const void *key,
                           const void *value) {
        ks_task_t *task    = ctx->task;
        const ks_node_t *n = task->topology->nodes[id];
        int saved          = ctx->node;
        ks_err_t err;
        ctx->node = id;
        if (n->kind == KS_NODE_SINK) {
                err = run_sink(ctx, n, key, value);
        } else {
                err = n->def.process(ctx, key, value, task->states[id],
                                     n->def.opaque);
                if (err)
                        note_failure(ctx, id, err, false, NULL);
        }
        ctx->node = saved;
        return err;
}

ks_err_t ks_ctx_forward(ks_ctx_t *ctx, const void *key, const void *value) {
        const ks_node_t *n = ctx->task->topology->nodes[ctx->node];
        for (int i = 0; i < n->child_cnt; i++) {
                ks_err_t err =
                        ks__task_run_node(ctx, n->children[i], key, value);
                if (err)
                        return err;
        }
        return KS_OK;
}

ks_err_t ks_ctx_forward_to(ks_ctx_t *ctx,
                           const char *child,
                           const void *key,
                           const void *value) {
        if (!child)
                return ks_ctx_forward(ctx, key, value);
        const ks_topology_t *t = ctx->task->topology;
        const ks_node_t *n     = t->nodes[ctx->node];
        for (int i = 0; i < n->child_cnt; i++)
                if (!strcmp(t->nodes[n->children[i]]->name, child))
                        return ks__task_run_node(ctx, n->children[i], key,
                                                 value);
        return KS_ERR_NOT_FOUND;
}

ks_err_t ks_ctx_forward_ts(ks_ctx_t *ctx,
                           const char *child,
                           const void *key,
                           const void *value,
                           int64_t timestamp) {
        int64_t saved  = ctx->timestamp;
        ctx->timestamp = timestamp;
        ks_err_t err   = ks_ctx_forward_to(ctx, child, key, value);
        ctx->timestamp = saved;
        return err;
}

ks_err_t ks_ctx_fail(ks_ctx_t *ctx, const char *fmt, ...) {
        if (ctx->failed_node < 0 && !ctx->fail_msg[0]) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(ctx->fail_msg, sizeof(ctx->fail_msg), fmt, ap);
                va_end(ap);
        }
        return KS_ERR_PROCESSING;
}

ks_arena_t *ks_ctx_arena(ks_ctx_t *ctx) {
        return ctx->arena;
}

const char *ks_ctx_topic(const ks_ctx_t *ctx) {
        return ctx->topic;
}

int32_t ks_ctx_partition(const ks_ctx_t *ctx) {
        return ctx->partition;
}

int64_t ks_ctx_offset(const ks_ctx_t *ctx) {
        return ctx->offset;
}

int64_t ks_ctx_timestamp(const ks_ctx_t *ctx) {
        return ctx->timestamp;
}

int64_t ks_ctx_stream_time(const ks_ctx_t *ctx) {
        return ctx->task->stream_time;
}

const char *ks_ctx_task_id(const ks_ctx_t *ctx) {
        return ctx->task->id;
}

const char *ks_ctx_node_name(const ks_ctx_t *ctx) {
        return ctx->task->topology->nodes[ctx->node]->name;
}

const char *ks_ctx_application_id(const ks_ctx_t *ctx) {
        return ctx->task->application_id;
}

size_t ks_ctx_header_count(const ks_ctx_t *ctx) {
        return ctx->header_cnt;
}

const ks_header_t *ks_ctx_header(const ks_ctx_t *ctx, size_t idx) {
        return idx < ctx->header_cnt ? &ctx->headers[idx] : NULL;
}

const ks_header_t *ks_ctx_header_last(const ks_ctx_t *ctx, const char *name) {
        for (size_t i = ctx->header_cnt; i > 0; i--)
                if (!strcmp(ctx->headers[i - 1].name, name))
                        return &ctx->headers[i - 1];
        return NULL;
}

ks_err_t ks_ctx_header_add(ks_ctx_t *ctx,
                           const char *name,
                           const void *value,
                           size_t len) {
        /* Copy on first write: until then the headers are the raw
         * record's, which must not change under the feeder. */
        if (!ctx->own_headers || ctx->header_cnt == ctx->own_cap) {
                size_t cap     = ctx->header_cnt * 2 + 4;
                ks_header_t *h = ks_arena_alloc(ctx->arena, cap * sizeof(*h));
                if (!h)
                        return KS_ERR_NOMEM;
                if (ctx->header_cnt)
                        memcpy(h, ctx->headers, ctx->header_cnt * sizeof(*h));
                ctx->own_headers = h;
                ctx->own_cap     = cap;
                ctx->headers     = h;
        }
        ks_header_t *h = &ctx->own_headers[ctx->header_cnt];
        h->name        = ks_arena_strdup(ctx->arena, name);
        h->value.data  = value ? ks_arena_memdup(ctx->arena, value, len) : NULL;
        h->value.len   = value ? len : 0;
        if (!h->name || (value && !h->value.data))
                return KS_ERR_NOMEM;
        ctx->header_cnt++;
        return KS_OK;
}

ks_punctuator_t *ks_ctx_schedule(ks_ctx_t *ctx,
                                 int64_t interval_ms,
                                 ks_punctuation_type_t type,
                                 ks_punctuate_fn *fn,
                                 void *opaque) {
        ks_task_t *task = ctx->task;
        if (interval_ms < 1 || !fn ||
            (type != KS_PUNCTUATE_STREAM_TIME &&
             type != KS_PUNCTUATE_WALL_CLOCK))
                return NULL;
        ks_punctuator_t **np = realloc(
                task->puncts, (size_t)(task->punct_cnt + 1) * sizeof(*np));
        if (!np)
                return NULL;
        task->puncts       = np;
        ks_punctuator_t *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->node     = ctx->node;
        p->type     = type;
        p->interval = interval_ms;
        p->fn       = fn;
        p->opaque   = opaque;
        /* As Kafka Streams: stream time aligned to 0 (fires as soon as
         * there is data), wall clock one interval from now. */
        p->next                         = type == KS_PUNCTUATE_STREAM_TIME
                                                  ? 0
                                                  : ks__task_wall_clock(task) + interval_ms;
        task->puncts[task->punct_cnt++] = p;
        return p;
}

void ks_punctuator_cancel(ks_punctuator_t *p) {
        if (p)
                p->cancelled = true;
}

ks_kv_store_t *ks__ctx_kv_store(ks_ctx_t *ctx) {
        return ctx->task->stores[ctx->node];
}

ks_window_store_t *ks__ctx_window_store(ks_ctx_t *ctx) {
        return ctx->task->stores[ctx->node];
}

ks_session_store_t *ks__ctx_session_store(ks_ctx_t *ctx) {
        return ctx->task->stores[ctx->node];
}

void *ks__ctx_store_named(ks_ctx_t *ctx, const char *name) {
        const ks_topology_t *t = ctx->task->topology;
        for (int i = 0; i < t->node_cnt; i++)
                if (ctx->task->stores[i] &&
                    !strcmp(t->nodes[i]->store->name, name))
                        return ctx->task->stores[i];
        return NULL;
}

ks_err_t ks__ctx_log_change_for(ks_ctx_t *ctx,
                                int node,
                                ks_bytes_t key,
                                ks_bytes_t value) {
        ks_task_t *task         = ctx->task;
        const ks_collector_t *c = task->collector;
        char errstr[256];
        /* The changelog partition is the task's: a restoring task reads
         * back exactly its own changes. */
        ks_err_t err =
                c->send(c->opaque, task->changelogs[node], task->partition, key,
                        value, ctx->timestamp, NULL, 0,
                        &task->changelog_acked[node], errstr, sizeof(errstr));
        if (err)
                return ks_ctx_fail(ctx, "changelog %s: %s",
                                   task->changelogs[node], errstr);
        return KS_OK;
}

ks_err_t ks__ctx_log_change(ks_ctx_t *ctx, ks_bytes_t key, ks_bytes_t value) {
        return ks__ctx_log_change_for(ctx, ctx->node, key, value);
}

void ks__ctx_count_late(ks_ctx_t *ctx) {
        ctx->task->metrics.dropped_late++;
}

void ks__ctx_count_dedup(ks_ctx_t *ctx) {
        ctx->task->metrics.dropped_dedup++;
}

void ks__ctx_count_skipped(ks_ctx_t *ctx) {
        ctx->task->metrics.dropped_skipped++;
}
