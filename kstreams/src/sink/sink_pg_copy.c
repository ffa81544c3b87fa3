/* The PostgreSQL sink's commit hook: one transaction per batch (COPY into
 * a temporary table, then one merge statement, plus the applied offsets),
 * retried with backoff while PostgreSQL is unavailable; row by row with
 * savepoints when the batch fails for good, so the error handler sees the
 * failing rows only. @locality stream thread */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink_pg_int.h"

#define PG_OFFSETS "kstreams_sink_offsets"

static const char *const sql_offsets_table =
        "CREATE TABLE IF NOT EXISTS " PG_OFFSETS
        " ("
        " application_id text NOT NULL, sink_name text NOT NULL,"
        " topic text NOT NULL, partition integer NOT NULL,"
        " last_offset bigint NOT NULL,"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (application_id, sink_name, topic, partition))";
static const char *const sql_offsets_ensure =
        "INSERT INTO " PG_OFFSETS
        " (application_id, sink_name, topic,"
        " partition, last_offset) VALUES ($1, $2, $3, $4, -1)"
        " ON CONFLICT DO NOTHING";
static const char *const sql_offsets_lock =
        "SELECT last_offset FROM " PG_OFFSETS
        " WHERE application_id = $1"
        " AND sink_name = $2 AND topic = $3 AND partition = $4 FOR UPDATE";
static const char *const sql_offsets_update =
        "UPDATE " PG_OFFSETS
        " SET last_offset = GREATEST(last_offset, $5),"
        " updated_at = now() WHERE application_id = $1 AND sink_name = $2"
        " AND topic = $3 AND partition = $4";

bool ks__pg_sqlstate_permanent(const char *s) {
        static const char *const classes[] = {"21", "22", "23",
                                              "42", "44", "0A"};
        for (size_t i = 0; s && i < sizeof(classes) / sizeof(classes[0]); i++)
                if (!strncmp(s, classes[i], 2))
                        return true;
        return false;
}

/* ---- SQL ------------------------------------------------------------------
 */

/* A statement being built; the first failed allocation is remembered. */
typedef struct sql_s {
        ks_buf_t b;
        bool oom;
} sql_t;

