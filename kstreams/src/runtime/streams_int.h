/* The Kafka runtime's internals: the instance and its stream threads. */
#ifndef KS_STREAMS_INT_H
#define KS_STREAMS_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "conf_int.h"
#include "fs_int.h"
#include "kstreams/streams.h"
#include "task_int.h"

typedef struct ks_stream_thread_s ks_stream_thread_t;
struct ks_state_env_s;

/** The tasks whose stores this instance serves to interactive queries
 *  (iq.c). */
typedef struct ks_iq_s {
        pthread_mutex_t lock;
        pthread_cond_t released; /* a task's last query ended */
        struct ks_iq_task_s **tasks;
        int task_cnt;
        int task_cap;
        int32_t *sub_partitions; /* per sub-topology; 0: not known yet */
} ks_iq_t;

/**
 * Deletes the task directories in @p app_dir that no one holds (their LOCK
 * is free) and that nothing wrote to for @p delay_ms. @returns how many.
 */
int ks__state_cleanup(const char *app_dir, int64_t delay_ms, int64_t now_ms);

/** A user callback call waiting to be made (streams.c). */
typedef struct ks_streams_event_s {
        struct ks_streams_event_s *next;
        ks_state_t new_state, old_state;
        ks_error_t *error; /* an error-handler call (owned); NULL: the state
                            * listener's */
} ks_streams_event_t;

struct ks_streams_s {
        const ks_topology_t *topology;
        ks_conf_t *conf;
        const char *application_id;
        /* processing.guarantee=exactly_once_v2 (thread_txn.c). */
        bool eos;
        int64_t commit_interval_ms; /* the effective one (100 under EOS) */
        /* Kept in <state.dir>/<application.id>/kstreams.instance.id: a
         * restarted instance has the same transactional ids, and its
         * init_transactions() fences its own zombie at once. */
        char instance_id[40];
        char **subscription; /* topics and ^patterns */
        int subscription_cnt;
        ks_stream_thread_t **threads;
        int thread_cnt;
        pthread_mutex_t lock; /* state, events, delivering */
        ks_state_t state;
        /* User callback calls in the order of the transitions that made
         * them; made, with lock released, by the one thread delivering. */
        ks_streams_event_t *events, *events_tail;
        bool delivering;
        ks_state_listener_fn *state_listener;
        void *state_opaque;
        ks_error_handler_fn *error_handler;
        void *error_opaque;
        atomic_bool stop;
        /* ks_streams_close()'s deadline (ks_now_ms()), 0 while running:
         * threads bound their flushes and sends by it. */
        _Atomic int64_t close_deadline;
        atomic_bool closed_late; /* a thread closed without committing */
        atomic_int running_threads;
        ks_streams_metrics_t closed; /* metrics of tasks already closed */
        atomic_int state_seen;       /* s->state, readable without s->lock */
        ks_iq_t iq;
        struct ks_http_s *http; /* the HTTP endpoint, or NULL */
        atomic_int http_port;   /* its port; -1 without one */
};

/** Moves the instance to @p state and calls the listener (with no lock
 *  held; if another thread is calling a callback of this instance, that
 *  thread makes the call, after the one it is making). */
void ks__streams_set_state(ks_streams_t *s, ks_state_t state);
/** Called by a thread that fails for good. Takes ownership of @p err. */
void ks__streams_thread_failed(ks_streams_t *s, ks_error_t *err);
/** Re-evaluates RUNNING vs REBALANCING from the threads' states. */
void ks__streams_update_state(ks_streams_t *s);

/* ---- exactly-once (thread_txn.c, instance_id.c) ------------------------ */

/** commit.interval.ms's default under exactly_once_v2, as Kafka Streams'. */
#define KS_EOS_COMMIT_INTERVAL_MS 100
/** transaction.timeout.ms's default under exactly_once_v2, as Kafka
 *  Streams': also how long a crashed instance's open transaction blocks
 *  read_committed readers when no restart with its instance id fences it. */
#define KS_EOS_TXN_TIMEOUT_MS 10000
/** The producer's transaction.timeout.ms as configured (or our default). */
int64_t ks__txn_timeout_ms(const ks_conf_t *conf);
/** Fails (non-zero, @p errstr set) when transaction.timeout.ms leaves no
 *  margin over @p commit_interval_ms: a transaction stays open for about
 *  a commit interval plus the commit itself. */
