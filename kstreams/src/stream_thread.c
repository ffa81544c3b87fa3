/* A stream thread: one consumer (a member of the application's group) and
 * one producer; it creates tasks for the partitions it is assigned, feeds
 * them, and commits at-least-once. @locality stream thread */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commit_hook_int.h" /* pg-sink hook */
#include "conf_int.h"
#include "log_int.h"
#include "kstreams/store.h"
#include "record_cache.h"
#include "streams_int.h"

/* A consumed record that has headers travels with them in one block; the
 * handle's low bit tells a block from a bare rd_kafka_message_t. */
typedef struct msg_block_s {
        rd_kafka_message_t *msg;
        ks_header_t headers[];
} msg_block_t;

typedef struct assigned_s {
        char *topic;
        int32_t partition;
        int64_t next_offset; /* to commit; -1: nothing processed yet */
        int64_t committed;
        int64_t purged;   /* repartition: records deleted up to here */
        bool repartition; /* one of the application's repartition topics */
        bool paused;
        ks_task_t *task;
} assigned_t;

struct ks_stream_thread_s {
        ks_streams_t *s;
        rd_kafka_t *restorer;     /* manual assignment, no group: restoration */
        char app_state_dir[1024]; /* <state.dir>/<application.id> */
        int64_t last_cleanup;
        int index;
        pthread_t tid;
        bool started, joined;
        rd_kafka_t *consumer, *producer;
        rd_kafka_queue_t *queue;
        ks_task_t **tasks;
        int task_cnt;
        assigned_t *assigned;
        int assigned_cnt;
        atomic_bool has_assignment;
        ks_collector_t collector;
        rd_kafka_message_t **batch;
        int batch_size;
        int64_t commit_interval, last_commit;
        int64_t poll_ms;
        size_t max_buffered;
        ks_handler_t prod_handler;
        const char *dlq_topic;
        ks_error_t *fatal; /* a delivery failed under the "fail" handler */
        ks_rate_limit_t rl_consume, rl_delivery, rl_commit;
        ks_streams_metrics_t own;    /* commits, rebalances, ... */
        ks_streams_metrics_t closed; /* of tasks already closed */
        uint64_t delivery_failed;
        pthread_mutex_t mlock;
        ks_streams_metrics_t published;
        /* Repartition records already committed are deleted
         * (DeleteRecords) at most every purge_interval ms; the results
         * come back on purge_q. */
        int64_t purge_interval, last_purge;
        rd_kafka_queue_t *purge_q;
        /* The record caches of all its tasks share this thread's part of
         * statestore.cache.max.bytes, as Kafka Streams' ThreadCache. */
        ks_cache_budget_t cache_budget;
};

static assigned_t *find_assigned(ks_stream_thread_t *t,
                                 const char *topic,
                                 int32_t partition) {
        for (int i = 0; i < t->assigned_cnt; i++)
                if (t->assigned[i].partition == partition &&
                    !strcmp(t->assigned[i].topic, topic))
                        return &t->assigned[i];
        return NULL;
}

/* ---- the collector: the producer side of the tasks ------------------------
 */

static ks_err_t collector_send(void *opaque,
                               const char *topic,
                               int32_t partition,
                               ks_bytes_t key,
                               ks_bytes_t value,
                               int64_t ts,
                               const ks_header_t *headers,
                               size_t header_cnt,
                               int64_t *acked,
                               char *errstr,
                               size_t errstr_size) {
        ks_stream_thread_t *t = opaque;
        for (;;) {
                rd_kafka_headers_t *h = NULL;
                if (header_cnt) {
                        h = rd_kafka_headers_new(header_cnt);
                        for (size_t i = 0; i < header_cnt; i++)
                                rd_kafka_header_add(
                                        h, headers[i].name, -1,
                                        headers[i].value.data,
                                        (ssize_t)headers[i].value.len);
                }
                rd_kafka_resp_err_t err = rd_kafka_producev(
                        t->producer, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_PARTITION(partition < 0
                                                     ? RD_KAFKA_PARTITION_UA
                                                     : partition),
                        RD_KAFKA_V_KEY(key.data, key.len),
                        RD_KAFKA_V_VALUE((void *)value.data, value.len),
                        RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(h),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_OPAQUE(acked), RD_KAFKA_V_END);
                if (!err)
                        return KS_OK;
                /* Not taken on failure; librdkafka's destroy refuses NULL. */
                if (h)
                        rd_kafka_headers_destroy(h);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        snprintf(errstr, errstr_size, "produce to %s: %s",
                                 topic, rd_kafka_err2str(err));
                        return KS_ERR_KAFKA;
                }
                /* The producer queue is full: let deliveries drain. */
                rd_kafka_poll(t->producer, 100);
        }
}

static int32_t collector_partitions(void *opaque, const char *topic) {
        (void)opaque, (void)topic;
        /* Unknown: the producer's murmur2_random partitioner places keys
         * exactly as ks_partition_for_key() would. */
        return -1;
}

/* Frees a consumed record's handle; @p done moves the partition's offset
 * to commit past it. */
static void release_handle(ks_stream_thread_t *t, void *handle, bool done) {
        rd_kafka_message_t *msg = handle;
        msg_block_t *block      = NULL;
        if ((uintptr_t)handle & 1) {
                block = (msg_block_t *)((uintptr_t)handle & ~(uintptr_t)1);
                msg   = block->msg;
        }
        /* Records leave a partition's queue in offset order, processed or
         * handled, so the next offset to commit follows the last release. */
        assigned_t *a = done ? find_assigned(t, rd_kafka_topic_name(msg->rkt),
                                             msg->partition)
                             : NULL;
        if (a)
                a->next_offset = msg->offset + 1;
        rd_kafka_message_destroy(msg);
        free(block);
}

