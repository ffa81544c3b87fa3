/* Tasks: buffering input partitions, choosing the next record by
 * timestamp, running it through the sub-topology, error handlers and
 * punctuation. @locality stream thread (or the test driver's caller) */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit_hook_int.h"
#include "kstreams/partitioner.h"
#include "task_priv.h"

int64_t ks__task_wall_clock(const ks_task_t *task) {
        const ks_collector_t *c = task->collector;
        return c->wall_clock ? c->wall_clock(c->opaque) : ks_now_ms();
}

static int add_source_queues(ks_task_t *task);

ks_err_t ks__conf_check_handlers(const ks_conf_t *conf,
                                 char *errstr,
                                 size_t errstr_size) {
        static const char *const names[] = {
                "default.deserialization.exception.handler",
                "default.processing.exception.handler",
                "default.production.exception.handler"};
        if (*ks__conf_str(conf, "errors.dead.letter.queue.topic.name"))
                return KS_OK;
        for (int i = 0; i < 3; i++)
                if (ks__conf_handler(conf, names[i]) ==
                    KS_HANDLER_DEAD_LETTER) {
                        snprintf(errstr, errstr_size,
                                 "%s is dead-letter but "
                                 "errors.dead.letter.queue.topic.name is not "
                                 "set",
                                 names[i]);
                        return KS_ERR_INVALID_ARG;
                }
        return KS_OK;
}

static ks_error_t *check_handlers(ks_task_t *task) {
        char errstr[256];
        task->deser_handler = ks__conf_handler(
                task->conf, "default.deserialization.exception.handler");
        task->proc_handler = ks__conf_handler(
                task->conf, "default.processing.exception.handler");
        task->prod_handler = ks__conf_handler(
                task->conf, "default.production.exception.handler");
        task->dlq_topic =
                ks__conf_str(task->conf, "errors.dead.letter.queue.topic.name");
        if (ks__conf_check_handlers(task->conf, errstr, sizeof(errstr)))
                return ks_error_new(KS_ERR_INVALID_ARG, "%s", errstr);
        return NULL;
}

ks_task_t *ks__task_new(const ks_topology_t *t,
                        int subtopology,
                        int32_t partition,
                        const ks_conf_t *conf,
                        const ks_collector_t *collector,
                        ks_state_env_t *env,
                        char *errstr,
                        size_t errstr_size) {
        ks_task_t *task = calloc(1, sizeof(*task));
        if (!task) {
                ks_state_env_close(env);
                goto err_oom;
        }
        task->env            = env;
        task->topology       = t;
        task->conf           = conf;
        task->collector      = collector;
        task->subtopology    = subtopology;
        task->partition      = partition;
        task->application_id = ks__conf_str(conf, "application.id");
        task->stream_time    = -1;
        task->max_idle_ms    = ks__conf_int(conf, "max.task.idle.ms");
        task->log_interval   = ks__conf_int(conf, "log.rate.limit.ms");
        snprintf(task->id, sizeof(task->id), "%d_%" PRId32, subtopology,
                 partition);
        task->states          = calloc((size_t)t->node_cnt, sizeof(void *));
        task->stores          = calloc((size_t)t->node_cnt, sizeof(void *));
        task->changelogs      = calloc((size_t)t->node_cnt, sizeof(char *));
        task->changelog_acked = calloc((size_t)t->node_cnt, sizeof(int64_t));
        task->changelog_keys  = calloc((size_t)t->node_cnt, sizeof(ks_buf_t));
        task->sink_topics     = calloc((size_t)t->node_cnt, sizeof(char *));
        task->punct_arena     = ks_arena_new(4096);
        task->caches = calloc((size_t)t->node_cnt, sizeof(*task->caches));
        task->cache_key_serdes =
                calloc((size_t)t->node_cnt, sizeof(ks_serde_t *));
        task->cache_value_serdes =
                calloc((size_t)t->node_cnt, sizeof(ks_serde_t *));
        task->own_budget.max =
                (size_t)ks__conf_int(conf, "statestore.cache.max.bytes");
        task->budget = &task->own_budget;
        if (!task->states || !task->sink_topics || !task->punct_arena ||
            !task->stores || !task->changelogs || !task->changelog_acked ||
            !task->changelog_keys || !task->caches || !task->cache_key_serdes ||
            !task->cache_value_serdes)
                goto err_oom;
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->subtopology != subtopology || n->kind != KS_NODE_SINK ||
                    !n->internal)
                        continue;
                char name[512];
                ks__internal_topic_name(task->application_id, n->topics[0],
                                        name, sizeof(name));
                task->sink_topics[i] = strdup(name);
                if (!task->sink_topics[i])
                        goto err_oom;
        }
        if (add_source_queues(task))
                goto err_oom;
        ks_error_t *err = check_handlers(task);
        if (!err)
                err = ks__task_open_stores(task);
        if (err) {
                snprintf(errstr, errstr_size, "%s", ks_error_message(err));
                ks_error_destroy(err);
                ks__task_destroy(task);
                return NULL;
        }
        task->ctx.task        = task;
        task->ctx.failed_node = -1;
        return task;

