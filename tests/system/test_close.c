/* ks_streams_close() keeps to its timeout when the producer cannot deliver:
 * the broker is frozen (SIGSTOP) while a stream thread's producer queue is
 * full, and close must return within the timeout plus a margin, with the
 * threads gone (NOT_RUNNING) and a KS_ERR_TIMED_OUT saying nothing was
 * committed. Before, a thread waited in its send loop until the records'
 * message.timeout.ms (5 minutes). Nothing is lost: after the broker is
 * back, a new instance processes the uncommitted records again. */
#include <kstreams/kstreams.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

#define INPUTS  200
#define FANOUT  200
#define TIMEOUT 3000

static const char *bootstrap;
static pid_t broker = -1;

/* The fixture broker's pid, from services.sh's run directory. */
static pid_t broker_pid(void) {
        char run[512], name[128], path[800];
        const char *r = ks_test_service("KS_SERVICES_RUN_DIR");
        if (!r)
                return -1;
        snprintf(run, sizeof(run), "%s", r);
        const char *n = ks_test_service("KS_SERVICES_KAFKA_NAME");
        if (!n)
                return -1;
        snprintf(name, sizeof(name), "%s", n);
        snprintf(path, sizeof(path), "%s/kafka-%s/pid", run, name);
        FILE *f  = fopen(path, "r");
        long pid = -1;
        if (f && fscanf(f, "%ld", &pid) != 1)
                pid = -1;
        if (f)
                fclose(f);
        return (pid_t)pid;
}

static void setup(void) {
        bootstrap = ks_test_require_service("KS_BOOTSTRAP");
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fan_out(ks_emitter_t *emit, const void *k, const void *v, void *o) {
        (void)o;
        for (int i = 0; i < FANOUT; i++)
                ks_emit(emit, k, v);
}

static ks_streams_t *start(const char *app,
                           const char *in,
                           const char *out,
                           ks_topology_t **topo) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(
                ks_stream_flat_map(ks_builder_stream(b, in, ks_serde_string(),
                                                     ks_serde_string()),
                                   "fan-out", fan_out, NULL),
                out, ks_serde_string(), ks_serde_string());
        *topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(*topo, "%s", err);
        ks_builder_destroy(b);
        ks_conf_t *c             = ks_conf_new();
        const char *const conf[] = {
                "application.id", app, "bootstrap.servers", bootstrap,
                "commit.interval.ms", "100000",
                /* A small queue fills at once when nothing is delivered. */
                "producer.queue.buffering.max.messages", "1000", NULL};
        for (int i = 0; conf[i]; i += 2)
                ck_assert_msg(
                        !ks_conf_set(c, conf[i], conf[i + 1], err, sizeof(err)),
                        "%s", err);
        ks_streams_t *s = ks_streams_new(*topo, c, err, sizeof(err));
        ks_conf_destroy(c);
        ck_assert_msg(s, "%s", err);
        ks_error_t *e = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        return s;
}

START_TEST(close_keeps_its_timeout_with_a_full_producer_queue) {
        if (!bootstrap)
                return;
        broker = broker_pid();
        if (broker <= 0) {
                ck_assert_msg(!getenv("CI") || strcmp(getenv("CI"), "true"),
                              "no fixture broker pid to freeze");
                fprintf(stderr, "SKIP: the broker is not the fixture's\n");
                return;
        }
        const char *u = kt_unique("close-late");
        char app[160], in[200], out[200];
        snprintf(app, sizeof(app), "%s", u);
        snprintf(in, sizeof(in), "%s-in", u);
        snprintf(out, sizeof(out), "%s-out", u);
        kt_create_topic(bootstrap, in, 1);
        kt_create_topic(bootstrap, out, 1);
        kt_produce(bootstrap, in, 0, INPUTS, "k", 7, "v%d");

        ks_topology_t *topo;
        ks_streams_t *s = start(app, in, out, &topo);
        /* Output flows, so the inputs are fetched: then the broker stops
         * answering and the producer queue fills within a record or two. */
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, out, 1, 30000, &recs);
        kt_records_free(recs, n);
        ck_assert_uint_eq(n, 1);
        /* A watchdog thaws the broker in 20 s whatever happens to this
         * test (a failed assertion ends its process at once). */
        pid_t watchdog = fork();
        if (watchdog == 0) {
                sleep(20);
                kill(broker, SIGCONT);
                _exit(0);
        }
        ck_assert_int_eq(kill(broker, SIGSTOP), 0);
        sleep(1);

        int64_t t0    = now_ms();
        ks_error_t *e = ks_streams_close(s, TIMEOUT);
        int64_t took  = now_ms() - t0;
        fprintf(stderr, "close(%d ms) returned after %lld ms: %s\n", TIMEOUT,
                (long long)took, e ? ks_error_message(e) : "ok");
        ck_assert_msg(took < TIMEOUT + 1500, "close took %lld ms",
                      (long long)took);
        ck_assert_int_eq(ks_streams_state(s), KS_STATE_NOT_RUNNING);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_TIMED_OUT);
        ck_assert_msg(strstr(ks_error_message(e), "without committing"), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);
        t0 = now_ms();
        ks_streams_destroy(s);
        ck_assert_int_lt(now_ms() - t0, 2000);
        ks_topology_destroy(topo);

        /* The broker back, a new instance does every input again (none was
         * committed): every record's FANOUT copies are there. */
        ck_assert_int_eq(kill(broker, SIGCONT), 0);
        kill(watchdog, SIGKILL);
        waitpid(watchdog, NULL, 0);
        broker = -1;
        s      = start(app, in, out, &topo);
        n      = kt_consume_all(bootstrap, out, INPUTS * FANOUT, 120000, &recs);
        kt_records_free(recs, n);
        ck_assert_uint_ge(n, INPUTS * FANOUT);
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ks_streams_metrics_t m;
        ks_streams_metrics(s, &m);
        ck_assert_uint_eq(m.records_processed, INPUTS);
        ks_streams_destroy(s);
        ks_topology_destroy(topo);
}
END_TEST

/* Runs in the parent process, also after a failed assertion ended the
 * test: the shared broker must not stay stopped for the next system
 * tests (the watchdog thaws it only after 20 s). */
static void thaw_broker(void) {
        pid_t pid = broker_pid();
        if (pid > 0)
                kill(pid, SIGCONT);
}

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("close");
        TCase *tc = tcase_create("close");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_unchecked_fixture(tc, NULL, thaw_broker);
        tcase_set_timeout(tc, 280);
        tcase_add_test(tc, close_keeps_its_timeout_with_a_full_producer_queue);
        suite_add_tcase(s, tc);
        return s;
}
