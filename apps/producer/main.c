/* kstreams-producer: a realistic user-events generator (apps/common's
 * event_gen) producing to Kafka, keyed by user_id, with an idempotent,
 * lz4-compressing, batching producer; or writing the same records as
 * kcat -J lines (--out), or both. The same seed and flags give the same
 * records, byte for byte. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kstreams/partitioner.h>
#include <kstreams/timestamp.h>

#include "common/event_gen.h"

typedef struct options_s {
        const char *bootstrap;
        const char *topic;
        const char *out_path;
        long long count; /* -1: unbounded (--duration or forever) */
        double rate;     /* events/s; 0: as fast as possible */
        double duration; /* s; 0: none */
        int users;
        unsigned long long seed;
        int64_t start_ms;
        int64_t time_step_ms;
        double malformed_rate;
        double duplicate_rate;
        double late_rate;
        int64_t max_lateness_ms;
        double zipf_s;
        int partitions;
        bool quiet;
} options_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
        (void)sig;
        stop_requested = 1;
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: kstreams-producer [options]\n"
                "Generates realistic user-events (weighted event types, Zipf-"
                "skewed users, per-user\nsessions, purchases "
                "with amounts "
                "and currencies), keyed by user_id, and produces\nthem to "
                "Kafka (idempotent, lz4, batched) and/or writes them as "
                "kcat -J lines.\n\n"
                "  --bootstrap-servers HOSTS  Kafka brokers (default: "
                "$KS_BOOTSTRAP; none with --out: no Kafka)\n"
                "  --topic NAME          topic (default user-events); "
                "created with --partitions if missing\n"
                "  --partitions N        partitions of a topic created here, "
                "and of --out without Kafka (default 6)\n"
                "  --count N             events to send (default 100000; "
                "unbounded with --duration)\n"
                "  --rate R              events per second (default: as fast "
                "as possible)\n"
                "  --duration S          stop after S seconds\n"
                "  --users N             distinct users (default 1000)\n"
                "  --zipf S              Zipf exponent of the users' "
                "activity (default 1.0)\n"
                "  --seed S              generator seed (default 42): same "
                "seed and start time,\n"
                "                        same events\n"
                "  --start-time ISO      timestamp of the first event "
                "(default: the last event about now;\n"
                "                        give it for identical runs)\n"
                "  --time-step MS        ms between event timestamps "
                "(default: 0..200 at random)\n"
                "  --malformed-rate R    fraction of malformed or invalid "
                "events, 0..1 (default 0)\n"
                "  --duplicate-rate R    fraction of exact copies of one of "
                "the last 1000 records (default 0)\n"
                "  --late-rate R         fraction of out-of-order events "
                "(default 0)\n"
                "  --max-lateness MS     how far behind an out-of-order event "
                "may be (default 30000)\n"
                "  --out FILE            also write the records as kcat -J "
                "lines ('-': stdout)\n"
                "  --quiet               no progress line\n"
                "  --help                this text\n");
}

static bool parse_double(const char *s, double lo, double hi, double *out) {
        char *end;
        errno    = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || v < lo || v > hi)
                return false;
        *out = v;
        return true;
}

static bool parse_ll(const char *s,
                     long long lo,
                     long long hi,
                     long long *out) {
        char *end;
        errno       = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                return false;
        *out = v;
        return true;
}

enum {
        OPT_BOOTSTRAP = 256,
        OPT_TOPIC,
        OPT_PARTITIONS,
        OPT_COUNT,
        OPT_RATE,
        OPT_DURATION,
        OPT_USERS,
        OPT_ZIPF,
        OPT_SEED,
        OPT_START,
        OPT_STEP,
        OPT_MALFORMED,
        OPT_DUPLICATE,
        OPT_LATE,
        OPT_LATENESS,
        OPT_OUT,
        OPT_QUIET,
        OPT_HELP
};

/* @returns 0 to go on, 1 to exit with success (help), 2 on a usage
 * error. */
