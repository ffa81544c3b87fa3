/* The test driver: in-memory partitioned topics feeding real tasks. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"
#include "copartition_int.h"
#include "driver_int.h"
#include "fs_int.h"
#include "kstreams/partitioner.h"
#include "kstreams/store.h"

drv_topic_t *ks__drv_topic(const ks_test_driver_t *drv, const char *name) {
        for (int i = 0; i < drv->topic_cnt; i++)
                if (!strcmp(drv->topics[i].name, name))
                        return &drv->topics[i];
        return NULL;
}

static drv_topic_t *topic_add(ks_test_driver_t *drv,
                              const char *name,
                              int32_t partitions) {
        if (drv->topic_cnt == drv->topic_cap) {
                int cap        = drv->topic_cap ? drv->topic_cap * 2 : 16;
                drv_topic_t *t = realloc(drv->topics, (size_t)cap * sizeof(*t));
                if (!t)
                        return NULL;
                drv->topics    = t;
                drv->topic_cap = cap;
        }
        drv_topic_t *t = &drv->topics[drv->topic_cnt];
        memset(t, 0, sizeof(*t));
        t->name        = strdup(name);
        t->partitions  = partitions;
        t->next_offset = calloc((size_t)partitions, sizeof(int64_t));
        if (!t->name || !t->next_offset) {
                free(t->name);
                free(t->next_offset);
                return NULL;
        }
        drv->topic_cnt++;
        return t;
}

static drv_topic_t *topic_get(ks_test_driver_t *drv, const char *name) {
        drv_topic_t *t = ks__drv_topic(drv, name);
        return t ? t : topic_add(drv, name, drv->default_partitions);
}

/* Copies a record into one allocation: struct, headers, names, bytes. */
static ks_test_record_t *record_new(const char *topic,
                                    int32_t partition,
                                    int64_t offset,
                                    int64_t ts,
                                    ks_bytes_t key,
                                    ks_bytes_t value,
                                    const ks_header_t *headers,
                                    size_t header_cnt) {
        size_t size = sizeof(drv_record_t) + header_cnt * sizeof(ks_header_t) +
                      key.len + value.len + 2;
        for (size_t i = 0; i < header_cnt; i++)
                size += strlen(headers[i].name) + 1 + headers[i].value.len + 1;
        drv_record_t *dr = malloc(size);
        if (!dr)
                return NULL;
        dr->task_refs       = 0;
        dr->pending         = false;
        ks_test_record_t *r = &dr->rec;
        ks_header_t *h      = (ks_header_t *)(dr + 1);
        char *p             = (char *)(h + header_cnt);
        r->topic            = topic;
        r->partition        = partition;
        r->offset           = offset;
        r->timestamp        = ts;
        r->headers          = h;
        r->header_cnt       = header_cnt;
        for (size_t i = 0; i < header_cnt; i++) {
                size_t nl = strlen(headers[i].name);
                memcpy(p, headers[i].name, nl + 1);
                h[i].name = p;
                p += nl + 1;
                h[i].value.len  = headers[i].value.len;
                h[i].value.data = NULL;
                if (headers[i].value.data) {
                        memcpy(p, headers[i].value.data, headers[i].value.len);
                        p[headers[i].value.len] = '\0';
                        h[i].value.data         = p;
                }
                p += headers[i].value.len + 1;
        }
        /* Keys and values are NUL-terminated too, for tests' convenience. */
        r->key.len  = key.len;
        r->key.data = NULL;
        if (key.data) {
                memcpy(p, key.data, key.len);
                p[key.len]  = '\0';
                r->key.data = p;
        }
        p += key.len + 1;
        r->value.len  = value.len;
        r->value.data = NULL;
        if (value.data) {
                memcpy(p, value.data, value.len);
                p[value.len]  = '\0';
                r->value.data = p;
        }
        return r;
}

/* The runtime's commit protocol (task/commit.c): everything the driver
 * sends is in its topics at once, so under at-least-once only the stores'
 * step does work. Under exactly_once_v2 step 3 commits the driver's one
 * transaction, which spans every task (as a stream thread's): every task
 * commits. */
