/* The QEMU backend: klab's supervisor forks QEMU and stays its parent until it exits. QEMU gets
 * PR_SET_PDEATHSIG, so a killed supervisor never leaves a VM behind; guest RAM is a file in the run-state
 * folder that libklab maps read-only. */
#define _GNU_SOURCE
#include "backend/backend.h"
#include "machine/file_channel.h"
#include "machine/qemu_argv.h"
#include "run/boot_plan.h"
#include "run/console_relay.h"
#include "run/monitor.h"
#include "run/reset_hold.h"
#include "run/runstate.h"
#include "run/snapshot.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 15000

struct vm_instance {
    pid_t pid;
    char *console_log;
    struct console_relay *relay;   /* a recording's console (run/console_relay.h), else NULL */
};

/* A recording whose console takes typed input (--console-input). */
static bool recording(const struct boot_request *req) { return req->rr_console_input; }

static int describe(const struct boot_plan *p, FILE *f)
{
    struct argv av;
    char err[256];
    if (qemu_build_argv(&p->req, &av, err, sizeof err) != 0) {
        klab_error("%s", err);
        return 2;
    }
    char *line = argv_join(&av);
    fprintf(f, "%s\n", line);
    free(line);
    argv_free(&av);
    return 0;
}

/* First line of QEMU's stderr, to explain an early exit in one line. */
static void report_failure(const char *run_dir, int status)
{
    char *log = path_join(run_dir, "qemu.log");
    char *text = read_text_file(log);
    char *line = text ? strtok(text, "\n") : NULL;
    if (line && *line)
        klab_error("QEMU failed to start: %s", line);
    else if (WIFSIGNALED(status))
        klab_error("QEMU died on signal %d before it was ready", WTERMSIG(status));
    else
        klab_error("QEMU exited (status %d) before it was ready", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    free(text);
    free(log);
}

static _Noreturn void exec_qemu(const struct argv *av, const char *run_dir, bool detached, pid_t supervisor,
                                int state_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor)   /* the supervisor died before prctl took effect */
        _exit(127);
    /* The RAM file and the gdb, monitor and console sockets are the VM: its owner's alone. */
    umask(077);
    char *log = path_join(run_dir, "qemu.log");
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0)
        dup2(fd, STDERR_FILENO);
    if (detached) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(fd >= 0 ? fd : null, STDOUT_FILENO);
    }
    /* A snapshot's device state: QEMU's migrate_incoming fd:N reads the descriptor it inherited. */
    if (state_fd >= 0) {
        if (state_fd == SNAPSHOT_STATE_FD ? fcntl(state_fd, F_SETFD, 0) != 0
                                          : dup2(state_fd, SNAPSHOT_STATE_FD) != SNAPSHOT_STATE_FD)
            _exit(127);
    }
    /* Nothing the caller had open (a test's pipe, a terminal's fds) may outlive it inside QEMU. */
    close_range(state_fd >= 0 ? SNAPSHOT_STATE_FD + 1 : 3, ~0u, 0);
    execvp(av->v[0], av->v);
    fprintf(stderr, "cannot execute %s: %s\n", av->v[0], strerror(errno));
    _exit(127);
}

/* Whether the gdb stub accepts a connection (a bare connect: no packet is sent). */
static bool stub_accepts(const char *listen)
{
    int fd = -1;
    if (!strncmp(listen, "unix:", 5)) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof a.sun_path, "%s", listen + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            fd = -1;
        }
    } else {
        const char *port = strrchr(listen, ':');
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port ? port + 1 : "0")),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        sleep_ms(20);
        return false;
    }
    close(fd);
    return true;
}

/* One step of waiting for the monitor's greeting, on one connection made once the socket exists. QEMU listens
 * before its main loop runs, so a connection waits in the listen queue until then: one that gave up and
 * connected again would leave QEMU a dead connection to accept and greet first. */
static bool greeted(struct monitor_conn **m, const char *mon)
{
    if (!*m && !(*m = monitor_connect(mon))) {
        sleep_ms(2);
        return false;
    }
    int r = monitor_greeting(*m, 20);
    if (r < 0) {   /* a QEMU that is ending: waitpid says so next */
        monitor_close(*m);
        *m = NULL;
        sleep_ms(2);
    }
    return r > 0;
}

/* Until QEMU's monitor answers (every socket is set up then), QEMU exits, or the deadline. A recording or
 * replay has no monitor (machine/qemu_argv.c): its gdb stub, set up after the console, says it instead.
 * keep: the monitor connection stays open for the caller's commands (NULL: closed). */
