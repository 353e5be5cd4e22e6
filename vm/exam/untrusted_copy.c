#define _GNU_SOURCE
#include "exam/untrusted_copy.h"

#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 16

struct copy_state {
    const struct copy_rules *r;
    uint64_t bytes;
    char *skipped;
};

static void skip(struct copy_state *s, const char *path, const char *why)
{
    char *n = xasprintf("%s%s%s (%s)", s->skipped, *s->skipped ? ", " : "", path, why);
    free(s->skipped);
    s->skipped = n;
}

/* Copies an opened regular file's bytes to a new file DST in DFD. */
static int copy_bytes(int in, int dfd, const char *dst, mode_t mode, struct copy_state *s)
{
    int out = openat(dfd, dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (out < 0)
        return -1;
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (s->r->max_bytes && (s->bytes += (uint64_t)n) > s->r->max_bytes) {
            rc = -1;
            errno = EFBIG;
            break;
        }
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    }
    if (n < 0)
        rc = -1;
    if (rc == 0 && getuid() == 0 && fchown(out, s->r->uid, s->r->gid) != 0)
        rc = -1;
    close(out);
    if (rc != 0)
        unlinkat(dfd, dst, 0);
    return rc;
}

/* Opens NAME in SFD as a regular file that obeys the rules; why not in *why. */
static int open_regular(int sfd, const char *name, const struct copy_rules *r, struct stat *st, const char **why)
{
    int fd = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ELOOP ? "a symlink" : "unreadable";
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        *why = "not a regular file";
    } else if (r->check_author && st->st_uid != r->author) {
        *why = "not the author's own file";
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

int copy_untrusted_file(int dirfd, const char *name, const char *dst, const struct copy_rules *r)
{
    struct stat st;
    const char *why;
    int in = open_regular(dirfd, name, r, &st, &why);
    if (in < 0)
        return -1;
    struct copy_state s = { .r = r, .skipped = NULL };
    struct copy_rules mine = *r;
    mine.uid = getuid();
    mine.gid = getgid();
    s.r = &mine;
    unlink(dst);
    int rc = copy_bytes(in, AT_FDCWD, dst, 0644, &s);
    close(in);
    return rc;
}

static void copy_dir(int sfd, int dfd, const char *rel, int depth, struct copy_state *s)
{
    int lfd = dup(sfd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!d) {
        if (lfd >= 0)
            close(lfd);
        skip(s, rel, "unreadable folder");
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *path = xasprintf("%s%s%s", rel, *rel ? "/" : "", e->d_name);
        struct stat st;
        if (fstatat(sfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            skip(s, path, "vanished");
        } else if (S_ISDIR(st.st_mode)) {
            int csfd = openat(sfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int cdfd = -1;
            if (depth < MAX_DEPTH && csfd >= 0 && mkdirat(dfd, e->d_name, 0755) == 0)
                cdfd = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cdfd >= 0) {
                if (getuid() == 0 && fchown(cdfd, s->r->uid, s->r->gid) != 0)
                    skip(s, path, "cannot give the folder to its builder");
                copy_dir(csfd, cdfd, path, depth + 1, s);
                close(cdfd);
            } else {
                skip(s, path, depth < MAX_DEPTH ? "folder not copied" : "too deep");
            }
            if (csfd >= 0)
                close(csfd);
        } else if (S_ISLNK(st.st_mode)) {
            /* Copied as the link itself: whoever later follows it gets only what they could read anyway. */
            char target[PATH_MAX];
            ssize_t n = readlinkat(sfd, e->d_name, target, sizeof target - 1);
            if (n < 0 || (target[n] = '\0', symlinkat(target, dfd, e->d_name) != 0))
                skip(s, path, "symlink not copied");
            else if (getuid() == 0 && fchownat(dfd, e->d_name, s->r->uid, s->r->gid, AT_SYMLINK_NOFOLLOW) != 0) {
                /* A link the candidate does not own in their own copy: take it out rather than leave it. */
                unlinkat(dfd, e->d_name, 0);
                skip(s, path, "symlink not given to its owner");
            }
        } else if (S_ISREG(st.st_mode)) {
            const char *why = NULL;
            int in = open_regular(sfd, e->d_name, s->r, &st, &why);
            if (in < 0)
                skip(s, path, why);
            else if (copy_bytes(in, dfd, e->d_name, (st.st_mode & 0755) | 0600, s) != 0)
                skip(s, path, errno == EFBIG ? "over the size limit" : "not copied");
            if (in >= 0)
                close(in);
        } else {
            skip(s, path, "not a file or folder");
        }
        free(path);
    }
    closedir(d);
}

int copy_untrusted_tree(const char *src, const char *dst, const struct copy_rules *r, char **skipped)
{
    *skipped = strdup("");
    int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0)
        return -1;
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) {
        close(sfd);
        return -1;
    }
    int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        close(sfd);
        return -1;
    }
    if (getuid() == 0 && fchown(dfd, r->uid, r->gid) != 0) {
        close(sfd);
        close(dfd);
        return -1;
    }
    struct copy_state s = { .r = r, .skipped = *skipped };
    copy_dir(sfd, dfd, "", 0, &s);
    *skipped = s.skipped;
    close(sfd);
    close(dfd);
    return 0;
}
