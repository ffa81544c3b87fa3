/* Stateful processing on the real broker: a count per key survives a
 * SIGKILL (the store restores from its LMDB checkpoint plus the changelog's
 * tail) and a second instance taking tasks over (their stores rebuilt from
 * the changelog on the new owner), with exact final counts. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_driver_util.h"
#include "ks_kafka.h"

#define KEYS 50

static const char *bootstrap;
static char in[160], out[160], app_id[160], log_path[200];

static void setup(void) {
        bootstrap = ks_test_require_service("KS_BOOTSTRAP");
}

static pid_t start(const char *state_dir) {
        const char *args[] = {"--bootstrap", bootstrap,     "--app-id",
                              app_id,        "--input",     in,
                              "--output",    out,           "--mode",
                              "count",       "--state-dir", state_dir,
                              "--commit-ms", "200",         NULL};
        return kt_spawn_app(log_path, args);
}

/* Waits (90 s at most) until the latest count of every key is @p want,
 * failing the test with the counts it saw. The record cache sends one
 * update per key and commit, so how many updates that takes varies.
 * @returns the number of updates read. */
static size_t expect_counts(int64_t want) {
        int64_t counts[KEYS];
        size_t n = kt_await_counts(bootstrap, out, KEYS, want, 90000, counts);
        int off  = 0;
        for (int k = 0; k < KEYS; k++)
                off += counts[k] != want;
        ck_assert_msg(n > 0, "after 90 s %d keys were not at %lld (k0 at %lld)",
                      off, (long long)want, (long long)counts[0]);
        return n;
}

/* The "restored=N" an instance printed when it stopped. */
static long restored_in_log(int nth) {
        FILE *f = fopen(log_path, "r");
        char line[1024];
        long val = -1;
        int seen = 0;
        while (f && fgets(line, sizeof(line), f)) {
                char *p = strstr(line, "restored=");
                if (p && seen++ == nth)
                        val = atol(p + 9);
        }
        if (f)
                fclose(f);
        return val;
}

static void names(const char *prefix) {
        const char *u = kt_unique(prefix);
        snprintf(app_id, sizeof(app_id), "%s", u);
        snprintf(in, sizeof(in), "%s-in", u);
        snprintf(out, sizeof(out), "%s-out", u);
        snprintf(log_path, sizeof(log_path), "%s/%s.log", KS_BINARY_DIR, u);
        kt_create_topic(bootstrap, in, 4);
        kt_create_topic(bootstrap, out, 4);
}

START_TEST(sigkill_then_restart_restores_from_checkpoint_and_tail) {
        if (!bootstrap)
                return;
        names("state-kill");
        char dir[] = "/tmp/ks-state-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        kt_produce(bootstrap, in, 0, 4000, "k", KEYS, "{\"id\":%d}");
        pid_t a = start(dir);
        /* 80 updates per key, collapsed by the record cache: the 4000
         * records were there before the start, so few commits saw them. */
        size_t updates = expect_counts(80);
        fprintf(stderr, "4000 records became %zu count updates\n", updates);
        ck_assert_uint_lt(updates, 2000);
        sleep(2); /* a commit (every 200 ms) covers everything */
        kt_stop(a, SIGKILL, 1000);

        a = start(dir);
        kt_produce(bootstrap, in, 4000, 2000, "k", KEYS, "{\"id\":%d}");
        /* No update lost: 120 per key, counting on from the restored 80. */
        expect_counts(120);
        int st = kt_stop(a, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* The LMDB checkpoint was current: restoration replayed only the
         * changelog's tail. */
        long restored = restored_in_log(0);
        fprintf(stderr,
                "restart after SIGKILL replayed %ld changelog records\n",
                restored);
        ck_assert_int_ge(restored, 0);
        ck_assert_int_lt(restored, 400);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(a_second_instance_rebuilds_moved_stores_from_the_changelog) {
        if (!bootstrap)
                return;
        names("state-move");
        char d1[] = "/tmp/ks-state-XXXXXX", d2[] = "/tmp/ks-state-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(d1));
        ck_assert_ptr_nonnull(mkdtemp(d2));
        kt_produce(bootstrap, in, 0, 3000, "k", KEYS, "{\"id\":%d}");
        pid_t a = start(d1);
        expect_counts(60);
        /* B joins with an empty state directory: the tasks it takes are
         * rebuilt from their changelogs before it processes anything. */
        pid_t b = start(d2);
        sleep(8);
        kt_produce(bootstrap, in, 3000, 3000, "k", KEYS, "{\"id\":%d}");
        expect_counts(120);
        int sb = kt_stop(b, SIGTERM, 30000);
        int sa = kt_stop(a, SIGTERM, 30000);
        ck_assert(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
        ck_assert(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
        /* B printed its line first (stopped first). */
        long restored = restored_in_log(0);
        fprintf(stderr, "the new instance restored %ld changelog records\n",
                restored);
        ck_assert_int_gt(restored, 0);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s %s", d1, d2);
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("state");
        TCase *tc = tcase_create("state");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 280);
        tcase_add_test(tc,
                       sigkill_then_restart_restores_from_checkpoint_and_tail);
        tcase_add_test(
                tc, a_second_instance_rebuilds_moved_stores_from_the_changelog);
        suite_add_tcase(s, tc);
        return s;
}
