/* max.task.idle.ms (KIP-695) in the task engine: a task with several input
 * partitions does not process while one of them is empty and the broker
 * has (or may have) records for it, so records go in timestamp order across
 * its inputs. The tests drive one task through a collector whose fetched
 * lag and wall clock they set, as the runtime's consumer would report. */
#include <kstreams/kstreams.h>
#include <stdio.h>
#include <string.h>

#include "ks_check.h"
#include "task_int.h"

#define MAX_OUT 32

/* What the collector reports and what it was sent. */
static int64_t lag_left, lag_right, lag_other;
static int64_t clock_ms;
static char asked_topic[256];
static int32_t asked_partition;
static char out[MAX_OUT][64];
static int64_t out_ts[MAX_OUT];
static int out_cnt;

static ks_err_t collect(void *opaque,
                        const char *topic,
                        int32_t partition,
                        ks_bytes_t key,
                        ks_bytes_t value,
                        int64_t timestamp,
                        const ks_header_t *headers,
                        size_t header_cnt,
                        int64_t *acked,
                        char *errstr,
                        size_t errstr_size) {
        (void)opaque, (void)partition, (void)key, (void)headers;
        (void)header_cnt, (void)errstr, (void)errstr_size;
        if (acked)
                *acked = 0;
        if (strcmp(topic, "out") || out_cnt == MAX_OUT)
                return KS_OK;
        snprintf(out[out_cnt], sizeof(out[0]), "%.*s", (int)value.len,
                 (const char *)value.data);
        out_ts[out_cnt++] = timestamp;
        return KS_OK;
}

static int32_t partitions(void *opaque, const char *topic) {
        (void)opaque, (void)topic;
        return 1;
}

static int64_t wall_clock(void *opaque) {
        (void)opaque;
        return clock_ms;
}

static int64_t fetched_lag(void *opaque, const char *topic, int32_t p) {
        (void)opaque;
        snprintf(asked_topic, sizeof(asked_topic), "%s", topic);
        asked_partition = p;
        if (!strcmp(topic, "left"))
                return lag_left;
        if (!strcmp(topic, "right"))
                return lag_right;
        return lag_other;
}

static const ks_collector_t collector = {.send            = collect,
                                         .partition_count = partitions,
                                         .wall_clock      = wall_clock,
                                         .fetched_lag     = fetched_lag};

static ks_topology_t *topo;
static ks_conf_t *conf;
static ks_task_t *task;

static void setup(void) {
        lag_left = lag_right = lag_other = 0;
        clock_ms                         = 1000;
        asked_topic[0]                   = '\0';
        asked_partition                  = -1;
        out_cnt                          = 0;
        topo                             = NULL;
        task                             = NULL;
        char err[256];
        conf = ks_conf_new();
        ck_assert_int_eq(ks_conf_set(conf, "application.id", "idle-app", err,
                                     sizeof(err)),
                         KS_OK);
}

static void teardown(void) {
        ks__task_destroy(task);
        ks_topology_destroy(topo);
        ks_conf_destroy(conf);
}

static void set_idle(const char *ms) {
        char err[256];
        ck_assert_int_eq(
                ks_conf_set(conf, "max.task.idle.ms", ms, err, sizeof(err)),
                KS_OK);
}

static const void *plus(ks_arena_t *a,
                        const void *k,
                        const void *l,
                        const void *r,
                        void *o) {
        (void)k, (void)o;
        size_t n = strlen(l) + strlen(r) + 2;
        char *s  = ks_arena_alloc(a, n);
        snprintf(s, n, "%s+%s", (const char *)l, (const char *)r);
        return s;
}

/* Builds the task of sub-topology @p sub, partition 0. */
static void start_task(ks_builder_t *b, int sub) {
        char err[512];
        topo = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ck_assert_msg(topo, "%s", err);
        task = ks__task_new(topo, sub, 0, conf, &collector, NULL, err,
                            sizeof(err));
        ck_assert_msg(task, "%s", err);
        ks_error_t *e = ks__task_init(task);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
}

/* An inner join of "left" and "right" that drops records later than
 * the window (grace 0): out of order, the lagging side is lost. */
static void start_join(void) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *l  = ks_builder_stream(b, "left", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_t *r  = ks_builder_stream(b, "right", ks_serde_string(),
                                            ks_serde_string());
        ks_stream_to(ks_stream_join_stream(l, r, "j", plus, NULL,
                                           (ks_join_windows_t){10, 10, 0}, NULL,
                                           NULL),
                     "out", ks_serde_string(), ks_serde_string());
        start_task(b, 0);
}

