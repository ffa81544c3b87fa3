/* Snapshots: other threads read an environment's last committed state
 * while its owner keeps writing, committing, dropping expired segments and
 * growing the map. They never see uncommitted writes, never a torn commit,
 * and never go backwards. */
#include <ftw.h>
#include <kstreams/store.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ks_check.h"

#define B(s) ((ks_bytes_t){(s), sizeof(s) - 1})
#define CK_OK(call)                                                            \
        do {                                                                   \
                ks_error_t *e_ = (call);                                       \
                ck_assert_msg(!e_, "%s: %s", #call,                            \
                              e_ ? ks_error_message(e_) : "");                 \
        } while (0)

static int rm_one(const char *p,
                  const struct stat *sb,
                  int flag,
                  struct FTW *ftw) {
        (void)sb, (void)flag, (void)ftw;
        return remove(p);
}

static char dir[64];

static void setup(void) {
        strcpy(dir, "/tmp/ks_store_snapshot_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ks_bytes_t num(char *buf, int64_t v) {
        int n = snprintf(buf, 24, "%lld", (long long)v);
        return (ks_bytes_t){buf, (size_t)n};
}

static int64_t parse(ks_bytes_t v) {
        char buf[32];
        ck_assert_uint_lt(v.len, sizeof(buf));
        memcpy(buf, v.data, v.len);
        buf[v.len] = '\0';
        return strtoll(buf, NULL, 10);
}

/* The value of @p key in a new snapshot of @p env; -1 when absent. */
static int64_t snap_get(ks_state_env_t *env,
                        const char *store,
                        ks_bytes_t key) {
        ks_state_snapshot_t *snap;
        ks_bytes_t v;
        bool found;
        CK_OK(ks_state_env_snapshot(env, &snap));
        CK_OK(ks_state_snapshot_kv_get(snap, store, key, &v, &found));
        int64_t r = found ? parse(v) : -1;
        ks_state_snapshot_close(snap);
        return r;
}

/* ---- one reader, step by step ----------------------------------------- */

typedef struct stepper_s {
        ks_state_env_t *env;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int step;  /* set by the main thread */
        int done;  /* steps the reader has finished */
        int64_t a; /* what it read */
        int64_t b;
        int64_t held_a; /* read again through a snapshot held across */
        ks_state_snapshot_t *held;
} stepper_t;

static void wait_step(stepper_t *st, int step) {
        pthread_mutex_lock(&st->mu);
        while (st->step < step)
                pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
}

static void finish_step(stepper_t *st) {
        pthread_mutex_lock(&st->mu);
        st->done++;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
}

static void run_step(stepper_t *st, int step) {
        pthread_mutex_lock(&st->mu);
        st->step = step;
        pthread_cond_broadcast(&st->cv);
        while (st->done < step)
                pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
}

static void *stepper_main(void *arg) {
        stepper_t *st = arg;
        ks_bytes_t v;
        bool found;
        /* 1: read a and b; keep a snapshot open. */
        wait_step(st, 1);
        st->a = snap_get(st->env, "counts", B("a"));
        st->b = snap_get(st->env, "counts", B("b"));
        CK_OK(ks_state_env_snapshot(st->env, &st->held));
        finish_step(st);
        /* 2: after the owner committed again: the held snapshot has not
         * moved, a new one has. */
        wait_step(st, 2);
        CK_OK(ks_state_snapshot_kv_get(st->held, "counts", B("a"), &v, &found));
        st->held_a = found ? parse(v) : -1;
        ks_state_snapshot_close(st->held);
        st->a = snap_get(st->env, "counts", B("a"));
        st->b = snap_get(st->env, "counts", B("b"));
        finish_step(st);
        return NULL;
}

START_TEST(a_reader_sees_committed_data_not_uncommitted_writes) {
        ks_state_env_t *env;
        ks_kv_store_t *kv;
        CK_OK(ks_state_env_open(dir, 0, &env));
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        CK_OK(ks_kv_store_put(kv, B("a"), B("1")));
        CK_OK(ks_state_env_commit(env));
        CK_OK(ks_kv_store_put(kv, B("a"), B("2")));
        CK_OK(ks_kv_store_put(kv, B("b"), B("7")));

        stepper_t st = {.env = env};
        pthread_mutex_init(&st.mu, NULL);
        pthread_cond_init(&st.cv, NULL);
        pthread_t tid;
        ck_assert_int_eq(pthread_create(&tid, NULL, stepper_main, &st), 0);
        run_step(&st, 1);
        ck_assert_int_eq(st.a, 1);  /* not the uncommitted 2 */
        ck_assert_int_eq(st.b, -1); /* b is not committed at all */

        /* The owner commits while the reader holds a snapshot: no handle
         * changes, so the commit does not wait for it. */
        int64_t t0 = now_ms();
        CK_OK(ks_state_env_commit(env));
        ck_assert_int_lt(now_ms() - t0, 1000);
        run_step(&st, 2);
        ck_assert_int_eq(st.held_a, 1);
        ck_assert_int_eq(st.a, 2);
        ck_assert_int_eq(st.b, 7);
        pthread_join(tid, NULL);
        ks_state_env_close(env);
}
END_TEST

/* ---- a writer and readers at full speed ------------------------------- */

#define KEYS 50

typedef struct race_s {
        ks_state_env_t *env;
        atomic_llong committed; /* after ks_state_env_commit() returned */
        atomic_llong upper;     /* before it was called */
        atomic_bool writing;
        atomic_int snapshots;
        int64_t final_value;
} race_t;

/* In a snapshot where a = n, key k<j> holds the last i <= n with
 * i % KEYS == j: every commit is whole and nothing newer shows. */
static void check_keys(ks_state_snapshot_t *snap, int64_t n) {
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        int seen = 0;
        CK_OK(ks_state_snapshot_kv_range(snap, "counts", B("k"), B("k~"), &it));
        while (ks_store_iter_next(it, &k, &v)) {
                char kb[16];
                ck_assert_uint_lt(k.len, sizeof(kb));
                memcpy(kb, k.data, k.len);
                kb[k.len]    = '\0';
                int64_t j    = atoll(kb + 1);
                int64_t want = n - ((n - j) % KEYS + KEYS) % KEYS;
                ck_assert_msg(parse(v) == want,
                              "a=%lld: %s=%lld, expected %lld", (long long)n,
                              kb, (long long)parse(v), (long long)want);
                seen++;
        }
        ck_assert_ptr_null(ks_store_iter_error(it));
        ks_store_iter_destroy(it);
        ck_assert_int_eq(seen, n >= KEYS ? KEYS : (int)n);
}

static void *race_reader(void *arg) {
        race_t *r     = arg;
        int64_t last  = 0;
        bool finished = false;
        while (!finished) {
                finished  = !atomic_load(&r->writing);
                int64_t c = atomic_load(&r->committed);
                ks_state_snapshot_t *snap;
                ks_bytes_t v;
                bool fa, fb;
                int64_t a = 0, b = 0;
                CK_OK(ks_state_env_snapshot(r->env, &snap));
                CK_OK(ks_state_snapshot_kv_get(snap, "counts", B("a"), &v,
                                               &fa));
                if (fa)
                        a = parse(v);
                CK_OK(ks_state_snapshot_kv_get(snap, "counts", B("b"), &v,
                                               &fb));
                if (fb)
                        b = parse(v);
                int64_t u = atomic_load(&r->upper);
                ck_assert_int_eq(fa, fb);
                ck_assert_msg(a == b, "a torn commit: a=%lld b=%lld",
                              (long long)a, (long long)b);
                ck_assert_msg(a >= c && a <= u,
                              "a=%lld outside [committed %lld, upper %lld]",
                              (long long)a, (long long)c, (long long)u);
                ck_assert_int_ge(a, last);
                last = a;
                if (a)
                        check_keys(snap, a);
                ks_state_snapshot_close(snap);
                atomic_fetch_add(&r->snapshots, 1);
        }
        /* The writer's last writes were never committed. */
        ck_assert_int_eq(last, r->final_value);
        return NULL;
}

START_TEST(readers_see_whole_commits_only_while_the_owner_writes) {
        race_t r = {0};
        ks_kv_store_t *kv, *blobs;
        char buf[24], blob[1024];
        const int n = 4000;
        memset(blob, 'x', sizeof(blob));
        /* A 1 MiB map: it grows several times while readers read. */
        CK_OK(ks_state_env_open(dir, (size_t)1 << 20, &r.env));
        CK_OK(ks_kv_store_open(r.env, "counts", &kv));
        CK_OK(ks_kv_store_open(r.env, "blobs", &blobs));
        atomic_store(&r.writing, true);
        pthread_t readers[3];
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(
                        pthread_create(&readers[i], NULL, race_reader, &r), 0);
        for (int64_t i = 1; i <= n; i++) {
                char kb[16];
                snprintf(kb, sizeof(kb), "k%lld", (long long)(i % KEYS));
                CK_OK(ks_kv_store_put(kv, B("a"), num(buf, i)));
                CK_OK(ks_kv_store_put(kv, (ks_bytes_t){kb, strlen(kb)},
                                      num(buf, i)));
                CK_OK(ks_kv_store_put(blobs, num(buf, i),
                                      (ks_bytes_t){blob, sizeof(blob)}));
                CK_OK(ks_kv_store_put(kv, B("b"), num(buf, i)));
                if (i % 7 == 0) {
                        atomic_store(&r.upper, i);
                        CK_OK(ks_state_env_commit(r.env));
                        atomic_store(&r.committed, i);
                        r.final_value = i;
                }
        }
        /* An uncommitted tail the readers must never see. */
        CK_OK(ks_kv_store_put(kv, B("a"), num(buf, n + 1)));
        CK_OK(ks_kv_store_put(kv, B("b"), num(buf, n + 1)));
        atomic_store(&r.writing, false);
        for (int i = 0; i < 3; i++)
                pthread_join(readers[i], NULL);
        fprintf(stderr, "%d snapshots beside %d commits, map %zu bytes\n",
                atomic_load(&r.snapshots), n / 7, ks_state_env_map_size(r.env));
        ck_assert_uint_gt(ks_state_env_map_size(r.env), (size_t)1 << 20);
        ck_assert_int_gt(atomic_load(&r.snapshots), 3);
        ks_state_env_close(r.env);
}
END_TEST

/* ---- window segments come and go under readers ------------------------- */

#define STEP 10

typedef struct wrace_s {
        ks_state_env_t *env;
        atomic_llong committed; /* newest window start committed */
        atomic_bool writing;
        atomic_int fetches;
} wrace_t;

static void *window_reader(void *arg) {
        wrace_t *r    = arg;
        bool finished = false;
        while (!finished) {
                finished  = !atomic_load(&r->writing);
                int64_t c = atomic_load(&r->committed);
                ks_state_snapshot_t *snap;
                ks_store_iter_t *it;
                ks_bytes_t k, v;
                int64_t start, first = -1, prev = -1;
                CK_OK(ks_state_env_snapshot(r->env, &snap));
                CK_OK(ks_state_snapshot_window_fetch(snap, "w", B("key"), 0,
                                                     INT64_MAX, &it));
                while (ks_store_iter_next_window(it, &k, &start, &v)) {
                        ck_assert_int_eq(parse(v), start);
                        /* Contiguous: only the oldest end may be missing. */
                        if (prev >= 0)
                                ck_assert_msg(start == prev + STEP,
                                              "window %lld after %lld",
                                              (long long)start,
                                              (long long)prev);
                        else
                                first = start;
                        prev = start;
                }
                ck_assert_ptr_null(ks_store_iter_error(it));
                ks_store_iter_destroy(it);
                ks_state_snapshot_close(snap);
                if (c > 0) {
                        ck_assert_int_ge(prev, c);
                        /* Retention 1000: at most 100 windows, and the ones
                         * of live segments are all there. */
                        ck_assert_int_le(prev - first, 1000);
                }
                atomic_fetch_add(&r->fetches, 1);
        }
        return NULL;
}

START_TEST(window_segments_dropped_and_created_under_readers) {
        wrace_t r = {0};
        ks_window_store_t *w;
        char buf[24];
        CK_OK(ks_state_env_open(dir, (size_t)1 << 20, &r.env));
        CK_OK(ks_window_store_open(r.env, "w", 1000, 100, &w));
        atomic_store(&r.writing, true);
        pthread_t readers[2];
        for (int i = 0; i < 2; i++)
                ck_assert_int_eq(
                        pthread_create(&readers[i], NULL, window_reader, &r),
                        0);
        for (int64_t t = 0; t <= 30000; t += STEP) {
                CK_OK(ks_window_store_put(w, B("key"), t, num(buf, t)));
                if ((t / STEP) % 13 == 0) {
                        CK_OK(ks_state_env_commit(r.env));
                        atomic_store(&r.committed, t);
                }
        }
        CK_OK(ks_state_env_commit(r.env));
        atomic_store(&r.writing, false);
        for (int i = 0; i < 2; i++)
                pthread_join(readers[i], NULL);
        fprintf(stderr, "%d window fetches\n", atomic_load(&r.fetches));
        ck_assert_int_gt(atomic_load(&r.fetches), 2);
        ks_state_env_close(r.env);
}
END_TEST

/* ---- reopening, errors, lifetime ---------------------------------------- */

static void *read_reopened(void *arg) {
        ks_state_env_t *env = arg;
        ks_state_snapshot_t *snap;
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        int64_t start;
        ck_assert_int_eq(snap_get(env, "counts", B("a")), 5);
        CK_OK(ks_state_env_snapshot(env, &snap));
        CK_OK(ks_state_snapshot_window_fetch(snap, "w", B("key"), 0, 1000,
                                             &it));
        ck_assert(ks_store_iter_next_window(it, &k, &start, &v));
        ck_assert_int_eq(start, 500);
        ck_assert_int_eq(parse(v), 9);
        ck_assert(!ks_store_iter_next_window(it, &k, &start, &v));
        ks_store_iter_destroy(it);
        ks_state_snapshot_close(snap);
        return NULL;
}

START_TEST(a_reopened_environment_is_readable_before_its_first_commit) {
        ks_state_env_t *env;
        ks_kv_store_t *kv;
        ks_window_store_t *w;
        CK_OK(ks_state_env_open(dir, 0, &env));
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        CK_OK(ks_window_store_open(env, "w", 10000, 1000, &w));
        CK_OK(ks_kv_store_put(kv, B("a"), B("5")));
        CK_OK(ks_window_store_put(w, B("key"), 500, B("9")));
        CK_OK(ks_state_env_commit(env));
        ks_state_env_close(env);

        /* No commit since the open: the DBs found on disk are readable. */
        CK_OK(ks_state_env_open(dir, 0, &env));
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        CK_OK(ks_window_store_open(env, "w", 10000, 1000, &w));
        pthread_t tid;
        ck_assert_int_eq(pthread_create(&tid, NULL, read_reopened, env), 0);
        pthread_join(tid, NULL);
        ks_state_env_close(env);
}
END_TEST

START_TEST(unknown_stores_and_wrong_kinds_are_errors) {
        ks_state_env_t *env;
        ks_kv_store_t *kv;
        ks_window_store_t *w;
        ks_state_snapshot_t *snap;
        ks_store_iter_t *it;
        ks_bytes_t v;
        bool found;
        CK_OK(ks_state_env_open(dir, 0, &env));
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        CK_OK(ks_window_store_open(env, "w", 10000, 1000, &w));
        CK_OK(ks_state_env_snapshot(env, &snap));
        /* Open but never written: empty, not an error. */
        CK_OK(ks_state_snapshot_kv_get(snap, "counts", B("a"), &v, &found));
        ck_assert(!found);
        ks_error_t *e =
                ks_state_snapshot_kv_get(snap, "nope", B("a"), &v, &found);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_NOT_FOUND);
        ck_assert_msg(strstr(ks_error_message(e), "no store named nope"), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);
        e = ks_state_snapshot_kv_get(snap, "w", B("a"), &v, &found);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_INVALID_ARG);
        ck_assert_msg(strstr(ks_error_message(e), "is a window store"), "%s",
                      ks_error_message(e));
        ks_error_destroy(e);
        e = ks_state_snapshot_window_fetch(snap, "counts", B("a"), 0, 10, &it);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(ks_error_code(e), KS_ERR_INVALID_ARG);
        ks_error_destroy(e);
        ks_state_snapshot_close(snap);
        ks_state_env_close(env);
}
END_TEST

