/* The PostgreSQL sink against a real PostgreSQL, through the test driver
 * and through the runtime on a real broker: the rows equal what the input
 * says (computed here, not by the sink); a replay (offsets not committed,
 * or an instance killed with SIGKILL) writes nothing twice, even to an
 * append-only table; a database error goes to the production handler;
 * PostgreSQL stopped for 10 s and started again loses nothing. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_driver_util.h"
#include "ks_kafka.h"

static const char *dsn;

/* ks_test_service() returns one static buffer: keep copies. */
static void setup(void) {
        static char copy[1024];
        const char *v = ks_test_service("KS_PG_DSN");
        snprintf(copy, sizeof(copy), "%s", v ? v : "");
        dsn = v ? copy : NULL;
}

/* ---- PostgreSQL helpers ------------------------------------------------ */

static PGresult *q(const char *conninfo, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static PGresult *q(const char *conninfo, const char *fmt, ...) {
        char sql[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        PGconn *c = PQconnectdb(conninfo);
        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s",
                      PQerrorMessage(c));
        PGresult *r = PQexec(c, sql);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                              PQresultStatus(r) == PGRES_TUPLES_OK,
                      "%s: %s", sql, PQresultErrorMessage(r));
        PQfinish(c);
        return r;
}

/* The first value of a query as an integer; -1 when NULL. */
static long long q1(const char *conninfo, const char *sql) {
        PGresult *r = q(conninfo, "%s", sql);
        long long v = PQntuples(r) && !PQgetisnull(r, 0, 0)
                              ? atoll(PQgetvalue(r, 0, 0))
                              : -1;
        PQclear(r);
        return v;
}

/* A table name unique to this run. */
static const char *table_name(const char *prefix, char out[64]) {
        static int n;
        snprintf(out, 64, "%s_%d_%d", prefix, (int)getpid(), ++n);
        return out;
}

/* ---- a private cluster, to stop and start ------------------------------ */

static char pg_run_dir[256], pg_name[64];

/* Runs pg.sh or pg_ctl on the private cluster. */
static int pg_private(const char *what) {
        char cmd[2048];
        if (!strcmp(what, "up") || !strcmp(what, "down"))
                snprintf(
                        cmd, sizeof(cmd),
                        "env -u KS_PG_DSN KS_RUN_DIR=%s bash %s/infra/postgres/"
                        "pg.sh %s %s %s",
                        pg_run_dir, KS_SOURCE_DIR, what, pg_name,
                        !strcmp(what, "up") ? "> " : "> /dev/null 2>&1");
        else
                /* pg_ctl itself: stop keeps the data; start reuses the
                 * options the cluster was started with. */
                snprintf(cmd, sizeof(cmd),
                         "bash -c 'set -e; home=$(cat %s/pg-%s/home); "
                         "bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | "
                         "tail -n1); as() { if [ $(id -u) = 0 ]; then runuser "
                         "-u postgres -- \"$@\"; else \"$@\"; fi; }; "
                         "if [ %s = stop ]; then as $bindir/pg_ctl -D "
                         "$home/data -m fast -w stop; else "
                         "opts=$(cut -d\" \" -f2- $home/data/postmaster.opts); "
                         "as $bindir/pg_ctl -D $home/data -l "
                         "$home/postgres.log -w -o \"$opts\" start; fi' "
                         ">/dev/null 2>&1",
                         pg_run_dir, pg_name, what);
        if (!strcmp(what, "up")) {
                char env[300];
                snprintf(env, sizeof(env), "%s/env.out", pg_run_dir);
                strncat(cmd, env, sizeof(cmd) - strlen(cmd) - 1);
        }
        return system(cmd);
}

static void pg_private_down(void);

/* Starts a private cluster; @returns its DSN (static). A failed assertion
 * ends the test's process without its teardown: atexit stops it then. */
