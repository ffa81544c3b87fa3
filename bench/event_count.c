/* The event-count job on a real broker, and its raw librdkafka limits: one
 * mode per process, so that each run's CPU time and peak RSS are its own.
 * bench/peer/run.sh runs the modes and Kafka Streams' EventCount
 * alternately and prints the table.
 *
 *   bench_event_count produce     --bootstrap B --topic IN --records N
 *   bench_event_count raw-consume --bootstrap B --topic IN --records N
 *   bench_event_count raw-pipe    --bootstrap B --topic IN --out OUT -n N
 *   bench_event_count kstreams    --bootstrap B --topic IN --out OUT -n N
 *                                 --app ID [--threads T] [--set k=v]...
 *                                 [--trace]
 *   bench_event_count check       --bootstrap B --out OUT --records N
 *
 * The topology (as bench/peer's EventCount): decode and validate each user
 * event, key it by event type, repartition, count per type in 60 s
 * tumbling windows with a grace of 2 days (six partitions replayed at their
 * own pace mix event times by up to the whole day the input spans: no
 * record may be late), suppress until the window closes, and write each
 * final count as JSON keyed by event type.
 *
 * Once every input record has been counted, FLUSH_EVENTS records far in
 * the future (one per event type and input partition) close every window;
 * `check` then compares the output with the counts it computes from the
 * generator (same seed). The flush is not part of the timed interval.
 *
 * Every timed mode prints one line:
 *   RESULT records=N secs=S cpu=C rss_kb=R
 * with S from the first record to the last one processed (produced and
 * acknowledged for raw-pipe), C the process's CPU seconds over the same
 * interval, R its peak RSS. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fs_int.h"
#include <kstreams/kstreams.h>

#include "common/bench_kafka.h"
#include "common/event_count_topology.h"
#include "common/event_gen.h"
#include "common/user_event_serde.h"

#define PARTITIONS   6
#define GEN_SEED     7
#define GEN_START_MS 1765533600000LL
#define GEN_USERS    10000
/* Ten days after the generator's start: beyond every window's end + grace
 * (1M events span ~28 hours). */
#define FLUSH_MS (GEN_START_MS + 10LL * 86400000)
#define MAX_SETS 32

#define TYPE_CNT     EC_TYPE_CNT
#define FLUSH_EVENTS (TYPE_CNT * PARTITIONS)

typedef struct opts_s {
        const char *bootstrap, *topic, *out, *app;
        long records;
        int threads;
        bool trace;
        const char *sets[MAX_SETS];
        int set_cnt;
} opts_t;

static long peak_rss_kb(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_maxrss;
}

static void print_result(long records, double secs, double cpu) {
        printf("RESULT records=%ld secs=%.3f cpu=%.3f rss_kb=%ld\n", records,
               secs, cpu, peak_rss_kb());
        fflush(stdout);
}

/* ---- produce, flush ---------------------------------------------------------
 */

static void produce_input(const opts_t *o) {
        rd_kafka_t *admin = bench_client(RD_KAFKA_PRODUCER, o->bootstrap, NULL);
        bench_create_topic(admin, o->topic, PARTITIONS, NULL);
        rd_kafka_destroy(admin);
        double t0 = bench_now_s();
        double mb = bench_produce_events(o->bootstrap, o->topic, o->records);
        fprintf(stderr, "bench: produced %ld events (%.1f MB) in %.1f s\n",
                o->records, mb, bench_now_s() - t0);
}

/* One event per type and partition, at FLUSH_MS: each repartition task that
 * holds a type sees stream time jump past every window's close. The same
 * bytes as EventCount.java's flush. */
