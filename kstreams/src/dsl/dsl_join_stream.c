/* Stream-stream joins, as Kafka Streams' KStreamKStreamJoin: each side
 * keeps a window store of its records; a record joins the other side's
 * records within the windows (inner, left, outer, with KIP-962's null
 * keys), and outer joins emit their unmatched records once the window
 * closes, from a store shared by both sides (the merge node's). */
#include <stdlib.h>
#include <string.h>

#include "dsl_int.h"

static int64_t max64(int64_t x, int64_t y) {
        return x > y ? x : y;
}

/* ---- stream-stream: value lists --------------------------------------------
 *
 * A window store keeps one value per (key, time); a join side must keep
 * every record (Kafka Streams' retainDuplicates), so the stored value is a
 * list: [4-byte big-endian length][bytes], repeated. The outer store's
 * values are lists too (Kafka Streams' ListValueStore). */

static ks_err_t list_append(ks_buf_t *out,
                            ks_bytes_t list,
                            bool found,
                            ks_bytes_t item) {
        unsigned char len[4] = {(unsigned char)(item.len >> 24),
                                (unsigned char)(item.len >> 16),
                                (unsigned char)(item.len >> 8),
                                (unsigned char)item.len};
        ks_buf_clear(out);
        ks_err_t err = found && list.len
                               ? ks_buf_append(out, list.data, list.len)
                               : KS_OK;
        if (!err)
                err = ks_buf_append(out, len, 4);
        if (!err && item.len)
                err = ks_buf_append(out, item.data, item.len);
        return err;
}

/* Takes the next item off @p list. @returns false at the end. */
static bool list_next(ks_bytes_t *list, ks_bytes_t *item) {
        const unsigned char *p = list->data;
        if (list->len < 4)
                return false;
        size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
                     (size_t)p[2] << 8 | p[3];
        if (len > list->len - 4)
                return false;
        *item      = (ks_bytes_t){p + 4, len};
        list->data = p + 4 + len;
        list->len -= 4 + len;
        return true;
}

static ks_err_t deserialize(ks_ctx_t *ctx,
                            ks_serde_t *serde,
                            ks_bytes_t bytes,
                            const void **obj) {
        return ks__dsl_stored(ctx, serde, bytes, true, obj);
}

/* ---- stream-stream: the windowed sides
 * ---------------------------------------
 */

typedef struct sswin_s {
        ks_serde_t *key_serde;   /* owned reference */
        ks_serde_t *value_serde; /* owned reference */
} sswin_t;

typedef struct sswin_state_s {
        ks_buf_t key, value, list;
} sswin_state_t;

static void sswin_free(void *p) {
        sswin_t *w = p;
        ks_serde_destroy(w->key_serde);
        ks_serde_destroy(w->value_serde);
        free(w);
}

static ks_err_t sswin_init(ks_ctx_t *ctx, void **state, void *opaque) {
        (void)ctx, (void)opaque;
        *state = calloc(1, sizeof(sswin_state_t));
        return *state ? KS_OK : KS_ERR_NOMEM;
}

static void sswin_close(ks_ctx_t *ctx, void *state, void *opaque) {
        sswin_state_t *st = state;
        (void)ctx, (void)opaque;
        ks_buf_free(&st->key);
        ks_buf_free(&st->value);
        ks_buf_free(&st->list);
        free(st);
}

/* As KStreamJoinWindow: forwards every record to the join, then keeps it
 * in this side's window store (the store ignores expired times). */
static ks_err_t sswin_process(ks_ctx_t *ctx,
                              const void *key,
                              const void *value,
                              void *state,
                              void *opaque) {
        const sswin_t *w  = opaque;
        sswin_state_t *st = state;
        ks_err_t err      = ks_ctx_forward(ctx, key, value);
        if (err || !key || !value)
                return err;
        ks_window_store_t *store = ks__ctx_window_store(ctx);
        int64_t ts               = ks_ctx_timestamp(ctx);
        if ((err = ks__dsl_serialize(ctx, w->key_serde, key, &st->key)) ||
            (err = ks__dsl_serialize(ctx, w->value_serde, value, &st->value)))
                return err;
        ks_bytes_t k = {st->key.data, st->key.len}, cur;
        bool found;
        ks_error_t *e = ks_window_store_get(store, k, ts, &cur, &found);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        if ((err = list_append(&st->list, cur, found,
                               (ks_bytes_t){st->value.data, st->value.len})))
                return err;
        ks_bytes_t v = {st->list.data, st->list.len};
        return ks__ctx_window_put(ctx, k, ts, v, NULL);
}

