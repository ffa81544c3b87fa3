/**
 * @file json.h
 * @brief The fast JSON decode path: parse a document and pick named fields
 *        out of it into C values, with no allocation per document.
 *
 * It is built on simdjson (Debian's libsimdjson-dev) behind a small C shim,
 * because the record decode path must reach millions of events per second
 * on one core and jansson's lexer does not (see bench/). jansson stays the
 * tool where a JSON DOM is the right thing (the JSON serde, output building).
 *
 * Rules of use:
 * - A ks_json_parser_t is used by one thread at a time; keep one per thread
 *   and reuse it: its buffers grow to the largest document seen.
 * - Strings and raw slices in ks_json_value_t are borrowed from the parser,
 *   valid until the next ks_json_extract() call on it or its destruction.
 * - The whole document must be valid JSON (one value, nothing after it but
 *   whitespace, UTF-8, every string, number and literal well-formed) or the
 *   call fails with KS_ERR_JSON; a malformed record never yields a
 *   half-filled result. The document is validated in full even where no
 *   requested field lies (simdjson's DOM parser, not On-Demand).
 * - Duplicate keys: the first occurrence wins, at every level.
 * - Numbers: an integer that fits int64_t is KS_JSON_INT; every other number
 *   (fractions, exponents, integers beyond int64_t of any size) is
 *   KS_JSON_DOUBLE. A number beyond the range of a double (1e400) and nesting
 *   deeper than 1024 levels are rejected with KS_ERR_JSON.
 * - No allocation per document once the parser is warm: the input is copied
 *   into a padded buffer the parser keeps (simdjson reads up to 64 bytes past
 *   the end of its input), and every buffer grows only to the largest
 *   document seen.
 */
#ifndef KSTREAMS_JSON_H
#define KSTREAMS_JSON_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ks_json_type_e {
        KS_JSON_ABSENT = 0, /**< the field is not in the document */
        KS_JSON_NULL,
        KS_JSON_BOOL,
        KS_JSON_INT,    /**< an integer that fits int64_t: u.i */
        KS_JSON_DOUBLE, /**< any other number: u.d */
        KS_JSON_STRING, /**< u.s: unescaped UTF-8, NUL-terminated (it may
                             also hold NULs of its own: use u.s.len) */
        KS_JSON_OBJECT, /**< u.s: the object as minified JSON text,
                             NUL-terminated. It is re-serialized, not a slice
                             of the input: whitespace is dropped and numbers
                             are written in shortest form (1.50e2 -> 150.0) */
        KS_JSON_ARRAY   /**< u.s: the array as minified JSON text, as for
                             KS_JSON_OBJECT */
} ks_json_type_t;

typedef struct ks_json_value_s {
        ks_json_type_t type;
        union {
                bool b;
                int64_t i;
                double d;
                struct {
                        const char *ptr;
                        size_t len;
                } s;
        } u;
} ks_json_value_t;

typedef struct ks_json_parser_s ks_json_parser_t;
/** A compiled list of field paths to extract. */
typedef struct ks_json_fields_s ks_json_fields_t;

/** Returns a new parser; free with ks_json_parser_destroy(). NULL on OOM.
 *  It allocates its buffers at the first document. */
KS_EXPORT ks_json_parser_t *ks_json_parser_new(void);
KS_EXPORT void ks_json_parser_destroy(ks_json_parser_t *parser);

/**
 * Compiles @p n field paths. A path names a member of the top-level object,
 * or of nested objects with dots: "timestamp", "data.amount" (so a member
 * whose name contains a dot cannot be reached). A path may be both a value
 * and a prefix of others ("data" and "data.amount"); a repeated path gets
 * the same value in each of its slots. Copies the paths; the caller keeps
 * ownership. A compiled object is read-only and may be shared by threads.
 * @returns a new object; free with ks_json_fields_destroy(). NULL with
 *          @p errstr set on an empty path or an empty member name ("a..b").
 */
KS_EXPORT ks_json_fields_t *ks_json_fields_new(const char *const *paths,
                                               size_t n,
                                               char *errstr,
                                               size_t errstr_size);
KS_EXPORT void ks_json_fields_destroy(ks_json_fields_t *fields);
KS_EXPORT size_t ks_json_fields_count(const ks_json_fields_t *fields);

/**
 * Parses @p data and fills @p out[i] for the i-th path of @p fields.
 * A field that is absent, or whose parent is not an object, is
 * KS_JSON_ABSENT. The top-level value must be an object.
 *
 * Strings and object/array texts in @p out are borrowed pointers, valid
 * until the next ks_json_extract() on @p parser or its destruction.
 *
 * @returns KS_OK, or KS_ERR_JSON with @p errstr saying what is wrong, named
 *          as simdjson names it ("json: TAPE_ERROR: The JSON document has an
 *          improper structure: ..."; "json: the top-level value is not an
 *          object"), KS_ERR_NOMEM, or KS_ERR_INVALID_ARG for NULL arguments.
 *          On KS_ERR_JSON and KS_ERR_NOMEM every @p out[i] is
 *          KS_JSON_ABSENT: nothing of a bad document leaks out.
 */
KS_EXPORT ks_err_t ks_json_extract(ks_json_parser_t *parser,
                                   const ks_json_fields_t *fields,
                                   const void *data,
                                   size_t len,
                                   ks_json_value_t *out,
                                   char *errstr,
                                   size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* KSTREAMS_JSON_H */
