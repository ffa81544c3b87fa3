/* Remote interactive queries over HTTP:
 *
 *   GET /v1/stores/{store}/keys/{key}                  key-value get
 *   GET /v1/stores/{store}/keys/{key}/windows?from=&to= window fetch (ms)
 *   GET /v1/stores/{store}/range?from=&to=&partition=   this instance's
 *                                                       partitions only
 *
 * key.format (string, hex, int64) says how {key} and from/to become the
 * store's key bytes; value.format (hex, string, int64) how values are
 * shown. A key is answered here when this instance hosts its partition
 * and has restored it; a key whose partition is restoring, or hosted
 * nowhere yet (a rebalance), gets 503 with Retry-After, never an old or
 * empty value. Otherwise the group's description names the owner
 * (ks_streams_query_key_owner()) and the request is forwarded to its
 * application.server once: a forwarded request that is not hosted where it
 * lands answers 503 rather than travel on.
 * @locality an HTTP connection thread */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

typedef enum fmt_e { FMT_STRING, FMT_HEX, FMT_INT64 } fmt_t;

typedef struct req_s {
        ks_http_t *h;
        struct MHD_Connection *c;
        ks_http_reply_t *r;
        char store[256];
        ks_buf_t key;
        fmt_t key_fmt, value_fmt;
        ks_buf_t scratch;
} req_t;

static bool parse_fmt(const char *v, fmt_t def, fmt_t *out) {
        if (!v) {
                *out = def;
                return true;
        }
        if (!strcmp(v, "string"))
                *out = FMT_STRING;
        else if (!strcmp(v, "hex"))
                *out = FMT_HEX;
        else if (!strcmp(v, "int64"))
                *out = FMT_INT64;
        else
                return false;
        return true;
}

static const char *arg(req_t *q, const char *name) {
        return MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);
}

/* A decoded URL part or argument as key bytes of format @p f. */
static bool to_key(req_t *q, const char *text, size_t len, ks_buf_t *out) {
        if (!ks__http_unescape(text, len, &q->scratch) || !q->scratch.len)
                return false;
        const char *t = q->scratch.data;
        ks_buf_clear(out);
        if (q->key_fmt == FMT_STRING)
                return !ks_buf_append(out, t, q->scratch.len);
        if (q->key_fmt == FMT_INT64) {
                char *end;
                errno       = 0;
                long long v = strtoll(t, &end, 10);
                unsigned char be[8];
                if (errno || *end)
                        return false;
                for (int i = 7; i >= 0; i--, v >>= 8)
                        be[i] = (unsigned char)v;
                return !ks_buf_append(out, be, 8);
        }
        if (q->scratch.len % 2)
                return false;
        for (size_t i = 0; i < q->scratch.len; i += 2) {
                unsigned b;
                char two[3] = {t[i], t[i + 1], 0};
                if (!strchr("0123456789abcdefABCDEF", t[i]) ||
                    !strchr("0123456789abcdefABCDEF", t[i + 1]) ||
                    sscanf(two, "%x", &b) != 1)
                        return false;
                unsigned char c = (unsigned char)b;
                if (ks_buf_append(out, &c, 1))
                        return false;
        }
        return true;
}

static json_t *render(ks_bytes_t b, fmt_t f) {
        const unsigned char *p = b.data;
        if (f == FMT_INT64 && b.len == 8) {
                uint64_t v = 0;
                for (int i = 0; i < 8; i++)
                        v = v << 8 | p[i];
                return json_integer((json_int_t)(int64_t)v);
        }
        if (f == FMT_STRING) {
                json_t *s = json_stringn(b.data, b.len);
                if (s)
                        return s; /* else not UTF-8: hex */
        }
        char *hex = malloc(b.len * 2 + 1);
        for (size_t i = 0; hex && i < b.len; i++)
                snprintf(hex + 2 * i, 3, "%02x", p[i]);
        if (hex)
                hex[b.len * 2] = '\0';
        json_t *s = hex ? json_string(hex) : NULL;
        free(hex);
        return s;
}

