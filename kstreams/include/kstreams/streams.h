/**
 * @file streams.h
 * @brief Running a topology against Kafka: a streams instance is a member of
 *        the consumer group named by application.id; start more instances
 *        (or threads) to spread the partitions, and with them the tasks.
 *
 * Rules of use:
 * - The topology must outlive the instance; the configuration is copied.
 * - Callbacks (state listener, error handler) run on a stream thread or in
 *   ks_streams_start()/ks_streams_close(): keep them short and thread-safe.
 * - Processing is at-least-once: offsets are committed only after every
 *   record produced for the consumed records has been acknowledged.
 * - The ks_streams_query_*() calls (interactive queries, below) may run on
 *   any thread while the instance runs.
 */
#ifndef KSTREAMS_STREAMS_H
#define KSTREAMS_STREAMS_H

#include "conf.h"
#include "error.h"
#include "topology.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_streams_s ks_streams_t;

typedef enum ks_state_e {
        KS_STATE_CREATED,
        KS_STATE_REBALANCING,
        KS_STATE_RUNNING,
        KS_STATE_PENDING_SHUTDOWN,
        KS_STATE_NOT_RUNNING,
        KS_STATE_ERROR
} ks_state_t;

/** @returns "CREATED", "RUNNING", ... */
KS_EXPORT const char *ks_state_name(ks_state_t state);

typedef void(ks_state_listener_fn)(ks_streams_t *streams,
                                   ks_state_t new_state,
                                   ks_state_t old_state,
                                   void *opaque);
/** Called once when a stream thread fails for good (a "fail" handler, a
 *  fatal Kafka error); the instance then shuts down into ERROR. */
typedef void(ks_error_handler_fn)(ks_streams_t *streams,
                                  const ks_error_t *error,
                                  void *opaque);

/**
 * Returns a new instance; free with ks_streams_destroy(). Borrows
 * @p topology; copies @p conf. application.id and bootstrap.servers are
 * required. NULL with @p errstr set on invalid configuration.
 */
KS_EXPORT ks_streams_t *ks_streams_new(const ks_topology_t *topology,
                                       const ks_conf_t *conf,
                                       char *errstr,
                                       size_t errstr_size);
/**
 * Set before ks_streams_start(). The listener and the error handler are
 * called with no lock of the instance held, one call at a time per
 * instance, in the order of the transitions: they may call
 * ks_streams_state(), ks_streams_metrics() and the other getters (the state
 * read may already be newer than the one being reported). They run on a
 * stream thread or on the thread calling ks_streams_start() /
 * ks_streams_close(), so they must not call ks_streams_close(), which waits
 * for the stream threads.
 */
KS_EXPORT void ks_streams_set_state_listener(ks_streams_t *s,
                                             ks_state_listener_fn *fn,
                                             void *opaque);
KS_EXPORT void ks_streams_set_error_handler(ks_streams_t *s,
                                            ks_error_handler_fn *fn,
                                            void *opaque);

/**
 * Checks that the brokers answer (within startup.timeout.ms), that the
 * source topics exist, that every sub-topology's input topics have one
 * partition count (co-partitioning; a repartition topic without a given
 * count takes the count of the topics it is joined with), creates the
 * internal topics, then starts num.stream.threads threads.
 * @returns NULL, or a new error saying what is wrong (nothing is started).
 */
KS_EXPORT ks_error_t *ks_streams_start(ks_streams_t *s);

/**
 * Stops the threads: each finishes its current records, commits, and leaves
 * the group, within @p timeout_ms. Sends and flushes wait no longer than
 * that (a full producer queue, a broker away): a thread that runs out of
 * time closes without committing, so what it processed since its last
 * commit is processed again after a restart (at-least-once: nothing lost).
 * @returns NULL; or KS_ERR_TIMED_OUT (new error) if a thread closed without
 *          committing, or if threads were still running at the timeout
 *          (they are still told to stop).
 */
