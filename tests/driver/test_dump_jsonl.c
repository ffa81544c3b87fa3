/* ks_test_driver_dump_jsonl() writes every record of any topic, and
 * ks_test_driver_replay_jsonl() reads the dump back to the same bytes:
 * binary and invalid-UTF-8 keys, values and headers, empty and null ones,
 * a thousand headers, windowed and session-windowed keys. The expected
 * base64 strings were computed with Python's base64 module, not by the code
 * under test. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_topology_t *dump_topology(void) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *raw =
                ks_builder_stream(b, "raw", ks_serde_bytes(), ks_serde_bytes());
        ks_stream_to(raw, "raw-copy", ks_serde_bytes(), ks_serde_bytes());
        ks_stream_t *words = ks_builder_stream(b, "words", ks_serde_string(),
                                               ks_serde_string());
        ks_grouped_t *g    = ks_stream_group_by_key(words, ks_serde_string(),
                                                    ks_serde_string());
        ks_table_t *wc     = ks_windowed_count(
                    ks_grouped_windowed_by(g, ks_tumbling_window(1000, 0)),
                    "word-windows");
        ks_stream_to(ks_table_to_stream(wc, "wc-stream"), "win-counts",
                     ks_serde_windowed(ks_serde_string(), 1000),
                     ks_serde_int64());
        ks_grouped_t *g2 = ks_stream_group_by_key(words, ks_serde_string(),
                                                  ks_serde_string());
        ks_table_t *sc   = ks_session_windowed_count(
                  ks_grouped_session_windowed_by(g2, 500, 0), "word-sessions");
        ks_stream_to(ks_table_to_stream(sc, "sc-stream"), "sess-counts",
                     ks_serde_session_windowed(ks_serde_string()),
                     ks_serde_int64());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(t, "%s", err);
        ks_builder_destroy(b);
        return t;
}

static ks_test_driver_t *driver_on(const ks_topology_t *t) {
        char err[512];
        ks_conf_t *conf = ks_conf_new();
        ck_assert_int_eq(
                ks_conf_set(conf, "application.id", "dump", err, sizeof(err)),
                KS_OK);
        ks_test_driver_t *drv = ks_test_driver_new(t, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        ck_assert_msg(drv, "%s", err);
        return drv;
}

static char *dump(ks_test_driver_t *drv, const char *topic) {
        char *buf = NULL;
        size_t len;
        FILE *f       = open_memstream(&buf, &len);
        ks_error_t *e = ks_test_driver_dump_jsonl(drv, topic, f);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        fclose(f);
        return buf;
}

static void replay(ks_test_driver_t *drv, const char *text, size_t want) {
        FILE *f       = fmemopen((void *)text, strlen(text), "r");
        size_t n      = 0;
        ks_error_t *e = ks_test_driver_replay_jsonl(drv, f, NULL, &n);
        fclose(f);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        ck_assert_uint_eq(n, want);
}

static bool bytes_eq(ks_bytes_t b, const void *data, size_t len) {
        if (!data || !b.data)
                return !data && !b.data;
        return b.len == len && !memcmp(b.data, data, len);
}

/* The records piped into "raw", kept to compare what replay gives back. */
typedef struct case_s {
        const char *key;
        size_t key_len;
        const char *value;
        size_t value_len;
        ks_header_t headers[3];
        size_t header_cnt;
} case_t;

#define S(lit) lit, sizeof(lit) - 1

