/* The event-count topology of bench_event_count and bench_eos (as
 * bench/peer's EventCount): decode and validate each user event, key it by
 * event type, repartition, count per type in 60 s tumbling windows with a
 * grace of 2 days, suppress until the window closes, and write each final
 * count as JSON keyed by event type. */
#ifndef KS_BENCH_EVENT_COUNT_TOPOLOGY_H
#define KS_BENCH_EVENT_COUNT_TOPOLOGY_H

#include <kstreams/kstreams.h>

#define EC_WINDOW_MS 60000
#define EC_GRACE_MS  172800000 /* 2 days */

extern const char *const ec_known_types[];
#define EC_TYPE_CNT 8

/** The index of @p type in ec_known_types, -1 if it is not one. */
int ec_type_index(const char *type);
/** Returns a new topology reading @p in and writing @p out; free with
 *  ks_topology_destroy(). Exits on error. */
ks_topology_t *ec_topology(const char *in, const char *out);

#endif
