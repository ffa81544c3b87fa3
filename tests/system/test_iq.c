/* Interactive queries against a real broker: an application thread reads
 * a running instance's count and windowed-count stores by key, by range
 * and by window while the stream threads work; a second instance takes
 * half of the partitions over, after which each key is served by exactly
 * one of them and the other says it does not host it; queries that run
 * through that rebalance never fail with anything but the documented
 * retriable errors. Expected counts are computed here from the produced
 * records, and each key's partition from where the broker put it. */
#include <kstreams/kstreams.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_driver_util.h"
#include "ks_kafka.h"

#define KEYS      24
#define RECORDS   3000
#define PARTS     4
#define WINDOW_MS 60000
#define WINDOWS   5

static const char *bootstrap;
static char topic[200], app_id[160];
static int64_t base; /* the first window's start */
static int64_t counts[KEYS];
static int64_t wcounts[KEYS][WINDOWS];
static int32_t key_partition[KEYS];

static void setup(void) {
        bootstrap = ks_test_require_service("KS_BOOTSTRAP");
}

static int64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Record i: an uneven spread over the keys and over five one-minute
 * windows that end before now (the topic's time retention keeps them). */
static int key_of(int i) {
        return (i * i + i / 7) % KEYS;
}

static int window_of(int i) {
        return (i / 3) % WINDOWS;
}

static void key_name(int k, char *buf, size_t size) {
        snprintf(buf, size, "user-%d", k);
}

static void produce_all(void) {
        char err[256], key[32];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        ck_assert(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err,
                                    sizeof(err)) == RD_KAFKA_CONF_OK);
        ck_assert(rd_kafka_conf_set(c, "partitioner", "murmur2_random", err,
                                    sizeof(err)) == RD_KAFKA_CONF_OK);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_msg(rk, "%s", err);
        for (int i = 0; i < RECORDS; i++) {
                int k = key_of(i), w = window_of(i);
                key_name(k, key, sizeof(key));
                int64_t ts = base + w * WINDOW_MS + (i * 37) % WINDOW_MS;
                counts[k]++;
                wcounts[k][w]++;
                for (;;) {
                        rd_kafka_resp_err_t e = rd_kafka_producev(
                                rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(key, strlen(key)),
                                RD_KAFKA_V_VALUE("v", 1),
                                RD_KAFKA_V_TIMESTAMP(ts),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END);
                        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                ck_assert_msg(!e, "produce: %s",
                                              rd_kafka_err2str(e));
                                break;
                        }
                        rd_kafka_poll(rk, 100);
                }
        }
        ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
        rd_kafka_destroy(rk);
}

/* Where the broker put each key: read back, not computed. */
static void learn_partitions(void) {
        kt_record_t *recs;
        size_t n = kt_consume_all(bootstrap, topic, RECORDS, 60000, &recs);
        ck_assert_uint_eq(n, RECORDS);
        for (int k = 0; k < KEYS; k++)
                key_partition[k] = -1;
        for (size_t i = 0; i < n; i++) {
                int k = atoi(recs[i].key + 5);
                ck_assert(key_partition[k] < 0 ||
                          key_partition[k] == recs[i].partition);
                key_partition[k] = recs[i].partition;
        }
        kt_records_free(recs, n);
}

static ks_topology_t *topology(void) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, topic, ks_serde_string(),
                                            ks_serde_string());
        ks_grouped_count(ks_stream_group_by_key(in, NULL, NULL), "iq-counts");
        ks_windowed_count(
                ks_grouped_windowed_by(ks_stream_group_by_key(in, NULL, NULL),
                                       ks_tumbling_window(WINDOW_MS, 3600000)),
                "iq-wcounts");
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ck_assert_msg(t, "%s", err);
        return t;
}

