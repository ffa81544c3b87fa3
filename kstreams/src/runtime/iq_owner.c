/* Which instance of the group serves a key: the group's description from
 * its coordinator (DescribeConsumerGroups) gives every member's client.id
 * and assignment; a task (sub-topology, partition) belongs to the member
 * assigned that partition of the sub-topology's input topics, and the
 * member's application.server is the "@host:port" its client.id ends with
 * (stream_thread.c puts it there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streams_int.h"

/* Whether @p topic is an input of sub-topology @p sub. */
static bool sub_reads(const ks_streams_t *s, int sub, const char *topic) {
        const ks_topology_t *t = s->topology;
        for (int i = 0; i < t->node_cnt; i++) {
                const ks_node_t *n = t->nodes[i];
                if (n->subtopology == sub && n->kind == KS_NODE_SOURCE &&
                    ks__source_reads(n, s->application_id, topic))
                        return true;
        }
        return false;
}

static bool assigned(const ks_streams_t *s,
                     const rd_kafka_MemberDescription_t *m,
                     int sub,
                     int32_t partition) {
        const rd_kafka_MemberAssignment_t *a =
                rd_kafka_MemberDescription_assignment(m);
        const rd_kafka_topic_partition_list_t *l =
                a ? rd_kafka_MemberAssignment_partitions(a) : NULL;
        for (int i = 0; l && i < l->cnt; i++)
                if (l->elems[i].partition == partition &&
                    sub_reads(s, sub, l->elems[i].topic))
                        return true;
        return false;
}

/* Whether member id @p id is one of this instance's consumers. */
static bool ours(ks_streams_t *s, const char *id) {
        bool found = false;
        for (int i = 0; i < s->thread_cnt && !found; i++) {
                char *mine = ks__stream_thread_member_id(s->threads[i]);
                found      = mine && id && !strcmp(mine, id);
                if (mine)
                        rd_kafka_mem_free(NULL, mine);
        }
        return found;
}

static void fill(ks_streams_t *s,
                 const rd_kafka_MemberDescription_t *m,
                 ks_key_owner_t *out) {
        const char *cid  = rd_kafka_MemberDescription_client_id(m);
        const char *host = rd_kafka_MemberDescription_host(m);
        const char *at   = cid ? strrchr(cid, '@') : NULL;
        snprintf(out->client_id, sizeof(out->client_id), "%s", cid ? cid : "");
        snprintf(out->server, sizeof(out->server), "%s", at ? at + 1 : "");
        /* The broker reports "/1.2.3.4". */
        if (host && *host == '/')
                host++;
        snprintf(out->host, sizeof(out->host), "%s", host ? host : "");
        out->local = ours(s, rd_kafka_MemberDescription_consumer_id(m));
}

/* Describes the group and finds the member assigned (sub, partition). */
static ks_error_t *describe(ks_streams_t *s,
                            int sub,
                            int32_t partition,
                            int timeout_ms,
                            ks_key_owner_t *out) {
        char errstr[256];
        rd_kafka_t *rk              = ks__stream_thread_client(s->threads[0]);
        rd_kafka_queue_t *q         = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(
                rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
        rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, errstr,
                                                  sizeof(errstr));
        const char *groups[] = {s->application_id};
        rd_kafka_DescribeConsumerGroups(rk, groups, 1, ao, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
        ks_error_t *err      = NULL;
        const rd_kafka_ConsumerGroupDescription_t *g = NULL;
        size_t n                                     = 0;
        if (!ev)
                err = ks_error_new(KS_ERR_KAFKA,
                                   "describing group %s timed out after %d ms",
                                   s->application_id, timeout_ms);
        else if (rd_kafka_event_error(ev))
                err = ks_error_new(KS_ERR_KAFKA, "describing group %s: %s",
                                   s->application_id,
                                   rd_kafka_event_error_string(ev));
        if (!err) {
                const rd_kafka_DescribeConsumerGroups_result_t *res =
                        rd_kafka_event_DescribeConsumerGroups_result(ev);
                const rd_kafka_ConsumerGroupDescription_t **gs =
                        rd_kafka_DescribeConsumerGroups_result_groups(res, &n);
                g = n == 1 ? gs[0] : NULL;
                const rd_kafka_error_t *ge =
                        g ? rd_kafka_ConsumerGroupDescription_error(g) : NULL;
                if (!g || ge)
                        err = ks_error_new(KS_ERR_KAFKA,
                                           "describing group %s: %s",
                                           s->application_id,
                                           ge ? rd_kafka_error_string(ge)
                                              : "no description");
        }
        size_t members =
                g ? rd_kafka_ConsumerGroupDescription_member_count(g) : 0;
        bool found = false;
        for (size_t i = 0; !err && i < members && !found; i++) {
                const rd_kafka_MemberDescription_t *m =
                        rd_kafka_ConsumerGroupDescription_member(g, i);
                if ((found = assigned(s, m, sub, partition)))
                        fill(s, m, out);
        }
        if (!err && !found)
                err = ks_error_new(KS_ERR_NOT_FOUND,
                                   "no member of group %s is assigned "
                                   "partition %d of sub-topology %d (%zu "
                                   "members): it is rebalancing or empty",
                                   s->application_id, (int)partition, sub,
                                   members);
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_queue_destroy(q);
        return err ? ks_error_set_retriable(err, true) : NULL;
}

ks_error_t *ks_streams_query_key_owner(ks_streams_t *s,
                                       const char *store,
                                       ks_bytes_t key,
                                       int timeout_ms,
                                       ks_key_owner_t *out) {
        int sub;
        memset(out, 0, sizeof(*out));
        out->partition = -1;
        ks_error_t *err =
                ks__iq_key_partition(s, store, key, &sub, &out->partition);
        if (err)
                return err;
        return describe(s, sub, out->partition,
                        timeout_ms > 0 ? timeout_ms : 10000, out);
}
