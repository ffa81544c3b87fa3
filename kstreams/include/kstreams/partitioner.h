/**
 * @file partitioner.h
 * @brief The key-to-partition function used everywhere: sinks, repartition
 *        topics and the test driver. It is librdkafka's murmur2 partitioner,
 *        which puts a key on the partition Java's default partitioner picks.
 */
#ifndef KSTREAMS_PARTITIONER_H
#define KSTREAMS_PARTITIONER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @returns the partition in [0, @p partition_count) for a serialized key, as
 *          Java's producer computes it (toPositive(murmur2(key)) % count).
 *          A NULL key gets a random partition, as murmur2_random does.
 *          -1 if @p partition_count < 1.
 */
KS_EXPORT int32_t ks_partition_for_key(const void *key,
                                       size_t len,
                                       int32_t partition_count);

#ifdef __cplusplus
}
#endif
#endif
