/* The LMDB environment of a task: directory lock, one write transaction at
 * a time, named-DB handles, and the write log that survives map growth.
 *
 * Map growth. LMDB cannot grow its map while a transaction is open, and a
 * write that fails with MDB_MAP_FULL leaves the transaction unusable. So
 * every write of the current transaction is first copied into a log (one
 * growable buffer, cleared at commit and abort, so no per-write malloc);
 * on MDB_MAP_FULL, from a write or from the commit itself, the transaction
 * is aborted, the map doubled, and the log replayed into a new transaction.
 * Nothing the caller wrote is lost and the caller never sees the failure.
 * To make replays rare, the map is also doubled whenever a transaction
 * begins with more than half of it in use.
 *
 * Handles. A DB handle opened inside a transaction that aborts is closed
 * by LMDB, and mdb_drop(del=1) closes one at once. Each named DB is a
 * "slot" here that remembers its name and whether its handle is open, so
 * handles are reopened lazily, and replay refers to slots, not handles.
 * A slot whose DB was dropped is freed only after the transaction ends,
 * when the log no longer refers to it.
 *
 * Readers on other threads (snapshot.c). The environment is opened with
 * MDB_NOTLS, so read transactions belong to no thread. A reader uses only
 * handles that a committed transaction opened ("shared" slots: open and
 * not pending), because LMDB forbids mdb_dbi_open() in two concurrent
 * transactions and the owner's write transaction is open most of the time.
 * So every DB that exists has a shared handle: the ones found at open get
 * theirs in a read-only transaction committed at once, new ones share the
 * handle their creating transaction opened, and each commit reopens the
 * handles an aborted drop lost. The share lock keeps readers away while
 * the owner changes what they use: the slot table and the store list,
 * handles closed by mdb_drop() or an abort, handles published by a
 * commit, and the map's memory (mdb_env_set_mapsize remaps it). Ordinary
 * reads and writes of the owner take no lock. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store_int.h"

#define DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define MAX_DBS          1024
#define MAX_REPLAYS      48 /* doublings: from 1 MiB past any real disk */

enum { OP_PUT = 1, OP_DEL = 2, OP_DROP = 3 };

/* A log entry: this header, then the key and value bytes, padded to 8. */
typedef struct log_entry_s {
        uint32_t op;
        uint32_t slot;
        uint64_t klen;
        uint64_t vlen;
} log_entry_t;

typedef struct slot_s {
        char *name; /**< NULL: a free slot */
        MDB_dbi dbi;
        bool open;    /**< dbi is a valid handle */
        bool pending; /**< opened in the current transaction */
        bool dropped; /**< dropped in the current transaction */
} slot_t;

/* Writer-preferring, and a reader may release it on another thread than
 * the one that took it, which a pthread rwlock does not allow. */
typedef struct share_lock_s {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int readers;
        int writers_waiting;
        bool writer;
} share_lock_t;

struct ks_state_env_s {
        char *dir;
        MDB_env *mdb;
        MDB_dbi main_dbi; /**< LMDB's main DB: one key per named DB */
        share_lock_t share;
        bool share_init;
        int lock_fd;
        size_t max_key;
        MDB_txn *txn; /**< the write transaction, NULL between commits */
        slot_t *slots;
        size_t nslots;
        size_t slots_cap;
        char *log;
        size_t log_len;
        size_t log_cap;
        uint64_t write_gen;
        uint64_t replays;
        ks_store_iter_t **iters;
        size_t niters;
        size_t iters_cap;
        ks__store_t **stores;
        size_t nstores;
        size_t stores_cap;
};

