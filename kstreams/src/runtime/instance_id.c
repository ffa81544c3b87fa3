/* Exactly-once's start-up checks and the instance id its transactional ids
 * are made of. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log_int.h"
#include "streams_int.h"

/* The margin a transaction needs over the commit interval: the commit
 * itself (a flush, the offsets, the EndTxn round trips) and a processing
 * batch that runs over the interval. */
#define TXN_TIMEOUT_MARGIN_MS 5000

static int find_timeout(const char *name, const char *value, void *opaque) {
        if (!strcmp(name, "transaction.timeout.ms"))
                *(const char **)opaque = value;
        return 0;
}

int64_t ks__txn_timeout_ms(const ks_conf_t *conf) {
        const char *v = NULL;
        ks__conf_foreach_rdkafka(conf, KS_CONF_SIDE_PRODUCER, find_timeout, &v);
        if (!v)
                return KS_EOS_TXN_TIMEOUT_MS;
        char *end;
        long long ms = strtoll(v, &end, 10);
        return *end || ms <= 0 ? -1 : (int64_t)ms;
}

int ks__check_txn_timeout(const ks_conf_t *conf,
                          int64_t commit_interval_ms,
                          char *errstr,
                          size_t errstr_size) {
        int64_t timeout = ks__txn_timeout_ms(conf);
        if (timeout < 0) {
                snprintf(errstr, errstr_size,
                         "transaction.timeout.ms must be a positive number "
                         "of milliseconds");
                return -1;
        }
        if (timeout < commit_interval_ms + TXN_TIMEOUT_MARGIN_MS) {
                snprintf(errstr, errstr_size,
                         "transaction.timeout.ms (%" PRId64
                         ") must exceed commit.interval.ms (%" PRId64
                         ") by at least %d ms under exactly_once_v2: a "
                         "transaction stays open for a commit interval and "
                         "the commit; the broker would abort it first",
                         timeout, commit_interval_ms, TXN_TIMEOUT_MARGIN_MS);
                return -1;
        }
        return 0;
}

static bool valid_id(const char *id) {
        size_t n = strlen(id);
        if (n < 8 || n > 36)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdef", id[i]))
                        return false;
        return true;
}

static ks_error_t *read_id(const char *path, char *out, size_t size) {
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL; /* out stays empty: create one */
        char buf[64] = "";
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\n")] = '\0';
        if (!valid_id(buf) || strlen(buf) >= size)
                return ks_error_new(KS_ERR_STATE,
                                    "%s holds no valid instance id (8 to 36 "
                                    "hex digits): remove it to make a new "
                                    "one",
                                    path);
        memcpy(out, buf, strlen(buf) + 1);
        return NULL;
}

ks_error_t *ks__instance_id_load(const char *app_dir, char *out, size_t size) {
        char path[1100], tmp[1200];
        snprintf(path, sizeof(path), "%s/kstreams.instance.id", app_dir);
        out[0]          = '\0';
        ks_error_t *err = read_id(path, out, size);
        if (err || out[0])
                return err;
        if (ks__mkdirs(app_dir))
                return ks_error_new(KS_ERR_IO, "cannot create %s: %s", app_dir,
                                    strerror(errno));
        uint64_t r;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
                return ks_error_new(KS_ERR_IO, "getrandom: %s",
                                    strerror(errno));
        char id[17];
        snprintf(id, sizeof(id), "%016" PRIx64, r);
        /* Written whole, then renamed: a crash leaves no half id; two
         * instances racing for one directory cannot both run anyway (the
         * task directories are locked). */
        snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", id) < 0 || fflush(f) || fsync(fileno(f))) {
                err = ks_error_new(KS_ERR_IO, "cannot write %s: %s", tmp,
                                   strerror(errno));
                if (f)
                        fclose(f);
                unlink(tmp);
                return err;
        }
        fclose(f);
        if (rename(tmp, path)) {
                err = ks_error_new(KS_ERR_IO, "cannot rename %s: %s", tmp,
                                   strerror(errno));
                unlink(tmp);
                return err;
        }
        ks__log(KS_LOG_INFO, "new instance id %s in %s", id, path);
        return read_id(path, out, size);
}