static bool wait_ready(pid_t pid, const char *run_dir, const struct boot_request *req, int *status,
                       struct monitor_conn **keep)
{
    char *mon = path_join(run_dir, "monitor.sock");
    uint64_t deadline = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
    bool ready = false, exited = false;
    struct monitor_conn *m = NULL;
    while (!ready && !exited && now_ns() < deadline && !wait_aborted()) {
        if (waitpid(pid, status, WNOHANG) == pid)
            exited = true;
        else
            ready = req->rr_mode ? stub_accepts(req->gdb_listen) : greeted(&m, mon);
    }
    free(mon);
    if (ready && keep)
        *keep = m;
    else
        monitor_close(m);
    if (!ready && !exited) {
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
        if (!wait_aborted())
            klab_error("QEMU did not become ready within %d s", READY_TIMEOUT_MS / 1000);
    } else if (!ready) {
        report_failure(run_dir, *status);
    }
    return ready;
}

/* Forks QEMU for req (state_fd: a snapshot's device state, or -1) and waits until it is ready: its pid, or -1
 * after one line, with *status how it ended. keep: wait_ready's. */
static pid_t launch(const struct boot_plan *p, const struct boot_request *req, int state_fd, int *status,
                    struct monitor_conn **keep)
{
    struct argv av;
    char err[256];
    if (qemu_build_argv(req, &av, err, sizeof err) != 0) {
        klab_error("%s", err);
        return -1;
    }
    char *line = argv_join(&av), *text = xasprintf("%s\n", line), *file = path_join(p->rs.dir, "qemu.cmdline");
    write_text_file(file, text);
    free(file);
    free(line);
    free(text);
    if (recording(req) && console_relay_fifos(p->rs.dir, err, sizeof err) != 0) {
        klab_error("%s", err);
        argv_free(&av);
        return -1;
    }
    if (req->file_channel && file_channel_create(p->rs.dir, err, sizeof err) != 0) {
        klab_error("%s", err);
        argv_free(&av);
        return -1;
    }
    pid_t self = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        exec_qemu(&av, p->rs.dir, p->detach || req->console != CONSOLE_STDIO, self, state_fd);
    argv_free(&av);
    if (pid < 0) {
        klab_error("fork: %s", strerror(errno));
        return -1;
    }
    return wait_ready(pid, p->rs.dir, req, status, keep) ? pid : -1;
}

static void kill_qemu(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* What an ended QEMU left in the run-state folder that the next start must not find. */
static void clear_run_dir(const char *dir)
{
    static const char *const gone[] = { "ram", "monitor.sock", "console.sock", "console.log" };
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        char *f = path_join(dir, gone[i]);
        unlink(f);
        free(f);
    }
}

/* --snapshot: the slot of this machine, saved first when it has none or a stale one (a cold boot to the
 * shell, in the background). 0 when it is ready, -1 with err set. */
static int ensure_snapshot(const struct boot_plan *p, struct snapshot *s, char *err, size_t errlen)
{
    struct argv av;
    if (qemu_build_argv(&p->req, &av, err, errlen) != 0)
        return -1;
    int rc = snapshot_find(p->snapshot_dir, av.v, p->rs.dir, p->req.kernel, p->req.qemu, p->req.initrd, s, err,
                           errlen);
    argv_free(&av);
    if (rc != 0 || s->ready)
        return rc;
    if (!s->writable) {
        snprintf(err, errlen, "%s has %s snapshot of this machine and is not this user's to save one in",
                 p->snapshot_dir, s->stale ? "only a stale" : "no");
        return -1;
    }
    klab_info(s->stale ? "snapshot: %s changed since this machine's snapshot: booting it to its shell to save "
                             "it again"
                           : "snapshot: this machine has none yet: booting it to its shell to save one%s",
                  s->stale ? s->stale : " (once)");
    struct boot_request cold = p->req;
    cold.wait_for_gdb = false;
    cold.console = CONSOLE_SOCKET;
    int status;
    pid_t pid = launch(p, &cold, -1, &status, NULL);
    if (pid < 0) {
        snprintf(err, errlen, "the boot to save it did not start");
        return -1;
    }
    rc = snapshot_wait_shell(p->rs.dir, pid, 300000, err, errlen);
    if (rc == 0)
        rc = snapshot_save(s, p->rs.dir, err, errlen);
    kill_qemu(pid);
    clear_run_dir(p->rs.dir);
    return rc;
}

static bool files_pending(const struct boot_plan *p)
{
    return p->req.file_channel && (p->ndeliver_adds || p->ndeliver_runs);
}

