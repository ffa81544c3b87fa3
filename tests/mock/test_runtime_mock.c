/* The runtime against librdkafka's mock cluster: a fast extra tier (the
 * proof is the system tests on a real broker). */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

static bool even(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return json_integer_value(json_object_get(v, "id")) % 2 == 0;
}

START_TEST(a_filter_topology_runs_on_the_mock_cluster) {
        char err[256];
        rd_kafka_conf_t *mc = rd_kafka_conf_new();
        rd_kafka_conf_set(mc, "log_level", "0", err, sizeof(err));
        rd_kafka_t *host =
                rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof(err));
        rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 1);
        ck_assert_ptr_nonnull(mock);
        const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mock);
        /* CreateTopics is not served by the 2.0.2 mock: create directly. */
        rd_kafka_mock_topic_create(mock, "in", 4, 1);
        rd_kafka_mock_topic_create(mock, "out", 4, 1);
        kt_produce(bootstrap, "in", 0, 400, "k", 37, "{\"id\":%d}");

        ks_builder_t *b = ks_builder_new();
        ks_stream_to(
                ks_stream_filter(ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_json()),
                                 "even", even, NULL),
                "out", NULL, NULL);
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", "mock-app", err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "100", err, sizeof(err));
        /* The mock makes a rebalance wait session.timeout.ms - 1000 ms. */
        ks_conf_set(c, "consumer.session.timeout.ms", "6000", err, sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_ptr_nonnull(s);
        ks_error_t *e = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, "out", 200, 60000, &recs);
        ck_assert_uint_eq(n, 200);
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_loads(recs[i].value, 0, NULL);
                ck_assert_int_eq(
                        json_integer_value(json_object_get(v, "id")) % 2, 0);
                json_decref(v);
        }
        kt_records_free(recs, n);
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ks_streams_metrics_t m;
        ks_streams_metrics(s, &m);
        ck_assert_uint_eq(m.records_processed, 400);
        ck_assert_uint_eq(m.records_produced, 200);
        ck_assert_uint_ge(m.commits, 1);
        ck_assert_int_eq(ks_streams_state(s), KS_STATE_NOT_RUNNING);
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(host);
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

static int handler_calls;
static char handler_msg[512];
static void on_error(ks_streams_t *s, const ks_error_t *e, void *opaque) {
        (void)s, (void)opaque;
        handler_calls++;
        snprintf(handler_msg, sizeof(handler_msg), "%s", ks_error_message(e));
}

static ks_state_t states[16];
static int state_cnt;
static void on_state(ks_streams_t *s, ks_state_t n, ks_state_t o, void *op) {
        (void)s, (void)o, (void)op;
        if (state_cnt < 16)
                states[state_cnt++] = n;
}

/* Two stream threads share the partitions; a record that fails under the
 * "fail" handler stops the instance in ERROR, calls the error handler
 * once, and its offset is not committed. */
START_TEST(a_failing_record_stops_the_instance_in_error) {
        char err[256];
        rd_kafka_conf_t *mc = rd_kafka_conf_new();
        rd_kafka_conf_set(mc, "log_level", "0", err, sizeof(err));
        rd_kafka_t *host =
                rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof(err));
        rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 1);
        const char *bootstrap         = rd_kafka_mock_cluster_bootstraps(mock);
        rd_kafka_mock_topic_create(mock, "in", 4, 1);
        rd_kafka_mock_topic_create(mock, "out", 4, 1);
        kt_produce(bootstrap, "in", 0, 100, "k", 7, "{\"id\":%d}");

        ks_builder_t *b        = ks_builder_new();
        ks_processor_def_t def = {.process = reject_13};
        ks_stream_to(
                ks_stream_process(ks_builder_stream(b, "in", ks_serde_string(),
                                                    ks_serde_json()),
                                  "reject-13", &def),
                "out", ks_serde_string(), ks_serde_json());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", "mock-fail", err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "num.stream.threads", "2", err, sizeof(err));
        ks_conf_set(c, "consumer.session.timeout.ms", "6000", err, sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ks_streams_set_error_handler(s, on_error, NULL);
        ks_streams_set_state_listener(s, on_state, NULL);
        ck_assert_ptr_null(ks_streams_start(s));
        for (int i = 0; i < 600 && ks_streams_state(s) != KS_STATE_ERROR; i++)
                usleep(50 * 1000);
        ck_assert_int_eq(ks_streams_state(s), KS_STATE_ERROR);
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ck_assert_int_eq(ks_streams_state(s), KS_STATE_ERROR); /* final */
        ck_assert_int_eq(handler_calls, 1);
        ck_assert_msg(strstr(handler_msg, "processing error") &&
                              strstr(handler_msg, "in reject-13") &&
                              strstr(handler_msg, "id 13 is unlucky"),
                      "%s", handler_msg);
        ck_assert_int_eq(states[0], KS_STATE_REBALANCING);
        ck_assert_int_eq(states[state_cnt - 1], KS_STATE_ERROR);
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(host);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("runtime-mock");
        TCase *tc = tcase_create("mock");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, a_filter_topology_runs_on_the_mock_cluster);
        tcase_add_test(tc, a_failing_record_stops_the_instance_in_error);
        suite_add_tcase(s, tc);
        return s;
}
