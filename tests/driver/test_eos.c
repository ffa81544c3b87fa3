/* exactly_once_v2 in the test driver: what tasks write is pending until
 * the commit, read_committed readers see none of an open transaction, and
 * a processing error aborts it: its outputs are discarded, the stores go
 * back to the last commit and the input since then is processed again, so
 * every count shows once. The same scenario under at_least_once shows the
 * duplicates that a restart from the committed offsets makes. Expected
 * values come from tallies the test keeps of what it pipes. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

#define N_RECORDS 40
#define N_KEYS    5
#define WINDOW    10

static ks_test_driver_t *drv;
static ks_topology_t *topo;
/* The flaky processor fails the first record whose value is "boom", and
 * lets it through when it comes again (each test runs in its own
 * process). */
static int booms, failures;

static ks_err_t flaky(ks_ctx_t *ctx,
                      const void *k,
                      const void *v,
                      void *state,
                      void *opaque) {
        (void)state, (void)opaque;
        if (v && !strcmp(v, "boom") && booms++ == 0) {
                failures++;
                return ks_ctx_fail(ctx, "injected failure");
        }
        return ks_ctx_forward(ctx, k, v);
}

static const void *same_key(ks_arena_t *a,
                            const void *k,
                            const void *v,
                            void *opaque) {
        (void)a, (void)v, (void)opaque;
        return k;
}

/* in -> flaky -> count per key -> counts-out, and
 *          \---> tumbling windows of 10 (no grace) -> count -> suppress
 *                until the window closes -> final.
 * With @p repartition the per-key count reads a repartition topic. */
static void start(const char *guarantee, bool repartition, bool memory) {
        booms = failures       = 0; /* CK_FORK=no: every test in one process */
        ks_builder_t *b        = ks_builder_new();
        ks_stream_t *in        = ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_string());
        ks_processor_def_t def = {.process = flaky};
        ks_stream_t *s         = ks_stream_process_values(in, "flaky", &def);
        ks_grouped_t *g        = repartition
                                         ? ks_stream_group_by(s, "rekey", same_key,
                                                              NULL, ks_serde_string(),
                                                              ks_serde_string())
                                         : ks_stream_group_by_key(s, NULL, NULL);
        ks_stream_to(ks_table_to_stream(ks_grouped_count(g, "counts"), NULL),
                     "counts-out", NULL, NULL);
        ks_table_t *w = ks_windowed_count(
                ks_grouped_windowed_by(ks_stream_group_by_key(s, NULL, NULL),
                                       ks_tumbling_window(WINDOW, 0)),
                "wcounts");
        ks_stream_to(
                ks_table_to_stream(
                        ks_table_suppress(w, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                          "final-buffer"),
                        NULL),
                "final", NULL, NULL);
        const char *conf[] = {"processing.guarantee",
                              guarantee,
                              "default.processing.exception.handler",
                              "fail",
                              "statestore.cache.max.bytes",
                              "0",
                              NULL};
        drv                = kd_start(b, "eos", conf, &topo);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "in", 2), KS_OK);
        ck_assert_int_eq(ks_test_driver_use_memory_stores(drv, memory), KS_OK);
}

static void teardown(void) {
        kd_stop(&drv, &topo);
}

/* The i-th input record: a key, "boom" at @p boom_at, time i. */
static void record(int i, int boom_at, char *key, const char **value) {
        key[0] = (char)('a' + (i * 7) % N_KEYS);
        key[1] = '\0';
        *value = i == boom_at ? "boom" : "v";
}

static ks_error_t *pipe_rec(int i, int boom_at) {
        char key[2];
        const char *value;
        record(i, boom_at, key, &value);
        return ks_test_driver_pipe_str(drv, "in", key, value, i);
}

/* What the counts must be: each input record once. */
typedef struct expected_s {
        int64_t per_key[N_KEYS];
        int64_t per_window[N_KEYS][N_RECORDS / WINDOW + 1];
} expected_t;

static void tally(expected_t *x) {
        memset(x, 0, sizeof(*x));
        for (int i = 0; i < N_RECORDS; i++) {
                int key = (i * 7) % N_KEYS;
                x->per_key[key]++;
                x->per_window[key][i / WINDOW]++;
        }
}

