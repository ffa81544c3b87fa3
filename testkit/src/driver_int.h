/* Test driver internals shared by driver.c and replay.c. */
#ifndef KS_DRIVER_INT_H
#define KS_DRIVER_INT_H

#include "kstreams/test_driver.h"
#include "record_cache.h"
#include "task_int.h"

/* A record as the driver allocates it: the public struct first (so the
 * pointer frees the whole block), then, when outputs are streamed, how
 * many tasks still hold it in their queues. */
typedef struct drv_record_s {
        ks_test_record_t rec;
        int task_refs;
} drv_record_t;

typedef struct drv_topic_s {
        char *name;
        int32_t partitions;
        int64_t *next_offset; /* per partition */
        ks_test_record_t **records;
        size_t cnt, cap;
        size_t read_pos;
} drv_topic_t;

struct ks_test_driver_s {
        const ks_topology_t *topology;
        ks_conf_t *conf;
        const char *application_id;
        drv_topic_t *topics;
        int topic_cnt, topic_cap;
        int32_t default_partitions;
        ks_task_t **tasks;
        int task_cnt;
        int *tasks_per_sub; /* partition count of each sub-topology */
        bool started;
        int64_t wall_clock;
        ks_collector_t collector;
        /* The record caches of all tasks share one budget, as a stream
         * thread's do; flushed after every record unless manual_commit. */
        ks_cache_budget_t cache_budget;
        bool manual_commit;
        /* Stores: LMDB environments under state_dir (a temporary directory
         * removed with the driver), as the runtime's, unless
         * memory_stores. */
        bool memory_stores;
        char *state_dir;
        uint64_t commits;
        /* ks_test_driver_stream_outputs(): records of topics no task reads
         * go to output_fn and are not kept; those tasks read are freed
         * once every task reading them has processed them. */
        ks_test_output_fn *output_fn;
        void *output_opaque;
        void (*output_opaque_free)(void *opaque);
};

drv_topic_t *ks__drv_topic(const ks_test_driver_t *drv, const char *name);

#endif
