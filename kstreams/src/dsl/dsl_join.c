/* Joins: stream-table (KStreamKTableJoin) and table-table
 * (KTableKTable*Join) here; windowed stream-stream (KStreamKStreamJoin,
 * with Kafka Streams 3.x's deferred left/outer results) in
 * dsl_join_stream.c. Each side is a processor
 * node that reads the other side's store; store references put both sides
 * in one sub-topology, hence one task per partition. */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"

/* "<base><suffix>" for a named join, else "<prefix>-<op>-<index>". */
char *ks__join_name(ks_builder_t *b,
                    const char *base,
                    const char *suffix,
                    const char *prefix,
                    const char *op) {
        char buf[300];
        if (base)
                snprintf(buf, sizeof(buf), "%s%s", base, suffix);
        else
                snprintf(buf, sizeof(buf), "%s-%s-%010d", prefix, op,
                         b->name_index++);
        return strdup(buf);
}

ks_err_t ks__join_pass(ks_ctx_t *ctx,
                       const void *key,
                       const void *value,
                       void *state,
                       void *opaque) {
        (void)state, (void)opaque;
        return ks_ctx_forward(ctx, key, value);
}

/* A side whose key may have changed goes through a repartition topic
 * first, as Kafka Streams does before a join. */
ks_stream_t *ks__copartition(ks_stream_t *s, const char *name) {
        if (!s->key_changed)
                return s;
        if (!s->key_serde || !s->value_serde) {
                ks__builder_fail(s->b,
                                 "%s: the stream's key may have changed and "
                                 "its serdes are unknown: repartition it "
                                 "with ks_stream_repartition() first",
                                 name);
                return &s->b->error_stream;
        }
        return ks_stream_repartition(s, name, ks_serde_ref(s->key_serde),
                                     ks_serde_ref(s->value_serde), 0);
}

/* ---- stream-table ----------------------------------------------------------
 */

typedef struct stjoin_s {
        ks_table_lookup_t table;
        ks_value_joiner_fn *joiner;
        void *opaque;
        bool left;
} stjoin_t;

typedef struct lookup_state_s {
        ks_kv_store_t *store;
        ks_buf_t key;
} lookup_state_t;

static void stjoin_free(void *p) {
        stjoin_t *j = p;
        ks__table_lookup_clear(&j->table);
        free(j);
}

static ks_err_t lookup_state_init(ks_ctx_t *ctx,
                                  void **state,
                                  const char *store) {
        lookup_state_t *st = calloc(1, sizeof(*st));
        if (!st)
                return KS_ERR_NOMEM;
        st->store = ks__ctx_store_named(ctx, store);
        *state    = st;
        return KS_OK;
}

static void lookup_state_close(ks_ctx_t *ctx, void *state, void *opaque) {
        lookup_state_t *st = state;
        (void)ctx, (void)opaque;
        ks_buf_free(&st->key);
        free(st);
}

static ks_err_t stjoin_init(ks_ctx_t *ctx, void **state, void *opaque) {
        const stjoin_t *j = opaque;
        return lookup_state_init(ctx, state, j->table.store);
}

static ks_err_t stjoin_process(ks_ctx_t *ctx,
                               const void *key,
                               const void *value,
                               void *state,
                               void *opaque) {
        const stjoin_t *j  = opaque;
        lookup_state_t *st = state;
        /* As KStreamKTableJoinProcessor: nothing joins a null value or (in
         * an inner join) a null key; a left join passes a null key on
         * (Kafka Streams 3.7, KIP-962). */
        if (!value || (!key && !j->left)) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        const void *tv = NULL;
        if (key) {
                ks_err_t err = ks__table_lookup(ctx, &j->table, st->store,
                                                &st->key, key, &tv);
                if (err)
                        return err;
        }
        if (!tv && !j->left)
                return KS_OK;
        return ks_ctx_forward(
                ctx, key,
                j->joiner(ks_ctx_arena(ctx), key, value, tv, j->opaque));
}

