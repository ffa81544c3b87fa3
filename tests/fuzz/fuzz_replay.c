/* Fuzz target: the `kcat -J` replay reader (ks_test_driver_replay_jsonl())
 * over a topology with plain, JSON, windowed and session-windowed topics,
 * then the dump writer over every output (windowed keys included). A bad
 * line must come back as an error, never as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>

static ks_topology_t *topology(void) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *raw =
                ks_builder_stream(b, "in", ks_serde_bytes(), ks_serde_bytes());
        ks_stream_to(raw, "out", ks_serde_bytes(), ks_serde_bytes());
        ks_stream_t *ev = ks_builder_stream(b, "events", ks_serde_string(),
                                            ks_serde_json());
        ks_table_t *wc  = ks_windowed_count(
                 ks_grouped_windowed_by(ks_stream_group_by_key(ev, NULL, NULL),
                                        ks_tumbling_window(60000, 1000)),
                 "wc");
        ks_stream_to(ks_table_to_stream(wc, "wc-stream"), "counts",
                     ks_serde_windowed(ks_serde_string(), 60000),
                     ks_serde_int64());
        ks_table_t *sc = ks_session_windowed_count(
                ks_grouped_session_windowed_by(
                        ks_stream_group_by_key(ev, NULL, NULL), 30000, 0),
                "sc");
        ks_stream_to(ks_table_to_stream(sc, "sc-stream"), "sessions",
                     ks_serde_session_windowed(ks_serde_string()),
                     ks_serde_int64());
        /* Windowed keys read back from a dump of windowed output. */
        ks_stream_t *wk = ks_builder_stream(
                b, "windowed", ks_serde_windowed(ks_serde_string(), 60000),
                ks_serde_bytes());
        ks_stream_to(wk, "windowed-out",
                     ks_serde_windowed(ks_serde_string(), 60000),
                     ks_serde_bytes());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        if (!t) {
                fprintf(stderr, "fuzz_replay: %s\n", err);
                abort();
        }
        return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ks_topology_t *topo;
        static ks_conf_t *conf;
        static FILE *devnull;
        char err[512];
        if (!topo) {
                topo    = topology();
                conf    = ks_conf_new();
                devnull = fopen("/dev/null", "w");
                if (!conf || !devnull ||
                    ks_conf_set(conf,
                                "default.deserialization.exception."
                                "handler",
                                "dead-letter", err, sizeof(err)) ||
                    ks_conf_set(conf, "default.processing.exception.handler",
                                "log-and-continue", err, sizeof(err)) ||
                    ks_conf_set(conf, "errors.dead.letter.queue.topic.name",
                                "dlq", err, sizeof(err)) ||
                    ks_conf_set(conf, "log.rate.limit.ms", "3600000", err,
                                sizeof(err)))
                        abort();
        }
        ks_test_driver_t *drv =
                ks_test_driver_new(topo, conf, err, sizeof(err));
        if (!drv || ks_test_driver_use_memory_stores(drv, true))
                abort();
        FILE *in = fmemopen(size ? (void *)data : (void *)"", size ? size : 1,
                            "r");
        if (!in)
                abort();
        ks_error_destroy(ks_test_driver_replay_jsonl(drv, in, "in", NULL));
        fclose(in);
        ks_error_destroy(ks_test_driver_close_windows(drv, NULL));
        static const char *const outs[] = {"out", "counts", "sessions",
                                           "windowed-out", "dlq"};
        for (size_t i = 0; i < sizeof(outs) / sizeof(*outs); i++)
                ks_error_destroy(
                        ks_test_driver_dump_jsonl(drv, outs[i], devnull));
        ks_test_driver_destroy(drv);
        return 0;
}
