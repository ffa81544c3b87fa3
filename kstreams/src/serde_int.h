/* Serde internals: what a serde is, for the code that must tell (the test
 * driver's dumps, which write windowed keys as text plus bounds). */
#ifndef KS_SERDE_INT_H
#define KS_SERDE_INT_H

#include "kstreams/serde.h"

/** How a windowed key's bytes end. */
typedef enum ks_window_layout_e {
        KS_WINDOW_LAYOUT_NONE,    /**< not a windowed-key serde */
        KS_WINDOW_LAYOUT_TIME,    /**< key, start (8 bytes BE) */
        KS_WINDOW_LAYOUT_SESSION, /**< key, end, start (8 bytes BE each) */
} ks_window_layout_t;

/** @returns the serde's opaque if it serializes with @p ser, else NULL. */
void *ks__serde_opaque_if(const ks_serde_t *serde, ks_serialize_fn *ser);

/** The layout of @p serde's bytes; for KS_WINDOW_LAYOUT_TIME, *size_ms
 *  gets the window size (end = start + size). NULL is NONE. */
KS_EXPORT ks_window_layout_t ks__serde_window_layout(const ks_serde_t *serde,
                                                     int64_t *size_ms);
/** true if @p serde is a ks_serde_session_windowed() (dsl_session.c). */
bool ks__serde_is_session_windowed(const ks_serde_t *serde);

#endif
