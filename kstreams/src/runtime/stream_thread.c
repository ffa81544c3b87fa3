/* A stream thread: one group consumer, one producer (through the record
 * collector), a changelog reader, and the tasks of its assignment under the
 * task manager. Its loop polls, restores, processes and commits; the
 * rebalance callbacks only record what changed (runtime_int.h).
 * @locality stream thread */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_int.h"
#include "kstreams/store.h"
#include "log_int.h"
#include "runtime_int.h"

/* A consumed record that has headers travels with them in one block; the
 * handle's low bit tells a block from a bare rd_kafka_message_t. */
typedef struct msg_block_s {
        rd_kafka_message_t *msg;
        ks_header_t headers[];
} msg_block_t;

int ks__thread_time_left(const ks_stream_thread_t *t, int cap) {
        int64_t deadline = atomic_load(&t->s->close_deadline);
        if (!deadline)
                return cap;
        int64_t left = deadline - ks_now_ms();
        return left <= 0 ? 0 : left < cap ? (int)left : cap;
}

assigned_t *ks__thread_find_assigned(ks_stream_thread_t *t,
                                     const char *topic,
                                     int32_t partition) {
        for (int i = 0; i < t->assigned_cnt; i++)
                if (t->assigned[i].partition == partition &&
                    !strcmp(t->assigned[i].topic, topic))
                        return &t->assigned[i];
        return NULL;
}

void ks__thread_fail(ks_stream_thread_t *t, ks_error_t *err) {
        if (!t->fatal)
                t->fatal = err;
        else
                ks_error_destroy(err);
}

void ks__thread_pause(ks_stream_thread_t *t, assigned_t *a, bool pause) {
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, a->topic, a->partition);
        if (pause)
                rd_kafka_pause_partitions(t->consumer, l);
        else
                rd_kafka_resume_partitions(t->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
}

/* Frees a consumed record's handle (tasks track their own offsets). */
static void release_handle(void *opaque, void *handle) {
        (void)opaque;
        rd_kafka_message_t *msg = handle;
        msg_block_t *block      = NULL;
        if ((uintptr_t)handle & 1) {
                block = (msg_block_t *)((uintptr_t)handle & ~(uintptr_t)1);
                msg   = block->msg;
        }
        rd_kafka_message_destroy(msg);
        free(block);
}

/* ---- rebalances ------------------------------------------------------------
 */

static void rebalance_cb(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        ks_stream_thread_t *t = opaque;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                ks_error_t *e = ks__tm_on_assigned(t, parts);
                rd_kafka_assign(rk, parts);
                /* Nothing flows until its task runs (after restoring). */
                rd_kafka_pause_partitions(rk, parts);
                if (e)
                        ks__thread_fail(t, e);
                /* Not RUNNING until its tasks are (loop_once()). */
                t->in_group = true;
                atomic_store(&t->has_assignment, false);
        } else {
                ks__tm_on_revoked(t);
                t->in_group = false;
                rd_kafka_assign(rk, NULL);
                atomic_store(&t->has_assignment, false);
        }
        ks__streams_update_state(t->s);
}

