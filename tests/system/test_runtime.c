/* The Kafka runtime against a real broker: scaling by processes, crashes,
 * repartition order, dead letters, start-up errors. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

static const char *bootstrap;

static void setup(void) {
        bootstrap = ks_test_require_service("KS_BOOTSTRAP");
}

#define NEED_BROKER()                                                          \
        do {                                                                   \
                if (!bootstrap)                                                \
                        return;                                                \
        } while (0)

/* The app id for a test (unique), its input and output topics with
 * @p partitions each (created), and its log file. */
static const char *app_topics(const char *prefix,
                              int partitions,
                              char in[160],
                              char out[160],
                              char log[200]) {
        const char *app = kt_unique(prefix);
        snprintf(in, 160, "%s-in", app);
        snprintf(out, 160, "%s-out", app);
        snprintf(log, 200, "%s/%s.log", KS_BINARY_DIR, app);
        kt_create_topic(bootstrap, in, partitions);
        kt_create_topic(bootstrap, out, partitions);
        return app;
}

static pid_t start_app(const char *app,
                       const char *in,
                       const char *out,
                       const char *mode,
                       const char *log) {
        const char *args[] = {"--bootstrap", bootstrap, "--app-id", app,
                              "--input",     in,        "--output", out,
                              "--mode",      mode,      NULL};
        return kt_spawn_app(log, args);
}

static void dump_log(const char *path) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "tail -n 30 %s >&2", path);
        if (system(cmd)) {
        }
}

/* Counts how often each id 0..n-1 appears in the output and which
 * instances produced it. */
static void tally(kt_record_t *recs,
                  size_t cnt,
                  int n,
                  int *seen,
                  int *distinct_pids) {
        int pids[16], npids = 0;
        memset(seen, 0, (size_t)n * sizeof(int));
        for (size_t i = 0; i < cnt; i++) {
                json_t *v = json_loads(recs[i].value, 0, NULL);
                ck_assert_msg(v, "output is not JSON: %s", recs[i].value);
                int id = (int)json_integer_value(json_object_get(v, "id"));
                int by = (int)json_integer_value(json_object_get(v, "by"));
                ck_assert(id >= 0 && id < n);
                seen[id]++;
                int k;
                for (k = 0; k < npids && pids[k] != by; k++)
                        ;
                if (k == npids && npids < 16)
                        pids[npids++] = by;
                json_decref(v);
        }
        *distinct_pids = npids;
}

/* 1 -> 2 -> 3 instances join while data flows; with @p kill, one is
 * SIGKILLed mid-way. Every input appears; without a crash exactly once. */
static void scale(bool kill) {
        const int waves = 6, per_wave = 4000, n = waves * per_wave;
        const char *app = kt_unique(kill ? "scale-kill" : "scale");
        char in[160], out[160], log[200];
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(out, sizeof(out), "%s-out", app);
        snprintf(log, sizeof(log), "%s/%s.log", KS_BINARY_DIR, app);
        kt_create_topic(bootstrap, in, 6);
        kt_create_topic(bootstrap, out, 6);
        pid_t pid[3];
        pid[0] = start_app(app, in, out, "filter", log);
        for (int w = 0; w < waves; w++) {
                kt_produce(bootstrap, in, w * per_wave, per_wave, "k", 101,
                           "{\"id\":%d}");
                if (w == 1)
                        pid[1] = start_app(app, in, out, "filter", log);
                if (w == 2)
                        pid[2] = start_app(app, in, out, "filter", log);
                if (w == 4 && kill)
                        kt_stop(pid[1], SIGKILL, 1000);
                usleep(1500 * 1000);
        }
        kt_record_t *recs;
        size_t cnt = kt_consume_all(bootstrap, out, (size_t)n, 120000, &recs);
        for (int i = 0; i < 3; i++) {
                if (kill && i == 1)
                        continue;
                int st = kt_stop(pid[i], SIGTERM, 30000);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        dump_log(log);
                ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                              "instance %d did not stop cleanly", i);
        }
        /* Records processed after the count was reached would show up as
         * duplicates: read again with what is there now. */
        kt_records_free(recs, cnt);
        cnt       = kt_consume_all(bootstrap, out, (size_t)n * 2, 5000, &recs);
        int *seen = calloc((size_t)n, sizeof(int)), pids;
        tally(recs, cnt, n, seen, &pids);
        int missing = 0, dups = 0;
        for (int i = 0; i < n; i++) {
                missing += seen[i] == 0;
                dups += seen[i] > 1 ? seen[i] - 1 : 0;
        }
        fprintf(stderr,
                "scale(kill=%d): %zu outputs for %d inputs, %d "
                "missing, %d duplicates, %d instances produced\n",
                kill, cnt, n, missing, dups, pids);
        if (missing)
                dump_log(log);
        ck_assert_int_eq(missing, 0);
        if (!kill)
                ck_assert_int_eq(dups, 0);
        ck_assert_int_ge(pids, kill ? 2 : 3);
        free(seen);
        kt_records_free(recs, cnt);
}

