/* The HTTP endpoint's daemon and its small routes. libmicrohttpd runs a
 * listening thread and one thread per connection (at most
 * MAX_CONNECTIONS); a request is read within http.timeout.ms or dropped,
 * and one whose request line and headers pass MEMORY_LIMIT bytes is
 * refused by libmicrohttpd itself (414 or 431). Only GET is served. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "log_int.h"

#define MAX_CONNECTIONS 64
#define MEMORY_LIMIT    (32 * 1024)
#define MAX_URL         4096
#define PROM_TYPE       "text/plain; version=0.0.4; charset=utf-8"
#define JSON_TYPE       "application/json"

void ks__http_error(ks_http_reply_t *r,
                    unsigned status,
                    int retry_after,
                    const char *fmt,
                    ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        r->status       = status;
        r->retry_after  = retry_after;
        r->content_type = JSON_TYPE;
        ks_buf_clear(&r->body);
        json_t *o = json_pack("{s:s}", "error", msg);
        char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
        ks_buf_appendf(&r->body, "%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(o);
}

static int hexval(char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
}

bool ks__http_unescape(const char *in, size_t len, ks_buf_t *out) {
        ks_buf_clear(out);
        for (size_t i = 0; i < len; i++) {
                char ch = in[i];
                if (ch == '%') {
                        if (i + 2 >= len)
                                return false;
                        int hi = hexval(in[i + 1]);
                        int lo = hexval(in[i + 2]);
                        if (hi < 0 || lo < 0)
                                return false;
                        ch = (char)(hi << 4 | lo);
                        i += 2;
                }
                if (ks_buf_append(out, &ch, 1))
                        return false;
        }
        /* NUL-terminated, the NUL not counted. */
        if (ks_buf_append(out, "", 1))
                return false;
        out->len--;
        return true;
}

/* Leaves %-escapes as they are: ks__http_unescape() decodes each path
 * part and argument strictly, and an escaped '/' stays inside its part. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) {
        (void)cls;
        (void)c;
        return strlen(s);
}

static void log_mhd(void *cls, const char *fmt, va_list ap) {
        char msg[512];
        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        ks__log(KS_LOG_DEBUG, "http: %s", msg);
}

static void answer_text(ks_http_reply_t *r,
                        unsigned status,
                        const char *type,
                        const char *text) {
        r->status       = status;
        r->content_type = type;
        ks_buf_clear(&r->body);
        ks_buf_appendf(&r->body, "%s", text);
}

static void metrics(ks_http_t *h, ks_http_reply_t *r) {
        ks_buf_clear(&r->body);
        if (ks_streams_metrics_prometheus(h->s, &r->body)) {
                ks__http_error(r, 500, 0, "out of memory");
                return;
        }
        r->status       = 200;
        r->content_type = PROM_TYPE;
}

/* Live while the instance has not failed. */
static void health(ks_http_t *h, ks_http_reply_t *r) {
        ks_state_t st = (ks_state_t)atomic_load(&h->s->state_seen);
        char body[64];
        snprintf(body, sizeof(body), "%s\n", ks_state_name(st));
        answer_text(r, st == KS_STATE_ERROR ? 503 : 200, "text/plain", body);
}

/* Ready: RUNNING with no task restoring. */
static void ready(ks_http_t *h, ks_http_reply_t *r) {
        ks_state_t st = (ks_state_t)atomic_load(&h->s->state_seen);
        ks_streams_metrics_t m;
        ks_streams_metrics(h->s, &m);
        char body[128];
        bool ok = st == KS_STATE_RUNNING && !m.restoring_tasks;
        snprintf(body, sizeof(body), "%s, %llu tasks restoring\n",
                 ks_state_name(st), (unsigned long long)m.restoring_tasks);
        answer_text(r, ok ? 200 : 503, "text/plain", body);
        r->retry_after = ok ? 0 : 1;
}

typedef struct query_s {
        ks_buf_t q;
} query_t;

static enum MHD_Result add_arg(void *cls,
                               enum MHD_ValueKind kind,
                               const char *key,
                               const char *value) {
        query_t *q = cls;
        (void)kind;
        ks_buf_appendf(&q->q, "%c%s%s%s", q->q.len ? '&' : '?', key,
                       value ? "=" : "", value ? value : "");
        return MHD_YES;
}

static void route(ks_http_t *h,
                  struct MHD_Connection *c,
                  const char *url,
                  const char *method,
                  ks_http_reply_t *r) {
        static const char stores[] = "/v1/stores/";
        if (strlen(url) > MAX_URL) {
                ks__http_error(r, 414, 0, "the URL is longer than %d bytes",
                               MAX_URL);
                return;
        }
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
                ks__http_error(r, 405, 0, "only GET is served, not %s", method);
                return;
        }
        if (!strcmp(url, "/metrics")) {
                metrics(h, r);
        } else if (!strcmp(url, "/health")) {
                health(h, r);
        } else if (!strcmp(url, "/ready")) {
                ready(h, r);
        } else if (!strncmp(url, stores, sizeof(stores) - 1)) {
                query_t q = {{0}};
                ks_buf_appendf(&q.q, "%s", "");
                MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg,
                                          &q);
                ks_buf_t full = {0};
                ks_buf_appendf(&full, "%s%s", url, q.q.data ? q.q.data : "");
                const char *fwd = MHD_lookup_connection_value(
                        c, MHD_HEADER_KIND, "X-Kstreams-Forwarded");
                ks__http_stores(h, c, url + sizeof(stores) - 1,
                                full.data ? full.data : url, fwd != NULL, r);
                ks_buf_free(&full);
                ks_buf_free(&q.q);
        } else {
                ks__http_error(r, 404, 0,
                               "no such resource: %s (try /metrics, "
                               "/health, /ready, /v1/stores/...)",
                               url);
        }
}

