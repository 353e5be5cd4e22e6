#define _GNU_SOURCE
#include "run/runstate.h"

#include "backend/backend.h"
#include "run/monitor.h"
#include "util/private_dir.h"
#include "util/kv.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *runstate_root(void)
{
    const char *env = getenv("KLAB_RUN_DIR");
    if (env && *env)
        return strdup(env);
    env = getenv("XDG_RUNTIME_DIR");
    if (env && *env && access(env, W_OK) == 0)
        return path_join(env, "klab");
    if (access("/dev/shm", W_OK) == 0)
        return xasprintf("/dev/shm/klab-%u", (unsigned)getuid());
    return xasprintf("/tmp/klab-%u", (unsigned)getuid());
}

/* The run root, opened once and checked on that descriptor; every later access goes through it (openat),
 * so what was checked is what is used. -1: not opened yet; root_refused: refused, said once. */
static int root_fd = -1;
static bool root_refused;

int runstate_check_root(bool create)
{
    if (root_fd >= 0 || root_refused)
        return root_fd >= 0 ? 0 : -1;
    char *root = runstate_root();
    char err[768];
    int fd = private_dir_open(root, create, err, sizeof err);
    int rc = 0;
    if (fd >= 0) {
        root_fd = fd;
    } else if (errno == ENOENT && !create) {
        rc = 1;   /* nothing booted yet: nothing to trust or refuse */
    } else {
        klab_error("refusing the run-state folder: %s (it must be yours, mode 0700: remove it, or set KLAB_RUN_DIR)",
                   err);
        root_refused = true;
        rc = -1;
    }
    free(root);
    return rc;
}

int runstate_open_dir(const char *name, bool create)
{
    if (!runstate_valid_name(name) || runstate_check_root(create) != 0)
        return -1;
    char err[768];
    int fd = private_subdir_open(root_fd, name, create, err, sizeof err);
    if (fd < 0 && errno != ENOENT) {
        char *root = runstate_root();
        klab_error("refusing the run-state folder %s/%s", root, err);
        free(root);
    }
    return fd;
}

char *runstate_dir_for(const char *name)
{
    char *root = runstate_root();
    char *dir = path_join(root, name);
    free(root);
    return dir;
}

bool runstate_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= 64 && name[0] != '.' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int runstate_write(const struct runstate *rs)
{
    char *ram = strdup("");
    for (size_t i = 0; i < rs->nram; i++) {
        char *n = xasprintf("%sram_region=0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 "\n", ram, rs->ram[i].gpa,
                            rs->ram[i].size, rs->ram[i].file_offset);
        free(ram);
        ram = n;
    }
    char *text = xasprintf("name=%s\narch=%s\nqemu_pid=%d\nsupervisor_pid=%d\ngdb=%s\ngdb_port=%d\n"
                           "kernel=%s\nvmlinux=%s\ninitrd=%s\naccel=%s\ncpu=%s\nmem_bytes=%" PRIu64 "\n"
                           "kaslr=%d\nrestored=%d\nbackend=%s\nconnect=%s\nram_file=%s/ram\nconsole_log=%s/console.log\nmonitor=%s/monitor.sock\n%s",
                           rs->name, rs->profile->arch, (int)rs->qemu_pid, (int)rs->supervisor_pid, rs->gdb_listen,
                           rs->gdb_port, rs->kernel, rs->vmlinux ? rs->vmlinux : "", rs->initrd ? rs->initrd : "",
                           rs->accel, rs->cpu, rs->mem_bytes, (int)rs->kaslr, (int)rs->restored, rs->backend ? rs->backend : "qemu",
                           rs->connect ? rs->connect : "", rs->dir, rs->dir, rs->dir, ram);
    char *path = path_join(rs->dir, "state");
    int rc = write_text_file(path, text);
    free(path);
    free(text);
    free(ram);
    return rc;
}

static char *dup_nonempty(const char *v) { return *v ? strdup(v) : NULL; }

int runstate_load(const char *name, struct runstate *rs)
{
    memset(rs, 0, sizeof *rs);
    if (!runstate_valid_name(name))
        return -1;
    int dfd = runstate_open_dir(name, false);
    char *text = dfd >= 0 ? read_text_file_at(dfd, "state") : NULL;
    if (dfd >= 0)
        close(dfd);
    rs->dir = runstate_dir_for(name);
    if (!text) {
        runstate_free(rs);
        return -1;
    }
    rs->name = strdup(name);
    int rc = runstate_parse(text, rs);
    free(text);
    return rc;
}

