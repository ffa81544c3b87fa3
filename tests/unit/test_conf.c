/* Configuration: validation, defaults, librdkafka pass-through, and the
 * generated CONFIGURATION.md staying true to the table. */
#include <kstreams/conf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "conf_int.h"
#include "ks_check.h"
#include "streams_int.h"

START_TEST(defaults_and_set_values) {
        ks_conf_t *c = ks_conf_new();
        char v[64], err[256];
        ck_assert_int_eq(ks_conf_get(c, "commit.interval.ms", v, sizeof(v)),
                         KS_OK);
        ck_assert_str_eq(v, "30000");
        ck_assert_int_eq(
                ks_conf_set(c, "num.stream.threads", "4", err, sizeof(err)),
                KS_OK);
        ck_assert_int_eq(ks__conf_int(c, "num.stream.threads"), 4);
        ck_assert(ks__conf_is_set(c, "num.stream.threads"));
        ck_assert(!ks__conf_is_set(c, "state.dir"));
        ks_conf_t *d = ks_conf_dup(c);
        ks_conf_destroy(c);
        ck_assert_int_eq(ks__conf_int(d, "num.stream.threads"), 4);
        ks_conf_destroy(d);
        ks_conf_destroy(NULL);
}
END_TEST

START_TEST(bad_values_are_refused_with_a_reason) {
        ks_conf_t *c = ks_conf_new();
        char err[256];
        ck_assert_int_eq(
                ks_conf_set(c, "num.stream.threads", "0", err, sizeof(err)),
                KS_ERR_INVALID_ARG);
        ck_assert_str_eq(err, "num.stream.threads: 0 is outside [1, 256]");
        ck_assert_int_eq(
                ks_conf_set(c, "commit.interval.ms", "soon", err, sizeof(err)),
                KS_ERR_INVALID_ARG);
        ck_assert(strstr(err, "not an integer"));
        ck_assert_int_eq(ks_conf_set(c, "processing.guarantee", "exactly_once",
                                     err, sizeof(err)),
                         KS_ERR_INVALID_ARG);
        ck_assert(strstr(err, "at_least_once|exactly_once_v2"));
        /* application.server ends up after '@' in a client.id. */
        const char *servers[] = {"no-port", "host:", ":80",  "h:0",
                                 "h:65536", "a@b:1", "h :1", "h:1x"};
        for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
                ck_assert_int_eq(ks_conf_set(c, "application.server",
                                             servers[i], err, sizeof(err)),
                                 KS_ERR_INVALID_ARG);
                ck_assert_msg(strstr(err, "is not host:port"), "%s", err);
        }
        ck_assert_int_eq(ks_conf_set(c, "application.server", "[::1]:8080", err,
                                     sizeof(err)),
                         KS_OK);
        ck_assert_int_eq(
                ks_conf_set(c, "application.server", "", err, sizeof(err)),
                KS_OK);
        /* A refused value leaves the old one. */
        ck_assert_int_eq(ks__conf_int(c, "num.stream.threads"), 1);
        ks_conf_destroy(c);
}
END_TEST

START_TEST(librdkafka_properties_pass_through_and_are_validated) {
        ks_conf_t *c = ks_conf_new();
        char err[256], v[64];
        ck_assert_int_eq(ks_conf_set(c, "bootstrap.servers", "127.0.0.1:9092",
                                     err, sizeof(err)),
                         KS_OK);
        ck_assert_int_eq(ks_conf_set(c, "consumer.fetch.wait.max.ms", "50", err,
                                     sizeof(err)),
                         KS_OK);
        ck_assert_int_eq(
                ks_conf_set(c, "bootstrap.servrs", "x", err, sizeof(err)),
                KS_ERR_UNKNOWN_CONF);
        ck_assert(strstr(err, "bootstrap.servrs: unknown property"));
        ck_assert_int_eq(
                ks_conf_set(c, "producer.linger.ms", "-5", err, sizeof(err)),
                KS_ERR_INVALID_ARG);
        ck_assert_int_eq(ks_conf_get(c, "bootstrap.servers", v, sizeof(v)),
                         KS_OK);
        ck_assert_str_eq(v, "127.0.0.1:9092");
        ck_assert_int_eq(ks_conf_get(c, "no.such", v, sizeof(v)),
                         KS_ERR_NOT_FOUND);
        ks_conf_destroy(c);
}
END_TEST

typedef struct seen_s {
        char names[8][64];
        char values[8][64];
        int cnt;
} seen_t;

static int collect(const char *name, const char *value, void *opaque) {
        seen_t *s = opaque;
        snprintf(s->names[s->cnt], 64, "%s", name);
        snprintf(s->values[s->cnt], 64, "%s", value);
        s->cnt++;
        return 0;
}

