/* The one table of metrics: every field of ks_streams_metrics_t and every
 * series of GET /metrics is a line below. Adding a counter: a field at the
 * end of ks_streams_metrics_t (streams.h) and one line here; the sums over
 * tasks and threads, the public getter and the exposition follow from the
 * table (a unit test fails when a field has no line). */
#include <string.h>

#include "metrics_int.h"
#include "streams_int.h"

#define F(f) offsetof(ks_streams_metrics_t, f)
#define T(f) offsetof(ks_task_metrics_t, f)
#define N    KS_NO_FIELD
#define C    KS_METRIC_COUNTER
#define G    KS_METRIC_GAUGE
#define H    KS_METRIC_HISTOGRAM

/* clang-format off */
const ks_metric_desc_t ks__metric_descs[] = {
/* name                            type labels  field                          task field                 agg         scale  emit */
{"records_consumed_total",          C, NULL, F(records_consumed),           T(records_consumed),       KS_AGG_SUM, 1,     NULL, "Records taken from the input topics."},
{"records_processed_total",         C, NULL, F(records_processed),          T(records_processed),      KS_AGG_SUM, 1,     NULL, "Records that went through their sub-topology."},
{"records_produced_total",          C, NULL, F(records_produced),           T(records_produced),       KS_AGG_SUM, 1,     NULL, "Records sent by sinks."},
{"dropped_records_total",           C, "reason=\"deserialization\"", F(dropped_deserialization), T(dropped_deserialization), KS_AGG_SUM, 1, NULL, "Records dropped, by reason: deserialization and processing failures handled by log-and-continue or dead-letter, failed deliveries, records for windows already closed (late), null keys or values an aggregation skips, duplicates a deduplication drops."},
{"dropped_records_total",           C, "reason=\"processing\"", F(dropped_processing),  T(dropped_processing),     KS_AGG_SUM, 1,     NULL, NULL},
{"dropped_records_total",           C, "reason=\"production\"", F(dropped_production),  T(dropped_production),     KS_AGG_SUM, 1,     NULL, NULL},
{"dropped_records_total",           C, "reason=\"late\"",    F(dropped_late),           T(dropped_late),           KS_AGG_SUM, 1,     NULL, NULL},
{"dropped_records_total",           C, "reason=\"skipped\"", F(dropped_skipped),        T(dropped_skipped),        KS_AGG_SUM, 1,     NULL, NULL},
{"dropped_records_total",           C, "reason=\"dedup\"",   F(dropped_dedup),          T(dropped_dedup),          KS_AGG_SUM, 1,     NULL, NULL},
{"dead_lettered_records_total",     C, NULL, F(dead_lettered),              T(dead_lettered),          KS_AGG_SUM, 1,     NULL, "Records sent to the dead-letter topic."},
{"punctuations_total",              C, NULL, F(punctuations),               T(punctuations),           KS_AGG_SUM, 1,     NULL, "Punctuator calls."},
{"restored_records_total",          C, NULL, F(records_restored),           N,                         KS_AGG_SUM, 1,     NULL, "Changelog records replayed into stores."},
{"restore_seconds_total",           C, NULL, F(restore_ms),                 N,                         KS_AGG_SUM, 0.001, NULL, "Time spent restoring stores."},
{"commits_total",                   C, NULL, F(commits),                    N,                         KS_AGG_SUM, 1,     NULL, "Commits that went through."},
{"commit_failures_total",           C, NULL, F(commit_failures),            N,                         KS_AGG_SUM, 1,     NULL, "Commits that did not go through (postponed or failing the thread)."},
{"commit_time_seconds_total",       C, NULL, F(commit_latency_ms_total),    N,                         KS_AGG_SUM, 0.001, NULL, "Time spent in commits that went through."},
{"commit_latency_max_seconds",      G, NULL, F(commit_latency_ms_max),      N,                         KS_AGG_MAX, 0.001, NULL, "The longest commit so far."},
{"rebalances_total",                C, NULL, F(rebalances),                 N,                         KS_AGG_SUM, 1,     NULL, "Rebalances (assignments) the thread went through."},
{"assigned_partitions",             G, NULL, F(assigned_partitions),        N,                         KS_AGG_SUM, 1,     NULL, "Input partitions assigned now."},
{"active_tasks",                    G, NULL, F(active_tasks),               N,                         KS_AGG_SUM, 1,     NULL, "Tasks the thread has now."},
{"record_cache_puts_total",         C, NULL, F(cache_puts),                 T(cache_puts),             KS_AGG_SUM, 1,     NULL, "Store changes given to the record caches."},
{"record_cache_flushed_total",      C, NULL, F(cache_flushed),              T(cache_flushed),          KS_AGG_SUM, 1,     NULL, "Cached changes logged and sent downstream (the rest collapsed into later ones)."},
{"restoring_tasks",                 G, NULL, F(restoring_tasks),            N,                         KS_AGG_SUM, 1,     NULL, "Tasks restoring their stores now."},
{"restore_remaining_records",       G, NULL, F(restore_records_remaining),  N,                         KS_AGG_SUM, 1,     NULL, "Changelog records still to replay."},
{"tasks_corrupted_total",           C, NULL, F(tasks_corrupted),            N,                         KS_AGG_SUM, 1,     NULL, "Tasks closed dirty and recreated after an internal record was lost."},
{"changelog_records_undone_total",  C, NULL, F(changelog_records_undone),   N,                         KS_AGG_SUM, 1,     NULL, "Uncommitted changelog records written back with committed values while restoring."},
{"enforced_processing_total",       C, NULL, F(enforced_processing),        T(enforced_processing),    KS_AGG_SUM, 1,     NULL, "Records processed while another input of their task was empty (max.task.idle.ms)."},
{"poll_seconds_total",              C, NULL, F(poll_time_us),               N,                         KS_AGG_SUM, 1e-6,  NULL, "Time stream threads waited in their consumer's poll."},
{"process_seconds_total",           C, NULL, F(process_time_us),            N,                         KS_AGG_SUM, 1e-6,  NULL, "Time stream threads spent processing and punctuating."},
{"transactions_committed_total",    C, NULL, F(transactions_committed),     N,                         KS_AGG_SUM, 1,     NULL, "exactly_once_v2: Kafka transactions committed."},
{"transactions_aborted_total",      C, NULL, F(transactions_aborted),       N,                         KS_AGG_SUM, 1,     NULL, "exactly_once_v2: transactions aborted (the thread's tasks restart from the last commit)."},
{"producers_recreated_total",       C, NULL, F(producers_recreated),        N,                         KS_AGG_SUM, 1,     NULL, "exactly_once_v2: transactional producers made again after being fenced or failing fatally."},
{"commit_latency_seconds",          H, NULL, N,                             N,                         KS_AGG_SUM, 1,     ks__emit_commit_latency, "Commit latency: flush, then offsets."},
{"e2e_latency_seconds",             H, NULL, N,                             N,                         KS_AGG_SUM, 1,     ks__emit_e2e, "End-to-end latency: from a record's timestamp to its production to an output topic."},
{"record_cache_hit_ratio",          G, NULL, N,                             N,                         KS_AGG_SUM, 1,     ks__emit_cache_ratio, "Share of record cache puts that found their key cached (collapsed into one change), since start; absent before the first put."},
{"consumer_lag_records",            G, NULL, N,                             N,                         KS_AGG_SUM, 1,     ks__emit_lag, "Records between the committed offset and the end of each input partition (librdkafka's statistics, every statistics.interval.ms)."},
{"store_size_bytes",                G, NULL, N,                             N,                         KS_AGG_SUM, 1,     ks__emit_store_size, "LMDB pages a store's databases use in its task's environment, in bytes."},
{"state",                           G, NULL, N,                             N,                         KS_AGG_SUM, 1,     ks__emit_state, "1 for the instance's state, 0 for the others."},
{"http_port",                       G, NULL, N,                             N,                         KS_AGG_SUM, 1,     ks__emit_http_port, "The port of this HTTP endpoint."},
};
/* clang-format on */
const size_t ks__metric_desc_cnt =
        sizeof(ks__metric_descs) / sizeof(ks__metric_descs[0]);

