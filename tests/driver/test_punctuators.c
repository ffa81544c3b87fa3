/* Punctuators on stream time and on wall-clock time, with Kafka Streams'
 * alignment and skipping rules. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"

typedef struct state_s {
        int count; /* records since the last punctuation */
        ks_punctuator_t *p;
} state_t;

static ks_punctuation_type_t punct_type;
static int64_t punct_interval;

static ks_err_t emit_count(ks_ctx_t *ctx, int64_t ts, void *opaque) {
        state_t *st = opaque;
        char *v     = ks_arena_alloc(ks_ctx_arena(ctx), 64);
        snprintf(v, 64, "%d@%lld", st->count, (long long)ts);
        st->count = 0;
        ck_assert_int_eq(ks_ctx_timestamp(ctx), ts);
        ck_assert_ptr_null(ks_ctx_topic(ctx));
        return ks_ctx_forward(ctx, "count", v);
}

static ks_err_t p_init(ks_ctx_t *ctx, void **state, void *opaque) {
        (void)opaque;
        state_t *st = calloc(1, sizeof(*st));
        *state      = st;
        st->p = ks_ctx_schedule(ctx, punct_interval, punct_type, emit_count,
                                st);
        return st->p ? KS_OK : KS_ERR_INVALID_ARG;
}

static ks_err_t p_process(ks_ctx_t *ctx,
                          const void *k,
                          const void *v,
                          void *state,
                          void *opaque) {
        (void)ctx, (void)opaque;
        state_t *st = state;
        st->count++;
        if (v && !strcmp(v, "cancel"))
                ks_punctuator_cancel(st->p);
        (void)k;
        return KS_OK;
}

static void p_close(ks_ctx_t *ctx, void *state, void *opaque) {
        (void)ctx, (void)opaque;
        free(state);
}

static ks_topology_t *topo;
static ks_test_driver_t *drv;

static void start(ks_punctuation_type_t type, int64_t interval) {
        char err[256];
        punct_type             = type;
        punct_interval         = interval;
        ks_builder_t *b        = ks_builder_new();
        ks_stream_t *in        = ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_string());
        ks_processor_def_t def = {
                .init = p_init, .process = p_process, .close = p_close};
        ks_stream_to(ks_stream_process(in, "counter", &def), "out",
                     ks_serde_string(), ks_serde_string());
        topo = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        drv = ks_test_driver_new(topo, NULL, err, sizeof(err));
}

static void teardown(void) {
        ks_test_driver_destroy(drv);
        ks_topology_destroy(topo);
}

static void pipe_at(int64_t ts, const char *v) {
        ck_assert_ptr_null(ks_test_driver_pipe_str(drv, "in", "k", v, ts));
}

static void expect(const char *value) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r), "wanted %s", value);
        ck_assert_str_eq(r.value.data, value);
}

START_TEST(stream_time_punctuation_aligns_to_zero_and_skips_missed) {
        start(KS_PUNCTUATE_STREAM_TIME, 10);
        pipe_at(3, "a"); /* first data: due at 0, fires with ts 3 */
        expect("1@3");
        pipe_at(7, "b");
        pipe_at(9, "c"); /* next due at 10 */
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        pipe_at(12, "d");
        expect("3@12");
        pipe_at(5, "late"); /* stream time does not go back: no fire */
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        pipe_at(47, "e"); /* 20, 30, 40 missed: fires once, next at 50 */
        expect("2@47");
        pipe_at(49, "f");
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        pipe_at(50, "g");
        expect("2@50");
        ck_assert_uint_eq(ks_test_driver_metric(drv, "punctuations"), 4);
}
END_TEST

START_TEST(wall_clock_punctuation_follows_the_driver_clock) {
        start(KS_PUNCTUATE_WALL_CLOCK, 100);
        pipe_at(1, "a");
        pipe_at(2, "b");
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 99));
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 1));
        expect("2@100");
        /* Stream time does not drive a wall-clock punctuator. */
        pipe_at(100000, "c");
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 350));
        expect("1@450"); /* 200, 300, 400 missed: once, aligned */
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 50));
        expect("0@500");
        ck_assert_int_eq(ks_test_driver_wall_clock(drv), 500);
}
END_TEST

START_TEST(cancelled_punctuators_stop_firing) {
        start(KS_PUNCTUATE_WALL_CLOCK, 10);
        pipe_at(1, "cancel");
        ck_assert_ptr_null(ks_test_driver_advance_wall_clock(drv, 1000));
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "punctuations"), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("punctuators");
        TCase *tc = tcase_create("punctuators");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc,
                       stream_time_punctuation_aligns_to_zero_and_skips_missed);
        tcase_add_test(tc, wall_clock_punctuation_follows_the_driver_clock);
        tcase_add_test(tc, cancelled_punctuators_stop_firing);
        suite_add_tcase(s, tc);
        return s;
}
