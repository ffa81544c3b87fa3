/* Topic replay in kcat's -J envelope: a dump taken with `kcat -C -J` can be
 * replayed through any topology, and the output compared with diff. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bytes_int.h"
#include "driver_int.h"
#include "jsonl_bytes.h"
#include "windowed_serde_int.h"
#include "topology_int.h"

/* The buffers a line's decoding allocated, freed once it is piped. */
typedef struct line_mem_s {
        void **ptrs;
        size_t cnt, cap;
} line_mem_t;

static bool line_mem_keep(line_mem_t *m, void *p) {
        if (m->cnt == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 8;
                void **n   = realloc(m->ptrs, cap * sizeof(*n));
                if (!n)
                        return false;
                m->ptrs = n;
                m->cap  = cap;
        }
        m->ptrs[m->cnt++] = p;
        return true;
}

static void line_mem_free(line_mem_t *m) {
        for (size_t i = 0; i < m->cnt; i++)
                free(m->ptrs[i]);
        free(m->ptrs);
}

/* A JSON string or null as bytes; false for any other type. */
static bool bytes_of(json_t *j, ks_bytes_t *out) {
        if (!j || json_is_null(j)) {
                out->data = NULL;
                out->len  = 0;
                return true;
        }
        if (!json_is_string(j))
                return false;
        out->data = json_string_value(j);
        out->len  = json_string_length(j);
        return true;
}

/* A base64 string (or null) as the bytes it encodes. */
static bool b64_bytes_of(json_t *j, line_mem_t *mem, ks_bytes_t *out) {
        if (!j || json_is_null(j)) {
                out->data = NULL;
                out->len  = 0;
                return true;
        }
        if (!json_is_string(j))
                return false;
        void *data = ks__base64_decode(json_string_value(j),
                                       json_string_length(j), &out->len);
        if (!data || !line_mem_keep(mem, data)) {
                free(data);
                return false;
        }
        out->data = data;
        return true;
}

/* Field @p name of @p root, its exact bytes in "<name>_b64" if present. */
static bool field_bytes(json_t *root,
                        const char *name,
                        line_mem_t *mem,
                        ks_bytes_t *out) {
        char b64name[32];
        snprintf(b64name, sizeof(b64name), "%s_b64", name);
        json_t *b64 = json_object_get(root, b64name);
        if (b64)
                return b64_bytes_of(b64, mem, out);
        return bytes_of(json_object_get(root, name), out);
}

/* A windowed key: the inner key's bytes with the window's bounds appended
 * in the layout of @p type ("time": start; "session": end, start). */
static const char *windowed_key(json_t *window,
                                line_mem_t *mem,
                                ks_bytes_t *key) {
        json_t *jt       = json_object_get(window, "type");
        json_t *js       = json_object_get(window, "start");
        json_t *je       = json_object_get(window, "end");
        const char *type = json_is_string(jt) ? json_string_value(jt) : "";
        bool session     = !strcmp(type, "session");
        if (!json_is_object(window) || (!session && strcmp(type, "time")) ||
            !json_is_integer(js) || (session && !json_is_integer(je)))
                return "\"window\" must be {\"type\": \"time\" or "
                       "\"session\", \"start\": ms, \"end\": ms}";
        if (!key->data)
                return "a windowed key cannot be null";
        size_t trailer    = session ? 16 : 8;
        unsigned char *kb = malloc(key->len + trailer);
        if (!kb || !line_mem_keep(mem, kb)) {
                free(kb);
                return "out of memory";
        }
        memcpy(kb, key->data, key->len);
        if (session) {
                ks__be64_put(kb + key->len, json_integer_value(je));
                ks__be64_put(kb + key->len + 8, json_integer_value(js));
        } else {
                ks__be64_put(kb + key->len, json_integer_value(js));
        }
        key->data = kb;
        key->len += trailer;
        return NULL;
}

/* kcat writes headers as a flat array: [name, value, name, ...];
 * "headers_b64" is the same array with every string base64. */
