/* The user-events schema (apps/common/user_event.h) and the generator
 * (apps/common/event_gen.h): decode, schema violations, encode/decode
 * round trips, determinism and the bad records the generator makes. */
#include "ks_check.h"

#include "common/event_gen.h"
#include "common/user_event.h"

#include <kstreams/timestamp.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char example[] =
        "{\"event_id\":\"0b6f9a8e-3c1d-4f5e-9a7b-2c8d1e4f6a90\","
        "\"user_id\":\"user_123\",\"event_type\":\"purchase\","
        "\"timestamp\":\"2025-12-12T10:30:00.000Z\",\"version\":\"1.0\","
        "\"data\":{\"session_id\":\"session_789\",\"page\":\"/product/42\","
        "\"amount\":99.99,\"currency\":\"USD\",\"device\":\"mobile\"}}";

static user_event_decoder_t *dec;
static char errstr[512];

static void setup(void) {
        dec = user_event_decoder_new();
        ck_assert_ptr_nonnull(dec);
        errstr[0] = '\0';
}

static void teardown(void) {
        user_event_decoder_destroy(dec);
}

static ks_err_t decode(const char *doc, user_event_t *ev) {
        return user_event_decode(dec, doc, strlen(doc), ev, errstr,
                                 sizeof(errstr));
}

static void assert_same_str(const char *a, const char *b) {
        if (!a || !b)
                ck_assert_ptr_eq(a, b);
        else
                ck_assert_str_eq(a, b);
}

static void assert_same_event(const user_event_t *a, const user_event_t *b) {
        assert_same_str(a->event_id, b->event_id);
        assert_same_str(a->user_id, b->user_id);
        assert_same_str(a->event_type, b->event_type);
        assert_same_str(a->session_id, b->session_id);
        assert_same_str(a->page, b->page);
        assert_same_str(a->currency, b->currency);
        assert_same_str(a->device, b->device);
        assert_same_str(a->version, b->version);
        ck_assert(a->timestamp_ms == b->timestamp_ms);
        ck_assert_int_eq(a->has_amount, b->has_amount);
        if (a->has_amount)
                ck_assert_double_eq(a->amount, b->amount);
}

START_TEST(test_decode_example) {
        user_event_t ev;
        ck_assert_int_eq(decode(example, &ev), KS_OK);
        ck_assert_str_eq(ev.event_id, "0b6f9a8e-3c1d-4f5e-9a7b-2c8d1e4f6a90");
        ck_assert_str_eq(ev.user_id, "user_123");
        ck_assert_str_eq(ev.event_type, "purchase");
        ck_assert(ev.timestamp_ms == INT64_C(1765535400000));
        ck_assert_str_eq(ev.version, "1.0");
        ck_assert_str_eq(ev.session_id, "session_789");
        ck_assert_str_eq(ev.page, "/product/42");
        ck_assert(ev.has_amount);
        ck_assert_double_eq(ev.amount, 99.99);
        ck_assert_str_eq(ev.currency, "USD");
        ck_assert_str_eq(ev.device, "mobile");
}
END_TEST

START_TEST(test_decode_optional_and_epoch) {
        user_event_t ev;
        /* Epoch milliseconds, no data, members in another order, an
         * unknown member. */
        ck_assert_int_eq(decode("{\"timestamp\":1765535400123,\"extra\":[1],"
                                "\"event_type\":\"login\",\"user_id\":\"u\","
                                "\"event_id\":\"e\"}",
                                &ev),
                         KS_OK);
        ck_assert(ev.timestamp_ms == INT64_C(1765535400123));
        ck_assert_str_eq(ev.event_type, "login");
        ck_assert_ptr_null(ev.session_id);
        ck_assert_ptr_null(ev.page);
        ck_assert_ptr_null(ev.currency);
        ck_assert_ptr_null(ev.device);
        ck_assert_ptr_null(ev.version);
        ck_assert(!ev.has_amount);

        /* Nulls are absent values; an integer amount is a number; an
         * offset date-time is converted to UTC. */
        ck_assert_int_eq(
                decode("{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                       "\"purchase\",\"timestamp\":\"2025-12-12T12:30:00+02:"
                       "00\",\"version\":null,\"data\":{\"page\":null,"
                       "\"amount\":0,\"currency\":null}}",
                       &ev),
                KS_OK);
        ck_assert(ev.timestamp_ms == INT64_C(1765535400000));
        ck_assert_ptr_null(ev.version);
        ck_assert_ptr_null(ev.page);
        ck_assert(ev.has_amount);
        ck_assert_double_eq(ev.amount, 0.0);

        /* data that is not an object counts as absent. */
        ck_assert_int_eq(decode("{\"event_id\":\"e\",\"user_id\":\"u\","
                                "\"event_type\":\"t\",\"timestamp\":0,"
                                "\"data\":\"x\"}",
                                &ev),
                         KS_OK);
        ck_assert_ptr_null(ev.session_id);
}
END_TEST

