/* Suppression, as Kafka Streams' KTableSuppressProcessor with an unbounded
 * buffer: updates are buffered per key and emitted, in buffer-time order,
 * once the processor's stream time reaches buffer time + a duration:
 * - until window closes: buffer time = window end, duration = the upstream
 *   windows' grace (plus the gap for sessions); tombstones are dropped;
 * - until time limit: buffer time = the time a key was first buffered
 *   (Kafka's non-resetting buffer), duration = the limit.
 *
 * The buffer is one key-value store, changelogged, holding two families:
 *   'k' <key bytes>                       -> buffer time (8 bytes)
 *   't' <buffer time, ordered> <key bytes> -> flag, timestamp, value bytes
 * The 't' family's byte order is emit order (time, then key bytes, as
 * Kafka's BufferKey), so the due entries are a prefix scan from the front;
 * the 'k' family finds a key's entry on update without a scan. Both live in
 * the store, so a restored store is a complete buffer. */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"

typedef struct suppress_s {
        ks_serde_t *key_serde;   /* the table's keys */
        ks_serde_t *value_serde; /* the table's values */
        ks_suppress_mode_t mode;
        int64_t duration; /* grace for final results; the time limit */
        int64_t idle_ms;  /* wall-clock idle advance; 0: off */
} suppress_t;

typedef struct suppress_state_s {
        const suppress_t *s;
        int64_t observed;  /* this processor's stream time */
        int64_t last_wall; /* wall clock of the last record or advance */
        ks_buf_t key, ikey, tkey, value;
} suppress_state_t;

enum { FLAG_NULL = 0, FLAG_VALUE = 1 };

static void suppress_free(void *p) {
        suppress_t *s = p;
        ks_serde_destroy(s->key_serde);
        ks_serde_destroy(s->value_serde);
        free(s);
}

/* Buffer times as bytes that sort like the signed numbers. */
static void put_ordered_time(unsigned char *out, int64_t t) {
        ks__be64_put(out, (int64_t)((uint64_t)t ^ (UINT64_C(1) << 63)));
}

static int64_t get_ordered_time(const void *p) {
        return (int64_t)((uint64_t)ks__be64_get(p) ^ (UINT64_C(1) << 63));
}

static ks_err_t store_write(ks_ctx_t *ctx, ks_bytes_t k, ks_bytes_t v) {
        return ks__ctx_kv_put(ctx, k, v, NULL);
}

/* One due entry, copied out of the store. */
typedef struct due_s {
        ks_bytes_t tkey; /* the 't' key */
        ks_bytes_t key;  /* the table key's bytes (inside tkey) */
        ks_bytes_t value;
        bool has_value;
        int64_t ts;
} due_t;

/* Copies an entry out of the store (its bytes are borrowed). */
static ks_err_t copy_due(ks_ctx_t *ctx, ks_bytes_t k, ks_bytes_t v, due_t *d) {
        ks_arena_t *a          = ks_ctx_arena(ctx);
        const unsigned char *p = v.data;
        d->tkey.data           = ks_arena_memdup(a, k.data, k.len);
        d->tkey.len            = k.len;
        d->key.data            = (const char *)d->tkey.data + 9;
        d->key.len             = k.len - 9;
        d->has_value           = p[0] == FLAG_VALUE;
        d->ts                  = ks__be64_get(p + 1);
        /* +1: an empty value still needs a non-NULL pointer. */
        char *value   = ks_arena_alloc(a, v.len - 9 + 1);
        d->value.data = value;
        d->value.len  = v.len - 9;
        if (!d->tkey.data || !value)
                return KS_ERR_NOMEM;
        memcpy(value, p + 9, v.len - 9);
        return KS_OK;
}

/* The first buffered entry, into *d with *due set, if its buffer time is
 * <= @p expiry. */
