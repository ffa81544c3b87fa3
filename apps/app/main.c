/* kstreams-app: the analytics jobs (jobs.h) against Kafka, or replayed
 * through the test driver over a kcat -J dump. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>

#include "jobs.h"
#include "lag.h"

typedef struct options_s {
        job_kind_t jobs[JOB__COUNT];
        size_t job_cnt;
        const char *bootstrap;
        const char *application_id;
        const char *application_id_prefix;
        const char *guarantee;
        const char *threads;
        const char *state_dir;
        const char *commit_interval;
        const char *dlq_topic;
        const char *postgres;
        const char *http;     /* --http HOST:PORT */
        const char *describe; /* NULL, "text" or "mermaid" */
        const char *replay;
        const char *replay_out;
        bool replay_close;
        int64_t stats_interval_ms;
        job_opts_t job;
} options_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
        (void)sig;
        stop_requested = 1;
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: kstreams-app --job JOB[,JOB...] [options]\n"
                "Runs analytics jobs over user-events: event-count (valid "
                "events per event_type\nper window), revenue (purchases per "
                "currency per window), sessions (per\nuser_id). Results go "
                "to the output topic as JSON, once per window.\n\n"
                "  --job LIST                event-count, revenue, sessions "
                "(comma-separated)\n"
                "  --bootstrap-servers HOSTS Kafka brokers (default: "
                "$KS_BOOTSTRAP)\n"
                "  --application-id ID       one application for all the "
                "jobs (default: one each,\n"
                "                            <prefix>-<job>)\n"
                "  --application-id-prefix P the prefix of those ids "
                "(default kstreams-app)\n"
                "  --processing-guarantee G  at_least_once (default) | "
                "exactly_once_v2\n"
                "  --threads N               stream threads per job "
                "(default 1)\n"
                "  --state-dir DIR           local state (default "
                "/tmp/kstreams)\n"
                "  --commit-interval MS      commit interval (default "
                "30000)\n"
                "  --input-topic T           default user-events\n"
                "  --output-topic T          default event-analytics\n"
                "  --dlq-topic T             dead-letter topic (default "
                "user-events-dlq)\n"
                "  --window D                tumbling window (default 60s)\n"
                "  --grace D                 grace for late events "
                "(default 10s)\n"
                "  --session-gap D           session inactivity gap "
                "(default 30m)\n"
                "  --dedup-window D          drop repeated event_ids within "
                "D of event time\n"
                "                            (default 10m; 0: off)\n"
                "  --stats-interval D        statistics line period "
                "(default 5s)\n"
                "  --postgres DSN            also upsert the results into "
                "PostgreSQL (libpq DSN;\n"
                "                            default $KS_PG_DSN): tables "
                "event_counts, revenue,\n"
                "                            user_sessions of "
                "infra/postgres/schema.sql\n"
                "  --http HOST:PORT          serve GET /metrics, /health, "
                "/ready and /v1/stores/...\n"
                "                            (job i on PORT+i; port 0: each "
                "picks a free port)\n"
                "  --describe[=mermaid]      print the topology and exit\n"
                "  --replay FILE             run over a kcat -J dump in the "
                "test driver (no Kafka)\n"
                "  --replay-out FILE         the replay's output topics as "
                "kcat -J lines (default\n"
                "                            stdout)\n"
                "  --replay-close-windows    at the end of the replay, emit "
                "every window still open\n"
                "  --help                    this text\n"
                "Durations: a number with ms, s, m or h (no unit: ms).\n");
}

static bool parse_duration(const char *s, int64_t *out) {
        char *end;
        errno       = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v < 0)
                return false;
        int64_t mul = 1;
        if (!strcmp(end, "s"))
                mul = 1000;
        else if (!strcmp(end, "m"))
                mul = 60000;
        else if (!strcmp(end, "h"))
                mul = 3600000;
        else if (*end && strcmp(end, "ms"))
                return false;
        if (v > INT64_MAX / mul)
                return false;
        *out = v * mul;
        return true;
}

