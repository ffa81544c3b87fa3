#include "ks_check.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Values read from the services file, one per name, kept for the
 * process's life: a later lookup of another name must not overwrite a
 * pointer a test holds. */
static struct { char *name, *value; } services[16];

/* How many tests skipped for a missing service. Check runs each test in a
 * forked process, whose exit status only says passed or failed: the count
 * lives in memory shared with those processes (mapped before they are
 * forked), so main() can tell "passed" from "skipped". */
static int skipped_local;
static int *skipped = &skipped_local;

static bool ci(void) {
        const char *v = getenv("CI");
        return v && !strcmp(v, "true");
}

const char *ks_test_service(const char *name) {
        const char *env = getenv(name);
        if (env && *env)
                return env;
        const char *path = getenv("KS_SERVICES_FILE");
        if (!path)
                return NULL;
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        char line[1200];
        size_t nlen       = strlen(name);
        const char *found = NULL;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, name, nlen) || line[nlen] != '=')
                        continue;
                line[strcspn(line, "\r\n")] = '\0';
                found                       = line + nlen + 1;
                break;
        }
        fclose(f);
        if (!found)
                return NULL;
        size_t i = 0;
        for (; i < sizeof(services) / sizeof(services[0]) && services[i].name;
             i++)
                if (!strcmp(services[i].name, name) &&
                    !strcmp(services[i].value, found))
                        return services[i].value;
        if (i == sizeof(services) / sizeof(services[0]))
                return NULL; /* more names than any test asks for */
        services[i].name  = strdup(name);
        services[i].value = strdup(found);
        return services[i].value;
}

const char *ks_test_require_service(const char *name) {
        const char *v = ks_test_service(name);
        if (v)
                return v;
        if (ci())
                ck_abort_msg(
                        "%s is not available and CI=true: system "
                        "tests must not skip in CI",
                        name);
        fprintf(stderr,
                "SKIP: %s not available (set it or run ctest with "
                "the ks_services fixture)\n",
                name);
        __atomic_add_fetch(skipped, 1, __ATOMIC_SEQ_CST);
        return NULL;
}

void ks_test_skip_unless_services(const char *const *names) {
        for (; *names; names++) {
                if (ks_test_service(*names))
                        continue;
                const char *ci = getenv("CI");
                if (ci && !strcmp(ci, "true")) {
                        fprintf(stderr,
                                "FAIL: %s is not available and CI=true: "
                                "system tests must not skip in CI\n",
                                *names);
                        exit(EXIT_FAILURE);
                }
                fprintf(stderr,
                        "SKIP: %s not available (set it or run ctest with "
                        "the ks_services fixture)\n",
                        *names);
                exit(77);
        }
}

int main(void) {
        int *shared = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared != MAP_FAILED)
                skipped = shared;
        else
                fprintf(stderr,
                        "warning: mmap failed: skips are only seen "
                        "with CK_FORK=no\n");
        SRunner *sr = srunner_create(ks_test_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        int skips = __atomic_load_n(skipped, __ATOMIC_SEQ_CST);
        if (shared != MAP_FAILED)
                munmap(shared, sizeof(int));
        if (failed)
                return EXIT_FAILURE;
        if (skips && ci()) { /* a test that skipped without failing */
                fprintf(stderr, "FAIL: %d test(s) skipped and CI=true\n",
                        skips);
                return EXIT_FAILURE;
        }
        if (skips) {
                fprintf(stderr,
                        "SKIP: %d test(s) skipped for a missing service\n",
                        skips);
                return KS_TEST_SKIP_CODE;
        }
        return EXIT_SUCCESS;
}