static ks_error_t *commit_tasks(ks_test_driver_t *drv,
                                ks_task_t *const *tasks,
                                int n) {
        static const ks_commit_ops_t alo = {NULL, NULL, NULL, false};
        const ks_commit_ops_t eos = {NULL, ks__drv_eos_commit_offsets, drv,
                                     true};
        if (drv->eos) {
                tasks = drv->tasks;
                n     = drv->task_cnt;
        }
        ks_error_t *err = ks__commit(tasks, n, drv->eos ? &eos : &alo, NULL);
        if (!err)
                drv->commits++;
        return err;
}

static bool sub_has_stores(const ks_topology_t *topo, int sub) {
        for (int i = 0; i < topo->node_cnt; i++)
                if (topo->nodes[i]->subtopology == sub && topo->nodes[i]->store)
                        return true;
        return false;
}

/* The task's LMDB environment, in the driver's temporary state directory
 * (made on first use). Commits are not synced: the state is thrown away. */
static ks_error_t *open_env(ks_test_driver_t *drv,
                            int sub,
                            int32_t partition,
                            ks_state_env_t **envp) {
        *envp = NULL;
        if (drv->memory_stores || !sub_has_stores(drv->topology, sub))
                return NULL;
        if (!drv->state_dir) {
                const char *tmp = getenv("TMPDIR");
                char tmpl[1024];
                snprintf(tmpl, sizeof(tmpl), "%s/ks-driver-XXXXXX",
                         tmp && *tmp ? tmp : "/tmp");
                if (!mkdtemp(tmpl))
                        return ks_error_new(KS_ERR_IO,
                                            "test driver: cannot create a "
                                            "state directory from %s: %s",
                                            tmpl, strerror(errno));
                if (!(drv->state_dir = strdup(tmpl)))
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        char dir[1100];
        snprintf(dir, sizeof(dir), "%s/%d_%" PRId32, drv->state_dir, sub,
                 partition);
        return ks_state_env_open_flags(dir, 0, KS_STATE_ENV_NO_SYNC, envp);
}

ks_task_t *ks__drv_task_for(const ks_test_driver_t *drv,
                            int sub,
                            int32_t partition) {
        for (int i = 0; i < drv->task_cnt; i++)
                if (ks__task_subtopology(drv->tasks[i]) == sub &&
                    ks__task_partition(drv->tasks[i]) == partition)
                        return drv->tasks[i];
        return NULL;
}

static bool topic_read_by_tasks(ks_test_driver_t *drv,
                                const char *topic,
                                int32_t partition) {
        for (int s = 0; s < drv->topology->subtopology_cnt; s++) {
                ks_task_t *task = ks__drv_task_for(drv, s, partition);
                if (task && ks__task_reads(task, topic))
                        return true;
        }
        return false;
}

/* append() when outputs are streamed (the driver has started: pipes
 * start it before they append): a record no task reads goes to the
 * callback from the caller's bytes, with no copy; one that tasks read is
 * copied and freed by the last task's release. */
static ks_err_t append_streamed(ks_test_driver_t *drv,
                                drv_topic_t *t,
                                int32_t partition,
                                ks_bytes_t key,
                                ks_bytes_t value,
                                int64_t ts,
                                const ks_header_t *headers,
                                size_t header_cnt,
                                bool transactional,
                                char *errstr,
                                size_t errstr_size) {
        int64_t offset = t->next_offset[partition];
        if (!transactional && !topic_read_by_tasks(drv, t->name, partition)) {
                ks_test_record_t r = {t->name, partition, offset,  ts,
                                      key,     value,     headers, header_cnt};
                t->next_offset[partition]++;
                drv->output_fn(drv, &r, drv->output_opaque);
                return KS_OK;
        }
        drv_record_t *dr =
                (drv_record_t *)record_new(t->name, partition, offset, ts, key,
                                           value, headers, header_cnt);
        if (!dr) {
                snprintf(errstr, errstr_size, "topic %s: out of memory",
                         t->name);
                return KS_ERR_NOMEM;
        }
        t->next_offset[partition]++;
        /* Held until the commit (delivered or enqueued then), or freed by
         * an abort. */
        if (transactional)
                return ks__drv_eos_add_pending(drv, t, dr);
        ks_err_t err = KS_OK;
        /* Tasks release records only when they process them, after this
         * returns: counting now is in time. */
        dr->task_refs = ks__drv_enqueue(drv, dr, &err, errstr, errstr_size);
        if (!dr->task_refs)
                free(dr);
        return err;
}

int ks__drv_enqueue(ks_test_driver_t *drv,
                    drv_record_t *dr,
                    ks_err_t *errp,
                    char *errstr,
                    size_t errstr_size) {
        ks_test_record_t *r = &dr->rec;
        ks_raw_record_t raw = {
                r->topic,     r->partition,  r->offset,
                r->timestamp, r->key,        r->value,
                r->headers,   r->header_cnt, drv->output_fn ? dr : NULL};
        int held = 0;
        *errp    = KS_OK;
        for (int s = 0; !*errp && s < drv->topology->subtopology_cnt; s++) {
                ks_task_t *task = ks__drv_task_for(drv, s, r->partition);
                if (!task || !ks__task_reads(task, r->topic))
                        continue;
                if ((*errp = ks__task_enqueue(task, &raw))) {
                        snprintf(errstr, errstr_size, "task %s: %s",
                                 ks__task_id(task), ks_err2str(*errp));
                        break;
                }
                held++;
                /* Fed again if the transaction aborts. */
                if (drv->eos && (*errp = ks__drv_eos_replay_push(drv, dr, s)))
                        snprintf(errstr, errstr_size, "out of memory");
                else if (drv->eos)
                        held++;
        }
        return held;
}

/* Appends to a topic and hands the record to the task reading it. */
static ks_err_t append(ks_test_driver_t *drv,
                       drv_topic_t *t,
                       int32_t partition,
                       ks_bytes_t key,
                       ks_bytes_t value,
                       int64_t ts,
                       const ks_header_t *headers,
                       size_t header_cnt,
                       bool transactional,
                       char *errstr,
                       size_t errstr_size) {
        if (partition < 0)
                partition =
                        ks_partition_for_key(key.data, key.len, t->partitions);
        if (partition >= t->partitions) {
                snprintf(errstr, errstr_size,
                         "topic %s has %" PRId32
                         " partitions; partition %" PRId32 " does not exist",
                         t->name, t->partitions, partition);
                return KS_ERR_INVALID_ARG;
        }
        if (drv->output_fn)
                return append_streamed(drv, t, partition, key, value, ts,
                                       headers, header_cnt, transactional,
                                       errstr, errstr_size);
        if (t->cnt == t->cap) {
                size_t cap           = t->cap ? t->cap * 2 : 64;
                ks_test_record_t **r = realloc(t->records, cap * sizeof(*r));
                if (!r)
                        goto err_oom;
                t->records = r;
                t->cap     = cap;
        }
        ks_test_record_t *r =
                record_new(t->name, partition, t->next_offset[partition], ts,
                           key, value, headers, header_cnt);
        if (!r)
                goto err_oom;
        t->next_offset[partition]++;
        t->records[t->cnt++] = r;
        /* Kept, and given to the tasks reading it at the commit. */
        if (transactional)
                return ks__drv_eos_add_pending(drv, t, (drv_record_t *)r);
        if (!drv->started)
                return KS_OK;
        ks_err_t err = KS_OK;
        ks__drv_enqueue(drv, (drv_record_t *)r, &err, errstr, errstr_size);
        return err;

err_oom:
        snprintf(errstr, errstr_size, "topic %s: out of memory", t->name);
        return KS_ERR_NOMEM;
}

static ks_err_t collector_send(void *opaque,
                               const char *topic,
                               int32_t partition,
                               ks_bytes_t key,
                               ks_bytes_t value,
                               int64_t ts,
                               const ks_header_t *headers,
                               size_t header_cnt,
                               int64_t *acked,
                               char *errstr,
                               size_t errstr_size) {
        ks_test_driver_t *drv = opaque;
        drv_topic_t *t        = topic_get(drv, topic);
        if (!t) {
                snprintf(errstr, errstr_size, "topic %s: out of memory", topic);
                return KS_ERR_NOMEM;
        }
        /* Under exactly_once_v2 what tasks write is in the transaction. */
        ks_err_t err = append(drv, t, partition, key, value, ts, headers,
                              header_cnt, drv->eos, errstr, errstr_size);
        /* Acknowledged at once: the record is in the topic. */
        if (!err && acked)
                *acked = t->next_offset[partition < 0 ? 0 : partition] - 1;
        return err;
}

/* A task is done with a record (handles are set only when outputs are
 * streamed): the last one frees it. */
static void collector_release(void *opaque, void *handle) {
        drv_record_t *dr = handle;
        (void)opaque;
        if (dr && --dr->task_refs == 0)
                free(dr);
}

static int32_t collector_partitions(void *opaque, const char *topic) {
        drv_topic_t *t = topic_get(opaque, topic);
        return t ? t->partitions : -1;
}

static int64_t collector_clock(void *opaque) {
        return ((ks_test_driver_t *)opaque)->wall_clock;
}

ks_test_driver_t *ks_test_driver_new(const ks_topology_t *topology,
                                     const ks_conf_t *conf,
                                     char *errstr,
                                     size_t errstr_size) {
        if (!topology) {
                snprintf(errstr, errstr_size,
                         "ks_test_driver_new: NULL "
                         "topology");
                return NULL;
        }
        ks_test_driver_t *drv = calloc(1, sizeof(*drv));
        if (!drv)
                goto err_oom;
        drv->topology           = topology;
        drv->default_partitions = 1;
        drv->conf               = conf ? ks_conf_dup(conf) : ks_conf_new();
        if (!drv->conf)
                goto err_oom;
        if (!*ks__conf_str(drv->conf, "application.id") &&
            ks_conf_set(drv->conf, "application.id", "test-driver", errstr,
                        errstr_size))
                goto err_free;
        if (ks__conf_check_handlers(drv->conf, errstr, errstr_size))
                goto err_free;
        drv->application_id = ks__conf_str(drv->conf, "application.id");
        drv->eos = !strcmp(ks__conf_str(drv->conf, "processing.guarantee"),
                           "exactly_once_v2");
        drv->cache_budget.max =
                (size_t)ks__conf_int(drv->conf, "statestore.cache.max.bytes");
        drv->collector.send            = collector_send;
        drv->collector.partition_count = collector_partitions;
        drv->collector.wall_clock      = collector_clock;
        drv->collector.release         = collector_release;
        drv->collector.opaque          = drv;
        return drv;

err_oom:
        snprintf(errstr, errstr_size, "ks_test_driver_new: out of memory");
err_free:
        ks_test_driver_destroy(drv);
        return NULL;
}

void ks_test_driver_destroy(ks_test_driver_t *drv) {
        if (!drv)
                return;
        for (int i = 0; i < drv->task_cnt; i++)
                ks__task_destroy(drv->tasks[i]);
        ks__drv_eos_destroy(drv);
        if (drv->state_dir) {
                ks__rmtree(drv->state_dir);
                free(drv->state_dir);
        }
        free(drv->tasks);
        free(drv->tasks_per_sub);
        for (int i = 0; i < drv->topic_cnt; i++) {
                drv_topic_t *t = &drv->topics[i];
                for (size_t r = 0; r < t->cnt; r++)
                        free(t->records[r]);
                free(t->records);
                free(t->next_offset);
                free(t->name);
        }
        free(drv->topics);
        if (drv->output_opaque_free)
                drv->output_opaque_free(drv->output_opaque);
        ks_conf_destroy(drv->conf);
        free(drv);
}

ks_err_t ks_test_driver_create_topic(ks_test_driver_t *drv,
                                     const char *topic,
                                     int32_t partitions) {
        if (!topic || partitions < 1)
                return KS_ERR_INVALID_ARG;
        drv_topic_t *t = ks__drv_topic(drv, topic);
        if (t)
                return t->partitions == partitions ? KS_OK : KS_ERR_STATE;
        return topic_add(drv, topic, partitions) ? KS_OK : KS_ERR_NOMEM;
}

void ks_test_driver_set_default_partitions(ks_test_driver_t *drv,
                                           int32_t partitions) {
        if (partitions > 0)
                drv->default_partitions = partitions;
}

/* Named source topics the test did not create get the default count,
 * as they would on first use: the plan needs every source sized. */
static bool create_source_topics(ks_test_driver_t *drv) {
        const ks_topology_t *topo = drv->topology;
        for (int i = 0; i < topo->node_cnt; i++) {
                const ks_node_t *n = topo->nodes[i];
                if (n->kind != KS_NODE_SOURCE || n->internal || n->has_regex)
                        continue;
                for (int k = 0; k < n->topic_cnt; k++)
                        if (!topic_get(drv, n->topics[k]))
                                return false;
        }
        return true;
}

/* Sizes the repartition topics and the sub-topologies with the runtime's
 * plan (copartition.c), so the driver accepts and refuses what production
 * would, and creates the repartition topics. */
static ks_error_t *plan_topics(ks_test_driver_t *drv,
                               ks_partition_plan_t *plan) {
        const ks_topology_t *topo = drv->topology;
        if (!create_source_topics(drv))
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        ks_topic_count_t *have =
                calloc((size_t)drv->topic_cnt + 1, sizeof(*have));
        if (!have)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < drv->topic_cnt; i++)
                have[i] = (ks_topic_count_t){drv->topics[i].name,
                                             drv->topics[i].partitions};
        ks_error_t *err = ks__partition_plan(topo, drv->application_id, have,
                                             drv->topic_cnt,
                                             drv->default_partitions, plan);
        free(have);
        for (int i = 0; !err && i < topo->node_cnt; i++) {
                const ks_node_t *n = topo->nodes[i];
                if (n->kind != KS_NODE_SINK || !n->internal)
                        continue;
                char name[512];
                int32_t want = plan->node_partitions[i];
                ks__internal_topic_name(drv->application_id, n->topics[0], name,
                                        sizeof(name));
                drv_topic_t *t = ks__drv_topic(drv, name);
                if (t && t->partitions != want)
                        err = ks_error_new(KS_ERR_TOPOLOGY,
                                           "internal topic %s has %" PRId32
                                           " partitions but the topology "
                                           "needs %" PRId32,
                                           name, t->partitions, want);
                else if (!t && !topic_add(drv, name, want))
                        err = ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        return err;
}

/* Sizes the topics as the runtime does, then creates one task per
 * (sub-topology, partition). */
static ks_error_t *start(ks_test_driver_t *drv) {
        const ks_topology_t *topo = drv->topology;
        char errstr[512];
        /* An abort restores memory stores from the changelogs, which
         * streamed outputs do not keep. */
        if (drv->eos && drv->memory_stores && drv->output_fn)
                return ks_error_new(KS_ERR_STATE,
                                    "test driver: under exactly_once_v2, "
                                    "memory stores and streamed outputs "
                                    "do not go together (an abort restores "
                                    "the stores from their changelogs)");
        int subs                 = topo->subtopology_cnt;
        ks_partition_plan_t plan = {0};
        ks_error_t *perr         = plan_topics(drv, &plan);
        if (!perr &&
            !(drv->tasks_per_sub = calloc((size_t)subs + 1, sizeof(int))))
                perr = ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int s = 0; !perr && s < subs; s++)
                drv->tasks_per_sub[s] = plan.sub_partitions[s];
        ks__partition_plan_clear(&plan);
        if (perr)
                return perr;
        for (int s = 0; s < subs; s++) {
                int32_t cnt = drv->tasks_per_sub[s];
                /* Changelogs have one partition per task. */
                for (int i = 0; i < topo->node_cnt; i++) {
                        const ks_node_t *n = topo->nodes[i];
                        char name[512];
                        if (n->subtopology != s || !n->store)
                                continue;
                        ks__changelog_topic_name(drv->application_id,
                                                 n->store->name, name,
                                                 sizeof(name));
                        if (!ks__drv_topic(drv, name) &&
                            !topic_add(drv, name, cnt))
                                return ks_error_new(KS_ERR_NOMEM,
                                                    "out of memory");
                }
                for (int32_t p = 0; p < cnt; p++) {
                        ks_error_t *err = ks__drv_task_make(drv, s, p, NULL);
                        if (err)
                                return err;
                }
        }
        drv->started = true;
        /* Records piped into topics before the start are not lost. */
        for (int i = 0; i < drv->topic_cnt; i++) {
                drv_topic_t *t = &drv->topics[i];
                for (size_t r = 0; r < t->cnt; r++) {
                        ks_err_t e = KS_OK;
                        ks__drv_enqueue(drv, (drv_record_t *)t->records[r], &e,
                                        errstr, sizeof(errstr));
                        if (e)
                                return ks_error_new(e, "%s", errstr);
                }
        }
        return NULL;
}

