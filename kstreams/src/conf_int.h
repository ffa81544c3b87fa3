/* Internal configuration access. */
#ifndef KS_CONF_INT_H
#define KS_CONF_INT_H

#include "kstreams/conf.h"

typedef enum ks_handler_e {
        KS_HANDLER_FAIL = 0,
        KS_HANDLER_LOG_AND_CONTINUE,
        KS_HANDLER_DEAD_LETTER
} ks_handler_t;

/** Returns the value (or default) of a kstreams property, borrowed until the
 *  property is set again. Aborts on a name not in the table: a bug. */
const char *ks__conf_str(const ks_conf_t *conf, const char *name);
int64_t ks__conf_int(const ks_conf_t *conf, const char *name);
bool ks__conf_is_set(const ks_conf_t *conf, const char *name);
ks_handler_t ks__conf_handler(const ks_conf_t *conf, const char *name);

typedef enum ks_conf_side_e {
        KS_CONF_SIDE_CONSUMER,
        KS_CONF_SIDE_PRODUCER,
        KS_CONF_SIDE_ADMIN
} ks_conf_side_t;

/** Calls @p fn for each librdkafka property that applies to @p side, with
 *  the side prefix removed. Stops at the first non-zero return. */
int ks__conf_foreach_rdkafka(const ks_conf_t *conf,
                             ks_conf_side_t side,
                             int (*fn)(const char *name,
                                       const char *value,
                                       void *opaque),
                             void *opaque);

#endif
