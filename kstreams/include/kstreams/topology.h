/**
 * @file topology.h
 * @brief Building topologies: the DSL (KStream) and the Processor API.
 *
 * Rules of use:
 * - Builder calls never fail one by one: an invalid step is remembered (the
 *   first one wins, as cairo does) and ks_builder_build() reports it, naming
 *   the step. So DSL calls chain without checks in between.
 * - Streams, branches and the like belong to the builder: never free them.
 * - A NULL name derives one as Kafka Streams does
 * ("KSTREAM-FILTER-0000000001").
 * - Builder calls that take serdes take ownership of one reference each
 *   (built-in serdes are static). A NULL serde means "the stream's current
 *   one", known until an operation changes the key or value type.
 * - Callbacks get typed keys and values as const void * and their opaque
 *   last. What they return lives in the record's arena (the @p arena they
 *   are given) or is borrowed from their input; they never free anything.
 */
#ifndef KSTREAMS_TOPOLOGY_H
#define KSTREAMS_TOPOLOGY_H

#include "common.h"
#include "processor.h"
#include "serde.h"
#include "timestamp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_builder_s ks_builder_t;
typedef struct ks_stream_s ks_stream_t;
typedef struct ks_branched_s ks_branched_t;
typedef struct ks_emitter_s ks_emitter_t;
typedef struct ks_topology_s ks_topology_t;

/** A key and a value, returned by map(). */
typedef struct ks_kv_s {
        const void *key;
        const void *value;
} ks_kv_t;

typedef bool(ks_predicate_fn)(const void *key, const void *value, void *opaque);
typedef ks_kv_t(ks_kv_mapper_fn)(ks_arena_t *arena,
                                 const void *key,
                                 const void *value,
                                 void *opaque);
/** Returns the new value (map_values) or the new key (select_key). */
typedef const void *(ks_mapper_fn)(ks_arena_t *arena,
                                   const void *key,
                                   const void *value,
                                   void *opaque);
/** Calls ks_emit() zero or more times. */
typedef void(ks_flat_mapper_fn)(ks_emitter_t *emit,
                                const void *key,
                                const void *value,
                                void *opaque);
typedef void(ks_action_fn)(const void *key, const void *value, void *opaque);
/** Returns the id a record is deduplicated by (ks_stream_deduplicate()):
 *  bytes borrowed from the record or in @p arena; data NULL: no id. */
typedef ks_bytes_t(ks_id_extractor_fn)(ks_arena_t *arena,
                                       const void *key,
                                       const void *value,
                                       void *opaque);
/** Returns the topic for a record (borrowed or from @p arena). */
typedef const char *(ks_topic_extractor_fn)(ks_arena_t *arena,
                                            const void *key,
                                            const void *value,
                                            void *opaque);

/** Returns a new builder; free with ks_builder_destroy(). */
KS_EXPORT ks_builder_t *ks_builder_new(void);
KS_EXPORT void ks_builder_destroy(ks_builder_t *b);

/**
 * Validates the graph, cuts it into sub-topologies at repartition topics,
 * and returns a new topology; free with ks_topology_destroy(). The builder
 * may be destroyed afterwards, and accepts no further calls.
 * @returns NULL with @p errstr naming the first invalid step.
 */
KS_EXPORT ks_topology_t *ks_builder_build(ks_builder_t *b,
                                          char *errstr,
                                          size_t errstr_size);

/* ---- sources --------------------------------------------------------------
 */

/** A stream from one topic. */
KS_EXPORT ks_stream_t *ks_builder_stream(ks_builder_t *b,
                                         const char *topic,
                                         ks_serde_t *key_serde,
                                         ks_serde_t *value_serde);
/** A stream from several topics (copied); @p name may be NULL. */
KS_EXPORT ks_stream_t *ks_builder_stream_topics(ks_builder_t *b,
                                                const char *name,
                                                const char *const *topics,
                                                size_t topic_cnt,
                                                ks_serde_t *key_serde,
                                                ks_serde_t *value_serde);
/** A stream from every topic matching a POSIX extended regex, anchored at
 *  both ends as Java's Pattern.matcher().matches() is. */
KS_EXPORT ks_stream_t *ks_builder_stream_pattern(ks_builder_t *b,
                                                 const char *name,
                                                 const char *regex,
                                                 ks_serde_t *key_serde,
                                                 ks_serde_t *value_serde);
/** Sets the timestamp extractor of the source that @p s reads (it must be
 *  a source stream). Takes ownership of @p ex. */
