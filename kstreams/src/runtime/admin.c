/* Start-up checks against the cluster: brokers reachable, source topics
 * present, co-partitioning, and the internal (repartition) topics. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_int.h"
#include "copartition_int.h"
#include "log_int.h"
#include "streams_int.h"

typedef struct topic_count_s {
        char *name;
        int32_t partitions;
} topic_count_t;

typedef struct plan_s {
        topic_count_t *topics; /* what the cluster has, plus planned ones */
        int cnt, cap;
} plan_t;

static void plan_free(plan_t *p) {
        for (int i = 0; i < p->cnt; i++)
                free(p->topics[i].name);
        free(p->topics);
}

static int32_t plan_get(const plan_t *p, const char *name) {
        for (int i = 0; i < p->cnt; i++)
                if (!strcmp(p->topics[i].name, name))
                        return p->topics[i].partitions;
        return -1;
}

static bool plan_put(plan_t *p, const char *name, int32_t partitions) {
        if (p->cnt == p->cap) {
                int cap          = p->cap ? p->cap * 2 : 64;
                topic_count_t *t = realloc(p->topics, (size_t)cap * sizeof(*t));
                if (!t)
                        return false;
                p->topics = t;
                p->cap    = cap;
        }
        p->topics[p->cnt].name = strdup(name);
        if (!p->topics[p->cnt].name)
                return false;
        p->topics[p->cnt++].partitions = partitions;
        return true;
}

/* What the admin client's error callback saw: a broker that refuses our
 * credentials or our TLS never answers a metadata request, so without it
 * start-up would wait out startup.timeout.ms and say only "timed out". */
typedef struct client_errors_s {
        rd_kafka_resp_err_t fatal; /* authentication or TLS: no retry helps */
        char text[512];
} client_errors_t;

static void on_client_error(rd_kafka_t *rk,
                            int err,
                            const char *reason,
                            void *opaque) {
        client_errors_t *ce = opaque;
        (void)rk;
        if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
            err == RD_KAFKA_RESP_ERR__SSL ||
            err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
            err == RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM) {
                ce->fatal = (rd_kafka_resp_err_t)err;
                snprintf(ce->text, sizeof(ce->text), "%s", reason);
        } else if (!ce->fatal) {
                snprintf(ce->text, sizeof(ce->text), "%s", reason);
        }
}

static ks_error_t *read_metadata(rd_kafka_t *rk,
                                 int timeout_ms,
                                 const char *bootstrap,
                                 const client_errors_t *ce,
                                 plan_t *plan) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err            = RD_KAFKA_RESP_ERR__TIMED_OUT;
        int64_t deadline                   = ks_now_ms() + timeout_ms;
        /* Short tries, serving the error callback in between, so that a
         * refused login ends start-up at once. */
        for (;;) {
                int64_t left = deadline - ks_now_ms();
                if (left <= 0)
                        break;
                int64_t t0 = ks_now_ms();
                err        = rd_kafka_metadata(rk, 1, NULL, &md,
                                        left < 500 ? (int)left : 500);
                rd_kafka_poll(rk, 0);
                if (!err || ce->fatal)
                        break;
                /* All brokers down fails at once: no busy loop. */
                if (ks_now_ms() - t0 < 100) {
                        struct timespec ts = {0, 100 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
        }
        if (ce->fatal) {
                if (!err)
                        rd_kafka_metadata_destroy(md);
                return ks_error_set_fatal(
                        ks_error_new(KS_ERR_KAFKA,
                                     "cannot connect to the Kafka brokers at "
                                     "%s: %s: %s (check security.protocol, "
                                     "sasl.* and ssl.*)",
                                     bootstrap, rd_kafka_err2name(ce->fatal),
                                     ce->text),
                        true);
        }
        if (err)
                return ks_error_set_retriable(
                        ks_error_new(
                                KS_ERR_KAFKA,
                                "cannot reach the Kafka brokers at %s "
                                "within %d ms (startup.timeout.ms): %s%s%s",
                                bootstrap, timeout_ms, rd_kafka_err2str(err),
                                *ce->text ? "; last client error: " : "",
                                ce->text),
                        true);
        for (int i = 0; i < md->topic_cnt; i++) {
                if (md->topics[i].err)
                        continue;
                if (!plan_put(plan, md->topics[i].topic,
                              md->topics[i].partition_cnt)) {
                        rd_kafka_metadata_destroy(md);
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                }
        }
        rd_kafka_metadata_destroy(md);
        return NULL;
}

static ks_error_t *check_sources(ks_streams_t *s, const plan_t *plan) {
        const ks_topology_t *t = s->topology;
        char missing[1024]     = "";
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->kind != KS_NODE_SOURCE || n->internal || n->has_regex)
                        continue;
                for (int k = 0; k < n->topic_cnt; k++)
                        if (plan_get(plan, n->topics[k]) < 0) {
                                size_t len = strlen(missing);
                                snprintf(missing + len, sizeof(missing) - len,
                                         "%s%s", len ? ", " : "", n->topics[k]);
                        }
        }
        if (missing[0])
                return ks_error_new(KS_ERR_NOT_FOUND,
                                    "source topics missing: %s (kstreams "
                                    "does not create source topics: create "
                                    "them first)",
                                    missing);
        return NULL;
}

