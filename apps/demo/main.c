/* kstreams-demo: replays a generated sample of user-events through an
 * example topology in the test driver (no broker needed) and prints the
 * topology's description and its output.
 *
 *   user-events -> valid-events -> by-type (select key = event type)
 *     -> repartition -> count-by-type -> event-counts-by-type
 *
 * The count is a Processor API node with per-task in-memory state; the
 * stateful DSL with changelogged stores replaces it in a later release. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>

#include "common/event_gen.h"
#include "common/user_event_serde.h"

typedef struct options_s {
        long events;
        unsigned long long seed;
        double bad_ratio;
        int partitions;
        bool mermaid;
        const char *output;
} options_t;

static void usage(FILE *f) {
        fprintf(f,
                "usage: kstreams-demo [options]\n"
                "Replays generated user-events through an example topology "
                "(validate -> count per\nevent type) in the kstreams test "
                "driver, with no broker, and prints the result.\n\n"
                "  --events N       events to generate (default 20000)\n"
                "  --seed S         generator seed (default 42)\n"
                "  --bad-ratio R    fraction of malformed events, 0..1 "
                "(default 0.01)\n"
                "  --partitions P   partitions of user-events (default 4)\n"
                "  --output FILE    write every output record as kcat -J "
                "JSON lines\n"
                "  --mermaid        also print the topology as Mermaid\n"
                "  --help           this text\n");
}

static const char *const known_types[] = {
        "page_view",   "button_click", "form_submit", "purchase",
        "add_to_cart", "search",       "login",       "logout"};

static bool is_valid(const void *key, const void *value, void *opaque) {
        const user_event_t *ev = value;
        (void)key, (void)opaque;
        if (!ev)
                return false;
        for (size_t i = 0; i < sizeof(known_types) / sizeof(*known_types); i++)
                if (!strcmp(ev->event_type, known_types[i]))
                        return true;
        return false;
}

static const void *type_of(ks_arena_t *a,
                           const void *key,
                           const void *value,
                           void *opaque) {
        (void)a, (void)key, (void)opaque;
        return ((const user_event_t *)value)->event_type; /* borrowed */
}

typedef struct counts_s {
        char type[16][32];
        int64_t count[16];
        int n;
} counts_t;

static ks_err_t count_init(ks_ctx_t *ctx, void **state, void *opaque) {
        (void)ctx, (void)opaque;
        *state = calloc(1, sizeof(counts_t));
        return *state ? KS_OK : KS_ERR_NOMEM;
}

static ks_err_t count_process(ks_ctx_t *ctx,
                              const void *key,
                              const void *value,
                              void *state,
                              void *opaque) {
        counts_t *c = state;
        (void)value, (void)opaque;
        int i;
        for (i = 0; i < c->n && strcmp(c->type[i], key); i++)
                ;
        if (i == c->n) {
                if (c->n == 16 || strlen(key) >= 32)
                        return ks_ctx_fail(ctx, "too many event types");
                snprintf(c->type[c->n++], 32, "%s", (const char *)key);
        }
        c->count[i]++;
        return ks_ctx_forward(ctx, key,
                              ks_arena_int64(ks_ctx_arena(ctx), c->count[i]));
}

static void count_close(ks_ctx_t *ctx, void *state, void *opaque) {
        (void)ctx, (void)opaque;
        free(state);
}

static ks_topology_t *build_topology(char *err, size_t err_size) {
        ks_builder_t *b     = ks_builder_new();
        ks_stream_t *events = ks_builder_stream(
                b, "user-events", ks_serde_string(), user_event_serde());
        events = ks_stream_with_timestamps(events,
                                           user_event_timestamp_extractor());
        ks_stream_t *valid =
                ks_stream_filter(events, "valid-events", is_valid, NULL);
        ks_stream_t *by_type = ks_stream_repartition(
                ks_stream_select_key(valid, "by-type", type_of, NULL),
                "by-type", ks_serde_string(), NULL, 0);
        ks_processor_def_t count = {.init    = count_init,
                                    .process = count_process,
                                    .close   = count_close};
        ks_stream_to(ks_stream_process(by_type, "count-by-type", &count),
                     "event-counts-by-type", ks_serde_string(),
                     ks_serde_int64());
        ks_topology_t *t = ks_builder_build(b, err, err_size);
        ks_builder_destroy(b);
        return t;
}

