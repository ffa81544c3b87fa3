/* The event-count topology shared by the benchmarks. */
#include "event_count_topology.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/user_event_serde.h"

const char *const ec_known_types[EC_TYPE_CNT] = {
        "page_view",   "button_click", "form_submit", "purchase",
        "add_to_cart", "search",       "login",       "logout"};

int ec_type_index(const char *type) {
        for (int i = 0; i < EC_TYPE_CNT; i++)
                if (!strcmp(type, ec_known_types[i]))
                        return i;
        return -1;
}

static bool is_valid(const void *key, const void *value, void *opaque) {
        (void)key, (void)opaque;
        return value &&
               ec_type_index(((const user_event_t *)value)->event_type) >= 0;
}

static const void *type_of(ks_arena_t *a,
                           const void *key,
                           const void *value,
                           void *opaque) {
        (void)a, (void)key, (void)opaque;
        return ((const user_event_t *)value)->event_type; /* borrowed */
}

/* The final count as JSON, keyed by the event type. */
static ks_kv_t to_json(ks_arena_t *a,
                       const void *key,
                       const void *value,
                       void *opaque) {
        const ks_windowed_key_t *wk = key;
        char buf[256];
        (void)opaque;
        snprintf(buf, sizeof(buf),
                 "{\"event_type\":\"%s\",\"window_start\":%" PRId64
                 ",\"window_end\":%" PRId64 ",\"count\":%" PRId64 "}",
                 (const char *)wk->key, wk->start, wk->end,
                 *(const int64_t *)value);
        return (ks_kv_t){ks_arena_strdup(a, wk->key), ks_arena_strdup(a, buf)};
}

ks_topology_t *ec_topology(const char *in, const char *out) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *ev = ks_stream_with_timestamps(
                ks_builder_stream(b, in, ks_serde_string(), user_event_serde()),
                user_event_timestamp_extractor());
        ks_stream_t *valid =
                ks_stream_filter(ev, "valid-events", is_valid, NULL);
        ks_grouped_t *g =
                ks_stream_group_by(valid, "by-type", type_of, NULL,
                                   ks_serde_string(), user_event_serde());
        ks_table_t *counts = ks_windowed_count(
                ks_grouped_windowed_by(
                        g, ks_tumbling_window(EC_WINDOW_MS, EC_GRACE_MS)),
                "event-counts");
        ks_table_t *final = ks_table_suppress(
                counts, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0, "final-counts");
        ks_stream_to(ks_stream_map(ks_table_to_stream(final, NULL), "to-json",
                                   to_json, NULL),
                     out, ks_serde_string(), ks_serde_string());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        if (!t) {
                fprintf(stderr, "bench: topology: %s\n", err);
                exit(1);
        }
        return t;
}
