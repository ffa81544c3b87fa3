/* Session windows through the test driver: merges of sessions a record
 * bridges, gaps, records exactly the gap apart, records inside a session,
 * out-of-order records within grace, late records, the merger, and the
 * session-windowed key serde. Expected outputs are worked out by hand from
 * Kafka Streams' KStreamSessionWindowAggregate in the comments: a record at
 * ts merges the key's sessions ending at or after ts - gap and starting at
 * or before ts + gap; merged sessions are removed (a NULL value, Kafka's
 * Change(null, old)) unless their window is the merged one, which the new
 * value overwrites. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void start(ks_builder_t *b) {
        drv = kd_start(b, "sess", NULL, &topo);
        ks_test_driver_create_topic(drv, "in", 1);
}

static void teardown(void) {
        kd_stop(&drv, &topo);
}

static void pipe_at(const char *key, const char *value, int64_t ts) {
        kd_pipe(drv, "in", key, value, ts);
}

/* Reads the next output: a session-windowed key (key, end, start) and its
 * value: an int64 count, or a tombstone when @p count is -1. Checks the
 * record's timestamp is the session end, as Kafka Streams forwards. */
static void expect_session(const char *key,
                           int64_t start,
                           int64_t end,
                           int64_t count) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r),
                      "wanted %s[%lld,%lld]=%lld", key, (long long)start,
                      (long long)end, (long long)count);
        size_t klen = strlen(key);
        ck_assert_uint_eq(r.key.len, klen + 16);
        ck_assert(!memcmp(r.key.data, key, klen));
        ck_assert_int_eq(kt_be64((const char *)r.key.data + klen), end);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + klen + 8), start);
        ck_assert_int_eq(r.timestamp, end);
        if (count < 0) {
                ck_assert_msg(!r.value.data, "wanted a tombstone for %s", key);
        } else {
                ck_assert_ptr_nonnull(r.value.data);
                ck_assert_uint_eq(r.value.len, 8);
                ck_assert_int_eq(kt_be64(r.value.data), count);
        }
}

static void expect_end(void) {
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}

static void session_count_topology(int64_t gap, int64_t grace) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_session_windowed_count(
                  ks_grouped_session_windowed_by(
                          ks_stream_group_by_key(s, NULL, NULL), gap, grace),
                  "sessions");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        start(b);
}

START_TEST(sessions_merge_split_by_gaps_and_drop_late_records) {
        /* gap 10, grace 20: a session [s, e] closes when stream time passes
         * e + 10 + 20 (Kafka's close time: stream time - grace - gap); the
         * store keeps sessions for gap + grace. */
        session_count_topology(10, 20);
        pipe_at("a", "x", 0);
        expect_session("a", 0, 0, 1); /* a new session */
        expect_end();
        /* 5 is within 10 of [0,0]: merged into [0,5]; [0,0] goes. */
        pipe_at("a", "x", 5);
        expect_session("a", 0, 0, -1);
        expect_session("a", 0, 5, 2);
        expect_end();
        /* 20 is 15 after 5: a gap, a new session. */
        pipe_at("a", "x", 20);
        expect_session("a", 20, 20, 1);
        expect_end();
        /* 12 is within 10 of both [0,5] and [20,20]: it bridges them into
         * [0,20] = 2 + 1 + 1; both old sessions go, by end. */
        pipe_at("a", "x", 12);
        expect_session("a", 0, 5, -1);
        expect_session("a", 20, 20, -1);
        expect_session("a", 0, 20, 4);
        expect_end();
        /* 30 is exactly the gap after 20: the gap is inclusive, so it
         * extends [0,20] to [0,30]. */
        pipe_at("a", "x", 30);
        expect_session("a", 0, 20, -1);
        expect_session("a", 0, 30, 5);
        expect_end();
        /* 25 falls inside [0,30]: the merged window is [0,30] itself, so
         * the session is updated in place, with no tombstone. */
        pipe_at("a", "x", 25);
        expect_session("a", 0, 30, 6);
        expect_end();
        /* Keys have their own sessions. */
        pipe_at("b", "x", 26);
        expect_session("b", 26, 26, 1);
        expect_end();
        /* 41 is 11 after 30: a new session. Stream time 41: a session
         * ending before 41 - 20 - 10 = 11 is closed. */
        pipe_at("a", "x", 41);
        expect_session("a", 41, 41, 1);
        expect_end();
        /* a at 0 still merges into [0,30], which is open. */
        pipe_at("a", "x", 0);
        expect_session("a", 0, 30, 7);
        expect_end();
        /* c at 0 and b at 10 (15 before [26,26]) make sessions ending
         * before 11: late, dropped and counted. */
        pipe_at("c", "x", 0);
        pipe_at("b", "x", 10);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 2);
        /* b at 11 ends exactly at the close time: still open. */
        pipe_at("b", "x", 11);
        expect_session("b", 11, 11, 1);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 2);
}
END_TEST

