/* A task: one sub-topology over one partition number. The test driver and
 * the Kafka runtime both feed records in and let it process them; neither
 * has its own copy of this logic. */
#ifndef KS_TASK_INT_H
#define KS_TASK_INT_H

#include "kstreams/conf.h"
#include "kstreams/error.h"
#include "topology_int.h"

struct ks_state_env_s;

/** A record as it arrived, bytes not yet deserialized. The bytes and
 *  headers stay valid until the collector's release() is called. */
typedef struct ks_raw_record_s {
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp;
        ks_bytes_t key;   /* data NULL: null key */
        ks_bytes_t value; /* data NULL: tombstone */
        const ks_header_t *headers;
        size_t header_cnt;
        void *handle; /* the feeder's own reference, given to release() */
} ks_raw_record_t;

/** Where a task's output goes: in-memory topics (driver) or a producer. */
typedef struct ks_collector_s {
        /** Sends one record. @p partition -1 lets the producer choose.
         *  @p acked, when not NULL, is raised to the record's offset once
         *  the broker acknowledges it (changelog checkpoints). */
        ks_err_t (*send)(void *opaque,
                         const char *topic,
                         int32_t partition,
                         ks_bytes_t key,
                         ks_bytes_t value,
                         int64_t timestamp,
                         const ks_header_t *headers,
                         size_t header_cnt,
                         int64_t *acked,
                         char *errstr,
                         size_t errstr_size);
        /** @returns the topic's partition count, or -1 if unknown. */
        int32_t (*partition_count)(void *opaque, const char *topic);
        /** The task is done with a raw record. May be NULL. */
        void (*release)(void *opaque, void *handle);
        /** @returns the wall-clock time in ms (the driver's mock clock).
         *  May be NULL: system time. */
        int64_t (*wall_clock)(void *opaque);
        /** @returns how many records of input partition @p topic /
         *  @p partition the broker has that the feeder has not enqueued
         *  yet, as last fetched (Kafka Streams' fetched lag): -1 when not
         *  known yet, else >= 0. Asked only for an input partition whose
         *  queue is empty, from ks__task_process_one(), unless
         *  max.task.idle.ms is -1. May be NULL: every partition is caught
         *  up (lag 0), as in the test driver, which enqueues everything
         *  before it processes. */
        int64_t (*fetched_lag)(void *opaque,
                               const char *topic,
                               int32_t partition);
        void *opaque;
} ks_collector_t;

typedef struct ks_task_metrics_s {
        uint64_t records_consumed;  /* enqueued */
        uint64_t records_processed; /* went through the sub-topology */
        uint64_t records_produced;  /* sent by sinks */
        uint64_t dropped_deserialization;
        uint64_t dropped_processing;
        uint64_t dropped_production;
        uint64_t dead_lettered;
        uint64_t punctuations;
        uint64_t dropped_late;    /* records for windows already closed */
        uint64_t dropped_skipped; /* null keys/values an aggregation skips */
        uint64_t cache_puts;      /* store changes given to record caches */
        uint64_t cache_flushed;   /* ... that left them (the rest collapsed) */
        /* Records processed while an input partition was empty, after it
         * idled max.task.idle.ms caught up (Kafka Streams'
         * enforced-processing). */
        uint64_t enforced_processing;
        uint64_t dropped_dedup; /* duplicates ks_stream_deduplicate() drops */
} ks_task_metrics_t;

typedef struct ks_task_s ks_task_t;

/** Returns a new task; free with ks__task_destroy(). Borrows @p topology,
 *  @p conf and @p collector, which must outlive it. Takes ownership of
 *  @p env in every case (closed on failure): the task's stores are
 *  persistent in it; with NULL they are in memory (the test driver). */
ks_task_t *ks__task_new(const ks_topology_t *topology,
                        int subtopology,
                        int32_t partition,
                        const ks_conf_t *conf,
                        const ks_collector_t *collector,
                        struct ks_state_env_s *env,
                        char *errstr,
                        size_t errstr_size);
/** Checks the error-handler settings (a dead-letter handler needs a
 *  topic). @returns KS_OK or KS_ERR_INVALID_ARG with @p errstr. */
ks_err_t ks__conf_check_handlers(const ks_conf_t *conf,
                                 char *errstr,
                                 size_t errstr_size);
/** Runs every processor's init(). */
ks_error_t *ks__task_init(ks_task_t *task);
/** Runs every processor's close(); releases buffered records. */
void ks__task_destroy(ks_task_t *task);

/** Releases every buffered record unprocessed: they will be fetched again
 *  from the committed offsets (a suspended task). */
