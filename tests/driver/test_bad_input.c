/* Bad input of every kind through the test driver, as a poison pill would
 * arrive from Kafka: null keys and values, a 10 MiB value, invalid UTF-8,
 * JSON nested 10,000 deep, numbers out of range, timestamps before 1970
 * and after 9999, a thousand headers, keys the key serde cannot read.
 * Each bad record must be dead-lettered (default.deserialization.exception.
 * handler=dead-letter) with its original bytes and the reason, counted, and
 * followed by a good record that still goes through (no stall, no crash).
 * The event-shaped cases go through the apps' validator
 * (valid_event_serde(), apps/app/valid_event.c) with the event's own
 * timestamp, as kstreams-app reads user-events. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/jobs.h"
#include "common/user_event_serde.h"
#include "ks_check.h"

static ks_topology_t *topo;
static ks_test_driver_t *drv;

static const char good[] =
        "{\"event_id\":\"e1\",\"user_id\":\"u1\",\"event_type\":\"page_view\","
        "\"timestamp\":\"2025-12-12T10:30:00.000Z\"}";

static void setup(void) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        /* user-events: the apps' validator, timestamps from the event. */
        ks_stream_t *ev = ks_stream_with_timestamps(
                ks_builder_stream(b, "events", ks_serde_string(),
                                  valid_event_serde()),
                user_event_timestamp_extractor());
        ks_stream_to(ev, "events-out", ks_serde_string(), NULL);
        /* Keys read by fixed-width and windowed serdes; JSON by jansson. */
        ks_stream_to(ks_builder_stream(b, "longs", ks_serde_int64(),
                                       ks_serde_bytes()),
                     "longs-out", NULL, NULL);
        ks_stream_to(
                ks_builder_stream(b, "windowed",
                                  ks_serde_session_windowed(ks_serde_string()),
                                  ks_serde_bytes()),
                "windowed-out", NULL, NULL);
        ks_stream_to(ks_builder_stream(b, "json", ks_serde_string(),
                                       ks_serde_json()),
                     "json-out", NULL, NULL);
        /* Any extractor: a timestamp after 9999 is no valid timestamp. */
        ks_stream_to(ks_stream_with_timestamps(
                             ks_builder_stream(b, "timed", ks_serde_string(),
                                               ks_serde_json()),
                             ks_timestamp_extractor_json_field("ts", err,
                                                               sizeof(err))),
                     "timed-out", NULL, NULL);
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "%s", err);
        ks_builder_destroy(b);
        ks_conf_t *conf = ks_conf_new();
        ck_assert_int_eq(
                ks_conf_set(conf, "default.deserialization.exception.handler",
                            "dead-letter", err, sizeof(err)),
                KS_OK);
        ck_assert_int_eq(
                ks_conf_set(conf, "errors.dead.letter.queue.topic.name", "dlq",
                            err, sizeof(err)),
                KS_OK);
        drv = ks_test_driver_new(topo, conf, err, sizeof(err));
        ck_assert_msg(drv, "%s", err);
        ks_conf_destroy(conf);
}

static void teardown(void) {
        ks_test_driver_destroy(drv);
        ks_topology_destroy(topo);
}

static const char *header(const ks_test_record_t *r, const char *name) {
        for (size_t i = 0; i < r->header_cnt; i++)
                if (!strcmp(r->headers[i].name, name))
                        return r->headers[i].value.data;
        return NULL;
}

/* Pipes one record; it must be dead-lettered with its own bytes and a
 * reason containing @p why, and a good record after it must go through. */
static void expect_dead_lettered(const char *topic,
                                 const void *key,
                                 size_t key_len,
                                 const void *value,
                                 size_t value_len,
                                 const ks_header_t *hdrs,
                                 size_t hdr_cnt,
                                 const char *why) {
        uint64_t dropped =
                ks_test_driver_metric(drv, "dropped-deserialization");
        uint64_t dead = ks_test_driver_metric(drv, "dead-lettered");
        ks_error_t *e = ks_test_driver_pipe(drv, topic, 0, key, key_len, value,
                                            value_len, 1000, hdrs, hdr_cnt);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-deserialization"),
                          dropped + 1);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dead-lettered"),
                          dead + 1);
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "dlq", &r));
        ck_assert_uint_eq(r.value.len, value_len);
        ck_assert(!value || !memcmp(r.value.data, value, value_len));
        ck_assert_uint_eq(r.key.len, key_len);
        const char *msg = header(&r, "__streams.errors.message");
        ck_assert_ptr_nonnull(msg);
        ck_assert_msg(strstr(msg, why), "reason \"%s\" lacks \"%s\"", msg, why);
        ck_assert_str_eq(header(&r, "__streams.errors.topic"), topic);
        /* No stall: the next good record goes through. */
        e = ks_test_driver_pipe_str(drv, "events", "u1", good, 1000);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        ck_assert(ks_test_driver_read(drv, "events-out", &r));
        ck_assert_uint_eq(r.value.len, strlen(good));
}

