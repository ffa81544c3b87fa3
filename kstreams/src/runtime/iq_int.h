/* Interactive queries' internals shared by iq.c (the registry, finding
 * and routing, point reads) and iq_iter.c (range and window iterators). */
#ifndef KS_IQ_INT_H
#define KS_IQ_INT_H

#include "kstreams/store.h"
#include "streams_int.h"

typedef struct ks_iq_task_s {
        const ks_task_t *task;
        int sub;
        int32_t partition;
        ks_state_env_t *env;
        bool ready;   /* restored: queries may read it */
        bool closing; /* being unregistered: no new query */
        int users;    /* queries reading it now */
} iq_task_t;

typedef struct store_ref_s {
        const ks_store_spec_t *spec;
        int sub;
} store_ref_t;

/** NULL if the instance's state allows queries. */
ks_error_t *ks__iq_check_state(ks_streams_t *s);
/** The store @p name, of kind @p want (-1: any kind). */
ks_error_t *ks__iq_find_store(ks_streams_t *s,
                              const char *name,
                              int want,
                              store_ref_t *out);
/** The retriable error of a partition that is restoring here. */
ks_error_t *ks__iq_restoring(const char *store, int32_t partition);
/** Holds the ready task of (sub, partition) for one read: release it. */
ks_error_t *ks__iq_acquire(ks_streams_t *s,
                           const char *store,
                           int sub,
                           int32_t partition,
                           iq_task_t **out);
void ks__iq_release(ks_streams_t *s, iq_task_t *it);
/** NULL if (sub, partition) is hosted here and ready. */
ks_error_t *ks__iq_probe(ks_streams_t *s,
                         const char *store,
                         int sub,
                         int32_t partition);
/** The key's store, sub-topology and partition (and the partition count
 *  when @p count is not NULL), checking what a read needs. */
ks_error_t *ks__iq_route(ks_streams_t *s,
                         const char *store,
                         int kind,
                         ks_bytes_t key,
                         store_ref_t *ref,
                         int32_t *partition,
                         int32_t *count);

#endif