static void cat(sql_t *q, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void cat(sql_t *q, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (q->oom || n < 0 || ks_buf_reserve(&q->b, (size_t)n + 1)) {
                q->oom = true;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(q->b.data + q->b.len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        q->b.len += (size_t)n;
}

/* Appends the columns' quoted names, only the key ones if @p keys, with
 * @p prefix before each ("s." or ""). */
static void append_cols(sql_t *q,
                        const ks_pg_sink_t *s,
                        bool keys,
                        const char *prefix) {
        bool first = true;
        for (size_t i = 0; i < s->col_cnt; i++) {
                if (keys && !s->cols[i].key)
                        continue;
                cat(q, "%s%s%s", first ? "" : ", ", prefix, s->cols[i].quoted);
                first = false;
        }
}

static void append_on_conflict(sql_t *q, const ks_pg_sink_t *s) {
        if (!s->key_cnt)
                return;
        cat(q, " ON CONFLICT (");
        append_cols(q, s, true, "");
        if (s->key_cnt == s->col_cnt) {
                cat(q, ") DO NOTHING");
                return;
        }
        cat(q, ") DO UPDATE SET ");
        bool first = true;
        for (size_t i = 0; i < s->col_cnt; i++) {
                if (s->cols[i].key)
                        continue;
                cat(q, "%s%s = EXCLUDED.%s", first ? "" : ", ",
                    s->cols[i].quoted, s->cols[i].quoted);
                first = false;
        }
}

/* The batch's last row per key. */
static void append_latest(sql_t *q, const ks_pg_sink_t *s) {
        cat(q, "(SELECT DISTINCT ON (");
        append_cols(q, s, true, "");
        cat(q, ") * FROM ks_stage ORDER BY ");
        append_cols(q, s, true, "");
        cat(q, ", \"__ks_seq\" DESC) AS s");
}

/* The statement built in @p q, a new string (NULL after a failed
 * allocation, remembered in *oom); @p q is emptied for the next. */
static char *finish(sql_t *q, bool *oom) {
        char *sql = q->oom ? NULL : q->b.data;
        if (!sql) {
                ks_buf_free(&q->b);
                *oom = true;
        }
        memset(q, 0, sizeof(*q));
        return sql;
}

ks_err_t ks__pg_sink_build_sql(ks_pg_sink_t *s) {
        bool oom = false;
        sql_t q  = {0};
        cat(&q,
            "CREATE TEMP TABLE IF NOT EXISTS ks_stage ON COMMIT "
            "DELETE ROWS AS SELECT 0::bigint AS \"__ks_seq\", "
            "''::text AS \"__ks_op\", ");
        append_cols(&q, s, false, "");
        cat(&q, " FROM %s WITH NO DATA", s->table);
        s->sql_stage = finish(&q, &oom);

        if (s->key_cnt) {
                cat(&q, "DELETE FROM %s AS t USING ", s->table);
                append_latest(&q, s);
                cat(&q, " WHERE s.\"__ks_op\" = 'D'");
                for (size_t i = 0; i < s->col_cnt; i++)
                        if (s->cols[i].key)
                                cat(&q, " AND t.%s = s.%s", s->cols[i].quoted,
                                    s->cols[i].quoted);
                s->sql_delete_batch = finish(&q, &oom);
        }

        cat(&q, "INSERT INTO %s (", s->table);
        append_cols(&q, s, false, "");
        cat(&q, ") SELECT ");
        append_cols(&q, s, false, "");
        if (s->key_cnt) {
                cat(&q, " FROM ");
                append_latest(&q, s);
                cat(&q, " WHERE s.\"__ks_op\" = 'U'");
                append_on_conflict(&q, s);
        } else {
                cat(&q, " FROM ks_stage ORDER BY \"__ks_seq\"");
        }
        s->sql_write_batch = finish(&q, &oom);

        cat(&q, "INSERT INTO %s (", s->table);
        append_cols(&q, s, false, "");
        cat(&q, ") VALUES (");
        for (size_t i = 0; i < s->col_cnt; i++)
                cat(&q, "%s$%zu", i ? ", " : "", i + 1);
        cat(&q, ")");
        append_on_conflict(&q, s);
        s->sql_row_write = finish(&q, &oom);

        if (s->key_cnt) {
                cat(&q, "DELETE FROM %s WHERE ", s->table);
                size_t n = 0;
                for (size_t i = 0; i < s->col_cnt; i++)
                        if (s->cols[i].key) {
                                n++;
                                cat(&q, "%s%s = $%zu", n > 1 ? " AND " : "",
                                    s->cols[i].quoted, n);
                        }
                s->sql_row_delete = finish(&q, &oom);
        }
        return oom ? KS_ERR_NOMEM : KS_OK;
}

/* ---- talking to PostgreSQL -------------------------------------------------
 */

static void quiet_notices(void *arg, const char *message) {
        (void)arg, (void)message; /* "already exists, skipping" and such */
}

void ks__pg_task_disconnect(pg_task_t *st) {
        if (st->conn)
                PQfinish(st->conn);
        st->conn = NULL;
}

/* The error of @p res (NULL: of the connection), with its SQLSTATE; a
 * lost connection and every class but the permanent ones are retriable. */
static ks_error_t *pg_error(pg_task_t *st, PGresult *res, const char *what) {
        const char *state =
                res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res && *PQresultErrorMessage(res)
                                  ? PQresultErrorMessage(res)
                                  : PQerrorMessage(st->conn);
        char text[512];
        snprintf(text, sizeof(text), "%s", msg && *msg ? msg : "no message");
        text[strcspn(text, "\n")] = '\0';
        bool conn_ok   = st->conn && PQstatus(st->conn) == CONNECTION_OK;
        bool permanent = conn_ok && state && ks__pg_sqlstate_permanent(state);
        snprintf(st->sqlstate, sizeof(st->sqlstate), "%s", state ? state : "");
        ks_error_t *e = ks_error_new(
                KS_ERR_DATABASE, "postgres: %s%s: sink %s: %s: %s",
                state ? "SQLSTATE " : "", state ? state : "connection",
                st->sink->name, what, text);
        return ks_error_set_retriable(e, !permanent);
}

/* Runs @p sql; @p out (may be NULL) gets the result on success. */
static ks_error_t *run(pg_task_t *st,
                       const char *sql,
                       int nparams,
                       const char *const *params,
                       const char *what,
                       PGresult **out) {
        PGresult *res     = nparams ? PQexecParams(st->conn, sql, nparams, NULL,
                                                   params, NULL, NULL, 0)
                                    : PQexec(st->conn, sql);
        ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
                if (out)
                        *out = res;
                else
                        PQclear(res);
                return NULL;
        }
        ks_error_t *e = pg_error(st, res, what);
        PQclear(res);
        return e;
}

static void rollback(pg_task_t *st) {
        if (st->conn && PQstatus(st->conn) == CONNECTION_OK &&
            PQtransactionStatus(st->conn) != PQTRANS_IDLE)
                PQclear(PQexec(st->conn, "ROLLBACK"));
}

static ks_error_t *connect_db(pg_task_t *st) {
        if (st->conn && PQstatus(st->conn) == CONNECTION_OK)
                return NULL;
        ks__pg_task_disconnect(st);
        /* Our defaults first: what the connection string says wins. */
        const char *const keys[] = {"connect_timeout", "application_name",
                                    "dbname", NULL};
        const char *const vals[] = {"10", "kstreams", st->sink->dsn, NULL};
        st->conn                 = PQconnectdbParams(keys, vals, 1);
        if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
                ks_error_t *e = pg_error(st, NULL, "connect");
                ks__pg_task_disconnect(st);
                return e;
        }
        PQsetNoticeProcessor(st->conn, quiet_notices, NULL);
        PGresult *res = NULL;
        ks_error_t *err =
                run(st, "SELECT to_regclass('" PG_OFFSETS "') IS NULL", 0, NULL,
                    "looking up " PG_OFFSETS, &res);
        bool missing = !err && !strcmp(PQgetvalue(res, 0, 0), "t");
        PQclear(res);
        if (missing) {
                err = run(st, sql_offsets_table, 0, NULL,
                          "creating " PG_OFFSETS, NULL);
                /* Another task created it at the same moment. */
                if (err && (!strcmp(st->sqlstate, "23505") ||
                            !strcmp(st->sqlstate, "42P07"))) {
                        ks_error_destroy(err);
                        err = NULL;
                }
        }
        if (!err)
                err = run(st, st->sink->sql_stage, 0, NULL,
                          "creating the staging table", NULL);
        if (err)
                ks__pg_task_disconnect(st);
        return err;
}

void ks__pg_task_probe_applied(pg_task_t *st, pg_tp_t *tp) {
        tp->probed      = true;
        ks_error_t *err = connect_db(st);
        PGresult *res   = NULL;
        char part[16];
        snprintf(part, sizeof(part), "%" PRId32, tp->partition);
        const char *p[] = {st->app_id, st->sink->name, tp->topic, part};
        if (!err)
                err = run(st,
                          "SELECT last_offset FROM " PG_OFFSETS
                          " WHERE application_id = $1 AND sink_name = $2"
                          " AND topic = $3 AND partition = $4",
                          4, p, "reading the applied offsets", &res);
        if (err) {
                /* The commit finds out again, and retries. */
                ks__log(KS_LOG_DEBUG, "task %s: %s", st->task_id,
                        ks_error_message(err));
                ks_error_destroy(err);
                return;
        }
        int64_t applied = PQntuples(res) == 1
                                  ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                  : -1;
        PQclear(res);
        if (applied > tp->applied)
                tp->applied = applied;
}

/* ---- one attempt ------------------------------------------------------------
 */

/* What an attempt did, applied once its transaction committed. */
typedef struct tally_s {
        int64_t *applied; /* per tp: the last applied offset before */
        uint64_t written, replayed, failed;
} tally_t;

static bool row_replayed(const pg_task_t *st, const tally_t *t, size_t r) {
        const pg_rowmeta_t *m = &st->batch.rows[r];
        return m->tp >= 0 && m->offset <= t->applied[m->tp];
}

/* Makes sure every input partition of the batch has its offsets row, and
 * locks them for this transaction: a zombie instance writing the same
 * partition waits here and then sees what this one applied. */
static ks_error_t *lock_offsets(pg_task_t *st, tally_t *t) {
        for (int i = 0; i < st->tp_cnt; i++) {
                t->applied[i] = st->tps[i].applied;
                if (st->tps[i].batch_max < 0)
                        continue;
                char part[16];
                snprintf(part, sizeof(part), "%" PRId32, st->tps[i].partition);
                const char *p[] = {st->app_id, st->sink->name, st->tps[i].topic,
                                   part};
                PGresult *res   = NULL;
                ks_error_t *err = run(st, sql_offsets_ensure, 4, p,
                                      "recording the input partition", NULL);
                if (!err)
                        err = run(st, sql_offsets_lock, 4, p,
                                  "locking the applied offsets", &res);
                if (err)
                        return err;
                t->applied[i] =
                        PQntuples(res) == 1
                                ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                : -1;
                PQclear(res);
        }
        return NULL;
}

static ks_error_t *update_offsets(pg_task_t *st) {
        for (int i = 0; i < st->tp_cnt; i++) {
                if (st->tps[i].batch_max < 0)
                        continue;
                char part[16], off[24];
                snprintf(part, sizeof(part), "%" PRId32, st->tps[i].partition);
                snprintf(off, sizeof(off), "%" PRId64, st->tps[i].batch_max);
                const char *p[] = {st->app_id, st->sink->name, st->tps[i].topic,
                                   part, off};
                ks_error_t *err = run(st, sql_offsets_update, 5, p,
                                      "recording the applied offsets", NULL);
                if (err)
                        return err;
        }
        return NULL;
}

/* COPYs the rows not yet applied into the staging table. */
static ks_error_t *copy_rows(pg_task_t *st, tally_t *t) {
        PGresult *res = PQexec(st->conn, "COPY ks_stage FROM STDIN");
        if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
                ks_error_t *e = pg_error(st, res, "COPY");
                PQclear(res);
                return e;
        }
        PQclear(res);
        ks_buf_t *line = &st->scratch;
        bool ok        = true;
        for (size_t r = 0; ok && r < st->batch.cnt; r++) {
                if (row_replayed(st, t, r)) {
                        t->replayed++;
                        continue;
                }
                ks_buf_clear(line);
                ok = !ks__pg_copy_line(st, r, line) &&
                     PQputCopyData(st->conn, line->data, (int)line->len) == 1;
                t->written++;
        }
        if (PQputCopyEnd(st->conn, ok ? NULL : "kstreams: out of memory") != 1)
                ok = false;
        ks_error_t *err = NULL;
        while ((res = PQgetResult(st->conn))) {
                if (!err && PQresultStatus(res) != PGRES_COMMAND_OK)
                        err = pg_error(st, res, "COPY");
                PQclear(res);
        }
        if (!err && !ok)
                err = pg_error(st, NULL, "COPY");
        return err;
}

