/* The state listener and the error handler run with no lock of the
 * instance held: from inside them the public getters answer instead of
 * deadlocking, and the calls still come one at a time, in the order of the
 * transitions. Against librdkafka's mock cluster, with two stream threads
 * making transitions. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

#define MAX_CALLS 64

/* What the callbacks saw. Written by whichever thread calls them; read by
 * the test once the instance is closed (or under seen_lock). */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static ks_state_t seen_new[MAX_CALLS], seen_old[MAX_CALLS];
static ks_state_t seen_getter[MAX_CALLS]; /* ks_streams_state() inside */
static int seen_cnt;
static atomic_int inside;   /* callbacks running now */
static atomic_int overlaps; /* calls that found another one running */
static atomic_int handler_calls;
static ks_state_t handler_state;
static uint64_t handler_processed;
static char handler_msg[512];

static void reset(void) {
        seen_cnt = 0;
        atomic_store(&inside, 0);
        atomic_store(&overlaps, 0);
        atomic_store(&handler_calls, 0);
        handler_state = KS_STATE_CREATED;
}

static void enter(void) {
        if (atomic_fetch_add(&inside, 1) != 0)
                atomic_fetch_add(&overlaps, 1);
        usleep(20 * 1000); /* long enough for another call to overlap */
}

static void leave(void) {
        atomic_fetch_sub(&inside, 1);
}

static void on_state(ks_streams_t *s, ks_state_t n, ks_state_t o, void *op) {
        (void)op;
        enter();
        /* Each of these took the instance's lock, which the caller held. */
        ks_state_t now = ks_streams_state(s);
        ks_streams_metrics_t m;
        ks_streams_metrics(s, &m);
        pthread_mutex_lock(&seen_lock);
        if (seen_cnt < MAX_CALLS) {
                seen_new[seen_cnt]    = n;
                seen_old[seen_cnt]    = o;
                seen_getter[seen_cnt] = now;
                seen_cnt++;
        }
        pthread_mutex_unlock(&seen_lock);
        leave();
}

static void on_error(ks_streams_t *s, const ks_error_t *e, void *opaque) {
        (void)opaque;
        enter();
        handler_state = ks_streams_state(s);
        ks_streams_metrics_t m;
        ks_streams_metrics(s, &m);
        handler_processed = m.records_processed;
        snprintf(handler_msg, sizeof(handler_msg), "%s", ks_error_message(e));
        atomic_fetch_add(&handler_calls, 1);
        leave();
}

/* The transitions seen form one chain: each starts where the one before
 * ended, from CREATED, with no call overlapping another. */
static void assert_one_ordered_chain(ks_state_t last) {
        ck_assert_int_eq(atomic_load(&overlaps), 0);
        ck_assert_int_ge(seen_cnt, 2);
        ck_assert_int_lt(seen_cnt, MAX_CALLS);
        ck_assert_int_eq(seen_old[0], KS_STATE_CREATED);
        ck_assert_int_eq(seen_new[0], KS_STATE_REBALANCING);
        for (int i = 1; i < seen_cnt; i++)
                ck_assert_msg(seen_old[i] == seen_new[i - 1],
                              "call %d: %s -> %s after one to %s", i,
                              ks_state_name(seen_old[i]),
                              ks_state_name(seen_new[i]),
                              ks_state_name(seen_new[i - 1]));
        ck_assert_int_eq(seen_new[seen_cnt - 1], last);
}

static bool saw(ks_state_t state) {
        bool found = false;
        pthread_mutex_lock(&seen_lock);
        for (int i = 0; i < seen_cnt; i++)
                found = found || seen_new[i] == state;
        pthread_mutex_unlock(&seen_lock);
        return found;
}

typedef struct mock_s {
        rd_kafka_t *host;
        rd_kafka_mock_cluster_t *cluster;
        const char *bootstrap;
} mock_t;

static void mock_up(mock_t *m) {
        char err[256];
        rd_kafka_conf_t *mc = rd_kafka_conf_new();
        rd_kafka_conf_set(mc, "log_level", "0", err, sizeof(err));
        m->host    = rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof(err));
        m->cluster = rd_kafka_mock_cluster_new(m->host, 1);
        ck_assert_ptr_nonnull(m->cluster);
        m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->cluster);
        rd_kafka_mock_topic_create(m->cluster, "in", 4, 1);
        rd_kafka_mock_topic_create(m->cluster, "out", 4, 1);
}

