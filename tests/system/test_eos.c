/* exactly_once_v2 on the real broker, proven by crashing it: a windowed
 * count per key, every update sent on (no cache), so the output topic holds
 * for every window the counts 1, 2, ... up to its final one. A record
 * processed twice sends a count twice (what at-least-once does after a
 * crash: this test fails under it); a record lost leaves the window short.
 * Under exactly-once the output, read with read_committed, is exact however
 * often the instance is killed, and so is the state read back through
 * interactive queries. Expected results are computed here from the
 * generated input. */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

#define KEYS      200
#define WINDOW_MS 10000
/* Event time between records: 2000 records a window, 10 per key. */
#define TS_STEP_MS 5

static const char *bootstrap;
static char in[160], out[160], app_id[160], log_path[200], dump_path[200];
static int64_t base; /* event time of record 0, on a window boundary */
static int total;    /* data records; KEYS sentinels follow */

static void setup(void) {
        bootstrap = ks_test_require_service("KS_BOOTSTRAP");
}

static void names(const char *prefix) {
        const char *u = kt_unique(prefix);
        snprintf(app_id, sizeof(app_id), "%s", u);
        snprintf(in, sizeof(in), "%s-in", u);
        snprintf(out, sizeof(out), "%s-out", u);
        snprintf(log_path, sizeof(log_path), "%s/%s.log", KS_BINARY_DIR, u);
        snprintf(dump_path, sizeof(dump_path), "%s/%s.windows", KS_BINARY_DIR,
                 u);
        kt_create_topic(bootstrap, in, 4);
        kt_create_topic(bootstrap, out, 2);
        /* Event times of the recent past: the broker keeps them (it deletes
         * records older than its retention at once). */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        base = ((int64_t)now.tv_sec - 1200) / 10 * 10000;
}

/* Record i: key u<i % KEYS>, event time base + i ms; the sentinels (one
 * per key, 20 s after the last record) close every window of the data. */
static int64_t ts_of(int i) {
        return i < total ? base + (int64_t)i * TS_STEP_MS
                         : base + (int64_t)total * TS_STEP_MS + 20000;
}

static void gen(int i, char *key, char *value) {
        snprintf(key, 256, "u%d", i % KEYS);
        snprintf(value, 256, "{\"ts\":%lld,\"i\":%d}", (long long)ts_of(i), i);
}

typedef struct feeder_s {
        int from, n, chunk, pause_ms;
        atomic_int done;
        /* The feeder waits while it has produced this many (0: never):
         * the test holds input back for the failures still to come. */
        atomic_int gate;
} feeder_t;

static _Thread_local int gen_offset;
static void gen_at(int i, char *key, char *value) {
        gen(gen_offset + i, key, value);
}

static void *feed(void *arg) {
        feeder_t *f = arg;
        for (int i = 0; i < f->n; i += f->chunk) {
                int gate;
                while ((gate = atomic_load(&f->gate)) && i >= gate)
                        usleep(50 * 1000);
                int c      = f->n - i < f->chunk ? f->n - i : f->chunk;
                gen_offset = f->from + i;
                kt_produce_gen(bootstrap, in, c, gen_at);
                atomic_store(&f->done, i + c);
                usleep((useconds_t)f->pause_ms * 1000);
        }
        return NULL;
}

/* The expected final count of "u<k>@<start>": every data window closes. */
typedef struct expected_s {
        int windows; /* per key */
        int *counts; /* [key * windows + w] */
} expected_t;

static expected_t expect(void) {
        expected_t e;
        e.windows = (int)((ts_of(total - 1) - base) / WINDOW_MS) + 1;
        e.counts  = calloc((size_t)KEYS * (size_t)e.windows, sizeof(int));
        for (int i = 0; i < total; i++)
                e.counts[(i % KEYS) * e.windows +
                         (int)((ts_of(i) - base) / WINDOW_MS)]++;
        return e;
}

/* Parses "u<k>@<start>" into its slot. @returns -1 if it is none. */
static int slot_of(const expected_t *e, const char *key) {
        int k;
        long long start;
        if (!key || sscanf(key, "u%d@%lld", &k, &start) != 2 || k < 0 ||
            k >= KEYS || start < base || (start - base) % WINDOW_MS)
                return -1;
        long long w = (start - base) / WINDOW_MS;
        return w < e->windows ? k * e->windows + (int)w : -1;
}

