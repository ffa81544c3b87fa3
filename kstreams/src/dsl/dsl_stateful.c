/* The stateful DSL: groupings, aggregations over key-value and window
 * stores, windowed keys, and tables as streams. Each aggregation is a
 * processor node owning one store whose changes go to its changelog. */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"
#include "windowed_serde_int.h"

ks_windows_t ks_tumbling_window(int64_t size_ms, int64_t grace_ms) {
        return (ks_windows_t){size_ms, size_ms, grace_ms};
}

ks_windows_t ks_hopping_window(int64_t size_ms,
                               int64_t advance_ms,
                               int64_t grace_ms) {
        return (ks_windows_t){size_ms, advance_ms, grace_ms};
}

/* ---- the windowed-key serde ------------------------------------------------
 */

typedef struct wserde_s {
        ks_serde_t *inner;
        int64_t size;
} wserde_t;

static void wserde_free(void *p) {
        wserde_t *w = p;
        ks_serde_destroy(w->inner);
        free(w);
}

static ks_err_t wkey_ser(const void *obj,
                         ks_buf_t *out,
                         void *opaque,
                         char *errstr,
                         size_t errstr_size) {
        const ks_windowed_key_t *wk = obj;
        wserde_t *w                 = opaque;
        ks_err_t err =
                ks_serde_serialize(w->inner, wk->key, out, errstr, errstr_size);
        unsigned char be[8];
        ks__be64_put(be, wk->start);
        return err ? err : ks_buf_append(out, be, 8);
}

static ks_err_t wkey_de(ks_arena_t *arena,
                        const void *data,
                        size_t len,
                        const void **obj_out,
                        void *opaque,
                        char *errstr,
                        size_t errstr_size) {
        wserde_t *w = opaque;
        if (len < 8) {
                snprintf(errstr, errstr_size,
                         "windowed serde: %zu bytes, fewer than 8", len);
                return KS_ERR_SERDE;
        }
        ks_windowed_key_t *wk = ks_arena_alloc(arena, sizeof(*wk));
        if (!wk)
                return KS_ERR_NOMEM;
        ks_err_t err = ks_serde_deserialize(w->inner, arena, data, len - 8,
                                            &wk->key, errstr, errstr_size);
        wk->start    = ks__be64_get((const char *)data + len - 8);
        /* The bytes are anyone's: a start near INT64_MAX must not
         * overflow (found by tests/fuzz/fuzz_windowed_key.c). */
        wk->end  = wk->start > INT64_MAX - w->size ? INT64_MAX
                                                   : wk->start + w->size;
        *obj_out = wk;
        return err;
}

ks_serde_t *ks_serde_windowed(ks_serde_t *inner, int64_t window_size_ms) {
        wserde_t *w = calloc(1, sizeof(*w));
        if (!w) {
                ks_serde_destroy(inner);
                return NULL;
        }
        w->inner = inner;
        w->size  = window_size_ms;
        ks_serde_t *s =
                ks_serde_new("windowed", wkey_ser, wkey_de, w, wserde_free);
        if (!s)
                wserde_free(w);
        return s;
}

ks_window_layout_t ks__serde_window_layout(const ks_serde_t *s,
                                           int64_t *size_ms) {
        const wserde_t *w = ks__serde_opaque_if(s, wkey_ser);
        if (w) {
                *size_ms = w->size;
                return KS_WINDOW_LAYOUT_TIME;
        }
        return ks__serde_is_session_windowed(s) ? KS_WINDOW_LAYOUT_SESSION
                                                : KS_WINDOW_LAYOUT_NONE;
}

/* ---- grouping
 * ------------------------------------------------------------------ */

static void grouped_free(void *p) {
        ks_grouped_t *g = p;
        ks_serde_destroy(g->key_serde);
        ks_serde_destroy(g->value_serde);
        free(g->repartition_name);
        free(g);
}

static ks_grouped_t *grouped_new(ks_stream_t *s,
                                 ks_serde_t *key_serde,
                                 ks_serde_t *value_serde,
                                 bool repartition,
                                 const char *name) {
        ks_grouped_t *g = calloc(1, sizeof(*g));
        if (g) {
                g->stream = s;
                g->key_serde =
                        key_serde ? key_serde : ks_serde_ref(s->key_serde);
                g->value_serde      = value_serde ? value_serde
                                                  : ks_serde_ref(s->value_serde);
                g->repartition      = repartition;
                g->repartition_name = name ? strdup(name) : NULL;
        } else {
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
        }
        return ks__builder_own(s->b, g, grouped_free);
}