static ks_stream_t *stream_table(ks_stream_t *s,
                                 ks_table_t *t,
                                 const char *name,
                                 ks_value_joiner_fn *joiner,
                                 void *opaque,
                                 bool left) {
        if (!s)
                return NULL;
        ks_builder_t *b  = s->b;
        const char *step = left ? "left_join_table" : "join_table";
        if (!ks__stream_ok(s, step))
                return &b->error_stream;
        if (!t || t->b != b || !joiner) {
                ks__builder_fail(b, "%s: %s", name ? name : step,
                                 !joiner ? "NULL joiner"
                                 : !t    ? "NULL table (an earlier step "
                                           "failed)"
                                         : "the table is from another builder");
                return &b->error_stream;
        }
        stjoin_t *j     = calloc(1, sizeof(*j));
        char *node      = ks__join_name(b, name, "", "KSTREAM",
                                   left ? "LEFTJOIN" : "JOIN");
        const char *why = j && node ? ks__table_lookup_init(t, &j->table)
                                    : "out of memory";
        if (why) {
                ks__builder_fail(b, "%s: %s", node ? node : step, why);
                free(node);
                if (j)
                        stjoin_free(j);
                return &b->error_stream;
        }
        j->joiner              = joiner;
        j->opaque              = opaque;
        j->left                = left;
        s                      = ks__copartition(s, node);
        ks_processor_def_t def = {.init        = stjoin_init,
                                  .process     = stjoin_process,
                                  .close       = lookup_state_close,
                                  .opaque      = j,
                                  .opaque_free = stjoin_free};
        char *store            = strdup(j->table.store);
        ks_stream_t *out       = ks__stream_add_processor(s, node, NULL, &def,
                                                          s->key_serde, NULL);
        free(node);
        if (out->node >= 0 && store)
                ks__node_add_store_ref(b, out->node, store);
        else if (!store)
                ks__builder_fail(b, "%s: out of memory", step);
        free(store);
        return out;
}

ks_stream_t *ks_stream_join_table(ks_stream_t *s,
                                  ks_table_t *t,
                                  const char *name,
                                  ks_value_joiner_fn *joiner,
                                  void *opaque) {
        return stream_table(s, t, name, joiner, opaque, false);
}

ks_stream_t *ks_stream_left_join_table(ks_stream_t *s,
                                       ks_table_t *t,
                                       const char *name,
                                       ks_value_joiner_fn *joiner,
                                       void *opaque) {
        return stream_table(s, t, name, joiner, opaque, true);
}

/* ---- table-table
 * -------------------------------------------------------------
 */

typedef enum { TT_INNER, TT_LEFT, TT_OUTER } tt_kind_t;

typedef struct ttjoin_s {
        ks_table_lookup_t other;
        bool left_side;
        tt_kind_t kind;
        ks_value_joiner_fn *joiner;
        void *opaque;
} ttjoin_t;

static void ttjoin_free(void *p) {
        ttjoin_t *j = p;
        ks__table_lookup_clear(&j->other);
        free(j);
}

static ks_err_t ttjoin_init(ks_ctx_t *ctx, void **state, void *opaque) {
        const ttjoin_t *j = opaque;
        return lookup_state_init(ctx, state, j->other.store);
}

/* KTableKTable{Inner,Left,Right,Outer}Join with new values only: @p value
 * is this side's new value (NULL: deleted), the other side's is read. */
static ks_err_t ttjoin_process(ks_ctx_t *ctx,
                               const void *key,
                               const void *value,
                               void *state,
                               void *opaque) {
        const ttjoin_t *j  = opaque;
        lookup_state_t *st = state;
        if (!key) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        const void *other;
        ks_err_t err = ks__table_lookup(ctx, &j->other, st->store, &st->key,
                                        key, &other);
        if (err)
                return err;
        /* Whether this side's rows are kept without a match. */
        bool this_outer =
                j->kind == TT_OUTER || (j->kind == TT_LEFT && j->left_side);
        if (!other && !this_outer)
                return KS_OK; /* no row before, none now */
        const void *result = NULL;
        if (value || (other && (j->kind == TT_OUTER ||
                                (j->kind == TT_LEFT && !j->left_side)))) {
                const void *l = j->left_side ? value : other;
                const void *r = j->left_side ? other : value;
                result = j->joiner(ks_ctx_arena(ctx), key, l, r, j->opaque);
        }
        return ks_ctx_forward(ctx, key, result);
}

