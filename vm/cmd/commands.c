/* The table of klab's subcommands (cmd/commands.h). */
#include "cmd/commands.h"

#include <string.h>

const struct klab_command klab_commands[] = {
    { "boot", cmd_boot, "boot a kernel under QEMU, paused at its first instruction, gdb stub on 127.0.0.1",
      &boot_command },
    { "replay", cmd_replay, "boot a recording (boot --record) again, paused, for reverse debugging in gdb",
      &replay_command },
    { "gdb", cmd_gdb, "attach gdb-multiarch to a VM with symbols and klab's commands", &gdb_command },
    { "reset", cmd_reset, "start a VM again: from its snapshot (boot --snapshot) in a fraction of a second",
      &reset_command },
    { "stop", cmd_stop, "stop a VM and remove its RAM file, sockets and run state", &stop_command },
    { "status", cmd_status, "list running VMs", &status_command },
    { "wait", cmd_wait, "wait until a VM's console shows the init banner (or any text)", &wait_command },
    { "regs", cmd_regs, "print a running VM's registers (pc, stack, translation, per-CPU) without gdb",
      &regs_command },
    { "vtop", cmd_vtop, "translate virtual addresses level by level with the VM's page tables", &vtop_command },
    { "ptdump", cmd_ptdump, "dump a VM's whole page table as merged ranges with permissions", &ptdump_command },
    { "ptsnap", cmd_ptsnap, "save a VM's whole page table as a named snapshot (for ptdiff); list, show, rm",
      &ptsnap_command },
    { "ptdiff", cmd_ptdiff, "what changed in the page tables between two snapshots, or one and now",
      &ptdiff_command },
    { "dump", cmd_dump, "write a VM's memory to a dump file that crash and drgn open", &dump_command },
    { "drgn", cmd_drgn, "run drgn on a VM (dumped now) or on a dump file, with the right vmlinux", &drgn_command },
    { "crash", cmd_crash, "run crash on a VM (dumped now) or on a dump file, with the right vmlinux",
      &crash_command },
    { "rootfs", cmd_rootfs, "build a busybox initramfs (newc cpio, gzip)", &rootfs_command },
    { "exam", cmd_exam, "run an exam room: one isolated VM per candidate, reset, time limit", &exam_command },
    { "inspect", cmd_inspect, "show a kernel image's / vmlinux's architecture and banner; check a pair",
      &inspect_command },
    { "fetch", cmd_fetch, "fetch Debian's kernels (with debug vmlinux) and busybox-static into klab's cache",
      &fetch_command },
};

const size_t klab_ncommands = sizeof klab_commands / sizeof *klab_commands;

const struct klab_command *klab_command_find(const char *name)
{
    for (size_t i = 0; i < klab_ncommands; i++)
        if (!strcmp(klab_commands[i].name, name))
            return &klab_commands[i];
    return NULL;
}