ks_grouped_t *ks_stream_group_by_key(ks_stream_t *s,
                                     ks_serde_t *key_serde,
                                     ks_serde_t *value_serde) {
        if (!s || !ks__stream_ok(s, "group_by_key")) {
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return NULL;
        }
        return grouped_new(s, key_serde, value_serde, s->key_changed, NULL);
}

ks_grouped_t *ks_stream_group_by(ks_stream_t *s,
                                 const char *name,
                                 ks_mapper_fn *key_fn,
                                 void *opaque,
                                 ks_serde_t *key_serde,
                                 ks_serde_t *value_serde) {
        if (!s || !ks__stream_ok(s, "group_by")) {
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return NULL;
        }
        ks_serde_t *vs =
                value_serde ? value_serde : ks_serde_ref(s->value_serde);
        ks_stream_t *keyed = ks_stream_select_key(s, name, key_fn, opaque);
        return grouped_new(keyed, key_serde, vs, true, name);
}

/* ---- aggregation processors ------------------------------------------------
 */

static void agg_free(void *p) {
        agg_t *a = p;
        ks_serde_destroy(a->key_serde);
        ks_serde_destroy(a->agg_serde);
        ks_serde_destroy(a->wkey_serde);
        free(a);
}

ks_err_t ks__agg_state_init(ks_ctx_t *ctx, void **state, void *opaque) {
        (void)ctx, (void)opaque;
        agg_state_t *st = calloc(1, sizeof(*st));
        if (!st)
                return KS_ERR_NOMEM;
        *state = st;
        return KS_OK;
}

void ks__agg_state_close(ks_ctx_t *ctx, void *state, void *opaque) {
        agg_state_t *st = state;
        (void)ctx, (void)opaque;
        ks_buf_free(&st->key);
        ks_buf_free(&st->value);
        ks_buf_free(&st->agg);
        free(st);
}

ks_err_t ks__dsl_stored(ks_ctx_t *ctx,
                        ks_serde_t *serde,
                        ks_bytes_t stored,
                        bool found,
                        const void **obj) {
        char errstr[256];
        *obj = NULL;
        if (!found)
                return KS_OK;
        void *copy =
                ks_arena_memdup(ks_ctx_arena(ctx), stored.data, stored.len);
        if (!copy)
                return KS_ERR_NOMEM;
        ks_err_t err =
                ks_serde_deserialize(serde, ks_ctx_arena(ctx), copy, stored.len,
                                     obj, errstr, sizeof(errstr));
        return err ? ks_ctx_fail(ctx, "stored value: %s", errstr) : KS_OK;
}

static ks_err_t current(ks_ctx_t *ctx,
                        const agg_t *a,
                        ks_bytes_t stored,
                        bool found,
                        const void **cur) {
        return ks__dsl_stored(ctx, a->agg_serde, stored, found, cur);
}

static const void *combine(ks_ctx_t *ctx,
                           const agg_t *a,
                           const void *key,
                           const void *value,
                           const void *cur) {
        ks_arena_t *arena = ks_ctx_arena(ctx);
        if (a->reducer)
                return cur ? a->reducer(arena, cur, value, a->opaque) : value;
        return a->adder(arena, key, value,
                        cur ? cur : a->init(arena, a->opaque), a->opaque);
}

ks_err_t ks__dsl_serialize(ks_ctx_t *ctx,
                           ks_serde_t *serde,
                           const void *obj,
                           ks_buf_t *buf) {
        char errstr[256];
        ks_buf_clear(buf);
        ks_err_t err =
                ks_serde_serialize(serde, obj, buf, errstr, sizeof(errstr));
        if (err)
                return ks_ctx_fail(ctx, "%s: %s", ks_serde_name(serde), errstr);
        if (!buf->data) /* an empty value is still a value */
                return ks_buf_reserve(buf, 1);
        return KS_OK;
}

