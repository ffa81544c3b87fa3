/**
 * @file user_event.h
 * @brief The `user-events` record of the example applications: its C form,
 *        a decoder on the fast JSON path (kstreams/json.h) and an encoder.
 *
 * An event on the wire:
 * @code
 * {"event_id":"0b6f9a8e-...","user_id":"user_123","event_type":"purchase",
 *  "timestamp":"2025-12-12T10:30:00.000Z","version":"1.0",
 *  "data":{"session_id":"session_789","page":"/product/42","amount":99.99,
 *          "currency":"USD","device":"mobile"}}
 * @endcode
 *
 * Rules of use:
 * - A user_event_decoder_t is used by one thread at a time (it owns a
 *   ks_json_parser_t); keep one per thread.
 * - Strings in a decoded user_event_t are borrowed from the decoder, valid
 *   until its next user_event_decode() call or its destruction.
 */
#ifndef KS_APPS_USER_EVENT_H
#define KS_APPS_USER_EVENT_H

#include <kstreams/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One user event. Optional strings are NULL when absent (or JSON null). */
typedef struct user_event_s {
        const char *event_id;   /**< required, non-empty */
        const char *user_id;    /**< required, non-empty */
        const char *event_type; /**< required, non-empty: page_view,
                                     button_click, form_submit, purchase,
                                     add_to_cart, remove_from_cart, search,
                                     login, logout, signup (others are
                                     accepted) */
        const char *session_id; /**< data.session_id */
        const char *page;       /**< data.page */
        const char *currency;   /**< data.currency */
        const char *device;     /**< data.device */
        const char *browser;    /**< data.browser */
        const char *version;
        int64_t timestamp_ms; /**< epoch milliseconds, required */
        double amount;        /**< data.amount, valid when has_amount */
        bool has_amount;
} user_event_t;

typedef struct user_event_decoder_s user_event_decoder_t;

/** Returns a new decoder; free with user_event_decoder_destroy(). NULL on
 *  OOM. */
user_event_decoder_t *user_event_decoder_new(void);
void user_event_decoder_destroy(user_event_decoder_t *d);

/**
 * Decodes one serialized event into @p out, with no heap allocation once the
 * decoder has seen a document as large.
 *
 * Schema: event_id, user_id and event_type are non-empty strings; timestamp
 * is an ISO-8601 string (ks_parse_iso8601()) or an integer of epoch
 * milliseconds, not before 1970 (Kafka has no negative timestamps) nor
 * after 9999 (KS_TIMESTAMP_MAX);
 * data.amount, if present and not null, is a number >= 0; the other fields,
 * if present, are strings or null. A data member that is not an object counts
 * as absent. Unknown members are ignored; for duplicate keys the first wins.
 *
 * Returns borrowed pointers in @p out, valid until the next call on @p d or
 * its destruction.
 * @returns KS_OK; KS_ERR_JSON for malformed JSON (or a top level that is not
 *          an object); KS_ERR_SERDE for a schema violation, with @p errstr
 *          naming the field ("user_event: missing field event_id"). On error
 *          @p out is zeroed: all strings NULL.
 */
ks_err_t user_event_decode(user_event_decoder_t *d,
                           const void *data,
                           size_t len,
                           user_event_t *out,
                           char *errstr,
                           size_t errstr_size);

/**
 * Appends the JSON form of @p ev to @p out (it does not clear it): the
 * timestamp as "YYYY-MM-DDTHH:MM:SS.mmmZ", data.amount only when has_amount,
 * and every NULL string left out. The required fields are not checked, so an
 * event without event_id encodes to a record that user_event_decode()
 * rejects (the generator makes bad records that way). Strings must be UTF-8;
 * they are escaped as JSON needs. Copies what it reads; the caller keeps
 * ownership of @p ev.
 * @returns KS_OK, KS_ERR_NOMEM, or KS_ERR_INVALID_ARG if @p ev->amount is
 *          not finite.
 */
ks_err_t user_event_encode(const user_event_t *ev, ks_buf_t *out);

#ifdef __cplusplus
}
#endif
#endif /* KS_APPS_USER_EVENT_H */