static ks_err_t first_due(ks_ctx_t *ctx, int64_t expiry, due_t *d, bool *due) {
        ks_store_iter_t *it;
        ks_bytes_t prefix = {"t", 1}, k, v;
        ks_error_t *e = ks_kv_store_prefix(ks__ctx_kv_store(ctx), prefix, &it);
        *due          = false;
        if (e)
                return ks__ctx_store_failed(ctx, e);
        ks_err_t err = KS_OK;
        if (ks_store_iter_next(it, &k, &v)) {
                if (k.len < 9 || v.len < 9)
                        err = ks_ctx_fail(ctx,
                                          "suppress buffer: an entry of "
                                          "%zu/%zu bytes",
                                          k.len, v.len);
                else if (get_ordered_time((const char *)k.data + 1) <= expiry)
                        err = copy_due(ctx, k, v, d);
                *due = !err && d->tkey.data;
        }
        const ks_error_t *ie = ks_store_iter_error(it);
        if (!err && ie)
                err = ks_ctx_fail(ctx, "%s", ks_error_message(ie));
        ks_store_iter_destroy(it);
        return err;
}

/* Removes @p d from the buffer and forwards it unless it is a tombstone
 * that final results drop. */
static ks_err_t emit(ks_ctx_t *ctx, suppress_state_t *st, const due_t *d) {
        const suppress_t *s = st->s;
        ks_bytes_t none     = {NULL, 0};
        ks_err_t err        = store_write(ctx, d->tkey, none);
        if (err)
                return err;
        ks_buf_t *ik = &st->ikey;
        ks_buf_clear(ik);
        if ((err = ks_buf_append(ik, "k", 1)) ||
            (err = ks_buf_append(ik, d->key.data, d->key.len)) ||
            (err = store_write(ctx, (ks_bytes_t){ik->data, ik->len}, none)))
                return err;
        if (!d->has_value && s->mode == KS_SUPPRESS_UNTIL_WINDOW_CLOSES)
                return KS_OK;
        char errstr[256];
        ks_arena_t *arena = ks_ctx_arena(ctx);
        const void *key, *value = NULL;
        /* An empty key is still a key: give the serde a non-NULL pointer. */
        const void *kd = d->key.len ? d->key.data : "";
        err = ks_serde_deserialize(s->key_serde, arena, kd, d->key.len, &key,
                                   errstr, sizeof(errstr));
        if (err)
                return ks_ctx_fail(ctx, "suppress buffer key: %s", errstr);
        if (d->has_value &&
            (err = ks__dsl_stored(ctx, s->value_serde, d->value, true, &value)))
                return err;
        return ks_ctx_forward_ts(ctx, NULL, key, value, d->ts);
}

/* Kafka's enforceConstraints: emits everything due at stream time. */
static ks_err_t evict(ks_ctx_t *ctx, suppress_state_t *st) {
        if (st->observed < 0)
                return KS_OK;
        int64_t expiry = st->observed - st->s->duration;
        for (;;) {
                due_t d = {0};
                bool due;
                ks_err_t err = first_due(ctx, expiry, &d, &due);
                if (err || !due)
                        return err;
                err = emit(ctx, st, &d);
                if (err)
                        return err;
        }
}

static ks_err_t buffer(ks_ctx_t *ctx,
                       suppress_state_t *st,
                       const void *key,
                       const void *value) {
        const suppress_t *s  = st->s;
        ks_kv_store_t *store = ks__ctx_kv_store(ctx);
        int64_t time         = s->mode == KS_SUPPRESS_UNTIL_WINDOW_CLOSES
                                       ? ((const ks_windowed_key_t *)key)->end
                                       : ks_ctx_timestamp(ctx);
        ks_err_t err = ks__dsl_serialize(ctx, s->key_serde, key, &st->key);
        if (err)
                return err;
        /* ks__dsl_serialize reserves a byte for an empty key: use len. */
        ks_buf_t *ik = &st->ikey;
        ks_buf_clear(ik);
        if ((err = ks_buf_append(ik, "k", 1)) ||
            (err = ks_buf_append(ik, st->key.data, st->key.len)))
                return err;
        ks_bytes_t ikb = {ik->data, ik->len}, stored;
        bool found;
        ks_error_t *e = ks_kv_store_get(store, ikb, &stored, &found);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        unsigned char be[9];
        if (found && stored.len == 8) {
                /* Non-resetting, as Kafka's buffer: an update keeps the
                 * key's place. */
                time = get_ordered_time(stored.data);
        } else {
                put_ordered_time(be, time);
                if ((err = store_write(ctx, ikb, (ks_bytes_t){be, 8})))
                        return err;
        }
        ks_buf_t *tk = &st->tkey;
        ks_buf_clear(tk);
        put_ordered_time(be + 1, time);
        be[0] = 't';
        if ((err = ks_buf_append(tk, be, 9)) ||
            (err = ks_buf_append(tk, st->key.data, st->key.len)))
                return err;
        ks_buf_t *v = &st->value;
        if (value) {
                if ((err = ks__dsl_serialize(ctx, s->value_serde, value, v)))
                        return err;
        } else {
                ks_buf_clear(v);
        }
        /* The header goes in front of the value's bytes. */
        unsigned char hdr[9];
        hdr[0] = value ? FLAG_VALUE : FLAG_NULL;
        ks__be64_put(hdr + 1, ks_ctx_timestamp(ctx));
        if ((err = ks_buf_reserve(v, sizeof(hdr))))
                return err;
        memmove((char *)v->data + sizeof(hdr), v->data, v->len);
        memcpy(v->data, hdr, sizeof(hdr));
        v->len += sizeof(hdr);
        return store_write(ctx, (ks_bytes_t){tk->data, tk->len},
                           (ks_bytes_t){v->data, v->len});
}

