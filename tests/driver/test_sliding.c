/* Sliding windows through the test driver. Windows are [start, start + d]
 * with both ends inclusive; each record has a left window [ts - d, ts] and,
 * when later records fall within d, a right window [ts + 1, ts + 1 + d].
 * Expected outputs follow Kafka Streams' KStreamSlidingWindowAggregate
 * (processReverse: existing windows are updated from the latest start
 * back, then the previous record's right window, the record's left window
 * and its right window are created), worked out by hand below. Each case
 * also checks the window contents against the definition. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void teardown(void) {
        kd_stop(&drv, &topo);
}

static void sliding_count_topology(int64_t diff, int64_t grace) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_sliding_windowed_count(
                  ks_grouped_sliding_windowed_by(
                          ks_stream_group_by_key(s, NULL, NULL), diff, grace),
                  "sliding");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        drv = kd_start(b, "slide", NULL, &topo);
}

static void pipe_at(const char *key, int64_t ts) {
        kd_pipe(drv, "in", key, "v", ts);
}

/* The next output: key + window start (8 bytes), an int64 count, and the
 * record timestamp (the window's largest record timestamp, as Kafka). */
static void expect(const char *key, int64_t start, int64_t count, int64_t ts) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r),
                      "wanted %s@%lld=%lld", key, (long long)start,
                      (long long)count);
        size_t klen = strlen(key);
        ck_assert_uint_eq(r.key.len, klen + 8);
        ck_assert(!memcmp(r.key.data, key, klen));
        ck_assert_int_eq(kt_be64((const char *)r.key.data + klen), start);
        ck_assert_uint_eq(r.value.len, 8);
        ck_assert_int_eq(kt_be64(r.value.data), count);
        ck_assert_int_eq(r.timestamp, ts);
}

static void expect_end(void) {
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}

START_TEST(left_and_right_windows_and_records_exactly_d_apart) {
        sliding_count_topology(10, 100);
        /* 20: no windows yet; its left window [10,20] = {20}. */
        pipe_at("a", 20);
        expect("a", 10, 1, 20);
        expect_end();
        /* 25: [10,20] ends before 25: it is the left aggregate and 20 the
         * previous record. 20's right window [21,31] gets 25; 25's left
         * window [15,25] = [10,20]'s records + 25 = {20,25}. No record
         * after 25: no right window. */
        pipe_at("a", 25);
        expect("a", 21, 1, 25);
        expect("a", 15, 2, 25);
        expect_end();
        /* 30, exactly d after 20: [21,31] contains 30 -> {25,30}; [15,25]
         * ends before 30: previous record 25. 25's right window [26,36] =
         * {30}; 30's left window [20,30] = {20,25,30} (20 is on its
         * inclusive edge). */
        pipe_at("a", 30);
        expect("a", 21, 2, 30);
        expect("a", 26, 1, 30);
        expect("a", 20, 3, 30);
        expect_end();
        /* 22, out of order: windows containing 22, latest first: [21,31]
         * -> {22,25,30}, [20,30] -> {20,22,25,30}, [15,25] -> {20,22,25};
         * [10,20] ends before: previous record 20, whose right window
         * [21,31] exists. 22's left window [12,22] = {20,22}; its right
         * window [23,33] = {25,30}, taken from [21,31] before the update,
         * with that window's timestamp 30. */
        pipe_at("a", 22);
        expect("a", 21, 3, 30);
        expect("a", 20, 4, 30);
        expect("a", 15, 3, 25);
        expect("a", 12, 2, 22);
        expect("a", 23, 2, 30);
        expect_end();
        /* A record whose left window exists and holds a later record: only
         * that window changes. 30 again: [20,30] (max 30) -> 5, and the
         * windows containing 30: [26,36] -> 2, [23,33] -> 3, [21,31] -> 4. */
        pipe_at("a", 30);
        expect("a", 26, 2, 30);
        expect("a", 23, 3, 30);
        expect("a", 21, 4, 30);
        expect("a", 20, 5, 30);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 0);
}
END_TEST

