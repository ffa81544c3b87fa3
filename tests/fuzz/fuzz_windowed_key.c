/* Fuzz target: the windowed and session-windowed key decoders (the DSL's
 * serdes and the changelog key parser of store_write.c). Whatever they
 * accept must serialize back to the same bytes: these keys are stored,
 * logged and compared as bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kstreams/kstreams.h>

#include "changelog_int.h"

static void roundtrip(ks_serde_t *serde,
                      bool check_end,
                      ks_arena_t *arena,
                      const uint8_t *data,
                      size_t size) {
        char errstr[256];
        const void *obj = NULL;
        if (ks_serde_deserialize(serde, arena, data, size, &obj, errstr,
                                 sizeof(errstr)))
                return;
        /* A window never ends before it starts (time windows: start +
         * size, which must not wrap around). */
        const ks_windowed_key_t *wk = obj;
        if (check_end && wk->end < wk->start)
                abort();
        ks_buf_t buf = {0};
        if (ks_serde_serialize(serde, obj, &buf, errstr, sizeof(errstr)))
                abort();
        if (buf.len != size || memcmp(buf.data, data, size))
                abort();
        ks_buf_free(&buf);
}

static void changelog_roundtrip(int kind, const uint8_t *data, size_t size) {
        ks_bytes_t key;
        int64_t start, end;
        if (!ks__changelog_key_parse(kind, (ks_bytes_t){data, size}, &key,
                                     &start, &end))
                return;
        ks_buf_t buf = {0};
        if (ks__changelog_key(&buf, kind, key, start, end))
                abort();
        if (buf.len != size || (size && memcmp(buf.data, data, size)))
                abort();
        ks_buf_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ks_serde_t *windowed, *windowed_bytes, *session;
        static ks_arena_t *arena;
        if (!arena) {
                arena    = ks_arena_new(0);
                windowed = ks_serde_windowed(ks_serde_string(), 60000);
                windowed_bytes =
                        ks_serde_windowed(ks_serde_bytes(), INT64_C(1) << 62);
                session = ks_serde_session_windowed(ks_serde_string());
                if (!arena || !windowed || !windowed_bytes || !session)
                        abort();
        }
        ks_arena_reset(arena);
        /* A string key loses what follows a NUL: exact only without. */
        if (!memchr(data, '\0', size > 8 ? size - 8 : 0))
                roundtrip(windowed, true, arena, data, size);
        if (!memchr(data, '\0', size > 16 ? size - 16 : 0))
                roundtrip(session, false, arena, data, size);
        roundtrip(windowed_bytes, true, arena, data, size);
        changelog_roundtrip(KS_STORE_KV, data, size);
        changelog_roundtrip(KS_STORE_WINDOW, data, size);
        changelog_roundtrip(KS_STORE_SESSION, data, size);
        return 0;
}
