/* Co-partition groups and repartition topic sizes (copartition_int.h): one
 * piece of logic for the runtime and the test driver, so that the driver
 * accepts exactly the topologies (and topic counts) production accepts. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copartition_int.h"

typedef struct planner_s {
        const ks_topology_t *t;
        const char *app;
        const ks_topic_count_t *topics;
        int topic_cnt;
        int32_t default_partitions;
        ks_partition_plan_t *plan;
} planner_t;

/* What one sub-topology's inputs (its co-partition group) say about its
 * partition count. Names are kept for the error messages. */
typedef struct group_s {
        int sub;
        char source[512];   /* the first source topic */
        int32_t source_cnt; /* its count; 0: the group has no source topic */
        char fixed[512];    /* the first repartition topic given a count */
        int32_t fixed_cnt;  /* that count; 0: none was given one */
} group_t;

void ks__partition_plan_clear(ks_partition_plan_t *plan) {
        if (!plan)
                return;
        free(plan->sub_partitions);
        free(plan->node_partitions);
        plan->sub_partitions  = NULL;
        plan->node_partitions = NULL;
}

static int32_t topic_partitions(const planner_t *p, const char *name) {
        for (int i = 0; i < p->topic_cnt; i++)
                if (!strcmp(p->topics[i].name, name))
                        return p->topics[i].partitions;
        return -1;
}

/* A repartition topic of this application is planned here, whatever the
 * cluster has now: a pattern source must not count it as a source. */
static bool is_repartition_topic(const planner_t *p, const char *name) {
        for (int i = 0; i < p->t->node_cnt; i++) {
                const ks_node_t *n = p->t->nodes[i];
                if (n->internal && ks__source_reads(n, p->app, name))
                        return true;
        }
        return false;
}

/* The internal sink that writes the repartition topic @p src reads. */
static const ks_node_t *writer_of(const planner_t *p, const ks_node_t *src) {
        for (int i = 0; i < p->t->node_cnt; i++) {
                const ks_node_t *n = p->t->nodes[i];
                if (n->kind == KS_NODE_SINK && n->internal &&
                    !strcmp(n->topics[0], src->topics[0]))
                        return n;
        }
        return NULL;
}

/* The internal source that reads the repartition topic @p sink writes. */
static const ks_node_t *reader_of(const planner_t *p, const ks_node_t *sink) {
        for (int i = 0; i < p->t->node_cnt; i++) {
                const ks_node_t *n = p->t->nodes[i];
                if (n->kind == KS_NODE_SOURCE && n->internal &&
                    !strcmp(n->topics[0], sink->topics[0]))
                        return n;
        }
        return NULL;
}

static ks_error_t *not_copartitioned(int sub,
                                     const char *a,
                                     const char *a_how,
                                     int32_t a_cnt,
                                     const char *b,
                                     const char *b_how,
                                     int32_t b_cnt) {
        return ks_error_new(KS_ERR_TOPOLOGY,
                            "sub-topology %d reads topics that are not "
                            "co-partitioned: %s %s %" PRId32
                            " partitions, %s %s %" PRId32
                            "; give them the same partition count",
                            sub, a, a_how, a_cnt, b, b_how, b_cnt);
}

static ks_error_t *group_add_source(group_t *g,
                                    const char *topic,
                                    int32_t cnt) {
        if (!g->source_cnt) {
                snprintf(g->source, sizeof(g->source), "%s", topic);
                g->source_cnt = cnt;
                return NULL;
        }
        if (cnt == g->source_cnt)
                return NULL;
        return not_copartitioned(g->sub, g->source, "has", g->source_cnt, topic,
                                 "has", cnt);
}

/* The topics a pattern source reads now, but not this application's
 * repartition topics even where the pattern matches them. */
