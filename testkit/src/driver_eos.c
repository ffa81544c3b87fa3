/* The test driver under processing.guarantee=exactly_once_v2: the
 * runtime's commit protocol (task/commit.c) with a transactional step 3,
 * simulated on the driver's topics.
 *
 * One transaction spans every task, as a stream thread's does. What tasks
 * write (outputs, repartition records, changelogs, dead letters) is
 * pending until the commit: readers of the driver's topics and the tasks
 * reading repartition topics see it only then, as read_committed
 * consumers. Records piped in are not transactional (the test is another
 * producer) and show at once.
 *
 * An abort, as the runtime's after a failed transaction (thread_txn.c,
 * ks__tm_rewind()): the pending records are discarded, every task closes
 * without committing (its LMDB transaction aborted) and is made again from
 * its store, with the committed partition times, and is fed again every
 * input record since the last commit. They are processed by the next call
 * that processes (a pipe, a commit, ...), as a restarted thread would. */
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"

/* Room for one more element in *arr. @returns 0, or -1 out of memory. */
static int reserve(void **arr, size_t cnt, size_t *cap, size_t size) {
        if (cnt < *cap)
                return 0;
        size_t ncap = *cap ? *cap * 2 : 64;
        void *n     = realloc(*arr, ncap * size);
        if (!n)
                return -1;
        *arr = n;
        *cap = ncap;
        return 0;
}

bool ks__drv_visible(const drv_topic_t *t, size_t i) {
        return !t->pending || i < t->first_pending;
}

ks_err_t ks__drv_eos_add_pending(ks_test_driver_t *drv,
                                 drv_topic_t *t,
                                 drv_record_t *dr) {
        drv_eos_t *x = &drv->txn;
        if (reserve((void **)&x->pending, x->pending_cnt, &x->pending_cap,
                    sizeof(*x->pending))) {
                /* Not kept: freed here; kept: with its topic. */
                if (drv->output_fn)
                        free(dr);
                return KS_ERR_NOMEM;
        }
        dr->pending                  = true;
        x->pending[x->pending_cnt++] = dr;
        if (!drv->output_fn && !t->pending++)
                t->first_pending = t->cnt - 1;
        return KS_OK;
}

ks_err_t ks__drv_eos_replay_push(ks_test_driver_t *drv,
                                 drv_record_t *dr,
                                 int subtopology) {
        drv_eos_t *x = &drv->txn;
        if (reserve((void **)&x->replay, x->replay_cnt, &x->replay_cap,
                    sizeof(*x->replay)))
                return KS_ERR_NOMEM;
        x->replay[x->replay_cnt++] = (drv_replay_t){dr, subtopology};
        return KS_OK;
}

static drv_committed_t *committed_find(const ks_test_driver_t *drv,
                                       int sub,
                                       const char *topic,
                                       int32_t partition) {
        const drv_eos_t *x = &drv->txn;
        for (size_t i = 0; i < x->committed_cnt; i++)
                if (x->committed[i].subtopology == sub &&
                    x->committed[i].partition == partition &&
                    !strcmp(x->committed[i].topic, topic))
                        return &x->committed[i];
        return NULL;
}

/* Drops a reference of the replay list (streamed records only are
 * counted: kept ones live with their topic). */
static void replay_release(ks_test_driver_t *drv, drv_record_t *dr) {
        if (drv->output_fn && --dr->task_refs == 0)
                free(dr);
}

