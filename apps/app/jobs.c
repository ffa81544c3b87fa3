/* The three analytics jobs. Each builds on the valid, deduplicated events
 * with the public DSL only: group, window on the event's own time, aggregate
 * (typed struct aggregates updated in place: no JSON per update), suppress
 * until the window closes, format one JSON value per window. */
#include "jobs.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <kstreams/postgres.h>
#include <kstreams/serde_typed.h>

#include "common/user_event_serde.h"

static const char *const names[JOB__COUNT] = {
        [JOB_EVENT_COUNT] = "event-count",
        [JOB_REVENUE]     = "revenue",
        [JOB_SESSIONS]    = "sessions",
};

const char *job_name(job_kind_t kind) {
        return kind < JOB__COUNT ? names[kind] : "?";
}

const char *job_repartition_name(job_kind_t kind) {
        switch (kind) {
        case JOB_EVENT_COUNT:
                return "event-count-by-type";
        case JOB_REVENUE:
                return "revenue-by-currency";
        default:
                return NULL;
        }
}

bool job_parse(const char *name, job_kind_t *out) {
        for (int k = 0; k < JOB__COUNT; k++)
                if (!strcmp(name, names[k])) {
                        *out = (job_kind_t)k;
                        return true;
                }
        return false;
}

/* ---- formatting ---------------------------------------------------------- */

/* Appends @p s as a JSON string literal. */
static void json_str(ks_buf_t *b, const char *s) {
        static const char hex[] = "0123456789abcdef";
        ks_buf_append(b, "\"", 1);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        char e[2] = {'\\', (char)c};
                        ks_buf_append(b, e, 2);
                } else if (c < 0x20) {
                        char e[6] = {'\\', 'u',         '0',
                                     '0',  hex[c >> 4], hex[c & 15]};
                        ks_buf_append(b, e, 6);
                } else {
                        ks_buf_append(b, s, 1);
                }
        }
        ks_buf_append(b, "\"", 1);
}

/* The formatted value, copied into the arena; frees @p b. One per window
 * result, not per event. */
static const char *to_arena(ks_arena_t *a, ks_buf_t *b) {
        const char *s = b->data ? ks_arena_strndup(a, b->data, b->len) : NULL;
        ks_buf_free(b);
        return s;
}

/* llround() for the cents of an amount, as the issue defines them. */
static int64_t cents_of(double amount) {
        return (int64_t)llround(amount * 100);
}

/* ---- PostgreSQL ------------------------------------------------------------
 */

/* Writes a job's final results to @p table as well, from the windowed key
 * and the typed aggregate (no JSON in between). The key columns are the
 * tables' primary keys: a replay after a crash rewrites the same rows. The
 * sink's name is its name in kstreams_sink_offsets: keep it stable. */
static void to_postgres(ks_stream_t *results,
                        const char *name,
                        const job_opts_t *o,
                        const char *table,
                        const ks_pg_column_t *columns,
                        size_t column_cnt,
                        ks_pg_row_fn *row_fn) {
        if (!o->postgres_dsn)
                return;
        ks_pg_sink_conf_t conf = {.dsn        = o->postgres_dsn,
                                  .table      = table,
                                  .columns    = columns,
                                  .column_cnt = column_cnt,
                                  .row_fn     = row_fn};
        ks_stream_to_postgres(results, name, &conf);
}

/* The window's bounds into columns 0 and 1 (timestamptz). */
static ks_err_t set_window(ks_pg_row_t *row, const ks_windowed_key_t *wk) {
        ks_err_t e = ks_pg_row_set_epoch_ms(row, 0, wk->start);
        return e ? e : ks_pg_row_set_epoch_ms(row, 1, wk->end);
}

/* ---- event-count --------------------------------------------------------- */

static const ks_pg_column_t count_columns[] = {
        {.name = "window_start", .key = true},
        {.name = "window_end"},
        {.name = "event_type", .key = true},
        {.name = "count"},
};

static ks_err_t count_row(ks_pg_row_t *row,
                          const void *key,
                          const void *value,
                          void *opaque) {
        const ks_windowed_key_t *wk = key;
        ks_err_t e;
        (void)opaque;
        if (!value) { /* suppress emits no tombstones; nothing to delete */
                ks_pg_row_skip(row);
                return KS_OK;
        }
        if ((e = set_window(row, wk)) || (e = ks_pg_row_set(row, 2, wk->key)))
                return e;
        return ks_pg_row_set_int64(row, 3, *(const int64_t *)value);
}