/* The output topic (read_committed) holds, for every window, each count
 * from 1 to its final one exactly once (one update per record, in order),
 * and nothing else: a record processed twice would send a count twice, a
 * record lost would leave a gap. */
static void check_output(const expected_t *e) {
        int want = total + KEYS; /* the sentinels' windows count 1 */
        kt_record_t *recs;
        /* Asks for one more than expected: waits out the whole timeout, so
         * a late duplicate would be seen. */
        size_t n =
                kt_consume_all(bootstrap, out, (size_t)want + 1, 15000, &recs);
        size_t slots = (size_t)KEYS * (size_t)e->windows;
        int *last    = calloc(slots, sizeof(int));
        int wrong = 0, doubled = 0, foreign = 0, sentinels = 0;
        int64_t last_start = ts_of(total) / WINDOW_MS * WINDOW_MS;
        for (size_t i = 0; i < n; i++) {
                int s = slot_of(e, recs[i].key);
                int v = recs[i].value ? atoi(recs[i].value) : -1;
                long long start;
                if (s < 0 && recs[i].key &&
                    sscanf(recs[i].key, "u%*d@%lld", &start) == 1 &&
                    start == last_start && v == 1) {
                        sentinels++;
                        continue;
                }
                if (s < 0) {
                        if (foreign++ < 5)
                                fprintf(stderr, "unexpected output %s -> %s\n",
                                        recs[i].key ? recs[i].key : "(null)",
                                        recs[i].value ? recs[i].value
                                                      : "(null)");
                        continue;
                }
                /* Per key, updates come in order (one partition). */
                if (v <= last[s]) {
                        if (doubled++ < 5)
                                fprintf(stderr, "%s: count %d after %d\n",
                                        recs[i].key, v, last[s]);
                } else if (v != last[s] + 1 || v > e->counts[s]) {
                        if (wrong++ < 5)
                                fprintf(stderr,
                                        "%s: count %d after %d (final %d)\n",
                                        recs[i].key, v, last[s], e->counts[s]);
                }
                if (v > last[s])
                        last[s] = v;
        }
        int short_ = 0;
        for (size_t s = 0; s < slots; s++)
                short_ += last[s] != e->counts[s];
        fprintf(stderr,
                "output: %zu records, %d expected: %d windows short of their "
                "count, %d counts repeated, %d out of order, %d foreign, %d "
                "sentinels\n",
                n, want, short_, doubled, wrong, foreign, sentinels);
        ck_assert_int_eq(short_, 0);
        ck_assert_int_eq(doubled, 0);
        ck_assert_int_eq(wrong, 0);
        ck_assert_int_eq(foreign, 0);
        ck_assert_int_eq(sentinels, KEYS);
        ck_assert_uint_eq(n, (size_t)want);
        free(last);
        kt_records_free(recs, n);
}

/* The windows read back through interactive queries at the end: each is
 * exact (data windows with every record, sentinel windows with one), and
 * the sentinels' windows, inside every store's retention, are all there. */
static void check_dump(const expected_t *e) {
        FILE *f = fopen(dump_path, "r");
        ck_assert_ptr_nonnull(f);
        char key[128];
        long long count;
        int lines = 0, wrong = 0, sentinels = 0;
        int64_t last       = ts_of(total);
        int64_t last_start = last / WINDOW_MS * WINDOW_MS;
        while (fscanf(f, "%127s %lld", key, &count) == 2) {
                lines++;
                int k;
                long long start;
                ck_assert_int_eq(sscanf(key, "u%d@%lld", &k, &start), 2);
                long long want;
                if (start == last_start) {
                        want = 1;
                        sentinels++;
                } else {
                        int s = slot_of(e, key);
                        want  = s < 0 ? -1 : e->counts[s];
                }
                if (count != want && wrong++ < 5)
                        fprintf(stderr, "queried %s = %lld, expected %lld\n",
                                key, count, want);
        }
        fclose(f);
        fprintf(stderr, "interactive queries: %d windows, %d wrong\n", lines,
                wrong);
        ck_assert_int_eq(wrong, 0);
        ck_assert_int_eq(sentinels, KEYS);
}

