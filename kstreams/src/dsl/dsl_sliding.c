/* Sliding windows, as Kafka Streams' KStreamSlidingWindowAggregate
 * (KIP-450), with its reverse-iterator algorithm: windows are
 * [start, start + difference], both ends inclusive, and exist only where
 * records define them: each record's left window [ts - difference, ts] and,
 * when records follow within the difference, its right window
 * [ts + 1, ts + 1 + difference]. Records earlier than the difference share
 * the window [0, difference].
 *
 * The node owns a window store. A stored value is Kafka's
 * ValueAndTimestamp layout: the window's largest record timestamp (8 bytes,
 * big-endian), then the aggregate's bytes; the algorithm needs that
 * timestamp to know which records a window holds. */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"

struct ks_sliding_windowed_s {
        ks_grouped_t *grouped;
        int64_t diff;
        int64_t grace;
};

typedef struct sliding_s {
        ks_serde_t *key_serde;  /* the group key: window store keys */
        ks_serde_t *agg_serde;  /* the aggregate */
        ks_serde_t *wkey_serde; /* windowed (key, start): changelog keys */
        ks_serde_t *raw_serde;  /* reads a stored value as its aggregate */
        ks_initializer_fn *init;
        ks_aggregator_fn *adder;
        void *opaque;
        int64_t diff, grace;
} sliding_t;

/* A window read from the store: its start, largest record timestamp, the
 * aggregate, and the stored bytes (copied into the arena). */
typedef struct win_s {
        int64_t start;
        int64_t max_ts;
        const void *agg;
        ks_bytes_t raw;
} win_t;

/* One record's processing: Kafka's local variables. */
typedef struct rec_s {
        const void *key, *value;
        int64_t ts, close_time;
        int64_t *starts; /* window starts seen (Kafka's windowStartTimes) */
        size_t start_cnt;
} rec_t;

static void sliding_free(void *p) {
        sliding_t *s = p;
        ks_serde_destroy(s->key_serde);
        ks_serde_destroy(s->agg_serde);
        ks_serde_destroy(s->wkey_serde);
        ks_serde_destroy(s->raw_serde);
        free(s);
}

/* Stored values are the window's largest timestamp (8 bytes, big-endian)
 * then the aggregate: what the record cache reads back when it flushes.
 * Only ever deserializes. */
static ks_err_t raw_ser(const void *obj,
                        ks_buf_t *out,
                        void *opaque,
                        char *errstr,
                        size_t errstr_size) {
        (void)obj, (void)out, (void)opaque;
        snprintf(errstr, errstr_size,
                 "stored sliding windows are not "
                 "serialized this way");
        return KS_ERR_SERDE;
}

static ks_err_t raw_de(ks_arena_t *arena,
                       const void *data,
                       size_t len,
                       const void **obj_out,
                       void *opaque,
                       char *errstr,
                       size_t errstr_size) {
        if (len < 8) {
                snprintf(errstr, errstr_size,
                         "a stored sliding window of %zu bytes", len);
                return KS_ERR_SERDE;
        }
        return ks_serde_deserialize(opaque, arena, (const char *)data + 8,
                                    len - 8, obj_out, errstr, errstr_size);
}

static void raw_free(void *opaque) {
        ks_serde_destroy(opaque);
}

static bool seen_start(const rec_t *r, int64_t start) {
        for (size_t i = 0; i < r->start_cnt; i++)
                if (r->starts[i] == start)
                        return true;
        return false;
}

/* Stores window @p start with @p raw (max timestamp + aggregate), logs it
 * and forwards (key, window) -> @p agg with timestamp @p ts. */
static ks_err_t put_forward(ks_ctx_t *ctx,
                            const sliding_t *s,
                            agg_state_t *st,
                            const rec_t *r,
                            int64_t start,
                            ks_bytes_t raw,
                            const void *agg,
                            int64_t ts) {
        ks_windowed_key_t *wk = ks_arena_alloc(ks_ctx_arena(ctx), sizeof(*wk));
        if (!wk)
                return KS_ERR_NOMEM;
        *wk          = (ks_windowed_key_t){r->key, start, start + s->diff};
        ks_bytes_t k = {st->key.data, st->key.len};
        /* Sliding windows are never deleted: created does not matter. */
        ks_store_emit_t emit = {wk,    agg,           ts,
                                false, s->wkey_serde, s->raw_serde};
        return ks__ctx_window_put(ctx, k, start, raw, &emit);
}

/* Kafka's updateWindowAndForward: adds the record to window @p start whose
 * current aggregate is @p agg (max timestamp @p max_ts), unless the window
 * has closed (then the record is counted late for it). */
