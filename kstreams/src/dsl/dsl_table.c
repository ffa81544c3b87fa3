/* KTables: a topic materialized into a key-value store (Kafka Streams'
 * KTableSource), filter and map_values on tables, and the lookups joins use
 * to read a table (Kafka Streams' KTableValueGetter).
 *
 * Tables forward only new values downstream, not Kafka Streams' Change
 * (new, old) pairs: a null value is a tombstone for its key. */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"

/* ---- the table source ------------------------------------------------------
 */

typedef struct tsource_state_s {
        ks_buf_t key, value;
} tsource_state_t;

typedef struct tsource_s {
        ks_serde_t *key_serde;   /* owned reference */
        ks_serde_t *value_serde; /* owned reference */
} tsource_t;

static void tsource_free(void *p) {
        tsource_t *ts = p;
        ks_serde_destroy(ts->key_serde);
        ks_serde_destroy(ts->value_serde);
        free(ts);
}

static ks_err_t tsource_init(ks_ctx_t *ctx, void **state, void *opaque) {
        (void)ctx, (void)opaque;
        *state = calloc(1, sizeof(tsource_state_t));
        return *state ? KS_OK : KS_ERR_NOMEM;
}

static void tsource_close(ks_ctx_t *ctx, void *state, void *opaque) {
        tsource_state_t *st = state;
        (void)ctx, (void)opaque;
        ks_buf_free(&st->key);
        ks_buf_free(&st->value);
        free(st);
}

/* Every update is stored, logged and forwarded; a null value deletes the
 * key and goes on as a tombstone, as KTableSource does. */
static ks_err_t tsource_process(ks_ctx_t *ctx,
                                const void *key,
                                const void *value,
                                void *state,
                                void *opaque) {
        tsource_state_t *st = state;
        const tsource_t *ts = opaque;
        if (!key) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        ks_err_t err = ks__dsl_serialize(ctx, ts->key_serde, key, &st->key);
        if (err)
                return err;
        ks_bytes_t k = {st->key.data, st->key.len}, v = {NULL, 0};
        if (value) {
                err = ks__dsl_serialize(ctx, ts->value_serde, value,
                                        &st->value);
                if (err)
                        return err;
                v = (ks_bytes_t){st->value.data, st->value.len};
        }
        /* Whether the key existed is not known without a read: a
         * deletion is always sent on. */
        ks_store_emit_t emit = {key,   value,         ks_ctx_timestamp(ctx),
                                false, ts->key_serde, ts->value_serde};
        return ks__ctx_kv_put(ctx, k, v, &emit);
}

ks_table_t *ks_builder_table(ks_builder_t *b,
                             const char *topic,
                             ks_serde_t *key_serde,
                             ks_serde_t *value_serde,
                             const char *store) {
        if (!b) {
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return NULL;
        }
        /* Named as Kafka Streams does: "<topic>-STATE-STORE-0000000000",
         * before the source and the table-source nodes. */
        char derived[300];
        int index = b->name_index++;
        snprintf(derived, sizeof(derived), "%s-STATE-STORE-%010d",
                 topic ? topic : "", index);
        char *store_name = strdup(store ? store : derived);
        ks_stream_t *s   = ks_builder_stream(b, topic, key_serde, value_serde);
        tsource_t *ts    = calloc(1, sizeof(*ts));
        if (!store_name || !ts || s->node < 0) {
                if (s->node >= 0)
                        ks__builder_fail(b, "table(%s): out of memory",
                                         topic ? topic : "");
                free(store_name);
                free(ts);
                return NULL;
        }
        ts->key_serde          = ks_serde_ref(s->key_serde);
        ts->value_serde        = ks_serde_ref(s->value_serde);
        ks_processor_def_t def = {.init        = tsource_init,
                                  .process     = tsource_process,
                                  .close       = tsource_close,
                                  .opaque      = ts,
                                  .opaque_free = tsource_free};
        ks_stream_t *out = ks__stream_add_processor(s, NULL, "KTABLE-SOURCE",
                                                    &def, NULL, NULL);
        if (out->node < 0) {
                free(store_name);
                return NULL;
        }
        /* ks__builder_name() prefixes "KSTREAM-": Kafka Streams calls this
         * node KTABLE-SOURCE-<index>. */
        ks_node_t *n = b->nodes[out->node];
        char *name   = strdup(n->name + strlen("KSTREAM-"));
        if (name) {
                free(n->name);
                n->name = name;
        }
        if (!ks__node_set_store(b, out->node, store_name, KS_STORE_KV, 0))
                return NULL;
        return ks__table_new(b, out->node, s->key_serde, s->value_serde);
}