/* A topic just created has no partition leaders for a moment; a task
 * that reads or restores it before then fails. Wait until every partition
 * of the new topics has a leader. */
static ks_error_t *wait_for_leaders(rd_kafka_t *rk,
                                    const rd_kafka_topic_result_t **res,
                                    size_t cnt,
                                    int timeout_ms) {
        int64_t deadline = ks_now_ms() + timeout_ms;
        for (size_t i = 0; i < cnt; i++) {
                const char *name = rd_kafka_topic_result_name(res[i]);
                for (;;) {
                        const struct rd_kafka_metadata *md = NULL;
                        rd_kafka_topic_t *rkt =
                                rd_kafka_topic_new(rk, name, NULL);
                        bool ready =
                                !rd_kafka_metadata(rk, 0, rkt, &md, 5000) &&
                                md->topic_cnt == 1 && !md->topics[0].err &&
                                md->topics[0].partition_cnt > 0;
                        for (int p = 0;
                             ready && p < md->topics[0].partition_cnt; p++)
                                ready = md->topics[0].partitions[p].leader >=
                                                0 &&
                                        !md->topics[0].partitions[p].err;
                        if (md)
                                rd_kafka_metadata_destroy(md);
                        rd_kafka_topic_destroy(rkt);
                        if (ready)
                                break;
                        if (ks_now_ms() > deadline)
                                return ks_error_new(KS_ERR_TIMED_OUT,
                                                    "internal topic %s has "
                                                    "no leader for every "
                                                    "partition after %d ms",
                                                    name, timeout_ms);
                        struct timespec ts = {0, 100 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
        }
        return NULL;
}

static ks_error_t *create_topics(rd_kafka_t *rk,
                                 rd_kafka_NewTopic_t **nt,
                                 size_t cnt,
                                 int timeout_ms) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts =
                rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        char errstr[256];
        ks_error_t *err = NULL;
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr,
                                                    sizeof(errstr));
        rd_kafka_CreateTopics(rk, nt, cnt, opts, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
        if (!ev) {
                err = ks_error_new(KS_ERR_TIMED_OUT,
                                   "creating internal topics timed out");
                goto out;
        }
        if (rd_kafka_event_error(ev)) {
                err = ks_error_new(KS_ERR_KAFKA, "creating internal topics: %s",
                                   rd_kafka_event_error_string(ev));
                goto out_ev;
        }
        size_t n;
        const rd_kafka_topic_result_t **res =
                rd_kafka_CreateTopics_result_topics(
                        rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n && !err; i++) {
                rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
                if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                        err = ks_error_new(
                                KS_ERR_KAFKA, "creating internal topic %s: %s",
                                rd_kafka_topic_result_name(res[i]),
                                rd_kafka_topic_result_error_string(res[i]));
        }
        if (!err)
                err = wait_for_leaders(rk, res, n, timeout_ms);
out_ev:
        rd_kafka_event_destroy(ev);
out:
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
        return err;
}

/* Sizes the topology's topics from what the cluster has (copartition.c,
 * shared with the test driver). The repartition topics that exist are
 * left out: the plan says what they must be, plan_internal() compares. */
static ks_error_t *plan_partitions(ks_streams_t *s,
                                   const plan_t *plan,
                                   ks_partition_plan_t *out) {
        ks_topic_count_t *have = calloc((size_t)plan->cnt + 1, sizeof(*have));
        if (!have)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < plan->cnt; i++)
                have[i] = (ks_topic_count_t){plan->topics[i].name,
                                             plan->topics[i].partitions};
        /* A sub-topology whose pattern matches no topic yet has no tasks:
         * a repartition topic sized from it is an error, not 0 partitions. */
        ks_error_t *err = ks__partition_plan(s->topology, s->application_id,
                                             have, plan->cnt, 0, out);
        free(have);
        return err;
}

