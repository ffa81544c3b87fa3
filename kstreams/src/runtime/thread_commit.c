/* A stream thread's side of the commit protocol (task/commit.c): flushing
 * its producer, committing offsets with their metadata, and purging the
 * repartition records committed. @locality stream thread */
#include <stdlib.h>
#include <string.h>

#include "log_int.h"
#include "runtime_int.h"

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
        rd_kafka_DeleteRecords(t->consumer, &del, 1, NULL, t->purge_q);
        rd_kafka_DeleteRecords_destroy(del);
        rd_kafka_topic_partition_list_destroy(l);
}

/* Collects the purges' results; a failed one is logged. */
void ks__thread_purge_results(ks_stream_thread_t *t) {
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

/* The commit protocol's Kafka steps for at-least-once (the flush also
 * under exactly_once_v2: the changelog positions in the offsets' metadata
 * are the acknowledged ones). */
ks_error_t *ks__thread_flush_op(void *opaque) {
        ks_stream_thread_t *t = opaque;
        return ks__collector_flush(&t->collector,
                                   ks__thread_time_left(t, 30000));
}

rd_kafka_topic_partition_list_t *ks__thread_offset_list(
        const ks_task_offset_t *offsets,
        int cnt) {
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(cnt);
        for (int i = 0; i < cnt; i++) {
                char md[1024];
                int len = ks__offset_metadata_encode(offsets[i].task,
                                                     offsets[i].partition_time,
                                                     md, sizeof(md));
                if (len < 0 || (size_t)len >= sizeof(md))
                        len = ks__offset_metadata_encode(
                                NULL, offsets[i].partition_time, md,
                                sizeof(md));
                rd_kafka_topic_partition_t *p =
                        rd_kafka_topic_partition_list_add(l, offsets[i].topic,
                                                          offsets[i].partition);
                p->offset        = offsets[i].offset;
                p->metadata      = malloc((size_t)len);
                p->metadata_size = p->metadata ? (size_t)len : 0;
                if (p->metadata)
                        memcpy(p->metadata, md, (size_t)len);
        }
        return l;
}

/* The offsets to commit, moved past what the consumer skipped after the
 * last record processed (transaction markers, aborted records), as Kafka
 * Streams does since KAFKA-6607: a partition whose records are all
 * processed commits the consumer's position. Otherwise a transactional
 * input (an exactly-once upstream, our own repartition topics under EOS)
 * would always show a lag of 1, and a restart would read the marker again.
 * Partitions that did not move get an entry when only skipped records
 * follow their last commit. @returns a new array (free()), *out_cnt set. */
ks_task_offset_t *ks__thread_with_positions(ks_stream_thread_t *t,
                                            const ks_task_offset_t *offsets,
                                            int cnt,
                                            int *out_cnt) {
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(t->assigned_cnt + 1);
        for (int i = 0; i < t->assigned_cnt; i++) {
                assigned_t *a = &t->assigned[i];
                if (a->task && !a->held &&
                    !ks__task_buffered_topic(a->task, a->topic))
                        rd_kafka_topic_partition_list_add(l, a->topic,
                                                          a->partition);
        }
        ks_task_offset_t *out =
                malloc(((size_t)cnt + (size_t)l->cnt + 1) * sizeof(*out));
        if (!out) {
                rd_kafka_topic_partition_list_destroy(l);
                return NULL;
        }
        if (cnt)
                memcpy(out, offsets, (size_t)cnt * sizeof(*out));
        int n = cnt;
        if (l->cnt && rd_kafka_position(t->consumer, l))
                l->cnt = 0;
        for (int i = 0; i < l->cnt; i++) {
                const rd_kafka_topic_partition_t *e = &l->elems[i];
                int k                               = 0;
                while (k < cnt && (out[k].partition != e->partition ||
                                   strcmp(out[k].topic, e->topic)))
                        k++;
                if (k < cnt) {
                        if (e->offset > out[k].offset)
                                out[k].offset = e->offset;
                        continue;
                }
                assigned_t *a =
                        ks__thread_find_assigned(t, e->topic, e->partition);
                if (!a || a->committed < 0 || e->offset <= a->committed)
                        continue;
                ks_task_offset_t mine[KS_METADATA_MAX_STORES];
                int m = ks__task_offsets(a->task, mine, KS_METADATA_MAX_STORES,
                                         false);
                for (int j = 0; j < m && j < KS_METADATA_MAX_STORES; j++)
                        if (mine[j].partition == e->partition &&
                            !strcmp(mine[j].topic, e->topic) &&
                            e->offset > mine[j].offset) {
                                out[n]        = mine[j];
                                out[n].offset = e->offset;
                                n++;
                                break;
                        }
        }
        rd_kafka_topic_partition_list_destroy(l);
        *out_cnt = n;
        return out;
}

void ks__thread_offsets_committed(ks_stream_thread_t *t,
                                  const ks_task_offset_t *offsets,
                                  int cnt) {
        for (int i = 0; i < cnt; i++) {
                assigned_t *a = ks__thread_find_assigned(t, offsets[i].topic,
                                                         offsets[i].partition);
                if (a)
                        a->committed = offsets[i].offset;
        }
}

static ks_error_t *commit_offsets_op(void *opaque,
                                     const ks_task_offset_t *offsets,
                                     int cnt) {
        ks_stream_thread_t *t = opaque;
        int n;
        ks_task_offset_t *all = ks__thread_with_positions(t, offsets, cnt, &n);
        if (!all)
                return ks_error_new(KS_ERR_NOMEM, "commit: out of memory");
        rd_kafka_topic_partition_list_t *l = ks__thread_offset_list(all, n);
        rd_kafka_resp_err_t err            = rd_kafka_commit(t->consumer, l, 0);
        rd_kafka_topic_partition_list_destroy(l);
        if (!err)
                ks__thread_offsets_committed(t, all, n);
        free(all);
        if (err)
                return ks_error_set_retriable(
                        ks_error_new(KS_ERR_KAFKA, "offset commit failed: %s",
                                     rd_kafka_err2str(err)),
                        true);
        return NULL;
}

/* A commit that did not go through under exactly_once_v2: what was not
 * acknowledged, or a sink away, may wait for the next interval while the
 * transaction is young; past half its timeout, or on any other failure,
 * it is aborted (the loop restarts the tasks from the last commit). */
static void eos_commit_failed(ks_stream_thread_t *t,
                              const ks_commit_result_t *res,
                              ks_error_t *err) {
        bool young = ks_now_ms() - t->txn.started < t->txn.timeout_ms / 2;
        if (ks__txn_recovery_due(t)) {
                ks_error_destroy(err);
        } else if ((res->failed_step == KS_COMMIT_FLUSH ||
                    res->failed_step == KS_COMMIT_HOOKS) &&
                   young && !t->collector.fatal) {
                ks__log_limited(&t->rl_commit, 10000, KS_LOG_WARNING,
                                "thread %d: commit postponed: %s", t->index,
                                ks_error_message(err));
                ks_error_destroy(err);
        } else if (res->failed_step == KS_COMMIT_STORES ||
                   res->failed_step == KS_COMMIT_CACHES) {
                ks__thread_fail(t, err);
        } else {
                ks__txn_fail(t, false, "the commit failed: %s",
                             ks_error_message(err));
                ks_error_destroy(err);
        }
}

bool ks__thread_commit(ks_stream_thread_t *t) {
        /* Past ks_streams_close()'s deadline nothing more is committed. */
        if (atomic_load(&t->s->stop) && !ks__thread_time_left(t, 1))
                return false;
        int64_t t0     = ks_now_ms();
        t->last_commit = t0;
        ks_task_t **tasks;
        int n = ks__tm_running(t, &tasks);
        if (n < 0) {
                ks__thread_fail(t, ks_error_new(KS_ERR_NOMEM, "out of memory"));
                return false;
        }
        ks_commit_ops_t ops = {ks__thread_flush_op, commit_offsets_op, t,
                               false};
        if (t->s->eos) {
                /* An abort is due: nothing may commit before it. */
                if (ks__txn_recovery_due(t))
                        return false;
                ks__txn_commit_ops(t, &ops);
        }
        ks_commit_result_t res;
        ks_error_t *err = ks__commit(tasks, n, &ops, &res);
        if (!err) {
                purge_repartition(t);
                uint64_t ms = (uint64_t)(ks_now_ms() - t0);
                t->own.commits++;
                t->own.commit_latency_ms_total += ms;
                ks__hist_observe_ms(&t->obs.commit, (int64_t)ms);
                if (ms > t->own.commit_latency_ms_max)
                        t->own.commit_latency_ms_max = ms;
                return true;
        }
        t->own.commit_failures++;
        if (t->s->eos) {
                eos_commit_failed(t, &res, err);
                return false;
        }
        /* A lost internal record is handled by the loop (the tasks are
         * recreated); records not yet acknowledged or a refused offset
         * commit are tried again at the next interval; the rest fails the
         * thread. */
        if (t->collector.task_error || t->collector.fatal) {
                ks_error_destroy(err); /* the loop acts on it */
        } else if (res.failed_step == KS_COMMIT_FLUSH ||
                   res.failed_step == KS_COMMIT_HOOKS ||
                   res.failed_step == KS_COMMIT_OFFSETS) {
                ks__log_limited(&t->rl_commit, 10000, KS_LOG_WARNING,
                                "thread %d: commit postponed: %s", t->index,
                                ks_error_message(err));
                ks_error_destroy(err);
        } else {
                ks__thread_fail(t, err);
        }
        return false;
}
