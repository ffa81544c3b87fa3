/* Interoperability with Java clients on a real broker:
 *  - our ks_partition_for_key() puts every key on the partition Java's
 *    default partitioner picked (records produced by Kafka's own
 *    ConsoleProducer, read back with kcat);
 *  - headers, keys (empty and null), null values and timestamps survive a
 *    kcat roundtrip exactly as its -J envelope shows them, the format the
 *    test driver's replay files follow (infra/README.md). */
#include <jansson.h>
#include <kstreams/partitioner.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "ks_check.h"

#define N_RECORDS    200
#define N_PARTITIONS 6

static int64_t wall_ms(void) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void unique_topic(char *buf, size_t size, const char *prefix) {
        static int seq;
        snprintf(buf, size, "%s-%d-%lld-%d", prefix, (int)getpid(),
                 (long long)wall_ms(), seq++);
}

/* Runs a shell command; fails the test with its exit status if not 0. */
static void run(const char *what, const char *cmd) {
        int rc = system(cmd);
        ck_assert_msg(rc == 0, "%s failed (status %d): %s", what, rc, cmd);
}

static void create_topic(const char *bootstrap,
                         const char *topic,
                         int partitions,
                         const char *extra) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "bash '%s/infra/kafka/kafka.sh' topics --bootstrap-server "
                 "'%s' --create --topic '%s' --partitions %d "
                 "--replication-factor 1 %s >/dev/null",
                 KS_SOURCE_DIR, bootstrap, topic, partitions,
                 extra ? extra : "");
        run("TopicCommand --create", cmd);
}

static void delete_topic(const char *bootstrap, const char *topic) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "bash '%s/infra/kafka/kafka.sh' topics --bootstrap-server "
                 "'%s' --delete --topic '%s' >/dev/null 2>&1",
                 KS_SOURCE_DIR, bootstrap, topic);
        if (system(cmd) != 0)
                fprintf(stderr, "note: deleting topic %s failed\n", topic);
}

/* Reads the whole topic with `kcat -C -J -e`: one JSON object per line.
 * @returns a new JSON array of the parsed envelopes. */
static json_t *kcat_read_all(const char *bootstrap,
                             const char *topic,
                             const char *extra) {
        char cmd[1024], line[8192];
        json_t *arr = json_array();
        snprintf(cmd, sizeof(cmd),
                 "kcat -b '%s' -C -t '%s' -o beginning -e -J -q -m 15 %s",
                 bootstrap, topic, extra ? extra : "");
        FILE *p = popen(cmd, "r");
        ck_assert_msg(p, "popen %s", cmd);
        while (fgets(line, sizeof(line), p)) {
                json_error_t err;
                json_t *v = json_loads(line, 0, &err);
                ck_assert_msg(v,
                              "kcat -J printed a line that is not JSON "
                              "(%s): %s",
                              err.text, line);
                json_array_append_new(arr, v);
        }
        int rc = pclose(p);
        ck_assert_msg(rc == 0, "kcat -C exited with status %d", rc);
        return arr;
}

/* Keys of several shapes: ASCII, digits, UTF-8, long, with spaces, empty. */
static void make_key(int i, char *buf, size_t size) {
        switch (i % 6) {
        case 0:
                snprintf(buf, size, "user-%d", i);
                break;
        case 1:
                snprintf(buf, size, "%d", i * 7919);
                break;
        case 2:
                snprintf(buf, size, "cl\xc3\xa9-%d-\xc3\xbc\xe2\x82\xac", i);
                break;
        case 3:
                snprintf(buf, size,
                         "a-rather-long-key-to-cross-several-murmur2-blocks-"
                         "%d-0123456789abcdefghijklmnopqrstuvwxyz",
                         i);
                break;
        case 4:
                snprintf(buf, size, "key with spaces %d", i);
                break;
        default:
                /* one empty key (Java hashes the empty array), the rest
                 * short */
                if (i == 5)
                        buf[0] = '\0';
                else
                        snprintf(buf, size, "k%d", i);
                break;
        }
}

