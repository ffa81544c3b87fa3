/* Every stateless DSL operation, run through the test driver. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void start(ks_builder_t *b) {
        char err[512];
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "build: %s", err);
        ks_builder_destroy(b);
        drv = ks_test_driver_new(topo, NULL, err, sizeof(err));
        ck_assert_msg(drv, "driver: %s", err);
}

static void teardown(void) {
        ks_test_driver_destroy(drv);
        ks_topology_destroy(topo);
        drv  = NULL;
        topo = NULL;
}

static void pipe_ok(const char *topic,
                    const char *key,
                    const char *value,
                    int64_t ts) {
        ks_error_t *e = ks_test_driver_pipe_str(drv, topic, key, value, ts);
        ck_assert_msg(!e, "pipe: %s", e ? ks_error_message(e) : "");
}

/* Reads the next output record and checks key, value and timestamp. */
static void expect(const char *topic,
                   const char *key,
                   const char *value,
                   int64_t ts) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, topic, &r),
                      "no record left in %s (wanted %s=%s)", topic,
                      key ? key : "null", value ? value : "null");
        if (key)
                ck_assert_str_eq(r.key.data, key);
        else
                ck_assert_ptr_null(r.key.data);
        if (value)
                ck_assert_str_eq(r.value.data, value);
        else
                ck_assert_ptr_null(r.value.data);
        if (ts >= 0)
                ck_assert_int_eq(r.timestamp, ts);
}

static void expect_end(const char *topic) {
        ck_assert_uint_eq(ks_test_driver_remaining(drv, topic), 0);
}

static bool starts_with_a(const void *k, const void *v, void *opaque) {
        (void)k, (void)opaque;
        return v && ((const char *)v)[0] == 'a';
}

START_TEST(filter_and_filter_not) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_filter(in, NULL, starts_with_a, NULL), "yes",
                     NULL, NULL);
        ks_stream_to(ks_stream_filter_not(in, NULL, starts_with_a, NULL), "no",
                     NULL, NULL);
        start(b);
        pipe_ok("in", "k1", "apple", 10);
        pipe_ok("in", "k2", "banana", 20);
        pipe_ok("in", "k3", "avocado", 30);
        expect("yes", "k1", "apple", 10);
        expect("yes", "k3", "avocado", 30);
        expect_end("yes");
        expect("no", "k2", "banana", 20);
        expect_end("no");
        ck_assert_uint_eq(ks_test_driver_metric(drv, "records-processed"), 3);
}
END_TEST

static ks_kv_t swap(ks_arena_t *a, const void *k, const void *v, void *o) {
        (void)a, (void)o;
        return (ks_kv_t){v, k}; /* borrowed: both live in the arena */
}

static const void *upper(ks_arena_t *a, const void *k, const void *v, void *o) {
        (void)k, (void)o;
        char *s = ks_arena_strdup(a, v);
        for (char *p = s; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char)(*p - 32);
        return s;
}

static const void *len_of(ks_arena_t *a,
                          const void *k,
                          const void *v,
                          void *o) {
        (void)k, (void)o;
        return ks_arena_int64(a, (int64_t)strlen(v));
}

START_TEST(map_map_values_and_select_key) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_map(in, NULL, swap, NULL), "swapped",
                     ks_serde_string(), ks_serde_string());
        ks_stream_to(ks_stream_map_values(in, NULL, upper, NULL), "upper", NULL,
                     ks_serde_string());
        ks_stream_to(ks_stream_select_key(in, NULL, len_of, NULL), "bylen",
                     ks_serde_int64(), NULL);
        start(b);
        pipe_ok("in", "k", "hello", 5);
        expect("swapped", "hello", "k", 5);
        expect("upper", "k", "HELLO", 5);
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "bylen", &r));
        ck_assert_uint_eq(r.key.len, 8);
        ck_assert_int_eq(((const unsigned char *)r.key.data)[7], 5);
        ck_assert_str_eq(r.value.data, "hello");
}
END_TEST

static void split_words(ks_emitter_t *e,
                        const void *k,
                        const void *v,
                        void *o) {
        (void)k, (void)o;
        ks_arena_t *a = ks_emitter_arena(e);
        const char *s = v;
        while (*s) {
                size_t n = strcspn(s, " ");
                if (n)
                        ks_emit(e, ks_arena_strndup(a, s, n),
                                ks_arena_strndup(a, s, n));
                s += n;
                while (*s == ' ')
                        s++;
        }
}

