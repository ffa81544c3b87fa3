/* The PostgreSQL sink: ks_stream_to_postgres(), its processor, and how a
 * record becomes a row. The rows wait in the task's batch until the
 * commit hook (sink_pg_copy.c) writes them. @locality stream thread */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builder_int.h"
#include "sink_pg_int.h"

/* ---- text helpers ------------------------------------------------------ */

ks_err_t ks__pg_copy_escape(ks_buf_t *out, const char *s, size_t len) {
        if (ks_buf_reserve(out, len + 8))
                return KS_ERR_NOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = s[i], esc = 0;
                switch (c) {
                case '\\':
                        esc = '\\';
                        break;
                case '\t':
                        esc = 't';
                        break;
                case '\n':
                        esc = 'n';
                        break;
                case '\r':
                        esc = 'r';
                        break;
                default:
                        break;
                }
                char two[2]  = {'\\', esc};
                ks_err_t err = esc ? ks_buf_append(out, two, 2)
                                   : ks_buf_append(out, &c, 1);
                if (err)
                        return err;
        }
        return KS_OK;
}

ks_err_t ks__pg_quote_ident(ks_buf_t *out, const char *name) {
        if (ks_buf_append(out, "\"", 1))
                return KS_ERR_NOMEM;
        for (const char *p = name; *p; p++)
                if ((*p == '"' && ks_buf_append(out, "\"", 1)) ||
                    ks_buf_append(out, p, 1))
                        return KS_ERR_NOMEM;
        return ks_buf_append(out, "\"", 1);
}

void ks__pg_format_epoch_ms(int64_t ms, char *out, size_t out_size) {
        int64_t secs = ms / 1000, frac = ms % 1000;
        if (frac < 0) {
                frac += 1000;
                secs--;
        }
        time_t t = (time_t)secs;
        struct tm tm;
        if (!gmtime_r(&t, &tm)) {
                snprintf(out, out_size, "invalid");
                return;
        }
        snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)frac);
}

void ks__pg_format_double(double v, char *out, size_t out_size) {
        if (!isfinite(v)) {
                snprintf(out, out_size, "%s",
                         isnan(v) ? "NaN"
                         : v > 0  ? "Infinity"
                                  : "-Infinity");
                return;
        }
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(out, out_size, "%.*g", prec, v);
                if (strtod(out, NULL) == v)
                        return;
        }
}

/* ---- batches ------------------------------------------------------------ */

ssize_t ks__pg_batch_add(pg_batch_t *b, size_t col_cnt) {
        if (b->cnt == b->cap) {
                size_t cap       = b->cap ? b->cap * 2 : 64;
                pg_rowmeta_t *nr = realloc(b->rows, cap * sizeof(*nr));
                if (!nr)
                        return -1;
                b->rows = nr;
                b->cap  = cap;
        }
        if (b->val_cnt + col_cnt > b->val_cap) {
                size_t cap = b->val_cap ? b->val_cap * 2 : 256;
                while (cap < b->val_cnt + col_cnt)
                        cap *= 2;
                pg_val_t *nv = realloc(b->vals, cap * sizeof(*nv));
                if (!nv)
                        return -1;
                b->vals    = nv;
                b->val_cap = cap;
        }
        pg_rowmeta_t *r = &b->rows[b->cnt];
        memset(r, 0, sizeof(*r));
        r->first_val = b->val_cnt;
        r->tp        = -1;
        r->offset    = -1;
        for (size_t i = 0; i < col_cnt; i++)
                b->vals[b->val_cnt + i] = (pg_val_t){0, -1};
        b->val_cnt += col_cnt;
        return (ssize_t)b->cnt++;
}

ks_err_t ks__pg_batch_set(pg_batch_t *b,
                          size_t idx,
                          const char *data,
                          size_t len) {
        if (!data) {
                b->vals[idx].len = -1;
                return KS_OK;
        }
        size_t off = b->data.len;
        if (ks_buf_append(&b->data, data, len) ||
            ks_buf_append(&b->data, "", 1))
                return KS_ERR_NOMEM;
        b->vals[idx] = (pg_val_t){off, (ssize_t)len};
        return KS_OK;
}