static const char *pg_private_up(void) {
        static char private_dsn[600];
        atexit(pg_private_down);
        snprintf(pg_run_dir, sizeof(pg_run_dir), "/tmp/ks-pgsink.XXXXXX");
        ck_assert(mkdtemp(pg_run_dir));
        chmod(pg_run_dir, 0755);
        snprintf(pg_name, sizeof(pg_name), "pgsink%d", (int)getpid());
        ck_assert_int_eq(pg_private("up"), 0);
        char path[300], line[600] = "";
        snprintf(path, sizeof(path), "%s/env.out", pg_run_dir);
        FILE *f = fopen(path, "r");
        ck_assert(f);
        ck_assert(fgets(line, sizeof(line), f));
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        ck_assert(!strncmp(line, "KS_PG_DSN=", 10));
        snprintf(private_dsn, sizeof(private_dsn), "%s", line + 10);
        return private_dsn;
}

static void pg_private_down(void) {
        if (!pg_run_dir[0])
                return;
        pg_private("down");
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", pg_run_dir);
        if (system(cmd)) {
        }
        pg_run_dir[0] = '\0';
}

/* ---- the driver -------------------------------------------------------- */

static const ks_pg_column_t last_cols[] = {
        {.name = "k", .path = "$key", .key = true},
        {.name = "id"},
        {.name = "v"}};
static const ks_pg_column_t all_cols[] = {{.name = "id"},
                                          {.name = "k", .path = "$key"},
                                          {.name = "off", .path = "$offset"}};

static void create_tables(const char *conninfo,
                          const char *last,
                          const char *all) {
        PQclear(q(conninfo,
                  "CREATE TABLE %s (k text PRIMARY KEY, id bigint NOT NULL, "
                  "v bigint NOT NULL CHECK (v >= 0)); CREATE TABLE %s (id "
                  "bigint NOT NULL, k text NOT NULL, off bigint NOT NULL, part "
                  "integer)",
                  last, all));
}

/* in -> pg-last (upsert) and pg-all (append-only), into @p conninfo. */
static ks_test_driver_t *driver(const char *conninfo,
                                const char *app,
                                const char *last,
                                const char *all,
                                const char *const *conf,
                                ks_topology_t **topo,
                                const ks_pg_sink_t **sinks) {
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, "in", ks_serde_string(), ks_serde_json());
        ks_pg_sink_conf_t lc = {.dsn              = conninfo,
                                .table            = last,
                                .columns          = last_cols,
                                .column_cnt       = 3,
                                .retry_backoff_ms = 50,
                                .retry_timeout_ms = 60000};
        ks_pg_sink_conf_t ac = lc;
        ac.table             = all;
        ac.columns           = all_cols;
        ac.column_cnt        = 3;
        sinks[0]             = ks_stream_to_postgres(in, "pg-last", &lc);
        sinks[1]             = ks_stream_to_postgres(in, "pg-all", &ac);
        ck_assert(sinks[0] && sinks[1]);
        return kd_start(b, app, conf, topo);
}

#define KEYS 7

static void pipe_range(ks_test_driver_t *drv, int from, int to, int sign) {
        for (int i = from; i < to; i++) {
                char key[16], value[64];
                snprintf(key, sizeof(key), "k%d", i % KEYS);
                snprintf(value, sizeof(value), "{\"id\":%d,\"v\":%d}", i,
                         sign * i * 3);
                kd_pipe(drv, "in", key, value, 1000 + i);
        }
}