static void twice(ks_emitter_t *e, const void *k, const void *v, void *o) {
        (void)k, (void)o;
        ks_emit_value(e, v);
        ks_emit(e, "ignored-key", v); /* flat_map_values keeps the key */
}

START_TEST(flat_map_and_flat_map_values) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_flat_map(in, NULL, split_words, NULL), "words",
                     ks_serde_string(), ks_serde_string());
        ks_stream_to(ks_stream_flat_map_values(in, NULL, twice, NULL), "twice",
                     NULL, ks_serde_string());
        start(b);
        pipe_ok("in", "line1", "the quick  fox", 7);
        pipe_ok("in", "line2", "", 8);
        expect("words", "the", "the", 7);
        expect("words", "quick", "quick", 7);
        expect("words", "fox", "fox", 7);
        expect_end("words");
        expect("twice", "line1", "the quick  fox", 7);
        expect("twice", "line1", "the quick  fox", 7);
        expect("twice", "line2", "", 8);
        expect("twice", "line2", "", 8);
        expect_end("twice");
}
END_TEST

static int peeked, foreached;
static void count_peek(const void *k, const void *v, void *o) {
        (void)k, (void)v;
        (*(int *)o)++;
}

START_TEST(peek_and_foreach) {
        peeked = foreached = 0;
        ks_builder_t *b    = ks_builder_new();
        ks_stream_t *in    = ks_builder_stream(b, "in", ks_serde_string(),
                                               ks_serde_string());
        ks_stream_t *p     = ks_stream_peek(in, NULL, count_peek, &peeked);
        ks_stream_foreach(p, NULL, count_peek, &foreached);
        ks_stream_to(p, "out", NULL, NULL);
        start(b);
        pipe_ok("in", "a", "1", 1);
        pipe_ok("in", "b", "2", 2);
        ck_assert_int_eq(peeked, 2);
        ck_assert_int_eq(foreached, 2);
        expect("out", "a", "1", 1);
        expect("out", "b", "2", 2);
}
END_TEST

static bool is_digit(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return v && ((const char *)v)[0] >= '0' && ((const char *)v)[0] <= '9';
}

START_TEST(split_branches_first_match_wins_and_default_takes_the_rest) {
        ks_builder_t *b  = ks_builder_new();
        ks_stream_t *in  = ks_builder_stream(b, "in", ks_serde_string(),
                                             ks_serde_string());
        ks_branched_t *s = ks_stream_split(in, "split-");
        ks_stream_to(ks_branch(s, "a", starts_with_a, NULL), "a", NULL, NULL);
        ks_stream_to(ks_branch(s, "digit", is_digit, NULL), "digit", NULL,
                     NULL);
        ks_stream_to(ks_branch_default(s, NULL), "other", NULL, NULL);
        start(b);
        pipe_ok("in", "1", "apple", 1);
        pipe_ok("in", "2", "42", 2);
        pipe_ok("in", "3", "zebra", 3);
        pipe_ok("in", "4", "a1", 4);
        expect("a", "1", "apple", 1);
        expect("a", "4", "a1", 4);
        expect_end("a");
        expect("digit", "2", "42", 2);
        expect_end("digit");
        expect("other", "3", "zebra", 3);
        expect_end("other");
        ks_buf_t d = {0};
        ks_topology_describe(topo, &d);
        ck_assert_msg(strstr(d.data, "Processor: split-a (stores: [])"), "%s",
                      d.data);
        ck_assert(strstr(d.data, "Processor: split-default"));
        ks_buf_free(&d);
}
END_TEST

START_TEST(merge_interleaves_both_streams) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *x =
                ks_builder_stream(b, "x", ks_serde_string(), ks_serde_string());
        ks_stream_t *y =
                ks_builder_stream(b, "y", ks_serde_string(), ks_serde_string());
        ks_stream_to(ks_stream_merge(x, y, NULL), "out", NULL, NULL);
        start(b);
        pipe_ok("x", "a", "1", 1);
        pipe_ok("y", "b", "2", 2);
        pipe_ok("x", "c", "3", 3);
        expect("out", "a", "1", 1);
        expect("out", "b", "2", 2);
        expect("out", "c", "3", 3);
        ck_assert_int_eq(ks_topology_subtopology_count(topo), 1);
}
END_TEST

static const char *route(ks_arena_t *a, const void *k, const void *v, void *o) {
        (void)a, (void)k, (void)o;
        return ((const char *)v)[0] == 'a' ? "route-a" : "route-other";
}