static int parse_args(int argc, char **argv, options_t *o) {
        static const struct option longopts[] = {
                {"bootstrap-servers", required_argument, NULL, OPT_BOOTSTRAP},
                {"topic", required_argument, NULL, OPT_TOPIC},
                {"partitions", required_argument, NULL, OPT_PARTITIONS},
                {"count", required_argument, NULL, OPT_COUNT},
                {"rate", required_argument, NULL, OPT_RATE},
                {"duration", required_argument, NULL, OPT_DURATION},
                {"users", required_argument, NULL, OPT_USERS},
                {"zipf", required_argument, NULL, OPT_ZIPF},
                {"seed", required_argument, NULL, OPT_SEED},
                {"start-time", required_argument, NULL, OPT_START},
                {"time-step", required_argument, NULL, OPT_STEP},
                {"malformed-rate", required_argument, NULL, OPT_MALFORMED},
                {"duplicate-rate", required_argument, NULL, OPT_DUPLICATE},
                {"late-rate", required_argument, NULL, OPT_LATE},
                {"max-lateness", required_argument, NULL, OPT_LATENESS},
                {"out", required_argument, NULL, OPT_OUT},
                {"quiet", no_argument, NULL, OPT_QUIET},
                {"help", no_argument, NULL, OPT_HELP},
                {NULL, 0, NULL, 0}};
        bool count_given = false, start_given = false;
        long long ll;
        int c;
        *o = (options_t){.bootstrap       = getenv("KS_BOOTSTRAP"),
                         .topic           = "user-events",
                         .count           = 100000,
                         .users           = 1000,
                         .seed            = 42,
                         .start_ms        = -1, /* see below */
                         .max_lateness_ms = 30000,
                         .zipf_s          = 1.0,
                         .partitions      = 6};
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                bool ok = true;
                switch (c) {
                case OPT_BOOTSTRAP:
                        o->bootstrap = optarg;
                        break;
                case OPT_TOPIC:
                        o->topic = optarg;
                        break;
                case OPT_PARTITIONS:
                        ok            = parse_ll(optarg, 1, 100000, &ll);
                        o->partitions = (int)ll;
                        break;
                case OPT_COUNT:
                        ok          = parse_ll(optarg, 0, INT64_MAX, &o->count);
                        count_given = true;
                        break;
                case OPT_RATE:
                        ok = parse_double(optarg, 0, 1e9, &o->rate);
                        break;
                case OPT_DURATION:
                        ok = parse_double(optarg, 0, 1e9, &o->duration);
                        break;
                case OPT_USERS:
                        ok       = parse_ll(optarg, 1, 100000000, &ll);
                        o->users = (int)ll;
                        break;
                case OPT_ZIPF:
                        ok = parse_double(optarg, 0.01, 10, &o->zipf_s);
                        break;
                case OPT_SEED:
                        ok      = parse_ll(optarg, 0, INT64_MAX, &ll);
                        o->seed = (unsigned long long)ll;
                        break;
                case OPT_START:
                        ok = !ks_parse_iso8601(optarg, strlen(optarg),
                                               &o->start_ms) &&
                             o->start_ms >= 0;
                        start_given = true;
                        break;
                case OPT_STEP:
                        ok              = parse_ll(optarg, 0, 86400000, &ll);
                        o->time_step_ms = ll;
                        break;
                case OPT_MALFORMED:
                        ok = parse_double(optarg, 0, 1, &o->malformed_rate);
                        break;
                case OPT_DUPLICATE:
                        ok = parse_double(optarg, 0, 1, &o->duplicate_rate);
                        break;
                case OPT_LATE:
                        ok = parse_double(optarg, 0, 1, &o->late_rate);
                        break;
                case OPT_LATENESS:
                        ok = parse_ll(optarg, 0, INT64_C(31536000000), &ll);
                        o->max_lateness_ms = ll;
                        break;
                case OPT_OUT:
                        o->out_path = optarg;
                        break;
                case OPT_QUIET:
                        o->quiet = true;
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
                                "kstreams-producer: invalid value for --%s: "
                                "%s\n",
                                longopts[c - OPT_BOOTSTRAP].name, optarg);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "kstreams-producer: unexpected argument %s\n",
                        argv[optind]);
                return 2;
        }
        if (o->duration > 0 && !count_given)
                o->count = -1;
        if (!start_given) {
                /* The last event about now, in whole seconds: a broker
                 * deletes records older than its retention and refuses
                 * ones more than log.message.timestamp.after.max.ms (1 h
                 * by default in Kafka 4) ahead of its clock, so neither a
                 * fixed date nor "now" for the first event would do for
                 * long runs. Steps average 100 ms unless --time-step. */
                int64_t step = o->time_step_ms > 0 ? o->time_step_ms : 100;
                int64_t span = o->count > 0 && o->count < INT64_MAX / step
                                       ? o->count * step
                                       : 0;
                if (o->count < 0 && o->rate > 0 && o->duration > 0 &&
                    o->rate * o->duration * (double)step < 1e15)
                        span = (int64_t)(o->rate * o->duration * (double)step);
                int64_t now = ks_now_ms() / 1000 * 1000;
                o->start_ms = now > span ? now - span : 0;
        }
        if (!o->out_path && (!o->bootstrap || !*o->bootstrap)) {
                fprintf(stderr,
                        "kstreams-producer: no --bootstrap-servers (nor "
                        "KS_BOOTSTRAP) and no --out: nowhere to send events\n");
                return 2;
        }
        if (o->out_path && o->bootstrap && !*o->bootstrap)
                o->bootstrap = NULL;
        return 0;
}

