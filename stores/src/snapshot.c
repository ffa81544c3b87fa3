/* Snapshots: an environment's last committed state, read from any thread
 * while its owner writes (interactive queries).
 *
 * LMDB runs read transactions beside the write transaction, each on the
 * snapshot it began with, provided that (see env.c): the environment has
 * MDB_NOTLS, so a read transaction is not tied to a thread; readers use
 * only DB handles a committed transaction opened and never open handles
 * themselves (mdb_dbi_open() must not run in two concurrent transactions,
 * and the owner's write transaction is open most of the time); and nothing
 * closes a handle, changes the slot table or remaps the memory while they
 * read. A snapshot holds the environment's share lock for reading from
 * begin to close; the owner takes it for writing for exactly those
 * changes. Everything a snapshot returns is borrowed from LMDB's map. */
#include <stdio.h>
#include <stdlib.h>

#include "store_int.h"

struct ks_state_snapshot_s {
        ks_state_env_t *env;
        MDB_txn *txn;
        ks_store_iter_t **iters;
        size_t niters;
        size_t iters_cap;
};

ks_error_t *ks_state_env_snapshot(ks_state_env_t *env,
                                  ks_state_snapshot_t **snapp) {
        *snapp                    = NULL;
        ks_state_snapshot_t *snap = calloc(1, sizeof(*snap));
        if (!snap)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        snap->env = env;
        ks__env_read_lock(env);
        int rc = mdb_txn_begin(ks__env_mdb(env), NULL, MDB_RDONLY, &snap->txn);
        if (rc) {
                ks__env_read_unlock(env);
                free(snap);
                return ks__lmdb_error(rc, "cannot begin a snapshot of %s",
                                      ks__env_dir(env));
        }
        *snapp = snap;
        return NULL;
}

void ks_state_snapshot_close(ks_state_snapshot_t *snap) {
        if (!snap)
                return;
        for (size_t i = 0; i < snap->niters; i++)
                ks__iter_orphan(snap->iters[i]);
        mdb_txn_abort(snap->txn);
        ks__env_read_unlock(snap->env);
        free(snap->iters);
        free(snap);
}

ks_error_t *ks__snapshot_iter_attach(ks_state_snapshot_t *snap,
                                     ks_store_iter_t *it) {
        if (snap->niters == snap->iters_cap) {
                size_t cap = snap->iters_cap ? snap->iters_cap * 2 : 4;
                ks_store_iter_t **p =
                        realloc(snap->iters, cap * sizeof(*snap->iters));
                if (!p)
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                snap->iters     = p;
                snap->iters_cap = cap;
        }
        snap->iters[snap->niters++] = it;
        return NULL;
}

void ks__snapshot_iter_detach(ks_state_snapshot_t *snap, ks_store_iter_t *it) {
        for (size_t i = 0; i < snap->niters; i++) {
                if (snap->iters[i] == it) {
                        snap->iters[i] = snap->iters[--snap->niters];
                        return;
                }
        }
}

/* ---- finding stores and DBs ----------------------------------------------
 */

static const char *type_name(ks__store_type_t type) {
        return type == KS__STORE_KV       ? "key-value"
               : type == KS__STORE_WINDOW ? "window"
                                          : "session";
}

/* The open store of @p name. Its type and settings never change once it
 * is listed, and it lives as long as the environment. */
static ks_error_t *find_store(ks_state_snapshot_t *snap,
                              const char *name,
                              ks__store_type_t type,
                              ks__store_t **out) {
        ks__store_t *st = name ? ks__env_find_store(snap->env, name) : NULL;
        if (!st)
                return ks_error_new(
                        KS_ERR_NOT_FOUND, "no store named %s is open in %s",
                        name ? name : "(null)", ks__env_dir(snap->env));
        if (st->type != type)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "store %s is a %s store, not a %s store",
                                    name, type_name(st->type), type_name(type));
        *out = st;
        return NULL;
}

/* The handle of DB @p name. *exists false: the snapshot has no such DB. */
static ks_error_t *find_db(ks_state_snapshot_t *snap,
                           const char *name,
                           MDB_dbi *dbip,
                           bool *exists) {
        *exists = ks__env_shared_dbi(snap->env, name, dbip);
        if (*exists)
                return NULL;
        MDB_val k = {strlen(name), (void *)name}, v;
        int rc    = mdb_get(snap->txn, ks__env_main_dbi(snap->env), &k, &v);
        if (rc == MDB_NOTFOUND)
                return NULL;
        if (rc)
                return ks__lmdb_error(rc, "cannot look up DB %s in %s", name,
                                      ks__env_dir(snap->env));
        /* It exists but its owner has no committed handle for it: it had
         * none free, or aborted a drop; its next commit opens one. */
        return ks_error_set_retriable(
                ks_error_new(KS_ERR_STORE,
                             "DB %s of %s cannot be read by other threads "
                             "before its owner's next commit",
                             name, ks__env_dir(snap->env)),
                true);
}

