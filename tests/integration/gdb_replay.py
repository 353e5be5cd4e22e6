"""Sourced in gdb by replay.sh, attached to `klab replay` of a recorded boot (stopped at start_kernel by klab
gdb): gdb's reverse execution against gdb's own forward view of the same deterministic run.
  - reverse-stepi walks back through the PCs stepi went through, in reverse order;
  - reverse-continue over several breakpoint hits stops at the last one before, where jiffies and the file
    being opened (read by gdb) are what they were at that hit;
  - a watchpoint taken backwards stops just after the instruction that wrote the word (QEMU reports a
    watchpoint once the access is done): one reverse-stepi puts the old value back, one stepi the new one
    (gdb's own reads)."""

import os
import re
import sys

import gdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gdb_checks import ARCH, check, fail, run  # noqa: E402

OPEN = os.environ["KLAB_TEST_BREAK"]   # a kernel function the boot calls many times


def pc():
    return int(gdb.parse_and_eval("$pc")) & ((1 << 64) - 1)


def jiffies():
    return int(gdb.parse_and_eval("jiffies_64")) & ((1 << 64) - 1)


def opened():
    """The file name do_sys_openat2 was called with (gdb reads the caller's memory): with jiffies, what tells
    one hit from another without waiting for a tick (the guest sleeps in between, and QEMU 7.2 can hang
    replaying through an idle guest)."""
    try:
        return gdb.parse_and_eval("filename").string(errors="replace")[:256]
    except gdb.error:
        return ""


def hit():
    return (pc(), jiffies(), opened())


def main():
    forward = [pc()]
    for _ in range(6):
        run("stepi")
        forward.append(pc())
    back = [pc()]
    for _ in range(6):
        run("reverse-stepi")
        back.append(pc())
    check("reverse-stepi x6 returns through stepi's PCs in reverse order (%x .. %x)" % (forward[-1], forward[0]),
          back == forward[::-1], "forward %s back %s" % ([hex(x) for x in forward], [hex(x) for x in back]))

    run("hbreak %s" % OPEN)
    seen = []
    for _ in range(4):
        run("continue")
        seen.append(hit())
    while seen[-2][1:] == seen[-1][1:] and len(seen) < 12:   # want two hits told apart
        run("continue")
        seen.append(hit())
    # gdb prints a stop as an event, not into execute's string: the state is the oracle.
    run("reverse-continue")
    now = hit()
    check("reverse-continue stops at the previous breakpoint hit (%s of %r, jiffies %d as at that hit)"
          % (OPEN, seen[-2][2], seen[-2][1]), now == seen[-2], "now %s; hits %s" % (now, seen))
    run("delete")

    before = jiffies()
    run("watch -l jiffies_64")
    run("reverse-continue")
    new = jiffies()
    run("delete")   # else the steps below stop on the watchpoint again
    run("reverse-stepi")
    at = run("info symbol $pc").strip()
    old = jiffies()
    run("stepi")
    again = jiffies()
    check("a watchpoint backwards stops after the write of jiffies_64: reverse-stepi to %s gives back %d, stepi "
          "writes %d again" % (at.split(" in section")[0], old, new), old != new and again == new and new <= before,
          "at %s: %d, reverse-stepi %d, stepi %d (before the reverse-continue %d)" % (at, new, old, again, before))
    print("# gdb_replay.py: done")


try:
    main()
except gdb.error as e:
    fail("gdb_replay.py", str(e))
