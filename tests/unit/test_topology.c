/* The builder's sticky errors: an invalid step is reported by build(),
 * naming the step, and chained calls after it do not crash. */
#include <kstreams/kstreams.h>
#include <string.h>

#include "ks_check.h"

static bool yes(const void *k, const void *v, void *o) {
        (void)k, (void)v, (void)o;
        return true;
}

static const void *same(ks_arena_t *a, const void *k, const void *v, void *o) {
        (void)a, (void)k, (void)o;
        return v;
}

static void expect_build_error(ks_builder_t *b, const char *want) {
        char err[512]    = "";
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(err, want), "got \"%s\", wanted \"%s\"", err,
                      want);
        ks_builder_destroy(b);
}

START_TEST(unknown_serde_after_map_values_names_the_sink) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_map_values(s, "mv", same, NULL), "out", NULL,
                     NULL);
        expect_build_error(b, "to(out): the value serde is unknown");
}
END_TEST

START_TEST(the_first_error_wins_and_chaining_goes_on) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_t *f  = ks_stream_filter(s, "dup", yes, NULL);
        ks_stream_t *g  = ks_stream_filter(f, "dup", yes, NULL); /* error 1 */
        ks_stream_t *h  = ks_stream_filter(g, NULL, NULL, NULL); /* error 2 */
        ks_stream_to(h, "out", NULL, NULL);
        expect_build_error(b, "dup: duplicate node name");
}
END_TEST

START_TEST(processor_api_checks_parents_and_topics) {
        ks_builder_t *b            = ks_builder_new();
        const char *const topics[] = {"in"};
        ks_builder_add_source(b, "src", topics, 1, ks_serde_string(),
                              ks_serde_string());
        ks_processor_def_t def      = {.process = NULL};
        const char *const parents[] = {"src"};
        ks_builder_add_processor(b, "p", &def, parents, 1);
        expect_build_error(b,
                           "add_processor(p): a process callback is "
                           "required");

        b = ks_builder_new();
        ks_builder_add_source(b, "src", topics, 1, ks_serde_string(),
                              ks_serde_string());
        const char *const missing[] = {"nope"};
        ks_builder_add_sink(b, "sink", "out", ks_serde_string(),
                            ks_serde_string(), missing, 1);
        expect_build_error(b, "sink: parent \"nope\" not found");

        b = ks_builder_new();
        ks_builder_add_source(b, "a", topics, 1, ks_serde_string(),
                              ks_serde_string());
        ks_builder_add_source(b, "b", topics, 1, ks_serde_string(),
                              ks_serde_string());
        expect_build_error(b, "topic in is read by two sources, a and b");
}
END_TEST

START_TEST(bad_pattern_and_empty_topology) {
        ks_builder_t *b = ks_builder_new();
        ks_builder_stream_pattern(b, NULL, "logs-(", ks_serde_string(),
                                  ks_serde_string());
        expect_build_error(b, "bad topic pattern \"logs-(\"");
        expect_build_error(ks_builder_new(), "the topology has no source");
}
END_TEST

START_TEST(derived_names_follow_kafka_streams) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_filter(s, NULL, yes, NULL), "out", NULL, NULL);
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_buf_t d = {0};
        ks_topology_describe(t, &d);
        ck_assert_str_eq(
                d.data,
                "Topologies:\n"
                "   Sub-topology: 0\n"
                "    Source: KSTREAM-SOURCE-0000000000 (topics: [in])\n"
                "      --> KSTREAM-FILTER-0000000001\n"
                "    Processor: KSTREAM-FILTER-0000000001 (stores: [])\n"
                "      --> KSTREAM-SINK-0000000002\n"
                "      <-- KSTREAM-SOURCE-0000000000\n"
                "    Sink: KSTREAM-SINK-0000000002 (topic: out)\n"
                "      <-- KSTREAM-FILTER-0000000001\n\n");
        ks_buf_free(&d);
        ks_topology_destroy(t);
}
END_TEST

START_TEST(building_twice_is_an_error) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(ks_builder_stream(b, "in", ks_serde_string(),
                                       ks_serde_string()),
                     "out", NULL, NULL);
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_null(ks_builder_build(b, err, sizeof(err)));
        ck_assert(strstr(err, "already built"));
        ks_builder_destroy(b);
        ks_topology_destroy(t);
        ks_topology_destroy(NULL);
        ks_builder_destroy(NULL);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("topology");
        TCase *tc = tcase_create("builder");
        tcase_add_test(tc, unknown_serde_after_map_values_names_the_sink);
        tcase_add_test(tc, the_first_error_wins_and_chaining_goes_on);
        tcase_add_test(tc, processor_api_checks_parents_and_topics);
        tcase_add_test(tc, bad_pattern_and_empty_topology);
        tcase_add_test(tc, derived_names_follow_kafka_streams);
        tcase_add_test(tc, building_twice_is_an_error);
        suite_add_tcase(s, tc);
        return s;
}
