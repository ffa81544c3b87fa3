/* Joins through the test driver: stream-table, windowed stream-stream
 * (inner, left, outer, with Kafka Streams 3.x's deferred left/outer
 * results) and table-table. Expected outputs are worked out by hand in the
 * comments from Kafka Streams' KStreamKTableJoin, KStreamKStreamJoin and
 * KTableKTable*Join. The joiner writes "left+right", "null" for a missing
 * side. */
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"

static ks_test_driver_t *drv;
static ks_topology_t *topo;

static void start_parts(ks_builder_t *b,
                        const char *t1,
                        int p1,
                        const char *t2,
                        int p2) {
        char err[512];
        topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(topo, "build: %s", err);
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", "join", err, sizeof(err));
        drv = ks_test_driver_new(topo, c, err, sizeof(err));
        ks_conf_destroy(c);
        ck_assert_msg(drv, "driver: %s", err);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, t1, p1), KS_OK);
        ck_assert_int_eq(ks_test_driver_create_topic(drv, t2, p2), KS_OK);
}

static void start(ks_builder_t *b, const char *t1, const char *t2) {
        start_parts(b, t1, 1, t2, 1);
}

static void teardown(void) {
        ks_test_driver_destroy(drv);
        ks_topology_destroy(topo);
        drv  = NULL;
        topo = NULL;
}

static void pipe_to(const char *topic,
                    const char *key,
                    const char *value,
                    int64_t ts) {
        ks_error_t *e = ks_test_driver_pipe_str(drv, topic, key, value, ts);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
}

/* The next output: key (NULL: null key), value (NULL: tombstone) and,
 * unless negative, timestamp. */
static void expect(const char *key, const char *value, int64_t ts) {
        ks_test_record_t r;
        ck_assert_msg(ks_test_driver_read(drv, "out", &r), "wanted %s=%s",
                      key ? key : "(null)", value ? value : "(tombstone)");
        if (key) {
                ck_assert_msg(r.key.data, "wanted key %s, got null", key);
                ck_assert_uint_eq(r.key.len, strlen(key));
                ck_assert(!memcmp(r.key.data, key, r.key.len));
        } else {
                ck_assert_msg(!r.key.data, "wanted a null key");
        }
        if (!value) {
                ck_assert_msg(!r.value.data, "wanted a tombstone");
        } else {
                ck_assert_msg(r.value.data, "wanted %s, got a tombstone",
                              value);
                ck_assert_msg(r.value.len == strlen(value) &&
                                      !memcmp(r.value.data, value, r.value.len),
                              "wanted %s, got %.*s", value, (int)r.value.len,
                              (const char *)r.value.data);
        }
        if (ts >= 0)
                ck_assert_int_eq(r.timestamp, ts);
}

static void expect_end(void) {
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "out"), 0);
}

static const void *plus(ks_arena_t *a,
                        const void *k,
                        const void *l,
                        const void *r,
                        void *o) {
        (void)k, (void)o;
        const char *ls = l ? l : "null", *rs = r ? r : "null";
        size_t n = strlen(ls) + strlen(rs) + 2;
        char *s  = ks_arena_alloc(a, n);
        snprintf(s, n, "%s+%s", ls, rs);
        return s;
}

/* ---- stream-table ------------------------------------------------------- */

static void stream_table(bool left) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "tbl", ks_serde_string(),
                                           ks_serde_string(), "rows");
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_t *j =
                left ? ks_stream_left_join_table(s, t, NULL, plus, NULL)
                     : ks_stream_join_table(s, t, NULL, plus, NULL);
        ks_stream_to(j, "out", ks_serde_string(), ks_serde_string());
        start(b, "in", "tbl");
        pipe_to("tbl", "k1", "A", 1); /* table updates: no output */
        pipe_to("in", "k1", "x", 10); /* x+A */
        pipe_to("in", "k2", "y", 11); /* no row: inner none, left y+null */
        pipe_to("tbl", "k1", "B", 12);
        pipe_to("in", "k1", "z", 13); /* the update is seen: z+B */
        pipe_to("tbl", "k1", NULL, 14);
        pipe_to("in", "k1", "w", 15);  /* deleted: inner none, left w+null */
        pipe_to("in", NULL, "n", 16);  /* null key: inner skips, left n+null */
        pipe_to("in", "k1", NULL, 17); /* null value: skipped by both */
}