/* ---- stream-stream: the join processors
 * --------------------------------------
 */

/* Kafka Streams' shared TimeTracker: the merge node's state, per task. */
typedef struct sstime_s {
        int64_t stream_time; /* the largest time either side has seen */
        int64_t min_time;    /* the oldest outer-store entry; MAX: unknown */
} sstime_t;

typedef struct ssjoin_s {
        bool left_side; /* this processor handles the join's left stream */
        bool outer;     /* this side's unjoined records are emitted */
        int64_t before, after; /* this side's window around a record */
        ks_join_windows_t w;
        char *other_store;
        char *outer_store; /* NULL for inner joins */
        int merge_node;
        ks_serde_t *key_serde;                /* owned reference */
        ks_serde_t *left_serde, *right_serde; /* owned references */
        ks_value_joiner_fn *joiner;
        void *opaque;
} ssjoin_t;

typedef struct ssjoin_state_s {
        ks_window_store_t *other;
        ks_kv_store_t *outer;
        ks_buf_t key, okey, value, list;
} ssjoin_state_t;

static void ssjoin_free(void *p) {
        ssjoin_t *j = p;
        free(j->other_store);
        free(j->outer_store);
        ks_serde_destroy(j->key_serde);
        ks_serde_destroy(j->left_serde);
        ks_serde_destroy(j->right_serde);
        free(j);
}

static ks_err_t ssjoin_init(ks_ctx_t *ctx, void **state, void *opaque) {
        const ssjoin_t *j  = opaque;
        ssjoin_state_t *st = calloc(1, sizeof(*st));
        if (!st)
                return KS_ERR_NOMEM;
        st->other = ks__ctx_store_named(ctx, j->other_store);
        if (j->outer_store)
                st->outer = ks__ctx_store_named(ctx, j->outer_store);
        *state = st;
        if (!st->other || (j->outer_store && !st->outer))
                return ks_ctx_fail(ctx, "join stores missing from the task");
        return KS_OK;
}

static void ssjoin_close(ks_ctx_t *ctx, void *state, void *opaque) {
        ssjoin_state_t *st = state;
        (void)ctx, (void)opaque;
        ks_buf_free(&st->key);
        ks_buf_free(&st->okey);
        ks_buf_free(&st->value);
        ks_buf_free(&st->list);
        free(st);
}

static const void *call_joiner(ks_ctx_t *ctx,
                               const ssjoin_t *j,
                               const void *key,
                               const void *this_value,
                               const void *other_value) {
        return j->left_side ? j->joiner(ks_ctx_arena(ctx), key, this_value,
                                        other_value, j->opaque)
                            : j->joiner(ks_ctx_arena(ctx), key, other_value,
                                        this_value, j->opaque);
}

/* The outer store's key: 8-byte big-endian time, the side (1: left,
 * 0: right), the key's bytes; so a scan goes by time, as Kafka Streams'
 * TimestampedKeyAndJoinSide. */
static ks_err_t outer_key(ks_buf_t *out,
                          int64_t ts,
                          bool left,
                          const ks_buf_t *key) {
        unsigned char head[9];
        ks__be64_put(head, ts);
        head[8] = left ? 1 : 0;
        ks_buf_clear(out);
        ks_err_t err = ks_buf_append(out, head, 9);
        return err ? err : ks_buf_append(out, key->data, key->len);
}

/* Writes the merge node's store (the shared outer store) and its
 * changelog, on behalf of a join side. */