static ks_error_t *group_add_matches(const planner_t *p,
                                     group_t *g,
                                     const ks_node_t *src) {
        ks_error_t *err = NULL;
        for (int k = 0; k < p->topic_cnt && !err; k++)
                if (ks__source_reads(src, p->app, p->topics[k].name) &&
                    !is_repartition_topic(p, p->topics[k].name))
                        err = group_add_source(g, p->topics[k].name,
                                               p->topics[k].partitions);
        return err;
}

static ks_error_t *group_add_named(const planner_t *p,
                                   group_t *g,
                                   const char *topic) {
        int32_t cnt = topic_partitions(p, topic);
        if (cnt < 0)
                return ks_error_new(KS_ERR_NOT_FOUND, "source topic %s missing",
                                    topic);
        return group_add_source(g, topic, cnt);
}

/* Adds the group's source topics: their counts cannot change, so they must
 * agree, and the group takes theirs. */
static ks_error_t *group_sources(const planner_t *p, group_t *g) {
        ks_error_t *err = NULL;
        for (int i = 0; i < p->t->node_cnt && !err; i++) {
                const ks_node_t *n = p->t->nodes[i];
                if (n->subtopology != g->sub || n->kind != KS_NODE_SOURCE ||
                    n->internal)
                        continue;
                if (n->has_regex)
                        err = group_add_matches(p, g, n);
                for (int k = 0; !n->has_regex && k < n->topic_cnt && !err; k++)
                        err = group_add_named(p, g, n->topics[k]);
        }
        return err;
}

/* Adds the repartition topics of the group that were given a count: they
 * must agree with the source topics and with each other. */
static ks_error_t *group_fixed(const planner_t *p, group_t *g) {
        for (int i = 0; i < p->t->node_cnt; i++) {
                const ks_node_t *n = p->t->nodes[i];
                if (n->subtopology != g->sub || n->kind != KS_NODE_SOURCE ||
                    !n->internal)
                        continue;
                const ks_node_t *w = writer_of(p, n);
                if (!w || w->partitions <= 0)
                        continue;
                char name[512];
                ks__internal_topic_name(p->app, n->topics[0], name,
                                        sizeof(name));
                if (g->source_cnt && w->partitions != g->source_cnt)
                        return not_copartitioned(g->sub, g->source, "has",
                                                 g->source_cnt, name,
                                                 "was given", w->partitions);
                if (g->fixed_cnt && w->partitions != g->fixed_cnt)
                        return not_copartitioned(g->sub, g->fixed, "was given",
                                                 g->fixed_cnt, name,
                                                 "was given", w->partitions);
                if (!g->fixed_cnt) {
                        snprintf(g->fixed, sizeof(g->fixed), "%s", name);
                        g->fixed_cnt = w->partitions;
                }
        }
        return NULL;
}

/* A group of repartition topics that no one gave a count: the largest
 * count among the sub-topologies that write them (Kafka Streams: the max
 * of their derived counts). -1 while one of those is unsized. */
static int32_t upstream_max(const planner_t *p, int sub) {
        int32_t max = 0;
        for (int i = 0; i < p->t->node_cnt; i++) {
                const ks_node_t *n = p->t->nodes[i];
                if (n->subtopology != sub || n->kind != KS_NODE_SOURCE ||
                    !n->internal)
                        continue;
                const ks_node_t *w = writer_of(p, n);
                if (!w)
                        continue;
                int32_t cnt = p->plan->sub_partitions[w->subtopology];
                if (cnt < 0)
                        return -1;
                if (cnt > max)
                        max = cnt;
        }
        return max;
}

/* Sizes the groups made of unsized repartition topics only, upstream
 * first; what never gets a size sits on a cycle. */
