/* The runtime's start-up sizes a repartition topic that feeds a join from
 * its join partner (admin.c, with the plan the test driver uses too), on
 * librdkafka's mock cluster. The 2.0.2 mock serves no CreateTopics, so the
 * tests create the internal topics themselves: start-up then compares them
 * with the plan, which shows what it planned.
 *
 * Expected partitions (Kafka's murmur2, computed apart in Python):
 * u1 -> 1, u2 -> 0, u5 -> 2 of 3. */
#include <kstreams/kstreams.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

static rd_kafka_t *host;
static rd_kafka_mock_cluster_t *mock;
static const char *bootstrap;
static char state_dir[64];

static void setup(void) {
        char err[256];
        rd_kafka_conf_t *mc = rd_kafka_conf_new();
        rd_kafka_conf_set(mc, "log_level", "0", err, sizeof(err));
        host = rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof(err));
        ck_assert_ptr_nonnull(host);
        mock = rd_kafka_mock_cluster_new(host, 1);
        ck_assert_ptr_nonnull(mock);
        bootstrap = rd_kafka_mock_cluster_bootstraps(mock);
        snprintf(state_dir, sizeof(state_dir), "/tmp/ks-copart-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(state_dir));
        rd_kafka_mock_topic_create(mock, "orders", 2, 1);
        rd_kafka_mock_topic_create(mock, "users", 3, 1);
        rd_kafka_mock_topic_create(mock, "out", 3, 1);
}

static void teardown(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
        if (system(cmd)) {
        }
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(host);
}

/* "u5:pear" -> "u5". */
static const void *user_of(ks_arena_t *a,
                           const void *k,
                           const void *v,
                           void *o) {
        (void)k, (void)o;
        const char *s = v, *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        char *u  = ks_arena_alloc(a, n + 1);
        memcpy(u, s, n);
        u[n] = '\0';
        return u;
}

/* "u5:pear" joined with "Eve" -> "pear@Eve". */
static const void *item_at(ks_arena_t *a,
                           const void *k,
                           const void *l,
                           const void *r,
                           void *o) {
        (void)k, (void)o;
        const char *item = strchr(l, ':') + 1;
        size_t n         = strlen(item) + strlen(r) + 2;
        char *s          = ks_arena_alloc(a, n);
        snprintf(s, n, "%s@%s", item, (const char *)r);
        return s;
}

/* orders (2 partitions) joined with the table users (3), re-keyed by user
 * through "<app>-orders-by-user-repartition" unless @p rekey is false. */
static ks_topology_t *orders_join_users(bool rekey) {
        char err[512];
        ks_builder_t *b     = ks_builder_new();
        ks_table_t *users   = ks_builder_table(b, "users", ks_serde_string(),
                                               ks_serde_string(), "users-store");
        ks_stream_t *orders = ks_builder_stream(b, "orders", ks_serde_string(),
                                                ks_serde_string());
        if (rekey)
                orders = ks_stream_repartition(
                        ks_stream_select_key(orders, NULL, user_of, NULL),
                        "orders-by-user", ks_serde_string(), ks_serde_string(),
                        0);
        ks_stream_to(
                ks_stream_join_table(orders, users, "enrich", item_at, NULL),
                "out", ks_serde_string(), ks_serde_string());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(t, "build: %s", err);
        ks_builder_destroy(b);
        return t;
}

static ks_streams_t *streams_new(const ks_topology_t *t, const char *app) {
        char err[512];
        ks_conf_t *c = ks_conf_new();
        ck_assert_int_eq(
                ks_conf_set(c, "application.id", app, err, sizeof(err)), KS_OK);
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "state.dir", state_dir, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "100", err, sizeof(err));
        ks_conf_set(c, "startup.timeout.ms", "5000", err, sizeof(err));
        /* The mock makes a rebalance wait session.timeout.ms - 1000 ms. */
        ks_conf_set(c, "consumer.session.timeout.ms", "6000", err, sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_msg(s, "%s", err);
        ks_conf_destroy(c);
        return s;
}