START_TEST(to_with_a_topic_per_record) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to_dynamic(in, NULL, route, NULL, NULL, NULL);
        start(b);
        pipe_ok("in", "1", "apple", 1);
        pipe_ok("in", "2", "berry", 2);
        expect("route-a", "1", "apple", 1);
        expect("route-other", "2", "berry", 2);
}
END_TEST

START_TEST(sources_from_several_topics_and_a_pattern) {
        ks_builder_t *b          = ks_builder_new();
        const char *const many[] = {"t1", "t2"};
        ks_stream_to(
                ks_builder_stream_topics(b, NULL, many, 2, ks_serde_string(),
                                         ks_serde_string()),
                "from-many", NULL, NULL);
        ks_stream_to(
                ks_builder_stream_pattern(b, NULL, "logs-[a-z]+",
                                          ks_serde_string(), ks_serde_string()),
                "from-pattern", NULL, NULL);
        start(b);
        pipe_ok("t1", "a", "1", 1);
        pipe_ok("t2", "b", "2", 2);
        pipe_ok("logs-web", "c", "3", 3);
        pipe_ok("logs-db", "d", "4", 4);
        pipe_ok("logs-9", "e", "5", 5);    /* no match: digits */
        pipe_ok("xlogs-web", "f", "6", 6); /* anchored: no match */
        expect("from-many", "a", "1", 1);
        expect("from-many", "b", "2", 2);
        expect_end("from-many");
        expect("from-pattern", "c", "3", 3);
        expect("from-pattern", "d", "4", 4);
        expect_end("from-pattern");
}
END_TEST

START_TEST(null_keys_and_tombstones_flow_through) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(in, "out", NULL, NULL);
        start(b);
        pipe_ok("in", NULL, "v", 1);
        pipe_ok("in", "k", NULL, 2);
        expect("out", NULL, "v", 1);
        expect("out", "k", NULL, 2);
}
END_TEST

/* A Processor API node that adds a header and forwards to one named child,
 * and counts records per task in its state. */
typedef struct counter_s {
        int seen;
} counter_t;

static ks_err_t tag_init(ks_ctx_t *ctx, void **state, void *opaque) {
        (void)ctx, (void)opaque;
        *state = calloc(1, sizeof(counter_t));
        return *state ? KS_OK : KS_ERR_NOMEM;
}

static ks_err_t tag_process(ks_ctx_t *ctx,
                            const void *k,
                            const void *v,
                            void *state,
                            void *opaque) {
        counter_t *c = state;
        (void)opaque;
        c->seen++;
        char n[16];
        snprintf(n, sizeof(n), "%d", c->seen);
        ks_ctx_header_add(ctx, "seen", n, strlen(n));
        const ks_header_t *src = ks_ctx_header_last(ctx, "source");
        if (src && !strcmp(src->value.data, "left"))
                return ks_ctx_forward_to(ctx, "left-sink", k, v);
        return ks_ctx_forward_to(ctx, "right-sink", k, v);
}

static void tag_close(ks_ctx_t *ctx, void *state, void *opaque) {
        (void)ctx, (void)opaque;
        free(state);
}

START_TEST(processor_api_headers_and_named_children) {
        ks_builder_t *b            = ks_builder_new();
        const char *const topics[] = {"in"};
        ks_builder_add_source(b, "src", topics, 1, ks_serde_string(),
                              ks_serde_string());
        ks_processor_def_t def = {
                .init = tag_init, .process = tag_process, .close = tag_close};
        const char *const p1[] = {"src"};
        ks_builder_add_processor(b, "tag", &def, p1, 1);
        const char *const p2[] = {"tag"};
        ks_builder_add_sink(b, "left-sink", "left", ks_serde_string(),
                            ks_serde_string(), p2, 1);
        ks_builder_add_sink(b, "right-sink", "right", ks_serde_string(),
                            ks_serde_string(), p2, 1);
        start(b);
        ks_header_t h = {"source", {"left", 4}};
        ck_assert_ptr_null(
                ks_test_driver_pipe(drv, "in", -1, "k", 1, "v", 1, 9, &h, 1));
        pipe_ok("in", "k2", "v2", 10);
        ks_test_record_t r;
        ck_assert(ks_test_driver_read(drv, "left", &r));
        ck_assert_uint_eq(r.header_cnt, 2);
        ck_assert_str_eq(r.headers[0].name, "source");
        ck_assert_str_eq(r.headers[1].name, "seen");
        ck_assert_str_eq(r.headers[1].value.data, "1");
        ck_assert(ks_test_driver_read(drv, "right", &r));
        ck_assert_str_eq(r.key.data, "k2");
        ck_assert_str_eq(r.headers[0].value.data, "2");
        ks_buf_t d = {0};
        ks_topology_describe(topo, &d);
        ck_assert_str_eq(d.data,
                         "Topologies:\n"
                         "   Sub-topology: 0\n"
                         "    Source: src (topics: [in])\n"
                         "      --> tag\n"
                         "    Processor: tag (stores: [])\n"
                         "      --> left-sink, right-sink\n"
                         "      <-- src\n"
                         "    Sink: left-sink (topic: left)\n"
                         "      <-- tag\n"
                         "    Sink: right-sink (topic: right)\n"
                         "      <-- tag\n\n");
        ks_buf_free(&d);
}
END_TEST

