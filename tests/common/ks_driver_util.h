/* Scaffolding shared by the tests: big-endian numbers as the int64 serde
 * writes them, and a test driver started from a builder. Each call fails
 * the test on error. */
#ifndef KS_DRIVER_UTIL_H
#define KS_DRIVER_UTIL_H

#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdint.h>

/** The int64 at @p p, 8 bytes big-endian (ks_serde_int64()'s format). */
int64_t kt_be64(const void *p);

/**
 * Builds @p b (destroyed) into *@p topo and starts a driver on it with
 * application.id @p app_id and the NULL-ended name, value pairs of
 * @p conf (may be NULL). @returns the driver; free both with kd_stop().
 */
ks_test_driver_t *kd_start(ks_builder_t *b,
                           const char *app_id,
                           const char *const *conf,
                           ks_topology_t **topo);
/** Destroys *@p drv and *@p topo (either may be NULL) and clears them. */
void kd_stop(ks_test_driver_t **drv, ks_topology_t **topo);
/** Pipes key -> value (strings) at @p ts into @p topic. */
void kd_pipe(ks_test_driver_t *drv,
             const char *topic,
             const char *key,
             const char *value,
             int64_t ts);

#endif
