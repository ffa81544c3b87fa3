/* ks_stream_process_values(): a Processor API node that keeps the key, so
 * the DSL need not repartition after it (Kafka Streams' processValues). */
#include "builder_int.h"

ks_stream_t *ks_stream_process_values(ks_stream_t *s,
                                      const char *name,
                                      const ks_processor_def_t *def) {
        if (!s)
                return NULL;
        if (!def || !def->process) {
                ks__builder_fail(s->b,
                                 "process_values(%s): a process callback is "
                                 "required",
                                 name ? name : "");
                if (def && def->opaque_free)
                        def->opaque_free(def->opaque);
                return &s->b->error_stream;
        }
        ks_stream_t *out = ks__stream_add_processor(s, name, "PROCESSOR", def,
                                                    s->key_serde, NULL);
        if (out->node >= 0)
                out->key_changed = s->key_changed;
        return out;
}
