/* The record cache (statestore.cache.max.bytes) through the test driver in
 * manual-commit mode, where updates wait between commits as in the
 * runtime: repeated updates of a key collapse into one changelog and one
 * downstream record carrying the last update's timestamp and headers;
 * a full cache evicts its oldest keys early; a session created and merged
 * away within one interval never shows; size 0 sends every update.
 * Expected outputs are worked out by hand in the comments. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void start(ks_builder_t *b, const char *cache_bytes) {
        const char *conf[] = {"statestore.cache.max.bytes", cache_bytes, NULL};
        drv = kd_start(b, "cache", cache_bytes ? conf : NULL, &topo);
        ks_test_driver_create_topic(drv, "in", 1);
        ks_test_driver_set_manual_commit(drv, true);
}

static void teardown(void) {
        kd_stop(&drv, &topo);
}

static void pipe_at(const char *key, const char *value, int64_t ts) {
        kd_pipe(drv, "in", key, value, ts);
}

static void commit(void) {
        ks_error_t *e = ks_test_driver_commit(drv);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
}

/* The next output is key=count (plain keys), stamped @p ts. */
static void expect_count(const char *key, int64_t count, int64_t ts) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r), "wanted %s=%lld",
                      key, (long long)count);
        ck_assert_uint_eq(r.key.len, strlen(key));
        ck_assert(!memcmp(r.key.data, key, r.key.len));
        ck_assert_uint_eq(r.value.len, 8);
        ck_assert_int_eq(kt_be64(r.value.data), count);
        ck_assert_int_eq(r.timestamp, ts);
}

static size_t drain(const char *topic) {
        ks_test_record_t r;
        size_t n = 0;
        while (ks_test_driver_read(drv, topic, &r))
                n++;
        return n;
}

static ks_builder_t *count_topology(void) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t = ks_grouped_count(ks_stream_group_by_key(s, NULL, NULL),
                                         "counts");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        return b;
}

START_TEST(repeated_updates_collapse_until_the_commit) {
        start(count_topology(), NULL); /* the 10 MiB default */
        pipe_at("a", "x", 1);
        pipe_at("b", "x", 2);
        pipe_at("a", "y", 3);
        pipe_at("a", "z", 4);
        /* Nothing leaves before the commit; the store already counts. */
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(
                ks_test_driver_remaining(drv, "cache-counts-changelog"), 0);
        ks_kv_store_t *st = ks_test_driver_kv_store(drv, "counts", 0);
        ks_bytes_t v;
        bool found;
        ck_assert_ptr_null(
                ks_kv_store_get(st, (ks_bytes_t){"a", 1}, &v, &found));
        ck_assert(found);
        ck_assert_int_eq(kt_be64(v.data), 3);
        commit();
        /* One record per key, in the order of their last update (b at 2,
         * then a at 4), each with its last update's timestamp. */
        expect_count("b", 1, 2);
        expect_count("a", 3, 4);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(drain("cache-counts-changelog"), 2);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "cache-puts"), 4);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "cache-flushed"), 2);
        /* The next interval starts from the stored counts. */
        pipe_at("b", "y", 5);
        commit();
        expect_count("b", 2, 5);
}
END_TEST

START_TEST(size_zero_sends_every_update) {
        start(count_topology(), "0");
        pipe_at("a", "x", 1);
        pipe_at("a", "y", 2);
        expect_count("a", 1, 1);
        expect_count("a", 2, 2);
        commit();
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(drain("cache-counts-changelog"), 2);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "cache-puts"), 0);
}
END_TEST

START_TEST(a_full_cache_evicts_its_oldest_keys) {
        /* Each entry costs 64 bytes of bookkeeping + a 2-byte key + an
         * 8-byte count = 74 bytes: 200 bytes hold two keys. */
        start(count_topology(), "200");
        pipe_at("k1", "x", 1);
        pipe_at("k2", "x", 2);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        pipe_at("k1", "y", 3); /* an update moves k1 behind k2 */
        pipe_at("k3", "x", 4); /* a third key: the oldest, k2, goes out */
        expect_count("k2", 1, 2);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        commit();
        expect_count("k1", 2, 3);
        expect_count("k3", 1, 4);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(drain("cache-counts-changelog"), 3);
}
END_TEST

