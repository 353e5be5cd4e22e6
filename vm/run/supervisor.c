/* vm/run/supervisor.h. */
#define _GNU_SOURCE
#include "run/supervisor.h"
#include "backend/backend.h"
#include "run/reset_hold.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* stop_requested ends the current QEMU (and cuts its start short: wait_abort_on); term_requested says the
 * supervisor ends with it, reset_requested that it starts the machine again. */
static volatile sig_atomic_t stop_requested, reset_requested, term_requested;

static void on_stop(int sig)
{
    (void)sig;
    term_requested = stop_requested = 1;
}

/* `klab reset`: end this QEMU and start the machine again (from its snapshot, when it has one). */
static void on_reset(int sig)
{
    (void)sig;
    reset_requested = stop_requested = 1;
}

/* A reset, and no stop since. */
static bool restart_wanted(void) { return reset_requested && !term_requested; }

/* SIGTERM and SIGHUP end the VM; so does SIGINT, unless ^C belongs to the guest (its console is the terminal). */
static void catch_stop_signals(bool sigint)
{
    struct sigaction sa = { .sa_handler = on_stop };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (sigint)
        sigaction(SIGINT, &sa, NULL);
    struct sigaction reset = { .sa_handler = on_reset };
    sigemptyset(&reset.sa_mask);
    sigaction(SIGUSR1, &reset, NULL);
    wait_abort_on(&stop_requested);
    /* A peer that goes away (libvirt's daemon, the console socket's reader) must be an EPIPE to handle, not the
     * end of the supervisor: libvirt asks its clients to ignore SIGPIPE (docs/threads, "SIGPIPE"). */
    signal(SIGPIPE, SIG_IGN);
}

/* The line the kernel prints when it panics (kernel/panic.c), if the console has one. malloc'ed or NULL. */
static char *find_panic(const char *console_log)
{
    char *text = read_text_file(console_log);
    if (!text)
        return NULL;
    char *p = strstr(text, "Kernel panic - not syncing");
    char *line = p ? strndup(p, strcspn(p, "\r\n")) : NULL;
    free(text);
    return line;
}

/* Why the VM ended, from its console and its backend's wait status; *rc is klab boot's exit status. */
static char *end_reason(const char *console, int status, int *rc)
{
    char *panic = find_panic(console);
    char *why;
    if (panic) {
        why = xasprintf("guest panicked: %s", panic);
        *rc = 3;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        why = strdup("powered off");
        *rc = 0;
    } else if (WIFSIGNALED(status)) {
        why = xasprintf("QEMU killed by signal %d", WTERMSIG(status));
        *rc = WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL ? 0 : 2;
    } else {
        why = xasprintf("QEMU exited with status %d", WEXITSTATUS(status));
        *rc = 2;
    }
    free(panic);
    return why;
}

/* Once the VM is gone: say why, remove what must not outlive it. Returns klab boot's exit status. */
static int finish(const char *run_dir, int status, bool quiet)
{
    char *console = path_join(run_dir, "console.log");
    int rc;
    char *why = end_reason(console, status, &rc);
    static const char *const gone[] = { "ram", "state", "monitor.sock", "console.sock", "initramfs.cpio.gz", "swap.img",
                                        "files.in", "files.out", "console.in", "console.out" };
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        char *p = path_join(run_dir, gone[i]);
        unlink(p);
        free(p);
    }
    char *exit_file = path_join(run_dir, "exit");
    char *line = xasprintf("%s\n", why);
    write_text_file(exit_file, line);
    if (!quiet || rc != 0)
        klab_info("VM ended: %s (console log: %s)", why, console);
    free(line);
    free(exit_file);
    free(why);
    free(console);
    return rc;
}

/* The VM ends for a reason of klab's own (a reset that could not start it again): it is the exit record. */
static int ended_by(const char *run_dir, int status, bool quiet, const char *why)
{
    finish(run_dir, status, true);
    char *exit_file = path_join(run_dir, "exit"), *line = xasprintf("reset: %s\n", why);
    write_text_file(exit_file, line);
    if (!quiet)
        klab_info("VM ended: reset: %s", why);
    free(line);
    free(exit_file);
    return 1;
}

static void announce(const struct runstate *rs, bool waiting, bool restored, FILE *f)
{
    const char *stub = rs->gdb_listen + (strncmp(rs->gdb_listen, "tcp:", 4) ? 0 : 4);
    fprintf(f, "klab: %s VM '%s' %s; gdb stub on %s (%s)\n", rs->profile->arch, rs->name,
            restored ? (waiting ? "is restored at its shell, paused" : "is restored at its shell, running")
                     : waiting ? "is paused at its first instruction" : "is running", stub, rs->accel);
    fprintf(f, "klab: attach with `make gdb-%s` or `klab gdb %s`; stop with `klab stop %s`\n",
            rs->profile->make_suffix, rs->name, rs->name);
}