/* The tables hold exactly ids 0..n-1 once each, and per key the last. */
static void check_rows(const char *conninfo,
                       const char *last,
                       const char *all,
                       int n) {
        char sql[512];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", all);
        ck_assert_int_eq(q1(conninfo, sql), n);
        snprintf(sql, sizeof(sql),
                 "SELECT count(DISTINCT id) FROM %s WHERE id >= 0 AND id < %d",
                 all, n);
        ck_assert_int_eq(q1(conninfo, sql), n);
        PGresult *r = q(conninfo, "SELECT k, id, v FROM %s ORDER BY k", last);
        int keys    = n < KEYS ? n : KEYS;
        ck_assert_int_eq(PQntuples(r), keys);
        for (int row = 0; row < keys; row++) {
                int k = atoi(PQgetvalue(r, row, 0) + 1);
                /* The last id with this key: computed from the input. */
                int want = -1;
                for (int i = 0; i < n; i++)
                        if (i % KEYS == k)
                                want = i;
                ck_assert_int_eq(atoi(PQgetvalue(r, row, 1)), want);
                ck_assert_int_eq(atoi(PQgetvalue(r, row, 2)), want * 3);
        }
        PQclear(r);
}

START_TEST(driver_rows_equal_the_input) {
        if (!dsn)
                return;
        char last[64], all[64];
        table_name("pgs_last", last);
        table_name("pgs_all", all);
        create_tables(dsn, last, all);
        ks_topology_t *topo;
        const ks_pg_sink_t *sinks[2];
        ks_test_driver_t *drv = driver(dsn, kt_unique("pgs-rows"), last, all,
                                       NULL, &topo, sinks);
        /* Half committed after each record, half in one batch, where one
         * key repeats: the batch keeps its last row. */
        pipe_range(drv, 0, 30, 1);
        ks_test_driver_set_manual_commit(drv, true);
        pipe_range(drv, 30, 100, 1);
        ks_error_t *err = ks_test_driver_commit(drv);
        ck_assert_msg(!err, "%s", ks_error_message(err));
        check_rows(dsn, last, all, 100);
        ks_pg_sink_metrics_t m;
        ks_pg_sink_metrics(sinks[1], &m);
        ck_assert_uint_eq(m.rows_written, 100);
        ck_assert_uint_eq(m.transactions, 31);
        ck_assert_uint_eq(m.rows_replayed, 0);
        kd_stop(&drv, &topo);
}
END_TEST

START_TEST(driver_replay_without_committed_offsets_writes_nothing_twice) {
        if (!dsn)
                return;
        char last[64], all[64];
        table_name("pgs_last", last);
        table_name("pgs_all", all);
        create_tables(dsn, last, all);
        const char *app = kt_unique("pgs-replay");
        ks_topology_t *topo;
        const ks_pg_sink_t *sinks[2];
        /* First run: 60 records committed, 20 more processed but not
         * committed, then the process "crashes". */
        ks_test_driver_t *drv = driver(dsn, app, last, all, NULL, &topo, sinks);
        ks_test_driver_set_manual_commit(drv, true);
        pipe_range(drv, 0, 60, 1);
        ks_error_t *err = ks_test_driver_commit(drv);
        ck_assert_msg(!err, "%s", ks_error_message(err));
        pipe_range(drv, 60, 80, 1);
        kd_stop(&drv, &topo);
        check_rows(dsn, last, all, 60);
        /* Second run: nothing was committed to Kafka, so the same input
         * comes again from the start, plus 40 new records. */
        drv = driver(dsn, app, last, all, NULL, &topo, sinks);
        pipe_range(drv, 0, 120, 1);
        check_rows(dsn, last, all, 120);
        ks_pg_sink_metrics_t m;
        ks_pg_sink_metrics(sinks[1], &m);
        ck_assert_uint_eq(m.rows_replayed, 60);
        ck_assert_uint_eq(m.rows_written, 60);
        char sql[300];
        snprintf(sql, sizeof(sql),
                 "SELECT last_offset FROM kstreams_sink_offsets WHERE "
                 "application_id = '%s' AND sink_name = 'pg-all'",
                 app);
        ck_assert_int_eq(q1(dsn, sql), 119);
        kd_stop(&drv, &topo);
}
END_TEST

