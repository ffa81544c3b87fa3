/* Fuzz target: changelog records applied on restore. The bytes of a
 * changelog topic are untrusted (another version wrote them, or anyone
 * with write access): each record is applied to a task's LMDB stores as
 * the runtime's changelog reader does (ks__task_restore_put(), commits,
 * ks__task_compensate() for records past the last commit), then the task
 * processes records that read those stores: key-value, window and
 * session stores, their aggregations and the window close.
 *
 * Input: records of [store index][op][key length, 2 bytes BE][key]
 * [value length, 2 bytes BE][value]; op 0 put, 1 tombstone, 2 undo. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>

#include "driver_int.h"

static ks_topology_t *topology(void) {
        char err[512];
        ks_builder_t *b = ks_builder_new();
        ks_stream_t *ev = ks_builder_stream(b, "events", ks_serde_string(),
                                            ks_serde_string());
        ks_table_t *kc =
                ks_grouped_count(ks_stream_group_by_key(ev, NULL, NULL), "kc");
        ks_stream_to(ks_table_to_stream(kc, "kc-stream"), "kc-out",
                     ks_serde_string(), ks_serde_int64());
        ks_table_t *wc = ks_windowed_count(
                ks_grouped_windowed_by(ks_stream_group_by_key(ev, NULL, NULL),
                                       ks_tumbling_window(60000, 1000)),
                "wc");
        ks_stream_to(ks_table_to_stream(wc, "wc-stream"), "wc-out",
                     ks_serde_windowed(ks_serde_string(), 60000),
                     ks_serde_int64());
        ks_table_t *sc = ks_session_windowed_count(
                ks_grouped_session_windowed_by(
                        ks_stream_group_by_key(ev, NULL, NULL), 30000, 0),
                "sc");
        ks_stream_to(ks_table_to_stream(sc, "sc-stream"), "sc-out",
                     ks_serde_session_windowed(ks_serde_string()),
                     ks_serde_int64());
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        if (!t) {
                fprintf(stderr, "fuzz_changelog_restore: %s\n", err);
                abort();
        }
        return t;
}

static uint16_t be16(const uint8_t *p) {
        return (uint16_t)(p[0] << 8 | p[1]);
}

/* Takes a length-prefixed field off the input; false at the end. */
static bool field(const uint8_t **p, const uint8_t *end, ks_bytes_t *out) {
        if (end - *p < 2)
                return false;
        size_t n = be16(*p);
        *p += 2;
        if (n > (size_t)(end - *p))
                n = (size_t)(end - *p);
        *out = (ks_bytes_t){*p, n};
        *p += n;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ks_topology_t *topo;
        static ks_conf_t *conf;
        char err[512];
        if (!topo) {
                topo = topology();
                conf = ks_conf_new();
                if (!conf ||
                    ks_conf_set(conf, "default.processing.exception.handler",
                                "log-and-continue", err, sizeof(err)) ||
                    ks_conf_set(conf, "log.rate.limit.ms", "3600000", err,
                                sizeof(err)))
                        abort();
        }
        ks_test_driver_t *drv =
                ks_test_driver_new(topo, conf, err, sizeof(err));
        if (!drv)
                abort();
        /* The first record creates the task and its LMDB stores. */
        ks_error_destroy(ks_test_driver_pipe_str(drv, "events", "k", "v", 1));
        if (drv->task_cnt != 1)
                abort();
        ks_task_t *task  = drv->tasks[0];
        int stores       = ks__task_store_count(task);
        const uint8_t *p = data, *end = data + size;
        int64_t offset      = 0;
        ks_error_t *failure = NULL;
        while (!failure && end - p >= 2) {
                int store = p[0] % stores, op = p[1] % 3;
                p += 2;
                ks_bytes_t key, value;
                if (!field(&p, end, &key) || !field(&p, end, &value))
                        break;
                if (op == 1)
                        value = (ks_bytes_t){NULL, 0};
                if (op == 2)
                        failure = ks__task_compensate(task, store, key, offset);
                else
                        failure = ks__task_restore_put(task, store, key, value);
                if (!failure && ++offset % 4 == 0)
                        failure = ks__task_restore_commit(task, store, offset);
        }
        /* A record the stores reject fails the restore with an error; the
         * runtime then closes the task. Either way, nothing may crash. */
        if (failure) {
                ks_error_destroy(failure);
                ks__task_abort_state(task);
        } else {
                for (int i = 0; i < stores && !failure; i++)
                        failure = ks__task_restore_commit(task, i, offset);
                ks_error_destroy(failure);
        }
        static const char *const keys[] = {"k", "", "a\xff"};
        for (int i = 0; i < 3; i++)
                ks_error_destroy(ks_test_driver_pipe_str(
                        drv, "events", keys[i], "x", 1000 + 30000 * i));
        ks_error_destroy(ks_test_driver_close_windows(drv, NULL));
        ks_test_driver_destroy(drv);
        return 0;
}
