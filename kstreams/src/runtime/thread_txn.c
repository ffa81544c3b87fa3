/* exactly_once_v2 on a stream thread: its transactional producer, the
 * commit protocol's transactional steps, and what a failed transaction
 * does.
 *
 * The commit (task/commit.c, with the ops made here): flush the caches ->
 * sinks -> flush the producer (the changelog positions are the
 * acknowledged ones) -> send the offsets, with their metadata, to the
 * transaction with the consumer's group metadata -> commit the
 * transaction -> only then commit the LMDB transactions. A crash before
 * the Kafka commit aborts both sides; a crash after it leaves the stores
 * behind their changelogs, and restoration replays the tail. A store is
 * never wiped because the process crashed.
 *
 * A transaction that cannot commit is aborted: its records are purged and
 * aborted on the broker, every task is closed without committing (its
 * LMDB transaction aborted, caches and buffered records dropped), the
 * input is rewound to the committed offsets and the tasks start again from
 * their stores and the committed stream times. A producer that is fenced
 * or hit a fatal error is destroyed and made again (init_transactions()
 * fences whatever still uses the id); the consumer stays in the group, and
 * the group metadata sent with every commit lets the broker refuse one
 * from a generation that is gone (KIP-447).
 * @locality stream thread */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log_int.h"
#include "runtime_int.h"

/* Aborts of transactions that failed on records that can never be
 * delivered, in a row, before the thread fails: replaying cannot help. */
#define POISON_ABORTS_MAX 5
/* Producer recreations within this window, with the last three in it,
 * mean another process keeps fencing us: it has our instance id. */
#define FENCE_WINDOW_MS 60000

void ks__txn_fail(ks_stream_thread_t *t,
                  bool producer_dead,
                  const char *fmt,
                  ...) {
        if (producer_dead)
                t->txn.producer_dead = true;
        t->txn.must_abort = true;
        if (t->txn.cause)
                return; /* the first cause is the one worth logging */
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        t->txn.cause = strdup(buf);
}

bool ks__txn_recovery_due(const ks_stream_thread_t *t) {
        return t->txn.must_abort || t->txn.producer_dead;
}

/* Classifies a failed transactional call. @returns true if it may be
 * called again (the error is then destroyed). */
static bool txn_error(ks_stream_thread_t *t,
                      rd_kafka_error_t *e,
                      const char *what,
                      int64_t deadline) {
        if (rd_kafka_error_is_retriable(e) && ks_now_ms() < deadline &&
            !atomic_load(&t->s->stop)) {
                rd_kafka_error_destroy(e);
                return true;
        }
        bool dead = rd_kafka_error_is_fatal(e);
        ks__txn_fail(t, dead, "%s: %s%s", what, rd_kafka_error_string(e),
                     dead ? " (fatal: the producer is made again)" : "");
        rd_kafka_error_destroy(e);
        return false;
}

ks_error_t *ks__txn_init(ks_stream_thread_t *t) {
        t->txn.timeout_ms  = ks__txn_timeout_ms(t->s->conf);
        ks_rate_limit_t rl = {0};
        for (;;) {
                rd_kafka_error_t *e =
                        rd_kafka_init_transactions(t->producer, 30000);
                if (!e)
                        return NULL;
                if (rd_kafka_error_is_retriable(e) &&
                    !atomic_load(&t->s->stop)) {
                        ks__log_limited(&rl, 10000, KS_LOG_WARNING,
                                        "thread %d: init_transactions for "
                                        "%s: %s; trying again",
                                        t->index, t->txn.id,
                                        rd_kafka_error_string(e));
                        rd_kafka_error_destroy(e);
                        continue;
                }
                ks_error_t *err = ks_error_new(
                        KS_ERR_KAFKA, "thread %d: init_transactions for %s: %s",
                        t->index, t->txn.id, rd_kafka_error_string(e));
                ks_error_set_fatal(err, rd_kafka_error_is_fatal(e));
                rd_kafka_error_destroy(e);
                return err;
        }
}

