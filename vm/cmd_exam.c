/* klab exam: a room of isolated lab VMs for an exam — one controller process per room.
 *
 *   klab exam run ROOMFILE [--dir DIR]   start every candidate's VM and supervise them until the time limit
 *   klab exam status DIR                 what the controller knows (from anyone in the room)
 *   klab exam reset DIR CANDIDATE        a pristine VM again (the candidate's own built modules included)
 *   klab exam stop DIR                   stop the room
 *
 * Isolation: each candidate has a folder DIR/candidates/NAME (mode 0700). When NAME is a Unix user and the
 * controller runs as root, the folder belongs to that user and the candidate's `klab boot` runs as that
 * user, so the VM's gdb stub (a Unix socket, 0700), console, monitor and RAM file are theirs alone. No VM
 * has a network device. Each VM's supervisor is the controller's child with PR_SET_PDEATHSIG: if the
 * controller dies (even kill -9) every supervisor gets SIGTERM, stops its QEMU and removes its run state
 * and RAM file. The control socket answers root and the controller's user for everything, a candidate
 * for `status` and for resetting their own VM only (SO_PEERCRED). */
#define _GNU_SOURCE
#include "accel.h"
#include "commands.h"
#include "exam.h"
#include "paths.h"
#include "profile.h"
#include "room.h"
#include "untrusted_copy.h"
#include "util.h"

#include "../rootfs/initramfs.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: klab exam run ROOMFILE [--dir DIR]\n"
          "       klab exam status DIR\n"
          "       klab exam reset DIR CANDIDATE\n"
          "       klab exam stop DIR\n"
          "       klab exam grade DIR CANDIDATE\n"
          "\n"
          "Runs an exam room: one private VM per candidate (no network, gdb stub on a Unix socket only that\n"
          "candidate can open), reset to a pristine VM on demand, all stopped when the time limit is up.\n"
          "`run` stays in the foreground as the room's controller (DIR default: ./exam-NAME); status, reset\n"
          "and stop talk to it. `grade` builds the candidate's module from their work/ folder, boots it in a\n"
          "fresh VM, runs the task's checks and writes report.txt and report.json in their folder (exit 0: all\n"
          "passed, 3: some failed). See docs/exam-proctor.md and docs/exam-candidate.md.\n",
          f);
}

struct candidate {
    const char *name;
    char *dir, *run_dir, *vm_name;
    uid_t uid;
    gid_t gid;
    bool as_user;        /* the VM runs as the candidate's Unix user */
    pid_t supervisor;    /* the candidate's `klab boot`, 0 when not running */
    unsigned boots;
};

struct controller {
    struct room room;
    char *dir, *kernel, *vmlinux, *pristine, *accel, *self;
    struct candidate cand[ROOM_MAX_CANDIDATES];
    time_t deadline;
    int listen_fd;
};

static volatile sig_atomic_t stop_requested;
static void on_stop_signal(int sig) { (void)sig; stop_requested = 1; }

/* Hard link, else copy (the kernel files candidates' users must be able to read). */
static int share_file(const char *src_path, const char *dst)
{
    unlink(dst);
    char *src = realpath(src_path, NULL);   /* registered kernels are links into their build folder */
    if (!src)
        return -1;
    if (link(src, dst) == 0) {
        free(src);
        return 0;
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    free(src);
    if (in < 0)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    close(in);
    close(out);
    return n < 0 ? -1 : rc;
}

int exam_copy_tree(const char *src, const char *dst)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("cp", "cp", "-rT", src, dst, (char *)NULL);
        _exit(127);
    }
    int status;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

char *exam_busybox(bool arm64)
{
    return default_busybox(profile_find(arm64 ? "arm64" : "x86_64"));
}

int exam_room_state_write(const char *dir, const struct exam_room_state *s)
{
    char *path = path_join(dir, "room.state");
    char *text = xasprintf("name=%s\nkernel=%s\narch=%s\naccel=%s\ntask=%s\n", s->name, s->kernel, s->arch, s->accel,
                           s->task);
    int rc = write_text_file(path, text);
    chmod(path, 0644);
    free(path);
    free(text);
    return rc;
}