START_TEST(java_default_partitioner_equals_ks_partition_for_key) {
        const char *bootstrap = ks_test_require_service("KS_BOOTSTRAP");
        if (!bootstrap)
                return;
        char topic[128], path[] = "/tmp/ks-interop-XXXXXX", key[256], cmd[2048];
        unique_topic(topic, sizeof(topic), "interop-partitioning");
        create_topic(bootstrap, topic, N_PARTITIONS, NULL);

        /* ConsoleProducer input, parse.key and parse.headers:
         * "hk:java,idx:<i>" TAB key TAB value */
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        for (int i = 0; i < N_RECORDS; i++) {
                make_key(i, key, sizeof(key));
                fprintf(f, "hk:java,idx:%d\t%s\tvalue-%d\n", i, key, i);
        }
        fclose(f);
        snprintf(cmd, sizeof(cmd),
                 "bash '%s/infra/kafka/kafka.sh' run-class "
                 "org.apache.kafka.tools.ConsoleProducer --bootstrap-server "
                 "'%s' --topic '%s' --property parse.key=true --property "
                 "parse.headers=true < '%s'",
                 KS_SOURCE_DIR, bootstrap, topic, path);
        run("Java ConsoleProducer", cmd);
        unlink(path);

        json_t *recs = kcat_read_all(bootstrap, topic, NULL);
        ck_assert_int_eq((int)json_array_size(recs), N_RECORDS);
        int seen[N_RECORDS] = {0}, per_partition[N_PARTITIONS] = {0};
        int mismatches = 0;
        size_t idx;
        json_t *r;
        json_array_foreach(recs, idx, r) {
                const char *k = json_string_value(json_object_get(r, "key"));
                size_t klen   = json_string_length(json_object_get(r, "key"));
                int part      = (int)json_integer_value(
                             json_object_get(r, "partition"));
                const char *payload =
                        json_string_value(json_object_get(r, "payload"));
                ck_assert_msg(k && payload, "record without key or payload");
                int i = -1;
                ck_assert_int_eq(sscanf(payload, "value-%d", &i), 1);
                ck_assert(i >= 0 && i < N_RECORDS);
                seen[i]++;
                make_key(i, key, sizeof(key));
                ck_assert_str_eq(k, key);
                ck_assert(part >= 0 && part < N_PARTITIONS);
                per_partition[part]++;
                int ours = ks_partition_for_key(k, klen, N_PARTITIONS);
                if (ours != part) {
                        if (mismatches++ < 10)
                                fprintf(stderr,
                                        "key '%s' (%zu bytes): Java put it "
                                        "on %d, ks_partition_for_key says "
                                        "%d\n",
                                        k, klen, part, ours);
                }
                /* Java's headers, as kcat shows them: a flat array. */
                char want[64];
                snprintf(want, sizeof(want), "%d", i);
                json_t *h = json_object_get(r, "headers");
                ck_assert_msg(json_is_array(h) && json_array_size(h) == 4,
                              "record %d: headers not a 4-element array", i);
                ck_assert_str_eq(json_string_value(json_array_get(h, 0)), "hk");
                ck_assert_str_eq(json_string_value(json_array_get(h, 1)),
                                 "java");
                ck_assert_str_eq(json_string_value(json_array_get(h, 2)),
                                 "idx");
                ck_assert_str_eq(json_string_value(json_array_get(h, 3)), want);
        }
        ck_assert_msg(mismatches == 0,
                      "%d of %d keys are on another partition than "
                      "ks_partition_for_key() computes",
                      mismatches, N_RECORDS);
        for (int i = 0; i < N_RECORDS; i++)
                ck_assert_msg(seen[i] == 1, "record %d seen %d times", i,
                              seen[i]);
        /* 200 keys over 6 partitions: a partitioner that sends everything
         * to one place would make the comparison above meaningless. */
        for (int p = 0; p < N_PARTITIONS; p++)
                ck_assert_msg(per_partition[p] > 0, "partition %d got no key",
                              p);
        json_decref(recs);
        delete_topic(bootstrap, topic);
}
END_TEST

static json_t *headers_of(json_t *rec) {
        return json_object_get(rec, "headers");
}

