/* Stateful processing on the real broker: a count per key survives a
 * SIGKILL in the middle of processing (the store restores from its LMDB
 * checkpoint plus the changelog's committed tail, and what the killed run
 * wrote after its last commit is undone) with exact final counts; a window
 * closed before a SIGKILL stays closed after it; a second instance taking
 * tasks over rebuilds their stores from the changelog. */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
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

static pid_t start_cached(const char *state_dir, const char *cache_bytes) {
        const char *args[] = {"--bootstrap", bootstrap,     "--app-id",
                              app_id,        "--input",     in,
                              "--output",    out,           "--mode",
                              "count",       "--state-dir", state_dir,
                              "--commit-ms", "200",         "--cache-bytes",
                              cache_bytes,   NULL};
        return kt_spawn_app(log_path, args);
}

static pid_t start(const char *state_dir) {
        return start_cached(state_dir, "10485760");
}

/* The value of "<name>=" in the @p nth exit line the instances printed
 * (from 0; -1: the last). -1 if there is none. */
static long value_in_log(const char *name, int nth) {
        FILE *f = fopen(log_path, "r");
        char line[1024], pat[64];
        long val = -1;
        int seen = 0;
        snprintf(pat, sizeof(pat), " %s=", name);
        while (f && fgets(line, sizeof(line), f)) {
                char *p = strstr(line, pat);
                if (p && (nth < 0 || seen++ == nth))
                        val = atol(p + strlen(pat));
        }
        if (f)
                fclose(f);
        return val;
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

static void names(const char *prefix) {
        const char *u = kt_unique(prefix);
        snprintf(app_id, sizeof(app_id), "%s", u);
        snprintf(in, sizeof(in), "%s-in", u);
        snprintf(out, sizeof(out), "%s-out", u);
        snprintf(log_path, sizeof(log_path), "%s/%s.log", KS_BINARY_DIR, u);
        kt_create_topic(bootstrap, in, 4);
        kt_create_topic(bootstrap, out, 4);
}

/* Produces records from..from+n in chunks of 200, 20 ms apart, counting
 * progress in *done: about 5 s for 20000. */
typedef struct feeder_s {
        int from, n;
        atomic_int done;
} feeder_t;

static void *feed(void *arg) {
        feeder_t *f = arg;
        for (int i = 0; i < f->n; i += 200) {
                int chunk = f->n - i < 200 ? f->n - i : 200;
                kt_produce(bootstrap, in, f->from + i, chunk, "k", KEYS,
                           "{\"id\":%d}");
                atomic_store(&f->done, i + chunk);
                usleep(20 * 1000);
        }
        return NULL;
}

START_TEST(sigkill_in_flight_loses_nothing_and_counts_exactly) {
        if (!bootstrap)
                return;
        names("state-kill");
        char dir[] = "/tmp/ks-state-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        enum { TOTAL = 40000 };
        /* No record cache: every update goes to the changelog as it is
         * made, so the kill leaves changelog records no commit covers. */
        pid_t a    = start_cached(dir, "0");
        feeder_t f = {0, TOTAL, 0};
        pthread_t feeder;
        ck_assert_int_eq(pthread_create(&feeder, NULL, feed, &f), 0);
        /* SIGKILL while records are produced and processed, once more
         * input came and more output flowed. The kill was in flight when
         * the restarted instance found its changelog past its LMDB
         * checkpoint: with records of the last commit (killed between the
         * offset commit and the LMDB one: replayed) or with records no
         * commit covers (undone), or both. A kill that hit an idle,
         * committed moment is repeated, up to 4 kills. */
        int kills = 0, at = 0;
        bool in_flight = false;
        while (!in_flight && kills < 4) {
                /* Busy: more output, and more input while there is more
                 * to come (then the backlog keeps it busy). 60 s at most. */
                int from     = atomic_load(&f.done);
                int64_t out0 = kt_topic_records(bootstrap, out, 4);
                bool busy    = false;
                for (int w = 0; w < 600 && !busy; w++) {
                        int done = atomic_load(&f.done);
                        busy = (done >= TOTAL || done >= from + TOTAL / 10) &&
                               kt_topic_records(bootstrap, out, 4) > out0;
                        if (!busy)
                                usleep(100 * 1000);
                }
                at = atomic_load(&f.done);
                if (!busy)
                        break;
                kt_stop(a, SIGKILL, 1000);
                kills++;
                a = start_cached(dir, "0");
                for (int w = 0;
                     w < 300 &&
                     kt_log_count(log_path, "thread 0: assigned") < kills + 1;
                     w++)
                        usleep(100 * 1000);
                in_flight = kt_log_count(log_path, "restoring store") +
                                    kt_log_count(log_path,
                                                 "written after the last "
                                                 "commit") >
                            0;
                fprintf(stderr,
                        "SIGKILL %d after %d of %d records were produced: "
                        "%s\n",
                        kills, at, TOTAL,
                        in_flight ? "in flight" : "at a committed moment");
        }
        ck_assert_msg(in_flight,
                      "%d kills, none in flight (the last after %d of %d "
                      "records)",
                      kills, at, TOTAL);
        pthread_join(feeder, NULL);
        /* Every record counted once in the state: replayed input is not
         * counted on top of changelog records of the run that crashed. */
        expect_counts(TOTAL / KEYS);
        int st = kt_stop(a, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        long restored = value_in_log("restored", 0),
             undone   = value_in_log("undone", -1);
        fprintf(stderr,
                "the last restart replayed %ld changelog records and undid "
                "%ld written after the last commit\n",
                restored, undone);
        /* The LMDB checkpoint was recent: only the tail was replayed. */
        ck_assert_int_ge(restored, 0);
        ck_assert_int_lt(restored, TOTAL / 4);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Output records of the window-final mode: "<key>@<start>" -> count. */
static int finals_of(const kt_record_t *recs,
                     size_t n,
                     const char *key,
                     const char **value) {
        int seen = 0;
        for (size_t i = 0; i < n; i++)
                if (recs[i].key && !strcmp(recs[i].key, key)) {
                        seen++;
                        *value = recs[i].value;
                }
        return seen;
}

/* Key "k" with event time @p ts (the window-final mode's "ts" field). */
static void produce_at(int64_t ts) {
        char v[64];
        int len = snprintf(v, sizeof(v), "{\"ts\":%lld}", (long long)ts);
        kt_produce_raw(bootstrap, in, "k", v, (size_t)len);
}

START_TEST(a_window_closed_before_a_sigkill_stays_closed) {
        if (!bootstrap)
                return;
        names("state-late");
        char dir[] = "/tmp/ks-state-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        const char *args[] = {"--bootstrap",  bootstrap,     "--app-id",
                              app_id,         "--input",     in,
                              "--output",     out,           "--mode",
                              "window-final", "--state-dir", dir,
                              "--commit-ms",  "200",         NULL};
        pid_t a            = kt_spawn_app(log_path, args);
        /* Event times of a few minutes ago, on a window boundary: the
         * output records carry them, and a broker deletes records older
         * than its retention at once (1970 times did, at random). */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t base = ((int64_t)now.tv_sec - 300) / 10 * 10000;
        char w0[64], w1[64];
        snprintf(w0, sizeof(w0), "k@%lld", (long long)base);
        snprintf(w1, sizeof(w1), "k@%lld", (long long)base + 10000);
        /* Window [base, +10 s) gets 2 records; one at +15 s closes it. */
        produce_at(base + 1000);
        produce_at(base + 2000);
        produce_at(base + 15000);
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, 1, 60000, &recs);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(recs[0].key, w0);
        ck_assert_str_eq(recs[0].value, "2");
        kt_records_free(recs, n);
        /* Killed once that is committed (every 200 ms): what is checked is
         * the stream time a restart reads back from the commit. */
        sleep(1);
        kt_stop(a, SIGKILL, 1000);

        a = kt_spawn_app(log_path, args);
        /* Late for the closed window: dropped, not a second "final". */
        produce_at(base + 3000);
        /* Closes [10 s, 20 s) and everything before it. */
        produce_at(base + 40000);
        n = kt_consume_all(bootstrap, out, 2, 60000, &recs);
        kt_records_free(recs, n);
        sleep(2); /* time for a wrong extra result to arrive */
        /* Waits the whole 10 s: a third record must not come. */
        n = kt_consume_all(bootstrap, out, 3, 10000, &recs);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "window-final output: %s -> %s\n", recs[i].key,
                        recs[i].value);
        const char *v = NULL;
        ck_assert_int_eq(finals_of(recs, n, w0, &v), 1);
        ck_assert_str_eq(v, "2");
        ck_assert_int_eq(finals_of(recs, n, w1, &v), 1);
        ck_assert_str_eq(v, "1");
        ck_assert_uint_eq(n, 2);
        kt_records_free(recs, n);
        int st = kt_stop(a, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_int_eq(value_in_log("late", -1), 1);
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
        long restored = value_in_log("restored", 0);
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
        tcase_add_test(tc, sigkill_in_flight_loses_nothing_and_counts_exactly);
        tcase_add_test(tc, a_window_closed_before_a_sigkill_stays_closed);
        tcase_add_test(
                tc, a_second_instance_rebuilds_moved_stores_from_the_changelog);
        suite_add_tcase(s, tc);
        return s;
}
