/**
 * @file serde.h
 * @brief Serdes: how typed keys and values become bytes and back.
 *
 * Values are deserialized once at a source and serialized once at a sink, a
 * store or a repartition topic; between processors they travel as typed
 * objects living in the record's arena (see common.h). A NULL object is the
 * null value (a tombstone): it maps to NULL bytes and back without calling
 * the serde.
 *
 * Typed objects of the built-in serdes:
 * | serde               | object                                     |
 * |---------------------|--------------------------------------------|
 * | ks_serde_bytes()    | const ks_bytes_t *                         |
 * | ks_serde_string()   | const char * (UTF-8, NUL-terminated)       |
 * | ks_serde_int64()    | const int64_t * (8 bytes big-endian, as    |
 * |                     | Java's LongSerializer)                     |
 * | ks_serde_double()   | const double * (IEEE 754 big-endian, as    |
 * |                     | Java's DoubleSerializer)                   |
 * | ks_serde_json()     | const json_t * (jansson; any JSON value)   |
 */
#ifndef KSTREAMS_SERDE_H
#define KSTREAMS_SERDE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_serde_s ks_serde_t;

/**
 * Appends the bytes of @p obj (never NULL) to @p out.
 * @returns KS_OK, or an error code with @p errstr saying why.
 */
typedef ks_err_t(ks_serialize_fn)(const void *obj,
                                  ks_buf_t *out,
                                  void *opaque,
                                  char *errstr,
                                  size_t errstr_size);

/**
 * Builds the object for @p len bytes at @p data (never NULL) in @p arena
 * and stores it in @p *obj_out. The object may point into @p data: the
 * bytes outlive the object.
 * @returns KS_OK, or KS_ERR_SERDE / KS_ERR_JSON with @p errstr saying why.
 */
typedef ks_err_t(ks_deserialize_fn)(ks_arena_t *arena,
                                    const void *data,
                                    size_t len,
                                    const void **obj_out,
                                    void *opaque,
                                    char *errstr,
                                    size_t errstr_size);

/**
 * Returns a new serde holding one reference; free with ks_serde_destroy().
 * Takes ownership of @p opaque: @p opaque_free (may be NULL) frees it when
 * the last reference goes. If this fails (NULL), @p opaque_free is not
 * called. @p name is copied and shows in errors and descriptions.
 */
KS_EXPORT ks_serde_t *ks_serde_new(const char *name,
                                   ks_serialize_fn *ser,
                                   ks_deserialize_fn *de,
                                   void *opaque,
                                   void (*opaque_free)(void *));

/** Adds a reference and returns @p serde: builder calls take ownership of
 *  one reference, so pass ks_serde_ref(s) to use one serde twice. */
KS_EXPORT ks_serde_t *ks_serde_ref(ks_serde_t *serde);
/** Drops a reference. The built-in serdes are static and never freed. */
KS_EXPORT void ks_serde_destroy(ks_serde_t *serde);
/** Returns a borrowed pointer, valid while the serde lives. */
KS_EXPORT const char *ks_serde_name(const ks_serde_t *serde);

/** Serializes @p obj; a NULL @p obj appends nothing and returns KS_OK (the
 *  caller tracks null-ness). */
KS_EXPORT ks_err_t ks_serde_serialize(const ks_serde_t *serde,
                                      const void *obj,
                                      ks_buf_t *out,
                                      char *errstr,
                                      size_t errstr_size);
/** Deserializes; NULL @p data gives a NULL object. */
KS_EXPORT ks_err_t ks_serde_deserialize(const ks_serde_t *serde,
                                        ks_arena_t *arena,
                                        const void *data,
                                        size_t len,
                                        const void **obj_out,
                                        char *errstr,
                                        size_t errstr_size);

KS_EXPORT ks_serde_t *ks_serde_bytes(void);
KS_EXPORT ks_serde_t *ks_serde_string(void);
KS_EXPORT ks_serde_t *ks_serde_int64(void);
KS_EXPORT ks_serde_t *ks_serde_double(void);
KS_EXPORT ks_serde_t *ks_serde_json(void);

#ifdef __cplusplus
}
#endif
#endif
