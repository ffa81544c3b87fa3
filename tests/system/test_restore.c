/* Restoration on the real broker, each case a defect the restructured
 * runtime fixed:
 * - a changelog ending in a transaction marker, or in an aborted
 *   transaction, restores and the task runs (restoration ends by the
 *   consumer's position, not by a delivered record);
 * - a checkpoint past the changelog's end (the topic was recreated) wipes
 *   the store and rebuilds it from the changelog;
 * - a task restoring a 1M-record changelog does not stop another task of
 *   the same thread from producing output (restoration runs in the poll
 *   loop, not in the rebalance callback);
 * - a changelog record that cannot be delivered fails the task under the
 *   log-and-continue production handler, and no offset is committed past
 *   it.
 * Expected values are what the test wrote to the changelogs and inputs. */
#include <kstreams/kstreams.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bytes_int.h"
#include "ks_check.h"
#include "ks_driver_util.h"
#include "ks_kafka.h"

#define KEYS 10

static const char *bootstrap;
static char app_id[160], in[200], out[200], changelog[240], state_dir[64];

static void setup(void) {
        bootstrap = ks_test_require_service("KS_BOOTSTRAP");
}

static int64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void names(const char *prefix) {
        const char *u = kt_unique(prefix);
        snprintf(app_id, sizeof(app_id), "%s", u);
        snprintf(in, sizeof(in), "%s-in", u);
        snprintf(out, sizeof(out), "%s-out", u);
        snprintf(changelog, sizeof(changelog), "%s-counts-changelog", u);
        snprintf(state_dir, sizeof(state_dir), "/tmp/ks-restore-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(state_dir));
}

static void rm_state(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
        ck_assert_int_eq(system(cmd), 0);
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *const *conf) {
        char err[512];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        for (int i = 0; conf && conf[i]; i += 2)
                ck_assert_msg(
                        rd_kafka_conf_set(c, conf[i], conf[i + 1], err,
                                          sizeof(err)) == RD_KAFKA_CONF_OK,
                        "%s", err);
        rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
        ck_assert_msg(rk, "%s", err);
        return rk;
}

static void create_topic(const char *topic,
                         int partitions,
                         const char *const *config) {
        kt_create_topic_config(bootstrap, topic, partitions, config, true);
}

static void delete_topic(const char *topic) {
        rd_kafka_t *rk             = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
        rd_kafka_queue_t *q        = rd_kafka_queue_new(rk);
        rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        ck_assert_ptr_nonnull(ev);
        ck_assert_int_eq(rd_kafka_event_error(ev), 0);
        rd_kafka_event_destroy(ev);
        rd_kafka_DeleteTopic_destroy(dt);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
}

/* Writes key k<i> -> count @p value for every key to the changelog
 * partition the key's task owns, in one transaction that is committed or
 * aborted. */
static void write_changelog_txn(const char *txn_id,
                                int64_t value,
                                bool commit) {
        const char *conf[] = {"transactional.id", txn_id, NULL};
        rd_kafka_t *p      = client(RD_KAFKA_PRODUCER, conf);
        rd_kafka_error_t *e;
        ck_assert_msg(!(e = rd_kafka_init_transactions(p, 30000)), "%s",
                      e ? rd_kafka_error_string(e) : "");
        ck_assert(!rd_kafka_begin_transaction(p));
        for (int k = 0; k < KEYS; k++) {
                char key[16];
                unsigned char v[8];
                snprintf(key, sizeof(key), "k%d", k);
                ks__be64_put(v, value);
                int32_t part = ks_partition_for_key(key, strlen(key), 2);
                ck_assert_int_eq(
                        rd_kafka_producev(
                                p, RD_KAFKA_V_TOPIC(changelog),
                                RD_KAFKA_V_PARTITION(part),
                                RD_KAFKA_V_KEY(key, strlen(key)),
                                RD_KAFKA_V_VALUE(v, 8),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END),
                        0);
        }
        e = commit ? rd_kafka_commit_transaction(p, 30000)
                   : rd_kafka_abort_transaction(p, 30000);
        ck_assert_msg(!e, "%s", e ? rd_kafka_error_string(e) : "");
        rd_kafka_destroy(p);
}

/* count() per key of "in" into store "counts", counts to "out". */
static ks_error_handler_fn *error_handler; /* set before the start */
static void on_error(ks_streams_t *s, const ks_error_t *err, void *opaque);

static ks_streams_t *start_count_app(const char *const *extra,
                                     ks_topology_t **topo) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_grouped_count(
                  ks_stream_group_by_key(
                          ks_builder_stream(b, in, ks_serde_string(),
                                            ks_serde_string()),
                          NULL, NULL),
                  "counts");
        ks_stream_to(ks_table_to_stream(t, NULL), out, NULL, NULL);
        *topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(*topo, "%s", err);
        ks_builder_destroy(b);
        ks_conf_t *conf          = ks_conf_new();
        const char *const base[] = {"application.id",
                                    app_id,
                                    "bootstrap.servers",
                                    bootstrap,
                                    "state.dir",
                                    state_dir,
                                    "commit.interval.ms",
                                    "200",
                                    "startup.timeout.ms",
                                    "20000",
                                    NULL};
        for (int i = 0; base[i]; i += 2)
                ck_assert_int_eq(ks_conf_set(conf, base[i], base[i + 1], err,
                                             sizeof(err)),
                                 KS_OK);
        for (int i = 0; extra && extra[i]; i += 2)
                ck_assert_msg(!ks_conf_set(conf, extra[i], extra[i + 1], err,
                                           sizeof(err)),
                              "%s", err);
        ks_streams_t *s = ks_streams_new(*topo, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        ck_assert_msg(s, "%s", err);
        if (error_handler)
                ks_streams_set_error_handler(s, error_handler, NULL);
        ks_error_t *e = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        return s;
}

static void stop_app(ks_streams_t *s, ks_topology_t *topo) {
        ks_error_t *e = ks_streams_close(s, 30000);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        ks_streams_destroy(s);
        ks_topology_destroy(topo);
}

static bool await_state(ks_streams_t *s, ks_state_t want, int timeout_ms) {
        for (int waited = 0; waited < timeout_ms; waited += 100) {
                if (ks_streams_state(s) == want)
                        return true;
                usleep(100 * 1000);
        }
        return ks_streams_state(s) == want;
}

/* The count of key k<k> in the store, -1 if absent; retries what a
 * restoring or moving task answers for 30 s. */
static int64_t query_count(ks_streams_t *s, int k) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", k);
        ks_buf_t buf = {0};
        int64_t v    = -2;
        for (int tries = 0; tries < 300 && v == -2; tries++) {
                bool found;
                ks_error_t *e = ks_streams_query_kv_get(
                        s, "counts", (ks_bytes_t){key, strlen(key)}, &buf,
                        &found);
                if (e) {
                        ck_assert_msg(ks_error_is_retriable(e), "%s",
                                      ks_error_message(e));
                        ks_error_destroy(e);
                        usleep(100 * 1000);
                        continue;
                }
                v = found ? kt_be64(buf.data) : -1;
        }
        ks_buf_free(&buf);
        ck_assert_msg(v != -2, "key %s: the store never answered", key);
        return v;
}