/* The batch in one transaction. */
static ks_error_t *write_batch(pg_task_t *st, tally_t *t) {
        const ks_pg_sink_t *sink = st->sink;
        ks_error_t *err          = run(st, "BEGIN", 0, NULL, "BEGIN", NULL);
        if (!err)
                err = lock_offsets(st, t);
        if (!err)
                err = copy_rows(st, t);
        if (!err && t->written && sink->sql_delete_batch)
                err = run(st, sink->sql_delete_batch, 0, NULL, "deleting rows",
                          NULL);
        if (!err && t->written)
                err = run(st, sink->sql_write_batch, 0, NULL, "writing rows",
                          NULL);
        if (!err)
                err = update_offsets(st);
        if (!err)
                err = run(st, "COMMIT", 0, NULL, "COMMIT", NULL);
        return err;
}

/* The row as a JSON object, for a dead-letter record. */
static char *row_json(const pg_task_t *st, size_t r) {
        const ks_pg_sink_t *sink = st->sink;
        json_t *o                = json_object();
        for (size_t c = 0; o && c < sink->col_cnt; c++) {
                const char *v = ks__pg_batch_value(
                        &st->batch, st->batch.rows[r].first_val + c);
                json_object_set_new(o, sink->cols[c].name,
                                    v ? json_string(v) : json_null());
        }
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
}

