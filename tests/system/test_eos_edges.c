/* Two promises of the README's exactly-once section, on the real broker:
 * - a record that can never be delivered (larger than the output topic's
 *   max.message.bytes) aborts its transaction whatever the production
 *   handler says, is tried again a bounded number of times, and then stops
 *   the thread, with nothing of the aborted transactions visible;
 * - static membership: an instance SIGKILLed and started again within its
 *   session timeout takes its partitions back without a rebalance of the
 *   others (and, as a control, without a static id it causes one). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

static const char *bootstrap;
static char in[160], out[160], app_id[160], log_path[200];

static void setup(void) {
        bootstrap = ks_test_require_service("KS_BOOTSTRAP");
}

static void names(const char *prefix) {
        const char *u = kt_unique(prefix);
        snprintf(app_id, sizeof(app_id), "%s", u);
        snprintf(in, sizeof(in), "%s-in", u);
        snprintf(out, sizeof(out), "%s-out", u);
        snprintf(log_path, sizeof(log_path), "%s/%s.log", KS_BINARY_DIR, u);
}

/* The value of " <name>=" in the last line of @p log that has it. */
static long last_in_log(const char *log, const char *name) {
        FILE *f = fopen(log, "r");
        char line[1024], pat[64];
        long v = -1;
        snprintf(pat, sizeof(pat), " %s=", name);
        while (f && fgets(line, sizeof(line), f)) {
                char *p = strstr(line, pat);
                if (p)
                        v = atol(p + strlen(pat));
        }
        if (f)
                fclose(f);
        return v;
}

/* ---- an undeliverable record ------------------------------------------- */

/* Ids 0..@p last, without @p skip (-1: none), each exactly once in
 * @p recs (values {"id":i,...}). */
static void check_ids(const kt_record_t *recs, size_t cnt, int last, int skip) {
        ck_assert_int_eq((int)cnt, last + 1 - (skip >= 0));
        int *seen = calloc((size_t)last + 1, sizeof(*seen));
        for (size_t i = 0; i < cnt; i++) {
                const char *p = strstr(recs[i].value, "\"id\":");
                ck_assert_ptr_nonnull(p);
                int id = atoi(p + 5);
                ck_assert_msg(id >= 0 && id <= last && id != skip && !seen[id],
                              "unexpected or repeated id %d", id);
                seen[id] = 1;
        }
        free(seen);
}

static pid_t start_filter(const char *guarantee, const char *dir) {
        const char *args[] = {"--bootstrap",
                              bootstrap,
                              "--app-id",
                              app_id,
                              "--input",
                              in,
                              "--output",
                              out,
                              "--mode",
                              "filter",
                              "--guarantee",
                              guarantee,
                              "--state-dir",
                              dir,
                              "--commit-ms",
                              "100",
                              "--conf",
                              "default.production.exception.handler="
                              "log-and-continue",
                              NULL};
        return kt_spawn_app(log_path, args);
}

/* 100 records; then one of 100 KB, which the output topic refuses (its
 * max.message.bytes is 64 KB, for a whole batch: the small records are
 * far below it); 2 s later, 20 more, all in one partition. */
#define POISON_BYTES 100000
static void feed_poison(void) {
        kt_produce(bootstrap, in, 0, 100, "k", 1, "{\"id\":%d}");
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, 100, 60000, &recs);
        kt_records_free(recs, n);
        ck_assert_int_eq((int)n, 100);
        char *big = malloc(POISON_BYTES + 64);
        int len   = snprintf(big, 64, "{\"id\":100,\"pad\":\"");
        memset(big + len, 'x', POISON_BYTES);
        strcpy(big + len + POISON_BYTES, "\"}");
        kt_produce_raw(bootstrap, in, "k0", big, strlen(big));
        free(big);
        kt_sleep_ms(2000);
        kt_produce(bootstrap, in, 101, 20, "k", 1, "{\"id\":%d}");
}

static void poison_topics(void) {
        static const char *const small[] = {"max.message.bytes", "65536", NULL};
        kt_create_topic(bootstrap, in, 1);
        kt_create_topic_config(bootstrap, out, 1, small, true);
}

START_TEST(an_undeliverable_record_stops_the_thread_after_bounded_aborts) {
        if (!bootstrap)
                return;
        names("eos-poison");
        poison_topics();
        char dir[] = "/tmp/ks-eosp-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        pid_t a = start_filter("exactly_once_v2", dir);
        feed_poison();
        int st      = 0;
        bool exited = false;
        for (int i = 0; i < 600 && !exited; i++) {
                exited = waitpid(a, &st, WNOHANG) == a;
                if (!exited)
                        kt_sleep_ms(100);
        }
        if (!exited)
                kt_stop(a, SIGKILL, 1000);
        ck_assert_msg(exited, "still running 60 s after the poison (see %s)",
                      log_path);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1,
                      "the instance should end in ERROR (see %s)", log_path);
        ck_assert_int_ge(kt_log_count(log_path,
                                      "aborted on records that "
                                      "cannot be delivered"),
                         1);
        long aborted = last_in_log(log_path, "txn_aborted");
        fprintf(stderr, "poison: %ld transactions aborted before the stop\n",
                aborted);
        ck_assert_int_eq(aborted, 6); /* the first try and 5 more */
        /* Read committed: the 100 before it, once; none of the aborted. */
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, 121, 5000, &recs);
        check_ids(recs, n, 99, -1);
        kt_records_free(recs, n);
        kt_rm_rf(dir);
}
END_TEST

