/* The metrics exposition: the Prometheus text the writer makes parses
 * back strictly (tests/common/ks_prom.c) and promtool accepts it; label
 * values round-trip through escaping; histogram buckets count what was
 * observed; the descriptor table covers every field of the public struct;
 * ks_streams_metrics_get() honours the caller's size. */
#include <kstreams/kstreams.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_prom.h"
#include "metrics_int.h"

/* promtool check metrics on @p text: its exit status (-1: no promtool). */
static int promtool(const char *text, char *out, size_t out_size) {
        if (system("command -v promtool >/dev/null 2>&1"))
                return -1;
        char path[] = "/tmp/ks-metrics-XXXXXX";
        int fd      = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        fputs(text, f);
        fclose(f);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
        FILE *p  = popen(cmd, "r");
        size_t n = fread(out, 1, out_size - 1, p);
        out[n]   = '\0';
        int rc   = pclose(p);
        unlink(path);
        return rc;
}

START_TEST(label_values_round_trip_through_escaping) {
        const char *values[] = {"plain",     "back\\slash",   "a \"quote\"",
                                "new\nline", "all \\\"\n\\n", ""};
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                ks_buf_t labels = {0}, text = {0};
                ck_assert_int_eq(ks__prom_label(&labels, "topic", values[i]),
                                 KS_OK);
                ck_assert_int_eq(ks__prom_label(&labels, "partition", "3"),
                                 KS_OK);
                ks__prom_header(&text, "x_total", "help with \\ and\nnewline",
                                KS_METRIC_COUNTER);
                ks__prom_sample(&text, "x_total", "", labels.data, 7);
                kp_doc_t doc;
                char why[256];
                ck_assert_msg(kp_parse(text.data, &doc, why, sizeof(why)),
                              "%s in\n%s", why, text.data);
                ck_assert_uint_eq(doc.cnt, 1);
                ck_assert_str_eq(doc.samples[0].name, "kstreams_x_total");
                ck_assert_str_eq(kp_label(&doc.samples[0], "topic"), values[i]);
                ck_assert_str_eq(kp_label(&doc.samples[0], "partition"), "3");
                ck_assert(doc.samples[0].value == 7);
                char out[4096];
                int rc = promtool(text.data, out, sizeof(out));
                ck_assert_msg(rc <= 0, "promtool: %s\n%s", out, text.data);
                kp_free(&doc);
                ks_buf_free(&labels);
                ks_buf_free(&text);
        }
}
END_TEST

START_TEST(histogram_buckets_count_the_observations) {
        /* Observations in ms; the expected cumulative count of each bucket
         * is counted here directly: those <= bound. */
        const int64_t obs[] = {0,    1,  2,     3,      5,      7,
                               10,   11, 99,    100,    250,    1000,
                               1001, -4, 60000, 300000, 300001, 999999};
        size_t n            = sizeof(obs) / sizeof(obs[0]);
        ks_histogram_t h;
        memset(&h, 0, sizeof(h));
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
                ks__hist_observe_ms(&h, obs[i]);
                sum += (uint64_t)(obs[i] < 0 ? 0 : obs[i]);
        }
        ks_buf_t text = {0};
        ks__prom_header(&text, "lat_seconds", "latency", KS_METRIC_HISTOGRAM);
        ks__prom_histogram(&text, "lat_seconds", "thread=\"t1\"", &h);
        kp_doc_t doc;
        char why[256];
        ck_assert_msg(kp_parse(text.data, &doc, why, sizeof(why)), "%s", why);
        int buckets = 0;
        for (size_t i = 0; i < doc.cnt; i++) {
                const kp_sample_t *s = &doc.samples[i];
                if (strcmp(s->name, "kstreams_lat_seconds_bucket"))
                        continue;
                const char *le = kp_label(s, "le");
                double bound   = !strcmp(le, "+Inf") ? 1e300 : atof(le);
                uint64_t want  = 0;
                for (size_t k = 0; k < n; k++)
                        want += (obs[k] < 0 ? 0 : obs[k]) <=
                                bound * 1000 + 1e-6;
                ck_assert_msg(s->value == (double)want, "le=%s: %g, want %llu",
                              le, s->value, (unsigned long long)want);
                buckets++;
        }
        ck_assert_int_eq(buckets, KS_HIST_BUCKETS + 1);
        ck_assert(kp_sum(&doc, "kstreams_lat_seconds_count", NULL, NULL,
                         NULL) == (double)n);
        ck_assert_double_eq_tol(
                kp_sum(&doc, "kstreams_lat_seconds_sum", NULL, NULL, NULL),
                (double)sum / 1000.0, 1e-6);
        char out[4096];
        ck_assert_msg(promtool(text.data, out, sizeof(out)) <= 0, "%s", out);
        kp_free(&doc);
        ks_buf_free(&text);
}
END_TEST

