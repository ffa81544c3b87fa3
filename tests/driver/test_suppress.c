/* Suppression through the test driver: final results of time and session
 * windows emitted exactly when the windows close and never before,
 * time-limit rate limiting, the wall-clock idle advance, and the
 * event-count job's shape. Expected outputs follow Kafka Streams'
 * KTableSuppressProcessor: the processor's stream time is the largest
 * timestamp of the updates it saw; an entry is emitted once its buffer
 * time <= stream time - duration, in (buffer time, key bytes) order. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void start(ks_builder_t *b) {
        drv = kd_start(b, "sup", NULL, &topo);
        ks_test_driver_create_topic(drv, "in", 1);
}

static void teardown(void) {
        kd_stop(&drv, &topo);
}

static void pipe_at(const char *key, const char *value, int64_t ts) {
        kd_pipe(drv, "in", key, value, ts);
}

/* The next output of @p topic: key bytes @p key followed by @p tail_len
 * bytes of window (start, or end + start for sessions: checked by the
 * caller through @p r), an int64 count, and the record timestamp. */
static void expect_rec(const char *topic,
                       const char *key,
                       size_t tail_len,
                       int64_t count,
                       int64_t ts,
                       ks_test_record_t *r) {
        ck_assert_msg(ks_test_driver_read(drv, topic, r), "wanted %s=%lld", key,
                      (long long)count);
        size_t klen = strlen(key);
        ck_assert_uint_eq(r->key.len, klen + tail_len);
        ck_assert(!memcmp(r->key.data, key, klen));
        ck_assert_uint_eq(r->value.len, 8);
        ck_assert_int_eq(kt_be64(r->value.data), count);
        ck_assert_int_eq(r->timestamp, ts);
}

static void expect_window(const char *key,
                          int64_t start,
                          int64_t count,
                          int64_t ts) {
        ks_test_record_t r;
        expect_rec("out", key, 8, count, ts, &r);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + strlen(key)),
                         start);
}

static void expect_plain(const char *key, int64_t count, int64_t ts) {
        ks_test_record_t r;
        expect_rec("out", key, 0, count, ts, &r);
}

static void expect_end(void) {
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}

/* tumbling windows (size 10, grace 5) -> count -> suppress [-> idle] */
static void tumbling_final_topology(int64_t idle_ms) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_windowed_count(
                  ks_grouped_windowed_by(ks_stream_group_by_key(s, NULL, NULL),
                                         ks_tumbling_window(10, 5)),
                  "counts");
        ks_table_t *f = ks_table_suppress(t, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                          "final");
        if (idle_ms)
                f = ks_table_suppress_idle_advance(f, idle_ms);
        ks_stream_to(ks_table_to_stream(f, NULL), "out", NULL, NULL);
        start(b);
}

START_TEST(final_results_of_time_windows_only_when_they_close) {
        /* [s, s+10) closes when stream time reaches s + 10 + 5. */
        tumbling_final_topology(0);
        pipe_at("a", "x", 1);
        pipe_at("a", "x", 3); /* [0,10) = 2 */
        pipe_at("a", "x", 12);
        pipe_at("a", "x", 14); /* [10,20) = 2; stream time 14 < 15 */
        expect_end();
        /* Stream time 15 = 10 + 5: [0,10) closes with its last value, which
         * carries the timestamp of the update that made it (3). */
        pipe_at("a", "x", 15);
        expect_window("a", 0, 2, 3);
        expect_end();
        /* b at 9 is late for the aggregation: never reaches suppress. */
        pipe_at("b", "x", 9);
        expect_end();
        pipe_at("a", "x", 24); /* [20,30) = 1; stream time 24 < 25 */
        expect_end();
        /* 25 closes [10,20) = {12,14,15}. */
        pipe_at("c", "x", 25);
        expect_window("a", 10, 3, 15);
        expect_end();
        /* The buffer is a store with a changelog. */
        ck_assert_uint_gt(
                ks_test_driver_remaining(drv, "sup-final-store-changelog"), 0);
        ks_buf_t d = {0};
        ks_topology_describe(topo, &d);
        ck_assert_msg(strstr(d.data, "final-store"), "%s", d.data);
        ks_buf_free(&d);
}
END_TEST

