/* The streams instance: configuration checks, start, state, close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "conf_int.h"
#include "log_int.h"
#include "streams_int.h"

const char *ks_state_name(ks_state_t state) {
        static const char *const names[] = {"CREATED",     "REBALANCING",
                                            "RUNNING",     "PENDING_SHUTDOWN",
                                            "NOT_RUNNING", "ERROR"};
        return (unsigned)state < 6 ? names[state] : "UNKNOWN";
}

typedef struct apply_s {
        rd_kafka_conf_t *rdconf;
        char errstr[512];
} apply_t;

static int apply_one(const char *name, const char *value, void *opaque) {
        apply_t *a = opaque;
        char err[256];
        if (rd_kafka_conf_set(a->rdconf, name, value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
                snprintf(a->errstr, sizeof(a->errstr), "%s: %s", name, err);
                return 1;
        }
        return 0;
}

ks_error_t *ks__rdkafka_conf(const ks_conf_t *conf,
                             ks_conf_side_t side,
                             rd_kafka_conf_t *rdconf) {
        apply_t a = {.rdconf = rdconf};
        if (ks__conf_foreach_rdkafka(conf, side, apply_one, &a))
                return ks_error_new(KS_ERR_INVALID_ARG, "%s", a.errstr);
        return NULL;
}

ks_streams_t *ks_streams_new(const ks_topology_t *topology,
                             const ks_conf_t *conf,
                             char *errstr,
                             size_t errstr_size) {
        char v[512];
        if (!topology || !conf) {
                snprintf(errstr, errstr_size,
                         "ks_streams_new: a topology and a configuration are "
                         "required");
                return NULL;
        }
        if (!*ks__conf_str(conf, "application.id")) {
                snprintf(errstr, errstr_size, "application.id is required");
                return NULL;
        }
        if (ks_conf_get(conf, "bootstrap.servers", v, sizeof(v))) {
                snprintf(errstr, errstr_size, "bootstrap.servers is required");
                return NULL;
        }
        if (ks__conf_check_handlers(conf, errstr, errstr_size))
                return NULL;
        bool eos         = !strcmp(ks__conf_str(conf, "processing.guarantee"),
                                   "exactly_once_v2");
        int64_t interval = eos && !ks__conf_is_set(conf, "commit.interval.ms")
                                   ? KS_EOS_COMMIT_INTERVAL_MS
                                   : ks__conf_int(conf, "commit.interval.ms");
        if (eos && ks__check_txn_timeout(conf, interval, errstr, errstr_size))
                return NULL;
        ks_streams_t *s = calloc(1, sizeof(*s));
        if (!s || !(s->conf = ks_conf_dup(conf))) {
                free(s);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        s->topology           = topology;
        s->application_id     = ks__conf_str(s->conf, "application.id");
        s->eos                = eos;
        s->commit_interval_ms = interval;
        s->state              = KS_STATE_CREATED;
        atomic_init(&s->state_seen, KS_STATE_CREATED);
        pthread_mutex_init(&s->lock, NULL);
        ks__iq_init(&s->iq);
        atomic_init(&s->http_port, -1);
        return s;
}

void ks_streams_set_state_listener(ks_streams_t *s,
                                   ks_state_listener_fn *fn,
                                   void *opaque) {
        s->state_listener = fn;
        s->state_opaque   = opaque;
}

void ks_streams_set_error_handler(ks_streams_t *s,
                                  ks_error_handler_fn *fn,
                                  void *opaque) {
        s->error_handler = fn;
        s->error_opaque  = opaque;
}

/*
 * User callbacks (the state listener, the error handler) are never called
 * with s->lock held: a listener that calls ks_streams_state() or anything
 * else that takes it would deadlock. A transition is made under the lock
 * and queued there as an event; after unlocking, the thread that queued it
 * delivers the queue, unless another thread is delivering already, which
 * then delivers it too. Why that is safe:
 * - order: events are queued under s->lock in the order the transitions
 *   were made, and only one thread (the one that set s->delivering, under
 *   the lock) pops and calls them, front first;
 * - never two at once: s->delivering stays set while a callback runs, so a
 *   second thread only queues;
 * - none lost: the deliverer looks at the queue again under the lock after
 *   each call, and clears s->delivering in the same critical section in
 *   which it finds the queue empty, so an event is either seen by it or
 *   queued after it stopped, and then delivered by the thread queueing it;
 * - no nesting: a transition made while a callback runs (by another
 *   thread, or caused by the callback itself) is queued and delivered
 *   after that callback returns, never from inside it.
 * So ks__streams_set_state() may return before its listener ran, when
 * another thread is delivering; that thread is a stream thread (which
 * ks_streams_close() joins) or the caller of start/close, so every event is
 * delivered before a ks_streams_close() that succeeds returns.
 */