static ks_err_t count_row(ks_pg_row_t *row,
                          const void *k,
                          const void *v,
                          void *o) {
        (void)o;
        if (!v)
                return ks_pg_row_set(row, 0, k) ? KS_ERR_NOMEM
                                                : ks_pg_row_delete(row);
        ks_err_t err = ks_pg_row_set(row, 0, k);
        return err ? err : ks_pg_row_set_int64(row, 1, *(const int64_t *)v);
}

START_TEST(driver_counts_through_a_record_cache_equal_the_input) {
        if (!dsn)
                return;
        char t[64];
        table_name("pgs_counts", t);
        PQclear(q(dsn, "CREATE TABLE %s (k text PRIMARY KEY, n bigint)", t));
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, "in", ks_serde_string(), ks_serde_json());
        ks_table_t *counts =
                ks_grouped_count(ks_stream_group_by_key(in, NULL, NULL), "c");
        static const ks_pg_column_t cols[] = {{.name = "k", .key = true},
                                              {.name = "n"}};
        ks_pg_sink_conf_t conf             = {.dsn        = dsn,
                                              .table      = t,
                                              .columns    = cols,
                                              .column_cnt = 2,
                                              .row_fn     = count_row};
        const ks_pg_sink_t *sink           = ks_stream_to_postgres(
                          ks_table_to_stream(counts, NULL), "pg-counts", &conf);
        ck_assert(sink);
        ks_topology_t *topo;
        ks_test_driver_t *drv =
                kd_start(b, kt_unique("pgs-count"), NULL, &topo);
        ks_test_driver_set_manual_commit(drv, true);
        int want[KEYS] = {0};
        for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 50; i++) {
                        int k = (i * 5 + round) % KEYS;
                        char key[16];
                        snprintf(key, sizeof(key), "k%d", k);
                        kd_pipe(drv, "in", key, "{}", 1000 + i);
                        want[k]++;
                }
                ks_error_t *err = ks_test_driver_commit(drv);
                ck_assert_msg(!err, "%s", ks_error_message(err));
        }
        PGresult *r = q(dsn, "SELECT k, n FROM %s ORDER BY k", t);
        ck_assert_int_eq(PQntuples(r), KEYS);
        for (int row = 0; row < KEYS; row++) {
                int k = atoi(PQgetvalue(r, row, 0) + 1);
                ck_assert_int_eq(atoi(PQgetvalue(r, row, 1)), want[k]);
        }
        PQclear(r);
        ks_pg_sink_metrics_t m;
        ks_pg_sink_metrics(sink, &m);
        /* One row per key and commit, collapsed by the cache. */
        ck_assert_uint_eq(m.rows_written, 3 * KEYS);
        kd_stop(&drv, &topo);
}
END_TEST

