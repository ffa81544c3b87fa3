/* Interactive queries: application threads read the stores of this
 * instance's tasks while the stream threads run them.
 *
 * Lifetime. A stream thread registers each task that has stores here
 * when it creates it (restoring: queries get a retriable error), marks it
 * ready once restored, and unregisters it before closing it (a rebalance,
 * a failure, the end): unregistering waits until no query holds the task,
 * so a query never reads a closed environment. A query holds a task only
 * for one short read, one LMDB snapshot of a bounded batch of entries, so
 * a rebalance never waits long; an iterator finds its task again for each
 * batch, and one that moved away ends the iteration with a retriable
 * error.
 *
 * Consistency. Reads go through ks_state_env_snapshot(): what the stream
 * thread committed last, never its uncommitted writes (stores/src/env.c
 * explains how LMDB allows that beside the open write transaction).
 *
 * Routing. A key's partition is murmur2 of its serialized key over the
 * task count of the store's sub-topology, which start-up's partition plan
 * records (admin.c); failing that, the partition count of the store's
 * changelog (start-up makes them equal), asked of the cluster once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kstreams/partitioner.h"
#include "kstreams/store.h"
#include "iq_int.h"

#define METADATA_TIMEOUT_MS 10000

/* ---- the registry, for the stream threads ------------------------------
 */

void ks__iq_init(ks_iq_t *iq) {
        memset(iq, 0, sizeof(*iq));
        pthread_mutex_init(&iq->lock, NULL);
        pthread_cond_init(&iq->released, NULL);
}

void ks__iq_fini(ks_iq_t *iq) {
        for (int i = 0; i < iq->task_cnt; i++)
                free(iq->tasks[i]);
        free(iq->tasks);
        free(iq->sub_partitions);
        pthread_cond_destroy(&iq->released);
        pthread_mutex_destroy(&iq->lock);
}

ks_error_t *ks__iq_task_add(ks_streams_t *s,
                            const ks_task_t *task,
                            ks_state_env_t *env) {
        ks_iq_t *iq   = &s->iq;
        iq_task_t *it = calloc(1, sizeof(*it));
        if (!it)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        it->task      = task;
        it->sub       = ks__task_subtopology(task);
        it->partition = ks__task_partition(task);
        it->env       = env;
        pthread_mutex_lock(&iq->lock);
        if (iq->task_cnt == iq->task_cap) {
                int cap = iq->task_cap ? iq->task_cap * 2 : 16;
                iq_task_t **arr =
                        realloc(iq->tasks, (size_t)cap * sizeof(*arr));
                if (!arr) {
                        pthread_mutex_unlock(&iq->lock);
                        free(it);
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                }
                iq->tasks    = arr;
                iq->task_cap = cap;
        }
        iq->tasks[iq->task_cnt++] = it;
        pthread_mutex_unlock(&iq->lock);
        return NULL;
}

static int find_task_locked(const ks_iq_t *iq, const ks_task_t *task) {
        for (int i = 0; i < iq->task_cnt; i++)
                if (iq->tasks[i]->task == task)
                        return i;
        return -1;
}

void ks__iq_task_ready(ks_streams_t *s, const ks_task_t *task) {
        ks_iq_t *iq = &s->iq;
        pthread_mutex_lock(&iq->lock);
        int i = find_task_locked(iq, task);
        if (i >= 0)
                iq->tasks[i]->ready = true;
        pthread_mutex_unlock(&iq->lock);
}

void ks__iq_task_remove(ks_streams_t *s, const ks_task_t *task) {
        ks_iq_t *iq = &s->iq;
        pthread_mutex_lock(&iq->lock);
        int i = find_task_locked(iq, task);
        if (i < 0) {
                pthread_mutex_unlock(&iq->lock);
                return;
        }
        iq_task_t *it = iq->tasks[i];
        it->closing   = true;
        while (it->users)
                pthread_cond_wait(&iq->released, &iq->lock);
        /* Other tasks may have left meanwhile: find it again. */
        i            = find_task_locked(iq, task);
        iq->tasks[i] = iq->tasks[--iq->task_cnt];
        pthread_mutex_unlock(&iq->lock);
        free(it);
}

/* ---- finding stores, partitions and tasks ------------------------------
 */

static const char *kind_name(ks_store_kind_t kind) {
        return kind == KS_STORE_KV       ? "key-value"
               : kind == KS_STORE_WINDOW ? "window"
                                         : "session";
}

ks_error_t *ks__iq_check_state(ks_streams_t *s) {
        ks_state_t st = (ks_state_t)atomic_load(&s->state_seen);
        if (st == KS_STATE_RUNNING || st == KS_STATE_REBALANCING)
                return NULL;
        return ks_error_new(KS_ERR_STATE,
                            "the instance is %s: stores can be queried while "
                            "it is RUNNING or REBALANCING",
                            ks_state_name(st));
}

