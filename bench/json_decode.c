/* JSON decode benchmark: user events decoded into user_event_t by our fast
 * path (ks_json on simdjson) and by jansson, over the same in-memory records,
 * on the calling thread. bench/json-decode.sh runs it pinned to one core next
 * to Jackson (bench/java/JacksonDecode.java) on the same file.
 *
 *   bench_json_decode [-n EVENTS] [--passes N] [--seed S]
 *                     [--write FILE [--write-only] | --read FILE]
 *                     [--skip-jansson]
 *
 * --write saves the generated records, one per line, for the Jackson bench;
 * --write-only stops there, so that a script can flush the file to disk
 * before measuring (writeback competes for memory bandwidth).
 *
 * Output: a table, and one "RESULT<TAB>name<TAB>events/s<TAB>MB/s<TAB>
 * ns/event<TAB>checksum<TAB>best events/s" line per decoder for scripts
 * (events/s, MB/s and ns/event are medians over the passes). Every decoder does
 * the same work per record: parse and validate the whole document, check the
 * schema, copy out the fields, convert the ISO-8601 timestamp; the checksum
 * over the decoded values shows they agree. */
#include "common/event_gen.h"
#include "common/user_event.h"

#include <kstreams/timestamp.h>

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct records_s {
        ks_buf_t data;  /* records, each followed by '\n' */
        size_t *offset; /* record i is data.data[offset[i] .. +len[i]] */
        size_t *len;
        size_t n;
        size_t cap;
} records_t;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
        fprintf(stderr, "bench_json_decode: %s\n", what);
        exit(1);
}

static void records_add(records_t *r, size_t off, size_t len) {
        if (r->n == r->cap) {
                r->cap    = r->cap ? r->cap * 2 : 1024;
                r->offset = realloc(r->offset, r->cap * sizeof(size_t));
                r->len    = realloc(r->len, r->cap * sizeof(size_t));
                if (!r->offset || !r->len)
                        die("out of memory");
        }
        r->offset[r->n] = off;
        r->len[r->n++]  = len;
}

static void generate(records_t *r, size_t n, uint64_t seed) {
        event_gen_t *g = event_gen_new(seed, INT64_C(1765535400000), 10000);
        if (!g)
                die("event_gen_new failed");
        for (size_t i = 0; i < n; i++) {
                size_t off = r->data.len;
                if (event_gen_next_raw(g, &r->data, NULL) ||
                    ks_buf_append(&r->data, "\n", 1))
                        die("out of memory");
                records_add(r, off, r->data.len - off - 1);
        }
        event_gen_destroy(g);
}

static void read_file(records_t *r, const char *path) {
        FILE *f = fopen(path, "rb");
        char chunk[1 << 16];
        size_t got;
        if (!f)
                die("cannot open the --read file");
        while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (ks_buf_append(&r->data, chunk, got))
                        die("out of memory");
        fclose(f);
        for (size_t start = 0, i = 0; i < r->data.len; i++) {
                if (r->data.data[i] != '\n')
                        continue;
                if (i > start)
                        records_add(r, start, i - start);
                start = i + 1;
        }
}

static void write_file(const records_t *r, const char *path) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(r->data.data, 1, r->data.len, f) != r->data.len ||
            fclose(f))
                die("cannot write the --write file");
}

/* What each decoder folds its results into, so that the compiler keeps the
 * work and the decoders can be compared: the same data must give the same
 * sum. It reads the first byte of each string, not its length: a strlen of
 * eight strings would cost more than a fifth of our decode time and is no
 * part of decoding. */
static uint64_t fold(const user_event_t *ev) {
        uint64_t h      = (uint64_t)ev->timestamp_ms;
        const char *s[] = {ev->event_id,   ev->user_id, ev->event_type,
                           ev->session_id, ev->page,    ev->currency,
                           ev->device,     ev->version};
        for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
                h = h * 31 + (s[i] ? (unsigned char)s[i][0] + 1u : 0u);
        if (ev->has_amount)
                h += (uint64_t)(ev->amount * 100 + 0.5);
        return h;
}

/* One pass over all records with our decoder. */
static uint64_t pass_ours(user_event_decoder_t *d,
                          const records_t *r,
                          size_t *failed) {
        uint64_t sum = 0;
        char errstr[256];
        user_event_t ev;
        for (size_t i = 0; i < r->n; i++) {
                if (user_event_decode(d, r->data.data + r->offset[i], r->len[i],
                                      &ev, errstr, sizeof(errstr))) {
                        (*failed)++;
                        continue;
                }
                sum += fold(&ev);
        }
        return sum;
}

/* The same struct decode with jansson, as one would write it: load the
 * document, get each member, check its type. */