static ks_err_t outer_put(ks_ctx_t *ctx,
                          const ssjoin_t *j,
                          ks_bytes_t k,
                          ks_bytes_t v) {
        return ks__ctx_kv_put_for(ctx, j->merge_node, k, v);
}

typedef struct pending_s {
        ks_bytes_t key; /* the outer store key, an arena copy */
        ks_bytes_t list;
        struct pending_s *next;
} pending_t;

/* Collects the outer records whose window has closed (in time order),
 * then emits and deletes them, as emitNonJoinedOuterRecords. */
static ks_err_t emit_closed(ks_ctx_t *ctx,
                            const ssjoin_t *j,
                            ssjoin_state_t *st,
                            sstime_t *tt) {
        /* Only look when something might have closed. */
        if (tt->min_time != INT64_MAX &&
            tt->min_time + j->after + j->w.grace_ms >= tt->stream_time)
                return KS_OK;
        ks_arena_t *arena = ks_ctx_arena(ctx);
        ks_store_iter_t *it;
        ks_error_t *e = ks_kv_store_range(st->outer, (ks_bytes_t){NULL, 0},
                                          (ks_bytes_t){NULL, 0}, &it);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        tt->min_time    = INT64_MAX;
        pending_t *head = NULL, **tail = &head;
        bool left_open = false, right_open = false;
        ks_bytes_t k, v;
        while (!(left_open && right_open) && ks_store_iter_next(it, &k, &v)) {
                if (k.len < 9)
                        continue;
                const unsigned char *p = k.data;
                int64_t ts             = ks__be64_get(p);
                bool left              = p[8] == 1;
                tt->min_time           = ts;
                /* A left record's window ends at ts + after; a right
                 * record's at ts + before. */
                int64_t lookback = left ? j->w.after_ms : j->w.before_ms;
                if (ts + lookback + j->w.grace_ms >= tt->stream_time) {
                        *(left ? &left_open : &right_open) = true;
                        continue;
                }
                pending_t *pd = ks_arena_alloc(arena, sizeof(*pd));
                void *kc      = ks_arena_memdup(arena, k.data, k.len);
                void *vc      = v.len ? ks_arena_memdup(arena, v.data, v.len)
                                      : (void *)"";
                if (!pd || !kc || !vc) {
                        ks_store_iter_destroy(it);
                        return KS_ERR_NOMEM;
                }
                *pd   = (pending_t){{kc, k.len}, {vc, v.len}, NULL};
                *tail = pd;
                tail  = &pd->next;
        }
        ks_err_t err =
                ks_store_iter_error(it)
                        ? ks_ctx_fail(ctx, "%s",
                                      ks_error_message(ks_store_iter_error(it)))
                        : KS_OK;
        ks_store_iter_destroy(it);
        for (pending_t *pd = head; pd && !err; pd = pd->next) {
                const unsigned char *p = pd->key.data;
                int64_t ts             = ks__be64_get(p);
                bool left              = p[8] == 1;
                const void *key;
                err             = deserialize(ctx, j->key_serde,
                                              (ks_bytes_t){p + 9, pd->key.len - 9}, &key);
                ks_bytes_t list = pd->list, item;
                while (!err && list_next(&list, &item)) {
                        const void *val;
                        err = deserialize(ctx,
                                          left ? j->left_serde : j->right_serde,
                                          item, &val);
                        if (err)
                                break;
                        const void *out = left ? j->joiner(arena, key, val,
                                                           NULL, j->opaque)
                                               : j->joiner(arena, key, NULL,
                                                           val, j->opaque);
                        err = ks_ctx_forward_ts(ctx, NULL, key, out, ts);
                }
                if (!err)
                        err = outer_put(ctx, j, pd->key, (ks_bytes_t){NULL, 0});
        }
        return err;
}

typedef struct match_s {
        int64_t ts;
        ks_bytes_t list;
        struct match_s *next;
} match_t;