int runstate_parse(char *text, struct runstate *rs)
{
    struct kv_reader rd;
    kv_begin(&rd, text, KV_NO_COMMENTS);
    char *k, *v;
    while (kv_next(&rd, '=', &k, &v)) {
        if (!v)
            continue;
        char **str = !strcmp(k, "gdb") ? &rs->gdb_listen : !strcmp(k, "accel") ? &rs->accel
                   : !strcmp(k, "cpu") ? &rs->cpu : !strcmp(k, "backend") ? &rs->backend
                   : !strcmp(k, "connect") ? &rs->connect : NULL;
        char **opt = !strcmp(k, "kernel") ? &rs->kernel : !strcmp(k, "vmlinux") ? &rs->vmlinux
                   : !strcmp(k, "initrd") ? &rs->initrd : NULL;
        if (str) {
            free(*str);   /* a key given twice: the last one counts, and nothing leaks */
            *str = strdup(v);
        } else if (opt) {
            free(*opt);
            *opt = dup_nonempty(v);
        } else if (!strcmp(k, "arch"))
            rs->profile = profile_find(v);
        else if (!strcmp(k, "qemu_pid"))
            rs->qemu_pid = (pid_t)atoi(v);
        else if (!strcmp(k, "supervisor_pid"))
            rs->supervisor_pid = (pid_t)atoi(v);
        else if (!strcmp(k, "gdb_port"))
            rs->gdb_port = atoi(v);
        else if (!strcmp(k, "mem_bytes"))
            rs->mem_bytes = strtoull(v, NULL, 10);
        else if (!strcmp(k, "kaslr"))
            rs->kaslr = atoi(v) != 0;
        else if (!strcmp(k, "restored"))
            rs->restored = atoi(v) != 0;
        else if (!strcmp(k, "ram_region") && rs->nram < MAX_RAM_REGIONS) {
            struct ram_region *r = &rs->ram[rs->nram];
            if (sscanf(v, "%" SCNx64 " %" SCNx64 " %" SCNx64, &r->gpa, &r->size, &r->file_offset) == 3)
                rs->nram++;
        }
    }
    if (!rs->profile || rs->qemu_pid <= 0 || !rs->gdb_listen || !backend_find(rs->backend)) {
        runstate_free(rs);
        return -1;
    }
    return 0;
}

void runstate_free(struct runstate *rs)
{
    free(rs->name);
    free(rs->dir);
    free(rs->gdb_listen);
    free(rs->kernel);
    free(rs->vmlinux);
    free(rs->initrd);
    free(rs->accel);
    free(rs->cpu);
    free(rs->backend);
    free(rs->connect);
    memset(rs, 0, sizeof *rs);
}

bool runstate_is_libvirt(const struct runstate *rs)
{
    return !backend_find(rs->backend)->ram_file;
}

char *runstate_monitor(const struct runstate *rs, const char *cmd, int timeout_ms)
{
    return backend_find(rs->backend)->monitor(rs, cmd, timeout_ms);
}

/* PID is a process of this user whose command line has the argument WANT: what klab checks before it
 * signals a pid read from a state file (a pid alone may have been reused, or written by someone else). */
static bool pid_is_ours(pid_t pid, const char *want)
{
    if (pid <= 0)
        return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    struct stat st;
    if (stat(path, &st) != 0 || st.st_uid != getuid())
        return false;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    for (ssize_t i = 0; i < n;) {
        if (!strcmp(buf + i, want))
            return true;
        i += (ssize_t)strnlen(buf + i, (size_t)(n - i)) + 1;
    }
    return false;
}

bool runstate_alive(const struct runstate *rs)
{
    if (runstate_is_libvirt(rs))
        return pid_is_ours(rs->supervisor_pid, "boot");
    /* QEMU was started with -name klab-<name>. */
    char want[80];
    snprintf(want, sizeof want, "klab-%s", rs->name);
    return pid_is_ours(rs->qemu_pid, want);
}