static bool parse_jobs(char *list, options_t *o) {
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
                job_kind_t k;
                if (!job_parse(tok, &k)) {
                        fprintf(stderr, "kstreams-app: unknown job '%s'\n",
                                tok);
                        return false;
                }
                for (size_t i = 0; i < o->job_cnt; i++)
                        if (o->jobs[i] == k)
                                goto next;
                o->jobs[o->job_cnt++] = k;
        next:;
        }
        return o->job_cnt > 0;
}

enum {
        OPT_JOB = 256,
        OPT_BOOTSTRAP,
        OPT_APP_ID,
        OPT_APP_ID_PREFIX,
        OPT_GUARANTEE,
        OPT_THREADS,
        OPT_STATE_DIR,
        OPT_COMMIT,
        OPT_INPUT,
        OPT_OUTPUT,
        OPT_DLQ,
        OPT_WINDOW,
        OPT_GRACE,
        OPT_GAP,
        OPT_DEDUP,
        OPT_STATS,
        OPT_POSTGRES,
        OPT_HTTP,
        OPT_DESCRIBE,
        OPT_REPLAY,
        OPT_REPLAY_OUT,
        OPT_REPLAY_CLOSE,
        OPT_HELP
};

/* @returns 0 to go on, 1 to exit with success, 2 on a usage error. */
static int parse_args(int argc, char **argv, options_t *o) {
        static const struct option longopts[] = {
                {"job", required_argument, NULL, OPT_JOB},
                {"bootstrap-servers", required_argument, NULL, OPT_BOOTSTRAP},
                {"application-id", required_argument, NULL, OPT_APP_ID},
                {"application-id-prefix", required_argument, NULL,
                 OPT_APP_ID_PREFIX},
                {"processing-guarantee", required_argument, NULL,
                 OPT_GUARANTEE},
                {"threads", required_argument, NULL, OPT_THREADS},
                {"state-dir", required_argument, NULL, OPT_STATE_DIR},
                {"commit-interval", required_argument, NULL, OPT_COMMIT},
                {"input-topic", required_argument, NULL, OPT_INPUT},
                {"output-topic", required_argument, NULL, OPT_OUTPUT},
                {"dlq-topic", required_argument, NULL, OPT_DLQ},
                {"window", required_argument, NULL, OPT_WINDOW},
                {"grace", required_argument, NULL, OPT_GRACE},
                {"session-gap", required_argument, NULL, OPT_GAP},
                {"dedup-window", required_argument, NULL, OPT_DEDUP},
                {"stats-interval", required_argument, NULL, OPT_STATS},
                {"postgres", required_argument, NULL, OPT_POSTGRES},
                {"http", required_argument, NULL, OPT_HTTP},
                {"describe", optional_argument, NULL, OPT_DESCRIBE},
                {"replay", required_argument, NULL, OPT_REPLAY},
                {"replay-out", required_argument, NULL, OPT_REPLAY_OUT},
                {"replay-close-windows", no_argument, NULL, OPT_REPLAY_CLOSE},
                {"help", no_argument, NULL, OPT_HELP},
                {NULL, 0, NULL, 0}};
        int c;
        *o = (options_t){.bootstrap             = getenv("KS_BOOTSTRAP"),
                         .guarantee             = "at_least_once",
                         .application_id_prefix = "kstreams-app",
                         .dlq_topic             = "user-events-dlq",
                         .stats_interval_ms     = 5000,
                         .job                   = {.input_topic     = "user-events",
                                                   .output_topic    = "event-analytics",
                                                   .window_ms       = 60000,
                                                   .grace_ms        = 10000,
                                                   .session_gap_ms  = 30 * 60000,
                                                   .dedup_window_ms = 10 * 60000}};
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                bool ok = true;
                switch (c) {
                case OPT_JOB:
                        ok = parse_jobs(optarg, o);
                        break;
                case OPT_BOOTSTRAP:
                        o->bootstrap = optarg;
                        break;
                case OPT_APP_ID:
                        o->application_id = optarg;
                        break;
                case OPT_APP_ID_PREFIX:
                        o->application_id_prefix = optarg;
                        break;
                case OPT_GUARANTEE:
                        o->guarantee = optarg;
                        break;
                case OPT_THREADS:
                        o->threads = optarg;
                        break;
                case OPT_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case OPT_COMMIT:
                        o->commit_interval = optarg;
                        break;
                case OPT_INPUT:
                        o->job.input_topic = optarg;
                        break;
                case OPT_OUTPUT:
                        o->job.output_topic = optarg;
                        break;
                case OPT_DLQ:
                        o->dlq_topic = optarg;
                        break;
                case OPT_WINDOW:
                        ok = parse_duration(optarg, &o->job.window_ms) &&
                             o->job.window_ms > 0;
                        break;
                case OPT_GRACE:
                        ok = parse_duration(optarg, &o->job.grace_ms);
                        break;
                case OPT_GAP:
                        ok = parse_duration(optarg, &o->job.session_gap_ms) &&
                             o->job.session_gap_ms > 0;
                        break;
                case OPT_DEDUP:
                        ok = parse_duration(optarg, &o->job.dedup_window_ms);
                        break;
                case OPT_STATS:
                        ok = parse_duration(optarg, &o->stats_interval_ms) &&
                             o->stats_interval_ms > 0;
                        break;
                case OPT_HTTP:
                        o->http = optarg;
                        break;
                case OPT_POSTGRES:
                        o->postgres = optarg;
                        break;
                case OPT_DESCRIBE:
                        o->describe = optarg ? optarg : "text";
                        ok          = !strcmp(o->describe, "text") ||
                             !strcmp(o->describe, "mermaid");
                        break;
                case OPT_REPLAY:
                        o->replay = optarg;
                        break;
                case OPT_REPLAY_OUT:
                        o->replay_out = optarg;
                        break;
                case OPT_REPLAY_CLOSE:
                        o->replay_close = true;
                        break;
                case OPT_HELP:
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return 2;
                }
                if (!ok) {
                        fprintf(stderr,
                                "kstreams-app: invalid value for --%s: %s\n",
                                longopts[c - OPT_JOB].name,
                                optarg ? optarg : "");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "kstreams-app: unexpected argument %s\n",
                        argv[optind]);
                return 2;
        }
        if (!o->job_cnt) {
                fprintf(stderr,
                        "kstreams-app: --job is required "
                        "(event-count, revenue, sessions)\n");
                return 2;
        }
        if ((o->replay_out || o->replay_close) && !o->replay) {
                fprintf(stderr,
                        "kstreams-app: --replay-out and "
                        "--replay-close-windows need --replay\n");
                return 2;
        }
        return 0;
}

