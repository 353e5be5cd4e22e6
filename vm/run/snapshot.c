/* run/snapshot.h. */
#define _GNU_SOURCE
#include "run/snapshot.h"
#include "run/snapshot_key.h"

#include "machine/paths.h"
#include "rootfs/init_script.h"
#include "run/monitor.h"
#include "util/private_dir.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORMAT "version klab-snapshot 1\n"

/* A file's identity for the manifest: a rebuilt kernel or an upgraded QEMU has another one. */
static char *stamp_line(const char *what, const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return xasprintf("file %s %s missing\n", what, path ? path : "-");
    return xasprintf("file %s %s %lld %lld.%09ld %llu:%llu\n", what, path, (long long)st.st_size,
                     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino);
}

/* The initramfs by content: klab builds it afresh in every run-state folder, byte for byte the same. */
static char *image_line(const char *path)
{
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return strdup("image none\n");
    uint64_t h = SNAPSHOT_HASH_INIT, size = 0;
    static char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        h = snapshot_hash(h, buf, (size_t)n);
        size += (uint64_t)n;
    }
    close(fd);
    return xasprintf("image %" PRIu64 " %016" PRIx64 "\n", size, h);
}

/* The snapshots' root: $KLAB_CACHE/snapshots (created private), or the given folder. One the user owns is
 * theirs to save in (what they save is readable by whoever may read the folder: an exam room's snapshot,
 * shared with its candidates); one of root's that nobody else may write is used read-only. */