/* Pipes the records with a manual commit after every @p commit_every,
 * the record at @p boom_at failing once. After the failure the input
 * since the last commit comes again: the driver feeds it under EOS; under
 * at-least-once the test pipes it again, as the consumer of a restarted
 * instance reads it again from the committed offsets. Ends with a commit
 * and the windows closed. @returns how many records were piped again. */
static int run(bool eos, int commit_every, int boom_at) {
        int last_commit = 0, again = 0;
        ks_test_driver_set_manual_commit(drv, true);
        for (int i = 0; i < N_RECORDS; i++) {
                ks_error_t *e = pipe_rec(i, boom_at);
                if (e) {
                        ck_assert_int_eq(i, boom_at);
                        ck_assert_msg(
                                strstr(ks_error_message(e), "injected failure"),
                                "%s", ks_error_message(e));
                        ks_error_destroy(e);
                        /* One count per record: under EOS those since the
                         * last commit were pending, and are gone. */
                        ck_assert_uint_eq(
                                ks_test_driver_remaining(drv, "counts-out"),
                                (size_t)(eos ? last_commit : i));
                        for (int j = last_commit; !eos && j <= i; j++, again++)
                                ck_assert_ptr_null(pipe_rec(j, boom_at));
                }
                if ((i + 1) % commit_every == 0) {
                        ck_assert_ptr_null(ks_test_driver_commit(drv));
                        last_commit = i + 1;
                }
        }
        ck_assert_ptr_null(ks_test_driver_commit(drv));
        ck_assert_ptr_null(ks_test_driver_close_windows(drv, NULL));
        ck_assert_int_eq(failures, 1);
        return again;
}

/* counts-out: per key, every count from 1 to the expected one, once, in
 * order. */
static void expect_exact_counts(const expected_t *x) {
        int64_t seen[N_KEYS] = {0};
        ks_test_record_t r;
        while (ks_test_driver_read(drv, "counts-out", &r)) {
                ck_assert_uint_eq(r.key.len, 1);
                int key = ((const char *)r.key.data)[0] - 'a';
                ck_assert_int_eq(kt_be64(r.value.data), ++seen[key]);
        }
        for (int k = 0; k < N_KEYS; k++)
                ck_assert_int_eq(seen[k], x->per_key[k]);
}

/* final: one record per window, with its whole count. */
static void expect_exact_windows(const expected_t *x) {
        int seen[N_KEYS][N_RECORDS / WINDOW + 1] = {{0}};
        ks_test_record_t r;
        size_t n = 0, want = 0;
        while (ks_test_driver_read(drv, "final", &r)) {
                ck_assert_uint_eq(r.key.len, 1 + 8);
                int key   = ((const char *)r.key.data)[0] - 'a';
                int64_t w = kt_be64((const char *)r.key.data + 1) / WINDOW;
                ck_assert_int_eq(++seen[key][w], 1);
                ck_assert_int_eq(kt_be64(r.value.data), x->per_window[key][w]);
                n++;
        }
        for (int k = 0; k < N_KEYS; k++)
                for (int w = 0; w <= N_RECORDS / WINDOW; w++)
                        want += x->per_window[k][w] > 0;
        ck_assert_uint_eq(n, want);
}

static void exactly_once_scenario(bool repartition, bool memory) {
        expected_t x;
        tally(&x);
        start("exactly_once_v2", repartition, memory);
        /* Commits after 3, 7, 11: 12..14 are processed, 15 fails. */
        run(true, 4, 15);
        expect_exact_counts(&x);
        expect_exact_windows(&x);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "transactions-aborted"),
                          1);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 0);
}

START_TEST(eos_abort_and_replay_count_every_record_once) {
        exactly_once_scenario(false, false);
}
END_TEST

START_TEST(eos_abort_and_replay_through_a_repartition_topic) {
        exactly_once_scenario(true, false);
}
END_TEST

START_TEST(eos_abort_restores_memory_stores_from_their_changelogs) {
        exactly_once_scenario(false, true);
}
END_TEST

