/* klab drgn: drgn on a VM's fresh dump or on a dump file, with the right vmlinux (cmd/postmortem.c). Debian
 * 12's drgn (0.0.22) needs a segment at a kernel virtual address to start its page-table walk: klab dump
 * adds one (vm/run/dump_vaddr.h). */
#include "cmd/commands.h"
#include "cmd/postmortem.h"

#include <stdlib.h>

static const struct opt options[] = {
    PM_VMLINUX_OPTION,
    OPT_END,
};

const struct opt_cmd drgn_command = {
    .name = "drgn", .args = "[NAME | DUMP] [-- SCRIPT ARGS...]", .opts = options,
    .about = "Runs drgn (Debian's python3-drgn) on a running VM's memory (dumped now, removed afterwards) or on a\n"
             "dump file written by klab dump (ELF): interactive, or SCRIPT with prog set.",
};

/* drgn -q -c DUMP -s VMLINUX [SCRIPT ARGS...] */
static char **drgn_argv(const char *binary, const char *dump, const char *vmlinux, char **args, int nargs)
{
    char **v = calloc((size_t)nargs + 8, sizeof *v);
    int n = 0;
    v[n++] = (char *)binary, v[n++] = "-q", v[n++] = "-c", v[n++] = (char *)dump, v[n++] = "-s", v[n++] = (char *)vmlinux;
    for (int i = 0; i < nargs; i++)
        v[n++] = args[i];
    return v;
}

static const struct pm_tool drgn = {
    .name = "drgn", .package = "python3-drgn", .needs_vaddrs = true, .argv = drgn_argv,
};

int cmd_drgn(int argc, char **argv)
{
    return postmortem_main(&drgn, &drgn_command, argc, argv);
}
