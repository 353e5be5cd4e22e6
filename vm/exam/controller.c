/* klab exam: a room of isolated lab VMs for an exam — one controller process per room.
 *
 * Isolation: each candidate has a folder DIR/candidates/NAME (mode 0700). When NAME is a Unix user and the
 * controller runs as root, the folder belongs to that user and the candidate's `klab boot` runs as that
 * user, so the VM's gdb stub (a Unix socket, 0700), console, monitor and RAM file are theirs alone. No VM
 * has a network device. Each VM's supervisor is the controller's child with PR_SET_PDEATHSIG: if the
 * controller dies (even kill -9) every supervisor gets SIGTERM, stops its QEMU and removes its run state
 * and RAM file. The control socket (exam/protocol.h) answers root and the controller's user for everything,
 * a candidate for `status` and for resetting their own VM only (SO_PEERCRED).
 *
 * A candidate's VM is `klab boot` itself (run/boot_plan.c plans it), run as that candidate. */
#define _GNU_SOURCE
#include "exam/controller.h"
#include "exam/protocol.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static void on_stop_signal(int sig) { (void)sig; stop_requested = 1; }

/* qemu:///session: the candidate's own libvirt daemon. Its state goes in a short private folder: libvirt puts
 * each domain's monitor socket under XDG_CONFIG_HOME, and a Unix socket path has room for 107 bytes only. */
static void libvirt_session_env(const struct controller *c, const struct candidate *k)
{
    char *xdg = xasprintf("/tmp/klab-%u-%s-%u", (unsigned)getuid(), c->room.name, (unsigned)(k - c->cand));
    struct stat st;
    if (mkdir(xdg, 0700) != 0 && (errno != EEXIST || lstat(xdg, &st) != 0 || !S_ISDIR(st.st_mode) ||
                                  st.st_uid != getuid() || chmod(xdg, 0700) != 0)) {
        klab_error("exam: %s exists and is not this user's own folder: not using it", xdg);
        _exit(124);
    }
    char *run = path_join(xdg, "run"), *conf = path_join(xdg, "config"), *xcache = path_join(xdg, "cache");
    mkdir_p(run, 0700);
    setenv("HOME", k->dir, 1);
    setenv("XDG_RUNTIME_DIR", run, 1);
    setenv("XDG_CONFIG_HOME", conf, 1);
    setenv("XDG_CACHE_HOME", xcache, 1);
}

/* In the child: the log first (as the controller; handed to the candidate), so every early end says why;
 * then the candidate's user, the controller's death signal and the environment `klab boot` runs in. */
static void become_candidate(const struct controller *c, const struct candidate *k, pid_t controller)
{
    setpgid(0, 0);   /* ^C at the controller's terminal is the controller's to handle */
    char *log = path_join(k->dir, "vm.log");
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (k->as_user && fchown(fd, k->uid, k->gid) != 0)
            klab_error("exam: cannot give %s to %s: %s", log, k->name, strerror(errno));
    }
    if (k->as_user && (setgroups(0, NULL) != 0 || setgid(k->gid) != 0 || setuid(k->uid) != 0)) {
        klab_error("exam: cannot become user %s: %s", k->name, strerror(errno));
        _exit(126);
    }
    /* After the credential change, which clears it (kernel/cred.c commit_creds). */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != controller)
        _exit(125);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0)
        dup2(null, STDIN_FILENO);
    char *cache = path_join(k->dir, ".cache");
    setenv("KLAB_RUN_DIR", k->run_dir, 1);
    setenv("KLAB_CACHE", cache, 1);
    if (!strcmp(c->room.backend, "libvirt"))
        libvirt_session_env(c, k);
}

static bool qemu_room(const struct controller *c) { return strcmp(c->room.backend, "libvirt") != 0; }

/* The room's snapshot, saved by the controller (readable by the candidates, writable by nobody else). */
static char *room_snapshots(const struct controller *c) { return path_join(c->dir, "snapshots"); }

/* `klab boot` for candidate k (or, k NULL, the controller's save of the room's snapshot). A qemu room boots
 * klab's own image from the room's snapshot with the candidate's modules added after the restore; a libvirt
 * room boots the candidate's image (workspace_initrd). */
