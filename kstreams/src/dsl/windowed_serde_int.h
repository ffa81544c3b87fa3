/* The DSL's windowed-key serdes, as the test driver's dumps read them. */
#ifndef KS_WINDOWED_SERDE_INT_H
#define KS_WINDOWED_SERDE_INT_H

#include "serde_int.h"

/** How a windowed key's bytes end. */
typedef enum ks_window_layout_e {
        KS_WINDOW_LAYOUT_NONE,    /**< not a windowed-key serde */
        KS_WINDOW_LAYOUT_TIME,    /**< key, start (8 bytes BE) */
        KS_WINDOW_LAYOUT_SESSION, /**< key, end, start (8 bytes BE each) */
} ks_window_layout_t;

/** The layout of @p serde's bytes; for KS_WINDOW_LAYOUT_TIME, *size_ms
 *  gets the window size (end = start + size). NULL is NONE. */
ks_window_layout_t ks__serde_window_layout(const ks_serde_t *serde,
                                           int64_t *size_ms);
/** true if @p serde is a ks_serde_session_windowed() (dsl_session.c). */
bool ks__serde_is_session_windowed(const ks_serde_t *serde);

#endif
