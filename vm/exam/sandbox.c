#define _GNU_SOURCE
#include "exam/sandbox.h"

#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_COVERS 16

/* Setup failures go to the log and end the child: nothing runs half-sandboxed. */
static _Noreturn void refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("klab sandbox: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s\n", strerror(errno));
    va_end(ap);
    _exit(125);
}

static void write_proc(const char *file, const char *text)
{
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        refuse("cannot write %s", file);
    close(fd);
}

/* Not root: a user namespace of our own, where we may make the mounts below (user_namespaces(7)). Our uid
 * maps to itself, so files keep their owners. */
static void enter_user_namespace(void)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER) != 0)
        refuse("unshare(CLONE_NEWUSER)");
    char map[64];
    write_proc("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    write_proc("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    write_proc("/proc/self/gid_map", map);
}

static void mkdir_chain(const char *path)
{
    if (mkdir_p(path, 0755) != 0)
        refuse("cannot make %s inside the sandbox", path);
}

static void bind_fd(int fd, const char *target, bool writable)
{
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    struct stat st;
    if (stat(target, &st) != 0)
        mkdir_chain(target);
    if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) != 0)
        refuse("cannot show %s", target);
    if (writable) {
        struct mount_attr a = { .attr_clr = MOUNT_ATTR_RDONLY };
        if (mount_setattr(AT_FDCWD, target, 0, &a, sizeof a) != 0)
            refuse("cannot make %s writable", target);
    }
}

static void cover(const char *dir, const char *mode)
{
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT)
        return;   /* under a folder covered already (a room in /tmp): hidden as it is */
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, mode) != 0)
        refuse("cannot cover %s", dir);
}

/* The highest folder above PATH that others cannot search (mode without o+x): covered by a tmpfs, under
 * which PATH's chain is made again and PATH bound back. NULL when every parent is searchable. */
static char *private_ancestor(const char *path)
{
    char *p = strdup(path);
    for (char *s = p + 1; p && *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        struct stat st;
        if (stat(p, &st) == 0 && !(st.st_mode & S_IXOTH))
            return p;
        *s = '/';
    }
    free(p);
    return NULL;
}

static bool covered(char *const *covers, size_t n, const char *dir)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(covers[i], dir))
            return true;
    return false;
}

static void build_mounts(const struct sandbox *sb)
{
    if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWUTS) != 0)
        refuse("unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        refuse("cannot make / private");
    /* What stays visible, opened before anything is covered. */
    int wfd = open(sb->write_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (wfd < 0)
        refuse("cannot open %s", sb->write_dir);
    int rfd[16];
    size_t nread = sb->nread;
    if (nread > sizeof rfd / sizeof *rfd) {
        errno = E2BIG;
        refuse("%zu folders to show: at most 16", nread);
    }
    for (size_t i = 0; i < nread; i++)
        if ((rfd[i] = open(sb->read_dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
            refuse("cannot open %s", sb->read_dirs[i]);
    char *covers[MAX_COVERS];
    size_t ncovers = 0;
    for (size_t i = 0; i < nread && ncovers < MAX_COVERS; i++) {
        char *a = private_ancestor(sb->read_dirs[i]);
        if (a && !covered(covers, ncovers, a))
            covers[ncovers++] = a;
        else
            free(a);
    }
    struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID };
    if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) != 0)
        refuse("cannot make the file system read-only");
    cover("/tmp", "mode=1777");
    cover("/dev/shm", "mode=1777");
    if (sb->hide_dir)
        cover(sb->hide_dir, "mode=0755");
    for (size_t i = 0; i < ncovers; i++) {
        cover(covers[i], "mode=0755");
        free(covers[i]);
    }
    for (size_t i = 0; i < nread; i++)
        bind_fd(rfd[i], sb->read_dirs[i], false);
    bind_fd(wfd, sb->write_dir, true);
}

static _Noreturn void run_inside(const struct sandbox *sb, char *const argv[], char *const envp[], int log)
{
    /* PID 1 of the new PID namespace: its own /proc, so no other process of the host is seen. */
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        refuse("cannot mount /proc");
    if (getuid() == 0 && (setgroups(0, NULL) != 0 || setgid(sb->gid) != 0 || setuid(sb->uid) != 0))
        refuse("cannot become uid %u", (unsigned)sb->uid);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        refuse("prctl");
    if (chdir(sb->write_dir) != 0)
        refuse("cannot enter %s", sb->write_dir);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    close_range(3, ~0u, 0);
    execve(argv[0], argv, envp);
    refuse("cannot execute %s", argv[0]);
}

/* The sandbox's outer child: namespaces and mounts, then PID 1 of the new PID namespace, whose exit it
 * passes on. */
static _Noreturn void child(const struct sandbox *sb, char *const argv[], char *const envp[], int log)
{
    dup2(log, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getuid() != 0)
        enter_user_namespace();
    build_mounts(sb);
    pid_t init = fork();
    if (init < 0)
        refuse("fork");
    if (init == 0)
        run_inside(sb, argv, envp, log);
    int status;
    while (waitpid(init, &status, 0) < 0 && errno == EINTR)
        ;
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

struct sandboxed {
    const struct sandbox *sb;
    char *const *argv, *const *envp;
};

static void sandboxed_child(void *ctx)
{
    const struct sandboxed *x = ctx;
    child(x->sb, x->argv, x->envp, STDOUT_FILENO);
}

int sandbox_run(const struct sandbox *sb, char *const argv[], char *const envp[], const char *log_path, int timeout_s)
{
    struct sandboxed x = { sb, argv, envp };
    /* At the deadline the outer child is killed: its PID 1 dies with it (PDEATHSIG), and with PID 1
     * everything inside. */
    struct spawn s = { .child = sandboxed_child, .ctx = &x, .output = log_path, .timeout_ms = timeout_s * 1000 };
    int rc = spawn_run(&s);
    return rc >= 128 ? -1 : rc;
}
