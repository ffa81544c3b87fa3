/* Composite keys through a topology: grouping by a ks_serde_tuple() key
 * repartitions by the tuple's bytes, counts per (page, country), and the
 * output keys read back as the same tuples. */
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

/* Values "page|country": the key is the tuple (page, country), its items
 * arena copies. */
static const void *page_country(ks_arena_t *a,
                                const void *key,
                                const void *value,
                                void *opaque) {
        (void)key, (void)opaque;
        const char *v   = value;
        const char *bar = strchr(v, '|');
        const char *items[2];
        if (!bar)
                return NULL;
        items[0] = ks_arena_strndup(a, v, (size_t)(bar - v));
        items[1] = ks_arena_strdup(a, bar + 1);
        return ks_tuple_make(a, 2, items);
}

START_TEST(tuple_keys_group_and_read_back) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *t   = ks_grouped_count(
                  ks_stream_group_by(s, "by-page-country", page_country, NULL,
                                     ks_serde_tuple(2), ks_serde_string()),
                  "counts");
        ks_stream_to(ks_table_to_stream(t, NULL), "out", NULL, NULL);
        drv = kd_start(b, "tuple", NULL, &topo);
        ks_test_driver_create_topic(drv, "in", 3);
        kd_pipe(drv, "in", "u1", "/cart|DE", 1);
        kd_pipe(drv, "in", "u2", "/cart|FR", 2);
        kd_pipe(drv, "in", "u3", "/cart|DE", 3);
        kd_pipe(drv, "in", "u1", "/|DE", 4);

        /* Expected, in order: (/cart,DE)=1, (/cart,FR)=1, (/cart,DE)=2,
         * (/,DE)=1. */
        static const struct {
                const char *page, *country;
                int64_t count;
        } want[]       = {{"/cart", "DE", 1},
                          {"/cart", "FR", 1},
                          {"/cart", "DE", 2},
                          {"/", "DE", 1}};
        ks_serde_t *ts = ks_serde_tuple(2);
        ks_arena_t *a  = ks_arena_new(0);
        for (size_t i = 0; i < 4; i++) {
                ks_test_record_t r;
                const void *obj;
                char err[128];
                ck_assert(ks_test_driver_read(drv, "out", &r));
                ck_assert_int_eq(
                        ks_serde_deserialize(ts, a, r.key.data, r.key.len, &obj,
                                             err, sizeof(err)),
                        KS_OK);
                const ks_tuple_t *k = obj;
                ck_assert_str_eq(k->items[0], want[i].page);
                ck_assert_str_eq(k->items[1], want[i].country);
                ck_assert_int_eq(kt_be64(r.value.data), want[i].count);
        }
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
        /* Equal tuples went to one partition of the repartition topic, as
         * their bytes say. */
        const char de[] = "/cart\0DE";
        ck_assert_int_eq(ks_test_driver_partitions(
                                 drv, "tuple-by-page-country-repartition"),
                         3);
        ks_kv_store_t *kv = ks_test_driver_kv_store(
                drv, "counts", ks_partition_for_key(de, sizeof(de), 3));
        ck_assert_ptr_nonnull(kv);
        ks_bytes_t v;
        bool found;
        ks_error_t *e =
                ks_kv_store_get(kv, (ks_bytes_t){de, sizeof(de)}, &v, &found);
        ck_assert_ptr_null(e);
        ck_assert(found);
        ck_assert_int_eq(kt_be64(v.data), 2);
        ks_arena_destroy(a);
        ks_serde_destroy(ts);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("tuple_key");
        TCase *tc = tcase_create("tuple_key");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, tuple_keys_group_and_read_back);
        suite_add_tcase(s, tc);
        return s;
}