void ks__task_drop_buffered(ks_task_t *task);
/** True if one of the task's sources reads @p topic. */
bool ks__task_reads(const ks_task_t *task, const char *topic);
/** Buffers a record. Copies the struct; the bytes stay the feeder's until
 *  release(). KS_ERR_NOT_FOUND if no source reads its topic. */
ks_err_t ks__task_enqueue(ks_task_t *task, const ks_raw_record_t *rec);
size_t ks__task_buffered(const ks_task_t *task);
/** Buffered records of one input topic (the partition is the task's). */
size_t ks__task_buffered_topic(const ks_task_t *task, const char *topic);

/**
 * Processes the buffered record with the smallest timestamp across the
 * task's input partitions, then runs due stream-time punctuators. While an
 * input partition is empty it first applies max.task.idle.ms as Kafka
 * Streams' PartitionGroup.readyToProcess() does, asking the collector's
 * fetched_lag(): not ready while that partition's lag is unknown or > 0,
 * or while it has been caught up for less than max.task.idle.ms of the
 * collector's wall clock.
 * @returns 1 if a record was taken (processed or handled as an error), 0 if
 *          nothing is buffered or the task is not ready to process yet
 *          (call again later), -1 with @p *errp set when a handler says
 *          "fail" (the record is consumed; the task may go on).
 */
int ks__task_process_one(ks_task_t *task, ks_error_t **errp);
/** Runs the wall-clock punctuators due at @p now_ms. NULL on success. */
ks_error_t *ks__task_punctuate_wall(ks_task_t *task, int64_t now_ms);

const ks_task_metrics_t *ks__task_metrics(const ks_task_t *task);

/* ---- offsets and stream time -------------------------------------------- */

/** One input partition's position: the next offset to commit (after the
 *  last record taken from it) and its partition time (the largest
 *  timestamp processed from it), which commits carry in their metadata. */
typedef struct ks_task_offset_s {
        const ks_task_t *task;
        const char *topic; /* borrowed from the task */
        int32_t partition;
        int64_t offset;
        int64_t partition_time;
} ks_task_offset_t;

/**
 * Fills @p out with up to @p max of the task's input partitions that have
 * taken records, only those that moved since the last
 * ks__task_offsets_committed() when @p changed_only.
 * @returns how many there are (may exceed @p max).
 */
int ks__task_offsets(const ks_task_t *task,
                     ks_task_offset_t *out,
                     int max,
                     bool changed_only);
/** The offsets ks__task_offsets() gave were committed. */
void ks__task_offsets_committed(ks_task_t *task);
/**
 * Restores an input partition's time from its last commit's metadata, so
 * that windows closed before a restart stay closed: the task's stream time
 * becomes the largest of its partitions' times. Call before the first
 * record. KS_ERR_NOT_FOUND if no source of the task reads @p topic.
 */
ks_err_t ks__task_init_partition_time(ks_task_t *task,
                                      const char *topic,
                                      int64_t partition_time);

/* ---- the commit protocol (commit.c) -------------------------------------- */

/** What a feeder does for the Kafka steps of a commit. */
typedef struct ks_commit_ops_s {
        /** Waits until every record sent so far is acknowledged (NULL:
         *  they always are). An error leaves the commit undone. */
        ks_error_t *(*flush)(void *opaque);
        /** Commits the input offsets, partition time in their metadata
         *  (ks__offset_metadata_encode()). NULL: nothing to commit to. */
        ks_error_t *(*commit_offsets)(void *opaque,
                                      const ks_task_offset_t *offsets,
                                      int cnt);
        void *opaque;
        /** exactly_once_v2: commit_offsets commits a transaction holding
         *  everything sent since the last commit, so it is called even
         *  with no offset to commit, and when it fails the stores are not
         *  committed (the transaction is aborted: they must not be ahead
         *  of their changelogs). */
        bool transactional;
} ks_commit_ops_t;

typedef enum ks_commit_step_e {
        KS_COMMIT_OK,
        KS_COMMIT_CACHES,  /**< a cache flush (or sink) failed: fail */
        KS_COMMIT_HOOKS,   /**< an external sink is away: try again later */
        KS_COMMIT_FLUSH,   /**< records not acknowledged: try again later */
        KS_COMMIT_OFFSETS, /**< the offset commit failed (stores committed,
                            *   unless transactional) */
        KS_COMMIT_STORES,  /**< a store commit failed: fatal */
} ks_commit_step_t;

typedef struct ks_commit_result_s {
        ks_commit_step_t failed_step;
        int offsets; /* partitions whose offsets were committed */
} ks_commit_result_t;

/**
 * Commits @p n tasks: flushes their record caches, flushes what was sent
 * (ops->flush), commits their input offsets with partition times
 * (ops->commit_offsets), then commits their stores with the checkpoints
 * the acknowledgements gave. @p result (may be NULL) says which step
 * failed. @returns NULL, or the error of the step that failed.
 */
