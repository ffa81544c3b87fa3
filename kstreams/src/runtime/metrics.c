/* Adding up metrics: the one place that knows every field's kind. */
#include "streams_int.h"

void ks__metrics_add(ks_streams_metrics_t *out, const ks_streams_metrics_t *m) {
        /* Every field is a uint64_t sum, except the one maximum. */
        uint64_t *o       = (uint64_t *)out;
        const uint64_t *a = (const uint64_t *)m;
        uint64_t max = out->commit_latency_ms_max > m->commit_latency_ms_max
                               ? out->commit_latency_ms_max
                               : m->commit_latency_ms_max;
        for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
                o[i] += a[i];
        out->commit_latency_ms_max = max;
}
