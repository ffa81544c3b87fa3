/* Old task state is removed after state.cleanup.delay.ms; state in use
 * (locked) and recent state are kept. */
#include <kstreams/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include "ks_check.h"
#include "streams_int.h"

static char root[64];

static void make_task_dir(const char *name,
                          bool hold,
                          ks_state_env_t **envp,
                          int64_t age_ms) {
        char dir[200];
        snprintf(dir, sizeof(dir), "%s/%s", root, name);
        ks_state_env_t *env;
        ck_assert_ptr_null(ks_state_env_open(dir, 0, &env));
        ks_kv_store_t *kv;
        ck_assert_ptr_null(ks_kv_store_open(env, "s", &kv));
        ck_assert_ptr_null(ks_kv_store_put(kv, (ks_bytes_t){"k", 1},
                                           (ks_bytes_t){"v", 1}));
        ck_assert_ptr_null(ks_state_env_commit(env));
        if (hold) {
                *envp = env;
        } else {
                ks_state_env_close(env);
                *envp = NULL;
        }
        /* Age every file of the directory. */
        const char *files[] = {"data.mdb", "lock.mdb", "LOCK"};
        for (int i = 0; i < 3; i++) {
                char path[300];
                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                struct utimbuf t = {time(NULL) - age_ms / 1000,
                                    time(NULL) - age_ms / 1000};
                utime(path, &t);
        }
}

static bool exists(const char *name) {
        char dir[200];
        struct stat st;
        snprintf(dir, sizeof(dir), "%s/%s", root, name);
        return stat(dir, &st) == 0;
}

START_TEST(old_unlocked_task_state_goes_and_the_rest_stays) {
        snprintf(root, sizeof(root), "/tmp/ks-cleanup-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(root));
        ks_state_env_t *held, *none;
        make_task_dir("0_0", false, &none, 3600 * 1000); /* old, free */
        make_task_dir("0_1", true, &held, 3600 * 1000);  /* old, in use */
        make_task_dir("0_2", false, &none, 10 * 1000);   /* recent */
        mkdir(root, 0755);
        char other[200];
        snprintf(other, sizeof(other), "%s/not-a-task", root);
        mkdir(other, 0755);
        int removed = ks__state_cleanup(root, 600000, ks_now_ms());
        ck_assert_int_eq(removed, 1);
        ck_assert(!exists("0_0"));
        ck_assert(exists("0_1"));
        ck_assert(exists("0_2"));
        ck_assert(exists("not-a-task"));
        ks_state_env_close(held);
        /* Released, it goes at the next pass. */
        ck_assert_int_eq(ks__state_cleanup(root, 600000, ks_now_ms()), 1);
        ck_assert(!exists("0_1"));
        ck_assert_int_eq(ks__state_cleanup("/nonexistent/dir", 1, 0), 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("state-cleanup");
        TCase *tc = tcase_create("cleanup");
        tcase_add_test(tc, old_unlocked_task_state_goes_and_the_rest_stays);
        suite_add_tcase(s, tc);
        return s;
}
