/* Session windows, as Kafka Streams' KStreamSessionWindowAggregate: a
 * record finds the sessions of its key within the inactivity gap, merges
 * them with itself into one session, removes the merged ones and stores the
 * new one. The node owns a session store whose changes go to its changelog
 * keyed by session-windowed key bytes (key, end, start), as Kafka's
 * SessionKeySchema. */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"
#include "windowed_serde_int.h"

struct ks_session_windowed_s {
        ks_grouped_t *grouped;
        int64_t gap;
        int64_t grace;
};

/* ---- helpers shared by the session, sliding and suppress operators ------ */

/* ---- the session-windowed key serde --------------------------------------
 */

static void sserde_free(void *p) {
        ks_serde_destroy(p);
}

static ks_err_t skey_ser(const void *obj,
                         ks_buf_t *out,
                         void *opaque,
                         char *errstr,
                         size_t errstr_size) {
        const ks_windowed_key_t *wk = obj;
        unsigned char be[16];
        ks_err_t err =
                ks_serde_serialize(opaque, wk->key, out, errstr, errstr_size);
        if (err)
                return err;
        ks__be64_put(be, wk->end);
        ks__be64_put(be + 8, wk->start);
        return ks_buf_append(out, be, sizeof(be));
}

static ks_err_t skey_de(ks_arena_t *arena,
                        const void *data,
                        size_t len,
                        const void **obj_out,
                        void *opaque,
                        char *errstr,
                        size_t errstr_size) {
        if (len < 16) {
                snprintf(errstr, errstr_size,
                         "session-windowed serde: %zu bytes, fewer than 16",
                         len);
                return KS_ERR_SERDE;
        }
        ks_windowed_key_t *wk = ks_arena_alloc(arena, sizeof(*wk));
        if (!wk)
                return KS_ERR_NOMEM;
        const unsigned char *p = data;
        wk->end                = ks__be64_get(p + len - 16);
        wk->start              = ks__be64_get(p + len - 8);
        *obj_out               = wk;
        return ks_serde_deserialize(opaque, arena, data, len - 16, &wk->key,
                                    errstr, errstr_size);
}

ks_serde_t *ks_serde_session_windowed(ks_serde_t *inner) {
        if (!inner)
                return NULL;
        ks_serde_t *s = ks_serde_new("session-windowed", skey_ser, skey_de,
                                     inner, sserde_free);
        if (!s)
                ks_serde_destroy(inner);
        return s;
}

bool ks__serde_is_session_windowed(const ks_serde_t *s) {
        return ks__serde_opaque_if(s, skey_ser) != NULL;
}

/* ---- the aggregation processor ----------------------------------------- */

typedef struct session_s {
        ks_serde_t *key_serde;  /* the group key: session store keys */
        ks_serde_t *agg_serde;  /* the aggregate */
        ks_serde_t *wkey_serde; /* session-windowed: changelog, table keys */
        ks_initializer_fn *init;
        ks_aggregator_fn *adder;
        ks_merger_fn *merger;
        void *opaque;
        int64_t gap, grace;
} session_t;

/* A session found in the store, copied out of the borrowed iterator. */
typedef struct found_s {
        int64_t start, end;
        const void *agg;
} found_t;

static void session_free(void *p) {
        session_t *s = p;
        ks_serde_destroy(s->key_serde);
        ks_serde_destroy(s->agg_serde);
        ks_serde_destroy(s->wkey_serde);
        free(s);
}

/* Writes session [start, end] of the current key (NULL agg: removes it),
 * logs the change and forwards it with the session end as timestamp, as
 * Kafka Streams does. @p created: the session was not in the store. */
static ks_err_t session_write(ks_ctx_t *ctx,
                              const session_t *s,
                              agg_state_t *st,
                              const void *key,
                              int64_t start,
                              int64_t end,
                              const void *agg,
                              bool created) {
        ks_windowed_key_t *wk = ks_arena_alloc(ks_ctx_arena(ctx), sizeof(*wk));
        if (!wk)
                return KS_ERR_NOMEM;
        *wk          = (ks_windowed_key_t){key, start, end};
        ks_bytes_t v = {NULL, 0};
        ks_err_t err = KS_OK;
        if (agg) {
                if ((err = ks__dsl_serialize(ctx, s->agg_serde, agg,
                                             &st->value)))
                        return err;
                v = (ks_bytes_t){st->value.data, st->value.len};
        }
        ks_bytes_t k         = {st->key.data, st->key.len};
        ks_store_emit_t emit = {wk,      agg,           end,
                                created, s->wkey_serde, s->agg_serde};
        return ks__ctx_session_put(ctx, k, start, end, v, &emit);
}

