/* A stream thread's parts, shared by the files that implement them:
 *
 *   stream_thread.c   the loop, the thread's clients, metrics
 *   task_manager.c    the tasks' lifecycle: CREATED -> RESTORING -> RUNNING
 *                     -> SUSPENDED -> CLOSED, driven from the loop
 *   changelog_reader.c  restoration: one restore consumer for every
 *                     restoring store, done by position
 *   collector.c       the one producer path: knows internal topics
 *   commit.c (task/)  the commit protocol; thread_commit.c its Kafka steps
 *
 * The rebalance callbacks only record what changed (and commit before a
 * revocation); the loop does the work, so a long restoration never holds
 * up a poll. @locality stream thread, unless a function says otherwise. */
#ifndef KS_RUNTIME_INT_H
#define KS_RUNTIME_INT_H

#include "metrics_int.h"
#include "record_cache.h"
#include "streams_int.h"

struct ks_state_env_s;

typedef enum ks_task_state_e {
        KS_TASK_CREATED,   /* stores open; not yet restoring */
        KS_TASK_RESTORING, /* its changelogs are being replayed */
        KS_TASK_RUNNING,   /* processing; its inputs flow */
        KS_TASK_SUSPENDED, /* revoked after a commit; kept for reassignment */
} ks_task_state_t;

/* A task and what the thread knows of it. */
typedef struct managed_task_s {
        ks_task_t *task;
        ks_task_state_t state;
        int sub;
        int32_t partition;
        bool has_stores;
        bool in_iq;    /* registered with interactive queries */
        bool assigned; /* in the current assignment (set while handling) */
} managed_task_t;

/* One partition of the group consumer's assignment. */
typedef struct assigned_s {
        char *topic;
        int32_t partition;
        bool repartition; /* one of the application's repartition topics */
        bool paused;      /* backpressure: its task's buffer is full */
        bool held;        /* paused until its task is RUNNING */
        bool handled;     /* its task exists (the loop has seen it) */
        ks_task_t *task;
        int64_t committed_time; /* partition time of its last commit; -1 */
        int64_t committed;      /* its last committed offset; -1 */
        int64_t lag;            /* the fetched lag, as of loop turn lag_turn */
        uint64_t lag_turn;
        /* The changelog positions its last commit's metadata recorded. */
        int64_t positions[KS_METADATA_MAX_STORES];
        int position_cnt;
        int64_t purged; /* repartition: records deleted up to here */
} assigned_t;

/* A changelog partition being replayed into one store of a task. */
typedef struct restoring_s {
        managed_task_t *mt;
        int store;
        char *changelog;
        int32_t partition;
        int64_t end; /* the changelog's end when restoration began */
        /* Records before apply_end were committed and are applied; those
         * after it were written by a run that crashed before committing
         * (its input is processed again) and are undone instead. */
        int64_t apply_end;
        int64_t position; /* next offset to read */
        int64_t since_commit;
        bool done;
} restoring_t;

typedef struct ks_changelog_reader_s {
        rd_kafka_t *consumer; /* no group: manual assignment */
        restoring_t *parts;
        int cnt, cap;
        bool reassign; /* the set changed: assign it again */
        int64_t started, last_log, restored, undone;
        int64_t batch_records; /* per LMDB transaction */
} ks_changelog_reader_t;

typedef struct ks_record_collector_s {
        ks_stream_thread_t *t;
        rd_kafka_t *producer;
        ks_collector_t iface; /* what tasks call */
        char *app_prefix;     /* "<application.id>-" */
        size_t app_prefix_len;
        ks_handler_t prod_handler;
        const char *dlq_topic;
        /* The opaque of an internal record with no checkpoint to move (a
         * repartition record): its delivery failure fails the task. */
        int64_t internal_marker;
        /* An internal record could not be delivered, but may be if tried
         * again: the thread's tasks are closed without committing and
         * recreated from their checkpoints. */
        ks_error_t *task_error;
        /* The thread fails: a user record under the "fail" handler, or an
         * internal record that can never be delivered. */
        ks_error_t *fatal;
        uint64_t delivery_failed, dead_lettered;
        ks_rate_limit_t rl;
        bool purging; /* our own purge: its failed deliveries are expected */
} ks_record_collector_t;

