/* The topology graph, shared by the builder, the describer and tasks. */
#ifndef KS_TOPOLOGY_INT_H
#define KS_TOPOLOGY_INT_H

#include <regex.h>

#include "kstreams/topology.h"

typedef enum ks_node_kind_e {
        KS_NODE_SOURCE,
        KS_NODE_PROCESSOR,
        KS_NODE_SINK
} ks_node_kind_t;

typedef enum ks_store_kind_e {
        KS_STORE_KV,
        KS_STORE_WINDOW,
        KS_STORE_SESSION
} ks_store_kind_t;

/** A store a processor owns: created per task, changelogged to
 *  <application.id>-<name>-changelog. */
typedef struct ks_store_spec_s {
        char *name;
        ks_store_kind_t kind;
        int64_t retention_ms; /* window stores */
        int64_t segment_ms;
} ks_store_spec_t;

typedef struct ks_node_s {
        char *name;
        ks_node_kind_t kind;
        int id;
        int subtopology;
        int *parents;
        int parent_cnt;
        int *children;
        int child_cnt;

        /* Sources read topics (or a pattern); sinks write one topic or the
         * one a topic extractor names. Internal (repartition) topics are
         * stored without the application id, which is only known at run
         * time: "<name>-repartition". */
        char **topics;
        int topic_cnt;
        char *pattern;
        regex_t regex;
        bool has_regex;
        bool internal;
        int32_t partitions; /* internal sink: requested count, 0 = auto */
        ks_serde_t *key_serde;
        ks_serde_t *value_serde;
        ks_timestamp_extractor_t *ts_extractor;
        ks_topic_extractor_fn *topic_fn;
        void *topic_opaque;
        const char *topic_fn_label;

        ks_processor_def_t def;
        ks_store_spec_t *store; /* processors that keep state: one store */
        /* Stores of other nodes this one reads (a stream-table join reads
         * the table's): they share a sub-topology and a task. */
        char **store_refs;
        int store_ref_cnt;
} ks_node_t;

struct ks_topology_s {
        ks_node_t **nodes;
        int node_cnt;
        int subtopology_cnt;
};

/** @returns true if the source node reads @p topic (an internal topic is
 *  matched with its application-id prefix). */
bool ks__source_reads(const ks_node_t *src,
                      const char *application_id,
                      const char *topic);
/** The key serde of the sinks that write @p topic (borrowed, valid while
 *  the topology lives); NULL if none, or if they use different serdes. */
const ks_serde_t *ks__sink_key_serde(const ks_topology_t *t,
                                     const char *application_id,
                                     const char *topic);
/** Writes the full name of internal topic suffix @p suffix. */
void ks__internal_topic_name(const char *application_id,
                             const char *suffix,
                             char *out,
                             size_t out_size);

/** Runs an extractor (defined in timestamp.c). */
int64_t ks__timestamp_extract(const ks_timestamp_extractor_t *ex,
                              const ks_consumed_t *rec,
                              const void *key,
                              const void *value,
                              int64_t partition_time);

#endif