KS_EXPORT ks_error_t *ks_streams_close(ks_streams_t *s, int timeout_ms);
KS_EXPORT void ks_streams_destroy(ks_streams_t *s);

KS_EXPORT ks_state_t ks_streams_state(const ks_streams_t *s);

/**
 * Counters summed over the instance's threads and tasks: a read-only view
 * that grows at its end, never changing a field's place or meaning, so
 * that a program built against an older header keeps working
 * (ks_streams_metrics_get() fills only the size it is given). Every field
 * is a uint64_t. The same figures, by thread and with histograms, lag and
 * store sizes, are on GET /metrics (http.listen) and
 * ks_streams_metrics_prometheus().
 */
typedef struct ks_streams_metrics_s {
        uint64_t records_consumed;
        uint64_t records_processed;
        uint64_t records_produced;
        uint64_t dropped_deserialization;
        uint64_t dropped_processing;
        uint64_t dropped_production;
        uint64_t dead_lettered;
        uint64_t punctuations;
        uint64_t dropped_late;     /**< records for windows already closed */
        uint64_t dropped_skipped;  /**< null keys/values aggregations skip */
        uint64_t records_restored; /**< changelog records replayed */
        uint64_t restore_ms;       /**< time spent restoring */
        uint64_t commits;
        uint64_t commit_failures;
        uint64_t commit_latency_ms_total; /**< sum over commits */
        uint64_t commit_latency_ms_max;
        uint64_t rebalances;
        uint64_t assigned_partitions; /**< now */
        uint64_t active_tasks;        /**< now */
        /** Store changes given to the record caches
         *  (statestore.cache.max.bytes); cache_flushed of them were logged
         *  and sent downstream, the rest collapsed into later updates. */
        uint64_t cache_puts;
        uint64_t cache_flushed;
        uint64_t restoring_tasks;           /**< now */
        uint64_t restore_records_remaining; /**< now, over restoring stores */
        /** Tasks closed without committing and recreated from their
         *  checkpoints because an internal (changelog or repartition)
         *  record could not be delivered. */
        uint64_t tasks_corrupted;
        /** Changelog records found after the last commit when restoring (a
         *  run crashed before committing them, and its input is processed
         *  again): written back with the committed values, so that
         *  at-least-once state is exact through crashes. */
        uint64_t changelog_records_undone;
        /** Records processed while another input partition of their task
         *  was empty, once max.task.idle.ms passed (KIP-695). */
        uint64_t enforced_processing;
        /* ---- since 0.2: fields are only ever added below this line ---- */
        uint64_t poll_time_us;    /**< stream threads waiting in poll */
        uint64_t process_time_us; /**< ... processing and punctuating */
        /** exactly_once_v2: transactions committed and aborted (each abort
         *  restarts the thread's tasks from the last commit), and
         *  producers made again after being fenced or failing fatally. */
        uint64_t transactions_committed;
        uint64_t transactions_aborted;
        uint64_t producers_recreated;
        /** Records ks_stream_deduplicate() dropped as duplicates. */
        uint64_t dropped_dedup;
} ks_streams_metrics_t;

/**
 * Fills the first @p size bytes of @p out (at most
 * sizeof(ks_streams_metrics_t) of this library; the rest of a larger
 * struct is zeroed). Safe to call from any thread at any time.
 * @param size sizeof(*out) as the caller was compiled.
 */
KS_EXPORT void ks_streams_metrics_get(const ks_streams_t *s,
                                      ks_streams_metrics_t *out,
                                      size_t size);

/** ks_streams_metrics_get() with the caller's struct size: source
 *  compatible with the call of earlier versions. (The function of that
 *  name is still exported, for programs built before the macro; it fills
 *  the fields of 0.1.) */
#define ks_streams_metrics(s, out)                                             \
        ks_streams_metrics_get((s), (out), sizeof(*(out)))

