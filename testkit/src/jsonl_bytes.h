/* Bytes in JSON lines: UTF-8 checks, a readable lossy form, and base64
 * (RFC 4648, with padding) for the exact bytes JSON strings cannot hold. */
#ifndef KS_JSONL_BYTES_H
#define KS_JSONL_BYTES_H

#include <stdbool.h>
#include <stddef.h>

#include "kstreams/common.h"

/** true if @p data is well-formed UTF-8 (no overlongs, no surrogates). */
bool ks__utf8_valid(const void *data, size_t len);

/** @p data with every byte of an ill-formed sequence as U+FFFD: a new
 *  NUL-terminated string (free()), *out_len its length; NULL on ENOMEM. */
char *ks__utf8_lossy(const void *data, size_t len, size_t *out_len);

/** Base64 of @p data: a new NUL-terminated string (free()); NULL on
 *  ENOMEM. */
char *ks__base64_encode(const void *data, size_t len);

/** Decodes base64 @p text (padding required, no whitespace) into a new
 *  buffer (free(); never NULL on success, even for 0 bytes), *out_len its
 *  length. @returns NULL if @p text is not base64 or on ENOMEM. */
void *ks__base64_decode(const char *text, size_t text_len, size_t *out_len);

#endif
