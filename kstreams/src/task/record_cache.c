/* The record cache: a chained hash of entries threaded on a list in write
 * order. See record_cache.h. */
#include <stdlib.h>
#include <string.h>

#include "record_cache.h"

/* Bookkeeping per entry beyond its bytes, counted against the budget so
 * that many small keys cannot hide behind their payload size. */
#define ENTRY_OVERHEAD 64

struct ks_record_cache_s {
        ks_cache_entry_t **buckets;
        size_t bucket_cnt; /* a power of two */
        size_t cnt;
        ks_cache_entry_t *oldest, *newest;
        ks_cache_budget_t *budget;
};

/* FNV-1a: the keys are the stores' own serialized keys, not attacker
 * chosen hash-flooding input in any way that matters more than a slow
 * commit interval. */
static uint64_t hash_bytes(const void *data, size_t len) {
        const unsigned char *p = data;
        uint64_t h             = 1469598103934665603ULL;
        for (size_t i = 0; i < len; i++)
                h = (h ^ p[i]) * 1099511628211ULL;
        return h;
}

static size_t entry_bytes(const ks_cache_entry_t *e) {
        size_t n                   = ENTRY_OVERHEAD + e->key_len + e->value.len;
        const ks_cache_origin_t *o = &e->origin;
        for (size_t i = 0; i < o->header_cnt; i++)
                n += sizeof(ks_header_t) + strlen(o->headers[i].name) + 1 +
                     o->headers[i].value.len;
        return n;
}

ks_record_cache_t *ks__cache_new(ks_cache_budget_t *budget) {
        ks_record_cache_t *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->bucket_cnt = 64;
        c->buckets    = calloc(c->bucket_cnt, sizeof(*c->buckets));
        c->budget     = budget;
        if (!c->buckets) {
                free(c);
                return NULL;
        }
        return c;
}

void ks__cache_entry_free(ks_cache_entry_t *e) {
        if (!e)
                return;
        free((void *)e->value.data);
        free((void *)e->origin.headers);
        free(e);
}

static void unlink_order(ks_record_cache_t *c, ks_cache_entry_t *e) {
        if (e->prev)
                e->prev->next = e->next;
        else
                c->oldest = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                c->newest = e->prev;
        e->prev = e->next = NULL;
}

static void link_newest(ks_record_cache_t *c, ks_cache_entry_t *e) {
        e->prev = c->newest;
        e->next = NULL;
        if (c->newest)
                c->newest->next = e;
        else
                c->oldest = e;
        c->newest = e;
}

static ks_cache_entry_t **bucket_of(ks_record_cache_t *c, uint64_t hash) {
        return &c->buckets[hash & (c->bucket_cnt - 1)];
}

static ks_cache_entry_t **find_slot(ks_record_cache_t *c,
                                    ks_bytes_t key,
                                    uint64_t hash) {
        ks_cache_entry_t **slot = bucket_of(c, hash);
        for (; *slot; slot = &(*slot)->chain)
                if ((*slot)->hash == hash && (*slot)->key_len == key.len &&
                    !memcmp((*slot)->key, key.data, key.len))
                        return slot;
        return slot;
}

/* Doubles the buckets at a load of one; a failed grow only makes the
 * chains longer. */
static void maybe_grow(ks_record_cache_t *c) {
        if (c->cnt < c->bucket_cnt)
                return;
        size_t n                 = c->bucket_cnt * 2;
        ks_cache_entry_t **fresh = calloc(n, sizeof(*fresh));
        if (!fresh)
                return;
        for (size_t i = 0; i < c->bucket_cnt; i++) {
                ks_cache_entry_t *e = c->buckets[i], *next;
                for (; e; e = next) {
                        next                 = e->chain;
                        ks_cache_entry_t **b = &fresh[e->hash & (n - 1)];
                        e->chain             = *b;
                        *b                   = e;
                }
        }
        free(c->buckets);
        c->buckets    = fresh;
        c->bucket_cnt = n;
}