static ks_err_t kv_aggregate(ks_ctx_t *ctx,
                             const agg_t *a,
                             agg_state_t *st,
                             const void *key,
                             const void *value) {
        ks_kv_store_t *store = ks__ctx_kv_store(ctx);
        ks_err_t err = ks__dsl_serialize(ctx, a->key_serde, key, &st->key);
        if (err)
                return err;
        ks_bytes_t k = {st->key.data, st->key.len}, stored;
        bool found;
        ks_error_t *e = ks_kv_store_get(store, k, &stored, &found);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        const void *cur;
        if ((err = current(ctx, a, stored, found, &cur)))
                return err;
        const void *agg = combine(ctx, a, key, value, cur);
        if ((err = ks__dsl_serialize(ctx, a->agg_serde, agg, &st->value)))
                return err;
        ks_bytes_t v         = {st->value.data, st->value.len};
        ks_store_emit_t emit = {key,    agg,          ks_ctx_timestamp(ctx),
                                !found, a->key_serde, a->agg_serde};
        return ks__ctx_kv_put(ctx, k, v, &emit);
}

static ks_err_t window_aggregate(ks_ctx_t *ctx,
                                 const agg_t *a,
                                 agg_state_t *st,
                                 const void *key,
                                 const void *value) {
        ks_window_store_t *store = ks__ctx_window_store(ctx);
        const ks_windows_t *w    = &a->windows;
        int64_t ts               = ks_ctx_timestamp(ctx);
        int64_t close_time       = ks__dsl_stream_time(ctx, ts) - w->grace_ms;
        /* The windows containing ts, as Kafka Streams' TimeWindows. */
        int64_t start = ts - w->size_ms + w->advance_ms;
        start         = (start > 0 ? start : 0) / w->advance_ms * w->advance_ms;
        for (; start <= ts; start += w->advance_ms) {
                int64_t end = start + w->size_ms;
                if (end <= close_time) {
                        ks__ctx_count_late(ctx);
                        continue;
                }
                ks_windowed_key_t *wk =
                        ks_arena_alloc(ks_ctx_arena(ctx), sizeof(*wk));
                if (!wk)
                        return KS_ERR_NOMEM;
                *wk = (ks_windowed_key_t){key, start, end};
                ks_err_t err =
                        ks__dsl_serialize(ctx, a->key_serde, key, &st->key);
                if (err)
                        return err;
                ks_bytes_t k = {st->key.data, st->key.len}, stored;
                bool found;
                ks_error_t *e =
                        ks_window_store_get(store, k, start, &stored, &found);
                if (e)
                        return ks__ctx_store_failed(ctx, e);
                const void *cur;
                if ((err = current(ctx, a, stored, found, &cur)))
                        return err;
                const void *agg = combine(ctx, a, key, value, cur);
                if ((err = ks__dsl_serialize(ctx, a->agg_serde, agg,
                                             &st->value)))
                        return err;
                ks_bytes_t v         = {st->value.data, st->value.len};
                ks_store_emit_t emit = {wk,     agg,           ts,
                                        !found, a->wkey_serde, a->agg_serde};
                if ((err = ks__ctx_window_put(ctx, k, start, v, &emit)))
                        return err;
        }
        return KS_OK;
}

static ks_err_t agg_process(ks_ctx_t *ctx,
                            const void *key,
                            const void *value,
                            void *state,
                            void *opaque) {
        const agg_t *a = opaque;
        /* As Kafka Streams: a null key or value cannot be aggregated; the
         * record is skipped and counted. */
        if (!key || !value) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        return a->windowed ? window_aggregate(ctx, a, state, key, value)
                           : kv_aggregate(ctx, a, state, key, value);
}

ks_table_t *ks__table_new(ks_builder_t *b,
                          int node,
                          ks_serde_t *ks,
                          ks_serde_t *vs) {
        ks_table_t *t = calloc(1, sizeof(*t));
        if (t)
                *t = (ks_table_t){.b           = b,
                                  .node        = node,
                                  .key_serde   = ks,
                                  .value_serde = vs};
        return ks__builder_own(b, t, free);
}

/* Adds the aggregation node, repartitioning first when the key changed. */
ks_stream_t *ks__grouped_input(ks_grouped_t *g, const char *store) {
        if (!g->repartition)
                return g->stream;
        /* Kafka Streams names the topic after the grouping, or else after
         * the store. */
        return ks_stream_repartition(
                g->stream, g->repartition_name ? g->repartition_name : store,
                ks_serde_ref(g->key_serde), ks_serde_ref(g->value_serde), 0);
}