/* Creates the repartition topics the plan sized. */
static ks_error_t *plan_internal(ks_streams_t *s,
                                 rd_kafka_t *rk,
                                 plan_t *plan,
                                 const ks_partition_plan_t *sizes,
                                 int timeout_ms) {
        const ks_topology_t *t = s->topology;
        rd_kafka_NewTopic_t *nt[256];
        size_t nt_cnt   = 0;
        ks_error_t *err = NULL;
        int rf          = (int)ks__conf_int(s->conf, "replication.factor");
        for (int i = 0; i < t->node_cnt && !err; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->kind != KS_NODE_SINK || !n->internal)
                        continue;
                char name[512], errstr[256];
                ks__internal_topic_name(s->application_id, n->topics[0], name,
                                        sizeof(name));
                int32_t want = sizes->node_partitions[i];
                int32_t have = plan_get(plan, name);
                if (have >= 0) {
                        if (have != want)
                                err = ks_error_new(
                                        KS_ERR_TOPOLOGY,
                                        "internal topic %s has %" PRId32
                                        " partitions but the topology "
                                        "needs %" PRId32
                                        "; delete it (or reset the "
                                        "application) to recreate it",
                                        name, have, want);
                        continue;
                }
                if (nt_cnt == 256) {
                        err = ks_error_new(KS_ERR_TOPOLOGY,
                                           "more than 256 internal topics");
                        continue;
                }
                nt[nt_cnt] = rd_kafka_NewTopic_new(name, want, rf, errstr,
                                                   sizeof(errstr));
                if (!nt[nt_cnt]) {
                        err = ks_error_new(KS_ERR_KAFKA, "%s: %s", name,
                                           errstr);
                        continue;
                }
                /* As Kafka Streams: no time retention, since records keep
                 * their event timestamps and replayed old events would be
                 * deleted by the broker before the other side of the
                 * topic read them (bench_state_throughput lost records
                 * that way with a day's retention). The stream threads
                 * purge what they committed instead (DeleteRecords, every
                 * repartition.purge.interval.ms), and segments roll every
                 * 10 minutes so that purged ones can go. */
                rd_kafka_NewTopic_set_config(nt[nt_cnt], "retention.ms", "-1");
                rd_kafka_NewTopic_set_config(nt[nt_cnt], "segment.ms",
                                             "600000");
                nt_cnt++;
                if (!plan_put(plan, name, want))
                        err = ks_error_new(KS_ERR_NOMEM, "out of memory");
                ks__log(KS_LOG_INFO,
                        "creating internal topic %s with %" PRId32
                        " partitions",
                        name, want);
        }
        if (!err && nt_cnt)
                err = create_topics(rk, nt, nt_cnt, timeout_ms);
        for (size_t i = 0; i < nt_cnt; i++)
                rd_kafka_NewTopic_destroy(nt[i]);
        return err;
}

/* Creates each store's changelog, one partition per task of its
 * sub-topology: compacted, and for windowed stores also deleted after the
 * store's retention plus windowstore.changelog.additional.retention.ms
 * (a day by default, as Kafka Streams). */
