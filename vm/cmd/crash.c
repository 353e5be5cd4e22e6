/* klab crash: crash on a VM's fresh dump or on a dump file, with the right vmlinux (cmd/postmortem.c). crash
 * reads every klab dump format; Debian's build reads dumps of its host's architecture only. */
#include "cmd/commands.h"
#include "cmd/postmortem.h"
#include "machine/crash_compat.h"
#include "machine/module_path.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>

static const struct opt options[] = {
    PM_VMLINUX_OPTION,
    OPT_END,
};

const struct opt_cmd crash_command = {
    .name = "crash", .args = "[NAME | DUMP] [-- CRASH-ARGS...]", .opts = options,
    .about = "Runs crash (Debian's crash) on a running VM's memory (dumped now, removed afterwards) or on a dump\n"
             "file written by klab dump (any format): interactive, or commands on its standard input; CRASH-ARGS\n"
             "go to crash before the files (e.g. -s, -i FILE). The modules' .ko files klab knows for the kernel\n"
             "($KLAB_MODULE_PATH, build/modules/KERNEL/, the kernel's own modules/) are loaded first (mod -S).",
    .epilog = "Debian's 6.1.1xx kernels end struct pid in numbers[] (commit b69f0aeb0689), which makes crash before\n"
              "8.0.6 skip every task but the idle ones; klab then gives crash a copy of the vmlinux (in its cache,\n"
              "made once) whose DWARF counts the one upid, and sys, ps and bt see every task (docs/post-mortem.md).",
};

/* The modules' .ko files klab knows for this kernel, linked into one folder for crash's `mod -S DIR` (which
 * takes one), run first through crash's -i: the dump's modules then have their symbols and types. */
static char *farm, *init, *fixed;

static char *module_init(const char *vmlinux)
{
    farm = module_farm(vmlinux);
    if (!farm)
        return NULL;
    init = path_join(farm, "init.crash");
    FILE *f = fopen(init, "wx");
    if (!f || fprintf(f, "mod -S %s\n", farm) < 0 || fclose(f) != 0) {
        free(init);
        return init = NULL;
    }
    return init;
}

static void crash_done(void)
{
    module_farm_remove(farm);
    free(init);
    free(fixed);
    farm = init = fixed = NULL;
}

/* crash [-i INIT] [CRASH-ARGS...] VMLINUX DUMP */
static char **crash_argv(const char *binary, const char *dump, const char *vmlinux, char **args, int nargs)
{
    char **v = calloc((size_t)nargs + 6, sizeof *v);
    int n = 0;
    v[n++] = (char *)binary;
    if (module_init(vmlinux))
        v[n++] = "-i", v[n++] = init;
    for (int i = 0; i < nargs; i++)
        v[n++] = args[i];
    fixed = crash_vmlinux(vmlinux, binary);   /* NULL: said why; crash reads the vmlinux as it is */
    v[n++] = fixed ? fixed : (char *)vmlinux, v[n++] = (char *)dump;
    return v;
}

static const struct pm_tool crash = {
    .name = "crash", .package = "crash", .host_arch_only = true, .argv = crash_argv, .done = crash_done,
};

int cmd_crash(int argc, char **argv)
{
    return postmortem_main(&crash, &crash_command, argc, argv);
}