static uint64_t *word(void *base, size_t off) {
        return (uint64_t *)((char *)base + off);
}

void ks__metrics_add(ks_streams_metrics_t *out, const ks_streams_metrics_t *m) {
        for (size_t i = 0; i < ks__metric_desc_cnt; i++) {
                const ks_metric_desc_t *d = &ks__metric_descs[i];
                if (d->field == KS_NO_FIELD)
                        continue;
                uint64_t *o = word(out, d->field);
                uint64_t v  = *word((void *)m, d->field);
                if (d->agg == KS_AGG_MAX)
                        *o = *o > v ? *o : v;
                else
                        *o += v;
        }
}

void ks__metrics_add_task(ks_streams_metrics_t *out,
                          const ks_task_metrics_t *m) {
        for (size_t i = 0; i < ks__metric_desc_cnt; i++) {
                const ks_metric_desc_t *d = &ks__metric_descs[i];
                if (d->task_field != KS_NO_FIELD)
                        *word(out, d->field) += *word((void *)m, d->task_field);
        }
}

/* The size of ks_streams_metrics_t in 0.1 (26 fields), for programs built
 * before ks_streams_metrics() became a macro. */
#define METRICS_V1_SIZE (26 * sizeof(uint64_t))

void ks_streams_metrics_get(const ks_streams_t *s,
                            ks_streams_metrics_t *out,
                            size_t size) {
        ks_streams_metrics_t all;
        memset(&all, 0, sizeof(all));
        for (int i = 0; i < s->thread_cnt; i++)
                ks__stream_thread_metrics(s->threads[i], &all);
        size_t n = size < sizeof(all) ? size : sizeof(all);
        memcpy(out, &all, n);
        if (size > n)
                memset((char *)out + n, 0, size - n);
}

#undef ks_streams_metrics
KS_EXPORT void ks_streams_metrics(const ks_streams_t *s,
                                  ks_streams_metrics_t *out);
void ks_streams_metrics(const ks_streams_t *s, ks_streams_metrics_t *out) {
        ks_streams_metrics_get(s, out, METRICS_V1_SIZE);
}