START_TEST(test_timestamps_agree_with_ks_parse_iso8601) {
        /* The decoder reads the canonical form itself, with a cached date;
         * whatever the form, it must agree with ks_parse_iso8601(). */
        static const char *const stamps[] = {
                "2025-12-12T10:30:00.000Z",      "2025-12-12T23:59:59.999Z",
                "2025-12-13T00:00:00.000Z",      "2024-02-29T23:59:60.999Z",
                "2023-02-29T00:00:00.000Z",      "2023-02-28T00:00:00.000Z",
                "2025-12-12T24:00:00.000Z",      "2025-12-12T10:60:00.000Z",
                "2025-12-12T10:30:61.000Z",      "2025-13-01T00:00:00.000Z",
                "2025-12-32T00:00:00.000Z",      "2025-12-1xT00:00:00.000Z",
                "2025-12-12T1x:30:00.000Z",      "2025-12-12T10:30:00.0x0Z",
                "1970-01-01T00:00:00.000Z",      "1969-12-31T23:59:59.999Z",
                "2025-12-12t10:30:00.000Z",      "2025-12-12 10:30:00.000Z",
                "2025-12-12T10:30:00.000+02:00", "2025-12-12T10:30:00Z",
                "2025-12-12T10:30:00.1234Z",     "2025-12-12T10:30:00.000z",
                "2025-12-12T10:30:00.000",       "0000-01-01T00:00:00.000Z"};
        user_event_t ev;
        char doc[256];
        for (int round = 0; round < 2; round++) {
                for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]);
                     i++) {
                        int64_t want    = 0;
                        ks_err_t parsed = ks_parse_iso8601(
                                stamps[i], strlen(stamps[i]), &want);
                        snprintf(doc, sizeof(doc),
                                 "{\"event_id\":\"e\",\"user_id\":\"u\","
                                 "\"event_type\":\"t\",\"timestamp\":"
                                 "\"%s\"}",
                                 stamps[i]);
                        ks_err_t err = decode(doc, &ev);
                        if (parsed || want < 0) {
                                ck_assert_msg(err == KS_ERR_SERDE,
                                              "%s accepted", stamps[i]);
                        } else {
                                ck_assert_msg(err == KS_OK, "%s: %s", stamps[i],
                                              errstr);
                                ck_assert_msg(ev.timestamp_ms == want,
                                              "%s: %lld, want %lld", stamps[i],
                                              (long long)ev.timestamp_ms,
                                              (long long)want);
                        }
                }
        }
}
END_TEST

static const struct {
        const char *doc;
        const char *errstr;
} violations[] = {
        {"{\"user_id\":\"u\",\"event_type\":\"t\",\"timestamp\":0}",
         "user_event: missing field event_id"},
        {"{\"event_id\":\"\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":0}",
         "user_event: field event_id must be a non-empty string"},
        {"{\"event_id\":7,\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":0}",
         "user_event: field event_id must be a non-empty string"},
        {"{\"event_id\":\"e\",\"event_type\":\"t\",\"timestamp\":0}",
         "user_event: missing field user_id"},
        {"{\"event_id\":\"e\",\"user_id\":null,\"event_type\":\"t\","
         "\"timestamp\":0}",
         "user_event: field user_id must be a non-empty string"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"timestamp\":0}",
         "user_event: missing field event_type"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"\","
         "\"timestamp\":0}",
         "user_event: field event_type must be a non-empty string"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\"}",
         "user_event: missing field timestamp"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":\"yesterday\"}",
         "user_event: field timestamp is not an ISO-8601 date-time"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":\"2025-02-30T00:00:00Z\"}",
         "user_event: field timestamp is not an ISO-8601 date-time"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":true}",
         "user_event: field timestamp must be an ISO-8601 string or epoch "
         "milliseconds"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":1.5}",
         "user_event: field timestamp must be an ISO-8601 string or epoch "
         "milliseconds"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":-5}",
         "user_event: field timestamp is before 1970"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":0,\"data\":{\"amount\":-0.01}}",
         "user_event: field data.amount must be >= 0"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":0,\"data\":{\"amount\":\"12\"}}",
         "user_event: field data.amount must be a number"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":0,\"data\":{\"page\":42}}",
         "user_event: field data.page must be a string"},
        {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":\"t\","
         "\"timestamp\":0,\"version\":1.0}",
         "user_event: field version must be a string"},
};