START_TEST(final_results_of_sessions_drop_merged_ones) {
        /* Sessions with gap 10, grace 0: a session [s, e] is final when
         * stream time reaches e + 10 + 0. */
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_session_windowed_count(
                  ks_grouped_session_windowed_by(
                          ks_stream_group_by_key(s, NULL, NULL), 10, 0),
                  "sessions");
        ks_stream_to(
                ks_table_to_stream(
                        ks_table_suppress(t, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                          NULL),
                        NULL),
                "out", NULL, NULL);
        start(b);
        pipe_at("a", "x", 0);  /* [0,0] = 1 buffered at 0 */
        pipe_at("a", "x", 5);  /* [0,0] -> tombstone; [0,5] = 2 at 5 */
        pipe_at("a", "x", 15); /* [0,5] -> tombstone; [0,15] = 3 at 15 */
        /* Stream time 15: [0,0] and [0,5] are due (0, 5 <= 15 - 10) but
         * hold tombstones: dropped, nothing emitted. */
        expect_end();
        pipe_at("b", "x", 24); /* stream time 24: [0,15] due at 25 */
        expect_end();
        /* b at 25 merges into [24,25]; stream time 25 = 15 + 10: [0,15]
         * is final. */
        pipe_at("b", "x", 25);
        ks_test_record_t r;
        expect_rec("out", "a", 16, 3, 15, &r);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 1), 15);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 9), 0);
        expect_end();
}
END_TEST

START_TEST(time_limit_rate_limits_each_key) {
        /* count -> suppress until time limit 10: a key is emitted with its
         * latest value 10 (stream time) after it was first buffered. */
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t = ks_grouped_count(ks_stream_group_by_key(s, NULL, NULL),
                                         "counts");
        ks_stream_to(ks_table_to_stream(
                             ks_table_suppress(t, KS_SUPPRESS_UNTIL_TIME_LIMIT,
                                               10, "limited"),
                             NULL),
                     "out", NULL, NULL);
        start(b);
        pipe_at("a", "x", 0); /* a = 1, buffered at 0 */
        pipe_at("a", "x", 2); /* a = 2, keeps its place (0) */
        pipe_at("b", "x", 5); /* b = 1 at 5 */
        pipe_at("a", "x", 9); /* a = 3; stream time 9 < 0 + 10 */
        expect_end();
        pipe_at("c", "x", 10); /* c = 1 at 10; a due: a = 3 (ts 9) */
        expect_plain("a", 3, 9);
        expect_end();
        pipe_at("a", "x", 11); /* a = 4, buffered anew at 11 */
        pipe_at("b", "x", 14); /* b = 2 (still at 5) */
        expect_end();
        pipe_at("x", "x", 15); /* b due (5 <= 15 - 10) */
        expect_plain("b", 2, 14);
        expect_end();
        pipe_at("y", "x", 21); /* c (10) then a (11), by buffer time */
        expect_plain("c", 1, 10);
        expect_plain("a", 4, 11);
        expect_end();
        ks_test_driver_advance_wall_clock(drv, 1000000);
        expect_end(); /* no idle advance configured: nothing moves */
}
END_TEST

START_TEST(idle_advance_closes_windows_without_new_records) {
        /* Idle advance of 5 ms (checked every 5 ms): after 5 ms of wall
         * clock without a record, stream time moves by the wall-clock time
         * elapsed. [0,10) needs stream time 15. */
        tumbling_final_topology(5);
        pipe_at("a", "x", 1);
        pipe_at("a", "x", 3); /* wall 0, stream time 3 */
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 4));
        expect_end(); /* the check is not due before wall 5 */
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 1));
        expect_end(); /* wall 5: idle 5 ms: stream time 3 + 5 = 8 */
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 5));
        expect_end(); /* wall 10: 13 */
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 5));
        /* wall 15: 18 >= 15: [0,10) closes with no new record. */
        expect_window("a", 0, 2, 3);
        expect_end();
        /* A record resets the idle clock: at wall 15 a@16 ([10,20), stream
         * time max(18, 16) = 18); at wall 19 (idle 4) nothing moves. */
        pipe_at("a", "x", 16);
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 4));
        expect_end();
        /* wall 20: idle 5: 18 + 5 = 23 < 25; wall 25: 28: [10,20) closes. */
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 1));
        expect_end();
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 5));
        expect_window("a", 10, 1, 16);
        expect_end();
}
END_TEST

