/* The PostgreSQL sink without a database: how records become rows (JSON
 * paths, metadata, the row callback, tombstones), what a batch holds
 * before its commit (COPY text), the builder's checks, the SQL it writes,
 * mapping errors going to the processing handler, and a commit against an
 * unreachable server retrying and then postponing with a retriable error. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "ks_driver_util.h"
#include "sink_pg_int.h"

/* Nothing listens on port 1: connections fail at once. */
#define NOWHERE "postgresql://nobody@127.0.0.1:1/none"

static ks_topology_t *topo;
static ks_test_driver_t *drv;
static const ks_pg_sink_t *sink;

static void teardown(void) {
        kd_stop(&drv, &topo);
        sink = NULL;
}

static const char *const dlq_conf[] = {
        "default.processing.exception.handler", "dead-letter",
        "errors.dead.letter.queue.topic.name", "dlq", NULL};

/* in (string key, JSON value) -> postgres sink "pg" with @p conf. */
static void start(const ks_pg_sink_conf_t *conf, bool manual) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, "in", ks_serde_string(), ks_serde_json());
        sink = ks_stream_to_postgres(in, "pg", conf);
        ck_assert(sink);
        drv = kd_start(b, "pgsink-test", dlq_conf, &topo);
        ks_test_driver_set_manual_commit(drv, manual);
}

static char *pending(void) {
        ks_buf_t out = {0};
        ck_assert_int_eq(ks__pg_sink_pending_copy(sink, &out), KS_OK);
        ks_buf_append(&out, "", 1);
        return out.data;
}

static const ks_pg_column_t columns[] = {
        {.name = "user_id", .path = "$key", .key = true},
        {.name = "amount", .path = "data.amount"},
        {.name = "kind", .path = "type"},
        {.name = "at", .path = "$timestamp", .format = KS_PG_FORMAT_EPOCH_MS},
        {.name = "offset", .path = "$offset"},
        {.name = "raw", .path = "data"},
};

START_TEST(json_paths_and_metadata_become_copy_text) {
        ks_pg_sink_conf_t conf = {.dsn        = NOWHERE,
                                  .table      = "purchases",
                                  .columns    = columns,
                                  .column_cnt = 6};
        start(&conf, true);
        kd_pipe(drv, "in", "u1",
                "{\"type\":\"buy\",\"data\":{\"amount\":99.99}}",
                1765535400000);
        /* Escapes, a missing field (NULL), an integer, a nested object. */
        kd_pipe(drv, "in", "u2",
                "{\"type\":\"a\\tb\\\\c\\nd\",\"data\":{\"amount\":3}}", 0);
        kd_pipe(drv, "in", "u3", "{\"data\":{\"amount\":null}}", 1);
        char *got = pending();
        ck_assert_str_eq(got,
                         "0\tU\tu1\t99.99\tbuy\t2025-12-12T10:30:00.000Z\t0\t"
                         "{\"amount\":99.99}\n"
                         "1\tU\tu2\t3\ta\\tb\\\\c\\nd\t1970-01-01T00:00:00."
                         "000Z\t1\t{\"amount\":3}\n"
                         "2\tU\tu3\t\\N\t\\N\t1970-01-01T00:00:00.001Z\t2\t"
                         "{\"amount\":null}\n");
        free(got);
}
END_TEST

START_TEST(a_tombstone_deletes_by_key_when_keys_come_from_the_key) {
        ks_pg_sink_conf_t conf = {.dsn        = NOWHERE,
                                  .table      = "t",
                                  .columns    = columns,
                                  .column_cnt = 3};
        start(&conf, true);
        kd_pipe(drv, "in", "u1", NULL, 5);
        char *got = pending();
        ck_assert_str_eq(got, "0\tD\tu1\t\\N\t\\N\n");
        free(got);
}
END_TEST

START_TEST(a_tombstone_is_ignored_when_a_key_column_reads_the_value) {
        static const ks_pg_column_t cols[] = {{.name = "id", .key = true},
                                              {.name = "v"}};
        ks_pg_sink_conf_t conf             = {
                            .dsn = NOWHERE, .table = "t", .columns = cols, .column_cnt = 2};
        start(&conf, true);
        kd_pipe(drv, "in", "k", NULL, 5);
        kd_pipe(drv, "in", "k", "{\"id\":7,\"v\":true}", 6);
        char *got = pending();
        ck_assert_str_eq(got, "0\tU\t7\ttrue\n");
        free(got);
        ks_pg_sink_metrics_t m;
        ks_pg_sink_metrics(sink, &m);
        ck_assert_uint_eq(m.tombstones_ignored, 1);
}
END_TEST