static _Noreturn void exec_boot(const struct controller *c, const struct candidate *k,
                                const struct initramfs_add *adds, size_t nadds)
{
    char *mem = xasprintf("%lluM", (unsigned long long)(c->room.mem_bytes >> 20));
    char *smp = xasprintf("%u", c->room.cpus);
    const char **v = calloc(40 + 2 * nadds, sizeof *v);
    size_t n = 0;
    const char *fixed[] = { c->self, "boot", "--kernel", c->kernel, "--vmlinux", c->vmlinux, "--mem", mem,
                            "--smp", smp, "--accel", c->accel, "--backend", c->room.backend, "--no-wait" };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        v[n++] = fixed[i];
    v[n++] = "--name";
    v[n++] = k ? k->vm_name : "room-snapshot";
    if (k) {
        v[n++] = "--gdb-socket";
        v[n++] = path_join(k->dir, "gdb.sock");
    }
    if (qemu_room(c)) {
        v[n++] = k ? "--snapshot-dir" : "--save-snapshot";
        if (!k)
            v[n++] = "--snapshot-dir";
        v[n++] = room_snapshots(c);
        for (size_t i = 0; i < nadds; i++) {
            v[n++] = "--add";
            v[n++] = xasprintf("%s:%s", adds[i].src, adds[i].dest);
        }
    } else {
        v[n++] = "--initrd";
        v[n++] = path_join(k->dir, "initrd.cpio.gz");
        if (c->room.connect) {
            v[n++] = "--connect";
            v[n++] = c->room.connect;
        }
    }
    execv(c->self, (char *const *)v);
    klab_error("exam: cannot execute %s: %s", c->self, strerror(errno));
    _exit(127);
}

/* Starts the candidate's VM: `klab boot` as the controller's child (as the candidate's user), which dies
 * with the controller. */
static int start_vm(struct controller *c, struct candidate *k)
{
    char err[512];
    struct initramfs_add adds[32];
    size_t nadds = 0;
    if (qemu_room(c))
        nadds = workspace_modules(k, adds, 32);
    else if (workspace_initrd(c, k, err, sizeof err) != 0) {
        klab_error("exam: %s: image: %s", k->name, err);
        return -1;
    }
    char *sock = path_join(k->dir, "gdb.sock");
    unlink(sock);
    free(sock);
    pid_t controller = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        become_candidate(c, k, controller);
        exec_boot(c, k, adds, nadds);
    }
    for (size_t i = 0; i < nadds; i++) {
        free((char *)adds[i].src);
        free((char *)adds[i].dest);
    }
    if (pid < 0) {
        klab_error("exam: fork: %s", strerror(errno));
        return -1;
    }
    k->supervisor = pid;
    k->boots++;
    return 0;
}

/* A qemu room's snapshot, before any candidate starts: one boot to the shell, as the controller, into
 * DIR/snapshots (0755, files 0644); every candidate's VM and reset restores it. A room that cannot save one
 * boots its candidates cold (each says why in its vm.log). */
