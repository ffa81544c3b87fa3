/* The stateless DSL: each operation is a processor node with a built-in
 * definition, so the DSL builds exactly what the Processor API would. */
#include "builder_int.h"

#include <stdlib.h>
#include <string.h>

/* The callback of an operation and its user opaque, owned by the node. */
typedef struct op_s {
        void *fn;
        void *opaque;
        bool negate;
} op_t;

static void op_free(void *p) {
        free(p);
}

static ks_stream_t *add_op(ks_stream_t *s,
                           const char *name,
                           const char *op,
                           ks_err_t (*process)(ks_ctx_t *,
                                               const void *,
                                               const void *,
                                               void *,
                                               void *),
                           void *fn,
                           void *opaque,
                           bool negate,
                           ks_serde_t *key_serde,
                           ks_serde_t *value_serde) {
        if (!s)
                return NULL;
        if (!fn) {
                ks__builder_fail(s->b, "%s: NULL callback", name ? name : op);
                return &s->b->error_stream;
        }
        op_t *o = calloc(1, sizeof(*o));
        if (!o) {
                ks__builder_fail(s->b, "%s: out of memory", name ? name : op);
                return &s->b->error_stream;
        }
        o->fn                  = fn;
        o->opaque              = opaque;
        o->negate              = negate;
        ks_processor_def_t def = {
                .process = process, .opaque = o, .opaque_free = op_free};
        ks_stream_t *out = ks__stream_add_processor(s, name, op, &def,
                                                    key_serde, value_serde);
        /* Operations that may change the key pass a NULL key serde. */
        if (out->node >= 0)
                out->key_changed = s->key_changed || !key_serde;
        return out;
}

static ks_err_t filter_process(ks_ctx_t *ctx,
                               const void *key,
                               const void *value,
                               void *state,
                               void *opaque) {
        const op_t *o = opaque;
        (void)state;
        bool keep = ((ks_predicate_fn *)o->fn)(key, value, o->opaque);
        if (keep != o->negate)
                return ks_ctx_forward(ctx, key, value);
        return KS_OK;
}

ks_stream_t *ks_stream_filter(ks_stream_t *s,
                              const char *name,
                              ks_predicate_fn *pred,
                              void *opaque) {
        return add_op(s, name, "FILTER", filter_process, (void *)pred, opaque,
                      false, s ? s->key_serde : NULL,
                      s ? s->value_serde : NULL);
}

ks_stream_t *ks_stream_filter_not(ks_stream_t *s,
                                  const char *name,
                                  ks_predicate_fn *pred,
                                  void *opaque) {
        return add_op(s, name, "FILTER", filter_process, (void *)pred, opaque,
                      true, s ? s->key_serde : NULL, s ? s->value_serde : NULL);
}

static ks_err_t map_process(ks_ctx_t *ctx,
                            const void *key,
                            const void *value,
                            void *state,
                            void *opaque) {
        const op_t *o = opaque;
        (void)state;
        ks_kv_t kv = ((ks_kv_mapper_fn *)o->fn)(ks_ctx_arena(ctx), key, value,
                                                o->opaque);
        return ks_ctx_forward(ctx, kv.key, kv.value);
}

ks_stream_t *ks_stream_map(ks_stream_t *s,
                           const char *name,
                           ks_kv_mapper_fn *fn,
                           void *opaque) {
        return add_op(s, name, "MAP", map_process, (void *)fn, opaque, false,
                      NULL, NULL);
}

static ks_err_t map_values_process(ks_ctx_t *ctx,
                                   const void *key,
                                   const void *value,
                                   void *state,
                                   void *opaque) {
        const op_t *o = opaque;
        (void)state;
        const void *v = ((ks_mapper_fn *)o->fn)(ks_ctx_arena(ctx), key, value,
                                                o->opaque);
        return ks_ctx_forward(ctx, key, v);
}

ks_stream_t *ks_stream_map_values(ks_stream_t *s,
                                  const char *name,
                                  ks_mapper_fn *fn,
                                  void *opaque) {
        return add_op(s, name, "MAPVALUES", map_values_process, (void *)fn,
                      opaque, false, s ? s->key_serde : NULL, NULL);
}

static ks_err_t select_key_process(ks_ctx_t *ctx,
                                   const void *key,
                                   const void *value,
                                   void *state,
                                   void *opaque) {
        const op_t *o = opaque;
        (void)state;
        const void *k = ((ks_mapper_fn *)o->fn)(ks_ctx_arena(ctx), key, value,
                                                o->opaque);
        return ks_ctx_forward(ctx, k, value);
}

