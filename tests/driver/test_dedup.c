/* ks_stream_deduplicate(): the first record of each id goes on, copies
 * within the window are dropped and counted, copies after it are kept;
 * records without an id pass; expired ids leave the store; and — its
 * point — a copy of a record processed before a restart (a task closed and
 * made again from its store, or from its changelog) is still dropped.
 * Expected outputs come from a brute-force model of the documented rule
 * (every registration kept in a list), not from the operator's store. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;
static int booms; /* the flaky step fails the first "boom" only */

static void teardown(void) {
        kd_stop(&drv, &topo);
}

/* The id is the value; an empty or null value has none. */
static ks_bytes_t id_of(ks_arena_t *a,
                        const void *key,
                        const void *value,
                        void *opaque) {
        (void)a, (void)key, (void)opaque;
        const char *v = value;
        return v && *v ? (ks_bytes_t){v, strlen(v)} : (ks_bytes_t){0};
}

static ks_err_t flaky(ks_ctx_t *ctx,
                      const void *k,
                      const void *v,
                      void *state,
                      void *opaque) {
        (void)state, (void)opaque;
        if (v && !strcmp(v, "boom") && booms++ == 0)
                return ks_ctx_fail(ctx, "injected failure");
        return ks_ctx_forward(ctx, k, v);
}

/* in -> dedup (by value, @p window) -> flaky -> out. */
static void start(int64_t window, const char *guarantee, bool memory) {
        booms           = 0;
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_t *d  = ks_stream_deduplicate(in, "ids", id_of, NULL, window);
        ks_processor_def_t def = {.process = flaky};
        ks_stream_to(ks_stream_process_values(d, "flaky", &def), "out",
                     ks_serde_string(), ks_serde_string());
        const char *conf[] = {"processing.guarantee", guarantee,
                              "default.processing.exception.handler", "fail",
                              NULL};
        drv                = kd_start(b, "dedup", conf, &topo);
        ck_assert_int_eq(ks_test_driver_use_memory_stores(drv, memory), KS_OK);
}

/* The rule, by brute force: a record with an id is a duplicate if some
 * registration of that id has t0 >= (largest time so far) - window;
 * otherwise it registers (id, its time). */
typedef struct model_s {
        const char *ids[4096];
        int64_t t0[4096];
        int n;
        int64_t max_ts;
        bool any;
} model_t;

static bool model_keeps(model_t *m,
                        int64_t window,
                        const char *id,
                        int64_t ts) {
        if (!id || !*id)
                return true;
        if (!m->any || ts > m->max_ts)
                m->max_ts = ts;
        m->any = true;
        for (int i = 0; i < m->n; i++)
                if (!strcmp(m->ids[i], id) && m->t0[i] >= m->max_ts - window)
                        return false;
        ck_assert_int_lt(m->n, 4096);
        m->ids[m->n]  = id;
        m->t0[m->n++] = ts;
        return true;
}

/* Reads "out" and checks it holds exactly @p want (values), in order. */
static void expect_out(const char *const *want, int n) {
        ks_test_record_t r;
        for (int i = 0; i < n; i++) {
                ck_assert_msg(ks_test_driver_read(drv, "out", &r),
                              "output %d of %d missing", i, n);
                ck_assert_uint_eq(r.value.len, strlen(want[i]));
                ck_assert(!memcmp(r.value.data, want[i], r.value.len));
        }
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}

START_TEST(copies_within_the_window_are_dropped_and_counted) {
        start(10, "at_least_once", false);
        /* a@0 registers; a@5 and a@10 (0 >= 10 - 10) are copies; a@11 finds
         * the registration expired (0 < 1) and registers anew; a@12 is a
         * copy of that. b is another id. */
        kd_pipe(drv, "in", "k", "a", 0);
        kd_pipe(drv, "in", "k", "a", 5);
        kd_pipe(drv, "in", "k", "b", 6);
        kd_pipe(drv, "in", "k", "a", 10);
        kd_pipe(drv, "in", "k", "a", 11);
        kd_pipe(drv, "in", "k", "a", 12);
        /* Late in time but the id is registered: still a copy. */
        kd_pipe(drv, "in", "k", "b", 3);
        static const char *const want[] = {"a", "b", "a"};
        expect_out(want, 3);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-dedup"), 4);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-late"), 0);
}
END_TEST

START_TEST(records_without_an_id_pass_and_register_nothing) {
        start(10, "at_least_once", false);
        kd_pipe(drv, "in", "k", "", 1);
        kd_pipe(drv, "in", "k", "", 2);
        kd_pipe(drv, "in", "k", NULL, 3);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 3);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-dedup"), 0);
}
END_TEST

/* Ids from a small alphabet at times that go back and forth, against the
 * model, with several keys over two partitions (each task on its own). */
