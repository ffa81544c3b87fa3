/* Directories (fs_int.h). */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fs_int.h"

ks_err_t ks__mkdirs(const char *path) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0755) && errno != EEXIST)
                        return KS_ERR_IO;
                *p = '/';
        }
        return mkdir(buf, 0755) && errno != EEXIST ? KS_ERR_IO : KS_OK;
}

static int remove_entry(const char *path,
                        const struct stat *st,
                        int flag,
                        struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

int ks__rmtree(const char *path) {
        return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
