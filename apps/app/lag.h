/* Consumer lag of an application on one topic (the statistics line). */
#ifndef KS_APP_LAG_H
#define KS_APP_LAG_H

#include <stdint.h>

typedef struct lag_probe_s lag_probe_t;

/** Returns a new probe for consumer group @p group on @p topic (copied);
 *  free with lag_probe_destroy(). NULL on a configuration error or OOM. */
lag_probe_t *lag_probe_new(const char *bootstrap,
                           const char *group,
                           const char *topic);
void lag_probe_destroy(lag_probe_t *p);

/** @returns the records of @p topic not yet committed by the group, or -1
 *  if the brokers did not answer within @p timeout_ms (per request). */
int64_t lag_probe_get(lag_probe_t *p, int timeout_ms);

#endif
