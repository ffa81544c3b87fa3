/**
 * @file error.h
 * @brief Error objects for calls that reach librdkafka, LMDB or libpq: they
 *        keep the source's own code and message, and say whether retrying
 *        can help and whether the instance can go on at all.
 */
#ifndef KSTREAMS_ERROR_H
#define KSTREAMS_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_error_s ks_error_t;

/**
 * Returns a new error; free with ks_error_destroy().
 * @param code the kstreams code (KS_ERR_KAFKA, KS_ERR_STORE, ...)
 * @param fmt  the message, lower-case, saying what failed first
 *             ("lmdb: MDB_MAP_FULL: mdb_put failed for store counts").
 * Never returns NULL: on OOM a static "out of memory" error is returned,
 * which ks_error_destroy() knows not to free.
 */
KS_EXPORT ks_error_t *ks_error_new(ks_err_t code, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), returns_nonnull));

/** Marks @p err retriable (a retry of the same call may succeed). */
KS_EXPORT ks_error_t *ks_error_set_retriable(ks_error_t *err, bool v);
/** Marks @p err fatal (the instance cannot go on). */
KS_EXPORT ks_error_t *ks_error_set_fatal(ks_error_t *err, bool v);

KS_EXPORT ks_err_t ks_error_code(const ks_error_t *err);
/** Returns a borrowed pointer, valid until ks_error_destroy(). */
KS_EXPORT const char *ks_error_message(const ks_error_t *err);
KS_EXPORT bool ks_error_is_retriable(const ks_error_t *err);
KS_EXPORT bool ks_error_is_fatal(const ks_error_t *err);
KS_EXPORT void ks_error_destroy(ks_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