/* A stream thread's Kafka transaction under exactly_once_v2
 * (thread_txn.c). One is begun at the first record sent after a commit
 * and ends at the next commit, or in an abort. */
typedef struct ks_txn_s {
        char id[400];       /* transactional.id */
        int64_t timeout_ms; /* transaction.timeout.ms */
        bool open;          /* begun, not yet committed or aborted */
        int64_t started;    /* when it was begun */
        /* Set where a failure is found, acted on by the loop
         * (ks__txn_recover()): abort, and restart the tasks from the last
         * commit; or, with the producer unusable (fenced, fatal), also
         * make a new producer. */
        bool must_abort, producer_dead;
        char *cause; /* why (strdup), logged once by the recovery */
        int aborts_in_row;
        int poison_aborts;       /* of those, on records never deliverable */
        int64_t recreated_at[3]; /* the last producer recreations */
        ks_rate_limit_t rl;
} ks_txn_t;

struct ks_stream_thread_s {
        ks_streams_t *s;
        char app_state_dir[1024]; /* <state.dir>/<application.id> */
        int64_t last_cleanup;
        int index;
        pthread_t tid;
        bool started, joined;
        rd_kafka_t *consumer, *producer;
        rd_kafka_queue_t *queue;
        managed_task_t **tasks;
        int task_cnt;
        ks_task_t **running; /* ks__tm_running()'s array */
        int running_cap;
        assigned_t *assigned;
        int assigned_cnt;
        bool assignment_pending; /* partitions the loop has not handled */
        bool in_group;           /* assigned (perhaps nothing) by the group */
        bool consumer_closed;    /* rd_kafka_consumer_close() done */
        bool progress;           /* the last process() took records */
        int64_t last_wake, last_input; /* wake_fetcher() */
        uint64_t turn;                 /* loop turns, from 1 */
        atomic_bool has_assignment;
        ks_record_collector_t collector;
        ks_changelog_reader_t reader;
        ks_txn_t txn; /* exactly_once_v2 only */
        int batch_size;
        int64_t commit_interval, last_commit;
        int64_t poll_ms;
        size_t max_buffered;
        ks_error_t *fatal; /* the thread fails with it */
        ks_rate_limit_t rl_consume, rl_commit;
        ks_streams_metrics_t own;    /* commits, rebalances, ... */
        ks_streams_metrics_t closed; /* of tasks already closed */
        pthread_mutex_t mlock;
        ks_streams_metrics_t published;
        /* Repartition records already committed are deleted
         * (DeleteRecords) at most every purge_interval ms; the results
         * come back on purge_q. */
        int64_t purge_interval, last_purge;
        rd_kafka_queue_t *purge_q;
        /* The record caches of all its tasks share this thread's part of
         * statestore.cache.max.bytes, as Kafka Streams' ThreadCache. */
        ks_cache_budget_t cache_budget;
        ks_thread_obs_t obs; /* histograms and lag (thread_obs.c) */
};

/** Milliseconds left before ks_streams_close()'s deadline, capped at
 *  @p cap; @p cap when the instance is not closing. */
int ks__thread_time_left(const ks_stream_thread_t *t, int cap);
assigned_t *ks__thread_find_assigned(ks_stream_thread_t *t,
                                     const char *topic,
                                     int32_t partition);
/** Pauses or resumes one assigned partition on the group consumer. */
void ks__thread_pause(ks_stream_thread_t *t, assigned_t *a, bool pause);
/** Sets t->fatal (the first error wins; takes ownership of @p err). */
void ks__thread_fail(ks_stream_thread_t *t, ks_error_t *err);
/** The commit protocol for the thread's running tasks. @returns true if
 *  everything committed (thread_commit.c). */
