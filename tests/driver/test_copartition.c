/* A re-keyed stream joined with a topic of another partition count: the
 * repartition topic between them takes the count of its join partner (as
 * Kafka Streams' CopartitionedTopicsEnforcer), so every key's records meet
 * in one task, and what cannot be reconciled still fails at start.
 *
 * Expected partitions were computed apart from the library, with Kafka's
 * murmur2 (checked against Kafka's UtilsTest vectors) in Python:
 * partition(k, n) = (murmur2(k) & 0x7fffffff) % n, which gives
 *   u1: 1 of 3, 0 of 4   u2: 0 of 3   u3: 1 of 3   u5: 2 of 3, 3 of 4. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void teardown(void) {
        kd_stop(&drv, &topo);
}

/* "u5:pear" -> "u5": the user part of an order or a click. */
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

static ks_stream_t *by_user(ks_builder_t *b,
                            const char *topic,
                            int32_t partitions) {
        char name[64];
        snprintf(name, sizeof(name), "%s-by-user", topic);
        ks_stream_t *s = ks_builder_stream(b, topic, ks_serde_string(),
                                           ks_serde_string());
        return ks_stream_repartition(
                ks_stream_select_key(s, NULL, user_of, NULL), name,
                ks_serde_string(), ks_serde_string(), partitions);
}

/* orders (2 partitions) keyed by order id, re-keyed by user and joined
 * with the table users (3 partitions). @p partitions: the repartition's
 * given count, 0 for none. */
static void orders_join_users(int32_t partitions) {
        char err[512];
        ks_builder_t *b   = ks_builder_new();
        ks_table_t *users = ks_builder_table(b, "users", ks_serde_string(),
                                             ks_serde_string(), "users-store");
        ks_stream_t *j = ks_stream_join_table(by_user(b, "orders", partitions),
                                              users, "enrich", item_at, NULL);
        ks_stream_to(j, "out", ks_serde_string(), ks_serde_string());
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "build: %s", err);
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", "copart", err, sizeof(err));
        drv = ks_test_driver_new(topo, c, err, sizeof(err));
        ks_conf_destroy(c);
        ck_assert_msg(drv, "driver: %s", err);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "orders", 2), KS_OK);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "users", 3), KS_OK);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "out", 3), KS_OK);
}

static void pipe_to(const char *topic, const char *key, const char *value) {
        ks_error_t *e = ks_test_driver_pipe_str(drv, topic, key, value, 1);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
}

/* The next record of @p topic: its key, value and partition. */
static void expect(const char *topic,
                   const char *key,
                   const char *value,
                   int32_t partition) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, topic, &r), "%s: wanted %s=%s",
                      topic, key, value);
        ck_assert_str_eq((const char *)r.key.data, key);
        ck_assert_str_eq((const char *)r.value.data, value);
        ck_assert_msg(r.partition == partition,
                      "%s: %s=%s on partition %d, wanted %d", topic, key, value,
                      (int)r.partition, (int)partition);
}

START_TEST(a_rekeyed_stream_joins_a_table_with_another_partition_count) {
        orders_join_users(0);
        pipe_to("users", "u1", "Ann");
        pipe_to("users", "u2", "Bob");
        pipe_to("users", "u5", "Eve");
        pipe_to("orders", "o1", "u1:apple");
        pipe_to("orders", "o2", "u5:pear");
        pipe_to("orders", "o3", "u2:fig");
        pipe_to("orders", "o4", "u3:kiwi"); /* no such user: inner, none */
        pipe_to("users", "u1", "Ann2");
        pipe_to("orders", "o5", "u1:lime"); /* sees the update */

        /* The repartition topic has the table's 3 partitions, not the
         * orders' 2, and so has the join's sub-topology. */
        ck_assert_int_eq(ks_test_driver_partitions(
                                 drv, "copart-orders-by-user-repartition"),
                         3);
        ck_assert_int_eq(ks_test_driver_store_partitions(drv, "users-store"),
                         3);
        ck_assert_int_eq(
                ks_test_driver_partitions(drv, "copart-users-store-changelog"),
                3);
        /* Each user's orders land where the table keeps the user. */
        const char *rp = "copart-orders-by-user-repartition";
        expect(rp, "u1", "u1:apple", 1);
        expect(rp, "u5", "u5:pear", 2);
        expect(rp, "u2", "u2:fig", 0);
        expect(rp, "u3", "u3:kiwi", 1);
        expect(rp, "u1", "u1:lime", 1);
        expect("out", "u1", "apple@Ann", 1);
        expect("out", "u5", "pear@Eve", 2);
        expect("out", "u2", "fig@Bob", 0);
        expect("out", "u1", "lime@Ann2", 1);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        /* 2 tasks read orders, 3 join. */
        ck_assert_uint_eq(ks_test_driver_metric(drv, "tasks"), 5);
}
END_TEST

