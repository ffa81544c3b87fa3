/* exactly_once_v2 against at-least-once on a real broker (issue 10):
 * throughput on the event-count topology, and end-to-end latency at a
 * fixed input rate. bench/run-eos.sh runs both and prints the figures.
 *
 *   bench_eos throughput --bootstrap B [--records N] [--runs R]
 *   bench_eos latency    --bootstrap B [--rate EV_S] [--warmup S]
 *                        [--measure S] [--runs R]
 *
 * throughput: N user events are produced once into one 6-partition topic;
 * then R rounds, each running the event-count topology
 * (event_count_topology.h) over that same input once per guarantee, in
 * turn: at_least_once with its default commit interval (30 s), with
 * commit.interval.ms=100, and exactly_once_v2 with its default (100 ms).
 * Each run is a fresh application id, state directory and output topic, in
 * this process. records/s: input records / seconds from the first record
 * processed to the last (2N records processed: before and after the
 * repartition topic), as bench_event_count; the close that follows (the
 * last commit) is not timed.
 *
 * latency: a producer thread writes user events at a fixed rate into a
 * fresh 6-partition topic (record timestamp = send time in ms, and the send
 * time in microseconds, CLOCK_REALTIME, in the event id "lat-<us>"); the
 * application (decode and validate, key by event type, write to a
 * 6-partition output topic: stateless, no repartition) copies each event to
 * the output; a read_committed consumer in this process takes now - send
 * time of each output record. Only records sent in [warmup, warmup +
 * measure) count; a record of that window not seen 10 s after the producer
 * stopped is missing. BENCH_TRACE=1 prints the progress every second. R rounds,
 * exactly_once_v2 (commit 100 ms, its default) then at_least_once (commit 30 s,
 * its default: at-least-once output is visible as soon as it is acknowledged,
 * whatever the commit interval). The producer, the application and the consumer
 * share the machine (and the broker, if it is local).
 *
 * Each run prints one RESULT line; each mode ends with a summary. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fs_int.h"
#include <kstreams/kstreams.h>

#include "common/bench_kafka.h"
#include "common/event_count_topology.h"
#include "common/event_gen.h"
#include "common/user_event_serde.h"

#define PARTITIONS 6
#define MAX_RUNS   16

typedef struct opts_s {
        const char *bootstrap;
        long records;
        int runs;
        int rate;
        int warmup_s, measure_s;
} opts_t;

/* One guarantee and commit interval (NULL: the guarantee's default). */
typedef struct guarantee_s {
        const char *name, *guarantee, *commit_ms;
} guarantee_t;

static int64_t realtime_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void conf_set(ks_conf_t *c, const char *name, const char *value) {
        char err[512];
        if (ks_conf_set(c, name, value, err, sizeof(err))) {
                fprintf(stderr, "bench: %s=%s: %s\n", name, value, err);
                exit(2);
        }
}

static void create_topic(const char *bootstrap, const char *topic) {
        rd_kafka_t *admin = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        bench_create_topic(admin, topic, PARTITIONS, NULL);
        rd_kafka_destroy(admin);
}

/* A running application; its state directory is in @p dir (mkdtemp). */
static ks_streams_t *start_app(const opts_t *o,
                               ks_topology_t *t,
                               const guarantee_t *g,
                               const char *app,
                               char *dir) {
        char err[512];
        if (!mkdtemp(dir)) {
                perror("bench: mkdtemp");
                exit(1);
        }
        ks_conf_t *c = ks_conf_new();
        conf_set(c, "application.id", app);
        conf_set(c, "bootstrap.servers", o->bootstrap);
        conf_set(c, "state.dir", dir);
        conf_set(c, "processing.guarantee", g->guarantee);
        if (g->commit_ms)
                conf_set(c, "commit.interval.ms", g->commit_ms);
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ks_conf_destroy(c);
        ks_error_t *e = s ? ks_streams_start(s) : NULL;
        if (!s || e) {
                fprintf(stderr, "bench: %s\n", s ? ks_error_message(e) : err);
                exit(1);
        }
        return s;
}

static void stop_app(ks_streams_t *s, char *dir) {
        ks_error_t *e = ks_streams_close(s, 60000);
        if (e) {
                fprintf(stderr, "bench: close: %s\n", ks_error_message(e));
                exit(1);
        }
        ks_streams_destroy(s);
        ks__rmtree(dir);
}