static ks_error_t *dead_letter(pg_task_t *st, size_t r, const char *msg) {
        const pg_rowmeta_t *m = &st->batch.rows[r];
        const pg_tp_t *tp     = m->tp >= 0 ? &st->tps[m->tp] : NULL;
        char part[16], off[24];
        snprintf(part, sizeof(part), "%" PRId32, tp ? tp->partition : -1);
        snprintf(off, sizeof(off), "%" PRId64, m->offset);
        const char *topic = tp ? tp->topic : "";
        char *value       = row_json(st, r);
        if (!value)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        ks_header_t h[] = {
                {"__streams.errors.exception", {"KS_ERR_DATABASE", 15}},
                {"__streams.errors.message", {msg, strlen(msg)}},
                {"__streams.errors.sqlstate",
                 {st->sqlstate, strlen(st->sqlstate)}},
                {"__streams.errors.topic", {topic, strlen(topic)}},
                {"__streams.errors.partition", {part, strlen(part)}},
                {"__streams.errors.offset", {off, strlen(off)}},
                {"__streams.errors.processor",
                 {st->sink->name, strlen(st->sink->name)}}};
        char errstr[256];
        const ks_collector_t *c = st->collector;
        ks_err_t err =
                c->send(c->opaque, st->dlq_topic, -1, (ks_bytes_t){NULL, 0},
                        (ks_bytes_t){value, strlen(value)}, m->timestamp, h,
                        sizeof(h) / sizeof(h[0]), NULL, errstr, sizeof(errstr));
        free(value);
        if (err)
                return ks_error_new(KS_ERR_KAFKA,
                                    "postgres sink %s: the dead-letter topic "
                                    "%s refused a row: %s",
                                    st->sink->name, st->dlq_topic, errstr);
        return NULL;
}