START_TEST(closed_sessions_are_not_bridged) {
        /* gap 10, grace 0. [0,5] closes at stream time 15 (and leaves the
         * store, whose retention is gap + grace): at stream time 20 a
         * record at 12 merges with [20,20] only, as in Kafka Streams. */
        session_count_topology(10, 0);
        pipe_at("a", "x", 0);
        pipe_at("a", "x", 5);
        pipe_at("a", "x", 20);
        expect_session("a", 0, 0, 1);
        expect_session("a", 0, 0, -1);
        expect_session("a", 0, 5, 2);
        expect_session("a", 20, 20, 1);
        pipe_at("a", "x", 12);
        expect_session("a", 20, 20, -1);
        expect_session("a", 12, 20, 2);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 0);
}
END_TEST

START_TEST(out_of_order_records_within_grace_are_merged) {
        /* gap 10, grace 100: closed when end < stream time - 110. */
        session_count_topology(10, 100);
        pipe_at("a", "x", 100);
        pipe_at("a", "x", 200); /* 100 apart: its own session */
        expect_session("a", 100, 100, 1);
        expect_session("a", 200, 200, 1);
        /* Stream time 200, close time 90. 95 joins [100,100]: [95,100]. */
        pipe_at("a", "x", 95);
        expect_session("a", 100, 100, -1);
        expect_session("a", 95, 100, 2);
        expect_end();
        /* 80 is 15 before 95: its own session [80,80], ending before 90:
         * late, dropped and counted. */
        pipe_at("a", "x", 80);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 1);
        /* 90 is not: [90,90] merges with [95,100] into [90,100]. */
        pipe_at("a", "x", 90);
        expect_session("a", 95, 100, -1);
        expect_session("a", 90, 100, 3);
        expect_end();
        /* The changelog got every store change: puts of [100,100],
         * [200,200], [95,100], [90,100] and removals of [100,100] and
         * [95,100]; the late record changed nothing. */
        ks_test_record_t r;
        int n = 0;
        while (ks_test_driver_read(drv, "sess-sessions-changelog", &r))
                n++;
        ck_assert_int_eq(n, 6);
}
END_TEST

/* A list aggregate: values joined with ",", sessions merged in order. */
static const void *empty(ks_arena_t *a, void *o) {
        (void)o;
        return ks_arena_strdup(a, "");
}

static const char *join(ks_arena_t *a, const char *x, const char *y) {
        size_t n = strlen(x) + strlen(y) + 2;
        char *s  = ks_arena_alloc(a, n);
        snprintf(s, n, "%s%s%s", x, *x && *y ? "," : "", y);
        return s;
}

static const void *add(ks_arena_t *a,
                       const void *k,
                       const void *v,
                       const void *agg,
                       void *o) {
        (void)k, (void)o;
        return join(a, agg, v);
}

static const void *merge(ks_arena_t *a,
                         const void *k,
                         const void *agg1,
                         const void *agg2,
                         void *o) {
        (void)k;
        ck_assert_str_eq(o, "opaque");
        return join(a, agg1, agg2);
}

