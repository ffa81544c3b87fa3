/**
 * @file store.h
 * @brief State stores: key-value, window and session stores over bytes,
 *        persistent (LMDB) or in memory. Stores know nothing of Kafka or
 *        serdes: keys and values are serialized by their users.
 *
 * Rules of use:
 * - Persistent stores live in a ks_state_env_t: one LMDB environment per
 *   task directory, locked so two processes never open the same one.
 * - Writes go into the environment's current write transaction, which
 *   ks_state_env_commit() makes durable together with every store's
 *   checkpoint: the data and the changelog offset it reflects change
 *   atomically. ks_state_env_abort() drops everything since the last commit.
 * - Values returned by get() and by iterators are borrowed: valid until
 *   the next write to any store of the environment, commit or abort.
 * - One thread uses an environment and its stores at a time (its owner).
 *   The one exception are snapshots (below): any thread may read the
 *   environment's last committed state through one while the owner works.
 * - Keys are compared as bytes (memcmp, shorter first on a tie), so ranges
 *   follow the serialized order.
 */
#ifndef KSTREAMS_STORE_H
#define KSTREAMS_STORE_H

#include "kstreams/common.h"
#include "kstreams/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_state_env_s ks_state_env_t;
typedef struct ks_kv_store_s ks_kv_store_t;
typedef struct ks_window_store_s ks_window_store_t;
typedef struct ks_session_store_s ks_session_store_t;
typedef struct ks_store_iter_s ks_store_iter_t;
typedef struct ks_state_snapshot_s ks_state_snapshot_t;

/* ---- environments -------------------------------------------------------- */

/**
 * Opens (creating) the LMDB environment in directory @p dir, with an initial
 * map size of @p map_size bytes (0: 64 MiB), grown automatically on
 * MDB_MAP_FULL. Takes an exclusive lock on @p dir (a lock file): a second
 * open of the same directory, from this or another process, fails with
 * KS_ERR_STATE naming the holder's pid.
 * @returns NULL and a new environment in @p *envp, or a new error.
 */
KS_EXPORT ks_error_t *ks_state_env_open(const char *dir,
                                        size_t map_size,
                                        ks_state_env_t **envp);
/** ks_state_env_open() flag: commits are not flushed to disk (LMDB's
 *  MDB_NOSYNC). A crash of the machine, not of the process, can lose the
 *  last commits: for throwaway state such as the test driver's. */
#define KS_STATE_ENV_NO_SYNC 0x1
/** ks_state_env_open() with KS_STATE_ENV_* @p flags. */
KS_EXPORT ks_error_t *ks_state_env_open_flags(const char *dir,
                                              size_t map_size,
                                              int flags,
                                              ks_state_env_t **envp);
/** Aborts an uncommitted transaction, closes the stores, releases the lock. */
KS_EXPORT void ks_state_env_close(ks_state_env_t *env);
/** Makes every write since the last commit durable, with the checkpoints. */
KS_EXPORT ks_error_t *ks_state_env_commit(ks_state_env_t *env);
/** Drops every write since the last commit (checkpoints included). */
KS_EXPORT void ks_state_env_abort(ks_state_env_t *env);
/** The current map size in bytes (it grows on demand). */
KS_EXPORT size_t ks_state_env_map_size(const ks_state_env_t *env);

/* ---- key-value stores ---------------------------------------------------- */

/** Opens (creating) the persistent key-value store @p name in @p env.
 *  The store belongs to the environment (closed with it). */
KS_EXPORT ks_error_t *ks_kv_store_open(ks_state_env_t *env,
                                       const char *name,
                                       ks_kv_store_t **storep);
/** A new in-memory key-value store (same interface, no checkpoint
 *  durability); free with ks_kv_store_destroy(). */
KS_EXPORT ks_kv_store_t *ks_kv_store_new_memory(const char *name);
/** Frees an in-memory store; a no-op for persistent ones (the environment
 *  owns them). Accepts NULL. */
KS_EXPORT void ks_kv_store_destroy(ks_kv_store_t *store);
KS_EXPORT const char *ks_kv_store_name(const ks_kv_store_t *store);

/** @returns NULL and *found; *value is borrowed (see the rules above). */
KS_EXPORT ks_error_t *ks_kv_store_get(ks_kv_store_t *store,
                                      ks_bytes_t key,
                                      ks_bytes_t *value,
                                      bool *found);
/** Copies @p key and @p value; value.data NULL deletes the key. */
KS_EXPORT ks_error_t *ks_kv_store_put(ks_kv_store_t *store,
                                      ks_bytes_t key,
                                      ks_bytes_t value);
KS_EXPORT ks_error_t *ks_kv_store_delete(ks_kv_store_t *store, ks_bytes_t key);
/** Keys in [from, to] in byte order; from.data NULL / to.data NULL leave
 *  that end open. Returns a new iterator in @p *itp. */