ks_stream_t *ks_stream_select_key(ks_stream_t *s,
                                  const char *name,
                                  ks_mapper_fn *fn,
                                  void *opaque) {
        return add_op(s, name, "KEY-SELECT", select_key_process, (void *)fn,
                      opaque, false, NULL, s ? s->value_serde : NULL);
}

/* ---- flat_map -------------------------------------------------------------
 */

struct ks_emitter_s {
        ks_ctx_t *ctx;
        const void *key; /* the input key, for ks_emit_value() */
        bool values_only;
        ks_err_t err; /* the first downstream error */
};

void ks_emit(ks_emitter_t *e, const void *key, const void *value) {
        if (e->err)
                return;
        if (e->values_only)
                key = e->key; /* flat_map_values cannot change the key */
        e->err = ks_ctx_forward(e->ctx, key, value);
}

void ks_emit_value(ks_emitter_t *e, const void *value) {
        if (!e->err)
                e->err = ks_ctx_forward(e->ctx, e->key, value);
}

ks_arena_t *ks_emitter_arena(ks_emitter_t *e) {
        return ks_ctx_arena(e->ctx);
}

static ks_err_t flat_map_process(ks_ctx_t *ctx,
                                 const void *key,
                                 const void *value,
                                 void *state,
                                 void *opaque) {
        const op_t *o     = opaque;
        ks_emitter_t emit = {.ctx = ctx, .key = key, .values_only = o->negate};
        (void)state;
        ((ks_flat_mapper_fn *)o->fn)(&emit, key, value, o->opaque);
        return emit.err;
}

ks_stream_t *ks_stream_flat_map(ks_stream_t *s,
                                const char *name,
                                ks_flat_mapper_fn *fn,
                                void *opaque) {
        return add_op(s, name, "FLATMAP", flat_map_process, (void *)fn, opaque,
                      false, NULL, NULL);
}

ks_stream_t *ks_stream_flat_map_values(ks_stream_t *s,
                                       const char *name,
                                       ks_flat_mapper_fn *fn,
                                       void *opaque) {
        /* negate marks "values only" for this operation. */
        return add_op(s, name, "FLATMAPVALUES", flat_map_process, (void *)fn,
                      opaque, true, s ? s->key_serde : NULL, NULL);
}

/* ---- peek, foreach --------------------------------------------------------
 */

static ks_err_t peek_process(ks_ctx_t *ctx,
                             const void *key,
                             const void *value,
                             void *state,
                             void *opaque) {
        const op_t *o = opaque;
        (void)state;
        ((ks_action_fn *)o->fn)(key, value, o->opaque);
        return ks_ctx_forward(ctx, key, value);
}

ks_stream_t *ks_stream_peek(ks_stream_t *s,
                            const char *name,
                            ks_action_fn *fn,
                            void *opaque) {
        return add_op(s, name, "PEEK", peek_process, (void *)fn, opaque, false,
                      s ? s->key_serde : NULL, s ? s->value_serde : NULL);
}

void ks_stream_foreach(ks_stream_t *s,
                       const char *name,
                       ks_action_fn *fn,
                       void *opaque) {
        /* A foreach node has no children, so its forward reaches nobody. */
        add_op(s, name, "FOREACH", peek_process, (void *)fn, opaque, false,
               NULL, NULL);
}

/* ---- split / branch --------------------------------------------------------
 */

typedef struct branch_s {
        ks_predicate_fn *pred; /* NULL: the default branch */
        void *opaque;
        char *child; /* the branch's node */
} branch_t;

typedef struct split_s {
        branch_t *branches;
        int cnt;
        bool has_default;
} split_t;

static void split_free(void *p) {
        split_t *sp = p;
        for (int i = 0; i < sp->cnt; i++)
                free(sp->branches[i].child);
        free(sp->branches);
        free(sp);
}

static ks_err_t split_process(ks_ctx_t *ctx,
                              const void *key,
                              const void *value,
                              void *state,
                              void *opaque) {
        const split_t *sp = opaque;
        (void)state;
        for (int i = 0; i < sp->cnt; i++) {
                const branch_t *br = &sp->branches[i];
                if (!br->pred || br->pred(key, value, br->opaque))
                        return ks_ctx_forward_to(ctx, br->child, key, value);
        }
        return KS_OK;
}

static ks_err_t pass_process(ks_ctx_t *ctx,
                             const void *key,
                             const void *value,
                             void *state,
                             void *opaque) {
        (void)state, (void)opaque;
        return ks_ctx_forward(ctx, key, value);
}