static void collector_release(void *opaque, void *handle) {
        release_handle(opaque, handle, true);
}

static void dr_msg_cb(rd_kafka_t *rk,
                      const rd_kafka_message_t *m,
                      void *opaque) {
        ks_stream_thread_t *t = opaque;
        (void)rk;
        /* A changelog record: its store's checkpoint may move past it. The
         * task outlives its in-flight records (tasks close after a flush or
         * a purge). */
        int64_t *acked = m->_private;
        if (!m->err) {
                if (acked && m->offset > *acked)
                        *acked = m->offset;
                return;
        }
        const char *topic = rd_kafka_topic_name(m->rkt);
        t->delivery_failed++;
        if (t->prod_handler == KS_HANDLER_FAIL) {
                if (!t->fatal)
                        t->fatal = ks_error_new(
                                KS_ERR_KAFKA,
                                "delivery to %s failed: %s (handler: fail)",
                                topic, rd_kafka_err2str(m->err));
                return;
        }
        ks__log_limited(&t->rl_delivery,
                        ks__conf_int(t->s->conf, "log.rate.limit.ms"),
                        KS_LOG_WARNING, "delivery to %s failed: %s; record %s",
                        topic, rd_kafka_err2str(m->err),
                        t->prod_handler == KS_HANDLER_DEAD_LETTER
                                ? "sent to the dead-letter topic"
                                : "dropped");
        if (t->prod_handler == KS_HANDLER_DEAD_LETTER &&
            strcmp(topic, t->dlq_topic)) {
                rd_kafka_headers_t *h = rd_kafka_headers_new(2);
                const char *msg       = rd_kafka_err2str(m->err);
                rd_kafka_header_add(h, "__streams.errors.message", -1, msg, -1);
                rd_kafka_header_add(h, "__streams.errors.topic", -1, topic, -1);
                if (rd_kafka_producev(t->producer,
                                      RD_KAFKA_V_TOPIC(t->dlq_topic),
                                      RD_KAFKA_V_KEY(m->key, m->key_len),
                                      RD_KAFKA_V_VALUE(m->payload, m->len),
                                      RD_KAFKA_V_HEADERS(h),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END))
                        rd_kafka_headers_destroy(h);
                else
                        t->own.dead_lettered++;
        }
}

/* ---- commit -----------------------------------------------------------------
 */

/* Deletes the records of repartition topics up to their committed
 * offsets, as Kafka Streams does: the topics have no time retention
 * (admin.c says why), and every record in them has been processed once
 * committed. Asynchronous: failures are only logged (the next purge
 * covers them). */
static void purge_repartition(ks_stream_thread_t *t) {
        int64_t now = ks_now_ms();
        if (now - t->last_purge < t->purge_interval)
                return;
        t->last_purge                      = now;
        rd_kafka_topic_partition_list_t *l = NULL;
        for (int i = 0; i < t->assigned_cnt; i++) {
                assigned_t *a = &t->assigned[i];
                if (!a->repartition || a->committed <= a->purged)
                        continue;
                if (!l)
                        l = rd_kafka_topic_partition_list_new(4);
                rd_kafka_topic_partition_list_add(l, a->topic, a->partition)
                        ->offset = a->committed;
                a->purged        = a->committed;
        }
        if (!l)
                return;
        rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
        rd_kafka_DeleteRecords(t->producer, &del, 1, NULL, t->purge_q);
        rd_kafka_DeleteRecords_destroy(del);
        rd_kafka_topic_partition_list_destroy(l);
}

/* Collects the purges' results; a failed one is logged. */
static void purge_results(ks_stream_thread_t *t) {
        rd_kafka_event_t *ev;
        while ((ev = rd_kafka_queue_poll(t->purge_q, 0))) {
                const rd_kafka_DeleteRecords_result_t *res =
                        rd_kafka_event_DeleteRecords_result(ev);
                const rd_kafka_topic_partition_list_t *l =
                        res ? rd_kafka_DeleteRecords_result_offsets(res) : NULL;
                const char *why = rd_kafka_event_error(ev)
                                          ? rd_kafka_event_error_string(ev)
                                          : NULL;
                for (int i = 0; !why && l && i < l->cnt; i++)
                        if (l->elems[i].err)
                                why = rd_kafka_err2str(l->elems[i].err);
                if (why)
                        ks__log_limited(&t->rl_commit, 10000, KS_LOG_WARNING,
                                        "thread %d: deleting committed "
                                        "repartition records failed: %s",
                                        t->index, why);
                rd_kafka_event_destroy(ev);
        }
}

/* At-least-once: wait until everything produced for the processed records
 * is acknowledged, then commit their offsets. @returns false if that could
 * not be done now (it is tried again at the next interval). */