int exam_room_state_load(const char *dir, struct exam_room_state *s)
{
    memset(s, 0, sizeof *s);
    char *path = path_join(dir, "room.state");
    char *text = read_text_file(path);
    if (!text) {
        klab_error("exam: %s is not a room folder (no room.state; klab exam run makes one)", dir);
        free(path);
        return -1;
    }
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq++ = '\0';
        char *dst = !strcmp(l, "name") ? s->name : !strcmp(l, "kernel") ? s->kernel : !strcmp(l, "arch") ? s->arch
                  : !strcmp(l, "accel") ? s->accel : !strcmp(l, "task") ? s->task : NULL;
        size_t cap = !strcmp(l, "task") ? sizeof s->task : !strcmp(l, "arch") || !strcmp(l, "accel") ? 16 : 64;
        if (dst)
            snprintf(dst, cap, "%s", eq);
    }
    free(text);
    free(path);
    if (!s->name[0] || !s->kernel[0] || !s->task[0] || !s->arch[0] || !s->accel[0]) {
        klab_error("exam: %s/room.state is incomplete", dir);
        return -1;
    }
    return 0;
}

/* The candidate's image: the pristine one plus every .ko they have built in their workspace. The .ko files
 * are copied first, without following links, to a folder of the controller's: a `x.ko` symlink to
 * /etc/shadow (or to another candidate's file) must not land in their VM. */
