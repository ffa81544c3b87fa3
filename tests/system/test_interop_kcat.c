/* Wire-format interop with another Kafka client: kcat produces keyed
 * records with headers, a kstreams topology processes them on the real
 * broker, and kcat reads the output: keys, headers, timestamps and the
 * murmur2 partition of every key must come out as other clients expect. */
#include <jansson.h>
#include <kstreams/partitioner.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ks_check.h"
#include "ks_kafka.h"

START_TEST(kcat_to_kstreams_to_kcat) {
        const char *bootstrap = ks_test_require_service("KS_BOOTSTRAP");
        if (!bootstrap)
                return;
        const char *app = kt_unique("interop");
        char in[160], out[160], log[200], cmd[1024];
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(out, sizeof(out), "%s-out", app);
        snprintf(log, sizeof(log), "%s/%s.log", KS_BINARY_DIR, app);
        kt_create_topic(bootstrap, in, 4);
        kt_create_topic(bootstrap, out, 5);

        /* kcat produces 200 keyed records, each with two headers. */
        const int n = 200;
        snprintf(cmd, sizeof(cmd),
                 "kcat -b %s -P -t %s -K '|' -H trace=abc -H origin=kcat "
                 "-X partitioner=murmur2_random",
                 bootstrap, in);
        FILE *p = popen(cmd, "w");
        ck_assert_ptr_nonnull(p);
        for (int i = 0; i < n; i++)
                fprintf(p, "key-%d|{\"id\":%d}\n", i, i);
        ck_assert_int_eq(pclose(p), 0);

        const char *args[] = {"--bootstrap", bootstrap, "--app-id",
                              app,           "--input", in,
                              "--output",    out,       NULL};
        pid_t pid          = kt_spawn_app(log, args);
        kt_record_t *recs;
        size_t cnt = kt_consume_all(bootstrap, out, (size_t)n, 60000, &recs);
        kt_records_free(recs, cnt);
        int st = kt_stop(pid, SIGTERM, 30000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_uint_eq(cnt, (size_t)n);

        /* kcat reads both topics as JSON envelopes. */
        int64_t in_ts[200] = {0};
        snprintf(cmd, sizeof(cmd), "kcat -b %s -C -t %s -e -q -J", bootstrap,
                 in);
        p = popen(cmd, "r");
        char line[4096];
        while (fgets(line, sizeof(line), p)) {
                json_t *env = json_loads(line, 0, NULL);
                int id = atoi(json_string_value(json_object_get(env, "key")) +
                              4);
                in_ts[id] = json_integer_value(json_object_get(env, "ts"));
                json_decref(env);
        }
        pclose(p);
        snprintf(cmd, sizeof(cmd), "kcat -b %s -C -t %s -e -q -J", bootstrap,
                 out);
        p        = popen(cmd, "r");
        int seen = 0;
        while (fgets(line, sizeof(line), p)) {
                json_t *env = json_loads(line, 0, NULL);
                ck_assert_ptr_nonnull(env);
                const char *key =
                        json_string_value(json_object_get(env, "key"));
                ck_assert_ptr_nonnull(key);
                int id = atoi(key + 4);
                ck_assert(id >= 0 && id < n);
                json_t *payload = json_loads(
                        json_string_value(json_object_get(env, "payload")), 0,
                        NULL);
                ck_assert_int_eq(
                        json_integer_value(json_object_get(payload, "id")), id);
                /* The key's partition is the one Java's producer picks. */
                ck_assert_int_eq(
                        json_integer_value(json_object_get(env, "partition")),
                        ks_partition_for_key(key, strlen(key), 5));
                /* The record keeps the input's timestamp and headers. */
                ck_assert_int_eq(json_integer_value(json_object_get(env, "ts")),
                                 in_ts[id]);
                json_t *h = json_object_get(env, "headers");
                ck_assert_msg(json_is_array(h) && json_array_size(h) == 4,
                              "headers: %s", line);
                ck_assert_str_eq(json_string_value(json_array_get(h, 0)),
                                 "trace");
                ck_assert_str_eq(json_string_value(json_array_get(h, 1)),
                                 "abc");
                ck_assert_str_eq(json_string_value(json_array_get(h, 2)),
                                 "origin");
                ck_assert_str_eq(json_string_value(json_array_get(h, 3)),
                                 "kcat");
                json_decref(payload);
                json_decref(env);
                seen++;
        }
        pclose(p);
        ck_assert_int_eq(seen, n);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("interop-kcat");
        TCase *tc = tcase_create("kcat");
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, kcat_to_kstreams_to_kcat);
        suite_add_tcase(s, tc);
        return s;
}
