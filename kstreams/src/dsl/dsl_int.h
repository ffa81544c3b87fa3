/* Internals of the stateful DSL, shared by its files (dsl_stateful.c and
 * the window, session, suppress, table and join operators). */
#ifndef KS_DSL_INT_H
#define KS_DSL_INT_H

#include "builder_int.h"
#include "bytes_int.h"
#include "kstreams/table.h"
#include "task_priv.h"

struct ks_grouped_s {
        ks_stream_t *stream;
        ks_serde_t *key_serde;   /* owned */
        ks_serde_t *value_serde; /* owned */
        bool repartition;
        char *repartition_name; /* NULL: derived from the store */
};

struct ks_windowed_s {
        ks_grouped_t *grouped;
        ks_windows_t windows;
};

struct ks_table_s {
        ks_builder_t *b;
        int node;
        ks_serde_t *key_serde;   /* borrowed from the node */
        ks_serde_t *value_serde; /* borrowed from the node */
        /* Windowed tables (session, sliding, suppressed): a window
         * [start, end] is final once stream time >= end + close_after_ms
         * (Kafka Streams' grace, plus the gap for sessions). Appended by
         * the session/sliding/suppress operators; zero for others. */
        bool windowed;
        int64_t close_after_ms;
};

typedef struct agg_s {
        ks_serde_t *key_serde;  /* the group key, for store keys */
        ks_serde_t *agg_serde;  /* the aggregate */
        ks_serde_t *wkey_serde; /* windowed: store/changelog key bytes */
        ks_initializer_fn *init;
        ks_aggregator_fn *adder;
        ks_reducer_fn *reducer;
        void *opaque;
        bool windowed;
        ks_windows_t windows;
} agg_t;

/* The per-task state of every aggregation node (plain, time, session and
 * sliding windows): reused buffers. */
typedef struct agg_state_s {
        ks_buf_t key, value, agg;
} agg_state_t;

/**
 * The stream time that decides whether a window is closed for a record at
 * @p ts: the task's (restored from the committed offsets' metadata after a
 * restart, so closed windows stay closed), or @p ts if a processor moved
 * the record's time ahead of it. Never a private copy per operator, which
 * a restart would lose.
 */
static inline int64_t ks__dsl_stream_time(ks_ctx_t *ctx, int64_t ts) {
        int64_t st = ks_ctx_stream_time(ctx);
        return ts > st ? ts : st;
}

/** count() as an aggregation: an int64 starting at 0, plus one. */
const void *ks__count_init(ks_arena_t *arena, void *opaque);
const void *ks__count_add(ks_arena_t *arena,
                          const void *key,
                          const void *value,
                          const void *agg,
                          void *opaque);

/** The processor init/close of every aggregation node (agg_state_t). */
ks_err_t ks__agg_state_init(ks_ctx_t *ctx, void **state, void *opaque);
void ks__agg_state_close(ks_ctx_t *ctx, void *state, void *opaque);

/**
 * The start of every aggregation's construction: names the store (as
 * @p op when @p store is NULL), checks that the key and aggregate serdes
 * are known, and returns a zeroed config of @p conf_size bytes. On failure
 * the builder's error is set, @p agg_serde is destroyed and NULL returned.
 */
void *ks__agg_begin(ks_grouped_t *g,
                    const char *store,
                    const char *op,
                    ks_serde_t *agg_serde,
                    size_t conf_size,
                    char **store_name);

/** Serializes @p obj into @p buf (cleared first); a failure is recorded
 *  on the context. */
ks_err_t ks__dsl_serialize(ks_ctx_t *ctx,
                           ks_serde_t *serde,
                           const void *obj,
                           ks_buf_t *buf);
/** Deserializes stored bytes (copied into the arena first, since store
 *  bytes are borrowed) into *obj; NULL when !found. */
ks_err_t ks__dsl_stored(ks_ctx_t *ctx,
                        ks_serde_t *serde,
                        ks_bytes_t stored,
                        bool found,
                        const void **obj);
/** A new table handle for node @p node (owned by the builder). */
ks_table_t *ks__table_new(ks_builder_t *b,
                          int node,
                          ks_serde_t *key_serde,
                          ks_serde_t *value_serde);
/** Attaches a store of @p kind to node @p node, taking @p name. Window
 *  and session stores keep @p retention_ms; window stores are segmented
 *  by half of it, at least a minute (Kafka Streams' default). */
bool ks__node_set_store(ks_builder_t *b,
                        int node,
                        char *name,
                        ks_store_kind_t kind,
                        int64_t retention_ms);

/** Lets node @p node read the store named @p store (copied). */
bool ks__node_add_store_ref(ks_builder_t *b, int node, const char *store);

/* ---- session windows, sliding windows, suppress (dsl_session.c,
 * dsl_sliding.c, dsl_suppress.c) ------------------------------------------ */

/** The input of an aggregation of @p g: its stream, repartitioned first
 *  through <name or @p store>-repartition when the key changed. */
ks_stream_t *ks__grouped_input(ks_grouped_t *g, const char *store);

/* ---- tables and joins (dsl_table.c, dsl_join.c) -------------------------- */

/** One step between a materialized table and a table derived from it. */
typedef struct ks_table_step_s {
        ks_predicate_fn *pred; /* filter; NULL: map_values */
        ks_mapper_fn *mapper;
        void *opaque;
} ks_table_step_t;

/** How a join reads a table: the key-value store it derives from, and the
 *  filter/map_values steps from that store's values to the table's, as
 *  Kafka Streams' KTableValueGetter does. */
typedef struct ks_table_lookup_s {
        char *store;             /* owned copy */
        ks_serde_t *key_serde;   /* owned reference */
        ks_serde_t *value_serde; /* owned reference: the stored values */
        ks_table_step_t *steps;  /* owned; the base's first */
        int step_cnt;
} ks_table_lookup_t;

/** A join node's name: "<base><suffix>" for a named join, else
 *  "<prefix>-<op>-<index>" (dsl_join.c). New string, or NULL on OOM. */
char *ks__join_name(ks_builder_t *b,
                    const char *base,
                    const char *suffix,
                    const char *prefix,
                    const char *op);
/** A processor that forwards what it gets (a join's merge node). */
ks_err_t ks__join_pass(ks_ctx_t *ctx,
                       const void *key,
                       const void *value,
                       void *state,
                       void *opaque);
/** @p s, through a repartition topic first if its key may have changed,
 *  as Kafka Streams does before a join. */
ks_stream_t *ks__copartition(ks_stream_t *s, const char *name);

/** Fills @p out for table @p t. @returns NULL, or why @p t cannot be read
 *  by a join (a static message); nothing is recorded on the builder. */
const char *ks__table_lookup_init(ks_table_t *t, ks_table_lookup_t *out);
void ks__table_lookup_clear(ks_table_lookup_t *lk);
/** The table's current value for @p key (NULL: none), read from @p store
 *  (the lookup's store, found with ks__ctx_store_named()); @p keybuf is
 *  scratch. @locality stream thread */
ks_err_t ks__table_lookup(ks_ctx_t *ctx,
                          const ks_table_lookup_t *lk,
                          ks_kv_store_t *store,
                          ks_buf_t *keybuf,
                          const void *key,
                          const void **value);

#endif
