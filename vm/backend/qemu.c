/* The QEMU backend: klab's supervisor forks QEMU and stays its parent until it exits. QEMU gets
 * PR_SET_PDEATHSIG, so a killed supervisor never leaves a VM behind; guest RAM is a file in the run-state
 * folder that libklab maps read-only. */
#define _GNU_SOURCE
#include "backend/backend.h"
#include "machine/qemu_argv.h"
#include "run/boot_plan.h"
#include "run/monitor.h"
#include "run/runstate.h"
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
};

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

static _Noreturn void exec_qemu(const struct argv *av, const char *run_dir, bool detached, pid_t supervisor)
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
    /* Nothing the caller had open (a test's pipe, a terminal's fds) may outlive it inside QEMU. */
    close_range(3, ~0u, 0);
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

/* Until QEMU's monitor answers (every socket is set up then), QEMU exits, or the deadline. A recording or
 * replay has no monitor (machine/qemu_argv.c): its gdb stub, set up after the console, says it instead. */
static bool wait_ready(pid_t pid, const char *run_dir, const struct boot_request *req, int *status)
{
    char *mon = path_join(run_dir, "monitor.sock");
    uint64_t deadline = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
    bool ready = false, exited = false;
    while (!ready && !exited && now_ns() < deadline) {
        if (waitpid(pid, status, WNOHANG) == pid)
            exited = true;
        else
            ready = req->rr_mode ? stub_accepts(req->gdb_listen) : monitor_wait_ready(mon, 20) == 0;
    }
    free(mon);
    if (!ready && !exited) {
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
        klab_error("QEMU did not become ready within %d s", READY_TIMEOUT_MS / 1000);
    } else if (!ready) {
        report_failure(run_dir, *status);
    }
    return ready;
}

static struct vm_instance *start(struct boot_plan *p, int *status)
{
    struct argv av;
    char err[256];
    *status = 0;
    if (qemu_build_argv(&p->req, &av, err, sizeof err) != 0) {
        klab_error("%s", err);
        return NULL;
    }
    char *line = argv_join(&av), *text = xasprintf("%s\n", line), *file = path_join(p->rs.dir, "qemu.cmdline");
    write_text_file(file, text);
    free(file);
    free(line);
    free(text);
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid == 0)
        exec_qemu(&av, p->rs.dir, p->detach, self);
    argv_free(&av);
    if (pid < 0) {
        klab_error("fork: %s", strerror(errno));
        return NULL;
    }
    if (!wait_ready(pid, p->rs.dir, &p->req, status))
        return NULL;
    p->rs.qemu_pid = pid;
    p->rs.supervisor_pid = self;
    if (runstate_write(&p->rs) != 0) {
        klab_error("cannot write the run state in %s", p->rs.dir);
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
        return NULL;
    }
    struct vm_instance *vm = calloc(1, sizeof *vm);
    vm->pid = pid;
    vm->console_log = path_join(p->rs.dir, "console.log");
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
    for (;;) {
        if (*stop && !stopping) {
            kill(vm->pid, SIGTERM);
            stopping = true;
        }
        pid_t w = waitpid(vm->pid, &status, WNOHANG);
        if (w == vm->pid || (w < 0 && errno != EINTR))
            break;
        if (fd >= 0)
            copy_new_output(fd, &off);
        sleep_ms(fd >= 0 ? 50 : 100);
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
