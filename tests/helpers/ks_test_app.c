/* A small kstreams application for the system tests, run as a separate
 * process so tests can start, scale and kill instances. */
#include <getopt.h>
#include <jansson.h>
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
                _exit(130); /* a second signal: out now */
}

static bool has_id(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return json_is_integer(json_object_get(v, "id"));
}

static const void *tag(ks_arena_t *a, const void *k, const void *v, void *o) {
        (void)a, (void)k;
        json_t *copy = json_deep_copy(v);
        json_object_set_new(copy, "by", json_integer(*(int *)o));
        ks_arena_defer(a, (void (*)(void *))json_decref, copy);
        return copy;
}

static const void *user_of(ks_arena_t *a,
                           const void *k,
                           const void *v,
                           void *o) {
        (void)a, (void)k, (void)o;
        return json_string_value(json_object_get(v, "user"));
}

static bool has_user(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return json_is_string(json_object_get(v, "user"));
}

/* "<key>@<window start>" -> "<count>", for the window-final mode. */
static ks_kv_t window_text(ks_arena_t *a,
                           const void *k,
                           const void *v,
                           void *o) {
        (void)o;
        const ks_windowed_key_t *wk = k;
        char *key = ks_arena_alloc(a, 64), *val = ks_arena_alloc(a, 32);
        if (!key || !val)
                return (ks_kv_t){NULL, NULL};
        snprintf(key, 64, "%s@%lld", (const char *)wk->key,
                 (long long)wk->start);
        snprintf(val, 32, "%lld", v ? (long long)*(const int64_t *)v : -1LL);
        return (ks_kv_t){key, val};
}

/* Writes every window of "window-counts" for the keys <prefix>0 ..
 * <prefix>(n-1) to @p path as "<key>@<start> <count>" lines, read through
 * interactive queries: the state a user would see. */
static int dump_windows(ks_streams_t *s, const char *spec, const char *path) {
        char prefix[64];
        int n = 0;
        if (sscanf(spec, "%63[^:]:%d", prefix, &n) != 2 || n <= 0)
                return -1;
        FILE *f = fopen(path, "w");
        if (!f)
                return -1;
        int rc = 0;
        for (int i = 0; i < n && !rc; i++) {
                char key[96];
                snprintf(key, sizeof(key), "%s%d", prefix, i);
                ks_query_iter_t *it = NULL;
                ks_error_t *e       = NULL;
                /* A partition still restoring or moving here answers with
                 * an error: asked again for up to 30 s. */
                for (int attempt = 0; attempt < 300; attempt++) {
                        ks_error_destroy(e);
                        e = ks_streams_query_window_fetch(
                                s, "window-counts",
                                (ks_bytes_t){key, strlen(key)}, INT64_MIN,
                                INT64_MAX, &it);
                        if (!e)
                                break;
                        usleep(100 * 1000);
                }
                if (e) {
                        fprintf(stderr, "ks_test_app: query %s: %s\n", key,
                                ks_error_message(e));
                        ks_error_destroy(e);
                        rc = -1;
                        break;
                }
                ks_bytes_t v;
                int64_t start;
                while (ks_query_iter_next_window(it, NULL, &start, &v)) {
                        const unsigned char *b = v.data;
                        int64_t count          = 0;
                        for (size_t k = 0; k < v.len && k < 8; k++)
                                count = (count << 8) | b[k];
                        fprintf(f, "%s@%lld %lld\n", key, (long long)start,
                                (long long)count);
                }
                if (ks_query_iter_error(it))
                        rc = -1;
                ks_query_iter_destroy(it);
        }
        if (fclose(f))
                rc = -1;
        return rc;
}

static void on_state(ks_streams_t *s, ks_state_t n, ks_state_t o, void *op) {
        (void)s, (void)op;
        fprintf(stderr, "ks_test_app: state %s -> %s\n", ks_state_name(o),
                ks_state_name(n));
}