err_oom:
        snprintf(errstr, errstr_size, "task %d_%d: out of memory", subtopology,
                 partition);
        ks__task_destroy(task);
        return NULL;
}

void ks__task_ctx_enter(ks_task_t *task,
                        int node,
                        ks_arena_t *arena,
                        const char *topic,
                        int32_t partition,
                        int64_t offset,
                        int64_t ts,
                        const ks_header_t *headers,
                        size_t header_cnt) {
        ks_ctx_t *ctx     = &task->ctx;
        ctx->node         = node;
        ctx->arena        = arena;
        ctx->topic        = topic;
        ctx->partition    = partition;
        ctx->offset       = offset;
        ctx->timestamp    = ts;
        ctx->headers      = headers;
        ctx->header_cnt   = header_cnt;
        ctx->own_headers  = NULL;
        ctx->own_cap      = 0;
        ctx->failed_node  = -1;
        ctx->fail_code    = KS_OK;
        ctx->fail_in_sink = false;
        ctx->fail_msg[0]  = '\0';
}

ks_error_t *ks__task_init(ks_task_t *task) {
        const ks_topology_t *t = task->topology;
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->subtopology != task->subtopology ||
                    n->kind != KS_NODE_PROCESSOR || !n->def.init)
                        continue;
                ks__task_ctx_enter(task, i, task->punct_arena, NULL, -1, -1,
                                   task->stream_time, NULL, 0);
                ks_err_t err = n->def.init(&task->ctx, &task->states[i],
                                           n->def.opaque);
                ks_arena_reset(task->punct_arena);
                if (err)
                        return ks_error_new(err,
                                            "task %s: init of processor %s "
                                            "failed: %s%s%s",
                                            task->id, n->name, ks_err2str(err),
                                            task->ctx.fail_msg[0] ? ": " : "",
                                            task->ctx.fail_msg);
        }
        task->initialized = true;
        return NULL;
}

static void queue_release_all(ks_task_t *task, ks_queue_t *q) {
        const ks_collector_t *c = task->collector;
        while (q->cnt > 0) {
                if (c->release)
                        c->release(c->opaque, q->ring[q->head].handle);
                q->head = (q->head + 1) % q->cap;
                q->cnt--;
        }
}

void ks__task_drop_buffered(ks_task_t *task) {
        for (int i = 0; i < task->queue_cnt; i++) {
                ks_queue_t *q = &task->queues[i];
                queue_release_all(task, q);
                q->head       = 0;
                q->head_ready = false;
                ks_arena_reset(q->arena);
        }
}