static void reply_json(req_t *q, json_t *o) {
        char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (!txt) {
                ks__http_error(q->r, 500, 0, "out of memory");
        } else {
                q->r->status       = 200;
                q->r->content_type = "application/json";
                ks_buf_clear(&q->r->body);
                ks_buf_appendf(&q->r->body, "%s\n", txt);
                snprintf(q->r->served_by, sizeof(q->r->served_by), "%s",
                         q->h->advertised);
        }
        free(txt);
        json_decref(o);
}

/* Maps a query error to its status: unknown store 404, wrong kind 400,
 * anything that may pass (restoring, rebalancing, not running) 503. */
static void reply_error(req_t *q, ks_error_t *err, bool routed) {
        ks_err_t code = ks_error_code(err);
        /* Once routed here, the store exists: "not found" is the
         * partition, which moved away since. */
        if (ks_error_is_retriable(err) || code == KS_ERR_STATE ||
            (routed && code == KS_ERR_NOT_FOUND))
                ks__http_error(q->r, 503, 1, "%s", ks_error_message(err));
        else if (code == KS_ERR_NOT_FOUND)
                ks__http_error(q->r, 404, 0, "%s", ks_error_message(err));
        else if (code == KS_ERR_INVALID_ARG)
                ks__http_error(q->r, 400, 0, "%s", ks_error_message(err));
        else
                ks__http_error(q->r, 500, 0, "%s", ks_error_message(err));
        ks_error_destroy(err);
}

/* ---- forwarding ------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *opaque) {
        ks_buf_t *b = opaque;
        return ks_buf_append(b, p, size * n) ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *opaque) {
        ks_http_reply_t *r = opaque;
        size_t len         = size * n;
        int ra;
        if (len > 12 && !strncasecmp(p, "Retry-After:", 12) &&
            sscanf(p + 12, "%d", &ra) == 1)
                r->retry_after = ra;
        if (len > 21 && !strncasecmp(p, "X-Kstreams-Served-By:", 21)) {
                int k = snprintf(r->served_by, sizeof(r->served_by), "%.*s",
                                 (int)(len - 21), p + 21);
                (void)k;
                char *s     = r->served_by;
                size_t skip = strspn(s, " ");
                memmove(s, s + skip, strlen(s + skip) + 1);
                s[strcspn(s, "\r\n")] = '\0';
        }
        return len;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void forward(req_t *q, const char *server, const char *path) {
        char url[8192], hdr[400];
        pthread_once(&curl_once, curl_init);
        snprintf(url, sizeof(url), "http://%s%s", server, path);
        snprintf(hdr, sizeof(hdr), "X-Kstreams-Forwarded: %s",
                 q->h->advertised[0] ? q->h->advertised : "unknown");
        CURL *curl              = curl_easy_init();
        struct curl_slist *hdrs = curl ? curl_slist_append(NULL, hdr) : NULL;
        if (!curl || !hdrs) {
                ks__http_error(q->r, 500, 0, "out of memory");
                goto out;
        }
        ks_buf_clear(&q->r->body);
        q->r->retry_after = 0;
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, q->h->timeout_ms);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &q->r->body);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, q->r);
        CURLcode rc = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status < 100) {
                /* The owner is away (moving, restarting): try again. */
                ks__http_error(q->r, 503, 1,
                               "forwarding to %s, which hosts the key: %s",
                               server, curl_easy_strerror(rc));
        } else {
                q->r->status       = (unsigned)status;
                q->r->content_type = "application/json";
        }
out:
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(curl);
}

/* Local if hosted and restored, 503 if restoring; else the owner.
 * @returns true when the caller should read locally. */
