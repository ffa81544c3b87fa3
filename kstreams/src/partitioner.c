/* Keys are placed with librdkafka's own murmur2 partitioner so that the test
 * driver, sinks and repartition topics agree with what Java producers and
 * our runtime's producers (partitioner=murmur2_random) do. */
#include "kstreams/partitioner.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>

static atomic_uint null_key_counter;

int32_t ks_partition_for_key(const void *key,
                             size_t len,
                             int32_t partition_count) {
        if (partition_count < 1)
                return -1;
        /* librdkafka's random branch consults the topic handle, which we do
         * not have: spread null keys round-robin instead (deterministic in
         * the test driver, which is a virtue there). */
        if (!key)
                return (int32_t)(atomic_fetch_add(&null_key_counter, 1) %
                                 (unsigned)partition_count);
        /* The murmur2 branch only hashes the key; the topic handle and the
         * opaques are never touched. */
        return rd_kafka_msg_partitioner_murmur2(NULL, key, len, partition_count,
                                                NULL, NULL);
}
