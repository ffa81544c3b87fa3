/**
 * @file test_driver.h
 * @brief Runs a topology with no broker: pipe records into input topics,
 *        read what it writes, move the wall clock.
 *
 * The driver runs the same task code that the Kafka runtime runs. Unlike
 * Kafka Streams' TopologyTestDriver it honours partitions: every topic has a
 * partition count, keys are partitioned with murmur2 as Java producers do,
 * repartition topics are fed back as real partitions, and each
 * (sub-topology, partition) is its own task with its own stream time.
 *
 * Rules of use:
 * - Create topics whose partition count matters before the first pipe; any
 *   other topic is created on first use with the default count (1).
 * - Processing is synchronous: when a pipe returns, the record and all it
 *   caused (repartition hops included) have been processed.
 * - Records read back are borrowed, valid until the driver is destroyed.
 * - The driver keeps every record of every topic until it is destroyed,
 *   unless ks_test_driver_stream_outputs() was called: then it keeps none
 *   longer than needed, for replays of any length in bounded memory.
 * - The wall clock starts at 0 and moves only with
 *   ks_test_driver_advance_wall_clock(), so tests are deterministic.
 *
 * Exactly-once (processing.guarantee=exactly_once_v2): the driver commits
 * with the runtime's transactional commit protocol, one transaction over
 * all its tasks, as a stream thread's:
 * - What tasks write (sink outputs, repartition records, changelogs, dead
 *   letters) is pending until the commit. Readers see committed records
 *   only, as read_committed consumers: ks_test_driver_read(),
 *   ks_test_driver_remaining() and ks_test_driver_dump_jsonl() stop at the
 *   first pending record of a topic, and streamed outputs are handed over at
 *   the commit. Tasks reading a repartition topic get its records at the
 *   commit too, and process them into the next transaction (which the same
 *   ks_test_driver_commit() commits, and so on, until a commit releases
 *   nothing). Records piped in are not transactional: they count at once.
 * - When a call that processes (a pipe, a replay, a commit, a wall-clock
 *   advance, a close of the windows) fails, the transaction aborts, as the
 *   runtime's does: its pending records are discarded from every topic
 *   (their offsets are not reused, as in Kafka), every task is closed
 *   without committing (its LMDB transaction aborted) and made again from
 *   its store (memory stores: from their changelogs) with the committed
 *   stream times, and is given again every input record since the last
 *   commit. The call returns the error, as the runtime's thread fails; the
 *   records given again are processed by the next call that processes
 *   (before the record a pipe adds; ks_test_driver_commit() to process just
 *   them), as a restarted instance would. A processor that fails every time
 *   on a record therefore fails every next call under the "fail" handler.
 * - Under at_least_once nothing of this applies: the driver goes on past a
 *   failed record, and no commit or abort changes what readers see.
 */
#ifndef KSTREAMS_TEST_DRIVER_H
#define KSTREAMS_TEST_DRIVER_H

#include <stdio.h>

#include "kstreams/conf.h"
#include "kstreams/error.h"
#include "kstreams/store.h"
#include "kstreams/topology.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_test_driver_s ks_test_driver_t;

/** A record in a driver topic. */
typedef struct ks_test_record_s {
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp;
        ks_bytes_t key;   /**< data NULL: null key */
        ks_bytes_t value; /**< data NULL: tombstone */
        const ks_header_t *headers;
        size_t header_cnt;
} ks_test_record_t;

/**
 * Returns a new driver; free with ks_test_driver_destroy(). Borrows
 * @p topology, which must outlive the driver. Copies @p conf (may be NULL);
 * application.id defaults to "test-driver".
 * @returns NULL with @p errstr set on invalid configuration.
 */
KS_EXPORT ks_test_driver_t *ks_test_driver_new(const ks_topology_t *topology,
                                               const ks_conf_t *conf,
                                               char *errstr,
                                               size_t errstr_size);
KS_EXPORT void ks_test_driver_destroy(ks_test_driver_t *drv);

/** Creates @p topic with @p partitions partitions. KS_ERR_STATE if it
 *  exists with another count or tasks already read it. */
KS_EXPORT ks_err_t ks_test_driver_create_topic(ks_test_driver_t *drv,
                                               const char *topic,
                                               int32_t partitions);