int ks__check_txn_timeout(const ks_conf_t *conf,
                          int64_t commit_interval_ms,
                          char *errstr,
                          size_t errstr_size);
/** Reads the instance id kept in @p app_dir, creating both (a random one)
 *  the first time. */
ks_error_t *ks__instance_id_load(const char *app_dir, char *out, size_t size);

/** Applies the librdkafka properties for @p side to @p rdconf. */
ks_error_t *ks__rdkafka_conf(const ks_conf_t *conf,
                             ks_conf_side_t side,
                             rd_kafka_conf_t *rdconf);

ks_stream_thread_t *ks__stream_thread_new(ks_streams_t *s,
                                          int index,
                                          char *errstr,
                                          size_t errstr_size);
ks_error_t *ks__stream_thread_start(ks_stream_thread_t *t);
void ks__stream_thread_join(ks_stream_thread_t *t);
void ks__stream_thread_destroy(ks_stream_thread_t *t);
bool ks__stream_thread_assigned(const ks_stream_thread_t *t);
/** Adds the thread's live counters to @p out. */
void ks__stream_thread_metrics(ks_stream_thread_t *t,
                               ks_streams_metrics_t *out);
/** Adds @p m to @p out: sums, and the larger maximum (metrics.c). */
void ks__metrics_add(ks_streams_metrics_t *out, const ks_streams_metrics_t *m);
/** Adds one task's counters to @p out. */
void ks__metrics_add_task(ks_streams_metrics_t *out,
                          const ks_task_metrics_t *m);

/** A thread's consumer, a client the instance can ask for metadata from
 *  any thread (unlike its producer, it lives as long as the thread). */
rd_kafka_t *ks__stream_thread_client(ks_stream_thread_t *t);
/** One thread's view for the exposition: its metrics, histograms and
 *  lag, copied under its lock (thread_obs.c). *view's lag array is new:
 *  free with ks__thread_view_free(). */
struct ks_thread_view_s;
ks_err_t ks__stream_thread_view(ks_stream_thread_t *t,
                                struct ks_thread_view_s *view);
void ks__thread_view_free(struct ks_thread_view_s *view);

/* ---- the HTTP endpoint (http/): called by streams.c ------------------ */

/** Starts the endpoint if http.listen is set; if application.server is
 *  not, sets it to the listening address (unless it listens on every
 *  interface). Before the stream threads exist. */
ks_error_t *ks__http_start(ks_streams_t *s);
/** Stops it (waiting for the requests being answered). Accepts none. */
void ks__http_stop(ks_streams_t *s);

/** The thread's consumer's group member id (free with rd_kafka_mem_free;
 *  NULL before it joined). Safe from any thread. */
char *ks__stream_thread_member_id(ks_stream_thread_t *t);

/* ---- interactive queries (iq.c) --------------------------------------- */

void ks__iq_init(ks_iq_t *iq);
/** Once no task is registered any more. */
void ks__iq_fini(ks_iq_t *iq);
/**
 * Registers @p task, whose stores are in @p env, as restoring: queries of
 * its partition fail with a retriable error until ks__iq_task_ready().
 * @locality stream thread, before restoring the task.
 */
ks_error_t *ks__iq_task_add(ks_streams_t *s,
                            const ks_task_t *task,
                            struct ks_state_env_s *env);
/** The task is restored: queries may read it. @locality stream thread */
void ks__iq_task_ready(ks_streams_t *s, const ks_task_t *task);
/**
 * Unregisters @p task (a no-op if it is not registered), waiting for the
 * queries that read it to end: afterwards its environment may be closed.
 * @locality stream thread, before closing the task.
 */
void ks__iq_task_remove(ks_streams_t *s, const ks_task_t *task);

/** Remembers each sub-topology's task count as start-up planned it (a
 *  count of 0: unknown, asked of the cluster when needed). Copies. */
void ks__iq_set_partitions(ks_streams_t *s, const int32_t *sub_partitions);
/** The sub-topology and partition of @p key in @p store, with the checks
 *  of a query (iq.c). */
ks_error_t *ks__iq_key_partition(ks_streams_t *s,
                                 const char *store,
                                 ks_bytes_t key,
                                 int *sub,
                                 int32_t *partition);

/** Start-up checks and internal topics (admin.c). */
ks_error_t *ks__streams_prepare_topics(ks_streams_t *s);

#endif