KS_EXPORT ks_error_t *ks_kv_store_range(ks_kv_store_t *store,
                                        ks_bytes_t from,
                                        ks_bytes_t to,
                                        ks_store_iter_t **itp);
/** Keys that start with @p prefix, in byte order. */
KS_EXPORT ks_error_t *ks_kv_store_prefix(ks_kv_store_t *store,
                                         ks_bytes_t prefix,
                                         ks_store_iter_t **itp);
KS_EXPORT uint64_t ks_kv_store_approximate_count(ks_kv_store_t *store);
/** Approximate bytes of keys and values held. */
KS_EXPORT uint64_t ks_kv_store_approximate_size(ks_kv_store_t *store);
/** The changelog offset this store reflects (-1: none). Set in the current
 *  transaction, so it commits with the data. */
KS_EXPORT int64_t ks_kv_store_checkpoint(ks_kv_store_t *store);
KS_EXPORT ks_error_t *ks_kv_store_set_checkpoint(ks_kv_store_t *store,
                                                 int64_t offset);

/* ---- iterators -------------------------------------------------------------
 */

/** Moves to the next entry. @returns false at the end. Key and value are
 *  borrowed until the next call. For window iterators *window_start is the
 *  window's start; for session iterators *start and *end bound the session
 *  (NULL when not wanted). */
KS_EXPORT bool ks_store_iter_next(ks_store_iter_t *it,
                                  ks_bytes_t *key,
                                  ks_bytes_t *value);
KS_EXPORT bool ks_store_iter_next_window(ks_store_iter_t *it,
                                         ks_bytes_t *key,
                                         int64_t *window_start,
                                         ks_bytes_t *value);
KS_EXPORT bool ks_store_iter_next_session(ks_store_iter_t *it,
                                          ks_bytes_t *key,
                                          int64_t *start,
                                          int64_t *end,
                                          ks_bytes_t *value);
/** The error that ended an iteration early, if any (borrowed). */
KS_EXPORT const ks_error_t *ks_store_iter_error(const ks_store_iter_t *it);
KS_EXPORT void ks_store_iter_destroy(ks_store_iter_t *it);

/* ---- window stores
 * ------------------------------------------------------------ */

/**
 * Opens the persistent window store @p name: entries keyed by (key, window
 * start), kept in time segments of @p segment_ms so that windows older than
 * @p retention_ms behind the newest window start are dropped a whole
 * segment at a time.
 */
KS_EXPORT ks_error_t *ks_window_store_open(ks_state_env_t *env,
                                           const char *name,
                                           int64_t retention_ms,
                                           int64_t segment_ms,
                                           ks_window_store_t **storep);
KS_EXPORT ks_window_store_t *ks_window_store_new_memory(const char *name,
                                                        int64_t retention_ms,
                                                        int64_t segment_ms);
KS_EXPORT void ks_window_store_destroy(ks_window_store_t *store);
/** value.data NULL deletes. Writes to expired windows are ignored. */
KS_EXPORT ks_error_t *ks_window_store_put(ks_window_store_t *store,
                                          ks_bytes_t key,
                                          int64_t window_start,
                                          ks_bytes_t value);
KS_EXPORT ks_error_t *ks_window_store_get(ks_window_store_t *store,
                                          ks_bytes_t key,
                                          int64_t window_start,
                                          ks_bytes_t *value,
                                          bool *found);
/** The windows of @p key starting in [time_from, time_to], by start. */
KS_EXPORT ks_error_t *ks_window_store_fetch(ks_window_store_t *store,
                                            ks_bytes_t key,
                                            int64_t time_from,
                                            int64_t time_to,
                                            ks_store_iter_t **itp);
/** Every key's windows starting in [time_from, time_to]. */
KS_EXPORT ks_error_t *ks_window_store_fetch_all(ks_window_store_t *store,
                                                int64_t time_from,
                                                int64_t time_to,
                                                ks_store_iter_t **itp);
KS_EXPORT int64_t ks_window_store_checkpoint(ks_window_store_t *store);
KS_EXPORT ks_error_t *ks_window_store_set_checkpoint(ks_window_store_t *store,
                                                     int64_t offset);

/* ---- session stores
 * ------------------------------------------------------------ */

KS_EXPORT ks_error_t *ks_session_store_open(ks_state_env_t *env,
                                            const char *name,
                                            int64_t retention_ms,
                                            ks_session_store_t **storep);
KS_EXPORT ks_session_store_t *ks_session_store_new_memory(const char *name,
                                                          int64_t retention_ms);
