/* An LD_PRELOAD tally of malloc/calloc/realloc, pthread_mutex_lock() and
 * mtx_lock(), and clock_gettime(), by calling object: how many calls a run
 * makes, and which shared object (or the executable, which links
 * libkstreams statically) made each. bench/mallocs.sh uses it to tell the
 * calls of kstreams from those of librdkafka and libc.
 *
 * Counting starts when the process raises SIGUSR1 (the bench does once the
 * first record is processed: start-up is not the record path) and stops at
 * SIGUSR2; at exit one line per function and calling object goes to
 * stderr:
 *   TALLY fn=malloc|mutex|clock object=<path> calls=<n>
 * The caller is the return address, kept in a fixed lock-free table and
 * resolved with dladdr() only at exit. The real functions are glibc's
 * __libc_malloc and friends, which need no dlsym() (dlsym allocates). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern int __pthread_mutex_lock(pthread_mutex_t *);
extern int __clock_gettime(clockid_t, struct timespec *);

enum { FN_MALLOC, FN_MUTEX, FN_CLOCK };
static const char *const fn_name[] = {"malloc", "mutex", "clock"};

#define SLOTS 4096 /* distinct call sites; more are counted as "other" */

static atomic_int counting;
static _Atomic uintptr_t site[SLOTS];
static _Atomic unsigned long hits[SLOTS];
static int kind[SLOTS]; /* written once, by the thread that took the slot */
static atomic_ulong overflow;

static void tally(int fn, void *ret) {
        if (!atomic_load_explicit(&counting, memory_order_relaxed))
                return;
        uintptr_t a = (uintptr_t)ret;
        size_t h    = (a * 0x9E3779B97F4A7C15ull) >> 52; /* 12 bits */
        for (size_t i = 0; i < SLOTS; i++) {
                size_t k        = (h + i) % SLOTS;
                uintptr_t other = 0;
                if (atomic_load_explicit(&site[k], memory_order_relaxed) == a) {
                        atomic_fetch_add_explicit(&hits[k], 1,
                                                  memory_order_relaxed);
                        return;
                }
                if (atomic_compare_exchange_strong(&site[k], &other, a)) {
                        kind[k] = fn;
                        atomic_fetch_add_explicit(&hits[k], 1,
                                                  memory_order_relaxed);
                        return;
                }
                if (other == a) {
                        atomic_fetch_add_explicit(&hits[k], 1,
                                                  memory_order_relaxed);
                        return;
                }
        }
        atomic_fetch_add(&overflow, 1);
}

void *malloc(size_t n) {
        tally(FN_MALLOC, __builtin_return_address(0));
        return __libc_malloc(n);
}

void *calloc(size_t n, size_t m) {
        tally(FN_MALLOC, __builtin_return_address(0));
        return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n) {
        tally(FN_MALLOC, __builtin_return_address(0));
        return __libc_realloc(p, n);
}

int pthread_mutex_lock(pthread_mutex_t *m) {
        tally(FN_MUTEX, __builtin_return_address(0));
        return __pthread_mutex_lock(m);
}

/* librdkafka locks through C11 mtx_lock(), which glibc implements as
 * __pthread_mutex_lock() on the same object. */
int mtx_lock(mtx_t *m) {
        tally(FN_MUTEX, __builtin_return_address(0));
        return __pthread_mutex_lock((pthread_mutex_t *)m) ? thrd_error
                                                          : thrd_success;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
        tally(FN_CLOCK, __builtin_return_address(0));
        return __clock_gettime(id, ts);
}

static void on_signal(int sig) {
        atomic_store(&counting, sig == SIGUSR1);
}

__attribute__((constructor)) static void tally_init(void) {
        signal(SIGUSR1, on_signal);
        signal(SIGUSR2, on_signal);
}

/* Sums the sites per function and object. At most 64 pairs are told
 * apart. */
__attribute__((destructor)) static void tally_report(void) {
        atomic_store(&counting, 0);
        const char *name[64];
        int fn[64];
        unsigned long sum[64];
        int cnt = 0;
        for (size_t k = 0; k < SLOTS; k++) {
                uintptr_t a = atomic_load(&site[k]);
                if (!a)
                        continue;
                Dl_info info;
                const char *obj = dladdr((void *)a, &info) && info.dli_fname
                                          ? info.dli_fname
                                          : "?";
                int i           = 0;
                while (i < cnt && (fn[i] != kind[k] || strcmp(name[i], obj)))
                        i++;
                if (i == cnt) {
                        if (cnt == 64)
                                continue;
                        name[cnt]  = obj;
                        fn[cnt]    = kind[k];
                        sum[cnt++] = 0;
                }
                sum[i] += atomic_load(&hits[k]);
        }
        for (int i = 0; i < cnt; i++)
                fprintf(stderr, "TALLY fn=%s object=%s calls=%lu\n",
                        fn_name[fn[i]], name[i], sum[i]);
        if (atomic_load(&overflow))
                fprintf(stderr, "TALLY fn=? object=other calls=%lu\n",
                        atomic_load(&overflow));
        /* MALLOC_TALLY_SITES=1: the busy call sites too, as object +
         * offset (addr2line -f -e <object> <offset> names them). */
        if (!getenv("MALLOC_TALLY_SITES"))
                return;
        for (size_t k = 0; k < SLOTS; k++) {
                uintptr_t a = atomic_load(&site[k]);
                Dl_info info;
                if (!a || atomic_load(&hits[k]) < 1000 ||
                    !dladdr((void *)a, &info))
                        continue;
                fprintf(stderr, "TALLY site fn=%s at=%s+0x%lx calls=%lu\n",
                        fn_name[kind[k]], info.dli_fname,
                        (unsigned long)(a - (uintptr_t)info.dli_fbase),
                        atomic_load(&hits[k]));
        }
}
