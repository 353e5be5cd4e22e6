/* klab crash: crash on a VM's fresh dump or on a dump file, with the right vmlinux (cmd/postmortem.c). crash
 * reads every klab dump format; Debian's build reads dumps of its host's architecture only. */
#include "cmd/commands.h"
#include "cmd/postmortem.h"

#include <stdlib.h>

static const struct opt options[] = {
    PM_VMLINUX_OPTION,
    OPT_END,
};

const struct opt_cmd crash_command = {
    .name = "crash", .args = "[NAME | DUMP] [-- CRASH-ARGS...]", .opts = options,
    .about = "Runs crash (Debian's crash) on a running VM's memory (dumped now, removed afterwards) or on a dump\n"
             "file written by klab dump (any format): interactive, or commands on its standard input; CRASH-ARGS\n"
             "go to crash before the files (e.g. -s, -i FILE).",
    .epilog = "Debian 12's crash 8.0.2 lists only the idle tasks of Debian's 6.1.1xx kernels (their struct pid has\n"
              "numbers[], commit b69f0aeb0689): docs/post-mortem.md says why; klab ps and klab bt in gdb, or klab\n"
              "drgn, list them.",
};

/* crash [CRASH-ARGS...] VMLINUX DUMP */
static char **crash_argv(const char *binary, const char *dump, const char *vmlinux, char **args, int nargs)
{
    char **v = calloc((size_t)nargs + 4, sizeof *v);
    int n = 0;
    v[n++] = (char *)binary;
    for (int i = 0; i < nargs; i++)
        v[n++] = args[i];
    v[n++] = (char *)vmlinux, v[n++] = (char *)dump;
    return v;
}

static const struct pm_tool crash = {
    .name = "crash", .package = "crash", .host_arch_only = true, .argv = crash_argv,
};

int cmd_crash(int argc, char **argv)
{
    return postmortem_main(&crash, &crash_command, argc, argv);
}
