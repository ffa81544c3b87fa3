/* KTables through the test driver: materialization, tombstones, changelogs,
 * filter and map_values. Expected outputs are worked out in the comments,
 * following Kafka Streams' KTableSource, KTableFilter and KTableMapValues
 * (with new values only: a filtered-out update is a tombstone). */
#include <ctype.h>
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void start(ks_builder_t *b) {
        char err[512];
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "build: %s", err);
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", "tbl", err, sizeof(err));
        drv = ks_test_driver_new(topo, c, err, sizeof(err));
        ks_conf_destroy(c);
        ck_assert_msg(drv, "driver: %s", err);
}

static void teardown(void) {
        ks_test_driver_destroy(drv);
        ks_topology_destroy(topo);
        drv  = NULL;
        topo = NULL;
}

static void pipe_at(const char *key, const char *value, int64_t ts) {
        ks_error_t *e = ks_test_driver_pipe_str(drv, "in", key, value, ts);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
}

/* The next record of @p topic: key and value (NULL: tombstone). */
static void expect(const char *topic, const char *key, const char *value) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, topic, &r), "wanted %s=%s", key,
                      value ? value : "(tombstone)");
        ck_assert_uint_eq(r.key.len, strlen(key));
        ck_assert(!memcmp(r.key.data, key, r.key.len));
        if (!value) {
                ck_assert_msg(!r.value.data, "wanted a tombstone for %s", key);
                return;
        }
        ck_assert_msg(r.value.data, "wanted %s=%s, got a tombstone", key,
                      value);
        ck_assert_uint_eq(r.value.len, strlen(value));
        ck_assert(!memcmp(r.value.data, value, r.value.len));
}

START_TEST(table_materializes_updates_and_forwards_tombstones) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "in", ks_serde_string(),
                                           ks_serde_string(), "rows");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", ks_serde_string(),
                     ks_serde_string());
        start(b);
        pipe_at("a", "1", 1);
        pipe_at("b", "2", 2);
        pipe_at("a", "3", 3);  /* an update: forwarded */
        pipe_at("a", NULL, 4); /* a delete: forwarded as a tombstone */
        pipe_at("c", NULL, 5); /* a delete of nothing: still forwarded */
        pipe_at(NULL, "x", 6); /* null key: skipped, counted */
        expect("out", "a", "1");
        expect("out", "b", "2");
        expect("out", "a", "3");
        expect("out", "a", NULL);
        expect("out", "c", NULL);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-skipped"), 1);
        /* The changelog holds the same five changes, tombstones included. */
        expect("tbl-rows-changelog", "a", "1");
        expect("tbl-rows-changelog", "b", "2");
        expect("tbl-rows-changelog", "a", "3");
        expect("tbl-rows-changelog", "a", NULL);
        expect("tbl-rows-changelog", "c", NULL);
        ks_buf_t d = {0};
        ks_topology_describe(topo, &d);
        ck_assert_msg(strstr(d.data, "KTABLE-SOURCE-"), "%s", d.data);
        ck_assert_msg(strstr(d.data, "rows"), "%s", d.data);
        ks_buf_free(&d);
}
END_TEST

START_TEST(table_store_name_is_derived_from_the_topic) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "in", ks_serde_string(),
                                           ks_serde_string(), NULL);
        ks_stream_to(ks_table_to_stream(t, NULL), "out", ks_serde_string(),
                     ks_serde_string());
        start(b);
        pipe_at("a", "1", 1);
        /* As Kafka Streams: the store is named before the source nodes. */
        expect("tbl-in-STATE-STORE-0000000000-changelog", "a", "1");
}
END_TEST

static bool starts_with_x(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return ((const char *)v)[0] == 'x';
}

static const void *upper(ks_arena_t *a, const void *k, const void *v, void *o) {
        (void)k, (void)o;
        char *s = ks_arena_strdup(a, v);
        for (char *p = s; *p; p++)
                *p = (char)toupper((unsigned char)*p);
        return s;
}

START_TEST(filter_turns_failing_updates_into_tombstones_and_map_values_maps) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "in", ks_serde_string(),
                                           ks_serde_string(), "rows");
        ks_table_t *f   = ks_table_filter(t, NULL, starts_with_x, NULL);
        ks_table_t *m =
                ks_table_map_values(f, "upper", upper, NULL, ks_serde_string());
        ks_stream_to(ks_table_to_stream(f, NULL), "filtered", NULL, NULL);
        ks_stream_to(ks_table_to_stream(m, NULL), "out", NULL, NULL);
        start(b);
        pipe_at("a", "x1", 1); /* passes: a=x1, mapped A: X1 */
        pipe_at("b", "y1", 2); /* fails: tombstone for b */
        pipe_at("a", "y2", 3); /* a no longer passes: tombstone for a */
        pipe_at("b", "x2", 4); /* passes */
        pipe_at("b", NULL, 5); /* a delete stays a tombstone (not mapped) */
        expect("filtered", "a", "x1");
        expect("filtered", "b", NULL);
        expect("filtered", "a", NULL);
        expect("filtered", "b", "x2");
        expect("filtered", "b", NULL);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "filtered"), 0);
        expect("out", "a", "X1");
        expect("out", "b", NULL);
        expect("out", "a", NULL);
        expect("out", "b", "X2");
        expect("out", "b", NULL);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ks_buf_t d = {0};
        ks_topology_describe(topo, &d);
        ck_assert_msg(strstr(d.data, "KTABLE-FILTER-"), "%s", d.data);
        ck_assert_msg(strstr(d.data, "upper"), "%s", d.data);
        ks_buf_free(&d);
}
END_TEST

START_TEST(invalid_table_steps_fail_the_build) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "in", ks_serde_string(),
                                           ks_serde_string(), NULL);
        ck_assert_ptr_null(ks_table_filter(t, "f", NULL, NULL));
        ck_assert_ptr_null(ks_builder_build(b, err, sizeof(err)));
        ck_assert_msg(strstr(err, "f: NULL predicate"), "%s", err);
        ks_builder_destroy(b);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("table");
        TCase *tc = tcase_create("table");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, table_materializes_updates_and_forwards_tombstones);
        tcase_add_test(tc, table_store_name_is_derived_from_the_topic);
        tcase_add_test(
                tc,
                filter_turns_failing_updates_into_tombstones_and_map_values_maps);
        tcase_add_test(tc, invalid_table_steps_fail_the_build);
        suite_add_tcase(s, tc);
        return s;
}
