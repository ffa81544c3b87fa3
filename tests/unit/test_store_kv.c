/* Key-value stores, LMDB and in memory: every test runs against both. */
#include <ftw.h>
#include <kstreams/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"

#define B(s) ((ks_bytes_t){(s), sizeof(s) - 1})
#define CK_OK(call)                                                            \
        do {                                                                   \
                ks_error_t *e_ = (call);                                       \
                ck_assert_msg(!e_, "%s: %s", #call,                            \
                              e_ ? ks_error_message(e_) : "");                 \
        } while (0)

static int rm_one(const char *p,
                  const struct stat *sb,
                  int flag,
                  struct FTW *ftw) {
        (void)sb, (void)flag, (void)ftw;
        return remove(p);
}

/* One store under test: LMDB (backend 0) or in memory (backend 1). */
typedef struct fx_s {
        char dir[64];
        ks_state_env_t *env;
        ks_kv_store_t *kv;
} fx_t;

static void fx_open(fx_t *f, int backend) {
        memset(f, 0, sizeof(*f));
        if (backend == 1) {
                f->kv = ks_kv_store_new_memory("kv");
                ck_assert_ptr_nonnull(f->kv);
                return;
        }
        strcpy(f->dir, "/tmp/ks_store_kv_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(f->dir));
        CK_OK(ks_state_env_open(f->dir, 0, &f->env));
        CK_OK(ks_kv_store_open(f->env, "kv", &f->kv));
}

static void fx_close(fx_t *f) {
        if (f->env) {
                ks_state_env_close(f->env);
                nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        } else {
                ks_kv_store_destroy(f->kv);
        }
}

static void put(ks_kv_store_t *kv, ks_bytes_t k, ks_bytes_t v) {
        CK_OK(ks_kv_store_put(kv, k, v));
}

/* Asserts that @p it yields exactly @p n keys, in this order. */
static void expect_keys(ks_store_iter_t *it, const ks_bytes_t *keys, int n) {
        ks_bytes_t k, v;
        int i = 0;
        while (ks_store_iter_next(it, &k, &v)) {
                ck_assert_msg(i < n, "more keys than the %d expected", n);
                ck_assert_msg(k.len == keys[i].len &&
                                      !memcmp(k.data, keys[i].data, k.len),
                              "key %d differs (len %zu, expected %zu)", i,
                              k.len, keys[i].len);
                i++;
        }
        ck_assert_ptr_null(ks_store_iter_error(it));
        ck_assert_int_eq(i, n);
        ks_store_iter_destroy(it);
}

START_TEST(get_put_delete_overwrite) {
        fx_t f;
        ks_bytes_t v;
        bool found;
        fx_open(&f, _i);
        CK_OK(ks_kv_store_get(f.kv, B("a"), &v, &found));
        ck_assert(!found);

        put(f.kv, B("a"), B("one"));
        CK_OK(ks_kv_store_get(f.kv, B("a"), &v, &found));
        ck_assert(found);
        ck_assert_mem_eq(v.data, "one", 3);
        ck_assert_uint_eq(v.len, 3);

        put(f.kv, B("a"), B("a much longer value"));
        CK_OK(ks_kv_store_get(f.kv, B("a"), &v, &found));
        ck_assert_uint_eq(v.len, 19);
        ck_assert_mem_eq(v.data, "a much longer value", 19);
        put(f.kv, B("a"), B("x"));
        CK_OK(ks_kv_store_get(f.kv, B("a"), &v, &found));
        ck_assert_uint_eq(v.len, 1);

        /* An empty value is a value, not a deletion. */
        put(f.kv, B("empty"), B(""));
        CK_OK(ks_kv_store_get(f.kv, B("empty"), &v, &found));
        ck_assert(found);
        ck_assert_uint_eq(v.len, 0);
        ck_assert_ptr_nonnull(v.data);

        CK_OK(ks_kv_store_delete(f.kv, B("a")));
        CK_OK(ks_kv_store_get(f.kv, B("a"), &v, &found));
        ck_assert(!found);
        CK_OK(ks_kv_store_delete(f.kv, B("never-there")));

        /* A NULL value is a tombstone. */
        put(f.kv, B("b"), B("2"));
        put(f.kv, B("b"), (ks_bytes_t){NULL, 0});
        CK_OK(ks_kv_store_get(f.kv, B("b"), &v, &found));
        ck_assert(!found);
        ck_assert_uint_eq(ks_kv_store_approximate_count(f.kv), 1);

        /* Empty keys are refused the same way by both engines. */
        ks_error_t *err = ks_kv_store_put(f.kv, B(""), B("v"));
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(ks_error_code(err), KS_ERR_INVALID_ARG);
        ks_error_destroy(err);
        ck_assert_str_eq(ks_kv_store_name(f.kv), "kv");
        fx_close(&f);
}
END_TEST

START_TEST(binary_keys_and_values) {
        fx_t f;
        ks_bytes_t v;
        bool found;
        fx_open(&f, _i);
        put(f.kv, B("k\0\0"), B("v\0\xff"));
        put(f.kv, B("k\0"), B("short"));
        CK_OK(ks_kv_store_get(f.kv, B("k\0\0"), &v, &found));
        ck_assert(found);
        ck_assert_uint_eq(v.len, 3);
        ck_assert_mem_eq(v.data, "v\0\xff", 3);
        CK_OK(ks_kv_store_get(f.kv, B("k"), &v, &found));
        ck_assert(!found);
        /* A value larger than a page (LMDB overflow pages). */
        size_t big_len = 300000;
        char *big      = malloc(big_len);
        for (size_t i = 0; i < big_len; i++)
                big[i] = (char)(i * 31 + 7);
        put(f.kv, B("big"), (ks_bytes_t){big, big_len});
        CK_OK(ks_kv_store_get(f.kv, B("big"), &v, &found));
        ck_assert(found);
        ck_assert_uint_eq(v.len, big_len);
        ck_assert(!memcmp(v.data, big, big_len));
        free(big);
        fx_close(&f);
}
END_TEST

static const ks_bytes_t sorted_keys[] = {
        B("a"), B("a\0"), B("a\0\0"), B("a\x01"), B("ab"),      B("abc"),
        B("b"), B("ba"),  B("c"),     B("\xff"),  B("\xff\xff")};
#define NSORTED ((int)(sizeof(sorted_keys) / sizeof(sorted_keys[0])))

static void put_sorted_keys_shuffled(ks_kv_store_t *kv) {
        int order[] = {6, 0, 10, 3, 8, 1, 5, 9, 2, 7, 4};
        for (int i = 0; i < NSORTED; i++)
                put(kv, sorted_keys[order[i]], B("v"));
}

START_TEST(range_scans) {
        fx_t f;
        ks_store_iter_t *it;
        ks_bytes_t none = {NULL, 0};
        fx_open(&f, _i);
        put_sorted_keys_shuffled(f.kv);

        /* Both ends open: every key in byte order (shorter first). */
        CK_OK(ks_kv_store_range(f.kv, none, none, &it));
        expect_keys(it, sorted_keys, NSORTED);

        /* Closed ends are inclusive; "a" < "a\0" < "a\x01" < "ab". */
        CK_OK(ks_kv_store_range(f.kv, B("a"), B("ab"), &it));
        expect_keys(it, sorted_keys, 5);
        CK_OK(ks_kv_store_range(f.kv, B("a\0"), B("a\0"), &it));
        expect_keys(it, &sorted_keys[1], 1);

        /* Open start / open end. */
        CK_OK(ks_kv_store_range(f.kv, none, B("abc"), &it));
        expect_keys(it, sorted_keys, 6);
        CK_OK(ks_kv_store_range(f.kv, B("b"), none, &it));
        expect_keys(it, &sorted_keys[6], NSORTED - 6);

        /* Bounds that are not keys. */
        CK_OK(ks_kv_store_range(f.kv, B("aa"), B("bb"), &it));
        expect_keys(it, &sorted_keys[4], 4);
        CK_OK(ks_kv_store_range(f.kv, B("aa"), B("aaz"), &it));
        expect_keys(it, NULL, 0);

        /* from > to: empty. */
        CK_OK(ks_kv_store_range(f.kv, B("c"), B("a"), &it));
        expect_keys(it, NULL, 0);
        fx_close(&f);
}
END_TEST

START_TEST(range_on_empty_store) {
        fx_t f;
        ks_store_iter_t *it;
        fx_open(&f, _i);
        CK_OK(ks_kv_store_range(f.kv, (ks_bytes_t){NULL, 0},
                                (ks_bytes_t){NULL, 0}, &it));
        expect_keys(it, NULL, 0);
        CK_OK(ks_kv_store_prefix(f.kv, B("a"), &it));
        expect_keys(it, NULL, 0);
        ck_assert_uint_eq(ks_kv_store_approximate_count(f.kv), 0);
        fx_close(&f);
}
END_TEST

START_TEST(prefix_scans) {
        fx_t f;
        ks_store_iter_t *it;
        fx_open(&f, _i);
        put_sorted_keys_shuffled(f.kv);
        CK_OK(ks_kv_store_prefix(f.kv, B("a"), &it));
        expect_keys(it, sorted_keys, 6);
        CK_OK(ks_kv_store_prefix(f.kv, B("a\0"), &it));
        expect_keys(it, &sorted_keys[1], 2);
        CK_OK(ks_kv_store_prefix(f.kv, B("ab"), &it));
        expect_keys(it, &sorted_keys[4], 2);
        CK_OK(ks_kv_store_prefix(f.kv, B("b"), &it));
        expect_keys(it, &sorted_keys[6], 2);
        /* 0xff prefixes have no "next prefix": the scan must still stop. */
        CK_OK(ks_kv_store_prefix(f.kv, B("\xff"), &it));
        expect_keys(it, &sorted_keys[9], 2);
        CK_OK(ks_kv_store_prefix(f.kv, B("z"), &it));
        expect_keys(it, NULL, 0);
        CK_OK(ks_kv_store_prefix(f.kv, B(""), &it));
        expect_keys(it, sorted_keys, NSORTED);
        fx_close(&f);
}
END_TEST

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(many_keys_in_order_and_counts) {
        fx_t f;
        enum { N = 5000 };
        static char names[N][16];
        char *sorted[N];
        fx_open(&f, _i);
        uint64_t bytes = 0;
        for (int i = 0; i < N; i++) {
                /* Insertion order unrelated to key order. */
                snprintf(names[i], sizeof(names[i]), "k%u",
                         (unsigned)(i * 2654435761u % 1000003u));
                sorted[i] = names[i];
                char val[64];
                int vlen = snprintf(val, sizeof(val), "value-%d", i);
                put(f.kv, (ks_bytes_t){names[i], strlen(names[i])},
                    (ks_bytes_t){val, (size_t)vlen});
                bytes += strlen(names[i]) + (size_t)vlen;
        }
        qsort(sorted, N, sizeof(sorted[0]), cmp_str);
        ck_assert_uint_eq(ks_kv_store_approximate_count(f.kv), N);
        /* LMDB counts pages, which hold at least the bytes stored. */
        if (_i == 1)
                ck_assert_uint_eq(ks_kv_store_approximate_size(f.kv), bytes);
        else
                ck_assert_uint_ge(ks_kv_store_approximate_size(f.kv), bytes);

        ks_store_iter_t *it;
        ks_bytes_t k, v;
        int n = 0;
        CK_OK(ks_kv_store_range(f.kv, (ks_bytes_t){NULL, 0},
                                (ks_bytes_t){NULL, 0}, &it));
        while (ks_store_iter_next(it, &k, &v)) {
                ck_assert_uint_eq(k.len, strlen(sorted[n]));
                ck_assert(!memcmp(k.data, sorted[n], k.len));
                n++;
        }
        ks_store_iter_destroy(it);
        ck_assert_int_eq(n, N);

        for (int i = 0; i < N; i += 2)
                CK_OK(ks_kv_store_delete(
                        f.kv, (ks_bytes_t){names[i], strlen(names[i])}));
        ck_assert_uint_eq(ks_kv_store_approximate_count(f.kv), N / 2);
        fx_close(&f);
}
END_TEST

START_TEST(borrowed_values_survive_reads) {
        fx_t f;
        ks_bytes_t v1, v2;
        bool found;
        fx_open(&f, _i);
        put(f.kv, B("one"), B("first value"));
        put(f.kv, B("two"), B("second value"));
        /* Valid until the next write: other reads leave it alone. */
        CK_OK(ks_kv_store_get(f.kv, B("one"), &v1, &found));
        CK_OK(ks_kv_store_get(f.kv, B("two"), &v2, &found));
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        CK_OK(ks_kv_store_prefix(f.kv, B("t"), &it));
        ck_assert(ks_store_iter_next(it, &k, &v));
        ck_assert_mem_eq(v1.data, "first value", 11);
        ck_assert_mem_eq(v2.data, "second value", 12);
        ck_assert_mem_eq(v.data, "second value", 12);
        ck_assert(!ks_store_iter_next(it, &k, &v));
        ks_store_iter_destroy(it);
        fx_close(&f);
}
END_TEST

START_TEST(writes_while_iterating) {
        fx_t f;
        char key[16];
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        fx_open(&f, _i);
        for (int i = 0; i < 20; i++) {
                snprintf(key, sizeof(key), "k%02d", i);
                put(f.kv, (ks_bytes_t){key, 3}, B("v"));
        }
        CK_OK(ks_kv_store_range(f.kv, (ks_bytes_t){NULL, 0},
                                (ks_bytes_t){NULL, 0}, &it));
        int n = 0;
        while (ks_store_iter_next(it, &k, &v)) {
                snprintf(key, sizeof(key), "k%02d", n % 100);
                ck_assert_uint_eq(k.len, 3);
                ck_assert_mem_eq(k.data, key, 3);
                /* Delete the current key, add one before it (not seen)
                 * and one after it (seen next, as "k%02d+"). */
                char cur[8];
                memcpy(cur, k.data, 3);
                CK_OK(ks_kv_store_delete(f.kv, (ks_bytes_t){cur, 3}));
                CK_OK(ks_kv_store_put(f.kv, B("a-before"), B("x")));
                if (n % 2 == 0 && n < 18) {
                        cur[3] = '+';
                        CK_OK(ks_kv_store_put(f.kv, (ks_bytes_t){cur, 4},
                                              B("y")));
                        ck_assert(ks_store_iter_next(it, &k, &v));
                        ck_assert_uint_eq(k.len, 4);
                        ck_assert_mem_eq(k.data, cur, 4);
                        ck_assert_mem_eq(v.data, "y", 1);
                }
                n++;
        }
        ck_assert_ptr_null(ks_store_iter_error(it));
        ks_store_iter_destroy(it);
        ck_assert_int_eq(n, 20);
        /* a-before and the nine "+" keys remain. */
        ck_assert_uint_eq(ks_kv_store_approximate_count(f.kv), 10);
        fx_close(&f);
}
END_TEST

START_TEST(checkpoints) {
        fx_t f;
        fx_open(&f, _i);
        ck_assert_int_eq(ks_kv_store_checkpoint(f.kv), -1);
        CK_OK(ks_kv_store_set_checkpoint(f.kv, 42));
        ck_assert_int_eq(ks_kv_store_checkpoint(f.kv), 42);
        CK_OK(ks_kv_store_set_checkpoint(f.kv, 7));
        ck_assert_int_eq(ks_kv_store_checkpoint(f.kv), 7);
        fx_close(&f);
}
END_TEST

START_TEST(names_are_checked) {
        ck_assert_ptr_null(ks_kv_store_new_memory("__reserved"));
        ck_assert_ptr_null(ks_kv_store_new_memory("counts.3"));
        ck_assert_ptr_null(ks_kv_store_new_memory(""));
        ks_kv_store_t *kv = ks_kv_store_new_memory("counts.v3");
        ck_assert_ptr_nonnull(kv);
        ks_kv_store_destroy(kv);
        ks_kv_store_destroy(NULL);

        fx_t f;
        fx_open(&f, 0);
        ks_kv_store_t *again;
        ks_window_store_t *w;
        ks_error_t *err;
        CK_OK(ks_kv_store_open(f.env, "kv", &again));
        ck_assert_ptr_eq(again, f.kv);
        err = ks_window_store_open(f.env, "kv", 100, 10, &w);
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(ks_error_code(err), KS_ERR_INVALID_ARG);
        ks_error_destroy(err);
        err = ks_kv_store_open(f.env, "w.12", &again);
        ck_assert_ptr_nonnull(err);
        ks_error_destroy(err);
        /* A persistent store belongs to its environment. */
        ks_kv_store_destroy(f.kv);
        fx_close(&f);
}
END_TEST

START_TEST(lmdb_key_size_limit) {
        fx_t f;
        char key[600];
        fx_open(&f, 0);
        memset(key, 'k', sizeof(key));
        ks_error_t *err =
                ks_kv_store_put(f.kv, (ks_bytes_t){key, sizeof(key)}, B("v"));
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(ks_error_code(err), KS_ERR_STORE);
        ck_assert_msg(
                !strncmp(ks_error_message(err), "lmdb: MDB_BAD_VALSIZE", 21),
                "%s", ks_error_message(err));
        ks_error_destroy(err);
        /* The transaction is still usable. */
        put(f.kv, (ks_bytes_t){key, 511}, B("v"));
        CK_OK(ks_state_env_commit(f.env));
        fx_close(&f);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("store_kv");
        TCase *tc = tcase_create("kv");
        /* _i: 0 = LMDB, 1 = in memory. */
        tcase_add_loop_test(tc, get_put_delete_overwrite, 0, 2);
        tcase_add_loop_test(tc, binary_keys_and_values, 0, 2);
        tcase_add_loop_test(tc, range_scans, 0, 2);
        tcase_add_loop_test(tc, range_on_empty_store, 0, 2);
        tcase_add_loop_test(tc, prefix_scans, 0, 2);
        tcase_add_loop_test(tc, many_keys_in_order_and_counts, 0, 2);
        tcase_add_loop_test(tc, borrowed_values_survive_reads, 0, 2);
        tcase_add_loop_test(tc, writes_while_iterating, 0, 2);
        tcase_add_loop_test(tc, checkpoints, 0, 2);
        tcase_add_test(tc, names_are_checked);
        tcase_add_test(tc, lmdb_key_size_limit);
        suite_add_tcase(s, tc);
        return s;
}
