/* Throughput of a stateless JSON topology on a real broker, next to a raw
 * librdkafka consume loop over the same records in the same run.
 *
 *   bench_stateless_throughput --bootstrap HOST:PORT [--records N]
 *
 * Both read the same topic from the beginning; the raw loop only counts
 * records, kstreams decodes every event (fast JSON path), filters, maps,
 * re-encodes and produces to an output topic, committing as it goes. A
 * raw librdkafka pipe (consume + produce, no decoding) is the fair peer.
 *
 * Knobs for profiling (environment): BENCH_REUSE_TOPIC=<topic> runs only
 * the kstreams phase over an existing topic; BENCH_DROP_ALL=1 filters
 * everything out (consume side alone); BENCH_POLL_MS and BENCH_BUFFERED set
 * poll.ms and buffered.records.per.partition. */
#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kstreams/kstreams.h>

#include "common/bench_kafka.h"
#include "common/event_gen.h"
#include "common/user_event_serde.h"

static bool not_logout(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        if (getenv("BENCH_DROP_ALL")) /* isolates the consume side */
                return false;
        return strcmp(((const user_event_t *)v)->event_type, "logout") != 0;
}

static const void *anonymize(ks_arena_t *a,
                             const void *k,
                             const void *v,
                             void *o) {
        (void)k, (void)o;
        user_event_t *copy = ks_arena_memdup(a, v, sizeof(user_event_t));
        copy->user_id      = "anonymous";
        copy->session_id   = NULL;
        return copy;
}

/* BENCH_METRICS_COST: GET /metrics every second while a run goes. */
static atomic_bool scrape_stop;
static atomic_long scrapes;
static size_t discard(char *p, size_t size, size_t n, void *o) {
        (void)p, (void)o;
        return size * n;
}
static void *scraper(void *arg) {
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", *(int *)arg);
        while (!atomic_load(&scrape_stop)) {
                CURL *c = curl_easy_init();
                curl_easy_setopt(c, CURLOPT_URL, url);
                curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
                if (curl_easy_perform(c) == CURLE_OK)
                        atomic_fetch_add(&scrapes, 1);
                curl_easy_cleanup(c);
                for (int i = 0; i < 100 && !atomic_load(&scrape_stop); i++)
                        usleep(10000);
        }
        return NULL;
}

static double kstreams_run_scraped(const char *bootstrap,
                                   const char *topic,
                                   const char *out,
                                   long n,
                                   uint64_t *produced,
                                   bool scrape) {
        char err[512], app[128];
        static int runs;
        snprintf(app, sizeof(app), "bench-ks-%d-%d", (int)getpid(), runs++);
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *s  = ks_builder_stream(b, topic, ks_serde_string(),
                                            user_event_serde());
        s = ks_stream_with_timestamps(s, user_event_timestamp_extractor());
        ks_stream_to(ks_stream_map_values(ks_stream_filter(s, "not-logout",
                                                           not_logout, NULL),
                                          "anonymize", anonymize, NULL),
                     out, NULL, user_event_serde());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", app, err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "1000", err, sizeof(err));
        if (getenv("BENCH_POLL_MS"))
                ks_conf_set(c, "poll.ms", getenv("BENCH_POLL_MS"), err,
                            sizeof(err));
        if (getenv("BENCH_BUFFERED"))
                ks_conf_set(c, "buffered.records.per.partition",
                            getenv("BENCH_BUFFERED"), err, sizeof(err));
        ks_conf_set(c, "producer.linger.ms", "20", err, sizeof(err));
        ks_conf_set(c, "producer.batch.size", "1000000", err, sizeof(err));
        if (scrape)
                ks_conf_set(c, "http.listen", "127.0.0.1:0", err, sizeof(err));
        ks_streams_t *st = ks_streams_new(t, c, err, sizeof(err));
        ks_error_t *e    = ks_streams_start(st);
        if (e) {
                fprintf(stderr, "bench: %s\n", ks_error_message(e));
                exit(1);
        }
        pthread_t scraper_tid;
        int port = ks_streams_http_port(st);
        atomic_store(&scrape_stop, false);
        if (scrape)
                pthread_create(&scraper_tid, NULL, scraper, &port);
        /* Time from the first record processed, so group join is out. */
        ks_streams_metrics_t m;
        double start = 0;
        for (;;) {
                ks_streams_metrics(st, &m);
                if (!start && m.records_processed > 0)
                        start = bench_now_s();
                if ((long)m.records_processed >= n)
                        break;
                usleep(2000);
        }
        double secs = bench_now_s() - start;
        if (scrape) {
                atomic_store(&scrape_stop, true);
                pthread_join(scraper_tid, NULL);
        }
        ks_error_destroy(ks_streams_close(st, 60000));
        ks_streams_metrics(st, &m);
        *produced = m.records_produced;
        ks_streams_destroy(st);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        return secs;
}