static void produce_flush(const char *bootstrap, const char *topic) {
        rd_kafka_t *rk = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        char value[256];
        for (int p = 0; p < PARTITIONS; p++)
                for (int i = 0; i < TYPE_CNT; i++) {
                        int len = snprintf(
                                value, sizeof(value),
                                "{\"event_id\":\"flush-%d-%d\",\"user_id\":"
                                "\"flush\",\"event_type\":\"%s\","
                                "\"timestamp\":%lld,\"version\":\"1.0\","
                                "\"data\":{}}",
                                p, i, ec_known_types[i], (long long)FLUSH_MS);
                        rd_kafka_producev(
                                rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(p),
                                RD_KAFKA_V_KEY("flush", 5),
                                RD_KAFKA_V_VALUE(value, (size_t)len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END);
                }
        rd_kafka_flush(rk, 30000);
        rd_kafka_destroy(rk);
}

/* ---- raw baselines ----------------------------------------------------------
 */

/* The output topic is the broker's to create (1 partition by default). */
static int partition_count(rd_kafka_t *rk, const char *topic) {
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int parts             = 0;
        if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000)) {
                if (md->topic_cnt == 1 && !md->topics[0].err)
                        parts = md->topics[0].partition_cnt;
                rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        if (parts < 1) {
                fprintf(stderr, "bench: no topic %s\n", topic);
                exit(1);
        }
        return parts;
}

static void assign_all(rd_kafka_t *rk, const char *topic, int parts) {
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
}

static void raw_consume(const opts_t *o) {
        char group[128];
        snprintf(group, sizeof(group), "bench-ec-raw-%d", (int)getpid());
        rd_kafka_t *rk = bench_client(RD_KAFKA_CONSUMER, o->bootstrap, group);
        assign_all(rk, o->topic, PARTITIONS);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        rd_kafka_message_t *batch[1000];
        long got  = 0;
        double t0 = 0, c0 = 0;
        while (got < o->records) {
                ssize_t k = rd_kafka_consume_batch_queue(q, 1000, batch, 1000);
                for (ssize_t i = 0; i < k; i++) {
                        if (!batch[i]->err && !t0) {
                                t0 = bench_now_s();
                                c0 = bench_cpu_s();
                        }
                        got += !batch[i]->err;
                        rd_kafka_message_destroy(batch[i]);
                }
        }
        print_result(got, bench_now_s() - t0, bench_cpu_s() - c0);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
}

/* What any implementation of the job must do at least: consume, decode and
 * validate each event, produce it keyed by its type (the repartition). */