/* ---- filter and map_values -------------------------------------------------
 */

typedef struct tview_s {
        ks_table_step_t step;
        ks_serde_t *value_serde; /* map_values: owned; else NULL */
        /* How the table this one derives from is read; lookup_error is
         * set instead when it cannot be (reported only by a join). */
        ks_table_lookup_t parent;
        const char *lookup_error;
} tview_t;

static void tview_free(void *p) {
        tview_t *v = p;
        ks_serde_destroy(v->value_serde);
        ks__table_lookup_clear(&v->parent);
        free(v);
}

/* A failing record becomes a tombstone, as KTableFilter does (without old
 * values, the table downstream must learn the key is gone); a tombstone
 * stays one. */
static ks_err_t tfilter_process(ks_ctx_t *ctx,
                                const void *key,
                                const void *value,
                                void *state,
                                void *opaque) {
        const tview_t *v = opaque;
        (void)state;
        if (value && !v->step.pred(key, value, v->step.opaque))
                value = NULL;
        return ks_ctx_forward(ctx, key, value);
}

static ks_err_t tmap_process(ks_ctx_t *ctx,
                             const void *key,
                             const void *value,
                             void *state,
                             void *opaque) {
        const tview_t *v = opaque;
        (void)state;
        if (value)
                value = v->step.mapper(ks_ctx_arena(ctx), key, value,
                                       v->step.opaque);
        return ks_ctx_forward(ctx, key, value);
}

static ks_table_t *add_view(ks_table_t *t,
                            const char *name,
                            const char *op,
                            ks_table_step_t step,
                            ks_serde_t *value_serde) {
        ks_builder_t *b = t->b;
        tview_t *v      = calloc(1, sizeof(*v));
        if (!v) {
                ks__builder_fail(b, "%s: out of memory", name ? name : op);
                ks_serde_destroy(value_serde);
                return NULL;
        }
        v->step                = step;
        v->value_serde         = value_serde;
        v->lookup_error        = ks__table_lookup_init(t, &v->parent);
        ks_processor_def_t def = {
                .process     = step.pred ? tfilter_process : tmap_process,
                .opaque      = v,
                .opaque_free = tview_free};
        ks_stream_t parent = {.b = b, .node = t->node};
        ks_stream_t *out =
                ks__stream_add_processor(&parent, name, op, &def, NULL, NULL);
        if (out->node < 0)
                return NULL;
        ks_node_t *n = b->nodes[out->node];
        if (!name) { /* KTABLE-FILTER-<index>, as Kafka Streams */
                char *kname = strdup(n->name + strlen("KSTREAM-"));
                if (kname) {
                        free(n->name);
                        n->name = kname;
                }
        }
        return ks__table_new(b, out->node, t->key_serde,
                             step.pred ? t->value_serde : value_serde);
}

ks_table_t *ks_table_filter(ks_table_t *t,
                            const char *name,
                            ks_predicate_fn *pred,
                            void *opaque) {
        if (!t)
                return NULL;
        if (!pred) {
                ks__builder_fail(t->b, "%s: NULL predicate",
                                 name ? name : "table filter");
                return NULL;
        }
        return add_view(t, name, "KTABLE-FILTER",
                        (ks_table_step_t){pred, NULL, opaque}, NULL);
}