START_TEST(a_repartition_given_the_partners_count_joins_too) {
        orders_join_users(3);
        pipe_to("users", "u5", "Eve");
        pipe_to("orders", "o2", "u5:pear");
        expect("out", "u5", "pear@Eve", 2);
}
END_TEST

START_TEST(a_repartition_given_another_count_fails_naming_both_topics) {
        orders_join_users(2);
        ks_error_t *e =
                ks_test_driver_pipe_str(drv, "orders", "o1", "u1:apple", 1);
        ck_assert_msg(e,
                      "a 2-partition repartition cannot join a "
                      "3-partition table");
        ck_assert_int_eq(ks_error_code(e), KS_ERR_TOPOLOGY);
        ck_assert_msg(strstr(ks_error_message(e),
                             "reads topics that are not co-partitioned: "
                             "users has 3 partitions, "
                             "copart-orders-by-user-repartition was given 2"),
                      "%s", ks_error_message(e));
        ks_error_destroy(e);
}
END_TEST

/* clicks (2 partitions) and views (4), both re-keyed by user: a group of
 * repartition topics only takes the larger count, 4. */
START_TEST(two_rekeyed_streams_join_on_the_larger_count) {
        char err[512];
        ks_builder_t *b     = ks_builder_new();
        ks_join_windows_t w = {.before_ms = 100, .after_ms = 100};
        ks_stream_t *clicks = by_user(b, "clicks", 0);
        ks_stream_t *views  = by_user(b, "views", 0);
        ks_stream_to(ks_stream_join_stream(clicks, views, "cv", item_at, NULL,
                                           w, NULL, NULL),
                     "out", ks_serde_string(), ks_serde_string());
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "build: %s", err);
        ks_builder_destroy(b);
        drv = ks_test_driver_new(topo, NULL, err, sizeof(err));
        ck_assert_msg(drv, "driver: %s", err);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "clicks", 2), KS_OK);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "views", 4), KS_OK);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "out", 4), KS_OK);
        pipe_to("views", "v1", "u5:home");
        pipe_to("clicks", "c1", "u5:buy");
        pipe_to("clicks", "c2", "u1:buy");
        pipe_to("views", "v2", "u1:cart");
        ck_assert_int_eq(ks_test_driver_partitions(
                                 drv, "test-driver-clicks-by-user-repartition"),
                         4);
        ck_assert_int_eq(ks_test_driver_partitions(
                                 drv, "test-driver-views-by-user-repartition"),
                         4);
        expect("out", "u5", "buy@u5:home", 3);
        expect("out", "u1", "buy@u1:cart", 0);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("copartition");
        TCase *tc = tcase_create("copartition");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(
                tc,
                a_rekeyed_stream_joins_a_table_with_another_partition_count);
        tcase_add_test(tc, a_repartition_given_the_partners_count_joins_too);
        tcase_add_test(
                tc, a_repartition_given_another_count_fails_naming_both_topics);
        tcase_add_test(tc, two_rekeyed_streams_join_on_the_larger_count);
        suite_add_tcase(s, tc);
        return s;
}