START_TEST(kcat_envelope_keeps_keys_headers_and_timestamps) {
        const char *bootstrap = ks_test_require_service("KS_BOOTSTRAP");
        if (!bootstrap)
                return;
        char topic[128], cmd[2048];
        unique_topic(topic, sizeof(topic), "interop-envelope");
        create_topic(bootstrap, topic, 1, NULL);

        int64_t before = wall_ms();
        /* 0: key, value, repeated and empty headers; a header without '='
         *    has a null value */
        snprintf(cmd, sizeof(cmd),
                 "printf 'k1:v1\\n' | kcat -b '%s' -P -t '%s' -K: -H a=1 "
                 "-H a=2 -H empty= -H nullhdr",
                 bootstrap, topic);
        run("kcat -P (headers)", cmd);
        /* 1: null key (no -K) */
        snprintf(cmd, sizeof(cmd),
                 "printf 'nokey\\n' | kcat -b '%s' -P -t '%s'", bootstrap,
                 topic);
        run("kcat -P (null key)", cmd);
        /* 2: empty key */
        snprintf(cmd, sizeof(cmd),
                 "printf ':emptykey\\n' | kcat -b '%s' -P -t '%s' -K:",
                 bootstrap, topic);
        run("kcat -P (empty key)", cmd);
        /* 3: null value: -Z makes an empty value null (and an empty key
         *    too, so this one has a key) */
        snprintf(cmd, sizeof(cmd),
                 "printf 'tomb:\\n' | kcat -b '%s' -P -t '%s' -K: -Z",
                 bootstrap, topic);
        run("kcat -P (null value)", cmd);
        int64_t after = wall_ms();

        json_t *recs = kcat_read_all(bootstrap, topic, NULL);
        ck_assert_int_eq((int)json_array_size(recs), 4);
        json_t *r0 = json_array_get(recs, 0), *r1 = json_array_get(recs, 1),
               *r2 = json_array_get(recs, 2), *r3 = json_array_get(recs, 3);

        /* The envelope's fields. */
        ck_assert_str_eq(json_string_value(json_object_get(r0, "topic")),
                         topic);
        ck_assert_int_eq(json_integer_value(json_object_get(r0, "partition")),
                         0);
        ck_assert_int_eq(json_integer_value(json_object_get(r3, "offset")), 3);
        ck_assert(json_is_integer(json_object_get(r0, "broker")));

        /* Headers: a flat [name, value, ...] array in produce order,
         * repeated names kept, "" for an empty value, null for none. */
        json_t *h = headers_of(r0);
        ck_assert_msg(json_is_array(h) && json_array_size(h) == 8,
                      "headers of record 0: %s", json_dumps(h, JSON_COMPACT));
        const char *want[] = {"a", "1", "a", "2", "empty", "", "nullhdr"};
        for (size_t i = 0; i < 7; i++)
                ck_assert_str_eq(json_string_value(json_array_get(h, i)),
                                 want[i]);
        ck_assert(json_is_null(json_array_get(h, 7)));
        /* A record without headers has no "headers" member at all. */
        ck_assert_ptr_null(headers_of(r1));

        /* Keys and values: null is JSON null, empty is "". */
        ck_assert_str_eq(json_string_value(json_object_get(r0, "key")), "k1");
        ck_assert_str_eq(json_string_value(json_object_get(r0, "payload")),
                         "v1");
        ck_assert(json_is_null(json_object_get(r1, "key")));
        ck_assert_str_eq(json_string_value(json_object_get(r1, "payload")),
                         "nokey");
        ck_assert_str_eq(json_string_value(json_object_get(r2, "key")), "");
        ck_assert_str_eq(json_string_value(json_object_get(r3, "key")), "tomb");
        ck_assert(json_is_null(json_object_get(r3, "payload")));

        /* Timestamps: CreateTime set by the producer, in ms since the
         * epoch, within the time we produced. */
        size_t i;
        json_t *r;
        json_array_foreach(recs, i, r) {
                ck_assert_str_eq(
                        json_string_value(json_object_get(r, "tstype")),
                        "create");
                int64_t ts = json_integer_value(json_object_get(r, "ts"));
                ck_assert_msg(ts >= before - 1000 && ts <= after + 1000,
                              "record %zu: ts %lld not within [%lld, %lld]", i,
                              (long long)ts, (long long)before,
                              (long long)after);
        }
        json_decref(recs);
        delete_topic(bootstrap, topic);

        /* A LogAppendTime topic: the broker's time, tstype "logappend". */
        unique_topic(topic, sizeof(topic), "interop-logappend");
        create_topic(bootstrap, topic, 1,
                     "--config message.timestamp.type=LogAppendTime");
        before = wall_ms();
        snprintf(cmd, sizeof(cmd), "echo x | kcat -b '%s' -P -t '%s'",
                 bootstrap, topic);
        run("kcat -P (LogAppendTime)", cmd);
        after = wall_ms();
        recs  = kcat_read_all(bootstrap, topic, NULL);
        ck_assert_int_eq((int)json_array_size(recs), 1);
        r = json_array_get(recs, 0);
        ck_assert_str_eq(json_string_value(json_object_get(r, "tstype")),
                         "logappend");
        int64_t ts = json_integer_value(json_object_get(r, "ts"));
        ck_assert(ts >= before - 1000 && ts <= after + 1000);
        json_decref(recs);
        delete_topic(bootstrap, topic);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("interop_partitioning");
        TCase *tc = tcase_create("java_and_kcat");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc,
                       java_default_partitioner_equals_ks_partition_for_key);
        tcase_add_test(tc, kcat_envelope_keeps_keys_headers_and_timestamps);
        suite_add_tcase(s, tc);
        return s;
}
