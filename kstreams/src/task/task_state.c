/* A task's state: its stores (in memory, or persistent in the task's LMDB
 * environment), their changelog checkpoints, and restoration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes_int.h"
#include "kstreams/serde.h"
#include "task_priv.h"

static bool has_store(const ks_task_t *task, int i) {
        const ks_node_t *n = task->topology->nodes[i];
        return n->subtopology == task->subtopology && n->store;
}

static ks_error_t *open_one(ks_task_t *task,
                            const ks_store_spec_t *st,
                            void **out) {
        if (!task->env) {
                if (st->kind == KS_STORE_KV)
                        *out = ks_kv_store_new_memory(st->name);
                else if (st->kind == KS_STORE_WINDOW)
                        *out = ks_window_store_new_memory(
                                st->name, st->retention_ms, st->segment_ms);
                else
                        *out = ks_session_store_new_memory(st->name,
                                                           st->retention_ms);
                return *out ? NULL
                            : ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        if (st->kind == KS_STORE_KV)
                return ks_kv_store_open(task->env, st->name,
                                        (ks_kv_store_t **)out);
        if (st->kind == KS_STORE_WINDOW)
                return ks_window_store_open(task->env, st->name,
                                            st->retention_ms, st->segment_ms,
                                            (ks_window_store_t **)out);
        return ks_session_store_open(task->env, st->name, st->retention_ms,
                                     (ks_session_store_t **)out);
}

ks_error_t *ks__task_open_stores(ks_task_t *task) {
        const ks_topology_t *t = task->topology;
        for (int i = 0; i < t->node_cnt; i++) {
                if (!has_store(task, i))
                        continue;
                const ks_store_spec_t *st = t->nodes[i]->store;
                ks_error_t *err = open_one(task, st, &task->stores[i]);
                if (err)
                        return err;
                char name[512];
                ks__changelog_topic_name(task->application_id, st->name, name,
                                         sizeof(name));
                task->changelogs[i]      = strdup(name);
                task->changelog_acked[i] = -1;
                if (!task->changelogs[i])
                        return ks_error_new(KS_ERR_NOMEM, "out of memory");
        }
        return NULL;
}

void ks__task_close_stores(ks_task_t *task) {
        const ks_topology_t *t = task->topology;
        for (int i = 0; task->stores && i < t->node_cnt; i++) {
                if (!task->stores[i])
                        continue;
                /* Persistent stores belong to the environment. */
                if (t->nodes[i]->store->kind == KS_STORE_KV)
                        ks_kv_store_destroy(task->stores[i]);
                else if (t->nodes[i]->store->kind == KS_STORE_WINDOW)
                        ks_window_store_destroy(task->stores[i]);
                else
                        ks_session_store_destroy(task->stores[i]);
                task->stores[i] = NULL;
        }
        ks_state_env_close(task->env);
        task->env = NULL;
}

/* The node of the idx-th store. */
static int store_node(const ks_task_t *task, int idx) {
        for (int i = 0; i < task->topology->node_cnt; i++)
                if (task->stores[i] && idx-- == 0)
                        return i;
        return -1;
}

int ks__task_store_count(const ks_task_t *task) {
        int n = 0;
        for (int i = 0; i < task->topology->node_cnt; i++)
                n += task->stores[i] != NULL;
        return n;
}

static int64_t checkpoint_of(const ks_task_t *task, int node) {
        void *st = task->stores[node];
        switch (task->topology->nodes[node]->store->kind) {
        case KS_STORE_KV:
                return ks_kv_store_checkpoint(st);
        case KS_STORE_WINDOW:
                return ks_window_store_checkpoint(st);
        default:
                return ks_session_store_checkpoint(st);
        }
}

static ks_error_t *set_checkpoint(ks_task_t *task, int node, int64_t offset) {
        void *st = task->stores[node];
        switch (task->topology->nodes[node]->store->kind) {
        case KS_STORE_KV:
                return ks_kv_store_set_checkpoint(st, offset);
        case KS_STORE_WINDOW:
                return ks_window_store_set_checkpoint(st, offset);
        default:
                return ks_session_store_set_checkpoint(st, offset);
        }
}

void ks__task_store_info(const ks_task_t *task,
                         int idx,
                         ks_task_store_info_t *out) {
        int node        = store_node(task, idx);
        out->name       = task->topology->nodes[node]->store->name;
        out->changelog  = task->changelogs[node];
        out->kind       = (int)task->topology->nodes[node]->store->kind;
        out->checkpoint = checkpoint_of(task, node);
        out->committed  = idx < task->committed_position_cnt
                                  ? task->committed_positions[idx]
                                  : -1;
}

int ks__task_changelog_positions(const ks_task_t *task, int64_t *out, int max) {
        int n = 0;
        for (int i = 0; i < task->topology->node_cnt; i++) {
                if (!task->stores[i])
                        continue;
                if (n < max)
                        out[n] = task->changelog_acked[i] >= 0
                                         ? task->changelog_acked[i] + 1
                                         : checkpoint_of(task, i);
                n++;
        }
        return n;
}