KS_EXPORT void ks_session_store_destroy(ks_session_store_t *store);
/** Stores the session [start, end] of @p key; value.data NULL removes it. */
KS_EXPORT ks_error_t *ks_session_store_put(ks_session_store_t *store,
                                           ks_bytes_t key,
                                           int64_t start,
                                           int64_t end,
                                           ks_bytes_t value);
/** The sessions of @p key that end at or after @p earliest_end and start
 *  at or before @p latest_start (the ones a new record may merge with). */
KS_EXPORT ks_error_t *ks_session_store_find(ks_session_store_t *store,
                                            ks_bytes_t key,
                                            int64_t earliest_end,
                                            int64_t latest_start,
                                            ks_store_iter_t **itp);
KS_EXPORT int64_t ks_session_store_checkpoint(ks_session_store_t *store);
KS_EXPORT ks_error_t *ks_session_store_set_checkpoint(ks_session_store_t *store,
                                                      int64_t offset);

/* ---- snapshots: reading from other threads
 * ---------------------------------------------------------------------------
 *
 * A snapshot is a read-only view of what ks_state_env_commit() made durable
 * last, taken with one LMDB read transaction. Unlike every other call on an
 * environment, ks_state_env_snapshot() and the ks_state_snapshot_*() calls
 * may run on any thread while the environment's owner keeps writing
 * (interactive queries): they never see the owner's uncommitted writes,
 * and a snapshot does not change while it is open.
 *
 * Rules of use:
 * - A snapshot finds stores by name among those the owner opened with
 *   ks_kv_store_open() / ks_window_store_open(); keys and values are the
 *   stored bytes, as with the stores themselves.
 * - Keep snapshots short. While one is open the owner cannot publish new
 *   DB handles, drop expired segments or grow the map: such a commit or
 *   write waits until the snapshot closes. The owner's other writes and
 *   commits go on. So the owner itself must not write while it holds a
 *   snapshot of its own environment.
 * - The environment must not be closed while a snapshot may still begin;
 *   ks_state_env_close() waits for the snapshots already open.
 * - A snapshot may be used by one thread at a time, and closed on another
 *   thread than the one that took it.
 * - Windows whose segment the owner is expiring (dropped but not yet
 *   committed) are not returned.
 */

/**
 * Begins a snapshot of @p env's last committed state.
 * @returns NULL and a new snapshot in @p *snapp (close with
 *          ks_state_snapshot_close()), or a new error (retriable when
 *          LMDB has no free reader slot: more than 126 snapshots open).
 */
KS_EXPORT ks_error_t *ks_state_env_snapshot(ks_state_env_t *env,
                                            ks_state_snapshot_t **snapp);
/** Ends the snapshot; its iterators then end with an error (destroy them
 *  before or after). Accepts NULL. */
KS_EXPORT void ks_state_snapshot_close(ks_state_snapshot_t *snap);
/**
 * The bytes of LMDB pages (branch, leaf, overflow) that store @p store's
 * databases (its segments, for a window or session store) use in the
 * snapshot: what the store adds to its environment's file.
 * @returns NULL with @p *bytes set (0 for a store not in the
 *          environment), or a new error.
 */
KS_EXPORT ks_error_t *ks_state_snapshot_store_bytes(ks_state_snapshot_t *snap,
                                                    const char *store,
                                                    uint64_t *bytes);
/**
 * Looks @p key up in the key-value store @p store.
 * @returns NULL and *found, *value borrowed until the snapshot closes; or a
 *          new error: KS_ERR_NOT_FOUND when the owner has no store of that
 *          name open, KS_ERR_INVALID_ARG when it is not a key-value store.
 */
KS_EXPORT ks_error_t *ks_state_snapshot_kv_get(ks_state_snapshot_t *snap,
                                               const char *store,
                                               ks_bytes_t key,
                                               ks_bytes_t *value,
                                               bool *found);
/** As ks_kv_store_range(): keys in [from, to], an end with data NULL
 *  open. Returns a new iterator in @p *itp, valid until the snapshot
 *  closes (ks_store_iter_next()); free with ks_store_iter_destroy(). */
KS_EXPORT ks_error_t *ks_state_snapshot_kv_range(ks_state_snapshot_t *snap,
                                                 const char *store,
                                                 ks_bytes_t from,
                                                 ks_bytes_t to,
                                                 ks_store_iter_t **itp);
/** As ks_window_store_fetch(): the windows of @p key starting in
 *  [time_from, time_to] that have not expired as of the snapshot, by start
 *  (ks_store_iter_next_window()). */
KS_EXPORT ks_error_t *ks_state_snapshot_window_fetch(ks_state_snapshot_t *snap,
                                                     const char *store,
                                                     ks_bytes_t key,
                                                     int64_t time_from,
                                                     int64_t time_to,
                                                     ks_store_iter_t **itp);

#ifdef __cplusplus
}
#endif
#endif
