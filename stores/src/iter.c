/* Iterators over one table (key-value stores) or a run of segments
 * (window and session stores), LMDB or in memory.
 *
 * An iterator keeps a copy of the last key it returned. Whenever the store
 * changed since the previous step (a write, commit, abort, map growth or a
 * dropped segment: the generation counter moved), it seeks again to the
 * first key after that copy instead of trusting a cursor or a node that
 * may be gone. So iterating while writing is safe in both engines, and an
 * LMDB iterator survives a commit (its environment closes the cursor before
 * the transaction ends; the next step opens one in the new transaction).
 *
 * A snapshot's iterator (snapshot.c) reads DBs in the snapshot's read-only
 * transaction instead: nothing changes under it, so it never repositions,
 * and it ends with an error once the snapshot is closed. */
#include <stdlib.h>

#include "store_int.h"

struct ks_store_iter_s {
        ks__iter_kind_t kind;
        ks_state_env_t *env;       /**< LMDB iterators: listed in env */
        ks_state_snapshot_t *snap; /**< snapshot iterators: listed in snap */
        MDB_txn *ro_txn;           /**< the snapshot's transaction */
        MDB_dbi *ro_dbis;          /**< its tables, nids of them */
        bool orphaned; /**< env or snapshot closed under the iterator */
        const uint64_t *gen;
        uint64_t seen_gen;
        ks__table_t fixed; /**< the table, when not over segments */
        bool has_fixed;
        ks__segstore_t *segs;
        int64_t *ids;
        size_t nids;
        size_t idx;      /**< current table: ids[idx], or 0 = fixed */
        ks__table_t cur; /**< valid while in_table */
        bool in_table;
        bool positioned; /**< last holds the key last seen in cur */
        ks_buf_t lower;
        bool has_lower;
        ks_buf_t upper;
        ks__upper_mode_t upper_mode;
        int64_t t_from;
        int64_t t_to;
        ks_buf_t last;
        MDB_cursor *mc;
        ks__mnode_t *node;
        bool done;
        ks_error_t *err;
};

void ks__iter_close_cursor(ks_store_iter_t *it) {
        if (it->mc) {
                mdb_cursor_close(it->mc);
                it->mc = NULL;
        }
}

void ks__iter_orphan(ks_store_iter_t *it) {
        ks__iter_close_cursor(it);
        it->env      = NULL;
        it->snap     = NULL;
        it->ro_txn   = NULL;
        it->segs     = NULL;
        it->orphaned = true;
}

static bool fail(ks_store_iter_t *it, ks_error_t *err) {
        if (!it->err)
                it->err = err;
        else
                ks_error_destroy(err);
        it->done = true;
        ks__iter_close_cursor(it);
        return false;
}

static ks_err_t copy_bytes(ks_buf_t *buf, ks_bytes_t b) {
        ks_buf_clear(buf);
        return ks_buf_append(buf, b.data, b.len);
}

