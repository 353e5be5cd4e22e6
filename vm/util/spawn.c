/* vm/util/spawn.h. */
#define _GNU_SOURCE
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static _Noreturn void in_child(const struct spawn *s, int out)
{
    if (s->own_group)
        setpgid(0, 0);
    int null = s->inherit_stdio ? -1 : open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0)
        dup2(null, STDIN_FILENO);
    if (out < 0)
        out = null;
    if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
    }
    if (s->child)
        s->child(s->ctx);
    execvp(s->argv[0], s->argv);
    _exit(127);
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void end(pid_t pid, bool group, int sig)
{
    if (group)
        kill(-pid, sig);
    kill(pid, sig);
    int status;
    waitpid(pid, &status, 0);
}

int spawn_run(const struct spawn *s)
{
    int out = -1;
    if (s->output && (out = open(s->output, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0)
        return SPAWN_FAILED;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        in_child(s, out);
    if (out >= 0)
        close(out);
    if (pid < 0)
        return SPAWN_FAILED;
    uint64_t deadline = s->timeout_ms ? now_ns() + (uint64_t)s->timeout_ms * 1000000u : 0;
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return exit_code(status);
        if (w < 0 && errno != EINTR)
            return SPAWN_FAILED;
        if (s->done && s->done(s->ctx)) {
            end(pid, s->own_group, SIGKILL);
            return SPAWN_DONE;
        }
        if (deadline && now_ns() >= deadline) {
            end(pid, s->own_group, s->deadline_signal ? s->deadline_signal : SIGKILL);
            return SPAWN_TIMEOUT;
        }
        sleep_ms(s->done ? 10 : 50);
    }
}

static const volatile sig_atomic_t *abort_flag;

void wait_abort_on(const volatile sig_atomic_t *flag) { abort_flag = flag; }

bool wait_aborted(void) { return abort_flag && *abort_flag; }

bool wait_until(int timeout_ms, int interval_ms, bool (*done)(void *ctx), void *ctx)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (!done(ctx)) {
        if (wait_aborted())
            return false;
        if (now_ns() >= deadline)
            return done(ctx);
        sleep_ms((unsigned)interval_ms);
    }
    return true;
}