START_TEST(without_idle_advance_an_idle_window_stays_open) {
        tumbling_final_topology(0);
        pipe_at("a", "x", 1);
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 3600000));
        expect_end();
}
END_TEST

/* The event-count job: events keyed by user, valued by event type. */
static const void *event_type(ks_arena_t *a,
                              const void *k,
                              const void *v,
                              void *o) {
        (void)a, (void)k, (void)o;
        return v;
}

START_TEST(event_count_job_emits_one_final_count_per_type_and_window) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *ev = ks_builder_stream(b, "user-events", ks_serde_string(),
                                            ks_serde_string());
        ks_grouped_t *by   = ks_stream_group_by(ev, "by-type", event_type, NULL,
                                                ks_serde_string(), NULL);
        ks_table_t *counts = ks_windowed_count(
                ks_grouped_windowed_by(by, ks_tumbling_window(60000, 10000)),
                "event-counts");
        ks_stream_to(ks_table_to_stream(
                             ks_table_suppress(counts,
                                               KS_SUPPRESS_UNTIL_WINDOW_CLOSES,
                                               0, "final-counts"),
                             NULL),
                     "event-analytics", NULL, NULL);
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "build: %s", err);
        ks_builder_destroy(b);
        drv = ks_test_driver_new(topo, NULL, err, sizeof(err));
        ck_assert_ptr_nonnull(drv);
        struct {
                const char *user, *type;
                int64_t ts;
        } in[] = {
                {"u1", "click", 1000},  {"u2", "view", 2000},
                {"u3", "click", 30000}, {"u1", "click", 59999},
                {"u2", "view", 60000}, /* the next window */
                {"u3", "click", 65000}, {"u4", "view", 69999},
        };
        for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
                ck_assert_ptr_null(ks_test_driver_pipe_str(
                        drv, "user-events", in[i].user, in[i].type, in[i].ts));
        /* Stream time 69999 < 60000 + 10000: nothing final yet. */
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "event-analytics"), 0);
        /* 70000 closes [0,60000): click = 3, view = 1, in key order. */
        ck_assert_ptr_null(ks_test_driver_pipe_str(drv, "user-events", "u5",
                                                   "click", 70000));
        ks_test_record_t r;
        expect_rec("event-analytics", "click", 8, 3, 59999, &r);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 5), 0);
        expect_rec("event-analytics", "view", 8, 1, 2000, &r);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 4), 0);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "event-analytics"), 0);
        /* A late click for [0,60000) is dropped by the count. */
        ck_assert_ptr_null(
                ks_test_driver_pipe_str(drv, "user-events", "u6", "click", 5));
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "event-analytics"), 0);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 1);
        /* 130000 closes [60000,120000): click = 2 (65000, 70000), view = 2
         * (60000, 69999). */
        ck_assert_ptr_null(ks_test_driver_pipe_str(drv, "user-events", "u1",
                                                   "view", 130000));
        expect_rec("event-analytics", "click", 8, 2, 70000, &r);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 5), 60000);
        expect_rec("event-analytics", "view", 8, 2, 69999, &r);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "event-analytics"), 0);
}
END_TEST

START_TEST(until_window_closes_needs_a_windowed_table) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t = ks_grouped_count(ks_stream_group_by_key(s, NULL, NULL),
                                         "counts");
        ck_assert_ptr_null(
                ks_table_suppress(t, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0, "f"));
        ck_assert_ptr_null(ks_builder_build(b, err, sizeof(err)));
        ck_assert_msg(strstr(err, "windowed table"), "%s", err);
        ks_builder_destroy(b);
        drv  = NULL;
        topo = NULL;
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("suppress");
        TCase *tc = tcase_create("suppress");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, final_results_of_time_windows_only_when_they_close);
        tcase_add_test(tc, final_results_of_sessions_drop_merged_ones);
        tcase_add_test(tc, time_limit_rate_limits_each_key);
        tcase_add_test(tc, idle_advance_closes_windows_without_new_records);
        tcase_add_test(tc, without_idle_advance_an_idle_window_stays_open);
        tcase_add_test(
                tc, event_count_job_emits_one_final_count_per_type_and_window);
        tcase_add_test(tc, until_window_closes_needs_a_windowed_table);
        suite_add_tcase(s, tc);
        return s;
}
