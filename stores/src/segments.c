/* Time segments for window and session stores.
 *
 * A record of time t lives in segment floor(t / segment_ms), one table per
 * segment (an LMDB DB named "<store>.<id>", or a skip list). The newest
 * time put is the store's stream time; times older than
 * stream time - retention + 1 are expired, and a segment whose every time
 * is expired is dropped whole (mdb_drop), so expiry costs one operation per
 * segment instead of one per record.
 *
 * Persistence: the segment list is the set of DBs named "<store>.<id>"
 * (listed from LMDB's main DB), and stream time is kept in "__meta",
 * written at commit. After an abort both are reloaded lazily. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_int.h"

ks_bytes_t ks__segment_time_key(ks_buf_t *buf, const char *store) {
        ks_buf_clear(buf);
        if (ks_buf_append(buf, store, strlen(store) + 1) ||
            ks_buf_append(buf, "stream_time", 11))
                return (ks_bytes_t){NULL, 0};
        return (ks_bytes_t){buf->data, buf->len};
}

static ks_bytes_t time_key(ks__segstore_t *ss) {
        return ks__segment_time_key(&ss->namebuf, ss->name);
}

bool ks__segment_parse_id(const char *rest, int64_t *id) {
        const char *p = *rest == '-' ? rest + 1 : rest;
        if (!*p)
                return false;
        for (; *p; p++)
                if (*p < '0' || *p > '9')
                        return false;
        errno = 0;
        *id   = strtoll(rest, NULL, 10);
        return errno == 0;
}

static size_t find_pos(const ks__segstore_t *ss, int64_t id) {
        size_t lo = 0, hi = ss->nsegs;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ss->segs[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static ks_error_t *insert_segment(ks__segstore_t *ss,
                                  int64_t id,
                                  size_t pos,
                                  ks__table_t **tp) {
        ks_error_t *err;
        ks__table_t table = {0};
        if (ss->nsegs == ss->cap) {
                size_t cap       = ss->cap ? ss->cap * 2 : 8;
                ks__segment_t *s = realloc(ss->segs, cap * sizeof(*s));
                if (!s)
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                ss->segs = s;
                ss->cap  = cap;
        }
        if (ss->env) {
                char name[512];
                snprintf(name, sizeof(name), "%s.%lld", ss->name,
                         (long long)id);
                table.env = ss->env;
                if ((err = ks__env_slot(ss->env, name, &table.slot)))
                        return err;
        } else {
                table.mem     = ks__skiplist_new();
                table.mem_gen = &ss->mem_gen;
                if (!table.mem)
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                ss->mem_gen++;
        }
        memmove(&ss->segs[pos + 1], &ss->segs[pos],
                (ss->nsegs - pos) * sizeof(*ss->segs));
        ss->segs[pos].id    = id;
        ss->segs[pos].table = table;
        ss->nsegs++;
        if (tp)
                *tp = &ss->segs[pos].table;
        return NULL;
}

static ks_error_t *drop_first(ks__segstore_t *ss) {
        ks__segment_t *seg = &ss->segs[0];
        if (ss->env) {
                ks_error_t *err = ks__env_drop(ss->env, seg->table.slot);
                if (err)
                        return err;
        } else {
                ks__skiplist_destroy(seg->table.mem);
                ss->mem_gen++;
        }
        memmove(&ss->segs[0], &ss->segs[1],
                (ss->nsegs - 1) * sizeof(*ss->segs));
        ss->nsegs--;
        return NULL;
}

/* One DB name from the main DB: keep it if it is "<store>.<id>". */
static ks_error_t *load_one(const char *dbname, void *opaque) {
        ks__segstore_t *ss = opaque;
        int64_t id;
        if (!ks__segment_parse_id(dbname + strlen(ss->name) + 1, &id))
                return NULL;
        size_t pos = find_pos(ss, id);
        if (pos < ss->nsegs && ss->segs[pos].id == id)
                return NULL;
        return insert_segment(ss, id, pos, NULL);
}

ks_error_t *ks__segstore_refresh(ks__segstore_t *ss) {
        if (!ss->stale)
                return NULL;
        char prefix[512];
        bool found;
        snprintf(prefix, sizeof(prefix), "%s.", ss->name);
        ss->nsegs       = 0;
        ks_error_t *err = ks__env_list_dbs(ss->env, prefix, load_one, ss);
        if (!err)
                err = ks__env_get_i64(ss->env, KS__SLOT_META, time_key(ss),
                                      &ss->observed, &found);
        if (err)
                return err;
        ss->has_observed   = found;
        ss->observed_dirty = false;
        ss->stale          = false;
        return NULL;
}