ks_branched_t *ks_stream_split(ks_stream_t *s, const char *name) {
        if (!s)
                return NULL;
        ks_builder_t *b   = s->b;
        split_t *sp       = calloc(1, sizeof(*sp));
        ks_branched_t *br = calloc(1, sizeof(*br));
        if (!sp || !br) {
                free(sp);
                free(br);
                ks__builder_fail(b, "split: out of memory");
                return NULL;
        }
        ks_processor_def_t def = {.process     = split_process,
                                  .opaque      = sp,
                                  .opaque_free = split_free};
        ks_stream_t *out       = ks__stream_add_processor(
                      s, name, "BRANCH", &def, s->key_serde, s->value_serde);
        if (out->node >= 0)
                out->key_changed = s->key_changed;
        br->parent     = out;
        br->split_node = out ? out->node : -1;
        br->prefix     = strdup(name ? name : "");
        br->next_owned = b->branches;
        b->branches    = br;
        if (!br->prefix)
                ks__builder_fail(b, "split: out of memory");
        return br;
}

static ks_stream_t *add_branch(ks_branched_t *br,
                               const char *name,
                               ks_predicate_fn *pred,
                               void *opaque) {
        if (!br)
                return NULL;
        ks_stream_t *parent = br->parent;
        ks_builder_t *b     = parent->b;
        if (!ks__stream_ok(parent, "branch"))
                return &b->error_stream;
        split_t *sp = b->nodes[br->split_node]->def.opaque;
        if (sp->has_default) {
                ks__builder_fail(b, "branch %s: added after the default branch",
                                 name ? name : "");
                return &b->error_stream;
        }
        /* Kafka Streams names a branch <split name><branch name>, and
         * numbers unnamed ones from 1. */
        char child[256], idx[16];
        snprintf(idx, sizeof(idx), "%d", sp->cnt + 1);
        snprintf(child, sizeof(child), "%s%s",
                 *br->prefix ? br->prefix : "KSTREAM-BRANCH-",
                 name ? name : idx);
        branch_t *nb =
                realloc(sp->branches, (size_t)(sp->cnt + 1) * sizeof(*nb));
        if (!nb) {
                ks__builder_fail(b, "branch %s: out of memory", child);
                return &b->error_stream;
        }
        sp->branches           = nb;
        ks_processor_def_t def = {.process = pass_process};
        ks_stream_t *out       = ks__stream_add_processor(
                      parent, child, "BRANCHCHILD", &def, parent->key_serde,
                      parent->value_serde);
        if (out->node < 0)
                return out;
        out->key_changed   = parent->key_changed;
        nb[sp->cnt].pred   = pred;
        nb[sp->cnt].opaque = opaque;
        nb[sp->cnt].child  = strdup(child);
        if (!nb[sp->cnt].child) {
                ks__builder_fail(b, "branch %s: out of memory", child);
                return &b->error_stream;
        }
        sp->cnt++;
        if (!pred)
                sp->has_default = true;
        return out;
}

ks_stream_t *ks_branch(ks_branched_t *br,
                       const char *name,
                       ks_predicate_fn *pred,
                       void *opaque) {
        if (br && !pred) {
                ks__builder_fail(br->parent->b, "branch %s: NULL predicate",
                                 name ? name : "");
                return &br->parent->b->error_stream;
        }
        return add_branch(br, name, pred, opaque);
}

ks_stream_t *ks_branch_default(ks_branched_t *br, const char *name) {
        return add_branch(br, name ? name : "default", NULL, NULL);
}

/* ---- merge, process
 * ---------------------------------------------------------- */

ks_stream_t *ks_stream_merge(ks_stream_t *a,
                             ks_stream_t *other,
                             const char *name) {
        if (!a || !other)
                return NULL;
        ks_builder_t *b = a->b;
        if (other->b != b) {
                ks__builder_fail(b,
                                 "merge: the streams come from different "
                                 "builders");
                return &b->error_stream;
        }
        if (!ks__stream_ok(a, "merge") || !ks__stream_ok(other, "merge"))
                return &b->error_stream;
        int parents[2] = {a->node, other->node};
        ks_node_t *n =
                ks__builder_add_node(b, ks__builder_name(b, name, "MERGE"),
                                     KS_NODE_PROCESSOR, parents, 2);
        if (!n)
                return &b->error_stream;
        n->def.process = pass_process;
        /* Serdes stay known only where both sides agree. */
        ks_stream_t *out = ks__stream_new(
                b, n->id,
                a->key_serde == other->key_serde ? a->key_serde : NULL,
                a->value_serde == other->value_serde ? a->value_serde : NULL);
        out->key_changed = a->key_changed || other->key_changed;
        return out;
}

ks_stream_t *ks_stream_process(ks_stream_t *s,
                               const char *name,
                               const ks_processor_def_t *def) {
        if (!s)
                return NULL;
        if (!def || !def->process) {
                ks__builder_fail(s->b,
                                 "process(%s): a process callback is "
                                 "required",
                                 name ? name : "");
                if (def && def->opaque_free)
                        def->opaque_free(def->opaque);
                return &s->b->error_stream;
        }
        ks_stream_t *out =
                ks__stream_add_processor(s, name, "PROCESSOR", def, NULL, NULL);
        out->key_changed = out->node >= 0; /* unknown: assume changed */
        return out;
}