/* The files are in: a VM that is to wait for gdb pauses before its --run commands, with its first CPU (the one
 * gdb is shown first) in kernel code: from a stop in user code QEMU's arm64 stub cannot read the kernel (it
 * reads with EL0's permissions), and gdb's first frame would be user code. The agent answered just before it
 * blocks in read(2), so a stop in user code is a few instructions early (seen on a loaded host): the VM runs
 * on for a moment and stops again, 100 times at most. */
static int pause_for_gdb(void *ctx)
{
    const struct boot_plan *p = ctx;
    char *mon = path_join(p->rs.dir, "monitor.sock");
    int rc = -1;
    for (int i = 0; i < 100; i++) {
        char *out = monitor_command(mon, "stop", 5000), *regs = NULL;
        rc = out ? 1 : -1;
        bool user = out && p->req.profile->hmp_user_mode &&
                    p->req.profile->hmp_user_mode(regs = monitor_command(mon, "info registers", 5000));
        free(out);
        free(regs);
        if (!user || i == 99)   /* the last try stays stopped wherever it is */
            break;
        free(monitor_command(mon, "cont", 5000));
        sleep_ms(2);
    }
    free(mon);
    return rc;
}

/* --add / --run into the running guest of pid through the file channel. 0, or -1 after one line (the VM is
 * killed). */
static int deliver_files(const struct boot_plan *p, pid_t pid)
{
    char err[512];
    struct file_channel_hooks h = { p->req.wait_for_gdb ? pause_for_gdb : NULL, (void *)p };
    /* klab reset --build: the files once the build is done. Meanwhile an empty exchange runs the guest's agent
     * once, so that its dd and cpio are translated (TCG) before the files come, not after. */
    if (reset_hold_present(p->rs.dir))
        (void)file_channel_deliver(p->rs.dir, NULL, 0, NULL, 0, NULL, 60000, err, sizeof err);
    if (!reset_hold_wait(p->rs.dir, 600000)) {
        if (!wait_aborted())
            klab_error("files: klab reset --build held them for 600 s");
        kill_qemu(pid);
        return -1;
    }
    if (file_channel_deliver(p->rs.dir, p->deliver_adds, p->ndeliver_adds, p->deliver_runs, p->ndeliver_runs, &h,
                             60000, err, sizeof err) == 0)
        return 0;
    if (!wait_aborted())
        klab_error("files: %s", err);
    kill_qemu(pid);
    return -1;
}

/* A cold boot of a VM whose --add files come through the channel: it runs to its shell for them (the agent
 * starts there), then pauses if it is to wait for gdb. */
static pid_t cold_with_files(struct boot_plan *p, int *status)
{
    struct boot_request req = p->req;
    req.wait_for_gdb = false;
    pid_t pid = launch(p, &req, -1, status, NULL);
    char err[256];
    if (pid > 0 && snapshot_wait_shell(p->rs.dir, pid, 300000, err, sizeof err) != 0) {
        if (!wait_aborted())
            klab_error("files: %s", err);
        kill_qemu(pid);
        return -1;
    }
    return pid > 0 && deliver_files(p, pid) == 0 ? pid : -1;
}

int qemu_save_snapshot(struct boot_plan *p)
{
    struct snapshot s;
    char err[512];
    int rc = ensure_snapshot(p, &s, err, sizeof err);
    if (rc != 0)
        klab_error("snapshot: not saved: %s", err);
    else if (!p->quiet)
        klab_info("snapshot: %s", s.slot);
    snapshot_free(&s);
    return rc == 0 ? 0 : 1;
}

/* The interactive terminal shows what the restored guest printed so far, as if it had booted there. */
static void replay_console(const char *dir)
{
    char *log = path_join(dir, "console.log");
    char *text = read_text_file(log);
    if (text && fputs(text, stdout) >= 0)
        fflush(stdout);
    free(text);
    free(log);
}

/* QEMU started from the snapshot: its pid, or -1 with err set (and nothing left running). The RAM image is
 * copied while QEMU starts (snapshot_stage_start); one monitor connection carries the migration's commands. */
static pid_t restore(struct boot_plan *p, const struct snapshot *s, int *status, char *err, size_t errlen)
{
    pid_t copier = snapshot_stage_start(s, p->rs.dir, err, errlen);
    if (copier < 0)
        return -1;
    int fd = snapshot_open_state(s, err, errlen);
    if (fd < 0) {
        snapshot_stage_cancel(copier);
        return -1;
    }
    struct boot_request req = p->req;
    req.incoming = true;
    if (p->interactive)
        replay_console(p->rs.dir);
    struct monitor_conn *mon = NULL;
    pid_t pid = launch(p, &req, fd, status, &mon);
    close(fd);
    if (pid < 0) {
        snapshot_stage_cancel(copier);
        snprintf(err, errlen, "QEMU did not start with it");
        return -1;
    }
    int rc = snapshot_stage_finish(copier, err, errlen) == 0 &&
                     snapshot_incoming(mon, !p->req.wait_for_gdb || files_pending(p), err, errlen) == 0 ? 0 : -1;
    monitor_close(mon);
    if (rc != 0) {
        kill_qemu(pid);
        return -1;
    }
    return pid;
}

