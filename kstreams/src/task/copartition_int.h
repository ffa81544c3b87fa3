/* Co-partition groups and the sizing of repartition topics, shared by the
 * runtime (admin.c) and the test driver so that both size every topic
 * alike. */
#ifndef KS_COPARTITION_INT_H
#define KS_COPARTITION_INT_H

#include "kstreams/error.h"
#include "topology_int.h"

/** A topic that exists and its partition count. */
typedef struct ks_topic_count_s {
        const char *name;
        int32_t partitions;
} ks_topic_count_t;

/** The partition counts a topology needs (see ks__partition_plan()). */
typedef struct ks_partition_plan_s {
        /** Per sub-topology: the partition count of its inputs, which is
         *  its task count. */
        int32_t *sub_partitions;
        /** Per node: the partition count of the repartition topic an
         *  internal sink writes or an internal source reads; 0 for every
         *  other node. */
        int32_t *node_partitions;
} ks_partition_plan_t;

/**
 * Sizes the repartition topics of @p t and checks co-partitioning, as
 * Kafka Streams' RepartitionTopics and CopartitionedTopicsEnforcer do.
 *
 * A co-partition group is the set of input topics of one sub-topology: a
 * task reads partition N of each of them (a join puts both of its sides in
 * one sub-topology), and the range assignor gives one member partition N of
 * every topic only when their counts are equal. Within a group:
 * - the source topics (not repartition topics) must have one count, and
 *   the group takes it;
 * - with no source topic, a repartition topic given a count
 *   (ks_stream_repartition() with partitions > 0) fixes the group's count;
 * - otherwise the group takes the largest count of the sub-topologies
 *   that write its repartition topics.
 * A repartition topic takes its group's count; one given a different count,
 * or two source topics with different counts, are an error naming both.
 *
 * @param topics     the topics that exist (source topics must all be there;
 *                   pattern sources match against these); this
 *                   application's repartition topics among them are ignored,
 *                   so the caller can compare them with the plan.
 * @param default_partitions the count of a sub-topology that reads no
 *                   existing topic (a pattern that matches none yet).
 * @param plan       filled on success; free with ks__partition_plan_clear().
 * @returns NULL, or an error (KS_ERR_TOPOLOGY: not co-partitioned, or a
 *          repartition topic that cannot be sized).
 */
ks_error_t *ks__partition_plan(const ks_topology_t *t,
                               const char *application_id,
                               const ks_topic_count_t *topics,
                               int topic_cnt,
                               int32_t default_partitions,
                               ks_partition_plan_t *plan);

/** Frees what ks__partition_plan() allocated; NULL fields are fine. */
void ks__partition_plan_clear(ks_partition_plan_t *plan);

#endif