KS_EXPORT ks_stream_t *ks_stream_with_timestamps(ks_stream_t *s,
                                                 ks_timestamp_extractor_t *ex);

/* ---- stateless operations --------------------------------------------------
 */

KS_EXPORT ks_stream_t *ks_stream_filter(ks_stream_t *s,
                                        const char *name,
                                        ks_predicate_fn *pred,
                                        void *opaque);
KS_EXPORT ks_stream_t *ks_stream_filter_not(ks_stream_t *s,
                                            const char *name,
                                            ks_predicate_fn *pred,
                                            void *opaque);
/** New key and value: the stream's serdes become unknown. */
KS_EXPORT ks_stream_t *ks_stream_map(ks_stream_t *s,
                                     const char *name,
                                     ks_kv_mapper_fn *fn,
                                     void *opaque);
/** New value; the key stays. The value serde becomes unknown. */
KS_EXPORT ks_stream_t *ks_stream_map_values(ks_stream_t *s,
                                            const char *name,
                                            ks_mapper_fn *fn,
                                            void *opaque);
/** New key; the value stays. The key serde becomes unknown. */
KS_EXPORT ks_stream_t *ks_stream_select_key(ks_stream_t *s,
                                            const char *name,
                                            ks_mapper_fn *fn,
                                            void *opaque);
/** Zero or more records per input, each with its own key and value. */
KS_EXPORT ks_stream_t *ks_stream_flat_map(ks_stream_t *s,
                                          const char *name,
                                          ks_flat_mapper_fn *fn,
                                          void *opaque);
/** Zero or more values per input, keeping the key: the mapper must emit
 *  with ks_emit_value(). */
KS_EXPORT ks_stream_t *ks_stream_flat_map_values(ks_stream_t *s,
                                                 const char *name,
                                                 ks_flat_mapper_fn *fn,
                                                 void *opaque);
/** Emits one result from a flat-mapper (ks_emit_value keeps the key). */
KS_EXPORT void ks_emit(ks_emitter_t *emit, const void *key, const void *value);
KS_EXPORT void ks_emit_value(ks_emitter_t *emit, const void *value);
/** The arena to build emitted keys and values in. */
KS_EXPORT ks_arena_t *ks_emitter_arena(ks_emitter_t *emit);

/** Calls @p fn for each record and passes it on unchanged. */
KS_EXPORT ks_stream_t *ks_stream_peek(ks_stream_t *s,
                                      const char *name,
                                      ks_action_fn *fn,
                                      void *opaque);
/** Calls @p fn for each record: a terminal operation. */
KS_EXPORT void ks_stream_foreach(ks_stream_t *s,
                                 const char *name,
                                 ks_action_fn *fn,
                                 void *opaque);

/** Starts a split: records go to the first branch whose predicate holds.
 *  @p name prefixes the branch names. */
KS_EXPORT ks_branched_t *ks_stream_split(ks_stream_t *s, const char *name);
/** Adds a branch named <split name><name>; returns its stream. */
KS_EXPORT ks_stream_t *ks_branch(ks_branched_t *br,
                                 const char *name,
                                 ks_predicate_fn *pred,
                                 void *opaque);
/** The records no branch took (without it they are dropped). */
KS_EXPORT ks_stream_t *ks_branch_default(ks_branched_t *br, const char *name);

/** The records of both streams, as they come. */
KS_EXPORT ks_stream_t *ks_stream_merge(ks_stream_t *a,
                                       ks_stream_t *b,
                                       const char *name);

/** Hooks a Processor API processor into the DSL; its forwarded records
 *  continue the returned stream (serdes unknown). */
KS_EXPORT ks_stream_t *ks_stream_process(ks_stream_t *s,
                                         const char *name,
                                         const ks_processor_def_t *def);

/**
 * As ks_stream_process(), for a processor that forwards every record with
 * the key it received, unchanged, as Kafka Streams' processValues(): the
 * stream keeps its key serde and partitioning, so a later
 * ks_stream_group_by_key() or join does not repartition. The value serde
 * becomes unknown. Nothing checks the promise: forwarding another key
 * leaves records in the wrong partition for what follows.
 */
KS_EXPORT ks_stream_t *ks_stream_process_values(ks_stream_t *s,
                                                const char *name,
                                                const ks_processor_def_t *def);