void ks__pg_batch_drop_last(pg_batch_t *b, size_t col_cnt) {
        if (!b->cnt)
                return;
        b->cnt--;
        b->val_cnt -= col_cnt;
        /* The row's bytes stay until the batch is cleared: harmless. */
}

void ks__pg_batch_clear(pg_batch_t *b) {
        ks_buf_clear(&b->data);
        b->val_cnt = 0;
        b->cnt     = 0;
}

void ks__pg_batch_free(pg_batch_t *b) {
        ks_buf_free(&b->data);
        free(b->vals);
        free(b->rows);
        memset(b, 0, sizeof(*b));
}

const char *ks__pg_batch_value(const pg_batch_t *b, size_t idx) {
        return b->vals[idx].len < 0 ? NULL : b->data.data + b->vals[idx].off;
}

ks_err_t ks__pg_copy_line(const pg_task_t *st, size_t r, ks_buf_t *out) {
        const pg_batch_t *b   = &st->batch;
        const pg_rowmeta_t *m = &b->rows[r];
        ks_err_t err = ks_buf_appendf(out, "%zu\t%c", r, m->del ? 'D' : 'U');
        for (size_t c = 0; !err && c < st->sink->col_cnt; c++) {
                const pg_val_t *v = &b->vals[m->first_val + c];
                err               = ks_buf_append(out, "\t", 1);
                if (!err && v->len < 0)
                        err = ks_buf_append(out, "\\N", 2);
                else if (!err)
                        err = ks__pg_copy_escape(out, b->data.data + v->off,
                                                 (size_t)v->len);
        }
        return err ? err : ks_buf_append(out, "\n", 1);
}

ks_err_t ks__pg_sink_pending_copy(const ks_pg_sink_t *sink, ks_buf_t *out) {
        ks_pg_sink_t *s = (ks_pg_sink_t *)sink;
        ks_err_t err    = KS_OK;
        pthread_mutex_lock(&s->lock);
        for (int i = 0; !err && i < s->live_cnt; i++)
                for (size_t r = 0; !err && r < s->live[i]->batch.cnt; r++)
                        err = ks__pg_copy_line(s->live[i], r, out);
        pthread_mutex_unlock(&s->lock);
        return err;
}

/* ---- the row API --------------------------------------------------------- */

ks_err_t ks_pg_row_set(ks_pg_row_t *row, size_t col, const char *text) {
        if (!row || col >= row->st->sink->col_cnt)
                return KS_ERR_INVALID_ARG;
        return ks__pg_batch_set(&row->st->batch, row->first_val + col, text,
                                text ? strlen(text) : 0);
}

ks_err_t ks_pg_row_set_int64(ks_pg_row_t *row, size_t col, int64_t v) {
        char s[32];
        snprintf(s, sizeof(s), "%" PRId64, v);
        return ks_pg_row_set(row, col, s);
}

ks_err_t ks_pg_row_set_double(ks_pg_row_t *row, size_t col, double v) {
        char s[KS_PG_NUM_MAX];
        ks__pg_format_double(v, s, sizeof(s));
        return ks_pg_row_set(row, col, s);
}

ks_err_t ks_pg_row_set_epoch_ms(ks_pg_row_t *row, size_t col, int64_t ms) {
        char s[KS_PG_NUM_MAX];
        ks__pg_format_epoch_ms(ms, s, sizeof(s));
        return ks_pg_row_set(row, col, s);
}

ks_err_t ks_pg_row_delete(ks_pg_row_t *row) {
        if (!row || !row->st->sink->key_cnt)
                return KS_ERR_INVALID_ARG;
        row->del = true;
        return KS_OK;
}

void ks_pg_row_skip(ks_pg_row_t *row) {
        if (row)
                row->skip = true;
}

void ks_pg_sink_metrics(const ks_pg_sink_t *sink, ks_pg_sink_metrics_t *out) {
        memset(out, 0, sizeof(*out));
        if (!sink)
                return;
        ks_pg_sink_t *s         = (ks_pg_sink_t *)sink;
        out->rows_written       = atomic_load(&s->rows_written);
        out->rows_replayed      = atomic_load(&s->rows_replayed);
        out->rows_failed        = atomic_load(&s->rows_failed);
        out->tombstones_ignored = atomic_load(&s->tombstones_ignored);
        out->transactions       = atomic_load(&s->transactions);
        out->retries            = atomic_load(&s->retries);
        out->waiting_tasks      = atomic_load(&s->waiting_tasks);
}

