/* Serde internals: what a serde is, for code that must tell (the windowed
 * serdes of the DSL, found again by the test driver's dumps). */
#ifndef KS_SERDE_INT_H
#define KS_SERDE_INT_H

#include "kstreams/serde.h"

/** @returns the serde's opaque if it serializes with @p ser, else NULL. */
void *ks__serde_opaque_if(const ks_serde_t *serde, ks_serialize_fn *ser);

#endif