int main(int argc, char **argv) {
        const char *bootstrap = NULL, *app = NULL, *input = NULL,
                   *input2 = NULL, *output = NULL, *mode = "filter",
                   *dlq = NULL, *threads = "1", *commit_ms = "200",
                   *state_dir = "/tmp/kstreams", *buffered = "10000",
                   *purge_ms = "30000", *cache_bytes = NULL,
                   *guarantee = "at_least_once", *dump_keys = NULL,
                   *dump_path = NULL, *instance = NULL, *session_ms = NULL;
        /* --conf name=value, any number: librdkafka settings such as
         * security.protocol and sasl.* for the secured-broker test. */
        const char *confs[32];
        int conf_cnt                      = 0;
        static const struct option opts[] = {{"bootstrap", 1, NULL, 'b'},
                                             {"app-id", 1, NULL, 'a'},
                                             {"input", 1, NULL, 'i'},
                                             {"input2", 1, NULL, 'j'},
                                             {"output", 1, NULL, 'o'},
                                             {"mode", 1, NULL, 'm'},
                                             {"dlq", 1, NULL, 'd'},
                                             {"threads", 1, NULL, 't'},
                                             {"commit-ms", 1, NULL, 'c'},
                                             {"help", 0, NULL, 'h'},
                                             {"state-dir", 1, NULL, 's'},
                                             {"buffered", 1, NULL, 'p'},
                                             {"purge-ms", 1, NULL, 'g'},
                                             {"cache-bytes", 1, NULL, 'x'},
                                             {"guarantee", 1, NULL, 'e'},
                                             {"dump-keys", 1, NULL, 'k'},
                                             {"dump", 1, NULL, 'u'},
                                             {"static-id", 1, NULL, 'n'},
                                             {"session-ms", 1, NULL, 'q'},
                                             {"conf", 1, NULL, 'X'},
                                             {NULL, 0, NULL, 0}};
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
                case 'j':
                        input2 = optarg;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 'm':
                        mode = optarg;
                        break;
                case 'd':
                        dlq = optarg;
                        break;
                case 't':
                        threads = optarg;
                        break;
                case 'c':
                        commit_ms = optarg;
                        break;
                case 's':
                        state_dir = optarg;
                        break;
                case 'p':
                        buffered = optarg;
                        break;
                case 'g':
                        purge_ms = optarg;
                        break;
                case 'x':
                        cache_bytes = optarg;
                        break;
                case 'e':
                        guarantee = optarg;
                        break;
                case 'k':
                        dump_keys = optarg;
                        break;
                case 'u':
                        dump_path = optarg;
                        break;
                case 'n':
                        instance = optarg;
                        break;
                case 'q':
                        session_ms = optarg;
                        break;
                case 'X':
                        if (conf_cnt == 32 || !strchr(optarg, '=')) {
                                fprintf(stderr,
                                        "ks_test_app: --conf "
                                        "name=value, at most 32\n");
                                return 2;
                        }
                        confs[conf_cnt++] = optarg;
                        break;
                default:
                        fprintf(stderr,
                                "usage: ks_test_app --bootstrap B --app-id A "
                                "--input T --output O [--mode "
                                "filter|repartition|repartition-count|count|"
                                "window-final|window-count|merge --input2 "
                                "T2] [--dlq T] [--threads N] [--commit-ms "
                                "N] [--state-dir D] [--buffered N] "
                                "[--purge-ms N] [--cache-bytes N] "
                                "[--guarantee at_least_once|"
                                "exactly_once_v2] [--dump-keys PREFIX:N "
                                "--dump FILE] [--static-id ID] "
                                "[--session-ms N] [--conf NAME=VALUE]...\n");
                        return c == 'h' ? 0 : 2;
                }
        }
        if (!bootstrap || !app || !input || !output) {
                fprintf(stderr,
                        "ks_test_app: --bootstrap, --app-id, --input "
                        "and --output are required\n");
                return 2;
        }
        int me = (int)getpid();
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *in =
                ks_builder_stream(b, input, ks_serde_string(), ks_serde_json());
        if (!strcmp(mode, "filter")) {
                ks_stream_to(
                        ks_stream_map_values(
                                ks_stream_filter(in, "has-id", has_id, NULL),
                                "tag", tag, &me),
                        output, NULL, ks_serde_json());
        } else if (!strcmp(mode, "repartition")) {
                ks_stream_t *k = ks_stream_select_key(
                        ks_stream_filter(in, "has-user", has_user, NULL),
                        "by-user", user_of, NULL);
                ks_stream_to(ks_stream_repartition(k, "by-user",
                                                   ks_serde_string(), NULL, 0),
                             output, NULL, NULL);
        } else if (!strcmp(mode, "repartition-count")) {
                /* Re-keyed by user, then counted: the count's tasks read a
                 * repartition topic the same instance writes. */
                ks_stream_t *k = ks_stream_select_key(
                        ks_stream_filter(in, "has-user", has_user, NULL),
                        "by-user", user_of, NULL);
                ks_table_t *t = ks_grouped_count(
                        ks_stream_group_by_key(
                                ks_stream_repartition(k, "by-user",
                                                      ks_serde_string(), NULL,
                                                      0),
                                NULL, NULL),
                        "user-counts");
                ks_stream_to(ks_table_to_stream(t, NULL), output, NULL, NULL);
        } else if (!strcmp(mode, "count")) {
                /* Counts per key in the store "counts": a changelogged,
                 * persistent store restored on restart or migration. */
                ks_table_t *t = ks_grouped_count(
                        ks_stream_group_by_key(in, NULL, NULL), "counts");
                ks_stream_to(ks_table_to_stream(t, NULL), output, NULL, NULL);
        } else if (!strcmp(mode, "window-final")) {
                /* Counts per key in 10 s tumbling windows of the values'
                 * "ts" (no grace), each window's final count once, as
                 * "<key>@<start>" -> "<count>". */
                ks_stream_t *timed = ks_stream_with_timestamps(
                        in, ks_timestamp_extractor_json_field("ts", err,
                                                              sizeof(err)));
                ks_table_t *t = ks_windowed_count(
                        ks_grouped_windowed_by(
                                ks_stream_group_by_key(timed, NULL, NULL),
                                ks_tumbling_window(10000, 0)),
                        "window-counts");
                ks_stream_t *finals = ks_table_to_stream(
                        ks_table_suppress(t, KS_SUPPRESS_UNTIL_WINDOW_CLOSES, 0,
                                          "finals"),
                        NULL);
                ks_stream_to(
                        ks_stream_map(finals, "as-text", window_text, NULL),
                        output, ks_serde_string(), ks_serde_string());
        } else if (!strcmp(mode, "window-count")) {
                /* The same windowed count, every update sent on (with
                 * --cache-bytes 0, one per record): a replayed record shows
                 * as a count sent twice. */
                ks_stream_t *timed = ks_stream_with_timestamps(
                        in, ks_timestamp_extractor_json_field("ts", err,
                                                              sizeof(err)));
                ks_table_t *t = ks_windowed_count(
                        ks_grouped_windowed_by(
                                ks_stream_group_by_key(timed, NULL, NULL),
                                ks_tumbling_window(10000, 0)),
                        "window-counts");
                ks_stream_to(ks_stream_map(ks_table_to_stream(t, NULL),
                                           "as-text", window_text, NULL),
                             output, ks_serde_string(), ks_serde_string());
        } else if (!strcmp(mode, "merge") && input2) {
                ks_stream_t *in2 = ks_builder_stream(
                        b, input2, ks_serde_string(), ks_serde_json());
                ks_stream_to(ks_stream_merge(in, in2, NULL), output, NULL,
                             NULL);
        } else {
                fprintf(stderr, "ks_test_app: unknown --mode %s\n", mode);
                return 2;
        }
        ks_topology_t *topo = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        if (!topo) {
                fprintf(stderr, "ks_test_app: %s\n", err);
                return 1;
        }
        ks_conf_t *conf = ks_conf_new();
        if (ks_conf_set(conf, "application.id", app, err, sizeof(err)) ||
            ks_conf_set(conf, "bootstrap.servers", bootstrap, err,
                        sizeof(err)) ||
            ks_conf_set(conf, "num.stream.threads", threads, err,
                        sizeof(err)) ||
            ks_conf_set(conf, "commit.interval.ms", commit_ms, err,
                        sizeof(err)) ||
            ks_conf_set(conf, "startup.timeout.ms", "5000", err, sizeof(err)) ||
            ks_conf_set(conf, "processing.guarantee", guarantee, err,
                        sizeof(err)) ||
            (instance && ks_conf_set(conf, "consumer.group.instance.id",
                                     instance, err, sizeof(err))) ||
            (session_ms && ks_conf_set(conf, "consumer.session.timeout.ms",
                                       session_ms, err, sizeof(err))) ||
            ks_conf_set(conf, "state.dir", state_dir, err, sizeof(err)) ||
            ks_conf_set(conf, "buffered.records.per.partition", buffered, err,
                        sizeof(err)) ||
            ks_conf_set(conf, "repartition.purge.interval.ms", purge_ms, err,
                        sizeof(err)) ||
            (cache_bytes && ks_conf_set(conf, "statestore.cache.max.bytes",
                                        cache_bytes, err, sizeof(err))) ||
            (dlq &&
             (ks_conf_set(conf, "errors.dead.letter.queue.topic.name", dlq, err,
                          sizeof(err)) ||
              ks_conf_set(conf, "default.deserialization.exception.handler",
                          "dead-letter", err, sizeof(err))))) {
                fprintf(stderr, "ks_test_app: %s\n", err);
                return 2;
        }
        for (int i = 0; i < conf_cnt; i++) {
                char name[256];
                const char *eq = strchr(confs[i], '=');
                snprintf(name, sizeof(name), "%.*s", (int)(eq - confs[i]),
                         confs[i]);
                if (ks_conf_set(conf, name, eq + 1, err, sizeof(err))) {
                        fprintf(stderr, "ks_test_app: %s\n", err);
                        return 2;
                }
        }
        ks_streams_t *s = ks_streams_new(topo, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        if (!s) {
                fprintf(stderr, "ks_test_app: %s\n", err);
                return 1;
        }
        ks_streams_set_state_listener(s, on_state, NULL);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        ks_error_t *e = ks_streams_start(s);
        if (e) {
                fprintf(stderr, "ks_test_app: start failed: %s\n",
                        ks_error_message(e));
                ks_error_destroy(e);
                ks_streams_destroy(s);
                ks_topology_destroy(topo);
                return 1;
        }
        while (!signals && ks_streams_state(s) != KS_STATE_ERROR)
                usleep(50 * 1000);
        int rc = ks_streams_state(s) == KS_STATE_ERROR ? 1 : 0;
        if (!rc && dump_keys && dump_path &&
            dump_windows(s, dump_keys, dump_path)) {
                fprintf(stderr, "ks_test_app: cannot dump the windows\n");
                rc = 1;
        }
        e = ks_streams_close(s, 30000);
        if (e) {
                fprintf(stderr, "ks_test_app: %s\n", ks_error_message(e));
                ks_error_destroy(e);
                rc = 1;
        }
        ks_streams_metrics_t m;
        ks_streams_metrics(s, &m);
        fprintf(stderr,
                "ks_test_app: exit: processed=%llu produced=%llu "
                "dead_lettered=%llu commits=%llu rebalances=%llu "
                "restored=%llu late=%llu undone=%llu txn_committed=%llu "
                "txn_aborted=%llu producers_recreated=%llu\n",
                (unsigned long long)m.records_processed,
                (unsigned long long)m.records_produced,
                (unsigned long long)m.dead_lettered,
                (unsigned long long)m.commits, (unsigned long long)m.rebalances,
                (unsigned long long)m.records_restored,
                (unsigned long long)m.dropped_late,
                (unsigned long long)m.changelog_records_undone,
                (unsigned long long)m.transactions_committed,
                (unsigned long long)m.transactions_aborted,
                (unsigned long long)m.producers_recreated);
        ks_streams_destroy(s);
        ks_topology_destroy(topo);
        return rc;
}