void ks__task_destroy(ks_task_t *task) {
        if (!task)
                return;
        const ks_topology_t *t = task->topology;
        if (task->initialized) {
                for (int i = t->node_cnt - 1; i >= 0; i--) {
                        const ks_node_t *n = t->nodes[i];
                        if (n->subtopology != task->subtopology ||
                            n->kind != KS_NODE_PROCESSOR || !n->def.close)
                                continue;
                        ks__task_ctx_enter(task, i, task->punct_arena, NULL, -1,
                                           -1, task->stream_time, NULL, 0);
                        n->def.close(&task->ctx, task->states[i],
                                     n->def.opaque);
                        ks_arena_reset(task->punct_arena);
                }
        }
        ks__task_free_commit_hooks(task);
        ks__task_drop_caches(task);
        for (int i = 0; i < task->queue_cnt; i++) {
                ks_queue_t *q = &task->queues[i];
                queue_release_all(task, q);
                free(q->ring);
                free(q->topic);
                ks_arena_destroy(q->arena);
        }
        free(task->queues);
        for (int i = 0; i < task->punct_cnt; i++)
                free(task->puncts[i]);
        free(task->puncts);
        if (task->sink_topics)
                for (int i = 0; i < t->node_cnt; i++)
                        free(task->sink_topics[i]);
        ks__task_close_stores(task);
        ks__task_free_store_handles(task);
        for (int i = 0; task->changelogs && i < t->node_cnt; i++)
                free(task->changelogs[i]);
        free(task->stores);
        free(task->changelogs);
        free(task->changelog_acked);
        for (int i = 0; task->changelog_keys && i < t->node_cnt; i++)
                ks_buf_free(&task->changelog_keys[i]);
        free(task->changelog_keys);
        free(task->committed_positions);
        free(task->sink_topics);
        free(task->states);
        free(task->caches);
        free(task->cache_key_serdes);
        free(task->cache_value_serdes);
        ks_arena_destroy(task->punct_arena);
        ks_buf_free(&task->key_buf);
        ks_buf_free(&task->value_buf);
        free(task);
}

static int source_for(const ks_task_t *task, const char *topic) {
        const ks_topology_t *t = task->topology;
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->subtopology == task->subtopology &&
                    n->kind == KS_NODE_SOURCE &&
                    ks__source_reads(n, task->application_id, topic))
                        return i;
        }
        return -1;
}

bool ks__task_reads(const ks_task_t *task, const char *topic) {
        return source_for(task, topic) >= 0;
}

static ks_queue_t *queue_add(ks_task_t *task, const char *topic, int src) {
        ks_queue_t *nq = realloc(task->queues,
                                 (size_t)(task->queue_cnt + 1) * sizeof(*nq));
        if (!nq)
                return NULL;
        task->queues  = nq;
        ks_queue_t *q = &nq[task->queue_cnt];
        memset(q, 0, sizeof(*q));
        q->topic          = strdup(topic);
        q->arena          = ks_arena_new(16384);
        q->source_node    = src;
        q->partition_time = -1;
        q->consumed       = -1;
        q->committed      = -1;
        q->committed_time = -1;
        if (!q->topic || !q->arena) {
                free(q->topic);
                ks_arena_destroy(q->arena);
                return NULL;
        }
        task->queue_cnt++;
        return q;
}

static ks_queue_t *queue_for(ks_task_t *task, const char *topic) {
        for (int i = 0; i < task->queue_cnt; i++)
                if (!strcmp(task->queues[i].topic, topic))
                        return &task->queues[i];
        int src = source_for(task, topic);
        return src < 0 ? NULL : queue_add(task, topic, src);
}

/* A queue for every input partition the task knows of before a record
 * arrives: max.task.idle.ms must see an input that is still empty.
 * Pattern sources get theirs as records come (the topics they match are
 * not known here). @returns 0, or -1 out of memory. */
static int add_source_queues(ks_task_t *task) {
        const ks_topology_t *t = task->topology;
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->subtopology != task->subtopology ||
                    n->kind != KS_NODE_SOURCE || n->has_regex)
                        continue;
                for (int k = 0; k < n->topic_cnt; k++) {
                        char name[512];
                        if (n->internal)
                                ks__internal_topic_name(task->application_id,
                                                        n->topics[k], name,
                                                        sizeof(name));
                        else
                                snprintf(name, sizeof(name), "%s",
                                         n->topics[k]);
                        if (!queue_for(task, name))
                                return -1;
                }
        }
        return 0;
}

