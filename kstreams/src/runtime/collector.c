/* The record collector: the one place a stream thread produces. It knows
 * the application's internal topics: a changelog or repartition record
 * that cannot be delivered always fails its tasks (store and changelog, or
 * two sub-topologies, would silently diverge otherwise), whatever the
 * production handler says; only records to user topics follow the
 * handler. @locality stream thread (delivery reports are served there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_int.h"
#include "runtime_int.h"

static bool internal_topic(const ks_record_collector_t *c, const char *topic) {
        size_t plen = c->app_prefix_len, len = strlen(topic);
        if (len <= plen || strncmp(topic, c->app_prefix, plen))
                return false;
        static const char *const suffixes[] = {"-changelog", "-repartition"};
        for (int i = 0; i < 2; i++) {
                size_t sl = strlen(suffixes[i]);
                if (len > plen + sl && !strcmp(topic + len - sl, suffixes[i]))
                        return true;
        }
        return false;
}

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
        ks_record_collector_t *c = opaque;
        /* A changelog record carries its store's acknowledged offset; any
         * other internal record the marker: non-NULL means "internal". */
        void *dr_opaque = acked                      ? (void *)acked
                          : internal_topic(c, topic) ? &c->internal_marker
                                                     : NULL;
        /* Under exactly_once_v2 a record sent when the transaction cannot
         * go on is dropped: the transaction is aborted before anything
         * commits, and the record is produced again on the replay. */
        bool eos = c->t->s->eos;
        if (eos && !ks__txn_ensure_begun(c->t))
                return KS_OK;
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
                        c->producer, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_PARTITION(partition < 0
                                                     ? RD_KAFKA_PARTITION_UA
                                                     : partition),
                        RD_KAFKA_V_KEY(key.data, key.len),
                        RD_KAFKA_V_VALUE((void *)value.data, value.len),
                        RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(h),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_OPAQUE(dr_opaque), RD_KAFKA_V_END);
                if (!err && !dr_opaque) /* an output record */
                        ks__hist_observe_ms(&c->t->obs.e2e, ks_now_ms() - ts);
                if (!err)
                        return KS_OK;
                /* Not taken on failure; librdkafka's destroy refuses NULL. */
                if (h)
                        rd_kafka_headers_destroy(h);
                if (eos && (err == RD_KAFKA_RESP_ERR__STATE ||
                            err == RD_KAFKA_RESP_ERR__FATAL)) {
                        ks__txn_fail(c->t, err == RD_KAFKA_RESP_ERR__FATAL,
                                     "produce to %s: %s", topic,
                                     rd_kafka_err2str(err));
                        return KS_OK;
                }
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        snprintf(errstr, errstr_size, "produce to %s: %s",
                                 topic, rd_kafka_err2str(err));
                        return KS_ERR_KAFKA;
                }
                /* The producer queue is full: let deliveries drain, but not
                 * past ks_streams_close()'s deadline. */
                if (ks__thread_time_left(c->t, 100) <= 0) {
                        snprintf(errstr, errstr_size,
                                 "produce to %s: the producer queue is full "
                                 "and the instance is closing",
                                 topic);
                        return KS_ERR_TIMED_OUT;
                }
                rd_kafka_poll(c->producer, ks__thread_time_left(c->t, 100));
        }
}

static int32_t collector_partitions(void *opaque, const char *topic) {
        (void)opaque, (void)topic;
        /* Unknown: the producer's murmur2_random partitioner places keys
         * exactly as ks_partition_for_key() would. */
        return -1;
}

/* max.task.idle.ms's question (KIP-695): how far the consumer is behind
 * what the broker has for the partition, from librdkafka's cached high
 * watermark (no request). Before the first record of a partition the
 * position is the committed offset, or the log start (auto.offset.reset
 * earliest, our default). -1: not known yet. */
static int64_t collector_fetched_lag(void *opaque,
                                     const char *topic,
                                     int32_t partition) {
        ks_record_collector_t *c = opaque;
        ks_stream_thread_t *t    = c->t;
        /* Asked for each record a waiting task could take: answered once
         * per loop turn (the watermarks move only with fetches). */
        assigned_t *a = ks__thread_find_assigned(t, topic, partition);
        if (a && a->lag_turn == t->turn)
                return a->lag;
        int64_t lo, hi, lag = -1;
        if (!rd_kafka_get_watermark_offsets(t->consumer, topic, partition, &lo,
                                            &hi) &&
            hi >= 0) {
                rd_kafka_topic_partition_list_t *l =
                        rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(l, topic, partition);
                int64_t pos = -1;
                if (!rd_kafka_position(t->consumer, l))
                        pos = l->elems[0].offset;
                rd_kafka_topic_partition_list_destroy(l);
                if (pos < 0)
                        pos = a && a->committed >= 0 ? a->committed : lo;
                if (pos >= 0)
                        lag = hi > pos ? hi - pos : 0;
        }
        if (a) {
                a->lag      = lag;
                a->lag_turn = t->turn;
        }
        return lag;
}