static bool commit(ks_stream_thread_t *t) {
        int64_t t0     = ks_now_ms();
        t->last_commit = t0;
        /* The cached changes go out first: the flush below then waits for
         * their changelog records too, before any store commits. */
        for (int i = 0; i < t->task_cnt && !t->fatal; i++)
                t->fatal = ks__task_flush_cache(t->tasks[i]);
        if (t->fatal)
                return false;
        /* pg-sink hook: external sinks commit their batches before any
         * offset; a retriable failure (PostgreSQL down) postpones the
         * commit, so the offsets do not advance. */
        for (int i = 0; i < t->task_cnt; i++) {
                ks_error_t *e = ks__task_run_commit_hooks(t->tasks[i]);
                if (e && !ks_error_is_retriable(e))
                        t->fatal = e;
                if (e && !t->fatal) {
                        ks__log_limited(&t->rl_commit, 10000, KS_LOG_WARNING,
                                        "thread %d: commit postponed: %s",
                                        t->index, ks_error_message(e));
                        ks_error_destroy(e);
                        t->own.commit_failures++;
                }
                if (e)
                        return false;
        }
        rd_kafka_resp_err_t err = rd_kafka_flush(t->producer, 30000);
        if (err) {
                ks__log_limited(&t->rl_commit, 10000, KS_LOG_WARNING,
                                "thread %d: commit postponed: %d records "
                                "not yet acknowledged (%s)",
                                t->index, rd_kafka_outq_len(t->producer),
                                rd_kafka_err2str(err));
                t->own.commit_failures++;
                return false;
        }
        if (t->fatal)
                return false;
        rd_kafka_topic_partition_list_t *offsets =
                rd_kafka_topic_partition_list_new(t->assigned_cnt);
        for (int i = 0; i < t->assigned_cnt; i++) {
                assigned_t *a = &t->assigned[i];
                if (a->next_offset < 0 || a->next_offset == a->committed)
                        continue;
                rd_kafka_topic_partition_list_add(offsets, a->topic,
                                                  a->partition)
                        ->offset = a->next_offset;
        }
        bool ok = true;
        if (offsets->cnt > 0) {
                err = rd_kafka_commit(t->consumer, offsets, 0);
                if (err) {
                        ok = false;
                        t->own.commit_failures++;
                        ks__log_limited(&t->rl_commit, 10000, KS_LOG_WARNING,
                                        "thread %d: offset commit failed: %s",
                                        t->index, rd_kafka_err2str(err));
                } else {
                        for (int i = 0; i < offsets->cnt; i++) {
                                assigned_t *a = find_assigned(
                                        t, offsets->elems[i].topic,
                                        offsets->elems[i].partition);
                                if (a)
                                        a->committed = offsets->elems[i].offset;
                        }
                }
        }
        rd_kafka_topic_partition_list_destroy(offsets);
        if (ok)
                purge_repartition(t);
        /* Kafka first, LMDB second: a crash in between leaves a store
         * behind its changelog, never ahead, and restoration replays only
         * the tail. The state is committed even if the offset commit
         * failed: it matches the acknowledged changelog either way. */
        for (int i = 0; i < t->task_cnt; i++) {
                ks_error_t *e = ks__task_commit_state(t->tasks[i]);
                if (e) {
                        ok = false;
                        if (!t->fatal)
                                t->fatal = ks_error_set_fatal(e, true);
                        else
                                ks_error_destroy(e);
                }
        }
        if (ok) {
                uint64_t ms = (uint64_t)(ks_now_ms() - t0);
                t->own.commits++;
                t->own.commit_latency_ms_total += ms;
                if (ms > t->own.commit_latency_ms_max)
                        t->own.commit_latency_ms_max = ms;
        }
        return ok;
}

/* ---- tasks and rebalances --------------------------------------------------
 */

static bool set(rd_kafka_conf_t *c,
                const char *name,
                const char *value,
                char *errstr,
                size_t errstr_size);

static bool sub_has_stores(const ks_topology_t *topo, int sub) {
        for (int i = 0; i < topo->node_cnt; i++)
                if (topo->nodes[i]->subtopology == sub && topo->nodes[i]->store)
                        return true;
        return false;
}

/* The task's LMDB environment in <state.dir>/<application.id>/<task>/. */
static ks_error_t *open_env(ks_stream_thread_t *t,
                            int sub,
                            int32_t partition,
                            ks_state_env_t **envp) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s/%d_%d",
                 ks__conf_str(t->s->conf, "state.dir"), t->s->application_id,
                 sub, (int)partition);
        if (ks__mkdirs(dir))
                return ks_error_new(KS_ERR_IO,
                                    "cannot create state directory %s: %s", dir,
                                    strerror(errno));
        /* The directory may still be held for a moment by the instance it
         * comes from, or by a cleanup: retry a locked one for 10 s. */
        ks_error_t *err = NULL;
        for (int attempt = 0; attempt < 100; attempt++) {
                ks_error_destroy(err);
                err = ks_state_env_open(
                        dir,
                        (size_t)ks__conf_int(t->s->conf, "statestore.map.size"),
                        envp);
                if (!err || ks_error_code(err) != KS_ERR_STATE ||
                    atomic_load(&t->s->stop))
                        break;
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return err;
}

static rd_kafka_t *restorer(ks_stream_thread_t *t, ks_error_t **errp) {
        char errstr[512], group[300];
        if (t->restorer)
                return t->restorer;
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        ks_error_t *err =
                ks__rdkafka_conf(t->s->conf, KS_CONF_SIDE_CONSUMER, c);
        /* No group membership and no commits: it only reads changelogs
         * from the checkpoints it is given. */
        snprintf(group, sizeof(group), "%s-restore", t->s->application_id);
        bool ok =
                !err && set(c, "group.id", group, errstr, sizeof(errstr)) &&
                set(c, "enable.auto.commit", "false", errstr, sizeof(errstr)) &&
                set(c, "isolation.level", "read_committed", errstr,
                    sizeof(errstr)) &&
                set(c, "queued.min.messages", "100000", errstr, sizeof(errstr));
        if (ok)
                t->restorer = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr,
                                           sizeof(errstr));
        if (!t->restorer) {
                if (!ok || err)
                        rd_kafka_conf_destroy(c);
                *errp = err ? err
                            : ks_error_new(KS_ERR_KAFKA, "restore consumer: %s",
                                           errstr);
        }
        return t->restorer;
}

