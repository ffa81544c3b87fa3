/* Throughput of a stateless JSON topology on a real broker, next to a raw
 * librdkafka consume loop over the same records in the same run.
 *
 *   bench_stateless_throughput --bootstrap HOST:PORT [--records N]
 *
 * Both read the same topic from the beginning; the raw loop only counts
 * records, kstreams decodes every event (fast JSON path), filters, maps,
 * re-encodes and produces to an output topic, committing as it goes. A
 * raw librdkafka pipe (consume + produce, no decoding) is the fair peer.
 *
 * Knobs for profiling (environment): BENCH_REUSE_TOPIC=<topic> runs only
 * the kstreams phase over an existing topic; BENCH_DROP_ALL=1 filters
 * everything out (consume side alone); BENCH_POLL_MS and BENCH_BUFFERED set
 * poll.ms and buffered.records.per.partition. */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kstreams/kstreams.h>

#include "common/event_gen.h"
#include "common/user_event_serde.h"

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rd_kafka_t *client(rd_kafka_type_t type,
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

static void create_topic(rd_kafka_t *rk, const char *name, int partitions) {
        char err[256];
        rd_kafka_NewTopic_t *t =
                rd_kafka_NewTopic_new(name, partitions, -1, err, sizeof(err));
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &t, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(t);
        sleep(1);
}

static void produce_events(const char *bootstrap,
                           const char *topic,
                           long n,
                           double *mb) {
        rd_kafka_t *rk   = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
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
        *mb = (double)bytes / 1e6;
}

/* The baseline: the fastest plain librdkafka read of the same topic. */
static double raw_consume(const char *bootstrap, const char *topic, long n) {
        char group[128];
        snprintf(group, sizeof(group), "bench-raw-%d", (int)getpid());
        rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, bootstrap, group);
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
        double start = now_s();
        while (got < n) {
                ssize_t k = rd_kafka_consume_batch_queue(q, 1000, batch, 1000);
                for (ssize_t i = 0; i < k; i++) {
                        got += !batch[i]->err;
                        rd_kafka_message_destroy(batch[i]);
                }
        }
        double secs = now_s() - start;
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        return secs;
}

/* The fair baseline: a hand-written librdkafka pipe that consumes and
 * produces every record to an output topic, with no decoding. */
static double raw_pipe(const char *bootstrap,
                       const char *topic,
                       const char *out,
                       long n) {
        char group[128];
        snprintf(group, sizeof(group), "bench-pipe-%d", (int)getpid());
        rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, bootstrap, group);
        rd_kafka_t *pr = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
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
        double start = now_s();
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
        double secs = now_s() - start;
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        rd_kafka_destroy(pr);
        return secs;
}

static bool not_logout(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        if (getenv("BENCH_DROP_ALL")) /* isolates the consume side */
                return false;
        return strcmp(((const user_event_t *)v)->event_type, "logout") != 0;
}

static const void *anonymize(ks_arena_t *a,
                             const void *k,
                             const void *v,
                             void *o) {
        (void)k, (void)o;
        user_event_t *copy = ks_arena_memdup(a, v, sizeof(user_event_t));
        copy->user_id      = "anonymous";
        copy->session_id   = NULL;
        return copy;
}