/* ---- the loop ---------------------------------------------------------------
 */

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
                return NULL;
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
        assigned_t *a     = ks__thread_find_assigned(t, topic, msg->partition);
        ks_err_t err      = KS_OK;
        if (!a || !a->task) {
                /* Paused until its task runs: this cannot come, and must
                 * not be skipped silently if it does. */
                err = KS_ERR_STATE;
        } else {
                rd_kafka_timestamp_type_t tstype;
                ks_raw_record_t raw = {
                        .topic     = a->topic,
                        .partition = msg->partition,
                        .offset    = msg->offset,
                        .timestamp = rd_kafka_message_timestamp(msg, &tstype),
                        .key       = {msg->key, msg->key_len},
                        .value     = {msg->payload, msg->len},
                };
                raw.handle = to_handle(msg, &raw);
                err        = raw.handle ? ks__task_enqueue(a->task, &raw)
                                        : KS_ERR_NOMEM;
                if (!err) {
                        if (!a->paused &&
                            ks__task_buffered_topic(a->task, topic) >=
                                    t->max_buffered) {
                                a->paused = true;
                                ks__thread_pause(t, a, true);
                        }
                        return;
                }
                if (raw.handle)
                        release_handle(t, raw.handle);
                else
                        rd_kafka_message_destroy(msg);
                msg = NULL;
        }
        /* Never commit past a record that was not processed: the thread
         * fails without committing; the record comes back. */
        ks__thread_fail(
                t, ks_error_new(err,
                                "thread %d: cannot buffer a record of "
                                "%s [%" PRId32 "] at offset %" PRId64 ": %s",
                                t->index, topic, msg ? msg->partition : -1,
                                msg ? msg->offset : -1, ks_err2str(err)));
        if (msg)
                rd_kafka_message_destroy(msg);
}

static ks_error_t *process(ks_stream_thread_t *t) {
        /* Round-robin over running tasks, a slice each, until nothing is
         * buffered or a batch's worth is done (then poll again). */
        int budget  = t->batch_size;
        bool busy   = true;
        t->progress = false;
        while (busy && budget > 0) {
                busy = false;
                for (int i = 0; i < t->task_cnt; i++) {
                        if (t->tasks[i]->state != KS_TASK_RUNNING)
                                continue;
                        for (int k = 0; k < 64; k++) {
                                ks_error_t *err = NULL;
                                int r = ks__task_process_one(t->tasks[i]->task,
                                                             &err);
                                if (r < 0)
                                        return err;
                                if (r == 0)
                                        break;
                                busy        = true;
                                t->progress = true;
                                budget--;
                        }
                }
        }
        for (int i = 0; i < t->assigned_cnt; i++) {
                assigned_t *a = &t->assigned[i];
                if (a->paused && ks__task_buffered_topic(a->task, a->topic) <=
                                         t->max_buffered / 2) {
                        a->paused = false;
                        if (!a->held)
                                ks__thread_pause(t, a, false);
                }
        }
        int64_t now = ks_now_ms();
        for (int i = 0; i < t->task_cnt; i++) {
                if (t->tasks[i]->state != KS_TASK_RUNNING)
                        continue;
                ks_error_t *err =
                        ks__task_punctuate_wall(t->tasks[i]->task, now);
                if (err)
                        return err;
        }
        return NULL;
}

static bool anything_buffered(const ks_stream_thread_t *t) {
        for (int i = 0; i < t->task_cnt; i++)
                if (t->tasks[i]->state == KS_TASK_RUNNING &&
                    ks__task_buffered(t->tasks[i]->task))
                        return true;
        return false;
}

static void publish_metrics(ks_stream_thread_t *t) {
        ks_streams_metrics_t m = t->own;
        ks__metrics_add(&m, &t->closed);
        m.dropped_production += t->collector.delivery_failed;
        m.dead_lettered += t->collector.dead_lettered;
        for (int i = 0; i < t->task_cnt; i++) {
                ks__metrics_add_task(&m, ks__task_metrics(t->tasks[i]->task));
                m.restoring_tasks += t->tasks[i]->state == KS_TASK_RESTORING;
        }
        m.assigned_partitions = (uint64_t)t->assigned_cnt;
        m.active_tasks        = (uint64_t)t->task_cnt;
        m.restore_records_remaining =
                (uint64_t)ks__reader_remaining(&t->reader);
        pthread_mutex_lock(&t->mlock);
        t->published = m;
        ks__obs_publish_locked(t);
        pthread_mutex_unlock(&t->mlock);
}