/* Replays a store's changelog partition from its checkpoint to the end, in
 * large LMDB transactions, before the task processes anything. */
static ks_error_t *restore_store(ks_stream_thread_t *t,
                                 ks_task_t *task,
                                 int idx) {
        ks_task_store_info_t info;
        ks__task_store_info(task, idx, &info);
        int32_t p       = ks__task_partition(task);
        ks_error_t *err = NULL;
        rd_kafka_t *rk  = restorer(t, &err);
        if (!rk)
                return err;
        int64_t lo, hi;
        rd_kafka_resp_err_t rerr;
        /* Leadership may be moving (a new topic, a broker restart): retry
         * what can succeed later, for up to a minute. */
        for (int attempt = 0;; attempt++) {
                rerr = rd_kafka_query_watermark_offsets(rk, info.changelog, p,
                                                        &lo, &hi, 10000);
                bool retriable =
                        rerr == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                        rerr == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                        rerr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        rerr == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                        rerr == RD_KAFKA_RESP_ERR__TRANSPORT;
                if (!rerr || !retriable || attempt >= 60 ||
                    atomic_load(&t->s->stop))
                        break;
                struct timespec ts = {1, 0};
                nanosleep(&ts, NULL);
        }
        if (rerr)
                return ks_error_new(KS_ERR_KAFKA,
                                    "restoring %s: watermarks of %s[%d]: %s",
                                    info.name, info.changelog, (int)p,
                                    rd_kafka_err2str(rerr));
        int64_t from = info.checkpoint >= lo ? info.checkpoint : lo;
        if (from >= hi)
                return NULL; /* up to date */
        int64_t t0 = ks_now_ms(), last_log = t0, applied = 0;
        int64_t batch = ks__conf_int(t->s->conf, "restore.batch.records");
        ks__log(KS_LOG_INFO,
                "task %s: restoring store %s from %s[%d], offsets %lld..%lld "
                "(checkpoint %lld)",
                ks__task_id(task), info.name, info.changelog, (int)p,
                (long long)from, (long long)hi, (long long)info.checkpoint);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, info.changelog, p)->offset = from;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        int64_t next = from, since_commit = 0;
        while (!err && next < hi) {
                if (atomic_load(&t->s->stop)) {
                        err = ks_error_new(KS_ERR_STATE,
                                           "restoring %s: stopped", info.name);
                        break;
                }
                /* Ask for no more than what is left: the batch call waits
                 * until it has that many or the timeout passes. */
                size_t want = (size_t)t->batch_size;
                if ((int64_t)want > hi - next)
                        want = (size_t)(hi - next);
                ssize_t n =
                        rd_kafka_consume_batch_queue(q, 1000, t->batch, want);
                for (ssize_t i = 0; i < n; i++) {
                        rd_kafka_message_t *m = t->batch[i];
                        if (!err && m->err &&
                            m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                err = ks_error_new(
                                        KS_ERR_KAFKA, "restoring %s: %s",
                                        info.name, rd_kafka_message_errstr(m));
                        else if (!err && !m->err) {
                                err = ks__task_restore_put(
                                        task, idx,
                                        (ks_bytes_t){m->key, m->key_len},
                                        (ks_bytes_t){m->payload, m->len});
                                next = m->offset + 1;
                                applied++;
                                since_commit++;
                        }
                        rd_kafka_message_destroy(m);
                }
                if (!err && since_commit >= batch) {
                        err          = ks__task_restore_commit(task, idx, next);
                        since_commit = 0;
                }
                int64_t now = ks_now_ms();
                if (now - last_log >= 5000) {
                        last_log = now;
                        ks__log(KS_LOG_INFO,
                                "task %s: restoring %s: %lld records, %lld "
                                "remaining, %.0f records/s",
                                ks__task_id(task), info.name,
                                (long long)applied, (long long)(hi - next),
                                (double)applied * 1000.0 /
                                        (double)(now - t0 + 1));
                }
        }
        /* Compacted changelogs have gaps: the end is the high watermark. */
        if (!err)
                err = ks__task_restore_commit(task, idx, hi);
        rd_kafka_assign(rk, NULL);
        rd_kafka_queue_destroy(q);
        int64_t ms = ks_now_ms() - t0;
        t->own.records_restored += (uint64_t)applied;
        t->own.restore_ms += (uint64_t)ms;
        if (!err)
                ks__log(KS_LOG_INFO,
                        "task %s: restored %s: %lld records in %lld ms "
                        "(%.0f records/s)",
                        ks__task_id(task), info.name, (long long)applied,
                        (long long)ms,
                        (double)applied * 1000.0 / (double)(ms + 1));
        return err;
}

