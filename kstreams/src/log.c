#include "log_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "kstreams/common.h"

static int log_threshold(void) {
        static int threshold = -1;
        if (threshold < 0) {
                const char *env = getenv("KS_LOG_LEVEL");
                threshold       = env ? atoi(env) : KS_LOG_INFO;
        }
        return threshold;
}

static const char *level_name(ks_log_level_t level) {
        switch (level) {
        case KS_LOG_ERROR:
                return "ERROR";
        case KS_LOG_WARNING:
                return "WARN";
        case KS_LOG_INFO:
                return "INFO";
        default:
                return "DEBUG";
        }
}

static void vlog(ks_log_level_t level,
                 const char *suffix,
                 const char *fmt,
                 va_list ap) {
        char msg[1024];
        char ts[32];
        if ((int)level > log_threshold())
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        int64_t now = ks_now_ms();
        snprintf(ts, sizeof(ts), "%lld.%03lld", (long long)(now / 1000),
                 (long long)(now % 1000));
        fprintf(stderr, "%s kstreams %s: %s%s\n", ts, level_name(level), msg,
                suffix);
}

void ks__log(ks_log_level_t level, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog(level, "", fmt, ap);
        va_end(ap);
}

void ks__log_limited(ks_rate_limit_t *rl,
                     int64_t interval_ms,
                     ks_log_level_t level,
                     const char *fmt,
                     ...) {
        int64_t now = ks_now_ms();
        if (rl->last_ms && now - rl->last_ms < interval_ms) {
                rl->suppressed++;
                return;
        }
        char suffix[96] = "";
        if (rl->suppressed)
                snprintf(suffix, sizeof(suffix),
                         " (%llu similar messages suppressed)",
                         (unsigned long long)rl->suppressed);
        rl->last_ms    = now;
        rl->suppressed = 0;
        va_list ap;
        va_start(ap, fmt);
        vlog(level, suffix, fmt, ap);
        va_end(ap);
}
