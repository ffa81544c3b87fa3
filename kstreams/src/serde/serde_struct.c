/* ks_serde_struct(): fixed-layout structs of numbers, big-endian on the
 * wire, so that a multi-field aggregate costs no JSON parse per update. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes_int.h"
#include "kstreams/serde_typed.h"

typedef struct struct_serde_s {
        size_t struct_size;
        size_t wire_size;
        size_t field_cnt;
        ks_struct_field_t fields[];
} struct_serde_t;

static size_t field_width(ks_field_type_t type) {
        return type == KS_FIELD_INT32 ? 4 : 8;
}

static ks_err_t struct_ser(const void *obj,
                           ks_buf_t *out,
                           void *opaque,
                           char *errstr,
                           size_t errstr_size) {
        const struct_serde_t *s = opaque;
        const char *base        = obj;
        (void)errstr, (void)errstr_size;
        if (ks_buf_reserve(out, s->wire_size))
                return KS_ERR_NOMEM;
        unsigned char *p = (unsigned char *)out->data + out->len;
        for (size_t i = 0; i < s->field_cnt; i++) {
                const ks_struct_field_t *f = &s->fields[i];
                int64_t i64;
                int32_t i32;
                double d;
                switch (f->type) {
                case KS_FIELD_INT64:
                        memcpy(&i64, base + f->offset, 8);
                        ks__be64_put(p, i64);
                        p += 8;
                        break;
                case KS_FIELD_DOUBLE:
                        memcpy(&d, base + f->offset, 8);
                        memcpy(&i64, &d, 8);
                        ks__be64_put(p, i64);
                        p += 8;
                        break;
                case KS_FIELD_INT32:
                        memcpy(&i32, base + f->offset, 4);
                        p[0] = (unsigned char)((uint32_t)i32 >> 24);
                        p[1] = (unsigned char)((uint32_t)i32 >> 16);
                        p[2] = (unsigned char)((uint32_t)i32 >> 8);
                        p[3] = (unsigned char)(uint32_t)i32;
                        p += 4;
                        break;
                }
        }
        out->len += s->wire_size;
        return KS_OK;
}

static ks_err_t struct_de(ks_arena_t *arena,
                          const void *data,
                          size_t len,
                          const void **obj_out,
                          void *opaque,
                          char *errstr,
                          size_t errstr_size) {
        const struct_serde_t *s = opaque;
        if (len != s->wire_size) {
                snprintf(errstr, errstr_size,
                         "struct serde: expected %zu bytes, got %zu",
                         s->wire_size, len);
                return KS_ERR_SERDE;
        }
        char *base = ks_arena_alloc(arena, s->struct_size);
        if (!base)
                return KS_ERR_NOMEM;
        memset(base, 0, s->struct_size);
        const unsigned char *p = data;
        for (size_t i = 0; i < s->field_cnt; i++) {
                const ks_struct_field_t *f = &s->fields[i];
                int64_t i64;
                uint32_t u32;
                double d;
                switch (f->type) {
                case KS_FIELD_INT64:
                        i64 = ks__be64_get(p);
                        memcpy(base + f->offset, &i64, 8);
                        p += 8;
                        break;
                case KS_FIELD_DOUBLE:
                        i64 = ks__be64_get(p);
                        memcpy(&d, &i64, 8);
                        memcpy(base + f->offset, &d, 8);
                        p += 8;
                        break;
                case KS_FIELD_INT32:
                        u32 = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                              (uint32_t)p[2] << 8 | (uint32_t)p[3];
                        memcpy(base + f->offset, &u32, 4);
                        p += 4;
                        break;
                }
        }
        *obj_out = base;
        return KS_OK;
}

ks_serde_t *ks_serde_struct(const char *name,
                            size_t struct_size,
                            const ks_struct_field_t *fields,
                            size_t field_cnt) {
        if (!name || !fields || field_cnt == 0)
                return NULL;
        struct_serde_t *s =
                malloc(sizeof(*s) + field_cnt * sizeof(ks_struct_field_t));
        if (!s)
                return NULL;
        s->struct_size = struct_size;
        s->field_cnt   = field_cnt;
        s->wire_size   = 0;
        for (size_t i = 0; i < field_cnt; i++) {
                ks_field_type_t t = fields[i].type;
                if ((t != KS_FIELD_INT64 && t != KS_FIELD_INT32 &&
                     t != KS_FIELD_DOUBLE) ||
                    fields[i].offset + field_width(t) > struct_size) {
                        free(s);
                        return NULL;
                }
                s->fields[i] = fields[i];
                s->wire_size += field_width(t);
        }
        ks_serde_t *serde = ks_serde_new(name, struct_ser, struct_de, s, free);
        if (!serde)
                free(s);
        return serde;
}