ks_error_t *ks__drv_task_make(ks_test_driver_t *drv,
                              int sub,
                              int32_t p,
                              ks_error_t *(*restore)(ks_test_driver_t *drv,
                                                     ks_task_t *task)) {
        char errstr[512];
        ks_task_t **nt =
                realloc(drv->tasks, (size_t)(drv->task_cnt + 1) * sizeof(*nt));
        if (!nt)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        drv->tasks          = nt;
        ks_state_env_t *env = NULL;
        ks_error_t *err     = open_env(drv, sub, p, &env);
        if (err)
                return err;
        ks_task_t *task =
                ks__task_new(drv->topology, sub, p, drv->conf, &drv->collector,
                             env, errstr, sizeof(errstr));
        if (!task)
                return ks_error_new(KS_ERR_INVALID_ARG, "%s", errstr);
        drv->tasks[drv->task_cnt++] = task;
        ks__task_set_cache_budget(task, &drv->cache_budget);
        if (restore && (err = restore(drv, task)))
                return err;
        return ks__task_init(task);
}

static ks_error_t *ensure_started(ks_test_driver_t *drv) {
        return drv->started ? NULL : start(drv);
}

/* Processes until no task has anything buffered, or a handler fails. As
 * Kafka Streams' TopologyTestDriver, it commits after every record: the
 * record caches are flushed, so a test sees every update (and whatever a
 * punctuator cached before is flushed first). */
