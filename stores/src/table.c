/* What every store shares: its header (name, environment, checkpoint) and
 * its tables, each either an LMDB named DB or an in-memory skip list. */
#include <ctype.h>
#include <stdlib.h>

#include "store_int.h"

ks_error_t *ks__store_name_check(const char *name) {
        if (!name || !*name)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "a store name is required");
        if (!strncmp(name, "__", 2))
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "store name %s: names starting with __ "
                                    "are reserved",
                                    name);
        if (strlen(name) > 400)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "store name %.40s...: longer than 400 "
                                    "bytes",
                                    name);
        /* "<store>.<digits>" names the segments of window stores. */
        const char *dot = strrchr(name, '.');
        if (dot) {
                const char *p = dot[1] == '-' ? dot + 2 : dot + 1;
                bool digits   = *p != '\0';
                for (; *p; p++)
                        if (!isdigit((unsigned char)*p))
                                digits = false;
                if (digits)
                        return ks_error_new(KS_ERR_INVALID_ARG,
                                            "store name %s: names ending in "
                                            "\".<number>\" are reserved for "
                                            "segments",
                                            name);
        }
        return NULL;
}

ks_error_t *ks__store_init(ks__store_t *hdr,
                           ks__store_type_t type,
                           const char *name,
                           ks_state_env_t *env) {
        memset(hdr, 0, sizeof(*hdr));
        hdr->type           = type;
        hdr->env            = env;
        hdr->mem_checkpoint = -1;
        hdr->name           = strdup(name);
        if (!hdr->name)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        return NULL;
}

void ks__store_fini(ks__store_t *hdr) {
        free(hdr->name);
        hdr->name = NULL;
}

static ks_bytes_t name_bytes(const ks__store_t *hdr) {
        return (ks_bytes_t){hdr->name, strlen(hdr->name)};
}

int64_t ks__store_checkpoint(ks__store_t *hdr) {
        if (!hdr->env)
                return hdr->mem_checkpoint;
        int64_t v = -1;
        bool found;
        ks_error_t *err = ks__env_get_i64(hdr->env, KS__SLOT_CHECKPOINTS,
                                          name_bytes(hdr), &v, &found);
        if (err || !found) {
                ks_error_destroy(err);
                return -1;
        }
        return v;
}

ks_error_t *ks__store_set_checkpoint(ks__store_t *hdr, int64_t offset) {
        if (!hdr->env) {
                hdr->mem_checkpoint = offset;
                return NULL;
        }
        return ks__env_put_i64(hdr->env, KS__SLOT_CHECKPOINTS, name_bytes(hdr),
                               offset);
}

/* ---- tables ---------------------------------------------------------------
 */

ks_error_t *ks__table_get(ks__table_t *t,
                          ks_bytes_t key,
                          ks_bytes_t *val,
                          bool *found) {
        if (t->env)
                return ks__env_get(t->env, t->slot, key, val, found);
        ks__mnode_t *n = ks__skiplist_get(t->mem, key);
        *found         = n != NULL;
        if (n)
                *val = ks__mnode_value(n);
        return NULL;
}

ks_error_t *ks__table_put(ks__table_t *t, ks_bytes_t key, ks_bytes_t val) {
        if (t->env)
                return ks__env_put(t->env, t->slot, key, val);
        (*t->mem_gen)++;
        if (!val.data) {
                ks__skiplist_del(t->mem, key);
                return NULL;
        }
        if (ks__skiplist_put(t->mem, key, val))
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        return NULL;
}

ks_error_t *ks__table_stat(ks__table_t *t, uint64_t *entries, uint64_t *bytes) {
        if (t->env)
                return ks__env_stat(t->env, t->slot, entries, bytes);
        *entries = ks__skiplist_count(t->mem);
        *bytes   = ks__skiplist_bytes(t->mem);
        return NULL;
}

const uint64_t *ks__table_gen(const ks__table_t *t) {
        return t->env ? ks__env_write_gen(t->env) : t->mem_gen;
}