/* One block: the header array, then each name and value. */
static ks_header_t *copy_headers(const ks_header_t *h, size_t cnt) {
        if (!cnt)
                return NULL;
        size_t size = cnt * sizeof(*h);
        for (size_t i = 0; i < cnt; i++)
                size += strlen(h[i].name) + 1 + h[i].value.len;
        ks_header_t *out = malloc(size);
        if (!out)
                return NULL;
        char *p = (char *)(out + cnt);
        for (size_t i = 0; i < cnt; i++) {
                size_t nl = strlen(h[i].name) + 1;
                memcpy(p, h[i].name, nl);
                out[i].name = p;
                p += nl;
                out[i].value.len  = h[i].value.len;
                out[i].value.data = h[i].value.data ? p : NULL;
                if (h[i].value.len)
                        memcpy(p, h[i].value.data, h[i].value.len);
                p += h[i].value.len;
        }
        return out;
}

ks_err_t ks__cache_put(ks_record_cache_t *c,
                       ks_bytes_t key,
                       ks_bytes_t value,
                       const ks_cache_origin_t *origin,
                       bool created) {
        uint64_t hash           = hash_bytes(key.data, key.len);
        ks_cache_entry_t **slot = find_slot(c, key, hash);
        ks_cache_entry_t *e     = *slot;
        /* A key updated again keeps its value buffer when the new value
         * fits: the usual case in a cache that collapses updates. */
        bool reuse =
                e && value.data && e->value.data && value.len <= e->value_cap;
        void *data = reuse ? (void *)e->value.data : NULL;
        if (value.data && !reuse && !(data = malloc(value.len ? value.len : 1)))
                return KS_ERR_NOMEM;
        ks_header_t *hdrs = copy_headers(origin->headers, origin->header_cnt);
        if (origin->header_cnt && !hdrs) {
                if (!reuse)
                        free(data);
                return KS_ERR_NOMEM;
        }
        if (!e) {
                e = calloc(1, sizeof(*e) + key.len);
                if (!e) {
                        free(data);
                        free(hdrs);
                        return KS_ERR_NOMEM;
                }
                e->hash    = hash;
                e->key_len = key.len;
                memcpy(e->key, key.data, key.len);
                e->created = created;
                *slot      = e;
                c->cnt++;
        } else {
                c->budget->used -= entry_bytes(e);
                unlink_order(c, e);
                if (!reuse)
                        free((void *)e->value.data);
                free((void *)e->origin.headers);
        }
        if (value.len)
                memcpy(data, value.data, value.len);
        if (!reuse)
                e->value_cap = value.data ? (value.len ? value.len : 1) : 0;
        e->value             = (ks_bytes_t){data, value.len};
        e->deleted           = !value.data;
        e->origin            = *origin;
        e->origin.headers    = hdrs;
        e->origin.header_cnt = hdrs ? origin->header_cnt : 0;
        c->budget->used += entry_bytes(e);
        link_newest(c, e);
        maybe_grow(c);
        return KS_OK;
}

ks_cache_entry_t *ks__cache_pop(ks_record_cache_t *c) {
        ks_cache_entry_t *e = c->oldest;
        if (!e)
                return NULL;
        ks_cache_entry_t **slot =
                find_slot(c, (ks_bytes_t){e->key, e->key_len}, e->hash);
        *slot = e->chain;
        unlink_order(c, e);
        c->cnt--;
        c->budget->used -= entry_bytes(e);
        return e;
}

size_t ks__cache_count(const ks_record_cache_t *c) {
        return c->cnt;
}

bool ks__cache_over_budget(const ks_record_cache_t *c) {
        return c->budget->used > c->budget->max;
}

void ks__cache_destroy(ks_record_cache_t *c) {
        if (!c)
                return;
        ks_cache_entry_t *e;
        while ((e = ks__cache_pop(c)))
                ks__cache_entry_free(e);
        free(c->buckets);
        free(c);
}