static ks_streams_t *instance(const ks_topology_t *t,
                              char *state_dir,
                              const char *server) {
        char err[512];
        ks_conf_t *conf = ks_conf_new();
        strcpy(state_dir, "/tmp/ks_iq_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(state_dir));
        ck_assert(
                !ks_conf_set(conf, "application.id", app_id, err, sizeof(err)));
        ck_assert(!ks_conf_set(conf, "bootstrap.servers", bootstrap, err,
                               sizeof(err)));
        ck_assert(!ks_conf_set(conf, "state.dir", state_dir, err, sizeof(err)));
        ck_assert(!ks_conf_set(conf, "application.server", server, err,
                               sizeof(err)));
        ck_assert(!ks_conf_set(conf,
                               "windowstore.changelog.additional.retention.ms",
                               "7200000", err, sizeof(err)));
        ck_assert(!ks_conf_set(conf, "num.stream.threads", "2", err,
                               sizeof(err)));
        ck_assert(!ks_conf_set(conf, "commit.interval.ms", "300", err,
                               sizeof(err)));
        ks_streams_t *s = ks_streams_new(t, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        ck_assert_msg(s, "%s", err);
        return s;
}

static void rm_rf(const char *dir) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd)) {
        }
}

/* A query error while the partitions move must be one of the documented
 * retriable ones, or "not hosted". */
static void expect_transient(ks_error_t *e, const char *what) {
        bool ok = ks_error_is_retriable(e) ||
                  (ks_error_code(e) == KS_ERR_NOT_FOUND &&
                   strstr(ks_error_message(e), "hosted by this instance"));
        ck_assert_msg(ok, "%s: %s", what, ks_error_message(e));
        ks_error_destroy(e);
}

/* The count of key @p k from @p s: 1 found with *v, 0 not hosted here,
 * -1 another transient error. */
static int get_count(ks_streams_t *s, int k, int64_t *v) {
        char key[32];
        ks_buf_t buf = {0};
        bool found;
        key_name(k, key, sizeof(key));
        ks_error_t *e = ks_streams_query_kv_get(
                s, "iq-counts", (ks_bytes_t){key, strlen(key)}, &buf, &found);
        int r = 1;
        if (e) {
                r = ks_error_code(e) == KS_ERR_NOT_FOUND ? 0 : -1;
                expect_transient(e, "kv_get");
        } else if (!found) {
                *v = 0;
        } else {
                ck_assert_uint_eq(buf.len, 8);
                *v = kt_be64(buf.data);
        }
        ks_buf_free(&buf);
        return r;
}

/* Until every key's count is right on the one instance that hosts it
 * (ks_streams_query_key_metadata()), the other says "not hosted", and
 * each instance hosts some keys. */
static void await_counts(ks_streams_t **inst, int ninst) {
        int64_t deadline = wall_ms() + 120000;
        int right        = 0;
        while (wall_ms() < deadline) {
                int hosting[2] = {0, 0};
                right          = 0;
                for (int k = 0; k < KEYS; k++) {
                        char key[32];
                        int hosts = 0, good = 0;
                        key_name(k, key, sizeof(key));
                        for (int i = 0; i < ninst; i++) {
                                ks_key_query_metadata_t md;
                                int64_t v     = -1;
                                ks_error_t *e = ks_streams_query_key_metadata(
                                        inst[i], "iq-counts",
                                        (ks_bytes_t){key, strlen(key)}, &md);
                                ck_assert_msg(!e, "metadata: %s",
                                              ks_error_message(e));
                                ck_assert_int_eq(md.partition_count, PARTS);
                                ck_assert_int_eq(md.partition,
                                                 key_partition[k]);
                                int r = get_count(inst[i], k, &v);
                                hosts += md.hosted;
                                hosting[i] += md.hosted;
                                /* What the metadata says is what a read
                                 * finds, give or take a rebalance. */
                                if (md.hosted && r == 1 && v == counts[k])
                                        good++;
                                if (!md.hosted && r == 0)
                                        good++;
                        }
                        right += hosts == 1 && good == ninst;
                }
                if (right == KEYS && hosting[0] && (ninst == 1 || hosting[1]))
                        return;
                usleep(300 * 1000);
        }
        ck_abort_msg(
                "after 120 s only %d of %d keys have their exact count "
                "on exactly one instance",
                right, KEYS);
}

