/* klab crash: crash on a VM's fresh dump or on a dump file, with the right vmlinux (cmd/postmortem.c). crash
 * reads every klab dump format. A crash binary reads the dumps of one architecture (its build's target); the
 * one scripts/crash-build.sh builds for an arch (8.0.6, $KLAB_CACHE/crash/ARCH/crash) comes first, then
 * Debian's (8.0.2) for dumps of the host's own architecture. */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "cmd/postmortem.h"
#include "machine/crash_compat.h"
#include "machine/module_path.h"
#include "machine/paths.h"
#include "machine/profile.h"
#include "util/private_dir.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static const struct opt options[] = {
    PM_VMLINUX_OPTION,
    OPT_END,
};

const struct opt_cmd crash_command = {
    .name = "crash", .args = "[NAME | DUMP] [-- CRASH-ARGS...]", .opts = options,
    .about = "Runs crash on a running VM's memory (dumped now, removed afterwards) or on a dump\n"
             "file written by klab dump (any format): interactive, or commands on its standard input; CRASH-ARGS\n"
             "go to crash before the files (e.g. -s, -i FILE). The modules' .ko files klab knows for the kernel\n"
             "($KLAB_MODULE_PATH, build/modules/KERNEL/, the kernel's own modules/) are loaded first (mod -S).\n"
             "The crash is the one `make crash` builds for the dump's architecture (crash 8.0.6, in the cache:\n"
             "arm64 dumps on an x86_64 host, 6.4+ kernels), else Debian's (8.0.2, the host's architecture only);\n"
             "$KLAB_CRASH names another.",
    .epilog = "crash reads a copy of the vmlinux in klab's cache (made once per vmlinux) that carries gdb's index of\n"
              "its DWARF, so crash's gdb does not read all of it at each start (about half the start). Debian's\n"
              "6.1.1xx kernels end struct pid in numbers[] (commit b69f0aeb0689), which makes crash before 8.0.6 skip\n"
              "every task but the idle ones; for such a crash the copy's DWARF also counts the one upid, and sys, ps\n"
              "and bt see every task (docs/post-mortem.md).",
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
    fixed = crash_vmlinux(vmlinux, binary);   /* the indexed (and fixed) copy, or vmlinux itself */
    v[n++] = fixed, v[n++] = (char *)dump;
    return v;
}

/* The crash that reads dumps of arch: the cache's build for it (the user's own file, in folders only they can
 * write: it is run), else Debian's when arch is the host's. */
static char *crash_find(const char *arch)
{
    const char *forced = getenv("KLAB_CRASH");   /* the user's own choice of binary, for any dump */
    if (forced && *forced) {
        char *path = strchr(forced, '/') ? strdup(forced) : find_in_path(forced);
        if (!path || access(path, X_OK) != 0) {
            klab_error("crash: $KLAB_CRASH (%s) is not a program here", forced);
            free(path);
            return NULL;
        }
        return path;
    }
    char *cache = klab_cache_dir(), *built = xasprintf("%s/crash/%s/crash", cache, arch ? arch : "?");
    free(cache);
    if (arch && access(built, X_OK) == 0) {
        if (trusted_path(built, getuid()))
            return built;
        klab_error("crash: %s is not only yours to write (its owner, mode or folder): not running it", built);
        free(built);
        return NULL;
    }
    free(built);
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.machine, sizeof u.machine, "?");
    const struct machine_profile *p = arch ? profile_find(arch) : NULL;
    if (!p || strcmp(u.machine, p->uname_machine)) {
        klab_error("crash: Debian's crash reads dumps of its host's architecture (%s) only, and this dump is %s: "
                   "`make crash` builds crash 8.0.6 for it (scripts/crash-build.sh %s), or use klab drgn or klab "
                   "vtop/ptdump --dump", u.machine, arch ? arch : "of another architecture", arch ? arch : "ARCH");
        return NULL;
    }
    char *debian = find_in_path("crash");
    if (!debian)
        klab_error("crash: not found (scripts/deps.sh installs Debian's crash; `make crash` builds 8.0.6)");
    return debian;
}

static const struct pm_tool crash = {
    .name = "crash", .package = "crash", .find = crash_find, .argv = crash_argv, .done = crash_done,
};

int cmd_crash(int argc, char **argv)
{
    return postmortem_main(&crash, &crash_command, argc, argv);
}