static bool route_key(req_t *q, const char *path, bool forwarded) {
        ks_key_query_metadata_t md;
        ks_bytes_t key = {q->key.data, q->key.len};
        ks_error_t *err =
                ks_streams_query_key_metadata(q->h->s, q->store, key, &md);
        if (err) {
                reply_error(q, err, false);
                return false;
        }
        if (md.hosted && !md.restoring)
                return true;
        if (md.restoring) {
                ks__http_error(q->r, 503, 1,
                               "partition %d of store %s is restoring here",
                               (int)md.partition, q->store);
                return false;
        }
        if (forwarded) {
                ks__http_error(q->r, 503, 1,
                               "partition %d of store %s is not hosted here "
                               "(it is moving)",
                               (int)md.partition, q->store);
                return false;
        }
        ks_key_owner_t owner;
        err = ks_streams_query_key_owner(q->h->s, q->store, key,
                                         (int)q->h->timeout_ms, &owner);
        if (err) {
                reply_error(q, err, false);
        } else if (owner.local) {
                ks__http_error(q->r, 503, 1,
                               "partition %d of store %s was just assigned "
                               "here and is not open yet",
                               (int)md.partition, q->store);
        } else if (!owner.server[0]) {
                ks__http_error(q->r, 502, 0,
                               "partition %d of store %s is hosted by %s, "
                               "which advertises no application.server",
                               (int)md.partition, q->store, owner.client_id);
        } else {
                forward(q, owner.server, path);
        }
        return false;
}

static void kv_get(req_t *q) {
        ks_buf_t value = {0};
        bool found;
        ks_bytes_t key = {q->key.data, q->key.len};
        ks_error_t *err =
                ks_streams_query_kv_get(q->h->s, q->store, key, &value, &found);
        if (err) {
                reply_error(q, err, true);
        } else if (!found) {
                ks__http_error(q->r, 404, 0, "no such key in store %s",
                               q->store);
                snprintf(q->r->served_by, sizeof(q->r->served_by), "%s",
                         q->h->advertised);
        } else {
                ks_key_query_metadata_t md = {0};
                ks_error_destroy(ks_streams_query_key_metadata(
                        q->h->s, q->store, key, &md));
                reply_json(q,
                           json_pack("{s:s,s:o,s:i,s:o}", "store", q->store,
                                     "key", render(key, q->key_fmt),
                                     "partition", (int)md.partition, "value",
                                     render((ks_bytes_t){value.data, value.len},
                                            q->value_fmt)));
        }
        ks_buf_free(&value);
}

static bool time_arg(req_t *q, const char *name, int64_t def, int64_t *out) {
        const char *v = arg(q, name);
        char *end;
        if (!v) {
                *out = def;
                return true;
        }
        errno = 0;
        *out  = strtoll(v, &end, 10);
        if (errno || !*v || *end) {
                ks__http_error(q->r, 400, 0, "%s: \"%s\" is not milliseconds",
                               name, v);
                return false;
        }
        return true;
}

static void iterate(req_t *q, ks_query_iter_t *it, bool windows) {
        json_t *arr = json_array();
        ks_bytes_t k, v;
        int64_t start;
        while (windows ? ks_query_iter_next_window(it, &k, &start, &v)
                       : ks_query_iter_next(it, &k, &v)) {
                json_t *e =
                        windows ? json_pack("{s:I,s:o}", "start",
                                            (json_int_t)start, "value",
                                            render(v, q->value_fmt))
                                : json_pack("{s:o,s:i,s:o}", "key",
                                            render(k, q->key_fmt), "partition",
                                            (int)ks_query_iter_partition(it),
                                            "value", render(v, q->value_fmt));
                json_array_append_new(arr, e);
        }
        const ks_error_t *err = ks_query_iter_error(it);
        if (err) {
                /* Moved away or restoring mid-way: no partial answer. */
                ks__http_error(q->r, ks_error_is_retriable(err) ? 503 : 500, 1,
                               "%s", ks_error_message(err));
                json_decref(arr);
                return;
        }
        reply_json(q, json_pack("{s:s,s:o}", "store", q->store,
                                windows ? "windows" : "entries", arr));
}

