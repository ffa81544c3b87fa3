/* What restoring a key-value store costs on its write path: changelog
 * records applied through ks_kv_store_put() in large transactions, next to
 * a raw LMDB mdb_put() loop over the same records and transaction size, in
 * the same run; then random gets through both.
 *
 *   bench_store_restore [--records N] [--keys K] [--txn T] [--dir DIR]
 *                       [--passes P]
 *
 * Defaults: 1,200,000 records over 1,000,000 distinct 16-byte keys (so
 * 200,000 are updates), values of 90-110 bytes, a commit every 100,000
 * records, each commit fsync'ed (LMDB's default durability), in a fresh
 * directory under DIR (/tmp) per run. Each figure is the best of P passes
 * (3). */
#include <getopt.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>

#include <kstreams/store.h>

#define KEY_LEN 16

static long n_records = 1200000, n_keys = 1000000, txn_size = 100000;
static int passes           = 3;
static const char *base_dir = "/tmp";
static char *keys; /* n_records keys of KEY_LEN bytes */
static unsigned char vbuf[512];
static uint32_t *get_order; /* key indexes for the random gets */

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t next_rand(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static const void *value_of(long i, size_t *len) {
        *len = 90 + (size_t)(i % 21);
        return vbuf + (i * 7) % 256;
}

static void make_data(void) {
        keys           = malloc((size_t)n_records * KEY_LEN);
        uint32_t *perm = malloc((size_t)n_keys * sizeof(*perm));
        get_order      = malloc((size_t)n_keys * sizeof(*get_order));
        if (!keys || !perm || !get_order) {
                fprintf(stderr, "out of memory\n");
                exit(1);
        }
        for (size_t i = 0; i < sizeof(vbuf); i++)
                vbuf[i] = (unsigned char)next_rand();
        for (long i = 0; i < n_keys; i++)
                perm[i] = (uint32_t)i;
        for (long i = n_keys - 1; i > 0; i--) { /* changelog order: random */
                long j     = (long)(next_rand() % (uint64_t)(i + 1));
                uint32_t t = perm[i];
                perm[i]    = perm[j];
                perm[j]    = t;
        }
        char tmp[KEY_LEN + 1];
        for (long i = 0; i < n_records; i++) {
                long k = i < n_keys ? perm[i]
                                    : (long)(next_rand() % (uint64_t)n_keys);
                snprintf(tmp, sizeof(tmp), "key-%012ld", k);
                memcpy(keys + i * KEY_LEN, tmp, KEY_LEN);
        }
        for (long i = 0; i < n_keys; i++)
                get_order[i] = (uint32_t)(next_rand() % (uint64_t)n_keys);
        free(perm);
}

static int rm_one(const char *p,
                  const struct stat *sb,
                  int flag,
                  struct FTW *ftw) {
        (void)sb, (void)flag, (void)ftw;
        return remove(p);
}

static char *fresh_dir(void) {
        static char dir[512];
        snprintf(dir, sizeof(dir), "%s/ks_bench_store_XXXXXX", base_dir);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                exit(1);
        }
        return dir;
}

static void die_lmdb(int rc, const char *what) {
        fprintf(stderr, "%s: %s\n", what, mdb_strerror(rc));
        exit(1);
}

static void die_ks(ks_error_t *err, const char *what) {
        if (!err)
                return;
        fprintf(stderr, "%s: %s\n", what, ks_error_message(err));
        exit(1);
}

/* ---- raw LMDB ------------------------------------------------------------ */

typedef struct result_s {
        double write_s;
        double get_s;
        size_t map_size;
} result_t;