static ks_error_t *run_until_idle(ks_test_driver_t *drv) {
        if (!drv->manual_commit) {
                ks_error_t *err = commit_tasks(drv, drv->tasks, drv->task_cnt);
                if (err)
                        return err;
        }
        bool busy = true;
        while (busy) {
                busy = false;
                for (int i = 0; i < drv->task_cnt; i++) {
                        ks_error_t *err = NULL;
                        int r = ks__task_process_one(drv->tasks[i], &err);
                        if (r == 0)
                                continue;
                        if (r < 0)
                                return err;
                        if (!drv->manual_commit &&
                            (err = commit_tasks(drv, &drv->tasks[i], 1)))
                                return err;
                        busy = true;
                }
        }
        return NULL;
}

ks_error_t *ks_test_driver_pipe(ks_test_driver_t *drv,
                                const char *topic,
                                int32_t partition,
                                const void *key,
                                size_t key_len,
                                const void *value,
                                size_t value_len,
                                int64_t timestamp,
                                const ks_header_t *headers,
                                size_t header_cnt) {
        char errstr[512];
        if (!topic)
                return ks_error_new(KS_ERR_INVALID_ARG, "pipe: NULL topic");
        ks_error_t *err = ensure_started(drv);
        if (err)
                return err;
        drv_topic_t *t = topic_get(drv, topic);
        if (!t)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int s = 0; s < drv->topology->subtopology_cnt; s++) {
                ks_task_t *task = ks__drv_task_for(drv, s, 0);
                if (task && ks__task_reads(task, topic) &&
                    t->partitions > drv->tasks_per_sub[s])
                        return ks_error_new(
                                KS_ERR_STATE,
                                "topic %s has %" PRId32
                                " partitions but sub-topology %d was "
                                "started with %d tasks: create it before the "
                                "first pipe",
                                topic, t->partitions, s, drv->tasks_per_sub[s]);
        }
        ks_bytes_t k = {key, key ? key_len : 0};
        ks_bytes_t v = {value, value ? value_len : 0};
        if (key && !key_len)
                k.data = "";
        ks_err_t e = append(drv, t, partition, k, v, timestamp, headers,
                            header_cnt, false, errstr, sizeof(errstr));
        if (e)
                return ks_error_new(e, "pipe: %s", errstr);
        return ks__drv_eos_failed(drv, run_until_idle(drv));
}