START_TEST(a_missing_key_column_goes_to_the_processing_handler) {
        static const ks_pg_column_t cols[] = {{.name = "id", .key = true},
                                              {.name = "v"}};
        ks_pg_sink_conf_t conf             = {
                            .dsn = NOWHERE, .table = "t", .columns = cols, .column_cnt = 2};
        start(&conf, true);
        kd_pipe(drv, "in", "k", "{\"v\":1}", 5);
        kd_pipe(drv, "in", "k", "{\"id\":\"x\",\"v\":2}", 6);
        char *got = pending();
        ck_assert_str_eq(got, "0\tU\tx\t2\n");
        free(got);
        ks_test_record_t rec;
        ck_assert(ks_test_driver_read(drv, "dlq", &rec));
        ck_assert_int_eq(rec.value.len, 7);
        ck_assert(!memcmp(rec.value.data, "{\"v\":1}", 7));
        bool named = false;
        for (size_t i = 0; i < rec.header_cnt; i++)
                if (!strcmp(rec.headers[i].name, "__streams.errors.message"))
                        named = memmem(rec.headers[i].value.data,
                                       rec.headers[i].value.len,
                                       "key column id", 13) != NULL;
        ck_assert(named);
}
END_TEST

typedef struct {
        int calls;
} cb_state_t;

static ks_err_t fill(ks_pg_row_t *row, const void *k, const void *v, void *o) {
        cb_state_t *s = o;
        s->calls++;
        if (!v)
                return ks_pg_row_set(row, 0, k) ? KS_ERR_NOMEM
                                                : ks_pg_row_delete(row);
        const char *kind = json_string_value(json_object_get(v, "kind"));
        if (kind && !strcmp(kind, "skip")) {
                ks_pg_row_skip(row);
                return KS_OK;
        }
        if (kind && !strcmp(kind, "bad"))
                return KS_ERR_INVALID_ARG;
        ks_pg_row_set(row, 0, k);
        ks_pg_row_set_int64(row, 1,
                            json_integer_value(json_object_get(v, "n")));
        ks_pg_row_set_double(row, 2, 0.1 + 0.2);
        ks_pg_row_set_epoch_ms(row, 3, -1);
        ck_assert_int_eq(ks_pg_row_set(row, 4, "x"), KS_ERR_INVALID_ARG);
        return KS_OK;
}

START_TEST(the_row_callback_fills_skips_deletes_and_fails_rows) {
        static const ks_pg_column_t cols[] = {{.name = "k", .key = true},
                                              {.name = "n"},
                                              {.name = "d"},
                                              {.name = "t"}};
        static cb_state_t state;
        ks_pg_sink_conf_t conf = {.dsn        = NOWHERE,
                                  .table      = "t",
                                  .columns    = cols,
                                  .column_cnt = 4,
                                  .row_fn     = fill,
                                  .opaque     = &state};
        start(&conf, true);
        kd_pipe(drv, "in", "a", "{\"n\":1}", 1);
        kd_pipe(drv, "in", "b", "{\"kind\":\"skip\"}", 2);
        kd_pipe(drv, "in", "c", "{\"kind\":\"bad\"}", 3);
        kd_pipe(drv, "in", "d", NULL, 4);
        char *got = pending();
        ck_assert_str_eq(got,
                         "0\tU\ta\t1\t0.30000000000000004\t1969-12-31T23:"
                         "59:59.999Z\n"
                         "1\tD\td\t\\N\t\\N\t\\N\n");
        free(got);
        ck_assert_int_eq(state.calls, 4);
        ck_assert_uint_eq(ks_test_driver_remaining(drv, "dlq"), 1);
}
END_TEST

static void opaque_free(void *p) {
        (*(int *)p)++;
}

static const ks_pg_column_t bad_meta[] = {{.name = "a", .path = "$nope"}};
static const ks_pg_column_t twice[]    = {{.name = "a"}, {.name = "a"}};