/* ---- key-value stores ------------------------------------------------------
 */

ks_error_t *ks_state_snapshot_kv_get(ks_state_snapshot_t *snap,
                                     const char *store,
                                     ks_bytes_t key,
                                     ks_bytes_t *value,
                                     bool *found) {
        ks__store_t *st;
        MDB_dbi dbi;
        bool exists;
        *found          = false;
        ks_error_t *err = find_store(snap, store, KS__STORE_KV, &st);
        if (err || !key.len || key.len > ks__env_max_key(snap->env))
                return err;
        if ((err = find_db(snap, store, &dbi, &exists)) || !exists)
                return err;
        MDB_val k = {key.len, (void *)key.data}, v;
        int rc    = mdb_get(snap->txn, dbi, &k, &v);
        if (rc == MDB_NOTFOUND)
                return NULL;
        if (rc)
                return ks__lmdb_error(rc, "mdb_get failed in store %s of %s",
                                      store, ks__env_dir(snap->env));
        value->data = v.mv_size ? v.mv_data : "";
        value->len  = v.mv_size;
        *found      = true;
        return NULL;
}

ks_error_t *ks_state_snapshot_kv_range(ks_state_snapshot_t *snap,
                                       const char *store,
                                       ks_bytes_t from,
                                       ks_bytes_t to,
                                       ks_store_iter_t **itp) {
        ks__store_t *st;
        MDB_dbi dbi;
        bool exists;
        *itp            = NULL;
        ks_error_t *err = find_store(snap, store, KS__STORE_KV, &st);
        if (err || (err = find_db(snap, store, &dbi, &exists)))
                return err;
        ks__iter_spec_t spec = {
                .kind       = KS__ITER_KV,
                .lower      = from,
                .upper      = to,
                .upper_mode = to.data ? KS__UPPER_INCLUSIVE : KS__UPPER_NONE,
                .snap       = snap,
                .ro_txn     = snap->txn,
                .ro_cnt     = exists,
        };
        if (exists) {
                if (!(spec.ro_dbis = malloc(sizeof(*spec.ro_dbis))))
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                spec.ro_dbis[0] = dbi;
        }
        return ks__iter_new(&spec, itp);
}

/* ---- window stores ---------------------------------------------------------
 */

typedef struct seg_list_s {
        int64_t *ids;
        size_t n;
        size_t cap;
} seg_list_t;

