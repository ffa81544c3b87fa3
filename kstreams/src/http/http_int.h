/* The embedded HTTP endpoint (libmicrohttpd): its own threads, one per
 * connection, so a slow client or a forwarded query never holds up a
 * stream thread; handlers read only what the threads publish, LMDB
 * snapshots and the group's description.
 *
 *   http_server.c  the daemon, routing, /metrics, /health, /ready
 *   http_iq.c      /v1/stores/...: local reads, forwarding (libcurl) */
#ifndef KS_HTTP_INT_H
#define KS_HTTP_INT_H

#include <microhttpd.h>

#include "streams_int.h"

/* What a handler answers. */
typedef struct ks_http_reply_s {
        unsigned status;
        ks_buf_t body;
        const char *content_type;
        int retry_after;     /* seconds; 0: no Retry-After header */
        char served_by[300]; /* X-Kstreams-Served-By; "" for none */
} ks_http_reply_t;

typedef struct ks_http_s {
        ks_streams_t *s;
        struct MHD_Daemon *daemon;
        char advertised[300]; /* application.server as it runs */
        long timeout_ms;
} ks_http_t;

/** Sets @p r to a JSON error {"error": msg}. */
void ks__http_error(ks_http_reply_t *r,
                    unsigned status,
                    int retry_after,
                    const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/** Decodes one %-escaped URL part into @p out (NUL-terminated too).
 *  @returns false on a bad escape. */
bool ks__http_unescape(const char *in, size_t len, ks_buf_t *out);

/**
 * Answers GET /v1/stores/<rest> (@p rest after the prefix): local when
 * this instance hosts the key, else forwarded to the owner unless
 * @p forwarded (then 503).
 * @locality an HTTP connection thread
 */
void ks__http_stores(ks_http_t *h,
                     struct MHD_Connection *c,
                     const char *rest,
                     const char *path_and_query,
                     bool forwarded,
                     ks_http_reply_t *r);

#endif
