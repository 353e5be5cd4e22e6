/* klab drgn: drgn on a VM's fresh dump or on a dump file, with the right vmlinux. A VM is dumped in the
 * elf-paging format (vm/run/dump.h) into its own run-state folder, and the dump is removed when drgn ends.
 * Debian 12's drgn (0.0.22) needs a segment at a kernel virtual address to start its page-table walk:
 * klab dump adds one (vm/run/dump_vaddr.h). */
#define _GNU_SOURCE
#include "cmd/commands.h"
#include "machine/kimage.h"
#include "run/dump.h"
#include "run/runstate.h"
#include "util/opts.h"
#include "util/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct drgn_options {
    const char *vmlinux;
};

static const struct opt options[] = {
    OPT_STR("vmlinux", "FILE", "the kernel's vmlinux (default: the VM's; for a dump file it is required and\n"
            "must be the kernel the dump's VMCOREINFO names)", struct drgn_options, vmlinux),
    OPT_END,
};

static const struct opt_cmd command = {
    .name = "drgn", .args = "[NAME | DUMP] [-- SCRIPT ARGS...]", .opts = options,
    .about = "Runs drgn (Debian's python3-drgn) on a running VM's memory (dumped now, removed afterwards) or on a\n"
             "dump file written by klab dump (ELF): interactive, or SCRIPT with prog set.",
};

/* The vmlinux must be the dump's kernel: same architecture, same release as VMCOREINFO's OSRELEASE. */
static int check_pair(const char *dump, const char *vmlinux)
{
    struct dump_info d;
    struct kimage_info k;
    char err[256];
    if (dump_inspect(dump, &d, err, sizeof err) != 0) {
        klab_error("drgn: %s: %s", dump, err);
        return -1;
    }
    if (!d.elf) {
        klab_error("drgn: %s is a makedumpfile dump, which drgn 0.0.22 does not open: dump with --format elf-paging",
                   dump);
        return -1;
    }
    if (!d.vaddrs) {
        klab_error("drgn: %s has no segment at a kernel virtual address (not written by klab dump), and drgn 0.0.22 "
                   "cannot translate kernel addresses without one", dump);
        return -1;
    }
    if (vmlinux_inspect(vmlinux, &k, err, sizeof err) != 0) {
        klab_error("drgn: %s: %s", vmlinux, err);
        return -1;
    }
    if (!d.arch || strcmp(d.arch, k.profile->arch)) {
        klab_error("drgn: %s is a %s dump, %s a %s kernel", dump, d.arch ? d.arch : "foreign", vmlinux, k.profile->arch);
        return -1;
    }
    if (!d.release[0]) {
        klab_error("drgn: %s has no VMCOREINFO, so nothing says which kernel it holds", dump);
        return -1;
    }
    if (strcmp(d.release, k.release)) {
        klab_error("drgn: %s holds kernel %s, %s is %s", dump, d.release, vmlinux, k.release);
        return -1;
    }
    return 0;
}

static int run_drgn(const char *drgn, const char *dump, const char *vmlinux, char **script, int nscript)
{
    char **argv = calloc((size_t)nscript + 8, sizeof *argv);
    int n = 0;
    argv[n++] = (char *)drgn;
    argv[n++] = "-q";
    argv[n++] = "-c";
    argv[n++] = (char *)dump;
    argv[n++] = "-s";
    argv[n++] = (char *)vmlinux;
    for (int i = 0; i < nscript; i++)
        argv[n++] = script[i];
    pid_t pid = fork();
    if (pid == 0) {
        execv(drgn, argv);
        _exit(127);
    }
    free(argv);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int cmd_drgn(int argc, char **argv)
{
    struct drgn_options o = { 0 };
    int first = opts_parse(&command, argc, argv, NULL, &o);
    if (first <= 0)
        return opts_exit(first);
    char *drgn = find_in_path("drgn");
    if (!drgn) {
        klab_error("drgn: not found (scripts/deps.sh installs Debian's python3-drgn)");
        return 1;
    }
    const char *what = first < argc ? argv[first] : NULL;
    char **script = first + 1 < argc ? argv + first + 1 : NULL;
    int nscript = first + 1 < argc ? argc - first - 1 : 0;
    struct stat st;
    int rc = 1;
    /* a path (with a '/'), or a file of that name when no VM has it */
    struct runstate probe;
    bool vm = what && runstate_valid_name(what) && runstate_load(what, &probe) == 0;
    if (vm)
        runstate_free(&probe);
    bool is_file = what && (strchr(what, '/') || (!vm && stat(what, &st) == 0 && S_ISREG(st.st_mode)));
    if (is_file) {
        if (!o.vmlinux)
            klab_error("drgn: a dump file needs --vmlinux FILE (its kernel's vmlinux)");
        else if (check_pair(what, o.vmlinux) == 0)
            rc = run_drgn(drgn, what, o.vmlinux, script, nscript);
        free(drgn);
        return rc;
    }
    char *name = resolve_vm_name(what);
    struct runstate rs;
    if (!name || runstate_load(name, &rs) != 0) {
        if (name)
            klab_error("no VM named '%s'", name);
        free(name);
        free(drgn);
        return 1;
    }
    const char *vmlinux = o.vmlinux ? o.vmlinux : rs.vmlinux;
    char *dump = path_join(rs.dir, "drgn.vmcore");
    struct dump_result r;
    unlink(dump);   /* a leftover of an earlier run, in the VM's own private folder */
    if (!vmlinux || !*vmlinux)
        klab_error("drgn: VM '%s' has no vmlinux (boot it with --vmlinux, or give --vmlinux)", name);
    else if (!runstate_alive(&rs))
        klab_error("VM '%s' is not running", name);
    else if (dump_vm(&rs, dump, DUMP_ELF_PAGING, &r) == 0 && check_pair(dump, vmlinux) == 0)
        rc = run_drgn(drgn, dump, vmlinux, script, nscript);
    unlink(dump);
    free(dump);
    runstate_free(&rs);
    free(name);
    free(drgn);
    return rc;
}