/* A CHECK violation (v < 0) under each production handler. */
static void constraint_violation(const char *handler) {
        char last[64], all[64];
        table_name("pgs_last", last);
        table_name("pgs_all", all);
        create_tables(dsn, last, all);
        const char *conf[] = {"default.production.exception.handler", handler,
                              "errors.dead.letter.queue.topic.name", "dlq",
                              NULL};
        ks_topology_t *topo;
        const ks_pg_sink_t *sinks[2];
        ks_test_driver_t *drv = driver(dsn, kt_unique("pgs-check"), last, all,
                                       conf, &topo, sinks);
        ks_test_driver_set_manual_commit(drv, true);
        pipe_range(drv, 0, KEYS, 1);         /* fine */
        pipe_range(drv, KEYS, 2 * KEYS, -1); /* v < 0: each key once */
        ks_error_t *err = ks_test_driver_commit(drv);
        char sql[300];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", last);
        if (!strcmp(handler, "fail")) {
                ck_assert(err);
                ck_assert(!ks_error_is_retriable(err));
                ck_assert_msg(strstr(ks_error_message(err), "SQLSTATE 23514"),
                              "%s", ks_error_message(err));
                ks_error_destroy(err);
                ck_assert_int_eq(q1(dsn, sql), 0); /* nothing committed */
                kd_stop(&drv, &topo);
                return;
        }
        ck_assert_msg(!err, "%s", ks_error_message(err));
        /* The batch fails as a whole, then goes row by row: the good
         * rows are written, the bad ones go to the handler; the
         * append-only table has no check and gets all. */
        ck_assert_int_eq(q1(dsn, sql), KEYS);
        snprintf(sql, sizeof(sql), "SELECT max(v) FROM %s", last);
        ck_assert_int_eq(q1(dsn, sql), (KEYS - 1) * 3);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", all);
        ck_assert_int_eq(q1(dsn, sql), 2 * KEYS);
        ks_pg_sink_metrics_t m;
        ks_pg_sink_metrics(sinks[0], &m);
        ck_assert_uint_eq(m.rows_failed, KEYS);
        ck_assert_uint_eq(m.rows_written, KEYS);
        size_t dlq = ks_test_driver_remaining(drv, "dlq");
        if (!strcmp(handler, "dead-letter")) {
                ck_assert_uint_eq(dlq, KEYS);
                ks_test_record_t rec;
                ck_assert(ks_test_driver_read(drv, "dlq", &rec));
                const char *state = NULL;
                for (size_t i = 0; i < rec.header_cnt; i++)
                        if (!strcmp(rec.headers[i].name,
                                    "__streams.errors.sqlstate"))
                                state = rec.headers[i].value.data;
                ck_assert(state && !strncmp(state, "23514", 5));
                json_t *row =
                        json_loadb(rec.value.data, rec.value.len, 0, NULL);
                ck_assert(row);
                ck_assert_str_eq(json_string_value(json_object_get(row, "v")),
                                 "-21");
                json_decref(row);
        } else {
                ck_assert_uint_eq(dlq, 0);
        }
        kd_stop(&drv, &topo);
}

START_TEST(driver_constraint_violation_fails_the_commit_under_fail) {
        if (dsn)
                constraint_violation("fail");
}
END_TEST

START_TEST(driver_constraint_violation_is_skipped_under_log_and_continue) {
        if (dsn)
                constraint_violation("log-and-continue");
}
END_TEST

START_TEST(driver_constraint_violation_is_dead_lettered) {
        if (dsn)
                constraint_violation("dead-letter");
}
END_TEST

START_TEST(driver_postgres_stopped_for_10s_loses_nothing) {
        if (!dsn)
                return;
        const char *priv = pg_private_up();
        char last[64], all[64];
        table_name("pgs_last", last);
        table_name("pgs_all", all);
        create_tables(priv, last, all);
        ks_topology_t *topo;
        const ks_pg_sink_t *sinks[2];
        ks_test_driver_t *drv = driver(priv, kt_unique("pgs-down"), last, all,
                                       NULL, &topo, sinks);
        pipe_range(drv, 0, 50, 1);
        ck_assert_int_eq(pg_private("stop"), 0);
        int64_t t0  = ks_now_ms();
        pid_t child = fork();
        ck_assert(child >= 0);
        if (child == 0) {
                sleep(10);
                _exit(pg_private("start") ? 1 : 0);
        }
        /* Each record commits: the first one waits for PostgreSQL. */
        pipe_range(drv, 50, 100, 1);
        int64_t waited = ks_now_ms() - t0;
        int st;
        waitpid(child, &st, 0);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_int_ge(waited, 9000);
        check_rows(priv, last, all, 100);
        ks_pg_sink_metrics_t m;
        ks_pg_sink_metrics(sinks[0], &m);
        ck_assert_uint_gt(m.retries, 0);
        ck_assert_uint_eq(m.waiting_tasks, 0);
        fprintf(stderr,
                "driver: PostgreSQL down for %lld ms: %llu retries, "
                "%llu rows\n",
                (long long)waited, (unsigned long long)m.retries,
                (unsigned long long)m.rows_written);
        kd_stop(&drv, &topo);
        pg_private_down();
}
END_TEST

