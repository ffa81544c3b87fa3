/* Building the topology (validation, sub-topologies) and describing it. */
#include "builder_int.h"

#include <stdlib.h>
#include <string.h>

static int uf_find(int *parent, int x) {
        while (parent[x] != x) {
                parent[x] = parent[parent[x]];
                x         = parent[x];
        }
        return x;
}

static bool validate(ks_builder_t *b) {
        int sources = 0;
        for (int i = 0; i < b->node_cnt; i++)
                for (int j = 0; j < i && b->nodes[i]->store; j++)
                        if (b->nodes[j]->store &&
                            !strcmp(b->nodes[j]->store->name,
                                    b->nodes[i]->store->name)) {
                                ks__builder_fail(b,
                                                 "%s: store name %s is "
                                                 "already used by %s",
                                                 b->nodes[i]->name,
                                                 b->nodes[i]->store->name,
                                                 b->nodes[j]->name);
                                return false;
                        }
        for (int i = 0; i < b->node_cnt; i++) {
                ks_node_t *n = b->nodes[i];
                if (n->kind == KS_NODE_SOURCE)
                        sources++;
                if (n->kind == KS_NODE_SINK && n->topic_cnt == 0 &&
                    !n->topic_fn) {
                        ks__builder_fail(b, "%s: a sink needs a topic",
                                         n->name);
                        return false;
                }
                if (n->kind != KS_NODE_SOURCE)
                        continue;
                for (int t = 0; t < n->topic_cnt; t++)
                        for (int j = 0; j < i; j++) {
                                ks_node_t *o = b->nodes[j];
                                if (o->kind != KS_NODE_SOURCE)
                                        continue;
                                for (int u = 0; u < o->topic_cnt; u++)
                                        if (!strcmp(o->topics[u],
                                                    n->topics[t])) {
                                                ks__builder_fail(
                                                        b,
                                                        "topic %s is read by "
                                                        "two sources, %s and "
                                                        "%s: read it once and "
                                                        "branch",
                                                        n->topics[t], o->name,
                                                        n->name);
                                                return false;
                                        }
                        }
        }
        for (int i = 0; i < b->node_cnt; i++)
                for (int r = 0; r < b->nodes[i]->store_ref_cnt; r++) {
                        bool found = false;
                        for (int j = 0; j < b->node_cnt && !found; j++)
                                found = b->nodes[j]->store &&
                                        !strcmp(b->nodes[j]->store->name,
                                                b->nodes[i]->store_refs[r]);
                        if (!found) {
                                ks__builder_fail(b, "%s: no store named %s",
                                                 b->nodes[i]->name,
                                                 b->nodes[i]->store_refs[r]);
                                return false;
                        }
                }
        if (!sources) {
                ks__builder_fail(b, "the topology has no source");
                return false;
        }
        return true;
}

ks_topology_t *ks_builder_build(ks_builder_t *b,
                                char *errstr,
                                size_t errstr_size) {
        if (!b) {
                snprintf(errstr, errstr_size, "ks_builder_build: NULL builder");
                return NULL;
        }
        if (b->built)
                ks__builder_fail(b, "ks_builder_build: already built");
        if (b->error[0] || !validate(b)) {
                snprintf(errstr, errstr_size, "%s", b->error);
                return NULL;
        }
        ks_topology_t *t = calloc(1, sizeof(*t));
        int *uf          = malloc((size_t)b->node_cnt * sizeof(int));
        int *sub_of_root = malloc((size_t)b->node_cnt * sizeof(int));
        if (!t || !uf || !sub_of_root) {
                free(t);
                free(uf);
                free(sub_of_root);
                snprintf(errstr, errstr_size,
                         "ks_builder_build: out of memory");
                return NULL;
        }
        /* Sub-topologies are the connected components of the node graph:
         * a sink -> topic -> source hop is not an edge, so repartition
         * topics cut the graph, as in Kafka Streams. */
        for (int i = 0; i < b->node_cnt; i++) {
                uf[i]          = i;
                sub_of_root[i] = -1;
        }
        for (int i = 0; i < b->node_cnt; i++)
                for (int p = 0; p < b->nodes[i]->parent_cnt; p++) {
                        int x = uf_find(uf, i);
                        int y = uf_find(uf, b->nodes[i]->parents[p]);
                        if (x != y)
                                uf[x > y ? x : y] = x < y ? x : y;
                }
        /* Nodes that share a store share a task (Kafka Streams does the
         * same), so a store reference joins the owner's sub-topology. */
        for (int i = 0; i < b->node_cnt; i++)
                for (int r = 0; r < b->nodes[i]->store_ref_cnt; r++)
                        for (int j = 0; j < b->node_cnt; j++) {
                                const ks_store_spec_t *st = b->nodes[j]->store;
                                if (!st || strcmp(st->name,
                                                  b->nodes[i]->store_refs[r]))
                                        continue;
                                int x = uf_find(uf, i), y = uf_find(uf, j);
                                if (x != y)
                                        uf[x > y ? x : y] = x < y ? x : y;
                        }
        int subs = 0;
        for (int i = 0; i < b->node_cnt; i++) {
                int root = uf_find(uf, i);
                if (sub_of_root[root] < 0)
                        sub_of_root[root] = subs++;
                b->nodes[i]->subtopology = sub_of_root[root];
        }
        free(uf);
        free(sub_of_root);
        t->nodes           = b->nodes;
        t->node_cnt        = b->node_cnt;
        t->subtopology_cnt = subs;
        b->nodes           = NULL;
        b->node_cnt        = 0;
        b->built           = true;
        return t;
}