static int open_root(const char *given, struct snapshot *s, char **out, char *err, size_t errlen)
{
    char *cache = given ? NULL : klab_cache_dir();
    *out = given ? strdup(given) : path_join(cache, "snapshots");
    free(cache);
    char why[256];
    int fd = private_dir_open(*out, !given, why, sizeof why);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        s->writable = true;
        s->shared = (st.st_mode & 0055) != 0;
        close(fd);
        return 0;
    }
    if (fd >= 0)
        close(fd);
    if (given && errno == EPERM && trusted_path(*out, getuid()) && stat(*out, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;   /* read-only */
    snprintf(err, errlen, "%s", why);
    return -1;
}

int snapshot_find(const char *root, char *const *argv, const char *run_dir, const char *kernel,
                  const char *qemu_path, const char *initrd, struct snapshot *s, char *err, size_t errlen)
{
    *s = (struct snapshot){ 0 };
    char *dir;
    if (open_root(root, s, &dir, err, errlen) != 0) {
        free(dir);
        return -1;
    }
    char *key = snapshot_key_text(argv, run_dir);
    char *k = stamp_line("kernel", kernel), *q = stamp_line("qemu", qemu_path), *img = image_line(initrd);
    s->manifest = xasprintf(FORMAT "%s%s%s%s", key, k, q, img);
    char name[17];
    snprintf(name, sizeof name, "%016" PRIx64, snapshot_hash(SNAPSHOT_HASH_INIT, key, strlen(key)));
    s->slot = path_join(dir, name);
    char *file = path_join(s->slot, "manifest");
    char *old = read_text_file(file);
    if (old) {
        s->stale = snapshot_manifest_diff(old, s->manifest);
        s->ready = !s->stale;
    }
    free(old);
    free(file);
    free(key);
    free(k);
    free(q);
    free(img);
    free(dir);
    return 0;
}

void snapshot_free(struct snapshot *s)
{
    free(s->slot);
    free(s->manifest);
    *s = (struct snapshot){ 0 };
}

struct shell_watch {
    char *log;
    pid_t qemu;
    bool ended;
};

/* The shell is waiting for input (/init said it starts it, and the console ends with its prompt), or QEMU
 * has ended. */
static bool shell_prompt(void *ctx)
{
    struct shell_watch *w = ctx;
    int status;
    if (waitpid(w->qemu, &status, WNOHANG) == w->qemu)
        return w->ended = true;
    char *text = read_text_file(w->log);
    char *mark = text ? strstr(text, KLAB_SHELL_MARK) : NULL;
    /* busybox's line editor follows its prompt with a cursor-position query (ESC [6n, libbb/lineedit.c
     * ask_terminal) that it does not wait for. */
    char *prompt = mark ? strstr(mark, "# ") : NULL;
    while (prompt && strstr(prompt + 2, "# "))
        prompt = strstr(prompt + 2, "# ");
    bool ready = prompt && (!prompt[2] || !strcmp(prompt + 2, "\033[6n"));
    free(text);
    return ready;
}

int snapshot_wait_shell(const char *run_dir, pid_t qemu, int timeout_ms, char *err, size_t errlen)
{
    struct shell_watch w = { path_join(run_dir, "console.log"), qemu, false };
    bool ok = wait_until(timeout_ms, 20, shell_prompt, &w) && !w.ended;
    free(w.log);
    if (w.ended)
        snprintf(err, errlen, "QEMU ended before the guest's shell started (see console.log)");
    else if (!ok)
        snprintf(err, errlen, "the shell's prompt did not appear within %d s", timeout_ms / 1000);
    return ok ? 0 : -1;
}

/* One data extent [off, end) of in into out at the same offset, skipping its zero pages: QEMU's RAM file has
 * pages the guest touched and zeroed again. */
static int copy_skipping_zeros(int in, int out, off_t off, off_t end)
{
    static char buf[1 << 20];
    static const char zero[4096];
    while (off < end) {
        ssize_t n = pread(in, buf, (size_t)(end - off < (off_t)sizeof buf ? end - off : (off_t)sizeof buf), off);
        if (n <= 0)
            return n ? -1 : (errno = EIO, -1);
        for (ssize_t i = 0; i < n;) {   /* runs of non-zero pages, one write each */
            ssize_t j = i;
            while (j < n && memcmp(buf + j, zero, (size_t)(n - j < 4096 ? n - j : 4096)))
                j += 4096;
            ssize_t stop = j < n ? j : n;
            if (j > i && pwrite(out, buf + i, (size_t)(stop - i), off + i) != stop - i)
                return -1;
            i = j + 4096;
        }
        off += n;
    }
    return 0;
}

/* The same, in the kernel (sendfile(2) file to file: a third of the read/write loop's time): for a snapshot's
 * own RAM image, whose zero pages are holes already. */
static int copy_extent(int in, int out, off_t off, off_t end)
{
    if (lseek(out, off, SEEK_SET) != off)
        return -1;
    while (off < end) {
        ssize_t n = sendfile(out, in, &off, (size_t)(end - off));
        if (n <= 0)
            return n ? -1 : (errno = EIO, -1);
    }
    return 0;
}

/* The data of in into out (as large already), leaving holes where in has holes (and, scan_zeros, zero pages),
 * so that a 1 GiB guest at its shell costs the pages it touched. 0, or an errno. */
static int copy_data(int in, int out, bool scan_zeros)
{
    off_t off = 0;
    while ((off = lseek(in, off, SEEK_DATA)) >= 0) {
        off_t end = lseek(in, off, SEEK_HOLE);
        if (end < 0 || (scan_zeros ? copy_skipping_zeros(in, out, off, end) : copy_extent(in, out, off, end)))
            return errno ? errno : EIO;
        off = end;
    }
    return errno == ENXIO ? 0 : errno;   /* ENXIO: SEEK_DATA past the last data */
}

/* Opens src and makes dst (mode, never through a symlink) as large. 0, or -1 with err set. */
static int copy_open(const char *src, const char *dst, unsigned mode, int *in, int *out, char *err, size_t errlen)
{
    *in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    *out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    struct stat st;
    if (*in >= 0 && *out >= 0 && fstat(*in, &st) == 0 && fchmod(*out, mode) == 0 && ftruncate(*out, st.st_size) == 0)
        return 0;
    snprintf(err, errlen, "copying %s: %s", src, strerror(errno));
    if (*in >= 0)
        close(*in);
    if (*out >= 0)
        close(*out);
    return -1;
}

/* Copies src to dst (created with mode), sparsely (copy_data). */
static int copy_sparse(const char *src, const char *dst, unsigned mode, bool scan_zeros, char *err, size_t errlen)
{
    int in, out;
    if (copy_open(src, dst, mode, &in, &out, err, errlen) != 0)
        return -1;
    int e = copy_data(in, out, scan_zeros);
    close(in);
    if (close(out) != 0 && !e)
        e = errno;
    if (e)
        snprintf(err, errlen, "copying %s to %s: %s", src, dst, strerror(e));
    return e ? -1 : 0;
}

/* A monitor command's answer (freed here), which must not be an error. 0, or -1 with err set. */
static int hmp_answer(const char *cmd, char *out, char *err, size_t errlen)
{
    int rc = out && !strstr(out, "rror") ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "QEMU's `%s`: %s", cmd, out ? strtok(out, "\n") : "no answer");
    free(out);
    return rc;
}

