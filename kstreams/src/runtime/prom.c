/* The Prometheus text exposition format, version 0.0.4: HELP and TYPE
 * lines, samples, label escaping and histograms. Pure text: no instance,
 * so the unit tests parse its output back. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics_int.h"

const double ks__hist_bounds[KS_HIST_BUCKETS] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5,   1,      2.5,   5,    10,    30,   60,  300};

void ks__hist_observe_ms(ks_histogram_t *h, int64_t ms) {
        if (ms < 0)
                ms = 0;
        /* Bounds are in seconds; a whole number of ms is at most bound b
         * when ms <= b * 1000 (exact for these bounds). */
        int i = 0;
        while (i < KS_HIST_BUCKETS &&
               (double)ms > ks__hist_bounds[i] * 1000.0 + 1e-9)
                i++;
        if (i < KS_HIST_BUCKETS)
                h->counts[i]++;
        else
                h->over++;
        h->count++;
        h->sum_ms += (uint64_t)ms;
}

void ks__hist_add(ks_histogram_t *a, const ks_histogram_t *b) {
        for (int i = 0; i < KS_HIST_BUCKETS; i++)
                a->counts[i] += b->counts[i];
        a->over += b->over;
        a->count += b->count;
        a->sum_ms += b->sum_ms;
}

static ks_err_t escape(ks_buf_t *out, const char *v, bool quote) {
        for (const char *p = v; *p; p++) {
                ks_err_t err;
                if (*p == '\\')
                        err = ks_buf_append(out, "\\\\", 2);
                else if (*p == '\n')
                        err = ks_buf_append(out, "\\n", 2);
                else if (quote && *p == '"')
                        err = ks_buf_append(out, "\\\"", 2);
                else
                        err = ks_buf_append(out, p, 1);
                if (err)
                        return err;
        }
        return KS_OK;
}

ks_err_t ks__prom_escape_label(ks_buf_t *out, const char *v) {
        return escape(out, v, true);
}

ks_err_t ks__prom_label(ks_buf_t *labels, const char *k, const char *v) {
        ks_err_t err =
                ks_buf_appendf(labels, "%s%s=\"", labels->len ? "," : "", k);
        if (!err)
                err = escape(labels, v, true);
        return err ? err : ks_buf_append(labels, "\"", 1);
}

ks_err_t ks__prom_header(ks_buf_t *out,
                         const char *name,
                         const char *help,
                         ks_metric_type_t type) {
        static const char *const types[] = {"counter", "gauge", "histogram"};
        ks_err_t err = ks_buf_appendf(out, "# HELP kstreams_%s ", name);
        if (!err)
                err = escape(out, help, false);
        if (!err)
                err = ks_buf_appendf(out, "\n# TYPE kstreams_%s %s\n", name,
                                     types[type]);
        return err;
}

/* Integers as integers (exact below 2^53); others with enough digits. */
static ks_err_t value(ks_buf_t *out, double v) {
        if (isnan(v))
                return ks_buf_append(out, "NaN", 3);
        if (isinf(v))
                return ks_buf_appendf(out, "%s", v > 0 ? "+Inf" : "-Inf");
        if (v == floor(v) && fabs(v) < 9007199254740992.0)
                return ks_buf_appendf(out, "%.0f", v);
        return ks_buf_appendf(out, "%.9g", v);
}

ks_err_t ks__prom_sample(ks_buf_t *out,
                         const char *name,
                         const char *suffix,
                         const char *labels,
                         double v) {
        ks_err_t err = ks_buf_appendf(out, "kstreams_%s%s", name, suffix);
        if (!err && labels && *labels)
                err = ks_buf_appendf(out, "{%s}", labels);
        if (!err)
                err = ks_buf_append(out, " ", 1);
        if (!err)
                err = value(out, v);
        return err ? err : ks_buf_append(out, "\n", 1);
}

ks_err_t ks__prom_histogram(ks_buf_t *out,
                            const char *name,
                            const char *labels,
                            const ks_histogram_t *h) {
        const char *sep = labels && *labels ? "," : "";
        uint64_t cum    = 0;
        ks_err_t err    = KS_OK;
        for (int i = 0; i <= KS_HIST_BUCKETS && !err; i++) {
                char le[32];
                if (i < KS_HIST_BUCKETS) {
                        cum += h->counts[i];
                        snprintf(le, sizeof(le), "%g", ks__hist_bounds[i]);
                } else {
                        cum += h->over;
                        snprintf(le, sizeof(le), "+Inf");
                }
                err = ks_buf_appendf(out,
                                     "kstreams_%s_bucket{%s%sle=\"%s\"} "
                                     "%llu\n",
                                     name, labels ? labels : "", sep, le,
                                     (unsigned long long)cum);
        }
        if (!err)
                err = ks__prom_sample(out, name, "_sum", labels,
                                      (double)h->sum_ms / 1000.0);
        if (!err)
                err = ks__prom_sample(out, name, "_count", labels,
                                      (double)h->count);
        return err;
}