static void raw_pipe(const opts_t *o) {
        char group[128], err[256];
        snprintf(group, sizeof(group), "bench-ec-pipe-%d", (int)getpid());
        rd_kafka_t *admin = bench_client(RD_KAFKA_PRODUCER, o->bootstrap, NULL);
        bench_create_topic(admin, o->out, PARTITIONS, NULL);
        rd_kafka_destroy(admin);
        rd_kafka_t *rk = bench_client(RD_KAFKA_CONSUMER, o->bootstrap, group);
        rd_kafka_t *pr = bench_client(RD_KAFKA_PRODUCER, o->bootstrap, NULL);
        user_event_decoder_t *dec = user_event_decoder_new();
        assign_all(rk, o->topic, PARTITIONS);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        rd_kafka_message_t *batch[1000];
        long got = 0, valid = 0;
        double t0 = 0, c0 = 0;
        while (got < o->records) {
                ssize_t k = rd_kafka_consume_batch_queue(q, 1000, batch, 1000);
                for (ssize_t i = 0; i < k; i++) {
                        rd_kafka_message_t *m = batch[i];
                        user_event_t ev;
                        if (m->err) {
                                rd_kafka_message_destroy(m);
                                continue;
                        }
                        if (!t0) {
                                t0 = bench_now_s();
                                c0 = bench_cpu_s();
                        }
                        got++;
                        if (user_event_decode(dec, m->payload, m->len, &ev, err,
                                              sizeof(err)) ||
                            ec_type_index(ev.event_type) < 0) {
                                rd_kafka_message_destroy(m);
                                continue;
                        }
                        valid++;
                        while (rd_kafka_producev(
                                       pr, RD_KAFKA_V_TOPIC(o->out),
                                       RD_KAFKA_V_KEY(ev.event_type,
                                                      strlen(ev.event_type)),
                                       RD_KAFKA_V_VALUE(m->payload, m->len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END) ==
                               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(pr, 10);
                        rd_kafka_message_destroy(m);
                }
                rd_kafka_poll(pr, 0);
        }
        rd_kafka_flush(pr, 120000);
        print_result(got, bench_now_s() - t0, bench_cpu_s() - c0);
        fprintf(stderr, "bench: raw pipe: %ld valid of %ld\n", valid, got);
        user_event_decoder_destroy(dec);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        rd_kafka_destroy(pr);
}

/* ---- kstreams ---------------------------------------------------------------
 */

static void conf_set(ks_conf_t *c, const char *name, const char *value) {
        char err[512];
        if (ks_conf_set(c, name, value, err, sizeof(err))) {
                fprintf(stderr, "bench: %s=%s: %s\n", name, value, err);
                exit(2);
        }
}

/* The run's state directory, removed when the process exits. */
static char state_dir[] = "/tmp/ks-bench-ec-XXXXXX";

static void remove_state_dir(void) {
        ks__rmtree(state_dir);
}

static ks_streams_t *start_streams(const opts_t *o, ks_topology_t *t) {
        char err[512], threads[16];
        const char *dir = state_dir;
        if (!mkdtemp(state_dir)) {
                perror("bench: mkdtemp");
                exit(1);
        }
        atexit(remove_state_dir);
        snprintf(threads, sizeof(threads), "%d", o->threads);
        ks_conf_t *c = ks_conf_new();
        conf_set(c, "application.id", o->app);
        conf_set(c, "bootstrap.servers", o->bootstrap);
        conf_set(c, "state.dir", dir);
        conf_set(c, "num.stream.threads", threads);
        conf_set(c, "commit.interval.ms", "1000");
        conf_set(c, "statestore.cache.max.bytes", "10485760");
        for (int i = 0; i < o->set_cnt; i++) {
                char name[256];
                const char *eq = strchr(o->sets[i], '=');
                if (!eq || eq == o->sets[i] ||
                    (size_t)(eq - o->sets[i]) >= sizeof(name)) {
                        fprintf(stderr, "bench: --set %s: want name=value\n",
                                o->sets[i]);
                        exit(2);
                }
                snprintf(name, sizeof(name), "%.*s", (int)(eq - o->sets[i]),
                         o->sets[i]);
                conf_set(c, name, eq + 1);
        }
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ks_conf_destroy(c);
        ks_error_t *e = s ? ks_streams_start(s) : NULL;
        if (!s || e) {
                fprintf(stderr, "bench: %s\n", s ? ks_error_message(e) : err);
                exit(1);
        }
        return s;
}

/* Waits until @p target records are processed (each event is processed
 * twice: before and after the repartition topic). With @p trace, prints
 * the records consumed and processed every 100 ms. */
static void wait_processed(ks_streams_t *s,
                           uint64_t target,
                           bool trace,
                           double *t0,
                           double *c0) {
        ks_streams_metrics_t m;
        double last_trace = 0, last_log = bench_now_s();
        for (;;) {
                ks_streams_metrics(s, &m);
                if (ks_streams_state(s) == KS_STATE_ERROR) {
                        fprintf(stderr, "bench: the event count failed\n");
                        exit(1);
                }
                double now = bench_now_s();
                if (t0 && !*t0 && m.records_processed > 0) {
                        *t0 = now;
                        *c0 = bench_cpu_s();
                        /* bench/mallocs.sh: count from here */
                        if (getenv("BENCH_MALLOC_TALLY"))
                                raise(SIGUSR1);
                }
                if (trace && t0 && *t0 && now - last_trace >= 0.1) {
                        last_trace = now;
                        fprintf(stderr,
                                "trace %.2f consumed %" PRIu64
                                " processed %" PRIu64 "\n",
                                now - *t0, m.records_consumed,
                                m.records_processed);
                }
                if (now - last_log > 10) {
                        last_log = now;
                        fprintf(stderr,
                                "bench: %" PRIu64 " of %" PRIu64 " processed\n",
                                m.records_processed, target);
                }
                if (m.records_processed >= target)
                        return;
                usleep(2000);
        }
}

static void run_kstreams(const opts_t *o) {
        ks_topology_t *t = ec_topology(o->topic, o->out);
        ks_streams_t *s  = start_streams(o, t);
        double t0 = 0, c0 = 0;
        uint64_t n = (uint64_t)o->records;
        wait_processed(s, 2 * n, o->trace, &t0, &c0);
        if (getenv("BENCH_MALLOC_TALLY"))
                raise(SIGUSR2);
        print_result(o->records, bench_now_s() - t0, bench_cpu_s() - c0);
        /* Close every window, give a commit interval for the caches to
         * reach the suppression, then close (its commit flushes the rest
         * and waits for the acknowledgements). */
        produce_flush(o->bootstrap, o->topic);
        wait_processed(s, 2 * (n + FLUSH_EVENTS), false, NULL, NULL);
        sleep(2);
        ks_error_t *e = ks_streams_close(s, 60000);
        if (e) {
                fprintf(stderr, "bench: close: %s\n", ks_error_message(e));
                exit(1);
        }
        ks_streams_metrics_t m;
        ks_streams_metrics(s, &m);
        fprintf(stderr,
                "bench: kstreams: %" PRIu64 " late, %" PRIu64
                " undecodable, %" PRIu64 " produced\n",
                m.dropped_late, m.dropped_deserialization, m.records_produced);
        ks_streams_destroy(s);
        ks_topology_destroy(t);
}

/* ---- check ------------------------------------------------------------------
 */

#define MAX_MINUTES (4 * 24 * 60) /* the input spans ~28 h for 1M events */

typedef struct expected_s {
        int64_t first_minute;
        int64_t counts[TYPE_CNT][MAX_MINUTES];
        int seen[TYPE_CNT][MAX_MINUTES];
} expected_t;

static void expected_counts(expected_t *x, long records) {
        event_gen_t *gen = event_gen_new(GEN_SEED, GEN_START_MS, GEN_USERS);
        user_event_t ev;
        x->first_minute = GEN_START_MS / EC_WINDOW_MS;
        for (long i = 0; i < records; i++) {
                event_gen_next(gen, &ev);
                int ti       = ec_type_index(ev.event_type);
                int64_t slot = ev.timestamp_ms / EC_WINDOW_MS - x->first_minute;
                if (ti < 0)
                        continue;
                if (slot < 0 || slot >= MAX_MINUTES) {
                        fprintf(stderr, "check: event outside the span\n");
                        exit(1);
                }
                x->counts[ti][slot]++;
        }
        event_gen_destroy(gen);
}

/* Reads @p topic to its end and compares each final count with what the
 * generator makes. Exits 1 on a missing, wrong, duplicate or unexpected
 * window. */
static void check_output(const opts_t *o) {
        expected_t *x = calloc(1, sizeof(*x));
        if (!x)
                exit(1);
        expected_counts(x, o->records);
        char group[128];
        snprintf(group, sizeof(group), "bench-ec-check-%d", (int)getpid());
        rd_kafka_t *rk = bench_client(RD_KAFKA_CONSUMER, o->bootstrap, group);
        int64_t total  = 0, high;
        int parts      = partition_count(rk, o->out);
        for (int p = 0; p < parts; p++) {
                int64_t low;
                if (rd_kafka_query_watermark_offsets(rk, o->out, p, &low, &high,
                                                     10000)) {
                        fprintf(stderr, "check: no topic %s\n", o->out);
                        exit(1);
                }
                total += high - low;
        }
        assign_all(rk, o->out, parts);
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        long got = 0, wrong = 0, dup = 0, bad = 0;
        while (got < total) {
                rd_kafka_message_t *m = rd_kafka_consume_queue(q, 10000);
                if (!m) {
                        fprintf(stderr, "check: timed out reading %s\n",
                                o->out);
                        exit(1);
                }
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                got++;
                json_error_t je;
                json_t *j = json_loadb(m->payload, m->len, 0, &je);
                const char *type =
                        j ? json_string_value(json_object_get(j, "event_type"))
                          : NULL;
                int ti     = type ? ec_type_index(type) : -1;
                int64_t ws = j ? json_integer_value(
                                         json_object_get(j, "window_start"))
                               : 0;
                int64_t we =
                        j ? json_integer_value(json_object_get(j, "window_end"))
                          : 0;
                int64_t cnt =
                        j ? json_integer_value(json_object_get(j, "count")) : 0;
                int64_t slot = ws / EC_WINDOW_MS - x->first_minute;
                if (ti < 0 || ws % EC_WINDOW_MS || we != ws + EC_WINDOW_MS ||
                    slot < 0 || slot >= MAX_MINUTES ||
                    m->key_len != strlen(type) ||
                    memcmp(m->key, type, m->key_len)) {
                        if (bad++ < 5)
                                fprintf(stderr, "check: unexpected %.*s\n",
                                        (int)m->len, (const char *)m->payload);
                } else if (x->seen[ti][slot]++) {
                        dup++;
                } else if (x->counts[ti][slot] != cnt) {
                        if (wrong++ < 5)
                                fprintf(stderr,
                                        "check: %s @%" PRId64 ": %" PRId64
                                        ", want %" PRId64 "\n",
                                        type, ws, cnt, x->counts[ti][slot]);
                }
                json_decref(j);
                rd_kafka_message_destroy(m);
        }
        long windows = 0, missing = 0;
        for (int ti = 0; ti < TYPE_CNT; ti++)
                for (int s = 0; s < MAX_MINUTES; s++)
                        if (x->counts[ti][s]) {
                                windows++;
                                missing += !x->seen[ti][s];
                        }
        printf("CHECK windows=%ld received=%ld missing=%ld wrong=%ld "
               "duplicate=%ld unexpected=%ld %s\n",
               windows, got, missing, wrong, dup, bad,
               missing || wrong || dup || bad ? "FAIL" : "ok");
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        free(x);
        exit(missing || wrong || dup || bad ? 1 : 0);
}

static void usage(void) {
        fprintf(stderr,
                "usage: bench_event_count produce|raw-consume|raw-pipe|"
                "kstreams|check --bootstrap HOST:PORT [--topic IN] "
                "[--out OUT] [--records N] [--app ID] [--threads T] "
                "[--set name=value]... [--trace]\n");
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"bootstrap", 1, NULL, 'b'}, {"topic", 1, NULL, 't'},
                {"out", 1, NULL, 'o'},       {"records", 1, NULL, 'n'},
                {"app", 1, NULL, 'a'},       {"threads", 1, NULL, 'T'},
                {"set", 1, NULL, 's'},       {"trace", 0, NULL, 'x'},
                {NULL, 0, NULL, 0}};
        opts_t o = {.records = 1000000, .threads = 1};
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
                case 't':
                        o.topic = optarg;
                        break;
                case 'o':
                        o.out = optarg;
                        break;
                case 'n':
                        o.records = atol(optarg);
                        break;
                case 'a':
                        o.app = optarg;
                        break;
                case 'T':
                        o.threads = atoi(optarg);
                        break;
                case 'x':
                        o.trace = true;
                        break;
                case 's':
                        if (o.set_cnt == MAX_SETS)
                                usage();
                        o.sets[o.set_cnt++] = optarg;
                        break;
                default:
                        usage();
                }
        }
        if (!o.bootstrap || o.records < 1 || o.threads < 1)
                usage();
        bool needs_in  = strcmp(mode, "check") != 0;
        bool needs_out = !strcmp(mode, "raw-pipe") ||
                         !strcmp(mode, "kstreams") || !strcmp(mode, "check");
        if ((needs_in && !o.topic) || (needs_out && !o.out))
                usage();
        if (!strcmp(mode, "produce"))
                produce_input(&o);
        else if (!strcmp(mode, "raw-consume"))
                raw_consume(&o);
        else if (!strcmp(mode, "raw-pipe"))
                raw_pipe(&o);
        else if (!strcmp(mode, "kstreams") && o.app)
                run_kstreams(&o);
        else if (!strcmp(mode, "check"))
                check_output(&o);
        else
                usage();
        return 0;
}
