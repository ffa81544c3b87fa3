/* ks_test_driver_stream_outputs(): the records a driver keeps are handed
 * over as they are written instead. The reference is a second driver on
 * the same topology that keeps everything: the streamed records (outputs,
 * dead letters, changelogs) must be exactly those it reads back, in the
 * same order, and the streaming driver must keep none of them. Whether the
 * input and repartition records are freed once processed is checked by
 * AddressSanitizer's leak checker (make asan) and by the replay's peak RSS
 * (tests/driver/test_replay_memory.sh). */
#include <kstreams/kstreams.h>
#include <kstreams/table.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

/* words (6 partitions) -> group by the value (a repartition) -> counts
 * per 1 s window -> win-counts, and the raw words to words-copy. */
static const void *value_as_key(ks_arena_t *arena,
                                const void *key,
                                const void *value,
                                void *opaque) {
        (void)arena;
        (void)key;
        (void)opaque;
        return value;
}

static ks_topology_t *topology(void) {
        char err[512];
        ks_builder_t *b    = ks_builder_new();
        ks_stream_t *words = ks_builder_stream(b, "words", ks_serde_string(),
                                               ks_serde_string());
        ks_stream_to(words, "words-copy", NULL, NULL);
        ks_grouped_t *g =
                ks_stream_group_by(words, "by-word", value_as_key, NULL,
                                   ks_serde_string(), ks_serde_string());
        ks_table_t *wc = ks_windowed_count(
                ks_grouped_windowed_by(g, ks_tumbling_window(1000, 0)),
                "word-windows");
        ks_stream_to(ks_table_to_stream(wc, "wc-stream"), "win-counts",
                     ks_serde_windowed(ks_serde_string(), 1000),
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
                ks_conf_set(conf, "application.id", "so", err, sizeof(err)),
                KS_OK);
        ks_test_driver_t *drv = ks_test_driver_new(t, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        ck_assert_msg(drv, "%s", err);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "words", 6), KS_OK);
        return drv;
}

static const char *const output_topics[] = {"words-copy", "win-counts",
                                            "so-word-windows-changelog"};
#define OUTPUT_TOPICS 3

/* One line per record: enough to tell any two apart. */
static void describe(ks_buf_t *b, const ks_test_record_t *r) {
        char line[256];
        int n = snprintf(line, sizeof(line), "%s/%d@%lld ts %lld ", r->topic,
                         (int)r->partition, (long long)r->offset,
                         (long long)r->timestamp);
        ks_buf_append(b, line, (size_t)n);
        if (r->key.data)
                ks_buf_append(b, r->key.data, r->key.len);
        ks_buf_append(b, " = ", 3);
        if (r->value.data)
                ks_buf_append(b, r->value.data, r->value.len);
        ks_buf_append(b, "\n", 1);
}

typedef struct seen_s {
        ks_buf_t lines[OUTPUT_TOPICS];
        size_t other; /* records of topics not listed above */
        char *jsonl;  /* win-counts through ks_test_driver_write_jsonl() */
        size_t jsonl_len;
        FILE *jsonl_out;
        int freed;
} seen_t;

static void on_output(ks_test_driver_t *drv,
                      const ks_test_record_t *r,
                      void *opaque) {
        seen_t *seen = opaque;
        for (int i = 0; i < OUTPUT_TOPICS; i++)
                if (!strcmp(r->topic, output_topics[i])) {
                        describe(&seen->lines[i], r);
                        if (i == 1) {
                                ks_error_t *e = ks_test_driver_write_jsonl(
                                        drv, r, seen->jsonl_out);
                                ck_assert_msg(!e, "%s", ks_error_message(e));
                        }
                        return;
                }
        seen->other++;
}

static void seen_free(void *opaque) {
        ((seen_t *)opaque)->freed++;
}

static void pipe_words(ks_test_driver_t *drv) {
        static const char *const words[] = {"apple", "pear", "fig",  "apple",
                                            "kiwi",  "fig",  "apple"};
        char key[16];
        for (int i = 0; i < 700; i++) {
                snprintf(key, sizeof(key), "user-%d", i % 13);
                kd_pipe(drv, "words", key, words[i % 7], (int64_t)i * 37);
        }
}