static void check_range(ks_streams_t *s, int expect_keys) {
        ks_query_iter_t *it;
        ks_bytes_t k, v;
        int seen[KEYS] = {0}, n = 0;
        ks_error_t *e = ks_streams_query_kv_range(
                s, "iq-counts", -1, (ks_bytes_t){0}, (ks_bytes_t){0}, &it);
        ck_assert_msg(!e, "kv_range: %s", ks_error_message(e));
        while (ks_query_iter_next(it, &k, &v)) {
                char key[32];
                ck_assert_uint_lt(k.len, sizeof(key));
                memcpy(key, k.data, k.len);
                key[k.len] = '\0';
                int idx    = atoi(key + 5);
                ck_assert_int_eq(ks_query_iter_partition(it),
                                 key_partition[idx]);
                ck_assert_int_eq(kt_be64(v.data), counts[idx]);
                ck_assert_int_eq(seen[idx]++, 0);
                n++;
        }
        ck_assert_ptr_null(ks_query_iter_error(it));
        ks_query_iter_destroy(it);
        ck_assert_int_eq(n, expect_keys);

        /* One partition and a key range: ["user-1", "user-2"] holds
         * user-1, user-1x and user-2 of that partition. */
        int32_t p = key_partition[1];
        e         = ks_streams_query_kv_range(s, "iq-counts", p,
                                              (ks_bytes_t){"user-1", 6},
                                              (ks_bytes_t){"user-2", 6}, &it);
        ck_assert_msg(!e, "kv_range: %s", ks_error_message(e));
        int want = 0;
        for (int i = 0; i < KEYS; i++) {
                char key[32];
                key_name(i, key, sizeof(key));
                want += key_partition[i] == p && strcmp(key, "user-1") >= 0 &&
                        strcmp(key, "user-2") <= 0;
        }
        n = 0;
        while (ks_query_iter_next(it, &k, &v))
                n++;
        ck_assert_ptr_null(ks_query_iter_error(it));
        ks_query_iter_destroy(it);
        ck_assert_int_eq(n, want);
}

/* Each key's windows, from the instance that hosts it. */
static void check_windows(ks_streams_t **inst, int ninst) {
        for (int k = 0; k < KEYS; k++) {
                char key[32];
                ks_query_iter_t *it;
                ks_bytes_t kb, v;
                int64_t start;
                int64_t got[WINDOWS] = {0};
                ks_streams_t *s      = NULL;
                key_name(k, key, sizeof(key));
                for (int i = 0; i < ninst && !s; i++) {
                        ks_key_query_metadata_t md;
                        ck_assert(!ks_streams_query_key_metadata(
                                inst[i], "iq-wcounts",
                                (ks_bytes_t){key, strlen(key)}, &md));
                        ck_assert_int_eq(md.partition, key_partition[k]);
                        if (md.hosted)
                                s = inst[i];
                }
                ck_assert_msg(s, "no instance hosts %s", key);
                ks_error_t *e = ks_streams_query_window_fetch(
                        s, "iq-wcounts", (ks_bytes_t){key, strlen(key)},
                        base - WINDOW_MS, base + 10 * WINDOW_MS, &it);
                ck_assert_msg(!e, "window_fetch: %s", ks_error_message(e));
                while (ks_query_iter_next_window(it, &kb, &start, &v)) {
                        ck_assert_uint_eq(kb.len, strlen(key));
                        ck_assert_mem_eq(kb.data, key, kb.len);
                        ck_assert_int_eq((start - base) % WINDOW_MS, 0);
                        int w = (int)((start - base) / WINDOW_MS);
                        ck_assert(w >= 0 && w < WINDOWS);
                        got[w] = kt_be64(v.data);
                }
                ck_assert_ptr_null(ks_query_iter_error(it));
                ks_query_iter_destroy(it);
                for (int w = 0; w < WINDOWS; w++)
                        ck_assert_msg(got[w] == wcounts[k][w],
                                      "%s window %d: %lld, expected %lld", key,
                                      w, (long long)got[w],
                                      (long long)wcounts[k][w]);
        }
}

/* Queries an instance in a loop while its tasks move. */
typedef struct hammer_s {
        ks_streams_t *s;
        atomic_bool stop;
        int reads;
} hammer_t;