/** The partition count of topics created on first use (default 1). */
KS_EXPORT void ks_test_driver_set_default_partitions(ks_test_driver_t *drv,
                                                     int32_t partitions);

/**
 * Appends a record to @p topic and processes everything it causes.
 * @p partition -1 picks one from the key (murmur2, as Java's producer).
 * A NULL @p key is a null key, a NULL @p value a tombstone. Copies all
 * bytes and headers; the caller keeps ownership.
 * @returns NULL, or the error of a handler set to "fail" (new object: free
 *          with ks_error_destroy()); the driver can be used again after
 *          (under exactly_once_v2 the transaction was aborted, and the
 *          input since the last commit is processed again by the next
 *          call: see the top of this file).
 */
KS_EXPORT ks_error_t *ks_test_driver_pipe(ks_test_driver_t *drv,
                                          const char *topic,
                                          int32_t partition,
                                          const void *key,
                                          size_t key_len,
                                          const void *value,
                                          size_t value_len,
                                          int64_t timestamp,
                                          const ks_header_t *headers,
                                          size_t header_cnt);
/** ks_test_driver_pipe() for NUL-terminated strings (either may be NULL). */
KS_EXPORT ks_error_t *ks_test_driver_pipe_str(ks_test_driver_t *drv,
                                              const char *topic,
                                              const char *key,
                                              const char *value,
                                              int64_t timestamp);

/**
 * As Kafka Streams' TopologyTestDriver, the driver commits after every
 * record it processes, so the record caches (statestore.cache.max.bytes)
 * are flushed and every update shows (under exactly_once_v2, each commit
 * makes what the record caused visible). With @p manual true it commits only
 * in ks_test_driver_commit(): updates then wait in the caches, collapsed
 * per key, until the commit or an eviction, as between a runtime's commits.
 * Under exactly_once_v2 a transaction then covers every record since the
 * last commit: an abort discards all their outputs and processes them all
 * again.
 */
KS_EXPORT void ks_test_driver_set_manual_commit(ks_test_driver_t *drv,
                                                bool manual);
/**
 * As the runtime, the driver keeps stores in LMDB, one environment per task
 * in a temporary directory (under $TMPDIR, else /tmp) that it removes when
 * destroyed, and commits them with the runtime's commit protocol, so tests
 * run the checkpoint and commit code production runs. With @p memory true
 * its stores are in memory instead (faster, nothing on disk). Call before
 * the first pipe: KS_ERR_STATE after.
 */
KS_EXPORT ks_err_t ks_test_driver_use_memory_stores(ks_test_driver_t *drv,
                                                    bool memory);
/** Commits: flushes every record cache, processes what that sent to
 *  internal topics, and so on until nothing is left. Under exactly_once_v2
 *  it first processes the input an abort left to process again, and
 *  commits the transaction, then what it made visible to repartition
 *  readers, until a commit releases nothing; a failure aborts (see the top
 *  of this file). @returns NULL, or the error a flush failed with (a
 *  changelog failure, or a downstream one under the "fail" processing
 *  handler). */
KS_EXPORT ks_error_t *ks_test_driver_commit(ks_test_driver_t *drv);

/** Moves the wall clock forward and runs due wall-clock punctuators. */
KS_EXPORT ks_error_t *ks_test_driver_advance_wall_clock(ks_test_driver_t *drv,
                                                        int64_t ms);
KS_EXPORT int64_t ks_test_driver_wall_clock(const ks_test_driver_t *drv);

/**
 * Reads the next unread record of @p topic, in the order they were
 * written (across partitions). @returns false when none is left.
 */
KS_EXPORT bool ks_test_driver_read(ks_test_driver_t *drv,
                                   const char *topic,
                                   ks_test_record_t *out);
/** Unread records left in @p topic (0 for an unknown topic). */
KS_EXPORT size_t ks_test_driver_remaining(const ks_test_driver_t *drv,
                                          const char *topic);
/** The topic's partition count, -1 if it does not exist. */
KS_EXPORT int32_t ks_test_driver_partitions(const ks_test_driver_t *drv,
                                            const char *topic);