static void enqueue(const char *topic, const char *value, int64_t ts) {
        static int64_t offset;
        ks_raw_record_t rec = {.topic     = topic,
                               .partition = 0,
                               .offset    = offset++,
                               .timestamp = ts,
                               .key       = {"k", 1},
                               .value     = {value, strlen(value)}};
        ck_assert_int_eq(ks__task_enqueue(task, &rec), KS_OK);
}

static int process_one(void) {
        ks_error_t *e = NULL;
        int r         = ks__task_process_one(task, &e);
        ck_assert_msg(r >= 0, "%s", e ? ks_error_message(e) : "");
        return r;
}

static int process_all(void) {
        int n = 0;
        while (process_one() > 0)
                n++;
        return n;
}

static uint64_t processed(void) {
        return ks__task_metrics(task)->records_processed;
}

static uint64_t enforced(void) {
        return ks__task_metrics(task)->enforced_processing;
}

START_TEST(an_empty_input_with_lag_holds_the_task_back) {
        start_join();
        enqueue("left", "a1", 100);
        enqueue("left", "a2", 200);
        enqueue("left", "a3", 300);
        lag_right = 2; /* the broker has right records not fetched yet */
        ck_assert_int_eq(process_one(), 0);
        ck_assert_int_eq(process_one(), 0);
        ck_assert_uint_eq(processed(), 0);
        ck_assert_str_eq(asked_topic, "right");
        ck_assert_int_eq(asked_partition, 0);

        /* They arrive: the task goes in timestamp order across both. */
        enqueue("right", "b1", 105);
        enqueue("right", "b2", 205);
        lag_right = 0;
        ck_assert_int_eq(process_all(), 5);
        ck_assert_int_eq(out_cnt, 2);
        ck_assert_str_eq(out[0], "a1+b1");
        ck_assert_int_eq(out_ts[0], 105);
        ck_assert_str_eq(out[1], "a2+b2");
        ck_assert_int_eq(out_ts[1], 205);
        ck_assert_uint_eq(ks__task_metrics(task)->dropped_late, 0);
        /* a3 went while right was empty and caught up (idle 0). */
        ck_assert_uint_eq(enforced(), 1);
}
END_TEST

START_TEST(an_input_whose_lag_is_not_known_holds_the_task_back) {
        start_join();
        enqueue("right", "b1", 100);
        lag_left = -1; /* no fetch response for it yet */
        ck_assert_int_eq(process_one(), 0);
        clock_ms += 1000000;
        ck_assert_int_eq(process_one(), 0);
        ck_assert_uint_eq(processed(), 0);
        lag_left = 0;
        ck_assert_int_eq(process_one(), 1);
        ck_assert_uint_eq(enforced(), 1);
}
END_TEST

START_TEST(a_caught_up_input_with_idle_0_does_not_hold_the_task_back) {
        start_join();
        enqueue("left", "a1", 100);
        ck_assert_int_eq(process_one(), 1);
        ck_assert_uint_eq(processed(), 1);
        ck_assert_uint_eq(enforced(), 1);
        ck_assert_int_eq(process_one(), 0); /* nothing buffered */
        ck_assert_uint_eq(enforced(), 1);
}
END_TEST

START_TEST(a_caught_up_input_is_waited_for_max_task_idle_ms) {
        set_idle("500");
        start_join();
        enqueue("left", "a1", 100);
        ck_assert_int_eq(process_one(), 0); /* right idles from 1000 */
        clock_ms = 1499;
        ck_assert_int_eq(process_one(), 0);
        clock_ms = 1500;
        ck_assert_int_eq(process_one(), 1);
        ck_assert_uint_eq(enforced(), 1);

        /* A lag > 0 forgets when it started idling. */
        enqueue("left", "a2", 200);
        lag_right = 3;
        clock_ms  = 1600;
        ck_assert_int_eq(process_one(), 0);
        lag_right = 0;
        clock_ms  = 1700; /* idles again from here */
        ck_assert_int_eq(process_one(), 0);
        clock_ms = 2199;
        ck_assert_int_eq(process_one(), 0);
        clock_ms = 2200;
        ck_assert_int_eq(process_one(), 1);
        ck_assert_uint_eq(enforced(), 2);

        /* Records on both inputs: no waiting, nothing enforced. */
        enqueue("left", "a3", 300);
        enqueue("right", "b3", 305);
        ck_assert_int_eq(process_one(), 1);
        ck_assert_uint_eq(enforced(), 2);
        ck_assert_int_eq(out_cnt, 0);
        /* Now left is empty: it idles from 2200. */
        ck_assert_int_eq(process_one(), 0);
        clock_ms = 2700;
        ck_assert_int_eq(process_one(), 1); /* b3 joins a3 */
        ck_assert_uint_eq(enforced(), 3);
        ck_assert_int_eq(out_cnt, 1);
        ck_assert_str_eq(out[0], "a3+b3");
}
END_TEST