static const void *type_of(ks_arena_t *a,
                           const void *key,
                           const void *value,
                           void *opaque) {
        (void)a, (void)key, (void)opaque;
        return ((const user_event_t *)value)->event_type; /* borrowed */
}

static ks_kv_t format_count(ks_arena_t *a,
                            const void *key,
                            const void *value,
                            void *opaque) {
        const ks_windowed_key_t *wk = key;
        job_stats_t *stats          = opaque;
        ks_buf_t buf = {0}, *b = &buf;
        ks_buf_appendf(b, "{\"job\":\"event-count\",\"event_type\":");
        json_str(b, wk->key);
        ks_buf_appendf(b,
                       ",\"window_start\":%" PRId64 ",\"window_end\":%" PRId64
                       ",\"count\":%" PRId64 "}",
                       wk->start, wk->end, *(const int64_t *)value);
        atomic_fetch_add(&stats->emitted, 1);
        return (ks_kv_t){wk->key, to_arena(a, b)};
}

void job_event_count(ks_stream_t *events,
                     const job_opts_t *o,
                     job_stats_t *stats) {
        ks_grouped_t *by_type = ks_stream_group_by(
                events, job_repartition_name(JOB_EVENT_COUNT), type_of, NULL,
                ks_serde_string(), valid_event_serde());
        ks_table_t *counts = ks_windowed_count(
                ks_grouped_windowed_by(
                        by_type, ks_tumbling_window(o->window_ms, o->grace_ms)),
                "event-count-store");
        ks_table_t *final =
                ks_table_suppress(counts, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                  "event-count-final");
        ks_stream_t *results = ks_table_to_stream(final, "event-count-results");
        ks_stream_to(ks_stream_map(results, "event-count-format", format_count,
                                   stats),
                     o->output_topic, ks_serde_string(), ks_serde_string());
        to_postgres(results, "event-count-postgres", o, "event_counts",
                    count_columns, 4, count_row);
}

/* ---- revenue ---------------------------------------------------------------
 */

typedef struct revenue_s {
        int64_t revenue_cents;
        int64_t purchases;
} revenue_t;

static const ks_struct_field_t revenue_fields[] = {
        KS_STRUCT_FIELD(KS_FIELD_INT64, revenue_t, revenue_cents),
        KS_STRUCT_FIELD(KS_FIELD_INT64, revenue_t, purchases),
};

static bool is_purchase(const void *key, const void *value, void *opaque) {
        (void)key, (void)opaque;
        return !strcmp(((const user_event_t *)value)->event_type, "purchase");
}

static const void *currency_of(ks_arena_t *a,
                               const void *key,
                               const void *value,
                               void *opaque) {
        (void)a, (void)key, (void)opaque;
        return ((const user_event_t *)value)->currency; /* borrowed */
}

static const void *revenue_init(ks_arena_t *a, void *opaque) {
        (void)opaque;
        revenue_t *r = ks_arena_alloc(a, sizeof(*r));
        if (r)
                *r = (revenue_t){0, 0};
        return r;
}

/* In place: the aggregate is this call's own copy (table.h). */
static const void *revenue_add(ks_arena_t *a,
                               const void *key,
                               const void *value,
                               const void *agg,
                               void *opaque) {
        (void)a, (void)key, (void)opaque;
        const user_event_t *ev = value;
        revenue_t *r           = (revenue_t *)agg;
        r->revenue_cents += cents_of(ev->amount);
        r->purchases++;
        return r;
}

static int64_t average_cents(const revenue_t *r) {
        return r->purchases ? (int64_t)llround((double)r->revenue_cents /
                                               (double)r->purchases)
                            : 0;
}

static const ks_pg_column_t revenue_columns[] = {
        {.name = "window_start", .key = true},
        {.name = "window_end"},
        {.name = "currency", .key = true},
        {.name = "revenue_cents"},
        {.name = "purchases"},
        {.name = "avg_order_value_cents"},
};

static ks_err_t revenue_row(ks_pg_row_t *row,
                            const void *key,
                            const void *value,
                            void *opaque) {
        const ks_windowed_key_t *wk = key;
        const revenue_t *r          = value;
        ks_err_t e;
        (void)opaque;
        if (!r) {
                ks_pg_row_skip(row);
                return KS_OK;
        }
        if ((e = set_window(row, wk)) || (e = ks_pg_row_set(row, 2, wk->key)) ||
            (e = ks_pg_row_set_int64(row, 3, r->revenue_cents)) ||
            (e = ks_pg_row_set_int64(row, 4, r->purchases)))
                return e;
        return ks_pg_row_set_int64(row, 5, average_cents(r));
}

