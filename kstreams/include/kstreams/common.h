/**
 * @file common.h
 * @brief Basic types shared by every kstreams header: the export macro,
 *        simple error codes, byte slices, growable buffers and arenas.
 *
 * Rules of use (they hold for the whole library):
 * - Simple calls return ks_err_t, KS_OK (0) on success.
 * - Calls that reach librdkafka, LMDB or libpq return a ks_error_t * (see
 *   error.h), NULL on success.
 * - Every destroy function accepts NULL.
 * - Ownership is written in every doc comment with one of: "Takes ownership
 *   of X on success.", "Copies X; the caller keeps ownership.", "Returns a
 *   borrowed pointer, valid until ...", "Returns a new object; free with ...".
 */
#ifndef KSTREAMS_COMMON_H
#define KSTREAMS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KS_BUILDING_LIBRARY)
#define KS_EXPORT __attribute__((visibility("default")))
#else
#define KS_EXPORT
#endif
#define KS_WARN_UNUSED __attribute__((warn_unused_result))

/** Simple error codes. ks_err2str() names them. */
typedef enum ks_err_e {
        KS_OK = 0,
        KS_ERR_INVALID_ARG,  /**< a bad argument or configuration value */
        KS_ERR_UNKNOWN_CONF, /**< no such configuration property */
        KS_ERR_NOMEM,        /**< an allocation failed */
        KS_ERR_NOT_FOUND,    /**< no such topic, node, store or key */
        KS_ERR_STATE,        /**< the call is not valid in this state */
        KS_ERR_SERDE,        /**< a value could not be (de)serialized */
        KS_ERR_JSON,         /**< malformed JSON */
        KS_ERR_TIMESTAMP,    /**< no valid timestamp could be extracted */
        KS_ERR_PROCESSING,   /**< a processor reported an error */
        KS_ERR_TOPOLOGY,     /**< the topology is invalid */
        KS_ERR_IO,           /**< a file or socket operation failed */
        KS_ERR_KAFKA,        /**< librdkafka reported an error */
        KS_ERR_STORE,        /**< a state store reported an error */
        KS_ERR_DATABASE,     /**< PostgreSQL reported an error */
        KS_ERR_TIMED_OUT,    /**< the operation timed out */
        KS_ERR__END
} ks_err_t;

/** @returns a static string naming @p err ("KS_ERR_JSON: malformed JSON"). */
KS_EXPORT const char *ks_err2str(ks_err_t err);

/** A borrowed slice of bytes. data may be NULL only when len is 0. */
typedef struct ks_bytes_s {
        const void *data;
        size_t len;
} ks_bytes_t;

/**
 * A growable byte buffer. Serializers append to one that the runtime reuses
 * from record to record, so the hot path allocates only when a record is
 * larger than any before it.
 */
typedef struct ks_buf_s {
        char *data;
        size_t len;
        size_t cap;
} ks_buf_t;

/** Makes room for @p extra more bytes. @returns KS_OK or KS_ERR_NOMEM. */
KS_EXPORT ks_err_t ks_buf_reserve(ks_buf_t *buf, size_t extra);
/** Appends @p len bytes. Copies @p data; the caller keeps ownership. */
KS_EXPORT ks_err_t ks_buf_append(ks_buf_t *buf, const void *data, size_t len);
/** Appends printf-formatted text (no terminating NUL is counted in len). */
KS_EXPORT ks_err_t ks_buf_appendf(ks_buf_t *buf, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/** Empties the buffer and keeps its memory. */
KS_EXPORT void ks_buf_clear(ks_buf_t *buf);
/** Frees the buffer's memory; the struct itself is the caller's. */
KS_EXPORT void ks_buf_free(ks_buf_t *buf);

/**
 * An arena: a bump allocator whose memory is released all at once.
 *
 * Every typed key and value that flows through a topology lives in the arena
 * of the input record being processed: deserializers and user callbacks
 * allocate from it, and it is reset when the record has gone through the
 * whole sub-topology. So a callback may return a pointer into its input (a
 * borrowed slice) or a new arena object, and never frees anything.
 */
typedef struct ks_arena_s ks_arena_t;

/** Returns a new arena; free with ks_arena_destroy(). */
KS_EXPORT ks_arena_t *ks_arena_new(size_t block_size);
KS_EXPORT void ks_arena_destroy(ks_arena_t *arena);
/** Runs the deferred cleanups and releases all allocations; keeps the
 *  first block for reuse. */
KS_EXPORT void ks_arena_reset(ks_arena_t *arena);
/** @returns @p size bytes aligned to 16, valid until the arena is reset,
 *  or NULL when memory is exhausted. */
KS_EXPORT void *ks_arena_alloc(ks_arena_t *arena, size_t size);
/** Copies @p len bytes and adds a NUL. @returns NULL on exhaustion. */
KS_EXPORT char *ks_arena_strndup(ks_arena_t *arena, const char *s, size_t len);
KS_EXPORT char *ks_arena_strdup(ks_arena_t *arena, const char *s);
KS_EXPORT void *ks_arena_memdup(ks_arena_t *arena, const void *p, size_t len);
/** @returns an arena-owned int64_t holding @p v (an int64-serde value). */
KS_EXPORT int64_t *ks_arena_int64(ks_arena_t *arena, int64_t v);
/** @returns an arena-owned double holding @p v (a double-serde value). */
KS_EXPORT double *ks_arena_double(ks_arena_t *arena, double v);
/**
 * Calls @p fn(@p ptr) when the arena is reset or destroyed, for objects
 * allocated elsewhere (a jansson json_t, say). If this fails (KS_ERR_NOMEM)
 * @p fn is called at once.
 */
KS_EXPORT ks_err_t ks_arena_defer(ks_arena_t *arena,
                                  void (*fn)(void *),
                                  void *ptr);
/** Bytes currently allocated from the arena (for tests and metrics). */
KS_EXPORT size_t ks_arena_used(const ks_arena_t *arena);

/** @returns wall-clock time in milliseconds since the epoch. */
KS_EXPORT int64_t ks_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif /* KSTREAMS_COMMON_H */