ks_error_t *ks_test_driver_pipe_str(ks_test_driver_t *drv,
                                    const char *topic,
                                    const char *key,
                                    const char *value,
                                    int64_t timestamp) {
        return ks_test_driver_pipe(drv, topic, -1, key, key ? strlen(key) : 0,
                                   value, value ? strlen(value) : 0, timestamp,
                                   NULL, 0);
}

void ks_test_driver_set_manual_commit(ks_test_driver_t *drv, bool manual) {
        drv->manual_commit = manual;
}

/* Under exactly_once_v2 a commit makes the repartition records of its
 * transaction visible to the tasks that read them, which process them
 * into the next transaction: until a commit releases nothing. */
static ks_error_t *commit_eos(ks_test_driver_t *drv) {
        for (;;) {
                uint64_t released = drv->txn.released;
                ks_error_t *err   = run_until_idle(drv);
                if (!err)
                        err = commit_tasks(drv, drv->tasks, drv->task_cnt);
                if (err || drv->txn.released == released)
                        return err;
        }
}

ks_error_t *ks_test_driver_commit(ks_test_driver_t *drv) {
        return ks__drv_eos_failed(drv, ks__drv_commit(drv));
}

ks_error_t *ks__drv_commit(ks_test_driver_t *drv) {
        ks_error_t *err = ensure_started(drv);
        if (!err && drv->eos)
                return commit_eos(drv);
        /* Flushing sends records on (to repartition topics) that other
         * tasks then process and cache: until nothing moves. */
        bool again = true;
        while (!err && again) {
                again = false;
                for (int i = 0; !err && i < drv->task_cnt; i++) {
                        uint64_t before =
                                ks__task_metrics(drv->tasks[i])->cache_flushed;
                        err = commit_tasks(drv, &drv->tasks[i], 1);
                        again |= ks__task_metrics(drv->tasks[i])
                                         ->cache_flushed != before;
                }
                if (!err)
                        err = run_until_idle(drv);
        }
        return err;
}

