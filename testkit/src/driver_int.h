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
        /* exactly_once_v2: written in the open transaction, seen by no
         * reader or task until it commits (driver_eos.c). */
        bool pending;
} drv_record_t;

/* exactly_once_v2: an input record a task took since the last commit
 * (processed or still queued), fed to the task again after an abort. */
typedef struct drv_replay_s {
        drv_record_t *dr;
        int subtopology;
} drv_replay_t;

/* exactly_once_v2: the committed position of one input partition of one
 * sub-topology, and its partition time. */
typedef struct drv_committed_s {
        int subtopology;
        int32_t partition;
        char *topic;
        int64_t offset; /* the next offset to read */
        int64_t partition_time;
} drv_committed_t;

/* exactly_once_v2 state: one transaction spans every task, as a stream
 * thread's does. */
typedef struct drv_eos_s {
        drv_record_t **pending; /* written in the open transaction, in order */
        size_t pending_cnt, pending_cap;
        drv_replay_t *replay;
        size_t replay_cnt, replay_cap;
        drv_committed_t *committed;
        size_t committed_cnt, committed_cap;
        uint64_t released; /* pending records given to tasks at commits */
        uint64_t txn_committed, txn_aborted;
        /* Counters of the tasks an abort closed. */
        ks_task_metrics_t closed;
} drv_eos_t;

typedef struct drv_topic_s {
        char *name;
        int32_t partitions;
        int64_t *next_offset; /* per partition */
        ks_test_record_t **records;
        size_t cnt, cap;
        size_t read_pos;
        /* exactly_once_v2: records of the open transaction in records,
         * the first of them at first_pending. */
        size_t pending, first_pending;
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
        /* processing.guarantee=exactly_once_v2 (driver_eos.c). */
        bool eos;
        drv_eos_t txn;
};

drv_topic_t *ks__drv_topic(const ks_test_driver_t *drv, const char *name);
ks_task_t *ks__drv_task_for(const ks_test_driver_t *drv,
                            int subtopology,
                            int32_t partition);
/* Creates and initializes the task of (sub-topology, partition), appended
 * to drv->tasks; @p restore runs between its creation and its init (NULL:
 * none). */
ks_error_t *ks__drv_task_make(ks_test_driver_t *drv,
                              int subtopology,
                              int32_t partition,
                              ks_error_t *(*restore)(ks_test_driver_t *drv,
                                                     ks_task_t *task));
/* Gives a committed record to every task reading its topic and partition
 * (under exactly_once_v2 also to the replay list). @returns the number of
 * references taken (tasks, replay list); KS_OK in *errp or the error. */
int ks__drv_enqueue(ks_test_driver_t *drv,
                    drv_record_t *dr,
                    ks_err_t *errp,
                    char *errstr,
                    size_t errstr_size);
/* Processes, commits, and again while commits release records to tasks
 * (repartition topics under exactly_once_v2); no abort on failure. */
ks_error_t *ks__drv_commit(ks_test_driver_t *drv);

/* ---- exactly_once_v2 (driver_eos.c) ---- */
/* The commit protocol's step 3: commits the driver's transaction. */
ks_error_t *ks__drv_eos_commit_offsets(void *opaque,
                                       const ks_task_offset_t *offsets,
                                       int cnt);
/* A record written to @p t in the open transaction: appended to
 * t->records already unless outputs are streamed (then the transaction
 * takes ownership of it). */
ks_err_t ks__drv_eos_add_pending(ks_test_driver_t *drv,
                                 drv_topic_t *t,
                                 drv_record_t *dr);
/* A record a task took since the last commit. */
ks_err_t ks__drv_eos_replay_push(ks_test_driver_t *drv,
                                 drv_record_t *dr,
                                 int subtopology);
/* Under exactly_once_v2, aborts when @p err is set (then returns @p err,
 * or a new error if the abort failed too); else returns @p err. */
ks_error_t *ks__drv_eos_failed(ks_test_driver_t *drv, ks_error_t *err);
/* Whether readers may see record @p i of @p t (none at or past the first
 * record of the open transaction, as read_committed's last stable
 * offset). */
bool ks__drv_visible(const drv_topic_t *t, size_t i);
void ks__drv_eos_destroy(ks_test_driver_t *drv);

#endif
