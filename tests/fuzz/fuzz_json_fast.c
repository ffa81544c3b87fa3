/* Fuzz target: the fast JSON decode path (ks_json_extract(), simdjson).
 * Checks what the header promises beyond "no crash": a failed document
 * leaves every field KS_JSON_ABSENT, strings and texts are NUL-terminated
 * at their length, and a repeated path gets the value of its first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kstreams/json.h>

static const char *const paths[] = {
        "event_id", "timestamp", "data",     "data.amount", "data.a.b.c",
        "a",        "a.b",       "event_id", "n",           "list",
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ks_json_parser_t *parser;
        static ks_json_fields_t *fields;
        char errstr[256];
        ks_json_value_t out[NPATHS];
        if (!parser) {
                parser = ks_json_parser_new();
                fields = ks_json_fields_new(paths, NPATHS, errstr,
                                            sizeof(errstr));
                if (!parser || !fields)
                        abort();
        }
        ks_err_t err = ks_json_extract(parser, fields, data, size, out, errstr,
                                       sizeof(errstr));
        for (size_t i = 0; i < NPATHS; i++) {
                if (err && out[i].type != KS_JSON_ABSENT)
                        abort(); /* a bad document must not leak values */
                if (out[i].type == KS_JSON_STRING ||
                    out[i].type == KS_JSON_OBJECT ||
                    out[i].type == KS_JSON_ARRAY) {
                        if (out[i].u.s.ptr[out[i].u.s.len] != '\0')
                                abort();
                }
        }
        /* "event_id" is listed twice: both slots hold the same value. */
        if (!err &&
            (out[0].type != out[7].type ||
             (out[0].type == KS_JSON_STRING &&
              (out[0].u.s.len != out[7].u.s.len ||
               memcmp(out[0].u.s.ptr, out[7].u.s.ptr, out[0].u.s.len)))))
                abort();
        return 0;
}