/* The other side's records for the key in [from, to], copied. */
static ks_err_t fetch_other(ks_ctx_t *ctx,
                            ssjoin_state_t *st,
                            int64_t from,
                            int64_t to,
                            match_t **out) {
        ks_arena_t *arena = ks_ctx_arena(ctx);
        ks_store_iter_t *it;
        ks_error_t *e = ks_window_store_fetch(
                st->other, (ks_bytes_t){st->key.data, st->key.len}, from, to,
                &it);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        match_t **tail = out;
        ks_bytes_t k, v;
        int64_t start;
        ks_err_t err = KS_OK;
        *out         = NULL;
        while (ks_store_iter_next_window(it, &k, &start, &v)) {
                match_t *m = ks_arena_alloc(arena, sizeof(*m));
                void *vc   = v.len ? ks_arena_memdup(arena, v.data, v.len)
                                   : (void *)"";
                if (!m || !vc) {
                        err = KS_ERR_NOMEM;
                        break;
                }
                *m    = (match_t){start, {vc, v.len}, NULL};
                *tail = m;
                tail  = &m->next;
        }
        if (!err && ks_store_iter_error(it))
                err = ks_ctx_fail(ctx, "%s",
                                  ks_error_message(ks_store_iter_error(it)));
        ks_store_iter_destroy(it);
        return err;
}

/* Drops the other side's outer records at (ts, key): they joined. */
static ks_err_t outer_forget(ks_ctx_t *ctx,
                             const ssjoin_t *j,
                             ssjoin_state_t *st,
                             int64_t ts) {
        ks_err_t err = outer_key(&st->okey, ts, !j->left_side, &st->key);
        if (err)
                return err;
        ks_bytes_t k = {st->okey.data, st->okey.len}, cur;
        bool found;
        ks_error_t *e = ks_kv_store_get(st->outer, k, &cur, &found);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        return found ? outer_put(ctx, j, k, (ks_bytes_t){NULL, 0}) : KS_OK;
}

/* Keeps an unjoined record until its window closes. */
static ks_err_t outer_remember(ks_ctx_t *ctx,
                               const ssjoin_t *j,
                               ssjoin_state_t *st,
                               const void *value,
                               int64_t ts) {
        ks_err_t err = outer_key(&st->okey, ts, j->left_side, &st->key);
        if (!err)
                err = ks__dsl_serialize(
                        ctx, j->left_side ? j->left_serde : j->right_serde,
                        value, &st->value);
        if (err)
                return err;
        ks_bytes_t k = {st->okey.data, st->okey.len}, cur;
        bool found;
        ks_error_t *e = ks_kv_store_get(st->outer, k, &cur, &found);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        if ((err = list_append(&st->list, cur, found,
                               (ks_bytes_t){st->value.data, st->value.len})))
                return err;
        return outer_put(ctx, j, k, (ks_bytes_t){st->list.data, st->list.len});
}

static ks_err_t ssjoin_process(ks_ctx_t *ctx,
                               const void *key,
                               const void *value,
                               void *state,
                               void *opaque) {
        const ssjoin_t *j  = opaque;
        ssjoin_state_t *st = state;
        sstime_t *tt       = ctx->task->states[j->merge_node];
        int64_t ts         = ks_ctx_timestamp(ctx);
        tt->stream_time = max64(tt->stream_time, ks__dsl_stream_time(ctx, ts));
        if (j->outer && !key && value) /* KIP-962 */
                return ks_ctx_forward(ctx, key,
                                      call_joiner(ctx, j, key, value, NULL));
        if (!key || !value) {
                ks__ctx_count_skipped(ctx);
                return KS_OK;
        }
        ks_err_t err;
        if (st->outer && ts == tt->stream_time &&
            (err = emit_closed(ctx, j, st, tt)))
                return err;
        int64_t from = max64(0, ts - j->before);
        int64_t to   = max64(0, ts + j->after);
        match_t *m;
        if ((err = ks__dsl_serialize(ctx, j->key_serde, key, &st->key)) ||
            (err = fetch_other(ctx, st, from, to, &m)))
                return err;
        if (!m) {
                if (!j->outer)
                        return KS_OK;
                /* Already closed (it came late): emit now. */
                if (!st->outer || to < tt->stream_time)
                        return ks_ctx_forward(
                                ctx, key,
                                call_joiner(ctx, j, key, value, NULL));
                if (ts < tt->min_time)
                        tt->min_time = ts;
                return outer_remember(ctx, j, st, value, ts);
        }
        ks_serde_t *other_serde = j->left_side ? j->right_serde : j->left_serde;
        for (; m && !err; m = m->next) {
                if (st->outer && (err = outer_forget(ctx, j, st, m->ts)))
                        break;
                ks_bytes_t list = m->list, item;
                while (!err && list_next(&list, &item)) {
                        const void *other;
                        if ((err = deserialize(ctx, other_serde, item, &other)))
                                break;
                        err = ks_ctx_forward_ts(
                                ctx, NULL, key,
                                call_joiner(ctx, j, key, value, other),
                                max64(ts, m->ts));
                }
        }
        return err;
}