static ks_table_t *table_table(ks_table_t *a,
                               ks_table_t *other,
                               const char *name,
                               ks_value_joiner_fn *joiner,
                               void *opaque,
                               tt_kind_t kind) {
        if (!a || !other)
                return NULL;
        ks_builder_t *b  = a->b;
        const char *step = name ? name : "table join";
        if (other->b != b || !joiner) {
                ks__builder_fail(b, "%s: %s", step,
                                 !joiner ? "NULL joiner"
                                         : "the tables come from different "
                                           "builders");
                return NULL;
        }
        ttjoin_t *j[2] = {calloc(1, sizeof(ttjoin_t)),
                          calloc(1, sizeof(ttjoin_t))};
        char *names[3] = {
                ks__join_name(b, name, "-join-this", "KTABLE", "JOINTHIS"),
                ks__join_name(b, name, "-join-other", "KTABLE", "JOINOTHER"),
                ks__join_name(b, name, "", "KTABLE", "MERGE")};
        const char *why = NULL;
        if (!j[0] || !j[1] || !names[0] || !names[1] || !names[2])
                why = "out of memory";
        if (!why)
                why = ks__table_lookup_init(other, &j[0]->other);
        if (!why)
                why = ks__table_lookup_init(a, &j[1]->other);
        if (why) {
                ks__builder_fail(b, "%s: %s", step, why);
                for (int i = 0; i < 2; i++)
                        if (j[i])
                                ttjoin_free(j[i]);
                for (int i = 0; i < 3; i++)
                        free(names[i]);
                return NULL;
        }
        ks_table_t *sides[2] = {a, other};
        int parents[2];
        for (int i = 0; i < 2; i++) {
                j[i]->left_side        = i == 0;
                j[i]->kind             = kind;
                j[i]->joiner           = joiner;
                j[i]->opaque           = opaque;
                char *store            = strdup(j[i]->other.store);
                ks_processor_def_t def = {.init        = ttjoin_init,
                                          .process     = ttjoin_process,
                                          .close       = lookup_state_close,
                                          .opaque      = j[i],
                                          .opaque_free = ttjoin_free};
                ks_stream_t parent     = {.b = b, .node = sides[i]->node};
                ks_stream_t *s         = ks__stream_add_processor(
                                &parent, names[i], NULL, &def, NULL, NULL);
                free(names[i]);
                parents[i] = s->node;
                if (s->node >= 0 && store)
                        ks__node_add_store_ref(b, s->node, store);
                free(store);
        }
        if (parents[0] < 0 || parents[1] < 0) {
                free(names[2]);
                return NULL;
        }
        ks_node_t *m = ks__builder_add_node(b, names[2], KS_NODE_PROCESSOR,
                                            parents, 2);
        if (!m)
                return NULL;
        m->def.process = ks__join_pass;
        return ks__table_new(b, m->id, a->key_serde, NULL);
}

ks_table_t *ks_table_join(ks_table_t *a,
                          ks_table_t *b,
                          const char *name,
                          ks_value_joiner_fn *joiner,
                          void *opaque) {
        return table_table(a, b, name, joiner, opaque, TT_INNER);
}

ks_table_t *ks_table_left_join(ks_table_t *a,
                               ks_table_t *b,
                               const char *name,
                               ks_value_joiner_fn *joiner,
                               void *opaque) {
        return table_table(a, b, name, joiner, opaque, TT_LEFT);
}

ks_table_t *ks_table_outer_join(ks_table_t *a,
                                ks_table_t *b,
                                const char *name,
                                ks_value_joiner_fn *joiner,
                                void *opaque) {
        return table_table(a, b, name, joiner, opaque, TT_OUTER);
}
