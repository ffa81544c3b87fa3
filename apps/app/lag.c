/* The consumer lag of a job's application on its input and repartition
 * topics, for the statistics line: the end offset of each partition minus
 * the group's committed offset (the log start when nothing is committed). A
 * plain librdkafka consumer handle that never subscribes, so it does not join
 * the group it asks about. */
#include "lag.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LAG_MAX_TOPICS 8

struct lag_probe_s {
        rd_kafka_t *rk;
        char *topics[LAG_MAX_TOPICS];
        size_t topic_cnt;
};

lag_probe_t *lag_probe_new(const char *bootstrap,
                           const char *group,
                           const char *const *topics,
                           size_t topic_cnt) {
        char errstr[256];
        if (topic_cnt > LAG_MAX_TOPICS)
                return NULL;
        lag_probe_t *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "group.id", group, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
                rd_kafka_conf_destroy(conf);
                free(p);
                return NULL;
        }
        p->rk   = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        bool ok = p->rk != NULL;
        for (; ok && p->topic_cnt < topic_cnt; p->topic_cnt++)
                ok = (p->topics[p->topic_cnt] = strdup(topics[p->topic_cnt])) !=
                     NULL;
        if (!ok) {
                lag_probe_destroy(p);
                return NULL;
        }
        return p;
}

void lag_probe_destroy(lag_probe_t *p) {
        if (!p)
                return;
        if (p->rk)
                rd_kafka_destroy(p->rk);
        for (size_t i = 0; i < p->topic_cnt; i++)
                free(p->topics[i]);
        free(p);
}

/* The lag of one topic: committed offsets first, then the end offsets, so
 * that a race can only overstate it. */
static int64_t topic_lag(lag_probe_t *p, const char *topic, int timeout_ms) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt         = rd_kafka_topic_new(p->rk, topic, NULL);
        if (!rkt)
                return -1;
        rd_kafka_resp_err_t err =
                rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (err || md->topic_cnt != 1 || md->topics[0].err) {
                if (md)
                        rd_kafka_metadata_destroy(md);
                return -1;
        }
        int cnt = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_partition_list_t *list =
                rd_kafka_topic_partition_list_new(cnt);
        for (int i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(list, topic, i);
        int64_t lag = -1;
        if (!rd_kafka_committed(p->rk, list, timeout_ms)) {
                lag = 0;
                for (int i = 0; i < list->cnt && lag >= 0; i++) {
                        int64_t lo, hi;
                        if (rd_kafka_query_watermark_offsets(
                                    p->rk, topic, list->elems[i].partition, &lo,
                                    &hi, timeout_ms)) {
                                lag = -1;
                                break;
                        }
                        int64_t done = list->elems[i].offset >= 0
                                               ? list->elems[i].offset
                                               : lo;
                        lag += hi > done ? hi - done : 0;
                }
        }
        rd_kafka_topic_partition_list_destroy(list);
        return lag;
}

int64_t lag_probe_get(lag_probe_t *p, int timeout_ms) {
        int64_t total = 0;
        for (size_t i = 0; i < p->topic_cnt; i++) {
                int64_t lag = topic_lag(p, p->topics[i], timeout_ms);
                if (lag < 0)
                        return -1;
                total += lag;
        }
        return total;
}
