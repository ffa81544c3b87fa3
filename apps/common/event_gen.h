/**
 * @file event_gen.h
 * @brief A deterministic generator of `user-events`: the same seed and
 *        settings give the same events, byte for byte, on every machine.
 *
 * The mix is meant to look like a web shop's click stream: page views and
 * button clicks ~70%, purchases 7% and add-to-cart 8% (with an amount), a few
 * form submits, searches, logins and logouts; users are skewed (a few users
 * make most events); each user keeps a session (and device) until 30 minutes
 * of inactivity, a logout, or a login; timestamps advance by 0..200 ms per
 * event.
 *
 * Rules of use: a generator is used by one thread at a time. Strings in the
 * events it returns are borrowed from it (or static), valid until its next
 * call or its destruction.
 */
#ifndef KS_APPS_EVENT_GEN_H
#define KS_APPS_EVENT_GEN_H

#include "user_event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct event_gen_s event_gen_t;

/**
 * Returns a new generator; free with event_gen_destroy(). Its clock starts at
 * @p start_ms; @p users (>= 1) distinct user ids are drawn from.
 * @returns NULL if @p users < 1, @p start_ms < 0, or on OOM.
 */
event_gen_t *event_gen_new(uint64_t seed, int64_t start_ms, int users);
void event_gen_destroy(event_gen_t *g);

/**
 * Makes a fraction @p ratio (0..1) of events late: their timestamp is up to
 * @p max_ms behind the generator's clock (never below 0), while the clock
 * itself keeps advancing. Off (0) by default.
 */
void event_gen_set_disorder(event_gen_t *g, double ratio, int64_t max_ms);

/**
 * Makes a fraction @p ratio (0..1) of the records from event_gen_next_raw()
 * bad: malformed JSON (truncated, trailing garbage, a bad escape, invalid
 * UTF-8, an array at the top level) or a schema violation (no event_id, an
 * empty event_type, a boolean timestamp, a negative amount). Each bad record
 * is one that user_event_decode() rejects. Off (0) by default.
 */
void event_gen_set_bad_ratio(event_gen_t *g, double ratio);

/** Settings beyond the default stream (all off/0 by default, which keeps
 *  the stream of earlier releases byte for byte). */
typedef struct event_gen_opts_s {
        /** The ten event types of the analytics apps: page_view 38,
         *  button_click 28, form_submit 4, purchase 7, add_to_cart 8,
         *  remove_from_cart 3, search 6, login 2, logout 2, signup 2 (per
         *  100), and a data.browser per session. Bad records then also
         *  include ones user_event_decode() accepts but the analytics
         *  validation rejects: an unknown event type, a purchase without an
         *  amount, a purchase whose currency is not 3 letters. */
        bool all_types;
        /** > 0: event timestamps advance by exactly this many ms (before
         *  disorder); 0: by 0..200 ms at random. */
        int64_t time_step_ms;
        /** Bad records stay valid UTF-8 (a raw control character in a
         *  string instead of an invalid byte), so that they fit in a JSON
         *  lines dump such as kcat -J's. */
        bool text_only;
        /** > 0: users are drawn from a Zipf distribution of this exponent
         *  (user_k with weight 1/k^s; 1.0 is the classic Zipf); 0: the
         *  default u^2 skew. */
        double zipf_s;
} event_gen_opts_t;

/** Applies @p opts (copied). Call before the first event.
 *  @returns KS_OK, or KS_ERR_NOMEM (the Zipf table). */
ks_err_t event_gen_set_opts(event_gen_t *g, const event_gen_opts_t *opts);

/** The timestamp of the latest event made (late ones included), for the
 *  Kafka record of a bad record whose own timestamp cannot be read. */
int64_t event_gen_last_timestamp_ms(const event_gen_t *g);

/** Fills @p ev_out with the next event; always a valid one. Its strings are
 *  borrowed from @p g, valid until the next call on @p g. */
void event_gen_next(event_gen_t *g, user_event_t *ev_out);

/**
 * Appends the next record, serialized, to @p out (it does not clear it). The
 * record is bad (see event_gen_set_bad_ratio()) when @p *is_bad is set to
 * true; @p is_bad may be NULL.
 * @returns KS_OK or KS_ERR_NOMEM.
 */
ks_err_t event_gen_next_raw(event_gen_t *g, ks_buf_t *out, bool *is_bad);

/** @returns the generator's clock: the timestamp of the latest in-order
 *  event (the start time before the first). */
int64_t event_gen_clock_ms(const event_gen_t *g);

#ifdef __cplusplus
}
#endif
#endif /* KS_APPS_EVENT_GEN_H */
