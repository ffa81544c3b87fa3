/* The task manager: each task's lifecycle on a stream thread.
 *
 *   CREATED --restore--> RESTORING --done--> RUNNING --revoked--> SUSPENDED
 *      \________ no store or up to date ______/^                     |
 *                                              \__ assigned again __/
 *   and any of them --> closed (destroyed).
 *
 * The rebalance callbacks only record what changed, pause new partitions
 * and, before a revocation, commit; creating tasks, reading their
 * committed stream time, restoring and starting them happen in the loop
 * (ks__tm_handle_assignment(), ks__tm_finish_restoration()). A task's
 * input partitions stay paused until it runs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kstreams/store.h"
#include "log_int.h"
#include "runtime_int.h"

/* ---- tasks ----------------------------------------------------------------
 */

static int sub_of(ks_stream_thread_t *t, const char *topic, bool *internal) {
        const ks_topology_t *topo = t->s->topology;
        for (int n = 0; n < topo->node_cnt; n++) {
                const ks_node_t *node = topo->nodes[n];
                if (node->kind == KS_NODE_SOURCE &&
                    ks__source_reads(node, t->s->application_id, topic)) {
                        *internal = node->internal;
                        return node->subtopology;
                }
        }
        return -1;
}

static bool sub_has_stores(const ks_topology_t *topo, int sub) {
        for (int i = 0; i < topo->node_cnt; i++)
                if (topo->nodes[i]->subtopology == sub && topo->nodes[i]->store)
                        return true;
        return false;
}

static void task_dir(const ks_stream_thread_t *t,
                     int sub,
                     int32_t partition,
                     char *out,
                     size_t out_size) {
        snprintf(out, out_size, "%s/%d_%d", t->app_state_dir, sub,
                 (int)partition);
}

