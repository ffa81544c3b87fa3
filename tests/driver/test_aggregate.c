/* The stateful DSL through the test driver: count, reduce, aggregate,
 * grouping with and without repartitioning, tumbling and hopping windows
 * with grace and late records, changelogs. Expected values are worked out
 * by hand in the comments. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void start(ks_builder_t *b, int partitions) {
        drv = kd_start(b, "agg", NULL, &topo);
        ks_test_driver_create_topic(drv, "in", partitions);
}

static void teardown(void) {
        kd_stop(&drv, &topo);
}

static void pipe_at(const char *key, const char *value, int64_t ts) {
        kd_pipe(drv, "in", key, value, ts);
}

/* Reads the next output: key, count (int64) and, for windowed keys, the
 * window start (the last 8 key bytes). */
static void expect_count(const char *key, int64_t window_start, int64_t count) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r), "wanted %s=%lld",
                      key, (long long)count);
        size_t klen = strlen(key);
        if (window_start >= 0) {
                ck_assert_uint_eq(r.key.len, klen + 8);
                ck_assert_int_eq(kt_be64((const char *)r.key.data + klen),
                                 window_start);
        } else {
                ck_assert_uint_eq(r.key.len, klen);
        }
        ck_assert(!memcmp(r.key.data, key, klen));
        ck_assert_uint_eq(r.value.len, 8);
        ck_assert_int_eq(kt_be64(r.value.data), count);
}

static void expect_end(void) {
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}

START_TEST(count_by_key_emits_every_update_and_logs_it) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t = ks_grouped_count(ks_stream_group_by_key(s, NULL, NULL),
                                         "counts");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        start(b, 1);
        pipe_at("a", "x", 1);
        pipe_at("b", "x", 2);
        pipe_at("a", "y", 3);
        pipe_at("c", "x", 4);
        pipe_at("a", "z", 5);
        expect_count("a", -1, 1);
        expect_count("b", -1, 1);
        expect_count("a", -1, 2);
        expect_count("c", -1, 1);
        expect_count("a", -1, 3);
        expect_end();
        /* The changelog holds the same changes, on the task's partition. */
        ks_test_record_t r;
        int n = 0;
        while (ks_test_driver_read(drv, "agg-counts-changelog", &r)) {
                ck_assert_int_eq(r.partition, 0);
                n++;
        }
        ck_assert_int_eq(n, 5);
        /* The store answers queries: a=3, b=1, and a range sees all. */
        ck_assert_int_eq(ks_test_driver_store_partitions(drv, "counts"), 1);
        ks_kv_store_t *st = ks_test_driver_kv_store(drv, "counts", 0);
        ck_assert_ptr_nonnull(st);
        ks_bytes_t v;
        bool found;
        ck_assert_ptr_null(
                ks_kv_store_get(st, (ks_bytes_t){"a", 1}, &v, &found));
        ck_assert(found);
        ck_assert_int_eq(kt_be64(v.data), 3);
        ks_store_iter_t *it;
        ck_assert_ptr_null(ks_kv_store_range(st, (ks_bytes_t){NULL, 0},
                                             (ks_bytes_t){NULL, 0}, &it));
        ks_bytes_t k;
        int keys = 0;
        while (ks_store_iter_next(it, &k, &v))
                keys++;
        ks_store_iter_destroy(it);
        ck_assert_int_eq(keys, 3);
        ck_assert_ptr_null(ks_test_driver_window_store(drv, "counts", 0));
        ks_buf_t d = {0};
        ks_topology_describe(topo, &d);
        ck_assert_msg(strstr(d.data, "(stores: [counts])"), "%s", d.data);
        ks_buf_free(&d);
}
END_TEST

static const void *first_letter(ks_arena_t *a,
                                const void *k,
                                const void *v,
                                void *o) {
        (void)k, (void)o;
        return ks_arena_strndup(a, v, 1);
}

