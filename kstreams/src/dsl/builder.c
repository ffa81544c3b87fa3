/* The topology builder: nodes, names, sticky errors, the Processor API. */
#include "builder_int.h"
#include "dsl_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

ks_builder_t *ks_builder_new(void) {
        ks_builder_t *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->error_stream.b    = b;
        b->error_stream.node = -1;
        return b;
}

void ks__node_free(ks_node_t *n) {
        if (!n)
                return;
        free(n->name);
        free(n->parents);
        free(n->children);
        for (int i = 0; i < n->topic_cnt; i++)
                free(n->topics[i]);
        free(n->topics);
        free(n->pattern);
        if (n->has_regex)
                regfree(&n->regex);
        ks_serde_destroy(n->key_serde);
        ks_serde_destroy(n->value_serde);
        ks_timestamp_extractor_destroy(n->ts_extractor);
        if (n->def.opaque_free)
                n->def.opaque_free(n->def.opaque);
        for (int i = 0; i < n->store_ref_cnt; i++)
                free(n->store_refs[i]);
        free(n->store_refs);
        if (n->store)
                free(n->store->name);
        free(n->store);
        free(n);
}

void ks_builder_destroy(ks_builder_t *b) {
        if (!b)
                return;
        if (!b->built)
                for (int i = 0; i < b->node_cnt; i++)
                        ks__node_free(b->nodes[i]);
        free(b->nodes);
        for (ks_stream_t *s = b->streams, *next; s; s = next) {
                next = s->next_owned;
                free(s);
        }
        for (int i = 0; i < b->owned_cnt; i++)
                b->owned[i].free(b->owned[i].ptr);
        free(b->owned);
        for (ks_branched_t *br = b->branches, *next; br; br = next) {
                next = br->next_owned;
                free(br->prefix);
                free(br);
        }
        free(b);
}

void *ks__builder_own(ks_builder_t *b, void *ptr, void (*fn)(void *)) {
        if (!ptr) {
                ks__builder_fail(b, "out of memory");
                return NULL;
        }
        if (b->owned_cnt == b->owned_cap) {
                int cap           = b->owned_cap ? b->owned_cap * 2 : 16;
                struct owned_s *o = realloc(b->owned, (size_t)cap * sizeof(*o));
                if (!o) {
                        fn(ptr);
                        ks__builder_fail(b, "out of memory");
                        return NULL;
                }
                b->owned     = o;
                b->owned_cap = cap;
        }
        b->owned[b->owned_cnt].ptr    = ptr;
        b->owned[b->owned_cnt++].free = fn;
        return ptr;
}

void ks__builder_fail(ks_builder_t *b, const char *fmt, ...) {
        if (b->error[0])
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->error, sizeof(b->error), fmt, ap);
        va_end(ap);
}

char *ks__builder_name(ks_builder_t *b, const char *name, const char *op) {
        char buf[128];
        int index = b->name_index++; /* derived or not, as Kafka Streams */
        if (name)
                return strdup(name);
        snprintf(buf, sizeof(buf), "KSTREAM-%s-%010d", op, index);
        return strdup(buf);
}

static int node_index(const ks_builder_t *b, const char *name) {
        for (int i = 0; i < b->node_cnt; i++)
                if (!strcmp(b->nodes[i]->name, name))
                        return i;
        return -1;
}