static const char *headers_of(json_t *root,
                              line_mem_t *mem,
                              ks_header_t **out,
                              size_t *cnt) {
        json_t *jb = json_object_get(root, "headers_b64");
        json_t *jh = jb ? jb : json_object_get(root, "headers");
        *cnt       = 0;
        if (!jh)
                return NULL;
        if (!json_is_array(jh) || json_array_size(jh) % 2)
                return jb ? "\"headers_b64\" must be an array [name, value, "
                            "...]"
                          : "\"headers\" must be an array [name, value, ...]";
        size_t n = json_array_size(jh) / 2;
        if (!n)
                return NULL;
        ks_header_t *h = calloc(n, sizeof(*h));
        if (!h || !line_mem_keep(mem, h)) {
                free(h);
                return "out of memory";
        }
        for (size_t i = 0; i < n; i++) {
                json_t *hn = json_array_get(jh, 2 * i),
                       *hv = json_array_get(jh, 2 * i + 1);
                ks_bytes_t name;
                bool ok = json_is_string(hn) &&
                          (jb ? b64_bytes_of(hn, mem, &name) &&
                                           !memchr(name.data, '\0', name.len)
                              : bytes_of(hn, &name));
                if (ok && jb) {
                        /* Header names are C strings: terminate a copy. */
                        char *z = malloc(name.len + 1);
                        ok      = z && line_mem_keep(mem, z);
                        if (ok) {
                                memcpy(z, name.data, name.len);
                                z[name.len] = '\0';
                                name.data   = z;
                        } else {
                                free(z);
                        }
                }
                ok = ok && (jb ? b64_bytes_of(hv, mem, &h[i].value)
                               : bytes_of(hv, &h[i].value));
                if (!ok)
                        return "a header is not a name/value pair";
                h[i].name = name.data;
        }
        *out = h;
        *cnt = n;
        return NULL;
}

static ks_error_t *replay_line(ks_test_driver_t *drv,
                               const char *line,
                               size_t len,
                               size_t lineno,
                               const char *default_topic) {
        json_error_t jerr;
        ks_header_t *hdrs = NULL;
        size_t hdr_cnt    = 0;
        line_mem_t mem    = {0};
        ks_error_t *err   = NULL;
        const char *why;
        json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
        if (!root || !json_is_object(root)) {
                err = ks_error_new(KS_ERR_JSON,
                                   "replay line %zu: not a JSON object: %s",
                                   lineno, root ? "other value" : jerr.text);
                goto out;
        }
        json_t *jt = json_object_get(root, "topic");
        const char *topic =
                json_is_string(jt) ? json_string_value(jt) : default_topic;
        if (!topic) {
                err = ks_error_new(KS_ERR_INVALID_ARG,
                                   "replay line %zu: no \"topic\" and no "
                                   "default topic",
                                   lineno);
                goto out;
        }
        json_t *jp = json_object_get(root, "partition");
        int32_t partition =
                json_is_integer(jp) ? (int32_t)json_integer_value(jp) : -1;
        json_t *jts = json_object_get(root, "ts");
        int64_t ts  = json_is_integer(jts) ? json_integer_value(jts) : 0;
        ks_bytes_t key, value;
        if (!field_bytes(root, "key", &mem, &key) ||
            !field_bytes(root, "payload", &mem, &value)) {
                err = ks_error_new(KS_ERR_INVALID_ARG,
                                   "replay line %zu: \"key\" and \"payload\" "
                                   "must be strings or null, \"key_b64\" and "
                                   "\"payload_b64\" base64 or null",
                                   lineno);
                goto out;
        }
        json_t *jw = json_object_get(root, "window");
        if (jw && (why = windowed_key(jw, &mem, &key))) {
                err = ks_error_new(KS_ERR_INVALID_ARG, "replay line %zu: %s",
                                   lineno, why);
                goto out;
        }
        if ((why = headers_of(root, &mem, &hdrs, &hdr_cnt))) {
                err = ks_error_new(KS_ERR_INVALID_ARG, "replay line %zu: %s",
                                   lineno, why);
                goto out;
        }
        const drv_topic_t *t = ks__drv_topic(drv, topic);
        if (t && partition >= t->partitions) {
                err = ks_error_new(KS_ERR_INVALID_ARG,
                                   "replay line %zu: partition %" PRId32
                                   " but topic %s has %" PRId32 " partitions",
                                   lineno, partition, topic, t->partitions);
                goto out;
        }
        err = ks_test_driver_pipe(drv, topic, partition, key.data, key.len,
                                  value.data, value.len, ts, hdrs, hdr_cnt);
out:
        json_decref(root);
        line_mem_free(&mem);
        return err;
}