/* ---- Kafka ------------------------------------------------------------ */

typedef struct stats_s {
        uint64_t sent;
        uint64_t acked;
        uint64_t failed;
        char first_error[256];
} stats_t;

static void on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *m,
                        void *opaque) {
        stats_t *st = opaque;
        (void)rk;
        if (!m->err) {
                st->acked++;
                return;
        }
        if (!st->failed++)
                snprintf(st->first_error, sizeof(st->first_error), "%s",
                         rd_kafka_err2str(m->err));
}

static rd_kafka_t *producer_new(const options_t *o, stats_t *st) {
        char errstr[512];
        rd_kafka_conf_t *conf                  = rd_kafka_conf_new();
        static const char *const settings[][2] = {
                {"enable.idempotence", "true"},
                {"compression.type", "lz4"},
                {"linger.ms", "20"},
                {"batch.size", "1000000"},
                {"batch.num.messages", "100000"},
                {"queue.buffering.max.messages", "2000000"},
                {"queue.buffering.max.kbytes", "2097152"},
                {"partitioner", "murmur2_random"},
                {"message.timeout.ms", "120000"},
                /* A missing topic is created with --partitions below, not
                 * by the broker's auto-creation with its default count. */
                {"allow.auto.create.topics", "false"},
        };
        if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
                goto fail;
        for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
                if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1],
                                      errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK)
                        goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, st);
        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (rk)
                return rk;
        fprintf(stderr, "kstreams-producer: %s\n", errstr);
        return NULL; /* rd_kafka_new() destroyed conf */
fail:
        fprintf(stderr, "kstreams-producer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
}

/* Creates the topic if it does not exist; @returns its partition count,
 * or -1 (the message is printed). */
static int ensure_topic(rd_kafka_t *rk, const options_t *o) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt         = rd_kafka_topic_new(rk, o->topic, NULL);
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        int partitions          = -1;
        if (!err && md->topic_cnt == 1 && !md->topics[0].err)
                partitions = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (err) {
                fprintf(stderr, "kstreams-producer: cannot reach %s: %s\n",
                        o->bootstrap, rd_kafka_err2str(err));
                return -1;
        }
        if (partitions > 0)
                return partitions;

        char errstr[256];
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(
                o->topic, o->partitions, -1, errstr, sizeof(errstr));
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        int result           = -1;
        if (!ev) {
                fprintf(stderr, "kstreams-producer: creating %s timed out\n",
                        o->topic);
        } else {
                size_t n;
                const rd_kafka_topic_result_t **r =
                        rd_kafka_CreateTopics_result_topics(
                                rd_kafka_event_CreateTopics_result(ev), &n);
                rd_kafka_resp_err_t terr =
                        rd_kafka_event_error(ev)
                                ? rd_kafka_event_error(ev)
                                : (n ? rd_kafka_topic_result_error(r[0])
                                     : RD_KAFKA_RESP_ERR_UNKNOWN);
                if (!terr || terr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                        result = o->partitions;
                else
                        fprintf(stderr,
                                "kstreams-producer: cannot create topic %s: "
                                "%s\n",
                                o->topic, rd_kafka_err2str(terr));
                rd_kafka_event_destroy(ev);
        }
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        return result;
}

/* ---- kcat -J lines ----------------------------------------------------- */