ks_error_t *ks__lmdb_error(int rc, const char *fmt, ...) {
        char what[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        ks_error_t *err = ks_error_new(KS_ERR_STORE, "lmdb: %s: %s",
                                       mdb_strerror(rc), what);
        if (rc == MDB_PANIC || rc == MDB_CORRUPTED || rc == MDB_INVALID ||
            rc == MDB_VERSION_MISMATCH)
                ks_error_set_fatal(err, true);
        if (rc == EAGAIN || rc == MDB_READERS_FULL)
                ks_error_set_retriable(err, true);
        return err;
}

/* ---- the share lock -------------------------------------------------------
 */

void ks__env_read_lock(ks_state_env_t *env) {
        share_lock_t *l = &env->share;
        pthread_mutex_lock(&l->mu);
        while (l->writer || l->writers_waiting)
                pthread_cond_wait(&l->cv, &l->mu);
        l->readers++;
        pthread_mutex_unlock(&l->mu);
}

void ks__env_read_unlock(ks_state_env_t *env) {
        share_lock_t *l = &env->share;
        pthread_mutex_lock(&l->mu);
        if (--l->readers == 0)
                pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
}

static void write_lock(ks_state_env_t *env) {
        share_lock_t *l = &env->share;
        pthread_mutex_lock(&l->mu);
        l->writers_waiting++;
        while (l->writer || l->readers)
                pthread_cond_wait(&l->cv, &l->mu);
        l->writers_waiting--;
        l->writer = true;
        pthread_mutex_unlock(&l->mu);
}

static void write_unlock(ks_state_env_t *env) {
        share_lock_t *l = &env->share;
        pthread_mutex_lock(&l->mu);
        l->writer = false;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
}

/* ---- directory and lock ------------------------------------------------- */

static int mkdirs(const char *dir) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        for (char *p = path + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(path, 0755) && errno != EEXIST)
                        return -1;
                *p = '/';
        }
        if (mkdir(path, 0755) && errno != EEXIST)
                return -1;
        return 0;
}

/* flock() locks belong to the open file description, so a second open of
 * the same directory fails in this process as well as in any other. */
static ks_error_t *lock_dir(const char *dir, int *fdp) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/LOCK", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return ks_error_new(KS_ERR_IO, "cannot open lock file %s: %s",
                                    path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB)) {
                int e = errno;
                if (e == EWOULDBLOCK) {
                        char buf[32] = {0};
                        ssize_t n    = pread(fd, buf, sizeof(buf) - 1, 0);
                        long pid     = n > 0 ? strtol(buf, NULL, 10) : 0;
                        close(fd);
                        return ks_error_new(
                                KS_ERR_STATE,
                                "state directory %s is locked by pid %ld", dir,
                                pid);
                }
                close(fd);
                return ks_error_new(KS_ERR_IO, "cannot lock %s: %s", path,
                                    strerror(e));
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n) {
                int e = errno;
                close(fd);
                return ks_error_new(KS_ERR_IO, "cannot write %s: %s", path,
                                    strerror(e));
        }
        *fdp = fd;
        return NULL;
}

/* ---- slots ------------------------------------------------------------------
 */

ks_error_t *ks__env_slot(ks_state_env_t *env, const char *name, int *slotp) {
        size_t free_slot = env->nslots;
        for (size_t i = 0; i < env->nslots; i++) {
                if (!env->slots[i].name) {
                        if (free_slot == env->nslots)
                                free_slot = i;
                        continue;
                }
                if (!strcmp(env->slots[i].name, name)) {
                        *slotp = (int)i;
                        return NULL;
                }
        }
        char *dup = strdup(name);
        if (!dup)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        write_lock(env);
        if (free_slot == env->nslots) {
                if (env->nslots == env->slots_cap) {
                        size_t cap = env->slots_cap ? env->slots_cap * 2 : 16;
                        slot_t *s  = realloc(env->slots, cap * sizeof(*s));
                        if (!s) {
                                write_unlock(env);
                                free(dup);
                                return ks_error_new(KS_ERR_NOMEM,
                                                    "out of memory");
                        }
                        env->slots     = s;
                        env->slots_cap = cap;
                }
                env->nslots++;
        }
        slot_t *s = &env->slots[free_slot];
        memset(s, 0, sizeof(*s));
        s->name = dup;
        write_unlock(env);
        *slotp = (int)free_slot;
        return NULL;
}

bool ks__env_shared_dbi(ks_state_env_t *env, const char *name, MDB_dbi *dbip) {
        for (size_t i = 0; i < env->nslots; i++) {
                const slot_t *s = &env->slots[i];
                if (s->name && s->open && !s->pending &&
                    !strcmp(s->name, name)) {
                        *dbip = s->dbi;
                        return true;
                }
        }
        return false;
}

/* @returns 0, MDB_NOTFOUND when the DB does not exist and !create, or an
 * LMDB error. */
static int slot_open(ks_state_env_t *env, int slot, bool create) {
        slot_t *s = &env->slots[slot];
        MDB_dbi dbi;
        if (s->open)
                return 0;
        /* A new handle touches only LMDB's entry for it, which no reader
         * uses: the lock covers the slot, which readers look at. */
        int rc = mdb_dbi_open(env->txn, s->name, create ? MDB_CREATE : 0, &dbi);
        if (rc)
                return rc;
        write_lock(env);
        s->dbi     = dbi;
        s->open    = true;
        s->pending = true;
        s->dropped = false;
        write_unlock(env);
        return 0;
}