ks_err_t ks__task_enqueue(ks_task_t *task, const ks_raw_record_t *rec) {
        ks_queue_t *q = queue_for(task, rec->topic);
        if (!q)
                return source_for(task, rec->topic) < 0 ? KS_ERR_NOT_FOUND
                                                        : KS_ERR_NOMEM;
        if (q->cnt == q->cap) {
                size_t cap            = q->cap ? q->cap * 2 : 64;
                ks_raw_record_t *ring = malloc(cap * sizeof(*ring));
                if (!ring)
                        return KS_ERR_NOMEM;
                for (size_t i = 0; i < q->cnt; i++)
                        ring[i] = q->ring[(q->head + i) % q->cap];
                free(q->ring);
                q->ring = ring;
                q->head = 0;
                q->cap  = cap;
        }
        q->ring[(q->head + q->cnt) % q->cap] = *rec;
        q->cnt++;
        task->metrics.records_consumed++;
        return KS_OK;
}

size_t ks__task_buffered(const ks_task_t *task) {
        size_t n = 0;
        for (int i = 0; i < task->queue_cnt; i++)
                n += task->queues[i].cnt;
        return n;
}

size_t ks__task_buffered_topic(const ks_task_t *task, const char *topic) {
        for (int i = 0; i < task->queue_cnt; i++)
                if (!strcmp(task->queues[i].topic, topic))
                        return task->queues[i].cnt;
        return 0;
}

static void queue_pop(ks_task_t *task, ks_queue_t *q) {
        const ks_collector_t *c = task->collector;
        q->consumed             = q->ring[q->head].offset + 1;
        if (c->release)
                c->release(c->opaque, q->ring[q->head].handle);
        q->head = (q->head + 1) % q->cap;
        q->cnt--;
        q->head_ready = false;
        ks_arena_reset(q->arena);
}

/* The dead-letter record: the original bytes, the original headers, and
 * headers naming the error and where the record came from (the names of
 * Kafka Streams' KIP-1034 dead-letter queue). */
static ks_err_t dead_letter(ks_task_t *task,
                            const ks_raw_record_t *rec,
                            ks_err_t code,
                            const char *msg,
                            const char *processor) {
        ks_header_t hdrs[64];
        size_t n = 0;
        char part[16], off[24];
        for (size_t i = 0; i < rec->header_cnt && n < 58; i++)
                hdrs[n++] = rec->headers[i];
        snprintf(part, sizeof(part), "%" PRId32, rec->partition);
        snprintf(off, sizeof(off), "%" PRId64, rec->offset);
        const char *code_name = ks_err2str(code);
        size_t code_len       = strcspn(code_name, ":");
#define HDR(nm, s, l)                                                          \
        hdrs[n++] = (ks_header_t) {                                            \
                nm, {                                                          \
                        s, l                                                   \
                }                                                              \
        }
        HDR("__streams.errors.exception", code_name, code_len);
        HDR("__streams.errors.message", msg, strlen(msg));
        HDR("__streams.errors.topic", rec->topic, strlen(rec->topic));
        HDR("__streams.errors.partition", part, strlen(part));
        HDR("__streams.errors.offset", off, strlen(off));
        HDR("__streams.errors.processor", processor, strlen(processor));
#undef HDR
        const ks_collector_t *c = task->collector;
        int32_t cnt = c->partition_count(c->opaque, task->dlq_topic);
        int32_t p =
                cnt > 0 && rec->key.data
                        ? ks_partition_for_key(rec->key.data, rec->key.len, cnt)
                        : -1;
        char errstr[256];
        ks_err_t err =
                c->send(c->opaque, task->dlq_topic, p, rec->key, rec->value,
                        rec->timestamp, hdrs, n, NULL, errstr, sizeof(errstr));
        if (err)
                ks__log(KS_LOG_ERROR,
                        "task %s: could not send a record to the dead-letter "
                        "topic %s: %s",
                        task->id, task->dlq_topic, errstr);
        else
                task->metrics.dead_lettered++;
        return err;
}

