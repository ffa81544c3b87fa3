/**
 * @file store_int.h
 * @brief Internals of the state stores.
 *
 * Layers, bottom up:
 * - skiplist.c: the in-memory sorted map (bytes -> bytes).
 * - env.c: the LMDB environment, its one write transaction, the write log
 *   that lets a transaction be replayed after the map grows, named-DB
 *   handles ("slots") and the directory lock.
 * - table.c: a "table" is one sorted map, either an LMDB named DB (a slot
 *   of an environment) or a skip list; get/put/delete/stat over both.
 * - segments.c: time segments of tables, for window and session stores.
 * - iter.c: iterators over a table or over a run of segments.
 * - kv.c, window.c, session.c: the public stores.
 * - snapshot.c: read-only snapshots other threads take of an environment.
 *
 * Encodings (all integers big-endian so that memcmp orders them):
 * - window key:  [4: key length][key][8: window start]
 * - session key: [4: key length][key][8: end][8: start]
 * - times are stored with their sign bit flipped, so negative times order
 *   before positive ones; for times >= 0 that is plain big-endian plus
 *   2^63.
 * - the "__checkpoints" DB maps store name -> 8-byte offset; the "__meta"
 *   DB maps "<store>\0stream_time" -> 8-byte newest time seen.
 * - segment DBs are named "<store>.<segment id>"; store names may not end
 *   in ".<digits>" nor start with "__", so these names never collide.
 */
#ifndef KS_STORE_INT_H
#define KS_STORE_INT_H

#include <lmdb.h>
#include <string.h>

#include "kstreams/store.h"

/* ---- helpers ---------------------------------------------------------- */

