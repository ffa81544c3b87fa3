/* Session stores, LMDB and in memory: find() semantics for merging,
 * removal, retention, reopening. */
#include <ftw.h>
#include <kstreams/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_check.h"
#include "store_int.h"

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

typedef struct fx_s {
        char dir[64];
        ks_state_env_t *env;
        ks_session_store_t *s;
} fx_t;

/* backend 0: LMDB, 1: in memory. */
static void fx_open(fx_t *f, int backend, int64_t retention) {
        memset(f, 0, sizeof(*f));
        if (backend == 1) {
                f->s = ks_session_store_new_memory("sess", retention);
                ck_assert_ptr_nonnull(f->s);
                return;
        }
        strcpy(f->dir, "/tmp/ks_store_ses_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(f->dir));
        CK_OK(ks_state_env_open(f->dir, 0, &f->env));
        CK_OK(ks_session_store_open(f->env, "sess", retention, &f->s));
}

static void fx_close(fx_t *f) {
        if (f->env) {
                ks_state_env_close(f->env);
                nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        } else {
                ks_session_store_destroy(f->s);
        }
}

static void put(ks_session_store_t *s,
                ks_bytes_t k,
                int64_t start,
                int64_t end,
                const char *v) {
        CK_OK(ks_session_store_put(s, k, start, end,
                                   (ks_bytes_t){v, v ? strlen(v) : 0}));
}

typedef struct sess_s {
        int64_t start;
        int64_t end;
} sess_t;

/* The sessions find() yields for @p key, in order, into @p out. */
static int find(ks_session_store_t *s,
                ks_bytes_t key,
                int64_t earliest_end,
                int64_t latest_start,
                sess_t *out) {
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        int64_t start, end;
        int n = 0;
        CK_OK(ks_session_store_find(s, key, earliest_end, latest_start, &it));
        while (ks_store_iter_next_session(it, &k, &start, &end, &v)) {
                ck_assert_int_lt(n, 32);
                ck_assert_uint_eq(k.len, key.len);
                ck_assert(!key.len || !memcmp(k.data, key.data, k.len));
                /* The value written for a session is "start-end". */
                char want[64];
                snprintf(want, sizeof(want), "%lld-%lld", (long long)start,
                         (long long)end);
                ck_assert_uint_eq(v.len, strlen(want));
                ck_assert_mem_eq(v.data, want, v.len);
                out[n].start = start;
                out[n].end   = end;
                n++;
        }
        ck_assert_ptr_null(ks_store_iter_error(it));
        ks_store_iter_destroy(it);
        return n;
}

static void put_session(ks_session_store_t *s,
                        ks_bytes_t k,
                        int64_t start,
                        int64_t end) {
        char v[64];
        snprintf(v, sizeof(v), "%lld-%lld", (long long)start, (long long)end);
        put(s, k, start, end, v);
}

static void expect(const sess_t *got, int n, const sess_t *want, int nwant) {
        ck_assert_int_eq(n, nwant);
        for (int i = 0; i < n; i++) {
                ck_assert_int_eq(got[i].start, want[i].start);
                ck_assert_int_eq(got[i].end, want[i].end);
        }
}

START_TEST(find_semantics) {
        fx_t f;
        sess_t got[32];
        fx_open(&f, _i, 100000);
        ks_bytes_t u = B("u");
        put_session(f.s, u, 100, 150);
        put_session(f.s, u, 0, 10);
        put_session(f.s, u, 40, 40); /* a single record */
        put_session(f.s, u, 20, 30);
        /* Neighbours that must never show up for "u". */
        put_session(f.s, B("u\0"), 20, 30);
        put_session(f.s, B("uu"), 20, 30);
        put_session(f.s, B(""), 20, 30);

        /* All of u's sessions, ordered by end. */
        int n = find(f.s, u, INT64_MIN, INT64_MAX, got);
        expect(got, n, (sess_t[]){{0, 10}, {20, 30}, {40, 40}, {100, 150}}, 4);

        /* A record at 35 with a 5 ms gap: sessions ending >= 30 and
         * starting <= 40 merge; both bounds are inclusive. */
        n = find(f.s, u, 30, 40, got);
        expect(got, n, (sess_t[]){{20, 30}, {40, 40}}, 2);
        /* One past each bound: nothing. */
        n = find(f.s, u, 31, 39, got);
        ck_assert_int_eq(n, 0);
        /* In a gap between sessions. */
        n = find(f.s, u, 11, 19, got);
        ck_assert_int_eq(n, 0);
        /* Inside a session: it overlaps. */
        n = find(f.s, u, 120, 130, got);
        expect(got, n, (sess_t[]){{100, 150}}, 1);
        /* A range covering several: every overlapping one. */
        n = find(f.s, u, 5, 100, got);
        expect(got, n, (sess_t[]){{0, 10}, {20, 30}, {40, 40}, {100, 150}}, 4);
        /* Before everything / after everything. */
        n = find(f.s, u, -50, -1, got);
        ck_assert_int_eq(n, 0);
        n = find(f.s, u, 151, 1000, got);
        ck_assert_int_eq(n, 0);

        n = find(f.s, B("u\0"), 0, 1000, got);
        expect(got, n, (sess_t[]){{20, 30}}, 1);
        n = find(f.s, B(""), 0, 1000, got);
        expect(got, n, (sess_t[]){{20, 30}}, 1);
        n = find(f.s, B("nobody"), 0, 1000, got);
        ck_assert_int_eq(n, 0);
        fx_close(&f);
}
END_TEST

START_TEST(sessions_with_the_same_end) {
        fx_t f;
        sess_t got[32];
        fx_open(&f, _i, 100000);
        put_session(f.s, B("k"), 50, 60);
        put_session(f.s, B("k"), 10, 60);
        put_session(f.s, B("k"), 60, 60);
        int n = find(f.s, B("k"), 60, 55, got);
        expect(got, n, (sess_t[]){{10, 60}, {50, 60}}, 2);
        fx_close(&f);
}
END_TEST

START_TEST(merge_by_remove_and_put) {
        fx_t f;
        sess_t got[32];
        fx_open(&f, _i, 100000);
        ks_bytes_t k = B("k");
        put_session(f.s, k, 0, 10);
        put_session(f.s, k, 16, 20);
        /* A record at 13, gap 5, bridges both sessions. */
        int n = find(f.s, k, 13 - 5, 13 + 5, got);
        expect(got, n, (sess_t[]){{0, 10}, {16, 20}}, 2);
        for (int i = 0; i < n; i++)
                put(f.s, k, got[i].start, got[i].end, NULL);
        put_session(f.s, k, 0, 20);
        n = find(f.s, k, INT64_MIN, INT64_MAX, got);
        expect(got, n, (sess_t[]){{0, 20}}, 1);
        /* Removing what is not there is a no-op. */
        put(f.s, k, 3, 4, NULL);
        n = find(f.s, k, INT64_MIN, INT64_MAX, got);
        ck_assert_int_eq(n, 1);

        ks_error_t *err = ks_session_store_put(f.s, k, 10, 5, B("x"));
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(ks_error_code(err), KS_ERR_INVALID_ARG);
        ks_error_destroy(err);
        fx_close(&f);
}
END_TEST

START_TEST(retention) {
        fx_t f;
        sess_t got[32];
        uint64_t segs, entries;
        fx_open(&f, _i, 100); /* segments of 50 */
        ks__segstore_t *ss = ks__session_store_segments(f.s);
        for (int end = 0; end <= 140; end += 20)
                put_session(f.s, B("k"), end - 5, end);
        CK_OK(ks__segstore_count(ss, &segs, &entries));
        ck_assert_uint_eq(entries, 8);
        /* Newest end 140: sessions ending before 41 are expired. */
        int n = find(f.s, B("k"), INT64_MIN, INT64_MAX, got);
        expect(got, n,
               (sess_t[]){
                       {55, 60}, {75, 80}, {95, 100}, {115, 120}, {135, 140}},
               5);
        /* Expired puts are ignored. */
        put_session(f.s, B("k"), 0, 40);
        CK_OK(ks__segstore_count(ss, &segs, &entries));
        ck_assert_uint_eq(entries, 8);

        /* Newest end 400: everything before 301 goes, by whole segments. */
        put_session(f.s, B("k"), 390, 400);
        CK_OK(ks__segstore_count(ss, &segs, &entries));
        ck_assert_uint_eq(segs, 1);
        ck_assert_uint_eq(entries, 1);
        n = find(f.s, B("k"), 0, INT64_MAX, got);
        expect(got, n, (sess_t[]){{390, 400}}, 1);
        fx_close(&f);
}
END_TEST

START_TEST(reopen_keeps_sessions_and_stream_time) {
        fx_t f;
        sess_t got[32];
        fx_open(&f, 0, 100);
        put_session(f.s, B("k"), 0, 10);
        put_session(f.s, B("k"), 100, 105);
        CK_OK(ks_session_store_set_checkpoint(f.s, 7));
        CK_OK(ks_state_env_commit(f.env));
        /* Not committed: gone after reopen. */
        put_session(f.s, B("k"), 200, 300);
        ks_state_env_close(f.env);

        CK_OK(ks_state_env_open(f.dir, 0, &f.env));
        CK_OK(ks_session_store_open(f.env, "sess", 100, &f.s));
        ck_assert_int_eq(ks_session_store_checkpoint(f.s), 7);
        int n = find(f.s, B("k"), INT64_MIN, INT64_MAX, got);
        expect(got, n, (sess_t[]){{0, 10}, {100, 105}}, 2);
        /* Stream time 105 was kept: a session ending at 5 is expired. */
        put_session(f.s, B("k"), 1, 5);
        n = find(f.s, B("k"), INT64_MIN, INT64_MAX, got);
        ck_assert_int_eq(n, 2);
        fx_close(&f);
}
END_TEST

START_TEST(memory_checkpoint) {
        ks_session_store_t *s = ks_session_store_new_memory("s", 10);
        ck_assert_int_eq(ks_session_store_checkpoint(s), -1);
        CK_OK(ks_session_store_set_checkpoint(s, 3));
        ck_assert_int_eq(ks_session_store_checkpoint(s), 3);
        ks_session_store_destroy(s);
        ks_session_store_destroy(NULL);
        ck_assert_ptr_null(ks_session_store_new_memory("s", -1));
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("store_session");
        TCase *tc = tcase_create("session");
        tcase_add_loop_test(tc, find_semantics, 0, 2);
        tcase_add_loop_test(tc, sessions_with_the_same_end, 0, 2);
        tcase_add_loop_test(tc, merge_by_remove_and_put, 0, 2);
        tcase_add_loop_test(tc, retention, 0, 2);
        tcase_add_test(tc, reopen_keeps_sessions_and_stream_time);
        tcase_add_test(tc, memory_checkpoint);
        suite_add_tcase(s, tc);
        return s;
}
