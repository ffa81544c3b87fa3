/**
 * @file serde_typed.h
 * @brief Serdes for C structs and composite keys: the fast paths for
 *        multi-field aggregates and keys made of several strings.
 *
 * A JSON aggregate costs a parse and a dump on every update; a struct
 * aggregate described by ks_serde_struct() costs a few byte swaps, and an
 * aggregator may update it in place (table.h says when). A tuple key
 * (ks_serde_tuple()) groups by several strings at once (page + country)
 * without formatting and splitting text by hand.
 *
 * Typed objects:
 * | serde               | object                                        |
 * |---------------------|-----------------------------------------------|
 * | ks_serde_struct()   | a pointer to the caller's struct type         |
 * | ks_serde_tuple()    | const ks_tuple_t *                            |
 */
#ifndef KSTREAMS_SERDE_TYPED_H
#define KSTREAMS_SERDE_TYPED_H

#include <stddef.h>

#include "serde.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The type of one struct member that ks_serde_struct() serializes. */
typedef enum ks_field_type_e {
        KS_FIELD_INT64,  /**< int64_t: 8 bytes big-endian */
        KS_FIELD_INT32,  /**< int32_t: 4 bytes big-endian */
        KS_FIELD_DOUBLE, /**< double: IEEE 754, 8 bytes big-endian */
} ks_field_type_t;

/** One serialized member: its type and its offset in the struct. */
typedef struct ks_struct_field_s {
        ks_field_type_t type;
        size_t offset;
} ks_struct_field_t;

/** A ks_struct_field_t for member @p member of struct type @p type. */
#define KS_STRUCT_FIELD(field_type, type, member)                              \
        { (field_type), offsetof(type, member) }

/**
 * @brief A serde for a fixed-layout C struct of numbers.
 *
 * The wire form is the listed members, in the order listed, each
 * big-endian (so a changelog written on one machine restores on any other),
 * and nothing else: a struct of n int64 members is 8n bytes. Deserializing
 * allocates a zeroed struct of @p struct_size bytes in the record's arena
 * and fills the listed members (members not listed stay 0); bytes of
 * another length are a KS_ERR_SERDE error naming the serde. Changing the
 * member list changes the format: give the store a new name (or reset the
 * application) when you do.
 *
 * Copies @p name and @p fields; the caller keeps ownership.
 * @returns a new serde holding one reference; free with ks_serde_destroy()
 *          (builder calls take the reference). NULL if @p field_cnt is 0,
 *          a member lies outside @p struct_size, or on OOM.
 */
KS_EXPORT ks_serde_t *ks_serde_struct(const char *name,
                                      size_t struct_size,
                                      const ks_struct_field_t *fields,
                                      size_t field_cnt);

/** The most items a tuple holds. */
#define KS_TUPLE_MAX_ITEMS 8

/** A composite key: @p count strings (UTF-8, NUL-terminated, never NULL). */
typedef struct ks_tuple_s {
        size_t count;
        const char *items[KS_TUPLE_MAX_ITEMS];
} ks_tuple_t;

/**
 * @brief A serde for composite keys of @p count strings.
 *
 * The wire form is each item's bytes followed by a 0 byte: byte order is
 * the tuples' order item by item (("a","z") < ("ab","a")), so range and
 * prefix scans of a store see keys grouped by their first items, and equal
 * tuples always partition alike. Deserializing points the items into the
 * serialized bytes (no copy); bytes with another number of items, or not
 * ending in 0, are a KS_ERR_SERDE error.
 * @returns a new serde holding one reference; free with ks_serde_destroy().
 *          NULL if @p count is 0 or above KS_TUPLE_MAX_ITEMS, or on OOM.
 */
KS_EXPORT ks_serde_t *ks_serde_tuple(size_t count);

/**
 * Makes a tuple of @p count items in @p arena, for a key selector to
 * return. The items are borrowed: they must live as long as the tuple (a
 * slice of the record's value, or arena strings).
 * @returns an arena-owned tuple, or NULL if @p count is 0 or above
 *          KS_TUPLE_MAX_ITEMS, an item is NULL, or the arena is exhausted.
 */
KS_EXPORT ks_tuple_t *ks_tuple_make(ks_arena_t *arena,
                                    size_t count,
                                    const char *const *items);

#ifdef __cplusplus
}
#endif
#endif /* KSTREAMS_SERDE_TYPED_H */
