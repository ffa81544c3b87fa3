/* Fixed-width big-endian integers, the byte order of Java's serializers,
 * of windowed keys and of our store layouts. */
#ifndef KS_BYTES_INT_H
#define KS_BYTES_INT_H

#include <stdint.h>

void ks__be64_put(unsigned char *out, int64_t v);
int64_t ks__be64_get(const void *p);

#endif