START_TEST(streamed_records_are_those_a_keeping_driver_reads) {
        ks_topology_t *t         = topology();
        ks_test_driver_t *keep   = driver_on(t);
        ks_test_driver_t *stream = driver_on(t);
        seen_t seen              = {0};
        seen.jsonl_out           = open_memstream(&seen.jsonl, &seen.jsonl_len);
        ck_assert_int_eq(ks_test_driver_stream_outputs(stream, on_output, &seen,
                                                       seen_free),
                         KS_OK);
        pipe_words(keep);
        pipe_words(stream);

        ks_buf_t want = {0};
        for (int i = 0; i < OUTPUT_TOPICS; i++) {
                ks_test_record_t r;
                size_t n = 0;
                while (ks_test_driver_read(keep, output_topics[i], &r)) {
                        describe(&want, &r);
                        n++;
                }
                ck_assert_msg(n > 10, "%s: only %zu records", output_topics[i],
                              n);
                ck_assert_uint_eq(seen.lines[i].len, want.len);
                ck_assert_msg(!memcmp(seen.lines[i].data, want.data, want.len),
                              "%s differs", output_topics[i]);
                ks_buf_free(&want);
                /* Streamed, not kept. */
                ck_assert_uint_eq(
                        ks_test_driver_remaining(stream, output_topics[i]), 0);
                ck_assert(!ks_test_driver_read(stream, output_topics[i], &r));
        }
        ck_assert_uint_eq(seen.other, 0);
        /* Processed input and repartition records are not kept either. */
        ck_assert_uint_eq(ks_test_driver_remaining(stream, "words"), 0);
        ck_assert_uint_eq(
                ks_test_driver_remaining(stream, "so-by-word-repartition"), 0);
        ck_assert_uint_eq(ks_test_driver_remaining(keep, "words"), 700);

        /* write_jsonl writes what dump_jsonl writes, record by record. */
        char *dumped = NULL;
        size_t dumped_len;
        FILE *f       = open_memstream(&dumped, &dumped_len);
        ks_error_t *e = ks_test_driver_dump_jsonl(keep, "win-counts", f);
        ck_assert_msg(!e, "%s", ks_error_message(e));
        fclose(f);
        fclose(seen.jsonl_out);
        ck_assert_msg(strstr(dumped, "\"window\":{\"type\":\"time\""), "%s",
                      dumped);
        ck_assert_str_eq(seen.jsonl, dumped);
        free(dumped);
        free(seen.jsonl);

        /* Closing the windows streams what suppressions hold (none here)
         * and nothing else; destroying calls opaque_free once. */
        ck_assert_int_eq(seen.freed, 0);
        ks_test_driver_destroy(stream);
        ck_assert_int_eq(seen.freed, 1);
        for (int i = 0; i < OUTPUT_TOPICS; i++)
                ks_buf_free(&seen.lines[i]);
        ks_test_driver_destroy(keep);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(stream_outputs_refuses_null_and_a_started_driver) {
        ks_topology_t *t      = topology();
        ks_test_driver_t *drv = driver_on(t);
        seen_t seen           = {0};
        ck_assert_int_eq(ks_test_driver_stream_outputs(drv, NULL, &seen, NULL),
                         KS_ERR_INVALID_ARG);
        kd_pipe(drv, "words", "k", "v", 0);
        ck_assert_int_eq(
                ks_test_driver_stream_outputs(drv, on_output, &seen, seen_free),
                KS_ERR_STATE);
        ks_test_driver_destroy(drv);
        /* A failed registration never calls opaque_free. */
        ck_assert_int_eq(seen.freed, 0);
        ks_topology_destroy(t);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("stream_outputs");
        TCase *tc = tcase_create("stream_outputs");
        tcase_add_test(tc, streamed_records_are_those_a_keeping_driver_reads);
        tcase_add_test(tc, stream_outputs_refuses_null_and_a_started_driver);
        suite_add_tcase(s, tc);
        return s;
}
