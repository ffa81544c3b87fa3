/* ks_serde_struct() and ks_serde_tuple(): wire forms, round trips, and the
 * errors a corrupt or mismatched record gets. */
#include <kstreams/serde_typed.h>
#include <string.h>

#include "ks_check.h"

static ks_arena_t *arena;
static void setup(void) {
        arena = ks_arena_new(0);
}
static void teardown(void) {
        ks_arena_destroy(arena);
}

typedef struct agg_s {
        int64_t count;
        int32_t small;
        double sum;
        int64_t not_serialized;
} agg_t;

static const ks_struct_field_t agg_fields[] = {
        KS_STRUCT_FIELD(KS_FIELD_INT64, agg_t, count),
        KS_STRUCT_FIELD(KS_FIELD_INT32, agg_t, small),
        KS_STRUCT_FIELD(KS_FIELD_DOUBLE, agg_t, sum),
};

START_TEST(struct_serde_writes_members_big_endian_in_order) {
        ks_serde_t *s = ks_serde_struct("agg", sizeof(agg_t), agg_fields, 3);
        ck_assert_ptr_nonnull(s);
        agg_t a = {.count = 258, .small = -2, .sum = 2.0, .not_serialized = 9};
        ks_buf_t b = {0};
        char err[128];
        ck_assert_int_eq(ks_serde_serialize(s, &a, &b, err, sizeof(err)),
                         KS_OK);
        /* 258 as int64, -2 as int32, 2.0 = 0x4000000000000000 */
        const unsigned char want[20] = {0, 0,    0,    0,    0,    0,    1,
                                        2, 0xff, 0xff, 0xff, 0xfe, 0x40, 0,
                                        0, 0,    0,    0,    0,    0};
        ck_assert_uint_eq(b.len, 20);
        ck_assert(!memcmp(b.data, want, 20));

        const void *obj;
        ck_assert_int_eq(ks_serde_deserialize(s, arena, b.data, b.len, &obj,
                                              err, sizeof(err)),
                         KS_OK);
        const agg_t *back = obj;
        ck_assert_int_eq(back->count, 258);
        ck_assert_int_eq(back->small, -2);
        ck_assert(back->sum == 2.0);
        ck_assert_int_eq(back->not_serialized, 0); /* not listed: zeroed */
        ks_buf_free(&b);
        ks_serde_destroy(s);
}
END_TEST

START_TEST(struct_serde_rejects_bytes_of_another_length) {
        ks_serde_t *s = ks_serde_struct("agg", sizeof(agg_t), agg_fields, 3);
        const void *obj;
        char err[128];
        ck_assert_int_eq(ks_serde_deserialize(s, arena, "12345678", 8, &obj,
                                              err, sizeof(err)),
                         KS_ERR_SERDE);
        ck_assert_str_eq(err, "struct serde: expected 20 bytes, got 8");
        ks_serde_destroy(s);
}
END_TEST

START_TEST(struct_serde_refuses_members_outside_the_struct) {
        ks_struct_field_t bad[] = {{KS_FIELD_INT64, sizeof(agg_t) - 4}};
        ck_assert_ptr_null(ks_serde_struct("bad", sizeof(agg_t), bad, 1));
        ck_assert_ptr_null(ks_serde_struct("none", sizeof(agg_t), bad, 0));
}
END_TEST

START_TEST(tuple_serde_roundtrips_in_place) {
        ks_serde_t *s           = ks_serde_tuple(2);
        const char *const in[2] = {"/cart", "DE"};
        ks_tuple_t *t           = ks_tuple_make(arena, 2, in);
        ks_buf_t b              = {0};
        char err[128];
        ck_assert_int_eq(ks_serde_serialize(s, t, &b, err, sizeof(err)), KS_OK);
        ck_assert_uint_eq(b.len, 9);
        ck_assert(!memcmp(b.data, "/cart\0DE\0", 9));
        const void *obj;
        ck_assert_int_eq(ks_serde_deserialize(s, arena, b.data, b.len, &obj,
                                              err, sizeof(err)),
                         KS_OK);
        const ks_tuple_t *back = obj;
        ck_assert_uint_eq(back->count, 2);
        ck_assert_str_eq(back->items[0], "/cart");
        ck_assert_str_eq(back->items[1], "DE");
        /* Empty items are items. */
        const char *const empty[2] = {"", ""};
        ks_buf_clear(&b);
        ck_assert_int_eq(ks_serde_serialize(s, ks_tuple_make(arena, 2, empty),
                                            &b, err, sizeof(err)),
                         KS_OK);
        ck_assert_uint_eq(b.len, 2);
        ck_assert_int_eq(ks_serde_deserialize(s, arena, b.data, b.len, &obj,
                                              err, sizeof(err)),
                         KS_OK);
        ck_assert_str_eq(((const ks_tuple_t *)obj)->items[1], "");
        ks_buf_free(&b);
        ks_serde_destroy(s);
}
END_TEST