/* ---- the PostgreSQL hook ---------------------------------------------------
 */

/* Where the jobs' results also go: the tables event_counts, revenue and
 * user_sessions (infra/postgres/schema.sql) through the library's
 * PostgreSQL sink, from --postgres or else KS_PG_DSN. Not for --describe
 * or --replay: the test driver runs no commits, so a sink there would
 * write nothing; say so rather than pretend. @returns false if the run
 * must stop. */
static bool postgres_hook(options_t *o) {
        const char *env = getenv("KS_PG_DSN");
        if (!o->postgres && env && *env)
                o->postgres = env;
        if (o->postgres && !*o->postgres) {
                fprintf(stderr, "kstreams-app: --postgres: empty DSN\n");
                return false;
        }
        if (o->postgres && (o->replay || o->describe)) {
                if (o->postgres != env) {
                        fprintf(stderr,
                                "kstreams-app: --postgres needs Kafka "
                                "(not --replay or --describe)\n");
                        return false;
                }
                o->postgres = NULL; /* KS_PG_DSN only: Kafka mode uses it */
        }
        o->job.postgres_dsn = o->postgres;
        return true;
}

/* ---- one application
 * --------------------------------------------------------- */

/* One application id: one topology with one or more jobs. */
typedef struct app_s {
        char application_id[256];
        char label[64];
        job_kind_t jobs[JOB__COUNT];
        size_t job_cnt;
        job_stats_t stats;
        ks_topology_t *topology;
        ks_streams_t *streams;
        lag_probe_t *lag;
        uint64_t last_in;
        char http[300]; /* its http.listen; "" for none */
} app_t;

