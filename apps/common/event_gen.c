/* A deterministic user-events generator. Every choice comes from one
 * splitmix64 stream, never from rand() or the clock, so that tests and
 * benchmarks can regenerate the same bytes from a seed. */
#include "event_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_GAP_MS (30 * 60 * 1000)

/* Per-user state, so that sessions and devices persist across events. */
typedef struct gen_user_s {
        int64_t last_ms; /* -1: never seen */
        uint64_t session;
        uint8_t device;
        uint8_t browser;
} gen_user_t;

struct event_gen_s {
        uint64_t state;
        int64_t clock_ms;
        int users;
        gen_user_t *user;
        uint64_t next_session;
        double disorder_ratio;
        int64_t disorder_max_ms;
        double bad_ratio;
        event_gen_opts_t opts;
        double *zipf_cdf; /* users entries, the last 1.0; NULL: u^2 */
        int64_t last_ts;
        ks_buf_t scratch; /* a record being made bad */
        char event_id[40];
        char user_id[24];
        char session_id[32];
        char page[48];
};

/* The types by weight (per 100): page views and clicks ~70%. */
static const struct {
        const char *name;
        int weight;
} event_types[] = {
        {"page_view", 40}, {"button_click", 30}, {"form_submit", 5},
        {"purchase", 7},   {"add_to_cart", 8},   {"search", 6},
        {"login", 2},      {"logout", 2},
};

/* The analytics apps' ten types (event_gen_opts_t.all_types). */
static const struct {
        const char *name;
        int weight;
} all_event_types[] = {
        {"page_view", 38}, {"button_click", 28}, {"form_submit", 4},
        {"purchase", 7},   {"add_to_cart", 8},   {"remove_from_cart", 3},
        {"search", 6},     {"login", 2},         {"logout", 2},
        {"signup", 2},
};

static const char *const browsers[] = {"chrome", "safari", "firefox", "edge"};
static const char *const devices[]  = {"mobile", "desktop", "tablet"};
static const char *const pages[]    = {"/",        "/home",   "/cart",
                                       "/account", "/offers", "/help"};
static const char *const search_terms[] = {"shoes",      "laptop", "coffee",
                                           "headphones", "gift",   "lamp"};

static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

/* Uniform in [0, n); the modulo bias is irrelevant for test data. */
static uint64_t below(event_gen_t *g, uint64_t n) {
        return splitmix64(&g->state) % n;
}

/* Uniform in [0, 1) with 53 random bits. */
static double unit(event_gen_t *g) {
        return (double)(splitmix64(&g->state) >> 11) * 0x1.0p-53;
}

event_gen_t *event_gen_new(uint64_t seed, int64_t start_ms, int users) {
        event_gen_t *g;
        if (users < 1 || start_ms < 0)
                return NULL;
        g = calloc(1, sizeof(*g));
        if (!g)
                return NULL;
        g->user = calloc((size_t)users, sizeof(*g->user));
        if (!g->user) {
                free(g);
                return NULL;
        }
        for (int i = 0; i < users; i++)
                g->user[i].last_ms = -1;
        g->state        = seed;
        g->clock_ms     = start_ms;
        g->users        = users;
        g->next_session = 1;
        return g;
}

void event_gen_destroy(event_gen_t *g) {
        if (!g)
                return;
        ks_buf_free(&g->scratch);
        free(g->zipf_cdf);
        free(g->user);
        free(g);
}

void event_gen_set_disorder(event_gen_t *g, double ratio, int64_t max_ms) {
        g->disorder_ratio  = ratio;
        g->disorder_max_ms = max_ms > 0 ? max_ms : 0;
}

void event_gen_set_bad_ratio(event_gen_t *g, double ratio) {
        g->bad_ratio = ratio;
}

int64_t event_gen_clock_ms(const event_gen_t *g) {
        return g->clock_ms;
}

ks_err_t event_gen_set_opts(event_gen_t *g, const event_gen_opts_t *opts) {
        g->opts = *opts;
        free(g->zipf_cdf);
        g->zipf_cdf = NULL;
        if (opts->zipf_s <= 0)
                return KS_OK;
        g->zipf_cdf = malloc((size_t)g->users * sizeof(*g->zipf_cdf));
        if (!g->zipf_cdf)
                return KS_ERR_NOMEM;
        double sum = 0;
        for (int k = 0; k < g->users; k++)
                g->zipf_cdf[k] = (sum += pow(k + 1, -opts->zipf_s));
        for (int k = 0; k < g->users; k++)
                g->zipf_cdf[k] /= sum;
        g->zipf_cdf[g->users - 1] = 1.0;
        return KS_OK;
}

