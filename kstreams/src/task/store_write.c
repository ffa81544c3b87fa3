/* What operators write to their stores, and the changelog that follows:
 * each write goes to the store, then to the store's changelog (and, for
 * a store whose changes go downstream, through the record cache), so an
 * operator only reads and writes its store and never builds a changelog
 * record. The changelog key format is written and read here only:
 *   key-value store   the store key
 *   window store      the key, then the window start (8 bytes BE)
 *   session store     the key, then the session end and start (8 each)
 * which are the windowed serdes' formats (ks_serde_windowed(),
 * ks_serde_session_windowed()), so a windowed table's downstream key and
 * its changelog key are the same bytes. @locality stream thread */
#include <string.h>

#include "bytes_int.h"
#include "changelog_int.h"

ks_err_t ks__changelog_key(ks_buf_t *out,
                           int kind,
                           ks_bytes_t key,
                           int64_t start,
                           int64_t end) {
        unsigned char be[16];
        size_t n = 0;
        if (kind == KS_STORE_WINDOW) {
                ks__be64_put(be, start);
                n = 8;
        } else if (kind == KS_STORE_SESSION) {
                ks__be64_put(be, end);
                ks__be64_put(be + 8, start);
                n = 16;
        }
        ks_buf_clear(out);
        ks_err_t err = ks_buf_append(out, key.data, key.len);
        return err ? err : ks_buf_append(out, be, n);
}

bool ks__changelog_key_parse(int kind,
                             ks_bytes_t clkey,
                             ks_bytes_t *key,
                             int64_t *start,
                             int64_t *end) {
        const unsigned char *p = clkey.data;
        size_t trailer         = kind == KS_STORE_WINDOW    ? 8
                                 : kind == KS_STORE_SESSION ? 16
                                                            : 0;
        if (clkey.len < trailer)
                return false;
        *key   = (ks_bytes_t){clkey.data, clkey.len - trailer};
        *start = *end = 0;
        if (kind == KS_STORE_WINDOW) {
                *start = ks__be64_get(p + clkey.len - 8);
        } else if (kind == KS_STORE_SESSION) {
                *end   = ks__be64_get(p + clkey.len - 16);
                *start = ks__be64_get(p + clkey.len - 8);
        }
        return true;
}

/* Logs (and with @p emit, forwards or caches) a write of node @p node's
 * store already made. */
static ks_err_t follow(ks_ctx_t *ctx,
                       int node,
                       int kind,
                       ks_bytes_t key,
                       int64_t start,
                       int64_t end,
                       ks_bytes_t value,
                       const ks_store_emit_t *emit) {
        ks_task_t *task = ctx->task;
        ks_buf_t *clkey = &task->changelog_keys[node];
        ks_err_t err    = ks__changelog_key(clkey, kind, key, start, end);
        if (err)
                return err;
        ks_bytes_t k = {clkey->data, clkey->len};
        if (!emit)
                return ks__ctx_log_change_for(ctx, node, k, value);
        ks_change_t change = {k,
                              value,
                              emit->key_obj,
                              emit->value_obj,
                              emit->timestamp,
                              emit->created};
        return ks__ctx_emit_change(ctx, &change, emit->key_serde,
                                   emit->value_serde);
}

ks_err_t ks__ctx_kv_put(ks_ctx_t *ctx,
                        ks_bytes_t key,
                        ks_bytes_t value,
                        const ks_store_emit_t *emit) {
        ks_error_t *e = ks_kv_store_put(ks__ctx_kv_store(ctx), key, value);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        return follow(ctx, ctx->node, KS_STORE_KV, key, 0, 0, value, emit);
}

ks_err_t ks__ctx_kv_put_for(ks_ctx_t *ctx,
                            int node,
                            ks_bytes_t key,
                            ks_bytes_t value) {
        ks_error_t *e = ks_kv_store_put(ctx->task->stores[node], key, value);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        return follow(ctx, node, KS_STORE_KV, key, 0, 0, value, NULL);
}

ks_err_t ks__ctx_window_put(ks_ctx_t *ctx,
                            ks_bytes_t key,
                            int64_t start,
                            ks_bytes_t value,
                            const ks_store_emit_t *emit) {
        ks_error_t *e = ks_window_store_put(ks__ctx_window_store(ctx), key,
                                            start, value);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        return follow(ctx, ctx->node, KS_STORE_WINDOW, key, start, 0, value,
                      emit);
}

ks_err_t ks__ctx_window_put_for(ks_ctx_t *ctx,
                                int node,
                                ks_bytes_t key,
                                int64_t start,
                                ks_bytes_t value) {
        ks_error_t *e =
                ks_window_store_put(ctx->task->stores[node], key, start, value);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        return follow(ctx, node, KS_STORE_WINDOW, key, start, 0, value, NULL);
}

ks_err_t ks__ctx_session_put(ks_ctx_t *ctx,
                             ks_bytes_t key,
                             int64_t start,
                             int64_t end,
                             ks_bytes_t value,
                             const ks_store_emit_t *emit) {
        ks_error_t *e = ks_session_store_put(ks__ctx_session_store(ctx), key,
                                             start, end, value);
        if (e)
                return ks__ctx_store_failed(ctx, e);
        return follow(ctx, ctx->node, KS_STORE_SESSION, key, start, end, value,
                      emit);
}

ks_err_t ks__ctx_store_failed(ks_ctx_t *ctx, ks_error_t *e) {
        ks_err_t err = ks_ctx_fail(ctx, "%s", ks_error_message(e));
        ks_error_destroy(e);
        return err;
}
