#include "user_event_serde.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One decoder per thread (decoders are not shared; allocating one per
 * record would be slow): a pthread key frees it when a thread exits. */
typedef struct serde_state_s {
        pthread_key_t key;
} serde_state_t;

static void decoder_free(void *p) {
        user_event_decoder_destroy(p);
}

static void state_free(void *opaque) {
        serde_state_t *st = opaque;
        user_event_decoder_destroy(pthread_getspecific(st->key));
        pthread_key_delete(st->key);
        free(st);
}

static ks_err_t ser(const void *obj,
                    ks_buf_t *out,
                    void *opaque,
                    char *errstr,
                    size_t errstr_size) {
        (void)opaque;
        ks_err_t err = user_event_encode(obj, out);
        if (err)
                snprintf(errstr, errstr_size, "user_event: cannot encode: %s",
                         ks_err2str(err));
        return err;
}

/* The decoder's strings are borrowed until its next call, and a task
 * decodes the head of every input partition before processing one, so
 * the strings are copied into the record's arena. */
static const char *keep(ks_arena_t *a, const char *s) {
        return s ? ks_arena_strdup(a, s) : NULL;
}

static ks_err_t de(ks_arena_t *arena,
                   const void *data,
                   size_t len,
                   const void **obj_out,
                   void *opaque,
                   char *errstr,
                   size_t errstr_size) {
        serde_state_t *st       = opaque;
        user_event_decoder_t *d = pthread_getspecific(st->key);
        if (!d) {
                d = user_event_decoder_new();
                if (!d || pthread_setspecific(st->key, d)) {
                        user_event_decoder_destroy(d);
                        snprintf(errstr, errstr_size, "user_event: OOM");
                        return KS_ERR_NOMEM;
                }
        }
        user_event_t ev;
        ks_err_t err =
                user_event_decode(d, data, len, &ev, errstr, errstr_size);
        if (err)
                return err;
        user_event_t *out = ks_arena_alloc(arena, sizeof(*out));
        if (!out)
                return KS_ERR_NOMEM;
        *out            = ev;
        out->event_id   = keep(arena, ev.event_id);
        out->user_id    = keep(arena, ev.user_id);
        out->event_type = keep(arena, ev.event_type);
        out->session_id = keep(arena, ev.session_id);
        out->page       = keep(arena, ev.page);
        out->currency   = keep(arena, ev.currency);
        out->device     = keep(arena, ev.device);
        out->browser    = keep(arena, ev.browser);
        out->version    = keep(arena, ev.version);
        *obj_out        = out;
        return KS_OK;
}

ks_serde_t *user_event_serde(void) {
        serde_state_t *st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        if (pthread_key_create(&st->key, decoder_free)) {
                free(st);
                return NULL;
        }
        ks_serde_t *s = ks_serde_new("user_event", ser, de, st, state_free);
        if (!s)
                state_free(st);
        return s;
}

static int64_t event_ts(const ks_consumed_t *rec,
                        const void *key,
                        const void *value,
                        int64_t partition_time,
                        void *opaque) {
        (void)rec, (void)key, (void)partition_time, (void)opaque;
        return value ? ((const user_event_t *)value)->timestamp_ms : -1;
}

ks_timestamp_extractor_t *user_event_timestamp_extractor(void) {
        return ks_timestamp_extractor_new(event_ts, NULL, NULL);
}
