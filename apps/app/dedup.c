/* An open-addressing hash set of event ids with their registration time.
 * Expired ids are dropped when the table is rebuilt, which happens when it
 * is half full: the table holds about a window's worth of ids. Ids up to
 * 47 bytes (UUIDs are 36) are stored inline: no allocation per event. */
#include "dedup.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define INLINE_ID 48

typedef struct slot_s {
        uint64_t hash; /* 0: empty */
        int64_t t0;
        char *heap_id; /* ids of INLINE_ID bytes or more */
        char id[INLINE_ID];
} slot_t;

struct dedup_s {
        pthread_mutex_t lock;
        int64_t window_ms;
        int64_t max_ts;
        slot_t *slots;
        size_t cap, cnt; /* cap: a power of 2 */
        uint64_t dropped;
};

static uint64_t hash_of(const char *s, size_t len) {
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
        return h ? h : 1;
}

static const char *slot_id(const slot_t *s) {
        return s->heap_id ? s->heap_id : s->id;
}

dedup_t *dedup_new(int64_t window_ms) {
        dedup_t *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->window_ms = window_ms;
        d->max_ts    = INT64_MIN;
        d->cap       = 1024;
        d->slots     = calloc(d->cap, sizeof(*d->slots));
        if (!d->slots) {
                free(d);
                return NULL;
        }
        pthread_mutex_init(&d->lock, NULL);
        return d;
}

void dedup_destroy(dedup_t *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->cap; i++)
                free(d->slots[i].heap_id);
        free(d->slots);
        pthread_mutex_destroy(&d->lock);
        free(d);
}

static bool expired(const dedup_t *d, int64_t t0) {
        return t0 < d->max_ts - d->window_ms;
}

static slot_t *find(slot_t *slots,
                    size_t cap,
                    uint64_t h,
                    const char *id,
                    bool *found) {
        for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
                slot_t *s = &slots[i];
                if (!s->hash) {
                        *found = false;
                        return s;
                }
                if (s->hash == h && !strcmp(slot_id(s), id)) {
                        *found = true;
                        return s;
                }
        }
}

/* Drops expired ids, growing the table if it stays over a quarter full.
 * On OOM it keeps the old table (a later call retries). */
static void rebuild(dedup_t *d) {
        size_t live = 0;
        for (size_t i = 0; i < d->cap; i++)
                live += d->slots[i].hash && !expired(d, d->slots[i].t0);
        size_t cap = d->cap;
        while (live * 4 > cap)
                cap *= 2;
        slot_t *slots = calloc(cap, sizeof(*slots));
        if (!slots)
                return;
        for (size_t i = 0; i < d->cap; i++) {
                slot_t *s = &d->slots[i];
                if (!s->hash)
                        continue;
                if (expired(d, s->t0)) {
                        free(s->heap_id);
                        continue;
                }
                bool found;
                *find(slots, cap, s->hash, slot_id(s), &found) = *s;
        }
        free(d->slots);
        d->slots = slots;
        d->cap   = cap;
        d->cnt   = live;
}

bool dedup_check(dedup_t *d, const char *id, int64_t ts) {
        if (d->window_ms <= 0)
                return true;
        size_t len = strlen(id);
        uint64_t h = hash_of(id, len);
        bool found, fresh = true;
        pthread_mutex_lock(&d->lock);
        if (ts > d->max_ts)
                d->max_ts = ts;
        slot_t *s = find(d->slots, d->cap, h, id, &found);
        if (found && !expired(d, s->t0)) {
                d->dropped++;
                fresh = false;
        } else if (found) {
                s->t0 = ts; /* expired: registered anew */
        } else {
                char *heap = NULL;
                if (len >= INLINE_ID && !(heap = strdup(id))) {
                        pthread_mutex_unlock(&d->lock);
                        return true; /* OOM: let it through, not lose it */
                }
                s->hash    = h;
                s->t0      = ts;
                s->heap_id = heap;
                if (!heap)
                        memcpy(s->id, id, len + 1);
                if (++d->cnt * 2 > d->cap)
                        rebuild(d);
        }
        pthread_mutex_unlock(&d->lock);
        return fresh;
}

uint64_t dedup_dropped(dedup_t *d) {
        pthread_mutex_lock(&d->lock);
        uint64_t n = d->dropped;
        pthread_mutex_unlock(&d->lock);
        return n;
}
