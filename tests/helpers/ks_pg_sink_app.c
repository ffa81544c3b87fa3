/* A kstreams application for the PostgreSQL sink's system tests, run as a
 * separate process so that tests can SIGKILL it: records {"id":n,"v":n}
 * keyed by string go to two sinks, "pg-last" (upsert: the last id and v per
 * key) and "pg-all" (append-only: every record once, with where it was
 * read). Prints the sinks' metrics every second and at exit. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kstreams/kstreams.h>

static volatile sig_atomic_t signals;

static void on_signal(int sig) {
        (void)sig;
        if (++signals > 1)
                _exit(130);
}

static void print_metrics(const char *when,
                          const ks_pg_sink_t *const sinks[2]) {
        for (int i = 0; i < 2; i++) {
                ks_pg_sink_metrics_t m;
                ks_pg_sink_metrics(sinks[i], &m);
                fprintf(stderr,
                        "ks_pg_sink_app: %s: %s written=%llu replayed=%llu "
                        "failed=%llu transactions=%llu retries=%llu "
                        "waiting=%llu\n",
                        when, i ? "pg-all" : "pg-last",
                        (unsigned long long)m.rows_written,
                        (unsigned long long)m.rows_replayed,
                        (unsigned long long)m.rows_failed,
                        (unsigned long long)m.transactions,
                        (unsigned long long)m.retries,
                        (unsigned long long)m.waiting_tasks);
        }
}

int main(int argc, char **argv) {
        const char *bootstrap = NULL, *app = NULL, *input = NULL, *dsn = NULL,
                   *last = NULL, *all = NULL, *commit_ms = "200",
                   *state_dir             = "/tmp/kstreams-pg";
        int64_t retry_timeout             = 60000;
        static const struct option opts[] = {
                {"bootstrap", 1, NULL, 'b'},     {"app-id", 1, NULL, 'a'},
                {"input", 1, NULL, 'i'},         {"dsn", 1, NULL, 'd'},
                {"last-table", 1, NULL, 'l'},    {"all-table", 1, NULL, 't'},
                {"commit-ms", 1, NULL, 'c'},     {"state-dir", 1, NULL, 's'},
                {"retry-timeout", 1, NULL, 'r'}, {NULL, 0, NULL, 0}};
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        bootstrap = optarg;
                        break;
                case 'a':
                        app = optarg;
                        break;
                case 'i':
                        input = optarg;
                        break;
                case 'd':
                        dsn = optarg;
                        break;
                case 'l':
                        last = optarg;
                        break;
                case 't':
                        all = optarg;
                        break;
                case 'c':
                        commit_ms = optarg;
                        break;
                case 's':
                        state_dir = optarg;
                        break;
                case 'r':
                        retry_timeout = atoll(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (!bootstrap || !app || !input || !last || !all) {
                fprintf(stderr,
                        "ks_pg_sink_app: --bootstrap, --app-id, "
                        "--input, --last-table, --all-table are "
                        "required\n");
                return 2;
        }
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, input, ks_serde_string(), ks_serde_json());
        static const ks_pg_column_t last_cols[] = {
                {.name = "k", .path = "$key", .key = true},
                {.name = "id"},
                {.name = "v"}};
        static const ks_pg_column_t all_cols[] = {
                {.name = "id"},
                {.name = "k", .path = "$key"},
                {.name = "part", .path = "$partition"},
                {.name = "off", .path = "$offset"}};
        ks_pg_sink_conf_t lc         = {.dsn              = dsn,
                                        .table            = last,
                                        .columns          = last_cols,
                                        .column_cnt       = 3,
                                        .retry_timeout_ms = retry_timeout};
        ks_pg_sink_conf_t ac         = lc;
        ac.table                     = all;
        ac.columns                   = all_cols;
        ac.column_cnt                = 4;
        const ks_pg_sink_t *sinks[2] = {
                ks_stream_to_postgres(in, "pg-last", &lc),
                ks_stream_to_postgres(in, "pg-all", &ac)};
        char err[512];
        ks_topology_t *topo = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        if (!topo) {
                fprintf(stderr, "ks_pg_sink_app: %s\n", err);
                return 1;
        }
        ks_conf_t *conf = ks_conf_new();
        if (ks_conf_set(conf, "application.id", app, err, sizeof(err)) ||
            ks_conf_set(conf, "bootstrap.servers", bootstrap, err,
                        sizeof(err)) ||
            ks_conf_set(conf, "commit.interval.ms", commit_ms, err,
                        sizeof(err)) ||
            ks_conf_set(conf, "state.dir", state_dir, err, sizeof(err))) {
                fprintf(stderr, "ks_pg_sink_app: %s\n", err);
                return 2;
        }
        ks_streams_t *s = ks_streams_new(topo, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        if (!s) {
                fprintf(stderr, "ks_pg_sink_app: %s\n", err);
                return 1;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        ks_error_t *e = ks_streams_start(s);
        if (e) {
                fprintf(stderr, "ks_pg_sink_app: start failed: %s\n",
                        ks_error_message(e));
                ks_error_destroy(e);
                ks_streams_destroy(s);
                ks_topology_destroy(topo);
                return 1;
        }
        int64_t last_print = ks_now_ms();
        while (!signals && ks_streams_state(s) != KS_STATE_ERROR) {
                usleep(50 * 1000);
                if (ks_now_ms() - last_print >= 1000) {
                        last_print = ks_now_ms();
                        print_metrics("running", sinks);
                }
        }
        int rc = ks_streams_state(s) == KS_STATE_ERROR ? 1 : 0;
        e      = ks_streams_close(s, 90000);
        if (e) {
                fprintf(stderr, "ks_pg_sink_app: %s\n", ks_error_message(e));
                ks_error_destroy(e);
                rc = 1;
        }
        print_metrics("exit", sinks);
        ks_streams_destroy(s);
        ks_topology_destroy(topo);
        return rc;
}
