/* Window stores: (key, window start) -> value in time segments.
 *
 * Keys are [4: key length][key][8: start], so one key's windows are
 * contiguous and ordered by start (no prefix confusion between "a" and
 * "ab"), and fetch(key, from, to) is one range scan per segment. Windows
 * whose start is retention_ms or more behind the newest start are expired:
 * puts to them are ignored, reads do not see them, and segments holding
 * only expired windows are dropped whole. */
#include <stdlib.h>

#include "store_int.h"

/* Each live segment is an open DB; keep well below the environment's
 * limit of named DBs, shared by every store of a task. */
#define MAX_LIVE_SEGMENTS 256

struct ks_window_store_s {
        ks__store_t hdr;
        ks__segstore_t segs;
        ks_buf_t key_buf;
        ks_buf_t key_buf2;
};

ks_bytes_t ks__window_key(ks_buf_t *buf, ks_bytes_t key, int64_t start) {
        ks_buf_clear(buf);
        if (ks_buf_reserve(buf, 12 + key.len))
                return (ks_bytes_t){NULL, 0};
        unsigned char *p = (unsigned char *)buf->data;
        ks__put_u32(p, (uint32_t)key.len);
        if (key.len)
                memcpy(p + 4, key.data, key.len);
        ks__put_time(p + 4 + key.len, start);
        buf->len = 12 + key.len;
        return (ks_bytes_t){buf->data, buf->len};
}

static ks_error_t *flush(ks__store_t *hdr) {
        return ks__segstore_flush(&((ks_window_store_t *)hdr)->segs);
}

static void invalidate(ks__store_t *hdr) {
        ks__segstore_invalidate(&((ks_window_store_t *)hdr)->segs);
}

static void window_free(ks__store_t *hdr) {
        ks_window_store_t *store = (ks_window_store_t *)hdr;
        ks__segstore_fini(&store->segs);
        ks_buf_free(&store->key_buf);
        ks_buf_free(&store->key_buf2);
        ks__store_fini(hdr);
        free(store);
}

static ks_error_t *check_args(const char *name,
                              int64_t retention_ms,
                              int64_t segment_ms) {
        ks_error_t *err = ks__store_name_check(name);
        if (err)
                return err;
        if (retention_ms < 0 || segment_ms <= 0)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "window store %s: retention must be >= 0 "
                                    "and the segment interval > 0",
                                    name);
        if (retention_ms / segment_ms >= MAX_LIVE_SEGMENTS)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "window store %s: retention %lld ms over "
                                    "segments of %lld ms makes more than %d "
                                    "live segments",
                                    name, (long long)retention_ms,
                                    (long long)segment_ms, MAX_LIVE_SEGMENTS);
        return NULL;
}

static ks_error_t *create(ks_state_env_t *env,
                          const char *name,
                          int64_t retention_ms,
                          int64_t segment_ms,
                          ks_window_store_t **storep) {
        ks_error_t *err;
        ks_window_store_t *store = calloc(1, sizeof(*store));
        if (!store)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        if ((err = ks__store_init(&store->hdr, KS__STORE_WINDOW, name, env))) {
                free(store);
                return err;
        }
        store->hdr.free       = window_free;
        store->hdr.flush      = flush;
        store->hdr.invalidate = invalidate;
        if ((err = ks__segstore_init(&store->segs, env, store->hdr.name,
                                     retention_ms, segment_ms))) {
                window_free(&store->hdr);
                return err;
        }
        *storep = store;
        return NULL;
}

ks_error_t *ks_window_store_open(ks_state_env_t *env,
                                 const char *name,
                                 int64_t retention_ms,
                                 int64_t segment_ms,
                                 ks_window_store_t **storep) {
        ks_error_t *err;
        *storep = NULL;
        if ((err = check_args(name, retention_ms, segment_ms)))
                return err;
        ks__store_t *open = ks__env_find_store(env, name);
        if (open) {
                ks_window_store_t *w = (ks_window_store_t *)open;
                if (open->type != KS__STORE_WINDOW ||
                    w->segs.retention_ms != retention_ms ||
                    w->segs.segment_ms != segment_ms)
                        return ks_error_new(KS_ERR_INVALID_ARG,
                                            "store %s is already open with "
                                            "another kind or settings",
                                            name);
                *storep = w;
                return NULL;
        }
        ks_window_store_t *store;
        if ((err = create(env, name, retention_ms, segment_ms, &store)))
                return err;
        if ((err = ks__env_add_store(env, &store->hdr))) {
                window_free(&store->hdr);
                return err;
        }
        *storep = store;
        return NULL;
}