static ks_err_t update_window(ks_ctx_t *ctx,
                              const sliding_t *s,
                              agg_state_t *st,
                              const rec_t *r,
                              int64_t start,
                              const void *agg,
                              int64_t max_ts) {
        if (start + s->diff < r->close_time) {
                ks__ctx_count_late(ctx);
                return KS_OK;
        }
        ks_arena_t *arena  = ks_ctx_arena(ctx);
        const void *newagg = s->adder(arena, r->key, r->value, agg, s->opaque);
        int64_t ts         = max_ts > r->ts ? max_ts : r->ts;
        ks_buf_t *v        = &st->value;
        unsigned char be[8];
        ks__be64_put(be, ts);
        ks_err_t err = ks__dsl_serialize(ctx, s->agg_serde, newagg, &st->agg);
        if (err)
                return err;
        ks_buf_clear(v);
        if ((err = ks_buf_append(v, be, 8)) ||
            (err = ks_buf_append(v, st->agg.data, st->agg.len)))
                return err;
        return put_forward(ctx, s, st, r, start, (ks_bytes_t){v->data, v->len},
                           newagg, ts);
}

static ks_err_t update_found(ks_ctx_t *ctx,
                             const sliding_t *s,
                             agg_state_t *st,
                             const rec_t *r,
                             const win_t *w) {
        return update_window(ctx, s, st, r, w->start, w->agg, w->max_ts);
}

/* A window created for the record: starts from the initializer. */
static ks_err_t new_window(ks_ctx_t *ctx,
                           const sliding_t *s,
                           agg_state_t *st,
                           const rec_t *r,
                           int64_t start,
                           const void *agg) {
        if (!agg)
                agg = s->init(ks_ctx_arena(ctx), s->opaque);
        return update_window(ctx, s, st, r, start, agg, r->ts);
}

/* Kafka's createCurrentRecordRightWindow: the record's right window holds
 * exactly what @p right holds (records after ts); it is stored as is, with
 * no closed-window check, as Kafka does. */
static ks_err_t right_window(ks_ctx_t *ctx,
                             const sliding_t *s,
                             agg_state_t *st,
                             const rec_t *r,
                             const win_t *right) {
        return put_forward(ctx, s, st, r, r->ts + 1, right->raw, right->agg,
                           right->max_ts);
}

/* The windows of the key in [from, to], by start, copied into the arena. */
static ks_err_t fetch_windows(ks_ctx_t *ctx,
                              const sliding_t *s,
                              agg_state_t *st,
                              int64_t from,
                              int64_t to,
                              win_t **out,
                              size_t *cnt) {
        ks_window_store_t *store = ks__ctx_window_store(ctx);
        ks_arena_t *arena        = ks_ctx_arena(ctx);
        ks_store_iter_t *it;
        ks_bytes_t k  = {st->key.data, st->key.len}, ik, iv;
        ks_error_t *e = ks_window_store_fetch(store, k, from, to, &it);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        size_t n = 0, cap = 0;
        win_t *wins  = NULL;
        ks_err_t err = KS_OK;
        int64_t start;
        while (!err && ks_store_iter_next_window(it, &ik, &start, &iv)) {
                if (iv.len < 8) {
                        err = ks_ctx_fail(ctx,
                                          "sliding window store: a value of "
                                          "%zu bytes",
                                          iv.len);
                        break;
                }
                if (n == cap) {
                        cap       = cap ? cap * 2 : 8;
                        win_t *nw = ks_arena_alloc(arena, cap * sizeof(*nw));
                        if (!nw) {
                                err = KS_ERR_NOMEM;
                                break;
                        }
                        if (n)
                                memcpy(nw, wins, n * sizeof(*nw));
                        wins = nw;
                }
                win_t *w    = &wins[n++];
                w->start    = start;
                w->max_ts   = ks__be64_get(iv.data);
                w->raw.data = ks_arena_memdup(arena, iv.data, iv.len);
                w->raw.len  = iv.len;
                if (!w->raw.data) {
                        err = KS_ERR_NOMEM;
                        break;
                }
                err = ks__dsl_stored(
                        ctx, s->agg_serde,
                        (ks_bytes_t){(const char *)w->raw.data + 8, iv.len - 8},
                        true, &w->agg);
        }
        const ks_error_t *ie = ks_store_iter_error(it);
        if (!err && ie)
                err = ks_ctx_fail(ctx, "%s", ks_error_message(ie));
        ks_store_iter_destroy(it);
        *out = wins;
        *cnt = n;
        return err;
}