/**
 * Appends the instance's metrics to @p out in the Prometheus text
 * exposition format (version 0.0.4): what GET /metrics answers. The buffer
 * is the caller's (ks_buf_free()). Safe from any thread while the instance
 * exists; it never waits for a stream thread's loop.
 * @returns KS_OK or KS_ERR_NOMEM.
 */
KS_EXPORT ks_err_t ks_streams_metrics_prometheus(ks_streams_t *s,
                                                 ks_buf_t *out);

/**
 * The TCP port the HTTP endpoint (http.listen) listens on, once
 * ks_streams_start() succeeded: the one the system picked when http.listen
 * asked for port 0. @returns the port, or -1 when there is no endpoint.
 */
KS_EXPORT int ks_streams_http_port(const ks_streams_t *s);

/* ---- interactive queries ---------------------------------------------------
 *
 * Reading the materialized stores this instance hosts, from application
 * threads, as Kafka Streams' KafkaStreams#store() and
 * #queryMetadataForKey() do.
 *
 * Rules of use:
 * - Keys and values are the serialized bytes the store holds: serialize a
 *   key with the store's key serde, deserialize values with its value serde
 *   (a count's values are ks_serde_int64(): 8 bytes big-endian). Window
 *   stores are queried with the plain key and times; a window's start comes
 *   back beside its value.
 * - Reads see the state the stream thread committed last: at most
 *   commit.interval.ms old, never its uncommitted changes.
 *   Each read is one consistent LMDB snapshot; an iterator reads batches
 *   of up to 512 entries, each from its own snapshot, so a long iteration
 *   can see later commits between batches (never a torn one).
 * - A key lives in one partition, ks_partition_for_key() of its serialized
 *   key over the partition count of the store's sub-topology (the default
 *   partitioner of Java and of our producers): keys written through a
 *   custom partitioner are looked for in the wrong partition.
 * - Each instance answers only for the partitions (tasks) it hosts.
 *   ks_streams_query_key_owner() tells which instance of the group hosts
 *   a key (its application.server); the transport between instances is
 *   yours, or the HTTP endpoint's (http.listen), which forwards itself.
 * - Queries are allowed while the instance is RUNNING or REBALANCING;
 *   other states fail with KS_ERR_STATE.
 * - Errors: KS_ERR_NOT_FOUND for a store the topology does not have (not
 *   retriable), or a partition this instance does not host (retriable only
 *   while the instance is REBALANCING); KS_ERR_STATE, retriable, for a
 *   partition still restoring its state or that moved away during an
 *   iteration; KS_ERR_INVALID_ARG for a store of another kind.
 * - Only key-value and window stores can be queried; session stores
 *   cannot yet.
 * - Do not destroy the instance while a query runs.
 */

/** Where a store keeps a key (ks_streams_query_key_metadata()). */
typedef struct ks_key_query_metadata_s {
        int32_t partition;       /**< the key's partition: its task's */
        int32_t partition_count; /**< tasks of the store's sub-topology */
        bool hosted;             /**< this instance serves the partition now */
        bool restoring;          /**< this instance has it, still restoring */
} ks_key_query_metadata_t;

/**
 * Finds the partition of @p key (serialized) in store @p store and whether
 * this instance hosts it. The first call for a store asks the cluster for
 * the partition count of its changelog (one per task); later calls use it.
 * @returns NULL with @p *out filled, or a new error (a Kafka error is
 *          retriable).
 */
KS_EXPORT ks_error_t *ks_streams_query_key_metadata(
        ks_streams_t *s,
        const char *store,
        ks_bytes_t key,
        ks_key_query_metadata_t *out);

/** The group member serving a key's partition (ks_streams_query_key_owner()).
 */
typedef struct ks_key_owner_s {
        int32_t partition;   /**< the key's partition: its task's */
        bool local;          /**< one of this instance's own threads */
        char server[256];    /**< its application.server; "" if it set none */
        char client_id[256]; /**< its consumer's client.id */
        char host[128];      /**< its address as the broker sees it */
} ks_key_owner_t;