static result_t run_raw(void) {
        result_t r = {0};
        char *dir  = fresh_dir();
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        int rc;
        if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 16)) ||
            (rc = mdb_env_set_mapsize(env, (size_t)4 << 30)) ||
            (rc = mdb_env_open(env, dir, 0, 0644)))
                die_lmdb(rc, "mdb_env_open");
        double t0 = now_s();
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
            (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &dbi)))
                die_lmdb(rc, "mdb_dbi_open");
        for (long i = 0; i < n_records; i++) {
                size_t vlen;
                const void *v = value_of(i, &vlen);
                MDB_val k     = {KEY_LEN, keys + i * KEY_LEN},
                        mv    = {vlen, (void *)v};
                if ((rc = mdb_put(txn, dbi, &k, &mv, 0)))
                        die_lmdb(rc, "mdb_put");
                if ((i + 1) % txn_size == 0 || i + 1 == n_records) {
                        if ((rc = mdb_txn_commit(txn)))
                                die_lmdb(rc, "mdb_txn_commit");
                        if (i + 1 < n_records &&
                            (rc = mdb_txn_begin(env, NULL, 0, &txn)))
                                die_lmdb(rc, "mdb_txn_begin");
                }
        }
        r.write_s = now_s() - t0;

        t0 = now_s();
        if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)))
                die_lmdb(rc, "mdb_txn_begin");
        char key[KEY_LEN + 1];
        size_t sum = 0;
        for (long i = 0; i < n_keys; i++) {
                snprintf(key, sizeof(key), "key-%012u", get_order[i]);
                MDB_val k = {KEY_LEN, key}, v;
                if ((rc = mdb_get(txn, dbi, &k, &v)))
                        die_lmdb(rc, "mdb_get");
                sum += v.mv_size;
        }
        mdb_txn_abort(txn);
        r.get_s = now_s() - t0;
        if (sum == 0)
                fprintf(stderr, "no values read\n");
        MDB_envinfo info;
        mdb_env_info(env, &info);
        r.map_size = info.me_mapsize;
        mdb_env_close(env);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return r;
}

/* ---- through the store API --------------------------------------------------
 */

static result_t run_store(size_t map_size) {
        result_t r = {0};
        char *dir  = fresh_dir();
        ks_state_env_t *env;
        ks_kv_store_t *kv;
        die_ks(ks_state_env_open(dir, map_size, &env), "env open");
        die_ks(ks_kv_store_open(env, "kv", &kv), "store open");
        double t0 = now_s();
        for (long i = 0; i < n_records; i++) {
                size_t vlen;
                const void *v = value_of(i, &vlen);
                die_ks(ks_kv_store_put(
                               kv, (ks_bytes_t){keys + i * KEY_LEN, KEY_LEN},
                               (ks_bytes_t){v, vlen}),
                       "put");
                if ((i + 1) % txn_size == 0 || i + 1 == n_records) {
                        /* The changelog offset goes with the data. */
                        die_ks(ks_kv_store_set_checkpoint(kv, i), "checkpoint");
                        die_ks(ks_state_env_commit(env), "commit");
                }
        }
        r.write_s = now_s() - t0;

        t0 = now_s();
        char key[KEY_LEN + 1];
        size_t sum = 0;
        for (long i = 0; i < n_keys; i++) {
                ks_bytes_t v;
                bool found;
                snprintf(key, sizeof(key), "key-%012u", get_order[i]);
                die_ks(ks_kv_store_get(kv, (ks_bytes_t){key, KEY_LEN}, &v,
                                       &found),
                       "get");
                if (!found) {
                        fprintf(stderr, "key %s not found\n", key);
                        exit(1);
                }
                sum += v.len;
        }
        ks_state_env_abort(env);
        r.get_s = now_s() - t0;
        if (sum == 0)
                fprintf(stderr, "no values read\n");
        r.map_size = ks_state_env_map_size(env);
        ks_state_env_close(env);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return r;
}