/**
 * Sums a counter over all tasks: "records-consumed", "records-processed",
 * "records-produced", "dropped-deserialization", "dropped-processing",
 * "dropped-production", "dead-lettered", "punctuations", "dropped-late"
 * (records for closed windows), "dropped-skipped" (null keys or values an
 * aggregation cannot use), "cache-puts" and "cache-flushed" (store changes
 * given to the record caches, and those sent on; they differ by updates
 * collapsed between commits, deletions of keys created since the last
 * commit, and flushes that failed), "enforced-processing" (records
 * processed while another input partition of their task was empty, after
 * max.task.idle.ms), "dropped-dedup" (duplicates ks_stream_deduplicate()
 * dropped), "tasks", "commits" (runs of the commit protocol),
 * "transactions-committed" and "transactions-aborted" (exactly_once_v2).
 * Counters of tasks an abort closed stay in the sums.
 * @returns the sum, or UINT64_MAX for an unknown name.
 */
KS_EXPORT uint64_t ks_test_driver_metric(const ks_test_driver_t *drv,
                                         const char *name);
/** The stream time of task "<sub-topology>_<partition>", -1 if none. */
KS_EXPORT int64_t ks_test_driver_stream_time(const ks_test_driver_t *drv,
                                             int subtopology,
                                             int32_t partition);

/**
 * Queries a materialized store: returns the key-value store @p store of the
 * task for @p partition (find a key's partition with ks_partition_for_key()
 * and ks_test_driver_store_partitions()), for ks_kv_store_get() /
 * ks_kv_store_range() / prefix scans. Keys and values are the serialized
 * bytes. Returns a borrowed pointer, valid until the driver is destroyed;
 * NULL if there is no key-value store of that name (or no such task).
 */
KS_EXPORT ks_kv_store_t *ks_test_driver_kv_store(ks_test_driver_t *drv,
                                                 const char *store,
                                                 int32_t partition);
/** The same for window stores (ks_window_store_fetch() gets a key's
 *  windows). */
KS_EXPORT ks_window_store_t *ks_test_driver_window_store(ks_test_driver_t *drv,
                                                         const char *store,
                                                         int32_t partition);
/** The number of tasks (partitions) that hold store @p store, -1 if none. */
KS_EXPORT int32_t ks_test_driver_store_partitions(ks_test_driver_t *drv,
                                                  const char *store);

/**
 * @brief Replays JSON lines in kcat's -J envelope
 *        ({"topic","partition","offset","ts","key","payload","headers"}),
 *        as `kcat -C -J` and ks_test_driver_dump_jsonl() write them, into the
 *        topology.
 *
 * A line's partition is kept (an error if the topic has fewer); without one
 * the key decides. A line without "topic" goes to @p default_topic (may be
 * NULL). "offset", "tstype" and "broker" are ignored: the driver numbers
 * records itself. The lossless fields of ks_test_driver_dump_jsonl() are
 * read back to the same bytes: "key_b64", "payload_b64" and "headers_b64"
 * take precedence over their text fields, and a "window" object appends
 * its bounds to the key in its serde's layout.
 * @returns NULL, or the first error naming the line (new object: free with
 *          ks_error_destroy()).
 */
KS_EXPORT ks_error_t *ks_test_driver_replay_jsonl(ks_test_driver_t *drv,
                                                  FILE *in,
                                                  const char *default_topic,
                                                  size_t *records_out);
/**
 * @brief Writes every record of @p topic (read or not), in write order, as
 *        kcat's -J envelope, one per line, in kcat's field order.
 *
 * Every record is written, whatever its bytes, in a form that
 * ks_test_driver_replay_jsonl() reads back to the same bytes:
 * - A key or payload that is not valid UTF-8 (JSON strings cannot hold it)
 *   is written as readable text, each ill-formed byte as U+FFFD, and
 *   exactly, in base64 (RFC 4648, padded), in "key_b64" / "payload_b64".
 * - Headers go, as kcat writes them, in "headers": [name, value, ...]; when
 *   a name or value is not UTF-8, "headers_b64" follows with the same array,
 *   every name and value base64 (null values stay null).
 * - Keys of a topic written by a sink with a windowed key serde
 *   (ks_serde_windowed(), ks_serde_session_windowed()) are written as the
 *   inner key ("key", and "key_b64" if needed) plus
 *   "window": {"type": "time" | "session", "start": ms, "end": ms}; for time
 *   windows the end is start + the serde's window size (replay ignores it).
 * Null keys and payloads are null, empty ones "".
 * @returns NULL, or a new error (free with ks_error_destroy()):
 *          KS_ERR_NOT_FOUND if the driver has no such topic, KS_ERR_IO
 *          naming the topic, partition and offset of the record that could
 *          not be written.
 */
