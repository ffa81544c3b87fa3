/* Metrics: the one table of what an instance measures (metrics.c), the
 * histograms the stream threads fill, and the Prometheus text writer
 * (prom.c) that GET /metrics and ks_streams_metrics_prometheus() use. */
#ifndef KS_METRICS_INT_H
#define KS_METRICS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kstreams/common.h"
#include "kstreams/streams.h"

/* ---- histograms ------------------------------------------------------- */

/* Upper bounds in seconds, shared by every histogram: from a millisecond
 * (a commit with nothing to flush) to five minutes (end-to-end latency of
 * a replay). Observations are whole milliseconds. */
#define KS_HIST_BUCKETS 16
extern const double ks__hist_bounds[KS_HIST_BUCKETS];

typedef struct ks_histogram_s {
        uint64_t counts[KS_HIST_BUCKETS]; /* per bucket, not cumulative */
        uint64_t over;                    /* above the last bound */
        uint64_t count;
        uint64_t sum_ms;
} ks_histogram_t;

/** Counts one observation of @p ms milliseconds (negative: 0). */
void ks__hist_observe_ms(ks_histogram_t *h, int64_t ms);
/** Adds @p b's observations to @p a. */
void ks__hist_add(ks_histogram_t *a, const ks_histogram_t *b);

/* ---- what a stream thread adds (thread_obs.c) --------------------------- */

typedef struct ks_lag_s {
        char *topic;
        int32_t partition;
        int64_t lag;
} ks_lag_t;

typedef struct ks_thread_obs_s {
        /* Filled by the stream thread. */
        ks_histogram_t commit, e2e;
        /* Copies for other threads, under the thread's mlock. */
        ks_histogram_t pub_commit, pub_e2e;
        ks_lag_t *lag; /* from the consumer's last statistics */
        int lag_cnt;
} ks_thread_obs_t;

/** A monotonic clock in microseconds. */
uint64_t ks__mono_us(void);

/* ---- the descriptor table --------------------------------------------- */

typedef enum ks_metric_type_e {
        KS_METRIC_COUNTER,
        KS_METRIC_GAUGE,
        KS_METRIC_HISTOGRAM,
} ks_metric_type_t;

/* How a field of ks_streams_metrics_t adds up over threads. */
typedef enum ks_metric_agg_e {
        KS_AGG_SUM,
        KS_AGG_MAX,
} ks_metric_agg_t;

/* What one thread shows, copied under its lock (metrics_expo.c). */
typedef struct ks_thread_view_s ks_thread_view_t;
/* Where the text goes and what is around it (metrics_expo.c). */
typedef struct ks_expo_s ks_expo_t;

/** Writes the series of a metric that is not a plain field (histograms,
 *  the state, lag, store sizes). */
typedef ks_err_t(ks_metric_emit_fn)(ks_expo_t *x, const char *name);

/* Emitters of the series that are not fields (metrics_expo.c). */
ks_metric_emit_fn ks__emit_state, ks__emit_commit_latency, ks__emit_e2e,
        ks__emit_lag, ks__emit_store_size, ks__emit_cache_ratio,
        ks__emit_http_port;

#define KS_NO_FIELD ((size_t)-1)

typedef struct ks_metric_desc_s {
        const char *name; /* after "kstreams_", in base units */
        ks_metric_type_t type;
        const char *labels; /* fixed labels: `reason="late"`; NULL */
        size_t field;       /* offsetof(ks_streams_metrics_t); KS_NO_FIELD */
        size_t task_field;  /* offsetof(ks_task_metrics_t); KS_NO_FIELD */
        ks_metric_agg_t agg;
        double scale;            /* field unit -> base unit (ms: 0.001) */
        ks_metric_emit_fn *emit; /* when field is KS_NO_FIELD */
        const char *help;
} ks_metric_desc_t;

/** The table (metrics.c): entries of one name are consecutive. */
extern const ks_metric_desc_t ks__metric_descs[];
extern const size_t ks__metric_desc_cnt;

/* ---- Prometheus text format (prom.c) ---------------------------------- */

/** Appends @p v with \\, " and newline escaped as a label value needs. */
ks_err_t ks__prom_escape_label(ks_buf_t *out, const char *v);
/** "# HELP" and "# TYPE" lines; HELP escapes \\ and newline. */
ks_err_t ks__prom_header(ks_buf_t *out,
                         const char *name,
                         const char *help,
                         ks_metric_type_t type);
/** One sample: name{labels} value. @p labels is "" or already formed
 *  `k="v",...` text (its values escaped). */
ks_err_t ks__prom_sample(ks_buf_t *out,
                         const char *name,
                         const char *suffix,
                         const char *labels,
                         double value);
/** The _bucket (with le, cumulative, +Inf last), _sum and _count samples
 *  of @p h, in seconds. */
ks_err_t ks__prom_histogram(ks_buf_t *out,
                            const char *name,
                            const char *labels,
                            const ks_histogram_t *h);
/** Appends `,k="v"` (or `k="v"` to an empty @p labels), escaping v. */
ks_err_t ks__prom_label(ks_buf_t *labels, const char *k, const char *v);

#endif
