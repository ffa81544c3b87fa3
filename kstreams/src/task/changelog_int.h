/* Below the store writes (store_write.c): sending a store's changes to
 * its changelog and downstream, directly or through the record cache.
 * Only the task layer includes this; operators write through
 * ks__ctx_kv_put() and its siblings (task_priv.h), never here. */
#ifndef KS_CHANGELOG_INT_H
#define KS_CHANGELOG_INT_H

#include "task_priv.h"

/** Sends a change of the current node's store to its changelog. */
ks_err_t ks__ctx_log_change(ks_ctx_t *ctx, ks_bytes_t key, ks_bytes_t value);
/** The same for the store of node @p node (a store one node owns and
 *  another writes, as a stream-stream join's shared outer store). */
ks_err_t ks__ctx_log_change_for(ks_ctx_t *ctx,
                                int node,
                                ks_bytes_t key,
                                ks_bytes_t value);
/** A change of the current node's store, already written to the store. */
typedef struct ks_change_s {
        ks_bytes_t key;   /* the changelog key */
        ks_bytes_t value; /* data NULL: deleted */
        /* The downstream record if it goes now (no cache): its key and
         * value objects and timestamp. */
        const void *key_obj, *value_obj;
        int64_t timestamp;
        bool created; /* the key was not in the store before this write */
} ks_change_t;

/**
 * Logs a change of the current node's store and forwards it downstream:
 * at once when statestore.cache.max.bytes is 0, else through the task's
 * record cache, which keeps the latest change per key until the commit (or
 * until the cache is full) and then logs it and forwards @p key_serde's and
 * @p value_serde's reading of its bytes (borrowed; they must outlive the
 * task, as the operator's own serdes do). Repeated updates of a key within
 * a commit interval thus cost one changelog and one downstream record.
 */
ks_err_t ks__ctx_emit_change(ks_ctx_t *ctx,
                             const ks_change_t *change,
                             ks_serde_t *key_serde,
                             ks_serde_t *value_serde);
#endif
