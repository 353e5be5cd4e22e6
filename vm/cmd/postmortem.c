/* vm/cmd/postmortem.h. */
#define _GNU_SOURCE
#include "cmd/postmortem.h"
#include "run/dump.h"
#include "run/runstate.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The pair and what this tool can open of it. */
static int check_dump(const struct pm_tool *t, const char *dump, const char *vmlinux, const char **arch)
{
    struct dump_info d;
    char err[512];
    if (dump_vmlinux_check(dump, vmlinux, &d, err, sizeof err) != 0) {
        klab_error("%s: %s", t->name, err);
        return -1;
    }
    if (t->needs_vaddrs && !d.elf) {
        klab_error("%s: %s is a makedumpfile dump, which %s does not open: dump with --format elf-paging", t->name,
                   dump, t->name);
        return -1;
    }
    if (t->needs_vaddrs && !d.vaddrs) {
        klab_error("%s: %s has no segment at a kernel virtual address (not written by klab dump), and %s cannot "
                   "translate kernel addresses without one", t->name, dump, t->name);
        return -1;
    }
    *arch = d.arch;
    return 0;
}

/* The tool's binary for dumps of arch. */
static char *tool_binary(const struct pm_tool *t, const char *arch)
{
    if (t->find)
        return t->find(arch);
    char *binary = find_in_path(t->name);
    if (!binary)
        klab_error("%s: not found (scripts/deps.sh installs Debian's %s)", t->name, t->package);
    return binary;
}

static int run_tool(const struct pm_tool *t, const char *binary, const char *dump, const char *vmlinux, char **args,
                    int nargs)
{
    char **argv = t->argv(binary, dump, vmlinux, args, nargs);
    pid_t pid = fork();
    if (pid == 0) {
        execv(binary, argv);
        _exit(127);
    }
    free(argv);
    int status = 0;
    int waited = pid < 0 ? -1 : waitpid(pid, &status, 0);
    if (t->done)
        t->done();
    if (waited < 0)
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A fresh dump of VM name in its own folder, the tool on it, the dump removed. */
static int on_vm(const struct pm_tool *t, const char *what, const char *vmlinux_opt, char **args,
                 int nargs)
{
    char *name = resolve_vm_name(what);
    struct runstate rs;
    if (!name || runstate_load(name, &rs) != 0) {
        if (name)
            klab_error("no VM named '%s'", name);
        free(name);
        return 1;
    }
    const char *vmlinux = vmlinux_opt ? vmlinux_opt : rs.vmlinux, *arch = NULL;
    char *dump = xasprintf("%s/%s.vmcore", rs.dir, t->name), *binary = NULL;
    struct dump_result r;
    int rc = 1;
    unlink(dump);   /* a leftover of an earlier run, in the VM's own private folder */
    if (!vmlinux || !*vmlinux)
        klab_error("%s: VM '%s' has no vmlinux (boot it with --vmlinux, or give --vmlinux)", t->name, name);
    else if (!runstate_alive(&rs))
        klab_error("VM '%s' is not running", name);
    /* the binary first: no dump for a tool that is not there */
    else if ((binary = tool_binary(t, rs.profile ? rs.profile->arch : NULL)) &&
             dump_vm(&rs, dump, DUMP_ELF_PAGING, &r) == 0 && check_dump(t, dump, vmlinux, &arch) == 0)
        rc = run_tool(t, binary, dump, vmlinux, args, nargs);
    unlink(dump);
    free(dump);
    free(binary);
    runstate_free(&rs);
    free(name);
    return rc;
}

int postmortem_main(const struct pm_tool *t, const struct opt_cmd *cmd, int argc, char **argv)
{
    struct pm_options o = { 0 };
    int first = opts_parse(cmd, argc, argv, NULL, &o);
    if (first <= 0)
        return opts_exit(first);
    const char *what = first < argc ? argv[first] : NULL;
    char **args = first + 1 < argc ? argv + first + 1 : NULL;
    int nargs = first + 1 < argc ? argc - first - 1 : 0;
    /* a path (with a '/'), or a file of that name when no VM has it */
    struct runstate probe;
    struct stat st;
    bool vm = what && runstate_valid_name(what) && runstate_load(what, &probe) == 0;
    if (vm)
        runstate_free(&probe);
    bool is_file = what && (strchr(what, '/') || (!vm && stat(what, &st) == 0 && S_ISREG(st.st_mode)));
    int rc = 1;
    const char *arch = NULL;
    char *binary = NULL;
    if (!is_file)
        rc = on_vm(t, what, o.vmlinux, args, nargs);
    else if (!o.vmlinux)
        klab_error("%s: a dump file needs --vmlinux FILE (its kernel's vmlinux)", t->name);
    else if (check_dump(t, what, o.vmlinux, &arch) == 0 && (binary = tool_binary(t, arch)))
        rc = run_tool(t, binary, what, o.vmlinux, args, nargs);
    free(binary);
    return rc;
}
