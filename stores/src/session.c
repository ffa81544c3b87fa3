/* Session stores: (key, end, start) -> value, in time segments by end.
 *
 * Keys are [4: key length][key][8: end][8: start]: one key's sessions are
 * contiguous and ordered by end, so find(key, earliest_end, latest_start)
 * seeks to (key, earliest_end) in each segment from earliest_end's on and
 * keeps the sessions that start at or before latest_start. Sessions that
 * end retention_ms or more before the newest end are expired, like windows
 * (see window.c); segments are retention / 2 long (at least 1 ms), so
 * about three are live and expiry drops whole segments. */
#include <stdlib.h>

#include "store_int.h"

struct ks_session_store_s {
        ks__store_t hdr;
        ks__segstore_t segs;
        ks_buf_t key_buf;
};

static ks_bytes_t encode(ks_buf_t *buf,
                         ks_bytes_t key,
                         int64_t end,
                         int64_t start,
                         bool times) {
        size_t len = 4 + key.len + (times ? 16 : 0);
        ks_buf_clear(buf);
        if (ks_buf_reserve(buf, len))
                return (ks_bytes_t){NULL, 0};
        unsigned char *p = (unsigned char *)buf->data;
        ks__put_u32(p, (uint32_t)key.len);
        if (key.len)
                memcpy(p + 4, key.data, key.len);
        if (times) {
                ks__put_time(p + 4 + key.len, end);
                ks__put_time(p + 12 + key.len, start);
        }
        buf->len = len;
        return (ks_bytes_t){buf->data, len};
}

static ks_error_t *flush(ks__store_t *hdr) {
        return ks__segstore_flush(&((ks_session_store_t *)hdr)->segs);
}

static void invalidate(ks__store_t *hdr) {
        ks__segstore_invalidate(&((ks_session_store_t *)hdr)->segs);
}

static void session_free(ks__store_t *hdr) {
        ks_session_store_t *store = (ks_session_store_t *)hdr;
        ks__segstore_fini(&store->segs);
        ks_buf_free(&store->key_buf);
        ks__store_fini(hdr);
        free(store);
}

static ks_error_t *create(ks_state_env_t *env,
                          const char *name,
                          int64_t retention_ms,
                          ks_session_store_t **storep) {
        ks_error_t *err = ks__store_name_check(name);
        if (err)
                return err;
        if (retention_ms < 0)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "session store %s: retention must be "
                                    ">= 0",
                                    name);
        ks_session_store_t *store = calloc(1, sizeof(*store));
        if (!store)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        if ((err = ks__store_init(&store->hdr, KS__STORE_SESSION, name, env))) {
                free(store);
                return err;
        }
        store->hdr.free       = session_free;
        store->hdr.flush      = flush;
        store->hdr.invalidate = invalidate;
        int64_t segment_ms    = retention_ms / 2 > 0 ? retention_ms / 2 : 1;
        if ((err = ks__segstore_init(&store->segs, env, store->hdr.name,
                                     retention_ms, segment_ms))) {
                session_free(&store->hdr);
                return err;
        }
        *storep = store;
        return NULL;
}

ks_error_t *ks_session_store_open(ks_state_env_t *env,
                                  const char *name,
                                  int64_t retention_ms,
                                  ks_session_store_t **storep) {
        ks_error_t *err;
        *storep = NULL;
        if ((err = ks__store_name_check(name)))
                return err;
        ks__store_t *open = ks__env_find_store(env, name);
        if (open) {
                ks_session_store_t *s = (ks_session_store_t *)open;
                if (open->type != KS__STORE_SESSION ||
                    s->segs.retention_ms != retention_ms)
                        return ks_error_new(KS_ERR_INVALID_ARG,
                                            "store %s is already open with "
                                            "another kind or settings",
                                            name);
                *storep = s;
                return NULL;
        }
        ks_session_store_t *store;
        if ((err = create(env, name, retention_ms, &store)))
                return err;
        if ((err = ks__env_add_store(env, &store->hdr))) {
                session_free(&store->hdr);
                return err;
        }
        *storep = store;
        return NULL;
}

ks_session_store_t *ks_session_store_new_memory(const char *name,
                                                int64_t retention_ms) {
        ks_session_store_t *store = NULL;
        ks_error_destroy(create(NULL, name, retention_ms, &store));
        return store;
}

void ks_session_store_destroy(ks_session_store_t *store) {
        if (store && !store->hdr.env)
                session_free(&store->hdr);
}

ks_error_t *ks_session_store_put(ks_session_store_t *store,
                                 ks_bytes_t key,
                                 int64_t start,
                                 int64_t end,
                                 ks_bytes_t value) {
        ks__segstore_t *ss = &store->segs;
        ks__table_t *t;
        if (end < start)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "session store %s: a session cannot end "
                                    "(%lld) before it starts (%lld)",
                                    store->hdr.name, (long long)end,
                                    (long long)start);
        ks_error_t *err = ks__segstore_refresh(ss);
        if (err)
                return err;
        if (end < ks__segstore_min_live(ss))
                return NULL; /* expired */
        if ((err = ks__segstore_advance(ss, end)))
                return err;
        ks_bytes_t k = encode(&store->key_buf, key, end, start, true);
        if (!k.data)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        if ((err = ks__segstore_table(ss, ks__segstore_id(ss, end),
                                      value.data != NULL, &t)))
                return err;
        return t ? ks__table_put(t, k, value) : NULL;
}

ks_error_t *ks_session_store_find(ks_session_store_t *store,
                                  ks_bytes_t key,
                                  int64_t earliest_end,
                                  int64_t latest_start,
                                  ks_store_iter_t **itp) {
        ks__segstore_t *ss = &store->segs;
        *itp               = NULL;
        ks_error_t *err    = ks__segstore_refresh(ss);
        if (err)
                return err;
        int64_t min_live = ks__segstore_min_live(ss);
        if (earliest_end < min_live)
                earliest_end = min_live;
        ks__iter_spec_t spec = {
                .kind   = KS__ITER_SESSION,
                .segs   = ss,
                .t_from = earliest_end,
                .t_to   = latest_start,
        };
        if ((err = ks__segstore_ids(ss, ks__segstore_id(ss, earliest_end),
                                    INT64_MAX, &spec.ids, &spec.nids)))
                return err;
        /* From (key, earliest_end) to the last session of key. The prefix
         * holds the key's length, so "a" never matches "ab". */
        spec.lower =
                encode(&store->key_buf, key, earliest_end, INT64_MIN, true);
        spec.upper      = (ks_bytes_t){spec.lower.data, 4 + key.len};
        spec.upper_mode = KS__UPPER_PREFIX;
        if (!spec.lower.data) {
                free(spec.ids);
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        return ks__iter_new(&spec, itp);
}

int64_t ks_session_store_checkpoint(ks_session_store_t *store) {
        return ks__store_checkpoint(&store->hdr);
}

ks_error_t *ks_session_store_set_checkpoint(ks_session_store_t *store,
                                            int64_t offset) {
        return ks__store_set_checkpoint(&store->hdr, offset);
}

ks__segstore_t *ks__session_store_segments(ks_session_store_t *store) {
        return &store->segs;
}
