/* Arena, buffers, error objects, error names. */
#include <kstreams/error.h>
#include <string.h>

#include "ks_check.h"

START_TEST(arena_allocs_are_aligned_and_survive_growth) {
        ks_arena_t *a = ks_arena_new(64);
        void *ptrs[200];
        for (int i = 0; i < 200; i++) {
                ptrs[i] = ks_arena_alloc(a, (size_t)(i % 50) + 1);
                ck_assert_ptr_nonnull(ptrs[i]);
                ck_assert_uint_eq((uintptr_t)ptrs[i] % 16, 0);
                memset(ptrs[i], i, (size_t)(i % 50) + 1);
        }
        /* Earlier allocations keep their bytes after new blocks appear. */
        for (int i = 0; i < 200; i++)
                ck_assert_int_eq(((unsigned char *)ptrs[i])[0], i);
        ks_arena_destroy(a);
}
END_TEST

static int cleanup_calls;
static void count_cleanup(void *p) {
        cleanup_calls += *(int *)p;
}

START_TEST(arena_reset_runs_deferred_cleanups_once) {
        ks_arena_t *a = ks_arena_new(0);
        int one = 1, ten = 10;
        cleanup_calls = 0;
        ck_assert_int_eq(ks_arena_defer(a, count_cleanup, &one), KS_OK);
        ck_assert_int_eq(ks_arena_defer(a, count_cleanup, &ten), KS_OK);
        ks_arena_reset(a);
        ck_assert_int_eq(cleanup_calls, 11);
        ks_arena_reset(a);
        ck_assert_int_eq(cleanup_calls, 11);
        ck_assert_uint_eq(ks_arena_used(a), 0);
        ks_arena_defer(a, count_cleanup, &one);
        ks_arena_destroy(a);
        ck_assert_int_eq(cleanup_calls, 12);
}
END_TEST

START_TEST(arena_helpers_copy) {
        ks_arena_t *a = ks_arena_new(0);
        char *s       = ks_arena_strndup(a, "hello world", 5);
        ck_assert_str_eq(s, "hello");
        ck_assert_int_eq(*ks_arena_int64(a, -42), -42);
        ck_assert(*ks_arena_double(a, 2.5) == 2.5);
        char *big = ks_arena_alloc(a, 1 << 20); /* larger than a block */
        ck_assert_ptr_nonnull(big);
        memset(big, 1, 1 << 20);
        ks_arena_destroy(a);
}
END_TEST

START_TEST(buf_appends_and_formats) {
        ks_buf_t b = {0};
        ck_assert_int_eq(ks_buf_append(&b, "ab", 2), KS_OK);
        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(ks_buf_appendf(&b, "%d,", i), KS_OK);
        ck_assert_uint_eq(b.len, 2 + 10 * 2 + 90 * 3 + 900 * 4);
        ck_assert_int_eq(b.data[b.len], '\0');
        ck_assert(!strncmp(b.data, "ab0,1,2,", 8));
        ks_buf_clear(&b);
        ck_assert_uint_eq(b.len, 0);
        ks_buf_free(&b);
        ks_buf_free(&b); /* twice is harmless */
}
END_TEST

START_TEST(error_objects_keep_code_message_and_flags) {
        ks_error_t *e = ks_error_new(KS_ERR_KAFKA, "kafka: %s: %d",
                                     "Broker: Not leader", 6);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_KAFKA);
        ck_assert_str_eq(ks_error_message(e), "kafka: Broker: Not leader: 6");
        ck_assert(!ks_error_is_retriable(e));
        ks_error_set_retriable(e, true);
        ks_error_set_fatal(e, true);
        ck_assert(ks_error_is_retriable(e) && ks_error_is_fatal(e));
        ks_error_destroy(e);
        ks_error_destroy(NULL);
}
END_TEST

START_TEST(every_error_code_has_a_name) {
        for (int i = 0; i < KS_ERR__END; i++)
                ck_assert_msg(strncmp(ks_err2str((ks_err_t)i), "KS_", 3) == 0,
                              "code %d", i);
        ck_assert_str_eq(ks_err2str((ks_err_t)999),
                         "KS_ERR_?: unknown error code");
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("common");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, arena_allocs_are_aligned_and_survive_growth);
        tcase_add_test(tc, arena_reset_runs_deferred_cleanups_once);
        tcase_add_test(tc, arena_helpers_copy);
        tcase_add_test(tc, buf_appends_and_formats);
        tcase_add_test(tc, error_objects_keep_code_message_and_flags);
        tcase_add_test(tc, every_error_code_has_a_name);
        suite_add_tcase(s, tc);
        return s;
}
