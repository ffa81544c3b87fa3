/* GET /metrics: the instance's metrics in the Prometheus text format,
 * written from the descriptor table (metrics.c). Fields become one series
 * per stream thread (labels application_id, thread); the emitters below
 * write what is not a field. Reads only copies the threads publish and
 * LMDB snapshots: it never waits for a stream thread's loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iq_int.h"
#include "metrics_expo_int.h"

static ks_err_t base_labels(ks_expo_t *x, const ks_thread_view_t *v) {
        char thread[300];
        ks_buf_clear(&x->labels);
        ks_err_t err = ks__prom_label(&x->labels, "application_id",
                                      x->s->application_id);
        if (!err && v) {
                snprintf(thread, sizeof(thread), "%s-StreamThread-%d",
                         x->s->application_id, v->index + 1);
                err = ks__prom_label(&x->labels, "thread", thread);
        }
        return err;
}

static ks_err_t emit_field(ks_expo_t *x, const ks_metric_desc_t *d) {
        ks_err_t err = KS_OK;
        for (int i = 0; i < x->view_cnt && !err; i++) {
                const ks_thread_view_t *v = &x->views[i];
                uint64_t raw =
                        *(const uint64_t *)((const char *)&v->m + d->field);
                err = base_labels(x, v);
                if (!err && d->labels)
                        err = ks_buf_appendf(&x->labels, ",%s", d->labels);
                if (!err)
                        err = ks__prom_sample(x->out, d->name, "",
                                              x->labels.data,
                                              (double)raw * d->scale);
        }
        return err;
}

static ks_err_t emit_hist(ks_expo_t *x, const char *name, size_t off) {
        ks_err_t err = KS_OK;
        for (int i = 0; i < x->view_cnt && !err; i++) {
                const ks_thread_view_t *v = &x->views[i];
                err                       = base_labels(x, v);
                if (!err)
                        err = ks__prom_histogram(
                                x->out, name, x->labels.data,
                                (const ks_histogram_t *)((const char *)v +
                                                         off));
        }
        return err;
}

ks_err_t ks__emit_commit_latency(ks_expo_t *x, const char *name) {
        return emit_hist(x, name, offsetof(ks_thread_view_t, commit));
}

ks_err_t ks__emit_e2e(ks_expo_t *x, const char *name) {
        return emit_hist(x, name, offsetof(ks_thread_view_t, e2e));
}

ks_err_t ks__emit_cache_ratio(ks_expo_t *x, const char *name) {
        ks_err_t err = KS_OK;
        for (int i = 0; i < x->view_cnt && !err; i++) {
                const ks_streams_metrics_t *m = &x->views[i].m;
                if (!m->cache_puts)
                        continue;
                uint64_t hits = m->cache_puts > m->cache_flushed
                                        ? m->cache_puts - m->cache_flushed
                                        : 0;
                err           = base_labels(x, &x->views[i]);
                if (!err)
                        err = ks__prom_sample(
                                x->out, name, "", x->labels.data,
                                (double)hits / (double)m->cache_puts);
        }
        return err;
}

ks_err_t ks__emit_lag(ks_expo_t *x, const char *name) {
        ks_err_t err = KS_OK;
        for (int i = 0; i < x->view_cnt && !err; i++) {
                const ks_thread_view_t *v = &x->views[i];
                for (int k = 0; k < v->lag_cnt && !err; k++) {
                        char part[16];
                        snprintf(part, sizeof(part), "%d",
                                 (int)v->lag[k].partition);
                        err = base_labels(x, v);
                        if (!err)
                                err = ks__prom_label(&x->labels, "topic",
                                                     v->lag[k].topic);
                        if (!err)
                                err = ks__prom_label(&x->labels, "partition",
                                                     part);
                        if (!err)
                                err = ks__prom_sample(x->out, name, "",
                                                      x->labels.data,
                                                      (double)v->lag[k].lag);
                }
        }
        return err;
}

ks_err_t ks__emit_state(ks_expo_t *x, const char *name) {
        ks_state_t now = (ks_state_t)atomic_load(&x->s->state_seen);
        ks_err_t err   = KS_OK;
        for (int st = KS_STATE_CREATED; st <= KS_STATE_ERROR && !err; st++) {
                err = base_labels(x, NULL);
                if (!err)
                        err = ks__prom_label(&x->labels, "state",
                                             ks_state_name((ks_state_t)st));
                if (!err)
                        err = ks__prom_sample(x->out, name, "", x->labels.data,
                                              st == (int)now);
        }
        return err;
}

ks_err_t ks__emit_http_port(ks_expo_t *x, const char *name) {
        int port     = atomic_load(&x->s->http_port);
        ks_err_t err = port > 0 ? base_labels(x, NULL) : KS_OK;
        if (!err && port > 0)
                err = ks__prom_sample(x->out, name, "", x->labels.data, port);
        return err;
}

/* The ready tasks' (sub-topology, partition), copied under the registry's
 * lock; each is then read through ks__iq_acquire(), which skips a task
 * that went away in between. */