static ks_kv_t format_revenue(ks_arena_t *a,
                              const void *key,
                              const void *value,
                              void *opaque) {
        const ks_windowed_key_t *wk = key;
        const revenue_t *r          = value;
        job_stats_t *stats          = opaque;
        ks_buf_t buf = {0}, *b = &buf;
        int64_t avg = average_cents(r);
        ks_buf_appendf(b, "{\"job\":\"revenue\",\"currency\":");
        json_str(b, wk->key);
        ks_buf_appendf(b,
                       ",\"window_start\":%" PRId64 ",\"window_end\":%" PRId64
                       ",\"revenue_cents\":%" PRId64 ",\"purchases\":%" PRId64
                       ",\"avg_order_value_cents\":%" PRId64 "}",
                       wk->start, wk->end, r->revenue_cents, r->purchases, avg);
        atomic_fetch_add(&stats->emitted, 1);
        return (ks_kv_t){wk->key, to_arena(a, b)};
}

void job_revenue(ks_stream_t *events, const job_opts_t *o, job_stats_t *stats) {
        ks_stream_t *purchases = ks_stream_filter(events, "revenue-purchases",
                                                  is_purchase, NULL);
        ks_grouped_t *by_currency = ks_stream_group_by(
                purchases, job_repartition_name(JOB_REVENUE), currency_of, NULL,
                ks_serde_string(), valid_event_serde());
        ks_table_t *sums = ks_windowed_aggregate(
                ks_grouped_windowed_by(
                        by_currency,
                        ks_tumbling_window(o->window_ms, o->grace_ms)),
                "revenue-store", revenue_init, revenue_add, NULL,
                ks_serde_struct("revenue", sizeof(revenue_t), revenue_fields,
                                2));
        ks_table_t *final = ks_table_suppress(
                sums, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0, "revenue-final");
        ks_stream_t *results = ks_table_to_stream(final, "revenue-results");
        ks_stream_to(
                ks_stream_map(results, "revenue-format", format_revenue, stats),
                o->output_topic, ks_serde_string(), ks_serde_string());
        to_postgres(results, "revenue-postgres", o, "revenue", revenue_columns,
                    6, revenue_row);
}

/* ---- sessions --------------------------------------------------------------
 */

typedef struct session_s {
        int64_t events;
        int64_t purchases;
        int64_t revenue_cents;
} session_t;

static const ks_struct_field_t session_fields[] = {
        KS_STRUCT_FIELD(KS_FIELD_INT64, session_t, events),
        KS_STRUCT_FIELD(KS_FIELD_INT64, session_t, purchases),
        KS_STRUCT_FIELD(KS_FIELD_INT64, session_t, revenue_cents),
};

static const void *session_init(ks_arena_t *a, void *opaque) {
        (void)opaque;
        session_t *s = ks_arena_alloc(a, sizeof(*s));
        if (s)
                *s = (session_t){0, 0, 0};
        return s;
}

static const void *session_add(ks_arena_t *a,
                               const void *key,
                               const void *value,
                               const void *agg,
                               void *opaque) {
        (void)a, (void)key, (void)opaque;
        const user_event_t *ev = value;
        session_t *s           = (session_t *)agg;
        s->events++;
        if (!strcmp(ev->event_type, "purchase")) {
                s->purchases++;
                s->revenue_cents += cents_of(ev->amount);
        }
        return s;
}

/* Into the first aggregate, in place (table.h allows it). */
static const void *session_merge(ks_arena_t *a,
                                 const void *key,
                                 const void *agg1,
                                 const void *agg2,
                                 void *opaque) {
        (void)a, (void)key, (void)opaque;
        session_t *s       = (session_t *)agg1;
        const session_t *t = agg2;
        s->events += t->events;
        s->purchases += t->purchases;
        s->revenue_cents += t->revenue_cents;
        return s;
}

static const ks_pg_column_t session_columns[] = {
        {.name = "session_start", .key = true},
        {.name = "session_end"},
        {.name = "user_id", .key = true},
        {.name = "duration_ms"},
        {.name = "events"},
        {.name = "purchases"},
        {.name = "revenue_cents"},
};

static ks_err_t session_row(ks_pg_row_t *row,
                            const void *key,
                            const void *value,
                            void *opaque) {
        const ks_windowed_key_t *wk = key;
        const session_t *s          = value;
        ks_err_t e;
        (void)opaque;
        if (!s) {
                ks_pg_row_skip(row);
                return KS_OK;
        }
        if ((e = set_window(row, wk)) || (e = ks_pg_row_set(row, 2, wk->key)) ||
            (e = ks_pg_row_set_int64(row, 3, wk->end - wk->start)) ||
            (e = ks_pg_row_set_int64(row, 4, s->events)) ||
            (e = ks_pg_row_set_int64(row, 5, s->purchases)))
                return e;
        return ks_pg_row_set_int64(row, 6, s->revenue_cents);
}

