/* ks_stream_process_values(): a processor that keeps the key needs no
 * repartition before a group_by_key (ks_stream_process() does), and its
 * records flow on with their key. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void teardown(void) {
        kd_stop(&drv, &topo);
}

/* Drops values "drop", forwards the rest unchanged. */
static ks_err_t keep_process(ks_ctx_t *ctx,
                             const void *key,
                             const void *value,
                             void *state,
                             void *opaque) {
        (void)state, (void)opaque;
        if (!strcmp(value, "drop"))
                return KS_OK;
        return ks_ctx_forward(ctx, key, value);
}

static const ks_processor_def_t keep_def = {.process = keep_process};

static ks_topology_t *build(bool values_only) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_t *p =
                values_only ? ks_stream_process_values(s, "keep", &keep_def)
                            : ks_stream_process(s, "keep", &keep_def);
        ks_table_t *t = ks_grouped_count(
                ks_stream_group_by_key(p, ks_serde_string(), ks_serde_string()),
                "counts");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        ks_topology_t *topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "%s", err);
        ks_builder_destroy(b);
        return topo;
}

START_TEST(process_values_keeps_the_partitioning) {
        ks_topology_t *t = build(true);
        ck_assert_int_eq(ks_topology_subtopology_count(t), 1);
        ks_topology_destroy(t);
        /* The plain Processor API node may change keys: repartition. */
        t = build(false);
        ck_assert_int_eq(ks_topology_subtopology_count(t), 2);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(process_values_forwards_with_the_key) {
        char err[256];
        topo = build(true);
        drv  = ks_test_driver_new(topo, NULL, err, sizeof(err));
        ck_assert_msg(drv, "%s", err);
        ks_test_driver_create_topic(drv, "in", 2);
        kd_pipe(drv, "in", "a", "x", 1);
        kd_pipe(drv, "in", "a", "drop", 2);
        kd_pipe(drv, "in", "b", "x", 3);
        kd_pipe(drv, "in", "a", "x", 4);
        static const struct {
                const char *key;
                int64_t count;
        } want[] = {{"a", 1}, {"b", 1}, {"a", 2}};
        for (size_t i = 0; i < 3; i++) {
                ks_test_record_t r;
                ck_assert(ks_test_driver_read(drv, "out", &r));
                ck_assert_uint_eq(r.key.len, 1);
                ck_assert(!memcmp(r.key.data, want[i].key, 1));
                ck_assert_int_eq(kt_be64(r.value.data), want[i].count);
        }
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("process_values");
        TCase *tc = tcase_create("process_values");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, process_values_keeps_the_partitioning);
        tcase_add_test(tc, process_values_forwards_with_the_key);
        suite_add_tcase(s, tc);
        return s;
}
