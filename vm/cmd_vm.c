/* klab stop / status / wait: the commands that act on running VMs through their run-state folders. */
#define _GNU_SOURCE
#include "commands.h"
#include "monitor.h"
#include "runstate.h"
#include "util.h"

#include "../rootfs/init_script.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *resolve_vm_name(const char *given)
{
    if (runstate_check_root(false) < 0)
        return NULL;
    size_t n;
    char **names = runstate_list(&n, true);
    char *found = NULL;
    if (given) {
        for (size_t i = 0; i < n && !found; i++)
            if (!strcmp(names[i], given))
                found = strdup(given);
        if (!found)
            klab_error("no running VM named '%s'%s", given, n ? " (see klab status)" : "");
    } else if (n == 1) {
        found = strdup(names[0]);
    } else if (n == 0) {
        klab_error("no VM is running (start one with `make vm-x86`, `make vm-arm` or klab boot)");
    } else {
        klab_error("%zu VMs are running; name one (see klab status)", n);
    }
    runstate_free_list(names, n);
    return found;
}

static bool wait_gone(pid_t pid, const char *state_file, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (now_ns() < deadline) {
        if ((kill(pid, 0) != 0 && errno == ESRCH) && !file_exists(state_file))
            return true;
        sleep_ms(10);
    }
    return kill(pid, 0) != 0 && errno == ESRCH;
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
    char *out = runstate_monitor(&rs, "quit", 2000);
    free(out);
    bool gone = wait_gone(rs.qemu_pid, state, 5000);
    if (!gone && runstate_alive(&rs)) {
        kill(rs.qemu_pid, SIGTERM);
        if (!(gone = wait_gone(rs.qemu_pid, state, 3000)) && runstate_alive(&rs)) {
            kill(rs.qemu_pid, SIGKILL);
            gone = wait_gone(rs.qemu_pid, state, 2000);
        }
    }
    /* The supervisor cleans up after QEMU; if it is gone too, the stale-state sweep does it. */
    size_t n = 0;
    char **left = runstate_list(&n, true);
    runstate_free_list(left, n);
    int rc = 0;
    if (!gone) {
        klab_error("QEMU pid %d of VM '%s' would not die", (int)rs.qemu_pid, name);
        rc = 1;
    } else {
        printf("klab: stopped %s\n", name);
    }
    free(state);
    runstate_free(&rs);
    return rc;
}

int cmd_stop(int argc, char **argv)
{
    static const struct option longopts[] = { { "all", no_argument, 0, 'a' }, { "help", no_argument, 0, 'h' },
                                              { 0, 0, 0, 0 } };
    bool all = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'a')
            all = true;
        else if (c == 'h') {
            puts("usage: klab stop [NAME... | --all]\n\nStops VMs (the only running one if no NAME): asks QEMU to "
                 "quit, then\nTERM/KILL; removes the RAM file, sockets and run state, keeps console.log.");
            return 0;
        } else {
            klab_error("stop: unknown option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (all) {
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
    if (optind == argc) {
        char *name = resolve_vm_name(NULL);
        if (!name)
            return 1;
        int rc = stop_one(name);
        free(name);
        return rc;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        char *name = resolve_vm_name(argv[i]);
        rc |= name ? stop_one(name) : 1;
        free(name);
    }
    return rc;
}

/* "paused (prelaunch)", "running", ... from QEMU's `info status`. malloc'ed. */
static char *vm_run_state(const struct runstate *rs)
{
    char *out = runstate_monitor(rs, "info status", 1000);
    const char *prefix = "VM status: ";
    char *p = out ? strstr(out, prefix) : NULL;
    char *s = p ? strndup(p + strlen(prefix), strcspn(p + strlen(prefix), "\r\n")) : strdup("?");
    free(out);
    return s;
}

int cmd_status(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: klab status [NAME]\n\nLists running VMs: name, architecture, QEMU pid, gdb stub, accelerator,\n"
             "run state, kernel; and how recently ended ones ended. With NAME, that VM's run-state file.");
        return 0;
    }
    if (argc > 1) {
        char *name = resolve_vm_name(argv[1]);
        if (!name)
            return 1;
        char *dir = runstate_dir_for(name);
        char *state = path_join(dir, "state");
        char *text = read_text_file(state);
        fputs(text ? text : "", stdout);
        free(text);
        free(state);
        free(dir);
        free(name);
        return 0;
    }
    if (runstate_check_root(false) < 0)
        return 1;
    size_t n;
    char **names = runstate_list(&n, true);
    printf("%-12s %-7s %-8s %-21s %-5s %-20s %s\n", "NAME", "ARCH", "PID", "GDB", "ACCEL", "STATE", "KERNEL");
    for (size_t i = 0; i < n; i++) {
        struct runstate rs;
        if (runstate_load(names[i], &rs) != 0) {
            printf("%-12s %-7s %-8s %-21s %-5s %-20s\n", names[i], "-", "-", "-", "-", "starting");
            continue;
        }
        char *st = vm_run_state(&rs);
        printf("%-12s %-7s %-8d %-21s %-5s %-20s %s\n", rs.name, rs.profile->arch, (int)rs.qemu_pid,
               rs.gdb_listen + (strncmp(rs.gdb_listen, "tcp:", 4) ? 0 : 4), rs.accel, st, rs.kernel);
        free(st);
        runstate_free(&rs);
    }
    runstate_free_list(names, n);
    /* Ended VMs keep their logs and the reason they ended until their name boots again. */
    names = runstate_list_ended(&n);
    for (size_t i = 0; i < n; i++) {
        int dfd = runstate_open_dir(names[i], false);
        char *why = dfd >= 0 ? read_text_file_at(dfd, "exit") : NULL;
        if (dfd >= 0)
            close(dfd);
        printf("%-12s ended: %s\n", names[i], why ? strtok(why, "\n") : "unknown (no exit record)");
        free(why);
    }
    runstate_free_list(names, n);
    return 0;
}