START_TEST(instances_join_while_data_flows_nothing_lost_nothing_doubled) {
        NEED_BROKER();
        scale(false);
}
END_TEST

START_TEST(an_instance_killed_with_sigkill_loses_nothing) {
        NEED_BROKER();
        scale(true);
}
END_TEST

#define ORDER_USERS 13
static void order_record(int i, char *key, char *value) {
        snprintf(key, 256, "u%d", i % ORDER_USERS);
        snprintf(value, 256, "{\"user\":\"u%d\",\"seq\":%d}", i % ORDER_USERS,
                 i);
}

START_TEST(repartition_keeps_per_key_order) {
        NEED_BROKER();
        const char *app = kt_unique("order");
        char in[160], out[160], log[200];
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(out, sizeof(out), "%s-out", app);
        snprintf(log, sizeof(log), "%s/%s.log", KS_BINARY_DIR, app);
        kt_create_topic(bootstrap, in, 6);
        kt_create_topic(bootstrap, out, 4);
        /* Keyed by user at the source, re-keyed by the "user" field through
         * a 6-partition repartition topic into a 4-partition output: every
         * record crosses partitions twice and each user's order must hold. */
        const int n = 6000;
        kt_produce_gen(bootstrap, in, n, order_record);
        pid_t pid = start_app(app, in, out, "repartition", log);
        kt_record_t *recs;
        size_t cnt = kt_consume_all(bootstrap, out, (size_t)n, 90000, &recs);
        int st     = kt_stop(pid, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_uint_eq(cnt, (size_t)n);
        int last[ORDER_USERS];
        for (int u = 0; u < ORDER_USERS; u++)
                last[u] = -1;
        for (size_t i = 0; i < cnt; i++) {
                json_t *v = json_loads(recs[i].value, 0, NULL);
                int u     = atoi(recs[i].key + 1);
                int seq   = (int)json_integer_value(json_object_get(v, "seq"));
                ck_assert_msg(seq > last[u], "user u%d: %d after %d", u, seq,
                              last[u]);
                last[u] = seq;
                json_decref(v);
        }
        kt_records_free(recs, cnt);
}
END_TEST

/* Partitions are paused when their buffer fills and resumed when it
 * drains: with a buffer of 20 records that happens thousands of times,
 * and no record may be skipped or repeated. (librdkafka 2.0.2's batch
 * consume API can skip offsets around pause and resume, by its 2.1.0
 * CHANGELOG; the stream loop consumes one message at a time, and this
 * guards that path.) */
START_TEST(pausing_full_partitions_loses_nothing) {
        NEED_BROKER();
        char in[160], out[160], log[200];
        const char *app = app_topics("pause", 3, in, out, log);
        const int n     = 30000;
        kt_produce_gen(bootstrap, in, n, order_record);
        const char *args[] = {"--bootstrap", bootstrap,    "--app-id",
                              app,           "--input",    in,
                              "--output",    out,          "--mode",
                              "repartition", "--buffered", "20",
                              NULL};
        pid_t pid          = kt_spawn_app(log, args);
        kt_record_t *recs;
        size_t cnt = kt_consume_all(bootstrap, out, (size_t)n, 120000, &recs);
        int st     = kt_stop(pid, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        kt_records_free(recs, cnt);
        cnt       = kt_consume_all(bootstrap, out, (size_t)n * 2, 5000, &recs);
        int *seen = calloc((size_t)n, sizeof(int));
        int missing = 0, dups = 0;
        for (size_t i = 0; i < cnt; i++) {
                json_t *v = json_loads(recs[i].value, 0, NULL);
                int seq   = (int)json_integer_value(json_object_get(v, "seq"));
                ck_assert(seq >= 0 && seq < n);
                seen[seq]++;
                json_decref(v);
        }
        for (int i = 0; i < n; i++) {
                missing += seen[i] == 0;
                dups += seen[i] > 1;
        }
        fprintf(stderr,
                "pausing: %zu outputs for %d inputs, %d missing, %d "
                "repeated\n",
                cnt, n, missing, dups);
        ck_assert_int_eq(missing, 0);
        ck_assert_int_eq(dups, 0);
        free(seen);
        kt_records_free(recs, cnt);
}
END_TEST

/* The same under load: a count that reads a repartition topic its own
 * instance writes, slower than the writer, so that its partitions fill
 * and pause. Every user's final count must be exact. */
START_TEST(a_paused_repartitioned_count_loses_nothing) {
        NEED_BROKER();
        char in[160], out[160], log[200];
        const char *app    = app_topics("pausecount", 6, in, out, log);
        const int per_user = 15000, n = ORDER_USERS * per_user;
        kt_produce_gen(bootstrap, in, n, order_record);
        const char *args[] = {"--bootstrap", bootstrap,
                              "--app-id",    app,
                              "--input",     in,
                              "--output",    out,
                              "--mode",      "repartition-count",
                              "--buffered",  "2000",
                              NULL};
        pid_t pid          = kt_spawn_app(log, args);
        int64_t latest[ORDER_USERS];
        kt_await_counts(bootstrap, out, ORDER_USERS, per_user, 80000, latest);
        int st = kt_stop(pid, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        for (int u = 0; u < ORDER_USERS; u++)
                ck_assert_msg(latest[u] == per_user,
                              "user u%d counted %lld of %d", u,
                              (long long)latest[u], per_user);
}
END_TEST

/* Repartition topics have no time retention (records keep their event
 * timestamps: replayed old events would be deleted before they were read)
 * and are purged instead up to the committed offsets. */
START_TEST(repartition_topics_are_purged_not_expired) {
        NEED_BROKER();
        char in[160], out[160], log[200], rep[200], val[64];
        const char *app = app_topics("purge", 2, in, out, log);
        snprintf(rep, sizeof(rep), "%s-by-user-repartition", app);
        const int n = 4000;
        kt_produce_gen(bootstrap, in, n, order_record);
        const char *args[] = {"--bootstrap", bootstrap,    "--app-id",
                              app,           "--input",    in,
                              "--output",    out,          "--mode",
                              "repartition", "--purge-ms", "300",
                              NULL};
        pid_t pid          = kt_spawn_app(log, args);
        kt_record_t *recs;
        size_t cnt = kt_consume_all(bootstrap, out, (size_t)n, 90000, &recs);
        kt_records_free(recs, cnt);
        ck_assert_uint_eq(cnt, (size_t)n);
        ck_assert(kt_topic_config(bootstrap, rep, "retention.ms", val,
                                  sizeof(val)));
        ck_assert_str_eq(val, "-1");
        /* Every record was processed and committed (every 200 ms): the
         * purge (every 300 ms) deletes them, partition by partition. */
        int64_t purged = 0;
        for (int tries = 0; tries < 100 && purged < n; tries++) {
                purged = 0;
                for (int32_t p = 0; p < 2; p++)
                        purged += kt_low_watermark(bootstrap, rep, p);
                usleep(100 * 1000);
        }
        int st = kt_stop(pid, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_int_eq(purged, n);
}
END_TEST

START_TEST(malformed_records_go_to_the_dead_letter_topic) {
        NEED_BROKER();
        const char *app = kt_unique("dlq");
        char in[160], out[160], dlq[160], log[200];
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(out, sizeof(out), "%s-out", app);
        snprintf(dlq, sizeof(dlq), "%s-dlq", app);
        snprintf(log, sizeof(log), "%s/%s.log", KS_BINARY_DIR, app);
        kt_create_topic(bootstrap, in, 2);
        kt_create_topic(bootstrap, out, 2);
        kt_create_topic(bootstrap, dlq, 1);
        kt_produce(bootstrap, in, 0, 50, "k", 5, "{\"id\":%d}");
        kt_produce_raw(bootstrap, in, "bad1", "{\"id\":", 6);
        kt_produce_raw(bootstrap, in, "bad2", "\xff\xfe", 2);
        kt_produce(bootstrap, in, 50, 50, "k", 5, "{\"id\":%d}");
        const char *args[] = {"--bootstrap", bootstrap, "--app-id", app,
                              "--input",     in,        "--output", out,
                              "--dlq",       dlq,       NULL};
        pid_t pid          = kt_spawn_app(log, args);
        kt_record_t *recs, *dead;
        size_t cnt  = kt_consume_all(bootstrap, out, 100, 60000, &recs);
        size_t ndlq = kt_consume_all(bootstrap, dlq, 2, 30000, &dead);
        int st      = kt_stop(pid, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_uint_eq(cnt, 100); /* processing went on after them */
        ck_assert_uint_eq(ndlq, 2);
        for (size_t i = 0; i < ndlq; i++) {
                const kt_record_t *r = &dead[i];
                ck_assert(!strcmp(r->key, "bad1") || !strcmp(r->key, "bad2"));
                if (!strcmp(r->key, "bad1"))
                        ck_assert_str_eq(r->value, "{\"id\":");
                ck_assert_str_eq(kt_header(r, "__streams.errors.exception"),
                                 "KS_ERR_JSON");
                ck_assert_str_eq(kt_header(r, "__streams.errors.topic"), in);
                ck_assert_ptr_nonnull(kt_header(r, "__streams.errors.offset"));
                ck_assert_ptr_nonnull(
                        kt_header(r, "__streams.errors.partition"));
                ck_assert_ptr_nonnull(kt_header(r, "__streams.errors.message"));
        }
        kt_records_free(recs, cnt);
        kt_records_free(dead, ndlq);
}
END_TEST

static ks_error_t *try_start(const char *app,
                             const char *a,
                             const char *b,
                             const char *server) {
        char err[512];
        ks_builder_t *bld = ks_builder_new();
        ks_stream_t *s1 =
                ks_builder_stream(bld, a, ks_serde_string(), ks_serde_string());
        ks_stream_t *s = s1;
        if (b)
                s = ks_stream_merge(s1,
                                    ks_builder_stream(bld, b, ks_serde_string(),
                                                      ks_serde_string()),
                                    NULL);
        ks_stream_to(s, "unused-out", NULL, NULL);
        ks_topology_t *t = ks_builder_build(bld, err, sizeof(err));
        ks_builder_destroy(bld);
        ks_conf_t *conf = ks_conf_new();
        ks_conf_set(conf, "application.id", app, err, sizeof(err));
        ks_conf_set(conf, "bootstrap.servers", server, err, sizeof(err));
        ks_conf_set(conf, "startup.timeout.ms", "3000", err, sizeof(err));
        ks_streams_t *st = ks_streams_new(t, conf, err, sizeof(err));
        ck_assert_msg(st, "%s", err);
        ks_conf_destroy(conf);
        ks_error_t *e = ks_streams_start(st);
        ks_error_destroy(ks_streams_close(st, 10000));
        ks_streams_destroy(st);
        ks_topology_destroy(t);
        return e;
}

START_TEST(co_partitioning_mismatch_fails_at_start_naming_the_topics) {
        NEED_BROKER();
        const char *app = kt_unique("copart");
        char a[160], b[160], want[600];
        snprintf(a, sizeof(a), "%s-a", app);
        snprintf(b, sizeof(b), "%s-b", app);
        kt_create_topic(bootstrap, a, 3);
        kt_create_topic(bootstrap, b, 2);
        ks_error_t *e = try_start(app, a, b, bootstrap);
        ck_assert_ptr_nonnull(e);
        snprintf(want, sizeof(want),
                 "sub-topology 0 reads topics that are not co-partitioned: "
                 "%s has 3 partitions, %s has 2",
                 a, b);
        ck_assert_msg(strstr(ks_error_message(e), want), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);
}
END_TEST

START_TEST(missing_source_topics_fail_at_start) {
        NEED_BROKER();
        const char *app = kt_unique("missing");
        ks_error_t *e   = try_start(app, "no-such-topic-xyz", NULL, bootstrap);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(strstr(ks_error_message(e),
                             "source topics missing: no-such-topic-xyz"),
                      "%s", ks_error_message(e));
        ks_error_destroy(e);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("runtime");
        TCase *tc = tcase_create("runtime");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 280);
        tcase_add_test(
                tc,
                instances_join_while_data_flows_nothing_lost_nothing_doubled);
        tcase_add_test(tc, an_instance_killed_with_sigkill_loses_nothing);
        tcase_add_test(tc, pausing_full_partitions_loses_nothing);
        tcase_add_test(tc, a_paused_repartitioned_count_loses_nothing);
        tcase_add_test(tc, repartition_topics_are_purged_not_expired);
        tcase_add_test(tc, repartition_keeps_per_key_order);
        tcase_add_test(tc, malformed_records_go_to_the_dead_letter_topic);
        tcase_add_test(
                tc, co_partitioning_mismatch_fails_at_start_naming_the_topics);
        tcase_add_test(tc, missing_source_topics_fail_at_start);
        suite_add_tcase(s, tc);
        return s;
}