/* Waits until every key's stored count is @p want. */
static void await_counts_all(ks_streams_t *s, int64_t want) {
        int right = 0;
        for (int tries = 0; tries < 150 && right < KEYS; tries++) {
                right = 0;
                for (int k = 0; k < KEYS; k++)
                        right += query_count(s, k) == want;
                if (right < KEYS)
                        usleep(200 * 1000);
        }
        ck_assert_msg(right == KEYS, "%d of %d keys at %lld", right, KEYS,
                      (long long)want);
}

static const char *const changelog_conf[] = {"cleanup.policy", "compact", NULL};

static void restores_through_a_transactional_tail(bool abort_last) {
        kt_create_topic(bootstrap, in, 2);
        kt_create_topic(bootstrap, out, 2);
        create_topic(changelog, 2, changelog_conf);
        char txn[200];
        snprintf(txn, sizeof(txn), "%s-writer", app_id);
        write_changelog_txn(txn, 5, true);
        if (abort_last)
                write_changelog_txn(txn, 999, false);
        ks_topology_t *topo;
        ks_streams_t *s = start_count_app(NULL, &topo);
        /* The restoration must end although the last offsets are markers
         * (and aborted records) no consumer ever delivers. */
        ck_assert_msg(await_state(s, KS_STATE_RUNNING, 30000),
                      "not RUNNING 30 s after start: restoration hung (%s)",
                      ks_state_name(ks_streams_state(s)));
        for (int k = 0; k < KEYS; k++)
                ck_assert_int_eq(query_count(s, k), 5);
        /* It goes on counting from the restored state. */
        kt_produce(bootstrap, in, 0, KEYS, "k", KEYS, "v%d");
        await_counts_all(s, 6);
        ks_streams_metrics_t m;
        ks_streams_metrics(s, &m);
        ck_assert_uint_eq(m.records_restored, KEYS);
        stop_app(s, topo);
        rm_state();
}

START_TEST(restoration_ends_at_a_commit_marker) {
        if (!bootstrap)
                return;
        names("rst-commit");
        restores_through_a_transactional_tail(false);
}
END_TEST