ks_error_t *ks__collector_init(ks_record_collector_t *c,
                               ks_stream_thread_t *t) {
        ks_streams_t *s = t->s;
        c->t            = t;
        c->producer     = t->producer;
        c->prod_handler = ks__conf_handler(
                s->conf, "default.production.exception.handler");
        c->dlq_topic =
                ks__conf_str(s->conf, "errors.dead.letter.queue.topic.name");
        size_t len    = strlen(s->application_id) + 2;
        c->app_prefix = malloc(len);
        if (!c->app_prefix)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        snprintf(c->app_prefix, len, "%s-", s->application_id);
        c->app_prefix_len = len - 1;
        c->iface          = (ks_collector_t){.send            = collector_send,
                                             .partition_count = collector_partitions,
                                             .fetched_lag     = collector_fetched_lag,
                                             .opaque          = c};
        return NULL;
}

void ks__collector_fini(ks_record_collector_t *c) {
        free(c->app_prefix);
        ks_error_destroy(c->task_error);
        ks_error_destroy(c->fatal);
        c->app_prefix = NULL;
        c->task_error = c->fatal = NULL;
}

/* Errors a later attempt may not get: the broker was away, or busy. */
static bool retriable(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
                return true;
        default:
                return false;
        }
}

static void dead_letter(ks_record_collector_t *c, const rd_kafka_message_t *m) {
        const char *topic     = rd_kafka_topic_name(m->rkt);
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        const char *msg       = rd_kafka_err2str(m->err);
        rd_kafka_header_add(h, "__streams.errors.message", -1, msg, -1);
        rd_kafka_header_add(h, "__streams.errors.topic", -1, topic, -1);
        if (rd_kafka_producev(
                    c->producer, RD_KAFKA_V_TOPIC(c->dlq_topic),
                    RD_KAFKA_V_KEY(m->key, m->key_len),
                    RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
                rd_kafka_headers_destroy(h);
        else
                c->dead_lettered++;
}

void ks__collector_dr_cb(rd_kafka_t *rk,
                         const rd_kafka_message_t *m,
                         void *opaque) {
        ks_stream_thread_t *t    = opaque;
        ks_record_collector_t *c = &t->collector;
        void *origin             = m->_private;
        if (!m->err) {
                /* A changelog record: its store's checkpoint may move past
                 * it. Tasks outlive their in-flight records (they close
                 * after a flush or a purge). */
                if (origin && origin != &c->internal_marker) {
                        int64_t *acked = origin;
                        if (m->offset > *acked)
                                *acked = m->offset;
                }
                return;
        }
        if (c->purging && (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                           m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT))
                return; /* dropped on purpose by a dirty close */
        const char *topic = rd_kafka_topic_name(m->rkt);
        c->delivery_failed++;
        if (t->s->eos) {
                /* The transaction cannot commit with a record missing
                 * (librdkafka makes it abortable): abort and replay,
                 * whatever the production handler says. */
                char fatal[256] = "";
                bool dead = rd_kafka_fatal_error(rk, fatal, sizeof(fatal)) != 0;
                if (!retriable(m->err) && !dead)
                        t->txn.poison_aborts += !t->txn.must_abort;
                ks__txn_fail(t, dead, "delivery to %s failed: %s%s%s", topic,
                             rd_kafka_err2str(m->err), dead ? "; " : "", fatal);
                return;
        }
        if (origin) {
                bool again        = retriable(m->err);
                ks_error_t **slot = again ? &c->task_error : &c->fatal;
                if (!*slot)
                        *slot = ks_error_new(
                                KS_ERR_KAFKA,
                                "thread %d: an internal record to %s could "
                                "not be delivered: %s; %s",
                                t->index, topic, rd_kafka_err2str(m->err),
                                again ? "its tasks close without committing "
                                        "and restart from their checkpoints"
                                      : "the thread fails without "
                                        "committing");
                return;
        }
        if (c->prod_handler == KS_HANDLER_FAIL) {
                if (!c->fatal)
                        c->fatal = ks_error_new(
                                KS_ERR_KAFKA,
                                "delivery to %s failed: %s (handler: fail)",
                                topic, rd_kafka_err2str(m->err));
                return;
        }
        ks__log_limited(&c->rl, ks__conf_int(t->s->conf, "log.rate.limit.ms"),
                        KS_LOG_WARNING, "delivery to %s failed: %s; record %s",
                        topic, rd_kafka_err2str(m->err),
                        c->prod_handler == KS_HANDLER_DEAD_LETTER
                                ? "sent to the dead-letter topic"
                                : "dropped");
        if (c->prod_handler == KS_HANDLER_DEAD_LETTER &&
            strcmp(topic, c->dlq_topic))
                dead_letter(c, m);
}

ks_error_t *ks__collector_flush(ks_record_collector_t *c, int timeout_ms) {
        rd_kafka_resp_err_t err = rd_kafka_flush(c->producer, timeout_ms);
        if (c->fatal || c->task_error)
                return ks_error_new(
                        KS_ERR_KAFKA, "%s",
                        ks_error_message(c->fatal ? c->fatal : c->task_error));
        if (err)
                return ks_error_set_retriable(
                        ks_error_new(KS_ERR_TIMED_OUT,
                                     "%d records not yet acknowledged (%s)",
                                     rd_kafka_outq_len(c->producer),
                                     rd_kafka_err2str(err)),
                        true);
        return NULL;
}

void ks__collector_purge(ks_record_collector_t *c) {
        c->purging = true;
        rd_kafka_purge(c->producer,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        /* Serves the purged records' reports: none may point into a task
         * after it closes. */
        rd_kafka_flush(c->producer, 5000);
        rd_kafka_poll(c->producer, 0);
        c->purging = false;
}
