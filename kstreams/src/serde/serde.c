/* Serdes: the reference-counted wrapper and the built-in serdes. */
#include "kstreams/serde.h"

#include "bytes_int.h"
#include "serde_int.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ks_serde_s {
        atomic_int refcnt; /* < 0: static, never freed */
        char *name;
        ks_serialize_fn *ser;
        ks_deserialize_fn *de;
        void *opaque;
        void (*opaque_free)(void *);
};

ks_serde_t *ks_serde_new(const char *name,
                         ks_serialize_fn *ser,
                         ks_deserialize_fn *de,
                         void *opaque,
                         void (*opaque_free)(void *)) {
        if (!ser || !de)
                return NULL;
        ks_serde_t *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->name = strdup(name ? name : "user");
        if (!s->name) {
                free(s);
                return NULL;
        }
        atomic_init(&s->refcnt, 1);
        s->ser         = ser;
        s->de          = de;
        s->opaque      = opaque;
        s->opaque_free = opaque_free;
        return s;
}

ks_serde_t *ks_serde_ref(ks_serde_t *s) {
        if (s && atomic_load(&s->refcnt) >= 0)
                atomic_fetch_add(&s->refcnt, 1);
        return s;
}

void ks_serde_destroy(ks_serde_t *s) {
        if (!s || atomic_load(&s->refcnt) < 0)
                return;
        if (atomic_fetch_sub(&s->refcnt, 1) != 1)
                return;
        if (s->opaque_free)
                s->opaque_free(s->opaque);
        free(s->name);
        free(s);
}

const char *ks_serde_name(const ks_serde_t *s) {
        return s->name;
}

void *ks__serde_opaque_if(const ks_serde_t *s, ks_serialize_fn *ser) {
        return s && s->ser == ser ? s->opaque : NULL;
}

ks_err_t ks_serde_serialize(const ks_serde_t *s,
                            const void *obj,
                            ks_buf_t *out,
                            char *errstr,
                            size_t errstr_size) {
        if (!obj)
                return KS_OK;
        return s->ser(obj, out, s->opaque, errstr, errstr_size);
}

ks_err_t ks_serde_deserialize(const ks_serde_t *s,
                              ks_arena_t *arena,
                              const void *data,
                              size_t len,
                              const void **obj_out,
                              char *errstr,
                              size_t errstr_size) {
        if (!data) {
                *obj_out = NULL;
                return KS_OK;
        }
        return s->de(arena, data, len, obj_out, s->opaque, errstr, errstr_size);
}

/* --- bytes ---------------------------------------------------------------- */
static ks_err_t bytes_ser(const void *obj,
                          ks_buf_t *out,
                          void *opaque,
                          char *errstr,
                          size_t errstr_size) {
        const ks_bytes_t *b = obj;
        (void)opaque, (void)errstr, (void)errstr_size;
        return ks_buf_append(out, b->data, b->len);
}

static ks_err_t bytes_de(ks_arena_t *arena,
                         const void *data,
                         size_t len,
                         const void **obj_out,
                         void *opaque,
                         char *errstr,
                         size_t errstr_size) {
        (void)opaque;
        ks_bytes_t *b = ks_arena_alloc(arena, sizeof(*b));
        if (!b) {
                snprintf(errstr, errstr_size, "bytes serde: out of memory");
                return KS_ERR_NOMEM;
        }
        b->data  = data; /* the raw bytes outlive the object */
        b->len   = len;
        *obj_out = b;
        return KS_OK;
}

/* --- string --------------------------------------------------------------- */
static ks_err_t string_ser(const void *obj,
                           ks_buf_t *out,
                           void *opaque,
                           char *errstr,
                           size_t errstr_size) {
        (void)opaque, (void)errstr, (void)errstr_size;
        return ks_buf_append(out, obj, strlen(obj));
}

static ks_err_t string_de(ks_arena_t *arena,
                          const void *data,
                          size_t len,
                          const void **obj_out,
                          void *opaque,
                          char *errstr,
                          size_t errstr_size) {
        (void)opaque;
        char *s = ks_arena_strndup(arena, data, len);
        if (!s) {
                snprintf(errstr, errstr_size, "string serde: out of memory");
                return KS_ERR_NOMEM;
        }
        *obj_out = s;
        return KS_OK;
}

