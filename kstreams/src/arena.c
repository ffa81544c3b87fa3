/* The per-record arena: typed keys and values live here until the record
 * has gone through its sub-topology (see common.h). */
#include "kstreams/common.h"

#include <stdlib.h>
#include <string.h>

typedef struct arena_block_s {
        struct arena_block_s *next;
        size_t size;
        size_t used;
        _Alignas(16) unsigned char data[];
} arena_block_t;

typedef struct arena_defer_s {
        void (*fn)(void *);
        void *ptr;
} arena_defer_t;

struct ks_arena_s {
        arena_block_t *head; /* current block; older ones follow */
        size_t block_size;
        size_t used;
        arena_defer_t *defers;
        size_t defer_cnt, defer_cap;
};

static arena_block_t *block_new(size_t size) {
        arena_block_t *b = malloc(sizeof(*b) + size);
        if (!b)
                return NULL;
        b->next = NULL;
        b->size = size;
        b->used = 0;
        return b;
}

ks_arena_t *ks_arena_new(size_t block_size) {
        ks_arena_t *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->block_size = block_size ? block_size : 16384;
        a->head       = block_new(a->block_size);
        if (!a->head) {
                free(a);
                return NULL;
        }
        return a;
}

static void run_defers(ks_arena_t *a) {
        /* In reverse: later objects may refer to earlier ones. */
        while (a->defer_cnt > 0) {
                arena_defer_t *d = &a->defers[--a->defer_cnt];
                d->fn(d->ptr);
        }
}

void ks_arena_reset(ks_arena_t *a) {
        if (!a)
                return;
        run_defers(a);
        /* Keep the largest block (the last one allocated is at head and is
         * at least as large as any other), free the rest, so a steady
         * stream of similar records allocates nothing. */
        arena_block_t *keep = a->head, *b = keep->next;
        while (b) {
                arena_block_t *next = b->next;
                free(b);
                b = next;
        }
        keep->next = NULL;
        keep->used = 0;
        a->used    = 0;
}

void ks_arena_destroy(ks_arena_t *a) {
        if (!a)
                return;
        run_defers(a);
        arena_block_t *b = a->head;
        while (b) {
                arena_block_t *next = b->next;
                free(b);
                b = next;
        }
        free(a->defers);
        free(a);
}

void *ks_arena_alloc(ks_arena_t *a, size_t size) {
        size_t aligned = (size + 15) & ~(size_t)15;
        if (aligned < size)
                return NULL;
        arena_block_t *b = a->head;
        if (b->size - b->used < aligned) {
                size_t bsize = b->size * 2;
                while (bsize < aligned)
                        bsize *= 2;
                arena_block_t *nb = block_new(bsize);
                if (!nb)
                        return NULL;
                nb->next = b;
                a->head  = nb;
                b        = nb;
        }
        void *p = b->data + b->used;
        b->used += aligned;
        a->used += aligned;
        return p;
}

char *ks_arena_strndup(ks_arena_t *a, const char *s, size_t len) {
        char *p = ks_arena_alloc(a, len + 1);
        if (!p)
                return NULL;
        if (len)
                memcpy(p, s, len);
        p[len] = '\0';
        return p;
}

char *ks_arena_strdup(ks_arena_t *a, const char *s) {
        return ks_arena_strndup(a, s, strlen(s));
}

void *ks_arena_memdup(ks_arena_t *a, const void *src, size_t len) {
        void *p = ks_arena_alloc(a, len ? len : 1);
        if (p && len)
                memcpy(p, src, len);
        return p;
}

int64_t *ks_arena_int64(ks_arena_t *a, int64_t v) {
        int64_t *p = ks_arena_alloc(a, sizeof(*p));
        if (p)
                *p = v;
        return p;
}

double *ks_arena_double(ks_arena_t *a, double v) {
        double *p = ks_arena_alloc(a, sizeof(*p));
        if (p)
                *p = v;
        return p;
}

ks_err_t ks_arena_defer(ks_arena_t *a, void (*fn)(void *), void *ptr) {
        if (a->defer_cnt == a->defer_cap) {
                size_t cap       = a->defer_cap ? a->defer_cap * 2 : 16;
                arena_defer_t *d = realloc(a->defers, cap * sizeof(*d));
                if (!d) {
                        fn(ptr);
                        return KS_ERR_NOMEM;
                }
                a->defers    = d;
                a->defer_cap = cap;
        }
        a->defers[a->defer_cnt].fn  = fn;
        a->defers[a->defer_cnt].ptr = ptr;
        a->defer_cnt++;
        return KS_OK;
}

size_t ks_arena_used(const ks_arena_t *a) {
        return a->used;
}
