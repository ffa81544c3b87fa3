/* The fast JSON decode path (kstreams/json.h): value types, paths,
 * escapes, malformed documents, parser reuse, and no allocation per
 * document once warm. */
#include "ks_check.h"

#include <kstreams/json.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counting allocations: the test program's own malloc family interposes
 * libc's for libkstreams, libsimdjson and libstdc++ alike. Sanitizers bring
 * their own allocator, so there the count is not taken. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KS_COUNT_ALLOCS 0
#else
#define KS_COUNT_ALLOCS 1
#endif

#if KS_COUNT_ALLOCS
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static size_t alloc_count;

void *malloc(size_t size) {
        alloc_count++;
        return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
        alloc_count++;
        return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
        alloc_count++;
        return __libc_realloc(p, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
        alloc_count++;
        return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
        alloc_count++;
        return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
        alloc_count++;
        *out = __libc_memalign(alignment, size);
        return *out ? 0 : 12 /* ENOMEM */;
}
#endif

static ks_json_parser_t *parser;
static char errstr[512];

static void setup(void) {
        parser = ks_json_parser_new();
        ck_assert_ptr_nonnull(parser);
        errstr[0] = '\0';
}

static void teardown(void) {
        ks_json_parser_destroy(parser);
}

static ks_json_fields_t *fields_of(const char *const *paths, size_t n) {
        ks_json_fields_t *f =
                ks_json_fields_new(paths, n, errstr, sizeof(errstr));
        ck_assert_msg(f != NULL, "fields_new: %s", errstr);
        return f;
}

static ks_err_t extract(const ks_json_fields_t *f,
                        const char *doc,
                        ks_json_value_t *out) {
        return ks_json_extract(parser, f, doc, strlen(doc), out, errstr,
                               sizeof(errstr));
}

/* Extracts one path from a document that must parse. */
static ks_json_value_t get1(const char *doc, const char *path) {
        ks_json_fields_t *f = fields_of(&path, 1);
        ks_json_value_t v;
        ks_err_t err = extract(f, doc, &v);
        ck_assert_msg(err == KS_OK, "extract %s from %s: %s", path, doc,
                      errstr);
        ks_json_fields_destroy(f);
        return v;
}

static void assert_string(ks_json_value_t v,
                          const char *want,
                          size_t want_len) {
        ck_assert_int_eq(v.type, KS_JSON_STRING);
        ck_assert_uint_eq(v.u.s.len, want_len);
        ck_assert(!memcmp(v.u.s.ptr, want, want_len));
        ck_assert_int_eq(v.u.s.ptr[want_len], '\0');
}

START_TEST(test_value_types) {
        static const char doc[] =
                "{\"s\":\"str\",\"i\":42,\"neg\":-7,\"zero\":0,\"d\":1.5,"
                "\"e\":1e3,\"t\":true,\"f\":false,\"n\":null,"
                "\"o\":{ \"a\" : 1 , \"b\":[ ] },\"a\":[1, \"x\", 2.50],"
                "\"max\":9223372036854775807,\"min\":-9223372036854775808,"
                "\"u\":9223372036854775808,\"umax\":18446744073709551615,"
                "\"huge\":123456789012345678901234,"
                "\"hugeneg\":-9223372036854775809,\"empty\":\"\"}";
        static const char *const paths[] = {
                "s",    "i",    "neg",     "zero",  "d",      "e",   "t",
                "f",    "n",    "o",       "a",     "max",    "min", "u",
                "umax", "huge", "hugeneg", "empty", "missing"};
        enum { N = sizeof(paths) / sizeof(paths[0]) };
        ks_json_fields_t *f = fields_of(paths, N);
        ks_json_value_t v[N];

        ck_assert_uint_eq(ks_json_fields_count(f), N);
        ck_assert_int_eq(extract(f, doc, v), KS_OK);
        assert_string(v[0], "str", 3);
        ck_assert_int_eq(v[1].type, KS_JSON_INT);
        ck_assert_int_eq(v[1].u.i, 42);
        ck_assert_int_eq(v[2].type, KS_JSON_INT);
        ck_assert_int_eq(v[2].u.i, -7);
        ck_assert_int_eq(v[3].type, KS_JSON_INT);
        ck_assert_int_eq(v[3].u.i, 0);
        ck_assert_int_eq(v[4].type, KS_JSON_DOUBLE);
        ck_assert_double_eq(v[4].u.d, 1.5);
        ck_assert_int_eq(v[5].type, KS_JSON_DOUBLE); /* 1e3 is no integer */
        ck_assert_double_eq(v[5].u.d, 1000.0);
        ck_assert_int_eq(v[6].type, KS_JSON_BOOL);
        ck_assert(v[6].u.b);
        ck_assert_int_eq(v[7].type, KS_JSON_BOOL);
        ck_assert(!v[7].u.b);
        ck_assert_int_eq(v[8].type, KS_JSON_NULL);
        ck_assert_int_eq(v[9].type, KS_JSON_OBJECT);
        ck_assert_str_eq(v[9].u.s.ptr, "{\"a\":1,\"b\":[]}");
        ck_assert_uint_eq(v[9].u.s.len, strlen("{\"a\":1,\"b\":[]}"));
        ck_assert_int_eq(v[10].type, KS_JSON_ARRAY);
        ck_assert_str_eq(v[10].u.s.ptr, "[1,\"x\",2.5]");
        ck_assert_int_eq(v[11].type, KS_JSON_INT);
        ck_assert(v[11].u.i == INT64_MAX);
        ck_assert_int_eq(v[12].type, KS_JSON_INT);
        ck_assert(v[12].u.i == INT64_MIN);
        /* Beyond int64: doubles, whatever their size. */
        ck_assert_int_eq(v[13].type, KS_JSON_DOUBLE);
        ck_assert_double_eq(v[13].u.d, 9223372036854775808.0);
        ck_assert_int_eq(v[14].type, KS_JSON_DOUBLE);
        ck_assert_double_eq(v[14].u.d, 18446744073709551615.0);
        ck_assert_int_eq(v[15].type, KS_JSON_DOUBLE);
        ck_assert_double_eq_tol(v[15].u.d, 1.23456789012345678e23, 1e9);
        ck_assert_int_eq(v[16].type, KS_JSON_DOUBLE);
        ck_assert_double_eq(v[16].u.d, -9223372036854775809.0);
        assert_string(v[17], "", 0);
        ck_assert_int_eq(v[18].type, KS_JSON_ABSENT);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_big_integer_rewrite_keeps_strings) {
        /* The oversized-integer fallback must not touch digits inside
         * strings, nor accept a number that is malformed anyway. */
        ks_json_value_t v = get1(
                "{\"s\":\"12345678901234567890123\",\"n\":"
                "-12345678901234567890123,\"k\":[99999999999999999999999]}",
                "s");
        assert_string(v, "12345678901234567890123", 23);
        v = get1("{\"n\":-12345678901234567890123}", "n");
        ck_assert_int_eq(v.type, KS_JSON_DOUBLE);
        ck_assert_double_eq_tol(v.u.d, -1.2345678901234568e22, 1e8);

        const char *path    = "n";
        ks_json_fields_t *f = fields_of(&path, 1);
        ck_assert_int_eq(extract(f, "{\"n\":012345678901234567890123}", &v),
                         KS_ERR_JSON);
        ck_assert_int_eq(extract(f, "{\"n\":1e400}", &v), KS_ERR_JSON);
        ck_assert_int_eq(extract(f, "{\"n\":12345678901234567890123x}", &v),
                         KS_ERR_JSON);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_nested_paths) {
        static const char doc[] =
                "{\"a\":{\"b\":{\"c\":\"deep\",\"n\":3},\"x\":1},"
                "\"s\":\"text\",\"arr\":[{\"b\":1}],\"top\":2}";
        static const char *const paths[] = {"a.b.c", "a.b.n", "a.x",    "a.b",
                                            "s.x",   "arr.b", "a.zz",   "zz.a",
                                            "top",   "a.b.c", "a.b.c.d"};
        enum { N = sizeof(paths) / sizeof(paths[0]) };
        ks_json_fields_t *f = fields_of(paths, N);
        ks_json_value_t v[N];

        ck_assert_int_eq(extract(f, doc, v), KS_OK);
        assert_string(v[0], "deep", 4);
        ck_assert_int_eq(v[1].type, KS_JSON_INT);
        ck_assert_int_eq(v[1].u.i, 3);
        ck_assert_int_eq(v[2].type, KS_JSON_INT);
        ck_assert_int_eq(v[2].u.i, 1);
        /* Both a value and a prefix of other paths. */
        ck_assert_int_eq(v[3].type, KS_JSON_OBJECT);
        ck_assert_str_eq(v[3].u.s.ptr, "{\"c\":\"deep\",\"n\":3}");
        /* Parents that are no objects, and missing members. */
        ck_assert_int_eq(v[4].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[5].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[6].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[7].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[8].type, KS_JSON_INT);
        ck_assert_int_eq(v[8].u.i, 2);
        /* A repeated path fills both slots. */
        assert_string(v[9], "deep", 4);
        ck_assert_int_eq(v[10].type, KS_JSON_ABSENT);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_absent_fields) {
        static const char *const paths[] = {"a", "b.c", "d"};
        ks_json_fields_t *f              = fields_of(paths, 3);
        ks_json_value_t v[3];

        ck_assert_int_eq(extract(f, "{}", v), KS_OK);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(v[i].type, KS_JSON_ABSENT);
        ck_assert_int_eq(extract(f, "{\"b\":{},\"d\":null}", v), KS_OK);
        ck_assert_int_eq(v[0].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[1].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[2].type, KS_JSON_NULL); /* null is not absent */
        /* A field of an earlier document does not linger. */
        ck_assert_int_eq(extract(f, "{\"a\":1}", v), KS_OK);
        ck_assert_int_eq(extract(f, "{\"b\":{\"c\":2}}", v), KS_OK);
        ck_assert_int_eq(v[0].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[1].type, KS_JSON_INT);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_escapes) {
        ks_json_value_t v;

        v = get1("{\"s\":\"caf\\u00e9\"}", "s");
        assert_string(v, "caf\xc3\xa9", 5);
        v = get1("{\"s\":\"say \\\"hi\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}", "s");
        assert_string(v, "say \"hi\" \\ / \b\f\n\r\t", 18);
        /* A surrogate pair is one code point: U+1F600, 4 bytes of UTF-8. */
        v = get1("{\"s\":\"\\ud83d\\ude00!\"}", "s");
        assert_string(v, "\xf0\x9f\x98\x80!", 5);
        /* Raw UTF-8 passes through. */
        v = get1("{\"s\":\"\xe2\x82\xac 5\"}", "s");
        assert_string(v, "\xe2\x82\xac 5", 5);
        /* An escaped NUL is part of the string; len says how long it is. */
        v = get1("{\"s\":\"a\\u0000b\"}", "s");
        assert_string(v, "a\0b", 3);
        /* Keys are unescaped before they are matched. */
        v = get1("{\"a\\u0062\":7}", "ab");
        ck_assert_int_eq(v.type, KS_JSON_INT);
        ck_assert_int_eq(v.u.i, 7);
        /* Objects come back re-escaped, and parse again. */
        v = get1("{\"o\":{\"k\\n\":\"q\\\"\\u0001\\u00e9\"}}", "o");
        ck_assert_int_eq(v.type, KS_JSON_OBJECT);
        ck_assert_str_eq(v.u.s.ptr, "{\"k\\u000a\":\"q\\\"\\u0001\xc3\xa9\"}");
}
END_TEST

START_TEST(test_container_texts_stay_valid) {
        /* Several objects and arrays in one document: each text must stay
         * where its pointer says while the later ones are written. */
        static const char *const paths[] = {"a", "b", "c", "d"};
        ks_json_fields_t *f              = fields_of(paths, 4);
        ks_json_value_t v[4];
        char doc[8192];
        int n = snprintf(doc, sizeof(doc), "{\"a\":[");
        for (int i = 0; i < 500; i++)
                n += snprintf(doc + n, sizeof(doc) - (size_t)n, "%s%d",
                              i ? "," : "", i);
        snprintf(doc + n, sizeof(doc) - (size_t)n,
                 "],\"b\":{\"x\":[true,false,null]},\"c\":[],\"d\":{}}");

        ck_assert_int_eq(extract(f, doc, v), KS_OK);
        ck_assert_int_eq(v[0].type, KS_JSON_ARRAY);
        ck_assert(!strncmp(v[0].u.s.ptr, "[0,1,2,", 7));
        ck_assert(!strcmp(v[0].u.s.ptr + v[0].u.s.len - 8, "498,499]"));
        ck_assert_str_eq(v[1].u.s.ptr, "{\"x\":[true,false,null]}");
        ck_assert_str_eq(v[2].u.s.ptr, "[]");
        ck_assert_str_eq(v[3].u.s.ptr, "{}");

        /* The text of an object is JSON that parses to the same values. */
        const char *xp       = "x";
        ks_json_fields_t *fx = fields_of(&xp, 1);
        char copy[64];
        snprintf(copy, sizeof(copy), "%s", v[1].u.s.ptr);
        ck_assert_int_eq(extract(fx, copy, v), KS_OK);
        ck_assert_int_eq(v[0].type, KS_JSON_ARRAY);
        ck_assert_str_eq(v[0].u.s.ptr, "[true,false,null]");
        ks_json_fields_destroy(fx);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_duplicate_keys_first_wins) {
        static const char *const paths[] = {"a", "o.x", "o.y"};
        ks_json_fields_t *f              = fields_of(paths, 3);
        ks_json_value_t v[3];

        ck_assert_int_eq(
                extract(f,
                        "{\"a\":1,\"o\":{\"x\":\"first\",\"x\":\"second\"},"
                        "\"a\":2,\"o\":{\"x\":\"third\",\"y\":true}}",
                        v),
                KS_OK);
        ck_assert_int_eq(v[0].u.i, 1);
        assert_string(v[1], "first", 5);
        /* The first "o" wins whole: "y" of the second one is not seen. */
        ck_assert_int_eq(v[2].type, KS_JSON_ABSENT);
        ks_json_fields_destroy(f);
}
END_TEST

/* Each of these is malformed and must fail as a whole. */
static const struct {
        const char *name;
        const char *doc;
        size_t len; /* 0: strlen(doc) */
} malformed[] = {
        {"empty", "", 0},
        {"whitespace only", " \n\t ", 0},
        {"truncated", "{\"a\":1,\"b\":\"x", 0},
        {"truncated after colon", "{\"a\":", 0},
        {"unclosed object", "{\"a\":1", 0},
        {"trailing garbage", "{\"a\":1} x", 0},
        {"two documents", "{\"a\":1}{\"a\":2}", 0},
        {"trailing comma", "{\"a\":1,}", 0},
        {"missing comma", "{\"a\":1 \"b\":2}", 0},
        {"missing colon", "{\"a\" 1}", 0},
        {"unquoted key", "{a:1}", 0},
        {"single quotes", "{'a':1}", 0},
        {"bad escape", "{\"a\":\"x\\qy\"}", 0},
        {"short unicode escape", "{\"a\":\"\\u12\"}", 0},
        {"lone high surrogate", "{\"a\":\"\\ud83d\"}", 0},
        {"lone low surrogate", "{\"a\":\"\\ude00x\"}", 0},
        {"raw control char", "{\"a\":\"x\ny\"}", 0},
        {"invalid UTF-8", "{\"a\":\"\xff\"}", 0},
        {"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", 0},
        {"invalid UTF-8 in a key", "{\"\xfe\":1}", 0},
        {"invalid UTF-8 in an unread member", "{\"a\":1,\"z\":\"\x80\"}", 0},
        {"leading zero", "{\"a\":01}", 0},
        {"bad number", "{\"a\":1.}", 0},
        {"bad literal", "{\"a\":tru}", 0},
        {"NaN", "{\"a\":NaN}", 0},
        {"number out of double range", "{\"a\":1e400}", 0},
        {"bad value in an unread member", "{\"a\":1,\"z\":[1,2,}", 0},
        {"embedded NUL", "{\"a\":1}\0", 8},
        {"top-level array", "[1,2]", 0},
        {"top-level string", "\"x\"", 0},
        {"top-level number", "42", 0},
        {"top-level null", "null", 0},
};

START_TEST(test_malformed) {
        static const char *const paths[] = {"a", "z"};
        ks_json_fields_t *f              = fields_of(paths, 2);
        const char *doc                  = malformed[_i].doc;
        size_t len = malformed[_i].len ? malformed[_i].len : strlen(doc);
        ks_json_value_t v[2];

        v[0].type = KS_JSON_INT; /* garbage that must be cleared */
        v[1].type = KS_JSON_STRING;
        errstr[0] = '\0';
        ck_assert_msg(ks_json_extract(parser, f, doc, len, v, errstr,
                                      sizeof(errstr)) == KS_ERR_JSON,
                      "%s: not rejected", malformed[_i].name);
        ck_assert_msg(!strncmp(errstr, "json: ", 6), "%s: errstr \"%s\"",
                      malformed[_i].name, errstr);
        ck_assert_int_eq(v[0].type, KS_JSON_ABSENT);
        ck_assert_int_eq(v[1].type, KS_JSON_ABSENT);

        /* The parser is still good for the next document. */
        ck_assert_int_eq(extract(f, "{\"a\":5}", v), KS_OK);
        ck_assert_int_eq(v[0].u.i, 5);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_error_messages) {
        const char *path    = "a";
        ks_json_fields_t *f = fields_of(&path, 1);
        ks_json_value_t v;

        ck_assert_int_eq(extract(f, "{\"a\":1} x", &v), KS_ERR_JSON);
        ck_assert_msg(!strncmp(errstr, "json: TAPE_ERROR: ", 18), "%s", errstr);
        ck_assert_int_eq(extract(f, "{\"a\":\"\xff\"}", &v), KS_ERR_JSON);
        ck_assert_msg(!strncmp(errstr, "json: UTF8_ERROR: ", 18), "%s", errstr);
        ck_assert_int_eq(extract(f, "[]", &v), KS_ERR_JSON);
        ck_assert_str_eq(errstr, "json: the top-level value is not an object");
        ck_assert_int_eq(
                ks_json_extract(parser, f, NULL, 0, &v, errstr, sizeof(errstr)),
                KS_ERR_JSON);
        ck_assert_msg(!strncmp(errstr, "json: EMPTY: ", 13), "%s", errstr);
        /* A tiny errstr is truncated, not overrun. */
        char tiny[8];
        memset(tiny, 'x', sizeof(tiny));
        ck_assert_int_eq(ks_json_extract(parser, f, "{\"a\":1} x", 9, &v, tiny,
                                         sizeof(tiny)),
                         KS_ERR_JSON);
        ck_assert_str_eq(tiny, "json: T");
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_depth) {
        const char *path    = "a";
        ks_json_fields_t *f = fields_of(&path, 1);
        ks_json_value_t v;
        enum { DEEP = 2000 };
        char *doc = malloc(2 * DEEP + 16);
        size_t n  = 0;

        /* 100 levels are fine... */
        n += (size_t)sprintf(doc, "{\"a\":");
        for (int i = 0; i < 100; i++)
                doc[n++] = '[';
        for (int i = 0; i < 100; i++)
                doc[n++] = ']';
        doc[n++] = '}';
        ck_assert_int_eq(
                ks_json_extract(parser, f, doc, n, &v, errstr, sizeof(errstr)),
                KS_OK);
        ck_assert_int_eq(v.type, KS_JSON_ARRAY);
        /* ...2000 are refused rather than overflowing a stack. */
        n = (size_t)sprintf(doc, "{\"a\":");
        for (int i = 0; i < DEEP; i++)
                doc[n++] = '[';
        for (int i = 0; i < DEEP; i++)
                doc[n++] = ']';
        doc[n++] = '}';
        ck_assert_int_eq(
                ks_json_extract(parser, f, doc, n, &v, errstr, sizeof(errstr)),
                KS_ERR_JSON);
        ck_assert_msg(!strncmp(errstr, "json: DEPTH_ERROR", 17), "%s", errstr);
        free(doc);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_reuse_growing_documents) {
        static const char *const paths[] = {"pad", "n", "o.k"};
        ks_json_fields_t *f              = fields_of(paths, 3);
        ks_json_value_t v[3];
        size_t max = 4 << 20;
        char *doc  = malloc(max + 64);

        /* From a few bytes to 4 MiB and back: every size decodes right. */
        for (size_t pad = 0; pad <= max; pad = pad ? pad * 4 : 1) {
                for (int again = 0; again < 2; again++) {
                        size_t size = again ? pad / 3 : pad;
                        int n = sprintf(doc, "{\"n\":%zu,\"pad\":\"", size);
                        memset(doc + n, 'x', size);
                        n += (int)size;
                        n += sprintf(doc + n, "\",\"o\":{\"k\":%zu}}", size);
                        ck_assert_int_eq(
                                ks_json_extract(parser, f, doc, (size_t)n, v,
                                                errstr, sizeof(errstr)),
                                KS_OK);
                        ck_assert_uint_eq(v[0].u.s.len, size);
                        ck_assert_int_eq(v[0].u.s.ptr[size], '\0');
                        ck_assert(size == 0 || (v[0].u.s.ptr[0] == 'x' &&
                                                v[0].u.s.ptr[size - 1] == 'x'));
                        ck_assert_int_eq(v[1].u.i, (int64_t)size);
                        ck_assert_int_eq(v[2].u.i, (int64_t)size);
                }
        }
        ck_assert_int_eq(extract(f, "{\"n\":1}", v), KS_OK);
        ck_assert_int_eq(v[1].u.i, 1);
        free(doc);
        ks_json_fields_destroy(f);
}
END_TEST

START_TEST(test_no_allocation_when_warm) {
#if KS_COUNT_ALLOCS
        static const char *const paths[] = {"id", "data.amount", "data.tags",
                                            "ts"};
        ks_json_fields_t *f              = fields_of(paths, 4);
        ks_json_value_t v[4];
        char doc[256];

        /* Warm up with the largest document... */
        snprintf(doc, sizeof(doc),
                 "{\"id\":\"%0100d\",\"data\":{\"amount\":1.5,\"tags\":"
                 "[1,2,3,4,5,6,7,8,9]},\"ts\":1}",
                 7);
        ck_assert_int_eq(extract(f, doc, v), KS_OK);
        /* ...then no document of up to that size allocates, nor does a
         * failing one. */
        /* Check's assertions allocate: count the failures, assert after. */
        size_t before = alloc_count;
        int wrong     = 0;
        for (int i = 0; i < 1000; i++) {
                snprintf(doc, sizeof(doc),
                         "{\"id\":\"e%d\",\"data\":{\"amount\":%d.25,"
                         "\"tags\":[%d]},\"ts\":%d}",
                         i, i, i, i);
                wrong += extract(f, doc, v) != KS_OK || v[3].u.i != i;
                wrong += extract(f, "{\"id\":\"x\"", v) != KS_ERR_JSON;
        }
        size_t allocs = alloc_count - before;
        ck_assert_int_eq(wrong, 0);
        ck_assert_uint_eq(allocs, 0);
        ks_json_fields_destroy(f);
#endif
}
END_TEST

START_TEST(test_fields_new_errors) {
        static const char *const bad[] = {"", ".a", "a.", "a..b", "."};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errstr[0] = '\0';
                ck_assert_ptr_null(
                        ks_json_fields_new(&bad[i], 1, errstr, sizeof(errstr)));
                ck_assert_msg(!strncmp(errstr, "json: ", 6), "%s: \"%s\"",
                              bad[i], errstr);
        }
        const char *with_null[] = {"a", NULL};
        ck_assert_ptr_null(
                ks_json_fields_new(with_null, 2, errstr, sizeof(errstr)));
        ck_assert_ptr_null(ks_json_fields_new(NULL, 1, errstr, sizeof(errstr)));

        /* No paths: the document is only validated. */
        ks_json_fields_t *none =
                ks_json_fields_new(NULL, 0, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(none);
        ck_assert_uint_eq(ks_json_fields_count(none), 0);
        ck_assert_int_eq(ks_json_extract(parser, none, "{}", 2, NULL, errstr,
                                         sizeof(errstr)),
                         KS_OK);
        ck_assert_int_eq(ks_json_extract(parser, none, "{", 1, NULL, errstr,
                                         sizeof(errstr)),
                         KS_ERR_JSON);
        ks_json_fields_destroy(none);

        /* Destroying NULL is a no-op. */
        ks_json_fields_destroy(NULL);
        ks_json_parser_destroy(NULL);
}
END_TEST

START_TEST(test_fields_shared_by_parsers) {
        /* One compiled field list, two parsers, interleaved: each parser's
         * results stay its own. */
        static const char *const paths[] = {"k", "o.v"};
        ks_json_fields_t *f              = fields_of(paths, 2);
        ks_json_parser_t *other          = ks_json_parser_new();
        ks_json_value_t a[2], b[2];

        ck_assert_int_eq(extract(f, "{\"k\":\"one\",\"o\":{\"v\":1}}", a),
                         KS_OK);
        const char *doc2 = "{\"o\":{\"v\":2},\"k\":\"two\"}";
        ck_assert_int_eq(ks_json_extract(other, f, doc2, strlen(doc2), b,
                                         errstr, sizeof(errstr)),
                         KS_OK);
        assert_string(a[0], "one", 3);
        assert_string(b[0], "two", 3);
        ck_assert_int_eq(a[1].u.i, 1);
        ck_assert_int_eq(b[1].u.i, 2);
        ks_json_parser_destroy(other);
        ks_json_fields_destroy(f);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("json");
        TCase *tc = tcase_create("extract");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_value_types);
        tcase_add_test(tc, test_big_integer_rewrite_keeps_strings);
        tcase_add_test(tc, test_nested_paths);
        tcase_add_test(tc, test_absent_fields);
        tcase_add_test(tc, test_escapes);
        tcase_add_test(tc, test_container_texts_stay_valid);
        tcase_add_test(tc, test_duplicate_keys_first_wins);
        tcase_add_loop_test(tc, test_malformed, 0,
                            (int)(sizeof(malformed) / sizeof(malformed[0])));
        tcase_add_test(tc, test_error_messages);
        tcase_add_test(tc, test_depth);
        tcase_add_test(tc, test_reuse_growing_documents);
        tcase_add_test(tc, test_no_allocation_when_warm);
        tcase_add_test(tc, test_fields_new_errors);
        tcase_add_test(tc, test_fields_shared_by_parsers);
        suite_add_tcase(s, tc);
        return s;
}