static void app_free(app_t *a) {
        lag_probe_destroy(a->lag);
        ks_streams_destroy(a->streams);
        ks_topology_destroy(a->topology);
}

/* The apps to run: one per job, or one for all with --application-id. */
static size_t plan_apps(const options_t *o, app_t *apps) {
        size_t n = o->application_id ? 1 : o->job_cnt;
        for (size_t i = 0; i < n; i++) {
                app_t *a = &apps[i];
                memset(a, 0, sizeof(*a));
                if (o->application_id) {
                        memcpy(a->jobs, o->jobs, sizeof(o->jobs));
                        a->job_cnt = o->job_cnt;
                        snprintf(a->application_id, sizeof(a->application_id),
                                 "%s", o->application_id);
                        snprintf(
                                a->label, sizeof(a->label), "%s",
                                o->job_cnt > 1 ? "jobs" : job_name(o->jobs[0]));
                } else {
                        a->jobs[0] = o->jobs[i];
                        a->job_cnt = 1;
                        snprintf(a->application_id, sizeof(a->application_id),
                                 "%s-%s", o->application_id_prefix,
                                 job_name(o->jobs[i]));
                        snprintf(a->label, sizeof(a->label), "%s",
                                 job_name(o->jobs[i]));
                }
        }
        return n;
}

static bool app_build(const options_t *o, app_t *a) {
        char errstr[512];
        a->topology = jobs_build(a->jobs, a->job_cnt, &o->job, &a->stats,
                                 errstr, sizeof(errstr));
        if (!a->topology) {
                fprintf(stderr, "kstreams-app: %s: %s\n", a->label, errstr);
                return false;
        }
        return true;
}

static ks_conf_t *app_conf(const options_t *o, const app_t *a) {
        char errstr[512];
        ks_conf_t *conf            = ks_conf_new();
        const char *const set[][2] = {
                {"application.id", a->application_id},
                {"bootstrap.servers", o->bootstrap},
                {"processing.guarantee", o->guarantee},
                {"num.stream.threads", o->threads},
                {"state.dir", o->state_dir},
                {"commit.interval.ms", o->commit_interval},
                {"default.deserialization.exception.handler", "dead-letter"},
                {"errors.dead.letter.queue.topic.name", o->dlq_topic},
                {"http.listen", a->http[0] ? a->http : NULL},
        };
        if (!conf)
                return NULL;
        for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
                if (!set[i][1])
                        continue;
                if (ks_conf_set(conf, set[i][0], set[i][1], errstr,
                                sizeof(errstr))) {
                        fprintf(stderr, "kstreams-app: %s\n", errstr);
                        ks_conf_destroy(conf);
                        return NULL;
                }
        }
        return conf;
}

/* ---- --describe
 * ---------------------------------------------------------------- */

static int describe(const options_t *o, app_t *apps, size_t n) {
        for (size_t i = 0; i < n; i++) {
                ks_buf_t out = {0};
                ks_err_t err =
                        !strcmp(o->describe, "mermaid")
                                ? ks_topology_describe_mermaid(apps[i].topology,
                                                               &out)
                                : ks_topology_describe(apps[i].topology, &out);
                if (err) {
                        fprintf(stderr, "kstreams-app: describe: %s\n",
                                ks_err2str(err));
                        ks_buf_free(&out);
                        return 1;
                }
                printf("# %s (application.id %s)\n%.*s\n", apps[i].label,
                       apps[i].application_id, (int)out.len,
                       out.data ? out.data : "");
                ks_buf_free(&out);
        }
        return 0;
}

