/* Questions about the topology graph that tasks, the runtime and the test
 * driver ask while running it: which nodes read or write a topic. */
#include <stdio.h>
#include <string.h>

#include "topology_int.h"

int ks_topology_subtopology_count(const ks_topology_t *t) {
        return t->subtopology_cnt;
}

void ks__internal_topic_name(const char *application_id,
                             const char *suffix,
                             char *out,
                             size_t out_size) {
        snprintf(out, out_size, "%s-%s", application_id, suffix);
}

bool ks__source_reads(const ks_node_t *src,
                      const char *application_id,
                      const char *topic) {
        if (src->has_regex)
                return regexec(&src->regex, topic, 0, NULL, 0) == 0;
        for (int i = 0; i < src->topic_cnt; i++) {
                if (!src->internal) {
                        if (!strcmp(src->topics[i], topic))
                                return true;
                        continue;
                }
                size_t alen = strlen(application_id);
                if (!strncmp(topic, application_id, alen) &&
                    topic[alen] == '-' &&
                    !strcmp(topic + alen + 1, src->topics[i]))
                        return true;
        }
        return false;
}

const ks_serde_t *ks__sink_key_serde(const ks_topology_t *t,
                                     const char *application_id,
                                     const char *topic) {
        const ks_serde_t *found = NULL;
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->kind != KS_NODE_SINK || n->topic_fn ||
                    !ks__source_reads(n, application_id, topic))
                        continue;
                if (found && found != n->key_serde)
                        return NULL; /* sinks disagree: no one serde */
                found = n->key_serde;
        }
        return found;
}