static void bad_event(const char *value, const char *why) {
        expect_dead_lettered("events", "k", 1, value, strlen(value), NULL, 0,
                             why);
}

START_TEST(null_keys_and_values) {
        ks_test_record_t r;
        /* A null key is a key like any other for a stream. */
        ck_assert_ptr_null(ks_test_driver_pipe(drv, "events", 0, NULL, 0, good,
                                               strlen(good), 1000, NULL, 0));
        ck_assert(ks_test_driver_read(drv, "events-out", &r));
        ck_assert_ptr_null(r.key.data);
        /* A null value has no event, hence no timestamp. */
        expect_dead_lettered("events", "k", 1, NULL, 0, NULL, 0,
                             "no valid timestamp");
        /* A null key where the serde needs 8 bytes passes as null. */
        ck_assert_ptr_null(ks_test_driver_pipe(drv, "longs", 0, NULL, 0, "v", 1,
                                               1000, NULL, 0));
        ck_assert(ks_test_driver_read(drv, "longs-out", &r));
        ck_assert_ptr_null(r.key.data);
}
END_TEST

START_TEST(a_10_mib_value) {
        size_t n   = (size_t)10 << 20;
        char *big  = malloc(n + 256);
        int prefix = snprintf(big, 256,
                              "{\"event_id\":\"e1\",\"user_id\":\"u1\","
                              "\"event_type\":\"page_view\",\"timestamp\":"
                              "1700000000000,\"data\":{\"page\":\"");
        memset(big + prefix, 'p', n - (size_t)prefix - 4);
        memcpy(big + n - 4, "\"}}", 4);
        size_t len = n - 1;
        ck_assert_ptr_null(ks_test_driver_pipe(drv, "events", 0, "k", 1, big,
                                               len, 1000, NULL, 0));
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "events-out", &r));
        ck_assert_int_eq(r.timestamp, 1700000000000LL);
        ck_assert_uint_gt(r.value.len, n - 64); /* re-encoded, page kept */
        /* 10 MiB that are not JSON go to the dead-letter topic whole. */
        memset(big, 'x', n);
        expect_dead_lettered("events", "k", 1, big, n, NULL, 0, "json");
        free(big);
}
END_TEST

START_TEST(invalid_utf8) {
        bad_event(
                "{\"event_id\":\"e\xff\xfe\",\"user_id\":\"u\","
                "\"event_type\":\"login\",\"timestamp\":1}",
                "UTF8_ERROR");
        /* An overlong encoding and a lone surrogate escape. */
        bad_event("{\"event_id\":\"\xc0\xaf\",\"user_id\":\"u\"}", "UTF8");
        bad_event(
                "{\"event_id\":\"\\udc00\",\"user_id\":\"u\","
                "\"event_type\":\"login\",\"timestamp\":1}",
                "json");
}
END_TEST

START_TEST(json_nested_10000_deep) {
        size_t depth = 10000;
        char *doc    = malloc(2 * depth + 64);
        size_t n     = (size_t)sprintf(doc, "{\"event_id\":");
        for (size_t i = 0; i < depth; i++)
                doc[n++] = '[';
        for (size_t i = 0; i < depth; i++)
                doc[n++] = ']';
        doc[n++] = '}';
        doc[n]   = '\0';
        bad_event(doc, "DEPTH_ERROR");
        /* jansson (the JSON serde) refuses it as well. */
        expect_dead_lettered("json", "k", 1, doc, n, NULL, 0, "json serde");
        free(doc);
}
END_TEST