/* The store @p name, of kind @p want (-1: any kind). */
ks_error_t *ks__iq_find_store(ks_streams_t *s,
                              const char *name,
                              int want,
                              store_ref_t *out) {
        const ks_topology_t *t = s->topology;
        if (!name)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "a store name is required");
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_store_spec_t *st = t->nodes[i]->store;
                if (!st || strcmp(st->name, name))
                        continue;
                if (want >= 0 && (int)st->kind != want)
                        return ks_error_new(
                                KS_ERR_INVALID_ARG,
                                "store %s is a %s store, not a %s store", name,
                                kind_name(st->kind),
                                kind_name((ks_store_kind_t)want));
                out->spec = st;
                out->sub  = t->nodes[i]->subtopology;
                return NULL;
        }
        return ks_error_new(KS_ERR_NOT_FOUND,
                            "no store named %s in the topology", name);
}

static ks_error_t *check_key(ks_bytes_t key) {
        /* A NULL key would get a random partition. */
        if (!key.data)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "a serialized key is required");
        return NULL;
}

/* The task count of the store's sub-topology: as start-up planned it, or
 * else its changelog's partition count, asked of the cluster once. */
static ks_error_t *partition_count(ks_streams_t *s,
                                   const char *store,
                                   int sub,
                                   int32_t *out) {
        ks_iq_t *iq = &s->iq;
        int32_t cnt = 0;
        char topic[512];
        pthread_mutex_lock(&iq->lock);
        if (iq->sub_partitions)
                cnt = iq->sub_partitions[sub];
        pthread_mutex_unlock(&iq->lock);
        if (cnt > 0) {
                *out = cnt;
                return NULL;
        }
        if (!s->threads || s->thread_cnt < 1)
                return ks_error_new(KS_ERR_STATE,
                                    "the instance has no stream threads");
        ks__changelog_topic_name(s->application_id, store, topic,
                                 sizeof(topic));
        rd_kafka_t *rk        = ks__stream_thread_client(s->threads[0]);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err =
                rkt ? rd_kafka_metadata(rk, 0, rkt, &md, METADATA_TIMEOUT_MS)
                    : rd_kafka_last_error();
        if (!err && md->topic_cnt != 1)
                err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        else if (!err && md->topics[0].err)
                err = md->topics[0].err;
        else if (!err)
                cnt = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (err || cnt < 1)
                return ks_error_set_retriable(
                        ks_error_new(
                                KS_ERR_KAFKA,
                                "the partition count of store %s (its "
                                "changelog %s) is unknown: %s",
                                store, topic,
                                err ? rd_kafka_err2str(err) : "no partitions"),
                        true);
        pthread_mutex_lock(&iq->lock);
        if (!iq->sub_partitions)
                iq->sub_partitions = calloc(
                        (size_t)s->topology->subtopology_cnt, sizeof(int32_t));
        if (iq->sub_partitions)
                iq->sub_partitions[sub] = cnt;
        pthread_mutex_unlock(&iq->lock);
        *out = cnt;
        return NULL;
}

static ks_error_t *not_hosted(ks_streams_t *s,
                              const char *store,
                              int32_t partition) {
        bool rebalancing =
                atomic_load(&s->state_seen) == (int)KS_STATE_REBALANCING;
        return ks_error_set_retriable(
                ks_error_new(KS_ERR_NOT_FOUND,
                             "partition %d of store %s is not hosted by this "
                             "instance%s",
                             (int)partition, store,
                             rebalancing ? " (it is rebalancing: retry)" : ""),
                rebalancing);
}

ks_error_t *ks__iq_restoring(const char *store, int32_t partition) {
        return ks_error_set_retriable(
                ks_error_new(KS_ERR_STATE,
                             "partition %d of store %s is restoring on this "
                             "instance: retry when it is done",
                             (int)partition, store),
                true);
}

/* Holds the ready task of (sub, partition) for one read: ks__iq_release() it.
 */
ks_error_t *ks__iq_acquire(ks_streams_t *s,
                           const char *store,
                           int sub,
                           int32_t partition,
                           iq_task_t **out) {
        ks_iq_t *iq    = &s->iq;
        iq_task_t *got = NULL;
        bool restore   = false;
        pthread_mutex_lock(&iq->lock);
        for (int i = 0; i < iq->task_cnt && !got; i++) {
                iq_task_t *it = iq->tasks[i];
                if (it->sub != sub || it->partition != partition || it->closing)
                        continue;
                if (it->ready)
                        got = it;
                else
                        restore = true;
        }
        if (got)
                got->users++;
        pthread_mutex_unlock(&iq->lock);
        *out = got;
        if (got)
                return NULL;
        return restore ? ks__iq_restoring(store, partition)
                       : not_hosted(s, store, partition);
}