static void *hammer(void *arg) {
        hammer_t *h = arg;
        while (!atomic_load(&h->stop)) {
                for (int k = 0; k < KEYS; k++) {
                        int64_t v;
                        if (get_count(h->s, k, &v) == 1 && v)
                                ck_assert_int_eq(v, counts[k]);
                        h->reads++;
                }
                ks_query_iter_t *it;
                ks_bytes_t key, val;
                ks_error_t *e = ks_streams_query_kv_range(h->s, "iq-counts", -1,
                                                          (ks_bytes_t){0},
                                                          (ks_bytes_t){0}, &it);
                if (e) {
                        expect_transient(e, "kv_range");
                        continue;
                }
                while (ks_query_iter_next(it, &key, &val))
                        h->reads++;
                if (ks_query_iter_error(it))
                        ck_assert_msg(
                                ks_error_is_retriable(ks_query_iter_error(it)),
                                "%s",
                                ks_error_message(ks_query_iter_error(it)));
                ks_query_iter_destroy(it);
        }
        return NULL;
}

/* One key's owner, asked of @p asked: the server of the instance hosting
 * it (by its own account), local only if that is @p asked. @returns
 * whether it matched (the group may still be settling). */
static bool owner_matches(ks_streams_t *asked,
                          ks_streams_t *a,
                          ks_streams_t *b,
                          const char *key) {
        ks_bytes_t kb = {key, strlen(key)};
        ks_key_query_metadata_t md;
        ks_key_owner_t own;
        ck_assert(!ks_streams_query_key_metadata(a, "iq-counts", kb, &md));
        ks_streams_t *host = md.hosted ? a : b;
        const char *want   = host == a ? "127.0.0.1:7101" : "127.0.0.1:7102";
        ks_error_t *e =
                ks_streams_query_key_owner(asked, "iq-counts", kb, 5000, &own);
        if (e) {
                ck_assert_msg(ks_error_is_retriable(e), "%s",
                              ks_error_message(e));
                ks_error_destroy(e);
                return false;
        }
        ck_assert_int_eq(own.partition, md.partition);
        ck_assert_msg(strstr(own.client_id, want), "client.id %s",
                      own.client_id);
        ck_assert_str_eq(own.host, "127.0.0.1");
        return !strcmp(own.server, want) && own.local == (host == asked);
}

/* Every key's owner, asked of both instances, is the one hosting it. */
static void check_owners(ks_streams_t *a, ks_streams_t *b) {
        for (int k = 0; k < KEYS; k++) {
                char key[32];
                key_name(k, key, sizeof(key));
                for (int i = 0; i < 2; i++) {
                        ks_streams_t *asked = i ? b : a;
                        int tries           = 0;
                        while (!owner_matches(asked, a, b, key)) {
                                ck_assert_msg(++tries < 20,
                                              "the owner of %s never matched",
                                              key);
                                usleep(500000);
                        }
                }
        }
}

static void expect_error(ks_error_t *e, ks_err_t code, const char *text) {
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(
                ks_error_code(e) == code && strstr(ks_error_message(e), text),
                "expected %s (%s), got: %s", ks_err2str(code), text,
                ks_error_message(e));
        ks_error_destroy(e);
}