static void check_alive(ks_streams_t *s) {
        if (ks_streams_state(s) == KS_STATE_ERROR) {
                fprintf(stderr, "bench: the application failed\n");
                exit(1);
        }
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* How long a commit blocks the stream thread, on average. */
static double commit_ms_avg(const ks_streams_metrics_t *m) {
        return m->commits
                       ? (double)m->commit_latency_ms_total / (double)m->commits
                       : 0;
}

/* ---- throughput -------------------------------------------------------- */

static const guarantee_t tput_guarantees[] = {
        {"at_least_once, commit 30 s (default)", "at_least_once", NULL},
        {"at_least_once, commit 100 ms", "at_least_once", "100"},
        {"exactly_once_v2, commit 100 ms (default)", "exactly_once_v2", NULL},
};
#define TPUT_CNT ((int)(sizeof(tput_guarantees) / sizeof(*tput_guarantees)))

static double tput_run(const opts_t *o,
                       const char *in,
                       const char *tag,
                       int gi,
                       int round) {
        const guarantee_t *g = &tput_guarantees[gi];
        char app[128], out[160], dir[] = "/tmp/ks-bench-eos-XXXXXX";
        snprintf(app, sizeof(app), "%s-tput-%d-%d", tag, gi, round);
        snprintf(out, sizeof(out), "%s-out", app);
        ks_topology_t *t = ec_topology(in, out);
        ks_streams_t *s  = start_app(o, t, g, app, dir);
        uint64_t target  = 2 * (uint64_t)o->records;
        ks_streams_metrics_t m;
        double t0 = 0, c0 = 0, last_log = bench_now_s();
        for (;;) {
                check_alive(s);
                ks_streams_metrics(s, &m);
                double now = bench_now_s();
                if (!t0 && m.records_processed > 0) {
                        t0 = now;
                        c0 = bench_cpu_s();
                }
                if (m.records_processed >= target)
                        break;
                if (now - last_log > 10) {
                        last_log = now;
                        fprintf(stderr,
                                "bench: %" PRIu64 " of %" PRIu64 " processed\n",
                                m.records_processed, target);
                }
                usleep(2000);
        }
        double secs = bench_now_s() - t0, cpu = bench_cpu_s() - c0;
        ks_streams_metrics(s, &m);
        printf("RESULT mode=throughput guarantee=%s commit_ms=%s round=%d "
               "records=%ld secs=%.3f rate=%.0f cpu=%.3f commits=%" PRIu64
               " txn_committed=%" PRIu64 " txn_aborted=%" PRIu64
               " commit_ms_avg=%.1f commit_ms_max=%" PRIu64 "\n",
               g->guarantee, g->commit_ms ? g->commit_ms : "default", round,
               o->records, secs, (double)o->records / secs, cpu, m.commits,
               m.transactions_committed, m.transactions_aborted,
               commit_ms_avg(&m), m.commit_latency_ms_max);
        fflush(stdout);
        stop_app(s, dir);
        ks_topology_destroy(t);
        return (double)o->records / secs;
}

static void throughput(const opts_t *o, const char *tag) {
        char in[128];
        double rates[TPUT_CNT][MAX_RUNS];
        snprintf(in, sizeof(in), "%s-tput-in", tag);
        create_topic(o->bootstrap, in);
        double t0 = bench_now_s();
        double mb = bench_produce_events(o->bootstrap, in, o->records);
        fprintf(stderr, "bench: produced %ld events (%.1f MB) in %.1f s\n",
                o->records, mb, bench_now_s() - t0);
        for (int r = 0; r < o->runs; r++)
                for (int gi = 0; gi < TPUT_CNT; gi++)
                        rates[gi][r] = tput_run(o, in, tag, gi, r + 1);
        printf("\nEOS throughput: event count (validate, key by type, "
               "repartition, 60 s windowed count, suppress),\n"
               "%ld user events on %d partitions, one stream thread, %d "
               "alternating rounds, %ld cores shared with the broker\n",
               o->records, PARTITIONS, o->runs, sysconf(_SC_NPROCESSORS_ONLN));
        printf("%-44s %10s   %s\n", "", "median r/s", "each run");
        double med[TPUT_CNT];
        for (int gi = 0; gi < TPUT_CNT; gi++) {
                char each[256] = "";
                size_t len     = 0;
                for (int r = 0; r < o->runs && len < sizeof(each); r++)
                        len += (size_t)snprintf(each + len, sizeof(each) - len,
                                                "%s%.0f", r ? " " : "",
                                                rates[gi][r]);
                med[gi] = median(rates[gi], o->runs);
                printf("%-44s %10.0f   %s\n", tput_guarantees[gi].name, med[gi],
                       each);
        }
        printf("EOS / at_least_once (default commit): %.2f   "
               "EOS / at_least_once (commit 100 ms): %.2f   (goal >= 0.70)\n",
               med[2] / med[0], med[2] / med[1]);
        fflush(stdout);
}

/* ---- latency ----------------------------------------------------------- */

static const guarantee_t lat_guarantees[] = {
        {"exactly_once_v2, commit 100 ms (default)", "exactly_once_v2", NULL},
        {"at_least_once, commit 30 s (default)", "at_least_once", NULL},
};
#define LAT_CNT ((int)(sizeof(lat_guarantees) / sizeof(*lat_guarantees)))

static bool is_valid(const void *key, const void *value, void *opaque) {
        (void)key, (void)opaque;
        return value &&
               ec_type_index(((const user_event_t *)value)->event_type) >= 0;
}

static const void *type_of(ks_arena_t *a,
                           const void *key,
                           const void *value,
                           void *opaque) {
        (void)a, (void)key, (void)opaque;
        return ((const user_event_t *)value)->event_type; /* borrowed */
}

static ks_topology_t *latency_topology(const char *in, const char *out) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *ev =
                ks_builder_stream(b, in, ks_serde_string(), user_event_serde());
        ks_stream_t *by_type = ks_stream_select_key(
                ks_stream_filter(ev, "valid-events", is_valid, NULL), "by-type",
                type_of, NULL);
        ks_stream_to(by_type, out, ks_serde_string(), user_event_serde());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        if (!t) {
                fprintf(stderr, "bench: topology: %s\n", err);
                exit(1);
        }
        return t;
}