ks_error_t *ks__commit(ks_task_t *const *tasks,
                       int n,
                       const ks_commit_ops_t *ops,
                       ks_commit_result_t *result);

/** The most stores whose changelog positions a commit's metadata holds. */
#define KS_METADATA_MAX_STORES 32

/** Offset metadata of one input partition of @p task:
 *  "kstreams:1:pt=<partition time>[:cl=<position>,...]" with its stores'
 *  changelog positions (ks__task_changelog_positions()).
 *  @returns snprintf()'s count. */
int ks__offset_metadata_encode(const ks_task_t *task,
                               int64_t partition_time,
                               char *out,
                               size_t out_size);
/** Reads offset metadata: the partition time (-1 if none) and up to
 *  KS_METADATA_MAX_STORES changelog positions into @p positions (*cnt of
 *  them; 0 if none). */
int64_t ks__offset_metadata_decode(const void *metadata,
                                   size_t len,
                                   int64_t *positions,
                                   int *cnt);
/* ---- state (task_state.c) ---------------------------------------------- */

/** What the runtime needs to know of one of the task's stores. */
typedef struct ks_task_store_info_s {
        const char *name;
        const char *changelog; /* full topic name */
        int kind;              /* ks_store_kind_t */
        int64_t checkpoint;    /* next changelog offset to restore; -1 */
        /* Where the changelog stood at the last commit of the task's input
         * offsets (ks__task_set_committed_positions()); -1: unknown. */
        int64_t committed;
} ks_task_store_info_t;

int ks__task_store_count(const ks_task_t *task);
void ks__task_store_info(const ks_task_t *task,
                         int idx,
                         ks_task_store_info_t *out);
/** Applies one changelog record to store @p idx (restoration). */
ks_error_t *ks__task_restore_put(ks_task_t *task,
                                 int idx,
                                 ks_bytes_t key,
                                 ks_bytes_t value);
/**
 * The changelog position of each store (by index) that a commit now
 * records: after its last acknowledged record, or its checkpoint when
 * nothing was sent since the task started. -1: none yet.
 * @returns the store count (may exceed @p max).
 */
int ks__task_changelog_positions(const ks_task_t *task, int64_t *out, int max);
/** Sets what ks_task_store_info_t.committed reports (from the metadata of
 *  the task's committed input offsets). Copies @p positions. */
ks_err_t ks__task_set_committed_positions(ks_task_t *task,
                                          const int64_t *positions,
                                          int cnt);
/**
 * Undoes one changelog record written after the last commit (by a run that
 * then crashed): sends store @p idx's current value for the changelog key
 * @p key (a tombstone if it has none) to the changelog, so that a restore
 * from the changelog gives what the store holds.
 */
ks_error_t *ks__task_compensate(ks_task_t *task,
                                int idx,
                                ks_bytes_t key,
                                int64_t timestamp);
/** Commits restored records with the checkpoint @p next_offset. */
ks_error_t *ks__task_restore_commit(ks_task_t *task,
                                    int idx,
                                    int64_t next_offset);
/**
 * Commits the task's state after its changelog records were acknowledged:
 * each store's checkpoint becomes its last acknowledged changelog offset + 1,
 * written in the same LMDB transaction as the data. No-op without stores.
 */
ks_error_t *ks__task_commit_state(ks_task_t *task);
/**
 * Logs and forwards every change waiting in the task's record caches. The
 * runtime calls it at each commit before flushing the producer (so the
 * changelog is acknowledged before the store commits), the test driver
 * after each piped record.
 * @returns NULL, or the error that fails the task.
 */
ks_error_t *ks__task_flush_cache(ks_task_t *task);
struct ks_cache_budget_s;
/** Makes the task's caches draw on @p budget (borrowed; shared by the
 *  tasks of one stream thread) instead of their own; NULL: their own. Call
 *  before the task processes anything. */
void ks__task_set_cache_budget(ks_task_t *task,
                               struct ks_cache_budget_s *budget);
/** Drops uncommitted state writes (after a failed commit). */
void ks__task_abort_state(ks_task_t *task);

/** The task's store named @p name, or NULL; cast by its kind (*kind). */
void *ks__task_store_named(const ks_task_t *task, const char *name, int *kind);

/** The full name of a store's changelog topic. */
void ks__changelog_topic_name(const char *application_id,
                              const char *store,
                              char *out,
                              size_t out_size);
const char *ks__task_id(const ks_task_t *task);
int64_t ks__task_stream_time(const ks_task_t *task);
int ks__task_subtopology(const ks_task_t *task);
int32_t ks__task_partition(const ks_task_t *task);

#endif