/* --- int64, double: big-endian as Java's serializers ---------------------- */
static ks_err_t int64_ser(const void *obj,
                          ks_buf_t *out,
                          void *opaque,
                          char *errstr,
                          size_t errstr_size) {
        unsigned char be[8];
        (void)opaque, (void)errstr, (void)errstr_size;
        ks__be64_put(be, *(const int64_t *)obj);
        return ks_buf_append(out, be, 8);
}

static ks_err_t int64_de(ks_arena_t *arena,
                         const void *data,
                         size_t len,
                         const void **obj_out,
                         void *opaque,
                         char *errstr,
                         size_t errstr_size) {
        (void)opaque;
        if (len != 8) {
                snprintf(errstr, errstr_size,
                         "int64 serde: expected 8 bytes, got %zu", len);
                return KS_ERR_SERDE;
        }
        int64_t *v = ks_arena_int64(arena, ks__be64_get(data));
        if (!v)
                return KS_ERR_NOMEM;
        *obj_out = v;
        return KS_OK;
}

static ks_err_t double_ser(const void *obj,
                           ks_buf_t *out,
                           void *opaque,
                           char *errstr,
                           size_t errstr_size) {
        unsigned char be[8];
        uint64_t bits;
        (void)opaque, (void)errstr, (void)errstr_size;
        memcpy(&bits, obj, 8);
        ks__be64_put(be, (int64_t)bits);
        return ks_buf_append(out, be, 8);
}

static ks_err_t double_de(ks_arena_t *arena,
                          const void *data,
                          size_t len,
                          const void **obj_out,
                          void *opaque,
                          char *errstr,
                          size_t errstr_size) {
        (void)opaque;
        if (len != 8) {
                snprintf(errstr, errstr_size,
                         "double serde: expected 8 bytes, got %zu", len);
                return KS_ERR_SERDE;
        }
        uint64_t bits = (uint64_t)ks__be64_get(data);
        double d;
        memcpy(&d, &bits, 8);
        double *v = ks_arena_double(arena, d);
        if (!v)
                return KS_ERR_NOMEM;
        *obj_out = v;
        return KS_OK;
}

/* --- JSON (jansson DOM) ----------------------------------------------------
 */
static ks_err_t json_ser(const void *obj,
                         ks_buf_t *out,
                         void *opaque,
                         char *errstr,
                         size_t errstr_size) {
        const json_t *j = obj;
        (void)opaque;
        size_t need = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (need == 0) {
                snprintf(errstr, errstr_size, "json serde: cannot encode");
                return KS_ERR_SERDE;
        }
        if (ks_buf_reserve(out, need))
                return KS_ERR_NOMEM;
        json_dumpb(j, out->data + out->len, need,
                   JSON_COMPACT | JSON_ENCODE_ANY);
        out->len += need;
        out->data[out->len] = '\0';
        return KS_OK;
}

static void json_decref_void(void *p) {
        json_decref(p);
}

static ks_err_t json_de(ks_arena_t *arena,
                        const void *data,
                        size_t len,
                        const void **obj_out,
                        void *opaque,
                        char *errstr,
                        size_t errstr_size) {
        json_error_t jerr;
        (void)opaque;
        json_t *j =
                json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j) {
                snprintf(errstr, errstr_size, "json serde: %s at byte %d",
                         jerr.text, jerr.position);
                return KS_ERR_JSON;
        }
        if (ks_arena_defer(arena, json_decref_void, j))
                return KS_ERR_NOMEM;
        *obj_out = j;
        return KS_OK;
}

#define STATIC_SERDE(var, nm, s, d)                                            \
        static ks_serde_t var = {                                              \
                .refcnt = -1, .name = (char *)nm, .ser = s, .de = d}

STATIC_SERDE(serde_bytes, "bytes", bytes_ser, bytes_de);
STATIC_SERDE(serde_string, "string", string_ser, string_de);
STATIC_SERDE(serde_int64, "int64", int64_ser, int64_de);
STATIC_SERDE(serde_double, "double", double_ser, double_de);
STATIC_SERDE(serde_json, "json", json_ser, json_de);

ks_serde_t *ks_serde_bytes(void) {
        return &serde_bytes;
}
ks_serde_t *ks_serde_string(void) {
        return &serde_string;
}
ks_serde_t *ks_serde_int64(void) {
        return &serde_int64;
}
ks_serde_t *ks_serde_double(void) {
        return &serde_double;
}
ks_serde_t *ks_serde_json(void) {
        return &serde_json;
}