/* The user index for @p u in [0, 1): u^2 by default, else the first index
 * whose Zipf CDF exceeds u (binary search). */
static int pick_user(const event_gen_t *g, double u) {
        if (!g->zipf_cdf)
                return (int)(u * u * g->users);
        int lo = 0, hi = g->users - 1;
        while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (g->zipf_cdf[mid] > u)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return lo;
}

int64_t event_gen_last_timestamp_ms(const event_gen_t *g) {
        return g->last_ts;
}

static const char *pick_type(event_gen_t *g) {
        int r = (int)below(g, 100);
        if (g->opts.all_types) {
                for (size_t i = 0;
                     i < sizeof(all_event_types) / sizeof(all_event_types[0]);
                     i++) {
                        if (r < all_event_types[i].weight)
                                return all_event_types[i].name;
                        r -= all_event_types[i].weight;
                }
        }
        for (size_t i = 0; i < sizeof(event_types) / sizeof(event_types[0]);
             i++) {
                if (r < event_types[i].weight)
                        return event_types[i].name;
                r -= event_types[i].weight;
        }
        return event_types[0].name;
}

/* @p digits lowercase hex digits of @p v, most significant first. */
static char *put_hex(char *p, uint64_t v, int digits) {
        static const char hex[] = "0123456789abcdef";
        for (int i = digits - 1; i >= 0; i--)
                *p++ = hex[(v >> (4 * i)) & 15];
        return p;
}

