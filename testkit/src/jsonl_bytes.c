/* Bytes in JSON lines (see jsonl_bytes.h). Hand-written because none of
 * our dependencies exports base64 (jansson, librdkafka and libcurl keep
 * theirs internal) and it is 40 lines, not worth a new library. */
#include "jsonl_bytes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The length of the well-formed UTF-8 sequence at p (at most n bytes
 * left), 0 if ill-formed. Ranges as in Unicode's table 3-7. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
        unsigned char c = p[0];
        if (c < 0x80)
                return 1;
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
        } else {
                return 0;
        }
        if (n < len || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return len;
}

bool ks__utf8_valid(const void *data, size_t len) {
        const unsigned char *p = data;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(p + i, len - i);
                if (!n)
                        return false;
                i += n;
        }
        return true;
}

char *ks__utf8_lossy(const void *data, size_t len, size_t *out_len) {
        const unsigned char *p = data;
        /* Each byte becomes at most 3 (U+FFFD). */
        char *out = malloc(len * 3 + 1);
        size_t o  = 0;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(p + i, len - i);
                if (n) {
                        memcpy(out + o, p + i, n);
                        o += n;
                        i += n;
                        continue;
                }
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
                i++;
        }
        out[o]   = '\0';
        *out_len = o;
        return out;
}

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ks__base64_encode(const void *data, size_t len) {
        const unsigned char *p = data;
        char *out              = malloc((len + 2) / 3 * 4 + 1);
        size_t o               = 0;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v   = (uint32_t)p[i] << 16;
                size_t avail = len - i;
                if (avail > 1)
                        v |= (uint32_t)p[i + 1] << 8;
                if (avail > 2)
                        v |= p[i + 2];
                out[o++] = b64_alphabet[(v >> 18) & 63];
                out[o++] = b64_alphabet[(v >> 12) & 63];
                out[o++] = avail > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
                out[o++] = avail > 2 ? b64_alphabet[v & 63] : '=';
        }
        out[o] = '\0';
        return out;
}

static int b64_value(char c) {
        const char *at = c ? strchr(b64_alphabet, c) : NULL;
        return at ? (int)(at - b64_alphabet) : -1;
}

void *ks__base64_decode(const char *text, size_t text_len, size_t *out_len) {
        if (text_len % 4)
                return NULL;
        unsigned char *out = malloc(text_len / 4 * 3 + 1);
        size_t o           = 0;
        if (!out)
                return NULL;
        for (size_t i = 0; i < text_len; i += 4) {
                bool last = i + 4 == text_len;
                int pad =
                        last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
                if (pad == 1 && text[i + 2] == '=')
                        goto bad; /* "x=y=" */
                uint32_t v = 0;
                for (int k = 0; k < 4 - pad; k++) {
                        int d = b64_value(text[i + k]);
                        if (d < 0)
                                goto bad;
                        v |= (uint32_t)d << (18 - 6 * k);
                }
                out[o++] = (unsigned char)(v >> 16);
                if (pad < 2)
                        out[o++] = (unsigned char)(v >> 8);
                if (pad < 1)
                        out[o++] = (unsigned char)v;
        }
        *out_len = o;
        return out;
bad:
        free(out);
        return NULL;
}
