/* One way to run a child process with a deadline: klab's probes, the grader's builds, the sandbox. */
#ifndef KLAB_SPAWN_H
#define KLAB_SPAWN_H

#include <signal.h>
#include <stdbool.h>

struct spawn {
    char *const *argv;             /* what to exec (PATH searched), unless child is set */
    void (*child)(void *ctx);      /* instead: runs in the child and must not return (e.g. the sandbox) */
    void *ctx;
    const char *output;            /* stdout and stderr to this file (truncated, 0644, not a symlink); NULL:
                                      /dev/null */
    bool inherit_stdio;            /* the child keeps klab's stdin, stdout and stderr (output is then unused) */
    bool own_group;                /* the child leads a process group, and the deadline kills the group */
    int timeout_ms;                /* 0: no deadline */
    int deadline_signal;           /* sent at the deadline (0: SIGKILL) */
    bool (*done)(void *ctx);       /* polled: true ends the wait early (the child is killed) */
};

enum { SPAWN_FAILED = -1, SPAWN_TIMEOUT = -2, SPAWN_DONE = -3 };

/* Runs it to its end. Its exit status (128 + N for signal N; 127: could not exec), SPAWN_TIMEOUT when the
 * deadline came first, SPAWN_DONE when done() said so first, SPAWN_FAILED when it could not start. */
int spawn_run(const struct spawn *s);

/* Polls done(ctx) every interval_ms until it is true (then true), timeout_ms pass (then done's last answer) or
 * the process is asked to stop (see wait_abort_on: then false). */
bool wait_until(int timeout_ms, int interval_ms, bool (*done)(void *ctx), void *ctx);

/* A supervisor that gets SIGTERM while it starts a VM (waits for QEMU, its shell, the file channel) must end
 * now, not at a 60 s deadline with a VM nobody will stop: flag (set by its signal handler) cuts every
 * wait_until short from then on. */
void wait_abort_on(const volatile sig_atomic_t *flag);
/* The flag is set: the waits are over. */
bool wait_aborted(void);

#endif