static void save_room_snapshot(const struct controller *c)
{
    char *snaps = room_snapshots(c), *run = path_join(c->dir, "private/snapshot-run");
    mkdir_p(run, 0700);
    chmod(run, 0700);
    if (mkdir(snaps, 0755) != 0 && errno != EEXIST)
        klab_error("exam: cannot make %s: %s", snaps, strerror(errno));
    chmod(snaps, 0755);
    char *log = path_join(c->dir, "private/snapshot.log");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        setenv("KLAB_RUN_DIR", run, 1);
        exec_boot(c, NULL, NULL, 0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        klab_error("exam: the room's snapshot was not saved (see %s): candidates boot cold", log);
    free(log);
    free(snaps);
    free(run);
}

static bool reaped(void *ctx)
{
    int status;
    return waitpid(*(pid_t *)ctx, &status, WNOHANG) != 0;
}

static void stop_vm(struct candidate *k)
{
    if (k->supervisor <= 0)
        return;
    kill(k->supervisor, SIGTERM);
    if (!wait_until(5000, 25, reaped, &k->supervisor)) {
        kill(k->supervisor, SIGKILL);
        waitpid(k->supervisor, NULL, 0);
    }
    k->supervisor = 0;
}

static struct candidate *find_candidate(struct controller *c, const char *name)
{
    for (unsigned i = 0; i < c->room.ncandidates; i++)
        if (!strcmp(c->cand[i].name, name))
            return &c->cand[i];
    return NULL;
}

static void serve_status(const struct controller *c, int fd)
{
    time_t left = c->deadline - time(NULL);
    protocol_reply(fd, "room %s: %u candidates, %lld s left\n", c->room.name, c->room.ncandidates,
                   (long long)(left > 0 ? left : 0));
    for (unsigned i = 0; i < c->room.ncandidates; i++) {
        const struct candidate *k = &c->cand[i];
        protocol_reply(fd, "%-16s %-8s boots %-3u gdb %s/gdb.sock%s\n", k->name,
                       k->supervisor > 0 ? "running" : "stopped", k->boots, k->dir,
                       k->as_user ? "" : " (no such Unix user: runs as the proctor)");
    }
}

static void serve_reset(struct controller *c, int fd, const char *who, bool proctor, uid_t peer)
{
    struct candidate *k = find_candidate(c, who);
    if (!k) {
        protocol_reply(fd, "error: no candidate '%s' in this room\n", who);
        return;
    }
    if (!proctor && !(k->as_user && k->uid == peer)) {
        protocol_reply(fd, "error: you may reset only your own VM\n");
        return;
    }
    uint64_t t0 = now_ns();
    stop_vm(k);
    if (start_vm(c, k) != 0)
        protocol_reply(fd, "error: %s's VM did not start again (see %s/vm.log)\n", k->name, k->dir);
    else
        protocol_reply(fd, "ok: %s's VM restarted from a pristine image in %llu ms\n", k->name,
                       (unsigned long long)((now_ns() - t0) / 1000000));
}

static void serve(struct controller *c, int fd)
{
    char line[256];
    uid_t peer;
    if (!protocol_read(fd, line, sizeof line, &peer))
        return;
    bool proctor = peer == 0 || peer == getuid();
    char *arg = strchr(line, ' ');
    if (arg)
        *arg++ = '\0';
    if (!strcmp(line, "status")) {
        serve_status(c, fd);
    } else if (!strcmp(line, "reset") && arg) {
        serve_reset(c, fd, arg, proctor, peer);
    } else if (!strcmp(line, "stop")) {
        if (!proctor) {
            protocol_reply(fd, "error: only the proctor stops the room\n");
        } else {
            stop_requested = 1;
            protocol_reply(fd, "ok: stopping room %s\n", c->room.name);
        }
    } else {
        protocol_reply(fd, "error: unknown request '%s' (status, reset CANDIDATE, stop)\n", line);
    }
}

/* One turn of the room: a request, if one comes within 200 ms, then the VMs that ended. */
static void turn(struct controller *c)
{
    struct pollfd pfd = { .fd = c->listen_fd, .events = POLLIN };
    if (poll(&pfd, 1, 200) > 0) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            serve(c, fd);
            close(fd);
        }
    }
    int status;
    pid_t done;
    while ((done = waitpid(-1, &status, WNOHANG)) > 0)
        for (unsigned i = 0; i < c->room.ncandidates; i++)
            if (c->cand[i].supervisor == done) {
                c->cand[i].supervisor = 0;
                printf("klab exam: %s's VM ended (klab exam reset %s %s)\n", c->cand[i].name, c->dir, c->cand[i].name);
                fflush(stdout);
            }
}

static void catch_signals(void)
{
    struct sigaction sa = { .sa_handler = on_stop_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int controller_run(struct controller *c)
{
    catch_signals();
    uint64_t t0 = now_ns();
    if (qemu_room(c))
        save_room_snapshot(c);
    for (unsigned i = 0; i < c->room.ncandidates; i++)
        if (start_vm(c, &c->cand[i]) != 0)
            stop_requested = 1;
    c->deadline = time(NULL) + (time_t)c->room.time_limit_s;
    printf("klab exam: room %s: %u VMs started in %llu ms (%s), time limit %llu s; control: klab exam status %s\n",
           c->room.name, c->room.ncandidates, (unsigned long long)((now_ns() - t0) / 1000000), c->accel,
           (unsigned long long)c->room.time_limit_s, c->dir);
    fflush(stdout);
    bool time_up = false;
    while (!stop_requested && !(time_up = time(NULL) >= c->deadline))
        turn(c);
    for (unsigned i = 0; i < c->room.ncandidates; i++)
        stop_vm(&c->cand[i]);
    char *ctl = path_join(c->dir, "control.sock");
    unlink(ctl);
    free(ctl);
    printf("klab exam: room %s %s; every VM stopped\n", c->room.name,
           time_up ? "is over: the time limit is up" : "stopped");
    return 0;
}