/* Applies a handler to a record that failed. @returns NULL to go on, or the
 * error that fails the task. */
static ks_error_t *handle_failure(ks_task_t *task,
                                  ks_handler_t handler,
                                  const char *what,
                                  uint64_t *dropped,
                                  ks_rate_limit_t *rl,
                                  const ks_raw_record_t *rec,
                                  ks_err_t code,
                                  const char *msg,
                                  const char *processor) {
        if (handler == KS_HANDLER_FAIL)
                return ks_error_new(code,
                                    "task %s: %s error at %s[%" PRId32
                                    "]@%" PRId64 " in %s: %s (handler: fail)",
                                    task->id, what, rec->topic, rec->partition,
                                    rec->offset, processor, msg);
        (*dropped)++;
        if (handler == KS_HANDLER_DEAD_LETTER &&
            dead_letter(task, rec, code, msg, processor))
                return ks_error_new(KS_ERR_KAFKA,
                                    "task %s: %s error at %s[%" PRId32
                                    "]@%" PRId64
                                    " and the dead-letter topic %s refused "
                                    "the record",
                                    task->id, what, rec->topic, rec->partition,
                                    rec->offset, task->dlq_topic);
        ks__log_limited(rl, task->log_interval, KS_LOG_WARNING,
                        "task %s: %s error at %s[%" PRId32 "]@%" PRId64
                        " in %s: %s; record %s",
                        task->id, what, rec->topic, rec->partition, rec->offset,
                        processor, msg,
                        handler == KS_HANDLER_DEAD_LETTER
                                ? "sent to the dead-letter topic"
                                : "skipped");
        return NULL;
}

/* Deserializes the head record and extracts its timestamp. @returns 1 when
 * the head is ready, 0 when the queue is empty, -1 with *errp on failure. */
static int prepare_head(ks_task_t *task, ks_queue_t *q, ks_error_t **errp) {
        while (q->cnt > 0 && !q->head_ready) {
                const ks_raw_record_t *rec = &q->ring[q->head];
                const ks_node_t *src = task->topology->nodes[q->source_node];
                char errstr[256]     = "";
                ks_err_t err         = ks_serde_deserialize(
                                src->key_serde, q->arena, rec->key.data, rec->key.len,
                                &q->head_key, errstr, sizeof(errstr));
                if (!err)
                        err = ks_serde_deserialize(
                                src->value_serde, q->arena, rec->value.data,
                                rec->value.len, &q->head_value, errstr,
                                sizeof(errstr));
                if (!err) {
                        ks_consumed_t c = {rec->topic,  rec->partition,
                                           rec->offset, rec->timestamp,
                                           rec->key,    rec->value};
                        q->head_ts      = ks__timestamp_extract(
                                     src->ts_extractor, &c, q->head_key,
                                     q->head_value, q->partition_time);
                        if (q->head_ts < 0 || q->head_ts > KS_TIMESTAMP_MAX) {
                                err = KS_ERR_TIMESTAMP;
                                snprintf(errstr, sizeof(errstr),
                                         "no valid timestamp (extractor "
                                         "returned %" PRId64 "%s)",
                                         q->head_ts,
                                         q->head_ts < 0 ? ""
                                                        : ", after year 9999");
                        }
                }
                if (!err) {
                        q->head_ready = true;
                        return 1;
                }
                ks_raw_record_t copy = *rec;
                *errp                = handle_failure(
                                       task, task->deser_handler, "deserialization",
                                       &task->metrics.dropped_deserialization, &task->rl_deser,
                                       &copy, err, errstr, src->name);
                queue_pop(task, q);
                if (*errp)
                        return -1;
        }
        return q->head_ready ? 1 : 0;
}