void *ks__agg_begin(ks_grouped_t *g,
                    const char *store,
                    const char *op,
                    ks_serde_t *agg_serde,
                    size_t conf_size,
                    char **store_name) {
        ks_builder_t *b = g->stream->b;
        char *name      = ks__builder_name(b, store, op);
        void *conf      = calloc(1, conf_size);
        if (!name || !conf || !agg_serde || !g->key_serde) {
                ks__builder_fail(b, "%s: %s", name ? name : op,
                                 !g->key_serde || !agg_serde
                                         ? "the key and aggregate serdes must "
                                           "be known: pass them"
                                         : "out of memory");
                free(name);
                free(conf);
                ks_serde_destroy(agg_serde);
                return NULL;
        }
        *store_name = name;
        return conf;
}

static ks_table_t *aggregate(ks_grouped_t *g,
                             const ks_windows_t *windows,
                             const char *store,
                             ks_initializer_fn *init,
                             ks_aggregator_fn *adder,
                             ks_reducer_fn *reducer,
                             void *opaque,
                             ks_serde_t *agg_serde) {
        if (!g) {
                ks_serde_destroy(agg_serde);
                return NULL;
        }
        ks_builder_t *b = g->stream->b;
        char *store_name;
        agg_t *a = ks__agg_begin(g, store, "AGGREGATE-STATE-STORE", agg_serde,
                                 sizeof(*a), &store_name);
        if (!a)
                return NULL;
        ks_stream_t *in = ks__grouped_input(g, store_name);
        a->key_serde    = ks_serde_ref(g->key_serde);
        a->agg_serde    = agg_serde;
        a->init         = init;
        a->adder        = adder;
        a->reducer      = reducer;
        a->opaque       = opaque;
        if (windows) {
                a->windowed   = true;
                a->windows    = *windows;
                a->wkey_serde = ks_serde_windowed(ks_serde_ref(g->key_serde),
                                                  windows->size_ms);
        }
        ks_processor_def_t def = {.init        = ks__agg_state_init,
                                  .process     = agg_process,
                                  .close       = ks__agg_state_close,
                                  .opaque      = a,
                                  .opaque_free = agg_free};
        ks_stream_t *out       = ks__stream_add_processor(
                      in, NULL, windows ? "AGGREGATE-WINDOWED" : "AGGREGATE", &def,
                      NULL, NULL);
        if (out->node < 0) {
                free(store_name);
                return NULL;
        }
        /* Kafka Streams' default: windows are kept for size + grace. */
        int64_t retention = windows ? windows->size_ms + windows->grace_ms : 0;
        if (!ks__node_set_store(b, out->node, store_name,
                                windows ? KS_STORE_WINDOW : KS_STORE_KV,
                                retention))
                return NULL;
        ks_table_t *tbl = ks__table_new(b, out->node,
                                        windows ? a->wkey_serde : a->key_serde,
                                        a->agg_serde);
        if (tbl && windows) {
                /* For suppress: a window is final at end + grace. */
                tbl->windowed       = true;
                tbl->close_after_ms = windows->grace_ms;
        }
        return tbl;
}

bool ks__node_set_store(ks_builder_t *b,
                        int node,
                        char *name,
                        ks_store_kind_t kind,
                        int64_t retention_ms) {
        ks_node_t *n = b->nodes[node];
        n->store     = calloc(1, sizeof(*n->store));
        if (!n->store) {
                free(name);
                ks__builder_fail(b, "out of memory");
                return false;
        }
        n->store->name         = name;
        n->store->kind         = kind;
        n->store->retention_ms = retention_ms;
        /* Kafka Streams' default for window stores: segments of half the
         * retention, at least a minute. */
        if (kind == KS_STORE_WINDOW)
                n->store->segment_ms =
                        retention_ms / 2 > 60000 ? retention_ms / 2 : 60000;
        return true;
}

bool ks__node_add_store_ref(ks_builder_t *b, int node, const char *store) {
        ks_node_t *n = b->nodes[node];
        char **refs  = realloc(n->store_refs,
                               (size_t)(n->store_ref_cnt + 1) * sizeof(char *));
        char *copy   = strdup(store);
        if (!refs || !copy) {
                free(copy);
                if (refs)
                        n->store_refs = refs;
                ks__builder_fail(b, "out of memory");
                return false;
        }
        n->store_refs                     = refs;
        n->store_refs[n->store_ref_cnt++] = copy;
        return true;
}