/* ---- mapping JSON values ------------------------------------------------- */

static const json_t *json_at(const json_t *j, char *const *path, int len) {
        for (int i = 0; j && i < len; i++) {
                if (json_is_object(j)) {
                        j = json_object_get(j, path[i]);
                } else if (json_is_array(j)) {
                        char *end;
                        unsigned long idx = strtoul(path[i], &end, 10);
                        j = *end ? NULL : json_array_get(j, idx);
                } else {
                        return NULL;
                }
        }
        return j;
}

/* Appends @p j as compact JSON text; reals in their shortest exact form
 * (jansson writes 99.99 as 99.989999999999995). */
static ks_err_t append_json(ks_buf_t *out, const json_t *j) {
        char num[KS_PG_NUM_MAX];
        switch (json_typeof(j)) {
        case JSON_OBJECT: {
                const char *k;
                json_t *v;
                bool first   = true;
                ks_err_t err = ks_buf_append(out, "{", 1);
                json_object_foreach((json_t *)j, k, v) {
                        json_t *key = json_string(k);
                        err         = err   ? err
                                      : key ? (first ? KS_OK
                                                     : ks_buf_append(out, ",", 1))
                                            : KS_ERR_NOMEM;
                        if (!err)
                                err = append_json(out, key);
                        json_decref(key);
                        if (!err)
                                err = ks_buf_append(out, ":", 1);
                        if (!err)
                                err = append_json(out, v);
                        first = false;
                }
                return err ? err : ks_buf_append(out, "}", 1);
        }
        case JSON_ARRAY: {
                ks_err_t err = ks_buf_append(out, "[", 1);
                for (size_t i = 0; !err && i < json_array_size(j); i++) {
                        if (i)
                                err = ks_buf_append(out, ",", 1);
                        if (!err)
                                err = append_json(out, json_array_get(j, i));
                }
                return err ? err : ks_buf_append(out, "]", 1);
        }
        case JSON_REAL:
                ks__pg_format_double(json_real_value(j), num, sizeof(num));
                /* A real stays a real when read back. */
                if (!strpbrk(num, ".eEnN"))
                        strcat(num, ".0");
                return ks_buf_append(out, num, strlen(num));
        default: {
                char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!text)
                        return KS_ERR_NOMEM;
                ks_err_t err = ks_buf_append(out, text, strlen(text));
                free(text);
                return err;
        }
        }
}

/* Sets value @p idx from JSON @p j (NULL or null: SQL NULL). */
static ks_err_t set_json(pg_batch_t *b,
                         size_t idx,
                         const json_t *j,
                         ks_pg_format_t fmt) {
        char num[KS_PG_NUM_MAX];
        switch (j ? json_typeof(j) : JSON_NULL) {
        case JSON_NULL:
                return ks__pg_batch_set(b, idx, NULL, 0);
        case JSON_STRING:
                return ks__pg_batch_set(b, idx, json_string_value(j),
                                        json_string_length(j));
        case JSON_INTEGER:
                if (fmt == KS_PG_FORMAT_EPOCH_MS)
                        ks__pg_format_epoch_ms(json_integer_value(j), num,
                                               sizeof(num));
                else
                        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                                 json_integer_value(j));
                break;
        case JSON_REAL:
                if (fmt == KS_PG_FORMAT_EPOCH_MS)
                        ks__pg_format_epoch_ms(llround(json_real_value(j)), num,
                                               sizeof(num));
                else
                        ks__pg_format_double(json_real_value(j), num,
                                             sizeof(num));
                break;
        case JSON_TRUE:
                snprintf(num, sizeof(num), "true");
                break;
        case JSON_FALSE:
                snprintf(num, sizeof(num), "false");
                break;
        default: {
                ks_buf_t text = {0};
                ks_err_t err  = append_json(&text, j);
                if (!err)
                        err = ks__pg_batch_set(b, idx, text.data, text.len);
                ks_buf_free(&text);
                return err;
        }
        }
        return ks__pg_batch_set(b, idx, num, strlen(num));
}

