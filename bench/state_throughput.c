/* State on a real broker: restoring a 1,000,000-key store from its
 * changelog, and the throughput of a windowed count, each next to its
 * baseline in the same run.
 *
 *   bench_state_throughput --bootstrap HOST:PORT [--keys N] [--records N]
 *
 * Restoration's baseline is the floor of any restore: a raw librdkafka read
 * of the same changelog with raw LMDB puts (100k per transaction). The
 * windowed count's baseline is a raw librdkafka consume + produce pipe over
 * the same events; the count runs twice, with the record cache at its
 * default (updates of a window within a commit interval collapse) and off
 * (every update is logged and sent, as the pipe sends every record). */
#include <getopt.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kstreams/kstreams.h>

#include "common/bench_kafka.h"
#include "common/user_event_serde.h"

static void fill_changelog(const char *bootstrap,
                           const char *topic,
                           long keys) {
        rd_kafka_t *rk = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        const unsigned char one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
        char key[32];
        for (long i = 0; i < keys; i++) {
                snprintf(key, sizeof(key), "key-%09ld", i);
                while (rd_kafka_producev(
                               rk, RD_KAFKA_V_TOPIC(topic),
                               RD_KAFKA_V_PARTITION(0),
                               RD_KAFKA_V_KEY(key, strlen(key)),
                               RD_KAFKA_V_VALUE((void *)one, 8),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 10);
        }
        rd_kafka_flush(rk, 120000);
        rd_kafka_destroy(rk);
}

/* Raw librdkafka read of the changelog + raw mdb_put, 100k per txn. */
static double raw_restore(const char *bootstrap,
                          const char *topic,
                          long keys,
                          const char *dir) {
        char group[64];
        snprintf(group, sizeof(group), "bench-raw-restore-%d", (int)getpid());
        rd_kafka_t *rk = bench_client(RD_KAFKA_CONSUMER, bootstrap, group);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, 0)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        mdb_env_create(&env);
        mdb_env_set_mapsize(env, (size_t)4 << 30);
        if (mdb_env_open(env, dir, 0, 0644)) {
                fprintf(stderr, "bench: mdb_env_open %s failed\n", dir);
                exit(1);
        }
        mdb_txn_begin(env, NULL, 0, &txn);
        mdb_dbi_open(txn, NULL, 0, &dbi);
        rd_kafka_message_t *batch[1000];
        long got = 0, in_txn = 0;
        double t0 = 0; /* from the first record, as kstreams' restore_ms */
        while (got < keys) {
                ssize_t n = rd_kafka_consume_batch_queue(q, 1000, batch, 1000);
                for (ssize_t i = 0; i < n; i++) {
                        rd_kafka_message_t *m = batch[i];
                        if (!m->err && !t0)
                                t0 = bench_now_s();
                        if (!m->err) {
                                MDB_val k = {m->key_len, m->key};
                                MDB_val v = {m->len, m->payload};
                                mdb_put(txn, dbi, &k, &v, 0);
                                got++;
                                if (++in_txn == 100000) {
                                        mdb_txn_commit(txn);
                                        mdb_txn_begin(env, NULL, 0, &txn);
                                        in_txn = 0;
                                }
                        }
                        rd_kafka_message_destroy(m);
                }
        }
        mdb_txn_commit(txn);
        double secs = bench_now_s() - t0;
        mdb_env_close(env);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        return secs;
}

static ks_streams_t *start_app(const char *bootstrap,
                               const char *app,
                               ks_topology_t *t,
                               const char *state_dir,
                               const char *cache_bytes) {
        char err[512];
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", app, err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "state.dir", state_dir, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "1000", err, sizeof(err));
        ks_conf_set(c, "producer.linger.ms", "20", err, sizeof(err));
        ks_conf_set(c, "statestore.cache.max.bytes", cache_bytes, err,
                    sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ks_conf_destroy(c);
        ks_error_t *e = s ? ks_streams_start(s) : NULL;
        if (!s || e) {
                fprintf(stderr, "bench: %s\n", s ? ks_error_message(e) : err);
                exit(1);
        }
        return s;
}

static double kstreams_restore(const char *bootstrap,
                               const char *app,
                               const char *in,
                               long keys,
                               const char *state_dir,
                               double *wall) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(ks_table_to_stream(
                             ks_grouped_count(
                                     ks_stream_group_by_key(
                                             ks_builder_stream(
                                                     b, in, ks_serde_string(),
                                                     ks_serde_string()),
                                             NULL, NULL),
                                     "counts"),
                             NULL),
                     "bench-unused-out", NULL, NULL);
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        double t0       = bench_now_s();
        ks_streams_t *s = start_app(bootstrap, app, t, state_dir, "0");
        ks_streams_metrics_t m;
        do {
                usleep(5000);
                ks_streams_metrics(s, &m);
                if (ks_streams_state(s) == KS_STATE_ERROR) {
                        fprintf(stderr, "bench: restoration failed\n");
                        exit(1);
                }
        } while ((long)m.records_restored < keys);
        *wall = bench_now_s() - t0;
        ks_error_destroy(ks_streams_close(s, 60000));
        ks_streams_metrics(s, &m);
        ks_streams_destroy(s);
        ks_topology_destroy(t);
        return (double)m.restore_ms / 1000.0;
}