START_TEST(stream_table_inner_join_reads_the_tables_current_value) {
        stream_table(false);
        expect("k1", "x+A", 10);
        expect("k1", "z+B", 13);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-skipped"), 2);
        /* One sub-topology: the join reads the table's store. */
        ck_assert_int_eq(ks_topology_subtopology_count(topo), 1);
}
END_TEST

START_TEST(stream_table_left_join_joins_missing_rows_with_null) {
        stream_table(true);
        expect("k1", "x+A", 10);
        expect("k2", "y+null", 11);
        expect("k1", "z+B", 13);
        expect("k1", "w+null", 15);
        expect(NULL, "n+null", 16); /* Kafka Streams 3.7 (KIP-962) */
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-skipped"), 1);
}
END_TEST

static bool not_bad(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return strcmp(v, "bad") != 0;
}

static const void *lower_x(ks_arena_t *a,
                           const void *k,
                           const void *v,
                           void *o) {
        (void)k, (void)o;
        size_t n = strlen(v) + 3;
        char *s  = ks_arena_alloc(a, n);
        snprintf(s, n, "<%s>", (const char *)v);
        return s;
}

START_TEST(stream_table_join_reads_a_filtered_and_mapped_table) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "tbl", ks_serde_string(),
                                           ks_serde_string(), "rows");
        ks_table_t *v =
                ks_table_map_values(ks_table_filter(t, NULL, not_bad, NULL),
                                    NULL, lower_x, NULL, ks_serde_string());
        ks_stream_t *s = ks_builder_stream(b, "in", ks_serde_string(),
                                           ks_serde_string());
        ks_stream_to(ks_stream_join_table(s, v, "enrich", plus, NULL), "out",
                     ks_serde_string(), ks_serde_string());
        start(b, "in", "tbl");
        pipe_to("tbl", "k1", "A", 1);
        pipe_to("tbl", "k2", "bad", 2);
        pipe_to("in", "k1", "x", 3); /* the mapped value: x+<A> */
        pipe_to("in", "k2", "y", 4); /* filtered out: no row, no output */
        expect("k1", "x+<A>", 3);
        expect_end();
}
END_TEST

START_TEST(joining_a_windowed_table_fails_the_build) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *w   = ks_windowed_count(
                  ks_grouped_windowed_by(ks_stream_group_by_key(s, NULL, NULL),
                                         ks_tumbling_window(10, 0)),
                  "wc");
        ks_stream_join_table(s, w, "j", plus, NULL);
        ck_assert_ptr_null(ks_builder_build(b, err, sizeof(err)));
        ck_assert_msg(strstr(err, "j: a windowed or session table"), "%s", err);
        ks_builder_destroy(b);
}
END_TEST

START_TEST(joining_topics_with_different_partition_counts_fails) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *t   = ks_builder_table(b, "tbl", ks_serde_string(),
                                           ks_serde_string(), "rows");
        ks_stream_t *s  = ks_builder_stream(b, "in", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_join_table(s, t, NULL, plus, NULL), "out",
                     ks_serde_string(), ks_serde_string());
        start_parts(b, "in", 2, "tbl", 3);
        ks_error_t *e = ks_test_driver_pipe_str(drv, "in", "k", "v", 1);
        ck_assert_msg(e, "a join of a 2- and a 3-partition topic must fail");
        const char *msg = ks_error_message(e);
        ck_assert_msg(strstr(msg, "in") && strstr(msg, "tbl") &&
                              strstr(msg, "partition"),
                      "%s", msg);
        ks_error_destroy(e);
}
END_TEST

/* ---- stream-stream ------------------------------------------------------ */