ks_node_t *ks__builder_add_node(ks_builder_t *b,
                                char *name,
                                ks_node_kind_t kind,
                                const int *parents,
                                int parent_cnt) {
        if (!name) {
                ks__builder_fail(b, "out of memory adding a node");
                return NULL;
        }
        if (b->built) {
                ks__builder_fail(b, "%s: the builder has already been built",
                                 name);
                free(name);
                return NULL;
        }
        if (!*name || node_index(b, name) >= 0) {
                ks__builder_fail(b, "%s: %s node name", name,
                                 *name ? "duplicate" : "empty");
                free(name);
                return NULL;
        }
        if (b->node_cnt == b->node_cap) {
                int cap        = b->node_cap ? b->node_cap * 2 : 16;
                ks_node_t **nn = realloc(b->nodes, (size_t)cap * sizeof(*nn));
                if (!nn)
                        goto err_oom;
                b->nodes    = nn;
                b->node_cap = cap;
        }
        ks_node_t *n = calloc(1, sizeof(*n));
        if (!n)
                goto err_oom;
        n->name = name;
        n->kind = kind;
        n->id   = b->node_cnt;
        if (parent_cnt > 0) {
                n->parents = malloc((size_t)parent_cnt * sizeof(int));
                if (!n->parents) {
                        n->name = NULL;
                        ks__node_free(n);
                        goto err_oom;
                }
                memcpy(n->parents, parents, (size_t)parent_cnt * sizeof(int));
                n->parent_cnt = parent_cnt;
        }
        for (int i = 0; i < parent_cnt; i++) {
                ks_node_t *p = b->nodes[parents[i]];
                int *c       = realloc(p->children,
                                       (size_t)(p->child_cnt + 1) * sizeof(int));
                if (!c) {
                        n->name = NULL;
                        ks__node_free(n);
                        goto err_oom;
                }
                p->children                 = c;
                p->children[p->child_cnt++] = n->id;
        }
        b->nodes[b->node_cnt++] = n;
        return n;

err_oom:
        ks__builder_fail(b, "%s: out of memory", name);
        free(name);
        return NULL;
}

ks_stream_t *ks__stream_new(ks_builder_t *b,
                            int node,
                            ks_serde_t *key_serde,
                            ks_serde_t *value_serde) {
        ks_stream_t *s = calloc(1, sizeof(*s));
        if (!s) {
                ks__builder_fail(b, "out of memory creating a stream");
                return &b->error_stream;
        }
        s->b           = b;
        s->node        = node;
        s->key_serde   = key_serde;
        s->value_serde = value_serde;
        s->next_owned  = b->streams;
        b->streams     = s;
        return s;
}

bool ks__stream_ok(ks_stream_t *s, const char *step) {
        if (!s)
                return false;
        if (s->node < 0) {
                ks__builder_fail(s->b, "%s: its input stream is invalid", step);
                return false;
        }
        return true;
}

/* A processor's own store (ks_processor_def_t.store): a node store as the
 * DSL's operators have, so tasks open, changelog, restore, undo and query
 * it as theirs. The definition is copied: n->def keeps no pointer to it. */
static void attach_store(ks_builder_t *b, ks_node_t *n) {
        const ks_store_def_t *sd = n->def.store;
        n->def.store             = NULL;
        if (!sd)
                return;
        bool window     = sd->type == KS_STORE_TYPE_WINDOW;
        const char *why = !sd->name || !*sd->name ? "a store name is required"
                          : sd->type != KS_STORE_TYPE_KEY_VALUE && !window
                                  ? "unknown store type"
                          : window && sd->retention_ms <= 0
                                  ? "a window store needs retention_ms > 0"
                          : sd->segment_ms < 0 ? "segment_ms must be >= 0"
                                               : NULL;
        if (why) {
                ks__builder_fail(b, "%s: %s", n->name, why);
                return;
        }
        char *name = strdup(sd->name);
        if (!name) {
                ks__builder_fail(b, "out of memory");
                return;
        }
        if (ks__node_set_store(b, n->id, name,
                               window ? KS_STORE_WINDOW : KS_STORE_KV,
                               window ? sd->retention_ms : 0) &&
            window && sd->segment_ms > 0)
                n->store->segment_ms = sd->segment_ms;
}

ks_stream_t *ks__stream_add_processor(ks_stream_t *s,
                                      const char *name,
                                      const char *op,
                                      const ks_processor_def_t *def,
                                      ks_serde_t *key_serde,
                                      ks_serde_t *value_serde) {
        if (!s) {
                if (def->opaque_free)
                        def->opaque_free(def->opaque);
                return NULL;
        }
        ks_builder_t *b = s->b;
        if (!ks__stream_ok(s, name ? name : op)) {
                if (def->opaque_free)
                        def->opaque_free(def->opaque);
                return &b->error_stream;
        }
        ks_node_t *n = ks__builder_add_node(b, ks__builder_name(b, name, op),
                                            KS_NODE_PROCESSOR, &s->node, 1);
        if (!n) {
                if (def->opaque_free)
                        def->opaque_free(def->opaque);
                return &b->error_stream;
        }
        n->def = *def;
        attach_store(b, n);
        return ks__stream_new(b, n->id, key_serde, value_serde);
}