ks_err_t ks_test_driver_stream_outputs(ks_test_driver_t *drv,
                                       ks_test_output_fn *fn,
                                       void *opaque,
                                       void (*opaque_free)(void *opaque)) {
        if (!fn)
                return KS_ERR_INVALID_ARG;
        if (drv->started || drv->output_fn)
                return KS_ERR_STATE;
        drv->output_fn          = fn;
        drv->output_opaque      = opaque;
        drv->output_opaque_free = opaque_free;
        return KS_OK;
}

ks_err_t ks_test_driver_use_memory_stores(ks_test_driver_t *drv, bool memory) {
        if (drv->started)
                return KS_ERR_STATE;
        drv->memory_stores = memory;
        return KS_OK;
}

ks_error_t *ks_test_driver_advance_wall_clock(ks_test_driver_t *drv,
                                              int64_t ms) {
        if (ms < 0)
                return ks_error_new(KS_ERR_INVALID_ARG,
                                    "advance_wall_clock: negative step");
        ks_error_t *err = ensure_started(drv);
        if (err)
                return err;
        drv->wall_clock += ms;
        for (int i = 0; i < drv->task_cnt; i++) {
                err = ks__task_punctuate_wall(drv->tasks[i], drv->wall_clock);
                if (!err)
                        err = run_until_idle(drv);
                if (err)
                        return ks__drv_eos_failed(drv, err);
        }
        return NULL;
}

