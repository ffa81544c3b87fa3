/* ks_streams_t without a broker: configuration errors and an unreachable
 * cluster are reported clearly and promptly, never a silent hang. */
#include <kstreams/kstreams.h>
#include <string.h>
#include <time.h>

#include "ks_check.h"

static ks_topology_t *simple(void) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(ks_builder_stream(b, "in", ks_serde_string(),
                                       ks_serde_string()),
                     "out", NULL, NULL);
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        return t;
}

START_TEST(required_settings_are_named) {
        char err[256];
        ks_topology_t *t = simple();
        ks_conf_t *c     = ks_conf_new();
        ck_assert_ptr_null(ks_streams_new(t, c, err, sizeof(err)));
        ck_assert_str_eq(err, "application.id is required");
        ks_conf_set(c, "application.id", "app", err, sizeof(err));
        ck_assert_ptr_null(ks_streams_new(t, c, err, sizeof(err)));
        ck_assert_str_eq(err, "bootstrap.servers is required");
        ks_conf_set(c, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
        ks_conf_set(c, "processing.guarantee", "exactly_once_v2", err,
                    sizeof(err));
        ck_assert_ptr_null(ks_streams_new(t, c, err, sizeof(err)));
        ck_assert_str_eq(err,
                         "processing.guarantee=exactly_once_v2 is not "
                         "implemented yet; only at_least_once is");
        ks_conf_destroy(c);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(an_unreachable_cluster_fails_start_within_the_timeout) {
        char err[256];
        ks_topology_t *t = simple();
        ks_conf_t *c     = ks_conf_new();
        ks_conf_set(c, "application.id", "app", err, sizeof(err));
        /* Port 1 on loopback: nothing listens there. */
        ks_conf_set(c, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
        ks_conf_set(c, "startup.timeout.ms", "1500", err, sizeof(err));
        ks_conf_set(c, "log_level", "0", err, sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_ptr_nonnull(s);
        time_t t0     = time(NULL);
        ks_error_t *e = ks_streams_start(s);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_le(time(NULL) - t0, 10);
        ck_assert_msg(strstr(ks_error_message(e),
                             "cannot reach the Kafka brokers at 127.0.0.1:1 "
                             "within 1500 ms"),
                      "%s", ks_error_message(e));
        ck_assert(ks_error_is_retriable(e));
        ck_assert_int_eq(ks_streams_state(s), KS_STATE_CREATED);
        ks_error_destroy(e);
        ck_assert_ptr_null(ks_streams_close(s, 1000));
        ck_assert_int_eq(ks_streams_state(s), KS_STATE_NOT_RUNNING);
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(state_names) {
        ck_assert_str_eq(ks_state_name(KS_STATE_PENDING_SHUTDOWN),
                         "PENDING_SHUTDOWN");
        ck_assert_str_eq(ks_state_name((ks_state_t)42), "UNKNOWN");
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("streams");
        TCase *tc = tcase_create("streams");
        tcase_add_test(tc, required_settings_are_named);
        tcase_add_test(tc,
                       an_unreachable_cluster_fails_start_within_the_timeout);
        tcase_add_test(tc, state_names);
        suite_add_tcase(s, tc);
        return s;
}