/* librdkafka before 2.2.0 stops fetching once its consumer queue holds
 * queued.min.messages or queued.max.messages.kbytes, and decides again only
 * when its broker thread wakes: on an op, on I/O, or after a fixed 1 s.
 * Draining the queue wakes nothing, so a thread faster than that waited for
 * input the broker had (issue 12; bench/peer/README.md has the evidence).
 * About to block with the queue empty, the thread asks the leaders of its
 * partitions for their end offsets: a request is an op on their broker
 * threads, which then fetch at once. At most every 20 ms, one round trip,
 * and only within 1 s of the last input (a stopped fetcher wakes by itself
 * after that). librdkafka 2.2.0's fetch.queue.backoff.ms makes it moot. */
static void wake_fetcher(ks_stream_thread_t *t) {
        int64_t now = ks_now_ms();
        if (!t->assigned_cnt || rd_kafka_version() >= 0x020200ff ||
            now - t->last_wake < 20 || now - t->last_input > 1000 ||
            rd_kafka_queue_length(t->queue))
                return;
        t->last_wake = now;
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(t->assigned_cnt);
        for (int i = 0; i < t->assigned_cnt; i++)
                rd_kafka_topic_partition_list_add(l, t->assigned[i].topic,
                                                  t->assigned[i].partition)
                        ->offset = RD_KAFKA_OFFSET_END;
        rd_kafka_offsets_for_times(t->consumer, l, (int)t->poll_ms);
        rd_kafka_topic_partition_list_destroy(l);
}

/* One turn: assignment, poll, restoration, processing, commit. */
static ks_error_t *loop_once(ks_stream_thread_t *t) {
        t->turn++;
        ks_error_t *err = ks__tm_handle_assignment(t);
        if (err)
                return err;
        bool restoring = ks__reader_active(&t->reader);
        /* No wait while there is work; records buffered for a task that
         * waits for its other inputs (max.task.idle.ms) are not work. */
        int timeout = (t->progress && anything_buffered(t)) || restoring
                              ? 0
                              : (int)t->poll_ms;
        /* One message at a time, not rd_kafka_consume_batch_queue():
         * librdkafka before 2.1.0 (Debian 12 has 2.0.2) could skip offsets
         * in its batch API around pauses, which consume() uses for
         * backpressure, seeks and rebalances (its CHANGELOG for 2.1.0, PR
         * #4208). */
        if (timeout)
                wake_fetcher(t);
        uint64_t us = ks__mono_us();
        for (int i = 0; i < t->batch_size && !t->fatal; i++) {
                rd_kafka_message_t *m =
                        rd_kafka_consumer_poll(t->consumer, i ? 0 : timeout);
                if (!m)
                        break;
                if (!i)
                        t->last_input = ks_now_ms();
                consume(t, m);
        }
        t->own.poll_time_us += ks__mono_us() - us;
        rd_kafka_poll(t->producer, 0); /* delivery reports */
        ks__thread_purge_results(t);
        /* Restoration between processing slices: a big store does not stop
         * the thread's running tasks. */
        if (restoring &&
            !(err = ks__reader_step(t, anything_buffered(t) ? 0 : 10)))
                err = ks__tm_finish_restoration(t);
        us = ks__mono_us();
        if (!err)
                err = process(t);
        t->own.process_time_us += ks__mono_us() - us;
        if (!err && t->collector.fatal) {
                err                = t->collector.fatal;
                t->collector.fatal = NULL;
        }
        if (!err && t->collector.task_error)
                err = ks__tm_recover_corrupted(t);
        if (!err && t->s->eos && ks__txn_recovery_due(t))
                err = ks__txn_recover(t);
        /* The instance is RUNNING once every thread's tasks run, as Kafka
         * Streams' (REBALANCING while any restores). */
        bool ready = !err && t->in_group && !t->assignment_pending &&
                     !ks__reader_active(&t->reader);
        if (ready != atomic_load(&t->has_assignment)) {
                atomic_store(&t->has_assignment, ready);
                ks__streams_update_state(t->s);
        }
        if (!err && ks_now_ms() - t->last_commit >= t->commit_interval)
                ks__thread_commit(t);
        return err;
}