int64_t ks_test_driver_wall_clock(const ks_test_driver_t *drv) {
        return drv->wall_clock;
}

bool ks_test_driver_read(ks_test_driver_t *drv,
                         const char *topic,
                         ks_test_record_t *out) {
        drv_topic_t *t = ks__drv_topic(drv, topic);
        if (!t || t->read_pos >= t->cnt || !ks__drv_visible(t, t->read_pos))
                return false;
        *out = *t->records[t->read_pos++];
        return true;
}

size_t ks_test_driver_remaining(const ks_test_driver_t *drv,
                                const char *topic) {
        const drv_topic_t *t = ks__drv_topic(drv, topic);
        if (!t)
                return 0;
        size_t end = t->pending ? t->first_pending : t->cnt;
        return end > t->read_pos ? end - t->read_pos : 0;
}

int32_t ks_test_driver_partitions(const ks_test_driver_t *drv,
                                  const char *topic) {
        const drv_topic_t *t = ks__drv_topic(drv, topic);
        return t ? t->partitions : -1;
}

uint64_t ks_test_driver_metric(const ks_test_driver_t *drv, const char *name) {
        static const struct {
                const char *name;
                size_t offset;
        } metrics[] = {
                {"records-consumed",
                 offsetof(ks_task_metrics_t, records_consumed)},
                {"records-processed",
                 offsetof(ks_task_metrics_t, records_processed)},
                {"records-produced",
                 offsetof(ks_task_metrics_t, records_produced)},
                {"dropped-deserialization",
                 offsetof(ks_task_metrics_t, dropped_deserialization)},
                {"dropped-processing",
                 offsetof(ks_task_metrics_t, dropped_processing)},
                {"dropped-production",
                 offsetof(ks_task_metrics_t, dropped_production)},
                {"dead-lettered", offsetof(ks_task_metrics_t, dead_lettered)},
                {"punctuations", offsetof(ks_task_metrics_t, punctuations)},
                {"dropped-late", offsetof(ks_task_metrics_t, dropped_late)},
                {"dropped-skipped",
                 offsetof(ks_task_metrics_t, dropped_skipped)},
                {"cache-puts", offsetof(ks_task_metrics_t, cache_puts)},
                {"cache-flushed", offsetof(ks_task_metrics_t, cache_flushed)},
                {"enforced-processing",
                 offsetof(ks_task_metrics_t, enforced_processing)},
                {"dropped-dedup", offsetof(ks_task_metrics_t, dropped_dedup)},
        };
        if (!strcmp(name, "tasks"))
                return (uint64_t)drv->task_cnt;
        if (!strcmp(name, "commits"))
                return drv->commits;
        if (!strcmp(name, "transactions-committed"))
                return drv->txn.txn_committed;
        if (!strcmp(name, "transactions-aborted"))
                return drv->txn.txn_aborted;
        for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
                if (strcmp(metrics[m].name, name))
                        continue;
                /* Tasks an abort closed count too. */
                uint64_t sum =
                        *(const uint64_t *)((const char *)&drv->txn.closed +
                                            metrics[m].offset);
                for (int i = 0; i < drv->task_cnt; i++) {
                        const char *base =
                                (const char *)ks__task_metrics(drv->tasks[i]);
                        sum += *(const uint64_t *)(base + metrics[m].offset);
                }
                return sum;
        }
        return UINT64_MAX;
}

