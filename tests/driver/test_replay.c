/* Golden replay: a kcat -J dump through a three-stage topology with a
 * repartition, output compared byte for byte with an expected file computed
 * independently (tests/data/user-activity/make_expected.py). Plus
 * repartitioning across partitions with per-task stream time. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"

static bool valid_event(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return json_is_string(json_object_get(v, "user_id")) &&
               json_is_string(json_object_get(v, "event_type"));
}

static const void *user_of(ks_arena_t *a,
                           const void *k,
                           const void *v,
                           void *o) {
        (void)a, (void)k, (void)o;
        /* A borrowed slice of the value: it lives as long as the record. */
        return json_string_value(json_object_get(v, "user_id"));
}

static const void *summary(ks_arena_t *a,
                           const void *k,
                           const void *v,
                           void *o) {
        (void)k, (void)o;
        const char *page = json_string_value(json_object_get(v, "page"));
        const char *type = json_string_value(json_object_get(v, "event_type"));
        size_t n         = strlen(type) + (page ? strlen(page) : 1) + 2;
        char *s          = ks_arena_alloc(a, n);
        snprintf(s, n, "%s %s", type, page ? page : "-");
        return s;
}

static ks_topology_t *activity_topology(void) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *ev = ks_builder_stream(b, "user-events", ks_serde_string(),
                                            ks_serde_json());
        ev              = ks_stream_with_timestamps(
                             ev, ks_timestamp_extractor_json_field("timestamp", err,
                                                                   sizeof(err)));
        ks_stream_t *valid = ks_stream_filter(ev, "valid", valid_event, NULL);
        ks_stream_t *keyed =
                ks_stream_select_key(valid, "by-user-key", user_of, NULL);
        ks_stream_t *byuser = ks_stream_repartition(keyed, "by-user",
                                                    ks_serde_string(), NULL, 4);
        ks_stream_to(ks_stream_map_values(byuser, "summary", summary, NULL),
                     "user-activity", NULL, ks_serde_string());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(t, "%s", err);
        ks_builder_destroy(b);
        return t;
}

static char *slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *s = malloc((size_t)n + 1);
        ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
        s[n] = '\0';
        fclose(f);
        *len = (size_t)n;
        return s;
}

START_TEST(golden_replay_through_a_repartition_matches_exactly) {
        char err[512];
        ks_topology_t *t = activity_topology();
        ks_conf_t *conf  = ks_conf_new();
        ck_assert_int_eq(ks_conf_set(conf, "application.id", "activity", err,
                                     sizeof(err)),
                         KS_OK);
        ks_conf_set(conf, "default.deserialization.exception.handler",
                    "log-and-continue", err, sizeof(err));
        ks_test_driver_t *drv = ks_test_driver_new(t, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        ks_test_driver_create_topic(drv, "user-events", 2);
        ks_test_driver_create_topic(drv, "user-activity", 3);

        FILE *in = fopen(KS_TEST_DATA_DIR "/user-activity/input.jsonl", "r");
        ck_assert_ptr_nonnull(in);
        size_t n      = 0;
        ks_error_t *e = ks_test_driver_replay_jsonl(drv, in, NULL, &n);
        fclose(in);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        ck_assert_uint_eq(n, 60);

        char *out_buf  = NULL;
        size_t out_len = 0;
        FILE *out      = open_memstream(&out_buf, &out_len);
        e              = ks_test_driver_dump_jsonl(drv, "user-activity", out);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        fclose(out);
        size_t want_len;
        char *want = slurp(KS_TEST_DATA_DIR "/user-activity/expected.jsonl",
                           &want_len);
        ck_assert_str_eq(out_buf, want);

        /* The repartition topic is real: 4 partitions, named after the
         * application, and every one of its tasks ran. */
        ck_assert_int_eq(
                ks_test_driver_partitions(drv, "activity-by-user-repartition"),
                4);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "tasks"), 2 + 4);
        /* Every undecodable input was counted (and none of the filtered
         * ones): count them in the input independently. */
        size_t in_len, undecodable = 0;
        char *input =
                slurp(KS_TEST_DATA_DIR "/user-activity/input.jsonl", &in_len);
        for (char *line = strtok(input, "\n"); line;
             line       = strtok(NULL, "\n")) {
                json_t *env = json_loads(line, 0, NULL);
                json_t *v   = json_loads(
                          json_string_value(json_object_get(env, "payload")), 0,
                          NULL);
                undecodable += v == NULL;
                json_decref(v);
                json_decref(env);
        }
        free(input);
        ck_assert_uint_gt(undecodable, 0);
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-deserialization"),
                          undecodable);
        free(out_buf);
        free(want);
        ks_test_driver_destroy(drv);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(repartition_routes_keys_and_keeps_per_task_stream_time) {
        char err[512];
        ks_topology_t *t      = activity_topology();
        ks_test_driver_t *drv = ks_test_driver_new(t, NULL, err, sizeof(err));
        ks_test_driver_create_topic(drv, "user-events", 1);
        const char *ev1 =
                "{\"user_id\":\"alice\",\"event_type\":\"a\","
                "\"timestamp\":\"2025-01-01T00:00:10Z\"}";
        const char *ev2 =
                "{\"user_id\":\"bob\",\"event_type\":\"b\","
                "\"timestamp\":\"2025-01-01T00:00:05Z\"}";
        ck_assert_ptr_null(
                ks_test_driver_pipe_str(drv, "user-events", NULL, ev1, 0));
        ck_assert_ptr_null(
                ks_test_driver_pipe_str(drv, "user-events", NULL, ev2, 0));
        ks_test_record_t r;
        int32_t pa = -1, pb = -1;
        while (ks_test_driver_read(drv, "test-driver-by-user-repartition",
                                   &r)) {
                ck_assert_int_eq(
                        r.partition,
                        ks_partition_for_key(r.key.data, r.key.len, 4));
                if (!strcmp(r.key.data, "alice"))
                        pa = r.partition;
                else
                        pb = r.partition;
        }
        ck_assert(pa >= 0 && pb >= 0);
        /* Stream time is per task: the source task saw both, each
         * downstream task only its own key's record. */
        ck_assert_int_eq(ks_test_driver_stream_time(drv, 0, 0), 1735689610000);
        if (pa != pb) {
                ck_assert_int_eq(ks_test_driver_stream_time(drv, 1, pa),
                                 1735689610000);
                ck_assert_int_eq(ks_test_driver_stream_time(drv, 1, pb),
                                 1735689605000);
        }
        ks_test_driver_destroy(drv);
        ks_topology_destroy(t);
}
END_TEST

