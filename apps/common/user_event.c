/* The user-events schema: decode through the fast JSON path, encode by
 * hand into a reused buffer. */
#include "user_event.h"

#include <kstreams/json.h>
#include <kstreams/timestamp.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Listed in the order producers write them: the JSON walk tries the next
 * expected member first. */
enum {
        F_EVENT_ID,
        F_USER_ID,
        F_EVENT_TYPE,
        F_TIMESTAMP,
        F_VERSION,
        F_SESSION_ID,
        F_PAGE,
        F_AMOUNT,
        F_CURRENCY,
        F_DEVICE,
        F_BROWSER,
        F__COUNT
};

static const char *const field_paths[F__COUNT] = {
        [F_EVENT_ID] = "event_id",      [F_USER_ID] = "user_id",
        [F_EVENT_TYPE] = "event_type",  [F_TIMESTAMP] = "timestamp",
        [F_VERSION] = "version",        [F_SESSION_ID] = "data.session_id",
        [F_PAGE] = "data.page",         [F_AMOUNT] = "data.amount",
        [F_CURRENCY] = "data.currency", [F_DEVICE] = "data.device",
        [F_BROWSER] = "data.browser",
};

struct user_event_decoder_s {
        ks_json_parser_t *parser;
        ks_json_fields_t *fields;
        ks_json_value_t values[F__COUNT];
        /* The last "YYYY-MM-DD" seen and its epoch ms at midnight UTC: the
         * events of a stream nearly all share a date. */
        char date[10];
        int64_t date_ms;
        bool has_date;
};

user_event_decoder_t *user_event_decoder_new(void) {
        user_event_decoder_t *d = calloc(1, sizeof(*d));
        char errstr[128];
        if (!d)
                return NULL;
        d->parser = ks_json_parser_new();
        d->fields = ks_json_fields_new(field_paths, F__COUNT, errstr,
                                       sizeof(errstr));
        if (!d->parser || !d->fields) {
                user_event_decoder_destroy(d);
                return NULL;
        }
        return d;
}

void user_event_decoder_destroy(user_event_decoder_t *d) {
        if (!d)
                return;
        ks_json_fields_destroy(d->fields);
        ks_json_parser_destroy(d->parser);
        free(d);
}

static ks_err_t schema_error(char *errstr,
                             size_t errstr_size,
                             const char *fmt,
                             const char *field) {
        if (errstr && errstr_size)
                snprintf(errstr, errstr_size, fmt, field);
        return KS_ERR_SERDE;
}

static ks_err_t required_string(const ks_json_value_t *v,
                                const char *name,
                                const char **dst,
                                char *errstr,
                                size_t errstr_size) {
        if (v->type == KS_JSON_ABSENT)
                return schema_error(errstr, errstr_size,
                                    "user_event: missing field %s", name);
        if (v->type != KS_JSON_STRING || v->u.s.len == 0)
                return schema_error(errstr, errstr_size,
                                    "user_event: field %s must be a "
                                    "non-empty string",
                                    name);
        *dst = v->u.s.ptr;
        return KS_OK;
}

static ks_err_t optional_string(const ks_json_value_t *v,
                                const char *name,
                                const char **dst,
                                char *errstr,
                                size_t errstr_size) {
        if (v->type == KS_JSON_ABSENT || v->type == KS_JSON_NULL)
                return KS_OK;
        if (v->type != KS_JSON_STRING)
                return schema_error(errstr, errstr_size,
                                    "user_event: field %s must be a string",
                                    name);
        *dst = v->u.s.ptr;
        return KS_OK;
}

/* The first 10 bytes of @p a and @p b are equal (no call to memcmp). */
static bool same_date(const char *a, const char *b) {
        uint64_t x, y;
        uint16_t u, w;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        memcpy(&u, a + 8, 2);
        memcpy(&w, b + 8, 2);
        return x == y && u == w;
}

static bool two_digits(const char *s, int max, int *out) {
        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
                return false;
        *out = (s[0] - '0') * 10 + (s[1] - '0');
        return *out <= max;
}

