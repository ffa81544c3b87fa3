/* The commit protocol, one function for the Kafka runtime and the test
 * driver: flush the record caches -> wait for everything sent to be
 * acknowledged -> commit the input offsets with each partition's time in
 * their metadata -> commit the stores with their checkpoints. Kafka first,
 * LMDB second: a crash in between leaves a store behind its changelog,
 * never ahead, and restoration replays only the tail. Exactly-once
 * makes step 3 a Kafka transaction's commit (the offsets sent to it, then
 * EndTxn): a crash before it aborts both Kafka's side and LMDB's.
 * @locality stream thread (or the test driver's caller) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit_hook_int.h"
#include "task_int.h"

#define METADATA_PREFIX "kstreams:1:pt="

int ks__offset_metadata_encode(const ks_task_t *task,
                               int64_t partition_time,
                               char *out,
                               size_t out_size) {
        int64_t pos[KS_METADATA_MAX_STORES];
        int n   = task ? ks__task_changelog_positions(task, pos,
                                                      KS_METADATA_MAX_STORES)
                       : 0;
        int len = snprintf(out, out_size, METADATA_PREFIX "%" PRId64,
                           partition_time);
        if (n > KS_METADATA_MAX_STORES)
                n = 0; /* too many to carry: restoration replays all */
        for (int i = 0; i < n && len >= 0 && (size_t)len < out_size; i++)
                len += snprintf(out + len, out_size - (size_t)len, "%s%" PRId64,
                                i ? "," : ":cl=", pos[i]);
        return len;
}

int64_t ks__offset_metadata_decode(const void *metadata,
                                   size_t len,
                                   int64_t *positions,
                                   int *cnt) {
        size_t plen = sizeof(METADATA_PREFIX) - 1;
        char buf[1024];
        *cnt = 0;
        if (!metadata || len <= plen || len >= sizeof(buf) ||
            memcmp(metadata, METADATA_PREFIX, plen))
                return -1;
        memcpy(buf, metadata, len);
        buf[len] = '\0';
        char *end;
        long long pt = strtoll(buf + plen, &end, 10);
        if (pt < -1 || (*end && *end != ':'))
                return -1;
        if (!strncmp(end, ":cl=", 4)) {
                char *p = end + 4;
                int n   = 0;
                while (*p && n < KS_METADATA_MAX_STORES) {
                        long long v = strtoll(p, &end, 10);
                        if (end == p || (*end && *end != ','))
                                break;
                        positions[n++] = v;
                        p              = *end ? end + 1 : end;
                }
                if (!*p)
                        *cnt = n;
        }
        return (int64_t)pt;
}

/* Gathers the moved offsets of every task into one array (new; free()). */
static ks_task_offset_t *gather(ks_task_t *const *tasks, int n, int *cnt) {
        int total = 0;
        for (int i = 0; i < n; i++)
                total += ks__task_offsets(tasks[i], NULL, 0, true);
        ks_task_offset_t *all = calloc((size_t)total + 1, sizeof(*all));
        if (!all)
                return NULL;
        int at = 0;
        for (int i = 0; i < n; i++)
                at += ks__task_offsets(tasks[i], all + at, total - at, true);
        *cnt = at;
        return all;
}

ks_error_t *ks__commit(ks_task_t *const *tasks,
                       int n,
                       const ks_commit_ops_t *ops,
                       ks_commit_result_t *result) {
        ks_commit_result_t ignored;
        if (!result)
                result = &ignored;
        memset(result, 0, sizeof(*result));
        /* 1. The cached changes go out first, so that the flush below waits
         * for their changelog records too. */
        for (int i = 0; i < n; i++) {
                ks_error_t *err = ks__task_flush_cache(tasks[i]);
                if (err) {
                        result->failed_step = KS_COMMIT_CACHES;
                        return err;
                }
        }
        /* Then external sinks commit what they hold (a PostgreSQL
         * transaction): before any offset, so they are never behind them.
         * A retriable failure (the database away) postpones the commit. */
        for (int i = 0; i < n; i++) {
                ks_error_t *err = ks__task_run_commit_hooks(tasks[i]);
                if (err) {
                        result->failed_step = ks_error_is_retriable(err)
                                                      ? KS_COMMIT_HOOKS
                                                      : KS_COMMIT_CACHES;
                        return err;
                }
        }
        /* 2. Every record sent is acknowledged: changelog checkpoints may
         * move to what the broker has. */
        ks_error_t *err = ops->flush ? ops->flush(ops->opaque) : NULL;
        if (err) {
                result->failed_step = KS_COMMIT_FLUSH;
                return err;
        }
        /* 3. The input offsets, with each partition's time (nothing to
         * gather where there is nowhere to send them: the test driver,
         * which commits after every record). */
        int cnt = 0;
        if (ops->commit_offsets) {
                ks_task_offset_t *all = gather(tasks, n, &cnt);
                if (!all)
                        return ks_error_new(KS_ERR_NOMEM,
                                            "commit: out of memory");
                if (cnt > 0 || ops->transactional)
                        err = ops->commit_offsets(ops->opaque, all, cnt);
                free(all);
        }
        if (!err) {
                for (int i = 0; i < n; i++)
                        ks__task_offsets_committed(tasks[i]);
                result->offsets = cnt;
        }
        /* 4. The stores. Under at-least-once, committed even when the
         * offsets were not: they match the acknowledged changelog either
         * way, and records after the committed offsets are replayed anyway.
         * Not in a transaction that failed: it is aborted, and its
         * changelog records with it. */
        if (err && ops->transactional) {
                result->failed_step = KS_COMMIT_OFFSETS;
                return err;
        }
        ks_error_t *serr = NULL;
        for (int i = 0; i < n && !serr; i++)
                serr = ks__task_commit_state(tasks[i]);
        if (err) {
                result->failed_step = KS_COMMIT_OFFSETS;
                ks_error_destroy(serr);
                return err;
        }
        if (serr) {
                result->failed_step = KS_COMMIT_STORES;
                return ks_error_set_fatal(serr, true);
        }
        return NULL;
}
