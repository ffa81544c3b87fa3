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
#include "streams_int.h"

#define BATCH_ENTRIES       512
#define BATCH_BYTES         ((size_t)1 << 20)
#define METADATA_TIMEOUT_MS 10000

typedef struct ks_iq_task_s {
        const ks_task_t *task;
        int sub;
        int32_t partition;
        ks_state_env_t *env;
        bool ready;   /* restored: queries may read it */
        bool closing; /* being unregistered: no new query */
        int users;    /* queries reading it now */
} iq_task_t;

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

typedef struct store_ref_s {
        const ks_store_spec_t *spec;
        int sub;
} store_ref_t;

static const char *kind_name(ks_store_kind_t kind) {
        return kind == KS_STORE_KV       ? "key-value"
               : kind == KS_STORE_WINDOW ? "window"
                                         : "session";
}

static ks_error_t *check_state(ks_streams_t *s) {
        ks_state_t st = (ks_state_t)atomic_load(&s->state_seen);
        if (st == KS_STATE_RUNNING || st == KS_STATE_REBALANCING)
                return NULL;
        return ks_error_new(KS_ERR_STATE,
                            "the instance is %s: stores can be queried while "
                            "it is RUNNING or REBALANCING",
                            ks_state_name(st));
}

/* The store @p name, of kind @p want (-1: any kind). */
static ks_error_t *find_store(ks_streams_t *s,
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
        rd_kafka_t *rk        = ks__stream_thread_producer(s->threads[0]);
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

static ks_error_t *restoring(const char *store, int32_t partition) {
        return ks_error_set_retriable(
                ks_error_new(KS_ERR_STATE,
                             "partition %d of store %s is restoring on this "
                             "instance: retry when it is done",
                             (int)partition, store),
                true);
}

/* Holds the ready task of (sub, partition) for one read: release() it. */
static ks_error_t *acquire(ks_streams_t *s,
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
        return restore ? restoring(store, partition)
                       : not_hosted(s, store, partition);
}

static void release(ks_streams_t *s, iq_task_t *it) {
        ks_iq_t *iq = &s->iq;
        pthread_mutex_lock(&iq->lock);
        if (--it->users == 0 && it->closing)
                pthread_cond_broadcast(&iq->released);
        pthread_mutex_unlock(&iq->lock);
}

static ks_error_t *probe(ks_streams_t *s,
                         const char *store,
                         int sub,
                         int32_t partition) {
        iq_task_t *it;
        ks_error_t *err = acquire(s, store, sub, partition, &it);
        if (!err)
                release(s, it);
        return err;
}

/* The key's store, sub-topology and partition, checking what a read needs. */
static ks_error_t *route(ks_streams_t *s,
                         const char *store,
                         int kind,
                         ks_bytes_t key,
                         store_ref_t *ref,
                         int32_t *partition,
                         int32_t *count) {
        int32_t cnt;
        ks_error_t *err = check_state(s);
        if (!err)
                err = find_store(s, store, kind, ref);
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
        ks_error_t *err = route(s, store, -1, key, &ref, partition, NULL);
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
        ks_error_t *err = route(s, store, -1, key, &ref, &out->partition,
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
        ks_error_t *err = route(s, store, KS_STORE_KV, key, &ref, &p, NULL);
        if (err || (err = acquire(s, store, ref.sub, p, &it)))
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
        release(s, it);
        return err;
}

/* ---- iterators -----------------------------------------------------------
 */

typedef struct entry_s {
        size_t key_off;
        size_t key_len;
        size_t value_off;
        size_t value_len;
        int64_t start;
} entry_t;

struct ks_query_iter_s {
        ks_streams_t *s;
        char *store;
        int sub;
        bool window;
        int32_t *partitions; /* to read, in order */
        int partition_cnt;
        int partition_idx; /* the one being read */
        /* key-value: [from, to]; window: key, [time_from, time_to] */
        ks_buf_t from, to;
        bool has_from, has_to;
        ks_buf_t key;
        int64_t time_from, time_to;
        /* where the next batch of the partition starts (after this) */
        ks_buf_t last;
        int64_t last_start;
        bool has_last;
        /* the batch: entries point into data */
        ks_buf_t data;
        entry_t *entries;
        size_t n, pos;
        int32_t batch_partition;
        int32_t partition; /* of the entry returned last */
        bool done;
        ks_error_t *err;
};

static ks_bytes_t buf_bytes(const ks_buf_t *b) {
        return (ks_bytes_t){b->data, b->len};
}

static ks_err_t set_bytes(ks_buf_t *buf, ks_bytes_t b) {
        ks_buf_clear(buf);
        /* Never NULL data, even for an empty slice. */
        if (ks_buf_reserve(buf, 1))
                return KS_ERR_NOMEM;
        return ks_buf_append(buf, b.data, b.len);
}

static ks_error_t *copy_error(const ks_error_t *e) {
        ks_error_t *c =
                ks_error_new(ks_error_code(e), "%s", ks_error_message(e));
        ks_error_set_retriable(c, ks_error_is_retriable(e));
        return ks_error_set_fatal(c, ks_error_is_fatal(e));
}

static ks_error_t *append(ks_query_iter_t *it,
                          ks_bytes_t k,
                          ks_bytes_t v,
                          int64_t start) {
        entry_t *e   = &it->entries[it->n];
        e->key_off   = it->data.len;
        e->key_len   = k.len;
        e->value_off = it->data.len + k.len;
        e->value_len = v.len;
        e->start     = start;
        if (ks_buf_append(&it->data, k.data, k.len) ||
            ks_buf_append(&it->data, v.data, v.len))
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        it->n++;
        return NULL;
}

static bool is_last(const ks_query_iter_t *it, ks_bytes_t k) {
        return it->has_last && k.len == it->last.len &&
               (!k.len || !memcmp(k.data, it->last.data, k.len));
}

/* Reads the next batch of partition @p p into the iterator, in one
 * snapshot. *exhausted: the partition has nothing after it. */
static ks_error_t *read_batch(ks_query_iter_t *it, int32_t p, bool *exhausted) {
        iq_task_t *task;
        ks_state_snapshot_t *snap = NULL;
        ks_store_iter_t *sit      = NULL;
        ks_bytes_t k, v, none = {NULL, 0};
        int64_t start   = 0;
        *exhausted      = true;
        ks_error_t *err = acquire(it->s, it->store, it->sub, p, &task);
        if (err) /* it was here when the iteration began */
                return ks_error_set_retriable(err, true);
        if ((err = ks_state_env_snapshot(task->env, &snap)))
                goto out;
        if (it->window)
                err = ks_state_snapshot_window_fetch(
                        snap, it->store, buf_bytes(&it->key),
                        it->has_last ? it->last_start + 1 : it->time_from,
                        it->time_to, &sit);
        else
                err = ks_state_snapshot_kv_range(
                        snap, it->store,
                        it->has_last   ? buf_bytes(&it->last)
                        : it->has_from ? buf_bytes(&it->from)
                                       : none,
                        it->has_to ? buf_bytes(&it->to) : none, &sit);
        if (err)
                goto out;
        for (;;) {
                bool more = it->window ? ks_store_iter_next_window(sit, &k,
                                                                   &start, &v)
                                       : ks_store_iter_next(sit, &k, &v);
                if (!more)
                        break;
                if (!it->window && is_last(it, k))
                        continue;
                if (it->n == BATCH_ENTRIES || it->data.len >= BATCH_BYTES) {
                        *exhausted = false;
                        break;
                }
                if ((err = append(it, k, v, start)))
                        goto out;
        }
        if (*exhausted && ks_store_iter_error(sit))
                err = copy_error(ks_store_iter_error(sit));
        if (!err && it->n) {
                const entry_t *e = &it->entries[it->n - 1];
                it->last_start   = e->start;
                it->has_last     = true;
                if (set_bytes(&it->last,
                              (ks_bytes_t){it->data.data + e->key_off,
                                           e->key_len}))
                        err = ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
out:
        ks_store_iter_destroy(sit);
        ks_state_snapshot_close(snap);
        release(it->s, task);
        return err;
}

static bool fetch(ks_query_iter_t *it) {
        it->n = it->pos = 0;
        ks_buf_clear(&it->data);
        while (!it->n) {
                bool exhausted;
                if (it->done || it->partition_idx >= it->partition_cnt) {
                        it->done = true;
                        return false;
                }
                int32_t p       = it->partitions[it->partition_idx];
                ks_error_t *err = read_batch(it, p, &exhausted);
                if (err) {
                        it->err  = err;
                        it->done = true;
                        it->n    = 0;
                        return false;
                }
                it->batch_partition = p;
                if (exhausted) {
                        it->partition_idx++;
                        it->has_last = false;
                }
        }
        return true;
}

static ks_error_t *iter_new(ks_streams_t *s,
                            const char *store,
                            const store_ref_t *ref,
                            bool window,
                            ks_query_iter_t **itp) {
        ks_query_iter_t *it = calloc(1, sizeof(*it));
        *itp                = NULL;
        if (!it)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        it->s         = s;
        it->sub       = ref->sub;
        it->window    = window;
        it->partition = -1;
        it->store     = strdup(store);
        it->entries   = malloc(BATCH_ENTRIES * sizeof(*it->entries));
        /* data is never NULL, so empty keys and values point somewhere. */
        if (!it->store || !it->entries || ks_buf_reserve(&it->data, 4096)) {
                ks_query_iter_destroy(it);
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        *itp = it;
        return NULL;
}

static int cmp_i32(const void *a, const void *b) {
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
        return x < y ? -1 : x > y;
}

/* The partitions of sub-topology @p sub this instance hosts, ascending. */
static ks_error_t *local_partitions(ks_streams_t *s,
                                    const char *store,
                                    int sub,
                                    int32_t **out,
                                    int *cnt) {
        ks_iq_t *iq          = &s->iq;
        int n                = 0;
        int32_t restore_part = -1;
        pthread_mutex_lock(&iq->lock);
        int32_t *parts = malloc(((size_t)iq->task_cnt + 1) * sizeof(*parts));
        for (int i = 0; parts && i < iq->task_cnt; i++) {
                const iq_task_t *it = iq->tasks[i];
                if (it->sub != sub || it->closing)
                        continue;
                if (!it->ready) {
                        restore_part = it->partition;
                        continue;
                }
                bool dup = false;
                for (int k = 0; k < n; k++)
                        dup = dup || parts[k] == it->partition;
                if (!dup)
                        parts[n++] = it->partition;
        }
        pthread_mutex_unlock(&iq->lock);
        *out = NULL;
        *cnt = 0;
        if (!parts)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        if (restore_part >= 0 || !n) {
                free(parts);
                if (restore_part >= 0)
                        return restoring(store, restore_part);
                bool rebalancing = atomic_load(&s->state_seen) ==
                                   (int)KS_STATE_REBALANCING;
                return ks_error_set_retriable(
                        ks_error_new(KS_ERR_NOT_FOUND,
                                     "no partition of store %s is hosted by "
                                     "this instance%s",
                                     store,
                                     rebalancing ? " (it is rebalancing: "
                                                   "retry)"
                                                 : ""),
                        rebalancing);
        }
        qsort(parts, (size_t)n, sizeof(*parts), cmp_i32);
        *out = parts;
        *cnt = n;
        return NULL;
}

ks_error_t *ks_streams_query_kv_range(ks_streams_t *s,
                                      const char *store,
                                      int32_t partition,
                                      ks_bytes_t from,
                                      ks_bytes_t to,
                                      ks_query_iter_t **itp) {
        store_ref_t ref;
        ks_query_iter_t *it;
        int32_t *parts  = NULL;
        int cnt         = 0;
        *itp            = NULL;
        ks_error_t *err = check_state(s);
        if (!err)
                err = find_store(s, store, KS_STORE_KV, &ref);
        if (err)
                return err;
        if (partition >= 0) {
                if ((err = probe(s, store, ref.sub, partition)))
                        return err;
                if (!(parts = malloc(sizeof(*parts))))
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                parts[0] = partition;
                cnt      = 1;
        } else if ((err = local_partitions(s, store, ref.sub, &parts, &cnt))) {
                return err;
        }
        if ((err = iter_new(s, store, &ref, false, &it))) {
                free(parts);
                return err;
        }
        it->partitions    = parts;
        it->partition_cnt = cnt;
        it->has_from      = from.data != NULL;
        it->has_to        = to.data != NULL;
        if ((it->has_from && set_bytes(&it->from, from)) ||
            (it->has_to && set_bytes(&it->to, to))) {
                ks_query_iter_destroy(it);
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        *itp = it;
        return NULL;
}

ks_error_t *ks_streams_query_window_fetch(ks_streams_t *s,
                                          const char *store,
                                          ks_bytes_t key,
                                          int64_t time_from,
                                          int64_t time_to,
                                          ks_query_iter_t **itp) {
        store_ref_t ref;
        int32_t p;
        ks_query_iter_t *it;
        *itp            = NULL;
        ks_error_t *err = route(s, store, KS_STORE_WINDOW, key, &ref, &p, NULL);
        if (err || (err = probe(s, store, ref.sub, p)) ||
            (err = iter_new(s, store, &ref, true, &it)))
                return err;
        it->time_from     = time_from;
        it->time_to       = time_to;
        it->partition_cnt = 1;
        if (!(it->partitions = malloc(sizeof(*it->partitions))) ||
            set_bytes(&it->key, key)) {
                ks_query_iter_destroy(it);
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        it->partitions[0] = p;
        *itp              = it;
        return NULL;
}

bool ks_query_iter_next_window(ks_query_iter_t *it,
                               ks_bytes_t *key,
                               int64_t *window_start,
                               ks_bytes_t *value) {
        if (it->pos == it->n && !fetch(it))
                return false;
        const entry_t *e = &it->entries[it->pos++];
        it->partition    = it->batch_partition;
        if (key)
                *key = (ks_bytes_t){it->data.data + e->key_off, e->key_len};
        if (value)
                *value = (ks_bytes_t){it->data.data + e->value_off,
                                      e->value_len};
        if (window_start)
                *window_start = e->start;
        return true;
}

bool ks_query_iter_next(ks_query_iter_t *it,
                        ks_bytes_t *key,
                        ks_bytes_t *value) {
        return ks_query_iter_next_window(it, key, NULL, value);
}

int32_t ks_query_iter_partition(const ks_query_iter_t *it) {
        return it->partition;
}

const ks_error_t *ks_query_iter_error(const ks_query_iter_t *it) {
        return it->err;
}

void ks_query_iter_destroy(ks_query_iter_t *it) {
        if (!it)
                return;
        free(it->store);
        free(it->partitions);
        free(it->entries);
        ks_buf_free(&it->from);
        ks_buf_free(&it->to);
        ks_buf_free(&it->key);
        ks_buf_free(&it->last);
        ks_buf_free(&it->data);
        ks_error_destroy(it->err);
        free(it);
}