static void windows(req_t *q) {
        int64_t from, to;
        if (!time_arg(q, "from", 0, &from) ||
            !time_arg(q, "to", INT64_MAX, &to))
                return;
        ks_query_iter_t *it = NULL;
        ks_error_t *err     = ks_streams_query_window_fetch(
                    q->h->s, q->store, (ks_bytes_t){q->key.data, q->key.len}, from,
                    to, &it);
        if (err)
                reply_error(q, err, true);
        else
                iterate(q, it, true);
        ks_query_iter_destroy(it);
}

static void range(req_t *q) {
        ks_buf_t from = {0}, to = {0};
        const char *f = arg(q, "from"), *t = arg(q, "to"),
                   *p       = arg(q, "partition");
        char *end           = NULL;
        long partition      = p ? strtol(p, &end, 10) : -1;
        ks_query_iter_t *it = NULL;
        if ((f && !to_key(q, f, strlen(f), &from)) ||
            (t && !to_key(q, t, strlen(t), &to)) ||
            (p && (!*p || *end || partition < 0 || partition > INT32_MAX))) {
                ks__http_error(q->r, 400, 0,
                               "from, to (keys in key.format) or partition "
                               "(a number) malformed");
                goto out;
        }
        ks_error_t *err = ks_streams_query_kv_range(
                q->h->s, q->store, (int32_t)partition,
                (ks_bytes_t){f ? from.data : NULL, from.len},
                (ks_bytes_t){t ? to.data : NULL, to.len}, &it);
        if (err)
                reply_error(q, err, false);
        else
                iterate(q, it, false);
out:
        ks_query_iter_destroy(it);
        ks_buf_free(&from);
        ks_buf_free(&to);
}

void ks__http_stores(ks_http_t *h,
                     struct MHD_Connection *c,
                     const char *rest,
                     const char *path,
                     bool forwarded,
                     ks_http_reply_t *r) {
        req_t q           = {.h = h, .c = c, .r = r};
        const char *slash = strchr(rest, '/');
        const char *what  = slash ? slash + 1 : "";
        if (!slash || slash == rest ||
            !ks__http_unescape(rest, (size_t)(slash - rest), &q.scratch) ||
            q.scratch.len >= sizeof(q.store) ||
            memchr(q.scratch.data, '\0', q.scratch.len)) {
                ks__http_error(r, 400, 0,
                               "expected /v1/stores/{store}/keys/{key} or "
                               "/v1/stores/{store}/range");
                goto out;
        }
        memcpy(q.store, q.scratch.data, q.scratch.len + 1);
        if (!parse_fmt(arg(&q, "key.format"), FMT_STRING, &q.key_fmt) ||
            !parse_fmt(arg(&q, "value.format"), FMT_HEX, &q.value_fmt)) {
                ks__http_error(r, 400, 0,
                               "key.format and value.format are string, hex "
                               "or int64");
                goto out;
        }
        if (!strcmp(what, "range")) {
                range(&q);
                goto out;
        }
        if (strncmp(what, "keys/", 5)) {
                ks__http_error(r, 404, 0, "no such resource under store %s",
                               q.store);
                goto out;
        }
        const char *key  = what + 5;
        const char *tail = strchr(key, '/');
        size_t klen      = tail ? (size_t)(tail - key) : strlen(key);
        bool win         = tail && !strcmp(tail, "/windows");
        if (tail && !win) {
                ks__http_error(r, 404, 0, "no such resource under key: %s",
                               tail);
                goto out;
        }
        if (!to_key(&q, key, klen, &q.key)) {
                ks__http_error(r, 400, 0,
                               "malformed key: empty, a bad %%-escape, or not "
                               "in key.format");
                goto out;
        }
        if (route_key(&q, path, forwarded)) {
                if (win)
                        windows(&q);
                else
                        kv_get(&q);
        }
out:
        ks_buf_free(&q.key);
        ks_buf_free(&q.scratch);
}