/* An instance; with @p dump, it writes its windows (every key's, asked
 * for up to 30 s each while partitions move to it) when it is stopped. */
static pid_t start_as(const char *state_dir, const char *static_id, bool dump) {
        char keys[32];
        snprintf(keys, sizeof(keys), "u:%d", KEYS);
        const char *args[32] = {"--bootstrap",   bootstrap,
                                "--app-id",      app_id,
                                "--input",       in,
                                "--output",      out,
                                "--mode",        "window-count",
                                "--cache-bytes", "0",
                                "--state-dir",   state_dir,
                                "--commit-ms",   "100",
                                "--guarantee",   "exactly_once_v2",
                                "--session-ms",  "6000"};
        int n                = 20;
        if (dump) {
                args[n++] = "--dump-keys";
                args[n++] = keys;
                args[n++] = "--dump";
                args[n++] = dump_path;
        }
        if (static_id) {
                args[n++] = "--static-id";
                args[n++] = static_id;
        }
        args[n] = NULL;
        return kt_spawn_app(log_path, args);
}

static pid_t start(const char *state_dir, const char *static_id) {
        return start_as(state_dir, static_id, true);
}

/* The sum of "<name>=" over the instances' exit lines. */
static long sum_in_log(const char *name) {
        FILE *f = fopen(log_path, "r");
        char line[1024], pat[64];
        long sum = 0;
        snprintf(pat, sizeof(pat), " %s=", name);
        while (f && fgets(line, sizeof(line), f)) {
                char *p = strstr(line, pat);
                if (p)
                        sum += atol(p + strlen(pat));
        }
        if (f)
                fclose(f);
        return sum;
}

#define RUNNING "ks_test_app: state REBALANCING -> RUNNING"

/* Runs the final instance until the output is complete, then stops it
 * cleanly (it dumps its windows first) and checks both. */
static void finish(pid_t a, const expected_t *e) {
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, (size_t)(total + KEYS),
                                  120000, &recs);
        kt_records_free(recs, n);
        int st = kt_stop(a, SIGTERM, 30000);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "the last instance did not exit cleanly (see %s)",
                      log_path);
        check_output(e);
        check_dump(e);
        fprintf(stderr,
                "transactions: %ld committed, %ld aborted; producers made "
                "again: %ld; records restored: %ld\n",
                sum_in_log("txn_committed"), sum_in_log("txn_aborted"),
                sum_in_log("producers_recreated"), sum_in_log("restored"));
}

START_TEST(sigkill_many_times_leaves_output_and_state_exact) {
        if (!bootstrap)
                return;
        names("eos-kill");
        total      = 200000;
        char dir[] = "/tmp/ks-eos-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        unsigned seed = (unsigned)time(NULL);
        fprintf(stderr, "kill schedule seed %u\n", seed);
        /* About 30 s of input, so that every kill lands while records are
         * produced and processed, most with a transaction open. */
        /* At most 15000 records ahead of each kill: input is left for
         * every one of them, however slowly instances restart. */
        feeder_t f = {0, total + KEYS, 2000, 300, 0, 15000};
        pthread_t feeder;
        ck_assert_int_eq(pthread_create(&feeder, NULL, feed, &f), 0);
        int kills = 0, in_flight = 0;
        /* Static membership: a restart takes its partitions back with no
         * wait for the dead member's session to expire. */
        int running = kt_log_count(log_path, RUNNING);
        pid_t a     = start(dir, "eos-a");
        for (; kills < 12; kills++) {
                /* Once it processes (its output grows): a kill before that
                 * tests little. */
                for (int i = 0;
                     i < 200 && kt_log_count(log_path, RUNNING) <= running; i++)
                        kt_sleep_ms(100);
                running        = kt_log_count(log_path, RUNNING);
                int64_t output = kt_topic_records(bootstrap, out, 2);
                for (int i = 0; i < 200 && kt_topic_records(bootstrap, out, 2) <
                                                   output + 3000;
                     i++)
                        kt_sleep_ms(50);
                kt_sleep_ms((int)(rand_r(&seed) % 700));
                int before = atomic_load(&f.done);
                kt_stop(a, SIGKILL, 1000);
                in_flight += before < total;
                atomic_store(&f.gate, kills < 11 ? (kills + 2) * 15000 : 0);
                a = start(dir, "eos-a");
        }
        pthread_join(feeder, NULL);
        fprintf(stderr, "%d SIGKILLs, %d while input was still coming\n", kills,
                in_flight);
        ck_assert_int_ge(in_flight, 10);
        expected_t e = expect();
        finish(a, &e);
        free(e.counts);
        kt_rm_rf(dir);
}
END_TEST