START_TEST(an_input_caught_up_long_ago_does_not_delay_a_new_record) {
        set_idle("500");
        start_join();
        ck_assert_int_eq(process_one(), 0); /* both idle from 1000 */
        clock_ms = 1600;
        enqueue("left", "a1", 100);
        ck_assert_int_eq(process_one(), 1);
        ck_assert_uint_eq(enforced(), 1);
}
END_TEST

START_TEST(max_task_idle_ms_minus_1_never_waits) {
        set_idle("-1");
        start_join();
        enqueue("left", "a1", 100);
        lag_right = 5;
        ck_assert_int_eq(process_one(), 1);
        lag_right = -1;
        enqueue("left", "a2", 200);
        ck_assert_int_eq(process_one(), 1);
        ck_assert_uint_eq(enforced(), 0);
        ck_assert_str_eq(asked_topic, ""); /* not even asked */
}
END_TEST

/* A merge of a repartition topic and a source topic: the task knows its
 * internal input, by its full name, before a record of it arrives. */
START_TEST(an_empty_repartition_input_holds_the_task_back) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *a =
                ks_builder_stream(b, "a", ks_serde_string(), ks_serde_string());
        ks_stream_t *c =
                ks_builder_stream(b, "c", ks_serde_string(), ks_serde_string());
        ks_stream_t *m = ks_stream_merge(
                ks_stream_repartition(a, "rp", ks_serde_string(),
                                      ks_serde_string(), 0),
                c, "m");
        ks_stream_to(m, "out", ks_serde_string(), ks_serde_string());
        char err[512];
        topo = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ck_assert_msg(topo, "%s", err);
        ck_assert_int_eq(ks_topology_subtopology_count(topo), 2);
        int sub = -1;
        for (int i = 0; i < 2 && sub < 0; i++) {
                ks_task_t *t = ks__task_new(topo, i, 0, conf, &collector, NULL,
                                            err, sizeof(err));
                ck_assert_msg(t, "%s", err);
                if (ks__task_reads(t, "c"))
                        sub = i;
                ks__task_destroy(t);
        }
        ck_assert_int_ge(sub, 0);
        task = ks__task_new(topo, sub, 0, conf, &collector, NULL, err,
                            sizeof(err));
        ck_assert_msg(task, "%s", err);
        ck_assert_ptr_null(ks__task_init(task));
        enqueue("c", "c1", 100);
        lag_other = 1;
        ck_assert_int_eq(process_one(), 0);
        ck_assert_str_eq(asked_topic, "idle-app-rp-repartition");
        enqueue("idle-app-rp-repartition", "r1", 50);
        lag_other = 0;
        ck_assert_int_eq(process_all(), 2);
        ck_assert_int_eq(out_cnt, 2);
        ck_assert_str_eq(out[0], "r1"); /* in timestamp order */
        ck_assert_str_eq(out[1], "c1");
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("task-idle");
        TCase *tc = tcase_create("max.task.idle.ms");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, an_empty_input_with_lag_holds_the_task_back);
        tcase_add_test(tc, an_input_whose_lag_is_not_known_holds_the_task_back);
        tcase_add_test(
                tc, a_caught_up_input_with_idle_0_does_not_hold_the_task_back);
        tcase_add_test(tc, a_caught_up_input_is_waited_for_max_task_idle_ms);
        tcase_add_test(tc,
                       an_input_caught_up_long_ago_does_not_delay_a_new_record);
        tcase_add_test(tc, max_task_idle_ms_minus_1_never_waits);
        tcase_add_test(tc, an_empty_repartition_input_holds_the_task_back);
        suite_add_tcase(s, tc);
        return s;
}