static double kstreams_run(const char *bootstrap,
                           const char *topic,
                           const char *out,
                           long n,
                           uint64_t *produced) {
        return kstreams_run_scraped(bootstrap, topic, out, n, produced, false);
}

/* The cost of metrics: the same input, runs without and with the HTTP
 * endpoint scraped every second, alternating. */
static void metrics_cost(const char *bootstrap, const char *in, long n) {
        double secs[2] = {0, 0};
        for (int i = 0; i < 4; i++) {
                bool scrape = i % 2;
                char out[160];
                uint64_t produced;
                snprintf(out, sizeof(out), "bench-out-%d-m%d", (int)getpid(),
                         i);
                double t = kstreams_run_scraped(bootstrap, in, out, n,
                                                &produced, scrape);
                printf("  run %d %-36s %10.0f records/s\n", i + 1,
                       scrape ? "kstreams, /metrics scraped every 1 s"
                              : "kstreams, no HTTP endpoint",
                       (double)n / t);
                secs[scrape] += t;
        }
        printf("  metrics cost: %.1f%% throughput (%ld scrapes)\n",
               100.0 * (1.0 - secs[0] / secs[1]), atomic_load(&scrapes));
}

int main(int argc, char **argv) {
        const char *bootstrap             = NULL;
        long n                            = 1000000;
        static const struct option opts[] = {{"bootstrap", 1, NULL, 'b'},
                                             {"records", 1, NULL, 'n'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        int ch;
        while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (ch == 'b')
                        bootstrap = optarg;
                else if (ch == 'n')
                        n = atol(optarg);
                else {
                        fprintf(stderr,
                                "usage: bench_stateless_throughput "
                                "--bootstrap HOST:PORT [--records "
                                "N]\n");
                        return ch == 'h' ? 0 : 2;
                }
        }
        if (!bootstrap || n < 1) {
                fprintf(stderr, "bench: --bootstrap is required\n");
                return 2;
        }
        char in[128], out[128];
        snprintf(in, sizeof(in), "bench-in-%d", (int)getpid());
        /* BENCH_REUSE_TOPIC=name: profile the kstreams phase alone. */
        if (getenv("BENCH_REUSE_TOPIC")) {
                snprintf(out, sizeof(out), "bench-out-%d", (int)getpid());
                uint64_t produced;
                double t = kstreams_run(bootstrap, getenv("BENCH_REUSE_TOPIC"),
                                        out, n, &produced);
                printf("kstreams: %.0f records/s\n", (double)n / t);
                return 0;
        }
        snprintf(out, sizeof(out), "bench-out-%d", (int)getpid());
        rd_kafka_t *admin = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
        bench_create_topic(admin, in, 6, NULL);
        bench_create_topic(admin, out, 6, NULL);
        rd_kafka_destroy(admin);
        double t0    = bench_now_s();
        double mb    = bench_produce_events(bootstrap, in, n);
        double tprod = bench_now_s() - t0;
        double traw  = bench_raw_consume(bootstrap, in, n);
        char pipe_out[160];
        snprintf(pipe_out, sizeof(pipe_out), "%s-pipe", out);
        double tpipe = bench_raw_pipe(bootstrap, in, pipe_out, n);
        uint64_t produced;
        if (getenv("BENCH_METRICS_COST")) {
                metrics_cost(bootstrap, in, n);
                return 0;
        }
        double tks = kstreams_run(bootstrap, in, out, n, &produced);
        printf("stateless throughput, %ld user events (%.1f MB, %.0f B "
               "avg), 6 partitions, one broker on this machine\n",
               n, mb, mb * 1e6 / (double)n);
        printf("  %-44s %10.0f records/s\n", "produce (setup, librdkafka)",
               (double)n / tprod);
        printf("  %-44s %10.0f records/s\n",
               "raw librdkafka consume loop (count only)", (double)n / traw);
        printf("  %-44s %10.0f records/s\n",
               "raw librdkafka pipe (consume + produce)", (double)n / tpipe);
        printf("  %-44s %10.0f records/s  (%llu produced)\n",
               "kstreams: decode, filter, map, encode, produce",
               (double)n / tks, (unsigned long long)produced);
        printf("  kstreams / raw consume = %.2f, kstreams / raw pipe = %.2f\n",
               traw / tks, tpipe / tks);
        return 0;
}