static ks_err_t set_meta(ks_ctx_t *ctx,
                         pg_batch_t *b,
                         size_t idx,
                         const pg_col_t *c,
                         pg_key_kind_t key_kind,
                         const void *key) {
        char num[KS_PG_NUM_MAX];
        switch (c->meta) {
        case PG_META_KEY:
                if (!key)
                        return ks__pg_batch_set(b, idx, NULL, 0);
                if (key_kind == PG_KEY_STRING)
                        return ks__pg_batch_set(b, idx, key, strlen(key));
                if (key_kind == PG_KEY_INT64) {
                        snprintf(num, sizeof(num), "%" PRId64,
                                 *(const int64_t *)key);
                        break;
                }
                return set_json(b, idx, json_at(key, c->path, c->path_len),
                                c->format);
        case PG_META_TIMESTAMP:
                if (c->format == KS_PG_FORMAT_EPOCH_MS)
                        ks__pg_format_epoch_ms(ks_ctx_timestamp(ctx), num,
                                               sizeof(num));
                else
                        snprintf(num, sizeof(num), "%" PRId64,
                                 ks_ctx_timestamp(ctx));
                break;
        case PG_META_TOPIC: {
                const char *t = ks_ctx_topic(ctx);
                return ks__pg_batch_set(b, idx, t, t ? strlen(t) : 0);
        }
        case PG_META_PARTITION:
                snprintf(num, sizeof(num), "%" PRId32, ks_ctx_partition(ctx));
                break;
        case PG_META_OFFSET:
                snprintf(num, sizeof(num), "%" PRId64, ks_ctx_offset(ctx));
                break;
        default:
                return KS_ERR_INVALID_ARG;
        }
        return ks__pg_batch_set(b, idx, num, strlen(num));
}

/* Fills row @p r from the record with the columns' paths. A tombstone
 * deletes by key when every key column comes from the key or the record's
 * metadata; otherwise it is ignored (*ignored). */
static ks_err_t map_json(ks_ctx_t *ctx,
                         pg_task_t *st,
                         size_t r,
                         const void *key,
                         const json_t *value,
                         bool *ignored) {
        ks_pg_sink_t *sink = st->sink;
        pg_batch_t *b      = &st->batch;
        size_t first       = b->rows[r].first_val;
        *ignored           = false;
        if (!value) {
                bool by_key = sink->key_cnt > 0;
                for (size_t i = 0; i < sink->col_cnt; i++)
                        if (sink->cols[i].key &&
                            sink->cols[i].meta == PG_META_NONE)
                                by_key = false;
                if (!by_key) {
                        *ignored = true;
                        return KS_OK;
                }
                b->rows[r].del = true;
        }
        for (size_t i = 0; i < sink->col_cnt; i++) {
                const pg_col_t *c = &sink->cols[i];
                ks_err_t err;
                if (!value && !c->key)
                        continue;
                if (c->meta != PG_META_NONE)
                        err = set_meta(ctx, b, first + i, c, sink->key_kind,
                                       key);
                else
                        err = set_json(b, first + i,
                                       json_at(value, c->path, c->path_len),
                                       c->format);
                if (err == KS_ERR_NOMEM)
                        return ks_ctx_fail(ctx,
                                           "postgres sink %s: out of "
                                           "memory",
                                           sink->name);
                if (err)
                        return err;
                if (c->key && b->vals[first + i].len < 0)
                        return ks_ctx_fail(ctx,
                                           "postgres sink %s: key column %s "
                                           "is missing or null in the record",
                                           sink->name, c->name);
        }
        return KS_OK;
}

/* ---- the processor ------------------------------------------------------- */

static int tp_index(pg_task_t *st, const char *topic, int32_t partition) {
        for (int i = 0; i < st->tp_cnt; i++)
                if (st->tps[i].partition == partition &&
                    !strcmp(st->tps[i].topic, topic))
                        return i;
        pg_tp_t *n = realloc(st->tps, (size_t)(st->tp_cnt + 1) * sizeof(*n));
        if (!n)
                return -1;
        st->tps       = n;
        n[st->tp_cnt] = (pg_tp_t){strdup(topic), partition, -1,
                                  -2 /* unknown */, false};
        if (!n[st->tp_cnt].topic)
                return -1;
        return st->tp_cnt++;
}