static int candidate_initrd(struct controller *c, struct candidate *k, char *err, size_t errlen)
{
    char *busybox = exam_busybox(strstr(c->room.kernel, "arm64") != NULL);
    char *work = path_join(k->dir, "work");
    char *stage = xasprintf("%s/private/%s", c->dir, k->name);
    remove_tree(stage);
    mkdir_p(stage, 0700);
    struct copy_rules rules = { .check_author = k->as_user, .author = k->uid, .max_bytes = 64u << 20 };
    struct initramfs_add adds[32];
    char *names[32];
    size_t nadds = 0;
    int wfd = open(work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = wfd >= 0 ? fdopendir(wfd) : NULL;
    for (struct dirent *e; d && (e = readdir(d)) && nadds < 32;) {
        size_t n = strlen(e->d_name);
        if (n <= 3 || strcmp(e->d_name + n - 3, ".ko"))
            continue;
        char *copy = path_join(stage, e->d_name);
        if (copy_untrusted_file(dirfd(d), e->d_name, copy, &rules) != 0) {
            klab_info("exam: %s: %s is not a regular file of theirs; left out of their VM", k->name, e->d_name);
            free(copy);
            continue;
        }
        names[nadds] = xasprintf("/lib/modules/%s", e->d_name);
        adds[nadds] = (struct initramfs_add){ copy, names[nadds] };
        nadds++;
    }
    if (d)
        closedir(d);
    else if (wfd >= 0)
        close(wfd);
    free(stage);
    char *segments = segment_cache_dir();
    mkdir_p(segments, 0755);
    struct initramfs_spec spec = { .busybox = busybox, .compress = INITRAMFS_GZIP, .level = 6,
                                   .cache_dir = segments, .adds = adds, .nadds = nadds };
    char *out = path_join(k->dir, "initrd.cpio.gz");
    int rc = initramfs_build(&spec, out, NULL, err, errlen);
    if (rc == 0 && k->as_user)
        rc = chown(out, k->uid, k->gid);
    for (size_t i = 0; i < nadds; i++) {
        free((char *)adds[i].src);
        free(names[i]);
    }
    free(out);
    free(work);
    free(busybox);
    free(segments);
    return rc;
}

/* Starts the candidate's VM: `klab boot` as the controller's child (as the candidate's user), which dies
 * with the controller. */
static int start_vm(struct controller *c, struct candidate *k)
{
    char err[512];
    if (candidate_initrd(c, k, err, sizeof err) != 0) {
        klab_error("exam: %s: image: %s", k->name, err);
        return -1;
    }
    char *sock = path_join(k->dir, "gdb.sock");
    unlink(sock);
    char *initrd = path_join(k->dir, "initrd.cpio.gz");
    char *log = path_join(k->dir, "vm.log");
    char *cache = path_join(k->dir, ".cache");
    char *mem = xasprintf("%lluM", (unsigned long long)(c->room.mem_bytes >> 20));
    char *smp = xasprintf("%u", c->room.cpus);
    pid_t controller = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        klab_error("exam: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);   /* ^C at the controller's terminal is the controller's to handle */
        /* The log first (as the controller; handed to the candidate below), so every early end says why. */
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
        setenv("KLAB_RUN_DIR", k->run_dir, 1);
        setenv("KLAB_CACHE", cache, 1);
        bool libvirt = !strcmp(c->room.backend, "libvirt");
        if (libvirt) {
            /* qemu:///session: the candidate's own libvirt daemon. Its state goes in a short private folder:
             * libvirt puts each domain's monitor socket under XDG_CONFIG_HOME, and a Unix socket path has
             * room for 107 bytes only. */
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
        execl(c->self, c->self, "boot", "--kernel", c->kernel, "--vmlinux", c->vmlinux, "--initrd", initrd,
              "--name", k->vm_name, "--gdb-socket", sock, "--mem", mem, "--smp", smp, "--accel", c->accel,
              "--no-wait", "--backend", c->room.backend, libvirt ? "--connect" : NULL, c->room.connect, (char *)NULL);
        klab_error("exam: cannot execute %s: %s", c->self, strerror(errno));
        _exit(127);
    }
    k->supervisor = pid;
    k->boots++;
    free(sock);
    free(initrd);
    free(log);
    free(cache);
    free(mem);
    free(smp);
    return 0;
}

static void stop_vm(struct candidate *k)
{
    if (k->supervisor <= 0)
        return;
    kill(k->supervisor, SIGTERM);
    int status;
    for (int i = 0; i < 200 && waitpid(k->supervisor, &status, WNOHANG) == 0; i++)
        sleep_ms(25);
    if (waitpid(k->supervisor, &status, WNOHANG) == 0) {
        kill(k->supervisor, SIGKILL);
        waitpid(k->supervisor, &status, 0);
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

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) >= 0 && write(fd, s, strlen(s)) < 0) {
        /* the client went away: nothing to tell */
    }
    va_end(ap);
    free(s);
}

static void serve(struct controller *c, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    char line[256] = "";
    ssize_t n = read(fd, line, sizeof line - 1);
    if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return;
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    bool proctor = cred.uid == 0 || cred.uid == getuid();
    char *arg = strchr(line, ' ');
    if (arg)
        *arg++ = '\0';
    if (!strcmp(line, "status")) {
        time_t left = c->deadline - time(NULL);
        reply(fd, "room %s: %u candidates, %lld s left\n", c->room.name, c->room.ncandidates,
              (long long)(left > 0 ? left : 0));
        for (unsigned i = 0; i < c->room.ncandidates; i++) {
            struct candidate *k = &c->cand[i];
            reply(fd, "%-16s %-8s boots %-3u gdb %s/gdb.sock%s\n", k->name, k->supervisor > 0 ? "running" : "stopped",
                  k->boots, k->dir, k->as_user ? "" : " (no such Unix user: runs as the proctor)");
        }
    } else if (!strcmp(line, "reset") && arg) {
        struct candidate *k = find_candidate(c, arg);
        if (!k)
            reply(fd, "error: no candidate '%s' in this room\n", arg);
        else if (!proctor && !(k->as_user && k->uid == cred.uid))
            reply(fd, "error: you may reset only your own VM\n");
        else {
            uint64_t t0 = now_ns();
            stop_vm(k);
            if (start_vm(c, k) != 0)
                reply(fd, "error: %s's VM did not start again (see %s/vm.log)\n", k->name, k->dir);
            else
                reply(fd, "ok: %s's VM restarted from a pristine image in %llu ms\n", k->name,
                      (unsigned long long)((now_ns() - t0) / 1000000));
        }
    } else if (!strcmp(line, "stop")) {
        if (!proctor)
            reply(fd, "error: only the proctor stops the room\n");
        else {
            stop_requested = 1;
            reply(fd, "ok: stopping room %s\n", c->room.name);
        }
    } else {
        reply(fd, "error: unknown request '%s' (status, reset CANDIDATE, stop)\n", line);
    }
}

static int listen_control(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (fd < 0 || strlen(path) >= sizeof a.sun_path)
        return -1;
    strcpy(a.sun_path, path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
        close(fd);
        return -1;
    }
    chmod(path, 0666);   /* everyone may ask; serve() decides by SO_PEERCRED */
    return fd;
}

static int prepare(struct controller *c, const char *room_file, const char *dir_arg)
{
    char err[512];
    if (room_load(room_file, &c->room, err, sizeof err) != 0) {
        klab_error("exam: %s", err);
        return -1;
    }
    char *skeleton = path_join(c->room.task_dir, "skeleton");
    struct stat st;
    if (stat(skeleton, &st) != 0 || !S_ISDIR(st.st_mode)) {
        klab_error("exam: task %s has no skeleton/ folder", c->room.task_dir);
        return -1;
    }
    char *cache = klab_cache_dir();
    char *kdir = xasprintf("%s/kernels/%s", cache, c->room.kernel);
    char *kimg = path_join(kdir, "vmlinuz"), *kvml = path_join(kdir, "vmlinux");
    if (!file_exists(kimg) || !file_exists(kvml)) {
        klab_error("exam: kernel '%s' is not registered (make kernel PROFILE=%s, or make kernels)", c->room.kernel,
                   c->room.kernel);
        return -1;
    }
    c->dir = dir_arg ? strdup(dir_arg) : xasprintf("exam-%s", c->room.name);
    char *abs = realpath(".", NULL);
    if (c->dir[0] != '/') {
        char *d = xasprintf("%s/%s", abs, c->dir);
        free(c->dir);
        c->dir = d;
    }
    free(abs);
    char *ctl = path_join(c->dir, "control.sock");
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", ctl);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof a) == 0) {
        klab_error("exam: room %s is already running in %s (klab exam stop %s)", c->room.name, c->dir, c->dir);
        close(probe);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    char *kernel_dir = path_join(c->dir, "kernel");
    mkdir_p(kernel_dir, 0755);
    chmod(c->dir, 0755);
    c->kernel = path_join(kernel_dir, "vmlinuz");
    c->vmlinux = path_join(kernel_dir, "vmlinux");
    if (share_file(kimg, c->kernel) != 0 || share_file(kvml, c->vmlinux) != 0) {
        klab_error("exam: cannot place the kernel in %s: %s", kernel_dir, strerror(errno));
        return -1;
    }
    chmod(c->kernel, 0644);
    chmod(c->vmlinux, 0644);
    /* One probe for the room: every VM takes its answer instead of probing again. */
    char why[160];
    const struct machine_profile *p = profile_find(strstr(c->room.kernel, "arm64") ? "arm64" : "x86_64");
    c->accel = strdup(accel_choose(p, p->qemu, p->default_cpu, c->kernel, cache, why, sizeof why));
    for (unsigned i = 0; i < c->room.ncandidates; i++) {
        struct candidate *k = &c->cand[i];
        k->name = c->room.candidates[i];
        k->dir = xasprintf("%s/candidates/%s", c->dir, k->name);
        k->run_dir = path_join(k->dir, "run");
        k->vm_name = xasprintf("exam-%s-%s", c->room.name, k->name);
        struct passwd *pw = getuid() == 0 ? getpwnam(k->name) : NULL;
        k->as_user = pw != NULL;
        if (pw) {
            k->uid = pw->pw_uid;
            k->gid = pw->pw_gid;
        }
        bool fresh = !file_exists(k->dir);
        mkdir_p(k->run_dir, 0700);
        chmod(k->dir, 0700);
        char *all = path_join(c->dir, "candidates");
        chmod(all, 0755);   /* each candidate may reach their own folder, and only that one */
        free(all);
        char *work = path_join(k->dir, "work");
        char *task_md = path_join(c->room.task_dir, "task.md"), *task_dst = path_join(k->dir, "TASK.md");
        if (fresh && (exam_copy_tree(skeleton, work) != 0 || (file_exists(task_md) && exam_copy_tree(task_md, task_dst) != 0))) {
            klab_error("exam: cannot set up %s's workspace in %s", k->name, k->dir);
            return -1;
        }
        if (k->as_user) {
            pid_t pid = fork();
            if (pid == 0) {
                char *owner = xasprintf("%u:%u", (unsigned)k->uid, (unsigned)k->gid);
                execlp("chown", "chown", "-R", owner, k->dir, (char *)NULL);
                _exit(127);
            }
            int status;
            waitpid(pid, &status, 0);
        }
        free(work);
        free(task_md);
        free(task_dst);
    }
    struct exam_room_state rs = { 0 };
    snprintf(rs.name, sizeof rs.name, "%s", c->room.name);
    snprintf(rs.kernel, sizeof rs.kernel, "%s", c->room.kernel);
    snprintf(rs.arch, sizeof rs.arch, "%s", p->arch);
    snprintf(rs.accel, sizeof rs.accel, "%s", c->accel);
    char *task_abs = realpath(c->room.task_dir, NULL);
    snprintf(rs.task, sizeof rs.task, "%s", task_abs ? task_abs : c->room.task_dir);
    free(task_abs);
    if (exam_room_state_write(c->dir, &rs) != 0) {
        klab_error("exam: cannot write %s/room.state", c->dir);
        return -1;
    }
    c->listen_fd = listen_control(ctl);
    if (c->listen_fd < 0) {
        klab_error("exam: cannot listen on %s: %s", ctl, strerror(errno));
        return -1;
    }
    free(skeleton);
    free(cache);
    free(kdir);
    free(kimg);
    free(kvml);
    free(kernel_dir);
    free(ctl);
    return 0;
}

static int exam_run(int argc, char **argv)
{
    const char *room_file = NULL, *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (argv[i][0] != '-' && !room_file)
            room_file = argv[i];
        else {
            klab_error("exam run: unexpected '%s' (klab exam run ROOMFILE [--dir DIR])", argv[i]);
            return 2;
        }
    }
    if (!room_file) {
        klab_error("exam run: give the room file (klab exam run ROOMFILE [--dir DIR])");
        return 2;
    }
    struct controller c = { .listen_fd = -1 };
    c.self = realpath("/proc/self/exe", NULL);
    if (prepare(&c, room_file, dir) != 0)
        return 1;
    struct sigaction sa = { .sa_handler = on_stop_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < c.room.ncandidates; i++)
        if (start_vm(&c, &c.cand[i]) != 0)
            stop_requested = 1;
    c.deadline = time(NULL) + (time_t)c.room.time_limit_s;
    printf("klab exam: room %s: %u VMs started in %llu ms (%s), time limit %llu s; control: klab exam status %s\n",
           c.room.name, c.room.ncandidates, (unsigned long long)((now_ns() - t0) / 1000000), c.accel,
           (unsigned long long)c.room.time_limit_s, c.dir);
    fflush(stdout);
    bool time_up = false;
    while (!stop_requested) {
        if (time(NULL) >= c.deadline) {
            time_up = true;
            break;
        }
        struct pollfd pfd = { .fd = c.listen_fd, .events = POLLIN };
        if (poll(&pfd, 1, 200) > 0) {
            int fd = accept4(c.listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                serve(&c, fd);
                close(fd);
            }
        }
        int status;
        pid_t done;
        while ((done = waitpid(-1, &status, WNOHANG)) > 0)
            for (unsigned i = 0; i < c.room.ncandidates; i++)
                if (c.cand[i].supervisor == done) {
                    c.cand[i].supervisor = 0;
                    printf("klab exam: %s's VM ended (klab exam reset %s %s)\n", c.cand[i].name, c.dir, c.cand[i].name);
                    fflush(stdout);
                }
    }
    for (unsigned i = 0; i < c.room.ncandidates; i++)
        stop_vm(&c.cand[i]);
    char *ctl = path_join(c.dir, "control.sock");
    unlink(ctl);
    free(ctl);
    printf("klab exam: room %s %s; every VM stopped\n", c.room.name, time_up ? "is over: the time limit is up" : "stopped");
    return 0;
}