static ks_err_t merge_init(ks_ctx_t *ctx, void **state, void *opaque) {
        (void)ctx, (void)opaque;
        sstime_t *tt = calloc(1, sizeof(*tt));
        if (!tt)
                return KS_ERR_NOMEM;
        tt->stream_time = -1;
        tt->min_time    = INT64_MAX;
        *state          = tt;
        return KS_OK;
}

static void merge_close(ks_ctx_t *ctx, void *state, void *opaque) {
        (void)ctx, (void)opaque;
        free(state);
}

typedef struct ssnames_s {
        char *win[2], *join[2], *merge, *store[2], *outer;
} ssnames_t;

static void ssnames_free(ssnames_t *n) {
        for (int i = 0; i < 2; i++) {
                free(n->win[i]);
                free(n->join[i]);
                free(n->store[i]);
        }
        free(n->merge);
        free(n->outer);
}

/* Kafka Streams' names: this/other windowed, join (outer-... when the
 * other side is outer), merge. */
static bool ssnames(ks_builder_t *b,
                    const char *name,
                    bool left_outer,
                    bool right_outer,
                    ssnames_t *n) {
        memset(n, 0, sizeof(*n));
        n->win[0] =
                ks__join_name(b, name, "-this-windowed", "KSTREAM", "WINDOWED");
        n->win[1]  = ks__join_name(b, name, "-other-windowed", "KSTREAM",
                                   "WINDOWED");
        n->join[0] = ks__join_name(
                b, name, right_outer ? "-outer-this-join" : "-this-join",
                "KSTREAM", right_outer ? "OUTERTHIS" : "JOINTHIS");
        n->join[1] = ks__join_name(
                b, name, left_outer ? "-outer-other-join" : "-other-join",
                "KSTREAM", left_outer ? "OUTEROTHER" : "JOINOTHER");
        n->merge = ks__join_name(b, name, "-merge", "KSTREAM", "MERGE");
        char buf[320];
        for (int i = 0; i < 2 && n->join[i]; i++) {
                snprintf(buf, sizeof(buf), "%s%s", name ? name : n->join[i],
                         name ? (i ? "-other-join-store" : "-this-join-store")
                              : "-store");
                n->store[i] = strdup(buf);
        }
        if (left_outer && n->merge) {
                snprintf(buf, sizeof(buf), "%s%s", name ? name : n->merge,
                         "-outer-shared-join-store");
                n->outer = strdup(buf);
        }
        bool ok = n->win[0] && n->win[1] && n->join[0] && n->join[1] &&
                  n->merge && n->store[0] && n->store[1] &&
                  (!left_outer || n->outer);
        if (!ok)
                ks__builder_fail(b, "stream join: out of memory");
        return ok;
}