typedef struct pacer_s {
        const char *bootstrap, *topic;
        int rate;
        double secs;
        atomic_long sent;
        int64_t from_us, to_us; /* the measured window */
        long window_valid;      /* records sent in it that are written */
        atomic_bool done;
        double achieved; /* events/s over the run */
} pacer_t;

/* Sends pacer->rate events/s for pacer->secs: every ~0.5 ms, as many as
 * are due by then. */
static void *pacer_main(void *arg) {
        pacer_t *p = arg;
        char err[256], id[32];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", p->bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "bench: producer: %s\n", err);
                exit(1);
        }
        event_gen_t *gen = event_gen_new(7, 1765533600000, 10000);
        ks_buf_t buf     = {0};
        user_event_t ev;
        double t0 = bench_now_s();
        long sent = 0;
        for (;;) {
                double el = bench_now_s() - t0;
                if (el >= p->secs)
                        break;
                long due = (long)(el * p->rate);
                for (; sent < due; sent++) {
                        int64_t us = realtime_us();
                        event_gen_next(gen, &ev);
                        snprintf(id, sizeof(id), "lat-%" PRId64, us);
                        ev.event_id     = id;
                        ev.timestamp_ms = us / 1000;
                        if (us >= p->from_us && us < p->to_us &&
                            ec_type_index(ev.event_type) >= 0)
                                p->window_valid++;
                        ks_buf_clear(&buf);
                        user_event_encode(&ev, &buf);
                        while (rd_kafka_producev(
                                       rk, RD_KAFKA_V_TOPIC(p->topic),
                                       RD_KAFKA_V_KEY(ev.user_id,
                                                      strlen(ev.user_id)),
                                       RD_KAFKA_V_VALUE(buf.data, buf.len),
                                       RD_KAFKA_V_TIMESTAMP(us / 1000),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END) ==
                               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(rk, 1);
                }
                atomic_store(&p->sent, sent);
                rd_kafka_poll(rk, 0);
                usleep(500);
        }
        p->achieved = (double)sent / (bench_now_s() - t0);
        rd_kafka_flush(rk, 30000);
        atomic_store(&p->done, true);
        ks_buf_free(&buf);
        event_gen_destroy(gen);
        rd_kafka_destroy(rk);
        return NULL;
}

/* The send time in the event id, -1 if there is none. */
static int64_t send_us(const rd_kafka_message_t *m) {
        static const char pat[] = "\"event_id\":\"lat-";
        const char *p = memmem(m->payload, m->len, pat, sizeof(pat) - 1);
        return p ? strtoll(p + sizeof(pat) - 1, NULL, 10) : -1;
}