static ks_err_t meta_process(ks_ctx_t *ctx,
                             const void *k,
                             const void *v,
                             void *state,
                             void *opaque) {
        (void)v, (void)state, (void)opaque;
        char *s = ks_arena_alloc(ks_ctx_arena(ctx), 128);
        snprintf(s, 128, "%s/%d/%lld/%lld/%s", ks_ctx_topic(ctx),
                 (int)ks_ctx_partition(ctx), (long long)ks_ctx_offset(ctx),
                 (long long)ks_ctx_timestamp(ctx), ks_ctx_task_id(ctx));
        return ks_ctx_forward_ts(ctx, NULL, k, s, 1000);
}

START_TEST(process_in_the_dsl_sees_record_metadata) {
        ks_builder_t *b        = ks_builder_new();
        ks_stream_t *in        = ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_string());
        ks_processor_def_t def = {.process = meta_process};
        ks_stream_to(ks_stream_process(in, "meta", &def), "out",
                     ks_serde_string(), ks_serde_string());
        start(b);
        ks_test_driver_create_topic(drv, "in", 1);
        pipe_ok("in", "a", "x", 77);
        pipe_ok("in", "b", "y", 78);
        expect("out", "a", "in/0/0/77/0_0", 1000);
        expect("out", "b", "in/0/1/78/0_0", 1000);
}
END_TEST

static bool short_value(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return strlen(v) < 4;
}

static const void *grow(ks_arena_t *a, const void *k, const void *v, void *o) {
        (void)k, (void)o;
        size_t n = strlen(v);
        char *s  = ks_arena_alloc(a, n + 2);
        memcpy(s, v, n);
        s[n]     = '+';
        s[n + 1] = '\0';
        return s;
}

/* A loop: a sub-topology writes back into a topic it reads (first seen
 * while processing, so its queue is created mid-record). */
START_TEST(a_topology_feeding_its_own_input_terminates) {
        ks_builder_t *b            = ks_builder_new();
        const char *const topics[] = {"seed", "loop"};
        ks_stream_t *in            = ks_builder_stream_topics(
                           b, NULL, topics, 2, ks_serde_string(), ks_serde_string());
        ks_stream_t *more = ks_stream_map_values(
                ks_stream_filter(in, NULL, short_value, NULL), NULL, grow,
                NULL);
        ks_stream_to(more, "loop", NULL, ks_serde_string());
        start(b);
        pipe_ok("seed", "k", "a", 1);
        expect("loop", "k", "a+", 1);
        expect("loop", "k", "a++", 1);
        expect("loop", "k", "a+++", 1);
        expect_end("loop");
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("dsl");
        TCase *tc = tcase_create("stateless");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, filter_and_filter_not);
        tcase_add_test(tc, map_map_values_and_select_key);
        tcase_add_test(tc, flat_map_and_flat_map_values);
        tcase_add_test(tc, peek_and_foreach);
        tcase_add_test(
                tc, split_branches_first_match_wins_and_default_takes_the_rest);
        tcase_add_test(tc, merge_interleaves_both_streams);
        tcase_add_test(tc, to_with_a_topic_per_record);
        tcase_add_test(tc, sources_from_several_topics_and_a_pattern);
        tcase_add_test(tc, null_keys_and_tombstones_flow_through);
        tcase_add_test(tc, processor_api_headers_and_named_children);
        tcase_add_test(tc, process_in_the_dsl_sees_record_metadata);
        tcase_add_test(tc, a_topology_feeding_its_own_input_terminates);
        suite_add_tcase(s, tc);
        return s;
}