/* ---- the runtime ------------------------------------------------------- */

static const char *bootstrap;
static pid_t app_pid; /* the instance running, for atexit */

static void kill_app(void) {
        if (app_pid > 0)
                kt_stop(app_pid, SIGKILL, 1000);
        app_pid = 0;
}

static pid_t start_app(const char *conninfo,
                       const char *app,
                       const char *in,
                       const char *last,
                       const char *all,
                       const char *log) {
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
                if (!freopen(log, "a", stderr))
                        _exit(127);
                char state_dir[300];
                snprintf(state_dir, sizeof(state_dir), "/tmp/ks-pgs-state-%s",
                         app);
                execl(KS_BINARY_DIR "/tests/ks_pg_sink_app", "ks_pg_sink_app",
                      "--bootstrap", bootstrap, "--app-id", app, "--input", in,
                      "--dsn", conninfo, "--last-table", last, "--all-table",
                      all, "--state-dir", state_dir, NULL);
                perror("execl");
                _exit(127);
        }
        if (!app_pid)
                atexit(kill_app);
        app_pid = pid;
        return pid;
}

/* Keys k<i % KEYS>, values {"id":i}: murmur2 keeps a key in one
 * partition, where order holds, so the last id per key is known. */
static void produce(const char *in, int from, int to) {
        kt_produce(bootstrap, in, from, to - from, "k", KEYS,
                   "{\"id\":%d,\"v\":0}");
}

/* Waits until the append-only table has @p n rows (or more). */
static long long await_rows(const char *conninfo,
                            const char *all,
                            long long n,
                            int timeout_ms) {
        char sql[200];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", all);
        long long got = 0;
        for (int waited = 0; waited < timeout_ms; waited += 200) {
                got = q1(conninfo, sql);
                if (got >= n)
                        break;
                usleep(200 * 1000);
        }
        return got;
}

/* Exact rows in the runtime's tables: every id once, the last per key. */
static void check_runtime_rows(const char *conninfo,
                               const char *last,
                               const char *all,
                               int n) {
        char sql[512];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", all);
        ck_assert_int_eq(q1(conninfo, sql), n);
        snprintf(sql, sizeof(sql),
                 "SELECT count(DISTINCT id) FROM %s WHERE id >= 0 AND id < %d",
                 all, n);
        ck_assert_int_eq(q1(conninfo, sql), n);
        PGresult *r = q(conninfo, "SELECT k, id FROM %s ORDER BY k", last);
        ck_assert_int_eq(PQntuples(r), KEYS);
        for (int row = 0; row < KEYS; row++) {
                int k    = atoi(PQgetvalue(r, row, 0) + 1);
                int want = -1;
                for (int i = 0; i < n; i++)
                        if (i % KEYS == k)
                                want = i;
                ck_assert_int_eq(atoi(PQgetvalue(r, row, 1)), want);
        }
        PQclear(r);
}

/* The last "exit" metrics line of @p sink in @p log. */
static void exit_metrics(const char *log,
                         const char *sink,
                         unsigned long long *written,
                         unsigned long long *replayed,
                         unsigned long long *retries) {
        FILE *f = fopen(log, "r");
        ck_assert(f);
        char line[1024], want[64];
        snprintf(want, sizeof(want), "exit: %s ", sink);
        *written = *replayed = *retries = 0;
        bool found                      = false;
        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, want);
                if (!p)
                        continue;
                const char *wp = strstr(p, "written=");
                const char *rp = strstr(p, "replayed=");
                const char *tp = strstr(p, "retries=");
                *written       = wp ? strtoull(wp + 8, NULL, 10) : 0;
                *replayed      = rp ? strtoull(rp + 9, NULL, 10) : 0;
                *retries       = tp ? strtoull(tp + 8, NULL, 10) : 0;
                found          = true;
        }
        fclose(f);
        ck_assert_msg(found, "no exit metrics of %s in %s", sink, log);
}