static ks_error_t *punctuate(ks_task_t *task,
                             ks_punctuation_type_t type,
                             int64_t now) {
        for (int i = 0; i < task->punct_cnt; i++) {
                ks_punctuator_t *p = task->puncts[i];
                if (p->cancelled || p->type != type || p->next > now)
                        continue;
                ks__task_ctx_enter(task, p->node, task->punct_arena, NULL, -1,
                                   -1, now, NULL, 0);
                ks_err_t err = p->fn(&task->ctx, now, p->opaque);
                ks_arena_reset(task->punct_arena);
                task->metrics.punctuations++;
                /* Kafka Streams' PunctuationSchedule.next(): skip missed
                 * intervals, stay aligned. */
                int64_t next = p->next + p->interval;
                if (now >= next)
                        next = now + p->interval -
                               (now - p->next) % p->interval;
                p->next = next;
                if (err && task->proc_handler == KS_HANDLER_FAIL)
                        return ks_error_new(
                                err,
                                "task %s: punctuator of %s "
                                "failed: %s%s%s",
                                task->id, task->topology->nodes[p->node]->name,
                                ks_err2str(err),
                                task->ctx.fail_msg[0] ? ": " : "",
                                task->ctx.fail_msg);
                if (err) {
                        task->metrics.dropped_processing++;
                        ks__log_limited(&task->rl_proc, task->log_interval,
                                        KS_LOG_WARNING,
                                        "task %s: punctuator of %s failed: "
                                        "%s",
                                        task->id,
                                        task->topology->nodes[p->node]->name,
                                        ks_err2str(err));
                }
        }
        return NULL;
}

ks_error_t *ks__task_punctuate_wall(ks_task_t *task, int64_t now_ms) {
        return punctuate(task, KS_PUNCTUATE_WALL_CLOCK, now_ms);
}

/*
 * max.task.idle.ms, as Kafka Streams' PartitionGroup.readyToProcess()
 * (KIP-695): may the task process its buffered records while some input
 * partition is empty? Not while that partition's fetched lag is unknown or
 * > 0 (records are on their way: processing now would take them out of
 * timestamp order, and a join would drop them as late); once it is caught
 * up (lag 0), after it stayed so for max.task.idle.ms of wall-clock time
 * since it was first seen so. Lag unknown or > 0 forgets that time. Runs
 * also when nothing is buffered, so that an input caught up long ago does
 * not hold back the first record that arrives elsewhere. Unlike Kafka
 * Streams' loop, which stops at the first partition that is not ready, it
 * looks at every empty partition, so that when each one starts idling does
 * not depend on the order of the task's inputs.
 */
static bool ready_to_process(ks_task_t *task, bool any_buffered) {
        if (task->max_idle_ms < 0 || task->queue_cnt < 2)
                return true;
        const ks_collector_t *c = task->collector;
        bool enforced = false, ready = true;
        int64_t now = INT64_MIN;
        for (int i = 0; i < task->queue_cnt; i++) {
                ks_queue_t *q = &task->queues[i];
                if (q->cnt > 0) {
                        q->idling = false;
                        continue;
                }
                int64_t lag = c->fetched_lag
                                      ? c->fetched_lag(c->opaque, q->topic,
                                                       task->partition)
                                      : 0;
                if (lag != 0) {
                        q->idling = false;
                        ready     = false;
                        continue;
                }
                if (task->max_idle_ms > 0) {
                        if (now == INT64_MIN)
                                now = ks__task_wall_clock(task);
                        if (!q->idling) {
                                q->idling        = true;
                                q->idle_deadline = now + task->max_idle_ms;
                        }
                        if (now < q->idle_deadline) {
                                ready = false;
                                continue;
                        }
                }
                enforced = true;
        }
        if (ready && enforced && any_buffered)
                task->metrics.enforced_processing++;
        return ready;
}

