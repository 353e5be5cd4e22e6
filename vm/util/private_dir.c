#define _GNU_SOURCE
#include "util/private_dir.h"

#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *private_dir_problem(const struct stat *st, uid_t uid)
{
    if (!S_ISDIR(st->st_mode))
        return "is not a folder";
    if (st->st_uid != uid)
        return "belongs to another user";
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "is writable by other users";
    return NULL;
}

const char *ancestor_problem(const struct stat *st, uid_t uid)
{
    if (!S_ISDIR(st->st_mode))
        return "is not a folder";
    if (st->st_uid != 0 && st->st_uid != uid)
        return "belongs to another user";
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
        return "is writable by other users and not sticky";
    return NULL;
}

/* Every folder from / down to DIR (a resolved path, no symlinks) is root's or the user's and only sticky
 * when shared. */
static int check_ancestors(const char *dir, char *err, size_t errlen)
{
    char *p = strdup(dir);
    if (!p)
        return -1;
    int rc = 0;
    for (char *s = p;; s++) {
        if (*s != '/' && *s)
            continue;
        char keep = *s;
        *s = '\0';
        struct stat st;
        const char *here = *p ? p : "/";
        const char *why = lstat(here, &st) != 0 ? strerror(errno) : ancestor_problem(&st, getuid());
        if (why) {
            snprintf(err, errlen, "%s %s", here, why);
            rc = -1;
            break;
        }
        *s = keep;
        if (!keep)
            break;
    }
    free(p);
    return rc;
}

int private_subdir_open(int parent, const char *name, bool create, char *err, size_t errlen)
{
    if (create && mkdirat(parent, name, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", name, strerror(errno));
        return -1;
    }
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s", name,
                 e == ELOOP || e == ENOTDIR ? "is a symlink or not a folder" : strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    const char *why = fstat(fd, &st) != 0 ? strerror(errno) : private_dir_problem(&st, getuid());
    if (why) {
        snprintf(err, errlen, "%s %s", name, why);
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

int private_dir_open(const char *path, bool create, char *err, size_t errlen)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    const char *parent = !slash ? "." : slash == copy ? "/" : (*slash = '\0', copy);
    if (!*base) {
        snprintf(err, errlen, "%s is not a folder name", path);
        free(copy);
        return -1;
    }
    if (create && mkdir_p(parent, 0700) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", parent, strerror(errno));
        free(copy);
        return -1;
    }
    char real[PATH_MAX];
    if (!realpath(parent, real)) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", parent, strerror(e));
        free(copy);
        errno = e;
        return -1;
    }
    int fd = -1;
    int pfd = check_ancestors(real, err, errlen) == 0 ? open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (pfd >= 0) {
        char sub[512];
        fd = private_subdir_open(pfd, base, create, sub, sizeof sub);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "%s/%s", real, sub);
            errno = e;
        }
        close(pfd);
    }
    free(copy);
    return fd;
}

bool trusted_path(const char *path, uid_t uid)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return false;
    if (S_ISLNK(st.st_mode)) {
        /* A link (scripts_gdb makes vmlinux-gdb.py one, into the kernel source): judged by where it leads,
         * whose path has no links left. The link itself is only as safe as its folder: callers check it. */
        char *real = realpath(path, NULL);
        bool ok = real && trusted_path(real, uid);
        free(real);
        return ok;
    }
    if (!(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
        return false;
    if ((st.st_uid != 0 && st.st_uid != uid) || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return false;
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    bool ok = true;
    if (slash) {
        *slash = '\0';
        struct stat ds;
        ok = lstat(*dir ? dir : "/", &ds) == 0 && ancestor_problem(&ds, uid) == NULL &&
             !(ds.st_mode & (S_IWGRP | S_IWOTH));
    }
    free(dir);
    return ok;
}
