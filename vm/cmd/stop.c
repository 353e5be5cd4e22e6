/* klab stop: ask a VM's QEMU to quit, then TERM and KILL it; its supervisor removes the RAM file, sockets and
 * run state. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "run/runstate.h"
#include "util/opts.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct stop_options {
    bool all;
};

static const struct opt options[] = {
    OPT_BOOL("all", "every VM of this user", struct stop_options, all),
    OPT_END,
};

const struct opt_cmd stop_command = {
    .name = "stop", .args = "[NAME...]", .opts = options,
    .about = "Stops VMs (the only running one if no NAME): asks QEMU to quit, then\n"
             "TERM/KILL; removes the RAM file, sockets and run state, keeps console.log.",
};

struct vm_gone {
    pid_t pid;
    const char *state_file;
};

static bool pid_gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

static bool vm_gone(void *ctx)
{
    const struct vm_gone *g = ctx;
    return pid_gone(g->pid) && !file_exists(g->state_file);
}

/* QEMU's pid is gone (and the supervisor has removed the state file, if it lives). */
static bool wait_gone(pid_t pid, const char *state_file, int timeout_ms)
{
    struct vm_gone g = { pid, state_file };
    return wait_until(timeout_ms, 10, vm_gone, &g) || pid_gone(pid);
}

/* quit, then TERM, then KILL — each only while the pid is still this VM's QEMU. */
static bool end_qemu(const struct runstate *rs, const char *state)
{
    char *out = runstate_monitor(rs, "quit", 2000);
    free(out);
    bool gone = wait_gone(rs->qemu_pid, state, 5000);
    if (!gone && runstate_alive(rs)) {
        kill(rs->qemu_pid, SIGTERM);
        if (!(gone = wait_gone(rs->qemu_pid, state, 3000)) && runstate_alive(rs)) {
            kill(rs->qemu_pid, SIGKILL);
            gone = wait_gone(rs->qemu_pid, state, 2000);
        }
    }
    return gone;
}

static int stop_one(const char *name)
{
    struct runstate rs;
    if (runstate_load(name, &rs) != 0) {
        klab_error(runstate_starting(name) ? "VM '%s' is still starting: stop it once it is up"
                                           : "no VM named '%s'", name);
        return 1;
    }
    /* The pids come from a file: signal them only if they are this user's QEMU for this VM. */
    if (!runstate_alive(&rs)) {
        klab_error("VM '%s': pid %d is not its QEMU (the VM is gone); not signalling it", name, (int)rs.qemu_pid);
        runstate_free(&rs);
        return 1;
    }
    char *state = path_join(rs.dir, "state");
    bool gone = end_qemu(&rs, state);
    /* The supervisor cleans up after QEMU; if it is gone too, the stale-state sweep does it. */
    size_t n = 0;
    char **left = runstate_list(&n, true);
    runstate_free_list(left, n);
    if (!gone)
        klab_error("QEMU pid %d of VM '%s' would not die", (int)rs.qemu_pid, name);
    else
        printf("klab: stopped %s\n", name);
    free(state);
    runstate_free(&rs);
    return gone ? 0 : 1;
}

static int stop_all(void)
{
    size_t n;
    char **names = runstate_list(&n, true);
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        rc |= stop_one(names[i]);
    if (n == 0)
        printf("klab: no VM is running\n");
    runstate_free_list(names, n);
    return rc;
}

int cmd_stop(int argc, char **argv)
{
    struct stop_options o = { 0 };
    int first = opts_parse(&stop_command, argc, argv, NULL, &o);
    if (first <= 0)
        return opts_exit(first);
    if (o.all)
        return stop_all();
    if (first == argc) {
        char *name = resolve_vm_name(NULL);
        int rc = name ? stop_one(name) : 1;
        free(name);
        return rc;
    }
    int rc = 0;
    for (int i = first; i < argc; i++) {
        char *name = resolve_vm_name(argv[i]);
        rc |= name ? stop_one(name) : 1;
        free(name);
    }
    return rc;
}
