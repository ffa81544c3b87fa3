#include "ks_kafka.h"

#include "ks_driver_util.h"

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rd_kafka_t *client(rd_kafka_type_t type,
                          const char *bootstrap,
                          const char *group) {
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        ck_assert(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err,
                                    sizeof(err)) == RD_KAFKA_CONF_OK);
        rd_kafka_conf_set(c, "partitioner", "murmur2_random", err, sizeof(err));
        rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
        /* Idempotence keeps each partition in production order through
         * retries: without it a batch refused while a new topic's leader
         * is elected was appended after later ones, and tests that expect
         * "the last value per key" (test_pg_sink) failed 1 run in 8. */
        if (type == RD_KAFKA_PRODUCER)
                rd_kafka_conf_set(c, "enable.idempotence", "true", err,
                                  sizeof(err));
        if (group) {
                rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
                rd_kafka_conf_set(c, "enable.auto.commit", "false", err,
                                  sizeof(err));
                rd_kafka_conf_set(c, "isolation.level", "read_committed", err,
                                  sizeof(err));
        }
        rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
        ck_assert_msg(rk, "rd_kafka_new: %s", err);
        return rk;
}

void kt_create_topic(const char *bootstrap, const char *topic, int partitions) {
        kt_create_topic_config(bootstrap, topic, partitions, NULL, false);
}

void kt_create_topic_config(const char *bootstrap,
                            const char *topic,
                            int partitions,
                            const char *const *config,
                            bool fresh) {
        char err[256];
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        rd_kafka_NewTopic_t *t =
                rd_kafka_NewTopic_new(topic, partitions, -1, err, sizeof(err));
        for (int i = 0; config && config[i]; i += 2)
                rd_kafka_NewTopic_set_config(t, config[i], config[i + 1]);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        /* A topic just deleted may still be going: a fresh one is tried
         * again for 30 s; otherwise an existing one is fine. */
        for (int attempt = 0;; attempt++) {
                rd_kafka_CreateTopics(rk, &t, 1, NULL, q);
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
                ck_assert_msg(ev, "CreateTopics %s timed out", topic);
                size_t n;
                const rd_kafka_topic_result_t **res =
                        rd_kafka_CreateTopics_result_topics(
                                rd_kafka_event_CreateTopics_result(ev), &n);
                rd_kafka_resp_err_t e = n ? rd_kafka_topic_result_error(res[0])
                                          : rd_kafka_event_error(ev);
                rd_kafka_event_destroy(ev);
                bool exists = e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
                if (exists && fresh && attempt < 60) {
                        usleep(500 * 1000);
                        continue;
                }
                ck_assert_msg(!e || (exists && !fresh), "CreateTopics %s: %s",
                              topic, rd_kafka_err2str(e));
                break;
        }
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(t);
        /* Wait until the metadata shows it with all partitions. */
        for (int i = 0; i < 100; i++) {
                const struct rd_kafka_metadata *md;
                rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
                bool ready = !rd_kafka_metadata(rk, 0, rkt, &md, 5000) &&
                             md->topic_cnt == 1 && !md->topics[0].err &&
                             md->topics[0].partition_cnt == partitions;
                if (ready || md)
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
                if (ready)
                        break;
                usleep(100 * 1000);
        }
        rd_kafka_destroy(rk);
}

static void produce(rd_kafka_t *rk,
                    const char *topic,
                    const char *key,
                    const void *value,
                    size_t len) {
        for (;;) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                        rk, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                        RD_KAFKA_V_VALUE((void *)value, len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        ck_assert_msg(!e, "produce: %s", rd_kafka_err2str(e));
                        return;
                }
                rd_kafka_poll(rk, 100);
        }
}

void kt_produce(const char *bootstrap,
                const char *topic,
                int from,
                int n,
                const char *key_prefix,
                int keys,
                const char *fmt) {
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        char key[128], value[1024];
        for (int i = from; i < from + n; i++) {
                snprintf(key, sizeof(key), "%s%d", key_prefix, i % keys);
                snprintf(value, sizeof(value), fmt, i);
                produce(rk, topic, key, value, strlen(value));
        }
        /* Long enough to ride out a cluster's restart (test_eos). */
        ck_assert_int_eq(rd_kafka_flush(rk, 180000), 0);
        rd_kafka_destroy(rk);
}