static int cmp_bytes(ks_serde_t *s,
                     const char *a0,
                     const char *a1,
                     const char *b0,
                     const char *b1) {
        const char *const a[2] = {a0, a1}, *const b[2] = {b0, b1};
        ks_buf_t ba = {0}, bb = {0};
        char err[64];
        ck_assert_int_eq(ks_serde_serialize(s, ks_tuple_make(arena, 2, a), &ba,
                                            err, sizeof(err)),
                         KS_OK);
        ck_assert_int_eq(ks_serde_serialize(s, ks_tuple_make(arena, 2, b), &bb,
                                            err, sizeof(err)),
                         KS_OK);
        size_t n = ba.len < bb.len ? ba.len : bb.len;
        int c    = memcmp(ba.data, bb.data, n);
        if (!c)
                c = ba.len < bb.len ? -1 : ba.len > bb.len;
        ks_buf_free(&ba);
        ks_buf_free(&bb);
        return c;
}

START_TEST(tuple_bytes_sort_item_by_item) {
        ks_serde_t *s = ks_serde_tuple(2);
        ck_assert_int_lt(cmp_bytes(s, "a", "z", "ab", "a"), 0);
        ck_assert_int_lt(cmp_bytes(s, "a", "a", "a", "b"), 0);
        ck_assert_int_gt(cmp_bytes(s, "b", "", "a", "zzz"), 0);
        ck_assert_int_eq(cmp_bytes(s, "x", "y", "x", "y"), 0);
        ks_serde_destroy(s);
}
END_TEST

START_TEST(tuple_serde_rejects_other_arities_and_unterminated_bytes) {
        ks_serde_t *s = ks_serde_tuple(2);
        const void *obj;
        char err[128];
        ck_assert_int_eq(ks_serde_deserialize(s, arena, "a\0", 2, &obj, err,
                                              sizeof(err)),
                         KS_ERR_SERDE);
        ck_assert_str_eq(err, "tuple serde: expected 2 items, got 1");
        ck_assert_int_eq(ks_serde_deserialize(s, arena, "a\0b\0c\0", 6, &obj,
                                              err, sizeof(err)),
                         KS_ERR_SERDE);
        ck_assert_str_eq(err, "tuple serde: more items than expected");
        ck_assert_int_eq(ks_serde_deserialize(s, arena, "a\0b", 3, &obj, err,
                                              sizeof(err)),
                         KS_ERR_SERDE);
        ck_assert_str_eq(err,
                         "tuple serde: the last item has no terminating 0");
        const char *const one[1] = {"a"};
        ks_buf_t b               = {0};
        ck_assert_int_eq(ks_serde_serialize(s, ks_tuple_make(arena, 1, one), &b,
                                            err, sizeof(err)),
                         KS_ERR_SERDE);
        ck_assert_ptr_null(ks_serde_tuple(0));
        ck_assert_ptr_null(ks_serde_tuple(KS_TUPLE_MAX_ITEMS + 1));
        ks_buf_free(&b);
        ks_serde_destroy(s);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("serde_typed");
        TCase *tc = tcase_create("serde_typed");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, struct_serde_writes_members_big_endian_in_order);
        tcase_add_test(tc, struct_serde_rejects_bytes_of_another_length);
        tcase_add_test(tc, struct_serde_refuses_members_outside_the_struct);
        tcase_add_test(tc, tuple_serde_roundtrips_in_place);
        tcase_add_test(tc, tuple_bytes_sort_item_by_item);
        tcase_add_test(
                tc, tuple_serde_rejects_other_arities_and_unterminated_bytes);
        suite_add_tcase(s, tc);
        return s;
}