static void stream_stream(int kind, ks_join_windows_t w) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *l  = ks_builder_stream(b, "left", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_t *r  = ks_builder_stream(b, "right", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_t *j =
                kind == 0   ? ks_stream_join_stream(l, r, NULL, plus, NULL, w,
                                                    NULL, NULL)
                : kind == 1 ? ks_stream_left_join_stream(l, r, "lj", plus, NULL,
                                                         w, NULL, NULL)
                            : ks_stream_outer_join_stream(l, r, NULL, plus,
                                                          NULL, w, NULL, NULL);
        ks_stream_to(j, "out", ks_serde_string(), ks_serde_string());
        start(b, "left", "right");
}

START_TEST(stream_stream_inner_join_within_the_window_bounds) {
        /* before 5, after 10: a left record at t joins right records in
         * [t-5, t+10]; a right record at t joins left ones in [t-10, t+5]. */
        stream_stream(0, (ks_join_windows_t){5, 10, 100});
        pipe_to("left", "k", "a1", 100);  /* nothing on the right yet */
        pipe_to("right", "k", "b1", 110); /* [100,115]: a1 (edge) */
        pipe_to("right", "k", "b2", 111); /* [101,116]: none */
        pipe_to("left", "k", "a2", 115);  /* [110,125]: b1 (edge), b2 */
        pipe_to("left", "k", "a3", 116);  /* [111,126]: b2 */
        pipe_to("right", "k", "b3", 94);  /* late, in grace: [84,99]: none */
        pipe_to("right", "k", "b4", 95);  /* [85,100]: a1 (edge) */
        pipe_to("right", "j", "b5", 110); /* another key: none */
        expect("k", "a1+b1", 110);        /* the later of the two times */
        expect("k", "a2+b1", 115);
        expect("k", "a2+b2", 115);
        expect("k", "a3+b2", 116);
        expect("k", "a1+b4", 100);
        expect_end();
        ck_assert_int_eq(ks_topology_subtopology_count(topo), 1);
}
END_TEST

START_TEST(stream_stream_join_keeps_duplicates_of_one_time) {
        stream_stream(0, (ks_join_windows_t){0, 0, 0});
        pipe_to("left", "k", "a1", 5);
        pipe_to("left", "k", "a2", 5);  /* same key and time: both kept */
        pipe_to("right", "k", "b1", 5); /* joins both, in arrival order */
        expect("k", "a1+b1", 5);
        expect("k", "a2+b1", 5);
        expect_end();
}
END_TEST

START_TEST(stream_stream_left_join_emits_unjoined_records_when_closed) {
        /* before = after = 10, grace 5: a left record at t is emitted
         * unjoined once the join's stream time passes t + 10 + 5. */
        stream_stream(1, (ks_join_windows_t){10, 10, 5});
        pipe_to("left", "k", "a1", 100);  /* kept in the outer store */
        pipe_to("left", "j", "a2", 100);  /* kept */
        pipe_to("right", "k", "b1", 105); /* joins a1: a1 is done */
        pipe_to("right", "z", "x", 115);  /* 115 = 100+10+5: still open */
        pipe_to("right", "z", "y", 116);  /* 116 > 115: a2 closes */
        pipe_to("left", "k", "a3", 50);   /* late: [40,60] closed, emitted */
        pipe_to("right", "q", "r1", 117); /* right records: never alone */
        pipe_to("left", "w", "a4", 200);  /* closes nothing of the right */
        pipe_to("left", NULL, "n", 201);  /* null key: emitted at once */
        pipe_to("right", NULL, "m", 202); /* null key on the inner side */
        expect("k", "a1+b1", 105);
        expect("j", "a2+null", 100); /* with its own time */
        expect("k", "a3+null", 50);
        expect(NULL, "n+null", 201);
        expect_end();
        ck_assert_uint_eq(ks_test_driver_metric(drv, "dropped-skipped"), 1);
        /* The stores, named after the join. */
        ks_buf_t d = {0};
        ks_topology_describe(topo, &d);
        ck_assert_msg(strstr(d.data, "lj-this-join-store") &&
                              strstr(d.data, "lj-other-join-store") &&
                              strstr(d.data, "lj-outer-shared-join-store"),
                      "%s", d.data);
        ks_buf_free(&d);
}
END_TEST

START_TEST(stream_stream_outer_join_emits_both_sides_when_closed) {
        /* before = after = 10, no grace. */
        stream_stream(2, (ks_join_windows_t){10, 10, 0});
        pipe_to("left", "k", "a1", 100);  /* kept */
        pipe_to("right", "j", "b1", 100); /* kept */
        pipe_to("right", "k", "b2", 105); /* joins a1 */
        /* 111 > 100 + 10: b1 (a right record: its window ends at
         * 100 + before) closes; z is kept. */
        pipe_to("left", "z", "a2", 111);
        pipe_to("right", "y", "b3", 125); /* 125 > 111 + 10: a2 closes */
        expect("k", "a1+b2", 105);
        expect("j", "null+b1", 100);
        expect("z", "a2+null", 111);
        expect_end();
}
END_TEST

/* ---- table-table -------------------------------------------------------- */

static void table_table(int kind) {
        ks_builder_t *b = ks_builder_new();
        ks_table_t *ta  = ks_builder_table(b, "ta", ks_serde_string(),
                                           ks_serde_string(), NULL);
        ks_table_t *tb  = ks_builder_table(b, "tb", ks_serde_string(),
                                           ks_serde_string(), NULL);
        ks_table_t *j   = kind == 0 ? ks_table_join(ta, tb, NULL, plus, NULL)
                          : kind == 1
                                  ? ks_table_left_join(ta, tb, NULL, plus, NULL)
                                  : ks_table_outer_join(ta, tb, "tt", plus, NULL);
        ks_stream_to(ks_table_to_stream(j, NULL), "out", ks_serde_string(),
                     ks_serde_string());
        start(b, "ta", "tb");
        pipe_to("ta", "k", "a1", 1);
        pipe_to("tb", "k", "b1", 2);
        pipe_to("tb", "j", "b2", 3);
        pipe_to("ta", "k", NULL, 4);
        pipe_to("tb", "k", NULL, 5);
        pipe_to("tb", "j", NULL, 6);
}

START_TEST(table_table_inner_join) {
        table_table(0);
        /* 1: no b row; 2: a1+b1; 3: no a row; 4: deleted, b1 there:
         * tombstone; 5, 6: no a row, nothing. */
        expect("k", "a1+b1", 2);
        expect("k", NULL, 4);
        expect_end();
}
END_TEST

START_TEST(table_table_left_join) {
        /* 1: a1+null; 2: a1+b1; 3: no a row, nothing; 4: a deleted:
         * tombstone; 5, 6: b updates without an a row: nothing. */
        table_table(1);
        expect("k", "a1+null", 1);
        expect("k", "a1+b1", 2);
        expect("k", NULL, 4);
        expect_end();
}
END_TEST

START_TEST(table_table_outer_join) {
        /* 1: a1+null; 2: a1+b1; 3: null+b2; 4: a deleted, b1 stays:
         * null+b1; 5: both gone: tombstone; 6: both gone: tombstone. */
        table_table(2);
        expect("k", "a1+null", 1);
        expect("k", "a1+b1", 2);
        expect("j", "null+b2", 3);
        expect("k", "null+b1", 4);
        expect("k", NULL, 5);
        expect("j", NULL, 6);
        expect_end();
        ck_assert_int_eq(ks_topology_subtopology_count(topo), 1);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("join");
        TCase *tc = tcase_create("stream-table");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc,
                       stream_table_inner_join_reads_the_tables_current_value);
        tcase_add_test(tc, stream_table_left_join_joins_missing_rows_with_null);
        tcase_add_test(tc, stream_table_join_reads_a_filtered_and_mapped_table);
        tcase_add_test(tc, joining_a_windowed_table_fails_the_build);
        tcase_add_test(tc,
                       joining_topics_with_different_partition_counts_fails);
        suite_add_tcase(s, tc);
        TCase *tc2 = tcase_create("stream-stream");
        tcase_add_checked_fixture(tc2, NULL, teardown);
        tcase_add_test(tc2, stream_stream_inner_join_within_the_window_bounds);
        tcase_add_test(tc2, stream_stream_join_keeps_duplicates_of_one_time);
        tcase_add_test(
                tc2,
                stream_stream_left_join_emits_unjoined_records_when_closed);
        tcase_add_test(tc2,
                       stream_stream_outer_join_emits_both_sides_when_closed);
        suite_add_tcase(s, tc2);
        TCase *tc3 = tcase_create("table-table");
        tcase_add_checked_fixture(tc3, NULL, teardown);
        tcase_add_test(tc3, table_table_inner_join);
        tcase_add_test(tc3, table_table_left_join);
        tcase_add_test(tc3, table_table_outer_join);
        suite_add_tcase(s, tc3);
        return s;
}