static rd_kafka_t *committed_reader(const char *bootstrap, const char *out) {
        char err[256], group[64];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        snprintf(group, sizeof(group), "bench-eos-reader-%d", (int)getpid());
        rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(c, "isolation.level", "read_committed", err,
                          sizeof(err));
        rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "bench: consumer: %s\n", err);
                exit(1);
        }
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(PARTITIONS);
        for (int p = 0; p < PARTITIONS; p++)
                rd_kafka_topic_partition_list_add(l, out, p)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        return rk;
}

typedef struct lat_result_s {
        double p50, p99, p999, max; /* ms */
        long measured, missing;
        double achieved;
} lat_result_t;

static lat_result_t lat_run(const opts_t *o,
                            const char *tag,
                            int gi,
                            int round) {
        const guarantee_t *g = &lat_guarantees[gi];
        char app[128], in[160], out[160], dir[] = "/tmp/ks-bench-eos-XXXXXX";
        snprintf(app, sizeof(app), "%s-lat-%d-%d", tag, gi, round);
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(out, sizeof(out), "%s-out", app);
        create_topic(o->bootstrap, in);
        create_topic(o->bootstrap, out);
        ks_topology_t *t = latency_topology(in, out);
        ks_streams_t *s  = start_app(o, t, g, app, dir);
        ks_streams_metrics_t m;
        double wait0 = bench_now_s();
        do {
                check_alive(s);
                ks_streams_metrics(s, &m);
                if (bench_now_s() - wait0 > 60) {
                        fprintf(stderr, "bench: not running after 60 s\n");
                        exit(1);
                }
                usleep(10000);
        } while (ks_streams_state(s) != KS_STATE_RUNNING ||
                 m.active_tasks < PARTITIONS);
        rd_kafka_t *rd = committed_reader(o->bootstrap, out);

        int64_t start_us = realtime_us();
        int64_t from_us  = start_us + (int64_t)o->warmup_s * 1000000;
        int64_t to_us    = from_us + (int64_t)o->measure_s * 1000000;
        pacer_t p        = {.bootstrap = o->bootstrap,
                            .topic     = in,
                            .rate      = o->rate,
                            .secs      = o->warmup_s + o->measure_s + 2,
                            .from_us   = from_us,
                            .to_us     = to_us};
        size_t cap = (size_t)o->rate * (size_t)(o->measure_s + 1), n = 0;
        double *lat = malloc(cap * sizeof(*lat));
        pthread_t th;
        if (!lat || pthread_create(&th, NULL, pacer_main, &p)) {
                fprintf(stderr, "bench: out of resources\n");
                exit(1);
        }
        /* Every output record sent in the window counts; one the pacer
         * sent in it but this reader never sees is missing. */
        double done_at = 0, last_trace = bench_now_s();
        long seen  = 0;
        bool trace = getenv("BENCH_TRACE") != NULL;
        for (;;) {
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(rd, 100);
                int64_t now             = realtime_us();
                if (msg) {
                        int64_t us = msg->err ? -1 : send_us(msg);
                        if (us >= from_us && us < to_us && n < cap)
                                lat[n++] = (double)(now - us) / 1000.0;
                        seen += !msg->err;
                        if (trace && us > 0 &&
                            bench_now_s() - last_trace >= 1) {
                                last_trace = bench_now_s();
                                ks_streams_metrics(s, &m);
                                fprintf(stderr,
                                        "trace %.1f s: sent %ld, app consumed "
                                        "%" PRIu64 " produced %" PRIu64
                                        ", read %ld, latency %.0f ms\n",
                                        (double)(now - start_us) / 1e6,
                                        atomic_load(&p.sent),
                                        m.records_consumed, m.records_produced,
                                        seen, (double)(now - us) / 1000.0);
                        }
                        rd_kafka_message_destroy(msg);
                }
                if (atomic_load(&p.done) && !done_at)
                        done_at = bench_now_s();
                if (done_at && bench_now_s() - done_at > 10)
                        break;
                check_alive(s);
        }
        pthread_join(th, NULL);
        ks_streams_metrics(s, &m);
        rd_kafka_consumer_close(rd);
        rd_kafka_destroy(rd);
        stop_app(s, dir);
        ks_topology_destroy(t);

        lat_result_t r = {.measured = (long)n, .achieved = p.achieved};
        /* Unknown event types are filtered out, not written. */
        r.missing = p.window_valid > (long)n ? p.window_valid - (long)n : 0;
        qsort(lat, n, sizeof(*lat), cmp_double);
        if (n) {
                r.p50  = lat[(size_t)(0.50 * (double)(n - 1))];
                r.p99  = lat[(size_t)(0.99 * (double)(n - 1))];
                r.p999 = lat[(size_t)(0.999 * (double)(n - 1))];
                r.max  = lat[n - 1];
        }
        free(lat);
        printf("RESULT mode=latency guarantee=%s round=%d rate=%.0f "
               "sent_in_window=%ld measured=%ld missing=%ld p50_ms=%.1f "
               "p99_ms=%.1f p999_ms=%.1f max_ms=%.1f commits=%" PRIu64
               " txn_committed=%" PRIu64 " txn_aborted=%" PRIu64
               " commit_ms_avg=%.1f commit_ms_max=%" PRIu64 "\n",
               g->guarantee, round, r.achieved, p.window_valid, r.measured,
               r.missing, r.p50, r.p99, r.p999, r.max, m.commits,
               m.transactions_committed, m.transactions_aborted,
               commit_ms_avg(&m), m.commit_latency_ms_max);
        fflush(stdout);
        return r;
}

