/* The partition plan (copartition.c) that both the runtime's start-up
 * (admin.c) and the test driver size topics with: repartition topics that
 * feed a join take their co-partitioned partner's count, as Kafka Streams'
 * CopartitionedTopicsEnforcer does, and what cannot be reconciled is an
 * error naming the topics. */
#include <kstreams/kstreams.h>
#include <stdio.h>
#include <string.h>

#include "copartition_int.h"
#include "ks_check.h"

#define APP "app"

static ks_topology_t *topo;
static ks_partition_plan_t plan;

static void teardown(void) {
        ks__partition_plan_clear(&plan);
        ks_topology_destroy(topo);
        topo = NULL;
}

static const void *first_char(ks_arena_t *a,
                              const void *k,
                              const void *v,
                              void *o) {
        (void)k, (void)o;
        char *s = ks_arena_alloc(a, 2);
        s[0]    = *(const char *)v;
        s[1]    = '\0';
        return s;
}

static const void *plus(ks_arena_t *a,
                        const void *k,
                        const void *l,
                        const void *r,
                        void *o) {
        (void)a, (void)k, (void)r, (void)o;
        return l;
}

static ks_stream_t *stream(ks_builder_t *b, const char *topic) {
        return ks_builder_stream(b, topic, ks_serde_string(),
                                 ks_serde_string());
}

/* select_key, then an explicit repartition named @p name (0: unsized). */
static ks_stream_t *rekeyed(ks_builder_t *b,
                            const char *topic,
                            const char *name,
                            int32_t partitions) {
        return ks_stream_repartition(
                ks_stream_select_key(stream(b, topic), NULL, first_char, NULL),
                name, ks_serde_string(), ks_serde_string(), partitions);
}

static void build(ks_builder_t *b) {
        char err[512];
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "build: %s", err);
        ks_builder_destroy(b);
}

static ks_error_t *run(const ks_topic_count_t *topics,
                       int cnt,
                       int32_t default_partitions) {
        return ks__partition_plan(topo, APP, topics, cnt, default_partitions,
                                  &plan);
}

static void plan_ok(const ks_topic_count_t *topics, int cnt) {
        ks_error_t *e = run(topics, cnt, 0);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
}

static void plan_fails(const ks_topic_count_t *topics,
                       int cnt,
                       const char *want) {
        ks_error_t *e = run(topics, cnt, 0);
        ck_assert_msg(e, "wanted an error: %s", want);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_TOPOLOGY);
        ck_assert_msg(strstr(ks_error_message(e), want),
                      "got \"%s\", wanted \"%s\"", ks_error_message(e), want);
        ks_error_destroy(e);
        ck_assert_ptr_null(plan.sub_partitions);
}

static const ks_node_t *node(const char *name) {
        for (int i = 0; i < topo->node_cnt; i++)
                if (!strcmp(topo->nodes[i]->name, name))
                        return topo->nodes[i];
        ck_abort_msg("no node %s", name);
        return NULL;
}

/* The planned count of the repartition topic "<name>-repartition", which
 * its sink and its source must agree on. */
static int32_t topic_count(const char *name) {
        char sink[300], source[300];
        snprintf(sink, sizeof(sink), "%s-repartition-sink", name);
        snprintf(source, sizeof(source), "%s-repartition-source", name);
        int32_t w = plan.node_partitions[node(sink)->id];
        ck_assert_int_eq(plan.node_partitions[node(source)->id], w);
        return w;
}

static int32_t sub_count(const char *node_name) {
        return plan.sub_partitions[node(node_name)->subtopology];
}

/* in (2) -> select_key -> repartition "rk" -> join table tbl (@p tbl). */
static void rekeyed_stream_joins_table(int32_t rk_partitions) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "tbl", ks_serde_string(),
                                           ks_serde_string(), "rows");
        ks_stream_to(ks_stream_join_table(rekeyed(b, "in", "rk", rk_partitions),
                                          t, "j", plus, NULL),
                     "out", ks_serde_string(), ks_serde_string());
        build(b);
}