static ks_err_t idle_advance(ks_ctx_t *ctx, int64_t now, void *opaque) {
        suppress_state_t *st = opaque;
        if (st->observed < 0 || now - st->last_wall < st->s->idle_ms)
                return KS_OK;
        st->observed += now - st->last_wall;
        st->last_wall = now;
        return evict(ctx, st);
}

static ks_err_t suppress_init(ks_ctx_t *ctx, void **state, void *opaque) {
        const suppress_t *s  = opaque;
        suppress_state_t *st = calloc(1, sizeof(*st));
        if (!st)
                return KS_ERR_NOMEM;
        st->s = s;
        /* Its own time, not the task's: it sees upstream updates only when
         * their record caches flush, and closing windows on the task's
         * time would emit a window before its last cached update came.
         * Seeded with the task's time, which after a restart is the
         * committed one: every cache was flushed before that commit, so
         * everything due by then was emitted, and stays emitted. */
        st->observed  = ks_ctx_stream_time(ctx);
        st->last_wall = ks__task_wall_clock(ctx->task);
        *state        = st;
        if (s->idle_ms > 0) {
                int64_t every = s->idle_ms < 1000 ? s->idle_ms : 1000;
                if (!ks_ctx_schedule(ctx, every, KS_PUNCTUATE_WALL_CLOCK,
                                     idle_advance, st))
                        return ks_ctx_fail(ctx,
                                           "suppress: cannot schedule "
                                           "the idle advance");
        }
        return KS_OK;
}

static void suppress_close(ks_ctx_t *ctx, void *state, void *opaque) {
        suppress_state_t *st = state;
        (void)ctx, (void)opaque;
        ks_buf_free(&st->key);
        ks_buf_free(&st->ikey);
        ks_buf_free(&st->tkey);
        ks_buf_free(&st->value);
        free(st);
}

static ks_err_t suppress_process(ks_ctx_t *ctx,
                                 const void *key,
                                 const void *value,
                                 void *state,
                                 void *opaque) {
        suppress_state_t *st = state;
        (void)opaque;
        /* A table has no null keys; a stream fed in by hand might. */
        if (!key) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        int64_t ts = ks_ctx_timestamp(ctx);
        if (ts > st->observed)
                st->observed = ts;
        if (st->s->idle_ms > 0) /* a clock read only when it is used */
                st->last_wall = ks__task_wall_clock(ctx->task);
        ks_err_t err = buffer(ctx, st, key, value);
        return err ? err : evict(ctx, st);
}

/* ---- the DSL ------------------------------------------------------------ */

/* The upstream windows' close delay, or false if @p t is not windowed.
 * Time-windowed tables come from dsl_stateful.c's aggregate(), which does
 * not set the table's fields (yet): its node keeps an agg_t. */
