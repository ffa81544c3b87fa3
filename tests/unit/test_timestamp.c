/* ISO-8601 parsing/formatting, the partitioner, and extractors. */
#include <kstreams/partitioner.h>
#include <kstreams/timestamp.h>
#include <string.h>

#include "ks_check.h"

static int64_t parse(const char *s) {
        int64_t ms = -999;
        ck_assert_msg(ks_parse_iso8601(s, strlen(s), &ms) == KS_OK, "%s", s);
        return ms;
}

static void refuse(const char *s) {
        int64_t ms;
        ck_assert_msg(ks_parse_iso8601(s, strlen(s), &ms) == KS_ERR_TIMESTAMP,
                      "accepted %s", s);
}

START_TEST(iso8601_forms) {
        ck_assert_int_eq(parse("1970-01-01T00:00:00Z"), 0);
        ck_assert_int_eq(parse("2025-12-12T10:30:00.000Z"), 1765535400000);
        ck_assert_int_eq(parse("2025-12-12T10:30:00.5Z"), 1765535400500);
        ck_assert_int_eq(parse("2025-12-12T10:30:00.123456789Z"),
                         1765535400123);
        ck_assert_int_eq(parse("2025-12-12T12:30:00+02:00"), 1765535400000);
        ck_assert_int_eq(parse("2025-12-12T05:00:00-0530"), 1765535400000);
        ck_assert_int_eq(parse("2025-12-12 10:30:00"), 1765535400000);
        ck_assert_int_eq(parse("2024-02-29T00:00:00Z"), 1709164800000);
        ck_assert_int_eq(parse("1969-12-31T23:59:59.999Z"), -1);
}
END_TEST

START_TEST(iso8601_rejects_malformed) {
        refuse("");
        refuse("2025-12-12");
        refuse("2025-13-01T00:00:00Z");
        refuse("2025-02-29T00:00:00Z");
        refuse("2025-12-12T24:00:00Z");
        refuse("2025-12-12T10:30:00.Z");
        refuse("2025-12-12T10:30:00Zjunk");
        refuse("2025-12-12T10:30Z");
        refuse("not a date");
}
END_TEST

START_TEST(iso8601_format_roundtrips) {
        char out[32];
        int64_t samples[] = {0, 1765535400123, 1709164800000, -1,
                             253402300799999};
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
                ks_format_iso8601(samples[i], out, sizeof(out));
                ck_assert_int_eq(parse(out), samples[i]);
        }
        ks_format_iso8601(1765535400123, out, sizeof(out));
        ck_assert_str_eq(out, "2025-12-12T10:30:00.123Z");
}
END_TEST

/* Java's Utils.murmur2 values, from Kafka's UtilsTest. A partition count of
 * INT32_MAX makes the partition equal toPositive(murmur2(key)). */
START_TEST(partitioner_matches_java_murmur2) {
        static const struct {
                const char *key;
                int32_t java_hash;
        } cases[] = {
                {"21", -973932308},
                {"foobar", -790332482},
                {"a-little-bit-long-string", -985981536},
                {"a-little-bit-longer-string", -1486304829},
                {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
                {"abc", 479470107},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int32_t want = cases[i].java_hash & 0x7fffffff;
                ck_assert_int_eq(
                        ks_partition_for_key(cases[i].key, strlen(cases[i].key),
                                             INT32_MAX),
                        want);
                ck_assert_int_eq(ks_partition_for_key(cases[i].key,
                                                      strlen(cases[i].key), 6),
                                 want % 6);
        }
        ck_assert_int_eq(ks_partition_for_key("k", 1, 0), -1);
        for (int i = 0; i < 10; i++) {
                int32_t p = ks_partition_for_key(NULL, 0, 3);
                ck_assert(p >= 0 && p < 3);
        }
}
END_TEST

START_TEST(json_field_extractor_reads_strings_and_numbers) {
        char err[128];
        ks_timestamp_extractor_t *ex =
                ks_timestamp_extractor_json_field("meta.ts", err, sizeof(err));
        ck_assert_ptr_nonnull(ex);
        ks_timestamp_extractor_destroy(ex);
        ex = ks_timestamp_extractor_json_field("", err, sizeof(err));
        ck_assert_ptr_null(ex);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("timestamp");
        TCase *tc = tcase_create("timestamp");
        tcase_add_test(tc, iso8601_forms);
        tcase_add_test(tc, iso8601_rejects_malformed);
        tcase_add_test(tc, iso8601_format_roundtrips);
        tcase_add_test(tc, partitioner_matches_java_murmur2);
        tcase_add_test(tc, json_field_extractor_reads_strings_and_numbers);
        suite_add_tcase(s, tc);
        return s;
}