/* The sessions of the current key (in st->key) that a record at ts may
 * merge with, deserialized into the arena. */
static ks_err_t find_sessions(ks_ctx_t *ctx,
                              const session_t *s,
                              agg_state_t *st,
                              int64_t ts,
                              found_t **out,
                              size_t *cnt) {
        ks_session_store_t *store = ks__ctx_session_store(ctx);
        ks_arena_t *arena         = ks_ctx_arena(ctx);
        ks_store_iter_t *it;
        ks_bytes_t k = {st->key.data, st->key.len}, ik, iv;
        ks_error_t *e =
                ks_session_store_find(store, k, ts - s->gap, ts + s->gap, &it);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        size_t n = 0, cap = 0;
        found_t *found = NULL;
        int64_t start, end;
        ks_err_t err = KS_OK;
        while (!err && ks_store_iter_next_session(it, &ik, &start, &end, &iv)) {
                if (n == cap) {
                        cap         = cap ? cap * 2 : 4;
                        found_t *nf = ks_arena_alloc(arena, cap * sizeof(*nf));
                        if (!nf) {
                                err = KS_ERR_NOMEM;
                                break;
                        }
                        if (n)
                                memcpy(nf, found, n * sizeof(*nf));
                        found = nf;
                }
                found[n].start = start;
                found[n].end   = end;
                err            = ks__dsl_stored(ctx, s->agg_serde, iv, true,
                                                &found[n].agg);
                n++;
        }
        const ks_error_t *ie = ks_store_iter_error(it);
        if (!err && ie)
                err = ks_ctx_fail(ctx, "%s", ks_error_message(ie));
        ks_store_iter_destroy(it);
        *out = found;
        *cnt = n;
        return err;
}

static ks_err_t session_process(ks_ctx_t *ctx,
                                const void *key,
                                const void *value,
                                void *state,
                                void *opaque) {
        const session_t *s = opaque;
        agg_state_t *st    = state;
        ks_arena_t *arena  = ks_ctx_arena(ctx);
        /* As the other aggregations: null keys and values are skipped. */
        if (!key || !value) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        int64_t ts = ks_ctx_timestamp(ctx);
        /* Kafka Streams (3.x): a session is closed once stream time passes
         * its end + gap + grace, since no record can extend it after. */
        int64_t close_time = ks__dsl_stream_time(ctx, ts) - s->grace - s->gap;
        ks_err_t err = ks__dsl_serialize(ctx, s->key_serde, key, &st->key);
        if (err)
                return err;
        found_t *found = NULL;
        size_t n       = 0;
        if ((err = find_sessions(ctx, s, st, ts, &found, &n)))
                return err;
        const void *agg = s->init(arena, s->opaque);
        int64_t start = ts, end = ts;
        for (size_t i = 0; i < n; i++) {
                agg = s->merger(arena, key, agg, found[i].agg, s->opaque);
                if (found[i].start < start)
                        start = found[i].start;
                if (found[i].end > end)
                        end = found[i].end;
        }
        if (end < close_time) {
                ks__ctx_count_late(ctx);
                return KS_OK;
        }
        /* Merged sessions go, each with a tombstone downstream (Kafka's
         * Change(null, old)). A session whose window is the merged one is
         * overwritten by the put below instead: Kafka's record cache
         * collapses its remove and put into that one update too. */
        bool created = true;
        for (size_t i = 0; i < n; i++) {
                if (found[i].start == start && found[i].end == end) {
                        created = false;
                        continue;
                }
                if ((err = session_write(ctx, s, st, key, found[i].start,
                                         found[i].end, NULL, false)))
                        return err;
        }
        agg = s->adder(arena, key, value, agg, s->opaque);
        return session_write(ctx, s, st, key, start, end, agg, created);
}