void kt_produce_gen(const char *bootstrap,
                    const char *topic,
                    int n,
                    void (*gen)(int i, char *key, char *value)) {
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        char key[256], value[256];
        for (int i = 0; i < n; i++) {
                gen(i, key, value);
                produce(rk, topic, key, value, strlen(value));
        }
        /* Long enough to ride out a cluster's restart (test_eos). */
        ck_assert_int_eq(rd_kafka_flush(rk, 180000), 0);
        rd_kafka_destroy(rk);
}

void kt_produce_raw(const char *bootstrap,
                    const char *topic,
                    const char *key,
                    const void *value,
                    size_t len) {
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        produce(rk, topic, key, value, len);
        ck_assert_int_eq(rd_kafka_flush(rk, 60000), 0);
        rd_kafka_destroy(rk);
}

static char *copy(const void *p, size_t len) {
        if (!p)
                return NULL;
        char *s = malloc(len + 1);
        memcpy(s, p, len);
        s[len] = '\0';
        return s;
}

size_t kt_consume_all(const char *bootstrap,
                      const char *topic,
                      size_t want,
                      int timeout_ms,
                      kt_record_t **out) {
        rd_kafka_t *rk =
                client(RD_KAFKA_CONSUMER, bootstrap, kt_unique("kt-reader"));
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        ck_assert(!rd_kafka_metadata(rk, 0, rkt, &md, 10000));
        int parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        size_t n = 0, cap = want ? want + 16 : 64;
        kt_record_t *recs = calloc(cap, sizeof(*recs));
        int64_t deadline  = now_ms() + timeout_ms;
        while (n < want && now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m)
                        continue;
                if (!m->err) {
                        if (n == cap)
                                recs = realloc(recs,
                                               (cap *= 2) * sizeof(*recs));
                        kt_record_t *r = &recs[n++];
                        memset(r, 0, sizeof(*r));
                        r->key       = copy(m->key, m->key_len);
                        r->value     = copy(m->payload, m->len);
                        r->partition = m->partition;
                        r->offset    = m->offset;
                        rd_kafka_headers_t *h;
                        if (!rd_kafka_message_headers(m, &h)) {
                                size_t hc  = rd_kafka_header_cnt(h);
                                r->headers = calloc(hc * 2, sizeof(char *));
                                for (size_t i = 0; i < hc; i++) {
                                        const char *name;
                                        const void *v;
                                        size_t sz;
                                        rd_kafka_header_get_all(h, i, &name, &v,
                                                                &sz);
                                        r->headers[2 * i]     = strdup(name);
                                        r->headers[2 * i + 1] = copy(v, sz);
                                }
                                r->header_cnt = (int)hc;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        *out = recs;
        return n;
}

void kt_records_free(kt_record_t *recs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(recs[i].key);
                free(recs[i].value);
                for (int h = 0; h < recs[i].header_cnt * 2; h++)
                        free(recs[i].headers[h]);
                free(recs[i].headers);
        }
        free(recs);
}

const char *kt_header(const kt_record_t *r, const char *name) {
        for (int i = 0; i < r->header_cnt; i++)
                if (!strcmp(r->headers[2 * i], name))
                        return r->headers[2 * i + 1];
        return NULL;
}

pid_t kt_spawn_app(const char *log_path, const char *const *args) {
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
                FILE *log = freopen(log_path, "a", stderr);
                (void)log;
                const char *argv[64] = {KS_BINARY_DIR "/tests/ks_test_app"};
                int i                = 1;
                for (; args[i - 1] && i < 63; i++)
                        argv[i] = args[i - 1];
                argv[i] = NULL;
                execv(argv[0], (char *const *)argv);
                perror("execv");
                _exit(127);
        }
        return pid;
}