static const void *type_of(ks_arena_t *a,
                           const void *key,
                           const void *value,
                           void *opaque) {
        (void)a, (void)key, (void)opaque;
        return ((const user_event_t *)value)->event_type; /* borrowed */
}

/* A windowed count per user and minute (grace 10 s), or (@p by_type) per
 * event type and minute through a repartition topic (grace 2 days): a
 * handful of keys updated by every record, where the record cache has the
 * most to collapse. */
static double windowed_count(const char *bootstrap,
                             const char *app,
                             const char *in,
                             const char *out,
                             long n,
                             const char *state_dir,
                             const char *cache_bytes,
                             bool by_type,
                             ks_streams_metrics_t *out_metrics) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *ev = ks_stream_with_timestamps(
                ks_builder_stream(b, in, ks_serde_string(), user_event_serde()),
                user_event_timestamp_extractor());
        ks_grouped_t *g = by_type ? ks_stream_group_by(ev, "by-type", type_of,
                                                       NULL, ks_serde_string(),
                                                       user_event_serde())
                                  : ks_stream_group_by_key(ev, NULL, NULL);
        ks_table_t *counts = ks_windowed_count(
                /* By type, the six upstream tasks replay a day of events
                 * each at its own pace into one repartition topic: a
                 * grace of 10 s would drop most of them as late. */
                ks_grouped_windowed_by(
                        g,
                        ks_tumbling_window(60000, by_type ? 172800000 : 10000)),
                by_type ? "per-type-minute" : "per-user-minute");
        ks_stream_to(ks_table_to_stream(counts, NULL), out, NULL, NULL);
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_streams_t *s = start_app(bootstrap, app, t, state_dir, cache_bytes);
        ks_streams_metrics_t m;
        double start = 0, last = bench_now_s();
        for (;;) {
                ks_streams_metrics(s, &m);
                if (ks_streams_state(s) == KS_STATE_ERROR) {
                        fprintf(stderr, "bench: the windowed count failed\n");
                        exit(1);
                }
                if (!start && m.records_processed > 0)
                        start = bench_now_s();
                if (bench_now_s() - last > 10) {
                        last = bench_now_s();
                        fprintf(stderr,
                                "bench: windowed count: %llu of %ld "
                                "processed\n",
                                (unsigned long long)m.records_processed, n);
                }
                /* By type, every event is processed twice: before and
                 * after the repartition topic. */
                if ((long)m.records_processed >= (by_type ? 2 * n : n))
                        break;
                usleep(2000);
        }
        /* Until close returns: its commit flushes the record caches and
         * waits for every output record to be acknowledged, so a cached
         * run pays for what it still holds. */
        ks_error_destroy(ks_streams_close(s, 60000));
        double secs = bench_now_s() - start;
        ks_streams_metrics(s, out_metrics);
        ks_streams_destroy(s);
        ks_topology_destroy(t);
        return secs;
}

static void print_count(const char *label,
                        long records,
                        double secs,
                        uint64_t updates,
                        uint64_t late) {
        printf("  %-48s %10.0f records/s  (%llu updates sent, %llu late)\n",
               label, (double)records / secs, (unsigned long long)updates,
               (unsigned long long)late);
}