static bool window_close_after(const ks_table_t *t, int64_t *close_after) {
        if (t->windowed) {
                *close_after = t->close_after_ms;
                return true;
        }
        const ks_node_t *n = t->b->nodes[t->node];
        if (n->store && n->store->kind == KS_STORE_WINDOW && t->key_serde &&
            !strcmp(ks_serde_name(t->key_serde), "windowed") && n->def.opaque) {
                const agg_t *a = n->def.opaque;
                if (a->windowed) {
                        *close_after = a->windows.grace_ms;
                        return true;
                }
        }
        return false;
}

ks_table_t *ks_table_suppress(ks_table_t *t,
                              ks_suppress_mode_t mode,
                              int64_t time_limit_ms,
                              const char *name) {
        if (!t)
                return NULL;
        ks_builder_t *b = t->b;
        const char *what =
                name ? name : "suppress"; /* for errors before a name */
        int64_t duration = time_limit_ms;
        if (mode == KS_SUPPRESS_UNTIL_WINDOW_CLOSES) {
                if (!window_close_after(t, &duration)) {
                        ks__builder_fail(b,
                                         "%s: until-window-closes needs a "
                                         "windowed table",
                                         what);
                        return NULL;
                }
        } else if (mode != KS_SUPPRESS_UNTIL_TIME_LIMIT || time_limit_ms < 0) {
                ks__builder_fail(b, "%s: invalid mode or time limit", what);
                return NULL;
        }
        if (!t->key_serde || !t->value_serde) {
                ks__builder_fail(b,
                                 "%s: the table's key and value serdes must "
                                 "be known",
                                 what);
                return NULL;
        }
        char *store_name;
        if (name) {
                size_t len = strlen(name) + sizeof("-store");
                store_name = malloc(len);
                if (store_name)
                        snprintf(store_name, len, "%s-store", name);
        } else {
                store_name = ks__builder_name(b, NULL,
                                              "KTABLE-SUPPRESS-STATE-STORE");
        }
        suppress_t *s = calloc(1, sizeof(*s));
        if (!s || !store_name) {
                free(s);
                free(store_name);
                ks__builder_fail(b, "%s: out of memory", what);
                return NULL;
        }
        s->key_serde           = ks_serde_ref(t->key_serde);
        s->value_serde         = ks_serde_ref(t->value_serde);
        s->mode                = mode;
        s->duration            = duration;
        ks_stream_t parent     = {.b = b, .node = t->node};
        ks_processor_def_t def = {.init        = suppress_init,
                                  .process     = suppress_process,
                                  .close       = suppress_close,
                                  .opaque      = s,
                                  .opaque_free = suppress_free};
        ks_stream_t *out =
                ks__stream_add_processor(&parent, name, "KTABLE-SUPPRESS", &def,
                                         t->key_serde, t->value_serde);
        if (!out || out->node < 0) {
                free(store_name);
                return NULL;
        }
        if (!ks__node_set_store(b, out->node, store_name, KS_STORE_KV, 0))
                return NULL;
        ks_table_t *st =
                ks__table_new(b, out->node, s->key_serde, s->value_serde);
        int64_t close_after;
        if (st && window_close_after(t, &close_after)) {
                st->windowed       = true;
                st->close_after_ms = close_after;
        }
        return st;
}

ks_table_t *ks_table_suppress_idle_advance(ks_table_t *suppressed,
                                           int64_t idle_ms) {
        if (!suppressed)
                return NULL;
        ks_node_t *n = suppressed->b->nodes[suppressed->node];
        if (n->def.process != suppress_process || idle_ms < 0) {
                ks__builder_fail(suppressed->b, "suppress_idle_advance: %s",
                                 idle_ms < 0 ? "negative idle time"
                                             : "not a suppressed table");
                return NULL;
        }
        ((suppress_t *)n->def.opaque)->idle_ms = idle_ms;
        return suppressed;
}

/* ---- closing every window (ks__task_close_windows) ---------------------- */

bool ks__suppress_is(const ks_node_t *n) {
        return n->def.process == suppress_process;
}

ks_err_t ks__suppress_emit_all(ks_ctx_t *ctx, void *state, size_t *emitted) {
        for (;;) {
                due_t d = {0};
                bool due;
                ks_err_t err = first_due(ctx, INT64_MAX, &d, &due);
                if (err || !due)
                        return err;
                if ((err = emit(ctx, state, &d)))
                        return err;
                (*emitted)++;
        }
}