ks_error_t *ks__iter_new(const ks__iter_spec_t *spec, ks_store_iter_t **itp) {
        static const uint64_t unchanging = 0;
        *itp                             = NULL;
        ks_store_iter_t *it              = calloc(1, sizeof(*it));
        if (!it) {
                free(spec->ids);
                free(spec->ro_dbis);
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        it->kind = spec->kind;
        if (spec->ro_txn) {
                it->ro_txn  = spec->ro_txn;
                it->ro_dbis = spec->ro_dbis;
                it->nids    = spec->ro_cnt;
                it->ids     = spec->ids;
                it->gen     = &unchanging;
        } else if (spec->table) {
                it->fixed     = *spec->table;
                it->has_fixed = true;
                it->nids      = 1;
                it->env       = spec->table->env;
                it->gen       = ks__table_gen(spec->table);
        } else {
                it->segs = spec->segs;
                it->ids  = spec->ids;
                it->nids = spec->nids;
                it->env  = spec->segs->env;
                it->gen  = ks__segstore_gen(spec->segs);
        }
        it->seen_gen   = *it->gen;
        it->done       = it->nids == 0;
        it->has_lower  = spec->lower.data && spec->lower.len;
        it->upper_mode = spec->upper_mode;
        it->t_from     = spec->t_from;
        it->t_to       = spec->t_to;
        if ((it->has_lower && copy_bytes(&it->lower, spec->lower)) ||
            (it->upper_mode != KS__UPPER_NONE &&
             copy_bytes(&it->upper, spec->upper))) {
                ks_store_iter_destroy(it);
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        if (it->upper_mode == KS__UPPER_PREFIX && it->upper.len == 0)
                it->upper_mode = KS__UPPER_NONE;
        if (it->env)
                ks__env_iter_attach(it->env, it);
        if (spec->snap) {
                ks_error_t *err = ks__snapshot_iter_attach(spec->snap, it);
                if (err) {
                        ks_store_iter_destroy(it);
                        return err;
                }
                it->snap = spec->snap;
        }
        *itp = it;
        return NULL;
}

void ks_store_iter_destroy(ks_store_iter_t *it) {
        if (!it)
                return;
        if (it->env) {
                ks__iter_close_cursor(it);
                ks__env_iter_detach(it->env, it);
        }
        if (it->snap) {
                ks__iter_close_cursor(it);
                ks__snapshot_iter_detach(it->snap, it);
        }
        free(it->ids);
        free(it->ro_dbis);
        ks_buf_free(&it->lower);
        ks_buf_free(&it->upper);
        ks_buf_free(&it->last);
        ks_error_destroy(it->err);
        free(it);
}

const ks_error_t *ks_store_iter_error(const ks_store_iter_t *it) {
        return it->err;
}

/* ---- the table under the iterator ---------------------------------------- */

/* Finds the current table again: a segment may have been dropped.
 * @returns false when it is gone (or on error, with it->err set). */
static bool resolve(ks_store_iter_t *it) {
        if (it->ro_txn)
                return true; /* tables of a snapshot do not go away */
        if (it->has_fixed) {
                it->cur = it->fixed;
                return true;
        }
        ks__table_t *t;
        ks_error_t *err =
                ks__segstore_table(it->segs, it->ids[it->idx], false, &t);
        if (err)
                return fail(it, err);
        if (!t)
                return false;
        it->cur = *t;
        return true;
}

static void leave_table(ks_store_iter_t *it) {
        ks__iter_close_cursor(it);
        it->node       = NULL;
        it->in_table   = false;
        it->positioned = false;
        it->idx++;
        if (it->idx >= it->nids)
                it->done = true;
}

/* 1: an entry in *k, *v; 0: the end of the table; -1: an error. */
static int lmdb_step(ks_store_iter_t *it,
                     const ks_bytes_t *seek,
                     ks_bytes_t *k,
                     ks_bytes_t *v) {
        if (!it->mc) {
                MDB_txn *txn = it->ro_txn;
                MDB_dbi dbi;
                bool exists = true;
                if (txn) {
                        dbi = it->ro_dbis[it->idx];
                } else {
                        ks_error_t *err = ks__env_txn(it->env, &txn);
                        if (!err)
                                err = ks__env_dbi(it->env, it->cur.slot, &dbi,
                                                  &exists);
                        if (err)
                                return fail(it, err), -1;
                }
                if (!exists)
                        return 0;
                int rc = mdb_cursor_open(txn, dbi, &it->mc);
                if (rc) {
                        it->mc = NULL;
                        return fail(it, ks__lmdb_error(rc,
                                                       "mdb_cursor_open "
                                                       "failed")),
                               -1;
                }
        }
        MDB_val mk = {0, NULL}, mv;
        MDB_cursor_op op;
        if (!seek) {
                op = MDB_NEXT;
        } else if (seek->len) {
                mk.mv_size = seek->len;
                mk.mv_data = (void *)seek->data;
                op         = MDB_SET_RANGE;
        } else {
                op = MDB_FIRST;
        }
        int rc = mdb_cursor_get(it->mc, &mk, &mv, op);
        if (rc == MDB_NOTFOUND)
                return 0;
        if (rc)
                return fail(it, ks__lmdb_error(rc, "mdb_cursor_get failed")),
                       -1;
        *k = (ks_bytes_t){mk.mv_data, mk.mv_size};
        *v = (ks_bytes_t){mv.mv_size ? mv.mv_data : "", mv.mv_size};
        return 1;
}

static int mem_step(ks_store_iter_t *it,
                    const ks_bytes_t *seek,
                    ks_bytes_t *k,
                    ks_bytes_t *v) {
        if (seek)
                it->node = ks__skiplist_seek(
                        it->cur.mem, seek->len ? *seek : (ks_bytes_t){NULL, 0});
        else
                it->node = it->node ? ks__skiplist_next(it->node) : NULL;
        if (!it->node)
                return 0;
        *k = ks__mnode_key(it->node);
        *v = ks__mnode_value(it->node);
        return 1;
}

/* Seeks (seek != NULL) or moves to the next entry. */
static int step(ks_store_iter_t *it,
                const ks_bytes_t *seek,
                ks_bytes_t *k,
                ks_bytes_t *v) {
        return it->ro_txn || it->cur.env ? lmdb_step(it, seek, k, v)
                                         : mem_step(it, seek, k, v);
}

/* ---- bounds, filters, decoding
 * ----------------------------------------------- */

static bool below_upper(const ks_store_iter_t *it, ks_bytes_t k) {
        switch (it->upper_mode) {
        case KS__UPPER_INCLUSIVE:
                return ks__bytes_cmp(k.data, k.len, it->upper.data,
                                     it->upper.len) <= 0;
        case KS__UPPER_PREFIX:
                return k.len >= it->upper.len &&
                       !memcmp(k.data, it->upper.data, it->upper.len);
        default:
                return true;
        }
}

typedef struct decoded_s {
        ks_bytes_t key;
        int64_t start;
        int64_t end;
} decoded_t;

static bool decode(const ks_store_iter_t *it, ks_bytes_t raw, decoded_t *d) {
        const unsigned char *p = raw.data;
        if (it->kind == KS__ITER_KV) {
                d->key   = raw;
                d->start = d->end = 0;
                return true;
        }
        size_t times = it->kind == KS__ITER_WINDOW ? 8 : 16;
        if (raw.len < 4 + times)
                return false;
        size_t klen = ks__get_u32(p);
        if (klen != raw.len - 4 - times)
                return false;
        d->key = (ks_bytes_t){p + 4, klen};
        if (it->kind == KS__ITER_WINDOW) {
                d->start = d->end = ks__get_time(p + 4 + klen);
        } else {
                d->end   = ks__get_time(p + 4 + klen);
                d->start = ks__get_time(p + 12 + klen);
        }
        return true;
}

static bool wanted(const ks_store_iter_t *it, const decoded_t *d) {
        switch (it->kind) {
        case KS__ITER_WINDOW:
                return d->start >= it->t_from && d->start <= it->t_to;
        case KS__ITER_SESSION:
                return d->end >= it->t_from && d->start <= it->t_to;
        default:
                return true;
        }
}

/* ---- stepping
 * ----------------------------------------------------------------- */

static bool next_raw(ks_store_iter_t *it, decoded_t *d, ks_bytes_t *v) {
        ks_bytes_t k;
        if (it->orphaned)
                return fail(it, ks_error_new(KS_ERR_STATE,
                                             "the iterator's state "
                                             "environment or snapshot was "
                                             "closed"));
        while (!it->done) {
                int r;
                bool changed = *it->gen != it->seen_gen;
                it->seen_gen = *it->gen;
                if (!it->in_table || (changed && !it->has_fixed)) {
                        /* A dropped segment: its cursor is already closed. */
                        it->node = NULL;
                        if (!resolve(it)) {
                                if (!it->done)
                                        leave_table(it);
                                continue;
                        }
                        it->in_table = true;
                }
                if (!it->positioned) {
                        ks_bytes_t lo = {it->lower.data,
                                         it->has_lower ? it->lower.len : 0};
                        r             = step(it, &lo, &k, v);
                } else if (changed || (it->cur.env && !it->mc)) {
                        ks_bytes_t last = {it->last.data, it->last.len};
                        r               = step(it, &last, &k, v);
                        if (r == 1 &&
                            !ks__bytes_cmp(k.data, k.len, last.data, last.len))
                                r = step(it, NULL, &k, v);
                } else {
                        r = step(it, NULL, &k, v);
                }
                if (r < 0)
                        return false;
                if (r == 0 || !below_upper(it, k)) {
                        leave_table(it);
                        continue;
                }
                if (copy_bytes(&it->last, k))
                        return fail(it, ks_error_new(KS_ERR_NOMEM,
                                                     "out of memory"));
                it->positioned = true;
                if (!decode(it, k, d))
                        return fail(it, ks_error_new(KS_ERR_STORE,
                                                     "malformed key of %zu "
                                                     "bytes in a store",
                                                     k.len));
                if (wanted(it, d))
                        return true;
        }
        return false;
}

bool ks_store_iter_next_session(ks_store_iter_t *it,
                                ks_bytes_t *key,
                                int64_t *start,
                                int64_t *end,
                                ks_bytes_t *value) {
        decoded_t d  = {{NULL, 0}, 0, 0};
        ks_bytes_t v = {NULL, 0};
        if (!next_raw(it, &d, &v))
                return false;
        if (key)
                *key = d.key;
        if (start)
                *start = d.start;
        if (end)
                *end = d.end;
        if (value)
                *value = v;
        return true;
}

bool ks_store_iter_next(ks_store_iter_t *it,
                        ks_bytes_t *key,
                        ks_bytes_t *value) {
        return ks_store_iter_next_session(it, key, NULL, NULL, value);
}

bool ks_store_iter_next_window(ks_store_iter_t *it,
                               ks_bytes_t *key,
                               int64_t *window_start,
                               ks_bytes_t *value) {
        return ks_store_iter_next_session(it, key, window_start, NULL, value);
}