/* The canonical form "YYYY-MM-DDTHH:MM:SS.mmmZ", which every producer of
 * ours writes, in a few nanoseconds: the date is looked up in a one-entry
 * cache, filled by ks_parse_iso8601() on a miss, so that date rules live in
 * one place. ks_parse_iso8601() was ~10% of the decode time otherwise.
 * @returns false when @p s is not in that form: use ks_parse_iso8601(). */
static bool parse_canonical_time(user_event_decoder_t *d,
                                 const char *s,
                                 size_t len,
                                 int64_t *ms,
                                 bool *valid) {
        int hour, min, sec, milli0, milli1;
        if (len != 24 || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
            s[19] != '.' || s[23] != 'Z' || s[22] < '0' || s[22] > '9')
                return false;
        *valid = two_digits(s + 11, 23, &hour) &&
                 two_digits(s + 14, 59, &min) && two_digits(s + 17, 60, &sec) &&
                 two_digits(s + 20, 99, &milli0);
        if (!*valid)
                return true;
        milli1 = s[22] - '0';
        if (!d->has_date || !same_date(s, d->date)) {
                char midnight[] = "YYYY-MM-DDT00:00:00Z";
                memcpy(midnight, s, sizeof(d->date));
                d->has_date = false;
                if (ks_parse_iso8601(midnight, sizeof(midnight) - 1,
                                     &d->date_ms)) {
                        *valid = false;
                        return true;
                }
                memcpy(d->date, s, sizeof(d->date));
                d->has_date = true;
        }
        *ms = d->date_ms + hour * INT64_C(3600000) + min * INT64_C(60000) +
              sec * INT64_C(1000) + milli0 * 10 + milli1;
        return true;
}

static ks_err_t decode_timestamp(user_event_decoder_t *d,
                                 const ks_json_value_t *v,
                                 int64_t *ms,
                                 char *errstr,
                                 size_t errstr_size) {
        bool valid;
        switch (v->type) {
        case KS_JSON_ABSENT:
                return schema_error(errstr, errstr_size,
                                    "user_event: missing field %s",
                                    "timestamp");
        case KS_JSON_STRING:
                if (!parse_canonical_time(d, v->u.s.ptr, v->u.s.len, ms,
                                          &valid))
                        valid = !ks_parse_iso8601(v->u.s.ptr, v->u.s.len, ms);
                if (!valid)
                        return schema_error(errstr, errstr_size,
                                            "user_event: field %s is not an "
                                            "ISO-8601 date-time",
                                            "timestamp");
                break;
        case KS_JSON_INT:
                *ms = v->u.i;
                break;
        default:
                return schema_error(errstr, errstr_size,
                                    "user_event: field %s must be an "
                                    "ISO-8601 string or epoch milliseconds",
                                    "timestamp");
        }
        if (*ms < 0)
                return schema_error(errstr, errstr_size,
                                    "user_event: field %s is before 1970",
                                    "timestamp");
        /* Later ones have no four-digit-year ISO form, so the event could
         * not be written back (found by tests/fuzz/fuzz_user_event.c). */
        if (*ms > KS_TIMESTAMP_MAX)
                return schema_error(errstr, errstr_size,
                                    "user_event: field %s is after year 9999",
                                    "timestamp");
        return KS_OK;
}

static ks_err_t decode_amount(const ks_json_value_t *v,
                              user_event_t *ev,
                              char *errstr,
                              size_t errstr_size) {
        switch (v->type) {
        case KS_JSON_ABSENT:
        case KS_JSON_NULL:
                return KS_OK;
        case KS_JSON_INT:
                ev->amount = (double)v->u.i;
                break;
        case KS_JSON_DOUBLE:
                ev->amount = v->u.d;
                break;
        default:
                return schema_error(errstr, errstr_size,
                                    "user_event: field %s must be a number",
                                    "data.amount");
        }
        if (!(ev->amount >= 0))
                return schema_error(errstr, errstr_size,
                                    "user_event: field %s must be >= 0",
                                    "data.amount");
        ev->has_amount = true;
        return KS_OK;
}