static void mock_down(mock_t *m) {
        rd_kafka_mock_cluster_destroy(m->cluster);
        rd_kafka_destroy(m->host);
}

static ks_streams_t *start(const mock_t *m,
                           const char *app,
                           const ks_topology_t *t,
                           ks_conf_t *c) {
        char err[256];
        ks_conf_set(c, "application.id", app, err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", m->bootstrap, err, sizeof(err));
        ks_conf_set(c, "num.stream.threads", "2", err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "100", err, sizeof(err));
        /* The mock makes a rebalance wait session.timeout.ms - 1000 ms. */
        ks_conf_set(c, "consumer.session.timeout.ms", "6000", err, sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_msg(s, "%s", err);
        ks_streams_set_state_listener(s, on_state, NULL);
        ks_streams_set_error_handler(s, on_error, NULL);
        ks_error_t *e = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        return s;
}

START_TEST(a_state_listener_may_call_the_getters) {
        mock_t m;
        mock_up(&m);
        reset();
        kt_produce(m.bootstrap, "in", 0, 100, "k", 7, "{\"id\":%d}");
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(
                ks_builder_stream(b, "in", ks_serde_string(), ks_serde_json()),
                "out", NULL, NULL);
        char err[256];
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_conf_t *c    = ks_conf_new();
        ks_streams_t *s = start(&m, "cb-listener", t, c);
        kt_record_t *recs;
        size_t n = kt_consume_all(m.bootstrap, "out", 100, 60000, &recs);
        kt_records_free(recs, n);
        ck_assert_uint_eq(n, 100);
        /* Both threads have their partitions (one may have got them all
         * first, and processed everything, before the other joined). */
        for (int i = 0; i < 600 && !saw(KS_STATE_RUNNING); i++)
                usleep(50 * 1000);
        ck_assert(saw(KS_STATE_RUNNING));
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ck_assert_int_eq(ks_streams_state(s), KS_STATE_NOT_RUNNING);

        assert_one_ordered_chain(KS_STATE_NOT_RUNNING);
        ck_assert_int_eq(seen_new[seen_cnt - 2], KS_STATE_PENDING_SHUTDOWN);
        /* The getter inside the last call saw the state it announced. */
        ck_assert_int_eq(seen_getter[seen_cnt - 1], KS_STATE_NOT_RUNNING);
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        mock_down(&m);
}
END_TEST

static ks_err_t reject_13(ks_ctx_t *ctx,
                          const void *k,
                          const void *v,
                          void *state,
                          void *opaque) {
        (void)state, (void)opaque;
        if (json_integer_value(json_object_get(v, "id")) == 13)
                return ks_ctx_fail(ctx, "id 13 is unlucky");
        return ks_ctx_forward(ctx, k, v);
}

START_TEST(an_error_handler_may_call_the_getters) {
        mock_t m;
        mock_up(&m);
        reset();
        kt_produce(m.bootstrap, "in", 0, 100, "k", 7, "{\"id\":%d}");
        ks_builder_t *b        = ks_builder_new();
        ks_processor_def_t def = {.process = reject_13};
        ks_stream_to(
                ks_stream_process(ks_builder_stream(b, "in", ks_serde_string(),
                                                    ks_serde_json()),
                                  "reject-13", &def),
                "out", ks_serde_string(), ks_serde_json());
        char err[256];
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_conf_t *c    = ks_conf_new();
        ks_streams_t *s = start(&m, "cb-error", t, c);
        for (int i = 0; i < 600 && atomic_load(&handler_calls) == 0; i++)
                usleep(50 * 1000);
        ck_assert_int_eq(atomic_load(&handler_calls), 1);
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ck_assert_int_eq(atomic_load(&handler_calls), 1);
        /* The handler comes after the transition to ERROR. */
        ck_assert_int_eq(handler_state, KS_STATE_ERROR);
        ck_assert_msg(strstr(handler_msg, "id 13 is unlucky"), "%s",
                      handler_msg);
        assert_one_ordered_chain(KS_STATE_ERROR);
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        mock_down(&m);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("callbacks-mock");
        TCase *tc = tcase_create("mock");
        /* A deadlock (a callback taking a lock its caller holds) shows as
         * this timeout. */
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, a_state_listener_may_call_the_getters);
        tcase_add_test(tc, an_error_handler_may_call_the_getters);
        suite_add_tcase(s, tc);
        return s;
}
