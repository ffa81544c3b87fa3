/**
 * @file timestamp.h
 * @brief Timestamp extractors and time parsing.
 *
 * Each record's timestamp comes from the source node's extractor: the Kafka
 * record timestamp by default, or a field of a JSON value. A record with no
 * valid timestamp goes to the deserialization-error handler.
 */
#ifndef KSTREAMS_TIMESTAMP_H
#define KSTREAMS_TIMESTAMP_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Parses an ISO-8601 / RFC 3339 date-time: "2025-12-12T10:30:00.000Z",
 * "2025-12-12T10:30:00+02:00", "2025-12-12 10:30:00Z", fractions of any
 * length (truncated to milliseconds). A missing zone means UTC.
 * @returns KS_OK and the epoch milliseconds in @p ms_out, or
 *          KS_ERR_TIMESTAMP.
 */
KS_EXPORT ks_err_t ks_parse_iso8601(const char *s, size_t len, int64_t *ms_out);

/** Formats @p ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into @p out (>= 25 bytes). */
KS_EXPORT void ks_format_iso8601(int64_t ms, char *out, size_t out_size);

/** The last millisecond of year 9999 (9999-12-31T23:59:59.999Z), the
 *  latest valid record timestamp: ISO-8601 has four-digit years, and it
 *  keeps window arithmetic (start + size) far from int64 overflow. */
#define KS_TIMESTAMP_MAX INT64_C(253402300799999)

typedef struct ks_timestamp_extractor_s ks_timestamp_extractor_t;

/** The record's own input information given to an extractor. */
typedef struct ks_consumed_s {
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp; /**< the Kafka record timestamp, -1 if none */
        ks_bytes_t key;    /**< serialized; data NULL for a null key */
        ks_bytes_t value;  /**< serialized; data NULL for a tombstone */
} ks_consumed_t;

/**
 * An extractor callback. @p key and @p value are the deserialized objects.
 * @p partition_time is the largest timestamp seen so far on this partition
 * (-1 if none). Return the timestamp in ms, or a negative value for "no
 * valid timestamp" (the record then goes to the deserialization handler,
 * as does one after KS_TIMESTAMP_MAX).
 */
typedef int64_t(ks_timestamp_extract_fn)(const ks_consumed_t *rec,
                                         const void *key,
                                         const void *value,
                                         int64_t partition_time,
                                         void *opaque);

/** Returns a new extractor; free with ks_timestamp_extractor_destroy().
 *  Takes ownership of @p opaque: @p opaque_free (may be NULL) frees it when
 *  the extractor is destroyed. */
KS_EXPORT ks_timestamp_extractor_t *ks_timestamp_extractor_new(
        ks_timestamp_extract_fn *fn,
        void *opaque,
        void (*opaque_free)(void *));

/** The Kafka record timestamp (the default). Returns a new object. */
KS_EXPORT ks_timestamp_extractor_t *ks_timestamp_extractor_record(void);

/**
 * Reads the named field (dotted path allowed) of a JSON value, as an
 * ISO-8601 string or a number of epoch milliseconds. It reads the record's
 * raw bytes with the fast JSON parser, so it works whatever the value serde.
 * Returns a new object, or NULL with @p errstr set for a bad path.
 */
KS_EXPORT ks_timestamp_extractor_t *ks_timestamp_extractor_json_field(
        const char *field,
        char *errstr,
        size_t errstr_size);

KS_EXPORT void ks_timestamp_extractor_destroy(ks_timestamp_extractor_t *ex);

#ifdef __cplusplus
}
#endif
#endif