/* ---- sinks and repartition
 * ---------------------------------------------------- */

/* Resolves a sink serde: the one given (owned), or a new reference to the
 * stream's known one. Records an error when neither exists. */
static ks_serde_t *sink_serde(ks_stream_t *s,
                              ks_serde_t *given,
                              ks_serde_t *known,
                              const char *what,
                              const char *step) {
        if (given)
                return given;
        if (known)
                return ks_serde_ref(known);
        ks__builder_fail(s->b,
                         "%s: the %s serde is unknown after an operation "
                         "that changed its type; pass one",
                         step, what);
        return NULL;
}

static ks_node_t *add_sink(ks_stream_t *s,
                           const char *name,
                           const char *op,
                           const char *topic,
                           ks_serde_t *key_serde,
                           ks_serde_t *value_serde) {
        ks_builder_t *b = s->b;
        char step[300];
        snprintf(step, sizeof(step), "to(%s)", topic ? topic : "dynamic");
        if (!ks__stream_ok(s, step)) {
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return NULL;
        }
        ks_serde_t *ks = sink_serde(s, key_serde, s->key_serde, "key", step);
        ks_serde_t *vs =
                sink_serde(s, value_serde, s->value_serde, "value", step);
        ks_node_t *n = NULL;
        if (ks && vs)
                n = ks__builder_add_node(b, ks__builder_name(b, name, op),
                                         KS_NODE_SINK, &s->node, 1);
        if (!n) {
                ks_serde_destroy(ks);
                ks_serde_destroy(vs);
                return NULL;
        }
        n->key_serde   = ks;
        n->value_serde = vs;
        if (topic) {
                n->topics = calloc(1, sizeof(char *));
                if (!n->topics || !(n->topics[0] = strdup(topic))) {
                        ks__builder_fail(b, "%s: out of memory", step);
                        return NULL;
                }
                n->topic_cnt = 1;
        }
        return n;
}

void ks_stream_to(ks_stream_t *s,
                  const char *topic,
                  ks_serde_t *key_serde,
                  ks_serde_t *value_serde) {
        if (!s || !topic || !*topic) {
                if (s)
                        ks__builder_fail(s->b, "to: empty topic name");
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return;
        }
        add_sink(s, NULL, "SINK", topic, key_serde, value_serde);
}

void ks_stream_to_dynamic(ks_stream_t *s,
                          const char *name,
                          ks_topic_extractor_fn *fn,
                          void *opaque,
                          ks_serde_t *key_serde,
                          ks_serde_t *value_serde) {
        if (!s || !fn) {
                if (s)
                        ks__builder_fail(s->b, "to: NULL topic extractor");
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return;
        }
        ks_node_t *n = add_sink(s, name, "SINK", NULL, key_serde, value_serde);
        if (n) {
                n->topic_fn     = fn;
                n->topic_opaque = opaque;
        }
}

ks_stream_t *ks_stream_repartition(ks_stream_t *s,
                                   const char *name,
                                   ks_serde_t *key_serde,
                                   ks_serde_t *value_serde,
                                   int32_t partitions) {
        if (!s) {
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return NULL;
        }
        ks_builder_t *b = s->b;
        if (partitions < 0) {
                ks__builder_fail(b, "repartition(%s): negative partition count",
                                 name ? name : "");
                partitions = 0;
        }
        /* As Kafka Streams: "<name>-repartition" is the topic, with a
         * "-sink" and a "-source" node around it. */
        char *base = ks__builder_name(b, name, "REPARTITION");
        if (!base) {
                ks__builder_fail(b, "repartition: out of memory");
                return &b->error_stream;
        }
        char topic[300], sink[320], source[320];
        snprintf(topic, sizeof(topic), "%s-repartition", base);
        snprintf(sink, sizeof(sink), "%s-sink", topic);
        snprintf(source, sizeof(source), "%s-source", topic);
        free(base);
        ks_node_t *sn =
                add_sink(s, sink, "SINK", topic, key_serde, value_serde);
        if (!sn)
                return &b->error_stream;
        sn->internal         = true;
        sn->partitions       = partitions;
        const char *topics[] = {topic};
        ks_stream_t *out     = ks_builder_stream_topics(
                    b, source, topics, 1, ks_serde_ref(sn->key_serde),
                    ks_serde_ref(sn->value_serde));
        if (out->node >= 0)
                b->nodes[out->node]->internal = true;
        return out;
}
