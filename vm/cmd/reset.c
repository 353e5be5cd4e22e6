/* klab reset: start a VM again from scratch — from its snapshot when it was booted with --snapshot (a fraction
 * of a second), else by booting its kernel again. The VM's supervisor does it (SIGUSR1, run/supervisor.c):
 * same run-state folder, same stub address, a new QEMU. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "run/reset_hold.h"
#include "run/runstate.h"
#include "util/opts.h"
#include "util/spawn.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct reset_options {
    uint64_t timeout;
    const char *build;
};

enum { OPT_TIMEOUT = 't', OPT_BUILD = 'b' };

static const struct opt options[] = {
    OPT_CALL("timeout", OPT_TIMEOUT, "SECONDS", "give up after that long (default 300: a cold boot may save a snapshot first)"),
    OPT_CALL("build", OPT_BUILD, "CMD", "run the shell command CMD (a module's rebuild) while the VM is restored;\n"
             "its --add files go in once CMD is done (a failed CMD: exit 1, the VM back with the\n"
             "files as they are)"),
    OPT_END,
};

const struct opt_cmd reset_command = {
    .name = "reset", .args = "[NAME]", .opts = options,
    .about = "Starts a VM again in a pristine state: restored from its snapshot when it was booted\n"
             "with --snapshot, else booted again; its --add files are read again. Its gdb stub keeps its\n"
             "address; attached gdbs are disconnected (klab reset inside gdb attaches again).",
};

static int on_option(void *ctx, int id, const char *arg)
{
    struct reset_options *o = ctx;
    if (id == OPT_BUILD) {
        if (!*arg) {
            klab_error("--build wants a command");
            return -1;
        }
        o->build = arg;
        return 0;
    }
    return opts_number(arg, 1, 86400, &o->timeout, "--timeout wants seconds (1-86400)");
}

/* The supervisor named by the run state is the parent of the VM's live QEMU: only then is it signalled. */
static bool is_supervisor(const struct runstate *rs)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)rs->qemu_pid);
    char *stat = read_text_file(path);
    char *end = stat ? strrchr(stat, ')') : NULL;
    int ppid = 0;
    bool ok = end && sscanf(end + 1, " %*c %d", &ppid) == 1 && ppid == rs->supervisor_pid && ppid > 1;
    free(stat);
    return ok;
}

struct back {
    const char *name;
    pid_t old_qemu;
    bool ended;
};

/* The supervisor has written the run state of a new QEMU, or the VM has ended. */
static bool back_up(void *ctx)
{
    struct back *b = ctx;
    struct runstate rs;
    if (runstate_load(b->name, &rs) != 0) {
        b->ended = !runstate_starting(b->name);
        return b->ended;
    }
    bool up = rs.qemu_pid != b->old_qemu && runstate_alive(&rs);
    runstate_free(&rs);
    return up;
}

/* The ended VM's exit record, in the one line that says it did not come back. */
static void ended_why(const char *name)
{
    int dfd = runstate_open_dir(name, false);
    char *why = dfd >= 0 ? read_text_file_at(dfd, "exit") : NULL;
    if (dfd >= 0)
        close(dfd);
    if (why && strtok(why, "\n"))
        klab_error("VM '%s' did not start again: %s", name, why);
    else
        klab_error("VM '%s' did not start again (its run-state folder's qemu.log says why)", name);
    free(why);
}

/* klab reset --build CMD: CMD through the shell, with this terminal, while the supervisor restores the VM; the
 * hold is released when it ends, so the files go in then. Its exit status. */
static int run_build(const char *cmd, const char *run_dir)
{
    char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
    struct spawn sp = { .argv = argv, .inherit_stdio = true };
    fflush(NULL);
    int rc = spawn_run(&sp);
    reset_hold_release(run_dir);
    return rc;
}

static int reset_one(const char *name, const struct reset_options *o)
{
    struct runstate rs;
    if (runstate_load(name, &rs) != 0) {
        klab_error(runstate_starting(name) ? "VM '%s' is still starting: reset it once it is up" : "no VM named '%s'",
                   name);
        return 1;
    }
    int rc = 1;
    if (runstate_is_libvirt(&rs))
        klab_error("reset: VM '%s' is a libvirt domain; klab reset restarts QEMU VMs (klab stop, then boot)", name);
    else if (!runstate_alive(&rs) || !is_supervisor(&rs))
        klab_error("VM '%s': its QEMU (pid %d) is not running under its supervisor; not signalling", name,
                   (int)rs.qemu_pid);
    else if (o->build && reset_hold_create(rs.dir, getpid()) != 0)
        klab_error("reset: cannot hold '%s' for --build: %s", name, strerror(errno));
    else if (kill(rs.supervisor_pid, SIGUSR1) != 0) {
        klab_error("reset: cannot signal the supervisor of '%s': %s", name, strerror(errno));
        if (o->build)
            reset_hold_release(rs.dir);
    } else
        rc = 0;
    struct back b = { name, rs.qemu_pid, false };
    uint64_t t0 = now_ns();
    int built = rc == 0 && o->build ? run_build(o->build, rs.dir) : 0;
    runstate_free(&rs);
    if (rc)
        return rc;
    if (!wait_until((int)o->timeout * 1000, 5, back_up, &b) || b.ended) {
        if (b.ended)
            ended_why(name);
        else
            klab_error("VM '%s' was not back within %llu s", name, (unsigned long long)o->timeout);
        return 1;
    }
    if (runstate_load(name, &rs) != 0)
        return 1;
    printf("klab: %s %s in %llu ms%s\n", name, rs.restored ? "restored from its snapshot" : "booted again",
           (unsigned long long)((now_ns() - t0) / 1000000), o->build ? ", built meanwhile" : "");
    runstate_free(&rs);
    if (built != 0) {
        klab_error("reset: --build '%s' failed (%s %d): '%s' is back with its files as they are", o->build,
                   built > 0 ? "exit" : "status", built, name);
        return 1;
    }
    return 0;
}

int cmd_reset(int argc, char **argv)
{
    struct reset_options o = { .timeout = 300 };
    int first = opts_parse(&reset_command, argc, argv, on_option, &o);
    if (first <= 0)
        return opts_exit(first);
    if (first + 1 < argc) {
        klab_error("reset: one VM at a time (see klab reset --help)");
        return 2;
    }
    char *name = resolve_vm_name(first < argc ? argv[first] : NULL);
    int rc = name ? reset_one(name, &o) : 1;
    free(name);
    return rc;
}