START_TEST(the_last_update_keeps_its_headers) {
        start(count_topology(), NULL);
        ks_header_t h1 = {"trace", {"one", 3}}, h2 = {"trace", {"two", 3}};
        ks_error_t *e =
                ks_test_driver_pipe(drv, "in", -1, "a", 1, "x", 1, 10, &h1, 1);
        ck_assert_ptr_null(e);
        e = ks_test_driver_pipe(drv, "in", -1, "a", 1, "y", 1, 11, &h2, 1);
        ck_assert_ptr_null(e);
        commit();
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "out", &r));
        ck_assert_int_eq(r.timestamp, 11);
        ck_assert_uint_eq(r.header_cnt, 1);
        ck_assert_str_eq(r.headers[0].name, "trace");
        ck_assert_uint_eq(r.headers[0].value.len, 3);
        ck_assert(!memcmp(r.headers[0].value.data, "two", 3));
}
END_TEST

/* Reads the next output: a session-windowed key (key, end, start) and its
 * count, or -1 for a tombstone. */
static void expect_session(const char *key,
                           int64_t start_ms,
                           int64_t end_ms,
                           int64_t count) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r),
                      "wanted %s [%lld, %lld]", key, (long long)start_ms,
                      (long long)end_ms);
        size_t klen = strlen(key);
        ck_assert_uint_eq(r.key.len, klen + 16);
        ck_assert(!memcmp(r.key.data, key, klen));
        ck_assert_int_eq(kt_be64((const char *)r.key.data + klen), end_ms);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + klen + 8),
                         start_ms);
        if (count < 0) {
                ck_assert_ptr_null(r.value.data);
                return;
        }
        ck_assert_uint_eq(r.value.len, 8);
        ck_assert_int_eq(kt_be64(r.value.data), count);
}

static void session_topology(const char *cache_bytes) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_session_windowed_count(
                  ks_grouped_session_windowed_by(
                          ks_stream_group_by_key(s, NULL, NULL), 10, 100),
                  "sessions");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        start(b, cache_bytes);
}

START_TEST(a_session_merged_within_the_interval_never_shows) {
        /* gap 10: a@0 opens [0,0] (committed, so downstream knows it);
         * a@25 opens [25,25]; a@8 extends [0,0] to [0,8]; a@17 bridges
         * [0,8] and [25,25] (17-8 <= 10, 25-17 <= 10) into [0,25] with
         * 1+1+1+1 = 4 records. */
        session_topology(NULL);
        pipe_at("a", "x", 0);
        commit();
        expect_session("a", 0, 0, 1); /* committed: downstream knows it */
        pipe_at("a", "x", 25);
        pipe_at("a", "x", 8);
        pipe_at("a", "x", 17);
        commit();
        /* [25,25] and [0,8] were created and merged away in this interval:
         * nothing. [0,0] was known downstream: its tombstone goes out. */
        expect_session("a", 0, 0, -1);
        expect_session("a", 0, 25, 4);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}
END_TEST

START_TEST(without_a_cache_every_session_change_shows) {
        session_topology("0");
        pipe_at("a", "x", 0);
        pipe_at("a", "x", 25);
        pipe_at("a", "x", 8);
        pipe_at("a", "x", 17);
        expect_session("a", 0, 0, 1);
        expect_session("a", 25, 25, 1);
        expect_session("a", 0, 0, -1);
        expect_session("a", 0, 8, 2);
        expect_session("a", 0, 8, -1);
        expect_session("a", 25, 25, -1);
        expect_session("a", 0, 25, 4);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}
END_TEST

START_TEST(hopping_windows_collapse_per_window) {
        /* size 10, advance 5: a record at t is in the windows starting at
         * t - 5 and t (rounded down to 5). Records at 6, 7, 8 all fall in
         * [0,10) and [5,15): two windows, three updates each. */
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_windowed_count(
                  ks_grouped_windowed_by(ks_stream_group_by_key(s, NULL, NULL),
                                         ks_hopping_window(10, 5, 100)),
                  "windows");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        start(b, NULL);
        pipe_at("a", "x", 6);
        pipe_at("a", "x", 7);
        pipe_at("a", "x", 8);
        commit();
        ks_test_record_t r;
        int64_t starts[2];
        for (int i = 0; i < 2; i++) {
                ck_assert(ks_test_driver_read(drv, "out", &r));
                ck_assert_uint_eq(r.key.len, 1 + 8);
                starts[i] = kt_be64((const char *)r.key.data + 1);
                ck_assert_int_eq(kt_be64(r.value.data), 3);
                ck_assert_int_eq(r.timestamp, 8);
        }
        ck_assert_int_eq(starts[0], 0);
        ck_assert_int_eq(starts[1], 5);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(drain("cache-windows-changelog"), 2);
}
END_TEST

