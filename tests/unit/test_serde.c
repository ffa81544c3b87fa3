/* Built-in and user serdes: wire formats (as Java's serializers), nulls,
 * errors, reference counting. */
#include <jansson.h>
#include <kstreams/serde.h>
#include <string.h>

#include "ks_check.h"

static ks_arena_t *arena;
static void setup(void) {
        arena = ks_arena_new(0);
}
static void teardown(void) {
        ks_arena_destroy(arena);
}

START_TEST(int64_is_big_endian_like_java_long_serializer) {
        ks_buf_t b = {0};
        char err[128];
        int64_t v = -2;
        ck_assert_int_eq(
                ks_serde_serialize(ks_serde_int64(), &v, &b, err, sizeof(err)),
                KS_OK);
        const unsigned char want[8] = {0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xfe};
        ck_assert_uint_eq(b.len, 8);
        ck_assert(!memcmp(b.data, want, 8));
        const void *obj;
        const unsigned char one[8] = {0, 0, 0, 0, 0, 0, 1, 0};
        ck_assert_int_eq(ks_serde_deserialize(ks_serde_int64(), arena, one, 8,
                                              &obj, err, sizeof(err)),
                         KS_OK);
        ck_assert_int_eq(*(const int64_t *)obj, 256);
        ck_assert_int_eq(ks_serde_deserialize(ks_serde_int64(), arena, one, 3,
                                              &obj, err, sizeof(err)),
                         KS_ERR_SERDE);
        ck_assert_str_eq(err, "int64 serde: expected 8 bytes, got 3");
        ks_buf_free(&b);
}
END_TEST

START_TEST(double_is_ieee754_big_endian) {
        ks_buf_t b = {0};
        char err[128];
        double v = 1.5; /* 0x3FF8000000000000 */
        ks_serde_serialize(ks_serde_double(), &v, &b, err, sizeof(err));
        const unsigned char want[8] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
        ck_assert(!memcmp(b.data, want, 8));
        const void *obj;
        ck_assert_int_eq(ks_serde_deserialize(ks_serde_double(), arena, b.data,
                                              b.len, &obj, err, sizeof(err)),
                         KS_OK);
        ck_assert(*(const double *)obj == 1.5);
        ks_buf_free(&b);
}
END_TEST

START_TEST(string_and_bytes_roundtrip) {
        ks_buf_t b = {0};
        char err[128];
        const void *obj;
        ks_serde_serialize(ks_serde_string(), "héllo", &b, err, sizeof(err));
        ck_assert_uint_eq(b.len, strlen("héllo"));
        ks_serde_deserialize(ks_serde_string(), arena, b.data, b.len, &obj, err,
                             sizeof(err));
        ck_assert_str_eq(obj, "héllo");
        ks_serde_deserialize(ks_serde_bytes(), arena, "\0\1\2", 3, &obj, err,
                             sizeof(err));
        ck_assert_uint_eq(((const ks_bytes_t *)obj)->len, 3);
        ks_buf_free(&b);
}
END_TEST

START_TEST(null_bytes_are_null_objects_without_calling_the_serde) {
        const void *obj = (void *)1;
        char err[128];
        ck_assert_int_eq(ks_serde_deserialize(ks_serde_int64(), arena, NULL, 0,
                                              &obj, err, sizeof(err)),
                         KS_OK);
        ck_assert_ptr_null(obj);
        ks_buf_t b = {0};
        ck_assert_int_eq(ks_serde_serialize(ks_serde_int64(), NULL, &b, err,
                                            sizeof(err)),
                         KS_OK);
        ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(json_serde_parses_any_value_and_frees_with_the_arena) {
        const void *obj;
        char err[128];
        const char *doc = "{\"a\":[1,2,{\"b\":null}],\"c\":\"x\"}";
        ck_assert_int_eq(
                ks_serde_deserialize(ks_serde_json(), arena, doc, strlen(doc),
                                     &obj, err, sizeof(err)),
                KS_OK);
        ck_assert_str_eq(json_string_value(json_object_get(obj, "c")), "x");
        ks_buf_t b = {0};
        ks_serde_serialize(ks_serde_json(), obj, &b, err, sizeof(err));
        ck_assert_str_eq(b.data, doc);
        ck_assert_int_eq(ks_serde_deserialize(ks_serde_json(), arena, "{\"a\":",
                                              5, &obj, err, sizeof(err)),
                         KS_ERR_JSON);
        ck_assert(strstr(err, "json serde:"));
        ks_buf_free(&b);
        /* teardown's arena destroy drops the json_t: ASan proves no leak */
}
END_TEST

static int freed;
static void count_free(void *p) {
        (void)p;
        freed++;
}
static ks_err_t upper_ser(const void *obj,
                          ks_buf_t *out,
                          void *opaque,
                          char *errstr,
                          size_t errstr_size) {
        (void)opaque, (void)errstr, (void)errstr_size;
        return ks_buf_append(out, obj, strlen(obj));
}
static ks_err_t upper_de(ks_arena_t *a,
                         const void *data,
                         size_t len,
                         const void **obj_out,
                         void *opaque,
                         char *errstr,
                         size_t errstr_size) {
        (void)opaque, (void)errstr, (void)errstr_size;
        char *s = ks_arena_strndup(a, data, len);
        for (char *p = s; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char)(*p - 32);
        *obj_out = s;
        return KS_OK;
}

START_TEST(user_serdes_are_reference_counted) {
        freed = 0;
        ks_serde_t *s =
                ks_serde_new("upper", upper_ser, upper_de, &freed, count_free);
        ck_assert_str_eq(ks_serde_name(s), "upper");
        const void *obj;
        char err[64];
        ks_serde_deserialize(s, arena, "abc", 3, &obj, err, sizeof(err));
        ck_assert_str_eq(obj, "ABC");
        ks_serde_ref(s);
        ks_serde_destroy(s);
        ck_assert_int_eq(freed, 0);
        ks_serde_destroy(s);
        ck_assert_int_eq(freed, 1);
        /* Built-ins are static: destroying them is harmless. */
        ks_serde_destroy(ks_serde_string());
        ck_assert_str_eq(ks_serde_name(ks_serde_string()), "string");
        ck_assert_ptr_null(ks_serde_new("x", NULL, upper_de, NULL, NULL));
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("serde");
        TCase *tc = tcase_create("serde");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, int64_is_big_endian_like_java_long_serializer);
        tcase_add_test(tc, double_is_ieee754_big_endian);
        tcase_add_test(tc, string_and_bytes_roundtrip);
        tcase_add_test(tc,
                       null_bytes_are_null_objects_without_calling_the_serde);
        tcase_add_test(tc,
                       json_serde_parses_any_value_and_frees_with_the_arena);
        tcase_add_test(tc, user_serdes_are_reference_counted);
        suite_add_tcase(s, tc);
        return s;
}