START_TEST(test_schema_violations) {
        user_event_t ev;
        ck_assert_int_eq(decode(violations[_i].doc, &ev), KS_ERR_SERDE);
        ck_assert_str_eq(errstr, violations[_i].errstr);
        /* Nothing of the rejected record is left in ev. */
        ck_assert_ptr_null(ev.event_id);
        ck_assert_ptr_null(ev.user_id);
        ck_assert_ptr_null(ev.event_type);
        ck_assert(!ev.has_amount);
        /* The decoder goes on. */
        ck_assert_int_eq(decode(example, &ev), KS_OK);
}
END_TEST

START_TEST(test_malformed_is_json_error) {
        static const char *const bad[] = {"", "{\"event_id\":\"e\"", "[]",
                                          "{\"event_id\":\"e\"} x",
                                          "{\"event_id\":\"\\x\"}"};
        user_event_t ev;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_int_eq(decode(bad[i], &ev), KS_ERR_JSON);
                ck_assert_msg(!strncmp(errstr, "json: ", 6), "%s", errstr);
                ck_assert_ptr_null(ev.event_id);
        }
        /* A valid prefix is not enough: the whole example, truncated at
         * every length, is rejected. */
        for (size_t len = 0; len < strlen(example); len++)
                ck_assert_int_eq(user_event_decode(dec, example, len, &ev,
                                                   errstr, sizeof(errstr)),
                                 KS_ERR_JSON);
}
END_TEST

START_TEST(test_encode_golden) {
        user_event_t ev;
        ks_buf_t out = {0};
        ck_assert_int_eq(decode(example, &ev), KS_OK);
        ck_assert_int_eq(user_event_encode(&ev, &out), KS_OK);
        ck_assert_str_eq(out.data, example);
        ck_assert_uint_eq(out.len, strlen(example));

        /* It appends; a minimal event has no data member. */
        user_event_t min = {.event_id     = "e",
                            .user_id      = "u",
                            .event_type   = "login",
                            .timestamp_ms = 1};
        ck_assert_int_eq(user_event_encode(&min, &out), KS_OK);
        ck_assert_str_eq(out.data + strlen(example),
                         "{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                         "\"login\",\"timestamp\":\"1970-01-01T00:00:00.001Z\""
                         "}");
        /* Only an amount: data holds just that. */
        ks_buf_clear(&out);
        min.has_amount = true;
        min.amount     = 0.1;
        ck_assert_int_eq(user_event_encode(&min, &out), KS_OK);
        ck_assert(strstr(out.data, ",\"data\":{\"amount\":0.1}}") != NULL);
        ks_buf_free(&out);
}
END_TEST

START_TEST(test_encode_escapes_roundtrip) {
        user_event_t ev = {
                .event_id     = "id \"quoted\" \\ back",
                .user_id      = "ctl \x01\x1f\n\r\t\b\f end",
                .event_type   = "caf\xc3\xa9 \xf0\x9f\x98\x80",
                .page         = "/p?a=1&b=</script>",
                .timestamp_ms = INT64_C(1765535400999),
                .has_amount   = true,
                .amount       = 1234567.891,
        };
        user_event_t back;
        ks_buf_t out = {0};
        ck_assert_int_eq(user_event_encode(&ev, &out), KS_OK);
        ck_assert_msg(decode(out.data, &back) == KS_OK, "%s: %s", out.data,
                      errstr);
        assert_same_event(&ev, &back);

        /* A non-finite amount has no JSON form. */
        ev.amount = NAN;
        ck_assert_int_eq(user_event_encode(&ev, &out), KS_ERR_INVALID_ARG);
        ev.amount = INFINITY;
        ck_assert_int_eq(user_event_encode(&ev, &out), KS_ERR_INVALID_ARG);
        ks_buf_free(&out);
}
END_TEST