static double kstreams_run(const char *bootstrap,
                           const char *topic,
                           const char *out,
                           long n,
                           uint64_t *produced) {
        char err[512], app[128];
        snprintf(app, sizeof(app), "bench-ks-%d", (int)getpid());
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, topic, ks_serde_string(),
                                            user_event_serde());
        s = ks_stream_with_timestamps(s, user_event_timestamp_extractor());
        ks_stream_to(ks_stream_map_values(ks_stream_filter(s, "not-logout",
                                                           not_logout, NULL),
                                          "anonymize", anonymize, NULL),
                     out, NULL, user_event_serde());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", app, err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "1000", err, sizeof(err));
        if (getenv("BENCH_POLL_MS"))
                ks_conf_set(c, "poll.ms", getenv("BENCH_POLL_MS"), err,
                            sizeof(err));
        if (getenv("BENCH_BUFFERED"))
                ks_conf_set(c, "buffered.records.per.partition",
                            getenv("BENCH_BUFFERED"), err, sizeof(err));
        ks_conf_set(c, "producer.linger.ms", "20", err, sizeof(err));
        ks_conf_set(c, "producer.batch.size", "1000000", err, sizeof(err));
        ks_streams_t *st = ks_streams_new(t, c, err, sizeof(err));
        ks_error_t *e    = ks_streams_start(st);
        if (e) {
                fprintf(stderr, "bench: %s\n", ks_error_message(e));
                exit(1);
        }
        /* Time from the first record processed, so group join is out. */
        ks_streams_metrics_t m;
        double start = 0;
        for (;;) {
                ks_streams_metrics(st, &m);
                if (!start && m.records_processed > 0)
                        start = now_s();
                if ((long)m.records_processed >= n)
                        break;
                usleep(2000);
        }
        double secs = now_s() - start;
        ks_error_destroy(ks_streams_close(st, 60000));
        ks_streams_metrics(st, &m);
        *produced = m.records_produced;
        ks_streams_destroy(st);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        return secs;
}

int main(int argc, char **argv) {
        const char *bootstrap             = NULL;
        long n                            = 1000000;
        static const struct option opts[] = {{"bootstrap", 1, NULL, 'b'},
                                             {"records", 1, NULL, 'n'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        int ch;
        while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (ch == 'b')
                        bootstrap = optarg;
                else if (ch == 'n')
                        n = atol(optarg);
                else {
                        fprintf(stderr,
                                "usage: bench_stateless_throughput "
                                "--bootstrap HOST:PORT [--records "
                                "N]\n");
                        return ch == 'h' ? 0 : 2;
                }
        }
        if (!bootstrap || n < 1) {
                fprintf(stderr, "bench: --bootstrap is required\n");
                return 2;
        }
        char in[128], out[128];
        snprintf(in, sizeof(in), "bench-in-%d", (int)getpid());
        /* BENCH_REUSE_TOPIC=name: profile the kstreams phase alone. */
        if (getenv("BENCH_REUSE_TOPIC")) {
                snprintf(out, sizeof(out), "bench-out-%d", (int)getpid());
                uint64_t produced;
                double t = kstreams_run(bootstrap, getenv("BENCH_REUSE_TOPIC"),
                                        out, n, &produced);
                printf("kstreams: %.0f records/s\n", (double)n / t);
                return 0;
        }
        snprintf(out, sizeof(out), "bench-out-%d", (int)getpid());
        rd_kafka_t *admin = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        create_topic(admin, in, 6);
        create_topic(admin, out, 6);
        rd_kafka_destroy(admin);
        double mb, t0 = now_s();
        produce_events(bootstrap, in, n, &mb);
        double tprod = now_s() - t0;
        double traw  = raw_consume(bootstrap, in, n);
        char pipe_out[160];
        snprintf(pipe_out, sizeof(pipe_out), "%s-pipe", out);
        double tpipe = raw_pipe(bootstrap, in, pipe_out, n);
        uint64_t produced;
        double tks = kstreams_run(bootstrap, in, out, n, &produced);
        printf("stateless throughput, %ld user events (%.1f MB, %.0f B "
               "avg), 6 partitions, one broker on this machine\n",
               n, mb, mb * 1e6 / (double)n);
        printf("  %-44s %10.0f records/s\n", "produce (setup, librdkafka)",
               (double)n / tprod);
        printf("  %-44s %10.0f records/s\n",
               "raw librdkafka consume loop (count only)", (double)n / traw);
        printf("  %-44s %10.0f records/s\n",
               "raw librdkafka pipe (consume + produce)", (double)n / tpipe);
        printf("  %-44s %10.0f records/s  (%llu produced)\n",
               "kstreams: decode, filter, map, encode, produce",
               (double)n / tks, (unsigned long long)produced);
        printf("  kstreams / raw consume = %.2f, kstreams / raw pipe = %.2f\n",
               traw / tks, tpipe / tks);
        return 0;
}