/* A row that failed for good: the production handler decides. */
static ks_error_t *row_failed(pg_task_t *st,
                              size_t r,
                              ks_error_t *why,
                              tally_t *t) {
        const pg_rowmeta_t *m = &st->batch.rows[r];
        const char *topic     = m->tp >= 0 ? st->tps[m->tp].topic : "-";
        int32_t part          = m->tp >= 0 ? st->tps[m->tp].partition : -1;
        if (st->prod_handler == KS_HANDLER_FAIL) {
                ks_error_t *e =
                        ks_error_new(KS_ERR_DATABASE,
                                     "task %s: production error at %s[%" PRId32
                                     "]@%" PRId64 " in %s: %s (handler: fail)",
                                     st->task_id, topic, part, m->offset,
                                     st->sink->name, ks_error_message(why));
                ks_error_destroy(why);
                return ks_error_set_retriable(e, false);
        }
        ks_error_t *e = NULL;
        if (st->prod_handler == KS_HANDLER_DEAD_LETTER)
                e = dead_letter(st, r, ks_error_message(why));
        if (!e) {
                t->failed++;
                ks__log_limited(&st->rl_fail, st->log_interval, KS_LOG_WARNING,
                                "task %s: production error at %s[%" PRId32
                                "]@%" PRId64 " in %s: %s; row %s",
                                st->task_id, topic, part, m->offset,
                                st->sink->name, ks_error_message(why),
                                st->prod_handler == KS_HANDLER_DEAD_LETTER
                                        ? "sent to the dead-letter topic"
                                        : "skipped");
        }
        ks_error_destroy(why);
        return e;
}

/* One row in its own savepoint. */
static ks_error_t *write_row(pg_task_t *st, size_t r) {
        const ks_pg_sink_t *sink = st->sink;
        const pg_rowmeta_t *m    = &st->batch.rows[r];
        const char *params[sink->col_cnt ? sink->col_cnt : 1];
        int n = 0;
        for (size_t c = 0; c < sink->col_cnt; c++)
                if (!m->del || sink->cols[c].key)
                        params[n++] = ks__pg_batch_value(&st->batch,
                                                         m->first_val + c);
        return run(st, m->del ? sink->sql_row_delete : sink->sql_row_write, n,
                   params, m->del ? "deleting a row" : "writing a row", NULL);
}

/* The batch again, row by row: the rows that cannot be written go to the
 * handler, the rest commit. */