START_TEST(side_prefixes_reach_one_client_and_override) {
        ks_conf_t *c = ks_conf_new();
        char err[256];
        ks_conf_set(c, "client.id", "all", err, sizeof(err));
        ks_conf_set(c, "consumer.client.id", "cons", err, sizeof(err));
        ks_conf_set(c, "producer.linger.ms", "5", err, sizeof(err));
        ks_conf_set(c, "num.stream.threads", "2", err, sizeof(err));
        seen_t s = {0};
        ks__conf_foreach_rdkafka(c, KS_CONF_SIDE_CONSUMER, collect, &s);
        ck_assert_int_eq(s.cnt, 2);
        ck_assert_str_eq(s.names[0], "client.id");
        ck_assert_str_eq(s.values[0], "all");
        ck_assert_str_eq(s.names[1], "client.id"); /* applied last: wins */
        ck_assert_str_eq(s.values[1], "cons");
        memset(&s, 0, sizeof(s));
        ks__conf_foreach_rdkafka(c, KS_CONF_SIDE_PRODUCER, collect, &s);
        ck_assert_int_eq(s.cnt, 2);
        ck_assert_str_eq(s.names[1], "linger.ms");
        ks_conf_destroy(c);
}
END_TEST

/* What every client the runtime makes is configured with: the consumer and
 * the restore consumer take the consumer side (stream_thread.c,
 * changelog_reader.c), the producer its side, the admin client its own
 * (admin.c), all through ks__rdkafka_conf(). */
START_TEST(security_settings_reach_every_client) {
        static const char *const settings[][2] = {
                {"security.protocol", "sasl_ssl"},
                {"sasl.mechanism", "SCRAM-SHA-512"},
                {"sasl.username", "alice"},
                {"sasl.password", "s3cret"},
                {"ssl.ca.location", "/etc/ssl/ca.pem"},
                {"ssl.key.password", "k3y"},
                {"ssl.endpoint.identification.algorithm", "https"},
        };
        const size_t n = sizeof(settings) / sizeof(*settings);
        ks_conf_t *c   = ks_conf_new();
        char err[256];
        for (size_t i = 0; i < n; i++)
                ck_assert_msg(ks_conf_set(c, settings[i][0], settings[i][1],
                                          err, sizeof(err)) == KS_OK,
                              "%s", err);
        ck_assert_int_eq(ks_conf_set(c, "admin.sasl.username", "admin", err,
                                     sizeof(err)),
                         KS_OK);
        for (int side = KS_CONF_SIDE_CONSUMER; side <= KS_CONF_SIDE_ADMIN;
             side++) {
                rd_kafka_conf_t *rd = rd_kafka_conf_new();
                ks_error_t *e       = ks__rdkafka_conf(c, side, rd);
                ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
                for (size_t i = 0; i < n; i++) {
                        char v[256];
                        size_t len = sizeof(v);
                        ck_assert_int_eq(
                                rd_kafka_conf_get(rd, settings[i][0], v, &len),
                                RD_KAFKA_CONF_OK);
                        const char *want = settings[i][1];
                        if (side == KS_CONF_SIDE_ADMIN &&
                            !strcmp(settings[i][0], "sasl.username"))
                                want = "admin";
                        ck_assert_msg(!strcmp(v, want),
                                      "side %d: %s is \"%s\", not \"%s\"", side,
                                      settings[i][0], v, want);
                }
                rd_kafka_conf_destroy(rd);
        }
        ks_conf_destroy(c);
}
END_TEST

START_TEST(configuration_md_matches_the_property_table) {
        ks_buf_t want = {0};
        ck_assert_int_eq(ks_conf_properties_markdown(&want), KS_OK);
        FILE *f = fopen(KS_SOURCE_DIR "/CONFIGURATION.md", "rb");
        ck_assert_msg(f,
                      "CONFIGURATION.md is missing: run "
                      "build/testkit/kstreams-confdoc > CONFIGURATION.md");
        char *have = calloc(1, want.len + 2);
        size_t n   = fread(have, 1, want.len + 1, f);
        fclose(f);
        ck_assert_msg(n == want.len && !memcmp(have, want.data, want.len),
                      "CONFIGURATION.md is out of date: regenerate it with "
                      "build/testkit/kstreams-confdoc > CONFIGURATION.md");
        free(have);
        ks_buf_free(&want);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("conf");
        TCase *tc = tcase_create("conf");
        tcase_add_test(tc, defaults_and_set_values);
        tcase_add_test(tc, bad_values_are_refused_with_a_reason);
        tcase_add_test(tc,
                       librdkafka_properties_pass_through_and_are_validated);
        tcase_add_test(tc, side_prefixes_reach_one_client_and_override);
        tcase_add_test(tc, security_settings_reach_every_client);
        tcase_add_test(tc, configuration_md_matches_the_property_table);
        suite_add_tcase(s, tc);
        return s;
}
