/* The changelog reader: one restore consumer per stream thread, all the
 * restoring stores' changelog partitions assigned to it together, fed from
 * the thread's loop a batch at a time (so a big store does not stop the
 * thread's running tasks, nor its polls). A store is restored when the
 * consumer's position reaches the end offset taken when it began, as Kafka
 * Streams' StoreChangelogReader judges it: not when a delivered record
 * does, since a changelog may end in a transaction marker, aborted records
 * or records compacted away, none of which is ever delivered. A checkpoint
 * past the end means the changelog was truncated or recreated: the store
 * is corrupt and is rebuilt (Kafka Streams' TaskCorruptedException). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log_int.h"
#include "runtime_int.h"

static bool set(rd_kafka_conf_t *c, const char *name, const char *value) {
        char errstr[256];
        return rd_kafka_conf_set(c, name, value, errstr, sizeof(errstr)) ==
               RD_KAFKA_CONF_OK;
}

ks_error_t *ks__reader_init(ks_changelog_reader_t *r, ks_stream_thread_t *t) {
        char errstr[512], group[300], client_id[300];
        ks_streams_t *s    = t->s;
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        ks_error_t *err = ks__rdkafka_conf(s->conf, KS_CONF_SIDE_CONSUMER, c);
        snprintf(group, sizeof(group), "%s-restore", s->application_id);
        snprintf(client_id, sizeof(client_id), "%s-StreamThread-%d-restore",
                 s->application_id, t->index + 1);
        /* No group membership and no commits: it reads changelogs from the
         * checkpoints it is given. Only committed records (exactly-once
         * changelogs end in markers; aborted records never count), and an
         * EOF event at each partition's end, which is how position is
         * known past records it never delivers. */
        if (!err &&
            !(set(c, "group.id", group) && set(c, "client.id", client_id) &&
              set(c, "enable.auto.commit", "false") &&
              set(c, "enable.auto.offset.store", "false") &&
              set(c, "auto.offset.reset", "earliest") &&
              set(c, "enable.partition.eof", "true") &&
              set(c, "isolation.level", "read_committed") &&
              set(c, "queued.min.messages", "100000")))
                err = ks_error_new(KS_ERR_KAFKA, "restore consumer: bad conf");
        if (!err && !(r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr,
                                                 sizeof(errstr))))
                err = ks_error_new(KS_ERR_KAFKA, "restore consumer: %s",
                                   errstr);
        if (err) {
                rd_kafka_conf_destroy(c);
                return err;
        }
        r->batch_records = ks__conf_int(s->conf, "restore.batch.records");
        return NULL;
}

