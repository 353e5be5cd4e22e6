"""klab's gdb commands. Loaded by `klab gdb`; in any gdb-multiarch session:
    python import sys; sys.path.insert(0, '/path/to/klab/gdb'); import klab
The work is done in C (libklab); this package only connects gdb to it."""

import gdb

from klab import vm


class KlabPrefix(gdb.Command):
    """klab's kernel-debugging commands. Type `help klab` for the list, `help klab <command>` for one."""

    def __init__(self):
        super().__init__("klab", gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, prefix=True)

    def invoke(self, arg, from_tty):
        gdb.execute("help klab", from_tty)


class KlabVm(gdb.Command):
    """Show the VM this gdb is attached to: name, architecture, gdb stub, RAM file, kernel.

Usage: klab vm"""

    def __init__(self):
        super().__init__("klab vm", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("klab vm takes no arguments")
        state = vm.load_state()
        if state is None:
            raise gdb.GdbError("klab vm: not started by `klab gdb` (no KLAB_STATE run-state file)")
        for key in ("name", "arch", "gdb", "accel", "cpu", "kernel", "vmlinux", "ram_file"):
            gdb.write("%-8s %s\n" % (key, state.get(key, "?")))


KlabPrefix()
KlabVm()

# Subcommands register under the prefix, so they load after it.
from klab import mmu, tasks, mem, initmem, modules, kaslr, dmesg, bt, slab, whatis, search, reset  # noqa: E402,F401