/* ---- --replay
 * -------------------------------------------------------------------- */

/* The partition count of @p topic in the dump: its largest partition + 1
 * (1 when no line names one). */
static int32_t dump_partitions(FILE *in, const char *topic) {
        char *line  = NULL;
        size_t cap  = 0;
        int32_t max = 0;
        while (getline(&line, &cap, in) >= 0) {
                json_t *j = json_loads(line, 0, NULL);
                json_t *t = json_object_get(j, "topic");
                json_t *p = json_object_get(j, "partition");
                if (json_is_integer(p) &&
                    (!json_is_string(t) ||
                     !strcmp(json_string_value(t), topic)) &&
                    json_integer_value(p) + 1 > max &&
                    json_integer_value(p) < 100000)
                        max = (int32_t)json_integer_value(p) + 1;
                json_decref(j);
        }
        free(line);
        rewind(in);
        return max > 0 ? max : 1;
}

/* The replay's outputs as the driver writes them: the output and
 * dead-letter topics' records go to the file at once (the driver keeps
 * none, so a replay of any length runs in bounded memory); changelog
 * records are not written. */
typedef struct replay_out_s {
        const options_t *o;
        FILE *out;
        ks_error_t *err; /* the first write that failed */
} replay_out_t;

static void replay_output(ks_test_driver_t *drv,
                          const ks_test_record_t *rec,
                          void *opaque) {
        replay_out_t *ro = opaque;
        if (ro->err || (strcmp(rec->topic, ro->o->job.output_topic) &&
                        strcmp(rec->topic, ro->o->dlq_topic)))
                return;
        ro->err = ks_test_driver_write_jsonl(drv, rec, ro->out);
}

/* The process's peak resident set so far, in MiB. */
static double peak_rss_mib(void) {
        struct rusage ru;
        return getrusage(RUSAGE_SELF, &ru) ? 0.0 : (double)ru.ru_maxrss / 1024;
}

static int replay_app(const options_t *o, app_t *a, FILE *in, FILE *out) {
        char errstr[512];
        ks_conf_t *conf = app_conf(o, a);
        if (!conf)
                return 1;
        ks_test_driver_t *drv =
                ks_test_driver_new(a->topology, conf, errstr, sizeof(errstr));
        ks_conf_destroy(conf);
        if (!drv) {
                fprintf(stderr, "kstreams-app: %s: %s\n", a->label, errstr);
                return 1;
        }
        int rc          = 1;
        size_t cnt      = 0;
        replay_out_t ro = {o, out, NULL};
        ks_err_t e =
                ks_test_driver_stream_outputs(drv, replay_output, &ro, NULL);
        if (!e)
                e = ks_test_driver_create_topic(
                        drv, o->job.input_topic,
                        dump_partitions(in, o->job.input_topic));
        ks_error_t *err =
                e ? ks_error_new(e, "cannot create %s", o->job.input_topic)
                  : ks_test_driver_replay_jsonl(drv, in, o->job.input_topic,
                                                &cnt);
        size_t closed = 0;
        if (!err && o->replay_close)
                err = ks_test_driver_close_windows(drv, &closed);
        if (!err && ro.err) {
                err    = ro.err;
                ro.err = NULL;
        }
        if (!err && fflush(out))
                err = ks_error_new(KS_ERR_IO, "cannot write the output: %s",
                                   strerror(errno));
        if (err) {
                fprintf(stderr, "kstreams-app: %s: replay: %s\n", a->label,
                        ks_error_message(err));
                ks_error_destroy(err);
                goto out;
        }
        fprintf(stderr,
                "[%s] replayed %zu records: results %" PRIu64
                ", dead-lettered %" PRIu64 ", deduplicated %" PRIu64
                ", late %" PRIu64 "%s; peak RSS %.1f MiB\n",
                a->label, cnt, (uint64_t)atomic_load(&a->stats.emitted),
                ks_test_driver_metric(drv, "dead-lettered"),
                ks_test_driver_metric(drv, "dropped-dedup"),
                ks_test_driver_metric(drv, "dropped-late"),
                o->replay_close ? " (all windows closed at the end)" : "",
                peak_rss_mib());
        rc = 0;
out:
        ks_error_destroy(ro.err);
        ks_test_driver_destroy(drv);
        rewind(in);
        return rc;
}