int kt_stop(pid_t pid, int sig, int timeout_ms) {
        int status = 0;
        kill(pid, sig);
        int64_t deadline = now_ms() + timeout_ms;
        while (now_ms() < deadline) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                usleep(50 * 1000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return status;
}

const char *kt_unique(const char *prefix) {
        static char buf[8][128];
        static int slot;
        char *b = buf[slot++ % 8];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(b, 128, "%s-%d-%ld%03ld", prefix, (int)getpid(),
                 (long)ts.tv_sec, ts.tv_nsec / 1000000);
        return b;
}

bool kt_topic_config(const char *bootstrap,
                     const char *topic,
                     const char *name,
                     char *out,
                     size_t out_size) {
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        rd_kafka_ConfigResource_t *r =
                rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_DescribeConfigs(rk, &r, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        ck_assert_msg(ev, "DescribeConfigs %s timed out", topic);
        ck_assert_msg(!rd_kafka_event_error(ev), "DescribeConfigs %s: %s",
                      topic, rd_kafka_event_error_string(ev));
        size_t n, cn;
        const rd_kafka_ConfigResource_t **res =
                rd_kafka_DescribeConfigs_result_resources(
                        rd_kafka_event_DescribeConfigs_result(ev), &n);
        bool found = false;
        const rd_kafka_ConfigEntry_t **entries =
                n ? rd_kafka_ConfigResource_configs(res[0], &cn) : NULL;
        for (size_t i = 0; entries && i < cn && !found; i++) {
                if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name))
                        continue;
                const char *v = rd_kafka_ConfigEntry_value(entries[i]);
                snprintf(out, out_size, "%s", v ? v : "");
                found = true;
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_ConfigResource_destroy(r);
        rd_kafka_destroy(rk);
        return found;
}

int64_t kt_low_watermark(const char *bootstrap,
                         const char *topic,
                         int32_t partition) {
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                rk, topic, partition, &lo, &hi, 10000);
        ck_assert_msg(!e, "watermarks of %s [%d]: %s", topic, (int)partition,
                      rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return lo;
}

size_t kt_await_counts(const char *bootstrap,
                       const char *topic,
                       int keys,
                       int64_t want,
                       int timeout_ms,
                       int64_t *latest) {
        for (int waited = 0; waited < timeout_ms; waited += 2000) {
                kt_record_t *recs;
                size_t n =
                        kt_consume_all(bootstrap, topic, SIZE_MAX, 2000, &recs);
                memset(latest, 0, (size_t)keys * sizeof(int64_t));
                for (size_t i = 0; i < n; i++) {
                        int k = atoi(recs[i].key + 1);
                        if (k >= 0 && k < keys)
                                latest[k] = kt_be64(recs[i].value);
                }
                kt_records_free(recs, n);
                int done = 0;
                for (int k = 0; k < keys; k++)
                        done += latest[k] == want;
                if (done == keys)
                        return n;
        }
        return 0;
}

int kt_kafka_sh(const char *args, char *out, size_t out_size) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "bash %s/infra/kafka/kafka.sh %s",
                 KS_SOURCE_DIR, args);
        FILE *p = popen(cmd, "r");
        if (!p)
                return -1;
        size_t n = out ? fread(out, 1, out_size - 1, p) : 0;
        if (out) {
                out[n] = '\0';
        } else {
                char sink[256];
                while (fread(sink, 1, sizeof(sink), p) > 0) {
                }
        }
        return pclose(p);
}

bool kt_cluster_up(const char *name, char *bootstrap, size_t size) {
        char out[512], args[160];
        snprintf(args, sizeof(args), "cluster-up %s", name);
        if (kt_kafka_sh(args, out, sizeof(out)))
                return false;
        char *b = strstr(out, "KS_BOOTSTRAP=");
        if (!b)
                return false;
        snprintf(bootstrap, size, "%s", b + 13);
        bootstrap[strcspn(bootstrap, "\r\n")] = '\0';
        return true;
}

int64_t kt_topic_records(const char *bootstrap,
                         const char *topic,
                         int32_t partitions) {
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        int64_t sum    = 0;
        for (int32_t p = 0; p < partitions; p++) {
                int64_t lo, hi;
                if (!rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
                                                      5000))
                        sum += hi;
        }
        rd_kafka_destroy(rk);
        return sum;
}

int kt_log_count(const char *path, const char *text) {
        FILE *f = fopen(path, "r");
        char line[2048];
        int n = 0;
        while (f && fgets(line, sizeof(line), f))
                n += strstr(line, text) != NULL;
        if (f)
                fclose(f);
        return n;
}

void kt_sleep_ms(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

void kt_rm_rf(const char *dir) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}
