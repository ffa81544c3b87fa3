/* Bad input reaches the error handlers instead of crashing: undecodable
 * values, missing timestamps, null keys and values, processor errors; and
 * each handler (fail, log-and-continue, dead-letter) does what it says. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <string.h>

#include "ks_check.h"

static ks_topology_t *topo;
static ks_test_driver_t *drv;

/* Fails records whose "amount" is negative; NULL values are bad input too. */
static ks_err_t check_amount(ks_ctx_t *ctx,
                             const void *k,
                             const void *v,
                             void *state,
                             void *opaque) {
        (void)state, (void)opaque;
        if (!v)
                return ks_ctx_fail(ctx, "null value");
        json_t *amount = json_object_get(v, "amount");
        if (!amount)
                return ks_ctx_fail(ctx, "missing field amount");
        if (json_number_value(amount) < 0)
                return ks_ctx_fail(ctx, "negative amount %g",
                                   json_number_value(amount));
        return ks_ctx_forward(ctx, k, v);
}

static void start(const char *deser, const char *proc) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, "in", ks_serde_string(), ks_serde_json());
        in = ks_stream_with_timestamps(
                in, ks_timestamp_extractor_json_field("ts", err, sizeof(err)));
        ks_processor_def_t def = {.process = check_amount};
        ks_stream_to(ks_stream_process(in, "check-amount", &def), "out",
                     ks_serde_string(), ks_serde_json());
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "%s", err);
        ks_builder_destroy(b);
        ks_conf_t *conf = ks_conf_new();
        ck_assert_int_eq(
                ks_conf_set(conf, "default.deserialization.exception.handler",
                            deser, err, sizeof(err)),
                KS_OK);
        ks_conf_set(conf, "default.processing.exception.handler", proc, err,
                    sizeof(err));
        ks_conf_set(conf, "errors.dead.letter.queue.topic.name", "dlq", err,
                    sizeof(err));
        drv = ks_test_driver_new(topo, conf, err, sizeof(err));
        ck_assert_msg(drv, "%s", err);
        ks_conf_destroy(conf);
}

static void teardown(void) {
        ks_test_driver_destroy(drv);
        ks_topology_destroy(topo);
}

static ks_error_t *pipe_v(const char *key, const char *value) {
        ks_header_t h = {"origin", {"test", 4}};
        return ks_test_driver_pipe(drv, "in", -1, key, key ? strlen(key) : 0,
                                   value, value ? strlen(value) : 0, 5, &h, 1);
}

static const char *header(const ks_test_record_t *r, const char *name) {
        for (size_t i = 0; i < r->header_cnt; i++)
                if (!strcmp(r->headers[i].name, name))
                        return r->headers[i].value.data;
        return NULL;
}

START_TEST(fail_handler_stops_with_a_clear_error_and_the_driver_goes_on) {
        start("fail", "fail");
        ks_error_t *e = pipe_v("k", "{\"amount\": 1, \"ts\": ");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_JSON);
        ck_assert_msg(
                strstr(ks_error_message(e), "deserialization error at in[0]@0"),
                "%s", ks_error_message(e));
        ck_assert(strstr(ks_error_message(e), "(handler: fail)"));
        ks_error_destroy(e);
        ck_assert_ptr_null(pipe_v("k", "{\"amount\": 1, \"ts\": 9}"));
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "out", &r));
        ck_assert_int_eq(r.timestamp, 9);
        e = pipe_v("k", "{\"amount\": -3, \"ts\": 10}");
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(strstr(ks_error_message(e),
                             "in check-amount: "
                             "KS_ERR_PROCESSING: "
                             "processing error: "
                             "negative amount -3"),
                      "%s", ks_error_message(e));
        ks_error_destroy(e);
}
END_TEST

START_TEST(log_and_continue_counts_every_dropped_record) {
        start("log-and-continue", "log-and-continue");
        ck_assert_ptr_null(pipe_v("k", "not json"));
        ck_assert_ptr_null(pipe_v("k", "{\"amount\": 1}")); /* no ts */
        ck_assert_ptr_null(
                pipe_v("k", "{\"amount\": 1, \"ts\": \"yesterday\"}"));
        ck_assert_ptr_null(pipe_v("k", "{\"ts\": 3}")); /* field */
        ck_assert_ptr_null(pipe_v("k", NULL));          /* null */
        ck_assert_ptr_null(pipe_v(NULL, "{\"amount\": 2, \"ts\": 4}"));
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-deserialization"),
                          3 + 1 /* a null value has no timestamp field */);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-processing"), 1);
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "out", &r));
        ck_assert_ptr_null(r.key.data); /* a null key is fine */
        ck_assert(!ks_test_driver_read(drv, "out", &r));
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "dlq"), 0);
}
END_TEST

START_TEST(dead_letter_keeps_original_bytes_and_names_the_error) {
        start("dead-letter", "dead-letter");
        ck_assert_ptr_null(pipe_v("bad-key", "{\"amount\": 1, \"ts\": tru"));
        ck_assert_ptr_null(pipe_v("neg", "{\"amount\": -1, \"ts\": 7}"));
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "dlq", &r));
        ck_assert_str_eq(r.key.data, "bad-key");
        ck_assert_str_eq(r.value.data, "{\"amount\": 1, \"ts\": tru");
        ck_assert_str_eq(header(&r, "origin"), "test");
        ck_assert_str_eq(header(&r, "__streams.errors.exception"),
                         "KS_ERR_JSON");
        ck_assert_str_eq(header(&r, "__streams.errors.topic"), "in");
        ck_assert_str_eq(header(&r, "__streams.errors.partition"), "0");
        ck_assert_str_eq(header(&r, "__streams.errors.offset"), "0");
        ck_assert_str_eq(header(&r, "__streams.errors.processor"),
                         "KSTREAM-SOURCE-0000000000");
        ck_assert(
                strstr(header(&r, "__streams.errors.message"), "json serde:"));
        ck_assert(ks_test_driver_read(drv, "dlq", &r));
        ck_assert_str_eq(r.key.data, "neg");
        ck_assert_str_eq(header(&r, "__streams.errors.processor"),
                         "check-amount");
        ck_assert_str_eq(header(&r, "__streams.errors.offset"), "1");
        ck_assert(strstr(header(&r, "__streams.errors.message"),
                         "negative amount -1"));
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dead-lettered"), 2);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}
END_TEST

START_TEST(dead_letter_without_a_topic_is_refused_up_front) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(ks_builder_stream(b, "in", ks_serde_string(),
                                       ks_serde_string()),
                     "out", NULL, NULL);
        topo = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_conf_t *conf = ks_conf_new();
        ks_conf_set(conf, "default.deserialization.exception.handler",
                    "dead-letter", err, sizeof(err));
        drv = ks_test_driver_new(topo, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        ck_assert_ptr_null(drv);
        ck_assert_str_eq(err,
                         "default.deserialization.exception.handler is "
                         "dead-letter but "
                         "errors.dead.letter.queue.topic.name is not set");
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("errors");
        TCase *tc = tcase_create("handlers");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(
                tc,
                fail_handler_stops_with_a_clear_error_and_the_driver_goes_on);
        tcase_add_test(tc, log_and_continue_counts_every_dropped_record);
        tcase_add_test(tc,
                       dead_letter_keeps_original_bytes_and_names_the_error);
        tcase_add_test(tc, dead_letter_without_a_topic_is_refused_up_front);
        suite_add_tcase(s, tc);
        return s;
}