ks_error_t *ks_test_driver_replay_jsonl(ks_test_driver_t *drv,
                                        FILE *in,
                                        const char *default_topic,
                                        size_t *records_out) {
        char *line = NULL;
        size_t cap = 0, lineno = 0, records = 0;
        ssize_t len;
        ks_error_t *err = NULL;
        while (!err && (len = getline(&line, &cap, in)) >= 0) {
                lineno++;
                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        len--;
                if (len == 0)
                        continue;
                err = replay_line(drv, line, (size_t)len, lineno,
                                  default_topic);
                if (!err)
                        records++;
        }
        free(line);
        if (records_out)
                *records_out = records;
        return err;
}

/* Sets @p name to @p b as a JSON string, or null; bytes that are not
 * UTF-8 go as their lossy text, and exactly in "<name>_b64". */
static bool set_bytes(json_t *o, const char *name, ks_bytes_t b) {
        if (!b.data)
                return !json_object_set_new(o, name, json_null());
        if (ks__utf8_valid(b.data, b.len))
                return !json_object_set_new(o, name,
                                            json_stringn(b.data, b.len));
        size_t len;
        char *text = ks__utf8_lossy(b.data, b.len, &len);
        char *b64  = ks__base64_encode(b.data, b.len);
        char b64name[32];
        snprintf(b64name, sizeof(b64name), "%s_b64", name);
        bool ok = text && b64 &&
                  !json_object_set_new(o, name, json_stringn(text, len)) &&
                  !json_object_set_new(o, b64name, json_string(b64));
        free(text);
        free(b64);
        return ok;
}

/* A header string as JSON: as it is (null kept) or base64. */
static json_t *header_json(const void *data, size_t len, bool b64) {
        if (!data)
                return json_null();
        if (!b64) {
                if (ks__utf8_valid(data, len))
                        return json_stringn(data, len);
                size_t tlen;
                char *text = ks__utf8_lossy(data, len, &tlen);
                json_t *j  = text ? json_stringn(text, tlen) : NULL;
                free(text);
                return j;
        }
        char *enc = ks__base64_encode(data, len);
        json_t *j = enc ? json_string(enc) : NULL;
        free(enc);
        return j;
}

/* "headers", and "headers_b64" when a name or value is not UTF-8. */
static bool set_headers(json_t *o, const ks_test_record_t *r) {
        bool exact = true;
        for (size_t h = 0; h < r->header_cnt; h++) {
                const ks_header_t *hd = &r->headers[h];
                exact = exact && ks__utf8_valid(hd->name, strlen(hd->name)) &&
                        (!hd->value.data ||
                         ks__utf8_valid(hd->value.data, hd->value.len));
        }
        for (int pass = 0; pass < (exact ? 1 : 2); pass++) {
                json_t *arr = json_array();
                if (!arr)
                        return false;
                for (size_t h = 0; h < r->header_cnt; h++) {
                        const ks_header_t *hd = &r->headers[h];
                        if (json_array_append_new(
                                    arr, header_json(hd->name, strlen(hd->name),
                                                     pass)) ||
                            json_array_append_new(
                                    arr, header_json(hd->value.data,
                                                     hd->value.len, pass))) {
                                json_decref(arr);
                                return false;
                        }
                }
                if (json_object_set_new(o, pass ? "headers_b64" : "headers",
                                        arr))
                        return false;
        }
        return true;
}

/* The key: as bytes, or, for a windowed sink's keys, the inner key and
 * "window" with the bounds its layout gives. */
