#include "ks_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char service_value[1024];

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
                snprintf(service_value, sizeof(service_value), "%s",
                         line + nlen + 1);
                found = service_value;
                break;
        }
        fclose(f);
        return found;
}

const char *ks_test_require_service(const char *name) {
        const char *v = ks_test_service(name);
        if (v)
                return v;
        const char *ci = getenv("CI");
        if (ci && !strcmp(ci, "true"))
                ck_abort_msg(
                        "%s is not available and CI=true: system "
                        "tests must not skip in CI",
                        name);
        fprintf(stderr,
                "SKIP: %s not available (set it or run ctest with "
                "the ks_services fixture)\n",
                name);
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
        SRunner *sr = srunner_create(ks_test_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