START_TEST(the_builder_checks_the_configuration) {
        static const struct {
                ks_pg_sink_conf_t conf;
                const char *name, *want;
        } cases[] = {
                {{.table = "t", .columns = columns, .column_cnt = 1},
                 "pg",
                 "no connection string"},
                {{.dsn = NOWHERE, .columns = columns, .column_cnt = 1},
                 "pg",
                 "no table"},
                {{.dsn = NOWHERE, .table = "t"}, "pg", "no columns"},
                {{.dsn        = NOWHERE,
                  .table      = "t",
                  .columns    = columns,
                  .column_cnt = 1},
                 NULL,
                 "a sink name is required"},
                {{.dsn        = NOWHERE,
                  .table      = "t",
                  .columns    = bad_meta,
                  .column_cnt = 1},
                 "pg",
                 "starts with '$'"},
                {{.dsn        = NOWHERE,
                  .table      = "t",
                  .columns    = twice,
                  .column_cnt = 2},
                 "pg",
                 "same name"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int freed           = 0;
                ks_pg_sink_conf_t c = cases[i].conf;
                c.opaque            = &freed;
                c.opaque_free       = opaque_free;
                unsetenv("KS_PG_DSN");
                ks_builder_t *b = ks_builder_new();
                ks_stream_t *in = ks_builder_stream(b, "in", ks_serde_string(),
                                                    ks_serde_json());
                ck_assert(!ks_stream_to_postgres(in, cases[i].name, &c));
                char err[512];
                ck_assert(!ks_builder_build(b, err, sizeof(err)));
                ck_assert_msg(strstr(err, cases[i].want), "case %zu: %s", i,
                              err);
                ks_builder_destroy(b);
                ck_assert_int_eq(freed, 0); /* never called on failure */
        }
}
END_TEST

START_TEST(json_paths_need_json_values_and_a_known_key) {
        char err[512];
        ks_pg_sink_conf_t conf = {.dsn        = NOWHERE,
                                  .table      = "t",
                                  .columns    = columns,
                                  .column_cnt = 2};
        ks_builder_t *b        = ks_builder_new();
        ks_stream_t *in        = ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_string());
        ck_assert(!ks_stream_to_postgres(in, "pg", &conf));
        ck_assert(!ks_builder_build(b, err, sizeof(err)));
        ck_assert_msg(strstr(err, "not JSON"), "%s", err);
        ks_builder_destroy(b);

        b  = ks_builder_new();
        in = ks_builder_stream(b, "in", ks_serde_bytes(), ks_serde_json());
        ck_assert(!ks_stream_to_postgres(in, "pg", &conf));
        ck_assert(!ks_builder_build(b, err, sizeof(err)));
        ck_assert_msg(strstr(err, "$key"), "%s", err);
        ks_builder_destroy(b);
}
END_TEST

START_TEST(the_dsn_falls_back_to_ks_pg_dsn_and_opaque_goes_with_the_topology) {
        int freed = 0;
        setenv("KS_PG_DSN", NOWHERE, 1);
        ks_pg_sink_conf_t conf = {.table       = "t",
                                  .columns     = columns,
                                  .column_cnt  = 1,
                                  .opaque      = &freed,
                                  .opaque_free = opaque_free};
        ks_builder_t *b        = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, "in", ks_serde_string(), ks_serde_json());
        const ks_pg_sink_t *s = ks_stream_to_postgres(in, "pg", &conf);
        ck_assert(s);
        ck_assert_str_eq(s->dsn, NOWHERE);
        char err[512];
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(t, "%s", err);
        ks_builder_destroy(b);
        ck_assert_int_eq(freed, 0);
        ks_topology_destroy(t);
        ck_assert_int_eq(freed, 1);
}
END_TEST

START_TEST(the_sql_upserts_the_last_row_per_key_or_appends_in_order) {
        static const ks_pg_column_t cols[] = {{.name = "w", .key = true},
                                              {.name = "ty\"pe", .key = true},
                                              {.name = "n"}};
        ks_pg_sink_conf_t conf             = {.dsn        = NOWHERE,
                                              .table      = "public.counts",
                                              .columns    = cols,
                                              .column_cnt = 3,
                                              .row_fn     = fill};
        ks_builder_t *b                    = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, "in", ks_serde_string(), ks_serde_json());
        const ks_pg_sink_t *s = ks_stream_to_postgres(in, "pg", &conf);
        ck_assert(s);
        ck_assert_str_eq(s->sql_write_batch,
                         "INSERT INTO public.counts (\"w\", \"ty\"\"pe\", "
                         "\"n\") SELECT \"w\", \"ty\"\"pe\", \"n\" FROM "
                         "(SELECT DISTINCT ON (\"w\", \"ty\"\"pe\") * FROM "
                         "ks_stage ORDER BY \"w\", \"ty\"\"pe\", \"__ks_seq\" "
                         "DESC) AS s WHERE s.\"__ks_op\" = 'U' ON CONFLICT "
                         "(\"w\", \"ty\"\"pe\") DO UPDATE SET \"n\" = "
                         "EXCLUDED.\"n\"");
        ck_assert_str_eq(s->sql_row_delete,
                         "DELETE FROM public.counts WHERE \"w\" = $1 AND "
                         "\"ty\"\"pe\" = $2");
        const ks_pg_column_t plain[] = {{.name = "a"}, {.name = "b"}};
        conf.columns                 = plain;
        conf.column_cnt              = 2;
        s                            = ks_stream_to_postgres(in, "pg2", &conf);
        ck_assert(s);
        ck_assert_str_eq(s->sql_write_batch,
                         "INSERT INTO public.counts (\"a\", \"b\") SELECT "
                         "\"a\", \"b\" FROM ks_stage ORDER BY \"__ks_seq\"");
        ck_assert(!s->sql_row_delete);
        ks_builder_destroy(b);
}
END_TEST