void ks__reader_fini(ks_changelog_reader_t *r) {
        for (int i = 0; i < r->cnt; i++)
                free(r->parts[i].changelog);
        free(r->parts);
        /* It never joined a group: nothing to leave, nothing to wait for. */
        if (r->consumer)
                rd_kafka_destroy_flags(r->consumer,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        memset(r, 0, sizeof(*r));
}

/* The changelog's low and high watermarks. Leadership may be moving (a
 * new topic, a broker restart): what can succeed later is retried for up
 * to a minute. */
static rd_kafka_resp_err_t watermarks(ks_stream_thread_t *t,
                                      const char *topic,
                                      int32_t p,
                                      int64_t *lo,
                                      int64_t *hi) {
        rd_kafka_resp_err_t err;
        for (int attempt = 0;; attempt++) {
                err = rd_kafka_query_watermark_offsets(t->reader.consumer,
                                                       topic, p, lo, hi, 10000);
                bool again =
                        err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                        err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                        err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                        err == RD_KAFKA_RESP_ERR__TRANSPORT;
                if (!err || !again || attempt >= 60 || atomic_load(&t->s->stop))
                        return err;
                /* A leader that moved (a broker restarted): librdkafka
                 * 2.0.2 keeps asking the old one until its metadata is
                 * refreshed, which this asks for. */
                rd_kafka_topic_t *rkt =
                        rd_kafka_topic_new(t->reader.consumer, topic, NULL);
                const struct rd_kafka_metadata *md = NULL;
                if (rkt &&
                    !rd_kafka_metadata(t->reader.consumer, 0, rkt, &md, 5000))
                        rd_kafka_metadata_destroy(md);
                if (rkt)
                        rd_kafka_topic_destroy(rkt);
                struct timespec ts = {1, 0};
                nanosleep(&ts, NULL);
        }
}

static restoring_t *part_add(ks_changelog_reader_t *r) {
        if (r->cnt == r->cap) {
                int cap         = r->cap ? r->cap * 2 : 8;
                restoring_t *np = realloc(r->parts, (size_t)cap * sizeof(*np));
                if (!np)
                        return NULL;
                r->parts = np;
                r->cap   = cap;
        }
        restoring_t *rp = &r->parts[r->cnt++];
        memset(rp, 0, sizeof(*rp));
        return rp;
}

ks_restore_add_t ks__reader_add(ks_stream_thread_t *t,
                                managed_task_t *mt,
                                ks_error_t **errp) {
        ks_changelog_reader_t *r = &t->reader;
        int32_t p                = mt->partition;
        int added                = 0;
        for (int i = 0; i < ks__task_store_count(mt->task); i++) {
                ks_task_store_info_t info;
                ks__task_store_info(mt->task, i, &info);
                int64_t lo, hi;
                rd_kafka_resp_err_t err =
                        watermarks(t, info.changelog, p, &lo, &hi);
                if (err) {
                        *errp = ks_error_new(
                                KS_ERR_KAFKA,
                                "task %s: restoring %s: watermarks of "
                                "%s[%" PRId32 "]: %s",
                                ks__task_id(mt->task), info.name,
                                info.changelog, p, rd_kafka_err2str(err));
                        ks__reader_remove(t, mt);
                        return KS_RESTORE_ADD_FAILED;
                }
                if (info.checkpoint > hi || info.committed > hi) {
                        ks__log(KS_LOG_WARNING,
                                "task %s: store %s has checkpoint %" PRId64
                                " (last commit at %" PRId64
                                ") but its changelog %s[%" PRId32
                                "] ends at %" PRId64
                                " (truncated or recreated): the store is "
                                "wiped and rebuilt from the changelog",
                                ks__task_id(mt->task), info.name,
                                info.checkpoint, info.committed, info.changelog,
                                p, hi);
                        ks__reader_remove(t, mt);
                        return KS_RESTORE_CORRUPT;
                }
                int64_t from = info.checkpoint >= lo ? info.checkpoint : lo;
                if (from >= hi)
                        continue; /* up to date */
                /* What the last commit covered: what its metadata says,
                 * or the checkpoint if a later commit moved only that (no
                 * input offset moved). Unknown: everything. */
                /* Under exactly_once_v2 everything: read_committed shows
                 * only committed records, with or without an input offset
                 * (a punctuation's), and never aborted ones. */
                int64_t apply_end = hi;
                if (!t->s->eos && info.committed >= 0)
                        apply_end = info.committed > info.checkpoint
                                            ? info.committed
                                            : info.checkpoint;
                restoring_t *rp = part_add(r);
                char *name      = strdup(info.changelog);
                if (!rp || !name) {
                        free(name);
                        if (rp)
                                r->cnt--;
                        *errp = ks_error_new(KS_ERR_NOMEM, "out of memory");
                        ks__reader_remove(t, mt);
                        return KS_RESTORE_ADD_FAILED;
                }
                *rp = (restoring_t){.mt        = mt,
                                    .store     = i,
                                    .changelog = name,
                                    .partition = p,
                                    .end       = hi,
                                    .apply_end = apply_end,
                                    .position  = from};
                added++;
                ks__log(KS_LOG_INFO,
                        "task %s: restoring store %s from %s[%" PRId32
                        "], offsets %" PRId64 "..%" PRId64
                        " (checkpoint %" PRId64 ", committed up to %" PRId64
                        ")",
                        ks__task_id(mt->task), info.name, info.changelog, p,
                        from, hi, info.checkpoint, apply_end);
        }
        if (!added)
                return KS_RESTORE_UP_TO_DATE;
        if (!r->started)
                r->started = r->last_log = ks_now_ms();
        r->reassign = true;
        return KS_RESTORE_ADDED;
}

void ks__reader_remove(ks_stream_thread_t *t, managed_task_t *mt) {
        ks_changelog_reader_t *r = &t->reader;
        for (int i = 0; i < r->cnt;) {
                if (r->parts[i].mt != mt) {
                        i++;
                        continue;
                }
                free(r->parts[i].changelog);
                r->parts[i] = r->parts[--r->cnt];
                r->reassign = true;
        }
}

bool ks__reader_active(const ks_changelog_reader_t *r) {
        for (int i = 0; i < r->cnt; i++)
                if (!r->parts[i].done)
                        return true;
        return false;
}

int64_t ks__reader_remaining(const ks_changelog_reader_t *r) {
        int64_t n = 0;
        for (int i = 0; i < r->cnt; i++)
                if (!r->parts[i].done && r->parts[i].end > r->parts[i].position)
                        n += r->parts[i].end - r->parts[i].position;
        return n;
}

static restoring_t *find(ks_changelog_reader_t *r,
                         const char *topic,
                         int32_t partition) {
        for (int i = 0; i < r->cnt; i++)
                if (!r->parts[i].done && r->parts[i].partition == partition &&
                    !strcmp(r->parts[i].changelog, topic))
                        return &r->parts[i];
        return NULL;
}

/* Assigns the restoring partitions, each from its position. */
static ks_error_t *reassign(ks_changelog_reader_t *r) {
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(r->cnt + 1);
        for (int i = 0; i < r->cnt; i++)
                if (!r->parts[i].done)
                        rd_kafka_topic_partition_list_add(
                                l, r->parts[i].changelog, r->parts[i].partition)
                                ->offset = r->parts[i].position;
        rd_kafka_resp_err_t err =
                rd_kafka_assign(r->consumer, l->cnt ? l : NULL);
        rd_kafka_topic_partition_list_destroy(l);
        r->reassign = false;
        return err ? ks_error_new(KS_ERR_KAFKA, "restore consumer: assign: %s",
                                  rd_kafka_err2str(err))
                   : NULL;
}

/* The store's position is the end: commit it with that checkpoint. */
static ks_error_t *finish(ks_stream_thread_t *t, restoring_t *rp) {
        rp->done = true;
        /* Undone records leave the store at apply_end: a restart before
         * the next commit undoes them again (their undoing may not have
         * reached the broker). */
        int64_t at      = rp->apply_end < rp->end ? rp->apply_end : rp->end;
        ks_error_t *err = ks__task_restore_commit(rp->mt->task, rp->store, at);
        ks_task_store_info_t info;
        ks__task_store_info(rp->mt->task, rp->store, &info);
        if (rp->apply_end < rp->end)
                ks__log(KS_LOG_WARNING,
                        "task %s: store %s: changelog records %" PRId64
                        "..%" PRId64
                        " were written after the last commit by a run that "
                        "did not commit them; their keys were written back "
                        "with the store's committed values",
                        ks__task_id(rp->mt->task), info.name, rp->apply_end,
                        rp->end);
        ks__log(KS_LOG_INFO, "task %s: restored store %s up to offset %" PRId64,
                ks__task_id(rp->mt->task), info.name, at);
        t->reader.reassign = true;
        return err;
}

/* Position past what was delivered: the consumer's fetch position, moved
 * by control records and compaction gaps as well. */
static ks_error_t *check_positions(ks_stream_thread_t *t) {
        ks_changelog_reader_t *r = &t->reader;
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(r->cnt + 1);
        for (int i = 0; i < r->cnt; i++)
                if (!r->parts[i].done)
                        rd_kafka_topic_partition_list_add(
                                l, r->parts[i].changelog,
                                r->parts[i].partition);
        ks_error_t *err = NULL;
        if (l->cnt && !rd_kafka_position(r->consumer, l)) {
                for (int i = 0; i < l->cnt && !err; i++) {
                        restoring_t *rp = find(r, l->elems[i].topic,
                                               l->elems[i].partition);
                        if (rp && l->elems[i].offset > rp->position)
                                rp->position = l->elems[i].offset;
                        if (rp && rp->position >= rp->end)
                                err = finish(t, rp);
                }
        }
        rd_kafka_topic_partition_list_destroy(l);
        return err;
}

static ks_error_t *apply(ks_stream_thread_t *t,
                         rd_kafka_message_t *m,
                         restoring_t **last) {
        ks_changelog_reader_t *r = &t->reader;
        /* Records come in runs of one partition: look up only on a change. */
        restoring_t *rp = *last;
        if (!rp || rp->done || rp->partition != m->partition ||
            strcmp(rp->changelog, rd_kafka_topic_name(m->rkt)))
                rp = *last = find(r, rd_kafka_topic_name(m->rkt), m->partition);
        if (!rp)
                return NULL; /* a partition that finished or left */
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* m->offset is where the fetcher stands: past markers. */
                if (m->offset > rp->position)
                        rp->position = m->offset;
                return rp->position >= rp->end ? finish(t, rp) : NULL;
        }
        if (m->err)
                return ks_error_new(KS_ERR_KAFKA,
                                    "restoring %s[%" PRId32 "]: %s",
                                    rp->changelog, rp->partition,
                                    rd_kafka_message_errstr(m));
        ks_error_t *err = NULL;
        /* Records past the end taken at the start are left for the task's
         * own changes: none should exist, as only this task writes it. */
        if (m->offset < rp->apply_end) {
                err = ks__task_restore_put(rp->mt->task, rp->store,
                                           (ks_bytes_t){m->key, m->key_len},
                                           (ks_bytes_t){m->payload, m->len});
                r->restored++;
                t->own.records_restored++;
                if (!err && ++rp->since_commit >= r->batch_records) {
                        rp->since_commit = 0;
                        err = ks__task_restore_commit(rp->mt->task, rp->store,
                                                      m->offset + 1);
                }
        } else if (m->offset < rp->end) {
                rd_kafka_timestamp_type_t tstype;
                err = ks__task_compensate(
                        rp->mt->task, rp->store,
                        (ks_bytes_t){m->key, m->key_len},
                        rd_kafka_message_timestamp(m, &tstype));
                r->undone++;
                t->own.changelog_records_undone++;
        }
        rp->position = m->offset + 1;
        if (!err && rp->position >= rp->end)
                err = finish(t, rp);
        return err;
}