static ks_err_t record_offsets(ks_test_driver_t *drv,
                               const ks_task_offset_t *offsets,
                               int cnt) {
        drv_eos_t *x = &drv->txn;
        for (int i = 0; i < cnt; i++) {
                const ks_task_offset_t *o = &offsets[i];
                int sub                   = ks__task_subtopology(o->task);
                drv_committed_t *c =
                        committed_find(drv, sub, o->topic, o->partition);
                if (!c) {
                        if (reserve((void **)&x->committed, x->committed_cnt,
                                    &x->committed_cap, sizeof(*x->committed)))
                                return KS_ERR_NOMEM;
                        c  = &x->committed[x->committed_cnt];
                        *c = (drv_committed_t){sub, o->partition,
                                               strdup(o->topic), -1, -1};
                        if (!c->topic)
                                return KS_ERR_NOMEM;
                        x->committed_cnt++;
                }
                c->offset         = o->offset;
                c->partition_time = o->partition_time;
        }
        /* Records before the committed offsets are never fed again. */
        size_t keep = 0;
        for (size_t i = 0; i < x->replay_cnt; i++) {
                drv_replay_t *r = &x->replay[i];
                const drv_committed_t *c =
                        committed_find(drv, r->subtopology, r->dr->rec.topic,
                                       r->dr->rec.partition);
                if (c && r->dr->rec.offset < c->offset)
                        replay_release(drv, r->dr);
                else
                        x->replay[keep++] = *r;
        }
        x->replay_cnt = keep;
        return KS_OK;
}

ks_error_t *ks__drv_eos_commit_offsets(void *opaque,
                                       const ks_task_offset_t *offsets,
                                       int cnt) {
        ks_test_driver_t *drv = opaque;
        drv_eos_t *x          = &drv->txn;
        char errstr[512];
        if (record_offsets(drv, offsets, cnt))
                return ks_error_new(KS_ERR_NOMEM, "commit: out of memory");
        /* The transaction's records become visible: to readers, to the
         * callback of streamed outputs, to the tasks reading them. */
        for (int i = 0; i < drv->topic_cnt; i++)
                drv->topics[i].pending = 0;
        size_t n       = x->pending_cnt;
        x->pending_cnt = 0;
        ks_err_t err   = KS_OK;
        for (size_t i = 0; i < n; i++) {
                drv_record_t *dr = x->pending[i];
                dr->pending      = false;
                int held         = err ? 0
                                       : ks__drv_enqueue(drv, dr, &err, errstr,
                                                         sizeof(errstr));
                x->released += held > 0;
                if (!drv->output_fn)
                        continue;
                if (!held && !err)
                        drv->output_fn(drv, &dr->rec, drv->output_opaque);
                dr->task_refs += held;
                if (!dr->task_refs)
                        free(dr);
        }
        if (err)
                return ks_error_new(err, "commit: %s", errstr);
        x->txn_committed++;
        return NULL;
}

/* Removes the pending records of every topic (kept outputs) or frees
 * them (streamed). */
static void discard_pending(ks_test_driver_t *drv) {
        drv_eos_t *x = &drv->txn;
        if (drv->output_fn)
                for (size_t i = 0; i < x->pending_cnt; i++)
                        free(x->pending[i]);
        x->pending_cnt = 0;
        for (int i = 0; !drv->output_fn && i < drv->topic_cnt; i++) {
                drv_topic_t *t = &drv->topics[i];
                if (!t->pending)
                        continue;
                size_t keep = t->first_pending;
                for (size_t r = t->first_pending; r < t->cnt; r++) {
                        if (((drv_record_t *)t->records[r])->pending)
                                free(t->records[r]);
                        else
                                t->records[keep++] = t->records[r];
                }
                t->cnt     = keep;
                t->pending = 0;
        }
}

static void metrics_add(ks_task_metrics_t *sum, const ks_task_metrics_t *m) {
        uint64_t *s       = (uint64_t *)sum;
        const uint64_t *a = (const uint64_t *)m;
        for (size_t i = 0; i < sizeof(*m) / sizeof(uint64_t); i++)
                s[i] += a[i];
}

/* A new task starts from its store: LMDB ones are at their last commit
 * already; memory ones are restored from their changelogs (committed
 * records only: the others are gone). And from the committed partition
 * times, so that windows closed stay closed. */
