/* What GET /metrics needs of a stream thread beyond its counters: the
 * commit and end-to-end latency histograms it fills, and its input
 * partitions' lag, read from librdkafka's statistics (JSON every
 * statistics.interval.ms, delivered by the consumer's poll, so on the
 * stream thread). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_int.h"
#include "log_int.h"
#include "metrics_expo_int.h"
#include "runtime_int.h"

uint64_t ks__mono_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void lag_free(ks_lag_t *lag, int cnt) {
        for (int i = 0; i < cnt; i++)
                free(lag[i].topic);
        free(lag);
}

/* Every assigned partition with a known lag: topics.<t>.partitions.<p>
 * with "desired" (assigned to us) and consumer_lag >= 0. */
static int parse_lag(const char *json, size_t len, ks_lag_t **out) {
        json_t *root   = json_loadb(json, len, 0, NULL);
        json_t *topics = root ? json_object_get(root, "topics") : NULL;
        ks_lag_t *lag  = NULL;
        int cnt = 0, cap = 0;
        const char *tname, *pname;
        json_t *topic, *part;
        json_object_foreach(topics, tname, topic) {
                json_t *parts = json_object_get(topic, "partitions");
                json_object_foreach(parts, pname, part) {
                        int32_t p = (int32_t)atoi(pname);
                        json_t *l = json_object_get(part, "consumer_lag");
                        if (p < 0 ||
                            !json_is_true(json_object_get(part, "desired")) ||
                            !json_is_integer(l) || json_integer_value(l) < 0)
                                continue;
                        if (cnt == cap) {
                                cap = cap ? cap * 2 : 8;
                                ks_lag_t *n =
                                        realloc(lag, (size_t)cap * sizeof(*n));
                                if (!n)
                                        goto out;
                                lag = n;
                        }
                        if (!(lag[cnt].topic = strdup(tname)))
                                goto out;
                        lag[cnt].partition = p;
                        lag[cnt].lag       = json_integer_value(l);
                        cnt++;
                }
        }
out:
        json_decref(root);
        *out = lag;
        return cnt;
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
        (void)rk;
        ks_stream_thread_t *t = opaque;
        ks_lag_t *lag;
        int cnt = parse_lag(json, len, &lag);
        pthread_mutex_lock(&t->mlock);
        ks_lag_t *old  = t->obs.lag;
        int old_cnt    = t->obs.lag_cnt;
        t->obs.lag     = lag;
        t->obs.lag_cnt = cnt;
        pthread_mutex_unlock(&t->mlock);
        lag_free(old, old_cnt);
        return 0; /* librdkafka frees the JSON */
}

bool ks__obs_consumer_conf(ks_stream_thread_t *t,
                           rd_kafka_conf_t *c,
                           char *errstr,
                           size_t errstr_size) {
        rd_kafka_conf_set_stats_cb(c, stats_cb);
        if (!*ks__conf_str(t->s->conf, "http.listen"))
                return true;
        return rd_kafka_conf_set(c, "statistics.interval.ms", "5000", errstr,
                                 errstr_size) == RD_KAFKA_CONF_OK;
}

void ks__obs_publish_locked(ks_stream_thread_t *t) {
        t->obs.pub_commit = t->obs.commit;
        t->obs.pub_e2e    = t->obs.e2e;
}

void ks__obs_fini(ks_stream_thread_t *t) {
        lag_free(t->obs.lag, t->obs.lag_cnt);
        t->obs.lag     = NULL;
        t->obs.lag_cnt = 0;
}

ks_err_t ks__stream_thread_view(ks_stream_thread_t *t, ks_thread_view_t *v) {
        memset(v, 0, sizeof(*v));
        v->index = t->index;
        pthread_mutex_lock(&t->mlock);
        ks__metrics_add(&v->m, &t->published);
        v->commit    = t->obs.pub_commit;
        v->e2e       = t->obs.pub_e2e;
        ks_err_t err = KS_OK;
        if (t->obs.lag_cnt &&
            !(v->lag = calloc((size_t)t->obs.lag_cnt, sizeof(*v->lag))))
                err = KS_ERR_NOMEM;
        for (int i = 0; !err && i < t->obs.lag_cnt; i++) {
                v->lag[i] = t->obs.lag[i];
                if (!(v->lag[i].topic = strdup(t->obs.lag[i].topic)))
                        err = KS_ERR_NOMEM;
                else
                        v->lag_cnt++;
        }
        pthread_mutex_unlock(&t->mlock);
        return err;
}

void ks__thread_view_free(ks_thread_view_t *v) {
        lag_free(v->lag, v->lag_cnt);
        v->lag     = NULL;
        v->lag_cnt = 0;
}
