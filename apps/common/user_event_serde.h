/* The user-event serde and timestamp extractor for topologies. */
#ifndef KS_APPS_USER_EVENT_SERDE_H
#define KS_APPS_USER_EVENT_SERDE_H

#include <kstreams/serde.h>
#include <kstreams/timestamp.h>

#include "user_event.h"

/**
 * Returns a new serde (one reference; builder calls take it) whose objects
 * are `const user_event_t *` in the record's arena, strings included.
 * Decoding goes through the fast JSON path; a malformed event or one that
 * breaks the schema is a deserialization error (KS_ERR_JSON/KS_ERR_SERDE).
 * NULL on OOM.
 */
ks_serde_t *user_event_serde(void);

/** An extractor returning the event's own timestamp (user_event_serde
 *  values only). Returns a new object. */
ks_timestamp_extractor_t *user_event_timestamp_extractor(void);

#endif
