"""Sourced in gdb by replay_module.sh, attached to `klab replay` of a boot in which staledrv (labs/staledrv)
wrote through a stale pointer into another object: the lesson of docs/walkthroughs/who-wrote-it.md. Stop where
the module finds its victim corrupted, watch the corrupted word, reverse-continue: gdb must stop at the write
itself, in staledrv_write_stale with the writer work item below it on the stack (QEMU reports a watchpoint
once the access is done: one reverse-stepi gives the word its old value back, one stepi writes the module's
stale value again; gdb's own reads)."""

import os
import re
import sys

import gdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gdb_checks import check, fail, run  # noqa: E402


# The module's own `victim`, by its file: Debian's arm64 vmlinux has a static `victim` of its own (in
# .init.data), and on arm64 gdb stops at a breakpoint in the function's patchable-entry NOPs, which GCC
# leaves outside the function's DWARF range (-fpatchable-function-entry: DW_AT_low_pc is after them), so a
# plain `victim` there is looked up globally and finds the kernel's.
VICTIM = "'staledrv.c'::victim"


def word(expr):
    return int(gdb.parse_and_eval(expr)) & ((1 << 64) - 1)


def main():
    run("set breakpoint pending on")
    run("hbreak staledrv_check")
    run("continue")
    # gdb prints a stop as an event, not into execute's string: where the CPU is, is the oracle.
    at = run("info symbol $pc").strip()
    if not check("the replay reaches staledrv_check (the module's symbols loaded by klab): %s" % at.split(" in section")[0],
                 at.startswith("staledrv_check"), at):
        return
    victim = word(VICTIM)
    value = word(VICTIM + "->value")
    check("at the check the victim's value is the stale write's 0xdeadbeef (gdb reads %x)" % value,
          value == 0xdeadbeef, "victim %x value %x" % (victim, value))
    run("delete")
    run("watch -l %s->value" % VICTIM)
    run("reverse-continue")
    at = run("info symbol $pc").strip()
    bt = run("bt")
    check("reverse-continue on the watched word stops in the writer: %s" % at.split(" in section")[0],
          at.startswith("staledrv_write_stale"), at)
    # staledrv_writer, the work function, tail-calls the writer: the kworker's frames are below it.
    check("the stack there is a work item's, run by a kworker (bt)", "process_one_work" in bt and "worker_thread" in bt, bt)
    kbt = run("klab bt")
    check("klab bt there names the same frames and the kworker", "staledrv_write_stale" in kbt and
          "process_one_work" in kbt and "kworker" in kbt, kbt)
    run("delete")
    run("reverse-stepi")
    writer = run("x/i $pc").strip()
    before = word(VICTIM + "->value")
    run("stepi")
    after = word(VICTIM + "->value")
    check("the instruction before the stop writes the word: %x -> %x (%s)" % (before, after, writer.split(":", 1)[-1].strip()),
          before == 1 and after == 0xdeadbeef, "%x -> %x at %s" % (before, after, writer))
    print("# gdb_whowrote.py: done")


try:
    main()
except gdb.error as e:
    fail("gdb_whowrote.py", str(e))