/* The same failure under at-least-once: a restart reads again from the
 * committed offsets, and the records processed since count twice. */
START_TEST(alo_shows_the_duplicates_the_same_failure_makes) {
        expected_t x;
        tally(&x);
        start("at_least_once", false, false);
        int again = run(false, 4, 15);
        ck_assert_int_eq(again, 15 - 12 + 1);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "transactions-aborted"),
                          0);
        /* 12, 13, 14 counted twice, 15 once. */
        size_t outputs = ks_test_driver_remaining(drv, "counts-out");
        ck_assert_uint_eq(outputs, N_RECORDS + 3);
        int64_t last[N_KEYS] = {0}, total = 0, windowed = 0;
        ks_test_record_t r;
        while (ks_test_driver_read(drv, "counts-out", &r))
                last[((const char *)r.key.data)[0] - 'a'] =
                        kt_be64(r.value.data);
        for (int k = 0; k < N_KEYS; k++) {
                ck_assert_int_ge(last[k], x.per_key[k]);
                total += last[k];
        }
        ck_assert_int_eq(total, N_RECORDS + 3);
        while (ks_test_driver_read(drv, "final", &r))
                windowed += kt_be64(r.value.data);
        ck_assert_int_eq(windowed, N_RECORDS + 3);
}
END_TEST

/* Readers see nothing of an open transaction: not the outputs, not the
 * changelogs; the commit shows all of them. */
START_TEST(readers_see_nothing_of_an_open_transaction) {
        start("exactly_once_v2", true, false);
        ks_test_driver_set_manual_commit(drv, true);
        for (int i = 0; i < 5; i++)
                ck_assert_ptr_null(pipe_rec(i, -1));
        ks_test_record_t r;
        ck_assert(!ks_test_driver_read(drv, "counts-out", &r));
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "counts-out"), 0);
        ck_assert_uint_eq(
                ks_test_driver_remaining(drv, "eos-rekey-repartition"), 0);
        ck_assert_uint_eq(
                ks_test_driver_remaining(drv, "eos-wcounts-changelog"), 0);
        char *dump  = NULL;
        size_t size = 0;
        FILE *f     = open_memstream(&dump, &size);
        ck_assert_ptr_null(
                ks_test_driver_dump_jsonl(drv, "eos-wcounts-changelog", f));
        fclose(f);
        ck_assert_uint_eq(size, 0);
        free(dump);
        /* One commit: the repartition records become visible, are counted
         * in the next transaction, which the same call commits. */
        ck_assert_ptr_null(ks_test_driver_commit(drv));
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "counts-out"), 5);
        ck_assert_uint_eq(
                ks_test_driver_remaining(drv, "eos-rekey-repartition"), 5);
        ck_assert_uint_eq(
                ks_test_driver_remaining(drv, "eos-wcounts-changelog"), 5);
        ck_assert_uint_ge(ks_test_driver_metric(drv, "transactions-committed"),
                          2);
        int64_t seen[N_KEYS] = {0};
        while (ks_test_driver_read(drv, "counts-out", &r))
                ck_assert_int_eq(kt_be64(r.value.data),
                                 ++seen[((const char *)r.key.data)[0] - 'a']);
}
END_TEST

/* Committing after every record (the default) reaches a fixed point
 * through the repartition topic: each pipe shows its counts. */
START_TEST(eos_commit_per_record_shows_each_update_at_once) {
        expected_t x;
        tally(&x);
        start("exactly_once_v2", true, false);
        int64_t seen[N_KEYS] = {0};
        for (int i = 0; i < N_RECORDS; i++) {
                ck_assert_ptr_null(pipe_rec(i, -1));
                ks_test_record_t r;
                ck_assert(ks_test_driver_read(drv, "counts-out", &r));
                int key = ((const char *)r.key.data)[0] - 'a';
                ck_assert_int_eq(key, (i * 7) % N_KEYS);
                ck_assert_int_eq(kt_be64(r.value.data), ++seen[key]);
                ck_assert(!ks_test_driver_read(drv, "counts-out", &r));
        }
        for (int k = 0; k < N_KEYS; k++)
                ck_assert_int_eq(seen[k], x.per_key[k]);
}
END_TEST