START_TEST(iterators_end_with_an_error_once_their_snapshot_closes) {
        ks_state_env_t *env;
        ks_kv_store_t *kv;
        ks_state_snapshot_t *snap;
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        CK_OK(ks_state_env_open(dir, 0, &env));
        CK_OK(ks_kv_store_open(env, "counts", &kv));
        CK_OK(ks_kv_store_put(kv, B("a"), B("1")));
        CK_OK(ks_kv_store_put(kv, B("b"), B("2")));
        CK_OK(ks_state_env_commit(env));
        CK_OK(ks_state_env_snapshot(env, &snap));
        CK_OK(ks_state_snapshot_kv_range(snap, "counts", (ks_bytes_t){0},
                                         (ks_bytes_t){0}, &it));
        ck_assert(ks_store_iter_next(it, &k, &v));
        ck_assert_mem_eq(k.data, "a", 1);
        ks_state_snapshot_close(snap);
        ck_assert(!ks_store_iter_next(it, &k, &v));
        ck_assert_ptr_nonnull(ks_store_iter_error(it));
        ks_store_iter_destroy(it);
        ks_state_env_close(env);
}
END_TEST

typedef struct holder_s {
        ks_state_env_t *env;
        atomic_bool open;
        atomic_llong closed_at;
} holder_t;