static ks_err_t decode_fields(user_event_decoder_t *d,
                              user_event_t *out,
                              char *errstr,
                              size_t errstr_size) {
        const ks_json_value_t *v = d->values;
        ks_err_t err;

        if ((err = required_string(&v[F_EVENT_ID], "event_id", &out->event_id,
                                   errstr, errstr_size)) ||
            (err = required_string(&v[F_USER_ID], "user_id", &out->user_id,
                                   errstr, errstr_size)) ||
            (err = required_string(&v[F_EVENT_TYPE], "event_type",
                                   &out->event_type, errstr, errstr_size)) ||
            (err = optional_string(&v[F_VERSION], "version", &out->version,
                                   errstr, errstr_size)) ||
            (err = optional_string(&v[F_SESSION_ID], "data.session_id",
                                   &out->session_id, errstr, errstr_size)) ||
            (err = optional_string(&v[F_PAGE], "data.page", &out->page, errstr,
                                   errstr_size)) ||
            (err = optional_string(&v[F_CURRENCY], "data.currency",
                                   &out->currency, errstr, errstr_size)) ||
            (err = optional_string(&v[F_DEVICE], "data.device", &out->device,
                                   errstr, errstr_size)) ||
            (err = optional_string(&v[F_BROWSER], "data.browser", &out->browser,
                                   errstr, errstr_size)) ||
            (err = decode_timestamp(d, &v[F_TIMESTAMP], &out->timestamp_ms,
                                    errstr, errstr_size)))
                return err;
        return decode_amount(&v[F_AMOUNT], out, errstr, errstr_size);
}

ks_err_t user_event_decode(user_event_decoder_t *d,
                           const void *data,
                           size_t len,
                           user_event_t *out,
                           char *errstr,
                           size_t errstr_size) {
        ks_err_t err;

        memset(out, 0, sizeof(*out));
        err = ks_json_extract(d->parser, d->fields, data, len, d->values,
                              errstr, errstr_size);
        if (!err)
                err = decode_fields(d, out, errstr, errstr_size);
        if (err)
                memset(out, 0, sizeof(*out));
        return err;
}

/* Appends @p s as a JSON string literal, copying runs that need no escape
 * in one go. */
static ks_err_t append_json_string(ks_buf_t *out, const char *s) {
        static const char hex[] = "0123456789abcdef";
        const char *run         = s;
        ks_err_t err            = ks_buf_append(out, "\"", 1);

        for (; !err && *s; s++) {
                unsigned char c = (unsigned char)*s;
                char esc[6]     = {'\\', 0, 0, 0, 0, 0};
                size_t esc_len  = 2;
                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                switch (c) {
                case '"':
                case '\\':
                        esc[1] = (char)c;
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                default:
                        memcpy(esc + 1, "u00", 3);
                        esc[4]  = hex[c >> 4];
                        esc[5]  = hex[c & 15];
                        esc_len = 6;
                }
                err = ks_buf_append(out, run, (size_t)(s - run));
                if (!err)
                        err = ks_buf_append(out, esc, esc_len);
                run = s + 1;
        }
        if (!err)
                err = ks_buf_append(out, run, (size_t)(s - run));
        if (!err)
                err = ks_buf_append(out, "\"", 1);
        return err;
}

/* Appends ,"name":"value" (without the comma for the first member). */
static ks_err_t append_member(ks_buf_t *out,
                              bool *first,
                              const char *name,
                              const char *value) {
        ks_err_t err;
        if (!value)
                return KS_OK;
        err    = *first ? ks_buf_append(out, "\"", 1)
                        : ks_buf_append(out, ",\"", 2);
        *first = false;
        if (!err)
                err = ks_buf_append(out, name, strlen(name));
        if (!err)
                err = ks_buf_append(out, "\":", 2);
        return err ? err : append_json_string(out, value);
}