START_TEST(the_table_covers_every_field_once) {
        size_t words = sizeof(ks_streams_metrics_t) / sizeof(uint64_t);
        int *seen    = calloc(words, sizeof(int));
        for (size_t i = 0; i < ks__metric_desc_cnt; i++) {
                const ks_metric_desc_t *d = &ks__metric_descs[i];
                ck_assert_msg(d->field != KS_NO_FIELD || d->emit, "%s",
                              d->name);
                if (d->field != KS_NO_FIELD) {
                        ck_assert_uint_eq(d->field % sizeof(uint64_t), 0);
                        seen[d->field / sizeof(uint64_t)]++;
                }
                /* Prometheus conventions: counters end in _total. */
                size_t l = strlen(d->name);
                if (d->type == KS_METRIC_COUNTER)
                        ck_assert_msg(
                                l > 6 && !strcmp(d->name + l - 6, "_total"),
                                "%s", d->name);
                /* A family's first line carries its help. */
                if (!i || strcmp(ks__metric_descs[i - 1].name, d->name))
                        ck_assert_ptr_nonnull(d->help);
        }
        for (size_t w = 0; w < words; w++)
                ck_assert_msg(seen[w] == 1,
                              "field %zu of ks_streams_metrics_t has %d lines "
                              "in ks__metric_descs (metrics.c)",
                              w, seen[w]);
        free(seen);
}
END_TEST

static ks_streams_t *new_instance(ks_topology_t **tp, ks_conf_t **cp) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(ks_builder_stream(b, "in", ks_serde_string(),
                                       ks_serde_string()),
                     "out", NULL, NULL);
        *tp = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        *cp = ks_conf_new();
        ks_conf_set(*cp, "application.id", "app \"quoted\"\\", err,
                    sizeof(err));
        ks_conf_set(*cp, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
        return ks_streams_new(*tp, *cp, err, sizeof(err));
}

START_TEST(an_instance_exposes_valid_text) {
        ks_topology_t *t;
        ks_conf_t *c;
        ks_streams_t *s = new_instance(&t, &c);
        ck_assert_ptr_nonnull(s);
        ks_buf_t text = {0};
        ck_assert_int_eq(ks_streams_metrics_prometheus(s, &text), KS_OK);
        kp_doc_t doc;
        char why[256];
        ck_assert_msg(kp_parse(text.data, &doc, why, sizeof(why)), "%s\n%s",
                      why, text.data);
        /* One state gauge per state, CREATED the one set. */
        int n;
        ck_assert(kp_sum(&doc, "kstreams_state", NULL, NULL, &n) == 1);
        ck_assert_int_eq(n, 6);
        ck_assert(kp_sum(&doc, "kstreams_state", "state", "CREATED", NULL) ==
                  1);
        ck_assert_str_eq(kp_label(&doc.samples[0], "application_id"),
                         "app \"quoted\"\\");
        char out[4096];
        ck_assert_msg(promtool(text.data, out, sizeof(out)) <= 0, "%s", out);
        ck_assert_int_eq(ks_streams_http_port(s), -1);
        kp_free(&doc);
        ks_buf_free(&text);
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(the_getter_fills_only_the_callers_size) {
        ks_topology_t *t;
        ks_conf_t *c;
        ks_streams_t *s = new_instance(&t, &c);
        /* An older, smaller struct: nothing past it is written. */
        unsigned char buf[sizeof(ks_streams_metrics_t) + 64];
        memset(buf, 0xAB, sizeof(buf));
        ks_streams_metrics_get(s, (ks_streams_metrics_t *)buf, 8);
        for (size_t i = 0; i < 8; i++)
                ck_assert_uint_eq(buf[i], 0);
        for (size_t i = 8; i < sizeof(buf); i++)
                ck_assert_uint_eq(buf[i], 0xAB);
        /* A newer, larger one: what this library does not know is 0. */
        memset(buf, 0xAB, sizeof(buf));
        ks_streams_metrics_get(s, (ks_streams_metrics_t *)buf, sizeof(buf));
        for (size_t i = 0; i < sizeof(buf); i++)
                ck_assert_uint_eq(buf[i], 0);
        ks_streams_metrics_t m;
        memset(&m, 0xAB, sizeof(m));
        ks_streams_metrics(s, &m); /* the macro: the full struct */
        ck_assert_uint_eq(m.process_time_us, 0);
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(http_listen_is_checked) {
        char err[256];
        ks_conf_t *c = ks_conf_new();
        ck_assert_int_eq(
                ks_conf_set(c, "http.listen", "127.0.0.1:0", err, sizeof(err)),
                KS_OK);
        ck_assert_int_ne(
                ks_conf_set(c, "http.listen", "nohost", err, sizeof(err)),
                KS_OK);
        ck_assert_str_eq(err, "http.listen: \"nohost\" is not host:port");
        ck_assert_int_ne(
                ks_conf_set(c, "application.server", "h:0", err, sizeof(err)),
                KS_OK);
        ks_conf_destroy(c);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("metrics");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, label_values_round_trip_through_escaping);
        tcase_add_test(tc, histogram_buckets_count_the_observations);
        tcase_add_test(tc, the_table_covers_every_field_once);
        tcase_add_test(tc, an_instance_exposes_valid_text);
        tcase_add_test(tc, the_getter_fills_only_the_callers_size);
        tcase_add_test(tc, http_listen_is_checked);
        suite_add_tcase(s, tc);
        return s;
}