int main(int argc, char **argv) {
        const char *bootstrap = NULL;
        long keys = 1000000, records = 1000000;
        static const struct option opts[] = {{"bootstrap", 1, NULL, 'b'},
                                             {"keys", 1, NULL, 'k'},
                                             {"records", 1, NULL, 'n'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        int ch;
        while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (ch == 'b')
                        bootstrap = optarg;
                else if (ch == 'k')
                        keys = atol(optarg);
                else if (ch == 'n')
                        records = atol(optarg);
                else {
                        fprintf(stderr,
                                "usage: bench_state_throughput "
                                "--bootstrap HOST:PORT [--keys N] "
                                "[--records N]\n");
                        return ch == 'h' ? 0 : 2;
                }
        }
        if (!bootstrap || keys < 1 || records < 1) {
                fprintf(stderr, "bench: --bootstrap is required\n");
                return 2;
        }
        char app[64], in[128], changelog[160], dir[] = "/tmp/ks-bench-XXXXXX";
        char rawdir[64], statedir[64], cmd[200];
        if (!mkdtemp(dir))
                return 1;
        snprintf(rawdir, sizeof(rawdir), "%s/raw", dir);
        snprintf(statedir, sizeof(statedir), "%s/state", dir);
        snprintf(cmd, sizeof(cmd), "mkdir -p %s %s", rawdir, statedir);
        if (system(cmd))
                return 1;

        /* A store's changelog with one record per key, as a task that
         * counted 1M keys leaves it. */
        snprintf(app, sizeof(app), "bench-restore-%d", (int)getpid());
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(changelog, sizeof(changelog), "%s-counts-changelog", app);
        rd_kafka_t *admin = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        bench_create_topic(admin, in, 1, NULL);
        bench_create_topic(admin, changelog, 1, "compact");
        fill_changelog(bootstrap, changelog, keys);
        double traw = raw_restore(bootstrap, changelog, keys, rawdir);
        double wall;
        double tks =
                kstreams_restore(bootstrap, app, in, keys, statedir, &wall);

        /* A windowed count per user and minute over user events. */
        char app2[64], app3[64], app4[64], app5[64];
        char events[128], out[128], pipe_out[128];
        snprintf(app2, sizeof(app2), "bench-window-%d", (int)getpid());
        snprintf(app3, sizeof(app3), "bench-window-nocache-%d", (int)getpid());
        snprintf(app4, sizeof(app4), "bench-type-%d", (int)getpid());
        snprintf(app5, sizeof(app5), "bench-type-nocache-%d", (int)getpid());
        snprintf(events, sizeof(events), "%s-events", app2);
        snprintf(out, sizeof(out), "%s-out", app2);
        snprintf(pipe_out, sizeof(pipe_out), "%s-pipe", app2);
        bench_create_topic(admin, events, 6, NULL);
        bench_create_topic(admin, out, 6, NULL);
        bench_create_topic(admin, pipe_out, 6, NULL);
        rd_kafka_destroy(admin);
        bench_produce_events(bootstrap, events, records);
        double tpipe = bench_raw_pipe(bootstrap, events, pipe_out, records);
        ks_streams_metrics_t mc, mn, tc, tn;
        double twin     = windowed_count(bootstrap, app2, events, out, records,
                                         statedir, "10485760", false, &mc);
        double tnocache = windowed_count(bootstrap, app3, events, out, records,
                                         statedir, "0", false, &mn);
        double ttype    = windowed_count(bootstrap, app4, events, out, records,
                                         statedir, "10485760", true, &tc);
        double ttypen   = windowed_count(bootstrap, app5, events, out, records,
                                         statedir, "0", true, &tn);

        printf("state on a real broker (one broker on this machine)\n");
        printf("restoring a %ld-key store from its changelog:\n", keys);
        printf("  %-48s %10.0f records/s\n",
               "raw librdkafka read + raw mdb_put (baseline)",
               (double)keys / traw);
        printf("  %-48s %10.0f records/s  (%.1f s from start to running)\n",
               "kstreams restoration (restore consumer -> LMDB)",
               (double)keys / tks, wall);
        printf("  kstreams / baseline = %.2f\n", traw / tks);
        printf("windowed count (60 s tumbling, per user), %ld user events, "
               "6 partitions:\n",
               records);
        printf("  %-48s %10.0f records/s\n",
               "raw librdkafka pipe, consume + produce (baseline)",
               (double)records / tpipe);
        print_count("kstreams, record cache 10 MiB (the default)", records,
                    twin, mc.cache_flushed, mc.dropped_late);
        print_count("kstreams, statestore.cache.max.bytes=0", records, tnocache,
                    mn.records_produced, mn.dropped_late);
        printf("  kstreams / baseline = %.2f (cache), %.2f (no cache)\n",
               tpipe / twin, tpipe / tnocache);
        /* Without a cache every record is one update: the records produced
         * are the repartitioned events plus the updates. */
        printf("windowed count per event type and minute (group_by: a "
               "repartition topic), same events:\n");
        print_count("kstreams, record cache 10 MiB (the default)", records,
                    ttype, tc.cache_flushed, tc.dropped_late);
        print_count("kstreams, statestore.cache.max.bytes=0", records, ttypen,
                    tn.records_produced - (uint64_t)records, tn.dropped_late);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        return system(cmd) ? 1 : 0;
}
