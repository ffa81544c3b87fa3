/* ks_streams_t without a broker: configuration errors and an unreachable
 * cluster are reported clearly and promptly, never a silent hang. */
#include <kstreams/kstreams.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ks_check.h"
#include "streams_int.h"

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
        /* A transaction must outlive a commit interval with a margin:
         * the broker would abort it first. */
        ks_conf_set(c, "commit.interval.ms", "6000", err, sizeof(err));
        ck_assert_ptr_null(ks_streams_new(t, c, err, sizeof(err)));
        ck_assert_msg(strstr(err,
                             "transaction.timeout.ms (10000) must exceed "
                             "commit.interval.ms (6000)"),
                      "%s", err);
        ks_conf_set(c, "producer.transaction.timeout.ms", "20000", err,
                    sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_ptr_nonnull(s);
        ks_streams_destroy(s);
        /* librdkafka's own check refuses a value that is no number. */
        ck_assert_int_ne(ks_conf_set(c, "producer.transaction.timeout.ms",
                                     "abc", err, sizeof(err)),
                         KS_OK);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
}
END_TEST

/* The instance id behind the transactional ids: made once, kept in the
 * state directory, the same for every later start. */
START_TEST(the_instance_id_is_kept_in_the_state_directory) {
        char dir[] = "/tmp/ks-instance-XXXXXX", app[300], path[400];
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(app, sizeof(app), "%s/app", dir);
        char a[40], b[40];
        ck_assert_ptr_null(ks__instance_id_load(app, a, sizeof(a)));
        ck_assert_uint_eq(strlen(a), 16);
        ck_assert_ptr_null(ks__instance_id_load(app, b, sizeof(b)));
        ck_assert_str_eq(a, b);
        /* A damaged file is refused with its path, not replaced: a new id
         * would no longer fence the old one's zombie. */
        snprintf(path, sizeof(path), "%s/kstreams.instance.id", app);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("not-an-id\n", f);
        fclose(f);
        ks_error_t *e = ks__instance_id_load(app, b, sizeof(b));
        ck_assert_ptr_nonnull(e);
        ck_assert_ptr_nonnull(strstr(ks_error_message(e), path));
        ks_error_destroy(e);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
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
        tcase_add_test(tc, the_instance_id_is_kept_in_the_state_directory);
        tcase_add_test(tc,
                       an_unreachable_cluster_fails_start_within_the_timeout);
        tcase_add_test(tc, state_names);
        suite_add_tcase(s, tc);
        return s;
}
