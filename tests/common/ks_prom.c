/* See ks_prom.h. Checks: metric and label names, label value escapes
 * (only \\, \" and \n), values (floats, +Inf, -Inf, NaN), at most one
 * HELP and one TYPE per family and TYPE before its samples, a family's
 * samples together, no series twice, histograms' buckets cumulative up to
 * le="+Inf" equal to _count, a newline ending every line. */
#include "ks_prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *s, size_t n, bool colon) {
        if (!n)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c     = s[i];
                bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             c == '_' || (colon && c == ':');
                if (!alpha && !(i && c >= '0' && c <= '9'))
                        return false;
        }
        return true;
}

static bool fail(char *why, size_t sz, int line, const char *msg) {
        snprintf(why, sz, "line %d: %s", line, msg);
        return false;
}

static const char *family(const char *name, char *out, size_t sz) {
        static const char *const sfx[] = {"_bucket", "_sum", "_count"};
        snprintf(out, sz, "%s", name);
        for (int i = 0; i < 3; i++) {
                size_t n = strlen(out), l = strlen(sfx[i]);
                if (n > l && !strcmp(out + n - l, sfx[i])) {
                        out[n - l] = '\0';
                        break;
                }
        }
        return out;
}

typedef struct fam_s {
        char name[128];
        char type[32];
        bool help, typed, closed;
} fam_t;

static fam_t *find(fam_t *f, int n, const char *name) {
        for (int i = 0; i < n; i++)
                if (!strcmp(f[i].name, name))
                        return &f[i];
        return NULL;
}

static bool parse_value(const char *s, double *v) {
        char *end;
        if (!strcmp(s, "+Inf")) {
                *v = INFINITY;
                return true;
        }
        if (!strcmp(s, "-Inf")) {
                *v = -INFINITY;
                return true;
        }
        if (!strcmp(s, "NaN")) {
                *v = NAN;
                return true;
        }
        *v = strtod(s, &end);
        return end != s && !*end;
}

static bool parse_sample(const char *l, kp_sample_t *s) {
        memset(s, 0, sizeof(*s));
        size_t n = strcspn(l, "{ ");
        if (n >= sizeof(s->name) || !name_ok(l, n, true))
                return false;
        memcpy(s->name, l, n);
        const char *p = l + n;
        if (*p == '{') {
                p++;
                while (*p != '}') {
                        size_t k = strcspn(p, "=");
                        if (s->label_cnt == 8 || k >= 256 ||
                            !name_ok(p, k, false) || p[k] != '=' ||
                            p[k + 1] != '"')
                                return false;
                        memcpy(s->label[s->label_cnt][0], p, k);
                        p += k + 2;
                        char *out = s->label[s->label_cnt][1];
                        size_t o  = 0;
                        for (; *p != '"'; p++) {
                                if (!*p || *p == '\n' || o == 255)
                                        return false;
                                if (*p == '\\') {
                                        p++;
                                        if (*p == 'n')
                                                out[o++] = '\n';
                                        else if (*p == '\\' || *p == '"')
                                                out[o++] = *p;
                                        else
                                                return false;
                                } else {
                                        out[o++] = *p;
                                }
                        }
                        p++;
                        for (int i = 0; i < s->label_cnt; i++)
                                if (!strcmp(s->label[i][0],
                                            s->label[s->label_cnt][0]))
                                        return false;
                        s->label_cnt++;
                        if (*p == ',')
                                p++;
                        else if (*p != '}')
                                return false;
                }
                p++;
        }
        if (*p != ' ')
                return false;
        p++;
        char val[64];
        size_t vl = strcspn(p, " ");
        if (!vl || vl >= sizeof(val))
                return false;
        memcpy(val, p, vl);
        val[vl] = '\0';
        if (!parse_value(val, &s->value))
                return false;
        if (p[vl] == ' ') { /* a timestamp: an integer */
                char *end;
                strtoll(p + vl + 1, &end, 10);
                if (end == p + vl + 1 || *end)
                        return false;
        }
        return true;
}

static bool same_series(const kp_sample_t *a, const kp_sample_t *b) {
        if (strcmp(a->name, b->name) || a->label_cnt != b->label_cnt)
                return false;
        for (int i = 0; i < a->label_cnt; i++) {
                const char *v = kp_label(b, a->label[i][0]);
                if (!v || strcmp(v, a->label[i][1]))
                        return false;
        }
        return true;
}

/* Buckets of one histogram series (same labels but le): cumulative, +Inf
 * last and equal to _count. */
static bool check_histograms(const kp_doc_t *d, char *why, size_t sz) {
        for (size_t i = 0; i < d->cnt; i++) {
                const kp_sample_t *c = &d->samples[i];
                size_t n             = strlen(c->name);
                if (n < 6 || strcmp(c->name + n - 6, "_count"))
                        continue;
                char base[128];
                snprintf(base, sizeof(base), "%.*s_bucket", (int)(n - 6),
                         c->name);
                double prev = -1, inf = -1;
                for (size_t k = 0; k < d->cnt; k++) {
                        const kp_sample_t *b = &d->samples[k];
                        if (strcmp(b->name, base) ||
                            b->label_cnt != c->label_cnt + 1)
                                continue;
                        bool same = true;
                        for (int j = 0; j < c->label_cnt && same; j++) {
                                const char *v = kp_label(b, c->label[j][0]);
                                same          = v && !strcmp(v, c->label[j][1]);
                        }
                        const char *le = kp_label(b, "le");
                        if (!same || !le)
                                continue;
                        if (b->value < prev)
                                return fail(why, sz, 0,
                                            "histogram buckets decrease");
                        prev = b->value;
                        if (!strcmp(le, "+Inf"))
                                inf = b->value;
                }
                if (inf < 0 || inf != c->value) {
                        snprintf(why, sz, "%s: +Inf bucket %g != count %g",
                                 c->name, inf, c->value);
                        return false;
                }
        }
        return true;
}

