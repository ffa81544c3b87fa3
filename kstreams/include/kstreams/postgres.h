/**
 * @file postgres.h
 * @brief The PostgreSQL sink: a stream's records as rows of a table,
 *        written effectively once.
 *
 * Rules of use:
 * - Rows are collected per task and written at each commit, in one
 *   PostgreSQL transaction, before the Kafka offsets are committed: COPY
 *   into a temporary table, then one INSERT ... ON CONFLICT (key columns)
 *   DO UPDATE (a table with key columns), or a plain INSERT in input order
 *   (an append-only table, no key columns). Within a batch the last record
 *   of a key wins.
 * - The same transaction records, per input partition of the task, the
 *   last input offset it applied (table kstreams_sink_offsets, created if
 *   missing). Records at or below it are skipped, so a replay after a
 *   crash writes nothing twice, even to an append-only table. A record's
 *   input offset is the one its task was processing when the record
 *   reached the sink (for a record-cache flush, the offset of the record
 *   that last changed the cached key). Exactly once holds for append-only
 *   tables when every sink record is emitted while processing its input
 *   record (no record cache in between, or statestore.cache.max.bytes=0);
 *   behind a cache, use key columns: a replay then rewrites the same keys.
 *   Records a wall-clock punctuator emits have no input offset and are
 *   always written.
 *   The first record of each input partition reads that offset (one
 *   attempt, no retry), so a long replay drops what was applied as it
 *   arrives rather than holding it until the commit.
 * - PostgreSQL unreachable (or any error that a retry may cure: SQLSTATE
 *   classes 08, 40, 53, 57, 58, ...): the commit retries with exponential
 *   backoff and does not complete, so the task stops and no offset
 *   advances; after retry_timeout_ms the commit is postponed to the next
 *   commit interval and tried again. Nothing is lost. The retries are
 *   counted (ks_pg_sink_metrics()) and logged at a rate limit.
 * - Errors that no retry cures (a record the mapping cannot turn into a
 *   row; SQLSTATE classes 21, 22, 23, 42, 44, 0A: a constraint violation,
 *   a bad value, an unknown column) go to an error handler: a mapping
 *   error to default.processing.exception.handler with the record, a
 *   database error (found at the commit, row by row) to
 *   default.production.exception.handler, whose dead-letter record has
 *   the row as a JSON object for its value and the SQLSTATE in the header
 *   __streams.errors.sqlstate. "fail" fails the task without committing.
 * - One connection per task and sink, opened at its first commit, which
 *   also checks the table and columns (creating the temporary table): a
 *   table or column that does not exist fails the task there, whatever
 *   the handler says.
 * - While PostgreSQL is down, a commit blocks its stream thread for up to
 *   retry_timeout_ms; a clean shutdown commits twice (stop, then the
 *   revocation), so ks_streams_close() may wait twice as long.
 */
#ifndef KSTREAMS_POSTGRES_H
#define KSTREAMS_POSTGRES_H

#include "common.h"
#include "topology.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A sink, for its metrics. Owned by the topology. */
typedef struct ks_pg_sink_s ks_pg_sink_t;
/** The row a ks_pg_row_fn fills. */
typedef struct ks_pg_row_s ks_pg_row_t;

/** How a mapped JSON value becomes a column's text. */
typedef enum ks_pg_format_e {
        /** Strings as they are, numbers as JSON writes them, booleans as
         *  true/false, objects and arrays as JSON text (json/jsonb). */
        KS_PG_FORMAT_TEXT = 0,
        /** A number of milliseconds since the epoch, written as an
         *  ISO-8601 UTC timestamp (timestamptz columns); a string is
         *  passed as it is. */
        KS_PG_FORMAT_EPOCH_MS
} ks_pg_format_t;

/** One column of the table. */
typedef struct ks_pg_column_s {
        /** The column's name (quoted by the sink: write it as in the
         *  table, "offset" included). */
        const char *name;
        /**
         * Where its value comes from, for sinks without a row callback:
         * a dotted path into the record's JSON value ("data.amount",
         * "items.0.id"), or "$key" (a string, int64 or JSON key),
         * "$key.<path>" (a JSON key), "$timestamp", "$topic",
         * "$partition", "$offset". NULL: the column's name as a path.
         * A missing field or JSON null is SQL NULL, except in a key
         * column, where it is a mapping error.
         */
        const char *path;
        /** Part of the conflict key (ON CONFLICT): give the table's
         *  primary key or a unique index. No key column at all: the table
         *  is append-only. */
        bool key;
        ks_pg_format_t format;
} ks_pg_column_t;

