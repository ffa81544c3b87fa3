/* Timestamp extractors. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "kstreams/json.h"
#include "topology_int.h"

struct ks_timestamp_extractor_s {
        ks_timestamp_extract_fn *fn;
        void *opaque;
        void (*opaque_free)(void *);
};

ks_timestamp_extractor_t *ks_timestamp_extractor_new(
        ks_timestamp_extract_fn *fn,
        void *opaque,
        void (*opaque_free)(void *)) {
        if (!fn)
                return NULL;
        ks_timestamp_extractor_t *ex = calloc(1, sizeof(*ex));
        if (!ex)
                return NULL;
        ex->fn          = fn;
        ex->opaque      = opaque;
        ex->opaque_free = opaque_free;
        return ex;
}

void ks_timestamp_extractor_destroy(ks_timestamp_extractor_t *ex) {
        if (!ex)
                return;
        if (ex->opaque_free)
                ex->opaque_free(ex->opaque);
        free(ex);
}

int64_t ks__timestamp_extract(const ks_timestamp_extractor_t *ex,
                              const ks_consumed_t *rec,
                              const void *key,
                              const void *value,
                              int64_t partition_time) {
        if (!ex)
                return rec->timestamp;
        return ex->fn(rec, key, value, partition_time, ex->opaque);
}

static int64_t record_ts(const ks_consumed_t *rec,
                         const void *key,
                         const void *value,
                         int64_t partition_time,
                         void *opaque) {
        (void)key, (void)value, (void)partition_time, (void)opaque;
        return rec->timestamp;
}

ks_timestamp_extractor_t *ks_timestamp_extractor_record(void) {
        return ks_timestamp_extractor_new(record_ts, NULL, NULL);
}

/* The JSON-field extractor keeps one parser per thread (a parser is not
 * shared between threads, and allocating one per record would be slow):
 * a pthread key whose destructor frees it when a stream thread exits. */
typedef struct json_ts_s {
        ks_json_fields_t *fields;
        pthread_key_t parser_key;
} json_ts_t;

static void parser_free(void *p) {
        ks_json_parser_destroy(p);
}

static void json_ts_free(void *opaque) {
        json_ts_t *j = opaque;
        ks_json_parser_destroy(pthread_getspecific(j->parser_key));
        pthread_key_delete(j->parser_key);
        ks_json_fields_destroy(j->fields);
        free(j);
}

static int64_t json_ts(const ks_consumed_t *rec,
                       const void *key,
                       const void *value,
                       int64_t partition_time,
                       void *opaque) {
        json_ts_t *j = opaque;
        ks_json_value_t v;
        char errstr[128];
        (void)key, (void)value, (void)partition_time;
        if (!rec->value.data)
                return -1;
        ks_json_parser_t *p = pthread_getspecific(j->parser_key);
        if (!p) {
                p = ks_json_parser_new();
                if (!p || pthread_setspecific(j->parser_key, p)) {
                        ks_json_parser_destroy(p);
                        return -1;
                }
        }
        if (ks_json_extract(p, j->fields, rec->value.data, rec->value.len, &v,
                            errstr, sizeof(errstr)))
                return -1;
        int64_t ms;
        switch (v.type) {
        case KS_JSON_INT:
                return v.u.i;
        case KS_JSON_DOUBLE:
                return v.u.d >= 0 && v.u.d < 9.2e18 ? (int64_t)v.u.d : -1;
        case KS_JSON_STRING:
                if (ks_parse_iso8601(v.u.s.ptr, v.u.s.len, &ms))
                        return -1;
                return ms;
        default:
                return -1;
        }
}

ks_timestamp_extractor_t *ks_timestamp_extractor_json_field(
        const char *field,
        char *errstr,
        size_t errstr_size) {
        json_ts_t *j = calloc(1, sizeof(*j));
        if (!j) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        j->fields = ks_json_fields_new(&field, 1, errstr, errstr_size);
        if (!j->fields) {
                free(j);
                return NULL;
        }
        if (pthread_key_create(&j->parser_key, parser_free)) {
                ks_json_fields_destroy(j->fields);
                free(j);
                snprintf(errstr, errstr_size, "pthread_key_create failed");
                return NULL;
        }
        ks_timestamp_extractor_t *ex =
                ks_timestamp_extractor_new(json_ts, j, json_ts_free);
        if (!ex) {
                json_ts_free(j);
                snprintf(errstr, errstr_size, "out of memory");
        }
        return ex;
}