static ks_err_t note_starts(ks_ctx_t *ctx, rec_t *r, size_t n) {
        r->starts    = ks_arena_alloc(ks_ctx_arena(ctx),
                                      (n ? n : 1) * sizeof(*r->starts));
        r->start_cnt = 0;
        return r->starts ? KS_OK : KS_ERR_NOMEM;
}

/* Kafka's processEarly: 0 <= ts < difference. Every such record goes into
 * the window [0, difference] (no negative starts). */
static ks_err_t process_early(ks_ctx_t *ctx,
                              const sliding_t *s,
                              agg_state_t *st,
                              rec_t *r) {
        win_t *wins;
        size_t n;
        ks_err_t err = fetch_windows(ctx, s, st, 0, r->ts + 1, &wins, &n);
        if (err || (err = note_starts(ctx, r, n)))
                return err;
        const win_t *combined = NULL, *right = NULL;
        bool right_created = false, has_prev = false;
        int64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
                const win_t *w            = &wins[i];
                r->starts[r->start_cnt++] = w->start;
                if (w->start == 0) {
                        combined = w;
                        /* A later max timestamp already made the previous
                         * record's right window. */
                        if (w->max_ts < r->ts) {
                                prev     = w->max_ts;
                                has_prev = true;
                        }
                } else if (w->start <= r->ts) {
                        right = w;
                        if ((err = update_found(ctx, s, st, r, w)))
                                return err;
                } else if (w->start == r->ts + 1) {
                        right_created = true;
                } else {
                        return ks_ctx_fail(ctx,
                                           "sliding windows: unexpected window "
                                           "at %lld for a record at %lld",
                                           (long long)w->start,
                                           (long long)r->ts);
                }
        }
        /* The combined window holds only records after ts when none before
         * made a right window: its aggregate is the right window's. */
        if (!right && combined && combined->max_ts > r->ts)
                right = combined;
        if (!right_created && right && right->max_ts > r->ts &&
            (err = right_window(ctx, s, st, r, right)))
                return err;
        if (has_prev && !seen_start(r, prev + 1) &&
            (err = new_window(ctx, s, st, r, prev + 1, NULL)))
                return err;
        if (!combined)
                return new_window(ctx, s, st, r, 0, NULL);
        return update_found(ctx, s, st, r, combined);
}

/* Kafka's processReverse: walks the windows from the latest start back. */
static ks_err_t process_reverse(ks_ctx_t *ctx,
                                const sliding_t *s,
                                agg_state_t *st,
                                rec_t *r) {
        int64_t from = r->ts - 2 * s->diff;
        win_t *wins;
        size_t n;
        ks_err_t err = fetch_windows(ctx, s, st, from > 0 ? from : 0, r->ts + 1,
                                     &wins, &n);
        if (err || (err = note_starts(ctx, r, n)))
                return err;
        const win_t *left = NULL, *right = NULL;
        bool left_created = false, right_created = false, has_prev = false;
        int64_t prev = 0;
        for (size_t i = n; i-- > 0;) {
                const win_t *w            = &wins[i];
                int64_t end               = w->start + s->diff;
                r->starts[r->start_cnt++] = w->start;
                if (w->start == r->ts + 1) {
                        right_created = true;
                } else if (end > r->ts) {
                        if (!right)
                                right = w;
                        if ((err = update_found(ctx, s, st, r, w)))
                                return err;
                } else if (end == r->ts) {
                        left_created = true;
                        if ((err = update_found(ctx, s, st, r, w)))
                                return err;
                        if (w->max_ts >= r->ts)
                                return KS_OK; /* every window exists */
                        prev     = w->max_ts;
                        has_prev = true;
                } else {
                        left     = w;
                        prev     = w->max_ts;
                        has_prev = true;
                        break;
                }
        }
        /* Kafka's createWindows. The previous record's right window, if the
         * record falls in it. */
        if (has_prev && !seen_start(r, prev + 1) &&
            prev + 1 + s->diff >= r->ts &&
            (err = new_window(ctx, s, st, r, prev + 1, NULL)))
                return err;
        if (!left_created) {
                /* The left window holds the previous record's left window's
                 * records when that record is within the difference. */
                bool left_not_empty = has_prev && r->ts - s->diff <= prev;
                if ((err = new_window(
                             ctx, s, st, r, r->ts - s->diff,
                             left_not_empty && left ? left->agg : NULL)))
                        return err;
        }
        if (!right_created && right && right->max_ts > r->ts)
                return right_window(ctx, s, st, r, right);
        return KS_OK;
}