static enum MHD_Result handle(void *cls,
                              struct MHD_Connection *c,
                              const char *url,
                              const char *method,
                              const char *version,
                              const char *upload_data,
                              size_t *upload_data_size,
                              void **con_cls) {
        ks_http_t *h = cls;
        (void)version;
        (void)upload_data;
        (void)con_cls;
        /* Answered on the first call, with the headers: a body is never
         * read (libmicrohttpd then closes the connection after the
         * reply). */
        ks_http_reply_t r = {.status = 500};
        if (*upload_data_size)
                *upload_data_size = 0;
        route(h, c, url, method, &r);
        struct MHD_Response *resp = MHD_create_response_from_buffer(
                r.body.len, r.body.data ? r.body.data : (void *)"",
                MHD_RESPMEM_MUST_COPY);
        ks_buf_free(&r.body);
        if (!resp)
                return MHD_NO;
        if (r.content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        r.content_type);
        if (r.retry_after > 0) {
                char ra[16];
                snprintf(ra, sizeof(ra), "%d", r.retry_after);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
        }
        if (r.served_by[0])
                MHD_add_response_header(resp, "X-Kstreams-Served-By",
                                        r.served_by);
        enum MHD_Result ret = MHD_queue_response(c, r.status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* host:port into a socket address; "" or "*" host: every interface. */
static ks_error_t *resolve(const char *listen,
                           struct sockaddr_storage *ss,
                           bool *ipv6,
                           bool *any) {
        char host[256];
        const char *colon = strrchr(listen, ':');
        size_t hl         = (size_t)(colon - listen);
        if (hl >= sizeof(host))
                hl = sizeof(host) - 1;
        memcpy(host, listen, hl);
        host[hl] = '\0';
        if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
                memmove(host, host + 1, hl - 2);
                host[hl - 2] = '\0';
        }
        *any = !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ||
               !strcmp(host, "*");
        struct addrinfo hints = {.ai_family   = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags    = AI_PASSIVE};
        struct addrinfo *res  = NULL;
        int rc = getaddrinfo(strcmp(host, "*") ? host : "0.0.0.0", colon + 1,
                             &hints, &res);
        if (rc)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "http.listen: cannot resolve %s: %s", host,
                                    gai_strerror(rc));
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *ipv6 = res->ai_family == AF_INET6;
        freeaddrinfo(res);
        return NULL;
}

ks_error_t *ks__http_start(ks_streams_t *s) {
        const char *listen = ks__conf_str(s->conf, "http.listen");
        if (!*listen)
                return NULL;
        struct sockaddr_storage ss;
        bool ipv6, any;
        ks_error_t *err = resolve(listen, &ss, &ipv6, &any);
        if (err)
                return err;
        ks_http_t *h = calloc(1, sizeof(*h));
        if (!h)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        h->s               = s;
        h->timeout_ms      = (long)ks__conf_int(s->conf, "http.timeout.ms");
        unsigned timeout_s = (unsigned)((h->timeout_ms + 999) / 1000);
        h->daemon          = MHD_start_daemon(
                         MHD_USE_THREAD_PER_CONNECTION |
                                 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                                 (ipv6 ? MHD_USE_IPv6 : 0),
                         0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                         timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)MEMORY_LIMIT, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
                         NULL, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
                         MHD_OPTION_END);
        if (!h->daemon) {
                free(h);
                return ks_error_new(KS_ERR_STATE,
                                    "http.listen: cannot listen on %s (in "
                                    "use, or not an address of this host)",
                                    listen);
        }
        const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        int port = info ? (int)info->port : -1;
        char host[256];
        snprintf(host, sizeof(host), "%.*s",
                 (int)(strrchr(listen, ':') - listen), listen);
        snprintf(h->advertised, sizeof(h->advertised), "%s",
                 ks__conf_str(s->conf, "application.server"));
        if (!h->advertised[0] && !any) {
                snprintf(h->advertised, sizeof(h->advertised), "%s:%d", host,
                         port);
                char errstr[256];
                ks_conf_set(s->conf, "application.server", h->advertised,
                            errstr, sizeof(errstr));
        }
        s->http = h;
        atomic_store(&s->http_port, port);
        ks__log(KS_LOG_INFO,
                "%s: http: listening on %s:%d (GET /metrics, /health, /ready, "
                "/v1/stores/...); application.server %s",
                s->application_id, host, port,
                h->advertised[0] ? h->advertised : "not set");
        return NULL;
}

void ks__http_stop(ks_streams_t *s) {
        ks_http_t *h = s->http;
        if (!h)
                return;
        MHD_stop_daemon(h->daemon);
        s->http = NULL;
        atomic_store(&s->http_port, -1);
        free(h);
}