static ssjoin_t *ssjoin_new(const ks_stream_t *a,
                            ks_serde_t *left_serde,
                            ks_serde_t *right_serde,
                            bool left_side,
                            bool outer,
                            ks_join_windows_t w,
                            const ssnames_t *n,
                            ks_value_joiner_fn *joiner,
                            void *opaque) {
        ssjoin_t *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        j->left_side   = left_side;
        j->outer       = outer;
        j->w           = w;
        j->before      = left_side ? w.before_ms : w.after_ms;
        j->after       = left_side ? w.after_ms : w.before_ms;
        j->other_store = strdup(n->store[left_side ? 1 : 0]);
        j->outer_store = n->outer ? strdup(n->outer) : NULL;
        j->key_serde   = ks_serde_ref(a->key_serde);
        j->left_serde  = ks_serde_ref(left_serde);
        j->right_serde = ks_serde_ref(right_serde);
        j->joiner      = joiner;
        j->opaque      = opaque;
        if (!j->other_store || (n->outer && !j->outer_store)) {
                ssjoin_free(j);
                return NULL;
        }
        return j;
}

/* One side: its windowed node (owning its store) and its join node. */
static ks_stream_t *ss_side(ks_stream_t *s,
                            int side,
                            const ssnames_t *n,
                            ks_serde_t *value_serde,
                            ssjoin_t *j,
                            int64_t retention) {
        ks_builder_t *b = s->b;
        sswin_t *w      = calloc(1, sizeof(*w));
        if (!w) {
                ssjoin_free(j);
                ks__builder_fail(b, "%s: out of memory", n->win[side]);
                return &b->error_stream;
        }
        w->key_serde            = ks_serde_ref(s->key_serde);
        w->value_serde          = ks_serde_ref(value_serde);
        ks_processor_def_t wdef = {.init        = sswin_init,
                                   .process     = sswin_process,
                                   .close       = sswin_close,
                                   .opaque      = w,
                                   .opaque_free = sswin_free};
        ks_stream_t *win        = ks__stream_add_processor(
                       s, n->win[side], NULL, &wdef, s->key_serde, s->value_serde);
        char *store = strdup(n->store[side]);
        if (win->node < 0 || !store ||
            !ks__node_set_store(b, win->node, store, KS_STORE_WINDOW,
                                retention)) {
                if (win->node < 0)
                        free(store);
                ssjoin_free(j);
                return &b->error_stream;
        }
        ks_processor_def_t jdef = {.init        = ssjoin_init,
                                   .process     = ssjoin_process,
                                   .close       = ssjoin_close,
                                   .opaque      = j,
                                   .opaque_free = ssjoin_free};
        ks_stream_t *out = ks__stream_add_processor(win, n->join[side], NULL,
                                                    &jdef, NULL, NULL);
        if (out->node < 0)
                return out;
        ks__node_add_store_ref(b, out->node, n->store[1 - side]);
        if (n->outer)
                ks__node_add_store_ref(b, out->node, n->outer);
        return out;
}

