/* Structures shared by task.c and ctx.c only. */
#ifndef KS_TASK_PRIV_H
#define KS_TASK_PRIV_H

#include "conf_int.h"
#include "kstreams/store.h"
#include "log_int.h"
#include "record_cache.h"
#include "task_int.h"

struct ks_punctuator_s {
        int node;
        ks_punctuation_type_t type;
        int64_t interval;
        int64_t next; /* the next time it is due */
        ks_punctuate_fn *fn;
        void *opaque;
        bool cancelled;
};

/* One input partition's buffer: a ring of raw records. The head record is
 * deserialized ahead of processing (its timestamp decides which partition
 * goes next, as Kafka Streams' RecordQueue does) into the queue's arena,
 * which then also holds everything its processing allocates. */
typedef struct ks_queue_s {
        char *topic;
        int source_node;
        ks_raw_record_t *ring;
        size_t head, cnt, cap;
        bool head_ready;
        const void *head_key, *head_value;
        int64_t head_ts;
        int64_t partition_time;
        /* The next offset to commit: after the last record taken from the
         * queue (processed, or handled by an error handler); -1: none. And
         * what the last commit wrote for this partition. */
        int64_t consumed;
        int64_t committed, committed_time;
        ks_arena_t *arena;
        /* max.task.idle.ms: while empty and caught up, when it may stop
         * holding the task back (valid if idling). */
        bool idling;
        int64_t idle_deadline;
} ks_queue_t;

struct ks_ctx_s {
        ks_task_t *task;
        int node; /* the node being run */
        ks_arena_t *arena;
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp;
        const ks_header_t *headers;
        size_t header_cnt;
        ks_header_t *own_headers; /* arena copy after a header_add */
        size_t own_cap;
        /* The first failure while processing the current record. */
        int failed_node;
        ks_err_t fail_code;
        bool fail_in_sink;
        char fail_msg[256];
};

struct ks_task_s {
        const ks_topology_t *topology;
        const ks_conf_t *conf;
        const ks_collector_t *collector;
        int subtopology;
        int32_t partition;
        char id[32];
        const char *application_id;
        void **states;      /* per node id */
        char **sink_topics; /* full internal topic names, per node id */
        void **stores;      /* per node id: ks_kv_store_t / window store */
        char **changelogs;  /* per node id: its store's changelog topic */
        ks_buf_t *changelog_keys; /* per node id: scratch (store_write.c) */
        int64_t *changelog_acked; /* per node id: last acknowledged offset */
        /* Per store index: the changelog position of the last commit of
         * the input offsets (from their metadata); -1: unknown. */
        int64_t *committed_positions;
        int committed_position_cnt;
        ks_state_env_t *env; /* persistent stores; NULL: in memory */
        /* Per node id: the record cache of its store and how its entries
         * are read back to go downstream (task_cache.c). */
        ks_record_cache_t **caches;
        ks_serde_t **cache_key_serdes, **cache_value_serdes;
        ks_cache_budget_t own_budget; /* used unless the runtime shares one */
        ks_cache_budget_t *budget;
        ks_queue_t *queues;
        int queue_cnt;
        int64_t stream_time;
        int64_t max_idle_ms; /* max.task.idle.ms; -1: never wait */
        ks_punctuator_t **puncts;
        int punct_cnt;
        ks_arena_t *punct_arena;
        ks_ctx_t ctx;
        ks_buf_t key_buf, value_buf;
        ks_task_metrics_t metrics;
        ks_handler_t deser_handler, proc_handler, prod_handler;
        const char *dlq_topic;
        int64_t log_interval;
        ks_rate_limit_t rl_deser, rl_proc, rl_prod;
        bool initialized;
        struct ks_commit_hooks_s *commit_hooks; /* external sinks' */
        /* Per node id: Processor API store handles (state_store.c),
         * allocated by the first ks_ctx_state_store(); may be NULL. */
        struct ks_state_store_s *store_handles;
};

/** Runs node @p id on a record. @locality stream thread */
ks_err_t ks__task_run_node(ks_ctx_t *ctx,
                           int id,
                           const void *key,
                           const void *value);

int64_t ks__task_wall_clock(const ks_task_t *task);
/** Points the task's context at node @p node for a record with this
 *  context (task.c). */