START_TEST(group_by_repartitions_so_each_key_is_counted_in_one_task) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_grouped_t *g = ks_stream_group_by(s, "by-letter", first_letter, NULL,
                                             ks_serde_string(), NULL);
        ks_stream_to(ks_table_to_stream(ks_grouped_count(g, "letters"), NULL),
                     "out", NULL, NULL);
        start(b, 3);
        /* Inputs spread over 3 partitions by their keys; 10 words with
         * 'a', 6 with 'b', 4 with 'c'. */
        int want[3] = {10, 6, 4}, seen[3] = {0};
        for (int i = 0; i < 20; i++) {
                char key[8], value[8];
                snprintf(key, sizeof(key), "k%d", i);
                snprintf(value, sizeof(value), "%c%d",
                         i < 10   ? 'a'
                         : i < 16 ? 'b'
                                  : 'c',
                         i);
                pipe_at(key, value, i);
        }
        ks_test_record_t r;
        while (ks_test_driver_read(drv, "out", &r)) {
                int l = ((const char *)r.key.data)[0] - 'a';
                /* Counts of one letter go up by one: one task owns it. */
                ck_assert_int_eq(kt_be64(r.value.data), ++seen[l]);
        }
        ck_assert_int_eq(seen[0], want[0]);
        ck_assert_int_eq(seen[1], want[1]);
        ck_assert_int_eq(seen[2], want[2]);
        ck_assert_int_eq(
                ks_test_driver_partitions(drv, "agg-by-letter-repartition"), 3);
        ck_assert_int_eq(
                ks_test_driver_partitions(drv, "agg-letters-changelog"), 3);
}
END_TEST

static const void *to_int(ks_arena_t *a,
                          const void *k,
                          const void *v,
                          void *o) {
        (void)k, (void)o;
        return ks_arena_int64(a, atoll(v));
}

static const void *sum(ks_arena_t *a, const void *cur, const void *v, void *o) {
        (void)o;
        return ks_arena_int64(a, *(const int64_t *)cur + *(const int64_t *)v);
}

START_TEST(reduce_sums_per_key) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_stream_map_values(
                 ks_builder_stream(b, "in", ks_serde_string(),
                                   ks_serde_string()),
                 NULL, to_int, NULL);
        ks_grouped_t *g = ks_stream_group_by_key(s, NULL, ks_serde_int64());
        ks_stream_to(ks_table_to_stream(ks_grouped_reduce(g, "sums", sum, NULL),
                                        NULL),
                     "out", NULL, NULL);
        start(b, 1);
        pipe_at("a", "5", 1);  /* a = 5 */
        pipe_at("a", "7", 2);  /* a = 12 */
        pipe_at("b", "-3", 3); /* b = -3 */
        pipe_at("a", "1", 4);  /* a = 13 */
        expect_count("a", -1, 5);
        expect_count("a", -1, 12);
        expect_count("b", -1, -3);
        expect_count("a", -1, 13);
        expect_end();
        /* map_values kept the key: no repartition topic. */
        ck_assert_int_eq(ks_test_driver_partitions(drv, "agg-sums-repartition"),
                         -1);
}
END_TEST

static const void *empty(ks_arena_t *a, void *o) {
        (void)o;
        return ks_arena_strdup(a, "");
}

static const void *concat(ks_arena_t *a,
                          const void *k,
                          const void *v,
                          const void *agg,
                          void *o) {
        (void)k, (void)o;
        size_t n = strlen(agg) + strlen(v) + 2;
        char *s  = ks_arena_alloc(a, n);
        snprintf(s, n, "%s%s%s", (const char *)agg,
                 *(const char *)agg ? "," : "", (const char *)v);
        return s;
}

START_TEST(aggregate_with_initializer_and_adder) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_grouped_aggregate(
                  ks_stream_group_by_key(s, NULL, NULL), "lists", empty, concat,
                  NULL, ks_serde_string());
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        start(b, 1);
        pipe_at("k", "x", 1);
        pipe_at("k", "y", 2);
        pipe_at("j", "z", 3);
        pipe_at("k", "w", 4);
        const char *want[][2] = {
                {"k", "x"}, {"k", "x,y"}, {"j", "z"}, {"k", "x,y,w"}};
        ks_test_record_t r;
        for (int i = 0; i < 4; i++) {
                ck_assert(ks_test_driver_read(drv, "out", &r));
                ck_assert_str_eq(r.key.data, want[i][0]);
                ck_assert_str_eq(r.value.data, want[i][1]);
        }
        expect_end();
}
END_TEST

START_TEST(null_keys_and_values_are_skipped_and_counted) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_table_to_stream(ks_grouped_count(ks_stream_group_by_key(
                                                                 s, NULL, NULL),
                                                         "c"),
                                        NULL),
                     "out", NULL, NULL);
        start(b, 1);
        pipe_at(NULL, "x", 1);
        pipe_at("a", NULL, 2);
        pipe_at("a", "x", 3);
        expect_count("a", -1, 1);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-skipped"), 2);
}
END_TEST

static void windowed_count_topology(ks_windows_t w) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_windowed_count(
                  ks_grouped_windowed_by(ks_stream_group_by_key(s, NULL, NULL),
                                         w),
                  "wcounts");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        start(b, 1);
}

