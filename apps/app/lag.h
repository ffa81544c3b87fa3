/* Consumer lag of an application on its topics (the statistics line). */
#ifndef KS_APP_LAG_H
#define KS_APP_LAG_H

#include <stddef.h>
#include <stdint.h>

typedef struct lag_probe_s lag_probe_t;

/** Returns a new probe for consumer group @p group on the @p topic_cnt
 *  @p topics (copied), in topological order: the input topic first, then
 *  the repartition topics fed from it. Free with lag_probe_destroy(). NULL
 *  on a configuration error or OOM. */
lag_probe_t *lag_probe_new(const char *bootstrap,
                           const char *group,
                           const char *const *topics,
                           size_t topic_cnt);
void lag_probe_destroy(lag_probe_t *p);

/** @returns the records of the topics not yet committed by the group, or
 *  -1 if the brokers did not answer within @p timeout_ms (per request).
 *  The topics are asked one after the other in their order, so 0 means
 *  that all was processed and committed: an upstream topic's commit
 *  follows the flush of what it wrote to the downstream ones, which are
 *  asked later. */
int64_t lag_probe_get(lag_probe_t *p, int timeout_ms);

#endif