static const char *jstr(json_t *obj, const char *key) {
        json_t *v = json_object_get(obj, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jansson_decode(const char *data, size_t len, uint64_t *sum) {
        json_error_t error;
        json_t *root = json_loadb(data, len, 0, &error);
        user_event_t ev;
        json_t *ts, *dat, *amount;
        int rc = -1;

        if (!json_is_object(root))
                goto out;
        memset(&ev, 0, sizeof(ev));
        ev.event_id   = jstr(root, "event_id");
        ev.user_id    = jstr(root, "user_id");
        ev.event_type = jstr(root, "event_type");
        ev.version    = jstr(root, "version");
        if (!ev.event_id || !*ev.event_id || !ev.user_id || !*ev.user_id ||
            !ev.event_type || !*ev.event_type)
                goto out;
        ts = json_object_get(root, "timestamp");
        if (json_is_string(ts)) {
                if (ks_parse_iso8601(json_string_value(ts),
                                     json_string_length(ts), &ev.timestamp_ms))
                        goto out;
        } else if (json_is_integer(ts)) {
                ev.timestamp_ms = json_integer_value(ts);
        } else {
                goto out;
        }
        dat = json_object_get(root, "data");
        if (json_is_object(dat)) {
                ev.session_id = jstr(dat, "session_id");
                ev.page       = jstr(dat, "page");
                ev.currency   = jstr(dat, "currency");
                ev.device     = jstr(dat, "device");
                amount        = json_object_get(dat, "amount");
                if (json_is_number(amount)) {
                        ev.amount     = json_number_value(amount);
                        ev.has_amount = true;
                        if (ev.amount < 0)
                                goto out;
                }
        }
        *sum += fold(&ev);
        rc = 0;
out:
        json_decref(root);
        return rc;
}

static uint64_t pass_jansson(const records_t *r, size_t *failed) {
        uint64_t sum = 0;
        for (size_t i = 0; i < r->n; i++)
                if (jansson_decode(r->data.data + r->offset[i], r->len[i],
                                   &sum))
                        (*failed)++;
        return sum;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

typedef struct result_s {
        const char *name;
        double median_s, best_s;
        uint64_t checksum;
        size_t failed;
} result_t;

static void report(const result_t *res, const records_t *r) {
        double eps = (double)r->n / res->median_s;
        double mbs = (double)(r->data.len - r->n) / res->median_s / 1e6;
        printf("%-34s %12.0f %10.1f %10.1f %12.0f\n", res->name, eps, mbs,
               res->median_s / (double)r->n * 1e9, (double)r->n / res->best_s);
}

static void result_line(const result_t *res, const records_t *r) {
        double eps = (double)r->n / res->median_s;
        double mbs = (double)(r->data.len - r->n) / res->median_s / 1e6;
        printf("RESULT\t%s\t%.0f\t%.1f\t%.1f\t%llu\t%.0f\n", res->name, eps,
               mbs, res->median_s / (double)r->n * 1e9,
               (unsigned long long)res->checksum, (double)r->n / res->best_s);
}

int main(int argc, char **argv) {
        size_t n               = 1000000;
        int passes             = 5;
        uint64_t seed          = 1;
        const char *write_path = NULL, *read_path = NULL;
        bool skip_jansson = false, write_only = false;
        records_t r = {0};
        result_t res[2];
        int nres = 0;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(a, "-n") && v)
                        n = strtoull(v, NULL, 10), i++;
                else if (!strcmp(a, "--passes") && v)
                        passes = atoi(v), i++;
                else if (!strcmp(a, "--seed") && v)
                        seed = strtoull(v, NULL, 10), i++;
                else if (!strcmp(a, "--write") && v)
                        write_path = v, i++;
                else if (!strcmp(a, "--read") && v)
                        read_path = v, i++;
                else if (!strcmp(a, "--skip-jansson"))
                        skip_jansson = true;
                else if (!strcmp(a, "--write-only"))
                        write_only = true;
                else {
                        fprintf(stderr,
                                "usage: %s [-n EVENTS] [--passes N] "
                                "[--seed S] [--write FILE [--write-only] | "
                                "--read FILE] [--skip-jansson]\n",
                                argv[0]);
                        return 2;
                }
        }
        if (passes < 1 || (!read_path && n < 1))
                die("need at least one pass and one event");
        if (write_only && !write_path)
                die("--write-only needs --write FILE");

        if (read_path)
                read_file(&r, read_path);
        else
                generate(&r, n, seed);
        if (!r.n)
                die("no records");
        if (write_path)
                write_file(&r, write_path);
        if (write_only) {
                printf("wrote %zu events to %s\n", r.n, write_path);
                goto out;
        }

        user_event_decoder_t *d = user_event_decoder_new();
        if (!d)
                die("user_event_decoder_new failed");
        double *t = calloc((size_t)passes, sizeof(double));

        printf("json_decode: %zu events, %.1f bytes/event on average, "
               "%d passes each, median reported\n",
               r.n, (double)(r.data.len - r.n) / (double)r.n, passes);

        for (int which = 0; which < 2; which++) {
                result_t *cur = &res[nres];
                if (which == 1 && skip_jansson)
                        continue;
                cur->name = which == 0 ? "kstreams (simdjson DOM)"
                                       : "jansson 2.14 (json_loadb)";
                /* A warm-up pass: page in the data, grow the buffers. */
                cur->failed   = 0;
                cur->checksum = which == 0 ? pass_ours(d, &r, &cur->failed)
                                           : pass_jansson(&r, &cur->failed);
                for (int p = 0; p < passes; p++) {
                        size_t failed = 0;
                        double t0     = now_s();
                        uint64_t sum  = which == 0 ? pass_ours(d, &r, &failed)
                                                   : pass_jansson(&r, &failed);
                        t[p]          = now_s() - t0;
                        if (sum != cur->checksum || failed != cur->failed)
                                die("passes disagree");
                }
                qsort(t, (size_t)passes, sizeof(double), cmp_double);
                cur->median_s = t[passes / 2];
                cur->best_s   = t[0];
                nres++;
        }

        printf("\n%-34s %12s %10s %10s %12s\n", "decoder", "events/s", "MB/s",
               "ns/event", "best ev/s");
        for (int i = 0; i < nres; i++)
                report(&res[i], &r);
        for (int i = 0; i < nres; i++) {
                if (res[i].failed)
                        printf("%s: %zu records rejected\n", res[i].name,
                               res[i].failed);
                if (res[i].checksum != res[0].checksum)
                        printf("WARNING: %s decoded different values\n",
                               res[i].name);
        }
        printf("\n");
        for (int i = 0; i < nres; i++)
                result_line(&res[i], &r);

        free(t);
        user_event_decoder_destroy(d);
out:
        ks_buf_free(&r.data);
        free(r.offset);
        free(r.len);
        return 0;
}