bool kp_parse(const char *text, kp_doc_t *doc, char *why, size_t sz) {
        fam_t fams[256];
        int fam_cnt = 0, line = 0;
        char cur[128] = "";
        memset(doc, 0, sizeof(*doc));
        size_t cap    = 0;
        const char *p = text;
        while (*p) {
                line++;
                const char *nl = strchr(p, '\n');
                if (!nl)
                        return fail(why, sz, line, "no newline at the end");
                char l[4096];
                size_t len = (size_t)(nl - p);
                if (len >= sizeof(l))
                        return fail(why, sz, line, "line too long");
                memcpy(l, p, len);
                l[len] = '\0';
                p      = nl + 1;
                if (!len)
                        continue;
                char fname[128], type[32];
                if (!strncmp(l, "# HELP ", 7) || !strncmp(l, "# TYPE ", 7)) {
                        bool help = l[2] == 'H';
                        if (sscanf(l + 7, "%127s", fname) != 1 ||
                            !name_ok(fname, strlen(fname), true))
                                return fail(why, sz, line, "bad HELP/TYPE");
                        fam_t *f = find(fams, fam_cnt, fname);
                        if (!f) {
                                if (fam_cnt == 256)
                                        return fail(why, sz, line, "too many");
                                f = &fams[fam_cnt++];
                                memset(f, 0, sizeof(*f));
                                snprintf(f->name, sizeof(f->name), "%s", fname);
                        }
                        if (f->closed)
                                return fail(why, sz, line,
                                            "HELP/TYPE after the samples");
                        if (help) {
                                if (f->help)
                                        return fail(why, sz, line, "two HELP");
                                f->help = true;
                        } else {
                                if (f->typed ||
                                    sscanf(l + 7, "%*s %31s", type) != 1)
                                        return fail(why, sz, line, "bad TYPE");
                                if (strcmp(type, "counter") &&
                                    strcmp(type, "gauge") &&
                                    strcmp(type, "histogram") &&
                                    strcmp(type, "summary") &&
                                    strcmp(type, "untyped"))
                                        return fail(why, sz, line,
                                                    "unknown type");
                                f->typed = true;
                                snprintf(f->type, sizeof(f->type), "%s", type);
                        }
                        continue;
                }
                if (l[0] == '#')
                        continue;
                kp_sample_t s;
                if (!parse_sample(l, &s))
                        return fail(why, sz, line, "malformed sample");
                fam_t *f = find(fams, fam_cnt, s.name);
                if (!f) { /* a histogram's _bucket, _sum or _count */
                        family(s.name, fname, sizeof(fname));
                        f = find(fams, fam_cnt, fname);
                        if (f && strcmp(f->type, "histogram"))
                                f = NULL;
                }
                if (!f || !f->typed)
                        return fail(why, sz, line, "a sample with no TYPE");
                if (strcmp(cur, f->name)) {
                        fam_t *c = cur[0] ? find(fams, fam_cnt, cur) : NULL;
                        if (c)
                                c->closed = true;
                        if (f->closed)
                                return fail(why, sz, line,
                                            "a family's samples apart");
                        snprintf(cur, sizeof(cur), "%s", f->name);
                }
                if (!strcmp(f->type, "counter") &&
                    (s.value < 0 || isnan(s.value)))
                        return fail(why, sz, line, "a negative counter");
                for (size_t i = 0; i < doc->cnt; i++)
                        if (same_series(&doc->samples[i], &s))
                                return fail(why, sz, line, "a series twice");
                if (doc->cnt == cap) {
                        cap          = cap ? cap * 2 : 64;
                        doc->samples = realloc(doc->samples,
                                               cap * sizeof(*doc->samples));
                }
                doc->samples[doc->cnt++] = s;
        }
        return check_histograms(doc, why, sz);
}

void kp_free(kp_doc_t *doc) {
        free(doc->samples);
        memset(doc, 0, sizeof(*doc));
}

const char *kp_label(const kp_sample_t *s, const char *name) {
        for (int i = 0; i < s->label_cnt; i++)
                if (!strcmp(s->label[i][0], name))
                        return s->label[i][1];
        return NULL;
}

double kp_sum(const kp_doc_t *doc,
              const char *name,
              const char *lname,
              const char *lvalue,
              int *n) {
        double sum = 0;
        int cnt    = 0;
        for (size_t i = 0; i < doc->cnt; i++) {
                const kp_sample_t *s = &doc->samples[i];
                if (strcmp(s->name, name))
                        continue;
                const char *v = lname ? kp_label(s, lname) : NULL;
                if (lname && (!v || strcmp(v, lvalue)))
                        continue;
                sum += s->value;
                cnt++;
        }
        if (n)
                *n = cnt;
        return sum;
}