/* One monitor command, on a connection of its own. */
static int hmp(const char *mon, const char *cmd, int fd, char *err, size_t errlen)
{
    return hmp_answer(cmd, monitor_command_fd(mon, cmd, fd, 30000), err, errlen);
}

/* The same on the connection m. */
static int hmp_on(struct monitor_conn *m, const char *cmd, char *err, size_t errlen)
{
    return hmp_answer(cmd, monitor_conn_command(m, cmd, -1, 30000), err, errlen);
}

/* The device state, with the shared RAM left out, into tmp/state. */
static int save_state(const char *mon, const char *tmp, unsigned mode, char *err, size_t errlen)
{
    char *file = path_join(tmp, "state");
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    free(file);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write the device state: %s", strerror(errno));
        return -1;
    }
    int rc = hmp(mon, "getfd klab-snapshot", fd, err, errlen);
    close(fd);
    if (rc == 0 && hmp(mon, "migrate_set_capability x-ignore-shared on", -1, err, errlen) == 0 &&
        hmp(mon, "migrate fd:klab-snapshot", -1, err, errlen) == 0) {
        char *info = monitor_command(mon, "info migrate", 5000);
        rc = info && strstr(info, "Migration status: completed") ? 0 : -1;
        if (rc)
            snprintf(err, errlen, "QEMU's migration did not complete: %s",
                     info && strstr(info, "Migration status:") ? strtok(strstr(info, "Migration status:"), "\n")
                                                               : "no status");
        free(info);
    } else {
        rc = -1;
    }
    return rc;
}

/* Puts a finished tmp folder in the slot's place (another boot may have saved it meanwhile: theirs stays). */
static void publish(const struct snapshot *s, const char *tmp)
{
    if (rename(tmp, s->slot) == 0)
        return;
    if (errno == ENOTEMPTY || errno == EEXIST) {
        char *old = xasprintf("%s.old-%d", s->slot, (int)getpid());
        if (rename(s->slot, old) == 0 && rename(tmp, s->slot) == 0) {
            remove_tree(old);
            free(old);
            return;
        }
        free(old);
    }
    remove_tree(tmp);
}

int snapshot_save(const struct snapshot *s, const char *run_dir, char *err, size_t errlen)
{
    char *mon = path_join(run_dir, "monitor.sock"), *tmp = xasprintf("%s.new-%d", s->slot, (int)getpid());
    char *ram = path_join(run_dir, "ram"), *ram_to = path_join(tmp, "ram");
    char *con = path_join(run_dir, "console.log"), *con_to = path_join(tmp, "console.log");
    unsigned mode = s->shared ? 0644 : 0600;
    remove_tree(tmp);
    int rc = -1;
    if (!s->writable)
        snprintf(err, errlen, "%s is not this user's to save in", s->slot);
    else if (mkdir(tmp, 0700) != 0 || (s->shared && chmod(tmp, 0755) != 0))
        snprintf(err, errlen, "cannot make %s: %s", tmp, strerror(errno));
    else if (hmp(mon, "stop", -1, err, errlen) == 0 && copy_sparse(ram, ram_to, mode, true, err, errlen) == 0 &&
             save_state(mon, tmp, mode, err, errlen) == 0 && copy_sparse(con, con_to, mode, false, err, errlen) == 0) {
        char *manifest = path_join(tmp, "manifest");
        rc = write_text_file(manifest, s->manifest);
        if (rc == 0)
            rc = chmod(manifest, mode);
        if (rc)
            snprintf(err, errlen, "cannot write %s: %s", manifest, strerror(errno));
        free(manifest);
    }
    if (rc == 0)
        publish(s, tmp);
    else
        remove_tree(tmp);
    free(mon);
    free(tmp);
    free(ram);
    free(ram_to);
    free(con);
    free(con_to);
    return rc;
}