START_TEST(aggregate_merges_with_the_merger) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_session_windowed_aggregate(
                  ks_grouped_session_windowed_by(
                          ks_stream_group_by_key(s, NULL, NULL), 10, 100),
                  "lists", empty, add, merge, "opaque", ks_serde_string());
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        start(b);
        pipe_at("k", "x", 0);
        pipe_at("k", "y", 20);
        /* 10 bridges [0,0]="x" and [20,20]="y": the merger folds them in
         * store order (by end) onto the initializer, then the adder adds
         * "z": "x,y,z". */
        pipe_at("k", "z", 10);
        const char *want[][4] = {{"0", "0", "x"},
                                 {"20", "20", "y"},
                                 {"0", "0", NULL},
                                 {"20", "20", NULL},
                                 {"0", "20", "x,y,z"}};
        for (int i = 0; i < 5; i++) {
                ks_test_record_t r;
                ck_assert(ks_test_driver_read(drv, "out", &r));
                ck_assert_uint_eq(r.key.len, 1 + 16);
                ck_assert_int_eq(kt_be64((const char *)r.key.data + 9),
                                 atoll(want[i][0]));
                ck_assert_int_eq(kt_be64((const char *)r.key.data + 1),
                                 atoll(want[i][1]));
                if (!want[i][2]) {
                        ck_assert_ptr_null(r.value.data);
                        continue;
                }
                ck_assert_uint_eq(r.value.len, strlen(want[i][2]));
                ck_assert(!memcmp(r.value.data, want[i][2], r.value.len));
        }
        expect_end();
}
END_TEST

START_TEST(session_windowed_keys_serialize_as_kafka) {
        char err[64];
        ks_serde_t *ss       = ks_serde_session_windowed(ks_serde_string());
        ks_arena_t *a        = ks_arena_new(0);
        ks_windowed_key_t wk = {"user-1", 1000, 5000};
        ks_buf_t buf         = {0};
        ck_assert_int_eq(ks_serde_serialize(ss, &wk, &buf, err, sizeof(err)),
                         KS_OK);
        /* SessionWindowedSerde: key, end, start. */
        ck_assert_uint_eq(buf.len, 6 + 16);
        ck_assert(!memcmp(buf.data, "user-1", 6));
        ck_assert_int_eq(kt_be64(buf.data + 6), 5000);
        ck_assert_int_eq(kt_be64(buf.data + 14), 1000);
        const void *obj;
        ck_assert_int_eq(ks_serde_deserialize(ss, a, buf.data, buf.len, &obj,
                                              err, sizeof(err)),
                         KS_OK);
        const ks_windowed_key_t *back = obj;
        ck_assert_str_eq(back->key, "user-1");
        ck_assert_int_eq(back->start, 1000);
        ck_assert_int_eq(back->end, 5000);
        ck_assert_int_eq(ks_serde_deserialize(ss, a, "0123456789abcde", 15,
                                              &obj, err, sizeof(err)),
                         KS_ERR_SERDE);
        ks_buf_free(&buf);
        ks_arena_destroy(a);
        ks_serde_destroy(ss);
}
END_TEST

START_TEST(invalid_session_windows_fail_the_build) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_session_windowed_count(
                  ks_grouped_session_windowed_by(
                          ks_stream_group_by_key(s, NULL, NULL), 0, 0),
                  "sessions");
        ck_assert_ptr_null(t);
        ks_topology_t *tp = ks_builder_build(b, err, sizeof(err));
        ck_assert_ptr_null(tp);
        ck_assert_msg(strstr(err, "session_windowed_by"), "%s", err);
        ks_builder_destroy(b);
        drv  = NULL;
        topo = NULL;
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("session");
        TCase *tc = tcase_create("session");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, sessions_merge_split_by_gaps_and_drop_late_records);
        tcase_add_test(tc, closed_sessions_are_not_bridged);
        tcase_add_test(tc, out_of_order_records_within_grace_are_merged);
        tcase_add_test(tc, aggregate_merges_with_the_merger);
        tcase_add_test(tc, invalid_session_windows_fail_the_build);
        suite_add_tcase(s, tc);
        TCase *tc2 = tcase_create("serde");
        tcase_add_test(tc2, session_windowed_keys_serialize_as_kafka);
        suite_add_tcase(s, tc2);
        return s;
}