bool ks__txn_ensure_begun(ks_stream_thread_t *t) {
        if (t->txn.open)
                return true;
        if (ks__txn_recovery_due(t))
                return false;
        rd_kafka_error_t *e = rd_kafka_begin_transaction(t->producer);
        if (e) {
                ks__txn_fail(t, rd_kafka_error_is_fatal(e),
                             "begin_transaction: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                return false;
        }
        t->txn.open    = true;
        t->txn.started = ks_now_ms();
        return true;
}

static ks_error_t *not_committed(ks_stream_thread_t *t) {
        return ks_error_new(KS_ERR_KAFKA,
                            "thread %d: transaction not "
                            "committed: %s",
                            t->index,
                            t->txn.cause ? t->txn.cause : "it failed");
}

/* The commit protocol's step 3 in a transaction. Retriable failures are
 * tried again for up to half the transaction's timeout; anything else
 * leaves the abort to the loop. */
static ks_error_t *commit_txn(ks_stream_thread_t *t,
                              const ks_task_offset_t *offsets,
                              int cnt) {
        if (!t->txn.open && !cnt)
                return NULL; /* nothing sent, nothing consumed */
        if (!ks__txn_ensure_begun(t))
                return not_committed(t);
        int64_t deadline =
                ks_now_ms() +
                ks__thread_time_left(t, (int)(t->txn.timeout_ms / 2));
        if (cnt) {
                rd_kafka_topic_partition_list_t *l =
                        ks__thread_offset_list(offsets, cnt);
                rd_kafka_consumer_group_metadata_t *gm =
                        rd_kafka_consumer_group_metadata(t->consumer);
                rd_kafka_error_t *e;
                do {
                        int left = (int)(deadline - ks_now_ms());
                        e        = gm ? rd_kafka_send_offsets_to_transaction(
                                                t->producer, l, gm,
                                         left > 0 ? left : 1)
                                      : rd_kafka_error_new(
                                                RD_KAFKA_RESP_ERR__STATE,
                                                "not in the consumer group");
                } while (e && txn_error(t, e, "send_offsets_to_transaction",
                                        deadline));
                rd_kafka_consumer_group_metadata_destroy(gm);
                rd_kafka_topic_partition_list_destroy(l);
                if (e)
                        return not_committed(t);
        }
        rd_kafka_error_t *e;
        do {
                int left = (int)(deadline - ks_now_ms());
                e        = rd_kafka_commit_transaction(t->producer,
                                                left > 0 ? left : 1);
        } while (e && txn_error(t, e, "commit_transaction", deadline));
        if (e)
                return not_committed(t);
        t->txn.open          = false;
        t->txn.poison_aborts = 0;
        t->own.transactions_committed++;
        ks__thread_offsets_committed(t, offsets, cnt);
        return NULL;
}

static ks_error_t *commit_txn_op(void *opaque,
                                 const ks_task_offset_t *offsets,
                                 int cnt) {
        ks_stream_thread_t *t = opaque;
        int n;
        ks_task_offset_t *all = ks__thread_with_positions(t, offsets, cnt, &n);
        if (!all)
                return ks_error_new(KS_ERR_NOMEM, "commit: out of memory");
        ks_error_t *err = commit_txn(t, all, n);
        free(all);
        return err;
}

void ks__txn_commit_ops(ks_stream_thread_t *t, ks_commit_ops_t *ops) {
        *ops = (ks_commit_ops_t){.flush          = ks__thread_flush_op,
                                 .commit_offsets = commit_txn_op,
                                 .opaque         = t,
                                 .transactional  = true};
}

bool ks__txn_abort(ks_stream_thread_t *t) {
        if (!t->txn.open || t->txn.producer_dead) {
                t->txn.open = false;
                return !t->txn.producer_dead;
        }
        t->collector.purging = true;
        rd_kafka_error_t *e  = rd_kafka_abort_transaction(
                 t->producer, ks__thread_time_left(t, 30000));
        t->collector.purging = false;
        t->txn.open          = false;
        t->own.transactions_aborted++;
        if (e) {
                /* Not aborted here: the broker aborts it when the new
                 * producer's init_transactions() fences this one. */
                ks__txn_fail(t, true, "abort_transaction: %s",
                             rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                return false;
        }
        return true;
}

static ks_error_t *recreate_producer(ks_stream_thread_t *t) {
        char errstr[512];
        int64_t now = ks_now_ms();
        if (t->txn.recreated_at[0] &&
            now - t->txn.recreated_at[0] < FENCE_WINDOW_MS)
                return ks_error_new(
                        KS_ERR_KAFKA,
                        "thread %d: the transactional producer %s was made "
                        "again 3 times in %d s (last: %s): another process "
                        "uses this instance id (a copy of %s/"
                        "kstreams.instance.id?); the thread stops",
                        t->index, t->txn.id, FENCE_WINDOW_MS / 1000,
                        t->txn.cause ? t->txn.cause : "fenced",
                        t->app_state_dir);
        memmove(t->txn.recreated_at, t->txn.recreated_at + 1,
                sizeof(t->txn.recreated_at) - sizeof(int64_t));
        t->txn.recreated_at[2] = now;
        rd_kafka_destroy(t->producer);
        t->producer = t->collector.producer = NULL;
        t->producer = ks__thread_make_producer(t, errstr, sizeof(errstr));
        if (!t->producer)
                return ks_error_new(KS_ERR_KAFKA,
                                    "thread %d: cannot make a new producer: "
                                    "%s",
                                    t->index, errstr);
        t->collector.producer = t->producer;
        t->own.producers_recreated++;
        t->txn.open          = false;
        t->txn.producer_dead = false;
        return ks__txn_init(t);
}

ks_error_t *ks__txn_recover(ks_stream_thread_t *t) {
        char cause[512];
        snprintf(cause, sizeof(cause), "%s",
                 t->txn.cause ? t->txn.cause : "an error");
        bool dead = !ks__txn_abort(t);
        /* Limited: a broker away makes every turn try again. */
        ks__log_limited(&t->txn.rl, 1000, KS_LOG_WARNING,
                        "thread %d: transaction %s aborted (%s); its %d tasks "
                        "restart from the last commit%s",
                        t->index, t->txn.id, cause, t->task_cnt,
                        dead ? ", with a new producer" : "");
        /* No delivery report may point into a task once it is closed. */
        if (t->producer)
                ks__collector_purge(&t->collector);
        ks_error_t *err = dead ? recreate_producer(t) : NULL;
        if (err)
                return err;
        if (t->txn.poison_aborts > POISON_ABORTS_MAX)
                return ks_error_new(KS_ERR_KAFKA,
                                    "thread %d: %d transactions in a row "
                                    "aborted on records that cannot be "
                                    "delivered (last: %s); the thread stops",
                                    t->index, t->txn.poison_aborts, cause);
        t->txn.must_abort = false;
        free(t->txn.cause);
        t->txn.cause = NULL;
        err          = ks__tm_rewind(t, "an aborted transaction");
        if (err) {
                /* The group coordinator is away (a broker restart): the
                 * tasks are closed and their partitions paused; try again
                 * at the next turn rather than fail the thread. */
                ks__txn_fail(t, false, "%s", ks_error_message(err));
                ks_error_destroy(err);
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return NULL;
}

void ks__txn_close(ks_stream_thread_t *t) {
        if (t->txn.open && t->producer) {
                ks__txn_abort(t);
                /* Its purged records' reports, served as purged. */
                ks__collector_purge(&t->collector);
        }
        free(t->txn.cause);
        t->txn.cause = NULL;
}