static int parse_options(int argc, char **argv, options_t *o) {
        static const struct option longopts[] = {
                {"events", required_argument, NULL, 'n'},
                {"seed", required_argument, NULL, 's'},
                {"bad-ratio", required_argument, NULL, 'b'},
                {"partitions", required_argument, NULL, 'p'},
                {"output", required_argument, NULL, 'o'},
                {"mermaid", no_argument, NULL, 'm'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        int c;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                char *end = NULL;
                switch (c) {
                case 'n':
                        o->events = strtol(optarg, &end, 10);
                        if (*end || o->events < 1)
                                goto bad;
                        break;
                case 's':
                        o->seed = strtoull(optarg, &end, 10);
                        if (*end)
                                goto bad;
                        break;
                case 'b':
                        o->bad_ratio = strtod(optarg, &end);
                        if (*end || o->bad_ratio < 0 || o->bad_ratio > 1)
                                goto bad;
                        break;
                case 'p':
                        o->partitions = (int)strtol(optarg, &end, 10);
                        if (*end || o->partitions < 1 || o->partitions > 1024)
                                goto bad;
                        break;
                case 'o':
                        o->output = optarg;
                        break;
                case 'm':
                        o->mermaid = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        return -1;
                }
                continue;
        bad:
                fprintf(stderr, "kstreams-demo: invalid value \"%s\"\n",
                        optarg);
                return -1;
        }
        return 0;
}

static double seconds_since(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) +
               (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
        options_t o = {.events     = 20000,
                       .seed       = 42,
                       .bad_ratio  = 0.01,
                       .partitions = 4};
        char err[512];
        if (parse_options(argc, argv, &o))
                return 2;
        ks_topology_t *topo = build_topology(err, sizeof(err));
        if (!topo) {
                fprintf(stderr, "kstreams-demo: %s\n", err);
                return 1;
        }
        ks_buf_t desc = {0};
        ks_topology_describe(topo, &desc);
        printf("== topology ==\n%s", desc.data);
        if (o.mermaid) {
                ks_buf_clear(&desc);
                ks_topology_describe_mermaid(topo, &desc);
                printf("== mermaid ==\n%s\n", desc.data);
        }
        ks_buf_free(&desc);

        ks_conf_t *conf = ks_conf_new();
        if (ks_conf_set(conf, "application.id", "demo", err, sizeof(err)) ||
            ks_conf_set(conf, "default.deserialization.exception.handler",
                        "dead-letter", err, sizeof(err)) ||
            ks_conf_set(conf, "errors.dead.letter.queue.topic.name",
                        "user-events-dlq", err, sizeof(err))) {
                fprintf(stderr, "kstreams-demo: %s\n", err);
                return 1;
        }
        ks_test_driver_t *drv =
                ks_test_driver_new(topo, conf, err, sizeof(err));
        ks_conf_destroy(conf);
        if (!drv) {
                fprintf(stderr, "kstreams-demo: %s\n", err);
                return 1;
        }
        ks_test_driver_create_topic(drv, "user-events", o.partitions);
        ks_test_driver_create_topic(drv, "event-counts-by-type", o.partitions);

        event_gen_t *gen = event_gen_new(o.seed, 1765533600000, 1000);
        event_gen_set_bad_ratio(gen, o.bad_ratio);
        ks_buf_t raw = {0};
        long bad     = 0;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = 0;
        for (long i = 0; i < o.events; i++) {
                bool is_bad;
                ks_buf_clear(&raw);
                if (event_gen_next_raw(gen, &raw, &is_bad)) {
                        fprintf(stderr, "kstreams-demo: generator failed\n");
                        rc = 1;
                        break;
                }
                bad += is_bad;
                ks_error_t *e = ks_test_driver_pipe(
                        drv, "user-events", -1, NULL, 0, raw.data, raw.len,
                        event_gen_clock_ms(gen), NULL, 0);
                if (e) {
                        fprintf(stderr, "kstreams-demo: %s\n",
                                ks_error_message(e));
                        ks_error_destroy(e);
                        rc = 1;
                        break;
                }
        }
        double secs = seconds_since(&t0);

        /* The last count per type is the final one. */
        char types[16][32];
        int64_t finals[16];
        int ntypes = 0;
        ks_test_record_t r;
        uint64_t outputs = 0;
        while (ks_test_driver_read(drv, "event-counts-by-type", &r)) {
                const unsigned char *b = r.value.data;
                int64_t v              = 0;
                for (int i = 0; i < 8; i++)
                        v = (v << 8) | b[i];
                int i;
                for (i = 0; i < ntypes && strcmp(types[i], r.key.data); i++)
                        ;
                if (i == ntypes && ntypes < 16)
                        snprintf(types[ntypes++], 32, "%s",
                                 (const char *)r.key.data);
                if (i < 16)
                        finals[i] = v;
                outputs++;
        }
        printf("== output: event-counts-by-type (final count per type) ==\n");
        int64_t total = 0;
        for (int i = 0; i < ntypes; i++) {
                printf("  %-14s %8lld\n", types[i], (long long)finals[i]);
                total += finals[i];
        }
        printf("  %-14s %8lld\n", "(all valid)", (long long)total);
        printf("== summary ==\n"
               "  events piped            %ld (%ld generated malformed)\n"
               "  counted                 %lld\n"
               "  sent to user-events-dlq %llu\n"
               "  dropped by the filter   %llu\n"
               "  output records          %llu\n"
               "  tasks                   %llu\n"
               "  time                    %.3f s (%.0f events/s through "
               "the driver)\n",
               o.events, bad, (long long)total,
               (unsigned long long)ks_test_driver_metric(drv, "dead-lettered"),
               (unsigned long long)(o.events -
                                    (long)ks_test_driver_metric(
                                            drv, "dead-lettered") -
                                    total),
               (unsigned long long)outputs,
               (unsigned long long)ks_test_driver_metric(drv, "tasks"), secs,
               (double)o.events / secs);
        if (o.output) {
                FILE *f = fopen(o.output, "w");
                ks_error_t *e =
                        f ? ks_test_driver_dump_jsonl(drv, "user-events-dlq", f)
                          : ks_error_new(KS_ERR_IO, "%s", strerror(errno));
                if (f && fclose(f) && !e)
                        e = ks_error_new(KS_ERR_IO, "%s", strerror(errno));
                /* No dead letters at all is an empty file, not an error. */
                if (e && ks_error_code(e) != KS_ERR_NOT_FOUND) {
                        fprintf(stderr, "kstreams-demo: cannot write %s: %s\n",
                                o.output, ks_error_message(e));
                        rc = 1;
                }
                ks_error_destroy(e);
                if (!rc)
                        printf("  dead letters written to %s (kcat -J lines)\n",
                               o.output);
        }
        ks_buf_free(&raw);
        event_gen_destroy(gen);
        ks_test_driver_destroy(drv);
        ks_topology_destroy(topo);
        return rc;
}
