/* run/reset_hold.h */
#define _GNU_SOURCE
#include "run/reset_hold.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLD "reset.hold"

static bool held(void *ctx);

int reset_hold_create(const char *run_dir, pid_t pid)
{
    char *path = path_join(run_dir, HOLD);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && !held((void *)run_dir)) {   /* left by a klab reset that was killed */
        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    free(path);
    if (fd < 0)
        return -1;
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)pid);
    int rc = write(fd, text, (size_t)n) == n ? 0 : -1;
    close(fd);
    return rc;
}

void reset_hold_release(const char *run_dir)
{
    char *path = path_join(run_dir, HOLD);
    unlink(path);
    free(path);
}

/* The hold's process is alive: the file is there, a regular file naming a pid that exists. */
static bool held(void *ctx)
{
    const char *run_dir = ctx;
    int dfd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *text = dfd >= 0 ? read_text_file_at(dfd, HOLD) : NULL;
    if (dfd >= 0)
        close(dfd);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    return pid > 1 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static bool released(void *ctx) { return !held(ctx); }

bool reset_hold_present(const char *run_dir) { return held((void *)run_dir); }

bool reset_hold_wait(const char *run_dir, int timeout_ms)
{
    if (!held((void *)run_dir))
        return true;
    return wait_until(timeout_ms, 2, released, (void *)run_dir) && !wait_aborted();
}