/* After the transaction ended: handles opened in an aborted transaction
 * are gone; dropped DBs free their slots once the drop is committed. Only
 * changed slots are written: readers may be reading the others. */
static void slots_after_txn(ks_state_env_t *env, bool committed) {
        for (size_t i = 0; i < env->nslots; i++) {
                slot_t *s = &env->slots[i];
                if (!s->pending && !s->dropped)
                        continue;
                if (!committed && s->pending)
                        s->open = false;
                s->pending = false;
                if (s->dropped && committed) {
                        free(s->name);
                        s->name = NULL;
                }
                s->dropped = false;
        }
}

/* Whether ending the transaction publishes or closes handles. */
static bool handles_change(const ks_state_env_t *env) {
        for (size_t i = 0; i < env->nslots; i++)
                if (env->slots[i].pending || env->slots[i].dropped)
                        return true;
        return false;
}

/* Commits or aborts the write transaction (if any) and settles the slots,
 * keeping readers away when handles change. @returns mdb_txn_commit's. */
static int end_txn(ks_state_env_t *env, bool commit) {
        bool lock = handles_change(env);
        int rc    = 0;
        if (lock)
                write_lock(env);
        if (env->txn) {
                if (commit)
                        rc = mdb_txn_commit(env->txn);
                else
                        mdb_txn_abort(env->txn);
                env->txn = NULL;
        }
        slots_after_txn(env, commit && !rc);
        if (lock)
                write_unlock(env);
        return rc;
}

/* Gives every DB that exists a handle in the current transaction, so that
 * readers can use it once the transaction commits: a handle closed by a
 * drop that was then aborted is otherwise reopened only when the owner
 * next touches the DB. A DB that does not exist keeps its slot closed. */
static void share_slots(ks_state_env_t *env) {
        for (size_t i = 0; i < env->nslots; i++) {
                const slot_t *s = &env->slots[i];
                if (s->name && !s->open && !s->dropped)
                        (void)slot_open(env, (int)i, false);
        }
}

/* ---- transactions -----------------------------------------------------------
 */

static void close_cursors(ks_state_env_t *env) {
        for (size_t i = 0; i < env->niters; i++)
                ks__iter_close_cursor(env->iters[i]);
}

/* Remaps the memory: no reader may be inside it. */
static int grow_map(ks_state_env_t *env) {
        MDB_envinfo info;
        int rc = mdb_env_info(env->mdb, &info);
        if (rc)
                return rc;
        write_lock(env);
        rc = mdb_env_set_mapsize(env->mdb, info.me_mapsize * 2);
        write_unlock(env);
        return rc;
}

static ks_error_t *begin(ks_state_env_t *env) {
        MDB_envinfo info;
        MDB_stat st;
        int rc = mdb_env_info(env->mdb, &info);
        if (!rc)
                rc = mdb_env_stat(env->mdb, &st);
        if (!rc && (info.me_last_pgno + 1) * st.ms_psize > info.me_mapsize / 2)
                rc = grow_map(env);
        if (rc)
                return ks__lmdb_error(rc, "cannot grow the map of %s",
                                      env->dir);
        rc = mdb_txn_begin(env->mdb, NULL, 0, &env->txn);
        if (rc) {
                env->txn = NULL;
                return ks__lmdb_error(rc, "mdb_txn_begin failed in %s",
                                      env->dir);
        }
        return NULL;
}

ks_error_t *ks__env_txn(ks_state_env_t *env, MDB_txn **txnp) {
        if (!env->txn) {
                ks_error_t *err = begin(env);
                if (err)
                        return err;
        }
        *txnp = env->txn;
        return NULL;
}

static void log_clear(ks_state_env_t *env) {
        env->log_len = 0;
        /* Give back what one huge transaction (a restore) took. */
        if (env->log_cap > ((size_t)64 << 20)) {
                free(env->log);
                env->log     = NULL;
                env->log_cap = 0;
        }
}

/* Drops the current transaction and everything it wrote. */
static void drop_txn(ks_state_env_t *env) {
        close_cursors(env);
        end_txn(env, false);
        log_clear(env);
        env->write_gen++;
        for (size_t i = 0; i < env->nstores; i++) {
                ks__store_t *st = env->stores[i];
                if (st->invalidate)
                        st->invalidate(st);
        }
}

static size_t pad8(size_t n) {
        return (n + 7) & ~(size_t)7;
}