/**
 * Drops repeated records: keeps the first record of each id (@p fn) and
 * drops the records of that id that follow while it is registered, as Kafka
 * Streams' deduplication (KIP-655). An id is registered with the time of
 * the record that kept it, and stays registered while that time is at
 * least the newest record time the operator has seen (the record's own
 * included) minus @p window_ms; a record of an id whose registration
 * expired is kept and registers it anew. Records for which @p fn gives no
 * id (data NULL) are kept and register nothing. Each drop is counted in
 * ks_streams_metrics_t.dropped_dedup (dropped_records_total{reason="dedup"},
 * "dropped-dedup" in the test driver).
 *
 * The ids are in a window store named @p name (derived if NULL: the
 * node's name), one per task, with the records' partitioning: put the
 * operator where copies of a record share a partition (the same key).
 * It is changelogged and restored like the DSL's other stores, so after a
 * restart or crash a copy of a record processed before is still dropped;
 * under exactly_once_v2 each copy is dropped exactly once through crashes,
 * and under at_least_once the records processed again after a crash see
 * the registrations their first run made and committed (the runtime undoes
 * uncommitted changelog records when it restores). Registrations leave
 * the store @p window_ms after the newest record time (segment by
 * segment), so it holds about a window of ids. After a restart, the
 * newest time seen resumes from the newest registration.
 * The stream keeps its serdes and partitioning.
 * @param window_ms > 0: how long an id stays registered, in record time.
 */
KS_EXPORT ks_stream_t *ks_stream_deduplicate(ks_stream_t *s,
                                             const char *name,
                                             ks_id_extractor_fn *fn,
                                             void *opaque,
                                             int64_t window_ms);

/* ---- sinks and repartitioning ------------------------------------------- */

/** Writes the stream to @p topic. */
KS_EXPORT void ks_stream_to(ks_stream_t *s,
                            const char *topic,
                            ks_serde_t *key_serde,
                            ks_serde_t *value_serde);
/** Writes each record to the topic @p fn names. */
KS_EXPORT void ks_stream_to_dynamic(ks_stream_t *s,
                                    const char *name,
                                    ks_topic_extractor_fn *fn,
                                    void *opaque,
                                    ks_serde_t *key_serde,
                                    ks_serde_t *value_serde);
/**
 * Writes the stream through the internal topic
 * <application.id>-<name>-repartition, partitioned by its key, and reads it
 * back: a new sub-topology starts here. @p partitions 0 sizes the topic at
 * start, as Kafka Streams does: where the stream meets other inputs in one
 * sub-topology (a join), it takes their partition count (the source topics'
 * count, else the largest of the other repartition topics'); otherwise as
 * many as the upstream sub-topology's input. A count given here is kept,
 * and a join partner with another count fails the start, naming both.
 */
KS_EXPORT ks_stream_t *ks_stream_repartition(ks_stream_t *s,
                                             const char *name,
                                             ks_serde_t *key_serde,
                                             ks_serde_t *value_serde,
                                             int32_t partitions);

/* ---- the Processor API ----------------------------------------------------
 */

/** Adds a source node reading @p topic_cnt topics. */
KS_EXPORT void ks_builder_add_source(ks_builder_t *b,
                                     const char *name,
                                     const char *const *topics,
                                     size_t topic_cnt,
                                     ks_serde_t *key_serde,
                                     ks_serde_t *value_serde);
/** Adds a processor below the named parents (which must exist). */
KS_EXPORT void ks_builder_add_processor(ks_builder_t *b,
                                        const char *name,
                                        const ks_processor_def_t *def,
                                        const char *const *parents,
                                        size_t parent_cnt);
/** Adds a sink writing to @p topic below the named parents. */
KS_EXPORT void ks_builder_add_sink(ks_builder_t *b,
                                   const char *name,
                                   const char *topic,
                                   ks_serde_t *key_serde,
                                   ks_serde_t *value_serde,
                                   const char *const *parents,
                                   size_t parent_cnt);

/* ---- the built topology ----------------------------------------------------
 */

KS_EXPORT void ks_topology_destroy(ks_topology_t *t);

/**
 * Appends a description in the shape of Kafka Streams' TopologyDescription
 * (sub-topologies, sources, processors, sinks, stores) to @p out.
 */
KS_EXPORT ks_err_t ks_topology_describe(const ks_topology_t *t, ks_buf_t *out);
/** Appends the same graph as a Mermaid flowchart. */
KS_EXPORT ks_err_t ks_topology_describe_mermaid(const ks_topology_t *t,
                                                ks_buf_t *out);
KS_EXPORT int ks_topology_subtopology_count(const ks_topology_t *t);

#ifdef __cplusplus
}
#endif
#endif