void snapshot_drop(const struct snapshot *s)
{
    if (!s->writable)
        return;
    char *manifest = path_join(s->slot, "manifest");
    unlink(manifest);   /* first: a slot without one is never restored */
    free(manifest);
    remove_tree(s->slot);
}

pid_t snapshot_stage_start(const struct snapshot *s, const char *run_dir, char *err, size_t errlen)
{
    char *ram = path_join(s->slot, "ram"), *ram_to = path_join(run_dir, "ram");
    char *con = path_join(s->slot, "console.log"), *con_to = path_join(run_dir, "console.log");
    unlink(ram_to);
    int in = -1, out = -1;
    pid_t pid = -1;
    if (copy_sparse(con, con_to, 0600, false, err, errlen) == 0 &&
        copy_open(ram, ram_to, 0600, &in, &out, err, errlen) == 0) {
        fflush(NULL);
        pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a restore given up on leaves no copier behind */
            int e = copy_data(in, out, false);
            _exit(e > 0 && e < 256 ? e : e ? EIO : 0);   /* the exit status is the errno */
        }
        if (pid < 0)
            snprintf(err, errlen, "fork: %s", strerror(errno));
        close(in);
        close(out);
    }
    free(ram);
    free(ram_to);
    free(con);
    free(con_to);
    return pid;
}

void snapshot_stage_cancel(pid_t copier)
{
    kill(copier, SIGKILL);
    while (waitpid(copier, NULL, 0) < 0 && errno == EINTR)
        ;
}

int snapshot_stage_finish(pid_t copier, char *err, size_t errlen)
{
    int status;
    while (waitpid(copier, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(err, errlen, "the RAM image's copy: %s", strerror(errno));
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    snprintf(err, errlen, "copying the snapshot's RAM image: %s",
             WIFEXITED(status) ? strerror(WEXITSTATUS(status)) : "the copier was killed");
    return -1;
}

int snapshot_open_state(const struct snapshot *s, char *err, size_t errlen)
{
    char *file = path_join(s->slot, "state");
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
    free(file);
    return fd;
}

/* Asks QEMU's status on a connection: done once it is no longer "inmigrate" (it has loaded the state), the
 * answer kept for the caller. */
struct status_watch {
    struct monitor_conn *mon;
    char *status;   /* the last answer, NULL when there was none */
};

static bool migrated(void *ctx)
{
    struct status_watch *w = ctx;
    free(w->status);
    w->status = monitor_conn_command(w->mon, "info status", -1, 2000);
    return !w->status || !strstr(w->status, "inmigrate");
}

int snapshot_incoming(struct monitor_conn *mon, bool run, char *err, size_t errlen)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "migrate_incoming fd:%d", SNAPSHOT_STATE_FD);
    struct status_watch w = { mon, NULL };
    int rc = hmp_on(mon, "migrate_set_capability x-ignore-shared on", err, errlen) == 0 &&
                     hmp_on(mon, cmd, err, errlen) == 0 ? 0 : -1;
    if (rc == 0 && !wait_until(30000, 1, migrated, &w)) {
        snprintf(err, errlen, "QEMU was still loading the device state after 30 s");
        rc = -1;
    }
    char *status = w.status;
    if (rc == 0 && (!status || !strstr(status, "paused"))) {
        snprintf(err, errlen, "QEMU did not load the device state (%s)",
                 status ? strtok(status, "\n") : "it ended: see qemu.log");
        rc = -1;
    }
    free(status);
    if (rc == 0 && run)
        rc = hmp_on(mon, "cont", err, errlen);
    return rc;
}
