/* The PostgreSQL sink's internals, shared by sink_pg.c (the DSL call,
 * the processor, mapping records to rows) and sink_pg_copy.c (the commit
 * hook: one transaction per batch, retries, the error handler). */
#ifndef KS_SINK_PG_INT_H
#define KS_SINK_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "commit_hook_int.h"
#include "conf_int.h"
#include "kstreams/postgres.h"
#include "log_int.h"

typedef enum pg_meta_e {
        PG_META_NONE = 0, /* a path into the JSON value */
        PG_META_KEY,      /* the key, or a path into a JSON key */
        PG_META_TIMESTAMP,
        PG_META_TOPIC,
        PG_META_PARTITION,
        PG_META_OFFSET
} pg_meta_t;

/* What the key object is, for "$key" columns. */
typedef enum pg_key_kind_e {
        PG_KEY_UNKNOWN = 0,
        PG_KEY_STRING,
        PG_KEY_INT64,
        PG_KEY_JSON
} pg_key_kind_t;

typedef struct pg_col_s {
        char *name;
        char *quoted; /* "name", quotes doubled */
        pg_meta_t meta;
        char **path; /* segments; for PG_META_KEY the part after "$key." */
        int path_len;
        bool key;
        ks_pg_format_t format;
} pg_col_t;

/* A sink: its configuration and SQL, shared by all its tasks' states. */
struct ks_pg_sink_s {
        char *name, *dsn, *table;
        pg_col_t *cols;
        size_t col_cnt, key_cnt;
        pg_key_kind_t key_kind;
        ks_pg_row_fn *row_fn;
        void *opaque;
        void (*opaque_free)(void *opaque);
        int64_t backoff_ms, backoff_max_ms, timeout_ms;
        /* SQL, built once (sink_pg_copy.c). */
        char *sql_stage, *sql_delete_batch, *sql_write_batch;
        char *sql_row_write, *sql_row_delete;
        /* The tasks' states, for ks__pg_sink_pending_copy(). */
        pthread_mutex_t lock;
        struct pg_task_s **live;
        int live_cnt;
        atomic_uint_fast64_t rows_written, rows_replayed, rows_failed,
                tombstones_ignored, transactions, retries, waiting_tasks;
};

/* A column value in a batch: bytes at data + off, NUL-terminated. */
typedef struct pg_val_s {
        size_t off;
        ssize_t len; /* -1: NULL */
} pg_val_t;

typedef struct pg_rowmeta_s {
        size_t first_val; /* its col_cnt values start here */
        int tp;           /* index into the task's tps; -1: no offset */
        int64_t offset;
        int64_t timestamp;
        bool del;
} pg_rowmeta_t;

/* The rows of one commit interval. */
typedef struct pg_batch_s {
        ks_buf_t data;
        pg_val_t *vals;
        size_t val_cnt, val_cap;
        pg_rowmeta_t *rows;
        size_t cnt, cap;
} pg_batch_t;

/* An input partition of the task. */
typedef struct pg_tp_s {
        char *topic;
        int32_t partition;
        int64_t batch_max; /* largest input offset in the batch; -1 */
        int64_t applied;   /* last applied, committed; -2: not known yet */
        bool probed;       /* applied was looked up once (or tried) */
} pg_tp_t;

/* One task's instance of the sink. */
typedef struct pg_task_s {
        ks_pg_sink_t *sink;
        char task_id[32];
        char *app_id;
        const ks_collector_t *collector;
        ks_handler_t prod_handler;
        const char *dlq_topic;
        int64_t log_interval;
        PGconn *conn;
        pg_batch_t batch;
        pg_tp_t *tps;
        int tp_cnt;
        bool waiting; /* counted in waiting_tasks */
        int64_t waiting_since;
        ks_rate_limit_t rl_retry, rl_fail;
        char sqlstate[6];
        ks_buf_t scratch;
} pg_task_t;

struct ks_pg_row_s {
        pg_task_t *st;
        size_t first_val;
        bool del, skip;
};

/* ---- batches (sink_pg.c) -------------------------------------------- */

/** Appends a row of col_cnt NULL values; returns its index or -1. */
ssize_t ks__pg_batch_add(pg_batch_t *b, size_t col_cnt);
/** Sets value @p idx (absolute) to @p len bytes (copied, NUL added). */
ks_err_t ks__pg_batch_set(pg_batch_t *b,
                          size_t idx,
                          const char *data,
                          size_t len);
/** Drops the last row (a mapping failed or the callback skipped it). */
void ks__pg_batch_drop_last(pg_batch_t *b, size_t col_cnt);
void ks__pg_batch_clear(pg_batch_t *b);
void ks__pg_batch_free(pg_batch_t *b);
/** Appends row @p r of @p st's batch as a line of COPY text: sequence
 *  number, U (write) or D (delete), then the columns. */
ks_err_t ks__pg_copy_line(const struct pg_task_s *st, size_t r, ks_buf_t *out);
/** For tests: appends the COPY lines of every task's batch that waits for
 *  its commit, task by task in the order they started. */
KS_EXPORT ks_err_t ks__pg_sink_pending_copy(const ks_pg_sink_t *sink,
                                            ks_buf_t *out);
/** The value's text, NULL for SQL NULL. */
const char *ks__pg_batch_value(const pg_batch_t *b, size_t idx);

/** Appends @p len bytes of @p s escaped for COPY's text format. */
ks_err_t ks__pg_copy_escape(ks_buf_t *out, const char *s, size_t len);
/** Appends an identifier in double quotes (quotes doubled). */
ks_err_t ks__pg_quote_ident(ks_buf_t *out, const char *name);
/** Room for any number or timestamp text below (gcc's worst case of
 *  seven %d fields, for -Wformat-truncation at -O3). */
#define KS_PG_NUM_MAX 128
/** Formats ms since the epoch as "2025-12-12T10:30:00.000Z" ("invalid"
 *  outside the years gmtime_r() can represent). */
void ks__pg_format_epoch_ms(int64_t ms, char *out, size_t out_size);
/** The shortest "%.*g" text that reads back as @p v. */
void ks__pg_format_double(double v, char *out, size_t out_size);

/* ---- transactions (sink_pg_copy.c) ----------------------------------- */

/** Builds the sink's SQL. @returns KS_OK or KS_ERR_NOMEM. */
ks_err_t ks__pg_sink_build_sql(ks_pg_sink_t *sink);
/** The commit hook: writes the batch, retrying retriable failures. */
ks_error_t *ks__pg_task_flush(void *state);
/** Reads the last applied offset of input partition @p tp into
 *  tp->applied, once, without retrying: a replay after a crash then drops
 *  what was applied as it arrives, instead of holding it until the
 *  commit's transaction (which checks again, under a lock). */
void ks__pg_task_probe_applied(pg_task_t *st, pg_tp_t *tp);
/** Closes the connection. */
void ks__pg_task_disconnect(pg_task_t *st);
/** True if an error of SQLSTATE @p sqlstate cannot succeed by retrying. */
bool ks__pg_sqlstate_permanent(const char *sqlstate);

#endif