/* The shortest "%.*g" that reads back as the same double. */
static ks_err_t append_double(ks_buf_t *out, double d) {
        char num[40];
        /* Fast path, same text: an amount with at most two decimals, which
         * "%.15g" prints as its exact decimal without trailing zeros. */
        if (d >= 0 && d < 1e12) {
                long long c = llround(d * 100);
                if ((double)c / 100.0 == d) {
                        int n = snprintf(num, sizeof(num), "%lld", c / 100);
                        if (c % 100) {
                                num[n++] = '.';
                                num[n++] = (char)('0' + c % 100 / 10);
                                if (c % 10)
                                        num[n++] = (char)('0' + c % 10);
                        }
                        return ks_buf_append(out, num, (size_t)n);
                }
        }
        snprintf(num, sizeof(num), "%.15g", d);
        if (strtod(num, NULL) != d)
                snprintf(num, sizeof(num), "%.17g", d);
        return ks_buf_append(out, num, strlen(num));
}

/* ks_format_iso8601()'s text, with the date part formatted once per day
 * per thread: printf was a large part of the encoder's cost. */
static void format_timestamp(int64_t ms, char *out, size_t out_size) {
        static __thread int64_t cached_day = -1;
        static __thread char cached_date[12];
        if (ms < 0 || ms >= INT64_C(253402300800000)) { /* before 1970, >9999 */
                ks_format_iso8601(ms, out, out_size);
                return;
        }
        int64_t day = ms / 86400000;
        if (day != cached_day) {
                char full[32];
                ks_format_iso8601(day * 86400000, full, sizeof(full));
                memcpy(cached_date, full, 11); /* "YYYY-MM-DDT" */
                cached_day = day;
        }
        int rem = (int)(ms - day * 86400000);
        int h = rem / 3600000, m = rem / 60000 % 60, sec = rem / 1000 % 60,
            milli = rem % 1000;
        char *p   = out;
        memcpy(p, cached_date, 11);
        p += 11;
        *p++ = (char)('0' + h / 10);
        *p++ = (char)('0' + h % 10);
        *p++ = ':';
        *p++ = (char)('0' + m / 10);
        *p++ = (char)('0' + m % 10);
        *p++ = ':';
        *p++ = (char)('0' + sec / 10);
        *p++ = (char)('0' + sec % 10);
        *p++ = '.';
        *p++ = (char)('0' + milli / 100);
        *p++ = (char)('0' + milli / 10 % 10);
        *p++ = (char)('0' + milli % 10);
        *p++ = 'Z';
        *p   = '\0';
}

ks_err_t user_event_encode(const user_event_t *ev, ks_buf_t *out) {
        char ts[32];
        bool first = true, data_first = true;
        ks_err_t err;

        if (ev->has_amount && !isfinite(ev->amount))
                return KS_ERR_INVALID_ARG;
        format_timestamp(ev->timestamp_ms, ts, sizeof(ts));
        /* One reservation for a typical event: fewer regrowth checks. */
        if ((err = ks_buf_reserve(out, 512)) ||
            (err = ks_buf_append(out, "{", 1)) ||
            (err = append_member(out, &first, "event_id", ev->event_id)) ||
            (err = append_member(out, &first, "user_id", ev->user_id)) ||
            (err = append_member(out, &first, "event_type", ev->event_type)) ||
            (err = append_member(out, &first, "timestamp", ts)) ||
            (err = append_member(out, &first, "version", ev->version)))
                return err;
        if (!ev->session_id && !ev->page && !ev->has_amount && !ev->currency &&
            !ev->device && !ev->browser)
                return ks_buf_append(out, "}", 1);

        if ((err = ks_buf_append(out, ",\"data\":{", 9)) ||
            (err = append_member(out, &data_first, "session_id",
                                 ev->session_id)) ||
            (err = append_member(out, &data_first, "page", ev->page)))
                return err;
        if (ev->has_amount) {
                if ((err = ks_buf_appendf(
                             out, "%s\"amount\":", data_first ? "" : ",")) ||
                    (err = append_double(out, ev->amount)))
                        return err;
                data_first = false;
        }
        if ((err = append_member(out, &data_first, "currency", ev->currency)) ||
            (err = append_member(out, &data_first, "device", ev->device)) ||
            (err = append_member(out, &data_first, "browser", ev->browser)))
                return err;
        return ks_buf_append(out, "}}", 2);
}