/* klab wait: until the console log shows a text (default: the init banner), the VM ends, or time runs out. */
int cmd_wait(int argc, char **argv)
{
    static const struct option longopts[] = { { "for", required_argument, 0, 'f' },
                                              { "timeout", required_argument, 0, 't' },
                                              { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *text = KLAB_INIT_BANNER;
    uint64_t timeout = 60;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'f')
            text = optarg;
        else if (c == 't') {
            if (!parse_u64(optarg, &timeout) || timeout == 0 || timeout > 86400) {
                klab_error("--timeout wants seconds (1-86400), not '%s'", optarg);
                return 2;
            }
        } else if (c == 'h') {
            printf("usage: klab wait [NAME] [--for TEXT] [--timeout SECONDS]\n\nWaits until the VM's console "
                   "shows TEXT (default: the init banner \"%s\"),\nthen prints that line. Fails if the VM ends "
                   "or panics first, or after the timeout (60 s).\n", KLAB_INIT_BANNER);
            return 0;
        } else {
            klab_error("wait: unknown or incomplete option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (runstate_check_root(false) < 0)
        return 1;
    /* A named VM may already have ended: its folder then still says why. */
    const char *given = optind < argc ? argv[optind] : NULL;
    char *given_dir = given && runstate_valid_name(given) ? runstate_dir_for(given) : NULL;
    char *name = given_dir && file_exists(given_dir) ? strdup(given) : resolve_vm_name(given);
    free(given_dir);
    if (!name)
        return 1;
    char *dir = runstate_dir_for(name);
    char *log = path_join(dir, "console.log"), *exit_file = path_join(dir, "exit");
    uint64_t deadline = now_ns() + timeout * 1000000000u;
    int rc = -1;
    while (rc < 0) {
        bool ended = file_exists(exit_file);   /* read before the log: the log is complete once this exists */
        char *con = read_text_file(log);
        char *hit = con ? strstr(con, text) : NULL;
        if (hit) {
            char *start = hit;
            while (start > con && start[-1] != '\n')
                start--;
            printf("%.*s\n", (int)strcspn(start, "\r\n"), start);
            rc = 0;
        } else if (ended) {
            char *why = read_text_file(exit_file);
            klab_error("VM '%s' ended before \"%s\" appeared: %s", name, text, why ? strtok(why, "\n") : "?");
            free(why);
            rc = 1;
        } else if (now_ns() >= deadline) {
            klab_error("\"%s\" did not appear on the console of '%s' within %llu s (see %s)", text, name,
                       (unsigned long long)timeout, log);
            rc = 1;
        }
        free(con);
        if (rc < 0)
            sleep_ms(20);
    }
    free(log);
    free(exit_file);
    free(dir);
    free(name);
    return rc;
}