START_TEST(restoration_skips_an_aborted_tail_and_ends) {
        if (!bootstrap)
                return;
        names("rst-abort");
        restores_through_a_transactional_tail(true);
}
END_TEST

START_TEST(a_checkpoint_past_the_changelog_end_rebuilds_the_store) {
        if (!bootstrap)
                return;
        names("rst-corrupt");
        kt_create_topic(bootstrap, in, 2);
        kt_create_topic(bootstrap, out, 2);
        kt_produce(bootstrap, in, 0, KEYS * 3, "k", KEYS, "v%d");
        ks_topology_t *topo;
        ks_streams_t *s = start_count_app(NULL, &topo);
        await_counts_all(s, 3);
        stop_app(s, topo); /* commits: checkpoints at the changelog's end */

        /* The changelog is recreated with less in it than the stores'
         * checkpoints say: one count per key for half the keys. */
        delete_topic(changelog);
        create_topic(changelog, 2, changelog_conf);
        rd_kafka_t *p = client(RD_KAFKA_PRODUCER, NULL);
        for (int k = 0; k < KEYS / 2; k++) {
                char key[16];
                unsigned char v[8];
                snprintf(key, sizeof(key), "k%d", k);
                ks__be64_put(v, 7);
                ck_assert_int_eq(
                        rd_kafka_producev(
                                p, RD_KAFKA_V_TOPIC(changelog),
                                RD_KAFKA_V_PARTITION(ks_partition_for_key(
                                        key, strlen(key), 2)),
                                RD_KAFKA_V_KEY(key, strlen(key)),
                                RD_KAFKA_V_VALUE(v, 8),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END),
                        0);
        }
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);

        s = start_count_app(NULL, &topo);
        ck_assert(await_state(s, KS_STATE_RUNNING, 30000));
        /* The stale LMDB state (3 per key) is gone: the store is what the
         * new changelog holds. */
        for (int k = 0; k < KEYS; k++)
                ck_assert_int_eq(query_count(s, k), k < KEYS / 2 ? 7 : -1);
        stop_app(s, topo);
        rm_state();
}
END_TEST

/* Keys that land on input partition @p part of 2. */
static int keys_on(int part, char (*keys)[16], int want) {
        int n = 0;
        for (int i = 0; n < want; i++) {
                snprintf(keys[n], 16, "p%d", i);
                if (ks_partition_for_key(keys[n], strlen(keys[n]), 2) == part)
                        n++;
        }
        return n;
}