/* A table source and an aggregation of it in one sub-topology: flushing
 * the table's cache feeds the count's, which the same commit flushes. */
START_TEST(a_commit_flushes_caches_that_feed_each_other) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *tbl = ks_builder_table(b, "in", ks_serde_string(),
                                           ks_serde_string(), "latest");
        ks_table_t *cnt = ks_grouped_count(
                ks_stream_group_by_key(ks_table_to_stream(tbl, NULL), NULL,
                                       NULL),
                "counts");
        ks_stream_to(ks_table_to_stream(cnt, NULL), "out", NULL, NULL);
        start(b, NULL);
        pipe_at("a", "1", 1);
        pipe_at("a", "2", 2);
        pipe_at("b", "1", 3);
        commit();
        /* The table sends a=2 and b=1 once each: the count sees one
         * update per key. */
        expect_count("a", 1, 2);
        expect_count("b", 1, 3);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(drain("cache-latest-changelog"), 2);
}
END_TEST

static ks_err_t refuse(const void *obj,
                       ks_buf_t *out,
                       void *opaque,
                       char *errstr,
                       size_t errstr_size) {
        (void)obj, (void)out, (void)opaque;
        snprintf(errstr, errstr_size, "refused");
        return KS_ERR_SERDE;
}

static ks_err_t never(ks_arena_t *arena,
                      const void *data,
                      size_t len,
                      const void **obj,
                      void *opaque,
                      char *errstr,
                      size_t errstr_size) {
        (void)arena, (void)data, (void)len, (void)obj, (void)opaque;
        snprintf(errstr, errstr_size, "unused");
        return KS_ERR_SERDE;
}

/* A downstream failure while a commit flushes: under "continue" the
 * record is counted and skipped, under "fail" the commit fails. */
static void failing_flush_topology(const char *handler) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t = ks_grouped_count(ks_stream_group_by_key(s, NULL, NULL),
                                         "counts");
        /* The counts go out through a serde that refuses them. */
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL,
                     ks_serde_new("refusing", refuse, never, NULL, NULL));
        const char *conf[] = {"default.processing.exception.handler", handler,
                              "default.production.exception.handler", handler,
                              NULL};
        drv                = kd_start(b, "cache", conf, &topo);
        ks_test_driver_create_topic(drv, "in", 1);
        ks_test_driver_set_manual_commit(drv, true);
}

START_TEST(a_failed_flush_follows_the_handler) {
        failing_flush_topology("log-and-continue");
        pipe_at("a", "x", 1);
        pipe_at("b", "x", 2);
        commit();
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-production"), 2);
        /* The changelog still has both: the store holds them. */
        ck_assert_uint_eq(drain("cache-counts-changelog"), 2);
        teardown();
        failing_flush_topology("fail");
        pipe_at("a", "x", 1);
        ks_error_t *e = ks_test_driver_commit(drv);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(strstr(ks_error_message(e), "record cache"), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("cache");
        TCase *tc = tcase_create("cache");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, repeated_updates_collapse_until_the_commit);
        tcase_add_test(tc, size_zero_sends_every_update);
        tcase_add_test(tc, a_full_cache_evicts_its_oldest_keys);
        tcase_add_test(tc, the_last_update_keeps_its_headers);
        tcase_add_test(tc, a_session_merged_within_the_interval_never_shows);
        tcase_add_test(tc, without_a_cache_every_session_change_shows);
        tcase_add_test(tc, hopping_windows_collapse_per_window);
        tcase_add_test(tc, a_commit_flushes_caches_that_feed_each_other);
        tcase_add_test(tc, a_failed_flush_follows_the_handler);
        suite_add_tcase(s, tc);
        return s;
}
