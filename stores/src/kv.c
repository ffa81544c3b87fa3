/* Key-value stores: one table, an LMDB named DB called after the store or
 * a skip list. */
#include <stdlib.h>

#include "store_int.h"

struct ks_kv_store_s {
        ks__store_t hdr;
        ks__table_t table;
        uint64_t mem_gen;
};

static void kv_free(ks__store_t *hdr) {
        ks_kv_store_t *store = (ks_kv_store_t *)hdr;
        ks__skiplist_destroy(store->table.mem);
        ks__store_fini(hdr);
        free(store);
}

ks_error_t *ks_kv_store_open(ks_state_env_t *env,
                             const char *name,
                             ks_kv_store_t **storep) {
        ks_error_t *err;
        *storep = NULL;
        if ((err = ks__store_name_check(name)))
                return err;
        ks__store_t *open = ks__env_find_store(env, name);
        if (open) {
                if (open->type != KS__STORE_KV)
                        return ks_error_new(KS_ERR_INVALID_ARG,
                                            "store %s is already open as "
                                            "another kind of store",
                                            name);
                *storep = (ks_kv_store_t *)open;
                return NULL;
        }
        ks_kv_store_t *store = calloc(1, sizeof(*store));
        if (!store)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        store->hdr.free  = kv_free;
        store->table.env = env;
        if ((err = ks__store_init(&store->hdr, KS__STORE_KV, name, env)) ||
            (err = ks__env_slot(env, name, &store->table.slot)) ||
            (err = ks__env_add_store(env, &store->hdr))) {
                kv_free(&store->hdr);
                return err;
        }
        store->hdr.free = kv_free;
        *storep         = store;
        return NULL;
}

ks_kv_store_t *ks_kv_store_new_memory(const char *name) {
        ks_error_t *err = ks__store_name_check(name);
        if (err) {
                ks_error_destroy(err);
                return NULL;
        }
        ks_kv_store_t *store = calloc(1, sizeof(*store));
        if (!store)
                return NULL;
        store->table.mem     = ks__skiplist_new();
        store->table.mem_gen = &store->mem_gen;
        if (!store->table.mem ||
            (err = ks__store_init(&store->hdr, KS__STORE_KV, name, NULL))) {
                ks_error_destroy(err);
                kv_free(&store->hdr);
                return NULL;
        }
        store->hdr.free = kv_free;
        return store;
}

void ks_kv_store_destroy(ks_kv_store_t *store) {
        if (store && !store->hdr.env)
                kv_free(&store->hdr);
}

const char *ks_kv_store_name(const ks_kv_store_t *store) {
        return store->hdr.name;
}

ks_error_t *ks_kv_store_get(ks_kv_store_t *store,
                            ks_bytes_t key,
                            ks_bytes_t *value,
                            bool *found) {
        *found = false;
        if (!key.len)
                return NULL;
        return ks__table_get(&store->table, key, value, found);
}

ks_error_t *ks_kv_store_put(ks_kv_store_t *store,
                            ks_bytes_t key,
                            ks_bytes_t value) {
        if (!key.len)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "store %s: empty keys are not supported",
                                    store->hdr.name);
        return ks__table_put(&store->table, key, value);
}

ks_error_t *ks_kv_store_delete(ks_kv_store_t *store, ks_bytes_t key) {
        if (!key.len)
                return NULL;
        return ks__table_put(&store->table, key, (ks_bytes_t){NULL, 0});
}

ks_error_t *ks_kv_store_range(ks_kv_store_t *store,
                              ks_bytes_t from,
                              ks_bytes_t to,
                              ks_store_iter_t **itp) {
        ks__iter_spec_t spec = {
                .kind       = KS__ITER_KV,
                .table      = &store->table,
                .lower      = from,
                .upper      = to,
                .upper_mode = to.data ? KS__UPPER_INCLUSIVE : KS__UPPER_NONE,
        };
        return ks__iter_new(&spec, itp);
}

ks_error_t *ks_kv_store_prefix(ks_kv_store_t *store,
                               ks_bytes_t prefix,
                               ks_store_iter_t **itp) {
        ks__iter_spec_t spec = {
                .kind       = KS__ITER_KV,
                .table      = &store->table,
                .lower      = prefix,
                .upper      = prefix,
                .upper_mode = KS__UPPER_PREFIX,
        };
        return ks__iter_new(&spec, itp);
}

uint64_t ks_kv_store_approximate_count(ks_kv_store_t *store) {
        uint64_t n, bytes;
        ks_error_t *err = ks__table_stat(&store->table, &n, &bytes);
        if (err) {
                ks_error_destroy(err);
                return 0;
        }
        return n;
}

uint64_t ks_kv_store_approximate_size(ks_kv_store_t *store) {
        uint64_t n, bytes;
        ks_error_t *err = ks__table_stat(&store->table, &n, &bytes);
        if (err) {
                ks_error_destroy(err);
                return 0;
        }
        return bytes;
}

int64_t ks_kv_store_checkpoint(ks_kv_store_t *store) {
        return ks__store_checkpoint(&store->hdr);
}

ks_error_t *ks_kv_store_set_checkpoint(ks_kv_store_t *store, int64_t offset) {
        return ks__store_set_checkpoint(&store->hdr, offset);
}