/* The control: at-least-once follows the handler, which skips it (and,
 * librdkafka not splitting a refused batch, any record batched with it:
 * hence the 2 s before the next ones). */
START_TEST(at_least_once_skips_it_as_the_handler_says) {
        if (!bootstrap)
                return;
        names("alos-poison");
        poison_topics();
        char dir[] = "/tmp/ks-eosp-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        pid_t a = start_filter("at_least_once", dir);
        feed_poison();
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, 120, 60000, &recs);
        check_ids(recs, n, 120, 100);
        kt_records_free(recs, n);
        int st = kt_stop(a, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        kt_rm_rf(dir);
}
END_TEST

/* ---- static membership ------------------------------------------------- */

#define RUNNING "ks_test_app: state REBALANCING -> RUNNING"

static pid_t start_member(const char *log, const char *dir, const char *id) {
        const char *args[24] = {"--bootstrap",  bootstrap,     "--app-id",
                                app_id,         "--input",     in,
                                "--output",     out,           "--mode",
                                "filter",       "--state-dir", dir,
                                "--session-ms", "20000"};
        int n                = 14;
        if (id) {
                args[n++] = "--static-id";
                args[n++] = id;
        }
        args[n] = NULL;
        return kt_spawn_app(log, args);
}

/* Waits for @p log to have more than @p had RUNNING lines. */
static void await_running(const char *log, int had) {
        for (int i = 0; i < 600 && kt_log_count(log, RUNNING) <= had; i++)
                kt_sleep_ms(100);
        ck_assert_msg(kt_log_count(log, RUNNING) > had, "not RUNNING (see %s)",
                      log);
}

#define ASSIGNED "thread 0: assigned"

/* A and B share 6 partitions (B first: it leads the group); A is killed
 * and started again at once. @returns how many assignments B went through
 * from then on (counted from its log). */
static int restart_one(bool static_ids) {
        names(static_ids ? "static" : "dynamic");
        kt_create_topic(bootstrap, in, 6);
        kt_create_topic(bootstrap, out, 1);
        char log_b[220], da[] = "/tmp/ks-stat-XXXXXX",
                         db[] = "/tmp/ks-stat-XXXXXX";
        snprintf(log_b, sizeof(log_b), "%s.b", log_path);
        ck_assert_ptr_nonnull(mkdtemp(da));
        ck_assert_ptr_nonnull(mkdtemp(db));
        pid_t b = start_member(log_b, db, static_ids ? "b" : NULL);
        await_running(log_b, 0);
        pid_t a = start_member(log_path, da, static_ids ? "a" : NULL);
        await_running(log_path, 0);
        kt_produce(bootstrap, in, 0, 600, "k", 60, "{\"id\":%d}");
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, 600, 60000, &recs);
        kt_records_free(recs, n);
        ck_assert_int_eq((int)n, 600);
        kt_sleep_ms(3000); /* the group is settled */
        int before = kt_log_count(log_b, ASSIGNED);
        ck_assert_int_ge(before, 2); /* its own join and A's */
        kt_stop(a, SIGKILL, 1000);
        a = start_member(log_path, da, static_ids ? "a" : NULL);
        await_running(log_path, 1);
        /* Both process again: every record arrives (at least once). */
        kt_produce(bootstrap, in, 600, 600, "k", 60, "{\"id\":%d}");
        n = kt_consume_all(bootstrap, out, 1200, 60000, &recs);
        kt_records_free(recs, n);
        ck_assert_int_ge((int)n, 1200);
        int after = kt_log_count(log_b, ASSIGNED);
        int sa = kt_stop(a, SIGTERM, 30000), sb = kt_stop(b, SIGTERM, 30000);
        ck_assert(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
        ck_assert(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
        kt_rm_rf(da);
        kt_rm_rf(db);
        return after - before;
}

START_TEST(a_static_member_restarted_within_its_session_causes_no_rebalance) {
        if (!bootstrap)
                return;
        int b = restart_one(true);
        fprintf(stderr, "static ids: the restart cost B %d assignments\n", b);
        ck_assert_int_eq(b, 0);
}
END_TEST

START_TEST(without_a_static_id_the_restart_rebalances_the_others) {
        if (!bootstrap)
                return;
        int b = restart_one(false);
        fprintf(stderr, "dynamic ids: the restart cost B %d assignments\n", b);
        ck_assert_int_gt(b, 0);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test) {
        TCase *tc = tcase_create(name);
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 200);
        tcase_add_test(tc, test);
        suite_add_tcase(s, tc);
}

Suite *ks_test_suite(void) {
        Suite *s = suite_create("eos_edges");
        add_case(s, "poison",
                 an_undeliverable_record_stops_the_thread_after_bounded_aborts);
        add_case(s, "poison_alos", at_least_once_skips_it_as_the_handler_says);
        add_case(
                s, "static",
                a_static_member_restarted_within_its_session_causes_no_rebalance);
        add_case(s, "dynamic",
                 without_a_static_id_the_restart_rebalances_the_others);
        return s;
}