/* Continues a VM through its gdb stub: connect, detach (QEMU resumes a VM its last client detaches from).
 * A recording has no monitor (machine/qemu_argv.c). 0, or -1. */
static int resume_through_stub(const struct runstate *rs)
{
    const char *where = !strncmp(rs->gdb_listen, "tcp:", 4) ? rs->gdb_listen + 4 : rs->gdb_listen;
    struct klab_error err;
    struct klab_rsp *r = klab_rsp_connect(where, 5000, &err);
    if (!r)
        return -1;
    int rc = klab_rsp_detach(r);
    klab_rsp_close(r);
    return rc;
}

/* Starts the VM and says so; NULL after reporting (the folder already cleaned up). */
/* The backend's start; again when a reset came during it. */
static struct vm_instance *start_again_on_reset(struct boot_plan *p, int *status)
{
    for (;;) {
        struct vm_instance *vm = p->backend->start(p, status);
        if (vm || !restart_wanted())
            return vm;
        reset_requested = stop_requested = 0;
    }
}

static struct vm_instance *start(struct boot_plan *p)
{
    int status = 0;
    struct vm_instance *vm = start_again_on_reset(p, &status);
    if (!vm) {
        if (term_requested)
            klab_info("stopped while the VM started");
        finish(p->rs.dir, status, true);
        return NULL;
    }
    if (p->resume && resume_through_stub(&p->rs) != 0)
        klab_error("could not continue the recording (klab gdb's continue will)");
    announce(&p->rs, p->req.wait_for_gdb && !p->resume, p->restored, stderr);
    return vm;
}

/* Until the VM's end; then its report. A reset ends QEMU and starts the machine again in the same folder: the
 * run state's new QEMU pid tells `klab reset` it is back. */
static int run_to_end(struct boot_plan *p, struct vm_instance *vm, bool echo, bool quiet)
{
    for (;;) {
        int status = p->backend->wait(vm, &stop_requested, echo);
        p->backend->close(vm);
        if (!restart_wanted())
            return finish(p->rs.dir, status, quiet);
        reset_requested = stop_requested = 0;
        char why[512];
        if (p->repack && !reset_hold_wait(p->rs.dir, 600000)) {   /* klab reset --build: pack what it built */
            if (wait_aborted())
                return finish(p->rs.dir, status, quiet);
            return ended_by(p->rs.dir, status, quiet, "klab reset --build held the image for 600 s");
        }
        if (p->repack && p->repack(p, why, sizeof why) != 0)
            return ended_by(p->rs.dir, status, quiet, why);
        if (!(vm = start_again_on_reset(p, &status)))
            return finish(p->rs.dir, status, quiet);
    }
}

/* The detached supervisor: errors before readiness go to the waiting parent through stderr = the pipe. */
static _Noreturn void detached_child(struct boot_plan *p, int pipe_w)
{
    setsid();
    catch_stop_signals(true);
    dup2(pipe_w, STDERR_FILENO);
    struct vm_instance *vm = start(p);
    if (!vm)
        _exit(1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(pipe_w);
    _exit(run_to_end(p, vm, false, true));
}

/* The parent of a detached supervisor: relays what it says until it closes the pipe (ready, or failed). */
static int await_detached(const struct boot_plan *p, pid_t sup, int pipe_r)
{
    char buf[1024];
    ssize_t n;
    bool said = false;
    while ((n = read(pipe_r, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) > 0)
            said = true;
    close(pipe_r);
    struct runstate check;
    if (runstate_load(p->rs.name, &check) == 0) {
        runstate_free(&check);
        return 0;
    }
    int status;
    waitpid(sup, &status, 0);
    if (!said)
        klab_error("the VM did not start (see %s/qemu.log)", p->rs.dir);
    return 1;
}

int supervise(struct boot_plan *p)
{
    if (!p->detach) {
        catch_stop_signals(!p->interactive);
        struct vm_instance *vm = start(p);
        return vm ? run_to_end(p, vm, !p->interactive, false) : 1;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        klab_error("pipe: %s", strerror(errno));
        return 1;
    }
    fflush(NULL);
    pid_t sup = fork();
    if (sup < 0) {
        klab_error("fork: %s", strerror(errno));
        return 1;
    }
    if (sup == 0) {
        close(pipefd[0]);
        detached_child(p, pipefd[1]);
    }
    close(pipefd[1]);
    return await_detached(p, sup, pipefd[0]);
}
