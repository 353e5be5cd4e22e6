/* A candidate's files: their folder and workspace, and the image their VM boots (vm/exam/controller.h). */
#define _GNU_SOURCE
#include "exam/controller.h"
#include "exam/untrusted_copy.h"
#include "machine/paths.h"
#include "util/util.h"

#include "rootfs/initramfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The owner of what klab makes for candidate k: k when they are a Unix user, else klab's user. */
static struct copy_rules copy_rules_for(const struct candidate *k)
{
    return (struct copy_rules){ .check_author = k->as_user, .author = k->uid,
                                .uid = k->as_user ? k->uid : getuid(), .gid = k->as_user ? k->gid : getgid(),
                                .max_bytes = 64u << 20 };
}

/* The proctor's skeleton and task.md, copied (no link followed) and owned by the candidate. */
static int copy_task(const struct controller *c, const struct candidate *k, const char *skeleton)
{
    struct copy_rules rules = copy_rules_for(k);
    rules.check_author = false;   /* the proctor's files */
    rules.max_bytes = 0;
    char *work = path_join(k->dir, "work"), *skipped = NULL;
    int rc = copy_untrusted_tree(skeleton, work, &rules, &skipped);
    free(skipped);
    free(work);
    int tfd = rc == 0 ? open(c->room.task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (tfd >= 0 && faccessat(tfd, "task.md", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        char *dst = path_join(k->dir, "TASK.md");
        rc = copy_untrusted_file(tfd, "task.md", dst, &rules);
        if (rc == 0 && k->as_user)
            rc = chown(dst, k->uid, k->gid);
        free(dst);
    }
    if (tfd >= 0)
        close(tfd);
    return rc;
}

/* The candidate's klab builds their VM's image from klab's busybox in their cache (DIR/candidates/NAME/.cache,
 * theirs): a copy of the controller's, which they cannot read. */
static int give_busybox(const struct controller *c, const struct candidate *k)
{
    char *src = default_busybox(c->profile);
    char *cache = path_join(k->dir, ".cache");
    char *dir = xasprintf("%s/busybox/%s", cache, c->profile->debian_arch), *dst = path_join(dir, "busybox");
    int rc = -1;
    if (mkdir_p(dir, 0755) == 0 && (!k->as_user || lchown(cache, k->uid, k->gid) == 0)) {
        unlink(dst);
        struct copy_rules rules = { .uid = getuid(), .gid = getgid() };
        char *slash = strrchr(src, '/');
        *slash = '\0';
        int dfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = dfd >= 0 ? copy_untrusted_file(dfd, slash + 1, dst, &rules) : -1;
        if (rc == 0)
            rc = chmod(dst, 0755);
        if (dfd >= 0)
            close(dfd);
    }
    free(src);
    free(cache);
    free(dir);
    free(dst);
    return rc;
}

int workspace_setup(const struct controller *c, struct candidate *k, const char *skeleton)
{
    bool fresh = !file_exists(k->dir);
    mkdir_p(k->run_dir, 0700);
    chmod(k->dir, 0700);
    char *all = path_join(c->dir, "candidates");
    chmod(all, 0755);   /* each candidate may reach their own folder, and only that one */
    free(all);
    /* The two folders klab made; what is inside them is the candidate's already, or copied as theirs. */
    if (k->as_user && (lchown(k->dir, k->uid, k->gid) != 0 || lchown(k->run_dir, k->uid, k->gid) != 0)) {
        klab_error("exam: cannot give %s to %s", k->dir, k->name);
        return -1;
    }
    if (give_busybox(c, k) != 0) {
        klab_error("exam: cannot give %s klab's busybox in %s/.cache", k->name, k->dir);
        return -1;
    }
    if (fresh && copy_task(c, k, skeleton) != 0) {
        klab_error("exam: cannot set up %s's workspace in %s", k->name, k->dir);
        return -1;
    }
    return 0;
}

/* Every .ko in the candidate's work/ folder, copied first, without following links, to a folder of the
 * controller's: a `x.ko` symlink to /etc/shadow (or to another candidate's file) must not land in their VM.
 * The folder is stage, made afresh (mode: 0700, or 0755 with files 0644 for the candidate's own klab to
 * read: it sits in their 0700 folder, where no other candidate reaches). */
static size_t stage_modules(const struct candidate *k, const char *stage, bool readable,
                            struct initramfs_add *adds, size_t max)
{
    char *work = path_join(k->dir, "work");
    remove_tree(stage);
    mkdir_p(stage, 0700);
    if (readable)
        chmod(stage, 0755);
    struct copy_rules rules = copy_rules_for(k);
    rules.uid = getuid();
    rules.gid = getgid();
    size_t n = 0;
    int wfd = open(work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = wfd >= 0 ? fdopendir(wfd) : NULL;
    for (struct dirent *e; d && (e = readdir(d)) && n < max;) {
        size_t len = strlen(e->d_name);
        if (len <= 3 || strcmp(e->d_name + len - 3, ".ko"))
            continue;
        char *copy = path_join(stage, e->d_name);
        if (copy_untrusted_file(dirfd(d), e->d_name, copy, &rules) != 0) {
            klab_info("exam: %s: %s is not a regular file of theirs; left out of their VM", k->name, e->d_name);
            free(copy);
            continue;
        }
        if (readable)
            chmod(copy, 0644);
        adds[n++] = (struct initramfs_add){ copy, xasprintf("/lib/modules/%s", e->d_name) };
    }
    if (d)
        closedir(d);
    else if (wfd >= 0)
        close(wfd);
    free(work);
    return n;
}

size_t workspace_modules(const struct candidate *k, struct initramfs_add *adds, size_t max)
{
    char *stage = path_join(k->dir, ".klab-modules");
    size_t n = stage_modules(k, stage, true, adds, max);
    free(stage);
    return n;
}

int workspace_initrd(const struct controller *c, const struct candidate *k, char *err, size_t errlen)
{
    struct initramfs_add adds[32];
    char *stage = xasprintf("%s/private/%s", c->dir, k->name);
    size_t nadds = stage_modules(k, stage, false, adds, 32);
    free(stage);
    char *busybox = default_busybox(c->profile), *segments = segment_cache_dir();
    mkdir_p(segments, 0755);
    struct initramfs_spec spec = { .busybox = busybox, .compress = INITRAMFS_GZIP, .level = 6,
                                   .cache_dir = segments, .adds = adds, .nadds = nadds };
    char *out = path_join(k->dir, "initrd.cpio.gz");
    int rc = initramfs_build(&spec, out, NULL, err, errlen);
    if (rc == 0 && k->as_user)
        rc = chown(out, k->uid, k->gid);
    for (size_t i = 0; i < nadds; i++) {
        free((char *)adds[i].src);
        free((char *)adds[i].dest);
    }
    free(out);
    free(busybox);
    free(segments);
    return rc;
}