static const case_t cases[] = {
        /* binary key, invalid UTF-8 value ("ok\xc3(" is a cut sequence) */
        {S("\x00\xff\xfe"),
         S("ok\xc3("),
         {{"bin", {"\x01\x80", 2}}, {"txt", {"h\xc3\xa9llo", 6}}},
         2},
        {NULL, 0, NULL, 0, {{0}}, 0}, /* null key, tombstone */
        {S(""), S(""), {{"empty", {"", 0}}, {"nullv", {NULL, 0}}}, 2},
        /* a header name that is not UTF-8 */
        {S("plain"), S("text \xc3\xbc"), {{"n\xff", {"v", 1}}}, 1},
        /* an overlong '/', a surrogate, an embedded NUL */
        {S("k"), S("\xc0\xaf|\xed\xa0\x80|a\0b"), {{0}}, 0},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void pipe_cases(ks_test_driver_t *drv) {
        for (size_t i = 0; i < NCASES; i++) {
                const case_t *c = &cases[i];
                ks_error_t *e   = ks_test_driver_pipe(
                          drv, "raw", 0, c->key, c->key_len, c->value,
                          c->value_len, 1000 + (int64_t)i,
                        c->header_cnt ? c->headers : NULL, c->header_cnt);
                ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        }
        /* A thousand headers (the replay reader once stopped at 64). */
        ks_header_t many[1000];
        char names[1000][8];
        for (int i = 0; i < 1000; i++) {
                snprintf(names[i], sizeof(names[i]), "h%d", i);
                many[i].name = names[i];
                many[i].value =
                        (ks_bytes_t){names[i] + 1, strlen(names[i]) - 1};
        }
        ks_error_t *e = ks_test_driver_pipe(drv, "raw", 0, "many", 4, "v", 1,
                                            2000, many, 1000);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
}

START_TEST(any_bytes_round_trip_dump_replay_dump_identically) {
        ks_topology_t *t    = dump_topology();
        ks_test_driver_t *a = driver_on(t);
        pipe_cases(a);
        char *first = dump(a, "raw");

        /* Spot checks of the documented form. */
        ck_assert_msg(strstr(first,
                             "\"key\":\"\\u0000\xef\xbf\xbd\xef\xbf\xbd"
                             "\",\"key_b64\":\"AP/+\""),
                      "%s", first);
        ck_assert(strstr(first,
                         "\"payload\":\"ok\xef\xbf\xbd(\","
                         "\"payload_b64\":\"b2vDKA==\""));
        ck_assert(strstr(first,
                         "\"headers\":[\"bin\",\"\\u0001\xef\xbf\xbd\","
                         "\"txt\",\"h\xc3\xa9llo\"],\"headers_b64\":"
                         "[\"Ymlu\",\"AYA=\",\"dHh0\",\"aMOpbGxv\"]"));
        ck_assert(strstr(first,
                         "\"headers\":[\"empty\",\"\",\"nullv\",null],"
                         "\"key\":\"\",\"payload\":\"\"}"));
        ck_assert(strstr(first, "\"key\":null,\"payload\":null}"));
        ck_assert(strstr(first, "\"headers_b64\":[\"bv8=\",\"dg==\"]"));
        ck_assert(strstr(first, "\"payload_b64\":\"wK987aCAfGEAYg==\""));

        ks_test_driver_t *b = driver_on(t);
        replay(b, first, NCASES + 1);
        ks_test_record_t r;
        for (size_t i = 0; i < NCASES; i++) {
                const case_t *c = &cases[i];
                ck_assert(ks_test_driver_read(b, "raw", &r));
                ck_assert_msg(bytes_eq(r.key, c->key, c->key_len), "case %zu",
                              i);
                ck_assert_msg(bytes_eq(r.value, c->value, c->value_len),
                              "case %zu", i);
                ck_assert_int_eq(r.timestamp, 1000 + (int64_t)i);
                ck_assert_uint_eq(r.header_cnt, c->header_cnt);
                for (size_t h = 0; h < c->header_cnt; h++) {
                        ck_assert_str_eq(r.headers[h].name, c->headers[h].name);
                        ck_assert(bytes_eq(r.headers[h].value,
                                           c->headers[h].value.data,
                                           c->headers[h].value.len));
                }
        }
        ck_assert(ks_test_driver_read(b, "raw", &r));
        ck_assert_uint_eq(r.header_cnt, 1000);
        ck_assert_str_eq(r.headers[999].name, "h999");
        ck_assert(bytes_eq(r.headers[999].value, "999", 3));

        char *second = dump(b, "raw");
        ck_assert_str_eq(second, first);
        /* The copy the topology made is dumped the same way. */
        char *copy_a = dump(a, "raw-copy"), *copy_b = dump(b, "raw-copy");
        ck_assert_str_eq(copy_a, copy_b);
        free(copy_a);
        free(copy_b);
        free(first);
        free(second);
        ks_test_driver_destroy(a);
        ks_test_driver_destroy(b);
        ks_topology_destroy(t);
}
END_TEST

/* The dump's n-th line as JSON. */
static json_t *line_json(const char *text, int n) {
        const char *p = text;
        for (int i = 0; i < n; i++) {
                p = strchr(p, '\n');
                ck_assert_ptr_nonnull(p);
                p++;
        }
        json_error_t jerr;
        json_t *j = json_loadb(p, strcspn(p, "\n"), JSON_ALLOW_NUL, &jerr);
        ck_assert_msg(j, "%s", jerr.text);
        return j;
}

static void check_window(json_t *j,
                         const char *key,
                         const char *type,
                         int64_t start,
                         int64_t end) {
        ck_assert_str_eq(json_string_value(json_object_get(j, "key")), key);
        json_t *w = json_object_get(j, "window");
        ck_assert_str_eq(json_string_value(json_object_get(w, "type")), type);
        ck_assert_int_eq(json_integer_value(json_object_get(w, "start")),
                         start);
        ck_assert_int_eq(json_integer_value(json_object_get(w, "end")), end);
}

START_TEST(windowed_keys_are_text_plus_bounds_and_round_trip) {
        ks_topology_t *t    = dump_topology();
        ks_test_driver_t *a = driver_on(t);
        kd_pipe(a, "words", "apple", "x", 100);
        kd_pipe(a, "words", "apple", "x", 900);
        kd_pipe(a, "words", "pear", "x", 1500);
        kd_pipe(a, "words", "apple", "x", 2100);

        /* Tumbling windows of 1 s: each record's window is
         * [ts - ts % 1000, + 1000), one count update per record. */
        char *win = dump(a, "win-counts");
        const struct {
                const char *key;
                int64_t start;
        } want[] = {
                {"apple", 0}, {"apple", 0}, {"pear", 1000}, {"apple", 2000}};
        for (int i = 0; i < 4; i++) {
                json_t *j = line_json(win, i);
                check_window(j, want[i].key, "time", want[i].start,
                             want[i].start + 1000);
                json_decref(j);
        }
        /* Sessions with a 500 ms gap: apple 100 and 900 are apart, pear
         * alone, apple 2100 alone. The last update of each is the one
         * after which nothing merged it. */
        char *sess = dump(a, "sess-counts");
        ck_assert(strstr(sess,
                         "\"key\":\"apple\",\"window\":{\"type\":"
                         "\"session\",\"start\":900,\"end\":900}"));
        ck_assert(strstr(sess,
                         "\"key\":\"pear\",\"window\":{\"type\":"
                         "\"session\",\"start\":1500,\"end\":1500}"));

        /* Replayed into a new driver, the keys are the serdes' bytes. */
        ks_test_driver_t *b = driver_on(t);
        replay(b, win, 4);
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(b, "win-counts", &r));
        ck_assert_uint_eq(r.key.len, 5 + 8);
        ck_assert(!memcmp(r.key.data, "apple", 5));
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 5), 0);
        char *win2 = dump(b, "win-counts");
        ck_assert_str_eq(win2, win);

        size_t sess_lines = 0;
        for (const char *p = sess; *p; p++)
                sess_lines += *p == '\n';
        replay(b, sess, sess_lines);
        char *sess2 = dump(b, "sess-counts");
        ck_assert_str_eq(sess2, sess);
        ck_assert(ks_test_driver_read(b, "sess-counts", &r));
        ck_assert_uint_eq(r.key.len, 5 + 16);
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 5), 100); /* end */
        ck_assert_int_eq(kt_be64((const char *)r.key.data + 13), 100);
        free(win);
        free(win2);
        free(sess);
        free(sess2);
        ks_test_driver_destroy(a);
        ks_test_driver_destroy(b);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(a_failed_write_names_topic_partition_and_offset) {
        ks_topology_t *t    = dump_topology();
        ks_test_driver_t *a = driver_on(t);
        pipe_cases(a);
        FILE *f = fopen("/dev/full", "w");
        ck_assert_ptr_nonnull(f);
        setvbuf(f, NULL, _IONBF, 0);
        ks_error_t *e = ks_test_driver_dump_jsonl(a, "raw", f);
        fclose(f);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_IO);
        ck_assert_msg(strstr(ks_error_message(e),
                             "cannot write raw partition 0 offset 0"),
                      "%s", ks_error_message(e));
        ks_error_destroy(e);

        /* Buffered, the failure shows when the buffer is written: here at
         * the last, largest record. */
        f = fopen("/dev/full", "w");
        e = ks_test_driver_dump_jsonl(a, "raw", f);
        fclose(f);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(strstr(ks_error_message(e), "partition 0 offset 5"), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);

        e = ks_test_driver_dump_jsonl(a, "no-such-topic", stdout);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_NOT_FOUND);
        ks_error_destroy(e);
        ks_test_driver_destroy(a);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(replay_rejects_bad_base64_and_windows_naming_the_line) {
        ks_topology_t *t    = dump_topology();
        ks_test_driver_t *a = driver_on(t);
        const char *bad[]   = {
                  "{\"topic\":\"raw\",\"key\":\"x\",\"key_b64\":\"AP/\"}\n",
                  "{\"topic\":\"raw\",\"payload_b64\":\"A===\"}\n",
                  "{\"topic\":\"raw\",\"headers_b64\":[\"AA==\",\"AA==\"]}\n",
                  "{\"topic\":\"raw\",\"key\":\"k\",\"window\":{\"type\":"
                    "\"hop\",\"start\":0}}\n",
                  "{\"topic\":\"raw\",\"key\":null,\"window\":{\"type\":"
                    "\"time\",\"start\":0}}\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char text[256];
                snprintf(text, sizeof(text), "{\"topic\":\"raw\"}\n%s", bad[i]);
                FILE *f       = fmemopen(text, strlen(text), "r");
                ks_error_t *e = ks_test_driver_replay_jsonl(a, f, NULL, NULL);
                fclose(f);
                ck_assert_msg(e, "accepted: %s", bad[i]);
                ck_assert_msg(strstr(ks_error_message(e), "replay line 2:"),
                              "%s", ks_error_message(e));
                ks_error_destroy(e);
        }
        ks_test_driver_destroy(a);
        ks_topology_destroy(t);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("dump_jsonl");
        TCase *tc = tcase_create("dump_jsonl");
        tcase_add_test(tc, any_bytes_round_trip_dump_replay_dump_identically);
        tcase_add_test(tc, windowed_keys_are_text_plus_bounds_and_round_trip);
        tcase_add_test(tc, a_failed_write_names_topic_partition_and_offset);
        tcase_add_test(tc,
                       replay_rejects_bad_base64_and_windows_naming_the_line);
        suite_add_tcase(s, tc);
        return s;
}
