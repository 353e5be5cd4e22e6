/* What klab drgn and klab crash share: a post-mortem tool run on a dump file, or on a fresh dump of a running
 * VM written into the VM's own run-state folder and removed when the tool ends; the vmlinux checked against
 * the dump first (run/dump.h dump_vmlinux_check). One table entry per tool says what it needs. */
#ifndef KLAB_CMD_POSTMORTEM_H
#define KLAB_CMD_POSTMORTEM_H

#include "util/opts.h"

#include <stdbool.h>

struct pm_tool {
    const char *name;          /* the command and the binary: "drgn", "crash" */
    const char *package;       /* the Debian package scripts/deps.sh installs */
    bool needs_vaddrs;         /* an ELF core with a segment at a kernel VA (drgn 0.0.22), no makedumpfile file */
    /* The binary that reads dumps of arch ("x86_64", "arm64"), malloc'ed, or NULL after one line; NULL: the
     * tool's name in $PATH, for any arch */
    char *(*find)(const char *arch);
    /* argv for the tool: the binary, the dump, the vmlinux, then the user's ARGS after `--` */
    char **(*argv)(const char *binary, const char *dump, const char *vmlinux, char **args, int nargs);
    void (*done)(void);        /* after the tool ended: removes what argv() made (NULL: nothing) */
};

/* klab TOOL [NAME | DUMP] [--vmlinux F] [-- ARGS...]: the tool's exit status, or 1 after one line. */
int postmortem_main(const struct pm_tool *tool, const struct opt_cmd *cmd, int argc, char **argv);

/* The --vmlinux option both commands take (their struct is struct pm_options). */
struct pm_options {
    const char *vmlinux;
};
#define PM_VMLINUX_OPTION                                                                                      \
    OPT_STR("vmlinux", "FILE", "the kernel's vmlinux (default: the VM's; for a dump file it is required and\n" \
            "must be the kernel the dump's VMCOREINFO names)", struct pm_options, vmlinux)

#endif