static result_t run_memory(void) {
        result_t r        = {0};
        ks_kv_store_t *kv = ks_kv_store_new_memory("kv");
        double t0         = now_s();
        for (long i = 0; i < n_records; i++) {
                size_t vlen;
                const void *v = value_of(i, &vlen);
                die_ks(ks_kv_store_put(
                               kv, (ks_bytes_t){keys + i * KEY_LEN, KEY_LEN},
                               (ks_bytes_t){v, vlen}),
                       "put");
        }
        r.write_s = now_s() - t0;
        t0        = now_s();
        char key[KEY_LEN + 1];
        for (long i = 0; i < n_keys; i++) {
                ks_bytes_t v;
                bool found;
                snprintf(key, sizeof(key), "key-%012u", get_order[i]);
                die_ks(ks_kv_store_get(kv, (ks_bytes_t){key, KEY_LEN}, &v,
                                       &found),
                       "get");
        }
        r.get_s = now_s() - t0;
        ks_kv_store_destroy(kv);
        return r;
}

static void keep_best(result_t *best, result_t r) {
        if (best->write_s == 0 || r.write_s < best->write_s)
                best->write_s = r.write_s;
        if (best->get_s == 0 || r.get_s < best->get_s)
                best->get_s = r.get_s;
        best->map_size = r.map_size;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"records", required_argument, NULL, 'r'},
                {"keys", required_argument, NULL, 'k'},
                {"txn", required_argument, NULL, 't'},
                {"dir", required_argument, NULL, 'd'},
                {"passes", required_argument, NULL, 'p'},
                {NULL, 0, NULL, 0}};
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        n_records = atol(optarg);
                        break;
                case 'k':
                        n_keys = atol(optarg);
                        break;
                case 't':
                        txn_size = atol(optarg);
                        break;
                case 'd':
                        base_dir = optarg;
                        break;
                case 'p':
                        passes = atoi(optarg);
                        break;
                default:
                        fprintf(stderr,
                                "usage: %s [--records N] [--keys K] [--txn T] "
                                "[--dir DIR] [--passes P]\n",
                                argv[0]);
                        return 2;
                }
        }
        if (n_keys <= 0 || n_records < n_keys || txn_size <= 0 || passes < 1) {
                fprintf(stderr, "need records >= keys > 0, txn > 0\n");
                return 2;
        }
        make_data();
        result_t raw = {0}, presized = {0}, grown = {0}, mem = {0};
        for (int p = 0; p < passes; p++) {
                keep_best(&raw, run_raw());
                keep_best(&presized, run_store((size_t)4 << 30));
                keep_best(&grown, run_store(0));
                keep_best(&mem, run_memory());
        }

        printf("restore write path: %ld records over %ld keys, 16-byte keys, "
               "90-110-byte values,\ncommit (fsync) every %ld records, best of "
               "%d passes, dir %s\n\n",
               n_records, n_keys, txn_size, passes, base_dir);
        printf("%-44s %12s %9s %8s\n", "writes", "records/s", "seconds",
               "vs raw");
        struct {
                const char *name;
                result_t *r;
        } rows[] = {
                {"raw LMDB mdb_put loop (baseline)", &raw},
                {"ks_kv_store_put, map pre-sized (4 GiB)", &presized},
                {"ks_kv_store_put, map from 64 MiB (grows)", &grown},
                {"ks_kv_store_put, in memory (skip list)", &mem},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                printf("%-44s %12.0f %9.3f %7.2fx\n", rows[i].name,
                       (double)n_records / rows[i].r->write_s,
                       rows[i].r->write_s, raw.write_s / rows[i].r->write_s);
        printf("\n%-44s %12s %9s %8s\n", "random gets (existing keys)",
               "gets/s", "seconds", "vs raw");
        struct {
                const char *name;
                result_t *r;
        } gets[] = {
                {"raw LMDB mdb_get (read txn)", &raw},
                {"ks_kv_store_get (write txn)", &presized},
                {"ks_kv_store_get, in memory", &mem},
        };
        for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++)
                printf("%-44s %12.0f %9.3f %7.2fx\n", gets[i].name,
                       (double)n_keys / gets[i].r->get_s, gets[i].r->get_s,
                       raw.get_s / gets[i].r->get_s);
        printf("\nmap size after the grown run: %zu MiB\n",
               grown.map_size >> 20);
        free(keys);
        free(get_order);
        return 0;
}