/* ---- the DSL ------------------------------------------------------------ */

ks_session_windowed_t *ks_grouped_session_windowed_by(ks_grouped_t *g,
                                                      int64_t gap_ms,
                                                      int64_t grace_ms) {
        if (!g)
                return NULL;
        if (gap_ms <= 0 || grace_ms < 0) {
                ks__builder_fail(g->stream->b,
                                 "session_windowed_by: invalid windows (gap "
                                 "%lld, grace %lld)",
                                 (long long)gap_ms, (long long)grace_ms);
                return NULL;
        }
        ks_session_windowed_t *w = calloc(1, sizeof(*w));
        if (w)
                *w = (ks_session_windowed_t){g, gap_ms, grace_ms};
        return ks__builder_own(g->stream->b, w, free);
}

static ks_table_t *session_aggregate(ks_session_windowed_t *w,
                                     const char *store,
                                     ks_initializer_fn *init,
                                     ks_aggregator_fn *adder,
                                     ks_merger_fn *merger,
                                     void *opaque,
                                     ks_serde_t *agg_serde) {
        ks_grouped_t *g = w->grouped;
        ks_builder_t *b = g->stream->b;
        char *store_name;
        session_t *s = ks__agg_begin(g, store, "SESSION-AGGREGATE-STATE-STORE",
                                     agg_serde, sizeof(*s), &store_name);
        if (!s)
                return NULL;
        ks_stream_t *in = ks__grouped_input(g, store_name);
        s->key_serde    = ks_serde_ref(g->key_serde);
        s->agg_serde    = agg_serde;
        s->wkey_serde   = ks_serde_session_windowed(ks_serde_ref(g->key_serde));
        s->init         = init;
        s->adder        = adder;
        s->merger       = merger;
        s->opaque       = opaque;
        s->gap          = w->gap;
        s->grace        = w->grace;
        ks_serde_t *wkey       = s->wkey_serde;
        ks_processor_def_t def = {.init        = ks__agg_state_init,
                                  .process     = session_process,
                                  .close       = ks__agg_state_close,
                                  .opaque      = s,
                                  .opaque_free = session_free};
        ks_stream_t *out       = ks__stream_add_processor(
                      in, NULL, "SESSION-WINDOW-AGGREGATE", &def, NULL, NULL);
        if (!out || out->node < 0 || !wkey) {
                if (!wkey)
                        ks__builder_fail(b, "%s: out of memory", store_name);
                free(store_name);
                return NULL;
        }
        /* Kafka Streams' default retention: gap + grace. */
        if (!ks__node_set_store(b, out->node, store_name, KS_STORE_SESSION,
                                w->gap + w->grace))
                return NULL;
        ks_table_t *t = ks__table_new(b, out->node, wkey, agg_serde);
        if (t) {
                t->windowed       = true;
                t->close_after_ms = w->grace + w->gap;
        }
        return t;
}

static const void *count_merge(ks_arena_t *arena,
                               const void *key,
                               const void *agg1,
                               const void *agg2,
                               void *opaque) {
        (void)key, (void)opaque;
        return ks_arena_int64(arena,
                              *(const int64_t *)agg1 + *(const int64_t *)agg2);
}

ks_table_t *ks_session_windowed_count(ks_session_windowed_t *w,
                                      const char *store) {
        if (!w)
                return NULL;
        return session_aggregate(w, store, ks__count_init, ks__count_add,
                                 count_merge, NULL, ks_serde_int64());
}

ks_table_t *ks_session_windowed_aggregate(ks_session_windowed_t *w,
                                          const char *store,
                                          ks_initializer_fn *init,
                                          ks_aggregator_fn *adder,
                                          ks_merger_fn *merger,
                                          void *opaque,
                                          ks_serde_t *aggregate_serde) {
        if (!w || !init || !adder || !merger) {
                if (w)
                        ks__builder_fail(w->grouped->stream->b,
                                         "session aggregate: an initializer, "
                                         "an adder and a merger are required");
                ks_serde_destroy(aggregate_serde);
                return NULL;
        }
        return session_aggregate(w, store, init, adder, merger, opaque,
                                 aggregate_serde);
}