START_TEST(a_repartition_feeding_a_join_takes_the_tables_count) {
        rekeyed_stream_joins_table(0);
        /* The repartition topic that exists with the old, upstream count
         * does not sway the plan: the caller compares it. */
        ks_topic_count_t topics[] = {
                {"in", 2}, {"tbl", 3}, {"out", 7}, {APP "-rk-repartition", 2}};
        plan_ok(topics, 4);
        ck_assert_int_eq(topic_count("rk"), 3);
        ck_assert_int_eq(sub_count("j"), 3);
        ck_assert_int_eq(sub_count("rk-repartition-sink"), 2);
}
END_TEST

START_TEST(a_repartition_given_the_tables_count_is_accepted) {
        rekeyed_stream_joins_table(3);
        ks_topic_count_t topics[] = {{"in", 2}, {"tbl", 3}};
        plan_ok(topics, 2);
        ck_assert_int_eq(topic_count("rk"), 3);
        ck_assert_int_eq(sub_count("j"), 3);
}
END_TEST

START_TEST(a_repartition_given_another_count_than_the_table_fails) {
        rekeyed_stream_joins_table(4);
        ks_topic_count_t topics[] = {{"in", 2}, {"tbl", 3}};
        plan_fails(topics, 2,
                   "reads topics that are not co-partitioned: tbl has 3 "
                   "partitions, " APP "-rk-repartition was given 4; give");
}
END_TEST

START_TEST(two_source_topics_with_different_counts_fail) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "tbl", ks_serde_string(),
                                           ks_serde_string(), "rows");
        ks_stream_to(ks_stream_join_table(stream(b, "in"), t, "j", plus, NULL),
                     "out", ks_serde_string(), ks_serde_string());
        build(b);
        ks_topic_count_t topics[] = {{"in", 2}, {"tbl", 3}};
        /* The message the runtime has always given (tests/system). */
        plan_fails(topics, 2,
                   "sub-topology 0 reads topics that are not co-partitioned: "
                   "tbl has 3 partitions, in has 2; give them the same "
                   "partition count");
}
END_TEST

/* Both sides re-keyed: a group of repartition topics only. */
static void two_rekeyed_streams_join(int32_t left, int32_t right) {
        ks_builder_t *b     = ks_builder_new();
        ks_join_windows_t w = {.before_ms = 10, .after_ms = 10};
        ks_stream_t *l      = rekeyed(b, "l", "lk", left);
        ks_stream_t *r      = rekeyed(b, "r", "rk", right);
        ks_stream_t *joined =
                ks_stream_join_stream(l, r, "j", plus, NULL, w, NULL, NULL);
        ks_stream_t *regroup = ks_stream_repartition(
                ks_stream_select_key(joined, NULL, first_char, NULL), "after",
                ks_serde_string(), ks_serde_string(), 0);
        ks_stream_to(regroup, "out", ks_serde_string(), ks_serde_string());
        build(b);
}

START_TEST(repartition_topics_alone_take_the_largest_upstream_count) {
        two_rekeyed_streams_join(0, 0);
        ks_topic_count_t topics[] = {{"l", 2}, {"r", 5}};
        plan_ok(topics, 2);
        ck_assert_int_eq(topic_count("lk"), 5);
        ck_assert_int_eq(topic_count("rk"), 5);
        ck_assert_int_eq(sub_count("j-this-join"), 5);
        /* Downstream of the join: sized from the join's tasks, after the
         * coercion. */
        ck_assert_int_eq(topic_count("after"), 5);
}
END_TEST

START_TEST(a_given_count_fixes_a_group_of_repartition_topics) {
        two_rekeyed_streams_join(4, 0);
        ks_topic_count_t topics[] = {{"l", 2}, {"r", 5}};
        plan_ok(topics, 2);
        ck_assert_int_eq(topic_count("lk"), 4);
        ck_assert_int_eq(topic_count("rk"), 4);
        ck_assert_int_eq(topic_count("after"), 4);
        ck_assert_int_eq(sub_count("lk-repartition-sink"), 2);
        ck_assert_int_eq(sub_count("rk-repartition-sink"), 5);
}
END_TEST

