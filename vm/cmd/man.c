/* klab __man [COMMAND]: klab(1), or klab-COMMAND(1), in roff, from the command table and each command's
 * option table (the Makefile writes build/man/ with it; the package installs them). Hidden from --help. */
#include "cmd/commands.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

static const char description[] =
    "klab boots an arm64 or x86_64 Linux kernel under QEMU, stopped at its first instruction with a gdb\n"
    "stub on 127.0.0.1 (or an owner-only Unix socket), and attaches gdb with the kernel's symbols and klab's\n"
    "commands. Its C library, libklab, walks the guest's page tables from QEMU's RAM file or a dump file, so\n"
    "regs, vtop and ptdump work without gdb; dump, crash and drgn give the post-mortem tools the same state;\n"
    "exam runs rooms of isolated VMs, one per candidate.";

static const char environment[] =
    ".TP\n.B KLAB_CACHE\nwhere kernels, busybox and image segments are kept (default: $XDG_CACHE_HOME/klab, else\n"
    "~/.cache/klab)\n"
    ".TP\n.B KLAB_RUN_DIR\nthe run-state folder of this user's VMs (default: $XDG_RUNTIME_DIR/klab, else /dev/shm/klab\\-UID)\n"
    ".TP\n.B KLAB_GDB_DIR\nthe folder holding klab's gdb Python package (default: klab's own)\n"
    ".TP\n.B KLAB_LIB\nthe libklab.so that package loads (default: klab's own)\n"
    ".TP\n.B KLAB_MODULE_PATH\ncolon-separated folders where klab gdb looks for modules' .ko files\n";

static void main_page(FILE *f)
{
    fprintf(f, ".TH klab 1 \"\" \"klab %s\" \"klab manual\"\n", KLAB_VERSION);
    fputs(".SH NAME\nklab \\- a QEMU + gdb kernel debug lab\n", f);
    fputs(".SH SYNOPSIS\n.B klab\n.I COMMAND\n[\\fIARGS\\fR]\n.br\n.B klab\n\\fICOMMAND\\fR \\fB\\-\\-help\\fR\n", f);
    fputs(".SH DESCRIPTION\n", f);
    fputs(description, f);
    fputs("\n.SH COMMANDS\n", f);
    for (size_t i = 0; i < klab_ncommands; i++)
        fprintf(f, ".TP\n.BR klab\\-%s (1)\n%s\n", klab_commands[i].name, klab_commands[i].summary);
    fputs(".SH ENVIRONMENT\n", f);
    fputs(environment, f);
    fputs(".SH SEE ALSO\n", f);
    for (size_t i = 0; i < klab_ncommands; i++)
        fprintf(f, ".BR klab\\-%s (1)%s\n", klab_commands[i].name, ",");
    fputs(".BR gdb (1),\n.BR qemu (1),\n.BR crash (8)\n", f);
}

int cmd_man(int argc, char **argv)
{
    if (argc < 2) {
        main_page(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < klab_ncommands; i++)
            puts(klab_commands[i].name);
        return 0;
    }
    const struct klab_command *k = klab_command_find(argv[1]);
    if (!k) {
        klab_error("__man: unknown command '%s'", argv[1]);
        return 2;
    }
    opts_man(k->opts, k->summary, KLAB_VERSION, stdout);
    return 0;
}