static ks_error_t *plan_changelogs(ks_streams_t *s,
                                   rd_kafka_t *rk,
                                   plan_t *plan,
                                   const ks_partition_plan_t *sizes,
                                   int timeout_ms) {
        const ks_topology_t *t = s->topology;
        rd_kafka_NewTopic_t *nt[256];
        size_t nt_cnt   = 0;
        ks_error_t *err = NULL;
        int rf          = (int)ks__conf_int(s->conf, "replication.factor");
        for (int i = 0; i < t->node_cnt && !err; i++) {
                const ks_node_t *n = t->nodes[i];
                if (!n->store)
                        continue;
                char name[512], errstr[256], retention[32];
                int32_t want = sizes->sub_partitions[n->subtopology];
                ks__changelog_topic_name(s->application_id, n->store->name,
                                         name, sizeof(name));
                int32_t have = plan_get(plan, name);
                if (have >= 0) {
                        if (have != want)
                                err = ks_error_new(
                                        KS_ERR_TOPOLOGY,
                                        "changelog %s has %" PRId32
                                        " partitions but its sub-topology "
                                        "has %" PRId32
                                        " tasks; the store's state would not "
                                        "line up with its tasks",
                                        name, have, want);
                        continue;
                }
                if (nt_cnt == 256 ||
                    !(nt[nt_cnt] = rd_kafka_NewTopic_new(name, want, rf, errstr,
                                                         sizeof(errstr)))) {
                        err = ks_error_new(
                                KS_ERR_KAFKA, "%s: %s", name,
                                nt_cnt == 256 ? "too many topics" : errstr);
                        break;
                }
                if (n->store->kind == KS_STORE_KV) {
                        rd_kafka_NewTopic_set_config(
                                nt[nt_cnt], "cleanup.policy", "compact");
                } else {
                        snprintf(retention, sizeof(retention), "%lld",
                                 (long long)(n->store->retention_ms +
                                             ks__conf_int(
                                                     s->conf,
                                                     "windowstore.changelog."
                                                     "additional.retention."
                                                     "ms")));
                        rd_kafka_NewTopic_set_config(
                                nt[nt_cnt], "cleanup.policy", "compact,delete");
                        rd_kafka_NewTopic_set_config(nt[nt_cnt], "retention.ms",
                                                     retention);
                }
                nt_cnt++;
                if (!plan_put(plan, name, want))
                        err = ks_error_new(KS_ERR_NOMEM, "out of memory");
                ks__log(KS_LOG_INFO,
                        "creating changelog %s with %" PRId32 " partitions",
                        name, want);
        }
        if (!err && nt_cnt)
                err = create_topics(rk, nt, nt_cnt, timeout_ms);
        for (size_t i = 0; i < nt_cnt; i++)
                rd_kafka_NewTopic_destroy(nt[i]);
        return err;
}

static ks_error_t *build_subscription(ks_streams_t *s) {
        const ks_topology_t *t = s->topology;
        int max                = 0;
        for (int i = 0; i < t->node_cnt; i++)
                if (t->nodes[i]->kind == KS_NODE_SOURCE)
                        max += t->nodes[i]->topic_cnt + 1;
        s->subscription = calloc((size_t)max, sizeof(char *));
        if (!s->subscription)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->kind != KS_NODE_SOURCE)
                        continue;
                char name[600];
                if (n->has_regex) {
                        /* librdkafka subscribes to a regex when the name
                         * starts with ^; anchored as Java's matches(). */
                        snprintf(name, sizeof(name), "^(%s)$", n->pattern);
                        s->subscription[s->subscription_cnt++] = strdup(name);
                }
                for (int k = 0; k < n->topic_cnt; k++) {
                        if (n->internal)
                                ks__internal_topic_name(s->application_id,
                                                        n->topics[k], name,
                                                        sizeof(name));
                        else
                                snprintf(name, sizeof(name), "%s",
                                         n->topics[k]);
                        s->subscription[s->subscription_cnt++] = strdup(name);
                }
        }
        for (int i = 0; i < s->subscription_cnt; i++)
                if (!s->subscription[i])
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
        return NULL;
}

ks_error_t *ks__streams_prepare_topics(ks_streams_t *s) {
        char errstr[512], bootstrap[512] = "(unset)";
        rd_kafka_conf_t *rdconf = rd_kafka_conf_new();
        ks_error_t *err = ks__rdkafka_conf(s->conf, KS_CONF_SIDE_ADMIN, rdconf);
        if (err) {
                rd_kafka_conf_destroy(rdconf);
                return err;
        }
        size_t blen = sizeof(bootstrap);
        rd_kafka_conf_get(rdconf, "bootstrap.servers", bootstrap, &blen);
        client_errors_t ce = {0};
        rd_kafka_conf_set_error_cb(rdconf, on_client_error);
        rd_kafka_conf_set_opaque(rdconf, &ce);
        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_PRODUCER, rdconf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(rdconf);
                return ks_error_new(KS_ERR_KAFKA, "admin client: %s", errstr);
        }
        int timeout = (int)ks__conf_int(s->conf, "startup.timeout.ms");
        plan_t plan = {0};
        ks_partition_plan_t sizes = {0};
        err = read_metadata(rk, timeout, bootstrap, &ce, &plan);
        if (!err)
                err = check_sources(s, &plan);
        if (!err)
                err = plan_partitions(s, &plan, &sizes);
        if (!err)
                err = plan_internal(s, rk, &plan, &sizes, timeout);
        if (!err)
                err = plan_changelogs(s, rk, &plan, &sizes, timeout);
        if (!err)
                err = build_subscription(s);
        if (!err) /* interactive queries route keys by these counts */
                ks__iq_set_partitions(s, sizes.sub_partitions);
        ks__partition_plan_clear(&sizes);
        plan_free(&plan);
        rd_kafka_destroy(rk);
        return err;
}
