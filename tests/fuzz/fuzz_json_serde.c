/* Fuzz target: the JSON serde (ks_serde_json(), jansson). What it reads it
 * must write back, and the written form must read back as an equal
 * value. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include <kstreams/kstreams.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ks_arena_t *arena;
        char errstr[256];
        if (!arena && !(arena = ks_arena_new(0)))
                abort();
        ks_arena_reset(arena);
        ks_serde_t *serde = ks_serde_json();
        const void *obj   = NULL;
        /* data is never NULL here: NULL is a tombstone, not bytes. */
        if (ks_serde_deserialize(serde, arena, size ? (const void *)data : "",
                                 size, &obj, errstr, sizeof(errstr)))
                return 0;
        ks_buf_t buf = {0};
        if (ks_serde_serialize(serde, obj, &buf, errstr, sizeof(errstr)))
                abort();
        const void *again = NULL;
        if (ks_serde_deserialize(serde, arena, buf.data, buf.len, &again,
                                 errstr, sizeof(errstr)))
                abort();
        if (!json_equal((json_t *)obj, (json_t *)again))
                abort();
        ks_buf_free(&buf);
        return 0;
}