void ks__iq_release(ks_streams_t *s, iq_task_t *it) {
        ks_iq_t *iq = &s->iq;
        pthread_mutex_lock(&iq->lock);
        if (--it->users == 0 && it->closing)
                pthread_cond_broadcast(&iq->released);
        pthread_mutex_unlock(&iq->lock);
}

ks_error_t *ks__iq_probe(ks_streams_t *s,
                         const char *store,
                         int sub,
                         int32_t partition) {
        iq_task_t *it;
        ks_error_t *err = ks__iq_acquire(s, store, sub, partition, &it);
        if (!err)
                ks__iq_release(s, it);
        return err;
}

/* The key's store, sub-topology and partition, checking what a read needs. */
ks_error_t *ks__iq_route(ks_streams_t *s,
                         const char *store,
                         int kind,
                         ks_bytes_t key,
                         store_ref_t *ref,
                         int32_t *partition,
                         int32_t *count) {
        int32_t cnt;
        ks_error_t *err = ks__iq_check_state(s);
        if (!err)
                err = ks__iq_find_store(s, store, kind, ref);
        if (!err)
                err = check_key(key);
        if (!err)
                err = partition_count(s, store, ref->sub, &cnt);
        if (err)
                return err;
        *partition = ks_partition_for_key(key.data, key.len, cnt);
        if (count)
                *count = cnt;
        return NULL;
}

void ks__iq_set_partitions(ks_streams_t *s, const int32_t *sub_partitions) {
        ks_iq_t *iq = &s->iq;
        size_t n    = (size_t)s->topology->subtopology_cnt;
        pthread_mutex_lock(&iq->lock);
        if (!iq->sub_partitions)
                iq->sub_partitions = calloc(n, sizeof(int32_t));
        if (iq->sub_partitions && sub_partitions)
                memcpy(iq->sub_partitions, sub_partitions, n * sizeof(int32_t));
        pthread_mutex_unlock(&iq->lock);
}

ks_error_t *ks__iq_key_partition(ks_streams_t *s,
                                 const char *store,
                                 ks_bytes_t key,
                                 int *sub,
                                 int32_t *partition) {
        store_ref_t ref;
        ks_error_t *err =
                ks__iq_route(s, store, -1, key, &ref, partition, NULL);
        if (!err)
                *sub = ref.sub;
        return err;
}

/* ---- point queries -------------------------------------------------------
 */

ks_error_t *ks_streams_query_key_metadata(ks_streams_t *s,
                                          const char *store,
                                          ks_bytes_t key,
                                          ks_key_query_metadata_t *out) {
        store_ref_t ref;
        memset(out, 0, sizeof(*out));
        out->partition  = -1;
        ks_error_t *err = ks__iq_route(s, store, -1, key, &ref, &out->partition,
                                       &out->partition_count);
        if (err)
                return err;
        ks_iq_t *iq = &s->iq;
        pthread_mutex_lock(&iq->lock);
        for (int i = 0; i < iq->task_cnt; i++) {
                const iq_task_t *it = iq->tasks[i];
                if (it->sub != ref.sub || it->partition != out->partition ||
                    it->closing)
                        continue;
                if (it->ready)
                        out->hosted = true;
                else
                        out->restoring = true;
        }
        pthread_mutex_unlock(&iq->lock);
        if (out->hosted)
                out->restoring = false;
        return NULL;
}

ks_error_t *ks_streams_query_kv_get(ks_streams_t *s,
                                    const char *store,
                                    ks_bytes_t key,
                                    ks_buf_t *value,
                                    bool *found) {
        store_ref_t ref;
        int32_t p;
        iq_task_t *it;
        ks_state_snapshot_t *snap;
        ks_bytes_t v;
        *found = false;
        if (value)
                ks_buf_clear(value);
        ks_error_t *err =
                ks__iq_route(s, store, KS_STORE_KV, key, &ref, &p, NULL);
        if (err || (err = ks__iq_acquire(s, store, ref.sub, p, &it)))
                return err;
        if (!(err = ks_state_env_snapshot(it->env, &snap))) {
                err = ks_state_snapshot_kv_get(snap, store, key, &v, found);
                if (!err && *found && value &&
                    ks_buf_append(value, v.data, v.len)) {
                        *found = false;
                        err    = ks_error_new(KS_ERR_NOMEM, "out of memory");
                }
                ks_state_snapshot_close(snap);
        }
        ks__iq_release(s, it);
        return err;
}
