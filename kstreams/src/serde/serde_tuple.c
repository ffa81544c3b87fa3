/* ks_serde_tuple(): composite keys of strings, each followed by a 0 byte.
 * Strings hold no 0 byte, so the form needs no escaping, sorts item by
 * item, and deserializes in place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kstreams/serde_typed.h"

static ks_err_t tuple_ser(const void *obj,
                          ks_buf_t *out,
                          void *opaque,
                          char *errstr,
                          size_t errstr_size) {
        const ks_tuple_t *t = obj;
        size_t count        = (size_t)(uintptr_t)opaque;
        if (t->count != count) {
                snprintf(errstr, errstr_size,
                         "tuple serde: expected %zu items, got %zu", count,
                         t->count);
                return KS_ERR_SERDE;
        }
        for (size_t i = 0; i < count; i++) {
                if (!t->items[i]) {
                        snprintf(errstr, errstr_size,
                                 "tuple serde: item %zu is NULL", i);
                        return KS_ERR_SERDE;
                }
                ks_err_t err = ks_buf_append(out, t->items[i],
                                             strlen(t->items[i]) + 1);
                if (err)
                        return err;
        }
        return KS_OK;
}

static ks_err_t tuple_de(ks_arena_t *arena,
                         const void *data,
                         size_t len,
                         const void **obj_out,
                         void *opaque,
                         char *errstr,
                         size_t errstr_size) {
        size_t count  = (size_t)(uintptr_t)opaque;
        const char *p = data, *end = p + len;
        ks_tuple_t *t = ks_arena_alloc(arena, sizeof(*t));
        if (!t)
                return KS_ERR_NOMEM;
        memset(t, 0, sizeof(*t));
        while (p < end) {
                const char *nul = memchr(p, '\0', (size_t)(end - p));
                if (!nul || t->count == count) {
                        snprintf(errstr, errstr_size, "tuple serde: %s",
                                 nul ? "more items than expected"
                                     : "the last item has no terminating 0");
                        return KS_ERR_SERDE;
                }
                t->items[t->count++] = p;
                p                    = nul + 1;
        }
        if (t->count != count) {
                snprintf(errstr, errstr_size,
                         "tuple serde: expected %zu items, got %zu", count,
                         t->count);
                return KS_ERR_SERDE;
        }
        *obj_out = t;
        return KS_OK;
}

ks_serde_t *ks_serde_tuple(size_t count) {
        if (count == 0 || count > KS_TUPLE_MAX_ITEMS)
                return NULL;
        return ks_serde_new("tuple", tuple_ser, tuple_de,
                            (void *)(uintptr_t)count, NULL);
}

ks_tuple_t *ks_tuple_make(ks_arena_t *arena,
                          size_t count,
                          const char *const *items) {
        if (count == 0 || count > KS_TUPLE_MAX_ITEMS || !items)
                return NULL;
        for (size_t i = 0; i < count; i++)
                if (!items[i])
                        return NULL;
        ks_tuple_t *t = ks_arena_alloc(arena, sizeof(*t));
        if (!t)
                return NULL;
        memset(t, 0, sizeof(*t));
        t->count = count;
        for (size_t i = 0; i < count; i++)
                t->items[i] = items[i];
        return t;
}
