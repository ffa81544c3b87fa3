/* Interactive queries on librdkafka's mock cluster: a fast extra tier for
 * tests/system/test_iq.c (the real broker, two instances, windows). */
#include <kstreams/kstreams.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_driver_util.h"
#include "ks_kafka.h"

#define KEYS    37
#define RECORDS 400

static void expect_error(ks_error_t *e, ks_err_t code, const char *text) {
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(
                ks_error_code(e) == code && strstr(ks_error_message(e), text),
                "expected %s (%s), got: %s", ks_err2str(code), text,
                ks_error_message(e));
        ks_error_destroy(e);
}

/* Polls every key until its committed count is @p want[k], for 60 s. */
static void await_counts(ks_streams_t *s, const int64_t *want) {
        ks_buf_t buf = {0};
        int right    = 0;
        for (int tries = 0; tries < 300 && right < KEYS; tries++) {
                right = 0;
                for (int k = 0; k < KEYS; k++) {
                        char key[16];
                        bool found;
                        snprintf(key, sizeof(key), "k%d", k);
                        ks_error_t *e = ks_streams_query_kv_get(
                                s, "counts", (ks_bytes_t){key, strlen(key)},
                                &buf, &found);
                        if (e) {
                                ck_assert_msg(ks_error_is_retriable(e), "%s",
                                              ks_error_message(e));
                                ks_error_destroy(e);
                                continue;
                        }
                        right += found && buf.len == 8 &&
                                 kt_be64(buf.data) == want[k];
                }
                if (right < KEYS)
                        usleep(200 * 1000);
        }
        ks_buf_free(&buf);
        ck_assert_int_eq(right, KEYS);
}

START_TEST(counts_are_read_from_the_running_instance) {
        char err[256];
        int64_t want[KEYS] = {0};
        bool found;
        ks_buf_t buf = {0};
        ks_query_iter_t *it;
        rd_kafka_conf_t *mc = rd_kafka_conf_new();
        rd_kafka_conf_set(mc, "log_level", "0", err, sizeof(err));
        rd_kafka_t *host =
                rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof(err));
        rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 1);
        ck_assert_ptr_nonnull(mock);
        const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mock);
        /* CreateTopics is not served by the 2.0.2 mock: create directly. */
        rd_kafka_mock_topic_create(mock, "in", 4, 1);
        rd_kafka_mock_topic_create(mock, "mock-iq-counts-changelog", 4, 1);
        kt_produce(bootstrap, "in", 0, RECORDS, "k", KEYS, "%d");
        for (int i = 0; i < RECORDS; i++)
                want[i % KEYS]++;

        ks_builder_t *b = ks_builder_new();
        ks_grouped_count(ks_stream_group_by_key(
                                 ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_string()),
                                 NULL, NULL),
                         "counts");
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ck_assert_msg(t, "%s", err);
        char dir[] = "/tmp/ks_iq_mock_XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", "mock-iq", err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "state.dir", dir, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "100", err, sizeof(err));
        ks_conf_set(c, "consumer.session.timeout.ms", "6000", err, sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_msg(s, "%s", err);

        expect_error(ks_streams_query_kv_get(s, "counts", (ks_bytes_t){"k1", 2},
                                             &buf, &found),
                     KS_ERR_STATE, "the instance is CREATED");
        ks_error_t *e = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        await_counts(s, want);

        /* Every key once, from the partitions this (only) instance hosts,
         * each where ks_streams_query_key_metadata() says it is. */
        e = ks_streams_query_kv_range(s, "counts", -1, (ks_bytes_t){0},
                                      (ks_bytes_t){0}, &it);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        ks_bytes_t k, v;
        int n = 0;
        while (ks_query_iter_next(it, &k, &v)) {
                ks_key_query_metadata_t md;
                ck_assert(!ks_streams_query_key_metadata(s, "counts", k, &md));
                ck_assert(md.hosted);
                ck_assert_int_eq(md.partition_count, 4);
                ck_assert_int_eq(md.partition, ks_query_iter_partition(it));
                char key[16];
                ck_assert_uint_lt(k.len, sizeof(key));
                memcpy(key, k.data, k.len);
                key[k.len] = '\0';
                ck_assert_int_eq(kt_be64(v.data), want[atoi(key + 1)]);
                n++;
        }
        ck_assert_ptr_null(ks_query_iter_error(it));
        ks_query_iter_destroy(it);
        ck_assert_int_eq(n, KEYS);

        expect_error(ks_streams_query_kv_get(s, "nope", (ks_bytes_t){"k1", 2},
                                             &buf, &found),
                     KS_ERR_NOT_FOUND, "no store named nope");
        expect_error(ks_streams_query_kv_range(s, "counts", 7, (ks_bytes_t){0},
                                               (ks_bytes_t){0}, &it),
                     KS_ERR_NOT_FOUND,
                     "partition 7 of store counts is not hosted by this "
                     "instance");
        expect_error(ks_streams_query_window_fetch(
                             s, "counts", (ks_bytes_t){"k1", 2}, 0, 10, &it),
                     KS_ERR_INVALID_ARG, "is a key-value store");

        ck_assert_ptr_null(ks_streams_close(s, 30000));
        expect_error(ks_streams_query_kv_get(s, "counts", (ks_bytes_t){"k1", 2},
                                             &buf, &found),
                     KS_ERR_STATE, "NOT_RUNNING");
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        ks_buf_free(&buf);
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(host);
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("iq_mock");
        TCase *tc = tcase_create("iq");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, counts_are_read_from_the_running_instance);
        suite_add_tcase(s, tc);
        return s;
}