/**
 * Fills @p row for one record: ks_pg_row_set*() per column (unset columns
 * are NULL), or ks_pg_row_delete(), or ks_pg_row_skip(). @p value is NULL
 * for a tombstone. Typed key and value as everywhere (topology.h).
 * @returns KS_OK, or an error code that sends the record to
 *          default.processing.exception.handler.
 */
typedef ks_err_t(ks_pg_row_fn)(ks_pg_row_t *row,
                               const void *key,
                               const void *value,
                               void *opaque);

/** What ks_stream_to_postgres() needs. Zeroed fields take defaults. */
typedef struct ks_pg_sink_conf_s {
        /** libpq connection string; NULL: the environment's KS_PG_DSN,
         *  read by ks_stream_to_postgres(). */
        const char *dsn;
        /** The table, written into SQL as it is (may be
         *  schema-qualified; quote it yourself if it needs quoting). */
        const char *table;
        const ks_pg_column_t *columns;
        size_t column_cnt;
        /** Fills rows instead of the columns' JSON paths. NULL: the values
         *  must be JSON (const json_t *, ks_serde_json()). */
        ks_pg_row_fn *row_fn;
        void *opaque;
        /** Frees @p opaque with the topology. May be NULL. */
        void (*opaque_free)(void *opaque);
        /** Backoff after a retriable failure, doubling from
         *  retry_backoff_ms (default 100) to retry_backoff_max_ms
         *  (default 5000). */
        int64_t retry_backoff_ms, retry_backoff_max_ms;
        /** How long one commit waits for PostgreSQL before it is
         *  postponed (default 30000: below the consumer's
         *  max.poll.interval.ms). */
        int64_t retry_timeout_ms;
} ks_pg_sink_conf_t;

/**
 * Writes the stream to PostgreSQL (a terminal operation).
 * Copies @p conf (strings and columns); the caller keeps ownership. Takes
 * ownership of conf->opaque on success (freed with the topology by
 * conf->opaque_free); if this fails, opaque_free is never called.
 * @param name the sink's node name, also its name in kstreams_sink_offsets:
 *             keep it stable across deployments, or replays are applied
 *             again.
 * @returns a borrowed pointer, valid until the topology (or, if the build
 *          fails, the builder) is destroyed; NULL with the builder's error
 *          set (reported by ks_builder_build()).
 */
KS_EXPORT const ks_pg_sink_t *ks_stream_to_postgres(
        ks_stream_t *s,
        const char *name,
        const ks_pg_sink_conf_t *conf);

/** Counters of one sink over all its tasks. */
typedef struct ks_pg_sink_metrics_s {
        uint64_t rows_written;       /**< rows of committed transactions */
        uint64_t rows_replayed;      /**< skipped: at or below the applied
                                          offset */
        uint64_t rows_failed;        /**< given to an error handler */
        uint64_t tombstones_ignored; /**< null values with no delete */
        uint64_t transactions;       /**< committed */
        uint64_t retries;            /**< attempts that failed retriably */
        uint64_t waiting_tasks;      /**< tasks waiting for PostgreSQL now */
} ks_pg_sink_metrics_t;

/** Copies the sink's counters into @p out; safe from any thread. */
KS_EXPORT void ks_pg_sink_metrics(const ks_pg_sink_t *sink,
                                  ks_pg_sink_metrics_t *out);

/** Sets column @p col (its index in conf->columns) to @p text. Copies
 *  @p text; the caller keeps ownership. NULL: SQL NULL.
 *  @returns KS_OK, KS_ERR_INVALID_ARG (no such column) or KS_ERR_NOMEM. */
KS_EXPORT ks_err_t ks_pg_row_set(ks_pg_row_t *row,
                                 size_t col,
                                 const char *text);
KS_EXPORT ks_err_t ks_pg_row_set_int64(ks_pg_row_t *row, size_t col, int64_t v);
/** Writes the shortest text that reads back as @p v. */
KS_EXPORT ks_err_t ks_pg_row_set_double(ks_pg_row_t *row, size_t col, double v);
/** Writes @p ms since the epoch as an ISO-8601 UTC timestamp. */
KS_EXPORT ks_err_t ks_pg_row_set_epoch_ms(ks_pg_row_t *row,
                                          size_t col,
                                          int64_t ms);
/** Makes the row a delete of the table's row with these key columns
 *  (set them); a sink without key columns refuses (KS_ERR_INVALID_ARG). */
KS_EXPORT ks_err_t ks_pg_row_delete(ks_pg_row_t *row);
/** Writes nothing for this record. */
KS_EXPORT void ks_pg_row_skip(ks_pg_row_t *row);

#ifdef __cplusplus
}
#endif
#endif