bool ks__thread_commit(ks_stream_thread_t *t);
/** Collects the results of repartition purges; failures are logged. */
void ks__thread_purge_results(ks_stream_thread_t *t);
/** The commit protocol's flush: every record sent acknowledged. */
ks_error_t *ks__thread_flush_op(void *opaque);
/** The consumed offsets with their metadata, as a new list. */
rd_kafka_topic_partition_list_t *ks__thread_offset_list(
        const ks_task_offset_t *offsets,
        int cnt);
/** @p offsets moved past the records the consumer skipped (markers,
 *  aborted records) where a partition's records are all processed
 *  (KAFKA-6607). @returns a new array (free()). */
ks_task_offset_t *ks__thread_with_positions(ks_stream_thread_t *t,
                                            const ks_task_offset_t *offsets,
                                            int cnt,
                                            int *out_cnt);
/** Records @p cnt committed offsets on the thread's partitions. */
void ks__thread_offsets_committed(ks_stream_thread_t *t,
                                  const ks_task_offset_t *offsets,
                                  int cnt);
/** Makes the thread's producer (transactional under exactly_once_v2). */
rd_kafka_t *ks__thread_make_producer(ks_stream_thread_t *t,
                                     char *errstr,
                                     size_t size);

/* ---- thread_txn.c: exactly_once_v2 ---------------------------------------
 */

/** Sets up the transaction state and, on the thread's producer,
 *  init_transactions() (which fences an older producer with the same id
 *  and aborts its open transaction). Retries while the broker is away,
 *  until the instance stops. */
ks_error_t *ks__txn_init(ks_stream_thread_t *t);
/** Begins a transaction if none is open. @returns false if it cannot be
 *  (the recovery is then due). */
bool ks__txn_ensure_begun(ks_stream_thread_t *t);
/** Marks the transaction for an abort (or, @p producer_dead, the producer
 *  for recreation), with the cause (printf). */
void ks__txn_fail(ks_stream_thread_t *t,
                  bool producer_dead,
                  const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));
/** True when an abort or a new producer is due. */
bool ks__txn_recovery_due(const ks_stream_thread_t *t);
/** The commit protocol's Kafka steps in a transaction. */
void ks__txn_commit_ops(ks_stream_thread_t *t, ks_commit_ops_t *ops);
/** Aborts the open transaction now (its records purged), without touching
 *  the tasks. @returns false if the producer is unusable. */
bool ks__txn_abort(ks_stream_thread_t *t);
/** The loop's part: aborts (or recreates the producer), closes every task
 *  without committing, rewinds the input to the committed offsets and
 *  lets the tasks be recreated from their stores. @returns an error only
 *  when the thread must fail. */
ks_error_t *ks__txn_recover(ks_stream_thread_t *t);
/** At the thread's end: aborts a transaction still open. */
void ks__txn_close(ks_stream_thread_t *t);

/* ---- thread_obs.c: what GET /metrics needs of a thread ---------------- */

/** Sets the consumer's statistics callback (per-partition lag), and
 *  statistics.interval.ms to 5000 when http.listen is set, before the
 *  user's properties (which may change it). @locality any, before
 *  rd_kafka_new() */
bool ks__obs_consumer_conf(ks_stream_thread_t *t,
                           rd_kafka_conf_t *c,
                           char *errstr,
                           size_t errstr_size);
/** Copies the histograms for readers. Called with t->mlock held. */
void ks__obs_publish_locked(ks_stream_thread_t *t);
void ks__obs_fini(ks_stream_thread_t *t);

/* ---- collector.c ---------------------------------------------------------
 */

