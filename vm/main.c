/* klab: a QEMU + gdb kernel debug lab. */
#include "cmd/commands.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    { "boot", cmd_boot, "boot a kernel under QEMU, paused at its first instruction, gdb stub on 127.0.0.1" },
    { "gdb", cmd_gdb, "attach gdb-multiarch to a VM with symbols and klab's commands" },
    { "stop", cmd_stop, "stop a VM and remove its RAM file, sockets and run state" },
    { "status", cmd_status, "list running VMs" },
    { "wait", cmd_wait, "wait until a VM's console shows the init banner (or any text)" },
    { "regs", cmd_regs, "print a running VM's registers (pc, stack, translation, per-CPU) without gdb" },
    { "vtop", cmd_vtop, "translate virtual addresses level by level with the VM's page tables" },
    { "ptdump", cmd_ptdump, "dump a VM's whole page table as merged ranges with permissions" },
    { "dump", cmd_dump, "write a VM's memory to a dump file that crash and drgn open" },
    { "drgn", cmd_drgn, "run drgn on a VM (dumped now) or on a dump file, with the right vmlinux" },
    { "crash", cmd_crash, "run crash on a VM (dumped now) or on a dump file, with the right vmlinux" },
    { "rootfs", cmd_rootfs, "build a busybox initramfs (newc cpio, gzip)" },
    { "exam", cmd_exam, "run an exam room: one isolated VM per candidate, reset, time limit" },
    { "inspect", cmd_inspect, "show a kernel image's / vmlinux's architecture and banner; check a pair" },
};

static void usage(FILE *f)
{
    fputs("usage: klab COMMAND [ARGS]   (klab COMMAND --help for each)\n\n", f);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                if (!strcmp(commands[i].name, argv[2])) {
                    char *args[] = { argv[2], "--help", NULL };
                    return commands[i].run(2, args);
                }
        }
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(commands[i].name, argv[1]))
            return commands[i].run(argc - 1, argv + 1);
    klab_error("unknown command '%s' (see klab --help)", argv[1]);
    return 2;
}
