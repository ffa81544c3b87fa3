/* Removing the state of tasks that moved away: a task directory is kept
 * for state.cleanup.delay.ms after its last write, so a task that comes
 * back restores only the changelog's tail, then deleted. A directory in use
 * is locked (the stores' LOCK file) and never touched. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_int.h"
#include "streams_int.h"

/* The newest modification time of the directory's files. */
static int64_t last_write_ms(const char *dir) {
        int64_t newest = 0;
        DIR *d         = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
                char path[1300];
                struct stat st;
                if (e->d_name[0] == '.')
                        continue; /* the directory's own times don't count */
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                if (!stat(path, &st)) {
                        int64_t ms = (int64_t)st.st_mtim.tv_sec * 1000 +
                                     st.st_mtim.tv_nsec / 1000000;
                        if (ms > newest)
                                newest = ms;
                }
        }
        if (d)
                closedir(d);
        return newest;
}

int ks__state_cleanup(const char *app_dir, int64_t delay_ms, int64_t now_ms) {
        DIR *d = opendir(app_dir);
        struct dirent *e;
        int removed = 0;
        if (!d)
                return 0; /* nothing stored yet */
        while ((e = readdir(d))) {
                char dir[1024], lock[1100];
                if (e->d_name[0] == '.')
                        continue;
                snprintf(dir, sizeof(dir), "%s/%s", app_dir, e->d_name);
                snprintf(lock, sizeof(lock), "%s/LOCK", dir);
                int fd = open(lock, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        continue; /* not a task directory of ours */
                /* Held while deleting, so no open can slip in between. */
                if (flock(fd, LOCK_EX | LOCK_NB)) {
                        close(fd);
                        continue; /* in use */
                }
                int64_t age = now_ms - last_write_ms(dir);
                if (age >= delay_ms) {
                        if (ks__rmtree(dir))
                                ks__log(KS_LOG_WARNING,
                                        "could not remove old state %s: %s",
                                        dir, strerror(errno));
                        else {
                                removed++;
                                ks__log(KS_LOG_INFO,
                                        "removed the state of task %s, "
                                        "unused for %lld ms",
                                        e->d_name, (long long)age);
                        }
                }
                close(fd);
        }
        closedir(d);
        return removed;
}