START_TEST(counts_are_read_by_key_range_and_window_where_hosted) {
        if (!bootstrap)
                return;
        char dir_a[64], dir_b[64];
        ks_buf_t buf = {0};
        bool found;
        ks_query_iter_t *it;
        snprintf(app_id, sizeof(app_id), "%s", kt_unique("iq"));
        snprintf(topic, sizeof(topic), "%s-in", app_id);
        base = (wall_ms() / WINDOW_MS - 20) * WINDOW_MS;
        kt_create_topic(bootstrap, topic, PARTS);
        ks_topology_t *t = topology();
        ks_streams_t *a  = instance(t, dir_a, "127.0.0.1:7101");

        /* Not started: not queryable. */
        expect_error(ks_streams_query_kv_get(a, "iq-counts",
                                             (ks_bytes_t){"user-1", 6}, &buf,
                                             &found),
                     KS_ERR_STATE, "the instance is CREATED");

        ks_error_t *e = ks_streams_start(a);
        ck_assert_msg(!e, "start: %s", ks_error_message(e));
        produce_all();
        learn_partitions();
        ks_streams_t *one[] = {a};
        await_counts(one, 1);

        /* The window store's changelog: compacted and deleted after the
         * store's retention (size + grace) plus the additional retention
         * configured. */
        char changelog[256], val[64];
        snprintf(changelog, sizeof(changelog), "%s-iq-wcounts-changelog",
                 app_id);
        ck_assert(kt_topic_config(bootstrap, changelog, "cleanup.policy", val,
                                  sizeof(val)));
        ck_assert_str_eq(val, "compact,delete");
        ck_assert(kt_topic_config(bootstrap, changelog, "retention.ms", val,
                                  sizeof(val)));
        ck_assert_int_eq(atoll(val), WINDOW_MS + 3600000 + 7200000);
        check_range(a, KEYS);
        check_windows(one, 1);

        /* The documented errors. */
        expect_error(ks_streams_query_kv_get(a, "no-such-store",
                                             (ks_bytes_t){"user-1", 6}, &buf,
                                             &found),
                     KS_ERR_NOT_FOUND, "no store named no-such-store");
        expect_error(ks_streams_query_kv_get(a, "iq-wcounts",
                                             (ks_bytes_t){"user-1", 6}, &buf,
                                             &found),
                     KS_ERR_INVALID_ARG, "is a window store");
        expect_error(ks_streams_query_window_fetch(a, "iq-counts",
                                                   (ks_bytes_t){"user-1", 6}, 0,
                                                   INT64_MAX, &it),
                     KS_ERR_INVALID_ARG, "is a key-value store");
        expect_error(ks_streams_query_kv_range(a, "iq-counts", PARTS + 3,
                                               (ks_bytes_t){0}, (ks_bytes_t){0},
                                               &it),
                     KS_ERR_NOT_FOUND, "is not hosted by this instance");

        /* A second instance takes half of the partitions (4 threads, 4
         * partitions) while a thread keeps querying the first. */
        hammer_t h = {.s = a};
        pthread_t tid;
        ck_assert_int_eq(pthread_create(&tid, NULL, hammer, &h), 0);
        ks_streams_t *b = instance(t, dir_b, "127.0.0.1:7102");
        e               = ks_streams_start(b);
        ck_assert_msg(!e, "start: %s", ks_error_message(e));
        ks_streams_t *two[] = {a, b};
        await_counts(two, 2);
        atomic_store(&h.stop, true);
        pthread_join(tid, NULL);
        fprintf(stderr, "%d reads through the rebalance\n", h.reads);

        /* Each hosts some keys; a key of the other is "not hosted", and
         * not retriable once both are RUNNING. */
        int on_a = 0;
        for (int k = 0; k < KEYS; k++) {
                char key[32];
                ks_key_query_metadata_t md;
                key_name(k, key, sizeof(key));
                ks_bytes_t kb = {key, strlen(key)};
                ck_assert(!ks_streams_query_key_metadata(a, "iq-counts", kb,
                                                         &md));
                on_a += md.hosted;
                ks_streams_t *other = md.hosted ? b : a;
                if (ks_streams_state(other) != KS_STATE_RUNNING)
                        continue;
                e = ks_streams_query_kv_get(other, "iq-counts", kb, &buf,
                                            &found);
                ck_assert_ptr_nonnull(e);
                ck_assert(!ks_error_is_retriable(e));
                expect_error(e, KS_ERR_NOT_FOUND,
                             "is not hosted by this instance");
        }
        ck_assert_int_gt(on_a, 0);
        ck_assert_int_lt(on_a, KEYS);
        check_owners(a, b);
        check_windows(two, 2);

        ck_assert_ptr_null(ks_streams_close(b, 30000));
        ck_assert_ptr_null(ks_streams_close(a, 30000));
        expect_error(ks_streams_query_kv_get(a, "iq-counts",
                                             (ks_bytes_t){"user-1", 6}, &buf,
                                             &found),
                     KS_ERR_STATE, "NOT_RUNNING");
        ks_streams_destroy(b);
        ks_streams_destroy(a);
        ks_topology_destroy(t);
        ks_buf_free(&buf);
        rm_rf(dir_a);
        rm_rf(dir_b);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("iq");
        TCase *tc = tcase_create("iq");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 280);
        tcase_add_test(tc,
                       counts_are_read_by_key_range_and_window_where_hosted);
        suite_add_tcase(s, tc);
        return s;
}