void ks__task_ctx_enter(ks_task_t *task,
                        int node,
                        ks_arena_t *arena,
                        const char *topic,
                        int32_t partition,
                        int64_t offset,
                        int64_t ts,
                        const ks_header_t *headers,
                        size_t header_cnt);
/** Frees the record caches without flushing them (task_cache.c). */
void ks__task_drop_caches(ks_task_t *task);
/** Creates the stores of the task's nodes (task_state.c). */
ks_error_t *ks__task_open_stores(ks_task_t *task);
void ks__task_close_stores(ks_task_t *task);

/* For the DSL's stateful processors. @locality stream thread */
ks_kv_store_t *ks__ctx_kv_store(ks_ctx_t *ctx);
ks_window_store_t *ks__ctx_window_store(ks_ctx_t *ctx);
ks_session_store_t *ks__ctx_session_store(ks_ctx_t *ctx);
/** Any store of the task by name (for nodes with a store reference);
 *  NULL if the task has none of that name. Cast by the store's kind. */
void *ks__ctx_store_named(ks_ctx_t *ctx, const char *name);
/* ---- store writes (store_write.c): what operators call ------------------ */

/** What goes downstream after a store write, through the record cache:
 *  the key and value objects (borrowed; the cache reads its bytes back
 *  with these serdes, which must outlive the task), the record time, and
 *  whether the key was not in the store before. */
typedef struct ks_store_emit_s {
        const void *key_obj, *value_obj;
        int64_t timestamp;
        bool created;
        ks_serde_t *key_serde, *value_serde;
} ks_store_emit_t;

/**
 * Writes the current node's store (value.data NULL deletes), then its
 * changelog; with @p emit, the change also goes downstream (at once, or
 * through the record cache). The one place changelog records are made.
 */
ks_err_t ks__ctx_kv_put(ks_ctx_t *ctx,
                        ks_bytes_t key,
                        ks_bytes_t value,
                        const ks_store_emit_t *emit);
/** The same for the key-value store of node @p node (a store one node
 *  owns and another writes: a stream-stream join's shared outer store). */
ks_err_t ks__ctx_kv_put_for(ks_ctx_t *ctx,
                            int node,
                            ks_bytes_t key,
                            ks_bytes_t value);
/** The same for the window store of node @p node, never through a cache
 *  (a Processor API store, state_store.c). */
ks_err_t ks__ctx_window_put_for(ks_ctx_t *ctx,
                                int node,
                                ks_bytes_t key,
                                int64_t start,
                                ks_bytes_t value);
/** Frees the Processor API store handles (state_store.c). */
void ks__task_free_store_handles(ks_task_t *task);
ks_err_t ks__ctx_window_put(ks_ctx_t *ctx,
                            ks_bytes_t key,
                            int64_t start,
                            ks_bytes_t value,
                            const ks_store_emit_t *emit);
ks_err_t ks__ctx_session_put(ks_ctx_t *ctx,
                             ks_bytes_t key,
                             int64_t start,
                             int64_t end,
                             ks_bytes_t value,
                             const ks_store_emit_t *emit);
/** Records a store error on the context and destroys it. */
ks_err_t ks__ctx_store_failed(ks_ctx_t *ctx, ks_error_t *e);
/** The changelog key of a write to a store of @p kind (ks_store_kind_t)
 *  into @p out (cleared first). */
ks_err_t ks__changelog_key(ks_buf_t *out,
                           int kind,
                           ks_bytes_t key,
                           int64_t start,
                           int64_t end);
/** Reads a changelog key back. @returns false if it is too short for a
 *  store of @p kind. @p key borrows from @p clkey. */
bool ks__changelog_key_parse(int kind,
                             ks_bytes_t clkey,
                             ks_bytes_t *key,
                             int64_t *start,
                             int64_t *end);

void ks__ctx_count_late(ks_ctx_t *ctx);
/** Counts a record an aggregation cannot use (null key or value). */
void ks__ctx_count_skipped(ks_ctx_t *ctx);
/** Counts a duplicate ks_stream_deduplicate() dropped. */
void ks__ctx_count_dedup(ks_ctx_t *ctx);

#endif
