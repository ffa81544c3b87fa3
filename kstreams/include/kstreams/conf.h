/**
 * @file conf.h
 * @brief Configuration, set by name like librdkafka's.
 *
 * One property table drives validation, defaults and the generated
 * CONFIGURATION.md. A name that is not a kstreams property is handed to
 * librdkafka (validated at once against librdkafka's own table): plain names
 * go to every client, "consumer.X" and "producer.X" to one side only.
 */
#ifndef KSTREAMS_CONF_H
#define KSTREAMS_CONF_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_conf_s ks_conf_t;

/** Returns a new configuration holding only defaults; free with
 *  ks_conf_destroy(). NULL on OOM. */
KS_EXPORT ks_conf_t *ks_conf_new(void);
/** Returns a new copy of @p conf; free with ks_conf_destroy(). */
KS_EXPORT ks_conf_t *ks_conf_dup(const ks_conf_t *conf);
KS_EXPORT void ks_conf_destroy(ks_conf_t *conf);

/**
 * Sets property @p name to @p value. Copies both; the caller keeps
 * ownership.
 * @returns KS_OK; KS_ERR_INVALID_ARG for a bad value or
 *          KS_ERR_UNKNOWN_CONF for an unknown name, with @p errstr saying
 *          why ("num.stream.threads: 0 is below the minimum 1").
 */
KS_EXPORT ks_err_t ks_conf_set(ks_conf_t *conf,
                               const char *name,
                               const char *value,
                               char *errstr,
                               size_t errstr_size);

/**
 * Copies the value of @p name (its default if unset) into @p dest.
 * @returns KS_OK, KS_ERR_NOT_FOUND for an unset librdkafka property or an
 *          unknown name, or KS_ERR_INVALID_ARG if @p dest is too small.
 */
KS_EXPORT ks_err_t ks_conf_get(const ks_conf_t *conf,
                               const char *name,
                               char *dest,
                               size_t dest_size);

/** Appends the property table, as Markdown, to @p out (this is how
 *  CONFIGURATION.md is generated). */
KS_EXPORT ks_err_t ks_conf_properties_markdown(ks_buf_t *out);

#ifdef __cplusplus
}
#endif
#endif