/* ---- sources --------------------------------------------------------------
 */

static ks_node_t *add_source(ks_builder_t *b,
                             const char *name,
                             const char *const *topics,
                             size_t topic_cnt,
                             ks_serde_t *key_serde,
                             ks_serde_t *value_serde) {
        ks_node_t *n =
                ks__builder_add_node(b, ks__builder_name(b, name, "SOURCE"),
                                     KS_NODE_SOURCE, NULL, 0);
        if (!n) {
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return NULL;
        }
        n->key_serde   = key_serde;
        n->value_serde = value_serde;
        if (!key_serde || !value_serde)
                ks__builder_fail(b,
                                 "%s: a source needs a key and a value serde",
                                 n->name);
        if (topic_cnt > 0) {
                n->topics = calloc(topic_cnt, sizeof(char *));
                if (!n->topics) {
                        ks__builder_fail(b, "%s: out of memory", n->name);
                        return n;
                }
        }
        for (size_t i = 0; i < topic_cnt; i++) {
                if (!topics[i] || !*topics[i]) {
                        ks__builder_fail(b, "%s: empty topic name", n->name);
                        return n;
                }
                n->topics[i] = strdup(topics[i]);
                if (!n->topics[i]) {
                        ks__builder_fail(b, "%s: out of memory", n->name);
                        return n;
                }
                n->topic_cnt++;
        }
        return n;
}

ks_stream_t *ks_builder_stream(ks_builder_t *b,
                               const char *topic,
                               ks_serde_t *key_serde,
                               ks_serde_t *value_serde) {
        return ks_builder_stream_topics(b, NULL, &topic, 1, key_serde,
                                        value_serde);
}

ks_stream_t *ks_builder_stream_topics(ks_builder_t *b,
                                      const char *name,
                                      const char *const *topics,
                                      size_t topic_cnt,
                                      ks_serde_t *key_serde,
                                      ks_serde_t *value_serde) {
        if (!b)
                return NULL;
        if (topic_cnt == 0) {
                ks__builder_fail(b, "%s: a source needs at least one topic",
                                 name ? name : "stream");
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return &b->error_stream;
        }
        ks_node_t *n =
                add_source(b, name, topics, topic_cnt, key_serde, value_serde);
        if (!n)
                return &b->error_stream;
        return ks__stream_new(b, n->id, n->key_serde, n->value_serde);
}