static void stop_app(pid_t pid, const char *log) {
        int st  = kt_stop(pid, SIGTERM, 90000);
        app_pid = -1;
        if (!WIFEXITED(st) || WEXITSTATUS(st)) {
                char cmd[400];
                snprintf(cmd, sizeof(cmd), "tail -n 40 %s >&2", log);
                if (system(cmd)) {
                }
        }
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "the app did not stop cleanly (see %s)", log);
}

/* Deletes the consumer group: the next instance reads everything again,
 * as after a crash before any offset commit. */
static void delete_group(const char *group) {
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                          sizeof(errstr));
        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        ck_assert_msg(rk, "%s", errstr);
        rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
        bool deleted            = false;
        /* The group may still be winding down its last member. */
        for (int attempt = 0; attempt < 60 && !deleted; attempt++) {
                rd_kafka_DeleteGroup_t *g = rd_kafka_DeleteGroup_new(group);
                rd_kafka_DeleteGroups(rk, &g, 1, NULL, queue);
                rd_kafka_DeleteGroup_destroy(g);
                rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, 30000);
                ck_assert(ev);
                const rd_kafka_DeleteGroups_result_t *res =
                        rd_kafka_event_DeleteGroups_result(ev);
                size_t cnt;
                const rd_kafka_group_result_t **gr =
                        rd_kafka_DeleteGroups_result_groups(res, &cnt);
                const rd_kafka_error_t *e =
                        cnt ? rd_kafka_group_result_error(gr[0]) : NULL;
                deleted = !rd_kafka_event_error(ev) && cnt == 1 && !e;
                rd_kafka_event_destroy(ev);
                if (!deleted)
                        usleep(500 * 1000);
        }
        rd_kafka_queue_destroy(queue);
        rd_kafka_destroy(rk);
        ck_assert_msg(deleted, "could not delete group %s", group);
}

START_TEST(runtime_sigkill_and_replay_write_every_record_once) {
        if (!dsn || !bootstrap)
                return;
        const char *app = kt_unique("pgs-rt");
        char in[160], log[300], last[64], all[64];
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(log, sizeof(log), "%s/%s.log", KS_BINARY_DIR, app);
        table_name("pgs_rt_last", last);
        table_name("pgs_rt_all", all);
        create_tables(dsn, last, all);
        kt_create_topic(bootstrap, in, 3);
        produce(in, 0, 6000);
        /* 1. killed mid-run with SIGKILL, then a clean run to the end. */
        pid_t pid = start_app(dsn, app, in, last, all, log);
        ck_assert_int_ge(await_rows(dsn, all, 1500, 60000), 1500);
        kt_stop(pid, SIGKILL, 1000);
        app_pid = -1;
        pid     = start_app(dsn, app, in, last, all, log);
        ck_assert_int_eq(await_rows(dsn, all, 6000, 90000), 6000);
        usleep(2000 * 1000);
        stop_app(pid, log);
        check_runtime_rows(dsn, last, all, 6000);
        /* 2. every offset lost: all 6000 come again and are skipped. */
        delete_group(app);
        produce(in, 6000, 8000);
        pid = start_app(dsn, app, in, last, all, log);
        ck_assert_int_eq(await_rows(dsn, all, 8000, 90000), 8000);
        usleep(2000 * 1000);
        stop_app(pid, log);
        unsigned long long written, replayed, retries;
        exit_metrics(log, "pg-all", &written, &replayed, &retries);
        ck_assert_uint_eq(replayed, 6000);
        ck_assert_uint_eq(written, 2000);
        check_runtime_rows(dsn, last, all, 8000);
        /* 3. killed again while records arrive, restarted. */
        pid = start_app(dsn, app, in, last, all, log);
        for (int from = 8000; from < 11000; from += 500) {
                produce(in, from, from + 500);
                usleep(300 * 1000);
        }
        ck_assert_int_ge(await_rows(dsn, all, 8500, 60000), 8500);
        kt_stop(pid, SIGKILL, 1000);
        app_pid = -1;
        produce(in, 11000, 14000);
        pid = start_app(dsn, app, in, last, all, log);
        ck_assert_int_eq(await_rows(dsn, all, 14000, 90000), 14000);
        usleep(2000 * 1000);
        stop_app(pid, log);
        /* The kill came before the end: what came after is this one's. */
        exit_metrics(log, "pg-all", &written, &replayed, &retries);
        ck_assert_uint_ge(written, 3000);
        fprintf(stderr,
                "runtime: after the second SIGKILL the new instance wrote "
                "%llu rows and skipped %llu replayed records\n",
                written, replayed);
        check_runtime_rows(dsn, last, all, 14000);
}
END_TEST