/* Called with s->lock held. Queues a callback call; takes ownership of
 * @p err. */
static void queue_event_locked(ks_streams_t *s,
                               ks_state_t new_state,
                               ks_state_t old_state,
                               ks_error_t *err) {
        ks_streams_event_t *ev = malloc(sizeof(*ev));
        if (!ev) {
                ks__log(KS_LOG_ERROR, "%s: out of memory: the %s is not called",
                        s->application_id,
                        err ? "error handler" : "state listener");
                ks_error_destroy(err);
                return;
        }
        ev->next      = NULL;
        ev->new_state = new_state;
        ev->old_state = old_state;
        ev->error     = err;
        if (s->events_tail)
                s->events_tail->next = ev;
        else
                s->events = ev;
        s->events_tail = ev;
}

/* Makes the queued callback calls, unless another thread is making them.
 * Called with no lock held. */
static void deliver_events(ks_streams_t *s) {
        pthread_mutex_lock(&s->lock);
        if (s->delivering) {
                pthread_mutex_unlock(&s->lock);
                return;
        }
        s->delivering = true;
        ks_streams_event_t *ev;
        while ((ev = s->events)) {
                s->events = ev->next;
                if (!s->events)
                        s->events_tail = NULL;
                pthread_mutex_unlock(&s->lock);
                if (ev->error)
                        s->error_handler(s, ev->error, s->error_opaque);
                else
                        s->state_listener(s, ev->new_state, ev->old_state,
                                          s->state_opaque);
                ks_error_destroy(ev->error);
                free(ev);
                pthread_mutex_lock(&s->lock);
        }
        s->delivering = false;
        pthread_mutex_unlock(&s->lock);
}

/* Called with s->lock held; the caller delivers the events after
 * unlocking. */
static void set_state_locked(ks_streams_t *s, ks_state_t state) {
        ks_state_t old = s->state;
        if (old == state)
                return;
        /* ERROR and NOT_RUNNING are final; PENDING_SHUTDOWN only ends. */
        if (old == KS_STATE_ERROR ||
            (old == KS_STATE_NOT_RUNNING && state != KS_STATE_ERROR) ||
            (old == KS_STATE_PENDING_SHUTDOWN &&
             state != KS_STATE_NOT_RUNNING && state != KS_STATE_ERROR))
                return;
        s->state = state;
        atomic_store(&s->state_seen, (int)state);
        ks__log(KS_LOG_INFO, "%s: state %s -> %s", s->application_id,
                ks_state_name(old), ks_state_name(state));
        if (s->state_listener)
                queue_event_locked(s, state, old, NULL);
}

void ks__streams_set_state(ks_streams_t *s, ks_state_t state) {
        pthread_mutex_lock(&s->lock);
        set_state_locked(s, state);
        pthread_mutex_unlock(&s->lock);
        deliver_events(s);
}

void ks__streams_update_state(ks_streams_t *s) {
        pthread_mutex_lock(&s->lock);
        if (s->state == KS_STATE_RUNNING || s->state == KS_STATE_REBALANCING) {
                bool all = true;
                for (int i = 0; i < s->thread_cnt; i++)
                        all = all && ks__stream_thread_assigned(s->threads[i]);
                set_state_locked(s,
                                 all ? KS_STATE_RUNNING : KS_STATE_REBALANCING);
        }
        pthread_mutex_unlock(&s->lock);
        deliver_events(s);
}

void ks__streams_thread_failed(ks_streams_t *s, ks_error_t *err) {
        ks__log(KS_LOG_ERROR, "%s: stream thread failed: %s", s->application_id,
                ks_error_message(err));
        pthread_mutex_lock(&s->lock);
        bool first = s->state != KS_STATE_ERROR;
        set_state_locked(s, KS_STATE_ERROR);
        atomic_store(&s->stop, true);
        if (first && s->error_handler)
                queue_event_locked(s, KS_STATE_ERROR, KS_STATE_ERROR, err);
        else
                ks_error_destroy(err);
        pthread_mutex_unlock(&s->lock);
        deliver_events(s);
}