static ks_kv_t format_session(ks_arena_t *a,
                              const void *key,
                              const void *value,
                              void *opaque) {
        const ks_windowed_key_t *wk = key;
        const session_t *s          = value;
        job_stats_t *stats          = opaque;
        ks_buf_t buf = {0}, *b = &buf;
        ks_buf_appendf(b, "{\"job\":\"sessions\",\"user_id\":");
        json_str(b, wk->key);
        ks_buf_appendf(b,
                       ",\"session_start\":%" PRId64 ",\"session_end\":%" PRId64
                       ",\"duration_ms\":%" PRId64 ",\"events\":%" PRId64
                       ",\"purchases\":%" PRId64 ",\"revenue_cents\":%" PRId64
                       "}",
                       wk->start, wk->end, wk->end - wk->start, s->events,
                       s->purchases, s->revenue_cents);
        atomic_fetch_add(&stats->emitted, 1);
        return (ks_kv_t){wk->key, to_arena(a, b)};
}

void job_sessions(ks_stream_t *events,
                  const job_opts_t *o,
                  job_stats_t *stats) {
        /* The topic's key is the user_id: no repartition. */
        ks_grouped_t *by_user = ks_stream_group_by_key(
                events, ks_serde_string(), valid_event_serde());
        ks_table_t *sessions = ks_session_windowed_aggregate(
                ks_grouped_session_windowed_by(by_user, o->session_gap_ms,
                                               o->grace_ms),
                "sessions-store", session_init, session_add, session_merge,
                NULL,
                ks_serde_struct("session", sizeof(session_t), session_fields,
                                3));
        ks_table_t *final = ks_table_suppress(
                sessions, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0, "sessions-final");
        ks_stream_t *results = ks_table_to_stream(final, "sessions-results");
        ks_stream_to(ks_stream_map(results, "sessions-format", format_session,
                                   stats),
                     o->output_topic, ks_serde_string(), ks_serde_string());
        to_postgres(results, "sessions-postgres", o, "user_sessions",
                    session_columns, 7, session_row);
}

/* ---- the shared start ------------------------------------------------------
 */

/* Deduplication is the library's ks_stream_deduplicate(): its ids are in
 * a window store per task (duplicates share the key, hence the task), so
 * its event time is the task's, whatever the pace of other partitions, and
 * a restart or crash forgets none of them. It counts its drops in the
 * library's metrics (dropped_dedup); the peek before it counts what reaches
 * it, for the statistics line. */
static ks_bytes_t event_id_of(ks_arena_t *arena,
                              const void *key,
                              const void *value,
                              void *opaque) {
        const user_event_t *ev = value;
        (void)arena, (void)key, (void)opaque;
        return (ks_bytes_t){ev->event_id, strlen(ev->event_id)};
}

static void count_seen(const void *key, const void *value, void *opaque) {
        (void)key, (void)value;
        atomic_fetch_add(&((job_stats_t *)opaque)->seen, 1);
}

ks_topology_t *jobs_build(const job_kind_t *kinds,
                          size_t n,
                          const job_opts_t *o,
                          job_stats_t *stats,
                          char *errstr,
                          size_t errstr_size) {
        ks_builder_t *b = ks_builder_new();
        if (!b) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        stats->dedup_window_ms = o->dedup_window_ms;
        ks_stream_t *valid     = ks_stream_with_timestamps(
                    ks_builder_stream_topics(b, "events", &o->input_topic, 1,
                                             ks_serde_string(),
                                             valid_event_serde()),
                    user_event_timestamp_extractor());
        ks_stream_t *events = ks_stream_peek(valid, "seen", count_seen, stats);
        if (o->dedup_window_ms > 0)
                events = ks_stream_deduplicate(events, "dedup", event_id_of,
                                               NULL, o->dedup_window_ms);
        for (size_t i = 0; i < n; i++) {
                switch (kinds[i]) {
                case JOB_EVENT_COUNT:
                        job_event_count(events, o, stats);
                        break;
                case JOB_REVENUE:
                        job_revenue(events, o, stats);
                        break;
                case JOB_SESSIONS:
                        job_sessions(events, o, stats);
                        break;
                default:
                        break;
                }
        }
        ks_topology_t *t = ks_builder_build(b, errstr, errstr_size);
        ks_builder_destroy(b);
        return t;
}