static int apply(ks_state_env_t *env,
                 uint32_t op,
                 int slot,
                 MDB_val *k,
                 MDB_val *v) {
        slot_t *s = &env->slots[slot];
        int rc    = slot_open(env, slot, op == OP_PUT);
        if (rc == MDB_NOTFOUND)
                return 0; /* deleting from a DB that does not exist */
        if (rc)
                return rc;
        switch (op) {
        case OP_PUT:
                return mdb_put(env->txn, s->dbi, k, v, 0);
        case OP_DEL:
                rc = mdb_del(env->txn, s->dbi, k, NULL);
                return rc == MDB_NOTFOUND ? 0 : rc;
        default:
                /* mdb_drop(del=1) closes the handle at once. */
                write_lock(env);
                rc = mdb_drop(env->txn, s->dbi, 1);
                if (!rc) {
                        s->open    = false;
                        s->dropped = true;
                }
                write_unlock(env);
                return rc;
        }
}

static int replay_log(ks_state_env_t *env) {
        size_t off = 0;
        while (off < env->log_len) {
                log_entry_t *e = (log_entry_t *)(env->log + off);
                char *p        = (char *)(e + 1);
                MDB_val k      = {e->klen, p};
                MDB_val v      = {e->vlen, p + e->klen};
                int rc         = apply(env, e->op, (int)e->slot, &k, &v);
                if (rc)
                        return rc;
                off += sizeof(*e) + pad8(e->klen + e->vlen);
        }
        return 0;
}

/* The map is full: abort, grow, replay the log, until it fits. On any
 * other failure the transaction is lost and the error says so. */
static ks_error_t *grow_and_replay(ks_state_env_t *env) {
        close_cursors(env);
        env->write_gen++;
        for (int attempt = 0; attempt < MAX_REPLAYS; attempt++) {
                end_txn(env, false);
                int rc = grow_map(env);
                if (!rc)
                        rc = mdb_txn_begin(env->mdb, NULL, 0, &env->txn);
                if (rc) {
                        env->txn = NULL;
                        drop_txn(env);
                        return ks__lmdb_error(rc,
                                              "cannot grow the map of %s; the "
                                              "transaction was aborted",
                                              env->dir);
                }
                env->replays++;
                rc = replay_log(env);
                if (!rc)
                        return NULL;
                if (rc != MDB_MAP_FULL) {
                        drop_txn(env);
                        return ks__lmdb_error(rc,
                                              "replay after growing the map "
                                              "of %s failed; the transaction "
                                              "was aborted",
                                              env->dir);
                }
        }
        drop_txn(env);
        return ks__lmdb_error(MDB_MAP_FULL,
                              "the map of %s cannot grow further; the "
                              "transaction was aborted",
                              env->dir);
}

static ks_error_t *log_append(ks_state_env_t *env,
                              uint32_t op,
                              int slot,
                              ks_bytes_t key,
                              ks_bytes_t val,
                              MDB_val *k,
                              MDB_val *v) {
        size_t need = sizeof(log_entry_t) + pad8(key.len + val.len);
        if (env->log_cap - env->log_len < need) {
                size_t cap = env->log_cap ? env->log_cap : (size_t)64 << 10;
                while (cap - env->log_len < need)
                        cap *= 2;
                char *p = realloc(env->log, cap);
                if (!p)
                        return ks_error_new(KS_ERR_NOMEM,
                                            "out of memory for the write log "
                                            "of %s",
                                            env->dir);
                env->log     = p;
                env->log_cap = cap;
        }
        log_entry_t *e = (log_entry_t *)(env->log + env->log_len);
        e->op          = op;
        e->slot        = (uint32_t)slot;
        e->klen        = key.len;
        e->vlen        = val.len;
        char *p        = (char *)(e + 1);
        if (key.len)
                memcpy(p, key.data, key.len);
        if (val.len)
                memcpy(p + key.len, val.data, val.len);
        k->mv_size = key.len;
        k->mv_data = p;
        v->mv_size = val.len;
        v->mv_data = p + key.len;
        env->log_len += need;
        return NULL;
}

static ks_error_t *write_op(ks_state_env_t *env,
                            uint32_t op,
                            int slot,
                            ks_bytes_t key,
                            ks_bytes_t val) {
        MDB_txn *txn;
        MDB_val k, v;
        ks_error_t *err = ks__env_txn(env, &txn);
        if (err)
                return err;
        size_t mark = env->log_len;
        if ((err = log_append(env, op, slot, key, val, &k, &v)))
                return err;
        env->write_gen++;
        int rc = apply(env, op, slot, &k, &v);
        if (rc == MDB_MAP_FULL)
                return grow_and_replay(env);
        if (rc) {
                env->log_len = mark;
                return ks__lmdb_error(rc, "%s failed in DB %s of %s",
                                      op == OP_PUT   ? "mdb_put"
                                      : op == OP_DEL ? "mdb_del"
                                                     : "mdb_drop",
                                      env->slots[slot].name, env->dir);
        }
        return NULL;
}