static ks_error_t *size_from_upstream(const planner_t *p) {
        int32_t *sub = p->plan->sub_partitions;
        int subs     = p->t->subtopology_cnt;
        for (bool progress = true; progress;) {
                progress = false;
                for (int s = 0; s < subs; s++) {
                        if (sub[s] >= 0)
                                continue;
                        int32_t max = upstream_max(p, s);
                        if (max < 0)
                                continue;
                        sub[s]   = max ? max : p->default_partitions;
                        progress = true;
                }
        }
        for (int s = 0; s < subs; s++)
                if (sub[s] < 0)
                        return ks_error_new(KS_ERR_TOPOLOGY,
                                            "sub-topology %d: a repartition "
                                            "topic it reads has no size (a "
                                            "cycle of repartitions?)",
                                            s);
        return NULL;
}

/* Every repartition topic takes the count of the group that reads it. */
static ks_error_t *size_sink(const planner_t *p, const ks_node_t *sink) {
        const int32_t *sub = p->plan->sub_partitions;
        const ks_node_t *r = reader_of(p, sink);
        int32_t cnt        = r                      ? sub[r->subtopology]
                             : sink->partitions > 0 ? sink->partitions
                                                    : sub[sink->subtopology];
        if (cnt <= 0) {
                char name[512];
                ks__internal_topic_name(p->app, sink->topics[0], name,
                                        sizeof(name));
                return ks_error_new(KS_ERR_TOPOLOGY,
                                    "repartition topic %s cannot be sized: "
                                    "sub-topology %d reads no topic yet (a "
                                    "pattern that matches none?)",
                                    name, sink->subtopology);
        }
        p->plan->node_partitions[sink->id] = cnt;
        return NULL;
}

static ks_error_t *size_topics(const planner_t *p) {
        const ks_topology_t *t = p->t;
        ks_error_t *err        = NULL;
        for (int i = 0; i < t->node_cnt && !err; i++)
                if (t->nodes[i]->kind == KS_NODE_SINK && t->nodes[i]->internal)
                        err = size_sink(p, t->nodes[i]);
        /* A topic read by two groups (not something the DSL builds) must
         * suit both. */
        for (int i = 0; i < t->node_cnt && !err; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->kind != KS_NODE_SOURCE || !n->internal)
                        continue;
                const ks_node_t *w = writer_of(p, n);
                int32_t cnt        = p->plan->sub_partitions[n->subtopology];
                p->plan->node_partitions[i] = cnt;
                if (w && p->plan->node_partitions[w->id] != cnt)
                        err = ks_error_new(
                                KS_ERR_TOPOLOGY,
                                "repartition topic %s-%s is read by "
                                "sub-topologies with different partition "
                                "counts (%" PRId32 " and %" PRId32 ")",
                                p->app, n->topics[0],
                                p->plan->node_partitions[w->id], cnt);
        }
        return err;
}

ks_error_t *ks__partition_plan(const ks_topology_t *t,
                               const char *application_id,
                               const ks_topic_count_t *topics,
                               int topic_cnt,
                               int32_t default_partitions,
                               ks_partition_plan_t *plan) {
        planner_t p = {t,         application_id,     topics,
                       topic_cnt, default_partitions, plan};
        ks_error_t *err;
        plan->sub_partitions =
                malloc((size_t)(t->subtopology_cnt ? t->subtopology_cnt : 1) *
                       sizeof(int32_t));
        plan->node_partitions = calloc((size_t)(t->node_cnt ? t->node_cnt : 1),
                                       sizeof(int32_t));
        if (!plan->sub_partitions || !plan->node_partitions) {
                err = ks_error_new(KS_ERR_NOMEM, "out of memory");
                goto err_clear;
        }
        for (int s = 0; s < t->subtopology_cnt; s++) {
                group_t g = {.sub = s};
                if ((err = group_sources(&p, &g)) ||
                    (err = group_fixed(&p, &g)))
                        goto err_clear;
                plan->sub_partitions[s] = g.source_cnt  ? g.source_cnt
                                          : g.fixed_cnt ? g.fixed_cnt
                                                        : -1;
        }
        if ((err = size_from_upstream(&p)) || (err = size_topics(&p)))
                goto err_clear;
        return NULL;

err_clear:
        ks__partition_plan_clear(plan);
        return err;
}