/* Appends @p len bytes as a JSON string (UTF-8 passes through). */
static void json_string(ks_buf_t *b, const char *s, size_t len) {
        static const char hex[] = "0123456789abcdef";
        ks_buf_reserve(b, len * 6 + 2);
        char *p = b->data + b->len;
        *p++    = '"';
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\') {
                        *p++ = '\\';
                        *p++ = (char)c;
                } else if (c < 0x20) {
                        memcpy(p, "\\u00", 4);
                        p[4] = hex[c >> 4];
                        p[5] = hex[c & 15];
                        p += 6;
                } else {
                        *p++ = (char)c;
                }
        }
        *p++   = '"';
        b->len = (size_t)(p - b->data);
}

/* ---- the loop ---------------------------------------------------------- */

#define DUP_RING 1000

typedef struct record_s {
        char key[24];
        size_t key_len;
        int64_t ts;
        ks_buf_t value;
} record_t;

static double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s) {
        uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
        z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

/* The user id of an encoded event, for its key: the encoder writes
 * "user_id":"..." with no spaces. Bad records may have none: key "". */
static size_t key_of(const ks_buf_t *v, char *out, size_t cap) {
        static const char tag[] = "\"user_id\":\"";
        const char *p           = memmem(v->data, v->len, tag, sizeof(tag) - 1);
        size_t n                = 0;
        if (!p)
                return 0;
        p += sizeof(tag) - 1;
        const char *end = v->data + v->len;
        while (p < end && *p != '"' && n < cap - 1)
                out[n++] = *p++;
        return n;
}

static void progress(const options_t *o,
                     const stats_t *st,
                     double elapsed,
                     bool final) {
        char acked[64] = "";
        if (o->quiet)
                return;
        if (o->bootstrap)
                snprintf(acked, sizeof(acked),
                         "  acked %" PRIu64 "  failed %" PRIu64, st->acked,
                         st->failed);
        fprintf(stderr, "%s[producer] sent %" PRIu64 "  rate %.0f/s%s%s",
                isatty(2) ? "\r" : "", st->sent,
                elapsed > 0 ? (double)st->sent / elapsed : 0.0, acked,
                final || !isatty(2) ? "\n" : "");
}

int main(int argc, char **argv) {
        options_t o;
        int rc = parse_args(argc, argv, &o);
        if (rc)
                return rc == 1 ? 0 : 2;

        stats_t st      = {0};
        rd_kafka_t *rk  = NULL;
        FILE *out       = NULL;
        int partitions  = o.partitions;
        record_t *ring  = calloc(DUP_RING, sizeof(*ring));
        size_t ring_cnt = 0, ring_next = 0;
        int64_t *offsets   = NULL;
        ks_buf_t line      = {0};
        event_gen_t *g     = event_gen_new(o.seed, o.start_ms, o.users);
        uint64_t dup_state = o.seed ^ 0xD1B54A32D192ED03ull;
        rc                 = 1;
        if (!g || !ring)
                goto out;
        event_gen_opts_t gopts = {.all_types    = true,
                                  .time_step_ms = o.time_step_ms,
                                  .text_only    = o.out_path != NULL,
                                  .zipf_s       = o.zipf_s};
        if (event_gen_set_opts(g, &gopts))
                goto out;
        event_gen_set_bad_ratio(g, o.malformed_rate);
        event_gen_set_disorder(g, o.late_rate, o.max_lateness_ms);

        if (o.bootstrap) {
                if (!(rk = producer_new(&o, &st)))
                        goto out;
                if ((partitions = ensure_topic(rk, &o)) < 0)
                        goto out;
        }
        if (o.out_path) {
                out = strcmp(o.out_path, "-") ? fopen(o.out_path, "w") : stdout;
                if (!out) {
                        fprintf(stderr, "kstreams-producer: %s: %s\n",
                                o.out_path, strerror(errno));
                        goto out;
                }
                offsets = calloc((size_t)partitions, sizeof(*offsets));
                if (!offsets)
                        goto out;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        double start = now_s(), last_progress = start;
        for (long long i = 0; !stop_requested && (o.count < 0 || i < o.count);
             i++) {
                record_t *r;
                /* An exact copy of one of the last records, or a new one. */
                if (o.duplicate_rate > 0 && ring_cnt > 0 &&
                    (double)(splitmix(&dup_state) >> 11) * 0x1.0p-53 <
                            o.duplicate_rate) {
                        r = &ring[splitmix(&dup_state) % ring_cnt];
                } else {
                        r         = &ring[ring_next];
                        ring_next = (ring_next + 1) % DUP_RING;
                        if (ring_cnt < DUP_RING)
                                ring_cnt++;
                        ks_buf_clear(&r->value);
                        if (event_gen_next_raw(g, &r->value, NULL)) {
                                fprintf(stderr,
                                        "kstreams-producer: out of "
                                        "memory\n");
                                goto out;
                        }
                        r->ts      = event_gen_last_timestamp_ms(g);
                        r->key_len = key_of(&r->value, r->key, sizeof(r->key));
                }
                if (rk) {
                        for (;;) {
                                rd_kafka_resp_err_t err = rd_kafka_producev(
                                        rk, RD_KAFKA_V_TOPIC(o.topic),
                                        RD_KAFKA_V_KEY(r->key, r->key_len),
                                        RD_KAFKA_V_VALUE(r->value.data,
                                                         r->value.len),
                                        RD_KAFKA_V_TIMESTAMP(r->ts),
                                        RD_KAFKA_V_MSGFLAGS(
                                                RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_END);
                                if (!err)
                                        break;
                                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                        fprintf(stderr,
                                                "kstreams-producer: produce: "
                                                "%s\n",
                                                rd_kafka_err2str(err));
                                        goto out;
                                }
                                rd_kafka_poll(rk, 10);
                        }
                        if ((i & 1023) == 0)
                                rd_kafka_poll(rk, 0);
                }
                if (out) {
                        int32_t p = ks_partition_for_key(r->key, r->key_len,
                                                         partitions);
                        ks_buf_clear(&line);
                        ks_buf_appendf(&line,
                                       "{\"topic\":\"%s\",\"partition\":%d,"
                                       "\"offset\":%" PRId64
                                       ",\"tstype\":\"create\",\"ts\":%" PRId64
                                       ",\"broker\":-1,\"key\":",
                                       o.topic, (int)p, offsets[p]++, r->ts);
                        json_string(&line, r->key, r->key_len);
                        ks_buf_append(&line, ",\"payload\":", 11);
                        json_string(&line, r->value.data, r->value.len);
                        ks_buf_append(&line, "}\n", 2);
                        if (fwrite(line.data, 1, line.len, out) != line.len) {
                                fprintf(stderr, "kstreams-producer: %s: %s\n",
                                        o.out_path, strerror(errno));
                                goto out;
                        }
                }
                st.sent++;
                if ((i & 1023) == 1023 || o.rate > 0) {
                        double t = now_s();
                        if (o.duration > 0 && t - start >= o.duration)
                                break;
                        if (o.rate > 0) {
                                double due = start + (double)(i + 1) / o.rate;
                                if (due > t)
                                        usleep((useconds_t)((due - t) * 1e6));
                        }
                        if (t - last_progress >= 1.0) {
                                progress(&o, &st, t - start, false);
                                last_progress = t;
                        }
                }
        }
        if (rk) {
                rd_kafka_resp_err_t ferr = RD_KAFKA_RESP_ERR__TIMED_OUT;
                while (ferr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
                        ferr = rd_kafka_flush(rk, 1000);
                        progress(&o, &st, now_s() - start, false);
                        if (stop_requested > 1)
                                break;
                }
        }
        double elapsed = now_s() - start;
        progress(&o, &st, elapsed, true);
        if (st.failed) {
                fprintf(stderr,
                        "kstreams-producer: %" PRIu64
                        " records were not delivered (first: %s)\n",
                        st.failed, st.first_error);
                goto out;
        }
        if (rk && st.acked != st.sent) {
                fprintf(stderr,
                        "kstreams-producer: %" PRIu64 " of %" PRIu64
                        " records acknowledged\n",
                        st.acked, st.sent);
                goto out;
        }
        rc = 0;
out:
        if (out && out != stdout && fclose(out) && !rc) {
                fprintf(stderr, "kstreams-producer: %s: %s\n", o.out_path,
                        strerror(errno));
                rc = 1;
        } else if (out == stdout) {
                fflush(stdout);
        }
        if (rk)
                rd_kafka_destroy(rk);
        for (size_t i = 0; ring && i < DUP_RING; i++)
                ks_buf_free(&ring[i].value);
        free(ring);
        free(offsets);
        ks_buf_free(&line);
        event_gen_destroy(g);
        return rc;
}