static bool key_ok(const ks_state_env_t *env, ks_bytes_t key) {
        return key.len > 0 && key.len <= env->max_key;
}

ks_error_t *ks__env_put(ks_state_env_t *env,
                        int slot,
                        ks_bytes_t key,
                        ks_bytes_t val) {
        if (!key_ok(env, key))
                return ks__lmdb_error(MDB_BAD_VALSIZE,
                                      "a key of %zu bytes for %s (1 to %zu "
                                      "bytes are allowed)",
                                      key.len, env->slots[slot].name,
                                      env->max_key);
        return write_op(env, val.data ? OP_PUT : OP_DEL, slot, key, val);
}

ks_error_t *ks__env_drop(ks_state_env_t *env, int slot) {
        /* A cursor on a dropped DB must not outlive its handle. */
        close_cursors(env);
        return write_op(env, OP_DROP, slot, (ks_bytes_t){NULL, 0},
                        (ks_bytes_t){NULL, 0});
}

ks_error_t *ks__env_dbi(ks_state_env_t *env,
                        int slot,
                        MDB_dbi *dbip,
                        bool *exists) {
        MDB_txn *txn;
        ks_error_t *err = ks__env_txn(env, &txn);
        if (err)
                return err;
        *exists = false;
        int rc  = slot_open(env, slot, false);
        if (rc == MDB_NOTFOUND)
                return NULL;
        if (rc)
                return ks__lmdb_error(rc, "mdb_dbi_open failed for %s in %s",
                                      env->slots[slot].name, env->dir);
        *exists = true;
        *dbip   = env->slots[slot].dbi;
        return NULL;
}

ks_error_t *ks__env_get(ks_state_env_t *env,
                        int slot,
                        ks_bytes_t key,
                        ks_bytes_t *val,
                        bool *found) {
        MDB_dbi dbi;
        bool exists;
        *found          = false;
        ks_error_t *err = ks__env_dbi(env, slot, &dbi, &exists);
        if (err || !exists || !key_ok(env, key))
                return err;
        MDB_val k = {key.len, (void *)key.data}, v;
        int rc    = mdb_get(env->txn, dbi, &k, &v);
        if (rc == MDB_NOTFOUND)
                return NULL;
        if (rc)
                return ks__lmdb_error(rc, "mdb_get failed in DB %s of %s",
                                      env->slots[slot].name, env->dir);
        val->data = v.mv_size ? v.mv_data : "";
        val->len  = v.mv_size;
        *found    = true;
        return NULL;
}

ks_error_t *ks__env_stat(ks_state_env_t *env,
                         int slot,
                         uint64_t *entries,
                         uint64_t *bytes) {
        MDB_dbi dbi;
        bool exists;
        *entries        = 0;
        *bytes          = 0;
        ks_error_t *err = ks__env_dbi(env, slot, &dbi, &exists);
        if (err || !exists)
                return err;
        MDB_stat st;
        int rc = mdb_stat(env->txn, dbi, &st);
        if (rc)
                return ks__lmdb_error(rc, "mdb_stat failed in DB %s of %s",
                                      env->slots[slot].name, env->dir);
        *entries = st.ms_entries;
        *bytes   = (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages +
                            st.ms_overflow_pages) *
                 st.ms_psize;
        return NULL;
}

/* The main DB holds one key per named DB: its name. */
ks_error_t *ks__env_list_dbs(ks_state_env_t *env,
                             const char *prefix,
                             ks_error_t *(*cb)(const char *name, void *opaque),
                             void *opaque) {
        MDB_txn *txn;
        MDB_cursor *mc  = NULL;
        ks_error_t *err = ks__env_txn(env, &txn);
        if (err)
                return err;
        /* Not mdb_dbi_open(txn, NULL): it rewrites the main DB's entry,
         * which readers use. */
        int rc = mdb_cursor_open(txn, env->main_dbi, &mc);
        if (rc)
                return ks__lmdb_error(rc, "cannot list the DBs of %s",
                                      env->dir);
        size_t plen = strlen(prefix);
        MDB_val k   = {plen, (void *)prefix}, v;
        char name[512];
        for (rc = mdb_cursor_get(mc, &k, &v, MDB_SET_RANGE); !rc;
             rc = mdb_cursor_get(mc, &k, &v, MDB_NEXT)) {
                if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen))
                        break;
                if (k.mv_size >= sizeof(name))
                        continue;
                memcpy(name, k.mv_data, k.mv_size);
                name[k.mv_size] = '\0';
                if ((err = cb(name, opaque)))
                        break;
        }
        mdb_cursor_close(mc);
        if (!err && rc && rc != MDB_NOTFOUND)
                err = ks__lmdb_error(rc, "cannot list the DBs of %s", env->dir);
        return err;
}