static int hosted_tasks(ks_streams_t *s, int32_t **subp, int32_t **partp) {
        ks_iq_t *iq = &s->iq;
        pthread_mutex_lock(&iq->lock);
        int n         = 0;
        int32_t *sub  = calloc((size_t)iq->task_cnt + 1, sizeof(*sub));
        int32_t *part = calloc((size_t)iq->task_cnt + 1, sizeof(*part));
        for (int i = 0; sub && part && i < iq->task_cnt; i++) {
                if (!iq->tasks[i]->ready || iq->tasks[i]->closing)
                        continue;
                sub[n]    = iq->tasks[i]->sub;
                part[n++] = iq->tasks[i]->partition;
        }
        pthread_mutex_unlock(&iq->lock);
        *subp  = sub;
        *partp = part;
        return sub && part ? n : -1;
}

static ks_err_t emit_task_stores(ks_expo_t *x,
                                 const char *name,
                                 int sub,
                                 int32_t partition) {
        const ks_topology_t *t = x->s->topology;
        ks_err_t err           = KS_OK;
        for (int i = 0; i < t->node_cnt && !err; i++) {
                const ks_store_spec_t *st = t->nodes[i]->store;
                if (!st || t->nodes[i]->subtopology != sub)
                        continue;
                iq_task_t *it;
                ks_state_snapshot_t *snap = NULL;
                uint64_t bytes            = 0;
                ks_error_t *e =
                        ks__iq_acquire(x->s, st->name, sub, partition, &it);
                if (e) {
                        ks_error_destroy(e);
                        return KS_OK; /* gone since it was listed */
                }
                e = ks_state_env_snapshot(it->env, &snap);
                if (!e)
                        e = ks_state_snapshot_store_bytes(snap, st->name,
                                                          &bytes);
                ks_state_snapshot_close(snap);
                ks__iq_release(x->s, it);
                if (e) {
                        ks_error_destroy(e);
                        continue;
                }
                char task[32];
                snprintf(task, sizeof(task), "%d_%d", sub, (int)partition);
                err = base_labels(x, NULL);
                if (!err)
                        err = ks__prom_label(&x->labels, "task", task);
                if (!err)
                        err = ks__prom_label(&x->labels, "store", st->name);
                if (!err)
                        err = ks__prom_sample(x->out, name, "", x->labels.data,
                                              (double)bytes);
        }
        return err;
}

ks_err_t ks__emit_store_size(ks_expo_t *x, const char *name) {
        int32_t *sub, *part;
        int n        = hosted_tasks(x->s, &sub, &part);
        ks_err_t err = n < 0 ? KS_ERR_NOMEM : KS_OK;
        for (int i = 0; i < n && !err; i++)
                err = emit_task_stores(x, name, sub[i], part[i]);
        free(sub);
        free(part);
        return err;
}

ks_err_t ks_streams_metrics_prometheus(ks_streams_t *s, ks_buf_t *out) {
        ks_expo_t x  = {.s = s, .out = out};
        ks_err_t err = KS_OK;
        if (s->thread_cnt &&
            !(x.views = calloc((size_t)s->thread_cnt, sizeof(*x.views))))
                return KS_ERR_NOMEM;
        for (int i = 0; i < s->thread_cnt && !err; i++, x.view_cnt++)
                err = ks__stream_thread_view(s->threads[i], &x.views[i]);
        const char *last = NULL;
        for (size_t i = 0; i < ks__metric_desc_cnt && !err; i++) {
                const ks_metric_desc_t *d = &ks__metric_descs[i];
                if (!last || strcmp(last, d->name))
                        err = ks__prom_header(out, d->name, d->help, d->type);
                last = d->name;
                if (!err)
                        err = d->field != KS_NO_FIELD ? emit_field(&x, d)
                                                      : d->emit(&x, d->name);
        }
        for (int i = 0; i < x.view_cnt; i++)
                ks__thread_view_free(&x.views[i]);
        free(x.views);
        ks_buf_free(&x.labels);
        return err;
}