static ks_err_t sink_init(ks_ctx_t *ctx, void **state, void *opaque) {
        pg_task_t *st = calloc(1, sizeof(*st));
        if (!st)
                return KS_ERR_NOMEM;
        const ks_conf_t *conf = ks__ctx_conf(ctx);
        st->sink              = opaque;
        snprintf(st->task_id, sizeof(st->task_id), "%s", ks_ctx_task_id(ctx));
        st->app_id    = strdup(ks_ctx_application_id(ctx));
        st->collector = ks__ctx_collector(ctx);
        st->prod_handler =
                ks__conf_handler(conf, "default.production.exception.handler");
        st->dlq_topic =
                ks__conf_str(conf, "errors.dead.letter.queue.topic.name");
        st->log_interval = ks__conf_int(conf, "log.rate.limit.ms");
        ks_err_t err =
                st->app_id ? ks__ctx_add_commit_hook(ctx, ks__pg_task_flush, st)
                           : KS_ERR_NOMEM;
        ks_pg_sink_t *sink = st->sink;
        pthread_mutex_lock(&sink->lock);
        pg_task_t **nl =
                err ? NULL
                    : realloc(sink->live,
                              (size_t)(sink->live_cnt + 1) * sizeof(*nl));
        if (nl) {
                sink->live                   = nl;
                sink->live[sink->live_cnt++] = st;
        }
        pthread_mutex_unlock(&sink->lock);
        if (!nl) {
                free(st->app_id);
                free(st);
                return err ? err : KS_ERR_NOMEM;
        }
        *state = st;
        return KS_OK;
}

static void sink_close(ks_ctx_t *ctx, void *state, void *opaque) {
        (void)ctx, (void)opaque;
        pg_task_t *st = state;
        if (!st)
                return;
        ks_pg_sink_t *sink = st->sink;
        pthread_mutex_lock(&sink->lock);
        for (int i = 0; i < sink->live_cnt; i++)
                if (sink->live[i] == st) {
                        memmove(&sink->live[i], &sink->live[i + 1],
                                (size_t)(sink->live_cnt - i - 1) *
                                        sizeof(*sink->live));
                        sink->live_cnt--;
                        break;
                }
        pthread_mutex_unlock(&sink->lock);
        /* Rows not committed are dropped: their offsets were not
         * committed either, so they come back. */
        ks__pg_task_disconnect(st);
        if (st->waiting)
                atomic_fetch_sub(&st->sink->waiting_tasks, 1);
        ks__pg_batch_free(&st->batch);
        for (int i = 0; i < st->tp_cnt; i++)
                free(st->tps[i].topic);
        free(st->tps);
        ks_buf_free(&st->scratch);
        free(st->app_id);
        free(st);
}

static ks_err_t sink_process(ks_ctx_t *ctx,
                             const void *key,
                             const void *value,
                             void *state,
                             void *opaque) {
        pg_task_t *st      = state;
        ks_pg_sink_t *sink = opaque;
        const char *topic  = ks_ctx_topic(ctx);
        int64_t offset     = ks_ctx_offset(ctx);
        int tp             = -1;
        if (topic && offset >= 0) {
                tp = tp_index(st, topic, ks_ctx_partition(ctx));
                if (tp < 0)
                        return ks_ctx_fail(ctx,
                                           "postgres sink %s: out of "
                                           "memory",
                                           sink->name);
                if (!st->tps[tp].probed)
                        ks__pg_task_probe_applied(st, &st->tps[tp]);
                if (offset <= st->tps[tp].applied) {
                        atomic_fetch_add(&sink->rows_replayed, 1);
                        return KS_OK;
                }
        }
        ssize_t r = ks__pg_batch_add(&st->batch, sink->col_cnt);
        if (r < 0)
                return ks_ctx_fail(ctx, "postgres sink %s: out of memory",
                                   sink->name);
        ks_err_t err = KS_OK;
        bool skip    = false;
        if (sink->row_fn) {
                ks_pg_row_t row = {st, st->batch.rows[r].first_val, false,
                                   false};
                err             = sink->row_fn(&row, key, value, sink->opaque);
                if (err)
                        err = ks_ctx_fail(ctx,
                                          "postgres sink %s: the row "
                                          "callback failed: %s",
                                          sink->name, ks_err2str(err));
                skip                  = row.skip;
                st->batch.rows[r].del = row.del;
        } else {
                err = map_json(ctx, st, (size_t)r, key, value, &skip);
                if (!err && skip)
                        atomic_fetch_add(&sink->tombstones_ignored, 1);
        }
        if (err || skip) {
                ks__pg_batch_drop_last(&st->batch, sink->col_cnt);
                return err;
        }
        pg_rowmeta_t *m = &st->batch.rows[r];
        m->tp           = tp;
        m->offset       = offset;
        m->timestamp    = ks_ctx_timestamp(ctx);
        if (tp >= 0 && offset > st->tps[tp].batch_max)
                st->tps[tp].batch_max = offset;
        return KS_OK;
}