ks_err_t ks__task_set_committed_positions(ks_task_t *task,
                                          const int64_t *positions,
                                          int cnt) {
        int64_t *copy = cnt ? malloc((size_t)cnt * sizeof(*copy)) : NULL;
        if (cnt && !copy)
                return KS_ERR_NOMEM;
        if (cnt)
                memcpy(copy, positions, (size_t)cnt * sizeof(*copy));
        free(task->committed_positions);
        task->committed_positions    = copy;
        task->committed_position_cnt = cnt;
        return KS_OK;
}

/* The store's current value for a session changelog key's exact session. */
static ks_error_t *session_value(ks_session_store_t *st,
                                 ks_bytes_t key,
                                 int64_t start,
                                 int64_t end,
                                 ks_buf_t *out,
                                 bool *found) {
        ks_store_iter_t *it;
        *found          = false;
        ks_error_t *err = ks_session_store_find(st, key, end, start, &it);
        if (err)
                return err;
        ks_bytes_t k, v;
        int64_t s, e;
        while (!*found && ks_store_iter_next_session(it, &k, &s, &e, &v))
                if (s == start && e == end && k.len == key.len &&
                    !memcmp(k.data, key.data, key.len)) {
                        *found = true;
                        ks_buf_clear(out);
                        if (ks_buf_append(out, v.data, v.len))
                                err = ks_error_new(KS_ERR_NOMEM,
                                                   "out of memory");
                }
        ks_store_iter_destroy(it);
        return err;
}

ks_error_t *ks__task_compensate(ks_task_t *task,
                                int idx,
                                ks_bytes_t key,
                                int64_t timestamp) {
        int node         = store_node(task, idx);
        void *st         = task->stores[node];
        int kind         = (int)task->topology->nodes[node]->store->kind;
        ks_bytes_t value = {0}, k;
        bool found       = false;
        ks_error_t *err  = NULL;
        ks_buf_t *buf    = &task->value_buf;
        int64_t start, end;
        if (!ks__changelog_key_parse(kind, key, &k, &start, &end))
                return NULL; /* restoring it failed already */
        switch (kind) {
        case KS_STORE_KV:
                err = ks_kv_store_get(st, k, &value, &found);
                break;
        case KS_STORE_WINDOW:
                err = ks_window_store_get(st, k, start, &value, &found);
                break;
        default:
                err   = session_value(st, k, start, end, buf, &found);
                value = (ks_bytes_t){buf->data, buf->len};
                break;
        }
        if (err)
                return err;
        char errstr[256];
        const ks_collector_t *c = task->collector;
        ks_err_t e =
                c->send(c->opaque, task->changelogs[node], task->partition, key,
                        found ? value : (ks_bytes_t){0}, timestamp, NULL, 0,
                        &task->changelog_acked[node], errstr, sizeof(errstr));
        return e ? ks_error_new(e, "task %s: changelog %s: %s", task->id,
                                task->changelogs[node], errstr)
                 : NULL;
}

/* Changelog keys are read with ks__changelog_key_parse() (store_write.c
 * writes them). */
ks_error_t *ks__task_restore_put(ks_task_t *task,
                                 int idx,
                                 ks_bytes_t key,
                                 ks_bytes_t value) {
        int node = store_node(task, idx);
        void *st = task->stores[node];
        int kind = (int)task->topology->nodes[node]->store->kind;
        ks_bytes_t k;
        int64_t start, end;
        if (!ks__changelog_key_parse(kind, key, &k, &start, &end))
                return ks_error_new(KS_ERR_STORE,
                                    "restoring %s: a changelog key of %zu "
                                    "bytes is too short for a windowed store",
                                    task->topology->nodes[node]->store->name,
                                    key.len);
        switch (kind) {
        case KS_STORE_KV:
                return ks_kv_store_put(st, k, value);
        case KS_STORE_WINDOW:
                return ks_window_store_put(st, k, start, value);
        default:
                return ks_session_store_put(st, k, start, end, value);
        }
}

ks_error_t *ks__task_restore_commit(ks_task_t *task,
                                    int idx,
                                    int64_t next_offset) {
        ks_error_t *err =
                set_checkpoint(task, store_node(task, idx), next_offset);
        return err ? err : task->env ? ks_state_env_commit(task->env) : NULL;
}

ks_error_t *ks__task_commit_state(ks_task_t *task) {
        if (!task->env)
                return NULL;
        for (int i = 0; i < task->topology->node_cnt; i++) {
                if (!task->stores[i] || task->changelog_acked[i] < 0)
                        continue;
                ks_error_t *err =
                        set_checkpoint(task, i, task->changelog_acked[i] + 1);
                if (err)
                        return err;
        }
        return ks_state_env_commit(task->env);
}

void ks__task_abort_state(ks_task_t *task) {
        if (task->env)
                ks_state_env_abort(task->env);
}

void *ks__task_store_named(const ks_task_t *task, const char *name, int *kind) {
        const ks_topology_t *t = task->topology;
        for (int i = 0; i < t->node_cnt; i++)
                if (task->stores[i] &&
                    !strcmp(t->nodes[i]->store->name, name)) {
                        *kind = (int)t->nodes[i]->store->kind;
                        return task->stores[i];
                }
        return NULL;
}