/* The task's LMDB environment in <state.dir>/<application.id>/<task>/. */
static ks_error_t *open_env(ks_stream_thread_t *t,
                            int sub,
                            int32_t partition,
                            ks_state_env_t **envp) {
        char dir[1100];
        task_dir(t, sub, partition, dir, sizeof(dir));
        if (ks__mkdirs(dir))
                return ks_error_new(KS_ERR_IO,
                                    "cannot create state directory %s: %s", dir,
                                    strerror(errno));
        /* The directory may still be held for a moment by the instance it
         * comes from, or by a cleanup: retry a locked one for 10 s. */
        ks_error_t *err = NULL;
        for (int attempt = 0; attempt < 100; attempt++) {
                ks_error_destroy(err);
                err = ks_state_env_open(
                        dir,
                        (size_t)ks__conf_int(t->s->conf, "statestore.map.size"),
                        envp);
                if (!err || ks_error_code(err) != KS_ERR_STATE ||
                    atomic_load(&t->s->stop))
                        break;
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return err;
}

static managed_task_t *find_task(ks_stream_thread_t *t,
                                 int sub,
                                 int32_t partition) {
        for (int i = 0; i < t->task_cnt; i++)
                if (t->tasks[i]->sub == sub &&
                    t->tasks[i]->partition == partition)
                        return t->tasks[i];
        return NULL;
}

/* A new task in CREATED, its stores open. */
static managed_task_t *create_task(ks_stream_thread_t *t,
                                   int sub,
                                   int32_t partition,
                                   ks_error_t **errp) {
        char errstr[256];
        managed_task_t **nt =
                realloc(t->tasks, (size_t)(t->task_cnt + 1) * sizeof(*nt));
        managed_task_t *mt = calloc(1, sizeof(*mt));
        if (nt)
                t->tasks = nt;
        if (!nt || !mt) {
                free(mt);
                *errp = ks_error_new(KS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        ks_state_env_t *env = NULL;
        mt->sub             = sub;
        mt->partition       = partition;
        mt->has_stores      = sub_has_stores(t->s->topology, sub);
        if (mt->has_stores && (*errp = open_env(t, sub, partition, &env))) {
                free(mt);
                return NULL;
        }
        mt->task =
                ks__task_new(t->s->topology, sub, partition, t->s->conf,
                             &t->collector.iface, env, errstr, sizeof(errstr));
        if (!mt->task) {
                *errp = ks_error_new(KS_ERR_INVALID_ARG, "%s", errstr);
                free(mt);
                return NULL;
        }
        ks__task_set_cache_budget(mt->task, &t->cache_budget);
        /* Interactive queries see the task as restoring until it runs. */
        if (env && (*errp = ks__iq_task_add(t->s, mt->task, env))) {
                ks__task_destroy(mt->task);
                free(mt);
                return NULL;
        }
        mt->in_iq               = env != NULL;
        mt->state               = KS_TASK_CREATED;
        t->tasks[t->task_cnt++] = mt;
        return mt;
}

/* Destroys @p mt (and forgets it); @p clean: it was committed, else its
 * uncommitted state writes are dropped first. */
static void close_task(ks_stream_thread_t *t, managed_task_t *mt, bool clean) {
        ks__reader_remove(t, mt);
        ks__metrics_add_task(&t->closed, ks__task_metrics(mt->task));
        /* Waits for the queries reading its stores. */
        if (mt->in_iq)
                ks__iq_task_remove(t->s, mt->task);
        if (!clean)
                ks__task_abort_state(mt->task);
        for (int i = 0; i < t->assigned_cnt; i++)
                if (t->assigned[i].task == mt->task) {
                        t->assigned[i].task    = NULL;
                        t->assigned[i].handled = false;
                }
        ks__task_destroy(mt->task);
        for (int i = 0; i < t->task_cnt; i++)
                if (t->tasks[i] == mt) {
                        t->tasks[i] = t->tasks[--t->task_cnt];
                        break;
                }
        free(mt);
}

/* RUNNING: processors initialized, queries served, inputs resumed. */
static ks_error_t *start_running(ks_stream_thread_t *t, managed_task_t *mt) {
        if (mt->state != KS_TASK_SUSPENDED) {
                ks_error_t *err = ks__task_init(mt->task);
                if (err)
                        return err;
        }
        if (mt->in_iq)
                ks__iq_task_ready(t->s, mt->task);
        mt->state = KS_TASK_RUNNING;
        for (int i = 0; i < t->assigned_cnt; i++) {
                assigned_t *a = &t->assigned[i];
                if (a->task != mt->task || !a->held)
                        continue;
                a->held = false;
                if (!a->paused)
                        ks__thread_pause(t, a, false);
        }
        return NULL;
}

/* A checkpoint past its changelog's end: wipe the task's directory and
 * create it again, to restore from the beginning. */
static managed_task_t *rebuild(ks_stream_thread_t *t,
                               managed_task_t *mt,
                               ks_error_t **errp) {
        int sub   = mt->sub;
        int32_t p = mt->partition;
        char dir[1100];
        close_task(t, mt, false);
        task_dir(t, sub, p, dir, sizeof(dir));
        if (ks__rmtree(dir) && errno != ENOENT) {
                *errp = ks_error_new(KS_ERR_IO,
                                     "cannot wipe corrupt state %s: %s", dir,
                                     strerror(errno));
                return NULL;
        }
        return create_task(t, sub, p, errp);
}

/* Points the assigned partitions of task (sub, partition) at @p mt and
 * gives it their committed times (a new task only: a suspended one keeps
 * its own). */
static void attach(ks_stream_thread_t *t, managed_task_t *mt) {
        /* The task's partitions may come from different commits (only
         * moved offsets are committed): positions only grow, so the
         * largest of each is the last commit's. */
        int64_t pos[KS_METADATA_MAX_STORES];
        int pos_cnt = 0;
        for (int i = 0; i < t->assigned_cnt; i++) {
                assigned_t *a = &t->assigned[i];
                bool internal;
                if (a->partition != mt->partition ||
                    sub_of(t, a->topic, &internal) != mt->sub)
                        continue;
                a->task    = mt->task;
                a->handled = true;
                if (mt->state != KS_TASK_CREATED)
                        continue;
                if (a->committed_time >= 0)
                        ks__task_init_partition_time(mt->task, a->topic,
                                                     a->committed_time);
                for (int k = 0; k < a->position_cnt; k++) {
                        if (k >= pos_cnt)
                                pos[pos_cnt++] = a->positions[k];
                        else if (a->positions[k] > pos[k])
                                pos[k] = a->positions[k];
                }
        }
        if (mt->state == KS_TASK_CREATED && pos_cnt)
                ks__task_set_committed_positions(mt->task, pos, pos_cnt);
}

/* Starts the task's restoration, or runs it when there is none. */
static ks_error_t *begin(ks_stream_thread_t *t, managed_task_t *mt) {
        ks_error_t *err = NULL;
        if (!mt->has_stores)
                return start_running(t, mt);
        for (int attempt = 0; attempt < 2; attempt++) {
                switch (ks__reader_add(t, mt, &err)) {
                case KS_RESTORE_ADDED:
                        mt->state = KS_TASK_RESTORING;
                        return NULL;
                case KS_RESTORE_UP_TO_DATE:
                        return start_running(t, mt);
                case KS_RESTORE_ADD_FAILED:
                        return err;
                case KS_RESTORE_CORRUPT:
                        if (!(mt = rebuild(t, mt, &err)))
                                return err;
                        mt->assigned = true;
                        attach(t, mt);
                        /* The commits' changelog positions are of the old
                         * changelog: replay everything there is. */
                        ks__task_set_committed_positions(mt->task, NULL, 0);
                        break;
                }
        }
        return ks_error_new(KS_ERR_STATE,
                            "task %s: the store is still corrupt after a "
                            "rebuild",
                            ks__task_id(mt->task));
}

/* ---- assignment -----------------------------------------------------------
 */

ks_error_t *ks__tm_on_assigned(ks_stream_thread_t *t,
                               const rd_kafka_topic_partition_list_t *parts) {
        t->own.rebalances++;
        assigned_t *na = calloc((size_t)parts->cnt + 1, sizeof(*na));
        if (!na)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < parts->cnt; i++) {
                assigned_t *a     = &na[i];
                a->topic          = strdup(parts->elems[i].topic);
                a->partition      = parts->elems[i].partition;
                a->held           = true;
                a->purged         = -1;
                a->committed      = -1;
                a->committed_time = -1;
                if (!a->topic) {
                        for (int k = 0; k < i; k++)
                                free(na[k].topic);
                        free(na);
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
                }
        }
        /* The eager protocol revoked everything before: nothing to keep. */
        for (int i = 0; i < t->assigned_cnt; i++)
                free(t->assigned[i].topic);
        free(t->assigned);
        t->assigned           = na;
        t->assigned_cnt       = parts->cnt;
        t->assignment_pending = true;
        return NULL;
}

void ks__tm_on_revoked(ks_stream_thread_t *t) {
        /* Commit what was processed, then let the partitions go: running
         * tasks are suspended (kept, in case they come back), the others
         * closed. Without a commit, everything closes dirty. */
        bool clean = !t->fatal && ks__thread_commit(t);
        /* Under exactly_once_v2 an uncommitted transaction is aborted now,
         * so the partitions' next owner reads past it at once; the tasks
         * close below, so nothing is left to rewind. */
        if (!clean && t->s->eos && ks__txn_abort(t)) {
                t->txn.must_abort = false;
                free(t->txn.cause);
                t->txn.cause = NULL;
        }
        if (!clean)
                ks__collector_purge(&t->collector);
        for (int i = t->task_cnt - 1; i >= 0; i--) {
                managed_task_t *mt = t->tasks[i];
                if (clean && (mt->state == KS_TASK_RUNNING ||
                              mt->state == KS_TASK_SUSPENDED)) {
                        ks__task_drop_buffered(mt->task);
                        mt->state = KS_TASK_SUSPENDED;
                } else {
                        close_task(t, mt, clean);
                }
        }
        for (int i = 0; i < t->assigned_cnt; i++)
                free(t->assigned[i].topic);
        free(t->assigned);
        t->assigned           = NULL;
        t->assigned_cnt       = 0;
        t->assignment_pending = false;
}

/* Reads the committed offsets' metadata of the unhandled partitions: the
 * partition times their tasks start from. @returns false if the group
 * coordinator did not answer: the loop tries again. */
static bool read_committed_times(ks_stream_thread_t *t) {
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(t->assigned_cnt + 1);
        for (int i = 0; i < t->assigned_cnt; i++)
                if (!t->assigned[i].handled)
                        rd_kafka_topic_partition_list_add(
                                l, t->assigned[i].topic,
                                t->assigned[i].partition);
        rd_kafka_resp_err_t err =
                l->cnt ? rd_kafka_committed(t->consumer, l, 10000)
                       : RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; !err && i < l->cnt; i++) {
                assigned_t *a = ks__thread_find_assigned(t, l->elems[i].topic,
                                                         l->elems[i].partition);
                if (a && l->elems[i].offset >= 0)
                        a->committed = l->elems[i].offset;
                if (a)
                        a->committed_time = ks__offset_metadata_decode(
                                l->elems[i].metadata, l->elems[i].metadata_size,
                                a->positions, &a->position_cnt);
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (err)
                ks__log_limited(&t->rl_commit, 10000, KS_LOG_WARNING,
                                "thread %d: reading committed offsets "
                                "failed (%s); tasks start when it works",
                                t->index, rd_kafka_err2str(err));
        return !err;
}

ks_error_t *ks__tm_handle_assignment(ks_stream_thread_t *t) {
        if (!t->assignment_pending || !read_committed_times(t))
                return NULL;
        ks_error_t *err = NULL;
        for (int i = 0; i < t->task_cnt; i++)
                t->tasks[i]->assigned = false;
        for (int i = 0; i < t->assigned_cnt && !err; i++) {
                assigned_t *a = &t->assigned[i];
                int sub       = sub_of(t, a->topic, &a->repartition);
                if (sub < 0)
                        continue;
                managed_task_t *mt = find_task(t, sub, a->partition);
                if (!mt && !(mt = create_task(t, sub, a->partition, &err)))
                        break;
                if (!mt->assigned) {
                        mt->assigned = true;
                        attach(t, mt);
                }
        }
        /* Suspended tasks that did not come back were committed: close. */
        for (int i = t->task_cnt - 1; !err && i >= 0; i--)
                if (!t->tasks[i]->assigned)
                        close_task(t, t->tasks[i], true);
        /* One at a time from the start: a rebuild reorders the array. */
        for (bool again = true; again && !err;) {
                again = false;
                for (int i = 0; i < t->task_cnt && !again; i++) {
                        managed_task_t *mt = t->tasks[i];
                        again              = mt->state == KS_TASK_CREATED ||
                                mt->state == KS_TASK_SUSPENDED;
                        if (mt->state == KS_TASK_CREATED)
                                err = begin(t, mt);
                        else if (mt->state == KS_TASK_SUSPENDED)
                                err = start_running(t, mt);
                }
        }
        if (!err) {
                t->assignment_pending = false;
                ks__log(KS_LOG_INFO,
                        "thread %d: assigned %d partitions, %d tasks", t->index,
                        t->assigned_cnt, t->task_cnt);
        }
        return err;
}

ks_error_t *ks__tm_finish_restoration(ks_stream_thread_t *t) {
        for (int i = 0; i < t->task_cnt; i++) {
                managed_task_t *mt = t->tasks[i];
                if (mt->state != KS_TASK_RESTORING ||
                    !ks__reader_task_done(t, mt))
                        continue;
                ks_error_t *err = start_running(t, mt);
                if (err)
                        return err;
        }
        return NULL;
}

void ks__tm_close_all(ks_stream_thread_t *t, bool clean) {
        /* Delivery reports point into tasks (changelog checkpoints): none
         * may be outstanding when they go. */
        if (t->task_cnt && (!clean || rd_kafka_outq_len(t->producer) > 0))
                ks__collector_purge(&t->collector);
        while (t->task_cnt)
                close_task(t, t->tasks[t->task_cnt - 1], clean);
        free(t->tasks);
        t->tasks = NULL;
        for (int i = 0; i < t->assigned_cnt; i++)
                free(t->assigned[i].topic);
        free(t->assigned);
        t->assigned           = NULL;
        t->assigned_cnt       = 0;
        t->assignment_pending = false;
}

ks_error_t *ks__tm_recover_corrupted(ks_stream_thread_t *t) {
        ks_record_collector_t *c = &t->collector;
        ks__log(KS_LOG_WARNING, "%s", ks_error_message(c->task_error));
        t->own.tasks_corrupted += (uint64_t)t->task_cnt;
        ks__collector_purge(c);
        ks_error_destroy(c->task_error);
        c->task_error = NULL;
        return ks__tm_rewind(t, "a lost internal record");
}

ks_error_t *ks__tm_rewind(ks_stream_thread_t *t, const char *why) {
        while (t->task_cnt)
                close_task(t, t->tasks[t->task_cnt - 1], false);
        /* Back to the committed offsets, paused until the tasks run. */
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(t->assigned_cnt + 1);
        for (int i = 0; i < t->assigned_cnt; i++) {
                t->assigned[i].held    = true;
                t->assigned[i].handled = false;
                rd_kafka_topic_partition_list_add(l, t->assigned[i].topic,
                                                  t->assigned[i].partition);
        }
        rd_kafka_pause_partitions(t->consumer, l);
        rd_kafka_resp_err_t err =
                l->cnt ? rd_kafka_committed(t->consumer, l, 10000) : 0;
        for (int i = 0; !err && i < l->cnt; i++)
                if (l->elems[i].offset < 0)
                        l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_error_t *serr =
                err || !l->cnt
                        ? NULL
                        : rd_kafka_seek_partitions(t->consumer, l, 10000);
        rd_kafka_topic_partition_list_destroy(l);
        if (err || serr) {
                ks_error_t *e = ks_error_new(
                        KS_ERR_KAFKA,
                        "thread %d: cannot rewind to the committed offsets "
                        "after %s: %s",
                        t->index, why,
                        err ? rd_kafka_err2str(err)
                            : rd_kafka_error_string(serr));
                rd_kafka_error_destroy(serr);
                return e;
        }
        t->assignment_pending = t->assigned_cnt > 0;
        return NULL;
}

int ks__tm_running(ks_stream_thread_t *t, ks_task_t ***out) {
        if (t->running_cap < t->task_cnt) {
                ks_task_t **nb =
                        realloc(t->running, (size_t)t->task_cnt * sizeof(*nb));
                if (!nb)
                        return -1;
                t->running     = nb;
                t->running_cap = t->task_cnt;
        }
        int n = 0;
        for (int i = 0; i < t->task_cnt; i++)
                if (t->tasks[i]->state == KS_TASK_RUNNING)
                        t->running[n++] = t->tasks[i]->task;
        *out = t->running;
        return n;
}
