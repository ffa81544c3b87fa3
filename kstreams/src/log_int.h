/* Logging with a rate limit per reason: every dropped record is counted,
 * but a flood of bad input must not flood the log. */
#ifndef KS_LOG_INT_H
#define KS_LOG_INT_H

#include <stdint.h>

typedef enum ks_log_level_e {
        KS_LOG_ERROR   = 3,
        KS_LOG_WARNING = 4,
        KS_LOG_INFO    = 6,
        KS_LOG_DEBUG   = 7
} ks_log_level_t;

typedef struct ks_rate_limit_s {
        int64_t last_ms;
        uint64_t suppressed;
} ks_rate_limit_t;

void ks__log(ks_log_level_t level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/** Logs unless a message went through @p rl in the last @p interval_ms;
 *  then counts it as suppressed and says how many on the next one. */
void ks__log_limited(ks_rate_limit_t *rl,
                     int64_t interval_ms,
                     ks_log_level_t level,
                     const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

#endif