START_TEST(random_records_match_the_rule) {
        const int64_t window = 50;
        start(window, "at_least_once", false);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, "in", 1), KS_OK);
        static char ids[26][2];
        model_t *m = calloc(1, sizeof(*m));
        const char *want[2000];
        int n = 0, dropped = 0;
        srand(7);
        int64_t t = 100; /* record times must not be negative */
        for (int i = 0; i < 2000; i++) {
                int c     = rand() % 26;
                ids[c][0] = (char)('a' + c);
                t += rand() % 7;
                int64_t ts = t - rand() % 40; /* out of order, up to 40 */
                kd_pipe(drv, "in", "k", ids[c], ts);
                if (model_keeps(m, window, ids[c], ts))
                        want[n++] = ids[c];
                else
                        dropped++;
        }
        ck_assert_int_gt(dropped, 100); /* the test exercises both paths */
        ck_assert_int_gt(n, 100);
        expect_out(want, n);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-dedup"),
                          (uint64_t)dropped);
        free(m);
}
END_TEST

/* Ids one second apart, a window of 100 ms: the store keeps only the ids
 * of the live window, not the 1000 registered. */
START_TEST(expired_ids_leave_the_store) {
        start(100, "at_least_once", false);
        char id[16];
        for (int i = 0; i < 1000; i++) {
                snprintf(id, sizeof(id), "id-%d", i);
                kd_pipe(drv, "in", "k", id, (int64_t)i * 1000);
        }
        ks_window_store_t *st = ks_test_driver_window_store(drv, "ids", 0);
        ck_assert_ptr_nonnull(st);
        ks_store_iter_t *it;
        ck_assert_ptr_null(
                ks_window_store_fetch_all(st, INT64_MIN, INT64_MAX, &it));
        ks_bytes_t k, v;
        int64_t start_ts;
        int live = 0;
        while (ks_store_iter_next_window(it, &k, &start_ts, &v)) {
                ck_assert_int_ge(start_ts, 999000 - 100);
                live++;
        }
        ks_store_iter_destroy(it);
        ck_assert_int_eq(live, 1); /* id-999 only */
        /* So id-0 is new again. */
        kd_pipe(drv, "in", "k", "id-0", 999050);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 1001);
}
END_TEST

/* The restart: a, b, c committed; d processed, then a failure aborts the
 * transaction, which closes the task and makes it again from its store
 * (LMDB, or with @p memory from the changelog), and d comes again. Copies
 * of a, b, c (from before the restart) and of d are dropped after it. */
static void restart_scenario(bool memory) {
        start(1000, "exactly_once_v2", memory);
        ks_test_driver_set_manual_commit(drv, true);
        kd_pipe(drv, "in", "k", "a", 1);
        kd_pipe(drv, "in", "k", "b", 2);
        kd_pipe(drv, "in", "k", "c", 3);
        ck_assert_ptr_null(ks_test_driver_commit(drv));
        kd_pipe(drv, "in", "k", "d", 4);
        ks_error_t *e = ks_test_driver_pipe_str(drv, "in", "k", "boom", 5);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(strstr(ks_error_message(e), "injected failure"), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "transactions-aborted"),
                          1);
        kd_pipe(drv, "in", "k", "a", 6);
        kd_pipe(drv, "in", "k", "c", 7);
        kd_pipe(drv, "in", "k", "d", 8);
        kd_pipe(drv, "in", "k", "b", 9);
        kd_pipe(drv, "in", "k", "e", 10);
        ck_assert_ptr_null(ks_test_driver_commit(drv));
        static const char *const want[] = {"a", "b", "c", "d", "boom", "e"};
        expect_out(want, 6);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-dedup"), 4);
}

START_TEST(copies_from_before_a_restart_are_dropped_lmdb) {
        restart_scenario(false);
}
END_TEST

START_TEST(copies_from_before_a_restart_are_dropped_changelog) {
        restart_scenario(true);
}
END_TEST

START_TEST(builder_rejects_a_bad_window) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_deduplicate(in, "ids", id_of, NULL, 0), "out",
                     NULL, NULL);
        ck_assert_ptr_null(ks_builder_build(b, err, sizeof(err)));
        ck_assert_msg(strstr(err, "deduplicate(ids)"), "%s", err);
        ks_builder_destroy(b);
}
END_TEST

START_TEST(describe_lists_the_store) {
        start(10, "at_least_once", false);
        ks_buf_t out = {0};
        ck_assert_int_eq(ks_topology_describe(topo, &out), KS_OK);
        ck_assert_msg(strstr(out.data, "Processor: ids (stores: [ids])"), "%s",
                      out.data);
        ks_buf_free(&out);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s = suite_create("dedup");
        TCase *c = tcase_create("dedup");
        tcase_add_checked_fixture(c, NULL, teardown);
        tcase_add_test(c, copies_within_the_window_are_dropped_and_counted);
        tcase_add_test(c, records_without_an_id_pass_and_register_nothing);
        tcase_add_test(c, random_records_match_the_rule);
        tcase_add_test(c, expired_ids_leave_the_store);
        tcase_add_test(c, copies_from_before_a_restart_are_dropped_lmdb);
        tcase_add_test(c, copies_from_before_a_restart_are_dropped_changelog);
        tcase_add_test(c, builder_rejects_a_bad_window);
        tcase_add_test(c, describe_lists_the_store);
        suite_add_tcase(s, c);
        return s;
}