static int cmp_id(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

/* The ids of the store's segments in [from_id, to_id] that the snapshot
 * holds, in order. Names sort as bytes ("s.10" < "s.9"), so sort them. */
static ks_error_t *list_segments(ks_state_snapshot_t *snap,
                                 const char *store,
                                 int64_t from_id,
                                 int64_t to_id,
                                 seg_list_t *out) {
        MDB_cursor *mc;
        char prefix[512], name[512];
        ks_error_t *err = NULL;
        int plen        = snprintf(prefix, sizeof(prefix), "%s.", store);
        int rc = mdb_cursor_open(snap->txn, ks__env_main_dbi(snap->env), &mc);
        if (rc)
                return ks__lmdb_error(rc, "cannot list the segments of %s",
                                      store);
        MDB_val k = {(size_t)plen, prefix}, v;
        for (rc = mdb_cursor_get(mc, &k, &v, MDB_SET_RANGE); !rc;
             rc = mdb_cursor_get(mc, &k, &v, MDB_NEXT)) {
                int64_t id;
                if (k.mv_size < (size_t)plen ||
                    memcmp(k.mv_data, prefix, (size_t)plen))
                        break;
                if (k.mv_size >= sizeof(name))
                        continue;
                memcpy(name, k.mv_data, k.mv_size);
                name[k.mv_size] = '\0';
                if (!ks__segment_parse_id(name + plen, &id) || id < from_id ||
                    id > to_id)
                        continue;
                if (out->n == out->cap) {
                        size_t cap = out->cap ? out->cap * 2 : 8;
                        int64_t *p = realloc(out->ids, cap * sizeof(*p));
                        if (!p) {
                                err = ks_error_new(KS_ERR_NOMEM,
                                                   "out of memory");
                                break;
                        }
                        out->ids = p;
                        out->cap = cap;
                }
                out->ids[out->n++] = id;
        }
        mdb_cursor_close(mc);
        if (!err && rc && rc != MDB_NOTFOUND)
                err = ks__lmdb_error(rc, "cannot list the segments of %s",
                                     store);
        if (!err && out->n)
                qsort(out->ids, out->n, sizeof(*out->ids), cmp_id);
        return err;
}

/* The store's stream time as of the snapshot (written at each commit). */
static ks_error_t *stream_time(ks_state_snapshot_t *snap,
                               const char *store,
                               int64_t *t,
                               bool *has) {
        ks_buf_t buf = {0};
        MDB_dbi dbi;
        bool exists;
        *has            = false;
        ks_error_t *err = find_db(snap, "__meta", &dbi, &exists);
        if (err || !exists)
                return err;
        ks_bytes_t key = ks__segment_time_key(&buf, store);
        if (!key.data)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        MDB_val k = {key.len, (void *)key.data}, v;
        int rc    = mdb_get(snap->txn, dbi, &k, &v);
        ks_buf_free(&buf);
        if (rc == MDB_NOTFOUND)
                return NULL;
        if (rc)
                return ks__lmdb_error(rc, "cannot read the stream time of %s",
                                      store);
        if (v.mv_size != 8)
                return ks_error_new(KS_ERR_STORE,
                                    "corrupt stream time of store %s", store);
        *t   = (int64_t)ks__get_u64(v.mv_data);
        *has = true;
        return NULL;
}

/* The handles of the listed segments; a segment the owner is dropping has
 * none and is left out (it holds only windows about to expire). */
static ks_error_t *segment_dbis(ks_state_snapshot_t *snap,
                                const char *store,
                                const seg_list_t *segs,
                                MDB_dbi **dbisp,
                                size_t *np) {
        char name[512];
        MDB_dbi *dbis = malloc((segs->n ? segs->n : 1) * sizeof(*dbis));
        size_t n      = 0;
        if (!dbis)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < segs->n; i++) {
                snprintf(name, sizeof(name), "%s.%lld", store,
                         (long long)segs->ids[i]);
                if (ks__env_shared_dbi(snap->env, name, &dbis[n]))
                        n++;
        }
        *dbisp = dbis;
        *np    = n;
        return NULL;
}

ks_error_t *ks_state_snapshot_window_fetch(ks_state_snapshot_t *snap,
                                           const char *store,
                                           ks_bytes_t key,
                                           int64_t time_from,
                                           int64_t time_to,
                                           ks_store_iter_t **itp) {
        ks__store_t *st;
        int64_t observed = 0;
        bool has_observed;
        seg_list_t segs = {0};
        ks_buf_t lower = {0}, upper = {0};
        *itp            = NULL;
        ks_error_t *err = find_store(snap, store, KS__STORE_WINDOW, &st);
        if (err || (err = stream_time(snap, store, &observed, &has_observed)))
                return err;
        const ks__segstore_t *ss =
                ks__window_store_segments((ks_window_store_t *)st);
        int64_t min_live =
                ks__segment_min_live(observed, has_observed, ss->retention_ms);
        if (time_from < min_live)
                time_from = min_live;
        ks__iter_spec_t spec = {
                .kind       = KS__ITER_WINDOW,
                .upper_mode = KS__UPPER_INCLUSIVE,
                .t_from     = time_from,
                .t_to       = time_to,
                .snap       = snap,
                .ro_txn     = snap->txn,
        };
        if (time_from <= time_to &&
            (err = list_segments(
                     snap, store, ks__segment_id(time_from, ss->segment_ms),
                     ks__segment_id(time_to, ss->segment_ms), &segs)))
                goto out;
        if ((err = segment_dbis(snap, store, &segs, &spec.ro_dbis,
                                &spec.ro_cnt)))
                goto out;
        spec.lower = ks__window_key(&lower, key, time_from);
        spec.upper = ks__window_key(&upper, key, time_to);
        if (!spec.lower.data || !spec.upper.data) {
                free(spec.ro_dbis);
                err = ks_error_new(KS_ERR_NOMEM, "out of memory");
                goto out;
        }
        err = ks__iter_new(&spec, itp); /* copies the bounds */
out:
        free(segs.ids);
        ks_buf_free(&lower);
        ks_buf_free(&upper);
        return err;
}

ks_error_t *ks_state_snapshot_store_bytes(ks_state_snapshot_t *snap,
                                          const char *store,
                                          uint64_t *bytes) {
        return ks__env_store_bytes(snap->env, snap->txn, store, bytes);
}