START_TEST(a_large_restoration_does_not_stop_the_thread_s_other_tasks) {
        if (!bootstrap)
                return;
        names("rst-big");
        enum { BIG = 1000000 };
        kt_create_topic(bootstrap, in, 2);
        /* Output records get the broker's append time: when they were
         * produced, not their input's time. */
        const char *const out_conf[] = {"message.timestamp.type",
                                        "LogAppendTime", NULL};
        create_topic(out, 2, out_conf);
        create_topic(changelog, 2, changelog_conf);
        /* Task 0_0's changelog: 1M counts, all on its partition 0. */
        const char *const pconf[] = {"linger.ms",
                                     "50",
                                     "batch.num.messages",
                                     "10000",
                                     "queue.buffering.max.messages",
                                     "1000000",
                                     NULL};
        rd_kafka_t *p             = client(RD_KAFKA_PRODUCER, pconf);
        for (int i = 0; i < BIG; i++) {
                char key[24];
                unsigned char v[8];
                int kl = snprintf(key, sizeof(key), "big-%d", i);
                ks__be64_put(v, 1);
                while (rd_kafka_producev(
                               p, RD_KAFKA_V_TOPIC(changelog),
                               RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(key, kl),
                               RD_KAFKA_V_VALUE(v, 8),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(p, 100);
        }
        ck_assert_int_eq(rd_kafka_flush(p, 120000), 0);

        char keys[20][16];
        keys_on(1, keys, 20);
        const char *const one_thread[] = {"num.stream.threads", "1", NULL};
        ks_topology_t *topo;
        ks_streams_t *s = start_count_app(one_thread, &topo);
        /* Feed task 0_1 while 0_0 restores; note when restoration ends. */
        int64_t restored_at = 0, t0 = wall_ms();
        bool saw_restoring = false;
        int sent           = 0;
        while (!restored_at && wall_ms() - t0 < 120000) {
                ks_streams_metrics_t m;
                ks_streams_metrics(s, &m);
                saw_restoring |= m.restoring_tasks > 0;
                if (saw_restoring && !m.restoring_tasks &&
                    m.records_restored >= BIG)
                        restored_at = wall_ms();
                const char *key = keys[sent % 20];
                ck_assert_int_eq(
                        rd_kafka_producev(
                                p, RD_KAFKA_V_TOPIC(in),
                                RD_KAFKA_V_PARTITION(1),
                                RD_KAFKA_V_KEY(key, strlen(key)),
                                RD_KAFKA_V_VALUE("x", 1),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END),
                        0);
                sent++;
                rd_kafka_poll(p, 0);
                usleep(50 * 1000);
        }
        rd_kafka_flush(p, 30000);
        rd_kafka_destroy(p);
        ck_assert_msg(saw_restoring && restored_at,
                      "the 1M-record restoration did not finish in 120 s");
        fprintf(stderr, "restoring 1M records took %lld ms\n",
                (long long)(restored_at - t0));

        /* Outputs of task 0_1 were produced while 0_0 was restoring: the
         * earliest append time on its output partition. */
        int64_t first = INT64_MAX;
        char gid[200];
        snprintf(gid, sizeof(gid), "%s-check", app_id);
        const char *const cconf[] = {"group.id", gid, NULL};
        rd_kafka_t *c             = client(RD_KAFKA_CONSUMER, cconf);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, out, 1)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(c, l);
        rd_kafka_topic_partition_list_destroy(l);
        for (int waited = 0; waited < 20000 && first == INT64_MAX;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
                waited += 500;
                if (!m)
                        continue;
                if (!m->err) {
                        rd_kafka_timestamp_type_t type;
                        int64_t ts = rd_kafka_message_timestamp(m, &type);
                        ck_assert_int_eq(type,
                                         RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME);
                        if (ts < first)
                                first = ts;
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        fprintf(stderr,
                "first output of the other task: %lld ms after start, "
                "restoration done at %lld ms\n",
                (long long)(first - t0), (long long)(restored_at - t0));
        ck_assert_msg(first < restored_at - 500,
                      "the other task produced nothing while the big store "
                      "restored");
        stop_app(s, topo);
        rm_state();
}
END_TEST

static char handler_msg[1024];
static atomic_int handler_calls;

static void on_error(ks_streams_t *s, const ks_error_t *err, void *opaque) {
        (void)s, (void)opaque;
        snprintf(handler_msg, sizeof(handler_msg), "%s", ks_error_message(err));
        atomic_fetch_add(&handler_calls, 1);
}

START_TEST(a_lost_changelog_record_fails_the_task_whatever_the_handler) {
        if (!bootstrap)
                return;
        names("rst-lost");
        kt_create_topic(bootstrap, in, 2);
        kt_create_topic(bootstrap, out, 2);
        /* No batch fits: every changelog record is refused for good
         * (MESSAGE_TOO_LARGE). */
        const char *const tiny[] = {"cleanup.policy", "compact",
                                    "max.message.bytes", "16", NULL};
        create_topic(changelog, 2, tiny);
        kt_produce(bootstrap, in, 0, KEYS, "k", KEYS, "v%d");
        const char *const cont[] = {"default.production.exception.handler",
                                    "log-and-continue", NULL};
        ks_topology_t *topo;
        error_handler   = on_error;
        ks_streams_t *s = start_count_app(cont, &topo);
        ck_assert_msg(await_state(s, KS_STATE_ERROR, 30000),
                      "still %s: a changelog record was dropped as the user "
                      "handler said",
                      ks_state_name(ks_streams_state(s)));
        ck_assert_msg(strstr(handler_msg, changelog) &&
                              strstr(handler_msg, "internal record"),
                      "%s", handler_msg);
        /* Nothing was committed past the records. */
        const char *const gconf[] = {"group.id", app_id, NULL};
        rd_kafka_t *c             = client(RD_KAFKA_CONSUMER, gconf);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(l, in, 0);
        rd_kafka_topic_partition_list_add(l, in, 1);
        ck_assert_int_eq(rd_kafka_committed(c, l, 10000), 0);
        for (int i = 0; i < 2; i++)
                ck_assert_msg(l->elems[i].offset < 0,
                              "partition %d committed at %lld", i,
                              (long long)l->elems[i].offset);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(c);
        ks_error_destroy(ks_streams_close(s, 30000));
        ks_streams_destroy(s);
        ks_topology_destroy(topo);
        rm_state();
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("restore");
        TCase *tc = tcase_create("restore");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 280);
        tcase_add_test(tc, restoration_ends_at_a_commit_marker);
        tcase_add_test(tc, restoration_skips_an_aborted_tail_and_ends);
        tcase_add_test(tc,
                       a_checkpoint_past_the_changelog_end_rebuilds_the_store);
        tcase_add_test(
                tc, a_large_restoration_does_not_stop_the_thread_s_other_tasks);
        tcase_add_test(
                tc,
                a_lost_changelog_record_fails_the_task_whatever_the_handler);
        suite_add_tcase(s, tc);
        return s;
}