START_TEST(early_records_share_the_first_window) {
        sliding_count_topology(10, 100);
        /* Records before d go into [0,10] (no negative starts). */
        pipe_at("b", 3);
        expect("b", 0, 1, 3);
        /* 8: [0,10] holds 3 (< 8): previous record 3, whose right window
         * [4,14] = {8}; then [0,10] = {3,8}. */
        pipe_at("b", 8);
        expect("b", 4, 1, 8);
        expect("b", 0, 2, 8);
        /* 5: [4,14] contains 5 -> {5,8}; 5's right window [6,16] = {8}
         * (from [4,14] before the update); [0,10] -> {3,5,8}. */
        pipe_at("b", 5);
        expect("b", 4, 2, 8);
        expect("b", 6, 1, 8);
        expect("b", 0, 3, 8);
        /* 12, a normal record: [6,16] -> {8,12}, [4,14] -> {5,8,12};
         * [0,10] ends before: previous record 8, whose right window [9,19]
         * = {12}; 12's left window [2,12] = [0,10]'s {3,5,8} + 12. */
        pipe_at("b", 12);
        expect("b", 6, 2, 12);
        expect("b", 4, 3, 12);
        expect("b", 9, 1, 12);
        expect("b", 2, 4, 12);
        expect_end();
}
END_TEST

START_TEST(late_records_and_closed_windows_are_dropped_and_counted) {
        /* d 10, grace 5: a window [s, s+10] closes when stream time
         * exceeds s + 10 + 5. */
        sliding_count_topology(10, 5);
        pipe_at("a", 100);
        expect("a", 90, 1, 100);
        /* 120: 100's right window [101,111] would not hold 120; the left
         * window [110,120] does not hold 100: = {120}. */
        pipe_at("a", 120);
        expect("a", 110, 1, 120);
        expect_end();
        /* Stream time 120, close time 115. 104: even its right window
         * [105,115] ends at 115 - 1 + 1 <= 115: dropped whole, 1 late. */
        pipe_at("a", 104);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 1);
        /* 105: 100's right window [101,111] and 105's left window
         * [95,105] end before 115: both closed, counted per window as
         * Kafka's dropped-records sensor does; no right window (no record
         * in (105,115]). */
        pipe_at("a", 105);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 3);
        /* 112: [110,120] contains it -> {112,120}; its left window
         * [102,112] is closed (112 < 115): counted; its right window
         * [113,123] = {120}, created from [110,120]. */
        pipe_at("a", 112);
        expect("a", 110, 2, 120);
        expect("a", 113, 1, 120);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 4);
}
END_TEST

/* Sums the values as integers, to check aggregates carry over. */
static const void *zero(ks_arena_t *a, void *o) {
        (void)o;
        return ks_arena_int64(a, 0);
}

static const void *add(ks_arena_t *a,
                       const void *k,
                       const void *v,
                       const void *agg,
                       void *o) {
        (void)k, (void)o;
        return ks_arena_int64(a, *(const int64_t *)agg + atoll(v));
}

START_TEST(aggregate_sums_per_window) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_sliding_windowed_aggregate(
                  ks_grouped_sliding_windowed_by(
                          ks_stream_group_by_key(s, NULL, NULL), 100, 0),
                  "sums", zero, add, NULL, ks_serde_int64());
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "%s", err);
        ks_builder_destroy(b);
        drv = ks_test_driver_new(topo, NULL, err, sizeof(err));
        ck_assert_ptr_nonnull(drv);
        ks_test_driver_pipe_str(drv, "in", "k", "5", 1000);
        ks_test_driver_pipe_str(drv, "in", "k", "7", 1050);
        /* 1000: [900,1000] = 5. 1050: 1000's right window [1001,1101] = 7,
         * 1050's left window [950,1050] = 5 + 7. */
        expect("k", 900, 5, 1000);
        expect("k", 1001, 7, 1050);
        expect("k", 950, 12, 1050);
        expect_end();
        /* The store's values hold the window's max timestamp first, as
         * Kafka's timestamped window store: 8 + 8 bytes. */
        ks_test_record_t r;
        int n = 0;
        while (ks_test_driver_read(drv, "test-driver-sums-changelog", &r)) {
                ck_assert_uint_eq(r.key.len, 1 + 8);
                ck_assert_uint_eq(r.value.len, 16);
                n++;
        }
        ck_assert_int_eq(n, 3);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("sliding");
        TCase *tc = tcase_create("sliding");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, left_and_right_windows_and_records_exactly_d_apart);
        tcase_add_test(tc, early_records_share_the_first_window);
        tcase_add_test(tc,
                       late_records_and_closed_windows_are_dropped_and_counted);
        tcase_add_test(tc, aggregate_sums_per_window);
        suite_add_tcase(s, tc);
        return s;
}