static bool set_key(json_t *o,
                    ks_bytes_t key,
                    ks_window_layout_t layout,
                    int64_t window_size) {
        size_t trailer = layout == KS_WINDOW_LAYOUT_TIME      ? 8
                         : layout == KS_WINDOW_LAYOUT_SESSION ? 16
                                                              : 0;
        if (!trailer || !key.data || key.len < trailer)
                return set_bytes(o, "key", key);
        const unsigned char *end = (const unsigned char *)key.data + key.len;
        int64_t start, wend;
        if (layout == KS_WINDOW_LAYOUT_TIME) {
                start = ks__be64_get(end - 8);
                wend  = start > INT64_MAX - window_size ? INT64_MAX
                                                        : start + window_size;
        } else {
                wend  = ks__be64_get(end - 16);
                start = ks__be64_get(end - 8);
        }
        json_t *w =
                json_pack("{s:s, s:I, s:I}", "type",
                          layout == KS_WINDOW_LAYOUT_TIME ? "time" : "session",
                          "start", (json_int_t)start, "end", (json_int_t)wend);
        return set_bytes(o, "key", (ks_bytes_t){key.data, key.len - trailer}) &&
               w && !json_object_set_new(o, "window", w);
}

static json_t *record_json(const ks_test_record_t *r,
                           ks_window_layout_t layout,
                           int64_t window_size) {
        json_t *o = json_object();
        /* kcat's field order, so dumps diff cleanly. */
        bool ok = o &&
                  !json_object_set_new(o, "topic", json_string(r->topic)) &&
                  !json_object_set_new(o, "partition",
                                       json_integer(r->partition)) &&
                  !json_object_set_new(o, "offset", json_integer(r->offset)) &&
                  !json_object_set_new(o, "tstype", json_string("create")) &&
                  !json_object_set_new(o, "ts", json_integer(r->timestamp)) &&
                  !json_object_set_new(o, "broker", json_integer(-1)) &&
                  (!r->header_cnt || set_headers(o, r)) &&
                  set_key(o, r->key, layout, window_size) &&
                  set_bytes(o, "payload", r->value);
        if (!ok) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* One record as a line; the error names it. */
static ks_error_t *write_line(const ks_test_record_t *r,
                              ks_window_layout_t layout,
                              int64_t window_size,
                              FILE *out) {
        json_t *o = record_json(r, layout, window_size);
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!s)
                return ks_error_new(KS_ERR_NOMEM,
                                    "dump: out of memory writing %s "
                                    "partition %" PRId32 " offset %" PRId64,
                                    r->topic, r->partition, r->offset);
        bool written = fputs(s, out) >= 0 && fputc('\n', out) != EOF;
        free(s);
        if (!written)
                return ks_error_new(KS_ERR_IO,
                                    "dump: cannot write %s partition %" PRId32
                                    " offset %" PRId64 ": %s",
                                    r->topic, r->partition, r->offset,
                                    strerror(errno));
        return NULL;
}

static ks_window_layout_t topic_layout(const ks_test_driver_t *drv,
                                       const char *topic,
                                       int64_t *window_size) {
        *window_size = 0;
        return ks__serde_window_layout(
                ks__sink_key_serde(drv->topology, drv->application_id, topic),
                window_size);
}

ks_error_t *ks_test_driver_write_jsonl(const ks_test_driver_t *drv,
                                       const ks_test_record_t *rec,
                                       FILE *out) {
        int64_t window_size;
        ks_window_layout_t layout = topic_layout(drv, rec->topic, &window_size);
        return write_line(rec, layout, window_size, out);
}

ks_error_t *ks_test_driver_dump_jsonl(const ks_test_driver_t *drv,
                                      const char *topic,
                                      FILE *out) {
        const drv_topic_t *t = ks__drv_topic(drv, topic);
        if (!t)
                return ks_error_new(KS_ERR_NOT_FOUND,
                                    "dump: no topic %s in the driver", topic);
        int64_t window_size;
        ks_window_layout_t layout = topic_layout(drv, topic, &window_size);
        /* Under exactly_once_v2, what a read_committed consumer sees. */
        for (size_t i = 0; i < t->cnt && ks__drv_visible(t, i); i++) {
                ks_error_t *err =
                        write_line(t->records[i], layout, window_size, out);
                if (err)
                        return err;
        }
        /* A buffered stream fails here: name the last record given to it. */
        if (fflush(out) && t->cnt) {
                const ks_test_record_t *r = t->records[t->cnt - 1];
                return ks_error_new(KS_ERR_IO,
                                    "dump: cannot write %s up to partition "
                                    "%" PRId32 " offset %" PRId64 ": %s",
                                    topic, r->partition, r->offset,
                                    strerror(errno));
        }
        return NULL;
}