/**
 * Finds which member of the application's consumer group is assigned
 * @p key's partition of @p store, wherever it runs: the group is described
 * by its coordinator (one DescribeConsumerGroups request, waiting at most
 * @p timeout_ms), and the member's application.server read from its
 * client.id. Use it to send a query to the instance that can answer it.
 * The answer holds until the next rebalance: cache it if you like.
 * @returns NULL with @p *out filled; a new error otherwise: KS_ERR_NOT_FOUND
 *          (retriable) when no member has the partition (the group is
 *          rebalancing or empty), KS_ERR_KAFKA (retriable) when the
 *          coordinator could not be asked, or the errors of
 *          ks_streams_query_key_metadata().
 */
KS_EXPORT ks_error_t *ks_streams_query_key_owner(ks_streams_t *s,
                                                 const char *store,
                                                 ks_bytes_t key,
                                                 int timeout_ms,
                                                 ks_key_owner_t *out);

/**
 * Looks @p key (serialized) up in the key-value store @p store, in the
 * partition the key belongs to, if this instance hosts it.
 * @param value cleared, then receives a copy of the value when found; the
 *        buffer is the caller's (ks_buf_free()).
 * @returns NULL with @p *found set, or a new error (see the rules above).
 */
KS_EXPORT ks_error_t *ks_streams_query_kv_get(ks_streams_t *s,
                                              const char *store,
                                              ks_bytes_t key,
                                              ks_buf_t *value,
                                              bool *found);

typedef struct ks_query_iter_s ks_query_iter_t;

/**
 * Iterates the keys in [@p from, @p to] (serialized, compared as bytes; an
 * end with data NULL is open, both open: every key) of the key-value store
 * @p store, in @p partition, or with -1 in every partition this instance
 * hosts (partition by partition, each in key order).
 * @returns NULL and a new iterator in @p *itp (free with
 *          ks_query_iter_destroy()), or a new error: the partition is not
 *          hosted, or with -1 none is, or one of them is restoring.
 */
KS_EXPORT ks_error_t *ks_streams_query_kv_range(ks_streams_t *s,
                                                const char *store,
                                                int32_t partition,
                                                ks_bytes_t from,
                                                ks_bytes_t to,
                                                ks_query_iter_t **itp);

/**
 * Iterates the windows of @p key (serialized) in the window store
 * @p store whose start is in [@p time_from, @p time_to], by start, from
 * the partition the key belongs to (ks_query_iter_next_window()). Windows
 * past the store's retention are not returned.
 * @returns NULL and a new iterator in @p *itp, or a new error.
 */
KS_EXPORT ks_error_t *ks_streams_query_window_fetch(ks_streams_t *s,
                                                    const char *store,
                                                    ks_bytes_t key,
                                                    int64_t time_from,
                                                    int64_t time_to,
                                                    ks_query_iter_t **itp);

/**
 * Moves to the next entry. @returns false at the end or on an error
 * (ks_query_iter_error()). @p key and @p value are borrowed until the next
 * call or ks_query_iter_destroy(); either may be NULL.
 */
KS_EXPORT bool ks_query_iter_next(ks_query_iter_t *it,
                                  ks_bytes_t *key,
                                  ks_bytes_t *value);
/** The same for window fetches, with the window's start. */
KS_EXPORT bool ks_query_iter_next_window(ks_query_iter_t *it,
                                         ks_bytes_t *key,
                                         int64_t *window_start,
                                         ks_bytes_t *value);
/** The partition of the entry returned last. */
KS_EXPORT int32_t ks_query_iter_partition(const ks_query_iter_t *it);
/** The error that ended the iteration early, or NULL. Returns a borrowed
 *  pointer, valid until ks_query_iter_destroy(). */
KS_EXPORT const ks_error_t *ks_query_iter_error(const ks_query_iter_t *it);
/** Accepts NULL. */
KS_EXPORT void ks_query_iter_destroy(ks_query_iter_t *it);

#ifdef __cplusplus
}
#endif
#endif