static ks_error_t *restore(ks_test_driver_t *drv, ks_task_t *task) {
        int sub      = ks__task_subtopology(task);
        int32_t p    = ks__task_partition(task);
        drv_eos_t *x = &drv->txn;
        for (size_t i = 0; i < x->committed_cnt; i++) {
                const drv_committed_t *c = &x->committed[i];
                if (c->subtopology == sub && c->partition == p &&
                    c->partition_time >= 0)
                        ks__task_init_partition_time(task, c->topic,
                                                     c->partition_time);
        }
        if (!drv->memory_stores)
                return NULL;
        for (int idx = 0; idx < ks__task_store_count(task); idx++) {
                ks_task_store_info_t info;
                ks__task_store_info(task, idx, &info);
                const drv_topic_t *t = ks__drv_topic(drv, info.changelog);
                for (size_t r = 0; t && r < t->cnt; r++) {
                        const ks_test_record_t *rec = t->records[r];
                        if (rec->partition != p)
                                continue;
                        ks_error_t *err = ks__task_restore_put(
                                task, idx, rec->key, rec->value);
                        if (err)
                                return err;
                }
        }
        return NULL;
}

static ks_error_t *eos_abort(ks_test_driver_t *drv) {
        drv_eos_t *x = &drv->txn;
        /* Queued records are released with their tasks: the replay list
         * keeps its own references. */
        for (int i = 0; i < drv->task_cnt; i++) {
                ks__task_abort_state(drv->tasks[i]);
                metrics_add(&x->closed, ks__task_metrics(drv->tasks[i]));
                ks__task_destroy(drv->tasks[i]);
        }
        drv->task_cnt = 0;
        discard_pending(drv);
        x->txn_aborted++;
        const ks_topology_t *topo = drv->topology;
        for (int s = 0; s < topo->subtopology_cnt; s++)
                for (int32_t p = 0; p < drv->tasks_per_sub[s]; p++) {
                        ks_error_t *err = ks__drv_task_make(drv, s, p, restore);
                        if (err)
                                return err;
                }
        /* The input since the last commit, again, in the order taken. */
        for (size_t i = 0; i < x->replay_cnt; i++) {
                drv_record_t *dr = x->replay[i].dr;
                ks_task_t *task  = ks__drv_task_for(
                         drv, x->replay[i].subtopology, dr->rec.partition);
                ks_test_record_t *r = &dr->rec;
                ks_raw_record_t raw = {r->topic,
                                       r->partition,
                                       r->offset,
                                       r->timestamp,
                                       r->key,
                                       r->value,
                                       r->headers,
                                       r->header_cnt,
                                       drv->output_fn ? dr : NULL};
                ks_err_t err =
                        task ? ks__task_enqueue(task, &raw) : KS_ERR_STATE;
                if (err)
                        return ks_error_new(err,
                                            "abort: cannot feed %s[%d]@%lld "
                                            "again",
                                            r->topic, (int)r->partition,
                                            (long long)r->offset);
                if (drv->output_fn)
                        dr->task_refs++;
        }
        return NULL;
}

ks_error_t *ks__drv_eos_failed(ks_test_driver_t *drv, ks_error_t *err) {
        if (!err || !drv->eos || !drv->started)
                return err;
        ks_error_t *aerr = eos_abort(drv);
        if (!aerr)
                return err;
        ks_error_t *both =
                ks_error_new(ks_error_code(err),
                             "%s; the abort that followed "
                             "failed: %s",
                             ks_error_message(err), ks_error_message(aerr));
        ks_error_set_fatal(both, true);
        ks_error_destroy(err);
        ks_error_destroy(aerr);
        return both;
}

void ks__drv_eos_destroy(ks_test_driver_t *drv) {
        drv_eos_t *x = &drv->txn;
        for (size_t i = 0; i < x->replay_cnt; i++)
                replay_release(drv, x->replay[i].dr);
        /* Kept pending records go with their topics. */
        if (drv->output_fn)
                for (size_t i = 0; i < x->pending_cnt; i++)
                        free(x->pending[i]);
        for (size_t i = 0; i < x->committed_cnt; i++)
                free(x->committed[i].topic);
        free(x->pending);
        free(x->replay);
        free(x->committed);
}