ks_error_t *ks__collector_init(ks_record_collector_t *c, ks_stream_thread_t *t);
void ks__collector_fini(ks_record_collector_t *c);
/** librdkafka's delivery report callback for the thread's producer. */
void ks__collector_dr_cb(rd_kafka_t *rk,
                         const rd_kafka_message_t *m,
                         void *opaque);
/** Waits for every record sent to be acknowledged, at most @p timeout_ms.
 *  @returns NULL, or why the commit must not go on. */
ks_error_t *ks__collector_flush(ks_record_collector_t *c, int timeout_ms);
/** Drops every record not yet delivered (a dirty close). */
void ks__collector_purge(ks_record_collector_t *c);

/* ---- changelog_reader.c ------------------------------------------------- */

typedef enum ks_restore_add_e {
        KS_RESTORE_ADDED,      /* restoring: wait for it to finish */
        KS_RESTORE_UP_TO_DATE, /* nothing to replay */
        KS_RESTORE_CORRUPT,    /* a checkpoint past the changelog's end */
        KS_RESTORE_ADD_FAILED, /* *errp set */
} ks_restore_add_t;

ks_error_t *ks__reader_init(ks_changelog_reader_t *r, ks_stream_thread_t *t);
void ks__reader_fini(ks_changelog_reader_t *r);
/** Registers every store of @p mt with the reader. */
ks_restore_add_t ks__reader_add(ks_stream_thread_t *t,
                                managed_task_t *mt,
                                ks_error_t **errp);
/** Forgets @p mt's partitions (its task closes). */
void ks__reader_remove(ks_stream_thread_t *t, managed_task_t *mt);
/** True while any store is restoring. */
bool ks__reader_active(const ks_changelog_reader_t *r);
/** Applies up to one batch of changelog records, waiting at most
 *  @p timeout_ms for them, and marks the tasks whose stores are all
 *  restored (ks__reader_task_done()). */
ks_error_t *ks__reader_step(ks_stream_thread_t *t, int timeout_ms);
/** True if every store of @p mt is restored (then forgets them). */
bool ks__reader_task_done(ks_stream_thread_t *t, managed_task_t *mt);
/** Changelog records still to replay, over every restoring store. */
int64_t ks__reader_remaining(const ks_changelog_reader_t *r);

/* ---- task_manager.c ---------------------------------------------------- */

/** The assignment callback's part: records the new partitions, assigns
 *  them and pauses them until their tasks run. @locality rebalance cb */
ks_error_t *ks__tm_on_assigned(ks_stream_thread_t *t,
                               const rd_kafka_topic_partition_list_t *parts);
/** The revocation callback's part: commits (unless the thread failed),
 *  then suspends the running tasks, or closes them all if the commit did
 *  not go through. @locality rebalance cb */
void ks__tm_on_revoked(ks_stream_thread_t *t);
/** Creates the tasks of newly assigned partitions, closes suspended tasks
 *  that were not assigned again, and starts restorations. */
ks_error_t *ks__tm_handle_assignment(ks_stream_thread_t *t);
/** Moves restored tasks to RUNNING. */
ks_error_t *ks__tm_finish_restoration(ks_stream_thread_t *t);
/** Closes every task and forgets the assignment; @p clean: after a
 *  successful commit (else their uncommitted state is dropped). */
void ks__tm_close_all(ks_stream_thread_t *t, bool clean);
/** An internal record was lost: closes every task without committing,
 *  rewinds the consumer to the committed offsets and recreates the tasks
 *  from their checkpoints. */
ks_error_t *ks__tm_recover_corrupted(ks_stream_thread_t *t);
/** Closes every task without committing and rewinds the assigned
 *  partitions to their committed offsets; the loop recreates the tasks
 *  from their stores (the records in flight must have been purged). */
ks_error_t *ks__tm_rewind(ks_stream_thread_t *t, const char *why);
/** The running tasks (borrowed array, valid until the next call). */
int ks__tm_running(ks_stream_thread_t *t, ks_task_t ***out);

#endif
