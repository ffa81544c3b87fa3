/* State environments: transactions, checkpoints committed with the data,
 * the directory lock, and map growth that loses nothing. */
#include <ftw.h>
#include <kstreams/store.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ks_check.h"
#include "store_int.h"

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

static char dir[64];

static void setup(void) {
        strcpy(dir, "/tmp/ks_store_env_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static ks_state_env_t *env_open(size_t map_size) {
        ks_state_env_t *env;
        CK_OK(ks_state_env_open(dir, map_size, &env));
        return env;
}

static void expect_value(ks_kv_store_t *kv, ks_bytes_t key, const char *want) {
        ks_bytes_t v;
        bool found;
        CK_OK(ks_kv_store_get(kv, key, &v, &found));
        if (!want) {
                ck_assert_msg(!found, "key %.*s should be absent", (int)key.len,
                              (const char *)key.data);
                return;
        }
        ck_assert_msg(found, "key %.*s should be present", (int)key.len,
                      (const char *)key.data);
        ck_assert_uint_eq(v.len, strlen(want));
        ck_assert_mem_eq(v.data, want, v.len);
}

START_TEST(commit_makes_data_and_checkpoint_durable) {
        ks_state_env_t *env = env_open(0);
        ks_kv_store_t *kv;
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        CK_OK(ks_kv_store_put(kv, B("a"), B("1")));
        CK_OK(ks_kv_store_set_checkpoint(kv, 100));
        CK_OK(ks_state_env_commit(env));
        ks_state_env_close(env);

        env = env_open(0);
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        expect_value(kv, B("a"), "1");
        ck_assert_int_eq(ks_kv_store_checkpoint(kv), 100);
        ks_state_env_close(env);
}
END_TEST

START_TEST(abort_drops_data_and_checkpoint_together) {
        ks_state_env_t *env = env_open(0);
        ks_kv_store_t *kv, *other;
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        CK_OK(ks_kv_store_open(env, "other", &other));
        CK_OK(ks_kv_store_put(kv, B("a"), B("1")));
        CK_OK(ks_kv_store_set_checkpoint(kv, 10));
        CK_OK(ks_state_env_commit(env));

        CK_OK(ks_kv_store_put(kv, B("a"), B("2")));
        CK_OK(ks_kv_store_put(kv, B("b"), B("new")));
        CK_OK(ks_kv_store_put(other, B("x"), B("y")));
        CK_OK(ks_kv_store_set_checkpoint(kv, 20));
        CK_OK(ks_kv_store_set_checkpoint(other, 5));
        /* Reads in the transaction see its writes. */
        expect_value(kv, B("a"), "2");
        expect_value(kv, B("b"), "new");
        ck_assert_int_eq(ks_kv_store_checkpoint(kv), 20);
        ck_assert_uint_eq(ks_kv_store_approximate_count(kv), 2);

        ks_state_env_abort(env);
        expect_value(kv, B("a"), "1");
        expect_value(kv, B("b"), NULL);
        expect_value(other, B("x"), NULL);
        ck_assert_int_eq(ks_kv_store_checkpoint(kv), 10);
        ck_assert_int_eq(ks_kv_store_checkpoint(other), -1);

        /* Close without commit is an abort as well. */
        CK_OK(ks_kv_store_put(kv, B("c"), B("lost")));
        CK_OK(ks_kv_store_set_checkpoint(kv, 30));
        ks_state_env_close(env);
        env = env_open(0);
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        expect_value(kv, B("a"), "1");
        expect_value(kv, B("c"), NULL);
        ck_assert_int_eq(ks_kv_store_checkpoint(kv), 10);
        ks_state_env_close(env);
}
END_TEST

START_TEST(empty_commit_and_abort) {
        ks_state_env_t *env = env_open(0);
        CK_OK(ks_state_env_commit(env));
        ks_state_env_abort(env);
        ck_assert_uint_eq(ks_state_env_map_size(env), (size_t)64 << 20);
        ks_state_env_close(env);
        ks_state_env_close(NULL);
        ks_state_env_abort(NULL);
}
END_TEST

START_TEST(iterator_survives_commit) {
        ks_state_env_t *env = env_open(0);
        ks_kv_store_t *kv;
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        CK_OK(ks_kv_store_open(env, "kv", &kv));
        CK_OK(ks_kv_store_put(kv, B("1"), B("a")));
        CK_OK(ks_kv_store_put(kv, B("2"), B("b")));
        CK_OK(ks_kv_store_put(kv, B("3"), B("c")));
        CK_OK(ks_kv_store_range(kv, (ks_bytes_t){NULL, 0},
                                (ks_bytes_t){NULL, 0}, &it));
        ck_assert(ks_store_iter_next(it, &k, &v));
        ck_assert_mem_eq(k.data, "1", 1);
        CK_OK(ks_state_env_commit(env));
        ck_assert(ks_store_iter_next(it, &k, &v));
        ck_assert_mem_eq(k.data, "2", 1);
        ks_state_env_abort(env);
        ck_assert(ks_store_iter_next(it, &k, &v));
        ck_assert_mem_eq(k.data, "3", 1);
        ck_assert(!ks_store_iter_next(it, &k, &v));
        ck_assert_ptr_null(ks_store_iter_error(it));
        ks_store_iter_destroy(it);

        /* An iterator outliving its environment ends with an error. */
        CK_OK(ks_kv_store_prefix(kv, B(""), &it));
        ks_state_env_close(env);
        ck_assert(!ks_store_iter_next(it, &k, &v));
        ck_assert_ptr_nonnull(ks_store_iter_error(it));
        ck_assert_int_eq(ks_error_code(ks_store_iter_error(it)), KS_ERR_STATE);
        ks_store_iter_destroy(it);
}
END_TEST

static void expect_locked(ks_error_t *err, pid_t holder) {
        char want[64];
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(ks_error_code(err), KS_ERR_STATE);
        snprintf(want, sizeof(want), "is locked by pid %ld", (long)holder);
        ck_assert_msg(strstr(ks_error_message(err), want), "%s",
                      ks_error_message(err));
        ck_assert_msg(strstr(ks_error_message(err), dir), "%s",
                      ks_error_message(err));
        ks_error_destroy(err);
}

START_TEST(lock_in_same_process) {
        ks_state_env_t *env = env_open(0), *second = NULL;
        expect_locked(ks_state_env_open(dir, 0, &second), getpid());
        ck_assert_ptr_null(second);
        ks_state_env_close(env);
        /* Released on close. */
        env = env_open(0);
        ks_state_env_close(env);
}
END_TEST

START_TEST(lock_across_processes) {
        ks_state_env_t *env = env_open(0);
        pid_t child         = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                ks_state_env_t *second = NULL;
                ks_error_t *err        = ks_state_env_open(dir, 0, &second);
                char want[64];
                snprintf(want, sizeof(want), "locked by pid %ld",
                         (long)getppid());
                int ok = err && ks_error_code(err) == KS_ERR_STATE &&
                         strstr(ks_error_message(err), want) && !second;
                _exit(ok ? 0 : 1);
        }
        int status;
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ks_state_env_close(env);
}
END_TEST