/* --snapshot: restored, or (one line saying why) -1 for a cold boot instead. */
static pid_t start_from_snapshot(struct boot_plan *p, int *status)
{
    struct snapshot s;
    char err[512];
    pid_t pid = -1;
    if (ensure_snapshot(p, &s, err, sizeof err) != 0) {
        if (!wait_aborted())
            klab_error("snapshot: not saved: %s; booting cold", err);
    } else if ((pid = restore(p, &s, status, err, sizeof err)) < 0 && !wait_aborted()) {
        klab_error("snapshot: restore failed: %s; booting cold (the snapshot is dropped)", err);
        snapshot_drop(&s);
    }
    snapshot_free(&s);
    if (pid < 0)
        clear_run_dir(p->rs.dir);
    return pid;
}

static struct vm_instance *start(struct boot_plan *p, int *status)
{
    *status = 0;
    pid_t pid = -1;
    p->restored = false;
    if (p->snapshot && (pid = start_from_snapshot(p, status)) > 0) {
        p->restored = true;
        if (files_pending(p) && deliver_files(p, pid) != 0)
            return NULL;
    }
    if (pid < 0 && wait_aborted())   /* a stop during the restore: no cold boot after it */
        return NULL;
    if (pid < 0) {
        clear_run_dir(p->rs.dir);   /* a reset's cold boot starts from fresh RAM */
        if ((pid = files_pending(p) ? cold_with_files(p, status) : launch(p, &p->req, -1, status, NULL)) < 0)
            return NULL;
    }
    p->rs.restored = p->restored;
    p->rs.qemu_pid = pid;
    p->rs.supervisor_pid = getpid();
    if (runstate_write(&p->rs) != 0) {
        klab_error("cannot write the run state in %s", p->rs.dir);
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
        return NULL;
    }
    struct vm_instance *vm = calloc(1, sizeof *vm);
    vm->pid = pid;
    vm->console_log = path_join(p->rs.dir, "console.log");
    char err[256];
    if (recording(&p->req) && !(vm->relay = console_relay_open(p->rs.dir, err, sizeof err))) {
        klab_error("%s", err);
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
        free(vm->console_log);
        free(vm);
        return NULL;
    }
    return vm;
}

static void copy_new_output(int fd, off_t *offset)
{
    char buf[4096];
    ssize_t n;
    while ((n = pread(fd, buf, sizeof buf, *offset)) > 0) {
        if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
            return;
        *offset += n;
    }
}

static int wait_vm(struct vm_instance *vm, volatile sig_atomic_t *stop, bool echo)
{
    int fd = echo ? open(vm->console_log, O_RDONLY | O_CLOEXEC) : -1;
    off_t off = 0;
    int status = 0;
    bool stopping = false;
    static volatile sig_atomic_t never;
    for (;;) {
        if (*stop && !stopping) {
            kill(vm->pid, SIGTERM);
            stopping = true;
        }
        pid_t w = waitpid(vm->pid, &status, WNOHANG);
        if (w == vm->pid || (w < 0 && errno != EINTR))
            break;
        if (vm->relay)
            console_relay_pump(vm->relay, stopping ? 2 : 50);   /* drains the console while it waits */
        if (fd >= 0)
            copy_new_output(fd, &off);
        if (!vm->relay)
            sleep_ms_unless(stopping ? 2 : fd >= 0 ? 50 : 100, stopping ? &never : stop);   /* a reset waits on this end */
    }
    if (vm->relay) {
        console_relay_close(vm->relay);
        vm->relay = NULL;
    }
    if (fd >= 0) {
        copy_new_output(fd, &off);
        close(fd);
    }
    return status;
}

static void close_vm(struct vm_instance *vm)
{
    if (vm)
        free(vm->console_log);
    free(vm);
}

static char *monitor(const struct runstate *rs, const char *cmd, int timeout_ms)
{
    char *mon = path_join(rs->dir, "monitor.sock");
    char *out = monitor_command(mon, cmd, timeout_ms);
    free(mon);
    return out;
}

const struct backend_ops qemu_backend = {
    .name = "qemu",
    .console_on_terminal = true,
    .ram_file = true,
    .describe = describe,
    .start = start,
    .wait = wait_vm,
    .close = close_vm,
    .monitor = monitor,
};
