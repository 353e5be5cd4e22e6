/* klab status: the VMs of this user, running and ended; with NAME, that VM's run-state file. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "run/runstate.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct opt options[] = { OPT_END };

const struct opt_cmd status_command = {
    .name = "status", .args = "[NAME]", .opts = options,
    .about = "Lists running VMs: name, architecture, QEMU pid, gdb stub, accelerator,\n"
             "run state, kernel; and how recently ended ones ended. With NAME, that VM's run-state file.",
};

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

static int show_state_file(const char *given)
{
    char *name = resolve_vm_name(given);
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

static void list_running(void)
{
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
}

/* Ended VMs keep their logs and the reason they ended until their name boots again. */
static void list_ended(void)
{
    size_t n;
    char **names = runstate_list_ended(&n);
    for (size_t i = 0; i < n; i++) {
        int dfd = runstate_open_dir(names[i], false);
        char *why = dfd >= 0 ? read_text_file_at(dfd, "exit") : NULL;
        if (dfd >= 0)
            close(dfd);
        printf("%-12s ended: %s\n", names[i], why ? strtok(why, "\n") : "unknown (no exit record)");
        free(why);
    }
    runstate_free_list(names, n);
}

int cmd_status(int argc, char **argv)
{
    int first = opts_parse(&status_command, argc, argv, NULL, NULL);
    if (first <= 0)
        return opts_exit(first);
    if (first < argc)
        return show_state_file(argv[first]);
    if (runstate_check_root(false) < 0)
        return 1;
    list_running();
    list_ended();
    return 0;
}