ks_table_t *ks_table_map_values(ks_table_t *t,
                                const char *name,
                                ks_mapper_fn *fn,
                                void *opaque,
                                ks_serde_t *value_serde) {
        if (!t || !fn) {
                if (t)
                        ks__builder_fail(t->b, "%s: NULL mapper",
                                         name ? name : "table map_values");
                ks_serde_destroy(value_serde);
                return NULL;
        }
        return add_view(t, name, "KTABLE-MAPVALUES",
                        (ks_table_step_t){NULL, fn, opaque}, value_serde);
}

/* ---- lookups ---------------------------------------------------------------
 */

void ks__table_lookup_clear(ks_table_lookup_t *lk) {
        free(lk->store);
        ks_serde_destroy(lk->key_serde);
        ks_serde_destroy(lk->value_serde);
        free(lk->steps);
        memset(lk, 0, sizeof(*lk));
}

static const char *lookup_copy(const ks_table_lookup_t *from,
                               const ks_table_step_t *extra,
                               ks_table_lookup_t *out) {
        int cnt    = from->step_cnt + (extra ? 1 : 0);
        out->store = strdup(from->store);
        out->steps = cnt ? calloc((size_t)cnt, sizeof(*out->steps)) : NULL;
        if (!out->store || (cnt && !out->steps)) {
                ks__table_lookup_clear(out);
                return "out of memory";
        }
        if (from->step_cnt)
                memcpy(out->steps, from->steps,
                       (size_t)from->step_cnt * sizeof(*out->steps));
        if (extra)
                out->steps[from->step_cnt] = *extra;
        out->step_cnt    = cnt;
        out->key_serde   = ks_serde_ref(from->key_serde);
        out->value_serde = ks_serde_ref(from->value_serde);
        return NULL;
}

const char *ks__table_lookup_init(ks_table_t *t, ks_table_lookup_t *out) {
        memset(out, 0, sizeof(*out));
        const ks_node_t *n = t->b->nodes[t->node];
        if (n->store) {
                if (n->store->kind != KS_STORE_KV)
                        return "a windowed or session table cannot be "
                               "joined: join a key-value table";
                if (!t->key_serde || !t->value_serde)
                        return "the table's serdes are unknown";
                ks_table_lookup_t base = {.store       = n->store->name,
                                          .key_serde   = t->key_serde,
                                          .value_serde = t->value_serde};
                return lookup_copy(&base, NULL, out);
        }
        if (n->def.process == tfilter_process ||
            n->def.process == tmap_process) {
                const tview_t *v = n->def.opaque;
                if (v->lookup_error)
                        return v->lookup_error;
                return lookup_copy(&v->parent, &v->step, out);
        }
        return "the table is not materialized: join a table from "
               "ks_builder_table() or an aggregation, or a filter or "
               "map_values of one";
}

ks_err_t ks__table_lookup(ks_ctx_t *ctx,
                          const ks_table_lookup_t *lk,
                          ks_kv_store_t *store,
                          ks_buf_t *keybuf,
                          const void *key,
                          const void **value) {
        *value = NULL;
        if (!store)
                return ks_ctx_fail(ctx, "store %s is not in this task",
                                   lk->store);
        ks_err_t err = ks__dsl_serialize(ctx, lk->key_serde, key, keybuf);
        if (err)
                return err;
        ks_bytes_t stored;
        bool found;
        ks_error_t *e =
                ks_kv_store_get(store, (ks_bytes_t){keybuf->data, keybuf->len},
                                &stored, &found);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        const void *v;
        if ((err = ks__dsl_stored(ctx, lk->value_serde, stored, found, &v)))
                return err;
        ks_arena_t *arena = ks_ctx_arena(ctx);
        for (int i = 0; i < lk->step_cnt && v; i++) {
                const ks_table_step_t *st = &lk->steps[i];
                if (st->pred)
                        v = st->pred(key, v, st->opaque) ? v : NULL;
                else
                        v = st->mapper(arena, key, v, st->opaque);
        }
        *value = v;
        return KS_OK;
}