/* Per-key order across a repartition: every key's records arrive in the
 * order they were written, whatever partitions they cross. */
START_TEST(repartition_keeps_per_key_order) {
        char err[512];
        ks_topology_t *t      = activity_topology();
        ks_test_driver_t *drv = ks_test_driver_new(t, NULL, err, sizeof(err));
        ks_test_driver_create_topic(drv, "user-events", 3);
        ks_test_driver_create_topic(drv, "user-activity", 2);
        for (int i = 0; i < 300; i++) {
                char ev[256];
                snprintf(ev, sizeof(ev),
                         "{\"user_id\":\"u%d\",\"event_type\":\"%d\","
                         "\"timestamp\":%d}",
                         i % 7, i, 1000 + i);
                char key[16];
                snprintf(key, sizeof(key), "src%d", i % 11);
                ck_assert_ptr_null(ks_test_driver_pipe_str(drv, "user-events",
                                                           key, ev, 0));
        }
        int last[7] = {-1, -1, -1, -1, -1, -1, -1};
        ks_test_record_t r;
        int n = 0;
        while (ks_test_driver_read(drv, "user-activity", &r)) {
                int user = atoi((const char *)r.key.data + 1);
                int seq  = atoi(r.value.data);
                ck_assert_int_gt(seq, last[user]);
                last[user] = seq;
                n++;
        }
        ck_assert_int_eq(n, 300);
        ks_test_driver_destroy(drv);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(describe_shows_two_subtopologies_around_the_repartition) {
        ks_topology_t *t = activity_topology();
        ks_buf_t d       = {0};
        ks_topology_describe(t, &d);
        ck_assert_int_eq(ks_topology_subtopology_count(t), 2);
        ck_assert_msg(strstr(d.data,
                             "   Sub-topology: 1\n"
                             "    Source: by-user-repartition-source "
                             "(topics: [by-user-repartition])\n"),
                      "%s", d.data);
        ck_assert(strstr(d.data,
                         "Sink: by-user-repartition-sink (topic: "
                         "by-user-repartition)"));
        ks_buf_clear(&d);
        ks_topology_describe_mermaid(t, &d);
        ck_assert(strstr(d.data, "flowchart TD"));
        ck_assert(strstr(d.data, "subgraph sub1"));
        ks_buf_free(&d);
        ks_topology_destroy(t);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("replay");
        TCase *tc = tcase_create("replay");
        tcase_add_test(tc, golden_replay_through_a_repartition_matches_exactly);
        tcase_add_test(tc,
                       repartition_routes_keys_and_keeps_per_task_stream_time);
        tcase_add_test(tc, repartition_keeps_per_key_order);
        tcase_add_test(tc,
                       describe_shows_two_subtopologies_around_the_repartition);
        suite_add_tcase(s, tc);
        return s;
}