static void expect_start_error(bool rekey, const char *app, const char *want) {
        ks_topology_t *t = orders_join_users(rekey);
        ks_streams_t *s  = streams_new(t, app);
        ks_error_t *e    = ks_streams_start(s);
        ck_assert_msg(e, "start must fail: %s", want);
        ck_assert_msg(strstr(ks_error_message(e), want),
                      "got \"%s\", wanted \"%s\"", ks_error_message(e), want);
        ks_error_destroy(e);
        ks_error_destroy(ks_streams_close(s, 10000));
        ks_streams_destroy(s);
        ks_topology_destroy(t);
}

START_TEST(start_wants_the_repartition_topic_sized_from_the_table) {
        /* Sized from its upstream (orders, 2) as before: now refused. */
        rd_kafka_mock_topic_create(mock, "cp1-orders-by-user-repartition", 2,
                                   1);
        expect_start_error(true, "cp1",
                           "internal topic cp1-orders-by-user-repartition has "
                           "2 partitions but the topology needs 3");
}
END_TEST

START_TEST(joining_two_source_topics_of_different_counts_still_fails) {
        expect_start_error(false, "cp2",
                           "sub-topology 0 reads topics that are not "
                           "co-partitioned: users has 3 partitions, orders "
                           "has 2");
}
END_TEST

static void expect_out(const kt_record_t *r,
                       const char *key,
                       const char *value,
                       int32_t partition) {
        ck_assert_str_eq(r->key, key);
        ck_assert_str_eq(r->value, value);
        ck_assert_int_eq(r->partition, partition);
}

/* Finds the output of @p key among @p n records. */
static const kt_record_t *out_of(const kt_record_t *recs,
                                 size_t n,
                                 const char *key) {
        for (size_t i = 0; i < n; i++)
                if (!strcmp(recs[i].key, key))
                        return &recs[i];
        ck_abort_msg("no output for %s", key);
        return NULL;
}

START_TEST(a_rekeyed_stream_joins_a_table_of_another_partition_count) {
        rd_kafka_mock_topic_create(mock, "cp3-orders-by-user-repartition", 3,
                                   1);
        rd_kafka_mock_topic_create(mock, "cp3-users-store-changelog", 3, 1);
        kt_produce_raw(bootstrap, "users", "u1", "Ann", 3);
        kt_produce_raw(bootstrap, "users", "u2", "Bob", 3);
        kt_produce_raw(bootstrap, "users", "u5", "Eve", 3);
        ks_topology_t *t = orders_join_users(true);
        ks_streams_t *s  = streams_new(t, "cp3");
        ks_error_t *e    = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        /* The table is loaded once its changes are in the changelog: only
         * then can an order find its user. */
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, "cp3-users-store-changelog", 3,
                                  60000, &recs);
        ck_assert_uint_eq(n, 3);
        kt_records_free(recs, n);
        kt_produce_raw(bootstrap, "orders", "o1", "u1:apple", 8);
        kt_produce_raw(bootstrap, "orders", "o2", "u5:pear", 7);
        kt_produce_raw(bootstrap, "orders", "o3", "u2:fig", 6);
        n = kt_consume_all(bootstrap, "out", 3, 60000, &recs);
        ck_assert_uint_eq(n, 3);
        expect_out(out_of(recs, n, "u1"), "u1", "apple@Ann", 1);
        expect_out(out_of(recs, n, "u5"), "u5", "pear@Eve", 2);
        expect_out(out_of(recs, n, "u2"), "u2", "fig@Bob", 0);
        kt_records_free(recs, n);
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ks_streams_destroy(s);
        ks_topology_destroy(t);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("copartition-mock");
        TCase *tc = tcase_create("mock");
        tcase_set_timeout(tc, 120);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc,
                       start_wants_the_repartition_topic_sized_from_the_table);
        tcase_add_test(
                tc, joining_two_source_topics_of_different_counts_still_fails);
        tcase_add_test(
                tc, a_rekeyed_stream_joins_a_table_of_another_partition_count);
        suite_add_tcase(s, tc);
        return s;
}