START_TEST(two_given_counts_that_differ_fail) {
        two_rekeyed_streams_join(4, 6);
        ks_topic_count_t topics[] = {{"l", 2}, {"r", 5}};
        plan_fails(topics, 2,
                   "not co-partitioned: " APP
                   "-lk-repartition was given 4 "
                   "partitions, " APP "-rk-repartition was given 6");
}
END_TEST

START_TEST(without_a_join_a_repartition_keeps_its_upstream_count) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(rekeyed(b, "in", "rk", 0), "out", ks_serde_string(),
                     ks_serde_string());
        build(b);
        ks_topic_count_t topics[] = {{"in", 6}, {"out", 1}};
        plan_ok(topics, 2);
        ck_assert_int_eq(topic_count("rk"), 6);
}
END_TEST

START_TEST(a_pattern_source_does_not_count_the_apps_repartition_topic) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream_pattern(
                 b, NULL, "app-.*", ks_serde_string(), ks_serde_string());
        ks_stream_to(ks_stream_repartition(
                             ks_stream_select_key(s, NULL, first_char, NULL),
                             "rk", ks_serde_string(), ks_serde_string(), 0),
                     "out", ks_serde_string(), ks_serde_string());
        build(b);
        ks_topic_count_t topics[] = {{"app-x", 2}, {APP "-rk-repartition", 9}};
        plan_ok(topics, 2);
        ck_assert_int_eq(topic_count("rk"), 2);
}
END_TEST

START_TEST(a_repartition_from_a_pattern_that_matches_nothing) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream_pattern(
                 b, NULL, "nothing-.*", ks_serde_string(), ks_serde_string());
        ks_stream_to(ks_stream_repartition(
                             ks_stream_select_key(s, NULL, first_char, NULL),
                             "rk", ks_serde_string(), ks_serde_string(), 0),
                     "out", ks_serde_string(), ks_serde_string());
        build(b);
        /* The runtime passes no default: no size, a clear error. */
        plan_fails(NULL, 0,
                   "repartition topic " APP
                   "-rk-repartition cannot "
                   "be sized");
        /* The driver passes its default partition count. */
        ks_error_t *e = run(NULL, 0, 2);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        ck_assert_int_eq(topic_count("rk"), 2);
}
END_TEST

START_TEST(a_missing_source_topic_is_not_found) {
        rekeyed_stream_joins_table(0);
        ks_topic_count_t topics[] = {{"in", 2}};
        ks_error_t *e             = run(topics, 1, 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_NOT_FOUND);
        ck_assert_msg(strstr(ks_error_message(e), "tbl"), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("copartition");
        TCase *tc = tcase_create("plan");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, a_repartition_feeding_a_join_takes_the_tables_count);
        tcase_add_test(tc, a_repartition_given_the_tables_count_is_accepted);
        tcase_add_test(tc,
                       a_repartition_given_another_count_than_the_table_fails);
        tcase_add_test(tc, two_source_topics_with_different_counts_fail);
        tcase_add_test(
                tc, repartition_topics_alone_take_the_largest_upstream_count);
        tcase_add_test(tc, a_given_count_fixes_a_group_of_repartition_topics);
        tcase_add_test(tc, two_given_counts_that_differ_fail);
        tcase_add_test(tc,
                       without_a_join_a_repartition_keeps_its_upstream_count);
        tcase_add_test(
                tc, a_pattern_source_does_not_count_the_apps_repartition_topic);
        tcase_add_test(tc, a_repartition_from_a_pattern_that_matches_nothing);
        tcase_add_test(tc, a_missing_source_topic_is_not_found);
        suite_add_tcase(s, tc);
        return s;
}