START_TEST(sqlstates_classes_tell_permanent_from_retriable) {
        ck_assert(ks__pg_sqlstate_permanent("23505"));  /* unique */
        ck_assert(ks__pg_sqlstate_permanent("23514"));  /* check */
        ck_assert(ks__pg_sqlstate_permanent("22P02"));  /* bad text */
        ck_assert(ks__pg_sqlstate_permanent("42703"));  /* no column */
        ck_assert(!ks__pg_sqlstate_permanent("08006")); /* connection */
        ck_assert(!ks__pg_sqlstate_permanent("57P01")); /* shutdown */
        ck_assert(!ks__pg_sqlstate_permanent("40001")); /* serialization */
        ck_assert(!ks__pg_sqlstate_permanent(NULL));
}
END_TEST

START_TEST(an_unreachable_server_retries_then_postpones_the_commit) {
        ks_pg_sink_conf_t conf = {.dsn                  = NOWHERE,
                                  .table                = "t",
                                  .columns              = columns,
                                  .column_cnt           = 3,
                                  .retry_backoff_ms     = 20,
                                  .retry_backoff_max_ms = 40,
                                  .retry_timeout_ms     = 300};
        start(&conf, true);
        kd_pipe(drv, "in", "u1", "{\"type\":\"x\"}", 1);
        int64_t t0      = ks_now_ms();
        ks_error_t *err = ks_test_driver_commit(drv);
        int64_t ms      = ks_now_ms() - t0;
        ck_assert(err);
        ck_assert_msg(ks_error_is_retriable(err), "%s", ks_error_message(err));
        ck_assert_int_eq(ks_error_code(err), KS_ERR_DATABASE);
        ck_assert_msg(strstr(ks_error_message(err), "postgres: connection"),
                      "%s", ks_error_message(err));
        ks_error_destroy(err);
        ck_assert_int_ge(ms, 200);
        ks_pg_sink_metrics_t m;
        ks_pg_sink_metrics(sink, &m);
        ck_assert_uint_ge(m.retries, 4);
        ck_assert_uint_eq(m.waiting_tasks, 1);
        ck_assert_uint_eq(m.rows_written, 0);
        /* Nothing lost: the row still waits for the next commit. */
        char *got = pending();
        ck_assert_str_eq(got, "0\tU\tu1\t\\N\tx\n");
        free(got);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("pg_sink");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, json_paths_and_metadata_become_copy_text);
        tcase_add_test(tc,
                       a_tombstone_deletes_by_key_when_keys_come_from_the_key);
        tcase_add_test(
                tc, a_tombstone_is_ignored_when_a_key_column_reads_the_value);
        tcase_add_test(tc, a_missing_key_column_goes_to_the_processing_handler);
        tcase_add_test(tc, the_row_callback_fills_skips_deletes_and_fails_rows);
        tcase_add_test(tc, the_builder_checks_the_configuration);
        tcase_add_test(tc, json_paths_need_json_values_and_a_known_key);
        tcase_add_test(
                tc,
                the_dsn_falls_back_to_ks_pg_dsn_and_opaque_goes_with_the_topology);
        tcase_add_test(
                tc, the_sql_upserts_the_last_row_per_key_or_appends_in_order);
        tcase_add_test(tc, sqlstates_classes_tell_permanent_from_retriable);
        tcase_add_test(tc,
                       an_unreachable_server_retries_then_postpones_the_commit);
        suite_add_tcase(s, tc);
        return s;
}