static int replay(const options_t *o, app_t *apps, size_t n) {
        FILE *in = fopen(o->replay, "r");
        if (!in) {
                fprintf(stderr, "kstreams-app: %s: %s\n", o->replay,
                        strerror(errno));
                return 1;
        }
        FILE *out = o->replay_out ? fopen(o->replay_out, "w") : stdout;
        if (!out) {
                fprintf(stderr, "kstreams-app: %s: %s\n", o->replay_out,
                        strerror(errno));
                fclose(in);
                return 1;
        }
        int rc = 0;
        for (size_t i = 0; !rc && i < n; i++)
                rc = replay_app(o, &apps[i], in, out);
        fclose(in);
        if (out != stdout && fclose(out) && !rc) {
                fprintf(stderr, "kstreams-app: %s: %s\n", o->replay_out,
                        strerror(errno));
                rc = 1;
        }
        return rc;
}

/* ---- Kafka
 * ------------------------------------------------------------------------ */

static lag_probe_t *app_lag_probe(const options_t *o, const app_t *a) {
        char names[JOB__COUNT][512];
        const char *topics[JOB__COUNT + 1] = {o->job.input_topic};
        size_t n                           = 1;
        for (size_t i = 0; i < a->job_cnt; i++) {
                const char *r = job_repartition_name(a->jobs[i]);
                char *name    = names[n - 1];
                if (!r)
                        continue;
                int w = snprintf(name, sizeof(names[0]), "%s-%s-repartition",
                                 a->application_id, r);
                if (w < 0 || (size_t)w >= sizeof(names[0]))
                        return NULL; /* the line says "lag ?" */
                topics[n++] = name;
        }
        return lag_probe_new(o->bootstrap, a->application_id, topics, n);
}

static void stats_line(app_t *a, double seconds) {
        ks_streams_metrics_t m;
        ks_streams_metrics(a->streams, &m);
        uint64_t in = (uint64_t)atomic_load(&a->stats.seen) +
                      m.dropped_deserialization;
        int64_t lag       = a->lag ? lag_probe_get(a->lag, 2000) : -1;
        char lag_text[32] = "?";
        if (lag >= 0)
                snprintf(lag_text, sizeof(lag_text), "%" PRId64, lag);
        fprintf(stderr,
                "[%s] %s  in %" PRIu64 " (%.0f/s)  late %" PRIu64
                "  dead-lettered %" PRIu64 "  deduplicated %" PRIu64
                "  windows %" PRIu64 "  lag %s  tasks %" PRIu64
                "  commits %" PRIu64 "\n",
                a->label, ks_state_name(ks_streams_state(a->streams)), in,
                seconds > 0 ? (double)(in - a->last_in) / seconds : 0.0,
                m.dropped_late, m.dead_lettered, m.dropped_dedup,
                (uint64_t)atomic_load(&a->stats.emitted), lag_text,
                m.active_tasks, m.commits);
        a->last_in = in;
}