static int exam_request(const char *dir, const char *request)
{
    char *ctl = path_join(dir, "control.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", ctl);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        klab_error("exam: no room controller answers at %s (is `klab exam run` running?)", ctl);
        free(ctl);
        return 1;
    }
    free(ctl);
    if (write(fd, request, strlen(request)) < 0 || shutdown(fd, SHUT_WR) != 0) {
        klab_error("exam: cannot talk to the controller: %s", strerror(errno));
        return 1;
    }
    char buf[4096];
    ssize_t n;
    int rc = 0;
    bool first = true;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (first && !strncmp(buf, "error: ", 7)) {
            fprintf(stderr, "klab: exam: %.*s", (int)(n - 7), buf + 7);
            rc = 1;
        } else if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
            rc = 1;
        }
        first = false;
    }
    close(fd);
    return rc;
}

int cmd_exam(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "run"))
        return exam_run(argc - 2, argv + 2);
    if (!strcmp(sub, "status") && argc == 3)
        return exam_request(argv[2], "status\n");
    if (!strcmp(sub, "stop") && argc == 3)
        return exam_request(argv[2], "stop\n");
    if (!strcmp(sub, "grade") && argc == 4)
        return exam_grade(argv[2], argv[3]);
    if (!strcmp(sub, "reset") && argc == 4) {
        char *req = xasprintf("reset %s\n", argv[3]);
        int rc = exam_request(argv[2], req);
        free(req);
        return rc;
    }
    klab_error("exam: unknown or incomplete command '%s' (see klab exam --help)", sub);
    return 2;
}