ks_error_t *ks__segstore_init(ks__segstore_t *ss,
                              ks_state_env_t *env,
                              const char *name,
                              int64_t retention_ms,
                              int64_t segment_ms) {
        memset(ss, 0, sizeof(*ss));
        ss->name         = name;
        ss->env          = env;
        ss->retention_ms = retention_ms;
        ss->segment_ms   = segment_ms;
        ss->stale        = env != NULL;
        return env ? ks__segstore_refresh(ss) : NULL;
}

void ks__segstore_fini(ks__segstore_t *ss) {
        if (!ss->env)
                for (size_t i = 0; i < ss->nsegs; i++)
                        ks__skiplist_destroy(ss->segs[i].table.mem);
        free(ss->segs);
        ks_buf_free(&ss->namebuf);
        memset(ss, 0, sizeof(*ss));
}

int64_t ks__segment_id(int64_t t, int64_t segment_ms) {
        int64_t q = t / segment_ms;
        if (t % segment_ms < 0)
                q--;
        return q;
}

int64_t ks__segment_min_live(int64_t observed,
                             bool has_observed,
                             int64_t retention_ms) {
        int64_t r;
        if (!has_observed || __builtin_sub_overflow(observed, retention_ms, &r))
                return INT64_MIN;
        return r == INT64_MAX ? r : r + 1;
}

int64_t ks__segstore_id(const ks__segstore_t *ss, int64_t t) {
        return ks__segment_id(t, ss->segment_ms);
}

int64_t ks__segstore_min_live(const ks__segstore_t *ss) {
        return ks__segment_min_live(ss->observed, ss->has_observed,
                                    ss->retention_ms);
}

ks_error_t *ks__segstore_advance(ks__segstore_t *ss, int64_t t) {
        if (ss->has_observed && t <= ss->observed)
                return NULL;
        ss->observed       = t;
        ss->has_observed   = true;
        ss->observed_dirty = true;
        int64_t min_id     = ks__segstore_id(ss, ks__segstore_min_live(ss));
        while (ss->nsegs && ss->segs[0].id < min_id) {
                ks_error_t *err = drop_first(ss);
                if (err)
                        return err;
        }
        return NULL;
}

ks_error_t *ks__segstore_table(ks__segstore_t *ss,
                               int64_t id,
                               bool create,
                               ks__table_t **tp) {
        *tp             = NULL;
        ks_error_t *err = ks__segstore_refresh(ss);
        if (err)
                return err;
        size_t pos = find_pos(ss, id);
        if (pos < ss->nsegs && ss->segs[pos].id == id) {
                *tp = &ss->segs[pos].table;
                return NULL;
        }
        return create ? insert_segment(ss, id, pos, tp) : NULL;
}

ks_error_t *ks__segstore_ids(ks__segstore_t *ss,
                             int64_t from_id,
                             int64_t to_id,
                             int64_t **idsp,
                             size_t *np) {
        *idsp           = NULL;
        *np             = 0;
        ks_error_t *err = ks__segstore_refresh(ss);
        if (err)
                return err;
        size_t pos = find_pos(ss, from_id), n = 0;
        while (pos + n < ss->nsegs && ss->segs[pos + n].id <= to_id)
                n++;
        int64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
        if (!ids)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
                ids[i] = ss->segs[pos + i].id;
        *idsp = ids;
        *np   = n;
        return NULL;
}

ks_error_t *ks__segstore_flush(ks__segstore_t *ss) {
        if (!ss->env || ss->stale || !ss->observed_dirty)
                return NULL;
        ks_error_t *err = ks__env_put_i64(ss->env, KS__SLOT_META, time_key(ss),
                                          ss->observed);
        if (!err)
                ss->observed_dirty = false;
        return err;
}

void ks__segstore_invalidate(ks__segstore_t *ss) {
        if (ss->env)
                ss->stale = true;
}

const uint64_t *ks__segstore_gen(const ks__segstore_t *ss) {
        return ss->env ? ks__env_write_gen(ss->env) : &ss->mem_gen;
}

ks_error_t *ks__segstore_count(ks__segstore_t *ss,
                               uint64_t *segments,
                               uint64_t *entries) {
        ks_error_t *err = ks__segstore_refresh(ss);
        *segments       = 0;
        *entries        = 0;
        if (err)
                return err;
        for (size_t i = 0; i < ss->nsegs; i++) {
                uint64_t n, bytes;
                if ((err = ks__table_stat(&ss->segs[i].table, &n, &bytes)))
                        return err;
                *entries += n;
        }
        *segments = ss->nsegs;
        return NULL;
}