START_TEST(a_killed_instance_hands_over_and_takes_back_exactly) {
        if (!bootstrap)
                return;
        names("eos-two");
        total     = 60000;
        char d1[] = "/tmp/ks-eos-XXXXXX", d2[] = "/tmp/ks-eos-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(d1));
        ck_assert_ptr_nonnull(mkdtemp(d2));
        feeder_t f = {0, total + KEYS, 1000, 600, 0, 0};
        pthread_t feeder;
        ck_assert_int_eq(pthread_create(&feeder, NULL, feed, &f), 0);
        pid_t b = start_as(d2, NULL, false);
        pid_t a = start(d1, NULL);
        /* A dies; after its session times out (6 s) B takes every task,
         * then A comes back and the group gives some back to it. */
        for (int cycle = 0; cycle < 3; cycle++) {
                kt_sleep_ms(4000);
                kt_stop(a, SIGKILL, 1000);
                kt_sleep_ms(8000);
                a = start(d1, NULL);
        }
        pthread_join(feeder, NULL);
        expected_t e = expect();
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, (size_t)(total + KEYS),
                                  120000, &recs);
        kt_records_free(recs, n);
        int sb = kt_stop(b, SIGTERM, 30000);
        ck_assert(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
        /* A has every task now: its dump covers every key. */
        kt_sleep_ms(8000);
        finish(a, &e);
        free(e.counts);
        kt_rm_rf(d1);
        kt_rm_rf(d2);
}
END_TEST

START_TEST(a_second_process_with_the_same_instance_id_is_fenced) {
        if (!bootstrap)
                return;
        names("eos-fence");
        total     = 40000;
        char d1[] = "/tmp/ks-eos-XXXXXX", d2[] = "/tmp/ks-eos-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(d1));
        ck_assert_ptr_nonnull(mkdtemp(d2));
        feeder_t f = {0, total + KEYS, 1000, 400, 0, 0};
        pthread_t feeder;
        ck_assert_int_eq(pthread_create(&feeder, NULL, feed, &f), 0);
        pid_t a = start(d1, NULL);
        /* B gets A's instance id, so the same transactional id: each one's
         * init_transactions() fences the other, until one gives up. */
        char src[400], dst[400], cmd[1300];
        snprintf(src, sizeof(src), "%s/%s/kstreams.instance.id", d1, app_id);
        for (int i = 0; i < 100 && access(src, R_OK); i++)
                kt_sleep_ms(100);
        snprintf(dst, sizeof(dst), "%s/%s", d2, app_id);
        snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s %s/", dst, src, dst);
        ck_assert_int_eq(system(cmd), 0);
        kt_sleep_ms(3000);
        pid_t b = start(d2, NULL);
        /* One of them stops, with an error that names the cause. */
        int stopped = 0;
        pid_t left  = 0;
        for (int i = 0; i < 1200 && !stopped; i++) {
                int st;
                if (waitpid(a, &st, WNOHANG) == a) {
                        stopped = 1;
                        left    = b;
                } else if (waitpid(b, &st, WNOHANG) == b) {
                        stopped = 1;
                        left    = a;
                }
                if (!stopped)
                        kt_sleep_ms(100);
        }
        ck_assert_msg(stopped, "neither process stopped in 120 s (see %s)",
                      log_path);
        ck_assert_int_ge(
                kt_log_count(log_path, "another process uses this instance id"),
                1);
        pthread_join(feeder, NULL);
        expected_t e = expect();
        /* The one left takes every task once the other's session ends. */
        kt_sleep_ms(8000);
        finish(left, &e);
        ck_assert_int_ge(sum_in_log("producers_recreated"), 1);
        free(e.counts);
        kt_rm_rf(d1);
        kt_rm_rf(d2);
}
END_TEST

static char cluster[64];