static ks_err_t sliding_process(ks_ctx_t *ctx,
                                const void *key,
                                const void *value,
                                void *state,
                                void *opaque) {
        const sliding_t *s = opaque;
        agg_state_t *st    = state;
        if (!key || !value) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        rec_t r = {.key = key, .value = value, .ts = ks_ctx_timestamp(ctx)};
        r.close_time = ks__dsl_stream_time(ctx, r.ts) - s->grace;
        /* Even its right window would be closed. */
        if (r.ts + 1 + s->diff <= r.close_time) {
                ks__ctx_count_late(ctx);
                return KS_OK;
        }
        ks_err_t err = ks__dsl_serialize(ctx, s->key_serde, key, &st->key);
        if (err)
                return err;
        return r.ts < s->diff ? process_early(ctx, s, st, &r)
                              : process_reverse(ctx, s, st, &r);
}

/* ---- the DSL ------------------------------------------------------------ */

ks_sliding_windowed_t *ks_grouped_sliding_windowed_by(ks_grouped_t *g,
                                                      int64_t diff_ms,
                                                      int64_t grace_ms) {
        if (!g)
                return NULL;
        if (diff_ms <= 0 || grace_ms < 0) {
                ks__builder_fail(g->stream->b,
                                 "sliding_windowed_by: invalid windows "
                                 "(time difference %lld, grace %lld)",
                                 (long long)diff_ms, (long long)grace_ms);
                return NULL;
        }
        ks_sliding_windowed_t *w = calloc(1, sizeof(*w));
        if (w)
                *w = (ks_sliding_windowed_t){g, diff_ms, grace_ms};
        return ks__builder_own(g->stream->b, w, free);
}

static ks_table_t *sliding_aggregate(ks_sliding_windowed_t *w,
                                     const char *store,
                                     ks_initializer_fn *init,
                                     ks_aggregator_fn *adder,
                                     void *opaque,
                                     ks_serde_t *agg_serde) {
        ks_grouped_t *g = w->grouped;
        ks_builder_t *b = g->stream->b;
        char *store_name;
        sliding_t *s = ks__agg_begin(g, store, "SLIDING-AGGREGATE-STATE-STORE",
                                     agg_serde, sizeof(*s), &store_name);
        if (!s)
                return NULL;
        ks_stream_t *in = ks__grouped_input(g, store_name);
        s->key_serde    = ks_serde_ref(g->key_serde);
        s->agg_serde    = agg_serde;
        s->wkey_serde = ks_serde_windowed(ks_serde_ref(g->key_serde), w->diff);
        s->raw_serde  = ks_serde_new("sliding-window-value", raw_ser, raw_de,
                                     ks_serde_ref(agg_serde), raw_free);
        s->init       = init;
        s->adder      = adder;
        s->opaque     = opaque;
        s->diff       = w->diff;
        s->grace      = w->grace;
        ks_serde_t *wkey       = s->wkey_serde;
        ks_processor_def_t def = {.init        = ks__agg_state_init,
                                  .process     = sliding_process,
                                  .close       = ks__agg_state_close,
                                  .opaque      = s,
                                  .opaque_free = sliding_free};
        ks_stream_t *out       = ks__stream_add_processor(
                      in, NULL, "SLIDING-WINDOW-AGGREGATE", &def, NULL, NULL);
        if (!out || out->node < 0 || !wkey) {
                if (!wkey)
                        ks__builder_fail(b, "%s: out of memory", store_name);
                free(store_name);
                return NULL;
        }
        /* Kafka Streams' default for sliding windows: keep 2 * difference
         * + grace. */
        if (!ks__node_set_store(b, out->node, store_name, KS_STORE_WINDOW,
                                2 * w->diff + w->grace))
                return NULL;
        ks_table_t *t = ks__table_new(b, out->node, wkey, agg_serde);
        if (t) {
                t->windowed       = true;
                t->close_after_ms = w->grace;
        }
        return t;
}

ks_table_t *ks_sliding_windowed_count(ks_sliding_windowed_t *w,
                                      const char *store) {
        if (!w)
                return NULL;
        return sliding_aggregate(w, store, ks__count_init, ks__count_add, NULL,
                                 ks_serde_int64());
}

ks_table_t *ks_sliding_windowed_aggregate(ks_sliding_windowed_t *w,
                                          const char *store,
                                          ks_initializer_fn *init,
                                          ks_aggregator_fn *adder,
                                          void *opaque,
                                          ks_serde_t *aggregate_serde) {
        if (!w || !init || !adder) {
                if (w)
                        ks__builder_fail(w->grouped->stream->b,
                                         "sliding aggregate: an initializer "
                                         "and an adder are required");
                ks_serde_destroy(aggregate_serde);
                return NULL;
        }
        return sliding_aggregate(w, store, init, adder, opaque,
                                 aggregate_serde);
}