ks_error_t *ks__env_get_i64(ks_state_env_t *env,
                            int slot,
                            ks_bytes_t key,
                            int64_t *v,
                            bool *found) {
        /* Zeroed for gcc -O3 only: ks__env_get() sets it whenever *found,
         * but *found is caller memory the compiler cannot rule out being
         * changed by the calls in between. */
        ks_bytes_t val  = {0};
        ks_error_t *err = ks__env_get(env, slot, key, &val, found);
        if (err || !*found)
                return err;
        if (val.len != 8) {
                *found = false;
                return ks_error_new(KS_ERR_STORE,
                                    "corrupt 64-bit value in DB %s of %s",
                                    env->slots[slot].name, env->dir);
        }
        *v = (int64_t)ks__get_u64(val.data);
        return NULL;
}

ks_error_t *ks__env_put_i64(ks_state_env_t *env,
                            int slot,
                            ks_bytes_t key,
                            int64_t v) {
        unsigned char b[8];
        ks__put_u64(b, (uint64_t)v);
        return ks__env_put(env, slot, key, (ks_bytes_t){b, 8});
}

const uint64_t *ks__env_write_gen(const ks_state_env_t *env) {
        return &env->write_gen;
}

uint64_t ks__env_replays(const ks_state_env_t *env) {
        return env->replays;
}

/* ---- iterators and stores
 * ------------------------------------------------------ */

void ks__env_iter_attach(ks_state_env_t *env, ks_store_iter_t *it) {
        if (env->niters == env->iters_cap) {
                size_t cap = env->iters_cap ? env->iters_cap * 2 : 8;
                ks_store_iter_t **p =
                        realloc(env->iters, cap * sizeof(*env->iters));
                if (!p)
                        abort(); /* a few pointers; nothing sane remains */
                env->iters     = p;
                env->iters_cap = cap;
        }
        env->iters[env->niters++] = it;
}

void ks__env_iter_detach(ks_state_env_t *env, ks_store_iter_t *it) {
        for (size_t i = 0; i < env->niters; i++) {
                if (env->iters[i] == it) {
                        env->iters[i] = env->iters[--env->niters];
                        return;
                }
        }
}

ks__store_t *ks__env_find_store(ks_state_env_t *env, const char *name) {
        for (size_t i = 0; i < env->nstores; i++)
                if (!strcmp(env->stores[i]->name, name))
                        return env->stores[i];
        return NULL;
}

ks_error_t *ks__env_add_store(ks_state_env_t *env, ks__store_t *store) {
        ks_error_t *err = NULL;
        write_lock(env);
        if (env->nstores == env->stores_cap) {
                size_t cap       = env->stores_cap ? env->stores_cap * 2 : 8;
                ks__store_t **st = realloc(env->stores, cap * sizeof(*st));
                if (!st) {
                        err = ks_error_new(KS_ERR_NOMEM, "out of memory");
                        goto out;
                }
                env->stores     = st;
                env->stores_cap = cap;
        }
        env->stores[env->nstores++] = store;
out:
        write_unlock(env);
        return err;
}

MDB_env *ks__env_mdb(const ks_state_env_t *env) {
        return env->mdb;
}

MDB_dbi ks__env_main_dbi(const ks_state_env_t *env) {
        return env->main_dbi;
}

const char *ks__env_dir(const ks_state_env_t *env) {
        return env->dir;
}

size_t ks__env_max_key(const ks_state_env_t *env) {
        return env->max_key;
}

/* Gives every DB the environment already holds a shared handle: opened in
 * a read-only transaction that commits at once (see the top of the file). */