KS_EXPORT ks_error_t *ks_test_driver_dump_jsonl(const ks_test_driver_t *drv,
                                                const char *topic,
                                                FILE *out);

/**
 * @brief A record written to a topic no task reads, as it is written.
 * @param rec  borrowed, valid during the call only (bytes and headers too).
 * @remark Runs synchronously inside the driver call that caused the write
 *         (a pipe, a replay, a commit, a wall-clock advance, a close of the
 *         windows); it must not call the driver, except
 *         ks_test_driver_write_jsonl().
 */
typedef void ks_test_output_fn(ks_test_driver_t *drv,
                               const ks_test_record_t *rec,
                               void *opaque);

/**
 * @brief Streams outputs instead of keeping them: bounded memory for long
 *        replays.
 *
 * From this call on:
 * - every record written to a topic that no task reads (the sinks' topics,
 *   the dead-letter topic, the changelogs) is handed to @p fn when it is
 *   written, and not kept: ks_test_driver_read() and
 *   ks_test_driver_remaining() see none, ks_test_driver_dump_jsonl() writes
 *   none (offsets still count per partition);
 * - a record of a topic that tasks read (a source or repartition topic) is
 *   freed as soon as every task that reads it has processed it.
 * So the driver holds no record longer than its processing: what a replay
 * keeps is its state (stores, record caches, suppression buffers). Under
 * exactly_once_v2 it holds records until the commit after that: outputs are
 * handed to @p fn when their transaction commits (an abort drops them), and
 * input records stay for a replay until a commit covers them. Memory stores
 * cannot go with it there (an abort restores them from changelogs, which
 * are not kept): the first pipe fails with KS_ERR_STATE.
 * @param fn           called for each such record; not NULL.
 * @param opaque       passed to @p fn.
 * @param opaque_free  (may be NULL) called on @p opaque when the driver is
 *                     destroyed. If the call fails, neither is ever called.
 * @returns KS_OK; KS_ERR_INVALID_ARG if @p fn is NULL; KS_ERR_STATE once
 *          the driver runs its tasks (the first pipe, commit, wall-clock
 *          advance or store query: records kept by then would be neither
 *          streamed nor freed) or when outputs are streamed already.
 */
KS_EXPORT ks_err_t
ks_test_driver_stream_outputs(ks_test_driver_t *drv,
                              ks_test_output_fn *fn,
                              void *opaque,
                              void (*opaque_free)(void *opaque));

/**
 * @brief Writes one record as a line of ks_test_driver_dump_jsonl()'s
 *        format (the same fields, windowed keys decoded by the serde of the
 *        sink that writes its topic), for ks_test_output_fn callbacks.
 * @returns NULL, or a new error naming the record (free with
 *          ks_error_destroy()): KS_ERR_NOMEM, or KS_ERR_IO when @p out
 *          fails. The line may stay in @p out's buffer: fflush() it.
 */
KS_EXPORT ks_error_t *ks_test_driver_write_jsonl(const ks_test_driver_t *drv,
                                                 const ks_test_record_t *rec,
                                                 FILE *out);

/**
 * @brief Closes every window: the end of input for windowed results.
 *
 * Processes everything piped, flushes the caches, then makes every
 * suppression (ks_table_suppress()) emit what it still buffers, as if
 * stream time had reached the end of time: each time window and session
 * still open or waiting for its grace is emitted once, with the timestamp
 * of its last update, and goes on downstream (repartition hops included).
 * Windowed stores are not changed: records piped after this call are
 * processed as usual, and a window they update is emitted again when it
 * closes (or at the next call). Windowed tables without a suppression
 * emit every update anyway and are not affected.
 * @param emitted_out  (may be NULL) receives the number of buffered
 *                     entries taken, dropped tombstones included.
 * @returns NULL, or a new error (free with ks_error_destroy()).
 */
KS_EXPORT ks_error_t *ks_test_driver_close_windows(ks_test_driver_t *drv,
                                                   size_t *emitted_out);

#ifdef __cplusplus
}
#endif
#endif