int ks__task_process_one(ks_task_t *task, ks_error_t **errp) {
        int best_idx = -1;
        *errp        = NULL;
        /* As Kafka Streams' PartitionGroup: the head with the smallest
         * timestamp goes next. */
        for (int i = 0; i < task->queue_cnt; i++) {
                ks_queue_t *q = &task->queues[i];
                int r         = prepare_head(task, q, errp);
                if (r < 0)
                        return -1;
                if (r > 0 && (best_idx < 0 ||
                              q->head_ts < task->queues[best_idx].head_ts))
                        best_idx = i;
        }
        if (!ready_to_process(task, best_idx >= 0) || best_idx < 0)
                return 0;
        /* Processing may enqueue into this very task (a sink writing to a
         * topic the task reads, in the test driver), which can move the
         * queues: hold an index, not a pointer, across it. */
        ks_queue_t *best    = &task->queues[best_idx];
        ks_raw_record_t rec = best->ring[best->head];
        int64_t ts          = best->head_ts;
        int source_node     = best->source_node;
        if (ts > task->stream_time)
                task->stream_time = ts;
        if (ts > best->partition_time)
                best->partition_time = ts;
        ks__task_ctx_enter(task, source_node, best->arena, rec.topic,
                           rec.partition, rec.offset, ts, rec.headers,
                           rec.header_cnt);
        ks_err_t err =
                ks_ctx_forward(&task->ctx, best->head_key, best->head_value);
        task->metrics.records_processed++;
        if (err) {
                ks_ctx_t *ctx = &task->ctx;
                const char *node =
                        ctx->failed_node >= 0
                                ? task->topology->nodes[ctx->failed_node]->name
                                : task->topology->nodes[source_node]->name;
                char msg[300];
                snprintf(msg, sizeof(msg), "%s%s%s", ks_err2str(err),
                         ctx->fail_msg[0] ? ": " : "", ctx->fail_msg);
                bool prod = ctx->fail_in_sink;
                *errp     = handle_failure(
                            task, prod ? task->prod_handler : task->proc_handler,
                        prod ? "production" : "processing",
                        prod ? &task->metrics.dropped_production
                                 : &task->metrics.dropped_processing,
                        prod ? &task->rl_prod : &task->rl_proc, &rec, err, msg,
                            node);
        }
        queue_pop(task, &task->queues[best_idx]);
        if (*errp)
                return -1;
        *errp = punctuate(task, KS_PUNCTUATE_STREAM_TIME, task->stream_time);
        return *errp ? -1 : 1;
}

ks_err_t ks__task_init_partition_time(ks_task_t *task,
                                      const char *topic,
                                      int64_t partition_time) {
        ks_queue_t *q = queue_for(task, topic);
        if (!q)
                return source_for(task, topic) < 0 ? KS_ERR_NOT_FOUND
                                                   : KS_ERR_NOMEM;
        if (partition_time > q->partition_time)
                q->partition_time = partition_time;
        q->committed_time = q->partition_time;
        if (partition_time > task->stream_time)
                task->stream_time = partition_time;
        return KS_OK;
}

int ks__task_offsets(const ks_task_t *task,
                     ks_task_offset_t *out,
                     int max,
                     bool changed_only) {
        int n = 0;
        for (int i = 0; i < task->queue_cnt; i++) {
                const ks_queue_t *q = &task->queues[i];
                if (q->consumed < 0 ||
                    (changed_only && q->consumed == q->committed &&
                     q->partition_time == q->committed_time))
                        continue;
                if (n < max)
                        out[n] = (ks_task_offset_t){
                                task, q->topic, task->partition, q->consumed,
                                q->partition_time};
                n++;
        }
        return n;
}

void ks__task_offsets_committed(ks_task_t *task) {
        for (int i = 0; i < task->queue_cnt; i++) {
                ks_queue_t *q = &task->queues[i];
                if (q->consumed < 0)
                        continue;
                q->committed      = q->consumed;
                q->committed_time = q->partition_time;
        }
}

void ks__changelog_topic_name(const char *application_id,
                              const char *store,
                              char *out,
                              size_t out_size) {
        snprintf(out, out_size, "%s-%s-changelog", application_id, store);
}

const ks_task_metrics_t *ks__task_metrics(const ks_task_t *task) {
        return &task->metrics;
}

const char *ks__task_id(const ks_task_t *task) {
        return task->id;
}

int64_t ks__task_stream_time(const ks_task_t *task) {
        return task->stream_time;
}

int ks__task_subtopology(const ks_task_t *task) {
        return task->subtopology;
}

int32_t ks__task_partition(const ks_task_t *task) {
        return task->partition;
}