/* ---- building ------------------------------------------------------------ */

static void sink_free(void *p) {
        ks_pg_sink_t *s = p;
        if (!s)
                return;
        if (s->opaque_free)
                s->opaque_free(s->opaque);
        for (size_t i = 0; s->cols && i < s->col_cnt; i++) {
                free(s->cols[i].name);
                free(s->cols[i].quoted);
                for (int k = 0; k < s->cols[i].path_len; k++)
                        free(s->cols[i].path[k]);
                free(s->cols[i].path);
        }
        free(s->cols);
        free(s->name);
        free(s->dsn);
        free(s->table);
        free(s->sql_stage);
        free(s->sql_delete_batch);
        free(s->sql_write_batch);
        free(s->sql_row_write);
        free(s->sql_row_delete);
        free(s->live);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

/* Splits a dotted path into its segments. */
static ks_err_t split_path(pg_col_t *c, const char *path) {
        const char *p = path;
        while (*p) {
                const char *dot = strchr(p, '.');
                size_t len      = dot ? (size_t)(dot - p) : strlen(p);
                char **np       = realloc(c->path,
                                          (size_t)(c->path_len + 1) * sizeof(char *));
                if (!np)
                        return KS_ERR_NOMEM;
                c->path = np;
                if (!(c->path[c->path_len] = strndup(p, len)))
                        return KS_ERR_NOMEM;
                c->path_len++;
                p += len;
                if (*p == '.')
                        p++;
        }
        return KS_OK;
}

/* Copies and checks column @p in. @returns NULL, or why it is invalid. */
static const char *column_init(pg_col_t *c,
                               const ks_pg_column_t *in,
                               bool mapped) {
        static const struct {
                const char *name;
                pg_meta_t meta;
        } metas[] = {{"$timestamp", PG_META_TIMESTAMP},
                     {"$topic", PG_META_TOPIC},
                     {"$partition", PG_META_PARTITION},
                     {"$offset", PG_META_OFFSET}};
        if (!in->name || !*in->name)
                return "a column has no name";
        ks_buf_t q = {0};
        c->name    = strdup(in->name);
        c->key     = in->key;
        c->format  = in->format;
        if (!c->name || ks__pg_quote_ident(&q, in->name) ||
            ks_buf_append(&q, "", 1)) {
                ks_buf_free(&q);
                return "out of memory";
        }
        c->quoted = q.data;
        if (!mapped)
                return NULL;
        const char *path = in->path ? in->path : in->name;
        if (*path == '$') {
                for (size_t i = 0; i < sizeof(metas) / sizeof(metas[0]); i++)
                        if (!strcmp(path, metas[i].name))
                                c->meta = metas[i].meta;
                if (!strcmp(path, "$key") || !strncmp(path, "$key.", 5)) {
                        c->meta = PG_META_KEY;
                        path += path[4] ? 5 : 4;
                } else {
                        path = "";
                }
                if (c->meta == PG_META_NONE)
                        return "a column's path starts with '$' but is none "
                               "of $key, $key.<path>, $timestamp, $topic, "
                               "$partition, $offset";
        } else if (!*path) {
                return "a column has an empty path";
        }
        return split_path(c, path) ? "out of memory" : NULL;
}

static pg_key_kind_t key_kind_of(const ks_serde_t *serde) {
        if (serde == ks_serde_string())
                return PG_KEY_STRING;
        if (serde == ks_serde_int64())
                return PG_KEY_INT64;
        if (serde == ks_serde_json())
                return PG_KEY_JSON;
        return PG_KEY_UNKNOWN;
}

/* Copies and checks @p conf. @returns NULL, or why it is invalid. */
static const char *sink_init_conf(ks_pg_sink_t *sink,
                                  const ks_stream_t *s,
                                  const char *name,
                                  const ks_pg_sink_conf_t *conf) {
        const char *dsn = conf->dsn ? conf->dsn : getenv("KS_PG_DSN");
        if (!dsn || !*dsn)
                return "no connection string: set conf.dsn or KS_PG_DSN";
        if (!conf->table || !*conf->table)
                return "no table";
        if (!conf->columns || !conf->column_cnt)
                return "no columns";
        sink->name  = strdup(name);
        sink->dsn   = strdup(dsn);
        sink->table = strdup(conf->table);
        sink->cols  = calloc(conf->column_cnt, sizeof(*sink->cols));
        if (!sink->name || !sink->dsn || !sink->table || !sink->cols)
                return "out of memory";
        sink->col_cnt  = conf->column_cnt;
        sink->row_fn   = conf->row_fn;
        sink->key_kind = key_kind_of(s->key_serde);
        bool uses_key = false, uses_value = false;
        for (size_t i = 0; i < conf->column_cnt; i++) {
                const char *why = column_init(&sink->cols[i], &conf->columns[i],
                                              !conf->row_fn);
                if (why)
                        return why;
                sink->key_cnt += sink->cols[i].key;
                uses_key |= sink->cols[i].meta == PG_META_KEY;
                uses_value |=
                        !conf->row_fn && sink->cols[i].meta == PG_META_NONE;
                for (size_t k = 0; k < i; k++)
                        if (!strcmp(sink->cols[k].name, sink->cols[i].name))
                                return "two columns have the same name";
        }
        if (uses_key && sink->key_kind == PG_KEY_UNKNOWN)
                return "a column reads $key but the stream's key serde is "
                       "not string, int64 or JSON";
        if (uses_key && sink->key_kind != PG_KEY_JSON) {
                for (size_t i = 0; i < sink->col_cnt; i++)
                        if (sink->cols[i].meta == PG_META_KEY &&
                            sink->cols[i].path_len)
                                return "a column reads $key.<path> but the "
                                       "key is not JSON";
        }
        if (uses_value && s->value_serde && s->value_serde != ks_serde_json())
                return "columns map JSON paths but the stream's values are "
                       "not JSON (ks_serde_json()); give a row_fn";
        sink->backoff_ms =
                conf->retry_backoff_ms > 0 ? conf->retry_backoff_ms : 100;
        sink->backoff_max_ms = conf->retry_backoff_max_ms > 0
                                       ? conf->retry_backoff_max_ms
                                       : 5000;
        if (sink->backoff_max_ms < sink->backoff_ms)
                sink->backoff_max_ms = sink->backoff_ms;
        sink->timeout_ms =
                conf->retry_timeout_ms > 0 ? conf->retry_timeout_ms : 30000;
        return ks__pg_sink_build_sql(sink) ? "out of memory" : NULL;
}

const ks_pg_sink_t *ks_stream_to_postgres(ks_stream_t *s,
                                          const char *name,
                                          const ks_pg_sink_conf_t *conf) {
        if (!s || !ks__stream_ok(s, name ? name : "to_postgres"))
                return NULL;
        if (!name || !*name || !conf) {
                ks__builder_fail(s->b, "to_postgres: %s",
                                 conf ? "a sink name is required"
                                      : "NULL configuration");
                return NULL;
        }
        ks_pg_sink_t *sink = calloc(1, sizeof(*sink));
        if (sink)
                pthread_mutex_init(&sink->lock, NULL);
        const char *why =
                sink ? sink_init_conf(sink, s, name, conf) : "out of memory";
        if (why) {
                ks__builder_fail(s->b, "to_postgres(%s): %s", name, why);
                sink_free(sink);
                return NULL;
        }
        ks_processor_def_t def = {.init        = sink_init,
                                  .process     = sink_process,
                                  .close       = sink_close,
                                  .opaque      = sink,
                                  .opaque_free = sink_free};
        ks_stream_t *out =
                ks__stream_add_processor(s, name, "POSTGRES", &def, NULL, NULL);
        if (!out || out->node < 0)
                return NULL; /* the builder freed sink, not conf->opaque */
        /* Registered: from now on the topology frees the user's opaque. */
        sink->opaque      = conf->opaque;
        sink->opaque_free = conf->opaque_free;
        return sink;
}
