/**
 * @file processor.h
 * @brief The Processor API: what a processor sees of the record it is
 *        processing, how it forwards results, and punctuators.
 *
 * Rules of use:
 * - A processor instance belongs to one task and is called from one thread
 *   at a time (@locality stream thread).
 * - Keys and values passed to process() and to forward() are typed objects
 *   in the record's arena (see common.h): valid until process() returns.
 *   Anything a processor keeps longer it must copy (or serialize).
 * - Forwarding is synchronous and depth-first, as in Kafka Streams: when
 *   ks_ctx_forward() returns, every downstream node has processed the record.
 * - A processor may own a state store (ks_processor_def_t.store, as Kafka
 *   Streams' ProcessorSupplier#stores()): one per task, persistent in the
 *   task's LMDB environment, changelogged to
 *   <application.id>-<store>-changelog and restored from it like the DSL's
 *   stores. It reaches it with ks_ctx_state_store() (Kafka Streams'
 *   context.getStateStore()) and the ks_state_*() calls below, which write
 *   the store, then its changelog: a read sees the task's own writes at
 *   once, and a restart (or an exactly-once abort) gives back what the
 *   last commit covered.
 */
#ifndef KSTREAMS_PROCESSOR_H
#define KSTREAMS_PROCESSOR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_ctx_s ks_ctx_t;
/* The same typedef as kstreams/store.h's (include it to iterate). */
typedef struct ks_store_iter_s ks_store_iter_t;

/** The kinds of state store a processor can own. */
typedef enum ks_store_type_e {
        /** Key -> value, as Kafka Streams' KeyValueStore. */
        KS_STORE_TYPE_KEY_VALUE,
        /** (key, window start) -> value, as Kafka Streams' WindowStore:
         *  windows that start retention_ms or more before the newest
         *  window start put are expired (reads no longer see them, writes
         *  to them are ignored), and dropped a time segment at a time, so
         *  the store stays bounded. */
        KS_STORE_TYPE_WINDOW
} ks_store_type_t;

/** A processor's state store; the builder copies it (and its name). */
typedef struct ks_store_def_s {
        /** The store's name, unique in the topology: it names the
         *  changelog topic and the store for interactive queries. */
        const char *name;
        ks_store_type_t type;
        /** KS_STORE_TYPE_WINDOW: how long windows are kept, behind the
         *  newest window start; > 0. */
        int64_t retention_ms;
        /** KS_STORE_TYPE_WINDOW: the time segments expiry drops whole; 0:
         *  half the retention, at least a minute (Kafka Streams'
         *  default). */
        int64_t segment_ms;
} ks_store_def_t;

/** One record header. Value bytes may be NULL (a null header value). */
typedef struct ks_header_s {
        const char *name;
        ks_bytes_t value;
} ks_header_t;

/** The processor definition; the builder copies the struct. */
typedef struct ks_processor_def_s {
        /** Called once per task before any record. Store per-task state in
         *  @p *state. May be NULL. A non-OK return fails the task. */
        ks_err_t (*init)(ks_ctx_t *ctx, void **state, void *opaque);
        /** Called for each record. A non-OK return goes to the processing
         *  error handler (default.processing.exception.handler). */
        ks_err_t (*process)(ks_ctx_t *ctx,
                            const void *key,
                            const void *value,
                            void *state,
                            void *opaque);
        /** Called once when the task closes. May be NULL. */
        void (*close)(ks_ctx_t *ctx, void *state, void *opaque);
        /** Shared by every task's instance. */
        void *opaque;
        /** Frees @p opaque when the topology is destroyed. May be NULL. */
        void (*opaque_free)(void *opaque);
        /** The state store this processor owns, or NULL (copied). Each
         *  task has its own, reached with ks_ctx_state_store(). */
        const ks_store_def_t *store;
} ks_processor_def_t;

/** Forwards to every child. Copies nothing: @p key and @p value must live
 *  in the record's arena or longer. Returns the first child error. */
KS_EXPORT ks_err_t ks_ctx_forward(ks_ctx_t *ctx,
                                  const void *key,
                                  const void *value);
/** Forwards to the child named @p child only. KS_ERR_NOT_FOUND if there is
 *  no such child. */
KS_EXPORT ks_err_t ks_ctx_forward_to(ks_ctx_t *ctx,
                                     const char *child,
                                     const void *key,
                                     const void *value);
/** Forwards with another timestamp (to all children if @p child is NULL). */
KS_EXPORT ks_err_t ks_ctx_forward_ts(ks_ctx_t *ctx,
                                     const char *child,
                                     const void *key,
                                     const void *value,
                                     int64_t timestamp);

/**
 * Records why the current record failed, for the processing-error handler's
 * log line and dead-letter headers, and returns KS_ERR_PROCESSING: use it as
 * `return ks_ctx_fail(ctx, "amount %s is not a number", s);`.
 */