static int run_kafka(const options_t *o, app_t *apps, size_t n) {
        char errstr[512];
        if (!o->bootstrap || !*o->bootstrap) {
                fprintf(stderr,
                        "kstreams-app: no --bootstrap-servers (nor "
                        "KS_BOOTSTRAP); use --replay to run without "
                        "Kafka\n");
                return 2;
        }
        int rc         = 0;
        size_t started = 0;
        for (size_t i = 0; i < n; i++) {
                const char *colon = o->http ? strrchr(o->http, ':') : NULL;
                if (o->http && (!colon || colon == o->http)) {
                        fprintf(stderr,
                                "kstreams-app: --http: \"%s\" is not "
                                "HOST:PORT\n",
                                o->http);
                        return 2;
                }
                if (colon) {
                        long port = atol(colon + 1);
                        snprintf(apps[i].http, sizeof(apps[i].http), "%.*s:%ld",
                                 (int)(colon - o->http), o->http,
                                 port ? port + (long)i : 0);
                }
                ks_conf_t *conf = app_conf(o, &apps[i]);
                if (!conf)
                        return 1;
                apps[i].streams = ks_streams_new(apps[i].topology, conf, errstr,
                                                 sizeof(errstr));
                ks_conf_destroy(conf);
                if (!apps[i].streams) {
                        fprintf(stderr, "kstreams-app: %s: %s\n", apps[i].label,
                                errstr);
                        return 1;
                }
        }
        for (; started < n; started++) {
                ks_error_t *err = ks_streams_start(apps[started].streams);
                if (err) {
                        fprintf(stderr, "kstreams-app: %s: %s\n",
                                apps[started].label, ks_error_message(err));
                        ks_error_destroy(err);
                        rc = 1;
                        break;
                }
                fprintf(stderr, "[%s] started (application.id %s)\n",
                        apps[started].label, apps[started].application_id);
                int port = ks_streams_http_port(apps[started].streams);
                if (port > 0)
                        fprintf(stderr,
                                "[%s] metrics: http://%.*s:%d/metrics\n",
                                apps[started].label,
                                (int)(strrchr(apps[started].http, ':') -
                                      apps[started].http),
                                apps[started].http, port);
                /* The lag is that of the input topic and the repartition
                 * topics: 0 when everything read was processed and
                 * committed. Without a probe the line says "?". */
                apps[started].lag = app_lag_probe(o, &apps[started]);
        }
        int64_t last = ks_now_ms();
        while (!rc && !stop_requested) {
                usleep(100 * 1000);
                bool failed = false;
                for (size_t i = 0; i < n; i++)
                        failed |= ks_streams_state(apps[i].streams) ==
                                  KS_STATE_ERROR;
                int64_t now = ks_now_ms();
                if (failed || now - last >= o->stats_interval_ms) {
                        for (size_t i = 0; i < n; i++)
                                stats_line(&apps[i],
                                           (double)(now - last) / 1000.0);
                        last = now;
                }
                if (failed) {
                        fprintf(stderr,
                                "kstreams-app: a job failed "
                                "(state ERROR): stopping\n");
                        rc = 1;
                }
        }
        for (size_t i = 0; i < started; i++) {
                ks_error_t *err = ks_streams_close(apps[i].streams, 60000);
                if (err) {
                        fprintf(stderr, "kstreams-app: %s: close: %s\n",
                                apps[i].label, ks_error_message(err));
                        ks_error_destroy(err);
                        rc = 1;
                }
                stats_line(&apps[i], 0);
                fprintf(stderr, "[%s] closed\n", apps[i].label);
        }
        return rc;
}

int main(int argc, char **argv) {
        options_t o;
        app_t apps[JOB__COUNT];
        int rc = parse_args(argc, argv, &o);
        if (rc)
                return rc == 1 ? 0 : 2;
        if (!postgres_hook(&o))
                return 2;
        size_t n     = plan_apps(&o, apps);
        size_t built = 0;
        for (; built < n; built++)
                if (!app_build(&o, &apps[built]))
                        break;
        if (built < n) {
                rc = 1;
                n  = built + 1; /* free the one that failed too */
                goto out;
        }
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        if (o.describe)
                rc = describe(&o, apps, n);
        else if (o.replay)
                rc = replay(&o, apps, n);
        else
                rc = run_kafka(&o, apps, n);
out:
        for (size_t i = 0; i < n; i++)
                app_free(&apps[i]);
        return rc;
}
