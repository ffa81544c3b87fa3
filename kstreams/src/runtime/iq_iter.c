/* Interactive queries: iterators over key ranges and windows, read in
 * bounded batches, each from one LMDB snapshot of the partition's task
 * (iq.c explains the lifetime and consistency rules they keep). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iq_int.h"

#define BATCH_ENTRIES 512
#define BATCH_BYTES   ((size_t)1 << 20)

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
        ks_error_t *err = ks__iq_acquire(it->s, it->store, it->sub, p, &task);
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
        ks__iq_release(it->s, task);
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
                        return ks__iq_restoring(store, restore_part);
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
        ks_error_t *err = ks__iq_check_state(s);
        if (!err)
                err = ks__iq_find_store(s, store, KS_STORE_KV, &ref);
        if (err)
                return err;
        if (partition >= 0) {
                if ((err = ks__iq_probe(s, store, ref.sub, partition)))
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
        *itp = NULL;
        ks_error_t *err =
                ks__iq_route(s, store, KS_STORE_WINDOW, key, &ref, &p, NULL);
        if (err || (err = ks__iq_probe(s, store, ref.sub, p)) ||
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
