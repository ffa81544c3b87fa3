/* Error names, byte buffers, time. */
#include "kstreams/common.h"

#include "bytes_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const err_names[KS_ERR__END] = {
        [KS_OK]               = "KS_OK: success",
        [KS_ERR_INVALID_ARG]  = "KS_ERR_INVALID_ARG: invalid argument",
        [KS_ERR_UNKNOWN_CONF] = "KS_ERR_UNKNOWN_CONF: unknown property",
        [KS_ERR_NOMEM]        = "KS_ERR_NOMEM: out of memory",
        [KS_ERR_NOT_FOUND]    = "KS_ERR_NOT_FOUND: not found",
        [KS_ERR_STATE]        = "KS_ERR_STATE: invalid state",
        [KS_ERR_SERDE]        = "KS_ERR_SERDE: serialization error",
        [KS_ERR_JSON]         = "KS_ERR_JSON: malformed JSON",
        [KS_ERR_TIMESTAMP]    = "KS_ERR_TIMESTAMP: invalid timestamp",
        [KS_ERR_PROCESSING]   = "KS_ERR_PROCESSING: processing error",
        [KS_ERR_TOPOLOGY]     = "KS_ERR_TOPOLOGY: invalid topology",
        [KS_ERR_IO]           = "KS_ERR_IO: I/O error",
        [KS_ERR_KAFKA]        = "KS_ERR_KAFKA: Kafka error",
        [KS_ERR_STORE]        = "KS_ERR_STORE: state store error",
        [KS_ERR_DATABASE]     = "KS_ERR_DATABASE: database error",
        [KS_ERR_TIMED_OUT]    = "KS_ERR_TIMED_OUT: timed out",
};

const char *ks_err2str(ks_err_t err) {
        if ((int)err < 0 || err >= KS_ERR__END || !err_names[err])
                return "KS_ERR_?: unknown error code";
        return err_names[err];
}

ks_err_t ks_buf_reserve(ks_buf_t *buf, size_t extra) {
        if (buf->cap - buf->len > extra)
                return KS_OK;
        size_t want = buf->len + extra + 1; /* room for a NUL terminator */
        size_t cap  = buf->cap ? buf->cap : 256;
        while (cap < want)
                cap *= 2;
        char *p = realloc(buf->data, cap);
        if (!p)
                return KS_ERR_NOMEM;
        buf->data = p;
        buf->cap  = cap;
        return KS_OK;
}

ks_err_t ks_buf_append(ks_buf_t *buf, const void *data, size_t len) {
        if (ks_buf_reserve(buf, len))
                return KS_ERR_NOMEM;
        if (len)
                memcpy(buf->data + buf->len, data, len);
        buf->len += len;
        buf->data[buf->len] = '\0';
        return KS_OK;
}

ks_err_t ks_buf_appendf(ks_buf_t *buf, const char *fmt, ...) {
        va_list ap;
        if (ks_buf_reserve(buf, 64))
                return KS_ERR_NOMEM;
        va_start(ap, fmt);
        int n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return KS_ERR_INVALID_ARG;
        if ((size_t)n >= buf->cap - buf->len) {
                if (ks_buf_reserve(buf, (size_t)n + 1))
                        return KS_ERR_NOMEM;
                va_start(ap, fmt);
                vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
                va_end(ap);
        }
        buf->len += (size_t)n;
        return KS_OK;
}

void ks_buf_clear(ks_buf_t *buf) {
        buf->len = 0;
        if (buf->data)
                buf->data[0] = '\0';
}

void ks_buf_free(ks_buf_t *buf) {
        if (!buf)
                return;
        free(buf->data);
        buf->data = NULL;
        buf->len = buf->cap = 0;
}

int64_t ks_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ks__be64_put(unsigned char *out, int64_t v) {
        uint64_t u = (uint64_t)v;
        for (int i = 7; i >= 0; i--, u >>= 8)
                out[i] = (unsigned char)(u & 0xff);
}

int64_t ks__be64_get(const void *p) {
        const unsigned char *b = p;
        uint64_t v             = 0;
        for (int i = 0; i < 8; i++)
                v = (v << 8) | b[i];
        return (int64_t)v;
}