int runstate_lock(int dfd)
{
    int fd = openat(dfd, "lock", O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    for (int i = 0; i < 20; i++) {   /* a sweeper's test holds it for an instant */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        sleep_ms(10);
    }
    close(fd);
    return -1;
}

/* The lock is held by the VM's supervisor from the claim of the folder until the VM has ended and been
 * cleaned up: a held lock is a VM starting or running, whatever the state file says. */
static bool lock_held(int dfd)
{
    int fd = openat(dfd, "lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);   /* releases it if this test took it */
    return held;
}

bool runstate_starting(const char *name)
{
    int dfd = runstate_open_dir(name, false);
    bool held = dfd >= 0 && lock_held(dfd);
    if (dfd >= 0)
        close(dfd);
    return held;
}

/* `make vm-*` fetches kernels and builds the image before klab boot runs: it leaves <root>/.starting-NAME
 * with its own pid, so that `klab gdb NAME` typed meanwhile waits instead of saying there is no VM. */
int runstate_announce(const char *name, pid_t pid)
{
    if (!runstate_valid_name(name) || runstate_check_root(true) != 0)
        return -1;
    char *file = xasprintf(".starting-%s", name), *text = xasprintf("%d\n", (int)pid);
    int rc = write_text_file_at(root_fd, file, text);
    free(file);
    free(text);
    return rc;
}

bool runstate_announced(const char *name)
{
    if (runstate_check_root(false) != 0)
        return false;
    char *file = xasprintf(".starting-%s", name);
    char *text = read_text_file_at(root_fd, file);
    pid_t pid = text ? (pid_t)atoi(text) : 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    struct stat st;
    bool alive = pid > 0 && stat(path, &st) == 0 && st.st_uid == getuid();
    if (text && !alive)
        unlinkat(root_fd, file, 0);
    free(file);
    free(text);
    return alive;
}

/* A folder whose supervisor is gone (killed, or its machine's power lost): QEMU died with it (PDEATHSIG).
 * Drop the RAM file, image and sockets; say why it ended, for `klab status`; keep the logs. */
static void sweep(int dfd)
{
    static const char *const leftovers[] = { "ram", "state", "monitor.sock", "console.sock", "initramfs.cpio.gz",
                                             "run-hook.sh", "domain.xml" };
    char *text = read_text_file_at(dfd, "state");
    bool had_state = text != NULL;
    free(text);
    for (size_t i = 0; i < sizeof leftovers / sizeof *leftovers; i++)
        unlinkat(dfd, leftovers[i], 0);
    if (had_state && faccessat(dfd, "exit", F_OK, AT_SYMLINK_NOFOLLOW) != 0)
        write_text_file_at(dfd, "exit", "supervisor killed: klab's process for this VM ended without cleaning up, "
                                        "and QEMU ended with it\n");
}

static int compare_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char **list_dirs(size_t *count, bool want_live, bool clean_stale)
{
    *count = 0;
    if (runstate_check_root(false) != 0)
        return NULL;
    int rfd = dup(root_fd);   /* closedir closes its own copy */
    DIR *d = rfd >= 0 ? fdopendir(rfd) : NULL;
    if (!d && rfd >= 0)
        close(rfd);
    if (d)
        rewinddir(d);   /* a dup shares the offset: an earlier listing left it at the end */
    char **names = NULL;
    size_t cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!runstate_valid_name(de->d_name))
            continue;
        char err[512];
        int dfd = private_subdir_open(dirfd(d), de->d_name, false, err, sizeof err);
        if (dfd < 0)
            continue;
        bool live = lock_held(dfd);
        if (!live && clean_stale)
            sweep(dfd);
        close(dfd);
        if (live != want_live)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 8;
            names = realloc(names, cap * sizeof *names);
        }
        names[(*count)++] = strdup(de->d_name);
    }
    if (d)
        closedir(d);
    if (names)
        qsort(names, *count, sizeof *names, compare_str);
    return names;
}

char **runstate_list(size_t *count, bool clean_stale)
{
    return list_dirs(count, true, clean_stale);
}

char **runstate_list_ended(size_t *count)
{
    return list_dirs(count, false, true);
}

void runstate_free_list(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Empties a VM folder of what an ended VM left, but its lock. */
static void clear_run_dir(int dfd, const char *dir)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "lock"))
            continue;
        if (unlinkat(dfd, e->d_name, 0) != 0 && errno == EISDIR) {
            char *p = path_join(dir, e->d_name);   /* the folder is private: its path is safe to use */
            remove_tree(p);
            free(p);
        }
    }
    if (d)
        closedir(d);
    else if (fd >= 0)
        close(fd);
}

int runstate_claim(const char *name)
{
    if (runstate_check_root(true) != 0)
        return -1;
    int dfd = runstate_open_dir(name, true);
    if (dfd < 0)
        return -1;
    int lock = runstate_lock(dfd);
    if (lock < 0) {
        struct runstate old;
        if (runstate_load(name, &old) == 0) {
            klab_error("a VM named '%s' is already running (QEMU pid %d, gdb %s): `klab stop %s`, or choose "
                       "another --name", name, (int)old.qemu_pid, old.gdb_listen, name);
            runstate_free(&old);
        } else {
            klab_error("a VM named '%s' is starting: wait for it, or choose another --name", name);
        }
        close(dfd);
        return -1;
    }
    char *dir = runstate_dir_for(name);
    clear_run_dir(dfd, dir);
    free(dir);
    close(dfd);
    return lock;
}