ks_stream_t *ks_builder_stream_pattern(ks_builder_t *b,
                                       const char *name,
                                       const char *regex,
                                       ks_serde_t *key_serde,
                                       ks_serde_t *value_serde) {
        if (!b)
                return NULL;
        ks_node_t *n = add_source(b, name, NULL, 0, key_serde, value_serde);
        if (!n)
                return &b->error_stream;
        if (!regex || !*regex) {
                ks__builder_fail(b, "%s: empty topic pattern", n->name);
                return &b->error_stream;
        }
        /* Anchor it: Java matches the whole topic name. */
        size_t len     = strlen(regex) + 5;
        char *anchored = malloc(len);
        n->pattern     = strdup(regex);
        if (!anchored || !n->pattern) {
                free(anchored);
                ks__builder_fail(b, "%s: out of memory", n->name);
                return &b->error_stream;
        }
        snprintf(anchored, len, "^(%s)$", regex);
        int rc = regcomp(&n->regex, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (rc) {
                char msg[128];
                regerror(rc, &n->regex, msg, sizeof(msg));
                ks__builder_fail(b, "%s: bad topic pattern \"%s\": %s", n->name,
                                 regex, msg);
                return &b->error_stream;
        }
        n->has_regex = true;
        return ks__stream_new(b, n->id, n->key_serde, n->value_serde);
}

ks_stream_t *ks_stream_with_timestamps(ks_stream_t *s,
                                       ks_timestamp_extractor_t *ex) {
        if (!s) {
                ks_timestamp_extractor_destroy(ex);
                return NULL;
        }
        if (!ks__stream_ok(s, "with_timestamps")) {
                ks_timestamp_extractor_destroy(ex);
                return s;
        }
        ks_node_t *n = s->b->nodes[s->node];
        if (n->kind != KS_NODE_SOURCE || !ex) {
                ks__builder_fail(s->b, "with_timestamps(%s): %s", n->name,
                                 ex ? "not a source stream"
                                    : "NULL timestamp extractor");
                ks_timestamp_extractor_destroy(ex);
                return s;
        }
        ks_timestamp_extractor_destroy(n->ts_extractor);
        n->ts_extractor = ex;
        return s;
}

/* ---- the Processor API ----------------------------------------------------
 */

static bool resolve_parents(ks_builder_t *b,
                            const char *name,
                            const char *const *parents,
                            size_t parent_cnt,
                            int *out) {
        if (parent_cnt == 0) {
                ks__builder_fail(b, "%s: needs at least one parent", name);
                return false;
        }
        for (size_t i = 0; i < parent_cnt; i++) {
                int idx = parents[i] ? node_index(b, parents[i]) : -1;
                if (idx < 0) {
                        ks__builder_fail(b,
                                         "%s: parent \"%s\" not found (add "
                                         "parents first)",
                                         name,
                                         parents[i] ? parents[i] : "(null)");
                        return false;
                }
                if (b->nodes[idx]->kind == KS_NODE_SINK) {
                        ks__builder_fail(b, "%s: parent \"%s\" is a sink", name,
                                         parents[i]);
                        return false;
                }
                out[i] = idx;
        }
        return true;
}

void ks_builder_add_source(ks_builder_t *b,
                           const char *name,
                           const char *const *topics,
                           size_t topic_cnt,
                           ks_serde_t *key_serde,
                           ks_serde_t *value_serde) {
        if (!b)
                return;
        if (!name) {
                ks__builder_fail(b, "add_source: a name is required");
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return;
        }
        ks_builder_stream_topics(b, name, topics, topic_cnt, key_serde,
                                 value_serde);
}

void ks_builder_add_processor(ks_builder_t *b,
                              const char *name,
                              const ks_processor_def_t *def,
                              const char *const *parents,
                              size_t parent_cnt) {
        int idx[64];
        if (!b)
                return;
        if (!name || !def || !def->process || parent_cnt > 64) {
                ks__builder_fail(
                        b, "add_processor(%s): %s", name ? name : "(null)",
                        !name             ? "a name is required"
                        : parent_cnt > 64 ? "more than 64 parents"
                                          : "a process callback is required");
                if (def && def->opaque_free)
                        def->opaque_free(def->opaque);
                return;
        }
        ks_node_t *n = NULL;
        if (resolve_parents(b, name, parents, parent_cnt, idx))
                n = ks__builder_add_node(b, strdup(name), KS_NODE_PROCESSOR,
                                         idx, (int)parent_cnt);
        if (!n) {
                if (def->opaque_free)
                        def->opaque_free(def->opaque);
                return;
        }
        n->def = *def;
        attach_store(b, n);
}

void ks_builder_add_sink(ks_builder_t *b,
                         const char *name,
                         const char *topic,
                         ks_serde_t *key_serde,
                         ks_serde_t *value_serde,
                         const char *const *parents,
                         size_t parent_cnt) {
        int idx[64];
        ks_node_t *n = NULL;
        if (!b)
                return;
        if (!name || !topic || !*topic || !key_serde || !value_serde ||
            parent_cnt > 64)
                ks__builder_fail(b,
                                 "add_sink(%s): a name, a topic, serdes "
                                 "and at most 64 parents are required",
                                 name ? name : "(null)");
        else if (resolve_parents(b, name, parents, parent_cnt, idx))
                n = ks__builder_add_node(b, strdup(name), KS_NODE_SINK, idx,
                                         (int)parent_cnt);
        if (!n || !(n->topics = calloc(1, sizeof(char *))) ||
            !(n->topics[0] = strdup(topic))) {
                if (n)
                        ks__builder_fail(b, "%s: out of memory", name);
                ks_serde_destroy(key_serde);
                ks_serde_destroy(value_serde);
                return;
        }
        n->topic_cnt   = 1;
        n->key_serde   = key_serde;
        n->value_serde = value_serde;
}