START_TEST(runtime_postgres_stopped_for_10s_loses_nothing) {
        if (!dsn || !bootstrap)
                return;
        const char *priv = pg_private_up();
        const char *app  = kt_unique("pgs-rtdown");
        char in[160], log[300], last[64], all[64];
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(log, sizeof(log), "%s/%s.log", KS_BINARY_DIR, app);
        table_name("pgs_rt_last", last);
        table_name("pgs_rt_all", all);
        create_tables(priv, last, all);
        kt_create_topic(bootstrap, in, 3);
        produce(in, 0, 3000);
        pid_t pid = start_app(priv, app, in, last, all, log);
        ck_assert_int_eq(await_rows(priv, all, 3000, 60000), 3000);
        ck_assert_int_eq(pg_private("stop"), 0);
        produce(in, 3000, 6000);
        sleep(10);
        ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), 0); /* still alive */
        ck_assert_int_eq(pg_private("start"), 0);
        ck_assert_int_eq(await_rows(priv, all, 6000, 90000), 6000);
        usleep(2000 * 1000);
        stop_app(pid, log);
        check_runtime_rows(priv, last, all, 6000);
        unsigned long long written, replayed, retries;
        exit_metrics(log, "pg-all", &written, &replayed, &retries);
        ck_assert_uint_gt(retries, 0);
        fprintf(stderr, "runtime: PostgreSQL down 10 s: %llu retries\n",
                retries);
        pg_private_down();
}
END_TEST

static void teardown(void) {
        pg_private_down();
}

Suite *ks_test_suite(void) {
        static const char *const need[] = {"KS_PG_DSN", "KS_BOOTSTRAP", NULL};
        ks_test_skip_unless_services(need);
        static char bootstrap_copy[1024];
        snprintf(bootstrap_copy, sizeof(bootstrap_copy), "%s",
                 ks_test_service("KS_BOOTSTRAP"));
        bootstrap = bootstrap_copy;
        Suite *s  = suite_create("pg_sink_system");
        TCase *tc = tcase_create("driver");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, driver_rows_equal_the_input);
        tcase_add_test(
                tc,
                driver_replay_without_committed_offsets_writes_nothing_twice);
        tcase_add_test(tc,
                       driver_counts_through_a_record_cache_equal_the_input);
        tcase_add_test(tc,
                       driver_constraint_violation_fails_the_commit_under_fail);
        tcase_add_test(
                tc,
                driver_constraint_violation_is_skipped_under_log_and_continue);
        tcase_add_test(tc, driver_constraint_violation_is_dead_lettered);
        tcase_add_test(tc, driver_postgres_stopped_for_10s_loses_nothing);
        suite_add_tcase(s, tc);
        TCase *rt = tcase_create("runtime");
        tcase_add_checked_fixture(rt, setup, teardown);
        tcase_set_timeout(rt, 280);
        tcase_add_test(rt, runtime_sigkill_and_replay_write_every_record_once);
        tcase_add_test(rt, runtime_postgres_stopped_for_10s_loses_nothing);
        suite_add_tcase(s, rt);
        return s;
}