static ks_task_t *task_get(ks_stream_thread_t *t,
                           int sub,
                           int32_t partition,
                           ks_error_t **errp) {
        for (int i = 0; i < t->task_cnt; i++)
                if (ks__task_subtopology(t->tasks[i]) == sub &&
                    ks__task_partition(t->tasks[i]) == partition)
                        return t->tasks[i];
        char errstr[256];
        ks_task_t **nt =
                realloc(t->tasks, (size_t)(t->task_cnt + 1) * sizeof(*nt));
        if (!nt) {
                *errp = ks_error_new(KS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        t->tasks            = nt;
        ks_state_env_t *env = NULL;
        if (sub_has_stores(t->s->topology, sub)) {
                *errp = open_env(t, sub, partition, &env);
                if (*errp)
                        return NULL;
        }
        ks_task_t *task =
                ks__task_new(t->s->topology, sub, partition, t->s->conf,
                             &t->collector, env, errstr, sizeof(errstr));
        if (!task) {
                *errp = ks_error_new(KS_ERR_INVALID_ARG, "%s", errstr);
                return NULL;
        }
        ks__task_set_cache_budget(task, &t->cache_budget);
        /* Interactive queries see the task as restoring until it is
         * ready. */
        if (env)
                *errp = ks__iq_task_add(t->s, task, env);
        for (int i = 0; i < ks__task_store_count(task) && !*errp; i++)
                *errp = restore_store(t, task, i);
        if (!*errp)
                *errp = ks__task_init(task);
        if (*errp) {
                ks__iq_task_remove(t->s, task);
                ks__task_destroy(task);
                return NULL;
        }
        ks__iq_task_ready(t->s, task);
        t->tasks[t->task_cnt++] = task;
        return task;
}

static void close_all_tasks(ks_stream_thread_t *t) {
        /* Delivery reports point into tasks (changelog checkpoints): none
         * may be outstanding when they go. */
        if (t->task_cnt && rd_kafka_flush(t->producer, 30000)) {
                rd_kafka_purge(t->producer, RD_KAFKA_PURGE_F_QUEUE |
                                                    RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_flush(t->producer, 5000);
        }
        /* Forget the partitions first: buffered records released by the
         * tasks' close were not processed and must not move offsets. */
        for (int i = 0; i < t->assigned_cnt; i++)
                free(t->assigned[i].topic);
        free(t->assigned);
        t->assigned     = NULL;
        t->assigned_cnt = 0;
        for (int i = 0; i < t->task_cnt; i++) {
                ks__metrics_add_task(&t->closed, ks__task_metrics(t->tasks[i]));
                /* Waits for the queries reading its stores. */
                ks__iq_task_remove(t->s, t->tasks[i]);
                ks__task_destroy(t->tasks[i]);
        }
        free(t->tasks);
        t->tasks    = NULL;
        t->task_cnt = 0;
}

static ks_error_t *on_assign(ks_stream_thread_t *t,
                             rd_kafka_topic_partition_list_t *parts) {
        ks_error_t *err = NULL;
        t->assigned     = calloc((size_t)parts->cnt + 1, sizeof(assigned_t));
        if (!t->assigned)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < parts->cnt && !err; i++) {
                const char *topic = parts->elems[i].topic;
                int32_t p         = parts->elems[i].partition;
                assigned_t *a     = &t->assigned[t->assigned_cnt];
                a->topic          = strdup(topic);
                a->partition      = p;
                a->next_offset    = -1;
                a->committed      = -1;
                a->purged         = -1;
                if (!a->topic)
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                t->assigned_cnt++;
                const ks_topology_t *topo = t->s->topology;
                for (int n = 0; n < topo->node_cnt && !err && !a->task; n++) {
                        const ks_node_t *node = topo->nodes[n];
                        if (node->kind != KS_NODE_SOURCE ||
                            !ks__source_reads(node, t->s->application_id,
                                              topic))
                                continue;
                        a->repartition = node->internal;
                        a->task = task_get(t, node->subtopology, p, &err);
                }
        }
        if (!err)
                ks__log(KS_LOG_INFO,
                        "thread %d: assigned %d partitions, %d tasks", t->index,
                        t->assigned_cnt, t->task_cnt);
        return err;
}

static void rebalance_cb(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        ks_stream_thread_t *t = opaque;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                t->own.rebalances++;
                ks_error_t *e = on_assign(t, parts);
                rd_kafka_assign(rk, parts);
                if (e && !t->fatal)
                        t->fatal = e;
                else
                        ks_error_destroy(e);
                atomic_store(&t->has_assignment, true);
        } else {
                /* Revoked: commit what was processed, then let the tasks go
                 * (their unprocessed records go back to the group). */
                if (!t->fatal)
                        commit(t);
                close_all_tasks(t);
                rd_kafka_assign(rk, NULL);
                atomic_store(&t->has_assignment, false);
        }
        ks__streams_update_state(t->s);
}

/* ---- the loop ---------------------------------------------------------------
 */

static void set_paused(ks_stream_thread_t *t, assigned_t *a, bool pause) {
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, a->topic, a->partition);
        if (pause)
                rd_kafka_pause_partitions(t->consumer, l);
        else
                rd_kafka_resume_partitions(t->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
        a->paused = pause;
}

static void *to_handle(rd_kafka_message_t *msg, ks_raw_record_t *raw) {
        rd_kafka_headers_t *hdrs = NULL;
        raw->headers             = NULL;
        raw->header_cnt          = 0;
        if (rd_kafka_message_headers(msg, &hdrs) || !hdrs ||
            !rd_kafka_header_cnt(hdrs))
                return msg;
        size_t cnt         = rd_kafka_header_cnt(hdrs);
        msg_block_t *block = malloc(sizeof(*block) + cnt * sizeof(ks_header_t));
        if (!block)
                return msg; /* headers lost is better than the record */
        block->msg = msg;
        for (size_t i = 0; i < cnt; i++) {
                const void *val;
                size_t size;
                rd_kafka_header_get_all(hdrs, i, &block->headers[i].name, &val,
                                        &size);
                block->headers[i].value.data = val;
                block->headers[i].value.len  = size;
        }
        raw->headers    = block->headers;
        raw->header_cnt = cnt;
        return (void *)((uintptr_t)block | 1);
}

static void consume(ks_stream_thread_t *t, rd_kafka_message_t *msg) {
        if (msg->err) {
                if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        ks__log_limited(&t->rl_consume, 10000, KS_LOG_WARNING,
                                        "thread %d: consumer: %s", t->index,
                                        rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
                return;
        }
        const char *topic = rd_kafka_topic_name(msg->rkt);
        assigned_t *a     = find_assigned(t, topic, msg->partition);
        if (!a || !a->task) {
                rd_kafka_message_destroy(msg);
                return;
        }
        rd_kafka_timestamp_type_t tstype;
        ks_raw_record_t raw = {
                .topic     = a->topic,
                .partition = msg->partition,
                .offset    = msg->offset,
                .timestamp = rd_kafka_message_timestamp(msg, &tstype),
                .key       = {msg->key, msg->key_len},
                .value     = {msg->payload, msg->len},
        };
        raw.handle   = to_handle(msg, &raw);
        ks_err_t err = ks__task_enqueue(a->task, &raw);
        if (err) {
                /* Never commit past a record that was not processed: the
                 * thread fails without committing; the record comes back. */
                if (!t->fatal)
                        t->fatal = ks_error_new(
                                err,
                                "thread %d: cannot buffer a record of %s "
                                "[%" PRId32 "]: %s",
                                t->index, a->topic, raw.partition,
                                ks_err2str(err));
                release_handle(t, raw.handle, false);
                return;
        }
        if (!a->paused &&
            ks__task_buffered_topic(a->task, topic) >= t->max_buffered)
                set_paused(t, a, true);
}

static ks_error_t *process(ks_stream_thread_t *t) {
        /* Round-robin over tasks, a slice each, until nothing is buffered or
         * a batch's worth is done (then poll again to stay live). */
        int budget = t->batch_size;
        bool busy  = true;
        while (busy && budget > 0) {
                busy = false;
                for (int i = 0; i < t->task_cnt; i++) {
                        for (int k = 0; k < 64; k++) {
                                ks_error_t *err = NULL;
                                int r = ks__task_process_one(t->tasks[i], &err);
                                if (r < 0)
                                        return err;
                                if (r == 0)
                                        break;
                                busy = true;
                                budget--;
                        }
                }
        }
        for (int i = 0; i < t->assigned_cnt; i++) {
                assigned_t *a = &t->assigned[i];
                if (a->paused && ks__task_buffered_topic(a->task, a->topic) <=
                                         t->max_buffered / 2)
                        set_paused(t, a, false);
        }
        int64_t now = ks_now_ms();
        for (int i = 0; i < t->task_cnt; i++) {
                ks_error_t *err = ks__task_punctuate_wall(t->tasks[i], now);
                if (err)
                        return err;
        }
        return NULL;
}

static bool anything_buffered(const ks_stream_thread_t *t) {
        for (int i = 0; i < t->task_cnt; i++)
                if (ks__task_buffered(t->tasks[i]))
                        return true;
        return false;
}

static void publish_metrics(ks_stream_thread_t *t) {
        ks_streams_metrics_t m = t->own;
        m.records_consumed += t->closed.records_consumed;
        m.records_processed += t->closed.records_processed;
        m.records_produced += t->closed.records_produced;
        m.dropped_deserialization += t->closed.dropped_deserialization;
        m.dropped_processing += t->closed.dropped_processing;
        m.dropped_production +=
                t->closed.dropped_production + t->delivery_failed;
        m.dead_lettered += t->closed.dead_lettered; /* own: delivery DLQ */
        m.punctuations += t->closed.punctuations;
        m.dropped_late += t->closed.dropped_late;
        m.dropped_skipped += t->closed.dropped_skipped;
        m.cache_puts += t->closed.cache_puts;
        m.cache_flushed += t->closed.cache_flushed;
        for (int i = 0; i < t->task_cnt; i++)
                ks__metrics_add_task(&m, ks__task_metrics(t->tasks[i]));
        m.assigned_partitions = (uint64_t)t->assigned_cnt;
        m.active_tasks        = (uint64_t)t->task_cnt;
        pthread_mutex_lock(&t->mlock);
        t->published = m;
        pthread_mutex_unlock(&t->mlock);
}

static void *thread_main(void *arg) {
        ks_stream_thread_t *t = arg;
        ks_streams_t *s       = t->s;
        ks_error_t *err       = NULL;
        rd_kafka_topic_partition_list_t *sub =
                rd_kafka_topic_partition_list_new(s->subscription_cnt);
        for (int i = 0; i < s->subscription_cnt; i++)
                rd_kafka_topic_partition_list_add(sub, s->subscription[i],
                                                  RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t rerr = rd_kafka_subscribe(t->consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (rerr)
                err = ks_error_new(KS_ERR_KAFKA, "subscribe: %s",
                                   rd_kafka_err2str(rerr));
        t->last_commit = ks_now_ms();
        while (!err && !atomic_load(&s->stop)) {
                int timeout = anything_buffered(t) ? 0 : (int)t->poll_ms;
                /* One message at a time, not rd_kafka_consume_batch_queue():
                 * librdkafka before 2.1.0 (Debian 12 has 2.0.2) could skip
                 * offsets in its batch API around pauses, which consume()
                 * uses for backpressure, seeks and rebalances (its
                 * CHANGELOG for 2.1.0, PR #4208). */
                for (int i = 0; i < t->batch_size; i++) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(
                                t->consumer, i ? 0 : timeout);
                        if (!m)
                                break;
                        consume(t, m);
                }
                rd_kafka_poll(t->producer, 0); /* delivery reports */
                purge_results(t);
                err = process(t);
                if (!err && t->fatal) {
                        err      = t->fatal;
                        t->fatal = NULL;
                }
                if (!err && ks_now_ms() - t->last_commit >= t->commit_interval)
                        commit(t);
                /* Thread 0 keeps the state directory tidy. */
                if (t->index == 0 && ks_now_ms() - t->last_cleanup >= 60000) {
                        t->last_cleanup = ks_now_ms();
                        ks__state_cleanup(
                                t->app_state_dir,
                                ks__conf_int(s->conf, "state.cleanup.delay.ms"),
                                t->last_cleanup);
                }
                publish_metrics(t);
        }
        if (!err) {
                /* A clean stop: commit, then leave the group (the revoke
                 * callback runs inside consumer_close). A commit that
                 * cannot flush the record caches fails the thread. */
                commit(t);
                err      = t->fatal;
                t->fatal = NULL;
        }
        if (!err) {
                rd_kafka_consumer_close(t->consumer);
        } else {
                /* Failed: no commit, so the failing records come back. While
                 * t->fatal is set the revoke callback skips its commit. */
                t->fatal = err;
                rd_kafka_assign(t->consumer, NULL);
                close_all_tasks(t);
                rd_kafka_consumer_close(t->consumer);
                t->fatal = NULL;
        }
        close_all_tasks(t);
        rd_kafka_flush(t->producer, 10000);
        publish_metrics(t);
        atomic_store(&t->has_assignment, false);
        if (err)
                ks__streams_thread_failed(s, err);
        atomic_fetch_sub(&s->running_threads, 1);
        return NULL;
}

/* ---- construction ----------------------------------------------------------
 */

static bool set(rd_kafka_conf_t *c,
                const char *name,
                const char *value,
                char *errstr,
                size_t errstr_size) {
        return rd_kafka_conf_set(c, name, value, errstr, errstr_size) ==
               RD_KAFKA_CONF_OK;
}

/* Appends "@<application.server>" to the consumer's client.id (the user's
 * or ours): the group's description (DescribeConsumerGroups) shows each
 * member's client.id and assignment, which is how any instance learns
 * where a partition's queries go (ks_streams_query_key_owner()), since
 * librdkafka has no custom assignor to carry it as Kafka Streams does. */
static bool with_server(rd_kafka_conf_t *c,
                        const char *server,
                        char *errstr,
                        size_t errstr_size) {
        char id[512], full[800];
        size_t len = sizeof(id);
        if (!*server)
                return true;
        if (rd_kafka_conf_get(c, "client.id", id, &len) != RD_KAFKA_CONF_OK)
                id[0] = '\0';
        snprintf(full, sizeof(full), "%s@%s", id, server);
        return set(c, "client.id", full, errstr, errstr_size);
}

static rd_kafka_t *make_consumer(ks_stream_thread_t *t,
                                 char *errstr,
                                 size_t errstr_size) {
        ks_streams_t *s    = t->s;
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        char client_id[300];
        snprintf(client_id, sizeof(client_id), "%s-StreamThread-%d-consumer",
                 s->application_id, t->index + 1);
        /* Our defaults, then the user's, then what correctness needs. The
         * queue settings keep librdkafka 2.0.2's fetcher from stalling a
         * consumer that is slower than it. */
        bool ok =
                set(c, "client.id", client_id, errstr, errstr_size) &&
                set(c, "auto.offset.reset", "earliest", errstr, errstr_size) &&
                set(c, "queued.min.messages", "100000", errstr, errstr_size) &&
                set(c, "queued.max.messages.kbytes", "65536", errstr,
                    errstr_size) &&
                set(c, "session.timeout.ms", "10000", errstr, errstr_size);
        ks_error_t *err =
                ok ? ks__rdkafka_conf(s->conf, KS_CONF_SIDE_CONSUMER, c) : NULL;
        if (err) {
                snprintf(errstr, errstr_size, "%s", ks_error_message(err));
                ks_error_destroy(err);
                ok = false;
        }
        ok = ok && with_server(c, ks__conf_str(s->conf, "application.server"),
                               errstr, errstr_size);
        ok = ok && set(c, "group.id", s->application_id, errstr, errstr_size) &&
             set(c, "enable.auto.commit", "false", errstr, errstr_size) &&
             set(c, "enable.auto.offset.store", "false", errstr, errstr_size) &&
             set(c, "partition.assignment.strategy", "range", errstr,
                 errstr_size);
        if (!ok) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rd_kafka_conf_set_opaque(c, t);
        rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

static rd_kafka_t *make_producer(ks_stream_thread_t *t,
                                 char *errstr,
                                 size_t errstr_size) {
        ks_streams_t *s    = t->s;
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        char client_id[300];
        snprintf(client_id, sizeof(client_id), "%s-StreamThread-%d-producer",
                 s->application_id, t->index + 1);
        bool ok = set(c, "client.id", client_id, errstr, errstr_size) &&
                  set(c, "linger.ms", "5", errstr, errstr_size);
        ks_error_t *err =
                ok ? ks__rdkafka_conf(s->conf, KS_CONF_SIDE_PRODUCER, c) : NULL;
        if (err) {
                snprintf(errstr, errstr_size, "%s", ks_error_message(err));
                ks_error_destroy(err);
                ok = false;
        }
        /* Keys must land where Java clients put them, and retries must not
         * duplicate or reorder. */
        ok = ok &&
             set(c, "partitioner", "murmur2_random", errstr, errstr_size) &&
             set(c, "enable.idempotence", "true", errstr, errstr_size);
        if (!ok) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rd_kafka_conf_set_opaque(c, t);
        rd_kafka_conf_set_dr_msg_cb(c, dr_msg_cb);
        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

ks_stream_thread_t *ks__stream_thread_new(ks_streams_t *s,
                                          int index,
                                          char *errstr,
                                          size_t errstr_size) {
        ks_stream_thread_t *t = calloc(1, sizeof(*t));
        if (!t) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        t->s     = s;
        t->index = index;
        snprintf(t->app_state_dir, sizeof(t->app_state_dir), "%s/%s",
                 ks__conf_str(s->conf, "state.dir"), s->application_id);
        t->last_cleanup = ks_now_ms();
        pthread_mutex_init(&t->mlock, NULL);
        t->batch_size      = (int)ks__conf_int(s->conf, "consume.batch.size");
        t->commit_interval = ks__conf_int(s->conf, "commit.interval.ms");
        t->cache_budget.max =
                (size_t)ks__conf_int(s->conf, "statestore.cache.max.bytes") /
                (size_t)ks__conf_int(s->conf, "num.stream.threads");
        t->poll_ms = ks__conf_int(s->conf, "poll.ms");
        t->purge_interval =
                ks__conf_int(s->conf, "repartition.purge.interval.ms");
        t->last_purge = ks_now_ms();
        t->max_buffered =
                (size_t)ks__conf_int(s->conf, "buffered.records.per.partition");
        t->prod_handler = ks__conf_handler(
                s->conf, "default.production.exception.handler");
        t->dlq_topic =
                ks__conf_str(s->conf, "errors.dead.letter.queue.topic.name");
        t->collector = (ks_collector_t){.send            = collector_send,
                                        .partition_count = collector_partitions,
                                        .release         = collector_release,
                                        .opaque          = t};
        t->batch     = calloc((size_t)t->batch_size, sizeof(*t->batch));
        if (!t->batch ||
            !(t->producer = make_producer(t, errstr, errstr_size)) ||
            !(t->consumer = make_consumer(t, errstr, errstr_size))) {
                if (!t->batch)
                        snprintf(errstr, errstr_size, "out of memory");
                ks__stream_thread_destroy(t);
                return NULL;
        }
        rd_kafka_poll_set_consumer(t->consumer);
        t->queue   = rd_kafka_queue_get_consumer(t->consumer);
        t->purge_q = rd_kafka_queue_new(t->producer);
        return t;
}

ks_error_t *ks__stream_thread_start(ks_stream_thread_t *t) {
        atomic_fetch_add(&t->s->running_threads, 1);
        if (pthread_create(&t->tid, NULL, thread_main, t)) {
                atomic_fetch_sub(&t->s->running_threads, 1);
                return ks_error_new(KS_ERR_STATE, "pthread_create failed");
        }
        t->started = true;
        return NULL;
}

void ks__stream_thread_join(ks_stream_thread_t *t) {
        if (t->started && !t->joined) {
                pthread_join(t->tid, NULL);
                t->joined = true;
        }
}

void ks__stream_thread_destroy(ks_stream_thread_t *t) {
        if (!t)
                return;
        ks__stream_thread_join(t);
        close_all_tasks(t);
        if (t->queue)
                rd_kafka_queue_destroy(t->queue);
        if (t->purge_q)
                rd_kafka_queue_destroy(t->purge_q);
        if (t->consumer)
                rd_kafka_destroy(t->consumer);
        if (t->producer)
                rd_kafka_destroy(t->producer);
        if (t->restorer)
                rd_kafka_destroy(t->restorer);
        ks_error_destroy(t->fatal);
        free(t->batch);
        pthread_mutex_destroy(&t->mlock);
        free(t);
}

rd_kafka_t *ks__stream_thread_producer(ks_stream_thread_t *t) {
        return t->producer;
}

char *ks__stream_thread_member_id(ks_stream_thread_t *t) {
        return rd_kafka_memberid(t->consumer);
}

bool ks__stream_thread_assigned(const ks_stream_thread_t *t) {
        return atomic_load(&((ks_stream_thread_t *)t)->has_assignment);
}

void ks__stream_thread_metrics(ks_stream_thread_t *t,
                               ks_streams_metrics_t *out) {
        pthread_mutex_lock(&t->mlock);
        const ks_streams_metrics_t *m = &t->published;
        out->records_consumed += m->records_consumed;
        out->records_processed += m->records_processed;
        out->records_produced += m->records_produced;
        out->dropped_deserialization += m->dropped_deserialization;
        out->dropped_processing += m->dropped_processing;
        out->dropped_production += m->dropped_production;
        out->dead_lettered += m->dead_lettered;
        out->punctuations += m->punctuations;
        out->commits += m->commits;
        out->commit_failures += m->commit_failures;
        out->commit_latency_ms_total += m->commit_latency_ms_total;
        if (m->commit_latency_ms_max > out->commit_latency_ms_max)
                out->commit_latency_ms_max = m->commit_latency_ms_max;
        out->rebalances += m->rebalances;
        out->dropped_late += m->dropped_late;
        out->dropped_skipped += m->dropped_skipped;
        out->cache_puts += m->cache_puts;
        out->cache_flushed += m->cache_flushed;
        out->records_restored += m->records_restored;
        out->restore_ms += m->restore_ms;
        out->assigned_partitions += m->assigned_partitions;
        out->active_tasks += m->active_tasks;
        pthread_mutex_unlock(&t->mlock);
}