/** An error for LMDB return code @p rc: "lmdb: <mdb_strerror>: <what>". */
ks_error_t *ks__lmdb_error(int rc, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/** memcmp, then shorter first: LMDB's default order. */
static inline int ks__bytes_cmp(const void *a,
                                size_t alen,
                                const void *b,
                                size_t blen) {
        size_t n = alen < blen ? alen : blen;
        int c    = n ? memcmp(a, b, n) : 0;
        if (c)
                return c;
        return alen < blen ? -1 : alen > blen;
}

static inline void ks__put_u32(unsigned char *p, uint32_t v) {
        p[0] = (unsigned char)(v >> 24);
        p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
}

static inline uint32_t ks__get_u32(const unsigned char *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
               (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void ks__put_u64(unsigned char *p, uint64_t v) {
        for (int i = 7; i >= 0; i--) {
                p[i] = (unsigned char)v;
                v >>= 8;
        }
}

static inline uint64_t ks__get_u64(const unsigned char *p) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/** An ordered time: sign bit flipped. */
static inline void ks__put_time(unsigned char *p, int64_t t) {
        ks__put_u64(p, (uint64_t)t ^ UINT64_C(0x8000000000000000));
}

static inline int64_t ks__get_time(const unsigned char *p) {
        return (int64_t)(ks__get_u64(p) ^ UINT64_C(0x8000000000000000));
}

/** Checks a store name: non-empty, no "__" prefix, no ".<digits>" end. */
ks_error_t *ks__store_name_check(const char *name);

/* ---- in-memory sorted map ------------------------------------------------ */

typedef struct ks__mnode_s ks__mnode_t;
typedef struct ks__skiplist_s ks__skiplist_t;

ks__skiplist_t *ks__skiplist_new(void);
void ks__skiplist_destroy(ks__skiplist_t *sl);
/** @returns the node of @p key or NULL. */
ks__mnode_t *ks__skiplist_get(const ks__skiplist_t *sl, ks_bytes_t key);
/** Inserts or replaces. Copies key and value. */
ks_err_t ks__skiplist_put(ks__skiplist_t *sl, ks_bytes_t key, ks_bytes_t val);
/** @returns true if @p key was there. */
bool ks__skiplist_del(ks__skiplist_t *sl, ks_bytes_t key);
/** The first node with a key >= @p key (key.data NULL: the first node). */
ks__mnode_t *ks__skiplist_seek(const ks__skiplist_t *sl, ks_bytes_t key);
ks__mnode_t *ks__skiplist_next(const ks__mnode_t *n);
ks_bytes_t ks__mnode_key(const ks__mnode_t *n);
/** Never has data NULL. */
ks_bytes_t ks__mnode_value(const ks__mnode_t *n);
size_t ks__skiplist_count(const ks__skiplist_t *sl);
/** Bytes of keys and values held. */
size_t ks__skiplist_bytes(const ks__skiplist_t *sl);

/* ---- stores: the part every store shares --------------------------------- */

typedef enum {
        KS__STORE_KV,
        KS__STORE_WINDOW,
        KS__STORE_SESSION,
} ks__store_type_t;

typedef struct ks__store_s ks__store_t;
struct ks__store_s {
        ks__store_type_t type;
        char *name;
        ks_state_env_t *env;    /**< NULL: an in-memory store */
        int64_t mem_checkpoint; /**< in-memory stores only */
        /** Writes what the store buffers (stream time) before a commit. */
        ks_error_t *(*flush)(ks__store_t *store);
        /** The transaction was dropped: forget cached state. */
        void (*invalidate)(ks__store_t *store);
        void (*free)(ks__store_t *store);
};

ks_error_t *ks__store_init(ks__store_t *hdr,
                           ks__store_type_t type,
                           const char *name,
                           ks_state_env_t *env);
void ks__store_fini(ks__store_t *hdr);
int64_t ks__store_checkpoint(ks__store_t *hdr);
ks_error_t *ks__store_set_checkpoint(ks__store_t *hdr, int64_t offset);

/* ---- environments ----------------------------------------------------------
 */

/** Slot of the reserved checkpoint and metadata DBs. */
#define KS__SLOT_CHECKPOINTS 0
#define KS__SLOT_META        1

/** The open store of @p name, or NULL. */
ks__store_t *ks__env_find_store(ks_state_env_t *env, const char *name);
/** The environment owns @p store from now on (frees it on close). */
ks_error_t *ks__env_add_store(ks_state_env_t *env, ks__store_t *store);

/** A slot (a named DB, opened lazily) for @p name, found or added. */
ks_error_t *ks__env_slot(ks_state_env_t *env, const char *name, int *slotp);
/** The current write transaction, begun if there is none. */
ks_error_t *ks__env_txn(ks_state_env_t *env, MDB_txn **txnp);
/** Opens the slot's DB in the current transaction. *dbip is left unset and
 *  *exists false when the DB does not exist. */
ks_error_t *ks__env_dbi(ks_state_env_t *env,
                        int slot,
                        MDB_dbi *dbip,
                        bool *exists);
ks_error_t *ks__env_get(ks_state_env_t *env,
                        int slot,
                        ks_bytes_t key,
                        ks_bytes_t *val,
                        bool *found);
/** Logs and applies a write; value.data NULL deletes. */
ks_error_t *ks__env_put(ks_state_env_t *env,
                        int slot,
                        ks_bytes_t key,
                        ks_bytes_t val);
/** Logs and applies the deletion of the slot's whole DB. */
ks_error_t *ks__env_drop(ks_state_env_t *env, int slot);
ks_error_t *ks__env_stat(ks_state_env_t *env,
                         int slot,
                         uint64_t *entries,
                         uint64_t *bytes);
/** Calls @p cb with each named DB whose name starts with @p prefix. */
ks_error_t *ks__env_list_dbs(ks_state_env_t *env,
                             const char *prefix,
                             ks_error_t *(*cb)(const char *name, void *opaque),
                             void *opaque);
/* For snapshots (snapshot.c), which read from other threads: they hold
 * the share lock for reading while they use the slot table, the store
 * list, handles and the map; the owner takes it for writing to change
 * any of them. */
void ks__env_read_lock(ks_state_env_t *env);
/** May run on another thread than ks__env_read_lock() did. */
void ks__env_read_unlock(ks_state_env_t *env);
/** With the share lock held: the handle of DB @p name if a committed
 *  transaction opened it (other transactions may use it). */
bool ks__env_shared_dbi(ks_state_env_t *env, const char *name, MDB_dbi *dbip);
MDB_env *ks__env_mdb(const ks_state_env_t *env);
/** LMDB's main DB, whose keys name the named DBs. */
MDB_dbi ks__env_main_dbi(const ks_state_env_t *env);
const char *ks__env_dir(const ks_state_env_t *env);
size_t ks__env_max_key(const ks_state_env_t *env);

/** Counts every write, commit and abort: iterators reposition on change. */
const uint64_t *ks__env_write_gen(const ks_state_env_t *env);
/** How many times a transaction was replayed after growing the map. */
uint64_t ks__env_replays(const ks_state_env_t *env);

ks_error_t *ks__env_get_i64(ks_state_env_t *env,
                            int slot,
                            ks_bytes_t key,
                            int64_t *v,
                            bool *found);
ks_error_t *ks__env_put_i64(ks_state_env_t *env,
                            int slot,
                            ks_bytes_t key,
                            int64_t v);

/* Iterators with an LMDB cursor are listed in their environment, which
 * closes the cursors before the transaction ends or a DB is dropped. */
void ks__env_iter_attach(ks_state_env_t *env, ks_store_iter_t *it);
void ks__env_iter_detach(ks_state_env_t *env, ks_store_iter_t *it);
/** Closes the iterator's cursor (env.c calls it). */
void ks__iter_close_cursor(ks_store_iter_t *it);
/** The environment or snapshot is closing: the iterator ends with an
 *  error. */
void ks__iter_orphan(ks_store_iter_t *it);
/* Iterators of a snapshot are listed in it, which orphans them on close. */
ks_error_t *ks__snapshot_iter_attach(ks_state_snapshot_t *snap,
                                     ks_store_iter_t *it);
void ks__snapshot_iter_detach(ks_state_snapshot_t *snap, ks_store_iter_t *it);

/* ---- tables
 * ------------------------------------------------------------------ */

typedef struct ks__table_s {
        ks_state_env_t *env; /**< LMDB when set: the DB of slot */
        int slot;
        ks__skiplist_t *mem; /**< in memory otherwise */
        uint64_t *mem_gen;   /**< bumped on every in-memory write */
} ks__table_t;

ks_error_t *ks__table_get(ks__table_t *t,
                          ks_bytes_t key,
                          ks_bytes_t *val,
                          bool *found);
/** val.data NULL deletes. */
ks_error_t *ks__table_put(ks__table_t *t, ks_bytes_t key, ks_bytes_t val);
ks_error_t *ks__table_stat(ks__table_t *t, uint64_t *entries, uint64_t *bytes);
/** The generation counter iterators over this table watch. */
const uint64_t *ks__table_gen(const ks__table_t *t);

/* ---- segments
 * ------------------------------------------------------------------ */

typedef struct ks__segment_s {
        int64_t id;
        ks__table_t table;
} ks__segment_t;

typedef struct ks__segstore_s {
        const char *name; /**< the store's */
        ks_state_env_t *env;
        int64_t retention_ms;
        int64_t segment_ms;
        int64_t observed; /**< newest time put (valid if has_observed) */
        bool has_observed;
        bool observed_dirty;
        bool stale; /**< reload segments and time before the next use */
        ks__segment_t *segs; /**< sorted by id */
        size_t nsegs;
        size_t cap;
        uint64_t mem_gen;
        ks_buf_t namebuf;
} ks__segstore_t;

ks_error_t *ks__segstore_init(ks__segstore_t *ss,
                              ks_state_env_t *env,
                              const char *name,
                              int64_t retention_ms,
                              int64_t segment_ms);
void ks__segstore_fini(ks__segstore_t *ss);
/** Reloads after an abort (no-op otherwise). */
ks_error_t *ks__segstore_refresh(ks__segstore_t *ss);
int64_t ks__segstore_id(const ks__segstore_t *ss, int64_t t);
/** The oldest time still live (INT64_MIN when nothing expired yet). */
int64_t ks__segstore_min_live(const ks__segstore_t *ss);
/* The same rules for readers that have no segstore (snapshot.c). */
/** The segment of time @p t: floor(t / segment_ms). */
int64_t ks__segment_id(int64_t t, int64_t segment_ms);
/** The oldest live time given the newest time seen (if any). */
int64_t ks__segment_min_live(int64_t observed,
                             bool has_observed,
                             int64_t retention_ms);
/** Parses the part of a segment DB name after "<store>.". */
bool ks__segment_parse_id(const char *rest, int64_t *id);
/** The "__meta" key of a store's stream time, built in @p buf. */
ks_bytes_t ks__segment_time_key(ks_buf_t *buf, const char *store);
/** Moves stream time to @p t if newer, dropping expired segments. */
ks_error_t *ks__segstore_advance(ks__segstore_t *ss, int64_t t);
/** The table of segment @p id; NULL when it does not exist and !create. */
ks_error_t *ks__segstore_table(ks__segstore_t *ss,
                               int64_t id,
                               bool create,
                               ks__table_t **tp);
/** The ids of segments in [from_id, to_id]: a new array in *idsp. */
ks_error_t *ks__segstore_ids(ks__segstore_t *ss,
                             int64_t from_id,
                             int64_t to_id,
                             int64_t **idsp,
                             size_t *np);
ks_error_t *ks__segstore_flush(ks__segstore_t *ss);
void ks__segstore_invalidate(ks__segstore_t *ss);
const uint64_t *ks__segstore_gen(const ks__segstore_t *ss);
/** For tests: live segments and entries held (approximate for LMDB). */
ks_error_t *ks__segstore_count(ks__segstore_t *ss,
                               uint64_t *segments,
                               uint64_t *entries);

/* ---- iterators
 * ------------------------------------------------------------------ */

typedef enum {
        KS__ITER_KV,
        KS__ITER_WINDOW,
        KS__ITER_SESSION,
} ks__iter_kind_t;

typedef enum {
        KS__UPPER_NONE,
        KS__UPPER_INCLUSIVE, /**< keys <= upper */
        KS__UPPER_PREFIX,    /**< keys that start with upper */
} ks__upper_mode_t;

typedef struct ks__iter_spec_s {
        ks__iter_kind_t kind;
        ks__table_t *table;   /**< one table (key-value stores) */
        ks__segstore_t *segs; /**< or these segments ... */
        int64_t *ids;         /**< ... (taken over by the iterator) */
        size_t nids;
        ks_bytes_t lower; /**< data NULL: from the first key */
        ks_bytes_t upper;
        ks__upper_mode_t upper_mode;
        /* Window: start in [t_from, t_to]. Session: end >= t_from and
         * start <= t_to. */
        int64_t t_from;
        int64_t t_to;
        /* Or a snapshot's tables (snapshot.c): DBs read in ro_txn, one
         * handle each in ro_dbis (taken over by the iterator, as ids),
         * in the order to read them. */
        ks_state_snapshot_t *snap;
        MDB_txn *ro_txn;
        MDB_dbi *ro_dbis;
        size_t ro_cnt;
} ks__iter_spec_t;

/** Always takes ownership of spec->ids and spec->ro_dbis. */
ks_error_t *ks__iter_new(const ks__iter_spec_t *spec, ks_store_iter_t **itp);

/* ---- window/session internals for tests
 * ------------------------------------------ */

ks__segstore_t *ks__window_store_segments(ks_window_store_t *store);
/** A window key, [4: key length][key][8: start], built in @p buf; data
 *  NULL when out of memory. */
ks_bytes_t ks__window_key(ks_buf_t *buf, ks_bytes_t key, int64_t start);
ks__segstore_t *ks__session_store_segments(ks_session_store_t *store);

/** Sums the pages of @p store's DBs in read transaction @p txn (a
 *  snapshot's: the caller holds the share lock). */
ks_error_t *ks__env_store_bytes(ks_state_env_t *env,
                                MDB_txn *txn,
                                const char *store,
                                uint64_t *bytes);

#endif