START_TEST(numbers_out_of_range) {
        bad_event(
                "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                "\"purchase\",\"timestamp\":1,\"data\":{\"amount\":1e400,"
                "\"currency\":\"EUR\"}}",
                "NUMBER_ERROR");
        /* Beyond int64: a double, which is no epoch-ms timestamp. */
        bad_event(
                "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                "\"login\",\"timestamp\":99999999999999999999}",
                "timestamp");
        bad_event(
                "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                "\"purchase\",\"timestamp\":1,\"data\":{\"amount\":-0.01,"
                "\"currency\":\"EUR\"}}",
                "data.amount must be >= 0");
}
END_TEST

START_TEST(timestamps_before_1970_and_in_and_after_9999) {
        bad_event(
                "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                "\"login\",\"timestamp\":-1}",
                "before 1970");
        bad_event(
                "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                "\"login\",\"timestamp\":\"1969-12-31T23:59:59.999Z\"}",
                "before 1970");
        bad_event(
                "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                "\"login\",\"timestamp\":253402300800000}",
                "after year 9999");
        /* The last millisecond of 9999 is a valid time:
         * 253402300799999 = days_from_civil(10000-01-01) * 86400000 - 1. */
        const char *last =
                "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                "\"login\",\"timestamp\":\"9999-12-31T23:59:59."
                "999Z\"}";
        ck_assert_ptr_null(
                ks_test_driver_pipe_str(drv, "events", "k", last, 1));
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "events-out", &r));
        ck_assert_int_eq(r.timestamp, 253402300799999LL);
        /* The same bounds for any timestamp extractor (task.c). */
        const char *late = "{\"ts\":253402300800000}";
        expect_dead_lettered("timed", "k", 1, late, strlen(late), NULL, 0,
                             "after year 9999");
        const char *neg = "{\"ts\":-5}";
        expect_dead_lettered("timed", "k", 1, neg, strlen(neg), NULL, 0,
                             "no valid timestamp");
        ck_assert_ptr_null(ks_test_driver_pipe_str(
                drv, "timed", "k", "{\"ts\":253402300799999}", 1));
        ck_assert(ks_test_driver_read(drv, "timed-out", &r));
        ck_assert_int_eq(r.timestamp, 253402300799999LL);
}
END_TEST

START_TEST(a_thousand_headers) {
        ks_header_t *h   = calloc(1000, sizeof(*h));
        char(*names)[16] = calloc(1000, 16);
        for (int i = 0; i < 1000; i++) {
                snprintf(names[i], 16, "h%d", i);
                h[i] = (ks_header_t){names[i], {names[i], strlen(names[i])}};
        }
        ck_assert_ptr_null(ks_test_driver_pipe(drv, "events", 0, "k", 1, good,
                                               strlen(good), 1, h, 1000));
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "events-out", &r));
        ck_assert_uint_eq(r.header_cnt, 1000);
        ck_assert_str_eq(r.headers[999].name, "h999");
        /* A bad record with them: dead-lettered with its reason. */
        expect_dead_lettered("events", "k", 1, "{", 1, h, 1000, "json");
        free(names);
        free(h);
}
END_TEST

START_TEST(keys_the_key_serde_cannot_read) {
        expect_dead_lettered("longs", "abc", 3, "v", 1, NULL, 0,
                             "int64 serde: expected 8 bytes, got 3");
        expect_dead_lettered("windowed", "short", 5, "v", 1, NULL, 0,
                             "fewer than 16");
        /* A key that is not a string where the string serde reads bytes:
         * any bytes are a string, binary included, so it passes. */
        ck_assert_ptr_null(ks_test_driver_pipe(drv, "events", 0, "\xff\x00", 2,
                                               good, strlen(good), 1, NULL, 0));
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "events-out", &r));
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("bad_input");
        TCase *tc = tcase_create("bad_input");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, null_keys_and_values);
        tcase_add_test(tc, a_10_mib_value);
        tcase_add_test(tc, invalid_utf8);
        tcase_add_test(tc, json_nested_10000_deep);
        tcase_add_test(tc, numbers_out_of_range);
        tcase_add_test(tc, timestamps_before_1970_and_in_and_after_9999);
        tcase_add_test(tc, a_thousand_headers);
        tcase_add_test(tc, keys_the_key_serde_cannot_read);
        suite_add_tcase(s, tc);
        return s;
}