static void latency(const opts_t *o, const char *tag) {
        lat_result_t res[LAT_CNT][MAX_RUNS];
        for (int r = 0; r < o->runs; r++)
                for (int gi = 0; gi < LAT_CNT; gi++)
                        res[gi][r] = lat_run(o, tag, gi, r + 1);
        printf("\nEOS latency: record timestamp (send time) to visible on the "
               "output topic (read_committed),\n"
               "%d events/s for %d s, measured over the %d s after %d s "
               "of warm-up; stateless (validate, key by type, write), "
               "6 partitions;\n"
               "the producer, the application, the consumer and the broker "
               "share %ld cores\n",
               o->rate, o->warmup_s + o->measure_s + 2, o->measure_s,
               o->warmup_s, sysconf(_SC_NPROCESSORS_ONLN));
        printf("%-42s %5s %8s %8s %8s %8s %8s %8s\n", "", "run", "ev/s",
               "p50 ms", "p99 ms", "p99.9 ms", "max ms", "missing");
        for (int gi = 0; gi < LAT_CNT; gi++)
                for (int r = 0; r < o->runs; r++) {
                        const lat_result_t *x = &res[gi][r];
                        printf("%-42s %5d %8.0f %8.1f %8.1f %8.1f %8.1f "
                               "%8ld\n",
                               r ? "" : lat_guarantees[gi].name, r + 1,
                               x->achieved, x->p50, x->p99, x->p999, x->max,
                               x->missing);
                }
        printf("goal: exactly_once_v2 p99 <= 150 ms at 50000 events/s\n");
        fflush(stdout);
}

static void usage(void) {
        fprintf(stderr,
                "usage: bench_eos throughput|latency --bootstrap "
                "HOST:PORT [--records N] [--runs R] [--rate EV_S] "
                "[--warmup S] [--measure S]\n");
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"bootstrap", 1, NULL, 'b'}, {"records", 1, NULL, 'n'},
                {"runs", 1, NULL, 'r'},      {"rate", 1, NULL, 'R'},
                {"warmup", 1, NULL, 'w'},    {"measure", 1, NULL, 'm'},
                {NULL, 0, NULL, 0}};
        opts_t o = {.records   = 1000000,
                    .runs      = 2,
                    .rate      = 50000,
                    .warmup_s  = 10,
                    .measure_s = 20};
        if (argc < 2)
                usage();
        const char *mode = argv[1];
        optind           = 2;
        int ch;
        while ((ch = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
                switch (ch) {
                case 'b':
                        o.bootstrap = optarg;
                        break;
                case 'n':
                        o.records = atol(optarg);
                        break;
                case 'r':
                        o.runs = atoi(optarg);
                        break;
                case 'R':
                        o.rate = atoi(optarg);
                        break;
                case 'w':
                        o.warmup_s = atoi(optarg);
                        break;
                case 'm':
                        o.measure_s = atoi(optarg);
                        break;
                default:
                        usage();
                }
        }
        if (!o.bootstrap || o.records < 1 || o.runs < 1 || o.runs > MAX_RUNS ||
            o.rate < 1 || o.warmup_s < 0 || o.measure_s < 1)
                usage();
        char tag[64];
        snprintf(tag, sizeof(tag), "eos-%d-%ld", (int)getpid(),
                 (long)time(NULL));
        if (!strcmp(mode, "throughput"))
                throughput(&o, tag);
        else if (!strcmp(mode, "latency"))
                latency(&o, tag);
        else
                usage();
        return 0;
}
