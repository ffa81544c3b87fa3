/* Window stores, LMDB and in memory: fetch ranges, segment boundaries,
 * retention by whole segments, expired puts, reopening. */
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
        ks_window_store_t *w;
} fx_t;

/* backend 0: LMDB, 1: in memory. */
static void fx_open(fx_t *f, int backend, int64_t retention, int64_t seg) {
        memset(f, 0, sizeof(*f));
        if (backend == 1) {
                f->w = ks_window_store_new_memory("win", retention, seg);
                ck_assert_ptr_nonnull(f->w);
                return;
        }
        strcpy(f->dir, "/tmp/ks_store_win_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(f->dir));
        CK_OK(ks_state_env_open(f->dir, 0, &f->env));
        CK_OK(ks_window_store_open(f->env, "win", retention, seg, &f->w));
}

static void fx_reopen(fx_t *f, int64_t retention, int64_t seg) {
        CK_OK(ks_state_env_commit(f->env));
        ks_state_env_close(f->env);
        CK_OK(ks_state_env_open(f->dir, 0, &f->env));
        CK_OK(ks_window_store_open(f->env, "win", retention, seg, &f->w));
}

static void fx_close(fx_t *f) {
        if (f->env) {
                ks_state_env_close(f->env);
                nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        } else {
                ks_window_store_destroy(f->w);
        }
}

static void put(ks_window_store_t *w, ks_bytes_t k, int64_t t, const char *v) {
        CK_OK(ks_window_store_put(w, k, t, (ks_bytes_t){v, v ? strlen(v) : 0}));
}

/* The window starts @p it yields, in order, into @p out; returns count.
 * Keys other than @p key (when key.data is set) fail the test. */
static int collect(ks_store_iter_t *it, ks_bytes_t key, int64_t *out, int max) {
        ks_bytes_t k, v;
        int64_t start;
        int n = 0;
        while (ks_store_iter_next_window(it, &k, &start, &v)) {
                ck_assert_int_lt(n, max);
                if (key.data) {
                        ck_assert_uint_eq(k.len, key.len);
                        ck_assert(!memcmp(k.data, key.data, k.len));
                }
                out[n++] = start;
        }
        ck_assert_ptr_null(ks_store_iter_error(it));
        ks_store_iter_destroy(it);
        return n;
}

static int fetch(ks_window_store_t *w,
                 ks_bytes_t key,
                 int64_t from,
                 int64_t to,
                 int64_t *out) {
        ks_store_iter_t *it;
        CK_OK(ks_window_store_fetch(w, key, from, to, &it));
        return collect(it, key, out, 64);
}

static void expect_starts(const int64_t *got,
                          int n,
                          const int64_t *want,
                          int nwant) {
        ck_assert_int_eq(n, nwant);
        for (int i = 0; i < n; i++)
                ck_assert_int_eq(got[i], want[i]);
}

static void segments(fx_t *f, uint64_t *segs, uint64_t *entries) {
        CK_OK(ks__segstore_count(ks__window_store_segments(f->w), segs,
                                 entries));
}

START_TEST(put_get_and_fetch_ranges) {
        fx_t f;
        int64_t got[64];
        ks_bytes_t v;
        bool found;
        fx_open(&f, _i, 10000, 50);
        /* Windows of "k" at 0, 10, ..., 90 over two segments (50 ms). */
        for (int t = 90; t >= 0; t -= 10)
                put(f.w, B("k"), t, "v");
        put(f.w, B("k"), 40, "forty");

        CK_OK(ks_window_store_get(f.w, B("k"), 40, &v, &found));
        ck_assert(found);
        ck_assert_uint_eq(v.len, 5);
        ck_assert_mem_eq(v.data, "forty", 5);
        CK_OK(ks_window_store_get(f.w, B("k"), 41, &v, &found));
        ck_assert(!found);
        CK_OK(ks_window_store_get(f.w, B("other"), 40, &v, &found));
        ck_assert(!found);

        /* Both ends inclusive, across the segment boundary at 50. */
        int n = fetch(f.w, B("k"), 20, 60, got);
        expect_starts(got, n, (int64_t[]){20, 30, 40, 50, 60}, 5);
        n = fetch(f.w, B("k"), 21, 29, got);
        ck_assert_int_eq(n, 0);
        n = fetch(f.w, B("k"), 25, 35, got);
        expect_starts(got, n, (int64_t[]){30}, 1);
        n = fetch(f.w, B("k"), -1000, 5, got);
        expect_starts(got, n, (int64_t[]){0}, 1);
        n = fetch(f.w, B("k"), 85, INT64_MAX, got);
        expect_starts(got, n, (int64_t[]){90}, 1);
        n = fetch(f.w, B("k"), 60, 20, got); /* from > to */
        ck_assert_int_eq(n, 0);
        n = fetch(f.w, B("missing"), 0, 100, got);
        ck_assert_int_eq(n, 0);

        /* Delete and overwrite. */
        put(f.w, B("k"), 50, NULL);
        n = fetch(f.w, B("k"), 40, 60, got);
        expect_starts(got, n, (int64_t[]){40, 60}, 2);
        put(f.w, B("k"), 77, NULL); /* not there: a no-op */
        fx_close(&f);
}
END_TEST

START_TEST(keys_do_not_bleed_into_each_other) {
        fx_t f;
        int64_t got[64];
        fx_open(&f, _i, 10000, 100);
        /* "a" + start must not be confused with "ab" or "a\0...". */
        put(f.w, B("a"), 5, "a5");
        put(f.w, B("a"), 7, "a7");
        put(f.w, B("ab"), 6, "ab6");
        put(f.w, B("a\0"), 6, "a06");
        put(f.w, B(""), 6, "empty");
        put(f.w, B("b"), 1, "b1");
        int n = fetch(f.w, B("a"), 0, 100, got);
        expect_starts(got, n, (int64_t[]){5, 7}, 2);
        n = fetch(f.w, B("ab"), 0, 100, got);
        expect_starts(got, n, (int64_t[]){6}, 1);
        n = fetch(f.w, B("a\0"), 0, 100, got);
        expect_starts(got, n, (int64_t[]){6}, 1);
        n = fetch(f.w, B(""), 0, 100, got);
        expect_starts(got, n, (int64_t[]){6}, 1);

        /* fetch_all: every key, only the starts in range. */
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        int64_t start;
        int count = 0, seen_ab = 0;
        CK_OK(ks_window_store_fetch_all(f.w, 6, 6, &it));
        while (ks_store_iter_next_window(it, &k, &start, &v)) {
                ck_assert_int_eq(start, 6);
                if (k.len == 2 && !memcmp(k.data, "ab", 2)) {
                        ck_assert_mem_eq(v.data, "ab6", 3);
                        seen_ab++;
                }
                count++;
        }
        ks_store_iter_destroy(it);
        ck_assert_int_eq(count, 3);
        ck_assert_int_eq(seen_ab, 1);
        fx_close(&f);
}
END_TEST

START_TEST(fetch_all_across_segments) {
        fx_t f;
        int64_t got[64];
        fx_open(&f, _i, 1000, 10);
        for (int t = 0; t < 40; t += 5) {
                put(f.w, B("x"), t, "x");
                put(f.w, B("y"), t, "y");
        }
        ks_store_iter_t *it;
        CK_OK(ks_window_store_fetch_all(f.w, 9, 20, &it));
        int n = collect(it, (ks_bytes_t){NULL, 0}, got, 64);
        /* 10, 15, 20 for both keys; segments in time order. */
        ck_assert_int_eq(n, 6);
        for (int i = 1; i < n; i++)
                ck_assert_int_le(got[i - 1] / 10, got[i] / 10);
        for (int i = 0; i < n; i++)
                ck_assert(got[i] >= 10 && got[i] <= 20);
        fx_close(&f);
}
END_TEST

START_TEST(retention_drops_whole_segments) {
        fx_t f;
        int64_t got[64];
        uint64_t segs, entries;
        ks_bytes_t v;
        bool found;
        fx_open(&f, _i, 100, 50);
        for (int t = 0; t <= 140; t += 10)
                put(f.w, B("k"), t, "v");
        /* Stream time 140: windows from 41 are live; segment 0 (0..49)
         * still holds live time 41..49, so it stays, but its expired
         * windows are not visible. */
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(segs, 3);
        ck_assert_uint_eq(entries, 15);
        int n = fetch(f.w, B("k"), 0, 1000, got);
        expect_starts(got, n,
                      (int64_t[]){50, 60, 70, 80, 90, 100, 110, 120, 130, 140},
                      10);
        CK_OK(ks_window_store_get(f.w, B("k"), 40, &v, &found));
        ck_assert(!found);

        /* An expired put is ignored. */
        put(f.w, B("k"), 30, "late");
        put(f.w, B("new"), 40, "late");
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(entries, 15);
        CK_OK(ks_window_store_get(f.w, B("new"), 40, &v, &found));
        ck_assert(!found);
        /* The oldest live window is accepted. */
        put(f.w, B("new"), 41, "ok");
        CK_OK(ks_window_store_get(f.w, B("new"), 41, &v, &found));
        ck_assert(found);

        /* Stream time 150: live from 51, segment 0 is dropped whole. */
        put(f.w, B("k"), 150, "v");
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(segs, 3); /* 1, 2, 3 */
        ck_assert_uint_eq(entries, 15 - 5 + 1);
        n = fetch(f.w, B("k"), 0, 1000, got);
        ck_assert_int_eq(n, 10);
        ck_assert_int_eq(got[0], 60);

        /* A jump far ahead drops everything older. */
        put(f.w, B("k"), 10000, "v");
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(segs, 1);
        ck_assert_uint_eq(entries, 1);
        n = fetch(f.w, B("k"), 0, INT64_MAX, got);
        expect_starts(got, n, (int64_t[]){10000}, 1);
        fx_close(&f);
}
END_TEST

START_TEST(iterating_while_segments_drop) {
        fx_t f;
        ks_store_iter_t *it;
        ks_bytes_t k, v;
        int64_t start;
        fx_open(&f, _i, 100, 10);
        for (int t = 0; t < 100; t++)
                put(f.w, B("k"), t, "v");
        CK_OK(ks_window_store_fetch(f.w, B("k"), 0, 100, &it));
        ck_assert(ks_store_iter_next_window(it, &k, &start, &v));
        ck_assert_int_eq(start, 0);
        ck_assert(ks_store_iter_next_window(it, &k, &start, &v));
        ck_assert_int_eq(start, 1);
        /* Drops segments 0..4 (and 5 stays: live from 51). */
        put(f.w, B("k"), 150, "v");
        int n = 0;
        while (ks_store_iter_next_window(it, &k, &start, &v)) {
                ck_assert_int_ge(start, 50);
                n++;
        }
        ck_assert_ptr_null(ks_store_iter_error(it));
        ks_store_iter_destroy(it);
        ck_assert_int_eq(n, 50); /* 50..99: still stored in segments 5..9 */
        fx_close(&f);
}
END_TEST

START_TEST(reopen_keeps_segments_and_stream_time) {
        fx_t f;
        int64_t got[64];
        uint64_t segs, entries;
        ks_bytes_t v;
        bool found;
        fx_open(&f, 0, 100, 50);
        for (int t = 0; t <= 140; t += 10)
                put(f.w, B("k"), t, "v");
        CK_OK(ks_window_store_set_checkpoint(f.w, 99));
        fx_reopen(&f, 100, 50);
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(segs, 3);
        ck_assert_uint_eq(entries, 15);
        ck_assert_int_eq(ks_window_store_checkpoint(f.w), 99);
        int n = fetch(f.w, B("k"), 0, 1000, got);
        ck_assert_int_eq(n, 10);
        /* Stream time survived: a put at 30 is still expired. */
        put(f.w, B("k"), 30, "late");
        CK_OK(ks_window_store_get(f.w, B("k"), 30, &v, &found));
        ck_assert(!found);

        /* An abort brings a dropped segment and the old stream time back. */
        CK_OK(ks_state_env_commit(f.env));
        put(f.w, B("k"), 1000, "v");
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(segs, 1);
        ks_state_env_abort(f.env);
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(segs, 3);
        ck_assert_uint_eq(entries, 15);
        put(f.w, B("k"), 45, "live again");
        CK_OK(ks_window_store_get(f.w, B("k"), 45, &v, &found));
        ck_assert(found);

        /* Dropped segments stay dropped after a commit and reopen. */
        put(f.w, B("k"), 1000, "v");
        fx_reopen(&f, 100, 50);
        segments(&f, &segs, &entries);
        ck_assert_uint_eq(segs, 1);
        ck_assert_uint_eq(entries, 1);
        fx_close(&f);
}
END_TEST

START_TEST(memory_checkpoint_and_args) {
        ks_window_store_t *w = ks_window_store_new_memory("w", 100, 10);
        ck_assert_int_eq(ks_window_store_checkpoint(w), -1);
        CK_OK(ks_window_store_set_checkpoint(w, 5));
        ck_assert_int_eq(ks_window_store_checkpoint(w), 5);
        ks_window_store_destroy(w);
        ck_assert_ptr_null(ks_window_store_new_memory("w", 100, 0));
        ck_assert_ptr_null(ks_window_store_new_memory("w", -1, 10));
        /* Too many live segments for the environment's DB handles. */
        ck_assert_ptr_null(ks_window_store_new_memory("w", 100000, 1));
        ks_window_store_destroy(NULL);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("store_window");
        TCase *tc = tcase_create("window");
        tcase_add_loop_test(tc, put_get_and_fetch_ranges, 0, 2);
        tcase_add_loop_test(tc, keys_do_not_bleed_into_each_other, 0, 2);
        tcase_add_loop_test(tc, fetch_all_across_segments, 0, 2);
        tcase_add_loop_test(tc, retention_drops_whole_segments, 0, 2);
        tcase_add_loop_test(tc, iterating_while_segments_drop, 0, 2);
        tcase_add_test(tc, reopen_keeps_segments_and_stream_time);
        tcase_add_test(tc, memory_checkpoint_and_args);
        suite_add_tcase(s, tc);
        return s;
}
