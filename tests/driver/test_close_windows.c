/* ks_test_driver_close_windows(): every window still buffered by a
 * suppression is emitted at the end of input, once; and struct aggregates
 * (ks_serde_struct()) updated in place, one copy per window. Expected
 * values are worked out by hand in the comments. */
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

/* The next "out" record: key bytes @p key + 8 bytes of window start, and
 * a value whose first int64 is @p v0 (and second @p v1 when @p vlen is
 * 16). */
static void expect(const char *key,
                   int64_t start,
                   size_t vlen,
                   int64_t v0,
                   int64_t v1) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r), "wanted %s@%lld",
                      key, (long long)start);
        size_t klen = strlen(key);
        ck_assert_uint_eq(r.key.len, klen + 8);
        ck_assert(!memcmp(r.key.data, key, klen));
        ck_assert_int_eq(kt_be64((const char *)r.key.data + klen), start);
        ck_assert_uint_eq(r.value.len, vlen);
        ck_assert_int_eq(kt_be64(r.value.data), v0);
        if (vlen == 16)
                ck_assert_int_eq(kt_be64((const char *)r.value.data + 8), v1);
}

static void close_all(size_t want_emitted) {
        size_t n        = 99;
        ks_error_t *err = ks_test_driver_close_windows(drv, &n);
        ck_assert_msg(!err, "%s", err ? ks_error_message(err) : "");
        ck_assert_uint_eq(n, want_emitted);
}

START_TEST(close_windows_emits_each_open_window_once) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_windowed_count(
                  ks_grouped_windowed_by(ks_stream_group_by_key(s, NULL, NULL),
                                         ks_tumbling_window(10, 5)),
                  "counts");
        ks_stream_to(
                ks_table_to_stream(
                        ks_table_suppress(t, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                          "final"),
                        NULL),
                "out", NULL, NULL);
        drv = kd_start(b, "close", NULL, &topo);
        ks_test_driver_create_topic(drv, "in", 1);
        kd_pipe(drv, "in", "a", "x", 1);
        kd_pipe(drv, "in", "b", "x", 3);
        kd_pipe(drv, "in", "a", "x", 12);
        /* Stream time 12 < 10 + grace 5: nothing has closed. */
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        close_all(3);
        /* In buffer-time (window end) order, then key bytes. */
        expect("a", 0, 8, 1, 0);
        expect("b", 0, 8, 1, 0);
        expect("a", 10, 8, 1, 0);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        close_all(0); /* nothing left: nothing twice */
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        /* A record after it updates its window, emitted at the next
         * close. */
        kd_pipe(drv, "in", "a", "x", 13);
        close_all(1);
        expect("a", 10, 8, 2, 0);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}
END_TEST

START_TEST(close_windows_reaches_suppressions_behind_a_repartition) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        /* group by value: the count is in the second sub-topology */
        ks_stream_t *rekeyed = ks_stream_repartition(s, "rk", ks_serde_string(),
                                                     ks_serde_string(), 2);
        ks_table_t *t        = ks_windowed_count(
                       ks_grouped_windowed_by(
                               ks_stream_group_by_key(rekeyed, NULL, NULL),
                               ks_tumbling_window(10, 0)),
                       "counts");
        ks_stream_to(
                ks_table_to_stream(
                        ks_table_suppress(t, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                          "final"),
                        NULL),
                "out", NULL, NULL);
        drv = kd_start(b, "close2", NULL, &topo);
        ks_test_driver_create_topic(drv, "in", 2);
        kd_pipe(drv, "in", "k1", "x", 5);
        kd_pipe(drv, "in", "k2", "x", 6);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        close_all(2);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 2);
}
END_TEST

typedef struct sum_s {
        int64_t count;
        int64_t sum;
} sum_t;

static const void *sum_init(ks_arena_t *a, void *opaque) {
        (void)opaque;
        sum_t *s = ks_arena_alloc(a, sizeof(*s));
        if (s)
                memset(s, 0, sizeof(*s));
        return s;
}

/* Updates the aggregate it is given in place, as table.h allows. */
static const void *sum_add(ks_arena_t *a,
                           const void *key,
                           const void *value,
                           const void *agg,
                           void *opaque) {
        (void)a, (void)key, (void)opaque;
        sum_t *s = (sum_t *)agg;
        s->count++;
        s->sum += atoi(value);
        return s;
}

START_TEST(struct_aggregate_updated_in_place_has_one_copy_per_window) {
        static const ks_struct_field_t fields[] = {
                KS_STRUCT_FIELD(KS_FIELD_INT64, sum_t, count),
                KS_STRUCT_FIELD(KS_FIELD_INT64, sum_t, sum)};
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_windowed_aggregate(
                  ks_grouped_windowed_by(ks_stream_group_by_key(s, NULL, NULL),
                                         ks_hopping_window(10, 5, 0)),
                  "sums", sum_init, sum_add, NULL,
                  ks_serde_struct("sum", sizeof(sum_t), fields, 2));
        ks_stream_to(
                ks_table_to_stream(
                        ks_table_suppress(t, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                          "final"),
                        NULL),
                "out", NULL, NULL);
        drv = kd_start(b, "inplace", NULL, &topo);
        ks_test_driver_create_topic(drv, "in", 1);
        /* 7 and 8 are in [0,10) and [5,15); 12 only in [5,15) and
         * [10,20). Had one object been shared by the windows of a record,
         * counts would double up. */
        kd_pipe(drv, "in", "a", "1", 7);
        kd_pipe(drv, "in", "a", "2", 8);
        kd_pipe(drv, "in", "a", "4", 12);
        /* stream time 12 >= 10: [0,10) closed: count 2, sum 3 */
        expect("a", 0, 16, 2, 3);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        close_all(2);
        expect("a", 5, 16, 3, 7);
        expect("a", 10, 16, 1, 4);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("close_windows");
        TCase *tc = tcase_create("close_windows");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, close_windows_emits_each_open_window_once);
        tcase_add_test(tc,
                       close_windows_reaches_suppressions_behind_a_repartition);
        tcase_add_test(
                tc, struct_aggregate_updated_in_place_has_one_copy_per_window);
        suite_add_tcase(s, tc);
        return s;
}