/* The error the thread fails with, if any: its own or its collector's. */
static ks_error_t *take_fatal(ks_stream_thread_t *t) {
        ks_error_t *err = t->fatal;
        t->fatal        = NULL;
        if (!err) {
                err                = t->collector.fatal;
                t->collector.fatal = NULL;
        } else {
                ks_error_destroy(t->collector.fatal);
                t->collector.fatal = NULL;
        }
        return err;
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
        /* The transactional producer is ready before any partition is. */
        if (s->eos)
                err = ks__txn_init(t);
        rd_kafka_resp_err_t rerr =
                err ? 0 : rd_kafka_subscribe(t->consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (rerr)
                err = ks_error_new(KS_ERR_KAFKA, "subscribe: %s",
                                   rd_kafka_err2str(rerr));
        t->last_commit = ks_now_ms();
        while (!err && !t->fatal && !atomic_load(&s->stop)) {
                err = loop_once(t);
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
        if (!err)
                err = take_fatal(t);
        /* A clean stop commits, then leaves the group (the revocation
         * callback, inside consumer_close, commits what is left and closes
         * the tasks). A commit that fails, or a failed thread, closes
         * everything without committing: the records come back. */
        if (!err && !ks__thread_commit(t))
                err = take_fatal(t);
        /* ks_streams_close()'s timeout passed (a full producer queue, a
         * broker away): no commit, no group leave that could wait more;
         * what was not committed is processed again after a restart. */
        bool late = atomic_load(&s->stop) && ks__thread_time_left(t, 1) == 0;
        if (late) {
                if (err && ks_error_code(err) == KS_ERR_TIMED_OUT) {
                        ks_error_destroy(err);
                        err = NULL;
                }
                ks__log(KS_LOG_WARNING,
                        "thread %d: the close timeout passed with %d records "
                        "not delivered: closing without committing (records "
                        "since the last commit will be processed again)",
                        t->index, rd_kafka_outq_len(t->producer));
                atomic_store(&s->closed_late, true);
        }
        if (err || late) {
                t->fatal = err; /* the revocation then skips its commit */
                ks__tm_close_all(t, false);
                rd_kafka_assign(t->consumer, NULL);
        }
        if (!late) {
                rd_kafka_consumer_close(t->consumer);
                t->consumer_closed = true;
        }
        if (err)
                t->fatal = NULL;
        else if (!late)
                err = take_fatal(t); /* the last commit failed for good */
        ks__tm_close_all(t, !err && !late);
        if (s->eos)
                ks__txn_close(t);
        if (t->producer)
                rd_kafka_flush(t->producer, ks__thread_time_left(t, 10000));
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

/* Static membership (KIP-345): the user's group.instance.id names the
 * instance; each of its threads' consumers is a member of its own, so it
 * gets "-<thread index>". A restart within session.timeout.ms then takes
 * the same partitions back with no rebalance. */
static bool per_thread_instance(rd_kafka_conf_t *c,
                                int index,
                                char *errstr,
                                size_t errstr_size) {
        char id[256], full[300];
        size_t len = sizeof(id);
        if (rd_kafka_conf_get(c, "group.instance.id", id, &len) !=
                    RD_KAFKA_CONF_OK ||
            !id[0])
                return true;
        snprintf(full, sizeof(full), "%s-%d", id, index);
        return set(c, "group.instance.id", full, errstr, errstr_size);
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
         * queue thresholds are where librdkafka 2.0.2's fetcher stops and
         * backs off for 1 s (wake_fetcher() says how the loop copes). */
        bool ok =
                set(c, "client.id", client_id, errstr, errstr_size) &&
                ks__obs_consumer_conf(t, c, errstr, errstr_size) &&
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
        ok = ok &&
             with_server(c, ks__conf_str(s->conf, "application.server"), errstr,
                         errstr_size) &&
             per_thread_instance(c, t->index, errstr, errstr_size);
        /* Under exactly_once_v2, records of aborted transactions (ours
         * and upstream's) are never processed. */
        ok = ok && (!s->eos || set(c, "isolation.level", "read_committed",
                                   errstr, errstr_size));
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

rd_kafka_t *ks__thread_make_producer(ks_stream_thread_t *t,
                                     char *errstr,
                                     size_t errstr_size) {
        ks_streams_t *s    = t->s;
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        char client_id[300];
        snprintf(client_id, sizeof(client_id), "%s-StreamThread-%d-producer",
                 s->application_id, t->index + 1);
        char timeout[32];
        snprintf(timeout, sizeof(timeout), "%d", KS_EOS_TXN_TIMEOUT_MS);
        bool ok = set(c, "client.id", client_id, errstr, errstr_size) &&
                  set(c, "linger.ms", "5", errstr, errstr_size) &&
                  (!s->eos || set(c, "transaction.timeout.ms", timeout, errstr,
                                  errstr_size));
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
             set(c, "enable.idempotence", "true", errstr, errstr_size) &&
             (!s->eos ||
              set(c, "transactional.id", t->txn.id, errstr, errstr_size));
        if (!ok) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rd_kafka_conf_set_opaque(c, t);
        rd_kafka_conf_set_dr_msg_cb(c, ks__collector_dr_cb);
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
        t->commit_interval = s->commit_interval_ms;
        snprintf(t->txn.id, sizeof(t->txn.id), "%s-%s-%d", s->application_id,
                 s->instance_id, index);
        t->cache_budget.max =
                (size_t)ks__conf_int(s->conf, "statestore.cache.max.bytes") /
                (size_t)ks__conf_int(s->conf, "num.stream.threads");
        t->poll_ms = ks__conf_int(s->conf, "poll.ms");
        t->purge_interval =
                ks__conf_int(s->conf, "repartition.purge.interval.ms");
        t->last_purge = ks_now_ms();
        t->max_buffered =
                (size_t)ks__conf_int(s->conf, "buffered.records.per.partition");
        ks_error_t *err = NULL;
        if (!(t->producer = ks__thread_make_producer(t, errstr, errstr_size)) ||
            !(t->consumer = make_consumer(t, errstr, errstr_size)) ||
            (err = ks__collector_init(&t->collector, t)) ||
            (err = ks__reader_init(&t->reader, t))) {
                if (err)
                        snprintf(errstr, errstr_size, "%s",
                                 ks_error_message(err));
                ks_error_destroy(err);
                ks__stream_thread_destroy(t);
                return NULL;
        }
        t->collector.iface.release = release_handle;
        rd_kafka_poll_set_consumer(t->consumer);
        t->queue   = rd_kafka_queue_get_consumer(t->consumer);
        t->purge_q = rd_kafka_queue_new(t->consumer);
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
        if (t->producer && t->consumer)
                ks__tm_close_all(t, false);
        ks__reader_fini(&t->reader);
        if (t->queue)
                rd_kafka_queue_destroy(t->queue);
        if (t->purge_q)
                rd_kafka_queue_destroy(t->purge_q);
        /* A consumer not closed (a late close) must not try now. */
        if (t->consumer)
                rd_kafka_destroy_flags(
                        t->consumer,
                        t->consumer_closed
                                ? 0
                                : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        if (t->producer)
                rd_kafka_destroy(t->producer);
        ks__collector_fini(&t->collector);
        free(t->txn.cause);
        ks_error_destroy(t->fatal);
        free(t->running);
        ks__obs_fini(t);
        pthread_mutex_destroy(&t->mlock);
        free(t);
}

rd_kafka_t *ks__stream_thread_client(ks_stream_thread_t *t) {
        return t->consumer;
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
        ks__metrics_add(out, &t->published);
        pthread_mutex_unlock(&t->mlock);
}