static void *hold_snapshot(void *arg) {
        holder_t *h = arg;
        ks_state_snapshot_t *snap;
        CK_OK(ks_state_env_snapshot(h->env, &snap));
        atomic_store(&h->open, true);
        usleep(300 * 1000);
        atomic_store(&h->closed_at, now_ms());
        ks_state_snapshot_close(snap);
        return NULL;
}

START_TEST(closing_an_environment_waits_for_open_snapshots) {
        holder_t h = {0};
        ks_kv_store_t *kv;
        CK_OK(ks_state_env_open(dir, 0, &h.env));
        CK_OK(ks_kv_store_open(h.env, "counts", &kv));
        pthread_t tid;
        ck_assert_int_eq(pthread_create(&tid, NULL, hold_snapshot, &h), 0);
        while (!atomic_load(&h.open))
                usleep(1000);
        ks_state_env_close(h.env);
        int64_t done = now_ms();
        ck_assert_int_gt(atomic_load(&h.closed_at), 0);
        ck_assert_int_ge(done, atomic_load(&h.closed_at));
        pthread_join(tid, NULL);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("store_snapshot");
        TCase *tc = tcase_create("snapshot");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, a_reader_sees_committed_data_not_uncommitted_writes);
        tcase_add_test(tc,
                       readers_see_whole_commits_only_while_the_owner_writes);
        tcase_add_test(tc, window_segments_dropped_and_created_under_readers);
        tcase_add_test(
                tc, a_reopened_environment_is_readable_before_its_first_commit);
        tcase_add_test(tc, unknown_stores_and_wrong_kinds_are_errors);
        tcase_add_test(tc,
                       iterators_end_with_an_error_once_their_snapshot_closes);
        tcase_add_test(tc, closing_an_environment_waits_for_open_snapshots);
        suite_add_tcase(s, tc);
        return s;
}
