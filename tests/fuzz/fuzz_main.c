/* A main() for the fuzz targets in builds without libFuzzer (gcc): runs
 * LLVMFuzzerTestOneInput() once on every file of the directories (or
 * files) given, so the seed corpora and the inputs that once crashed are
 * replayed by ctest on every build. A crash or a sanitizer report fails
 * the test; each input's name is printed first so the culprit is known. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                perror(path);
                return 1;
        }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, n;
        do {
                if (cap - len < 65536) {
                        cap         = cap ? cap * 2 : 65536;
                        uint8_t *nb = realloc(buf, cap);
                        if (!nb) {
                                fclose(f);
                                free(buf);
                                return 1;
                        }
                        buf = nb;
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
        } while (n > 0);
        fclose(f);
        fprintf(stderr, "fuzz replay: %s (%zu bytes)\n", path, len);
        /* A copy of exactly len bytes, so ASan sees reads past the end. */
        uint8_t *exact = malloc(len ? len : 1);
        if (exact && len)
                memcpy(exact, buf, len);
        free(buf);
        if (!exact)
                return 1;
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        return 0;
}

static int cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of @p dir in name order (a stable, readable run). */
static int run_dir(const char *dir, int *count) {
        DIR *d = opendir(dir);
        if (!d) {
                perror(dir);
                return 1;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        int rc = 0;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                if (n == cap) {
                        cap       = cap ? cap * 2 : 64;
                        char **nn = realloc(names, cap * sizeof(*nn));
                        if (!nn) {
                                rc = 1;
                                break;
                        }
                        names = nn;
                }
                size_t sz = strlen(dir) + strlen(e->d_name) + 2;
                names[n]  = malloc(sz);
                if (!names[n]) {
                        rc = 1;
                        break;
                }
                snprintf(names[n++], sz, "%s/%s", dir, e->d_name);
        }
        closedir(d);
        if (names)
                qsort(names, n, sizeof(*names), cmp);
        for (size_t i = 0; i < n; i++) {
                if (!rc) {
                        rc = run_file(names[i]);
                        (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return rc;
}

int main(int argc, char **argv) {
        int count = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st)) {
                        perror(argv[i]);
                        return 1;
                }
                int rc = S_ISDIR(st.st_mode) ? run_dir(argv[i], &count)
                                             : (count++, run_file(argv[i]));
                if (rc)
                        return rc;
        }
        fprintf(stderr, "fuzz replay: %d inputs, no crash\n", count);
        return 0;
}
