/* The exposition's working state, shared by metrics_expo.c and the
 * stream thread's part (thread_obs.c). */
#ifndef KS_METRICS_EXPO_INT_H
#define KS_METRICS_EXPO_INT_H

#include "metrics_int.h"
#include "streams_int.h"

struct ks_thread_view_s {
        int index;
        ks_streams_metrics_t m;
        ks_histogram_t commit, e2e;
        ks_lag_t *lag;
        int lag_cnt;
};

struct ks_expo_s {
        ks_streams_t *s;
        ks_buf_t *out;
        ks_thread_view_t *views;
        int view_cnt;
        ks_buf_t labels; /* scratch */
};

#endif