static ks_stream_t *stream_stream(ks_stream_t *a,
                                  ks_stream_t *b_stream,
                                  const char *name,
                                  ks_value_joiner_fn *joiner,
                                  void *opaque,
                                  ks_join_windows_t w,
                                  ks_serde_t *a_value_serde,
                                  ks_serde_t *b_value_serde,
                                  bool left_outer,
                                  bool right_outer) {
        ks_stream_t *result = NULL;
        ssnames_t n         = {0};
        if (!a || !b_stream)
                goto out;
        ks_builder_t *b  = a->b;
        const char *step = name ? name : "stream join";
        result           = &b->error_stream;
        if (!ks__stream_ok(a, step) || !ks__stream_ok(b_stream, step))
                goto out;
        if (b_stream->b != b || !joiner || w.grace_ms < 0 ||
            w.before_ms + w.after_ms < 0) {
                ks__builder_fail(b, "%s: %s", step,
                                 b_stream->b != b ? "the streams come from "
                                                    "different builders"
                                 : !joiner        ? "NULL joiner"
                                           : "invalid join windows (before + "
                                             "after and grace must not be "
                                             "negative)");
                goto out;
        }
        if (!a_value_serde)
                a_value_serde =
                        a->value_serde ? ks_serde_ref(a->value_serde) : NULL;
        if (!b_value_serde)
                b_value_serde = b_stream->value_serde
                                        ? ks_serde_ref(b_stream->value_serde)
                                        : NULL;
        if (!a->key_serde || !a_value_serde || !b_value_serde) {
                ks__builder_fail(b,
                                 "%s: the key and both value serdes must be "
                                 "known to store the records: pass them",
                                 step);
                goto out;
        }
        if (!ssnames(b, name, left_outer, right_outer, &n))
                goto out;
        char rp[320];
        snprintf(rp, sizeof(rp), "%s-left", name ? name : n.join[0]);
        a = ks__copartition(a, rp);
        snprintf(rp, sizeof(rp), "%s-right", name ? name : n.join[0]);
        b_stream = ks__copartition(b_stream, rp);
        if (a->node < 0 || b_stream->node < 0)
                goto out;
        ssjoin_t *ja = ssjoin_new(a, a_value_serde, b_value_serde, true,
                                  left_outer, w, &n, joiner, opaque);
        ssjoin_t *jb = ssjoin_new(a, a_value_serde, b_value_serde, false,
                                  right_outer, w, &n, joiner, opaque);
        if (!ja || !jb) {
                if (ja)
                        ssjoin_free(ja);
                if (jb)
                        ssjoin_free(jb);
                ks__builder_fail(b, "%s: out of memory", step);
                goto out;
        }
        /* A record at stream time - (before + after + grace) can still
         * join a record whose window is open, and the window store expires
         * times retention or more behind its newest: keep one more ms. */
        int64_t retention = w.before_ms + w.after_ms + w.grace_ms + 1;
        ks_stream_t *sa   = ss_side(a, 0, &n, a_value_serde, ja, retention);
        ks_stream_t *sb =
                ss_side(b_stream, 1, &n, b_value_serde, jb, retention);
        if (sa->node < 0 || sb->node < 0)
                goto out;
        int parents[2] = {sa->node, sb->node};
        ks_node_t *m =
                ks__builder_add_node(b, n.merge, KS_NODE_PROCESSOR, parents, 2);
        n.merge = NULL; /* taken */
        if (!m)
                goto out;
        m->def         = (ks_processor_def_t){.init    = merge_init,
                                              .process = ks__join_pass,
                                              .close   = merge_close};
        ja->merge_node = m->id;
        jb->merge_node = m->id;
        if (n.outer) {
                char *outer = n.outer;
                n.outer     = NULL; /* taken, even on failure */
                if (!ks__node_set_store(b, m->id, outer, KS_STORE_KV, 0))
                        goto out;
        }
        result = ks__stream_new(b, m->id, a->key_serde, NULL);
out:
        ks_serde_destroy(a_value_serde);
        ks_serde_destroy(b_value_serde);
        ssnames_free(&n);
        return result;
}

ks_stream_t *ks_stream_join_stream(ks_stream_t *a,
                                   ks_stream_t *b,
                                   const char *name,
                                   ks_value_joiner_fn *joiner,
                                   void *opaque,
                                   ks_join_windows_t w,
                                   ks_serde_t *a_value_serde,
                                   ks_serde_t *b_value_serde) {
        return stream_stream(a, b, name, joiner, opaque, w, a_value_serde,
                             b_value_serde, false, false);
}

ks_stream_t *ks_stream_left_join_stream(ks_stream_t *a,
                                        ks_stream_t *b,
                                        const char *name,
                                        ks_value_joiner_fn *joiner,
                                        void *opaque,
                                        ks_join_windows_t w,
                                        ks_serde_t *a_value_serde,
                                        ks_serde_t *b_value_serde) {
        return stream_stream(a, b, name, joiner, opaque, w, a_value_serde,
                             b_value_serde, true, false);
}

ks_stream_t *ks_stream_outer_join_stream(ks_stream_t *a,
                                         ks_stream_t *b,
                                         const char *name,
                                         ks_value_joiner_fn *joiner,
                                         void *opaque,
                                         ks_join_windows_t w,
                                         ks_serde_t *a_value_serde,
                                         ks_serde_t *b_value_serde) {
        return stream_stream(a, b, name, joiner, opaque, w, a_value_serde,
                             b_value_serde, true, true);
}
