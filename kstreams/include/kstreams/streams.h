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
/** Set before ks_streams_start(). */
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
 * the group. @returns NULL, or an error if it took longer than
 * @p timeout_ms (the threads are still told to stop).
 */
KS_EXPORT ks_error_t *ks_streams_close(ks_streams_t *s, int timeout_ms);
KS_EXPORT void ks_streams_destroy(ks_streams_t *s);

KS_EXPORT ks_state_t ks_streams_state(const ks_streams_t *s);

/** Counters summed over the instance's threads and tasks. */
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
} ks_streams_metrics_t;

/** Fills @p out. Safe to call from any thread at any time. */
KS_EXPORT void ks_streams_metrics(const ks_streams_t *s,
                                  ks_streams_metrics_t *out);

#ifdef __cplusplus
}
#endif
#endif
