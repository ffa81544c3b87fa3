/* ks_stream_deduplicate(): the first record per id within a window of event
 * time goes on, later ones are dropped and counted (Kafka Streams'
 * KIP-655). Built on the Processor API's own stores (state_store.c): the
 * ids live in a window store (id, registration time), so they are
 * changelogged, restored after a restart and undone past the last commit
 * like any store, and expire with the store's retention. */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"
#include "kstreams/store.h"

typedef struct dedup_s {
        ks_id_extractor_fn *fn;
        void *opaque;
        int64_t window_ms;
        char *store; /* its name, for ks_ctx_state_store() */
} dedup_t;

/* Per task: the store, and the newest record time seen since the task
 * started (with the store's newest registration, which survives a
 * restart, this is the time ids expire against). */
typedef struct dedup_task_s {
        ks_state_store_t *st;
        int64_t observed;
} dedup_task_t;

static void dedup_free(void *p) {
        dedup_t *d = p;
        if (d)
                free(d->store);
        free(d);
}

static ks_err_t dedup_init(ks_ctx_t *ctx, void **state, void *opaque) {
        dedup_t *d      = opaque;
        dedup_task_t *t = calloc(1, sizeof(*t));
        if (!t)
                return KS_ERR_NOMEM;
        t->st       = ks_ctx_state_store(ctx, d->store);
        t->observed = INT64_MIN;
        *state      = t;
        if (!t->st)
                return ks_ctx_fail(ctx, "deduplicate: no store %s", d->store);
        return KS_OK;
}

static void dedup_close(ks_ctx_t *ctx, void *state, void *opaque) {
        (void)ctx, (void)opaque;
        free(state);
}

/* True if @p id has a registration the store still keeps at or after
 * @p from. */
static ks_err_t registered(dedup_task_t *t,
                           ks_bytes_t id,
                           int64_t from,
                           bool *found) {
        ks_store_iter_t *it;
        ks_err_t err = ks_state_window_fetch(t->st, id, from, INT64_MAX, &it);
        if (err)
                return err;
        ks_bytes_t k, v;
        int64_t start;
        *found = ks_store_iter_next_window(it, &k, &start, &v);
        ks_store_iter_destroy(it);
        return KS_OK;
}

static ks_err_t dedup_process(ks_ctx_t *ctx,
                              const void *key,
                              const void *value,
                              void *state,
                              void *opaque) {
        dedup_t *d      = opaque;
        dedup_task_t *t = state;
        ks_bytes_t id   = d->fn(ks_ctx_arena(ctx), key, value, d->opaque);
        if (!id.data)
                return ks_ctx_forward(ctx, key, value); /* no id: kept */
        int64_t ts = ks_ctx_timestamp(ctx);
        if (ts > t->observed)
                t->observed = ts;
        /* Registrations older than observed - window have expired. The
         * store's retention (window + 1 behind its newest registration)
         * hides those older than that, which after a restart is what
         * remains of the time seen before it. */
        int64_t from;
        if (__builtin_sub_overflow(t->observed, d->window_ms, &from))
                from = INT64_MIN;
        bool dup;
        ks_err_t err = registered(t, id, from, &dup);
        if (err)
                return err;
        if (dup) {
                ks__ctx_count_dedup(ctx);
                return KS_OK;
        }
        /* A record older than the window registers nothing: its id would
         * have expired already. */
        if (ts >= from) {
                unsigned char be[8];
                ks__be64_put(be, ts);
                err = ks_state_window_put(t->st, id, ts,
                                          (ks_bytes_t){be, sizeof(be)});
                if (err)
                        return err;
        }
        return ks_ctx_forward(ctx, key, value);
}

ks_stream_t *ks_stream_deduplicate(ks_stream_t *s,
                                   const char *name,
                                   ks_id_extractor_fn *fn,
                                   void *opaque,
                                   int64_t window_ms) {
        if (!s)
                return NULL;
        if (!fn || window_ms <= 0 || window_ms == INT64_MAX) {
                ks__builder_fail(s->b, "deduplicate(%s): %s", name ? name : "",
                                 !fn ? "an id extractor is required"
                                     : "window_ms must be > 0");
                return &s->b->error_stream;
        }
        if (!ks__stream_ok(s, name ? name : "DEDUPLICATE"))
                return &s->b->error_stream;
        dedup_t *d = calloc(1, sizeof(*d));
        char *node = d ? ks__builder_name(s->b, name, "DEDUPLICATE") : NULL;
        if (!node) {
                free(d);
                ks__builder_fail(s->b, "deduplicate: out of memory");
                return &s->b->error_stream;
        }
        d->fn                  = fn;
        d->opaque              = opaque;
        d->window_ms           = window_ms;
        d->store               = node; /* the store is named after the node */
        ks_store_def_t store   = {.name         = node,
                                  .type         = KS_STORE_TYPE_WINDOW,
                                  .retention_ms = window_ms + 1};
        ks_processor_def_t def = {.init        = dedup_init,
                                  .process     = dedup_process,
                                  .close       = dedup_close,
                                  .opaque      = d,
                                  .opaque_free = dedup_free,
                                  .store       = &store};
        ks_stream_t *out       = ks__stream_add_processor(
                      s, node, "DEDUPLICATE", &def, s->key_serde, s->value_serde);
        if (out->node >= 0)
                out->key_changed = s->key_changed;
        return out;
}