static void log_progress(ks_stream_thread_t *t, int64_t now) {
        ks_changelog_reader_t *r = &t->reader;
        if (now - r->last_log < 5000)
                return;
        r->last_log  = now;
        int64_t left = ks__reader_remaining(r);
        double rate =
                (double)r->restored * 1000.0 / (double)(now - r->started + 1);
        int stores = 0;
        for (int i = 0; i < r->cnt; i++)
                stores += !r->parts[i].done;
        ks__log(KS_LOG_INFO,
                "thread %d: restoring %d stores: %" PRId64
                " records done, %" PRId64
                " remaining, %.0f records/s, about %.0f s left",
                t->index, stores, r->restored, left, rate,
                rate > 0 ? (double)left / rate : -1.0);
}

ks_error_t *ks__reader_step(ks_stream_thread_t *t, int timeout_ms) {
        ks_changelog_reader_t *r = &t->reader;
        ks_error_t *err          = NULL;
        if (!ks__reader_active(r))
                return NULL;
        if (r->reassign && (err = reassign(r)))
                return err;
        int64_t t0        = ks_now_ms();
        restoring_t *last = NULL;
        for (int i = 0; i < t->batch_size * 10 && !err; i++) {
                rd_kafka_message_t *m =
                        rd_kafka_consumer_poll(r->consumer, i ? 0 : timeout_ms);
                if (!m)
                        break;
                err = apply(t, m, &last);
                rd_kafka_message_destroy(m);
                /* A store finished: the set changes (reassigned next). */
                if (r->reassign)
                        break;
        }
        if (!err && ks__reader_active(r))
                err = check_positions(t);
        int64_t now = ks_now_ms();
        t->own.restore_ms += (uint64_t)(now - t0);
        if (!ks__reader_active(r)) {
                if (r->restored)
                        ks__log(KS_LOG_INFO,
                                "thread %d: restoration done: %" PRId64
                                " records in %" PRId64 " ms",
                                t->index, r->restored, now - r->started);
                r->started = r->restored = 0;
                rd_kafka_assign(r->consumer, NULL);
        } else {
                log_progress(t, now);
        }
        return err;
}

bool ks__reader_task_done(ks_stream_thread_t *t, managed_task_t *mt) {
        ks_changelog_reader_t *r = &t->reader;
        for (int i = 0; i < r->cnt; i++)
                if (r->parts[i].mt == mt && !r->parts[i].done)
                        return false;
        ks__reader_remove(t, mt);
        return true;
}