START_TEST(test_generated_roundtrip) {
        event_gen_t *g = event_gen_new(42, INT64_C(1765535400000), 1000);
        ks_buf_t out   = {0};
        user_event_t ev, back;

        for (int i = 0; i < 20000; i++) {
                event_gen_next(g, &ev);
                ks_buf_clear(&out);
                ck_assert_int_eq(user_event_encode(&ev, &out), KS_OK);
                ck_assert_msg(decode(out.data, &back) == KS_OK, "%s: %s",
                              out.data, errstr);
                assert_same_event(&ev, &back);
        }
        ks_buf_free(&out);
        event_gen_destroy(g);
}
END_TEST

/* Generates @p n raw records with the given settings into one buffer. */
static void gen_raw(uint64_t seed, int n, double bad, ks_buf_t *out) {
        event_gen_t *g = event_gen_new(seed, INT64_C(1700000000000), 500);
        event_gen_set_disorder(g, 0.05, 5000);
        event_gen_set_bad_ratio(g, bad);
        for (int i = 0; i < n; i++) {
                ck_assert_int_eq(event_gen_next_raw(g, out, NULL), KS_OK);
                ck_assert_int_eq(ks_buf_append(out, "\n", 1), KS_OK);
        }
        event_gen_destroy(g);
}

START_TEST(test_generator_deterministic) {
        ks_buf_t a = {0}, b = {0}, c = {0};
        gen_raw(7, 5000, 0.1, &a);
        gen_raw(7, 5000, 0.1, &b);
        gen_raw(8, 5000, 0.1, &c);
        ck_assert_uint_eq(a.len, b.len);
        ck_assert(!memcmp(a.data, b.data, a.len));
        ck_assert(c.len != a.len || memcmp(a.data, c.data, a.len));
        /* Pin the first record: the stream must not change by accident
         * (tests and benchmarks rely on regenerating it). */
        event_gen_t *g = event_gen_new(1, INT64_C(1765535400000), 1000);
        ks_buf_t first = {0};
        ck_assert_int_eq(event_gen_next_raw(g, &first, NULL), KS_OK);
        user_event_t ev;
        ck_assert_int_eq(decode(first.data, &ev), KS_OK);
        ck_assert_int_eq(strlen(ev.event_id), 36);
        ck_assert_int_eq(ev.event_id[14], '4'); /* UUID version 4 */
        ck_assert(!strncmp(ev.user_id, "user_", 5));
        ck_assert(ev.timestamp_ms >= INT64_C(1765535400000) &&
                  ev.timestamp_ms <= INT64_C(1765535400200));
        event_gen_destroy(g);
        ks_buf_free(&first);
        ks_buf_free(&a);
        ks_buf_free(&b);
        ks_buf_free(&c);
}
END_TEST

START_TEST(test_generator_bad_records) {
        event_gen_t *g = event_gen_new(3, INT64_C(1765535400000), 100);
        ks_buf_t out   = {0};
        user_event_t ev;
        int bad_json = 0, bad_schema = 0, good = 0;

        event_gen_set_bad_ratio(g, 0.25);
        for (int i = 0; i < 20000; i++) {
                bool is_bad;
                ks_buf_clear(&out);
                ck_assert_int_eq(event_gen_next_raw(g, &out, &is_bad), KS_OK);
                ks_err_t err = user_event_decode(dec, out.data, out.len, &ev,
                                                 errstr, sizeof(errstr));
                if (!is_bad) {
                        ck_assert_msg(err == KS_OK, "%s: %s", out.data, errstr);
                        good++;
                        continue;
                }
                ck_assert_msg(err == KS_ERR_JSON || err == KS_ERR_SERDE,
                              "bad record accepted: %s", out.data);
                if (err == KS_ERR_JSON)
                        bad_json++;
                else
                        bad_schema++;
        }
        /* ~25% bad, both kinds. */
        ck_assert_int_gt(bad_json + bad_schema, 4500);
        ck_assert_int_lt(bad_json + bad_schema, 5500);
        ck_assert_int_gt(bad_json, 1500);
        ck_assert_int_gt(bad_schema, 1000);
        ks_buf_free(&out);
        event_gen_destroy(g);
}
END_TEST