KS_EXPORT ks_err_t ks_ctx_fail(ks_ctx_t *ctx, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/** @returns the arena of the current record, for new keys and values. */
KS_EXPORT ks_arena_t *ks_ctx_arena(ks_ctx_t *ctx);

/** Record metadata. topic is NULL and partition/offset are -1 inside a
 *  punctuator. Returns borrowed pointers valid until process() returns. */
KS_EXPORT const char *ks_ctx_topic(const ks_ctx_t *ctx);
KS_EXPORT int32_t ks_ctx_partition(const ks_ctx_t *ctx);
KS_EXPORT int64_t ks_ctx_offset(const ks_ctx_t *ctx);
KS_EXPORT int64_t ks_ctx_timestamp(const ks_ctx_t *ctx);
/** The task's stream time: the largest timestamp it has processed. */
KS_EXPORT int64_t ks_ctx_stream_time(const ks_ctx_t *ctx);
/** The task id, "<sub-topology>_<partition>", and the node's name. */
KS_EXPORT const char *ks_ctx_task_id(const ks_ctx_t *ctx);
KS_EXPORT const char *ks_ctx_node_name(const ks_ctx_t *ctx);
KS_EXPORT const char *ks_ctx_application_id(const ks_ctx_t *ctx);

/** The current record's headers (in arrival order). */
KS_EXPORT size_t ks_ctx_header_count(const ks_ctx_t *ctx);
KS_EXPORT const ks_header_t *ks_ctx_header(const ks_ctx_t *ctx, size_t idx);
/** @returns the last header named @p name, or NULL. */
KS_EXPORT const ks_header_t *ks_ctx_header_last(const ks_ctx_t *ctx,
                                                const char *name);
/** Adds a header to the current record, seen by downstream nodes and
 *  written by sinks. Copies @p name and @p value into the arena. */
KS_EXPORT ks_err_t ks_ctx_header_add(ks_ctx_t *ctx,
                                     const char *name,
                                     const void *value,
                                     size_t len);

typedef enum ks_punctuation_type_e {
        KS_PUNCTUATE_STREAM_TIME, /**< fires as stream time advances */
        KS_PUNCTUATE_WALL_CLOCK /**< fires as system (or driver) time passes */
} ks_punctuation_type_t;

/** A punctuator. @p timestamp is the stream time or wall-clock time that
 *  made it fire. Forwarded records get @p timestamp. */
typedef ks_err_t(ks_punctuate_fn)(ks_ctx_t *ctx,
                                  int64_t timestamp,
                                  void *opaque);

typedef struct ks_punctuator_s ks_punctuator_t;

/**
 * Schedules @p fn every @p interval_ms, as Kafka Streams does: stream-time
 * punctuators are aligned to 0 and fire at most once per advance of stream
 * time (missed intervals are skipped); wall-clock ones first fire
 * @p interval_ms from now. Call from init() or process().
 * @returns a handle owned by the task (valid until the task closes) for
 *          ks_punctuator_cancel(), or NULL with KS_ERR_INVALID_ARG.
 */
KS_EXPORT ks_punctuator_t *ks_ctx_schedule(ks_ctx_t *ctx,
                                           int64_t interval_ms,
                                           ks_punctuation_type_t type,
                                           ks_punctuate_fn *fn,
                                           void *opaque);
KS_EXPORT void ks_punctuator_cancel(ks_punctuator_t *p);

/* ---- state stores ---------------------------------------------------------
 *
 * Keys and values are bytes (serialize with the serdes of your choice).
 * Every call that fails records why on the context (as ks_ctx_fail() does)
 * and returns KS_ERR_PROCESSING or another code: return it from process().
 * Values and iterators returned are borrowed: valid until the next write to
 * a store of the task, or until process() (or the punctuator) returns.
 */

typedef struct ks_state_store_s ks_state_store_t;

/**
 * The state store named @p name that the current processor owns
 * (ks_processor_def_t.store), as Kafka Streams' context.getStateStore().
 * Call from init(), process() or a punctuator.
 * @returns a borrowed pointer, valid until the task closes; NULL if the
 *          processor owns no store of that name.
 */
KS_EXPORT ks_state_store_t *ks_ctx_state_store(ks_ctx_t *ctx, const char *name);

/** Key-value stores: @p *found says whether @p key has a value. */
KS_EXPORT ks_err_t ks_state_kv_get(ks_state_store_t *st,
                                   ks_bytes_t key,
                                   ks_bytes_t *value,
                                   bool *found);
/** Writes @p key (value.data NULL deletes it), then the changelog. Copies
 *  @p key and @p value. */
KS_EXPORT ks_err_t ks_state_kv_put(ks_state_store_t *st,
                                   ks_bytes_t key,
                                   ks_bytes_t value);

/** Window stores: writes (@p key, @p window_start) (value.data NULL
 *  deletes), then the changelog; a write to an expired window is ignored.
 *  Copies @p key and @p value. */
KS_EXPORT ks_err_t ks_state_window_put(ks_state_store_t *st,
                                       ks_bytes_t key,
                                       int64_t window_start,
                                       ks_bytes_t value);
/** The value of (@p key, @p window_start), Kafka Streams' fetch(key,
 *  time). */
KS_EXPORT ks_err_t ks_state_window_get(ks_state_store_t *st,
                                       ks_bytes_t key,
                                       int64_t window_start,
                                       ks_bytes_t *value,
                                       bool *found);
/**
 * The live windows of @p key that start in [@p time_from, @p time_to], by
 * start (Kafka Streams' fetch(key, timeFrom, timeTo)): iterate with
 * ks_store_iter_next_window() and free with ks_store_iter_destroy()
 * (kstreams/store.h) before the next write. Returns a new iterator in
 * @p *itp.
 */
KS_EXPORT ks_err_t ks_state_window_fetch(ks_state_store_t *st,
                                         ks_bytes_t key,
                                         int64_t time_from,
                                         int64_t time_to,
                                         ks_store_iter_t **itp);

#ifdef __cplusplus
}
#endif
#endif