ks_window_store_t *ks_window_store_new_memory(const char *name,
                                              int64_t retention_ms,
                                              int64_t segment_ms) {
        ks_window_store_t *store = NULL;
        ks_error_t *err          = check_args(name, retention_ms, segment_ms);
        if (!err)
                err = create(NULL, name, retention_ms, segment_ms, &store);
        ks_error_destroy(err);
        return store;
}

void ks_window_store_destroy(ks_window_store_t *store) {
        if (store && !store->hdr.env)
                window_free(&store->hdr);
}

ks_error_t *ks_window_store_put(ks_window_store_t *store,
                                ks_bytes_t key,
                                int64_t window_start,
                                ks_bytes_t value) {
        ks__segstore_t *ss = &store->segs;
        ks__table_t *t;
        ks_error_t *err = ks__segstore_refresh(ss);
        if (err)
                return err;
        if (window_start < ks__segstore_min_live(ss))
                return NULL; /* expired */
        if ((err = ks__segstore_advance(ss, window_start)))
                return err;
        ks_bytes_t k = ks__window_key(&store->key_buf, key, window_start);
        if (!k.data)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        if ((err = ks__segstore_table(ss, ks__segstore_id(ss, window_start),
                                      value.data != NULL, &t)))
                return err;
        return t ? ks__table_put(t, k, value) : NULL;
}

ks_error_t *ks_window_store_get(ks_window_store_t *store,
                                ks_bytes_t key,
                                int64_t window_start,
                                ks_bytes_t *value,
                                bool *found) {
        ks__segstore_t *ss = &store->segs;
        ks__table_t *t;
        *found          = false;
        ks_error_t *err = ks__segstore_refresh(ss);
        if (err || window_start < ks__segstore_min_live(ss))
                return err;
        if ((err = ks__segstore_table(ss, ks__segstore_id(ss, window_start),
                                      false, &t)) ||
            !t)
                return err;
        ks_bytes_t k = ks__window_key(&store->key_buf, key, window_start);
        if (!k.data)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        return ks__table_get(t, k, value, found);
}

static ks_error_t *fetch(ks_window_store_t *store,
                         const ks_bytes_t *key,
                         int64_t time_from,
                         int64_t time_to,
                         ks_store_iter_t **itp) {
        ks__segstore_t *ss = &store->segs;
        ks__iter_spec_t spec;
        *itp            = NULL;
        ks_error_t *err = ks__segstore_refresh(ss);
        if (err)
                return err;
        int64_t min_live = ks__segstore_min_live(ss);
        if (time_from < min_live)
                time_from = min_live;
        memset(&spec, 0, sizeof(spec));
        spec.kind   = KS__ITER_WINDOW;
        spec.segs   = ss;
        spec.t_from = time_from;
        spec.t_to   = time_to;
        if (time_from <= time_to)
                err = ks__segstore_ids(ss, ks__segstore_id(ss, time_from),
                                       ks__segstore_id(ss, time_to), &spec.ids,
                                       &spec.nids);
        else
                spec.ids = NULL; /* nothing can match */
        if (err)
                return err;
        if (key) {
                spec.lower = ks__window_key(&store->key_buf, *key, time_from);
                spec.upper = ks__window_key(&store->key_buf2, *key, time_to);
                if (!spec.lower.data || !spec.upper.data) {
                        free(spec.ids);
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                }
                spec.upper_mode = KS__UPPER_INCLUSIVE;
        }
        return ks__iter_new(&spec, itp);
}

ks_error_t *ks_window_store_fetch(ks_window_store_t *store,
                                  ks_bytes_t key,
                                  int64_t time_from,
                                  int64_t time_to,
                                  ks_store_iter_t **itp) {
        return fetch(store, &key, time_from, time_to, itp);
}

ks_error_t *ks_window_store_fetch_all(ks_window_store_t *store,
                                      int64_t time_from,
                                      int64_t time_to,
                                      ks_store_iter_t **itp) {
        return fetch(store, NULL, time_from, time_to, itp);
}

int64_t ks_window_store_checkpoint(ks_window_store_t *store) {
        return ks__store_checkpoint(&store->hdr);
}

ks_error_t *ks_window_store_set_checkpoint(ks_window_store_t *store,
                                           int64_t offset) {
        return ks__store_set_checkpoint(&store->hdr, offset);
}

ks__segstore_t *ks__window_store_segments(ks_window_store_t *store) {
        return &store->segs;
}