int64_t ks_test_driver_stream_time(const ks_test_driver_t *drv,
                                   int subtopology,
                                   int32_t partition) {
        ks_task_t *task = ks__drv_task_for(drv, subtopology, partition);
        return task ? ks__task_stream_time(task) : -1;
}

/* ---- queries on materialized stores ---------------------------------------
 */

static void *store_of(ks_test_driver_t *drv,
                      const char *store,
                      int32_t partition,
                      int want_kind) {
        ks_error_t *err = ensure_started(drv);
        if (err) {
                ks_error_destroy(err);
                return NULL;
        }
        for (int i = 0; i < drv->task_cnt; i++) {
                int kind;
                void *st = ks__task_store_named(drv->tasks[i], store, &kind);
                if (st && ks__task_partition(drv->tasks[i]) == partition)
                        return kind == want_kind ? st : NULL;
        }
        return NULL;
}

ks_kv_store_t *ks_test_driver_kv_store(ks_test_driver_t *drv,
                                       const char *store,
                                       int32_t partition) {
        return store_of(drv, store, partition, KS_STORE_KV);
}

ks_window_store_t *ks_test_driver_window_store(ks_test_driver_t *drv,
                                               const char *store,
                                               int32_t partition) {
        return store_of(drv, store, partition, KS_STORE_WINDOW);
}

int32_t ks_test_driver_store_partitions(ks_test_driver_t *drv,
                                        const char *store) {
        int32_t n = 0;
        for (int i = 0; i < drv->task_cnt; i++) {
                int kind;
                n += ks__task_store_named(drv->tasks[i], store, &kind) != NULL;
        }
        return n ? n : -1;
}
