/* The builder's internals, shared by builder.c, dsl.c and topology.c. */
#ifndef KS_BUILDER_INT_H
#define KS_BUILDER_INT_H

#include <stdio.h>

#include "topology_int.h"

struct ks_stream_s {
        ks_builder_t *b;
        int node;                /* -1 in an error stream */
        ks_serde_t *key_serde;   /* borrowed from a node; NULL = unknown */
        ks_serde_t *value_serde; /* borrowed from a node; NULL = unknown */
        /* The key may have changed since the last (re)partitioning: a
         * grouping must repartition first, as in Kafka Streams. */
        bool key_changed;
        struct ks_stream_s *next_owned;
};

struct ks_branched_s {
        ks_stream_t *parent;
        int split_node;
        char *prefix;
        struct ks_branched_s *next_owned;
};

struct ks_builder_s {
        ks_node_t **nodes;
        int node_cnt, node_cap;
        int name_index;  /* the counter in derived names */
        char error[512]; /* the first invalid step; "" while fine */
        bool built;
        ks_stream_t *streams; /* every stream handed out, freed with b */
        ks_branched_t *branches;
        ks_stream_t error_stream; /* returned after an allocation failure */
        /* Other handles given out (groupings, tables), freed with b. */
        struct owned_s {
                void *ptr;
                void (*free)(void *);
        } * owned;
        int owned_cnt, owned_cap;
};

/** Hands @p ptr to the builder, which frees it with @p fn when destroyed.
 *  @returns @p ptr, or NULL (and @p ptr freed, error recorded) on OOM. */
void *ks__builder_own(ks_builder_t *b, void *ptr, void (*fn)(void *));

/** Records the first error. */
void ks__builder_fail(ks_builder_t *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/** Derives "KSTREAM-<OP>-0000000007" or copies @p name. NULL on OOM. */
char *ks__builder_name(ks_builder_t *b, const char *name, const char *op);
/** Adds a node below @p parent_cnt parents, taking ownership of @p name.
 *  @returns the node or NULL (error recorded). */
ks_node_t *ks__builder_add_node(ks_builder_t *b,
                                char *name,
                                ks_node_kind_t kind,
                                const int *parents,
                                int parent_cnt);
/** A new stream at node @p node with the given (borrowed) serdes. */
ks_stream_t *ks__stream_new(ks_builder_t *b,
                            int node,
                            ks_serde_t *key_serde,
                            ks_serde_t *value_serde);
/** Adds a processor node below stream @p s and returns the stream after it.
 *  @p opaque is owned by the node (freed with @p opaque_free). */
ks_stream_t *ks__stream_add_processor(ks_stream_t *s,
                                      const char *name,
                                      const char *op,
                                      const ks_processor_def_t *def,
                                      ks_serde_t *key_serde,
                                      ks_serde_t *value_serde);
/** True if the stream can be used; records an error naming @p step if not. */
bool ks__stream_ok(ks_stream_t *s, const char *step);
void ks__node_free(ks_node_t *n);

#endif
