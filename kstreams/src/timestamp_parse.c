/* ISO-8601 parsing and formatting without locale or libc time zones. */
#include "kstreams/timestamp.h"

#include <stdio.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so that no call depends on TZ or timegm. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        const int64_t era  = (y >= 0 ? y : y - 399) / 400;
        const unsigned yoe = (unsigned)(y - era * 400);
        const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
        z += 719468;
        const int64_t era  = (z >= 0 ? z : z - 146096) / 146097;
        const unsigned doe = (unsigned)(z - era * 146097);
        const unsigned yoe =
                (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp  = (5 * doy + 2) / 153;
        *d                 = doy - (153 * mp + 2) / 5 + 1;
        *m                 = mp < 10 ? mp + 3 : mp - 9;
        *y                 = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, size_t len, size_t *pos, int n, int *out) {
        int v = 0;
        if (*pos + (size_t)n > len)
                return -1;
        for (int i = 0; i < n; i++) {
                char c = s[*pos + (size_t)i];
                if (c < '0' || c > '9')
                        return -1;
                v = v * 10 + (c - '0');
        }
        *pos += (size_t)n;
        *out = v;
        return 0;
}

static int expect(const char *s, size_t len, size_t *pos, char c) {
        if (*pos >= len || s[*pos] != c)
                return -1;
        (*pos)++;
        return 0;
}

ks_err_t ks_parse_iso8601(const char *s, size_t len, int64_t *ms_out) {
        static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30,
                                              31, 31, 30, 31, 30, 31};
        size_t pos                         = 0;
        /* Zeroed although every path sets them before use: gcc -O3 cannot
         * see through digits() and warns (an error under -Werror). */
        int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, ms = 0;

        if (digits(s, len, &pos, 4, &year) || expect(s, len, &pos, '-') ||
            digits(s, len, &pos, 2, &mon) || expect(s, len, &pos, '-') ||
            digits(s, len, &pos, 2, &day))
                return KS_ERR_TIMESTAMP;
        if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
                return KS_ERR_TIMESTAMP;
        pos++;
        if (digits(s, len, &pos, 2, &hour) || expect(s, len, &pos, ':') ||
            digits(s, len, &pos, 2, &min) || expect(s, len, &pos, ':') ||
            digits(s, len, &pos, 2, &sec))
                return KS_ERR_TIMESTAMP;
        if (mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] ||
            hour > 23 || min > 59 || sec > 60)
                return KS_ERR_TIMESTAMP;
        if (mon == 2 && day == 29 &&
            !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
                return KS_ERR_TIMESTAMP;
        if (pos < len && (s[pos] == '.' || s[pos] == ',')) {
                int n = 0;
                pos++;
                while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
                        if (n < 3)
                                ms = ms * 10 + (s[pos] - '0');
                        n++;
                        pos++;
                }
                if (n == 0)
                        return KS_ERR_TIMESTAMP;
                for (; n < 3; n++)
                        ms *= 10;
        }
        int64_t offset_min = 0;
        if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
                pos++;
        } else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
                int sign = s[pos] == '-' ? -1 : 1, oh, om = 0;
                pos++;
                if (digits(s, len, &pos, 2, &oh))
                        return KS_ERR_TIMESTAMP;
                if (pos < len && s[pos] == ':')
                        pos++;
                if (pos < len && digits(s, len, &pos, 2, &om))
                        return KS_ERR_TIMESTAMP;
                if (oh > 23 || om > 59)
                        return KS_ERR_TIMESTAMP;
                offset_min = sign * (oh * 60 + om);
        }
        if (pos != len)
                return KS_ERR_TIMESTAMP;
        int64_t days = days_from_civil(year, (unsigned)mon, (unsigned)day);
        int64_t secs =
                days * 86400 + hour * 3600 + min * 60 + sec - offset_min * 60;
        *ms_out = secs * 1000 + ms;
        return KS_OK;
}

void ks_format_iso8601(int64_t ms, char *out, size_t out_size) {
        int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
        int millis   = (int)(ms - secs * 1000);
        int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
        int64_t rem  = secs - days * 86400;
        int64_t y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        snprintf(out, out_size, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                 (long long)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
                 (int)(rem % 60), millis);
}
