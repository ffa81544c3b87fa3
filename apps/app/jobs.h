/**
 * @file jobs.h
 * @brief The analytics jobs of kstreams-app: each job is one function that
 *        adds its part to a topology, using only the public kstreams API.
 *
 * Every topology starts the same way (jobs_build()): the events topic,
 * read with valid_event_serde() and the event's own timestamp, so invalid
 * events fail deserialization and go to the dead-letter topic with the
 * reason in the `__streams.errors.message` header; then deduplication
 * by event_id (ks_stream_deduplicate(), a changelogged window store per
 * task), which keeps the key, so sessions need no repartition. Each job
 * then groups, windows, aggregates, suppresses until its windows close, and
 * writes one JSON value per window to the output topic, keyed by its group key.
 */
#ifndef KS_APP_JOBS_H
#define KS_APP_JOBS_H

#include <stdatomic.h>

#include <kstreams/kstreams.h>

typedef enum job_kind_e {
        JOB_EVENT_COUNT,
        JOB_REVENUE,
        JOB_SESSIONS,
        JOB__COUNT
} job_kind_t;

/** "event-count", "revenue", "sessions". */
const char *job_name(job_kind_t kind);
/** @returns false if @p name is no job. */
bool job_parse(const char *name, job_kind_t *out);
/** The name of the job's repartition (its topic is
 *  <application.id>-<name>-repartition), or NULL: sessions group by the
 *  record key and repartition nothing. */
const char *job_repartition_name(job_kind_t kind);

/** Counters a topology updates, read by the statistics line. */
typedef struct job_stats_s {
        atomic_uint_fast64_t seen;    /**< valid events reaching dedup */
        atomic_uint_fast64_t emitted; /**< results written */
        int64_t dedup_window_ms;      /**< set by jobs_build() */
} job_stats_t;

typedef struct job_opts_s {
        const char *input_topic;  /**< user-events */
        const char *output_topic; /**< event-analytics */
        int64_t window_ms; /**< tumbling windows (event-count, revenue) */
        int64_t grace_ms;
        int64_t session_gap_ms;
        int64_t dedup_window_ms; /**< 0: no deduplication */
        /** libpq connection string: each job also upserts its results
         *  into its table (event_counts, revenue, user_sessions of
         *  infra/postgres/schema.sql) through ks_stream_to_postgres().
         *  NULL: Kafka only. */
        const char *postgres_dsn;
} job_opts_t;

/** Adds the event-count job below @p events (valid, deduplicated). */
void job_event_count(ks_stream_t *events,
                     const job_opts_t *o,
                     job_stats_t *stats);
/** Adds the revenue job below @p events. */
void job_revenue(ks_stream_t *events, const job_opts_t *o, job_stats_t *stats);
/** Adds the sessions job below @p events. */
void job_sessions(ks_stream_t *events, const job_opts_t *o, job_stats_t *stats);

/**
 * Builds one topology running the @p n jobs of @p kinds over one shared
 * source and deduplication. @p stats (borrowed; it must outlive the
 * topology) receives the counters. Names of nodes, stores and repartition
 * topics start with the job's name, so that jobs can share one application id.
 * @returns a new topology (ks_topology_destroy()), or NULL with @p errstr.
 */
ks_topology_t *jobs_build(const job_kind_t *kinds,
                          size_t n,
                          const job_opts_t *o,
                          job_stats_t *stats,
                          char *errstr,
                          size_t errstr_size);

/**
 * Returns a new serde of `const user_event_t *` (user_event_serde.h) that
 * also enforces the analytics rules: a known event_type (page_view,
 * button_click, form_submit, purchase, add_to_cart, remove_from_cart,
 * search, login, logout, signup), and for a purchase a data.amount >= 0 and
 * a data.currency of 3 ASCII letters. A breach is KS_ERR_SERDE with the
 * reason ("invalid event: unknown event_type \"x\"").
 */
ks_serde_t *valid_event_serde(void);

#endif