START_TEST(lock_released_when_holder_dies) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                ks_state_env_t *env;
                ks_error_t *err = ks_state_env_open(dir, 0, &env);
                char c          = err ? 'E' : 'K';
                if (write(fds[1], &c, 1) != 1)
                        _exit(2);
                pause();
                _exit(0);
        }
        char c = 0;
        ck_assert_int_eq(read(fds[0], &c, 1), 1);
        ck_assert_int_eq(c, 'K');
        ks_state_env_t *env = NULL;
        expect_locked(ks_state_env_open(dir, 0, &env), child);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        env = env_open(0);
        ks_state_env_close(env);
        close(fds[0]);
        close(fds[1]);
}
END_TEST

START_TEST(open_fails_on_a_file) {
        char path[128];
        ks_state_env_t *env = NULL;
        snprintf(path, sizeof(path), "%s/file", dir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
        ks_error_t *err = ks_state_env_open(path, 0, &env);
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(ks_error_code(err), KS_ERR_IO);
        ck_assert_ptr_null(env);
        ks_error_destroy(err);
        /* Nested directories are created. */
        snprintf(path, sizeof(path), "%s/app/0_1", dir);
        CK_OK(ks_state_env_open(path, 0, &env));
        ks_state_env_close(env);
}
END_TEST

/* ---- map growth -------------------------------------------------------- */

#define VALUE_LEN 2000

static void fill_value(char *buf, int i) {
        for (int j = 0; j < VALUE_LEN; j++)
                buf[j] = (char)('a' + (i * 7 + j) % 26);
        snprintf(buf, 16, "%d:", i);
}

static void put_range(ks_kv_store_t *kv, int from, int to) {
        char key[16], val[VALUE_LEN];
        for (int i = from; i < to; i++) {
                int klen = snprintf(key, sizeof(key), "key%08d", i);
                fill_value(val, i);
                CK_OK(ks_kv_store_put(kv, (ks_bytes_t){key, (size_t)klen},
                                      (ks_bytes_t){val, VALUE_LEN}));
        }
}

static void check_range(ks_kv_store_t *kv, int from, int to) {
        char key[16], val[VALUE_LEN];
        for (int i = from; i < to; i++) {
                int klen = snprintf(key, sizeof(key), "key%08d", i);
                ks_bytes_t v;
                bool found;
                fill_value(val, i);
                CK_OK(ks_kv_store_get(kv, (ks_bytes_t){key, (size_t)klen}, &v,
                                      &found));
                ck_assert_msg(found, "key %d lost", i);
                ck_assert_uint_eq(v.len, VALUE_LEN);
                ck_assert_msg(!memcmp(v.data, val, VALUE_LEN),
                              "key %d has the wrong value", i);
        }
        ck_assert_uint_eq(ks_kv_store_approximate_count(kv),
                          (uint64_t)(to - from));
}

/* 50 MiB in one transaction through a 1 MiB map; window puts in the same
 * transaction create and drop segment DBs, whose handles replay must
 * reopen. */
START_TEST(map_grows_within_a_transaction) {
        enum { N = 25 * 1024 }; /* 25,600 x 2 KB = 50 MiB */
        ks_state_env_t *env = env_open(1 << 20);
        ks_kv_store_t *kv;
        ks_window_store_t *w;
        CK_OK(ks_kv_store_open(env, "big", &kv));
        CK_OK(ks_window_store_open(env, "w", 1000, 100, &w));
        CK_OK(ks_kv_store_set_checkpoint(kv, 1));
        char key[16], val[VALUE_LEN];
        for (int i = 0; i < N; i++) {
                int klen = snprintf(key, sizeof(key), "key%08d", i);
                fill_value(val, i);
                CK_OK(ks_kv_store_put(kv, (ks_bytes_t){key, (size_t)klen},
                                      (ks_bytes_t){val, VALUE_LEN}));
                if (i % 10 == 0)
                        CK_OK(ks_window_store_put(w, B("wk"), i / 10,
                                                  (ks_bytes_t){val, 100}));
        }
        ck_assert_uint_gt(ks__env_replays(env), 0);
        ck_assert_uint_ge(ks_state_env_map_size(env), (size_t)50 << 20);
        check_range(kv, 0, N);
        CK_OK(ks_kv_store_set_checkpoint(kv, 2));
        CK_OK(ks_state_env_commit(env));
        ks_state_env_close(env);

        env = env_open(1 << 20);
        CK_OK(ks_kv_store_open(env, "big", &kv));
        CK_OK(ks_window_store_open(env, "w", 1000, 100, &w));
        check_range(kv, 0, N);
        ck_assert_int_eq(ks_kv_store_checkpoint(kv), 2);
        /* Windows 1560..2559 are live: newest start 2559, retention 1000. */
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        int64_t start, expect = 1560;
        CK_OK(ks_window_store_fetch_all(w, 0, INT64_MAX, &it));
        while (ks_store_iter_next_window(it, &k, &start, &v))
                ck_assert_int_eq(start, expect++);
        ck_assert_ptr_null(ks_store_iter_error(it));
        ks_store_iter_destroy(it);
        ck_assert_int_eq(expect, 2560);
        uint64_t segments, entries;
        CK_OK(ks__segstore_count(ks__window_store_segments(w), &segments,
                                 &entries));
        ck_assert_uint_eq(segments, 11); /* 15 .. 25 */
        ks_state_env_close(env);
}
END_TEST

START_TEST(map_grows_across_transactions) {
        enum { N = 5 * 1024, TXNS = 5 }; /* 5 x 10 MiB */
        ks_state_env_t *env = env_open(1 << 20);
        ks_kv_store_t *kv;
        CK_OK(ks_kv_store_open(env, "big", &kv));
        for (int t = 0; t < TXNS; t++) {
                put_range(kv, t * N, (t + 1) * N);
                CK_OK(ks_kv_store_set_checkpoint(kv, t));
                CK_OK(ks_state_env_commit(env));
        }
        /* One more that is aborted after growing: nothing of it stays. */
        put_range(kv, TXNS * N, (TXNS + 2) * N);
        ks_state_env_abort(env);
        ks_state_env_close(env);

        env = env_open(1 << 20);
        CK_OK(ks_kv_store_open(env, "big", &kv));
        check_range(kv, 0, TXNS * N);
        ck_assert_int_eq(ks_kv_store_checkpoint(kv), TXNS - 1);
        ks_state_env_close(env);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("store_env");
        TCase *tc = tcase_create("env");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, commit_makes_data_and_checkpoint_durable);
        tcase_add_test(tc, abort_drops_data_and_checkpoint_together);
        tcase_add_test(tc, empty_commit_and_abort);
        tcase_add_test(tc, iterator_survives_commit);
        tcase_add_test(tc, lock_in_same_process);
        tcase_add_test(tc, lock_across_processes);
        tcase_add_test(tc, lock_released_when_holder_dies);
        tcase_add_test(tc, open_fails_on_a_file);
        tcase_add_test(tc, map_grows_within_a_transaction);
        tcase_add_test(tc, map_grows_across_transactions);
        suite_add_tcase(s, tc);
        return s;
}