START_TEST(test_generator_mix_and_time) {
        event_gen_t *g = event_gen_new(11, INT64_C(1765535400000), 1000);
        user_event_t ev;
        int n = 100000, views_clicks = 0, purchases = 0, with_amount = 0;
        int64_t prev = INT64_C(1765535400000);
        int user1 = 0, user_last_half = 0;

        for (int i = 0; i < n; i++) {
                event_gen_next(g, &ev);
                if (!strcmp(ev.event_type, "page_view") ||
                    !strcmp(ev.event_type, "button_click"))
                        views_clicks++;
                if (!strcmp(ev.event_type, "purchase")) {
                        purchases++;
                        ck_assert(ev.has_amount && ev.currency);
                }
                if (ev.has_amount) {
                        with_amount++;
                        ck_assert(ev.amount > 0 && ev.amount < 500);
                }
                /* In order by default, 0..200 ms apart. */
                ck_assert(ev.timestamp_ms >= prev &&
                          ev.timestamp_ms - prev <= 200);
                prev = ev.timestamp_ms;
                ck_assert_ptr_nonnull(ev.session_id);
                ck_assert_ptr_nonnull(ev.device);
                int user = atoi(ev.user_id + 5);
                ck_assert(user >= 1 && user <= 1000);
                user1 += user == 1;
                user_last_half += user > 500;
        }
        ck_assert_int_gt(views_clicks, n * 67 / 100);
        ck_assert_int_lt(views_clicks, n * 73 / 100);
        ck_assert_int_gt(purchases, n * 5 / 100);
        ck_assert_int_lt(purchases, n * 10 / 100);
        ck_assert_int_gt(with_amount, purchases);
        /* Skewed users: user_1 is far above the uniform 0.1%, and the upper
         * half of the ids makes well under half of the events. */
        ck_assert_int_gt(user1, n / 100);
        ck_assert_int_lt(user_last_half, n * 35 / 100);
        ck_assert(event_gen_clock_ms(g) == prev);

        /* With disorder, some events are late, but never by more than the
         * bound. */
        event_gen_set_disorder(g, 0.1, 3000);
        int late = 0;
        for (int i = 0; i < 10000; i++) {
                event_gen_next(g, &ev);
                int64_t clock = event_gen_clock_ms(g);
                ck_assert(ev.timestamp_ms <= clock &&
                          clock - ev.timestamp_ms <= 3000);
                late += ev.timestamp_ms < prev;
                if (ev.timestamp_ms > prev)
                        prev = ev.timestamp_ms;
        }
        ck_assert_int_gt(late, 500);
        event_gen_destroy(g);
}
END_TEST

START_TEST(test_generator_args) {
        ck_assert_ptr_null(event_gen_new(1, 0, 0));
        ck_assert_ptr_null(event_gen_new(1, -1, 10));
        event_gen_destroy(NULL);
        user_event_decoder_destroy(NULL);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("user_event");
        TCase *tc = tcase_create("user_event");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_decode_example);
        tcase_add_test(tc, test_decode_optional_and_epoch);
        tcase_add_test(tc, test_timestamps_agree_with_ks_parse_iso8601);
        tcase_add_loop_test(tc, test_schema_violations, 0,
                            (int)(sizeof(violations) / sizeof(violations[0])));
        tcase_add_test(tc, test_malformed_is_json_error);
        tcase_add_test(tc, test_encode_golden);
        tcase_add_test(tc, test_encode_escapes_roundtrip);
        tcase_add_test(tc, test_generated_roundtrip);
        tcase_add_test(tc, test_generator_deterministic);
        tcase_add_test(tc, test_generator_bad_records);
        tcase_add_test(tc, test_generator_mix_and_time);
        tcase_add_test(tc, test_generator_args);
        suite_add_tcase(s, tc);
        return s;
}