/* After an abort the stream time is the committed one again. */
START_TEST(eos_abort_restores_the_committed_stream_time) {
        start("exactly_once_v2", false, false);
        ks_test_driver_set_manual_commit(drv, true);
        ck_assert_ptr_null(ks_test_driver_pipe_str(drv, "in", "a", "v", 5));
        ck_assert_ptr_null(ks_test_driver_commit(drv));
        int32_t p = ks_partition_for_key("a", 1, 2);
        ck_assert_ptr_null(ks_test_driver_pipe_str(drv, "in", "a", "v", 50));
        ck_assert_int_eq(ks_test_driver_stream_time(drv, 0, p), 50);
        ks_error_t *e = ks_test_driver_pipe_str(drv, "in", "a", "boom", 60);
        ck_assert_ptr_nonnull(e);
        ks_error_destroy(e);
        ck_assert_int_eq(ks_test_driver_stream_time(drv, 0, p), 5);
        /* The next call processes the input since the commit again. */
        ck_assert_ptr_null(ks_test_driver_commit(drv));
        ck_assert_int_eq(ks_test_driver_stream_time(drv, 0, p), 60);
        ks_test_record_t r;
        int64_t want = 0;
        while (ks_test_driver_read(drv, "counts-out", &r))
                ck_assert_int_eq(kt_be64(r.value.data), ++want);
        ck_assert_int_eq(want, 3);
}
END_TEST

/* Streamed outputs get only committed records, once each, through an
 * abort too. */
typedef struct streamed_s {
        int64_t seen[N_KEYS];
        size_t n;
} streamed_t;

static void on_output(ks_test_driver_t *d,
                      const ks_test_record_t *r,
                      void *opaque) {
        streamed_t *st = opaque;
        (void)d;
        if (strcmp(r->topic, "counts-out"))
                return;
        int key = ((const char *)r->key.data)[0] - 'a';
        ck_assert_int_eq(kt_be64(r->value.data), ++st->seen[key]);
        st->n++;
}

START_TEST(eos_streamed_outputs_only_at_commits) {
        expected_t x;
        tally(&x);
        streamed_t st = {{0}, 0};
        start("exactly_once_v2", true, false);
        ck_assert_int_eq(
                ks_test_driver_stream_outputs(drv, on_output, &st, NULL),
                KS_OK);
        ks_test_driver_set_manual_commit(drv, true);
        for (int i = 0; i < N_RECORDS; i++) {
                ks_error_t *e = pipe_rec(i, 15);
                ck_assert_int_eq(e != NULL, i == 15);
                ks_error_destroy(e);
                /* Commits after 3, 7, 11: nothing of 12.. yet. */
                if (i == 15)
                        ck_assert_uint_eq(st.n, 12);
                if ((i + 1) % 4 == 0)
                        ck_assert_ptr_null(ks_test_driver_commit(drv));
        }
        ck_assert_uint_eq(st.n, N_RECORDS);
        for (int k = 0; k < N_KEYS; k++)
                ck_assert_int_eq(st.seen[k], x.per_key[k]);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s = suite_create("eos");
        TCase *c = tcase_create("eos");
        tcase_add_checked_fixture(c, NULL, teardown);
        tcase_add_test(c, eos_abort_and_replay_count_every_record_once);
        tcase_add_test(c, eos_abort_and_replay_through_a_repartition_topic);
        tcase_add_test(c,
                       eos_abort_restores_memory_stores_from_their_changelogs);
        tcase_add_test(c, alo_shows_the_duplicates_the_same_failure_makes);
        tcase_add_test(c, readers_see_nothing_of_an_open_transaction);
        tcase_add_test(c, eos_commit_per_record_shows_each_update_at_once);
        tcase_add_test(c, eos_abort_restores_the_committed_stream_time);
        tcase_add_test(c, eos_streamed_outputs_only_at_commits);
        suite_add_tcase(s, c);
        return s;
}