static ks_error_t *share_existing(ks_state_env_t *env) {
        MDB_txn *txn;
        MDB_cursor *mc  = NULL;
        ks_error_t *err = NULL;
        char name[512];
        int rc = mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn);
        if (rc)
                return ks__lmdb_error(rc, "cannot list the DBs of %s",
                                      env->dir);
        rc = mdb_dbi_open(txn, NULL, 0, &env->main_dbi);
        if (!rc)
                rc = mdb_cursor_open(txn, env->main_dbi, &mc);
        MDB_val k, v;
        if (!rc)
                rc = mdb_cursor_get(mc, &k, &v, MDB_FIRST);
        for (; !rc; rc = mdb_cursor_get(mc, &k, &v, MDB_NEXT)) {
                int slot;
                MDB_dbi dbi;
                if (!k.mv_size || k.mv_size >= sizeof(name) ||
                    memchr(k.mv_data, '\0', k.mv_size))
                        continue;
                memcpy(name, k.mv_data, k.mv_size);
                name[k.mv_size] = '\0';
                if ((err = ks__env_slot(env, name, &slot)))
                        break;
                /* Not a DB, or no room for more handles: this one is then
                 * opened when the owner uses it (readers wait for that). */
                if (mdb_dbi_open(txn, name, 0, &dbi))
                        continue;
                env->slots[slot].dbi  = dbi;
                env->slots[slot].open = true;
        }
        if (mc)
                mdb_cursor_close(mc);
        if (!err && rc != MDB_NOTFOUND)
                err = ks__lmdb_error(rc, "cannot list the DBs of %s", env->dir);
        if (!err && (rc = mdb_txn_commit(txn)))
                err = ks__lmdb_error(rc, "cannot open the DBs of %s", env->dir);
        else if (err)
                mdb_txn_abort(txn);
        if (err)
                for (size_t i = 0; i < env->nslots; i++)
                        env->slots[i].open = false;
        return err;
}

/* ---- public
 * ----------------------------------------------------------------------- */

ks_error_t *ks_state_env_open(const char *dir,
                              size_t map_size,
                              ks_state_env_t **envp) {
        return ks_state_env_open_flags(dir, map_size, 0, envp);
}

ks_error_t *ks_state_env_open_flags(const char *dir,
                                    size_t map_size,
                                    int flags,
                                    ks_state_env_t **envp) {
        ks_error_t *err = NULL;
        int rc, slot;
        *envp = NULL;
        if (!dir || !*dir)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "a state directory is required");
        if (mkdirs(dir))
                return ks_error_new(KS_ERR_IO,
                                    "cannot create state directory %s: %s", dir,
                                    strerror(errno));
        ks_state_env_t *env = calloc(1, sizeof(*env));
        if (!env)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        env->lock_fd = -1;
        pthread_mutex_init(&env->share.mu, NULL);
        pthread_cond_init(&env->share.cv, NULL);
        env->share_init = true;
        env->dir        = strdup(dir);
        if (!env->dir) {
                err = ks_error_new(KS_ERR_NOMEM, "out of memory");
                goto out_free;
        }
        if ((err = lock_dir(dir, &env->lock_fd)))
                goto out_free;
        if ((rc = mdb_env_create(&env->mdb))) {
                err = ks__lmdb_error(rc, "mdb_env_create failed for %s", dir);
                goto out_free;
        }
        if ((rc = mdb_env_set_maxdbs(env->mdb, MAX_DBS)) ||
            (rc = mdb_env_set_mapsize(
                     env->mdb, map_size ? map_size : DEFAULT_MAP_SIZE)) ||
            (rc = mdb_env_open(
                     env->mdb, dir,
                     MDB_NOTLS |
                             (flags & KS_STATE_ENV_NO_SYNC ? MDB_NOSYNC : 0),
                     0644))) {
                err = ks__lmdb_error(rc, "cannot open the environment in %s",
                                     dir);
                goto out_free;
        }
        env->max_key = (size_t)mdb_env_get_maxkeysize(env->mdb);
        if ((err = ks__env_slot(env, "__checkpoints", &slot)) ||
            (err = ks__env_slot(env, "__meta", &slot)) ||
            (err = share_existing(env)))
                goto out_free;
        *envp = env;
        return NULL;

out_free:
        ks_state_env_close(env);
        return err;
}