static void cluster_down(void) {
        char args[128];
        if (!cluster[0])
                return;
        snprintf(args, sizeof(args), "cluster-down %s", cluster);
        kt_kafka_sh(args, NULL, 0);
        cluster[0] = '\0';
}

/* Waits (60 s at most) until the output topic holds @p n records. */
static void await_output(int64_t n) {
        for (int i = 0; i < 600 && kt_topic_records(bootstrap, out, 2) < n; i++)
                kt_sleep_ms(100);
}

/* Kafka's own failures: one node of a 3-node cluster restarted mid-run,
 * then every node at once (as a single broker's restart: every connection
 * drops, every transaction in flight fails). */
START_TEST(broker_restarts_leave_output_exact) {
        if (!bootstrap)
                return;
        static char cluster_bootstrap[256];
        snprintf(cluster, sizeof(cluster), "eosrestart%d", (int)getpid());
        ck_assert_msg(kt_cluster_up(cluster, cluster_bootstrap,
                                    sizeof(cluster_bootstrap)),
                      "cluster-up %s failed", cluster);
        bootstrap = cluster_bootstrap;
        names("eos-restart");
        total      = 60000;
        char dir[] = "/tmp/ks-eos-XXXXXX", args[160];
        ck_assert_ptr_nonnull(mkdtemp(dir));
        /* About 40 s of input: both restarts find it still coming. */
        feeder_t f = {0, total + KEYS, 1000, 600, 0, 35000};
        pthread_t feeder;
        ck_assert_int_eq(pthread_create(&feeder, NULL, feed, &f), 0);
        pid_t a = start(dir, NULL);
        await_output(5000);
        fprintf(stderr, "node 2 down at %lld output records\n",
                (long long)kt_topic_records(bootstrap, out, 2));
        snprintf(args, sizeof(args), "stop-broker 2 %s", cluster);
        ck_assert_int_eq(kt_kafka_sh(args, NULL, 0), 0);
        kt_sleep_ms(5000);
        snprintf(args, sizeof(args), "start-broker 2 %s", cluster);
        ck_assert_int_eq(kt_kafka_sh(args, NULL, 0), 0);
        /* Mid-run: the feeder's flush rides the outage out too. */
        await_output(25000);
        int before = atomic_load(&f.done);
        fprintf(stderr, "every node down at %lld output records\n",
                (long long)kt_topic_records(bootstrap, out, 2));
        for (int i = 1; i <= 3; i++) {
                snprintf(args, sizeof(args), "stop-broker %d %s", i, cluster);
                ck_assert_int_eq(kt_kafka_sh(args, NULL, 0), 0);
        }
        atomic_store(&f.gate, 0); /* the rest comes during the outage */
        kt_sleep_ms(3000);
        /* Together: a KRaft node cannot finish starting without a quorum
         * of controllers. */
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "for i in 1 2 3; do bash %s/infra/kafka/kafka.sh "
                 "start-broker $i %s >/dev/null 2>&1 & done; "
                 "for j in $(jobs -p); do wait $j || exit 1; done",
                 KS_SOURCE_DIR, cluster);
        ck_assert_msg(system(cmd) == 0, "the nodes did not start again");
        for (int i = 0; i < 600 && kt_topic_records(bootstrap, out, 2) <= 0;
             i++)
                kt_sleep_ms(100);
        pthread_join(feeder, NULL);
        ck_assert_msg(before < total,
                      "the input was complete before every "
                      "node went down");
        expected_t e = expect();
        finish(a, &e);
        free(e.counts);
        kt_rm_rf(dir);
}
END_TEST

/* One case per test, so that CK_RUN_CASE can pick one. */
static void add_case(Suite *s, const char *name, const TTest *test) {
        TCase *tc = tcase_create(name);
        tcase_add_checked_fixture(tc, setup, cluster_down);
        tcase_set_timeout(tc, 280);
        tcase_add_test(tc, test);
        suite_add_tcase(s, tc);
}

Suite *ks_test_suite(void) {
        Suite *s = suite_create("eos");
        add_case(s, "kill", sigkill_many_times_leaves_output_and_state_exact);
        add_case(s, "two", a_killed_instance_hands_over_and_takes_back_exactly);
        add_case(s, "fence",
                 a_second_process_with_the_same_instance_id_is_fenced);
        add_case(s, "restart", broker_restarts_leave_output_exact);
        return s;
}