void ks_topology_destroy(ks_topology_t *t) {
        if (!t)
                return;
        for (int i = 0; i < t->node_cnt; i++)
                ks__node_free(t->nodes[i]);
        free(t->nodes);
        free(t);
}

/* ---- describe ------------------------------------------------------------ */

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends "a, b, c" of the named nodes, sorted as Kafka Streams prints. */
static ks_err_t append_node_list(const ks_topology_t *t,
                                 ks_buf_t *out,
                                 const int *ids,
                                 int cnt) {
        const char *names[256];
        if (cnt == 0)
                return ks_buf_appendf(out, "none");
        if (cnt > 256)
                cnt = 256;
        for (int i = 0; i < cnt; i++)
                names[i] = t->nodes[ids[i]]->name;
        qsort(names, (size_t)cnt, sizeof(names[0]), cmp_names);
        ks_err_t err = KS_OK;
        for (int i = 0; !err && i < cnt; i++)
                err = ks_buf_appendf(out, "%s%s", i ? ", " : "", names[i]);
        return err;
}

static ks_err_t describe_node(const ks_topology_t *t,
                              const ks_node_t *n,
                              ks_buf_t *out) {
        ks_err_t err = KS_OK;
        switch (n->kind) {
        case KS_NODE_SOURCE:
                if (n->has_regex) {
                        err = ks_buf_appendf(out,
                                             "    Source: %s (topics: [%s])\n",
                                             n->name, n->pattern);
                        break;
                }
                err = ks_buf_appendf(out, "    Source: %s (topics: [", n->name);
                for (int i = 0; !err && i < n->topic_cnt; i++)
                        err = ks_buf_appendf(out, "%s%s", i ? ", " : "",
                                             n->topics[i]);
                if (!err)
                        err = ks_buf_appendf(out, "])\n");
                break;
        case KS_NODE_PROCESSOR:
                err = ks_buf_appendf(out, "    Processor: %s (stores: [%s])\n",
                                     n->name, n->store ? n->store->name : "");
                break;
        case KS_NODE_SINK:
                if (n->topic_fn)
                        err = ks_buf_appendf(out,
                                             "    Sink: %s (extractor: "
                                             "per-record topic)\n",
                                             n->name);
                else
                        err = ks_buf_appendf(out, "    Sink: %s (topic: %s)\n",
                                             n->name, n->topics[0]);
                break;
        }
        if (!err && n->kind != KS_NODE_SINK) {
                err = ks_buf_appendf(out, "      --> ");
                if (!err)
                        err = append_node_list(t, out, n->children,
                                               n->child_cnt);
                if (!err)
                        err = ks_buf_appendf(out, "\n");
        }
        if (!err && n->kind != KS_NODE_SOURCE) {
                err = ks_buf_appendf(out, "      <-- ");
                if (!err)
                        err = append_node_list(t, out, n->parents,
                                               n->parent_cnt);
                if (!err)
                        err = ks_buf_appendf(out, "\n");
        }
        return err;
}

ks_err_t ks_topology_describe(const ks_topology_t *t, ks_buf_t *out) {
        ks_err_t err = ks_buf_appendf(out, "Topologies:\n");
        for (int s = 0; !err && s < t->subtopology_cnt; s++) {
                err = ks_buf_appendf(out, "   Sub-topology: %d\n", s);
                for (int i = 0; !err && i < t->node_cnt; i++)
                        if (t->nodes[i]->subtopology == s)
                                err = describe_node(t, t->nodes[i], out);
                if (!err)
                        err = ks_buf_appendf(out, "\n");
        }
        return err;
}

ks_err_t ks_topology_describe_mermaid(const ks_topology_t *t, ks_buf_t *out) {
        ks_err_t err = ks_buf_appendf(out, "flowchart TD\n");
        /* Topics as stadium-shaped nodes outside the sub-topologies. */
        for (int s = 0; !err && s < t->subtopology_cnt; s++) {
                err = ks_buf_appendf(
                        out, "    subgraph sub%d [Sub-topology %d]\n", s, s);
                for (int i = 0; !err && i < t->node_cnt; i++) {
                        const ks_node_t *n = t->nodes[i];
                        if (n->subtopology == s)
                                err = ks_buf_appendf(out,
                                                     "        n%d[\"%s\"]\n",
                                                     n->id, n->name);
                }
                if (!err)
                        err = ks_buf_appendf(out, "    end\n");
        }
        for (int i = 0; !err && i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                for (int c = 0; !err && c < n->child_cnt; c++)
                        err = ks_buf_appendf(out, "    n%d --> n%d\n", n->id,
                                             n->children[c]);
                if (n->kind == KS_NODE_SOURCE) {
                        for (int k = 0; !err && k < n->topic_cnt; k++)
                                err = ks_buf_appendf(out,
                                                     "    t_%s([\"%s\"]) --> "
                                                     "n%d\n",
                                                     n->topics[k], n->topics[k],
                                                     n->id);
                        if (!err && n->has_regex)
                                err = ks_buf_appendf(out,
                                                     "    p%d([\"/%s/\"]) --> "
                                                     "n%d\n",
                                                     n->id, n->pattern, n->id);
                } else if (n->kind == KS_NODE_SINK && n->topic_cnt) {
                        err = ks_buf_appendf(out,
                                             "    n%d --> t_%s([\"%s\"])\n",
                                             n->id, n->topics[0], n->topics[0]);
                }
        }
        return err;
}