void ks_state_env_close(ks_state_env_t *env) {
        if (!env)
                return;
        if (env->mdb)
                drop_txn(env);
        /* Snapshots must not outlive the environment: their users make sure
         * no new one begins; wait for those still open. */
        if (env->share_init)
                write_lock(env);
        for (size_t i = 0; i < env->niters; i++)
                ks__iter_orphan(env->iters[i]);
        for (size_t i = 0; i < env->nstores; i++)
                env->stores[i]->free(env->stores[i]);
        for (size_t i = 0; i < env->nslots; i++)
                free(env->slots[i].name);
        if (env->mdb)
                mdb_env_close(env->mdb);
        if (env->lock_fd >= 0) {
                flock(env->lock_fd, LOCK_UN);
                close(env->lock_fd);
        }
        free(env->iters);
        free(env->stores);
        free(env->slots);
        free(env->log);
        free(env->dir);
        if (env->share_init) {
                pthread_cond_destroy(&env->share.cv);
                pthread_mutex_destroy(&env->share.mu);
        }
        free(env);
}

/* "a, b, c": which stores a failed commit loses, for its error message
 * (a full disk is a commit that fails with ENOSPC). */
static void store_names(const ks_state_env_t *env, char *out, size_t size) {
        size_t n = 0;
        out[0]   = '\0';
        for (size_t i = 0; i < env->nstores && n < size; i++)
                n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "",
                                      env->stores[i]->name);
        if (!env->nstores)
                snprintf(out, size, "(none)");
}

/* LMDB reports a write cut short by a full disk as EIO (only a write that
 * wrote nothing is ENOSPC): say what the file system has left, so that a
 * full disk reads as one. */
static void disk_full_note(const ks_state_env_t *env,
                           int rc,
                           char *out,
                           size_t size) {
        struct statvfs fs;
        out[0] = '\0';
        if ((rc != EIO && rc != ENOSPC) || statvfs(env->dir, &fs))
                return;
        uint64_t free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
        if (free_bytes < ((uint64_t)1 << 20))
                snprintf(out, size,
                         "; the file system of the state directory is full "
                         "(%llu bytes free)",
                         (unsigned long long)free_bytes);
}

ks_error_t *ks_state_env_commit(ks_state_env_t *env) {
        for (size_t i = 0; i < env->nstores; i++) {
                ks__store_t *st = env->stores[i];
                ks_error_t *err = st->flush ? st->flush(st) : NULL;
                if (err)
                        return err;
        }
        if (!env->txn)
                return NULL;
        close_cursors(env);
        for (;;) {
                share_slots(env);
                int rc = end_txn(env, true);
                if (!rc) {
                        log_clear(env);
                        env->write_gen++;
                        return NULL;
                }
                if (rc == MDB_MAP_FULL) {
                        /* Freelist pages did not fit: grow and retry. */
                        ks_error_t *err = grow_and_replay(env);
                        if (err)
                                return err;
                        continue;
                }
                drop_txn(env);
                char names[256], space[128];
                store_names(env, names, sizeof(names));
                disk_full_note(env, rc, space, sizeof(space));
                return ks__lmdb_error(rc,
                                      "mdb_txn_commit of store%s %s failed in "
                                      "%s; the transaction was aborted%s",
                                      env->nstores == 1 ? "" : "s", names,
                                      env->dir, space);
        }
}

void ks_state_env_abort(ks_state_env_t *env) {
        if (env)
                drop_txn(env);
}

size_t ks_state_env_map_size(const ks_state_env_t *env) {
        MDB_envinfo info;
        if (mdb_env_info(env->mdb, &info))
                return 0;
        return info.me_mapsize;
}

/* Named DBs of store @p store: "<store>" and its segments
 * "<store>.<digits>" (store_int.h's naming). */
static bool of_store(const char *db, const char *store) {
        size_t n = strlen(store);
        if (strncmp(db, store, n))
                return false;
        if (!db[n])
                return true;
        if (db[n] != '.' || !db[n + 1])
                return false;
        for (const char *p = db + n + 1; *p; p++)
                if (*p < '0' || *p > '9')
                        return false;
        return true;
}

ks_error_t *ks__env_store_bytes(ks_state_env_t *env,
                                MDB_txn *txn,
                                const char *store,
                                uint64_t *bytes) {
        *bytes = 0;
        for (size_t i = 0; i < env->nslots; i++) {
                const slot_t *s = &env->slots[i];
                MDB_stat st;
                if (!s->name || !s->open || s->pending ||
                    !of_store(s->name, store))
                        continue;
                int rc = mdb_stat(txn, s->dbi, &st);
                if (rc == EINVAL)
                        continue; /* created after the snapshot began */
                if (rc)
                        return ks__lmdb_error(rc,
                                              "mdb_stat failed in DB %s of %s",
                                              s->name, env->dir);
                *bytes += (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages +
                                     st.ms_overflow_pages) *
                          st.ms_psize;
        }
        return NULL;
}