const void *ks__count_init(ks_arena_t *arena, void *opaque) {
        (void)opaque;
        return ks_arena_int64(arena, 0);
}

const void *ks__count_add(ks_arena_t *arena,
                          const void *key,
                          const void *value,
                          const void *agg,
                          void *opaque) {
        (void)key, (void)value, (void)opaque;
        return ks_arena_int64(arena, *(const int64_t *)agg + 1);
}

ks_table_t *ks_grouped_count(ks_grouped_t *g, const char *store) {
        return aggregate(g, NULL, store, ks__count_init, ks__count_add, NULL,
                         NULL, ks_serde_int64());
}

ks_table_t *ks_grouped_reduce(ks_grouped_t *g,
                              const char *store,
                              ks_reducer_fn *fn,
                              void *opaque) {
        if (g && !fn) {
                ks__builder_fail(g->stream->b, "reduce: NULL reducer");
                return NULL;
        }
        return aggregate(g, NULL, store, NULL, NULL, fn, opaque,
                         g ? ks_serde_ref(g->value_serde) : NULL);
}

ks_table_t *ks_grouped_aggregate(ks_grouped_t *g,
                                 const char *store,
                                 ks_initializer_fn *init,
                                 ks_aggregator_fn *adder,
                                 void *opaque,
                                 ks_serde_t *aggregate_serde) {
        if (g && (!init || !adder)) {
                ks__builder_fail(g->stream->b,
                                 "aggregate: an initializer and an adder are "
                                 "required");
                ks_serde_destroy(aggregate_serde);
                return NULL;
        }
        return aggregate(g, NULL, store, init, adder, NULL, opaque,
                         aggregate_serde);
}

ks_windowed_t *ks_grouped_windowed_by(ks_grouped_t *g, ks_windows_t windows) {
        if (!g)
                return NULL;
        if (windows.size_ms <= 0 || windows.advance_ms <= 0 ||
            windows.advance_ms > windows.size_ms || windows.grace_ms < 0) {
                ks__builder_fail(g->stream->b,
                                 "windowed_by: invalid windows (size %lld, "
                                 "advance %lld, grace %lld)",
                                 (long long)windows.size_ms,
                                 (long long)windows.advance_ms,
                                 (long long)windows.grace_ms);
                return NULL;
        }
        ks_windowed_t *w = calloc(1, sizeof(*w));
        if (w)
                *w = (ks_windowed_t){g, windows};
        return ks__builder_own(g->stream->b, w, free);
}

ks_table_t *ks_windowed_count(ks_windowed_t *w, const char *store) {
        if (!w)
                return NULL;
        return aggregate(w->grouped, &w->windows, store, ks__count_init,
                         ks__count_add, NULL, NULL, ks_serde_int64());
}

ks_table_t *ks_windowed_aggregate(ks_windowed_t *w,
                                  const char *store,
                                  ks_initializer_fn *init,
                                  ks_aggregator_fn *adder,
                                  void *opaque,
                                  ks_serde_t *aggregate_serde) {
        if (!w || !init || !adder) {
                if (w)
                        ks__builder_fail(w->grouped->stream->b,
                                         "aggregate: an initializer and an "
                                         "adder are required");
                ks_serde_destroy(aggregate_serde);
                return NULL;
        }
        return aggregate(w->grouped, &w->windows, store, init, adder, NULL,
                         opaque, aggregate_serde);
}

static ks_err_t pass(ks_ctx_t *ctx,
                     const void *key,
                     const void *value,
                     void *state,
                     void *opaque) {
        (void)state, (void)opaque;
        return ks_ctx_forward(ctx, key, value);
}

ks_stream_t *ks_table_to_stream(ks_table_t *t, const char *name) {
        if (!t)
                return NULL;
        ks_stream_t parent     = {.b = t->b, .node = t->node};
        ks_processor_def_t def = {.process = pass};
        ks_stream_t *out       = ks__stream_add_processor(
                      &parent, name, "TOSTREAM", &def, t->key_serde, t->value_serde);
        return out;
}