static ks_error_t *write_rows(pg_task_t *st, tally_t *t) {
        ks_error_t *err = run(st, "BEGIN", 0, NULL, "BEGIN", NULL);
        if (!err)
                err = lock_offsets(st, t);
        for (size_t r = 0; !err && r < st->batch.cnt; r++) {
                if (row_replayed(st, t, r)) {
                        t->replayed++;
                        continue;
                }
                err = run(st, "SAVEPOINT ks_row", 0, NULL, "SAVEPOINT", NULL);
                ks_error_t *row_err = err ? NULL : write_row(st, r);
                if (row_err && ks_error_is_retriable(row_err)) {
                        err = row_err;
                } else if (row_err) {
                        err = run(st, "ROLLBACK TO SAVEPOINT ks_row", 0, NULL,
                                  "ROLLBACK TO SAVEPOINT", NULL);
                        if (!err)
                                err = row_failed(st, r, row_err, t);
                        else
                                ks_error_destroy(row_err);
                } else if (!err) {
                        t->written++;
                        err = run(st, "RELEASE SAVEPOINT ks_row", 0, NULL,
                                  "RELEASE SAVEPOINT", NULL);
                }
        }
        if (!err)
                err = update_offsets(st);
        if (!err)
                err = run(st, "COMMIT", 0, NULL, "COMMIT", NULL);
        return err;
}

static ks_error_t *attempt(pg_task_t *st) {
        ks_error_t *err = connect_db(st);
        if (err)
                return err;
        int64_t applied[st->tp_cnt ? st->tp_cnt : 1];
        tally_t t = {.applied = applied};
        err       = write_batch(st, &t);
        if (err && !ks_error_is_retriable(err)) {
                /* Find the rows at fault; the others still go in. */
                rollback(st);
                ks__log(KS_LOG_DEBUG, "task %s: %s; writing row by row",
                        st->task_id, ks_error_message(err));
                ks_error_destroy(err);
                t   = (tally_t){.applied = applied};
                err = write_rows(st, &t);
        }
        if (err) {
                rollback(st);
                return err;
        }
        ks_pg_sink_t *sink = st->sink;
        atomic_fetch_add(&sink->rows_written, t.written);
        atomic_fetch_add(&sink->rows_replayed, t.replayed);
        atomic_fetch_add(&sink->rows_failed, t.failed);
        atomic_fetch_add(&sink->transactions, 1);
        for (int i = 0; i < st->tp_cnt; i++) {
                pg_tp_t *tp = &st->tps[i];
                tp->applied =
                        applied[i] > tp->batch_max ? applied[i] : tp->batch_max;
                tp->batch_max = -1;
        }
        ks__pg_batch_clear(&st->batch);
        return NULL;
}

static void sleep_ms(int64_t ms) {
        struct timespec ts = {(time_t)(ms / 1000),
                              (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

ks_error_t *ks__pg_task_flush(void *state) {
        pg_task_t *st      = state;
        ks_pg_sink_t *sink = st->sink;
        if (!st->batch.cnt)
                return NULL;
        int64_t start = ks_now_ms(), backoff = sink->backoff_ms;
        for (;;) {
                ks_error_t *err = attempt(st);
                int64_t now     = ks_now_ms();
                if (!err && st->waiting) {
                        st->waiting = false;
                        atomic_fetch_sub(&sink->waiting_tasks, 1);
                        ks__log(KS_LOG_INFO,
                                "task %s: postgres sink %s: written after "
                                "waiting %" PRId64 " ms for PostgreSQL",
                                st->task_id, sink->name,
                                now - st->waiting_since);
                }
                if (!err || !ks_error_is_retriable(err))
                        return err;
                atomic_fetch_add(&sink->retries, 1);
                if (!st->waiting) {
                        st->waiting       = true;
                        st->waiting_since = now;
                        atomic_fetch_add(&sink->waiting_tasks, 1);
                }
                if (st->conn && PQstatus(st->conn) != CONNECTION_OK)
                        ks__pg_task_disconnect(st);
                bool give_up = now - start + backoff > sink->timeout_ms;
                ks__log_limited(
                        &st->rl_retry, st->log_interval, KS_LOG_WARNING,
                        "task %s: postgres sink %s: %s; rows waiting: %zu, "
                        "offsets held back; %s (waiting for %" PRId64 " ms)",
                        st->task_id, sink->name, ks_error_message(err),
                        st->batch.cnt,
                        give_up ? "commit postponed" : "retrying",
                        now - st->waiting_since);
                if (give_up)
                        return err;
                ks_error_destroy(err);
                sleep_ms(backoff);
                backoff = backoff * 2 > sink->backoff_max_ms
                                  ? sink->backoff_max_ms
                                  : backoff * 2;
        }
}