ks_error_t *ks_streams_start(ks_streams_t *s) {
        char errstr[512];
        if (s->state != KS_STATE_CREATED)
                return ks_error_new(KS_ERR_STATE,
                                    "ks_streams_start: the instance is %s, "
                                    "not CREATED",
                                    ks_state_name(s->state));
        ks_error_t *err = ks__streams_prepare_topics(s);
        if (!err)
                err = ks__http_start(s); /* before the consumers' client.id */
        if (err)
                return err;
        char app_dir[1024];
        snprintf(app_dir, sizeof(app_dir), "%s/%s",
                 ks__conf_str(s->conf, "state.dir"), s->application_id);
        ks__state_cleanup(app_dir,
                          ks__conf_int(s->conf, "state.cleanup.delay.ms"),
                          ks_now_ms());
        if (s->eos && (err = ks__instance_id_load(app_dir, s->instance_id,
                                                  sizeof(s->instance_id))))
                return err;
        int n      = (int)ks__conf_int(s->conf, "num.stream.threads");
        s->threads = calloc((size_t)n, sizeof(*s->threads));
        if (!s->threads)
                return ks_error_new(KS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n; i++) {
                s->threads[i] =
                        ks__stream_thread_new(s, i, errstr, sizeof(errstr));
                if (!s->threads[i]) {
                        err = ks_error_new(KS_ERR_KAFKA, "%s", errstr);
                        goto err_threads;
                }
                s->thread_cnt++;
        }
        ks__streams_set_state(s, KS_STATE_REBALANCING);
        for (int i = 0; i < n; i++) {
                err = ks__stream_thread_start(s->threads[i]);
                if (err) {
                        atomic_store(&s->stop, true);
                        for (int j = 0; j < i; j++)
                                ks__stream_thread_join(s->threads[j]);
                        ks__streams_set_state(s, KS_STATE_ERROR);
                        goto err_threads;
                }
        }
        return NULL;

err_threads:
        ks__http_stop(s);
        for (int i = 0; i < s->thread_cnt; i++)
                ks__stream_thread_destroy(s->threads[i]);
        free(s->threads);
        s->threads    = NULL;
        s->thread_cnt = 0;
        return err;
}

ks_error_t *ks_streams_close(ks_streams_t *s, int timeout_ms) {
        if (!s->threads) {
                ks__streams_set_state(s, KS_STATE_NOT_RUNNING);
                return NULL;
        }
        ks__streams_set_state(s, KS_STATE_PENDING_SHUTDOWN);
        int64_t deadline = ks_now_ms() + timeout_ms;
        atomic_store(&s->close_deadline, deadline);
        atomic_store(&s->stop, true);
        bool late = false;
        while (atomic_load(&s->running_threads) > 0) {
                /* A thread that saw the deadline pass closes its tasks
                 * without committing and without waiting on the network;
                 * give that a moment (it took a few ms more than the
                 * timeout under ASan). */
                int64_t grace = atomic_load(&s->closed_late) ? 1000 : 0;
                if (ks_now_ms() > deadline + grace) {
                        late = true;
                        break;
                }
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        if (late)
                return ks_error_new(KS_ERR_TIMED_OUT,
                                    "ks_streams_close: threads still "
                                    "running after %d ms",
                                    timeout_ms);
        for (int i = 0; i < s->thread_cnt; i++)
                ks__stream_thread_join(s->threads[i]);
        ks__streams_set_state(s, KS_STATE_NOT_RUNNING);
        if (atomic_load(&s->closed_late))
                return ks_error_new(KS_ERR_TIMED_OUT,
                                    "ks_streams_close: closed after %d ms "
                                    "without committing the last records "
                                    "(not delivered in time): they will be "
                                    "processed again after a restart",
                                    timeout_ms);
        return NULL;
}

void ks_streams_destroy(ks_streams_t *s) {
        if (!s)
                return;
        ks__http_stop(s); /* its requests read the threads */
        if (s->threads) {
                atomic_store(&s->stop, true);
                for (int i = 0; i < s->thread_cnt; i++) {
                        ks__stream_thread_join(s->threads[i]);
                        ks__stream_thread_destroy(s->threads[i]);
                }
                free(s->threads);
        }
        for (int i = 0; i < s->subscription_cnt; i++)
                free(s->subscription[i]);
        free(s->subscription);
        while (s->events) { /* none: each was delivered by its queuer */
                ks_streams_event_t *ev = s->events;
                s->events              = ev->next;
                ks_error_destroy(ev->error);
                free(ev);
        }
        ks__iq_fini(&s->iq); /* the threads unregistered their tasks */
        pthread_mutex_destroy(&s->lock);
        ks_conf_destroy(s->conf);
        free(s);
}

ks_state_t ks_streams_state(const ks_streams_t *s) {
        ks_streams_t *m = (ks_streams_t *)s;
        pthread_mutex_lock(&m->lock);
        ks_state_t st = s->state;
        pthread_mutex_unlock(&m->lock);
        return st;
}

int ks_streams_http_port(const ks_streams_t *s) {
        return atomic_load(&((ks_streams_t *)s)->http_port);
}