START_TEST(tumbling_windows_with_grace_drop_late_records) {
        /* size 10, grace 5: a window [s, s+10) closes when stream time
         * reaches s + 10 + 5. */
        windowed_count_topology(ks_tumbling_window(10, 5));
        pipe_at("a", "1", 1);  /* [0,10) = 1 */
        pipe_at("a", "2", 3);  /* [0,10) = 2 */
        pipe_at("a", "3", 12); /* [10,20) = 1; stream time 12 */
        pipe_at("a", "4", 9);  /* out of order, within grace: [0,10) = 3 */
        pipe_at("a", "5", 20); /* [20,30) = 1; stream time 20: [0,10) closed */
        pipe_at("a", "6", 8);  /* [0,10) closed: dropped, counted */
        pipe_at("a", "7", 14); /* [10,20) still open (20 + 5): = 2 */
        pipe_at("b", "8", 10); /* boundary: 10 belongs to [10,20): b = 1 */
        expect_count("a", 0, 1);
        expect_count("a", 0, 2);
        expect_count("a", 10, 1);
        expect_count("a", 0, 3);
        expect_count("a", 20, 1);
        expect_count("a", 10, 2);
        expect_count("b", 10, 1);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 1);
        /* A key's windows, queried from the store: [10,20) = 2 and
         * [20,30) = 1 are within retention (size + grace = 15 behind the
         * newest window); [0,10) has expired. */
        ks_window_store_t *ws = ks_test_driver_window_store(drv, "wcounts", 0);
        ck_assert_ptr_nonnull(ws);
        ks_store_iter_t *it;
        ck_assert_ptr_null(
                ks_window_store_fetch(ws, (ks_bytes_t){"a", 1}, 0, 100, &it));
        ks_bytes_t k, v;
        int64_t start;
        int64_t want[][2] = {{10, 2}, {20, 1}};
        int n             = 0;
        while (ks_store_iter_next_window(it, &k, &start, &v)) {
                ck_assert_int_lt(n, 2);
                ck_assert_int_eq(start, want[n][0]);
                ck_assert_int_eq(kt_be64(v.data), want[n][1]);
                n++;
        }
        ks_store_iter_destroy(it);
        ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(hopping_windows_count_a_record_in_every_window_it_falls_in) {
        /* size 10, advance 5: ts 7 is in [0,10) and [5,15); ts 12 in
         * [5,15) and [10,20). */
        windowed_count_topology(ks_hopping_window(10, 5, 100));
        pipe_at("a", "x", 7);
        pipe_at("a", "y", 12);
        pipe_at("a", "z", 2); /* only [0,10): windows start at 0 */
        expect_count("a", 0, 1);
        expect_count("a", 5, 1);
        expect_count("a", 5, 2);
        expect_count("a", 10, 1);
        expect_count("a", 0, 2);
        expect_end();
}
END_TEST

START_TEST(windowed_keys_deserialize_with_their_window) {
        char err[64];
        ks_serde_t *ws       = ks_serde_windowed(ks_serde_string(), 60000);
        ks_arena_t *a        = ks_arena_new(0);
        ks_windowed_key_t wk = {"user-1", 120000, 180000};
        ks_buf_t buf         = {0};
        ck_assert_int_eq(ks_serde_serialize(ws, &wk, &buf, err, sizeof(err)),
                         KS_OK);
        ck_assert_uint_eq(buf.len, 6 + 8);
        const void *obj;
        ck_assert_int_eq(ks_serde_deserialize(ws, a, buf.data, buf.len, &obj,
                                              err, sizeof(err)),
                         KS_OK);
        const ks_windowed_key_t *back = obj;
        ck_assert_str_eq(back->key, "user-1");
        ck_assert_int_eq(back->start, 120000);
        ck_assert_int_eq(back->end, 180000);
        ck_assert_int_eq(
                ks_serde_deserialize(ws, a, "abc", 3, &obj, err, sizeof(err)),
                KS_ERR_SERDE);
        ks_buf_free(&buf);
        ks_arena_destroy(a);
        ks_serde_destroy(ws);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("aggregate");
        TCase *tc = tcase_create("aggregate");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, count_by_key_emits_every_update_and_logs_it);
        tcase_add_test(
                tc, group_by_repartitions_so_each_key_is_counted_in_one_task);
        tcase_add_test(tc, reduce_sums_per_key);
        tcase_add_test(tc, aggregate_with_initializer_and_adder);
        tcase_add_test(tc, null_keys_and_values_are_skipped_and_counted);
        tcase_add_test(tc, tumbling_windows_with_grace_drop_late_records);
        tcase_add_test(
                tc, hopping_windows_count_a_record_in_every_window_it_falls_in);
        suite_add_tcase(s, tc);
        TCase *tc2 = tcase_create("serde");
        tcase_add_test(tc2, windowed_keys_deserialize_with_their_window);
        suite_add_tcase(s, tc2);
        return s;
}