/* Decimal digits of @p v, then a NUL. @returns the end (the NUL). */
static char *put_dec(char *p, uint64_t v) {
        char tmp[20];
        int n = 0;
        do
                tmp[n++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        while (n > 0)
                *p++ = tmp[--n];
        *p = '\0';
        return p;
}

/* The same text as "%08x-%04x-%04x-%04x-%012llx" of the two halves, by
 * hand: printf was the generator's largest cost. */
static void make_uuid(event_gen_t *g, char *out) {
        uint64_t hi = splitmix64(&g->state), lo = splitmix64(&g->state);
        hi      = (hi & ~0xF000ull) | 0x4000ull;       /* version 4 */
        lo      = (lo & ~(3ull << 62)) | (2ull << 62); /* RFC 4122 variant */
        char *p = put_hex(out, hi >> 32, 8);
        *p++    = '-';
        p       = put_hex(p, hi >> 16, 4);
        *p++    = '-';
        p       = put_hex(p, hi, 4);
        *p++    = '-';
        p       = put_hex(p, lo >> 48, 4);
        *p++    = '-';
        p       = put_hex(p, lo, 12);
        *p      = '\0';
}

static void make_page(event_gen_t *g, const char *type) {
        if (!strcmp(type, "purchase") || !strcmp(type, "form_submit"))
                snprintf(g->page, sizeof(g->page), "/checkout");
        else if (!strcmp(type, "search"))
                snprintf(g->page, sizeof(g->page), "/search?q=%s",
                         search_terms[below(g, 6)]);
        else if (!strcmp(type, "login") || !strcmp(type, "logout"))
                snprintf(g->page, sizeof(g->page), "/%s", type);
        else if (!strcmp(type, "add_to_cart") || below(g, 2))
                snprintf(g->page, sizeof(g->page), "/product/%d",
                         1 + (int)below(g, 500));
        else if (below(g, 3))
                snprintf(g->page, sizeof(g->page), "/category/%d",
                         1 + (int)below(g, 20));
        else
                snprintf(g->page, sizeof(g->page), "%s", pages[below(g, 6)]);
}

void event_gen_next(event_gen_t *g, user_event_t *ev) {
        memset(ev, 0, sizeof(*ev));
        g->clock_ms += g->opts.time_step_ms > 0 ? g->opts.time_step_ms
                                                : (int64_t)below(g, 201);
        ev->timestamp_ms = g->clock_ms;
        if (g->disorder_ratio > 0 && unit(g) < g->disorder_ratio) {
                ev->timestamp_ms -=
                        (int64_t)below(g, (uint64_t)g->disorder_max_ms + 1);
                if (ev->timestamp_ms < 0)
                        ev->timestamp_ms = 0;
        }

        /* u^2 skews towards low indexes: a few users are very active. */
        double u         = unit(g);
        int index        = pick_user(g, u);
        gen_user_t *user = &g->user[index];
        ev->event_type   = pick_type(g);
        if (user->last_ms < 0 || g->clock_ms - user->last_ms > SESSION_GAP_MS ||
            !strcmp(ev->event_type, "login")) {
                user->session = g->next_session++;
                /* mobile 55%, desktop 35%, tablet 10% */
                int r        = (int)below(g, 100);
                user->device = r < 55 ? 0 : r < 90 ? 1 : 2;
                if (g->opts.all_types)
                        user->browser = (uint8_t)below(g, 4);
        }
        user->last_ms = g->clock_ms;

        make_uuid(g, g->event_id);
        memcpy(g->user_id, "user_", 5);
        put_dec(g->user_id + 5, (uint64_t)index + 1);
        memcpy(g->session_id, "session_", 8);
        put_dec(g->session_id + 8, user->session);
        make_page(g, ev->event_type);
        ev->event_id   = g->event_id;
        ev->user_id    = g->user_id;
        ev->session_id = g->session_id;
        ev->page       = g->page;
        ev->device     = devices[user->device];
        if (g->opts.all_types)
                ev->browser = browsers[user->browser];
        ev->version = "1.0";
        if (!strcmp(ev->event_type, "purchase") ||
            (!strcmp(ev->event_type, "add_to_cart") && below(g, 2))) {
                int r          = (int)below(g, 100);
                ev->has_amount = true;
                ev->amount     = (double)(99 + (int)below(g, 49901)) / 100.0;
                ev->currency   = r < 70 ? "USD" : r < 90 ? "EUR" : "GBP";
        }
        if (!strcmp(ev->event_type, "logout"))
                user->last_ms = -1; /* the next event opens a new session */
        g->last_ts = ev->timestamp_ms;
}

/* Overwrites the value of the first "name": member in @p b with @p value
 * (raw JSON text). The encoder writes no spaces, so a plain search works. */
static ks_err_t replace_member(ks_buf_t *b,
                               const char *name,
                               const char *value) {
        char key[40];
        int n          = snprintf(key, sizeof(key), "\"%s\":", name);
        const char *at = strstr(b->data, key);
        size_t start, end, vlen = strlen(value), tail;
        if (!at)
                return KS_OK;
        start = (size_t)(at - b->data) + (size_t)n;
        end   = start;
        if (b->data[end] == '"') {
                for (end++; b->data[end] != '"'; end++)
                        if (b->data[end] == '\\')
                                end++;
                end++;
        } else {
                while (end < b->len && b->data[end] != ',' &&
                       b->data[end] != '}')
                        end++;
        }
        tail = b->len - end;
        if (ks_buf_reserve(b, vlen))
                return KS_ERR_NOMEM;
        memmove(b->data + start + vlen, b->data + end, tail);
        memcpy(b->data + start, value, vlen);
        b->len          = start + vlen + tail;
        b->data[b->len] = '\0';
        return KS_OK;
}

ks_err_t event_gen_next_raw(event_gen_t *g, ks_buf_t *out, bool *is_bad) {
        user_event_t ev;
        ks_buf_t *b = &g->scratch;
        ks_err_t err;
        bool bad = g->bad_ratio > 0 && unit(g) < g->bad_ratio;

        event_gen_next(g, &ev);
        if (is_bad)
                *is_bad = bad;
        if (!bad)
                return user_event_encode(&ev, out);

        int kind = (int)below(g, g->opts.all_types ? 12 : 9);
        if (kind == 7 && g->opts.text_only)
                kind = 10; /* no invalid UTF-8 in a text dump */
        if (kind == 0)
                ev.event_id = NULL;
        else if (kind == 1)
                ev.event_type = "";
        else if (kind == 2) {
                ev.has_amount = true;
                ev.amount     = -1.5;
        } else if (kind == 9) {
                ev.event_type = "page_viewed"; /* not a known type */
        } else if (kind == 11) {
                /* A purchase without an amount, or with a bad currency. */
                ev.event_type = "purchase";
                ev.has_amount = below(g, 2) != 0;
                ev.amount     = 10.0;
                ev.currency   = ev.has_amount ? "US" : "EUR";
        }
        ks_buf_clear(b);
        if ((err = user_event_encode(&ev, b)))
                return err;
        switch (kind) {
        case 3:
                err = replace_member(b, "timestamp", "true");
                break;
        case 4: /* truncated: any strict prefix of an object is malformed */
                b->len = 1 + (size_t)below(g, b->len - 1);
                break;
        case 5:
                err = ks_buf_append(b, "x", 1);
                break;
        case 6:
                err = replace_member(b, "page", "\"/a\\qb\"");
                break;
        case 7:
                err = replace_member(b, "user_id", "\"user_\xff\"");
                break;
        case 10: /* a raw control character inside a string */
                err = replace_member(b, "user_id", "\"user_\t1\"");
                break;
        case 8: /* an array at the top level */
                err = ks_buf_append(out, "[", 1);
                if (!err)
                        err = ks_buf_append(b, "]", 1);
                break;
        }
        return err ? err : ks_buf_append(out, b->data, b->len);
}
