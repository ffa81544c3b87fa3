/* Topic replay in kcat's -J envelope: a dump taken with `kcat -C -J` can be
 * replayed through any topology, and the output compared with diff. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"

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

static ks_error_t *replay_line(ks_test_driver_t *drv,
                               const char *line,
                               size_t len,
                               size_t lineno,
                               const char *default_topic) {
        json_error_t jerr;
        ks_header_t hdrs[64];
        size_t hdr_cnt  = 0;
        ks_error_t *err = NULL;
        json_t *root    = json_loadb(line, len, 0, &jerr);
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
        if (!bytes_of(json_object_get(root, "key"), &key) ||
            !bytes_of(json_object_get(root, "payload"), &value)) {
                err = ks_error_new(KS_ERR_INVALID_ARG,
                                   "replay line %zu: \"key\" and \"payload\" "
                                   "must be strings or null",
                                   lineno);
                goto out;
        }
        /* kcat writes headers as a flat array: [name, value, name, ...]. */
        json_t *jh = json_object_get(root, "headers");
        if (jh && !json_is_array(jh)) {
                err = ks_error_new(KS_ERR_INVALID_ARG,
                                   "replay line %zu: \"headers\" must be an "
                                   "array [name, value, ...]",
                                   lineno);
                goto out;
        }
        for (size_t i = 0; jh && i + 1 < json_array_size(jh) && hdr_cnt < 64;
             i += 2) {
                json_t *hn = json_array_get(jh, i);
                if (!json_is_string(hn) || !bytes_of(json_array_get(jh, i + 1),
                                                     &hdrs[hdr_cnt].value)) {
                        err = ks_error_new(KS_ERR_INVALID_ARG,
                                           "replay line %zu: header %zu is "
                                           "not a name/value pair",
                                           lineno, i / 2);
                        goto out;
                }
                hdrs[hdr_cnt++].name = json_string_value(hn);
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

static json_t *bytes_json(ks_bytes_t b) {
        if (!b.data)
                return json_null();
        return json_stringn(b.data, b.len); /* NULL if not UTF-8 */
}

ks_err_t ks_test_driver_dump_jsonl(const ks_test_driver_t *drv,
                                   const char *topic,
                                   FILE *out) {
        const drv_topic_t *t = ks__drv_topic(drv, topic);
        if (!t)
                return KS_ERR_NOT_FOUND;
        for (size_t i = 0; i < t->cnt; i++) {
                const ks_test_record_t *r = t->records[i];
                json_t *o                 = json_object();
                json_t *key               = bytes_json(r->key),
                       *payload           = bytes_json(r->value);
                json_t *hdrs              = r->header_cnt ? json_array() : NULL;
                bool ok = o && key && payload && (!r->header_cnt || hdrs);
                for (size_t h = 0; ok && h < r->header_cnt; h++) {
                        json_t *hv = bytes_json(r->headers[h].value);
                        ok         = hv &&
                             !json_array_append_new(
                                     hdrs, json_string(r->headers[h].name)) &&
                             !json_array_append_new(hdrs, hv);
                }
                if (ok) {
                        /* kcat's field order, so dumps diff cleanly. */
                        json_object_set_new(o, "topic", json_string(r->topic));
                        json_object_set_new(o, "partition",
                                            json_integer(r->partition));
                        json_object_set_new(o, "offset",
                                            json_integer(r->offset));
                        json_object_set_new(o, "tstype", json_string("create"));
                        json_object_set_new(o, "ts",
                                            json_integer(r->timestamp));
                        json_object_set_new(o, "broker", json_integer(-1));
                        if (hdrs)
                                json_object_set_new(o, "headers", hdrs);
                        json_object_set_new(o, "key", key);
                        json_object_set_new(o, "payload", payload);
                        char *s = json_dumps(
                                o, JSON_COMPACT | JSON_PRESERVE_ORDER);
                        ok = s && fprintf(out, "%s\n", s) > 0;
                        free(s);
                        json_decref(o);
                        if (!ok)
                                return KS_ERR_IO;
                        continue;
                }
                json_decref(o);
                json_decref(key);
                json_decref(payload);
                json_decref(hdrs);
                return KS_ERR_SERDE;
        }
        return KS_OK;
}
