/* Helpers shared by the benchmarks that talk to a real broker. */
#include <sys/resource.h>
#include "bench_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kstreams/kstreams.h>

#include "common/event_gen.h"

double bench_now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

rd_kafka_t *bench_client(rd_kafka_type_t type,
                         const char *bootstrap,
                         const char *group) {
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set(c, "linger.ms", "20", err, sizeof(err));
                rd_kafka_conf_set(c, "batch.size", "1000000", err, sizeof(err));
        } else {
                rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
                rd_kafka_conf_set(c, "queued.min.messages", "100000", err,
                                  sizeof(err));
                rd_kafka_conf_set(c, "queued.max.messages.kbytes", "65536", err,
                                  sizeof(err));
        }
        rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "bench: %s\n", err);
                exit(1);
        }
        return rk;
}

void bench_create_topic(rd_kafka_t *rk,
                        const char *name,
                        int partitions,
                        const char *cleanup_policy) {
        char err[256];
        rd_kafka_NewTopic_t *t =
                rd_kafka_NewTopic_new(name, partitions, -1, err, sizeof(err));
        if (cleanup_policy)
                rd_kafka_NewTopic_set_config(t, "cleanup.policy",
                                             cleanup_policy);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &t, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(t);
        sleep(1);
}

double bench_produce_events(const char *bootstrap, const char *topic, long n) {
        rd_kafka_t *rk   = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        event_gen_t *gen = event_gen_new(7, 1765533600000, 10000);
        ks_buf_t buf     = {0};
        user_event_t ev;
        size_t bytes = 0;
        for (long i = 0; i < n; i++) {
                event_gen_next(gen, &ev);
                ks_buf_clear(&buf);
                user_event_encode(&ev, &buf);
                bytes += buf.len;
                while (rd_kafka_producev(
                               rk, RD_KAFKA_V_TOPIC(topic),
                               RD_KAFKA_V_KEY(ev.user_id, strlen(ev.user_id)),
                               RD_KAFKA_V_VALUE(buf.data, buf.len),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 10);
        }
        rd_kafka_flush(rk, 120000);
        rd_kafka_destroy(rk);
        ks_buf_free(&buf);
        event_gen_destroy(gen);
        return (double)bytes / 1e6;
}

/* The baseline: the fastest plain librdkafka read of the same topic. */
double bench_raw_consume(const char *bootstrap, const char *topic, long n) {
        char group[128];
        snprintf(group, sizeof(group), "bench-raw-%d", (int)getpid());
        rd_kafka_t *rk = bench_client(RD_KAFKA_CONSUMER, bootstrap, group);
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        int parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        rd_kafka_message_t *batch[1000];
        long got     = 0;
        double start = bench_now_s();
        while (got < n) {
                ssize_t k = rd_kafka_consume_batch_queue(q, 1000, batch, 1000);
                for (ssize_t i = 0; i < k; i++) {
                        got += !batch[i]->err;
                        rd_kafka_message_destroy(batch[i]);
                }
        }
        double secs = bench_now_s() - start;
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        return secs;
}

/* The fair baseline: a hand-written librdkafka pipe that consumes and
 * produces every record to an output topic, with no decoding. */
double bench_raw_pipe(const char *bootstrap,
                      const char *topic,
                      const char *out,
                      long n) {
        char group[128];
        snprintf(group, sizeof(group), "bench-pipe-%d", (int)getpid());
        rd_kafka_t *rk = bench_client(RD_KAFKA_CONSUMER, bootstrap, group);
        rd_kafka_t *pr = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        int parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        rd_kafka_message_t *batch[1000];
        long got     = 0;
        double start = bench_now_s();
        while (got < n) {
                ssize_t k = rd_kafka_consume_batch_queue(q, 1000, batch, 1000);
                for (ssize_t i = 0; i < k; i++) {
                        rd_kafka_message_t *m = batch[i];
                        if (!m->err) {
                                got++;
                                while (rd_kafka_producev(
                                               pr, RD_KAFKA_V_TOPIC(out),
                                               RD_KAFKA_V_KEY(m->key,
                                                              m->key_len),
                                               RD_KAFKA_V_VALUE(m->payload,
                                                                m->len),
                                               RD_KAFKA_V_MSGFLAGS(
                                                       RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END) ==
                                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                        rd_kafka_poll(pr, 10);
                        }
                        rd_kafka_message_destroy(m);
                }
                rd_kafka_poll(pr, 0);
        }
        rd_kafka_flush(pr, 120000);
        double secs = bench_now_s() - start;
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        rd_kafka_destroy(pr);
        return secs;
}

double bench_cpu_s(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
